"""Any model against the brain: every feature space (× layer) scored by the paper's ROI RSA and
encoding, noise-ceiling normalised, as one tidy table.

A *model* here is a feature-space name: anything :func:`brainllm_utils.features.build`
resolves (``mpnet``, ``sbert:<name>``, the RQ2 controls, and any space registered later, e.g.
a Hugging Face model at one hidden layer), ``"truth:<space>"`` for a planted space of the
sandbox, or a name whose features are given as arrays (``features=``: a vision model's
activations at one layer, computed elsewhere). A layer sweep is several names, one per layer.

Both scores are the chapters' own machinery, unchanged:

- **ROI RSA** (chapter 02, :func:`~brainllm_utils.chapters.ch02_rsa.subject_rsa_table`): the
  subject's saved sample sets, Pearson r between correlation-distance RDMs, mean over sets;
  normalised by the subject's leave-one-subject-out ceiling
  (:func:`~brainllm_utils.chapters.ch02_rsa.loso_ceilings`, mean RDM of the others), NaN when
  that ceiling is not positive or with a single subject.
- **Encoding** (chapter 03, :func:`~brainllm_utils.chapters.ch03_encoding.fit_encoders`, or
  the paper's single fraction, :func:`~brainllm_utils.chapters.ch03_encoding.fit_encoders_fracridge`):
  per subject, trained on its own images, tested on the shared images, on the vertices of the
  chosen ROIs; the value is the mean test r over an ROI's vertices, the ceiling the mean of
  the repeat-based noise ceiling ``sqrt(NC/100)`` over the same vertices
  (:func:`~brainllm_utils.chapters.ch03_encoding.noise_ceiling_r`, the ceiling chapter 03
  reports each ROI's fraction of), NaN where it is at most :data:`ENCODING_MIN_CEILING` (the
  rule of :func:`~brainllm_utils.chapters.ch03_encoding.ceiling_summary`).

Caches are the chapters' (sample sets, embeddings, encoders keyed on the betas, the features'
content and every argument), so a model the chapters already scored with the same settings
costs a file read.
"""

from __future__ import annotations

import contextlib
import json
import re
from dataclasses import dataclass, field

import numpy as np

from .. import features as _features_pkg
from .._utils.docs import fill_doc
from .._utils.numeric import check_int
from . import _common
from ._common import _progress_bar, build_feature_table, resolve_subjects, rsa_design
from ._common import subject_image_ids
from .ch02_rsa import loso_ceilings, subject_rsa_table
from .ch03_encoding import DEFAULT_ALPHAS, fit_encoders, fit_encoders_fracridge, noise_ceiling_r

__all__ = ["METRICS", "ENCODERS", "TABLE_COLUMNS", "SUMMARY_COLUMNS", "ENCODING_MIN_CEILING",
           "ModelComparison", "model_layer", "compare_models", "summarise_models"]

#: The scores of :func:`compare_models`: chapter 02's ROI RSA and chapter 03's encoding.
METRICS = ("rsa", "encoding")
#: Encoding protocols: ``"ridge"`` (one penalty per vertex, chapter 03's encoders) or
#: ``"fracridge"`` (the paper's single fractional-ridge fraction per subject).
ENCODERS = ("ridge", "fracridge")
#: Columns of :attr:`ModelComparison.table`, in order.
TABLE_COLUMNS = ["model", "base", "layer", "roi", "subject", "metric", "value", "ceiling",
                 "normalised"]
#: Columns of :attr:`ModelComparison.summary`, in order.
SUMMARY_COLUMNS = ["metric", "model", "base", "layer", "roi", "n_subjects", "mean", "sem",
                   "ceiling", "normalised_mean", "normalised_sem"]
#: An ROI's encoding score is normalised only where its mean repeat-based ceiling exceeds this
#: (chapter 03's rule for the fraction of the ceiling).
ENCODING_MIN_CEILING = 0.05

_LAYER = re.compile(r"([?&])layer=([^&]*)")
#: prefixes of text feature spaces whose ``:`` is not a vision layer's
_TEXT_PREFIXES = ("sbert", "hf", "precomputed", "truth")


