"""RQ2 against the brain (chapters 02 and 03): every control of the paper's RQ2 and other
sentence encoders, scored by ROI RSA and by encoding and compared with the main model.

RQ2 asks whether the brain match of the caption embedding comes from the whole caption or
from its words (``shared/docs/paper_methods.md`` §2; Fig. 3, Supp. Figs 9–11). The spaces
are built by :mod:`brainllm_utils.features`; this module decides which of them a run can
compute (:func:`check_rq2_spaces`), builds their features (:func:`rq2_features`), scores them
by encoding on ROI vertices (:func:`rq2_encoding_scores`; ROI RSA is
:func:`~brainllm_utils.chapters.ch02_rsa.subject_rsa_table` on the same sample sets) and
compares every space with the main model per ROI, paired across subjects
(:func:`rq2_comparison`).

- **Word vectors** (``fasttext_*``, ``glove_*``) need files the user downloads
  (:data:`VECTOR_FILES`); without one, their rows say :data:`NO_VECTOR_FILE` and are never
  dropped. A path that is given but is not a file is an error.
- **Other sentence encoders** (``sbert:<name>``) are any sentence-transformers model on this
  machine (a pip-packaged one, a local folder or a Hugging Face cache snapshot); a name that
  is not installed fails before anything runs, naming the parameter.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import features as _features
from .._utils.docs import fill_doc
from ._common import _features as _common_features
from ._common import _progress_bar, build_feature_table, resolve_subjects, subject_image_ids

__all__ = ["RQ2_SPACES", "SANDBOX_RSA_SPACES", "SANDBOX_ENCODING_SPACES", "VECTOR_FILES",
           "NO_VECTOR_FILE", "RQ2Plan", "rq2_kind", "vector_file", "check_rq2_spaces", "rq2_features",
           "rq2_comparison", "rq2_encoding_scores"]

#: Every RQ2 space of the paper (:data:`brainllm_utils.features.RQ2_SPACES`, §2), in the order of
#: the tables: the ``paper`` profile runs all of them (the chapters' ``feature_spaces`` controls
#: are compared as well).
RQ2_SPACES = _features.RQ2_SPACES
#: What the default (sandbox) book adds to chapter 02's ROI RSA (its ``feature_spaces`` hold
#: the category, word-average, noun and verb controls already); the word-vector spaces cost
#: nothing without a file and show how to add one.
SANDBOX_RSA_SPACES = ("mpnet_scrambled", "mpnet_adjectives", "mpnet_prepositions",
                      "sbert:all-MiniLM-L6-v2", "fasttext_all", "glove_all")
#: What the default (sandbox) book encodes on the streams vertices: the cheap spaces (word
#: classes embed only their vocabulary; MiniLM is ~8× faster than MPNet on a CPU).
SANDBOX_ENCODING_SPACES = ("multihot", "mpnet_word_avg", "mpnet_nouns", "mpnet_adjectives",
                           "mpnet_prepositions", "sbert:all-MiniLM-L6-v2", "fasttext_all", "glove_all")
#: The word-vector files the ``fasttext_*`` / ``glove_*`` spaces read: library →
#: (environment variable, file the paper used, where to get it).
VECTOR_FILES = {
    "fasttext": ("BRAINLLM_FASTTEXT", "crawl-300d-2M.vec",
                 "https://dl.fbaipublicfiles.com/fasttext/vectors-english/crawl-300d-2M.vec.zip "
                 "(1.5 GB zip, 4.5 GB unpacked)"),
    "glove": ("BRAINLLM_GLOVE", "glove.840B.300d.txt",
              "https://nlp.stanford.edu/data/glove.840B.300d.zip (2.0 GB zip, 5.6 GB unpacked)"),
}
#: The ``note`` of a word-vector space without a file.
NO_VECTOR_FILE = "not computed: no vector file given"


def rq2_kind(name: str) -> str:
    """The family of an RQ2 space, for tables and figures.

    Parameters
    ----------
    name : str
        A feature-space name.

    Returns
    -------
    kind : str
        ``"sentence encoder"`` (``sbert:*``, ``minilm``), ``"word vectors"`` (``fasttext_*``,
        ``glove_*``), ``"categories"``, ``"word average"``, ``"word class"``,
        ``"word class, as a sentence"``, ``"scrambled"`` or ``"other"``.

    Examples
    --------
    >>> rq2_kind("sbert:all-MiniLM-L6-v2"), rq2_kind("glove_all"), rq2_kind("mpnet_nouns")
    ('sentence encoder', 'word vectors', 'word class')
    """
    if name.startswith("sbert:") or name == "minilm":
        return "sentence encoder"
    if name.startswith(("fasttext_", "glove_")):
        return "word vectors"
    if name in ("multihot", "mpnet_category_all"):
        return "categories"
    if name == "mpnet_word_avg":
        return "word average"
    for group in _features.POS_GROUPS:
        if name == f"mpnet_{group}":
            return "word class"
        if name == f"mpnet_{group}_sentence":
            return "word class, as a sentence"
    if name == "mpnet_scrambled":
        return "scrambled"
    return "other"


def vector_file(lib: str, path=None) -> Path | None:
    """The word-vector file of ``lib``: ``path``, else its environment variable, else None.

    Parameters
    ----------
    lib : {"fasttext", "glove"}
        The library (:data:`VECTOR_FILES`).
    path : str or path-like, optional
        A file given by the user (a notebook's ``fasttext_path`` / ``glove_path``).

    Returns
    -------
    path : pathlib.Path or None
        The file, or None when neither ``path`` nor the variable is set.

    Raises
    ------
    FileNotFoundError
        When a file is given (or the variable set) but is not a file: the message names it
        and says where to get the paper's file.
    """
    if lib not in VECTOR_FILES:
        raise ValueError(f"lib={lib!r}: expected one of {sorted(VECTOR_FILES)}")
    env, name, url = VECTOR_FILES[lib]
    given = path if path not in (None, "") else os.environ.get(env) or None
    if given is None:
        return None
    p = Path(given).expanduser()
    if not p.is_file():
        src = "given" if path not in (None, "") else f"${env}"
        raise FileNotFoundError(f"{lib} word vectors: {p} ({src}) is not a file; the paper used {name}, "
                                f"from {url}")
    return p


@dataclass
class RQ2Plan:
    """Which RQ2 spaces a run computes, with what options, and which it cannot.

    Attributes
    ----------
    spaces : list of str
        Every space asked for, in order (the rows of the tables).
    runnable : list of str
        The spaces this run computes.
    options : dict of str to dict
        Per runnable space, the options of :func:`~brainllm_utils.features.build`
        (``vectors_path`` for word vectors).
    skipped : dict of str to str
        Space → why it is not computed (e.g. :data:`NO_VECTOR_FILE`).
    """

    spaces: list
    runnable: list
    options: dict = field(default_factory=dict)
    skipped: dict = field(default_factory=dict)


def check_rq2_spaces(spaces, fasttext_path=None, glove_path=None, main: str = "mpnet",
                     parameter: str = "rq2_spaces") -> RQ2Plan:
    """Check the RQ2 spaces of a run before anything is computed.

    Parameters
    ----------
    spaces : list of str
        Feature-space names (:func:`~brainllm_utils.features.available`; ``sbert:<name>``
        for any local sentence-transformers model). The main model and duplicates are
        left out.
    fasttext_path, glove_path : str or path-like, optional
        Word-vector files (default: ``$BRAINLLM_FASTTEXT`` / ``$BRAINLLM_GLOVE``; see
        :data:`VECTOR_FILES`). Without one, the spaces of that library are skipped with
        :data:`NO_VECTOR_FILE` (they stay in the tables).
    main : str, default="mpnet"
        The main model the spaces are compared with.
    parameter : str, default="rq2_spaces"
        The parameter named in error messages.

    Returns
    -------
    plan : RQ2Plan
        The spaces, those computed with their options, and those skipped with the reason.

    Raises
    ------
    ValueError
        For a name that is not a feature space, or an ``sbert:<name>`` model that is not
        installed on this machine (the message names ``parameter`` and how to get it).
    FileNotFoundError
        For a word-vector file that is given but is not a file.
    """
    if isinstance(spaces, str) or not all(isinstance(s, str) for s in spaces):
        raise ValueError(f"{parameter}={spaces!r}: expected a list of feature-space names")
    paths = {"fasttext": vector_file("fasttext", fasttext_path), "glove": vector_file("glove", glove_path)}
    names = [s for s in dict.fromkeys(spaces) if s != main]
    plan = RQ2Plan(spaces=names, runnable=[])
    for name in names:
        try:
            _features.lookup(name)
        except ValueError:
            raise ValueError(f"{parameter}: unknown feature space {name!r}; available: "
                             f"{_features.available()}") from None
        if name.startswith("sbert:"):
            model = name.split(":", 1)[1]
            try:
                _features.resolve_model(model)
            except _features.ModelNotFoundError as err:
                raise ValueError(f"{parameter}: {name!r}: the sentence-transformers model {model!r} is not "
                                 f"installed on this machine ({err})") from None
        lib = name.split("_", 1)[0]
        if rq2_kind(name) == "word vectors":
            if paths[lib] is None:
                plan.skipped[name] = NO_VECTOR_FILE
                continue
            plan.options[name] = {"vectors_path": str(paths[lib])}
        else:
            plan.options[name] = {}
        plan.runnable.append(name)
    return plan


@fill_doc
def rq2_features(nsd, plan: RQ2Plan, ids, device: str = "auto", names=None,
                 progress: bool = True) -> dict:
    """Features of the runnable RQ2 spaces over sorted ``ids``.

    Parameters
    ----------
    %(nsd)s
    plan : RQ2Plan
        From :func:`check_rq2_spaces`.
    ids : array-like of int of shape (n_images,)
        Sorted nsdIds (e.g. the images of the sample sets, :func:`rsa_design`).
    %(device)s
    names : list of str, optional
        Build only these (each one of ``plan.runnable``); default: every runnable space.
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the spaces.

    Returns
    -------
    features : dict of str to (ndarray, ndarray)
        ``{name: (ids, X)}`` as :func:`~brainllm_utils.chapters.ch02_rsa.subject_rsa_table`
        takes them.
    """
    ids = np.asarray(ids, dtype=np.int64)
    names = list(plan.runnable) if names is None else list(names)
    bad = [n for n in names if n not in plan.runnable]
    if bad:
        raise ValueError(f"rq2_features: {bad} are not runnable spaces of the plan ({plan.runnable})")
    out = {}
    for name in _progress_bar(names, "RQ2 spaces", progress):
        opts = dict(plan.options.get(name, {}))
        if rq2_kind(name) != "word vectors":
            opts["device"] = device
        out[name] = (ids, build_feature_table(nsd, [name], ids, **opts)[name])
    return out


def rq2_comparison(scores, plan: RQ2Plan | None = None, main: str = "mpnet", value: str = "r",
                   rois=None, q: float = 0.05, seed: int = 0, spaces=None):
    """Every RQ2 space against the main model per ROI, paired across subjects.

    For each ROI and space: the subjects' mean score of ``main`` and of the space, and a
    paired t-test (with an exact or seeded sign-flip test) of ``main − space`` over the
    subjects (:func:`~brainllm_utils.stats.pairwise_model_tests`). Correction:
    Benjamini–Hochberg FDR at ``q`` over the spaces compared within each ROI (on the
    paired t-test p). Spaces the run skipped keep a row, with the reason in ``note``.

    Parameters
    ----------
    scores : pandas.DataFrame
        Long table ``subject, roi, model`` and ``value`` (ROI RSA from
        :func:`~brainllm_utils.chapters.ch02_rsa.subject_rsa_table`, encoding from
        :func:`rq2_encoding_scores`).
    plan : RQ2Plan, optional
        Adds a row per skipped space (``plan.skipped``).
    main : str, default="mpnet"
        The main model.
    value : str, default="r"
        The score column.
    rois : list of str, optional
        ROIs in this order (default: those of ``scores``).
    q : float, default=0.05
        FDR level.
    seed : int, default=0
        Seed of the sign-flip test (random patterns only when 2^n_subjects > 10,000).
    spaces : list of str, optional
        Spaces compared, in order (default: ``plan.spaces``, else every model but ``main``).

    Returns
    -------
    table : pandas.DataFrame
        One row per ROI and space: ``roi, space, kind, n, main_mean, space_mean,
        mean_diff`` (main − space), ``t, p_ttest, p_signflip, p_fdr, significant, note``
        (``""`` when computed). With fewer than 2 subjects the tests are NaN and ``note``
        says so.
    """
    import pandas as pd

    from ..stats import pairwise_model_tests

    if main not in set(scores["model"]):
        raise ValueError(f"rq2_comparison: the main model {main!r} is not in the scores "
                         f"(models: {sorted(set(scores['model']))})")
    if value not in scores.columns:
        raise ValueError(f"rq2_comparison: value={value!r} is not a column of the scores")
    skipped = {} if plan is None else dict(plan.skipped)
    if spaces is None:
        spaces = plan.spaces if plan is not None else [m for m in dict.fromkeys(scores["model"]) if m != main]
    spaces = [s for s in dict.fromkeys(spaces) if s != main]
    have = set(scores["model"])
    missing = [s for s in spaces if s not in have and s not in skipped]
    if missing:
        raise ValueError(f"rq2_comparison: spaces {missing} have no scores and were not skipped")
    rois = list(dict.fromkeys(scores["roi"])) if rois is None else list(rois)
    computed = [s for s in spaces if s in have]
    d = scores[scores["roi"].isin(rois) & scores["model"].isin([main] + computed)]
    n_sub = d["subject"].nunique()
    tests = None
    if computed and n_sub >= 2:
        tests = pairwise_model_tests(d, value=value, pairs=[(main, s) for s in computed], q=q,
                                     seed=seed).set_index(["roi", "model_b"])
    means = d.groupby(["roi", "model"])[value].mean()
    rows = []
    for roi in rois:
        for s in spaces:
            row = dict(roi=roi, space=s, kind=rq2_kind(s), n=np.nan, main_mean=float(means.get((roi, main), np.nan)),
                       space_mean=np.nan, mean_diff=np.nan, t=np.nan, p_ttest=np.nan, p_signflip=np.nan,
                       p_fdr=np.nan, significant=False, note="")
            if s in skipped:
                row["note"] = skipped[s]
            elif (roi, s) not in means.index:
                row["note"] = "not computed: no score in this ROI"
            else:
                row["space_mean"] = float(means[(roi, s)])
                row["mean_diff"] = row["main_mean"] - row["space_mean"]
                if tests is None:
                    row.update(n=n_sub, note="not tested: needs ≥ 2 subjects")
                else:
                    t = tests.loc[(roi, s)]
                    row.update(n=int(t["n"]), mean_diff=float(t["mean_diff"]), t=float(t["t"]),
                               p_ttest=float(t["p_ttest"]), p_signflip=float(t["p_signflip"]),
                               p_fdr=float(t["p_fdr"]), significant=bool(t["significant"]))
            rows.append(row)
    out = pd.DataFrame(rows)
    out.attrs.update(main=main, value=value, q=q,
                     correction=f"Benjamini–Hochberg FDR at q = {q} over the {len(computed)} spaces "
                                "compared within each ROI (paired t-test p)")
    return out


@fill_doc
def rq2_encoding_scores(nsd, subjects=None, plan: RQ2Plan | None = None, main: str = "mpnet",
                        roi="streams", atlas: str = "streams", alphas=None, cv: int = 5,
                        device: str = "auto", cache: bool = True, sessions=None,
                        progress: bool = True):
    """Mean test r per ROI of an encoder per subject for the main model and each RQ2 space.

    Each space is fitted with the main model's protocol
    (:func:`~brainllm_utils.chapters.ch03_encoding.fit_encoders`: per-subject training
    images, per-vertex penalties chosen by ``cv``-fold CV, Pearson r on the shared test
    images), on the vertices of ``roi`` only (the streams ROIs, not the whole surface,
    which keeps ~16 spaces affordable); the main model is fitted on the same vertices.

    Parameters
    ----------
    %(nsd)s
    %(subjects)s
    plan : RQ2Plan, optional
        From :func:`check_rq2_spaces` (default: no space beyond ``main``).
    main : str, default="mpnet"
        The main model.
    roi : str or ndarray of bool, default="streams"
        Vertices encoded (an atlas name: the union of its labels).
    %(atlas_streams)s
        The ROIs of the table.
    alphas : array-like, optional
        Ridge penalties (default:
        :data:`~brainllm_utils.chapters.ch03_encoding.DEFAULT_ALPHAS`).
    %(cv)s
    %(device)s
    %(cache)s
    %(sessions)s
    progress : bool, default=True
        Show a progress bar (tqdm; a widget in a notebook) over the spaces (one encoder per space and subject).

    Returns
    -------
    scores : pandas.DataFrame
        ``subject, roi, model, r`` (mean test r over the ROI's vertices), ``main`` first.
    """
    import pandas as pd

    from .ch03_encoding import DEFAULT_ALPHAS, fit_encoders, roi_table

    subjects = resolve_subjects(nsd, subjects)
    alphas = DEFAULT_ALPHAS if alphas is None else alphas
    spaces = [main] + ([] if plan is None else list(plan.runnable))
    # every subject's images at once: a space is built once (a word-vector file is read once,
    # not once per subject), then each subject's rows come from the in-process memo
    union = np.unique(np.concatenate([subject_image_ids(nsd, s, sessions=sessions) for s in subjects]))
    frames = []
    for name in _progress_bar(spaces, "RQ2 encoders", progress, unit="space"):
        opts = {} if plan is None else plan.options.get(name, {})
        _common_features(nsd, name, union, **opts)
        enc = fit_encoders(nsd, subjects, feature=name, roi=roi, alphas=alphas, cv=cv, device=device,
                           cache=cache, feature_options=opts, sessions=sessions)
        df = roi_table(nsd, enc.r, subjects, atlas, name="r")
        df.insert(2, "model", name)
        frames.append(df)
        del enc
    return pd.concat(frames, ignore_index=True)
