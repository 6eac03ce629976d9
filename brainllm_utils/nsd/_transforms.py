"""Projection of a subject's 1.8-mm volume map to fsaverage, as NSD's mapping files define it.

NSD ships, per subject, the route nsdcode's ``NSDmapdata.fit`` takes from ``func1pt8`` to
``fsaverage`` (``nsddata/ppdata/subjXX/transforms/``):

1. ``{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``: for every vertex of the subject's native
   surface at three cortical depths, its (x, y, z) position in the 1.8-mm grid as
   **1-based** voxel coordinates (MATLAB's), ``9999`` where a vertex has none; shape
   ``(n_native, 1, 1, 3)``. The volume is interpolated there (cubic by default).
2. The three depths are averaged (the paper: "mean of 3 depths").
3. ``{lh,rh}.white-to-fsaverage.mgz``: for every fsaverage vertex, the **1-based** index of
   its native (``white``) vertex (nearest neighbour); shape ``(n_fsaverage, 1, 1)``.

Conventions matched to nsdcode (``nsdcode/interp_wrapper.py`` and ``transform_data.py``,
PyPI ``nsdcode`` 1.1.dev260054000): NaN voxels of the volume are set to 0 before
interpolating (``np.nan_to_num``); the interpolation is
``scipy.ndimage.map_coordinates(vol, coords - 1, order=3, mode="nearest")`` (B-spline with
its prefilter); coordinates that are non-finite, ``9999`` or outside the grid give
``badval``. The grid window differs on one point: NSD's MATLAB ``nsd_mapdata`` keeps
1-based coordinates in ``[1, n]`` (``bounds="nsd"``, the default), while nsdcode's Python
port tests the 0-based coordinates against ``[1, n]`` (one voxel shifted:
``bounds="nsdcode"`` reproduces it). They differ only for vertices within one voxel of the
grid's faces.
"""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from .layout import NSDFileError, subject_name

__all__ = ["DEPTHS", "INVALID_COORDINATE", "transform_files", "load_fsaverage_transforms",
           "volume_to_surface", "project_to_fsaverage"]

#: The three cortical depths NSD's func1pt8 → fsaverage route averages.
DEPTHS = ("layerB1", "layerB2", "layerB3")
#: The value NSD's transform files hold where a vertex has no position.
INVALID_COORDINATE = 9999.0
#: Interpolation orders by nsdcode's names.
_ORDERS = {"nearest": 0, "linear": 1, "cubic": 3}
#: Largest share of a transform's (valid) vertices allowed outside the grid before the
#: file is taken for another subject's or space's.
MAX_OUTSIDE = 0.01


def transform_files(subject) -> dict:
    """Relative paths of a subject's func1pt8 → fsaverage transform files.

    Parameters
    ----------
    subject : str or int
        ``"subj01"``, ``1``, ...

    Returns
    -------
    files : dict
        ``{hemi: {"layerB1": path, "layerB2": path, "layerB3": path, "fsaverage": path}}``
        for ``hemi`` in ``("lh", "rh")``, paths relative to the NSD root.
    """
    tdir = f"nsddata/ppdata/{subject_name(subject)}/transforms"
    return {h: {**{d: f"{tdir}/{h}.func1pt8-to-{d}.mgz" for d in DEPTHS},
                "fsaverage": f"{tdir}/{h}.white-to-fsaverage.mgz"} for h in ("lh", "rh")}


def _read_mgh(nsd, rel):
    import nibabel as nib

    p = nsd.path(rel, "transform file")
    try:
        return p, np.asarray(nib.load(p).get_fdata(dtype=np.float64))
    except Exception as err:
        raise NSDFileError(f"{p}: cannot read the transform ({err}); the file may be truncated") from err


