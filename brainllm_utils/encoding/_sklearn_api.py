"""scikit-learn estimators over the solver in :mod:`._solvers`: ``RidgeCV``,
``BandedRidgeCV`` (alias ``GroupRidgeCV``) and ``FracRidgeCV``.

They subclass scikit-learn's ``MultiOutputMixin``, ``RegressorMixin`` and ``BaseEstimator``
and pass ``sklearn.utils.estimator_checks`` (``tests/test_estimators.py``): they work in
``Pipeline``, ``cross_val_score``, ``GridSearchCV`` and ``clone``. The constructor only stores
its arguments; ``fit`` validates them (errors name the parameter and what was expected).

Selection follows himalaya (Dupré la Tour et al. 2022): per target, the alpha maximising
the mean over folds of the validation score (R² by default), with a ``1e-10·log α`` bias
towards larger alphas on ties. An integer ``cv`` means contiguous, unshuffled K-fold
(scikit-learn ``KFold``).

Scores: ``score(X, y)`` is scikit-learn's (one float, R² averaged uniformly over targets);
per-target scores are ``score_targets(X, y, metric="pearson" | "r2")``.

.. versionchanged:: 0.2
   ``score`` returned one Pearson r per target; it now follows scikit-learn (one float,
   R² averaged over targets). The per-target r is ``score_targets(X, y)``. An unfitted model
   raises scikit-learn's ``NotFittedError`` (was ``RuntimeError``).

The paper's protocol (Doerig et al. 2025; fracridge, Rokem & Kay 2020) is
``FracRidgeCV(fractions=np.linspace(0.05, 1.05, 20), fraction_per_target=False)``: one
fraction ``‖β_α‖/‖β_OLS‖`` for the whole brain, chosen by the mean R² over targets.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, MultiOutputMixin, RegressorMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, validate_data

from .._utils.docs import fill_doc
from ._scoring import pearson_r, r2_score
from ._solvers import (
    SCORINGS,
    as_device,
    band_weight_grid,
    cast,
    check_splits,
    cv_search,
    dirichlet_weights,
    frac_ridge_search,
    resolve_dtype,
)

__all__ = ["RidgeCV", "BandedRidgeCV", "GroupRidgeCV", "FracRidgeCV"]

_EDGE_WARN = 0.10  # warn when more than this fraction of targets sit at a grid edge
_METRICS = ("pearson", "r2")
_SOLVERS = ("auto", "primal", "kernel")


# ----------------------------------------------------------------------------- validation
def _check_bool(est, name):
    v = getattr(est, name)
    if not isinstance(v, (bool, np.bool_)):
        raise ValueError(f"{type(est).__name__}: {name} must be True or False, got {v!r}")
    return bool(v)


def _check_positive_int(est, name, allow_none=False):
    v = getattr(est, name)
    if v is None and allow_none:
        return None
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral) or v < 1:
        what = "a positive int" + (" or None" if allow_none else "")
        raise ValueError(f"{type(est).__name__}: {name} must be {what}, got {v!r}")
    return int(v)


def _check_choice(est, name, choices):
    v = getattr(est, name)
    if not isinstance(v, str) or v not in choices:
        raise ValueError(f"{type(est).__name__}: {name} must be one of {choices}, got {v!r}")
    return v


def _check_grid(est, name, default):
    v = getattr(est, name)
    if v is None:
        return np.asarray(default, dtype=np.float64)
    try:
        g = np.atleast_1d(np.asarray(v, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{type(est).__name__}: {name} must be an array of floats > 0, got {v!r}") from None
    if g.ndim != 1 or g.size == 0 or not np.all(np.isfinite(g)) or np.any(g <= 0):
        raise ValueError(f"{type(est).__name__}: {name} must be a non-empty 1-D array of finite "
                         f"floats > 0, got {v!r}")
    return g


def _check_random_state(est):
    v = est.random_state
    ok = (v is None or isinstance(v, (np.random.Generator, np.random.SeedSequence))
          or (isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_)) and v >= 0))
    if not ok:
        raise ValueError(f"{type(est).__name__}: random_state must be None, an int >= 0 or a "
                         f"numpy Generator, got {v!r}")
    return v


def _check_cv(est):
    cv = est.cv
    if isinstance(cv, (bool, np.bool_, str, bytes)):
        raise ValueError(f"{type(est).__name__}: cv must be an int >= 2, a splitter or an iterable "
                         f"of (train, val), got {cv!r}")
    if isinstance(cv, numbers.Integral):
        if cv < 2:
            raise ValueError(f"{type(est).__name__}: cv must be >= 2 folds, got {cv!r}")
        return int(cv)
    if hasattr(cv, "split") or hasattr(cv, "__iter__"):
        return cv
    raise ValueError(f"{type(est).__name__}: cv must be an int >= 2, a splitter (with split) or "
                     f"an iterable of (train, val), got {cv!r}")


def _splits(est, cv, n, X, Y, groups):
    if isinstance(cv, int) and n < cv:
        raise ValueError(f"{type(est).__name__}: {cv}-fold cross-validation needs at least {cv} "
                         f"samples, got n_samples={n}")
    return check_splits(cv, n, X, Y, groups)


class _Base(MultiOutputMixin, RegressorMixin, BaseEstimator):
    """Shared fit checks, prediction and per-target scores of the ridge estimators."""

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.allow_nan = False
        tags.input_tags.sparse = False
        return tags

    def _common_params(self):
        """Validate the arguments every estimator shares (scikit-learn: in fit, not __init__)."""
        _check_cv(self)
        _check_bool(self, "fit_intercept")
        _check_bool(self, "allow_tf32")
        _check_choice(self, "scoring", SCORINGS)
        _check_choice(self, "solver", _SOLVERS)
        try:
            dtype = resolve_dtype(self.dtype)
        except (ValueError, TypeError):
            raise ValueError(f"{type(self).__name__}: dtype must be 'float32' or 'float64', "
                             f"got {self.dtype!r}") from None
        return dtype, as_device(self.device)

    def _validate_xy(self, X, Y, dtype):
        X, Y = validate_data(self, X, Y, multi_output=True, y_numeric=True,
                             dtype=[np.float64, np.float32])
        self._y_1d = Y.ndim == 1
        X = cast(np.asarray(X), dtype)
        Y = cast(np.asarray(Y).reshape(Y.shape[0], -1), dtype)
        return X, Y

    def _validate_x(self, X):
        check_is_fitted(self)
        if not hasattr(self, "coef_"):  # FracRidgeCV(refit=False): CV scores only
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"This {type(self).__name__} was fitted with refit=False: it holds the "
                                 "CV scores only; fit it with refit=True to predict")
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    def _finish(self, P):
        return P[:, 0] if getattr(self, "_y_1d", False) else P

    @fill_doc
    def predict(self, X):
        """Predictions (n, t) as float64 (``(n,)`` if fitted on 1-D ``y``).

        Parameters
        ----------
        %(X_features)s

        Returns
        -------
        Y_pred : ndarray of float64 of shape (n_samples, n_targets) or (n_samples,)
            ``X @ coef_ + intercept_``; 1-D when the model was fitted on a 1-D ``y``.
        """
        X = self._validate_x(X)
        P = X.astype(np.float64) @ self.coef_.astype(np.float64) + self.intercept_
        return self._finish(P)

    @fill_doc
    def score_targets(self, X, y, metric="pearson"):
        """Per-target score of the predictions of ``X`` against ``y``.

        ``score`` gives scikit-learn's single number (R² averaged over targets); this gives
        one value per target. ``metric="pearson"`` (the default, the paper's metric) is what
        ``score`` returned before version 0.2.

        Parameters
        ----------
        %(X_features)s
        y : array-like of shape (n_samples, n_targets) or (n_samples,)
            True targets.
        metric : {"pearson", "r2"}, default="pearson"
            Pearson r, or R² (``1 - SSE/SST``; 0 for a constant target) per target.

        Returns
        -------
        scores : ndarray of float64 of shape (n_targets,) or float
            One score per target (a float when fitted on a 1-D ``y``).
        """
        if metric not in _METRICS:
            raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
        P = np.asarray(self.predict(X), dtype=np.float64)
        return self._per_target(P, y, metric)

    @staticmethod
    def _per_target(P, y, metric):
        y = np.asarray(y, dtype=np.float64)
        if y.shape != P.shape and y.size == P.size:
            y = y.reshape(P.shape)
        if y.shape != P.shape:
            raise ValueError(f"y has shape {y.shape}, the predictions {P.shape}")
        s = pearson_r(P, y) if metric == "pearson" else r2_score(y, P)
        return float(s) if P.ndim == 1 else np.asarray(s, dtype=np.float64)

    def _edge_report(self, alphas, best):
        alphas = np.asarray(alphas, dtype=float)
        if alphas.size < 2:
            self.alpha_at_edge_ = 0.0
            return
        lo, hi = alphas.min(), alphas.max()
        self.alpha_at_edge_ = float(np.mean((best == lo) | (best == hi)))
        if self.alpha_at_edge_ > _EDGE_WARN:
            warnings.warn(
                f"{100 * self.alpha_at_edge_:.1f}% of targets chose an alpha at the edge of the "
                f"grid [{lo:g}, {hi:g}]; consider widening `alphas`",
                UserWarning,
                stacklevel=3,
            )





@fill_doc
class RidgeCV(_Base):
    """Ridge regression with one penalty per target chosen by K-fold cross-validation.

    Solves ``β_j = argmin ‖y_j − Xβ − b_j‖² + α_j‖β‖²`` for every target ``j``, with
    ``α_j`` chosen from ``alphas`` by the mean validation score over the folds of ``cv``.
    A scikit-learn regressor: it works in ``Pipeline``, ``GridSearchCV`` and ``clone``.

    Parameters
    ----------
    %(alphas)s
    %(cv)s
    %(device)s
    %(fit_intercept)s
    %(scoring)s
    alpha_per_target : bool, default=True
        False: one alpha for all targets, by the mean score over targets (paper protocol).
    %(solver)s
    %(ridge_dtype)s
    %(allow_tf32)s
    %(memory_budget)s
    %(chunk_size)s

    Attributes
    ----------
    best_alphas_ : ndarray of shape (n_targets,)
        The chosen penalty of each target.
    coef_ : ndarray of shape (n_features, n_targets)
        Coefficients refitted on all samples (himalaya's layout; scikit-learn's ``Ridge``
        stores the transpose).
    intercept_ : ndarray of shape (n_targets,)
        Intercepts (zeros without ``fit_intercept``).
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean validation score over folds for every alpha.
    alpha_at_edge_ : float
        Fraction of targets whose alpha is the smallest or largest candidate (a warning is
        issued above 10 %).
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str of shape (n_features_in_,)
        Column names of ``X`` in ``fit``, when it was a DataFrame with string column names.
    n_chunks_ : int
        Target chunks the solver used.
    solver_ : str
        ``"primal"`` or ``"kernel"``: the solver used.

    Notes
    -----
    ``score(X, y)`` is scikit-learn's (one float, mean R² over targets);
    ``score_targets(X, y, metric=...)`` gives one Pearson r or R² per target.
    .. versionchanged:: 0.2
       ``score`` follows scikit-learn: one float, R² averaged uniformly over targets
       (``sklearn.metrics.r2_score(multioutput="uniform_average")``). It returned one
       Pearson r per target before; that is now ``score_targets(X, y)``
       (``metric="pearson"``, the default). Before ``fit``, methods raise scikit-learn's
       ``NotFittedError`` (was ``RuntimeError``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5)); Y = X @ rng.standard_normal((5, 3))
    >>> m = RidgeCV(alphas=[0.1, 1, 10], device="cpu").fit(X, Y)
    >>> m.coef_.shape, m.best_alphas_.shape, m.score_targets(X, Y).shape
    ((5, 3), (3,), (3,))
    """

    def __init__(
        self,
        alphas=None,
        cv=5,
        device="auto",
        *,
        fit_intercept=True,
        scoring="r2",
        alpha_per_target=True,
        solver="auto",
        dtype="float32",
        allow_tf32=False,
        memory_budget=None,
        chunk_size=None,
    ):
        self.alphas = alphas
        self.cv = cv
        self.device = device
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.alpha_per_target = alpha_per_target
        self.solver = solver
        self.dtype = dtype
        self.allow_tf32 = allow_tf32
        self.memory_budget = memory_budget
        self.chunk_size = chunk_size

    @fill_doc
    def fit(self, X, Y, groups=None):
        """Fit on X (n, p) and Y (n, t) or (n,); ``groups`` go to the splitter.

        Parameters
        ----------
        %(X_features)s
        %(Y_targets)s
        %(groups)s

        Returns
        -------
        self : RidgeCV
            The fitted estimator.
        """
        dtype, device = self._common_params()
        alphas = _check_grid(self, "alphas", np.logspace(-2, 6, 17))
        per_target = _check_bool(self, "alpha_per_target")
        budget = _check_positive_int(self, "memory_budget", allow_none=True)
        chunk = _check_positive_int(self, "chunk_size", allow_none=True)
        X, Y = self._validate_xy(X, Y, dtype)
        splits = _splits(self, _check_cv(self), X.shape[0], X, Y, groups)
        res = cv_search(
            [X], Y, alphas=alphas, gammas=np.ones((1, 1)), splits=splits,
            fit_intercept=bool(self.fit_intercept), scoring=self.scoring, local=per_target,
            solver=self.solver, device=device, dtype=dtype, budget=budget,
            allow_tf32=bool(self.allow_tf32), chunk_size=chunk, keep_grid=True,
        )
        self.best_alphas_ = res["best_alphas"]
        self.coef_ = res["coef"]
        self.intercept_ = res["intercept"] if self.fit_intercept else np.zeros(Y.shape[1])
        self.cv_scores_ = res["grid"][0]
        self.n_chunks_ = res["n_chunks"]
        self.solver_ = "kernel" if res["kernel"] else "primal"
        self._edge_report(alphas, self.best_alphas_)
        return self


def _is_band_list(X):
    """A list/tuple of 2-D bands (not a list of rows)."""
    return isinstance(X, (list, tuple)) and len(X) > 0 and all(np.ndim(x) == 2 for x in X)


@fill_doc
class BandedRidgeCV(_Base):
    """Banded (group) ridge: per-target band weights γ (on the simplex) and penalty α.

    For bands ``X₁ … X_B`` the model is ``ŷ = Σ_b X_b β_b`` with penalty
    ``Σ_b (α/γ_b)‖β_b‖²``; equivalently ridge with penalty α on ``[√γ₁X₁, …, √γ_BX_B]``.
    Candidates: ``band_weights`` if given, else a deterministic grid of ratios for 2–3
    bands (:func:`band_weight_grid`, pure bands included) or ``n_iter`` seeded Dirichlet
    samples (first uniform) plus the pure bands beyond 3. Each candidate costs one
    float64 ``eigh`` per fold of the block-scaled Gram ``D_γ G D_γ`` (no SVD); the best
    ``(γ, α)`` per target is kept as in himalaya (strictly better by more than machine
    epsilon replaces the incumbent).

    The bands come in one of two forms, as in himalaya's ``GroupRidgeCV``:

    - a **list of bands** ``[X₁, …, X_B]`` (``groups=None`` or ``"input"``);
    - **one X** with ``groups``, the band label of each column (columns with a negative
      label are not used; bands are ordered by label). This form is an ordinary 2-D input,
      so the estimator can sit at the end of a scikit-learn ``Pipeline``.

    Both give identical results for the same columns. One X without ``groups`` is one band
    (plain ridge).

    Parameters
    ----------
    %(alphas)s
    %(cv)s
    n_iter : int, default=20
        Random candidates when there are more than 3 bands.
    %(device)s
    %(random_state)s
        Draws the Dirichlet candidates (more than 3 bands).
    groups : array-like of int of shape (n_features,), "input" or None, default=None
        The band of each column of one 2-D X (negative: column unused); ``"input"`` or
        ``None`` with a list of bands. ``None`` with one X: one band. (Not the ``groups``
        of ``fit``, which go to the cross-validation splitter.)
    band_weights : array-like of shape (n_candidates, n_bands), optional
        Explicit candidates (each row is normalised to sum 1).
    %(fit_intercept)s
    %(scoring)s
    alpha_per_target : bool, default=True
        False: one (γ, α) for all targets, by the mean score over targets.
    %(solver)s
    %(ridge_dtype)s
    %(allow_tf32)s
    %(memory_budget)s
    %(chunk_size)s

    Attributes
    ----------
    best_band_weights_ : ndarray of shape (n_bands, n_targets)
        The chosen band weights γ of each target (columns sum to 1).
    best_alphas_ : ndarray of shape (n_targets,)
        The chosen penalty of each target.
    coef_ : ndarray of shape (n_features_in_, n_targets)
        Coefficients on the unscaled columns, in the order of the input columns (the
        concatenated bands for a list; zero for unused columns).
    intercept_ : ndarray of shape (n_targets,)
        Intercepts (zeros without ``fit_intercept``).
    cv_scores_ : ndarray of shape (n_candidates, n_targets)
        Best mean validation score over alphas, per band-weight candidate.
    band_weights_ : ndarray of shape (n_candidates, n_bands)
        The candidates searched.
    deltas_ : ndarray of shape (n_bands, n_targets)
        himalaya's ``log(γ/α)`` (``-inf`` for a dropped band).
    groups_ : ndarray of int of shape (n_features_in_,)
        Band index (0 … n_bands − 1) of each input column, −1 for unused columns.
    n_features_per_band_ : list of int
        Columns per band.
    n_features_in_ : int
        Number of input columns (all bands together).
    feature_names_in_ : ndarray of str of shape (n_features_in_,)
        Column names of a DataFrame ``X`` (one-X form) in ``fit``.

    Notes
    -----
    ``score(X, y)`` is scikit-learn's (one float, mean R² over targets);
    ``score_targets(X, y)`` gives one Pearson r per target and, with ``split=True``,
    each band's share of the R².

    .. versionchanged:: 0.2
       ``score`` follows scikit-learn: one float, R² averaged uniformly over targets. It
       returned one Pearson r per target (or, with ``split=True``, the per-band R² shares)
       before; those are now ``score_targets(X, y)`` and
       ``score_targets(X, y, metric="r2", split=True)``. One X with ``groups`` is accepted;
       before ``fit``, methods raise scikit-learn's ``NotFittedError`` (was ``RuntimeError``).
    """

    def __init__(
        self,
        alphas=None,
        cv=5,
        n_iter=20,
        device="auto",
        random_state=0,
        *,
        groups=None,
        band_weights=None,
        fit_intercept=True,
        scoring="r2",
        alpha_per_target=True,
        solver="auto",
        dtype="float32",
        allow_tf32=False,
        memory_budget=None,
        chunk_size=None,
    ):
        self.alphas = alphas
        self.cv = cv
        self.n_iter = n_iter
        self.device = device
        self.random_state = random_state
        self.groups = groups
        self.band_weights = band_weights
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.alpha_per_target = alpha_per_target
        self.solver = solver
        self.dtype = dtype
        self.allow_tf32 = allow_tf32
        self.memory_budget = memory_budget
        self.chunk_size = chunk_size

    def _candidates(self, n_bands):
        if self.band_weights is not None:
            try:
                g = np.atleast_2d(np.asarray(self.band_weights, dtype=np.float64))
            except (TypeError, ValueError):
                raise ValueError(f"BandedRidgeCV: band_weights must be a 2-D array of floats, "
                                 f"got {self.band_weights!r}") from None
            if g.ndim != 2 or g.shape[1] != n_bands:
                raise ValueError(f"BandedRidgeCV: band_weights has {g.shape[-1]} columns for {n_bands} bands")
            if not np.all(np.isfinite(g)) or np.any(g < 0) or np.any(g.sum(1) <= 0):
                raise ValueError("BandedRidgeCV: band_weights must be finite and >= 0 with a positive sum per row")
            return g / g.sum(1, keepdims=True)
        if n_bands <= 3:
            return band_weight_grid(n_bands)
        return dirichlet_weights(n_bands, int(self.n_iter), self.random_state)

    def _uses_input_groups(self):
        return self.groups is None or (isinstance(self.groups, str) and self.groups == "input")

    def _concat(self, X):
        """One 2-D input from either form, and the widths of a list of bands (else None)."""
        if isinstance(self.groups, str) and self.groups != "input":
            raise ValueError(f"BandedRidgeCV: groups must be an array of band labels, 'input' or None, "
                             f"got {self.groups!r}")
        if isinstance(X, (list, tuple)) and len(X) == 0:
            raise ValueError("BandedRidgeCV: X is an empty list; expected a list of 2-D bands "
                             "(n_samples, n_features_b) or one 2-D array")
        if not _is_band_list(X):
            if isinstance(self.groups, str):
                raise ValueError("BandedRidgeCV: groups='input' needs X as a list of 2-D bands")
            return X, None
        if not self._uses_input_groups():
            raise ValueError("BandedRidgeCV: groups assigns the columns of one 2-D X to bands; "
                             "pass one X, or groups=None (or 'input') with a list of bands")
        bands = [check_array(x, dtype=[np.float64, np.float32], input_name=f"X[{i}]")
                 for i, x in enumerate(X)]
        if len({b.shape[0] for b in bands}) != 1:
            raise ValueError(f"BandedRidgeCV: all bands must have the same number of samples, got "
                             f"{[b.shape[0] for b in bands]}")
        return np.concatenate(bands, axis=1), [b.shape[1] for b in bands]

    def _labels(self, n_features, widths):
        if widths is not None:
            return np.repeat(np.arange(len(widths)), widths)
        if self.groups is None:
            return np.zeros(n_features, dtype=np.int64)
        g = np.asarray(self.groups)
        if g.ndim != 1 or g.shape[0] != n_features:
            raise ValueError(f"BandedRidgeCV: groups must have one band label per column of X "
                             f"({n_features}), got shape {g.shape}")
        if g.dtype.kind not in "iu" and not (g.dtype.kind == "f" and np.all(g == np.round(g))):
            raise ValueError(f"BandedRidgeCV: groups must be integer band labels, got dtype {g.dtype}")
        g = g.astype(np.int64)
        if not np.any(g >= 0):
            raise ValueError("BandedRidgeCV: groups has no column with a band label >= 0")
        uniq = np.unique(g[g >= 0])
        return np.where(g >= 0, np.searchsorted(uniq, g), -1)

    @staticmethod
    def _columns(labels):
        out = []
        for b in range(int(labels.max()) + 1):
            c = np.flatnonzero(labels == b)
            out.append(slice(int(c[0]), int(c[-1]) + 1) if c[-1] - c[0] + 1 == c.size else c)
        return out

    @fill_doc
    def fit(self, X, Y, groups=None):
        """Fit on a list of bands (each (n, p_b)), or one X (n, p) with the ``groups`` parameter.

        Parameters
        ----------
        X : list of array-like of shape (n_samples, n_features_b), or array-like of shape (n_samples, n_features)
            The bands, or one matrix whose columns the ``groups`` parameter assigns to bands.
        %(Y_targets)s
        %(groups)s

        Returns
        -------
        self : BandedRidgeCV
            The fitted estimator.
        """
        dtype, device = self._common_params()
        alphas = _check_grid(self, "alphas", np.logspace(-2, 6, 17))
        per_target = _check_bool(self, "alpha_per_target")
        budget = _check_positive_int(self, "memory_budget", allow_none=True)
        chunk = _check_positive_int(self, "chunk_size", allow_none=True)
        _check_positive_int(self, "n_iter")
        _check_random_state(self)
        Xcat, widths = self._concat(X)
        X, Y = self._validate_xy(Xcat, Y, dtype)
        labels = self._labels(X.shape[1], widths)
        cols = self._columns(labels)
        Xs = [X[:, c] for c in cols]
        gammas = self._candidates(len(Xs))
        splits = _splits(self, _check_cv(self), X.shape[0], X, Y, groups)
        res = cv_search(
            Xs, Y, alphas=alphas, gammas=gammas, splits=splits,
            fit_intercept=bool(self.fit_intercept), scoring=self.scoring, local=per_target,
            solver=self.solver, device=device, dtype=dtype, budget=budget,
            allow_tf32=bool(self.allow_tf32), chunk_size=chunk,
        )
        coef = np.zeros((X.shape[1], Y.shape[1]), dtype=res["coef"].dtype)
        start = 0
        for c, x in zip(cols, Xs):
            coef[c] = res["coef"][start:start + x.shape[1]]
            start += x.shape[1]
        self.groups_ = labels
        self.band_weights_ = gammas
        self.best_band_weights_ = gammas[res["best_gamma_idx"]].T.copy()
        self.best_alphas_ = res["best_alphas"]
        self.coef_ = coef
        self.intercept_ = res["intercept"] if self.fit_intercept else np.zeros(Y.shape[1])
        self.cv_scores_ = res["cv_best"]
        with np.errstate(divide="ignore"):
            self.deltas_ = np.log(self.best_band_weights_ / self.best_alphas_[None, :])
        self.n_features_per_band_ = [x.shape[1] for x in Xs]
        self.solver_ = "kernel" if res["kernel"] else "primal"
        self._edge_report(alphas, self.best_alphas_)
        return self

    def _input(self, X):
        check_is_fitted(self)
        if _is_band_list(X):
            widths = [np.shape(x)[1] for x in X]
            contiguous = np.array_equal(self.groups_, np.repeat(np.arange(len(widths)), widths))
            if widths != list(self.n_features_per_band_) or not contiguous:
                raise ValueError(f"BandedRidgeCV: band widths {widths} differ from the fit "
                                 f"{list(self.n_features_per_band_)} (or the model was fitted on one "
                                 "X with groups: pass one X)")
            bands = [check_array(x, dtype=[np.float64, np.float32], input_name=f"X[{i}]")
                     for i, x in enumerate(X)]
            if len({b.shape[0] for b in bands}) != 1:
                raise ValueError("BandedRidgeCV: all bands must have the same number of samples")
            X = np.concatenate(bands, axis=1)
        return validate_data(self, X, reset=False, dtype=[np.float64, np.float32])

    @fill_doc
    def predict(self, X, split=False):
        """Predictions (n, t); with ``split=True`` the per-band parts (n_bands, n, t).

        The split holds ``X_b β_b`` for each band, so ``split.sum(0) + intercept_`` equals
        the joint prediction.

        Parameters
        ----------
        X : list of array-like of shape (n_samples, n_features_b), or array-like of shape (n_samples, n_features)
            In either form of :meth:`fit` (band widths and columns as in the fit).
        split : bool, default=False
            Return each band's part (without the intercept) instead of the sum.

        Returns
        -------
        Y_pred : ndarray of float64 of shape (n_samples, n_targets) or (n_bands, n_samples, n_targets)
            The joint prediction, or the per-band parts with ``split=True`` (the target axis
            dropped when fitted on a 1-D ``y``).
        """
        X = self._input(X).astype(np.float64)
        coef = self.coef_.astype(np.float64)
        parts = np.stack([X[:, c] @ coef[c] for c in self._columns(self.groups_)])
        if split:
            return parts[..., 0] if getattr(self, "_y_1d", False) else parts
        return self._finish(parts.sum(0) + self.intercept_)

    @fill_doc
    def score_targets(self, X, y, metric=None, split=False):
        """Per-target scores; with ``split=True`` per-band R² shares (n_bands, t).

        The split uses the product measure (as himalaya's ``r2_score_split``):
        ``R²_b = (2⟨ŷ_b, y⟩ − ⟨ŷ_b, ŷ⟩)/‖y‖²`` on test-centred data; the shares sum to the
        joint R².

        Parameters
        ----------
        X : list of array-like or array-like
            As for :meth:`predict`.
        y : array-like of shape (n_samples, n_targets) or (n_samples,)
            Test targets.
        metric : {"pearson", "r2"}, optional
            Per-target Pearson r (default) or R²; with ``split=True`` only ``"r2"`` (the
            default there).
        split : bool, default=False
            Return the per-band R² shares instead of one score per target.

        Returns
        -------
        scores : ndarray of float64 of shape (n_targets,) or (n_bands, n_targets)
            One score per target, or the R² share of each band with ``split=True``.
        """
        if not split:
            return super().score_targets(X, y, metric="pearson" if metric is None else metric)
        if metric not in (None, "r2"):
            raise ValueError(f"split=True gives R² shares: metric must be 'r2' (or None), got {metric!r}")
        parts = self.predict(X, split=True)
        if parts.ndim == 2:
            parts = parts[..., None]
        Y = np.asarray(y, dtype=np.float64).reshape(parts.shape[1], -1)
        if Y.shape != parts.shape[1:]:
            raise ValueError(f"y has shape {np.shape(y)}, the predictions {parts.shape[1:]}")
        parts = parts - parts.mean(1, keepdims=True)
        yc = Y - Y.mean(0)
        full = parts.sum(0)
        ss = (yc**2).sum(0)
        ss = np.where(ss > 0, ss, 1.0)
        return (2 * (parts * yc[None]).sum(1) - (parts * full[None]).sum(1)) / ss


#: himalaya's name for the same estimator
GroupRidgeCV = BandedRidgeCV


@fill_doc
class FracRidgeCV(_Base):
    """Fractional ridge (Rokem & Kay 2020) with K-fold selection of the fraction.

    For each target and fraction ``f`` the penalty ``α`` solves
    ``‖β_α‖ = f·‖β_OLS‖`` (exactly, to ~1e-12, by Newton's method in float64 on the fold's
    eigenvalues).
    ``fraction_per_target=False`` (default) is the paper's protocol: one fraction for the
    whole brain by the mean CV R² over targets (Doerig et al. 2025 used
    ``np.linspace(0.05, 1.05, 20)``, 5-fold unshuffled KFold, ``fit_intercept=True``).

    Parameters
    ----------
    fractions : array-like of float > 0, optional
        Candidate fractions ``‖β_α‖/‖β_OLS‖``; ``None``: ``np.linspace(0.05, 1.05, 20)``
        (the paper's grid). Fractions above 1 give negative penalties.
    %(cv)s
    %(device)s
    fraction_per_target : bool, default=False
        True: one fraction per target; False: one for all targets, by the mean CV score
        over targets (the paper's protocol).
    %(fit_intercept)s
    %(scoring)s
    %(solver)s
    %(ridge_dtype)s
    %(allow_tf32)s
    refit : bool, default=True
        Refit on all samples with the chosen fraction(s). ``False``: only the CV scores and
        choices (``cv_scores_``, ``best_fractions_``, ``fractions_``), as scikit-learn's
        ``GridSearchCV(refit=False)``; ``predict`` then raises ``NotFittedError``. For a
        search whose refit is done elsewhere (it costs about one more fold).

    Attributes
    ----------
    best_fractions_ : ndarray of shape (n_targets,)
        The chosen fraction of each target.
    best_alphas_ : ndarray of shape (n_targets,)
        The penalty of each target on all training data for its fraction (``refit=True``).
    coef_ : ndarray of shape (n_features, n_targets)
        Coefficients refitted on all samples (``refit=True``).
    intercept_ : ndarray of shape (n_targets,)
        Intercepts (zeros without ``fit_intercept``; ``refit=True``).
    cv_scores_ : ndarray of shape (n_fractions, n_targets)
        Mean validation score over folds for every fraction.
    fractions_ : ndarray of shape (n_fractions,)
        The fractions searched.
    n_features_in_ : int
        Number of features seen in ``fit``.
    feature_names_in_ : ndarray of str of shape (n_features_in_,)
        Column names of a DataFrame ``X`` in ``fit``.

    Notes
    -----
    ``predict``, ``score`` and ``score_targets`` are those of :class:`RidgeCV`.

    .. versionchanged:: 0.2
       ``score`` follows scikit-learn: one float, R² averaged uniformly over targets. It
       returned one Pearson r per target before; that is now ``score_targets(X, y)``.
       ``predict`` is 1-D after a fit on a 1-D ``y`` (it stayed 2-D), and before ``fit``
       methods raise scikit-learn's ``NotFittedError``.
    """

    def __init__(
        self,
        fractions=None,
        cv=5,
        device="auto",
        *,
        fraction_per_target=False,
        fit_intercept=True,
        scoring="r2",
        solver="auto",
        dtype="float32",
        allow_tf32=False,
        refit=True,
    ):
        self.fractions = fractions
        self.cv = cv
        self.device = device
        self.fraction_per_target = fraction_per_target
        self.fit_intercept = fit_intercept
        self.scoring = scoring
        self.solver = solver
        self.dtype = dtype
        self.allow_tf32 = allow_tf32
        self.refit = refit

    @fill_doc
    def fit(self, X, Y, groups=None):
        """Choose the fraction(s) by K-fold CV and refit on all samples.

        Parameters
        ----------
        %(X_features)s
        %(Y_targets)s
        %(groups)s

        Returns
        -------
        self : FracRidgeCV
            The fitted estimator.
        """
        dtype, device = self._common_params()
        fracs = _check_grid(self, "fractions", np.linspace(0.05, 1.05, 20))
        per_target = _check_bool(self, "fraction_per_target")
        refit = _check_bool(self, "refit")
        X, Y = self._validate_xy(X, Y, dtype)
        splits = _splits(self, _check_cv(self), X.shape[0], X, Y, groups)
        res = frac_ridge_search(X, Y, fracs=fracs, splits=splits, fit_intercept=bool(self.fit_intercept),
                                scoring=self.scoring, per_target=per_target,
                                solver=self.solver, device=device, dtype=dtype,
                                allow_tf32=bool(self.allow_tf32), refit=refit)
        for name in ("best_alphas_", "coef_", "intercept_"):  # a refit=False fit drops the last ones
            self.__dict__.pop(name, None)
        self.cv_scores_ = res["cv_scores"]
        self.best_fractions_ = fracs[res["best"]]
        self.fractions_ = fracs
        if refit:
            self.best_alphas_ = res["alphas"]
            self.coef_ = res["coef"]
            self.intercept_ = res["intercept"] if self.fit_intercept else np.zeros(Y.shape[1])
        return self
