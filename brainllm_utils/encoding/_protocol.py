"""The paper's encoding protocol: train/test accuracy, accuracy against a ceiling, and in-silico
contrasts (Fig. 2a: novel sentence sets pushed through fitted encoders)."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from .._utils.docs import fill_doc
from .._utils.numeric import check_choice, check_float
from ._scoring import pearson_r
from ._sklearn_api import RidgeCV

__all__ = ["train_test_encoding", "noise_ceiling_relation", "CATEGORY_SENTENCES", "embed_sentence_sets",
           "in_silico_contrast"]


@fill_doc
def train_test_encoding(X_train, Y_train, X_test, Y_test, estimator=None) -> np.ndarray:
    """Fit ``estimator`` (default :class:`RidgeCV`) on train, return per-target test r.

    Works with any estimator exposing ``fit`` and ``predict`` (e.g. scikit-learn's).

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_features)
        Training features (e.g. caption embeddings of the training images).
    Y_train : array-like of shape (n_train, n_targets)
        Training responses (e.g. vertices).
    X_test : array-like of shape (n_test, n_features)
        Test features.
    Y_test : array-like of shape (n_test, n_targets)
        Test responses.
    %(estimator)s

    Returns
    -------
    r : ndarray of float64 of shape (n_targets,)
        Pearson r between predicted and measured test responses, per target.
    """
    for a, b, na, nb in ((X_train, Y_train, "X_train", "Y_train"), (X_test, Y_test, "X_test", "Y_test")):
        if np.ndim(a) == 0 or np.ndim(b) == 0 or np.shape(a)[0] != np.shape(b)[0]:
            raise ValueError(f"{na} and {nb} must have one row per sample each, got shapes "
                             f"{np.shape(a)} and {np.shape(b)}")
    est = RidgeCV() if estimator is None else estimator
    est.fit(X_train, Y_train)
    return pearson_r(np.asarray(est.predict(X_test), dtype=np.float64), np.asarray(Y_test, dtype=np.float64))


def noise_ceiling_relation(r, nc, *, min_nc: float = 0.0) -> dict:
    """Summarise encoding accuracy against a noise ceiling (e.g. inter-participant r).

    Parameters
    ----------
    r, nc : array-like of shape (n_targets,)
        Test correlation and noise ceiling per target (NaNs are dropped pairwise).
    min_nc : float, default=0.0
        Targets with ``nc <= min_nc`` are excluded from the normalised summary.

    Returns
    -------
    summary : dict
        ``pearson`` and ``spearman`` (r vs nc across targets), ``slope`` and ``intercept``
        of the least-squares line r ≈ a·nc + b, ``median_fraction`` (median of r/nc where
        nc > min_nc), ``fraction_of_ceiling`` (Σr/Σnc there), ``n`` (finite targets).
    """
    from scipy import stats

    min_nc = check_float(min_nc, "min_nc")
    r = np.asarray(r, dtype=np.float64).ravel()
    nc = np.asarray(nc, dtype=np.float64).ravel()
    if r.shape != nc.shape:
        raise ValueError(f"r and nc must hold one value per target each, got {r.size} and {nc.size}")
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

    Parameters
    ----------
    sets : mapping of str to sequence of str, optional
        Set name → sentences; ``None``: :data:`CATEGORY_SENTENCES`.
    embed_fn : callable, optional
        ``embed_fn(sentences, **kwargs)`` → ``(n_sentences, n_dims)`` array; default
        :func:`brainllm_utils.embeddings.embed_sentences` (imported lazily).
    **kwargs
        Passed to ``embed_fn`` (e.g. ``model``, ``device``).

    Returns
    -------
    embeddings : dict of str to ndarray of float32 of shape (n_dims,)
        ``{name: mean embedding of the set}``.
    """
    sets = CATEGORY_SENTENCES if sets is None else sets
    if embed_fn is None:
        from ..features.embeddings import embed_sentences as embed_fn
    return {k: np.asarray(embed_fn(list(v), **kwargs), dtype=np.float32).mean(0) for k, v in sets.items()}


