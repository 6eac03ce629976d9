"""User vision models: a callable, a torch module read at named layers, or a torchvision /
timm / open_clip architecture by name with local weights, registered once and compared with
the brain like the built-in comparison models (activations cached per model and layer).

torchvision, timm and open_clip are imported only when a model of theirs is first used; their
wheels pin torch versions, so none may be installed here: a missing library (or weights
file) makes the model's :class:`ModelStatus` unavailable with the reason, never an error.
"""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .._utils.cache import cache_key, file_identity, load_npy, resolve_cache, save_npy
from .._utils.device import import_torch as _torch
from .._utils.device import resolve_device as _resolve_device
from .._utils.docs import fill_doc
from .._utils.numeric import check_choice, check_float, check_int
from ._activations import images_identity
from ._comparison import COMPARISON_MODELS, ModelStatus, _find_weights, _load_state, _Skip
from ._train import weights_hash

__all__ = ["VisionModel", "VISION_POOLINGS", "OUTPUT_LAYER", "register_model", "unregister_model",
           "registered_models", "get_model", "parse_model_name", "is_registered_model",
           "check_model_reference", "model_features"]

log = logging.getLogger(__name__)

#: How a layer's activations become one vector per image (see :func:`register_model`).
VISION_POOLINGS = ("mean", "max", "flatten")
#: The layer name of a model's own output (what its forward, or the callable, returns).
OUTPUT_LAYER = "output"

