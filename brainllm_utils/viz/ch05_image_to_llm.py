"""Figures of chapter 05 (image-to-LLM networks): training curves, model comparisons, transfer.

Every function draws into the ``Axes`` it is given (or the current one) and returns it.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from .._utils.docs import fill_doc

__all__ = [
    "plot_training_curves",
    "plot_model_comparison",
    "plot_transfer",
    "plot_alignment_vs_training_size",
    "plot_learning_curves",
    "plot_alignment_curve",
]

_OBJECTIVE_COLOURS = {"mpnet": "tab:red", "multihot": "tab:blue"}


def _colour(name: str, i: int):
    for key, c in _OBJECTIVE_COLOURS.items():
        if name.startswith(key) or name.startswith(f"blt_{key}"):
            return c
    return f"C{(i + 2) % 10}"


def _history(h):
    return getattr(h, "history", h)


@fill_doc
def plot_training_curves(histories: Mapping, metric: str = "loss", step: int = -1, ax=None):
    """Per-epoch training curves of several networks.

    Parameters
    ----------
    histories : mapping of str to TrainedNetwork or to list of dict
        Name → a trained network or its per-epoch history (``vision.train_network``).
        Networks whose name starts with ``mpnet`` are red, ``multihot`` blue; seeds of one
        objective (``<name>_seed<k>``) share a colour and a legend entry.
    metric : {"loss", "val_loss", "val_cosine"}, default="loss"
        Per-epoch value drawn (``"val_cosine"`` at time step ``step``).
    step : int, default=-1
        Time step of ``"val_cosine"`` (the last by default).
    %(ax)s

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    seen = set()
    for i, (name, h) in enumerate(histories.items()):
        h = _history(h)
        ep = [r["epoch"] for r in h if metric in r]
        if metric == "val_cosine":
            y = [r[metric][step] for r in h if metric in r]
        else:
            y = [r[metric] for r in h if metric in r]
        if not ep:
            continue
        colour = _colour(name, i)
        group = name.split("_seed")[0]
        ax.plot(ep, y, "-o", ms=3, lw=1.5, color=colour, alpha=0.85,
                label=group if group not in seen else None)
        seen.add(group)
    ax.set_xlabel("epoch")
    label = {"loss": "training loss (all steps)", "val_loss": "held-out loss",
             "val_cosine": f"held-out cosine (step {step})"}.get(metric, metric)
    ax.set_ylabel(label)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


