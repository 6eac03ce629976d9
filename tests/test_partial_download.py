"""The chapters on what a user downloaded: one subject, a session missing on disk, explicit
``sessions``; analyses that need two subjects are refused loudly or skipped with a note."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from brainllm_utils import chapters
from brainllm_utils.chapters import ch02_rsa as ra
from brainllm_utils.chapters import ch03_encoding as ea
from brainllm_utils.chapters import ch04_decoding as da
from brainllm_utils.chapters import ch05_image_to_llm as va
from brainllm_utils.nsd import NSD, SessionsMissingWarning
from brainllm_utils.synth import make_synthetic_nsd

ALPHAS = np.logspace(-1, 3, 5)
TRUTH = ["truth:category"]


@pytest.fixture(scope="module")
def one_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("one") / "nsd"
    make_synthetic_nsd(root, preset="tiny", seed=0, overrides={"data_sessions": {1: 3}})
    return root


@pytest.fixture
def hole(tree_copy):
    """The tiny sandbox with subj01's session 2 missing on disk (responses.tsv lists it)."""
    root = tree_copy()
    (root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_session02.mgh").unlink()
    return root


def test_needs_subjects_note():
    assert chapters.needs_subjects(["subj01", "subj02"], "x") is None
    note = chapters.needs_subjects(["subj01"], "the LOSO ceiling", instead="Plain r instead.")
    assert note == "**Skipped** (needs ≥ 2 subjects; this run has 1: subj01): the LOSO ceiling. Plain r instead."
    assert "needs ≥ 3" in chapters.needs_subjects([1, 2], "x", n_min=3)


def test_one_subject_refuses_group_analyses_and_keeps_the_rest(one_root, cache_dir, tmp_path):
    nsd = NSD(one_root)
    assert nsd.subjects == ["subj01"]
    for f in (lambda: ra.loso_ceilings(nsd), lambda: ea.inter_subject_ceiling(nsd)):
        with pytest.raises(ValueError, match="≥ 2 subjects"):
            f()
    with pytest.raises(ValueError, match="n_subjects >= 2"):
        ra.group_searchlight_test({"subj01": np.zeros(5)})
    # ROI RSA runs with plain r (no ceiling) ...
    df = ra.subject_rsa_table(nsd, feature_spaces=TRUTH, rois=["ventral"], set_size=10, n_sets=2,
                              device="cpu", results_dir=tmp_path)
    assert len(df) == 1 and np.isfinite(df["r"]).all()
    assert df["ceiling"].isna().all() and df["r_normalised"].isna().all()
    # ... encoders, the repeat-based ceiling and the decoders too
    enc = ea.fit_encoders(nsd, feature="multihot", roi="nsdgeneral", alphas=ALPHAS, cv=3, device="cpu")
    assert enc.r.shape[0] == 1 and np.isfinite(enc.r).any()
    assert ea.noise_ceiling_r(nsd).shape == enc.r.shape
    dim = enc.encoders["subj01"][0].shape[0]
    maps = ea.in_silico_contrasts(enc, contrasts=[("food", "people")], q=0.05, fdr=True,
                                  embed_fn=lambda s: np.random.default_rng(len(s)).normal(size=(len(s), dim)))
    m = maps["food − people"]
    assert np.isnan(m["p"][np.isfinite(m["mean"])]).all() and not m["significant_fdr"].any()
    dec = da.decode_subjects(nsd, feature="multihot", alphas=ALPHAS, cv=3, device="cpu")
    assert dec["r"].shape[0] == 1
    assert dec["test_ids"].size == nsd.shared_test_images().size


def test_sessions_reach_every_analysis(tiny_root, cache_dir, tmp_path):
    nsd = NSD(tiny_root)
    ids = chapters.subject_image_ids(nsd, "subj01", sessions="1-2")
    np.testing.assert_array_equal(ids, nsd.betas("subj01", sessions=[1, 2], progress=False)[1])
    assert ids.size < chapters.subject_image_ids(nsd, "subj01").size
    # sample sets of all sessions and of sessions 1-2 live side by side
    full_ids, _ = chapters.subject_sets(nsd, "subj01", set_size=10, results_dir=tmp_path)
    part_ids, part_sets = chapters.subject_sets(nsd, "subj01", set_size=10, results_dir=tmp_path, sessions="1-2")
    np.testing.assert_array_equal(part_ids, ids)
    assert part_sets.max() < ids.size
    assert (tmp_path / "rsa").rglob("sessions-subj01-1-2")
    # encoders: the split and the cache key follow the sessions
    a = ea.fit_encoders(nsd, [1, 2], feature="multihot", roi="nsdgeneral", alphas=ALPHAS, cv=3, device="cpu")
    b = ea.fit_encoders(nsd, [1, 2], feature="multihot", roi="nsdgeneral", alphas=ALPHAS, cv=3, device="cpu",
                        sessions="1-2")
    assert b.n_train["subj01"] == ids.size - nsd.shared_test_images("1-2", [1, 2]).size
    assert b.n_train["subj01"] < a.n_train["subj01"]
    assert not np.allclose(np.nan_to_num(a.r), np.nan_to_num(b.r))
    d = ea.subject_data(nsd, "subj01", roi="nsdgeneral", sessions="1-2")
    assert d.key != ea.subject_data(nsd, "subj01", roi="nsdgeneral").key
    np.testing.assert_array_equal(va.transfer_image_ids(nsd, [1], sessions="1-2"), ids)
    _, info = da.default_caption_bank(nsd, [1], pool_per_image=0, sessions=[1])
    _, info_all = da.default_caption_bank(nsd, [1], pool_per_image=0)
    assert 0 < info["training"] < info_all["training"]


def test_a_missing_session_on_disk(hole, cache_dir, tmp_path):
    nsd = NSD(hole)
    with pytest.warns(SessionsMissingWarning, match="subj01"):
        used = chapters.data_used(nsd)
    assert list(used["sessions"]) == ["1,3", "1-3", "1-2"]
    assert list(used["missing_on_disk"]) == ["2", "", ""]
    assert used.loc["subj01", "images_3x"] == chapters.subject_image_ids(nsd, "subj01").size
    assert used.attrs["sessions_by_subject"]["subj01"] == [1, 3]
    assert (used["shared_test_images"] == nsd.shared_test_images().size).all()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SessionsMissingWarning)
        nc = ra.loso_ceilings(nsd, rois=["ventral"])
        assert nc["n_test_images"].iloc[0] == nsd.shared_test_images().size
        enc = ea.fit_encoders(nsd, feature="multihot", roi="nsdgeneral", alphas=ALPHAS, cv=3, device="cpu")
        assert set(enc.n_test.values()) == {nsd.shared_test_images().size}
        assert ea.inter_subject_ceiling(nsd, roi="nsdgeneral").shape == enc.r.shape
    with pytest.raises(FileNotFoundError, match="lh.betas_session02.mgh"):
        ea.fit_encoders(nsd, feature="multihot", roi="nsdgeneral", alphas=ALPHAS, cv=3, device="cpu",
                        sessions="1-2")
