"""The registry of named feature spaces: register, look up, build."""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

__all__ = ["FeatureSpace", "register", "register_pattern", "lookup", "available", "describe",
           "build", "build_many"]


@dataclasses.dataclass(frozen=True)
class FeatureSpace:
    """A registered feature space."""

    name: str
    builder: Callable
    description: str
    group: str


_REGISTRY: dict[str, FeatureSpace] = {}
_PATTERNS: list[tuple[re.Pattern, Callable]] = []


def register(name: str, description: str, group: str = "other"):
    """Decorator registering ``fn(nsd, nsd_ids, **options) -> (n, d)`` under ``name``."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"feature space {name!r} is already registered")
        _REGISTRY[name] = FeatureSpace(name, fn, description, group)
        return fn

    return deco



def register_pattern(pattern: str, factory: Callable) -> None:
    """Register a family of spaces: names matching the regular expression ``pattern`` are built
    by ``factory(nsd, nsd_ids, **named_groups, **options)``."""
    _PATTERNS.append((re.compile(pattern), factory))


def available() -> list[str]:
    """Names of the registered feature spaces (pattern families listed with ``*``)."""
    return sorted(_REGISTRY) + ["sbert:<model>", "fasttext_<kind>", "glove_<kind>"]


def describe():
    """A DataFrame of the registered spaces: name, group, description."""
    import pandas as pd

    rows = [dict(name=s.name, group=s.group, description=s.description) for s in _REGISTRY.values()]
    rows += [
        dict(name="sbert:<model>", group="encoders",
             description="any local sentence encoder (HF name or folder), mean over captions"),
        dict(name="fasttext_<kind> / glove_<kind>", group="static word vectors",
             description="mean word vectors from a user-supplied file; kind = all, categories, "
                         "nouns, verbs, adjectives, adverbs, prepositions"),
    ]
    return pd.DataFrame(rows).set_index("name")


def lookup(name: str):
    """``(builder, extra options)`` of a space name; ValueError naming the available ones."""
    if name in _REGISTRY:
        return _REGISTRY[name].builder, {}
    for pattern, factory in _PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            return factory, m.groupdict()
    raise ValueError(f"unknown feature space {name!r}; available: {available()}")


def build(name: str, nsd, nsd_ids, **options) -> np.ndarray:
    """Feature matrix ``float32 (n_images, d)`` of space ``name`` for ``nsd_ids``.

    ``options`` go to the space's builder (e.g. ``device``, ``seed``, ``vectors_path``).
    """
    fn, extra = lookup(name)
    ids = np.asarray(nsd_ids, dtype=np.int64).ravel()
    out = np.asarray(fn(nsd, ids, **extra, **options), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != ids.size:
        raise RuntimeError(f"feature space {name!r} returned shape {out.shape} for {ids.size} images")
    return out


def build_many(names, nsd, nsd_ids, **options) -> dict[str, np.ndarray]:
    """``{name: build(name, ...)}`` for several spaces, with a progress bar."""
    from tqdm.auto import tqdm

    return {n: build(n, nsd, nsd_ids, **options) for n in tqdm(list(names), desc="feature spaces")}

