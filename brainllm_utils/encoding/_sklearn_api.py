"""scikit-learn-style estimators over the solver in :mod:`._solvers`: ``RidgeCV``,
``BandedRidgeCV`` (alias ``GroupRidgeCV``) and ``FracRidgeCV``.

Selection follows himalaya (Dupré la Tour et al. 2022): per target, the alpha maximising
the mean over folds of the validation score (R² by default), with a ``1e-10·log α`` bias
towards larger alphas on ties. An integer ``cv`` means contiguous, unshuffled K-fold
(scikit-learn ``KFold``). Deviation from scikit-learn, as in himalaya: ``score`` returns
one value per target (here the Pearson r, the paper's metric).

The paper's protocol (Doerig et al. 2025; fracridge, Rokem & Kay 2020) is
``FracRidgeCV(fractions=np.linspace(0.05, 1.05, 20), fraction_per_target=False)``: one
fraction ``‖β_α‖/‖β_OLS‖`` for the whole brain, chosen by the mean R² over targets.
"""

from __future__ import annotations

import warnings

import numpy as np

from .._utils.docs import fill_doc
from ._scoring import pearson_r
from ._solvers import (
    as_2d_float,
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


class _Base:
    def get_params(self, deep=True):
        """The constructor's arguments (scikit-learn's estimator API).

        Parameters
        ----------
        deep : bool, default=True
            Accepted for scikit-learn compatibility; these estimators hold no
            sub-estimators, so it changes nothing.

        Returns
        -------
        params : dict
            Argument name → current value.
        """
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    def set_params(self, **params):
        """Set constructor arguments (scikit-learn's estimator API); no validation here.

        Parameters
        ----------
        **params
            Argument name → new value.

        Returns
        -------
        self : object
            The estimator.
        """
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items() if not isinstance(v, np.ndarray))
        return f"{type(self).__name__}({args})"

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted; call fit first")

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
        Coefficients refitted on all samples.
    intercept_ : ndarray of shape (n_targets,)
        Intercepts (zeros without ``fit_intercept``).
    cv_scores_ : ndarray of shape (n_alphas, n_targets)
        Mean validation score over folds for every alpha.
    alpha_at_edge_ : float
        Fraction of targets whose alpha is the smallest or largest candidate (a warning is
        issued above 10 %).

    Notes
    -----
    ``score`` returns the per-target Pearson r (a documented deviation from scikit-learn,
    whose ``score`` is a single R²).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((60, 5)); Y = X @ rng.standard_normal((5, 3))
    >>> m = RidgeCV(alphas=[0.1, 1, 10], device="cpu").fit(X, Y)
    >>> m.coef_.shape, m.best_alphas_.shape
    ((5, 3), (3,))
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

    def _alphas(self):
        return np.logspace(-2, 6, 17) if self.alphas is None else np.atleast_1d(np.asarray(self.alphas, float))

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
        dtype = resolve_dtype(self.dtype)
        device = as_device(self.device)
        X = cast(as_2d_float(X, "X"), dtype)
        Y0 = np.asarray(Y)
        self._ravel = Y0.ndim == 1
        Y = cast(as_2d_float(Y, "Y"), dtype)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y have different numbers of samples: {X.shape[0]} vs {Y.shape[0]}")
        splits = check_splits(self.cv, X.shape[0], X, Y, groups)
        alphas = self._alphas()
        res = cv_search(
            [X], Y, alphas=alphas, gammas=np.ones((1, 1)), splits=splits,
            fit_intercept=self.fit_intercept, scoring=self.scoring, local=self.alpha_per_target,
            solver=self.solver, device=device, dtype=dtype, budget=self.memory_budget,
            allow_tf32=self.allow_tf32, chunk_size=self.chunk_size, keep_grid=True,
        )
        self.best_alphas_ = res["best_alphas"]
        self.coef_ = res["coef"]
        self.intercept_ = res["intercept"] if self.fit_intercept else np.zeros(Y.shape[1])
        self.cv_scores_ = res["grid"][0]
        self.n_features_in_ = X.shape[1]
        self.n_chunks_ = res["n_chunks"]
        self.solver_ = "kernel" if res["kernel"] else "primal"
        self._edge_report(alphas, self.best_alphas_)
        return self

    @fill_doc
    def predict(self, X):
        """Predictions (n, t) as float64 (``(n,)`` if fitted on 1-D Y).

        Parameters
        ----------
        %(X_features)s

        Returns
        -------
        Y_pred : ndarray of float64 of shape (n_samples, n_targets) or (n_samples,)
            ``X @ coef_ + intercept_``; 1-D when the model was fitted on a 1-D ``Y``.
        """
        self._check_fitted()
        X = as_2d_float(X, "X")
        if X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, the model {self.coef_.shape[0]}")
        P = X.astype(np.float64) @ self.coef_.astype(np.float64) + self.intercept_
        return P[:, 0] if getattr(self, "_ravel", False) else P

    @fill_doc
    def score(self, X, Y):
        """Per-target Pearson r between predictions and Y (deviation from scikit-learn).

        Parameters
        ----------
        %(X_features)s
        %(Y_targets)s

        Returns
        -------
        r : ndarray of float64 of shape (n_targets,) or float
            Pearson r of each target (a float when fitted on a 1-D ``Y``).
        """
        P = self.predict(X)
        Y = np.asarray(Y, dtype=np.float64)
        if P.ndim == 1:
            return float(pearson_r(P, Y.ravel()))
        return pearson_r(P, Y)


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

    Parameters
    ----------
    %(alphas)s
    %(cv)s
    n_iter : int, default=20
        Random candidates when there are more than 3 bands.
    %(device)s
    %(random_state)s
        Draws the Dirichlet candidates (more than 3 bands).
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
    coef_ : ndarray of shape (n_features_total, n_targets)
        Coefficients on the unscaled, concatenated bands.
    intercept_ : ndarray of shape (n_targets,)
        Intercepts (zeros without ``fit_intercept``).
    cv_scores_ : ndarray of shape (n_candidates, n_targets)
        Best mean validation score over alphas, per band-weight candidate.
    band_weights_ : ndarray of shape (n_candidates, n_bands)
        The candidates searched.
    deltas_ : ndarray of shape (n_bands, n_targets)
        himalaya's ``log(γ/α)`` (``-inf`` for a dropped band).
    """

    def __init__(
        self,
        alphas=None,
        cv=5,
        n_iter=20,
        device="auto",
        random_state=0,
        *,
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
            g = np.atleast_2d(np.asarray(self.band_weights, dtype=np.float64))
            if g.shape[1] != n_bands:
                raise ValueError(f"band_weights has {g.shape[1]} columns for {n_bands} bands")
            if np.any(g < 0) or np.any(g.sum(1) <= 0):
                raise ValueError("band_weights must be >= 0 with a positive sum per row")
            return g / g.sum(1, keepdims=True)
        if n_bands <= 3:
            return band_weight_grid(n_bands)
        return dirichlet_weights(n_bands, int(self.n_iter), self.random_state)

    def _check_Xs(self, Xs, dtype=None):
        if isinstance(Xs, np.ndarray) and Xs.ndim == 2:
            Xs = [Xs]
        Xs = [as_2d_float(x, f"Xs[{i}]") for i, x in enumerate(Xs)]
        if len({x.shape[0] for x in Xs}) != 1:
            raise ValueError("all bands must have the same number of samples")
        if dtype is not None:
            Xs = [cast(x, dtype) for x in Xs]
        return Xs

    @fill_doc
    def fit(self, Xs, Y, groups=None):
        """Fit on a list of bands ``Xs`` (each (n, p_b)) and Y (n, t).

        Parameters
        ----------
        %(Xs)s
        %(Y_targets)s
        %(groups)s

        Returns
        -------
        self : BandedRidgeCV
            The fitted estimator.
        """
        dtype = resolve_dtype(self.dtype)
        device = as_device(self.device)
        Xs = self._check_Xs(Xs, dtype)
        Y = cast(as_2d_float(Y, "Y"), dtype)
        if Xs[0].shape[0] != Y.shape[0]:
            raise ValueError("Xs and Y have different numbers of samples")
        gammas = self._candidates(len(Xs))
        alphas = np.logspace(-2, 6, 17) if self.alphas is None else np.atleast_1d(np.asarray(self.alphas, float))
        splits = check_splits(self.cv, Y.shape[0], np.concatenate(Xs, 1), Y, groups)
        res = cv_search(
            Xs, Y, alphas=alphas, gammas=gammas, splits=splits,
            fit_intercept=self.fit_intercept, scoring=self.scoring, local=self.alpha_per_target,
            solver=self.solver, device=device, dtype=dtype, budget=self.memory_budget,
            allow_tf32=self.allow_tf32, chunk_size=self.chunk_size,
        )
        self.band_weights_ = gammas
        self.best_band_weights_ = gammas[res["best_gamma_idx"]].T.copy()
        self.best_alphas_ = res["best_alphas"]
        self.coef_ = res["coef"]
        self.intercept_ = res["intercept"] if self.fit_intercept else np.zeros(Y.shape[1])
        self.cv_scores_ = res["cv_best"]
        with np.errstate(divide="ignore"):
            self.deltas_ = np.log(self.best_band_weights_ / self.best_alphas_[None, :])
        self.n_features_per_band_ = [x.shape[1] for x in Xs]
        self.solver_ = "kernel" if res["kernel"] else "primal"
        self._edge_report(alphas, self.best_alphas_)
        return self

    def _band_slices(self):
        e = np.concatenate([[0], np.cumsum(self.n_features_per_band_)])
        return [slice(a, b) for a, b in zip(e[:-1], e[1:])]

    @fill_doc
    def predict(self, Xs, split=False):
        """Predictions (n, t); with ``split=True`` the per-band parts (n_bands, n, t).

        The split holds ``X_b β_b`` for each band, so ``split.sum(0) + intercept_`` equals
        the joint prediction.

        Parameters
        ----------
        %(Xs)s
            Band widths must equal those of the fit.
        split : bool, default=False
            Return each band's part (without the intercept) instead of the sum.

        Returns
        -------
        Y_pred : ndarray of float64 of shape (n_samples, n_targets) or (n_bands, n_samples, n_targets)
            The joint prediction, or the per-band parts with ``split=True``.
        """
        self._check_fitted()
        Xs = self._check_Xs(Xs)
        if [x.shape[1] for x in Xs] != list(self.n_features_per_band_):
            raise ValueError(f"band widths {[x.shape[1] for x in Xs]} differ from the fit {self.n_features_per_band_}")
        coef = self.coef_.astype(np.float64)
        parts = np.stack([x.astype(np.float64) @ coef[sl] for x, sl in zip(Xs, self._band_slices())])
        if split:
            return parts
        return parts.sum(0) + self.intercept_

    @fill_doc
    def score(self, Xs, Y, split=False):
        """Per-target Pearson r; with ``split=True`` per-band R² shares (n_bands, t).

        The split uses the product measure (as himalaya's ``r2_score_split``):
        ``R²_b = (2⟨ŷ_b, y⟩ − ⟨ŷ_b, ŷ⟩)/‖y‖²`` on test-centred data; the shares sum to the
        joint R².

        Parameters
        ----------
        %(Xs)s
        Y : array-like of shape (n_samples, n_targets)
            Test targets.
        split : bool, default=False
            Return the per-band R² shares instead of the joint Pearson r.

        Returns
        -------
        scores : ndarray of float64 of shape (n_targets,) or (n_bands, n_targets)
            Pearson r per target, or the R² share of each band with ``split=True``.
        """
        Y = np.asarray(Y, dtype=np.float64)
        if not split:
            return pearson_r(self.predict(Xs), Y)
        parts = self.predict(Xs, split=True)
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
    ``‖β_α‖ = f·‖β_OLS‖`` (exactly, by bisection in float64 on the fold's eigenvalues).
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

    Attributes
    ----------
    best_fractions_ : ndarray of shape (n_targets,)
        The chosen fraction of each target.
    best_alphas_ : ndarray of shape (n_targets,)
        The penalty of each target on all training data for its fraction.
    coef_ : ndarray of shape (n_features, n_targets)
        Coefficients refitted on all samples.
    intercept_ : ndarray of shape (n_targets,)
        Intercepts (zeros without ``fit_intercept``).
    cv_scores_ : ndarray of shape (n_fractions, n_targets)
        Mean validation score over folds for every fraction.
    fractions_ : ndarray of shape (n_fractions,)
        The fractions searched.

    Notes
    -----
    ``predict`` and ``score`` are those of :class:`RidgeCV` (predictions stay 2-D even
    after a fit on a 1-D ``Y``).
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
        dtype = resolve_dtype(self.dtype)
        device = as_device(self.device)
        X = cast(as_2d_float(X, "X"), dtype)
        Y = cast(as_2d_float(Y, "Y"), dtype)
        fracs = np.linspace(0.05, 1.05, 20) if self.fractions is None else np.atleast_1d(np.asarray(self.fractions, float))
        if np.any(fracs <= 0):
            raise ValueError("fractions must be > 0")
        splits = check_splits(self.cv, X.shape[0], X, Y, groups)
        res = frac_ridge_search(X, Y, fracs=fracs, splits=splits, fit_intercept=self.fit_intercept,
                                scoring=self.scoring, per_target=self.fraction_per_target,
                                solver=self.solver, device=device, dtype=dtype,
                                allow_tf32=self.allow_tf32)
        self.cv_scores_ = res["cv_scores"]
        self.best_fractions_ = fracs[res["best"]]
        self.best_alphas_ = res["alphas"]
        self.coef_ = res["coef"]
        self.intercept_ = res["intercept"] if self.fit_intercept else np.zeros(Y.shape[1])
        self.fractions_ = fracs
        return self

    predict = RidgeCV.predict
    score = RidgeCV.score

