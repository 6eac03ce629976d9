"""The one ridge solver behind every estimator of :mod:`brainllm_utils.encoding`.

Written in torch so that the CPU and the GPU run the same code:

- the Gram matrix ``XᵀX`` (or the kernel ``XXᵀ`` when ``p > n``) is formed **once**, in
  float64; each fold's training Gram is the full Gram minus the validation block
  (``G − X_valᵀX_val``), centred by a rank-one correction when ``fit_intercept=True``;
- each fold (and each band weighting ``γ``: block scaling ``D_γ G D_γ``) costs one
  float64 ``eigh``; there is no SVD of the data matrix;
- targets are projected **once** per fold onto the eigenbasis (``Z = VᵀXᵀY``), then each
  alpha costs one GEMM ``(W·diag(1/(s+α))) Z`` whose output is the validation residual
  (``addmm``), scored at once; the ``(n_alphas × n × t)`` prediction tensor never exists;
- with float32 data on the CPU, when it costs less (many alphas, few features), every
  alpha's residual norm comes instead from products shared by all alphas, by partial
  fractions of ``1/((s_j + α)(s_k + α))`` in float64 (:func:`_pf_plan`): at Benchmark A a
  fold's scoring takes 0.2 s instead of 0.37 s, and its R² lie within 1.3e-7 of a float64
  solve's (the float32 products': 1.1e-6);
- targets are streamed in chunks sized from free memory (``torch.cuda.mem_get_info`` on
  a GPU, a RAM budget on the CPU);
- the folds' big temporaries (projected targets, residuals) live in scratch buffers reused
  from fold to fold, and centring happens in place on the solver's own copies: fresh memory
  costs page faults (on a 2-core CPU at Benchmark A's size, about 0.3 s of a 4 s fit);
- data are float32 (decompositions float64); TF32 is off unless ``allow_tf32=True``.

Selection follows himalaya (Dupré la Tour et al. 2022): per target, the alpha maximising
the mean over folds of the validation score (R² by default), with a ``1e-10·log α`` bias
towards larger alphas on ties. An integer ``cv`` means contiguous, unshuffled K-fold
(scikit-learn ``KFold``).

The estimators (:mod:`._sklearn_api`) validate their arguments and call :func:`cv_search` or
:func:`frac_ridge_search`; nothing here stores state between calls.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._utils.device import import_torch as _torch
from .._utils.device import resolve_device, tf32
from .._utils.docs import fill_doc
from .._utils.numeric import check_int

__all__ = ["SCORINGS", "kfold_splits", "check_splits", "band_weight_grid", "dirichlet_weights",
           "resolve_dtype", "as_device", "as_2d_float", "cast", "cv_search", "frac_ridge_search"]

SCORINGS = ("r2", "pearson", "neg_mse")


@fill_doc
def as_device(device: Any):
    """A ``torch.device`` from the package-wide :func:`~brainllm_utils._utils.device.resolve_device`.

    Parameters
    ----------
    %(device)s

    Returns
    -------
    torch.device
        The resolved device.
    """
    return _torch().device(resolve_device(device))


def resolve_dtype(dtype: Any):
    """The torch dtype of a ``dtype`` argument (float32 or float64 only).

    Parameters
    ----------
    dtype : {"float32", "float64"}, numpy or torch float dtype
        The requested precision.

    Returns
    -------
    torch.dtype
        ``torch.float32`` or ``torch.float64``.

    Raises
    ------
    ValueError
        For any other dtype.
    """
    torch = _torch()
    if dtype in ("float32", np.float32, torch.float32):
        return torch.float32
    if dtype in ("float64", np.float64, torch.float64):
        return torch.float64
    raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")


def _memory_budget(device, budget: int | None) -> int:
    """Bytes available for one chunk of targets."""
    if budget is not None:
        return int(budget)
    torch = _torch()
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * 0.5)
    try:
        avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        avail = 8 << 30
    return int(min(max(avail * 0.25, 256 << 20), 4 << 30))


def kfold_splits(n_samples: int, n_splits: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous, unshuffled K-fold splits (identical to ``sklearn.model_selection.KFold``).

    The first ``n_samples % n_splits`` folds hold one extra sample.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    n_splits : int, default=5
        Number of folds, ``2 <= n_splits <= n_samples``.

    Returns
    -------
    splits : list of tuple of (ndarray, ndarray)
        ``(train, val)`` index arrays, one pair per fold, validation folds in order.

    Examples
    --------
    >>> [v.tolist() for _, v in kfold_splits(5, 2)]
    [[0, 1, 2], [3, 4]]
    """
    n_samples = check_int(n_samples, "n_samples", min_value=0)
    n_splits = check_int(n_splits, "n_splits", min_value=2)
    if n_splits > n_samples:
        raise ValueError(f"cv={n_splits} needs 2 <= cv <= n_samples ({n_samples})")
    sizes = np.full(n_splits, n_samples // n_splits)
    sizes[: n_samples % n_splits] += 1
    idx = np.arange(n_samples)
    out, start = [], 0
    for size in sizes:
        val = idx[start : start + size]
        out.append((np.concatenate([idx[:start], idx[start + size :]]), val))
        start += size
    return out


def check_splits(cv, n_samples: int, X=None, Y=None, groups=None):
    """The ``(train, val)`` index pairs of a ``cv`` argument, checked to be non-empty.

    Parameters
    ----------
    cv : int, splitter or iterable of (train, val)
        An int: :func:`kfold_splits`; an object with ``split``: ``cv.split(X, Y, groups)``;
        otherwise the pairs themselves.
    n_samples : int
        Number of samples.
    X : array-like of shape (n_samples, n_features), optional
        Passed to a splitter (zeros of shape ``(n_samples, 1)`` when missing).
    Y : array-like of shape (n_samples, n_targets), optional
        Passed to a splitter.
    groups : array-like of shape (n_samples,), optional
        Passed to a splitter (e.g. ``GroupKFold``).

    Returns
    -------
    splits : list of tuple of (ndarray, ndarray)
        ``(train, val)`` index arrays.

    Raises
    ------
    ValueError
        When ``cv`` gives no split, or a split with an empty train or validation set.
    """
    if isinstance(cv, (int, np.integer)):
        splits = kfold_splits(n_samples, int(cv))
    elif hasattr(cv, "split"):
        Xd = X if X is not None else np.zeros((n_samples, 1))
        splits = [(np.asarray(tr), np.asarray(va)) for tr, va in cv.split(Xd, Y, groups)]
    else:  # an iterable of (train, val) pairs
        splits = [(np.asarray(tr), np.asarray(va)) for tr, va in cv]
    if not splits:
        raise ValueError("cv produced no splits")
    for tr, va in splits:
        if len(tr) == 0 or len(va) == 0:
            raise ValueError("empty train or validation set in cv")
    return splits


def band_weight_grid(n_bands: int, n_ratios: int | None = None) -> np.ndarray:
    """Deterministic band-weight candidates on the simplex for 2 or 3 bands.

    Two bands: ``n_ratios`` (default 11) log-spaced ratios ``γ₁/γ₂`` in ``[1e-2.5, 1e2.5]``
    plus both pure bands. Three bands: ratios ``(10^i, 10^j, 1)`` for i, j in −2…2, every
    pair alone with ratios 10^−2…10^2, and the three pure bands. Rows sum to 1.

    Parameters
    ----------
    n_bands : int
        1, 2 or 3 (``ValueError`` beyond; use :func:`dirichlet_weights`).
    n_ratios : int, optional
        Ratios per pair of bands (default 11 for two bands, 5 exponents for three).

    Returns
    -------
    weights : ndarray of float64 of shape (n_candidates, n_bands)
        Unique candidates, each row on the simplex (sums to 1).
    """
    n_bands = check_int(n_bands, "n_bands", min_value=1)
    n_ratios = check_int(n_ratios, "n_ratios", min_value=1, allow_none=True)
    if n_bands > 3:
        raise ValueError(f"n_bands={n_bands}: band_weight_grid handles 1-3 bands; use random search "
                         "(dirichlet_weights) beyond")
    rows = []
    if n_bands == 1:
        return np.ones((1, 1))
    if n_bands == 2:
        k = 11 if n_ratios is None else int(n_ratios)
        for lr in np.linspace(-2.5, 2.5, k):
            rows.append([10**lr, 1.0])
        rows += [[1.0, 0.0], [0.0, 1.0]]
    elif n_bands == 3:
        k = 5 if n_ratios is None else int(n_ratios)
        exps = np.linspace(-2, 2, k)
        for i in exps:
            for j in exps:
                rows.append([10**i, 10**j, 1.0])
        for a, b in ((0, 1), (0, 2), (1, 2)):
            for e in exps:
                r = [0.0, 0.0, 0.0]
                r[a], r[b] = 10**e, 1.0
                rows.append(r)
        rows += [[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]
    else:
        raise ValueError("band_weight_grid handles 1-3 bands; use random search beyond")
    g = np.asarray(rows, dtype=np.float64)
    g /= g.sum(1, keepdims=True)
    return np.unique(np.round(g, 12), axis=0)


def dirichlet_weights(n_bands: int, n_iter: int, random_state, concentration=(0.1, 1.0)):
    """Random band-weight candidates on the simplex (more than 3 bands), plus the pure bands.

    Parameters
    ----------
    n_bands : int
        Number of bands.
    n_iter : int
        Random candidates; the first is replaced by uniform weights ``1 / n_bands``.
    random_state : int or None
        Seed of :func:`numpy.random.default_rng`.
    concentration : sequence of float, default=(0.1, 1.0)
        Dirichlet concentrations, cycled over the candidates (sparse and spread weights).

    Returns
    -------
    weights : ndarray of float64 of shape (n_iter + n_bands, n_bands)
        The candidates, then one pure band per row; rows sum to 1.
    """
    rng = np.random.default_rng(random_state)
    conc = np.atleast_1d(np.asarray(concentration, dtype=float))
    g = np.empty((n_iter, n_bands))
    for i in range(n_iter):
        g[i] = rng.dirichlet(np.full(n_bands, conc[i % len(conc)]))
    g[0] = 1.0 / n_bands
    pure = np.eye(n_bands)
    return np.concatenate([g, pure])


# ----------------------------------------------------------------------------- the solver
@dataclass
class _Fold:
    train: Any  # torch long tensor
    val: Any
    n_train: int
    val_range: tuple[int, int] | None = None  # (start, stop) when ``val`` is one ascending run

    def rows(self, A):
        """The validation rows of ``A``: a view when they are one contiguous run (K-fold), a
        gathered copy otherwise."""
        if self.val_range is not None:
            return A[self.val_range[0]:self.val_range[1]]
        return A[self.val]


def _run(idx) -> tuple[int, int] | None:
    """``(start, stop)`` when ``idx`` is ``start, start+1, …, stop−1``; else ``None``."""
    idx = np.asarray(idx)
    if idx.ndim != 1 or len(idx) == 0 or not np.issubdtype(idx.dtype, np.integer):
        return None
    start = int(idx[0])
    if start < 0 or not np.array_equal(idx, np.arange(start, start + len(idx))):
        return None
    return start, start + len(idx)


#: Bytes of one float64 block of features when a kernel is accumulated (kernel solver).
_KERNEL_BLOCK_BYTES = 256 * 2**20


class _Problem:
    """Data and decompositions shared by every fold, band weighting and chunk."""

    def __init__(self, Xs, splits, *, fit_intercept, solver, device, dtype):
        torch = _torch()
        self.device, self.dtype = device, dtype
        self.fit_intercept = fit_intercept
        self.widths = [x.shape[1] for x in Xs]
        self.edges = np.concatenate([[0], np.cumsum(self.widths)])
        X = np.concatenate(Xs, axis=1) if len(Xs) > 1 else Xs[0]
        self.n, self.p = X.shape
        self.X = torch.as_tensor(np.ascontiguousarray(X), device=device).to(dtype)
        self.folds = [
            _Fold(
                torch.as_tensor(tr, device=device, dtype=torch.long),
                torch.as_tensor(va, device=device, dtype=torch.long),
                len(tr),
                _run(va),
            )
            for tr, va in splits
        ]
        # validation sets that partition the samples (K-fold): the full data's sums are the
        # sums of the folds' (X'X, X'Y: one n × p product less per matrix)
        val = np.sort(np.concatenate([np.asarray(va) for _, va in splits])) if splits else []
        self.partition = len(val) == self.n and bool(np.array_equal(val, np.arange(self.n)))
        if solver == "auto":
            solver = "kernel" if self.p > self.n else "primal"
        if solver not in ("primal", "kernel"):
            raise ValueError(f"solver must be 'auto', 'primal' or 'kernel', got {solver!r}")
        self.kernel = solver == "kernel"
        if self.kernel:
            # one kernel per band (float64); K_γ = Σ_b γ_b K_b. Accumulated over blocks of
            # features of at most _KERNEL_BLOCK_BYTES in float64, so that a wide X (decoding
            # from ~10⁵ vertices) is never copied whole to float64; one block when it fits.
            self.xsum = torch.zeros(self.p, dtype=torch.float64, device=device)
            self.K = []
            width = max(1, _KERNEL_BLOCK_BYTES // (8 * max(self.n, 1)))
            for a, b in zip(self.edges[:-1], self.edges[1:]):
                Kb = None
                for c0 in range(int(a), int(b), width):
                    c1 = min(int(b), c0 + width)
                    Xb = self.X[:, c0:c1].to(torch.float64)
                    self.xsum[c0:c1] = Xb.sum(0)
                    Kb = Xb @ Xb.T if Kb is None else Kb.add_(Xb @ Xb.T)
                    del Xb
                self.K.append(Kb if Kb is not None
                              else torch.zeros((self.n, self.n), dtype=torch.float64, device=device))
        else:
            X64 = self.X.to(torch.float64)
            self.Gval = []
            for f in self.folds:
                Xv = f.rows(X64)
                self.Gval.append((Xv.T @ Xv, Xv.sum(0)))
            if self.partition:
                self.G = sum(g for g, _ in self.Gval[1:]) + self.Gval[0][0]
                self.xsum = sum(x for _, x in self.Gval[1:]) + self.Gval[0][1]
            else:
                self.G = X64.T @ X64
                self.xsum = X64.sum(0)
            del X64
        self._cache: dict = {}
        self._buffers: dict = {}
        self.chunk_C = None
        self.chunk_ysum = None
        self.cache_systems = False

    # -- per band-weighting scale vector (sqrt γ per feature)
    def scale(self, gamma):
        torch = _torch()
        d = np.concatenate([np.full(w, math.sqrt(g)) for w, g in zip(self.widths, gamma)])
        return torch.as_tensor(d, device=self.device, dtype=torch.float64)

    def buffer(self, name, shape, dtype=None):
        """A scratch tensor reused between folds and candidates (uninitialised): each fold's
        big temporaries otherwise cost fresh pages from the OS every time (~0.5 s of page
        faults per RidgeCV fit at Benchmark A's size). One buffer per name: a caller must be
        done with it before asking for it again."""
        torch = _torch()
        dtype = self.dtype if dtype is None else dtype
        buf = self._buffers.get(name)
        shape = tuple(int(x) for x in shape)
        if buf is None or buf.dtype != dtype or buf.numel() < math.prod(shape):
            buf = torch.empty(math.prod(shape), dtype=dtype, device=self.device)
            self._buffers[name] = buf
        return buf[: math.prod(shape)].view(shape)

    def _eigh(self, A):
        torch = _torch()
        A = A + A.T  # in place from here: one n × n temporary, not two
        A.mul_(0.5)
        s, V = torch.linalg.eigh(A)
        return s.clamp_min(0.0), V

    # -- eigensystem of one fold (fold=None: all samples) for band weights gamma
    def system(self, gi, gamma, fold):
        key = (gi, fold)
        if key in self._cache:
            return self._cache[key]
        out = self._kernel_system(gamma, fold) if self.kernel else self._primal_system(gamma, fold)
        if self.cache_systems:
            self._cache[key] = out
        return out

    def _primal_system(self, gamma, fold):
        torch = _torch()
        d = self.scale(gamma)
        active = torch.nonzero(d > 0).flatten()
        if fold is None:
            G, xs, n_tr = self.G, self.xsum, self.n
        else:
            Gv, xv = self.Gval[fold]
            G, xs, n_tr = self.G - Gv, self.xsum - xv, self.folds[fold].n_train
        m = xs / n_tr if self.fit_intercept else torch.zeros_like(xs)
        if self.fit_intercept:
            G = G - n_tr * torch.outer(m, m)
        if len(active) == self.p:  # every band weighted (plain ridge): no gathers
            scaled = bool((d != 1).any())
            s, V = self._eigh(G * d[:, None] * d[None, :] if scaled else G)  # _eigh copies
            Vd = V.mul_(d[:, None]) if scaled else V  # β = Vd diag(1/(s+α)) Vdᵀ Xᵀy
        else:
            da = d[active]
            Ga = G[active][:, active] * da[:, None] * da[None, :]
            s, V = self._eigh(Ga)
            Vd = torch.zeros((self.p, V.shape[1]), dtype=torch.float64, device=self.device)
            Vd[active] = V * da[:, None]
        W = None
        if fold is not None:
            f = self.folds[fold]
            W = (f.rows(self.X) - m.to(self.dtype)) @ Vd.to(self.dtype)
        return dict(s=s, Vd=Vd.to(self.dtype), W=W, m=m, n_tr=n_tr)

    def _kernel_system(self, gamma, fold):
        torch = _torch()
        terms = [(g, Kb) for g, Kb in zip(gamma, self.K) if g > 0]
        if len(terms) == 1 and terms[0][0] == 1:
            K = terms[0][1]  # one band at weight 1 (RidgeCV): the kernel itself, no copy
        else:
            K = sum(g * Kb for g, Kb in terms)
        if fold is None:
            tr = torch.arange(self.n, device=self.device)
            val = None
        else:
            tr, val = self.folds[fold].train, self.folds[fold].val
        Ktt = K[tr[:, None], tr]  # one gather (K[tr][:, tr] made an n_tr × n temporary)
        if self.fit_intercept:
            rt = Ktt.mean(1)
            q = rt.mean()
            # Ktt − rt[:, None] − rt[None, :] + q, in the same order, in place
            Kc = Ktt.sub_(rt[:, None]).sub_(rt[None, :]).add_(q)
        else:
            Kc = Ktt
        s, U = self._eigh(Kc)
        W = None
        if val is not None:
            Kvt = K[val[:, None], tr]
            if self.fit_intercept:
                Kvt = Kvt - Kvt.mean(1, keepdim=True) - rt[None, :] + q
            W = (Kvt @ U).to(self.dtype)
        return dict(s=s, U=U.to(self.dtype), W=W, tr=tr, n_tr=len(tr))

    # -- per-chunk fold data (independent of band weights)
    def chunk_data(self, Yc):
        """Yc: (n, tc) tensor. Returns per-fold dicts and full-data sums."""
        torch = _torch()
        out = []
        vals = [f.rows(Yc) for f in self.folds]
        # X_valᵀ made contiguous first (n_val × p, small): the product then runs ~25 % faster
        Cvs = None if self.kernel else [f.rows(self.X).T.contiguous() @ Yv
                                        for f, Yv in zip(self.folds, vals)]
        if self.kernel:
            C = None
        elif self.partition:  # XᵀY = Σ_folds X_valᵀ Y_val
            C = Cvs[0].clone()
            for Cv in Cvs[1:]:
                C += Cv
        else:
            C = self.X.T @ Yc
        self.chunk_C = C  # this chunk's XᵀY (primal), which the refit of one chunk reuses
        # each fold's float64 target sums and validation sums of squares (one fold-sized
        # float64 copy at a time, not one of the whole chunk)
        vsums, ssts = [], []
        for f, Yv in zip(self.folds, vals):
            yv64 = Yv.to(torch.float64, copy=True)  # a copy: centred in place below
            vsums.append(yv64.sum(0))
            ssts.append(yv64.sub_(vsums[-1] / len(f.val)).square_().sum(0))
            del yv64
        ysum = sum(vsums[1:], vsums[0].clone()) if self.partition else _colsum64(Yc)
        self.chunk_ysum = ysum
        for fi, f in enumerate(self.folds):
            Yv, vals[fi] = vals[fi], None  # each fold's rows live only for its own step
            mu = (ysum - vsums[fi]) / f.n_train if self.fit_intercept else torch.zeros_like(ysum)
            # the centred validation targets, target-major (tc, n_val): the scoring reduces
            # each target's residual along contiguous memory
            ytilT = torch.empty((Yv.shape[1], Yv.shape[0]), dtype=self.dtype, device=self.device)
            torch.sub(Yv.T, mu.to(self.dtype)[:, None], out=ytilT)
            d = dict(ytilT=ytilT, mu=mu, sst=ssts[fi])
            if not self.kernel:
                # C − C_val, written over the fold's own product (no new n_features × tc)
                Ctr, Cvs[fi] = Cvs[fi].neg_().add_(C), None
                if self.fit_intercept:
                    xs_tr = (self.xsum - self.Gval[fi][1]).to(self.dtype)
                    # Σ_tr (x - m)(y - μ)ᵀ = Σ_tr x yᵀ - xs_tr μᵀ
                    Ctr.addr_(xs_tr, mu.to(self.dtype), alpha=-1)
                d["Ctr"] = Ctr
            out.append(d)
        return out

    def project_t(self, sysd, fold, fd, Yc):
        """Zᵀ = (basisᵀ · centred training cross-product)ᵀ, target-major, shape (tc, r)."""
        torch = _torch()
        if self.kernel:
            Ytr = Yc[sysd["tr"]] - fd["mu"].to(self.dtype)
            B = sysd["U"]
        else:
            Ytr, B = fd["Ctr"], sysd["Vd"]
        return torch.mm(Ytr.T, B, out=self.buffer("ZT", (Ytr.shape[1], B.shape[1])))

    def refit(self, gi, gamma, Yc, alphas_t, Z=None, C=None, overwrite_C=False, out=None, ysum=None):
        """Coefficients (p, tc) and intercept (tc,) for per-target alphas ``alphas_t``.

        ``Z``: the centred targets already projected on the full-data basis (what this
        computes first), or, primal form only, ``C``: the uncentred ``XᵀY`` of these targets,
        centred in place when ``overwrite_C``. ``out``: a contiguous (p, tc) tensor of the
        data's dtype that receives the primal form's coefficients. ``ysum``: the targets'
        float64 column sums when the caller has them.
        """
        torch = _torch()
        sysd = self.system(gi, gamma, None)
        s = sysd["s"]
        ysum = _colsum64(Yc) if ysum is None else ysum
        mu = ysum / self.n if self.fit_intercept else torch.zeros_like(ysum)
        # (r, tc) filters from the (at most n_alphas) distinct ones
        ua, inv = torch.unique(alphas_t, return_inverse=True)
        filt = (1.0 / (s[:, None] + ua[None, :])).to(self.dtype)[:, inv]
        if self.kernel:
            if Z is None:
                Z = sysd["U"].T @ (Yc - mu.to(self.dtype))
            dual = sysd["U"] @ (filt * Z)
            m = self.xsum / self.n if self.fit_intercept else torch.zeros_like(self.xsum)
            m_d = m.to(self.dtype)
            # (X − m)ᵀ · dual, one block of features at a time (no centred copy of a wide X)
            width = max(1, _KERNEL_BLOCK_BYTES // (8 * max(self.n, 1)))
            coef = torch.empty((self.p, dual.shape[1]), dtype=dual.dtype, device=dual.device)
            for c0 in range(0, self.p, width):
                c1 = min(self.p, c0 + width)
                coef[c0:c1] = (self.X[:, c0:c1] - m_d[c0:c1]).T @ dual
            coef = coef * (self.scale(gamma) ** 2).to(self.dtype)[:, None]
        else:
            own_Z = Z is None
            if Z is None:
                if C is None:
                    C, overwrite_C = self.X.T @ Yc, True
                if self.fit_intercept:
                    xs, mu_d = self.xsum.to(self.dtype), mu.to(self.dtype)
                    C = C.addr_(xs, mu_d, alpha=-1) if overwrite_C else C - torch.outer(xs, mu_d)
                Z = sysd["Vd"].T @ C
                del C
            Zf = Z.mul_(filt) if own_Z else filt * Z
            del filt
            coef = sysd["Vd"] @ Zf if out is None else torch.mm(sysd["Vd"], Zf, out=out)
            m = sysd["m"]
        if self.fit_intercept:
            # μ − m·β in float64, a block of targets at a time (no float64 copy of β)
            intercept = torch.empty_like(mu)
            step = max(1, (8 << 20) // (8 * max(self.p, 1)))
            for t0 in range(0, coef.shape[1], step):
                sl = slice(t0, t0 + step)
                intercept[sl] = mu[sl] - m @ coef[:, sl].to(torch.float64)
        else:
            intercept = torch.zeros_like(mu)
        return coef, intercept


def _colsum64(A, block_bytes=8 << 20):
    """Column sums of a 2-D tensor in float64, a block of rows at a time (``A.sum(0,
    dtype=float64)`` converts the whole matrix first)."""
    torch = _torch()
    out = torch.zeros(A.shape[1], dtype=torch.float64, device=A.device)
    step = max(1, block_bytes // (8 * max(A.shape[1], 1)))
    for r0 in range(0, A.shape[0], step):
        out += A[r0:r0 + step].to(torch.float64).sum(0)
    return out


def _score_block(P_or_R, fd, scoring, is_residual, n_val):
    """Score one candidate from target-major rows ``(tc, n_val)``: returns float64 (tc,)."""
    torch = _torch()
    if is_residual:
        # a squared norm along each row, not (R * R).sum(1): each target's value does not
        # depend on the others (the sum's order does), so that streamed targets score as the
        # whole
        sse = torch.linalg.vector_norm(P_or_R, dim=1).to(torch.float64) ** 2
        if scoring == "neg_mse":
            return -sse / n_val
        sst = fd["sst"]
        return torch.where(sst > 0, 1.0 - sse / torch.where(sst > 0, sst, 1.0), 0.0)
    # pearson on predictions
    Pc = P_or_R - P_or_R.mean(1, keepdim=True)
    num = (Pc * fd["ycT"]).sum(1).to(torch.float64)
    den = (torch.linalg.vector_norm(Pc, dim=1).to(torch.float64) * fd["ynorm"])
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)


# adjacent eigenvalues closer than this (relative) are scored directly, not by partial fractions
_PF_RELGAP = 1e-4


def _pf_plan(s, W):
    """The fold's shared factors for scoring every alpha by partial fractions.

    A candidate's validation prediction is ``W diag(f) z`` with ``f_j = 1/(s_j + α)``, so its
    squared norm is ``Σ_jk z_j z_k H_jk f_j f_k`` (``H = WᵀW``). For ``s_j ≠ s_k``,
    ``f_j f_k = (f_j − f_k)/(s_k − s_j)``, which turns the double sum into
    ``Σ_j f_j z_j (H_jj f_j z_j + 2 u_j)`` with ``u = M z``, ``M_jk = H_jk/(s_k − s_j)``: one
    ``(r × r)`` product per target shared by every alpha instead of one ``(n_val × r)`` product
    per alpha. A pair's rounding error is about eps·max(s_j, s_k)/|s_k − s_j| times its own
    term, so the products run in float64 and the eigenvalues that lie within a relative
    ``_PF_RELGAP`` of a neighbour (ties, the zeros of a rank-deficient Gram) or at the
    decomposition's rounding level form the set ``S``, whose pairs are summed directly per
    alpha. The bound holds because the projected targets carry the spectrum: ``|z_j| ≤
    sqrt(s_j)·|y|`` in the primal form, and ``W``'s columns scale with ``s_j`` in the kernel form.
    """
    torch = _torch()
    W64 = W.to(torch.float64)
    H = W64.T @ W64
    r = s.shape[0]
    order = torch.argsort(s)
    ss = s[order]
    close = (ss[1:] - ss[:-1]) <= _PF_RELGAP * ss[1:]
    inS = torch.zeros(r, dtype=torch.bool, device=s.device)
    inS[order[:-1][close]] = True
    inS[order[1:][close]] = True
    if r:  # the numerical null space: eigenvalues at the decomposition's rounding level
        inS |= s <= r * torch.finfo(torch.float64).eps * ss[-1]
    idx = torch.nonzero(inS).flatten()
    # M = H / D, D_jk = s_k − s_j, written over D; H is symmetric and D antisymmetric, so
    # Mᵀ = −M and u = M z is −(Zᵀ M) target-major, with no transposed copy
    M = s[None, :] - s[:, None]
    M.fill_diagonal_(1.0)
    if len(idx):
        skip = inS[:, None] & inS[None, :]
        M.masked_fill_(skip, 1.0)
    torch.div(H, M, out=M)
    M.fill_diagonal_(0.0)
    if len(idx):
        M.masked_fill_(skip, 0.0)
    hd = torch.diagonal(H).clone()
    hd[idx] = 0.0
    return dict(W=W64, M=M, hd=hd, idx=idx, H_S=H[idx][:, idx], W_S=W64[:, idx])


def _pf_worth(r, n_val, n_alphas, n_close=0):
    """Whether partial fractions cost less than the per-alpha products: float32 work
    ``2·n_alphas·r·n_val`` per target against float64 work (counted twice) of the shared
    products, the small per-alpha sums and the directly summed set ``S``."""
    direct = 2 * n_alphas * r * n_val
    m = n_close
    shared = 2 * (2 * r * r + 2 * r * n_val + 4 * r * n_alphas + 2 * n_alphas * m * min(m, n_val) + 16 * r)
    return shared < 0.8 * direct


def _pf_candidates(prob, n_alphas):
    """Whether this problem may score by partial fractions (float32 data on the CPU, where
    float64 products run at about half the float32 rate; and a grid that pays for them)."""
    torch = _torch()
    if prob.device.type != "cpu" or prob.dtype != torch.float32:
        return False
    r = prob.n if prob.kernel else prob.p
    n_val = max(len(f.val) for f in prob.folds)
    return _pf_worth(r, n_val, n_alphas)


def _pf_fold_scores(prob, plan, s, ZT, fd, alphas64, scoring, n_val):
    """Scores ``(n_alphas, tc)`` of one fold by partial fractions (see :func:`_pf_plan`)."""
    torch = _torch()
    f64 = torch.float64
    tc, r = ZT.shape
    Z = prob.buffer("pf_Z", (tc, r), f64)
    Z.copy_(ZT)
    yT = fd["ycT"] if scoring == "pearson" else fd["ytilT"]
    F = 1.0 / (s[:, None] + alphas64[None, :])  # (r, n_alphas)
    # b = Wᵀy per target, in the data's precision: its rounding is a float32 perturbation of
    # y, not amplified (the float64 products are the ones whose terms cancel)
    A = prob.buffer("pf_A", (tc, r), f64)
    A.copy_(torch.mm(yT, plan["W"].to(yT.dtype), out=prob.buffer("pf_b", (tc, r), yT.dtype)))
    if scoring == "pearson":
        lin = torch.mul(A, Z, out=A) @ F  # Σ_j f_j z_j b_j: the centred covariance
        A = torch.mm(Z, plan["M"], out=A)  # −u
        total = torch.mul(A, Z, out=A) @ (-2.0 * F)
    else:
        A.addmm_(Z, plan["M"])  # b − u
        yy = torch.linalg.vector_norm(yT, dim=1, dtype=f64) ** 2
        total = torch.addmm(yy[:, None], torch.mul(A, Z, out=A), F, alpha=-2.0)
    total.addmm_(torch.mul(Z, Z, out=prob.buffer("pf_B", (tc, r), f64)), plan["hd"][:, None] * F * F)
    idx = plan["idx"]
    if len(idx):
        ZS = Z[:, idx]
        m = len(idx)
        for a in range(F.shape[1]):
            P = ZS * F[idx, a]
            if m <= n_val:
                total[:, a] += (P @ plan["H_S"] * P).sum(1)
            else:
                total[:, a] += torch.linalg.vector_norm(P @ plan["W_S"].T, dim=1) ** 2
    if scoring == "pearson":  # total: the centred prediction's squared norm
        den = total.clamp_min_(0.0).sqrt_() * fd["ynorm"][:, None]
        return torch.where(den > 0, lin / torch.where(den > 0, den, 1.0), 0.0).T
    sse = total.clamp_min_(0.0)  # the residual's squared norm
    if scoring == "neg_mse":
        return (-sse / n_val).T
    sst = fd["sst"][:, None]
    return torch.where(sst > 0, 1.0 - sse / torch.where(sst > 0, sst, 1.0), 0.0).T


def _fold_scores(prob, sysd, fold, fd, Yc, alphas64, scoring, filt_fn=None, ZT=None):
    """Scores (n_cand, tc) for one fold's eigensystem and all candidates.

    Works target-major: the projected targets ``Zᵀ`` (tc, r), the validation targets
    ``ỹᵀ`` (tc, n_val) and each candidate's residual ``ỹᵀ − Zᵀ diag(f) Wᵀ`` (one ``addmm``
    into a reused buffer), whose rows are then reduced along contiguous memory (on the CPU
    the row norms run 10× faster than the sample-major layout's column norms; the GEMM runs
    about as fast). ``ZT``: the projection when the caller already made it.
    """
    torch = _torch()
    s = sysd["s"]
    if ZT is None:
        ZT = prob.project_t(sysd, fold, fd, Yc)
    ytT = fd["ytilT"]
    tc, n_val = ytT.shape
    if scoring == "pearson" and "ycT" not in fd:
        fd["ycT"] = ytT - ytT.mean(1, keepdim=True)
        fd["ynorm"] = torch.linalg.vector_norm(fd["ycT"], dim=1).to(torch.float64)
    n_cand = len(alphas64) if filt_fn is None else filt_fn.n_cand
    if filt_fn is None and _pf_candidates(prob, n_cand):
        Wv = sysd["W"]
        if scoring == "pearson":
            Wv = Wv.to(torch.float64)
            Wv = Wv - Wv.mean(0, keepdim=True)  # centred over the validation samples
        plan = _pf_plan(s, Wv)
        if _pf_worth(len(s), n_val, n_cand, len(plan["idx"])):
            return _pf_fold_scores(prob, plan, s, ZT, fd, alphas64, scoring, n_val)
    WT = sysd["W"].T.contiguous()  # (r, n_val)
    out = torch.empty((n_cand, tc), dtype=torch.float64, device=prob.device)
    buf = prob.buffer("residual", (tc, n_val))
    WTf = prob.buffer("WT_filtered", WT.shape) if filt_fn is None else None
    for a in range(n_cand):
        if filt_fn is None:
            A, B = ZT, torch.mul(WT, (1.0 / (s + alphas64[a])).to(prob.dtype)[:, None], out=WTf)
        else:  # per-target filters (fractional ridge), target-major (tc, r)
            A, B = filt_fn(s, a) * ZT, WT
        if scoring == "pearson":
            out[a] = _score_block(torch.mm(A, B, out=buf), fd, scoring, False, n_val)
        else:
            R = torch.addmm(ytT, A, B, beta=1.0, alpha=-1.0, out=buf)
            out[a] = _score_block(R, fd, scoring, True, n_val)
    return out


def _chunk_size(prob, t, n_cand_total, budget, n_gammas):
    p_or_n = prob.n if prob.kernel else prob.p
    n_val = max(len(f.val) for f in prob.folds)
    per_t = 4 * (3 * prob.n + (len(prob.folds) + 1) * (0 if prob.kernel else prob.p) + 3 * n_val
                 + 3 * p_or_n)
    per_t += 8 * (n_cand_total + 4 * n_gammas + 16)
    if _pf_candidates(prob, n_cand_total // max(n_gammas, 1)):  # float64 Z, b − u, z²·h; b
        per_t += 28 * p_or_n
    fixed = 4 * (prob.n * prob.p) * 3
    avail = max(budget - fixed, per_t)
    return int(max(1, min(t, avail // per_t)))


def cv_search(
    Xs,
    Y,
    *,
    alphas,
    gammas,
    splits,
    fit_intercept,
    scoring,
    local,
    solver,
    device,
    dtype,
    budget,
    allow_tf32,
    chunk_size=None,
    keep_grid=False,
):
    """Grid search over (band weights × alphas), per target or global. See RidgeCV.

    For every candidate band weighting and alpha the validation score is averaged over the
    folds; each target keeps its best ``(γ, α)`` (or, with ``local=False``, all targets
    share the best by the mean score), and the model is refitted on all samples.

    Parameters
    ----------
    Xs : list of ndarray of shape (n_samples, n_features_b)
        The feature bands, already cast to ``dtype`` (one band for plain ridge).
    Y : ndarray of shape (n_samples, n_targets)
        Targets, cast to ``dtype``.
    alphas : array-like of float of shape (n_alphas,)
        Candidate penalties, finite and > 0.
    gammas : array-like of float of shape (n_gammas, n_bands)
        Candidate band weights (``np.ones((1, 1))`` for plain ridge).
    splits : list of tuple of (ndarray, ndarray)
        ``(train, val)`` index pairs (:func:`check_splits`).
    fit_intercept : bool
        Centre X and Y with each fold's training means.
    scoring : {"r2", "pearson", "neg_mse"}
        Validation score.
    local : bool
        One ``(γ, α)`` per target (True) or one for all targets (False).
    solver : {"auto", "primal", "kernel"}
        ``"auto"``: the kernel form when ``n_features > n_samples``.
    device : torch.device
        Already resolved (:func:`as_device`).
    dtype : torch.dtype
        Data precision (:func:`resolve_dtype`); decompositions are float64.
    budget : int or None
        Bytes per chunk of targets (``None``: from free memory).
    allow_tf32 : bool
        Allow TF32 matmuls on CUDA.
    chunk_size : int, optional
        Force the number of targets per chunk.
    keep_grid : bool, default=False
        Also return every score of the grid.

    Returns
    -------
    result : dict
        ``best_alphas`` (n_targets,), ``best_alpha_idx`` and ``best_gamma_idx``
        (n_targets,) int, ``best_scores`` (n_targets,), ``cv_best`` (n_gammas, n_targets)
        the best mean score over alphas per weighting, ``grid`` (n_gammas, n_alphas,
        n_targets) or ``None``, ``coef`` (n_features, n_targets), ``intercept``
        (n_targets,), ``n_chunks`` and ``kernel`` (whether the kernel form was used).
    """
    torch = _torch()
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}, got {scoring!r}")
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError("alphas must be finite and > 0")
    gammas = np.asarray(gammas, dtype=np.float64)
    n, t = Y.shape
    with tf32(allow_tf32 and device.type == "cuda"):
        prob = _Problem(Xs, splits, fit_intercept=fit_intercept, solver=solver, device=device, dtype=dtype)
        a64 = torch.as_tensor(alphas, device=device, dtype=torch.float64)
        bias = torch.log(a64) * 1e-10  # himalaya's tie-break towards larger alphas
        n_g, n_a, K = len(gammas), len(alphas), len(prob.folds)
        tc = chunk_size or _chunk_size(prob, t, n_g * n_a, _memory_budget(device, budget), n_g)
        chunks = [slice(i, min(t, i + tc)) for i in range(0, t, tc)]
        prob.cache_systems = len(chunks) > 1
        best_score = np.full(t, -np.inf)
        best_g = np.zeros(t, dtype=np.int64)
        best_a = np.zeros(t, dtype=np.int64)
        cv_best = np.zeros((n_g, t))
        grid = np.zeros((n_g, n_a, t)) if keep_grid else None
        glob = np.zeros((n_g, n_a))
        for ch in chunks:
            Yc = torch.as_tensor(np.ascontiguousarray(Y[:, ch]), device=device).to(dtype)
            fds = prob.chunk_data(Yc)
            cur = torch.full((Yc.shape[1],), -math.inf, dtype=torch.float64, device=device)
            for gi, gamma in enumerate(gammas):
                acc = torch.zeros((n_a, Yc.shape[1]), dtype=torch.float64, device=device)
                for fi in range(K):
                    sysd = prob.system(gi, gamma, fi)
                    acc += _fold_scores(prob, sysd, fi, fds[fi], Yc, a64, scoring)
                acc /= K
                glob[gi] += acc.sum(1).cpu().numpy()
                if keep_grid:
                    grid[gi, :, ch] = acc.cpu().numpy()
                sc = acc + bias[:, None]
                amax = sc.argmax(0)
                smax = sc.gather(0, amax[None]).squeeze(0)
                cv_best[gi, ch] = acc.gather(0, amax[None]).squeeze(0).cpu().numpy()
                eps = np.finfo(np.float32 if dtype == torch.float32 else np.float64).eps
                better = smax > cur + eps
                cur = torch.where(better, smax, cur)
                bm = better.cpu().numpy()
                idx = np.arange(ch.start, ch.stop)[bm]
                best_g[idx] = gi
                best_a[idx] = amax.cpu().numpy()[bm]
            best_score[ch] = cur.cpu().numpy()
            del fds, Yc
        # one chunk: its XᵀY serves the refit too (primal form); else one per chunk there
        C_all = prob.chunk_C if len(chunks) == 1 else None
        ysum_all = prob.chunk_ysum if len(chunks) == 1 else None
        prob.chunk_C = prob.chunk_ysum = None
        if not local:
            gsel = glob / t + np.log(alphas)[None, :] * 1e-10
            gi, ai = np.unravel_index(np.argmax(gsel), gsel.shape)
            best_g[:], best_a[:] = gi, ai
        # refit on all samples, one eigensystem per band weighting in use
        coef = np.zeros((prob.p, t), dtype=np.float32 if dtype == torch.float32 else np.float64)
        intercept = np.zeros(t)
        prob.cache_systems = True
        for ch in chunks:
            Yc = torch.as_tensor(np.ascontiguousarray(Y[:, ch]), device=device).to(dtype)
            for gi in np.unique(best_g[ch]):
                sel = np.flatnonzero(best_g[ch] == gi)
                at = a64[torch.as_tensor(best_a[ch][sel], device=device)]
                if len(sel) == Yc.shape[1]:  # every target of the chunk: no gathered copies
                    # one chunk on the CPU: the coefficients are written into the result
                    direct = (len(chunks) == 1 and device.type == "cpu" and not prob.kernel)
                    c, b = prob.refit(gi, gammas[gi], Yc, at, C=C_all, overwrite_C=True,
                                      out=torch.from_numpy(coef) if direct else None, ysum=ysum_all)
                else:
                    tsel = torch.as_tensor(sel, device=device)
                    c, b = prob.refit(gi, gammas[gi], Yc[:, tsel], at,
                                      C=None if C_all is None else C_all[:, tsel], overwrite_C=True,
                                      ysum=None if ysum_all is None else ysum_all[tsel])
                    direct = False
                if not direct:
                    coef[:, ch.start + sel] = c.cpu().numpy()
                intercept[ch.start + sel] = b.cpu().numpy()
            del Yc
        prob._cache.clear()
    return dict(
        best_alphas=alphas[best_a],
        best_alpha_idx=best_a,
        best_gamma_idx=best_g,
        best_scores=best_score,
        cv_best=cv_best,
        grid=grid,
        coef=coef,
        intercept=intercept,
        n_chunks=len(chunks),
        kernel=prob.kernel,
    )


def as_2d_float(a, name):
    """A finite float array of 2 dimensions (a 1-D input becomes one column).

    Parameters
    ----------
    a : array-like of shape (n_samples,) or (n_samples, n_columns)
        The input; integer arrays become float64, float arrays keep their dtype.
    name : str
        Named in the error messages.

    Returns
    -------
    ndarray of shape (n_samples, n_columns)
        ``a`` as a 2-D float array.

    Raises
    ------
    ValueError
        When ``a`` is not 1-D or 2-D, or holds NaN or inf.
    """
    a = np.asarray(a)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        a = a.astype(np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return a


def cast(a, dtype):
    """``a`` as the numpy dtype matching a torch float dtype (no copy when it already is).

    Parameters
    ----------
    a : ndarray
        The array.
    dtype : torch.dtype
        ``torch.float32`` or ``torch.float64``.

    Returns
    -------
    ndarray
        ``a`` as float32 or float64.
    """
    torch = _torch()
    return a.astype(np.float32 if dtype == torch.float32 else np.float64, copy=False)


def _fraction_alphas(s, Z, w, fracs, n_iter=64, rtol=1e-12, n_grid=512, chunk_elements=2**23,
                     newton_elements=None):
    """Per-target alphas giving ``‖β_α‖/‖β_OLS‖ = f`` (float64, exact to ~1e-12).

    ``‖β_α‖² = Σ_k w_k Z_k²/(s_k+α)²`` (primal: w = 1; kernel: w = s). Fractions above 1
    give negative alphas in ``(−s_min, 0)`` (fracridge ≥ 2). Returns (n_fracs, t) float64.

    Work on the secular function ``φ(α) = 1/‖β_α‖``, increasing and concave on
    ``α > −s_min`` (Moré & Sorensen 1983), in ``u = log(α + s_min)``:

    1. ``φ`` and ``dφ/du`` on an even grid of ``n_grid`` points of ``u`` (two GEMMs, as the
       fracridge package tabulates its norms on a grid), the grid interval of each
       (fraction, target)'s root by binary search, and the root of the interval's cubic
       Hermite interpolant (relative error ~1e-8 at 512 points): the start;
    2. Newton's method on ``φ(α) = 1/(f‖β_OLS‖)`` itself makes it exact. From a start right
       of the root, the first step lands left of it (concavity); from the left the steps
       approach it monotonically and converge quadratically. It stops when every step is
       below ``rtol`` relative to ``|α| + s_min`` or after ``n_iter`` steps (2 from this
       start, against 5 or 6 from the grid point alone).

    The grid stage takes about ``chunk_elements`` values of (target, grid point) at a time; the
    Newton stage ``newton_elements`` of (fraction, target, eigenvalue), by default a block
    that stays in a CPU core's cache (2¹⁶ float64: 3× faster than streaming the block
    through memory) and 2²⁴ on a GPU. Targets whose OLS weights are all 0 get α = 0 (their
    weights are 0 for any α).
    """
    torch = _torch()
    f64 = torch.float64
    dev = s.device
    s = s.to(f64)
    Z2 = Z.to(f64) ** 2 * w.to(f64)[:, None]
    pos = s > s.max() * 1e-10
    s, Z2 = s[pos], Z2[pos]
    smin, smax = s.min(), s.max()
    fr = torch.as_tensor(np.asarray(fracs, dtype=np.float64), device=dev)
    n_f, n_t, r = len(fr), Z2.shape[1], s.numel()
    # the grid: u = log(α + s_min) evenly spaced, s_min·1e-9 ≤ α + s_min ≤ s_max·1e12 + s_min
    u = torch.linspace(math.log(float(smin) * 1e-9), math.log(float(smax) * 1e12 + float(smin)), n_grid,
                       dtype=f64, device=dev)
    h = float(u[1] - u[0])
    grid = u.exp() - smin  # the grid's α
    inv = 1.0 / (s[None, :] + grid[:, None])  # (G, r)
    M2 = inv * inv
    M3 = M2 * inv
    del inv
    lo = float(-smin + 1e-12 * smax)
    Z2T = Z2.T.contiguous()  # (t, r)
    del Z2
    ols = (Z2T / (s * s)[None, :]).sum(1)  # ‖β_OLS‖², (t,)
    target = fr[:, None] * ols.sqrt()[None, :]  # the wanted ‖β_α‖, (F, t)
    empty = ~(ols > 0)[None, :].expand(n_f, n_t)
    alpha = torch.empty((n_f, n_t), dtype=f64, device=dev)
    step_t = max(1, int(chunk_elements // (4 * n_grid + 8 * n_f)))  # N, φ, φ' per grid point
    for t0 in range(0, n_t, step_t):
        sl = slice(t0, min(n_t, t0 + step_t))
        z = Z2T[sl]
        N = z @ M2.T  # (t', G): ‖β_α‖² on the grid, decreasing along it
        phi = N.rsqrt()  # increasing
        # dφ/du = ½ N^(-3/2) · 2 Σ z/(s+α)³ · (α + s_min), times h: the Hermite tangents
        m = phi / N * (z @ M3.T) * ((grid + smin) * h)[None, :]
        del N
        tau = (1.0 / target[:, sl]).T  # (t', F): the wanted φ
        j = torch.searchsorted(phi, tau.contiguous(), right=True) - 1  # last point with φ ≤ τ
        jc = j.clamp(0, n_grid - 2)
        p0, p1 = phi.gather(1, jc), phi.gather(1, jc + 1)
        m0, m1 = m.gather(1, jc), m.gather(1, jc + 1)
        del phi, m
        # the interval's cubic Hermite interpolant = τ, solved in x ∈ [0, 1] by Newton's
        # method from the linear interpolant's root (the cubic is monotone there: a few steps)
        x = ((tau - p0) / (p1 - p0)).clamp(0.0, 1.0)
        for _ in range(8):
            x2 = x * x
            x3 = x2 * x
            val = (2 * x3 - 3 * x2 + 1) * p0 + (x3 - 2 * x2 + x) * m0 + (3 * x2 - 2 * x3) * p1 + (x3 - x2) * m1
            der = (6 * x2 - 6 * x) * (p0 - p1) + (3 * x2 - 4 * x + 1) * m0 + (3 * x2 - 2 * x) * m1
            x = (x - (val - tau) / torch.where(der > 0, der, torch.ones_like(der))).clamp(0.0, 1.0)
        a = ((u[jc] + x * h).exp() - smin).clamp(min=lo)
        a = torch.where(j < 0, torch.full_like(a, lo), a)  # root left of the grid: from its edge
        a = torch.where(j >= n_grid - 1, grid[-1].expand_as(a), a)  # right of it: from the left
        alpha[:, sl] = a.T
    alpha = torch.where(empty, torch.zeros_like(alpha), alpha)
    # Newton on the exact norms, in blocks of (fraction, target, eigenvalue)
    if newton_elements is None:
        newton_elements = 2**16 if dev.type == "cpu" else 2**24
    step_n = max(16, int(newton_elements // max(n_f * r, 1)))
    for t0 in range(0, n_t, step_n):
        sl = slice(t0, min(n_t, t0 + step_n))
        a, tg, e, z = alpha[:, sl], target[:, sl], empty[:, sl], Z2T[sl][None]
        for _ in range(n_iter):
            iv = (a[:, :, None] + s[None, None, :]).reciprocal_()  # (F, t', r)
            q = iv * iv
            q.mul_(z)
            n2 = q.sum(-1)
            q.mul_(iv)
            nrm = n2.sqrt()
            step = (1.0 / nrm - 1.0 / tg) / (q.sum(-1) / (nrm * n2))
            step = torch.where(e, torch.zeros_like(step), step)
            a = (a - step).clamp(min=lo)
            if bool((step.abs() <= rtol * (a.abs() + smin)).all()):
                break
        alpha[:, sl] = a
    return alpha


def frac_ridge_search(X, Y, *, fracs, splits, fit_intercept, scoring, per_target, solver, device,
                      dtype, allow_tf32, refit=True) -> dict:
    """Fractional-ridge cross-validation: the solver behind :class:`FracRidgeCV`.

    Per fold, the alphas of each fraction (exact: Newton's method on the secular equation
    from an interpolated start, :func:`_fraction_alphas`) and the mean validation score of
    every fraction; then the chosen fraction (per target or global) and the refit on all
    samples.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Features, cast to ``dtype``.
    Y : ndarray of shape (n_samples, n_targets)
        Targets, cast to ``dtype`` (all targets in one chunk).
    fracs : array-like of float of shape (n_fractions,)
        Candidate fractions ``‖β_α‖/‖β_OLS‖`` (> 0).
    splits : list of tuple of (ndarray, ndarray)
        ``(train, val)`` index pairs (:func:`check_splits`).
    fit_intercept : bool
        Centre X and Y with each fold's training means.
    scoring : {"r2", "pearson", "neg_mse"}
        Validation score.
    per_target : bool
        One fraction per target (True) or one for all by the mean score (False).
    solver : {"auto", "primal", "kernel"}
        ``"auto"``: the kernel form when ``n_features > n_samples``.
    device : torch.device
        Already resolved (:func:`as_device`).
    dtype : torch.dtype
        Data precision; decompositions and the root finding are float64.
    allow_tf32 : bool
        Allow TF32 matmuls on CUDA.
    refit : bool, default=True
        Refit on all samples; ``False``: ``alphas``, ``coef`` and ``intercept`` are ``None``.

    Returns
    -------
    result : dict
        ``cv_scores`` (n_fractions, n_targets), ``best`` (n_targets,) fraction indices,
        ``alphas`` (n_targets,), ``coef`` (n_features, n_targets) and ``intercept``
        (n_targets,).
    """
    torch = _torch()
    if scoring not in SCORINGS:
        raise ValueError(f"scoring must be one of {SCORINGS}")
    with tf32(allow_tf32 and device.type == "cuda"):
        prob = _Problem([X], splits, fit_intercept=fit_intercept, solver=solver, device=device, dtype=dtype)
        Yc = torch.as_tensor(Y, device=device)
        fds = prob.chunk_data(Yc)
        acc = torch.zeros((len(fracs), Y.shape[1]), dtype=torch.float64, device=device)
        for fi in range(len(prob.folds)):
            sysd = prob.system(0, [1.0], fi)
            ZT = prob.project_t(sysd, fi, fds[fi], Yc)
            w = sysd["s"] if prob.kernel else torch.ones_like(sysd["s"])
            A = _fraction_alphas(sysd["s"], ZT.T, w, fracs)

            class _F:
                n_cand = len(fracs)

                def __call__(self_, s, a):  # target-major filters (tc, r)
                    return (1.0 / (s[None, :] + A[a][:, None])).to(dtype)

            acc += _fold_scores(prob, sysd, fi, fds[fi], Yc, None, scoring, filt_fn=_F(), ZT=ZT)
        acc /= len(prob.folds)
        cv_scores = acc.cpu().numpy()
        if per_target:
            best = np.argmax(cv_scores, 0)
        else:
            best = np.full(Y.shape[1], int(np.argmax(cv_scores.mean(1))))
        if not refit:
            return dict(cv_scores=cv_scores, best=best, alphas=None, coef=None, intercept=None)
        # refit: per-target alpha for the chosen fraction on all samples (only the fractions
        # chosen somewhere are solved for)
        sysd = prob.system(0, [1.0], None)
        if prob.kernel:
            mu = Yc.to(torch.float64).mean(0) if fit_intercept else torch.zeros(Y.shape[1], dtype=torch.float64)
            Zf = sysd["U"].T @ (Yc - mu.to(dtype))
            w = sysd["s"]
        else:
            C = prob.X.T @ Yc
            if fit_intercept:
                mu = Yc.to(torch.float64).mean(0)
                C = C - torch.outer(prob.xsum.to(dtype), mu.to(dtype))
            Zf = sysd["Vd"].T @ C
            w = torch.ones_like(sysd["s"])
        used, where = np.unique(best, return_inverse=True)
        A = _fraction_alphas(sysd["s"], Zf, w, np.asarray(fracs)[used])  # (F used, t)
        at = A.gather(0, torch.as_tensor(where.reshape(-1), device=device)[None]).squeeze(0)
        coef, b = prob.refit(0, [1.0], Yc, at, Z=Zf)
    return dict(cv_scores=cv_scores, best=best, alphas=at.cpu().numpy(), coef=coef.cpu().numpy(),
                intercept=b.cpu().numpy())