@dataclass
class ModelComparison:
    """Result of :func:`compare_models`: the tidy scores and their summary across subjects.

    Unpacks as ``table, summary = compare_models(...)``.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model, ROI, subject and metric (:data:`TABLE_COLUMNS`), sorted by
        metric, model, ROI and subject in the order they were asked for: ``model`` (the
        name as given), ``base`` and ``layer`` (:func:`model_layer`), ``roi``, ``subject``,
        ``metric`` (:data:`METRICS`), ``value`` (RSA r, or mean test r over the ROI's
        vertices), ``ceiling`` (the subject's ceiling for that ROI and metric) and
        ``normalised`` (``value / ceiling``; NaN where there is no usable ceiling).
    summary : pandas.DataFrame
        :func:`summarise_models` of ``table``.
    ceilings : dict of str to pandas.DataFrame
        Per metric, the ceilings used: ``"rsa"`` the LOSO table of
        :func:`~brainllm_utils.chapters.ch02_rsa.loso_ceilings` (absent with one subject),
        ``"encoding"`` ``subject, roi, ceiling, n_vertices``.
    """

    table: object
    summary: object
    ceilings: dict = field(default_factory=dict)

    def __iter__(self):
        return iter((self.table, self.summary))


def model_layer(name: str, vision: bool = False):
    """The model and the hidden layer a feature-space name encodes.

    A layer is the ``layer=<value>`` option of a name's query part, the syntax of a layer
    sweep (``hf:<model>?layer=6&pooling=mean``; ``features.layer_sweep`` writes such names,
    with a ``sweep=`` option, which the family name leaves out too);
    with ``vision=True``, also the part after the first ``:`` of a vision model's
    ``"<name>:<layer>"`` (the names of ``vision.model_features``). Integers are returned as
    ``int``, anything else (a vision layer such as ``conv5``) as ``str``.

    Parameters
    ----------
    name : str
        A feature-space name.
    vision : bool, default=False
        Read ``"<name>:<layer>"`` as a vision model's layer.

    Returns
    -------
    base : str
        The name without its layer option (the row's model family).
    layer : int, str or float
        The layer, or NaN when the name encodes none.

    Examples
    --------
    >>> model_layer("hf:gpt2?layer=3&pooling=last")
    ('hf:gpt2?pooling=last', 3)
    >>> model_layer("hf:gpt2?layer=0&pooling=last&sweep=all")
    ('hf:gpt2?pooling=last', 0)
    >>> model_layer("alexnet?layer=conv5")
    ('alexnet', 'conv5')
    >>> model_layer("mpnet")
    ('mpnet', nan)
    >>> model_layer("mynet:layer4", vision=True)
    ('mynet', 'layer4')
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty feature-space name (str), got {name!r}")
    m = _LAYER.search(name)
    if m is None:
        if vision and ":" in name.strip(":"):
            base, raw = name.split(":", 1)
            return base, int(raw) if re.fullmatch(r"-?\d+", raw) else raw
        return name, np.nan
    raw = m.group(2)
    head, _, query = name.partition("?")
    # the family: the name without its layer and sweep options (every layer of a sweep alike)
    kept = [kv for kv in query.split("&") if kv.split("=", 1)[0] not in ("layer", "sweep")]
    base = head + ("?" + "&".join(kept) if kept else "")
    layer = int(raw) if re.fullmatch(r"-?\d+", raw) else raw
    return base, layer


# ----------------------------------------------------------------------------- validation
def _check_models(models) -> list[str]:
    if isinstance(models, str) or not isinstance(models, (list, tuple)) or not models:
        raise ValueError(f"models={models!r}: expected a non-empty list of feature-space names")
    bad = [m for m in models if not isinstance(m, str) or not m]
    if bad:
        raise ValueError(f"models: {bad!r} are not feature-space names (non-empty str)")
    dup = sorted({m for m in models if list(models).count(m) > 1})
    if dup:
        raise ValueError(f"models: {dup} given more than once (each model once)")
    return list(models)


def _check_registry(name: str) -> None:
    """The registry's error for an unknown name; an ``sbert:`` model must be on this machine, an
    ``hf:`` name must fit its model's config."""
    try:
        _features_pkg.lookup(name)
    except ValueError as err:
        raise ValueError(f"models: {err}") from None
    if name.startswith("sbert:"):
        try:
            _features_pkg.resolve_model(name.split(":", 1)[1])
        except _features_pkg.ModelNotFoundError as err:
            raise ValueError(f"models: {name!r} is not installed on this machine ({err})") from None
    if name.startswith("hf:"):  # the model's config, layer and options, without its weights
        try:
            _features_pkg.check_text_model_name(name)
        except (ValueError, TypeError, _features_pkg.ModelNotFoundError) as err:
            raise ValueError(f"models: {err}") from None


