"""What every chapter shares: the dataset key, subjects, each subject's RSA images and sample
sets, and feature tables (with an in-process memo)."""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import features as _features_pkg
from .._utils.cache import cache_key
from .._utils.docs import fill_doc
from .._utils.numeric import check_int
from .._utils.paths import get_results_dir
from ..nsd import format_sessions, subject_name
from ..rsa import empty_rows, get_sample_sets, separate_empty_rows
from ..synth import is_sandbox, load_truth_array

__all__ = ["dataset_key", "resolve_subjects", "subject_image_ids", "subject_sets", "rsa_design",
           "rows_of", "build_feature_table", "needs_subjects", "data_used"]


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
def subject_image_ids(nsd, subject, min_repeats: int = 3, sessions=None) -> np.ndarray:
    """Sorted nsdIds the subject saw at least ``min_repeats`` times in the sessions used (the RSA pool).

    Equal to the ``nsd_ids`` that :meth:`NSD.betas` returns for the same ``sessions``
    (by default those on disk), without reading any betas: an image shown 3 times in the
    design but only twice in the sessions on disk is not in the pool.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    %(min_repeats)s
    %(sessions)s

    Returns
    -------
    nsd_ids : ndarray of int64 of shape (n_images,)
        Sorted 0-based nsdIds.
    """
    chosen = nsd.select_sessions(subject, sessions)
    table = nsd.trial_table(subject)
    ids = table["nsdId"].to_numpy()[table["session"].isin(chosen).to_numpy()]
    uniq, counts = np.unique(ids, return_counts=True)
    return uniq[counts >= min_repeats].astype(np.int64)


def _results_dir(nsd, results_dir=None) -> Path:
    return get_results_dir(results_dir) / "rsa" / dataset_key(nsd)


@fill_doc
def subject_sets(nsd, subject, set_size: int = 100, seed: int = 0, n_sets: int | None = None,
                 results_dir=None, sessions=None):
    """A subject's image ids and its saved sample sets.

    The partition of all the subject's 3×-seen images is made once by
    :func:`brainllm_utils.rsa.get_sample_sets` (stored as image ids under
    ``<results>/rsa/<dataset key>/sampling/``) and reused; ``n_sets`` keeps the first sets
    (all of them, with a ``UserWarning``, when the subject has fewer; ``n_sets < 1`` or a
    non-integer is a ``ValueError``).
    When the sessions used are not all the subject's acquired sessions, the images differ,
    and so does the partition: it is stored under
    ``<results>/rsa/<dataset key>/sessions-<subject>-<sessions>/sampling/``.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(results_dir)s
        Sample sets are saved under ``<results_dir>/rsa/<dataset key>/sampling/``.
    %(sessions)s

    Returns
    -------
    ids : ndarray of int64 of shape (n_images,)
        The subject's sorted 3×-seen nsdIds (rows of :meth:`NSD.betas`).
    sets : ndarray of int64 of shape (n_sets, set_size)
        Row positions into ``ids``.
    """
    chosen = nsd.select_sessions(subject, sessions)
    ids = subject_image_ids(nsd, subject, sessions=chosen)
    size = min(check_int(set_size, "set_size", min_value=2), ids.size)
    folder = _results_dir(nsd, results_dir)
    if chosen != list(range(1, nsd.n_sessions(subject) + 1)):
        folder = folder / f"sessions-{subject_name(subject)}-{format_sessions(chosen)}"
    sets = get_sample_sets(subject, ids, set_size=size, seed=seed, results_dir=folder)
    if n_sets is not None:
        if isinstance(n_sets, (bool, np.bool_)) or not isinstance(n_sets, (int, np.integer)) or n_sets < 1:
            raise ValueError(f"n_sets must be a positive int or None, got {n_sets!r}")
        if n_sets > sets.shape[0]:
            warnings.warn(f"n_sets={int(n_sets)}: {subject_name(subject)} has only {sets.shape[0]} sample "
                          f"sets of {size} images; using all {sets.shape[0]}", UserWarning, stacklevel=2)
        sets = sets[: int(n_sets)]
    return ids, sets


@fill_doc
def rsa_design(nsd, subjects=None, set_size: int = 100, seed: int = 0,
               n_sets: int | None = None, results_dir=None, sessions=None):
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
    %(sessions)s

    Returns
    -------
    design : dict of str to (ndarray, ndarray)
        subject → ``(ids, sets)`` as :func:`subject_sets`.
    needed_ids : ndarray of int64 of shape (n_needed,)
        Sorted union of the nsdIds in the used sets: the only images whose features the
        sampled RSA needs.
    """
    subjects = list(nsd.subjects if subjects is None else subjects)
    design = {s: subject_sets(nsd, s, set_size, seed, n_sets, results_dir, sessions) for s in subjects}
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


def _progress_bar(iterable, desc: str, progress: bool = True, **options):
    """tqdm over ``iterable`` (``tqdm.auto``: a widget in a notebook, text elsewhere)."""
    from tqdm.auto import tqdm

    return tqdm(iterable, desc=desc, disable=not progress, **options)


@fill_doc
def build_feature_table(nsd, names, ids, progress: bool = True, **options) -> dict[str, np.ndarray]:
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
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the feature spaces.
    **options
        Passed to :func:`brainllm_utils.features.build` (not to the planted spaces).

    Returns
    -------
    features : dict of str to ndarray of float32 of shape (n_images, n_features)
        One matrix per name.
    """
    out = {}
    ids = np.asarray(ids, dtype=np.int64)
    names = list(names)
    for name in _progress_bar(names, "feature spaces", progress and len(names) > 1):
        if name.startswith("truth:"):
            if not is_sandbox(nsd.root):
                raise ValueError(f"{name}: planted spaces exist only on the sandbox")
            arr = load_truth_array(nsd.root, f"features_{name.split(':', 1)[1]}")
            out[name] = np.asarray(arr[ids], dtype=np.float32)
        else:
            out[name] = _features_pkg.build(name, nsd, ids, **options)
    return out


