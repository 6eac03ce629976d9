"""Comparing RDMs: Pearson, Spearman, Kendall tau-a and cosine, for stacks or row by row."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from .._utils.numeric import check_choice, pearson_r
from ._interop import _pair, _rdm_arg

__all__ = ["COMPARE_METHODS", "canonical_method", "rank", "tau_a", "compare_rdms", "compare_rowwise"]

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


def canonical_method(method: str) -> str:
    """The canonical name of an RDM comparison (rsatoolbox aliases accepted).

    Parameters
    ----------
    method : str
        A name of :data:`COMPARE_METHODS` or an rsatoolbox alias (``"corr"``, ``"rho"``,
        ``"tau-a"``, ``"tau_a"``).

    Returns
    -------
    str
        One of :data:`COMPARE_METHODS`.

    Raises
    ------
    ValueError
        For an unknown name.
    """
    if not isinstance(method, str) or method not in _METHOD_ALIASES:
        check_choice(method, "method", COMPARE_METHODS)
    return _METHOD_ALIASES[method]


def _condensed_arg(x, name: str, ndim=(1, 2)) -> np.ndarray:
    """Condensed RDM(s) as float64: numeric, 1-D or a 2-D stack, at least one pair."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric condensed RDM(s), got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None and arr.ndim not in ndim:
        raise ValueError(f"{name} must be a condensed RDM (n_pairs,) or a stack (k, n_pairs), got shape "
                         f"{arr.shape}")
    if arr.ndim == 0 or arr.shape[-1] == 0 or arr.size == 0:
        raise ValueError(f"{name} holds no pair (shape {arr.shape}): an RDM comparison needs at least "
                         "one pair (two images)")
    return arr


def rank(a: np.ndarray) -> np.ndarray:
    """Ranks along the last axis, ties averaged (as scipy and rsatoolbox).

    Parameters
    ----------
    a : array-like of shape (..., n), or rsatoolbox RDMs
        Values, e.g. condensed RDMs ``(k, n_pairs)`` (an ``RDMs`` gives its vectors,
        ``(n_pairs,)`` when it holds one RDM).

    Returns
    -------
    ranks : ndarray of float64 of shape (..., n)
        1-based ranks within each last-axis row.
    """
    from scipy.stats import rankdata

    return rankdata(_condensed_arg(_rdm_arg(a, "a")[0], "a", ndim=None), axis=-1, method="average")


@fill_doc
def tau_a(x: np.ndarray, y: np.ndarray, *, reorder: bool = False) -> float:
    """Kendall tau-a (no tie correction in the denominator) in O(N log N).

    Parameters
    ----------
    x, y : ndarray of shape (n,), or rsatoolbox RDMs holding one RDM
        Two condensed RDMs (or any paired values).
    %(reorder)s

    Returns
    -------
    float
        ``(n_c - n_d) / (n (n - 1) / 2)``; NaN when tau-b is undefined (a constant input).
    """
    from scipy.stats import kendalltau

    x, y = _pair(x, y, "x", "y", reorder, single=True)
    x, y = np.asarray(x), np.asarray(y)
    n = x.size
    n0 = n * (n - 1) / 2.0
    tau_b = kendalltau(x, y, variant="b").statistic
    if not np.isfinite(tau_b):
        return np.nan

    def ties(v):
        _, c = np.unique(v, return_counts=True)
        return float((c * (c - 1) / 2.0).sum())

    return float(tau_b * np.sqrt((n0 - ties(x)) * (n0 - ties(y))) / n0)