def _check_features(features, models) -> dict:
    """``{name: (ids, X)}`` given by the user: sorted distinct ids, finite 2-D X, names in models."""
    if features is None:
        return {}
    if not isinstance(features, dict):
        raise ValueError(f"features: expected a dict {{name: (ids, X)}}, got {type(features).__name__}")
    out = {}
    for name, pair in features.items():
        if name not in models:
            raise ValueError(f"features: {name!r} is not one of models ({models}); add it there")
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            raise ValueError(f"features[{name!r}]: expected a pair (ids, X)")
        ids = np.asarray(pair[0])
        X = np.asarray(pair[1])
        if ids.ndim != 1 or ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"features[{name!r}]: ids must be a non-empty 1-D array of int nsdIds, "
                             f"got {ids.dtype} of shape {ids.shape}")
        if np.any(np.diff(ids) <= 0):
            raise ValueError(f"features[{name!r}]: ids must be sorted and distinct")
        if X.ndim != 2 or X.shape[0] != ids.size or X.shape[1] < 1:
            raise ValueError(f"features[{name!r}]: X must have shape ({ids.size}, n_features ≥ 1) "
                             f"(one row per id), got {X.shape}")
        if not np.issubdtype(X.dtype, np.number) or not np.isfinite(X).all():
            raise ValueError(f"features[{name!r}]: X must be finite numbers (no NaN or inf)")
        out[name] = (ids.astype(np.int64), X.astype(np.float32))
    return out


def _check_rois(nsd, rois, atlas) -> list[str]:
    if not isinstance(atlas, str):
        raise ValueError(f"atlas={atlas!r}: expected an atlas name (str)")
    names = [n for k, n in sorted(nsd.roi_labels(atlas).items()) if k > 0]
    if rois is None:
        return names
    if isinstance(rois, str) or not isinstance(rois, (list, tuple)) or not rois:
        raise ValueError(f"rois={rois!r}: expected a non-empty list of labels of atlas {atlas!r}")
    bad = [r for r in rois if r not in names]
    if bad or len(set(rois)) != len(rois):
        raise ValueError(f"rois: {bad or rois} — expected distinct labels of atlas {atlas!r}: {names}")
    return list(rois)


def _check_alphas(alphas) -> np.ndarray:
    a = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
    if a.ndim != 1 or a.size == 0 or not np.isfinite(a).all() or np.any(a <= 0):
        raise ValueError(f"alphas: expected a non-empty 1-D array of finite penalties > 0, got {alphas!r}")
    return a


def _cover(name, ids, needed, what) -> None:
    missing = np.setdiff1d(needed, ids)
    if missing.size:
        raise ValueError(f"features[{name!r}]: {missing.size} of the {needed.size} images {what} have "
                         f"no row (e.g. nsdIds {missing[:5].tolist()})")


@contextlib.contextmanager
def _as_feature_space(nsd, arrays: dict):
    """Serve precomputed ``{name: (ids, X)}`` to chapter 03's encoders for this block only.

    The encoders read features through the chapters' in-process memo
    (:func:`~brainllm_utils.chapters._common._features`, key: root, name, options); an entry
    covering every image the encoders ask for is served without building anything. The
    previous entries are restored on exit (a registered name's memo is untouched after).
    """
    memo = _common._FEATURE_MEMO
    saved = {}
    try:
        for name, (ids, X) in arrays.items():
            key = (str(nsd.root), name, json.dumps({}, sort_keys=True, default=str))
            saved[key] = memo.get(key)
            memo[key] = (ids, X)
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                memo.pop(key, None)
            else:
                memo[key] = old


