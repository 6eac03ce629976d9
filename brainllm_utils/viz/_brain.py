"""Brain maps: values on the fsaverage5 inflated surface (several views), and volume slices.

Every ``plot_*`` function draws into an ``Axes`` it is given (or creates one) and returns it.
:func:`view_surface_map` returns an interactive 3-D view (nilearn's ``view_surf``, plotly) that
a notebook shows inline and that works offline (plotly.js is inlined in the view).

Surface maps are drawn over the fsaverage sulcal depth (grey shading of the folds): vertices
that carry no value (NaN) or fall under the threshold show the cortex, not a colour.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["FSAVERAGE5_VERTICES", "FSAVERAGE_VERTICES", "SURFACE_VIEWS", "surface_axes", "plot_surface",
           "plot_surface_views", "plot_volume_slices", "view_surface_map"]

#: Vertices per hemisphere of fsaverage5, the first vertices of every finer fsaverage mesh.
FSAVERAGE5_VERTICES = 10242
#: Vertices per hemisphere of the fsaverage meshes a map may come on: fsaverage5, 6 and
#: fsaverage (NSD's ``fsaverage`` space, 163,842).
FSAVERAGE_VERTICES = {10242: "fsaverage5", 40962: "fsaverage6", 163842: "fsaverage"}
#: Colormap of one-sided maps (values >= 0): inferno without its black end, so that the
#: weakest values shown stay visible on the grey cortex.
_ONE_SIDED = ("inferno", 0.2, 1.0)
#: The four (hemisphere, view) panels used for whole-brain maps.
SURFACE_VIEWS = (("left", "lateral"), ("left", "ventral"), ("right", "lateral"), ("right", "ventral"))


def surface_axes(fig, nrows: int, ncols: int, index: int):
    """A 3-D ``Axes`` for surface plots (``fig.add_subplot(..., projection='3d')``).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        The figure.
    nrows, ncols : int
        Grid of subplots.
    index : int
        1-based position in the grid (as :meth:`~matplotlib.figure.Figure.add_subplot`).

    Returns
    -------
    ax : mpl_toolkits.mplot3d.axes3d.Axes3D
        The new Axes.
    """
    return fig.add_subplot(nrows, ncols, index, projection="3d")


def _fsaverage5(hemi: str):
    """(inflated mesh, sulcal depth) of one fsaverage5 hemisphere; bundled with nilearn."""
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")["inflated"].parts[hemi]
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal")
    return mesh, np.asarray(sulc.data.parts[hemi])


def _to_fsaverage5(values: np.ndarray, hemi: str) -> np.ndarray:
    """One hemisphere's values on fsaverage5 from lh-then-rh values of any fsaverage mesh."""
    values = np.asarray(values, dtype=np.float32).ravel()
    if values.size % 2:
        raise ValueError(f"values: expected lh then rh vertices (even length), got {values.size}")
    per_hemi = values.size // 2
    if per_hemi < FSAVERAGE5_VERTICES:
        raise ValueError(f"values: {per_hemi} vertices per hemisphere, fewer than fsaverage5")
    half = values[:per_hemi] if hemi == "left" else values[per_hemi:]
    return half[:FSAVERAGE5_VERTICES]  # fsaverage5 vertices are the first of each finer mesh


def _one_sided_cmap():
    """The default colormap of maps without negative values (see ``_ONE_SIDED``)."""
    import matplotlib
    from matplotlib.colors import LinearSegmentedColormap

    name, lo, hi = _ONE_SIDED
    base = matplotlib.colormaps[name]
    return LinearSegmentedColormap.from_list(f"{name}_visible", base(np.linspace(lo, hi, 256)))


def _display_values(data: np.ndarray, vmin) -> np.ndarray:
    """Values as drawn: NaN (the cortex shows) below a one-sided range.

    A map shown from ``vmin >= 0`` has no colour for values under ``vmin``: they show the
    cortex instead of the lowest colour, which would read as ``vmin``.
    """
    data = np.array(data, dtype=np.float64)
    if vmin is not None and vmin >= 0:
        with np.errstate(invalid="ignore"):
            data[data < vmin] = np.nan
    return data


