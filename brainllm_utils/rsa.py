"""Representational similarity analysis: RDMs, RDM comparisons, sampled RSA, noise ceilings.

Pure functions (no file I/O except the explicit sample-set helpers). Arrays follow the
package conventions: ``X`` is ``(n_images, n_features)``; a *condensed* RDM is the upper
triangle in :func:`scipy.spatial.distance.pdist` order, ``(n_pairs,)`` with
``n_pairs = n (n - 1) / 2``; stacks of RDMs are ``(k, n_pairs)``.

The paper's ROI analysis (Doerig et al. 2025, ``paper_methods.md`` §3) never compares full
10,000-image RDMs: a subject's images are split once, with a seed here, into disjoint sets of
100; each set's 100 × 100 brain and model RDMs are compared by Pearson r over the 4,950
pairs, and the subject's score is the mean over sets. :func:`make_sample_sets`,
:func:`get_sample_sets` and :func:`sampled_rsa` implement that; :func:`roi_rsa` returns a
tidy :class:`pandas.DataFrame` for the book.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._device import resolve_device

__all__ = [
    "RDM_METRICS",
    "COMPARE_METHODS",
    "compute_rdm",
    "compare_rdms",
    "rdm_to_square",
    "sub_rdm",
    "make_sample_sets",
    "save_sample_sets",
    "load_sample_sets",
    "get_sample_sets",
    "sampled_rsa",
    "SampledRSA",
    "roi_rsa",
    "pool_rdms",
    "noise_ceiling",
    "NoiseCeiling",
    "normalise_by_ceiling",
]

RDM_METRICS = ("correlation", "cosine", "euclidean")
COMPARE_METHODS = ("pearson", "spearman", "kendall_tau_a", "cosine")
_METHOD_ALIASES = {
    "corr": "pearson",
    "pearson": "pearson",
    "spearman": "spearman",
    "rho": "spearman",
    "kendall_tau_a": "kendall_tau_a",
    "tau-a": "kendall_tau_a",
    "tau_a": "kendall_tau_a",
    "cosine": "cosine",
}


# --------------------------------------------------------------------------- backend
_resolve_device = resolve_device


@contextlib.contextmanager
def _no_tf32():
    """Disable TF32 matmuls (CUDA) inside the block; restores the previous setting."""
    import torch

    matmul = torch.backends.cuda.matmul
    if hasattr(matmul, "fp32_precision"):
        old = matmul.fp32_precision
        matmul.fp32_precision = "ieee"
        try:
            yield
        finally:
            matmul.fp32_precision = old
    else:  # pragma: no cover - older torch
        old = matmul.allow_tf32
        matmul.allow_tf32 = False
        try:
            yield
        finally:
            matmul.allow_tf32 = old


def _n_items(n_pairs: int) -> int:
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} is not a triangular number n(n-1)/2")
    return n


def _canon_method(method: str) -> str:
    try:
        return _METHOD_ALIASES[method]
    except KeyError:
        raise ValueError(f"method must be one of {COMPARE_METHODS}, got {method!r}") from None


# --------------------------------------------------------------------------- RDMs
def compute_rdm(
    X, metric: str = "correlation", *, device: str = "auto", dtype="float32",
    out_dtype="float32",
):
    """Representational dissimilarity matrix (condensed), or a stack of them.

    Parameters
    ----------
    X : array-like, shape (n, p) or (k, n, p)
        Patterns: one row per condition (image), one column per feature (voxel). A 3-D
        array computes ``k`` RDMs at once (e.g. the 100 sample sets of a subject).
    metric : {"correlation", "cosine", "euclidean"}
        ``1 - Pearson r`` between rows, ``1 - cosine`` similarity, or Euclidean distance
        (not divided by ``p``), exactly as :func:`scipy.spatial.distance.pdist`.
    device : {"auto", "cpu", "cuda"}
        Where the Gram matrices are computed (torch); ``"auto"`` picks CUDA if present.
    dtype : {"float32", "float64"}
        Precision of the Gram matrix products (the centring, norms and the Euclidean
        combination are done in float64 whichever is chosen).
    out_dtype : {"float32", "float64"}
        Returned dtype (float32 by default, ~200 MB per 10,000-image RDM).

    Returns
    -------
    rdm : ndarray, shape (n_pairs,) or (k, n_pairs)
        Upper triangle, row-major (``pdist`` order), ``n_pairs = n (n - 1) / 2``.

    Notes
    -----
    With rows standardised to zero mean (correlation) and unit norm, ``Z Zᵀ`` is the
    correlation matrix and the RDM is ``1 - (Z Zᵀ)[iu]``: one GEMM per RDM instead of a
    Python loop over pairs. Euclidean uses ``‖x_i‖² + ‖x_j‖² - 2 x_i·x_j`` (clipped at 0).
    Constant rows give NaN for correlation, as in scipy.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.spatial.distance import pdist
    >>> X = np.random.default_rng(0).normal(size=(5, 20))
    >>> np.allclose(compute_rdm(X), pdist(X, "correlation"), atol=1e-6)
    True
    """
    import torch

    if metric not in RDM_METRICS:
        raise ValueError(f"metric must be one of {RDM_METRICS}, got {metric!r}")
    X = np.asarray(X)
    if X.ndim not in (2, 3):
        raise ValueError(f"X must be (n, p) or (k, n, p), got shape {X.shape}")
    single = X.ndim == 2
    if single:
        X = X[None]
    k, n, _ = X.shape
    dev = _resolve_device(device)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
    iu = torch.triu_indices(n, n, offset=1, device=dev)
    out = np.empty((k, n * (n - 1) // 2), dtype=np.dtype(out_dtype))
    # chunk over the stack so that k × n × n float64 stays below ~256 MB
    step = max(1, int(2**25 // max(n * n, 1)))
    with _no_tf32():
        for s in range(0, k, step):
            x = torch.as_tensor(np.ascontiguousarray(X[s : s + step]), device=dev)
            x = x.to(torch.float64)
            if metric == "correlation":
                x = x - x.mean(dim=2, keepdim=True)
            if metric in ("correlation", "cosine"):
                x = x / torch.linalg.vector_norm(x, dim=2, keepdim=True)
                g = torch.matmul(x.to(tdtype), x.to(tdtype).transpose(1, 2)).to(torch.float64)
                d = 1.0 - g[:, iu[0], iu[1]]
            else:
                sq = (x * x).sum(dim=2)
                g = torch.matmul(x.to(tdtype), x.to(tdtype).transpose(1, 2)).to(torch.float64)
                d2 = sq[:, iu[0]] + sq[:, iu[1]] - 2.0 * g[:, iu[0], iu[1]]
                d = torch.sqrt(torch.clamp(d2, min=0.0))
            out[s : s + step] = d.cpu().numpy()
    return out[0] if single else out


def rdm_to_square(rdm):
    """Condensed RDM(s) ``(..., n_pairs)`` → square ``(..., n, n)`` with a zero diagonal."""
    rdm = np.asarray(rdm)
    n = _n_items(rdm.shape[-1])
    out = np.zeros(rdm.shape[:-1] + (n, n), dtype=rdm.dtype)
    iu = np.triu_indices(n, 1)
    out[..., iu[0], iu[1]] = rdm
    out[..., iu[1], iu[0]] = rdm
    return out


def _pair_index(n: int, idx: np.ndarray) -> np.ndarray:
    """Positions in an n-item condensed RDM of all pairs among ``idx`` (pdist order of idx).

    ``idx`` must hold distinct items; pairs (a, b) with idx[a] > idx[b] map to (idx[b], idx[a]).
    """
    idx = np.asarray(idx, dtype=np.int64)
    a, b = np.triu_indices(len(idx), 1)
    i = np.minimum(idx[a], idx[b])
    j = np.maximum(idx[a], idx[b])
    return n * i - i * (i + 1) // 2 + (j - i - 1)


def sub_rdm(rdm, idx):
    """The RDM among items ``idx`` cut from a condensed RDM over all items (no copy of n²).

    Parameters
    ----------
    rdm : ndarray, shape (n_pairs,) or (k, n_pairs)
    idx : int array, shape (m,) or (s, m)
        Distinct item indices (e.g. one sample set, or all sets at once).

    Returns
    -------
    ndarray, shape (m_pairs,), (k, m_pairs), (s, m_pairs) or (k, s, m_pairs)
    """
    rdm = np.asarray(rdm)
    n = _n_items(rdm.shape[-1])
    idx = np.asarray(idx)
    pos = _pair_index(n, idx.ravel()) if idx.ndim == 1 else np.stack(
        [_pair_index(n, row) for row in idx]
    )
    return rdm[..., pos]


# --------------------------------------------------------------------------- comparisons
def _rank(a: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(a, axis=-1, method="average")


def _tau_a_pair(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-a (no tie correction in the denominator) in O(N log N)."""
    from scipy.stats import kendalltau

    n = x.size
    n0 = n * (n - 1) / 2.0
    tau_b = kendalltau(x, y, variant="b").statistic
    if not np.isfinite(tau_b):
        return np.nan

    def ties(v):
        _, c = np.unique(v, return_counts=True)
        return float((c * (c - 1) / 2.0).sum())

    return float(tau_b * np.sqrt((n0 - ties(x)) * (n0 - ties(y))) / n0)


