"""RDMs: condensed representational dissimilarity matrices, their square form and sub-RDMs."""

from __future__ import annotations

import numpy as np

from .._utils.device import resolve_device, tf32
from .._utils.docs import fill_doc
from .._utils.numeric import check_choice, check_indices
from ._condensed import _pair_index, n_items
from ._interop import _check_ids, _patterns_arg, _rdm_arg, to_rdms

__all__ = ["RDM_METRICS", "compute_rdm", "rdm_to_square", "sub_rdm", "n_items", "empty_rows",
           "separate_empty_rows"]

RDM_METRICS = ("correlation", "cosine", "euclidean")


@fill_doc
def compute_rdm(
    X, metric: str = "correlation", *, device: str = "auto", dtype="float32",
    out_dtype="float32", as_rdms: bool = False, nsd_ids=None,
):
    """Representational dissimilarity matrix (condensed), or a stack of them.

    Parameters
    ----------
    X : array-like of shape (n_images, n_features) or (k, n_images, n_features), or rsatoolbox Dataset
        Patterns: one row per condition (image), one column per feature (voxel). A 3-D
        array computes ``k`` RDMs at once (e.g. the 100 sample sets of a subject). A
        :class:`rsatoolbox.data.Dataset` gives its ``measurements`` (one observation per
        image) and, if present, its ``nsdId`` observation descriptor.
    metric : {"correlation", "cosine", "euclidean"}, default="correlation"
        ``1 - Pearson r`` between rows, ``1 - cosine`` similarity, or Euclidean distance
        (not divided by ``n_features``), exactly as :func:`scipy.spatial.distance.pdist`.
    %(device)s
        The Gram matrices are computed there.
    dtype : {"float32", "float64"}, default="float32"
        Precision of the Gram matrix products (the centring, norms and the Euclidean
        combination are done in float64 whichever is chosen).
    out_dtype : {"float32", "float64"}, default="float32"
        Returned dtype (float32 by default, ~200 MB per 10,000-image RDM).
    as_rdms : bool, default=False
        Return an :class:`rsatoolbox.rdm.RDMs` (:func:`~brainllm_utils.rsa.to_rdms`: float64, ``k`` RDMs,
        ``dissimilarity_measure=metric``, pattern descriptor ``nsdId``) instead of the
        array. Our ``"euclidean"`` is not rsatoolbox's (squared, divided by the number of
        channels).
    nsd_ids : array-like of int of shape (n_images,), optional
        0-based nsdIds of the rows, stored as ``nsdId`` with ``as_rdms``. With a Dataset
        that has ``nsdId`` they must be equal to it.

    Returns
    -------
    rdm : ndarray of shape (n_pairs,) or (k, n_pairs), or rsatoolbox.rdm.RDMs
        Upper triangle, row-major (``pdist`` order), ``n_pairs = n_images (n_images - 1) / 2``;
        the same as an ``RDMs`` with ``as_rdms=True``.

    Notes
    -----
    With rows standardised to zero mean (correlation) and unit norm, ``Z Zᵀ`` is the
    correlation matrix and the RDM is ``1 - (Z Zᵀ)[iu]``: one GEMM per RDM instead of a
    Python loop over pairs. Euclidean uses ``‖x_i‖² + ‖x_j‖² - 2 x_i·x_j`` (clipped at 0).
    Constant rows give NaN for correlation, as in scipy.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.spatial.distance import pdist
    >>> X = np.random.default_rng(0).normal(size=(5, 20))
    >>> np.allclose(compute_rdm(X), pdist(X, "correlation"), atol=1e-6)
    True
    """
    import torch

    check_choice(metric, "metric", RDM_METRICS)
    dtype = check_choice(_dtype_name(dtype), "dtype", ("float32", "float64"))
    out_dtype = check_choice(_dtype_name(out_dtype), "out_dtype", ("float32", "float64"))
    X, ids = _patterns_arg(X, "X")
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric patterns, got dtype {X.dtype}")
    if X.ndim not in (2, 3):
        raise ValueError(f"X must be (n, p) or (k, n, p), got shape {X.shape}")
    if X.shape[-2] < 2 or X.shape[-1] < 1:
        raise ValueError(f"X needs at least 2 images (rows) and 1 feature, got shape {X.shape}")
    if nsd_ids is not None:
        given = _check_ids(nsd_ids, X.shape[-2], "nsd_ids")
        if ids is not None and not np.array_equal(given, ids):
            raise ValueError("nsd_ids differ from the Dataset's nsdId observation descriptor")
        ids = given
    single = X.ndim == 2
    if single:
        X = X[None]
    k, n, _ = X.shape
    dev = resolve_device(device)
    tdtype = {"float32": torch.float32, "float64": torch.float64}[np.dtype(dtype).name]
    iu = torch.triu_indices(n, n, offset=1, device=dev)
    out = np.empty((k, n * (n - 1) // 2), dtype=np.dtype(out_dtype))
    # chunk over the stack so that k × n × n float64 stays below ~256 MB
    step = max(1, int(2**25 // max(n * n, 1)))
    with tf32(False):
        for s in range(0, k, step):
            x = torch.as_tensor(np.ascontiguousarray(X[s : s + step]), device=dev)
            x = x.to(torch.float64)
            if metric == "correlation":
                x = x - x.mean(dim=2, keepdim=True)
            if metric in ("correlation", "cosine"):
                x = x / torch.linalg.vector_norm(x, dim=2, keepdim=True)
                g = torch.matmul(x.to(tdtype), x.to(tdtype).transpose(1, 2)).to(torch.float64)
                d = 1.0 - g[:, iu[0], iu[1]]
            else:
                sq = (x * x).sum(dim=2)
                g = torch.matmul(x.to(tdtype), x.to(tdtype).transpose(1, 2)).to(torch.float64)
                d2 = sq[:, iu[0]] + sq[:, iu[1]] - 2.0 * g[:, iu[0], iu[1]]
                d = torch.sqrt(torch.clamp(d2, min=0.0))
            out[s : s + step] = d.cpu().numpy()
    if as_rdms:
        return to_rdms(out, ids, dissimilarity_measure=metric)
    return out[0] if single else out


def _dtype_name(dtype) -> str:
    """The numpy name of a dtype given in any form; the repr when it is no dtype at all."""
    try:
        return np.dtype(dtype).name
    except TypeError:
        return repr(dtype)


def rdm_to_square(rdm):
    """Condensed RDM(s) ``(..., n_pairs)`` → square ``(..., n, n)`` with a zero diagonal.

    Parameters
    ----------
    rdm : array-like of shape (..., n_pairs), or rsatoolbox RDMs
        Condensed RDM(s) in ``pdist`` order (an ``RDMs`` holding one RDM is read as
        ``(n_pairs,)``, several as ``(n_rdm, n_pairs)``).

    Returns
    -------
    square : ndarray of shape (..., n_images, n_images)
        Symmetric matrices, same dtype as ``rdm``.
    """
    rdm = np.asarray(_rdm_arg(rdm, "rdm")[0])
    n = n_items(rdm.shape[-1])
    out = np.zeros(rdm.shape[:-1] + (n, n), dtype=rdm.dtype)
    iu = np.triu_indices(n, 1)
    out[..., iu[0], iu[1]] = rdm
    out[..., iu[1], iu[0]] = rdm
    return out


def sub_rdm(rdm, idx):
    """The RDM among items ``idx`` cut from a condensed RDM over all items (no copy of n²).

    Parameters
    ----------
    rdm : array-like of shape (n_pairs,) or (k, n_pairs), or rsatoolbox RDMs
        Condensed RDM(s) over all ``n_images`` items (an ``RDMs`` holding one RDM is read
        as ``(n_pairs,)``).
    idx : array-like of int of shape (m,) or (s, m)
        Distinct item indices ``0 <= i < n_images``, at least two per row (e.g. one
        sample set, or all sets at once).

    Returns
    -------
    sub : ndarray of shape (m_pairs,), (k, m_pairs), (s, m_pairs) or (k, s, m_pairs)
        The condensed RDM(s) among ``idx``, in the ``pdist`` order of ``idx``
        (``m_pairs = m (m - 1) / 2``).

    Raises
    ------
    TypeError
        When ``idx`` does not hold integers.
    ValueError
        When an index is negative, ``>= n_images`` or repeated (a repeated item would give
        the pair of an item with itself, read from a wrong position).
    """
    rdm = np.asarray(_rdm_arg(rdm, "rdm")[0])
    n = n_items(rdm.shape[-1])
    idx = check_indices(idx, "idx", n, ndim=(1, 2), min_size=2)
    pos = _pair_index(n, idx.ravel()) if idx.ndim == 1 else np.stack(
        [_pair_index(n, row) for row in idx]
    )
    return rdm[..., pos]



def empty_rows(X, metric: str = "correlation") -> np.ndarray:
    """Rows whose correlation (or cosine) distance to any other row is undefined.

    Parameters
    ----------
    X : array-like of shape (n_images, n_features), or rsatoolbox Dataset
        Feature rows (e.g. COCO multi-hot categories).
    metric : {"correlation", "cosine"}, default="correlation"
        ``"correlation"``: constant rows (zero variance, e.g. the all-zero multi-hot row of
        an image without any COCO instance); ``"cosine"``: all-zero rows. Exact tests, no
        tolerance: a float embedding is never exactly constant.

    Returns
    -------
    empty : ndarray of bool of shape (n_images,)
        True where the row is empty in that sense.
    """
    check_choice(metric, "metric", ("correlation", "cosine"))
    X = np.asarray(_patterns_arg(X, "X")[0])
    if X.ndim != 2:
        raise ValueError(f"X must be (n_images, n_features), got shape {X.shape}")
    if X.shape[1] == 0:
        return np.ones(X.shape[0], dtype=bool)
    if metric == "correlation":
        return np.all(X == X[:, :1], axis=1)
    return ~np.any(X != 0, axis=1)


def separate_empty_rows(X, metric: str = "correlation"):
    """Features whose correlation (cosine) distances are defined for every pair of rows.

    An image without any COCO instance has an all-zero multi-hot row, and an image none of
    whose words is in a word-vector file an all-zero mean vector: ``1 − r`` with such a row
    is 0/0 (NaN in :func:`scipy.spatial.distance.pdist`), and one NaN makes the Pearson r of
    its whole sample set NaN, then the subject's mean score. The convention used throughout
    the book (our choice; the paper's code has no rule for multi-hot rows and gives its
    category *text* model the same string "something" for every such image):

    - two images that both have categories keep exactly their correlation distance;
    - an empty image is at distance **1** (r = 0: nothing in common) from every non-empty
      image;
    - two empty images are at distance **0** (the same, empty, content), as the paper's
      "something" makes them identical in ``mpnet_category_all``.

    Parameters
    ----------
    X : array-like of shape (n_images, n_features), or rsatoolbox Dataset
        Feature rows.
    metric : {"correlation", "cosine"}, default="correlation"
        The distance the result will be used with (:func:`empty_rows`).

    Returns
    -------
    features : ndarray of float64 of shape (n_images, n_features + 1)
        Non-empty rows standardised (centred for correlation, unit norm) with a 0
        appended; empty rows ``(0, …, 0, 1)``. Their correlation (and cosine) distances
        follow the rules above exactly; the Gram-form RSA of
        :func:`~brainllm_utils.rsa.searchlight_rsa` takes them as any feature model.
    empty : ndarray of bool of shape (n_images,)
        Which rows were empty (count them on the page).

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.spatial.distance import pdist
    >>> X = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [1, 1, 1, 0], [0, 0, 0, 0]], float)
    >>> F, empty = separate_empty_rows(X)
    >>> empty.tolist()
    [False, True, False, True]
    >>> np.round(pdist(F, "correlation"), 6).tolist()  # pairs (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
    [1.0, 0.42265, 1.0, 1.0, 0.0, 1.0]
    >>> round(float(pdist(X[[0, 2]], "correlation")[0]), 6)  # kept exactly
    0.42265
    """
    X = _patterns_arg(X, "X")[0]
    empty = empty_rows(X, metric)
    X = np.asarray(X, dtype=np.float64)
    out = np.zeros((X.shape[0], X.shape[1] + 1), dtype=np.float64)
    full = X[~empty]
    if metric == "correlation":
        full = full - full.mean(axis=1, keepdims=True)
    out[~empty, :-1] = full / np.linalg.norm(full, axis=1, keepdims=True)
    out[empty, -1] = 1.0
    return out, empty
