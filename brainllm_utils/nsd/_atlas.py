"""Atlases and masks of an NSD copy: ROI labels, brain masks, vertex counts, ncsnr, columns."""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from .layout import SPACES, NSDFileError, read_ctab, subject_name

#: Largest difference allowed between two affines of one subject's func1pt8mm grid (mm).
AFFINE_ATOL = 1e-3


def _is_icosahedral(n: int) -> bool:
    """Whether ``n`` is a vertex count of a FreeSurfer icosahedral sphere, ``10·4^k + 2``
    (fsaverage: 163,842, fsaverage5: 10,242)."""
    m = n - 2
    if m < 10 or m % 10:
        return False
    q = m // 10
    return q & (q - 1) == 0 and (q.bit_length() - 1) % 2 == 0

__all__ = ["noise_ceiling_from_ncsnr"]


@fill_doc
def noise_ceiling_from_ncsnr(ncsnr: np.ndarray, n: float | np.ndarray = 3) -> np.ndarray:
    """Noise ceiling (% explainable variance) of ``n``-trial averages from ``ncsnr``.

    ``NC = 100 * ncsnr**2 / (ncsnr**2 + 1/n)`` (Allen et al. 2022). ``n`` may be an array
    of per-image trial counts, in which case ``1/n`` is replaced by its mean.

    Parameters
    ----------
    ncsnr : array-like of shape (n_vertices,) or (X, Y, Z)
        Noise-ceiling SNR per vertex or voxel (:meth:`NSD.ncsnr`).
    n : float or array-like of float, default=3
        Trials averaged per image (3: the paper's repeat-averaged betas); an array of
        per-image counts uses the mean of ``1/n``.

    Returns
    -------
    nc : ndarray of float32, the shape of ``ncsnr``
        Noise ceiling in percent of variance (NaN where ``ncsnr`` is NaN).

    Raises
    ------
    ValueError
        When ``n`` is empty, not finite or ≤ 0 (a ceiling of 0 % would follow silently).

    Examples
    --------
    >>> noise_ceiling_from_ncsnr(np.array([0.0, 1.0]), n=1)
    array([ 0., 50.], dtype=float32)
    """
    ncsnr = np.asarray(ncsnr, dtype=np.float64)
    if isinstance(n, (str, bytes, bool, np.bool_)):
        raise TypeError(f"n={n!r}: expected the number of trials averaged (a number or an array of them)")
    n = np.asarray(n, dtype=np.float64)
    if n.size == 0 or not (np.isfinite(n).all() and (n > 0).all()):
        raise ValueError(f"n: expected trial counts > 0 (finite), got {n if n.size < 6 else n[:5]}")
    inv_n = np.mean(1.0 / n) if n.ndim else 1.0 / float(n)
    snr2 = ncsnr**2
    return (100.0 * snr2 / (snr2 + inv_n)).astype(np.float32)


def _integer_labels(values: np.ndarray, path) -> np.ndarray:
    """``values`` as int16 labels; NSDFileError naming ``path`` unless they are integers."""
    if not np.isfinite(values).all() or not np.array_equal(values, np.rint(values)):
        raise NSDFileError(f"{path}: ROI labels must be integers (found non-integer or non-finite values)")
    return np.rint(values).astype(np.int16)


#: NSD's atlases (``nsddata/freesurfer/*/label``, ``func1pt8mm/roi``): an unknown name is a
#: typo (ValueError listing these), a known one missing on disk a download (NSDFileError).
NSD_ATLASES = ("streams", "nsdgeneral", "prf-visualrois", "prf-eccrois", "floc-faces", "floc-words",
               "floc-bodies", "floc-places", "Kastner2015", "HCP_MMP1", "corticalsulc", "thalamus",
               "MTL")