def _rsa_rows(X, metric: str = "correlation") -> tuple[np.ndarray, int]:
    """A model's feature rows ready for correlation-distance RSA, and how many were empty.

    Rows without content (an image with no COCO instance: an all-zero multi-hot row; no
    known word in a word-vector file) get the book's convention through
    :func:`~brainllm_utils.rsa.separate_empty_rows` (distance 1 to every other image, 0
    between empty ones; other pairs unchanged). Without empty rows ``X`` is returned as is
    (same numbers, same cache keys).
    """
    X = np.asarray(X)
    empty = empty_rows(X, metric)
    if not empty.any():
        return X, 0
    return separate_empty_rows(X, metric)[0], int(empty.sum())


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



def needs_subjects(subjects, analysis: str, instead: str | None = None, n_min: int = 2) -> str | None:
    """A note for the page when an analysis needs more subjects than the run has.

    Leave-one-subject-out and inter-subject ceilings and group tests over subjects need at
    least two subjects; with fewer, a chapter skips them and shows this note (as Markdown)
    instead of stopping.

    Parameters
    ----------
    subjects : sequence
        The subjects of the run.
    analysis : str
        What is skipped, e.g. ``"the leave-one-subject-out noise ceiling"``.
    instead : str, optional
        What is shown in its place (appended to the note).
    n_min : int, default=2
        Subjects the analysis needs.

    Returns
    -------
    note : str or None
        ``None`` when there are enough subjects, else a Markdown note naming the analysis,
        the subjects and ``instead``.

    Examples
    --------
    >>> needs_subjects(["subj01", "subj02"], "the group test") is None
    True
    >>> print(needs_subjects(["subj01"], "the group test"))
    **Skipped** (needs ≥ 2 subjects; this run has 1: subj01): the group test.
    """
    subjects = list(subjects)
    if int(n_min) < 1:
        raise ValueError(f"n_min={n_min}: expected an integer ≥ 1")
    if len(subjects) >= n_min:
        return None
    names = ", ".join(str(s) for s in subjects) or "none"
    note = f"**Skipped** (needs ≥ {int(n_min)} subjects; this run has {len(subjects)}: {names}): {analysis}."
    return f"{note} {instead}" if instead else note


@fill_doc
def data_used(nsd, subjects=None, sessions=None, space: str = "fsaverage"):
    """Which subjects and sessions a run uses: one row per subject, for the top of each page.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(sessions)s
    %(space)s

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``subject``; columns ``sessions`` (used, as ``"1-3,5"``), ``n_sessions``
        (used), ``acquired`` (sessions in the design/``responses.tsv``), ``missing_on_disk``
        (acquired sessions without betas on disk, ``""`` if none), ``images_3x`` (images seen
        3 times in the sessions used) and ``shared_test_images`` (the test set common to the
        subjects, :meth:`~brainllm_utils.nsd.NSD.shared_test_images`). ``table.attrs`` holds
        ``root``, ``space`` and ``sessions_by_subject`` (subject → list of int), for manifests.
    """
    import pandas as pd

    subjects = resolve_subjects(nsd, subjects)
    n_test = int(nsd.shared_test_images(sessions, subjects, space).size) if subjects else 0
    rows, by_subject = [], {}
    for s in subjects:
        chosen = nsd.select_sessions(s, sessions, space)
        on_disk = nsd.sessions(s, space, warn=False)
        acquired = nsd.n_sessions(s)
        missing = sorted(set(range(1, acquired + 1)) - set(on_disk))
        by_subject[s] = [int(v) for v in chosen]
        table = nsd.trial_table(s)
        ids = table["nsdId"].to_numpy()[table["session"].isin(chosen).to_numpy()]
        n_3x = int((np.unique(ids, return_counts=True)[1] >= 3).sum())
        rows.append(dict(subject=s, sessions=format_sessions(chosen), n_sessions=len(chosen),
                         acquired=int(acquired), missing_on_disk=format_sessions(missing),
                         images_3x=n_3x,
                         shared_test_images=n_test))
    columns = ["subject", "sessions", "n_sessions", "acquired", "missing_on_disk", "images_3x",
               "shared_test_images"]
    table = pd.DataFrame(rows, columns=columns).set_index("subject")
    table.attrs.update(root=str(nsd.root), space=space, sessions_by_subject=by_subject)
    return table


