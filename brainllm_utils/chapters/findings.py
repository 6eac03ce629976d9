"""Each chapter's key results, recorded for the book's summary page, and the criteria they
are judged by.

A chapter ends with one call of :func:`record`: a list of findings, each one row of the
summary table — which research question, which analysis, what this run recovered, what the
sandbox's planted truth says it should recover (or what a real-NSD run is compared against),
whether the two agree, and the paper's reference number for real NSD. :func:`load` collects
them for the summary notebook.

Every row of the scorecard is computed here, by one public function per row (``*_row``),
from the chapter's results passed as explicit arguments; it returns one :func:`finding` or
``None`` when the row does not apply to this run. One function per chapter assembles that
chapter's rows in the book's order (:func:`feature_space_rows`, :func:`rsa_rows`,
:func:`encoding_rows`, :func:`decoding_rows`, :func:`image_to_llm_rows`). The thresholds are
the module constants below (or documented keyword arguments). Each row has two branches: the
generated sandbox (judged against its planted truth) and real NSD (judged against the
paper's claim).

Comparative criteria are statistical tests, paired across subjects, with the correction
stated in the row: the LLM- vs category-trained network per ROI (paired t, Holm over the
ROIs, :func:`objective_tests`), the encoder against a shuffled-caption baseline (paired t),
the training-size trend (per-seed slopes, t-test across ≥ :data:`MIN_SWEEP_SEEDS` seeds),
the winners of ``winner_table`` (all pairs, corrected within an ROI). A criterion about an
ROI is computed over that ROI's vertices only. Every ``*_row`` function has a case that
makes it disagree and one that makes it agree in ``tests/test_findings.py`` (a meta-test
enumerates them).

A row may also carry the numbers behind it, as a ``values`` table (a list of
:data:`VALUE_FIELDS` records; :func:`roi_rsa_values`): chapter 05's model-comparison row
carries every network's and comparison model's normalised ROI RSA per ROI, the numbers the
paper tabulates. :func:`load` leaves them out (the summary scorecard shows only the rows);
:func:`load_values` reads them, for the reproduction page
(:mod:`~brainllm_utils.chapters.reproduction`).

Files: ``<results>/findings/<dataset key>/<run>.json`` (``<results>`` = ``get_results_dir()``;
the dataset key separates the sandbox from a real NSD copy; ``<run>`` is the notebook's
``run_name`` parameter, which :mod:`brainllm_utils.batch` sets to the output notebook's
name, else the chapter), written atomically.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from .._utils.numeric import check_float
from .._utils.paths import atomic_write_text, get_results_dir
from ..encoding import embedding_correlation
from ..stats import paired_contrast_tests, paired_ttest, trend_over_seeds
from ._common import dataset_key
from .reference import PAPER_ROI_RSA, paper_reference

__all__ = [
    "FIELDS", "RQS", "finding", "record", "load", "findings_dir", "NEEDS_SUBJECTS", "not_computed",
    "group_size", "VALUE_FIELDS", "ROI_RSA_MEASURES", "roi_rsa_values", "load_values",
    # thresholds and row settings
    "ZERO_DISTANCE", "MAX_FEATURE_SPACE_ROWS", "REVERSAL_MODELS", "BAG_OF_WORDS_MODELS",
    "RDM_COMPARISONS", "PAPER_RSA_ROIS", "CATEGORY_CONTROLS", "SEARCHLIGHT_Q", "P_UNCORRECTED",
    "FDR_SLACK", "BEYOND_VENTRAL_ROIS", "NC_MIN_R", "AGREEMENT_MAX_ABS_R", "FRACTION_MIN_R",
    "MOSTLY_POSITIVE", "CAPTION_METRICS", "IDENTIFICATION_CHANCE", "PLANTED_CAPTION_SHARE",
    "SENTENCE_SPACE", "CAPTION_SPACES", "FOUND", "ABSENT",
    "TRANSFER_TARGETS", "OBJECTIVE_CORRECTION", "ALPHA", "MIN_SWEEP_SEEDS",
    # chapter 01
    "closest_planted_space_row", "role_reversal_row", "bag_of_words_row", "model_rdm_row",
    "feature_space_rows",
    # chapter 02
    "roi_rsa_row", "searchlight_row", "paper_searchlight_row", "category_control_row", "oracle_winner_row", "rsa_rows",
    # chapter 03
    "encoding_fdr_row", "encoding_ceiling_row", "roi_ceiling_fraction_row",
    "ceiling_fraction_fit_row", "variance_partition_row", "in_silico_contrast_row",
    "shuffled_baseline_row", "encoding_rows",
    # chapter 04
    "decoding_accuracy_row", "identification_row", "caption_metric_row",
    "single_roi_decoding_row", "BEYOND_LABELS_ROI", "beyond_labels_row", "decoding_rows",
    # chapter 05
    "objective_tests", "network_objective_row", "best_model_row", "transfer_row", "training_size_row",
    "image_to_llm_rows",
]

#: research questions, in the book's order
RQS = {
    "RQ1": "Caption embeddings match brain representations and predict single vertices",
    "RQ2": "The match comes from the whole caption, beyond single words",
    "RQ3": "Captions can be reconstructed from brain activity",
    "RQ4": "Networks trained to output caption embeddings align best with the brain",
}
#: one row of the summary table
FIELDS = ("rq", "chapter", "analysis", "recovered", "expected", "agrees", "paper")
#: one number of a row's ``values`` table (:func:`roi_rsa_values`, :func:`load_values`)
VALUE_FIELDS = ("quantity", "model", "roi", "value", "measure")
#: 05: the measures a ROI RSA value can be (the chapter's score column) → what it is
ROI_RSA_MEASURES = {
    "r_normalised": ("noise-ceiling-normalised r: per subject, the ROI RSA r (Pearson over each sample set's "
                     "RDM pairs, mean over the sets) divided by the subject's leave-one-subject-out ceiling "
                     "(Pearson of its shared-test-image RDM with the mean RDM of the other subjects); "
                     "networks averaged over seeds per subject; mean over subjects"),
    "r": ("plain r, not normalised (one subject: no leave-one-subject-out ceiling): the ROI RSA r "
          "(Pearson over each sample set's RDM pairs, mean over the sets); networks averaged over seeds"),
}

# ---------------------------------------------------------------------------- thresholds
#: 01: a reversal / random distance ratio below this is zero (the same words, the same vector)
ZERO_DISTANCE = 1e-3
#: 01: the model-RDM rows fill the chapter's rows up to this many
MAX_FEATURE_SPACE_ROWS = 6
#: 01: sentence models probed with role-reversed pairs
REVERSAL_MODELS = ("mpnet", "minilm")
#: 01: bag-of-words spaces (a role reversal leaves them unchanged)
BAG_OF_WORDS_MODELS = ("mpnet_word_avg", "multihot", "mpnet_category_all")
#: 01: spaces whose RDM is compared with mpnet's, in order (the first ones that fit)
RDM_COMPARISONS = ("mpnet_word_avg", "mpnet_scrambled", "minilm")
#: 02: the ROIs with the paper's reference numbers
PAPER_RSA_ROIS = ("ventral", "lateral", "parietal")
#: 02: category controls of the paired comparison, the first one present is used
CATEGORY_CONTROLS = ("mpnet_category_all", "multihot")
#: 02: FDR level of the group searchlight test (as the chapter runs it)
SEARCHLIGHT_Q = 0.05
#: 02: real NSD: the paper's searchlight is significant in ventral cortex and beyond it, in
#: one of these streams ROIs at least ("well beyond ventral cortex", Fig. 1b)
SEARCHLIGHT_BEYOND_VENTRAL = ("lateral", "parietal")
#: 02: sandbox: the share of nsdgeneral vertices significant (positive) must be at least this
#: many times the share outside it (no signal is planted outside nsdgeneral; the projection's
#: interpolation and the FDR's false discoveries put a few significant vertices there)
SEARCHLIGHT_ENRICHMENT = 5.0
#: 03: uncorrected p threshold reported next to the FDR count
P_UNCORRECTED = 0.05
#: 03: sandbox: at least 1 − FDR_SLACK × q of the FDR-significant vertices lie in nsdgeneral
FDR_SLACK = 2
#: 03: real NSD: streams ROIs beyond ventral cortex that must hold significant vertices
BEYOND_VENTRAL_ROIS = ("early", "lateral", "parietal")
#: 03: sandbox: encoding r must correlate above this with the noise ceiling over vertices
NC_MIN_R = 0.5
#: 03: sandbox: |r| with the inter-participant agreement must stay below this
AGREEMENT_MAX_ABS_R = 0.1
#: 03: sandbox: r(expected, observed fraction of ceiling) over ROIs must exceed this
FRACTION_MIN_R = 0.5
#: 04: fraction of test images with r > 0 that makes decoding "mostly positive"
MOSTLY_POSITIVE = 0.5
#: 04: caption metrics scored, (column, label), in the rows' order
CAPTION_METRICS = (("cider_d", "CIDEr-D"), ("bleu4", "BLEU-4"))
#: 04: chance of pairwise identification
IDENTIFICATION_CHANCE = 0.5
#: 04: sandbox: an ROI carries caption signal when its planted category + interaction weight
#: exceeds this
PLANTED_CAPTION_SHARE = 0.5
#: sandbox: the planted space of the positive control, a sentence encoder's embedding of the
#: captions (``synth``'s ``sentence_space``); where a truth card plants it in an ROI, the full
#: caption carries more than its words there (the paper's hypothesis is true in that ROI)
SENTENCE_SPACE = "sentence"
#: sandbox: the planted spaces whose content captions describe (objects, actions, and the
#: sentence space where the positive control plants it)
CAPTION_SPACES = ("category", "interaction", SENTENCE_SPACE)
#: sandbox: how a criterion that the truth card flips between the two worlds
#: (:func:`category_control_row`, :func:`sentence_controls_row`) starts its expected text:
#: the paper's effect must be found (a sentence space is planted) or must be absent (none is);
#: :func:`compare_worlds` reads them
FOUND, ABSENT = "found: ", "absent: "
#: 05: targets of the transfer readout rows, in order
TRANSFER_TARGETS = ("mpnet", "multihot")
#: 05: correction of the LLM- vs category-trained paired tests over the ROIs
#: (:data:`brainllm_utils.stats.CORRECTIONS`)
OBJECTIVE_CORRECTION = "holm"
#: 03, 05: level of the paired tests (after correction)
ALPHA = 0.05
#: 05: seeds of the training-size sweep below which its trend has no criterion
MIN_SWEEP_SEEDS = 3

#: the ``recovered`` text of a row that a run with one subject cannot compute (a group test,
#: a leave-one-subject-out or inter-subject ceiling)
NEEDS_SUBJECTS = "not computed: needs ≥ 2 subjects"



def _roi_rsa_paper(model: str, roi: str) -> str:
    """The paper's matching normalised ROI RSA of ``model`` in ``roi`` (``reference``), or why none."""
    ref = paper_reference(model, roi)
    return f"{ref.value_text()} ({ref.paper_row})" if ref.matches else f"no published {model} value"


def finding(rq: str, analysis: str, recovered, expected: str = "", agrees=None,
            paper: str = "") -> dict:
    """One row of the summary table.

    Parameters
    ----------
    rq : str
        Research question, a key of :data:`RQS`.
    analysis : str
        What was measured.
    recovered : float or str
        This run's number or text; a float is written with 3 decimals (``"nan"`` for NaN).
    expected : str
        The planted truth (sandbox) or the criterion.
    agrees : bool or None
        Whether ``recovered`` meets ``expected``; None: no criterion.
    paper : str
        The paper's reference for real NSD.

    Returns
    -------
    dict
        ``rq, analysis, recovered, expected, agrees, paper`` (:func:`record` adds ``chapter``).
    """
    if rq not in RQS:
        raise ValueError(f"rq={rq!r}: expected one of {sorted(RQS)}")
    if isinstance(recovered, float):
        recovered = "nan" if math.isnan(recovered) else f"{recovered:.3f}"
    if agrees is not None:
        agrees = bool(agrees)
    return {"rq": rq, "analysis": str(analysis), "recovered": str(recovered),
            "expected": str(expected), "agrees": agrees, "paper": str(paper)}


def not_computed(rq: str, analysis: str, reason: str = NEEDS_SUBJECTS, expected: str = "",
                 paper: str = "") -> dict:
    """A row that this run could not compute, saying why (``agrees`` is None).

    Parameters
    ----------
    rq : str
        Research question, a key of :data:`RQS`.
    analysis : str
        What would have been measured.
    reason : str, default=NEEDS_SUBJECTS
        Written as the row's ``recovered`` value.
    expected : str
        The criterion the row would have been judged by.
    paper : str
        The paper's reference for real NSD.

    Returns
    -------
    dict
        A :func:`finding` with ``recovered = reason`` and ``agrees = None``.
    """
    return finding(rq, analysis, reason, expected=expected, agrees=None, paper=paper)


def group_size(table) -> int | None:
    """Subjects behind a group or paired test table (its ``n`` column; None without it).

    Parameters
    ----------
    table : pandas.DataFrame or None
        ``stats.group_tests`` or ``stats.pairwise_model_tests`` output.

    Returns
    -------
    n : int or None
        The smallest ``n`` of the table (0 when ``table`` is None or empty).
    """
    if table is None or not len(table):
        return 0
    if "n" not in table.columns:
        return None
    return int(np.nanmin(table["n"].to_numpy(dtype=float)))


