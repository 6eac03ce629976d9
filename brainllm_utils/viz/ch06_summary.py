"""Figures of chapter 06 (summary): the findings scorecard."""

from __future__ import annotations

import textwrap

from .._utils.docs import fill_doc

__all__ = ["plot_findings"]

_MARKS = {True: ("✓", "#1a9850"), False: ("✗", "#d73027"), None: ("–", "0.55")}


@fill_doc
def plot_findings(df, ax=None, width: int = 88, value_width: int = 30):
    """Scorecard of recorded findings, grouped by research question.

    One row per finding, with its recovered value and a mark — ✓ agrees with the planted
    truth (or criterion), ✗ does not, – no criterion.

    Parameters
    ----------
    df : pandas.DataFrame or None
        :func:`brainllm_utils.findings.load` (columns ``rq``, ``analysis``, ``recovered``,
        ``agrees``); ``None`` or empty draws a "no findings" note.
    %(ax)s
    width : int, default=88
        Characters of each finding's text kept (shortened with "…").
    value_width : int, default=30
        Characters of each recovered value kept.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = ax if ax is not None else plt.gca()
    ax.set_axis_off()
    if df is None or len(df) == 0:
        ax.text(0.5, 0.5, "no findings recorded yet: run the chapters first", ha="center",
                va="center", transform=ax.transAxes)
        return ax
    lines = []
    for rq, group in df.groupby("rq", sort=True, observed=True):
        lines.append(("header", str(rq), None, None))
        for _, row in group.iterrows():
            agrees = row["agrees"] if row["agrees"] in (True, False) else None
            lines.append(("row", row["analysis"], row["recovered"], agrees))
    n = len(lines)
    y = 1.0
    step = 1.0 / max(n, 1)
    for kind, text, value, agrees in lines:
        if kind == "header":
            ax.text(0.0, y, text, fontsize=11, fontweight="bold", va="top", transform=ax.transAxes)
        else:
            mark, color = _MARKS[agrees]
            ax.text(0.005, y, mark, color=color, fontsize=12, fontweight="bold", va="top",
                    transform=ax.transAxes)
            ax.text(0.04, y, textwrap.shorten(text, width, placeholder="…"), fontsize=9,
                    va="top", transform=ax.transAxes)
            ax.text(0.71, y, textwrap.shorten(str(value), value_width, placeholder="…"),
                    fontsize=9, va="top", family="monospace", transform=ax.transAxes)
        y -= step
    counts = df["agrees"].map({True: "agree", False: "disagree"}).fillna("no criterion")
    summary = ", ".join(f"{counts.eq(k).sum()} {k}" for k in ("agree", "disagree", "no criterion"))
    ax.set_title(f"{len(df)} findings: {summary}", fontsize=10, loc="left")
    return ax
