"""Fault injection at the NSD reader's boundaries (issue 15; ``shared/docs/reliability_report.md``).

Each case damages a private copy of the tiny sandbox (``tree_copy``: hard links, so a damaged
file is always *replaced*, never written in place) or passes a bad argument, and asserts
either a clear error (its type, and a message naming the file or the argument and what was
expected) or a result equal to a clean run. Partial data (a session of NaNs, a
``responses.tsv`` without a session, empty captions) must warn
(:class:`~brainllm_utils.nsd.PartialDataWarning`) and be recorded in ``NSD.data_report()``.

Test ids start with the report row they cover (``row07-…``); ``rowX-…`` are cases of the same
classes found beyond the report (dtype and scale, stimulus brick shape, transforms, design
files that do not belong together).
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pytest

from brainllm_utils.nsd import NSD, NSDFileError, PartialDataWarning, SessionsMissingWarning

pytestmark = pytest.mark.faults

FS = "nsddata_betas/ppdata/{s}/fsaverage/betas_fithrf_GLMdenoise_RR"
VOL = "nsddata_betas/ppdata/{s}/func1pt8mm/betas_fithrf_GLMdenoise_RR"
LABEL = "nsddata/freesurfer/fsaverage/label"
PP = "nsddata/ppdata/{s}"
ANN = "nsddata_stimuli/stimuli/nsd/annotations"
CAPS = f"{ANN}/captions_train2017.json"
INST = f"{ANN}/instances_train2017.json"
RESP = "nsddata/ppdata/{s}/behav/responses.tsv"
STIM = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
CSV = "nsddata/experiments/nsd/nsd_stim_info_merged.csv"


# ----------------------------------------------------------------------------- damage helpers
def _unlink(path: Path) -> Path:
    """Remove a (possibly hard-linked) file so that a new one can be written in its place."""
    path.unlink()
    return path


def _mgh(root: Path, rel: str, edit: Callable[[np.ndarray], np.ndarray], dtype=None) -> None:
    import nibabel as nib

    p = root / rel
    img = nib.load(p)
    data = edit(np.asarray(img.dataobj))
    if dtype is not None:
        data = data.astype(dtype)
    nib.save(nib.MGHImage(np.ascontiguousarray(data), img.affine), _unlink(p))


def _nii(root: Path, rel: str, edit=None, affine=None, dtype=None) -> None:
    import nibabel as nib

    p = root / rel
    img = nib.load(p)
    data = np.asarray(img.dataobj)
    if edit is not None:
        data = edit(data)
    if dtype is not None:
        data = data.astype(dtype)
    new = nib.Nifti1Image(data, img.affine if affine is None else affine)
    new.set_data_dtype(data.dtype)
    nib.save(new, _unlink(p))


def _shift(affine, mm=1.8):
    a = np.array(affine, dtype=np.float64)
    a[0, 3] += mm
    return a


def _json(root: Path, rel: str, edit: Callable[[dict], object], replace: bool = False) -> None:
    """Edit a JSON file in place (``edit(data)``), or replace it by ``edit(data)`` (``replace``)."""
    p = root / rel
    data = json.loads(p.read_text())
    out = edit(data)
    _unlink(p).write_text(json.dumps(out if replace else data))


def _tsv(root: Path, rel: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> None:
    p = root / rel
    df = edit(pd.read_csv(p, sep="\t"))
    df.to_csv(_unlink(p), sep="\t", index=False)


def _rm(*rels):
    def damage(root):
        for rel in rels:
            (root / rel).unlink()
    return damage


def _write_bytes(rel, data: bytes):
    def damage(root):
        _unlink(root / rel).write_bytes(data)
    return damage


def _truncate(rel, keep=0.5):
    def damage(root):
        raw = (root / rel).read_bytes()
        _unlink(root / rel).write_bytes(raw[: int(len(raw) * keep)])
    return damage


def _ann_edit(i, **changes):
    """Edit annotations[i] of a COCO json: a value of ``...`` deletes the field."""
    def edit(d):
        for k, v in changes.items():
            if v is ...:
                d["annotations"][i].pop(k, None)
            else:
                d["annotations"][i][k] = v
    return edit


def _captions_of(root: Path, coco_id: int, text) -> None:
    """Set every caption of ``coco_id`` (``text``: a string, or a list per caption)."""
    def edit(d):
        k = 0
        for a in d["annotations"]:
            if a["image_id"] == coco_id:
                a["caption"] = text if isinstance(text, str) else text[min(k, len(text) - 1)]
                k += 1
    _json(root, CAPS, edit)


def _design(root: Path, edit) -> None:
    import scipy.io

    p = root / "nsddata/experiments/nsd/nsd_expdesign.mat"
    mat = {k: v for k, v in scipy.io.loadmat(p).items() if not k.startswith("__")}
    edit(mat)
    scipy.io.savemat(_unlink(p), mat)


def _swap_shared(mat):
    sub = mat["subjectim"].copy()
    sub[0, [0, 1]] = sub[0, [1, 0]]
    mat["subjectim"] = sub


def _brick(root: Path, shape_edit) -> None:
    import h5py

    p = root / STIM
    with h5py.File(p, "r") as f:
        brick = f["imgBrick"][()]
    with h5py.File(_unlink(p), "w") as f:
        f.create_dataset("imgBrick", data=shape_edit(brick))


# ----------------------------------------------------------------------------- cases
@dataclass
class Case:
    id: str
    call: Callable[[NSD, Path], object]
    damage: Callable[[Path], None] | None = None
    exc: type | None = None
    match: str | None = None
    # result equal to this call on the clean tiny sandbox
    clean: Callable[[NSD, Path], object] | None = None
    # partial data: the warning's class and match, and the report row's kind
    warns: type | None = None
    kind: str | None = None


def _betas(*a, **kw):
    kw.setdefault("progress", False)
    kw.setdefault("cache", False)
    return lambda nsd, root: nsd.betas(*a, **kw)


def _lh_only(nsd):
    n_lh, n_rh = nsd.n_vertices()
    return np.r_[np.ones(n_lh, bool), np.zeros(n_rh, bool)]


S1, S2 = "subj01", "subj02"
LH2, RH2 = f"{FS.format(s=S2)}/lh.betas_session02.mgh", f"{FS.format(s=S2)}/rh.betas_session02.mgh"
LH1_2, RH1_2 = f"{FS.format(s=S1)}/lh.betas_session02.mgh", f"{FS.format(s=S1)}/rh.betas_session02.mgh"
V1_2 = f"{VOL.format(s=S1)}/betas_session02.nii.gz"
MASK1 = f"{PP.format(s=S1)}/func1pt8mm/brainmask.nii.gz"
ROI1 = f"{PP.format(s=S1)}/func1pt8mm/roi/streams.nii.gz"


DESIGN = "nsddata/experiments/nsd/nsd_expdesign.mat"


def _empty(root: Path) -> Path:
    """An empty folder next to the copied root."""
    path = root.parent / "empty"
    path.mkdir(exist_ok=True)
    return path


def _vertex(col: int, sessions, value=np.nan, trial=None):
    """Damage fsaverage column ``col`` of subj01 in ``sessions`` (one trial, or every trial)."""
    def damage(root):
        n_lh = NSD(root).n_vertices()[0]
        hemi, v = ("lh", col) if col < n_lh else ("rh", col - n_lh)

        def edit(d):
            d = d.copy()
            if trial is None:
                d[v, ...] = value
            else:
                d[v, ..., trial] = value
            return d
        for s in sessions:
            _mgh(root, f"{FS.format(s=S1)}/{hemi}.betas_session{s:02d}.mgh", edit)
    return damage


def _split(col: int):
    """subj01's betas as (every other column, ids, column ``col``)."""
    def call(nsd, root):
        Y, ids = nsd.betas(S1, cache=False, progress=False)
        Y = np.asarray(Y)
        return np.delete(Y, col, axis=1), ids, Y[:, col]
    return call


