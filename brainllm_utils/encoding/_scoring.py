"""Scores of encoding models: per-target Pearson r and R²."""

from __future__ import annotations

import numpy as np

from .._utils.numeric import pearson_r

__all__ = ["pearson_r", "r2_score"]


def r2_score(y_true, y_pred) -> np.ndarray:
    """Coefficient of determination per column (constant columns give 0).

    Parameters
    ----------
    y_true : array-like of shape (n_images, n_targets) or (n_images,)
        Observed responses (e.g. betas of ``n_targets`` vertices).
    y_pred : array-like of the same shape
        Predicted responses.

    Returns
    -------
    r2 : ndarray of shape (n_targets,)
        ``1 - SSE / SST`` per column, in float64 (a 0-d array for 1-D inputs); 0 where
        ``y_true`` is constant.
    """
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    sse = ((y_true - y_pred) ** 2).sum(0)
    sst = ((y_true - y_true.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1.0), 0.0)
