"""Brain maps: values on the fsaverage5 inflated surface (several views), and volume slices.

Every ``plot_*`` function draws into an ``Axes`` it is given (or creates one) and returns it.
"""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["FSAVERAGE5_VERTICES", "SURFACE_VIEWS", "surface_axes", "plot_surface", "plot_surface_views",
           "plot_volume_slices"]

#: Vertices per hemisphere of fsaverage5, the first vertices of every finer fsaverage mesh.
FSAVERAGE5_VERTICES = 10242
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
        Continuous map (with sulcal background) or integer labels.
    cmap : str or matplotlib.colors.Colormap, optional
        Colormap; ``None``: ``"inferno"`` for ``kind="stat"``, ``"tab10"`` for ``"roi"``.
    vmin, vmax : float, optional
        Colour limits; ``None``: nilearn's for a stat map, 0.5 and 10.5 for labels.
    %(plot_threshold)s
        Stat maps only (nilearn's ``threshold``).
    %(title)s
    %(colorbar)s
        Stat maps only.
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
        plotting.plot_surf_stat_map(part, stat_map=np.nan_to_num(data, nan=0.0), hemi=hemi,
                                    view=view, bg_map=bg_map, axes=ax, figure=fig,
                                    cmap=cmap or "inferno", colorbar=colorbar, vmin=vmin,
                                    vmax=vmax, threshold=threshold)
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
        ``None``: ``"RdBu_r"`` when ``vmin < 0``, else ``"inferno"``.
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
        cmap = "RdBu_r" if vmin < 0 else "inferno"
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
