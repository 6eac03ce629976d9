"""A helper of the chapter figures: the ``Axes`` to draw into."""

from __future__ import annotations

__all__ = ["get_ax"]


def get_ax(ax=None, figsize=(8, 4)):
    """``ax``, or a new figure's ``Axes`` of ``figsize`` when ``ax`` is ``None``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes, optional
        Returned as it is when given.
    figsize : tuple of (float, float), default=(8, 4)
        Size in inches of the new figure.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The Axes to draw into.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax
