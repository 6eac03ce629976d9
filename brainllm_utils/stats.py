"""Group statistics for RSA: one-sample tests with FDR, paired model comparisons, bootstrap CIs.

The paper tested scores against 0 across the 8 subjects (two-sided one-sample t-tests,
Benjamini–Hochberg FDR at q = 0.05) and compared models with *unpaired* t-tests
(``paper_methods.md`` §3). Scores of two models on the same subject are paired, so here
model comparisons are paired: a paired t-test and an exact / seeded sign-flip permutation
test on the per-subject differences.
"""

from __future__ import annotations

import itertools

import numpy as np

from ._utils.docs import fill_doc
from ._utils.numeric import check_choice, check_finite, check_float, check_int
from .rsa import bootstrap_rsa_ci

__all__ = [
    "CORRECTIONS",
    "adjust_pvalues",
    "fdr_bh",
    "ttest_1samp_fdr",
    "paired_ttest",
    "sign_flip_test",
    "group_tests",
    "pairwise_model_tests",
    "paired_contrast_tests",
    "trend_over_seeds",
    "bootstrap_rsa_ci",
]

#: multiple-comparison corrections of :func:`adjust_pvalues`: method → how a table names it
CORRECTIONS = {
    "holm": "Holm (step-down Bonferroni, family-wise error)",
    "bh": "Benjamini–Hochberg (false discovery rate)",
}


def adjust_pvalues(pvals, method: str = "holm"):
    """p-values adjusted for multiple comparisons over one family of tests.

    Parameters
    ----------
    pvals : array-like
        p-values of the family, any shape; NaNs are ignored (not counted as tests, returned
        as NaN).
    method : {"holm", "bh"}, default="holm"
        ``"holm"``: Holm's step-down Bonferroni (controls the family-wise error rate);
        ``"bh"``: Benjamini–Hochberg (controls the false discovery rate, as
        :func:`fdr_bh`).

    Returns
    -------
    p_adjusted : ndarray of float64 of the shape of ``pvals``
        Adjusted p-values in [0, 1]; a hypothesis is rejected at level α when its adjusted
        p is ≤ α.

    Notes
    -----
    Holm: with the m finite p-values sorted ascending, ``p_(i) · (m − i + 1)`` made
    monotone from the smallest p upwards, capped at 1 (Holm 1979); it equals the closed
    testing procedure with Bonferroni tests of every intersection.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"method={method!r}: expected one of {sorted(CORRECTIONS)}")
    p = _numeric(pvals, "pvals")
    if method == "bh":
        return fdr_bh(p)[1]
    flat = p.ravel()
    ok = np.isfinite(flat)
    if np.any((flat[ok] < 0) | (flat[ok] > 1)):
        raise ValueError("pvals: p-values must lie in [0, 1]")
    adj = np.full(flat.shape, np.nan)
    m = int(ok.sum())
    if m:
        pv = flat[ok]
        order = np.argsort(pv, kind="stable")
        ranked = np.maximum.accumulate(pv[order] * (m - np.arange(m)))
        out = np.empty(m)
        out[order] = np.minimum(ranked, 1.0)
        adj[ok] = out
    return adj.reshape(p.shape)


@fill_doc
def fdr_bh(pvals, q: float = 0.05):
    """Benjamini–Hochberg false discovery rate control.

    Parameters
    ----------
    pvals : array-like
        p-values, any shape; NaNs are ignored (not counted as tests, returned as NaN /
        False).
    %(q)s

    Returns
    -------
    reject : ndarray of bool of the shape of ``pvals``
        Hypotheses rejected at FDR ``q``.
    p_adjusted : ndarray of float64 of the shape of ``pvals``
        BH-adjusted p-values (equal to :func:`scipy.stats.false_discovery_control`
        with ``method="bh"`` on the finite entries); ``reject = p_adjusted <= q``.

    Notes
    -----
    ``p_(i) · m / i`` made monotone from the largest p downwards, capped at 1
    (Benjamini & Hochberg 1995).
    """
    q = _check_q(q)
    p = _numeric(pvals, "pvals")
    flat = p.ravel()
    ok = np.isfinite(flat)
    if np.any((flat[ok] < 0) | (flat[ok] > 1)):
        raise ValueError("pvals must lie in [0, 1] (NaN allowed)")
    adj = np.full(flat.shape, np.nan)
    m = int(ok.sum())
    if m:
        pv = flat[ok]
        order = np.argsort(pv, kind="stable")
        ranked = pv[order] * m / np.arange(1, m + 1)
        ranked = np.minimum.accumulate(ranked[::-1])[::-1]
        out = np.empty(m)
        out[order] = np.minimum(ranked, 1.0)
        adj[ok] = out
    adj = adj.reshape(p.shape)
    with np.errstate(invalid="ignore"):
        reject = np.where(np.isfinite(adj), adj <= q, False)
    return reject, adj


@fill_doc
def ttest_1samp_fdr(values, popmean: float = 0.0, q: float = 0.05, alternative="two-sided"):
    """One-sample t-tests across subjects (axis 0) with BH-FDR over the remaining axes.

    Parameters
    ----------
    values : array-like of shape (n_subjects, ...)
        E.g. per-subject searchlight maps ``(8, n_centres)`` or ROI scores
        ``(8, n_rois)``.
    popmean : float, default=0.0
        Mean under the null hypothesis (as :func:`scipy.stats.ttest_1samp`).
    %(q)s
        BH over all the tests (every entry of ``values.shape[1:]``).
    %(alternative)s

    Returns
    -------
    result : dict
        ``mean``, ``sem``, ``t``, ``p``, ``p_fdr`` and ``reject``, arrays of shape
        ``values.shape[1:]``.
    """
    from scipy import stats

    v = _numeric(values, "values", min_rows=2)
    popmean = check_float(popmean, "popmean")
    q = _check_q(q)
    check_choice(alternative, "alternative", _ALTERNATIVES)
    res = stats.ttest_1samp(v, popmean, axis=0, alternative=alternative, nan_policy="propagate")
    reject, p_fdr = fdr_bh(res.pvalue, q)
    n = np.isfinite(v).sum(0)
    return {
        "mean": v.mean(0),
        "sem": v.std(0, ddof=1) / np.sqrt(n),
        "t": np.asarray(res.statistic),
        "p": np.asarray(res.pvalue),
        "p_fdr": p_fdr,
        "reject": reject,
    }


@fill_doc
def paired_ttest(a, b, alternative: str = "two-sided"):
    """Paired t-test of ``a − b`` over subjects (axis 0) → ``(t, p)`` arrays.

    The original analysis used the unpaired :func:`scipy.stats.ttest_ind`.

    Parameters
    ----------
    a, b : array-like of shape (n_subjects, ...)
        Scores of two models on the same subjects.
    %(alternative)s

    Returns
    -------
    t : ndarray of shape (...)
        t statistics (:func:`scipy.stats.ttest_rel`), ``a.shape[1:]``.
    p : ndarray of shape (...)
        p-values.
    """
    from scipy import stats

    check_choice(alternative, "alternative", _ALTERNATIVES)
    a, b = _numeric(a, "a", min_rows=2), _numeric(b, "b", min_rows=2)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape (paired subjects), got {a.shape} and {b.shape}")
    res = stats.ttest_rel(a, b, axis=0, alternative=alternative)
    return res.statistic, res.pvalue


@fill_doc
def sign_flip_test(a, b=None, n_perm: int = 10000, seed: int = 0,
                   alternative: str = "two-sided"):
    """Sign-flip permutation test of the mean (paired differences) over axis 0.

    Parameters
    ----------
    a : array-like of shape (n_subjects, ...)
        Values, or the first model's scores when ``b`` is given (then ``a − b`` is tested).
    b : array-like of shape (n_subjects, ...), optional
        The second model's scores.
    n_perm : int, default=10000
        Random sign patterns (seeded). When ``2**n_subjects <= n_perm`` all patterns are
        enumerated (exact test; 256 for 8 subjects).
    %(seed)s
        Used only for random patterns.
    %(alternative)s

    Returns
    -------
    mean_diff : ndarray of shape (...)
        Observed mean difference, ``a.shape[1:]``.
    p : ndarray of float64 of shape (...)
        Permutation p-value, ``(1 + #{null ≥ observed}) / (1 + n_perm)`` for random
        patterns, ``#{null ≥ observed} / 2**n`` when exact (observed pattern included).

    Notes
    -----
    Under H0 (differences symmetric about 0) each subject's difference can flip sign;
    the statistic is the mean difference. The smallest attainable exact p is
    ``2 / 2**n`` two-sided (0.0078 for 8 subjects).
    """
    n_perm = check_int(n_perm, "n_perm", min_value=1)
    seed = check_int(seed, "seed", min_value=0)
    check_choice(alternative, "alternative", _ALTERNATIVES)
    d = check_finite(a, "a", min_size=1)
    if d.ndim == 0:
        raise ValueError("a must have a subject axis (axis 0), got a scalar")
    if b is not None:
        b = check_finite(b, "b")
        if b.shape != d.shape:
            raise ValueError(f"a and b must have the same shape (paired subjects), got {d.shape} and {b.shape}")
        d = d - b
    n = d.shape[0]
    flat = d.reshape(n, -1)
    obs = flat.mean(0)
    exact = 2**n <= n_perm
    if exact:
        signs = np.array(list(itertools.product([1.0, -1.0], repeat=n)))
    else:
        rng = np.random.default_rng(seed)
        signs = rng.choice([-1.0, 1.0], size=(n_perm, n))
    null = signs @ flat / n  # (n_patterns, n_tests)
    eps = 1e-12 * np.maximum(1.0, np.abs(obs))
    if alternative == "two-sided":
        hits = (np.abs(null) >= np.abs(obs) - eps).sum(0)
    elif alternative == "greater":
        hits = (null >= obs - eps).sum(0)
    elif alternative == "less":
        hits = (null <= obs + eps).sum(0)
    else:
        raise ValueError(f"unknown alternative {alternative!r}")
    p = hits / len(signs) if exact else (1 + hits) / (1 + len(signs))
    shape = d.shape[1:]
    return obs.reshape(shape), np.asarray(p, dtype=np.float64).reshape(shape)


_ALTERNATIVES = ("two-sided", "greater", "less")


def _check_q(q, name: str = "q") -> float:
    return check_float(q, name, min_value=0, max_value=1, min_inclusive=False, max_inclusive=False)


def _numeric(x, name: str, min_rows: int = 0) -> np.ndarray:
    """A numeric array (NaN allowed: the tests propagate it) with at least ``min_rows`` rows."""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if min_rows and (arr.ndim == 0 or arr.shape[0] < min_rows):
        raise ValueError(f"{name} needs at least {min_rows} subjects along axis 0, got shape {arr.shape}")
    return arr


def _check_table(df, columns, where: str, unique=None) -> None:
    """``df`` is a DataFrame with ``columns``; rows unique over ``unique`` (a subject counted once)."""
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{where}: df must be a pandas DataFrame, got {type(df).__name__}")
    for col in columns:
        if not isinstance(col, str) or col not in df.columns:
            raise ValueError(f"{where}: df: missing column {col!r} (have {list(df.columns)})")
    if unique is not None and all(c in df.columns for c in unique):
        dup = df.duplicated(subset=list(unique), keep=False)
        if dup.any():
            first = df.loc[dup, list(unique)].head(2).to_dict("records")
            raise ValueError(f"{where}: df holds {int(dup.sum())} rows that repeat the same "
                             f"{tuple(unique)} (first: {first}); each subject must be counted once "
                             "(a repeated row would weigh its subject twice)")


def _check_by(by, name: str) -> tuple:
    by = (by,) if isinstance(by, str) else tuple(by)
    if not by or not all(isinstance(c, str) for c in by):
        raise ValueError(f"{name} must be a column name or a non-empty sequence of them, got {by!r}")
    if len(set(by)) != len(by):
        raise ValueError(f"{name} repeats a column: {by!r}")
    return by


def _refuse_nan(df, value: str, where: str) -> None:
    """A NaN score would silently drop its subject from a test (``dropna``/pivot): refuse it."""
    bad = df[df[value].isna()]
    if len(bad):
        cols = [c for c in ("subject", "roi", "model") if c in bad.columns]
        shown = bad[cols].drop_duplicates().head(5).to_dict("records") if cols else []
        raise ValueError(f"{where}: {len(bad)} NaN value(s) in column {value!r} (first: {shown}); a NaN "
                         "would silently drop its subject from the test. Find its cause (e.g. an "
                         "empty feature row: rsa.separate_empty_rows) or drop those rows explicitly")


@fill_doc
def group_tests(df, value: str = "r", by=("roi", "model"), q: float = 0.05,
                fdr_within: str | None = None):
    """One-sample tests across subjects for each group of a tidy score table.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per subject and group (e.g. from :func:`brainllm_utils.rsa.roi_rsa`,
        concatenated over subjects), with a ``subject`` column.
    value : str, default="r"
        Column tested against 0 (``"r"`` or ``"r_normalised"``).
    by : sequence of str, default=("roi", "model")
        Grouping columns.
    %(q)s
        BH over all groups, or within each level of ``fdr_within``.
    fdr_within : str, optional
        A column of the result (e.g. ``"roi"``) within whose levels FDR is controlled
        separately; ``None``: over all groups at once.

    Returns
    -------
    table : pandas.DataFrame
        One row per group: ``by`` columns plus ``n, mean, sem, t, p, p_fdr, significant``.

    Raises
    ------
    ValueError
        When ``value`` holds a NaN (it would silently leave its subject out).
    """
    import pandas as pd
    from scipy import stats

    by = _check_by(by, "by")
    _check_table(df, (*by, value), "group_tests", unique=(*by, "subject"))
    q = _check_q(q)
    if fdr_within is not None and fdr_within not in by:
        raise ValueError(f"group_tests: fdr_within={fdr_within!r} must be one of by={list(by)} or None")
    _refuse_nan(df, value, "group_tests")
    rows = []
    for key, g in df.groupby(list(by), sort=False):
        x = g[value].to_numpy(float)
        res = stats.ttest_1samp(x, 0.0)
        key = key if isinstance(key, tuple) else (key,)
        rows.append(dict(zip(by, key), n=len(x), mean=x.mean(),
                         sem=x.std(ddof=1) / np.sqrt(len(x)), t=res.statistic, p=res.pvalue))
    out = pd.DataFrame(rows)
    out["p_fdr"] = np.nan
    groups = [out.index] if fdr_within is None else out.groupby(fdr_within).groups.values()
    for ix in groups:
        out.loc[ix, "p_fdr"] = fdr_bh(out.loc[ix, "p"].to_numpy(), q)[1]
    out["significant"] = out["p_fdr"] <= q
    return out


@fill_doc
def pairwise_model_tests(df, value: str = "r", model_col: str = "model", by="roi",
                         pairs=None, q: float = 0.05, n_perm: int = 10000, seed: int = 0):
    """Paired comparisons between models within each ROI (BH-FDR over pairs per ROI).

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy scores with ``subject``, ``model_col``, ``by`` and ``value`` columns.
    value : str, default="r"
        Column of the scores compared.
    model_col : str, default="model"
        Column naming the model.
    by : str, default="roi"
        Column within whose levels models are compared (and FDR is controlled).
    pairs : list of tuple of (str, str), optional
        Model pairs (a, b) to test ``a − b``; default all pairs.
    %(q)s
        BH over the pairs within each ``by`` level (paired t-test p-values).
    n_perm : int, default=10000
        For :func:`sign_flip_test`.
    %(seed)s
        For :func:`sign_flip_test`.

    Returns
    -------
    table : pandas.DataFrame
        ``by, model_a, model_b, n, mean_diff, t, p_ttest, p_signflip, p_fdr`` (FDR of the
        paired t-test p within each ``by`` level), ``significant``.

    Raises
    ------
    ValueError
        When ``value`` holds a NaN: pairing drops incomplete subjects, so a NaN score would
        silently remove its subject from every test of its ROI (``n`` counts the subjects
        that have both models).
    """
    import pandas as pd

    if not isinstance(by, str):
        raise TypeError(f"pairwise_model_tests: by must be one column name (str), got {by!r}")
    _check_table(df, ("subject", model_col, by, value), "pairwise_model_tests",
                 unique=("subject", model_col, by))
    q = _check_q(q)
    n_perm = check_int(n_perm, "n_perm", min_value=1)
    seed = check_int(seed, "seed", min_value=0)
    if pairs is not None:
        have = set(df[model_col])
        pairs = [tuple(p) for p in pairs]
        for p in pairs:
            if len(p) != 2 or p[0] == p[1] or not set(p) <= have:
                raise ValueError(f"pairwise_model_tests: pairs entry {p!r} must be two different models "
                                 f"of df[{model_col!r}] (have {sorted(map(str, have))})")
    _refuse_nan(df, value, "pairwise_model_tests")
    rows = []
    for level, g in df.groupby(by, sort=False):
        wide = g.pivot_table(index="subject", columns=model_col, values=value)
        models = list(wide.columns)
        todo = pairs if pairs is not None else list(itertools.combinations(models, 2))
        sub = []
        for a, b in todo:
            x = wide[[a, b]].dropna()
            t, p = paired_ttest(x[a], x[b])
            md, pp = sign_flip_test(x[a].to_numpy(), x[b].to_numpy(), n_perm=n_perm, seed=seed)
            sub.append({by: level, "model_a": a, "model_b": b, "n": len(x),
                        "mean_diff": float(md), "t": float(t), "p_ttest": float(p),
                        "p_signflip": float(pp)})
        if sub:
            padj = fdr_bh([s["p_ttest"] for s in sub], q)[1]
            for s, pa in zip(sub, padj):
                s["p_fdr"] = float(pa)
                s["significant"] = bool(pa <= q)
            rows.extend(sub)
    return pd.DataFrame(rows)


@fill_doc
def paired_contrast_tests(df, a: str, b: str, value: str = "r", by: str = "roi", levels=None,
                          method: str = "holm", alpha: float = 0.05, alternative: str = "two-sided",
                          model_col: str = "model"):
    """Model ``a`` against ``b`` per level of ``by``: paired t across subjects, corrected over levels.

    One family of tests (e.g. one comparison in each ROI): the paired t-test
    (:func:`scipy.stats.ttest_rel`) of ``a − b`` over the subjects that have both scores,
    then :func:`adjust_pvalues` over the levels.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy scores with ``subject``, ``model_col``, ``by`` and ``value`` columns, one row
        per subject, model and level (seeded networks already averaged over seeds per
        subject).
    a, b : str
        The two models (``a − b`` is tested).
    value : str, default="r"
        The score column.
    by : str, default="roi"
        The column whose levels are tested (the family).
    levels : sequence, optional
        The levels tested, in this order (default: those of ``df``, in order of appearance).
    method : {"holm", "bh"}, default="holm"
        The correction over the levels (:data:`CORRECTIONS`).
    alpha : float, default=0.05
        Level of the adjusted p-values.
    %(alternative)s
    model_col : str, default="model"
        Column naming the model.

    Returns
    -------
    table : pandas.DataFrame
        One row per level: ``by, model_a, model_b, n`` (subjects with both scores),
        ``mean_a, mean_b, mean_diff, t, p, p_adj, significant`` (``p_adj ≤ alpha``; False
        where ``n < 2``: no test) and ``correction`` (the method, the number of levels and
        the test, in words). ``attrs["correction"]`` holds the same text.
    """
    import pandas as pd

    if method not in CORRECTIONS:
        raise ValueError(f"method={method!r}: expected one of {sorted(CORRECTIONS)}")
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.floating)) or not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: expected a level in (0, 1)")
    check_choice(alternative, "alternative", _ALTERNATIVES)
    _check_table(df, ("subject", model_col, by, value), "paired_contrast_tests",
                 unique=("subject", model_col, by))
    have = set(df[model_col])
    for name, m in (("a", a), ("b", b)):
        if m not in have:
            raise ValueError(f"paired_contrast_tests: {name}={m!r} is not a model of df[{model_col!r}] "
                             f"(have {sorted(map(str, have))})")
    levels = list(dict.fromkeys(df[by])) if levels is None else list(levels)
    rows = []
    for level in levels:
        g = df[(df[by] == level) & df[model_col].isin([a, b])]
        wide = g.pivot_table(index="subject", columns=model_col, values=value)
        x = wide.reindex(columns=[a, b]).dropna()
        n = len(x)
        t = p = np.nan
        if n >= 2:
            t, p = (float(v) for v in paired_ttest(x[a].to_numpy(), x[b].to_numpy(), alternative))
        rows.append({by: level, "model_a": a, "model_b": b, "n": n,
                     "mean_a": float(x[a].mean()) if n else np.nan,
                     "mean_b": float(x[b].mean()) if n else np.nan,
                     "mean_diff": float((x[a] - x[b]).mean()) if n else np.nan, "t": t, "p": p})
    out = pd.DataFrame(rows, columns=[by, "model_a", "model_b", "n", "mean_a", "mean_b", "mean_diff", "t", "p"])
    out["p_adj"] = adjust_pvalues(out["p"].to_numpy(float), method) if len(out) else []
    out["significant"] = (out["p_adj"] <= alpha).fillna(False).astype(bool)
    text = (f"paired t over subjects ({alternative}), {CORRECTIONS[method]} over "
            f"{int(np.isfinite(out['p']).sum())} {by} level(s), α = {alpha:g}")
    out["correction"] = text
    out.attrs["correction"] = text
    return out


def trend_over_seeds(x, y, seeds, alpha: float = 0.05):
    """Does ``y`` grow with ``x``? One slope per seed, a one-sample t-test of the slopes.

    Per seed: the least-squares slope of ``y`` on ``log10(x)`` and the Spearman rank
    correlation of ``y`` with ``x``; across seeds: a two-sided one-sample t-test of the
    slopes against 0 (:func:`scipy.stats.ttest_1samp`), the seeds being independent
    replications of the whole curve.

    Parameters
    ----------
    x : array-like of shape (n,)
        The sizes (> 0), e.g. training images.
    y : array-like of shape (n,)
        The measure at each size, e.g. brain alignment.
    seeds : array-like of shape (n,)
        The seed of each point; each seed needs ≥ 2 distinct sizes.
    alpha : float, default=0.05
        Level of the test.

    Returns
    -------
    result : dict
        ``per_seed`` (pandas.DataFrame indexed by seed: ``slope``, ``spearman``,
        ``n_sizes``), ``n_seeds``, ``mean_slope``, ``mean_spearman``, ``t``, ``p`` (NaN
        with fewer than 2 seeds), and ``grows`` (mean slope > 0 and ``p < alpha``).
    """
    import pandas as pd
    from scipy import stats

    alpha = _check_q(alpha, "alpha")
    x = _numeric(x, "x").ravel()
    y = _numeric(y, "y").ravel()
    seeds = np.asarray(seeds).ravel()
    if not (x.size == y.size == seeds.size):
        raise ValueError(f"x, y and seeds must have the same length, got {x.size}, {y.size}, {seeds.size}")
    if np.any(~np.isfinite(x)) or np.any(x <= 0):
        raise ValueError("x: sizes must be finite and > 0")
    rows = {}
    for s in pd.unique(seeds):
        sel = (seeds == s) & np.isfinite(y)
        xs, ys = x[sel], y[sel]
        if np.unique(xs).size < 2:
            raise ValueError(f"seed {s!r}: needs ≥ 2 distinct sizes with a finite y, got {np.unique(xs).size}")
        rows[s] = dict(slope=float(np.polyfit(np.log10(xs), ys, 1)[0]),
                       spearman=float(stats.spearmanr(xs, ys).statistic), n_sizes=int(np.unique(xs).size))
    per_seed = pd.DataFrame.from_dict(rows, orient="index")
    per_seed.index.name = "seed"
    slopes = per_seed["slope"].to_numpy()
    t = p = np.nan
    if slopes.size >= 2:
        if np.ptp(slopes) == 0:  # identical slopes: no spread to test against
            t, p = (np.inf * np.sign(slopes[0]), 0.0) if slopes[0] != 0 else (np.nan, np.nan)
        else:
            res = stats.ttest_1samp(slopes, 0.0)
            t, p = float(res.statistic), float(res.pvalue)
    return {"per_seed": per_seed, "n_seeds": int(slopes.size), "mean_slope": float(slopes.mean()),
            "mean_spearman": float(per_seed["spearman"].mean()), "t": float(t), "p": float(p),
            "grows": bool(slopes.mean() > 0 and np.isfinite(p) and p < alpha)}
