"""Chapter 02 (RSA): sampled ROI RSA over subjects, noise ceilings, paired model comparisons,
winner tables and searchlight maps.

The numerics live in :mod:`brainllm_utils.rsa`, :mod:`brainllm_utils.searchlight` and
:mod:`brainllm_utils.stats`; this module wires them to the NSD reader and the feature
registry, loops over subjects, ROIs and models, and caches what is slow. Everything is
seeded; sample sets are saved once per dataset, subject, set size and seed
(:func:`subject_sets`) and reused by every model, ROI and searchlight.

Conventions (``shared/docs/paper_methods.md`` §3):

- a subject's RSA pool is its images seen 3 times, in ascending nsdId order;
- sampled RSA: disjoint sets of ``set_size`` images, Pearson r between the 100 × 100
  correlation-distance RDMs of brain and model, averaged over sets;
- noise ceiling: on the images every subject saw 3 times, each subject's ROI RDM against
  the **mean RDM of the other subjects** (leave-one-subject-out, the paper's definition;
  ``pool="mean"`` in :func:`brainllm_utils.rsa.noise_ceiling`), and each subject's scores
  are divided by its own LOSO value.

Only the images in the sample sets that are used get embedded (``n_sets`` limits the sets
per subject), which keeps the first-time embedding cost of the book small on a CPU.
"""

from __future__ import annotations

import numpy as np

from .._utils.cache import array_digest, cache_key, file_identity, load_npy, resolve_cache, save_npy
from .._utils.docs import fill_doc
from ..rsa import (
    compute_rdm,
    noise_ceiling,
    sampled_rsa,
    to_rdms,
    searchlight_rsa,
    surface_neighbourhoods,
    to_volume,
    volume_neighbourhoods,
)
from ..nsd import load_fsaverage_transforms, project_to_fsaverage
from ..nsd.layout import STREAMS_LABELS
from ..stats import CORRECTIONS, adjust_pvalues, paired_ttest, ttest_1samp_fdr
from .reference import PAPER_ROI_RSA_ROIS, paper_comparison
from ._common import (_column_blocks, _read_rows, _rsa_rows, build_feature_table, rows_of, rsa_design,
                      subject_sets)
from ._common import _progress_bar

__all__ = ["STREAMS_ROIS", "PAPER_ROIS", "roi_patterns", "loso_ceilings", "subject_rdms", "subject_rsa_table",
           "paired_differences", "winner_table", "fsaverage_mesh", "surface_searchlight",
           "surface_searchlights", "volume_searchlight", "volume_searchlights", "group_searchlight_test", "paper_rsa_comparison",
           "paper_searchlight_maps", "searchlight_difference_test", "significant_by_roi"]

#: The seven stream ROIs (NSD ``streams`` atlas), in the atlas's order.
STREAMS_ROIS = list(STREAMS_LABELS)
#: The ROIs shown in the paper's figures.
PAPER_ROIS = ["early", "ventral", "lateral", "parietal"]


# --------------------------------------------------------------------------- brain data
@fill_doc
def roi_patterns(nsd, subject, rois=None, atlas: str = "streams", space: str = "fsaverage",
                 ids=None, sessions=None):
    """A subject's patterns in each ROI from one read of the surface betas.

    Vertices that are NaN for any image are dropped per ROI.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    %(rois)s
    %(atlas_streams)s
    %(space)s
    ids : array-like of int, optional
        Keep only these nsdIds (rows in this order); ``None``: all the subject's 3×-seen
        images.
    %(sessions)s

    Returns
    -------
    patterns : dict of str to ndarray of float32 of shape (n_images, n_vertices_roi)
        Each ROI's patterns (finite columns only).
    nsd_ids : ndarray of int64 of shape (n_images,)
        The nsdIds of the rows.
    """
    Y, all_ids = nsd.betas(subject, space=space, progress=False, sessions=sessions)
    rows = slice(None) if ids is None else rows_of(all_ids, ids)
    order = None
    if not isinstance(rows, slice) and np.any(np.diff(rows) < 0):
        order = np.argsort(rows, kind="stable")  # read sorted rows from the memory map, then reorder
        rows = rows[order]
    labels = nsd.roi_volume(subject, atlas, space).ravel()
    cols_all = nsd.columns(subject, space)
    names = nsd.roi_labels(atlas, None if space == "fsaverage" else subject)
    code = {v: k for k, v in names.items()}
    rois = [n for k, n in sorted(names.items()) if k > 0] if rois is None else list(rois)
    out = {}
    for roi in rois:
        if roi not in code:
            raise ValueError(f"ROI {roi!r} not in atlas {atlas!r}: {sorted(code)}")
        cols = np.flatnonzero(labels[cols_all] == code[roi])
        # only this ROI's columns of the rows are read (never every column of the rows)
        X = _read_rows(Y, rows, cols)
        if order is not None:
            X[order] = X.copy()
        finite = np.isfinite(X).all(0)
        out[roi] = X if finite.all() else X[:, finite]
    return out, (all_ids if ids is None else np.asarray(ids, dtype=np.int64))


