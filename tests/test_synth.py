"""Tests of the synthetic NSD generator (brainllm_utils.synth).

Every check reads the raw files with plain libraries (scipy.io, pandas, nibabel, h5py,
json, PIL) the way a real-NSD reader would; brainllm_utils.nsd is deliberately not used.
The ``tiny`` tree (seed 0) is built once per session by conftest's ``tiny_root``.
"""

from __future__ import annotations

import ast
import json
import re

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.io import loadmat

from brainllm_utils import synth
from brainllm_utils.synth import _generate

from synth_files import TUNED, digests, fsaverage_streams, inter_subject_agreement

BETAS = "betas_fithrf_GLMdenoise_RR"
# Real COCO 2017 ids, typed in independently of the generator.
REAL_COCO_IDS = {
    "person": 1, "bicycle": 2, "car": 3, "motorcycle": 4, "bus": 6, "truck": 8, "boat": 9,
    "bench": 15, "bird": 16, "cat": 17, "dog": 18, "horse": 19, "sheep": 20, "cow": 21,
    "umbrella": 28, "frisbee": 34, "sports ball": 37, "kite": 38, "banana": 52, "apple": 53,
    "pizza": 59, "cake": 61, "chair": 62, "couch": 63, "potted plant": 64, "dining table": 67,
}
CSV_COLUMNS = (["cocoId", "cocoSplit", "cropBox", "loss", "nsdId", "flagged", "BOLD5000", "shared1000"]
               + [f"subject{s}" for s in range(1, 9)]
               + [f"subject{s}_rep{r}" for s in range(1, 9) for r in range(3)])
ROI_N = {"streams": 7, "nsdgeneral": 1, "prf-visualrois": 7, "floc-faces": 5, "floc-bodies": 4,
         "floc-places": 3, "floc-words": 5}


@pytest.fixture(scope="module")
def tree(tiny_root):
    """The ``tiny`` tree, seed 0 (conftest builds it once per session)."""
    return tiny_root


@pytest.fixture(scope="module")
def card(tree):
    return synth.load_truth(tree)


@pytest.fixture(scope="module")
def exp(tree):
    m = loadmat(tree / "nsddata/experiments/nsd/nsd_expdesign.mat")
    return {"raw": m,
            "mo": np.asarray(m["masterordering"]).ravel().astype(np.int64),
            "subjectim": np.asarray(m["subjectim"]).astype(np.int64),
            "sharedix": np.asarray(m["sharedix"]).ravel().astype(np.int64)}


@pytest.fixture(scope="module")
def stim(tree):
    return pd.read_csv(tree / "nsddata/experiments/nsd/nsd_stim_info_merged.csv", index_col=0)


def _sessions(tree, s):
    folder = tree / f"nsddata_betas/ppdata/subj{s:02d}/func1pt8mm/{BETAS}"
    return sorted(int(m.group(1)) for p in folder.glob("betas_session*.nii.gz")
                  if (m := re.match(r"betas_session(\d\d)\.nii\.gz", p.name)))


def _mgh(path):
    return np.asarray(nib.load(path).dataobj)


# --------------------------------------------------------------------------- design


def test_expdesign_shapes_and_dtypes(exp, card):
    sz = card["sizes"]
    D, T, K, S = sz["planned_sessions"], sz["trials_per_session"], sz["images_per_subject"], sz["n_shared"]
    assert exp["raw"]["masterordering"].shape == (1, D * T)
    assert exp["raw"]["subjectim"].shape == (8, K)
    assert exp["raw"]["sharedix"].shape == (1, S)
    assert exp["raw"]["masterordering"].dtype == np.float64


def test_masterordering_constraints(exp, card):
    mo, sz = exp["mo"], card["sizes"]
    K, S, T = sz["images_per_subject"], sz["n_shared"], sz["trials_per_session"]
    assert mo.min() == 1 and mo.max() == K
    assert np.all(np.bincount(mo, minlength=K + 1)[1:] == 3)
    m = min(card["n_sessions"].values())
    within = np.bincount(mo[: m * T], minlength=K + 1)[1 : S + 1]
    strict = np.flatnonzero(within == 3) + 1
    assert 0 < strict.size < S  # a strict "special 515" analogue exists and is a proper subset
    assert strict.size == card["n_strict_shared"]
    assert sorted((exp["sharedix"][strict - 1] - 1).tolist()) == card["strict_shared_nsd_ids"]
    sessions = mo.reshape(-1, T)
    assert any(len(np.unique(row)) < T for row in sessions)  # within-session repeats


def test_subjectim_and_sharedix(exp, card):
    si, sh = exp["subjectim"], exp["sharedix"]
    N, S = card["sizes"]["n_images"], card["sizes"]["n_shared"]
    assert np.all(np.diff(sh) > 0)
    assert np.all(si[:, :S] == sh)
    rest = si[:, S:]
    assert np.unique(rest).size == rest.size  # disjoint across subjects and unique
    assert not np.isin(rest, sh).any()
    assert np.array_equal(np.union1d(sh, rest.ravel()), np.arange(1, N + 1))


def test_stim_info_csv(stim, exp, card):
    N = card["sizes"]["n_images"]
    assert list(stim.columns) == CSV_COLUMNS
    assert len(stim) == N and np.array_equal(stim.index, np.arange(N))
    assert np.array_equal(stim["nsdId"], np.arange(N))
    assert stim["cocoId"].is_unique
    assert set(stim["cocoSplit"]) == {"train2017", "val2017"}
    assert len(ast.literal_eval(stim["cropBox"].iloc[0])) == 4
    assert np.array_equal(stim["shared1000"].to_numpy(), np.isin(np.arange(N) + 1, exp["sharedix"]))
    order = np.argsort(exp["mo"], kind="stable").reshape(-1, 3) + 1
    for s in range(1, 9):
        ids = exp["subjectim"][s - 1] - 1
        member = np.zeros(N, int)
        member[ids] = 1
        assert np.array_equal(stim[f"subject{s}"], member)
        reps = stim[[f"subject{s}_rep{r}" for r in range(3)]].to_numpy()
        assert np.array_equal(reps[ids], order)
        assert np.all(reps[member == 0] == 0)


