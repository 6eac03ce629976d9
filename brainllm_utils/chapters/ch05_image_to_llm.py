"""Chapter 05 (image-to-LLM networks, RQ4; Doerig et al. 2025, §6–7).

The networks, training, activations, comparison models and transfer readouts live in
:mod:`brainllm_utils.vision`; the RSA machinery in :mod:`brainllm_utils.rsa_analysis`.
This module wires them together for the chapter and caches what is slow:

- :func:`chapter_configs`, :func:`pool_split`, :func:`train_objective_networks`,
  :func:`train_size_sweep`: seeded BLT networks for both objectives (cosine to the mean
  MPNet caption embedding; BCE to multi-hot labels), trained on the training pool
  (images no subject saw) or loaded from their checkpoints; nested training subsets for
  the training-set-size sweep.
- :func:`training_table`, :func:`validation_floors`: per-network training time and
  held-out loss/cosine against the mean-target (or base-rate) floor.
- :func:`network_features`, :func:`comparison_features`: last-layer/last-step activations
  (cached by weights hash and nsdIds) and comparison-model features (built-in models and
  registered user models, one entry per model and layer), with a table of the models that
  were skipped and why.
- :func:`average_over_seeds`, :func:`network_rsa_table`: ROI RSA of every seed network,
  averaged over seeds per subject and ROI (the paper's reading: correlation values
  averaged over seeds), next to the caption embeddings and comparison models.
- :func:`searchlight_contrast`: per-subject surface searchlight maps of the networks
  (mean over seeds), the per-subject difference LLM-trained − category-trained, and the
  group t-test with BH-FDR (our extension, on surface discs);
  :func:`paper_searchlight_contrasts`: the paper's Fig. 4c contrasts (LLM-trained − MPNet,
  LLM-trained − category-trained) on volume-sphere searchlights projected to fsaverage.
- :func:`transfer_summary`: linear readouts from frozen features to caption embeddings
  and multi-hot labels on held-out NSD images, aggregated over seeds, with floors.
- :func:`size_alignment_table`: brain alignment against the number of training images.
- :func:`paper_transfer_numbers`, :func:`paper_comparison_table`: the paper's reference
  numbers next to ours.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import vision
from .._utils.cache import cache_key, load_npy, resolve_cache, save_npy
from .._utils.device import torch_threads
from .._utils.docs import fill_doc
from .ch02_rsa import (
    group_searchlight_test,
    paper_rsa_comparison,
    paper_searchlight_maps,
    searchlight_difference_test,
    subject_rsa_table,
    surface_searchlights,
)
from ._common import _progress_bar, rsa_design, subject_image_ids
from .reference import paper_reference, paper_transfer_numbers

__all__ = [
    "OBJECTIVES",
    "chapter_configs",
    "pool_split",
    "validation_floors",
    "train_objective_networks",
    "train_size_sweep",
    "training_table",
    "split_histories",
    "network_features",
    "comparison_features",
    "average_over_seeds",
    "network_rsa_table",
    "searchlight_contrast",
    "paper_searchlight_contrasts",
    "PAPER_CONTRASTS",
    "transfer_image_ids",
    "transfer_summary",
    "size_alignment_table",
    "paper_transfer_numbers",
    "paper_comparison_table",
]

#: Training objectives: name → (loss, what the target is).
OBJECTIVES = {"mpnet": ("cosine", "mean MPNet caption embedding (LLM-trained)"),
              "multihot": ("bce", "multi-hot COCO categories (category-trained)")}


# --------------------------------------------------------------------------- training
@fill_doc
def chapter_configs(preset: str = "sandbox", epochs: int | None = None, image_size: int | None = None):
    """The ``(BLTConfig, TrainConfig)`` of a :data:`vision.PRESETS` entry with overrides.

    ``epochs`` and ``image_size`` replace the preset's values when given (``None`` keeps
    them). The loss is set per objective by :func:`train_objective_networks`.

    Parameters
    ----------
    %(preset)s
    epochs : int, optional
        Training epochs instead of the preset's.
    image_size : int, optional
        Input side in pixels instead of the preset's.

    Returns
    -------
    config : BLTConfig
        The architecture.
    train_config : TrainConfig
        The optimisation settings.
    """
    cfg, tc = vision.PRESETS[preset]
    if image_size is not None:
        cfg = dataclasses.replace(cfg, image_size=int(image_size))
    if epochs is not None:
        tc = dataclasses.replace(tc, epochs=int(epochs))
    return cfg, tc


def pool_split(n_pool: int, n_train: int | None = None, n_val: int = 0):
    """Training and validation rows of the pool: :func:`brainllm_utils.vision.pool_split`.

    Parameters
    ----------
    n_pool : int
        Images in the pool.
    n_train : int, optional
        Training images (``None``: all but ``n_val``).
    n_val : int, default=0
        Validation images.

    Returns
    -------
    train_idx : ndarray of int of shape (n_train,)
        Sorted training rows.
    val_idx : ndarray of int of shape (n_val,)
        Validation rows.
    """
    return vision.pool_split(n_pool, n_train, n_val)


def _resolve_n_train(pool, n_train, n_val):
    avail = len(pool) - int(n_val)
    return avail if n_train is None else min(int(n_train), avail)


def validation_floors(pool, objective: str, n_train: int | None = None, n_val: int = 200,
                      targets=None) -> dict:
    """What a network that ignores the image scores on the validation images.

    ``mpnet``: the mean training target; loss ``1 − cosine`` and its cosine with each
    held-out target. ``multihot``: the training base rate per category; its binary
    cross-entropy and the cosine of the base-rate vector with each held-out label vector.

    Parameters
    ----------
    pool : TrainingPool
        The training pool (:class:`vision.TrainingPool`).
    objective : {"mpnet", "multihot"}
        The training objective.
    n_train : int, optional
        Training images, as :func:`train_objective_networks` (``None`` or more than
        available: all but ``n_val``).
    n_val : int, default=200
        Validation images (the last of the pool's permutation, :func:`pool_split`).
    targets : array-like of float of shape (n_pool, n_targets), optional
        Targets of the whole pool (else built with :func:`vision.make_targets`, which for
        ``mpnet`` embeds only the training and validation captions).

    Returns
    -------
    floors : dict of str to float
        ``loss`` and ``cosine`` (NaN without validation images).
    """
    train, val = pool_split(len(pool), _resolve_n_train(pool, n_train, n_val), n_val)
    if val.size == 0:
        return {"loss": float("nan"), "cosine": float("nan")}
    if targets is None:
        idx = np.concatenate([train, val])
        Y = vision.make_targets(objective, [pool.captions[i] for i in idx], pool.multihot[idx])
        Yt, Yv = Y[: train.size], Y[train.size:]
    else:
        Yt, Yv = np.asarray(targets)[train], np.asarray(targets)[val]
    m = Yt.astype(np.float64).mean(0)
    norm = np.maximum(np.linalg.norm(Yv, axis=1) * np.linalg.norm(m), 1e-12)
    cos = float(np.mean(Yv @ m / norm))
    if objective == "mpnet":
        return {"loss": 1.0 - cos, "cosine": cos}
    p = np.clip(m, 1e-7, 1 - 1e-7)
    bce = float(-np.mean(Yv * np.log(p) + (1 - Yv) * np.log(1 - p)))
    return {"loss": bce, "cosine": cos}


@fill_doc
def train_objective_networks(root=None, objectives=("mpnet", "multihot"), seeds=(0, 1), preset: str = "sandbox",
                             *, n_train: int | None = 2000, n_val: int = 200, epochs: int | None = None,
                             image_size: int | None = None, device="auto", progress: bool = False,
                             pool=None, checkpoint_root=None, cpu_threads: int | None = 1, num_workers: int = 0,
                             memory_budget: int | None = None, networks_dir=None) -> dict:
    """Train (or load) one network per objective × seed on the training pool.

    Each run is kept by :func:`vision.train_or_load` (key: format version, objective, seed,
    configs, training images and targets; saved as ``weights.pt`` + ``manifest.json``,
    :func:`vision.save_network`), so a second call loads the saved networks instead of
    training. With ``networks_dir``, networks trained elsewhere are loaded from that
    folder (``<networks_dir>/<objective>_seed<seed>/``) after their manifests are checked
    against the request; nothing is trained.

    Parameters
    ----------
    %(root_optional)s
        Only read when ``pool`` is not given.
    objectives : sequence of {"mpnet", "multihot"}, default=("mpnet", "multihot")
        Training objectives (:data:`OBJECTIVES`).
    seeds : sequence of int, default=(0, 1)
        One network per seed and objective.
    %(preset)s
    n_train : int, optional, default=2000
        Training images (``None`` or more than available: all but ``n_val``).
    n_val : int, default=200
        Held-out pool images scored after every epoch.
    epochs, image_size : int, optional
        Overrides of the preset (:func:`chapter_configs`).
    %(device)s
    %(progress)s
    pool : TrainingPool, optional
        A pool already loaded (else :func:`vision.load_training_pool`).
    checkpoint_root : path-like, optional
        Folder of the runs (``None``: ``get_cache_dir()/checkpoints``).
    cpu_threads : int, optional, default=1
        Torch threads while training on the CPU (restored afterwards; ``None``:
        leave as is). One thread is nearly as fast as two for these small networks on a
        2-core machine and does not collapse when another process competes for a core.
    num_workers : int, default=0
        Loader processes decoding the pool's JPEGs while training (0: in this process).
    memory_budget : int, optional
        Bytes of pool images allowed in memory (``None``: :data:`vision.POOL_MEMORY_BUDGET`);
        above it the images stream from their files.
    networks_dir : path-like, optional
        Load saved networks from this folder instead of training (see
        :func:`vision.save_network` for the format); a missing network or a manifest that
        does not match (objective, seed, configs, data selection) raises an error naming
        the file and the differences.

    Returns
    -------
    networks : dict of str to TrainedNetwork
        ``"<objective>_seed<seed>"`` → :class:`vision.TrainedNetwork`, objective-then-seed
        order; ``net.meta`` holds ``objective``, ``n_train``, ``n_val``, ``seconds`` (the
        training time summed over epochs, also for a loaded checkpoint).
    """
    if pool is None:
        pool = vision.load_training_pool(root, progress=progress, memory_budget=memory_budget)
    cfg, tc = chapter_configs(preset, epochs, image_size)
    n = _resolve_n_train(pool, n_train, n_val)
    for objective in objectives:
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; use one of {list(OBJECTIVES)}")
    out = {}
    with torch_threads(cpu_threads if str(device).startswith(("cpu", "auto")) else None):
        for objective in objectives:
            tco = dataclasses.replace(tc, loss=OBJECTIVES[objective][0])
            for seed in seeds:
                net = vision.train_or_load(root, objective, int(seed), preset, config=cfg, train_config=tco,
                                           n_train=n, n_val=n_val, device=device, progress=progress, pool=pool,
                                           checkpoint_root=checkpoint_root, num_workers=num_workers,
                                           memory_budget=memory_budget, networks_dir=networks_dir)
                net.meta.update(n_val=int(n_val), seconds=float(sum(r["seconds"] for r in net.history)))
                out[f"{objective}_seed{seed}"] = net
    return out


@fill_doc
def train_size_sweep(root=None, sizes=(500, 1000, 2000), objective: str = "mpnet", seed: int = 0,
                     preset: str = "sandbox", seeds=None, **options) -> dict:
    """Networks trained on nested subsets of the pool (brain alignment vs training size).

    Sizes above the available pool are dropped. ``options`` pass to
    :func:`train_objective_networks` (``n_val``, ``epochs``, ``image_size``, ``device``,
    ``pool``...); a size and seed equal to one of the main networks' reuse its checkpoint.
    With ``seeds``, one sweep per seed (replications of the whole curve, for a test across
    seeds: :func:`~brainllm_utils.stats.trend_over_seeds`).

    Parameters
    ----------
    %(root_optional)s
    sizes : sequence of int, default=(500, 1000, 2000)
        Training-set sizes (nested subsets of one permutation of the pool).
    objective : {"mpnet", "multihot"}, default="mpnet"
        The training objective.
    seed : int, default=0
        The seed of every network (without ``seeds``).
    %(preset)s
    seeds : sequence of int, optional
        One sweep per seed; the keys then name the seed (``seed`` is not used).
    **options
        Passed to :func:`train_objective_networks`.

    Returns
    -------
    networks : dict of str to TrainedNetwork
        ``"<objective>_n<size>"`` → TrainedNetwork, ascending size; with ``seeds``,
        ``"<objective>_seed<seed>_n<size>"``, seed then size. Each ``net.meta`` holds
        ``n_train`` and ``seed``.
    """
    pool = options.pop("pool", None)
    if pool is None:
        pool = vision.load_training_pool(root, progress=options.get("progress", False))
    if seeds is not None:
        seeds = [int(x) for x in seeds]
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds={seeds!r}: expected distinct seeds, at least one")
    avail = len(pool) - int(options.get("n_val", 200))
    out = {}
    for sd in (seeds if seeds is not None else [seed]):
        for size in sorted(set(int(s) for s in sizes)):
            if size > avail:
                continue
            nets = train_objective_networks(root, [objective], [sd], preset, n_train=size, pool=pool, **options)
            net = next(iter(nets.values()))
            net.meta["seed"] = int(sd)
            out[f"{objective}_seed{sd}_n{size}" if seeds is not None else f"{objective}_n{size}"] = net
    return out


def training_table(networks, pool=None, floors=None):
    """One row per network: objective, seed, sizes, training time and held-out scores.

    Parameters
    ----------
    networks : dict of str to TrainedNetwork
        From :func:`train_objective_networks`.
    pool : TrainingPool, optional
        Used to compute the missing floors.
    floors : dict of str to dict, optional
        Objective → :func:`validation_floors` result (computed from ``pool`` when given and
        missing).

    Returns
    -------
    table : pandas.DataFrame
        Indexed by network: ``objective, seed, n_train, epochs, seconds,
        seconds_per_epoch, train_loss, val_loss, val_cosine`` (last step), and
        ``floor_loss, floor_cosine``.
    """
    import pandas as pd

    floors = dict(floors or {})
    rows = []
    for name, net in networks.items():
        obj = net.meta.get("objective", name.split("_")[0])
        if obj not in floors and pool is not None:
            floors[obj] = validation_floors(pool, obj, net.meta.get("n_train"), net.meta.get("n_val", 0))
        h = net.history
        last = h[-1] if h else {}
        secs = float(sum(r["seconds"] for r in h))
        rows.append(dict(network=name, objective=obj, seed=net.seed, n_train=net.meta.get("n_train"),
                         epochs=len(h), seconds=secs, seconds_per_epoch=secs / max(1, len(h)),
                         train_loss=last.get("loss", np.nan), val_loss=last.get("val_loss", np.nan),
                         val_cosine=(last["val_cosine"][-1] if "val_cosine" in last else np.nan),
                         floor_loss=floors.get(obj, {}).get("loss", np.nan),
                         floor_cosine=floors.get(obj, {}).get("cosine", np.nan)))
    return pd.DataFrame(rows).set_index("network")


def split_histories(networks) -> dict:
    """``{objective: {name: history}}`` for the training-curve panels.

    Parameters
    ----------
    networks : dict of str to TrainedNetwork
        From :func:`train_objective_networks` or :func:`train_size_sweep`.

    Returns
    -------
    histories : dict of str to dict of str to list of dict
        Objective → network name → per-epoch history.
    """
    out: dict = {}
    for name, net in networks.items():
        out.setdefault(net.meta.get("objective", name.split("_")[0]), {})[name] = net.history
    return out


# --------------------------------------------------------------------------- features
@fill_doc
def network_features(networks, nsd, ids, device="auto", layer: int = -1, step: int = -1,
                     batch_size: int = 128, progress: bool = True) -> dict:
    """Spatially averaged activations of each network on NSD images (last layer and step).

    Cached by :func:`vision.extract_activations` (weights hash, layer, step, nsdIds). The
    images are read from ``nsd_stimuli.hdf5`` ``batch_size`` at a time, in increasing
    nsdId order (:class:`vision.LazyImages`), never all at once.

    Parameters
    ----------
    networks : dict of str to TrainedNetwork
        The networks.
    %(nsd)s
    ids : array-like of int of shape (n_images,)
        nsdIds of the images (the rows).
    %(device)s
    layer, step : int, default=-1
        Layer and time step read out (negative counts from the end).
    batch_size : int, default=128
        Images read and passed through a network at a time.
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the networks.

    Returns
    -------
    features : dict of str to ndarray of float32 of shape (n_images, n_channels)
        One matrix per network.
    """
    ids = np.asarray(ids, dtype=np.int64)
    uniq, inverse = np.unique(ids, return_inverse=True)
    images = _nsd_images(nsd, uniq)
    out = {}
    for name, net in _progress_bar(networks.items(), "network activations", progress,
                                   total=len(networks), unit="network"):
        X = next(iter(vision.extract_activations(net, images, (layer,), (step,), image_ids=uniq, batch_size=batch_size,
                                                 device=device).values()))
        out[name] = X if uniq.size == ids.size and (uniq == ids).all() else X[inverse]
    return out


def _nsd_images(nsd, sorted_ids):
    """NSD stimuli of sorted nsdIds, read from ``imgBrick`` batch by batch (increasing ids, as
    h5py needs) when a model asks for them: never all of them in memory."""
    return vision.LazyImages(sorted_ids, nsd.images)


@fill_doc
def comparison_features(nsd, ids, models=("untrained_blt", "untrained_alexnet"), device="auto",
                        blt_config=None, seed: int = 0, progress: bool = True):
    """Features of comparison models on NSD images, and a status table.

    Models without a library or local weights are skipped (never downloaded) and listed
    with the reason. With ``blt_config``, ``untrained_blt`` is the chapter's own
    architecture with random weights (``seed``) rather than the ``sandbox`` preset's.
    Registered user models (:func:`vision.register_model`) come by name beside the built-in
    ones: ``"<name>"`` (its registered layers) or ``"<name>:<layer>"``; each (model, layer)
    is one entry ``"<name>:<layer>"`` of the features and the table (activations cached per
    model and layer, :meth:`vision.VisionModel.activations`).

    Parameters
    ----------
    %(nsd)s
    ids : array-like of int of shape (n_images,)
        nsdIds of the images (the rows).
    models : sequence of str, default=("untrained_blt", "untrained_alexnet")
        Keys of :data:`vision.COMPARISON_MODELS`, and registered user models by name (or
        :class:`vision.VisionModel` objects).
    %(device)s
    blt_config : BLTConfig, optional
        Architecture of ``untrained_blt`` (``None``: the ``sandbox`` preset's).
    seed : int, default=0
        Seed of the random weights of ``untrained_blt`` with ``blt_config``.
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the models.

    Returns
    -------
    features : dict of str to ndarray of float32 of shape (n_images, n_features)
        The models that ran (user models: one per layer, ``"<name>:<layer>"``), in the order
        of ``models``.
    status : pandas.DataFrame
        Indexed by model: ``available, reason, description, training_images`` (user models:
        one row per layer; ``training_images`` unknown).
    """
    import pandas as pd

    ids = np.asarray(ids, dtype=np.int64)
    models = list(models)
    if not models:
        return {}, pd.DataFrame(columns=["available", "reason", "description", "training_images"])
    builtin = [m for m in models if not vision.is_registered_model(m)]
    uniq, inverse = np.unique(ids, return_inverse=True)
    images = _nsd_images(nsd, uniq)
    feats, statuses = {}, []
    if builtin:
        spec = {m: None for m in builtin}
        if blt_config is not None and "untrained_blt" in spec:
            spec["untrained_blt"] = vision.build_network(blt_config, seed)
        feats, statuses = vision.extract_features(spec, images, image_ids=uniq, device=device,
                                                 progress=progress)
    rows = {}
    for st in statuses:
        kind, desc, n = vision.COMPARISON_MODELS.get(st.name, ("", "", None))
        if st.name == "untrained_blt" and blt_config is not None:
            st.reason = f"random weights (seed {seed}), the chapter's architecture"
            desc = "our BLT, untrained"
        rows[st.name] = dict(model=st.name, available=st.available, reason=st.reason,
                             description=desc, training_images=n)
    order, user_feats = [], {}
    for m in models:  # user models one at a time, everything in the given order
        if not vision.is_registered_model(m):
            if m not in order:
                order.append(m)
            continue
        f, sts = vision.model_features([m], images, image_ids=uniq, device=device,
                                       progress=progress)
        model = m if isinstance(m, vision.VisionModel) else vision.parse_model_name(m)[0]
        for st in sts:
            if st.name in rows:
                raise ValueError(f"models: {st.name!r} is asked for twice")
            rows[st.name] = dict(model=st.name, available=st.available, reason=st.reason,
                                 description=model.description, training_images=None)
            order.append(st.name)
        user_feats.update(f)
    feats = {k: (feats[k] if k in feats else user_feats[k]) for k in order
             if k in feats or k in user_feats}
    if not (uniq.size == ids.size and (uniq == ids).all()):
        feats = {k: v[inverse] for k, v in feats.items()}
    return feats, pd.DataFrame([rows[k] for k in order]).set_index("model")


# --------------------------------------------------------------------------- ROI RSA
def average_over_seeds(df, groups, value_cols=("r", "r_normalised")):
    """Average per-seed scores per subject and ROI into one model per group.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`rsa_analysis.subject_rsa_table` output.
    groups : dict of str to list of str
        New name → the model names averaged (the seeds).
    value_cols : sequence of str, default=("r", "r_normalised")
        Score columns averaged (those present in ``df``).

    Returns
    -------
    table : pandas.DataFrame
        ``df`` without the seed rows, plus one row per group, subject and ROI with the
        seed means of ``value_cols``, the shared ``ceiling`` and ``n_seeds``.
    """
    import pandas as pd

    members = {m for ms in groups.values() for m in ms}
    keep = df[~df["model"].isin(members)].copy()
    frames = [keep]
    for new, ms in groups.items():
        sub = df[df["model"].isin(ms)]
        if sub.empty:
            continue
        agg = sub.groupby(["subject", "roi"], sort=False).agg(
            **{c: (c, "mean") for c in value_cols if c in sub},
            ceiling=("ceiling", "first"), n_seeds=("model", "nunique"),
            n_sets=("n_sets", "first"), set_size=("set_size", "first")).reset_index()
        agg["model"] = new
        frames.append(agg)
    return pd.concat(frames, ignore_index=True)


@fill_doc
def network_rsa_table(nsd, network_feats, *, seed_groups=None, other_features=None, subjects=None,
                      rois=None, set_size: int = 100, seed: int = 0, n_sets=None, device="auto",
                      ceilings=None, ids=None, sessions=None):
    """ROI RSA of seed networks (averaged over seeds) and other feature spaces.

    Parameters
    ----------
    %(nsd)s
    network_feats : dict of str to array-like of shape (n_images, n_features)
        Per-seed network features over ``ids`` (:func:`network_features`).
    seed_groups : dict of str to list of str, optional
        New name → names in ``network_feats``: seeds to average (per subject and ROI,
        after RSA). ``None``: keep every network.
    other_features : dict of str to array-like of shape (n_images, n_features), optional
        Caption embeddings, comparison models, planted spaces... over the same ``ids``.
    %(subjects)s
    %(rois)s
    %(set_size)s
    %(sets_seed)s
    %(n_sets)s
    %(device)s
    ceilings : pandas.DataFrame, optional
        From :func:`~brainllm_utils.chapters.ch02_rsa.loso_ceilings` (computed when
        missing).
    ids : array-like of int of shape (n_images,), optional
        Sorted nsdIds of the feature rows (default: the images the sample sets need).
    %(sessions)s

    Returns
    -------
    table : pandas.DataFrame
        As :func:`rsa_analysis.subject_rsa_table` (seed groups replace their members and
        carry ``n_seeds``).
    """
    if ids is None:
        ids = rsa_design(nsd, subjects, set_size, seed, n_sets, sessions=sessions)[1]
    ids = np.asarray(ids, dtype=np.int64)
    allf = dict(network_feats)
    allf.update(other_features or {})
    features = {k: (ids, np.asarray(v, np.float32)) for k, v in allf.items()}
    df = subject_rsa_table(nsd, subjects, list(allf), rois=rois, set_size=set_size, seed=seed,
                              n_sets=n_sets, device=device, features=features, ceilings=ceilings,
                              sessions=sessions)
    return average_over_seeds(df, seed_groups) if seed_groups else df


# --------------------------------------------------------------------------- searchlight
@fill_doc
def searchlight_contrast(nsd, feats_a: dict, feats_b: dict, ids, subjects=None, *, radius_mm: float = 10.0,
                         set_size: int = 100, seed: int = 0, n_sets=1, device="auto", q: float = 0.05,
                         sessions=None, progress: bool = True):
    """Surface searchlight contrast A − B (e.g. LLM-trained minus category-trained networks).

    Every network in ``feats_a`` and ``feats_b`` gets a surface searchlight map per
    subject (:func:`.ch02_rsa.surface_searchlight`, cached under a key that includes the
    content of its features; all networks of a subject go through one searchlight,
    :func:`.ch02_rsa.surface_searchlights`); the maps of each group are averaged over its networks (seeds);
    the per-subject difference A − B is tested across subjects at every vertex (two-sided
    one-sample t-test, BH-FDR at ``q``; :func:`.ch02_rsa.group_searchlight_test`).

    Parameters
    ----------
    %(nsd)s
    feats_a, feats_b : dict of str to array-like of shape (n_images, n_features)
        Features of the networks of group A and B over sorted nsdIds ``ids``.
    ids : array-like of int of shape (n_images,)
        Sorted nsdIds of the feature rows (covering the sample sets' images).
    %(subjects)s
    radius_mm : float, default=10.0
        Geodesic radius of the searchlight discs, in mm.
    %(set_size)s
    %(sets_seed)s
    n_sets : int, optional, default=1
        Use only each subject's first ``n_sets`` sample sets (``None``: all).
    %(device)s
    %(q)s
    %(sessions)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the subjects.

    Returns
    -------
    result : dict
        ``diff`` (subject → map), ``a``/``b`` (subject → seed-mean map), ``test`` (the
        group test of the differences), ``test_a``/``test_b`` (group tests of each map).
        With one subject the group tests are ``None`` (they need ≥ 2 subjects) and the
        per-subject maps remain.
    """
    ids = np.asarray(ids, dtype=np.int64)
    subjects = list(nsd.subjects if subjects is None else subjects)

    # every network of both groups in one searchlight per subject (the discs' brain patterns
    # are shared), then each group's maps averaged over its networks
    models = {**{f"a:{k}": (ids, X) for k, X in feats_a.items()},
              **{f"b:{k}": (ids, X) for k, X in feats_b.items()}}
    a, b = {}, {}
    for s in _progress_bar(subjects, "searchlights", progress, unit="subject"):
        maps = surface_searchlights(nsd, s, models, radius_mm=radius_mm, set_size=set_size, seed=seed,
                                    n_sets=n_sets, device=device, sessions=sessions, progress=False)
        a[s] = np.mean([maps[f"a:{k}"] for k in feats_a], axis=0)
        b[s] = np.mean([maps[f"b:{k}"] for k in feats_b], axis=0)
    diff = {s: a[s] - b[s] for s in subjects}
    if len(subjects) < 2:
        return {"a": a, "b": b, "diff": diff, "test": None, "test_a": None, "test_b": None}
    return {"a": a, "b": b, "diff": diff, "test": group_searchlight_test(diff, q=q),
            "test_a": group_searchlight_test(a, q=q), "test_b": group_searchlight_test(b, q=q)}


#: The paper's searchlight contrasts (Fig. 4c): name → (group A, group B).
PAPER_CONTRASTS = {"LLM-trained − MPNet": ("llm", "mpnet"), "LLM-trained − category-trained": ("llm", "category")}


@fill_doc
def paper_searchlight_contrasts(nsd, feats_llm: dict, feats_category: dict, feats_mpnet, ids, subjects=None, *,
                                radius: float = 6.0, set_size: int = 100, seed: int = 0, n_sets=1,
                                device="auto", q: float = 0.05, sessions=None):
    """The paper's searchlight contrasts (Fig. 4c) on its volume searchlight.

    Every network of ``feats_llm`` and ``feats_category`` and the caption embedding
    ``feats_mpnet`` get the paper's searchlight per subject
    (:func:`.ch02_rsa.paper_searchlight_maps`: spheres of ``< radius`` voxels in the native
    1.8-mm volume, mean over sample sets, projected to fsaverage); each group's maps are
    averaged over its networks (seeds) per subject; the contrasts of
    :data:`PAPER_CONTRASTS` are tested on the per-subject differences (paired t-test at
    every vertex, BH-FDR at ``q``; :func:`.ch02_rsa.searchlight_difference_test`).

    Parameters
    ----------
    %(nsd)s
    feats_llm, feats_category : dict of str to array-like of shape (n_images, n_features)
        Features of the LLM-trained and category-trained networks over sorted nsdIds ``ids``.
    feats_mpnet : array-like of shape (n_images, n_features)
        The MPNet caption embedding over ``ids``.
    ids : array-like of int of shape (n_images,)
        Sorted nsdIds of the feature rows (covering the sample sets' images).
    %(subjects)s
    radius : float, default=6.0
        Sphere radius in voxels (the paper: 6).
    %(set_size)s
    %(sets_seed)s
    n_sets : int, optional, default=1
        Use only each subject's first ``n_sets`` sample sets (``None``: all, as the paper).
    %(device)s
    %(q)s
    %(sessions)s

    Returns
    -------
    result : dict
        ``maps``: ``{"llm" | "category" | "mpnet": {subject: fsaverage map}}`` (seed means);
        ``tests``: ``{contrast: searchlight_difference_test result}``, or ``None`` per
        contrast with fewer than 2 subjects; ``radius``; ``n_sets`` (per subject).
    """
    ids = np.asarray(ids, dtype=np.int64)
    subjects = list(nsd.subjects if subjects is None else subjects)
    if not feats_llm or not feats_category:
        raise ValueError("feats_llm and feats_category need at least one network each")
    groups = {"llm": list(feats_llm), "category": list(feats_category), "mpnet": ["mpnet"]}
    named = {**feats_llm, **feats_category}
    if "mpnet" in named:
        raise ValueError("a network is named 'mpnet': the caption embedding's name")
    named["mpnet"] = feats_mpnet
    res = paper_searchlight_maps(nsd, subjects, {k: (ids, np.asarray(X)) for k, X in named.items()},
                                 radius=radius, set_size=set_size, seed=seed, n_sets=n_sets, device=device,
                                 sessions=sessions)
    maps = {g: {s: np.mean([res["fsaverage"][n][s] for n in names], axis=0) for s in subjects}
            for g, names in groups.items()}
    tests = {c: (searchlight_difference_test(maps[a], maps[b], q=q) if len(subjects) >= 2 else None)
             for c, (a, b) in PAPER_CONTRASTS.items()}
    return {"maps": maps, "tests": tests, "radius": float(radius), "n_sets": res["n_sets"]}


# --------------------------------------------------------------------------- transfer
@fill_doc
def transfer_image_ids(nsd, subjects=None, min_repeats: int = 3, sessions=None) -> np.ndarray:
    """Sorted union of the subjects' RSA images (seen ``min_repeats`` times).

    The NSD images the transfer readout is trained and tested on (none was in the
    training pool).

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    %(min_repeats)s
    %(sessions)s

    Returns
    -------
    nsd_ids : ndarray of int64 of shape (n_images,)
        Sorted nsdIds.
    """
    subjects = list(nsd.subjects if subjects is None else subjects)
    return np.unique(np.concatenate([subject_image_ids(nsd, s, min_repeats, sessions) for s in subjects])).astype(np.int64)


def _cached_transfer_table(features, targets, n_test, *, seed, epochs, lr, batch_size, cache=True,
                           progress=True):
    """:func:`vision.transfer_table`, in the one cache (kind ``"transfer"``) under a key of the
    features, targets (their content, streamed) and settings (the readouts take a minute or two
    on a CPU)."""
    import pandas as pd

    rows = [(f, t) for t in targets for f in features]  # vision.transfer_table's row order
    folder = resolve_cache(cache, "transfer")
    path = None
    if folder is not None:
        key = cache_key("transfer", int(n_test), int(seed), int(epochs), float(lr), int(batch_size),
                        {k: np.asarray(v, np.float32) for k, v in features.items()}, list(features),
                        {k: np.asarray(v, np.float32) for k, v in targets.items()}, list(targets))
        path = folder / f"{key}.npy"
        vals = load_npy(path, shape=(len(rows), 3), dtype=np.float64)
        if vals is not None:
            per = pd.DataFrame(rows, columns=["features", "target"])
            per["kind"] = ["bce" if np.isin(np.asarray(targets[t]), (0.0, 1.0)).all() else "cosine"
                           for _, t in rows]
            per[["score", "floor", "map"]] = vals
            return per
    with torch_threads(1):  # thousands of tiny steps: one thread is fastest and robust to a busy machine
        per = vision.transfer_table(features, targets, n_test, seed=seed, epochs=epochs, lr=lr,
                                    batch_size=batch_size, progress=progress)
    if path is not None:
        save_npy(path, per[["score", "floor", "map"]].to_numpy(np.float64))
    return per


@fill_doc
def transfer_summary(network_feats: dict, targets: dict, n_test: int, *, groups=None, seed: int = 0,
                     epochs: int = 200, lr: float = 0.05, batch_size: int = 96, cache: bool = True,
                     progress: bool = True):
    """Transfer readouts of every network onto every target, aggregated over seeds.

    Runs :func:`vision.transfer_table` (the last ``n_test`` rows held out; floor = the
    mean training target's cosine with each held-out target) and averages each group's
    networks (seeds).

    Parameters
    ----------
    network_feats : dict of str to array-like of shape (n_images, n_features)
        Frozen features of each network on the same images.
    targets : dict of str to array-like of shape (n_images, n_targets)
        Target name → targets (binary targets get a sigmoid/BCE readout).
    n_test : int
        Held-out rows (the last ones).
    groups : dict of str to list of str, optional
        Group → network names (default: ``blt_`` + the name up to ``_seed`` for names with
        a ``_seed`` suffix, else the name itself).
    seed : int, default=0
        Seeds the readouts' initial weights and batch order.
    %(transfer_epochs)s
    %(transfer_lr)s
    %(transfer_batch_size)s
    %(cache)s
        Reuses the readouts of identical features, targets and settings (kind
        ``"transfer"``).
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the readouts (per target and feature width; none when cached).

    Returns
    -------
    per_network : pandas.DataFrame
        ``features, target, kind, score, floor, map``.
    summary : pandas.DataFrame
        Indexed by ``(network, target)``: ``score`` (seed mean), ``score_min``,
        ``score_max``, ``n_seeds``, ``floor``, ``above_floor``, ``map``.
    """
    per = _cached_transfer_table(network_feats, targets, n_test, seed=seed, epochs=epochs, lr=lr,
                                 batch_size=batch_size, cache=cache, progress=progress)
    if groups is None:
        groups = {}
        for name in network_feats:
            groups.setdefault(f"blt_{name.split('_seed')[0]}" if "_seed" in name else name, []).append(name)
    inv = {m: g for g, ms in groups.items() for m in ms}
    per["network"] = per["features"].map(inv).fillna(per["features"])
    summary = per.groupby(["network", "target"], sort=False).agg(
        score=("score", "mean"), score_min=("score", "min"), score_max=("score", "max"),
        n_seeds=("score", "size"), floor=("floor", "first"), map=("map", "mean"))
    summary["above_floor"] = summary["score"] - summary["floor"]
    return per, summary[["score", "score_min", "score_max", "n_seeds", "floor", "above_floor", "map"]]


# --------------------------------------------------------------------------- size sweep
def size_alignment_table(df, n_images: dict, value: str = "r_normalised", rois=None, seeds=None):
    """Brain alignment (mean over subjects ± SEM) per network and ROI, with its training size.

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy RSA table with ``model`` in ``n_images``.
    n_images : dict of str to int
        Model → number of training images.
    value : str, default="r_normalised"
        The score column.
    rois : list of str, optional
        ROIs kept (``None``: all).
    seeds : dict of str to int, optional
        Model → its seed (e.g. ``{k: n.meta["seed"] for k, n in sweep.items()}``), for a
        sweep with several seeds: adds a ``seed`` column.

    Returns
    -------
    table : pandas.DataFrame
        ``model, n_train, [seed,] roi, mean, sem, n_subjects`` sorted by size (then seed).
    """
    import pandas as pd

    d = df[df["model"].isin(list(n_images))]
    if rois is not None:
        d = d[d["roi"].isin(list(rois))]
    g = d.groupby(["model", "roi"], sort=False)[value]
    out = pd.DataFrame({"mean": g.mean(), "sem": g.sem(ddof=1), "n_subjects": g.count()}).reset_index()
    out.insert(1, "n_train", out["model"].map(n_images).astype(int))
    order = ["n_train", "roi"]
    if seeds is not None:
        missing = sorted(set(out["model"]) - set(seeds))
        if missing:
            raise ValueError(f"seeds: no seed for the models {missing}")
        out.insert(2, "seed", out["model"].map(seeds).astype(int))
        order = ["n_train", "seed", "roi"]
    return out.sort_values(order, kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- paper numbers

def paper_comparison_table(df, ours, value: str = "r_normalised", rois=("ventral", "lateral", "parietal")):
    """Our models' ROI RSA next to the paper's matching numbers (§7), like with like only.

    Each of our models gets the paper's number only where the paper scored the same kind of
    model trained the same way (:func:`~brainllm_utils.chapters.reference.paper_reference`);
    otherwise its ``paper`` is NaN and ``note`` says why (e.g. ``blt_multihot``: the paper's
    category network is an ecoset-trained BLT-vNet, not a COCO multi-hot one).

    Parameters
    ----------
    df : pandas.DataFrame
        Tidy RSA table (seed-averaged): ``model``, ``roi`` and ``value``.
    ours : list of str, or dict of str to str
        Our models, e.g. ``["blt_mpnet", "blt_multihot", "clip_rn50"]``; or a mapping paper
        row (:data:`~brainllm_utils.chapters.reference.PAPER_ROI_RSA`) → our model, which
        must be the reference data's pairing (a ValueError names the model's own match, or
        why it has none).
    value : str, default="r_normalised"
        The score column.
    rois : sequence of str, default=("ventral", "lateral", "parietal")
        ROIs, in this order.

    Returns
    -------
    table : pandas.DataFrame
        :func:`~brainllm_utils.chapters.reference.paper_comparison`: indexed by ``(model,
        item)`` (item = ROI), columns ``ours`` (subject mean), ``paper`` (NaN without a
        match), ``paper_low``, ``paper_high``, ``paper_row``, ``paper_trained``, ``source``
        and ``note``.
    """
    if isinstance(ours, dict):
        for row, model in ours.items():
            ref = paper_reference(str(model), next(iter(rois)))
            if ref.paper_row != row:
                raise ValueError(f"ours: the paper's row {row!r} is not {model!r}'s match ("
                                 + (f"its match is {ref.paper_row!r}" if ref.paper_row else ref.note)
                                 + "); pass our model names as a list")
        ours = list(ours.values())
    if isinstance(ours, str) or not all(isinstance(m, str) for m in ours) or not len(ours):
        raise ValueError(f"ours={ours!r}: expected a non-empty list of model names")
    if value not in df.columns:
        raise ValueError(f"value={value!r}: not a column of df ({list(df.columns)})")
    return paper_rsa_comparison(df, list(ours), value=value, rois=rois)
