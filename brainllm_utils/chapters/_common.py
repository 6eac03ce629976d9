"""What every chapter shares: the dataset key, subjects, each subject's RSA images and sample
sets, and feature tables (with an in-process memo)."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path

import numpy as np

from .. import features as _features_pkg
from .._utils.cache import cache_key
from .._utils.docs import fill_doc
from .._utils.paths import get_results_dir
from ..nsd import subject_name
from ..rsa import get_sample_sets
from ..synth import is_sandbox, load_truth_array

__all__ = ["dataset_key", "resolve_subjects", "subject_image_ids", "subject_sets", "rsa_design",
           "rows_of", "build_feature_table"]


@fill_doc
def dataset_key(nsd) -> str:
    """A short key of the dataset root (sample sets and caches of two roots never mix).

    Parameters
    ----------
    %(nsd)s

    Returns
    -------
    key : str
        12 hex digits of the resolved root (:func:`~brainllm_utils._utils.cache.cache_key`,
        kind ``"dataset"``).
    """
    return cache_key("dataset", str(Path(nsd.root).resolve()), length=12)


@fill_doc
def subject_image_ids(nsd, subject, min_repeats: int = 3) -> np.ndarray:
    """Sorted nsdIds the subject saw at least ``min_repeats`` times (the RSA pool).

    Equal to the ``nsd_ids`` that :meth:`NSD.betas` returns for all sessions, without
    reading any betas.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    %(min_repeats)s

    Returns
    -------
    nsd_ids : ndarray of int64 of shape (n_images,)
        Sorted 0-based nsdIds.
    """
    ids = nsd.trial_images(subject)
    uniq, counts = np.unique(ids, return_counts=True)
    return uniq[counts >= min_repeats].astype(np.int64)


def _results_dir(nsd, results_dir=None) -> Path:
    return get_results_dir(results_dir) / "rsa" / dataset_key(nsd)


@fill_doc
def subject_sets(nsd, subject, set_size: int = 100, seed: int = 0, n_sets: int | None = None,
                 results_dir=None):
    """A subject's image ids and its saved sample sets.

    The partition of all the subject's 3×-seen images is made once by
    :func:`brainllm_utils.rsa.get_sample_sets` (stored as image ids under
    ``<results>/rsa/<dataset key>/sampling/``) and reused; ``n_sets`` keeps the first sets.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(results_dir)s
        Sample sets are saved under ``<results_dir>/rsa/<dataset key>/sampling/``.

    Returns
    -------
    ids : ndarray of int64 of shape (n_images,)
        The subject's sorted 3×-seen nsdIds (rows of :meth:`NSD.betas`).
    sets : ndarray of int64 of shape (n_sets, set_size)
        Row positions into ``ids``.
    """
    ids = subject_image_ids(nsd, subject)
    size = min(int(set_size), ids.size)
    sets = get_sample_sets(subject, ids, set_size=size, seed=seed,
                           results_dir=_results_dir(nsd, results_dir))
    if n_sets is not None:
        sets = sets[: max(1, int(n_sets))]
    return ids, sets


@fill_doc
def rsa_design(nsd, subjects=None, set_size: int = 100, seed: int = 0,
               n_sets: int | None = None, results_dir=None):
    """Sample sets of several subjects and the images they need.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(results_dir)s
        Sample sets are saved under ``<results_dir>/rsa/<dataset key>/sampling/``.

    Returns
    -------
    design : dict of str to (ndarray, ndarray)
        subject → ``(ids, sets)`` as :func:`subject_sets`.
    needed_ids : ndarray of int64 of shape (n_needed,)
        Sorted union of the nsdIds in the used sets: the only images whose features the
        sampled RSA needs.
    """
    subjects = list(nsd.subjects if subjects is None else subjects)
    design = {s: subject_sets(nsd, s, set_size, seed, n_sets, results_dir) for s in subjects}
    needed = np.unique(np.concatenate([ids[sets].ravel() for ids, sets in design.values()]))
    return design, needed.astype(np.int64)


def rows_of(all_ids, ids) -> np.ndarray:
    """Row positions of ``ids`` in the sorted id array ``all_ids`` (ValueError if absent).

    Parameters
    ----------
    all_ids : array-like of int of shape (n_all,)
        Sorted ids (e.g. the nsdIds of the rows of :meth:`NSD.betas`).
    ids : array-like of int
        Ids to find, each one among ``all_ids``.

    Returns
    -------
    rows : ndarray of int of the shape of ``ids``
        ``all_ids[rows] == ids``.

    Examples
    --------
    >>> rows_of([3, 5, 9], [9, 3])
    array([2, 0])
    """
    all_ids = np.asarray(all_ids)
    ids = np.asarray(ids)
    pos = np.clip(np.searchsorted(all_ids, ids), 0, max(all_ids.size - 1, 0))
    if all_ids.size == 0 or not np.array_equal(all_ids[pos], ids):
        raise ValueError("some ids are not among the available ids")
    return pos


@fill_doc
def build_feature_table(nsd, names, ids, **options) -> dict[str, np.ndarray]:
    """Feature matrices ``{name: float32 (len(ids), d)}`` for sorted ``ids``.

    Names are registry names (:func:`brainllm_utils.features.build`) or, on the sandbox,
    ``"truth:<space>"`` for a planted latent space (``lowlevel``, ``category``,
    ``interaction``, ``layout``): the oracle models that the brain data were made from.

    Parameters
    ----------
    %(nsd)s
    names : iterable of str
        Feature spaces (see above).
    ids : array-like of int of shape (n_images,)
        Sorted nsdIds, the rows of every matrix.
    **options
        Passed to :func:`brainllm_utils.features.build` (not to the planted spaces).

    Returns
    -------
    features : dict of str to ndarray of float32 of shape (n_images, n_features)
        One matrix per name.
    """
    out = {}
    ids = np.asarray(ids, dtype=np.int64)
    for name in names:
        if name.startswith("truth:"):
            if not is_sandbox(nsd.root):
                raise ValueError(f"{name}: planted spaces exist only on the sandbox")
            arr = load_truth_array(nsd.root, f"features_{name.split(':', 1)[1]}")
            out[name] = np.asarray(arr[ids], dtype=np.float32)
        else:
            out[name] = _features_pkg.build(name, nsd, ids, **options)
    return out


@contextlib.contextmanager
def _quiet_edges():
    """Silence the estimators' "alpha at the edge of the grid" warnings (the chosen alphas
    are returned, so callers can report the fraction at the edges themselves)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*edge of the grid.*")
        yield


