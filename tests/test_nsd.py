"""The NSD reader against independent plain-numpy computations from the raw files."""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import scipy.io
import scipy.stats

from brainllm_utils.nsd import NSD, NSDFileError, noise_ceiling_from_ncsnr

BETAS = "nsddata_betas/ppdata/{s}/{space}/betas_fithrf_GLMdenoise_RR"


def _replace(path: Path, data: bytes) -> None:
    path.unlink()  # break the hard link first: never damage the shared fixture
    path.write_bytes(data)


# ---------------------------------------------------------------- raw references
def raw_design(root):
    mat = scipy.io.loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    return (np.asarray(mat["masterordering"]).ravel().astype(int),
            np.asarray(mat["subjectim"]).astype(int),
            np.asarray(mat["sharedix"]).ravel().astype(int))


def raw_n_sessions(root, subject):
    d = root / BETAS.format(s=subject, space="fsaverage")
    return len(list(d.glob("lh.betas_session*.mgh")))


def raw_trial_ids(root, subject):
    mo, subjectim, _ = raw_design(root)
    s = int(subject[4:])
    T = nib.load(root / BETAS.format(s=subject, space="fsaverage") / "lh.betas_session01.mgh").shape[-1]
    n = raw_n_sessions(root, subject) * T
    return subjectim[s - 1, mo[:n] - 1] - 1, T


def raw_average(trials: list[np.ndarray], ids: np.ndarray, min_repeats=3):
    """Per-session scipy z-score, concatenate, nanmean per image (the original pipeline)."""
    z = []
    for B in trials:
        with np.errstate(invalid="ignore", divide="ignore"):
            zs = scipy.stats.zscore(B.astype(np.float64), axis=0)
        zs[:, ~np.isfinite(zs).all(axis=0)] = np.nan
        z.append(zs)
    Z = np.concatenate(z)
    uniq, counts = np.unique(ids, return_counts=True)
    keep = uniq[counts >= min_repeats]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean of all-NaN columns
        out = np.stack([np.nanmean(Z[ids == i], axis=0) for i in keep])
    return out, keep


# ---------------------------------------------------------------- design
def test_subjects_and_sessions(tiny_root):
    nsd = NSD(tiny_root)
    assert nsd.subjects == sorted(p.name for p in (tiny_root / "nsddata_betas/ppdata").iterdir())
    for s in nsd.subjects:
        assert nsd.n_sessions(s) == raw_n_sessions(tiny_root, s)
    sessions = [nsd.n_sessions(s) for s in nsd.subjects]
    assert min(sessions) < max(sessions), "the sandbox must include a subject with fewer sessions"


def test_trial_images_match_raw_design_and_responses(tiny_root):
    nsd = NSD(tiny_root)
    for s in nsd.subjects:
        expected, T = raw_trial_ids(tiny_root, s)
        got = nsd.trial_images(s)
        np.testing.assert_array_equal(got, expected)
        resp = pd.read_csv(tiny_root / f"nsddata/ppdata/{s}/behav/responses.tsv", sep="\t")
        np.testing.assert_array_equal(got, resp["73KID"].to_numpy() - 1)
        table = nsd.trial_table(s)
        assert (table["repeat"].max() == 2) and table["session"].max() == raw_n_sessions(tiny_root, s)
        # the k-th showing of an image has repeat k-1
        first = table.groupby("nsdId")["t"].min()
        np.testing.assert_array_equal(table.loc[table["repeat"] == 0].set_index("nsdId")["t"].sort_index(),
                                      first.sort_index())


def test_shared_test_images_are_seen_three_times_by_everyone(tiny_root):
    nsd = NSD(tiny_root)
    _, _, sharedix = raw_design(tiny_root)
    got = nsd.shared_test_images()
    assert np.all(np.diff(got) > 0)
    assert set(got) <= set(sharedix - 1)
    expected = set(sharedix - 1)
    for s in nsd.subjects:
        ids, _ = raw_trial_ids(tiny_root, s)
        uniq, counts = np.unique(ids, return_counts=True)
        expected &= set(uniq[counts == 3])
    assert set(got) == expected
    assert 0 < len(got) < len(sharedix), "strict analogue of NSD's 515: some shared images drop out"


