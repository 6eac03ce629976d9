"""Sentence and caption embeddings with a fast transformers path and a disk cache.

The numbers equal ``SentenceTransformer(path).encode(sentences)`` for the supported
module stacks (Transformer → Pooling [→ Normalize]). Any other local Hugging Face model,
encoder or decoder, runs on the same path with a choice of pooling (mean, first, last or
max token), hidden layer (one, or a sweep over several read from one forward pass), prompt
template and normalisation; the numbers equal the model's own ``hidden_states`` pooled
over the attention mask. The speed comes from elsewhere:

- every distinct sentence is embedded once (duplicates are removed first);
- sentences are tokenised without padding, sorted by token length and cut into batches
  by a *token budget*, so batches of short captions are large and padding is minimal;
- on a CPU with native bf16 (AVX512-BF16 or AMX) the weights run in bf16 by default
  (``precision="auto"``; ``"fp32"`` for sentence-transformers' exact numbers);
- on CUDA the weights run in bf16 (fp16 where bf16 is missing), batches are built in a
  background thread (tokenising overlaps the GPU), copied from pinned memory without
  blocking, and the batch size follows ``torch.cuda.mem_get_info``;
- results live in a content-addressed cache (see *Cache* below), so re-running a notebook
  never re-embeds.

Threads
-------
The number of CPU threads is left to the caller. On small machines (2 vCPUs) with other
work running, ``torch.set_num_threads(1)`` (or ``OMP_NUM_THREADS=1``) is steadier than two
threads, which can collapse under OpenMP contention (``shared/docs/toolchain.md`` §7).

Cache
-----
Two layers under ``<cache>/embeddings/<model-slug>/`` (``<cache>`` is ``get_cache_dir()``
for ``cache=True`` or the cache root you pass; the package's one cache,
:mod:`brainllm_utils._utils.cache`):

- ``<key>.npy``: the float32 result of one call, ``key`` = the cache key (kind
  ``"embeddings"`` and its version) of the model identity (resolved name, sha256 or
  size+mtime of the weights file, pooling, normalisation, ``max_seq_length``, precision;
  and, when set, the layer, prompt, padding side and, for a plain Hugging Face folder, the
  sha256 of its configuration and tokenizer files) and the ordered sentence list. A hit
  returns without loading the model. A layer sweep writes one such file (and store) per
  layer, so asking for one layer later is a hit.
- ``sentences-<model key>/shard-*.npy``: a per-sentence store (rows plus a
  ``.keys.npy`` file of 16-byte sentence hashes), so a changed list only embeds the new
  sentences. Shards are written atomically with checksum sidecars (vectors first, keys
  last), never modified, and merged when there are many.

A corrupt or truncated cache file, or one whose checksums do not match, is reported with a
``CorruptCacheWarning``, removed and recomputed (the one cache's policy). A read-only cache
folder gives one ``CacheUnavailableWarning`` and the sentences are embedded without it; a
full disk (a claim, shard or list file that cannot be written) warns and embeds anyway.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import re
import threading
import time
import uuid
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from .._utils.cache import (
    CacheUnavailableWarning,
    cache_key,
    discard,
    file_identity,
    load_npy,
    resolve_cache,
    verify_checksums,
    writable_cache,
    write_npy,
)
from .._utils.device import resolve_device as _resolve_device
from .._utils.docs import fill_doc
from .._utils.paths import STALE_TMP_HOURS, atomic_path, fault_point, file_lock
from .weights import MPNET, canonical_name, resolve_model

__all__ = [
    "DEFAULT_MODEL",
    "POOLING_MODES",
    "ModelSpec",
    "embed_sentences",
    "embed_captions",
    "get_model_spec",
    "clear_model_cache",
    "embedding_precision",
    "BF16_MIN_COSINE",
]

DEFAULT_MODEL = MPNET

#: The smallest cosine between a caption's bf16 and fp32 embeddings the tests accept (the
#: accuracy target of the bf16 paths, CPU and GPU).
BF16_MIN_COSINE = 0.999

_PROGRESS_MIN = 2000  # show a progress bar above this many sentences to embed
_CPU_TOKEN_BUDGET = 4096  # tokens per batch on CPU (padded length × batch size)
_CPU_MAX_BATCH = 256
_CUDA_MAX_BATCH = 4096
_CUDA_CHUNK = 16384  # sentences tokenised at a time by the CUDA producer thread
_MAX_SHARDS = 32  # merge the per-sentence store beyond this many shards
_MODEL_LRU_SIZE = 2
_SUPPORTED_POOLING = ("cls", "max", "mean", "mean_sqrt_len_tokens", "last")
#: The ``pooling`` values a caller may ask for (:func:`embed_sentences`).
POOLING_MODES = ("mean", "cls", "last", "max")
_SBERT_POOLING_ALIASES = {"lasttoken": "last"}
#: Encoder model types read without importing transformers' model tables.
_KNOWN_ENCODERS = frozenset({"albert", "bert", "camembert", "deberta", "deberta-v2", "distilbert",
                             "electra", "modernbert", "mpnet", "nomic_bert", "roberta",
                             "xlm-roberta"})
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx",
                    ".gguf", ".ot")
_LEGACY_POOLING = {
    "pooling_mode_cls_token": "cls",
    "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_tokens": "mean",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens",
    "pooling_mode_weightedmean_tokens": "weightedmean",
    "pooling_mode_lasttoken": "lasttoken",
}
_PRECISIONS = ("fp32", "bf16", "fp16")


# --------------------------------------------------------------------------- model spec


@dataclass(frozen=True)
class ModelSpec:
    """What defines a sentence encoder's output, read from its folder (no weights loaded).

    Attributes
    ----------
    name : str
        Canonical name (Hub id for the pip-packaged models, else the resolved path).
    path : Path
        Folder of the transformer (``config.json``, tokenizer, weights).
    max_seq_length : int
        Inputs are truncated to this many tokens (``sentence_bert_config.json``).
    pooling : tuple of str
        Pooling modes, concatenated in this order (``1_Pooling/config.json``).
    normalize : bool
        Whether a ``Normalize`` module follows pooling (``modules.json``).
    do_lower_case : bool
        Lower-case inputs before tokenising (``sentence_bert_config.json``).
    dim : int
        Output dimension.
    weights_id : str
        sha256 of the weights file when known, else its size and mtime.
    layer : int or None, default=None
        Index into the model's ``hidden_states`` (as ``transformers`` returns them with
        ``output_hidden_states=True``: 0 = the embedding output, ``n_layers`` = the last
        layer), made non-negative; ``None``: the model's ``last_hidden_state`` (the
        sentence-transformers output).
    prompt : str or None, default=None
        Template applied to each sentence before tokenising (``"{caption}"`` replaced by it).
    padding_side : {"right", "left"}, default="right"
        Where batches are padded: the tokenizer's side for decoders, always right for
        encoders. Left padding passes position ids counted from each row's first token.
    n_layers : int, default=0
        The model's number of hidden layers (``hidden_states`` has ``n_layers + 1`` entries).
    decoder : bool, default=False
        Whether the model is causal (a decoder), read from its config.
    files_id : str, default=""
        sha256 of the folder's configuration and tokenizer files, for a plain Hugging Face
        folder (empty for sentence-transformers folders, keyed as before).
    """

    name: str
    path: Path
    max_seq_length: int
    pooling: tuple[str, ...]
    normalize: bool
    do_lower_case: bool
    dim: int
    weights_id: str
    layer: int | None = None
    prompt: str | None = None
    padding_side: str = "right"
    n_layers: int = 0
    decoder: bool = False
    files_id: str = ""

    @property
    def slug(self) -> str:
        """The name's last path part, made file-name safe (the cache folder of the model)."""
        base = re.split(r"[/\\]", self.name.rstrip("/\\"))[-1]
        return re.sub(r"[^A-Za-z0-9._-]+", "_", base) or "model"

    def key(self, precision: str) -> str:
        """The cache key of the model's output: every field that changes it, and ``precision``.

        Parameters
        ----------
        precision : {"fp32", "bf16", "fp16"}
            The resolved precision the model runs in.

        Returns
        -------
        key : str
            64 hex digits (:func:`~brainllm_utils._utils.cache.cache_key`, kind
            ``"embeddings"``).
        """
        ident = {
            "name": self.name,
            "weights": self.weights_id,
            "max_seq_length": self.max_seq_length,
            "pooling": list(self.pooling),
            "normalize": self.normalize,
            "do_lower_case": self.do_lower_case,
            "dim": self.dim,
            "precision": precision,
        }
        # options that did not exist before enter the key only when set, so the entries of
        # the sentence-transformers models keep their keys
        if self.layer is not None:
            ident["layer"] = int(self.layer)
        if self.prompt is not None:
            ident["prompt"] = self.prompt
        if self.padding_side != "right":
            ident["padding_side"] = self.padding_side
        if self.decoder:
            ident["decoder"] = True
        if self.files_id:
            ident["files"] = self.files_id
        return cache_key("embeddings", ident, length=64)


