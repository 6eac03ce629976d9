"""Reader for the Natural Scenes Dataset (NSD) release layout.

One class, :class:`NSD`, reads a local NSD copy (or the generated sandbox, which uses the
same layout) with no special cases: every size (number of images, trials per session,
grids, vertices) is derived from the files, never hard-coded.

Index conventions (``shared/docs/nsd_layout.md``):

- ``nsdId`` is 0-based (row of ``nsd_stim_info_merged.csv``, index into ``imgBrick``);
- ``masterordering``, ``subjectim``, ``sharedix``, ``73KID``/``10KID`` are 1-based.

Betas are read session by session, masked before anything is accumulated, z-scored per
voxel within each session, and averaged over repeats into a float32 array (a memory map
for large outputs), cached atomically and keyed by every argument.

Examples
--------
>>> nsd = NSD("data/sandbox")                                   # doctest: +SKIP
>>> Y, ids = nsd.betas("subj01", space="fsaverage", roi=("streams", "ventral"))  # doctest: +SKIP
>>> caps = nsd.captions(ids[:3])                                 # doctest: +SKIP
"""

from __future__ import annotations

import ast
import functools
import gzip
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from .paths import atomic_path, atomic_save_npy, get_cache_dir, get_data_home

__all__ = [
    "NSD",
    "NSDFileError",
    "NSD_SESSIONS",
    "BETA_VERSION",
    "download_hint",
    "noise_ceiling_from_ncsnr",
]

#: Sessions acquired per subject in the full NSD release (2023), used only to define the
#: shared test set for subjects whose files are not on disk.
NSD_SESSIONS = {1: 40, 2: 40, 3: 32, 4: 30, 5: 40, 6: 32, 7: 40, 8: 30}
#: The GLMsingle beta version used by the paper ("b3").
BETA_VERSION = "betas_fithrf_GLMdenoise_RR"
SPACES = ("fsaverage", "func1pt8mm")

_EXPDESIGN = "nsddata/experiments/nsd/nsd_expdesign.mat"
_STIMINFO = "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
_STIMULI = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
_ANNOTATIONS = "nsddata_stimuli/stimuli/nsd/annotations"
_CACHE_VERSION = "1"


class NSDFileError(FileNotFoundError):
    """A file of the NSD layout is missing, truncated, corrupt or has the wrong shape."""


def download_hint(relpath: str) -> str:
    """The command that fetches ``relpath`` (relative to the NSD root) from the NSD bucket."""
    relpath = str(relpath).strip("/")
    if relpath.startswith("nsddata_stimuli/stimuli/nsd/annotations"):
        return (
            "COCO 2017 annotations are not in the NSD bucket: download "
            "annotations_trainval2017.zip from the COCO website and place captions_*2017.json "
            f"and instances_*2017.json in <root>/{_ANNOTATIONS}/"
        )
    return (
        f"aws s3 sync --no-sign-request s3://natural-scenes-dataset/{relpath} <root>/{relpath}"
        " (accept the NSD Terms and Conditions first; see the book's 'Getting NSD' page)"
    )