@fill_doc
def loso_ceilings(nsd, subjects=None, rois=None, atlas: str = "streams", pool: str = "mean",
                  test_ids=None, sessions=None):
    """Leave-one-subject-out noise ceilings per ROI on the shared test images.

    Each subject's correlation-distance RDM over the test images (all of them, no
    sampling, as the paper) is correlated (Pearson) with the pooled RDM of the other
    subjects. ``pool="mean"`` is the paper's plain mean RDM; ``"method"`` rsatoolbox's
    z-scored pooling. The "upper" bound correlates with the pool of *all* subjects.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(rois)s
    %(atlas_streams)s
    pool : {"mean", "method"}, default="mean"
        How the other subjects' RDMs are pooled (:func:`~brainllm_utils.rsa.noise_ceiling`).
    %(test_ids)s
    %(sessions)s

    Returns
    -------
    table : pandas.DataFrame
        ``subject, roi, ceiling`` (the subject's LOSO value), ``ceiling_upper``,
        ``ceiling_group`` (mean LOSO over subjects), ``n_test_images``.

    Raises
    ------
    ValueError
        With fewer than 2 subjects (a chapter shows
        :func:`~brainllm_utils.chapters.needs_subjects`'s note instead).
    """
    import pandas as pd

    subjects = list(nsd.subjects if subjects is None else subjects)
    if len(subjects) < 2:
        raise ValueError(f"leave-one-subject-out ceilings need ≥ 2 subjects (got {subjects})")
    test_ids = nsd.shared_test_images(sessions, subjects) if test_ids is None else np.asarray(test_ids)
    # one subject's test patterns at a time: its RDMs are kept, its patterns dropped
    per_sub = {}
    for s in subjects:
        patterns = roi_patterns(nsd, s, rois, atlas, ids=test_ids, sessions=sessions)[0]
        per_sub[s] = {roi: compute_rdm(X, device="cpu") for roi, X in patterns.items()}
        del patterns
    rois = list(next(iter(per_sub.values())))
    rows = []
    for roi in rois:
        rdms = np.stack([per_sub[s][roi] for s in subjects])
        nc = noise_ceiling(rdms, method="pearson", pool=pool)
        for k, s in enumerate(subjects):
            rows.append(dict(subject=s, roi=roi, ceiling=float(nc.per_subject_lower[k]),
                             ceiling_upper=float(nc.per_subject_upper[k]),
                             ceiling_group=nc.lower, n_test_images=int(test_ids.size)))
    return pd.DataFrame(rows)


@fill_doc
def subject_rdms(nsd, subjects=None, rois=None, feature_spaces=("mpnet",), atlas: str = "streams",
                 test_ids=None, features=None, sessions=None, **feature_options):
    """Each subject's ROI and model RDMs as one :class:`rsatoolbox.rdm.RDMs` per subject.

    The RDMs are over the test images (:func:`loso_ceilings`' images: every subject's RDMs
    are over the same nsdIds, in the same ascending order, so they can be compared across
    subjects): ROI RDMs as :func:`loso_ceilings` computes them (correlation distance of the
    ROI's finite vertices), model RDMs with the chapter's rule for empty feature rows
    (:func:`~brainllm_utils.rsa.separate_empty_rows`). An RDM over ``n`` images holds
    ``n (n − 1) / 2`` float64 values (1 MB for NSD's 515 test images; 400 MB for 10,000).

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(rois)s
    feature_spaces : list of str, default=("mpnet",)
        Registry names or ``"truth:<space>"`` (:func:`build_feature_table`); ``()`` for
        brain RDMs only.
    %(atlas_streams)s
    %(test_ids)s
        Sorted, distinct.
    features : dict, optional
        ``{name: (ids, X)}`` precomputed features over sorted ``ids`` covering
        ``test_ids`` (otherwise built here for exactly those images).
    %(sessions)s
    %(feature_options)s

    Returns
    -------
    rdms : dict of str to rsatoolbox.rdm.RDMs
        Subject → its RDMs: one per ROI, then one per feature space; RDM descriptors
        ``subject``, ``kind`` (``"roi"`` / ``"model"``) and ``name`` (the ROI or feature
        space); pattern descriptor ``nsdId`` (0-based); ``dissimilarity_measure``
        ``"correlation"``. Select with e.g. ``rdms["subj01"].subset("name", "ventral")``;
        save with ``RDMs.save(path, file_type="hdf5")``.
    """
    subjects = list(nsd.subjects if subjects is None else subjects)
    if not subjects:
        raise ValueError("subjects: expected at least one subject")
    test_ids = (nsd.shared_test_images(sessions, subjects) if test_ids is None
                else np.asarray(test_ids, dtype=np.int64))
    if test_ids.ndim != 1 or test_ids.size < 3 or np.any(np.diff(test_ids) <= 0):
        raise ValueError(f"test_ids: expected at least 3 nsdIds, sorted and distinct, got shape "
                         f"{test_ids.shape}: {test_ids[:8].tolist()}")
    names = list(feature_spaces)
    if features is None:
        feats = build_feature_table(nsd, names, test_ids, **feature_options) if names else {}
    else:
        feats = {n: np.asarray(features[n][1])[rows_of(features[n][0], test_ids)] for n in names}
    model_rdms = [compute_rdm(_rsa_rows(feats[n])[0], device="cpu") for n in names]
    out = {}
    for s in subjects:
        patterns = roi_patterns(nsd, s, rois, atlas, ids=test_ids, sessions=sessions)[0]
        brain = [compute_rdm(X, device="cpu") for X in patterns.values()]
        out[s] = to_rdms(np.stack(brain + model_rdms), test_ids, names=list(patterns) + names,
                         rdm_descriptors={"subject": s, "kind": ["roi"] * len(brain) + ["model"] * len(names)},
                         descriptors={"atlas": atlas}, dissimilarity_measure="correlation")
    return out