def compare_rdms(a, b, method: str = "pearson"):
    """Compare RDMs: Pearson, Spearman, Kendall tau-a or cosine similarity.

    Parameters
    ----------
    a, b : array-like, shape (n_pairs,) or (k_a, n_pairs) / (k_b, n_pairs)
        Condensed RDMs over the same conditions.
    method : {"pearson", "spearman", "kendall_tau_a", "cosine"}
        rsatoolbox names ``"corr"``, ``"tau-a"`` are accepted too. Spearman ranks with
        average ties (as :func:`scipy.stats.spearmanr` and rsatoolbox).

    Returns
    -------
    float or ndarray, shape (k_a, k_b)
        A scalar when both inputs are single RDMs, else the matrix of comparisons
        (a single RDM counts as a stack of one).

    Notes
    -----
    Pearson and cosine are one float64 GEMM of the centred/normalised stacks; Spearman is
    Pearson of ranks. Tau-a is ``(n_c - n_d) / (N (N - 1) / 2)``, obtained from scipy's
    O(N log N) tau-b as ``τ_b √((N₀ - T_a)(N₀ - T_b)) / N₀`` (Nili et al. 2014 recommend
    tau-a when models predict ties).
    """
    method = _canon_method(method)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    scalar = a.ndim == 1 and b.ndim == 1
    a2 = np.atleast_2d(a)
    b2 = np.atleast_2d(b)
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"RDM lengths differ: {a2.shape[1]} vs {b2.shape[1]}")
    if method == "kendall_tau_a":
        out = np.array([[_tau_a_pair(x, y) for y in b2] for x in a2])
    else:
        if method == "spearman":
            a2, b2 = _rank(a2), _rank(b2)
        if method in ("pearson", "spearman"):
            a2 = a2 - a2.mean(axis=1, keepdims=True)
            b2 = b2 - b2.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            a2 = a2 / np.linalg.norm(a2, axis=1, keepdims=True)
            b2 = b2 / np.linalg.norm(b2, axis=1, keepdims=True)
        out = a2 @ b2.T
    return float(out[0, 0]) if scalar else out


