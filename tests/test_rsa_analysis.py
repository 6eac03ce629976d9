"""brainllm_utils.rsa_analysis: orchestration of ROI RSA, ceilings, model comparisons, searchlights."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist

from brainllm_utils import rsa_analysis as ra
from brainllm_utils import synth
from brainllm_utils.nsd import NSD

TRUTH = ["truth:category", "truth:layout"]  # cheap oracle models: no embedding needed


@pytest.fixture
def results(tmp_path):
    return tmp_path / "results"


@pytest.fixture
def nsd(tiny_root, cache_dir):
    return NSD(tiny_root)


def test_subject_sets_are_saved_seeded_and_reused(nsd, results):
    ids, sets = ra.subject_sets(nsd, "subj01", set_size=10, seed=3, results_dir=results)
    assert np.array_equal(ids, np.unique(nsd.betas("subj01", progress=False)[1]))
    assert sets.shape == (ids.size // 10, 10)
    assert np.unique(sets).size == sets.size  # disjoint
    files = list((results / "rsa").rglob("*.npy"))
    assert len(files) == 1
    again = ra.subject_sets(nsd, "subj01", set_size=10, seed=3, n_sets=2, results_dir=results)[1]
    assert np.array_equal(again, sets[:2])
    other = ra.subject_sets(nsd, "subj01", set_size=10, seed=4, results_dir=results)[1]
    assert not np.array_equal(other, sets)


def test_rsa_design_needs_only_set_images(nsd, results):
    design, needed = ra.rsa_design(nsd, set_size=10, n_sets=1, results_dir=results)
    assert set(design) == set(nsd.subjects)
    union = np.unique(np.concatenate([ids[s].ravel() for ids, s in design.values()]))
    assert np.array_equal(needed, union) and needed.size <= 10 * len(design)


def test_rows_of(rng):
    all_ids = np.array([2, 5, 9, 11])
    assert ra.rows_of(all_ids, [11, 2]).tolist() == [3, 0]
    with pytest.raises(ValueError):
        ra.rows_of(all_ids, [3])


def test_loso_ceiling_matches_definition(nsd):
    nc = ra.loso_ceilings(nsd, rois=["ventral"])
    test = nsd.shared_test_images()
    rdms = [pdist(ra.roi_patterns(nsd, s, ["ventral"], ids=test)[0]["ventral"], "correlation")
            for s in nsd.subjects]
    for k, s in enumerate(nsd.subjects):
        others = np.mean([r for j, r in enumerate(rdms) if j != k], axis=0)
        want = np.corrcoef(rdms[k], others)[0, 1]
        got = nc[(nc.subject == s)]["ceiling"].item()
        assert got == pytest.approx(want, abs=1e-5)
    assert nc["ceiling_group"].iloc[0] == pytest.approx(nc["ceiling"].mean())


def test_subject_rsa_table_matches_direct_computation(nsd, results):
    df = ra.subject_rsa_table(nsd, feature_spaces=TRUTH, rois=["ventral", "parietal"],
                              set_size=10, n_sets=2, device="cpu", results_dir=results)
    assert len(df) == len(nsd.subjects) * 2 * 2
    assert np.allclose(df["r_normalised"], df["r"] / df["ceiling"])
    # one cell by hand: mean over sets of pearson(pdist(brain), pdist(model))
    ids, sets = ra.subject_sets(nsd, "subj02", 10, 0, 2, results)
    Y = ra.roi_patterns(nsd, "subj02", ["ventral"])[0]["ventral"]
    F = synth.load_truth_array(nsd.root, "features_category")[ids]
    want = np.mean([np.corrcoef(pdist(Y[s], "correlation"), pdist(F[s], "correlation"))[0, 1]
                    for s in sets])
    got = df.query("subject == 'subj02' and roi == 'ventral' and model == 'truth:category'")
    assert got["r"].item() == pytest.approx(want, abs=1e-5)


def test_truth_oracle_wins_where_it_was_planted(nsd, results):
    """On the sandbox the planted space must beat the other planted space in its ROI."""
    df = ra.subject_rsa_table(nsd, feature_spaces=TRUTH, rois=["ventral", "parietal"],
                              set_size=20, device="cpu", results_dir=results)
    wt = ra.winner_table(df, card=synth.load_truth(nsd.root))
    assert wt.loc["ventral", "winner"] == "truth:category"
    assert wt.loc["parietal", "winner"] == "truth:layout"
    assert "category" in wt.loc["ventral", "planted"]


def test_model_rdm_correlations(rng):
    A = rng.normal(size=(40, 5))
    feats = {"a": A, "a_scaled": 3 * A + 1, "b": rng.normal(size=(40, 7))}
    sets = np.arange(40).reshape(2, 20)
    M = ra.model_rdm_correlations(feats, sets)
    assert M.loc["a", "a_scaled"] == pytest.approx(1.0, abs=1e-9)
    assert np.allclose(M.to_numpy(), M.to_numpy().T)
    want = np.mean([np.corrcoef(pdist(A[s], "correlation"),
                                pdist(feats["b"][s], "correlation"))[0, 1] for s in sets])
    assert M.loc["a", "b"] == pytest.approx(want, abs=1e-6)


def test_role_reversal_similarity(rng):
    ids = np.arange(10, 30)
    X = rng.normal(size=(20, 8))
    Y = X.copy()
    Y[1] = Y[0]  # images 10 and 11 identical in Y
    df = ra.role_reversal_similarity({"x": X, "y": Y}, ids, [[10, 11]], n_random=50)
    rev = df[(df.kind == "role-reversed")].set_index("model")["similarity"]
    assert rev["y"] == pytest.approx(1.0)
    assert rev["x"] == pytest.approx(np.corrcoef(X[0], X[1])[0, 1])
    rnd = df[df.kind == "random"]
    assert (rnd.id_a != rnd.id_b).all() and len(rnd) == 100


def test_role_reversal_pairs_subset():
    card = {"role_reversed_pairs": [[1, 2], [3, 4], [5, 6]]}
    assert ra.role_reversal_pairs(card).shape == (3, 2)
    sub = ra.role_reversal_pairs(card, n_pairs=2, seed=1)
    assert sub.shape == (2, 2) and np.array_equal(sub, ra.role_reversal_pairs(card, 2, 1))


def test_caption_variants_keep_the_bag_of_words(nsd):
    img = int(nsd.shared_test_images()[0])
    tab = ra.caption_variants(nsd, img)
    assert len(tab) == len(nsd.captions([img])[0])
    from brainllm_utils.features import tag_captions

    for cap, scr in zip(tab["caption (mpnet)"], tab["scrambled"]):
        toks = [w for w, _ in tag_captions([cap])[0]]
        assert sorted(scr.split(" ")) == sorted(toks)


def test_paired_differences_and_winner_table():
    df = pd.DataFrame(dict(subject=["s1", "s2", "s3"] * 2, roi="v",
                           model=["mpnet"] * 3 + ["ctl"] * 3, r=[0.5, 0.6, 0.7, 0.1, 0.3, 0.2]))
    d = ra.paired_differences(df)
    assert np.allclose(d.sort_values("subject")["diff"], [0.4, 0.3, 0.5])
    wt = ra.winner_table(df)
    assert wt.loc["v", "winner"] == "mpnet" and wt.loc["v", "mpnet_rank"] == 1
    assert wt.loc["v", "diff"] == pytest.approx(0.4)
    assert 0 < wt.loc["v", "p_paired"] < 0.05
    assert wt.loc["v", "tied_with"] == "" and wt.loc["v", "n_pairs"] == 1


def _scores(means, n_subjects=6, noise=0.02, seed=0):
    """Tidy scores of models with the given means in one ROI ``v``; each subject adds its own
    offset to every model (what the paired test removes)."""
    rng = np.random.default_rng(seed)
    offset = rng.normal(0, 0.2, n_subjects)
    rows = [dict(subject=f"s{i}", roi="v", model=m, r=mu + offset[i] + rng.normal(0, noise))
            for m, mu in means.items() for i in range(n_subjects)]
    return pd.DataFrame(rows)


def test_winner_table_tests_every_pair_with_a_stated_correction():
    from scipy import stats as sps

    # a clear winner: ahead of every other model by far more than the noise
    df = _scores({"a": 0.9, "b": 0.5, "c": 0.45, "d": 0.1})
    wt = ra.winner_table(df)
    assert wt.loc["v", "winner"] == "a" and wt.loc["v", "best"] == "a"
    assert wt.loc["v", "n_pairs"] == 6 and wt.loc["v", "n_subjects"] == 6
    assert "Benjamini–Hochberg" in wt.loc["v", "correction"] and "6 pairs of 4 models" in wt.loc["v", "correction"]
    # the p-values are scipy's paired t over all 6 pairs, BH-adjusted together
    wide = df.pivot(index="subject", columns="model", values="r")
    pairs = [("a", "b"), ("a", "c"), ("a", "d"), ("b", "c"), ("b", "d"), ("c", "d")]
    raw = np.array([sps.ttest_rel(wide[x], wide[y]).pvalue for x, y in pairs])
    adj = sps.false_discovery_control(raw)
    assert wt.loc["v", "p_paired"] == pytest.approx(raw[0])
    assert wt.loc["v", "p_adjusted"] == pytest.approx(adj[0])
    assert wt.loc["v", "max_p_vs_best"] == pytest.approx(adj[:3].max())
    holm = ra.winner_table(df, correction="holm")
    assert "Holm" in holm.loc["v", "correction"] and holm.loc["v", "p_adjusted"] >= wt.loc["v", "p_adjusted"]


def test_winner_table_declares_a_tie_when_the_best_is_not_separable():
    # a and b differ by much less than the noise: the runner-up test alone (the old table)
    # would still name a winner by its mean; here the pair is not significant, so a tie
    df = _scores({"a": 0.50, "b": 0.49, "c": 0.1}, noise=0.05)
    wt = ra.winner_table(df)
    assert wt.loc["v", "best"] in ("a", "b")
    assert wt.loc["v", "winner"].startswith("tied: ") and set(wt.loc["v", "winner"][6:].split(", ")) == {"a", "b"}
    assert wt.loc["v", "tied_with"] in ("a", "b") and wt.loc["v", "max_p_vs_best"] > 0.05
    # the best beats the runner-up but not a third model with a lower, noisier mean: still a
    # tie (testing only the winner against the runner-up would have declared a winner)
    df = _scores({"a": 0.6, "b": 0.4}, noise=0.01)
    noisy = pd.DataFrame([dict(subject=f"s{i}", roi="v", model="c", r=v)
                          for i, v in enumerate([1.5, -1.0, 1.4, -0.9, 1.3, -0.8])])
    wt = ra.winner_table(pd.concat([df, noisy]))
    assert wt.loc["v", "best"] == "a" and wt.loc["v", "runner_up"] == "b"
    assert wt.loc["v", "p_adjusted"] < 0.05  # a − b significant even after the correction
    assert wt.loc["v", "winner"] == "tied: a, c" and wt.loc["v", "tied_with"] == "c"


def test_winner_table_leaves_out_models_without_scores():
    df = _scores({"a": 0.9, "b": 0.5})
    nan = pd.DataFrame([dict(subject=f"s{i}", roi="v", model="c", r=np.nan) for i in range(6)])
    wt = ra.winner_table(pd.concat([df, nan]))
    assert wt.loc["v", "winner"] == "a" and wt.loc["v", "n_pairs"] == 1  # c is no candidate, no tie
    with pytest.raises(ValueError, match="no finite 'r' score in ROI 'v'"):
        ra.winner_table(nan)


def test_winner_table_with_one_subject_is_untested():
    wt = ra.winner_table(_scores({"a": 0.9, "b": 0.1}, n_subjects=1))
    assert wt.loc["v", "winner"] == "untested: a" and np.isnan(wt.loc["v", "p_paired"])
    assert wt.loc["v", "correction"].startswith("none: 1 subject")
    with pytest.raises(ValueError, match="correction='bonferroni'"):
        ra.winner_table(_scores({"a": 0.9, "b": 0.1}), correction="bonferroni")


def test_paper_reference_numbers():
    ref = ra.paper_reference_numbers()
    assert ref.loc["LLM-trained RCNN (seed avg)", "lateral"] == 0.468
    assert (ref[["ventral", "lateral", "parietal"]].idxmax() == "LLM-trained RCNN (seed avg)").all()


def test_group_searchlight_test():
    rng = np.random.default_rng(0)
    M = rng.normal(0, 1, size=(6, 50))
    M[:, :10] += 5
    M[2, 49] = np.nan
    out = ra.group_searchlight_test(M)
    assert out["reject"][:10].all() and not out["reject"][49]
    assert np.isnan(out["t"][49]) and np.isnan(out["thresholded"][~out["reject"]]).all()


def test_surface_and_volume_searchlight_cached(nsd, results):
    ids, sets = ra.subject_sets(nsd, "subj01", 10, 0, 2, results)
    used = np.unique(sets)
    feats = (ids[used], synth.load_truth_array(nsd.root, "features_category")[ids[used]])
    kw = dict(set_size=10, n_sets=2, device="cpu", features=feats, results_dir=results)
    m = ra.surface_searchlight(nsd, "subj01", "truth:category", radius_mm=8.0, **kw)
    assert m.shape == (sum(nsd.n_vertices()),) and np.isfinite(m).sum() > 100
    assert np.nanmax(np.abs(m)) <= 1
    again = ra.surface_searchlight(nsd, "subj01", "truth:category", radius_mm=8.0, **kw)
    np.testing.assert_array_equal(m, again)
    v = ra.volume_searchlight(nsd, "subj01", "truth:category", radius=2.0, **kw)
    assert v.shape == nsd.brainmask("subj01").shape
    assert np.isfinite(v).sum() > 10 and not np.isfinite(v[~nsd.brainmask("subj01")]).any()



def test_batched_searchlights_equal_one_model_at_a_time(nsd, results, tmp_path):
    """surface_searchlights / volume_searchlights: each map equals the one-model searchlight
    (uncached), each is cached under the one-model key (a later one-model call reads it),
    and the models come back in the order given."""
    ids, sets = ra.subject_sets(nsd, "subj01", 10, 0, 2, results)
    used = np.unique(sets)
    models = {m: (ids[used], synth.load_truth_array(nsd.root, f"features_{m[6:]}")[ids[used]])
              for m in reversed(TRUTH)}
    kw = dict(set_size=10, n_sets=2, device="cpu", results_dir=results)
    for batched, single, size in ((ra.surface_searchlights, ra.surface_searchlight, {"radius_mm": 8.0}),
                                  (ra.volume_searchlights, ra.volume_searchlight, {"radius": 2.0})):
        cache = tmp_path / batched.__name__
        maps = batched(nsd, "subj01", models, cache=cache, **size, **kw)
        assert list(maps) == list(models)
        for name, fx in models.items():
            alone = single(nsd, "subj01", name, features=fx, cache=False, **size, **kw)
            assert np.isfinite(alone).sum() > 10
            np.testing.assert_allclose(maps[name], alone, rtol=0, atol=2e-6, equal_nan=True)
            hit = single(nsd, "subj01", name, features=fx, cache=cache, **size, **kw)
            np.testing.assert_array_equal(hit, maps[name])
        with pytest.raises(ValueError, match="models"):
            batched(nsd, "subj01", {}, **size, **kw)
    # names alone: the registry's feature spaces, built for the sets' images
    named = ra.surface_searchlights(nsd, "subj01", [TRUTH[0]], radius_mm=8.0, cache=False, **kw)
    alone = ra.surface_searchlight(nsd, "subj01", TRUTH[0], radius_mm=8.0, features=models[TRUTH[0]],
                                   cache=False, **kw)
    np.testing.assert_allclose(named[TRUTH[0]], alone, rtol=0, atol=2e-6, equal_nan=True)

def test_searchlight_centre_matches_direct_rsa(nsd, results):
    """One disc's value equals the sampled RSA of that disc's vertices."""
    from brainllm_utils.rsa import sampled_rsa
    from brainllm_utils.searchlight import surface_neighbourhoods

    ids, sets = ra.subject_sets(nsd, "subj01", 10, 0, 2, results)
    used = np.unique(sets)
    F = synth.load_truth_array(nsd.root, "features_layout")[ids[used]]
    m = ra.surface_searchlight(nsd, "subj01", "truth:layout", radius_mm=8.0, set_size=10,
                               n_sets=2, device="cpu", features=(ids[used], F),
                               results_dir=results, cache=False)
    Y = np.asarray(nsd.betas("subj01", progress=False)[0])[used]
    centres, neigh = surface_neighbourhoods(ra.fsaverage_mesh(nsd, "left"), 8.0,
                                            mask=np.isfinite(Y[:, :nsd.n_vertices()[0]]).all(0))
    k = len(centres) // 2
    want = sampled_rsa(Y[:, neigh[k]], F, np.searchsorted(used, sets), device="cpu").mean[0]
    assert m[centres[k]] == pytest.approx(want, abs=1e-5)


# --------------------------------------------------------------------------- the paper's searchlight
def test_paper_searchlight_maps_are_the_projected_volume_maps(nsd, results):
    from brainllm_utils.chapters import ch02_rsa
    from brainllm_utils.nsd import project_to_fsaverage

    design, needed = ra.rsa_design(nsd, set_size=10, n_sets=2, results_dir=results)
    feats = {m: (needed, synth.load_truth_array(nsd.root, f"features_{m[6:]}")[needed]) for m in TRUTH}
    out = ch02_rsa.paper_searchlight_maps(nsd, None, feats, radius=2.0, set_size=10, n_sets=2,
                                          device="cpu", results_dir=results)
    n_v = sum(nsd.n_vertices())
    assert set(out["fsaverage"]) == set(TRUTH) and out["n_sets"] == {s: sets.shape[0] for s, (_, sets) in design.items()}
    for s in nsd.subjects:
        vol = ra.volume_searchlight(nsd, s, TRUTH[0], radius=2.0, set_size=10, n_sets=2, device="cpu",
                                    features=feats[TRUTH[0]], results_dir=results)
        np.testing.assert_array_equal(out["volume"][TRUTH[0]][s], vol)
        fs = out["fsaverage"][TRUTH[0]][s]
        assert fs.shape == (n_v,) and np.isfinite(fs).all()
        np.testing.assert_allclose(fs, project_to_fsaverage(vol, s, nsd), atol=1e-12)
        cov = out["coverage"][s]
        assert cov.shape == (n_v,) and 0.3 < np.median(cov) < 1.3
    with pytest.raises(ValueError, match="radius"):
        ch02_rsa.paper_searchlight_maps(nsd, None, feats, radius=1.0)


def test_searchlight_difference_test_is_a_paired_t_test():
    from scipy import stats

    from brainllm_utils.chapters import ch02_rsa

    rng = np.random.default_rng(4)
    a = {f"s{k}": rng.normal(size=40) for k in range(6)}
    b = {s: v - 0.8 * (np.arange(40) < 10) + rng.normal(0, 0.1, 40) for s, v in a.items()}
    out = ch02_rsa.searchlight_difference_test(a, b)
    t, p = stats.ttest_rel(np.stack(list(a.values())), np.stack(list(b.values())), axis=0)
    np.testing.assert_allclose(out["t"], t)
    np.testing.assert_allclose(out["p"], p)
    assert out["reject"][:10].all() and out["reject"][10:].sum() <= 2
    np.testing.assert_allclose(out["diff"]["s0"], a["s0"] - b["s0"])
    with pytest.raises(ValueError, match="same subjects"):
        ch02_rsa.searchlight_difference_test(a, {"s0": b["s0"]})
    table = ch02_rsa.significant_by_roi(out, np.repeat([1, 2], 20), {0: "Unknown", 1: "x", 2: "y"})
    assert table.loc["x", "n_significant"] == 10 and table.loc["y", "n_significant"] <= 2
    assert ch02_rsa.significant_by_roi(out, np.repeat([1, 2], 20), {1: "x", 2: "y"}, sign=-1)["n_significant"].sum() == 0


# --------------------------------------------------------------------------- empty multi-hot rows
@pytest.fixture(scope="module")
def empty_root(tmp_path_factory):
    """tiny with 40 NSD images without any COCO instance (all-zero multi-hot rows)."""
    root = tmp_path_factory.mktemp("empty") / "nsd"
    return synth.make_synthetic_nsd(root, "tiny", seed=0, overrides={"no_instance_images": 40})


def _convention_rdm(F):
    """The book's rule written out pair by pair: 1 − r where both rows have categories,
    1 between an empty and a non-empty row, 0 between two empty rows."""
    empty = ~F.any(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = pdist(F, "correlation")
    i, j = np.triu_indices(len(F), 1)
    d[empty[i] ^ empty[j]] = 1.0
    d[empty[i] & empty[j]] = 0.0
    return d


def test_empty_multihot_rows_keep_every_subject(empty_root, cache_dir, tmp_path):
    nsd = NSD(empty_root)
    results = tmp_path / "results"
    df = ra.subject_rsa_table(nsd, feature_spaces=["multihot", "truth:category"], rois=["ventral"],
                              set_size=10, device="cpu", results_dir=results)
    assert df["r"].notna().all() and set(df["subject"]) == set(nsd.subjects)
    assert (df.query("model == 'truth:category'")["n_empty"] == 0).all()
    multi = df.query("model == 'multihot'").set_index("subject")
    assert multi["n_empty"].sum() > 0
    # by hand, for a subject with empty images in its sets
    s = multi["n_empty"].idxmax()
    ids, sets = ra.subject_sets(nsd, s, 10, 0, None, results)
    Y = ra.roi_patterns(nsd, s, ["ventral"])[0]["ventral"]
    F = nsd.categories(ids)[0].astype(np.float64)
    assert multi.loc[s, "n_empty"] == int((~F[np.unique(sets)].any(1)).sum())
    per_set = [np.corrcoef(pdist(Y[k], "correlation"), _convention_rdm(F[k]))[0, 1] for k in sets]
    assert multi.loc[s, "r"] == pytest.approx(np.mean(per_set), abs=1e-5)
    # the plain correlation distance would have made this subject's score NaN
    with np.errstate(invalid="ignore", divide="ignore"):
        plain = [np.corrcoef(pdist(Y[k], "correlation"), pdist(F[k], "correlation"))[0, 1] for k in sets]
    assert np.isnan(np.mean(plain))


def test_empty_rows_in_model_correlations(empty_root, cache_dir, tmp_path, rng):
    nsd = NSD(empty_root)
    ids, sets = ra.subject_sets(nsd, "subj01", 10, 0, None, tmp_path / "results")
    F = nsd.categories(ids)[0]
    G = rng.normal(size=(ids.size, 6))
    M = ra.model_rdm_correlations({"multihot": F, "random": G}, sets)
    assert M.attrs["n_empty"] == {"multihot": int((~F[np.unique(sets)].any(1)).sum()), "random": 0}
    assert M.attrs["n_empty"]["multihot"] > 0
    want = np.mean([np.corrcoef(_convention_rdm(F[k].astype(float)), pdist(G[k], "correlation"))[0, 1]
                    for k in sets])
    assert M.loc["multihot", "random"] == pytest.approx(want, abs=1e-6)


def test_long_steps_show_progress_bars(nsd, results, capfd):
    """The chapters' long steps draw tqdm bars (stderr here, widgets in a notebook), with
    the same numbers as without; progress=False draws none."""
    ids = np.unique(ra.subject_sets(nsd, "subj01", 10, 0, 2, results)[1])
    capfd.readouterr()
    with_bar = ra.build_feature_table(nsd, TRUTH, ids)
    assert "feature spaces" in capfd.readouterr().err
    without = ra.build_feature_table(nsd, TRUTH, ids, progress=False)
    assert "feature spaces" not in capfd.readouterr().err
    assert all(np.array_equal(with_bar[k], without[k]) for k in TRUTH)
    kw = dict(feature_spaces=TRUTH, rois=["ventral"], set_size=10, n_sets=2, device="cpu",
              results_dir=results)
    ra.subject_rsa_table(nsd, **kw)
    assert "ROI RSA" in capfd.readouterr().err
    ra.subject_rsa_table(nsd, progress=False, **kw)
    assert "ROI RSA" not in capfd.readouterr().err
