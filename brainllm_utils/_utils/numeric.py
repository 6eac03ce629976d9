"""Numeric kernels shared across layers: the one Pearson correlation, and the argument checks.

The checks (:func:`check_int`, :func:`check_float`, :func:`check_choice`,
:func:`check_indices`, :func:`check_finite`) are what every analysis layer validates its
public arguments with: an error names the argument and what was expected (``bool`` is not an
int, a float index is not truncated, a repeated index is refused where it changes results).

One rule for constant inputs: a constant column (zero norm after centring) has no correlation,
so its r is **NaN**, and the caller decides what that means (the inter-participant ceiling
reads it as 0, as the paper does; a group test leaves it out). Every Pearson helper of the
package (encoding scores, RDM comparisons row by row, bootstrap samples, pair similarities)
is this function.
"""

from __future__ import annotations

import numpy as np

__all__ = ["pearson_r", "check_int", "check_float", "check_choice", "check_indices", "check_finite"]


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


# --------------------------------------------------------------------------- argument checks
# Small validators shared by the analysis layers: each error names the argument and what was
# expected, so that a user's mistake never surfaces as a raw KeyError / IndexError /
# TypeError from deep inside numpy or torch.


def _is_int(value) -> bool:
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_int(value, name: str, *, min_value: int | None = None, max_value: int | None = None,
              allow_none: bool = False):
    """An integer argument (``bool`` and floats refused), optionally within bounds.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The argument's name, used in the error message.
    min_value, max_value : int, optional
        Inclusive bounds.
    allow_none : bool, default=False
        Accept ``None`` (returned as is).

    Returns
    -------
    int or None
        ``value`` as a Python int (``None`` when allowed and given).

    Raises
    ------
    TypeError
        When ``value`` is not an integer (``True``, ``2.5`` and ``"3"`` are refused).
    ValueError
        When it is out of bounds.

    Examples
    --------
    >>> check_int(np.int64(3), "n", min_value=1)
    3
    """
    if value is None and allow_none:
        return None
    if not _is_int(value):
        raise TypeError(f"{name} must be an int{' or None' if allow_none else ''}, "
                        f"got {value!r} ({type(value).__name__})")
    value = int(value)
    if min_value is not None and value < min_value:
        raise ValueError(f"{name} must be >= {min_value}, got {value}")
    if max_value is not None and value > max_value:
        raise ValueError(f"{name} must be <= {max_value}, got {value}")
    return value


def check_float(value, name: str, *, min_value: float | None = None, max_value: float | None = None,
                min_inclusive: bool = True, max_inclusive: bool = True, allow_none: bool = False):
    """A finite real argument (``bool`` and strings refused), optionally within bounds.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The argument's name, used in the error message.
    min_value, max_value : float, optional
        Bounds.
    min_inclusive, max_inclusive : bool, default=True
        Whether each bound itself is allowed.
    allow_none : bool, default=False
        Accept ``None`` (returned as is).

    Returns
    -------
    float or None
        ``value`` as a Python float.

    Raises
    ------
    TypeError
        When ``value`` is not a real number.
    ValueError
        When it is NaN, infinite or out of bounds.

    Examples
    --------
    >>> check_float(0.05, "q", min_value=0, max_value=1, min_inclusive=False)
    0.05
    """
    import numbers

    if value is None and allow_none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number{' or None' if allow_none else ''}, "
                        f"got {value!r} ({type(value).__name__})")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if min_value is not None and (value < min_value or (not min_inclusive and value == min_value)):
        raise ValueError(f"{name} must be {'>=' if min_inclusive else '>'} {min_value}, got {value}")
    if max_value is not None and (value > max_value or (not max_inclusive and value == max_value)):
        raise ValueError(f"{name} must be {'<=' if max_inclusive else '<'} {max_value}, got {value}")
    return value