def test_responses(tree, exp, card):
    T = card["sizes"]["trials_per_session"]
    for key, n_sess in card["n_sessions"].items():
        s = int(key[-2:])
        path = tree / f"nsddata/ppdata/{key}/behav/responses.tsv"
        df = pd.read_csv(path, sep="\t")
        assert len(df.columns) == 19 and list(df.columns[:6]) == ["SUBJECT", "SESSION", "RUN", "TRIAL", "73KID", "10KID"]
        assert len(df) == n_sess * T
        t = (df["SESSION"].to_numpy() - 1) * T + np.arange(len(df)) % T
        assert np.array_equal(df["10KID"], exp["mo"][t])
        assert np.array_equal(df["73KID"], exp["subjectim"][s - 1, exp["mo"][t] - 1])
        assert df["RUN"].between(1, 12).all() and df["SESSION"].max() == n_sess
        text = path.read_text()
        assert "\tNaN\t" in text and "\t\t" not in text and "\tnan" not in text  # NaN written as "NaN"
    assert not (tree / "nsddata/ppdata/subj08").exists()


# --------------------------------------------------------------------------- volume


def test_volume_betas(tree, card):
    for key, n_sess in card["n_sessions"].items():
        s = int(key[-2:])
        assert _sessions(tree, s) == list(range(1, n_sess + 1))
        mask_img = nib.load(tree / f"nsddata/ppdata/{key}/func1pt8mm/brainmask.nii.gz")
        mask = np.asarray(mask_img.dataobj) > 0
        shape = mask.shape
        assert list(shape) == card["sizes"]["grids"][key]
        expected = np.diag([1.8, 1.8, 1.8, 1.0])
        expected[:3, 3] = -(((1 + np.array(shape)) / 2) - 1) * 1.8
        img = nib.load(tree / f"nsddata_betas/ppdata/{key}/func1pt8mm/{BETAS}/betas_session01.nii.gz")
        data = np.asarray(img.dataobj)
        assert data.dtype == np.int16 and data.shape == (*shape, card["sizes"]["trials_per_session"])
        assert np.allclose(img.affine, expected) and np.allclose(mask_img.affine, expected)
        assert np.all(data[~mask] == 0)
        assert np.abs(data[mask]).mean() > 100  # PSC x 300 scale, not raw PSC


def test_zeroed_voxels(tree, card):
    info = card["zeroed_voxels"]["subj01"]
    assert info["flat_indices"]
    folder = tree / f"nsddata_betas/ppdata/subj01/func1pt8mm/{BETAS}"
    for n in (1, info["session"]):
        data = np.asarray(nib.load(folder / f"betas_session{n:02d}.nii.gz").dataobj)
        flat = data.reshape(-1, data.shape[-1])[info["flat_indices"]]
        assert np.all(flat == 0) == (n == info["session"])


def test_volume_rois(tree, card):
    for key in card["n_sessions"]:
        folder = tree / f"nsddata/ppdata/{key}/func1pt8mm"
        mask = np.asarray(nib.load(folder / "brainmask.nii.gz").dataobj) > 0
        for roi, n in ROI_N.items():
            img = nib.load(folder / f"roi/{roi}.nii.gz")
            assert img.get_data_dtype() == np.int16
            v = np.asarray(img.dataobj)
            values = set(np.unique(v).tolist())
            assert {-1, 0} <= values <= set(range(-1, n + 1))
            assert len(values - {-1, 0}) >= (n + 1) // 2  # most labels have voxels
            lh = np.asarray(nib.load(folder / f"roi/lh.{roi}.nii.gz").dataobj)
            rh = np.asarray(nib.load(folder / f"roi/rh.{roi}.nii.gz").dataobj)
            half = v.shape[0] // 2
            assert np.all(lh[half + 1:] == -1) and np.all(rh[:half] == -1)
            assert np.array_equal(np.maximum(lh, rh), v)
        gen = np.asarray(nib.load(folder / "roi/nsdgeneral.nii.gz").dataobj)
        streams = np.asarray(nib.load(folder / "roi/streams.nii.gz").dataobj)
        assert np.all(mask[gen > 0])
        assert np.all(gen[streams > 0] == 1)


def test_ctabs(tree, card):
    for folder in ["fsaverage", *card["n_sessions"]]:
        path = tree / f"nsddata/freesurfer/{folder}/label/streams.mgz.ctab"
        ctab = pd.read_csv(path, delimiter=" ", header=None, index_col=0)
        assert ctab.loc[0, 1] == "Unknown"
        assert ctab[1].tolist()[1:] == ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"]
    faces = pd.read_csv(tree / "nsddata/freesurfer/subj01/label/floc-faces.mgz.ctab", delimiter=" ", header=None, index_col=0)
    assert faces.loc[2, 1] == "FFA-1"


# --------------------------------------------------------------------------- fsaverage


def test_fsaverage_betas_and_labels(tree, card):
    T = card["sizes"]["trials_per_session"]
    label = tree / "nsddata/freesurfer/fsaverage/label"
    for h in ("lh", "rh"):
        streams = _mgh(label / f"{h}.streams.mgz")
        assert streams.shape == (10242, 1, 1)
        assert set(np.unique(streams).tolist()) == set(range(8))
        assert set(np.unique(_mgh(label / f"{h}.nsdgeneral.mgz")).tolist()) == {0, 1}
    n_nan = {}
    for key, n_sess in card["n_sessions"].items():
        folder = tree / f"nsddata_betas/ppdata/{key}/fsaverage/{BETAS}"
        assert len(list(folder.glob("lh.betas_session*.mgh"))) == n_sess
        n_nan[key] = 0
        for h in ("lh", "rh"):
            img = nib.load(folder / f"{h}.betas_session01.mgh")
            assert img.get_data_dtype().newbyteorder("=") == np.float32 and img.shape == (10242, 1, 1, T)
            b = np.squeeze(img.get_fdata())
            nan_rows = np.isnan(b).any(axis=1)
            assert np.all(np.isnan(b[nan_rows]))  # NaN in all trials or none
            n_nan[key] += int(nan_rows.sum())
            assert 0.3 < np.nanstd(b) < 10  # PSC scale, not x 300
            assert _mgh(folder / f"{h}.ncsnr.mgh").shape == (10242, 1, 1)
        assert n_nan[key] == len(card["nan_vertices"][key])
    assert 1 <= max(n_nan.values()) <= 2