def _read_json(path: Path) -> dict | list | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _weights_id(folder: Path) -> str:
    marker = folder / ".sha256"
    if marker.is_file():
        return "sha256:" + marker.read_text().strip()
    for fname in ("model.safetensors", "pytorch_model.bin"):
        f = folder / fname
        if f.is_file():
            ident = file_identity(f)
            return f"{fname}:{ident.size}:{ident.mtime_ns}"
    for fname in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / fname
        if index.is_file():  # a sharded checkpoint (large models): the index and every shard
            try:
                shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise ValueError(f"{index} is not a weights index ({type(exc).__name__}: "
                                 f"{exc})") from None
            h = hashlib.sha256(index.read_bytes())
            for shard in shards:
                ident = file_identity(folder / shard)  # FileNotFoundError names a missing one
                h.update(f"\0{shard}:{ident.size}:{ident.mtime_ns}".encode())
            return f"{fname}:{h.hexdigest()}"
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin (or a sharded index of "
                            f"them) in {folder}")


def _parse_pooling(cfg: dict) -> tuple[str, ...]:
    if "pooling_mode" in cfg:
        mode = cfg["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(m for k, m in _LEGACY_POOLING.items() if cfg.get(k, False)) or ("mean",)
    modes = tuple(_SBERT_POOLING_ALIASES.get(m, m) for m in modes)
    bad = [m for m in modes if m not in _SUPPORTED_POOLING]
    if bad:
        raise NotImplementedError(f"pooling mode(s) {bad} not supported; supported: {_SUPPORTED_POOLING}")
    return modes


def _is_decoder(config: dict) -> bool:
    """Whether a ``config.json`` describes a causal model (read from the config, no weights)."""
    if config.get("is_decoder"):
        return True
    mtype = config.get("model_type")
    if not mtype or mtype in _KNOWN_ENCODERS:
        return False
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_MASKED_LM_MAPPING_NAMES,
    )

    # BERT-like models also have a causal head; a model type that only has one is a decoder
    causal, masked = MODEL_FOR_CAUSAL_LM_MAPPING_NAMES, MODEL_FOR_MASKED_LM_MAPPING_NAMES
    return mtype in causal and mtype not in masked


def _n_layers(config: dict, folder: Path) -> int:
    """Number of hidden layers from ``config.json`` (0 when it does not say)."""
    for key in ("num_hidden_layers", "n_layer", "num_layers", "n_layers"):
        value = config.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    try:  # nested or renamed attributes: let transformers read the config
        from transformers import AutoConfig

        value = getattr(AutoConfig.from_pretrained(str(folder)), "num_hidden_layers", 0)
    except Exception:  # noqa: BLE001 - an unknown architecture: the layer option is refused later
        return 0
    return int(value) if isinstance(value, int) and value > 0 else 0


def _files_id(folder: Path) -> str:
    """sha256 of a folder's configuration and tokenizer files (weights excluded)."""
    h = hashlib.sha256()
    for f in sorted(folder.iterdir()):
        if (not f.is_file() or f.name.startswith(".") or f.name.endswith(_WEIGHT_SUFFIXES)
                or f.name.endswith(".index.json") or f.stat().st_size > 64 * 2**20):
            continue
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _check_layer(layer: Any, n_layers: int, name: str) -> int:
    """``layer`` as a non-negative index into ``hidden_states``; errors say the valid range."""
    if isinstance(layer, (bool, np.bool_)) or not isinstance(layer, (int, np.integer)):
        raise TypeError(f"layer must be an int (an index into hidden_states), None, a list of ints "
                        f"or 'all', got {type(layer).__name__}: {layer!r:.60}")
    if n_layers <= 0:
        raise ValueError(f"layer={layer}: the config.json of {name} gives no number of hidden "
                         "layers (num_hidden_layers), so a layer cannot be checked")
    if not -(n_layers + 1) <= layer <= n_layers:
        raise ValueError(f"layer={layer} is out of range for {name}: hidden_states has "
                         f"{n_layers + 1} entries (0 = embeddings, {n_layers} = last layer; -1 "
                         f"to -{n_layers + 1} count from the end)")
    return int(layer) % (n_layers + 1)


def _check_options(pooling: Any, prompt: Any, normalize: Any, max_length: Any) -> None:
    """Type and range checks of the keyword options (the messages name the parameter)."""
    if pooling is not None:
        if not isinstance(pooling, str):
            raise TypeError(f"pooling must be a str or None, got {type(pooling).__name__}: "
                            f"{pooling!r:.60}")
        if pooling not in POOLING_MODES:
            raise ValueError(f"pooling must be one of {POOLING_MODES} or None, got {pooling!r}")
    if prompt is not None:
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a str or None, got {type(prompt).__name__}: "
                            f"{prompt!r:.60}")
        if prompt.count("{caption}") != 1:
            raise ValueError("prompt must contain '{caption}' exactly once (where each sentence "
                             f"goes), found {prompt.count('{caption}')} in {prompt!r:.80}")
    if normalize is not None and not isinstance(normalize, (bool, np.bool_)):
        raise TypeError(f"normalize must be a bool or None, got {type(normalize).__name__}: "
                        f"{normalize!r:.60}")
    if max_length is not None:
        if (isinstance(max_length, (bool, np.bool_))
                or not isinstance(max_length, (int, np.integer))):
            raise TypeError(f"max_length must be a positive int or None, got "
                            f"{type(max_length).__name__}: {max_length!r:.60}")
        if max_length < 1:
            raise ValueError(f"max_length must be a positive int (tokens) or None, got "
                             f"{max_length}")