@fill_doc
def plot_model_comparison(scores: Mapping[str, np.ndarray], ax=None, ylabel: str = "RSA (Pearson r)",
                          sort: bool = True, highlight=("mpnet", "multihot"), ceiling: float | None = None):
    """Bars of mean ± SEM over subjects with one dot per subject, one bar per model.

    Parameters
    ----------
    scores : mapping of str to array-like of shape (n_subjects,)
        Model name → per-subject values (NaNs ignored).
    %(ax)s
    ylabel : str, default="RSA (Pearson r)"
        y-axis label.
    sort : bool, default=True
        Order the bars by decreasing mean.
    highlight : sequence of str, default=("mpnet", "multihot")
        Bars whose name starts with one of these prefixes are coloured (red for mpnet,
        blue for multihot), others grey.
    ceiling : float, optional
        Drawn as a dashed horizontal line.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    names = list(scores)
    vals = [np.asarray(scores[n], float).ravel() for n in names]
    means = np.array([np.nanmean(v) if np.isfinite(v).any() else np.nan for v in vals])
    if sort:
        order = np.argsort(-np.nan_to_num(means, nan=-np.inf), kind="stable")
        names, vals, means = [names[i] for i in order], [vals[i] for i in order], means[order]
    x = np.arange(len(names))
    sem = np.array([np.nanstd(v, ddof=1) / np.sqrt(np.isfinite(v).sum()) if np.isfinite(v).sum() > 1 else 0.0
                    for v in vals])
    colours = [(_colour(n, i) if n.startswith(tuple(highlight)) else "0.65") for i, n in enumerate(names)]
    ax.bar(x, means, yerr=sem, color=colours, capsize=2, width=0.7, edgecolor="none")
    jitter = np.random.default_rng(0)
    for xi, v in zip(x, vals):
        v = v[np.isfinite(v)]
        ax.scatter(xi + jitter.uniform(-0.15, 0.15, v.size), v, s=8, color="k", zorder=3, alpha=0.7)
    if ceiling is not None:
        ax.axhline(ceiling, color="k", ls="--", lw=1)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(x, names, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


@fill_doc
def plot_transfer(table, ax=None, target: str | None = None):
    """Transfer-readout scores (``vision.transfer_table``), bars grouped by target.

    One bar per feature set, grouped by target, with the mean-target floor as a dashed
    line per group.

    Parameters
    ----------
    table : pandas.DataFrame
        ``target``, ``features``, ``score`` and ``floor`` columns (``vision.transfer_table``).
    %(ax)s
    target : str, optional
        Draw only this target; ``None``: every target.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    tab = table if target is None else table[table["target"] == target]
    targets = list(dict.fromkeys(tab["target"]))
    feats = list(dict.fromkeys(tab["features"]))
    w = 0.8 / max(1, len(feats))
    for j, f in enumerate(feats):
        sub = tab[tab["features"] == f].set_index("target")
        y = [sub["score"].get(t, np.nan) for t in targets]
        ax.bar(np.arange(len(targets)) + (j - (len(feats) - 1) / 2) * w, y, width=w, label=f,
               color=_colour(f, j))
    for i, t in enumerate(targets):
        floor = float(tab[tab["target"] == t]["floor"].iloc[0])
        ax.hlines(floor, i - 0.45, i + 0.45, colors="k", linestyles="--", lw=1)
    ax.set_xticks(np.arange(len(targets)), [f"→ {t}" for t in targets])
    ax.set_ylabel("held-out cosine (dashed: mean-target floor)")
    lo = float(np.nanmin(tab[["score", "floor"]].to_numpy()))
    ax.set_ylim(max(0.0, lo - 0.05), None)
    ax.legend(frameon=False, fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


@fill_doc
def plot_alignment_vs_training_size(n_images: Mapping[str, float], scores: Mapping[str, float], ax=None,
                                    ylabel: str = "brain alignment", logx: bool = True):
    """Brain alignment of each model against its number of training images (Fig. 4-style).

    Parameters
    ----------
    n_images : mapping of str to float
        Model name → number of training images (models with none, or 0, are left out).
    scores : mapping of str to float or array-like
        Model name → alignment (per-subject arrays are averaged); models missing from
        ``n_images`` are left out.
    %(ax)s
    ylabel : str, default="brain alignment"
        y-axis label.
    logx : bool, default=True
        Logarithmic x axis.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    names = [n for n in scores if n in n_images and n_images[n]]
    for i, n in enumerate(names):
        y = float(np.nanmean(np.asarray(scores[n], float)))
        ax.scatter(n_images[n], y, color=_colour(n, i), s=30, zorder=3)
        ax.annotate(n, (n_images[n], y), textcoords="offset points", xytext=(4, 3), fontsize=7)
    if logx:
        ax.set_xscale("log")
    ax.set_xlabel("training images")
    ax.set_ylabel(ylabel)
    ax.spines[["top", "right"]].set_visible(False)
    return ax


@fill_doc
def plot_learning_curves(histories: Mapping, metric: str = "val_loss", floor: float | None = None,
                         floor_label: str = "floor (mean target)", step: int = -1, ax=None,
                         title: str | None = None):
    """:func:`plot_training_curves` plus a dashed horizontal line at a floor.

    Parameters
    ----------
    histories : mapping of str to TrainedNetwork or to list of dict
        As :func:`plot_training_curves`.
    metric : {"loss", "val_loss", "val_cosine"}, default="val_loss"
        As :func:`plot_training_curves`.
    floor : float, optional
        What a network that ignores the image reaches (e.g. the held-out loss of the mean
        training target, :func:`brainllm_utils.vision_analysis.validation_floors`); not
        drawn when ``None`` or not finite.
    floor_label : str, default="floor (mean target)"
        Legend entry of the floor.
    step : int, default=-1
        Time step of ``"val_cosine"``.
    %(ax)s
    %(title)s

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    plot_training_curves(histories, metric=metric, step=step, ax=ax)
    if floor is not None and np.isfinite(floor):
        ax.axhline(floor, color="k", ls="--", lw=1, label=floor_label)
        ax.legend(frameon=False, fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


@fill_doc
def plot_alignment_curve(table, ax=None, ylabel: str = "RSA / LOSO ceiling", palette: str = "tab10"):
    """Brain alignment against training-set size, one line per ROI (mean ± SEM).

    Parameters
    ----------
    table : pandas.DataFrame
        :func:`brainllm_utils.vision_analysis.size_alignment_table` output
        (``n_train, roi, mean, sem``).
    %(ax)s
    ylabel : str, default="RSA / LOSO ceiling"
        y-axis label.
    %(palette)s

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    cmap = plt.get_cmap(palette)
    for i, (roi, g) in enumerate(table.groupby("roi", sort=False)):
        g = g.sort_values("n_train")
        ax.errorbar(g["n_train"], g["mean"], yerr=np.nan_to_num(g["sem"].to_numpy(float)), fmt="-o", ms=4,
                    capsize=2, color=cmap(i % 10), label=roi)
    ax.set_xscale("log")
    sizes = sorted(set(int(n) for n in table["n_train"]))
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training images (nested subsets of the pool)")
    ax.set_ylabel(ylabel)
    ax.legend(frameon=False, fontsize=8, title="ROI", title_fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return ax