@fill_doc
def load_fsaverage_transforms(nsd, subject) -> dict:
    """Read and check a subject's func1pt8 → fsaverage transform files.

    Checks, each error naming the file: every depth file is ``(n_native, 1, 1, 3)`` (or
    ``(n_native, 3)`` once squeezed) with the same ``n_native`` for the three depths;
    coordinates are finite or ``9999``; at most 1 % of the valid coordinates lie outside the
    subject's func1pt8 grid (read from ``brainmask.nii.gz``; more means the file belongs to
    another grid); the index file has one entry per fsaverage vertex of the data
    (:meth:`NSD.n_vertices`: 163,842 on NSD) holding integers in ``1 … n_native``.

    Parameters
    ----------
    %(nsd)s
    %(subject_any)s

    Returns
    -------
    transforms : dict
        ``{hemi: (coords, index)}`` for ``hemi`` in ``("lh", "rh")``: ``coords`` float64
        ``(3, n_native, 3)``, the depths' **1-based** voxel coordinates as stored, NaN where
        the file holds ``9999``; ``index`` int64 ``(n_fsaverage,)``, the **0-based** native
        vertex of each fsaverage vertex.

    Raises
    ------
    NSDFileError
        A file is missing (with the download hint) or fails a check.
    """
    name = subject_name(subject)
    grid = np.array(nsd.brainmask(name).shape, dtype=np.float64)
    n_fs = nsd.n_vertices()
    out = {}
    for k, (h, files) in enumerate(transform_files(name).items()):
        coords, n_native = [], None
        for depth in DEPTHS:
            p, a = _read_mgh(nsd, files[depth])
            a = a.reshape(a.shape[0], -1, order="F")
            if a.ndim != 2 or a.shape[1] != 3:
                raise NSDFileError(f"{p}: expected (n_vertices, 1, 1, 3) voxel coordinates, "
                                   f"got shape {a.shape}")
            if n_native is not None and a.shape[0] != n_native:
                raise NSDFileError(f"{p}: {a.shape[0]} vertices, but {h}.func1pt8-to-{DEPTHS[0]}.mgz "
                                   f"has {n_native} (the three depths share the native surface)")
            n_native = a.shape[0]
            if not np.isfinite(a).all():
                raise NSDFileError(f"{p}: non-finite coordinates (NSD marks missing ones with 9999)")
            a = np.where(a == INVALID_COORDINATE, np.nan, a)
            ok = np.isfinite(a).all(1)
            outside = ok & ((a < 0.5) | (a > grid + 0.5)).any(1)
            if ok.any() and outside.sum() > MAX_OUTSIDE * ok.sum():
                raise NSDFileError(
                    f"{p}: {int(outside.sum())} of {int(ok.sum())} vertices lie outside {name}'s "
                    f"func1pt8 grid {tuple(int(g) for g in grid)} (1-based voxel coordinates): "
                    "a transform of another subject or space?")
            coords.append(a)
        p, idx = _read_mgh(nsd, files["fsaverage"])
        idx = idx.reshape(-1) if idx.size == idx.shape[0] else idx
        if idx.ndim != 1 or idx.shape[0] != n_fs[k]:
            raise NSDFileError(f"{p}: expected ({n_fs[k]}, 1, 1), one native vertex per fsaverage "
                               f"vertex of the data, got shape {idx.shape}")
        if not (np.isfinite(idx).all() and np.all(idx == np.rint(idx))
                and idx.min() >= 1 and idx.max() <= n_native):
            raise NSDFileError(f"{p}: expected integer 1-based vertex indices in 1..{n_native} "
                               f"(the native surface of {h}.func1pt8-to-layerB1.mgz)")
        out[h] = (np.stack(coords), idx.astype(np.int64) - 1)
    return out


def _check_bounds(bounds):
    if bounds not in ("nsd", "nsdcode"):
        raise ValueError(f"bounds={bounds!r}: expected 'nsd' (MATLAB nsd_mapdata's window) "
                         "or 'nsdcode' (nsdcode's Python port)")


