"""A full-resolution fsaverage-like mesh: an icosahedral sphere, deformed to brain-like shapes.

FreeSurfer's fsaverage is an icosahedral sphere subdivided 7 times (163,842 vertices per
hemisphere, 327,680 triangles). :func:`icosphere` builds that sphere (vectorised edge
subdivision, deterministic; the vertices of order ``k`` are the first ``10·4^k + 2`` of
every higher order, as fsaverage5's are the first 10,242 of fsaverage) and
:func:`hemisphere_surfaces` deforms it into the four surfaces the book reads
(``pial``, ``white``, ``inflated``, ``sphere``), in mm, per hemisphere. They are not
fsaverage's anatomy (no real sulci): an ellipsoid the size of a hemisphere with folds on
the pial and white surfaces, so that geodesic neighbourhoods have brain-like sizes.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

__all__ = ["SURFACES", "icosphere", "hemisphere_surfaces", "write_surfaces"]

#: The FreeSurfer surfaces written under ``nsddata/freesurfer/fsaverage/surf/``.
SURFACES = ("pial", "white", "inflated", "sphere")

#: Right-hemisphere ellipsoid (centre, radii) in MNI-like mm; the left one is its mirror.
_CENTRE = np.array([36.0, -18.0, 15.0])
_RADII = np.array([34.0, 88.0, 65.0])


@lru_cache(maxsize=2)
def icosphere(order: int):
    """Unit icosahedral sphere subdivided ``order`` times.

    Parameters
    ----------
    order : int
        Number of subdivisions, 0…8 (7 gives fsaverage's 163,842 vertices).

    Returns
    -------
    vertices : ndarray of float64 of shape (10 * 4**order + 2, 3)
        Unit vectors (read-only).
    faces : ndarray of int32 of shape (20 * 4**order, 3)
        Triangles, counter-clockwise seen from outside (read-only).
    """
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 0 <= order <= 8:
        raise ValueError(f"order must be an int in 0..8, got {order!r}")
    t = (1 + 5 ** 0.5) / 2
    v = np.array([[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
                  [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]], float)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    f = np.array([[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4],
                  [11, 10, 2], [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8],
                  [3, 8, 9], [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]], np.int64)
    for _ in range(int(order)):
        n = v.shape[0]
        edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
        key = np.minimum(edges[:, 0], edges[:, 1]) * n + np.maximum(edges[:, 0], edges[:, 1])
        uniq, inv = np.unique(key, return_inverse=True)
        a, b = uniq // n, uniq % n
        mid = v[a] + v[b]
        mid /= np.linalg.norm(mid, axis=1, keepdims=True)
        v = np.concatenate([v, mid])
        m01, m12, m20 = (inv.reshape(3, -1) + n)
        f = np.concatenate([np.stack([f[:, 0], m01, m20], 1), np.stack([f[:, 1], m12, m01], 1),
                            np.stack([f[:, 2], m20, m12], 1), np.stack([m01, m12, m20], 1)])
    f = f.astype(np.int32)
    v.setflags(write=False)
    f.setflags(write=False)
    return v, f


def _folds(x):
    """Smooth deterministic 'gyral' pattern in [−1, 1] from positions (mm)."""
    return (np.sin(x[:, 0] * 0.31 + 0.4) * np.sin(x[:, 1] * 0.23) * np.sin(x[:, 2] * 0.27 + 1.1)
            + 0.5 * np.sin(x[:, 1] * 0.11 + x[:, 2] * 0.09)) / 1.5


@lru_cache(maxsize=2)
def hemisphere_surfaces(order: int = 7):
    """The four surfaces of each hemisphere, built on :func:`icosphere` of ``order``.

    ``inflated``: an ellipsoid (radii 34 × 88 × 65 mm, centred at x = ±36 mm);
    ``pial``: the ellipsoid with radial folds of up to ±4 mm; ``white``: 2.5 mm inside
    ``pial``; ``sphere``: radius 100 mm, as FreeSurfer's ``?h.sphere``. The left
    hemisphere mirrors the right in x (its triangles are re-wound so that they stay
    counter-clockwise from outside).

    Parameters
    ----------
    order : int, default=7
        Subdivisions of the icosahedron.

    Returns
    -------
    surfaces : dict
        ``{"left"|"right": {"pial"|"white"|"inflated"|"sphere": (coords (V, 3) float64, faces (F, 3) int32)}}``.
    """
    u, faces = icosphere(order)
    out = {}
    for hemi, sign in (("left", -1.0), ("right", 1.0)):
        flip = np.array([sign, 1.0, 1.0])
        centre = _CENTRE * flip
        infl = centre + u * _RADII * flip
        fold = 4.0 * _folds(infl)[:, None]
        pial = infl + u * flip * fold
        white = pial - u * flip * 2.5
        sphere = u * flip * 100.0
        hemi_faces = faces if sign > 0 else faces[:, [0, 2, 1]]
        out[hemi] = {name: (np.ascontiguousarray(xyz), np.ascontiguousarray(hemi_faces))
                     for name, xyz in (("pial", pial), ("white", white), ("inflated", infl), ("sphere", sphere))}
    return out


def write_surfaces(folder, order: int = 7):
    """Write ``{lh,rh}.{pial,white,inflated,sphere}`` (FreeSurfer geometry) into ``folder``.

    Parameters
    ----------
    folder : str or path-like
        Destination (``<root>/nsddata/freesurfer/fsaverage/surf``), created if needed.
    order : int, default=7
        Subdivisions of the icosahedron (7: 163,842 vertices per hemisphere).

    Returns
    -------
    paths : list of pathlib.Path
        The eight files written.
    """
    from nibabel.freesurfer import write_geometry

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for hemi, h in (("left", "lh"), ("right", "rh")):
        for name in SURFACES:
            coords, faces = hemisphere_surfaces(order)[hemi][name]
            path = folder / f"{h}.{name}"
            write_geometry(path, coords, faces, create_stamp="created by brainllm synth")
            paths.append(path)
    return paths