def noise_ceiling_from_ncsnr(ncsnr: np.ndarray, n: float | np.ndarray = 3) -> np.ndarray:
    """Noise ceiling (% explainable variance) of ``n``-trial averages from ``ncsnr``.

    ``NC = 100 * ncsnr**2 / (ncsnr**2 + 1/n)`` (Allen et al. 2022). ``n`` may be an array
    of per-image trial counts, in which case ``1/n`` is replaced by its mean.
    """
    ncsnr = np.asarray(ncsnr, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    inv_n = np.mean(1.0 / n) if n.ndim else 1.0 / float(n)
    snr2 = ncsnr**2
    return (100.0 * snr2 / (snr2 + inv_n)).astype(np.float32)


def _subject_name(subject) -> str:
    if isinstance(subject, (int, np.integer)):
        return f"subj{int(subject):02d}"
    m = re.fullmatch(r"(?:subj)?0*(\d+)", str(subject))
    if not m:
        raise ValueError(f"subject {subject!r}: expected 'subjNN' (e.g. 'subj01') or an integer")
    return f"subj{int(m.group(1)):02d}"


def _file_identity(path: Path) -> str:
    st = path.stat()
    return f"{path.name}:{st.st_size}:{st.st_mtime_ns}"


def _read_ctab(path: Path) -> dict[int, str]:
    labels = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lstrip("-").isdigit():
            labels[int(parts[0])] = parts[1]
    if not labels:
        raise NSDFileError(f"{path}: expected lines '<int> <name>' (a FreeSurfer colour table)")
    return labels


class NSD:
    """A local NSD copy (or the sandbox) in the NSD release layout.

    Parameters
    ----------
    root : path-like, optional
        The NSD root (the folder holding ``nsddata/``, ``nsddata_betas/`` and
        ``nsddata_stimuli/``). Default: ``$BRAINLLM_DATA``, then ``<repo>/data/sandbox``.
    cache_dir : path-like, optional
        Where averaged betas are cached (default: :func:`brainllm_utils.paths.get_cache_dir`).
    beta_version : str
        GLMsingle beta version folder, default ``betas_fithrf_GLMdenoise_RR``.
    """

    def __init__(self, root=None, cache_dir=None, beta_version: str = BETA_VERSION):
        self.root = get_data_home(root)
        if not self.root.is_dir():
            raise NSDFileError(
                f"NSD root {self.root} does not exist: expected a folder with the NSD release "
                "layout (nsddata/, nsddata_betas/, nsddata_stimuli/). Generate the sandbox with "
                "`python -m brainllm_utils.synth data/sandbox` or point BRAINLLM_DATA / the "
                "data_home parameter at a local NSD copy."
            )
        self._cache_dir = cache_dir
        self.beta_version = beta_version
        self._json_cache: dict[str, dict] = {}

    def __repr__(self) -> str:
        return f"NSD(root={str(self.root)!r})"

    # ------------------------------------------------------------------ files
    def path(self, relpath: str, kind: str = "file") -> Path:
        """Absolute path of ``relpath``; raises :class:`NSDFileError` if it is missing."""
        p = self.root / relpath
        if not p.exists():
            raise NSDFileError(
                f"missing NSD {kind}: {p}\n  expected: {relpath} under the NSD root\n"
                f"  get it with: {download_hint(relpath)}"
            )
        return p

    @property
    def cache_dir(self) -> Path:
        return get_cache_dir(self._cache_dir)

    # ----------------------------------------------------------- experiment
    @functools.cached_property
    def expdesign(self) -> dict[str, np.ndarray]:
        """``masterordering`` (n_trials,), ``subjectim`` (8, K), ``sharedix`` (S,), all 1-based int64."""
        import scipy.io

        p = self.path(_EXPDESIGN)
        try:
            mat = scipy.io.loadmat(p)
        except Exception as err:  # truncated or not a MAT file
            raise NSDFileError(f"{p}: cannot read as a MATLAB file ({err})") from err
        out = {}
        for key in ("masterordering", "subjectim", "sharedix"):
            if key not in mat:
                raise NSDFileError(f"{p}: expected a '{key}' field (NSD expdesign)")
        out["masterordering"] = np.asarray(mat["masterordering"]).ravel().astype(np.int64)
        out["subjectim"] = np.asarray(mat["subjectim"]).astype(np.int64)
        out["sharedix"] = np.asarray(mat["sharedix"]).ravel().astype(np.int64)
        if "stimpattern" in mat:
            out["stimpattern"] = np.asarray(mat["stimpattern"])
        k = out["subjectim"].shape[1]
        mo = out["masterordering"]
        if mo.min() < 1 or mo.max() > k:
            raise NSDFileError(f"{p}: masterordering values must lie in 1..{k} (subjectim columns)")
        return out

    @functools.cached_property
    def stim_info(self):
        """``nsd_stim_info_merged.csv`` as a DataFrame; row i ↔ nsdId i."""
        import pandas as pd

        p = self.path(_STIMINFO)
        try:
            df = pd.read_csv(p, index_col=0)
        except Exception as err:
            raise NSDFileError(f"{p}: cannot parse as CSV ({err})") from err
        for col in ("cocoId", "cocoSplit", "nsdId"):
            if col not in df.columns:
                raise NSDFileError(f"{p}: expected a '{col}' column")
        if not np.array_equal(df["nsdId"].to_numpy(), np.arange(len(df))):
            raise NSDFileError(f"{p}: rows must be ordered by nsdId 0..{len(df) - 1}")
        return df

    @property
    def n_images(self) -> int:
        """Number of NSD images (73,000 on real NSD)."""
        return len(self.stim_info)

    @property
    def subjects(self) -> list[str]:
        """Subjects with betas on disk, e.g. ``["subj01", ...]``."""
        base = self.root / "nsddata_betas" / "ppdata"
        if not base.is_dir():
            return []
        found = []
        for d in sorted(base.glob("subj[0-9][0-9]")):
            if any((d / space / self.beta_version).is_dir() for space in SPACES):
                found.append(d.name)
        return found

    def _check_subject(self, subject) -> str:
        name = _subject_name(subject)
        if name not in self.subjects:
            raise ValueError(
                f"subject {subject!r} has no betas under {self.root / 'nsddata_betas/ppdata'}; "
                f"available: {self.subjects or 'none'}"
            )
        return name

    def _beta_dir(self, subject: str, space: str) -> Path:
        if space not in SPACES:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        return self.root / "nsddata_betas" / "ppdata" / subject / space / self.beta_version

    def _beta_files(self, subject: str, space: str, session: int) -> list[Path]:
        d = self._beta_dir(subject, space)
        if space == "fsaverage":
            return [d / f"{h}.betas_session{session:02d}.mgh" for h in ("lh", "rh")]
        return [d / f"betas_session{session:02d}.nii.gz"]

    def sessions_on_disk(self, subject, space: str) -> int:
        """Number of consecutive sessions (from 1) whose beta files exist in ``space``."""
        name = _subject_name(subject)
        n = 0
        while all(p.exists() for p in self._beta_files(name, space, n + 1)):
            n += 1
        return n

    def _responses(self, subject: str):
        import pandas as pd

        p = self.root / "nsddata" / "ppdata" / subject / "behav" / "responses.tsv"
        if not p.exists():
            return None
        try:
            return pd.read_csv(p, sep="\t")
        except Exception as err:
            raise NSDFileError(f"{p}: cannot parse as tab-separated values ({err})") from err

    @functools.cache
    def trials_per_session(self) -> int:
        """Trials per session (750 on NSD), from the first beta file found on disk."""
        import nibabel as nib

        for subject in self.subjects:
            for space in SPACES:
                f = self._beta_files(subject, space, 1)[0]
                if f.exists():
                    try:
                        return int(nib.load(f).shape[-1])
                    except Exception as err:
                        raise NSDFileError(f"{f}: cannot read the image header ({err})") from err
        raise NSDFileError(f"no beta files found under {self.root / 'nsddata_betas'}")

    @functools.cache
    def n_sessions(self, subject) -> int:
        """Sessions acquired for ``subject``: from ``responses.tsv``, else the betas on disk."""
        name = _subject_name(subject)
        resp = self._responses(name)
        if resp is not None and len(resp):
            return int(resp["SESSION"].max())
        n = max(self.sessions_on_disk(name, s) for s in SPACES)
        if n == 0 and self.expdesign["subjectim"].shape[1] == 10000:
            n = NSD_SESSIONS.get(int(name[4:]), 0)
        return n

    def trial_table(self, subject):
        """One row per acquired trial, in trial order.

        Columns: ``session`` (1-based), ``k`` (0-based trial within session), ``t`` (0-based
        global trial), ``idx10k`` (1-based), ``nsd73`` (1-based), ``nsdId`` (0-based),
        ``is_shared``, ``repeat`` (0 for the first showing, 1, 2).
        """
        import pandas as pd

        name = _subject_name(subject)
        s = int(name[4:])
        design = self.expdesign
        n_trials = self.n_sessions(name) * self.trials_per_session()
        mo = design["masterordering"]
        if n_trials > mo.size:
            raise NSDFileError(
                f"{name}: {self.n_sessions(name)} sessions × {self.trials_per_session()} trials "
                f"exceed the {mo.size} trials of masterordering in {self.root / _EXPDESIGN}"
            )
        t = np.arange(n_trials)
        idx10k = mo[:n_trials]
        nsd73 = design["subjectim"][s - 1, idx10k - 1]
        nsd_id = nsd73 - 1
        shared = np.isin(nsd73, design["sharedix"])
        order = np.argsort(nsd_id, kind="stable")
        repeat = np.empty(n_trials, dtype=np.int64)
        sorted_ids = nsd_id[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
        run_start = np.repeat(starts, np.diff(np.r_[starts, n_trials]))
        repeat[order] = np.arange(n_trials) - run_start
        T = self.trials_per_session()
        table = pd.DataFrame(
            dict(session=t // T + 1, k=t % T, t=t, idx10k=idx10k, nsd73=nsd73,
                 nsdId=nsd_id, is_shared=shared, repeat=repeat)
        )
        resp = self._responses(name)
        if resp is not None and len(resp):
            if len(resp) != n_trials or not np.array_equal(resp["73KID"].to_numpy(), nsd73):
                raise NSDFileError(
                    f"{self.root / 'nsddata/ppdata' / name / 'behav/responses.tsv'}: its 73KID "
                    f"column disagrees with masterordering/subjectim of {self.root / _EXPDESIGN}"
                )
        return table

    def trial_images(self, subject) -> np.ndarray:
        """0-based nsdIds of the subject's acquired trials, in trial order."""
        return self.trial_table(subject)["nsdId"].to_numpy()

    def shared_test_images(self) -> np.ndarray:
        """Sorted nsdIds of shared images seen 3× by every acquired subject (515 on NSD)."""
        design = self.expdesign
        mo = design["masterordering"]
        T = self.trials_per_session()
        n_shared = design["sharedix"].size
        keep = np.ones(n_shared, dtype=bool)
        for s in range(1, design["subjectim"].shape[0] + 1):
            n = self.n_sessions(s)
            if n == 0:
                continue
            counts = np.bincount(mo[: n * T], minlength=design["subjectim"].shape[1] + 1)
            keep &= counts[1 : n_shared + 1] == 3
        # subjectim[:, :S] == sharedix: shared 10k index q ↔ sharedix[q-1]
        return np.sort(design["sharedix"][keep] - 1)

    def summary(self):
        """One row per subject on disk: sessions, trials, images by number of repeats."""
        import pandas as pd

        rows = []
        for name in self.subjects:
            ids = self.trial_images(name)
            counts = np.bincount(np.unique(ids, return_counts=True)[1], minlength=4)
            rows.append(dict(
                subject=name, sessions=self.n_sessions(name), trials=ids.size,
                images=int(np.unique(ids).size), images_3x=int(counts[3:].sum()),
                fsaverage_sessions=self.sessions_on_disk(name, "fsaverage"),
                func1pt8mm_sessions=self.sessions_on_disk(name, "func1pt8mm"),
            ))
        return pd.DataFrame(rows).set_index("subject")

    # ---------------------------------------------------------- stimuli
    def _coco_json(self, kind: str, split: str) -> dict:
        key = f"{kind}_{split}"
        if key not in self._json_cache:
            p = self.path(f"{_ANNOTATIONS}/{kind}_{split}.json", "COCO annotation file")
            try:
                self._json_cache[key] = json.loads(p.read_text())
            except Exception as err:
                raise NSDFileError(f"{p}: not valid COCO JSON ({err})") from err
        return self._json_cache[key]

    @functools.cache
    def _captions_index(self, split: str) -> dict[int, list[str]]:
        index: dict[int, list[tuple[int, str]]] = {}
        for ann in self._coco_json("captions", split)["annotations"]:
            index.setdefault(int(ann["image_id"]), []).append((int(ann["id"]), ann["caption"]))
        return {k: [c.strip() for _, c in sorted(v)] for k, v in index.items()}

    def _coco_rows(self, nsd_ids) -> tuple[np.ndarray, np.ndarray, list[str]]:
        ids = np.asarray(nsd_ids, dtype=np.int64).ravel()
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_images):
            raise ValueError(f"nsd_ids must be 0-based nsdIds in 0..{self.n_images - 1}")
        info = self.stim_info
        return ids, info["cocoId"].to_numpy()[ids], list(info["cocoSplit"].to_numpy()[ids])

    def captions(self, nsd_ids) -> list[list[str]]:
        """COCO captions of each image (usually 5, sometimes 6), in the order asked."""
        ids, coco, splits = self._coco_rows(nsd_ids)
        out = []
        for i, c, split in zip(ids, coco, splits):
            caps = self._captions_index(split).get(int(c))
            if not caps:
                raise NSDFileError(
                    f"no captions for nsdId {i} (cocoId {c}) in "
                    f"{self.root / _ANNOTATIONS / f'captions_{split}.json'}"
                )
            out.append(caps)
        return out

    @functools.cached_property
    def category_names(self) -> list[str]:
        """COCO category names, ordered by category id (80 on real COCO)."""
        cats = {c["id"]: c["name"] for c in self._coco_json("instances", "train2017")["categories"]}
        return [cats[k] for k in sorted(cats)]

    @functools.cache
    def _instances_index(self, split: str) -> dict[int, set[int]]:
        index: dict[int, set[int]] = {}
        for ann in self._coco_json("instances", split)["annotations"]:
            index.setdefault(int(ann["image_id"]), set()).add(int(ann["category_id"]))
        return index

    def categories(self, nsd_ids) -> tuple[np.ndarray, list[str]]:
        """Multi-hot COCO categories: ``(float32 (n, n_categories), names)``."""
        _, coco, splits = self._coco_rows(nsd_ids)
        cats = sorted(c["id"] for c in self._coco_json("instances", "train2017")["categories"])
        col = {cid: j for j, cid in enumerate(cats)}
        out = np.zeros((len(coco), len(cats)), dtype=np.float32)
        for row, (c, split) in enumerate(zip(coco, splits)):
            for cid in self._instances_index(split).get(int(c), ()):
                out[row, col[cid]] = 1.0
        return out, self.category_names

    def images(self, nsd_ids) -> np.ndarray:
        """Stimulus images, uint8 ``(n, H, W, 3)``, in the order asked."""
        import h5py

        ids = np.asarray(nsd_ids, dtype=np.int64).ravel()
        p = self.path(_STIMULI, "stimulus file")
        try:
            with h5py.File(p, "r") as f:
                brick = f["imgBrick"]
                if ids.size and (ids.min() < 0 or ids.max() >= brick.shape[0]):
                    raise ValueError(f"nsd_ids must lie in 0..{brick.shape[0] - 1}")
                uniq, inverse = np.unique(ids, return_inverse=True)  # h5py needs increasing
                data = brick[uniq] if uniq.size else np.zeros((0, *brick.shape[1:]), np.uint8)
        except (OSError, KeyError) as err:
            raise NSDFileError(f"{p}: cannot read dataset 'imgBrick' ({err})") from err
        return np.asarray(data, dtype=np.uint8)[inverse]

    # ------------------------------------------------------------- ROIs
    def roi_labels(self, atlas: str, subject=None) -> dict[int, str]:
        """``{label: name}`` of an atlas, from its ``.ctab`` (fsaverage's if no subject)."""
        who = "fsaverage" if subject is None else _subject_name(subject)
        p = self.root / "nsddata" / "freesurfer" / who / "label" / f"{atlas}.mgz.ctab"
        if not p.exists() and who != "fsaverage":
            p = self.root / "nsddata" / "freesurfer" / "fsaverage" / "label" / f"{atlas}.mgz.ctab"
        if not p.exists():
            self.path(f"nsddata/freesurfer/{who}/label/{atlas}.mgz.ctab", "ROI colour table")
        return _read_ctab(p)

    def roi_volume(self, subject, atlas: str, space: str = "fsaverage") -> np.ndarray:
        """Integer label array of an atlas: (V_lh + V_rh,) on fsaverage, (X, Y, Z) in func1pt8mm."""
        import nibabel as nib

        name = _subject_name(subject)
        if space == "fsaverage":
            parts = []
            for h in ("lh", "rh"):
                rel = f"nsddata/freesurfer/fsaverage/label/{h}.{atlas}.mgz"
                parts.append(np.rint(self._load_image(rel, nib)).astype(np.int16).ravel())
            return np.concatenate(parts)
        if space == "func1pt8mm":
            rel = f"nsddata/ppdata/{name}/func1pt8mm/roi/{atlas}.nii.gz"
            return np.rint(self._load_image(rel, nib)).astype(np.int16)
        raise ValueError(f"space={space!r}: expected one of {SPACES}")

    def _load_image(self, rel: str, nib) -> np.ndarray:
        p = self.path(rel)
        try:
            return np.asarray(nib.load(p).get_fdata(dtype=np.float32))
        except Exception as err:
            raise NSDFileError(f"{p}: cannot read the image ({err}); the file may be truncated") from err

    def roi_mask(self, subject, atlas: str, label=None, space: str = "fsaverage") -> np.ndarray:
        """Boolean mask of ``atlas`` label(s); ``label`` None means every label > 0.

        ``label`` may be a name from the ctab (``"ventral"``), an integer, or a list of them.
        """
        vol = self.roi_volume(subject, atlas, space)
        if label is None:
            return vol > 0
        names = self.roi_labels(atlas, None if space == "fsaverage" else subject)
        by_name = {v: k for k, v in names.items()}
        wanted = [label] if isinstance(label, (str, int, np.integer)) else list(label)
        codes = []
        for lab in wanted:
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

    def brainmask(self, subject) -> np.ndarray:
        """Boolean (X, Y, Z) brain mask of the subject's func1pt8mm space."""
        import nibabel as nib

        name = _subject_name(subject)
        return self._load_image(f"nsddata/ppdata/{name}/func1pt8mm/brainmask.nii.gz", nib) > 0

    def affine(self, subject) -> np.ndarray:
        """4 × 4 affine of the subject's func1pt8mm grid."""
        import nibabel as nib

        name = _subject_name(subject)
        return nib.load(self.path(f"nsddata/ppdata/{name}/func1pt8mm/brainmask.nii.gz")).affine

    def n_vertices(self) -> tuple[int, int]:
        """Vertices per hemisphere of the fsaverage data (163,842 on NSD, 10,242 in the sandbox)."""
        import nibabel as nib

        out = []
        for h in ("lh", "rh"):
            rel = f"nsddata/freesurfer/fsaverage/label/{h}.streams.mgz"
            p = self.root / rel
            if not p.exists():
                name = self.subjects[0] if self.subjects else "subj01"
                p = self._beta_dir(name, "fsaverage") / f"{h}.betas_session01.mgh"
            out.append(int(nib.load(self.path(str(p.relative_to(self.root)))).shape[0]))
        return out[0], out[1]

    # ----------------------------------------------------------- ncsnr
    def ncsnr(self, subject, space: str = "fsaverage") -> np.ndarray:
        """Shipped ``ncsnr`` (float32): (V_lh + V_rh,) on fsaverage, (X, Y, Z) in func1pt8mm."""
        import nibabel as nib

        name = _subject_name(subject)
        d = self._beta_dir(name, space).relative_to(self.root)
        if space == "fsaverage":
            return np.concatenate(
                [self._load_image(f"{d}/{h}.ncsnr.mgh", nib).ravel() for h in ("lh", "rh")]
            )
        return self._load_image(f"{d}/ncsnr.nii.gz", nib)

    def noise_ceiling(self, subject, space: str = "fsaverage", n: float = 3) -> np.ndarray:
        """Noise ceiling in % for ``n``-trial averages: ``100·ncsnr²/(ncsnr² + 1/n)``."""
        return noise_ceiling_from_ncsnr(self.ncsnr(subject, space), n)

    def roi_values(self, subject, atlas: str, values: np.ndarray, space: str = "fsaverage"):
        """Long DataFrame (``roi``, ``value``) of per-vertex/voxel ``values`` in each label.

        ``values`` has the full-space shape ((V_lh + V_rh,) or (X, Y, Z)); NaNs are dropped.
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
    def columns(self, subject, space: str = "fsaverage", roi=None) -> np.ndarray:
        """Flat indices (C order) of the columns :meth:`betas` returns for ``roi``.

        fsaverage: indices into the lh-then-rh vertex list. func1pt8mm: indices into the
        flattened (X, Y, Z) grid, restricted to the brain mask.
        """
        name = _subject_name(subject)
        if space == "fsaverage":
            n_total = sum(self.n_vertices())
            base = np.ones(n_total, dtype=bool)
        elif space == "func1pt8mm":
            base = self.brainmask(name)
        else:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
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

    def to_space(self, values: np.ndarray, subject, space: str = "fsaverage", roi=None,
                 fill: float = np.nan) -> np.ndarray:
        """Put per-column ``values`` (…, n_columns) back into the full surface or volume."""
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
            out = _read_nifti_masked(files[0], cols, T, chunk=chunk)
            out /= np.float32(300.0)
            return out
        out = np.empty((T, cols.size), dtype=np.float32)
        offset = 0
        for f in files:
            nv = _read_mgh_columns(f, cols, offset, T, out, chunk_columns)
            offset += nv
        if cols.size and cols.max() >= offset:
            raise NSDFileError(f"{files[0].parent}: {offset} vertices, fewer than the ROI needs")
        return out

    def _betas_cache_path(self, subject, space, cols, zscore, min_repeats, sessions) -> Path:
        files = [f for s in sessions for f in self._beta_files(subject, space, s)]
        h = hashlib.sha256()
        for part in (
            _CACHE_VERSION, str(self.root.resolve()), subject, space, self.beta_version,
            str(zscore), str(min_repeats), ",".join(map(str, sessions)),
            ";".join(_file_identity(f) for f in files),
        ):
            h.update(part.encode() + b"\0")
        h.update(np.ascontiguousarray(cols, dtype=np.int64).tobytes())
        return self.cache_dir / "betas" / f"{subject}_{space}_{h.hexdigest()[:20]}"

    def betas(self, subject, space: str = "fsaverage", roi=None, zscore: bool = True,
              min_repeats: int = 3, sessions: Sequence[int] | None = None, cache: bool = True,
              progress: bool = True, chunk_columns: int = 65536):
        """Per-image betas averaged over repeats.

        Each session's betas are read (volume: int16 ÷ 300), restricted to the ROI columns,
        z-scored per voxel over the session's trials (``zscore=True``; constant or NaN
        columns become NaN for that session), then averaged over the repeats of each image
        (``nanmean``). Images with fewer than ``min_repeats`` showings in the selected
        sessions are dropped.

        Parameters
        ----------
        subject : str or int
        space : {"fsaverage", "func1pt8mm"}
        roi : None, (atlas, label) or bool mask
            ``None`` = all vertices (fsaverage) or the brain mask (func1pt8mm).
        zscore : bool
        min_repeats : int
        sessions : sequence of int, optional
            1-based sessions to use (default: all acquired sessions).
        cache : bool
            Reuse/write a float32 ``.npy`` cache keyed by every argument and the input files.

        Returns
        -------
        Y : float32 ndarray (n_images, n_columns)
            Rows sorted by nsdId; fsaverage columns are lh vertices then rh (see
            :meth:`columns`). A memory map when read from the cache.
        nsd_ids : int64 ndarray (n_images,)
        """
        name = self._check_subject(subject)
        if space not in SPACES:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        if int(min_repeats) < 1:
            raise ValueError(f"min_repeats={min_repeats}: expected an integer ≥ 1")
        n_sess = self.n_sessions(name)
        if sessions is None:
            sessions = list(range(1, n_sess + 1))
        sessions = [int(s) for s in sessions]
        bad = [s for s in sessions if not 1 <= s <= n_sess]
        if bad or not sessions:
            raise ValueError(f"sessions {bad or sessions}: {name} has sessions 1..{n_sess}")
        cols = self.columns(name, space, roi)
        if cols.size == 0:
            raise ValueError(f"roi {roi!r} selects no {space} columns for {name}")

        table = self.trial_table(name)
        table = table[table["session"].isin(sessions)]
        ids_per_trial = table["nsdId"].to_numpy()
        uniq, counts = np.unique(ids_per_trial, return_counts=True)
        nsd_ids = uniq[counts >= min_repeats]
        if nsd_ids.size == 0:
            raise ValueError(f"{name}: no image has ≥ {min_repeats} repeats in sessions {sessions}")

        cache_base = self._betas_cache_path(name, space, cols, zscore, min_repeats, sessions)
        y_path, id_path = cache_base.with_suffix(".npy"), Path(f"{cache_base}_ids.npy")
        if cache and y_path.exists() and id_path.exists():
            try:
                Y = np.load(y_path, mmap_mode="r")
                cached_ids = np.load(id_path)
                if Y.shape == (nsd_ids.size, cols.size) and np.array_equal(cached_ids, nsd_ids):
                    return Y, cached_ids
            except (ValueError, OSError):
                pass  # unreadable cache: recompute and overwrite

        row_of = np.full(self.n_images, -1, dtype=np.int64)
        row_of[nsd_ids] = np.arange(nsd_ids.size)
        shape = (nsd_ids.size, cols.size)
        args = (name, space, sessions, table, row_of, cols, zscore, progress, chunk_columns)
        if not cache:
            if shape[0] * shape[1] * 4 <= 512 * 2**20:
                out = np.zeros(shape, dtype=np.float32)
            else:  # large output: an anonymous file-backed memory map
                tmp = self.cache_dir / f".betas-nocache-{os.getpid()}-{id(args)}.npy"
                out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
                tmp.unlink()  # the mapping stays valid; nothing is left on disk
            self._average_sessions(out, *args)
            return out, nsd_ids
        with atomic_path(y_path) as tmp:
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=shape)
            self._average_sessions(out, *args)
            out.flush()
            del out
        atomic_save_npy(id_path, nsd_ids)
        return np.load(y_path, mmap_mode="r"), nsd_ids

    def _average_sessions(self, out, name, space, sessions, table, row_of, cols, zscore,
                          progress, chunk_columns) -> None:
        """Fill ``out`` (zeros, (n_images, n_cols)) with the repeat-averaged betas."""
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
        # count[i, c] = sum over sessions of trials(i, s) * valid(s, c)
        for c0 in range(0, n_cols, chunk_columns):
            c1 = min(n_cols, c0 + chunk_columns)
            count = per_session @ valid[:, c0:c1].astype(np.float32)
            block = np.asarray(out[:, c0:c1])
            with np.errstate(invalid="ignore", divide="ignore"):
                out[:, c0:c1] = np.where(count > 0, block / count, np.nan)


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
                      chunk_columns: int) -> int:
    """Copy the vertices of ``cols`` that fall in this hemisphere file into ``out``.

    ``out`` is (T, n_cols); ``cols`` index lh-then-rh vertices and this file holds vertices
    ``offset .. offset + n_vertices``. The file is memory-mapped (MGH is uncompressed).
    Returns the file's number of vertices.
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
    where = np.flatnonzero((cols >= offset) & (cols < offset + nv))
    try:
        data = np.asanyarray(img.dataobj)
        for i0 in range(0, where.size, chunk_columns):
            idx = where[i0:i0 + chunk_columns]
            out[:, idx] = np.asarray(data[cols[idx] - offset, 0, 0, :], dtype=np.float32).T
    except Exception as err:
        raise NSDFileError(f"{path}: cannot read betas ({err}); truncated or corrupt?") from err
    return nv


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


def _read_nifti_masked(path: Path, cols: np.ndarray, T: int, chunk: int = 64) -> np.ndarray:
    """Stream a 4-D NIfTI (X, Y, Z, T) in trial chunks, keeping only ``cols``.

    ``cols`` are C-order flat indices into (X, Y, Z). Returns float32 (T, n_cols) in the
    file's units (scaling applied if the header sets it). Never holds the whole session.
    """
    import nibabel as nib

    try:
        img = nib.load(path)
        header = img.header
        shape = img.shape
        offset = int(img.dataobj.offset)
        dtype = header.get_data_dtype()
        slope, inter = header.get_slope_inter()
    except Exception as err:
        raise NSDFileError(f"{path}: cannot read the NIfTI header ({err})") from err
    if len(shape) != 4 or shape[3] != T:
        raise NSDFileError(f"{path}: expected a 4-D (X, Y, Z, {T}) image, found shape {shape}")
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