def volume_to_surface(volume, coords, interp: str = "cubic", badval: float = np.nan,
                      bounds: str = "nsd") -> np.ndarray:
    """Interpolate a volume at 1-based voxel coordinates, nsdcode's way.

    Parameters
    ----------
    volume : array-like of shape (X, Y, Z)
        The map; NaN voxels count as 0 (nsdcode's ``np.nan_to_num``).
    coords : array-like of shape (n_points, 3)
        **1-based** voxel coordinates (NSD's transform files); NaN or ``9999``: no position.
    interp : {"cubic", "linear", "nearest"}, default="cubic"
        B-spline order 3, 1 or 0 (``map_coordinates`` with ``mode="nearest"``).
    badval : float, default=NaN
        Value of points without a position or outside the grid (nsdcode's default: 0).
    bounds : {"nsd", "nsdcode"}, default="nsd"
        Grid window: ``"nsd"`` keeps 1-based coordinates in ``[1, n]`` per axis (NSD's
        MATLAB code); ``"nsdcode"`` tests the 0-based ones against ``[1, n]`` as nsdcode's
        Python port does.

    Returns
    -------
    values : ndarray of float64 of shape (n_points,)
        The interpolated values.
    """
    from scipy.ndimage import map_coordinates

    if interp not in _ORDERS:
        raise ValueError(f"interp={interp!r}: expected one of {sorted(_ORDERS)}")
    _check_bounds(bounds)
    vol = np.asarray(volume, dtype=np.float64)
    if vol.ndim != 3:
        raise ValueError(f"volume: expected (X, Y, Z), got shape {vol.shape}")
    c = np.array(coords, dtype=np.float64)
    if c.ndim != 2 or c.shape[1] != 3:
        raise ValueError(f"coords: expected (n_points, 3), got shape {c.shape}")
    c[c == INVALID_COORDINATE] = np.nan
    c0 = c - 1.0  # 0-based
    bad = ~np.isfinite(c0).all(1)
    c0[bad] = 0.0
    shape = np.array(vol.shape, dtype=np.float64)
    test = c0 if bounds == "nsdcode" else c  # nsdcode compares the 0-based values with [1, n]
    bad |= ((test < 1) | (test > shape)).any(1)
    out = map_coordinates(np.nan_to_num(vol), c0.T, order=_ORDERS[interp], mode="nearest")
    out[bad] = badval
    return out


@fill_doc
def project_to_fsaverage(volume, subject, nsd, *, interp: str = "cubic", badval: float = np.nan,
                         bounds: str = "nsd", transforms=None) -> np.ndarray:
    """Project a subject's func1pt8 map to fsaverage as ``NSDmapdata.fit`` does.

    func1pt8 → ``{lh,rh}.layerB1..3`` (interpolated, :func:`volume_to_surface`), the mean of
    the three depths, then ``{lh,rh}.white-to-fsaverage`` (each fsaverage vertex takes its
    native vertex's value). This is the route of the paper's searchlight maps
    (``paper_methods.md`` §3). Linear in the volume: projecting the mean of maps equals the
    mean of the projections.

    Parameters
    ----------
    volume : array-like of shape (X, Y, Z)
        The map in the subject's 1.8-mm grid (checked against ``brainmask.nii.gz``); NaN
        voxels count as 0, as in nsdcode.
    %(subject_any)s
    %(nsd)s
    interp : {"cubic", "linear", "nearest"}, default="cubic"
        Interpolation at the depths (the paper: cubic, nsdcode's default).
    badval : float, default=NaN
        Value of a vertex with no position in the grid at one of the depths (nsdcode's
        default is 0; NaN keeps such vertices out of group statistics).
    bounds : {"nsd", "nsdcode"}, default="nsd"
        The grid window (:func:`volume_to_surface`).
    transforms : dict, optional
        :func:`load_fsaverage_transforms`'s result for this subject (read here when missing).

    Returns
    -------
    values : ndarray of float64 of shape (n_vertices_lh + n_vertices_rh,)
        The map on fsaverage, left hemisphere first (the order of :meth:`NSD.betas`).

    Raises
    ------
    ValueError
        ``volume`` is not on the subject's grid.
    NSDFileError
        A transform file is missing or fails a check (:func:`load_fsaverage_transforms`).
    """
    name = subject_name(subject)
    vol = np.asarray(volume, dtype=np.float64)
    grid = tuple(nsd.brainmask(name).shape)
    if vol.shape != grid:
        raise ValueError(f"volume: shape {vol.shape} is not {name}'s func1pt8 grid {grid} "
                         f"(nsddata/ppdata/{name}/func1pt8mm/brainmask.nii.gz)")
    if transforms is None:
        transforms = load_fsaverage_transforms(nsd, name)
    parts = []
    for h in ("lh", "rh"):
        coords, index = transforms[h]
        depth = np.stack([volume_to_surface(vol, c, interp, badval, bounds) for c in coords])
        native = depth.mean(0)
        parts.append(native[index])
    return np.concatenate(parts)
