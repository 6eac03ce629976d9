"""Sentence and caption embeddings with a fast transformers path and a disk cache.

The numbers equal ``SentenceTransformer(path).encode(sentences)`` for the supported
module stacks (Transformer → Pooling [→ Normalize]); the speed comes from elsewhere:

- every distinct sentence is embedded once (duplicates are removed first);
- sentences are tokenised without padding, sorted by token length and cut into batches
  by a *token budget*, so batches of short captions are large and padding is minimal;
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
  size+mtime of the weights file, pooling, normalisation, ``max_seq_length``, precision) and
  the ordered sentence list. A hit returns without loading the model.
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
    "ModelSpec",
    "embed_sentences",
    "embed_captions",
    "get_model_spec",
    "clear_model_cache",
]

DEFAULT_MODEL = MPNET

_PROGRESS_MIN = 2000  # show a progress bar above this many sentences to embed
_CPU_TOKEN_BUDGET = 4096  # tokens per batch on CPU (padded length × batch size)
_CPU_MAX_BATCH = 256
_CUDA_MAX_BATCH = 4096
_CUDA_CHUNK = 16384  # sentences tokenised at a time by the CUDA producer thread
_MAX_SHARDS = 32  # merge the per-sentence store beyond this many shards
_MODEL_LRU_SIZE = 2
_SUPPORTED_POOLING = ("cls", "max", "mean", "mean_sqrt_len_tokens")
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
    """

    name: str
    path: Path
    max_seq_length: int
    pooling: tuple[str, ...]
    normalize: bool
    do_lower_case: bool
    dim: int
    weights_id: str

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
    raise FileNotFoundError(f"no model.safetensors or pytorch_model.bin in {folder}")


def _parse_pooling(cfg: dict) -> tuple[str, ...]:
    if "pooling_mode" in cfg:
        mode = cfg["pooling_mode"]
        modes = (mode,) if isinstance(mode, str) else tuple(mode)
    else:
        modes = tuple(m for k, m in _LEGACY_POOLING.items() if cfg.get(k, False)) or ("mean",)
    bad = [m for m in modes if m not in _SUPPORTED_POOLING]
    if bad:
        raise NotImplementedError(f"pooling mode(s) {bad} not supported; supported: {_SUPPORTED_POOLING}")
    return modes


def _model_spec(name: str, folder: Path) -> ModelSpec:
    modules = _read_json(folder / "modules.json")
    tf_dir, pooling, normalize = folder, ("mean",), False
    if modules is not None:
        kinds = [(m.get("type", "").rsplit(".", 1)[-1], m.get("path", "")) for m in modules]
        names = [k for k, _ in kinds]
        unsupported = [k for k in names if k not in ("Transformer", "Pooling", "Normalize")]
        if unsupported or names[:1] != ["Transformer"]:
            raise NotImplementedError(
                f"{name}: module stack {names} not supported (need Transformer, Pooling[, Normalize])"
            )
        tf_dir = folder / kinds[0][1] if kinds[0][1] else folder
        normalize = "Normalize" in names
        pool_path = next((p for k, p in kinds if k == "Pooling"), None)
        if pool_path is not None:
            cfg = _read_json(folder / pool_path / "config.json") or {}
            pooling = _parse_pooling(cfg)
    config = _read_json(tf_dir / "config.json")
    if config is None:
        raise FileNotFoundError(f"{name}: no config.json in {tf_dir}")
    hidden = int(config.get("hidden_size") or config.get("d_model") or config["dim"])
    sbert = _read_json(tf_dir / "sentence_bert_config.json") or {}
    max_len = sbert.get("max_seq_length")
    if max_len is None:
        tok_cfg = _read_json(tf_dir / "tokenizer_config.json") or {}
        max_len = tok_cfg.get("model_max_length") or 512
        if max_len > 100_000:
            max_len = 512
    return ModelSpec(
        name=name,
        path=tf_dir,
        max_seq_length=int(max_len),
        pooling=pooling,
        normalize=normalize,
        do_lower_case=bool(sbert.get("do_lower_case", False)),
        dim=hidden * len(pooling),
        weights_id=_weights_id(tf_dir),
    )


def get_model_spec(model: str | os.PathLike = DEFAULT_MODEL) -> ModelSpec:
    """Resolve ``model`` offline and read its sentence-encoder configuration.

    Parameters
    ----------
    model : str or path-like, default="sentence-transformers/all-mpnet-base-v2"
        Hub name, alias (``"mpnet"``, ``"minilm"``) or local folder; see
        :func:`brainllm_utils.weights.resolve_model`.

    Returns
    -------
    spec : ModelSpec
        The encoder's identity and configuration (no weights loaded).
    """
    folder = resolve_model(model)
    name = canonical_name(os.fspath(model))
    if Path(name).expanduser().is_dir():
        name = str(folder)
    return _model_spec(name, folder)


# --------------------------------------------------------------------------- devices


def _torch():
    import torch

    return torch


