"""brainllm_utils.rsa: RDMs vs scipy, comparisons vs scipy/rsatoolbox, sampling, noise ceilings."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from brainllm_utils import rsa


def _tau_a_bruteforce(x, y):
    """Kendall tau-a by definition: Σ_{i<j} sign(x_i − x_j) sign(y_i − y_j) / (N(N−1)/2)."""
    x, y = np.asarray(x), np.asarray(y)
    sx = np.sign(x[:, None] - x[None, :])
    sy = np.sign(y[:, None] - y[None, :])
    n = len(x)
    return (sx * sy)[np.triu_indices(n, 1)].sum() / (n * (n - 1) / 2)


# --------------------------------------------------------------------------- compute_rdm
@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean"])
def test_compute_rdm_matches_pdist(rng, metric):
    X = rng.normal(size=(23, 40)) + rng.normal(size=(23, 1))
    got = rsa.compute_rdm(X, metric)
    assert got.dtype == np.float32 and got.shape == (23 * 22 // 2,)
    np.testing.assert_allclose(got, pdist(X, metric), atol=2e-6, rtol=1e-6)
    got64 = rsa.compute_rdm(X, metric, dtype="float64")
    np.testing.assert_allclose(got64, pdist(X, metric), atol=1e-6)


@pytest.mark.parametrize("metric", ["correlation", "euclidean"])
def test_compute_rdm_stack(rng, metric):
    X = rng.normal(size=(4, 12, 30))
    got = rsa.compute_rdm(X, metric=metric)
    assert got.shape == (4, 66)
    for k in range(4):
        np.testing.assert_allclose(got[k], pdist(X[k], metric), atol=2e-6)


def test_compute_rdm_rejects_bad_input(rng):
    with pytest.raises(ValueError):
        rsa.compute_rdm(rng.normal(size=(5, 4)), "mahalanobis")
    with pytest.raises(ValueError):
        rsa.compute_rdm(rng.normal(size=5))


def test_rdm_to_square_and_sub_rdm(rng):
    X = rng.normal(size=(15, 9))
    d = pdist(X, "correlation")
    sq = rsa.rdm_to_square(d)
    assert np.allclose(sq, sq.T) and np.all(np.diag(sq) == 0)
    idx = np.array([11, 2, 7, 0, 14])  # unsorted on purpose
    np.testing.assert_allclose(rsa.sub_rdm(d, idx), pdist(X[idx], "correlation"))
    sets = np.array([[0, 3, 5], [1, 2, 14]])
    got = rsa.sub_rdm(np.stack([d, 2 * d]), sets)
    assert got.shape == (2, 2, 3)
    np.testing.assert_allclose(got[1, 1], 2 * pdist(X[[1, 2, 14]], "correlation"))


# --------------------------------------------------------------------------- compare_rdms
def test_compare_rdms_vs_scipy(rng):
    a = rng.normal(size=300)
    b = a + rng.normal(size=300)
    assert rsa.compare_rdms(a, b, "pearson") == pytest.approx(stats.pearsonr(a, b)[0], abs=1e-12)
    assert rsa.compare_rdms(a, b, "spearman") == pytest.approx(
        stats.spearmanr(a, b)[0], abs=1e-12
    )
    cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    assert rsa.compare_rdms(a, b, "cosine") == pytest.approx(cos, abs=1e-12)


def test_compare_rdms_tau_a_with_ties(rng):
    a = rng.normal(size=120)
    b = np.round(a + rng.normal(size=120))  # many ties, as a categorical model
    got = rsa.compare_rdms(a, b, "kendall_tau_a")
    assert got == pytest.approx(_tau_a_bruteforce(a, b), abs=1e-12)
    # tau-a differs from tau-b when there are ties
    assert abs(got - stats.kendalltau(a, b)[0]) > 1e-3


def test_compare_rdms_stacks(rng):
    A = rng.normal(size=(3, 45))
    B = rng.normal(size=(4, 45))
    for method in rsa.COMPARE_METHODS:
        M = rsa.compare_rdms(A, B, method)
        assert M.shape == (3, 4)
        assert M[2, 1] == pytest.approx(rsa.compare_rdms(A[2], B[1], method), abs=1e-12)
    assert rsa.compare_rdms(A[0], B, "pearson").shape == (1, 4)


@pytest.mark.parametrize(
    "ours,theirs",
    [("pearson", "corr"), ("spearman", "spearman"), ("kendall_tau_a", "tau-a"),
     ("cosine", "cosine")],
)
def test_compare_rdms_vs_rsatoolbox(rng, ours, theirs):
    from rsatoolbox.rdm import RDMs, compare

    A = rng.random(size=(3, 190))
    B = np.round(rng.random(size=(2, 190)) * 4)  # ties
    ref = compare(RDMs(A), RDMs(B), method=theirs)
    np.testing.assert_allclose(rsa.compare_rdms(A, B, ours), ref, atol=1e-10)


# --------------------------------------------------------------------------- sample sets
def test_make_sample_sets_partition():
    s = rsa.make_sample_sets(1050, set_size=100, seed=3)
    assert s.shape == (10, 100) and s.dtype == np.int64
    assert len(np.unique(s)) == 1000  # disjoint
    assert s.min() >= 0 and s.max() < 1050
    assert np.all(np.diff(s, axis=1) > 0)  # sorted rows
    np.testing.assert_array_equal(s, rsa.make_sample_sets(1050, 100, seed=3))
    assert not np.array_equal(s, rsa.make_sample_sets(1050, 100, seed=4))
    full = rsa.make_sample_sets(500, 100, seed=0)
    np.testing.assert_array_equal(np.sort(full.ravel()), np.arange(500))  # covering


def test_make_sample_sets_ids_order_invariant(rng):
    ids = rng.choice(73000, size=300, replace=False)
    s1 = rsa.make_sample_sets(ids, 100, seed=1)
    perm = rng.permutation(300)
    s2 = rsa.make_sample_sets(ids[perm], 100, seed=1)
    got1 = {frozenset(ids[row]) for row in s1}
    got2 = {frozenset(ids[perm][row]) for row in s2}
    assert got1 == got2


def test_get_sample_sets_saves_and_reuses(tmp_path, rng):
    ids = rng.choice(73000, size=250, replace=False)
    s = rsa.get_sample_sets("subj01", ids, set_size=100, seed=0, results_dir=tmp_path)
    files = list((tmp_path / "sampling").glob("subj01_*.npy"))
    assert len(files) == 1
    # the stored file holds ids; a reordered copy of the data gets the same images
    perm = rng.permutation(250)
    s2 = rsa.get_sample_sets("subj01", ids[perm], set_size=100, seed=0, results_dir=tmp_path)
    np.testing.assert_array_equal(ids[perm][s2], ids[s])
    # a manually saved partition is reused, not regenerated
    rsa.save_sample_sets(files[0], ids[s][::-1])
    s3 = rsa.get_sample_sets("subj01", ids, set_size=100, seed=0, results_dir=tmp_path)
    np.testing.assert_array_equal(ids[s3], ids[s][::-1])
    with pytest.raises(ValueError):
        rsa.get_sample_sets("subj01", ids[:200], set_size=100, seed=0, results_dir=tmp_path)
    n_sets = rsa.get_sample_sets("subj02", 300, results_dir=tmp_path)
    np.testing.assert_array_equal(n_sets, rsa.load_sample_sets(
        tmp_path / "sampling" / "subj02_sample-sets_size100_seed0.npy"))


# --------------------------------------------------------------------------- sampled RSA
def test_sampled_rsa_matches_naive(rng):
    n = 240
    X = rng.normal(size=(n, 60)).astype(np.float32)
    U = rng.normal(size=(n, 12))
    V = rng.normal(size=(n, 150))  # d > set size: dense path
    sets = rsa.make_sample_sets(n, set_size=40, seed=0)
    m_rdm = pdist(U, "correlation")
    naive = np.array([
        [rsa.compare_rdms(pdist(X[s], "correlation"), pdist(F[s], "correlation"))
         for s in sets]
        for F in (U, V)
    ])
    res = rsa.sampled_rsa(X, [U, V], sets)
    np.testing.assert_allclose(res.per_set, naive, atol=2e-6)
    np.testing.assert_allclose(res.mean, naive.mean(1), atol=2e-6)
    res_rdm = rsa.sampled_rsa(X, m_rdm, sets)
    np.testing.assert_allclose(res_rdm.per_set[0], naive[0], atol=2e-6)
    # full RDMs (no sets) and Spearman
    full = rsa.sampled_rsa(X, U, None, method="spearman")
    assert full.per_set.shape == (1, 1)
    assert full.mean[0] == pytest.approx(
        stats.spearmanr(pdist(X, "correlation"), m_rdm)[0], abs=1e-9)


def test_roi_rsa_frame(rng):
    n = 200
    X = rng.normal(size=(n, 30))
    models = {"a": rng.normal(size=(n, 5)), "b": rng.normal(size=(n, 8))}
    sets = rsa.make_sample_sets(n, 50, seed=0)
    df = rsa.roi_rsa({"V1": X, "FFA": X[:, :10]}, models, sets, subject="subj01",
                     ceilings={"V1": 0.5, "FFA": 0.25})
    assert list(df.columns[:6]) == ["subject", "roi", "model", "r", "r_sd_sets", "n_sets"]
    assert len(df) == 4 and set(df.n_sets) == {4}
    row = df[(df.roi == "FFA") & (df.model == "b")].iloc[0]
    ref = rsa.sampled_rsa(X[:, :10], models["b"], sets).mean[0]
    assert row.r == pytest.approx(ref, abs=1e-9)
    assert row.r_normalised == pytest.approx(ref / 0.25)


# --------------------------------------------------------------------------- noise ceiling
def _simulate_rdms(rng, n_sub, n_pairs, noise_sd):
    shared = rng.normal(size=n_pairs)
    return shared + noise_sd * rng.normal(size=(n_sub, n_pairs))


def test_noise_ceiling_matches_rsatoolbox(rng):
    from rsatoolbox.inference import boot_noise_ceiling
    from rsatoolbox.rdm import RDMs

    R = _simulate_rdms(rng, 6, 300, 1.5) + 5  # positive dissimilarities
    for ours, theirs in [("pearson", "corr"), ("spearman", "spearman"), ("cosine", "cosine")]:
        nc = rsa.noise_ceiling(R, ours)
        lo, hi = boot_noise_ceiling(RDMs(R), method=theirs)
        assert nc.lower == pytest.approx(lo, abs=1e-10)
        assert nc.upper == pytest.approx(hi, abs=1e-10)
        assert nc.lower < nc.upper


def test_noise_ceiling_tracks_shared_signal(rng):
    """LOSO ceiling = corr(s + e_i, s + mean of others' e) = 1/√((1+σ²)(1+σ²/(m))) ."""
    n_sub, n_pairs = 8, 20000
    lows = []
    for sd in [3.0, 1.0, 0.3]:
        R = _simulate_rdms(rng, n_sub, n_pairs, sd)
        nc = rsa.noise_ceiling(R)
        m = n_sub - 1
        expected = 1 / np.sqrt((1 + sd**2) * (1 + sd**2 / m))
        assert nc.lower == pytest.approx(expected, abs=0.02)
        assert nc.per_subject_lower.shape == (n_sub,)
        lows.append(nc.lower)
    assert lows[0] < lows[1] < lows[2]  # more shared signal → higher ceiling


def test_noise_ceiling_per_set_and_normalise(rng):
    R = _simulate_rdms(rng, 4, 3 * 190, 1.0).reshape(4, 3, 190)
    nc = rsa.noise_ceiling(R)
    per_set = [rsa.noise_ceiling(R[:, k]).lower for k in range(3)]
    assert nc.lower == pytest.approx(np.mean(per_set), abs=1e-12)
    assert rsa.normalise_by_ceiling(0.2, nc) == pytest.approx(0.2 / nc.lower)
    assert np.isnan(rsa.normalise_by_ceiling(0.2, 0.0))
    with pytest.raises(ValueError):
        rsa.noise_ceiling(R[:1])


# --------------------------------------------------------------------------- empty feature rows
def test_separate_empty_rows_follows_the_convention(rng):
    X = (rng.random((30, 12)) > 0.7).astype(float)
    X[[2, 9, 17]] = 0.0  # images without categories
    X[5] = 1.0  # constant, but not zero: also undefined for the correlation distance
    empty = np.zeros(30, bool)
    empty[[2, 5, 9, 17]] = True
    F, got = rsa.separate_empty_rows(X)
    assert np.array_equal(got, empty) and F.shape == (30, 13)
    d, d0 = pdist(F, "correlation"), pdist(X[~empty], "correlation")
    i, j = np.triu_indices(30, 1)
    both = ~empty[i] & ~empty[j]
    assert np.allclose(d[both], d0, atol=1e-12)  # non-empty pairs exactly as before
    assert np.allclose(d[empty[i] ^ empty[j]], 1.0)
    assert np.allclose(d[empty[i] & empty[j]], 0.0, atol=1e-12)
    assert np.allclose(rsa.compute_rdm(F, dtype="float64", device="cpu"), d, atol=1e-9)
    Fc, gc = rsa.separate_empty_rows(X, "cosine")  # cosine: only the zero rows
    assert gc.sum() == 3 and np.allclose(pdist(Fc, "cosine")[both], pdist(X[~empty], "cosine"), atol=1e-12)
    with pytest.raises(ValueError):
        rsa.empty_rows(X, "euclidean")


def test_rsa_refuses_empty_model_rows(rng):
    Y = rng.normal(size=(20, 15))
    X = (rng.random((20, 8)) > 0.6).astype(float)
    X[3] = 0.0
    sets = np.arange(20).reshape(2, 10)
    with pytest.raises(ValueError, match="separate_empty_rows"):
        rsa.sampled_rsa(Y, X, sets, device="cpu")
    with pytest.raises(ValueError, match="NaN"):
        rsa.sampled_rsa(Y, rsa.compute_rdm(X, device="cpu"), sets, device="cpu")
    # images outside the sets do not count; with the convention every set scores
    assert np.isfinite(rsa.sampled_rsa(Y, X, sets[1:], device="cpu").mean).all()
    res = rsa.sampled_rsa(Y, rsa.separate_empty_rows(X)[0], sets, device="cpu")
    assert np.isfinite(res.per_set).all()
    assert res.per_set[0, 1] == pytest.approx(rsa.sampled_rsa(Y, X, sets[1:], device="cpu").mean[0], abs=1e-9)
