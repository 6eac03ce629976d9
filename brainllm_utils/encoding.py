"""Voxel-wise encoding models: ridge with per-target penalties, banded ridge, fractional ridge.

One solver serves every estimator here (``RidgeCV``, ``BandedRidgeCV``, ``FracRidgeCV``),
written in torch so that the CPU and the GPU run the same code:

- the Gram matrix ``XᵀX`` (or the kernel ``XXᵀ`` when ``p > n``) is formed **once**, in
  float64; each fold's training Gram is the full Gram minus the validation block
  (``G − X_valᵀX_val``), centred by a rank-one correction when ``fit_intercept=True``;
- each fold (and each band weighting ``γ``: block scaling ``D_γ G D_γ``) costs one
  float64 ``eigh``; there is no SVD of the data matrix;
- targets are projected **once** per fold onto the eigenbasis (``Z = VᵀXᵀY``), then each
  alpha costs one GEMM ``(W·diag(1/(s+α))) Z`` whose output is the validation residual
  (``addmm``), scored at once; the ``(n_alphas × n × t)`` prediction tensor never exists;
- targets are streamed in chunks sized from free memory (``torch.cuda.mem_get_info`` on
  a GPU, a RAM budget on the CPU);
- data are float32 (decompositions float64); TF32 is off unless ``allow_tf32=True``.

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

import math
import os
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ._device import resolve_device

__all__ = [
    "RidgeCV",
    "BandedRidgeCV",
    "GroupRidgeCV",
    "FracRidgeCV",
    "pearson_r",
    "r2_score",
    "kfold_splits",
    "band_weight_grid",
    "train_test_encoding",
    "noise_ceiling_relation",
    "in_silico_contrast",
    "CATEGORY_SENTENCES",
    "embed_sentence_sets",
]

_EDGE_WARN = 0.10  # warn when more than this fraction of targets sit at a grid edge
_SCORINGS = ("r2", "pearson", "neg_mse")


# ----------------------------------------------------------------------------- helpers
def _torch():
    import torch

    return torch


def _resolve_device(device: Any):
    """A ``torch.device`` from the package-wide :func:`~brainllm_utils._device.resolve_device`."""
    return _torch().device(resolve_device(device))


def _resolve_dtype(dtype: Any):
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


class _TF32:
    """Context manager setting TF32 for CUDA matmuls (restored on exit)."""

    def __init__(self, device, allow: bool):
        self.device, self.allow = device, allow

    def __enter__(self):
        if self.device.type == "cuda":
            torch = _torch()
            self.old = torch.backends.cuda.matmul.allow_tf32
            torch.backends.cuda.matmul.allow_tf32 = bool(self.allow)
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            _torch().backends.cuda.matmul.allow_tf32 = self.old
        return False


def kfold_splits(n_samples: int, n_splits: int = 5) -> list[tuple[np.ndarray, np.ndarray]]:
    """Contiguous, unshuffled K-fold splits (identical to ``sklearn.model_selection.KFold``).

    The first ``n_samples % n_splits`` folds hold one extra sample.

    >>> [v.tolist() for _, v in kfold_splits(5, 2)]
    [[0, 1, 2], [3, 4]]
    """
    n_splits = int(n_splits)
    if n_splits < 2 or n_splits > n_samples:
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


def _check_splits(cv, n_samples: int, X=None, Y=None, groups=None):
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


def pearson_r(a, b, axis: int = 0) -> np.ndarray:
    """Pearson correlation of ``a`` and ``b`` along ``axis`` (per column by default).

    Accumulates in float64; a constant column gives 0 (not NaN).

    >>> float(pearson_r(np.array([1., 2, 3]), np.array([2., 4, 7])))  # doctest: +ELLIPSIS
    0.99...
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    a = a - a.mean(axis=axis, keepdims=True)
    b = b - b.mean(axis=axis, keepdims=True)
    num = (a * b).sum(axis=axis)
    den = np.sqrt((a * a).sum(axis=axis) * (b * b).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0)
    return r


def r2_score(y_true, y_pred) -> np.ndarray:
    """Coefficient of determination per column (constant columns give 0)."""
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    sse = ((y_true - y_pred) ** 2).sum(0)
    sst = ((y_true - y_true.mean(0)) ** 2).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sst > 0, 1 - sse / np.where(sst > 0, sst, 1.0), 0.0)