def _split_without(col: int, bad):
    """The clean run, with column ``col`` averaged over the sessions not in ``bad`` only (NaN: none left)."""
    def clean(nsd, root):
        rest, ids, c = _split(col)(nsd, root)
        want = np.full_like(c, np.nan)
        good = [s for s in (1, 2, 3) if s not in bad]
        if good:
            Yg, idg = nsd.betas(S1, sessions=good, min_repeats=1, cache=False, progress=False)
            want[np.searchsorted(ids, idg)] = np.asarray(Yg)[:, col]
        return rest, ids, want
    return clean


def _extra(n):
    return lambda d: np.concatenate([d, d[:n]])


def _fewer(n):
    return lambda d: d[:n]


FILE_CASES = [
    # row 2: the root
    Case("row02-root-is-a-file", lambda nsd, root: NSD(root / "nsddata/experiments/nsd/nsd_expdesign.mat"),
         exc=NSDFileError, match=r"nsd_expdesign\.mat is a file, not a folder"),
    Case("row02-root-missing", lambda nsd, root: NSD(root / "nope"), exc=NSDFileError, match=r"nope does not exist"),
    # row 4: one session file deleted, asked for explicitly (cached or not) or all of them deleted
    Case("row04-lh-deleted-cache-false", _betas(S1, sessions=[1, 2]), _rm(LH1_2), NSDFileError,
         r"missing NSD beta file \(session 2 of subj01\).*lh\.betas_session02\.mgh"),
    Case("row04-lh-deleted-cache-true", _betas(S1, sessions=[1, 2], cache=True), _rm(LH1_2), NSDFileError,
         r"lh\.betas_session02\.mgh"),
    Case("row04-rh-deleted-cache-true", _betas(S1, sessions="1-2", cache=True), _rm(RH1_2), NSDFileError,
         r"rh\.betas_session02\.mgh"),
    Case("row04-betas-key-deleted", lambda nsd, root: nsd.betas_key(S1, sessions=[1, 2]), _rm(LH1_2),
         NSDFileError, r"lh\.betas_session02\.mgh"),
    Case("row04-volume-deleted", _betas(S1, space="func1pt8mm", sessions=[1, 2]), _rm(V1_2), NSDFileError,
         r"betas_session02\.nii\.gz"),
    Case("row04-every-session-deleted", _betas(S1),
         _rm(*[f"{FS.format(s=S1)}/{h}.betas_session0{k}.mgh" for h in ("lh", "rh") for k in (1, 2, 3)]),
         NSDFileError, r"lh\.betas_session01\.mgh"),
    # row 5: truncated, garbage, wrong trial count (good before; kept as regressions)
    Case("row05-lh-truncated", _betas(S2), _truncate(LH2), NSDFileError, r"lh\.betas_session02\.mgh"),
    Case("row05-lh-garbage", _betas(S2), _write_bytes(LH2, b"not an mgh file" * 10), NSDFileError,
         r"lh\.betas_session02\.mgh"),
    Case("row05-volume-truncated", _betas(S1, space="func1pt8mm"), _truncate(V1_2), NSDFileError,
         r"betas_session02\.nii\.gz"),
    Case("row05-lh-59-trials", _betas(S2), lambda r: _mgh(r, LH2, lambda d: d[..., :-1]), NSDFileError,
         r"lh\.betas_session02\.mgh: expected shape \(n_vertices, 1, 1, 60\)"),
    Case("row05-rh-61-trials", _betas(S2), lambda r: _mgh(r, RH2, lambda d: np.concatenate([d, d[..., :1]], -1)),
         NSDFileError, r"rh\.betas_session02\.mgh: expected shape \(n_vertices, 1, 1, 60\)"),
    Case("row05-volume-59-trials", _betas(S1, space="func1pt8mm"), lambda r: _nii(r, V1_2, lambda d: d[..., :-1]),
         NSDFileError, r"betas_session02\.nii\.gz: expected a 4-D \(X, Y, Z, 60\)"),
    # row 6: a hemisphere file with 10,000 vertices (full brain, lh-only mask)
    Case("row06-lh-10000-vertices", _betas(S2), lambda r: _mgh(r, LH2, _fewer(10000)), NSDFileError,
         r"lh\.betas_session02\.mgh: 10000 vertices, expected 10242"),
    Case("row06-lh-10000-vertices-lh-mask", lambda nsd, root: nsd.betas(S2, roi=_lh_only(nsd), cache=False,
                                                                        progress=False),
         lambda r: _mgh(r, LH2, _fewer(10000)), NSDFileError, r"lh\.betas_session02\.mgh: 10000 vertices"),
    Case("row06-rh-10000-vertices-lh-mask", lambda nsd, root: nsd.betas(S2, roi=_lh_only(nsd), cache=False,
                                                                        progress=False),
         lambda r: _mgh(r, RH2, _fewer(10000)), NSDFileError, r"rh\.betas_session02\.mgh: 10000 vertices"),
    Case("row06-lh-10000-vertices-cached", _betas(S2, cache=True), lambda r: _mgh(r, LH2, _fewer(10000)),
         NSDFileError, r"lh\.betas_session02\.mgh: 10000 vertices, expected 10242"),
    # row 7: 100 extra vertices (the rh columns would shift)
    Case("row07-lh-extra-vertices", _betas(S2), lambda r: _mgh(r, LH2, _extra(100)), NSDFileError,
         r"lh\.betas_session02\.mgh: 10342 vertices, expected 10242 .*lh\.streams\.mgz"),
    Case("row07-rh-extra-vertices", _betas(S2), lambda r: _mgh(r, RH2, _extra(100)), NSDFileError,
         r"rh\.betas_session02\.mgh: 10342 vertices, expected 10242"),
    Case("row07-lh-extra-vertices-session01", _betas(S1),
         lambda r: _mgh(r, f"{FS.format(s=S1)}/lh.betas_session01.mgh", _extra(100)), NSDFileError,
         r"lh\.betas_session01\.mgh: 10342 vertices"),
    Case("row07-extra-vertices-without-streams", _betas(S2),
         lambda r: (_rm(f"{LABEL}/lh.streams.mgz", f"{LABEL}/rh.streams.mgz")(r), _mgh(r, LH2, _extra(100))),
         NSDFileError, r"lh\.betas_session02\.mgh: 10342 vertices, expected 10242 .*betas_session01"),
    Case("row07-first-session-damaged-without-streams", _betas(S1),
         lambda r: (_rm(f"{LABEL}/lh.streams.mgz", f"{LABEL}/rh.streams.mgz")(r),
                    _mgh(r, f"{FS.format(s=S1)}/lh.betas_session01.mgh", _extra(100))),
         NSDFileError, r"lh\.betas_session01\.mgh: 10342 vertices; an fsaverage hemisphere has 10·4\^k \+ 2"),
    # row 20: the atlas label files and ncsnr
    Case("row20-lh-streams-10000-vertices", _betas(S1), lambda r: _mgh(r, f"{LABEL}/lh.streams.mgz", _fewer(10000)),
         NSDFileError, r"lh\.streams\.mgz: 10000 vertices; an fsaverage hemisphere has"),
    Case("row20-rh-streams-extra-vertices", lambda nsd, root: nsd.columns(S1),
         lambda r: _mgh(r, f"{LABEL}/rh.streams.mgz", _extra(100)), NSDFileError, r"rh\.streams\.mgz: 10342 vertices"),
    Case("row20-lh-streams-other-mesh", _betas(S1), lambda r: _mgh(r, f"{LABEL}/lh.streams.mgz", _fewer(2562)),
         NSDFileError, r"lh\.streams\.mgz has 2562 vertices but .*rh\.streams\.mgz has 10242"),
    Case("row20-both-streams-other-mesh", _betas(S1),
         lambda r: [_mgh(r, f"{LABEL}/{h}.streams.mgz", _fewer(2562)) for h in ("lh", "rh")],
         NSDFileError, r"lh\.betas_session01\.mgh: 10242 vertices, expected 2562"),
    Case("row20-lh-nsdgeneral-short", lambda nsd, root: nsd.roi_mask(S1, "nsdgeneral"),
         lambda r: _mgh(r, f"{LABEL}/lh.nsdgeneral.mgz", _fewer(10000)), NSDFileError,
         r"lh\.nsdgeneral\.mgz: labels of shape \(10000,( 1, 1)?\), expected \(10242,\)"),
    Case("row20-rh-nsdgeneral-long-in-betas", _betas(S1, roi=("nsdgeneral", "nsdgeneral")),
         lambda r: _mgh(r, f"{LABEL}/rh.nsdgeneral.mgz", _extra(100)), NSDFileError,
         r"rh\.nsdgeneral\.mgz: labels of shape \(10342"),
    Case("row20-lh-ncsnr-short", lambda nsd, root: nsd.ncsnr(S1),
         lambda r: _mgh(r, f"{FS.format(s=S1)}/lh.ncsnr.mgh", _fewer(10000)), NSDFileError,
         r"lh\.ncsnr\.mgh: ncsnr of shape \(10000"),
    Case("row20-rh-ncsnr-long-noise-ceiling", lambda nsd, root: nsd.noise_ceiling(S1),
         lambda r: _mgh(r, f"{FS.format(s=S1)}/rh.ncsnr.mgh", _extra(5)), NSDFileError,
         r"rh\.ncsnr\.mgh: ncsnr of shape \(10247"),
    Case("row20-label-value-not-in-ctab", lambda nsd, root: nsd.roi_mask(S1, "streams", "ventral"),
         lambda r: _mgh(r, f"{LABEL}/lh.streams.mgz", lambda d: np.where(np.arange(d.shape[0])[:, None, None] < 5, 9, d)),
         NSDFileError, r"streams\.mgz: label values \[9\] are not in the colour table streams\.mgz\.ctab"),
    Case("row20-label-value-not-integer", lambda nsd, root: nsd.roi_mask(S1, "streams"),
         lambda r: _mgh(r, f"{LABEL}/lh.streams.mgz", lambda d: d.astype(np.float32) + 0.5, ),
         NSDFileError, r"lh\.streams\.mgz: ROI labels must be integers"),
    Case("row20-volume-label-not-in-ctab", lambda nsd, root: nsd.roi_mask(S1, "streams", "ventral", space="func1pt8mm"),
         lambda r: _nii(r, ROI1, lambda d: np.where(d == 5, 12, d).astype(d.dtype)), NSDFileError,
         r"roi/streams\.nii\.gz: label values \[12\] are not in the colour table"),
    # row 21: volumes on another grid than the brain mask (shape or affine)
    Case("row21-brainmask-other-shape", _betas(S1, space="func1pt8mm"),
         lambda r: _nii(r, MASK1, lambda d: d[:, :, :-1]), NSDFileError,
         r"betas_session01\.nii\.gz: grid \(10, 12, 9\), but the brain mask .*brainmask\.nii\.gz has \(10, 12, 8\)"),
    Case("row21-brainmask-shifted-affine", _betas(S1, space="func1pt8mm"),
         lambda r: _nii(r, MASK1, affine=_shift(__import__("nibabel").load(r / MASK1).affine)), NSDFileError,
         r"betas_session01\.nii\.gz: affine .* differs from the brain mask .*brainmask\.nii\.gz"),
    Case("row21-session-shifted-affine", _betas(S1, space="func1pt8mm"),
         lambda r: _nii(r, V1_2, affine=_shift(__import__("nibabel").load(r / V1_2).affine, 0.9)), NSDFileError,
         r"betas_session02\.nii\.gz: affine .* differs from the brain mask"),
    Case("row21-session-bigger-grid", _betas(S1, space="func1pt8mm"),
         lambda r: _nii(r, V1_2, lambda d: np.concatenate([d, d[:1]], 0)), NSDFileError,
         r"betas_session02\.nii\.gz: grid \(11, 12, 9\), but the brain mask"),
    Case("row21-roi-other-shape", lambda nsd, root: nsd.roi_mask(S1, "streams", "ventral", space="func1pt8mm"),
         lambda r: _nii(r, ROI1, lambda d: d[:-1]), NSDFileError,
         r"roi/streams\.nii\.gz: grid \(9, 12, 9\), but the brain mask .*brainmask\.nii\.gz"),
    Case("row21-roi-shifted-affine", _betas(S1, space="func1pt8mm", roi=("streams", "ventral")),
         lambda r: _nii(r, ROI1, affine=_shift(__import__("nibabel").load(r / ROI1).affine)), NSDFileError,
         r"roi/streams\.nii\.gz: affine .* differs from the brain mask"),
    Case("row21-ncsnr-other-shape", lambda nsd, root: nsd.ncsnr(S1, "func1pt8mm"),
         lambda r: _nii(r, f"{VOL.format(s=S1)}/ncsnr.nii.gz", lambda d: d[..., :-1]), NSDFileError,
         r"ncsnr\.nii\.gz: grid \(10, 12, 8\), but the brain mask"),
    # row 11 (a hole in the middle disagrees with the design) and row 12: responses.tsv columns
    Case("row11-responses-missing-middle-session", _betas(S1),
         lambda r: _tsv(r, RESP.format(s=S1), lambda df: df[df["SESSION"] != 2]), NSDFileError,
         r"responses\.tsv: its 73KID column disagrees"),
    Case("row12-responses-without-SESSION", _betas(S1),
         lambda r: _tsv(r, RESP.format(s=S1), lambda df: df.drop(columns="SESSION")), NSDFileError,
         r"subj01/behav/responses\.tsv: expected a 'SESSION' column"),
    Case("row12-responses-without-73KID", lambda nsd, root: nsd.trial_table(S1),
         lambda r: _tsv(r, RESP.format(s=S1), lambda df: df.drop(columns="73KID")), NSDFileError,
         r"responses\.tsv: expected a '73KID' column"),
    Case("row12-responses-SESSION-text", lambda nsd, root: nsd.sessions(S1),
         lambda r: _tsv(r, RESP.format(s=S1), lambda df: df.assign(SESSION="one")), NSDFileError,
         r"responses\.tsv: column 'SESSION' must hold integers"),
    # row 15: every caption of an image empty is refused (nothing to embed)
    Case("row15-all-captions-empty", lambda nsd, root: nsd.captions([1]),
         lambda r: _captions_of(r, 100001, ""), NSDFileError,
         r"captions_train2017\.json: all \d captions of nsdId 1 \(cocoId 100001\) are empty"),
    Case("row15-all-captions-whitespace", lambda nsd, root: nsd.captions([3, 1]),
         lambda r: _captions_of(r, 100001, "  \n "), NSDFileError, r"all \d captions of nsdId 1 .* are empty"),
    # row 16: malformed COCO annotation files
    Case("row16-caption-missing", lambda nsd, root: nsd.captions([1]), lambda r: _json(r, CAPS, _ann_edit(0, caption=...)),
         NSDFileError, r"captions_train2017\.json: annotations\[0\] \(id \d+\) has caption=None, expected a string"),
    Case("row16-caption-null", lambda nsd, root: nsd.captions([1]), lambda r: _json(r, CAPS, _ann_edit(3, caption=None)),
         NSDFileError, r"captions_train2017\.json: annotations\[3\] .*caption=None"),
    Case("row16-caption-number", lambda nsd, root: nsd.captions([1]), lambda r: _json(r, CAPS, _ann_edit(2, caption=7)),
         NSDFileError, r"annotations\[2\] .*caption=7, expected a string"),
    Case("row16-caption-image-id-text", lambda nsd, root: nsd.captions([1]),
         lambda r: _json(r, CAPS, _ann_edit(1, image_id="100001")), NSDFileError,
         r"captions_train2017\.json: annotations\[1\] .*image_id='100001', expected an integer"),
    Case("row16-captions-without-annotations", lambda nsd, root: nsd.captions([1]),
         lambda r: _json(r, CAPS, lambda d: d.pop("annotations")), NSDFileError,
         r"captions_train2017\.json: expected a list 'annotations'"),
    Case("row16-captions-top-level-list", lambda nsd, root: nsd.captions([1]),
         lambda r: _json(r, CAPS, lambda d: d["annotations"], replace=True), NSDFileError,
         r"captions_train2017\.json: expected a list 'annotations'"),
    Case("row16-annotation-not-an-object", lambda nsd, root: nsd.captions([1]),
         lambda r: _json(r, CAPS, lambda d: d["annotations"].insert(0, "oops")), NSDFileError,
         r"captions_train2017\.json: annotations\[0\] is str"),
    Case("row16-instances-unknown-category", lambda nsd, root: nsd.categories([1]),
         lambda r: _json(r, INST, _ann_edit(0, category_id=9999)), NSDFileError,
         r"instances_train2017\.json: annotations\[0\] has category_id=9999, not among the \d+ categories"),
    Case("row16-instances-category-id-missing", lambda nsd, root: nsd.categories([1]),
         lambda r: _json(r, INST, _ann_edit(0, category_id=...)), NSDFileError,
         r"instances_train2017\.json: annotations\[0\] .*category_id=None"),
    Case("row16-instances-without-categories", lambda nsd, root: nsd.category_names,
         lambda r: _json(r, INST, lambda d: d.pop("categories")), NSDFileError,
         r"instances_train2017\.json: expected a list 'categories'"),
    Case("row16-instances-category-without-name", lambda nsd, root: nsd.categories([1]),
         lambda r: _json(r, INST, lambda d: d["categories"][0].pop("name")), NSDFileError,
         r"instances_train2017\.json: categories\[0\] = .*expected an object with an integer 'id' and a string 'name'"),
    Case("row16-instances-category-twice", lambda nsd, root: nsd.categories([1]),
         lambda r: _json(r, INST, lambda d: d["categories"].append(dict(d["categories"][0]))), NSDFileError,
         r"instances_train2017\.json: category id 1 is listed twice"),
    Case("row16-instances-without-annotations", lambda nsd, root: nsd.categories([1]),
         lambda r: _json(r, INST, lambda d: d.pop("annotations")), NSDFileError,
         r"instances_train2017\.json: expected a list 'annotations'"),
    # row 19: a known NSD atlas that is not on disk is a download (with its hint)
    Case("row19-known-atlas-missing", lambda nsd, root: nsd.roi_mask(S1, "Kastner2015", 1),
         None, NSDFileError, r"lh\.Kastner2015\.mgz[\s\S]*download"),
    # beyond the report: betas dtype/scale, the stimulus brick, design files, transforms
    # row 1: an empty root (the CLI's --data cases are row52 in test_faults_batch.py)
    Case("row01-root-empty-betas", lambda nsd, root: NSD(_empty(root)).betas(S1, cache=False, progress=False),
         exc=ValueError, match=r"subject 'subj01' has no betas under .*empty/nsddata_betas/ppdata; available: none"),
    Case("row01-root-empty-captions", lambda nsd, root: NSD(_empty(root)).captions([1]), exc=NSDFileError,
         match=r"(?s)missing NSD file: .*empty/nsddata/experiments/nsd/nsd_stim_info_merged\.csv.*get it with"),
    Case("row01-root-without-betas-folder", lambda nsd, root: nsd.betas(S1, cache=False, progress=False),
         damage=lambda r: __import__("shutil").rmtree(r / "nsddata_betas"), exc=ValueError,
         match=r"subject 'subj01' has no betas under .*nsddata_betas/ppdata"),
    # row 10: responses.tsv faults (good before; kept as regressions)
    Case("row10-responses-wrong-73KID", _betas(S1),
         lambda r: _tsv(r, RESP.format(s=S1), lambda df: df.assign(**{"73KID": df["73KID"].where(df.index != 0, 99999)})),
         NSDFileError, r"subj01/behav/responses\.tsv: its 73KID column disagrees with masterordering/subjectim of "
                       r".*nsd_expdesign\.mat"),
    Case("row10-responses-row-dropped", _betas(S1), lambda r: _tsv(r, RESP.format(s=S1), lambda df: df.drop(index=5)),
         NSDFileError, r"subj01/behav/responses\.tsv: its 73KID column disagrees"),
    Case("row10-responses-session-4", _betas(S1),
         lambda r: _tsv(r, RESP.format(s=S1), lambda df: df.assign(SESSION=df["SESSION"].where(df.index != 0, 4))),
         NSDFileError, r"subj01: 4 sessions × 60 trials exceed the 180 trials of masterordering in .*nsd_expdesign\.mat"),
    Case("row10-responses-garbage", _betas(S1), _write_bytes(RESP.format(s=S1), b"\x00\x01garbage\xff" * 20),
         NSDFileError, r"subj01/behav/responses\.tsv: cannot parse as tab-separated values"),
    Case("row10-responses-empty", _betas(S1), _write_bytes(RESP.format(s=S1), b""),
         NSDFileError, r"subj01/behav/responses\.tsv: cannot parse as tab-separated values \(No columns"),
    # row 13: nsd_expdesign.mat and nsd_stim_info_merged.csv faults (good before; kept as regressions)
    Case("row13-expdesign-missing", _betas(S1), _rm(DESIGN), NSDFileError,
         r"(?s)missing NSD file: .*nsd_expdesign\.mat.*get it with"),
    Case("row13-expdesign-garbage", _betas(S1), _write_bytes(DESIGN, b"garbage" * 30), NSDFileError,
         r"nsd_expdesign\.mat: cannot read as a MATLAB file"),
    Case("row13-expdesign-truncated", _betas(S1), _truncate(DESIGN), NSDFileError,
         r"nsd_expdesign\.mat: cannot read as a MATLAB file"),
    Case("row13-expdesign-without-masterordering", _betas(S1), lambda r: _design(r, lambda m: m.pop("masterordering")),
         NSDFileError, r"nsd_expdesign\.mat: expected a 'masterordering' field"),
    Case("row13-expdesign-without-subjectim", _betas(S1), lambda r: _design(r, lambda m: m.pop("subjectim")),
         NSDFileError, r"nsd_expdesign\.mat: expected a 'subjectim' field"),
    Case("row13-expdesign-masterordering-short", _betas(S1),
         lambda r: _design(r, lambda m: m.__setitem__("masterordering", m["masterordering"][:, :10])),
         NSDFileError, r"subj01: 3 sessions × 60 trials exceed the 10 trials of masterordering in .*nsd_expdesign\.mat"),
    Case("row13-expdesign-masterordering-out-of-range", _betas(S1),
         lambda r: _design(r, lambda m: m.__setitem__("masterordering", m["masterordering"] + 100000)),
         NSDFileError, r"nsd_expdesign\.mat: masterordering values must lie in 1\.\.60"),
    Case("row13-expdesign-without-sharedix", lambda nsd, root: nsd.shared_test_images(),
         lambda r: _design(r, lambda m: m.pop("sharedix")), NSDFileError, r"nsd_expdesign\.mat: expected a 'sharedix' field"),
    Case("row13-stim-csv-missing", lambda nsd, root: nsd.captions([1]), _rm(CSV), NSDFileError,
         r"(?s)missing NSD file: .*nsd_stim_info_merged\.csv.*get it with"),
    Case("row13-stim-csv-without-cocoId", lambda nsd, root: nsd.captions([1]), _write_bytes(CSV, b"a,b\n1,2\n"),
         NSDFileError, r"nsd_stim_info_merged\.csv: expected a 'cocoId' column"),
    # row 14: the captions file missing or truncated; an image without any caption
    Case("row14-captions-missing", lambda nsd, root: nsd.captions([1]), _rm(CAPS), NSDFileError,
         r"missing NSD COCO annotation file: .*captions_train2017\.json"),
    Case("row14-captions-truncated", lambda nsd, root: nsd.captions([1]), _truncate(CAPS), NSDFileError,
         r"captions_train2017\.json: not valid COCO JSON"),
    Case("row14-image-without-captions", lambda nsd, root: nsd.captions([1, 2]),
         lambda r: _json(r, CAPS, lambda d: d.__setitem__("annotations",
                                                          [a for a in d["annotations"] if a["image_id"] != 100001])),
         NSDFileError, r"no captions for nsdId 1 \(cocoId 100001\) in .*captions_train2017\.json"),
    Case("row14-instances-missing-categories", lambda nsd, root: nsd.categories([1]), _rm(INST), NSDFileError,
         r"missing NSD COCO annotation file: .*instances_train2017\.json"),
    Case("rowX-volume-betas-float", _betas(S1, space="func1pt8mm"),
         lambda r: _nii(r, V1_2, dtype=np.float32), NSDFileError,
         r"betas_session02\.nii\.gz: betas of dtype float32, expected int16"),
    Case("rowX-surface-betas-int", _betas(S2),
         lambda r: _mgh(r, LH2, lambda d: np.nan_to_num(d * 300), dtype=np.int32), NSDFileError,
         r"lh\.betas_session02\.mgh: betas of dtype .*i4.*, expected float32"),
    Case("rowX-brick-fewer-images", lambda nsd, root: nsd.images([0, 1]), lambda r: _brick(r, lambda b: b[:-1]),
         NSDFileError, r"nsd_stimuli\.hdf5: imgBrick of shape \(395, \d+, \d+, 3\), expected \(396, H, W, 3\)"),
    Case("rowX-brick-grey", lambda nsd, root: nsd.images([0]), lambda r: _brick(r, lambda b: b[..., 0]),
         NSDFileError, r"nsd_stimuli\.hdf5: imgBrick of shape \(396, \d+, \d+\), expected"),
    Case("rowX-stim-info-fewer-images-than-design", _betas(S1),
         lambda r: (lambda p: pd.read_csv(p, index_col=0).iloc[:200].to_csv(_unlink(p)))(r / CSV), NSDFileError,
         r"nsd_expdesign\.mat: subjectim of subj01 holds 73KIDs .*nsd_stim_info_merged\.csv lists 200 images"),
    Case("rowX-subjectim-not-sharedix", lambda nsd, root: nsd.shared_test_images(),
         lambda r: _design(r, _swap_shared), NSDFileError,
         r"nsd_expdesign\.mat: the first \d+ columns of subjectim must be sharedix"),
    Case("rowX-transform-index-wrong-length",
         lambda nsd, root: __import__("brainllm_utils.nsd", fromlist=["x"]).load_fsaverage_transforms(nsd, S1),
         lambda r: _mgh(r, f"{PP.format(s=S1)}/transforms/lh.white-to-fsaverage.mgz", _fewer(10000)), NSDFileError,
         r"lh\.white-to-fsaverage\.mgz: expected \(10242, 1, 1\)"),
    Case("rowX-transform-depths-disagree",
         lambda nsd, root: __import__("brainllm_utils.nsd", fromlist=["x"]).load_fsaverage_transforms(nsd, S1),
         lambda r: _mgh(r, f"{PP.format(s=S1)}/transforms/lh.func1pt8-to-layerB2.mgz", _fewer(100)), NSDFileError,
         r"lh\.func1pt8-to-layerB2\.mgz: 100 vertices, but lh\.func1pt8-to-layerB1\.mgz has"),
]