# ----------------------------------------------------------------------------- scoring
@fill_doc
def compare_models(nsd, models, subjects=None, rois=None, atlas: str = "streams",
                   metrics=METRICS, encoder: str = "ridge", set_size: int = 100,
                   n_sets: int | None = None, alphas=DEFAULT_ALPHAS, cv: int = 5, features=None,
                   feature_options: dict | None = None, device: str = "auto", cache=True,
                   sessions=None, results_dir=None, seed: int = 0,
                   progress: bool = True) -> ModelComparison:
    """Score every model in the paper's ROI RSA and encoding, noise-ceiling normalised.

    Every model goes through the same sample sets, subjects, ROIs, training and test images:
    ROI RSA as chapter 02 (:func:`~brainllm_utils.chapters.ch02_rsa.subject_rsa_table`,
    normalised by each subject's leave-one-subject-out ceiling), encoding as chapter 03
    (:func:`~brainllm_utils.chapters.ch03_encoding.fit_encoders` on the vertices of ``rois``,
    mean test r per ROI, normalised by the mean repeat-based noise ceiling of the same
    vertices). See the module's docstring for the rules.

    Parameters
    ----------
    %(nsd)s
    models : list of str
        Feature-space names, each once: registry names
        (:func:`~brainllm_utils.features.available`, including spaces registered later),
        ``"truth:<space>"`` on the sandbox, or keys of ``features``. A layer sweep is one name
        per layer (:func:`model_layer` reads the layer back). An unknown name raises the
        registry's ``ValueError`` before anything runs.
    %(subjects)s
    rois : list of str, optional
        Labels of ``atlas``; ``None``: every label. Encoders are fitted on their vertices.
    %(atlas_streams)s
    metrics : sequence of {"rsa", "encoding"}, default=("rsa", "encoding")
        The scores computed (:data:`METRICS`).
    encoder : {"ridge", "fracridge"}, default="ridge"
        ``"ridge"``: one penalty per vertex from ``alphas`` (chapter 03's encoders);
        ``"fracridge"``: the paper's single fraction per subject (``alphas`` not used).
    %(set_size)s
    %(n_sets)s
    %(alphas_encoding)s
    cv : int, default=5
        Contiguous K-fold cross-validation of the encoders' penalties (≥ 2).
    features : dict of str to (array-like, array-like), optional
        ``{name: (ids, X)}``: features computed elsewhere (e.g. a vision model's layer), rows
        = the sorted distinct nsdIds ``ids``, finite; each name must be in ``models``. They
        must cover the RSA sets' images and, for encoding, every analysed image of every
        subject (``ValueError`` naming the missing ones otherwise).
    feature_options : dict, optional
        Passed to the builders of the registry's spaces
        (:func:`~brainllm_utils.features.build`), e.g. ``{"device": "cuda"}``.
    %(device)s
    %(cache)s
    %(sessions)s
    %(results_dir)s
        Sample sets are saved under ``<results_dir>/rsa/<dataset key>/sampling/``.
    %(sets_seed)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the models.

    Returns
    -------
    result : ModelComparison
        ``table`` (:data:`TABLE_COLUMNS`, one row per model, ROI, subject and metric),
        ``summary`` (:func:`summarise_models`) and the ``ceilings`` used.

    Raises
    ------
    ValueError
        For an argument of the wrong kind or range (named in the message), an unknown model
        (the registry's message), or precomputed features that miss images.

    Examples
    --------
    >>> from brainllm_utils.nsd import NSD                    # doctest: +SKIP
    >>> table, summary = compare_models(NSD(), ["mpnet", "multihot"],
    ...                                 rois=["ventral", "lateral"], n_sets=1)  # doctest: +SKIP
    """
    import pandas as pd

    models = _check_models(models)
    features = _check_features(features, models)
    # names of arrays computed elsewhere: "<name>:<layer>" is a vision model's layer unless the
    # prefix is a text family's
    vision = {m for m in features if m.split(":", 1)[0] not in _TEXT_PREFIXES}
    for name in models:
        if name not in features and not name.startswith("truth:"):
            _check_registry(name)
    if isinstance(metrics, str) or not isinstance(metrics, (list, tuple)) or not metrics \
            or any(m not in METRICS for m in metrics) or len(set(metrics)) != len(metrics):
        raise ValueError(f"metrics={metrics!r}: expected a non-empty list of distinct {list(METRICS)}")
    if encoder not in ENCODERS:
        raise ValueError(f"encoder={encoder!r}: expected one of {list(ENCODERS)}")
    set_size = check_int(set_size, "set_size", min_value=3)
    n_sets = check_int(n_sets, "n_sets", min_value=1, allow_none=True)
    cv = check_int(cv, "cv", min_value=2)
    seed = check_int(seed, "seed", min_value=0)
    alphas = _check_alphas(alphas)
    if feature_options is not None and not isinstance(feature_options, dict):
        raise ValueError(f"feature_options: expected a dict or None, got {type(feature_options).__name__}")
    if not isinstance(progress, (bool, np.bool_)):
        raise ValueError(f"progress={progress!r}: expected a bool")
    opts = dict(feature_options or {})
    subjects = resolve_subjects(nsd, subjects)
    if not subjects:
        raise ValueError("subjects: no subject with data")
    rois = _check_rois(nsd, rois, atlas)

    # the planted spaces (sandbox) are read once over every image any score needs
    images = np.unique(np.concatenate([subject_image_ids(nsd, s, sessions=sessions) for s in subjects]))
    truth = [n for n in models if n.startswith("truth:") and n not in features]
    if truth:
        features.update({n: (images, X) for n, X in
                         build_feature_table(nsd, truth, images, progress=False).items()})
    if "encoding" in metrics:
        for name, (ids, _) in features.items():  # before anything is computed
            _cover(name, ids, images, "the encoders use (every subject's 3×-seen images)")
        # every image of every subject in one call per space, as chapter 03 builds them: the
        # same rows (bit for bit), so encoders the chapter fitted are found in the cache
        for name in _progress_bar([m for m in models if m not in features], "model features",
                                  progress, unit="model"):
            _common._features(nsd, name, images, **opts)
    rows, ceilings = [], {}
    if "rsa" in metrics:
        design, needed = rsa_design(nsd, subjects, set_size, seed, n_sets, results_dir, sessions)
        feats = {}
        for name in _progress_bar(models, "model features (RSA sets)",
                                  progress and "encoding" not in metrics, unit="model"):
            if name in features:
                _cover(name, features[name][0], needed, "of the RSA sample sets")
                feats[name] = features[name]
            else:
                feats[name] = (needed, _common._features(nsd, name, needed, **opts))
        loso = loso_ceilings(nsd, subjects, rois, atlas, sessions=sessions) if len(subjects) >= 2 else None
        if loso is not None:
            ceilings["rsa"] = loso
        df = subject_rsa_table(nsd, subjects, models, rois=rois, set_size=set_size, seed=seed,
                               n_sets=n_sets, device=device, atlas=atlas, features=feats,
                               ceilings=loso, results_dir=results_dir, sessions=sessions,
                               progress=False)
        for r in df.itertuples(index=False):
            rows.append(dict(model=r.model, roi=r.roi, subject=r.subject, metric="rsa",
                             value=float(r.r), ceiling=float(r.ceiling),
                             normalised=float(r.r_normalised)))
    if "encoding" in metrics:
        labels = nsd.roi_volume(subjects[0], atlas, "fsaverage").ravel()
        code = {v: k for k, v in nsd.roi_labels(atlas).items()}
        mask = np.isin(labels, [code[r] for r in rois])
        nc = noise_ceiling_r(nsd, subjects)
        enc_ceilings = []
        with _as_feature_space(nsd, features):
            for name in _progress_bar(models, f"encoders ({encoder})", progress, unit="model"):
                fopts = None if name in features else opts
                if encoder == "ridge":
                    enc = fit_encoders(nsd, subjects, feature=name, roi=mask, alphas=alphas, cv=cv,
                                       device=device, cache=cache, feature_options=fopts,
                                       sessions=sessions)
                else:
                    enc = fit_encoders_fracridge(nsd, subjects, feature=name, roi=mask, cv=cv,
                                                 device=device, cache=cache, feature_options=fopts,
                                                 sessions=sessions, progress=False)
                for k, s in enumerate(subjects):
                    for roi in rois:
                        sel = (labels == code[roi]) & np.isfinite(enc.r[k])
                        value = float(enc.r[k][sel].mean()) if sel.any() else np.nan
                        c = float(nc[k][sel].mean()) if sel.any() else np.nan
                        ok = np.isfinite(c) and c > ENCODING_MIN_CEILING
                        rows.append(dict(model=name, roi=roi, subject=s, metric="encoding", value=value,
                                         ceiling=c, normalised=value / c if ok else np.nan))
                        if name == models[0]:
                            enc_ceilings.append(dict(subject=s, roi=roi, ceiling=c,
                                                     n_vertices=int(sel.sum())))
                del enc
        ceilings["encoding"] = pd.DataFrame(enc_ceilings)
    table = pd.DataFrame(rows)
    parsed = {m: model_layer(m, vision=m in vision) for m in models}
    table.insert(1, "base", table["model"].map(lambda m: parsed[m][0]))
    table.insert(2, "layer", _layer_column(table["model"].map(lambda m: parsed[m][1])))
    # rows in the order asked for: metric, model, ROI, subject
    order = [{m: i for i, m in enumerate(v)} for v in (list(metrics), models, rois, subjects)]
    table = table[TABLE_COLUMNS].sort_values(
        ["metric", "model", "roi", "subject"],
        key=lambda col: col.map(order[["metric", "model", "roi", "subject"].index(col.name)]),
        kind="stable").reset_index(drop=True)
    return ModelComparison(table=table, summary=summarise_models(table), ceilings=ceilings)


