"""Writers that stream trials into NSD's beta files, so that a session never sits in memory.

Both NSD beta formats keep one trial's values contiguous on disk: the NIfTI
``betas_sessionNN.nii.gz`` is (X, Y, Z, T) in Fortran order (a trial = one volume), the
fsaverage ``{lh,rh}.betas_sessionNN.mgh`` is (V, 1, 1, T) in Fortran order (a trial = V
values). :class:`NiftiTrialWriter` and :class:`MghTrialWriter` write the header once, then
any number of trial batches in order, and check at the end that exactly ``n_trials`` came.
The files are the ones ``nibabel.save`` writes for the whole array (same header, same
bytes of data; the gzip stream of the NIfTI is deterministic: mtime 0).
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

__all__ = ["NiftiTrialWriter", "MghTrialWriter"]


class _TrialWriter:
    def __init__(self, path, n_trials):
        if int(n_trials) < 1:
            raise ValueError(f"n_trials must be >= 1, got {n_trials}")
        self.path = Path(path)
        self.n_trials = int(n_trials)
        self.written = 0
        self._fh = None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._open()
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                if self.written != self.n_trials:
                    raise ValueError(f"{self.path}: {self.written} trials written, header says {self.n_trials}")
                self._finish()
        finally:
            self._close()
        return False

    def _count(self, n):
        if self.written + n > self.n_trials:
            raise ValueError(f"{self.path}: more than {self.n_trials} trials written")
        self.written += n


class NiftiTrialWriter(_TrialWriter):
    """Write a 4-D NIfTI-1 ``.nii.gz`` (X, Y, Z, T) one batch of trials at a time.

    Parameters
    ----------
    path : str or path-like
        Destination ``.nii.gz``.
    shape : tuple of int
        The volume grid (X, Y, Z).
    n_trials : int
        T, the length of the 4th axis.
    affine : array-like of float of shape (4, 4)
        Voxel → mm.
    inside : array-like of int, optional
        C-order flat indices (into X·Y·Z) of the voxels that :meth:`write` receives; the
        others are 0. Default: every voxel.
    dtype : numpy dtype, default=int16
        Stored dtype.
    compresslevel : int, default=1
        gzip level (nibabel's default).
    """

    def __init__(self, path, shape, n_trials, affine, inside=None, dtype=np.int16, compresslevel=1):
        super().__init__(path, n_trials)
        import nibabel as nib

        self.shape = tuple(int(n) for n in shape)
        if len(self.shape) != 3 or min(self.shape) < 1:
            raise ValueError(f"shape must be 3 positive ints, got {shape}")
        self.dtype = np.dtype(dtype)
        self.inside = None if inside is None else np.asarray(inside, np.int64)
        img = nib.Nifti1Image(np.zeros((1, 1, 1, 1), self.dtype), np.asarray(affine, float))
        img.header.set_data_dtype(self.dtype)
        img.update_header()
        hdr = img.header.copy()
        hdr.set_data_shape((*self.shape, self.n_trials))
        self._header = hdr
        self._level = int(compresslevel)

    def _open(self):
        self._raw = open(self.path, "wb")
        self._fh = gzip.GzipFile(filename="", mode="wb", fileobj=self._raw, compresslevel=self._level, mtime=0)
        self._header.write_to(self._fh)
        pad = int(self._header.get_data_offset()) - self._fh.tell()
        if pad > 0:
            self._fh.write(b"\x00" * pad)

    def write(self, values):
        """Append trials.

        Parameters
        ----------
        values : array-like of shape (n, len(inside)) or (n, X*Y*Z)
            One row per trial, voxels in C order (the ``inside`` ones when given).
        """
        values = np.asarray(values)
        n = values.shape[0]
        nvox = int(np.prod(self.shape))
        if self.inside is not None:
            if values.shape != (n, self.inside.size):
                raise ValueError(f"{self.path}: need (n, {self.inside.size}) values, got {values.shape}")
            full = np.zeros((n, nvox), self.dtype)
            full[:, self.inside] = values
        else:
            if values.shape != (n, nvox):
                raise ValueError(f"{self.path}: need (n, {nvox}) values, got {values.shape}")
            full = values.astype(self.dtype, copy=False)
        self._count(n)
        # C-flat (X, Y, Z) per trial -> Fortran order of the volume = C order of (Z, Y, X)
        block = full.reshape(n, *self.shape).transpose(0, 3, 2, 1)
        self._fh.write(np.ascontiguousarray(block, dtype=self.dtype.newbyteorder("<")).tobytes())

    def _finish(self):
        pass

    def _close(self):
        if self._fh is not None:
            self._fh.close()
            self._raw.close()
            self._fh = None


class MghTrialWriter(_TrialWriter):
    """Write an fsaverage MGH (V, 1, 1, T) float32 one batch of trials at a time.

    Parameters
    ----------
    path : str or path-like
        Destination ``.mgh`` (uncompressed, as NSD's).
    n_vertices : int
        V.
    n_trials : int
        T.
    """

    def __init__(self, path, n_vertices, n_trials):
        super().__init__(path, n_trials)
        import nibabel as nib

        self.n_vertices = int(n_vertices)
        img = nib.MGHImage(np.zeros((self.n_vertices, 1, 1, 1), np.float32), np.eye(4))
        img.update_header()
        hdr = img.header.copy()
        hdr.set_data_shape((self.n_vertices, 1, 1, self.n_trials))
        self._header = hdr

    def _open(self):
        self._fh = open(self.path, "wb")
        self._header.writehdr_to(self._fh)
        self._fh.seek(int(self._header.get_data_offset()))

    def write(self, values):
        """Append trials.

        Parameters
        ----------
        values : array-like of float of shape (n, n_vertices)
            One row per trial.
        """
        values = np.asarray(values)
        if values.ndim != 2 or values.shape[1] != self.n_vertices:
            raise ValueError(f"{self.path}: need (n, {self.n_vertices}) values, got {values.shape}")
        self._count(values.shape[0])
        self._fh.write(np.ascontiguousarray(values, dtype=">f4").tobytes())

    def _finish(self):
        self._header.writeftr_to(self._fh)

    def _close(self):
        if self._fh is not None:
            self._fh.close()
            self._fh = None
