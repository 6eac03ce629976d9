"""Figures of chapter 04 (decoding): per-image r, identification ranks, caption galleries, metrics."""

from __future__ import annotations

import textwrap

import numpy as np

from .._utils.docs import fill_doc

__all__ = ["plot_decoding_r", "plot_identification_ranks", "plot_caption_gallery", "plot_metric_bars"]


@fill_doc
def plot_decoding_r(r, subjects, ax=None, ceiling=None, bins=20):
    """Distribution of per-image decoding r: one KDE (or histogram) per subject.

    Parameters
    ----------
    r : array-like of shape (n_subjects, n_images)
        Per-image decoding r of each subject.
    subjects : sequence of str
        Subject names for the legend, one per row of ``r``.
    %(ax)s
    ceiling : float or array-like of shape (n_images,), optional
        Caption consistency; its mean is drawn as a vertical line.
    bins : int, default=20
        Histogram bins, used for a subject with too few or constant values for a KDE.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde

    ax = ax if ax is not None else plt.gca()
    r = np.asarray(r, dtype=np.float64)
    lo, hi = min(-0.1, np.nanmin(r)), max(1.0, np.nanmax(r))
    grid = np.linspace(lo, hi, 300)
    for i, s in enumerate(subjects):
        v = r[i][np.isfinite(r[i])]
        if v.size > 5 and np.std(v) > 0:
            ax.plot(grid, gaussian_kde(v)(grid), color=f"C{i}", label=f"{s} (mean {v.mean():.2f})")
        else:
            ax.hist(v, bins=bins, density=True, histtype="step", color=f"C{i}",
                    label=f"{s} (mean {v.mean():.2f})")
    if ceiling is not None:
        c = float(np.nanmean(ceiling))
        ax.axvline(c, color="k", ls="--", lw=1, label=f"caption consistency ({c:.2f})")
    ax.axvline(0, color="0.6", lw=0.8)
    ax.set_xlabel("r(decoded, true embedding) per test image")
    ax.set_ylabel("density")
    ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


@fill_doc
def plot_identification_ranks(ranks, subjects=None, ax=None, n_bins=None):
    """Histogram of identification ranks (0 = the true image is the best match).

    Bars stack the subjects; the dashed line is chance (uniform ranks).

    Parameters
    ----------
    ranks : array-like of int of shape (n_subjects, n_images) or (n_images,)
        Ranks in 0 … n_images − 1 (:func:`brainllm_utils.encoding.identification_rank`).
    subjects : sequence of str, optional
        Legend names; ``None``: "subject 1", "subject 2", …
    %(ax)s
    n_bins : int, optional
        Histogram bins; ``None``: ``min(20, n_images)``.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    ranks = np.atleast_2d(np.asarray(ranks))
    n_items = ranks.shape[1]
    n_bins = int(n_bins or min(20, n_items))
    edges = np.linspace(0, n_items, n_bins + 1)
    subjects = subjects or [f"subject {i + 1}" for i in range(len(ranks))]
    ax.hist(list(ranks), bins=edges, stacked=True, label=list(subjects),
            color=[f"C{i}" for i in range(len(ranks))])
    chance = ranks.size / n_bins
    ax.axhline(chance, color="k", ls="--", lw=1, label="chance")
    top1 = (ranks == 0).mean()
    ax.text(0.97, 0.97, f"top-1: {top1:.0%} (chance {1 / n_items:.1%})\n"
            f"mean rank {ranks.mean():.1f} (chance {(n_items - 1) / 2:.1f})",
            transform=ax.transAxes, ha="right", va="top", fontsize=9)
    ax.set_xlabel(f"rank of the true image among {n_items} test images")
    ax.set_ylabel("images")
    ax.legend(fontsize=8, frameon=False, loc="center right")
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