ARG_CASES = [
    # row 2: the root argument's type
    Case("row02-root-int", lambda nsd, root: NSD(3), exc=TypeError, match=r"NSD\(root=3\): expected a folder path .*data_home"),
    Case("row02-root-float", lambda nsd, root: NSD(1.5), exc=TypeError, match=r"root=1\.5"),
    Case("row02-root-list", lambda nsd, root: NSD([str(root)]), exc=TypeError, match=r"root=\[.*not list"),
    Case("row02-cache-dir-int", lambda nsd, root: NSD(root, cache_dir=5), exc=TypeError, match=r"cache_dir=5"),
    Case("row02-beta-version-empty", lambda nsd, root: NSD(root, beta_version=""), exc=ValueError,
         match=r"beta_version=''"),
    # row 17: non-integer ids anywhere (floats, even integral ones, and bools are refused)
    Case("row17-captions-float", lambda nsd, root: nsd.captions([1.7]), exc=TypeError, match=r"nsd_ids: .*float64"),
    Case("row17-captions-integral-float", lambda nsd, root: nsd.captions([1.0]), exc=TypeError, match=r"nsd_ids"),
    Case("row17-captions-bool", lambda nsd, root: nsd.captions([True]), exc=TypeError, match=r"nsd_ids: .*bool"),
    Case("row17-captions-strings", lambda nsd, root: nsd.captions(["1"]), exc=TypeError, match=r"nsd_ids"),
    Case("row17-captions-string", lambda nsd, root: nsd.captions("12"), exc=TypeError, match=r"nsd_ids='12'"),
    Case("row17-captions-mixed-objects", lambda nsd, root: nsd.captions([1, 2.5]), exc=TypeError, match=r"nsd_ids"),
    Case("row17-categories-float", lambda nsd, root: nsd.categories(np.array([1.0, 2.0])), exc=TypeError,
         match=r"nsd_ids"),
    Case("row17-images-float", lambda nsd, root: nsd.images([0.5]), exc=TypeError, match=r"nsd_ids"),
    Case("row17-captions-out-of-range", lambda nsd, root: nsd.captions([396]), exc=ValueError,
         match=r"nsd_ids must be 0-based nsdIds in 0\.\.395"),
    Case("row17-captions-negative", lambda nsd, root: nsd.captions([-1]), exc=ValueError, match=r"nsd_ids"),
    Case("row17-subject-float", _betas(1.0), exc=TypeError, match=r"subject=1\.0: expected 'subjNN'"),
    Case("row17-subject-float-trial-table", lambda nsd, root: nsd.trial_table(2.0), exc=TypeError,
         match=r"subject=2\.0"),
    Case("row17-subject-numpy-float-sessions", lambda nsd, root: nsd.sessions(np.float64(1)), exc=TypeError,
         match=r"subject="),
    Case("row17-sessions-floats", _betas(S1, sessions=[1.0, 2.0]), exc=TypeError, match=r"sessions=\[1\.0, 2\.0\]"),
    Case("row17-sessions-bool", _betas(S1, sessions=[True]), exc=TypeError, match=r"sessions=\[True\]"),
    Case("row17-label-float", lambda nsd, root: nsd.roi_mask(S1, "streams", 5.0), exc=TypeError, match=r"label=5\.0"),
    Case("row17-label-bool", lambda nsd, root: nsd.roi_mask(S1, "streams", [True]), exc=TypeError,
         match=r"label=\[True\]"),
    # row 19: unknown atlas (a typo): ValueError listing the atlases, no download hint
    Case("row19-unknown-atlas-mask", lambda nsd, root: nsd.roi_mask(S1, "nope", "x"), exc=ValueError,
         match=r"atlas='nope': unknown atlas; NSD's atlases: .*'streams'.*on disk: .*'streams'"),
    Case("row19-unknown-atlas-labels", lambda nsd, root: nsd.roi_labels("nope"), exc=ValueError,
         match=r"atlas='nope': unknown atlas"),
    Case("row19-unknown-atlas-betas", _betas(S1, roi=("nope", "x")), exc=ValueError, match=r"atlas='nope'"),
    Case("row19-unknown-atlas-volume", lambda nsd, root: nsd.roi_volume(S1, "strems", space="func1pt8mm"),
         exc=ValueError, match=r"atlas='strems': unknown atlas"),
    Case("row19-atlas-not-a-string", lambda nsd, root: nsd.roi_mask(S1, 5), exc=TypeError, match=r"atlas=5"),
    Case("row19-unknown-label", lambda nsd, root: nsd.roi_mask(S1, "streams", "ventrl"), exc=ValueError,
         match=r"label 'ventrl' is not in atlas 'streams'; names: .*ventral"),
    Case("rowX-noise-ceiling-n-zero", lambda nsd, root: nsd.noise_ceiling(S1, n=0), exc=ValueError,
         match=r"n: expected trial counts > 0"),
    Case("rowX-noise-ceiling-n-negative-array", lambda nsd, root: nsd.noise_ceiling(S1, n=np.array([3, -1])),
         exc=ValueError, match=r"n: expected trial counts > 0"),
    Case("rowX-noise-ceiling-n-nan", lambda nsd, root: nsd.noise_ceiling(S1, n=float("nan")), exc=ValueError,
         match=r"n: expected trial counts > 0"),
    Case("rowX-noise-ceiling-n-string", lambda nsd, root: nsd.noise_ceiling(S1, n="3"), exc=TypeError,
         match=r"n='3'"),
    # rows 22/23: bad arguments of betas
    Case("row23-subject-true", _betas(True), exc=TypeError, match=r"subject=True: expected 'subjNN'"),
    Case("row23-subject-none", _betas(None), exc=TypeError, match=r"subject=None"),
    Case("row23-min-repeats-string", _betas(S1, min_repeats="3"), exc=TypeError, match=r"min_repeats='3'"),
    Case("row23-min-repeats-none", _betas(S1, min_repeats=None), exc=TypeError, match=r"min_repeats=None"),
    Case("row23-min-repeats-float", _betas(S1, min_repeats=3.0), exc=TypeError, match=r"min_repeats=3\.0"),
    Case("row23-min-repeats-zero", _betas(S1, min_repeats=0), exc=ValueError, match=r"min_repeats=0: expected an integer ≥ 1"),
    Case("row22-min-repeats-too-high", _betas(S1, min_repeats=4), exc=ValueError,
         match=r"no image has ≥ min_repeats=4 repeats in sessions=\[1, 2, 3\]"),
    Case("row23-chunk-columns-zero", _betas(S1, chunk_columns=0), exc=ValueError, match=r"chunk_columns=0"),
    Case("row23-chunk-columns-negative", _betas(S1, chunk_columns=-8), exc=ValueError, match=r"chunk_columns=-8"),
    Case("row23-chunk-columns-float", _betas(S1, chunk_columns=64.0), exc=TypeError, match=r"chunk_columns=64\.0"),
    Case("row23-zscore-string", _betas(S1, zscore="no"), exc=TypeError, match=r"zscore='no': expected True or False"),
    Case("row23-cache-string", _betas(S1, cache="yes"), exc=TypeError, match=r"cache='yes'"),
    Case("row23-progress-int", _betas(S1, progress=2), exc=TypeError, match=r"progress=2"),
    Case("row22-space-unknown", _betas(S1, space="MNI"), exc=ValueError, match=r"space='MNI'"),
    Case("row22-space-none", _betas(S1, space=None), exc=ValueError, match=r"space=None"),
    Case("row23-roi-three-tuple", _betas(S1, roi=("streams", "ventral", 1)), exc=ValueError,
         match=r"roi=\('streams', 'ventral', 1\): expected \(atlas, label\)"),
    Case("row22-roi-float-mask", _betas(S1, roi=np.ones(20484)), exc=ValueError, match=r"roi: expected .*boolean mask"),
    # row 24: duplicated, non-positive or unacquired sessions
    Case("row24-duplicate-sessions", _betas(S1, sessions=[1, 2, 2]), exc=ValueError,
         match=r"sessions=\[1, 2, 2\]: session\(s\) \[2\] listed more than once"),
    Case("row24-duplicate-sessions-numpy", _betas(S1, sessions=np.array([1, 1, 3])), exc=ValueError,
         match=r"listed more than once"),
    Case("row24-duplicate-sessions-dict", _betas(S1, sessions={1: [3, 3]}), exc=ValueError, match=r"more than once"),
    Case("row24-negative-session", _betas(S1, sessions=[-1, 2]), exc=ValueError, match=r"sessions are 1-based"),
    Case("row24-session-zero", _betas(S1, sessions=[0]), exc=ValueError, match=r"sessions are 1-based"),
    Case("row24-session-not-acquired", _betas(S1, sessions=[1, 4]), exc=ValueError,
         match=r"sessions 4: subj01 has sessions 1\.\.3"),
    Case("row24-empty-sessions", _betas(S1, sessions=[]), exc=ValueError, match=r"sessions=\[\]: selects no session"),
    Case("row24-reversed-range", _betas(S1, sessions="3-1"), exc=ValueError, match=r"3-1"),
]

