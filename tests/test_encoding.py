"""Tests of brainllm_utils.encoding against scikit-learn, himalaya and direct formulas."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from brainllm_utils import encoding as enc  # noqa: E402
from brainllm_utils.encoding import _solvers  # noqa: E402
from brainllm_utils.encoding import (  # noqa: E402
    BandedRidgeCV,
    FracRidgeCV,
    RidgeCV,
    band_weight_grid,
    in_silico_contrast,
    kfold_splits,
    noise_ceiling_relation,
    pearson_r,
    train_test_encoding,
)

pytestmark = pytest.mark.filterwarnings("ignore:.*edge of the grid.*:UserWarning")


def _data(rng, n=90, p=12, t=30, noise=1.0, offset=3.0):
    X = rng.standard_normal((n, p)) + 0.5
    W = rng.standard_normal((p, t)) * rng.uniform(0, 1, t)
    Y = X @ W + noise * rng.standard_normal((n, t)) + offset
    return X, Y


def _bands(rng, n=120, pa=8, pb=5, t=45):
    XA, XB = rng.standard_normal((n, pa)), rng.standard_normal((n, pb))
    a = rng.uniform(0, 1, t)
    a[: t // 3], a[t // 3 : 2 * t // 3] = 1.0, 0.0
    Y = (XA @ rng.standard_normal((pa, t))) * a + (XB @ rng.standard_normal((pb, t))) * (1 - a)
    Y += 1.5 * rng.standard_normal((n, t))
    return XA, XB, Y, a


# ----------------------------------------------------------------------------- basics
def test_kfold_matches_sklearn():
    from sklearn.model_selection import KFold

    for n, k in [(10, 3), (11, 5), (7, 7)]:
        ours = kfold_splits(n, k)
        ref = list(KFold(k).split(np.zeros(n)))
        assert len(ours) == len(ref)
        for (a, b), (c, d) in zip(ours, ref):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_pearson_r_columns_and_constant():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((50, 3)), rng.standard_normal((50, 3))
    ref = [np.corrcoef(a[:, j], b[:, j])[0, 1] for j in range(3)]
    np.testing.assert_allclose(pearson_r(a, b), ref, rtol=1e-12)
    np.testing.assert_allclose(pearson_r(a.T, b.T, axis=1), ref, rtol=1e-12)
    assert np.isnan(pearson_r(np.ones(5), np.arange(5.0)))  # one rule: NaN, the caller decides


# ----------------------------------------------------------------------------- vs scikit-learn Ridge
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("solver", ["primal", "kernel"])
def test_equals_sklearn_ridge_fixed_alpha(rng, fit_intercept, solver):
    from sklearn.linear_model import Ridge

    X, Y = _data(rng)
    m = RidgeCV(alphas=[7.0], device="cpu", dtype="float64", fit_intercept=fit_intercept, solver=solver).fit(X, Y)
    s = Ridge(alpha=7.0, fit_intercept=fit_intercept).fit(X, Y)
    np.testing.assert_allclose(m.coef_, s.coef_.T, atol=1e-10)
    np.testing.assert_allclose(m.intercept_, s.intercept_ if fit_intercept else 0.0, atol=1e-9)
    np.testing.assert_allclose(m.predict(X), s.predict(X), atol=1e-9)
    assert np.all(m.best_alphas_ == 7.0)


def test_float32_close_to_sklearn(rng):
    from sklearn.linear_model import Ridge

    X, Y = _data(rng)
    m = RidgeCV(alphas=[3.0], device="cpu").fit(X, Y)
    s = Ridge(alpha=3.0).fit(X, Y)
    assert m.coef_.dtype == np.float32
    np.testing.assert_allclose(m.predict(X), s.predict(X), atol=2e-4)


def test_score_targets_is_per_target_pearson_and_score_is_sklearn_r2(rng):
    from sklearn.metrics import r2_score as sk_r2

    X, Y = _data(rng)
    m = RidgeCV(alphas=[1.0, 10.0], device="cpu").fit(X[:60], Y[:60])
    r = m.score_targets(X[60:], Y[60:])
    assert r.shape == (Y.shape[1],)
    np.testing.assert_allclose(r, pearson_r(m.predict(X[60:]), Y[60:]))
    r2 = m.score_targets(X[60:], Y[60:], metric="r2")
    np.testing.assert_allclose(r2, sk_r2(Y[60:], m.predict(X[60:]), multioutput="raw_values"), atol=1e-12)
    s = m.score(X[60:], Y[60:])  # scikit-learn's score: one float, mean R² over targets
    assert isinstance(s, float)
    assert s == pytest.approx(sk_r2(Y[60:], m.predict(X[60:])), abs=1e-12)
    assert s == pytest.approx(r2.mean(), abs=1e-12)
    with pytest.raises(ValueError, match="metric"):
        m.score_targets(X[60:], Y[60:], metric="mse")
    np.testing.assert_allclose(train_test_encoding(X[:60], Y[:60], X[60:], Y[60:], RidgeCV(alphas=[1.0, 10.0], device="cpu")), r, rtol=1e-6)


def test_cv_scores_match_direct_computation(rng):
    """cv_scores_ = mean over contiguous folds of per-fold R² of a refit sklearn Ridge."""
    from sklearn.linear_model import Ridge

    X, Y = _data(rng, n=50, t=4)
    alphas = [0.3, 30.0]
    m = RidgeCV(alphas=alphas, cv=4, device="cpu", dtype="float64").fit(X, Y)
    ref = np.zeros((2, 4))
    for ai, a in enumerate(alphas):
        for tr, va in kfold_splits(50, 4):
            P = Ridge(alpha=a).fit(X[tr], Y[tr]).predict(X[va])
            ref[ai] += enc.r2_score(Y[va], P) / 4
    np.testing.assert_allclose(m.cv_scores_, ref, atol=1e-10)
    np.testing.assert_array_equal(m.best_alphas_, np.asarray(alphas)[ref.argmax(0)])


def test_kernel_equals_primal_cv(rng):
    X, Y = _data(rng, n=40, p=10, t=20)
    alphas = np.logspace(-2, 3, 7)
    a = RidgeCV(alphas=alphas, device="cpu", dtype="float64", solver="primal").fit(X, Y)
    b = RidgeCV(alphas=alphas, device="cpu", dtype="float64", solver="kernel").fit(X, Y)
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, atol=1e-9)
    np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-9)


def test_kernel_auto_when_p_gt_n(rng):
    from sklearn.linear_model import Ridge

    X, Y = _data(rng, n=30, p=80, t=5)
    m = RidgeCV(alphas=[2.0], device="cpu", dtype="float64").fit(X, Y)
    assert m.solver_ == "kernel"
    np.testing.assert_allclose(m.coef_, Ridge(alpha=2.0).fit(X, Y).coef_.T, atol=1e-9)


def test_chunked_equals_unchunked(rng):
    X, Y = _data(rng, t=37)
    alphas = np.logspace(-2, 4, 8)
    a = RidgeCV(alphas=alphas, device="cpu", dtype="float64").fit(X, Y)
    b = RidgeCV(alphas=alphas, device="cpu", dtype="float64", chunk_size=5).fit(X, Y)
    assert b.n_chunks_ == 8 and a.n_chunks_ == 1
    np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-12)
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, atol=1e-12)
    XA, XB, Y2, _ = _bands(rng, t=20)
    c = BandedRidgeCV(alphas=alphas, device="cpu", dtype="float64").fit([XA, XB], Y2)
    d = BandedRidgeCV(alphas=alphas, device="cpu", dtype="float64", chunk_size=3).fit([XA, XB], Y2)
    np.testing.assert_array_equal(c.best_band_weights_, d.best_band_weights_)
    np.testing.assert_allclose(c.coef_, d.coef_, atol=1e-12)


def test_memory_budget_drives_chunks(rng):
    X, Y = _data(rng, t=40)
    m = RidgeCV(alphas=[1.0, 10.0], device="cpu", memory_budget=1).fit(X, Y)
    assert m.n_chunks_ > 1


def test_global_alpha_and_groups_splitter(rng):
    from sklearn.model_selection import GroupKFold

    X, Y = _data(rng, t=25)
    alphas = np.logspace(-2, 4, 7)
    m = RidgeCV(alphas=alphas, device="cpu", dtype="float64", alpha_per_target=False).fit(X, Y)
    assert len(np.unique(m.best_alphas_)) == 1
    full = RidgeCV(alphas=alphas, device="cpu", dtype="float64").fit(X, Y)
    assert m.best_alphas_[0] == alphas[np.argmax(full.cv_scores_.mean(1))]
    groups = np.repeat(np.arange(9), 10)
    g = RidgeCV(alphas=alphas, cv=GroupKFold(3), device="cpu", dtype="float64").fit(X, Y, groups=groups)
    ref = np.zeros((len(alphas), Y.shape[1]))
    from sklearn.linear_model import Ridge

    for tr, va in GroupKFold(3).split(X, Y, groups):
        assert len(np.intersect1d(groups[tr], groups[va])) == 0
        for ai, a in enumerate(alphas):
            ref[ai] += enc.r2_score(Y[va], Ridge(alpha=a).fit(X[tr], Y[tr]).predict(X[va])) / 3
    np.testing.assert_allclose(g.cv_scores_, ref, atol=1e-9)


def test_splits_that_do_not_partition_the_samples(rng):
    """K-fold validation sets partition the samples (the full X'X and X'Y are then the folds'
    sums); ShuffleSplit's overlap and miss samples: the scores still match scikit-learn's
    Ridge fold by fold, and the refit on all samples matches Ridge."""
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import KFold, ShuffleSplit

    X, Y = _data(rng, t=12)
    alphas = np.logspace(-2, 4, 7)
    for cv in (KFold(4), ShuffleSplit(3, test_size=0.3, random_state=0)):
        m = RidgeCV(alphas=alphas, cv=cv, device="cpu", dtype="float64").fit(X, Y)
        splits = list(cv.split(X))
        ref = np.zeros((len(alphas), Y.shape[1]))
        for tr, va in splits:
            for ai, a in enumerate(alphas):
                pred = Ridge(alpha=a).fit(X[tr], Y[tr]).predict(X[va])
                ref[ai] += enc.r2_score(Y[va], pred) / len(splits)
        np.testing.assert_allclose(m.cv_scores_, ref, atol=1e-9)
        for j in (0, 5):
            r = Ridge(alpha=m.best_alphas_[j]).fit(X, Y[:, j])
            np.testing.assert_allclose(m.coef_[:, j], r.coef_, rtol=1e-7, atol=1e-9)


def test_pearson_scoring_and_edge_warning(rng):
    X, Y = _data(rng, t=10)
    with pytest.warns(UserWarning, match="edge of the grid"):
        m = RidgeCV(alphas=[1e6, 1e7], device="cpu", scoring="pearson").fit(X, Y)
    assert m.alpha_at_edge_ == 1.0
    assert np.all(np.abs(m.cv_scores_) <= 1 + 1e-6)
    with pytest.raises(ValueError, match="scoring"):
        RidgeCV(alphas=[1.0], scoring="bogus", device="cpu").fit(X, Y)
    with pytest.raises(ValueError, match="alphas"):
        RidgeCV(alphas=[0.0, 1.0], device="cpu").fit(X, Y)


# ----------------------------------------------------------------------------- vs himalaya
@pytest.mark.parametrize("backend", ["numpy", "torch"])
@pytest.mark.parametrize("fit_intercept", [False, True])
def test_ridgecv_matches_himalaya(rng, backend, fit_intercept):
    himalaya = pytest.importorskip("himalaya")
    from himalaya.backend import set_backend
    from himalaya.ridge import RidgeCV as HRidgeCV
    from himalaya.scoring import r2_score as h_r2

    set_backend(backend)
    try:
        X, Y = _data(rng, n=100, t=60, noise=3.0)
        alphas = np.logspace(-2, 5, 12)
        h = HRidgeCV(alphas=alphas, cv=5, fit_intercept=fit_intercept, solver_params=dict(score_func=h_r2)).fit(X, Y)
        m = RidgeCV(alphas=alphas, cv=5, device="cpu", dtype="float64", fit_intercept=fit_intercept).fit(X, Y)
        hb = np.asarray(h.best_alphas_, dtype=float)
        assert np.mean(np.isclose(hb, m.best_alphas_, rtol=1e-6)) >= 0.98
        np.testing.assert_allclose(m.predict(X), np.asarray(h.predict(X)), atol=1e-8)
        # himalaya's cv_scores_ include the 1e-10·log(alpha) tie-break
        np.testing.assert_allclose(m.cv_scores_.max(0), np.asarray(h.cv_scores_), atol=1e-8)
        # its default score is negative MSE: same selection as ours with scoring="neg_mse"
        h2 = HRidgeCV(alphas=alphas, cv=5, fit_intercept=fit_intercept).fit(X, Y)
        m2 = RidgeCV(alphas=alphas, cv=5, device="cpu", dtype="float64", fit_intercept=fit_intercept, scoring="neg_mse").fit(X, Y)
        assert np.mean(np.isclose(np.asarray(h2.best_alphas_, float), m2.best_alphas_, rtol=1e-6)) >= 0.98
    finally:
        set_backend("numpy")
    del himalaya


def test_ridgecv_float32_matches_himalaya(rng):
    pytest.importorskip("himalaya")
    from himalaya.ridge import RidgeCV as HRidgeCV
    from himalaya.scoring import r2_score as h_r2

    X, Y = _data(rng, n=100, t=80, noise=3.0)
    X, Y = X.astype(np.float32), Y.astype(np.float32)
    alphas = np.logspace(-2, 5, 12)
    h = HRidgeCV(alphas=alphas, fit_intercept=True, solver_params=dict(score_func=h_r2)).fit(X, Y)
    m = RidgeCV(alphas=alphas, device="cpu").fit(X, Y)
    assert np.mean(np.isclose(np.asarray(h.best_alphas_), m.best_alphas_, rtol=1e-4)) >= 0.95
    np.testing.assert_allclose(m.predict(X), h.predict(X), atol=1e-3)


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_banded_matches_himalaya_group_ridge(rng, fit_intercept):
    pytest.importorskip("himalaya")
    from himalaya.ridge import GroupRidgeCV
    from himalaya.scoring import r2_score as h_r2

    XA, XB, Y, _ = _bands(rng)
    alphas = np.logspace(-2, 4, 9)
    g = band_weight_grid(2)
    g = g[g.min(1) > 0]  # himalaya cannot scale a band by zero
    sp = dict(n_iter=g, alphas=alphas, score_func=h_r2, progress_bar=False)
    h = GroupRidgeCV(groups="input", cv=5, fit_intercept=fit_intercept, solver_params=sp).fit([XA, XB], Y)
    m = BandedRidgeCV(alphas=alphas, device="cpu", dtype="float64", band_weights=g, fit_intercept=fit_intercept).fit([XA, XB], Y)
    hg = np.exp(np.asarray(h.deltas_)) * np.asarray(h.best_alphas_)[None]
    agree = np.all(np.isclose(hg, m.best_band_weights_, atol=1e-8), 0) & np.isclose(h.best_alphas_, m.best_alphas_, rtol=1e-6)
    assert agree.mean() >= 0.95
    np.testing.assert_allclose(m.coef_[:, agree], np.asarray(h.coef_)[:, agree], atol=1e-8)
    np.testing.assert_allclose(m.cv_scores_, np.asarray(h.cv_scores_), atol=1e-8)
    np.testing.assert_allclose(m.deltas_[:, agree], np.asarray(h.deltas_)[:, agree], atol=1e-6)
    np.testing.assert_allclose(m.predict([XA, XB])[:, agree], np.asarray(h.predict([XA, XB]))[:, agree], atol=1e-8)


def test_banded_one_band_equals_ridgecv(rng):
    X, Y = _data(rng, t=15)
    alphas = np.logspace(-2, 4, 7)
    a = RidgeCV(alphas=alphas, device="cpu", dtype="float64").fit(X, Y)
    b = BandedRidgeCV(alphas=alphas, device="cpu", dtype="float64").fit([X], Y)
    np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-12)


# ----------------------------------------------------------------------------- banded ridge
def test_band_selective_targets_recover_their_band(rng):
    XA, XB, Y, a = _bands(rng, n=200, pa=10, pb=6, t=60)
    Y = Y - 1.2 * rng.standard_normal(Y.shape)  # lower noise
    m = BandedRidgeCV(alphas=np.logspace(-2, 5, 10), device="cpu").fit([XA, XB], Y)
    w = m.best_band_weights_
    assert w.shape == (2, 60)
    np.testing.assert_allclose(w.sum(0), 1.0)
    assert np.median(w[0, :20]) > 0.95  # A-only targets
    assert np.median(w[1, 20:40]) > 0.95  # B-only targets
    split = m.score_targets([XA, XB], Y, metric="r2", split=True)
    assert split.shape == (2, 60)
    assert np.all(split[0, :20] > split[1, :20]) and np.all(split[1, 20:40] > split[0, 20:40])
    # split predictions sum to the joint prediction
    parts = m.predict([XA, XB], split=True)
    np.testing.assert_allclose(parts.sum(0) + m.intercept_, m.predict([XA, XB]), atol=1e-9)
    # split R² shares sum to the joint R²
    P = m.predict([XA, XB])
    np.testing.assert_allclose(split.sum(0), enc.r2_score(Y, P), atol=1e-9)


def test_banded_kernel_equals_primal(rng):
    XA, XB, Y, _ = _bands(rng, n=50, pa=6, pb=4, t=12)
    kw = dict(alphas=np.logspace(-2, 3, 6), device="cpu", dtype="float64")
    a = BandedRidgeCV(solver="primal", **kw).fit([XA, XB], Y)
    b = BandedRidgeCV(solver="kernel", **kw).fit([XA, XB], Y)
    np.testing.assert_array_equal(a.best_band_weights_, b.best_band_weights_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-9)


def test_banded_fixed_gamma_equals_scaled_ridge(rng):
    """With a single candidate γ, banded ridge = sklearn Ridge on [√γ₁X₁, √γ₂X₂]."""
    from sklearn.linear_model import Ridge

    XA, XB, Y, _ = _bands(rng, t=6)
    g = np.array([[0.8, 0.2]])
    m = BandedRidgeCV(alphas=[2.0], band_weights=g, device="cpu", dtype="float64").fit([XA, XB], Y)
    Z = np.concatenate([XA * np.sqrt(0.8), XB * np.sqrt(0.2)], 1)
    s = Ridge(alpha=2.0).fit(Z, Y)
    scale = np.r_[np.full(XA.shape[1], np.sqrt(0.8)), np.full(XB.shape[1], np.sqrt(0.2))]
    np.testing.assert_allclose(m.coef_, s.coef_.T * scale[:, None], atol=1e-10)
    np.testing.assert_allclose(m.predict([XA, XB]), s.predict(Z), atol=1e-9)


def test_band_weight_candidates():
    g2 = band_weight_grid(2)
    np.testing.assert_allclose(g2.sum(1), 1.0)
    assert any(np.allclose(r, [1, 0]) for r in g2) and any(np.allclose(r, [0, 1]) for r in g2)
    g3 = band_weight_grid(3)
    assert g3.shape[1] == 3 and np.allclose(g3.sum(1), 1)
    a = _solvers.dirichlet_weights(5, 10, 0)
    b = _solvers.dirichlet_weights(5, 10, 0)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a[0], 0.2)
    assert a.shape == (15, 5)


def test_banded_many_bands_random_search(rng):
    Xs = [rng.standard_normal((60, 3)) for _ in range(4)]
    Y = Xs[2] @ rng.standard_normal((3, 5)) + 0.3 * rng.standard_normal((60, 5))
    m = BandedRidgeCV(alphas=np.logspace(-2, 3, 6), n_iter=8, device="cpu", random_state=1).fit(Xs, Y)
    assert m.band_weights_.shape == (12, 4)
    assert np.all(m.best_band_weights_.argmax(0) == 2)


# ----------------------------------------------------------------------------- fractional ridge
def test_fraction_alphas_direct(rng):
    """α(f) solves ‖β_α‖/‖β_OLS‖ = f, including f > 1 (negative α)."""
    from scipy.optimize import brentq

    X, Y = _data(rng, n=60, p=8, t=3)
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    s, V = np.linalg.eigh(Xc.T @ Xc)
    Z = V.T @ Xc.T @ Yc
    fr = np.array([0.1, 0.5, 0.9, 1.04])
    A = _solvers._fraction_alphas(torch.from_numpy(s), torch.from_numpy(Z), torch.ones(8, dtype=torch.float64), fr).numpy()
    ols = np.linalg.lstsq(Xc, Yc, rcond=None)[0]
    for j in range(3):
        for fi, f in enumerate(fr):
            norm = lambda a: np.linalg.norm(np.linalg.solve(Xc.T @ Xc + a * np.eye(8), Xc.T @ Yc[:, j]))  # noqa: E731
            ref = brentq(lambda a: norm(a) - f * np.linalg.norm(ols[:, j]), -s.min() * 0.999999, 1e9, xtol=1e-12)
            assert A[fi, j] == pytest.approx(ref, rel=1e-7, abs=1e-7)


def test_fraction_alphas_off_grid_roots_and_block_sizes(rng):
    """Roots at both ends of the start grid (a fraction of 1e-16: α beyond its top; 1.049: α
    just above −s_min) and inside it reach their fraction to 1e-10, and the Newton stage gives
    the same alphas (to 1e-12) in cache-sized blocks, one target at a time and in one block."""
    X = rng.standard_normal((80, 12))
    X[:, 0] *= 1e-3  # ill-conditioned: s spans 6 decades
    Y = X @ rng.standard_normal((12, 30)) + rng.standard_normal((80, 30))
    Xc, Yc = X - X.mean(0), Y - Y.mean(0)
    s, V = np.linalg.eigh(Xc.T @ Xc)
    Z = V.T @ Xc.T @ Yc
    fr = np.array([1e-16, 1e-3, 0.3, 0.999, 1.0, 1.049])
    args = (torch.from_numpy(s), torch.from_numpy(Z), torch.ones(12, dtype=torch.float64), fr)
    A = _solvers._fraction_alphas(*args).numpy()
    ols = np.sqrt(np.sum(Z**2 / s[:, None] ** 2, 0))
    for fi, f in enumerate(fr):
        got = np.sqrt(np.sum(Z**2 / (s[:, None] + A[fi][None, :]) ** 2, 0))
        np.testing.assert_allclose(got, f * ols, rtol=1e-10)
    assert np.all(A[0] > s.max() * 1e12) and np.all((A[-1] < 0) & (A[-1] > -s.min()))
    np.testing.assert_allclose(A[4], 0.0, atol=1e-9 * s.min())
    for kw in ({"newton_elements": 1}, {"newton_elements": 2**30}, {"n_grid": 16, "chunk_elements": 50}):
        np.testing.assert_allclose(_solvers._fraction_alphas(*args, **kw).numpy(), A, rtol=1e-12,
                                   atol=1e-12 * s.min())


def test_fracridgecv_refit_false_keeps_the_cv_only(rng):
    """refit=False: the same CV scores and choices as refit=True, no coefficients, and
    predict raises NotFittedError; a refit=True fit afterwards predicts again."""
    from sklearn.exceptions import NotFittedError

    X, Y = _data(rng, n=90, p=10, t=6)
    full = enc.FracRidgeCV(fractions=[0.2, 0.6, 1.0], cv=3, fraction_per_target=True, device="cpu").fit(X, Y)
    est = enc.FracRidgeCV(fractions=[0.2, 0.6, 1.0], cv=3, fraction_per_target=True, device="cpu",
                          refit=False).fit(X, Y)
    np.testing.assert_array_equal(est.cv_scores_, full.cv_scores_)
    np.testing.assert_array_equal(est.best_fractions_, full.best_fractions_)
    assert not hasattr(est, "coef_") and not hasattr(est, "best_alphas_")
    with pytest.raises(NotFittedError, match="refit=False"):
        est.predict(X)
    est.set_params(refit=True).fit(X, Y)
    np.testing.assert_allclose(est.predict(X), full.predict(X))
    est.set_params(refit=False).fit(X, Y)  # a later refit=False fit drops the old coefficients
    assert not hasattr(est, "coef_")
    with pytest.raises(ValueError, match="refit"):
        enc.FracRidgeCV(refit="yes").fit(X, Y)


def test_fracridgecv_whole_brain_matches_direct(rng):
    from sklearn.linear_model import Ridge

    X, Y = _data(rng, n=80, p=10, t=8, noise=3.0)
    fr = np.linspace(0.1, 1.0, 6)
    m = FracRidgeCV(fractions=fr, device="cpu", dtype="float64").fit(X, Y)
    assert len(np.unique(m.best_fractions_)) == 1
    # direct: refit with the chosen per-target alpha must give the chosen fraction
    for j in range(8):
        b = Ridge(alpha=m.best_alphas_[j]).fit(X, Y[:, j]).coef_
        ols = np.linalg.lstsq(X - X.mean(0), Y[:, j] - Y[:, j].mean(), rcond=None)[0]
        assert np.linalg.norm(b) / np.linalg.norm(ols) == pytest.approx(m.best_fractions_[j], rel=1e-6)
        np.testing.assert_allclose(m.coef_[:, j], b, atol=1e-8)
    # CV score of one fraction, computed directly with sklearn on every fold
    f = fr[2]
    ref = np.zeros(8)
    for tr, va in kfold_splits(80, 5):
        Xt = X[tr] - X[tr].mean(0)
        for j in range(8):
            yt = Y[tr, j] - Y[tr, j].mean()
            ols = np.linalg.norm(np.linalg.lstsq(Xt, yt, rcond=None)[0])
            from scipy.optimize import brentq

            a = brentq(lambda a: np.linalg.norm(np.linalg.solve(Xt.T @ Xt + a * np.eye(10), Xt.T @ yt)) - f * ols, 1e-12, 1e9, xtol=1e-12)
            P = Ridge(alpha=a).fit(X[tr], Y[tr, j]).predict(X[va])
            ref[j] += enc.r2_score(Y[va, j][:, None], P[:, None])[0] / 5
    np.testing.assert_allclose(m.cv_scores_[2], ref, atol=1e-7)
    assert m.best_fractions_[0] == fr[np.argmax(m.cv_scores_.mean(1))]
    per = FracRidgeCV(fractions=fr, device="cpu", dtype="float64", fraction_per_target=True).fit(X, Y)
    np.testing.assert_array_equal(per.best_fractions_, fr[per.cv_scores_.argmax(0)])


# ----------------------------------------------------------------------------- analyses
def test_noise_ceiling_relation():
    nc = np.linspace(0.1, 0.9, 50)
    r = 0.5 * nc + 0.01
    out = noise_ceiling_relation(r, nc)
    assert out["slope"] == pytest.approx(0.5) and out["intercept"] == pytest.approx(0.01)
    assert out["pearson"] == pytest.approx(1.0) and out["n"] == 50
    assert out["fraction_of_ceiling"] == pytest.approx(r.sum() / nc.sum())


def test_in_silico_contrast(rng):
    d, v, n_sub = 6, 40, 5
    embA, embB = rng.standard_normal((5, d)), rng.standard_normal((5, d))
    coefs = [rng.standard_normal((d, v)) for _ in range(n_sub)]
    shared = np.zeros((d, v))
    shared[:, :10] = 5 * (embA.mean(0) - embB.mean(0))[:, None]  # targets 0-9 prefer A
    encs = [(c * 0.1 + shared, np.zeros(v)) for c in coefs]
    out = in_silico_contrast(encs, embA, embB, fdr=True)
    assert out["diff"].shape == (n_sub, v)
    expect = np.stack([(embA.mean(0) - embB.mean(0)) @ (c * 0.1 + shared) for c in coefs])
    np.testing.assert_allclose(out["diff"], expect, atol=1e-10)
    assert np.all(out["t"][:10] > 0) and out["significant"][:10].all()
    assert out["significant_fdr"][:10].all()
    from scipy import stats

    np.testing.assert_allclose(out["p"], stats.ttest_1samp(expect, 0, axis=0).pvalue)
    # fitted estimators work too
    X = rng.standard_normal((50, d))
    ests = [RidgeCV(alphas=[1.0], device="cpu").fit(X, X @ c) for c in coefs[:2]]
    out2 = in_silico_contrast({"s1": ests[0], "s2": ests[1]}, embA, embB)
    assert out2["diff"].shape == (2, v)


def test_embed_sentence_sets_with_fake_embedder():
    def fake(sents, **kw):
        return np.array([[len(s), s.count(" ")] for s in sents], dtype=np.float32)

    out = enc.embed_sentence_sets({"a": ["x y", "zz"], "b": ["q"]}, embed_fn=fake)
    np.testing.assert_allclose(out["a"], [2.5, 0.5])
    assert set(enc.embed_sentence_sets(embed_fn=fake)) == {"people", "places", "food"}
    assert all(len(v) == 5 for v in enc.CATEGORY_SENTENCES.values())


def test_input_validation(rng):
    X, Y = _data(rng)
    with pytest.raises(ValueError, match="samples"):
        RidgeCV(device="cpu").fit(X, Y[:-1])
    from sklearn.exceptions import NotFittedError

    for cls in (RidgeCV, BandedRidgeCV, FracRidgeCV):
        with pytest.raises(NotFittedError, match="not fitted"):
            cls().predict(X)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RidgeCV(device="cpu").fit(Xn, Y)
    m = RidgeCV(alphas=[1.0], device="cpu").fit(X, Y[:, 0])
    assert m.predict(X).shape == (X.shape[0],)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert isinstance(m.score(X, Y[:, 0]), float)
        assert isinstance(m.score_targets(X, Y[:, 0]), float)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_equals_cpu(rng):
    X, Y = _data(rng, t=50)
    alphas = np.logspace(-2, 4, 8)
    a = RidgeCV(alphas=alphas, device="cpu", dtype="float64").fit(X, Y)
    b = RidgeCV(alphas=alphas, device="cuda", dtype="float64").fit(X, Y)
    np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-9)


def test_fracridge_kernel_equals_primal(rng):
    X, Y = _data(rng, n=40, p=8, t=6, noise=3.0)
    kw = dict(fractions=np.linspace(0.2, 1.05, 5), device="cpu", dtype="float64", fraction_per_target=True)
    a = FracRidgeCV(solver="primal", **kw).fit(X, Y)
    b = FracRidgeCV(solver="kernel", **kw).fit(X, Y)
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, atol=1e-8)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-8)


@pytest.mark.parametrize("centred", [False, True])
def test_fracridgecv_equals_the_fracridge_package(rng, centred):
    """Outside reference: the ``fracridge`` package's ``fracridge()`` (2.0, the paper's
    method). It finds each target's penalty by interpolating on a grid of alphas, so it lands
    near, not on, the asked fraction; at the fraction it did reach, our exact solution has the
    same coefficients (the ridge path's norm is monotone in alpha: one solution per fraction).
    With ``fit_intercept`` we centre; ``fracridge`` fits no intercept: given centred data, the
    two agree."""
    from fracridge import fracridge

    X, Y = _data(rng, n=60, p=10, t=4, noise=2.0, offset=0.0)
    if centred:
        X, Y = X - X.mean(0), Y - Y.mean(0)
    ols = np.linalg.lstsq(X, Y, rcond=None)[0]
    for f in (0.1, 0.3, 0.7, 1.0):
        ref, _ = fracridge(X, Y, fracs=np.array([f]), jit=False)
        reached = np.linalg.norm(ref[:, 0, :], axis=0) / np.linalg.norm(ols, axis=0)
        np.testing.assert_allclose(reached, f, rtol=0.03)  # fracridge's interpolation
        for t in range(Y.shape[1]):
            est = FracRidgeCV(fractions=[reached[t]], fit_intercept=centred, device="cpu",
                              dtype="float64").fit(X, Y[:, [t]])
            np.testing.assert_allclose(est.coef_[:, 0], ref[:, 0, t], rtol=1e-9, atol=1e-12)


def test_fraction_alphas_kernel_form_and_zero_targets(rng):
    """Kernel weights (w = s), many targets, the paper's grid (f up to 1.05) and an all-zero
    target: every α reaches its fraction to 1e-10; the zero target gets α = 0."""
    X = rng.standard_normal((40, 90))
    Y = rng.standard_normal((40, 50))
    Y[:, 7] = 0.0
    K = X @ X.T
    s, U = np.linalg.eigh(K)
    Z = U.T @ Y
    fr = np.linspace(0.05, 1.05, 20)
    A = _solvers._fraction_alphas(torch.from_numpy(s), torch.from_numpy(Z), torch.from_numpy(s), fr,
                                  chunk_elements=5000).numpy()
    keep = s > s.max() * 1e-10
    for j in (0, 13, 49):
        ols = np.sqrt(np.sum(s[keep] * Z[keep, j] ** 2 / s[keep] ** 2))
        for fi, f in enumerate(fr):
            got = np.sqrt(np.sum(s[keep] * Z[keep, j] ** 2 / (s[keep] + A[fi, j]) ** 2))
            assert got == pytest.approx(f * ols, rel=1e-10)
    assert np.all(A[:, 7] == 0.0) and np.isfinite(A).all()
    assert np.all(np.delete(A[fr > 1], 7, axis=1) < 0) and np.all(A[fr < 1][:, [0, 13]] > 0)


def test_solver_scratch_helpers():
    """The solver's in-place helpers: a validation fold is a view only when its indices are
    one ascending run; float64 column sums by blocks equal numpy's; a scratch buffer is reused
    (same storage) and regrown when too small."""
    import torch

    assert _solvers._run(np.arange(3, 9)) == (3, 9)
    for idx in (np.array([0, 2, 3]), np.array([4, 3]), np.array([], dtype=int), np.array([1.0, 2.0]),
                np.array([-1, 0])):
        assert _solvers._run(idx) is None
    rng = np.random.default_rng(0)
    A = rng.standard_normal((37, 5)).astype(np.float32)
    got = _solvers._colsum64(torch.from_numpy(A), block_bytes=80).numpy()  # 2 rows per block
    np.testing.assert_allclose(got, A.astype(np.float64).sum(0), rtol=0, atol=1e-12)
    X = rng.standard_normal((20, 3)).astype(np.float32)
    prob = _solvers._Problem([X], _solvers.kfold_splits(20, 4), fit_intercept=True, solver="primal",
                             device=torch.device("cpu"), dtype=torch.float32)
    assert [f.val_range for f in prob.folds] == [(0, 5), (5, 10), (10, 15), (15, 20)]
    a = prob.buffer("x", (4, 5))
    b = prob.buffer("x", (2, 3))
    assert b.data_ptr() == a.data_ptr() and b.shape == (2, 3) and b.is_contiguous()
    c = prob.buffer("x", (10, 10))
    assert c.shape == (10, 10) and c.numel() == 100


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("t", [1, 7])
def test_fit_leaves_the_inputs_untouched(rng, dtype, t):
    """The solver centres and subtracts in place on its own scratch memory: the caller's X and
    Y (which torch shares without a copy) keep their values, for one target too (whose
    transposed view is already contiguous)."""
    X, Y = _data(rng, t=t)
    X, Y = X.astype(dtype), Y.astype(dtype)
    X0, Y0 = X.copy(), Y.copy()
    RidgeCV(alphas=np.logspace(-1, 3, 5), device="cpu", dtype=dtype).fit(X, Y)
    XA, XB = X[:, :6], X[:, 6:]
    BandedRidgeCV(alphas=np.logspace(-1, 3, 5), device="cpu", dtype=dtype).fit([XA, XB], Y)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)


def _all_fold_scores(X, Y, dtype, scoring, solver="primal", alphas=np.logspace(-2, 4, 9)):
    """Every fold's validation scores (n_folds, n_alphas, t) from the solver's own steps."""
    import torch

    dt = {"float32": torch.float32, "float64": torch.float64}[dtype]
    prob = _solvers._Problem([X], _solvers.kfold_splits(len(X), 4), fit_intercept=True, solver=solver,
                             device=torch.device("cpu"), dtype=dt)
    Yc = torch.as_tensor(Y).to(dt)
    fds = prob.chunk_data(Yc)
    a64 = torch.as_tensor(alphas, dtype=torch.float64)
    return np.stack([_solvers._fold_scores(prob, prob.system(0, np.ones(1), fi), fi, fds[fi], Yc, a64,
                                           scoring).numpy() for fi in range(len(prob.folds))])


def _count_pf_calls(monkeypatch):
    """A list that grows by one each time a fold is scored by partial fractions."""
    calls = []
    real = _solvers._pf_fold_scores
    monkeypatch.setattr(_solvers, "_pf_fold_scores", lambda *a, **k: calls.append(1) or real(*a, **k))
    return calls


def _spectra(rng, kind):
    n, p, t = 160, 24, 9
    X = rng.standard_normal((n, p))
    if kind == "duplicated":  # rank-deficient: a zero eigenvalue per duplicated column
        X[:, 12:] = X[:, :12]
    elif kind == "one_hot":  # rare categories: columns constant over most training folds
        X[:, :8] = (rng.uniform(size=(n, 8)) < 0.03).astype(float)
    elif kind == "near_duplicated":
        X[:, 12:] = X[:, :12] + 1e-4 * rng.standard_normal((n, 12))
    elif kind == "wide":  # the kernel form (p > n)
        X = rng.standard_normal((n, 200))
    Y = X[:, :6] @ rng.standard_normal((6, t)) + rng.standard_normal((n, t)) + 2.0
    # float32-representable, so that the float32 and float64 problems see the same data
    return X.astype(np.float32).astype(np.float64), Y.astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("kind", ["gaussian", "duplicated", "one_hot", "near_duplicated", "wide"])
@pytest.mark.parametrize("scoring", ["r2", "neg_mse", "pearson"])
def test_partial_fraction_scores_match_the_direct_ones(rng, monkeypatch, kind, scoring):
    """Float32 scoring by partial fractions (float64 shared products) gives every fold's
    validation scores of a float64 solve to float32's accuracy, on Gram spectra with zero,
    clustered and rare-feature eigenvalues and in the kernel form; and at least as closely as
    the per-alpha float32 products it replaces."""
    X, Y = _spectra(rng, kind)
    solver = "kernel" if kind == "wide" else "primal"
    ref = _all_fold_scores(X, Y, "float64", scoring, solver)
    calls = _count_pf_calls(monkeypatch)
    monkeypatch.setattr(_solvers, "_pf_worth", lambda *a, **k: True)
    pf = _all_fold_scores(X, Y, "float32", scoring, solver)
    assert len(calls) == 4  # every fold took the partial fractions
    monkeypatch.setattr(_solvers, "_pf_worth", lambda *a, **k: False)
    direct = _all_fold_scores(X, Y, "float32", scoring, solver)
    assert len(calls) == 4
    scale = np.abs(ref).max() if scoring == "neg_mse" else 1.0
    err_pf, err_direct = np.abs(pf - ref).max() / scale, np.abs(direct - ref).max() / scale
    assert err_pf < 2e-5, (kind, scoring, err_pf)
    assert err_pf <= 2 * err_direct + 1e-9, (kind, scoring, err_pf, err_direct)


def test_partial_fraction_ties_are_summed_directly():
    """Eigenvalues equal to or within ``_PF_RELGAP`` of a neighbour (where 1/(s_k − s_j)
    cancels), or at float64's rounding level, go to the directly summed set; with them the
    squared norms of ``W diag(f) z`` equal the direct float64 ones for a training matrix with
    tied, near-tied and zero eigenvalues and any validation block; a distinct spectrum uses no
    direct set."""
    import torch

    rng = np.random.default_rng(3)
    r, n_tr, n_val, t = 12, 40, 7, 5
    s = torch.tensor([0.0, 0.0, 1e-15, 1e-12, 0.5, 0.5, 0.5 * (1 + 1e-9), 2.0, 3.0, 4.0, 4.0 * (1 + 2e-4), 30.0],
                     dtype=torch.float64)
    # a training matrix with this Gram spectrum (Xtr = Q diag(√s) Vᵀ) and a validation block
    # that need not follow it (rare features): z = Vᵀ Xtrᵀ y = √s ∘ Qᵀy, W = Xval V
    Q = torch.linalg.qr(torch.as_tensor(rng.standard_normal((n_tr, r))))[0]
    V = torch.linalg.qr(torch.as_tensor(rng.standard_normal((r, r))))[0]
    W = torch.as_tensor(rng.standard_normal((n_val, r))) @ V
    Z = (torch.sqrt(s) * (torch.as_tensor(rng.standard_normal((t, n_tr))) @ Q)).to(torch.float32)
    plan = _solvers._pf_plan(s, W)
    # 1e-12 is 1e3 times its neighbour, 4·(1 + 2e-4) twice the gap; 1e-15 is rounding level
    assert plan["idx"].tolist() == [0, 1, 2, 4, 5, 6]
    assert len(_solvers._pf_plan(torch.linspace(1, 12, r, dtype=torch.float64), W)["idx"]) == 0
    # y = 0: the squared residual is the prediction's squared norm
    fd = {"ytilT": torch.zeros((t, n_val), dtype=torch.float32), "sst": torch.ones(t, dtype=torch.float64)}
    alphas = torch.tensor([1e-6, 1e-3, 0.1, 10.0], dtype=torch.float64)
    prob = _solvers._Problem([np.zeros((8, 2), np.float32)], _solvers.kfold_splits(8, 2), fit_intercept=False,
                             solver="primal", device=torch.device("cpu"), dtype=torch.float32)
    got = -_solvers._pf_fold_scores(prob, plan, s, Z, fd, alphas, "neg_mse", n_val).numpy() * n_val
    Z64 = Z.to(torch.float64)
    want = np.stack([(torch.linalg.vector_norm((Z64 / (s + a)) @ W.T, dim=1) ** 2).numpy() for a in alphas])
    np.testing.assert_allclose(got, want, rtol=1e-10)
    # the same spectrum without the direct set: the tied pairs' 1/(s_k − s_j) break it
    bad = dict(plan, idx=plan["idx"][:0], H_S=plan["H_S"][:0, :0], W_S=plan["W_S"][:, :0])
    D = s[None, :] - s[:, None]
    D.fill_diagonal_(1.0)
    bad["M"] = (W.T @ W / D).fill_diagonal_(0.0)
    bad["hd"] = torch.diagonal(W.T @ W).clone()
    broken = -_solvers._pf_fold_scores(prob, bad, s, Z, fd, alphas, "neg_mse", n_val).numpy() * n_val
    assert not np.allclose(broken, want, rtol=1e-6)


def test_ridgecv_float32_partial_fractions_match_float64(rng, monkeypatch):
    """At a size where partial fractions pay (15 alphas, 80 validation samples, 40 features)
    RidgeCV in float32 takes them by itself, and its cross-validated scores and chosen alphas
    equal the float64 fit's."""
    X = rng.standard_normal((400, 40)).astype(np.float32)
    Y = (X[:, :10] @ rng.standard_normal((10, 25)) * rng.uniform(0, 1, 25)
         + 3 * rng.standard_normal((400, 25))).astype(np.float32)
    calls = _count_pf_calls(monkeypatch)
    alphas = np.logspace(-1, 5, 15)
    a = RidgeCV(alphas=alphas, device="cpu", dtype="float32").fit(X, Y)
    assert len(calls) == 5
    b = RidgeCV(alphas=alphas, device="cpu", dtype="float64").fit(X, Y)
    assert len(calls) == 5  # float64 keeps the per-alpha products
    np.testing.assert_allclose(a.cv_scores_, b.cv_scores_, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(a.best_alphas_, b.best_alphas_)


def test_partial_fraction_cost_model():
    """Partial fractions are taken where their shared products cost less than the per-alpha
    ones (Benchmark A's 1,068 features, 400 validation samples, 15 alphas), not for wide
    bases, few alphas or a spectrum of ties, and never for float64 data or off the CPU."""
    import torch

    assert _solvers._pf_worth(1068, 400, 15)
    assert not _solvers._pf_worth(5000, 400, 15)  # r² outgrows the per-alpha products
    assert not _solvers._pf_worth(1068, 400, 3)
    assert not _solvers._pf_worth(1068, 400, 15, n_close=1068)  # every pair summed directly
    X = np.random.default_rng(0).standard_normal((200, 20)).astype(np.float32)
    for dtype, want in ((torch.float32, True), (torch.float64, False)):
        prob = _solvers._Problem([X], _solvers.kfold_splits(200, 5), fit_intercept=True, solver="primal",
                                 device=torch.device("cpu"), dtype=dtype)
        assert _solvers._pf_candidates(prob, 15) is want
