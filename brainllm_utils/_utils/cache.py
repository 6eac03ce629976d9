"""The one cache: where derived files live, how they are keyed, and what happens to a bad one.

Every module that caches goes through here, with one policy:

- **Where.** ``cache=True`` → ``get_cache_dir()/<kind>``; a path → ``<path>/<kind>`` (a path is
  a cache *root*, like ``$BRAINLLM_CACHE``); ``False``/``None`` → no disk cache
  (:func:`resolve_cache`).
- **Keys.** :func:`cache_key` hashes the kind, its version (:data:`CACHE_VERSIONS`, the one
  version table) and every input that changes the result: arguments (canonical JSON),
  arrays (dtype, shape and content streamed block by block, never copied whole:
  :func:`array_digest`), files by identity (path, size, modification time:
  :func:`file_identity`).
- **Writes** are atomic (temporary file, ``fsync``, rename): an interrupted write never
  leaves an entry that looks complete. Temporary files carry their writer's host and process
  id; those of a killed writer are removed when the cache next resolves the folder
  (:func:`resolve_cache` → :func:`~brainllm_utils._utils.paths.remove_stale_temps`), and on
  any exception at once. A full disk is a Python error checked before large writes
  (:class:`~brainllm_utils._utils.paths.CacheFullError`), never a ``SIGBUS``
  (:func:`~brainllm_utils._utils.paths.allocate_npy`); a read-only or full cache folder
  degrades to uncached work with one warning (:func:`writable_cache`, :func:`save_npy`).
- **Checksums.** Every ``.npy`` entry has a sidecar ``<file>.sha256`` (JSON: the sha256 of
  each 64 MiB block of the file, :data:`CHECKSUM_BLOCK`), written before the data is renamed
  into place (a reader never sees the data without it; a file without one is discarded).
  :func:`load_npy` verifies every block before returning, except for a memory map of a file
  over :data:`VERIFY_FULL_MAX` bytes (a 13 GB beta average), which is not re-read on open: it
  comes back as a :class:`VerifiedArray`, whose first and last blocks are verified on open
  and every other block the first time something reads it (indexing verifies the blocks
  the index touches; whole-array use verifies all). A block found damaged then raises
  :class:`CorruptCacheError` (the entry is deleted; a rerun recomputes it). Opening a lazy
  map hashes two blocks (128 MiB) whatever the file's size. Measured on a 1 GiB float32
  entry, page cache warm, 2-vCPU VM: full check 1.07 s, hashing at write 1.3 s on top of
  3.3 s for ``np.save``.
- **A corrupt entry** (unreadable, truncated, wrong shape or dtype, non-finite where finite is
  required) is reported with a :class:`CorruptCacheWarning`, deleted, and recomputed by the
  caller (:func:`load_entry` returns ``None``). A checksum mismatch on open is such a corrupt
  entry (the warning names the file and the block); one found later, as a lazily verified
  map is read, is a :class:`CorruptCacheError`: the numbers it would give are never returned.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sys
import threading
import time
import warnings
from pathlib import Path, PurePath
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
from numpy.lib.array_utils import byte_bounds

from .docs import fill_doc
from .paths import (
    atomic_path,
    atomic_write_text,
    check_free_space,
    fault_point,
    get_cache_dir,
    remove_stale_temps,
)

__all__ = [
    "CACHE_VERSIONS",
    "CorruptCacheWarning",
    "CorruptCacheError",
    "VerifiedArray",
    "CacheUnavailableWarning",
    "CHECKSUM_BLOCK",
    "VERIFY_FULL_MAX",
    "VERIFY_SAMPLED_BLOCKS",
    "resolve_cache",
    "writable_cache",
    "write_checksums",
    "verify_checksums",
    "checksum_path",
    "write_npy",
    "checked_write",
    "verified_loader",
    "cache_key",
    "array_digest",
    "file_identity",
    "FileIdentity",
    "load_entry",
    "discard",
    "load_npy",
    "save_npy",
    "cached_arrays",
    "cached_json",
]

#: The one version table: bump a kind's number when the format or the meaning of its entries
#: changes, and every old entry of that kind is ignored (it has another key).
CACHE_VERSIONS = {
    # 3: .npy entries carry checksum sidecars (older entries, without, are simply not found)
    "betas": 4,             # NSD.betas: averaged betas, nsdIds of the rows, partial-data record (4: checksummed)
    "embeddings": 3,        # embed_sentences: one call's rows, and the per-sentence store
    "pos_tags": 3,          # features: part-of-speech tags of captions (3: checksummed JSON)
    "encoding": 3,          # chapters 03/04: encoders, decoders, variance partitions
    "searchlight": 3,       # chapter 02: searchlight maps
    "vision_images": 3,     # vision: decoded, cropped COCO images
    "activations": 3,       # vision: network activations
    "features": 3,          # vision: comparison-model features
    "checkpoints": 2,       # vision: BLT training runs
    "transfer": 3,          # chapter 05: transfer readouts
    "sample_sets": 1,       # rsa: saved partitions into sample sets (a result; same policy)
    "notebooks": 1,         # book.batch: executed notebooks, skipped when their key matches
    "dataset": 1,           # chapters: the key of a data root
}

_BLOCK = 1 << 24  # bytes hashed at a time from a non-contiguous array

#: Bytes per checksummed block of a cache file.
CHECKSUM_BLOCK = 64 * 2**20
#: Memory maps of files up to this size are verified in full on load; larger ones lazily
#: (:class:`VerifiedArray`).
VERIFY_FULL_MAX = 1 << 30
#: Blocks verified on a load of a large file besides its first and last.
VERIFY_SAMPLED_BLOCKS = 2
_CONTENT_HASH_MAX = 64 * 2**20  # file_identity(content=True) hashes files up to this size
_opens = 0  # loads of large entries so far (rotates the sampled blocks)
#: Files whose every block this process has verified: path → the stat identity it had (inode,
#: size, mtime and ctime of the file and of its sidecar). A file is immutable once renamed into
#: place, so a later load that finds the same identity skips the hashing (a cached betas file is
#: read dozens of times per chapter). Only files already older than :data:`_STABLE_S` when
#: verified are remembered: a change made later gets a ctime that cannot equal the old one even
#: with the kernel's coarse file clock.
_VERIFIED: dict[str, tuple] = {}
_STABLE_S = 1.0
_unwritable: set[str] = set()  # folders already warned about


class CorruptCacheWarning(UserWarning):
    """A cache entry could not be used; it was deleted and is being recomputed."""


class CacheUnavailableWarning(UserWarning):
    """A cache folder cannot be written (read-only, full): the work runs uncached."""


# --------------------------------------------------------------------------- where
def resolve_cache(cache, kind: str) -> Path | None:
    """The folder of ``kind``'s entries for a ``cache=`` argument, or ``None`` (no disk cache).

    Parameters
    ----------
    cache : bool, str or path-like or None
        ``True``: ``get_cache_dir()/kind`` (``$BRAINLLM_CACHE`` or the repository's
        ``data/cache``); a path: ``<path>/kind``; ``False`` or ``None``: no disk cache.
    kind : str
        A key of :data:`CACHE_VERSIONS`.

    Returns
    -------
    pathlib.Path or None
        The folder (not created). Temporary files that killed writers left in it are
        removed (:func:`~brainllm_utils._utils.paths.remove_stale_temps`). ``None`` also
        when ``cache=True`` and the cache root cannot be created (a read-only parent):
        a :class:`CacheUnavailableWarning` says so once and the caller works uncached.
    """
    _check_kind(kind)
    if cache is None or cache is False:
        return None
    if cache is True:
        try:
            folder = get_cache_dir() / kind
        except OSError as err:  # the cache root cannot be created (read-only parent, a file)
            root = os.environ.get("BRAINLLM_CACHE") or "the default cache folder"
            if root not in _unwritable:
                _unwritable.add(root)
                warnings.warn(CacheUnavailableWarning(
                    f"cache folder {root} cannot be created ({err.strerror or err}); "
                    "working without a cache"), stacklevel=_caller_stacklevel())
            return None
    elif isinstance(cache, (str, os.PathLike)):
        folder = Path(cache).expanduser() / kind
    else:
        raise TypeError(f"cache={cache!r}: expected True, False or a folder path")
    remove_stale_temps(folder)
    return folder


def writable_cache(folder: Path) -> bool:
    """Whether entries can be written in ``folder`` (created if missing); warn once if not.

    A read-only (or otherwise unwritable) folder is reported once per folder and process
    with a :class:`CacheUnavailableWarning` naming it; the caller then works uncached
    (entries already there may still be read).

    Parameters
    ----------
    folder : pathlib.Path
        A cache folder (from :func:`resolve_cache`).

    Returns
    -------
    bool
        ``True`` when a file could be created in it.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-probe.{os.getpid()}.{os.urandom(6).hex()}.tmp"
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink(missing_ok=True)
        return True
    except OSError as err:
        if str(folder) not in _unwritable:
            _unwritable.add(str(folder))
            warnings.warn(CacheUnavailableWarning(
                f"cache folder {folder} cannot be written ({err.strerror or err}); "
                "working without a cache there"), stacklevel=_caller_stacklevel())
        return False


