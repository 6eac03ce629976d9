"""Benchmark records: the environment of a run, the load rule, medians, and the docs tables.

``benchmarks/run_all.py`` (``make bench``) runs every side-by-side benchmark in its own
process and keeps one entry per benchmark in a results file (``docs/benchmarks.json``); the
tables of ``docs/benchmarks.md`` are generated from that file by :func:`update_markdown`.
This module holds the parts that do not depend on any one benchmark:

- :func:`environment`: CPU model, core count, BLAS libraries and kernels (threadpoolctl),
  thread settings (``OMP/OPENBLAS/MKL_NUM_THREADS``, torch), every ``OPENBLAS_*`` variable and
  the versions of the compared libraries, recorded inside the benchmark's own process.
- :func:`assess_load`: the rule that marks a run **unreliable** (kept, never quoted) when the
  1-minute load average before or after it exceeded the number of cores.
- :func:`interleaved_order`, :func:`median_spread`, :func:`summarise_row`: the protocol
  (repeats alternate the order of the compared tools; medians and per-repeat ratios).
- :func:`validate_entry`, :func:`render_table`, :func:`render_block`, :func:`update_markdown`:
  the results file's schema and the markdown generated from it. A table is rendered only
  from a complete, reliable entry.
- :func:`code_fingerprint`, :func:`merge_history`, :func:`pooled_rows`, :func:`reproduction`:
  runs of the same code are pooled. One run's three repeats span a minute or two, and the
  machine's speed drifts more than that between runs (two idle runs an hour apart moved
  some medians outside each other's ranges), so an entry keeps the earlier reliable runs of
  the code it measured (same fingerprint of the package, the benchmark scripts and the
  pins), the tables quote medians and ranges over all of them, and each new run is checked
  against the spread the page reported before it (:func:`reproduction`).
"""

from __future__ import annotations

import datetime
import hashlib
import math
import os
import platform
import re
import statistics
import subprocess
import sys
from collections.abc import Mapping, Sequence

from .numeric import check_int
from .paths import REPO_ROOT

__all__ = [
    "THREAD_VARIABLES",
    "PACKAGES",
    "UnreliableRunError",
    "cpu_model",
    "blas_info",
    "package_versions",
    "environment",
    "load_average",
    "wait_for_load",
    "assess_load",
    "interleaved_order",
    "median_spread",
    "summarise_row",
    "validate_entry",
    "validate_results",
    "quotable",
    "render_table",
    "render_block",
    "update_markdown",
    "git_commit",
    "utc_now",
    "command_line",
    "CODE_GLOBS",
    "RECORDER_FILES",
    "MAX_RUNS",
    "code_fingerprint",
    "merge_history",
    "pooled_rows",
    "reproduction",
]

#: Thread variables recorded with every run (fixed by ``run_all`` before numpy/torch import).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Distributions whose versions are recorded (``None`` when not installed).
PACKAGES = ("numpy", "scipy", "torch", "himalaya", "rsatoolbox", "sentence-transformers",
            "transformers", "threadpoolctl", "brainllm-utils")

#: Fields every BLAS entry of :func:`environment` carries (threadpoolctl's names).
BLAS_FIELDS = ("internal_api", "version", "architecture", "num_threads")
#: Fields of :func:`environment` and their types.
ENV_FIELDS = {"cpu_model": str, "n_cores": int, "platform": str, "python": str, "blas": list,
              "threads": dict, "openblas_env": dict, "versions": dict}
#: Fields of a results entry (one benchmark's last run) and their types.
ENTRY_FIELDS = {"name": str, "title": str, "device": str, "command": str, "date": str,
                "commit": str, "settings": dict, "environment": dict, "load": dict,
                "reliable": bool, "rows": list}
#: Fields of the ``load`` record of an entry.
LOAD_FIELDS = {"before": list, "after": list, "cores": int}
#: Fields of a table row (``None`` allowed where a row has no reference: ``reference``,
#: ``reference_runs``, ``ratio``, ``ratio_min``, ``ratio_max``).
ROW_FIELDS = {"case": str, "size": str, "unit": str, "higher_is_better": bool,
              "ours": (int, float), "ours_runs": list, "reference_name": (str, type(None)),
              "reference": (int, float, type(None)), "reference_runs": (list, type(None)),
              "ratio": (int, float, type(None)), "ratio_min": (int, float, type(None)),
              "ratio_max": (int, float, type(None)), "agreement": str}


