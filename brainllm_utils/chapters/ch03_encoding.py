"""Chapter 03 (encoding, RQ1/RQ2): the paper's encoding analyses, orchestrated over subjects.

Every function here takes an :class:`~brainllm_utils.nsd.NSD` reader and a list of
subjects and returns plain arrays or DataFrames; the chapter ``03_encoding`` only calls these
and plots. The numerics live in :mod:`brainllm_utils.encoding`.

Protocol (``shared/docs/paper_methods.md`` §4):

- **Split.** Per subject, its images seen 3× (betas z-scored per session, averaged over
  repeats); the *test* set is the shared images seen 3× by every subject
  (:meth:`NSD.shared_test_images`, 515 on NSD), the *training* set the subject's other
  images. No image of the test set is used for fitting or for choosing penalties.
- **Encoding.** ``features.build(feature)`` → fsaverage vertices, :class:`RidgeCV` with
  one penalty per vertex (5-fold contiguous CV, mean R²), or any scikit-learn regressor
  (``fit_encoders(estimator=...)``); per-vertex Pearson r on the test images; group
  one-sample t-test over subjects with BH-FDR.
- **Ceiling.** Inter-participant agreement (§1): per vertex, r of each subject's test
  betas with the mean of the other subjects' test betas (NaN → 0).
- **Variance partitioning.** :class:`BandedRidgeCV` on ``[mpnet, word band]`` plus each
  band alone; test R² split into unique and shared parts.
- **In-silico contrasts.** Sentence sets embedded and averaged, pushed through every
  subject's encoder, contrasted and t-tested across subjects.
- **Decoding** is chapter 04 (:mod:`.ch04_decoding`); it shares the split (:func:`subject_data`).

Results are in the one cache (:mod:`brainllm_utils._utils.cache`, kind ``"encoding"``) under
keys of every input: the betas by their key (:meth:`NSD.betas_key`: files, design and
arguments; the brain data are never hashed), the features by content and every argument; a
re-run with the same data is a file read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from ..encoding import (
    CATEGORY_SENTENCES,
    BandedRidgeCV,
    RidgeCV,
    band_weight_grid,
    embed_sentence_sets,
    in_silico_contrast,
    noise_ceiling_relation,
    pearson_r,
    r2_score,
)
from ..stats import ttest_1samp_fdr
from ..synth import load_truth, load_truth_array
from .._utils.cache import cache_key, cached_arrays, resolve_cache
from .._utils.docs import fill_doc
from . import _common
from ._common import (_column_blocks, _features, _quiet_edges, _read_rows, _split, resolve_subjects,
                      subject_image_ids)
from ._common import _progress_bar

__all__ = [
    "DEFAULT_ALPHAS",
    "DEFAULT_CONTRASTS",
    "CONTRAST_CATEGORIES",
    "SubjectData",
    "EncodingResults",
    "subject_data",
    "fit_encoders",
    "group_map",
    "inter_subject_ceiling",
    "noise_ceiling_r",
    "ceiling_summary",
    "shuffled_baseline",
    "subject_mean",
    "roi_table",
    "partition_r2",
    "variance_partition",
    "partition_table",
    "in_silico_contrasts",
    "category_contrast",
    "contrast_agreement",
    "truth_predictability",
    "expected_fraction",
    "truth_roi_table",
    "PAPER_FRACTIONS",
    "PROTOCOLS",
    "FracRidgeResults",
    "fit_encoders_fracridge",
    "ridge_protocols",
]

#: Ridge penalties for encoding (13 log-spaced values, 0.1 … 1e5).
DEFAULT_ALPHAS = np.logspace(-1, 5, 13)
#: The paper's in-silico contrasts (Fig. 2a): people − places, food − people.
DEFAULT_CONTRASTS = (("people", "places"), ("food", "people"))
#: COCO categories defining the image groups of an observed category contrast.
CONTRAST_CATEGORIES = {
    "people": ("person",),
    "food": ("banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog",
             "pizza", "donut", "cake"),
    "animals": ("bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
                "giraffe"),
    "vehicles": ("bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat"),
}


def _roi_arg(nsd, subject, roi, space="fsaverage"):
    """``roi`` as accepted by :meth:`NSD.betas`; ``"streams"`` is the union of its labels."""
    if isinstance(roi, str):
        return nsd.roi_mask(subject, roi, None, space)
    return roi


@dataclass
class SubjectData:
    """One subject's train/test split (rows sorted by nsdId).

    Attributes
    ----------
    subject : str
        The subject.
    train_ids : ndarray of int64 of shape (n_train,)
        nsdIds of the training images (the subject's other 3×-seen images).
    test_ids : ndarray of int64 of shape (n_test,)
        nsdIds of the test images.
    Y_train : ndarray of float32 of shape (n_train, n_columns)
        Training betas (non-finite values set to 0).
    Y_test : ndarray of float32 of shape (n_test, n_columns)
        Test betas (non-finite values set to 0).
    columns : ndarray of int64 of shape (n_columns,)
        Flat indices of the columns in the full space (:meth:`NSD.columns`).
    valid : ndarray of bool of shape (n_columns,)
        Finite in every image.
    key : str, default=""
        Cache key of the split: the betas' key and the test images (no data hashed).
    """

    subject: str
    train_ids: np.ndarray
    test_ids: np.ndarray
    Y_train: np.ndarray  # float32 (n_train, n_cols)
    Y_test: np.ndarray  # float32 (n_test, n_cols)
    columns: np.ndarray  # flat indices of the columns in the full space
    valid: np.ndarray  # bool (n_cols,): finite in every image
    key: str = ""  # cache key of the split: the betas' key and the test images (no data hashed)


@fill_doc
def subject_data(nsd, subject, space: str = "fsaverage", roi=None, test_ids=None,
                 sessions=None) -> SubjectData:
    """Split a subject's 3×-seen images into training and shared test images.

    Columns with a NaN in any image (vertices outside the data) are set to 0 and flagged
    in ``valid``.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    %(space)s
    %(roi_encoding)s
    %(test_ids)s
        Every test image must be among the subject's 3×-seen images (``ValueError``
        otherwise). ``None``: ``nsd.shared_test_images(sessions)``.
    %(sessions)s

    Returns
    -------
    data : SubjectData
        The split, rows sorted by nsdId.
    """
    sp = _split(nsd, subject, space, _roi_arg(nsd, subject, roi, space), test_ids, sessions=sessions)
    # the rows are read straight from the memory-mapped betas into the two outputs (no copy of
    # the whole matrix), and the non-finite values are zeroed in place
    Y_train, Y_test = _read_rows(sp.Y, sp.train_rows), _read_rows(sp.Y, sp.test_rows)
    valid = np.isfinite(Y_train).all(0) & np.isfinite(Y_test).all(0)
    if not valid.all():
        for part in (Y_train, Y_test):
            np.nan_to_num(part, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return SubjectData(
        subject=sp.subject, train_ids=sp.train_ids, test_ids=sp.test_ids,
        Y_train=Y_train, Y_test=Y_test, columns=sp.columns, key=sp.key, valid=valid,
    )


# ----------------------------------------------------------------------------- encoding
@dataclass
class EncodingResults:
    """Per-subject encoders and test accuracies on a common full space.

    Attributes
    ----------
    subjects : list of str
        The subjects, in the order of the rows.
    feature : str
        The feature space encoded.
    r : ndarray of float32 of shape (n_subjects, n_full)
        Test Pearson r per vertex (NaN outside the ROI or where the betas are NaN).
    alphas : ndarray of float32 of shape (n_subjects, n_full)
        Chosen penalty per vertex (NaN outside, and for an estimator that exposes none).
    encoders : dict of str to (ndarray, ndarray)
        subject → ``(coef, intercept)``: float32 ``(n_features, n_columns)`` and
        ``(n_columns,)`` (NaN for an estimator whose ``predict`` is not affine).
    columns : dict of str to ndarray of int
        subject → flat column indices in the full space.
    n_train, n_test : dict of str to int
        subject → number of training and test images.
    """

    subjects: list
    feature: str
    r: np.ndarray
    alphas: np.ndarray
    encoders: dict = field(repr=False)
    columns: dict = field(repr=False)
    n_train: dict = field(default_factory=dict)
    n_test: dict = field(default_factory=dict)

    def to_full(self, subject, values) -> np.ndarray:
        """Put per-column values of ``subject`` into the full space (NaN elsewhere).

        Parameters
        ----------
        subject : str
            One of :attr:`subjects`.
        values : array-like of shape (n_columns,)
            One value per column of the subject (e.g. its encoder's intercepts).

        Returns
        -------
        full : ndarray of float32 of shape (n_full,)
            ``values`` at the subject's columns, NaN elsewhere.
        """
        out = np.full(self.r.shape[1], np.nan, dtype=np.float32)
        out[self.columns[subject]] = values
        return out

    def summary(self):
        """One row per subject: n_train, n_test, mean and 95th-percentile r, median alpha.

        Returns
        -------
        table : pandas.DataFrame
            Indexed by ``subject``; columns ``n_train``, ``n_test``, ``mean_r``,
            ``r_95th`` and ``median_alpha`` (over the finite vertices).
        """
        import pandas as pd

        rows = []
        for i, s in enumerate(self.subjects):
            r = self.r[i][np.isfinite(self.r[i])]
            rows.append(dict(subject=s, n_train=self.n_train.get(s), n_test=self.n_test.get(s),
                             mean_r=float(r.mean()), r_95th=float(np.percentile(r, 95)),
                             median_alpha=float(np.nanmedian(self.alphas[i]))))
        return pd.DataFrame(rows).set_index("subject")


def _scratch(shape, folder) -> np.ndarray:
    """A float32 array of ``shape``: a memory map of an unlinked file in ``folder`` (the
    encoders' weights, ~1 GB per subject on the whole fsaverage surface, stay out of RAM),
    or in memory without a cache folder."""
    if folder is None:
        return np.empty(shape, dtype=np.float32)
    from .._utils.paths import scratch_npy

    # allocated before mapping: a full disk is an error or an in-memory fallback, not SIGBUS
    return scratch_npy(folder, shape, np.float32)


def _full_size(nsd, space):
    if space == "fsaverage":
        return int(sum(nsd.n_vertices()))
    raise ValueError("encoding maps are computed on the fsaverage surface (space='fsaverage')")


@fill_doc
def fit_encoders(nsd, subjects=None, feature: str = "mpnet", space: str = "fsaverage", roi=None,
                 alphas=DEFAULT_ALPHAS, cv: int = 5, device="auto", cache=True,
                 feature_options: Mapping | None = None, sessions=None,
                 shuffle_seed: int | None = None, estimator=None,
                 progress: bool = False) -> EncodingResults:
    """Fit one encoding model per subject (train images) and score it on the test images.

    The vertices are fitted block by block of columns (the betas are memory-mapped); the
    test r is computed here (Pearson r per vertex of ``predict`` on the test images), never
    by the estimator's ``score``.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(feature)s
    %(space_fsaverage)s
    %(roi_encoding)s
    %(alphas_encoding)s
        For :class:`~brainllm_utils.encoding.RidgeCV` (one alpha per vertex).
    %(cv)s
    %(device)s
    %(cache)s
        Entries (kind ``"encoding"``) hold r, alphas and the weights, keyed by the data,
        the features and the arguments.
    feature_options : dict, optional
        Passed to the feature builder (:func:`~brainllm_utils.features.build`).
    %(sessions)s
        The test images are those every subject analysed saw 3 times in them
        (:meth:`~brainllm_utils.nsd.NSD.shared_test_images`).
    shuffle_seed : int, optional
        A baseline: the training images' feature rows are permuted across images with this
        seed (each image gets another image's captions) before fitting; the test features
        stay true. ``None``: the real encoder.
    estimator : scikit-learn regressor, optional
        ``None``: :class:`~brainllm_utils.encoding.RidgeCV` with ``alphas``, ``cv`` and
        ``device`` (one penalty per vertex). Any other multi-output regressor (e.g.
        ``sklearn.linear_model.Ridge(alpha=10)`` or a ``Pipeline``) is cloned for every block
        of vertices and ``alphas``, ``cv`` and ``device`` are not used. Its chosen penalties
        are read from ``best_alphas_``, ``alpha_`` or ``alpha`` (of the last step of a
        pipeline; NaN if none); its encoders ``(coef, intercept)`` are those of the affine
        map ``predict`` computes, probed on the unit vectors (NaN, with a warning, for an
        estimator that is not affine, e.g. k-nearest neighbours). Cache entries are keyed
        on its class and ``get_params(deep=True)``.
    %(progress)s
        Over subjects, and over the blocks of vertices of a subject being fitted
        (``tqdm.auto``: a widget in a notebook).

    Returns
    -------
    results : EncodingResults
        Test r, chosen alphas and encoders of every subject.
    """
    from tqdm.auto import tqdm

    subjects = resolve_subjects(nsd, subjects)
    n_full = _full_size(nsd, space)
    folder = resolve_cache(cache, "encoding")
    alphas = np.asarray(alphas, dtype=np.float64)
    if estimator is not None:
        _check_estimator(estimator)
    R = np.full((len(subjects), n_full), np.nan, dtype=np.float32)
    A = np.full((len(subjects), n_full), np.nan, dtype=np.float32)
    encoders, columns, n_train, n_test = {}, {}, {}, {}
    test_ids = nsd.shared_test_images(sessions, subjects)
    bar = tqdm(subjects, desc=f"encoding {feature}", unit="subject", disable=not progress)
    for i, s in enumerate(bar):
        bar.set_postfix(subject=s)
        d = _split(nsd, s, space, _roi_arg(nsd, s, roi, space), test_ids, sessions=sessions)
        opts = dict(feature_options or {})
        _features(nsd, feature, np.concatenate([d.train_ids, d.test_ids]), **opts)
        X_tr = _features(nsd, feature, d.train_ids, **opts)
        X_te = _features(nsd, feature, d.test_ids, **opts)
        if shuffle_seed is not None:  # captions shuffled across the training images
            X_tr = X_tr[np.random.default_rng(int(shuffle_seed)).permutation(X_tr.shape[0])]

        def compute(d=d, X_tr=X_tr, X_te=X_te):
            # targets are independent (one penalty per vertex): fit block by block of columns
            # streamed from the memory-mapped betas
            n_cols = d.columns.size
            out = dict(r=np.empty(n_cols, np.float32), alphas=np.empty(n_cols, np.float32),
                       coef=_scratch((X_tr.shape[1], n_cols), folder),
                       intercept=np.empty(n_cols, np.float32))
            # per column: its betas, and its weights (float32, then float64 when predicting)
            blocks = d.blocks(per_column=3 * X_tr.shape[1])
            for b in tqdm(blocks, desc=f"{d.subject} vertices", unit="block", leave=False,
                          disable=not progress or len(blocks) < 2):
                Y_tr, Y_te, valid = d.block(b)
                if estimator is None:
                    with _quiet_edges():
                        est = RidgeCV(alphas=alphas, cv=cv, device=device,
                                      memory_budget=_common.SOLVER_BYTES).fit(X_tr, Y_tr)
                    r = pearson_r(est.predict(X_te), Y_te).astype(np.float32)
                    chosen, coef, intercept = est.best_alphas_, est.coef_, est.intercept_
                else:
                    r, chosen, coef, intercept = _fit_block(estimator, X_tr, Y_tr, X_te, Y_te)
                r[~valid] = np.nan
                out["r"][b], out["alphas"][b] = r, chosen
                out["coef"][:, b], out["intercept"][b] = coef, intercept
                del Y_tr, Y_te
            return out

        if estimator is None:  # the default RidgeCV: the key of earlier versions
            key = cache_key("encoding", "fit_encoders", d.key, feature, opts, X_tr, X_te, alphas, int(cv))
        else:
            key = cache_key("encoding", "fit_encoders", d.key, feature, opts, X_tr, X_te,
                            "estimator", _estimator_identity(estimator))
        out = cached_arrays("encoding", key, ("r", "alphas", "coef", "intercept"), compute, cache=cache,
                            folder=folder, mmap=True)
        R[i, d.columns] = out["r"]
        A[i, d.columns] = out["alphas"]
        encoders[s] = (out["coef"], out["intercept"])
        columns[s] = d.columns
        n_train[s], n_test[s] = int(d.train_ids.size), int(d.test_ids.size)
    return EncodingResults(subjects, feature, R, A, encoders, columns, n_train, n_test)


def _check_estimator(estimator):
    missing = [m for m in ("fit", "predict", "get_params") if not callable(getattr(estimator, m, None))]
    if missing or isinstance(estimator, type):
        raise TypeError(f"estimator must be a scikit-learn regressor instance (fit, predict, get_params) "
                        f"or None, got {estimator!r} (missing {missing or 'an instance'})")


def _keyable(v):
    """A cache-key part for one estimator parameter (arrays by content, objects by class and repr)."""
    if v is None or isinstance(v, (bool, str, int, float, np.integer, np.floating, np.ndarray)):
        return v
    if isinstance(v, (list, tuple)):
        return [_keyable(x) for x in v]
    if isinstance(v, Mapping):
        return {str(k): _keyable(x) for k, x in v.items()}
    name = f"{type(v).__module__}.{type(v).__qualname__}"
    if hasattr(v, "get_params") and not isinstance(v, type):  # a sub-estimator: its params are
        return f"estimator:{name}"                            # in the deep dict as well
    if isinstance(v, type) or callable(v) and hasattr(v, "__qualname__"):
        return f"callable:{getattr(v, '__module__', '')}.{v.__qualname__}"
    import sys

    with np.printoptions(threshold=sys.maxsize):
        return f"object:{name}:{v!r}"


def _estimator_identity(estimator):
    """Class and ``get_params(deep=True)`` of ``estimator``, as cache-key parts."""
    cls = type(estimator)
    params = estimator.get_params(deep=True)
    return [f"{cls.__module__}.{cls.__qualname__}", {k: _keyable(params[k]) for k in sorted(params)}]


def _chosen_alphas(est, n_targets):
    """The penalty per target an estimator chose or was given (NaN if it has none)."""
    final = est.steps[-1][1] if hasattr(est, "steps") else est
    for name in ("best_alphas_", "alpha_", "alpha"):
        v = getattr(final, name, None)
        if v is None:
            continue
        try:
            a = np.asarray(v, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            continue
        if a.size in (1, n_targets):
            return np.broadcast_to(a, (n_targets,)).astype(np.float32)
    return np.full(n_targets, np.nan, np.float32)


def _fit_block(estimator, X_tr, Y_tr, X_te, Y_te):
    """Clone, fit and test a generic estimator on one block of vertices.

    Returns the test r (float32), the chosen penalties and the affine encoder
    ``(coef, intercept)`` read from ``predict`` (NaN if ``predict`` is not affine).
    """
    import warnings

    from sklearn.base import clone

    est = clone(estimator)
    with _quiet_edges():
        est.fit(X_tr, Y_tr)
    k = Y_tr.shape[1]

    def pred(X):
        P = np.asarray(est.predict(X), dtype=np.float64)
        if P.size != X.shape[0] * k:
            raise ValueError(f"estimator {type(est).__name__}: predict gave shape {P.shape} for "
                             f"{X.shape[0]} samples and {k} targets")
        return P.reshape(X.shape[0], k)

    P = pred(X_te)
    r = pearson_r(P, np.asarray(Y_te, np.float64)).astype(np.float32)
    p = X_tr.shape[1]
    probe = pred(np.vstack([np.zeros((1, p), X_tr.dtype), np.eye(p, dtype=X_tr.dtype)]))
    intercept, coef = probe[0], probe[1:] - probe[0]
    affine = np.asarray(X_te, np.float64) @ coef + intercept
    if not np.allclose(affine, P, rtol=1e-4, atol=1e-4 * (np.abs(P).max() + 1.0)):
        warnings.warn(f"estimator {type(est).__name__} is not affine in its features: its encoders "
                      "(coef, intercept) are NaN (in-silico contrasts need a linear estimator)",
                      UserWarning, stacklevel=4)
        coef, intercept = np.full((p, k), np.nan), np.full(k, np.nan)
    return r, _chosen_alphas(est, k), coef, intercept


@fill_doc
def group_map(values, q: float = 0.05, mask=None) -> dict:
    """Group statistics of per-subject maps: one-sample t-test over subjects, BH-FDR.

    Parameters
    ----------
    values : array-like of shape (n_subjects, n_vertices)
        E.g. ``EncodingResults.r``; NaNs (outside the data) are set to 0 as in the paper.
    %(q)s
    mask : array-like of bool of shape (n_vertices,), optional
        Vertices tested (FDR over these only); others get p = NaN.

    Returns
    -------
    result : dict of str to ndarray of shape (n_vertices,)
        ``mean``, ``t``, ``p``, ``p_fdr``, ``significant`` (p_fdr < q) and
        ``thresholded`` (mean where significant, NaN elsewhere).
    """
    v = np.nan_to_num(np.asarray(values, dtype=np.float64))
    if v.ndim != 2 or v.shape[0] < 2:
        raise ValueError("values: need (n_subjects >= 2, n_vertices)")
    mask = np.ones(v.shape[1], bool) if mask is None else np.asarray(mask, bool)
    out = {k: np.full(v.shape[1], np.nan) for k in ("t", "p", "p_fdr")}
    res = ttest_1samp_fdr(v[:, mask], q=q)
    for k in ("t", "p", "p_fdr"):
        out[k][mask] = res[k]
    out["mean"] = v.mean(0)
    with np.errstate(invalid="ignore"):
        out["significant"] = np.where(np.isfinite(out["p_fdr"]), out["p_fdr"] < q, False)
    out["thresholded"] = np.where(out["significant"], out["mean"], np.nan)
    return out


@fill_doc
def inter_subject_ceiling(nsd, subjects=None, space: str = "fsaverage", roi=None,
                          sessions=None) -> np.ndarray:
    """Inter-participant agreement per vertex (paper_methods §1, Fig. 1d).

    For each subject, the Pearson r over the shared test images between its betas and
    the mean betas of the other subjects, per vertex; NaN → 0.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
        At least 2.
    %(space_fsaverage)s
    %(roi_encoding)s
        The same for every subject.
    %(sessions)s

    Returns
    -------
    ceiling : ndarray of float32 of shape (n_subjects, n_full)
        NaN outside ``roi``. Average over subjects for the paper's map.
    """
    subjects = resolve_subjects(nsd, subjects)
    if len(subjects) < 2:
        raise ValueError(f"the inter-participant ceiling needs ≥ 2 subjects (got {subjects}); "
                         "use the repeat-based noise_ceiling_r with one subject")
    test_ids = nsd.shared_test_images(sessions, subjects)
    data = [_split(nsd, s, space, _roi_arg(nsd, s, roi, space), test_ids, sessions=sessions) for s in subjects]
    cols = data[0].columns
    if any(not np.array_equal(d.columns, cols) for d in data):
        raise ValueError("subjects have different columns; pass a common roi on fsaverage")
    out = np.full((len(subjects), _full_size(nsd, space)), np.nan, dtype=np.float32)
    # Only the test rows are held, one block of columns at a time for every subject; a column's
    # validity (finite in every image of the subject) is read from all its rows block by block.
    n_rows = max(d.Y.shape[0] for d in data)
    for b in _column_blocks(n_rows, cols.size):
        Y = np.empty((len(data), data[0].test_rows.size, b.stop - b.start), dtype=np.float32)
        for k, d in enumerate(data):
            valid = np.isfinite(np.asarray(d.Y[:, b])).all(0)
            Yk = _read_rows(d.Y, d.test_rows, b)
            np.nan_to_num(Yk, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
            Yk[:, ~valid] = np.nan
            Y[k] = Yk
            del Yk
        total = np.nansum(Y, axis=0)
        count = np.isfinite(Y).sum(0)
        for i in range(len(subjects)):
            own = np.nan_to_num(Y[i])
            others = (total - own) / np.maximum(count - np.isfinite(Y[i]), 1)
            r = pearson_r(Y[i], others)
            out[i, cols[b]] = np.nan_to_num(r)
        del Y, total, count
    return out


@fill_doc
def noise_ceiling_r(nsd, subjects=None, n_trials: float = 3) -> np.ndarray:
    """NSD's noise ceiling as a correlation: ``sqrt(NC/100)`` per vertex and subject.

    ``NC = 100·ncsnr²/(ncsnr² + 1/n)`` (:meth:`NSD.noise_ceiling`) is the variance
    fraction explainable in an ``n``-trial average; its square root is the highest
    Pearson r a model can reach. Unlike the inter-participant agreement it does not ask
    subjects to share their tuning.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    n_trials : float, default=3
        Trials averaged per image (``n`` above).

    Returns
    -------
    ceiling_r : ndarray of float32 of shape (n_subjects, n_full)
        Per subject and fsaverage vertex (NaN → 0).
    """
    subjects = resolve_subjects(nsd, subjects)
    return np.stack([np.sqrt(np.nan_to_num(nsd.noise_ceiling(s, "fsaverage", n_trials)) / 100.0)
                     for s in subjects]).astype(np.float32)


@fill_doc
def ceiling_summary(r, ceiling, nsd=None, subject=None, atlas: str = "streams", mask=None,
                    mask_name: str = "masked"):
    """Encoding r against a ceiling: the overall relation and per-ROI medians.

    Parameters
    ----------
    r, ceiling : array-like of shape (n_vertices,)
        E.g. the group-mean test r and the mean inter-participant agreement.
    nsd : NSD, optional
        With it, a per-ROI table (median r, median ceiling and their ratio where the
        median ceiling exceeds 0.05) is added.
    subject : str, optional
        Whose atlas labels the ROIs (default: the first subject with data).
    %(atlas_streams)s
    mask : bool array-like of shape (n_vertices,), optional
        The overall relation only over these vertices (e.g. nsdgeneral: over the whole
        surface, non-visual cortex at r ≈ 0 and ceiling ≈ 0 makes any map correlate with
        the ceiling). The per-ROI table is not affected.
    mask_name : str, default="masked"
        What the mask is, recorded in the relation (e.g. ``"nsdgeneral"``).

    Returns
    -------
    relation : dict
        From :func:`~brainllm_utils.encoding.noise_ceiling_relation` (``min_nc=0.1``), plus
        ``vertices``: ``mask_name``, or ``"all"`` without a mask.
    table : pandas.DataFrame or None
        Indexed by ROI: ``n``, ``median_r``, ``median_ceiling``, ``fraction``; ``None``
        without ``nsd``.
    """
    import pandas as pd

    r = np.asarray(r, dtype=np.float64)
    c = np.asarray(ceiling, dtype=np.float64)
    if mask is None:
        rel = dict(noise_ceiling_relation(r, c, min_nc=0.1), vertices="all")
    else:
        mask = np.asarray(mask)
        if mask.dtype != bool or mask.shape != r.shape or c.shape != r.shape:
            raise ValueError(f"mask: expected a bool array of shape {r.shape} (the vertices of r and "
                             f"ceiling {c.shape}), got {mask.dtype} {mask.shape}")
        rel = dict(noise_ceiling_relation(r[mask], c[mask], min_nc=0.1), vertices=str(mask_name))
    table = None
    if nsd is not None:
        subject = subject or nsd.subjects[0]
        labels = nsd.roi_volume(subject, atlas).ravel()
        rows = []
        for code, name in sorted(nsd.roi_labels(atlas).items()):
            sel = (labels == code) & np.isfinite(r) & np.isfinite(c)
            if code > 0 and sel.any():
                rows.append(dict(roi=name, n=int(sel.sum()), median_r=np.median(r[sel]),
                                 median_ceiling=np.median(c[sel]),
                                 fraction=(np.median(r[sel]) / np.median(c[sel])
                                           if np.median(c[sel]) > 0.05 else np.nan)))
        table = pd.DataFrame(rows).set_index("roi")
    return rel, table


@fill_doc
def shuffled_baseline(nsd, enc: EncodingResults, roi: str = "nsdgeneral", seed: int = 0,
                      alphas=DEFAULT_ALPHAS, cv: int = 5, device="auto", cache=True,
                      feature_options: Mapping | None = None, sessions=None):
    """The encoders of ``enc`` against encoders trained on captions shuffled across images.

    For each subject of ``enc``, the same encoder (feature space, penalties, folds, test
    images) is fitted on the ``roi`` vertices with the training images' features permuted
    across images (:func:`fit_encoders` with ``shuffle_seed``): what an encoder with the
    right marginal statistics but no image-caption correspondence scores. Both are
    summarised by the mean test r over the vertices of ``roi`` that both scored.

    Parameters
    ----------
    %(nsd)s
    enc : EncodingResults
        The real encoders (:func:`fit_encoders`).
    roi : str, default="nsdgeneral"
        Atlas whose vertices (union of its labels) are compared.
    seed : int, default=0
        Seed of the permutation.
    %(alphas_encoding)s
    %(cv)s
    %(device)s
    %(cache)s
    feature_options : dict, optional
        As for :func:`fit_encoders` (use the same as ``enc``).
    %(sessions)s

    Returns
    -------
    table : pandas.DataFrame
        Indexed by subject: ``r`` and ``r_shuffled`` (mean test r over the vertices),
        ``n_vertices``; ``attrs["roi"] = roi``.
    """
    import pandas as pd

    if not isinstance(enc, EncodingResults):
        raise ValueError(f"enc: expected EncodingResults (fit_encoders), got {type(enc).__name__}")
    shuf = fit_encoders(nsd, enc.subjects, feature=enc.feature, roi=roi, alphas=alphas, cv=cv, device=device,
                        cache=cache, feature_options=feature_options, sessions=sessions, shuffle_seed=seed)
    rows = []
    for i, s in enumerate(enc.subjects):
        both = np.isfinite(enc.r[i]) & np.isfinite(shuf.r[i])
        if not both.any():
            raise ValueError(f"{s}: no vertex of {roi!r} scored by both the encoder and the baseline")
        rows.append(dict(subject=s, r=float(enc.r[i][both].mean()), r_shuffled=float(shuf.r[i][both].mean()),
                         n_vertices=int(both.sum())))
    out = pd.DataFrame(rows).set_index("subject")
    out.attrs["roi"] = roi
    return out


def subject_mean(values) -> np.ndarray:
    """Mean over subjects (axis 0) ignoring NaN; NaN where no subject has a value.

    Parameters
    ----------
    values : array-like of shape (n_subjects, n_vertices)
        Per-subject maps.

    Returns
    -------
    mean : ndarray of float64 of shape (n_vertices,)
        The mean of the finite values of each vertex (no warning for all-NaN columns).
    """
    v = np.asarray(values, dtype=np.float64)
    n = np.isfinite(v).sum(0)
    total = np.where(np.isfinite(v), v, 0.0).sum(0)
    return np.where(n > 0, total / np.maximum(n, 1), np.nan)


@fill_doc
def roi_table(nsd, values, subjects, atlas: str = "streams", name: str = "value",
              stat: str = "mean"):
    """Long DataFrame (``subject``, ``roi``, ``name``) of per-ROI averages of per-subject maps.

    Parameters
    ----------
    %(nsd)s
    values : array-like of shape (n_subjects, n_full)
        Per-subject maps on the full space (rows in the order of ``subjects``).
    subjects : list of str
        The subjects of the rows.
    %(atlas_streams)s
    name : str, default="value"
        Name of the value column.
    stat : {"mean", "median"}, default="mean"
        Statistic over the ROI's finite vertices.

    Returns
    -------
    table : pandas.DataFrame
        One row per subject and ROI: ``subject``, ``roi`` and ``name``.
    """
    import pandas as pd

    values = np.asarray(values)
    rows = []
    for i, s in enumerate(subjects):
        df = nsd.roi_values(s, atlas, values[i])
        agg = df.groupby("roi", sort=False)["value"].agg(stat)
        rows += [dict(subject=s, roi=k, **{name: float(v)}) for k, v in agg.items()]
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- variance partitioning
@fill_doc
def partition_r2(Xa_train, Xb_train, Y_train, Xa_test, Xb_test, Y_test, alphas=DEFAULT_ALPHAS,
                 cv: int = 5, band_weights=None, device="auto", memory_budget=None) -> dict:
    """Test-set variance partitioning of two feature bands (one subject, all targets).

    Fits :class:`~brainllm_utils.encoding.BandedRidgeCV` on ``[Xa, Xb]`` and
    :class:`~brainllm_utils.encoding.RidgeCV` on each band alone (training data), then on
    the test data: ``joint`` = R²_ab, ``r2_a``, ``r2_b``, ``unique_a = R²_ab − R²_b``,
    ``unique_b = R²_ab − R²_a``, ``shared = R²_a + R²_b − R²_ab``; ``split_a``/``split_b``
    are the banded model's own split (product measure) and ``weight_a`` its band weight
    γ_a per target. Arrays (n_targets,) float64.

    Parameters
    ----------
    Xa_train, Xb_train : array-like of shape (n_train, n_features_a) and (n_train, n_features_b)
        The two feature bands of the training images.
    Y_train : array-like of shape (n_train, n_targets)
        Training responses.
    Xa_test, Xb_test : array-like of shape (n_test, n_features_a) and (n_test, n_features_b)
        The bands of the test images.
    Y_test : array-like of shape (n_test, n_targets)
        Test responses.
    %(alphas_encoding)s
    %(cv)s
    band_weights : array-like of shape (n_weights, 2), optional
        Candidate band weights (``None``: :func:`~brainllm_utils.encoding.band_weight_grid`
        of 2 bands).
    %(device)s
    %(memory_budget)s

    Returns
    -------
    partition : dict of str to ndarray of shape (n_targets,)
        ``joint``, ``r2_a``, ``r2_b``, ``unique_a``, ``unique_b``, ``shared``,
        ``split_a``, ``split_b``, ``weight_a``.
    """
    grid = band_weight_grid(2) if band_weights is None else band_weights
    with _quiet_edges():
        banded = BandedRidgeCV(alphas=alphas, cv=cv, device=device, band_weights=grid,
                               memory_budget=memory_budget)
        banded.fit([Xa_train, Xb_train], Y_train)
        joint = r2_score(Y_test, banded.predict([Xa_test, Xb_test]))
        split = banded.score_targets([Xa_test, Xb_test], Y_test, metric="r2", split=True)
        r2 = [r2_score(Y_test, RidgeCV(alphas=alphas, cv=cv, device=device, memory_budget=memory_budget)
                       .fit(Xtr, Y_train).predict(Xte))
              for Xtr, Xte in ((Xa_train, Xa_test), (Xb_train, Xb_test))]
    return dict(joint=joint, r2_a=r2[0], r2_b=r2[1], unique_a=joint - r2[1],
                unique_b=joint - r2[0], shared=r2[0] + r2[1] - joint,
                split_a=split[0], split_b=split[1], weight_a=banded.best_band_weights_[0])


@fill_doc
def variance_partition(nsd, subjects=None, bands=("mpnet", "mpnet_word_avg"), roi="streams",
                       alphas=DEFAULT_ALPHAS, cv: int = 5, n_ratios: int = 5, device="auto",
                       cache=True, sessions=None, progress: bool = True) -> dict:
    """Banded-ridge variance partitioning of two feature bands on the test images.

    Per subject: :class:`BandedRidgeCV` on both bands (band weights and alpha per vertex)
    and :class:`RidgeCV` on each band alone, all fitted on the training images. On the
    test images, with ``R²_ab`` (banded), ``R²_a`` and ``R²_b``:
    ``unique_a = R²_ab − R²_b``, ``unique_b = R²_ab − R²_a``,
    ``shared = R²_a + R²_b − R²_ab`` (Lescroart et al. 2015; de Heer et al. 2017). The
    banded model's own split of its prediction (``split_a``, ``split_b``: himalaya's
    product measure, summing to ``R²_ab``) is returned as well.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    bands : (str, str), default=("mpnet", "mpnet_word_avg")
        The two feature spaces ``a`` and ``b``.
    roi : str, (str, str or int) or ndarray of bool, default="streams"
        Vertices to model (as :func:`subject_data`; ``"streams"``: the union of its
        labels).
    %(alphas_encoding)s
    %(cv)s
    n_ratios : int, default=5
        Band-weight ratios tried (:func:`~brainllm_utils.encoding.band_weight_grid`).
    %(device)s
    %(cache)s
    %(sessions)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the subjects.

    Returns
    -------
    partition : dict
        Arrays (n_subjects, n_full) — ``joint``, ``r2_a``, ``r2_b``, ``unique_a``,
        ``unique_b``, ``shared``, ``split_a``, ``split_b``, ``weight_a`` (band weight γ_a)
        — plus ``subjects`` and ``bands``. NaN outside ``roi``.
    """
    if len(bands) != 2:
        raise ValueError("variance_partition takes exactly two bands")
    subjects = resolve_subjects(nsd, subjects)
    n_full = _full_size(nsd, "fsaverage")
    names = ("joint", "r2_a", "r2_b", "unique_a", "unique_b", "shared", "split_a", "split_b", "weight_a")
    out = {k: np.full((len(subjects), n_full), np.nan, dtype=np.float32) for k in names}
    folder = resolve_cache(cache, "encoding")
    alphas = np.asarray(alphas, dtype=np.float64)
    grid = band_weight_grid(2, n_ratios)
    test_ids = nsd.shared_test_images(sessions, subjects)
    for i, s in enumerate(_progress_bar(subjects, "variance partition", progress, unit="subject")):
        d = _split(nsd, s, "fsaverage", _roi_arg(nsd, s, roi), test_ids, sessions=sessions)
        for b in bands:
            _features(nsd, b, np.concatenate([d.train_ids, d.test_ids]))
        Xa_tr, Xb_tr = (_features(nsd, b, d.train_ids) for b in bands)
        Xa_te, Xb_te = (_features(nsd, b, d.test_ids) for b in bands)

        def compute(d=d, Xa_tr=Xa_tr, Xb_tr=Xb_tr, Xa_te=Xa_te, Xb_te=Xb_te):
            # every vertex has its own band weights and penalty: fit block by block of columns
            res = {k: np.empty(d.columns.size, np.float32) for k in names}
            # per column: its betas, and the weights of the banded and the two single models
            for blk in d.blocks(per_column=6 * (Xa_tr.shape[1] + Xb_tr.shape[1])):
                Y_tr, Y_te, valid = d.block(blk)
                part = partition_r2(Xa_tr, Xb_tr, Y_tr, Xa_te, Xb_te, Y_te, alphas=alphas,
                                    cv=cv, band_weights=grid, device=device,
                                    memory_budget=_common.SOLVER_BYTES)
                for k, v in part.items():
                    res[k][blk] = np.where(valid, np.asarray(v, np.float32), np.nan)
                del Y_tr, Y_te, part
            return res

        key = cache_key("encoding", "variance_partition", d.key, list(bands), Xa_tr, Xb_tr, Xa_te, Xb_te,
                        alphas, int(cv), grid)
        res = cached_arrays("encoding", key, names, compute, cache=cache, folder=folder)
        for k in names:
            out[k][i, d.columns] = res[k]
    out["subjects"] = subjects
    out["bands"] = list(bands)
    return out


@fill_doc
def partition_table(nsd, partition: dict, atlas: str = "streams"):
    """Per-ROI means (over vertices, then subjects ± SEM) of a :func:`variance_partition`.

    Parameters
    ----------
    %(nsd)s
    partition : dict
        From :func:`variance_partition`.
    %(atlas_streams)s

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ROI with columns ``unique_<band a>``, ``unique_<band b>``, ``shared``,
        ``joint``, ``weight_<band a>`` and their ``*_sem``; R² in test units.
    """
    import pandas as pd

    a, b = partition["bands"]
    parts = {f"unique_{a}": "unique_a", f"unique_{b}": "unique_b", "shared": "shared",
             "joint": "joint", f"weight_{a}": "weight_a"}
    frames = []
    for label, key in parts.items():
        df = roi_table(nsd, partition[key], partition["subjects"], atlas, name=label)
        frames.append(df.set_index(["subject", "roi"]))
    df = pd.concat(frames, axis=1).reset_index()
    g = df.groupby("roi", sort=False)
    mean = g[list(parts)].mean()
    sem = g[list(parts)].sem().add_suffix("_sem")
    return pd.concat([mean, sem], axis=1)


# ----------------------------------------------------------------------------- in-silico contrasts
@fill_doc
def in_silico_contrasts(results: EncodingResults, sets: Mapping[str, Sequence[str]] | None = None,
                        contrasts=DEFAULT_CONTRASTS, fdr: bool = True, q: float = 0.05,
                        embed_fn=None, **embed_kwargs) -> dict:
    """Contrast maps of sentence sets through every subject's encoder (Fig. 2a).

    Each set is embedded sentence by sentence and averaged
    (:func:`~brainllm_utils.encoding.embed_sentence_sets`); its predicted response is
    ``mean_embedding @ coef + intercept`` per subject; ``A − B`` is t-tested across
    subjects per vertex (:func:`~brainllm_utils.encoding.in_silico_contrast`).

    Parameters
    ----------
    results : EncodingResults
        From :func:`fit_encoders` (the encoders of every subject).
    sets : dict of str to list of str, optional
        Set name → sentences. Default :data:`~brainllm_utils.encoding.CATEGORY_SENTENCES`
        (people, places, food).
    contrasts : sequence of (str, str), default=DEFAULT_CONTRASTS
        ``(A, B)`` names of sets.
    fdr : bool, default=True
        Add BH-FDR corrected p-values.
    %(q)s
        Also the threshold of the uncorrected ``significant``.
    embed_fn : callable, optional
        ``embed_fn(sentences, **embed_kwargs) -> (n, d)``; default MPNet
        (:func:`~brainllm_utils.encoding.embed_sentence_sets`).
    **embed_kwargs
        Passed to ``embed_fn``.

    Returns
    -------
    maps : dict of str to dict of str to ndarray
        ``"A − B"`` → dict of full-space arrays: ``diff`` (n_subjects, n_full), ``mean``,
        ``t``, ``p``, ``significant`` (p < q uncorrected, the paper's setting) and, with
        ``fdr``, ``p_fdr``, ``significant_fdr``; all NaN where a subject has no column.
    """
    sets = dict(CATEGORY_SENTENCES if sets is None else sets)
    missing = sorted({n for ab in contrasts for n in ab} - set(sets))
    if missing:
        raise ValueError(f"contrasts name unknown sets {missing}; sets: {sorted(sets)}")
    emb = embed_sentence_sets(sets, embed_fn=embed_fn, **embed_kwargs)
    common = np.ones(results.r.shape[1], bool)
    for s in results.subjects:
        m = np.zeros_like(common)
        m[results.columns[s]] = True
        common &= m
    out = {}
    for a, b in contrasts:
        encs = []
        for s in results.subjects:
            coef, icpt = results.encoders[s]
            # the subject's columns that are common to every subject, in full-space order
            where = np.flatnonzero(common[results.columns[s]])
            where = where[np.argsort(results.columns[s][where], kind="stable")]
            encs.append(_BlockEncoder(coef, icpt, where))
        res = in_silico_contrast(encs, emb[a], emb[b], fdr=fdr, q=q)
        full = {}
        for k, v in res.items():
            v = np.asarray(v)
            arr = np.full(v.shape[:-1] + (common.size,), np.nan if v.dtype != bool else False,
                          dtype=v.dtype if v.dtype == bool else np.float64)
            arr[..., common] = v
            full[k] = arr
        out[f"{a} − {b}"] = full
    return out


class _BlockEncoder:
    """A linear encoder ``emb @ coef[:, cols] + intercept[cols]`` predicted block by block of
    columns: ``coef`` (often a memory map of the cache) is never copied whole nor cast whole
    to float64."""

    def __init__(self, coef, intercept, cols, block: int = 16384):
        self.coef, self.intercept, self.cols, self.block = coef, intercept, np.asarray(cols), int(block)

    def predict(self, emb):
        emb = np.atleast_2d(np.asarray(emb, dtype=np.float64))
        out = np.empty((emb.shape[0], self.cols.size), dtype=np.float64)
        for c0 in range(0, self.cols.size, self.block):
            c = self.cols[c0:c0 + self.block]
            out[:, c0:c0 + c.size] = (emb @ np.asarray(self.coef[:, c], np.float64)
                                      + np.asarray(self.intercept[c], np.float64))
        return out


@fill_doc
def category_contrast(nsd, subjects, cats_a: Sequence[str], cats_b: Sequence[str],
                      space: str = "fsaverage", roi=None, sessions=None) -> dict:
    """Observed response difference between images of two category groups, per subject.

    Images containing a category of ``cats_a`` and none of ``cats_b`` versus the reverse,
    over each subject's 3×-seen **training** images (the test images are left out, so the
    check is independent of the test accuracy). Category names not in the dataset are
    ignored.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    cats_a, cats_b : sequence of str
        COCO category names of the two groups (e.g. :data:`CONTRAST_CATEGORIES` values).
    %(space_fsaverage)s
    %(roi_encoding)s
    %(sessions)s

    Returns
    -------
    contrast : dict
        ``diff`` (n_subjects, n_full) mean betas(A) − mean betas(B) (NaN when a group is
        empty), ``n_a``, ``n_b`` (images per group and subject).
    """
    subjects = resolve_subjects(nsd, subjects)
    n_full = _full_size(nsd, space)
    out = np.full((len(subjects), n_full), np.nan, dtype=np.float32)
    n_a, n_b = [], []
    test_ids = nsd.shared_test_images(sessions, subjects)
    for i, s in enumerate(subjects):
        d = _split(nsd, s, space, _roi_arg(nsd, s, roi, space), test_ids, sessions=sessions)
        multi, names = nsd.categories(d.train_ids)
        col = {n: j for j, n in enumerate(names)}
        ja = [col[c] for c in cats_a if c in col]
        jb = [col[c] for c in cats_b if c in col]
        if not ja or not jb:
            raise ValueError(f"no category of {cats_a if not ja else cats_b} in this dataset")
        has_a, has_b = multi[:, ja].any(1), multi[:, jb].any(1)
        sel_a, sel_b = has_a & ~has_b, has_b & ~has_a
        n_a.append(int(sel_a.sum()))
        n_b.append(int(sel_b.sum()))
        if sel_a.any() and sel_b.any():
            for blk in d.blocks():  # one block of columns of the memory-mapped betas at a time
                Y_tr, _, valid = d.block(blk)
                diff = Y_tr[sel_a].mean(0) - Y_tr[sel_b].mean(0)
                out[i, d.columns[blk]] = np.where(valid, diff, np.nan)
                del Y_tr
    return dict(diff=out, n_a=np.array(n_a), n_b=np.array(n_b))


def contrast_agreement(predicted, observed, mask=None) -> np.ndarray:
    """Per-subject Pearson r across vertices between predicted and observed contrast maps.

    Parameters
    ----------
    predicted, observed : array-like of shape (n_subjects, n_full)
        Contrast maps (e.g. :func:`in_silico_contrasts` ``diff`` and
        :func:`category_contrast` ``diff``); non-finite vertices are dropped.
    mask : array-like of bool of shape (n_full,), optional
        Restricts the vertices (e.g. nsdgeneral).

    Returns
    -------
    r : ndarray of shape (n_subjects,)
        Pearson r per subject (NaN with fewer than 3 vertices).
    """
    P, O = np.asarray(predicted, np.float64), np.asarray(observed, np.float64)
    out = []
    for p, o in zip(P, O):
        ok = np.isfinite(p) & np.isfinite(o)
        if mask is not None:
            ok &= np.asarray(mask, bool)
        out.append(float(pearson_r(p[ok], o[ok])) if ok.sum() > 2 else np.nan)
    return np.array(out)


# ----------------------------------------------------------------------------- sandbox truth
@fill_doc
def truth_predictability(nsd, feature: str = "mpnet", subjects=None, alphas=DEFAULT_ALPHAS,
                         cv: int = 5, device="auto", sessions=None) -> dict:
    """Sandbox only: how much of each planted latent space the feature space predicts.

    A ridge (:class:`RidgeCV`) from ``feature`` to the z-scored latent features of each
    planted space (``sandbox_truth/features_<space>.npy``), fitted on every subject's
    training images and scored on the shared test images: ``R²_s = 1 − SSE/SST`` pooled
    over the space's dimensions.

    Parameters
    ----------
    %(nsd)s
        A sandbox (with its truth card).
    %(feature)s
    %(subjects)s
        Their 3×-seen images, minus the test images, are the training images.
    %(alphas_encoding)s
    %(cv)s
    %(device)s
    %(sessions)s

    Returns
    -------
    r2 : dict of str to float
        ``{space: R²_s}``.
    """
    subjects = resolve_subjects(nsd, subjects)
    test = nsd.shared_test_images(sessions, subjects)
    train = np.setdiff1d(np.unique(np.concatenate(
        [subject_image_ids(nsd, s, sessions=sessions) for s in subjects])), test)
    X_tr, X_te = _features(nsd, feature, train), _features(nsd, feature, test)
    out = {}
    for space in load_truth(nsd.root)["feature_spaces"]:
        Z = load_truth_array(nsd.root, f"features_{space}")
        with _quiet_edges():
            est = RidgeCV(alphas=alphas, cv=cv, device=device).fit(X_tr, Z[train])
        P = est.predict(X_te)
        Zt = Z[test].astype(np.float64)
        sst = ((Zt - Zt.mean(0)) ** 2).sum()
        out[space] = float(1 - ((Zt - P) ** 2).sum() / sst) if sst > 0 else float("nan")
    return out


@fill_doc
def expected_fraction(root, r2: Mapping[str, float], rois=None):
    """Sandbox only: the fraction of the noise ceiling an encoder should reach per ROI.

    Each ROI's signal mixes planted spaces with weights ``w_s`` (``roi_spaces`` of the
    truth card); if a feature space explains ``R²_s`` of space ``s``, it explains about
    ``Σ_s w_s R²_s`` of the ROI's signal variance, so its test r should reach about
    ``sqrt(Σ_s w_s max(R²_s, 0))`` of the ceiling.

    Parameters
    ----------
    %(root)s
    r2 : dict of str to float
        ``R²_s`` per planted space (:func:`truth_predictability`).
    rois : list of str, optional
        ROIs kept, in this order (``None``: all of the card's).

    Returns
    -------
    expected : pandas.Series
        Indexed by ROI, named ``"expected r / ceiling"``.
    """
    import pandas as pd

    truth = truth_roi_table(root, rois)
    vals = {roi: float(np.sqrt(sum(w * max(r2.get(sp, 0.0), 0.0) for sp, w in row.items())))
            for roi, row in truth.iterrows()}
    return pd.Series(vals, name="expected r / ceiling")


@fill_doc
def truth_roi_table(root, rois=None):
    """The sandbox's planted feature-space weights per ROI as a DataFrame (ROI × space).

    Parameters
    ----------
    %(root)s
    rois : list of str, optional
        ROIs kept, in this order (those missing from the card are skipped; ``None``: all).

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``roi``, one column per planted space (0 where the ROI has none).
    """
    import pandas as pd

    card = load_truth(root)
    df = pd.DataFrame(card["roi_spaces"]).T.fillna(0.0)
    df.index.name = "roi"
    if rois is not None:
        df = df.loc[[r for r in rois if r in df.index]]
    return df


# ----------------------------------------------------------------------------- the paper's single fraction
#: The paper's fractional-ridge grid (``paper_methods.md`` §4; fractions above 1 need fracridge ≥ 2).
PAPER_FRACTIONS = np.linspace(0.05, 1.05, 20)
#: Names of the two penalty protocols in :func:`ridge_protocols`.
PROTOCOLS = ("per-vertex alphas", "one fraction (paper)")


@dataclass
class FracRidgeResults(EncodingResults):
    """:class:`EncodingResults` of :func:`fit_encoders_fracridge` (no encoders kept).

    Attributes
    ----------
    subjects : list of str
        The subjects, in the order of the rows.
    feature : str
        The feature space encoded.
    r : ndarray of float32 of shape (n_subjects, n_full)
        Test Pearson r per vertex (NaN outside the ROI or where the betas are NaN).
    alphas : ndarray of float32 of shape (n_subjects, n_full)
        Penalty per vertex that shrinks its weights to the chosen fraction (NaN outside).
    encoders : dict
        Empty: the weights are not kept.
    columns : dict of str to ndarray of int
        subject → flat column indices in the full space.
    n_train, n_test : dict of str to int
        subject → number of training and test images.
    fractions : dict of str to float
        subject → the one fraction chosen for all its vertices.
    cv_curves : dict of str to ndarray of shape (n_fractions,)
        subject → mean (over the valid vertices) 5-fold validation R² of every fraction.
    grid : ndarray of shape (n_fractions,)
        The fractions searched.
    """

    fractions: dict = field(default_factory=dict)
    cv_curves: dict = field(default_factory=dict)
    grid: np.ndarray = field(default_factory=lambda: PAPER_FRACTIONS.copy())


@fill_doc
def fit_encoders_fracridge(nsd, subjects=None, feature: str = "mpnet", space: str = "fsaverage", roi=None,
                           fractions=None, cv: int = 5, device="auto", cache=True,
                           feature_options: Mapping | None = None, sessions=None,
                           progress: bool = True) -> FracRidgeResults:
    """The paper's encoder: one fractional-ridge fraction for the whole brain per subject.

    ``fracridge.FracRidgeRegressorCV`` as the paper ran it (``paper_methods.md`` §4):
    fractions ``np.linspace(0.05, 1.05, 20)``, 5-fold unshuffled KFold on the training
    images, the fraction with the best validation R² **averaged over all vertices**, refit
    on all training images with that fraction (each vertex gets the penalty that shrinks its
    weights to that fraction of their OLS norm), tested on the shared images. The vertices
    are fitted in blocks (memory); the validation R² of every fraction is summed over the
    valid vertices of all blocks before the fraction is chosen, so the choice is the whole
    brain's, as in the paper.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(feature)s
    %(space_fsaverage)s
    %(roi_encoding)s
    fractions : array-like of float > 0, optional
        Candidate fractions; ``None``: :data:`PAPER_FRACTIONS`.
    %(cv)s
    %(device)s
    %(cache)s
        Entries (kind ``"encoding"``) hold r, the per-vertex penalties and the CV curve.
    feature_options : dict, optional
        Passed to the feature builder (:func:`~brainllm_utils.features.build`).
    %(sessions)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the subjects.

    Returns
    -------
    results : FracRidgeResults
        Test r and penalties per vertex, the chosen fraction and CV curve per subject
        (``encoders`` is empty: the weights are not kept).
    """
    from ..encoding import FracRidgeCV

    subjects = resolve_subjects(nsd, subjects)
    grid = PAPER_FRACTIONS.copy() if fractions is None else np.atleast_1d(np.asarray(fractions, np.float64))
    if grid.ndim != 1 or grid.size == 0 or not np.all(np.isfinite(grid)) or np.any(grid <= 0):
        raise ValueError(f"fractions must be a non-empty 1-D array of finite values > 0, got {fractions!r}")
    if not isinstance(cv, (int, np.integer)) or cv < 2:
        raise ValueError(f"cv must be an int >= 2 (unshuffled K-fold), got {cv!r}")
    n_full = _full_size(nsd, space)
    folder = resolve_cache(cache, "encoding")
    R = np.full((len(subjects), n_full), np.nan, dtype=np.float32)
    A = np.full((len(subjects), n_full), np.nan, dtype=np.float32)
    columns, n_train, n_test, chosen, curves = {}, {}, {}, {}, {}
    test_ids = nsd.shared_test_images(sessions, subjects)
    for i, s in enumerate(_progress_bar(subjects, f"fractional ridge {feature}", progress, unit="subject")):
        d = _split(nsd, s, space, _roi_arg(nsd, s, roi, space), test_ids, sessions=sessions)
        opts = dict(feature_options or {})
        _features(nsd, feature, np.concatenate([d.train_ids, d.test_ids]), **opts)
        X_tr = _features(nsd, feature, d.train_ids, **opts)
        X_te = _features(nsd, feature, d.test_ids, **opts)

        def compute(d=d, X_tr=X_tr, X_te=X_te):
            blocks = d.blocks(per_column=3 * X_tr.shape[1])
            total, count = np.zeros(grid.size), 0
            for b in blocks:  # pass 1: validation R² of every fraction, summed over valid vertices
                Y_tr, _, valid = d.block(b)
                est = FracRidgeCV(fractions=grid, cv=int(cv), device=device, fraction_per_target=True,
                                  refit=False).fit(X_tr, Y_tr[:, valid]) if valid.any() else None
                if est is not None:
                    total += est.cv_scores_.sum(1)
                    count += int(valid.sum())
                del Y_tr, est
            if count == 0:
                raise ValueError(f"{d.subject}: no vertex with finite betas to encode")
            curve = total / count
            best = float(grid[int(np.argmax(curve))])
            n_cols = d.columns.size
            out = dict(r=np.full(n_cols, np.nan, np.float32), alphas=np.full(n_cols, np.nan, np.float32),
                       curve=curve, fraction=np.array([best]))
            for b in blocks:  # pass 2: refit every vertex with the chosen fraction (the CV of one
                Y_tr, Y_te, valid = d.block(b)  # candidate does not change the refit: 2 folds)
                est = FracRidgeCV(fractions=[best], cv=2, device=device).fit(X_tr, Y_tr)
                r = pearson_r(est.predict(X_te), Y_te).astype(np.float32)
                r[~valid] = np.nan
                out["r"][b], out["alphas"][b] = r, est.best_alphas_
                del Y_tr, Y_te, est
            return out

        key = cache_key("encoding", "fit_encoders_fracridge", d.key, feature, opts, X_tr, X_te, grid, int(cv))
        out = cached_arrays("encoding", key, ("r", "alphas", "curve", "fraction"), compute, cache=cache, folder=folder)
        R[i, d.columns] = out["r"]
        A[i, d.columns] = out["alphas"]
        chosen[s], curves[s] = float(out["fraction"][0]), np.asarray(out["curve"])
        columns[s] = d.columns
        n_train[s], n_test[s] = int(d.train_ids.size), int(d.test_ids.size)
    return FracRidgeResults(subjects, feature, R, A, {}, columns, n_train, n_test,
                            fractions=chosen, cv_curves=curves, grid=grid)


@fill_doc
def ridge_protocols(nsd, subjects=None, feature: str = "mpnet", roi=None, alphas=DEFAULT_ALPHAS,
                    fractions=None, cv: int = 5, device="auto", cache=True, sessions=None,
                    per_vertex: EncodingResults | None = None, atlas: str = "streams") -> dict:
    """Encoding with our per-vertex penalties beside the paper's single fraction.

    Both protocols fit the same training images and are tested on the same shared images;
    only the choice of the penalty differs: :func:`fit_encoders` (one ridge penalty per
    vertex from ``alphas`` by 5-fold CV) and :func:`fit_encoders_fracridge` (one fraction
    for the whole brain, the paper's). No criterion is attached: this shows what the
    deviation changes.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(feature)s
    %(roi_encoding)s
    %(alphas_encoding)s
    fractions : array-like of float > 0, optional
        For :func:`fit_encoders_fracridge` (default :data:`PAPER_FRACTIONS`).
    %(cv)s
    %(device)s
    %(cache)s
    %(sessions)s
    per_vertex : EncodingResults, optional
        Already fitted :func:`fit_encoders` results for these subjects and feature (not
        refitted); their subjects and feature are used. They may cover more vertices than
        ``roi`` (e.g. the whole surface): both protocols are compared on the vertices of
        ``roi`` (the single fraction is chosen over those, the whole brain when ``roi`` is
        None, as in the paper).
    %(atlas_streams)s

    Returns
    -------
    result : dict
        ``maps`` ({protocol: test r, float32 (n_subjects, n_full)}, protocols as in
        :data:`PROTOCOLS`, NaN outside the vertices both protocols encoded), ``results``
        ({protocol: EncodingResults}), ``fractions`` ({subject: chosen fraction}),
        ``table`` (long: ``subject, roi, protocol, r``, the mean test r per ROI over those
        vertices, plus ``roi = "all compared vertices"``: all of them) and ``summary`` (per ROI: the
        mean over subjects of each protocol, ``difference`` = one fraction − per vertex, its
        SEM over subjects and ``n_subjects``).
    """
    import pandas as pd

    if per_vertex is None:
        per_vertex = fit_encoders(nsd, subjects, feature=feature, roi=roi, alphas=alphas, cv=cv, device=device,
                                  cache=cache, sessions=sessions)
    elif not isinstance(per_vertex, EncodingResults):
        raise TypeError(f"per_vertex must be EncodingResults from fit_encoders, got {type(per_vertex).__name__}")
    subjects, feature = list(per_vertex.subjects), per_vertex.feature
    frac = fit_encoders_fracridge(nsd, subjects, feature=feature, roi=roi, fractions=fractions, cv=cv,
                                  device=device, cache=cache, sessions=sessions)
    results = dict(zip(PROTOCOLS, (per_vertex, frac)))
    # the same vertices for both (a per_vertex fit may cover more than ``roi``)
    common = np.isfinite(per_vertex.r) & np.isfinite(frac.r)
    maps = {name: np.where(common, res.r, np.nan).astype(np.float32) for name, res in results.items()}
    tables = []
    for name, r in maps.items():
        t = roi_table(nsd, r, subjects, atlas=atlas, name="r")
        whole = [dict(subject=s, roi="all compared vertices", r=float(np.nanmean(r[k])))
                 for k, s in enumerate(subjects)]
        tables.append(pd.concat([t, pd.DataFrame(whole)], ignore_index=True).assign(protocol=name))
    table = pd.concat(tables, ignore_index=True)[["subject", "roi", "protocol", "r"]]
    wide = table.pivot_table(index=["roi", "subject"], columns="protocol", values="r", sort=False)
    diff = (wide[PROTOCOLS[1]] - wide[PROTOCOLS[0]]).groupby(level="roi", sort=False)
    summary = wide.groupby(level="roi", sort=False).mean()[list(PROTOCOLS)]
    summary["difference"] = diff.mean()
    summary["difference_sem"] = diff.std(ddof=1) / np.sqrt(diff.count())
    summary["n_subjects"] = diff.count()
    return dict(maps=maps, results=results, fractions=dict(frac.fractions), table=table, summary=summary)