def band_weight_grid(n_bands: int, n_ratios: int | None = None) -> np.ndarray:
    """Deterministic band-weight candidates on the simplex for 2 or 3 bands.

    Two bands: ``n_ratios`` (default 11) log-spaced ratios ``γ₁/γ₂`` in ``[1e-2.5, 1e2.5]``
    plus both pure bands. Three bands: ratios ``(10^i, 10^j, 1)`` for i, j in −2…2, every
    pair alone with ratios 10^−2…10^2, and the three pure bands. Rows sum to 1.
    """
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


def _dirichlet_weights(n_bands: int, n_iter: int, random_state, concentration=(0.1, 1.0)):
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
        X64 = self.X.to(torch.float64)
        self.xsum = X64.sum(0)
        self.folds = [
            _Fold(
                torch.as_tensor(tr, device=device, dtype=torch.long),
                torch.as_tensor(va, device=device, dtype=torch.long),
                len(tr),
            )
            for tr, va in splits
        ]
        if solver == "auto":
            solver = "kernel" if self.p > self.n else "primal"
        if solver not in ("primal", "kernel"):
            raise ValueError(f"solver must be 'auto', 'primal' or 'kernel', got {solver!r}")
        self.kernel = solver == "kernel"
        if self.kernel:
            # one kernel per band (float64); K_γ = Σ_b γ_b K_b
            self.K = [
                X64[:, a:b] @ X64[:, a:b].T for a, b in zip(self.edges[:-1], self.edges[1:])
            ]
        else:
            self.G = X64.T @ X64
            self.Gval = []
            for f in self.folds:
                Xv = X64[f.val]
                self.Gval.append((Xv.T @ Xv, Xv.sum(0)))
        del X64
        self._cache: dict = {}
        self.cache_systems = False

    # -- per band-weighting scale vector (sqrt γ per feature)
    def scale(self, gamma):
        torch = _torch()
        d = np.concatenate([np.full(w, math.sqrt(g)) for w, g in zip(self.widths, gamma)])
        return torch.as_tensor(d, device=self.device, dtype=torch.float64)

    def _eigh(self, A):
        torch = _torch()
        A = (A + A.T) * 0.5
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
        da = d[active]
        Ga = G[active][:, active] * da[:, None] * da[None, :]
        s, V = self._eigh(Ga)
        Vd = torch.zeros((self.p, V.shape[1]), dtype=torch.float64, device=self.device)
        Vd[active] = V * da[:, None]  # β = Vd diag(1/(s+α)) Vdᵀ Xᵀy
        W = None
        if fold is not None:
            f = self.folds[fold]
            W = (self.X[f.val] - m.to(self.dtype)) @ Vd.to(self.dtype)
        return dict(s=s, Vd=Vd.to(self.dtype), W=W, m=m, n_tr=n_tr)

    def _kernel_system(self, gamma, fold):
        torch = _torch()
        K = sum(g * Kb for g, Kb in zip(gamma, self.K) if g > 0)
        if fold is None:
            tr = torch.arange(self.n, device=self.device)
            val = None
        else:
            tr, val = self.folds[fold].train, self.folds[fold].val
        Ktt = K[tr][:, tr]
        if self.fit_intercept:
            rt = Ktt.mean(1)
            q = rt.mean()
            Kc = Ktt - rt[:, None] - rt[None, :] + q
        else:
            Kc = Ktt
        s, U = self._eigh(Kc)
        W = None
        if val is not None:
            Kvt = K[val][:, tr]
            if self.fit_intercept:
                Kvt = Kvt - Kvt.mean(1, keepdim=True) - rt[None, :] + q
            W = (Kvt @ U).to(self.dtype)
        return dict(s=s, U=U.to(self.dtype), W=W, tr=tr, n_tr=len(tr))

    # -- per-chunk fold data (independent of band weights)
    def chunk_data(self, Yc):
        """Yc: (n, tc) tensor. Returns per-fold dicts and full-data sums."""
        torch = _torch()
        out = []
        C = None if self.kernel else self.X.T @ Yc
        ysum = Yc.to(torch.float64).sum(0)
        for fi, f in enumerate(self.folds):
            Yv = Yc[f.val]
            yv_sum = Yv.to(torch.float64).sum(0)
            mu = (ysum - yv_sum) / f.n_train if self.fit_intercept else torch.zeros_like(ysum)
            ytil = Yv - mu.to(self.dtype)
            yv64 = Yv.to(torch.float64)
            sst = ((yv64 - yv64.mean(0)) ** 2).sum(0)
            d = dict(ytil=ytil, mu=mu, sst=sst)
            if not self.kernel:
                Cv = self.X[f.val].T @ Yv
                Ctr = C - Cv
                if self.fit_intercept:
                    xs_tr = (self.xsum - self.Gval[fi][1]).to(self.dtype)
                    # Σ_tr (x - m)(y - μ)ᵀ = Σ_tr x yᵀ - xs_tr μᵀ
                    Ctr = Ctr - torch.outer(xs_tr, mu.to(self.dtype))
                d["Ctr"] = Ctr
            out.append(d)
        return out

    def project(self, sysd, fold, fd, Yc):
        """Z = basisᵀ · centred training cross-product, shape (r, tc)."""
        if self.kernel:
            Ytr = Yc[sysd["tr"]] - fd["mu"].to(self.dtype)
            return sysd["U"].T @ Ytr
        return sysd["Vd"].T @ fd["Ctr"]

    def refit(self, gi, gamma, Yc, alphas_t):
        """Coefficients (p, tc) and intercept (tc,) for per-target alphas ``alphas_t``."""
        torch = _torch()
        sysd = self.system(gi, gamma, None)
        s = sysd["s"]
        ysum = Yc.to(torch.float64).sum(0)
        mu = ysum / self.n if self.fit_intercept else torch.zeros_like(ysum)
        filt = (1.0 / (s[:, None] + alphas_t[None, :])).to(self.dtype)  # (r, tc)
        if self.kernel:
            Yc0 = Yc - mu.to(self.dtype)
            Z = sysd["U"].T @ Yc0
            dual = sysd["U"] @ (filt * Z)
            m = self.xsum / self.n if self.fit_intercept else torch.zeros_like(self.xsum)
            Xc = self.X - m.to(self.dtype)
            coef = Xc.T @ dual
            coef = coef * (self.scale(gamma) ** 2).to(self.dtype)[:, None]
        else:
            C = self.X.T @ Yc
            if self.fit_intercept:
                C = C - torch.outer(self.xsum.to(self.dtype), mu.to(self.dtype))
            Z = sysd["Vd"].T @ C
            coef = sysd["Vd"] @ (filt * Z)
            m = sysd["m"]
        intercept = mu - m @ coef.to(torch.float64) if self.fit_intercept else torch.zeros_like(mu)
        return coef, intercept