def _hemisphere_map(values, name: str) -> np.ndarray:
    """One hemisphere's map as fsaverage5 values, its vertex count checked."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D map of one hemisphere's vertices, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name}: expected real numbers, got dtype {arr.dtype}")
    if arr.size not in FSAVERAGE_VERTICES:
        known = ", ".join(f"{n:,} ({mesh})" for n, mesh in FSAVERAGE_VERTICES.items())
        raise ValueError(f"{name}: {arr.size:,} vertices, not one hemisphere of an fsaverage mesh "
                         f"(expected one of {known})")
    return arr.astype(np.float64)[:FSAVERAGE5_VERTICES]


@fill_doc
def plot_surface(values, hemi: str = "left", view: str = "lateral", ax=None, kind: str = "stat",
                 cmap=None, vmin=None, vmax=None, threshold=None, title=None, colorbar=True,
                 labels=None):
    """Draw lh-then-rh vertex values on the fsaverage5 inflated surface.

    Parameters
    ----------
    values : array-like of shape (2 * n_vertices,)
        Values for the left then right hemisphere of an fsaverage mesh (fsaverage5 or a
        finer one, which is decimated by keeping its first 10,242 vertices per hemisphere).
    hemi : {"left", "right"}, default="left"
        Hemisphere drawn.
    view : str, default="lateral"
        nilearn view ("lateral", "medial", "ventral", "posterior", ...).
    ax : mpl_toolkits.mplot3d.axes3d.Axes3D, optional
        From :func:`surface_axes`; ``None``: a 3-D Axes filling the current figure.
    kind : {"stat", "roi"}, default="stat"
        Continuous map or integer labels, both over the fsaverage sulcal depth (grey
        shading of the folds). NaN vertices of a stat map show the cortex; so do values
        under ``vmin`` when ``vmin >= 0`` (a one-sided map has no colour for them).
    cmap : str or matplotlib.colors.Colormap, optional
        Colormap; ``None``: for ``kind="stat"``, inferno without its black end when the
        map is one-sided (``vmin >= 0``, or no negative value), ``"RdBu_r"`` otherwise;
        ``"tab10"`` for ``"roi"``.
    vmin, vmax : float, optional
        Colour limits; ``None``: nilearn's for a stat map, 0.5 and 10.5 for labels.
    %(plot_threshold)s
        Stat maps only (nilearn's ``threshold``).
    %(title)s
    %(colorbar)s
        Stat maps with a value to show only.
    labels : list of str, optional
        Names of ROI labels 1..N (for ``kind="roi"``), drawn as a legend.

    Returns
    -------
    ax : mpl_toolkits.mplot3d.axes3d.Axes3D
        The Axes drawn into.
    """
    import matplotlib.pyplot as plt
    from nilearn import plotting

    if hemi not in ("left", "right"):
        raise ValueError(f"hemi={hemi!r}: expected 'left' or 'right'")
    if ax is None:
        ax = surface_axes(plt.gcf(), 1, 1, 1)
    part, bg_map = _fsaverage5(hemi)
    data = _to_fsaverage5(values, hemi)
    fig = ax.get_figure()
    if kind == "roi":
        roi = np.nan_to_num(data, nan=0).astype(int)
        plotting.plot_surf_roi(part, roi_map=roi, hemi=hemi, view=view, bg_map=bg_map,
                               axes=ax, figure=fig, cmap=cmap or "tab10", colorbar=False,
                               threshold=0.5,  # label 0 = background: show the sulcal map
                               vmin=0.5 if vmin is None else vmin,
                               vmax=10.5 if vmax is None else vmax)
        if labels:
            import matplotlib.patches as mpatches

            cm = plt.get_cmap(cmap or "tab10")
            lo, hi = (0.5 if vmin is None else vmin), (10.5 if vmax is None else vmax)
            handles = [mpatches.Patch(color=cm((k - lo) / (hi - lo)), label=name)
                       for k, name in enumerate(labels, start=1) if np.any(roi == k)]
            ax.legend(handles=handles, loc="lower left", fontsize=7, frameon=False,
                      bbox_to_anchor=(0.0, -0.05))
    elif kind == "stat":
        shown = _display_values(data, vmin)
        if cmap is None:
            one_sided = (vmin is not None and vmin >= 0) or not np.any(shown[np.isfinite(shown)] < 0)
            cmap = _one_sided_cmap() if one_sided else "RdBu_r"
        if not np.isfinite(shown).any():
            # nothing to colour: the bare cortex, and no colour bar for a range never used
            shown = np.zeros_like(shown)
            threshold = 1.0 if threshold is None else max(threshold, 1.0)
            colorbar = False
        # NaN stays NaN (0 would be a colour): a face shows the mean of its vertices that
        # carry a value (an isolated vertex stays visible), the cortex where none does
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Mean of empty slice", category=RuntimeWarning)
            plotting.plot_surf_stat_map(part, stat_map=shown, hemi=hemi, view=view, bg_map=bg_map,
                                        axes=ax, figure=fig, cmap=cmap, colorbar=colorbar,
                                        vmin=vmin, vmax=vmax, threshold=threshold,
                                        avg_method="nanmean")
    else:
        raise ValueError(f"kind={kind!r}: expected 'stat' or 'roi'")
    if title:
        ax.set_title(title, fontsize=10)
    return ax


@fill_doc
def plot_surface_views(values, axes, views=SURFACE_VIEWS, vmin=None, vmax=None, cmap=None,
                       threshold=None, title=None, colorbar=True):
    """Draw one lh-then-rh map in several (hemisphere, view) panels.

    Parameters
    ----------
    values : array-like of shape (2 * n_vertices,)
        Left then right hemisphere (as :func:`plot_surface`). NaN vertices are shown as
        background.
    axes : sequence of mpl_toolkits.mplot3d.axes3d.Axes3D
        From :func:`brainllm_utils.viz.surface_axes`, one per view.
    views : sequence of tuple of (str, str), default=SURFACE_VIEWS
        ``(hemisphere, view)`` of each panel.
    vmin, vmax : float, optional
        Shared colour limits (default: symmetric around 0 when the map has negative
        values, else 0 … the 99th percentile of ``|values|``).
    cmap : str or matplotlib.colors.Colormap, optional
        ``None``: ``"RdBu_r"`` when ``vmin < 0``, else inferno without its black end.
    %(plot_threshold)s
    title : str, optional
        Written above the row of panels (left-aligned with the first); each panel is
        labelled with its hemisphere and view underneath.
    %(colorbar)s
        Drawn beside the last panel only.

    Returns
    -------
    axes : list of mpl_toolkits.mplot3d.axes3d.Axes3D
        The panels.
    """
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if vmax is None or not np.isfinite(vmax):
        vmax = float(np.percentile(np.abs(finite), 99)) if finite.size else 1.0
        vmax = vmax if vmax > 0 else 1.0
    if vmin is None:
        vmin = -vmax if finite.size and finite.min() < 0 else 0.0
    if cmap is None:
        cmap = "RdBu_r" if vmin < 0 else _one_sided_cmap()
    axes = list(axes)
    if len(axes) != len(views):
        raise ValueError(f"{len(views)} views need {len(views)} axes, got {len(axes)}")
    for i, (ax, (hemi, view)) in enumerate(zip(axes, views)):
        plot_surface(values, hemi=hemi, view=view, ax=ax, kind="stat", cmap=cmap, vmin=vmin,
                     vmax=vmax, threshold=threshold, colorbar=colorbar and i == len(axes) - 1)
        ax.text2D(0.5, 0.04, f"{hemi[0].upper()}H {view}", transform=ax.transAxes, ha="center",
                  va="bottom", fontsize=9, color="0.3")
    if title:
        axes[0].set_title(title, loc="left", fontsize=11)
    return axes


@fill_doc
def plot_volume_slices(volume, background=None, axis: int = 2, n_slices: int = 8,
                       n_cols: int = 4, ax=None, cmap: str = "inferno", vmin=None, vmax=None,
                       threshold=None, title: str | None = None, colorbar: bool = True):
    """A montage of slices of a 3-D map (NaN transparent) over an optional background.

    Parameters
    ----------
    volume : array-like of shape (X, Y, Z)
        The map (e.g. :func:`brainllm_utils.rsa_analysis.volume_searchlight`).
    background : array-like of shape (X, Y, Z), optional
        Grey background (e.g. the brain mask or a mean beta image).
    axis : int, default=2
        Slicing axis (2 = axial for the NSD func1pt8mm grid).
    n_slices : int, default=8
        Slices shown, evenly spaced between the first and last slice with finite values.
    n_cols : int, default=4
        Slices per row of the montage.
    %(ax_new)s
    cmap : str or matplotlib.colors.Colormap, default="inferno"
        Colormap of the map.
    vmin, vmax : float, optional
        Colour limits; ``None``: from the data.
    %(plot_threshold)s
    %(title)s
    %(colorbar)s

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes drawn into.
    """
    import matplotlib.pyplot as plt

    ax = get_ax(ax, (9, 5))
    vol = np.moveaxis(np.asarray(volume, dtype=float), axis, 0)
    finite = np.isfinite(vol)
    has = np.flatnonzero(finite.reshape(vol.shape[0], -1).any(1))
    if has.size == 0:
        raise ValueError("volume has no finite values")
    picks = np.unique(np.linspace(has[0], has[-1], min(n_slices, has.size)).round().astype(int))
    n_rows = int(np.ceil(len(picks) / n_cols))
    h, w = np.rot90(vol[0]).shape
    canvas = np.full((n_rows * h, n_cols * w), np.nan)
    bg = None
    if background is not None:
        bgv = np.moveaxis(np.asarray(background, dtype=float), axis, 0)
        bg = np.full_like(canvas, np.nan)
    for k, z in enumerate(picks):
        r, c = divmod(k, n_cols)
        sl = vol[z].copy()
        if threshold is not None:
            sl[np.abs(sl) < threshold] = np.nan
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = np.rot90(sl)
        if bg is not None:
            bg[r * h:(r + 1) * h, c * w:(c + 1) * w] = np.rot90(bgv[z])
    if bg is not None:
        b = np.where(np.isfinite(bg), bg, 0)
        ax.imshow(b, cmap="gray", vmin=0, vmax=2.5 * max(float(b.max()), 1e-12),
                  interpolation="nearest")
    im = ax.imshow(canvas, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    for k, z in enumerate(picks):
        r, c = divmod(k, n_cols)
        ax.text(c * w + 1, r * h + 2, f"{'xyz'[axis]}={z}", color="w", fontsize=7, va="top")
    ax.set_axis_off()
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


def _fsaverage5_both():
    """fsaverage5's inflated hemispheres side by side (coords, faces) and their sulcal depth.

    nilearn centres each inflated hemisphere on x = 0, so joined as they are they overlap;
    the left one is moved left and the right one right, 2 mm apart.
    """
    from nilearn import datasets

    mesh = datasets.load_fsaverage("fsaverage5")["inflated"]
    sulc = datasets.load_fsaverage_data(mesh="fsaverage5", data_type="sulcal")
    left = np.asarray(mesh.parts["left"].coordinates, dtype=np.float64).copy()
    right = np.asarray(mesh.parts["right"].coordinates, dtype=np.float64).copy()
    left[:, 0] -= left[:, 0].max() + 1.0
    right[:, 0] -= right[:, 0].min() - 1.0
    faces = np.vstack([mesh.parts["left"].faces, np.asarray(mesh.parts["right"].faces) + len(left)])
    bg = np.concatenate([np.asarray(sulc.data.parts["left"]), np.asarray(sulc.data.parts["right"])])
    return np.vstack([left, right]), faces, bg


def view_surface_map(map_lh, map_rh, threshold="auto", vmax=None, symmetric=None, cmap=None,
                     title=None, width: int = 760, height: int = 480, view: str = "left"):
    """An interactive 3-D view of a two-hemisphere fsaverage map (nilearn's ``view_surf``).

    Both inflated hemispheres of fsaverage5 are drawn side by side over the sulcal depth;
    the reader can rotate, zoom, and switch the view. The returned object shows itself in
    a notebook (a ``text/html`` output: an ``<iframe srcdoc=...>`` holding a whole page),
    and the page is self-contained: plotly.js (the gl3d build nilearn ships) and jQuery are
    inlined and nothing is fetched from the network, so a built book shows it offline. The
    view weighs about 3 MB (2.7 MB of it plotly.js, jQuery and the mesh), whatever the map.

    Parameters
    ----------
    map_lh, map_rh : array-like of shape (n_vertices,)
        The left and right hemisphere's values, each on one hemisphere of fsaverage5,
        fsaverage6 or fsaverage (10,242, 40,962 or 163,842 vertices, see
        ``FSAVERAGE_VERTICES``); both on the same mesh. Finer meshes are shown on their
        first 10,242 vertices (the fsaverage5 vertices). NaN vertices show the cortex.
    threshold : float or "auto", default="auto"
        Values with ``|v| < threshold`` (> 0) show the cortex. ``"auto"``: only NaN and exact
        zeros do (the map is drawn as it is: an FDR-thresholded map, NaN where not
        significant, shows every significant vertex).
    vmax : float, optional
        Upper end of the colour range; ``None``: the 99th percentile of ``|v|`` over the
        finite non-zero vertices.
    symmetric : bool, optional
        A colour range ``-vmax … vmax`` (diverging colormap) or ``0 … vmax`` (values
        below 0 then show the cortex). ``None``: symmetric when the map has a negative
        value.
    cmap : str or matplotlib.colors.Colormap, optional
        ``None``: ``"RdBu_r"`` when symmetric, else inferno without its black end.
    title : str, optional
        Written above the view.
    width, height : int, default=760, 480
        Size of the inline frame in pixels.
    view : {"left", "right", "front", "back", "top", "bottom"}, default="left"
        The camera's first position.

    Returns
    -------
    view : nilearn.plotting.html_surface.SurfaceView
        The view (``.get_iframe()``: its HTML; ``.save_as_html(path)``; ``.html``: the
        page itself).

    Raises
    ------
    ValueError
        When a hemisphere's map is not 1-D, the two hemispheres' vertex counts differ or
        are not an fsaverage mesh's, the map has no finite non-zero value to show, or an
        argument is out of range.
    TypeError
        When a map is not real-valued.
    """
    import re

    from nilearn import plotting

    lh = _hemisphere_map(map_lh, "map_lh")
    rh = _hemisphere_map(map_rh, "map_rh")
    if np.size(map_lh) != np.size(map_rh):
        raise ValueError(f"map_lh has {np.size(map_lh):,} vertices but map_rh {np.size(map_rh):,}: "
                         "both hemispheres must come on the same fsaverage mesh")
    values = np.concatenate([lh, rh])
    shown = np.abs(values[np.isfinite(values) & (values != 0)])
    if shown.size == 0:
        raise ValueError("the map has no finite non-zero value to show (all NaN or 0)")
    if symmetric is None:
        symmetric = bool(np.nanmin(values) < 0)
    if vmax is None:
        vmax = float(np.percentile(shown, 99))
    if not isinstance(vmax, (int, float, np.floating, np.integer)) or not np.isfinite(vmax) or vmax <= 0:
        raise ValueError(f"vmax={vmax!r}: expected a positive finite number")
    if isinstance(threshold, str):
        if threshold != "auto":
            raise ValueError(f"threshold={threshold!r}: expected a number > 0 or 'auto'")
        threshold = float(shown.min()) * 0.5  # under the smallest value shown: hides NaN and 0 only
    elif not isinstance(threshold, (int, float, np.integer, np.floating)) or not np.isfinite(threshold) \
            or threshold <= 0:
        raise ValueError(f"threshold={threshold!r}: expected a number > 0 or 'auto'")
    if threshold >= vmax:
        raise ValueError(f"threshold={threshold} >= vmax={vmax}: nothing would be coloured")
    for name, size in (("width", width), ("height", height)):
        if not isinstance(size, (int, np.integer)) or size < 100:
            raise ValueError(f"{name}={size!r}: expected a whole number of pixels >= 100")
    if not symmetric:
        values = _display_values(values, 0.0)  # no colour below 0 on a one-sided range
    if cmap is None:
        cmap = "RdBu_r" if symmetric else _one_sided_cmap()
    coords, faces, bg = _fsaverage5_both()
    surf = plotting.view_surf(surf_mesh=(coords, faces), surf_map=np.nan_to_num(values, nan=0.0),
                              bg_map=bg, threshold=threshold, cmap=cmap, vmax=float(vmax),
                              vmin=None if symmetric else 0.0, symmetric_cmap=bool(symmetric),
                              title=title, title_fontsize=14, colorbar_fontsize=12, view=view)
    # offline: nilearn's page links a favicon on the web; nothing else is fetched
    surf.html = re.sub(r"<link[^>]*rel=\"icon\"[^>]*/?>", "", surf.html)
    # nilearn 0.14.1's view_surf drops title_fontsize (the page keeps 25 px, too big for a
    # long title in the frame): set it in the page's map info
    surf.html = re.sub(r'"title_fontsize": \d+', '"title_fontsize": 14', surf.html, count=1)
    return surf.resize(width, height)
