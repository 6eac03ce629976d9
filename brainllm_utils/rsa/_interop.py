"""rsatoolbox interop: our condensed RDMs ↔ :class:`rsatoolbox.rdm.RDMs`, and rsatoolbox
:class:`~rsatoolbox.data.Dataset` patterns as inputs.

Conventions shared by both packages (checked in ``tests/test_rsa_interop.py``):

- a condensed RDM is the upper triangle, row-major (:func:`scipy.spatial.distance.pdist`
  order); rsatoolbox stores ``RDMs.dissimilarities`` as ``(n_rdm, n_pairs)`` vectors made
  with :func:`scipy.spatial.distance.squareform`, which is the same order, so vectors are
  exchanged as they are;
- the pattern descriptor ``"nsdId"`` (:data:`NSD_ID`) holds each condition's **0-based**
  NSD image id (the ``nsdId`` of ``nsd_stim_info_merged.csv`` and of
  :meth:`~brainllm_utils.nsd.NSD.betas`; ``shared/docs/nsd_layout.md``), one per row and
  column of the RDM, in the RDM's order. A :class:`~rsatoolbox.data.Dataset` carries it as
  an ``obs_descriptors`` entry, one per pattern.

Every public function of :mod:`brainllm_utils.rsa` that takes RDMs or patterns also
takes these objects: they are converted at the function's entry (:func:`from_rdms`,
:func:`from_dataset`). When two objects that both carry ``nsdId`` meet (brain and model,
two RDMs compared, subjects of a noise ceiling), their ids must be equal in order; a
permutation of the same ids raises unless ``reorder=True`` asks to reorder the second to
the first, other ids always raise. Plain arrays carry no ids and are used by position,
as before; so is an rsatoolbox object without an ``nsdId`` descriptor.

rsatoolbox is imported only when an RDMs is built (:func:`to_rdms`); recognising its
objects never imports it.
"""

from __future__ import annotations

import sys

import numpy as np

from ._condensed import _pair_index, n_items

__all__ = ["NSD_ID", "to_rdms", "from_rdms", "from_dataset", "is_rdms", "is_dataset"]

#: Name of the rsatoolbox pattern (``RDMs``) / observation (``Dataset``) descriptor holding
#: the 0-based NSD image id of each condition.
NSD_ID = "nsdId"


def _loaded_class(module: str, name: str):
    """A class of an already imported module, or ``None`` (an object of a module that was
    never imported cannot be an instance of it)."""
    mod = sys.modules.get(module)
    return getattr(mod, name, None) if mod is not None else None


def is_rdms(obj) -> bool:
    """Whether ``obj`` is an :class:`rsatoolbox.rdm.RDMs` (never imports rsatoolbox).

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool
        True for an ``RDMs`` (or a subclass).
    """
    cls = _loaded_class("rsatoolbox.rdm.rdms", "RDMs")
    return cls is not None and isinstance(obj, cls)


def is_dataset(obj) -> bool:
    """Whether ``obj`` is an rsatoolbox dataset (``DatasetBase``; never imports rsatoolbox).

    Parameters
    ----------
    obj : object
        Anything.

    Returns
    -------
    bool
        True for a :class:`rsatoolbox.data.Dataset` (or another ``DatasetBase``).
    """
    cls = _loaded_class("rsatoolbox.data.base", "DatasetBase")
    return cls is not None and isinstance(obj, cls)


def _check_ids(ids, n: int, what: str) -> np.ndarray:
    """Validated 0-based integer ids, one per condition, distinct."""
    raw = np.asarray(ids)
    if raw.ndim != 1 or raw.size != n:
        raise ValueError(f"{what}: expected {n} nsdIds (one per condition), got shape {raw.shape}")
    if raw.size and not (np.issubdtype(raw.dtype, np.integer)
                         or (np.issubdtype(raw.dtype, np.floating) and np.all(raw == np.round(raw)))):
        raise ValueError(f"{what}: nsdIds must be integers, got dtype {raw.dtype}")
    out = raw.astype(np.int64)
    if out.size and out.min() < 0:
        raise ValueError(f"{what}: nsdIds are 0-based and non-negative, got {int(out.min())}")
    if np.unique(out).size != out.size:
        raise ValueError(f"{what}: nsdIds must be distinct (one condition per image); average repeated "
                         "patterns first (e.g. rsatoolbox.data.average_dataset_by)")
    return out


