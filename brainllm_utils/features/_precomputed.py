"""Precomputed features: a feature space read from a user's file, keyed by NSD image id.

A lab that computed features elsewhere (an image network, another language model, ratings)
brings them in as a feature space, by name::

    features.register_precomputed("clip", "clip_vitb32.npz", dim=512)
    X = features.build("clip", nsd, ids)                  # rows in the order of ids
    X = features.build("precomputed:/data/clip_vitb32.npz", nsd, ids)   # no registration

or, for every process of a batch run (papermill kernels, Dask workers), in the config file
the batch reads (``brainllm.toml``; :mod:`~brainllm_utils.features._plugins`)::

    [feature_spaces.clip]
    path = "features/clip_vitb32.npz"   # relative to the config file's folder
    dim = 512                           # optional: checked

File formats (the suffix decides; ``nsdId`` is NSD's 0-based image id, 0 ≤ id < 73,000,
i.e. the 73k id − 1):

============================  ==========================================================
``.npz``                      arrays ``nsdId`` (n,) integers and ``features`` (n, d)
``.h5`` / ``.hdf5``           datasets ``nsdId`` (n,) and ``features`` (n, d) (h5py)
``.parquet`` / ``.csv``       an ``nsdId`` column (or a parquet index named ``nsdId``);
                              every other column numeric (bool, int or float), in file
                              order. A column named ``Unnamed: k`` (a CSV written with an
                              unnamed index) is refused
``.npy``                      the (n, d) matrix with a sidecar ``<stem>.nsdId.npy`` of
                              the n ids (or ``ids=`` another ``.npy`` file); without a
                              sidecar, the two-part convention: an (n, 1 + d) matrix whose
                              column 0 holds the ids (whole numbers) and columns 1..d the
                              features
============================  ==========================================================

Every file is validated, with errors naming the file and what was expected: ids unique
whole numbers in NSD's range, one per row; a 2-D numeric matrix with at least one column;
no NaN or infinite value (after the cast to float32); the stated dimension ``dim``; and, at
build time, every requested id present (the message says how many are missing and shows
some). Rows come back in the requested order (repeats allowed), as float32.

Cache: the parsed file (ids sorted, matrix as float32) is an entry of the package's cache
(:mod:`~brainllm_utils._utils.cache`, kind ``features``, folder ``precomputed/``), keyed on the
file's identity *and content* (path, size, modification time, inode, sha256 of every byte) and
on the reader's options (the ids sidecar's identity and content), so that an edited file —
even one whose size and time stamp were restored — is read again. The sha256 is computed once
per process and file version (about 1 s per GB).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from .._utils.cache import FileIdentity, cache_key, cached_arrays, resolve_cache
from ._registry import lookup, register, register_pattern

__all__ = ["NSD_N_IMAGES", "PRECOMPUTED_PREFIX", "PRECOMPUTED_SUFFIXES", "PrecomputedError",
           "PrecomputedSpace", "load_precomputed", "register_precomputed", "precomputed_space",
           "content_identity"]

#: Images in NSD: valid nsdIds are 0 … 72,999.
NSD_N_IMAGES = 73_000
#: A feature-space name ``precomputed:<path>`` reads ``<path>`` (no registration needed).
PRECOMPUTED_PREFIX = "precomputed:"
#: File suffixes read (lower case).
PRECOMPUTED_SUFFIXES = (".npy", ".npz", ".parquet", ".csv", ".h5", ".hdf5")
_SHOWN = 5  # ids shown in a message
_SHA: dict[tuple, str] = {}  # (path, size, mtime_ns, inode, ctime_ns) -> sha256, per process
_PARSED: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # the files read last, per process
_PARSED_MAX = 2  # files kept in memory (a chapter alternating two spaces reads neither again)


class PrecomputedError(ValueError):
    """A precomputed-feature file is missing, unreadable or invalid (the message names it)."""


# --------------------------------------------------------------------------- identity
def content_identity(path) -> FileIdentity:
    """The identity of a file with the sha256 of its whole content (memoised per version).

    Parameters
    ----------
    path : str or path-like
        An existing file.

    Returns
    -------
    FileIdentity
        Resolved path, size, modification time, inode and the sha256 of every byte (unlike
        :func:`~brainllm_utils._utils.cache.file_identity`, whatever the file's size).

    Raises
    ------
    PrecomputedError
        When the file does not exist.
    """
    p = Path(path).expanduser()
    try:
        st = p.stat()
    except FileNotFoundError:
        raise PrecomputedError(f"precomputed-feature file {p} not found") from None
    key = (str(p.resolve()), int(st.st_size), int(st.st_mtime_ns), int(st.st_ino))
    memo = key + (int(st.st_ctime_ns),)  # a time stamp restored with os.utime changes ctime
    if memo not in _SHA:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 22), b""):
                h.update(block)
        _SHA[memo] = h.hexdigest()
    return FileIdentity(*key, sha256=_SHA[memo])


# --------------------------------------------------------------------------- readers
def _sidecar(path: Path) -> Path:
    return path.with_name(f"{path.stem}.nsdId.npy")


def _np_load(path: Path, what: str):
    try:
        return np.load(path, allow_pickle=False)
    except Exception as err:  # noqa: BLE001 - a damaged file raises many types
        raise PrecomputedError(
            f"{path}: cannot read {what} ({type(err).__name__}: {err})") from None


def _read_npy(path: Path, ids_path: Path | None):
    a = _np_load(path, "the .npy matrix")
    side = ids_path if ids_path is not None else _sidecar(path)
    if ids_path is not None and not side.is_file():
        raise PrecomputedError(f"{path}: the ids file {side} (ids=) not found")
    if side.is_file():
        return _np_load(side, f"the ids sidecar {side.name}"), a
    if a.ndim != 2 or a.shape[1] < 2:
        raise PrecomputedError(
            f"{path}: no ids sidecar {side.name} beside it, and the array of shape {a.shape} "
            "is not an (n, 1 + d) matrix with the nsdIds in column 0; expected one of the two")
    if a.dtype.kind not in "iuf":
        raise PrecomputedError(f"{path}: dtype {a.dtype}, expected a numeric matrix")
    return a[:, 0], a[:, 1:]


def _read_npz(path: Path, ids_path: Path | None):
    z = _np_load(path, "the .npz archive")
    try:
        missing = [k for k in ("nsdId", "features") if k not in z.files]
        if missing:
            raise PrecomputedError(f"{path}: no array {missing} in the archive (it holds "
                                   f"{sorted(z.files)}); expected arrays 'nsdId' and 'features'")
        try:
            return z["nsdId"], z["features"]
        except ValueError as err:  # an object array (allow_pickle=False)
            raise PrecomputedError(f"{path}: {err}; expected numeric arrays") from None
    finally:
        z.close()


def _read_h5(path: Path, ids_path: Path | None):
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py is a dependency of the package
        raise PrecomputedError(f"{path}: reading HDF5 needs h5py (pip install h5py)") from None
    try:
        fh = h5py.File(path, "r")
    except OSError as err:
        raise PrecomputedError(f"{path}: not a readable HDF5 file ({err})") from None
    with fh:
        missing = [k for k in ("nsdId", "features") if not isinstance(fh.get(k), h5py.Dataset)]
        if missing:
            raise PrecomputedError(f"{path}: no dataset {missing} (it holds {sorted(fh.keys())}); "
                                   "expected datasets 'nsdId' and 'features'")
        return fh["nsdId"][()], fh["features"][()]


def _read_table(path: Path, ids_path: Path | None):
    import pandas as pd
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    try:
        df = pd.read_parquet(path) if path.suffix.lower() == ".parquet" else pd.read_csv(path)
    except Exception as err:  # noqa: BLE001 - parsers raise many types
        raise PrecomputedError(
            f"{path}: cannot read the table ({type(err).__name__}: {err})") from None
    if "nsdId" in df.columns:
        ids = df["nsdId"].to_numpy()
        df = df.drop(columns="nsdId")
    elif df.index.name == "nsdId":
        ids = df.index.to_numpy()
    else:
        raise PrecomputedError(f"{path}: no 'nsdId' column or index (columns: "
                               f"{[str(c) for c in df.columns][:10]}); expected one")
    unnamed = [str(c) for c in df.columns if str(c).startswith("Unnamed:")]
    if unnamed:
        raise PrecomputedError(f"{path}: unnamed column(s) {unnamed} (an index saved without a "
                               "name?); expected only 'nsdId' and named feature columns")
    bad = [str(c) for c in df.columns
           if not (is_numeric_dtype(df[c]) or is_bool_dtype(df[c]))]
    if bad:
        raise PrecomputedError(f"{path}: non-numeric column(s) {bad[:10]} "
                               f"({', '.join(str(df[c].dtype) for c in bad[:3])}); expected every "
                               "column but 'nsdId' numeric")
    if df.shape[1] == 0:
        raise PrecomputedError(f"{path}: no feature column beside 'nsdId'")
    try:
        X = df.to_numpy(dtype=np.float64)
    except (TypeError, ValueError) as err:  # nullable dtypes with missing values
        raise PrecomputedError(
            f"{path}: feature columns cannot be read as numbers ({err})") from None
    return ids, X


_READERS = {".npy": _read_npy, ".npz": _read_npz, ".parquet": _read_table, ".csv": _read_table,
            ".h5": _read_h5, ".hdf5": _read_h5}


def _examples(values) -> str:
    values = list(values)
    shown = ", ".join(str(v) for v in values[:_SHOWN])
    return f"[{shown}{', ...' if len(values) > _SHOWN else ''}]"


def _check_ids(path: Path, ids) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise PrecomputedError(
            f"{path}: nsdIds of shape {ids.shape}; expected one id per row (1-D)")
    if ids.dtype.kind == "f":
        bad = ~np.isfinite(ids) | (ids != np.round(ids))
        if bad.any():
            rows = np.flatnonzero(bad)
            raise PrecomputedError(f"{path}: {rows.size} nsdId(s) are not whole numbers (rows "
                                   f"{_examples(rows)}: {_examples(ids[rows])}); expected integers")
    elif ids.dtype.kind not in "iu":
        raise PrecomputedError(f"{path}: nsdIds of dtype {ids.dtype}; expected integers")
    out = ids.astype(np.int64)
    bad = (out < 0) | (out >= NSD_N_IMAGES)
    if bad.any():
        raise PrecomputedError(
            f"{path}: {int(bad.sum())} nsdId(s) outside NSD's range 0..{NSD_N_IMAGES - 1} "
            f"({_examples(out[bad])}); expected 0-based nsdIds (the 73k id - 1)")
    uniq, counts = np.unique(out, return_counts=True)
    if uniq.size != out.size:
        dup = uniq[counts > 1]
        raise PrecomputedError(f"{path}: {dup.size} nsdId(s) appear more than once "
                               f"({_examples(dup)}); expected each image once")
    return out


def _check_matrix(path: Path, X, ids: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim != 2:
        raise PrecomputedError(f"{path}: features of shape {X.shape}; expected a 2-D matrix "
                               "(n_images, n_features)")
    if X.dtype.kind not in "biuf":
        raise PrecomputedError(f"{path}: features of dtype {X.dtype}; expected a numeric matrix")
    if X.shape[0] != ids.size:
        raise PrecomputedError(f"{path}: {X.shape[0]} feature rows but {ids.size} nsdIds; expected "
                               "one id per row")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise PrecomputedError(f"{path}: features of shape {X.shape}; expected at least one image "
                               "and one feature")
    with np.errstate(over="ignore", invalid="ignore"):
        out = X.astype(np.float32)
    bad = ~np.isfinite(out).all(axis=1)
    if bad.any():
        raise PrecomputedError(
            f"{path}: {int(bad.sum())} row(s) hold NaN or infinite values (or values beyond "
            f"float32's range), e.g. nsdIds {_examples(ids[bad])}; expected finite features")
    return out


def _parse(path: Path, ids_path: Path | None) -> tuple[np.ndarray, np.ndarray]:
    """Read and validate a file; ids sorted ascending, rows with them."""
    reader = _READERS[path.suffix.lower()]
    raw_ids, raw_X = reader(path, ids_path)
    ids = _check_ids(path, raw_ids)
    X = _check_matrix(path, raw_X, ids)
    order = np.argsort(ids, kind="stable")
    return ids[order], np.ascontiguousarray(X[order])


def _check_path(path, what: str = "path") -> Path:
    if isinstance(path, bool) or not isinstance(path, (str, os.PathLike)) or not str(path):
        raise TypeError(f"{what}={path!r}: expected the path of a precomputed-feature file")
    p = Path(path).expanduser()
    if p.suffix.lower() not in _READERS:
        raise PrecomputedError(f"{p}: unsupported file type {p.suffix or '(none)'!r}; expected one "
                               f"of {', '.join(PRECOMPUTED_SUFFIXES)}")
    if not p.is_file():
        raise PrecomputedError(f"precomputed-feature file {p} not found")
    return p.resolve()


def _check_dim(dim):
    if dim is None:
        return None
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
        raise ValueError(f"dim={dim!r}: expected an integer >= 1 (the number of features) or None")
    return int(dim)


def _parsed(path: Path, ids_path: Path | None, cache) -> tuple[np.ndarray, np.ndarray]:
    ident = content_identity(path)
    side = ids_path if ids_path is not None else _sidecar(path)
    is_npy = path.suffix.lower() == ".npy"
    side_ident = content_identity(side) if (is_npy and side.is_file()) else None
    key = cache_key("features", "precomputed", ident, side_ident, length=32)
    if key in _PARSED:
        return _PARSED[key]
    folder = resolve_cache(cache, "features")
    arrays = cached_arrays("features", key, ["ids", "X"], lambda: dict(zip(("ids", "X"),
                           _parse(path, ids_path))), cache=cache,
                           folder=None if folder is None else folder / "precomputed")
    ids, X = np.asarray(arrays["ids"]), np.asarray(arrays["X"])
    if ids.ndim != 1 or X.ndim != 2 or X.shape[0] != ids.size or X.dtype != np.float32:
        ids, X = _parse(path, ids_path)  # a cache entry of another shape: never used
    while len(_PARSED) >= _PARSED_MAX:
        _PARSED.pop(next(iter(_PARSED)))
    _PARSED[key] = (ids, X)
    return ids, X


def load_precomputed(path, nsd_ids=None, dim: int | None = None, ids=None, cache=True):
    """Read a precomputed-feature file: validated rows for ``nsd_ids`` (or every row).

    Parameters
    ----------
    path : str or path-like
        A ``.npy``, ``.npz``, ``.parquet``, ``.csv``, ``.h5`` or ``.hdf5`` file (formats in the
        module doc).
    nsd_ids : array-like of int of shape (n_images,), optional
        0-based nsdIds whose rows to return, in this order (repeats allowed); ``None``: every
        row of the file, by ascending nsdId.
    dim : int, optional
        The number of features the file must have.
    ids : str or path-like, optional
        For a ``.npy`` matrix: the ``.npy`` file of its nsdIds (default: the sidecar
        ``<stem>.nsdId.npy`` if present, else column 0 of the matrix).
    cache : bool or path-like, default=True
        The parsed file is a cache entry (``True``: the package's cache; a folder: that cache
        root; ``False``: read the file every time).

    Returns
    -------
    nsd_ids : ndarray of int64 of shape (n_images,)
        The ids of the rows (``nsd_ids`` as given, or the file's ids sorted).
    X : ndarray of float32 of shape (n_images, n_features)
        The features, one row per id.

    Raises
    ------
    PrecomputedError
        For a missing, unreadable or invalid file, a wrong dimension, or requested ids the file
        does not hold (how many, and some of them).
    TypeError
        For arguments of the wrong type.
    """
    p = _check_path(path)
    dim = _check_dim(dim)
    ids_path = None if ids is None else Path(_check_side(ids, p))
    all_ids, X = _parsed(p, ids_path, cache)
    if dim is not None and X.shape[1] != dim:
        raise PrecomputedError(f"{p}: {X.shape[1]} features per image; expected dim={dim}")
    if nsd_ids is None:
        return all_ids.copy(), X.copy()
    from .._utils.numeric import check_indices

    want = check_indices(nsd_ids, "nsd_ids", unique=False, ndim=1)
    pos = np.searchsorted(all_ids, want)
    found = pos < all_ids.size
    found[found] = all_ids[pos[found]] == want[found]
    if not found.all():
        miss = np.unique(want[~found])
        raise PrecomputedError(
            f"{p}: {miss.size} of the {np.unique(want).size} nsdIds the analysis asks for are not "
            f"in the file ({_examples(miss)}); it holds {all_ids.size} images (nsdIds "
            f"{all_ids[0]}..{all_ids[-1]}); expected every requested id")
    return want, X[pos]


def _check_side(ids, path: Path):
    if isinstance(ids, bool) or not isinstance(ids, (str, os.PathLike)) or not str(ids):
        raise TypeError(f"ids={ids!r}: expected the path of a .npy file of nsdIds, or None")
    if path.suffix.lower() != ".npy":
        raise ValueError(f"ids={str(ids)!r}: an ids file goes with a .npy matrix only ({path.name} "
                         "holds its own nsdIds)")
    return Path(ids).expanduser().resolve()


# --------------------------------------------------------------------------- spaces
@dataclasses.dataclass(frozen=True)
class PrecomputedSpace:
    """The builder of a feature space read from a file (:func:`register_precomputed`).

    Calling it as ``space(nsd, nsd_ids, **options)`` returns the validated rows of ``nsd_ids``
    (``options``: ``cache``; the others, such as ``device``, are ignored). Two spaces are equal
    when they read the same file with the same options (registering one twice is a no-op).

    Attributes
    ----------
    path : str
        The file (absolute).
    dim : int or None
        The number of features the file must have (``None``: any).
    ids : str or None
        The ``.npy`` file of a ``.npy`` matrix's ids (absolute; ``None``: the sidecar or
        column 0).
    """

    path: str
    dim: int | None = None
    ids: str | None = None

    def __call__(self, nsd, nsd_ids, cache=True, **options) -> np.ndarray:
        return load_precomputed(self.path, nsd_ids, dim=self.dim, ids=self.ids, cache=cache)[1]

    def check(self, cache=True) -> tuple[int, int]:
        """Validate the whole file now.

        Parameters
        ----------
        cache : bool or path-like, default=True
            As :func:`load_precomputed`.

        Returns
        -------
        shape : tuple of (int, int)
            ``(n_images, n_features)`` of the file.

        Raises
        ------
        PrecomputedError
            What is wrong with the file, naming it.
        """
        _, X = load_precomputed(self.path, None, dim=self.dim, ids=self.ids, cache=cache)
        return X.shape

    def identity(self) -> dict:
        """The content identities of the file (and its ids file): for fingerprints.

        Returns
        -------
        identity : dict
            ``path``, ``sha256`` and ``size`` of the file, ``dim``, and the ids file's
            ``ids_sha256`` when there is one.
        """
        ident = content_identity(self.path)
        out = {"path": ident.path, "size": ident.size, "sha256": ident.sha256, "dim": self.dim}
        side = Path(self.ids) if self.ids else _sidecar(Path(self.path))
        if Path(self.path).suffix.lower() == ".npy" and side.is_file():
            out["ids_sha256"] = content_identity(side).sha256
        return out


def register_precomputed(name: str, path, dim: int | None = None, description: str = "", *,
                         ids=None, group: str = "precomputed", check: bool = False):
    """Register the features of a file as the space ``name`` (formats in the module doc).

    Registering the same name for the same file and options again is a no-op (a plugin or
    config loaded twice); another file under a registered name raises ``ValueError``.

    Parameters
    ----------
    name : str
        The space's name (:func:`~brainllm_utils.features.build`); not starting with
        ``precomputed:``.
    path : str or path-like
        The file; it must exist (its content is read at the first build, or now with
        ``check``).
    dim : int, optional
        The number of features the file must have.
    description : str, default=""
        One line for :func:`~brainllm_utils.features.describe` (default: the file's name).
    ids : str or path-like, optional
        For a ``.npy`` matrix: the ``.npy`` file of its nsdIds.
    group : str, default="precomputed"
        Its family in :func:`~brainllm_utils.features.describe`.
    check : bool, default=False
        Read and validate the whole file now.

    Returns
    -------
    space : PrecomputedSpace
        The registered builder.

    Raises
    ------
    PrecomputedError
        For a missing file, an unsupported suffix, or (with ``check``) an invalid file.
    ValueError
        For a name already registered for something else, or a bad ``dim``.
    TypeError
        For arguments of the wrong type.
    """
    if not isinstance(name, str) or not name.strip() or name != name.strip():
        raise TypeError(f"name={name!r}: expected a non-empty feature-space name (str) without "
                        "surrounding spaces")
    if name.startswith(PRECOMPUTED_PREFIX):
        raise ValueError(f"name={name!r}: names starting with {PRECOMPUTED_PREFIX!r} read their "
                         "file directly; register under another name")
    if not isinstance(description, str):
        raise TypeError(f"description={description!r}: expected a str")
    if not isinstance(check, bool):
        raise TypeError(f"check={check!r}: expected True or False")
    p = _check_path(path)
    space = PrecomputedSpace(str(p), _check_dim(dim),
                             None if ids is None else str(_check_side(ids, p)))
    if space.ids is not None and not Path(space.ids).is_file():
        raise PrecomputedError(f"{p}: the ids file {space.ids} (ids=) not found")
    if check:
        space.check()
    register(name, description or f"precomputed features from {p.name}", group)(space)
    return space


def _precomputed_factory(nsd, nsd_ids, path: str, cache=True, **options):
    p = _check_path(path)
    return load_precomputed(p, nsd_ids, cache=cache)[1]


register_pattern(r"precomputed:(?P<path>.+)", _precomputed_factory,
                 display="precomputed:<path>",
                 description="features read from a file (npy, npz, parquet, csv, h5) keyed by "
                             "nsdId", group="precomputed")


def precomputed_space(name: str) -> PrecomputedSpace | None:
    """The file behind a feature-space name, or ``None`` when it is not read from a file.

    Parameters
    ----------
    name : str
        A registered name or ``precomputed:<path>`` (a relative path is taken relative to
        this process's working folder).

    Returns
    -------
    PrecomputedSpace or None
        The space's file and options.

    Raises
    ------
    ValueError
        For an unknown name (:func:`~brainllm_utils.features.lookup`).
    """
    fn, extra = lookup(name)
    if isinstance(fn, PrecomputedSpace):
        return fn
    if fn is _precomputed_factory:
        return PrecomputedSpace(str(Path(extra["path"]).expanduser().resolve()))
    return None
