"""The reproduction table: each number a run of the book computed, next to the paper's.

After a run, :func:`reproduction_table` sets the numbers the chapters recorded
(:mod:`~brainllm_utils.chapters.findings`) next to the paper's matching numbers
(:mod:`~brainllm_utils.chapters.reference`), each with a stated tolerance, and says per row
whether the two are comparable at all and, when they are, whether they agree. The book's
page ``notebooks/07_reproduction.ipynb`` shows the table and writes it as CSV beside itself
(:func:`write_reproduction_csv`), for users to send back.

A row is comparable only when all of these hold; otherwise ``why_not`` names each one that
fails:

- the data are real NSD at full size (73,000 images, an 8 × 10,000 ``subjectim``), not the
  generated sandbox (which holds ``sandbox_truth/card.json``);
- all 8 subjects have betas on disk, each with NSD's sessions (40, 40, 32, 30, 40, 32, 40, 30);
- the row's chapter ran with the paper profile's settings (the batch runner's
  ``PROFILES["paper"]``, checked against the run's parameters from its manifest), on every
  subject and session;
- the book's quantity is the paper's (the same network, control and readout);
- the run recorded the number.

Which of the book's models pairs with which of the paper's rows is the reference data's
(:data:`~brainllm_utils.chapters.reference.PAPER_ROI_RSA_MODELS`: the same kind of model
trained the same way); each row's ``note`` says what the paper trained and scored. The
paper's LLM-trained minus category-trained difference is against an ecoset-trained network
the book does not train, so the book's ``blt_mpnet − blt_multihot`` has no paper number and
no row here (the paper reports its multi-hot BLT only in the transfer readout).

The paper publishes few numbers (``shared/docs/paper_methods.md`` §7): the noise-ceiling
normalised ROI RSA of 14 networks in 3 ROIs, the transfer readouts, and counts such as the
515 shared test images. Its other results (per-ROI MPNet RSA, encoding and decoding
accuracies, caption metrics) are maps or qualitative statements; they have no row here.

Where the numbers come from: the count and the transfer readouts are parsed from the
findings' text (chapters 04 and 05); the networks' normalised ROI RSA from the ``values``
table chapter 05's model-comparison finding carries (``findings.load_values``: every model
× ROI of the chapter's table, with its measure). A value recorded as plain r (one subject,
no ceiling) is shown but not comparable: the paper's numbers are normalised by the
leave-one-subject-out ceiling.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from .._utils.paths import atomic_path
from ..nsd import N_SUBJECTS, NSD_SESSIONS, subject_name
from ..synth import is_sandbox
from .reference import (
    PAPER_COUNTS,
    PAPER_ROI_RSA,
    PAPER_ROI_RSA_MODELS,
    PAPER_ROI_RSA_ROIS,
    PAPER_ROI_RSA_SOURCE,
    PAPER_TRANSFER,
    PAPER_TRANSFER_MODELS,
    PAPER_TRANSFER_SOURCE,
)

__all__ = [
    "COLUMNS", "NSD_IMAGES", "NSD_IMAGES_PER_SUBJECT", "TOLERANCES", "BOOK_MODELS",
    "describe_dataset", "manifest_parameters", "reproduction_table", "run_verdict",
    "write_reproduction_csv", "read_reproduction_csv",
]

#: images in NSD (``nsd_stim_info_merged.csv`` rows)
NSD_IMAGES = 73_000
#: images per subject in NSD's design (``subjectim`` columns)
NSD_IMAGES_PER_SUBJECT = 10_000
#: columns of the reproduction table, in order
COLUMNS = ("chapter", "kind", "quantity", "item", "ours", "ours_low", "ours_high", "paper", "paper_low",
           "paper_high", "paper_source", "tolerance", "tolerance_reason", "comparable", "why_not", "agrees",
           "note")

_ROI_RSA_TOL = 0.05
_TRANSFER_TOL = round(max(high - low for _, _, low, high in PAPER_TRANSFER), 3)
#: kind of quantity → (tolerance, reason). A row agrees when ours lies in
#: ``[paper_low − tolerance, paper_high + tolerance]``.
TOLERANCES = {
    "roi_rsa": (_ROI_RSA_TOL,
                f"±{_ROI_RSA_TOL} normalised r, this book's choice: the paper gives no error bars for these "
                "values; 0.05 is about the LLM-trained RCNN's lead over the next network in ventral cortex "
                "(0.429 vs 0.382)"),
    "transfer": (_TRANSFER_TOL,
                 f"±{_TRANSFER_TOL} cosine beyond the paper's range over 10 seeds: its widest seed spread "
                 "(multi-hot → multi-hot, 0.622–0.636); other seeds and held-out images move the score "
                 "about that much"),
    "count": (0.0, "a count: exact"),
}
#: the paper's networks (rows of ``PAPER_ROI_RSA``) → the book's model that is the same kind of
#: model trained the same way (``None``: the book has none; the reason follows), from
#: ``reference.PAPER_ROI_RSA_MODELS``
BOOK_MODELS = {model: (book, "" if book else why) for model, (_, book, why) in PAPER_ROI_RSA_MODELS.items()}
_PAPER_ROIS = PAPER_ROI_RSA_ROIS
_NETWORKS = {"blt_mpnet": "LLM-trained", "blt_multihot": "category-trained"}
_EPS = 1e-9  # values parsed from 3-decimal text: an edge value is inside its tolerance


# ---------------------------------------------------------------------------- the dataset
def describe_dataset(nsd) -> dict:
    """What decides whether a run on ``nsd`` can be compared with the paper.

    Parameters
    ----------
    nsd : NSD
        The dataset the book ran on (:class:`brainllm_utils.nsd.NSD`).

    Returns
    -------
    dict
        ``root`` (str), ``sandbox`` (bool: a generated sandbox, with a truth card),
        ``n_images`` (int), ``subjectim_shape`` ([subjects, images per subject] of the
        design), ``subjects`` (those with betas on disk) and ``sessions`` (subject → the
        number of its sessions with fsaverage betas on disk, holes allowed: ``NSD.sessions``).
    """
    return {
        "root": str(nsd.root),
        "sandbox": bool(is_sandbox(nsd.root)),
        "n_images": int(nsd.n_images),
        "subjectim_shape": [int(n) for n in nsd.expdesign["subjectim"].shape],
        "subjects": list(nsd.subjects),
        "sessions": {s: len(nsd.sessions(s, "fsaverage", warn=False)) for s in nsd.subjects},
    }


_DATASET_KEYS = ("sandbox", "n_images", "subjectim_shape", "subjects", "sessions")


def _dataset_reasons(d: dict) -> list[str]:
    """Why a run on dataset ``d`` cannot be compared with the paper (empty: it can)."""
    if d["sandbox"]:
        return ["sandbox data: synthetic brain, not NSD"]
    reasons = []
    shape = list(d["subjectim_shape"])
    if d["n_images"] != NSD_IMAGES or shape != [N_SUBJECTS, NSD_IMAGES_PER_SUBJECT]:
        reasons.append(f"not full-size NSD: {d['n_images']:,} images, subjectim {shape[0]} × {shape[1]:,} "
                       f"(NSD: {NSD_IMAGES:,}, {N_SUBJECTS} × {NSD_IMAGES_PER_SUBJECT:,})")
    subjects = list(d["subjects"])
    if len(subjects) < N_SUBJECTS:
        reasons.append(f"subjects {len(subjects)} of {N_SUBJECTS} on disk")
    short = []
    for s in subjects:
        want = NSD_SESSIONS.get(int(subject_name(s)[4:]))
        have = int(d["sessions"].get(s, 0))
        if want is not None and have < want:
            short.append(f"{s} {have} of {want}")
    if short:
        reasons.append("sessions on disk: " + ", ".join(short))
    return reasons


# ---------------------------------------------------------------------------- the run's settings
def manifest_parameters(manifest) -> dict:
    """The parameters each chapter's own run used, from the batch runner's manifest.

    Grid runs (``NN_name__param-value``) are left out, as the findings leave them out.

    Parameters
    ----------
    manifest : dict
        ``brainllm_utils.batch.read_manifest(...)``: ``{"notebooks": {output name: entry}}``,
        each entry with its source ``notebook`` and ``parameters``.

    Returns
    -------
    dict of str to dict
        Notebook stem (``05_image_to_llm``) → its parameters.
    """
    if not isinstance(manifest, dict) or not isinstance(manifest.get("notebooks"), dict):
        raise ValueError("manifest: expected {'notebooks': {output name: entry}} (batch.read_manifest)")
    out = {}
    for name, entry in manifest["notebooks"].items():
        if not isinstance(entry, dict) or "notebook" not in entry:
            raise ValueError(f"manifest entry {name!r}: expected a dict with 'notebook' and 'parameters'")
        if name == entry["notebook"]:  # the chapter's own run, not a grid point
            out[Path(name).stem] = dict(entry.get("parameters") or {})
    return out


def _canon(value):
    """A value as JSON reads it back (tuples → lists, ranges → lists), for comparisons."""
    if isinstance(value, range):
        value = list(value)
    return json.loads(json.dumps(value, default=list))


def _short(value) -> str:
    text = json.dumps(_canon(value))
    return text if len(text) <= 30 else text[:27] + "…"


def _settings_reasons(chapter: str, run_parameters, paper_settings) -> list[str]:
    """Why ``chapter``'s run is not the paper's setting (empty: it is)."""
    if run_parameters is None:
        return ["run settings unknown (no batch manifest)"]
    if chapter not in run_parameters:
        return [f"run settings unknown (no manifest entry for {chapter})"]
    params = run_parameters[chapter]
    reasons = []
    if paper_settings is None:
        reasons.append("the paper profile's settings were not given")
    else:
        diff = [f"{k}={_short(params.get(k))} (paper: {_short(v)})"
                for k, v in paper_settings.get(chapter, {}).items()
                if k not in params or _canon(params[k]) != _canon(v)]
        if diff:
            more = f", +{len(diff) - 3} more" if len(diff) > 3 else ""
            reasons.append("paper profile not used: " + ", ".join(diff[:3]) + more)
    subjects = params.get("subjects")
    if subjects is not None and len(set(subject_name(s) for s in subjects)) < N_SUBJECTS:
        reasons.append(f"subjects {len(set(subjects))} of {N_SUBJECTS} (subjects={_short(subjects)})")
    if params.get("sessions") is not None:
        reasons.append(f"sessions selected (sessions={_short(params['sessions'])})")
    return reasons


def run_verdict(df) -> str:
    """One sentence on whether a run is comparable with the paper, for the top of the page.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`reproduction_table`.

    Returns
    -------
    str
        "Comparable: …" with the agreeing rows, or "Not comparable: …" with the most common
        reasons.
    """
    n_comp = int(df["comparable"].sum())
    if n_comp:
        agree = int((df["agrees"] == True).sum())  # noqa: E712 (object column: True/False/None)
        return (f"Comparable: {n_comp} of {len(df)} of the paper's numbers can be compared with this run; "
                f"{agree} of them agree within their tolerance.")
    reasons = {}
    for text in df["why_not"]:
        for r in str(text).split("; "):
            reasons[r] = reasons.get(r, 0) + 1
    top = sorted(reasons, key=lambda r: -reasons[r])[:2]
    return (f"Not comparable: none of the paper's {len(df)} numbers can be compared with this run "
            f"({'; '.join(top)}).")


# ---------------------------------------------------------------------------- the run's numbers
def _chapter_rows(found, chapter):
    return found[found["chapter"] == chapter]


def _match(found, chapter: str, prefix: str):
    """The first finding of ``chapter`` whose analysis starts with ``prefix`` (None: none)."""
    rows = _chapter_rows(found, chapter)
    rows = rows[rows["analysis"].astype(str).str.startswith(prefix)]
    return rows.iloc[0] if len(rows) else None


_NUM = r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)|[+-]?nan)"


def _number(text: str, pattern: str, group: int = 1) -> float:
    m = re.match(pattern, str(text).strip())
    return float(m.group(group)) if m else math.nan


def _missing(found, chapter: str, what: str) -> str:
    if not len(_chapter_rows(found, chapter)):
        return f"not computed by this run (chapter {chapter} recorded no findings)"
    return f"not computed by this run (chapter {chapter} recorded no {what} finding)"


_SEED_NOTE = (" (per-subject r averaged over its seeds, as the paper's code; the paper's Fig. 4c caption "
              "averages the seeds' RDMs instead)")
_MEASURE_MISMATCH = ("the book's value is plain r (one subject: no leave-one-subject-out ceiling), the "
                     "paper's is divided by that ceiling")


def _roi_rsa_values(values) -> dict:
    """``(model, roi) → (value, measure)`` of chapter 05's recorded ROI RSA values."""
    if values is None or not len(values):
        return {}
    rows = values[(values["chapter"] == "05_image_to_llm") & (values["quantity"] == "roi_rsa")]
    out = {}
    for _, r in rows.iterrows():
        key = (str(r["model"]), str(r["roi"]))
        if key in out:
            raise ValueError(f"values: {key} recorded twice for 05_image_to_llm")
        out[key] = (float(r["value"]), str(r["measure"]))
    return out


