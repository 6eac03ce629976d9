"""brainllm_utils.stats: FDR vs scipy, t-tests, paired vs unpaired, sign-flip, bootstrap CIs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps
from scipy.spatial.distance import pdist

from brainllm_utils import rsa, stats


def test_fdr_bh_matches_scipy(rng):
    p = np.concatenate([rng.uniform(size=80), rng.uniform(0, 1e-3, size=20)])
    reject, adj = stats.fdr_bh(p, q=0.05)
    np.testing.assert_allclose(adj, sps.false_discovery_control(p, method="bh"), rtol=1e-12)
    np.testing.assert_array_equal(reject, adj <= 0.05)
    assert 15 <= reject.sum() <= 25
    # step-up: the largest k with p_(k) ≤ k q / m is rejected with everything below it
    ps = np.sort(p)
    k = np.max(np.flatnonzero(ps <= np.arange(1, 101) * 0.05 / 100)) + 1
    assert reject.sum() == k


def test_fdr_bh_shapes_and_nans():
    p = np.array([[0.01, np.nan], [0.04, 0.5]])
    reject, adj = stats.fdr_bh(p, q=0.05)
    assert adj.shape == p.shape and np.isnan(adj[0, 1]) and not reject[0, 1]
    np.testing.assert_allclose(adj[np.isfinite(p)],
                               sps.false_discovery_control([0.01, 0.04, 0.5]))


def test_ttest_1samp_fdr(rng):
    vals = rng.normal(size=(8, 50))
    vals[:, :10] += 3.0
    res = stats.ttest_1samp_fdr(vals)
    ref = sps.ttest_1samp(vals, 0.0, axis=0)
    np.testing.assert_allclose(res["t"], ref.statistic)
    np.testing.assert_allclose(res["p_fdr"], sps.false_discovery_control(ref.pvalue))
    assert res["reject"][:10].all() and res["reject"][10:].sum() <= 2


def test_paired_detects_what_unpaired_misses(rng):
    # large between-subject differences, small consistent within-subject gain
    subj = rng.normal(0, 0.1, size=8)
    a = subj + 0.01 + rng.normal(0, 0.002, size=8)
    b = subj
    t, p = stats.paired_ttest(a, b)
    assert p < 1e-3 and t > 0
    assert sps.ttest_ind(a, b).pvalue > 0.05  # what the original analysis used
    md, p_perm = stats.sign_flip_test(a, b)
    assert md == pytest.approx(np.mean(a - b))
    assert p_perm == pytest.approx(2 / 256)  # exact: all 8 differences positive


def test_sign_flip_seeded_and_calibrated(rng):
    d = rng.normal(size=(12, 400))  # H0 true, 4096 > n_perm → random patterns
    m1, p1 = stats.sign_flip_test(d, n_perm=1000, seed=1)
    m2, p2 = stats.sign_flip_test(d, n_perm=1000, seed=1)
    np.testing.assert_array_equal(p1, p2)
    assert p1.shape == (400,) and 0.02 < (p1 < 0.05).mean() < 0.09
    _, p3 = stats.sign_flip_test(d + 1.5, n_perm=1000, seed=1)
    assert (p3 < 0.05).mean() > 0.95
    _, pg = stats.sign_flip_test(d[:, 0] + 2.0, n_perm=1000, alternative="greater")
    _, pl = stats.sign_flip_test(d[:, 0] + 2.0, n_perm=1000, alternative="less")
    assert pg < 0.01 and pl > 0.9


def test_group_and_pairwise_tables(rng):
    rows = []
    for s in range(8):
        base = rng.normal(0.1, 0.05)
        for roi in ["V1", "FFA"]:
            rows.append({"subject": s, "roi": roi, "model": "mpnet", "r": base + 0.02})
            rows.append({"subject": s, "roi": roi, "model": "ctrl",
                         "r": base + rng.normal(0, 0.001)})
    df = pd.DataFrame(rows)
    g = stats.group_tests(df, by=("roi", "model"))
    assert len(g) == 4 and g.significant.all()
    pw = stats.pairwise_model_tests(df, pairs=[("mpnet", "ctrl")])
    assert len(pw) == 2 and pw.significant.all()
    assert (pw.mean_diff > 0.015).all() and (pw.p_signflip <= 2 / 256 + 1e-12).all()


def test_bootstrap_ci_coverage(rng):
    """Percentile bootstrap over images covers the population RDM correlation."""
    n_pop, d_brain = 4000, 20
    F = rng.normal(size=(n_pop, 6))
    W = rng.normal(size=(6, d_brain))
    B = F @ W + 2.0 * rng.normal(size=(n_pop, d_brain))
    sub = rng.choice(n_pop, 600, replace=False)
    truth = rsa.compare_rdms(pdist(B[sub], "correlation"), pdist(F[sub], "correlation"))
    hits, widths = 0, []
    n_rep = 40
    for k in range(n_rep):
        idx = rng.choice(n_pop, 60, replace=False)
        ci = stats.bootstrap_rsa_ci(B[idx], F[idx], n_boot=200, seed=k)
        assert ci["low"] <= ci["high"]
        hits += ci["low"] <= truth <= ci["high"]
        widths.append(ci["high"] - ci["low"])
    assert hits / n_rep >= 0.8
    assert 0.02 < np.mean(widths) < 0.6
    a = stats.bootstrap_rsa_ci(B[:50], F[:50], n_boot=50, seed=3, return_samples=True)
    b = stats.bootstrap_rsa_ci(B[:50], F[:50], n_boot=50, seed=3, return_samples=True)
    np.testing.assert_array_equal(a["samples"], b["samples"])


def test_bootstrap_se_close_to_rsatoolbox(rng):
    """Same resampling scheme as rsatoolbox's eval_bootstrap_pattern (one subject)."""
    from rsatoolbox.inference import eval_bootstrap_pattern
    from rsatoolbox.model import ModelFixed
    from rsatoolbox.rdm import RDMs

    n = 40
    F = rng.normal(size=(n, 5))
    B = F @ rng.normal(size=(5, 30)) + 1.5 * rng.normal(size=(n, 30))
    m_rdm = pdist(F, "correlation")
    b_rdm = pdist(B, "correlation")
    ours = stats.bootstrap_rsa_ci(B, m_rdm, n_boot=400, seed=0)
    res = eval_bootstrap_pattern(ModelFixed("m", RDMs(m_rdm[None])), RDMs(b_rdm[None]),
                                 method="corr", N=400, boot_noise_ceil=False)
    theirs_se = np.nanstd(res.evaluations.ravel(), ddof=1)
    assert ours["estimate"] == pytest.approx(sps.pearsonr(b_rdm, m_rdm)[0], abs=1e-9)
    assert ours["se"] == pytest.approx(theirs_se, rel=0.3)


