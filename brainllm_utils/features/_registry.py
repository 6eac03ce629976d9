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
#: families registered with a display name: pattern string -> (display, group, description)
_FAMILIES: dict[str, tuple[str, str, str]] = {}
#: the families listed by :func:`available` / :func:`describe` whatever is registered
_BUILTIN_FAMILIES = (
    ("sbert:<model>", "encoders",
     "any local sentence encoder (HF name or folder), mean over captions"),
    ("fasttext_<kind> / glove_<kind>", "static word vectors",
     "mean word vectors from a user-supplied file; kind = all, categories, "
     "nouns, verbs, adjectives, adverbs, prepositions"),
    ("hf:<model>[?options]", "encoders",
     "any local Hugging Face encoder or decoder (pooling, layer, prompt), mean over captions"),
)


#: the built-in families' patterns (registered in ``_spaces`` and ``_static``) -> their row
_BUILTIN_PATTERNS = {r"sbert:(?P<model>.+)": 0, r"(?P<lib>fasttext|glove)_(?P<kind>[a-z]+)": 1,
                     r"hf:(?P<hf_spec>.*)": 2}


def _same_builder(a, b) -> bool:
    """Whether two builders are the same code: one object, equal dataclass builders (a
    file registered twice), or functions of the same module and qualified name (a plugin
    module imported again)."""
    if a is b:
        return True
    if dataclasses.is_dataclass(a) and not isinstance(a, type) and type(a) is type(b):
        return a == b
    key_a = (getattr(a, "__module__", None), getattr(a, "__qualname__", None))
    key_b = (getattr(b, "__module__", None), getattr(b, "__qualname__", None))
    return None not in key_a and key_a == key_b


def _origin(fn) -> str:
    if dataclasses.is_dataclass(fn) and not isinstance(fn, type):
        return repr(fn)
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"


#: set by ``_plugins`` when it is imported (the registry imports nothing of it: no circle):
#: ``ensure`` loads the user's plugins, ``problems`` lists what failed to load
_PLUGIN_HOOKS: dict[str, Callable] = {}


def set_plugin_hooks(ensure: Callable, problems: Callable) -> None:
    """Install the plugin loader that every lookup calls first (done by ``_plugins``).

    Parameters
    ----------
    ensure : callable
        ``ensure()`` loads the user's plugins once (never raises).
    problems : callable
        ``problems() -> list of str``: what failed to load, for an unknown name's message.
    """
    _PLUGIN_HOOKS.update(ensure=ensure, problems=problems)


def _ensure_plugins() -> None:
    """Load the user's plugins (entry points, config file) once, before any lookup."""
    if "ensure" in _PLUGIN_HOOKS:
        _PLUGIN_HOOKS["ensure"]()