def _absent(book: str, roi: str, recorded: dict, params) -> str:
    """Why chapter 05's recorded values lack ``book`` in ``roi`` (``params``: the run's, or None)."""
    head = f"not computed by this run ({book} has no {roi} ROI RSA in chapter 05's table: "
    if not any(r == roi for _, r in recorded):
        return head + f"ROI {roi} not among the chapter's rois)"
    if book.startswith("blt_"):
        return head + "the network was not trained)"
    models = (params or {}).get("comparison_models")
    if isinstance(models, (list, tuple)) and book not in models:
        return head + "not in the run's comparison_models)"
    if isinstance(models, (list, tuple)):
        return head + "in the run's comparison_models but not computed: its weights were missing, see the chapter)"
    return head + "not among the run's comparison models, or its weights were missing)"


def _specs(found, values=None, run_parameters=None) -> list[dict]:
    """The paper's numbers with this run's matching values (NaN + reason where none)."""
    specs = []
    # 04: the shared test set
    (label, count, source), = PAPER_COUNTS
    row = _match(found, "04_decoding", "Identification among ")
    ours = _number(row["analysis"], r"Identification among (\d+) test images") if row is not None else math.nan
    specs.append(dict(chapter="04_decoding", kind="count", quantity="test images", item=label, ours=ours,
                      paper_low=float(count), paper_high=float(count), paper_source=source,
                      missing=_missing(found, "04_decoding", "identification") if row is None else "",
                      note="the shared-1000 images seen 3 times by every subject"))
    # 05: networks' normalised ROI RSA (the values table of chapter 05's findings)
    recorded = _roi_rsa_values(values)
    for model, _, *paper_values in PAPER_ROI_RSA:
        book, absent = BOOK_MODELS[model]
        for roi, paper_value in zip(_PAPER_ROIS, paper_values):
            ours, measure = recorded.get((book, roi), (math.nan, "")) if book else (math.nan, "")
            if not book:
                why = f"not computed by this run: {absent}"
            elif not recorded and not len(_chapter_rows(found, "05_image_to_llm")):
                why = _missing(found, "05_image_to_llm", "ROI RSA")
            elif not recorded and values is None:
                why = ("not computed by this run as far as this table knows (no recorded values given: "
                       "reproduction_table(..., values=findings.load_values(nsd)))")
            elif not recorded:
                why = ("not computed by this run (chapter 05's findings carry no ROI RSA values: recorded by an "
                       "older version of the book; rerun chapter 05)")
            elif (book, roi) not in recorded:
                why = _absent(book, roi, recorded, (run_parameters or {}).get("05_image_to_llm"))
            else:
                why = (f"not computed by this run (chapter 05 recorded NaN for {book}, {roi}: e.g. a "
                       "leave-one-subject-out ceiling ≤ 0)")
            specs.append(dict(chapter="05_image_to_llm", kind="roi_rsa",
                              quantity="ROI RSA, noise-ceiling normalised r", item=f"{model}, {roi}",
                              ours=ours, paper_low=paper_value, paper_high=paper_value,
                              paper_source=PAPER_ROI_RSA_SOURCE, missing=why,
                              mismatch=_MEASURE_MISMATCH if measure and measure != "r_normalised" else "",
                              note=(f"book: {book}" + (_SEED_NOTE if book.startswith("blt_") else "") + "; "
                                    if book else "") + f"paper: {PAPER_ROI_RSA_MODELS[model][0]}"))
    # 05: transfer readouts
    for target in ("mpnet", "multihot"):
        row = _match(found, "05_image_to_llm", f"Transfer readout to {target}:")
        pair = re.match(rf"\s*{_NUM}\s+vs\s+{_NUM}", str(row["recovered"])) if row is not None else None
        for i, network in enumerate(("blt_mpnet", "blt_multihot")):
            low, high = next((lo, hi) for n, t, lo, hi in PAPER_TRANSFER if n == network and t == target)
            specs.append(dict(
                chapter="05_image_to_llm", kind="transfer", quantity="transfer readout, held-out cosine",
                item=f"{_NETWORKS[network]} network ({network}) → {target}",
                ours=float(pair.group(i + 1)) if pair else math.nan, paper_low=low, paper_high=high,
                paper_source=PAPER_TRANSFER_SOURCE + ("; range over 10 seeds" if low != high else ""),
                missing=_missing(found, "05_image_to_llm", f"transfer to {target}") if pair is None else "",
                note=("the book holds out up to 500 NSD images, the paper the last 2,000; paper: "
                      + PAPER_TRANSFER_MODELS[(network, target)])))
    return specs


