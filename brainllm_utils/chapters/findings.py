"""Each chapter's key results, recorded for the book's summary page.

A chapter ends with one call of :func:`record`: a list of findings, each one row of the
summary table — which research question, which analysis, what this run recovered, what the
sandbox's planted truth says it should recover (or what a real-NSD run is compared against),
whether the two agree, and the paper's reference number for real NSD. :func:`load` collects
them for the summary notebook.

Files: ``<results>/findings/<dataset key>/<run>.json`` (``<results>`` = ``get_results_dir()``;
the dataset key separates the sandbox from a real NSD copy; ``<run>`` is ``$BRAINLLM_RUN``,
set by :mod:`brainllm_utils.batch` to the output notebook's name, else the chapter), written
atomically.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .._utils.paths import atomic_write_text, get_results_dir
from ._common import dataset_key

__all__ = ["FIELDS", "RQS", "finding", "record", "load", "findings_dir"]

#: research questions, in the book's order
RQS = {
    "RQ1": "Caption embeddings match brain representations and predict single vertices",
    "RQ2": "The match comes from the whole caption, beyond single words",
    "RQ3": "Captions can be reconstructed from brain activity",
    "RQ4": "Networks trained to output caption embeddings align best with the brain",
}
#: one row of the summary table
FIELDS = ("rq", "chapter", "analysis", "recovered", "expected", "agrees", "paper")


def finding(rq: str, analysis: str, recovered, expected: str = "", agrees=None,
            paper: str = "") -> dict:
    """One row: ``recovered`` is this run's number or text; ``expected`` the planted truth
    (sandbox) or the criterion; ``agrees`` True/False/None (no criterion); ``paper`` the
    paper's reference for real NSD."""
    if rq not in RQS:
        raise ValueError(f"rq={rq!r}: expected one of {sorted(RQS)}")
    if isinstance(recovered, float):
        recovered = "nan" if math.isnan(recovered) else f"{recovered:.3f}"
    if agrees is not None:
        agrees = bool(agrees)
    return {"rq": rq, "analysis": str(analysis), "recovered": str(recovered),
            "expected": str(expected), "agrees": agrees, "paper": str(paper)}


def findings_dir(nsd, results_dir=None) -> Path:
    return get_results_dir(results_dir) / "findings" / dataset_key(nsd)


def record(chapter: str, rows, nsd, results_dir=None, run: str | None = None) -> Path:
    """Write ``rows`` (from :func:`finding`) as ``chapter``'s findings; returns the file."""
    rows = [dict(r, chapter=chapter) for r in rows]
    for r in rows:
        missing = set(FIELDS) - set(r)
        if missing:
            raise ValueError(f"{chapter}: finding {r} lacks {sorted(missing)} (use finding())")
    run = run or os.environ.get("BRAINLLM_RUN") or chapter
    path = findings_dir(nsd, results_dir) / f"{run}.json"
    atomic_write_text(path, json.dumps({"chapter": chapter, "run": run, "rows": rows},
                                       indent=1) + "\n")
    return path


def load(nsd, chapters=None, results_dir=None):
    """The recorded findings of ``chapters`` (default: every chapter's own run) as a
    DataFrame with :data:`FIELDS`, in RQ then chapter order. Grid runs (``run`` other than
    the chapter name) are left out."""
    import pandas as pd

    folder = findings_dir(nsd, results_dir)
    rows = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        data = json.loads(path.read_text())
        if data["run"] != data["chapter"]:
            continue
        if chapters is not None and data["chapter"] not in chapters:
            continue
        rows.extend(data["rows"])
    df = pd.DataFrame(rows, columns=list(FIELDS))
    if len(df):
        df["rq"] = pd.Categorical(df["rq"], categories=list(RQS), ordered=True)
        df = df.sort_values(["rq", "chapter"], kind="stable").reset_index(drop=True)
    return df