def findings_dir(nsd, results_dir=None) -> Path:
    """The folder of ``nsd``'s findings: ``<results>/findings/<dataset key>``.

    Parameters
    ----------
    nsd : NSD
        The dataset (its key separates the sandbox from a real NSD copy).
    results_dir : path, optional
        Default: ``get_results_dir()``.

    Returns
    -------
    Path
    """
    return get_results_dir(results_dir) / "findings" / dataset_key(nsd)


def record(chapter: str, rows, nsd, results_dir=None, run: str | None = None) -> Path:
    """Write ``rows`` as ``chapter``'s findings.

    Parameters
    ----------
    chapter : str
        The chapter's notebook name, e.g. ``"02_rsa"``.
    rows : list of dict
        From :func:`finding`; a row may carry ``values``, a list of :data:`VALUE_FIELDS`
        dicts (:func:`roi_rsa_values`; NaN values are written as ``null``).
    nsd : NSD
        The dataset (its key names the folder).
    results_dir : path, optional
        Default: ``get_results_dir()``.
    run : str, optional
        The run's name (the notebook's ``run_name``: the output notebook's name, e.g.
        ``03_encoding__subjects-subj02`` for a grid run); default: ``chapter``.

    Returns
    -------
    Path
        The JSON file written, ``<findings_dir>/<run>.json``.
    """
    rows = [dict(r, chapter=chapter) for r in rows]
    for r in rows:
        missing = set(FIELDS) - set(r)
        if missing:
            raise ValueError(f"{chapter}: finding {r} lacks {sorted(missing)} (use finding())")
        extra = set(r) - set(FIELDS) - {"chapter", "values"}
        if extra:
            raise ValueError(f"{chapter}: finding {r['analysis']!r} has unknown fields {sorted(extra)} "
                             f"(expected {list(FIELDS)} and optionally 'values')")
        if "values" in r:
            r["values"] = _checked_values(r["values"], f"{chapter}: finding {r['analysis']!r}")
    run = run or chapter
    path = findings_dir(nsd, results_dir) / f"{run}.json"
    atomic_write_text(path, json.dumps({"chapter": chapter, "run": run, "rows": rows},
                                       indent=1) + "\n")
    return path


def _chapter_records(nsd, chapters, results_dir):
    """``(path, record)`` of each chapter's own run (grid runs left out), in file order."""
    folder = findings_dir(nsd, results_dir)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = json.loads(path.read_text())
        if data["run"] != data["chapter"]:
            continue
        if chapters is not None and data["chapter"] not in chapters:
            continue
        yield path, data


def load(nsd, chapters=None, results_dir=None):
    """The recorded findings of ``chapters``, in RQ then chapter order.

    Grid runs (``run`` other than the chapter name) are left out.

    Parameters
    ----------
    nsd : NSD
        The dataset.
    chapters : list of str, optional
        Chapters to load (default: every chapter's own run).
    results_dir : path, optional
        Default: ``get_results_dir()``.

    Returns
    -------
    pandas.DataFrame
        One row per finding, columns :data:`FIELDS` (``rq`` ordered as :data:`RQS`).
    """
    import pandas as pd

    rows = [r for _, data in _chapter_records(nsd, chapters, results_dir) for r in data["rows"]]
    df = pd.DataFrame(rows, columns=list(FIELDS))
    if len(df):
        df["rq"] = pd.Categorical(df["rq"], categories=list(RQS), ordered=True)
        df = df.sort_values(["rq", "chapter"], kind="stable").reset_index(drop=True)
    return df


def _checked_values(values, where: str) -> list[dict]:
    """``values`` as JSON-ready :data:`VALUE_FIELDS` dicts (NaN → None), or a ValueError."""
    if not isinstance(values, (list, tuple)):
        raise ValueError(f"{where}: values must be a list of dicts with {list(VALUE_FIELDS)}, "
                         f"got {type(values).__name__}")
    out = []
    for v in values:
        if not isinstance(v, dict) or set(v) != set(VALUE_FIELDS):
            raise ValueError(f"{where}: each value must be a dict with exactly {list(VALUE_FIELDS)}, got {v!r}")
        x = v["value"]
        if x is not None and (isinstance(x, bool) or not isinstance(x, (int, float, np.floating, np.integer))):
            raise ValueError(f"{where}: value {v!r}: 'value' must be a number or None")
        x = None if x is None or not math.isfinite(float(x)) else float(x)
        if any(not isinstance(v[k], str) or not v[k] for k in VALUE_FIELDS if k != "value"):
            raise ValueError(f"{where}: value {v!r}: quantity, model, roi and measure must be non-empty text")
        out.append({**{k: v[k] for k in VALUE_FIELDS}, "value": x})
    return out


def load_values(nsd, chapters=None, results_dir=None):
    """The ``values`` tables the recorded findings carry, as one tidy table.

    Grid runs (``run`` other than the chapter name) are left out, as in :func:`load`.

    Parameters
    ----------
    nsd : NSD
        The dataset.
    chapters : list of str, optional
        Chapters to load (default: every chapter's own run).
    results_dir : path, optional
        Default: ``get_results_dir()``.

    Returns
    -------
    pandas.DataFrame
        Columns ``chapter``, ``analysis`` (the row carrying the value) and
        :data:`VALUE_FIELDS` (``value`` float, NaN where recorded as NaN); empty when no
        finding carries values (e.g. findings recorded before values were).
    """
    import pandas as pd

    out = []
    for path, data in _chapter_records(nsd, chapters, results_dir):
        for r in data["rows"]:
            for v in _checked_values(r.get("values", []), f"{path}: finding {r.get('analysis')!r}"):
                out.append({"chapter": data["chapter"], "analysis": r["analysis"], **v})
    df = pd.DataFrame(out, columns=["chapter", "analysis", *VALUE_FIELDS])
    df["value"] = df["value"].astype(float)
    return df


def _kept(rows) -> list[dict]:
    return [r for r in rows if r is not None]


# ---------------------------------------------------------------------------- 01 feature spaces
def closest_planted_space_row(summary):
    """RQ1 (sandbox): the planted space each caption space's RDM is closest to.

    Objects are planted as the ``category`` space, so every caption space should come
    closest to it, except ``mpnet_verbs`` (actions: ``interaction``).

    Parameters
    ----------
    summary : pandas.DataFrame or None
        Indexed by caption space, columns ``"closest planted space"`` (``truth:<space>``)
        and ``"r"``; None on real NSD (no planted spaces).

    Returns
    -------
    dict or None
        A :func:`finding`; None without ``summary``.
    """
    import pandas as pd

    if summary is None:
        return None
    got = summary["closest planted space"].str.removeprefix("truth:")
    want = pd.Series({m: "interaction" if m == "mpnet_verbs" else "category" for m in got.index})
    others = ", ".join(f"{m}: {got[m]}" for m in got.index if got[m] != "category")
    mp = f"; mpnet r = {summary.loc['mpnet', 'r']:.3f}" if "mpnet" in got.index else ""
    return finding(
        "RQ1", "Model RDMs vs planted spaces: closest planted space of each caption space",
        f"category for {int((got == 'category').sum())} of {len(got)}" + (f" ({others})" if others else "")
        + mp, expected="category; interaction for mpnet_verbs (actions)", agrees=bool((got == want).all()))


def _has_random_baseline(pair_ids) -> bool:
    # with one pair, the "random" pairs are that pair itself: no baseline, no criterion
    return np.asarray(pair_ids).size > 2


def role_reversal_row(table, model: str, pair_ids):
    """RQ2 (sandbox): ``model``'s distance between role-reversed captions / between random images.

    Criterion: above :data:`ZERO_DISTANCE` (word order is encoded) and below the planted
    ``truth:interaction`` space's ratio.

    Parameters
    ----------
    table : pandas.DataFrame or None
        Indexed by model, column ``"reversal distance / random distance"`` (with a
        ``truth:interaction`` row for the reference); None on real NSD.
    model : str
        A sentence model, e.g. ``"mpnet"``.
    pair_ids : array (n_images,)
        The images of the role-reversed pairs; with a single pair (2 images) there is no
        random baseline and ``agrees`` is None.

    Returns
    -------
    dict or None
        A :func:`finding`; None without ``table`` or when ``model`` is not in it.
    """
    if table is None:
        return None
    ratio = table["reversal distance / random distance"]
    if model not in ratio.index:
        return None
    oracle_ratio = ratio.get("truth:interaction", np.nan)
    return finding(
        "RQ2", f"Role-reversed pairs: {model} reversal / random distance", float(ratio[model]),
        expected=f"> 0 (word order encoded), small next to truth:interaction ({oracle_ratio:.3f})",
        agrees=bool(ZERO_DISTANCE < ratio[model] < oracle_ratio) if _has_random_baseline(pair_ids) else None)


def bag_of_words_row(table, pair_ids, bags=BAG_OF_WORDS_MODELS):
    """RQ2 (sandbox): the largest reversal / random distance of the bag-of-words spaces.

    Criterion: below :data:`ZERO_DISTANCE` (the same words give the same vector).

    Parameters
    ----------
    table : pandas.DataFrame or None
        As in :func:`role_reversal_row`; None on real NSD.
    pair_ids : array (n_images,)
        The images of the role-reversed pairs (a single pair: ``agrees`` is None).
    bags : sequence of str
        Bag-of-words spaces considered (those in ``table``).

    Returns
    -------
    dict or None
        A :func:`finding`; None without ``table`` or without any of ``bags`` in it.
    """
    if table is None:
        return None
    ratio = table["reversal distance / random distance"]
    bags = [m for m in bags if m in ratio.index]
    if not bags:
        return None
    return finding(
        "RQ2", f"Role-reversed pairs: bags of words ({', '.join(bags)}), largest reversal / random distance",
        float(ratio[bags].max()), expected="0 (same words, same vector)",
        agrees=bool(ratio[bags].max() < ZERO_DISTANCE) if _has_random_baseline(pair_ids) else None)


def model_rdm_row(M, model: str, sets, reference: str = "mpnet"):
    """RQ2: the correlation of ``reference``'s RDM with ``model``'s on the RSA sample sets.

    No criterion and no reference number in the paper (``agrees`` is None).

    Parameters
    ----------
    M : pandas.DataFrame
        Model-by-model RDM correlations (``attrs["n_sets"]``: sets averaged).
    model : str
        The space compared with ``reference``.
    sets : array (n_sets, set_size)
        The sample sets (their size goes into the row's text).
    reference : str
        The main sentence model.

    Returns
    -------
    dict or None
        A :func:`finding`; None when either space is not in ``M``.
    """
    if reference not in M.index or model not in M.index:
        return None
    return finding(
        "RQ2", f"Model RDMs: r({reference}, {model}), {M.attrs['n_sets']} sets of {np.shape(sets)[1]} images",
        float(M.loc[reference, model]), paper="no model-by-model numbers (Fig. 3: brain scores only)")


def feature_space_rows(M, sets, summary=None, table=None, pair_ids=None,
                       max_rows: int = MAX_FEATURE_SPACE_ROWS) -> list[dict]:
    """The rows of chapter 01 (feature spaces), in order.

    Parameters
    ----------
    M, sets
        As in :func:`model_rdm_row`.
    summary : pandas.DataFrame, optional
        Sandbox only: :func:`closest_planted_space_row`'s input.
    table : pandas.DataFrame, optional
        Sandbox only: the role-reversal table (:func:`role_reversal_row`).
    pair_ids : array (n_images,), optional
        Sandbox only: the images of the role-reversed pairs (needed with ``table``).
    max_rows : int
        The model-RDM rows (:data:`RDM_COMPARISONS`) are added while fewer rows than this
        have been made.

    Returns
    -------
    list of dict
        :func:`finding` rows: closest planted space, role reversals (:data:`REVERSAL_MODELS`),
        bags of words (sandbox), then model-RDM correlations.
    """
    if table is not None and pair_ids is None:
        raise ValueError("table (role-reversed pairs) needs pair_ids")
    rows = _kept([closest_planted_space_row(summary)]
                 + [role_reversal_row(table, m, pair_ids) for m in REVERSAL_MODELS]
                 + [bag_of_words_row(table, pair_ids)])
    for m in RDM_COMPARISONS:  # the first ones that fit
        if len(rows) < max_rows:
            rows += _kept([model_rdm_row(M, m, sets)])
    return rows


# ---------------------------------------------------------------------------- 02 RSA
def _planted_mix(card, roi) -> str:
    """The sandbox's planted mixture of an ROI, as ``winner_table`` writes it."""
    mix = card["roi_spaces"].get(roi, {})
    return ", ".join(f"{k} {v:.0%}" for k, v in sorted(mix.items(), key=lambda kv: -kv[1]))


def _sentence_planted(card, roi) -> bool:
    """Whether the truth card plants the :data:`SENTENCE_SPACE` in ``roi`` (positive control)."""
    return card is not None and card["roi_spaces"].get(roi, {}).get(SENTENCE_SPACE, 0) > 0