_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
_ARCH = r"[A-Za-z0-9_][A-Za-z0-9_.\-]*"
_SPECS = {
    "torchvision": re.compile(rf"torchvision:(?P<arch>{_ARCH})"),
    "timm": re.compile(rf"timm:(?P<arch>{_ARCH})"),
    "open_clip": re.compile(rf"open_clip:(?P<arch>{_ARCH})/(?P<pretrained>{_ARCH})"),
}
_IMAGENET = {"size": 224, "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "crop": 1.0}
_CLIP = {"size": 224, "mean": (0.48145466, 0.4578275, 0.40821073),
         "std": (0.26862954, 0.26130258, 0.27577711), "crop": 1.0}
_REGISTRY: dict[str, "VisionModel"] = {}
_UNCACHED_WARNED: set[str] = set()


# --------------------------------------------------------------------------- preprocessing
def _prep_spec(preprocess, default: dict) -> dict | Callable:
    """A preprocessing dict completed with ``default``'s values and checked, or a callable."""
    if preprocess is None:
        return dict(default)
    if callable(preprocess):
        return preprocess
    if not isinstance(preprocess, Mapping):
        raise TypeError(f"preprocess must be None, a dict (size, mean, std, crop) or a callable, "
                        f"got {type(preprocess).__name__}")
    unknown = sorted(set(preprocess) - set(_IMAGENET))
    if unknown:
        raise ValueError(f"preprocess: unknown keys {unknown}; "
                         f"expected some of {sorted(_IMAGENET)}")
    spec = {**default, **preprocess}
    spec["size"] = check_int(spec["size"], "preprocess['size']", min_value=1)
    spec["crop"] = check_float(spec["crop"], "preprocess['crop']", min_value=0, max_value=1,
                               min_inclusive=False)
    for key in ("mean", "std"):
        vals = spec[key]
        if isinstance(vals, (str, bytes)) or not isinstance(vals, Sequence) or len(vals) != 3:
            raise ValueError(f"preprocess['{key}'] must be 3 numbers (R, G, B), got {vals!r}")
        spec[key] = tuple(check_float(v, f"preprocess['{key}'] entry") for v in vals)
    if min(spec["std"]) <= 0:
        raise ValueError(f"preprocess['std'] must be positive, got {spec['std']}")
    return spec


def _prep_function(spec) -> Callable:
    """``images uint8 (n, H, W, 3) -> float32 tensor (n, 3, size, size)``: centre crop, resize,
    ``(x - mean) / std`` on [0, 1] values; a callable spec is wrapped into a float tensor."""
    if callable(spec):
        def user(images):
            x = spec(images)
            torch = _torch()
            x = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
            return x.float()

        return user

    def prep(images):
        torch = _torch()
        from ._blt import preprocess as _preprocess

        x = (_preprocess(images, spec["size"], spec["crop"]) + 1) / 2
        mean = torch.tensor(spec["mean"], dtype=x.dtype)[:, None, None]
        std = torch.tensor(spec["std"], dtype=x.dtype)[:, None, None]
        return (x - mean) / std

    return prep


def _qualname(obj) -> str:
    kind = obj if isinstance(obj, type) else type(obj)
    fn = getattr(obj, "__qualname__", None) if not isinstance(obj, type) else None
    return f"{getattr(obj, '__module__', kind.__module__)}.{fn or kind.__qualname__}"


# --------------------------------------------------------------------------- library models
def _library_builder(kind: str, arch: str, pretrained: str | None, weights) -> Callable:
    """``build() -> (module, forward, weights path)`` of a torchvision / timm / open_clip
    architecture with local weights; the whole network is kept (its layers are read by name)."""
    import importlib

    def build():
        if kind == "torchvision":
            tv = importlib.import_module("torchvision.models")
            if not callable(getattr(tv, arch, None)):
                raise ValueError(f"torchvision.models has no architecture {arch!r}")
            path = _find_weights([f"models:{arch}.pth", f"models:{arch}-*.pth",
                                  f"models:{arch}.safetensors", f"torch:{arch}-*.pth"], weights)
            module = _load_state(getattr(tv, arch)(weights=None), path)
            return module, lambda m, x: m(x), str(path)
        if kind == "timm":
            timm = importlib.import_module("timm")
            if hasattr(timm, "is_model") and not timm.is_model(arch):
                raise ValueError(f"timm has no architecture {arch!r}")
            path = _find_weights([f"models:{arch}.safetensors", f"models:{arch}.pth",
                                  f"models:{arch}-*.safetensors", f"models:{arch}-*.pth",
                                  f"hf:models--timm--{arch}/snapshots/*/model.safetensors",
                                  f"hf:models--timm--{arch}/snapshots/*/pytorch_model.bin",
                                  f"hf:models--timm--{arch}.*/snapshots/*/model.safetensors"],
                                 weights)
            module = _load_state(timm.create_model(arch, pretrained=False), path)
            return module, lambda m, x: m(x), str(path)
        open_clip = importlib.import_module("open_clip")
        if hasattr(open_clip, "list_models") and arch not in open_clip.list_models():
            raise ValueError(f"open_clip has no architecture {arch!r}")
        patterns = [f"models:{arch}_{pretrained}.*", f"models:{arch}-{pretrained}.*",
                    f"hf:models--laion--CLIP-{arch}-{pretrained}/snapshots/*/open_clip_*"]
        if pretrained == "openai":
            patterns.append(f"clip:{arch}.pt")
        path = _find_weights(patterns, weights)
        module = open_clip.create_model(arch, pretrained=str(path))
        return module, lambda m, x: m.encode_image(x), str(path)

    return build


# --------------------------------------------------------------------------- the model
class VisionModel:
    """A registered vision model (made by :func:`register_model`; see there for the kinds).

    Parameters
    ----------
    name : str
        Its registered name.
    kind : {"callable", "module", "torchvision", "timm", "open_clip"}
        What it is.
    source : callable, torch.nn.Module or str
        The callable, the module, or the library name string.
    layers : sequence of str
        The layers read by default (``("output",)`` unless given).
    preprocess : callable, dict or None
        The image preprocessing (:func:`register_model`).
    description : str
        One line for the tables.
    version : str or None
        The user's version tag (part of the cache key).
    pooling : {"mean", "max", "flatten"}
        How layer activations become vectors.
    weights : str or None
        A local weights file given at registration (library models).

    Attributes
    ----------
    name, kind, source, preprocess, description, version, pooling, weights
        As given.
    layers : tuple of str
        The layers read by default.
    """

    def __init__(self, name, kind, source, layers, preprocess, description, version, pooling,
                 weights):
        self.name = name
        self.kind = kind
        self.source = source
        self.layers = tuple(layers)
        self.preprocess = preprocess
        self.description = description
        self.version = version
        self.pooling = pooling
        self.weights = weights
        self._built = None
        self._status: ModelStatus | None = None

    def __repr__(self) -> str:
        return f"VisionModel({self.name!r}, kind={self.kind!r}, layers={list(self.layers)})"

    def _same(self, other: "VisionModel") -> bool:
        """Whether ``other`` registers the same thing (the same object, or the same name string)."""
        same_source = (self.source == other.source if isinstance(self.source, str)
                       else self.source is other.source)
        fields = ("kind", "layers", "preprocess", "description", "version", "pooling", "weights")
        return same_source and all(getattr(self, a) == getattr(other, a) for a in fields)

    # ----------------------------------------------------------------- building
    @property
    def status(self) -> ModelStatus:
        """:class:`ModelStatus`; a library model is built on first use (a skip is logged once).

        A missing library or weights file is a skip; an architecture the installed library
        does not have raises ``ValueError``.
        """
        if self._status is None:
            if self.kind == "callable":
                self._status = ModelStatus(self.name, True, "user callable")
            elif self.kind == "module":
                self._built = (self.source, lambda m, x: m(x), None)
                self._status = ModelStatus(self.name, True, "user torch module")
            else:
                m = _SPECS[self.kind].fullmatch(self.source)
                build = _library_builder(self.kind, m["arch"], m.groupdict().get("pretrained"),
                                         self.weights)
                try:
                    self._built = build()
                    self._status = ModelStatus(self.name, True, "loaded", self._built[2])
                except _Skip as err:
                    self._status = ModelStatus(self.name, False, str(err))
                except ImportError as err:
                    self._status = ModelStatus(self.name, False, f"library missing ({err})")
                if not self._status.available:
                    log.warning("vision model %s skipped: %s", self.name, self._status.reason)
        return self._status

    def _module(self):
        st = self.status
        if not st.available:
            raise RuntimeError(f"vision model {self.name!r} is unavailable: {st.reason}")
        return self._built[0] if self._built is not None else None

    def layer_names(self) -> list[str]:
        """Every layer that can be read: ``"output"`` and the module's ``named_modules()``.

        For open_clip models only the image tower's modules (``visual...``).

        Returns
        -------
        names : list of str
            ``"output"`` first, then the modules in ``named_modules()`` order.

        Raises
        ------
        RuntimeError
            When the model is unavailable (library or weights missing; the reason).
        """
        module = self._module()
        if module is None:
            return [OUTPUT_LAYER]
        names = [n for n, _ in module.named_modules() if n]
        if self.kind == "open_clip":
            names = [n for n in names if n == "visual" or n.startswith("visual.")]
        return [OUTPUT_LAYER] + names

    def check_layers(self, layers) -> list[str]:
        """``layers`` as a list of valid, distinct layer names (``None``: the registered ones).

        Parameters
        ----------
        layers : str or sequence of str, optional
            Layer names (:meth:`layer_names`).

        Returns
        -------
        layers : list of str
            The names, in the given order.

        Raises
        ------
        ValueError
            For an unknown or repeated name (the message lists the valid names).
        """
        layers = list(self.layers) if layers is None else _as_layer_list(layers, "layers")
        valid = self.layer_names()
        bad = [x for x in layers if x not in valid]
        if bad:
            shown = ", ".join(valid[:80])
            if len(valid) > 80:
                shown += f", ... ({len(valid) - 80} more)"
            raise ValueError(f"vision model {self.name!r}: unknown layer(s) {bad}; "
                             f"valid layers: {shown}")
        if OUTPUT_LAYER in layers and valid.count(OUTPUT_LAYER) > 1:
            raise ValueError(f"vision model {self.name!r}: a submodule is named "
                             f"{OUTPUT_LAYER!r}, so that layer name is ambiguous (read its "
                             "parent, or rename it)")
        return layers

    # ----------------------------------------------------------------- cache identity
    def _identity(self):
        """What the activations depend on besides layer, pooling and images, or ``None`` when a
        user callable without a ``version`` makes that unknowable (no disk cache then)."""
        prep = self.preprocess
        if callable(prep) or self.kind == "callable":
            if self.version is None:
                return None
        prep_id = ["callable", _qualname(prep)] if callable(prep) else prep
        if self.kind == "callable":
            return ["callable", _qualname(self.source), self.version]
        if self.kind == "module":
            module = self.source
            return ["module", _qualname(module), weights_hash(module), self.version, prep_id]
        w = self.status.weights
        return [self.kind, self.source, file_identity(w) if w and Path(w).is_file() else w,
                self.version, prep_id]

    # ----------------------------------------------------------------- activations
    @fill_doc
    def activations(self, images, layers=None, *, image_ids=None, batch_size: int = 64,
                    device="auto", cache=True, progress: bool = False) -> dict[str, np.ndarray]:
        """Pooled activations of ``layers`` on ``images``, each layer cached on its own.

        Layers already in the cache are read, never recomputed; the others come from one
        forward pass per batch with a forward hook on each. The cache key (kind
        ``"features"``) holds the model's identity (library models: the weights file's
        identity; torch modules: a hash of the class and the state dict, plus ``version``;
        callables: their qualified name and ``version``), the preprocessing, the layer, the
        pooling and the images (their ids when given, else their pixels). A user callable
        (model or ``preprocess``) without ``version`` is not cached on disk: its behaviour
        cannot be keyed.

        Parameters
        ----------
        images : array-like of uint8 of shape (n_images, height, width, 3) or LazyImages
            RGB images, read ``batch_size`` at a time.
        layers : str or sequence of str, optional
            Layers (:meth:`layer_names`); ``None``: the registered ones.
        %(image_ids)s
            Keyword-only.
        batch_size : int, default=64
            Images per forward pass.
        %(device)s
            Not used by callables.
        %(cache)s
        %(progress)s

        Returns
        -------
        activations : dict of str to ndarray of float32 of shape (n_images, n_features)
            Layer → pooled activations, in the order of ``layers``.

        Raises
        ------
        RuntimeError
            When the model is unavailable (the status's reason).
        ValueError
            For an unknown layer, a layer that does not run exactly once per forward pass,
            output of the wrong shape, or non-finite values.
        """
        layers = self.check_layers(layers)
        batch_size = check_int(batch_size, "batch_size", min_value=1)
        n = _check_images(images)
        out: dict[str, np.ndarray] = {}
        folder = resolve_cache(cache, "features")
        paths = {}
        if folder is not None:
            ident = self._identity()
            if ident is None:
                if self.name not in _UNCACHED_WARNED:
                    _UNCACHED_WARNED.add(self.name)
                    log.warning("vision model %s: a user callable without version= is not "
                                "cached on disk (its behaviour cannot be keyed)", self.name)
            else:
                ik = images_identity(images, image_ids)
                folder = folder / "models" / self.name
                for layer in layers:
                    key = cache_key("features", "vision-model", ident, layer, self.pooling, ik)
                    paths[layer] = folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', layer)}_{key}.npy"
                    hit = load_npy(paths[layer], dtype=np.float32, rows=n, ndim=2, finite=True)
                    if hit is not None:
                        out[layer] = hit
        todo = [x for x in layers if x not in out]
        if todo:
            new = (self._call(images, n, batch_size, progress) if self.kind == "callable"
                   else self._forward(images, n, todo, batch_size, device, progress))
            for layer in todo:
                out[layer] = new[layer]
                if layer in paths:
                    save_npy(paths[layer], out[layer])
        return {x: out[x] for x in layers}

    def _call(self, images, n, batch_size, progress) -> dict[str, np.ndarray]:
        from tqdm.auto import tqdm

        chunks = []
        for i in tqdm(range(0, n, batch_size), desc=self.name, disable=not progress, leave=False):
            batch = np.asarray(images[i:i + batch_size])
            f = self.source(batch)
            if hasattr(f, "detach"):
                f = f.detach().float().cpu().numpy()
            f = np.asarray(f)
            if f.ndim != 2 or f.shape[0] != batch.shape[0] or not np.issubdtype(f.dtype, np.number):
                raise ValueError(f"vision model {self.name!r}: the callable returned {f.dtype} "
                                 f"{f.shape} for {batch.shape[0]} images; expected numbers of "
                                 f"shape ({batch.shape[0]}, n_features)")
            chunks.append(f.astype(np.float32))
        return {OUTPUT_LAYER: _finite(np.concatenate(chunks), self.name, OUTPUT_LAYER)}

    def _forward(self, images, n, layers, batch_size, device, progress) -> dict[str, np.ndarray]:
        from tqdm.auto import tqdm

        torch = _torch()
        module, forward, _ = self._built
        prep = _prep_function(self.preprocess)
        named = dict(module.named_modules())
        captured: dict[str, list] = {}
        hooks = []

        def hook(name):
            return lambda mod, args, output: captured.setdefault(name, []).append(output)

        device = _resolve_device(device)
        first = next(iter(module.parameters()), None)
        first = first if first is not None else next(iter(module.buffers()), None)
        was = first.device if first is not None else None
        modes = {m: m.training for m in module.modules()}
        chunks: dict[str, list] = {x: [] for x in layers}
        try:
            for name in layers:
                if name != OUTPUT_LAYER:
                    hooks.append(named[name].register_forward_hook(hook(name)))
            module.to(device).eval()
            with torch.no_grad():
                for i in tqdm(range(0, n, batch_size), desc=self.name, disable=not progress,
                              leave=False):
                    captured.clear()
                    x = prep(np.asarray(images[i:i + batch_size]))
                    y = forward(module, x.to(device))
                    captured.setdefault(OUTPUT_LAYER, []).append(y)
                    for name in layers:
                        got = captured.get(name, [])
                        if len(got) != 1:
                            raise ValueError(
                                f"vision model {self.name!r}: layer {name!r} ran {len(got)} "
                                "times in one forward pass; read a module that runs exactly "
                                "once (a shared or unused module has no single activation)")
                        chunks[name].append(_pool(got[0], self.pooling, self.name, name))
        finally:
            for h in hooks:
                h.remove()
            if was is not None:
                module.to(was)
            for m, mode in modes.items():
                m.training = mode
        return {x: _finite(np.concatenate(chunks[x]), self.name, x) for x in layers}


def _first_tensor(out):
    torch = _torch()
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    return None


def _pool(out, pooling: str, model: str, layer: str) -> np.ndarray:
    """One float32 row per image: 2-D as is; 4-D ``(n, C, H, W)`` and 3-D ``(n, T, D)`` averaged
    (``mean``) or maximised (``max``) over space / tokens, or flattened (``flatten``)."""
    t = _first_tensor(out)
    if t is None:
        raise ValueError(f"vision model {model!r}: layer {layer!r} returned {type(out).__name__}, "
                         "not a tensor (or a tuple starting with one)")
    if t.ndim < 2 or (t.ndim > 4 and pooling != "flatten"):
        raise ValueError(f"vision model {model!r}: layer {layer!r} has shape {tuple(t.shape)}; "
                         "expected (n, d), (n, T, D) or (n, C, H, W) (or pooling='flatten')")
    if t.ndim in (3, 4) and pooling != "flatten":
        axes = (2, 3) if t.ndim == 4 else (1,)
        t = t.float().mean(dim=axes) if pooling == "mean" else t.float().amax(dim=axes)
    return t.float().flatten(1).cpu().numpy()


def _finite(X: np.ndarray, model: str, layer: str) -> np.ndarray:
    X = np.ascontiguousarray(X, dtype=np.float32)
    if not np.isfinite(X).all():
        raise ValueError(f"vision model {model!r}: layer {layer!r} gave "
                         f"{int((~np.isfinite(X)).sum())} non-finite values")
    return X


def _check_images(images) -> int:
    shape = getattr(images, "shape", None)
    dtype = getattr(images, "dtype", None)
    if shape is None or len(shape) != 4 or shape[-1] != 3 or np.dtype(dtype) != np.uint8:
        raise ValueError(f"images: expected uint8 (n_images, height, width, 3) (an array or "
                         f"LazyImages), got {dtype} {shape}")
    if shape[0] == 0:
        raise ValueError("images: no images (n_images = 0)")
    return int(shape[0])


def _as_layer_list(layers, what: str) -> list[str]:
    if isinstance(layers, str):
        layers = [layers]
    if (not isinstance(layers, Sequence) or not layers
            or not all(isinstance(x, str) and x for x in layers)):
        raise TypeError(f"{what} must be a layer name or a non-empty sequence of layer names "
                        f"(str), got {layers!r}")
    if len(set(layers)) != len(layers):
        raise ValueError(f"{what}={list(layers)} names a layer twice")
    return list(layers)


# --------------------------------------------------------------------------- the registry
def register_model(name: str, model, layers=None, preprocess=None, description: str = "",
                   version: str | None = None, *, pooling: str = "mean", weights=None,
                   replace: bool = False) -> VisionModel:
    """Register a vision model under ``name`` for the brain comparison (chapter 05).

    ``model`` is one of:

    - a **callable** ``images -> features``: uint8 ``(n, H, W, 3)`` in, a numeric array (or
      tensor) ``(n, d)`` out; its one layer is ``"output"``, and it does its own
      preprocessing (``preprocess`` must be ``None``);
    - a **torch.nn.Module**: ``layers`` are names from ``model.named_modules()`` (read with
      forward hooks, in one forward pass), and ``"output"`` is what ``model(x)`` returns;
    - a **library model by name**: ``"torchvision:<arch>"`` (e.g. ``"torchvision:resnet18"``,
      the whole network, so ``"avgpool"`` or ``"layer4"`` are layers and ``"output"`` is the
      logits), ``"timm:<arch>"`` (``timm.create_model(arch)``; a pretrained tag such as
      ``"resnet50.a1_in1k"`` may be part of ``arch``) or ``"open_clip:<arch>/<pretrained>"``
      (e.g. ``"open_clip:RN50/openai"``; ``"output"`` is ``encode_image``, the layers are the
      image tower's, ``"visual.layer4"``...). The library is imported, and the weights read,
      from local files only on first use: ``weights``, else ``get_models_dir()/vision/``
      (``<arch>.pth``, ``<arch>-*.pth``, ``<arch>.safetensors``; open_clip
      ``<arch>_<pretrained>.*``), ``$TORCH_HOME/hub/checkpoints/<arch>-*.pth``, the Hugging
      Face cache (``timm/<arch>``, ``laion/CLIP-<arch>-<pretrained>``) or
      ``~/.cache/clip/<arch>.pt`` (``openai``). Nothing is downloaded: a missing library or
      weights file makes :attr:`VisionModel.status` unavailable with the reason (the
      comparison lists it as skipped), never an error. These paths are tested here through
      stand-in modules (the libraries' wheels need other torch versions than this
      environment's).

    Registered models are used by name: ``"<name>"`` (the registered layers) or
    ``"<name>:<layer>"`` (one layer, any of :meth:`VisionModel.layer_names`), e.g. in the
    ``comparison_models`` list of chapter 05 (:func:`model_features`,
    :func:`~brainllm_utils.chapters.ch05_image_to_llm.comparison_features`); each (model,
    layer) is a row ``"<name>:<layer>"`` of the chapter's tables. The registry lives in the
    calling process: to reach papermill kernels or Dask workers, register from a plugin module
    that they import.

    Parameters
    ----------
    name : str
        Letters, digits, ``_``, ``.``, ``-`` (no ``:``); not a
        :data:`~brainllm_utils.vision.COMPARISON_MODELS` name.
    model : callable, torch.nn.Module or str
        See above.
    layers : str or sequence of str, optional
        The layers read by default (``None``: ``("output",)``). Checked now for a module (a
        ``ValueError`` lists the valid names), on first use for a library model.
    preprocess : dict or callable, optional
        Modules and library models only. ``None``: centre square crop, resize to 224, then
        ``(x - mean) / std`` on [0, 1] RGB with ImageNet's mean and std (CLIP's for
        open_clip); a dict overrides some of ``size``, ``mean``, ``std``, ``crop`` (centre-
        crop fraction of the shorter side); a callable maps uint8 ``(n, H, W, 3)`` to a float
        tensor or array ``(n, C, H, W)``.
    description : str, default=""
        One line for the tables.
    version : str, optional
        Your tag of the model's behaviour, part of the cache key; needed for a callable (model
        or ``preprocess``) to be cached on disk. Change it when the code changes: a module's
        state dict is hashed, its ``forward`` code is not.
    pooling : {"mean", "max", "flatten"}, default="mean"
        Layer outputs of shape ``(n, C, H, W)`` (conv maps) are averaged (``mean``) or
        maximised (``max``) over space, ``(n, T, D)`` (tokens, batch first) over tokens;
        ``flatten`` keeps every unit (``C*H*W``). 2-D outputs are kept as they are; a tuple
        output is read at its first tensor.
    weights : str or path-like, optional
        Library models: the local weights file to use.
    replace : bool, default=False
        Replace a model already registered under ``name``. Without it, registering the same
        thing twice returns the existing registration; something else raises.

    Returns
    -------
    model : VisionModel
        The registration (nothing is loaded for a library model until used).
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"name={name!r}: expected letters, digits, '_', '.', '-' (no ':'), "
                         "starting with a letter, digit or '_'")
    if name in COMPARISON_MODELS:
        raise ValueError(f"name={name!r} is a built-in comparison model's name; choose another")
    if not isinstance(description, str):
        raise TypeError(f"description must be a str, got {type(description).__name__}")
    if version is not None and not isinstance(version, str):
        raise TypeError(f"version must be a str or None, got {type(version).__name__}")
    pooling = check_choice(pooling, "pooling", VISION_POOLINGS)
    if layers is not None:
        layers = _as_layer_list(layers, "layers")
    torch = sys.modules.get("torch")
    if isinstance(model, str):
        kind = model.partition(":")[0]
        if kind not in _SPECS or not _SPECS[kind].fullmatch(model):
            raise ValueError(f"model={model!r}: expected 'torchvision:<arch>', 'timm:<arch>' or "
                             "'open_clip:<arch>/<pretrained>'")
        if weights is not None and not isinstance(weights, (str, Path)):
            raise TypeError(f"weights must be a path, got {type(weights).__name__}")
        weights = None if weights is None else str(weights)
        prep = _prep_spec(preprocess, _CLIP if kind == "open_clip" else _IMAGENET)
    elif torch is not None and isinstance(model, torch.nn.Module):
        kind = "module"
        prep = _prep_spec(preprocess, _IMAGENET)
    elif callable(model):
        kind = "callable"
        if preprocess is not None:
            raise ValueError("preprocess: a callable model does its own preprocessing; pass None")
        prep = None
        if layers is not None and layers != [OUTPUT_LAYER]:
            raise ValueError(f"layers={layers}: a callable model has one layer, {OUTPUT_LAYER!r}")
    else:
        raise TypeError(f"model must be a callable, a torch.nn.Module or a library name string, "
                        f"got {type(model).__name__}")
    if kind in ("module", "callable") and weights is not None:
        raise ValueError("weights: only for library models ('torchvision:...', 'timm:...', "
                         "'open_clip:...')")
    new = VisionModel(name, kind, model, layers or [OUTPUT_LAYER], prep, description, version,
                      pooling, weights)
    if kind == "module":
        new.check_layers(None)
    old = _REGISTRY.get(name)
    if old is not None and not replace:
        if old._same(new):
            return old
        raise ValueError(f"vision model {name!r} is already registered (as {old!r}); pass "
                         "replace=True to replace it")
    _REGISTRY[name] = new
    return new


def unregister_model(name: str) -> None:
    """Remove a registered vision model.

    Parameters
    ----------
    name : str
        A registered name (an unknown one raises ``ValueError``).
    """
    get_model(name)
    del _REGISTRY[name]


def _load_plugins() -> None:
    """The user's plugin modules (config file, entry points) register their models here too:
    load them once per process before a lookup (``features.ensure_plugins``)."""
    from ..features import ensure_plugins

    ensure_plugins()


def registered_models() -> list[str]:
    """Names of the registered vision models, sorted.

    Returns
    -------
    names : list of str
        The names (:func:`register_model`).
    """
    _load_plugins()
    return sorted(_REGISTRY)


def get_model(name: str) -> VisionModel:
    """The registered model ``name``.

    Parameters
    ----------
    name : str
        A registered name.

    Returns
    -------
    model : VisionModel
        Its registration.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the registered ones).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    _load_plugins()
    if name not in _REGISTRY:
        raise ValueError(f"no vision model {name!r} is registered; "
                         f"registered: {registered_models()}")
    return _REGISTRY[name]