_FEATURE_MEMO: dict = {}


def _features(nsd, name: str, ids, **options) -> np.ndarray:
    """``features.build`` with an in-process memo per (data root, space, options).

    Feature rows depend only on their image, so rows built once are reused by every
    analysis of the session (``features.build`` re-reads the embedding cache on each
    call, which costs seconds per call on the sandbox); only missing images are built.
    """
    ids = np.asarray(ids, dtype=np.int64).ravel()
    key = (str(nsd.root), name, json.dumps(options, sort_keys=True, default=str))
    known_ids, known_X = _FEATURE_MEMO.get(key, (np.zeros(0, np.int64), None))
    missing = np.setdiff1d(ids, known_ids)
    if missing.size:
        new = _features_pkg.build(name, nsd, missing, **options)
        if known_X is None:
            known_ids, known_X = missing, new
        else:
            known_ids = np.concatenate([known_ids, missing])
            known_X = np.concatenate([known_X, new])
        order = np.argsort(known_ids, kind="stable")
        known_ids, known_X = known_ids[order], known_X[order]
        _FEATURE_MEMO[key] = (known_ids, known_X)
    return known_X[np.searchsorted(known_ids, ids)]


@fill_doc
def resolve_subjects(nsd, subjects=None) -> list[str]:
    """Subjects to analyse: ``None`` → every subject with data; ints → ``"subjNN"``.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s

    Returns
    -------
    subjects : list of str
        ``"subjNN"`` names; a subject without data raises ``ValueError`` (naming the
        available ones).
    """
    if subjects is None:
        return list(nsd.subjects)
    out = [subject_name(s) for s in subjects]
    missing = sorted(set(out) - set(nsd.subjects))
    if missing:
        raise ValueError(f"subjects {missing} have no data; available: {nsd.subjects}")
    return out