def _tested_rois(group, ours, main):
    tested = group[group["model"] == main].set_index("roi")
    return tested, [r for r in PAPER_RSA_ROIS if r in ours.index and r in tested.index]


def roi_rsa_row(roi: str, group, ours, main: str, card=None):
    """RQ1: ``main``'s noise-ceiling-normalised ROI RSA in one of :data:`PAPER_RSA_ROIS`.

    Criterion: the group mean r is > 0 and FDR-significant across subjects; on the sandbox,
    an ROI where nothing captions describe is planted (none of :data:`CAPTION_SPACES`:
    ``category``, ``interaction``, or the positive control's ``sentence``) must instead
    score lowest of the paper's ROIs. With one subject (``group``'s ``n`` < 2:
    no leave-one-subject-out ceiling, no group test) the row says :data:`NEEDS_SUBJECTS`.

    Parameters
    ----------
    roi : str
        One of :data:`PAPER_RSA_ROIS`.
    group : pandas.DataFrame
        ``stats.group_tests`` of the models' r: columns ``roi, model, mean, significant``.
    ours : pandas.Series
        ``main``'s mean normalised r per ROI.
    main : str
        The main model, e.g. ``"mpnet"``.
    card : dict, optional
        The sandbox's truth card (``roi_spaces``); None on real NSD.

    Returns
    -------
    dict or None
        A :func:`finding`; None when ``roi`` is not one of the paper's ROIs with a result.
    """
    tested, paper_rois = _tested_rois(group, ours, main)
    if roi not in paper_rois:
        return None
    paper = f"MPNet FDR-significant (Fig. 1b, 3); {_roi_rsa_paper(main, roi)}"
    n = group_size(tested)
    if n is not None and n < 2:
        return not_computed("RQ1", f"ROI RSA, {roi}: {main} r (noise-ceiling normalised)",
                            expected="> 0, FDR-significant across subjects",
                            paper=paper)
    positive = bool(tested.loc[roi, "mean"] > 0 and tested.loc[roi, "significant"])
    expected, agrees = "> 0, FDR-significant across subjects", positive
    if card is not None:
        mix = card["roi_spaces"].get(roi, {})
        if sum(mix.get(k, 0) for k in CAPTION_SPACES) > 0:  # objects, actions, sentences: captions' topics
            expected = f"> 0, FDR-significant (planted: {_planted_mix(card, roi)})"
        else:  # nothing captions describe planted there
            expected = f"lowest of {', '.join(paper_rois)} (planted: {_planted_mix(card, roi)})"
            others = [ours[r] for r in paper_rois if r != roi]
            agrees = bool(ours[roi] < min(others)) if others else None
    return finding(
        "RQ1", f"ROI RSA, {roi}: {main} r (noise-ceiling normalised)", float(ours[roi]), expected=expected,
        agrees=agrees, paper=paper)


def searchlight_row(sl, n_subjects: int, main: str, sandbox: bool = False, q: float = SEARCHLIGHT_Q):
    """RQ1: the surface searchlight's FDR-significant vertices. Criterion: at least one.

    Parameters
    ----------
    sl : dict or None
        The group searchlight test: ``reject`` and ``t``, each (n_vertices,); None when it
        was skipped (one subject: the row says :data:`NEEDS_SUBJECTS`).
    n_subjects : int
        Subjects in the test.
    main : str
        The model of the searchlight.
    sandbox : bool
        Whether the data are the generated sandbox (changes the expected text only).
    q : float
        The FDR level the test ran at (written in the row).

    Returns
    -------
    dict
        A :func:`finding`.
    """
    if sl is None or n_subjects < 2:
        return not_computed("RQ1", f"Surface searchlight: {main} FDR-significant vertices (q = {q})",
                            expected="> 0", paper="FDR-significant well beyond ventral cortex (Fig. 1b)")
    n_sig, n_tested = int(np.sum(sl["reject"])), int(np.isfinite(sl["t"]).sum())
    return finding(
        "RQ1", f"Surface searchlight: {main} FDR-significant vertices (q = {q}, {n_subjects} subjects)",
        f"{n_sig} of {n_tested} ({100 * n_sig / max(n_tested, 1):.1f} %)",
        expected="> 0 (planted signal across the visual streams)" if sandbox else "> 0",
        agrees=n_sig > 0, paper="FDR-significant well beyond ventral cortex (Fig. 1b)")


def paper_searchlight_row(test, streams, names, nsdgeneral=None, *, n_subjects: int, main: str,
                          radius: float, sandbox: bool = False, q: float = SEARCHLIGHT_Q):
    """RQ1 (Fig. 1b): the paper's searchlight (volume spheres projected to fsaverage, group test).

    Counts the FDR-significant vertices with a positive mean r. Criterion on real NSD: some
    in ventral cortex and some beyond it, in one of :data:`SEARCHLIGHT_BEYOND_VENTRAL` (the
    paper: "FDR-significant well beyond ventral cortex"). On the sandbox, where signal is
    planted only in nsdgeneral: some significant vertices, and the share of nsdgeneral
    vertices significant at least :data:`SEARCHLIGHT_ENRICHMENT` times the share outside.

    Parameters
    ----------
    test : dict or None
        The group test of the projected maps (``reject``, ``mean``, ``t``, each
        (n_vertices,)); None when it was skipped (one subject).
    streams : array-like of int of shape (n_vertices,)
        The fsaverage streams atlas labels.
    names : dict of int to str
        ``{label: name}`` of the streams atlas.
    nsdgeneral : array-like of bool of shape (n_vertices,), optional
        The fsaverage nsdgeneral mask (needed on the sandbox).
    n_subjects : int
        Subjects in the test.
    main : str
        The model of the searchlight.
    radius : float
        The sphere radius in voxels (written in the row).
    sandbox : bool
        Whether the data are the generated sandbox (selects the criterion).
    q : float
        The FDR level the test ran at.

    Returns
    -------
    dict
        A :func:`finding`.
    """
    analysis = (f"Paper's searchlight (volume spheres < {radius:g} voxels → fsaverage): {main} "
                f"FDR-significant vertices, r > 0 (q = {q}")
    paper = "FDR-significant well beyond ventral cortex (Fig. 1b)"
    if test is None or n_subjects < 2:
        return not_computed("RQ1", analysis + ")", expected="> 0 in ventral and beyond", paper=paper)
    hit = np.asarray(test["reject"], dtype=bool) & (np.nan_to_num(np.asarray(test["mean"], float)) > 0)
    tested = np.isfinite(np.asarray(test["t"], dtype=float))
    streams = np.asarray(streams)
    if streams.shape != hit.shape:
        raise ValueError(f"streams: shape {streams.shape}, test maps {hit.shape}")
    code = {v: k for k, v in names.items()}
    per_roi = {roi: int((hit & (streams == code[roi])).sum()) for roi in ("ventral",) + SEARCHLIGHT_BEYOND_VENTRAL
               if roi in code}
    n_sig = int(hit.sum())
    analysis += f", {n_subjects} subjects)"
    counts = ", ".join(f"{k} {v}" for k, v in per_roi.items())
    if sandbox:
        if nsdgeneral is None:
            raise ValueError("sandbox: the nsdgeneral mask is needed")
        inside = np.asarray(nsdgeneral, dtype=bool)
        if inside.shape != hit.shape:
            raise ValueError(f"nsdgeneral: shape {inside.shape}, test maps {hit.shape}")
        rate_in = hit[inside & tested].mean() if (inside & tested).any() else 0.0
        rate_out = hit[~inside & tested].mean() if (~inside & tested).any() else 0.0
        return finding(
            "RQ1", analysis,
            f"{n_sig} of {int(tested.sum())}; {100 * rate_in:.1f} % of nsdgeneral vs {100 * rate_out:.1f} % outside",
            expected=(f"> 0, and the nsdgeneral share ≥ {SEARCHLIGHT_ENRICHMENT:g}× the share outside "
                      "(signal planted only in nsdgeneral)"),
            agrees=n_sig > 0 and rate_in >= SEARCHLIGHT_ENRICHMENT * rate_out, paper=paper)
    beyond = sum(per_roi.get(r, 0) for r in SEARCHLIGHT_BEYOND_VENTRAL)
    return finding(
        "RQ1", analysis, f"{n_sig} of {int(tested.sum())} ({counts})",
        expected=f"> 0 in ventral and in {' or '.join(SEARCHLIGHT_BEYOND_VENTRAL)}",
        agrees=per_roi.get("ventral", 0) > 0 and beyond > 0, paper=paper)


def category_control_row(tests, controls, main: str, card=None, roi: str = "ventral"):
    """RQ2: ``main`` against a category control in ventral cortex (paired over subjects).

    Criterion on real NSD: ``main`` ahead, FDR-significant (the full caption beats
    categories). On the sandbox the truth card decides: where it plants the
    :data:`SENTENCE_SPACE` in ``roi`` (the positive control) ``main`` must be ahead,
    FDR-significant, as on real NSD; elsewhere (the null world: only categories are planted
    in ventral cortex) the category space must win, FDR-significant.

    Parameters
    ----------
    tests : pandas.DataFrame or None
        ``stats.pairwise_model_tests``: columns ``roi, model_b, mean_diff, p_fdr,
        significant`` (``main`` − ``model_b``), and ``n``; with fewer than 2 subjects (or
        None) the row says :data:`NEEDS_SUBJECTS`.
    controls : list of str
        The models ``main`` was compared with; the first of :data:`CATEGORY_CONTROLS`
        among them is used.
    main : str
        The main model.
    card : dict, optional
        The sandbox's truth card; None on real NSD.
    roi : str
        The ROI of the comparison.

    Returns
    -------
    dict or None
        A :func:`finding`; None without a category control or its test.
    """
    cat_control = next((c for c in CATEGORY_CONTROLS if c in controls), None)
    if cat_control and (tests is None or (group_size(tests) or 2) < 2):
        return not_computed("RQ2", f"Paired {main} − {cat_control}, {roi} (r difference)",
                            paper="MPNet above multi-hot and category models (Fig. 3)")
    pair = tests[(tests["roi"] == roi) & (tests["model_b"] == cat_control)] if cat_control else tests.iloc[:0]
    if not len(pair):
        return None
    d, p = float(pair["mean_diff"].iloc[0]), float(pair["p_fdr"].iloc[0])
    sig = bool(pair["significant"].iloc[0])
    if card is None:
        expected, ahead = "> 0, FDR-significant (full caption beats categories)", True
    elif _sentence_planted(card, roi):
        expected, ahead = (f"{FOUND}> 0, FDR-significant (planted: {_planted_mix(card, roi)}: the sentence "
                           "space carries what categories miss, the full caption should win)"), True
    else:
        expected, ahead = (f"{ABSENT}< 0, FDR-significant (planted: {_planted_mix(card, roi)}: the category "
                           "space should win)"), False
    return finding(
        "RQ2", f"Paired {main} − {cat_control}, {roi} (r difference)", f"{d:+.3f} (p_FDR = {p:.3g})",
        expected=expected, agrees=sig and (d > 0 if ahead else d < 0),
        paper="MPNet above multi-hot and category models (Fig. 3)")


def oracle_winner_row(oracle, card):
    """RQ1 (sandbox): each ROI won by its dominant planted space (``truth:*`` among the models).

    Criterion: every ROI, by a clear winner (``winner_table`` names one only when it beats
    every other model, paired across subjects, corrected over the pairs; a tie is a miss).
    With one subject (every winner ``"untested: …"``) no criterion.

    Parameters
    ----------
    oracle : pandas.DataFrame or None
        ``winner_table`` over all models (``truth:*`` included), indexed by ROI, column
        ``winner``; None on real NSD.
    card : dict or None
        The sandbox's truth card (``roi_spaces``); None on real NSD.

    Returns
    -------
    dict or None
        A :func:`finding`; None on real NSD.
    """
    if oracle is None or card is None:
        return None
    if all(str(w).startswith("untested: ") for w in oracle["winner"]):
        return not_computed("RQ1", "Oracle check: ROIs won by their dominant planted space (truth:* among "
                            "the models)", expected=f"{len(oracle)} of {len(oracle)}")
    ok, misses = 0, []
    for roi, w in oracle["winner"].items():
        mix = card["roi_spaces"].get(roi, {})
        top = [k for k, v in mix.items() if v == max(mix.values())] if mix else []
        if w.removeprefix("truth:") in top:
            ok += 1
        else:
            misses.append(f"{roi}: {w}, planted {'/'.join(top)}")
    return finding(
        "RQ1", "Oracle check: ROIs won by their dominant planted space (truth:* among the models)",
        f"{ok} of {len(oracle)}" + (f" ({'; '.join(misses)})" if misses else ""),
        expected=f"{len(oracle)} of {len(oracle)}", agrees=ok == len(oracle))


