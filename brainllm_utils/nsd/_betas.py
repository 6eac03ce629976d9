"""Betas of an NSD copy: read session by session, masked, z-scored, averaged over repeats, cached."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

from .._utils.cache import (
    CacheUnavailableWarning,
    cache_key,
    checked_write,
    discard,
    file_identity,
    load_entry,
    load_npy,
    resolve_cache,
    verified_loader,
    writable_cache,
    write_checksums,
    write_npy,
)
from .._utils.docs import fill_doc
from .._utils.paths import allocate_npy, atomic_path, fault_point, file_lock, scratch_npy
from .layout import EXPDESIGN, SPACES, NSDFileError, _as_int, responses_file

#: Largest difference allowed between two affines of one subject's func1pt8mm grid (mm).
AFFINE_ATOL = 1e-3

__all__: list[str] = []


class _BetasMixin:
    """Methods of :class:`~brainllm_utils.nsd.NSD` that read and average betas.

    Needs the design (:class:`_DesignMixin`), the atlas (``columns``) and ``self.cache_dir``.
    """

    def _read_session(self, subject: str, space: str, session: int, cols: np.ndarray,
                      chunk: int = 64, chunk_columns: int = 65536) -> np.ndarray:
        """Betas of one session restricted to ``cols``: float32 (T, n_cols), PSC units.

        Filled in place, block by block: peak memory is the output plus one block.
        """
        files = self._beta_files(subject, space, session)
        for f in files:
            self.path(str(f.relative_to(self.root)), "beta file")
        T = self.trials_per_session()
        if space == "func1pt8mm":
            out = _read_nifti_masked(files[0], cols, T, chunk=chunk, grid=self._grid(subject))
            out /= np.float32(300.0)
            return out
        out = np.empty((T, cols.size), dtype=np.float32)
        offset = 0
        expected = self.n_vertices()
        for f, nv_expected in zip(files, expected):
            nv = _read_mgh_columns(f, cols, offset, T, out, chunk_columns, nv_expected,
                                   self._n_vertices_source)
            offset += nv
        return out

    def _betas_plan(self, subject, space, roi, zscore, min_repeats, sessions):
        """Validated arguments of :meth:`betas`: subject name, sessions, columns, trial table
        of those sessions and the nsdIds kept."""
        name = self._check_subject(subject)
        if not isinstance(space, str) or space not in SPACES:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        _check_flag(zscore, "zscore")
        if _as_int(min_repeats, "min_repeats") < 1:
            raise ValueError(f"min_repeats={min_repeats}: expected an integer ≥ 1")
        min_repeats = int(min_repeats)
        sessions = self.select_sessions(name, sessions, space)
        cols = self.columns(name, space, roi)
        if cols.size == 0:
            raise ValueError(f"roi {roi!r} selects no {space} columns for {name}")
        table = self.trial_table(name)
        table = table[table["session"].isin(sessions)]
        uniq, counts = np.unique(table["nsdId"].to_numpy(), return_counts=True)
        nsd_ids = uniq[counts >= min_repeats]
        if nsd_ids.size == 0:
            raise ValueError(f"{name}: no image has ≥ min_repeats={min_repeats} repeats in "
                             f"sessions={sessions}; select more sessions or lower min_repeats")
        return name, sessions, cols, table, nsd_ids

    def _betas_key(self, name, space, cols, zscore, min_repeats, sessions) -> str:
        files = [self.path(str(f.relative_to(self.root)), "beta file")
                 for s in sessions for f in self._beta_files(name, space, s)]
        design = [self.path(EXPDESIGN)]
        responses = self.root / responses_file(name)
        if responses.exists():
            design.append(responses)
        # beta files by identity (path, size, mtime, inode: they are large); the design
        # files (small) also by content, so an edit that restores the time stamp is seen
        return cache_key("betas", str(self.root.resolve()), name, space, self.beta_version, bool(zscore),
                         int(min_repeats), sessions, np.asarray(cols, dtype=np.int64),
                         [file_identity(f) for f in files], [file_identity(f, content=True) for f in design])

    @fill_doc
    def betas_key(self, subject, space: str = "fsaverage", roi=None, zscore: bool = True,
                  min_repeats: int = 3, sessions: Sequence[int] | None = None) -> str:
        """The cache key of :meth:`betas` with these arguments (no beta is read).

        It covers every input of the result: the root, subject, space, beta version, the
        arguments, the columns of ``roi``, the cache version of ``"betas"``, the identity
        (path, size, modification time, inode) of every beta file read, and the identity and
        content hash of ``nsd_expdesign.mat`` and of the subject's ``responses.tsv``.
        Analyses that cache results computed from betas key them on this instead of hashing
        the betas themselves.

        Parameters
        ----------
        %(subject_any)s
        %(space)s
        %(roi)s
        zscore, min_repeats, sessions
            As in :meth:`betas`.

        Returns
        -------
        str
            A hex key (:func:`brainllm_utils._utils.cache.cache_key`, kind ``"betas"``).
        """
        name, sessions, cols, _, _ = self._betas_plan(subject, space, roi, zscore, min_repeats, sessions)
        return self._betas_key(name, space, cols, zscore, min_repeats, sessions)

    @fill_doc
    def betas(self, subject, space: str = "fsaverage", roi=None, zscore: bool = True,
              min_repeats: int = 3, sessions: Sequence[int] | None = None, cache: bool = True,
              progress: bool = True, chunk_columns: int = 65536):
        """Per-image betas averaged over repeats.

        Each session's betas are read (volume: int16 ÷ 300), restricted to the ROI columns,
        z-scored per voxel over the session's trials (``zscore=True``), then averaged over the
        repeats of each image. A column that is constant or holds a NaN in a session is left
        out of that session's contribution (the average is over the other sessions' trials);
        it is NaN only where no selected session is valid. Images with fewer than ``min_repeats`` showings in the selected
        sessions are dropped.

        Parameters
        ----------
        %(subject_any)s
        %(space)s
        %(roi)s
        zscore : bool, default=True
            Z-score each column over each session's trials before averaging.
        %(min_repeats)s
        %(sessions)s
        cache : bool, default=True
            Reuse/write a float32 ``.npy`` cache keyed by every argument and the input files
            (:meth:`betas_key`), under ``<cache_dir>/betas`` (the NSD's ``cache_dir``, else
            the package's cache). Entries carry block checksums; processes computing the
            same entry take a lock, so the work is done once; a read-only or full cache
            folder gives one warning and the betas are computed without it.
        %(progress_true)s
        chunk_columns : int, default=65536
            Columns processed at a time when z-scoring and averaging (bounds the memory
            beyond the output).

        Returns
        -------
        Y : ndarray of float32 of shape (n_images, n_columns)
            Rows sorted by nsdId; fsaverage columns are lh vertices then rh (see
            :meth:`columns`). A memory map when read from the cache.
        nsd_ids : ndarray of int64 of shape (n_images,)
            The sorted 0-based nsdIds of the rows.
        """
        for flag, value in (("cache", cache), ("progress", progress)):
            _check_flag(value, flag)
        if _as_int(chunk_columns, "chunk_columns") < 1:
            raise ValueError(f"chunk_columns={chunk_columns}: expected an integer ≥ 1")
        chunk_columns = int(chunk_columns)
        name, sessions, cols, table, nsd_ids = self._betas_plan(subject, space, roi, zscore, min_repeats,
                                                               sessions)
        root = self._cache_dir if self._cache_dir is not None else True
        folder = resolve_cache(root, "betas") if cache else None
        row_of = np.full(self.n_images, -1, dtype=np.int64)
        row_of[nsd_ids] = np.arange(nsd_ids.size)
        shape = (nsd_ids.size, cols.size)
        args = (name, space, sessions, table, row_of, cols, zscore, progress, chunk_columns)
        if folder is not None:
            key = self._betas_key(name, space, cols, zscore, min_repeats, sessions)
            y_path, id_path = folder / f"{name}_{space}_{key}.npy", folder / f"{name}_{space}_{key}_ids.npy"
            events_path = folder / f"{name}_{space}_{key}_partial.json"
            hit = _cached_betas(y_path, id_path, nsd_ids, cols.size, events_path)
            if hit is not None:
                self._replay_events(hit[2])
                return hit[0], hit[1]
            if writable_cache(folder):
                with file_lock(folder / f".{y_path.stem}.lock", remove=True):
                    # a process that held the lock before us may have written the entry
                    hit = _cached_betas(y_path, id_path, nsd_ids, cols.size, events_path)
                    if hit is not None:
                        self._replay_events(hit[2])
                        return hit[0], hit[1]
                    try:
                        with atomic_path(y_path) as tmp:
                            try:
                                out = allocate_npy(tmp, shape, np.float32)  # no SIGBUS on a full disk
                            except OSError as err:
                                raise _NoRoom(err) from None
                            events = self._average_sessions(out, *args)
                            out.flush()
                            del out
                            fault_point("betas.flushed")
                            write_checksums(tmp, y_path)  # before the rename: never data without it
                    except _NoRoom as err:
                        warnings.warn(CacheUnavailableWarning(
                            f"{err.args[0]}; computing the betas without the cache"), stacklevel=2)
                    else:
                        Y = np.load(y_path, mmap_mode="r")
                        try:
                            fault_point("betas.data_in_place")
                            _save_events(events_path, events)
                            write_npy(id_path, nsd_ids)  # written last: marks the entry complete
                        except OSError as err:  # the result stands; the entry is removed
                            for p in (events_path, id_path, y_path):
                                for q in (p, _sidecar(p)):
                                    q.unlink(missing_ok=True)
                            warnings.warn(CacheUnavailableWarning(
                                f"could not complete the betas cache entry {y_path} ({err}); "
                                "returning the betas without caching them"), stacklevel=2)
                        return Y, nsd_ids
        if shape[0] * shape[1] * 4 <= 512 * 2**20:
            out = np.zeros(shape, dtype=np.float32)
        else:  # large output: a memory map of an unlinked, fully allocated file
            out = scratch_npy(self.cache_dir, shape, np.float32)
        self._average_sessions(out, *args)
        return out, nsd_ids

    def _replay_events(self, events: list) -> None:
        """Warn again about (and record) the partial-data events of a cached betas entry."""
        for e in events:
            if isinstance(e, dict) and {"kind", "message"} <= set(e):
                self._record(e["kind"], e["message"], subject=e.get("subject"), session=e.get("session"),
                             file=e.get("file"), n_images=e.get("n_images"), stacklevel=4)

    def _average_sessions(self, out, name, space, sessions, table, row_of, cols, zscore,
                          progress, chunk_columns) -> list[dict]:
        """Fill ``out`` (zeros, (n_images, n_cols)) with the repeat-averaged betas.

        Returns the partial-data events (sessions whose every column is NaN or constant),
        each recorded and warned (:class:`~brainllm_utils.nsd.PartialDataWarning`)."""
        from tqdm.auto import tqdm

        n_rows, n_cols = out.shape
        per_session = np.zeros((n_rows, len(sessions)), dtype=np.float32)
        valid = np.zeros((len(sessions), n_cols), dtype=bool)
        bar = tqdm(sessions, desc=f"{name} {space} betas", disable=not progress, leave=False)
        for j, s in enumerate(bar):
            B = self._read_session(name, space, s, cols)
            rows = row_of[table.loc[table["session"] == s, "nsdId"].to_numpy()]
            if B.shape[0] != rows.size:
                raise NSDFileError(
                    f"{self._beta_files(name, space, s)[0]}: {B.shape[0]} trials, "
                    f"expected {rows.size}"
                )
            valid[j] = _zscore_columns(B, zscore, chunk_columns)
            _accumulate_rows(out, rows, B, chunk_columns)
            np.add.at(per_session[:, j], rows[rows >= 0], 1.0)
            del B
            fault_point("betas.session_added")
        events = []
        dead = ~valid.any(axis=1) if n_cols else np.zeros(len(sessions), dtype=bool)
        if dead.any():
            left = per_session[:, ~dead].sum(axis=1)
            for j in np.flatnonzero(dead):
                s = sessions[j]
                hit = per_session[:, j] > 0
                n_hit, n_lost = int(hit.sum()), int((hit & (left == 0)).sum())
                what = "NaN or constant" if zscore else "NaN"
                files = ", ".join(str(f) for f in self._beta_files(name, space, s))
                msg = (f"{name} session {s}: every one of the {n_cols} {space} columns read is {what} "
                       f"in {files}; the session is left out of the average: {n_hit} images lose "
                       f"their trials of this session, {n_lost} of them have no other valid trial "
                       "and are NaN")
                self._record("session-all-nan", msg, subject=name, session=int(s), file=files,
                             n_images=n_hit, stacklevel=4)
                events.append(dict(kind="session-all-nan", message=msg, subject=name, session=int(s),
                                   file=files, n_images=n_hit))
        # count[i, c] = sum over sessions of trials(i, s) * valid(s, c); blocks of at most
        # 64 MiB of float32 over all rows (a block, its count and the quotient are in memory)
        step = max(1, min(chunk_columns, (64 * 2**20) // (4 * max(n_rows, 1))))
        for c0 in range(0, n_cols, step):
            c1 = min(n_cols, c0 + step)
            count = per_session @ valid[:, c0:c1].astype(np.float32)
            block = np.asarray(out[:, c0:c1])
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, c0:c1] = np.where(count > 0, block / count, np.nan)
        fault_point("betas.averaged")
        return events


def _check_flag(value, name: str) -> None:
    """A TypeError naming ``name`` unless ``value`` is a bool (``True``/``False``, numpy's too)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r}: expected True or False, not {type(value).__name__}")


def _save_events(path: Path, events: list[dict]) -> None:
    """Write the partial-data record of a betas cache entry next to it (checksummed; before the
    ids file, so a complete entry always has it). An ``OSError`` is the caller's to handle."""
    with checked_write(path) as tmp:
        tmp.write_text(json.dumps(events))


def _check_events(events) -> str | None:
    if not isinstance(events, list) or not all(isinstance(e, dict) and {"kind", "message"} <= set(e)
                                               for e in events):
        return "not a list of partial-data events"
    return None


class _NoRoom(Exception):
    """The cache entry's file could not be allocated (full or unwritable folder)."""


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _cached_betas(y_path: Path, id_path: Path, nsd_ids: np.ndarray, n_cols: int, events_path: Path):
    """``(Y, nsd_ids, events)`` from a complete, verified cache entry, or ``None`` (missing or
    discarded).

    The ids file is written last (after the data, its checksums and the partial-data record):
    without it (a killed writer) the entry is incomplete; with it, a missing or changed record
    makes the entry corrupt (its partial-data warnings would be lost).
    """
    if not id_path.exists():
        return None
    cached_ids = load_npy(id_path, shape=nsd_ids.shape, dtype=np.int64, companions=[y_path, events_path])
    if cached_ids is not None and not np.array_equal(cached_ids, nsd_ids):
        discard([id_path, y_path, events_path], "its rows are not the images of the design")
        return None
    if cached_ids is None:
        return None
    if not events_path.exists():  # written before the ids: its absence is damage, not "no events"
        discard([id_path, y_path], f"its partial-data record {events_path.name} is missing")
        return None
    events = load_entry(events_path, verified_loader(lambda p: json.loads(p.read_text())), _check_events,
                        companions=[id_path, y_path])
    if events is None:
        return None
    Y = load_npy(y_path, shape=(nsd_ids.size, n_cols), dtype=np.float32, mmap=True,
                 companions=[id_path, events_path])
    return None if Y is None else (Y, cached_ids, events)


def _zscore_columns(B: np.ndarray, zscore: bool, chunk_columns: int) -> np.ndarray:
    """In place: z-score each column of ``B`` (ddof 0); invalid columns set to 0.

    A column is invalid when it holds a non-finite value or (with ``zscore``) is constant.
    Statistics are accumulated in float64, one block of columns at a time. Returns the
    boolean validity of each column.
    """
    ok = np.empty(B.shape[1], dtype=bool)
    for c0 in range(0, B.shape[1], chunk_columns):
        block = B[:, c0:c0 + chunk_columns]
        good = np.isfinite(block).all(axis=0)
        if zscore:
            mu = block.mean(axis=0, dtype=np.float64)
            sd = np.sqrt(np.mean((block - mu.astype(np.float32)) ** 2, axis=0, dtype=np.float64))
            good &= sd > 0
            block -= mu.astype(np.float32)
            block /= np.where(good, sd, 1.0).astype(np.float32)
        block[:, ~good] = 0.0
        ok[c0:c0 + chunk_columns] = good
    return ok


def _read_mgh_columns(path: Path, cols: np.ndarray, offset: int, T: int, out: np.ndarray,
                      chunk_columns: int, n_expected: int, source: str) -> int:
    """Copy the vertices of ``cols`` that fall in this hemisphere file into ``out``.

    ``out`` is (T, n_cols); ``cols`` index lh-then-rh vertices and this file holds vertices
    ``offset .. offset + n_vertices``, where ``n_vertices`` must be ``n_expected`` (the
    hemisphere's count, read from ``source``). The file is memory-mapped (MGH is
    uncompressed). Returns the file's number of vertices.
    """
    import nibabel as nib

    try:
        img = nib.load(path, mmap=True)
        shape = img.shape
    except Exception as err:
        raise NSDFileError(f"{path}: cannot read the MGH header ({err}); truncated or corrupt?") from err
    if len(shape) != 4 or shape[1:3] != (1, 1) or shape[3] != T:
        raise NSDFileError(f"{path}: expected shape (n_vertices, 1, 1, {T}), found {shape}")
    nv = shape[0]
    if nv != n_expected:
        raise NSDFileError(f"{path}: {nv} vertices, expected {n_expected} (the hemisphere's vertex "
                           f"count, from {source}); every session's file must match it, or the "
                           "columns of the two hemispheres would shift")
    if np.dtype(img.get_data_dtype()).kind != "f":
        raise NSDFileError(f"{path}: betas of dtype {img.get_data_dtype()}, expected float32 (NSD's "
                           "fsaverage betas are percent signal change, read as they are)")
    where = np.flatnonzero((cols >= offset) & (cols < offset + nv))
    try:
        data = np.asanyarray(img.dataobj)
        for i0 in range(0, where.size, chunk_columns):
            idx = where[i0:i0 + chunk_columns]
            out[:, idx] = np.asarray(data[cols[idx] - offset, 0, 0, :], dtype=np.float32).T
    except Exception as err:
        raise NSDFileError(f"{path}: cannot read betas ({err}); truncated or corrupt?") from err
    return nv


def _check_grid(path, shape, affine, grid) -> None:
    """NSDFileError naming both files unless ``path``'s grid is the brain mask's ``grid``."""
    ref_shape, ref_affine, ref_path = grid
    if tuple(shape) != tuple(ref_shape):
        raise NSDFileError(f"{path}: grid {tuple(shape)}, but the brain mask {ref_path} has "
                           f"{tuple(ref_shape)}: both must be on the subject's func1pt8mm grid")
    if not np.allclose(affine, ref_affine, rtol=0, atol=AFFINE_ATOL):
        raise NSDFileError(f"{path}: affine {np.round(affine, 3).tolist()} differs from the brain "
                           f"mask {ref_path}'s {np.round(ref_affine, 3).tolist()} (more than "
                           f"{AFFINE_ATOL} mm): the voxels would not be the same")


def _accumulate_rows(total, rows: np.ndarray, B: np.ndarray, chunk_columns: int) -> None:
    """``total[rows[k]] += B[k]`` for every trial ``k`` with ``rows[k] >= 0``.

    Repeated rows are summed. Done as a sparse (n_rows_hit × T) 0/1 matrix times ``B``,
    block by block of columns, so ``B`` is never copied.
    """
    import scipy.sparse as sp

    trials = np.flatnonzero(rows >= 0)
    if trials.size == 0:
        return
    uniq, inv = np.unique(rows[trials], return_inverse=True)
    S = sp.csr_matrix(
        (np.ones(trials.size, dtype=np.float32), (inv, trials)), shape=(uniq.size, rows.size)
    )
    for c0 in range(0, B.shape[1], chunk_columns):
        c1 = min(B.shape[1], c0 + chunk_columns)
        total[uniq, c0:c1] += S @ B[:, c0:c1]


def _read_nifti_masked(path: Path, cols: np.ndarray, T: int, chunk: int = 64, grid=None) -> np.ndarray:
    """Stream a 4-D NIfTI (X, Y, Z, T) in trial chunks, keeping only ``cols``.

    ``cols`` are C-order flat indices into (X, Y, Z). Returns float32 (T, n_cols) in the
    file's units (scaling applied if the header sets it). Never holds the whole session.
    ``grid``: ``(shape, affine, path)`` of the subject's brain mask; the file's grid must
    match it (shape and affine within :data:`AFFINE_ATOL`).
    """
    import nibabel as nib

    try:
        img = nib.load(path)
        header = img.header
        shape = img.shape
        offset = int(img.dataobj.offset)
        dtype = header.get_data_dtype()
        slope, inter = header.get_slope_inter()
        affine = img.affine
    except Exception as err:
        raise NSDFileError(f"{path}: cannot read the NIfTI header ({err})") from err
    if len(shape) != 4 or shape[3] != T:
        raise NSDFileError(f"{path}: expected a 4-D (X, Y, Z, {T}) image, found shape {shape}")
    if np.dtype(dtype).kind != "i":
        raise NSDFileError(f"{path}: betas of dtype {dtype}, expected int16 (NSD's volume betas are "
                           "PSC × 300, divided by 300 on reading: a float file would be scaled wrongly)")
    if grid is not None:
        _check_grid(path, shape[:3], affine, grid)
    n_vox = int(np.prod(shape[:3]))
    if cols.size and cols.max() >= n_vox:
        raise NSDFileError(f"{path}: grid {shape[:3]} is smaller than the mask it is read with")
    # NIfTI stores data in Fortran order: trial k is a contiguous block of X·Y·Z values,
    # themselves in Fortran order. Map C-order indices to Fortran-order positions.
    fpos = np.ravel_multi_index(np.unravel_index(cols, shape[:3]), shape[:3], order="F")
    out = np.empty((T, cols.size), dtype=np.float32)
    itemsize = dtype.itemsize
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as fh:
            fh.seek(offset)
            for k0 in range(0, T, chunk):
                k1 = min(T, k0 + chunk)
                nbytes = (k1 - k0) * n_vox * itemsize
                buf = fh.read(nbytes)
                if len(buf) != nbytes:
                    raise NSDFileError(
                        f"{path}: file ends after trial {k0}: truncated (expected {T} trials)"
                    )
                block = np.frombuffer(buf, dtype=dtype).reshape(k1 - k0, n_vox)
                out[k0:k1] = block[:, fpos]
    except (OSError, EOFError, gzip.BadGzipFile) as err:
        raise NSDFileError(f"{path}: cannot decompress ({err}); truncated or corrupt?") from err
    if slope is not None and np.isfinite(slope) and (slope != 1 or (inter or 0) != 0):
        out = out * np.float32(slope) + np.float32(inter or 0)
    return out
