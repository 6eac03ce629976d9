"""Figures for the RSA chapters (re-exported by :mod:`brainllm_utils.viz`).

Every function takes an optional ``ax`` and returns it; none calls ``show`` or ``savefig``.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "plot_roi_rsa_bars",
    "plot_model_matrix",
    "plot_paired_differences",
    "plot_pair_similarity",
    "plot_volume_slices",
]


def _ax(ax, figsize=(8, 4)):
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax


def plot_roi_rsa_bars(df, value: str = "r", rois=None, models=None, ceilings=None, ax=None,
                      palette: str = "tab10", ylabel: str | None = None, legend: bool = True):
    """Grouped bars of the subject mean per ROI and model, with one point per subject.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy scores (``subject, roi, model`` and ``value``), e.g.
        :func:`brainllm_utils.rsa_analysis.subject_rsa_table`.
    ceilings : pandas.DataFrame, optional
        :func:`brainllm_utils.rsa_analysis.loso_ceilings`: a grey band per ROI spans the
        subjects' mean LOSO ceiling (lower) to the mean ceiling against all subjects
        (upper). For normalised scores pass ``None`` (the ceiling is 1 by construction).
    """
    import matplotlib.pyplot as plt

    ax = _ax(ax)
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


def plot_model_matrix(matrix, ax=None, cmap: str = "viridis", vmin=None, vmax=1.0,
                      annotate: bool = True, title: str | None = None, colorbar: bool = True):
    """Heatmap of a square model-by-model DataFrame (e.g. RDM correlations), annotated."""
    import matplotlib.pyplot as plt

    ax = _ax(ax, (6, 5))
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
    """
    import matplotlib.pyplot as plt

    ax = _ax(ax, (9, 4))
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


def plot_pair_similarity(df, models=None, ax=None, kinds=("role-reversed", "random")):
    """Feature similarity of role-reversed vs random image pairs, per model (strip + mean).

    ``df`` from :func:`brainllm_utils.rsa_analysis.role_reversal_similarity`.
    """
    ax = _ax(ax, (8, 3.5))
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


def plot_volume_slices(volume, background=None, axis: int = 2, n_slices: int = 8,
                       n_cols: int = 4, ax=None, cmap: str = "inferno", vmin=None, vmax=None,
                       threshold=None, title: str | None = None, colorbar: bool = True):
    """A montage of slices of a 3-D map (NaN transparent) over an optional background.

    Parameters
    ----------
    volume : array (X, Y, Z)
        The map (e.g. :func:`brainllm_utils.rsa_analysis.volume_searchlight`).
    background : array (X, Y, Z), optional
        Grey background (e.g. the brain mask or a mean beta image).
    axis : int
        Slicing axis (2 = axial for the NSD func1pt8mm grid).
    threshold : float, optional
        Values with ``|v| < threshold`` are not drawn.
    """
    import matplotlib.pyplot as plt

    ax = _ax(ax, (9, 5))
    vol = np.moveaxis(np.asarray(volume, dtype=float), axis, 0)
    finite = np.isfinite(vol)
    has = np.flatnonzero(finite.reshape(vol.shape[0], -1).any(1))
    if has.size == 0:
        raise ValueError("volume has no finite values")
    picks = np.unique(np.linspace(has[0], has[-1], min(n_slices, has.size)).round().astype(int))
    n_rows = int(np.ceil(len(picks) / n_cols))
    h, w = np.rot90(vol[0]).shape
    canvas = np.full((n_rows * h, n_cols * w), np.nan)
    bg = None
    if background is not None:
        bgv = np.moveaxis(np.asarray(background, dtype=float), axis, 0)
        bg = np.full_like(canvas, np.nan)
    for k, z in enumerate(picks):
        r, c = divmod(k, n_cols)
        sl = vol[z].copy()
        if threshold is not None:
            sl[np.abs(sl) < threshold] = np.nan
        canvas[r * h:(r + 1) * h, c * w:(c + 1) * w] = np.rot90(sl)
        if bg is not None:
            bg[r * h:(r + 1) * h, c * w:(c + 1) * w] = np.rot90(bgv[z])
    if bg is not None:
        b = np.where(np.isfinite(bg), bg, 0)
        ax.imshow(b, cmap="gray", vmin=0, vmax=2.5 * max(float(b.max()), 1e-12),
                  interpolation="nearest")
    im = ax.imshow(canvas, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    for k, z in enumerate(picks):
        r, c = divmod(k, n_cols)
        ax.text(c * w + 1, r * h + 2, f"{'xyz'[axis]}={z}", color="w", fontsize=7, va="top")
    ax.set_axis_off()
    if colorbar:
        plt.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
    if title:
        ax.set_title(title, fontsize=10)
    return ax
