"""Training the BLT networks: presets, seeded deterministic training with atomic checkpoints,
resumable runs keyed by everything that changes the weights."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .._utils.device import import_torch as _torch
from .._utils.device import resolve_device as _resolve_device
from .._utils.cache import (
    array_digest,
    cache_key,
    checked_write,
    checksum_path,
    load_entry,
    resolve_cache,
    verified_loader,
    verify_checksums,
)
from .._utils.docs import fill_doc
from .._utils.numeric import check_float, check_int
from ._pool import TrainingPool, load_training_pool, make_targets

__all__ = ["TrainConfig", "PRESETS", "build_network", "TrainedNetwork", "weights_hash", "train_precision", "train_network",
           "load_checkpoint", "pool_split", "train_or_load", "train_networks", "save_network", "load_network",
           "NETWORK_FORMAT", "NETWORK_FORMAT_VERSION"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings of :func:`train_network`.

    ``loss`` is ``"cosine"`` (1 − cosine to the target; caption embeddings) or ``"bce"``
    (sigmoid binary cross-entropy; multi-hot labels); the loss is averaged over all time
    steps. AdamW with a cosine-annealed learning rate after ``warmup_epochs`` of linear
    warm-up (per batch). ``precision``: ``"auto"`` (bf16 autocast where the hardware runs
    bf16 natively: CUDA, and CPUs whose oneDNN has bf16 kernels, i.e. AVX512-BF16 or AMX;
    float32 elsewhere; :func:`train_precision`), ``"float32"`` or ``"bf16"``.

    Parameters
    ----------
    epochs : int, default=4
        Passes over the training images.
    batch_size : int, default=64
        Images per batch (the last incomplete batch of an epoch is dropped).
    lr : float, default=3e-3
        Peak learning rate of AdamW.
    weight_decay : float, default=1e-4
        AdamW's weight decay.
    warmup_epochs : float, default=0.5
        Epochs of linear warm-up before the cosine annealing.
    loss : {"cosine", "bce"}, default="cosine"
        1 − cosine to the target, or sigmoid binary cross-entropy.
    augment : bool, default=True
        Random crops, flips and colour changes (:func:`~brainllm_utils.vision.augment`);
        ``False``: the evaluation transform.
    min_crop_area : float, default=0.33
        Smallest crop area of the augmentation, as a fraction of the image.
    precision : {"auto", "float32", "bf16"}, default="auto"
        Autocast precision (see above).
    grad_clip : float, optional, default=5.0
        Clip the gradient norm to this (``None`` or 0: no clipping).
    pool_size : int, default=256
        Side of the square pool image every JPEG is first turned into (centre square crop
        of the shorter side, bicubic resize; :class:`~brainllm_utils.vision.PoolImages`),
        before the training or evaluation transform crops/resizes it to the network's
        input. The paper stored COCO as 256 × 256 squares (``ms_coco_embeddings_square256``;
        how they were squared is not published: we centre-crop). Used by
        :func:`train_or_load`; :func:`train_network` takes the images as given.
    """

    epochs: int = 4
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 0.5
    loss: str = "cosine"
    augment: bool = True
    min_crop_area: float = 0.33
    precision: str = "auto"
    grad_clip: float | None = 5.0
    pool_size: int = 256

    def __post_init__(self):
        if self.loss not in ("cosine", "bce"):
            raise ValueError("loss must be 'cosine' or 'bce'")
        check_int(self.epochs, "epochs", min_value=1)
        check_int(self.batch_size, "batch_size", min_value=1)
        check_float(self.lr, "lr", min_value=0, min_inclusive=False)
        check_float(self.weight_decay, "weight_decay", min_value=0)
        check_float(self.warmup_epochs, "warmup_epochs", min_value=0)
        check_float(self.min_crop_area, "min_crop_area", min_value=0, max_value=1, min_inclusive=False)
        check_float(self.grad_clip, "grad_clip", min_value=0, allow_none=True)
        if not isinstance(self.augment, (bool, np.bool_)):
            raise TypeError(f"augment must be True or False, got {self.augment!r}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("epochs and batch_size must be ≥ 1")
        if isinstance(self.pool_size, bool) or not isinstance(self.pool_size, int) or self.pool_size < 8:
            raise ValueError(f"pool_size must be an int ≥ 8, got {self.pool_size!r}")

    def to_dict(self) -> dict:
        """The fields as a dict (as checkpoints store them; ``TrainConfig(**d)`` inverts it).

        Returns
        -------
        fields : dict
            Field name → value.
        """
        return dataclasses.asdict(self)


def _presets():
    from ._blt import BLTConfig

    return {
        # tests and smoke runs on the tiny sandbox (32 px images): seconds
        "tiny": (BLTConfig(n_layers=2, width=8, image_size=32, n_steps=2, stem_kernel=3),
                 TrainConfig(epochs=2, batch_size=16, lr=3e-3, pool_size=32)),
        # default sandbox (96 px pool; the book trains on 1,000 images): about half a minute
        # per network on one CPU core (channels-last). 32 px input, stride-1 stem: the 64 px /
        # 4-layer / 4-epoch recipe stayed at the base-rate plateau; this one beats the held-out
        # floor for both objectives (multi-hot BCE 0.263-0.269 vs a base rate of 0.271 with
        # 1,000 images; 0.245 vs 0.278 with 2,000). Pool images are squared at 96 px (on the
        # default sandbox: its images as they are; on COCO: a 96 px square of each JPEG)
        "sandbox": (BLTConfig(n_layers=3, width=32, image_size=32, n_steps=3, stem_kernel=3, stem_stride=1),
                    TrainConfig(epochs=8, batch_size=32, lr=2e-3, min_crop_area=0.5, pool_size=96)),
        # a wider net for a GPU on the sandbox
        "sandbox_gpu": (BLTConfig(n_layers=6, width=48, image_size=96, n_steps=6),
                        TrainConfig(epochs=30, batch_size=128, lr=2e-3, pool_size=96)),
        # paper scale (real NSD/COCO, GPU): vNet-half BLT, 10 layers, 6 steps, 128 px, 200 epochs,
        # on 256 px squares of the pool's JPEGs (the paper's square256 store)
        "paper": (BLTConfig(n_layers=10, width=48, image_size=128, n_steps=6, stem_kernel=7,
                            pool_layers=(2, 4, 6, 8)),
                  TrainConfig(epochs=200, batch_size=96, lr=1e-3, weight_decay=1e-6, warmup_epochs=2,
                              pool_size=256)),
    }


class _Presets(Mapping):
    def __getitem__(self, k):
        return _presets()[k]

    def __iter__(self):
        return iter(("tiny", "sandbox", "sandbox_gpu", "paper"))

    def __len__(self):
        return 4

    def __repr__(self):
        return repr(dict(self))


#: Named ``(BLTConfig, TrainConfig)`` pairs: ``tiny`` (tests), ``sandbox`` (default sandbox on
#: 2 CPU cores), ``sandbox_gpu``, ``paper`` (10 layers, 6 steps, 128 px, 200 epochs, batch 96).
PRESETS = _Presets()


@fill_doc
def build_network(config, seed: int = 0):
    """A :class:`BLTNet` with weights initialised from ``seed`` (same seed → same weights).

    Parameters
    ----------
    %(blt_config)s
    seed : int, default=0
        Seed of ``torch.manual_seed`` for the initial weights (the global torch generator
        is left as it was).

    Returns
    -------
    net : BLTNet
        The network, with channels-last weights.
    """
    torch = _torch()
    from ._blt import BLTConfig, BLTNet

    if not isinstance(config, BLTConfig):
        raise TypeError(f"config must be a BLTConfig, got {type(config).__name__}")
    seed = check_int(seed, "seed", min_value=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = BLTNet(config)
    # channels-last weights (same values): see BLTNet.forward
    return net.to(memory_format=torch.channels_last)


# =========================================================================== training
@dataclass
class TrainedNetwork:
    """A trained (or loaded) network: the model, configs, per-epoch history, checkpoint.

    Attributes
    ----------
    model : BLTNet
        The network (in eval mode after training or loading).
    config : BLTConfig
        Its architecture.
    train_config : TrainConfig
        Its optimisation settings.
    seed : int
        The seed of the weights, batches and augmentation.
    history : list of dict, default=[]
        One dict per epoch (``epoch``, ``loss``, ``seconds``; ``val_loss``/``val_cosine``
        with a validation set).
    checkpoint : pathlib.Path, optional
        The last checkpoint file (``None``: none was written); for :func:`train_or_load`
        and :func:`load_network`, the saved ``weights.pt``.
    name : str, default=""
        E.g. ``"mpnet_seed0"``.
    meta : dict, default={}
        What :func:`train_or_load` knows of the run (``objective``, ``n_train``, ``preset``,
        ``key``).
    """

    model: Any
    config: Any
    train_config: TrainConfig
    seed: int
    history: list = field(default_factory=list)  # one dict per epoch
    checkpoint: Path | None = None
    name: str = ""
    meta: dict = field(default_factory=dict)

    @property
    def weights_hash(self) -> str:
        """:func:`weights_hash` of the model."""
        return weights_hash(self.model)


def weights_hash(model) -> str:
    """sha256 of a model's class, config and state-dict tensors (names, dtypes, values).

    Parameters
    ----------
    model : torch.nn.Module
        A network (its ``config.to_dict()`` is hashed too when it has one).

    Returns
    -------
    digest : str
        64 hex digits; equal weights (and config) give equal digests on any device.
    """
    h = hashlib.sha256(type(model).__name__.encode())
    cfg = getattr(model, "config", None)
    if cfg is not None and hasattr(cfg, "to_dict"):
        h.update(json.dumps(cfg.to_dict(), sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(k.encode())
        h.update(str(t.dtype).encode())
        if t.numel():
            h.update(memoryview(t.view(-1).view(_torch().uint8).numpy()))  # no copy
    return h.hexdigest()


class _Deterministic:
    """Deterministic algorithms on (restored on exit)."""

    def __init__(self, on: bool):
        self.on = on

    def __enter__(self):
        torch = _torch()
        self.prev = torch.are_deterministic_algorithms_enabled()
        if self.on:
            torch.use_deterministic_algorithms(True, warn_only=True)

    def __exit__(self, *exc):
        _torch().use_deterministic_algorithms(self.prev)


def _cpu_has_bf16() -> bool:
    """Whether this CPU runs bf16 natively in oneDNN (AVX512-BF16 or AMX)."""
    from .._utils.device import cpu_has_native_bf16

    return cpu_has_native_bf16()


def train_precision(precision: str, device: str) -> str:
    """The autocast precision a training run uses: ``precision`` resolved on ``device``.

    ``"auto"`` is ``"bf16"`` on CUDA and on a CPU with native bf16 (oneDNN's AVX512-BF16 or
    AMX kernels: BLT training runs about 1.5× faster there, its held-out loss unchanged to
    four decimals in our checks), else ``"float32"`` (emulated bf16 would be slower).
    ``"float32"`` and ``"bf16"`` are returned as given. The resolved precision is part of
    the saved network's key (:func:`train_or_load`) and of every epoch's history record.

    Parameters
    ----------
    precision : {"auto", "float32", "bf16"}
        A :class:`TrainConfig`'s precision.
    device : str
        A resolved device (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).

    Returns
    -------
    str
        ``"bf16"`` or ``"float32"``.

    Raises
    ------
    ValueError
        When ``precision`` is none of the three.
    """
    if precision not in ("auto", "float32", "bf16"):
        raise ValueError(f"precision must be 'auto', 'float32' or 'bf16', got {precision!r}")
    if precision != "auto":
        return precision
    if str(device).startswith("cuda"):
        return "bf16"
    return "bf16" if str(device) == "cpu" and _cpu_has_bf16() else "float32"


def _epoch_generator(seed: int, epoch: int):
    """The random stream of one epoch, derived from ``(seed, epoch)`` (a seed, not a cache key:
    the derivation is fixed, so trained weights stay the same across versions)."""
    torch = _torch()
    h = hashlib.sha256()
    for part in ("epoch", int(seed), int(epoch)):
        h.update(json.dumps(part).encode())
        h.update(b"\x00")
    return torch.Generator().manual_seed(int(h.hexdigest()[:15], 16))


def _loss_fn(kind: str):
    torch = _torch()
    F = torch.nn.functional

    def fn(out, y):  # out (T, B, d), y (B, d)
        out = out.float()
        if kind == "cosine":
            return (1 - F.cosine_similarity(out, y.unsqueeze(0).expand_as(out), dim=-1)).mean()
        return F.binary_cross_entropy_with_logits(out, y.unsqueeze(0).expand_as(out))

    return fn


def _atomic_torch_save(obj, path: Path) -> Path:
    """``torch.save`` atomically, with a checksum sidecar (verified when a checkpoint is resumed)."""
    torch = _torch()
    with checked_write(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def _lr_at(step: int, total: int, warm: int, lr: float) -> float:
    if step < warm:
        return lr * (step + 1) / warm
    p = (step - warm) / max(1, total - warm)
    return 0.5 * lr * (1 + math.cos(math.pi * min(1.0, p)))


class _ArrayImages:
    """A uint8 ``(n, H, W, 3)`` array as a dataset (items and batches as they are)."""

    def __init__(self, images):
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images must be uint8 (n, H, W, 3), got {images.dtype} {images.shape}")
        self.array = images

    def __len__(self):
        return int(self.array.shape[0])

    def __getitem__(self, i):
        return self.array[i]

    def batch(self, index):
        return self.array[np.asarray(index, dtype=np.int64)]


def _as_dataset(images):
    """An array → :class:`_ArrayImages`; a dataset (``len`` and ``[i]`` → uint8 (H, W, 3)) as is."""
    if isinstance(images, np.ndarray):
        return _ArrayImages(images)
    if not (hasattr(images, "__len__") and hasattr(images, "__getitem__")):
        raise TypeError(f"images must be a uint8 array or a dataset (len, [i]), got {type(images).__name__}")
    return images


def _collate(items):
    """Loader batches: the items' uint8 arrays stacked into one tensor."""
    return _torch().from_numpy(np.stack(items))


def _worker_init(worker_id: int) -> None:
    """Seed a loader worker from the loader's seeded generator (decoding is deterministic; this
    keeps any library randomness in a worker reproducible) and give it one torch thread."""
    import random

    torch = _torch()
    info = torch.utils.data.get_worker_info()
    seed = int(info.seed) if info is not None else int(worker_id)
    torch.set_num_threads(1)
    np.random.seed(seed % 2 ** 32)
    random.seed(seed)


class _BatchList:
    """Batch sampler of a loader: the batches set before each pass."""

    def __init__(self):
        self.batches: list = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self):
        return len(self.batches)


class _Batches:
    """uint8 batches ``(B, H, W, 3)`` of a dataset, for given index lists: in-process for an
    array in memory and ``num_workers == 0``; else through a :class:`torch.utils.data.DataLoader`
    (``num_workers`` processes, at most two batches prefetched per worker: bounded memory)."""

    def __init__(self, data, num_workers: int, seed: int, pin_memory: bool = False):
        torch = _torch()
        self.data = data
        self.loader = None
        if num_workers == 0 and hasattr(data, "batch"):  # arrays, PoolImages: no loader needed
            return
        self.sampler = _BatchList()
        extra = dict(worker_init_fn=_worker_init, persistent_workers=True, prefetch_factor=2) if num_workers else {}
        self.loader = torch.utils.data.DataLoader(
            data, batch_sampler=self.sampler, num_workers=num_workers, collate_fn=_collate,
            generator=torch.Generator().manual_seed(int(seed)), pin_memory=pin_memory, **extra)

    def __call__(self, batches):
        torch = _torch()
        batches = [np.asarray(b, dtype=np.int64) for b in batches]
        if self.loader is None:
            for idx in batches:
                yield torch.from_numpy(self.data.batch(idx))
        else:
            self.sampler.batches = [b.tolist() for b in batches]
            yield from self.loader


def _evaluate(model, batches, y_eval, loss, device, batch_size, autocast, image_size):
    torch = _torch()
    F = torch.nn.functional
    from ._blt import preprocess as _preprocess

    model.eval()
    n_total = y_eval.shape[0]
    tot_loss, tot_cos, n = 0.0, np.zeros(model.config.n_steps), 0
    index = [np.arange(i, min(i + batch_size, n_total)) for i in range(0, n_total, batch_size)]
    with torch.no_grad():
        for idx, raw in zip(index, batches(index)):
            xb = _preprocess(raw, image_size).to(device)
            yb = y_eval[idx[0]:idx[-1] + 1].to(device)
            with autocast():
                out = model(xb)
            out = out.float()
            tot_loss += float(loss(out, yb)) * xb.shape[0]
            pred = torch.sigmoid(out) if loss.__name__ == "bce" else out
            tot_cos += F.cosine_similarity(pred, yb.unsqueeze(0).expand_as(pred), dim=-1).sum(1).cpu().numpy()
            n += xb.shape[0]
    return tot_loss / n, tot_cos / n


def _prune_checkpoints(ckdir: Path, keep_from: int) -> None:
    """Delete ``epoch_NNN.pt`` files before epoch ``keep_from`` (a run keeps its last two)."""
    for ck in ckdir.glob("epoch_*.pt"):
        try:
            e = int(ck.stem.split("_")[1])
        except (IndexError, ValueError):
            continue
        if e < keep_from:
            ck.unlink(missing_ok=True)


@fill_doc
def train_network(images, targets: np.ndarray, config=None, train_config: TrainConfig | None = None,
                  seed: int = 0, *, val_images=None, val_targets=None, checkpoint_dir=None,
                  resume: bool = True, device="auto", progress: bool = True, max_epochs: int | None = None,
                  name: str = "", deterministic: bool | None = None, num_workers: int = 0) -> TrainedNetwork:
    """Train a BLT network on ``images`` → ``targets`` with the loss at every time step.

    Every epoch draws the batch order and then, batch by batch, the augmentation from one
    generator seeded by ``(seed, epoch)``; the images of a batch are read (by ``num_workers``
    loader processes when asked) and transformed in this process, so the weights do not
    depend on ``num_workers`` or on whether the images stream from files or sit in memory.

    Parameters
    ----------
    images : ndarray of uint8 of shape (n_images, height, width, 3) or dataset
        Training images (never shown to subjects): an array, or a map-style dataset whose
        items are uint8 ``(height, width, 3)`` arrays of one size (e.g.
        :class:`~brainllm_utils.vision.PoolImages`, which streams JPEG files).
    targets : ndarray of float32 of shape (n_images, n_targets)
        Caption embeddings (``loss="cosine"``) or multi-hot labels (``loss="bce"``).
    config : BLTConfig, optional
        Architecture (``None``: the ``sandbox`` preset); ``out_dim`` is set to ``n_targets``.
    train_config : TrainConfig, optional
        Optimisation (``None``: the ``sandbox`` preset).
    seed : int, default=0
        Seeds the weights, the batch order and the augmentation (a fresh generator per
        epoch derived from ``(seed, epoch)``, so a resumed run sees the same batches).
    val_images, val_targets : array-like or dataset, optional
        Keyword-only. A held-out set, scored after every epoch (deterministic transform;
        per-step cosine and loss in ``history``).
    checkpoint_dir : path-like, optional
        Where ``epoch_NNN.pt`` files are written atomically after every epoch (the last two
        are kept; ``None``: no checkpoints). With ``resume``, training restarts after the
        last one found.
    resume : bool, default=True
        Restart after the last good checkpoint in ``checkpoint_dir`` (a corrupt one is
        reported, deleted and skipped).
    %(device)s
    %(progress_true)s
    max_epochs : int, optional
        Stop after this many epochs in total (to simulate an interruption; the schedule
        still spans ``train_config.epochs``).
    name : str, default=""
        Name of the run (progress bar, log, checkpoints, ``TrainedNetwork.name``).
    deterministic : bool, optional
        ``torch.use_deterministic_algorithms`` during training (default: on for CPU).
    num_workers : int, default=0
        Loader processes reading (decoding) the images; 0: in this process.

    Returns
    -------
    network : TrainedNetwork
        ``history``: one dict per epoch (``epoch``, ``loss``, ``seconds``, and
        ``val_loss``/``val_cosine`` (per step) when a validation set is given).
    """
    torch = _torch()
    from ._blt import augment as _augment
    from ._blt import preprocess as _preprocess

    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) or num_workers < 0:
        raise ValueError(f"num_workers must be an int ≥ 0, got {num_workers!r}")
    preset_cfg, preset_train = PRESETS["sandbox"]
    config = preset_cfg if config is None else config
    tc = preset_train if train_config is None else train_config
    targets = np.asarray(targets, np.float32)
    data = _as_dataset(images)
    n = len(data)
    if n != targets.shape[0]:
        raise ValueError(f"{n} images but {targets.shape[0]} targets")
    config = dataclasses.replace(config, out_dim=int(targets.shape[1]))
    device = _resolve_device(device)
    deterministic = (device == "cpu") if deterministic is None else deterministic
    precision = train_precision(tc.precision, device)

    def autocast():
        if precision == "bf16":
            return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
        import contextlib

        return contextlib.nullcontext()

    model = build_network(config, seed).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    n_batches = max(1, n // tc.batch_size)  # drop the last incomplete batch
    total = tc.epochs * n_batches
    warm = int(round(tc.warmup_epochs * n_batches))
    history: list[dict] = []
    start = 0
    ckdir = Path(checkpoint_dir) if checkpoint_dir is not None else None
    if ckdir is not None and resume:
        for ck in sorted(ckdir.glob("epoch_*.pt"), reverse=True):  # the last good checkpoint
            state = load_entry(ck, verified_loader(lambda p: torch.load(p, map_location=device,
                                                                        weights_only=True)),
                               check=_check_state)
            if state is None:
                continue
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            history = list(state["history"])
            start = int(state["epoch"])
            log.info("resumed %s from %s", name or "network", ck)
            break
    loss = _loss_fn(tc.loss)
    loss.__name__ = tc.loss
    stop = tc.epochs if max_epochs is None else min(tc.epochs, max_epochs)
    pin = device.startswith("cuda")
    val_batches = y_val = None
    if val_images is not None and stop > start:
        if val_targets is None or len(val_images) != len(val_targets):
            raise ValueError("val_images and val_targets must be given together, with one target per image")
        val_batches = _Batches(_as_dataset(val_images), num_workers, seed, pin)
        y_val = torch.from_numpy(np.asarray(val_targets, np.float32))
    y_all = torch.from_numpy(targets)
    train_batches = _Batches(data, num_workers, seed, pin) if stop > start else None
    from tqdm.auto import tqdm

    bar = tqdm(total=(stop - start) * n_batches, desc=f"train {name or 'BLT'}", unit="batch",
               disable=not progress or stop <= start, leave=False)
    with _Deterministic(deterministic):
        for epoch in range(start, stop):
            t0 = time.perf_counter()
            g = _epoch_generator(seed, epoch)
            order = torch.randperm(n, generator=g).numpy()
            index = [order[b * tc.batch_size:(b + 1) * tc.batch_size] for b in range(n_batches)]
            model.train()
            run = 0.0
            for b, (idx, raw) in enumerate(zip(index, train_batches(index))):
                raw = raw.to(device, non_blocking=True)
                if tc.augment:
                    xb = _augment(raw, config.image_size, g, min_area=tc.min_crop_area)
                else:
                    xb = _preprocess(raw, config.image_size)
                yb = y_all[torch.from_numpy(idx)].to(device, non_blocking=True)
                for group in opt.param_groups:
                    group["lr"] = _lr_at(epoch * n_batches + b, total, warm, tc.lr)
                with autocast():
                    out = model(xb)
                lval = loss(out, yb)
                opt.zero_grad(set_to_none=True)
                lval.backward()
                if tc.grad_clip:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
                opt.step()
                run += float(lval.detach())
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{run / (b + 1):.4f}")
            rec = {"epoch": epoch + 1, "loss": run / n_batches, "seconds": time.perf_counter() - t0,
                   "precision": precision}
            if val_batches is not None:
                vl, vc = _evaluate(model, val_batches, y_val, loss, device, 2 * tc.batch_size, autocast,
                                   config.image_size)
                rec.update(val_loss=vl, val_cosine=vc.tolist())
            history.append(rec)
            if ckdir is not None:
                _atomic_torch_save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                                    "history": history, "epoch": epoch + 1, "seed": seed,
                                    "config": config.to_dict(), "train_config": tc.to_dict(),
                                    "name": name}, ckdir / f"epoch_{epoch + 1:03d}.pt")
                _prune_checkpoints(ckdir, epoch)  # keep this epoch's and the one before
    bar.close()
    model.eval()
    ck = (ckdir / f"epoch_{stop:03d}.pt") if ckdir is not None else None
    return TrainedNetwork(model, config, tc, seed, history, ck, name)


def _check_state(state) -> str | None:
    keys = {"model", "optimizer", "history", "epoch", "config", "train_config", "seed"}
    if not isinstance(state, dict) or not keys <= set(state):
        return f"not a training checkpoint (keys {sorted(state) if isinstance(state, dict) else type(state)})"
    return None


@fill_doc
def load_checkpoint(path, device="cpu") -> TrainedNetwork:
    """Load a checkpoint written by :func:`train_network` (model in eval mode).

    Parameters
    ----------
    path : str or path-like
        An ``epoch_NNN.pt`` file. Its checksum sidecar (``epoch_NNN.pt.sha256``), when
        present, is verified first (one written by an older version has none).
    %(device_cpu)s

    Returns
    -------
    network : TrainedNetwork
        The model, configs, seed, history and name of the checkpoint (``checkpoint`` is
        ``path``).
    """
    torch = _torch()
    from ._blt import BLTConfig, BLTNet

    device = _resolve_device(device)
    if checksum_path(path).exists():  # written by this version: the file must match it
        reason = verify_checksums(path, full=True)
        if reason:
            raise ValueError(f"{path}: {reason}; the checkpoint was changed after it was written")
    state = torch.load(path, map_location=device, weights_only=True)
    config = BLTConfig.from_dict(state["config"])
    model = BLTNet(config).to(device)
    model.load_state_dict(state["model"])
    model.eval()
    return TrainedNetwork(model, config, TrainConfig(**state["train_config"]), int(state["seed"]),
                          list(state["history"]), Path(path), state.get("name", ""))


def pool_split(n_pool: int, n_train: int | None = None, n_val: int = 0):
    """Training and validation rows of the pool, as :func:`train_or_load` draws them.

    One permutation of the pool seeded by 0; validation = its last ``n_val`` entries,
    training = the first ``n_train`` of the rest (nested across sizes), sorted.

    Parameters
    ----------
    n_pool : int
        Images in the pool.
    n_train : int, optional
        Training images (``None``: all but ``n_val``); more than are left raises
        ``ValueError``.
    n_val : int, default=0
        Validation images.

    Returns
    -------
    train_idx : ndarray of int of shape (n_train,)
        Sorted training rows.
    val_idx : ndarray of int of shape (n_val,)
        Validation rows (in permutation order).
    """
    n_pool = check_int(n_pool, "n_pool", min_value=1)
    n_val = check_int(n_val, "n_val", min_value=0, max_value=n_pool - 1)
    n_train = check_int(n_train, "n_train", min_value=1, allow_none=True)
    perm = np.random.default_rng(0).permutation(n_pool)
    val = perm[len(perm) - n_val:] if n_val else np.zeros(0, int)
    train = perm[: len(perm) - n_val]
    if n_train is not None:
        if n_train > train.size:
            raise ValueError(f"n_train={n_train} but only {train.size} pool images are available")
        train = train[:n_train]
    return np.sort(train), val


# =========================================================================== saved networks
#: Identifier and version of the saved-network format (:func:`save_network`). A reader
#: accepts versions up to its own; a change of the format's meaning bumps the version.
NETWORK_FORMAT = "brainllm-blt-network"
NETWORK_FORMAT_VERSION = 1
_MANIFEST = "manifest.json"
_WEIGHTS = "weights.pt"


def save_network(network: TrainedNetwork, folder, data: dict | None = None) -> Path:
    """Save a trained network: ``weights.pt`` (its state dict) and ``manifest.json``.

    The format (version :data:`NETWORK_FORMAT_VERSION`) is a folder with two files:

    - ``weights.pt``: ``torch.save`` of the model's state dict (CPU tensors only, so
      ``torch.load(..., weights_only=True)`` reads it);
    - ``manifest.json``: ``format`` (``"brainllm-blt-network"``), ``format_version``,
      ``name``, ``objective``, ``seed``, ``preset``, ``key`` (the cache key of the run),
      ``config`` (:meth:`BLTConfig.to_dict`), ``train_config``
      (:meth:`TrainConfig.to_dict`), ``data`` (the data selection: ``n_pool``, ``n_train``,
      ``n_val``, ``pool_size``, ``image_size``, ``pool_ids_sha256``, ``train_ids_sha256``,
      ``val_ids_sha256`` (sha256 of the int64 cocoIds), ``pool_key``), ``training``
      (``epochs``, ``history``, ``seconds``, ``package_version``, ``torch_version``,
      ``device``, ``saved_utc``) and ``weights`` (``file``, ``sha256``: :func:`weights_hash`).

    Both files are written atomically, the weights first: a folder with a manifest is
    complete.

    Parameters
    ----------
    network : TrainedNetwork
        The network (``meta`` supplies ``objective``, ``preset``, ``key`` and ``data``).
    folder : path-like
        Where to write (created when missing; existing files are replaced).
    data : dict, optional
        The data selection (default: ``network.meta["data"]``).

    Returns
    -------
    manifest : pathlib.Path
        The ``manifest.json`` written.
    """
    from .. import __version__
    from .._utils.paths import atomic_write_text

    torch = _torch()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in network.model.state_dict().items()}
    _atomic_torch_save(state, folder / _WEIGHTS)
    meta = network.meta or {}
    dev = next(network.model.parameters()).device
    manifest = {
        "format": NETWORK_FORMAT, "format_version": NETWORK_FORMAT_VERSION,
        "name": network.name, "objective": meta.get("objective"), "seed": int(network.seed),
        "preset": meta.get("preset"), "key": meta.get("key"),
        "config": network.config.to_dict(), "train_config": network.train_config.to_dict(),
        "data": _jsonable(data if data is not None else meta.get("data", {})),
        "training": {"epochs": len(network.history), "history": _jsonable(network.history),
                     "seconds": float(sum(r.get("seconds", 0.0) for r in network.history)),
                     "package_version": __version__, "torch_version": str(torch.__version__),
                     "device": str(dev), "saved_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "weights": {"file": _WEIGHTS, "sha256": weights_hash(network.model)},
    }
    atomic_write_text(folder / _MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return folder / _MANIFEST


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x


def _mismatches(saved, wanted, prefix: str = "") -> list[str]:
    """``"field: saved X, requested Y"`` for every entry of ``wanted`` that ``saved`` differs in."""
    out = []
    for k, v in wanted.items():
        here = f"{prefix}{k}"
        if isinstance(v, dict) and isinstance(saved, dict) and isinstance(saved.get(k), dict):
            out += _mismatches(saved[k], v, here + ".")
            continue
        got = saved.get(k, "<missing>") if isinstance(saved, dict) else "<missing>"
        if _jsonable(got) != _jsonable(v):
            out.append(f"{here}: saved {got!r}, requested {v!r}")
    return out


@fill_doc
def load_network(folder, device="cpu", expect: dict | None = None) -> TrainedNetwork:
    """Load a network saved by :func:`save_network`, checking it against a request.

    Parameters
    ----------
    folder : path-like
        The network's folder (``manifest.json`` and ``weights.pt``), or its manifest file.
    %(device_cpu)s
    expect : dict, optional
        Manifest entries the network must have (nested dicts compare entry by entry), e.g.
        ``{"objective": "mpnet", "seed": 0, "config": {...}, "data": {"n_train": 48236}}``.

    Returns
    -------
    network : TrainedNetwork
        Model in eval mode; ``checkpoint`` is the weights file; ``meta`` holds
        ``objective``, ``preset``, ``key``, ``n_train``, ``data`` and ``manifest`` (its path).

    Raises
    ------
    FileNotFoundError
        When the manifest or the weights file is missing.
    ValueError
        For a manifest of another format or a newer version, a network that differs from
        ``expect`` (every difference is listed, with the manifest's path), or weights whose
        hash differs from the manifest's.
    """
    torch = _torch()
    from ._blt import BLTConfig, BLTNet

    folder = Path(folder)
    mpath = folder if folder.name == _MANIFEST else folder / _MANIFEST
    folder = mpath.parent
    if not mpath.exists():
        raise FileNotFoundError(f"{mpath} is missing: not a saved network (see vision.save_network)")
    try:
        m = json.loads(mpath.read_text())
    except ValueError as err:
        raise ValueError(f"{mpath}: not valid JSON ({err})") from err
    if not isinstance(m, dict) or m.get("format") != NETWORK_FORMAT:
        raise ValueError(f"{mpath}: not a {NETWORK_FORMAT!r} manifest "
                         f"(format {m.get('format') if isinstance(m, dict) else type(m).__name__!r})")
    version = m.get("format_version")
    if not isinstance(version, int) or not 1 <= version <= NETWORK_FORMAT_VERSION:
        raise ValueError(f"{mpath}: format_version {version!r}; this package reads 1..{NETWORK_FORMAT_VERSION}")
    missing = [k for k in ("name", "seed", "config", "train_config", "data", "training", "weights") if k not in m]
    if missing:
        raise ValueError(f"{mpath}: manifest lacks {missing}")
    if expect:
        diff = _mismatches(m, expect)
        if diff:
            raise ValueError(f"{mpath}: the saved network does not match the request: " + "; ".join(diff))
    wpath = folder / m["weights"].get("file", _WEIGHTS)
    if not wpath.exists():
        raise FileNotFoundError(f"{wpath} is missing (named by {mpath})")
    device = _resolve_device(device)
    state = torch.load(wpath, map_location=device, weights_only=True)
    config = BLTConfig.from_dict(m["config"])
    model = BLTNet(config).to(device)
    model.load_state_dict(state)
    model = model.to(memory_format=torch.channels_last)
    model.eval()
    got = weights_hash(model)
    if got != m["weights"].get("sha256"):
        raise ValueError(f"{wpath}: weights hash {got[:16]}… differs from the manifest's "
                         f"{str(m['weights'].get('sha256'))[:16]}… ({mpath})")
    tr = m["training"]
    data = m.get("data", {})
    net = TrainedNetwork(model, config, TrainConfig(**m["train_config"]), int(m["seed"]),
                         list(tr.get("history", [])), wpath, m.get("name", ""))
    net.meta = {"objective": m.get("objective"), "preset": m.get("preset"), "key": m.get("key"),
                "n_train": data.get("n_train"), "data": data, "manifest": mpath}
    return net


def _ids_digest(ids) -> str:
    return array_digest(np.ascontiguousarray(np.asarray(ids, dtype=np.int64)))


def _find_saved(networks_dir: Path, name: str) -> Path:
    """The folder of network ``name`` under ``networks_dir``: ``<dir>/<name>/`` or the one
    ``<dir>/*/manifest.json`` whose ``name`` is ``name``."""
    direct = networks_dir / name / _MANIFEST
    if direct.exists():
        return direct.parent
    if not networks_dir.is_dir():
        raise FileNotFoundError(f"networks_dir {networks_dir} is not a folder")
    found, names = [], []
    for mp in sorted(networks_dir.glob(f"*/{_MANIFEST}")):
        try:
            nm = json.loads(mp.read_text()).get("name")
        except (ValueError, AttributeError):
            continue
        names.append(nm)
        if nm == name:
            found.append(mp.parent)
    if len(found) == 1:
        return found[0]
    if not found:
        raise FileNotFoundError(f"no saved network {name!r} in {networks_dir} (expected {direct}; "
                                f"found {sorted(map(str, names)) or 'none'})")
    raise ValueError(f"{len(found)} saved networks named {name!r} in {networks_dir}: "
                     f"{[str(f) for f in found]}; keep one")


@fill_doc
def train_or_load(root=None, objective: str = "mpnet", seed: int = 0, preset: str = "sandbox", *,
                  config=None, train_config: TrainConfig | None = None, n_train: int | None = None,
                  n_val: int = 0, device="auto", progress: bool = True, pool: TrainingPool | None = None,
                  embed_options: dict | None = None, checkpoint_root=None, num_workers: int = 0,
                  memory_budget: int | None = None, networks_dir=None) -> TrainedNetwork:
    """Train (or load the saved network of) one seeded network on the training pool.

    The run lives in ``<checkpoint_root or get_cache_dir()/checkpoints>/<name>_<key>/`` where
    ``key`` (the one cache, kind ``"checkpoints"``) covers the saved format's version, the
    objective, seed, architecture, optimisation settings (``pool_size`` included), the
    pool's images (ids, load size and files; their pixels when the pool was built by hand)
    and the training and validation rows and targets. A finished run is saved there
    (:func:`save_network`: ``weights.pt`` + ``manifest.json``) and loaded without
    training; an interrupted one resumes from its last good epoch (a corrupt file is
    reported, deleted and recomputed).

    The images are read through :meth:`TrainingPool.dataset` at ``train_config.pool_size``:
    from memory when they fit ``memory_budget``, else streamed from their JPEG files by
    ``num_workers`` loader processes; the weights are the same either way.

    Parameters
    ----------
    %(root_optional)s
        Only read when ``pool`` is not given.
    objective : {"mpnet", "multihot"}, default="mpnet"
        Cosine to the mean caption embedding, or BCE on the multi-hot labels.
    seed : int, default=0
        Seed of the weights, batches and augmentation (:func:`train_network`).
    %(preset)s
        ``config``/``train_config`` override it.
    config : BLTConfig, optional
        Keyword-only. Architecture instead of the preset's.
    train_config : TrainConfig, optional
        Optimisation instead of the preset's (whose ``loss`` follows ``objective``).
    n_train : int, optional
        Use a seeded subset of this many pool images (``None``: all but ``n_val``);
        the subset is nested across sizes (the first ``n`` of one permutation of the pool,
        seeded by 0), for brain alignment against training-set size.
    n_val : int, default=0
        Hold out this many pool images (the last of the permutation) for validation.
    %(device)s
    %(progress_true)s
    pool : TrainingPool, optional
        A pool already loaded (else :func:`load_training_pool`).
    embed_options : dict, optional
        Passed to :func:`make_targets` (e.g. ``{"device": "cuda"}``).
    checkpoint_root : path-like, optional
        Folder of the runs (``None``: ``get_cache_dir()/checkpoints``).
    num_workers : int, default=0
        Loader processes decoding the images (:func:`train_network`).
    memory_budget : int, optional
        Bytes of pool images allowed in memory (:meth:`TrainingPool.dataset`).
    networks_dir : path-like, optional
        Load the network from this folder instead of training it: ``<networks_dir>/<name>/``
        (or the one subfolder whose manifest has this ``name``), saved by
        :func:`save_network` elsewhere. Its manifest must match the request (objective,
        seed, architecture, optimisation, ``n_train``, ``n_val``, ``pool_size``,
        ``image_size`` and the cocoIds of the training and validation images), else a
        ``ValueError`` names the file and every difference.

    Returns
    -------
    network : TrainedNetwork
        ``name`` is ``"<objective>_seed<seed>"``; ``meta`` holds ``objective``,
        ``n_train``, ``preset``, the run's ``key`` and ``data`` (the data selection);
        ``checkpoint`` is the saved weights file.
    """
    if not isinstance(preset, str) or preset not in list(PRESETS):
        raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
    if objective not in ("mpnet", "multihot"):
        raise ValueError(f"objective must be 'mpnet' or 'multihot', got {objective!r}")
    seed = check_int(seed, "seed", min_value=0)
    preset_cfg, preset_train = PRESETS[preset]
    config = config or preset_cfg
    tc = train_config or dataclasses.replace(preset_train, loss="cosine" if objective == "mpnet" else "bce")
    if pool is None:
        pool = load_training_pool(root, progress=progress, memory_budget=memory_budget)
    train_idx, val_idx = pool_split(len(pool), n_train, n_val)
    targets = make_targets(objective, [pool.captions[i] for i in train_idx], pool.multihot[train_idx],
                           **(embed_options or {}))
    val_targets = None
    if n_val:
        val_targets = make_targets(objective, [pool.captions[i] for i in val_idx], pool.multihot[val_idx],
                                   **(embed_options or {}))
    name = f"{objective}_seed{seed}"
    out_cfg = dataclasses.replace(config, out_dim=int(targets.shape[1]))
    data = {"n_pool": len(pool), "n_train": int(train_idx.size), "n_val": int(val_idx.size),
            "pool_size": int(tc.pool_size), "image_size": int(config.image_size),
            "pool_ids_sha256": _ids_digest(pool.coco_ids), "train_ids_sha256": _ids_digest(pool.coco_ids[train_idx]),
            "val_ids_sha256": _ids_digest(pool.coco_ids[val_idx])}
    if networks_dir is not None:
        folder = _find_saved(Path(networks_dir), name)
        want = {"objective": objective, "seed": int(seed), "config": out_cfg.to_dict(), "train_config": tc.to_dict(),
                "data": {k: v for k, v in data.items() if k != "n_pool"}}
        net = load_network(folder, device=device, expect=want)
        net.name = name
        net.meta.update(objective=objective, n_train=int(train_idx.size), preset=preset, source=str(folder))
        return net
    images_id = pool.key or array_digest(pool.images)
    key = cache_key("checkpoints", NETWORK_FORMAT_VERSION, objective, int(seed), config.to_dict(), tc.to_dict(),
                    train_precision(tc.precision, _resolve_device(device)), images_id, pool.coco_ids[train_idx],
                    targets, pool.coco_ids[val_idx], val_targets, length=20)
    data["pool_key"] = images_id
    base = Path(checkpoint_root) if checkpoint_root is not None else resolve_cache(True, "checkpoints")
    ckdir = base / f"{name}_{key}"
    want = {"format_version": NETWORK_FORMAT_VERSION, "key": key, "objective": objective, "seed": int(seed)}
    net = load_entry(ckdir / _WEIGHTS, lambda p: load_network(p.parent, device=device, expect=want),
                     companions=[ckdir / _MANIFEST])
    if net is None:
        train_set = pool.dataset(train_idx, tc.pool_size, memory_budget, progress=progress)
        val_set = pool.dataset(val_idx, tc.pool_size, memory_budget, progress=progress) if n_val else None
        net = train_network(train_set, targets, config, tc, seed, val_images=val_set, val_targets=val_targets,
                            checkpoint_dir=ckdir, device=device, progress=progress, name=name,
                            num_workers=num_workers)
        net.name = name
        net.meta = {"objective": objective, "preset": preset, "key": key}
        save_network(net, ckdir, data=data)
        net.checkpoint = ckdir / _WEIGHTS
    net.name = name
    net.meta.update(objective=objective, n_train=int(train_idx.size), preset=preset, key=key, data=data)
    return net


@fill_doc
def train_networks(root=None, objectives: Sequence[str] = ("mpnet", "multihot"), seeds: Sequence[int] = (0, 1),
                   preset: str = "sandbox", **options) -> dict[str, TrainedNetwork]:
    """:func:`train_or_load` for every objective × seed, the pool read once.

    Parameters
    ----------
    %(root_optional)s
    objectives : sequence of {"mpnet", "multihot"}, default=("mpnet", "multihot")
        Training objectives.
    seeds : sequence of int, default=(0, 1)
        Seeds, one network each per objective.
    %(preset)s
    **options
        Pass through to :func:`train_or_load` (``config``, ``train_config``, ``n_train``,
        ``n_val``, ``device``, ``progress``, ``embed_options``, ``checkpoint_root``,
        ``pool``).

    Returns
    -------
    networks : dict of str to TrainedNetwork
        ``{"<objective>_seed<seed>": TrainedNetwork}`` in objective-then-seed order.
    """
    for name, values in (("objectives", objectives), ("seeds", seeds)):
        if isinstance(values, (str, bytes, int)):
            raise TypeError(f"{name} must be a sequence, got {values!r}; wrap it in a list")
        values = list(values)
        if not values or len(set(values)) != len(values):
            raise ValueError(f"{name}={values}: expected a non-empty sequence without repeats")
    for s in seeds:
        check_int(s, "seeds entry", min_value=0)
    for o in objectives:
        if o not in ("mpnet", "multihot"):
            raise ValueError(f"objectives entry must be 'mpnet' or 'multihot', got {o!r}")
    pool = options.pop("pool", None)
    if pool is None:
        pool = load_training_pool(root, progress=options.get("progress", True))
    out = {}
    for objective in objectives:
        for seed in seeds:
            net = train_or_load(root, objective, seed, preset, pool=pool, **options)
            out[net.name] = net
    return out