def test_ncsnr_recovers_planted_snr(tree, card):
    label = tree / "nsddata/freesurfer/fsaverage/label"
    gen = np.concatenate([_mgh(label / f"{h}.nsdgeneral.mgz").ravel() for h in ("lh", "rh")])
    true, est, vtrue, vest = [], [], [], []
    for key in card["n_sessions"]:
        folder = tree / f"nsddata_betas/ppdata/{key}/fsaverage/{BETAS}"
        nc = np.concatenate([_mgh(folder / f"{h}.ncsnr.mgh").ravel() for h in ("lh", "rh")])
        a = synth.load_truth_array(tree, f"snr_fsaverage_{key}")
        keep = (gen > 0) & np.isfinite(nc)
        true.append(a[keep])
        est.append(nc[keep])
        vol = np.asarray(nib.load(tree / f"nsddata_betas/ppdata/{key}/func1pt8mm/{BETAS}/ncsnr.nii.gz").dataobj)
        va = synth.load_truth_array(tree, f"snr_func1pt8mm_{key}")
        assert vol.dtype == np.float32 and va.shape == vol.shape
        vtrue.append(va[va > 0])
        vest.append(vol[va > 0])
    assert np.corrcoef(np.concatenate(true), np.concatenate(est))[0, 1] > 0.8
    assert np.corrcoef(np.concatenate(vtrue), np.concatenate(vest))[0, 1] > 0.7
    assert abs(np.concatenate(est).mean() - np.concatenate(true).mean()) < 0.1


# --------------------------------------------------------------------------- stimuli


def test_img_brick_and_shared_pngs(tree, card, exp):
    N, size = card["sizes"]["n_images"], card["sizes"]["image_size"]
    with h5py.File(tree / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "r") as fh:
        ds = fh["imgBrick"]
        assert ds.shape == (N, size, size, 3) and ds.dtype == np.uint8
        assert ds.chunks == (1, size, size, 3)
        brick = ds[:]
    ids = (brick[:, 0, 0, 0].astype(int) << 16) | (brick[:, 0, 0, 1].astype(int) << 8) | brick[:, 0, 0, 2]
    assert np.array_equal(ids, np.arange(N))
    assert brick[:, 1:, 1:].std() > 20  # real pictures, not blank
    pngs = sorted((tree / "nsddata/stimuli/nsd/shared1000").glob("*.png"))
    assert len(pngs) == exp["sharedix"].size
    for i, p in enumerate(pngs, start=1):
        m = re.fullmatch(r"shared(\d{4})_nsd(\d{5})\.png", p.name)
        assert int(m.group(1)) == i and int(m.group(2)) == exp["sharedix"][i - 1]
    first = np.asarray(Image.open(pngs[0]))
    assert np.array_equal(first, brick[exp["sharedix"][0] - 1])


def _coco(tree, kind, split):
    return json.loads((tree / f"nsddata_stimuli/stimuli/nsd/annotations/{kind}_{split}.json").read_text())


def test_coco_jsons(tree, stim):
    seen = {}
    for split in ("train2017", "val2017"):
        caps = _coco(tree, "captions", split)
        inst = _coco(tree, "instances", split)
        assert {"info", "licenses", "images", "annotations"} <= set(caps)
        assert {"info", "licenses", "images", "annotations", "categories"} <= set(inst)
        ids = [im["id"] for im in caps["images"]]
        assert {"id", "file_name", "height", "width"} <= set(caps["images"][0])
        for i in ids:
            assert i not in seen
            seen[i] = split
        n_caps = pd.Series([a["image_id"] for a in caps["annotations"]]).value_counts()
        assert set(n_caps.index) == set(ids)
        assert n_caps.between(5, 6).all()
        for cat in inst["categories"]:
            assert REAL_COCO_IDS[cat["name"]] == cat["id"]
        cat_ids = {c["id"] for c in inst["categories"]}
        for a in inst["annotations"]:
            assert a["category_id"] in cat_ids and len(a["bbox"]) == 4 and a["iscrowd"] == 0
            assert a["image_id"] in seen and seen[a["image_id"]] == split
        assert {"id", "image_id", "caption"} <= set(caps["annotations"][0])
    for coco_id, split in zip(stim["cocoId"], stim["cocoSplit"]):
        assert seen[coco_id] == split
    all_caps = [a for s in ("train2017", "val2017") for a in _coco(tree, "captions", s)["annotations"]]
    counts = pd.Series([a["image_id"] for a in all_caps]).value_counts()
    assert (counts == 6).any() and (counts == 5).sum() > 0.8 * len(counts)
    assert len({a["id"] for a in all_caps}) == len(all_caps)


def test_training_pool(tree, stim, card):
    in_csv = set(stim["cocoId"])
    pool = {}
    for split in ("train2017", "val2017"):
        for im in _coco(tree, "captions", split)["images"]:
            if im["id"] not in in_csv:
                pool[im["id"]] = (split, im["file_name"])
    assert len(pool) == card["sizes"]["n_pool"]
    jpgs = {p.name for p in (tree / "coco").rglob("*.jpg")}
    assert len(jpgs) == len(pool)
    for coco_id, (split, name) in pool.items():
        assert name == f"{coco_id:012d}.jpg"
        assert (tree / "coco" / split / name).is_file()
    img = Image.open(tree / "coco" / split / name)
    assert img.format == "JPEG" and img.size == (card["sizes"]["image_size"],) * 2
    assert not {int(n[:-4]) for n in jpgs} & in_csv