def rsa_rows(group, ours, sl, tests, controls, *, main: str, n_subjects: int, card=None, oracle=None,
             q: float = SEARCHLIGHT_Q, paper_sl=None, rq2=None) -> list[dict]:
    """The rows of chapter 02 (RSA), in order.

    Parameters
    ----------
    group, ours
        As in :func:`roi_rsa_row`.
    sl
        As in :func:`searchlight_row`.
    tests, controls
        As in :func:`category_control_row`.
    main : str
        The main model.
    n_subjects : int
        Subjects in the searchlight test.
    card : dict, optional
        The sandbox's truth card; None on real NSD.
    oracle : pandas.DataFrame, optional
        Sandbox only: :func:`oracle_winner_row`'s winner table.
    q : float
        The searchlight's FDR level.
    paper_sl : dict, optional
        The paper's searchlight: keyword arguments of :func:`paper_searchlight_row`
        (``test``, ``streams``, ``names``, ``nsdgeneral``, ``radius``; ``n_subjects``,
        ``main``, ``sandbox`` and ``q`` are filled in here); its row comes before the
        surface searchlight's.
    rq2 : pandas.DataFrame, optional
        The RQ2 comparison (``chapters.rq2.rq2_comparison`` of the ROI RSA): adds
        :func:`rq2_controls_row` per ROI of :data:`PAPER_RSA_ROIS` at the end, then (on
        the sandbox) :func:`sentence_controls_row` per ROI.

    Returns
    -------
    list of dict
        :func:`finding` rows: ROI RSA per paper ROI, the paper's searchlight (when given),
        the surface searchlight, category control, oracle, then the RQ2 rows.
    """
    if card is not None and oracle is None:
        raise ValueError("card given (sandbox) without the oracle winner table")
    paper_row = ([] if paper_sl is None else
                 [paper_searchlight_row(**paper_sl, n_subjects=n_subjects, main=main, sandbox=card is not None, q=q)])
    return _kept([roi_rsa_row(roi, group, ours, main, card) for roi in PAPER_RSA_ROIS] + paper_row
                 + [searchlight_row(sl, n_subjects, main, sandbox=card is not None, q=q),
                    category_control_row(tests, controls, main, card),
                    oracle_winner_row(oracle, card)]
                 + [rq2_controls_row(rq2, roi, method="ROI RSA", card=card) for roi in PAPER_RSA_ROIS]
                 + [sentence_controls_row(rq2, roi, method="ROI RSA", card=card) for roi in PAPER_RSA_ROIS])


# ---------------------------------------------------------------------------- 03 encoding
def _p_text(p: float) -> str:
    return f"{p:g}".removeprefix("0")  # 0.05 -> ".05"


def encoding_fdr_row(group, visual, streams, roi_names, *, feature: str, q: float, n_subjects: int,
                     sandbox: bool = False):
    """RQ1 (Fig. 1c): the vertices with FDR-significant encoding accuracy.

    Criterion on the sandbox (no planted signal outside nsdgeneral; FDR allows a fraction
    ``q`` of false discoveries): some, and at least ``1 − FDR_SLACK × q`` of them in
    nsdgeneral. On real NSD: some in each of :data:`BEYOND_VENTRAL_ROIS`.

    Parameters
    ----------
    group : dict or None
        ``group_map`` of the test r: ``significant``, ``p`` and ``mean``, each (n_vertices,);
        None when it was skipped (one subject: the row says :data:`NEEDS_SUBJECTS`).
    visual : bool array (n_vertices,)
        The nsdgeneral vertices.
    streams : int array (n_vertices,)
        The streams atlas labels of the vertices.
    roi_names : dict
        Streams label → ROI name (0: outside).
    feature : str
        The encoder's feature space.
    q : float
        The FDR level of ``group``.
    n_subjects : int
        Subjects in the group test.
    sandbox : bool
        Whether the data are the generated sandbox.

    Returns
    -------
    dict
        A :func:`finding`.
    """
    if group is None or n_subjects < 2:
        return not_computed("RQ1", f"Encoding (Fig. 1c): vertices with FDR-significant {feature} test r (q = {q})",
                            paper="FDR-significant well beyond ventral cortex (8 subjects)")
    labels = np.asarray(streams).ravel()
    codes = {n: k for k, n in roi_names.items() if k > 0}
    sig = np.asarray(group["significant"], bool)
    inside = visual & np.isfinite(group["mean"])
    n_sig, n_in = int(sig.sum()), int((sig & visual).sum())
    text = (f"{n_sig} vertices, {n_in} in nsdgeneral ({sig[inside].mean():.0%} of it; "
            f"{(group['p'][inside] < P_UNCORRECTED).mean():.0%} at p < {_p_text(P_UNCORRECTED)})")
    if sandbox:  # no planted signal outside nsdgeneral; FDR allows about a fraction q of false discoveries
        expected = (f"> 0, in nsdgeneral (no planted signal outside; FDR q = {q} allows ≈ {q:.0%} "
                    f"false ones): ≥ {1 - FDR_SLACK * q:.0%} of them")
        agrees = n_sig > 0 and n_in >= (1 - FDR_SLACK * q) * n_sig
    else:
        beyond = [n for n in BEYOND_VENTRAL_ROIS if n in codes]
        expected = f"significant beyond ventral cortex too ({', '.join(beyond)})"
        agrees = n_sig > 0 and all((sig & (labels == codes[n])).any() for n in beyond)
    return finding(
        "RQ1", f"Encoding (Fig. 1c): vertices with FDR-significant {feature} test r "
               f"(q = {q}, {n_subjects} subjects)",
        text, expected, agrees, paper="FDR-significant well beyond ventral cortex (8 subjects)")


def _over(rel) -> str:
    where = rel.get("vertices", "all")
    return f"over {rel.get('n', '?'):,} {where} vertices" if where != "all" else "over all vertices"


def encoding_ceiling_row(relation, nc_relation, sandbox: bool = False, shared_tuning: float | None = None):
    """RQ1 (Fig. 1d): encoding accuracy against the ceilings, over the visual vertices.

    The relations must be computed over the vertices the claim is about
    (``ceiling_summary(..., mask=...)``, which records ``vertices``): over the whole surface,
    non-visual cortex (r ≈ 0, agreement ≈ 0) makes any encoder "track" the ceiling.
    Criterion on the sandbox: r > :data:`NC_MIN_R` with the noise ceiling (accuracy follows
    the planted SNR), and, with the inter-participant agreement, what the truth card's
    ``shared_tuning`` implies: r > 0 (the paper's relation) when part of each vertex's tuning
    is shared by the subjects, \\|r\\| < :data:`AGREEMENT_MAX_ABS_R` when none is (a sandbox
    of format < 3, or ``shared_tuning=0``: every subject reads the features through its own
    projection). On real NSD: r > 0 with the agreement. A relation over all vertices has no
    criterion (``agrees`` None).

    Parameters
    ----------
    relation : dict or None
        ``ceiling_summary`` against the inter-participant agreement (keys ``pearson``, ``n``,
        ``vertices``); None with one subject (then only the noise-ceiling half is judged on
        the sandbox, and the real-NSD criterion is :data:`NEEDS_SUBJECTS`).
    nc_relation : dict
        ``ceiling_summary`` against the noise ceiling (keys ``pearson``, ``n``,
        ``vertices``).
    sandbox : bool
        Whether the data are the generated sandbox.
    shared_tuning : float, optional
        Sandbox: the truth card's ``shared_tuning`` (share of each vertex's tuning common to
        all subjects; ``None``: a card without the key, i.e. none shared).

    Returns
    -------
    dict
        A :func:`finding`.
    """
    if shared_tuning is not None:
        shared_tuning = check_float(shared_tuning, "shared_tuning", min_value=0.0, max_value=1.0)
    restricted = all(r is None or r.get("vertices", "all") != "all" for r in (relation, nc_relation))
    unrestricted = " (not judged: computed over all vertices, non-visual cortex included)"
    analysis = f"Encoding r vs ceiling (Fig. 1d), {_over(nc_relation)}"
    if relation is None:
        text = (f"inter-participant agreement {NEEDS_SUBJECTS}; r = {nc_relation['pearson']:.2f} "
                "with the noise ceiling")
        if sandbox:
            expected = f"> {NC_MIN_R} with the noise ceiling (planted SNR)"
            agrees = nc_relation["pearson"] > NC_MIN_R
        else:
            expected, agrees = "> 0 with inter-participant agreement", None
    else:
        text = (f"r = {relation['pearson']:.2f} with inter-participant agreement, "
                f"{nc_relation['pearson']:.2f} with the noise ceiling")
        if sandbox and shared_tuning:
            expected = (f"> {NC_MIN_R} with the noise ceiling (planted SNR); > 0 with the agreement "
                        f"({shared_tuning:.0%} of each vertex's tuning shared by the subjects)")
            agrees = nc_relation["pearson"] > NC_MIN_R and relation["pearson"] > 0
        elif sandbox:
            expected = (f"> {NC_MIN_R} with the noise ceiling (planted SNR); ≈ 0 (|r| < {AGREEMENT_MAX_ABS_R}) "
                        "with the agreement (own projection per subject, no shared tuning)")
            agrees = nc_relation["pearson"] > NC_MIN_R and abs(relation["pearson"]) < AGREEMENT_MAX_ABS_R
        else:
            expected = "> 0 with inter-participant agreement"
            agrees = relation["pearson"] > 0
    if not restricted:
        expected, agrees = expected + unrestricted, None
    return finding("RQ1", analysis, text, expected, agrees,
                   paper="encoding r tracks inter-participant agreement (scatter)")


def roi_ceiling_fraction_row(ceiling_table, order, feature: str, recovered=None):
    """RQ1: the best and worst streams ROI by median r / noise ceiling.

    Criterion on the sandbox: the same best and worst ROI as expected from the planted
    weights; on real NSD no criterion (``agrees`` is None).

    Parameters
    ----------
    ceiling_table : pandas.DataFrame
        Indexed by ROI, column ``fraction`` (median r / noise ceiling).
    order : list of str
        The streams ROIs, in the atlas's order.
    feature : str
        The encoder's feature space.
    recovered : pandas.DataFrame, optional
        Sandbox only: indexed by ROI, column ``"expected r / ceiling"``.

    Returns
    -------
    dict or None
        A :func:`finding`; None when no ROI has a fraction.
    """
    frac = ceiling_table["fraction"].reindex(order).dropna()
    if not len(frac):
        return None
    text = f"best {frac.idxmax()} ({frac.max():.3f}), worst {frac.idxmin()} ({frac.min():.3f})"
    expected, agrees = "", None
    if recovered is not None:
        exp = recovered["expected r / ceiling"].reindex(frac.index).dropna()
        if len(exp):
            expected = (f"best {exp.idxmax()} ({exp.max():.3f}), worst {exp.idxmin()} "
                        f"({exp.min():.3f}): planted weights × {feature}'s R² of each space")
            agrees = frac.idxmax() == exp.idxmax() and frac.idxmin() == exp.idxmin()
    return finding("RQ1", "Encoding accuracy per streams ROI: median r / noise ceiling", text, expected,
                   agrees, paper="not tabulated (maps only)")


def ceiling_fraction_fit_row(recovered):
    """RQ1 (sandbox): r over ROIs of the expected and observed fractions of the noise ceiling.

    Criterion: above :data:`FRACTION_MIN_R`.

    Parameters
    ----------
    recovered : pandas.DataFrame or None
        Indexed by ROI, columns ``"expected r / ceiling"`` and ``"observed r / ceiling"``;
        None on real NSD.

    Returns
    -------
    dict or None
        A :func:`finding`; None on real NSD.
    """
    if recovered is None:
        return None
    r = recovered["expected r / ceiling"].corr(recovered["observed r / ceiling"])
    return finding(
        "RQ1", f"Encoding accuracy per ROI: r(expected, observed fraction of ceiling) over "
               f"{int(recovered['observed r / ceiling'].notna().sum())} ROIs",
        float(r), f"> {FRACTION_MIN_R} (expected from the planted weights)", bool(r > FRACTION_MIN_R),
        paper="not tabulated (maps only)")


def variance_partition_row(partition, feature: str, word_band: str, truth=None, roi: str = "lateral"):
    """RQ2: test R² unique to the sentence embedding beyond its word average.

    Criterion: the unique R² of ``feature`` is > 0 and above that of ``word_band`` in every
    ROI considered: on the sandbox the ROIs with planted ``interaction`` (relations between
    objects; the row names the most weighted one), on real NSD ``roi``.

    Parameters
    ----------
    partition : pandas.DataFrame
        ``partition_table``: indexed by ROI, columns ``unique_<feature>``,
        ``unique_<word_band>``.
    feature, word_band : str
        The two bands.
    truth : pandas.DataFrame, optional
        Sandbox only: planted weights, indexed by ROI, one column per planted space.
    roi : str
        The ROI on real NSD.

    Returns
    -------
    dict or None
        A :func:`finding`; None when no ROI considered is in ``partition``.
    """
    ua, ub = f"unique_{feature}", f"unique_{word_band}"
    planted = truth is not None and "interaction" in truth.columns  # relations between objects
    if planted:
        rel = [r for r in truth.index[truth["interaction"] > 0] if r in partition.index]
        main = truth["interaction"].reindex(rel).idxmax() if rel else None
    else:
        rel = [r for r in [roi] if r in partition.index]
        main = rel[0] if rel else None
    if main is None:
        return None
    agrees = all(partition.loc[r, ua] > max(0.0, partition.loc[r, ub]) for r in rel)
    if planted:
        w = ", ".join(f"{truth.loc[r, 'interaction']:.1f}" for r in rel)
        expected = (f"> 0 and > R² unique to {word_band} in {', '.join(rel)} (planted interaction "
                    f"weight {w}); here {word_band}: {partition.loc[main, ub]:.3f}")
    else:
        expected = f"> 0 and > R² unique to {word_band} ({partition.loc[main, ub]:.3f})"
    return finding(
        "RQ2", f"Variance partitioning, {main}: test R² unique to {feature} beyond {word_band}",
        float(partition.loc[main, ua]), expected, agrees,
        paper="not tested (RSA: full-caption MPNet beats word-average models, Fig. 3)")