def _score_block(P_or_R, fd, scoring, is_residual, n_val):
    """Score one candidate: returns float64 (tc,)."""
    torch = _torch()
    if is_residual:
        sse = torch.linalg.vector_norm(P_or_R, dim=0).to(torch.float64) ** 2
        if scoring == "neg_mse":
            return -sse / n_val
        sst = fd["sst"]
        return torch.where(sst > 0, 1.0 - sse / torch.where(sst > 0, sst, 1.0), 0.0)
    # pearson on predictions
    P = P_or_R
    Pc = P - P.mean(0)
    yc = fd["yc"]
    num = (Pc * yc).sum(0).to(torch.float64)
    den = (torch.linalg.vector_norm(Pc, dim=0).to(torch.float64) * fd["ynorm"])
    return torch.where(den > 0, num / torch.where(den > 0, den, 1.0), 0.0)


def _fold_scores(prob, sysd, fold, fd, Yc, alphas64, scoring, filt_fn=None):
    """Scores (n_cand, tc) for one fold's eigensystem and all candidates."""
    torch = _torch()
    W, s = sysd["W"], sysd["s"]
    Z = prob.project(sysd, fold, fd, Yc)
    ytil = fd["ytil"]
    n_val = ytil.shape[0]
    if scoring == "pearson" and "yc" not in fd:
        fd["yc"] = ytil - ytil.mean(0)
        fd["ynorm"] = torch.linalg.vector_norm(fd["yc"], dim=0).to(torch.float64)
    n_cand = len(alphas64) if filt_fn is None else filt_fn.n_cand
    out = torch.empty((n_cand, ytil.shape[1]), dtype=torch.float64, device=prob.device)
    for a in range(n_cand):
        if filt_fn is None:
            Wd = W * (1.0 / (s + alphas64[a])).to(prob.dtype)[None, :]
            if scoring == "pearson":
                out[a] = _score_block(Wd @ Z, fd, scoring, False, n_val)
            else:
                R = torch.addmm(ytil, Wd, Z, beta=1.0, alpha=-1.0)
                out[a] = _score_block(R, fd, scoring, True, n_val)
        else:  # per-target filters (fractional ridge)
            F = filt_fn(s, Z, a)  # (r, tc) dtype
            if scoring == "pearson":
                out[a] = _score_block(W @ (F * Z), fd, scoring, False, n_val)
            else:
                R = torch.addmm(ytil, W, F * Z, beta=1.0, alpha=-1.0)
                out[a] = _score_block(R, fd, scoring, True, n_val)
    return out


