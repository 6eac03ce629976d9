"""Inference for one brain–model RDM comparison: bootstrap confidence intervals over images."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from .._utils.numeric import check_float, check_int, pearson_r
from ._compare import canonical_method, compare_rdms, compare_rowwise
from ._interop import _models_arg, _patterns_arg
from ._rdm import compute_rdm, n_items, rdm_to_square

__all__ = ["bootstrap_rsa_ci"]


@fill_doc
def bootstrap_rsa_ci(brain_X, model, n_boot: int = 1000, seed: int = 0, ci: float = 0.95,
                     method: str = "pearson", brain_metric: str = "correlation",
                     model_metric: str = "correlation", return_samples: bool = False, *,
                     reorder: bool = False):
    """Bootstrap confidence interval of a brain–model RDM correlation over images.

    Images are resampled with replacement; both RDMs are recomputed on the resample and
    pairs of copies of the same image (zero dissimilarity by construction) are excluded,
    as rsatoolbox's ``bootstrap_sample_pattern`` / ``eval_bootstrap_pattern`` do.

    Parameters
    ----------
    brain_X : array-like of shape (n_images, n_voxels), or rsatoolbox Dataset
        Brain patterns (one row per image).
    model : array-like of shape (n_images, n_features) or (n_pairs,), rsatoolbox Dataset or RDMs
        Model features, or the model's condensed RDM over the same images (an ``RDMs``
        must hold one RDM). ``nsdId`` descriptors on both sides must agree.
    n_boot : int, default=1000
        Bootstrap resamples of the images.
    %(seed)s
    ci : float, default=0.95
        Central percentile interval (0.95 → 2.5 and 97.5 percentiles).
    %(method)s
    %(brain_metric)s
    %(model_metric)s
    return_samples : bool, default=False
        Also return the bootstrap distribution.
    %(reorder)s

    Returns
    -------
    result : dict
        ``estimate`` (full-sample value), ``low``, ``high``, ``se`` (bootstrap SD) and, if
        ``return_samples``, ``samples`` (ndarray of shape (n_boot,)).
    """
    n_boot = check_int(n_boot, "n_boot", min_value=2)
    seed = check_int(seed, "seed", min_value=0)
    ci = check_float(ci, "ci", min_value=0, max_value=1, min_inclusive=False, max_inclusive=False)
    method = canonical_method(method)
    X, ids = _patterns_arg(brain_X, "brain_X")
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2:
        raise ValueError(f"brain_X must be (n_images, n_voxels), got shape {X.shape}")
    n = X.shape[0]
    model = np.asarray(_models_arg(model, ids, reorder, "model", single=True), dtype=np.float64)
    if model.ndim == 2 and model.shape[0] != n:
        raise ValueError(f"model: expected one RDM (n_pairs,) or features ({n}, d), got shape {model.shape}")
    is_rdm = model.ndim == 1
    if is_rdm and n_items(model.size) != n:
        raise ValueError("model RDM does not match the number of images")
    full_b = compute_rdm(X, brain_metric, dtype="float64", out_dtype="float64")
    full_m = model if is_rdm else compute_rdm(model, model_metric, dtype="float64",
                                              out_dtype="float64")
    estimate = compare_rdms(full_b, full_m, method)
    Db = rdm_to_square(full_b)
    Dm = rdm_to_square(full_m if is_rdm else full_m.astype(np.float64))
    rng = np.random.default_rng(seed)
    iu = np.triu_indices(n, 1)
    samples = np.empty(n_boot)
    step = max(1, int(2**24 // (n * n)))
    for s0 in range(0, n_boot, step):
        idx = rng.integers(0, n, size=(min(step, n_boot - s0), n))
        a = Db[idx[:, :, None], idx[:, None, :]][:, iu[0], iu[1]]
        m = Dm[idx[:, :, None], idx[:, None, :]][:, iu[0], iu[1]]
        keep = idx[:, iu[0]] != idx[:, iu[1]]  # drop pairs of copies of one image
        if method in ("pearson", "corr", "cosine"):
            samples[s0 : s0 + a.shape[0]] = pearson_r(a, m, axis=1, centre=method != "cosine", where=keep)
        else:
            for k in range(a.shape[0]):
                samples[s0 + k] = compare_rowwise(a[k, keep[k]], m[k, keep[k]], method)
    alpha = (1 - ci) / 2
    low, high = np.nanpercentile(samples, [100 * alpha, 100 * (1 - alpha)])
    out = {"estimate": float(estimate), "low": float(low), "high": float(high),
           "se": float(np.nanstd(samples, ddof=1))}
    if return_samples:
        out["samples"] = samples
    return out