# ---------------------------------------------------------------------------- the table
def reproduction_table(found, dataset, run_parameters=None, paper_settings=None, values=None):
    """Every number of the paper that the book computes, next to this run's, with a tolerance.

    Parameters
    ----------
    found : pandas.DataFrame
        The run's findings (:func:`brainllm_utils.chapters.findings.load`): columns
        ``chapter``, ``analysis`` and ``recovered``.
    dataset : NSD or dict
        The dataset the run used, or its :func:`describe_dataset`.
    run_parameters : dict of str to dict, optional
        Chapter → the parameters its run used (:func:`manifest_parameters` of the batch
        manifest); ``None``: unknown, so nothing is comparable.
    paper_settings : dict of str to dict, optional
        Chapter → the paper profile's settings (``brainllm_utils.batch.PROFILES["paper"]``);
        ``None``: not given, so nothing is comparable.
    values : pandas.DataFrame, optional
        The numbers the findings carry (:func:`brainllm_utils.chapters.findings.load_values`):
        chapter 05's per-model, per-ROI ROI RSA give the networks' rows their ``ours``.
        ``None``: not read, so those rows have no value of this run.

    Returns
    -------
    pandas.DataFrame
        One row per number, columns :data:`COLUMNS`: ``ours`` (NaN where the run did not
        record it; ``ours_low``/``ours_high``: its interval, NaN: none recorded), ``paper``
        (the value, or the middle of the reported range ``paper_low``–``paper_high``),
        ``paper_source``, ``tolerance`` and ``tolerance_reason`` (:data:`TOLERANCES`),
        ``comparable`` (bool), ``why_not`` (every reason, ``"; "``-separated; empty when
        comparable), ``agrees`` (True/False; None when not comparable: whether ``ours`` lies
        within ``[paper_low − tolerance, paper_high + tolerance]``) and ``note``.
    """
    import pandas as pd

    if not isinstance(found, pd.DataFrame) or not {"chapter", "analysis", "recovered"} <= set(found.columns):
        raise ValueError("found: expected a DataFrame with columns chapter, analysis, recovered "
                         "(findings.load)")
    if not isinstance(dataset, dict):
        dataset = describe_dataset(dataset)
    missing = [k for k in _DATASET_KEYS if k not in dataset]
    if missing:
        raise ValueError(f"dataset: missing {missing} (use describe_dataset)")
    for name, value in (("run_parameters", run_parameters), ("paper_settings", paper_settings)):
        if value is not None and not (isinstance(value, dict) and all(isinstance(v, dict) for v in value.values())):
            raise ValueError(f"{name}: expected a dict of chapter → parameters dict, or None")
    if values is not None and not (isinstance(values, pd.DataFrame) and {"chapter", "quantity", "model", "roi",
                                                                          "value", "measure"} <= set(values.columns)):
        raise ValueError("values: expected a DataFrame with columns chapter, quantity, model, roi, value, measure "
                         "(findings.load_values), or None")
    data_reasons = _dataset_reasons(dataset)
    rows = []
    for spec in _specs(found, values, run_parameters):
        tol, tol_reason = TOLERANCES[spec["kind"]]
        ours = float(spec["ours"])
        reasons = list(data_reasons) + _settings_reasons(spec["chapter"], run_parameters, paper_settings)
        if spec.get("mismatch"):
            reasons.append(spec["mismatch"])
        if not np.isfinite(ours):
            reasons.append(spec["missing"] or "not computed by this run (no value)")
        comparable = not reasons
        low, high = float(spec["paper_low"]), float(spec["paper_high"])
        agrees = (low - tol - _EPS <= ours <= high + tol + _EPS) if comparable else None
        rows.append(dict(
            chapter=spec["chapter"], kind=spec["kind"], quantity=spec["quantity"], item=spec["item"],
            ours=ours, ours_low=math.nan, ours_high=math.nan, paper=(low + high) / 2, paper_low=low,
            paper_high=high, paper_source=spec["paper_source"], tolerance=tol, tolerance_reason=tol_reason,
            comparable=comparable, why_not="; ".join(reasons), agrees=agrees, note=spec.get("note", "")))
    df = pd.DataFrame(rows, columns=list(COLUMNS))
    df["agrees"] = df["agrees"].astype(object)
    return df


