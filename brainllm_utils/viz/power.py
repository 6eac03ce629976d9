"""Figure of the calibration and power sweep (issue 16): detection rates against group size."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["plot_power_curves"]

_STYLE = {"null": ("--", "s"), "positive": ("-", "o")}
#: horizontal offset (a factor on the log-2 axis) per world, so equal rates stay visible
_DODGE = {"null": 0.96, "positive": 1.04}
_LABEL = {"null": "null world (false-positive rate)", "positive": "positive world (detection rate)"}


@fill_doc
def plot_power_curves(summary, claim: str, roi: str, ax=None, alpha: float | None = None,
                      intervals: bool = True, title: str | None = None):
    """Detection rate against the number of subjects, per world and images per subject.

    One line per world and number of images per subject: the null world dashed (its rate
    is the false-positive rate of the criterion), the positive world solid (its power);
    one colour per number of images; the worlds are drawn slightly apart on the log-2
    subjects axis so that equal rates stay visible. Exact binomial intervals as error
    bars; the nominal level α as a grey horizontal line.

    Parameters
    ----------
    summary : pandas.DataFrame
        From :func:`brainllm_utils.chapters.power.power_summary`: ``world, claim, roi,
        n_subjects, n_images, rate, ci_low, ci_high, alpha``.
    claim : str
        The claim drawn (a value of ``summary["claim"]``).
    roi : str
        The ROI drawn (a value of ``summary["roi"]``).
    %(ax_new)s
    alpha : float, optional
        The level marked (default: the table's ``alpha``).
    intervals : bool, default=True
        Draw the binomial intervals.
    %(title)s
        Default: ``"<claim>, <roi>"``.

    Returns
    -------
    %(returns_ax)s

    Raises
    ------
    ValueError
        When ``claim`` and ``roi`` select no row, or a column is missing.
    """
    import matplotlib.pyplot as plt

    need = {"world", "claim", "roi", "n_subjects", "n_images", "rate", "ci_low", "ci_high"}
    missing = sorted(need - set(summary.columns))
    if missing:
        raise ValueError(f"summary: columns {missing} missing (expected power_summary's table)")
    d = summary[(summary["claim"] == claim) & (summary["roi"] == roi)]
    if not len(d):
        raise ValueError(f"claim={claim!r}, roi={roi!r}: no rows (claims {sorted(set(summary['claim']))}, "
                         f"ROIs {sorted(set(summary['roi']))})")
    if alpha is None:
        alpha = float(d["alpha"].iloc[0]) if "alpha" in d.columns else 0.05
    ax = get_ax(ax, figsize=(5, 3.6))
    images = sorted(set(d["n_images"]))
    colours = plt.get_cmap("viridis")(np.linspace(0.15, 0.8, len(images)))
    for world in [w for w in ("null", "positive") if w in set(d["world"])] + \
            sorted(set(d["world"]) - {"null", "positive"}):
        ls, marker = _STYLE.get(world, (":", "^"))
        for colour, n_img in zip(colours, images):
            g = d[(d["world"] == world) & (d["n_images"] == n_img)].sort_values("n_subjects")
            if not len(g):
                continue
            x = g["n_subjects"].to_numpy(float) * _DODGE.get(world, 1.0)
            y = g["rate"].to_numpy(float)
            yerr = np.vstack([y - g["ci_low"].to_numpy(float), g["ci_high"].to_numpy(float) - y])
            ax.errorbar(x, y, yerr=yerr if intervals else None, ls=ls, marker=marker, color=colour,
                        capsize=3, lw=1.5, label=f"{_LABEL.get(world, world)}, {n_img} images")
    ax.axhline(alpha, color="0.5", lw=1, zorder=0, label=f"α = {alpha:g}")
    subjects = sorted(set(d["n_subjects"]))
    ax.set_xscale("log", base=2)
    ax.set_xticks(subjects, [str(n) for n in subjects])
    ax.minorticks_off()
    ax.set_xlabel("subjects")
    ax.set_ylabel("share of seeds detected")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title if title else f"{claim}, {roi}", fontsize=10)
    ax.legend(fontsize=7, loc="best")
    return ax
