"""A helper of the chapter figures: the ``Axes`` to draw into."""

from __future__ import annotations

__all__ = ["get_ax"]


def get_ax(ax=None, figsize=(8, 4)):
    """``ax``, or a new figure's ``Axes`` of ``figsize`` when ``ax`` is ``None``."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=figsize)
    return ax