EQUAL_CASES = [
    Case("row17-captions-numpy-int64", lambda nsd, root: nsd.captions(np.array([1, 2], dtype=np.int64)),
         clean=lambda nsd, root: nsd.captions([1, 2])),
    Case("row17-captions-numpy-uint16", lambda nsd, root: nsd.captions(np.array([[2], [1]], dtype=np.uint16)),
         clean=lambda nsd, root: nsd.captions([2, 1])),
    Case("row17-subject-numpy-int", _betas(np.int64(2)), clean=_betas(S2)),
    Case("row23-sessions-int-is-one-session", _betas(S1, sessions=2, min_repeats=1),
         clean=_betas(S1, sessions=[2], min_repeats=1)),
    Case("row24-unsorted-sessions", _betas(S1, sessions=[3, 1, 2]), clean=_betas(S1, sessions=[1, 2, 3])),
    Case("row24-overlapping-string-ranges", _betas(S1, sessions="1-2,2-3"), clean=_betas(S1)),
    Case("row24-numpy-session-ints", _betas(S1, sessions=np.array([2, 1], dtype=np.int32), min_repeats=2),
         clean=_betas(S1, sessions=[1, 2], min_repeats=2)),
    Case("row23-min-repeats-numpy-int", _betas(S1, min_repeats=np.int64(2)), clean=_betas(S1, min_repeats=2)),
    Case("row23-chunk-columns-small", _betas(S1, chunk_columns=7), clean=_betas(S1)),
    Case("row21-affine-within-tolerance", _betas(S1, space="func1pt8mm"),
         damage=lambda r: _nii(r, V1_2, affine=_shift(__import__("nibabel").load(r / V1_2).affine, 1e-5)),
         clean=_betas(S1, space="func1pt8mm")),
    # row 8: a non-finite or constant column in a session is left out of that session's average only
    Case("row08-nan-vertex-one-trial", _split(5), damage=_vertex(5, [2], np.nan, trial=0), clean=_split_without(5, [2])),
    Case("row08-inf-vertex-one-trial", _split(5), damage=_vertex(5, [2], np.inf, trial=3), clean=_split_without(5, [2])),
    Case("row08-neg-inf-rh-vertex", _split(20484 - 7), damage=_vertex(20484 - 7, [1], -np.inf, trial=1),
         clean=_split_without(20484 - 7, [1])),
    Case("row08-constant-vertex-one-session", _split(5), damage=_vertex(5, [2], 1.5), clean=_split_without(5, [2])),
    Case("row08-constant-vertex-two-sessions", _split(11), damage=_vertex(11, [1, 3], 0.0),
         clean=_split_without(11, [1, 3])),
    Case("row08-constant-vertex-every-session", _split(11), damage=_vertex(11, [1, 2, 3], -2.0),
         clean=_split_without(11, [1, 2, 3])),
    # row 14: captions without instances, and unicode captions, are read as they are
    Case("row14-instances-missing-captions-read", lambda nsd, root: nsd.captions([1, 2]), damage=_rm(INST),
         clean=lambda nsd, root: nsd.captions([1, 2])),
    Case("row14-unicode-captions", lambda nsd, root: nsd.captions([1, 2]),
         damage=lambda r: _captions_of(r, 100001, "Ein Hund läuft über die Straße — 犬 🐕."),
         clean=lambda nsd, root: [["Ein Hund läuft über die Straße — 犬 🐕."] * len(nsd.captions([1])[0]),
                                  nsd.captions([2])[0]]),
    Case("row04-lh-deleted-other-subject", _betas(S1), damage=_rm(LH2), clean=_betas(S1)),
    Case("row18-all-labels-without-ctab", lambda nsd, root: nsd.roi_mask(S1, "streams"),
         damage=_rm(f"{LABEL}/streams.mgz.ctab", "nsddata/freesurfer/subj01/label/streams.mgz.ctab"),
         clean=lambda nsd, root: nsd.roi_mask(S1, "streams")),
]


