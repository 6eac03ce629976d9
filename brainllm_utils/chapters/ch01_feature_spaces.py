"""Chapter 01 (feature spaces): model-by-model RDM correlations, role-reversal probes and what
each text space sees of an image."""

from __future__ import annotations

import numpy as np

from ..features import POS_GROUPS, scramble_caption, tag_captions
from .._utils.docs import fill_doc
from .._utils.numeric import pearson_r
from ..rsa import compare_rowwise, compute_rdm
from ._common import _rsa_rows, rows_of

__all__ = ["model_rdm_correlations", "role_reversal_pairs", "role_reversal_similarity", "caption_variants"]


@fill_doc
def model_rdm_correlations(features_dict, sets, method: str = "pearson", device: str = "cpu"):
    """Model-by-model RDM correlations, averaged over sample sets.

    Parameters
    ----------
    features_dict : dict of str to array-like of shape (n_images, n_features)
        Feature matrices over the same images (rows).
    sets : array-like of int of shape (n_sets, set_size) or None
        Row positions (e.g. from :func:`subject_sets`); ``None`` = all rows in one set.
    %(method)s
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device, default="cpu"
        Where the RDMs are computed (:func:`~brainllm_utils.rsa.compute_rdm`).

    Returns
    -------
    table : pandas.DataFrame
        Square, models × models, mean over sets of the comparison of the two models'
        correlation-distance RDMs (diagonal 1). ``.attrs["sd"]`` holds the SD over sets,
        ``.attrs["n_empty"]`` the number of the sets' images with an empty row per model
        (kept at distance 1 from the others, :func:`~brainllm_utils.rsa.separate_empty_rows`).

    Raises
    ------
    ValueError
        When a comparison is NaN in any set (never averaged away).
    """
    import pandas as pd

    names = list(features_dict)
    n = len(next(iter(features_dict.values())))
    sets = np.arange(n)[None] if sets is None else np.asarray(sets)
    # empty rows (an image without COCO instances: an all-zero multi-hot row) at a defined
    # distance, counted in attrs["n_empty"] (rsa.separate_empty_rows)
    ready = {k: _rsa_rows(np.asarray(v, dtype=np.float64)[np.unique(sets)]) for k, v in features_dict.items()}
    local = np.searchsorted(np.unique(sets), sets)
    rdms = {k: compute_rdm(X[local], device=device) for k, (X, _) in ready.items()}  # (n_sets, n_pairs)
    mean = np.eye(len(names))
    sd = np.zeros((len(names), len(names)))
    for i, a in enumerate(names):
        for j in range(i + 1, len(names)):
            r = compare_rowwise(rdms[a], rdms[names[j]], method)
            if not np.isfinite(r).all():
                raise ValueError(f"RDM correlation of {a!r} and {names[j]!r} is NaN in "
                                 f"{int((~np.isfinite(r)).sum())} of {r.size} sets (a constant RDM)")
            mean[i, j] = mean[j, i] = r.mean()
            sd[i, j] = sd[j, i] = r.std(ddof=1) if r.size > 1 else np.nan
    out = pd.DataFrame(mean, index=names, columns=names)
    out.attrs["sd"] = pd.DataFrame(sd, index=names, columns=names)
    out.attrs["n_sets"] = int(sets.shape[0])
    out.attrs["n_empty"] = {k: n for k, (_, n) in ready.items()}
    return out


# --------------------------------------------------------------------------- role reversal
@fill_doc
def role_reversal_pairs(card, n_pairs: int | None = None, seed: int = 0) -> np.ndarray:
    """``(n_pairs, 2)`` nsdIds of image pairs that differ only in who does what to whom.

    From the sandbox truth card (``role_reversed_pairs``); ``n_pairs`` draws a seeded
    subset.

    Parameters
    ----------
    card : dict
        The sandbox truth card (:func:`~brainllm_utils.synth.load_truth`).
    n_pairs : int, optional
        Keep a seeded random subset of this many pairs (in card order); ``None``: all.
    %(seed)s

    Returns
    -------
    pairs : ndarray of int64 of shape (n_pairs, 2)
        nsdIds of the two images of each pair.
    """
    pairs = np.asarray(card["role_reversed_pairs"], dtype=np.int64).reshape(-1, 2)
    if n_pairs is not None and n_pairs < len(pairs):
        keep = np.sort(np.random.default_rng(seed).choice(len(pairs), n_pairs, replace=False))
        pairs = pairs[keep]
    return pairs