# ---------------------------------------------------------------- betas
@pytest.mark.parametrize("subject", ["subj01", "subj03"])
def test_fsaverage_betas_match_plain_numpy(tiny_root, cache_dir, subject):
    nsd = NSD(tiny_root)
    ids, T = raw_trial_ids(tiny_root, subject)
    d = tiny_root / BETAS.format(s=subject, space="fsaverage")
    sessions = []
    for n in range(1, raw_n_sessions(tiny_root, subject) + 1):
        lh = np.squeeze(nib.load(d / f"lh.betas_session{n:02d}.mgh").get_fdata())
        rh = np.squeeze(nib.load(d / f"rh.betas_session{n:02d}.mgh").get_fdata())
        sessions.append(np.concatenate([lh, rh]).T)
    expected, keep = raw_average(sessions, ids)
    Y, got_ids = nsd.betas(subject, space="fsaverage", progress=False)
    np.testing.assert_array_equal(got_ids, keep)
    assert Y.dtype == np.float32 and Y.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(Y), np.isnan(expected))
    np.testing.assert_allclose(Y, expected, atol=2e-5, equal_nan=True)


def test_volume_betas_match_plain_numpy(tiny_root, cache_dir):
    nsd = NSD(tiny_root)
    subject = "subj02"
    ids, T = raw_trial_ids(tiny_root, subject)
    mask = nib.load(tiny_root / f"nsddata/ppdata/{subject}/func1pt8mm/brainmask.nii.gz").get_fdata() > 0
    d = tiny_root / BETAS.format(s=subject, space="func1pt8mm")
    sessions = []
    for n in range(1, raw_n_sessions(tiny_root, subject) + 1):
        img = nib.load(d / f"betas_session{n:02d}.nii.gz")
        assert img.get_data_dtype() == np.int16
        data = np.asarray(img.dataobj).astype(np.float64) / 300.0
        sessions.append(data[mask].T)  # boolean indexing = C order of the grid
    expected, keep = raw_average(sessions, ids)
    Y, got_ids = nsd.betas(subject, space="func1pt8mm", progress=False)
    np.testing.assert_array_equal(got_ids, keep)
    np.testing.assert_allclose(Y, expected, atol=2e-5, equal_nan=True)
    # a voxel that is all-zero in one session is averaged over its other sessions only
    assert np.isfinite(Y).mean() > 0.9


def test_roi_restricted_betas_are_the_masked_columns(tiny_root, cache_dir):
    nsd = NSD(tiny_root)
    full, ids = nsd.betas("subj01", progress=False)
    roi = nsd.roi_mask("subj01", "streams", "ventral")
    sub, ids2 = nsd.betas("subj01", roi=("streams", "ventral"), progress=False)
    np.testing.assert_array_equal(ids, ids2)
    np.testing.assert_allclose(sub, np.asarray(full)[:, roi], atol=1e-6, equal_nan=True)
    sub3, _ = nsd.betas("subj01", roi=roi, progress=False)
    np.testing.assert_array_equal(np.asarray(sub3), np.asarray(sub))
    back = nsd.to_space(np.asarray(sub)[0], "subj01", roi=("streams", "ventral"))
    assert back.shape == roi.shape and np.isnan(back[~roi]).all()


def test_min_repeats_and_zscore_options(tiny_root, cache_dir):
    nsd = NSD(tiny_root)
    Y1, ids1 = nsd.betas("subj03", min_repeats=1, progress=False)
    Y3, ids3 = nsd.betas("subj03", min_repeats=3, progress=False)
    assert set(ids3) < set(ids1)
    raw, _ = nsd.betas("subj03", zscore=False, progress=False)
    assert not np.allclose(np.nanstd(raw, axis=0), np.nanstd(Y3, axis=0))


def test_cache_is_reused_and_keyed_by_arguments(tiny_root, cache_dir, monkeypatch):
    nsd = NSD(tiny_root)
    Y, ids = nsd.betas("subj01", roi=("streams", "early"), progress=False)
    assert isinstance(Y, np.memmap)
    files = sorted((cache_dir / "betas").glob("*.npy"))
    assert len(files) == 2  # averages + ids
    with monkeypatch.context() as m:
        m.setattr(NSD, "_read_session", lambda *a, **k: pytest.fail("cache not used"))
        Y2, _ = nsd.betas("subj01", roi=("streams", "early"), progress=False)
    np.testing.assert_array_equal(np.asarray(Y2), np.asarray(Y))
    nsd.betas("subj01", roi=("streams", "early"), min_repeats=2, progress=False)
    assert len(sorted((cache_dir / "betas").glob("*.npy"))) == 4