def register(name: str, description: str, group: str = "other"):
    """Decorator registering ``fn(nsd, nsd_ids, **options) -> (n, d)`` under ``name``.

    Parameters
    ----------
    name : str
        The new space's name; a name registered twice raises ``ValueError``, unless it is
        the same builder again (the same function of the same module, e.g. a plugin module
        imported in a second way, or an equal file space): then the call is a no-op.
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
        if not callable(fn):
            raise TypeError(f"feature space {name!r}: the builder must be callable, got {fn!r}")
        old = _REGISTRY.get(name)
        if old is not None and not _same_builder(old.builder, fn):
            raise ValueError(f"feature space {name!r} is already registered (by "
                             f"{_origin(old.builder)}; now {_origin(fn)})")
        _REGISTRY[name] = FeatureSpace(name, fn, description, group)
        return fn

    return deco



def register_pattern(pattern: str, factory: Callable, *, display: str | None = None,
                     description: str = "", group: str = "other") -> None:
    """Register a family of spaces whose names match a regular expression.

    Registering the same pattern with the same factory again is a no-op (a plugin loaded
    twice); the same pattern with another factory raises ``ValueError``.

    Parameters
    ----------
    pattern : str
        A regular expression that a whole name must match (``re.fullmatch``), e.g.
        ``r"sbert:(?P<model>.+)"``.
    factory : callable
        Builds a matching space as ``factory(nsd, nsd_ids, **named_groups, **options)``.
    display : str, optional
        How :func:`available` and :func:`describe` list the family (e.g.
        ``"precomputed:<path>"``); ``None``: not listed.
    description : str, default=""
        The family's line in :func:`describe`.
    group : str, default="other"
        Its family in :func:`describe`.
    """
    if not isinstance(pattern, str) or not pattern:
        raise TypeError(f"pattern={pattern!r}: expected a non-empty regular expression (str)")
    if not callable(factory):
        raise TypeError(f"factory={factory!r}: expected a callable")
    if display is not None and (not isinstance(display, str) or not display):
        raise TypeError(f"display={display!r}: expected a non-empty str or None")
    if not isinstance(description, str) or not isinstance(group, str):
        raise TypeError("description and group must be str")
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"pattern={pattern!r}: not a regular expression ({err})") from None
    for i, (old, old_factory) in enumerate(_PATTERNS):
        if old.pattern == pattern:
            if not _same_builder(old_factory, factory):
                raise ValueError(f"feature-space pattern {pattern!r} is already registered (by "
                                 f"{_origin(old_factory)}; now {_origin(factory)})")
            _PATTERNS[i] = (compiled, factory)
            break
    else:
        _PATTERNS.append((compiled, factory))
    if display is not None:
        _FAMILIES[pattern] = (display, group, description)


def available() -> list[str]:
    """Names of the registered feature spaces (pattern families listed with ``*``).

    Returns
    -------
    names : list of str
        The registered names, sorted, then the pattern families (``"sbert:<model>"``,
        ``"fasttext_<kind>"``, ``"glove_<kind>"``, ``"hf:<model>[?options]"``, then those
        registered with a ``display``
        name, e.g. ``"precomputed:<path>"``). User plugins are loaded first
        (:func:`~brainllm_utils.features.ensure_plugins`).
    """
    _ensure_plugins()
    return (sorted(_REGISTRY) + ["sbert:<model>", "fasttext_<kind>", "glove_<kind>",
                                 "hf:<model>[?options]"]
            + [d for d, _, _ in _FAMILIES.values()])


def describe(names=None):
    """A DataFrame of the registered spaces: name, group, description.

    Parameters
    ----------
    names : iterable of str, optional
        Describe exactly these names, in this order (a name of a pattern family, such as
        ``precomputed:<path>`` or ``sbert:<model>``, gets its family's group and
        description; an unknown name raises as :func:`lookup`). ``None``: every registered
        space, then the pattern families.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``name``; columns ``group`` and ``description`` (pattern families
        included).
    """
    import pandas as pd

    _ensure_plugins()
    if names is None:
        rows = [dict(name=s.name, group=s.group, description=s.description)
                for s in _REGISTRY.values()]
        rows += [dict(name=n, group=g, description=d) for n, g, d in _BUILTIN_FAMILIES]
        rows += [dict(name=n, group=g, description=d) for n, g, d in _FAMILIES.values()]
        return pd.DataFrame(rows).set_index("name")
    if isinstance(names, str):
        raise TypeError(f"names must be a list of feature-space names, not a single string "
                        f"{names!r}; wrap it in a list")
    rows = []
    for name in names:
        lookup(name)  # an unknown name raises, naming the available ones
        if name in _REGISTRY:
            s = _REGISTRY[name]
            rows.append(dict(name=name, group=s.group, description=s.description))
            continue
        pattern = next(p.pattern for p, _ in _PATTERNS if p.fullmatch(name))
        if pattern in _FAMILIES:
            _, group, description = _FAMILIES[pattern]
        elif pattern in _BUILTIN_PATTERNS:
            _, group, description = _BUILTIN_FAMILIES[_BUILTIN_PATTERNS[pattern]]
        else:  # a family registered without a display name
            group, description = "other", ""
        rows.append(dict(name=name, group=group, description=description))
    return pd.DataFrame(rows, columns=["name", "group", "description"]).set_index("name")


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

    Notes
    -----
    User plugins (entry points of the group ``brainllm_utils.plugins`` and the config file
    of ``$BRAINLLM_CONFIG`` or ``./brainllm.toml``) are loaded before the first lookup of a
    process (:func:`~brainllm_utils.features.ensure_plugins`); an unknown name's message
    lists what failed to load.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a feature-space name (str), got {name!r}")
    _ensure_plugins()
    if name in _REGISTRY:
        return _REGISTRY[name].builder, {}
    for pattern, factory in _PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            return factory, m.groupdict()
    problems = _PLUGIN_HOOKS["problems"]() if "problems" in _PLUGIN_HOOKS else []
    note = ("; plugins that failed to load: " + "; ".join(problems)) if problems else ""
    raise ValueError(f"unknown feature space {name!r}; available: {available()}{note}")


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