def in_silico_contrast_row(agreement, sandbox: bool = False, contrast: str = "food − people"):
    """RQ1 (Fig. 2a): the in-silico contrast against the observed food − people responses.

    Criterion on the sandbox (food and people are planted category signal): r > 0 in every
    subject; on real NSD: mean r > 0.

    Parameters
    ----------
    agreement : array (n_subjects,) or None
        Per-subject r of the in-silico and observed contrast maps in nsdgeneral; None when
        the chapter ran no food − people contrast.
    sandbox : bool
        Whether the data are the generated sandbox.
    contrast : str
        The in-silico contrast's name.

    Returns
    -------
    dict or None
        A :func:`finding`; None without ``agreement``.
    """
    if agreement is None:
        return None
    agreement = np.asarray(agreement, dtype=float)
    expected = "> 0 in every subject (food and people are planted category signal)" if sandbox else "> 0"
    agrees = bool(np.all(agreement > 0)) if sandbox else bool(np.nanmean(agreement) > 0)
    return finding(
        "RQ1", f"In-silico {contrast} vs observed food − people images: mean r in nsdgeneral",
        float(np.nanmean(agreement)), expected, agrees,
        paper="not tested (Fig. 2a: contrasts recover people, place, food areas)")


def shuffled_baseline_row(baseline, feature: str, alpha: float = ALPHA):
    """RQ1: the encoder against one trained on captions shuffled across images.

    A trivial encoder passes "r > 0" and even FDR-significance when its predictions share
    anything with the test betas; the baseline is the same encoder fitted on the training
    images with their features permuted across images (the captions of other images), and
    scored on the true test features. Criterion: the mean test r over the ROI's vertices
    higher than the baseline's, by a two-sided paired t-test across subjects (p <
    ``alpha``, one test: no correction). With one subject no criterion.

    Parameters
    ----------
    baseline : pandas.DataFrame or None
        ``ch03_encoding.shuffled_baseline``: indexed by subject, columns ``r`` and
        ``r_shuffled`` (mean test r over the ROI's vertices), ``attrs["roi"]`` the ROI;
        None when the chapter ran no baseline.
    feature : str
        The encoder's feature space.
    alpha : float, default=ALPHA
        Level of the paired test.

    Returns
    -------
    dict or None
        A :func:`finding`; None without ``baseline``.
    """
    if baseline is None:
        return None
    roi = baseline.attrs.get("roi", "ROI")
    x = baseline[["r", "r_shuffled"]].dropna()
    analysis = f"Encoding vs shuffled-caption baseline: mean test r in {roi}, {feature} − shuffled"
    expected = f"> 0, paired t across subjects p < {alpha} (two-sided; one test)"
    paper = "not tested (the paper's encoders have no shuffled baseline in the figures)"
    d = x["r"] - x["r_shuffled"]
    text = (f"{x['r'].mean():.3f} vs {x['r_shuffled'].mean():.3f} ({d.mean():+.3f}"
            if len(x) else "no subject")
    if len(x) < 2:
        return finding("RQ1", analysis, text + (f"; paired test {NEEDS_SUBJECTS})" if len(x) else ""),
                       expected, None, paper=paper)
    t, p = (float(v) for v in paired_ttest(x["r"].to_numpy(), x["r_shuffled"].to_numpy()))
    return finding("RQ1", analysis, text + f", t = {t:.2f}, p = {p:.3g}, {len(x)} subjects)", expected,
                   bool(d.mean() > 0 and p < alpha), paper=paper)


def encoding_rows(group, visual, streams, roi_names, relation, nc_relation, ceiling_table, partition,
                  agreement, *, feature: str, word_band: str, order, q: float, n_subjects: int,
                  sandbox: bool = False, truth=None, recovered=None, baseline=None, rq2=None,
                  shared_tuning: float | None = None) -> list[dict]:
    """The rows of chapter 03 (encoding), in order.

    Parameters
    ----------
    group, visual, streams, roi_names
        As in :func:`encoding_fdr_row`.
    relation, nc_relation
        As in :func:`encoding_ceiling_row`.
    ceiling_table
        As in :func:`roi_ceiling_fraction_row`.
    partition
        As in :func:`variance_partition_row`.
    agreement
        As in :func:`in_silico_contrast_row` (None: no contrast row).
    feature, word_band : str
        The encoder's feature space and the word-level band.
    order : list of str
        The streams ROIs, in the atlas's order.
    q : float
        The FDR level of the group maps.
    n_subjects : int
        Subjects analysed.
    sandbox : bool
        Whether the data are the generated sandbox; then ``truth`` and ``recovered`` are
        required.
    truth : pandas.DataFrame, optional
        Sandbox: planted weights per ROI (``truth_roi_table``).
    recovered : pandas.DataFrame, optional
        Sandbox: per ROI, ``"expected r / ceiling"`` and ``"observed r / ceiling"``.
    baseline : pandas.DataFrame, optional
        As in :func:`shuffled_baseline_row` (None: no baseline row).
    rq2 : pandas.DataFrame, optional
        The RQ2 comparison of the encoders (``chapters.rq2.rq2_comparison``): adds
        :func:`rq2_controls_row` per ROI of :data:`PAPER_RSA_ROIS` at the end (on the
        sandbox judged against ``truth``).
    shared_tuning : float, optional
        Sandbox: the truth card's ``shared_tuning`` (see :func:`encoding_ceiling_row`).

    Returns
    -------
    list of dict
        :func:`finding` rows: FDR vertices, shuffled-caption baseline, ceilings, ROI
        fractions, their fit (sandbox), variance partitioning, in-silico contrast, then the
        RQ2 rows.
    """
    if sandbox and (truth is None or recovered is None):
        raise ValueError("sandbox=True needs truth and recovered")
    if not sandbox:
        truth = recovered = None
    # the RQ2 rows judge the sandbox by the planted weights per ROI (the truth card's roi_spaces)
    rq2_card = None if truth is None else {"roi_spaces": {
        roi: {k: float(v) for k, v in row.items() if v > 0} for roi, row in truth.iterrows()}}
    return _kept([
        encoding_fdr_row(group, visual, streams, roi_names, feature=feature, q=q, n_subjects=n_subjects,
                         sandbox=sandbox),
        shuffled_baseline_row(baseline, feature),
        encoding_ceiling_row(relation, nc_relation, sandbox, shared_tuning if sandbox else None),
        roi_ceiling_fraction_row(ceiling_table, order, feature, recovered),
        ceiling_fraction_fit_row(recovered),
        variance_partition_row(partition, feature, word_band, truth),
        in_silico_contrast_row(agreement, sandbox),
    ]) + _kept([rq2_controls_row(rq2, roi, method="Encoding", card=rq2_card) for roi in PAPER_RSA_ROIS])


# ---------------------------------------------------------------------------- 04 decoding
def decoding_accuracy_row(dec, consistency, feature: str, sandbox: bool = False):
    """RQ3 (Fig. 2b): the mean per-image r of the decoded embeddings.

    r > 0 alone is no test: an image-blind prediction (the mean of the other test
    embeddings) correlates too. Criterion: more than :data:`MOSTLY_POSITIVE` of the images
    with r > 0, and a mean r above the image-blind prediction's.

    Parameters
    ----------
    dec : dict
        ``decode_subjects``: ``test_ids`` (n_test,), ``true`` (n_test, d) and ``r``
        (n_subjects, n_test).
    consistency : array
        Caption consistency per test image (reported for reference).
    feature : str
        The decoded embedding.
    sandbox : bool
        Whether the data are the generated sandbox (changes the expected text only).

    Returns
    -------
    dict
        A :func:`finding`.
    """
    n_test = np.asarray(dec["test_ids"]).size
    r = np.asarray(dec["r"])
    true = np.asarray(dec["true"])
    cons = float(np.nanmean(consistency))
    pos = float((r > 0).mean())
    others = (true.sum(0) - true) / max(n_test - 1, 1)
    const = float(embedding_correlation(others, true).mean())
    expected = (f"mostly positive and above an image-blind prediction (mean of the other test embeddings, "
                f"r = {const:.3f}); caption consistency {cons:.2f} for reference")
    if sandbox:
        expected += "; the streams ROIs carry planted category and interaction signal"
    return finding(
        "RQ3", f"Decoding {feature} from all streams voxels: mean per-image r ({pos:.0%} of images r > 0)",
        float(r.mean()), expected, pos > MOSTLY_POSITIVE and r.mean() > const,
        paper="mostly positive (per-subject KDE, Fig. 2b)")


def identification_row(dec):
    """RQ3: identification of each test image among all of them by its decoded embedding.

    Criterion: top-1 accuracy above chance (1 / n_test) and mean rank below chance
    ((n_test − 1) / 2).

    Parameters
    ----------
    dec : dict
        ``decode_subjects``: ``test_ids`` (n_test,) and ``rank`` (n_subjects, n_test),
        0 = identified.

    Returns
    -------
    dict
        A :func:`finding`.
    """
    n_test = np.asarray(dec["test_ids"]).size
    rank = np.asarray(dec["rank"])
    top1, mean_rank, chance = float((rank == 0).mean()), float(rank.mean()), (n_test - 1) / 2
    return finding(
        "RQ3", f"Identification among {n_test} test images: top-1 and mean rank",
        f"top-1 {top1:.0%}, mean rank {mean_rank:.1f}",
        f"above chance (top-1 {1 / n_test:.1%}, mean rank {chance:.1f})",
        top1 > 1 / n_test and mean_rank < chance, paper="515-way ranks (Fig. 2b)")


def caption_metric_row(metrics, metric: str, label: str):
    """RQ3: a caption metric of the reconstructions, mean over subjects.

    Criterion: above the shuffled-caption baseline (no criterion without one); the human
    ceiling and the oracle are reported for reference.

    Parameters
    ----------
    metrics : pandas.DataFrame
        ``caption_metric_table``: rows ``human``, ``oracle``, optionally ``shuffled``, and
        one per subject with ``kind == "decoded"``; one column per metric.
    metric : str
        The column, e.g. ``"cider_d"``.
    label : str
        Its name in the row, e.g. ``"CIDEr-D"``.

    Returns
    -------
    dict
        A :func:`finding`.
    """
    decoded = float(metrics.query("kind == 'decoded'")[metric].mean())
    ref = [f"human ceiling {metrics.loc['human', metric]:.3f}", f"oracle {metrics.loc['oracle', metric]:.3f}"]
    agrees = None
    if "shuffled" in metrics.index:
        ref.insert(0, f"> shuffled {metrics.loc['shuffled', metric]:.3f}")
        agrees = decoded > metrics.loc["shuffled", metric]
    return finding("RQ3", f"Reconstructed captions: {label}, mean over subjects", decoded, "; ".join(ref),
                   agrees, paper="scored with aac_metrics (values not tabulated)")


def single_roi_decoding_row(summary, truth=None):
    """RQ3: pairwise identification when decoding from single ROIs.

    Criterion on the sandbox (captions describe categories and interactions, and the
    positive control's sentence space, not low-level statistics or layout): the ROIs whose
    planted weight of :data:`CAPTION_SPACES` exceeds :data:`PLANTED_CAPTION_SHARE` identify
    better than the others (or, without others, above
    chance :data:`IDENTIFICATION_CHANCE`). On real NSD no criterion.

    Parameters
    ----------
    summary : pandas.DataFrame
        Indexed by ROI, column ``identification``.
    truth : pandas.DataFrame, optional
        Sandbox only: planted weights per ROI (columns ``category``, ``interaction``, ...).

    Returns
    -------
    dict or None
        A :func:`finding`; None when no ROI has an identification score.
    """
    ident = summary["identification"].dropna().sort_values(ascending=False)
    if not len(ident):
        return None
    text = " > ".join(f"{r} {v:.3f}" for r, v in ident.items())
    expected, agrees = "", None
    if truth is not None:
        share = truth.reindex(columns=list(CAPTION_SPACES), fill_value=0.0).sum(axis=1)
        cap = [r for r in ident.index if share.get(r, 0.0) > PLANTED_CAPTION_SHARE]
        other = [r for r in ident.index if r not in cap]
        if cap and other:
            planted = "/".join(k for k in CAPTION_SPACES if k in truth.columns and truth.loc[cap, k].gt(0).any())
            expected = f"{', '.join(cap)} (planted {planted}) above {', '.join(other)}"
            agrees = ident[cap].min() > ident[other].max()
        elif cap:
            expected = f"{', '.join(cap)} above chance {IDENTIFICATION_CHANCE}"
            agrees = ident[cap].min() > IDENTIFICATION_CHANCE
    return finding("RQ3", f"Decoding from single ROIs: pairwise identification "
                          f"(chance {IDENTIFICATION_CHANCE})",
                   text, expected, agrees, paper="not in the paper (decodes from all 7 streams ROIs)")


