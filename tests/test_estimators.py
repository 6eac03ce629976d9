"""The encoding estimators as scikit-learn estimators: scikit-learn's own estimator checks,
Pipeline / cross_val_score / GridSearchCV / clone, parameter validation in ``fit``, and
BandedRidgeCV's one-X ``groups=`` form (against its list form and himalaya)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.linear_model import Ridge  # noqa: E402
from sklearn.metrics import r2_score as sk_r2  # noqa: E402
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from brainllm_utils.encoding import BandedRidgeCV, FracRidgeCV, RidgeCV, band_weight_grid  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:.*edge of the grid.*:UserWarning")

ESTIMATORS = [RidgeCV(device="cpu"), BandedRidgeCV(device="cpu"), FracRidgeCV(device="cpu")]

#: Checks of scikit-learn's suite that are expected to fail, per estimator class, each with
#: the reason. Empty: all three pass every check (check_array_api_input is skipped by
#: scikit-learn itself unless SCIPY_ARRAY_API is set).
EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {"RidgeCV": {}, "BandedRidgeCV": {}, "FracRidgeCV": {}}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS[type(est).__name__])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def _data(rng, n=80, p=6, t=4, noise=1.0):
    X = rng.standard_normal((n, p)) * rng.uniform(0.5, 20, p) + rng.uniform(-5, 5, p)
    Y = X @ rng.standard_normal((p, t)) + noise * rng.standard_normal((n, t)) * np.arange(1, t + 1)
    return X, Y


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_tags(est):
    from sklearn.base import is_regressor
    from sklearn.utils import get_tags

    tags = get_tags(est)
    assert is_regressor(est) and tags.estimator_type == "regressor"
    assert tags.target_tags.multi_output and tags.target_tags.single_output and tags.target_tags.required
    assert not tags.input_tags.allow_nan and not tags.input_tags.sparse and tags.input_tags.two_d_array


# ----------------------------------------------------------------------------- ecosystem
def test_pipeline_cross_val_score_equals_sklearn_ridge(rng):
    """With one penalty, Pipeline(StandardScaler, RidgeCV) is Pipeline(StandardScaler, Ridge):
    cross_val_score (one float per fold, the mean R² over targets) must agree."""
    X, Y = _data(rng)
    cv = KFold(4, shuffle=True, random_state=0)
    ours = cross_val_score(make_pipeline(StandardScaler(), RidgeCV(alphas=[3.0], device="cpu", dtype="float64")),
                           X, Y, cv=cv)
    ref = cross_val_score(make_pipeline(StandardScaler(), Ridge(alpha=3.0)), X, Y, cv=cv)
    assert ours.shape == (4,) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, ref, atol=1e-10)
    # with a grid of penalties: the scores of a hand-written loop over the same folds
    alphas = np.logspace(-2, 4, 7)
    ours = cross_val_score(make_pipeline(StandardScaler(), RidgeCV(alphas=alphas, device="cpu")), X, Y, cv=cv)
    by_hand = []
    for tr, te in cv.split(X):
        sc = StandardScaler().fit(X[tr])
        m = RidgeCV(alphas=alphas, device="cpu").fit(sc.transform(X[tr]), Y[tr])
        by_hand.append(sk_r2(Y[te], m.predict(sc.transform(X[te]))))
    np.testing.assert_allclose(ours, by_hand, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda a: RidgeCV(alphas=[a], device="cpu", dtype="float64"),
    lambda a: BandedRidgeCV(alphas=[a], device="cpu", dtype="float64"),
])
def test_grid_search_equals_sklearn_ridge(rng, make):
    X, Y = _data(rng, t=3)
    grid = [0.01, 10.0, 1e4]
    name = "alphas"
    ours = GridSearchCV(make(1.0), {name: [[a] for a in grid]}, cv=3).fit(X, Y)
    ref = GridSearchCV(Ridge(), {"alpha": grid}, cv=3).fit(X, Y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-10)
    assert ours.best_params_[name] == [ref.best_params_["alpha"]]
    np.testing.assert_allclose(ours.predict(X), ref.predict(X), atol=1e-8)


def test_grid_search_over_fractions_and_pipeline_params(rng):
    X, Y = _data(rng)
    pipe = make_pipeline(StandardScaler(), FracRidgeCV(device="cpu", dtype="float64"))
    gs = GridSearchCV(pipe, {"fracridgecv__fractions": [[0.2], [0.9]]}, cv=3).fit(X, Y)
    assert gs.best_params_["fracridgecv__fractions"] in ([0.2], [0.9])
    assert np.isfinite(gs.cv_results_["mean_test_score"]).all()
    assert gs.best_estimator_[-1].best_fractions_[0] == gs.best_params_["fracridgecv__fractions"][0]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_clone_and_params_round_trip(rng, est):
    X, Y = _data(rng)
    est = clone(est).set_params(cv=3, dtype="float64")
    params = est.get_params(deep=True)
    assert clone(est).get_params() == params
    assert type(est)(**params).get_params() == params
    assert est.set_params(**params) is est and est.get_params() == params
    fitted = clone(est).fit(X, Y)
    c = clone(fitted)
    with pytest.raises(NotFittedError):
        c.predict(X)
    assert not hasattr(c, "coef_") and c.get_params() == params
    np.testing.assert_array_equal(c.fit(X, Y).coef_, fitted.coef_)
    with pytest.raises(ValueError, match="Invalid parameter"):
        est.set_params(bogus=1)


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_score_is_sklearn_mean_r2_and_feature_names(rng, est):
    pd = pytest.importorskip("pandas")
    X, Y = _data(rng)
    m = clone(est).fit(X[:60], Y[:60])
    s = m.score(X[60:], Y[60:])
    assert isinstance(s, float)
    assert s == pytest.approx(sk_r2(Y[60:], m.predict(X[60:]), multioutput="uniform_average"), abs=1e-12)
    np.testing.assert_allclose(m.score_targets(X[60:], Y[60:], metric="r2"),
                               sk_r2(Y[60:], m.predict(X[60:]), multioutput="raw_values"), atol=1e-12)
    r = m.score_targets(X[60:], Y[60:])
    np.testing.assert_allclose(r, [np.corrcoef(m.predict(X[60:])[:, j], Y[60:, j])[0, 1] for j in range(4)],
                               atol=1e-12)
    assert m.n_features_in_ == X.shape[1] and not hasattr(m, "feature_names_in_")
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(X.shape[1])])
    md = clone(est).fit(df, Y)
    assert list(md.feature_names_in_) == list(df.columns)
    np.testing.assert_allclose(md.coef_, clone(est).fit(X, Y).coef_)
    with pytest.raises(ValueError, match="X has 5 features, but"):
        m.predict(X[:, :-1])


# ----------------------------------------------------------------------------- validation
_BAD = [
    (RidgeCV, dict(cv=1), "cv must be >= 2"),
    (RidgeCV, dict(cv="five"), "cv must be"),
    (RidgeCV, dict(cv=True), "cv must be"),
    (RidgeCV, dict(alphas=[1.0, -1.0]), "alphas must be"),
    (RidgeCV, dict(alphas=[]), "alphas must be"),
    (RidgeCV, dict(alphas="many"), "alphas must be"),
    (RidgeCV, dict(fit_intercept="yes"), "fit_intercept must be True or False"),
    (RidgeCV, dict(alpha_per_target=None), "alpha_per_target must be True or False"),
    (RidgeCV, dict(scoring="bogus"), "scoring must be one of"),
    (RidgeCV, dict(solver="svd"), "solver must be one of"),
    (RidgeCV, dict(dtype="float16"), "dtype must be 'float32' or 'float64'"),
    (RidgeCV, dict(memory_budget=0), "memory_budget must be a positive int or None"),
    (RidgeCV, dict(chunk_size=2.5), "chunk_size must be a positive int or None"),
    (RidgeCV, dict(allow_tf32=1), "allow_tf32 must be True or False"),
    (FracRidgeCV, dict(fractions=[0.0, 0.5]), "fractions must be"),
    (FracRidgeCV, dict(fraction_per_target="no"), "fraction_per_target must be True or False"),
    (BandedRidgeCV, dict(groups=[0, 1]), "one band label per column"),
    (BandedRidgeCV, dict(groups="columns"), "groups must be an array of band labels"),
    (BandedRidgeCV, dict(groups=[0.5] * 6), "integer band labels"),
    (BandedRidgeCV, dict(groups=[-1] * 6), "no column with a band label"),
    (BandedRidgeCV, dict(band_weights=[[1.0, -1.0]], groups=[0, 0, 0, 1, 1, 1]), "band_weights must be"),
    (BandedRidgeCV, dict(band_weights=[[1.0, 1.0, 1.0]], groups=[0, 0, 0, 1, 1, 1]), "3 columns for 2 bands"),
    (BandedRidgeCV, dict(n_iter=0, groups=[0, 1, 2, 3, 4, 5]), "n_iter must be a positive int"),
    (BandedRidgeCV, dict(n_iter=2.5), "n_iter must be a positive int"),
]


@pytest.mark.parametrize("cls,params,match", _BAD, ids=[f"{c.__name__}-{next(iter(p))}" for c, p, _ in _BAD])
def test_parameters_validated_in_fit_not_init(rng, cls, params, match):
    X, Y = _data(rng)
    est = cls(device="cpu", **params)  # scikit-learn's rule: __init__ only stores
    assert est.get_params()[next(iter(params))] is params[next(iter(params))]
    with pytest.raises(ValueError, match=match):
        est.fit(X, Y)


def test_too_few_samples_named(rng):
    X, Y = _data(rng, n=4)
    with pytest.raises(ValueError, match="5-fold cross-validation needs at least 5 samples, got n_samples=4"):
        RidgeCV(device="cpu").fit(X, Y)


# ----------------------------------------------------------------------------- banded: groups=
def _bands(rng, n=120, pa=8, pb=5, t=30):
    XA, XB = rng.standard_normal((n, pa)), rng.standard_normal((n, pb)) * 3 + 1
    a = rng.uniform(0, 1, t)
    Y = (XA @ rng.standard_normal((pa, t))) * a + (XB @ rng.standard_normal((pb, t))) * (1 - a)
    return XA, XB, Y + 1.5 * rng.standard_normal((n, t))


_FITTED = ("best_alphas_", "best_band_weights_", "cv_scores_", "deltas_", "intercept_", "band_weights_")


def test_banded_one_x_with_groups_equals_list_of_bands(rng):
    XA, XB, Y = _bands(rng)
    kw = dict(alphas=np.logspace(-2, 4, 7), device="cpu", dtype="float64")
    a = BandedRidgeCV(**kw).fit([XA, XB], Y)
    X = np.hstack([XA, XB])
    b = BandedRidgeCV(groups=np.repeat([0, 1], [8, 5]), **kw).fit(X, Y)
    for name in _FITTED + ("coef_",):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.predict([XA, XB]), b.predict(X))
    np.testing.assert_array_equal(a.predict(X), b.predict(X))  # the list-fitted model takes one X too
    np.testing.assert_array_equal(a.predict([XA, XB], split=True), b.predict(X, split=True))
    np.testing.assert_array_equal(a.score_targets([XA, XB], Y, split=True), b.score_targets(X, Y, split=True))
    assert a.score([XA, XB], Y) == b.score(X, Y)
    # "input" is the list form, as in himalaya
    c = BandedRidgeCV(groups="input", **kw).fit([XA, XB], Y)
    np.testing.assert_array_equal(c.coef_, a.coef_)
    # columns interleaved and labelled out of order, plus an unused column (label -1)
    perm = rng.permutation(13)
    labels = np.repeat([7, 3], [8, 5])[perm]  # band "3" (XB) sorts first
    Xp = np.hstack([X[:, perm], rng.standard_normal((120, 1))])
    d = BandedRidgeCV(groups=np.r_[labels, -1], **kw).fit(Xp, Y)
    e = BandedRidgeCV(**kw).fit([XB, XA], Y)
    for name in _FITTED:  # the same problem up to the order of the columns in a band (1e-13)
        np.testing.assert_allclose(getattr(d, name), getattr(e, name), rtol=1e-9, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(d.coef_[:13], a.coef_[perm], atol=1e-9)
    assert np.all(d.coef_[13] == 0) and d.n_features_in_ == 14 and d.n_features_per_band_ == [5, 8]
    np.testing.assert_allclose(d.predict(Xp), a.predict(X), atol=1e-12)
    with pytest.raises(ValueError, match="pass one X"):
        d.predict([XB, XA])
    with pytest.raises(ValueError, match="pass one X"):
        BandedRidgeCV(groups=np.r_[labels, -1], **kw).fit([XA, XB], Y)
    with pytest.raises(ValueError, match="'input' needs X as a list"):
        BandedRidgeCV(groups="input", **kw).fit(X, Y)


def test_banded_groups_in_pipeline_and_grid_search(rng):
    XA, XB, Y = _bands(rng, t=6)
    X = np.hstack([XA, XB])
    groups = np.repeat([0, 1], [8, 5])
    kw = dict(alphas=np.logspace(-1, 3, 5), device="cpu", dtype="float64")
    pipe = make_pipeline(StandardScaler(), BandedRidgeCV(groups=groups, **kw))
    scores = cross_val_score(pipe, X, Y, cv=3)
    by_hand = []
    for tr, te in KFold(3).split(X):
        sc = StandardScaler().fit(X[tr])
        Z = sc.transform(X)
        m = BandedRidgeCV(**kw).fit([Z[tr, :8], Z[tr, 8:]], Y[tr])
        by_hand.append(sk_r2(Y[te], m.predict([Z[te, :8], Z[te, 8:]])))
    np.testing.assert_allclose(scores, by_hand, atol=1e-12)
    gs = GridSearchCV(pipe, {"bandedridgecv__band_weights": [[[1, 0]], [[0, 1]], [[0.5, 0.5]]]}, cv=3).fit(X, Y)
    assert len(gs.cv_results_["mean_test_score"]) == 3


@pytest.mark.parametrize("fit_intercept", [False, True])
def test_banded_groups_matches_himalaya_groups(rng, fit_intercept):
    """himalaya's GroupRidgeCV with ``groups=<labels>`` on one X, columns interleaved."""
    pytest.importorskip("himalaya")
    from himalaya.ridge import GroupRidgeCV
    from himalaya.scoring import r2_score as h_r2

    XA, XB, Y = _bands(rng)
    perm = rng.permutation(13)
    X = np.hstack([XA, XB])[:, perm]
    labels = np.repeat([0, 1], [8, 5])[perm]
    alphas = np.logspace(-2, 4, 9)
    g = band_weight_grid(2)
    g = g[g.min(1) > 0]  # himalaya cannot scale a band by zero
    sp = dict(n_iter=g, alphas=alphas, score_func=h_r2, progress_bar=False)
    h = GroupRidgeCV(groups=labels, cv=5, fit_intercept=fit_intercept, solver_params=sp).fit(X, Y)
    m = BandedRidgeCV(groups=labels, alphas=alphas, device="cpu", dtype="float64", band_weights=g,
                      fit_intercept=fit_intercept).fit(X, Y)
    hg = np.exp(np.asarray(h.deltas_)) * np.asarray(h.best_alphas_)[None]
    agree = np.all(np.isclose(hg, m.best_band_weights_, atol=1e-8), 0) & np.isclose(h.best_alphas_, m.best_alphas_, rtol=1e-6)
    assert agree.mean() >= 0.95
    np.testing.assert_allclose(m.cv_scores_, np.asarray(h.cv_scores_), atol=1e-8)
    # himalaya's coef_ rows follow its bands ([X[:, groups == u] for u in unique(groups)]);
    # ours follow the input columns, as scikit-learn's do
    band_order = np.concatenate([np.flatnonzero(labels == u) for u in (0, 1)])
    np.testing.assert_allclose(m.coef_[band_order][:, agree], np.asarray(h.coef_)[:, agree], atol=1e-8)
    np.testing.assert_allclose(m.predict(X)[:, agree], np.asarray(h.predict(X))[:, agree], atol=1e-8)