def parse_model_name(text: str) -> tuple[VisionModel, list[str] | None]:
    """A by-name reference: ``"<name>"`` or ``"<name>:<layer>"`` of a registered model.

    Parameters
    ----------
    text : str
        The reference (split at the first ``:``; layer names never contain one).

    Returns
    -------
    model : VisionModel
        The registered model.
    layers : list of str or None
        ``[layer]``, or ``None`` for the registered layers (the layer is checked when the
        model is used: a library model's layers are known once it is loaded).
    """
    if not isinstance(text, str) or not text:
        raise TypeError(f"expected a vision-model name '<name>' or '<name>:<layer>', got {text!r}")
    name, sep, layer = text.partition(":")
    model = get_model(name)
    if sep and not layer:
        raise ValueError(f"{text!r}: empty layer name after ':'")
    return model, ([layer] if sep else None)


def _entries(models) -> list[tuple[VisionModel, list[str] | None]]:
    if isinstance(models, (str, VisionModel)):
        models = [models]
    if isinstance(models, Mapping):
        return [(get_model(k) if isinstance(k, str) else k,
                 None if v is None else _as_layer_list(v, f"layers of {k!r}"))
                for k, v in models.items()]
    out = []
    for m in models:
        if isinstance(m, VisionModel):
            out.append((m, None))
        else:
            out.append(parse_model_name(m))
    return out