# --------------------------------------------------------------------------- ROI RSA
@fill_doc
def subject_rsa_table(nsd, subjects=None, feature_spaces=("mpnet",), rois=None,
                      set_size: int = 100, seed: int = 0, n_sets: int | None = None,
                      device: str = "auto", atlas: str = "streams", features=None,
                      ceilings=None, results_dir=None, sessions=None, progress: bool = True,
                      **feature_options):
    """Sampled ROI RSA of every subject × ROI × feature space, as a tidy table.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    feature_spaces : list of str, default=("mpnet",)
        Registry names or ``"truth:<space>"`` (:func:`build_feature_table`).
    %(rois)s
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(device)s
    %(atlas_streams)s
    features : dict, optional
        ``{name: (ids, X)}`` precomputed features over sorted ``ids`` covering the sets'
        images (otherwise built here for exactly those images).
    ceilings : pandas.DataFrame, optional
        From :func:`loso_ceilings` (computed with ``pool="mean"`` when missing and there
        are ≥ 2 subjects; with one subject ``ceiling`` and ``r_normalised`` are NaN); adds
        ``ceiling`` and ``r_normalised = r / ceiling`` per subject and ROI.
    %(results_dir)s
        Sample sets are saved under ``<results_dir>/rsa/<dataset key>/sampling/``.
    %(sessions)s
    %(feature_options)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the subjects.

    Returns
    -------
    table : pandas.DataFrame
        ``subject, roi, model, r, r_sd_sets, n_sets, set_size, ceiling, r_normalised,
        n_empty``: ``n_empty`` counts the subject's images in the sets whose feature row is
        empty (e.g. no COCO instance, an all-zero multi-hot row); they are kept, at
        correlation distance 1 from every other image and 0 from each other
        (:func:`~brainllm_utils.rsa.separate_empty_rows`).

    Raises
    ------
    ValueError
        When a subject's score would be NaN (:func:`~brainllm_utils.rsa.sampled_rsa`).
    """
    import pandas as pd

    design, needed = rsa_design(nsd, subjects, set_size, seed, n_sets, results_dir, sessions)
    names = list(feature_spaces)
    if features is None:
        feats = build_feature_table(nsd, names, needed, **feature_options)
        features = {n: (needed, X) for n, X in feats.items()}
    if ceilings is None and len(design) >= 2:
        ceilings = loso_ceilings(nsd, list(design), rois, atlas, sessions=sessions)
    ceil = ({} if ceilings is None else ceilings.set_index(["subject", "roi"])["ceiling"])
    rows = []
    for subject, (ids, sets) in _progress_bar(design.items(), "ROI RSA", progress, total=len(design),
                                              unit="subject"):
        used = np.unique(sets.ravel())
        local_sets = np.searchsorted(used, sets)
        # images without content (no COCO instance: an all-zero multi-hot row) get a defined
        # distance (rsa.separate_empty_rows) and are counted in ``n_empty``
        models, n_empty = zip(*(_rsa_rows(features[n][1][rows_of(features[n][0], ids[used])])
                                for n in names))
        labels = nsd.roi_labels(atlas)
        for roi in ([n for k, n in sorted(labels.items()) if k > 0] if rois is None else list(rois)):
            # one ROI's patterns at a time (all of a subject's ROIs over all its images are GBs)
            X = roi_patterns(nsd, subject, [roi], atlas, ids=ids[used], sessions=sessions)[0][roi]
            res = sampled_rsa(X, models, local_sets, device=device)
            for m, name in enumerate(names):
                per = res.per_set[m]
                c = float(ceil.get((subject, roi), np.nan))
                rows.append(dict(subject=subject, roi=roi, model=name, r=float(res.mean[m]),
                                 r_sd_sets=float(per.std(ddof=1)) if per.size > 1 else np.nan,
                                 n_sets=int(per.size), set_size=int(sets.shape[1]),
                                 ceiling=c, r_normalised=float(res.mean[m]) / c if c > 0 else np.nan,
                                 n_empty=n_empty[m]))
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- comparisons
def paired_differences(df, reference: str = "mpnet", value: str = "r", controls=None):
    """Per-subject paired differences ``reference − control`` per ROI (long table).

    Parameters
    ----------
    df : pandas.DataFrame
        Long table with columns ``subject``, ``roi``, ``model`` and ``value`` (e.g. from
        :func:`subject_rsa_table`).
    reference : str, default="mpnet"
        The model whose score the others are subtracted from.
    value : str, default="r"
        The score column (e.g. ``"r_normalised"``).
    controls : list of str, optional
        Models compared with ``reference`` (default: every other model).

    Returns
    -------
    table : pandas.DataFrame
        ``subject, roi, control, diff``.
    """
    import pandas as pd

    wide = df.pivot_table(index=["subject", "roi"], columns="model", values=value)
    controls = [m for m in wide.columns if m != reference] if controls is None else controls
    frames = [pd.DataFrame({"control": c, "diff": wide[reference] - wide[c]}).reset_index()
              for c in controls]
    return pd.concat(frames, ignore_index=True)[["subject", "roi", "control", "diff"]]


def winner_table(df, card=None, value: str = "r", rois=None, models=None, *, correction: str = "bh",
                 alpha: float = 0.05):
    """Which model wins in which ROI: all pairs tested, a winner only if it beats every other.

    In each ROI every pair of models is compared by a paired t-test across subjects
    (:func:`scipy.stats.ttest_rel` on the subjects that have both scores), and the p-values
    of all the pairs within the ROI are corrected together (``correction``: Benjamini–Hochberg
    by default, as the paper's FDR over pairs within an ROI, or Holm). The model with the
    highest mean is the ``winner`` only when its difference from **every** other model is
    significant after the correction; otherwise the ROI is a tie, written
    ``"tied: A, B, …"`` with the best model first and every model not separable from it.
    With fewer than 2 subjects nothing is tested: ``"untested: A"`` names the best mean.

    Parameters
    ----------
    df : pandas.DataFrame
        From :func:`subject_rsa_table`.
    card : dict, optional
        The sandbox truth card: adds the planted ``driven_by`` mixture of each ROI.
    value : str, default="r"
        The score column compared (e.g. ``"r_normalised"``).
    rois : list of str, optional
        ROIs, in this order (default: those of ``df``, in order of appearance).
    models : list of str, optional
        Candidates (default: all models in ``df``; pass the non-oracle ones to leave
        ``truth:*`` out of the competition).
    correction : {"bh", "holm"}, default="bh"
        Multiple-comparison correction over all the pairs of models within an ROI
        (:data:`brainllm_utils.stats.CORRECTIONS`).
    alpha : float, default=0.05
        Level of the corrected p-values.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ROI: ``winner`` (the model, ``"tied: …"`` or ``"untested: …"``),
        ``best`` and ``mean`` (the highest mean), ``tied_with`` (the models not separable
        from the best, comma-separated; empty for a clear winner), ``runner_up,
        runner_up_mean, diff``, ``p_paired`` (paired t-test best − runner-up, uncorrected;
        NaN with fewer than 2 subjects), ``p_adjusted`` (the same pair, corrected),
        ``max_p_vs_best`` (the largest corrected p of the best against another model: the
        winner's test), ``n_pairs``, ``n_subjects``, ``correction`` (in words),
        ``mpnet_rank`` (1 = best) when mpnet is among the models, and ``planted`` from the
        card.
    """
    import itertools

    import pandas as pd

    if correction not in CORRECTIONS:
        raise ValueError(f"correction={correction!r}: expected one of {sorted(CORRECTIONS)}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: expected a level in (0, 1)")
    d = df if models is None else df[df["model"].isin(models)]
    rois = list(dict.fromkeys(d["roi"])) if rois is None else list(rois)
    rows = []
    for roi in rois:
        wide = d[d["roi"] == roi].pivot_table(index="subject", columns="model", values=value, dropna=False)
        means = wide.mean().dropna().sort_values(ascending=False, kind="stable")  # a model without scores
        if not len(means):                                                         # is not a candidate
            raise ValueError(f"winner_table: no finite {value!r} score in ROI {roi!r}")
        wide = wide[means.index]
        names = list(means.index)
        w, ru = names[0], names[1] if len(names) > 1 else None
        pairs = list(itertools.combinations(names, 2))
        p_raw = {}
        for a, b in pairs:
            x = wide[[a, b]].dropna()
            p_raw[(a, b)] = float(paired_ttest(x[a].to_numpy(), x[b].to_numpy())[1]) if len(x) > 1 else np.nan
        tested = len(wide) > 1 and (not pairs or bool(np.isfinite(list(p_raw.values())).any()))
        adj = dict(zip(pairs, adjust_pvalues(np.array([p_raw[k] for k in pairs]), correction))) if pairs else {}
        vs_best = {b: adj[(w, b)] for b in names[1:]}  # pairs are (higher mean, lower mean)
        tied = [b for b, pa in vs_best.items() if not (np.isfinite(pa) and pa <= alpha)]
        if not tested:
            winner, tied = f"untested: {w}", []
        elif tied:
            winner = "tied: " + ", ".join([w] + tied)
        else:
            winner = w
        n_subj = int(len(wide))
        row = dict(roi=roi, winner=winner, best=w, mean=float(means.iloc[0]), tied_with=", ".join(tied),
                   runner_up=ru, runner_up_mean=float(means.iloc[1]) if ru is not None else np.nan,
                   diff=float(means.iloc[0] - means.iloc[1]) if ru is not None else np.nan,
                   p_paired=p_raw.get((w, ru), np.nan), p_adjusted=adj.get((w, ru), np.nan),
                   max_p_vs_best=float(np.nanmax(list(vs_best.values()))) if tested and vs_best else np.nan,
                   n_pairs=len(pairs), n_subjects=n_subj,
                   correction=(f"paired t over {n_subj} subjects, {CORRECTIONS[correction]} over the "
                               f"{len(pairs)} pairs of {len(names)} models, α = {alpha:g}") if tested
                   else f"none: {n_subj} subject(s), ranked by the mean, untested")
        if "mpnet" in means.index:
            row["mpnet_rank"] = int(names.index("mpnet") + 1)
        if card is not None:
            mix = card["roi_spaces"].get(roi, {})
            row["planted"] = ", ".join(f"{k} {v:.0%}" for k, v in
                                       sorted(mix.items(), key=lambda kv: -kv[1]))
        rows.append(row)
    return pd.DataFrame(rows).set_index("roi")