#: The files whose contents are "the code measured" (:func:`code_fingerprint`): by default the
#: whole package, the benchmark scripts and the pins; ``run_all`` narrows it per benchmark.
CODE_GLOBS = ("brainllm_utils/**/*.py", "benchmarks/*.py", "requirements.txt", "pyproject.toml")
#: Files that record a run rather than run it (never part of a fingerprint).
RECORDER_FILES = ("brainllm_utils/_utils/benchrecord.py", "benchmarks/run_all.py")
#: Runs of the same code pooled per benchmark (the newest, including the current one).
MAX_RUNS = 5
#: Optional fields of an entry and their types (absent in records older than pooling).
OPTIONAL_ENTRY_FIELDS = {"fingerprint": str, "history": list, "reproduction": (dict, type(None))}


class UnreliableRunError(ValueError):
    """A table was asked of a run that the load rule marked unreliable (not quotable)."""


# ----------------------------------------------------------------------------- environment
def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``; ``platform.processor()`` elsewhere).

    Returns
    -------
    str
        E.g. ``"Intel(R) Xeon(R) Processor @ 2.50GHz"``; ``"unknown"`` when nothing says.
    """
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def blas_info() -> list[dict]:
    """The BLAS/OpenMP libraries loaded in this process, as threadpoolctl sees them.

    Returns
    -------
    list of dict
        One dict per library with ``user_api``, ``internal_api`` (``openblas``, ``mkl``,
        ``openmp``, ...), ``version``, ``architecture`` (the BLAS kernel, e.g.
        ``SkylakeX``; ``None`` where the library does not say), ``num_threads`` and
        ``filepath``. Empty when threadpoolctl is not installed.
    """
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return []
    keep = ("user_api", "internal_api", "version", "architecture", "num_threads", "filepath")
    return [{k: lib.get(k) for k in keep} for lib in threadpool_info()]


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of distributions, read from their metadata (nothing is imported).

    Parameters
    ----------
    names : sequence of str, default=PACKAGES
        Distribution names.

    Returns
    -------
    dict
        ``name → version``, ``None`` for a distribution that is not installed.
    """
    from importlib import metadata

    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _torch_threads() -> int | None:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is pinned
        return None
    return int(torch.get_num_threads())


def environment() -> dict:
    """Everything about this process and machine that a benchmark's numbers depend on.

    Call it inside the benchmark's own process, after its work: the BLAS libraries are those
    loaded then, with their thread counts (torch is imported if it was not, which reads the
    thread variables as the benchmark did).

    Returns
    -------
    dict
        ``cpu_model`` (str), ``n_cores`` (int, ``os.cpu_count()``), ``platform`` and
        ``python`` (str), ``blas`` (list of :func:`blas_info` dicts), ``threads`` (each of
        :data:`THREAD_VARIABLES` as set, or ``None``, and ``torch``: ``torch.get_num_threads()``),
        ``openblas_env`` (every ``OPENBLAS_*`` variable) and ``versions``
        (:func:`package_versions`).
    """
    threads: dict = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    threads["torch"] = _torch_threads()
    return {
        "cpu_model": cpu_model(),
        "n_cores": int(os.cpu_count() or 1),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "blas": blas_info(),
        "threads": threads,
        "openblas_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("OPENBLAS_")},
        "versions": package_versions(),
    }


def load_average() -> list[float]:
    """The machine's 1-, 5- and 15-minute load averages (``os.getloadavg``).

    Returns
    -------
    list of float
        Three values; runnable (and uninterruptible) tasks averaged over those windows.
    """
    return [float(x) for x in os.getloadavg()]


