"""Activations of trained networks: any layer × time step, spatially averaged, cached on disk."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._utils.device import import_torch as _torch
from .._utils.device import resolve_device as _resolve_device
from .._utils.paths import atomic_save_npy, get_cache_dir
from ._keys import ids_key
from ._train import TrainedNetwork, weights_hash

__all__ = ["layer_names", "extract_activations"]


def layer_names(config) -> list[str]:
    """Readout names ``layer_{l}_time_{t}`` (the paper's ``layernorm_layer_{l}_time_{t}``)."""
    return [f"layer_{l}_time_{t}" for l in range(config.n_layers) for t in range(config.n_steps)]


def extract_activations(network, images: np.ndarray, layers=(-1,), steps=(-1,), *, image_ids=None,
                        batch_size: int = 128, device="auto", cache: bool | str | os.PathLike = True,
                        crop: float = 1.0) -> dict[tuple[int, int], np.ndarray]:
    """Spatially averaged activations of any layers × time steps (deterministic transform).

    Parameters
    ----------
    network : TrainedNetwork or BLTNet
    images : uint8 (n, H, W, 3)
    layers, steps : ints (negative counts from the end)
        Every combination is returned.
    image_ids : ids of the images (e.g. nsdIds) for the cache key (``None``: hash pixels).
    cache : True (``get_cache_dir()/vision/activations``), a folder, or False.
    crop : centre-crop fraction of the evaluation transform.

    Returns
    -------
    dict ``(layer, step) -> float32 (n, C_layer)`` with non-negative indices.
    """
    torch = _torch()
    from ._blt import preprocess as _preprocess

    model = network.model if isinstance(network, TrainedNetwork) else network
    cfg = model.config
    pairs = [(l % cfg.n_layers, t % cfg.n_steps) for l in layers for t in steps]
    folder = None
    out: dict[tuple[int, int], np.ndarray] = {}
    if cache:
        base = get_cache_dir() if cache is True else Path(cache)
        folder = base / "vision" / "activations" / weights_hash(model)[:20]
        ik = ids_key(images, image_ids)
        for p in pairs:
            f = folder / f"layer{p[0]}_step{p[1]}_crop{crop:g}_{ik}.npy"
            if f.exists():
                try:
                    out[p] = np.load(f)
                except (OSError, ValueError):
                    f.unlink(missing_ok=True)
    todo = [p for p in pairs if p not in out]
    if todo:
        device = _resolve_device(device)
        was = next(model.parameters()).device
        model.to(device).eval()
        chunks: dict = {p: [] for p in todo}
        last = max(t for _, t in todo) + 1
        with torch.no_grad():
            for i in range(0, images.shape[0], batch_size):
                x = _preprocess(images[i:i + batch_size], cfg.image_size, crop).to(device)
                _, pooled = model(x, collect=todo, n_steps=last)
                for p in todo:
                    chunks[p].append(pooled[p].float().cpu().numpy())
        model.to(was)
        for p in todo:
            out[p] = np.concatenate(chunks[p]).astype(np.float32)
            if folder is not None:
                atomic_save_npy(folder / f"layer{p[0]}_step{p[1]}_crop{crop:g}_{ik}.npy", out[p])
    return {p: out[p] for p in pairs}