#: RQ3 beyond labels: the ROI of the claim (the null world plants only categories there, as
#: chapter 02's category-control claim, :func:`category_control_row`)
BEYOND_LABELS_ROI = "ventral"


def beyond_labels_row(tests, roi: str = BEYOND_LABELS_ROI, card=None):
    """RQ3: decoding from ``roi`` identifies the caption better than the image's labels do.

    Criterion: the brain's pairwise identification minus the best label baseline's
    (:func:`~brainllm_utils.chapters.ch04_decoding.beyond_labels_table`) > 0 and significant
    after the correction over the ROIs it states. On real NSD the claim is the extension's
    (a brain carrying only category information cannot beat its labels). On the sandbox the
    truth card decides: where it plants the :data:`SENTENCE_SPACE` in ``roi`` (the positive
    control) the claim must hold; where the ROI is driven by categories only (the null
    world's ventral cortex) it must not.

    Parameters
    ----------
    tests : pandas.DataFrame or None
        :func:`~brainllm_utils.chapters.ch04_decoding.beyond_labels_table`; None or fewer
        than 2 subjects → :data:`NEEDS_SUBJECTS`.
    roi : str, default=BEYOND_LABELS_ROI
        The ROI of the claim.
    card : dict, optional
        The sandbox's truth card (``roi_spaces``); None on real NSD.

    Returns
    -------
    dict or None
        A :func:`finding`; None when ``tests`` has no row for ``roi``.
    """
    analysis = (f"Decoding from {roi}: identification beyond category labels, brain − best label "
                "baseline (paired t across subjects)")
    paper = "not in the paper (extension: the caption's content beyond its objects' labels)"
    planted = _sentence_planted(card, roi)
    if card is None:
        expected = "> 0, significant (the brain carries what the captions say beyond their objects)"
    elif planted:
        expected = f"{FOUND}> 0, significant (planted: {_planted_mix(card, roi)})"
    else:
        expected = (f"{ABSENT}not above the labels (planted: {_planted_mix(card, roi) or 'nothing'}: "
                    "nothing beyond the categories to read)")
    if tests is None or (group_size(tests) or 2) < 2:
        return not_computed("RQ3", analysis, expected=expected, paper=paper)
    row = tests[tests["roi"] == roi]
    if not len(row):
        return None
    r = row.iloc[0]
    d, p = float(r["mean_diff"]), float(r["p_adj"])
    found = bool(r["significant"]) and d > 0
    text = (f"{FOUND if found else ABSENT}brain {float(r['mean_a']):.3f} vs labels "
            f"{float(r['mean_b']):.3f} ({r['control']}): {d:+.3f}, p_adj = {p:.3g}")
    agrees = found if card is None else found == planted
    return finding("RQ3", analysis, text, expected=expected, agrees=agrees, paper=paper)


def decoding_rows(dec, consistency, metrics, summary, *, feature: str, sandbox: bool = False,
                  truth=None, beyond_labels=None, card=None) -> list[dict]:
    """The rows of chapter 04 (decoding), in order.

    Parameters
    ----------
    dec, consistency
        As in :func:`decoding_accuracy_row`.
    metrics
        As in :func:`caption_metric_row` (one row per :data:`CAPTION_METRICS`).
    summary
        As in :func:`single_roi_decoding_row`.
    feature : str
        The decoded embedding.
    sandbox : bool
        Whether the data are the generated sandbox; then ``truth`` is required.
    truth : pandas.DataFrame, optional
        Sandbox: planted weights per ROI.
    beyond_labels : pandas.DataFrame, optional
        :func:`~brainllm_utils.chapters.ch04_decoding.beyond_labels_table` (the row of
        :func:`beyond_labels_row`; left out when None).
    card : dict, optional
        Sandbox: the truth card (needed with ``beyond_labels`` on the sandbox).

    Returns
    -------
    list of dict
        :func:`finding` rows: decoding r, identification, caption metrics, single ROIs,
        identification beyond category labels.
    """
    if sandbox and truth is None:
        raise ValueError("sandbox=True needs truth")
    if sandbox and beyond_labels is not None and card is None:
        raise ValueError("sandbox=True with beyond_labels needs card (the truth card)")
    return _kept([decoding_accuracy_row(dec, consistency, feature, sandbox), identification_row(dec)]
                 + [caption_metric_row(metrics, m, label) for m, label in CAPTION_METRICS]
                 + [single_roi_decoding_row(summary, truth if sandbox else None)]
                 + ([beyond_labels_row(beyond_labels, card=card if sandbox else None)]
                    if beyond_labels is not None else []))


# ---------------------------------------------------------------------------- 05 image to LLM
def objective_tests(scores, rois, value: str = "r_normalised", llm: str = "blt_mpnet",
                    category: str = "blt_multihot", method: str = OBJECTIVE_CORRECTION, alpha: float = ALPHA):
    """The paired tests of :func:`network_objective_row` (LLM − category network, per ROI).

    Paired t-tests across subjects in each ROI, corrected over the ROIs.

    Parameters
    ----------
    scores : pandas.DataFrame
        Tidy per-subject scores (``subject, model, roi`` and ``value``), each network already
        averaged over its seeds per subject (chapter 05's ``df``).
    rois : list of str
        The ROIs tested (the family of the correction).
    value : str, default="r_normalised"
        The score column.
    llm, category : str
        The two networks.
    method : {"holm", "bh"}, default=OBJECTIVE_CORRECTION
        Correction over the ROIs.
    alpha : float, default=ALPHA
        Level after the correction.

    Returns
    -------
    pandas.DataFrame
        :func:`brainllm_utils.stats.paired_contrast_tests` of ``llm − category``.
    """
    return paired_contrast_tests(scores, llm, category, value=value, levels=list(rois), method=method,
                                 alpha=alpha)


def network_objective_row(table, tests, roi: str, llm: str = "blt_mpnet", category: str = "blt_multihot"):
    """RQ4: the LLM-trained minus the category-trained network's normalised ROI RSA.

    Criterion: the paired t-test across subjects (each network averaged over its seeds per
    subject first) significant after the correction over the ROIs that ``tests`` states, in
    the paper's direction (LLM-trained ahead). With one subject (``tests`` None or its
    ``n`` < 2) there is no criterion (``agrees`` None; ``table`` then holds plain r, as the
    row's name says).

    Parameters
    ----------
    table : pandas.DataFrame
        Mean normalised r, indexed by model, one column per ROI.
    tests : pandas.DataFrame or None
        :func:`objective_tests` (``stats.paired_contrast_tests`` of ``llm − category``):
        columns ``roi, model_a, model_b, n, mean_diff, p, p_adj, significant,
        correction``.
    roi : str
        The ROI.
    llm, category : str
        The two networks' names in ``table``.

    Returns
    -------
    dict or None
        A :func:`finding`; None when either network is not in ``table``.
    """
    if not {llm, category} <= set(table.index):
        return None
    d = float(table.loc[llm, roi] - table.loc[category, roi])
    t = None
    if tests is not None:
        missing = {"roi", "model_a", "model_b", "n", "p_adj", "significant", "correction"} - set(tests.columns)
        if missing:
            raise ValueError(f"tests: missing columns {sorted(missing)}; expected objective_tests() "
                             "(stats.paired_contrast_tests), not the pairwise table")
        t = tests[(tests["roi"] == roi) & (tests["model_a"] == llm) & (tests["model_b"] == category)]
    single = t is None or not len(t) or int(t["n"].iloc[0]) < 2
    paper = _objective_paper(llm, category, roi)
    analysis = (f"ROI RSA, {roi}: LLM-trained − category-trained network "
                + ("(r; one subject: no ceiling)" if single else "(normalised r)"))
    if single:
        reason = NEEDS_SUBJECTS if tests is not None else "not computed: no per-subject scores"
        return finding("RQ4", analysis, f"{d:+.3f} (paired test {reason})",
                       expected="LLM-trained ahead, significant across subjects (the paper's direction)",
                       agrees=None, paper=paper)
    row = t.iloc[0]
    sig = bool(row["significant"])
    return finding(
        "RQ4", analysis, f"{d:+.3f} (paired t over {int(row['n'])} subjects, p_adj = {row['p_adj']:.3g})",
        expected=f"LLM-trained ahead, significant (the paper's direction; {row['correction']})",
        agrees=sig and float(row["mean_diff"]) > 0, paper=paper)


def _objective_paper(llm: str, category: str, roi: str) -> str:
    """The paper's numbers for ``llm`` and ``category`` in ``roi``, only where each has its match."""
    a, b = paper_reference(llm, roi), paper_reference(category, roi)
    if a.matches and b.matches:
        return f"{a.value_text()} vs {b.value_text()}"
    missing = "; ".join(f"{m}: {r.note}" for m, r in ((llm, a), (category, b)) if not r.matches)
    return (f"no matching paper difference ({missing})"
            + (f"; {llm} alone: {a.value_text()} ({a.paper_row})" if a.matches else ""))


def best_model_row(winners, oracle=None, llm: str = "blt_mpnet"):
    """RQ4: the best of the networks, text spaces and comparison models in each ROI.

    Criterion on real NSD (the paper: the LLM-trained RCNN first in ventral, lateral and
    parietal cortex): ``llm`` the clear winner (``winner_table``: ahead of every other
    model, paired across subjects, corrected over the pairs) in each of
    :data:`PAPER_RSA_ROIS` in ``winners``; none of them, or one subject (``"untested: …"``):
    no criterion. On the sandbox no criterion (no language model made the data; the best
    planted space of each ROI is shown next to it, and :func:`oracle_winner_row` judges).

    Parameters
    ----------
    winners : pandas.DataFrame
        ``winner_table`` of the candidates, indexed by ROI, column ``winner``.
    oracle : pandas.DataFrame, optional
        Sandbox only: ``winner_table`` with the planted ``truth:*`` spaces.
    llm : str, default="blt_mpnet"
        The LLM-trained network.

    Returns
    -------
    dict
        A :func:`finding`.
    """
    expected, agrees = "", None
    if oracle is not None:
        expected = "best planted space: " + "; ".join(f"{roi}: {w}" for roi, w in oracle["winner"].items())
    else:
        rois = [r for r in PAPER_RSA_ROIS if r in winners.index]
        tested = [r for r in rois if not str(winners.loc[r, "winner"]).startswith("untested: ")]
        if tested:
            expected = (f"{llm} the clear winner in {', '.join(tested)} (ahead of every other model, paired "
                        "across subjects, corrected over the pairs)")
            agrees = all(winners.loc[r, "winner"] == llm for r in tested)
    return finding(
        "RQ4", "ROI RSA: best of networks, text spaces and comparison models, per ROI",
        "; ".join(f"{roi}: {w}" for roi, w in winners["winner"].items()), expected=expected, agrees=agrees,
        paper=f"LLM-trained RCNN first in ventral, lateral and parietal among the paper's {len(PAPER_ROI_RSA)} "
              "networks (a different set of candidates)")


def _paper_transfer(target: str, networks) -> str:
    refs = [paper_reference(net, quantity="transfer", target=target) for net in networks]
    missing = [f"{net}: {r.note}" for net, r in zip(networks, refs) if not r.matches]
    if missing:
        return f"no matching paper number ({'; '.join(missing)})"
    return " vs ".join(r.value_text() for r in refs)


def transfer_row(transfer, target: str, llm: str = "blt_mpnet", category: str = "blt_multihot"):
    """RQ4: transfer readout of the two networks' features to ``target`` (held-out cosine).

    Criterion: the LLM-trained network's features score higher.

    Parameters
    ----------
    transfer : pandas.DataFrame
        ``transfer_summary``: indexed by ``(network, target)``, column ``score``.
    target : str
        ``"mpnet"`` or ``"multihot"``.
    llm, category : str
        The two networks' names.

    Returns
    -------
    dict or None
        A :func:`finding` (the paper's matching range, ``reference.paper_reference``); None when a
        network's readout is missing.
    """
    keys = [(llm, target), (category, target)]
    if not all(k in transfer.index for k in keys):
        return None
    a, b = (float(transfer.loc[k, "score"]) for k in keys)
    return finding(
        "RQ4", f"Transfer readout to {target}: LLM-trained vs category-trained features (held-out cosine)",
        f"{a:.3f} vs {b:.3f}", expected="LLM-trained higher", agrees=a > b,
        paper=_paper_transfer(target, [llm, category]))