def _descriptor_ids(descriptors: dict, n: int, what: str):
    """The ``nsdId`` entry of a descriptor dict as int64 ids, or ``None`` without one."""
    if NSD_ID not in descriptors:
        return None
    return _check_ids(descriptors[NSD_ID], n, f"{what} descriptor {NSD_ID!r}")


def _reorder_vectors(vectors: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Condensed RDMs ``(..., n_pairs)`` with their conditions taken in ``order``."""
    n = n_items(vectors.shape[-1])
    return vectors[..., _pair_index(n, order)]


def _order(ref: np.ndarray, ids: np.ndarray, what: str, reorder: bool):
    """Positions in ``ids`` of ``ref``'s ids (``None`` when already equal); raises on a
    mismatch, or on a permutation without ``reorder``."""
    if ids.size == ref.size and np.array_equal(ids, ref):
        return None
    same_set = ids.size == ref.size and np.array_equal(np.sort(ids), np.sort(ref))
    if not same_set:
        missing = np.setdiff1d(ref, ids)[:5].tolist()
        extra = np.setdiff1d(ids, ref)[:5].tolist()
        raise ValueError(f"{what}: its {NSD_ID} pattern descriptor ({ids.size} images) does not hold the "
                         f"same images as the reference ({ref.size} images); missing e.g. {missing}, "
                         f"extra e.g. {extra}")
    if not reorder:
        k = int(np.flatnonzero(ids != ref)[0])
        raise ValueError(f"{what}: the same {NSD_ID}s in another order (first difference at condition {k}: "
                         f"{int(ids[k])} vs {int(ref[k])} in the reference); pass reorder=True to reorder "
                         "it to the reference's order, or reorder it yourself (RDMs.sort_by)")
    return np.argsort(ids, kind="stable")[np.searchsorted(np.sort(ids), ref)]


def _align(ref_ids, ids, values, what: str, reorder: bool, kind: str):
    """``values`` (condensed RDMs ``(..., n_pairs)`` for ``kind="rdm"``, pattern rows
    ``(n, ...)`` for ``kind="rows"``) checked, and reordered if asked, to ``ref_ids``.
    Nothing to check when either side has no ids."""
    if ref_ids is None or ids is None:
        return values
    order = _order(ref_ids, ids, what, reorder)
    if order is None:
        return values
    return _reorder_vectors(np.asarray(values), order) if kind == "rdm" else np.asarray(values)[order]


def from_rdms(rdms, nsd_ids=None, *, reorder: bool = False):
    """The condensed vectors and ``nsdId`` s of an :class:`rsatoolbox.rdm.RDMs`.

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs
        One or more RDMs over the same conditions.
    nsd_ids : array-like of int of shape (n_conditions,), optional
        The 0-based nsdIds the RDMs must be over, in this order. They are checked against
        the ``nsdId`` pattern descriptor, which must then be present.
    reorder : bool, default=False
        When the descriptor holds the same ids as ``nsd_ids`` in another order, reorder the
        RDMs to ``nsd_ids`` instead of raising.

    Returns
    -------
    vectors : ndarray of shape (n_rdm, n_pairs)
        Condensed RDMs in ``pdist`` order: ``RDMs.dissimilarities`` itself (not a copy)
        unless reordered; always 2-D, one row per RDM.
    ids : ndarray of int64 of shape (n_conditions,) or None
        The ``nsdId`` pattern descriptor (``nsd_ids`` after a reorder); ``None`` when the
        RDMs have none.

    Raises
    ------
    TypeError
        When ``rdms`` is not an rsatoolbox ``RDMs``.
    ValueError
        When ``nsdId`` is malformed (not one distinct non-negative integer per condition),
        missing while ``nsd_ids`` is given, or does not match ``nsd_ids``.

    Examples
    --------
    >>> import numpy as np
    >>> r = to_rdms(np.arange(6.0), nsd_ids=[7, 3, 5, 1])
    >>> v, ids = from_rdms(r)
    >>> v.shape, ids.tolist()
    ((1, 6), [7, 3, 5, 1])
    """
    if not is_rdms(rdms):
        raise TypeError(f"expected an rsatoolbox.rdm.RDMs, got {type(rdms).__name__}")
    vectors = np.asarray(rdms.dissimilarities)
    if vectors.ndim != 2:
        raise ValueError(f"RDMs.dissimilarities must be (n_rdm, n_pairs), got shape {vectors.shape}")
    n = n_items(vectors.shape[1])
    ids = _descriptor_ids(rdms.pattern_descriptors, n, "RDMs pattern")
    if nsd_ids is None:
        return vectors, ids
    ref = _check_ids(nsd_ids, n, "nsd_ids")
    if ids is None:
        raise ValueError(f"the RDMs have no {NSD_ID!r} pattern descriptor to check against nsd_ids "
                         f"(pattern descriptors: {sorted(rdms.pattern_descriptors)})")
    return _align(ref, ids, vectors, "RDMs", reorder, "rdm"), ref


def from_dataset(dataset, nsd_ids=None, *, reorder: bool = False):
    """The patterns and ``nsdId`` s of an rsatoolbox :class:`~rsatoolbox.data.Dataset`.

    Parameters
    ----------
    dataset : rsatoolbox.data.Dataset
        Patterns: ``measurements`` of shape ``(n_obs, n_channels)``, one observation per
        image (average repeats first; rsatoolbox's ``average_dataset_by``).
    nsd_ids : array-like of int of shape (n_obs,), optional
        The 0-based nsdIds the rows must be, in this order; checked against the
        ``nsdId`` observation descriptor, which must then be present.
    reorder : bool, default=False
        When the descriptor holds the same ids as ``nsd_ids`` in another order, reorder the
        rows to ``nsd_ids`` instead of raising.

    Returns
    -------
    X : ndarray of shape (n_obs, n_channels)
        The measurements (the dataset's own array, not copied unless reordered).
    ids : ndarray of int64 of shape (n_obs,) or None
        The ``nsdId`` observation descriptor; ``None`` when there is none.

    Raises
    ------
    TypeError
        When ``dataset`` is not an rsatoolbox dataset.
    ValueError
        When the measurements are not 2-D (e.g. a ``TemporalDataset``), or ``nsdId`` is
        malformed (repeated ids included), missing while ``nsd_ids`` is given, or does not
        match ``nsd_ids``.
    """
    if not is_dataset(dataset):
        raise TypeError(f"expected an rsatoolbox.data.Dataset, got {type(dataset).__name__}")
    X = np.asarray(dataset.measurements)
    if X.ndim != 2:
        raise ValueError(f"Dataset.measurements must be (n_obs, n_channels), got shape {X.shape}")
    ids = _descriptor_ids(dataset.obs_descriptors, X.shape[0], "Dataset observation")
    if nsd_ids is None:
        return X, ids
    ref = _check_ids(nsd_ids, X.shape[0], "nsd_ids")
    if ids is None:
        raise ValueError(f"the Dataset has no {NSD_ID!r} observation descriptor to check against nsd_ids "
                         f"(observation descriptors: {sorted(dataset.obs_descriptors)})")
    return _align(ref, ids, X, "Dataset", reorder, "rows"), ref


def to_rdms(rdms, nsd_ids=None, *, names=None, rdm_descriptors=None, descriptors=None,
            pattern_descriptors=None, dissimilarity_measure: str | None = "correlation"):
    """Our condensed RDM(s) as an :class:`rsatoolbox.rdm.RDMs` with ``nsdId`` descriptors.

    Parameters
    ----------
    rdms : array-like of shape (n_pairs,), (k, n_pairs) or (k, n, n)
        Condensed RDMs in ``pdist`` order (as :func:`compute_rdm` returns them), or a stack
        of square RDMs (symmetric, zero diagonal). A single square matrix is passed as
        ``D[None]`` (a 2-D array is always read as condensed vectors).
    nsd_ids : array-like of int of shape (n_conditions,), optional
        0-based nsdIds of the conditions, in the RDMs' order; stored as the ``nsdId``
        pattern descriptor.
    names : str or sequence of str, optional
        One name per RDM (a str for a single RDM), stored as the ``name`` RDM descriptor.
    rdm_descriptors : dict, optional
        More RDM descriptors (e.g. ``{"subject": "subj01", "roi": ["early", "ventral"]}``):
        a scalar is repeated for every RDM, a sequence gives one value per RDM.
    descriptors : dict, optional
        Descriptors of the whole object (rsatoolbox's ``descriptors``).
    pattern_descriptors : dict, optional
        More pattern descriptors, one value per condition.
    dissimilarity_measure : str or None, default="correlation"
        Name of the dissimilarity (:func:`compute_rdm`'s ``metric``: ``"correlation"``,
        ``"cosine"``, ``"euclidean"``). Our ``"euclidean"`` is the plain Euclidean
        distance; rsatoolbox's ``calc_rdm(method="euclidean")`` gives the *squared*
        distance divided by the number of channels and names it ``"squared euclidean"``.

    Returns
    -------
    rdms : rsatoolbox.rdm.RDMs
        ``n_rdm = k`` RDMs (1 for a 1-D input) with float64 dissimilarities, the
        ``nsdId`` pattern descriptor when ``nsd_ids`` is given, and the descriptors above.

    Raises
    ------
    ValueError
        For a length that is not ``n (n − 1) / 2``, a square stack that is not symmetric
        with a zero diagonal, or ``nsd_ids`` / descriptors of the wrong length.

    Examples
    --------
    >>> import numpy as np
    >>> r = to_rdms(np.array([0.2, 0.5, 0.9]), nsd_ids=[10, 2, 7], names="model")
    >>> r.n_rdm, r.n_cond, r.pattern_descriptors["nsdId"], r.rdm_descriptors["name"]
    (1, 3, [10, 2, 7], ['model'])
    """
    from rsatoolbox.rdm import RDMs

    d = np.array(rdms, dtype=np.float64)  # a copy: the RDMs never shares the caller's array
    if d.ndim == 1:
        d = d[None]
    if d.ndim == 3:
        if d.shape[1] != d.shape[2]:
            raise ValueError(f"square RDMs must be (k, n, n), got shape {d.shape}")
        n = d.shape[1]
        if not (np.allclose(d, d.transpose(0, 2, 1), equal_nan=True)
                and np.all(np.diagonal(d, axis1=1, axis2=2) == 0)):
            raise ValueError("square RDMs must be symmetric with a zero diagonal")
        iu = np.triu_indices(n, 1)
        d = d[:, iu[0], iu[1]]
    elif d.ndim != 2:
        raise ValueError(f"rdms must be (n_pairs,), (k, n_pairs) or (k, n, n), got shape {d.shape}")
    k = d.shape[0]
    n = n_items(d.shape[1])
    if n < 2:
        raise ValueError(f"an RDM needs at least 2 conditions, got {n}")
    rdm_desc = {}
    for key, value in dict(rdm_descriptors or {}).items():
        if isinstance(value, str) or np.ndim(value) == 0:
            value = [value] * k
        value = list(value)
        if len(value) != k:
            raise ValueError(f"rdm_descriptors[{key!r}]: expected {k} values (one per RDM), got {len(value)}")
        rdm_desc[key] = value
    if names is not None:
        names = [names] if isinstance(names, str) else list(names)
        if len(names) != k:
            raise ValueError(f"names: expected {k} names (one per RDM), got {len(names)}")
        rdm_desc["name"] = [str(x) for x in names]
    pat_desc = {}
    for key, value in dict(pattern_descriptors or {}).items():
        value = list(value)
        if len(value) != n:
            raise ValueError(f"pattern_descriptors[{key!r}]: expected {n} values (one per condition), "
                             f"got {len(value)}")
        pat_desc[key] = value
    if nsd_ids is not None:
        pat_desc[NSD_ID] = [int(i) for i in _check_ids(nsd_ids, n, "nsd_ids")]
    return RDMs(d, dissimilarity_measure=dissimilarity_measure, descriptors=dict(descriptors or {}),
                rdm_descriptors=rdm_desc, pattern_descriptors=pat_desc)


# --------------------------------------------------------------------------- coercion at entry
def _rdm_arg(x, what: str, *, single: bool = False):
    """A function's RDM argument as ``(array, ids)``: an ``RDMs`` → its vectors (1-D when
    it holds one RDM; with ``single``, more than one raises), anything else unchanged
    with ``ids=None``."""
    if not is_rdms(x):
        return x, None
    v, ids = from_rdms(x)
    if v.shape[0] == 1:
        return v[0], ids
    if single:
        raise ValueError(f"{what}: expected one RDM, got an rsatoolbox RDMs holding {v.shape[0]} RDMs; "
                         "select one (e.g. rdms[0] or rdms.subset('name', ...))")
    return v, ids


def _patterns_arg(x, what: str):
    """A function's patterns argument as ``(array, ids)``: a ``Dataset`` → its measurements
    and ``nsdId`` (``None`` without), anything else unchanged with ``ids=None``."""
    if not is_dataset(x):
        return x, None
    try:
        return from_dataset(x)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def _pair(a, b, what_a: str, what_b: str, reorder: bool, *, single: bool = False):
    """Two RDM arguments as arrays, ``b`` checked (and reordered if asked) against ``a``."""
    a, ids_a = _rdm_arg(a, what_a, single=single)
    b, ids_b = _rdm_arg(b, what_b, single=single)
    return a, _align(ids_a, ids_b, b, what_b, reorder, "rdm")


def _rdm_stack_arg(x, what: str, reorder: bool):
    """An RDM-stack argument (subjects first): an ``RDMs`` → ``(n_rdm, n_pairs)``; a list of
    ``RDMs`` (one per subject, each one RDM or a stack) → stacked, every one aligned to the
    first's ``nsdId``. Anything else unchanged."""
    if is_rdms(x):
        return from_rdms(x)[0]
    if isinstance(x, (list, tuple)) and x and any(is_rdms(r) for r in x):
        if not all(is_rdms(r) for r in x):
            raise TypeError(f"{what}: a list mixing rsatoolbox RDMs and arrays; convert all or none")
        first, ref = None, None
        out = []
        for k, r in enumerate(x):
            v, ids = _rdm_arg(r, f"{what}[{k}]")
            if k == 0:
                first, ref = v, ids
            elif np.shape(v) != np.shape(first):
                raise ValueError(f"{what}[{k}]: shape {np.shape(v)} differs from {what}[0]'s {np.shape(first)}")
            out.append(_align(ref, ids, v, f"{what}[{k}]", reorder, "rdm"))
        return np.stack(out)
    return x


def _models_arg(models, ref_ids, reorder: bool, what: str = "models", *, single: bool = False):
    """Models (RDMs over all images or feature matrices) with rsatoolbox objects converted
    and aligned to the brain's ``ref_ids``: an ``RDMs`` → ``(n_rdm, n_pairs)``; a
    ``Dataset`` → its feature rows; a list → each item converted (an ``RDMs`` item must
    hold one RDM, as must a lone ``RDMs`` with ``single``)."""
    def one(m, w, stack_ok):
        if is_rdms(m):
            v, ids = _rdm_arg(m, w, single=not stack_ok)
            v = _align(ref_ids, ids, v, w, reorder, "rdm")
            # a list of 1-D vectors is always read as RDMs (a (k, n_pairs) array with
            # k == n_images would be read as features)
            return list(v) if v.ndim == 2 else v
        if is_dataset(m):
            X, ids = _patterns_arg(m, w)
            return _align(ref_ids, ids, X, w, reorder, "rows")
        return m

    if isinstance(models, (list, tuple)) and not single:
        return [one(m, f"{what}[{k}]", False) for k, m in enumerate(models)]
    return one(models, what, not single)