def _holm_by_closed_testing(p, alpha=None):
    """Holm's adjusted p-values from their definition: the closed testing procedure with a
    Bonferroni test of every intersection (adjusted p_i = max over the subsets S that hold i
    of min(1, |S| · min_{j in S} p_j))."""
    import itertools

    m = len(p)
    out = np.zeros(m)
    for k in range(1, m + 1):
        for S in itertools.combinations(range(m), k):
            local = min(1.0, k * min(p[j] for j in S))
            for i in S:
                out[i] = max(out[i], local)
    return out


def test_holm_matches_closed_testing(rng):
    for _ in range(5):
        p = np.concatenate([rng.uniform(size=4), rng.uniform(0, 0.02, size=3)])
        np.testing.assert_allclose(stats.adjust_pvalues(p, "holm"), _holm_by_closed_testing(p), rtol=1e-12)
    # by hand: 3 tests, sorted 0.01, 0.02, 0.04 → 0.03, 0.04, 0.04
    np.testing.assert_allclose(stats.adjust_pvalues([0.04, 0.01, 0.02], "holm"), [0.04, 0.03, 0.04])
    # Holm is never below BH and never above Bonferroni
    p = rng.uniform(0, 0.1, size=20)
    holm, bh = stats.adjust_pvalues(p, "holm"), stats.adjust_pvalues(p, "bh")
    assert np.all(holm >= bh - 1e-15) and np.all(holm <= np.minimum(1, 20 * p) + 1e-15)
    np.testing.assert_allclose(bh, sps.false_discovery_control(p, method="bh"), rtol=1e-12)


def test_adjust_pvalues_nans_and_errors():
    adj = stats.adjust_pvalues(np.array([[0.01, np.nan], [0.04, 0.5]]), "holm")
    assert np.isnan(adj[0, 1])
    np.testing.assert_allclose(adj[np.isfinite(adj)], _holm_by_closed_testing([0.01, 0.04, 0.5]))
    with pytest.raises(ValueError, match="method='bonf'"):
        stats.adjust_pvalues([0.1], "bonf")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stats.adjust_pvalues([1.5], "holm")
    assert stats.adjust_pvalues([], "holm").size == 0