def training_size_row(align, min_seeds: int = MIN_SWEEP_SEEDS):
    """RQ4: RSA of the LLM-trained network against its training-set size (mean over ROIs).

    Criterion: alignment grows with the training set across seeds: per seed, the slope of
    the alignment (mean over ROIs) on log10(training images); a two-sided one-sample t-test
    of the slopes across seeds, significant (p < :data:`ALPHA`) with a positive mean
    (:func:`brainllm_utils.stats.trend_over_seeds`). With fewer than ``min_seeds`` seeds
    (or a table without a ``seed`` column: one sweep) there is no criterion.

    Parameters
    ----------
    align : pandas.DataFrame or None
        ``size_alignment_table``: columns ``n_train``, ``roi``, ``mean`` and ``seed`` (one
        sweep per seed); None or empty when no size sweep ran.
    min_seeds : int, default=MIN_SWEEP_SEEDS
        Seeds needed for the test.

    Returns
    -------
    dict or None
        A :func:`finding`; None without a sweep.
    """
    if align is None or not len(align):
        return None
    by_size = align.groupby("n_train")["mean"].mean()
    n_seeds = int(align["seed"].nunique()) if "seed" in align.columns else 1
    analysis = (f"Alignment vs training-set size ({by_size.index[0]:,} → {by_size.index[-1]:,} images, "
                f"mean over ROIs, {n_seeds} seed{'s' if n_seeds > 1 else ''})")
    text = f"{by_size.iloc[0]:.3f} → {by_size.iloc[-1]:.3f}"
    expected = (f"grows: per-seed slope on log10(size) > 0, one-sample t-test across ≥ {min_seeds} seeds, "
                f"p < {ALPHA}")
    paper = _size_paper()
    if n_seeds < min_seeds:
        return finding("RQ4", analysis, text + f" (trend not tested: needs ≥ {min_seeds} seeds)", expected,
                       None, paper=paper)
    curve = align.groupby(["seed", "n_train"])["mean"].mean().reset_index()
    res = trend_over_seeds(curve["n_train"], curve["mean"], curve["seed"], alpha=ALPHA)
    text += (f"; slope per decade {res['mean_slope']:+.3f} (t = {res['t']:.2f}, p = {res['p']:.3g}), "
             f"Spearman {res['mean_spearman']:+.2f} (seed mean)")
    return finding("RQ4", analysis, text, expected, res["grows"], paper=paper)


def _size_paper() -> str:
    """What the paper has instead of a training-size sweep (``reference.PAPER_ROI_RSA``)."""
    llm = paper_reference("blt_mpnet", "ventral").paper_row
    sizes = {m: n for m, n, *_ in PAPER_ROI_RSA}
    n_llm = sizes.pop(llm)
    ratios = [n / n_llm for n in sizes.values()]
    return (f"no matching analysis: the paper compares different networks, its {n_llm:,}-image LLM-trained RCNN "
            f"ahead of models trained on {min(ratios):.0f}× to {max(ratios):,.0f}× more images, not one "
            "network across training-set sizes")


def roi_rsa_values(table, measure: str) -> list[dict]:
    """Every model's ROI RSA per ROI, as a ``values`` table for a finding.

    Parameters
    ----------
    table : pandas.DataFrame
        Mean over subjects, indexed by model, one column per ROI (chapter 05's ``table``).
    measure : {"r_normalised", "r"}
        What ``table`` holds (:data:`ROI_RSA_MEASURES`): the noise-ceiling-normalised r,
        or plain r when one subject leaves no ceiling.

    Returns
    -------
    list of dict
        One :data:`VALUE_FIELDS` dict per model and ROI, ``quantity="roi_rsa"``
        (``value`` None where the table holds NaN).
    """
    import pandas as pd

    if measure not in ROI_RSA_MEASURES:
        raise ValueError(f"measure={measure!r}: expected one of {sorted(ROI_RSA_MEASURES)}")
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"table: expected a DataFrame (model × ROI), got {type(table).__name__}")
    out = []
    for model in table.index:
        for roi in table.columns:
            x = float(table.loc[model, roi])
            out.append({"quantity": "roi_rsa", "model": str(model), "roi": str(roi),
                        "value": x if math.isfinite(x) else None, "measure": measure})
    return out


def image_to_llm_rows(table, tests, winners, transfer, *, rois, oracle=None, align=None,
                      value: str | None = None, scores=None) -> list[dict]:
    """The rows of chapter 05 (image to LLM), in order.

    The best-model row carries every model's ROI RSA of ``table`` as its ``values``
    (:func:`roi_rsa_values`), for the reproduction page.

    Parameters
    ----------
    table
        As in :func:`network_objective_row`.
    tests : pandas.DataFrame or None
        ``stats.pairwise_model_tests`` of the LLM-trained network against the others (its
        ``n`` tells one subject from several); the objective rows' own tests come from
        ``scores``.
    winners
        As in :func:`best_model_row`.
    transfer
        As in :func:`transfer_row` (one row per :data:`TRANSFER_TARGETS`).
    rois : list of str
        The ROIs of the ROI RSA, in order.
    oracle : pandas.DataFrame, optional
        Sandbox only: the winner table with the planted spaces.
    align : pandas.DataFrame, optional
        The size sweep's alignment table (None: no sweep ran).
    value : {"r_normalised", "r"}, optional
        The score ``table`` holds (the chapter's ``value``); ``None``: plain r when ``tests``
        is None or has ``n`` < 2, else the normalised r.
    scores : pandas.DataFrame, optional
        The per-subject, seed-averaged scores (chapter 05's ``df``): the objective rows test
        them (:func:`objective_tests`); without them those rows have no criterion.

    Returns
    -------
    list of dict
        :func:`finding` rows: network objectives per ROI, best model (with ``values``),
        transfer readouts, training-set size.
    """
    if value is None:
        value = "r" if tests is None or (group_size(tests) or 2) < 2 else "r_normalised"
    best = dict(best_model_row(winners, oracle), values=roi_rsa_values(table, value))
    objective = None if scores is None else objective_tests(scores, rois, value)
    return _kept([network_objective_row(table, objective, roi) for roi in rois]
                 + [best]
                 + [transfer_row(transfer, target) for target in TRANSFER_TARGETS]
                 + [training_size_row(align)])


# ---------------------------------------------------------------------------- RQ2 against the brain
#: RQ2, real NSD: the kinds of space (``chapters.rq2.rq2_kind``) the full caption must beat in
#: the paper's ROIs (Fig. 3, Supp. Fig. 9): categories, word vectors, word averages, word classes
RQ2_NSD_CONTROL_KINDS = ("categories", "word vectors", "word average", "word class",
                         "word class, as a sentence")
#: RQ2, sandbox: the word classes that name no object and no action (nothing of the planted
#: category or interaction spaces): where those are planted, the full caption must beat them
RQ2_CONTENT_FREE = ("adjectives", "adverbs", "prepositions")
#: RQ2, sandbox: the controls of the "beyond single words" claim (the paper's Fig. 3): where
#: the truth card plants the :data:`SENTENCE_SPACE` the full caption must beat each of them,
#: where it does not it must not beat them all (:func:`sentence_controls_row`)
RQ2_SENTENCE_CONTROL_KINDS = ("categories", "word average")


def _rq2_sandbox_control(space: str) -> bool:
    return any(space in (f"mpnet_{g}", f"mpnet_{g}_sentence") for g in RQ2_CONTENT_FREE)


def rq2_controls_row(table, roi: str, *, method: str = "ROI RSA", card=None):
    """RQ2: the main model above each control in one of :data:`PAPER_RSA_ROIS`, paired.

    The test is :func:`~brainllm_utils.chapters.rq2.rq2_comparison`'s: a paired t-test of
    ``main − control`` over subjects per ROI, Benjamini–Hochberg FDR over the spaces compared
    in the ROI. Criterion on real NSD (the paper's claim, Fig. 3 and Supp. Fig. 9): for every
    computed control of :data:`RQ2_NSD_CONTROL_KINDS`, the difference is > 0 and
    FDR-significant. On the sandbox the truth card decides. In an ROI where it plants the
    :data:`SENTENCE_SPACE` (the positive control), against the category and word-average
    controls (:data:`RQ2_SENTENCE_CONTROL_KINDS`) and the word classes that name neither
    objects nor actions (:data:`RQ2_CONTENT_FREE`): the sentence space carries what each of
    them misses. Elsewhere only in an ROI whose planted category + interaction weight is at
    least :data:`PLANTED_CAPTION_SHARE` (None otherwise), and only against
    :data:`RQ2_CONTENT_FREE`: what is planted there is what nouns and verbs say, so those
    classes must lose. Controls the run did not compute (no word-vector file) are named in
    the row, never counted as passes.

    Parameters
    ----------
    table : pandas.DataFrame or None
        :func:`~brainllm_utils.chapters.rq2.rq2_comparison`: ``roi, space, kind, n,
        mean_diff, p_fdr, significant, note``; ``attrs["main"]`` names the main model.
        None: RQ2 was not run (no row).
    roi : str
        One of :data:`PAPER_RSA_ROIS`.
    method : str, default="ROI RSA"
        What the scores are (``"ROI RSA"`` or ``"Encoding"``), for the row's text.
    card : dict, optional
        The sandbox's truth card; None on real NSD.

    Returns
    -------
    dict or None
        A :func:`finding`; None without the ROI or (sandbox) where the criterion does not apply.
    """
    if table is None or roi not in set(table["roi"]):
        return None
    main = table.attrs.get("main", "mpnet")
    t = table[table["roi"] == roi]
    if card is not None and _sentence_planted(card, roi):
        t = t[t["space"].map(_rq2_sandbox_control) | t["kind"].isin(RQ2_SENTENCE_CONTROL_KINDS)]
        expected = (f"> 0, FDR-significant for each category, word-average and word-class control naming "
                    f"no object or action (planted: {_planted_mix(card, roi)})")
    elif card is not None:
        mix = card["roi_spaces"].get(roi, {})
        if mix.get("category", 0) + mix.get("interaction", 0) < PLANTED_CAPTION_SHARE:
            return None
        t = t[t["space"].map(_rq2_sandbox_control)]
        expected = (f"> 0, FDR-significant for each word class naming no object or action "
                    f"(planted: {_planted_mix(card, roi)})")
    else:
        t = t[t["kind"].isin(RQ2_NSD_CONTROL_KINDS)]
        expected = "> 0, FDR-significant for every category, word-vector, word-average and word-class control"
    analysis = f"{method}, {roi}: {main} − each RQ2 control (paired t, BH-FDR over the spaces in the ROI)"
    paper = "full caption above categories, word averages, nouns, verbs (Fig. 3), other word classes (Supp. Fig. 9)"
    if method != "ROI RSA":
        paper = f"not run by the paper ({method.lower()}); its RSA claim: {paper}"
    done = t[t["note"] == ""]
    skipped = t[t["note"].str.startswith("not computed")]["space"].tolist()
    if not len(done):
        return not_computed("RQ2", analysis, reason="not computed: no RQ2 control scored"
                            + (f" ({', '.join(skipped)}: no vector file given)" if skipped else ""),
                            expected=expected, paper=paper)
    if (done["n"] < 2).any() or not np.isfinite(done["p_fdr"]).all():
        return not_computed("RQ2", analysis, expected=expected, paper=paper)
    ok = done["significant"].astype(bool) & (done["mean_diff"] > 0)
    fails = [f"{s} {d:+.3f} (p_FDR = {p:.2g})" for s, d, p, good in
             zip(done["space"], done["mean_diff"], done["p_fdr"], ok) if not good]
    text = f"{int(ok.sum())} of {len(done)} controls below {main}, FDR-significant"
    if fails:
        text += "; not: " + ", ".join(fails)
    if skipped:
        text += f"; not computed (no vector file given): {', '.join(skipped)}"
    return finding("RQ2", analysis, text, expected=expected, agrees=bool(ok.all()), paper=paper)


def sentence_controls_row(table, roi: str, *, method: str = "ROI RSA", card=None):
    """RQ2 (sandbox): "beyond single words" in one of :data:`PAPER_RSA_ROIS`, found or absent as planted.

    The claim that tells the two sandbox worlds apart: the main model above every category
    and word-average control (:data:`RQ2_SENTENCE_CONTROL_KINDS`), each difference > 0 and
    FDR-significant (:func:`~brainllm_utils.chapters.rq2.rq2_comparison`'s paired t-test,
    BH-FDR over the spaces in the ROI). The truth card gives the expected outcome: where it
    plants the :data:`SENTENCE_SPACE` in ``roi`` (the positive control) the claim must hold;
    where it does not (the null world, or an ROI the positive control leaves alone) it must
    not, since nothing there is beyond what the words' categories and averages carry. On
    real NSD no row (:func:`rq2_controls_row` states the paper's claim).

    Parameters
    ----------
    table : pandas.DataFrame or None
        :func:`~brainllm_utils.chapters.rq2.rq2_comparison` (as in :func:`rq2_controls_row`).
    roi : str
        One of :data:`PAPER_RSA_ROIS`.
    method : str, default="ROI RSA"
        What the scores are, for the row's text.
    card : dict, optional
        The sandbox's truth card (``roi_spaces``); None on real NSD.

    Returns
    -------
    dict or None
        A :func:`finding`; None on real NSD, without the ROI, or without a category or
        word-average control in the table.
    """
    if card is None or table is None or roi not in set(table["roi"]):
        return None
    main = table.attrs.get("main", "mpnet")
    t = table[(table["roi"] == roi) & table["kind"].isin(RQ2_SENTENCE_CONTROL_KINDS)]
    if not len(t):
        return None
    planted = _sentence_planted(card, roi)
    analysis = (f"{method}, {roi}: beyond single words, {main} above every category and word-average "
                "control (paired t, BH-FDR over the spaces in the ROI)")
    expected = (f"{FOUND}each > 0, FDR-significant (planted: {_planted_mix(card, roi)})" if planted else
                f"{ABSENT}not above every one (no sentence space planted: {_planted_mix(card, roi) or 'nothing'})")
    paper = "full caption above categories and word averages (Fig. 3)"
    done = t[t["note"] == ""]
    if not len(done) or (done["n"] < 2).any() or not np.isfinite(done["p_fdr"]).all():
        return not_computed("RQ2", analysis, expected=expected, paper=paper)
    ok = done["significant"].astype(bool) & (done["mean_diff"] > 0)
    found = bool(ok.all())
    text = (f"{FOUND if found else ABSENT}{int(ok.sum())} of {len(done)} below {main}, FDR-significant ("
            + ", ".join(f"{s} {d:+.3f}, p_FDR = {p:.2g}" for s, d, p in
                        zip(done["space"], done["mean_diff"], done["p_fdr"])) + ")")
    return finding("RQ2", analysis, text, expected=expected, agrees=found == planted, paper=paper)