# --------------------------------------------------------------------------- searchlight
@fill_doc
def fsaverage_mesh(nsd, hemi: str, surface: str = "pial"):
    """(coords, faces) of the fsaverage mesh matching the data's vertex count.

    fsaverage5 (10,242 vertices per hemisphere: the sandbox) comes with nilearn; for full
    fsaverage (163,842, real NSD) ``nsddata/freesurfer/fsaverage/surf/{lh,rh}.<surface>``
    is read from the NSD root.

    Parameters
    ----------
    %(nsd)s
    hemi : {"left", "right"}
        The hemisphere.
    surface : str, default="pial"
        The FreeSurfer surface (``"pial"``, ``"white"``, ``"inflated"``, ...).

    Returns
    -------
    coords : ndarray of shape (n_vertices, 3)
        Vertex coordinates in mm.
    faces : ndarray of int of shape (n_faces, 3)
        Triangles, as vertex indices.
    """
    n = nsd.n_vertices()[0 if hemi == "left" else 1]
    if n == 10242:
        from nilearn import datasets

        mesh = datasets.load_fsaverage("fsaverage5")[surface].parts[hemi]
        return np.asarray(mesh.coordinates), np.asarray(mesh.faces)
    import nibabel as nib

    h = "lh" if hemi == "left" else "rh"
    coords, faces = nib.freesurfer.read_geometry(
        nsd.path(f"nsddata/freesurfer/fsaverage/surf/{h}.{surface}", "fsaverage surface"))
    if coords.shape[0] != n:
        raise ValueError(f"{h}.{surface} has {coords.shape[0]} vertices, data {n}")
    return coords, faces


def _mesh_identity(nsd, surface: str = "pial"):
    """What defines the surface meshes of :func:`fsaverage_mesh` (for cache keys)."""
    if nsd.n_vertices()[0] == 10242:
        from importlib.metadata import version

        return ["nilearn fsaverage5", surface, version("nilearn")]
    return [file_identity(nsd.path(f"nsddata/freesurfer/fsaverage/surf/{h}.{surface}", "fsaverage surface"))
            for h in ("lh", "rh")]


def _model_rows(nsd, feature_space, ids, features, options):
    if features is not None:
        fids, X = features
        X = np.asarray(X)[rows_of(fids, ids)]
    else:
        X = build_feature_table(nsd, [feature_space], ids, **options)[feature_space]
    return _rsa_rows(X)[0]  # empty rows (no COCO instance) at a defined distance


def _searchlight_key(kind: str, betas_key: str, sets_ids: np.ndarray, X: np.ndarray, size, *extra) -> str:
    """Cache key of a searchlight map: everything that changes it (no brain data is hashed).

    ``betas_key`` covers the subject's betas (files, design, arguments); ``sets_ids`` the
    sample sets as image ids (the whole partition, every id); ``X`` the model's rows of the
    sets' images (its content); ``size`` the sphere or disc radius; ``extra`` the meshes.
    """
    return cache_key("searchlight", kind, betas_key, np.asarray(sets_ids, dtype=np.int64),
                     np.asarray(X), float(size), list(extra))


