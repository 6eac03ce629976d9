"""Searchlight neighbourhoods on volumes and surfaces, and mapping results back.

Definitions (the paper's and rsatoolbox's, stated explicitly):

- **Volume sphere**: voxels at Euclidean distance ``< radius`` (voxel units) from the centre
  (27 / 93 / 251 / 485 voxels for radius 2 / 3 / 4 / 5 in an unbounded mask), restricted to
  the mask (rsatoolbox ``truncate_at_boundary=True``).
- **Centre**: a mask voxel whose *full* sphere is at least ``threshold`` (default 50 %)
  inside the mask; voxels outside the array count as outside the mask.
- **Surface disc**: vertices at geodesic distance ``< radius_mm``, with geodesic distance
  approximated by shortest paths along mesh edges (Dijkstra, :mod:`scipy.sparse.csgraph`).

All indices (centres and neighbours) index the mask's voxels in C order, i.e. the columns of
``Y = volume[mask]`` (``np.flatnonzero(mask)`` order).
"""

from __future__ import annotations

import math

import numpy as np

from .._utils.numeric import check_float, check_indices, check_int

__all__ = ["sphere_offsets", "volume_neighbourhoods", "surface_neighbourhoods", "pad_neighbourhoods",
           "to_volume", "to_surface"]


def sphere_offsets(radius: float) -> np.ndarray:
    """Integer offsets ``(n_offsets, 3)`` with ``dx² + dy² + dz² < radius²`` (C order).

    Parameters
    ----------
    radius : float
        Sphere radius in voxels (> 0); the inequality is strict.

    Returns
    -------
    offsets : ndarray of int of shape (n_offsets, 3)
        27 / 93 / 251 / 485 offsets for radius 2 / 3 / 4 / 5.
    """
    radius = check_float(radius, "radius", min_value=0, min_inclusive=False)
    R = int(math.ceil(radius)) - 1
    g = np.arange(-R, R + 1)
    off = np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1).reshape(-1, 3)
    return off[(off**2).sum(1) < radius**2]