__all__ += ["RQ2_NSD_CONTROL_KINDS", "RQ2_CONTENT_FREE", "RQ2_SENTENCE_CONTROL_KINDS", "rq2_controls_row",
            "sentence_controls_row"]


# ---------------------------------------------------------------------------- two sandbox worlds
#: :func:`compare_worlds`' verdicts, by (kind of claim, null row agrees, positive row agrees);
#: the kind: ``"flips"`` (the null card expects the effect absent, the positive card found:
#: :data:`ABSENT` / :data:`FOUND`), ``"same"`` (both cards expect the same outcome),
#: ``"differs"`` (the cards set different criteria, neither an absence); rows without a
#: criterion or in one world only get :data:`NO_CRITERION` or :data:`ONE_WORLD_ONLY`
WORLD_VERDICTS = {
    ("flips", True, True): "found where planted, absent in null",
    ("flips", False, True): "cannot tell apart: the null world shows it too",
    ("flips", True, False): "missed where planted",
    ("flips", False, False): "disagrees in both worlds",
    ("same", True, True): "agrees in both (same expectation in both worlds)",
    ("differs", True, True): "agrees in both (criteria differ with the card)",
    **{(kind, n, p): text for kind in ("same", "differs") for (n, p), text in {
        (False, True): "disagrees in the null world", (True, False): "disagrees in the positive world",
        (False, False): "disagrees in both worlds"}.items()},
}
#: :func:`compare_worlds`: a row without a criterion (descriptive, not computed) in a world
NO_CRITERION = "no criterion in one world or both"
#: :func:`compare_worlds`: a row that only one world recorded ({world} is filled in)
ONE_WORLD_ONLY = "only in the {world} world"
#: :func:`compare_worlds`' columns
WORLD_FIELDS = ("rq", "chapter", "analysis", "null", "positive", "expected_null", "expected_positive",
                "verdict")


def _outcome(expected: str) -> str:
    """An expected text without its parentheses and numbers: the outcome it asks for."""
    import re

    text = re.sub(r"\s*\([^()]*\)", "", expected)
    return re.sub(r"[-+]?\d+(?:[.,]\d+)*%?", "#", text).strip()


def _claim_kind(null_expected: str, positive_expected: str) -> str:
    """``"flips"``, ``"same"`` or ``"differs"`` (:data:`WORLD_VERDICTS`)."""
    if null_expected.startswith(ABSENT) and positive_expected.startswith(FOUND):
        return "flips"
    return "same" if _outcome(null_expected) == _outcome(positive_expected) else "differs"


def _mark(agrees) -> str:
    return {True: "✓", False: "✗"}.get(agrees, "–")


def _scorecard_rows(rows, name: str) -> list[dict]:
    """``rows`` (a :func:`load` table or a list of :func:`finding` dicts with ``chapter``) as dicts."""
    if hasattr(rows, "to_dict"):
        rows = rows.to_dict("records")
    if not isinstance(rows, (list, tuple)):
        raise TypeError(f"{name}: expected a findings table (load) or a list of findings, "
                        f"got {type(rows).__name__}")
    out = []
    for r in rows:
        if not isinstance(r, dict) or set(FIELDS) - set(r):
            raise ValueError(f"{name}: each finding needs the fields {list(FIELDS)}, got {r!r}")
        agrees = r["agrees"]
        if agrees is not None and not isinstance(agrees, (bool, np.bool_)):
            agrees = None if isinstance(agrees, float) and math.isnan(agrees) else agrees
            if agrees is not None and not isinstance(agrees, (bool, np.bool_)):
                raise ValueError(f"{name}: 'agrees' must be True, False or None, got {agrees!r}")
        out.append({**{k: r[k] for k in FIELDS}, "rq": str(r["rq"]),
                    "agrees": None if agrees is None else bool(agrees)})
    keys = [(r["rq"], r["chapter"], r["analysis"]) for r in out]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise ValueError(f"{name}: findings recorded twice (rq, chapter, analysis): {dup[:3]}")
    return out


def compare_worlds(null_rows, positive_rows):
    """Per claim, the null world's result beside the positive world's, and a verdict.

    The sandbox's two worlds differ only in what drives the brain: the null world plants no
    sentence space, the positive control (``synth`` preset ``positive``) plants one in some
    ROIs. Each finding is matched by ``(rq, chapter, analysis)``; its criterion in each world
    comes from that world's truth card (the ``expected`` text). The verdict
    (:data:`WORLD_VERDICTS`): for a claim the cards flip (the null card expects the effect
    :data:`ABSENT`, the positive card :data:`FOUND`), "found where planted, absent in null"
    when both worlds agree with their card, "cannot tell apart" when the null world fails
    its absence while the positive world passes, "missed where planted" when the positive
    world fails. Otherwise the expected outcomes are compared without their parentheses and
    numbers (the planted mixture, a baseline's value): the same outcome (RQ1: captions
    describe the planted content in both worlds) or criteria that differ with the card;
    then whether each world agrees.
    Rows without a criterion in a world get :data:`NO_CRITERION`; rows of one world only,
    :data:`ONE_WORLD_ONLY`.

    Parameters
    ----------
    null_rows, positive_rows : pandas.DataFrame or list of dict
        The two worlds' findings (:func:`load`, :func:`load_scorecard`): columns
        :data:`FIELDS`.

    Returns
    -------
    pandas.DataFrame
        One row per claim, columns :data:`WORLD_FIELDS` (``null`` / ``positive``: the
        recovered value with ✓, ✗ or – for agrees, empty when the world lacks the row), in
        the null world's order, then the positive world's own rows; ``rq`` ordered as
        :data:`RQS`.
    """
    import pandas as pd

    null, pos = _scorecard_rows(null_rows, "null_rows"), _scorecard_rows(positive_rows, "positive_rows")
    pos_by_key = {(r["rq"], r["chapter"], r["analysis"]): r for r in pos}
    null_keys = {(r["rq"], r["chapter"], r["analysis"]) for r in null}
    out = []
    for a in null + [r for r in pos if (r["rq"], r["chapter"], r["analysis"]) not in null_keys]:
        key = (a["rq"], a["chapter"], a["analysis"])
        n = a if key in null_keys else None
        p = pos_by_key.get(key)
        if n is None or p is None:
            verdict = ONE_WORLD_ONLY.format(world="positive" if n is None else "null")
        elif n["agrees"] is None or p["agrees"] is None:
            verdict = NO_CRITERION
        else:
            verdict = WORLD_VERDICTS[(_claim_kind(n["expected"], p["expected"]), n["agrees"], p["agrees"])]
        out.append(dict(
            rq=a["rq"], chapter=a["chapter"], analysis=a["analysis"],
            null="" if n is None else f"{_mark(n['agrees'])} {n['recovered']}",
            positive="" if p is None else f"{_mark(p['agrees'])} {p['recovered']}",
            expected_null="" if n is None else n["expected"],
            expected_positive="" if p is None else p["expected"], verdict=verdict))
    df = pd.DataFrame(out, columns=list(WORLD_FIELDS))
    if len(df):
        df["rq"] = pd.Categorical(df["rq"], categories=list(RQS), ordered=True)
        df = df.sort_values(["rq", "chapter"], kind="stable").reset_index(drop=True)
    return df


#: the positive world's saved scorecard that the summary page reads (repository-relative;
#: written by ``make positive`` with :func:`save_scorecard`)
POSITIVE_SCORECARD = Path("book") / "results" / "positive_world_findings.json"
#: how to regenerate :data:`POSITIVE_SCORECARD`
POSITIVE_COMMAND = "make positive"


def save_scorecard(nsd, path, chapters=None, results_dir=None, timings=None) -> Path:
    """Write ``nsd``'s recorded findings (:func:`load`) as a small JSON scorecard.

    For a world whose chapters run outside the default book (the positive control, ``make
    positive``): the summary page reads the file with :func:`load_scorecard`. It holds the
    findings' rows only (never data), the truth card's ``roi_spaces`` and ``sentence_space``
    model, and optionally the chapters' run times.

    Parameters
    ----------
    nsd : NSD
        The world's dataset (a generated sandbox: its truth card is recorded).
    path : str or path-like
        The JSON file to write (atomically).
    chapters : list of str, optional
        Chapters to keep (default: every chapter's own run).
    results_dir : path, optional
        Default: ``get_results_dir()``.
    timings : dict of str to float, optional
        Seconds per chapter, recorded as they are.

    Returns
    -------
    Path
        ``path``.
    """
    from .. import synth

    if not synth.is_sandbox(nsd.root):
        raise ValueError(f"nsd: {nsd.root} is not a generated sandbox (no truth card); a scorecard file "
                         "is for a sandbox world, never real NSD")
    rows = load(nsd, chapters=chapters, results_dir=results_dir)
    if not len(rows):
        raise ValueError(f"no findings recorded for {nsd.root} (chapters={chapters}); run its chapters first")
    if timings is not None:
        if not isinstance(timings, dict) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
                for v in timings.values()):
            raise ValueError(f"timings: expected {{chapter: seconds ≥ 0}}, got {timings!r}")
    card = synth.load_truth(nsd.root)
    sentence = card.get("sentence_space") or {}
    payload = {
        "world": "positive" if any(SENTENCE_SPACE in m for m in card["roi_spaces"].values()) else "null",
        "roi_spaces": card["roi_spaces"], "sentence_model": sentence.get("model"),
        "chapters": sorted(set(rows["chapter"])), "timings_s": timings,
        "command": POSITIVE_COMMAND,
        "rows": [{**r, "rq": str(r["rq"])} for r in rows[list(FIELDS)].to_dict("records")],
    }
    path = Path(path)
    atomic_write_text(path, json.dumps(payload, indent=1, ensure_ascii=False) + "\n")
    return path


def load_scorecard(path):
    """A scorecard file of :func:`save_scorecard`, or None when there is none.

    Parameters
    ----------
    path : str or path-like
        The JSON file.

    Returns
    -------
    scorecard : dict or None
        The file's fields, with ``rows`` as a :func:`load`-style table (columns
        :data:`FIELDS`); None when ``path`` does not exist (the world was not run yet: the
        page says so, with :data:`POSITIVE_COMMAND`).
    """
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list):
        raise ValueError(f"{path}: not a scorecard file (expected a JSON object with 'rows')")
    rows = _scorecard_rows(data["rows"], str(path))
    df = pd.DataFrame(rows, columns=list(FIELDS))
    df["rq"] = pd.Categorical(df["rq"], categories=list(RQS), ordered=True)
    return {**data, "rows": df}


#: :func:`world_comparison`'s message when the positive world's scorecard file is absent
NOT_YET_COMPUTED = f"not yet computed: run {POSITIVE_COMMAND}"


def world_comparison(null_rows, scorecard):
    """The summary page's two-world comparison, or the reason there is none.

    Parameters
    ----------
    null_rows : pandas.DataFrame
        The null world's findings (:func:`load` on the default sandbox).
    scorecard : dict or None
        The positive world's :func:`load_scorecard`; None when its file is absent.

    Returns
    -------
    comparison : pandas.DataFrame or None
        :func:`compare_worlds` over the chapters the positive world ran (the null world's
        rows of other chapters left out); None when there is nothing to compare.
    counts : dict of str to int
        Claims per verdict (empty without a comparison).
    message : str
        :data:`NOT_YET_COMPUTED` without a scorecard; a sentence naming the null world's
        chapters not yet run when it has none of the positive world's; else how many claims
        were compared.
    """
    if scorecard is None:
        return None, {}, NOT_YET_COMPUTED
    if not isinstance(scorecard, dict) or "rows" not in scorecard or "chapters" not in scorecard:
        raise TypeError(f"scorecard: expected load_scorecard's dict or None, got {type(scorecard).__name__}")
    chapters = list(scorecard["chapters"])
    null = null_rows[null_rows["chapter"].isin(chapters)]
    if not len(null):
        return None, {}, (f"the null world's chapters {', '.join(chapters)} have not run yet: "
                          "nothing to compare the positive world with")
    table = compare_worlds(null, scorecard["rows"])
    counts = {str(k): int(v) for k, v in table["verdict"].value_counts().items()}
    return table, counts, f"{len(table)} claims of chapters {', '.join(chapters)} compared"


__all__ += ["WORLD_VERDICTS", "NO_CRITERION", "ONE_WORLD_ONLY", "WORLD_FIELDS", "compare_worlds",
            "POSITIVE_SCORECARD", "POSITIVE_COMMAND", "save_scorecard", "load_scorecard",
            "NOT_YET_COMPUTED", "world_comparison"]
