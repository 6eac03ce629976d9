"""Figures of chapter 02 (RSA): ROI RSA bars with ceilings, paired model differences."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["plot_roi_rsa_bars", "plot_paired_differences"]


@fill_doc
def plot_roi_rsa_bars(df, value: str = "r", rois=None, models=None, ceilings=None, ax=None,
                      palette: str = "tab10", ylabel: str | None = None, legend: bool = True):
    """Grouped bars of the subject mean per ROI and model, with one point per subject.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy scores (``subject, roi, model`` and ``value``), e.g.
        :func:`brainllm_utils.rsa_analysis.subject_rsa_table`.
    value : str, default="r"
        Column of the scores.
    rois : sequence of str, optional
        ROIs in x order; ``None``: as they appear in ``df``.
    models : sequence of str, optional
        Models (bars within each ROI); ``None``: as they appear in ``df``.
    ceilings : pandas.DataFrame, optional
        :func:`brainllm_utils.rsa_analysis.loso_ceilings`: a grey band per ROI spans the
        subjects' mean LOSO ceiling (lower) to the mean ceiling against all subjects
        (upper). For normalised scores pass ``None`` (the ceiling is 1 by construction).
    %(ax_new)s
    %(palette)s
    ylabel : str, optional
        y-axis label; ``None``: ``value``.
    legend : bool, default=True
        Draw the legend of models (and ceiling) beside the Axes.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = get_ax(ax)
    rois = list(dict.fromkeys(df["roi"])) if rois is None else list(rois)
    models = list(dict.fromkeys(df["model"])) if models is None else list(models)
    cmap = plt.get_cmap(palette)
    width = 0.8 / len(models)
    rng = np.random.default_rng(0)
    for i, roi in enumerate(rois):
        if ceilings is not None:
            c = ceilings[ceilings["roi"] == roi]
            lo, hi = c["ceiling"].mean(), c["ceiling_upper"].mean()
            ax.fill_between([i - 0.45, i + 0.45], lo, hi, color="0.85", zorder=0,
                            label="noise ceiling (LOSO–all)" if i == 0 else None)
        for j, m in enumerate(models):
            v = df[(df["roi"] == roi) & (df["model"] == m)][value].to_numpy(float)
            x = i - 0.4 + width * (j + 0.5)
            ax.bar(x, np.nanmean(v) if v.size else np.nan, width * 0.9, color=cmap(j % 10),
                   label=m if i == 0 else None, zorder=1)
            ax.scatter(x + rng.uniform(-width * 0.2, width * 0.2, v.size), v, s=9, color="k",
                       zorder=2, linewidths=0)
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xticks(range(len(rois)))
    ax.set_xticklabels(rois, rotation=0)
    ax.set_ylabel(ylabel or value)
    if legend:
        ax.legend(fontsize=7, frameon=False, ncol=2, loc="upper left", bbox_to_anchor=(1, 1))
    return ax


@fill_doc
def plot_paired_differences(diffs, tests=None, rois=None, controls=None, ax=None,
                            reference: str = "mpnet", palette: str = "tab10",
                            ylabel: str | None = None):
    """Per-subject paired differences ``reference − control`` per ROI.

    Parameters
    ----------
    diffs : pandas.DataFrame
        ``subject, roi, control, diff`` (:func:`brainllm_utils.rsa_analysis.paired_differences`).
    tests : pandas.DataFrame, optional
        :func:`brainllm_utils.stats.pairwise_model_tests` output with ``model_a ==
        reference``: FDR-significant pairs get a star above their points.
    rois : sequence of str, optional
        ROIs in x order; ``None``: as they appear in ``diffs``.
    controls : sequence of str, optional
        Control models; ``None``: as they appear in ``diffs``.
    %(ax_new)s
    reference : str, default="mpnet"
        The model the controls are subtracted from (``model_a`` in ``tests``).
    %(palette)s
    ylabel : str, optional
        y-axis label; ``None``: ``"<reference> − control (r)"``.

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    ax = get_ax(ax, (9, 4))
    rois = list(dict.fromkeys(diffs["roi"])) if rois is None else list(rois)
    controls = list(dict.fromkeys(diffs["control"])) if controls is None else list(controls)
    cmap = plt.get_cmap(palette)
    width = 0.8 / len(controls)
    for i, roi in enumerate(rois):
        for j, c in enumerate(controls):
            v = diffs[(diffs["roi"] == roi) & (diffs["control"] == c)]["diff"].to_numpy(float)
            x = i - 0.4 + width * (j + 0.5)
            ax.scatter(np.full(v.size, x), v, s=12, color=cmap((j + 1) % 10), zorder=2,
                       label=c if i == 0 else None)
            if v.size:
                ax.plot([x - width * 0.35, x + width * 0.35], [v.mean()] * 2, color="k", lw=1.5)
            if tests is not None:
                t = tests[(tests["roi"] == roi) & (tests["model_a"] == reference)
                          & (tests["model_b"] == c)]
                if len(t) and bool(t["significant"].iloc[0]) and v.size:
                    ax.text(x, np.nanmax(v), "*", ha="center", va="bottom", fontsize=11)
    ax.axhline(0, color="k", lw=0.6)
    for i in range(1, len(rois)):
        ax.axvline(i - 0.5, color="0.85", lw=0.6)
    ax.set_xticks(range(len(rois)))
    ax.set_xticklabels(rois)
    ax.set_ylabel(ylabel or f"{reference} − control (r)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1, 1),
              title="control", title_fontsize=8)
    return ax
