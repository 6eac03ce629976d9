"""Figures of RQ2 (chapters 02 and 03): every RQ2 space against the main model, per ROI."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["plot_rq2_comparison"]


@fill_doc
def plot_rq2_comparison(table, ax=None, rois=None, spaces=None, main: str | None = None,
                        cmap: str = "RdBu_r", label: str | None = None, colorbar: bool = True):
    """Heat map of ``main − space`` per ROI (columns) and RQ2 space (rows), tests marked.

    Each cell shows the subjects' mean paired difference; ``*`` marks an FDR-significant
    difference (the table's ``significant``). Spaces the run did not compute are grey cells
    with their reason (e.g. "not computed: no vector file given"), so no row disappears.
    Red: the main model scores higher; blue: the space does.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`brainllm_utils.chapters.rq2.rq2_comparison`: ``roi, space,
        mean_diff, significant, note``.
    %(ax_new)s
    rois : sequence of str, optional
        Columns, in order (default: the table's order).
    spaces : sequence of str, optional
        Rows, in order (default: the table's order).
    main : str, optional
        The main model's name for the title and colour bar (default: ``table.attrs["main"]``).
    cmap : str, default="RdBu_r"
        A diverging colormap, centred on 0.
    label : str, optional
        Colour-bar label (default: ``"<main> − space"``).
    colorbar : bool, default=True
        Draw the colour bar.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    rois = list(dict.fromkeys(table["roi"])) if rois is None else list(rois)
    spaces = list(dict.fromkeys(table["space"])) if spaces is None else list(spaces)
    main = main or table.attrs.get("main", "main")
    ax = get_ax(ax, figsize=(1.2 * len(rois) + 3, 0.38 * len(spaces) + 1.5))
    idx = table.set_index(["space", "roi"])
    M = np.full((len(spaces), len(rois)), np.nan)
    for i, s in enumerate(spaces):
        for j, r in enumerate(rois):
            if (s, r) in idx.index:
                M[i, j] = idx.loc[(s, r), "mean_diff"]
    vmax = float(np.nanmax(np.abs(M))) if np.isfinite(M).any() else 1.0
    vmax = vmax if vmax > 0 else 1.0
    grey = np.where(np.isfinite(M), np.nan, 0.0)
    ax.imshow(grey, cmap="Greys", vmin=-1, vmax=3, aspect="auto")
    im = ax.imshow(np.ma.masked_invalid(M), cmap=plt.get_cmap(cmap), vmin=-vmax, vmax=vmax, aspect="auto")
    for i, s in enumerate(spaces):
        for j, r in enumerate(rois):
            if (s, r) not in idx.index:
                continue
            row = idx.loc[(s, r)]
            if np.isfinite(M[i, j]):
                text = f"{M[i, j]:+.3f}" + ("*" if bool(row["significant"]) else "")
                ax.text(j, i, text, ha="center", va="center", fontsize=7,
                        color="white" if abs(M[i, j]) > 0.6 * vmax else "black")
            else:
                note = str(row.get("note", "")) or "not computed"
                ax.text(j, i, note.replace("not computed: ", "n/c: "), ha="center", va="center",
                        fontsize=6, color="0.25")
    ax.set_xticks(range(len(rois)), rois, rotation=30, ha="right")
    ax.set_yticks(range(len(spaces)), spaces)
    ax.set_title(f"{main} − each RQ2 space (subject mean; * FDR-significant, paired)", fontsize=10)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label=label or f"{main} − space")
    return ax
