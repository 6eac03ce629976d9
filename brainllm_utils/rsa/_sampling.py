"""The paper's sampling: seeded, saved partitions of a subject's images into disjoint sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._utils.cache import load_entry
from .._utils.docs import fill_doc
from .._utils.numeric import check_int
from .._utils.paths import atomic_save_npy, get_results_dir

__all__ = ["make_sample_sets", "save_sample_sets", "load_sample_sets", "get_sample_sets"]


@fill_doc
def make_sample_sets(n_images_or_ids, set_size: int = 100, seed: int = 0) -> np.ndarray:
    """Seeded partition of a subject's images into disjoint sets (the paper's sampling).

    Parameters
    ----------
    n_images_or_ids : int or array-like of int of shape (n_images,)
        The number of images, or the subject's image identifiers (e.g. NSD ids, in the
        order of the rows of its betas). With identifiers the partition depends only on
        the *set* of ids and the seed, not on their row order.
    set_size : int, default=100
        Images per set (paper: 100).
    %(seed)s
        The original used an unseeded draw.

    Returns
    -------
    sets : ndarray of int64 of shape (n_images // set_size, set_size)
        Row positions (indices into the subject's rows), disjoint; the
        ``n_images % set_size`` left-over images are in no set (as in the paper). Each row
        is sorted ascending.
    """
    set_size = check_int(set_size, "set_size", min_value=2)
    seed = check_int(seed, "seed", min_value=0)
    if np.ndim(n_images_or_ids) == 0:
        n = check_int(n_images_or_ids, "n_images_or_ids", min_value=0)
        order = np.arange(n)
    else:
        ids = _check_ids(n_images_or_ids)
        n = len(ids)
        order = np.argsort(ids, kind="stable")  # canonical (sorted-id) order
    if n < set_size:
        raise ValueError(f"set_size={set_size}: need at least set_size images, got n={n}")
    rng = np.random.default_rng(seed)
    perm = order[rng.permutation(n)]
    n_sets = n // set_size
    sets = perm[: n_sets * set_size].reshape(n_sets, set_size)
    return np.sort(sets, axis=1).astype(np.int64)


def _check_ids(ids) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise TypeError(f"n_images_or_ids must be an int or a 1-D array of integer image ids, got "
                        f"shape {ids.shape} dtype {ids.dtype}")
    if len(np.unique(ids)) != len(ids):
        raise ValueError("n_images_or_ids: image ids must be unique")
    return ids


def save_sample_sets(path, sets) -> Path:
    """Save sample sets atomically as ``.npy`` (int64, (n_sets, set_size)).

    Parameters
    ----------
    path : str or path-like
        Destination ``.npy`` file.
    sets : array-like of int of shape (n_sets, set_size)
        Row positions or image ids, one row per set.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    return atomic_save_npy(path, np.asarray(sets, dtype=np.int64))


def load_sample_sets(path) -> np.ndarray:
    """Load sample sets saved by :func:`save_sample_sets`.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file of a 2-D integer array.

    Returns
    -------
    sets : ndarray of int64 of shape (n_sets, set_size)
        As saved.

    Raises
    ------
    ValueError
        When the file does not hold a 2-D array.
    """
    sets = np.load(path, allow_pickle=False)
    if sets.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array of sets, got shape {sets.shape}")
    return sets.astype(np.int64)


@fill_doc
def get_sample_sets(
    subject: str,
    n_images_or_ids,
    *,
    set_size: int = 100,
    seed: int = 0,
    results_dir=None,
) -> np.ndarray:
    """Get or create a subject's sample sets, saved once and reused by every analysis.

    The file is ``<results_dir>/sampling/{subject}_sample-sets_size{set_size}_seed{seed}.npy``
    (``results_dir`` → ``$BRAINLLM_RESULTS`` → default, see :mod:`brainllm_utils.paths`).
    When ``n_images_or_ids`` holds image ids, the file stores the *ids* of each set (robust
    to a different row order later) and the returned array holds row positions; a saved
    set whose ids are missing from ``n_images_or_ids`` raises ``ValueError``. A file that
    cannot be read as sets of ``set_size`` is reported, deleted and made again (same seed:
    the same partition); a readable one is never overwritten.

    Parameters
    ----------
    %(subject)s
        Part of the file name.
    n_images_or_ids : int or array-like of int of shape (n_images,)
        As in :func:`make_sample_sets`: the number of images or the subject's image ids
        (in the order of its rows).
    set_size : int, default=100
        Images per set (paper: 100).
    %(seed)s
    %(results_dir)s

    Returns
    -------
    sets : ndarray of int64 of shape (n_sets, set_size)
        Row positions, as :func:`make_sample_sets`.
    """
    set_size = check_int(set_size, "set_size", min_value=2)
    seed = check_int(seed, "seed", min_value=0)
    if isinstance(subject, (bool, np.bool_)) or not (
            (isinstance(subject, str) and subject and "/" not in subject) or isinstance(subject, (int, np.integer))):
        raise ValueError(f"subject must be a name such as 'subj01' (no '/'), got {subject!r}")
    if np.ndim(n_images_or_ids) == 0:
        check_int(n_images_or_ids, "n_images_or_ids", min_value=0)
    else:
        _check_ids(n_images_or_ids)
    path = (
        get_results_dir(results_dir)
        / "sampling"
        / f"{subject}_sample-sets_size{set_size}_seed{seed}.npy"
    )
    with_ids = np.ndim(n_images_or_ids) != 0
    ids = np.asarray(n_images_or_ids) if with_ids else None
    # a file that cannot be read as sets is reported, deleted and made again (same seed:
    # the same partition); a readable one is never overwritten
    stored = load_entry(path, load_sample_sets, check=lambda a: None if a.shape[1] == set_size
                        else f"sets of {a.shape[1]} images, expected {set_size}")
    if stored is None:
        sets = make_sample_sets(n_images_or_ids, set_size=set_size, seed=seed)
        save_sample_sets(path, ids[sets] if with_ids else sets)
        return sets
    if not with_ids:
        if stored.max() >= int(n_images_or_ids):
            raise ValueError(f"{path} indexes beyond {n_images_or_ids} images")
        return stored
    order = np.argsort(ids, kind="stable")
    pos = np.searchsorted(ids[order], stored)
    pos = np.clip(pos, 0, len(ids) - 1)
    if not np.array_equal(ids[order][pos], stored):
        raise ValueError(f"{path} holds image ids that this subject's data lacks")
    return order[pos].astype(np.int64)

