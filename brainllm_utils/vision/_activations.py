"""Activations of trained networks: any layer × time step, spatially averaged, cached on disk."""

from __future__ import annotations

import os

import numpy as np

from .._utils.device import import_torch as _torch
from .._utils.device import resolve_device as _resolve_device
from .._utils.cache import cache_key, load_npy, resolve_cache, save_npy
from .._utils.docs import fill_doc
from .._utils.numeric import check_float, check_int
from ._train import TrainedNetwork, weights_hash

__all__ = ["layer_names", "extract_activations", "images_identity", "LazyImages"]


class LazyImages:
    """Images read on demand, batch by batch, never all at once.

    An array-like for :func:`extract_activations` and
    :func:`~brainllm_utils.vision.extract_features`: ``images[a:b]`` (or an int array of positions) calls ``reader(ids[a:b])``. With sorted
    ``ids`` every read asks for increasing ids (what h5py needs to read ``imgBrick``
    rows), and consecutive reads move forward through the file.

    Parameters
    ----------
    ids : array-like of int of shape (n_images,)
        The images' ids (e.g. nsdIds), in row order.
    reader : callable
        ``reader(ids) -> uint8 (len(ids), height, width, 3)`` (e.g. ``NSD.images``).
    image_shape : tuple of int, optional
        ``(height, width, 3)`` (``None``: read from the first image).
    """

    dtype = np.dtype(np.uint8)
    ndim = 4

    def __init__(self, ids, reader, image_shape=None):
        if not callable(reader):
            raise TypeError("LazyImages: reader must be callable")
        self.ids = np.asarray(ids, dtype=np.int64).ravel()
        self.reader = reader
        if image_shape is None:
            image_shape = tuple(self._read(self.ids[:1]).shape[1:]) if self.ids.size else (0, 0, 3)
        self.image_shape = tuple(int(v) for v in image_shape)

    @property
    def shape(self) -> tuple:
        """``(n_images, height, width, 3)``."""
        return (int(self.ids.size), *self.image_shape)

    def __len__(self) -> int:
        return int(self.ids.size)

    def _read(self, ids) -> np.ndarray:
        out = np.asarray(self.reader(ids))
        if out.dtype != np.uint8 or out.ndim != 4 or out.shape[0] != len(ids) or out.shape[-1] != 3:
            raise ValueError(f"LazyImages: the reader returned {out.dtype} {out.shape} for {len(ids)} ids; "
                             "expected uint8 (n, H, W, 3)")
        return out

    def __getitem__(self, index) -> np.ndarray:
        if isinstance(index, (int, np.integer)):
            return self._read(self.ids[[int(index)]])[0]
        return self._read(self.ids[index])

    def __array__(self, dtype=None, copy=None):  # only for small sets (the pixel key): reads everything
        out = self._read(self.ids)
        return out if dtype is None else out.astype(dtype)


@fill_doc
def images_identity(images, image_ids=None) -> str:
    """A key of the images a network saw: their ids when given, else their pixels (streamed).

    Parameters
    ----------
    %(images)s
    %(image_ids)s

    Returns
    -------
    key : str
        16 hex digits (:func:`~brainllm_utils._utils.cache.cache_key`, kind
        ``"activations"``).
    """
    if image_ids is not None:
        return cache_key("activations", "ids", np.asarray(image_ids).astype(np.int64), length=16)
    return cache_key("activations", "pixels", np.asarray(images), length=16)


@fill_doc
def layer_names(config) -> list[str]:
    """Readout names ``layer_{l}_time_{t}`` (the paper's ``layernorm_layer_{l}_time_{t}``).

    Parameters
    ----------
    %(blt_config)s

    Returns
    -------
    names : list of str
        One name per layer × time step, layer-major.
    """
    if not (hasattr(config, "n_layers") and hasattr(config, "n_steps")):
        raise TypeError(f"config must be a BLTConfig (with n_layers and n_steps), got {type(config).__name__}")
    return [f"layer_{l}_time_{t}" for l in range(config.n_layers) for t in range(config.n_steps)]


def _check_positions(values, name: str, n: int) -> list[int]:
    """Layer or step positions: ints in ``[-n, n)`` (never wrapped silently), each once."""
    if isinstance(values, (int, np.integer)) and not isinstance(values, bool):
        values = [values]
    out = [check_int(v, f"{name} entry", min_value=-n, max_value=n - 1) for v in values]
    if not out:
        raise ValueError(f"{name} is empty: expected at least one position in [-{n}, {n})")
    if len({v % n for v in out}) != len(out):
        raise ValueError(f"{name}={list(values)} names the same position twice (of {n})")
    return out


@fill_doc
def extract_activations(network, images: np.ndarray, layers=(-1,), steps=(-1,), *, image_ids=None,
                        batch_size: int = 128, device="auto", cache: bool | str | os.PathLike = True,
                        crop: float = 1.0) -> dict[tuple[int, int], np.ndarray]:
    """Spatially averaged activations of any layers × time steps (deterministic transform).

    Parameters
    ----------
    network : TrainedNetwork or BLTNet
        The network (moved to ``device`` for the forward passes, then back).
    images : array-like of uint8 of shape (n_images, height, width, 3) or LazyImages
        RGB images; a :class:`LazyImages` is read ``batch_size`` images at a time.
    layers, steps : sequence of int, default=(-1,)
        Layers and time steps (negative counts from the end); every combination is
        returned.
    %(image_ids)s
        Keyword-only.
    batch_size : int, default=128
        Images per forward pass.
    %(device)s
    %(cache)s
        Entries (kind ``"activations"``) are keyed by the weights' hash, layer, step, crop
        and the images.
    crop : float, default=1.0
        Centre-crop fraction of the evaluation transform
        (:func:`~brainllm_utils.vision.preprocess`).

    Returns
    -------
    activations : dict of (int, int) to ndarray of float32 of shape (n_images, n_channels_layer)
        ``(layer, step)`` with non-negative indices → spatially averaged activations.
    """
    torch = _torch()
    from ._blt import preprocess as _preprocess

    model = network.model if isinstance(network, TrainedNetwork) else network
    cfg = model.config
    batch_size = check_int(batch_size, "batch_size", min_value=1)
    crop = check_float(crop, "crop", min_value=0, max_value=1, min_inclusive=False)
    layers = _check_positions(layers, "layers", cfg.n_layers)
    steps = _check_positions(steps, "steps", cfg.n_steps)
    pairs = [(l % cfg.n_layers, t % cfg.n_steps) for l in layers for t in steps]
    out: dict[tuple[int, int], np.ndarray] = {}
    folder = resolve_cache(cache, "activations")
    if folder is not None:
        folder = folder / weights_hash(model)[:20]
        ik = images_identity(images, image_ids)
        for p in pairs:
            hit = load_npy(folder / f"layer{p[0]}_step{p[1]}_crop{crop:g}_{ik}.npy", dtype=np.float32,
                           rows=images.shape[0], ndim=2)
            if hit is not None:
                out[p] = hit
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
                save_npy(folder / f"layer{p[0]}_step{p[1]}_crop{crop:g}_{ik}.npy", out[p])
    return {p: out[p] for p in pairs}

