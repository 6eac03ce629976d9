"""Figures for the encoding and decoding chapters (re-exported by :mod:`brainllm_utils.viz`).

Every function draws into the ``Axes`` it is given (or the current one) and returns it.
"""

from __future__ import annotations

import textwrap

import numpy as np

__all__ = [
    "SURFACE_VIEWS",
    "plot_surface_views",
    "plot_r_vs_ceiling",
    "plot_roi_bars",
    "plot_variance_partition",
    "plot_decoding_r",
    "plot_identification_ranks",
    "plot_caption_gallery",
    "plot_metric_bars",
]

#: The four (hemisphere, view) panels used for whole-brain maps.
SURFACE_VIEWS = (("left", "lateral"), ("left", "ventral"), ("right", "lateral"), ("right", "ventral"))


def plot_surface_views(values, axes, views=SURFACE_VIEWS, vmin=None, vmax=None, cmap=None,
                       threshold=None, title=None, colorbar=True):
    """Draw one lh-then-rh map in several (hemisphere, view) panels.

    Parameters
    ----------
    values : array (2 · V,)
        NaN vertices are shown as background.
    axes : list of 3-D Axes
        From :func:`brainllm_utils.viz.surface_axes`, one per view.
    vmin, vmax : float, optional
        Shared colour limits (default: symmetric around 0 when the map has negative
        values, else 0 … the 99th percentile).
    title : str, optional
        Written above the row of panels (left-aligned with the first); each panel is
        labelled with its hemisphere and view underneath.

    Returns
    -------
    list of Axes
    """
    from .viz import plot_surface

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


