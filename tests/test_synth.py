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
    assert card["roi_spaces"]["early"] == {"lowlevel": 1.0}
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