def wait_for_load(threshold: float, timeout: float, poll: float = 5.0, read=None,
                  sleep=None, clock=None) -> tuple[float, float]:
    """Wait until the 1-minute load average is at most ``threshold``, or ``timeout`` passed.

    The 1-minute load average decays with a 60 s time constant: right after a benchmark that
    kept 2 cores busy it still reads ≈ 2, and the next benchmark's own threads would then take
    it over the core count (:func:`assess_load`) on an idle machine. Run between benchmarks,
    this lets the previous one's load fade (from 2 to 1: about 40 s).

    Parameters
    ----------
    threshold : float
        Load to wait for (≥ 0).
    timeout : float
        Longest wait in seconds (≥ 0); the load is then returned as it is.
    poll : float, default=5.0
        Seconds between readings (> 0).
    read, sleep, clock : callable, optional
        The load reader (default :func:`load_average`), ``time.sleep`` and
        ``time.monotonic`` (replaceable in tests).

    Returns
    -------
    load : float
        The last 1-minute load average read.
    waited : float
        Seconds waited.
    """
    import time

    for name, value, low in (("threshold", threshold, 0.0), ("timeout", timeout, 0.0)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < low:
            raise ValueError(f"{name} must be a finite number ≥ {low:g}, got {value!r}")
    if isinstance(poll, bool) or not isinstance(poll, (int, float)) or not poll > 0:
        raise ValueError(f"poll must be a number of seconds > 0, got {poll!r}")
    read = read or load_average
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    start = clock()
    while True:
        load = _one_minute(read(), "load")
        waited = clock() - start
        if load <= threshold or waited >= timeout:
            return load, waited
        sleep(min(poll, timeout - waited))


def _one_minute(load, name: str) -> float:
    if isinstance(load, (list, tuple)):
        if not load:
            raise ValueError(f"{name} must be a load average or a list of them, got an empty list")
        load = load[0]
    number = isinstance(load, (int, float)) and not isinstance(load, bool)
    if not number or not math.isfinite(load) or load < 0:
        raise ValueError(f"{name} must be a finite load average ≥ 0 (or [1-min, 5-min, 15-min]), "
                         f"got {load!r}")
    return float(load)


def assess_load(before, after, n_cores: int) -> tuple[bool, str | None]:
    """The load rule: a run is unreliable when the load average exceeded the core count.

    The 1-minute load average is read just before and just after the benchmark's process; if
    either is above ``n_cores``, other work competed for the cores (the benchmark's own
    threads, at most ``n_cores``, cannot push it there alone), so the run is kept but not
    quoted.

    Parameters
    ----------
    before, after : float or sequence of float
        1-minute load averages, or :func:`load_average` triples (the first value is used).
    n_cores : int
        Cores of the machine (≥ 1).

    Returns
    -------
    reliable : bool
        ``True`` when neither load exceeded ``n_cores``.
    reason : str or None
        Why not (both loads and the core count), ``None`` when reliable.

    Examples
    --------
    >>> assess_load([0.4, 0.5, 0.6], [1.9, 1.2, 0.9], 2)
    (True, None)
    >>> assess_load(3.1, 1.0, 2)[0]
    False
    """
    b, a = _one_minute(before, "before"), _one_minute(after, "after")
    n_cores = check_int(n_cores, "n_cores", min_value=1)
    if max(b, a) > n_cores:
        return False, (f"load average {b:.2f} before / {a:.2f} after exceeded "
                       f"{n_cores} core{'s' * (n_cores != 1)}")
    return True, None


# ----------------------------------------------------------------------------- protocol
def interleaved_order(labels: Sequence[str], repeats: int) -> list[list[str]]:
    """The order of the compared runs in each repeat: as given, then reversed, alternating.

    With two tools A and B and 3 repeats: ``A B``, ``B A``, ``A B``; machine load that drifts
    during the benchmark then hits each tool at both positions.

    Parameters
    ----------
    labels : sequence of str
        The runs compared (distinct, at least one).
    repeats : int
        Rounds (≥ 1).

    Returns
    -------
    list of list of str
        ``repeats`` rounds, each a permutation of ``labels``.

    Examples
    --------
    >>> interleaved_order(["ours", "peer"], 3)
    [['ours', 'peer'], ['peer', 'ours'], ['ours', 'peer']]
    """
    labels = list(labels)
    if not labels or any(not isinstance(x, str) for x in labels) or len(set(labels)) != len(labels):
        raise ValueError(f"labels must be distinct strings, at least one, got {labels!r}")
    repeats = check_int(repeats, "repeats", min_value=1)
    return [list(labels) if r % 2 == 0 else labels[::-1] for r in range(repeats)]


def median_spread(values: Sequence[float]) -> dict:
    """Median, minimum and maximum of the repeats of one measurement.

    Parameters
    ----------
    values : sequence of float
        One value per repeat (finite; at least one).

    Returns
    -------
    dict
        ``median``, ``min``, ``max`` (float) and ``n`` (int).

    Examples
    --------
    >>> median_spread([3.0, 1.0, 2.0, 10.0])
    {'median': 2.5, 'min': 1.0, 'max': 10.0, 'n': 4}
    """
    vals = [float(v) for v in values]
    if not vals or not all(math.isfinite(v) for v in vals):
        raise ValueError(f"values must be finite numbers, at least one, got {values!r}")
    return {"median": float(statistics.median(vals)), "min": min(vals), "max": max(vals),
            "n": len(vals)}


def summarise_row(case: str, size: str, unit: str, ours_runs: Sequence[float],
                  reference_runs: Sequence[float] | None = None, reference_name: str | None = None,
                  *, higher_is_better: bool = False, agreement: str = "") -> dict:
    """One table row: medians of the repeats and the speed-up of ours over the reference.

    Parameters
    ----------
    case : str
        What is measured (e.g. ``"RidgeCV"``).
    size : str
        The problem size, as the table shows it.
    unit : str
        Unit of the runs (``"s"``, ``"sent/s"``, ``"MB"``, ...).
    ours_runs : sequence of float
        Our value in each repeat.
    reference_runs : sequence of float, optional
        The reference's (peer library or baseline) in the same repeats, paired by position
        (same length as ``ours_runs``); ``None``: no reference (no ratio).
    reference_name : str, optional
        Who the reference is (required with ``reference_runs``).
    higher_is_better : bool, default=False
        ``False`` for times and memory (ratio = reference / ours); ``True`` for rates
        (ratio = ours / reference). A ratio above 1 always means ours is better.
    agreement : str, default=""
        How the outputs agree (shown beside the ratio).

    Returns
    -------
    dict
        The :data:`ROW_FIELDS`: medians (``ours``, ``reference``), the runs, ``ratio`` (of
        the medians) and ``ratio_min`` / ``ratio_max`` over the repeats' paired ratios.

    Examples
    --------
    >>> row = summarise_row("RidgeCV", "2,000 × 1,068 → 5,000", "s", [4.0, 3.9, 4.2],
    ...                     [9.8, 10.1, 9.7], "himalaya")
    >>> round(row["ratio"], 3), round(row["ratio_min"], 3), round(row["ratio_max"], 3)
    (2.45, 2.31, 2.59)
    """
    for value, name in ((case, "case"), (size, "size"), (unit, "unit"), (agreement, "agreement")):
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
    ours = median_spread(ours_runs)
    row = {"case": case, "size": size, "unit": unit, "higher_is_better": bool(higher_is_better),
           "ours": ours["median"], "ours_runs": [float(v) for v in ours_runs],
           "reference_name": None, "reference": None, "reference_runs": None,
           "ratio": None, "ratio_min": None, "ratio_max": None, "agreement": agreement}
    if reference_runs is None:
        return row
    if not isinstance(reference_name, str) or not reference_name:
        raise ValueError("reference_name must name the reference when reference_runs are given")
    ref = median_spread(reference_runs)
    if ref["n"] != ours["n"]:
        raise ValueError(f"reference_runs must pair with ours_runs: {ref['n']} vs {ours['n']} "
                         "repeats")
    if min(ours["min"], ref["min"]) <= 0:
        raise ValueError("runs must be positive to form ratios")

    def ratio(o, r):
        return o / r if higher_is_better else r / o

    paired = [ratio(o, r) for o, r in zip(ours_runs, reference_runs)]
    row.update(reference_name=reference_name, reference=ref["median"],
               reference_runs=[float(v) for v in reference_runs],
               ratio=ratio(ours["median"], ref["median"]), ratio_min=min(paired),
               ratio_max=max(paired))
    return row


# ----------------------------------------------------------------------------- results file
def _check_fields(obj, fields: Mapping, where: str) -> None:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where} must be a JSON object, got {type(obj).__name__}")
    for key, typ in fields.items():
        if key not in obj:
            raise ValueError(f"{where}: missing field {key!r}")
        if isinstance(obj[key], bool) and typ in (int, float, (int, float)):
            raise ValueError(f"{where}: field {key!r} must be a number, got a bool")
        if not isinstance(obj[key], typ):
            raise ValueError(f"{where}: field {key!r} must be {typ}, got {type(obj[key]).__name__}")