# ----------------------------------------------------------------------------- streaming betas
#: Bytes of one block of betas (rows × columns, float32) that the chapters hold at a time when
#: they stream a subject's betas from the memory-mapped cache of :meth:`NSD.betas`. At full NSD
#: size (~10,000 images) a block is ~6,500 vertices; the peak memory of an analysis then does not
#: grow with the number of vertices (``benchmarks/bench_nsd_memory.py``).
BLOCK_BYTES = 256 * 2**20
#: Bytes per chunk of targets that the chapters give the ridge solvers (``memory_budget``): their
#: default, a quarter of the free memory, would let each of several notebook processes take 4 GiB.
SOLVER_BYTES = 256 * 2**20


def _column_blocks(n_rows: int, n_cols: int, block_bytes: int | None = None) -> list[slice]:
    """Contiguous column slices of at most ``block_bytes`` of float32 over ``n_rows`` rows."""
    budget = BLOCK_BYTES if block_bytes is None else int(block_bytes)
    width = max(1, budget // (4 * max(int(n_rows), 1)))
    return [slice(c0, min(int(n_cols), c0 + width)) for c0 in range(0, int(n_cols), width)]


def _read_rows(Y, rows, cols=slice(None)) -> np.ndarray:
    """``Y[rows][:, cols]`` as a new float32 array, reading only those rows and columns.

    ``Y`` may be a memory map (the betas cache): neither the whole map nor whole rows are
    copied (``np.asarray(Y)[rows]`` would copy every column of the rows first). ``rows`` is a
    slice or sorted row positions; ``cols`` a slice or column positions.
    """
    if isinstance(rows, slice) or isinstance(cols, slice):
        out = Y[rows, cols]
    else:
        out = Y[np.ix_(np.asarray(rows), np.asarray(cols))]
    return np.array(out, dtype=np.float32, copy=True)


@dataclass
class _Split:
    """A subject's train/test split over the memory-mapped betas, nothing read yet.

    ``Y`` is the (n_images, n_columns) result of :meth:`NSD.betas` (a memory map when
    cached); ``train_rows``/``test_rows`` are sorted row positions into it.
    """

    subject: str
    Y: np.ndarray
    ids: np.ndarray
    train_rows: np.ndarray
    test_rows: np.ndarray
    columns: np.ndarray
    key: str

    @property
    def train_ids(self) -> np.ndarray:
        return self.ids[self.train_rows]

    @property
    def test_ids(self) -> np.ndarray:
        return self.ids[self.test_rows]

    def blocks(self, block_bytes: int | None = None, per_column: int = 0) -> list[slice]:
        """Column blocks of at most ``block_bytes`` over all the subject's rows and
        ``per_column`` more float32 values per column (e.g. a model's weights)."""
        return _column_blocks(self.Y.shape[0] + int(per_column), self.Y.shape[1], block_bytes)

    def block(self, cols, rows=None):
        """``(Y_train, Y_test, valid)`` of the columns ``cols`` (non-finite values → 0).

        ``valid`` is finite in every image of the subject (train and test), as
        :func:`~brainllm_utils.chapters.ch03_encoding.subject_data`; ``rows`` restricts the
        images read (``"test"``: test rows only, ``valid`` still over every image).
        """
        Yb = _read_rows(self.Y, slice(None), cols)
        valid = np.isfinite(Yb).all(0)
        if not valid.all():
            np.nan_to_num(Yb, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
        return Yb[self.train_rows], Yb[self.test_rows], valid

    def valid(self, block_bytes: int | None = None) -> np.ndarray:
        """Columns finite in every image, computed one block at a time."""
        out = np.empty(self.Y.shape[1], dtype=bool)
        for b in self.blocks(block_bytes):
            out[b] = np.isfinite(np.asarray(self.Y[:, b])).all(0)
        return out


def _split(nsd, subject, space: str = "fsaverage", roi=None, test_ids=None, sessions=None) -> _Split:
    """The train/test split of :func:`~brainllm_utils.chapters.ch03_encoding.subject_data`
    without reading the betas (``roi`` as :meth:`NSD.betas` accepts it; ``sessions`` as
    :meth:`NSD.betas`; ``test_ids`` default: the shared images of those sessions)."""
    Y, ids = nsd.betas(subject, space=space, roi=roi, progress=False, sessions=sessions)
    test_ids = (nsd.shared_test_images(sessions) if test_ids is None
                else np.sort(np.asarray(test_ids)))
    is_test = np.isin(ids, test_ids)
    if is_test.sum() != test_ids.size:
        missing = np.setdiff1d(test_ids, ids)
        raise ValueError(f"{subject}: {missing.size} test images were not seen 3x (e.g. {missing[:5]})")
    key = cache_key("encoding", "subject_data",
                    nsd.betas_key(subject, space=space, roi=roi, sessions=sessions), test_ids)
    return _Split(subject=str(subject), Y=Y, ids=np.asarray(ids), train_rows=np.flatnonzero(~is_test),
                  test_rows=np.flatnonzero(is_test), columns=nsd.columns(subject, space, roi), key=key)