def _searchlight_inputs(nsd, subject, kind, space, feature_space, size, set_size, seed,
                        n_sets, features, results_dir, feature_options, cache, sessions=None):
    """What both searchlights need: the cache file of this map (``None`` without a cache),
    and a loader of the sample sets as rows of the subject's betas, the betas (the memory map
    of :meth:`NSD.betas`: nothing is copied; :func:`~brainllm_utils.rsa.searchlight_rsa`
    reads one group of sets at a time) and the sorted rows of the sets' images; plus the
    model's rows for those images."""
    ids, sets = subject_sets(nsd, subject, set_size, seed, n_sets, results_dir, sessions)
    used = np.unique(sets.ravel())
    X = _model_rows(nsd, feature_space, ids[used], features, feature_options)
    folder = resolve_cache(cache, "searchlight")
    path = None
    if folder is not None:
        extra = _mesh_identity(nsd) if space == "fsaverage" else []
        key = _searchlight_key(kind, nsd.betas_key(subject, space=space, sessions=sessions), ids[sets], X,
                               size, *extra)
        path = folder / f"{kind}_{subject}_{key}.npy"

    def load():
        Y, all_ids = nsd.betas(subject, space=space, progress=False, sessions=sessions)
        used_rows = rows_of(all_ids, ids[used])
        # the model's rows at the same rows as the betas (rows outside the sets are never read)
        X_rows = np.zeros((Y.shape[0],) + np.shape(X)[1:], dtype=np.asarray(X).dtype)
        X_rows[used_rows] = X
        return rows_of(all_ids, ids[sets]), Y, used_rows, X_rows

    return path, load, X


def _finite_columns(Y, rows, nonconstant: bool = False) -> np.ndarray:
    """Columns of ``Y`` finite in every one of ``rows`` (and not constant over them), one block
    of columns at a time (``Y`` is the memory-mapped betas)."""
    out = np.empty(Y.shape[1], dtype=bool)
    for b in _column_blocks(len(rows), Y.shape[1]):
        block = _read_rows(Y, rows, b)
        out[b] = np.isfinite(block).all(0)
        if nonconstant:
            out[b] &= block.std(0) > 0
    return out


def _global_neighbourhoods(neigh, cols):
    """Neighbourhoods indexing ``cols`` rewritten as indices of the columns themselves."""
    cols = np.asarray(cols, dtype=np.int64)
    if isinstance(neigh, np.ndarray) and neigh.ndim == 2:
        return np.where(neigh >= 0, cols[np.clip(neigh, 0, None)], -1)
    return [cols[np.asarray(n, dtype=np.int64)] for n in neigh]


_DISCS: dict = {}  # (n_vertices, hemi, radius, mesh, mask digest) -> (centres, discs), per process

#: Neighbourhood entries handed to :func:`~brainllm_utils.rsa.searchlight_rsa` at a time. It
#: pads its neighbourhoods into one (centres × largest) int64 array: the 10 mm discs of full
#: fsaverage hold ~10^8 entries per hemisphere (~1 GB, more once padded), so larger maps go
#: through in chunks of centres (results are per centre; the sandbox's maps fit in one call).
SEARCHLIGHT_CHUNK_ENTRIES = 2**24