def validate_entry(entry: Mapping) -> None:
    """Check one benchmark's entry of the results file: every field present and typed.

    Parameters
    ----------
    entry : mapping
        An entry as ``run_all`` writes it: :data:`ENTRY_FIELDS`, its ``environment``
        (:data:`ENV_FIELDS`, each BLAS library with :data:`BLAS_FIELDS`), ``load``
        (:data:`LOAD_FIELDS`) and at least one row (:data:`ROW_FIELDS`).

    Raises
    ------
    ValueError
        Naming the entry, the missing or mistyped field and what was expected.
    """
    name = entry.get("name", "?") if isinstance(entry, Mapping) else "?"
    where = f"benchmark {name!r}"
    _check_fields(entry, ENTRY_FIELDS, where)
    _check_fields(entry["environment"], ENV_FIELDS, f"{where}: environment")
    for i, lib in enumerate(entry["environment"]["blas"]):
        for key in BLAS_FIELDS:
            if key not in lib:
                raise ValueError(f"{where}: environment.blas[{i}]: missing field {key!r}")
    if "torch" not in entry["environment"]["threads"]:
        raise ValueError(f"{where}: environment.threads: missing field 'torch'")
    _check_fields(entry["load"], LOAD_FIELDS, f"{where}: load")
    if not entry["rows"]:
        raise ValueError(f"{where}: rows must not be empty")
    for i, row in enumerate(entry["rows"]):
        _check_fields(row, ROW_FIELDS, f"{where}: rows[{i}]")
    _check_fields(entry, {k: t for k, t in OPTIONAL_ENTRY_FIELDS.items() if k in entry}, where)
    for i, run in enumerate(entry.get("history", [])):
        _check_fields(run, {"date": str, "commit": str, "rows": list}, f"{where}: history[{i}]")
        for j, row in enumerate(run["rows"]):
            _check_fields(row, {"case": str, "size": str, "ours_runs": list,
                                "reference_runs": (list, type(None))},
                          f"{where}: history[{i}].rows[{j}]")


