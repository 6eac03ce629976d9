"""BLT recurrent convolutional network and its image transforms (private; see :mod:`.vision`).

The network follows Spoerer et al. (2017/2020) and Mehrer et al. (2021) as used by
Doerig et al. (2025, §6): every layer ``l`` has a **b**\\ottom-up, a **l**\\ateral and a
**t**\\op-down input,

    h_l(0) = ReLU(Norm_l(B_l(h_{l-1}(0))))
    h_l(t) = ReLU(Norm_l(B_l(h_{l-1}(t)) + L_l(h_l(t-1)) + T_l(h_{l+1}(t-1))))   (t ≥ 1)

with ``h_{-1}(t)`` the image, ``B_l`` a (strided/pooled) convolution, ``L_l`` a 3×3
convolution, ``T_l`` a 1×1 convolution applied at the coarser resolution of layer ``l+1``
and upsampled (nearest) to layer ``l``, and ``Norm_l = GroupNorm(1, C_l)`` (a layer norm
over channels and space). A linear readout of the globally average-pooled last layer gives
one output per time step; the loss is applied at every step.

Everything here imports torch; :mod:`brainllm_utils.vision` imports this module lazily.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .._utils.docs import fill_doc
from .._utils.numeric import check_float, check_int

__all__ = ["BLTConfig", "BLTNet", "preprocess", "augment", "layer_shapes"]


@dataclass(frozen=True)
class BLTConfig:
    """Architecture of a :class:`BLTNet`.

    Parameters
    ----------
    n_layers : int, default=4
        Recurrent convolutional layers (paper: 10).
    width : int, default=32
        Channels of the first layer; layer ``l`` has ``width · channel_mult[l]`` channels
        (``channel_mult`` defaults to doubling at every pooling stage, capped at 4×).
    image_size : int, default=64
        Input side in pixels (square; paper ≈ 128).
    n_steps : int, default=4
        Time steps (paper: 6).
    out_dim : int, default=768
        Readout size (768 for MPNet targets, the number of categories for multi-hot).
    stem_kernel, stem_stride : int, default=5 and 2
        Kernel and stride of layer 0's bottom-up convolution (followed by a 2×2 max pool
        when ``stem_pool``).
    stem_pool : bool, default=True
        Max-pool 2×2 after layer 0's bottom-up convolution.
    pool_layers : tuple of int, optional
        Layers whose bottom-up input is max-pooled 2×2 first (``None``: every other layer
        from layer 1, as many as keep the map ≥ 4 px).
    channel_mult : tuple of float, optional
        Per-layer channel multipliers (``None``: see ``width``).
    """

    n_layers: int = 4
    width: int = 32
    image_size: int = 64
    n_steps: int = 4
    out_dim: int = 768
    stem_kernel: int = 5
    stem_stride: int = 2
    stem_pool: bool = True
    pool_layers: tuple | None = None
    channel_mult: tuple | None = None

    def __post_init__(self):
        if self.n_layers < 1 or self.n_steps < 1 or self.width < 1 or self.out_dim < 1:
            raise ValueError("n_layers, n_steps, width and out_dim must be ≥ 1")
        if self.image_size < 8:
            raise ValueError("image_size must be ≥ 8")

    def resolved(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """``(channels, pooled_layers, spatial sizes)`` per layer.

        Returns
        -------
        channels : tuple of int
            Channels of each layer (``n_layers`` entries).
        pooled_layers : tuple of int
            The layers whose bottom-up input is max-pooled, sorted.
        sizes : tuple of int
            Side in pixels of each layer's (square) activation map.

        Raises
        ------
        ValueError
            For ``pool_layers`` outside ``1 .. n_layers - 1``, an ``image_size`` too small
            for the pooling, or a ``channel_mult`` of the wrong length.
        """
        size = math.ceil(self.image_size / self.stem_stride)
        if self.stem_pool:
            size //= 2
        sizes = [size]
        if self.pool_layers is None:
            pools = []
            for layer in range(1, self.n_layers):
                if layer % 2 == 1 and size // 2 >= 4:
                    pools.append(layer)
                    size //= 2
                sizes.append(size)
        else:
            pools = sorted(int(p) for p in self.pool_layers)
            if any(p < 1 or p >= self.n_layers for p in pools):
                raise ValueError("pool_layers must lie in 1..n_layers-1")
            for layer in range(1, self.n_layers):
                if layer in pools:
                    size //= 2
                sizes.append(size)
        if min(sizes) < 1:
            raise ValueError(f"image_size {self.image_size} too small for the pooling {pools}")
        if self.channel_mult is None:
            mult, m = [], 1
            for layer in range(self.n_layers):
                if layer in pools:
                    m = min(4, m * 2)
                mult.append(m)
        else:
            if len(self.channel_mult) != self.n_layers:
                raise ValueError("channel_mult needs one entry per layer")
            mult = list(self.channel_mult)
        channels = tuple(max(1, int(round(self.width * m))) for m in mult)
        return channels, tuple(pools), tuple(sizes)

    def to_dict(self) -> dict:
        """The fields as a JSON-able dict (tuples as lists), as checkpoints store them.

        Returns
        -------
        fields : dict
            Field name → value; :meth:`from_dict` inverts it.
        """
        d = dataclasses.asdict(self)
        for k in ("pool_layers", "channel_mult"):
            if d[k] is not None:
                d[k] = list(d[k])
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "BLTConfig":
        """The config of a dict written by :meth:`to_dict`.

        Parameters
        ----------
        d : dict
            Field name → value (lists are turned back into tuples).

        Returns
        -------
        config : BLTConfig
            The (validated) configuration.
        """
        d = dict(d)
        for k in ("pool_layers", "channel_mult"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


@fill_doc
def layer_shapes(config: BLTConfig) -> list[tuple[int, int, int]]:
    """``(channels, height, width)`` of every layer's activation map.

    Parameters
    ----------
    %(blt_config)s

    Returns
    -------
    shapes : list of (int, int, int)
        One ``(channels, height, width)`` per layer.
    """
    channels, _, sizes = config.resolved()
    return [(c, s, s) for c, s in zip(channels, sizes)]


@fill_doc
class BLTNet(nn.Module):
    """BLT recurrent CNN; see the module docstring for the update rule.

    ``forward(x)`` takes images ``(B, 3, H, W)`` in [-1, 1] and returns the readouts of all
    time steps, shape ``(n_steps, B, out_dim)``. ``forward(x, collect=[(layer, step), ...])``
    also returns a dict of spatially averaged activations ``(B, C_layer)``.

    Parameters
    ----------
    %(blt_config)s
    """

    def __init__(self, config: BLTConfig):
        super().__init__()
        self.config = config
        channels, pools, sizes = config.resolved()
        self.channels, self.pools, self.sizes = channels, set(pools), sizes
        n = config.n_layers
        bottom_up = [nn.Conv2d(3, channels[0], config.stem_kernel, stride=config.stem_stride,
                               padding=config.stem_kernel // 2, bias=False)]
        bottom_up += [nn.Conv2d(channels[i - 1], channels[i], 3, padding=1, bias=False) for i in range(1, n)]
        self.bottom_up = nn.ModuleList(bottom_up)
        self.lateral = nn.ModuleList(nn.Conv2d(c, c, 3, padding=1, bias=False) for c in channels)
        self.top_down = nn.ModuleList(nn.Conv2d(channels[i + 1], channels[i], 1, bias=False) for i in range(n - 1))
        self.norms = nn.ModuleList(nn.GroupNorm(1, c) for c in channels)
        self.readout = nn.Linear(channels[-1], config.out_dim)

    def _bottom_up(self, layer: int, x):
        if layer == 0:
            x = self.bottom_up[0](x)
            return F.max_pool2d(x, 2) if self.config.stem_pool else x
        if layer in self.pools:
            x = F.max_pool2d(x, 2)
        return self.bottom_up[layer](x)

    def forward(self, x, collect=None, n_steps: int | None = None):
        """Run the network for ``n_steps`` time steps.

        Parameters
        ----------
        x : torch.Tensor of shape (batch, 3, image_size, image_size)
            Images scaled to [-1, 1] (:func:`preprocess` or :func:`augment`).
        collect : iterable of (int, int), optional
            ``(layer, step)`` pairs (non-negative) whose activations are returned, averaged
            over space.
        n_steps : int, optional
            Time steps to run (``None``: ``config.n_steps``).

        Returns
        -------
        out : torch.Tensor of shape (n_steps, batch, out_dim)
            The readout at every time step.
        pooled : dict of (int, int) to torch.Tensor of shape (batch, n_channels_layer)
            Only with ``collect``: float32 activations of each pair.
        """
        n_steps = self.config.n_steps if n_steps is None else int(n_steps)
        n = self.config.n_layers
        want = {}
        if collect is not None:
            for layer, step in collect:
                want.setdefault(step, []).append(layer)
        pooled = {}
        outputs = []
        # channels-last activations: oneDNN's convolutions and pooling run ~1.4x faster on
        # the CPU in this layout (and it suits tensor cores on the GPU)
        x = x.contiguous(memory_format=torch.channels_last)
        stem = self._bottom_up(0, x)  # the image is constant: its convolution is computed once
        prev = [None] * n
        for t in range(n_steps):
            cur = []
            for layer in range(n):
                drive = stem if layer == 0 else self._bottom_up(layer, cur[layer - 1])
                if t > 0:
                    drive = drive + self.lateral[layer](prev[layer])
                    if layer < n - 1:
                        td = self.top_down[layer](prev[layer + 1])
                        drive = drive + F.interpolate(td, size=drive.shape[-2:], mode="nearest")
                cur.append(F.relu(self.norms[layer](drive)))
            for layer in want.get(t, ()):
                pooled[(layer, t)] = cur[layer].float().mean(dim=(2, 3))
            outputs.append(self.readout(cur[-1].mean(dim=(2, 3))))
            prev = cur
        out = torch.stack(outputs)
        return (out, pooled) if collect is not None else out


# ------------------------------------------------------------------------ transforms
def _to_float(images) -> torch.Tensor:
    """uint8 ``(n, H, W, 3)`` (array or tensor) → float ``(n, 3, H, W)`` in [0, 1]."""
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(np.ascontiguousarray(images))
    if images.dtype != torch.uint8:
        raise TypeError(f"images must be uint8 (n, H, W, 3), got {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must have shape (n, H, W, 3), got {tuple(images.shape)}")
    return images.permute(0, 3, 1, 2).float().div_(255.0)


def preprocess(images, image_size: int, crop: float = 1.0) -> torch.Tensor:
    """Deterministic evaluation transform: centre crop, resize, scale to [-1, 1].

    Parameters
    ----------
    images : ndarray or torch.Tensor of uint8 of shape (n_images, height, width, 3)
        RGB images.
    image_size : int
        Output side (square).
    crop : float in (0, 1], default=1.0
        Side of the centred square crop as a fraction of the shorter image side.

    Returns
    -------
    x : torch.Tensor of float32 of shape (n_images, 3, image_size, image_size)
        Values in [-1, 1].
    """
    image_size = check_int(image_size, "image_size", min_value=1)
    crop = check_float(crop, "crop", min_value=0, max_value=1, min_inclusive=False)
    x = _to_float(images)
    h, w = x.shape[-2:]
    side = max(1, int(round(min(h, w) * crop)))
    top, left = (h - side) // 2, (w - side) // 2
    x = x[:, :, top:top + side, left:left + side]
    if side != image_size:
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", align_corners=False,
                          antialias=side > image_size)
    return x.clamp_(0, 1).mul_(2).sub_(1)


def augment(images, image_size: int, generator: torch.Generator, min_area: float = 0.33,
            flip: bool = True, brightness: float = 32 / 255, saturation=(0.5, 1.5),
            contrast=(0.5, 1.5)) -> torch.Tensor:
    """Random training transform (Doerig et al. §6), seeded by ``generator``.

    Per image: a random square crop whose area is ``U(min_area, 1)`` of the image and whose
    position is uniform, resized to ``image_size`` (bilinear ``grid_sample``; one batched
    call), a horizontal flip with p = 0.5, brightness ``± brightness`` (additive),
    saturation and contrast factors drawn uniformly from the given ranges; then [-1, 1].
    All random numbers come from ``generator`` (CPU), in a fixed order; ``images`` may be a
    uint8 tensor on any device, where the transform then runs.

    Parameters
    ----------
    images : ndarray or torch.Tensor of uint8 of shape (n_images, height, width, 3)
        RGB images.
    image_size : int
        Output side (square).
    generator : torch.Generator
        CPU generator of every random number (the same stream gives the same batch).
    min_area : float, default=0.33
        Smallest crop area, as a fraction of the image.
    flip : bool, default=True
        Flip horizontally with probability 0.5.
    brightness : float, default=32/255
        Largest additive brightness change (on the [0, 1] scale).
    saturation, contrast : (float, float), default=(0.5, 1.5)
        Ranges of the saturation and contrast factors.

    Returns
    -------
    x : torch.Tensor of float32 of shape (n_images, 3, image_size, image_size)
        Values in [-1, 1], on the device of ``images``.
    """
    image_size = check_int(image_size, "image_size", min_value=1)
    min_area = check_float(min_area, "min_area", min_value=0, max_value=1, min_inclusive=False)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    x = _to_float(images)
    n = x.shape[0]
    g = generator
    scale = torch.sqrt(min_area + (1 - min_area) * torch.rand(n, generator=g))  # side fraction
    cx = (1 - scale) * (2 * torch.rand(n, generator=g) - 1)
    cy = (1 - scale) * (2 * torch.rand(n, generator=g) - 1)
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0) if flip else torch.ones(n)
    b = (2 * torch.rand(n, generator=g) - 1) * brightness
    s = saturation[0] + (saturation[1] - saturation[0]) * torch.rand(n, generator=g)
    c = contrast[0] + (contrast[1] - contrast[0]) * torch.rand(n, generator=g)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = scale * sign
    theta[:, 1, 1] = scale
    theta[:, 0, 2] = cx
    theta[:, 1, 2] = cy
    # random numbers are drawn on the CPU (same stream on every device); the ops run on x's device
    theta, b, s, c = (v.to(x.device) for v in (theta, b, s, c))
    if x.shape[-1] > 2 * image_size:  # keep bilinear sampling from aliasing badly
        x = F.interpolate(x, scale_factor=2 * image_size / x.shape[-1], mode="bilinear",
                          antialias=True, align_corners=False)
    grid = F.affine_grid(theta, (n, 3, image_size, image_size), align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    x = x + b[:, None, None, None]
    gray = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
    x = gray + s[:, None, None, None] * (x - gray)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = mean + c[:, None, None, None] * (x - mean)
    return x.clamp_(0, 1).mul_(2).sub_(1)