def check_choice(value, name: str, choices):
    """A string argument that must be one of ``choices``.

    Parameters
    ----------
    value : object
        The value given.
    name : str
        The argument's name, used in the error message.
    choices : sequence of str
        The allowed values.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ValueError
        When ``value`` is not one of ``choices`` (whatever its type).
    """
    if not isinstance(value, str) or value not in tuple(choices):
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_indices(idx, name: str, n: int | None = None, *, unique: bool = True, ndim=None,
                  min_size: int = 0) -> np.ndarray:
    """Integer indices into ``n`` items: integer dtype, ``0 <= i < n``, distinct per row.

    Parameters
    ----------
    idx : array-like of int
        The indices given (a list, an array; an empty list is read as no index).
    name : str
        The argument's name, used in the error message.
    n : int, optional
        Number of items; ``None`` checks only ``i >= 0``.
    unique : bool, default=True
        Refuse an index repeated within a row (the last axis): a repeated item changes
        results silently (pairs of an item with itself, double weights).
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    min_size : int, default=0
        Minimum length of the last axis.

    Returns
    -------
    ndarray of int64
        The indices.

    Raises
    ------
    TypeError
        When the indices are not integers (floats holding whole numbers are refused too:
        a float index is a sign of a wrong array).
    ValueError
        When an index is negative, ``>= n``, repeated, or the shape is wrong.

    Examples
    --------
    >>> check_indices([2, 0, 1], "idx", 3).tolist()
    [2, 0, 1]
    """
    a = np.asarray(idx)
    if a.size == 0 and a.dtype.kind not in "iu":
        a = a.astype(np.int64)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer indices, got dtype {a.dtype}")
    if ndim is not None and a.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {a.shape}")
    a = a.astype(np.int64, copy=False)
    if a.ndim and a.shape[-1] < min_size:
        raise ValueError(f"{name} needs at least {min_size} indices per row, got shape {a.shape}")
    if a.size:
        if a.min() < 0:
            raise ValueError(f"{name} holds a negative index ({int(a.min())}); expected 0 <= i"
                             + (f" < {n}" if n is not None else ""))
        if n is not None and a.max() >= n:
            raise ValueError(f"{name} holds index {int(a.max())}, out of range for {n} items "
                             f"(expected 0 <= i < {n})")
        if unique and a.ndim:
            rows = a.reshape(-1, a.shape[-1])
            s = np.sort(rows, axis=1)
            dup = s[:, 1:] == s[:, :-1]
            if dup.any():
                r = int(np.argwhere(dup)[0][0])
                v = int(s[r][1:][dup[r]][0])
                where = f" (row {r})" if rows.shape[0] > 1 else ""
                raise ValueError(f"{name} holds index {v} more than once{where}; expected distinct indices")
    return a


def check_finite(a, name: str, *, ndim=None, min_size: int = 0, dtype=np.float64) -> np.ndarray:
    """A numeric array with no NaN or inf, of the allowed dimensions and not too small.

    Parameters
    ----------
    a : array-like
        The array given.
    name : str
        The argument's name, used in the error message.
    ndim : int or tuple of int, optional
        Allowed numbers of dimensions.
    min_size : int, default=0
        Minimum number of elements.
    dtype : dtype, default=float64
        Dtype of the returned array (``None``: unchanged).

    Returns
    -------
    ndarray
        ``a`` as an array.

    Raises
    ------
    TypeError
        When ``a`` is not numeric.
    ValueError
        When it holds NaN/inf, has the wrong number of dimensions or too few elements.

    Examples
    --------
    >>> check_finite([1, 2], "x").tolist()
    [1.0, 2.0]
    """
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    if ndim is not None and arr.ndim not in np.atleast_1d(ndim):
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if arr.size < min_size:
        raise ValueError(f"{name} needs at least {min_size} values, got shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} holds NaN or inf values ({int((~np.isfinite(arr)).sum())} of {arr.size})")
    return arr