def test_role_reversed_pairs(tree, card, stim):
    pairs = card["role_reversed_pairs"]
    assert pairs
    scenes = json.loads((tree / "sandbox_truth/scenes.json").read_text())["nsd"]
    captions = {}
    for split in ("train2017", "val2017"):
        for a in _coco(tree, "captions", split)["annotations"]:
            captions.setdefault(a["image_id"], []).append(a["caption"])
    with h5py.File(tree / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "r") as fh:
        brick = fh["imgBrick"]
        n_minimal = 0
        for a, b in pairs:
            ga, gb = scenes[a]["interaction"], scenes[b]["interaction"]
            cat = lambda g, i: scenes[g]["objects"][i]["category"]  # noqa: E731
            assert ga["action"] == gb["action"]
            assert cat(a, ga["agent"]) == cat(b, gb["patient"]) and cat(a, ga["patient"]) == cat(b, gb["agent"])
            assert cat(a, ga["agent"]) != cat(a, ga["patient"])
            assert not np.array_equal(brick[a][1:, 1:], brick[b][1:, 1:])
            ca, cb = captions[stim["cocoId"][a]], captions[stim["cocoId"][b]]
            for x, y in zip(ca, cb):
                if x != y and sorted(x.lower().split()) == sorted(y.lower().split()):
                    n_minimal += 1
    assert n_minimal >= len(pairs)
    shared = set((np.flatnonzero(stim["shared1000"])).tolist())
    assert any(a in shared and b in shared for a, b in pairs)


def test_truth_card_and_features(tree, card):
    N = card["sizes"]["n_images"]
    for key in ("seed", "preset", "generative_model", "roi_spaces", "snr_ranges", "categories", "actions",
                "scenes", "n_caption_templates", "role_reversed_pairs", "generation_seconds"):
        assert key in card
    assert card["roi_spaces"] == synth.ROI_SPACES  # the null world's mixtures
    assert "sentence" not in card["feature_spaces"] and not (tree / synth.TRUTH_DIR / "features_sentence.npy").exists()
    for space in ("lowlevel", "category", "interaction", "layout"):
        x = synth.load_truth_array(tree, f"features_{space}")
        assert x.shape == (N, card["feature_spaces"][space])
        assert np.allclose(x.std(axis=0)[x.std(axis=0) > 0], 1, atol=1e-3)
    a = synth.load_truth_array(tree, "snr_fsaverage_subj01")
    assert a.shape == (2 * 10242,) and (a == 0).mean() > 0.5 and a.max() > 0.8


def test_role_reversal_changes_interaction_features(tree, card):
    x = synth.load_truth_array(tree, "features_interaction")
    cat = synth.load_truth_array(tree, "features_category")
    for a, b in card["role_reversed_pairs"]:
        assert not np.allclose(x[a], x[b])
        assert np.allclose(cat[a], cat[b])


# --------------------------------------------------------------------------- determinism, atomicity