# ---------------------------------------------------------------------------- CSV
def write_reproduction_csv(df, path) -> Path:
    """Write the reproduction table as CSV, atomically.

    Parameters
    ----------
    df : pandas.DataFrame
        :func:`reproduction_table` (columns :data:`COLUMNS`).
    path : str or path-like
        The ``.csv`` file; its folder is created if missing.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    cols = list(getattr(df, "columns", []))
    if cols != list(COLUMNS):
        raise ValueError(f"df: expected the columns of reproduction_table {list(COLUMNS)}, got {cols}")
    path = Path(path)
    if path.suffix != ".csv":
        raise ValueError(f"path={str(path)!r}: expected a .csv file")
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False)
    return path


def read_reproduction_csv(path):
    """Read a table written by :func:`write_reproduction_csv` back, with its types.

    Parameters
    ----------
    path : str or path-like
        The ``.csv`` file.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`; ``comparable`` bool, ``agrees`` True/False/None, text columns
        with ``""`` for empty cells.
    """
    import pandas as pd

    path = Path(path)
    df = pd.read_csv(path, keep_default_na=False, na_values={c: [""] for c in COLUMNS if c in
                                                              ("ours", "ours_low", "ours_high", "paper",
                                                               "paper_low", "paper_high", "tolerance")})
    if list(df.columns) != list(COLUMNS):
        raise ValueError(f"{path}: expected the columns {list(COLUMNS)}, got {list(df.columns)}")
    bools = {"True": True, "False": False, True: True, False: False}
    bad = sorted(set(df["comparable"].astype(str)) - {"True", "False"})
    if bad:
        raise ValueError(f"{path}: column 'comparable' holds {bad}, expected True/False")
    df["comparable"] = df["comparable"].astype(str).map(bools).astype(bool)
    df["agrees"] = df["agrees"].astype(str).map(lambda v: bools.get(v)).astype(object)
    for c in ("ours", "ours_low", "ours_high", "paper", "paper_low", "paper_high", "tolerance"):
        df[c] = df[c].astype(float)
    for c in ("chapter", "kind", "quantity", "item", "paper_source", "tolerance_reason", "why_not", "note"):
        df[c] = df[c].astype(str)
    return df