def _chunk_size(prob, t, n_cand_total, budget, n_gammas):
    p_or_n = prob.n if prob.kernel else prob.p
    n_val = max(len(f.val) for f in prob.folds)
    per_t = 4 * (3 * prob.n + len(prob.folds) * (0 if prob.kernel else prob.p) + 2 * n_val + 3 * p_or_n)
    per_t += 8 * (n_cand_total + 4 * n_gammas + 16)
    fixed = 4 * (prob.n * prob.p) * 3
    avail = max(budget - fixed, per_t)
    return int(max(1, min(t, avail // per_t)))


def _cv_search(
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
    """Grid search over (band weights × alphas), per target or global. See RidgeCV."""
    torch = _torch()
    if scoring not in _SCORINGS:
        raise ValueError(f"scoring must be one of {_SCORINGS}, got {scoring!r}")
    alphas = np.asarray(alphas, dtype=np.float64).ravel()
    if alphas.size == 0 or np.any(~np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError("alphas must be finite and > 0")
    gammas = np.asarray(gammas, dtype=np.float64)
    n, t = Y.shape
    with _TF32(device, allow_tf32):
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
                c, b = prob.refit(gi, gammas[gi], Yc[:, torch.as_tensor(sel, device=device)], at)
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


def _as_2d_float(a, name):
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


def _cast(a, dtype):
    torch = _torch()
    return a.astype(np.float32 if dtype == torch.float32 else np.float64, copy=False)


# ----------------------------------------------------------------------------- estimators
class _Base:
    def get_params(self, deep=True):
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {k: getattr(self, k) for k in names}

    def set_params(self, **params):
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


class RidgeCV(_Base):
    """Ridge regression with one penalty per target chosen by K-fold cross-validation.

    Solves ``β_j = argmin ‖y_j − Xβ − b_j‖² + α_j‖β‖²`` for every target ``j``, with
    ``α_j`` chosen from ``alphas`` by the mean validation score over the folds of ``cv``.

    Parameters
    ----------
    alphas : array-like of float > 0, default ``np.logspace(-2, 6, 17)``
        Candidate penalties.
    cv : int, splitter or iterable of (train, val), default 5
        An int means contiguous unshuffled K-fold (as scikit-learn ``KFold`` and
        himalaya). Splitters get ``groups`` from :meth:`fit` (e.g. ``GroupKFold``).
    device : {"auto", "cpu", "cuda", ...}, default "auto"
    fit_intercept : bool, default True
        Centre X and Y with each fold's training means (as scikit-learn / himalaya).
    scoring : {"r2", "pearson", "neg_mse"}, default "r2"
        Validation score. ``"r2"`` is the mean over folds of each fold's R² (himalaya's
        ``r2_score``); himalaya's solver default is ``"neg_mse"``.
    alpha_per_target : bool, default True
        False: one alpha for all targets, by the mean score over targets (paper protocol).
    solver : {"auto", "primal", "kernel"}, default "auto"
        ``"auto"`` uses the kernel form ``XXᵀ`` when ``n_features > n_samples``.
    dtype : {"float32", "float64"}, default "float32"
        Data precision; decompositions are always float64.
    allow_tf32 : bool, default False
        Allow TF32 matmuls on CUDA (faster, ~0.04 % of targets change alpha).
    memory_budget : int, optional
        Bytes per target chunk (default: half the free GPU memory; a quarter of free RAM,
        at most 4 GiB, on the CPU).
    chunk_size : int, optional
        Force the number of targets per chunk.

    Attributes
    ----------
    best_alphas_ : ndarray (n_targets,)
    coef_ : ndarray (n_features, n_targets)
    intercept_ : ndarray (n_targets,)
    cv_scores_ : ndarray (n_alphas, n_targets)
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

    def fit(self, X, Y, groups=None):
        """Fit on X (n, p) and Y (n, t) or (n,); ``groups`` go to the splitter."""
        dtype = _resolve_dtype(self.dtype)
        device = _resolve_device(self.device)
        X = _cast(_as_2d_float(X, "X"), dtype)
        Y0 = np.asarray(Y)
        self._ravel = Y0.ndim == 1
        Y = _cast(_as_2d_float(Y, "Y"), dtype)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X and Y have different numbers of samples: {X.shape[0]} vs {Y.shape[0]}")
        splits = _check_splits(self.cv, X.shape[0], X, Y, groups)
        alphas = self._alphas()
        res = _cv_search(
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

    def predict(self, X):
        """Predictions (n, t) as float64 (``(n,)`` if fitted on 1-D Y)."""
        self._check_fitted()
        X = _as_2d_float(X, "X")
        if X.shape[1] != self.coef_.shape[0]:
            raise ValueError(f"X has {X.shape[1]} features, the model {self.coef_.shape[0]}")
        P = X.astype(np.float64) @ self.coef_.astype(np.float64) + self.intercept_
        return P[:, 0] if getattr(self, "_ravel", False) else P

    def score(self, X, Y):
        """Per-target Pearson r between predictions and Y (deviation from scikit-learn)."""
        P = self.predict(X)
        Y = np.asarray(Y, dtype=np.float64)
        if P.ndim == 1:
            return float(pearson_r(P, Y.ravel()))
        return pearson_r(P, Y)


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
    alphas : array-like, default ``np.logspace(-2, 6, 17)``
    cv : int or splitter, default 5
    n_iter : int, default 20
        Random candidates when there are more than 3 bands.
    device : str, default "auto"
    random_state : int, default 0
    band_weights : array (n_candidates, n_bands), optional
        Explicit candidates (each row is normalised to sum 1).
    fit_intercept, scoring, alpha_per_target, solver, dtype, allow_tf32, memory_budget, chunk_size
        As in :class:`RidgeCV` (``alpha_per_target=False`` picks one (γ, α) for all).

    Attributes
    ----------
    best_band_weights_ : ndarray (n_bands, n_targets)
    best_alphas_ : ndarray (n_targets,)
    coef_ : ndarray (n_features_total, n_targets)
        Coefficients on the unscaled, concatenated bands.
    intercept_ : ndarray (n_targets,)
    cv_scores_ : ndarray (n_candidates, n_targets)
        Best mean validation score over alphas, per band-weight candidate.
    band_weights_ : ndarray (n_candidates, n_bands)
        The candidates searched.
    deltas_ : ndarray (n_bands, n_targets)
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
        return _dirichlet_weights(n_bands, int(self.n_iter), self.random_state)

    def _check_Xs(self, Xs, dtype=None):
        if isinstance(Xs, np.ndarray) and Xs.ndim == 2:
            Xs = [Xs]
        Xs = [_as_2d_float(x, f"Xs[{i}]") for i, x in enumerate(Xs)]
        if len({x.shape[0] for x in Xs}) != 1:
            raise ValueError("all bands must have the same number of samples")
        if dtype is not None:
            Xs = [_cast(x, dtype) for x in Xs]
        return Xs

    def fit(self, Xs, Y, groups=None):
        """Fit on a list of bands ``Xs`` (each (n, p_b)) and Y (n, t)."""
        dtype = _resolve_dtype(self.dtype)
        device = _resolve_device(self.device)
        Xs = self._check_Xs(Xs, dtype)
        Y = _cast(_as_2d_float(Y, "Y"), dtype)
        if Xs[0].shape[0] != Y.shape[0]:
            raise ValueError("Xs and Y have different numbers of samples")
        gammas = self._candidates(len(Xs))
        alphas = np.logspace(-2, 6, 17) if self.alphas is None else np.atleast_1d(np.asarray(self.alphas, float))
        splits = _check_splits(self.cv, Y.shape[0], np.concatenate(Xs, 1), Y, groups)
        res = _cv_search(
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

    def predict(self, Xs, split=False):
        """Predictions (n, t); with ``split=True`` the per-band parts (n_bands, n, t).

        The split holds ``X_b β_b`` for each band, so ``split.sum(0) + intercept_`` equals
        the joint prediction.
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

    def score(self, Xs, Y, split=False):
        """Per-target Pearson r; with ``split=True`` per-band R² shares (n_bands, t).

        The split uses the product measure (as himalaya's ``r2_score_split``):
        ``R²_b = (2⟨ŷ_b, y⟩ − ⟨ŷ_b, ŷ⟩)/‖y‖²`` on test-centred data; the shares sum to the
        joint R².
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


# ----------------------------------------------------------------------------- fractional ridge
def _fraction_alphas(s, Z, w, fracs, n_iter=64):
    """Per-target alphas giving ``‖β_α‖/‖β_OLS‖ = f`` (float64 bisection, exact to ~1e-15).

    ``‖β_α‖² = Σ_k w_k Z_k²/(s_k+α)²`` (primal: w = 1; kernel: w = s). Fractions above 1
    give negative alphas in ``(−s_min, 0)`` (fracridge ≥ 2). Returns (n_fracs, t) float64.
    """
    torch = _torch()
    s = s.to(torch.float64)
    Z2 = Z.to(torch.float64) ** 2 * w.to(torch.float64)[:, None]
    pos = s > s.max() * 1e-10
    s, Z2 = s[pos], Z2[pos]
    smin = s.min()
    ols = (Z2 / s[:, None] ** 2).sum(0)
    fr = torch.as_tensor(np.asarray(fracs, dtype=np.float64), device=s.device)
    target = (fr[:, None] ** 2) * ols[None, :]  # (F, t)
    # u = log(α + s_min); norm decreasing in u
    lo = torch.full_like(target, float(torch.log(smin * 1e-9)))
    hi = torch.full_like(target, float(torch.log(s.max() * 1e12 + smin)))
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        alpha = torch.exp(mid) - smin
        norm = (Z2[None] / (s[None, :, None] + alpha[:, None, :]) ** 2).sum(1)
        big = norm > target  # too little shrinkage → increase alpha
        lo = torch.where(big, mid, lo)
        hi = torch.where(big, hi, mid)
    return torch.exp(0.5 * (lo + hi)) - smin


class FracRidgeCV(_Base):
    """Fractional ridge (Rokem & Kay 2020) with K-fold selection of the fraction.

    For each target and fraction ``f`` the penalty ``α`` solves
    ``‖β_α‖ = f·‖β_OLS‖`` (exactly, by bisection in float64 on the fold's eigenvalues).
    ``fraction_per_target=False`` (default) is the paper's protocol: one fraction for the
    whole brain by the mean CV R² over targets (Doerig et al. 2025 used
    ``np.linspace(0.05, 1.05, 20)``, 5-fold unshuffled KFold, ``fit_intercept=True``).

    Attributes
    ----------
    best_fractions_ : ndarray (n_targets,)
    best_alphas_ : ndarray (n_targets,)
        The penalty of each target on all training data for its fraction.
    coef_, intercept_, cv_scores_ (n_fractions, n_targets)
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

    def fit(self, X, Y, groups=None):
        torch = _torch()
        dtype = _resolve_dtype(self.dtype)
        device = _resolve_device(self.device)
        X = _cast(_as_2d_float(X, "X"), dtype)
        Y = _cast(_as_2d_float(Y, "Y"), dtype)
        fracs = np.linspace(0.05, 1.05, 20) if self.fractions is None else np.atleast_1d(np.asarray(self.fractions, float))
        if np.any(fracs <= 0):
            raise ValueError("fractions must be > 0")
        splits = _check_splits(self.cv, X.shape[0], X, Y, groups)
        if self.scoring not in _SCORINGS:
            raise ValueError(f"scoring must be one of {_SCORINGS}")
        with _TF32(device, self.allow_tf32):
            prob = _Problem([X], splits, fit_intercept=self.fit_intercept, solver=self.solver, device=device, dtype=dtype)
            Yc = torch.as_tensor(Y, device=device)
            fds = prob.chunk_data(Yc)
            acc = torch.zeros((len(fracs), Y.shape[1]), dtype=torch.float64, device=device)
            for fi in range(len(prob.folds)):
                sysd = prob.system(0, [1.0], fi)
                Z = prob.project(sysd, fi, fds[fi], Yc)
                w = sysd["s"] if prob.kernel else torch.ones_like(sysd["s"])
                A = _fraction_alphas(sysd["s"], Z, w, fracs)

                class _F:
                    n_cand = len(fracs)

                    def __call__(self_, s, Z_, a):
                        return (1.0 / (s[:, None] + A[a][None, :])).to(dtype)

                acc += _fold_scores(prob, sysd, fi, fds[fi], Yc, None, self.scoring, filt_fn=_F())
            acc /= len(prob.folds)
            self.cv_scores_ = acc.cpu().numpy()
            if self.fraction_per_target:
                best = np.argmax(self.cv_scores_, 0)
            else:
                best = np.full(Y.shape[1], int(np.argmax(self.cv_scores_.mean(1))))
            # refit: per-target alpha for the chosen fraction on all samples
            sysd = prob.system(0, [1.0], None)
            if prob.kernel:
                mu = Yc.to(torch.float64).mean(0) if self.fit_intercept else torch.zeros(Y.shape[1], dtype=torch.float64)
                Zf = sysd["U"].T @ (Yc - mu.to(dtype))
                w = sysd["s"]
            else:
                C = prob.X.T @ Yc
                if self.fit_intercept:
                    mu = Yc.to(torch.float64).mean(0)
                    C = C - torch.outer(prob.xsum.to(dtype), mu.to(dtype))
                Zf = sysd["Vd"].T @ C
                w = torch.ones_like(sysd["s"])
            A = _fraction_alphas(sysd["s"], Zf, w, fracs)  # (F, t)
            at = A.gather(0, torch.as_tensor(best, device=device)[None]).squeeze(0)
            coef, b = prob.refit(0, [1.0], Yc, at)
        self.best_fractions_ = fracs[best]
        self.best_alphas_ = at.cpu().numpy()
        self.coef_ = coef.cpu().numpy()
        self.intercept_ = b.cpu().numpy() if self.fit_intercept else np.zeros(Y.shape[1])
        self.fractions_ = fracs
        return self

    predict = RidgeCV.predict
    score = RidgeCV.score


# ----------------------------------------------------------------------------- the paper's analyses
def train_test_encoding(X_train, Y_train, X_test, Y_test, estimator=None) -> np.ndarray:
    """Fit ``estimator`` (default :class:`RidgeCV`) on train, return per-target test r.

    Works with any estimator exposing ``fit`` and ``predict`` (e.g. scikit-learn's).
    """
    est = RidgeCV() if estimator is None else estimator
    est.fit(X_train, Y_train)
    return pearson_r(np.asarray(est.predict(X_test), dtype=np.float64), np.asarray(Y_test, dtype=np.float64))


def noise_ceiling_relation(r, nc, *, min_nc: float = 0.0) -> dict:
    """Summarise encoding accuracy against a noise ceiling (e.g. inter-participant r).

    Parameters
    ----------
    r, nc : array (n_targets,)
        Test correlation and noise ceiling per target (NaNs are dropped pairwise).
    min_nc : float
        Targets with ``nc <= min_nc`` are excluded from the normalised summary.

    Returns
    -------
    dict with ``pearson`` and ``spearman`` (r vs nc across targets), ``slope`` and
    ``intercept`` of the least-squares line r ≈ a·nc + b, ``median_fraction`` (median of
    r/nc where nc > min_nc), ``fraction_of_ceiling`` (Σr/Σnc there), ``n``.
    """
    from scipy import stats

    r = np.asarray(r, dtype=np.float64).ravel()
    nc = np.asarray(nc, dtype=np.float64).ravel()
    ok = np.isfinite(r) & np.isfinite(nc)
    r, nc = r[ok], nc[ok]
    if r.size < 3:
        raise ValueError("need at least 3 finite targets")
    slope, icpt = np.polyfit(nc, r, 1)
    keep = nc > min_nc
    return dict(
        pearson=float(pearson_r(r, nc)),
        spearman=float(stats.spearmanr(r, nc).statistic),
        slope=float(slope),
        intercept=float(icpt),
        median_fraction=float(np.median(r[keep] / nc[keep])) if keep.any() else float("nan"),
        fraction_of_ceiling=float(r[keep].sum() / nc[keep].sum()) if keep.any() else float("nan"),
        n=int(r.size),
    )


#: Five novel sentences per category (written for this project in the paper's spirit:
#: people, places and food without the other categories' content).
CATEGORY_SENTENCES: dict[str, list[str]] = {
    "people": [
        "A man and a woman are smiling at each other.",
        "A group of children laugh together.",
        "An old woman looks at the camera.",
        "Two friends shake hands and grin.",
        "A young man stands with his arms crossed.",
    ],
    "places": [
        "An empty street lined with tall buildings.",
        "A quiet mountain valley under a clear sky.",
        "A long hallway with closed doors on both sides.",
        "A wide beach with waves rolling onto the sand.",
        "An empty kitchen with white cabinets.",
    ],
    "food": [
        "A plate of pasta with tomato sauce.",
        "A slice of pizza topped with mushrooms.",
        "A bowl of fresh fruit salad.",
        "A sandwich with lettuce and ham on a plate.",
        "A chocolate cake with strawberries on top.",
    ],
}


def embed_sentence_sets(sets: Mapping[str, Sequence[str]] | None = None, embed_fn: Callable | None = None, **kwargs) -> dict:
    """Embed each sentence set and average (the paper's embed-then-average rule).

    Returns ``{name: (d,) float32}``. ``embed_fn(sentences, **kwargs)`` defaults to
    :func:`brainllm_utils.embeddings.embed_sentences`.
    """
    sets = CATEGORY_SENTENCES if sets is None else sets
    if embed_fn is None:
        from .embeddings import embed_sentences as embed_fn
    return {k: np.asarray(embed_fn(list(v), **kwargs), dtype=np.float32).mean(0) for k, v in sets.items()}


def _predict_one(enc, emb):
    emb = np.atleast_2d(np.asarray(emb, dtype=np.float64))
    if hasattr(enc, "predict"):
        return np.asarray(enc.predict(emb), dtype=np.float64)
    coef, intercept = enc
    return emb @ np.asarray(coef, np.float64) + np.asarray(intercept, np.float64)


def in_silico_contrast(encoders, emb_A, emb_B, *, fdr: bool = False, q: float = 0.05, alternative: str = "two-sided") -> dict:
    """Predicted response difference A − B per subject and a one-sample t-test over subjects.

    Parameters
    ----------
    encoders : sequence or dict of fitted estimators (with ``predict``) or ``(coef, intercept)``
        One per subject; every encoder must have the same targets (e.g. fsaverage vertices).
    emb_A, emb_B : array (d,) or (k, d)
        Embeddings of the two sentence sets; several rows are averaged *after* prediction
        (the same as averaging embeddings first for a linear encoder).
    fdr : bool
        Also return Benjamini–Hochberg significance (``q``) over targets. The paper used
        p < 0.05 uncorrected.

    Returns
    -------
    dict with ``diff`` (n_subjects, n_targets), ``mean`` (n_targets,), ``t``, ``p``,
    ``significant`` (p < q, uncorrected) and, with ``fdr=True``, ``significant_fdr``
    and ``p_fdr`` (adjusted p).
    """
    from scipy import stats

    encs = list(encoders.values()) if isinstance(encoders, Mapping) else list(encoders)
    diff = np.stack([_predict_one(e, emb_A).mean(0) - _predict_one(e, emb_B).mean(0) for e in encs])
    out = dict(diff=diff, mean=diff.mean(0))
    if len(encs) >= 2:
        res = stats.ttest_1samp(diff, 0.0, axis=0, alternative=alternative)
        t, p = np.nan_to_num(res.statistic), np.where(np.isfinite(res.pvalue), res.pvalue, 1.0)
    else:
        t, p = np.full(diff.shape[1], np.nan), np.full(diff.shape[1], np.nan)
    out.update(t=t, p=p, significant=p < q)
    if fdr:
        padj = stats.false_discovery_control(p, method="bh")
        out.update(p_fdr=padj, significant_fdr=padj < q)
    return out
