"""Figures for the book. Every ``plot_*`` function draws into an ``Axes`` it is given (or
creates one) and returns it; none calls ``show()`` or ``savefig()``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "FSAVERAGE5_VERTICES",
    "image_montage",
    "plot_image_montage",
    "surface_axes",
    "plot_surface",
    "plot_roi_distributions",
    "plot_recovery",
]

#: Vertices per hemisphere of fsaverage5, the first vertices of every finer fsaverage mesh.
FSAVERAGE5_VERTICES = 10242


def image_montage(images: np.ndarray, n_cols: int = 4, pad: int = 2) -> np.ndarray:
    """Tile ``(n, H, W, 3)`` uint8 images into one ``(rows·H, n_cols·W, 3)`` image."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images: expected (n, H, W, 3), got shape {images.shape}")
    n, h, w, _ = images.shape
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols))
    canvas = np.full((n_rows * (h + pad) - pad, n_cols * (w + pad) - pad, 3), 255, np.uint8)
    for i in range(n):
        r, c = divmod(i, n_cols)
        canvas[r * (h + pad): r * (h + pad) + h, c * (w + pad): c * (w + pad) + w] = images[i]
    return canvas


def plot_image_montage(images, labels=None, n_cols: int = 4, ax=None):
    """Show images as a montage, each numbered (or labelled) in its top-left corner."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    images = np.asarray(images)
    n, h, w, _ = images.shape
    pad = max(1, h // 40)
    ax.imshow(image_montage(images, n_cols, pad), interpolation="nearest")
    labels = [str(i + 1) for i in range(n)] if labels is None else [str(x) for x in labels]
    n_cols = max(1, min(n_cols, n))
    for i, lab in enumerate(labels):
        r, c = divmod(i, n_cols)
        ax.text(c * (w + pad) + w * 0.03, r * (h + pad) + h * 0.03, lab, va="top", ha="left",
                fontsize=9, color="white", fontweight="bold",
                bbox=dict(facecolor="black", alpha=0.6, pad=1.5, linewidth=0))
    ax.set_axis_off()
    return ax


def surface_axes(fig, nrows: int, ncols: int, index: int):
    """A 3-D ``Axes`` for surface plots (``fig.add_subplot(..., projection='3d')``)."""
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


def plot_surface(values, hemi: str = "left", view: str = "lateral", ax=None, kind: str = "stat",
                 cmap=None, vmin=None, vmax=None, threshold=None, title=None, colorbar=True,
                 labels=None):
    """Draw lh-then-rh vertex values on the fsaverage5 inflated surface.

    Parameters
    ----------
    values : array (2 · V,)
        Values for the left then right hemisphere of an fsaverage mesh (fsaverage5 or a
        finer one, which is decimated by keeping its first 10,242 vertices per hemisphere).
    hemi : {"left", "right"}
    view : str
        nilearn view ("lateral", "medial", "ventral", "posterior", ...).
    ax : 3-D Axes, optional
        From :func:`surface_axes`; created when missing.
    kind : {"stat", "roi"}
        Continuous map (with sulcal background) or integer labels.
    labels : list of str, optional
        Names of ROI labels 1..N (for ``kind="roi"``), drawn as a legend.
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


def plot_roi_distributions(df, x: str = "roi", y: str = "value", hue: str | None = None,
                           ax=None, ylabel: str | None = None, order=None):
    """Box plots of per-voxel values by ROI (a long DataFrame, e.g. from ``NSD.roi_values``)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax if ax is not None else plt.gca()
    sns.boxplot(data=df, x=x, y=y, hue=hue, ax=ax, order=order, fliersize=0, linewidth=0.8)
    ax.set_xlabel("")
    ax.set_ylabel(ylabel or y)
    ax.tick_params(axis="x", rotation=30)
    sns.despine(ax=ax)
    return ax


def plot_recovery(truth, estimate, ax=None, xlabel: str = "truth", ylabel: str = "estimate",
                  max_points: int = 5000, seed: int = 0):
    """Scatter of an estimate against its planted truth, with the identity line and Pearson r."""
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    truth = np.asarray(truth, dtype=np.float64).ravel()
    estimate = np.asarray(estimate, dtype=np.float64).ravel()
    if truth.shape != estimate.shape:
        raise ValueError(f"truth {truth.shape} and estimate {estimate.shape} differ in shape")
    ok = np.isfinite(truth) & np.isfinite(estimate)
    truth, estimate = truth[ok], estimate[ok]
    r = np.corrcoef(truth, estimate)[0, 1] if truth.size > 1 else np.nan
    show = np.arange(truth.size)
    if truth.size > max_points:
        show = np.random.default_rng(seed).choice(truth.size, max_points, replace=False)
    ax.scatter(truth[show], estimate[show], s=4, alpha=0.4, linewidths=0)
    lo = min(truth.min(initial=0), estimate.min(initial=0))
    hi = max(truth.max(initial=1), estimate.max(initial=1))
    ax.plot([lo, hi], [lo, hi], color="0.3", lw=1, ls="--", label="identity")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.text(0.03, 0.97, f"r = {r:.3f}, n = {truth.size}", transform=ax.transAxes, va="top")
    ax.legend(loc="lower right", frameon=False)
    return ax


# chapter-specific figures live in private modules, re-exported here
from ._viz_encoding import *  # noqa: E402,F401,F403
from ._viz_encoding import __all__ as _enc_all  # noqa: E402
from ._viz_rsa import *  # noqa: E402,F401,F403
from ._viz_rsa import __all__ as _rsa_all  # noqa: E402
from ._viz_summary import *  # noqa: E402,F401,F403
from ._viz_summary import __all__ as _summary_all  # noqa: E402
from ._viz_vision import *  # noqa: E402,F401,F403
from ._viz_vision import __all__ as _vision_all  # noqa: E402

__all__ = __all__ + list(_rsa_all) + list(_enc_all) + list(_vision_all) + list(_summary_all)
