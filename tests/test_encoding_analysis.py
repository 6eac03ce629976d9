"""Tests of brainllm_utils.encoding_analysis (orchestration) and its figures."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from brainllm_utils import encoding_analysis as ea  # noqa: E402
from brainllm_utils.chapters import _common  # noqa: E402
from brainllm_utils.encoding import pearson_r  # noqa: E402
from brainllm_utils.nsd import NSD  # noqa: E402

ALPHAS = np.logspace(-1, 4, 6)


@pytest.fixture(scope="module")
def nsd(tiny_root):
    return NSD(tiny_root)


def _fake_embed(sentences, **kw):
    """Deterministic 16-d 'embeddings' from a hash of each sentence."""
    out = []
    for s in sentences:
        seed = int.from_bytes(s.encode()[:8].ljust(8, b"\0"), "little") ^ len(s)
        out.append(np.random.default_rng(seed).standard_normal(16))
    return np.asarray(out, np.float32)


# ----------------------------------------------------------------------------- data split
def test_subject_data_split(nsd):
    s = nsd.subjects[0]
    d = ea.subject_data(nsd, s)
    test = nsd.shared_test_images()
    np.testing.assert_array_equal(d.test_ids, test)
    assert not np.intersect1d(d.train_ids, d.test_ids).size
    assert d.Y_train.shape == (d.train_ids.size, d.columns.size)
    assert d.Y_test.shape == (test.size, d.columns.size)
    Y, ids = nsd.betas(s, progress=False)
    row = np.searchsorted(ids, d.test_ids[0])
    np.testing.assert_allclose(np.nan_to_num(Y[row]), d.Y_test[0])
    assert np.isfinite(d.Y_train).all()


def test_subject_data_roi_name_is_union(nsd):
    s = nsd.subjects[0]
    d = ea.subject_data(nsd, s, roi="streams")
    np.testing.assert_array_equal(d.columns, np.flatnonzero(nsd.roi_volume(s, "streams") > 0))


def test_resolve_subjects(nsd):
    assert ea.resolve_subjects(nsd) == nsd.subjects
    assert ea.resolve_subjects(nsd, [1]) == ["subj01"]
    with pytest.raises(ValueError):
        ea.resolve_subjects(nsd, ["subj08"])


# ----------------------------------------------------------------------------- encoding
@pytest.mark.filterwarnings("ignore:.*edge of the grid.*:UserWarning")
def test_fit_encoders_matches_direct_fit_and_caches(nsd, cache_dir, monkeypatch):
    from brainllm_utils import features
    from brainllm_utils.encoding import RidgeCV

    roi = ("streams", "early")
    res = ea.fit_encoders(nsd, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu")
    assert res.r.shape == (len(nsd.subjects), sum(nsd.n_vertices()))
    s = nsd.subjects[0]
    d = ea.subject_data(nsd, s, roi=roi)
    X_tr = features.build("multihot", nsd, d.train_ids)
    X_te = features.build("multihot", nsd, d.test_ids)
    est = RidgeCV(alphas=ALPHAS, cv=3, device="cpu").fit(X_tr, d.Y_train)
    r = pearson_r(est.predict(X_te), d.Y_test)
    np.testing.assert_allclose(res.r[0, d.columns], r, atol=1e-5)
    outside = np.setdiff1d(np.arange(res.r.shape[1]), d.columns)
    assert np.isnan(res.r[0, outside]).all()
    assert (cache_dir / "encoding").is_dir()
    # second call: read from the cache, never refit
    monkeypatch.setattr(RidgeCV, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    again = ea.fit_encoders(nsd, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu")
    np.testing.assert_array_equal(np.nan_to_num(again.r), np.nan_to_num(res.r))
    coef, icpt = again.encoders[s]
    np.testing.assert_allclose(coef, est.coef_, atol=1e-5)
    assert list(res.summary().index) == nsd.subjects


def test_shuffled_baseline_is_the_encoder_fitted_on_permuted_captions(nsd, cache_dir):
    from brainllm_utils import features
    from brainllm_utils.chapters import ch03_encoding
    from brainllm_utils.encoding import RidgeCV

    roi = ("streams", "ventral")
    enc = ea.fit_encoders(nsd, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu")
    shuf = ea.fit_encoders(nsd, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu", shuffle_seed=3)
    # by hand: the training rows' features permuted with the seed, the test features true
    s = nsd.subjects[0]
    d = ea.subject_data(nsd, s, roi=roi)
    X_tr = features.build("multihot", nsd, d.train_ids)
    X_tr = X_tr[np.random.default_rng(3).permutation(X_tr.shape[0])]
    est = RidgeCV(alphas=ALPHAS, cv=3, device="cpu").fit(X_tr, d.Y_train)
    r = pearson_r(est.predict(features.build("multihot", nsd, d.test_ids)), d.Y_test)
    np.testing.assert_allclose(shuf.r[0, d.columns], r, atol=1e-5)
    assert not np.allclose(shuf.r[0, d.columns], enc.r[0, d.columns])  # a different fit, not a cache hit
    table = ch03_encoding.shuffled_baseline(nsd, enc, roi=roi, seed=3, alphas=ALPHAS, cv=3, device="cpu")
    assert list(table.index) == nsd.subjects and table.attrs["roi"] == roi
    assert table.loc[s, "r_shuffled"] == pytest.approx(np.nanmean(shuf.r[0, d.columns]), abs=1e-6)
    assert table.loc[s, "r"] == pytest.approx(np.nanmean(enc.r[0, d.columns]), abs=1e-6)
    assert table.loc[s, "n_vertices"] == np.isfinite(enc.r[0, d.columns]).sum()
    with pytest.raises(ValueError, match="EncodingResults"):
        ch03_encoding.shuffled_baseline(nsd, enc.r, roi=roi)


def test_group_map_detects_positive_vertices():
    rng = np.random.default_rng(0)
    v = rng.standard_normal((6, 200)) * 0.05
    v[:, :20] += 0.5
    g = ea.group_map(v, q=0.05)
    assert g["significant"][:20].all()
    assert g["significant"][20:].mean() < 0.05
    assert np.isnan(g["thresholded"][~g["significant"]]).all()
    np.testing.assert_allclose(g["mean"], v.mean(0))
    m = np.zeros(200, bool)
    m[:50] = True
    gm = ea.group_map(v, mask=m)
    assert np.isnan(gm["p"][50:]).all() and not gm["significant"][50:].any()
    with pytest.raises(ValueError):
        ea.group_map(v[:1])


def test_inter_subject_ceiling_matches_formula(nsd):
    roi = ("streams", "ventral")
    c = ea.inter_subject_ceiling(nsd, roi=roi)
    data = [ea.subject_data(nsd, s, roi=roi) for s in nsd.subjects]
    others = np.mean([d.Y_test for d in data[1:]], axis=0)
    expected = np.nan_to_num(pearson_r(data[0].Y_test, others))
    np.testing.assert_allclose(c[0, data[0].columns], expected, atol=1e-5)
    with pytest.raises(ValueError):
        ea.inter_subject_ceiling(nsd, subjects=nsd.subjects[:1])


def test_noise_ceiling_r(nsd):
    from brainllm_utils.nsd import noise_ceiling_from_ncsnr

    nc = ea.noise_ceiling_r(nsd)
    s = nsd.subjects[0]
    snr = np.nan_to_num(nsd.ncsnr(s))
    np.testing.assert_allclose(nc[0], np.sqrt(noise_ceiling_from_ncsnr(snr, 3) / 100), atol=1e-6)
    assert nc.shape == (len(nsd.subjects), sum(nsd.n_vertices())) and (nc <= 1).all()


def test_ceiling_summary_perfect_relation(nsd):
    rng = np.random.default_rng(1)
    c = rng.uniform(0.2, 0.8, sum(nsd.n_vertices()))
    rel, table = ea.ceiling_summary(0.5 * c, c, nsd)
    assert rel["slope"] == pytest.approx(0.5)
    assert rel["pearson"] == pytest.approx(1.0)
    assert np.allclose(table["fraction"], 0.5)


def test_subject_mean_ignores_nan():
    v = np.array([[1.0, np.nan, np.nan], [3.0, 2.0, np.nan]])
    m = ea.subject_mean(v)
    assert m[0] == 2.0 and m[1] == 2.0 and np.isnan(m[2])


def test_roi_table_means(nsd):
    s = nsd.subjects[0]
    labels = nsd.roi_volume(s, "streams")
    vals = labels.astype(float)[None]  # value = label code
    df = ea.roi_table(nsd, vals, [s])
    names = nsd.roi_labels("streams")
    for _, row in df.iterrows():
        code = {v: k for k, v in names.items()}[row["roi"]]
        assert row["value"] == code


# ----------------------------------------------------------------------------- partitioning
def test_partition_r2_recovers_band():
    rng = np.random.default_rng(0)
    n, t = 300, 30
    Xa, Xb = rng.standard_normal((n, 6)), rng.standard_normal((n, 6))
    Y = np.zeros((n, t))
    Y[:, :10] = Xa @ rng.standard_normal((6, 10))  # band a only
    Y[:, 10:20] = Xb @ rng.standard_normal((6, 10))  # band b only
    Y += 0.5 * rng.standard_normal((n, t))
    tr, te = slice(0, 200), slice(200, None)
    res = ea.partition_r2(Xa[tr], Xb[tr], Y[tr], Xa[te], Xb[te], Y[te], alphas=ALPHAS, cv=4,
                          device="cpu")
    assert (res["unique_a"][:10] > 0.5).all() and (np.abs(res["unique_b"][:10]) < 0.05).all()
    assert (res["unique_b"][10:20] > 0.5).all() and (np.abs(res["unique_a"][10:20]) < 0.05).all()
    assert (res["joint"][20:] < 0.1).all()
    np.testing.assert_allclose(res["unique_a"] + res["unique_b"] + res["shared"], res["joint"],
                               atol=1e-10)
    # the banded split is computed on test-centred predictions: close to R² where it fits
    np.testing.assert_allclose((res["split_a"] + res["split_b"])[:20], res["joint"][:20], atol=0.02)
    assert (res["weight_a"][:10] > 0.5).all() and (res["weight_a"][10:20] < 0.5).all()


def test_variance_partition_and_table(nsd, cache_dir):
    vp = ea.variance_partition(nsd, bands=("multihot", "multihot"), roi=("streams", "early"),
                               alphas=ALPHAS, cv=3, n_ratios=3, device="cpu")
    assert vp["joint"].shape == (len(nsd.subjects), sum(nsd.n_vertices()))
    ok = np.isfinite(vp["joint"])
    np.testing.assert_allclose((vp["unique_a"] + vp["unique_b"] + vp["shared"])[ok],
                               vp["joint"][ok], atol=1e-5)
    table = ea.partition_table(nsd, vp)
    assert list(table.index) == ["early"]
    assert {"unique_multihot", "shared", "joint", "shared_sem"} <= set(table.columns)
    with pytest.raises(ValueError):
        ea.variance_partition(nsd, bands=("multihot",))


# ----------------------------------------------------------------------------- contrasts
def test_in_silico_contrasts_linear(nsd):
    rng = np.random.default_rng(0)
    n_full = sum(nsd.n_vertices())
    subjects = ["a", "b", "c"]
    cols = {s: np.arange(10, 40) for s in subjects}
    encs = {s: (rng.standard_normal((16, 30)).astype(np.float32), rng.standard_normal(30).astype(np.float32))
            for s in subjects}
    res = ea.EncodingResults(subjects, "fake", np.zeros((3, n_full)), np.zeros((3, n_full)), encs, cols)
    sets = {"x": ["one sentence", "another sentence"], "y": ["a third one"]}
    out = ea.in_silico_contrasts(res, sets=sets, contrasts=[("x", "y")], embed_fn=_fake_embed)
    m = out["x − y"]
    ex, ey = _fake_embed(sets["x"]).mean(0), _fake_embed(sets["y"]).mean(0)
    expected = (ex - ey) @ encs["b"][0]
    np.testing.assert_allclose(m["diff"][1, 10:40], expected, rtol=1e-4, atol=1e-5)
    assert np.isnan(m["diff"][:, :10]).all() and np.isnan(m["t"][40:]).all()
    assert m["significant_fdr"].shape == (n_full,)
    with pytest.raises(ValueError):
        ea.in_silico_contrasts(res, sets=sets, contrasts=[("x", "z")], embed_fn=_fake_embed)


def test_category_contrast_direct(nsd):
    s = nsd.subjects[0]
    cats = nsd.category_names
    counts = nsd.categories(ea.subject_data(nsd, s).train_ids)[0].sum(0)
    a, b = cats[int(np.argsort(-counts)[0])], cats[int(np.argsort(-counts)[1])]
    out = ea.category_contrast(nsd, [s], [a], [b])
    d = ea.subject_data(nsd, s)
    multi, names = nsd.categories(d.train_ids)
    ha, hb = multi[:, names.index(a)] > 0, multi[:, names.index(b)] > 0
    if (ha & ~hb).any() and (hb & ~ha).any():
        exp = d.Y_train[ha & ~hb].mean(0) - d.Y_train[hb & ~ha].mean(0)
        np.testing.assert_allclose(out["diff"][0, d.columns], exp, atol=1e-5)
    assert out["n_a"][0] == (ha & ~hb).sum()
    with pytest.raises(ValueError):
        ea.category_contrast(nsd, [s], ["no such thing"], [b])


def test_contrast_agreement():
    rng = np.random.default_rng(0)
    p = rng.standard_normal((2, 50))
    assert np.allclose(ea.contrast_agreement(p, p), 1.0)
    assert np.allclose(ea.contrast_agreement(p, -p), -1.0)
    p2 = p.copy()
    p2[:, 0] = np.nan
    assert np.allclose(ea.contrast_agreement(p2, p), 1.0)


# ----------------------------------------------------------------------------- decoding
def test_decode_subjects_shapes_and_ranks(nsd, cache_dir):
    dec = ea.decode_subjects(nsd, feature="multihot", alphas=ALPHAS, cv=3, device="cpu")
    S, n_test = len(nsd.subjects), nsd.shared_test_images().size
    assert dec["pred"].shape[:2] == (S, n_test)
    assert dec["true"].shape == (n_test, dec["pred"].shape[2])
    assert dec["r"].shape == dec["rank"].shape == (S, n_test)
    assert dec["rank"].min() >= 0 and dec["rank"].max() <= n_test - 1
    vox = (nsd.roi_volume(nsd.subjects[0], "streams") > 0).sum()
    assert dec["n_voxels"][0] == vox
    again = ea.decode_subjects(nsd, feature="multihot", alphas=ALPHAS, cv=3, device="cpu")
    np.testing.assert_array_equal(again["pred"], dec["pred"])


def test_decode_by_roi(nsd, cache_dir):
    df = ea.decode_by_roi(nsd, rois=("early", "ventral"), feature="multihot", alphas=ALPHAS,
                          cv=3, device="cpu")
    assert len(df) == 2 * len(nsd.subjects)
    assert set(df["roi"]) == {"early", "ventral"}
    assert df["identification"].between(0, 1).all() and df["top1"].between(0, 1).all()
    early = (nsd.roi_volume(nsd.subjects[0], "streams") == 1).sum()
    assert df.query("roi == 'early'")["n_voxels"].iloc[0] == early


def test_cache_false_reads_and_writes_no_cache(nsd, cache_dir):
    """``cache=False`` used to reach the default cache folder (BRAINLLM_CACHE) anyway: the
    functions passed ``folder=None`` to ``cached_arrays``, which then resolved ``cache=True``.
    """
    from brainllm_utils.chapters import ch03_encoding, ch04_decoding

    roi = ("streams", "early")
    calls = [
        lambda: ea.fit_encoders(nsd, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu",
                                cache=False),
        lambda: ch03_encoding.fit_encoders_fracridge(nsd, feature="multihot", roi=roi, fractions=[0.3, 0.7],
                                                     cv=3, device="cpu", cache=False),
        lambda: ea.variance_partition(nsd, bands=("multihot", "multihot"), roi=roi, alphas=ALPHAS,
                                      cv=3, n_ratios=3, device="cpu", cache=False),
        lambda: ea.decode_subjects(nsd, feature="multihot", alphas=ALPHAS, cv=3, device="cpu",
                                   cache=False),
        lambda: ch04_decoding.label_baseline(nsd, feature="multihot", controls=("multihot",),
                                             alphas=ALPHAS, cv=3, device="cpu", cache=False),
    ]
    for call in calls:
        call()
        assert not (cache_dir / "encoding").exists() or not any((cache_dir / "encoding").iterdir())
    # and with the cache on, the same calls do write there (the check above can fail)
    ea.fit_encoders(nsd, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu")
    assert any((cache_dir / "encoding").iterdir())


def test_caption_consistency_identical_captions(nsd):
    ids = nsd.shared_test_images()[:3]
    same = lambda s, **k: np.tile(np.arange(16, dtype=np.float32), (len(s), 1))  # noqa: E731
    assert np.allclose(ea.caption_consistency(nsd, ids, embed_fn=same), 1.0)
    c = ea.caption_consistency(nsd, ids, embed_fn=_fake_embed)
    assert c.shape == (3,) and np.all(np.abs(c) < 1)


def test_default_caption_bank_disjoint(nsd):
    bank, info = ea.default_caption_bank(nsd)
    test_caps = {c for cs in nsd.captions(nsd.shared_test_images()) for c in cs}
    assert not test_caps & set(bank)
    assert len(bank) == len(set(bank)) == info["total"]
    assert info["pool"] > 0 and info["training"] > 0
    none, info0 = ea.default_caption_bank(nsd, pool_per_image=0)
    assert info0["pool"] == 0 and len(none) < len(bank)
    more, info2 = ea.default_caption_bank(nsd, pool_per_image=None)
    assert info2["pool"] >= info["pool"]


def test_reconstruct_returns_own_caption():
    from brainllm_utils.decoding import CaptionRetriever

    bank = ["a cat on a mat", "a dog in a park", "two people eating pizza", "a boat on a lake"]
    ret = CaptionRetriever(bank, embed_fn=_fake_embed, cache=False)
    E = _fake_embed(bank)
    dec = dict(subjects=["s1"], pred=E[None, [2, 0]], true=E[[3, 1]])
    rec = ea.reconstruct_captions(dec, ret)
    assert rec["s1"] == [bank[2], bank[0]]
    assert rec["oracle"] == [bank[3], bank[1]]


def test_caption_metric_table():
    from brainllm_utils.caption_metrics import human_ceiling, score_leave_one_out

    refs = [["a cat sits on a mat", "a cat on the mat", "the cat is sitting on a mat"],
            ["a dog runs in a park", "a dog running in the park", "the dog is in a park"],
            ["two people eat pizza", "people eating pizza at a table", "two friends eat pizza"]]
    perfect = [r[0] for r in refs]
    table = ea.caption_metric_table({"s1": perfect, "oracle": perfect}, refs)
    assert list(table.index) == ["s1", "oracle", "shuffled", "human"]
    assert (table["references"] == "all but one").all()
    # like for like: in round 0 the copied caption is the one left out (scored as the human)
    want = score_leave_one_out(perfect, refs)
    assert table.loc["s1", "bleu4"] == pytest.approx(want["bleu4"]) and table.loc["s1", "bleu4"] < 1.0
    assert table.loc["shuffled", "cider_d"] < table.loc["s1", "cider_d"]
    assert table.loc["human", "cider_d"] == pytest.approx(human_ceiling(refs)["cider_d"])
    assert table.loc["oracle", "kind"] == "oracle"
    paper = ea.caption_metric_table({"s1": perfect, "oracle": perfect}, refs, reference_sets="all")
    assert paper.loc["s1", "bleu4"] == pytest.approx(1.0)  # a copy of a reference is perfect
    assert paper.loc["s1", "references"] == "all" and paper.loc["human", "references"] == "all but one"
    with pytest.raises(ValueError):
        ea.caption_metric_table({"s1": perfect}, refs, reference_sets="four")


def test_gallery_selection():
    s = np.array([0.1, 0.9, 0.5, 0.3, 0.7])
    idx = ea.gallery_selection(s, 3)
    assert idx[0] == 1 and idx[-1] == 0 and idx[1] == 2
    assert ea.gallery_selection(s, 10).size == 5


def test_truth_roi_table(tiny_root):
    df = ea.truth_roi_table(tiny_root, rois=["early", "ventral"])
    assert list(df.index) == ["early", "ventral"]
    assert df.loc["early", "lowlevel"] == 1.0


def test_truth_predictability_and_expected(nsd, tiny_root):
    r2 = ea.truth_predictability(nsd, feature="multihot", alphas=ALPHAS, cv=3, device="cpu")
    assert set(r2) == {"lowlevel", "category", "interaction", "layout"}
    assert all(v <= 1 for v in r2.values())
    exp = ea.expected_fraction(tiny_root, {"lowlevel": 0.25, "category": 1.0, "interaction": 0.0,
                                           "layout": -0.3})
    assert exp["early"] == pytest.approx(0.5)
    assert exp["ventral"] == pytest.approx(1.0)
    assert exp["parietal"] == pytest.approx(0.0)


def test_feature_memo_matches_build(nsd):
    from brainllm_utils import features

    ids = nsd.shared_test_images()
    a = _common._features(nsd, "multihot", ids[:3])
    b = _common._features(nsd, "multihot", ids[::-1])
    np.testing.assert_array_equal(b, features.build("multihot", nsd, ids[::-1]))
    np.testing.assert_array_equal(a, b[::-1][:3])


def test_surface_views_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brainllm_utils import viz

    fig = plt.figure(figsize=(8, 2))
    axes = [viz.surface_axes(fig, 1, 2, i + 1) for i in range(2)]
    vals = np.random.default_rng(0).standard_normal(2 * viz.FSAVERAGE5_VERTICES)
    out = viz.plot_surface_views(vals, axes, views=(("left", "lateral"), ("right", "ventral")))
    assert out == axes
    with pytest.raises(ValueError):
        viz.plot_surface_views(vals, axes[:1], views=(("left", "lateral"), ("right", "ventral")))
    plt.close(fig)


# ----------------------------------------------------------------------------- the paper's single fraction
@pytest.mark.filterwarnings("ignore:.*edge of the grid.*:UserWarning")
def test_fracridge_one_fraction_for_the_whole_brain(nsd, cache_dir, monkeypatch):
    """Fitted in blocks of vertices, the fraction is still the one a single FracRidgeCV over
    all vertices chooses (mean validation R² over vertices), and the test r are its."""
    from brainllm_utils import features
    from brainllm_utils.chapters import ch03_encoding
    from brainllm_utils.encoding import FracRidgeCV

    roi, subjects = ("streams", "ventral"), nsd.subjects[:2]
    s = subjects[0]
    d = ea.subject_data(nsd, s, roi=roi)
    n_rows = d.train_ids.size + d.test_ids.size
    monkeypatch.setattr(_common, "BLOCK_BYTES", 4 * (n_rows + 3 * 80) * 50)  # ~4 blocks of 50 vertices
    X_tr = features.build("multihot", nsd, d.train_ids)
    X_te = features.build("multihot", nsd, d.test_ids)
    grid = ch03_encoding.PAPER_FRACTIONS
    whole = FracRidgeCV(fractions=grid, cv=3, device="cpu").fit(X_tr, d.Y_train)
    # the blocks alone would disagree: choosing per block is not the paper's protocol
    per_block = {int(np.argmax(whole.cv_scores_[:, c0:c0 + 50].mean(1))) for c0 in range(0, d.columns.size, 50)}
    assert len(per_block) > 1
    res = ch03_encoding.fit_encoders_fracridge(nsd, subjects, feature="multihot", roi=roi, cv=3, device="cpu")
    assert res.fractions[s] == pytest.approx(whole.best_fractions_[0])
    assert 0.05 < res.fractions[s] < 1.05  # an interior optimum on this ROI
    np.testing.assert_allclose(res.cv_curves[s], whole.cv_scores_.mean(1), atol=1e-6)
    np.testing.assert_allclose(res.r[0, d.columns], pearson_r(whole.predict(X_te), d.Y_test), atol=1e-5)
    np.testing.assert_allclose(res.alphas[0, d.columns], whole.best_alphas_, rtol=1e-4)
    assert np.isnan(res.r[0, np.setdiff1d(np.arange(res.r.shape[1]), d.columns)]).all()
    monkeypatch.setattr(FracRidgeCV, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    again = ch03_encoding.fit_encoders_fracridge(nsd, subjects, feature="multihot", roi=roi, cv=3, device="cpu")
    assert again.fractions == res.fractions  # from the cache
    with pytest.raises(ValueError):
        ch03_encoding.fit_encoders_fracridge(nsd, subjects, feature="multihot", roi=roi, fractions=[0.5, -1])


@pytest.mark.filterwarnings("ignore:.*edge of the grid.*:UserWarning")
def test_ridge_protocols_table_and_figure(nsd, cache_dir):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brainllm_utils import viz
    from brainllm_utils.chapters import ch03_encoding

    roi, subjects = ("streams", "ventral"), nsd.subjects[:2]
    enc = ea.fit_encoders(nsd, subjects, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu")
    out = ch03_encoding.ridge_protocols(nsd, feature="multihot", roi=roi, cv=3, device="cpu", per_vertex=enc)
    per_vertex, paper = ch03_encoding.PROTOCOLS
    assert out["results"][per_vertex] is enc and set(out["fractions"]) == set(subjects)
    np.testing.assert_array_equal(out["maps"][per_vertex], enc.r)  # same vertices here
    t = out["table"]
    assert set(t["protocol"]) == {per_vertex, paper} and set(t["roi"]) == {"ventral", "all compared vertices"}
    for k, s in enumerate(subjects):
        got = t.query("subject == @s and roi == 'all compared vertices' and protocol == @paper")["r"].item()
        assert got == pytest.approx(np.nanmean(out["maps"][paper][k]))
    wide = t.query("roi == 'ventral'").pivot(index="subject", columns="protocol", values="r")
    assert out["summary"].loc["ventral", "difference"] == pytest.approx((wide[paper] - wide[per_vertex]).mean())
    assert out["summary"].loc["ventral", "n_subjects"] == 2
    with pytest.raises(TypeError):
        ch03_encoding.ridge_protocols(nsd, per_vertex=enc.r)
    # per-vertex fits of the whole surface are compared on the fraction's vertices only
    wide_enc = ea.fit_encoders(nsd, subjects, feature="multihot", alphas=ALPHAS, cv=3, device="cpu")
    again = ch03_encoding.ridge_protocols(nsd, feature="multihot", roi=roi, cv=3, device="cpu", per_vertex=wide_enc)
    inside = np.isfinite(enc.r)
    assert np.isfinite(wide_enc.r).sum() > inside.sum()
    np.testing.assert_array_equal(np.isfinite(again["maps"][per_vertex]), inside)
    np.testing.assert_allclose(again["maps"][per_vertex][inside], wide_enc.r[inside])
    pd_all = again["table"].query("roi == 'all compared vertices' and protocol == @per_vertex")["r"].to_numpy()
    np.testing.assert_allclose(pd_all, np.nanmean(np.where(inside, wide_enc.r, np.nan), axis=1), rtol=1e-6)
    fig, ax = plt.subplots()
    assert viz.plot_ridge_protocols(t, ax=ax, order=["ventral", "all compared vertices"]) is ax
    assert len(ax.patches) == 4 and len(ax.lines) >= 2 * len(subjects)
    plt.close(fig)


def test_fit_encoders_any_estimator_equals_hand_written_sklearn(nsd, cache_dir, monkeypatch):
    """``estimator=sklearn Ridge``: per-vertex test r, penalties and encoders equal a direct
    scikit-learn fit; another estimator (or other parameters) never reads its cache entry."""
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from brainllm_utils import features

    roi = ("streams", "early")
    res = ea.fit_encoders(nsd, feature="multihot", roi=roi, estimator=Ridge(alpha=30.0), progress=True)
    for i, s in enumerate(nsd.subjects):
        d = ea.subject_data(nsd, s, roi=roi)
        X_tr = features.build("multihot", nsd, d.train_ids)
        X_te = features.build("multihot", nsd, d.test_ids)
        ref = Ridge(alpha=30.0).fit(X_tr, d.Y_train)
        P = ref.predict(X_te)
        r = np.array([np.corrcoef(P[:, j], d.Y_test[:, j])[0, 1] for j in range(P.shape[1])])
        r[~d.valid] = np.nan
        np.testing.assert_allclose(res.r[i, d.columns], r, atol=1e-5)
        np.testing.assert_array_equal(res.alphas[i, d.columns], 30.0)
        coef, icpt = res.encoders[s]
        np.testing.assert_allclose(coef, ref.coef_.T, atol=1e-5)
        np.testing.assert_allclose(icpt, ref.intercept_, atol=1e-5)
    # a cache hit for the same estimator (Ridge.fit must not run) ...
    real_fit = Ridge.fit
    monkeypatch.setattr(Ridge, "fit", lambda *a, **k: (_ for _ in ()).throw(AssertionError("refit")))
    again = ea.fit_encoders(nsd, feature="multihot", roi=roi, estimator=Ridge(alpha=30.0))
    np.testing.assert_array_equal(np.nan_to_num(again.r), np.nan_to_num(res.r))
    # ... and a miss for other parameters or another estimator
    with pytest.raises(AssertionError, match="refit"):
        ea.fit_encoders(nsd, feature="multihot", roi=roi, estimator=Ridge(alpha=31.0))
    monkeypatch.setattr(Ridge, "fit", real_fit)
    other = ea.fit_encoders(nsd, feature="multihot", roi=roi,
                            estimator=make_pipeline(StandardScaler(), Ridge(alpha=30.0)))
    assert not np.allclose(np.nan_to_num(other.r), np.nan_to_num(res.r))
    default = ea.fit_encoders(nsd, feature="multihot", roi=roi, alphas=[30.0], cv=3, device="cpu")
    assert not np.array_equal(np.nan_to_num(default.r), np.nan_to_num(other.r))
    with pytest.raises(TypeError, match="estimator"):
        ea.fit_encoders(nsd, feature="multihot", roi=roi, estimator=Ridge)


def test_fit_encoders_non_affine_estimator_has_nan_encoders(nsd, cache_dir):
    from sklearn.neighbors import KNeighborsRegressor

    roi = ("streams", "early")
    with pytest.warns(UserWarning, match="not affine"):
        res = ea.fit_encoders(nsd, subjects=nsd.subjects[:1], feature="multihot", roi=roi,
                              estimator=KNeighborsRegressor(n_neighbors=5))
    s = nsd.subjects[0]
    assert np.isfinite(res.r[0, res.columns[s]]).any()
    assert np.isnan(res.encoders[s][0]).all() and np.isnan(res.alphas[0, res.columns[s]]).all()
