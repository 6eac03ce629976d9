"""Figures of chapter 07 (reproduction): this run's numbers next to the paper's."""

from __future__ import annotations

import textwrap

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["plot_reproduction"]

_AGREE, _DISAGREE, _GREY = "#1a9850", "#d73027", "0.6"
#: short labels of the reproduction table's kinds of quantity
_KIND_LABELS = {"count": "count", "roi_rsa": "normalised ROI RSA", "roi_rsa_difference": "normalised ROI RSA",
                "transfer": "transfer readout, cosine"}


@fill_doc
def plot_reproduction(df, ax=None, show_not_comparable: bool = True, span: float = 0.15, width: int = 70):
    """This run minus the paper, per number, with the paper's range and tolerance as a band.

    One line per row of the reproduction table with a value of this run: the grey band is
    where the row agrees (the paper's value or range, widened by the tolerance), the point
    is this run's value minus the paper's (the middle of its range): green when it agrees,
    red when not, hollow grey when the row is not comparable (a sandbox run, other settings,
    another network). Points beyond ``±span`` are drawn at the edge as triangles, with their
    difference written next to them. Rows without a value of this run are left out.

    Parameters
    ----------
    df : pandas.DataFrame or None
        :func:`brainllm_utils.chapters.reproduction.reproduction_table` (columns ``kind``,
        ``item``, ``quantity``, ``ours``, ``paper``, ``paper_low``, ``paper_high``, ``tolerance``,
        ``comparable``, ``agrees``); ``None`` or no row with a value draws a note.
    %(ax_new)s
    show_not_comparable : bool, default=True
        Draw the rows that are not comparable (greyed); ``False``: hide them.
    span : float, default=0.15
        Half-width of the x axis (difference from the paper, in the rows' units).
    width : int, default=70
        Characters of each row's label kept (shortened with "…").

    Returns
    -------
    %(returns_ax)s
    """
    if span <= 0:
        raise ValueError(f"span={span}: expected > 0")
    ax = get_ax(ax, figsize=(10, 4))
    rows = df[np.isfinite(df["ours"].astype(float))] if df is not None and len(df) else None
    if rows is not None and not show_not_comparable:
        rows = rows[rows["comparable"].astype(bool)]
    if rows is None or not len(rows):
        ax.set_axis_off()
        ax.text(0.5, 0.5, "no number of this run to set next to the paper's", ha="center", va="center",
                transform=ax.transAxes)
        return ax
    n = len(rows)
    for i, (_, r) in enumerate(rows.iterrows()):
        y = n - 1 - i
        mid, tol = float(r["paper"]), float(r["tolerance"])
        lo, hi = float(r["paper_low"]) - tol - mid, float(r["paper_high"]) + tol - mid
        ax.fill_betweenx([y - 0.3, y + 0.3], max(lo, -span), min(hi, span), color="0.85", lw=0)
        ax.plot([float(r["paper_low"]) - mid, float(r["paper_high"]) - mid], [y, y], color="0.35", lw=2)
        d = float(r["ours"]) - mid
        if not bool(r["comparable"]):
            style = dict(mfc="none", mec=_GREY, color=_GREY)
        else:
            c = _AGREE if r["agrees"] is True or r["agrees"] == True else _DISAGREE  # noqa: E712
            style = dict(mfc=c, mec=c, color=c)
        if abs(d) > span:
            x = np.sign(d) * span
            ax.plot([x], [y], ">" if d > 0 else "<", ms=9, **style)
            ax.text(x - np.sign(d) * 0.02 * span, y + 0.32, f"{d:+.3g}", ha="right" if d > 0 else "left",
                    va="bottom", fontsize=7, color=style["color"])
        else:
            ax.plot([d], [y], "o", ms=7, **style)
    labels = [textwrap.shorten(f"{r['item']} ({_KIND_LABELS.get(r.get('kind'), r['quantity'])})", width,
                               placeholder="…") for _, r in rows.iterrows()]
    ax.set_yticks(range(n)[::-1], labels, fontsize=8)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlim(-span * 1.05, span * 1.05)
    ax.axvline(0, color="0.35", lw=0.8, ls=":")
    ax.set_xlabel("this run − the paper (grey: the paper's range ± tolerance)")
    n_comp = int(rows["comparable"].astype(bool).sum())
    n_agree = int((rows["agrees"] == True).sum())  # noqa: E712
    ax.set_title(f"{n} numbers of this run: {n_comp} comparable with the paper, {n_agree} agree"
                 + ("" if n_comp else " (hollow grey: not comparable)"), fontsize=10, loc="left")
    return ax