def _equal_sessions_13(nsd, root):
    return nsd.betas(S1, sessions=[1, 3], min_repeats=1, progress=False, cache=False)


PARTIAL_CASES = [
    # row 9: a whole session of NaN is left out of the average; images only seen there are NaN
    Case("row09-session-all-nan", _betas(S1),
         damage=lambda r: [_mgh(r, f, lambda d: np.full_like(d, np.nan)) for f in (LH1_2, RH1_2)],
         warns=PartialDataWarning, kind="session-all-nan",
         match=r"subj01 session 2: every one of the 20484 fsaverage columns read is NaN or constant .*"
               r"lh\.betas_session02\.mgh.*\d+ images lose their trials", clean=_equal_sessions_13),
    Case("row09-session-all-nan-cached", _betas(S1, cache=True),
         damage=lambda r: [_mgh(r, f, lambda d: np.full_like(d, np.nan)) for f in (LH1_2, RH1_2)],
         warns=PartialDataWarning, kind="session-all-nan", match=r"subj01 session 2: every one", clean=_equal_sessions_13),
    Case("row09-session-all-nan-roi", _betas(S1, roi=("streams", "ventral")),
         damage=lambda r: [_mgh(r, f, lambda d: np.full_like(d, np.nan)) for f in (LH1_2, RH1_2)],
         warns=PartialDataWarning, kind="session-all-nan", match=r"subj01 session 2: every one of the \d+ fsaverage",
         clean=lambda nsd, root: nsd.betas(S1, roi=("streams", "ventral"), sessions=[1, 3], min_repeats=1,
                                           progress=False, cache=False)),
    Case("row09-volume-session-constant", _betas(S1, space="func1pt8mm"),
         damage=lambda r: _nii(r, V1_2, lambda d: np.zeros_like(d)),
         warns=PartialDataWarning, kind="session-all-nan", match=r"subj01 session 2: every one of the \d+ func1pt8mm",
         clean=lambda nsd, root: nsd.betas(S1, space="func1pt8mm", sessions=[1, 3], min_repeats=1, progress=False,
                                           cache=False)),
    # row 11: responses.tsv without the last session: that session's betas are ignored, said so
    Case("row11-responses-missing-last-session", _betas(S1),
         damage=lambda r: _tsv(r, RESP.format(s=S1), lambda df: df[df["SESSION"] != 3]),
         warns=PartialDataWarning, kind="sessions-not-in-responses",
         match=r"subj01: .*subj01/behav/responses\.tsv lists sessions 1\.\.2, but the fsaverage betas of session\(s\) 3",
         clean=_betas(S1, sessions=[1, 2])),
    Case("row11-responses-missing-last-session-volume", _betas(S2, space="func1pt8mm"),
         damage=lambda r: _tsv(r, RESP.format(s=S2), lambda df: df[df["SESSION"] != 3]),
         warns=PartialDataWarning, kind="sessions-not-in-responses", match=r"subj02: .*session\(s\) 3",
         clean=_betas(S2, space="func1pt8mm", sessions=[1, 2])),
    # row 4 (default sessions): a deleted session is skipped with SessionsMissingWarning
    Case("row04-session-deleted-default-sessions", _betas(S1), damage=_rm(LH1_2),
         warns=SessionsMissingWarning, kind="sessions-missing", match=r"subj01: 1 of its 3 acquired sessions .*sessions 2",
         clean=_betas(S1, sessions=[1, 3])),
    # row 3: a subject's betas folder deleted: the subject is dropped, said so
    Case("row03-subject-betas-deleted", lambda nsd, root: nsd.subjects,
         damage=lambda r: __import__("shutil").rmtree(r / "nsddata_betas/ppdata/subj03"),
         warns=PartialDataWarning, kind="subject-without-betas",
         match=r"subj03: .*subj03/behav/responses\.tsv exists but no betas_fithrf_GLMdenoise_RR betas are on disk",
         clean=lambda nsd, root: [S1, S2]),
    # row 15: some captions empty: dropped, the images named
    Case("row15-some-captions-empty", lambda nsd, root: nsd.captions([1, 2]),
         damage=lambda r: _captions_of(r, 100001, ["", "a dog."]),
         warns=PartialDataWarning, kind="empty-captions",
         match=r"captions_train2017\.json: 1 images have empty captions, dropped .*nsdIds \[1\]",
         clean=lambda nsd, root: [["a dog."] * (len(nsd.captions([1])[0]) - 1), nsd.captions([2])[0]]),
]

