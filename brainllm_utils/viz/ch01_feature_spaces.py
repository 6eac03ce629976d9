"""Figures of chapter 01 (feature spaces): model-by-model RDM correlations, pair similarities."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["plot_model_matrix", "plot_pair_similarity"]


@fill_doc
def plot_model_matrix(matrix, ax=None, cmap: str = "viridis", vmin=None, vmax=1.0,
                      annotate: bool = True, title: str | None = None, colorbar: bool = True):
    """Heatmap of a square model-by-model DataFrame (e.g. RDM correlations), annotated.

    Parameters
    ----------
    matrix : pandas.DataFrame or array-like of shape (n_models, n_models)
        The values; a DataFrame's index and columns label the rows and columns.
    %(ax_new)s
    cmap : str or matplotlib.colors.Colormap, default="viridis"
        Colormap.
    vmin : float, optional
        Lower colour limit; ``None``: the smallest finite value.
    vmax : float, default=1.0
        Upper colour limit.
    annotate : bool, default=True
        Write each value (2 decimals) in its cell.
    %(title)s
    %(colorbar)s

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = get_ax(ax, (6, 5))
    M = np.asarray(matrix, dtype=float)
    im = ax.imshow(M, cmap=cmap, vmin=np.nanmin(M) if vmin is None else vmin, vmax=vmax)
    names = list(matrix.index) if hasattr(matrix, "index") else [str(i) for i in range(len(M))]
    cols = list(matrix.columns) if hasattr(matrix, "columns") else names
    ax.set_xticks(range(M.shape[1]))
    ax.set_xticklabels(cols, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(M.shape[0]))
    ax.set_yticklabels(names, fontsize=8)
    if annotate:
        lo, hi = im.get_clim()
        for i in range(M.shape[0]):
            for j in range(M.shape[1]):
                if np.isfinite(M[i, j]):
                    light = (M[i, j] - lo) / max(hi - lo, 1e-12) < 0.6
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=6.5,
                            color="w" if light else "k")
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title, fontsize=10)
    return ax


@fill_doc
def plot_pair_similarity(df, models=None, ax=None, kinds=("role-reversed", "random")):
    """Feature similarity of role-reversed vs random image pairs, per model (strip + mean).

    Parameters
    ----------
    df : pandas.DataFrame
        ``model``, ``kind`` and ``similarity`` columns, from
        :func:`brainllm_utils.rsa_analysis.role_reversal_similarity`.
    models : sequence of str, optional
        Models in x order; ``None``: as they appear in ``df``.
    %(ax_new)s
    kinds : sequence of str, default=("role-reversed", "random")
        Pair kinds drawn side by side for each model.

    Returns
    -------
    %(returns_ax)s
    """
    ax = get_ax(ax, (8, 3.5))
    models = list(dict.fromkeys(df["model"])) if models is None else list(models)
    colours = {"role-reversed": "tab:red", "random": "0.5"}
    rng = np.random.default_rng(0)
    for i, m in enumerate(models):
        for k, kind in enumerate(kinds):
            v = df[(df["model"] == m) & (df["kind"] == kind)]["similarity"].to_numpy(float)
            x = i + (k - 0.5) * 0.35
            big = kind == "role-reversed"
            ax.scatter(x + rng.uniform(-0.08, 0.08, v.size), v, s=14 if big else 5,
                       alpha=0.8 if big else 0.4,
                       color=colours.get(kind, "k"), label=kind if i == 0 else None,
                       linewidths=0)
            if v.size:
                ax.plot([x - 0.13, x + 0.13], [np.mean(v)] * 2, color="k", lw=1.5)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels(models, rotation=20, ha="right")
    ax.set_ylabel("pair similarity (Pearson r)")
    ax.legend(fontsize=8, frameon=False, markerscale=2)
    return ax
