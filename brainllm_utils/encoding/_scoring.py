"""Scores of encoding models: per-target Pearson r and R²."""

from __future__ import annotations

import numpy as np

__all__ = ["pearson_r", "r2_score"]


def pearson_r(a, b, axis: int = 0) -> np.ndarray:
    """Pearson correlation of ``a`` and ``b`` along ``axis`` (per column by default).

    Accumulates in float64; a constant column gives 0 (not NaN).

    >>> float(pearson_r(np.array([1., 2, 3]), np.array([2., 4, 7])))  # doctest: +ELLIPSIS
    0.99...
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    num = (a * b).sum(axis=axis)
    den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return r


def r2_score(y_true, y_pred) -> np.ndarray:
    """Coefficient of determination per column (constant columns give 0)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    sse = ((y_true - y_pred) ** 2).sum(0)
    sst = ((y_true - y_true.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1.0), 0.0)