def _chunked_searchlight(Y, neigh, cols, models, set_rows, device) -> np.ndarray:
    """``searchlight_rsa(Y, neighbourhoods, models, sets=set_rows)`` (one row per model of
    ``models``, a list of model rows) with the neighbourhoods ``neigh`` (indices into
    ``cols``) remapped to columns of ``Y`` one chunk of centres at a time: neither a remapped
    copy of every neighbourhood nor their padded array is ever whole in memory. The models
    share each neighbourhood's brain patterns (gathered, centred and multiplied once)."""
    n = len(neigh)
    if n == 0:
        return np.zeros((len(models), 0), dtype=np.float32)
    cols = np.asarray(cols, dtype=np.int64)
    longest = max(1, max(np.size(a) for a in neigh))
    step = max(1, SEARCHLIGHT_CHUNK_ENTRIES // longest)
    if step >= n:
        return np.asarray(searchlight_rsa(Y, _global_neighbourhoods(neigh, cols), list(models),
                                          sets=set_rows, device=device, progress=False))
    parts = []
    for c0 in range(0, n, step):
        chunk = _global_neighbourhoods(neigh[c0:c0 + step], cols)
        parts.append(np.asarray(searchlight_rsa(Y, chunk, list(models), sets=set_rows, device=device,
                                                progress=False)))
        del chunk
    return np.concatenate(parts, axis=1)


def _check_models(models) -> dict:
    """``models`` of the batched searchlights as ``{name: features or None}``."""
    if isinstance(models, str):
        models = [models]
    if not isinstance(models, dict):
        models = {m: None for m in models}
    if not models or not all(isinstance(m, str) for m in models):
        raise ValueError("models: expected a non-empty dict {name: (ids, X) or None} or a list of "
                         f"feature-space names, got {list(models)!r}")
    return dict(models)


def _batched_maps(nsd, subject, kind, space, models, size, set_size, seed, n_sets, results_dir,
                  feature_options, cache, sessions, shape, compute) -> dict:
    """Every model's searchlight map: cached maps are read, the others computed together
    (``compute(Y, set_rows, used_rows, [X_rows, ...])`` → one map per model) and cached one
    by one, under the key each would have alone."""
    inputs = {name: _searchlight_inputs(nsd, subject, kind, space, name, size, set_size, seed, n_sets, fx,
                                        results_dir, feature_options, cache, sessions)
              for name, fx in models.items()}
    out, todo = {}, []
    for name, (path, _, _) in inputs.items():
        hit = load_npy(path, shape=shape, dtype=np.float32) if path is not None else None
        if hit is None:
            todo.append(name)
        else:
            out[name] = hit
    if todo:
        loaded = [inputs[name][1]() for name in todo]
        set_rows, Y, used_rows, _ = loaded[0]
        for name, m in zip(todo, compute(Y, set_rows, used_rows, [entry[3] for entry in loaded])):
            path = inputs[name][0]
            if path is not None:
                save_npy(path, m)
            out[name] = m
    return {name: out[name] for name in models}


@fill_doc
def surface_searchlights(nsd, subject, models, radius_mm: float = 10.0, set_size: int = 100,
                         seed: int = 0, n_sets: int | None = None, device: str = "auto",
                         results_dir=None, cache: bool = True, sessions=None, progress: bool = True,
                         **feature_options) -> dict:
    """:func:`surface_searchlight` for several models of one subject at once.

    The maps are those of :func:`surface_searchlight` (each cached under the key it would
    have alone, so either function finds the other's maps), but the models not yet cached
    go through one searchlight: every disc's brain patterns are gathered, centred and
    multiplied once for all of them, which makes k models cost little more than one.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    models : dict of str to (array-like, array-like) or None, or sequence of str
        ``{name: (ids, X)}``: precomputed features ``X`` whose rows are the sorted nsdIds
        ``ids`` (covering the sets' images), or ``None`` (or a list of names): the registry
        feature space of that name (:func:`build_feature_table`).
    radius_mm : float, default=10.0
        Geodesic radius of the discs, in mm.
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(device)s
    %(results_dir)s
    %(cache)s
    %(sessions)s
    progress : bool, default=True
        Show a progress bar over the two hemispheres (none when every map is cached).
    %(feature_options)s

    Returns
    -------
    maps : dict of str to ndarray of float32 of shape (n_vertices_lh + n_vertices_rh,)
        Per model (in the order given), mean-over-sets Pearson r per centre vertex, NaN
        where no disc was centred.

    Raises
    ------
    ValueError
        When ``models`` is empty or names something other than strings.
    """
    models = _check_models(models)
    n_lh, n_rh = nsd.n_vertices()

    def compute(Y, set_rows, used_rows, X_list):
        out = np.full((len(X_list), n_lh + n_rh), np.nan, dtype=np.float32)
        finite = _finite_columns(Y, used_rows)
        mesh_id = _mesh_identity(nsd)
        hemis = (("left", 0, n_lh), ("right", n_lh, n_rh))
        label = next(iter(models)) if len(models) == 1 else f"{len(X_list)} models"
        for hemi, off, nv in _progress_bar(hemis, f"searchlight {subject} {label}", progress,
                                           unit="hemisphere", leave=False):
            mask = finite[off: off + nv]
            key = (nv, hemi, float(radius_mm), repr(mesh_id), array_digest(mask))
            if key not in _DISCS:
                centres, neigh = surface_neighbourhoods(fsaverage_mesh(nsd, hemi), radius_mm, mask=mask)
                # kept for the next feature space as int32 (indices of < 2**31 vertices): half the bytes
                for i, a in enumerate(neigh):
                    neigh[i] = a.astype(np.int32)
                _DISCS[key] = centres, neigh
            centres, neigh = _DISCS[key]
            cols = off + np.flatnonzero(mask)
            out[:, cols[centres]] = _chunked_searchlight(Y, neigh, cols, X_list, set_rows, device)
        return list(out)

    return _batched_maps(nsd, subject, "surface", "fsaverage", models, radius_mm, set_size, seed,
                         n_sets, results_dir, feature_options, cache, sessions, (n_lh + n_rh,), compute)


@fill_doc
def surface_searchlight(nsd, subject, feature_space: str = "mpnet", radius_mm: float = 10.0,
                        set_size: int = 100, seed: int = 0, n_sets: int | None = None,
                        device: str = "auto", features=None, results_dir=None,
                        cache: bool = True, sessions=None, progress: bool = True,
                        **feature_options) -> np.ndarray:
    """Searchlight RSA map of one subject and feature space on the fsaverage surface.

    Discs of geodesic radius ``radius_mm`` on each hemisphere's pial mesh
    (:func:`brainllm_utils.searchlight.surface_neighbourhoods`, restricted to vertices with
    finite betas), the paper's sampled RSA in each disc (same sets as the ROI analysis).
    Maps are cached (the one cache, kind ``"searchlight"``) under a key of the subject's
    betas, the whole sample-set partition, the model's feature rows, the radius and the mesh.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    feature_space : str, default="mpnet"
        The model: a registry name or ``"truth:<space>"`` (:func:`build_feature_table`).
    radius_mm : float, default=10.0
        Geodesic radius of the discs, in mm.
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(device)s
    features : (array-like, array-like), optional
        ``(ids, X)``: precomputed features ``X`` whose rows are the sorted nsdIds ``ids``,
        covering the sets' images (otherwise built here for exactly those images).
    %(results_dir)s
        Sample sets are saved under ``<results_dir>/rsa/<dataset key>/sampling/``.
    %(cache)s
    %(sessions)s
    %(feature_options)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the two hemispheres (none for a cached map).

    Returns
    -------
    r : ndarray of float32 of shape (n_vertices_lh + n_vertices_rh,)
        Mean-over-sets Pearson r per centre vertex, NaN where no disc was centred.
    """
    return surface_searchlights(nsd, subject, {feature_space: features}, radius_mm=radius_mm,
                                set_size=set_size, seed=seed, n_sets=n_sets, device=device,
                                results_dir=results_dir, cache=cache, sessions=sessions,
                                progress=progress, **feature_options)[feature_space]


@fill_doc
def volume_searchlight(nsd, subject, feature_space: str = "mpnet", radius: float = 3.0,
                       set_size: int = 100, seed: int = 0, n_sets: int | None = None,
                       device: str = "auto", features=None, results_dir=None,
                       cache: bool = True, sessions=None, **feature_options) -> np.ndarray:
    """Searchlight RSA map of one subject in its func1pt8mm volume.

    Spheres of voxels at distance ``< radius`` (voxels) inside the brain mask (voxels with
    finite betas), centres whose full sphere is ≥ 50 % in the mask
    (:func:`brainllm_utils.searchlight.volume_neighbourhoods`), the paper's sampled RSA.
    Cached like :func:`surface_searchlight`.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    feature_space : str, default="mpnet"
        The model: a registry name or ``"truth:<space>"`` (:func:`build_feature_table`).
    radius : float, default=3.0
        Sphere radius in voxels (1.8 mm each).
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(device)s
    features : (array-like, array-like), optional
        ``(ids, X)``: precomputed features ``X`` whose rows are the sorted nsdIds ``ids``,
        covering the sets' images (otherwise built here for exactly those images).
    %(results_dir)s
        Sample sets are saved under ``<results_dir>/rsa/<dataset key>/sampling/``.
    %(cache)s
    %(sessions)s
    %(feature_options)s

    Returns
    -------
    r : ndarray of float32 of shape (X, Y, Z)
        Mean-over-sets Pearson r per centre voxel, NaN elsewhere.
    """
    return volume_searchlights(nsd, subject, {feature_space: features}, radius=radius,
                               set_size=set_size, seed=seed, n_sets=n_sets, device=device,
                               results_dir=results_dir, cache=cache, sessions=sessions,
                               **feature_options)[feature_space]


@fill_doc
def volume_searchlights(nsd, subject, models, radius: float = 3.0, set_size: int = 100,
                        seed: int = 0, n_sets: int | None = None, device: str = "auto",
                        results_dir=None, cache: bool = True, sessions=None,
                        **feature_options) -> dict:
    """:func:`volume_searchlight` for several models of one subject at once.

    The maps equal :func:`volume_searchlight`'s (each cached under the key it would have
    alone); the models not yet cached share one searchlight, in which each sphere's brain
    patterns are gathered, centred and multiplied once for all of them.

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    models : dict of str to (array-like, array-like) or None, or sequence of str
        As :func:`surface_searchlights`.
    radius : float, default=3.0
        Sphere radius in voxels (1.8 mm each).
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(device)s
    %(results_dir)s
    %(cache)s
    %(sessions)s
    %(feature_options)s

    Returns
    -------
    maps : dict of str to ndarray of float32 of shape (X, Y, Z)
        Per model (in the order given), mean-over-sets Pearson r per centre voxel, NaN
        elsewhere.

    Raises
    ------
    ValueError
        When ``models`` is empty or names something other than strings.
    """
    models = _check_models(models)
    brain = nsd.brainmask(subject)

    def compute(Y, set_rows, used_rows, X_list):
        finite = _finite_columns(Y, used_rows, nonconstant=True)
        mask = np.zeros(brain.size, dtype=bool)
        mask[np.flatnonzero(brain.ravel())[finite]] = True
        mask = mask.reshape(brain.shape)
        centres, neigh = volume_neighbourhoods(mask, radius)
        r = _chunked_searchlight(Y, list(neigh), np.flatnonzero(finite), X_list, set_rows, device)
        return [to_volume(row, mask, centres) for row in r]

    return _batched_maps(nsd, subject, "volume", "func1pt8mm", models, radius, set_size, seed,
                         n_sets, results_dir, feature_options, cache, sessions, brain.shape, compute)


@fill_doc
def group_searchlight_test(maps, q: float = 0.05):
    """One-sample t-test across subjects at every vertex, BH-FDR (paper: q = 0.05).

    Parameters
    ----------
    maps : array-like of shape (n_subjects, n_vertices) or dict of str to such rows
        Per-subject searchlight maps in a common space (fsaverage); NaN where a subject
        has no centre (such vertices are not tested).
    %(q)s

    Returns
    -------
    result : dict
        ``mean, t, p, p_fdr, reject`` (arrays of n_vertices) and ``thresholded`` (the mean
        where FDR-significant, NaN elsewhere), ``n_subjects``.
    """
    M = np.stack(list(maps.values())) if isinstance(maps, dict) else np.asarray(maps)
    M = M.astype(np.float64)
    if M.ndim != 2 or M.shape[0] < 2:
        raise ValueError(f"maps: need (n_subjects >= 2, n_vertices), got shape {M.shape}")
    ok = np.isfinite(M).all(0)
    n_v = M.shape[1]
    res = ttest_1samp_fdr(M[:, ok], q=q)
    out = {k: np.full(n_v, np.nan) for k in ("mean", "t", "p", "p_fdr")}
    for k in out:
        out[k][ok] = res[k]
    reject = np.zeros(n_v, dtype=bool)
    reject[ok] = res["reject"]
    out["reject"] = reject
    out["thresholded"] = np.where(reject, out["mean"], np.nan)
    out["n_subjects"] = int(M.shape[0])
    return out


def paper_rsa_comparison(df, models, value: str = "r_normalised", rois=PAPER_ROI_RSA_ROIS):
    """Our ROI RSA (mean over subjects) next to the paper's matching number, like with like.

    Each model gets the paper's number only where the paper scored the same kind of model
    trained the same way (:func:`~brainllm_utils.chapters.reference.paper_reference`); MPNet
    and the other text spaces have none (the paper publishes no absolute per-ROI value for
    them), and the row's ``note`` says so instead of borrowing a network's number.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy RSA table (:func:`subject_rsa_table`): ``model``, ``roi`` and ``value``.
    models : list of str
        The models, in the table's order.
    value : str, default="r_normalised"
        The score column (``"r"`` when one subject leaves no ceiling).
    rois : sequence of str, default=PAPER_ROI_RSA_ROIS
        The ROIs, in this order.

    Returns
    -------
    table : pandas.DataFrame
        :func:`~brainllm_utils.chapters.reference.paper_comparison`: indexed by ``(model,
        item)`` (item = ROI): ``ours``, ``paper`` (NaN without a match), ``paper_low``,
        ``paper_high``, ``paper_row``, ``paper_trained``, ``source``, ``note``.
    """
    import pandas as pd

    models, rois = list(models), list(rois)
    if not models or not all(isinstance(m, str) for m in models):
        raise ValueError(f"models={models!r}: expected a non-empty list of model names")
    if value not in df.columns or not {"model", "roi"} <= set(df.columns):
        raise ValueError(f"df: expected columns model, roi and value={value!r}, got {list(df.columns)}")
    means = df[df["model"].isin(models)].groupby(["model", "roi"])[value].mean()
    table = pd.DataFrame({r: [float(means.get((m, r), np.nan)) for m in models] for r in rois},
                         index=pd.Index(models, name="model"))
    return paper_comparison(table)


# --------------------------------------------------------------------------- the paper's searchlight
@fill_doc
def paper_searchlight_maps(nsd, subjects=None, features=None, radius: float = 6.0,
                           set_size: int = 100, seed: int = 0, n_sets: int | None = None,
                           device: str = "auto", results_dir=None, cache: bool = True,
                           sessions=None, interp: str = "cubic", feature_spaces=("mpnet",),
                           progress: bool = True, **feature_options) -> dict:
    """The paper's searchlight maps: native-volume spheres per subject, projected to fsaverage.

    For every subject and model: :func:`volume_searchlight` (spheres of voxels at distance
    ``< radius`` voxels in the subject's 1.8-mm brain mask, centres whose sphere is ≥ 50 %
    in the mask, the sampled RSA averaged over the subject's sample sets), then
    :func:`brainllm_utils.nsd.project_to_fsaverage` (func1pt8 → ``layerB1..3`` by ``interp``
    interpolation, mean of the depths, ``white-to-fsaverage``; NaN voxels, i.e. non-centres,
    count as 0 as in nsdcode). Averaging the per-set volumes before projecting equals
    projecting each and averaging (the projection is linear). ``paper_methods.md`` §3.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    features : dict of str to (array-like, array-like), optional
        ``{model: (ids, X)}``: features ``X`` whose rows are the sorted nsdIds ``ids``,
        covering the sample sets' images; built for ``feature_spaces`` when missing.
    radius : float, default=6.0
        Sphere radius in voxels (the paper: 6, i.e. < 10.8 mm).
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(device)s
    %(results_dir)s
    %(cache)s
    %(sessions)s
    interp : {"cubic", "linear", "nearest"}, default="cubic"
        Interpolation at the cortical depths (the paper: cubic).
    feature_spaces : sequence of str, default=("mpnet",)
        Models built with :func:`build_feature_table` when ``features`` is None.
    %(feature_options)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the subjects.

    Returns
    -------
    result : dict
        ``fsaverage``: ``{model: {subject: (n_vertices_lh + n_vertices_rh,) float64}}``;
        ``volume``: ``{model: {subject: (X, Y, Z) float32}}`` (NaN off centres);
        ``coverage``: ``{subject: fsaverage map}``, the projection of the centres' indicator
        (about the share of a vertex's interpolation that fell on searchlight centres; the
        paper tests every vertex whatever its coverage); ``radius``, ``n_sets`` (sets per
        subject), ``interp``.
    """
    subjects = list(nsd.subjects if subjects is None else subjects)
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or radius <= 1:
        raise ValueError(f"radius={radius!r}: expected a number of voxels > 1")
    if features is None:
        _, needed = rsa_design(nsd, subjects, set_size, seed, n_sets, results_dir, sessions)
        built = build_feature_table(nsd, list(feature_spaces), needed, **feature_options)
        features = {name: (needed, X) for name, X in built.items()}
    if not isinstance(features, dict) or not features:
        raise ValueError("features: expected a non-empty dict {model: (ids, X)}")
    out = {"fsaverage": {m: {} for m in features}, "volume": {m: {} for m in features},
           "coverage": {}, "radius": float(radius), "interp": interp, "n_sets": {}}
    for s in _progress_bar(subjects, "volume searchlights", progress, unit="subject"):
        transforms = load_fsaverage_transforms(nsd, s)
        out["n_sets"][s] = int(subject_sets(nsd, s, set_size, seed, n_sets, results_dir, sessions)[1].shape[0])
        centres = None
        vols = volume_searchlights(nsd, s, features, radius=radius, set_size=set_size, seed=seed,
                                   n_sets=n_sets, device=device, results_dir=results_dir, cache=cache,
                                   sessions=sessions)
        for model, vol in vols.items():
            out["volume"][model][s] = vol
            out["fsaverage"][model][s] = project_to_fsaverage(vol, s, nsd, interp=interp,
                                                              transforms=transforms)
            centres = np.isfinite(vol) if centres is None else centres
        out["coverage"][s] = project_to_fsaverage(centres.astype(np.float64), s, nsd, interp=interp,
                                                  transforms=transforms)
    return out


@fill_doc
def searchlight_difference_test(maps_a, maps_b, q: float = 0.05):
    """Group test of per-subject searchlight differences A − B (paired t-test at every vertex).

    The paper's searchlight contrasts (RCNN vs MPNet, LLM- vs category-trained;
    ``paper_methods.md`` §3): per subject the difference of the two maps, then a two-sided
    one-sample t-test of the differences across subjects (a paired t-test), BH-FDR at
    ``q`` over the vertices (:func:`group_searchlight_test`).

    Parameters
    ----------
    maps_a, maps_b : dict of str to array-like of shape (n_vertices,)
        Per-subject maps in a common space; the same subjects in both.
    %(q)s

    Returns
    -------
    result : dict
        :func:`group_searchlight_test`'s keys for the differences, plus ``diff`` (subject →
        map A − B).

    Raises
    ------
    ValueError
        Different subjects or map shapes in A and B, or fewer than 2 subjects.
    """
    if set(maps_a) != set(maps_b):
        raise ValueError(f"maps_a and maps_b must hold the same subjects: {sorted(maps_a)} vs {sorted(maps_b)}")
    diff = {}
    for s in maps_a:
        a, b = np.asarray(maps_a[s], dtype=np.float64), np.asarray(maps_b[s], dtype=np.float64)
        if a.shape != b.shape or a.ndim != 1:
            raise ValueError(f"{s}: maps of shapes {a.shape} and {b.shape}; expected equal 1-D maps")
        diff[s] = a - b
    out = group_searchlight_test(diff, q=q)
    out["diff"] = diff
    return out


def significant_by_roi(test, labels, names, sign: int = 1):
    """FDR-significant vertices of a group searchlight test per atlas ROI, of one sign.

    Parameters
    ----------
    test : dict
        :func:`group_searchlight_test`'s result (``reject``, ``mean``, ``t``).
    labels : array-like of int of shape (n_vertices,)
        Atlas label per vertex (e.g. ``nsd.roi_volume(s, "streams", "fsaverage")``).
    names : dict of int to str
        ``{label: ROI name}`` (labels ≤ 0 are left out).
    sign : {1, -1}, default=1
        Count vertices whose mean is positive (1) or negative (−1).

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ROI: ``n_vertices`` (tested: finite t), ``n_significant`` (FDR-significant
        with mean of ``sign``), ``share`` and ``mean_r_significant`` (mean over them).
    """
    import pandas as pd

    if sign not in (1, -1):
        raise ValueError(f"sign={sign!r}: expected 1 or -1")
    labels = np.asarray(labels)
    if labels.shape != np.shape(test["reject"]):
        raise ValueError(f"labels: shape {labels.shape}, test maps {np.shape(test['reject'])}")
    hit = np.asarray(test["reject"]) & (np.sign(np.nan_to_num(test["mean"])) == sign)
    tested = np.isfinite(test["t"])
    rows = []
    for k, name in sorted(names.items()):
        if k <= 0:
            continue
        m = labels == k
        n_sig = int((hit & m).sum())
        rows.append(dict(roi=name, n_vertices=int((tested & m).sum()), n_significant=n_sig,
                         share=n_sig / max(int((tested & m).sum()), 1),
                         mean_r_significant=float(np.mean(test["mean"][hit & m])) if n_sig else np.nan))
    return pd.DataFrame(rows).set_index("roi")