def _arrays(root):
    out = {"subjectim": loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")["subjectim"]}
    with h5py.File(root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "r") as fh:
        out["brick"] = fh["imgBrick"][:]
    out["vol"] = np.asarray(nib.load(root / f"nsddata_betas/ppdata/subj01/func1pt8mm/{BETAS}/betas_session02.nii.gz").dataobj)
    out["fs"] = _mgh(root / f"nsddata_betas/ppdata/subj02/fsaverage/{BETAS}/rh.betas_session01.mgh")
    out["caps"] = (root / "nsddata_stimuli/stimuli/nsd/annotations/captions_train2017.json").read_text()
    out["csv"] = (root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv").read_text()
    return out


def test_determinism_and_overwrite(tree, tmp_path):
    other = tmp_path / "again"
    synth.make_synthetic_nsd(other, "tiny", seed=0)
    a, b = _arrays(tree), _arrays(other)
    for key in a:
        assert np.array_equal(a[key], b[key], equal_nan=key == "fs") if key not in ("caps", "csv") else a[key] == b[key], key
    with pytest.raises(ValueError, match="not empty"):
        synth.make_synthetic_nsd(other, "tiny", seed=1)
    synth.make_synthetic_nsd(other, "tiny", seed=1, overwrite=True)
    c = _arrays(other)
    for key in a:
        same = np.array_equal(a[key], c[key], equal_nan=True) if key not in ("caps", "csv") else a[key] == c[key]
        assert not same, key
    assert synth.load_truth(other)["seed"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["again"]  # no partial or old trees left


def test_failure_leaves_no_root(tmp_path, monkeypatch):
    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(_generate, "_write_stim_info", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        synth.make_synthetic_nsd(tmp_path / "nsd", "tiny", seed=0)
    assert list(tmp_path.iterdir()) == []


def test_refuses_nonempty_root_and_bad_preset(tmp_path):
    root = tmp_path / "nsd"
    root.mkdir()
    (root / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match="not empty"):
        synth.main([str(root), "--preset", "tiny"])
    assert (root / "keep.txt").read_text() == "x"
    with pytest.raises(ValueError, match="unknown preset"):
        synth.make_synthetic_nsd(tmp_path / "other", "huge")


# --------------------------------------------------------------------------- unchanged default/tiny
# Digests of the tiny tree (seed 0) written by the generator before the quirk options
# existed (main @ 8fa7830): every file but the .mat (its header holds a timestamp) and
# card.json (generation_seconds), plus the .mat's arrays and the card without its time.
# They pin the libraries' encoders too (PIL JPEG, zlib, HDF5): after a library upgrade,
# regenerate them with the old generator before trusting a failure here.
# The transform files (``nsddata/ppdata/subjXX/transforms/``, 8 per subject) were added later
# (issue 13, the paper's searchlight) from their own random stream: every older file is
# unchanged (TINY_FILES_SHA256 leaves them out) and they have their own digest.
# Tuning shared across subjects (issue 16) changes the betas and ncsnr files only: the tree
# written with ``shared_tuning=0`` still has these digests; the card was re-pinned then
# (TINY_CARD_SHA256: format 3, its generative_model text, shared_tuning, sentence_space).
TINY_FILES_SHA256 = "14c700afc9fb0b32f4076cb4f5b0e5a81069835d5963395033d84846e353a190"
TINY_N_FILES = 203
TINY_TRANSFORMS_SHA256 = "e44d97366ead2571037cf5d91cd3f601396f832edcfdc7c2686f525cfc8ca325"
TINY_N_TRANSFORMS = 24
TINY_CARD_SHA256 = "032318a96cf2f0ad7cfce13dfa9e64da34d600f10812e35457dc5ea387f8345f"
TINY_MAT_SHA256 = "f8d1765410d41c8adb6311bdef681340002d5114efb2dfce41049eb40ad5d5ec"


def _sha(data):
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def unshared(tmp_path_factory):
    """The tiny tree (seed 0) without shared tuning: the tree written before the share existed."""
    root = tmp_path_factory.mktemp("unshared") / "nsd"
    return synth.make_synthetic_nsd(root, "tiny", seed=0, overrides={"shared_tuning": 0.0})


def test_tiny_tree_is_byte_identical_to_before_the_options(tree, unshared):
    skip = {"nsddata/experiments/nsd/nsd_expdesign.mat", "sandbox_truth/card.json"}
    every = digests(unshared, skip)
    files = {k: v for k, v in every.items() if "/transforms/" not in k}
    transforms = {k: v for k, v in every.items() if "/transforms/" in k}
    assert len(files) == TINY_N_FILES and len(transforms) == TINY_N_TRANSFORMS
    assert _sha("".join(f"{k} {v}\n" for k, v in sorted(files.items())).encode()) == TINY_FILES_SHA256
    assert _sha("".join(f"{k} {v}\n" for k, v in sorted(transforms.items())).encode()) == TINY_TRANSFORMS_SHA256
    assert synth.load_truth(unshared)["shared_tuning"] == 0.0
    # the default share changes every betas and ncsnr file, and nothing else
    tuned = digests(tree, skip)
    assert tuned.keys() == every.keys()
    changed = {k for k in every if every[k] != tuned[k]}
    expected = {k for k in every if TUNED.fullmatch(k)}
    # per subject with n sessions: 2n + 2 fsaverage files (lh, rh) and n + 1 volume files
    assert len(expected) == sum(3 * n + 3 for n in synth.load_truth(tree)["n_sessions"].values())
    assert changed == expected
    card = synth.load_truth(tree)
    card.pop("generation_seconds")
    assert card.pop("format") == synth.SANDBOX_FORMAT
    assert "quirks" not in card
    assert card["shared_tuning"] == synth.SHARED_TUNING and card["sentence_space"] is None
    assert _sha(json.dumps(card, sort_keys=True).encode()) == TINY_CARD_SHA256
    m = loadmat(tree / "nsddata/experiments/nsd/nsd_expdesign.mat")
    assert _sha(b"".join(np.ascontiguousarray(m[k]).tobytes()
                         for k in ("masterordering", "subjectim", "sharedix"))) == TINY_MAT_SHA256


# --------------------------------------------------------------------------- shared tuning
def test_shared_tuning_raises_inter_subject_agreement(tree, unshared):
    """With the default share the subjects' betas agree vertex by vertex on the shared images,
    in every streams ROI; without it they do not (nor, with it, outside nsdgeneral)."""
    labels, names = fsaverage_streams(tree)
    shared, alone = inter_subject_agreement(tree), inter_subject_agreement(unshared)
    for roi, k in names.items():
        if k == 0:
            continue
        assert np.nanmean(shared[labels == k]) > 0.15, roi
        assert np.nanmean(shared[labels == k]) - np.nanmean(alone[labels == k]) > 0.1, roi
    # with 8 shared images a small ROI's mean r still strays by a few hundredths: pool them
    assert abs(np.nanmean(alone[labels > 0])) < 0.03
    nsdgeneral = np.concatenate([_mgh(tree / f"nsddata/freesurfer/fsaverage/label/{h}.nsdgeneral.mgz").ravel()
                                 for h in ("lh", "rh")])
    assert abs(np.nanmean(shared[nsdgeneral == 0])) < 0.03  # noise only: nothing shared


# --------------------------------------------------------------------------- quirks on the tiny preset
QUIRKS = dict(data_sessions={1: 3, 2: 2}, coco_native_sizes=True, missing_sessions={1: [3]},
              no_instance_images=5, caption_variety=True)


@pytest.fixture(scope="module")
def quirky(tmp_path_factory):
    """tiny with every quirk on, different session counts and subject 1's last session missing."""
    root = tmp_path_factory.mktemp("quirky") / "nsd"
    return synth.make_synthetic_nsd(root, "tiny", seed=0, overrides=QUIRKS)


def test_quirks_are_recorded_in_the_card(quirky):
    q = synth.load_truth(quirky)["quirks"]
    assert q["coco_native_sizes"] and q["caption_variety"] and q["no_instance_images"] == 5
    assert q["missing_sessions"] == {"subj01": [3]}
    assert len(q["no_instance_nsd_ids"]) == 5 and len(q["no_instance_pool_coco_ids"]) >= 1


def test_coco_native_sizes(quirky, tree):
    sizes = set()
    for split in ("train2017", "val2017"):
        meta = {im["id"]: (im["width"], im["height"]) for im in _coco(quirky, "instances", split)["images"]}
        assert meta == {im["id"]: (im["width"], im["height"]) for im in _coco(quirky, "captions", split)["images"]}
        for p in sorted((quirky / "coco" / split).glob("*.jpg")):
            with Image.open(p) as im:
                assert im.size == meta[int(p.stem)], p.name  # JSON matches the JPEG
                sizes.add(im.size)
        sizes |= set(meta.values())  # NSD images' COCO sizes too
        # boxes lie inside their image
        for a in _coco(quirky, "instances", split)["annotations"]:
            x, y, w, h = a["bbox"]
            W, H = meta[a["image_id"]]
            assert 0 <= x and 0 <= y and x + w <= W + 0.01 and y + h <= H + 0.01
    assert len(sizes) >= 5 and sizes <= set(_generate.COCO_SIZES)
    assert any(w != h for w, h in sizes)
    with h5py.File(quirky / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "r") as fh:
        assert fh["imgBrick"].shape[1:] == (32, 32, 3)  # the NSD brick stays square


def test_native_sizes_keep_the_object_layout(quirky, tree):
    """Same seed: each pool image's boxes, in image fractions, are the square tree's."""
    def boxes(root):
        out = {}
        for split in ("train2017", "val2017"):
            data = _coco(root, "instances", split)
            size = {im["id"]: (im["width"], im["height"]) for im in data["images"]}
            for a in data["annotations"]:
                W, H = size[a["image_id"]]
                x, y, w, h = a["bbox"]
                out.setdefault(a["image_id"], []).append((a["category_id"], x / W, y / H, w / W, h / H))
        return out

    a, b = boxes(tree), boxes(quirky)
    common = [k for k in b if k >= 500000]
    assert len(common) > 20
    for k in common:
        assert len(a[k]) == len(b[k])
        for u, v in zip(sorted(a[k]), sorted(b[k])):
            assert u[0] == v[0] and np.allclose(u[1:], v[1:], atol=0.02), k


def test_missing_sessions(quirky):
    from brainllm_utils.nsd import NSD

    for space, names in (("func1pt8mm", ["betas_session{:02d}.nii.gz"]),
                         ("fsaverage", ["lh.betas_session{:02d}.mgh", "rh.betas_session{:02d}.mgh"])):
        folder = quirky / f"nsddata_betas/ppdata/subj01/{space}/{BETAS}"
        for n in (1, 2):
            assert all((folder / name.format(n)).is_file() for name in names)
        assert not any((folder / name.format(3)).exists() for name in names)
        assert (folder / ("ncsnr.nii.gz" if space == "func1pt8mm" else "lh.ncsnr.mgh")).is_file()
    resp = pd.read_csv(quirky / "nsddata/ppdata/subj01/behav/responses.tsv", sep="\t")
    assert sorted(resp["SESSION"].unique()) == [1, 2, 3]  # the design lists the missing session
    nsd = NSD(quirky)
    assert nsd.subjects == ["subj01", "subj02"]
    assert nsd.sessions_on_disk(1, "fsaverage") == 2 and nsd.sessions_on_disk(1, "func1pt8mm") == 2
    assert nsd.n_sessions(1) == 3 and nsd.n_sessions(2) == 2  # different counts per subject
    assert nsd.trials_per_session() == 60
    with pytest.warns(UserWarning, match="3"):
        assert nsd.sessions(1, "fsaverage") == [1, 2]
    assert nsd.sessions(2, "func1pt8mm") == [1, 2]


def test_a_hole_in_the_sessions(tmp_path):
    """A middle session missing: the reader sees 1 and 3."""
    from brainllm_utils.nsd import NSD

    root = synth.make_synthetic_nsd(tmp_path / "hole", "tiny", seed=0,
                                    overrides={"data_sessions": {1: 3}, "missing_sessions": {1: [2]}})
    folder = root / f"nsddata_betas/ppdata/subj01/func1pt8mm/{BETAS}"
    assert sorted(p.name for p in folder.glob("betas_session*")) == ["betas_session01.nii.gz",
                                                                      "betas_session03.nii.gz"]
    with pytest.warns(UserWarning):
        assert NSD(root).sessions(1, "func1pt8mm") == [1, 3]


def test_no_instance_images(quirky, stim):
    card = synth.load_truth(quirky)
    none_nsd = set(card["quirks"]["no_instance_nsd_ids"])
    none_coco = {int(stim.loc[i, "cocoId"]) for i in none_nsd} | set(card["quirks"]["no_instance_pool_coco_ids"])
    with_inst, caps, listed = set(), set(), set()
    for split in ("train2017", "val2017"):
        with_inst |= {a["image_id"] for a in _coco(quirky, "instances", split)["annotations"]}
        caps |= {a["image_id"] for a in _coco(quirky, "captions", split)["annotations"]}
        listed |= {im["id"] for im in _coco(quirky, "instances", split)["images"]}
    assert none_coco <= listed  # the image is in the instances file (as in COCO) ...
    assert not none_coco & with_inst  # ... without any instance annotation
    assert len(with_inst) > 0.9 * len(listed)
    assert none_coco <= caps  # but captions, as every COCO image
    from brainllm_utils.nsd import NSD

    nsd = NSD(quirky)
    i = sorted(none_nsd)[0]
    assert nsd.captions([i])[0]


def test_caption_variety(quirky, tree):
    caps = [a["caption"] for split in ("train2017", "val2017")
            for a in _coco(quirky, "captions", split)["annotations"]]
    plain = [a["caption"] for split in ("train2017", "val2017")
             for a in _coco(tree, "captions", split)["annotations"]]
    assert len(caps) == len(plain)
    assert all(c.isascii() and c.endswith(".") and c == c.strip() for c in plain)
    assert sum(not c.isascii() for c in caps) > 0.05 * len(caps)
    assert any(c[0].islower() for c in caps) and any(c != c.rstrip() for c in caps)
    assert any(c.endswith("\n") for c in caps) and any(not c.rstrip().endswith(".") for c in caps)
    assert any(ch in "".join(caps) for ch in "éïç—“”")
    # the captions' words are the plain captions' words (variety adds an ending at most)
    for c, p in zip(caps, plain):
        assert c.strip().lower().replace("  ", " ").startswith(p[:-1].lower())
    # and it round-trips through the JSON as real UTF-8
    raw = (quirky / "nsddata_stimuli/stimuli/nsd/annotations/captions_train2017.json").read_bytes()
    assert "é".encode() in raw or "\\u00e9".encode() in raw


def test_vary_caption_is_a_function_of_its_uniforms():
    from brainllm_utils.synth import _scenes

    u = np.linspace(0.01, 0.99, _scenes.VARIETY_RANDOMS)
    assert _scenes.vary_caption("A dog on a beach.", u) == _scenes.vary_caption("A dog on a beach.", u)
    assert _scenes.vary_caption("A dog on a beach.", np.full(8, 0.5)) == "A dog on a beach."
    with pytest.raises(ValueError, match="shape"):
        _scenes.vary_caption("x.", [0.5])


def test_one_subject_root(tmp_path):
    from brainllm_utils.nsd import NSD

    root = synth.make_synthetic_nsd(tmp_path / "one", "tiny", seed=0, overrides={"data_sessions": {1: 3}})
    nsd = NSD(root)
    assert nsd.subjects == ["subj01"]
    assert nsd.sessions_on_disk(1, "fsaverage") == 3 and nsd.n_sessions(1) == 3
    assert synth.load_truth(root)["subjects_with_data"] == [1]
    assert not (root / "nsddata/ppdata/subj02").exists()


def test_bad_options_are_refused(tmp_path):
    bad = [({"missing_sessions": {4: [1]}}, "no data"), ({"missing_sessions": {1: [1, 2, 3]}}, "at least one"),
           ({"missing_sessions": {1: [7]}}, "1..3"), ({"no_instance_images": -1}, "no_instance_images"),
           ({"coco_native_sizes": 1}, "True or False"), ({"mesh": "fsaverage"}, "stream=True"),
           ({"data_sessions": {9: 1}}, "subject in 1..8"), ({"bogus": 1}, "unknown overrides"),
           ({"data_sessions": {5: 2}}, "no volume grid"), ({"gzip_level": 10}, "gzip_level")]
    for overrides, match in bad:
        with pytest.raises(ValueError, match=match):
            synth.make_synthetic_nsd(tmp_path / "x", "tiny", overrides=overrides)
    with pytest.raises(ValueError, match="scale"):
        synth.make_synthetic_nsd(tmp_path / "x", "nsdlike_small", overrides={"scale": 2.0})
    assert not (tmp_path / "x").exists()


def test_cli_flags(tmp_path):
    root = tmp_path / "cli"
    synth.main([str(root), "--preset", "tiny", "--data-sessions", "1:3,2:2", "--missing-sessions", "1:2",
                "--coco-native-sizes", "--no-instance-images", "2", "--caption-variety", "--no-progress",
                "--shared-tuning", "0.25"])
    assert synth.load_truth(root)["shared_tuning"] == 0.25
    q = synth.load_truth(root)["quirks"]
    assert q["missing_sessions"] == {"subj01": [2]} and q["no_instance_images"] == 2
    assert synth.load_truth(root)["n_sessions"] == {"subj01": 3, "subj02": 2}
    assert not (root / f"nsddata_betas/ppdata/subj01/fsaverage/{BETAS}/lh.betas_session02.mgh").exists()


# --------------------------------------------------------------------------- streamed betas
def test_streamed_betas_match_their_ncsnr(tmp_path):
    """stream=True on a tiny tree: files in NSD's formats, ncsnr equal to the one recomputed
    from the files, planted SNR recovered."""
    root = synth.make_synthetic_nsd(tmp_path / "s", "tiny", seed=3, overrides={"stream": True, "image_size": 48})
    card = synth.load_truth(root)
    with h5py.File(root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "r") as fh:
        brick = fh["imgBrick"]  # any side with stream=True (NSD's is 425); ids stamped
        assert brick.shape == (card["sizes"]["n_images"], 48, 48, 3)
        px = brick[-1, 0, 0].astype(int)
        assert (px[0] << 16) + (px[1] << 8) + px[2] == card["sizes"]["n_images"] - 1
    assert synth.load_truth_array(root, "features_lowlevel").shape[1] == 44
    T = card["sizes"]["trials_per_session"]
    mo = np.asarray(loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")["masterordering"]).ravel().astype(int)
    for s in (1, 2):
        n = card["n_sessions"][f"subj{s:02d}"]
        q = [mo[(k - 1) * T: k * T] for k in range(1, n + 1)]
        folder = root / f"nsddata_betas/ppdata/subj{s:02d}/fsaverage/{BETAS}"
        lh = [_mgh(folder / f"lh.betas_session{k:02d}.mgh") for k in range(1, n + 1)]
        assert lh[0].dtype.newbyteorder("=") == np.float32 and lh[0].shape[1:] == (1, 1, T)
        ncsnr = synth.compute_ncsnr([b.reshape(b.shape[0], T).T for b in lh], q)
        assert np.allclose(ncsnr, _mgh(folder / "lh.ncsnr.mgh").ravel(), rtol=1e-3, atol=1e-4, equal_nan=True)
        vol = root / f"nsddata_betas/ppdata/subj{s:02d}/func1pt8mm/{BETAS}"
        imgs = [nib.load(vol / f"betas_session{k:02d}.nii.gz") for k in range(1, n + 1)]
        assert imgs[0].get_data_dtype() == np.int16
        data = [np.asarray(im.dataobj).reshape(-1, T).T.astype(np.float32) / 300 for im in imgs]
        ref = np.nan_to_num(synth.compute_ncsnr(data, q), nan=0.0)
        got = np.asarray(nib.load(vol / "ncsnr.nii.gz").dataobj).ravel()
        assert np.allclose(ref, got, rtol=1e-3, atol=1e-3)
        planted = synth.load_truth_array(root, f"snr_func1pt8mm_subj{s:02d}").ravel()
        signal = planted > 0.6
        assert np.corrcoef(planted[signal], got[signal])[0, 1] > 0.3
    # the streamed writers share tuning across subjects too
    labels, _ = fsaverage_streams(root)
    assert np.nanmean(inter_subject_agreement(root)[labels > 0]) > 0.15
    # zero outside the brain mask, as NSD's
    mask = np.asarray(nib.load(root / f"nsddata/ppdata/subj{s:02d}/func1pt8mm/brainmask.nii.gz").dataobj) > 0
    assert np.all(np.asarray(imgs[0].dataobj)[~mask] == 0)


def test_stream_writers_check_their_trial_count(tmp_path):
    from brainllm_utils.synth._stream import MghTrialWriter, NiftiTrialWriter

    with pytest.raises(ValueError, match="2 trials written, header says 3"):
        with MghTrialWriter(tmp_path / "a.mgh", 4, 3) as w:
            w.write(np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="more than 3"):
        with NiftiTrialWriter(tmp_path / "a.nii.gz", (2, 2, 2), 3, np.eye(4)) as w:
            w.write(np.zeros((4, 8), np.int16))
    x = np.arange(2 * 3 * 4 * 5, dtype=np.int16).reshape(5, 24)
    with NiftiTrialWriter(tmp_path / "b.nii.gz", (2, 3, 4), 5, np.eye(4)) as w:
        w.write(x[:2])
        w.write(x[2:])
    got = np.asarray(nib.load(tmp_path / "b.nii.gz").dataobj)
    assert np.array_equal(got, x.T.reshape(2, 3, 4, 5))


# --------------------------------------------------------------------------- the full-resolution mesh
def test_icosphere():
    from brainllm_utils.synth import _mesh

    v, f = _mesh.icosphere(3)
    assert v.shape == (642, 3) and f.shape == (1280, 3)
    assert np.allclose(np.linalg.norm(v, axis=1), 1)
    edges = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    assert np.unique(edges, axis=0).shape[0] == 1920  # closed: each edge in exactly two faces
    assert len(v) - 1920 + len(f) == 2  # Euler characteristic of a sphere
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    assert np.all(np.einsum("ij,ij->i", normals, v[f].mean(axis=1)) > 0)  # outward
    assert np.allclose(_mesh.icosphere(5)[0], _mesh.icosphere(3 + 3)[0][:10242])  # nested
    with pytest.raises(ValueError, match="order"):
        _mesh.icosphere(9)


@pytest.fixture(scope="module")
def nsdlike(tmp_path_factory):
    """nsdlike_small with one subject (2 sessions of 750 trials, the last missing on disk)."""
    root = tmp_path_factory.mktemp("nsdlike") / "nsd"
    return synth.make_synthetic_nsd(root, "nsdlike_small", seed=0, overrides={"data_sessions": {1: 2}})


def test_nsdlike_small(nsdlike):
    from brainllm_utils.chapters.ch02_rsa import fsaverage_mesh
    from brainllm_utils.nsd import NSD

    card = synth.load_truth(nsdlike)
    assert card["sizes"]["fsaverage_vertices_per_hemi"] == 163842
    assert card["quirks"]["missing_sessions"] == {"subj01": [2]}
    fs = nsdlike / f"nsddata_betas/ppdata/subj01/fsaverage/{BETAS}"
    for h in ("lh", "rh"):
        img = nib.load(fs / f"{h}.betas_session01.mgh")
        assert img.shape == (163842, 1, 1, 750) and img.get_data_dtype().newbyteorder("=") == np.float32
        assert not (fs / f"{h}.betas_session02.mgh").exists()
        assert nib.load(fs / f"{h}.ncsnr.mgh").shape[0] == 163842
        for roi in ("streams", "nsdgeneral"):
            lab = _mgh(nsdlike / f"nsddata/freesurfer/fsaverage/label/{h}.{roi}.mgz").ravel()
            assert lab.size == 163842 and 0.01 < (lab > 0).mean() < 0.5
        for surf in ("pial", "white", "inflated", "sphere"):
            coords, faces = nib.freesurfer.read_geometry(nsdlike / f"nsddata/freesurfer/fsaverage/surf/{h}.{surf}")
            assert coords.shape == (163842, 3) and faces.shape == (327680, 3)
    vol = nib.load(nsdlike / f"nsddata_betas/ppdata/subj01/func1pt8mm/{BETAS}/betas_session01.nii.gz")
    shape = (81, 104, 83)  # subj01's NSD grid
    assert vol.shape == (*shape, 750) and vol.get_data_dtype() == np.int16
    expected = np.diag([1.8, 1.8, 1.8, 1.0])
    expected[:3, 3] = -(((1 + np.array(shape)) / 2) - 1) * 1.8  # nsdcode's writer
    assert np.allclose(vol.affine, expected)
    assert nib.load(nsdlike / "nsddata/ppdata/subj01/func1pt8mm/brainmask.nii.gz").shape == shape
    resp = pd.read_csv(nsdlike / "nsddata/ppdata/subj01/behav/responses.tsv", sep="\t")
    assert len(resp) == 1500 and resp.groupby("SESSION").size().tolist() == [750, 750]
    nsd = NSD(nsdlike)
    assert nsd.subjects == ["subj01"] and nsd.n_vertices() == (163842, 163842)
    assert nsd.trials_per_session() == 750 and nsd.sessions_on_disk(1, "fsaverage") == 1
    coords, faces = fsaverage_mesh(nsd, "left")
    assert coords.shape == (163842, 3)
    for split in ("train2017", "val2017"):
        sizes = {(im["width"], im["height"]) for im in _coco(nsdlike, "captions", split)["images"]}
        assert len(sizes) > 3
    assert any(not a["caption"].isascii() for a in _coco(nsdlike, "captions", "train2017")["annotations"])


def test_is_current_follows_the_card_format(tree, tmp_path):
    """A freshly generated tree is current; an older card (no or another format) or no card is not,
    so ``make sandbox`` regenerates it instead of running the book on a tree lacking files."""
    assert synth.load_truth(tree)["format"] == synth.SANDBOX_FORMAT
    assert synth.is_current(tree)
    assert not synth.is_current(tmp_path)  # no sandbox at all
    old = json.loads((tree / synth.TRUTH_DIR / "card.json").read_text())
    for stale in ({k: v for k, v in old.items() if k != "format"}, {**old, "format": synth.SANDBOX_FORMAT - 1}):
        (tmp_path / synth.TRUTH_DIR).mkdir(exist_ok=True)
        (tmp_path / synth.TRUTH_DIR / "card.json").write_text(json.dumps(stale))
        assert synth.is_sandbox(tmp_path) and not synth.is_current(tmp_path)