def validate_results(results: Mapping) -> None:
    """Check a whole results file: ``{"schema": 1, "benchmarks": {name: entry}}``.

    Parameters
    ----------
    results : mapping
        The parsed JSON.

    Raises
    ------
    ValueError
        On a missing or wrong ``schema``/``benchmarks`` field, an entry filed under another
        name than its own, or any entry that :func:`validate_entry` refuses.
    """
    if not isinstance(results, Mapping) or results.get("schema") != 1:
        raise ValueError("results must be a JSON object with \"schema\": 1")
    if not isinstance(results.get("benchmarks"), Mapping):
        raise ValueError("results: missing field 'benchmarks' (an object of entries by name)")
    for key, entry in results["benchmarks"].items():
        validate_entry(entry)
        if entry["name"] != key:
            raise ValueError(f"results: entry {key!r} is named {entry['name']!r}")


def quotable(entry: Mapping) -> bool:
    """Whether an entry's numbers may be quoted: complete (:func:`validate_entry`) and reliable.

    Parameters
    ----------
    entry : mapping
        One benchmark's entry.

    Returns
    -------
    bool
        ``entry["reliable"]`` after validation.

    Raises
    ------
    ValueError
        When the entry is incomplete.
    """
    validate_entry(entry)
    return bool(entry["reliable"])


# ----------------------------------------------------------------------------- markdown
def _num(x: float) -> str:
    """Three significant figures, thousands separated (``9.81``, ``128``, ``1,541``)."""
    if x == 0 or not math.isfinite(x):
        return f"{x:g}"
    digits = max(0, 2 - int(math.floor(math.log10(abs(x)))))
    return f"{x:,.{digits}f}"


def _value(x: float, unit: str) -> str:
    return f"{_num(x)} {unit}"


def _ratio(row: Mapping) -> tuple[str, str]:
    if row["ratio"] is None:
        return "—", "—"
    return f"**{row['ratio']:.2f}×**", f"{row['ratio_min']:.2f}–{row['ratio_max']:.2f}×"


def _blas_text(env: Mapping) -> str:
    """Each library once, e.g. ``openblas 0.3.30 (SkylakeX; 2 threads; libscipy_openblas64_)``."""
    libs = []
    for lib in env["blas"]:
        what = " ".join(x for x in (lib["internal_api"], lib["version"]) if x)
        n = lib["num_threads"]
        detail = [lib["architecture"], f"{n} thread{'s' * (n != 1)}"]
        path = lib.get("filepath")
        if path:
            detail.append(os.path.basename(path).split(".")[0].split("-")[0])
        text = f"{what} ({'; '.join(x for x in detail if x)})"
        if text not in libs:
            libs.append(text)
    return ", ".join(sorted(libs)) or "none loaded"