@fill_doc
def model_features(models, images, *, image_ids=None, batch_size: int = 64, device="auto",
                   cache=True, progress: bool = False
                   ) -> tuple[dict[str, np.ndarray], list[ModelStatus]]:
    """Features of registered vision models, one matrix per (model, layer).

    Parameters
    ----------
    models : str, VisionModel, sequence of these, or dict of str to layers
        By-name references (``"<name>"``: the registered layers; ``"<name>:<layer>"``),
        :class:`VisionModel` objects, or ``{name: layers or None}``.
    images : array-like of uint8 of shape (n_images, height, width, 3) or LazyImages
        RGB images.
    %(image_ids)s
        Keyword-only.
    batch_size : int, default=64
        Images per forward pass.
    %(device)s
    %(cache)s
        Per model and layer (:meth:`VisionModel.activations`).
    %(progress)s

    Returns
    -------
    features : dict of str to ndarray of float32 of shape (n_images, n_features)
        ``"<name>:<layer>"`` → features, for the models that ran.
    statuses : list of ModelStatus
        One per (model, layer), named ``"<name>:<layer>"`` (skipped models included, with
        the reason; an unavailable library model's layers are the requested ones).
    """
    feats: dict[str, np.ndarray] = {}
    statuses = []
    for model, layers in _entries(models):
        st = model.status
        names = list(model.layers) if layers is None else layers
        if not st.available:
            statuses += [ModelStatus(f"{model.name}:{x}", False, st.reason) for x in names]
            continue
        acts = model.activations(images, names, image_ids=image_ids, batch_size=batch_size,
                                 device=device, cache=cache, progress=progress)
        for layer, X in acts.items():
            key = f"{model.name}:{layer}"
            if key in feats:
                raise ValueError(f"models: {key!r} is asked for twice")
            feats[key] = X
            statuses.append(ModelStatus(key, True, st.reason, st.weights))
    return feats, statuses