@fill_doc
def plot_caption_gallery(images, captions, ax=None, n_cols: int = 4, image_fraction: float = 0.5,
                         fontsize: float = 7.5, titles=None):
    """Images with their captions underneath, in one Axes.

    Each image sits in an inset at the top of its grid cell; the captions are wrapped to
    the cell's width and stacked under it, one colour per label.

    Parameters
    ----------
    %(images)s
    captions : dict of str to list of str
        Label → one caption per image, e.g. ``{"human": [...], "decoded (subj01)": [...]}``;
        the first label is black.
    %(ax)s
    %(n_cols)s
    image_fraction : float, default=0.5
        Fraction of each cell's height taken by the image (the rest holds the text).
    fontsize : float, default=7.5
        Caption font size (points); captions are wrapped to the cell's width.
    titles : list of str, optional
        A short title above each image (e.g. its identification rank).

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    images = np.asarray(images)
    n = images.shape[0]
    labels = list(captions)
    for lab in labels:
        if len(captions[lab]) != n:
            raise ValueError(f"captions[{lab!r}] has {len(captions[lab])} entries for {n} images")
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols))
    fig = ax.get_figure()
    bbox = ax.get_position()
    cell_w_pt = bbox.width * fig.get_figwidth() * 72 / n_cols
    width = max(12, int(cell_w_pt / (0.52 * fontsize)))
    cw, ch = 1.0 / n_cols, 1.0 / n_rows
    top_pad = 0.08 * ch if titles is not None else 0.02 * ch
    colors = ["k"] + [f"C{i}" for i in range(len(labels) - 1)]
    for i in range(n):
        row, col = divmod(i, n_cols)
        x0, y_top = col * cw, 1.0 - row * ch
        h = image_fraction * ch
        inset = ax.inset_axes([x0 + 0.02 * cw, y_top - top_pad - h, 0.96 * cw, h])
        inset.imshow(images[i], interpolation="nearest")
        inset.set_axis_off()
        if titles is not None:
            inset.set_title(titles[i], fontsize=fontsize + 0.5, pad=2)
        offset = 0.0
        for lab, color in zip(labels, colors):
            wrapped = textwrap.fill(f"{lab}: {captions[lab][i]}", width)
            ax.annotate(wrapped, xy=(x0 + 0.02 * cw, y_top - top_pad - h), xycoords="axes fraction",
                        xytext=(0, -3 - offset), textcoords="offset points", ha="left", va="top",
                        fontsize=fontsize, color=color)
            offset += fontsize * 1.25 * (wrapped.count("\n") + 1) + 2
    ax.set_axis_off()
    return ax


@fill_doc
def plot_metric_bars(table, metric: str = "cider_d", ax=None, label=None):
    """Bars of one caption metric per source, with the human ceiling and chance lines.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`brainllm_utils.encoding_analysis.caption_metric_table` (index
        ``source``, a ``kind`` column: decoded / oracle / chance / ceiling, one column per
        metric).
    metric : str, default="cider_d"
        Column drawn (``"bleu4"``, ``"rouge_l"`` or ``"cider_d"``).
    %(ax)s
    label : str, optional
        Title; ``None``: ``metric``.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    colors = {"decoded": "C0", "oracle": "C2"}
    bars = table[table["kind"].isin(["decoded", "oracle"])]
    x = np.arange(len(bars))
    ax.bar(x, bars[metric], color=[colors[k] for k in bars["kind"]])
    ax.set_xticks(x, list(bars.index), rotation=30, fontsize=8)
    for kind, ls, text in (("ceiling", "--", "human"), ("chance", ":", "shuffled")):
        sel = table[table["kind"] == kind]
        if len(sel):
            ax.axhline(float(sel[metric].iloc[0]), color="k", ls=ls, lw=1,
                       label=f"{text} ({float(sel[metric].iloc[0]):.2f})")
    ax.set_title(label or metric, fontsize=10)
    ax.legend(fontsize=7, loc="lower left", framealpha=0.9)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
