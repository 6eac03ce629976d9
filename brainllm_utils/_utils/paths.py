"""Where data, caches and results live, and how files are written safely.

Precedence for every location: explicit argument, then an environment variable, then a
default under the repository's ``data/`` folder (or ``~/.cache/brainllm`` when the package
is installed elsewhere).

- ``BRAINLLM_DATA``: the NSD root (a real NSD copy or the generated sandbox).
- ``BRAINLLM_CACHE``: derived arrays (beta averages, embeddings, model weights).
- ``BRAINLLM_RESULTS``: analysis outputs.
- ``BRAINLLM_MODELS``: model weights prepared from pip packages (an install artefact, kept
  apart from the derived-array cache so that clearing or redirecting the cache never forces
  a re-extraction).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import numpy as np

from .docs import fill_doc

__all__ = [
    "REPO_ROOT",
    "get_data_home",
    "get_cache_dir",
    "get_results_dir",
    "get_models_dir",
    "atomic_path",
    "atomic_save_npy",
    "atomic_write_text",
    "file_lock",
]

REPO_ROOT = Path(__file__).resolve().parents[2]


def _default_base() -> Path:
    data = REPO_ROOT / "data"
    if (REPO_ROOT / "pyproject.toml").exists():
        return data
    return Path.home() / ".cache" / "brainllm"


@fill_doc
def get_data_home(data_home: str | os.PathLike | None = None) -> Path:
    """NSD root: ``data_home`` → ``$BRAINLLM_DATA`` → ``<repo>/data/sandbox``.

    Parameters
    ----------
    %(data_home)s

    Returns
    -------
    pathlib.Path
        The root, ``~`` expanded; not created (a missing root is the reader's error).
    """
    if data_home is not None:
        return Path(data_home).expanduser()
    env = os.environ.get("BRAINLLM_DATA")
    if env:
        return Path(env).expanduser()
    return _default_base() / "sandbox"


def _made_dir(explicit, env: str, default: str) -> Path:
    """``explicit`` → ``$env`` → ``<default base>/default``, created."""
    if explicit is not None:
        path = Path(explicit).expanduser()
    elif os.environ.get(env):
        path = Path(os.environ[env]).expanduser()
    else:
        path = _default_base() / default
    path.mkdir(parents=True, exist_ok=True)
    return path


def get_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """Cache folder: ``cache_dir`` → ``$BRAINLLM_CACHE`` → ``<repo>/data/cache``. Created.

    Parameters
    ----------
    cache_dir : str or path-like, optional
        Explicit folder; ``None``: ``$BRAINLLM_CACHE``, then ``<repo>/data/cache``.

    Returns
    -------
    pathlib.Path
        The folder (created with its parents if missing).
    """
    return _made_dir(cache_dir, "BRAINLLM_CACHE", "cache")


@fill_doc
def get_results_dir(results_dir: str | os.PathLike | None = None) -> Path:
    """Results folder: ``results_dir`` → ``$BRAINLLM_RESULTS`` → ``<repo>/data/results``.

    Parameters
    ----------
    %(results_dir)s

    Returns
    -------
    pathlib.Path
        The folder (created with its parents if missing).
    """
    return _made_dir(results_dir, "BRAINLLM_RESULTS", "results")


def get_models_dir(models_dir: str | os.PathLike | None = None) -> Path:
    """Model weights: ``models_dir`` → ``$BRAINLLM_MODELS`` → ``<repo>/data/models``. Created.

    Parameters
    ----------
    models_dir : str or path-like, optional
        Explicit folder; ``None``: ``$BRAINLLM_MODELS``, then ``<repo>/data/models``.

    Returns
    -------
    pathlib.Path
        The folder (created with its parents if missing).
    """
    return _made_dir(models_dir, "BRAINLLM_MODELS", "models")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    An interrupted or failed write leaves no file at ``path`` (the temporary file is
    removed), so a half-written cache is never read as complete.

    Parameters
    ----------
    path : str or path-like
        The final file; its folder is created if missing.

    Yields
    ------
    pathlib.Path
        A temporary file in the same folder (so the rename is atomic): write there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_save_npy(path: str | os.PathLike, array: np.ndarray) -> Path:
    """Save ``array`` as ``.npy`` atomically (temporary file, fsync, rename).

    Parameters
    ----------
    path : str or path-like
        Destination file (its folder is created if missing).
    array : array-like
        Saved with ``allow_pickle=False`` (object arrays are refused).

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array), allow_pickle=False)
            fh.flush()
            os.fsync(fh.fileno())
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write text atomically (temporary file, rename).

    Parameters
    ----------
    path : str or path-like
        Destination file (its folder is created if missing).
    text : str
        The content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return path


@contextlib.contextmanager
def file_lock(path: str | os.PathLike, blocking: bool = True):
    """Hold an exclusive advisory lock on ``path`` (created if needed) for the ``with`` body.

    Processes that compute the same cache entry take the same lock, so the second waits and
    then finds the first one's result instead of computing it again. The operating system
    drops the lock when its holder exits, even when killed.

    Parameters
    ----------
    path : str or path-like
        The lock file (created, with its folder, if missing; its content is never read).
    blocking : bool, default=True
        Wait for the lock; ``False`` raises :class:`BlockingIOError` at once when another
        process holds it.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