def _model_spec(
    name: str,
    folder: Path,
    *,
    pooling: str | None = None,
    layer: int | None = None,
    prompt: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
) -> ModelSpec:
    modules = _read_json(folder / "modules.json")
    tf_dir, modes, norm = folder, ("mean",), False
    sbert = modules is not None
    if modules is not None:
        kinds = [(m.get("type", "").rsplit(".", 1)[-1], m.get("path", "")) for m in modules]
        names = [k for k, _ in kinds]
        unsupported = [k for k in names if k not in ("Transformer", "Pooling", "Normalize")]
        if unsupported or names[:1] != ["Transformer"]:
            raise NotImplementedError(
                f"{name}: module stack {names} not supported (need Transformer, Pooling[, Normalize])"
            )
        tf_dir = folder / kinds[0][1] if kinds[0][1] else folder
        norm = "Normalize" in names
        pool_path = next((p for k, p in kinds if k == "Pooling"), None)
        if pool_path is not None and pooling is None:  # an explicit pooling replaces the config's
            cfg = _read_json(folder / pool_path / "config.json") or {}
            modes = _parse_pooling(cfg)
    config = _read_json(tf_dir / "config.json")
    if config is None:
        raise FileNotFoundError(f"{name}: no config.json in {tf_dir}")
    if config.get("is_encoder_decoder"):
        raise NotImplementedError(f"{name}: encoder-decoder models (model_type "
                                  f"{config.get('model_type')!r}) are not supported; use an "
                                  "encoder or a decoder model")
    hidden = next((config[k] for k in ("hidden_size", "d_model", "n_embd", "dim") if config.get(k)),
                  None)
    if not isinstance(hidden, int) or hidden < 1:
        raise ValueError(f"{name}: {tf_dir / 'config.json'} gives no hidden size (hidden_size, "
                         "d_model, n_embd or dim)")
    decoder = _is_decoder(config)
    if not sbert and decoder:
        modes = ("last",)  # a causal model's summary of a sentence is its last token
    if pooling is not None:
        modes = (pooling,)
    if normalize is not None:
        norm = bool(normalize)
    sb_cfg = _read_json(tf_dir / "sentence_bert_config.json") or {}
    max_len = sb_cfg.get("max_seq_length")
    if max_len is None:
        tok_cfg = _read_json(tf_dir / "tokenizer_config.json") or {}
        max_len = tok_cfg.get("model_max_length") or 512
        if max_len > 100_000:
            max_len = 512
        positions = config.get("max_position_embeddings") or config.get("n_positions")
        if isinstance(positions, int) and positions > 0:
            max_len = min(int(max_len), positions)
    if max_length is not None:
        positions = config.get("max_position_embeddings") or config.get("n_positions")
        if isinstance(positions, int) and positions > 0 and max_length > positions:
            raise ValueError(f"max_length={max_length} exceeds the {positions} positions of {name} "
                             "(max_position_embeddings in its config.json)")
        max_len = int(max_length)
    n_layers = _n_layers(config, tf_dir)
    if layer is not None:
        layer = _check_layer(layer, n_layers, name)
    padding_side = "right"
    if decoder:
        side = (_read_json(tf_dir / "tokenizer_config.json") or {}).get("padding_side", "right")
        padding_side = side if side in ("left", "right") else "right"
    return ModelSpec(
        name=name,
        path=tf_dir,
        max_seq_length=int(max_len),
        pooling=modes,
        normalize=norm,
        do_lower_case=bool(sb_cfg.get("do_lower_case", False)),
        dim=int(hidden) * len(modes),
        weights_id=_weights_id(tf_dir),
        layer=layer,
        prompt=prompt,
        padding_side=padding_side,
        n_layers=n_layers,
        decoder=decoder,
        files_id="" if sbert else _files_id(tf_dir),
    )


def get_model_spec(
    model: str | os.PathLike = DEFAULT_MODEL,
    *,
    pooling: str | None = None,
    layer: int | None = None,
    prompt: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
) -> ModelSpec:
    """Resolve ``model`` offline and read its sentence-encoder configuration.

    Parameters
    ----------
    model : str or path-like, default="sentence-transformers/all-mpnet-base-v2"
        Hub name, alias (``"mpnet"``, ``"minilm"``) or local folder; see
        :func:`brainllm_utils.weights.resolve_model`. Any Hugging Face encoder or decoder
        folder (``config.json``, tokenizer, weights; sentence-transformers files optional).
    pooling : {"mean", "cls", "last", "max"}, optional
        Keyword-only. Replaces the model's pooling (default: the sentence-transformers
        config; else ``"last"`` for a decoder and ``"mean"`` for an encoder).
    layer : int, optional
        Keyword-only. Index into ``hidden_states`` (negatives count from the end); default
        the model's ``last_hidden_state``.
    prompt : str, optional
        Keyword-only. Template containing ``"{caption}"`` exactly once.
    normalize : bool, optional
        Keyword-only. L2-normalise the pooled vectors (default: whether the model has a
        sentence-transformers ``Normalize`` module).
    max_length : int, optional
        Keyword-only. Truncate inputs to this many tokens (default: the model's
        ``max_seq_length``, else its tokenizer's ``model_max_length``, at most 512 and the
        model's positions).

    Returns
    -------
    spec : ModelSpec
        The encoder's identity and configuration (no weights loaded).

    Raises
    ------
    TypeError, ValueError
        If an option has the wrong type or value (the message names it).
    NotImplementedError
        For encoder-decoder models and sentence-transformers stacks other than
        Transformer → Pooling [→ Normalize].
    """
    _check_options(pooling, prompt, normalize, max_length)
    folder = resolve_model(model)
    name = canonical_name(os.fspath(model))
    if Path(name).expanduser().is_dir():
        name = str(folder)
    return _model_spec(name, folder, pooling=pooling, layer=layer, prompt=prompt,
                       normalize=normalize, max_length=max_length)


# --------------------------------------------------------------------------- devices


def _torch():
    import torch

    return torch


def _cpu_has_bf16() -> bool:
    from .._utils.device import cpu_has_native_bf16

    return cpu_has_native_bf16()


def embedding_precision(precision: str = "auto", device: Any = "auto") -> str:
    """The precision :func:`embed_sentences` runs in for ``precision`` on ``device``.

    Parameters
    ----------
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        As :func:`embed_sentences` takes it.
    device : str, default="auto"
        As :func:`embed_sentences` takes it.

    Returns
    -------
    str
        ``"fp32"``, ``"bf16"`` or ``"fp16"``: on a CPU ``"auto"`` is bf16 where the CPU runs
        it natively (:func:`~brainllm_utils._utils.device.cpu_has_native_bf16`), else fp32.

    Raises
    ------
    ValueError
        For an unknown precision or device.
    """
    return _resolve_precision(precision, _resolve_device(device))


def _resolve_precision(precision: str, device: str) -> str:
    if precision in (None, "auto"):
        if device.startswith("cuda"):
            return "bf16" if _torch().cuda.is_bf16_supported() else "fp16"
        return "bf16" if device == "cpu" and _cpu_has_bf16() else "fp32"
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be 'auto' or one of {_PRECISIONS}, got {precision!r}")
    return precision


# --------------------------------------------------------------------------- model loading


