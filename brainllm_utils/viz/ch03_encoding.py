"""Figures of chapter 03 (encoding): accuracy against ceilings, per-ROI bars, variance partitions."""

from __future__ import annotations


import numpy as np

from .._utils.docs import fill_doc

__all__ = ["plot_r_vs_ceiling", "plot_roi_bars", "plot_variance_partition", "plot_ridge_protocols"]


@fill_doc
def plot_r_vs_ceiling(r, ceiling, ax=None, labels=None, names=None, gridsize=45,
                      xlabel="inter-participant agreement (r)", ylabel="encoding accuracy (test r)"):
    """Hexbin of per-vertex accuracy against a ceiling, identity line, ROI medians.

    Parameters
    ----------
    r, ceiling : array-like of shape (n_vertices,)
        Encoding accuracy and its ceiling per vertex; vertices with a NaN are dropped.
    %(ax)s
    labels : array-like of int of shape (n_vertices,), optional
        ROI label per vertex (0 = none); each ROI's median (ceiling, r) is marked.
    names : dict of int to str, optional
        Label → ROI name for the legend (default: the label number).
    gridsize : int, default=45
        Hexagons across the x axis (log-scaled counts).
    xlabel, ylabel : str
        Axis labels.

    Returns
    -------
    %(returns_ax)s
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


@fill_doc
def plot_roi_bars(df, value: str = "value", ax=None, order=None, ylabel=None, color="C0",
                  annotate=None):
    """Mean over subjects (bar) ± SEM with one dot per subject, per ROI.

    Parameters
    ----------
    df : pandas.DataFrame
        Long (``subject``, ``roi``, ``value``), e.g. from
        :func:`brainllm_utils.encoding_analysis.roi_table`.
    value : str, default="value"
        Column of the values.
    %(ax)s
    order : sequence of str, optional
        ROIs in x order; ``None``: as they appear in ``df``.
    ylabel : str, optional
        y-axis label; ``None``: ``value``.
    color : str, default="C0"
        Colour of the bars.
    annotate : dict of str to str, optional
        ROI → text written under its tick (e.g. the sandbox's planted feature spaces).

    Returns
    -------
    %(returns_ax)s
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


@fill_doc
def plot_variance_partition(table, ax=None, bands=("mpnet", "mpnet_word_avg"), order=None,
                            ylabel="test R² (mean over vertices, subjects)"):
    """Stacked bars per ROI: unique to band a, shared, unique to band b.

    Negative parts (possible on test data) are drawn below zero.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`brainllm_utils.encoding_analysis.partition_table`: indexed by ROI,
        columns ``unique_<a>``, ``shared``, ``unique_<b>`` and ``*_sem`` (and ``joint``,
        drawn as a black tick when present).
    %(ax)s
    bands : tuple of (str, str), default=("mpnet", "mpnet_word_avg")
        The two bands ``a`` and ``b``.
    order : sequence of str, optional
        ROIs in x order; ``None``: the table's index.
    ylabel : str, default="test R² (mean over vertices, subjects)"
        y-axis label.

    Returns
    -------
    %(returns_ax)s
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


@fill_doc
def plot_ridge_protocols(table, ax=None, order=None, protocols=None, ylabel="mean test r (vertices in ROI)"):
    """Paired bars per ROI: the encoding accuracy of two penalty protocols, subjects joined.

    Parameters
    ----------
    table : pandas.DataFrame
        Long (``subject``, ``roi``, ``protocol``, ``r``), e.g. ``ridge_protocols(...)["table"]``
        (:func:`brainllm_utils.chapters.ch03_encoding.ridge_protocols`).
    %(ax)s
    order : sequence of str, optional
        ROIs in x order; ``None``: as they appear in ``table``.
    protocols : sequence of str, optional
        Protocols, one bar each per ROI; ``None``: as they appear in ``table``.
    ylabel : str, default="mean test r (vertices in ROI)"
        y-axis label.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    order = list(order) if order is not None else list(dict.fromkeys(table["roi"]))
    protocols = list(protocols) if protocols is not None else list(dict.fromkeys(table["protocol"]))
    width = 0.8 / max(len(protocols), 1)
    x = np.arange(len(order))
    g = table.groupby(["protocol", "roi"])["r"]
    mean, sem = g.mean(), g.sem()
    for k, name in enumerate(protocols):
        m = np.array([mean.get((name, roi), np.nan) for roi in order])
        e = np.array([sem.get((name, roi), np.nan) for roi in order])
        ax.bar(x + (k - (len(protocols) - 1) / 2) * width, m, width, yerr=np.nan_to_num(e),
               color=f"C{k}", alpha=0.75, capsize=2, label=name)
    wide = table.pivot_table(index=["roi", "subject"], columns="protocol", values="r")
    offsets = (np.arange(len(protocols)) - (len(protocols) - 1) / 2) * width
    for i, roi in enumerate(order):
        if roi not in wide.index.get_level_values(0):
            continue
        for _, row in wide.loc[roi].iterrows():  # one line per subject across the protocols
            ax.plot(i + offsets, row.reindex(protocols).to_numpy(float), color="k", lw=0.6,
                    marker="o", ms=2.5, zorder=3)
    ax.set_xticks(x, order, fontsize=8)
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8, frameon=False)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return ax
