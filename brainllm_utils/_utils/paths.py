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
import errno
import os
import re
import shutil
import signal
import socket
import time
import warnings
from pathlib import Path

import numpy as np

from .docs import fill_doc

__all__ = [
    "fault_point",
    "REPO_ROOT",
    "get_data_home",
    "get_cache_dir",
    "get_results_dir",
    "get_models_dir",
    "atomic_path",
    "allocate_npy",
    "atomic_save_npy",
    "check_free_space",
    "remove_stale_temps",
    "scratch_npy",
    "CacheFullError",
    "STALE_TMP_HOURS",
    "atomic_write_text",
    "file_lock",
    "pid_alive",
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


_HOST = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:32] or "host"
#: Temporary files of :func:`atomic_path`: ``.<name>.<host>.<pid>.<random>.tmp``.
_TMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{8}\.tmp$")
#: Older or foreign temporary files (``.<name>.<random>.tmp``) are removed after this many hours.
STALE_TMP_HOURS = 24.0


class CacheFullError(OSError):
    """Not enough free space for a file: names the folder, the bytes needed and the bytes free."""


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's process counts as alive).

    Parameters
    ----------
    pid : int
        The process id.

    Returns
    -------
    bool
        False only when no such process exists.
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temps(folder: str | os.PathLike, max_age_hours: float = STALE_TMP_HOURS,
                       depth: int = 2) -> list[Path]:
    """Remove the temporary files that killed writers left in ``folder`` (and subfolders).

    A temporary file of :func:`atomic_path` is named ``.<name>.<host>.<pid>.<random>.tmp``.
    It is stale when its writer ran on this host and that process is gone (killed with
    ``-9``, crashed), or when it is older than ``max_age_hours`` (a writer elsewhere, or a
    reused process id). Other hidden ``*.tmp`` files are removed only by age. A hidden
    ``*.lock`` file of :func:`file_lock` that no process holds (its holder was killed before
    it could remove it) is removed under its lock, as its holder would have. A file that
    cannot be removed is left (no error).

    Parameters
    ----------
    folder : str or path-like
        The folder to clean (a missing folder is nothing to do).
    max_age_hours : float, default=24
        Age (modification time) beyond which any hidden ``*.tmp`` file is stale.
    depth : int, default=2
        Subfolder levels searched below ``folder``.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed: list[Path] = []
    folder = Path(folder)
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for e in entries:
        try:
            if e.is_dir(follow_symlinks=False):
                if depth > 0:
                    removed += remove_stale_temps(e.path, max_age_hours, depth - 1)
                continue
            if e.name.startswith(".") and e.name.endswith(".lock"):
                if _remove_unheld_lock(Path(e.path)):
                    removed.append(Path(e.path))
                continue
            if not (e.name.startswith(".") and e.name.endswith(".tmp")):
                continue
            m = _TMP_RE.match(e.name)
            old = now - e.stat(follow_symlinks=False).st_mtime > max_age_hours * 3600.0
            dead = m is not None and m["host"] == _HOST and not pid_alive(int(m["pid"]))
            if dead or old:
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:
            continue
    return removed


def _remove_unheld_lock(path: Path) -> bool:
    """Remove a :func:`file_lock` file nobody holds (taking the lock first); ``True`` if removed."""
    import fcntl

    try:
        fh = open(path, "a")
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held: a live process is computing under it
            return False
        try:
            if os.stat(path).st_ino != os.fstat(fh.fileno()).st_ino:
                return False
        except FileNotFoundError:
            return False
        os.unlink(path)  # waiters that locked this inode see it is gone and lock the new file
        return True
    finally:
        fh.close()


def check_free_space(folder: str | os.PathLike, nbytes: int, what: str = "file") -> None:
    """Raise :class:`CacheFullError` when ``folder``'s file system has less than ``nbytes`` free.

    Parameters
    ----------
    folder : str or path-like
        An existing folder on the file system to write to.
    nbytes : int
        Bytes the write needs.
    what : str, default="file"
        What is written, for the message.

    Raises
    ------
    CacheFullError
        With the bytes needed and the bytes free.
    """
    free = shutil.disk_usage(folder).free
    if int(nbytes) > free:
        raise CacheFullError(errno.ENOSPC, f"not enough free space in {folder} for the {what}: "
                             f"{int(nbytes):,} bytes needed, {free:,} free")


_fault_hits: dict[str, int] = {}


def fault_point(name: str) -> None:
    """A step of a write protocol where the kill -9 tests stop the process (no effect otherwise).

    Every write that must survive a kill (cache entries, the betas, the embedding store,
    the sandbox tree, the batch's outputs) marks its steps with named points. Two
    environment variables, read here and nowhere else, make them act:
    ``BRAINLLM_FAULT_TRACE=<file>`` appends ``name#k`` for the k-th pass of each point in
    this process, and ``BRAINLLM_FAULT_KILL=name#k`` kills the process with ``SIGKILL`` at
    that pass (what a power cut, the OOM killer or a scheduler's ``kill -9`` does there).
    ``tests/test_faults_kill.py`` traces a run, kills a fresh run at every traced pass in
    turn, reruns, and compares with a clean run.

    Parameters
    ----------
    name : str
        The step, ``"<protocol>.<step>"``.
    """
    kill, trace = os.environ.get("BRAINLLM_FAULT_KILL"), os.environ.get("BRAINLLM_FAULT_TRACE")
    if not kill and not trace:
        return
    k = _fault_hits[name] = _fault_hits.get(name, 0) + 1
    tag = f"{name}#{k}"
    if trace:
        with open(trace, "a") as fh:
            fh.write(tag + "\n")
    if kill == tag:
        os.kill(os.getpid(), signal.SIGKILL)


def _new_temp(path: Path) -> Path:
    """Create (O_EXCL) an empty temporary file beside ``path``, with the umask's permissions."""
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{_HOST}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file beside {path}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike):
    """Yield a temporary path beside ``path``; rename it onto ``path`` only on success.

    An interrupted or failed write leaves no file at ``path`` (the temporary file is
    removed on any exception; one left by a process killed with ``-9`` is named
    ``.<name>.<host>.<pid>.<random>.tmp`` and removed by :func:`remove_stale_temps`, which
    the cache runs when it next uses the folder), so a half-written cache is never read
    as complete. The file gets the permissions of the umask (``0o666 & ~umask``, usually
    ``0644``), like any other file the user writes.

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
    tmp = _new_temp(path)
    fault_point("atomic.temp_created")
    try:
        yield tmp
        fault_point("atomic.before_rename")
        os.replace(tmp, path)
        fault_point("atomic.renamed")
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass


def allocate_npy(path: str | os.PathLike, shape, dtype=np.float32) -> np.memmap:
    """A writable ``.npy`` memory map whose disk blocks are reserved first (no ``SIGBUS``).

    Writing into a memory map of a sparse file on a full disk kills the process with
    ``SIGBUS``. Here the free space is checked (:func:`check_free_space`) and the whole
    file is allocated with ``os.posix_fallocate`` before it is mapped, so a full disk is
    a Python :class:`OSError` (:class:`CacheFullError`, ``ENOSPC``) raised here.

    Parameters
    ----------
    path : str or path-like
        The file (an existing one is overwritten), usually a temporary path of
        :func:`atomic_path`.
    shape : tuple of int
        The array's shape.
    dtype : dtype-like, default=float32
        The array's dtype.

    Returns
    -------
    numpy.memmap
        Zero-filled, mode ``r+``.

    Raises
    ------
    CacheFullError
        When the file system has no room for the file.
    """
    path = Path(path)
    dtype = np.dtype(dtype)
    shape = tuple(int(n) for n in shape)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    what = f"array {path.name} of shape {shape}"
    check_free_space(path.parent, nbytes + 4096, what)
    try:
        with open(path, "wb", buffering=0) as fh:
            np.lib.format.write_array_header_1_0(fh, header)
            offset = fh.tell()
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise CacheFullError(errno.ENOSPC, f"no room in {path.parent} for the {what}: {nbytes + 4096:,} "
                                 f"bytes needed, {shutil.disk_usage(path.parent).free:,} free") from None
        raise
    fd = os.open(path, os.O_RDWR)
    try:
        if nbytes:
            try:
                os.posix_fallocate(fd, offset, nbytes)
            except OSError as err:
                if err.errno == errno.ENOSPC:
                    raise CacheFullError(errno.ENOSPC, f"no room in {path.parent} for the {what}: "
                                         f"{nbytes:,} bytes needed, {shutil.disk_usage(path.parent).free:,} "
                                         "free") from None
                if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise
                _write_zeros(fd, offset, nbytes, path)
        else:
            os.ftruncate(fd, offset)
    finally:
        os.close(fd)
    fault_point("allocate.allocated")
    return np.lib.format.open_memmap(path, mode="r+")


def scratch_npy(folder: str | os.PathLike, shape, dtype=np.float32) -> np.ndarray:
    """A zero-filled writable array backed by an unlinked, fully allocated file in ``folder``.

    For large intermediate results that should stay out of RAM: the file is allocated
    (:func:`allocate_npy`, so a full disk raises instead of ``SIGBUS``), mapped and unlinked
    at once, so nothing is left on disk (a process killed in between leaves a temporary file
    that :func:`remove_stale_temps` removes). When ``folder`` cannot hold it (full,
    read-only), the array is made in memory.

    Parameters
    ----------
    folder : str or path-like
        Where the backing file lives while mapped.
    shape : tuple of int
        The array's shape.
    dtype : dtype-like, default=float32
        The array's dtype.

    Returns
    -------
    numpy.ndarray
        A memory map, or an in-memory array when the folder could not be used.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = _new_temp(folder / "scratch.npy")
    except OSError as err:
        return _in_memory(shape, dtype, folder, err)
    try:
        return allocate_npy(tmp, shape, dtype)
    except OSError as err:
        return _in_memory(shape, dtype, folder, err)
    finally:
        tmp.unlink(missing_ok=True)


def _in_memory(shape, dtype, folder: Path, err: OSError) -> np.ndarray:
    warnings.warn(f"cannot back a {tuple(shape)} array with a file in {folder} ({err}); "
                  "holding it in memory", stacklevel=3)
    return np.zeros(shape, dtype=dtype)


def _write_zeros(fd: int, offset: int, nbytes: int, path: Path) -> None:
    """Allocate by writing zeros (file systems without ``fallocate``)."""
    block = bytes(1 << 22)
    os.lseek(fd, offset, os.SEEK_SET)
    left = nbytes
    try:
        while left:
            left -= os.write(fd, block[: min(left, len(block))])
    except OSError as err:
        if err.errno == errno.ENOSPC:
            raise CacheFullError(errno.ENOSPC, f"no room in {path.parent} for {path.name}: "
                                 f"{nbytes:,} bytes needed") from None
        raise


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
def file_lock(path: str | os.PathLike, blocking: bool = True, remove: bool = False):
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
    remove : bool, default=False
        Delete the lock file before releasing it (nothing is left behind). Safe with
        waiters: a process that obtains the lock on a file that was meanwhile removed or
        replaced tries again on the current one.
    """
    import fcntl

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            try:
                same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
        except BaseException:
            fh.close()
            raise
        if same:
            break
        fh.close()  # the file we locked was removed by its previous holder: lock the new one
    fault_point("lock.acquired")
    try:
        yield
    finally:
        try:
            if remove:
                path.unlink(missing_ok=True)
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
            fh.close()