@dataclass
class _Loaded:
    tokenizer: Any
    model: Any
    device: str
    precision: str
    attn: str


_MODELS: OrderedDict[tuple, _Loaded] = OrderedDict()
_MODELS_LOCK = threading.Lock()


def _load_model(spec: ModelSpec, device: str, precision: str) -> _Loaded:
    """Load tokenizer and transformer (no pooling head) for ``spec`` onto ``device``."""
    torch = _torch()
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as hf_logging

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    tokenizer = AutoTokenizer.from_pretrained(str(spec.path), use_fast=True)
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()  # silence "unused pooler weights" reports
    hf_logging.disable_progress_bar()
    try:
        model, attn = None, "eager"
        for kwargs in (
            {"attn_implementation": "sdpa", "add_pooling_layer": False},
            {"attn_implementation": "sdpa"},
            {"add_pooling_layer": False},
            {},
        ):
            try:
                model = AutoModel.from_pretrained(str(spec.path), dtype=dtype, **kwargs)
            except (TypeError, ValueError, ImportError):
                continue
            attn = getattr(model.config, "_attn_implementation", None) or "eager"
            break
        if model is None:
            model = AutoModel.from_pretrained(str(spec.path), dtype=dtype)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    model = model.to(device).eval()
    return _Loaded(tokenizer=tokenizer, model=model, device=device, precision=precision, attn=attn)


def _get_model(spec: ModelSpec, device: str, precision: str) -> _Loaded:
    key = (str(spec.path), spec.weights_id, device, precision)
    with _MODELS_LOCK:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
    loaded = _load_model(spec, device, precision)
    with _MODELS_LOCK:
        _MODELS[key] = loaded
        while len(_MODELS) > _MODEL_LRU_SIZE:
            _MODELS.popitem(last=False)
    return loaded


def clear_model_cache() -> None:
    """Drop the in-process model cache (frees memory)."""
    with _MODELS_LOCK:
        _MODELS.clear()


# --------------------------------------------------------------------------- batching


def _cuda_token_budget(spec: ModelSpec, loaded: _Loaded, n_out: int = 1) -> int:
    """Tokens per batch from free GPU memory (inference activations only, generous margin);
    ``n_out`` layers read per batch (all hidden states are kept when it is more than one)."""
    torch = _torch()
    cfg = loaded.model.config
    hidden = int(getattr(cfg, "hidden_size", 768))
    inter = int(getattr(cfg, "intermediate_size", 4 * hidden))
    heads = int(getattr(cfg, "num_attention_heads", 12))
    nbytes = 2 if loaded.precision in ("bf16", "fp16") else 4
    # live activations per token: a few hidden-size tensors, the MLP expansion, attention
    # rows (heads × padded length, up to max_seq_length) and the fp32 pooled copy
    per_token = nbytes * (8 * hidden + 2 * inter + 2 * heads * min(spec.max_seq_length, 128)) + 4 * hidden
    if n_out > 1 or spec.layer is not None:  # output_hidden_states keeps every layer's states
        per_token += (nbytes + 4) * hidden * (int(getattr(cfg, "num_hidden_layers", 0) or 0) + 1)
    free, _total = torch.cuda.mem_get_info(torch.device(loaded.device))
    return int(np.clip(0.25 * free / per_token, 4096, 262_144))