class _AtlasMixin:
    """Methods of :class:`~brainllm_utils.nsd.NSD` that read atlases, masks and ``ncsnr``.

    Needs ``self.root``, ``self.path``, ``self.subjects`` and ``self._beta_dir``.
    """

    @fill_doc
    def roi_labels(self, atlas: str, subject=None) -> dict[int, str]:
        """``{label: name}`` of an atlas, from its ``.ctab`` (fsaverage's if no subject).

        Parameters
        ----------
        %(atlas)s
        subject : str or int, optional
            Read the subject's colour table (falling back to fsaverage's when the subject
            has none); ``None``: fsaverage's.

        Returns
        -------
        labels : dict of int to str
            Label value → ROI name (:func:`~brainllm_utils.nsd.layout.read_ctab`).
        """
        who = "fsaverage" if subject is None else subject_name(subject)
        self._check_atlas(atlas)
        p = self.root / "nsddata" / "freesurfer" / who / "label" / f"{atlas}.mgz.ctab"
        if not p.exists() and who != "fsaverage":
            p = self.root / "nsddata" / "freesurfer" / "fsaverage" / "label" / f"{atlas}.mgz.ctab"
        if not p.exists():
            self.path(f"nsddata/freesurfer/{who}/label/{atlas}.mgz.ctab", "ROI colour table")
        return read_ctab(p)

    @fill_doc
    def roi_volume(self, subject, atlas: str, space: str = "fsaverage") -> np.ndarray:
        """Integer label array of an atlas: (V_lh + V_rh,) on fsaverage, (X, Y, Z) in func1pt8mm.

        Parameters
        ----------
        %(subject_any)s
            Unused on fsaverage (the atlas is fsaverage's).
        %(atlas)s
        %(space)s

        Returns
        -------
        labels : ndarray of int16 of shape (n_vertices_lh + n_vertices_rh,) or (X, Y, Z)
            The label of each vertex (lh then rh) or voxel; 0 or −1 outside every ROI.
        """
        import nibabel as nib

        name = subject_name(subject)
        if space not in SPACES:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        self._check_atlas(atlas)
        if space == "fsaverage":
            parts = []
            for h, n in zip(("lh", "rh"), self.n_vertices()):
                rel = f"nsddata/freesurfer/fsaverage/label/{h}.{atlas}.mgz"
                parts.append(_integer_labels(self._surface_values(rel, n, nib, "labels"), self.root / rel))
            return np.concatenate(parts)
        rel = f"nsddata/ppdata/{name}/func1pt8mm/roi/{atlas}.nii.gz"
        return _integer_labels(self._grid_values(rel, name, nib), self.root / rel)

    def _load_image(self, rel: str, nib) -> np.ndarray:
        p = self.path(rel)
        try:
            return np.asarray(nib.load(p).get_fdata(dtype=np.float32))
        except Exception as err:
            raise NSDFileError(f"{p}: cannot read the image ({err}); the file may be truncated") from err

    def _surface_values(self, rel: str, n_expected: int, nib, what: str) -> np.ndarray:
        """A per-vertex file of one hemisphere as a flat array, its vertex count checked."""
        a = self._load_image(rel, nib)
        if a.ndim == 0 or a.size != a.shape[0] or a.shape[0] != n_expected:
            raise NSDFileError(
                f"{self.root / rel}: {what} of shape {a.shape}, expected ({n_expected},) (or "
                f"({n_expected}, 1, 1)): one value per vertex of the hemisphere, as in "
                f"{self._n_vertices_source}")
        return a.ravel()

    def _grid_values(self, rel: str, name: str, nib) -> np.ndarray:
        """A 3-D volume of ``name``'s func1pt8mm grid, its shape and affine checked against
        the brain mask's."""
        p = self.path(rel)
        try:
            img = nib.load(p)
            shape, affine = img.shape, img.affine
        except Exception as err:
            raise NSDFileError(f"{p}: cannot read the image ({err}); the file may be truncated") from err
        ref_shape, ref_affine, ref_path = self._grid(name)
        if tuple(shape) != tuple(ref_shape):
            raise NSDFileError(f"{p}: grid {tuple(shape)}, but the brain mask {ref_path} has "
                               f"{tuple(ref_shape)}: both must be on {name}'s func1pt8mm grid")
        if not np.allclose(affine, ref_affine, rtol=0, atol=AFFINE_ATOL):
            raise NSDFileError(f"{p}: affine {np.round(affine, 3).tolist()} differs from the brain "
                               f"mask {ref_path}'s {np.round(ref_affine, 3).tolist()} (more than "
                               f"{AFFINE_ATOL} mm): the voxels would not be the same")
        return self._load_image(rel, nib)

    def _grid(self, subject) -> tuple:
        """``(shape, affine, path)`` of the subject's func1pt8mm grid (its ``brainmask.nii.gz``)."""
        import nibabel as nib

        name = subject_name(subject)
        grids = self.__dict__.setdefault("_grids", {})
        if name not in grids:
            p = self.path(f"nsddata/ppdata/{name}/func1pt8mm/brainmask.nii.gz", "brain mask")
            try:
                img = nib.load(p)
                shape, affine = tuple(int(x) for x in img.shape), np.asarray(img.affine)
            except Exception as err:
                raise NSDFileError(f"{p}: cannot read the image header ({err})") from err
            if len(shape) != 3:
                raise NSDFileError(f"{p}: expected a 3-D (X, Y, Z) mask, found shape {shape}")
            grids[name] = (shape, affine, p)
        return grids[name]

    @fill_doc
    def atlases(self, space: str = "fsaverage", subject=None) -> list[str]:
        """Atlases on disk: those with a colour table and label files.

        Parameters
        ----------
        %(space)s
        subject : str or int, optional
            With ``space="func1pt8mm"``: the subject whose ``roi/`` folder is listed
            (``None``: the first subject with one).

        Returns
        -------
        atlases : list of str
            Sorted atlas names (``"streams"``, ``"nsdgeneral"``, …).
        """
        label = self.root / "nsddata" / "freesurfer" / "fsaverage" / "label"
        found = set()
        if space == "fsaverage":
            if label.is_dir():
                found = {p.name[3:-4] for p in label.glob("lh.*.mgz")}
        elif space == "func1pt8mm":
            names = [subject_name(subject)] if subject is not None else self.subjects
            for name in names:
                roi = self.root / "nsddata" / "ppdata" / name / "func1pt8mm" / "roi"
                found |= {p.name[:-7] for p in roi.glob("*.nii.gz") if not p.name.startswith(("lh.", "rh."))}
        else:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        return sorted(found)

    def _check_atlas(self, atlas) -> None:
        """ValueError listing the known atlases unless ``atlas`` names one (NSD's or on disk)."""
        if not isinstance(atlas, str) or not atlas:
            raise TypeError(f"atlas={atlas!r}: expected an atlas name (str) such as 'streams'")
        label = self.root / "nsddata" / "freesurfer"
        on_disk = {p.name[:-len(".mgz.ctab")] for p in label.glob("*/label/*.mgz.ctab")}
        on_disk |= {p.name[:-7] for p in (self.root / "nsddata" / "ppdata").glob("subj*/func1pt8mm/roi/*.nii.gz")
                    if not p.name.startswith(("lh.", "rh."))}
        if atlas not in on_disk | set(NSD_ATLASES):
            raise ValueError(f"atlas={atlas!r}: unknown atlas; NSD's atlases: {sorted(NSD_ATLASES)}; "
                             f"on disk: {sorted(on_disk) or 'none'}")

    @fill_doc
    def roi_mask(self, subject, atlas: str, label=None, space: str = "fsaverage") -> np.ndarray:
        """Boolean mask of ``atlas`` label(s); ``label`` None means every label > 0.

        Parameters
        ----------
        %(subject_any)s
        %(atlas)s
        label : str, int or list of str or int, optional
            A name from the ctab (``"ventral"``), a positive integer, or a list of them;
            ``None``: every label > 0.
        %(space)s

        Returns
        -------
        mask : ndarray of bool of shape (n_vertices_lh + n_vertices_rh,) or (X, Y, Z)
            ``True`` on the vertices or voxels of the label(s) (as :meth:`roi_volume`).

        Raises
        ------
        ValueError
            For a name the atlas lacks (the message lists its names) or a label ≤ 0.
        """
        vol = self.roi_volume(subject, atlas, space)
        try:
            names = self.roi_labels(atlas, None if space == "fsaverage" else subject)
        except NSDFileError:
            if label is not None:
                raise
            names = None  # every label > 0 needs no name: no table to check the values against
        if names is not None:
            self._check_labels_in_ctab(vol, atlas, names, subject, space)
        if label is None:
            return vol > 0
        by_name = {v: k for k, v in names.items()}
        wanted = [label] if isinstance(label, str) or np.ndim(label) == 0 else list(label)
        codes = []
        for lab in wanted:
            if isinstance(lab, (bool, np.bool_, float, np.floating)) or not isinstance(lab, (str, int, np.integer)):
                raise TypeError(f"label={label!r}: expected a label name (str), a positive integer "
                                f"or a list of them; got {type(lab).__name__} {lab!r}")
            if isinstance(lab, str):
                if lab not in by_name:
                    raise ValueError(
                        f"label {lab!r} is not in atlas {atlas!r}; names: "
                        f"{[n for k, n in sorted(names.items()) if k > 0]}"
                    )
                codes.append(by_name[lab])
            else:
                if int(lab) <= 0:
                    raise ValueError(f"label {lab}: ROI labels are positive (−1/0 mean outside)")
                codes.append(int(lab))
        return np.isin(vol, codes)

    def _check_labels_in_ctab(self, vol, atlas, names, subject, space) -> None:
        """NSDFileError naming the label file and its colour table when a positive label value
        of the file is not in the table (a label file of another atlas or version)."""
        present = np.unique(vol[vol > 0])
        unknown = sorted(set(present.tolist()) - set(names))
        if unknown:
            if space == "fsaverage":
                files = f"nsddata/freesurfer/fsaverage/label/{{lh,rh}}.{atlas}.mgz"
            else:
                files = f"nsddata/ppdata/{subject_name(subject)}/func1pt8mm/roi/{atlas}.nii.gz"
            raise NSDFileError(
                f"{self.root / files}: label values {unknown[:10]} are not in the colour table "
                f"{atlas}.mgz.ctab (which lists {sorted(k for k in names if k > 0)[:20]}): the label "
                "file and its table do not belong together")

    @fill_doc
    def brainmask(self, subject) -> np.ndarray:
        """Boolean (X, Y, Z) brain mask of the subject's func1pt8mm space.

        Parameters
        ----------
        %(subject_any)s

        Returns
        -------
        mask : ndarray of bool of shape (X, Y, Z)
            ``brainmask.nii.gz`` > 0.
        """
        import nibabel as nib

        name = subject_name(subject)
        return self._load_image(f"nsddata/ppdata/{name}/func1pt8mm/brainmask.nii.gz", nib) > 0

    @fill_doc
    def affine(self, subject) -> np.ndarray:
        """4 × 4 affine of the subject's func1pt8mm grid.

        Parameters
        ----------
        %(subject_any)s

        Returns
        -------
        affine : ndarray of shape (4, 4)
            Voxel indices → scanner millimetres (from ``brainmask.nii.gz``).
        """
        return self._grid(subject)[1]

    def n_vertices(self) -> tuple[int, int]:
        """Vertices per hemisphere of the fsaverage data (163,842 on NSD, 10,242 in the sandbox).

        Read from the fsaverage ``streams`` atlas, or else from the first subject's first
        session of fsaverage betas.

        Returns
        -------
        n_lh, n_rh : int
            Vertices of the left and the right hemisphere.
        """
        import nibabel as nib

        if "_n_vertices" in self.__dict__:
            return self.__dict__["_n_vertices"]
        out, paths = [], []
        for h in ("lh", "rh"):
            rel = f"nsddata/freesurfer/fsaverage/label/{h}.streams.mgz"
            p = self.root / rel
            if not p.exists():
                name = self.subjects[0] if self.subjects else "subj01"
                found = self._sessions_found(name, "fsaverage")
                p = self._beta_dir(name, "fsaverage") / f"{h}.betas_session{found[0] if found else 1:02d}.mgh"
            p = self.path(str(p.relative_to(self.root)))
            try:
                shape = nib.load(p).shape
            except Exception as err:
                raise NSDFileError(f"{p}: cannot read the image header ({err})") from err
            n = int(shape[0]) if len(shape) else 0
            if not _is_icosahedral(n):
                raise NSDFileError(
                    f"{p}: {n} vertices; an fsaverage hemisphere has 10·4^k + 2 (163,842 on NSD, "
                    "10,242 on fsaverage5): the file is damaged or not of fsaverage")
            out.append(n)
            paths.append(p)
        if out[0] != out[1]:
            raise NSDFileError(f"{paths[0]} has {out[0]} vertices but {paths[1]} has {out[1]}: the "
                               "two fsaverage hemispheres have the same number")
        self.__dict__["_n_vertices"] = (out[0], out[1])
        self.__dict__["_n_vertices_from"] = f"{paths[0]} and {paths[1]}"
        return out[0], out[1]

    @property
    def _n_vertices_source(self) -> str:
        self.n_vertices()
        return self.__dict__["_n_vertices_from"]

    # ----------------------------------------------------------- ncsnr
    @fill_doc
    def ncsnr(self, subject, space: str = "fsaverage") -> np.ndarray:
        """Shipped ``ncsnr`` (float32): (V_lh + V_rh,) on fsaverage, (X, Y, Z) in func1pt8mm.

        Parameters
        ----------
        %(subject_any)s
        %(space)s

        Returns
        -------
        ncsnr : ndarray of float32 of shape (n_vertices_lh + n_vertices_rh,) or (X, Y, Z)
            Noise-ceiling SNR of each vertex (lh then rh) or voxel.
        """
        import nibabel as nib

        name = subject_name(subject)
        d = self._beta_dir(name, space).relative_to(self.root)
        if space == "fsaverage":
            return np.concatenate(
                [self._surface_values(f"{d}/{h}.ncsnr.mgh", n, nib, "ncsnr")
                 for h, n in zip(("lh", "rh"), self.n_vertices())]
            )
        return self._grid_values(f"{d}/ncsnr.nii.gz", name, nib)

    @fill_doc
    def noise_ceiling(self, subject, space: str = "fsaverage", n: float = 3) -> np.ndarray:
        """Noise ceiling in % for ``n``-trial averages: ``100·ncsnr²/(ncsnr² + 1/n)``.

        Parameters
        ----------
        %(subject_any)s
        %(space)s
        n : float or array-like of float, default=3
            Trials averaged per image (as :func:`noise_ceiling_from_ncsnr`).

        Returns
        -------
        nc : ndarray of float32 of shape (n_vertices_lh + n_vertices_rh,) or (X, Y, Z)
            :func:`noise_ceiling_from_ncsnr` of :meth:`ncsnr`.
        """
        return noise_ceiling_from_ncsnr(self.ncsnr(subject, space), n)

    @fill_doc
    def roi_values(self, subject, atlas: str, values: np.ndarray, space: str = "fsaverage"):
        """Long DataFrame (``roi``, ``value``) of per-vertex/voxel ``values`` in each label.

        Parameters
        ----------
        %(subject_any)s
        %(atlas)s
        values : array-like of shape (n_vertices_lh + n_vertices_rh,) or (X, Y, Z)
            One value per vertex or voxel of the full space (e.g. from :meth:`to_space`);
            NaNs are dropped.
        %(space)s

        Returns
        -------
        table : pandas.DataFrame
            Columns ``roi`` (label name) and ``value``, one row per finite value inside a
            label > 0, labels in ctab order (empty, with those columns, when there is none).
        """
        import pandas as pd

        labels = self.roi_volume(subject, atlas, space).ravel()
        values = np.asarray(values).ravel()
        if values.shape != labels.shape:
            raise ValueError(f"values: expected {labels.shape} entries for {space}, got {values.shape}")
        names = self.roi_labels(atlas, None if space == "fsaverage" else subject)
        frames = []
        for code, name in sorted(names.items()):
            sel = (labels == code) & np.isfinite(values)
            if code > 0 and sel.any():
                frames.append(pd.DataFrame({"roi": name, "value": values[sel]}))
        if not frames:
            return pd.DataFrame({"roi": pd.Series(dtype=str), "value": pd.Series(dtype=float)})
        return pd.concat(frames, ignore_index=True)

    # ------------------------------------------------------------ betas
    @fill_doc
    def columns(self, subject, space: str = "fsaverage", roi=None) -> np.ndarray:
        """Flat indices (C order) of the columns :meth:`betas` returns for ``roi``.

        fsaverage: indices into the lh-then-rh vertex list. func1pt8mm: indices into the
        flattened (X, Y, Z) grid, restricted to the brain mask.

        Parameters
        ----------
        %(subject_any)s
        %(space)s
        %(roi)s

        Returns
        -------
        columns : ndarray of int64 of shape (n_columns,)
            Increasing flat indices.
        """
        name = subject_name(subject)
        if space == "fsaverage":
            n_total = sum(self.n_vertices())
            base = np.ones(n_total, dtype=bool)
        elif space == "func1pt8mm":
            base = self.brainmask(name)
        else:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        if isinstance(roi, tuple) and len(roi) != 2:
            raise ValueError(f"roi={roi!r}: expected (atlas, label), e.g. ('streams', 'ventral')")
        if roi is None:
            mask = base
        elif isinstance(roi, tuple) and len(roi) == 2 and isinstance(roi[0], str):
            mask = self.roi_mask(name, roi[0], roi[1], space) & base
        else:
            mask = np.asarray(roi)
            if mask.dtype != bool or mask.shape != base.shape:
                raise ValueError(
                    f"roi: expected None, (atlas, label) or a boolean mask of shape {base.shape} "
                    f"for space {space!r}; got dtype {mask.dtype}, shape {mask.shape}"
                )
            mask = mask & base
        return np.flatnonzero(mask.ravel())

    @fill_doc
    def to_space(self, values: np.ndarray, subject, space: str = "fsaverage", roi=None,
                 fill: float = np.nan) -> np.ndarray:
        """Put per-column ``values`` (…, n_columns) back into the full surface or volume.

        Parameters
        ----------
        values : array-like of shape (..., n_columns)
            Values of the columns of :meth:`columns` (e.g. one encoding score per vertex of
            an ROI), with any leading axes.
        %(subject_any)s
        %(space)s
        %(roi)s
            The ROI the columns came from.
        fill : float, default=nan
            Value of the vertices or voxels outside the columns.

        Returns
        -------
        full : ndarray of float32 of shape (..., n_vertices_lh + n_vertices_rh) or (..., X, Y, Z)
            ``values`` in the full space.
        """
        cols = self.columns(subject, space, roi)
        values = np.asarray(values)
        if values.shape[-1] != cols.size:
            raise ValueError(f"values have {values.shape[-1]} columns; roi has {cols.size}")
        if space == "fsaverage":
            shape = (sum(self.n_vertices()),)
        else:
            shape = self.brainmask(subject).shape
        out = np.full(values.shape[:-1] + (int(np.prod(shape)),), fill, dtype=np.float32)
        out[..., cols] = values
        return out.reshape(values.shape[:-1] + shape)