def _predict_one(enc, emb):
    emb = np.atleast_2d(np.asarray(emb, dtype=np.float64))
    if hasattr(enc, "predict"):
        return np.asarray(enc.predict(emb), dtype=np.float64)
    coef, intercept = enc
    return emb @ np.asarray(coef, np.float64) + np.asarray(intercept, np.float64)


@fill_doc
def in_silico_contrast(encoders, emb_A, emb_B, *, fdr: bool = False, q: float = 0.05, alternative: str = "two-sided") -> dict:
    """Predicted response difference A − B per subject and a one-sample t-test over subjects.

    Parameters
    ----------
    encoders : sequence or dict of fitted estimators or of tuple of (coef, intercept)
        One per subject: estimators with ``predict``, or ``(coef, intercept)`` with coef
        ``(n_dims, n_targets)``; every encoder must have the same targets (e.g. fsaverage
        vertices).
    emb_A, emb_B : array-like of shape (n_dims,) or (k, n_dims)
        Embeddings of the two sentence sets; several rows are averaged *after* prediction
        (the same as averaging embeddings first for a linear encoder).
    fdr : bool, default=False
        Also return Benjamini–Hochberg significance (``q``) over targets. The paper used
        p < 0.05 uncorrected.
    q : float, default=0.05
        Significance level: ``p < q`` uncorrected, and the FDR level with ``fdr=True``.
    %(alternative)s
        Of the one-sample t-test of the differences over subjects.

    Returns
    -------
    result : dict
        ``diff`` (n_subjects, n_targets), ``mean`` (n_targets,), ``t``, ``p`` (n_targets,;
        NaN with a single subject), ``significant`` (p < q, uncorrected) and, with
        ``fdr=True``, ``significant_fdr`` and ``p_fdr`` (adjusted p).
    """
    from scipy import stats

    q = check_float(q, "q", min_value=0, max_value=1, min_inclusive=False, max_inclusive=False)
    check_choice(alternative, "alternative", ("two-sided", "greater", "less"))
    if not isinstance(fdr, (bool, np.bool_)):
        raise TypeError(f"fdr must be True or False, got {fdr!r}")
    encs = list(encoders.values()) if isinstance(encoders, Mapping) else list(encoders)
    if not encs:
        raise ValueError("encoders is empty: expected one fitted encoder (or (coef, intercept)) per subject")
    for name, e in (("emb_A", emb_A), ("emb_B", emb_B)):
        a = np.asarray(e)
        if a.dtype.kind not in "biuf" or a.ndim not in (1, 2) or a.size == 0 or not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be a finite embedding (n_dims,) or (k, n_dims), got shape "
                             f"{a.shape} dtype {a.dtype}")
    if np.shape(emb_A)[-1] != np.shape(emb_B)[-1]:
        raise ValueError(f"emb_A and emb_B differ in n_dims: {np.shape(emb_A)} vs {np.shape(emb_B)}")
    diff = np.stack([_predict_one(e, emb_A).mean(0) - _predict_one(e, emb_B).mean(0) for e in encs])
    out = dict(diff=diff, mean=diff.mean(0))
    if len(encs) >= 2:
        res = stats.ttest_1samp(diff, 0.0, axis=0, alternative=alternative)
        t, p = np.nan_to_num(res.statistic), np.where(np.isfinite(res.pvalue), res.pvalue, 1.0)
    else:
        t, p = np.full(diff.shape[1], np.nan), np.full(diff.shape[1], np.nan)
    out.update(t=t, p=p, significant=p < q)
    if fdr:  # one subject: no test, p is NaN, nothing is significant
        padj = stats.false_discovery_control(p, method="bh") if len(encs) >= 2 else p.copy()
        out.update(p_fdr=padj, significant_fdr=padj < q)
    return out
