"""Noise ceilings of RDMs across subjects (leave-one-subject-out) and normalisation by them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._utils.docs import fill_doc
from .._utils.numeric import check_choice
from ._compare import canonical_method, compare_rowwise, rank
from ._interop import _rdm_stack_arg

__all__ = ["pool_rdms", "NoiseCeiling", "noise_ceiling", "normalise_by_ceiling"]


@fill_doc
def pool_rdms(rdms, method: str = "pearson", *, reorder: bool = False) -> np.ndarray:
    """Average RDMs into the best predictor under ``method`` (as rsatoolbox ``pool_rdm``).

    Pearson: mean of z-scored RDMs; Spearman / tau-a: mean of ranks; cosine: mean of RDMs
    scaled to unit root-mean-square.

    Parameters
    ----------
    rdms : array-like of shape (n_subjects, ..., n_pairs), rsatoolbox RDMs or list of RDMs
        Condensed RDMs; pooling is over axis 0. An ``RDMs`` is ``(n_rdm, n_pairs)``
        (pooled over its RDMs); a list of ``RDMs`` (one per subject, each holding one RDM
        or the same number of RDMs) is stacked, their ``nsdId`` descriptors checked
        against the first's.
    %(method)s
    %(reorder)s

    Returns
    -------
    pooled : ndarray of float64 of shape (..., n_pairs)
        The pooled RDM(s) (z-scores, ranks or scaled values, not dissimilarities).
    """
    method = canonical_method(method)
    r = np.asarray(_rdm_stack_arg(rdms, "rdms", reorder), dtype=np.float64)
    if method == "pearson":
        r = r - r.mean(-1, keepdims=True)
        r = r / r.std(-1, keepdims=True)
    elif method in ("spearman", "kendall_tau_a"):
        r = rank(r)
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
    per_subject_lower, per_subject_upper : ndarray of shape (n_subjects,)
        The values averaged into ``lower`` / ``upper`` (each already averaged over sets).
    """

    lower: float
    upper: float
    per_subject_lower: np.ndarray
    per_subject_upper: np.ndarray


@fill_doc
def noise_ceiling(rdms, method: str = "pearson", pool: str = "method", *,
                  reorder: bool = False) -> NoiseCeiling:
    """Leave-one-subject-out noise ceiling from subjects' RDMs on shared images.

    Parameters
    ----------
    rdms : array-like of shape (n_subjects, n_pairs) or (n_subjects, n_sets, n_pairs), rsatoolbox RDMs or list of RDMs
        Each subject's brain RDM over the *same* images (NSD shared images), optionally
        one per sample set (e.g. ``compute_rdm(X[sets])``); per-set ceilings are
        averaged over sets like the scores. An ``RDMs`` holds one RDM per subject; a
        list of ``RDMs`` one object per subject (one RDM, or one per set). Their
        ``nsdId`` descriptors must agree with the first subject's.
    %(method)s
    pool : {"method", "mean"}, default="method"
        How the other subjects' RDMs are averaged: ``"method"`` as rsatoolbox
        (:func:`pool_rdms`, z-scored for Pearson), ``"mean"`` the plain mean RDM.
    %(reorder)s

    Returns
    -------
    ceiling : NoiseCeiling
        ``lower`` (LOSO), ``upper`` (vs all), and per-subject values.
        With ``pool="method"`` these equal rsatoolbox ``boot_noise_ceiling``.
    """
    check_choice(pool, "pool", ("method", "mean"))
    method = canonical_method(method)
    r = np.asarray(_rdm_stack_arg(rdms, "rdms", reorder), dtype=np.float64)
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
        lower[s] = compare_rowwise(r[s], others, method).mean()
        upper[s] = compare_rowwise(r[s], full, method).mean()
    return NoiseCeiling(float(lower.mean()), float(upper.mean()), lower, upper)


def normalise_by_ceiling(scores, ceiling):
    """Noise-ceiling-normalised scores ``scores / ceiling`` (broadcast; NaN if ceiling ≤ 0).

    Parameters
    ----------
    scores : array-like
        RSA scores (any shape).
    ceiling : float, NoiseCeiling or array-like
        A float, a :class:`NoiseCeiling` (its ``lower`` bound is used, as in the paper's
        LOSO normalisation) or an array broadcastable to ``scores``.

    Returns
    -------
    normalised : ndarray of float64
        ``scores / ceiling`` in the broadcast shape; NaN where the ceiling is ≤ 0.
    """
    if isinstance(ceiling, NoiseCeiling):
        ceiling = ceiling.lower
    c = np.asarray(ceiling, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, np.asarray(scores, dtype=np.float64) / c, np.nan)
