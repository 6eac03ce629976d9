"""Figures of the model-comparison page: every model (× layer) against every ROI."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from ._axes import get_ax

__all__ = ["plot_model_layers"]

_NEEDED = ("model", "roi", "subject", "metric")


def _row_order(table, models):
    """Rows: the given models, else by model family (``base``) in table order, then layer."""
    if models is not None:
        return list(models)
    names = list(dict.fromkeys(table["model"]))
    if "base" not in table.columns or "layer" not in table.columns:
        return names
    first = table.drop_duplicates("model").set_index("model")
    bases = list(dict.fromkeys(first.loc[names, "base"]))

    def key(m):
        layer = first.loc[m, "layer"]
        numeric = isinstance(layer, (int, float, np.integer, np.floating))
        if numeric and np.isfinite(layer):
            return (bases.index(first.loc[m, "base"]), 0, float(layer), names.index(m))
        return (bases.index(first.loc[m, "base"]), 1, 0.0, names.index(m))

    return sorted(names, key=key)


@fill_doc
def plot_model_layers(table, metric: str = "rsa", value: str = "normalised", ax=None, rois=None,
                      models=None, cmap: str = "viridis", annotate: bool = True,
                      colorbar: bool = True):
    """Heat map of a score per model × layer (rows) and ROI (columns), mean over subjects.

    Rows of the same model family (the table's ``base``) are grouped and ordered by layer;
    when a family has several layers, families are separated by a line, so a layer sweep
    reads top to bottom. A cell without a value (e.g.
    ``normalised`` with one subject, who has no leave-one-subject-out ceiling) is grey with
    "n/a".

    Parameters
    ----------
    table : pandas.DataFrame
        The tidy table of
        :func:`brainllm_utils.chapters.model_comparison.compare_models`: ``model, roi,
        subject, metric`` and ``value``, optionally ``base`` and ``layer``.
    metric : str, default="rsa"
        The metric shown (``"rsa"`` or ``"encoding"``): rows of the table with it.
    value : str, default="normalised"
        The column shown: ``"normalised"`` (score / ceiling) or ``"value"`` (raw score).
    %(ax_new)s
    rois : sequence of str, optional
        Columns, in order (default: the table's order).
    models : sequence of str, optional
        Rows, in order (default: by family, then layer).
    cmap : str, default="viridis"
        Colormap of the cells.
    annotate : bool, default=True
        Write each cell's value.
    %(colorbar)s

    Returns
    -------
    %(returns_ax)s
    """
    import matplotlib.pyplot as plt

    missing = [c for c in _NEEDED + (value,) if c not in getattr(table, "columns", [])]
    if missing:
        raise ValueError(f"table: expected compare_models' tidy table, missing columns {missing}")
    d = table[table["metric"] == metric]
    if d.empty:
        raise ValueError(f"metric={metric!r}: no rows of that metric in the table "
                         f"(metrics: {sorted(set(table['metric']))})")
    rois = list(dict.fromkeys(d["roi"])) if rois is None else list(rois)
    rows = _row_order(d, models)
    unknown = [m for m in rows if m not in set(d["model"])] + [r for r in rois if r not in set(d["roi"])]
    if unknown:
        raise ValueError(f"models/rois: {unknown} have no {metric!r} rows in the table")
    means = d.groupby(["model", "roi"])[value].mean()
    n_sub = int(d["subject"].nunique())
    M = np.array([[float(means.get((m, r), np.nan)) for r in rois] for m in rows])
    ax = get_ax(ax, figsize=(1.1 * len(rois) + 4, 0.42 * len(rows) + 1.6))
    ax.imshow(np.where(np.isfinite(M), np.nan, 0.0), cmap="Greys", vmin=-1, vmax=3, aspect="auto")
    finite = M[np.isfinite(M)]
    vmin, vmax = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    if vmax <= vmin:
        vmax = vmin + 1e-9
    im = ax.imshow(np.ma.masked_invalid(M), cmap=plt.get_cmap(cmap), vmin=vmin, vmax=vmax,
                   aspect="auto")
    if annotate:
        for i in range(len(rows)):
            for j in range(len(rois)):
                if np.isfinite(M[i, j]):
                    dark = (M[i, j] - vmin) / (vmax - vmin) < 0.5
                    ax.text(j, i, f"{M[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if dark else "black")
                else:
                    ax.text(j, i, "n/a", ha="center", va="center", fontsize=7, color="0.3")
    base = d.drop_duplicates("model").set_index("model")["base"] if "base" in d.columns else None
    if base is not None and base.loc[rows].duplicated().any():  # a sweep: lines between families
        for i in range(1, len(rows)):
            if base.get(rows[i]) != base.get(rows[i - 1]):
                ax.axhline(i - 0.5, color="white", linewidth=2)
    ax.set_xticks(range(len(rois)), rois, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    what = "score / noise ceiling" if value == "normalised" else "score"
    ax.set_title(f"{metric}: {what}, mean over {n_sub} subject{'s' * (n_sub != 1)}", fontsize=10)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.04, pad=0.02, label=f"{metric} {what}")
    return ax