def _check_kind(kind: str) -> None:
    if kind not in CACHE_VERSIONS:
        raise ValueError(f"unknown cache kind {kind!r}; known: {sorted(CACHE_VERSIONS)}")


# --------------------------------------------------------------------------- keys
@dataclasses.dataclass(frozen=True)
class FileIdentity:
    """A file as a cache key sees it: resolved path, size, modification time (ns), inode.

    Attributes
    ----------
    path : str
        The resolved (absolute) path.
    size : int
        Size in bytes.
    mtime_ns : int
        Modification time in nanoseconds.
    inode : int
        The inode number (a replaced file has another, whatever its time stamp).
    sha256 : str
        The content's sha256 when asked for (``content=True``), else ``""``.
    """

    path: str
    size: int
    mtime_ns: int
    inode: int = 0
    sha256: str = ""


def file_identity(path: str | os.PathLike, content: bool = False) -> FileIdentity:
    """The identity of a file (no byte of it is read unless ``content``).

    Parameters
    ----------
    path : str or path-like
        An existing file.
    content : bool, default=False
        Also hash the content (files up to 64 MiB; larger ones keep ``sha256=""``), so an
        edit that keeps the size and restores the time stamp still changes the identity.

    Returns
    -------
    FileIdentity
        Resolved path, size, modification time and inode; a changed or replaced file has
        another.

    Raises
    ------
    FileNotFoundError
        Naming the missing file.
    """
    p = Path(path)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise FileNotFoundError(f"{p}: missing (needed to key a cache entry)") from None
    digest = ""
    if content and st.st_size <= _CONTENT_HASH_MAX:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        digest = h.hexdigest()
    return FileIdentity(str(p.resolve()), int(st.st_size), int(st.st_mtime_ns), int(st.st_ino), digest)


