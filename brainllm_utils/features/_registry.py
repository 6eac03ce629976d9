"""The registry of named feature spaces: register, look up, build."""

from __future__ import annotations

import dataclasses
import re
from typing import Callable

import numpy as np

from .._utils.docs import fill_doc
from .._utils.numeric import check_indices

__all__ = ["FeatureSpace", "register", "register_pattern", "lookup", "available", "describe",
           "build", "build_many", "RQ2_SPACES"]

#: Every RQ2 space of the paper (``shared/docs/paper_methods.md`` §2: category, word-average,
#: word-class, scrambled-caption and other-encoder controls), in the order of the chapters'
#: tables. Chapter 02/03's ``paper`` profile scores all of them against the brain
#: (``chapters.rq2``, ``book.batch.PROFILES``).
RQ2_SPACES = (
    "multihot", "mpnet_category_all", "fasttext_categories", "glove_categories",
    "mpnet_word_avg", "fasttext_all", "glove_all",
    "mpnet_nouns", "mpnet_verbs", "mpnet_adjectives", "mpnet_adverbs", "mpnet_prepositions",
    "mpnet_nouns_sentence", "mpnet_verbs_sentence",
    "mpnet_scrambled",
    "sbert:all-MiniLM-L6-v2",
)


@dataclasses.dataclass(frozen=True)
class FeatureSpace:
    """A registered feature space.

    Attributes
    ----------
    name : str
        The space's name, as passed to :func:`build` (e.g. ``"mpnet"``).
    builder : callable
        ``builder(nsd, nsd_ids, **options)`` → array of shape ``(n_images, n_features)``.
    description : str
        One line for :func:`describe`.
    group : str
        Its family in :func:`describe` (``"main"``, ``"encoders"``, ``"words"``, ...).
    """

    name: str
    builder: Callable
    description: str
    group: str


_REGISTRY: dict[str, FeatureSpace] = {}
_PATTERNS: list[tuple[re.Pattern, Callable]] = []


def register(name: str, description: str, group: str = "other"):
    """Decorator registering ``fn(nsd, nsd_ids, **options) -> (n, d)`` under ``name``.

    Parameters
    ----------
    name : str
        The new space's name; a name registered twice raises ``ValueError``.
    description : str
        One line for :func:`describe`.
    group : str, default="other"
        Its family in :func:`describe`.

    Returns
    -------
    decorator : callable
        Registers the function it decorates and returns it unchanged.
    """

    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a non-empty str, got {name!r}")
    if not isinstance(description, str) or not isinstance(group, str):
        raise TypeError("description and group must be str")

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"feature space {name!r} is already registered")
        _REGISTRY[name] = FeatureSpace(name, fn, description, group)
        return fn

    return deco



def register_pattern(pattern: str, factory: Callable) -> None:
    """Register a family of spaces whose names match a regular expression.

    Parameters
    ----------
    pattern : str
        A regular expression that a whole name must match (``re.fullmatch``), e.g.
        ``r"sbert:(?P<model>.+)"``.
    factory : callable
        Builds a matching space as ``factory(nsd, nsd_ids, **named_groups, **options)``.
    """
    _PATTERNS.append((re.compile(pattern), factory))


def available() -> list[str]:
    """Names of the registered feature spaces (pattern families listed with ``*``).

    Returns
    -------
    names : list of str
        The registered names, sorted, then the pattern families (``"sbert:<model>"``,
        ``"fasttext_<kind>"``, ``"glove_<kind>"``).
    """
    return sorted(_REGISTRY) + ["sbert:<model>", "fasttext_<kind>", "glove_<kind>"]


def describe():
    """A DataFrame of the registered spaces: name, group, description.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``name``; columns ``group`` and ``description`` (pattern families
        included).
    """
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
    """``(builder, extra options)`` of a space name; ValueError naming the available ones.

    Parameters
    ----------
    name : str
        A registered name, or one that a pattern family matches.

    Returns
    -------
    builder : callable
        The registered builder, or the family's factory.
    extra : dict of str to str
        The named groups of the matched pattern (empty for a registered name).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a feature-space name (str), got {name!r}")
    if name in _REGISTRY:
        return _REGISTRY[name].builder, {}
    for pattern, factory in _PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            return factory, m.groupdict()
    raise ValueError(f"unknown feature space {name!r}; available: {available()}")


@fill_doc
def build(name: str, nsd, nsd_ids, **options) -> np.ndarray:
    """Feature matrix ``float32 (n_images, d)`` of space ``name`` for ``nsd_ids``.

    Parameters
    ----------
    name : str
        A feature space (:func:`available`).
    %(nsd)s
    %(nsd_ids)s
    **options
        Go to the space's builder (e.g. ``device``, ``seed``, ``vectors_path``).

    Returns
    -------
    X : ndarray of float32 of shape (n_images, n_features)
        One row per image of ``nsd_ids``.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a feature-space name (str), got {name!r}")
    fn, extra = lookup(name)
    ids = check_indices(nsd_ids, "nsd_ids", unique=False, ndim=1)
    if ids.size == 0:
        raise ValueError("nsd_ids is empty: expected the 0-based nsdIds of at least one image")
    out = np.asarray(fn(nsd, ids, **extra, **options), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != ids.size:
        raise RuntimeError(f"feature space {name!r} returned shape {out.shape} for {ids.size} images")
    return out


@fill_doc
def build_many(names, nsd, nsd_ids, **options) -> dict[str, np.ndarray]:
    """``{name: build(name, ...)}`` for several spaces, with a progress bar.

    Parameters
    ----------
    names : iterable of str
        Feature spaces (:func:`available`).
    %(nsd)s
    %(nsd_ids)s
    **options
        Go to every space's builder (as :func:`build`).

    Returns
    -------
    features : dict of str to ndarray of shape (n_images, n_features)
        :func:`build` of each name, in the order of ``names``.
    """
    from tqdm.auto import tqdm

    if isinstance(names, str):
        raise TypeError(f"names must be a list of feature-space names, not a single string {names!r}; "
                        "wrap it in a list")
    names = list(names)
    dup = sorted({n for n in names if names.count(n) > 1}, key=str)
    if dup:
        raise ValueError(f"names repeats {dup}: each feature space once (the result is keyed by name)")
    return {n: build(n, nsd, nsd_ids, **options) for n in tqdm(names, desc="feature spaces")}