@fill_doc
def role_reversal_similarity(features_dict, ids, pairs, n_random: int = 200, seed: int = 0):
    """Similarity of role-reversed pairs vs random pairs under each feature space.

    Similarity is ``1 − correlation distance`` (Pearson r of the two feature vectors), the
    quantity the RDMs are built from.

    Parameters
    ----------
    features_dict : dict of str to array-like of shape (n_images, n_features)
        Feature matrices whose rows are the images of ``ids``.
    ids : array-like of int of shape (n_images,)
        Sorted nsdIds of the rows of each feature matrix (all pair images included).
    pairs : array-like of int of shape (n_pairs, 2)
        Role-reversed nsdId pairs.
    n_random : int, default=200
        Random pairs of distinct images among ``ids`` (seeded), the baseline.
    %(seed)s

    Returns
    -------
    table : pandas.DataFrame
        ``model, kind ("role-reversed" | "random"), id_a, id_b, similarity``.
    """
    import pandas as pd

    ids = np.asarray(ids)
    pairs = np.asarray(pairs).reshape(-1, 2)
    a, b = rows_of(ids, pairs[:, 0]), rows_of(ids, pairs[:, 1])
    rng = np.random.default_rng(seed)
    ra = rng.integers(0, ids.size, n_random)
    rb = (ra + rng.integers(1, ids.size, n_random)) % ids.size  # distinct from ra
    frames = []
    for name, X in features_dict.items():
        X = np.asarray(X, dtype=np.float64)
        for kind, (i, j) in (("role-reversed", (a, b)), ("random", (ra, rb))):
            frames.append(pd.DataFrame(dict(model=name, kind=kind, id_a=ids[i], id_b=ids[j],
                                            similarity=pearson_r(X[i], X[j], axis=1))))
    return pd.concat(frames, ignore_index=True)


@fill_doc
def caption_variants(nsd, nsd_id: int, seed: int = 0):
    """What each text feature space sees of one image, caption by caption.

    Parameters
    ----------
    %(nsd)s
    nsd_id : int
        The image's 0-based nsdId.
    seed : int, default=0
        Seed of the scrambling, as the ``mpnet_scrambled`` feature space's.

    Returns
    -------
    table : pandas.DataFrame
        One row per caption (index ``caption``, from 1): the caption, its nouns and verbs
        (the words ``mpnet_nouns`` / ``mpnet_verbs`` embed), the scrambled caption that
        ``mpnet_scrambled`` embeds (same seeding as :mod:`brainllm_utils.features`), and
        the category text of ``mpnet_category_all``.
    """
    import pandas as pd

    caps = nsd.captions([nsd_id])[0]
    multi, names = nsd.categories([nsd_id])
    cat_text = " ".join(names[j] for j in np.flatnonzero(multi[0])) or "something"
    rows = []
    for k, (cap, toks) in enumerate(zip(caps, tag_captions(caps))):
        rng = np.random.default_rng([int(seed), int(nsd_id), k])
        rows.append({
            "caption (mpnet)": cap,
            "nouns": " ".join(w.lower() for w, t in toks if t in POS_GROUPS["nouns"]),
            "verbs": " ".join(w.lower() for w, t in toks if t in POS_GROUPS["verbs"]),
            "scrambled": scramble_caption([w for w, _ in toks], rng),
            "category text": cat_text,
        })
    return pd.DataFrame(rows, index=pd.Index(np.arange(1, len(rows) + 1), name="caption"))