@fill_doc
def compare_rdms(a, b, method: str = "pearson", *, reorder: bool = False):
    """Compare RDMs: Pearson, Spearman, Kendall tau-a or cosine similarity.

    Parameters
    ----------
    a, b : array-like of shape (n_pairs,) or (k_a, n_pairs) / (k_b, n_pairs), or rsatoolbox RDMs
        Condensed RDMs over the same conditions. An ``RDMs`` holding one RDM counts as a
        single RDM ``(n_pairs,)``, one holding several as a stack; with ``nsdId`` pattern
        descriptors on both, ``b``'s must equal ``a``'s.
    %(method)s
        Spearman ranks with average ties (as :func:`scipy.stats.spearmanr` and
        rsatoolbox).
    %(reorder)s

    Returns
    -------
    similarity : float or ndarray of shape (k_a, k_b)
        A scalar when both inputs are single RDMs, else the matrix of comparisons
        (a single RDM counts as a stack of one).

    Notes
    -----
    Pearson and cosine are one float64 GEMM of the centred/normalised stacks; Spearman is
    Pearson of ranks. Tau-a is ``(n_c - n_d) / (N (N - 1) / 2)``, obtained from scipy's
    O(N log N) tau-b as ``τ_b √((N₀ - T_a)(N₀ - T_b)) / N₀`` (Nili et al. 2014 recommend
    tau-a when models predict ties).
    """
    method = canonical_method(method)
    a, b = _pair(a, b, "a", "b", reorder)
    a = _condensed_arg(a, "a")
    b = _condensed_arg(b, "b")
    scalar = a.ndim == 1 and b.ndim == 1
    a2 = np.atleast_2d(a)
    b2 = np.atleast_2d(b)
    if a2.shape[1] != b2.shape[1]:
        raise ValueError(f"RDM lengths differ: {a2.shape[1]} vs {b2.shape[1]}")
    if method == "kendall_tau_a":
        out = np.array([[tau_a(x, y) for y in b2] for x in a2])
    else:
        if method == "spearman":
            a2, b2 = rank(a2), rank(b2)
        if method in ("pearson", "spearman"):
            a2 = a2 - a2.mean(axis=1, keepdims=True)
            b2 = b2 - b2.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            a2 = a2 / np.linalg.norm(a2, axis=1, keepdims=True)
            b2 = b2 / np.linalg.norm(b2, axis=1, keepdims=True)
        out = a2 @ b2.T
    return float(out[0, 0]) if scalar else out


@fill_doc
def compare_rowwise(a: np.ndarray, b: np.ndarray, method: str = "pearson", *,
                    reorder: bool = False) -> np.ndarray:
    """Compare RDMs pairwise along the leading axes: (..., N) × (..., N) → (...).

    Unlike :func:`compare_rdms` (every RDM of ``a`` against every RDM of ``b``), row ``i``
    of ``a`` is compared with row ``i`` of ``b`` only.

    Parameters
    ----------
    a, b : array-like of shape (..., n_pairs), or rsatoolbox RDMs
        Condensed RDMs, broadcast against each other (an ``RDMs`` is ``(n_rdm, n_pairs)``,
        or ``(n_pairs,)`` when it holds one RDM; ``nsdId`` descriptors must agree).
    %(method)s
    %(reorder)s

    Returns
    -------
    similarity : ndarray of float64 of shape (...)
        The broadcast leading shape; NaN where an RDM is constant.
    """
    method = canonical_method(method)
    a, b = _pair(a, b, "a", "b", reorder)
    a = _condensed_arg(a, "a", ndim=None)
    b = _condensed_arg(b, "b", ndim=None)
    if a.shape[-1] != b.shape[-1]:
        raise ValueError(f"RDM lengths differ: a has {a.shape[-1]} pairs, b {b.shape[-1]}")
    try:
        a, b = np.broadcast_arrays(a, b)
    except ValueError:
        raise ValueError(f"a {a.shape} and b {b.shape} do not broadcast against each other") from None
    if method == "kendall_tau_a":
        fa, fb = a.reshape(-1, a.shape[-1]), b.reshape(-1, b.shape[-1])
        return np.array([tau_a(x, y) for x, y in zip(fa, fb)]).reshape(a.shape[:-1])
    if method == "spearman":
        a, b = rank(a), rank(b)
    return pearson_r(a, b, axis=-1, centre=method != "cosine")