def _iter_batches(
    texts: Sequence[str],
    tokenizer,
    spec: ModelSpec,
    token_budget: int,
    max_batch: int,
    fixed_batch: int | None,
    chunk: int | None,
    pin: bool,
) -> Iterator[tuple[np.ndarray, Any, Any]]:
    """Yield ``(indices, input_ids, attention_mask)``, longest sentences first.

    ``chunk`` sentences (all when ``None``) are tokenised at once without padding, sorted
    by token length and cut into batches of at most ``token_budget`` padded tokens and
    ``max_batch`` rows, whose shortest sentence is at least 3/4 of the longest (or into
    ``fixed_batch`` sentences); chunks follow a global sort by character length.
    """
    torch = _torch()
    n = len(texts)
    if chunk is None or chunk >= n:
        chunk_order = [np.arange(n)]
    else:
        by_chars = np.argsort(-np.fromiter((len(t) for t in texts), dtype=np.int64, count=n), kind="stable")
        chunk_order = [by_chars[i : i + chunk] for i in range(0, n, chunk)]
    pad_id = tokenizer.pad_token_id
    if pad_id is None:  # a decoder without a pad token: any id will do, the mask hides it
        pad_id = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else 0
    left = spec.padding_side == "left"
    for idx in chunk_order:
        batch_texts = [texts[i] for i in idx]
        if spec.prompt is not None:
            batch_texts = [spec.prompt.replace("{caption}", t) for t in batch_texts]
        if spec.do_lower_case:
            batch_texts = [t.lower() for t in batch_texts]
        enc = tokenizer(
            batch_texts,
            add_special_tokens=True,
            truncation=True,
            max_length=spec.max_seq_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]
        lengths = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
        if len(lengths) and not lengths.min():
            empty = batch_texts[int(np.argmin(lengths))]
            raise ValueError(f"{spec.name}: the sentence {empty!r:.60} has no tokens (its "
                             "tokenizer adds no special tokens); drop empty sentences or use a "
                             "prompt")
        local = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(local):
            longest = int(lengths[local[start]])
            if fixed_batch:
                size = fixed_batch
            else:
                size = max(1, min(max_batch, token_budget // max(longest, 1)))
                # stop where padding would exceed a third of a row (lengths descend)
                cand = lengths[local[start : start + size]]
                size = max(1, int(np.count_nonzero(cand * 4 >= longest * 3)))
            sel = local[start : start + size]
            sel_len = lengths[sel]
            ids = np.full((len(sel), longest), pad_id, dtype=np.int64)
            if left:
                for row, j in enumerate(sel):
                    ids[row, longest - sel_len[row]:] = enc[j]
                starts = (longest - sel_len)[:, None]
                mask = (np.arange(longest)[None, :] >= starts).astype(np.int64)
            else:
                for row, j in enumerate(sel):
                    ids[row, : sel_len[row]] = enc[j]
                mask = (np.arange(longest)[None, :] < sel_len[:, None]).astype(np.int64)
            ids_t, mask_t = torch.from_numpy(ids), torch.from_numpy(mask)
            if pin:
                ids_t, mask_t = ids_t.pin_memory(), mask_t.pin_memory()
            yield idx[sel], ids_t, mask_t
            start += size


def _threaded(gen: Iterator, maxsize: int = 4) -> Iterator:
    """Run a generator in a background thread (tokenising overlaps GPU work)."""
    q: queue.Queue = queue.Queue(maxsize=maxsize)
    stop = threading.Event()
    done = object()

    def produce():
        try:
            for item in gen:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            q.put(exc)

    thread = threading.Thread(target=produce, name="brainllm-tokenise", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join(timeout=5)


def _pool(hidden, mask, modes: tuple[str, ...]):
    """Pool token states (batch, len, d) under ``mask`` (batch, len) → (batch, d·len(modes)).

    ``cls`` is each row's first unmasked token and ``last`` its last one (right or left
    padding alike); states under the mask never enter a result (not even as NaN × 0).
    """
    torch = _torch()
    hidden = hidden.float()
    keep = mask.unsqueeze(-1).bool()
    maskf = keep.to(hidden.dtype)
    rows = torch.arange(hidden.shape[0], device=hidden.device)
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(hidden[rows, mask.argmax(dim=1)])  # argmax: the first maximal index
        elif mode == "last":
            out.append(hidden[rows, mask.shape[1] - 1 - mask.flip(1).argmax(dim=1)])
        elif mode == "max":
            out.append(hidden.masked_fill(~keep, float("-inf")).max(dim=1).values)
        else:
            total = torch.where(keep, hidden, 0.0).sum(dim=1)
            count = torch.clamp(maskf.sum(dim=1), min=1e-9)
            out.append(total / (count if mode == "mean" else torch.sqrt(count)))
    return out[0] if len(out) == 1 else torch.cat(out, dim=-1)


def _accepts(model, argument: str) -> bool:
    """Whether ``model.forward`` takes ``argument`` by name."""
    import inspect

    try:
        params = inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False
    return argument in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _encode(
    texts: Sequence[str],
    spec: ModelSpec,
    loaded: _Loaded,
    batch_size: int | None,
    progress: bool | None,
    layers: Sequence[int | None] | None = None,
) -> np.ndarray:
    """Embed distinct ``texts`` with the loaded model, float32 in input order.

    ``layers=None``: spec's own layer, shape (n, dim). A sequence of layers (indices into
    ``hidden_states``, ``None`` = ``last_hidden_state``): shape (len(layers), n, dim), all
    read from ONE forward pass per batch.
    """
    torch = _torch()
    from tqdm.auto import tqdm

    single = layers is None
    want = (spec.layer,) if single else tuple(layers)
    n = len(texts)
    out = np.empty((len(want), n, spec.dim), dtype=np.float32)
    if n == 0:
        return out[0] if single else out
    cuda = loaded.device.startswith("cuda")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if cuda:
        budget = _cuda_token_budget(spec, loaded, len(want))
        max_batch, chunk = _CUDA_MAX_BATCH, _CUDA_CHUNK
    else:
        budget, max_batch, chunk = _CPU_TOKEN_BUDGET, _CPU_MAX_BATCH, None
    states = any(layer is not None for layer in want)
    positions = spec.padding_side == "left"
    # a decoder would also return its key/value cache, which nothing here reads
    no_kv_cache = spec.decoder and _accepts(loaded.model, "use_cache")
    if positions and not _accepts(loaded.model, "position_ids"):
        raise NotImplementedError(f"{spec.name}: its tokenizer pads on the left but the model "
                                  "takes no position_ids; set padding_side='right' in its "
                                  "tokenizer_config.json")
    batches = _iter_batches(texts, loaded.tokenizer, spec, budget, max_batch, batch_size, chunk,
                            pin=cuda)
    if cuda:
        batches = _threaded(batches)
    show = n > _PROGRESS_MIN if progress is None else bool(progress)
    bar = tqdm(total=n, unit="sent", desc=f"embed {spec.slug}", disable=not show)
    pending: list[tuple[np.ndarray, Any]] = []
    pending_bytes, flush_bytes = 0, 512 * 2**20

    def flush():
        nonlocal pending_bytes
        for idx, emb in pending:
            out[:, idx] = emb.cpu().numpy()
        pending.clear()
        pending_bytes = 0

    try:
        with torch.inference_mode():
            for idx, ids, mask in batches:
                ids = ids.to(loaded.device, non_blocking=True)
                mask = mask.to(loaded.device, non_blocking=True)
                kwargs = {}
                if positions:  # left padding: count positions from each row's first token
                    kwargs["position_ids"] = (mask.cumsum(dim=1) - 1).clamp(min=0)
                if states:
                    kwargs["output_hidden_states"] = True
                if no_kv_cache:
                    kwargs["use_cache"] = False
                result = loaded.model(input_ids=ids, attention_mask=mask, **kwargs)
                if states and len(result.hidden_states) != spec.n_layers + 1:
                    raise RuntimeError(f"{spec.name} returned {len(result.hidden_states)} hidden "
                                       f"states, its config says {spec.n_layers} layers (+1 for "
                                       "the embeddings)")
                embs = []
                for layer in want:
                    hidden = (result.last_hidden_state if layer is None
                              else result.hidden_states[layer])
                    emb = _pool(hidden, mask, spec.pooling)
                    if spec.normalize:
                        emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                    embs.append(emb)
                emb = torch.stack(embs)
                if cuda:  # keep results on the GPU; copy back in large, rare flushes
                    pending.append((idx, emb))
                    pending_bytes += emb.numel() * 4
                    if pending_bytes > flush_bytes:
                        flush()
                else:
                    out[:, idx] = emb.numpy()
                bar.update(len(idx))
            flush()
    finally:
        bar.close()
    bad = ~np.isfinite(out).all(axis=(0, 2))
    if bad.any():
        first = texts[int(np.flatnonzero(bad)[0])]
        raise RuntimeError(f"{spec.name} gave non-finite embeddings for {int(bad.sum())} of {n} "
                           f"sentences (first: {first!r:.60}; precision {loaded.precision}: try "
                           "precision='fp32')")
    return out[0] if single else out


# --------------------------------------------------------------------------- disk cache


def _utf8(s: str) -> bytes:
    return s.encode("utf-8", "surrogatepass")


def _list_key(model_key: str, sentences: Sequence[str]) -> str:
    return cache_key("embeddings", model_key, [_utf8(s) for s in sentences], length=64)


def _sentence_keys(sentences: Sequence[str]) -> np.ndarray:
    return np.array([hashlib.sha256(_utf8(s)).digest()[:16] for s in sentences], dtype="S16")


class _SentenceStore:
    """Per-sentence rows for one model key: ``shard-<id>.npy`` + ``shard-<id>.keys.npy``."""

    def __init__(self, folder: Path, dim: int):
        self.folder = folder
        self.dim = dim

    def _shards(self) -> list[tuple[Path, Path]]:
        if not self.folder.is_dir():
            return []
        out = []
        for keys in sorted(self.folder.glob("shard-*.keys.npy")):
            vecs = keys.with_name(keys.name[: -len(".keys.npy")] + ".npy")
            out.append((vecs, keys))
        self._remove_orphans({v.name for v, _ in out})
        return out

    def _remove_orphans(self, complete: set[str]) -> None:
        """Remove vector files whose keys never came (a writer killed between the two) once
        they are older than ``STALE_TMP_HOURS``: a younger one may be a live writer's."""
        now = time.time()
        for vecs in self.folder.glob("shard-*.npy"):
            if vecs.name.endswith(".keys.npy") or vecs.name in complete:
                continue
            try:
                if now - vecs.stat().st_mtime > STALE_TMP_HOURS * 3600.0:
                    _discard_quietly(vecs)
            except OSError:
                continue

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (found mask (n,), rows (n, dim) float32 with found rows filled)."""
        n = len(keys)
        rows = np.zeros((n, self.dim), dtype=np.float32)
        found = np.zeros(n, dtype=bool)
        want = {k: i for i, k in enumerate(keys.tolist())}
        for vecs_path, keys_path in self._shards():
            if not want:
                break
            try:
                _verified(keys_path)
                skeys = np.load(keys_path, allow_pickle=False)
                hits = [(j, want[k]) for j, k in enumerate(skeys.tolist()) if k in want]
                if not hits:
                    continue
                _verified(vecs_path)
                vecs = np.load(vecs_path, mmap_mode="r", allow_pickle=False)
                if vecs.shape != (len(skeys), self.dim) or vecs.dtype != np.float32:
                    raise ValueError(f"shape {vecs.shape} dtype {vecs.dtype}")
                src = np.fromiter((j for j, _ in hits), dtype=np.int64, count=len(hits))
                dst = np.fromiter((i for _, i in hits), dtype=np.int64, count=len(hits))
                block = np.asarray(vecs[src], dtype=np.float32)
                good = np.isfinite(block).all(axis=1)
                rows[dst[good]] = block[good]
                found[dst[good]] = True
                for k in keys[dst[good]].tolist():
                    want.pop(k, None)
            except FileNotFoundError:
                continue  # merged away by another process meanwhile
            except Exception as exc:  # noqa: BLE001 - truncated or garbled shards raise many types
                discard([vecs_path, keys_path], f"{type(exc).__name__}: {exc}")
        return found, rows

    def add(self, keys: np.ndarray, rows: np.ndarray) -> None:
        if len(keys) == 0:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        stem = f"shard-{uuid.uuid4().hex}"
        try:
            write_npy(self.folder / f"{stem}.npy", rows.astype(np.float32, copy=False))
            write_npy(self.folder / f"{stem}.keys.npy", keys)  # written last: marks complete
        except BaseException:
            _discard_quietly(self.folder / f"{stem}.npy", self.folder / f"{stem}.keys.npy")
            raise
        if len(self._shards()) > _MAX_SHARDS:
            self.compact()

    def claim(self, keys: np.ndarray) -> "_Claim":
        """Announce that this process is embedding ``keys`` (call under the store lock)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return _Claim(self.folder / f"claim-{uuid.uuid4().hex}.keys", keys)

    def live_claims(self) -> np.ndarray:
        """Keys that other live processes are embedding now (call under the store lock).

        A claim's owner holds an exclusive lock on its file; a claim whose lock is free
        belongs to a process that died, and is removed.
        """
        import fcntl

        live = []
        for path in sorted(self.folder.glob("claim-*.keys")) if self.folder.is_dir() else []:
            try:
                with open(path, "rb") as fh:
                    try:
                        fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
                    except BlockingIOError:
                        live.append(np.frombuffer(fh.read(), dtype="S16"))
                        continue
                path.unlink(missing_ok=True)  # stale: its owner is gone
            except (OSError, ValueError):
                continue
        return np.concatenate(live) if live else np.zeros(0, dtype="S16")

    def compact(self) -> None:
        """Merge all shards into one (new shard first, then remove the old ones)."""
        shards = self._shards()
        all_keys, all_rows = [], []
        for vecs_path, keys_path in shards:
            try:
                _verified(keys_path)
                _verified(vecs_path)
                k = np.load(keys_path, allow_pickle=False)
                v = np.load(vecs_path, allow_pickle=False)
                if v.shape != (len(k), self.dim):
                    raise ValueError(f"{v.shape} rows for {len(k)} keys of dimension {self.dim}")
                all_keys.append(k)
                all_rows.append(v)
            except FileNotFoundError:
                continue  # merged away by another process meanwhile
            except Exception as exc:  # noqa: BLE001 - truncated or garbled shards raise many types
                discard([vecs_path, keys_path], f"{type(exc).__name__}: {exc}")
        if not all_keys:
            return
        keys = np.concatenate(all_keys)
        rows = np.concatenate(all_rows)
        _, first = np.unique(keys, return_index=True)
        stem = f"shard-{uuid.uuid4().hex}"
        try:
            write_npy(self.folder / f"{stem}.npy", rows[first])
            write_npy(self.folder / f"{stem}.keys.npy", keys[first])
        except BaseException:
            _discard_quietly(self.folder / f"{stem}.npy", self.folder / f"{stem}.keys.npy")
            raise
        for vecs_path, keys_path in shards:
            _discard_quietly(keys_path, vecs_path)


def _verified(path: Path) -> None:
    """Raise ``ValueError`` naming what is wrong when ``path`` does not match its checksums."""
    if not path.exists():
        raise FileNotFoundError(path)
    reason = verify_checksums(path)
    if reason:
        raise ValueError(reason)


def _discard_quietly(*paths: Path) -> None:
    """Remove files and their checksum sidecars, ignoring the missing."""
    for p in paths:
        for q in (p, p.with_name(p.name + ".sha256")):
            try:
                q.unlink()
            except OSError:
                pass


class _NoClaim:
    """Stands in for a claim that could not be written (nothing to release)."""

    def release(self) -> None:
        pass


class _Claim:
    """A claim file listing the keys one process is embedding, locked while it lives."""

    def __init__(self, path: Path, keys: np.ndarray):
        import fcntl

        data = np.ascontiguousarray(keys, dtype="S16").tobytes()
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        self.path = path
        self._fh = open(path, "rb")
        fcntl.flock(self._fh, fcntl.LOCK_EX)

    def release(self) -> None:
        self.path.unlink(missing_ok=True)
        self._fh.close()


# --------------------------------------------------------------------------- public API


def _check_sentences(sentences: Any, what: str = "sentences") -> list[str]:
    if isinstance(sentences, (str, bytes)):
        raise TypeError(
            f"{what} must be a sequence of strings, not a single {type(sentences).__name__}; wrap it in a list"
        )
    if isinstance(sentences, np.ndarray):
        sentences = sentences.tolist()
    try:
        items = list(sentences)
    except TypeError:
        raise TypeError(f"{what} must be a sequence of strings, got {type(sentences).__name__}") from None
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise TypeError(f"{what}[{i}] must be a str, got {type(s).__name__}: {s!r:.60}")
        try:
            s.encode("utf-8")
        except UnicodeEncodeError as e:  # a lone surrogate: no tokenizer can read it
            raise ValueError(f"{what}[{i}] is not valid Unicode text (a lone surrogate "
                             f"{s[e.start]!r} at character {e.start}): {s!r:.60}") from None
    return items


class _LayerStores:
    """The per-sentence stores of several layers of one model, read and filled together.

    A sentence counts as stored when every layer has it. The first store's lock and claim
    files stand for the group (a single layer is exactly its store).
    """

    def __init__(self, stores: Sequence[_SentenceStore]):
        self.stores = list(stores)
        self.folder = self.stores[0].folder

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (found (n_layers, n), rows (n_layers, n, dim) float32)."""
        found = np.zeros((len(self.stores), len(keys)), dtype=bool)
        rows = np.zeros((len(self.stores), len(keys), self.stores[0].dim), dtype=np.float32)
        for i, store in enumerate(self.stores):
            found[i], rows[i] = store.lookup(keys)
        return found, rows

    def add(self, keys: np.ndarray, rows: np.ndarray, fresh: np.ndarray) -> None:
        """Store ``rows[i][fresh[i]]`` in layer i's store (what it did not have)."""
        for i, store in enumerate(self.stores):
            store.add(keys[fresh[i]], rows[i][fresh[i]])

    def claim(self, keys: np.ndarray):
        return self.stores[0].claim(keys)

    def live_claims(self) -> np.ndarray:
        return self.stores[0].live_claims()


def _embed_layers(
    items: list[str],
    specs: Sequence[ModelSpec],
    device: Any,
    precision: str,
    cache: Any,
    batch_size: int | None,
    progress: bool | None,
) -> np.ndarray:
    """Rows (len(specs), n, dim) of ``items`` for specs that differ only in their layer.

    All layers come from one forward pass per batch; each layer is cached under its own
    key (list file and per-sentence store), so a later call for one layer hits.
    """
    base = specs[0]
    n_out, n, dim = len(specs), len(items), base.dim
    layers = tuple(s.layer for s in specs)
    dev = _resolve_device(device)
    prec = _resolve_precision(precision, dev)
    model_keys = [s.key(prec) for s in specs]

    root = resolve_cache(cache, "embeddings")
    list_paths: list[Path | None] = [None] * n_out
    hits: list[np.ndarray | None] = [None] * n_out
    stores = None
    writable = False
    if root is not None:
        folder = root / base.slug
        list_paths = [folder / f"{_list_key(k, items)}.npy" for k in model_keys]
        for i, path in enumerate(list_paths):
            hits[i] = load_npy(path, shape=(n, dim), dtype=np.float32, finite=True)
            if hits[i] is None and n_out == 1:
                break
        if all(h is not None for h in hits):
            return np.stack(hits)
        stores = _LayerStores([_SentenceStore(folder / f"sentences-{k[:16]}", dim)
                               for k in model_keys])
        if not writable_cache(folder):  # read-only: read what is there, write nothing
            writable, list_paths = False, [None] * n_out
        else:
            writable = True

    # deduplicate: unique texts in first-occurrence order, inverse map back to rows
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(s, len(index)) for s in items), dtype=np.int64, count=n)
    unique = list(index)
    have = np.zeros((n_out, len(unique)), dtype=bool)
    rows = np.empty((n_out, len(unique), dim), dtype=np.float32)
    keys = None
    if stores is not None:
        keys = _sentence_keys(unique)
        have, rows = stores.lookup(keys)

    def encode(which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embed ``unique[which]`` (every layer); fill the rows no store had; return ``fresh``."""
        loaded = _get_model(base, dev, prec)
        new = _encode([unique[i] for i in which], base, loaded, batch_size, progress, layers=layers)
        fresh = ~have[:, which]
        for i in range(n_out):
            rows[i, which[fresh[i]]] = new[i][fresh[i]]
        have[:, which] = True
        return new, fresh

    todo = np.flatnonzero(~have.all(axis=0))
    if stores is not None and writable:
        lock_path = stores.folder.parent / f".{stores.folder.name}.lock"
        if not len(todo) and stores.folder.is_dir() and any(stores.folder.glob("claim-*.keys")):
            # a process killed after storing its rows but before releasing its claim: nothing
            # is left to embed, but its claim file is removed (under the lock, as claims are made)
            with file_lock(lock_path, remove=True):
                stores.live_claims()
    if len(todo) and stores is not None and writable:
        # parallel callers (notebooks on several Dask workers) share the store: under a short
        # lock each one claims the missing sentences nobody else is embedding, embeds them,
        # and waits for the others' claims instead of embedding those twice
        while len(todo):
            claim = None
            with file_lock(lock_path, remove=True):
                again, more = stores.lookup(keys[todo])
                newly = again & ~have[:, todo]
                for i in range(n_out):
                    rows[i, todo[newly[i]]] = more[i][newly[i]]
                have[:, todo] |= again
                todo = todo[~have[:, todo].all(axis=0)]
                if not len(todo):
                    break
                busy = np.isin(keys[todo], stores.live_claims())
                mine = todo[~busy]
                if len(mine):
                    try:
                        claim = stores.claim(keys[mine])
                    except OSError as exc:  # full disk: embed without announcing it
                        warnings.warn(CacheUnavailableWarning(
                            f"could not write a claim file in {stores.folder} ({exc}); embedding "
                            "without sharing the work with other processes"), stacklevel=3)
                        claim = _NoClaim()
            if claim is None:
                time.sleep(0.25)  # the rest is being embedded elsewhere
                continue
            try:
                new, fresh = encode(mine)
                fault_point("embed.encoded")
                try:
                    stores.add(keys[mine], new, fresh)
                except OSError as exc:
                    warnings.warn(CacheUnavailableWarning(
                        f"could not write the embedding store {stores.folder} ({exc})"),
                        stacklevel=3)
            finally:
                claim.release()
            todo = todo[busy]
    elif len(todo):  # no cache, or a read-only one
        encode(todo)
    result = rows[:, inverse]
    for i in range(n_out):
        if hits[i] is not None:
            result[i] = hits[i]
        elif list_paths[i] is not None:
            try:
                write_npy(list_paths[i], result[i])
            except OSError as exc:
                warnings.warn(CacheUnavailableWarning(
                    f"could not write embedding cache {list_paths[i]} ({exc})"), stacklevel=3)
    return result


def _is_sweep(layer: Any) -> bool:
    """Whether ``layer`` asks for several layers (``"all"`` or a list of ints)."""
    if isinstance(layer, str):
        if layer != "all":
            raise ValueError(f"layer must be an int, None, 'all' or a list of ints, got {layer!r}")
        return True
    return isinstance(layer, (list, tuple, np.ndarray))


def _sweep_layers(layer: Any, spec: ModelSpec) -> tuple[int, ...]:
    """The canonical (non-negative) layers of a sweep request, checked against the model."""
    if isinstance(layer, str):  # "all"
        if spec.n_layers <= 0:
            raise ValueError(f"layer='all': the config.json of {spec.name} gives no number of "
                             "hidden layers (num_hidden_layers)")
        return tuple(range(spec.n_layers + 1))
    items = list(np.asarray(layer).tolist()) if isinstance(layer, np.ndarray) else list(layer)
    if not items:
        raise ValueError("layer is an empty list: give at least one layer, or 'all'")
    out = tuple(_check_layer(v, spec.n_layers, spec.name) for v in items)
    if len(set(out)) != len(out):
        raise ValueError(f"layer repeats a layer: {items} are the hidden states {list(out)} "
                         f"(of {spec.n_layers + 1})")
    return out


@fill_doc
def embed_sentences(
    sentences: Sequence[str],
    model: str | os.PathLike = DEFAULT_MODEL,
    device: Any = "auto",
    batch_size: int | None = None,
    cache: bool | str | os.PathLike = True,
    *,
    precision: str = "auto",
    progress: bool | None = None,
    pooling: str | None = None,
    layer: int | str | Sequence[int] | None = None,
    prompt: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
) -> np.ndarray:
    """Embed sentences with a sentence-transformers or any local Hugging Face model (cached).

    Token states are pooled as the model's ``1_Pooling`` config says (mean over the
    attention mask for MPNet and MiniLM) and L2-normalised when the model has a
    ``Normalize`` module (both do), so the output equals
    ``SentenceTransformer(path).encode(sentences)`` (cosine ≥ 0.9999 in float32).

    Any other Hugging Face folder (``config.json``, tokenizer, weights), encoder or decoder
    (from its config; ``AutoModel`` loads it), works too: by default an encoder is
    mean-pooled and a decoder read at its last token, neither normalised; ``pooling``,
    ``layer``, ``prompt``, ``normalize`` and ``max_length`` change that. A decoder without
    a pad token is padded with its end-of-sequence id (masked, so outputs do not change);
    a tokenizer that pads on the left gets position ids counted from each row's first token,
    so every row equals the sentence embedded alone.

    Parameters
    ----------
    sentences : sequence of str of length n_sentences
        Texts; duplicates are embedded once. Truncated to the model's
        ``max_seq_length`` tokens (MPNet 384, MiniLM 256).
    model : str or path-like, default="sentence-transformers/all-mpnet-base-v2"
        Hub name, alias (``"mpnet"``, ``"minilm"``) or local folder; resolved offline by
        :func:`brainllm_utils.weights.resolve_model`.
    %(device)s
    batch_size : int, optional
        Sentences per batch. Default: automatic, by a token budget (CPU: 4,096 padded
        tokens per batch; CUDA: from free GPU memory).
    %(cache)s
        Entries go under ``<cache>/embeddings/<model-slug>/`` (see *Cache* in the module).
    precision : {"auto", "fp32", "bf16", "fp16"}, default="auto"
        Keyword-only. ``"auto"``: bf16 on CUDA (fp16 without bf16 support) and on a CPU
        that runs bf16 natively (AVX512-BF16 or AMX:
        :func:`~brainllm_utils._utils.device.cpu_has_native_bf16`; MPNet about 3× faster
        there, cosine to fp32 ≥ 0.9999 on NSD-like captions), else fp32. The resolved
        precision is part of the cache key; pass ``"fp32"`` for the reference numbers
        (sentence-transformers' own).
    progress : bool, optional
        Keyword-only. Progress bar; default: shown when more than 2,000 sentences must be
        embedded.
    pooling : {"mean", "cls", "last", "max"}, optional
        Keyword-only. Over the attention mask: the mean, the first token, the last
        (non-padding) token, the element-wise maximum. Default: the model's
        sentence-transformers pooling; else ``"last"`` for a decoder, ``"mean"`` for an
        encoder.
    layer : int, "all" or list of int, optional
        Keyword-only. Index into ``hidden_states`` as ``transformers`` returns them
        (``output_hidden_states=True``: 0 = embeddings, ``n_layers`` = last; negatives
        count from the end). Default: ``last_hidden_state`` (today's output for
        sentence-transformers models). ``"all"`` (every layer) or a list of layers is a
        sweep: one forward pass per batch, each layer cached under its own key.
    prompt : str, optional
        Keyword-only. Template containing ``"{caption}"`` exactly once; each sentence is
        put in its place before tokenising (truncation then cuts the end).
    normalize : bool, optional
        Keyword-only. L2-normalise pooled vectors; default: whether the model has a
        sentence-transformers ``Normalize`` module.
    max_length : int, optional
        Keyword-only. Truncate to this many tokens (default the model's
        ``max_seq_length``, else its tokenizer's ``model_max_length``, at most 512).

    Returns
    -------
    X : ndarray of float32 of shape (n_sentences, n_dims) or (n_layers, n_sentences, n_dims)
        One row per input sentence, in input order (768 dims for MPNet, 384 for MiniLM);
        for a sweep, one such matrix per layer, in the order asked (``"all"``: 0 to
        ``n_layers``).

    Raises
    ------
    TypeError
        If ``sentences`` is a single string or holds a non-string, or an option has the
        wrong type.
    ValueError
        If an option is out of range (the message names it and the valid values).
    brainllm_utils.weights.ModelNotFoundError
        If the model is not available locally.

    Examples
    --------
    >>> X = embed_sentences(["A cat on a mat.", "Two dogs play."], model="minilm")  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((2, 384), dtype('float32'))
    >>> S = embed_sentences(["A cat."], "minilm", layer="all", pooling="cls")  # doctest: +SKIP
    >>> S.shape  # doctest: +SKIP
    (7, 1, 384)
    """
    items = _check_sentences(sentences)
    sweep = _is_sweep(layer)
    spec = get_model_spec(model, pooling=pooling, layer=None if sweep else layer, prompt=prompt,
                          normalize=normalize, max_length=max_length)
    specs = [spec]
    if sweep:
        specs = [dataclasses.replace(spec, layer=v) for v in _sweep_layers(layer, spec)]
    n = len(items)
    if n == 0:
        empty = np.zeros((len(specs), 0, spec.dim), dtype=np.float32)
        return empty if sweep else empty[0]
    out = _embed_layers(items, specs, device, precision, cache, batch_size, progress)
    return out if sweep else out[0]


def embed_captions(
    captions_per_image: Sequence[Sequence[str]],
    model: str | os.PathLike = DEFAULT_MODEL,
    device: Any = "auto",
    batch_size: int | None = None,
    cache: bool | str | os.PathLike = True,
    *,
    precision: str = "auto",
    progress: bool | None = None,
    pooling: str | None = None,
    layer: int | str | Sequence[int] | None = None,
    prompt: str | None = None,
    normalize: bool | None = None,
    max_length: int | None = None,
) -> np.ndarray:
    """Embed each image as the mean of its caption embeddings (Doerig et al. 2025).

    Every caption is embedded with :func:`embed_sentences` (all images at once,
    duplicates once, cached); an image's vector is the arithmetic mean of its captions'
    unit vectors and is **not** re-normalised (its norm is ≤ 1 and shrinks as captions
    disagree).

    Parameters
    ----------
    captions_per_image : sequence of sequence of str of length n_images
        Captions of each image (NSD/COCO: usually 5, at least 1).
    model, device, batch_size, cache, precision, progress
        As in :func:`embed_sentences`.
    pooling, layer, prompt, normalize, max_length
        Keyword-only, as in :func:`embed_sentences` (the prompt wraps each caption).

    Returns
    -------
    X : ndarray of float32 of shape (n_images, n_dims) or (n_layers, n_images, n_dims)
        Row i is the mean of image i's caption embeddings; a sweep (``layer="all"`` or a
        list) gives one such matrix per layer.

    Raises
    ------
    ValueError
        If an image has no captions (the message names its index).
    TypeError
        If an image's captions are a bare string or hold a non-string.
    """
    if isinstance(captions_per_image, (str, bytes)):
        raise TypeError("captions_per_image must be a sequence of caption lists, not a string")
    flat: list[str] = []
    counts = []
    for i, caps in enumerate(captions_per_image):
        if isinstance(caps, (str, bytes)):
            raise TypeError(f"captions_per_image[{i}] is a single string; pass a list of captions")
        caps = _check_sentences(caps, what=f"captions_per_image[{i}]")
        if not caps:
            raise ValueError(f"image {i} has no captions (captions_per_image[{i}] is empty)")
        flat.extend(caps)
        counts.append(len(caps))
    vecs = embed_sentences(
        flat, model=model, device=device, batch_size=batch_size, cache=cache, precision=precision,
        progress=progress, pooling=pooling, layer=layer, prompt=prompt, normalize=normalize,
        max_length=max_length,
    )
    if not counts:
        return np.zeros((*vecs.shape[:-2], 0, vecs.shape[-1]), dtype=np.float32)
    counts_arr = np.asarray(counts)
    starts = np.concatenate([[0], np.cumsum(counts_arr)[:-1]])
    sums = np.add.reduceat(vecs.astype(np.float64), starts, axis=vecs.ndim - 2)
    return (sums / counts_arr[:, None]).astype(np.float32)
