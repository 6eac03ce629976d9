"""Scores of encoding models: per-target Pearson r and R²."""

from __future__ import annotations

import numpy as np

from .._utils.numeric import pearson_r

__all__ = ["pearson_r", "r2_score"]


def r2_score(y_true, y_pred) -> np.ndarray:
    """Coefficient of determination per column (constant columns give 0)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    sse = ((y_true - y_pred) ** 2).sum(0)
    sst = ((y_true - y_true.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1.0), 0.0)