def _feed_array(h, a: np.ndarray) -> None:
    h.update(f"ndarray:{a.dtype.str}:{a.shape}".encode())
    if a.size == 0:
        return
    if a.flags.c_contiguous and a.dtype.hasobject is False:
        h.update(memoryview(a).cast("B"))  # no copy (a memmap is read page by page)
        return
    if a.dtype.hasobject:
        h.update(json.dumps(a.tolist(), default=str).encode())
        return
    rows = max(1, _BLOCK // max(1, a[:1].nbytes))
    for i in range(0, a.shape[0], rows):
        h.update(memoryview(np.ascontiguousarray(a[i:i + rows])).cast("B"))


def _feed(h, part) -> None:
    """Feed ``part`` into the hash ``h`` with a type tag, so that different values never collide."""
    if part is None or isinstance(part, (bool, str)):
        h.update(f"{type(part).__name__}:{json.dumps(part)}".encode())
    elif isinstance(part, (int, np.integer)):
        h.update(f"int:{int(part)}".encode())
    elif isinstance(part, (float, np.floating)):
        v = float(part)
        h.update(f"float:{v!r}".encode() if math.isfinite(v) else f"float:{v}".encode())
    elif isinstance(part, bytes):
        h.update(b"bytes:%d:" % len(part))
        h.update(part)
    elif isinstance(part, np.ndarray):
        _feed_array(h, part)
    elif isinstance(part, FileIdentity):
        h.update(f"file:{part.path}:{part.size}:{part.mtime_ns}:{part.inode}:{part.sha256}".encode())
    elif isinstance(part, PurePath):
        h.update(f"path:{part}".encode())
    elif dataclasses.is_dataclass(part) and not isinstance(part, type):
        h.update(f"dataclass:{type(part).__name__}".encode())
        _feed(h, dataclasses.asdict(part))
    elif isinstance(part, Mapping):
        h.update(f"mapping:{len(part)}".encode())
        for k in sorted(part, key=str):
            _feed(h, str(k))
            _feed(h, part[k])
    elif isinstance(part, (list, tuple)):
        h.update(f"seq:{len(part)}".encode())
        for x in part:
            _feed(h, x)
    elif isinstance(part, (set, frozenset)):
        _feed(h, sorted(part, key=repr))
    else:
        raise TypeError(f"cannot key a cache entry on {type(part).__name__} ({part!r:.60})")
    h.update(b"\0")


def cache_key(kind: str, *parts, length: int = 24) -> str:
    """A hex key of ``kind`` (and its version) and every input in ``parts``.

    Parameters
    ----------
    kind : str
        A key of :data:`CACHE_VERSIONS`; its version is part of the key.
    *parts
        Everything that changes the result: ``None``, bools, numbers, strings, bytes, arrays
        (content streamed, never copied whole), :class:`FileIdentity`, paths, dataclasses,
        and lists, tuples, sets and mappings of these. Other types raise ``TypeError``.
    length : int, default=24
        Hex digits kept (at most 64).

    Returns
    -------
    str
        Lower-case hex digits of a sha256.

    Examples
    --------
    >>> cache_key("betas", "subj01", [1, 2]) == cache_key("betas", "subj01", [1, 2])
    True
    >>> cache_key("betas", "subj01", [1, 2]) == cache_key("betas", "subj01", [1, 3])
    False
    """
    _check_kind(kind)
    h = hashlib.sha256(f"brainllm-cache:{kind}:v{CACHE_VERSIONS[kind]}".encode())
    for p in parts:
        _feed(h, p)
    return h.hexdigest()[: int(length)]


def array_digest(a, length: int = 64) -> str:
    """sha256 of an array's dtype, shape and content, streamed (a memory map is never copied).

    Parameters
    ----------
    a : array-like
        Any array (a memmap is read page by page).
    length : int, default=64
        Hex digits kept.

    Returns
    -------
    str
        Lower-case hex digits of the sha256.
    """
    h = hashlib.sha256()
    _feed_array(h, a if isinstance(a, np.ndarray) else np.asarray(a))
    return h.hexdigest()[: int(length)]


# --------------------------------------------------------------------------- checksums
def checksum_path(path: str | os.PathLike) -> Path:
    """The checksum sidecar of a cache file: ``<file>.sha256``.

    Parameters
    ----------
    path : str or path-like
        The cache file.

    Returns
    -------
    pathlib.Path
        The sidecar's path.
    """
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def _block_hashes(fh, size: int, blocks) -> dict[int, str]:
    out = {}
    for b in blocks:
        fh.seek(b * CHECKSUM_BLOCK)
        h = hashlib.sha256()
        left = min(CHECKSUM_BLOCK, size - b * CHECKSUM_BLOCK)
        while left > 0:
            chunk = fh.read(min(left, 1 << 22))
            if not chunk:
                break
            h.update(chunk)
            left -= len(chunk)
        out[b] = h.hexdigest()
    return out


def write_checksums(path: str | os.PathLike, target: str | os.PathLike | None = None) -> Path:
    """Write the sidecar of ``path``: the sha256 of each :data:`CHECKSUM_BLOCK` bytes.

    Written atomically. Cache writers hash the temporary file and write the sidecar of the
    final file *before* renaming the data onto it (``target``), so that a reader never sees
    the data without its checksums.

    Parameters
    ----------
    path : str or path-like
        A complete file (the data to hash).
    target : str or path-like, optional
        The file the sidecar belongs to (default: ``path``).

    Returns
    -------
    pathlib.Path
        The sidecar (:func:`checksum_path`).
    """
    path = Path(path)
    size = path.stat().st_size
    n = -(-size // CHECKSUM_BLOCK)
    with open(path, "rb") as fh:
        hashes = _block_hashes(fh, size, range(n))
    doc = {"algorithm": "sha256", "block": CHECKSUM_BLOCK, "size": size,
           "blocks": [hashes[b] for b in range(n)]}
    return atomic_write_text(checksum_path(target if target is not None else path), json.dumps(doc))


def _sidecar(path: Path) -> tuple[list[str], int]:
    """``(block hashes, size)`` from the sidecar of ``path``; ``ValueError(reason)`` when it is
    missing, unreadable, of another format, or disagrees with the file's size."""
    side = checksum_path(path)
    try:
        doc = json.loads(side.read_text())
        expected = [str(h) for h in doc["blocks"]]
        if doc.get("algorithm") != "sha256" or int(doc["block"]) != CHECKSUM_BLOCK:
            raise ValueError(f"checksum file {side.name} of another format")
        size = int(doc["size"])
    except FileNotFoundError:
        raise ValueError(f"no checksum file {side.name} (an interrupted or older write)") from None
    except (KeyError, TypeError) as err:
        raise ValueError(f"unreadable checksum file {side.name} ({err})") from None
    except ValueError as err:
        if "checksum file" in str(err):
            raise
        raise ValueError(f"unreadable checksum file {side.name} ({err})") from None
    actual = path.stat().st_size
    if actual != size or len(expected) != -(-size // CHECKSUM_BLOCK):
        raise ValueError(f"{actual} bytes, its checksum file says {size}")
    return expected, size


def verify_checksums(path: str | os.PathLike, full: bool | None = None) -> str | None:
    """Check a cache file against its sidecar; ``None`` when it matches, else the reason.

    Parameters
    ----------
    path : str or path-like
        The cache file.
    full : bool, optional
        ``True``: every block; ``False``: the first, the last and
        :data:`VERIFY_SAMPLED_BLOCKS` others (rotating from one call to the next); ``None``:
        every block of a file up to :data:`VERIFY_FULL_MAX` bytes, sampled beyond.

    Returns
    -------
    str or None
        ``None``, or what is wrong (no sidecar, size, the first block that differs).
    """
    global _opens
    path = Path(path)
    identity = _identity(path)
    if identity is not None and _VERIFIED.get(str(path)) == identity:
        return None
    try:
        expected, size = _sidecar(path)
    except ValueError as err:
        return str(err)
    n = len(expected)
    every = full or (full is None and size <= VERIFY_FULL_MAX) or n <= VERIFY_SAMPLED_BLOCKS + 2
    if every:
        blocks = list(range(n))
    else:
        _opens += 1
        inner = n - 2
        picks = {1 + (_opens * VERIFY_SAMPLED_BLOCKS + i) % inner for i in range(VERIFY_SAMPLED_BLOCKS)}
        blocks = sorted({0, n - 1} | picks)
    with open(path, "rb") as fh:
        got = _block_hashes(fh, size, blocks)
    for b in blocks:
        if got[b] != expected[b]:
            lo, hi = b * CHECKSUM_BLOCK, min(size, (b + 1) * CHECKSUM_BLOCK)
            return f"checksum mismatch in block {b} (bytes {lo}-{hi}) of {path.name}"
    if every and identity is not None and identity == _identity(path) \
            and time.time() - max(identity[3], identity[7]) / 1e9 > _STABLE_S:
        _VERIFIED[str(path)] = identity
    return None


def _identity(path: Path) -> tuple | None:
    """The stat identity of a cache file and its sidecar (None when either is missing)."""
    try:
        a, b = path.stat(), checksum_path(path).stat()
    except OSError:
        return None
    return (a.st_ino, a.st_size, a.st_mtime_ns, a.st_ctime_ns, b.st_ino, b.st_size, b.st_mtime_ns, b.st_ctime_ns)


# --------------------------------------------------------------------------- lazy verification
class CorruptCacheError(ValueError):
    """A block of a memory-mapped cache entry does not match its checksum (found as it was read).

    The entry has been deleted when this is raised: the analysis that was reading it stops
    (its numbers would be wrong) and a rerun recomputes the entry.
    """


def _bounding_key(key) -> tuple:
    """A basic (view-only) index that selects a superset of what ``key`` reads.

    Integers become one-element slices (so the result is a view, never a scalar); integer
    arrays the slice from their smallest to their largest entry (the whole axis when one is
    negative); boolean arrays whole axes; slices, ``None`` and ``Ellipsis`` stay. The real indexing has already run (and raised on a bad key).
    """
    out = []
    for k in key if isinstance(key, tuple) else (key,):
        if k is None or k is Ellipsis or isinstance(k, slice):
            out.append(k)
            continue
        if isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            k = int(k)
            out.append(slice(k, k + 1 if k != -1 else None))  # a view, never a scalar
            continue
        a = np.asarray(k)
        if a.dtype == bool:
            out.extend([None] if a.ndim == 0 else [slice(None)] * a.ndim)
        elif a.size == 0:
            out.append(slice(0, 0))
        elif a.min() < 0:
            out.append(slice(None))
        else:
            out.append(slice(int(a.min()), int(a.max()) + 1))
    return tuple(out)


def _plain(x):
    """``x`` with every :class:`VerifiedArray` (also inside lists, tuples, dicts) verified and unwrapped."""
    if isinstance(x, VerifiedArray):
        return x.verified()
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    return x


class VerifiedArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A read-only memory map of a large cache entry whose blocks are verified as they are read.

    Opening a 13 GB entry does not re-read it: each :data:`CHECKSUM_BLOCK` block of the file
    is hashed the first time something reads it, and never again in this process.
    Indexing (``a[rows]``, ``a[:, cols]``, any basic or fancy index) verifies the blocks that
    hold the selected elements and returns a plain ndarray (a view of the verified map, or a
    copy); whole-array use (``np.asarray``, ufuncs and operators, numpy functions,
    ``ndarray`` methods and attributes other than ``shape``, ``dtype``, ``ndim``, ``size``,
    ``nbytes``) verifies every block first. A block that does not match raises
    :class:`CorruptCacheError` naming the file and the block, after deleting the entry, so a
    damaged cache never yields numbers.

    Not an ``ndarray`` subclass on purpose: code that needs an ``ndarray`` gets one through
    ``np.asarray`` (verified), and nothing can read the map's memory around the check.

    Parameters
    ----------
    path : str or path-like
        The ``.npy`` entry.
    expected : sequence of str
        The sha256 of each block (from its sidecar).
    companions : sequence of path-like, default=()
        Other files of the entry, deleted with it when a block is corrupt.
    """

    def __init__(self, path, expected: Sequence[str], companions: Sequence[os.PathLike] = ()):
        self.path = Path(path)
        self._map = np.load(self.path, mmap_mode="r", allow_pickle=False)
        self._array = self._map.view(np.ndarray)
        self._raw = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._start = byte_bounds(self._array)[0] if self._array.size else 0
        self._offset = int(self._map.offset)
        self._expected = list(expected)
        self._block = CHECKSUM_BLOCK
        self._ok = np.zeros(len(self._expected), dtype=bool)
        self._lock = threading.Lock()
        self._companions = [Path(p) for p in companions]
        if -(-self._raw.size // self._block) != len(self._expected):
            raise ValueError(f"{self._raw.size} bytes, {len(self._expected)} checksummed blocks")

    # ---- metadata that reads no data
    @property
    def shape(self) -> tuple[int, ...]:
        """The array's shape (reads no data)."""
        return self._array.shape

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype (reads no data)."""
        return self._array.dtype

    @property
    def ndim(self) -> int:
        """The number of dimensions (reads no data)."""
        return self._array.ndim

    @property
    def size(self) -> int:
        """The number of elements (reads no data)."""
        return self._array.size

    @property
    def nbytes(self) -> int:
        """The data's size in bytes (reads no data)."""
        return self._array.nbytes

    def __len__(self) -> int:
        return len(self._array)

    def __repr__(self) -> str:
        done = int(self._ok.sum())
        return (f"VerifiedArray({self.path.name}, shape={self.shape}, dtype={self.dtype}, "
                f"{done}/{self._ok.size} blocks verified)")

    @property
    def blocks_verified(self) -> int:
        """How many of the file's blocks have been verified so far."""
        return int(self._ok.sum())

    # ---- verification
    def _verify_bytes(self, lo: int, hi: int) -> None:
        """Verify the blocks holding file bytes ``[lo, hi)``."""
        if hi <= lo:
            return
        todo = [b for b in range(lo // self._block, (hi - 1) // self._block + 1) if not self._ok[b]]
        if not todo:
            return
        with self._lock:
            for b in todo:
                if self._ok[b]:
                    continue
                a, z = b * self._block, min(self._raw.size, (b + 1) * self._block)
                if hashlib.sha256(memoryview(self._raw[a:z])).hexdigest() != self._expected[b]:
                    self._corrupt(b, a, z)
                self._ok[b] = True

    def _corrupt(self, b: int, lo: int, hi: int):
        for p in (self.path, *self._companions):
            for q in (p, checksum_path(p)):
                try:
                    q.unlink(missing_ok=True)
                except OSError:
                    pass
        raise CorruptCacheError(
            f"cache entry {self.path}: block {b} (bytes {lo}-{hi}) does not match its checksum "
            "(the file changed after it was written); the entry has been deleted, run again to "
            "recompute it")

    def _verify_view(self, view: np.ndarray) -> None:
        if view.size:
            lo, hi = byte_bounds(view)
            self._verify_bytes(self._offset + lo - self._start, self._offset + hi - self._start)

    def verified(self) -> np.ndarray:
        """Verify every block (once) and return the read-only memory map as an ndarray.

        Returns
        -------
        ndarray
            The whole entry, every block verified (a read-only memory map).

        Raises
        ------
        CorruptCacheError
            When a block does not match its checksum (the entry is then deleted).
        """
        self._verify_bytes(0, self._raw.size)
        return self._array

    # ---- reading
    def __getitem__(self, key):
        out = self._array[key]
        self._verify_view(self._array[_bounding_key(key)])
        return out

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __setitem__(self, key, value):
        raise ValueError(f"{self.path.name} is a read-only cache entry")

    def __array__(self, dtype=None, copy=None):
        a = self.verified()
        if dtype is not None and np.dtype(dtype) != a.dtype:
            return a.astype(dtype)
        return a.copy() if copy else a

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if "out" in kwargs:
            kwargs["out"] = _plain(kwargs["out"])
        return getattr(ufunc, method)(*_plain(inputs), **kwargs)

    def __array_function__(self, func, types, args, kwargs):
        return func(*_plain(args), **_plain(kwargs))

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.verified(), name)

    def __reduce__(self):
        return (_reopen_verified, (str(self.path), self._expected, [str(p) for p in self._companions]))


def _reopen_verified(path, expected, companions):
    a = VerifiedArray(path, expected, companions)
    a._verify_bytes(0, 1)  # the header, as on open
    a._verify_bytes(a._raw.size - 1, a._raw.size)
    return a


# --------------------------------------------------------------------------- the policy
def _caller_stacklevel() -> int:
    """``stacklevel`` that points a warning at the first frame outside this module."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level


def discard(paths: Path | Iterable[Path], reason) -> None:
    """Report a corrupt entry (:class:`CorruptCacheWarning`) and delete its files.

    Parameters
    ----------
    paths : path or iterable of paths
        The entry's files (all are deleted; missing ones are ignored).
    reason : str or Exception
        What is wrong, for the message.
    """
    paths = [Path(paths)] if isinstance(paths, (str, os.PathLike)) else [Path(p) for p in paths]
    warnings.warn(CorruptCacheWarning(f"corrupt cache entry {paths[0]} ({reason}); deleted, recomputing"),
                  stacklevel=_caller_stacklevel())
    for p in paths:
        for q in (p, checksum_path(p)):
            try:
                q.unlink(missing_ok=True)
            except OSError:
                pass


def load_entry(path: Path, loader: Callable[[Path], Any], check: Callable[[Any], str | None] | None = None,
               companions: Sequence[Path] = ()):
    """Load one cache entry under the one policy.

    Parameters
    ----------
    path : pathlib.Path
        The entry's main file.
    loader : callable
        ``loader(path) -> value``; any exception it raises means the entry is corrupt.
    check : callable, optional
        ``check(value) -> None`` when the value is usable, else the reason it is not.
    companions : sequence of pathlib.Path, default=()
        Other files of the same entry, deleted with it.

    Returns
    -------
    object or None
        The value, or ``None`` when the entry is missing or was corrupt (then it has been
        reported with a :class:`CorruptCacheWarning` and deleted: recompute).
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        value = loader(path)
    except FileNotFoundError:
        return None
    except Exception as err:  # noqa: BLE001 - truncated or garbled files raise many types
        discard([path, *companions], f"{type(err).__name__}: {err}")
        return None
    reason = check(value) if check is not None else None
    if reason:
        discard([path, *companions], reason)
        return None
    return value


def _array_check(shape=None, dtype=None, finite: bool = False, rows: int | None = None, ndim: int | None = None):
    def check(a):
        if not isinstance(a, (np.ndarray, VerifiedArray)):
            return f"not an array ({type(a).__name__})"
        if shape is not None and tuple(a.shape) != tuple(shape):
            return f"shape {a.shape}, expected {tuple(shape)}"
        if ndim is not None and a.ndim != ndim:
            return f"{a.ndim} dimensions, expected {ndim}"
        if rows is not None and (a.ndim == 0 or a.shape[0] != rows):
            return f"shape {a.shape}, expected {rows} rows"
        if dtype is not None and a.dtype != np.dtype(dtype):
            return f"dtype {a.dtype}, expected {np.dtype(dtype)}"
        if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            return "non-finite values"
        return None

    return check


def load_npy(path: Path, *, shape=None, dtype=None, finite: bool = False, mmap: bool = False,
             rows: int | None = None, ndim: int | None = None,
             companions: Sequence[Path] = (), verify: bool | None = None):
    """Load a cached ``.npy`` under the one policy (see :func:`load_entry`), checksums verified.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npy`` file.
    shape : tuple of int, optional
        Required shape.
    dtype : dtype-like, optional
        Required dtype.
    finite : bool, default=False
        Require finite values (floating arrays; this reads, and so verifies, the whole file).
    mmap : bool, default=False
        Return a read-only memory map.
    rows : int, optional
        Required length of the first axis (when the other axes are not known).
    ndim : int, optional
        Required number of dimensions.
    companions : sequence of pathlib.Path, default=()
        Other files of the entry, deleted with it when it is corrupt.
    verify : bool, optional
        Checksums: ``None`` (default) every block before returning, except for a memory map of
        a file over :data:`VERIFY_FULL_MAX` bytes, which is returned as a
        :class:`VerifiedArray` (first and last blocks verified on open, every other block as it
        is first read); ``True`` every block before returning; ``False`` only the sidecar's
        presence and the file size.

    Returns
    -------
    ndarray, VerifiedArray or None
        The array, or ``None`` when the entry is missing or was corrupt (reported and
        deleted: recompute). An entry written by :func:`write_npy` whose checksums do not
        match (or that has none) is corrupt.
    """
    def loader(p):
        if verify is False:
            reason = _sidecar_only(p)
            if reason:
                raise ValueError(reason)
            return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)
        expected, size = _sidecar(p)
        if mmap and verify is None and size > VERIFY_FULL_MAX:
            a = VerifiedArray(p, expected, companions)
            a._verify_bytes(0, 1)  # the header and the first rows
            a._verify_bytes(size - 1, size)  # a truncated or extended file fails here too
            return a
        reason = verify_checksums(p, full=True)
        if reason:
            raise ValueError(reason)
        return np.load(p, mmap_mode="r" if mmap else None, allow_pickle=False)

    return load_entry(path, loader, _array_check(shape, dtype, finite, rows, ndim), companions)


def _sidecar_only(path: Path) -> str | None:
    side = checksum_path(path)
    try:
        size = int(json.loads(side.read_text())["size"])
    except FileNotFoundError:
        return f"no checksum file {side.name} (an interrupted or older write)"
    except (ValueError, KeyError, TypeError) as err:
        return f"unreadable checksum file {side.name} ({err})"
    if path.stat().st_size != size:
        return f"{path.stat().st_size} bytes, its checksum file says {size}"
    return None


def write_npy(path: Path, array) -> Path:
    """Write a cache entry: the ``.npy`` atomically, then its checksum sidecar; errors raise.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npy`` file to write (its folder is created).
    array : array-like
        The entry's content.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    brainllm_utils._utils.paths.CacheFullError
        When the folder's file system has no room for it (checked before writing).
    OSError
        When the folder cannot be written.
    """
    path = Path(path)
    array = np.asarray(array)
    path.parent.mkdir(parents=True, exist_ok=True)
    check_free_space(path.parent, array.nbytes + 4096, f"cache entry {path.name}")
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, array, allow_pickle=False)
            fault_point("write_npy.saved")
            fh.flush()
            os.fsync(fh.fileno())
        fault_point("write_npy.synced")
        write_checksums(tmp, path)  # the sidecar first: the data never appears without it
    return path


@contextlib.contextmanager
def checked_write(path: str | os.PathLike):
    """Write a cache entry of any format atomically, with its checksum sidecar.

    Yields a temporary path beside ``path``; after the body has written (and closed) it,
    the sidecar (:func:`write_checksums`) is written and then the data renamed onto
    ``path``, so the entry never appears without its checksums. Read it back through
    :func:`verified_loader`.

    Parameters
    ----------
    path : str or path-like
        The entry's file (its folder is created).

    Yields
    ------
    pathlib.Path
        The temporary file to write.
    """
    with atomic_path(path) as tmp:
        yield tmp
        fault_point("checked_write.written")
        write_checksums(tmp, path)


def verified_loader(loader: Callable[[Path], Any]) -> Callable[[Path], Any]:
    """``loader`` preceded by a full check of the file against its sidecar (for :func:`load_entry`).

    Parameters
    ----------
    loader : callable
        ``loader(path) -> value``.

    Returns
    -------
    callable
        ``load(path)``: raises ``ValueError`` (what is wrong: no sidecar, size, the block)
        when the file does not match its checksums, else ``loader(path)``.
    """
    def load(path):
        reason = verify_checksums(path, full=True)
        if reason:
            raise ValueError(reason)
        return loader(path)

    return load


def save_npy(path: Path, array) -> Path | None:
    """Write a cache entry (:func:`write_npy`); a failed write (read-only or full disk) only warns.

    Parameters
    ----------
    path : pathlib.Path
        The ``.npy`` file to write (its folder is created).
    array : array-like
        The entry's content.

    Returns
    -------
    pathlib.Path or None
        ``path``, or ``None`` when the entry could not be written.
    """
    try:
        return write_npy(path, array)
    except OSError as err:
        warnings.warn(CacheUnavailableWarning(f"could not write cache entry {path} ({err}); continuing without it"),
                      stacklevel=_caller_stacklevel())
        return None


@fill_doc
def cached_arrays(kind: str, key: str, names: Sequence[str], compute: Callable[[], Mapping[str, Any]],
                  cache=True, folder: Path | None = None, mmap: bool = False) -> dict[str, np.ndarray]:
    """``{name: array}`` from the cache, or computed, saved (atomically) and returned.

    Parameters
    ----------
    kind : str
        A key of :data:`CACHE_VERSIONS`.
    key : str
        From :func:`cache_key`.
    names : sequence of str
        The arrays of one entry, stored as ``<key>_<name>.npy``.
    compute : callable
        ``compute() -> {name: array}``, called on a miss or a corrupt entry.
    %(cache)s
    folder : pathlib.Path, optional
        Overrides the folder that ``cache`` resolves to.
    mmap : bool, default=False
        Return read-only memory maps of the cached files (also right after computing and
        saving them, so that large results are not held in memory).

    Returns
    -------
    dict of str to ndarray
        The arrays of ``names``.
    """
    if folder is not None:
        remove_stale_temps(folder, depth=0)  # as resolve_cache does for the folders it resolves
    else:
        folder = resolve_cache(cache, kind)
    if folder is not None:
        paths = {n: folder / f"{key}_{n}.npy" for n in names}
        if all(p.exists() for p in paths.values()):
            out = {}
            for n, p in paths.items():
                a = load_npy(p, companions=[q for q in paths.values() if q != p], mmap=mmap)
                if a is None:
                    break
                out[n] = a
            else:
                return out
    out = dict(compute())
    if folder is not None:
        for n in names:
            saved = save_npy(folder / f"{key}_{n}.npy", np.asarray(out[n]))
            if mmap and saved is not None:
                mapped = load_npy(saved, mmap=True, verify=False)  # just written and hashed
                if mapped is not None:
                    out[n] = mapped
    return out


@fill_doc
def cached_json(kind: str, key: str, compute: Callable[[], Any], cache=True,
                check: Callable[[Any], str | None] | None = None):
    """A JSON-serialisable value from the cache, or computed, saved atomically and returned.

    The entry carries a checksum sidecar (:func:`checked_write`): a file changed after it
    was written (even into other valid JSON) is a corrupt entry, reported and recomputed.

    Parameters
    ----------
    kind : str
        A key of :data:`CACHE_VERSIONS`.
    key : str
        From :func:`cache_key`; the entry is ``<key>.json``.
    compute : callable
        ``compute() -> value`` (JSON-serialisable).
    %(cache)s
    check : callable, optional
        ``check(value) -> None`` when a loaded value is usable, else the reason.

    Returns
    -------
    object
        The value (as JSON loads it when it came from the cache).
    """
    folder = resolve_cache(cache, kind)
    path = folder / f"{key}.json" if folder is not None else None
    if path is not None:
        value = load_entry(path, verified_loader(lambda p: json.loads(p.read_text())), check)
        if value is not None:
            return value
    value = compute()
    if path is not None:
        try:
            with checked_write(path) as tmp:
                tmp.write_text(json.dumps(value))
        except OSError as err:
            warnings.warn(f"could not write cache entry {path} ({err}); continuing without it",
                      stacklevel=_caller_stacklevel())
    return value