def _compare_rowwise(a: np.ndarray, b: np.ndarray, method: str) -> np.ndarray:
    """Compare RDMs pairwise along the leading axes: (..., N) × (..., N) → (...)."""
    method = _canon_method(method)
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a, b = np.broadcast_arrays(a, b)
    if method == "kendall_tau_a":
        fa, fb = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        return np.array([_tau_a_pair(x, y) for x, y in zip(fa, fb)]).reshape(a.shape[:-1])
    if method == "spearman":
        a, b = _rank(a), _rank(b)
    if method in ("pearson", "spearman"):
        a = a - a.mean(axis=-1, keepdims=True)
        b = b - b.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


# --------------------------------------------------------------------------- sample sets
def make_sample_sets(n_images_or_ids, set_size: int = 100, seed: int = 0) -> np.ndarray:
    """Seeded partition of a subject's images into disjoint sets (the paper's sampling).

    Parameters
    ----------
    n_images_or_ids : int or array of int, shape (n_images,)
        The number of images, or the subject's image identifiers (e.g. NSD ids, in the
        order of the rows of its betas). With identifiers the partition depends only on
        the *set* of ids and the seed, not on their row order.
    set_size : int
        Images per set (paper: 100).
    seed : int
        Seed of :func:`numpy.random.default_rng` (the original used an unseeded draw).

    Returns
    -------
    sets : ndarray, int64, shape (n_images // set_size, set_size)
        Row positions (indices into the subject's rows), disjoint; the
        ``n_images % set_size`` left-over images are in no set (as in the paper). Each row
        is sorted ascending.
    """
    if np.ndim(n_images_or_ids) == 0:
        n = int(n_images_or_ids)
        order = np.arange(n)
    else:
        ids = np.asarray(n_images_or_ids)
        if len(np.unique(ids)) != len(ids):
            raise ValueError("image ids must be unique")
        n = len(ids)
        order = np.argsort(ids, kind="stable")  # canonical (sorted-id) order
    if set_size < 2 or n < set_size:
        raise ValueError(f"need set_size >= 2 and at least set_size images (n={n})")
    rng = np.random.default_rng(seed)
    perm = order[rng.permutation(n)]
    n_sets = n // set_size
    sets = perm[: n_sets * set_size].reshape(n_sets, set_size)
    return np.sort(sets, axis=1).astype(np.int64)