def test_interrupted_cache_write_leaves_nothing(tiny_root, cache_dir, monkeypatch):
    nsd = NSD(tiny_root)

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(NSD, "_average_sessions", boom)
        with pytest.raises(KeyboardInterrupt):
            nsd.betas("subj01", progress=False)
    assert not list((cache_dir / "betas").glob("*")), "a failed write must leave nothing"
    Y, _ = nsd.betas("subj01", progress=False)
    assert np.isfinite(np.asarray(Y)).any()


def test_corrupt_cache_is_recomputed(tiny_root, cache_dir):
    nsd = NSD(tiny_root)
    Y, _ = nsd.betas("subj01", roi=("streams", "early"), progress=False)
    expected = np.array(Y)
    (path,) = [p for p in (cache_dir / "betas").glob("*.npy") if not p.name.endswith("_ids.npy")]
    del Y
    path.write_bytes(b"garbage")
    with pytest.warns(UserWarning, match="corrupt cache entry"):  # the one cache's policy
        Y2, _ = nsd.betas("subj01", roi=("streams", "early"), progress=False)
    np.testing.assert_array_equal(np.asarray(Y2), expected)


def test_uncached_equals_cached(tiny_root, cache_dir):
    nsd = NSD(tiny_root)
    a, _ = nsd.betas("subj02", roi=("nsdgeneral", None), cache=False, progress=False)
    assert not (cache_dir / "betas").exists() or not list((cache_dir / "betas").glob("*"))
    b, _ = nsd.betas("subj02", roi=("nsdgeneral", None), progress=False)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_nan_vertices_stay_nan(tiny_root, cache_dir):
    nsd = NSD(tiny_root)
    found = False
    for s in nsd.subjects:
        lh = np.squeeze(nib.load(tiny_root / BETAS.format(s=s, space="fsaverage") / "lh.betas_session01.mgh").get_fdata())
        rh = np.squeeze(nib.load(tiny_root / BETAS.format(s=s, space="fsaverage") / "rh.betas_session01.mgh").get_fdata())
        nan_cols = np.flatnonzero(np.isnan(np.concatenate([lh, rh])).all(axis=1))
        if nan_cols.size:
            found = True
            Y, _ = nsd.betas(s, progress=False)
            assert np.isnan(np.asarray(Y)[:, nan_cols]).all()
            assert np.isfinite(np.asarray(Y)[:, np.setdiff1d(np.arange(Y.shape[1]), nan_cols)]).mean() > 0.99
    assert found, "the sandbox must contain NaN vertices"


# ---------------------------------------------------------------- ROIs and ncsnr
def test_roi_masks_match_raw_files(tiny_root):
    nsd = NSD(tiny_root)
    ctab = pd.read_csv(tiny_root / "nsddata/freesurfer/fsaverage/label/streams.mgz.ctab",
                       sep=" ", header=None, index_col=0)[1].to_dict()
    raw = np.concatenate([
        np.rint(np.squeeze(nib.load(tiny_root / f"nsddata/freesurfer/fsaverage/label/{h}.streams.mgz").get_fdata()))
        for h in ("lh", "rh")])
    for code, name in ctab.items():
        if code > 0:
            np.testing.assert_array_equal(nsd.roi_mask("subj01", "streams", name), raw == code)
    np.testing.assert_array_equal(nsd.roi_mask("subj01", "streams"), raw > 0)
    both = nsd.roi_mask("subj01", "streams", ["early", "ventral"])
    assert both.sum() == (raw == 1).sum() + (raw == 5).sum()
    vol = np.rint(nib.load(tiny_root / "nsddata/ppdata/subj01/func1pt8mm/roi/streams.nii.gz").get_fdata())
    assert set(np.unique(vol)) <= set(range(-1, 8)) and (vol == -1).any()
    np.testing.assert_array_equal(nsd.roi_mask("subj01", "streams", "lateral", space="func1pt8mm"), vol == 6)
    with pytest.raises(ValueError, match="ventrl.*names"):
        nsd.roi_mask("subj01", "streams", "ventrl")