CASES = FILE_CASES + ARG_CASES + EQUAL_CASES + PARTIAL_CASES


def _ids(cases):
    return [c.id for c in cases]


def _assert_same(a, b):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same(x, y)
    elif isinstance(a, np.ndarray):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    else:
        assert a == b


def test_case_ids_are_unique_and_name_a_row():
    ids = _ids(CASES)
    assert len(ids) == len(set(ids)) and len(ids) >= 70
    assert all(i.startswith("row") for i in ids)


@pytest.mark.parametrize("case", FILE_CASES, ids=_ids(FILE_CASES))
def test_damaged_file_is_a_clear_error(case, tree_copy, cache_dir):
    root = tree_copy()
    if case.damage is not None:
        case.damage(root)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PartialDataWarning)
        with pytest.raises(case.exc, match=case.match):
            case.call(NSD(root), root)


@pytest.mark.parametrize("case", ARG_CASES, ids=_ids(ARG_CASES))
def test_bad_argument_is_a_clear_error(case, tiny_root, cache_dir):
    with pytest.raises(case.exc, match=case.match):
        case.call(NSD(tiny_root), tiny_root)


@pytest.mark.parametrize("case", EQUAL_CASES, ids=_ids(EQUAL_CASES))
def test_result_equals_the_clean_run(case, tree_copy, tiny_root, cache_dir):
    root = tree_copy()
    if case.damage is not None:
        case.damage(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialDataWarning)  # nothing is left out here
        got = case.call(NSD(root), root)
    _assert_same(got, case.clean(NSD(tiny_root), tiny_root))