def is_registered_model(entry: Any) -> bool:
    """Whether ``entry`` refers to a registered vision model (not a built-in comparison model).

    Parameters
    ----------
    entry : object
        A :class:`VisionModel`, or a by-name reference ``"<name>"`` / ``"<name>:<layer>"``.

    Returns
    -------
    bool
        ``True`` for a :class:`VisionModel` or a string whose name part is registered.
    """
    if isinstance(entry, VisionModel):
        return True
    _load_plugins()
    return isinstance(entry, str) and entry.partition(":")[0] in _REGISTRY


def check_model_reference(text) -> str:
    """Check a comparison-model reference as a plain string (e.g. a batch parameter).

    Accepted: a :data:`~brainllm_utils.vision.COMPARISON_MODELS` name, a registered model's
    ``"<name>"`` or ``"<name>:<layer>"``. The layer of a torch module or callable is checked
    now; a library model's when it is loaded (loading it here would read its weights).

    Parameters
    ----------
    text : str
        The reference.

    Returns
    -------
    text : str
        ``text`` unchanged.

    Raises
    ------
    ValueError
        For an unknown name (listing the built-in and registered ones) or layer.
    """
    if not isinstance(text, str):
        raise TypeError(f"a vision-model reference must be a str, got {type(text).__name__}")
    if text in COMPARISON_MODELS:
        return text
    if not is_registered_model(text):
        raise ValueError(f"unknown vision model {text!r}; built-in: {sorted(COMPARISON_MODELS)}; "
                         f"registered: {registered_models()} (as '<name>' or '<name>:<layer>')")
    model, layers = parse_model_name(text)
    if model.kind in ("module", "callable"):
        model.check_layers(layers)
    return text