def _resolve_precision(precision: str, device: str) -> str:
    if precision in (None, "auto"):
        if device.startswith("cuda"):
            return "bf16" if _torch().cuda.is_bf16_supported() else "fp16"
        return "fp32"
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


def _cuda_token_budget(spec: ModelSpec, loaded: _Loaded) -> int:
    """Tokens per batch from free GPU memory (inference activations only, generous margin)."""
    torch = _torch()
    cfg = loaded.model.config
    hidden = int(getattr(cfg, "hidden_size", 768))
    inter = int(getattr(cfg, "intermediate_size", 4 * hidden))
    heads = int(getattr(cfg, "num_attention_heads", 12))
    nbytes = 2 if loaded.precision in ("bf16", "fp16") else 4
    # live activations per token: a few hidden-size tensors, the MLP expansion, attention
    # rows (heads × padded length, up to max_seq_length) and the fp32 pooled copy
    per_token = nbytes * (8 * hidden + 2 * inter + 2 * heads * min(spec.max_seq_length, 128)) + 4 * hidden
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
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    for idx in chunk_order:
        batch_texts = [texts[i] for i in idx]
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
    """Pool token states (batch, len, d) under ``mask`` (batch, len) → (batch, d·len(modes))."""
    torch = _torch()
    hidden = hidden.float()
    maskf = mask.unsqueeze(-1).to(hidden.dtype)
    out = []
    for mode in modes:
        if mode == "cls":
            out.append(hidden[:, 0])
        elif mode == "max":
            out.append(hidden.masked_fill(maskf == 0, float("-inf")).max(dim=1).values)
        else:
            total = (hidden * maskf).sum(dim=1)
            count = torch.clamp(maskf.sum(dim=1), min=1e-9)
            out.append(total / (count if mode == "mean" else torch.sqrt(count)))
    return out[0] if len(out) == 1 else torch.cat(out, dim=-1)


