"""Figures of chapter 00 (data tour): image montages, per-ROI distributions, recovery scatters."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc

__all__ = ["image_montage", "plot_image_montage", "plot_roi_distributions", "plot_recovery"]


@fill_doc
def image_montage(images: np.ndarray, n_cols: int = 4, pad: int = 2) -> np.ndarray:
    """Tile ``(n, H, W, 3)`` uint8 images into one ``(rows·H, n_cols·W, 3)`` image.

    Parameters
    ----------
    %(images)s
    %(n_cols)s
    pad : int, default=2
        White pixels between images.

    Returns
    -------
    montage : ndarray of uint8 of shape (n_rows * (height + pad) - pad, n_cols * (width + pad) - pad, 3)
        The tiled images on a white background, row by row.
    """
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


@fill_doc
def plot_image_montage(images, labels=None, n_cols: int = 4, ax=None):
    """Show images as a montage, each numbered (or labelled) in its top-left corner.

    Parameters
    ----------
    %(images)s
    labels : sequence, optional
        One label per image (converted with ``str``); ``None``: 1, 2, 3, …
    %(n_cols)s
    %(ax)s

    Returns
    -------
    %(returns_ax)s
    """
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


@fill_doc
def plot_roi_distributions(df, x: str = "roi", y: str = "value", hue: str | None = None,
                           ax=None, ylabel: str | None = None, order=None):
    """Box plots of per-voxel values by ROI (a long DataFrame, e.g. from ``NSD.roi_values``).

    Parameters
    ----------
    df : pandas.DataFrame
        Long table, one row per voxel (or vertex).
    x : str, default="roi"
        Column of the groups on the x axis.
    y : str, default="value"
        Column of the values.
    hue : str, optional
        Column that splits each group by colour (e.g. ``"subject"``).
    %(ax)s
    ylabel : str, optional
        y-axis label; ``None``: ``y``.
    order : sequence of str, optional
        Order of the groups; ``None``: as they appear.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    ax = ax if ax is not None else plt.gca()
    sns.boxplot(data=df, x=x, y=y, hue=hue, ax=ax, order=order, fliersize=0, linewidth=0.8)
    ax.set_xlabel("")
    ax.set_ylabel(ylabel or y)
    ax.tick_params(axis="x", rotation=30)
    sns.despine(ax=ax)
    return ax


@fill_doc
def plot_recovery(truth, estimate, ax=None, xlabel: str = "truth", ylabel: str = "estimate",
                  max_points: int = 5000, seed: int = 0):
    """Scatter of an estimate against its planted truth, with the identity line and Pearson r.

    Parameters
    ----------
    truth : array-like
        Planted values (e.g. the sandbox's SNR per vertex), flattened.
    estimate : array-like
        Recovered values, same shape as ``truth``; pairs with a NaN are dropped.
    %(ax)s
    xlabel, ylabel : str, default="truth", "estimate"
        Axis labels.
    max_points : int, default=5000
        Points drawn at most (a random subset beyond; r uses all points).
    %(seed)s
        Picks the subset drawn.

    Returns
    -------
    %(returns_ax)s
    """
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