def render_table(entry: Mapping) -> str:
    """The markdown table of one quotable entry, with its provenance line under it.

    Parameters
    ----------
    entry : mapping
        One benchmark's entry (complete and reliable).

    Returns
    -------
    str
        A table (case, size, reference, ours, speed-up of the medians, its range over the
        paired repeats, runs and repeats, agreement) pooled over the runs of the same code
        the entry holds (:func:`pooled_rows`), and one line: date, commit, command, CPU,
        cores, BLAS, threads, versions, the load before/after, the earlier runs pooled and
        whether this run fell within their spread (:func:`reproduction`).

    Raises
    ------
    ValueError
        When the entry is incomplete (:func:`validate_entry`).
    UnreliableRunError
        When the run was marked unreliable: its numbers are not quotable.
    """
    if not quotable(entry):
        raise UnreliableRunError(f"benchmark {entry['name']!r} ran under load "
                                 f"({entry.get('unreliable_reason') or 'load above the cores'}): "
                                 "not quotable")
    lines = ["| case | size | reference | ours | speed-up (medians) | range over repeats "
             "| runs × repeats | agreement |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for row, own in zip(pooled_rows(entry), entry["rows"]):
        ref = ("—" if row["reference"] is None
               else f"{row['reference_name']}: {_value(row['reference'], row['unit'])}")
        ratio, spread = _ratio(row)
        ours = _value(row["ours"], row["unit"])
        n_rep = len(row["ours_runs"])
        runs = (f"{row['n_runs']} × {len(own['ours_runs'])}"
                if n_rep == row["n_runs"] * len(own["ours_runs"]) else f"{row['n_runs']} runs, {n_rep}")
        lines.append(f"| {row['case']} | {row['size']} | {ref} | {ours} | {ratio} | {spread} "
                     f"| {runs} | {row['agreement'] or '—'} |")
    env, load = entry["environment"], entry["load"]
    th = env["threads"]
    threads = ", ".join(f"{k}={th.get(k) if th.get(k) is not None else 'unset'}"
                        for k in THREAD_VARIABLES) + f", torch {th.get('torch')}"
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items()
                         if v is not None and k in ("numpy", "torch", "himalaya", "rsatoolbox",
                                                    "sentence-transformers"))
    lines.append("")
    lines.append(f"*{entry['date']}, commit `{entry['commit']}`, {entry['device']}: "
                 f"`{entry['command']}`. Medians of the repeats after a warm-up. "
                 f"{env['cpu_model']}, {env['n_cores']} cores; BLAS "
                 f"{_blas_text(env)}; threads {threads}; {versions}. Load average "
                 f"{load['before'][0]:.2f} before, {load['after'][0]:.2f} after "
                 f"(≤ {load['cores']} cores: reliable).{_pooling_text(entry)}*")
    return "\n".join(lines)


def _pooling_text(entry: Mapping) -> str:
    """The provenance line's note on the earlier runs pooled and the reproduction check."""
    out = ""
    history = entry.get("history", [])
    if history:
        runs = "; ".join(f"{h['date']} (`{h['commit']}`)" for h in history)
        out += (f" Medians and ranges pool this run with {len(history)} earlier run"
                f"{'s' * (len(history) != 1)} of the same code: {runs}.")
    rep = entry.get("reproduction")
    if rep and rep["rows"]:
        inside = sum(r["within"] for r in rep["rows"])
        outside = [f"{r['case']} {r['ratio']:.2f}× against {r['recorded_min']:.2f}–"
                   f"{r['recorded_max']:.2f}×" for r in rep["rows"] if not r["within"]]
        out += (f" This run reproduced {inside} of {len(rep['rows'])} ratio"
                f"{'s' * (len(rep['rows']) != 1)} within the range the {rep['against_runs']} "
                f"earlier run{'s' * (rep['against_runs'] != 1)} reported")
        out += f" (outside: {'; '.join(outside)})." if outside else "."
    return out


def render_block(results: Mapping, name: str) -> str:
    """What ``docs/benchmarks.md`` shows for one benchmark: its table, or why there is none.

    Parameters
    ----------
    results : mapping
        The validated results file.
    name : str
        The benchmark (``ridge``, ``searchlight``, ...; a GPU run is ``NAME@cuda``).

    Returns
    -------
    str
        :func:`render_table` for a reliable entry; otherwise one sentence without the run's
        numbers: no run recorded (for ``@cuda``: no device lent yet), or the last run was
        under load (its date and loads; the numbers stay in the results file).
    """
    entry = results["benchmarks"].get(name)
    if entry is None:
        if name.endswith("@cuda"):
            return ("*No GPU run recorded: no device was lent to the sessions that ran "
                    f"`make bench` (`python benchmarks/run_all.py --device cuda --only "
                    f"{name[:-5]}` records one).*")
        return f"*Not run yet: `python benchmarks/run_all.py --only {name}`.*"
    if not quotable(entry):
        return (f"*Last run {entry['date']} (commit `{entry['commit']}`) is marked unreliable — "
                f"{entry.get('unreliable_reason') or 'load above the core count'} — and is not "
                "quoted; its numbers stay in `docs/benchmarks.json`. Re-run on an idle machine.*")
    return render_table(entry)