def _layer_column(layers):
    """Layers as float (NaN where none) when all are numeric, else as objects (str / NaN)."""
    values = list(layers)
    if all(isinstance(v, (int, float, np.integer, np.floating)) for v in values):
        return np.asarray(values, dtype=np.float64)
    return np.asarray([v if isinstance(v, str) else (np.nan if v != v else str(v)) for v in values],
                      dtype=object)


def summarise_models(table):
    """Mean and SEM across subjects of every model, ROI and metric of a comparison table.

    Parameters
    ----------
    table : pandas.DataFrame
        :attr:`ModelComparison.table` (columns :data:`TABLE_COLUMNS`).

    Returns
    -------
    summary : pandas.DataFrame
        One row per metric, model and ROI, in the table's order (:data:`SUMMARY_COLUMNS`):
        ``n_subjects`` (finite values), ``mean`` and ``sem`` (standard deviation with
        ``ddof=1`` over ``sqrt(n_subjects)``; NaN with one subject) of ``value``,
        ``ceiling`` (mean over subjects), and ``normalised_mean`` / ``normalised_sem`` of
        ``normalised`` (over the subjects with a ceiling).
    """
    import pandas as pd

    missing = [c for c in TABLE_COLUMNS if c not in getattr(table, "columns", [])]
    if missing:
        raise ValueError(f"table: expected the columns of compare_models' table, missing {missing}")

    def sem(x):
        x = x[np.isfinite(x)]
        return float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else np.nan

    def mean(x):
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else np.nan

    rows = []
    for (metric, model, roi), g in table.groupby(["metric", "model", "roi"], sort=False):
        v, nv = g["value"].to_numpy(float), g["normalised"].to_numpy(float)
        rows.append(dict(metric=metric, model=model, base=g["base"].iloc[0], layer=g["layer"].iloc[0],
                         roi=roi, n_subjects=int(np.isfinite(v).sum()), mean=mean(v), sem=sem(v),
                         ceiling=mean(g["ceiling"].to_numpy(float)), normalised_mean=mean(nv),
                         normalised_sem=sem(nv)))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