def save_sample_sets(path, sets) -> Path:
    """Save sample sets atomically as ``.npy`` (int64, (n_sets, set_size))."""
    from .paths import atomic_save_npy

    return atomic_save_npy(path, np.asarray(sets, dtype=np.int64))


def load_sample_sets(path) -> np.ndarray:
    """Load sample sets saved by :func:`save_sample_sets`."""
    sets = np.load(path, allow_pickle=False)
    if sets.ndim != 2:
        raise ValueError(f"{path}: expected a 2-D array of sets, got shape {sets.shape}")
    return sets.astype(np.int64)


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
    set whose ids are missing from ``n_images_or_ids`` raises ``ValueError``.

    Returns
    -------
    sets : ndarray, int64, shape (n_sets, set_size)
        Row positions, as :func:`make_sample_sets`.
    """
    from .paths import get_results_dir

    path = (
        get_results_dir(results_dir)
        / "sampling"
        / f"{subject}_sample-sets_size{set_size}_seed{seed}.npy"
    )
    with_ids = np.ndim(n_images_or_ids) != 0
    ids = np.asarray(n_images_or_ids) if with_ids else None
    if not path.exists():
        sets = make_sample_sets(n_images_or_ids, set_size=set_size, seed=seed)
        save_sample_sets(path, ids[sets] if with_ids else sets)
        return sets
    stored = load_sample_sets(path)
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


# --------------------------------------------------------------------------- sampled RSA
@dataclass
class SampledRSA:
    """Result of :func:`sampled_rsa`.

    Attributes
    ----------
    per_set : ndarray, shape (n_models, n_sets)
        Brain–model comparison in each sample set.
    mean : ndarray, shape (n_models,)
        Mean over sets (the subject's score in the paper).
    """

    per_set: np.ndarray
    mean: np.ndarray


def sampled_rsa(
    brain_X,
    models,
    sets=None,
    *,
    method: str = "pearson",
    brain_metric: str = "correlation",
    model_metric: str = "correlation",
    device: str = "auto",
    dtype: str = "float32",
) -> SampledRSA:
    """The paper's sampled RSA of one brain region against one or more models.

    Parameters
    ----------
    brain_X : array-like, shape (n_images, n_voxels)
        A subject's ROI patterns (rows = images in the subject's order).
    models : array-like
        Either condensed model RDMs over *all* ``n_images`` (``(n_pairs,)`` or
        ``(n_models, n_pairs)``), or model feature matrices (one ``(n_images, d)`` array, or
        a list / ``(n_models, n_images, d)`` array) whose RDMs use ``model_metric``.
    sets : int array, shape (n_sets, set_size), optional
        From :func:`make_sample_sets` / :func:`get_sample_sets`. ``None`` compares the
        full RDMs over all images (one "set").
    method : {"pearson", "spearman", "kendall_tau_a", "cosine"}
    brain_metric, model_metric : {"correlation", "cosine", "euclidean"}

    Returns
    -------
    SampledRSA
        ``per_set`` (n_models, n_sets) and ``mean`` (n_models,).

    Notes
    -----
    This is :func:`brainllm_utils.searchlight.searchlight_rsa` with one neighbourhood (all
    voxels), so Pearson uses the trace form and never builds the brain RDM: with rows
    standardised, ``C = Z Zᵀ``, ``Σ_{i<j} c_ij = (‖1ᵀZ‖² − n)/2``,
    ``Σ_{i<j} c_ij² = (‖ZᵀZ‖²_F − n)/2`` (``‖Z Zᵀ‖²_F`` when n < p) and, for a fixed
    model, ``Σ_{i<j} m̃_ij c_ij = ⟨Z, M̃Z⟩/2``; feature models use the low-rank form
    ``Σ_{i<j} g_ij c_ij = (‖UᵀZ‖²_F − n)/2``.
    """
    from .searchlight import searchlight_rsa

    X = np.asarray(brain_X)
    if X.ndim != 2:
        raise ValueError(f"brain_X must be (n_images, n_voxels), got {X.shape}")
    nb = np.arange(X.shape[1])[None, :]
    per = searchlight_rsa(
        X,
        nb,
        models,
        method=method,
        sets=sets,
        device=device,
        dtype=dtype,
        brain_metric=brain_metric,
        model_metric=model_metric,
        return_per_set=True,
        progress=False,
    )  # (n_models, n_sets, 1)
    per = per[..., 0]
    return SampledRSA(per_set=per, mean=per.mean(axis=1))


def roi_rsa(
    rois: dict,
    models: dict,
    sets=None,
    *,
    subject: str | None = None,
    method: str = "pearson",
    device: str = "auto",
    ceilings: dict | None = None,
):
    """Sampled RSA for several ROIs and models as a tidy DataFrame (one subject).

    Parameters
    ----------
    rois : dict[str, array (n_images, n_voxels)]
        ROI name → the subject's patterns (same image rows for all ROIs and models).
    models : dict[str, array]
        Model name → feature matrix ``(n_images, d)`` or condensed RDM over all images.
    sets : int array (n_sets, set_size), optional
    subject : str, optional
        Written to a ``subject`` column.
    ceilings : dict[str, float], optional
        ROI → noise ceiling (e.g. :attr:`NoiseCeiling.lower` of that ROI); adds
        ``r_normalised = r / ceiling``.

    Returns
    -------
    pandas.DataFrame
        Columns ``subject, roi, model, r, r_sd_sets, n_sets`` (+ ``ceiling,
        r_normalised``). Concatenate over subjects and pass to
        :func:`brainllm_utils.stats.group_tests`.
    """
    import pandas as pd

    names = list(models)
    rows = []
    for roi, X in rois.items():
        res = [sampled_rsa(X, models[m], sets, method=method, device=device) for m in names]
        for m, r in zip(names, res):
            per = r.per_set[0]
            row = {
                "subject": subject,
                "roi": roi,
                "model": m,
                "r": float(r.mean[0]),
                "r_sd_sets": float(per.std(ddof=1)) if per.size > 1 else np.nan,
                "n_sets": int(per.size),
            }
            if ceilings is not None:
                row["ceiling"] = float(ceilings[roi])
                row["r_normalised"] = row["r"] / row["ceiling"]
            rows.append(row)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- noise ceiling
def pool_rdms(rdms, method: str = "pearson") -> np.ndarray:
    """Average RDMs into the best predictor under ``method`` (as rsatoolbox ``pool_rdm``).

    Pearson: mean of z-scored RDMs; Spearman / tau-a: mean of ranks; cosine: mean of RDMs
    scaled to unit root-mean-square. ``rdms`` is ``(n_subjects, ..., n_pairs)``; pooling is
    over axis 0.
    """
    method = _canon_method(method)
    r = np.asarray(rdms, dtype=np.float64)
    if method == "pearson":
        r = r - r.mean(-1, keepdims=True)
        r = r / r.std(-1, keepdims=True)
    elif method in ("spearman", "kendall_tau_a"):
        r = _rank(r)
    elif method == "cosine":
        r = r / np.sqrt((r**2).mean(-1, keepdims=True))
    return r.mean(axis=0)


@dataclass
class NoiseCeiling:
    """Leave-one-subject-out noise ceiling.

    Attributes
    ----------
    lower : float
        Mean over subjects of each subject's RDM vs the pooled RDM of the *other*
        subjects (leave-one-subject-out; the paper's ceiling).
    upper : float
        Mean over subjects of each subject's RDM vs the pooled RDM of *all* subjects
        (rsatoolbox's upper bound; it overfits, so the true ceiling lies in between).
    per_subject_lower, per_subject_upper : ndarray, shape (n_subjects,)
        The values averaged into ``lower`` / ``upper`` (each already averaged over sets).
    """

    lower: float
    upper: float
    per_subject_lower: np.ndarray
    per_subject_upper: np.ndarray


def noise_ceiling(rdms, method: str = "pearson", pool: str = "method") -> NoiseCeiling:
    """Leave-one-subject-out noise ceiling from subjects' RDMs on shared images.

    Parameters
    ----------
    rdms : array-like, shape (n_subjects, n_pairs) or (n_subjects, n_sets, n_pairs)
        Each subject's brain RDM over the *same* images (NSD shared images), optionally
        one per sample set (e.g. ``compute_rdm(X[sets])``); per-set ceilings are
        averaged over sets like the scores.
    method : {"pearson", "spearman", "kendall_tau_a", "cosine"}
    pool : {"method", "mean"}
        How the other subjects' RDMs are averaged: ``"method"`` as rsatoolbox
        (:func:`pool_rdms`, z-scored for Pearson), ``"mean"`` the plain mean RDM.

    Returns
    -------
    NoiseCeiling
        ``lower`` (LOSO), ``upper`` (vs all), and per-subject values.
        With ``pool="method"`` these equal rsatoolbox ``boot_noise_ceiling``.
    """
    r = np.asarray(rdms, dtype=np.float64)
    if r.ndim == 2:
        r = r[:, None, :]
    n_sub = r.shape[0]
    if n_sub < 2:
        raise ValueError("need at least two subjects")

    def _pool(x):
        return pool_rdms(x, method) if pool == "method" else x.mean(axis=0)

    full = _pool(r)
    lower = np.empty(n_sub)
    upper = np.empty(n_sub)
    for s in range(n_sub):
        others = _pool(np.delete(r, s, axis=0))
        lower[s] = _compare_rowwise(r[s], others, method).mean()
        upper[s] = _compare_rowwise(r[s], full, method).mean()
    return NoiseCeiling(float(lower.mean()), float(upper.mean()), lower, upper)


def normalise_by_ceiling(scores, ceiling):
    """Noise-ceiling-normalised scores ``scores / ceiling`` (broadcast; NaN if ceiling ≤ 0).

    ``ceiling`` may be a float, a :class:`NoiseCeiling` (its ``lower`` bound is used, as
    in the paper's LOSO normalisation) or an array broadcastable to ``scores``.
    """
    if isinstance(ceiling, NoiseCeiling):
        ceiling = ceiling.lower
    c = np.asarray(ceiling, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, np.asarray(scores, dtype=np.float64) / c, np.nan)
