"""Numeric kernels shared across layers: the one Pearson correlation.

One rule for constant inputs: a constant column (zero norm after centring) has no correlation,
so its r is **NaN**, and the caller decides what that means (the inter-participant ceiling
reads it as 0, as the paper does; a group test leaves it out). Every Pearson helper of the
package (encoding scores, RDM comparisons row by row, bootstrap samples, pair similarities)
is this function.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pearson_r"]


def pearson_r(a, b, axis: int = 0, *, centre: bool = True, where=None, broadcast: bool = False) -> np.ndarray:
    """Pearson correlation of ``a`` and ``b`` along ``axis``, accumulated in float64.

    Parameters
    ----------
    a, b : array-like
        Same shape (or broadcastable with ``broadcast=True``), e.g. ``(n_images, n_vertices)``
        for per-vertex r along ``axis=0``.
    axis : int, default=0
        The axis correlated over (0: per column; 1 or -1: per row).
    centre : bool, default=True
        Subtract the means first (Pearson); ``False`` gives the cosine similarity.
    where : array of bool, optional
        Only these entries count (broadcastable to the data); means and sums are over them.
    broadcast : bool, default=False
        Broadcast ``a`` and ``b`` against each other instead of requiring equal shapes.

    Returns
    -------
    float or ndarray
        The shape of the inputs without ``axis``; NaN where ``a`` or ``b`` is constant (or
        all-zero for the cosine) over the entries used.

    Examples
    --------
    >>> float(pearson_r(np.array([1., 2, 3]), np.array([2., 4, 7])))  # doctest: +ELLIPSIS
    0.99...
    >>> bool(np.isnan(pearson_r(np.ones(3), np.array([1., 2, 3]))))
    True
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if broadcast:
        a, b = np.broadcast_arrays(a, b)
    elif a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    if where is not None:
        w = np.broadcast_to(np.asarray(where, dtype=bool), a.shape).astype(np.float64)
        if centre:
            cnt = w.sum(axis=axis, keepdims=True)
            with np.errstate(invalid="ignore", divide="ignore"):
                a = a - (a * w).sum(axis=axis, keepdims=True) / cnt
                b = b - (b * w).sum(axis=axis, keepdims=True) / cnt
        a, b = a * w, b * w
    elif centre:
        a = a - a.mean(axis=axis, keepdims=True)
        b = b - b.mean(axis=axis, keepdims=True)
    num = (a * b).sum(axis=axis)
    den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
