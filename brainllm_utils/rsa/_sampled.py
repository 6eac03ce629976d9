"""Sampled RSA of brain regions against models (the paper's ROI analysis)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._utils.docs import fill_doc
from ._interop import _models_arg, _patterns_arg, is_rdms
from ._searchlight import searchlight_rsa

__all__ = ["SampledRSA", "sampled_rsa", "roi_rsa"]


@dataclass
class SampledRSA:
    """Result of :func:`sampled_rsa`.

    Attributes
    ----------
    per_set : ndarray of shape (n_models, n_sets)
        Brain–model comparison in each sample set.
    mean : ndarray of shape (n_models,)
        Mean over sets (the subject's score in the paper).
    """

    per_set: np.ndarray
    mean: np.ndarray


@fill_doc
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
    reorder: bool = False,
) -> SampledRSA:
    """The paper's sampled RSA of one brain region against one or more models.

    Parameters
    ----------
    brain_X : array-like of shape (n_images, n_voxels), or rsatoolbox Dataset
        A subject's ROI patterns (rows = images in the subject's order).
    models : array-like, rsatoolbox RDMs or Dataset, or a list
        Either condensed model RDMs over *all* ``n_images`` (``(n_pairs,)`` or
        ``(n_models, n_pairs)``, or an ``RDMs`` with one model per RDM), or model feature
        matrices (one ``(n_images, n_features)`` array or ``Dataset``, or a list /
        ``(n_models, n_images, n_features)`` array) whose RDMs use ``model_metric``.
        With ``nsdId`` descriptors on both sides, the models' must equal ``brain_X``'s.
    %(sets)s
        ``None`` compares the full RDMs over all images.
    %(method)s
    %(brain_metric)s
    %(model_metric)s
    %(device)s
    dtype : {"float32", "float64"}, default="float32"
        Precision of the GEMMs (as :func:`searchlight_rsa`).
    %(reorder)s

    Returns
    -------
    result : SampledRSA
        ``per_set`` (n_models, n_sets) and ``mean`` (n_models,).

    Raises
    ------
    ValueError
        When a model has empty feature rows (:func:`searchlight_rsa`; use
        :func:`separate_empty_rows`) or any set scores NaN: never a silent NaN mean.

    Notes
    -----
    This is :func:`brainllm_utils.searchlight.searchlight_rsa` with one neighbourhood (all
    voxels), so Pearson uses the trace form and never builds the brain RDM: with rows
    standardised, ``C = Z Zᵀ``, ``Σ_{i<j} c_ij = (‖1ᵀZ‖² − n)/2``,
    ``Σ_{i<j} c_ij² = (‖ZᵀZ‖²_F − n)/2`` (``‖Z Zᵀ‖²_F`` when n < p) and, for a fixed
    model, ``Σ_{i<j} m̃_ij c_ij = ⟨Z, M̃Z⟩/2``; feature models use the low-rank form
    ``Σ_{i<j} g_ij c_ij = (‖UᵀZ‖²_F − n)/2``.
    """
    X, ids = _patterns_arg(brain_X, "brain_X")
    models = _models_arg(models, ids, reorder)
    X = np.asarray(X)
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
    bad = ~np.isfinite(per)
    if bad.any():
        m, k = np.argwhere(bad)[0]
        raise ValueError(f"sampled RSA is NaN for model {int(m)} in {int(bad[m].sum())} of {per.shape[1]} "
                         f"sample sets (first: set {int(k)}): an image with a constant brain pattern in "
                         "this region, or fewer than 2 voxels; a NaN set would make the subject's mean NaN")
    return SampledRSA(per_set=per, mean=per.mean(axis=1))


@fill_doc
def roi_rsa(
    rois: dict,
    models: dict,
    sets=None,
    *,
    subject: str | None = None,
    method: str = "pearson",
    device: str = "auto",
    ceilings: dict | None = None,
    reorder: bool = False,
):
    """Sampled RSA for several ROIs and models as a tidy DataFrame (one subject).

    Parameters
    ----------
    rois : dict of str to array-like of shape (n_images, n_voxels) or rsatoolbox Dataset
        ROI name → the subject's patterns (same image rows for all ROIs and models).
    models : dict of str to array-like, rsatoolbox Dataset or RDMs
        Model name → feature matrix ``(n_images, n_features)`` (or ``Dataset``) or
        condensed RDM ``(n_pairs,)`` (or an ``RDMs`` holding one RDM) over all images;
        ``nsdId`` descriptors must agree with the ROI's (:func:`sampled_rsa`).
    %(sets)s
    subject : str, optional
        Written to a ``subject`` column.
    %(method)s
    %(device)s
    ceilings : dict of str to float, optional
        ROI → noise ceiling (e.g. :attr:`NoiseCeiling.lower` of that ROI); adds
        ``r_normalised = r / ceiling``.
    %(reorder)s

    Returns
    -------
    table : pandas.DataFrame
        One row per ROI and model; columns ``subject, roi, model, r, r_sd_sets, n_sets`` (+ ``ceiling,
        r_normalised``). Concatenate over subjects and pass to
        :func:`brainllm_utils.stats.group_tests`.
    """
    import pandas as pd

    if not isinstance(rois, dict) or not isinstance(models, dict) or not rois or not models:
        raise TypeError("rois and models must be non-empty dicts (name → patterns / model)")
    if ceilings is not None:
        missing = [r for r in rois if r not in ceilings]
        if missing:
            raise ValueError(f"ceilings has no value for ROI(s) {missing}; expected one per ROI of rois "
                             f"({list(rois)})")
    names = list(models)
    for m in names:
        if is_rdms(models[m]) and models[m].n_rdm != 1:
            raise ValueError(f"models[{m!r}]: expected one RDM, got an rsatoolbox RDMs holding "
                             f"{models[m].n_rdm} RDMs (give each its own name)")
    rows = []
    for roi, X in rois.items():
        res = [sampled_rsa(X, models[m], sets, method=method, device=device, reorder=reorder)
               for m in names]
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