def test_noise_ceiling_formula_and_planted_snr(tiny_root):
    from brainllm_utils.synth import load_truth_array

    nsd = NSD(tiny_root)
    ncsnr = nsd.ncsnr("subj01")
    nc = nsd.noise_ceiling("subj01", n=3)
    np.testing.assert_allclose(nc, 100 * ncsnr**2 / (ncsnr**2 + 1 / 3), rtol=1e-5)
    np.testing.assert_allclose(noise_ceiling_from_ncsnr([1.0], [3, 3, 3]), [75.0])
    truth = load_truth_array(tiny_root, "snr_fsaverage_subj01")
    general = nsd.roi_mask("subj01", "nsdgeneral")
    ok = general & np.isfinite(ncsnr)
    assert np.corrcoef(truth[ok], ncsnr[ok])[0, 1] > 0.8


# ---------------------------------------------------------------- stimuli
def test_captions_categories_images(tiny_root):
    nsd = NSD(tiny_root)
    info = pd.read_csv(tiny_root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv", index_col=0)
    ids = np.array([5, 2, 5, 0])
    caps = nsd.captions(ids)
    assert caps[0] == caps[2] and all(5 <= len(c) <= 6 for c in caps)
    split = info.loc[2, "cocoSplit"]
    js = json.loads((tiny_root / f"nsddata_stimuli/stimuli/nsd/annotations/captions_{split}.json").read_text())
    mine = sorted((a["id"], a["caption"].strip()) for a in js["annotations"] if a["image_id"] == info.loc[2, "cocoId"])
    assert caps[1] == [c for _, c in mine]

    multi, names = nsd.categories(ids)
    inst = json.loads((tiny_root / f"nsddata_stimuli/stimuli/nsd/annotations/instances_{split}.json").read_text())
    id_to_name = {c["id"]: c["name"] for c in inst["categories"]}
    present = {id_to_name[a["category_id"]] for a in inst["annotations"] if a["image_id"] == info.loc[2, "cocoId"]}
    assert {names[j] for j in np.flatnonzero(multi[1])} == present
    assert multi.dtype == np.float32 and multi.shape == (4, len(names))

    imgs = nsd.images(ids)
    with h5py.File(tiny_root / "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5", "r") as f:
        for row, i in enumerate(ids):
            np.testing.assert_array_equal(imgs[row], f["imgBrick"][int(i)])
    assert imgs.dtype == np.uint8 and imgs.shape[-1] == 3
    with pytest.raises(ValueError, match="nsdId"):
        nsd.captions([nsd.n_images])


# ---------------------------------------------------------------- bad input
def test_missing_root_names_the_path(tmp_path):
    with pytest.raises(NSDFileError, match=str(tmp_path / "nope")):
        NSD(tmp_path / "nope")


def test_missing_file_names_it_and_the_download_command(tree_copy):
    root = tree_copy()
    (root / "nsddata/experiments/nsd/nsd_expdesign.mat").unlink()
    with pytest.raises(NSDFileError, match=r"nsd_expdesign\.mat[\s\S]*python -m brainllm_utils.nsd download[\s\S]*aws s3 cp --no-sign-request"):
        NSD(root).trial_images("subj01")


def test_unknown_subject_lists_available(tiny_root):
    with pytest.raises(ValueError, match=r"subj09.*available.*subj01"):
        NSD(tiny_root).betas("subj09")
    with pytest.raises(ValueError, match="subjNN"):
        NSD(tiny_root).betas("alice")


def test_truncated_volume_betas_are_rejected(tree_copy, cache_dir):
    root = tree_copy()
    f = root / BETAS.format(s="subj01", space="func1pt8mm") / "betas_session02.nii.gz"
    raw = gzip.decompress(f.read_bytes())
    _replace(f, gzip.compress(raw[: len(raw) // 2], compresslevel=1))
    with pytest.raises(NSDFileError, match="betas_session02.*truncated"):
        NSD(root).betas("subj01", space="func1pt8mm", progress=False)
    assert not list((cache_dir / "betas").glob("*.npy"))


def test_truncated_surface_betas_are_rejected(tree_copy, cache_dir):
    root = tree_copy()
    f = root / BETAS.format(s="subj01", space="fsaverage") / "rh.betas_session01.mgh"
    data = f.read_bytes()
    _replace(f, data[: len(data) // 3])
    with pytest.raises(NSDFileError, match="rh.betas_session01"):
        NSD(root).betas("subj01", progress=False)


def test_corrupt_expdesign_is_rejected(tree_copy):
    root = tree_copy()
    _replace(root / "nsddata/experiments/nsd/nsd_expdesign.mat", b"not a mat file at all")
    with pytest.raises(NSDFileError, match="nsd_expdesign.mat"):
        NSD(root).trial_images("subj01")


def test_mismatched_trial_count_is_rejected(tree_copy):
    root = tree_copy()
    f = root / BETAS.format(s="subj01", space="fsaverage") / "lh.betas_session02.mgh"
    img = nib.load(f)
    short = nib.MGHImage(np.asarray(img.dataobj)[..., :-3].astype(np.float32), img.affine)
    f.unlink()
    nib.save(short, f)
    with pytest.raises(NSDFileError, match=r"lh.betas_session02.*expected shape"):
        NSD(root).betas("subj01", progress=False)


def test_bad_roi_and_parameters(tiny_root):
    nsd = NSD(tiny_root)
    with pytest.raises(ValueError, match="boolean mask of shape"):
        nsd.betas("subj01", roi=np.ones(5, dtype=bool))
    with pytest.raises(ValueError, match="space"):
        nsd.betas("subj01", space="MNI")
    with pytest.raises(ValueError, match="sessions"):
        nsd.betas("subj01", sessions=[99])
    with pytest.raises(ValueError, match=r"nosuchatlas.*unknown atlas.*streams"):  # a typo, not a download
        nsd.roi_mask("subj01", "nosuchatlas")


def test_responses_disagreeing_with_design_are_rejected(tree_copy):
    root = tree_copy()
    p = root / "nsddata/ppdata/subj01/behav/responses.tsv"
    df = pd.read_csv(p, sep="\t")
    df.loc[0, "73KID"] = df.loc[0, "73KID"] + 1
    p.unlink()
    df.to_csv(p, sep="\t", index=False, na_rep="NaN")
    with pytest.raises(NSDFileError, match="73KID"):
        NSD(root).trial_images("subj01")


# ---------------------------------------------------------------- sessions on disk
def _remove_session(root, subject, session, hemis=("lh", "rh")):
    d = root / BETAS.format(s=subject, space="fsaverage")
    for h in hemis:
        (d / f"{h}.betas_session{session:02d}.mgh").unlink()


def _raw_fsaverage(root, subject, sessions):
    d = root / BETAS.format(s=subject, space="fsaverage")
    out = []
    for n in sessions:
        lh = np.squeeze(nib.load(d / f"lh.betas_session{n:02d}.mgh").get_fdata())
        rh = np.squeeze(nib.load(d / f"rh.betas_session{n:02d}.mgh").get_fdata())
        out.append(np.concatenate([lh, rh]).T)
    return out


def test_parse_and_format_sessions():
    from brainllm_utils.nsd import format_sessions, parse_session_spec, parse_sessions

    assert parse_session_spec(None) is None
    assert parse_session_spec("1-3,7") == [1, 2, 3, 7] == parse_sessions("1-3,7")
    assert parse_session_spec(" 2 , 1-2") == [1, 2]
    assert parse_session_spec(4) == [4] == parse_session_spec("4")  # session 4, as the string
    assert parse_session_spec(np.array([5, 2])) == [2, 5]
    assert format_sessions([7, 1, 2, 3]) == "1-3,7"
    assert format_sessions(parse_session_spec("1,3-4,10")) == "1,3-4,10"
    for bad in ["", "0-2", "3-1", "a", "1-", [], [1.5], [True], [0]]:
        with pytest.raises(ValueError, match="sessions"):
            parse_session_spec(bad)


def test_last_session_missing_uses_the_sessions_on_disk_and_warns(tree_copy, cache_dir):
    from brainllm_utils.nsd import SessionsMissingWarning

    root = tree_copy()
    ids, _ = raw_trial_ids(root, "subj01")  # the three acquired sessions
    _remove_session(root, "subj01", 3)
    nsd = NSD(root)
    assert nsd.n_sessions("subj01") == 3  # responses.tsv lists all three
    with pytest.warns(SessionsMissingWarning, match=r"subj01.*sessions 3.*download .*--subjects 1 --sessions 3"):
        assert nsd.sessions("subj01") == [1, 2]
    assert nsd.sessions_on_disk("subj01", "fsaverage") == 2
    # the average over the sessions on disk, against plain numpy on those files
    T = ids.size // 3
    expected, keep = raw_average(_raw_fsaverage(root, "subj01", [1, 2]), ids[: 2 * T])
    Y, got = nsd.betas("subj01", progress=False)
    np.testing.assert_array_equal(got, keep)
    np.testing.assert_allclose(Y, expected, atol=2e-5, equal_nan=True)
    assert nsd.betas_key("subj01") == nsd.betas_key("subj01", sessions=[1, 2])
    # an explicit missing session names its file
    with pytest.raises(NSDFileError, match=r"lh.betas_session03.mgh"):
        nsd.betas("subj01", sessions=[1, 3], progress=False)
    with pytest.raises(NSDFileError, match=r"betas_session03"):
        nsd.betas("subj01", sessions="1-3", progress=False)


def test_a_hole_in_the_middle_is_allowed(tree_copy, cache_dir):
    root = tree_copy()
    _remove_session(root, "subj01", 2, hemis=("rh",))  # half a session is no session
    nsd = NSD(root)
    with pytest.warns(UserWarning, match="sessions 2"):
        assert nsd.sessions("subj01") == [1, 3]
    ids, _ = raw_trial_ids(root, "subj01")
    T = ids.size // 3
    used = np.concatenate([ids[:T], ids[2 * T:]])
    expected, keep = raw_average(_raw_fsaverage(root, "subj01", [1, 3]), used)
    Y, got = nsd.betas("subj01", progress=False)
    np.testing.assert_array_equal(got, keep)
    np.testing.assert_allclose(Y, expected, atol=2e-5, equal_nan=True)
    with pytest.raises(NSDFileError, match=r"rh.betas_session02.mgh"):
        nsd.betas("subj01", sessions=[2], progress=False)


def test_shared_test_images_count_the_sessions_used(tree_copy):
    root = tree_copy()
    full = NSD(root).shared_test_images()
    ids, _ = raw_trial_ids(root, "subj01")
    _remove_session(root, "subj01", 2)
    nsd = NSD(root)
    with pytest.warns(UserWarning):
        got = nsd.shared_test_images()
    T = ids.size // 3
    uniq, counts = np.unique(np.concatenate([ids[:T], ids[2 * T:]]), return_counts=True)
    np.testing.assert_array_equal(got, np.intersect1d(full, uniq[counts == 3]))
    assert got.size < full.size, "an image shown in the missing session is no test image"
    # explicit sessions (the same for every subject) and a dict per subject
    np.testing.assert_array_equal(nsd.shared_test_images("1-2", subjects=[2, 3]), full)
    np.testing.assert_array_equal(nsd.shared_test_images({1: [1, 3], 2: "1-2", 3: "1-2"}), got)
    assert nsd.select_sessions("subj02", {"subj02": "1-2", 1: [1]}) == [1, 2]
    with pytest.raises(ValueError, match="no entry for subj03"):
        nsd.select_sessions("subj03", {"subj02": "1-2"})


def test_subjects_with_different_session_counts(tmp_path):
    import warnings

    from brainllm_utils.nsd import SessionsMissingWarning
    from brainllm_utils.synth import make_synthetic_nsd

    root = tmp_path / "diff"
    make_synthetic_nsd(root, preset="tiny", seed=0, overrides={"data_sessions": {1: 3, 2: 2, 3: 3}})
    nsd = NSD(root)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SessionsMissingWarning)  # nothing is missing
        assert [nsd.sessions(s) for s in nsd.subjects] == [[1, 2, 3], [1, 2], [1, 2, 3]]
        for s in nsd.subjects:
            Y, ids = nsd.betas(s, progress=False, cache=False)
            assert Y.shape[0] == ids.size > 0
    summary = nsd.summary()
    assert list(summary["sessions_on_disk"]) == ["1-3", "1-2", "1-3"]
    with pytest.raises(ValueError, match=r"sessions 3: subj02 has sessions 1..2"):
        nsd.betas("subj02", sessions="1-3", progress=False)
