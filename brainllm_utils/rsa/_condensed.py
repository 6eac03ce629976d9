"""Condensed-RDM bookkeeping shared by :mod:`._rdm` and :mod:`._interop`: the number of
items of a condensed RDM and the positions of a subset's pairs."""

from __future__ import annotations

import numpy as np

__all__ = ["n_items"]


def n_items(n_pairs: int) -> int:
    """Number of items ``n`` of a condensed RDM with ``n_pairs = n (n - 1) / 2`` entries.

    Parameters
    ----------
    n_pairs : int
        Length of the condensed RDM.

    Returns
    -------
    n : int
        Number of items (images).

    Raises
    ------
    ValueError
        When ``n_pairs`` is not a triangular number.
    """
    import numbers

    if isinstance(n_pairs, (bool, np.bool_)) or not isinstance(n_pairs, numbers.Integral) or n_pairs < 0:
        raise ValueError(f"n_pairs must be an int >= 0 (the length of a condensed RDM), got {n_pairs!r}")
    n = int(round((1 + np.sqrt(1 + 8 * n_pairs)) / 2))
    if n * (n - 1) // 2 != n_pairs:
        raise ValueError(f"{n_pairs} is not a triangular number n(n-1)/2")
    return n


def _pair_index(n: int, idx: np.ndarray) -> np.ndarray:
    """Positions in an n-item condensed RDM of all pairs among ``idx`` (pdist order of idx).

    ``idx`` must hold distinct items; pairs (a, b) with idx[a] > idx[b] map to (idx[b], idx[a]).
    """
    idx = np.asarray(idx, dtype=np.int64)
    a, b = np.triu_indices(len(idx), 1)
    i = np.minimum(idx[a], idx[b])
    j = np.maximum(idx[a], idx[b])
    return n * i - i * (i + 1) // 2 + (j - i - 1)