def _two_models(rng, n_subjects=6, shift=None):
    shift = shift or {"ventral": 0.3, "lateral": 0.0, "early": -0.3}
    rows = []
    for roi, d in shift.items():
        base = rng.normal(0.2, 0.05, n_subjects)
        for i in range(n_subjects):
            rows.append(dict(subject=f"s{i}", roi=roi, model="b", r=base[i]))
            rows.append(dict(subject=f"s{i}", roi=roi, model="a", r=base[i] + d + rng.normal(0, 0.05)))
    return pd.DataFrame(rows)


def test_paired_contrast_tests_match_scipy_and_correct_over_rois(rng):
    df = _two_models(rng)
    out = stats.paired_contrast_tests(df, "a", "b", method="holm")
    assert list(out["roi"]) == ["ventral", "lateral", "early"]
    for _, row in out.iterrows():
        g = df[df.roi == row["roi"]].pivot(index="subject", columns="model", values="r")
        ref = sps.ttest_rel(g["a"], g["b"])
        assert row["t"] == pytest.approx(ref.statistic) and row["p"] == pytest.approx(ref.pvalue)
        assert row["mean_diff"] == pytest.approx((g["a"] - g["b"]).mean()) and row["n"] == 6
    np.testing.assert_allclose(out["p_adj"], _holm_by_closed_testing(out["p"].to_numpy()))
    assert list(out["significant"]) == [True, False, True]  # the sign is the caller's to check
    assert "Holm" in out.attrs["correction"] and "3 roi level(s)" in out.attrs["correction"]
    bh = stats.paired_contrast_tests(df, "a", "b", method="bh", levels=["lateral", "ventral"])
    assert list(bh["roi"]) == ["lateral", "ventral"]
    np.testing.assert_allclose(bh["p_adj"], sps.false_discovery_control(bh["p"]))
    # a subject without one of the scores (a NaN) is left out of its pair, and counted
    holed = df.copy()
    holed.loc[(holed.subject == "s0") & (holed.model == "b"), "r"] = np.nan
    assert set(stats.paired_contrast_tests(holed, "a", "b")["n"]) == {5}
    # one subject: no test, nothing significant
    one = stats.paired_contrast_tests(df[df.subject == "s1"], "a", "b")
    assert (one["n"] == 1).all() and one["p"].isna().all() and not one["significant"].any()
    with pytest.raises(ValueError, match="missing column 'r_normalised'"):
        stats.paired_contrast_tests(df, "a", "b", value="r_normalised")


def test_trend_over_seeds(rng):
    sizes = np.array([250, 500, 1000] * 3)
    seeds = np.repeat([0, 1, 2], 3)
    grow = 0.1 * np.log10(sizes) + rng.normal(0, 0.005, sizes.size)
    res = stats.trend_over_seeds(sizes, grow, seeds)
    slopes = [np.polyfit(np.log10(sizes[seeds == s]), grow[seeds == s], 1)[0] for s in range(3)]
    np.testing.assert_allclose(res["per_seed"]["slope"], slopes)
    ref = sps.ttest_1samp(slopes, 0.0)
    assert res["t"] == pytest.approx(ref.statistic) and res["p"] == pytest.approx(ref.pvalue)
    assert res["grows"] and res["n_seeds"] == 3 and res["mean_spearman"] == pytest.approx(1.0)
    # every seed grows but inconsistently in size: the slopes' test decides, not the sign
    noisy = np.where(seeds == 0, 10.0, 0.001) * np.log10(sizes)
    assert not stats.trend_over_seeds(sizes, noisy, seeds)["grows"]
    assert not stats.trend_over_seeds(sizes, -grow, seeds)["grows"]
    one = stats.trend_over_seeds(sizes[:3], grow[:3], seeds[:3])
    assert one["n_seeds"] == 1 and np.isnan(one["p"]) and not one["grows"]
    with pytest.raises(ValueError, match="distinct sizes"):
        stats.trend_over_seeds([250, 250], [0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="> 0"):
        stats.trend_over_seeds([0, 250], [0.1, 0.2], [0, 0])


def test_tests_refuse_nan_scores():
    """A NaN score must not silently drop its subject from a paired or group test."""
    df = pd.DataFrame({"subject": np.repeat(["s1", "s2", "s3", "s4"], 2),
                       "roi": "ventral", "model": ["a", "b"] * 4,
                       "r": [0.3, 0.1, 0.4, 0.2, 0.35, 0.1, 0.5, 0.3]})
    assert stats.pairwise_model_tests(df)["n"].item() == 4
    bad = df.copy()
    bad.loc[6, "r"] = np.nan  # s4's model a
    with pytest.raises(ValueError, match="s4"):
        stats.pairwise_model_tests(bad)
    with pytest.raises(ValueError, match="NaN"):
        stats.group_tests(bad)
