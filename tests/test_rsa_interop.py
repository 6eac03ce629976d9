"""brainllm_utils.rsa ↔ rsatoolbox: RDMs / Dataset in, RDMs out, nsdId checks.

References are rsatoolbox's own ``calc_rdm``, ``compare``, ``boot_noise_ceiling``,
``RDMs.reorder`` and ``save`` / ``load_rdm``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from brainllm_utils import rsa

rsatoolbox = pytest.importorskip("rsatoolbox")
from rsatoolbox.data import Dataset  # noqa: E402
from rsatoolbox.rdm import calc_rdm, compare, load_rdm  # noqa: E402


def _patterns(rng, n=14, p=30, shared=None):
    X = rng.normal(size=(n, p))
    return X if shared is None else X + shared


def _ids(rng, n=14):
    """Distinct 0-based nsdIds in a non-sorted order (as a design might give them)."""
    return rng.choice(73000, size=n, replace=False)


# --------------------------------------------------------------------------- vector order
def test_our_vector_order_is_rsatoolbox_order(rng):
    """Condensed vectors are exchanged unchanged: our pdist order is rsatoolbox's, shown on
    the same patterns with rsatoolbox's own calc_rdm, and on a square matrix with distinct
    entries (any other triangle order would scramble it)."""
    X = rng.normal(size=(9, 25))
    theirs = calc_rdm(Dataset(X), method="correlation")
    ours = rsa.compute_rdm(X, dtype="float64", out_dtype="float64")
    np.testing.assert_allclose(theirs.dissimilarities[0], ours, atol=1e-12)
    v = np.arange(1.0, 9 * 8 // 2 + 1)  # every pair its own value
    r = rsa.to_rdms(v)
    np.testing.assert_array_equal(r.get_matrices()[0], rsa.rdm_to_square(v))
    np.testing.assert_array_equal(r.get_matrices()[0], squareform(v))


# --------------------------------------------------------------------------- to/from RDMs
def test_round_trip_keeps_vectors_ids_and_descriptors(rng):
    v = rsa.compute_rdm(rng.normal(size=(3, 12, 20)), dtype="float64", out_dtype="float64")
    ids = _ids(rng, 12)
    r = rsa.to_rdms(v, ids, names=["a", "b", "c"], rdm_descriptors={"subject": "subj01", "roi": ["x", "y", "z"]},
                    descriptors={"atlas": "streams"}, dissimilarity_measure="correlation")
    assert (r.n_rdm, r.n_cond, r.dissimilarity_measure) == (3, 12, "correlation")
    assert r.pattern_descriptors["nsdId"] == ids.tolist()
    assert r.rdm_descriptors["name"] == ["a", "b", "c"]
    assert r.rdm_descriptors["subject"] == ["subj01"] * 3
    assert r.rdm_descriptors["roi"] == ["x", "y", "z"] and r.descriptors == {"atlas": "streams"}
    back, back_ids = rsa.from_rdms(r)
    np.testing.assert_array_equal(back, v)
    assert not np.shares_memory(r.dissimilarities, v)  # the RDMs owns its copy
    np.testing.assert_array_equal(back_ids, ids)
    # a single vector round-trips to one RDM; square input gives the same object
    one = rsa.to_rdms(v[0], ids)
    assert one.n_rdm == 1
    np.testing.assert_array_equal(rsa.from_rdms(one)[0][0], v[0])
    np.testing.assert_array_equal(rsa.to_rdms(rsa.rdm_to_square(v), ids).dissimilarities, v)
    # our functions read an RDMs as its vectors
    np.testing.assert_array_equal(rsa.rdm_to_square(one), rsa.rdm_to_square(v[0]))
    np.testing.assert_array_equal(rsa.sub_rdm(r, [0, 3, 5]), rsa.sub_rdm(v, [0, 3, 5]))


def test_to_rdms_refuses_bad_input(rng):
    v = rng.random(10)  # 5 items
    with pytest.raises(ValueError, match="triangular"):
        rsa.to_rdms(rng.random(7))
    with pytest.raises(ValueError, match="expected 5 nsdIds"):
        rsa.to_rdms(v, [1, 2, 3])
    with pytest.raises(ValueError, match="distinct"):
        rsa.to_rdms(v, [1, 2, 3, 3, 4])
    with pytest.raises(ValueError, match="non-negative"):
        rsa.to_rdms(v, [-1, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="integers"):
        rsa.to_rdms(v, [0.5, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="one per RDM"):
        rsa.to_rdms(np.stack([v, v]), names=["only one"])
    square = rsa.rdm_to_square(v)
    square[0, 1] += 1
    with pytest.raises(ValueError, match="symmetric"):
        rsa.to_rdms(square[None])
    with pytest.raises(TypeError, match="RDMs"):
        rsa.from_rdms(v)


def test_hdf5_save_and_load_keep_nsd_ids(rng, tmp_path):
    X = rng.normal(size=(11, 17))
    ids = _ids(rng, 11)
    r = rsa.compute_rdm(X, as_rdms=True, nsd_ids=ids, dtype="float64", out_dtype="float64")
    r.rdm_descriptors["roi"] = ["ventral"]
    path = tmp_path / "rdms.hdf5"
    r.save(str(path), file_type="hdf5")
    back = load_rdm(str(path))
    v, got = rsa.from_rdms(back)
    np.testing.assert_array_equal(got, ids)
    np.testing.assert_array_equal(v[0], rsa.compute_rdm(X, dtype="float64", out_dtype="float64"))
    assert back.dissimilarity_measure == "correlation" and list(back.rdm_descriptors["roi"]) == ["ventral"]
    # and the loaded object works in our functions, checked against the ids
    assert rsa.compare_rdms(back, r) == pytest.approx(1.0)
    rsa.from_rdms(back, ids)


# --------------------------------------------------------------------------- comparisons
@pytest.mark.parametrize("ours, theirs", [("pearson", "corr"), ("spearman", "spearman"),
                                          ("cosine", "cosine"), ("kendall_tau_a", "tau-a")])
def test_compare_rdms_on_rdms_equals_arrays_and_rsatoolbox(rng, ours, theirs):
    ids = _ids(rng, 13)
    shared = rng.normal(size=(13, 1)) * 2
    a = rsa.compute_rdm(_patterns(rng, 13, 40, shared)[None].repeat(2, 0) + rng.normal(size=(2, 13, 40)),
                        dtype="float64", out_dtype="float64")
    b = rsa.compute_rdm(np.stack([_patterns(rng, 13, 30, shared) for _ in range(3)]), dtype="float64",
                        out_dtype="float64")
    ra, rb = rsa.to_rdms(a, ids), rsa.to_rdms(b, ids)
    want = compare(ra, rb, method=theirs)
    on_arrays = rsa.compare_rdms(a, b, ours)
    on_rdms = rsa.compare_rdms(ra, rb, ours)
    np.testing.assert_allclose(on_rdms, on_arrays, atol=1e-14)
    np.testing.assert_allclose(on_rdms, want, atol=1e-10)
    # single RDMs → a float, as for two vectors
    single = rsa.compare_rdms(ra[0], rb[1], ours)
    assert isinstance(single, float)
    assert single == pytest.approx(float(want[0, 1]), abs=1e-10)
    # row-wise and tau_a take RDMs too
    np.testing.assert_allclose(rsa.compare_rowwise(ra, rb[[0, 1]], ours),
                               rsa.compare_rowwise(a, b[:2], ours), atol=1e-14)


def test_rank_and_tau_a_take_rdms(rng):
    v = rng.integers(0, 4, size=(2, 45)).astype(float)  # ties
    r = rsa.to_rdms(v)
    np.testing.assert_array_equal(rsa.rank(r), rsa.rank(v))
    assert rsa.tau_a(r[0], r[1]) == pytest.approx(float(compare(r[0], r[1], method="tau-a")[0, 0]), abs=1e-12)
    with pytest.raises(ValueError, match="expected one RDM"):
        rsa.tau_a(r, r[0])


def test_mismatched_nsd_ids_raise_or_reorder(rng):
    X = rng.normal(size=(10, 20))
    ids = _ids(rng, 10)
    a = rsa.compute_rdm(X, as_rdms=True, nsd_ids=ids, dtype="float64", out_dtype="float64")
    perm = rng.permutation(10)
    b = rsa.compute_rdm(X[perm] + 0.1 * rng.normal(size=(10, 20)), as_rdms=True, nsd_ids=ids[perm],
                        dtype="float64", out_dtype="float64")
    with pytest.raises(ValueError, match="another order.*reorder=True"):
        rsa.compare_rdms(a, b)
    # reorder=True puts b in a's order: equal to rsatoolbox's own reorder then compare
    b_sorted = b.copy()
    b_sorted.reorder(np.argsort(perm))
    assert b_sorted.pattern_descriptors["nsdId"] == ids.tolist()
    want = float(compare(a, b_sorted, method="corr")[0, 0])
    assert rsa.compare_rdms(a, b, reorder=True) == pytest.approx(want, abs=1e-12)
    assert want > 0.5  # the same images: reordering recovered the shared structure
    # different images always raise, reorder or not
    other = rsa.to_rdms(b.dissimilarities, np.r_[ids[perm][:-1], 73000 + 5])
    for flag in (False, True):
        with pytest.raises(ValueError, match="same images"):
            rsa.compare_rdms(a, other, reorder=flag)
    # an RDMs with several RDMs where one is expected
    with pytest.raises(ValueError, match="expected one RDM"):
        rsa.bootstrap_rsa_ci(X, rsa.to_rdms(np.stack([a.dissimilarities[0]] * 2)), n_boot=5)
    with pytest.raises(ValueError, match="reorder"):
        rsa.from_rdms(b, ids)
    np.testing.assert_allclose(rsa.from_rdms(b, ids, reorder=True)[0], b_sorted.dissimilarities, atol=0)


# --------------------------------------------------------------------------- patterns
@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_dataset_patterns_give_rsatoolbox_calc_rdm(rng, metric):
    X = rng.normal(size=(12, 33))
    ids = _ids(rng, 12)
    ds = Dataset(X, obs_descriptors={"nsdId": ids})
    theirs = calc_rdm(ds, method=metric)
    ours = rsa.compute_rdm(ds, metric, dtype="float64", out_dtype="float64")
    if metric == "correlation":
        np.testing.assert_allclose(ours, theirs.dissimilarities[0], atol=1e-12)
    else:  # rsatoolbox: squared Euclidean / n_channels; ours: pdist's Euclidean
        assert theirs.dissimilarity_measure == "squared euclidean"
        np.testing.assert_allclose(ours**2 / X.shape[1], theirs.dissimilarities[0], atol=1e-12)
        np.testing.assert_allclose(ours, pdist(X), atol=1e-12)
    r = rsa.compute_rdm(ds, metric, as_rdms=True, dtype="float64", out_dtype="float64")
    assert r.pattern_descriptors["nsdId"] == ids.tolist() and r.dissimilarity_measure == metric
    np.testing.assert_array_equal(r.dissimilarities[0], ours)
    # calc_rdm carries the observation descriptor into the RDMs: comparable with ours
    np.testing.assert_array_equal(theirs.pattern_descriptors["nsdId"], ids)
    assert rsa.compare_rdms(r, theirs, "spearman") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="nsd_ids differ"):
        rsa.compute_rdm(ds, metric, as_rdms=True, nsd_ids=ids[::-1])


def test_dataset_refusals(rng):
    X = rng.normal(size=(6, 5))
    with pytest.raises(ValueError, match="distinct.*average"):
        rsa.compute_rdm(Dataset(X, obs_descriptors={"nsdId": [1, 1, 2, 3, 4, 5]}))
    ds = Dataset(X)  # no nsdId: used by position, like an array
    np.testing.assert_array_equal(rsa.compute_rdm(ds), rsa.compute_rdm(X))
    with pytest.raises(ValueError, match="no 'nsdId'"):
        rsa.from_dataset(ds, np.arange(6))
    F, empty = rsa.separate_empty_rows(Dataset(np.r_[X[:5], np.zeros((1, 5))]))
    assert empty.tolist() == [False] * 5 + [True]


def test_sampled_and_searchlight_rsa_take_dataset_and_rdms(rng):
    n = 40
    ids = _ids(rng, n)
    latent = rng.normal(size=(n, 5))
    brain = latent @ rng.normal(size=(5, 60)) + rng.normal(size=(n, 60))
    feats = latent @ rng.normal(size=(5, 8)) + 0.5 * rng.normal(size=(n, 8))
    model_rdm = rsa.compute_rdm(feats, dtype="float64", out_dtype="float64")
    sets = rsa.make_sample_sets(n, set_size=10, seed=0)
    want = rsa.sampled_rsa(brain, model_rdm, sets, dtype="float64")
    ds = Dataset(brain, obs_descriptors={"nsdId": ids})
    got = rsa.sampled_rsa(ds, rsa.to_rdms(model_rdm, ids), sets, dtype="float64")
    np.testing.assert_allclose(got.per_set, want.per_set, atol=1e-12)
    got = rsa.sampled_rsa(ds, [Dataset(feats, obs_descriptors={"nsdId": ids})], sets, dtype="float64")
    np.testing.assert_allclose(got.per_set, rsa.sampled_rsa(brain, [feats], sets, dtype="float64").per_set,
                               atol=1e-12)
    # a permuted model: refused, or reordered to the brain's ids on request
    perm = rng.permutation(n)
    shuffled = rsa.to_rdms(rsa.sub_rdm(model_rdm, perm), ids[perm])
    with pytest.raises(ValueError, match="another order"):
        rsa.sampled_rsa(ds, shuffled, sets)
    got = rsa.sampled_rsa(ds, shuffled, sets, dtype="float64", reorder=True)
    np.testing.assert_allclose(got.per_set[0], want.per_set[0], atol=1e-12)
    # the searchlight engine and roi_rsa take them too
    nb = [np.arange(0, 30), np.arange(20, 60)]
    sl = rsa.searchlight_rsa(ds, nb, Dataset(feats[perm], obs_descriptors={"nsdId": ids[perm]}), sets=sets,
                             progress=False, dtype="float64", reorder=True)
    np.testing.assert_allclose(sl, rsa.searchlight_rsa(brain, nb, feats, sets=sets, progress=False,
                                                       dtype="float64"), atol=1e-12)
    tab = rsa.roi_rsa({"roi": ds}, {"m": rsa.to_rdms(model_rdm, ids)}, sets)
    assert tab["r"].iloc[0] == pytest.approx(float(want.mean[0]), abs=1e-5)
    with pytest.raises(ValueError, match="expected one RDM"):
        rsa.roi_rsa({"roi": ds}, {"m": rsa.to_rdms(np.stack([model_rdm] * 2), ids)}, sets)
    # bootstrap CI on Dataset + RDMs equals the arrays'
    a = rsa.bootstrap_rsa_ci(brain, model_rdm, n_boot=20, seed=3)
    b = rsa.bootstrap_rsa_ci(ds, shuffled, n_boot=20, seed=3, reorder=True)
    assert a == pytest.approx(b, abs=1e-12)


def test_noise_ceiling_on_rdms_equals_arrays_and_rsatoolbox(rng):
    from rsatoolbox.inference import boot_noise_ceiling

    n, n_sub = 15, 4
    ids = _ids(rng, n)
    common = rng.normal(size=(n, 30))
    rdms = rsa.compute_rdm(np.stack([common + rng.normal(size=(n, 30)) for _ in range(n_sub)]),
                           dtype="float64", out_dtype="float64")
    r = rsa.to_rdms(rdms, ids, rdm_descriptors={"subject": [f"subj0{k + 1}" for k in range(n_sub)]})
    want = rsa.noise_ceiling(rdms, "pearson")
    got = rsa.noise_ceiling(r, "pearson")
    assert (got.lower, got.upper) == pytest.approx((want.lower, want.upper), abs=1e-14)
    lo, hi = boot_noise_ceiling(r, method="corr", rdm_descriptor="subject")
    assert (got.lower, got.upper) == pytest.approx((lo, hi), abs=1e-10)
    np.testing.assert_allclose(rsa.pool_rdms(r), rsa.pool_rdms(rdms), atol=1e-14)
    # one RDMs per subject, subjects' images in different orders: refused or reordered
    per_subject = []
    for k in range(n_sub):
        perm = rng.permutation(n) if k else np.arange(n)
        per_subject.append(rsa.to_rdms(rsa.sub_rdm(rdms[k], perm), ids[perm]))
    with pytest.raises(ValueError, match=r"rdms\[\d\].*another order"):
        rsa.noise_ceiling(per_subject)
    got = rsa.noise_ceiling(per_subject, reorder=True)
    assert (got.lower, got.upper) == pytest.approx((want.lower, want.upper), abs=1e-12)


# --------------------------------------------------------------------------- the chapter's RDMs
def test_chapter_subject_rdms(tiny_root, cache_dir, tmp_path):
    from brainllm_utils import rsa_analysis as ra
    from brainllm_utils import synth
    from brainllm_utils.nsd import NSD

    nsd = NSD(tiny_root)
    rois, models = ["ventral", "parietal"], ["truth:category"]
    out = ra.subject_rdms(nsd, rois=rois, feature_spaces=models)
    test = nsd.shared_test_images()
    assert list(out) == list(nsd.subjects)
    for s, r in out.items():
        assert r.n_rdm == 3 and r.n_cond == test.size
        assert list(r.rdm_descriptors["name"]) == rois + models
        assert list(r.rdm_descriptors["kind"]) == ["roi", "roi", "model"]
        assert set(r.rdm_descriptors["subject"]) == {s}
        np.testing.assert_array_equal(r.pattern_descriptors["nsdId"], test)
        Y = ra.roi_patterns(nsd, s, ["ventral"], ids=test)[0]["ventral"]
        np.testing.assert_allclose(r.subset("name", "ventral").dissimilarities[0], pdist(Y, "correlation"),
                                   atol=2e-6)
    F = synth.load_truth_array(nsd.root, "features_category")[test]
    np.testing.assert_allclose(out[nsd.subjects[0]].subset("name", "truth:category").dissimilarities[0],
                               pdist(F, "correlation"), atol=2e-6)
    # the chapter's LOSO ceilings from these objects: rsa.noise_ceiling on a list of RDMs
    nc = ra.loso_ceilings(nsd, rois=["ventral"])
    got = rsa.noise_ceiling([out[s].subset("name", "ventral") for s in nsd.subjects], pool="mean")
    np.testing.assert_allclose(got.per_subject_lower, nc["ceiling"].to_numpy(), atol=1e-6)
    # hdf5 via rsatoolbox's own save, read back with its loader
    path = tmp_path / "subj01_rdms.hdf5"
    out[nsd.subjects[0]].save(str(path), file_type="hdf5")
    back = load_rdm(str(path))
    np.testing.assert_array_equal(back.dissimilarities, out[nsd.subjects[0]].dissimilarities)
    np.testing.assert_array_equal(back.pattern_descriptors["nsdId"], test)
    with pytest.raises(ValueError, match="sorted and distinct"):
        ra.subject_rdms(nsd, rois=rois, feature_spaces=(), test_ids=test[::-1])


def test_recognising_rsatoolbox_objects_does_not_import_it():
    """rsa works without importing rsatoolbox until an RDMs is built (it is a heavy import)."""
    import subprocess
    import sys

    code = ("import sys, numpy as np, brainllm_utils.rsa as rsa; "
            "rsa.compare_rdms(np.arange(6.0), np.arange(6.0)[::-1]); rsa.is_rdms(1); "
            "print('rsatoolbox' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
