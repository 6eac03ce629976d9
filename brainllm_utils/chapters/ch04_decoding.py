"""Chapter 04 (decoding, RQ3): brain → caption embedding per subject, identification, caption
reconstruction from a bank disjoint from the test images, caption metrics.

Protocol (``shared/docs/paper_methods.md`` §5): betas in the union of the 7 streams ROIs → the
768-d embedding (:class:`~brainllm_utils.encoding.RidgeCV`, one penalty per dimension);
per-image r; identification ranks; nearest captions in a bank disjoint from the test images
(:class:`~brainllm_utils.encoding.decoding.CaptionRetriever`); BLEU-4 / ROUGE-L / CIDEr-D
against the human captions, next to the human ceiling: every row scored against the same
leave-one-out reference sets as the human captions (``caption_metric_table``).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from ..encoding import (
    RidgeCV,
    embedding_correlation,
    fit_decoder,
    human_ceiling,
    identification_rank,
    pearson_r,
    score_captions,
    score_leave_one_out,
)
from .._utils.cache import cache_key, cached_arrays, resolve_cache
from .._utils.docs import fill_doc
from ._common import _features, _quiet_edges, _read_rows, _split, resolve_subjects
from .ch03_encoding import _roi_arg

__all__ = ["DECODING_ALPHAS", "LABEL_ALPHAS", "LABEL_CONTROLS", "decode_subjects", "decode_by_roi",
           "label_baseline", "beyond_labels_table", "caption_consistency",
           "default_caption_bank", "reconstruct_captions", "caption_metric_table", "gallery_selection"]

#: Ridge penalties for decoding (betas → embedding; more voxels than images on NSD).
DECODING_ALPHAS = np.logspace(0, 7, 15)
#: Ridge penalties of the label baseline (category features → embedding; few features).
LABEL_ALPHAS = np.logspace(-3, 5, 17)
#: The category-label controls the brain must beat (RQ3 beyond labels): what the image's
#: COCO category labels alone predict of its caption embedding.
LABEL_CONTROLS = ("multihot", "mpnet_category_all")


@fill_doc
def decode_subjects(nsd, subjects=None, feature: str = "mpnet", roi="streams",
                    alphas=DECODING_ALPHAS, cv: int = 5, device="auto", cache=True,
                    sessions=None) -> dict:
    """Brain → embedding decoding per subject, scored on the shared test images.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(feature)s
        The decoded embedding.
    roi : str, (str, str or int) or ndarray of bool, default="streams"
        Atlas name, ``(atlas, label)`` or mask (as :func:`subject_data`). Default
        ``"streams"``: the union of the 7 streams ROIs (the paper's ``allvisROIs``).
    alphas : array-like of float > 0, default=DECODING_ALPHAS
        Candidate ridge penalties (15 log-spaced values, 1 … 1e7), one chosen per embedding
        dimension.
    %(cv)s
    %(device)s
    %(cache)s
    %(sessions)s

    Returns
    -------
    decoded : dict
        ``subjects``, ``test_ids`` (n_test,), ``true`` (n_test, d) target embeddings,
        ``pred`` (n_subjects, n_test, d), ``r`` (n_subjects, n_test) per-image Pearson r,
        ``rank`` (n_subjects, n_test) identification rank among the test images (0 = best;
        chance (n_test − 1)/2), ``alphas`` (n_subjects, d) and ``n_voxels``.
    """
    subjects = resolve_subjects(nsd, subjects)
    folder = resolve_cache(cache, "encoding")
    alphas = np.asarray(alphas, dtype=np.float64)
    preds, alph, n_vox = [], [], []
    test_ids = true = None
    shared = nsd.shared_test_images(sessions, subjects)
    for s in subjects:
        # only the valid columns of the train and test rows are read from the memory-mapped
        # betas (the voxels are the decoder's features: all of them are needed at once)
        d = _split(nsd, s, "fsaverage", _roi_arg(nsd, s, roi), shared, sessions=sessions)
        keep = np.flatnonzero(d.valid())
        X_tr, X_te = _read_rows(d.Y, d.train_rows, keep), _read_rows(d.Y, d.test_rows, keep)
        _features(nsd, feature, np.concatenate([d.train_ids, d.test_ids]))
        E_tr = _features(nsd, feature, d.train_ids)
        E_te = _features(nsd, feature, d.test_ids)

        def compute(X_tr=X_tr, X_te=X_te, E_tr=E_tr):
            with _quiet_edges():
                est = fit_decoder(X_tr, E_tr, RidgeCV(alphas=alphas, cv=cv, device=device))
            return dict(pred=np.asarray(est.predict(X_te), np.float32),
                        alphas=est.best_alphas_.astype(np.float32))

        key = cache_key("encoding", "decode_subjects", d.key, feature, E_tr, alphas, int(cv))
        res = cached_arrays("encoding", key, ("pred", "alphas"), compute, cache=cache, folder=folder)
        preds.append(res["pred"])
        alph.append(res["alphas"])
        n_vox.append(int(X_tr.shape[1]))
        test_ids, true = d.test_ids, E_te
    pred = np.stack(preds)
    return dict(
        subjects=subjects, test_ids=test_ids, true=true, pred=pred,
        r=np.stack([embedding_correlation(p, true) for p in pred]),
        rank=np.stack([identification_rank(p, true) for p in pred]),
        alphas=np.stack(alph), n_voxels=np.array(n_vox),
    )


@fill_doc
def decode_by_roi(nsd, subjects=None, rois=("early", "ventral", "lateral", "parietal"),
                  atlas: str = "streams", **kwargs):
    """Decoding accuracy from each ROI alone (``decode_subjects`` per ROI).

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    rois : sequence of str, default=("early", "ventral", "lateral", "parietal")
        Labels of ``atlas``, decoded one at a time.
    %(atlas_streams)s
    **kwargs
        Passed to :func:`decode_subjects` (e.g. ``feature``, ``alphas``, ``device``,
        ``sessions``).

    Returns
    -------
    table : pandas.DataFrame
        Long table (``subject``, ``roi``, ``mean_r``, ``top1``, ``identification``: mean
        fraction of other test images beaten, chance 0.5, ``n_voxels``).
    """
    import pandas as pd

    rows = []
    for roi in rois:
        dec = decode_subjects(nsd, subjects, roi=(atlas, roi), **kwargs)
        n = dec["rank"].shape[1]
        for i, s in enumerate(dec["subjects"]):
            rows.append(dict(subject=s, roi=roi, mean_r=float(dec["r"][i].mean()),
                             top1=float((dec["rank"][i] == 0).mean()),
                             identification=float(1 - dec["rank"][i].mean() / max(n - 1, 1)),
                             n_voxels=int(dec["n_voxels"][i])))
    return pd.DataFrame(rows)


@fill_doc
def label_baseline(nsd, subjects=None, feature: str = "mpnet", controls=LABEL_CONTROLS,
                   alphas=LABEL_ALPHAS, cv: int = 5, device="auto", cache=True, sessions=None):
    """What the image's category labels alone predict of its caption embedding, per subject.

    The brain-blind control of RQ3's sentence-level claim: on each subject's own training
    images (the split of :func:`decode_subjects`), a ridge from a category-label feature space
    (``controls``) to the decoded embedding; its predictions for the shared test images are
    scored like the brain's (per-image r, identification rank among the test images). An
    image's labels know its objects but not what its captions say about them; a brain that
    carries only category information cannot identify the caption better than its labels.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(feature)s
        The decoded embedding (the target).
    controls : sequence of str, default=LABEL_CONTROLS
        Label feature spaces (``features.build`` names), each a baseline.
    alphas : array-like of float > 0, default=LABEL_ALPHAS
        Candidate ridge penalties (one chosen per embedding dimension).
    %(cv)s
    %(device)s
    %(cache)s
    %(sessions)s

    Returns
    -------
    table : pandas.DataFrame
        One row per subject and control: ``subject, control, mean_r, top1,
        identification`` (mean fraction of other test images beaten, chance 0.5),
        ``n_train, n_test``.
    """
    import pandas as pd

    subjects = resolve_subjects(nsd, subjects)
    if isinstance(controls, str) or not len(controls):
        raise ValueError(f"controls={controls!r}: expected a non-empty sequence of feature-space names")
    alphas = np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or not alphas.size or not np.all(np.isfinite(alphas)) or np.any(alphas <= 0):
        raise ValueError(f"alphas: expected a 1-D array of finite penalties > 0, got {alphas!r}")
    folder = resolve_cache(cache, "encoding")
    shared = nsd.shared_test_images(sessions, subjects)
    rows = []
    for s in subjects:
        d = _split(nsd, s, "fsaverage", _roi_arg(nsd, s, "streams"), shared, sessions=sessions)
        ids = np.concatenate([d.train_ids, d.test_ids])
        _features(nsd, feature, ids)
        E_tr, E_te = _features(nsd, feature, d.train_ids), _features(nsd, feature, d.test_ids)
        n = d.test_ids.size
        for control in controls:
            _features(nsd, control, ids)
            L_tr, L_te = _features(nsd, control, d.train_ids), _features(nsd, control, d.test_ids)

            def compute(L_tr=L_tr, L_te=L_te, E_tr=E_tr):
                with _quiet_edges():
                    est = RidgeCV(alphas=alphas, cv=cv, device=device).fit(L_tr, E_tr)
                return dict(pred=np.asarray(est.predict(L_te), np.float32))

            key = cache_key("encoding", "label_baseline", feature, control, d.train_ids, d.test_ids,
                            E_tr, L_tr, L_te, alphas, int(cv))
            pred = cached_arrays("encoding", key, ("pred",), compute, cache=cache, folder=folder)["pred"]
            rank = identification_rank(pred, E_te)
            r = embedding_correlation(pred, E_te)
            rows.append(dict(subject=s, control=control, mean_r=float(r.mean()), top1=float((rank == 0).mean()),
                             identification=float(1 - rank.mean() / max(n - 1, 1)),
                             n_train=int(d.train_ids.size), n_test=int(n)))
    return pd.DataFrame(rows)


def beyond_labels_table(by_roi, baseline, rois=None, alpha: float = 0.05, method: str = "holm"):
    """RQ3 beyond category labels: the brain's identification minus its labels', per ROI.

    Per subject, the brain's pairwise identification when decoding from an ROI
    (:func:`decode_by_roi`) minus the best label baseline's (:func:`label_baseline`, the
    largest over its controls, on the same test images); a paired t-test across subjects per
    ROI (:func:`brainllm_utils.stats.paired_contrast_tests`), corrected over the ROIs.

    Parameters
    ----------
    by_roi : pandas.DataFrame
        :func:`decode_by_roi` (``subject, roi, identification``).
    baseline : pandas.DataFrame
        :func:`label_baseline` (``subject, control, identification``) for the same subjects.
    rois : sequence of str, optional
        The ROIs tested (default: those of ``by_roi``).
    alpha : float, default=0.05
        Level after the correction.
    method : {"holm", "bh"}, default="holm"
        Correction over the ROIs.

    Returns
    -------
    tests : pandas.DataFrame
        ``roi, model_a`` ("brain"), ``model_b`` ("labels"), ``n, mean_a, mean_b, mean_diff,
        t, p, p_adj, significant, correction`` (as :func:`~brainllm_utils.stats.
        paired_contrast_tests`) and ``control`` (each subject's best control, the
        distinct ones joined by "/"). Choosing the best control on the test images makes
        the baseline stronger, so the test conservative.
    """
    import pandas as pd

    from ..stats import paired_contrast_tests

    for name, df, cols in (("by_roi", by_roi, {"subject", "roi", "identification"}),
                           ("baseline", baseline, {"subject", "control", "identification"})):
        missing = cols - set(getattr(df, "columns", ()))
        if missing:
            raise ValueError(f"{name}: expected columns {sorted(cols)}, missing {sorted(missing)}")
    rois = list(dict.fromkeys(by_roi["roi"])) if rois is None else list(rois)
    unknown = sorted(set(rois) - set(by_roi["roi"]))
    if unknown:
        raise ValueError(f"rois {unknown} are not in by_roi (it has {sorted(set(by_roi['roi']))})")
    best = baseline.loc[baseline.groupby("subject")["identification"].idxmax()].set_index("subject")
    missing = sorted(set(by_roi["subject"]) - set(best.index))
    if missing:
        raise ValueError(f"baseline has no rows for subjects {missing}")
    rows = [dict(subject=s, roi=r, model="brain", identification=v)
            for s, r, v in by_roi[["subject", "roi", "identification"]].itertuples(index=False)
            if r in rois]
    rows += [dict(subject=s, roi=r, model="labels", identification=float(best.loc[s, "identification"]))
             for s in sorted(set(by_roi["subject"])) for r in rois]
    scores = pd.DataFrame(rows)
    tests = paired_contrast_tests(scores, "brain", "labels", value="identification", levels=rois,
                                  method=method, alpha=alpha)
    tests["control"] = "/".join(sorted(set(best.loc[sorted(set(by_roi["subject"])), "control"])))
    return tests


@fill_doc
def caption_consistency(nsd, nsd_ids, embed_fn=None, **embed_kwargs) -> np.ndarray:
    """Per-image caption consistency: mean over captions of r(caption, mean of the others).

    The paper's "noise ceiling" for decoding r (paper_methods §5), using every caption
    (the original kept only the last one by a loop bug). Embeddings are MPNet by default.

    Parameters
    ----------
    %(nsd)s
    %(nsd_ids)s
    embed_fn : callable, optional
        ``embed_fn(sentences, **embed_kwargs) -> (n, d)``; default
        :func:`~brainllm_utils.features.embeddings.embed_sentences`.
    **embed_kwargs
        Passed to ``embed_fn``.

    Returns
    -------
    consistency : ndarray of shape (n_images,)
        Mean Pearson r per image (NaN for an image with fewer than 2 captions).
    """
    if embed_fn is None:
        from ..features.embeddings import embed_sentences as embed_fn
    caps = nsd.captions(nsd_ids)
    flat = [c for cs in caps for c in cs]
    E = np.asarray(embed_fn(flat, **embed_kwargs), dtype=np.float64)
    out, start = [], 0
    for cs in caps:
        e = E[start:start + len(cs)]
        start += len(cs)
        if len(cs) < 2:
            out.append(np.nan)
            continue
        rs = [pearson_r(e[j], np.delete(e, j, 0).mean(0)) for j in range(len(cs))]
        out.append(float(np.mean(rs)))
    return np.array(out)


@fill_doc
def default_caption_bank(nsd, subjects=None, test_ids=None, pool_per_image: int | None = 1,
                         include_training: bool = True, sessions=None) -> tuple[list[str], dict]:
    """Captions to reconstruct from, disjoint from the test images.

    The bank holds (1) every caption of the subjects' 3×-seen training images, and (2) up
    to ``pool_per_image`` captions (first by annotation id; ``None`` = all) of each COCO
    image in ``captions_train2017.json`` that is not an NSD image (the pool). Captions
    whose text equals a caption of a test image are removed, so a reconstruction can
    never copy a reference verbatim. Duplicates are kept once (first occurrence).

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
        Whose training images contribute their captions.
    %(test_ids)s
    pool_per_image : int, optional, default=1
        Captions kept per pool image (``None``: all; 0: no pool).
    include_training : bool, default=True
        Include the captions of the subjects' training images.
    %(sessions)s
        The training images are those shown in these sessions.

    Returns
    -------
    captions : list of str
        The bank.
    info : dict of str to int
        Counts of ``training``, ``pool``, ``removed_as_test`` and ``total`` captions.
    """
    subjects = resolve_subjects(nsd, subjects)
    test_ids = nsd.shared_test_images(sessions, subjects) if test_ids is None else np.asarray(test_ids)
    test_caps = {c for cs in nsd.captions(test_ids) for c in cs}
    bank: list[str] = []
    n_train = 0
    if include_training:
        train = set()
        for s in subjects:
            table = nsd.trial_table(s)
            used = table["session"].isin(nsd.select_sessions(s, sessions)).to_numpy()
            ids = np.unique(table["nsdId"].to_numpy()[used])
            train.update(ids.tolist())
        train_ids = np.setdiff1d(np.fromiter(train, dtype=np.int64), test_ids)
        flat = [c for cs in nsd.captions(train_ids) for c in cs]
        bank += flat
        n_train = len(flat)
    n_pool = 0
    if pool_per_image is None or pool_per_image > 0:
        nsd_coco = set(nsd.stim_info["cocoId"].astype(int).tolist())
        by_img: dict[int, list[tuple[int, str]]] = {}
        for ann in nsd._coco_json("captions", "train2017")["annotations"]:
            img = int(ann["image_id"])
            if img not in nsd_coco:
                by_img.setdefault(img, []).append((int(ann["id"]), ann["caption"].strip()))
        for img in sorted(by_img):
            caps = [c for _, c in sorted(by_img[img])]
            caps = caps if pool_per_image is None else caps[:pool_per_image]
            bank += caps
            n_pool += len(caps)
    seen, out, removed = set(), [], 0
    for c in bank:
        if c in test_caps:
            removed += 1
            continue
        if c not in seen:
            seen.add(c)
            out.append(c)
    return out, dict(training=n_train, pool=n_pool, removed_as_test=removed, total=len(out))


def reconstruct_captions(decoded: dict, retriever, oracle: bool = True) -> dict:
    """Nearest bank caption for every decoded embedding (and for the true embeddings).

    Parameters
    ----------
    decoded : dict
        From :func:`decode_subjects` (``subjects``, ``pred``, ``true``).
    retriever : CaptionRetriever
        A bank of captions with their embeddings
        (:class:`~brainllm_utils.encoding.decoding.CaptionRetriever`).
    oracle : bool, default=True
        Also retrieve for the true embeddings.

    Returns
    -------
    captions : dict of str to list of str
        ``{subject: [caption per test image]}``, plus ``"oracle"`` (the bank's nearest
        caption to the *true* embedding: the best any decoder could do with this bank)
        when ``oracle``.
    """
    out = {s: retriever.query(p, k=1).best() for s, p in zip(decoded["subjects"], decoded["pred"])}
    if oracle:
        out["oracle"] = retriever.query(decoded["true"], k=1).best()
    return out


#: How the reconstructions are scored in :func:`caption_metric_table`.
_REFERENCE_SETS = ("leave_one_out", "all")


@fill_doc
def caption_metric_table(reconstructions: Mapping[str, Sequence[str]], references,
                         shuffle_seed: int | None = 0, reference_sets: str = "leave_one_out"):
    """BLEU-4, ROUGE-L and CIDEr-D of each set of reconstructions, with ceiling and chance.

    Parameters
    ----------
    reconstructions : dict of str to sequence of str
        Name → captions (one per test image).
    %(references)s
    shuffle_seed : int, optional, default=0
        Adds a ``"shuffled"`` row: the first subject's reconstructions paired with the
        wrong images (a seeded derangement): the chance level of the metrics.
    reference_sets : {"leave_one_out", "all"}, default="leave_one_out"
        ``"leave_one_out"``: every row (reconstructions, oracle, shuffled) is scored against
        the same references as the human ceiling, each image's captions but one, averaged
        over the left-out caption (:func:`~brainllm_utils.encoding.score_leave_one_out`),
        so all rows compare like with like. ``"all"``: the paper's scoring, against every
        caption: one reference more than the humans get (BLEU and ROUGE-L rise with the
        number of references), so the ceiling is not comparable.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``source`` (the names, ``shuffled``, ``human``) with columns
        ``bleu4``, ``rouge_l``, ``cider_d``, ``kind`` (decoded / oracle / chance /
        ceiling) and ``references`` (``"all but one"`` or ``"all"``: what each row was
        scored against).
    """
    import pandas as pd

    if reference_sets not in _REFERENCE_SETS:
        raise ValueError(f"reference_sets must be one of {_REFERENCE_SETS}, got {reference_sets!r}")
    loo = reference_sets == "leave_one_out"
    score = score_leave_one_out if loo else score_captions
    label = "all but one" if loo else "all"
    rows = []
    for name, caps in reconstructions.items():
        sc = score(list(caps), references)
        rows.append(dict(source=name, kind="oracle" if name == "oracle" else "decoded",
                         bleu4=sc["bleu4"], rouge_l=sc["rouge_l"], cider_d=sc["cider_d"], references=label))
    if shuffle_seed is not None:
        first = next(k for k in reconstructions if k != "oracle")
        caps = list(reconstructions[first])
        n = len(caps)
        perm = (np.arange(n) + 1 + np.random.default_rng(shuffle_seed).integers(0, max(n - 1, 1))) % n
        if n > 1 and np.any(perm == np.arange(n)):  # pragma: no cover - impossible for a shift
            perm = np.roll(np.arange(n), 1)
        sc = score([caps[j] for j in perm], references)
        rows.append(dict(source="shuffled", kind="chance", bleu4=sc["bleu4"],
                         rouge_l=sc["rouge_l"], cider_d=sc["cider_d"], references=label))
    hc = human_ceiling(references)
    rows.append(dict(source="human", kind="ceiling", bleu4=hc["bleu4"], rouge_l=hc["rouge_l"],
                     cider_d=hc["cider_d"], references="all but one"))
    return pd.DataFrame(rows).set_index("source")


def gallery_selection(scores, n: int = 8) -> np.ndarray:
    """Indices of ``n`` items at evenly spaced quantiles of ``scores`` (best first).

    Shows the spread of quality instead of the best cases only.

    Parameters
    ----------
    scores : array-like of shape (n_items,)
        A quality score per item (higher is better).
    n : int, default=8
        Items to pick (at most ``n_items``; fewer when quantiles coincide).

    Returns
    -------
    index : ndarray of int of shape (n,)
        Item indices, best first.

    Examples
    --------
    >>> gallery_selection([0.1, 0.9, 0.5, 0.3, 0.7], n=3)
    array([1, 2, 0])
    """
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    n = int(min(n, s.size))
    pos = np.unique(np.round(np.linspace(0, s.size - 1, n)).astype(int))
    return order[pos]