_BLOCK = re.compile(r"(<!-- bench:(?P<name>[\w@.-]+) -->)(?P<body>.*?)(<!-- /bench:(?P=name) -->)",
                    re.S)


def update_markdown(text: str, results: Mapping) -> str:
    """Regenerate every ``<!-- bench:NAME -->`` … ``<!-- /bench:NAME -->`` block of a page.

    Parameters
    ----------
    text : str
        The page; the prose outside the blocks is kept as it is.
    results : mapping
        The results file (validated here).

    Returns
    -------
    str
        The page with each block's body replaced by :func:`render_block`.

    Raises
    ------
    ValueError
        When the results are incomplete, or an opening marker has no closing one.
    """
    validate_results(results)
    opened = re.findall(r"<!-- bench:([\w@.-]+) -->", text)
    closed = re.findall(r"<!-- /bench:([\w@.-]+) -->", text)
    if sorted(opened) != sorted(closed):
        raise ValueError(f"unbalanced bench markers: opened {opened}, closed {closed}")
    def block(m):
        return f"{m.group(1)}\n{render_block(results, m.group('name'))}\n{m.group(4)}"

    return _BLOCK.sub(block, text)


def git_commit() -> str:
    """The repository's commit (short), with ``+dirty`` when tracked files changed.

    Returns
    -------
    str
        E.g. ``"c8aa0ea"`` or ``"c8aa0ea+dirty"`` (changes to ``docs/benchmarks.json`` and
        ``docs/benchmarks.md``, which a run writes, do not count); ``"unknown"`` outside a git
        checkout.
    """
    try:
        sha = subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, check=True).stdout.strip()
        # the results file and its page change during a run: not a change of the code measured
        dirty = subprocess.run(["git", "-C", str(REPO_ROOT), "status", "--porcelain",
                                "--untracked-files=no", "--", ".", ":!docs/benchmarks.json",
                                ":!docs/benchmarks.md"], capture_output=True, text=True,
                               check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def utc_now() -> str:
    """The current time in UTC, to the minute.

    Returns
    -------
    str
        ``"YYYY-MM-DD HH:MM UTC"``.
    """
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def command_line(argv: Sequence[str]) -> str:
    """A command as a reader would type it (interpreter shown as ``python``).

    Parameters
    ----------
    argv : sequence of str
        The program and its arguments (``sys.executable`` first or not).

    Returns
    -------
    str
        Space-joined, the interpreter path replaced by ``python`` and repository paths made
        relative.
    """
    out = []
    for a in argv:
        a = str(a)
        if a == sys.executable:
            a = "python"
        elif a.startswith(str(REPO_ROOT) + os.sep):
            a = a[len(str(REPO_ROOT)) + 1:]
        out.append(a)
    return " ".join(out)


# ----------------------------------------------------------------------------- runs of the same code
def code_fingerprint(root=None, globs: Sequence[str] = CODE_GLOBS,
                     exclude: Sequence[str] = RECORDER_FILES) -> str:
    """A short hash of the code a benchmark measures (the files ``globs`` matches).

    The names and bytes of every matching file under ``root``, in sorted order, are hashed.

    Parameters
    ----------
    root : path-like, optional
        The checkout (default: this repository).
    globs : sequence of str, default=:data:`CODE_GLOBS`
        ``pathlib`` patterns relative to ``root``.
    exclude : sequence of str, default=:data:`RECORDER_FILES`
        Paths relative to ``root`` left out (the recorder and the driver: they format and
        store results, they do not run the code measured).

    Returns
    -------
    str
        16 hex digits; equal for two checkouts exactly when those files are equal.

    Raises
    ------
    ValueError
        When no file matches (the fingerprint would not describe any code).
    """
    from pathlib import Path

    root = Path(REPO_ROOT if root is None else root)
    skip = {root / e for e in exclude}
    files = sorted({p for g in globs for p in root.glob(g)
                    if p.is_file() and "__pycache__" not in p.parts and p not in skip})
    if not files:
        raise ValueError(f"code_fingerprint: no file under {root} matches {list(globs)}")
    h = hashlib.sha256()
    for p in files:
        h.update(p.relative_to(root).as_posix().encode() + b"\0")
        h.update(p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def _run_record(entry: Mapping) -> dict:
    """What the history keeps of one run: its date, commit and each row's repeats."""
    return {"date": entry["date"], "commit": entry["commit"],
            "rows": [{"case": r["case"], "size": r["size"], "ours_runs": list(r["ours_runs"]),
                      "reference_runs": None if r["reference_runs"] is None
                      else list(r["reference_runs"])} for r in entry["rows"]]}


def merge_history(new: dict, old: Mapping | None, max_runs: int = MAX_RUNS) -> dict:
    """``new`` with the earlier reliable runs of the same code in ``new["history"]``.

    Parameters
    ----------
    new : dict
        The entry just run, with its ``fingerprint`` (:func:`code_fingerprint`).
    old : mapping or None
        The entry it replaces in the results file.
    max_runs : int, default=:data:`MAX_RUNS`
        Runs kept in all, ``new`` included (the oldest are dropped).

    Returns
    -------
    dict
        ``new`` (modified in place): ``history`` holds ``old``'s history and ``old`` itself
        (when reliable) if both measured the same code; otherwise it is empty (the code
        changed: earlier runs say nothing about this one).
    """
    max_runs = check_int(max_runs, "max_runs", min_value=1)
    if "fingerprint" not in new:
        raise ValueError(f"benchmark {new.get('name', '?')!r}: merge_history needs the new "
                         "entry's 'fingerprint'")
    prior = []
    if old is not None and old.get("fingerprint") == new["fingerprint"]:
        prior = list(old.get("history", []))
        if old.get("reliable"):
            prior.append(_run_record(old))
    new["history"] = prior[max(0, len(prior) - (max_runs - 1)):] if max_runs > 1 else []
    return new


def pooled_rows(entry: Mapping) -> list[dict]:
    """The entry's rows over every run it holds: its own repeats and its history's.

    A history row is pooled with a row of the same ``case`` and ``size``; medians, the ratio
    (of the pooled medians) and its range (over every paired repeat) are recomputed by
    :func:`summarise_row`.

    Parameters
    ----------
    entry : mapping
        One benchmark's entry (validated).

    Returns
    -------
    list of dict
        One row per row of ``entry`` (the :data:`ROW_FIELDS`), plus ``n_runs``: how many
        runs it pools (1 without history).
    """
    out = []
    for row in entry["rows"]:
        ours, ref, n = list(row["ours_runs"]), list(row["reference_runs"] or []), 1
        for run in entry.get("history", []):
            for h in run["rows"]:
                if (h["case"], h["size"]) != (row["case"], row["size"]):
                    continue
                if (h["reference_runs"] is None) != (row["reference_runs"] is None):
                    continue
                ours += h["ours_runs"]
                ref += h["reference_runs"] or []
                n += 1
        pooled = summarise_row(row["case"], row["size"], row["unit"], ours,
                               ref if row["reference_runs"] is not None else None,
                               row["reference_name"], higher_is_better=row["higher_is_better"],
                               agreement=row["agreement"])
        pooled["n_runs"] = n
        out.append(pooled)
    return out


def reproduction(new: Mapping, old: Mapping | None) -> dict | None:
    """Whether a new run's ratios fall within the spread the recorded runs report.

    Parameters
    ----------
    new : mapping
        The entry just run (its own rows, not pooled).
    old : mapping or None
        The recorded entry of the same benchmark.

    Returns
    -------
    dict or None
        ``None`` when there is nothing to check against (no record, another code
        fingerprint, or a record marked unreliable). Otherwise ``against_runs`` (how many
        recorded runs), ``rows`` (per ratio: ``case``, ``ratio`` of this run, the recorded
        ``recorded_ratio``, ``recorded_min``, ``recorded_max`` and ``within``) and
        ``all_within``.
    """
    if (old is None or "fingerprint" not in old or old.get("fingerprint") != new.get("fingerprint")
            or not quotable(old)):
        return None
    recorded = {(r["case"], r["size"]): r for r in pooled_rows(old)}
    rows = []
    for r in new["rows"]:
        rec = recorded.get((r["case"], r["size"]))
        if r["ratio"] is None or rec is None or rec["ratio"] is None:
            continue
        rows.append({"case": r["case"], "ratio": r["ratio"], "recorded_ratio": rec["ratio"],
                     "recorded_min": rec["ratio_min"], "recorded_max": rec["ratio_max"],
                     "within": bool(rec["ratio_min"] <= r["ratio"] <= rec["ratio_max"])})
    n_runs = max((r["n_runs"] for r in recorded.values()), default=0)
    return {"against_runs": n_runs, "rows": rows, "all_within": all(r["within"] for r in rows)}