def plot_r_vs_ceiling(r, ceiling, ax=None, labels=None, names=None, gridsize=45,
                      xlabel="inter-participant agreement (r)", ylabel="encoding accuracy (test r)"):
    """Hexbin of per-vertex accuracy against a ceiling, identity line, ROI medians.

    Parameters
    ----------
    r, ceiling : arrays (n_vertices,)
    labels : int array (n_vertices,), optional
        ROI label per vertex (0 = none); each ROI's median (ceiling, r) is marked.
    names : dict label → name, optional
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    r = np.asarray(r, dtype=np.float64).ravel()
    c = np.asarray(ceiling, dtype=np.float64).ravel()
    ok = np.isfinite(r) & np.isfinite(c)
    hb = ax.hexbin(c[ok], r[ok], gridsize=gridsize, bins="log", cmap="Greys", mincnt=1,
                   linewidths=0)
    lo = float(min(c[ok].min(), r[ok].min(), 0))
    hi = float(max(c[ok].max(), r[ok].max()))
    ax.plot([lo, hi], [lo, hi], ls="--", color="0.3", lw=1, label="r = ceiling")
    if labels is not None:
        labels = np.asarray(labels).ravel()
        cmap = plt.get_cmap("tab10")
        for k in sorted(set(np.unique(labels[ok]).tolist()) - {0}):
            sel = ok & (labels == k)
            name = (names or {}).get(k, str(k))
            ax.scatter(np.median(c[sel]), np.median(r[sel]), s=60, color=cmap((k - 1) % 10),
                       edgecolor="k", zorder=3, label=name)
    rr = np.corrcoef(c[ok], r[ok])[0, 1] if ok.sum() > 2 else np.nan
    ax.text(0.03, 0.97, f"r(accuracy, ceiling) = {rr:.2f}\nn = {ok.sum()} vertices",
            transform=ax.transAxes, va="top", fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(loc="lower right", fontsize=7, frameon=False, ncol=2)
    ax.get_figure().colorbar(hb, ax=ax, label="vertices (log)")
    return ax


def plot_roi_bars(df, value: str = "value", ax=None, order=None, ylabel=None, color="C0",
                  annotate=None):
    """Mean over subjects (bar) ± SEM with one dot per subject, per ROI.

    ``df`` is long (``subject``, ``roi``, ``value``), e.g. from
    :func:`brainllm_utils.encoding_analysis.roi_table`. ``annotate`` maps ROI → text
    written under its tick (e.g. the sandbox's planted feature spaces).
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    order = list(order) if order is not None else list(dict.fromkeys(df["roi"]))
    g = df.groupby("roi")[value]
    mean, sem = g.mean().reindex(order), g.sem().reindex(order)
    x = np.arange(len(order))
    ax.bar(x, mean.to_numpy(), yerr=sem.to_numpy(), color=color, alpha=0.7, capsize=3)
    rng = np.random.default_rng(0)
    for i, roi in enumerate(order):
        vals = df.loc[df["roi"] == roi, value].to_numpy()
        ax.scatter(i + rng.uniform(-0.15, 0.15, vals.size), vals, s=12, color="k", zorder=3)
    labels = [f"{roi}\n{annotate[roi]}" if annotate and roi in annotate else roi for roi in order]
    ax.set_xticks(x, labels, fontsize=8)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel(ylabel or value)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def plot_variance_partition(table, ax=None, bands=("mpnet", "mpnet_word_avg"), order=None,
                            ylabel="test R² (mean over vertices, subjects)"):
    """Stacked bars per ROI: unique to band a, shared, unique to band b.

    ``table`` comes from :func:`brainllm_utils.encoding_analysis.partition_table`
    (columns ``unique_<a>``, ``shared``, ``unique_<b>`` and ``*_sem``). Negative parts
    (possible on test data) are drawn below zero.
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    a, b = bands
    order = list(order) if order is not None else list(table.index)
    t = table.reindex(order)
    x = np.arange(len(order))
    parts = [(f"unique_{a}", f"unique to {a}", "C0"), ("shared", "shared", "0.6"),
             (f"unique_{b}", f"unique to {b}", "C1")]
    pos_base = np.zeros(len(order))
    neg_base = np.zeros(len(order))
    for col, label, color in parts:
        v = t[col].to_numpy(dtype=float)
        base = np.where(v >= 0, pos_base, neg_base)
        ax.bar(x, v, bottom=base, color=color, label=label, width=0.7)
        pos_base = pos_base + np.clip(v, 0, None)
        neg_base = neg_base + np.clip(v, None, 0)
    if "joint" in t:
        ax.scatter(x, t["joint"], marker="_", s=300, color="k", zorder=3, label="joint model")
    ax.axhline(0, color="0.3", lw=0.8)
    ax.set_xticks(x, order, fontsize=8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax


def plot_decoding_r(r, subjects, ax=None, ceiling=None, bins=20):
    """Distribution of per-image decoding r: one KDE (or histogram) per subject.

    Parameters
    ----------
    r : array (n_subjects, n_images)
    ceiling : float or array (n_images,), optional
        Caption consistency; its mean is drawn as a vertical line.
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


def plot_identification_ranks(ranks, subjects=None, ax=None, n_bins=None):
    """Histogram of identification ranks (0 = the true image is the best match).

    ``ranks`` is (n_subjects, n_images) with ranks in 0 … n_images − 1; bars stack the
    subjects; the dashed line is chance (uniform ranks).
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


def plot_caption_gallery(images, captions, ax=None, n_cols: int = 4, image_fraction: float = 0.5,
                         fontsize: float = 7.5, titles=None):
    """Images with their captions underneath, in one Axes.

    Each image sits in an inset at the top of its grid cell; the captions are wrapped to
    the cell's width and stacked under it, one colour per label.

    Parameters
    ----------
    images : uint8 array (n, H, W, 3)
    captions : dict label → list of n str
        E.g. ``{"human": [...], "decoded (subj01)": [...]}``; the first label is black.
    image_fraction : float
        Fraction of each cell's height taken by the image (the rest holds the text).
    titles : list of str, optional
        A short title above each image (e.g. its identification rank).
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


def plot_metric_bars(table, metric: str = "cider_d", ax=None, label=None):
    """Bars of one caption metric per source, with the human ceiling and chance lines.

    ``table`` comes from :func:`brainllm_utils.encoding_analysis.caption_metric_table`
    (index ``source``, a ``kind`` column: decoded / oracle / chance / ceiling).
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