def volume_neighbourhoods(mask, radius: float, threshold: float = 0.5, *, chunk: int = 16384):
    """Searchlight spheres in a 3-D mask.

    Parameters
    ----------
    mask : array-like of bool of shape (X, Y, Z)
        The voxels to analyse (e.g. nsdgeneral).
    radius : float
        Sphere radius in voxels; a voxel is in the sphere when its distance to the centre
        is strictly less than ``radius`` (paper: 6 voxels at 1.8 mm).
    threshold : float, default=0.5
        Minimum fraction of the full sphere that must lie in the mask for a voxel to be a
        centre (paper: 0.5).
    chunk : int, default=16384
        Mask voxels processed at once (memory ``chunk × n_offsets`` int32).

    Returns
    -------
    centres : ndarray of int64 of shape (n_centres,)
        Indices into the mask's voxels (``np.flatnonzero(mask)`` order).
    neighbourhoods : list of ndarray of int64
        For each centre, the sorted indices (same indexing) of its in-mask sphere voxels.

    Notes
    -----
    The mask is padded by the radius and each sphere offset becomes one linear offset, so
    the spheres of a chunk of voxels are one fancy-indexing lookup into a label volume
    (−1 outside the mask). Offsets are sorted by linear offset, so each neighbourhood comes
    out sorted. Equivalent to rsatoolbox ``get_volume_searchlight(mask, radius,
    threshold, truncate_at_boundary=True)`` for the spheres, with the centre criterion
    evaluated on the untruncated sphere (rsatoolbox's truncated spheres are always 100 %
    in-mask, so its threshold has no effect there).
    """
    mask = np.asarray(mask)
    if mask.dtype.kind not in "biu":
        raise TypeError(f"mask must be a boolean (or 0/1) array, got dtype {mask.dtype}")
    mask = mask.astype(bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3-D, got shape {mask.shape}")
    radius = check_float(radius, "radius", min_value=0, min_inclusive=False)
    threshold = check_float(threshold, "threshold", min_value=0, max_value=1)
    chunk = check_int(chunk, "chunk", min_value=1)
    off = sphere_offsets(radius)
    R = int(math.ceil(radius)) - 1
    pshape = tuple(s + 2 * R for s in mask.shape)
    labels = np.full(pshape, -1, dtype=np.int32)
    n_mask = int(mask.sum())
    labels[R : R + mask.shape[0], R : R + mask.shape[1], R : R + mask.shape[2]][mask] = np.arange(
        n_mask, dtype=np.int32
    )
    labels = labels.ravel()
    strides = np.array([pshape[1] * pshape[2], pshape[2], 1], dtype=np.int64)
    off_lin = np.sort(off @ strides)
    base = np.argwhere(mask).astype(np.int64) + R
    base_lin = base @ strides
    centres, flats, counts = [], [], []
    for c0 in range(0, n_mask, chunk):
        L = labels[base_lin[c0 : c0 + chunk, None] + off_lin[None, :]]
        valid = L >= 0
        cnt = valid.sum(1)
        keep = cnt >= threshold * off.shape[0]
        Lk, vk = L[keep], valid[keep]
        centres.append(np.flatnonzero(keep) + c0)
        flats.append(Lk[vk].astype(np.int64))
        counts.append(cnt[keep])
    centres = np.concatenate(centres).astype(np.int64) if centres else np.zeros(0, np.int64)
    flat = np.concatenate(flats) if flats else np.zeros(0, np.int64)
    counts = np.concatenate(counts) if counts else np.zeros(0, np.int64)
    neighbourhoods = np.split(flat, np.cumsum(counts)[:-1]) if len(counts) else []
    return centres, neighbourhoods


def _mesh_arrays(mesh):
    if isinstance(mesh, (tuple, list)) and len(mesh) == 2:
        coords, faces = mesh
    elif hasattr(mesh, "coordinates") and hasattr(mesh, "faces"):
        coords, faces = mesh.coordinates, mesh.faces
    else:
        raise TypeError("mesh must be (coords, faces) or have .coordinates and .faces")
    faces = np.asarray(faces)
    if faces.dtype.kind not in "iu":
        raise TypeError(f"mesh faces must hold integer vertex indices, got dtype {faces.dtype}")
    return np.asarray(coords, dtype=np.float64), faces.astype(np.int64)


def surface_neighbourhoods(mesh, radius_mm: float, mask=None, threshold: float = 0.5):
    """Geodesic searchlight discs on a cortical surface mesh.

    Parameters
    ----------
    mesh : tuple of (coords, faces) or mesh object
        ``coords`` (n_vertices, 3) in mm, ``faces`` (n_faces, 3); any object with
        ``.coordinates`` and ``.faces`` (e.g. ``nilearn.datasets.load_fsaverage
        ("fsaverage5")["pial"].parts["left"]``).
    radius_mm : float
        Disc radius: vertices at geodesic distance ``< radius_mm``.
    mask : array-like of bool of shape (n_vertices,), optional
        Vertices to analyse (e.g. cortex without the medial wall). Distances are computed
        on the whole mesh; discs are restricted to the mask, and a vertex is a centre when
        at least ``threshold`` of its full disc is in the mask.
    threshold : float, default=0.5
        Minimum fraction of a vertex's full disc inside ``mask`` for it to be a centre.

    Returns
    -------
    centres : ndarray of int64 of shape (n_centres,)
        Indices into the mask's vertices (all vertices without a mask).
    neighbourhoods : list of ndarray of int64
        Sorted disc members, same indexing.

    Notes
    -----
    Geodesic distance is the shortest path over mesh edges weighted by their Euclidean
    length (``scipy.sparse.csgraph.dijkstra`` with ``limit=radius_mm``), an upper bound
    on the true geodesic distance that converges as the mesh is refined.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    coords, faces = _mesh_arrays(mesh)
    if coords.ndim != 2 or coords.shape[1] != 3 or coords.shape[0] == 0:
        raise ValueError(f"mesh coordinates must be (n_vertices, 3), got shape {coords.shape}")
    if not np.all(np.isfinite(coords)):
        raise ValueError("mesh coordinates hold NaN or inf")
    n = coords.shape[0]
    if faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(f"mesh faces must be (n_faces, 3), got shape {faces.shape}")
    check_indices(faces, "mesh faces", n, unique=False)
    radius_mm = check_float(radius_mm, "radius_mm", min_value=0, min_inclusive=False)
    threshold = check_float(threshold, "threshold", min_value=0, max_value=1)
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e = np.unique(np.sort(e, axis=1), axis=0)
    w = np.linalg.norm(coords[e[:, 0]] - coords[e[:, 1]], axis=1)
    graph = coo_matrix((w, (e[:, 0], e[:, 1])), shape=(n, n)).tocsr()
    mask = np.ones(n, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != (n,):
        raise ValueError(f"mask must have shape ({n},)")
    relabel = np.full(n, -1, dtype=np.int64)
    relabel[mask] = np.arange(mask.sum())
    sources = np.flatnonzero(mask)
    step = max(1, int(2**24 // n))
    centres, neigh = [], []
    for s0 in range(0, len(sources), step):
        src = sources[s0 : s0 + step]
        D = dijkstra(graph, directed=False, indices=src, limit=radius_mm)
        disc = D < radius_mm
        for k, row in enumerate(disc):
            members = np.flatnonzero(row)
            inside = relabel[members]
            inside = inside[inside >= 0]
            if inside.size >= threshold * members.size:
                centres.append(relabel[src[k]])
                neigh.append(inside)
    return np.asarray(centres, dtype=np.int64), neigh


def pad_neighbourhoods(neighbourhoods, fill: int = -1):
    """Padded representation of neighbourhoods.

    Parameters
    ----------
    neighbourhoods : list of array-like of int, or ndarray of int of shape (n_centres, max_size)
        A 2-D array is taken as already padded with negative ``fill`` values.
    fill : int, default=-1
        Value written in unused slots.

    Returns
    -------
    idx : ndarray of int64 of shape (n_centres, max_size)
        Each row's real entries first, then ``fill``.
    counts : ndarray of int64 of shape (n_centres,)
        Number of real entries per row (real entries come first).

    Raises
    ------
    TypeError
        When a neighbourhood holds non-integer indices (a float index is never truncated).
    """
    fill = check_int(fill, "fill")
    if isinstance(neighbourhoods, np.ndarray) and neighbourhoods.ndim == 2:
        if neighbourhoods.dtype.kind not in "iu":
            raise TypeError(f"neighbourhoods must hold integer indices, got dtype {neighbourhoods.dtype}")
        idx = neighbourhoods.astype(np.int64)
        valid = idx >= 0
        counts = valid.sum(1)
        if not np.all(valid == (np.arange(idx.shape[1])[None, :] < counts[:, None])):
            order = np.argsort(~valid, axis=1, kind="stable")
            idx = np.take_along_axis(idx, order, axis=1)
        idx = np.where(np.arange(idx.shape[1])[None, :] < counts[:, None], idx, fill)
        return idx, counts
    # row by row: no temporary of the size of all the entries (the 10 mm discs of full
    # fsaverage hold ~10^8 of them per hemisphere)
    counts = np.array([np.size(a) for a in neighbourhoods], dtype=np.int64)
    vmax = int(counts.max()) if counts.size else 0
    idx = np.full((counts.size, vmax), fill, dtype=np.int64)
    for i, a in enumerate(neighbourhoods):
        a = np.ravel(a)
        if a.size and a.dtype.kind not in "iu":
            raise TypeError(f"neighbourhoods[{i}] must hold integer indices, got dtype {a.dtype}")
        idx[i, :counts[i]] = a
    return idx, counts


def _check_values(values, centres) -> None:
    if values.ndim not in (1, 2) or values.shape[-1] != centres.size:
        raise ValueError(f"values must be (n_centres,) or (k, n_centres) with n_centres = {centres.size} "
                         f"(the length of centres), got shape {values.shape}")


def to_volume(values, mask, centres, affine=None):
    """Place per-centre values back into the volume.

    Parameters
    ----------
    values : array-like of shape (n_centres,) or (k, n_centres)
        One value (or ``k`` values) per centre.
    mask : array-like of bool of shape (X, Y, Z)
        The mask that defined the neighbourhoods.
    centres : array-like of int of shape (n_centres,)
        Indices into the mask's voxels (from :func:`volume_neighbourhoods`).
    affine : array-like of shape (4, 4), optional
        If given, return a :class:`nibabel.Nifti1Image` (4-D when ``values`` is 2-D).

    Returns
    -------
    volume : ndarray of float32 of shape (X, Y, Z) or (X, Y, Z, k), or nibabel.Nifti1Image
        NaN outside the centres; a Nifti1Image when ``affine`` is given.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 3:
        raise ValueError(f"mask must be 3-D, got shape {mask.shape}")
    values = np.asarray(values, dtype=np.float32)
    centres = check_indices(centres, "centres", int(mask.sum()), ndim=1)
    _check_values(values, centres)
    coords = np.argwhere(mask)[centres]
    if values.ndim == 1:
        vol = np.full(mask.shape, np.nan, dtype=np.float32)
        vol[tuple(coords.T)] = values
    else:
        vol = np.full(mask.shape + (values.shape[0],), np.nan, dtype=np.float32)
        vol[tuple(coords.T)] = values.T
    if affine is None:
        return vol
    import nibabel as nib

    return nib.Nifti1Image(vol, np.asarray(affine, dtype=np.float64))


def to_surface(values, n_vertices: int, centres, mask=None):
    """Place per-centre values on a surface: ``(n_vertices,)`` or ``(k, n_vertices)``, NaN elsewhere.

    Parameters
    ----------
    values : array-like of shape (n_centres,) or (k, n_centres)
        One value (or ``k`` values) per centre.
    n_vertices : int
        Vertices of the surface.
    centres : array-like of int of shape (n_centres,)
        Indices of the mask's vertices when ``mask`` is given, as returned by
        :func:`surface_neighbourhoods`; otherwise vertex ids.
    mask : array-like of bool of shape (n_vertices,), optional
        The mask that defined the neighbourhoods.

    Returns
    -------
    surface : ndarray of float32 of shape (n_vertices,) or (k, n_vertices)
        NaN at vertices that are not centres.
    """
    n_vertices = check_int(n_vertices, "n_vertices", min_value=1)
    values = np.asarray(values, dtype=np.float32)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (n_vertices,):
            raise ValueError(f"mask must have shape ({n_vertices},) (n_vertices), got {mask.shape}")
    centres = check_indices(centres, "centres", n_vertices if mask is None else int(mask.sum()), ndim=1)
    _check_values(values, centres)
    if mask is not None:
        centres = np.flatnonzero(mask)[centres]
    out = np.full(values.shape[:-1] + (n_vertices,), np.nan, dtype=np.float32)
    out[..., centres] = values
    return out