@pytest.mark.parametrize("case", PARTIAL_CASES, ids=_ids(PARTIAL_CASES))
def test_partial_data_is_warned_recorded_and_correct(case, tree_copy, tiny_root, cache_dir):
    root = tree_copy()
    case.damage(root)
    nsd = NSD(root)
    with pytest.warns(case.warns, match=case.match):
        got = case.call(nsd, root)
    report = nsd.data_report()
    assert list(report.columns) == ["kind", "subject", "session", "file", "n_images", "message"]
    assert case.kind in set(report["kind"]), report
    row = report[report["kind"] == case.kind].iloc[0]
    assert row["message"] and (row["file"] is None or Path(row["file"].split(", ")[0]).is_relative_to(root))
    clean = case.clean(NSD(tiny_root), tiny_root)
    if case.kind == "session-all-nan":
        Y, ids = got
        Yc, idc = clean
        rows = np.searchsorted(ids, idc)
        kept = np.isin(idc, ids)
        # images still present: exactly the average over the other sessions' trials
        np.testing.assert_allclose(np.asarray(Y)[rows[kept]], Yc[kept], rtol=1e-5, atol=1e-6)
        # images seen only in the NaN session: NaN, and counted in the message
        lost = ~np.isin(ids, idc)
        assert np.isnan(np.asarray(Y)[lost]).all()
        assert f"{int(lost.sum())} of them have no other valid trial" in row["message"]
        if "cached" in case.id:  # the cache hit warns again and returns the same array
            nsd2 = NSD(root)
            with pytest.warns(PartialDataWarning, match=case.match):
                again = case.call(nsd2, root)
            np.testing.assert_array_equal(np.asarray(again[0]), np.asarray(Y))
            assert case.kind in set(nsd2.data_report()["kind"])
    else:
        _assert_same(got, clean)


def test_clean_sandbox_has_an_empty_report(tiny_root, cache_dir):
    nsd = NSD(tiny_root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialDataWarning)
        nsd.betas(S1, progress=False, cache=False)
        nsd.captions(np.arange(20))
    assert nsd.data_report().empty


def test_partial_data_warning_is_warned_once_per_event(tree_copy, cache_dir):
    root = tree_copy()
    _tsv(root, RESP.format(s=S1), lambda df: df[df["SESSION"] != 3])
    nsd = NSD(root)
    with pytest.warns(PartialDataWarning):
        nsd.sessions(S1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", PartialDataWarning)
        nsd.sessions(S1)
    assert len(nsd.data_report()) == 1