def _encode(
    texts: Sequence[str],
    spec: ModelSpec,
    loaded: _Loaded,
    batch_size: int | None,
    progress: bool | None,
) -> np.ndarray:
    """Embed distinct ``texts`` with the loaded model; float32 (n, dim) in input order."""
    torch = _torch()
    from tqdm.auto import tqdm

    n = len(texts)
    out = np.empty((n, spec.dim), dtype=np.float32)
    if n == 0:
        return out
    cuda = loaded.device.startswith("cuda")
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}")
    if cuda:
        budget, max_batch, chunk = _cuda_token_budget(spec, loaded), _CUDA_MAX_BATCH, _CUDA_CHUNK
    else:
        budget, max_batch, chunk = _CPU_TOKEN_BUDGET, _CPU_MAX_BATCH, None
    batches = _iter_batches(texts, loaded.tokenizer, spec, budget, max_batch, batch_size, chunk, pin=cuda)
    if cuda:
        batches = _threaded(batches)
    show = n > _PROGRESS_MIN if progress is None else bool(progress)
    bar = tqdm(total=n, unit="sent", desc=f"embed {spec.slug}", disable=not show)
    pending: list[tuple[np.ndarray, Any]] = []
    pending_bytes, flush_bytes = 0, 512 * 2**20

    def flush():
        nonlocal pending_bytes
        for idx, emb in pending:
            out[idx] = emb.cpu().numpy()
        pending.clear()
        pending_bytes = 0

    try:
        with torch.inference_mode():
            for idx, ids, mask in batches:
                ids = ids.to(loaded.device, non_blocking=True)
                mask = mask.to(loaded.device, non_blocking=True)
                hidden = loaded.model(input_ids=ids, attention_mask=mask).last_hidden_state
                emb = _pool(hidden, mask, spec.pooling)
                if spec.normalize:
                    emb = torch.nn.functional.normalize(emb, p=2, dim=1)
                if cuda:  # keep results on the GPU; copy back in large, rare flushes
                    pending.append((idx, emb))
                    pending_bytes += emb.numel() * 4
                    if pending_bytes > flush_bytes:
                        flush()
                else:
                    out[idx] = emb.numpy()
                bar.update(len(idx))
            flush()
    finally:
        bar.close()
    return out


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
) -> np.ndarray:
    """Embed sentences with a sentence-transformers model (offline, cached).

    Token states are pooled as the model's ``1_Pooling`` config says (mean over the
    attention mask for MPNet and MiniLM) and L2-normalised when the model has a
    ``Normalize`` module (both do), so the output equals
    ``SentenceTransformer(path).encode(sentences)`` (cosine ≥ 0.9999 in float32).

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
        Keyword-only. ``"auto"``: fp32 on CPU, bf16 on CUDA (fp16 without bf16 support).
        Part of the cache key.
    progress : bool, optional
        Keyword-only. Progress bar; default: shown when more than 2,000 sentences must be
        embedded.

    Returns
    -------
    X : ndarray of float32 of shape (n_sentences, n_dims)
        One row per input sentence, in input order (768 dims for MPNet, 384 for MiniLM).

    Raises
    ------
    TypeError
        If ``sentences`` is a single string or holds a non-string.
    brainllm_utils.weights.ModelNotFoundError
        If the model is not available locally.

    Examples
    --------
    >>> X = embed_sentences(["A cat on a mat.", "Two dogs play."], model="minilm")  # doctest: +SKIP
    >>> X.shape, X.dtype  # doctest: +SKIP
    ((2, 384), dtype('float32'))
    """
    items = _check_sentences(sentences)
    spec = get_model_spec(model)
    n = len(items)
    if n == 0:
        return np.zeros((0, spec.dim), dtype=np.float32)
    dev = _resolve_device(device)
    prec = _resolve_precision(precision, dev)
    model_key = spec.key(prec)

    root = resolve_cache(cache, "embeddings")
    list_path = store = None
    writable = False
    if root is not None:
        folder = root / spec.slug
        list_path = folder / f"{_list_key(model_key, items)}.npy"
        hit = load_npy(list_path, shape=(n, spec.dim), dtype=np.float32, finite=True)
        if hit is not None:
            return hit
        store = _SentenceStore(folder / f"sentences-{model_key[:16]}", spec.dim)
        if not writable_cache(folder):  # read-only: read what is there, write nothing
            writable, list_path = False, None
        else:
            writable = True

    # deduplicate: unique texts in first-occurrence order, inverse map back to rows
    index: dict[str, int] = {}
    inverse = np.fromiter((index.setdefault(s, len(index)) for s in items), dtype=np.int64, count=n)
    unique = list(index)
    found = np.zeros(len(unique), dtype=bool)
    rows = np.empty((len(unique), spec.dim), dtype=np.float32)
    keys = None
    if store is not None:
        keys = _sentence_keys(unique)
        found, rows = store.lookup(keys)
    todo = np.flatnonzero(~found)
    if store is not None and writable:
        lock_path = store.folder.parent / f".{store.folder.name}.lock"
        if not len(todo) and store.folder.is_dir() and any(store.folder.glob("claim-*.keys")):
            # a process killed after storing its rows but before releasing its claim: nothing
            # is left to embed, but its claim file is removed (under the lock, as claims are made)
            with file_lock(lock_path, remove=True):
                store.live_claims()
    if len(todo) and store is not None and writable:
        # parallel callers (notebooks on several Dask workers) share the store: under a short
        # lock each one claims the missing sentences nobody else is embedding, embeds them,
        # and waits for the others' claims instead of embedding those twice
        while len(todo):
            claim = None
            with file_lock(lock_path, remove=True):
                again, more = store.lookup(keys[todo])
                rows[todo[again]] = more[again]
                todo = todo[~again]
                if not len(todo):
                    break
                busy = np.isin(keys[todo], store.live_claims())
                mine = todo[~busy]
                if len(mine):
                    try:
                        claim = store.claim(keys[mine])
                    except OSError as exc:  # full disk: embed without announcing it
                        warnings.warn(CacheUnavailableWarning(
                            f"could not write a claim file in {store.folder} ({exc}); embedding "
                            "without sharing the work with other processes"), stacklevel=2)
                        claim = _NoClaim()
            if claim is None:
                time.sleep(0.25)  # the rest is being embedded elsewhere
                continue
            try:
                new = _encode([unique[i] for i in mine], spec, _get_model(spec, dev, prec),
                              batch_size, progress)
                rows[mine] = new
                fault_point("embed.encoded")
                try:
                    store.add(keys[mine], new)
                except OSError as exc:
                    warnings.warn(CacheUnavailableWarning(
                        f"could not write the embedding store {store.folder} ({exc})"), stacklevel=2)
            finally:
                claim.release()
            todo = todo[busy]
    elif len(todo):  # no cache, or a read-only one
        loaded = _get_model(spec, dev, prec)
        rows[todo] = _encode([unique[i] for i in todo], spec, loaded, batch_size, progress)
    result = rows[inverse]
    if list_path is not None:
        try:
            write_npy(list_path, result)
        except OSError as exc:
            warnings.warn(CacheUnavailableWarning(f"could not write embedding cache {list_path} ({exc})"),
                          stacklevel=2)
    return result


def embed_captions(
    captions_per_image: Sequence[Sequence[str]],
    model: str | os.PathLike = DEFAULT_MODEL,
    device: Any = "auto",
    batch_size: int | None = None,
    cache: bool | str | os.PathLike = True,
    *,
    precision: str = "auto",
    progress: bool | None = None,
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

    Returns
    -------
    X : ndarray of float32 of shape (n_images, n_dims)
        Row i is the mean of image i's caption embeddings.

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
        flat, model=model, device=device, batch_size=batch_size, cache=cache, precision=precision, progress=progress
    )
    if not counts:
        return np.zeros((0, vecs.shape[1]), dtype=np.float32)
    counts_arr = np.asarray(counts)
    starts = np.concatenate([[0], np.cumsum(counts_arr)[:-1]])
    sums = np.add.reduceat(vecs.astype(np.float64), starts, axis=0)
    return (sums / counts_arr[:, None]).astype(np.float32)
