"""Batch re-execution of the book's notebooks on Dask: a grid of notebooks × parameters.

Every job is one papermill run of one source notebook (``notebooks/NN_*.ipynb``) with one
set of parameters. Jobs run on a Dask cluster — a :class:`distributed.LocalCluster` by
default, an existing scheduler (``--scheduler tcp://host:8786``), or SLURM through
dask-jobqueue (``--scheduler slurm``) — or serially in this process (``--scheduler serial``).

Executed notebooks land where the book renders them (``book/notebooks/``): a notebook run with
the chapter's own grid point is ``NN_name.ipynb``; other grid points are
``NN_name__param-value.ipynb``, which ``_toc.yml`` lists under their chapter. A chapter that
records findings for the summary page gets ``run_name`` = its output notebook's name, so a
grid point records its own findings (which the summary leaves out).

Run sizes live in two places: the notebooks' parameter cells (their defaults are the
sandbox's sizes) and :data:`PROFILES` (the paper's sizes for real NSD; the ``smoke`` sizes
of quick test runs on the tiny sandbox, ``--smoke``).

Resumable: each output notebook carries a fingerprint of its source notebook, its
parameters, its input data (file names, sizes, times) and the package (version and source);
a job whose output holds the same fingerprint is skipped. Outputs are written atomically, so
a failed cell or a killed run never leaves a half-written notebook (a failed notebook is kept
for inspection under ``<output_dir>/.failed/``). ``<output_dir>/manifest.json`` records, for
every executed notebook, the git revision, parameters, package versions, timings, a
digest of its outputs and the data it used (``data_used``: the subjects and, per subject,
the sessions of a chapter that reads betas; :func:`~brainllm_utils.chapters.data_used`).

Command line::

    python -m brainllm_utils.batch run [NOTEBOOK ...] [--data PATH] [--profile auto]
        [--grid NAME=V1,V2 | --grid 'NAME=[json, ...]'] [--set NAME=VALUE]
        [--scheduler local|serial|slurm|ADDRESS] [--workers N] [--threads T] [--force] [--smoke]
        [--slurm KEY=VALUE ...] [--slurm-start-timeout SECONDS] [--config PATH]

With ``--scheduler slurm`` each SLURM job is one Dask worker (:func:`make_cluster`): its
memory defaults to the partition's memory per core × ``--threads`` (``sinfo``), its walltime
to 4 h (or the partition's shorter limit); ``--slurm KEY=VALUE`` sets any other
``dask_jobqueue.SLURMCluster`` option. A job SLURM refuses fails the run at once with sbatch's
message; one that has not started after ``--slurm-start-timeout`` seconds (default 300) fails
it with squeue's reason.

Every parameter of every job is validated before any notebook starts, whatever its source
(:data:`PARAMETER_RULES`: types against the notebooks' defaults, ranges and choices, subjects,
sessions and atlases on disk); the message names the notebook, the parameter, its value and
source, and what was expected. A value's source, by :data:`PRECEDENCE` (highest first):
``--set`` (for ``data_home`` also ``--data``), ``--grid``, the profile, the environment
(``$BRAINLLM_DATA``, ``$BRAINLLM_FASTTEXT``, ``$BRAINLLM_GLOVE``), the notebook's default; a
parameter given both by ``--set`` and ``--grid`` is refused. ``--scheduler``, ``--workers``
and ``--threads`` are checked first (an unknown scheduler, fewer than 1 worker or thread).

User feature spaces reach every kernel and worker when declared once: in a config file
(``--config PATH``, else ``$BRAINLLM_CONFIG``, else ``./brainllm.toml``; ``[plugins]
modules``/``paths`` and ``[feature_spaces.NAME] path``) or an entry point of the group
``brainllm_utils.plugins`` (:mod:`brainllm_utils.features`, ``_plugins``). The batch loads them
and validates every precomputed file before planning (a problem stops the run, nothing
started), exports the config's absolute path to each kernel as ``$BRAINLLM_CONFIG``, and keys
each job's fingerprint on them; a feature parameter may name ``precomputed:<path>``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import functools
import getpass
import itertools
import json
import os
import re
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from .._utils.cache import cache_key, load_entry
from .._utils.docs import fill_doc
from .._utils.paths import REPO_ROOT, atomic_write_text, file_lock, get_data_home, remove_stale_temps
from ..features import RQ2_SPACES
from ..nsd import NSDFileError, parse_session_spec, subject_name
from ._execute import (NOTEBOOK_DIR, OUTPUT_DIR, execute_notebook, list_notebooks, notebook_parameters,
                       notebook_paths)

__all__ = [
    "PROFILES",
    "PARAMETER_RULES",
    "PRECEDENCE",
    "BatchError",
    "BatchParameterError",
    "Job",
    "JobResult",
    "data_fingerprint",
    "package_fingerprint",
    "profile_for",
    "plan_jobs",
    "validate_parameters",
    "run_jobs",
    "run_grid",
    "run_book",
    "make_cluster",
    "SlurmStartError",
    "SLURM_START_TIMEOUT",
    "NOTEBOOK_PEAK_GB",
    "default_workers",
    "read_manifest",
    "exported_partial_data",
    "data_used_record",
    "format_results",
    "package_versions",
    "git_revision",
    "main",
]

#: Parameter overrides per profile, keyed by notebook stem:
#: ``PROFILES[profile][stem] = {parameter: value}``. ``sandbox``: the notebooks' own
#: defaults (sized for the generated sandbox on 2 CPU cores). ``paper``: the paper's settings
#: for a real NSD copy (all sample sets, 6-voxel searchlight spheres, every RQ2 space in ROI RSA
#: and encoding, the full BLT recipe with 10 seeds per objective, all training images); a GPU is strongly recommended (see "Getting
#: NSD"). ``smoke``: quick sizes for tests on the ``tiny`` sandbox (few images and sets, fewer
#: folds, the ``tiny`` BLT preset with one seed and no size sweep), applied on top of the
#: chosen profile by ``plan_jobs(..., smoke=True)`` / ``--smoke``.
PROFILES: dict[str, dict[str, dict]] = {
    "sandbox": {},
    "paper": {
        "01_feature_spaces": {"n_sets": None},
        "02_rsa": {"n_sets": None, "searchlight_n_sets": None, "searchlight_radius": 6,
                   "rq2_spaces": list(RQ2_SPACES)},
        "03_encoding": {"encoding_roi": None, "rq2_spaces": list(RQ2_SPACES), "rq2_roi": "streams"},
        "04_decoding": {"pool_per_image": None},
        "05_image_to_llm": {
            # the paper's split of the 50,287 COCO images outside NSD: 48,236 train, 2,051 val
            "preset": "paper", "seeds": list(range(10)), "n_train": None, "n_val": 2051,
            "size_sweep": [5000, 10000, 25000, 48000], "size_sweep_seeds": [0, 1, 2], "n_sets": None,
            "searchlight_n_sets": None, "searchlight_radius": 6,
            "readout_epochs": 200, "num_workers": 4,
        },
        # MPNet, MiniLM and every RQ2 control (word vectors aside: they need their files), all
        # sample sets, the paper's single fraction
        "08_model_comparison": {"models": ["mpnet", *(s for s in RQ2_SPACES
                                                       if not s.startswith(("fasttext_", "glove_")))],
                                "n_sets": None, "encoder": "fracridge"},
    },
    "smoke": {
        "01_feature_spaces": {"feature_spaces": ["mpnet", "multihot", "mpnet_word_avg"], "set_size": 12,
                              "n_sets": 1, "n_pairs": 1},
        "02_rsa": {"feature_spaces": ["mpnet", "multihot", "mpnet_word_avg"], "set_size": 12, "n_sets": 1,
                   "searchlight_n_sets": 1, "searchlight_radius": 2, "surface_radius_mm": 8.0,
                   "rq2_spaces": ["mpnet_adjectives", "glove_all"]},
        "03_encoding": {"cv": 3, "n_ratios": 3, "encoding_roi": "nsdgeneral", "n_views": 2,
                        "rq2_spaces": ["mpnet_adjectives", "glove_all"]},
        "04_decoding": {"cv": 3, "pool_per_image": 0, "single_rois": ["early", "ventral"]},
        "05_image_to_llm": {
            "preset": "tiny", "seeds": [0], "n_train": None, "n_val": 8, "size_sweep": [],
            "comparison_models": ["untrained_blt", "untrained_alexnet", "resnet50"], "set_size": 12,
            "n_sets": 1, "searchlight_n_sets": 1, "searchlight_radius": 2, "surface_radius_mm": 8.0,
            "readout_epochs": 30, "transfer_on_sample_sets": True,
        },
        "08_model_comparison": {"models": ["mpnet", "multihot", "mpnet_word_avg"], "set_size": 12,
                                "n_sets": 1, "cv": 3},
    },
}
#: Peak memory (GiB, anonymous, one notebook process) of each chapter under the ``paper`` profile
#: at full NSD size (8 subjects, ~10,000 images each, 327,684 fsaverage vertices), extrapolated
#: by ``benchmarks/bench_nsd_memory.py`` (the table in ``docs/benchmarks.md``); a chapter it
#: does not measure counts as the issue's 8 GB budget. :func:`default_workers` divides the
#: machine's memory by these.
NOTEBOOK_PEAK_GB: dict[str, float] = {
    "00_data_tour": 1.0,  # reads no betas (noise ceilings, atlases): not measured, 1 GB allowed
    "01_feature_spaces": 1.0,  # measured 0.92
    "02_rsa": 4.1,  # ROI RSA 4.08 (one ROI of every image at a time); the betas cache build 2.03
    "03_encoding": 2.2,  # streamed 1.67 + 0.5 for 8 subjects' ceiling and maps; betas 2.03
    "04_decoding": 7.0,  # 4.56 measured fit + 2.4 kernel ridge (n² terms, 10,000 images)
    "05_image_to_llm": 3.5,  # training on the streamed pool 3.46 (flat in the pool), then RSA 2.65
    "06_summary": 1.0,  # reads no betas: not measured
    "07_reproduction": 1.0,  # reads no betas: not measured
    "08_model_comparison": 4.1,  # not measured: chapter 02's ROI RSA, then chapter 03's streamed encoders
}
#: Used for a chapter missing from :data:`NOTEBOOK_PEAK_GB` (the budget of issue 12).
_DEFAULT_PEAK_GB = 8.0
#: Memory left to the system and the scheduler when choosing the workers (GiB).
_RESERVE_GB = 2.0
#: Workers of a sandbox run (the notebooks' own sizes; ``make book``'s 2 cores).
_SANDBOX_WORKERS = 2


def _available_memory() -> int:
    """Bytes of memory available to new processes (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def default_workers(notebooks=None, available_bytes: int | None = None, cpus: int | None = None) -> int:
    """Workers for a run on real NSD: ``min(CPUs, floor(usable memory / per-notebook peak))``.

    Usable memory is what the system reports available (psutil) minus a 2 GiB reserve; the
    per-notebook peak is the largest of the chapters run (:data:`NOTEBOOK_PEAK_GB`, measured
    at full NSD size with the ``paper`` profile; 8 GB for a chapter it does not list). Never
    fewer than 1: with less memory than one notebook needs, the run is serial (and may swap).

    Parameters
    ----------
    notebooks : iterable of str, optional
        Notebook stems of the run (``None``: every chapter in ``notebooks/``).
    available_bytes : int, optional
        Memory available (default: ``psutil.virtual_memory().available``).
    cpus : int, optional
        CPUs usable by this process (default: its CPU affinity).

    Returns
    -------
    workers : int
        At least 1.
    """
    stems = list(notebooks) if notebooks else [p.stem for p in list_notebooks()]
    peak = max([NOTEBOOK_PEAK_GB.get(str(n), _DEFAULT_PEAK_GB) for n in stems] or [_DEFAULT_PEAK_GB])
    avail = _available_memory() if available_bytes is None else int(available_bytes)
    cpus = _cpu_count() if cpus is None else int(cpus)
    if avail < 0 or cpus < 1:
        raise ValueError(f"available_bytes={avail}, cpus={cpus}: expected ≥ 0 and ≥ 1")
    by_memory = int((avail / 2**30 - _RESERVE_GB) // max(peak, 1e-3))
    return max(1, min(cpus, by_memory))


#: Where a notebook parameter's value comes from, highest first: an explicit ``--set`` (``fixed``;
#: for ``data_home`` also ``--data``), ``--grid``, the profile (``--smoke``'s on top of
#: ``--profile``'s), the environment (``$BRAINLLM_DATA`` for ``data_home``,
#: ``$BRAINLLM_FASTTEXT``/``$BRAINLLM_GLOVE`` for ``fasttext_path``/``glove_path``), the
#: notebook's default. A parameter given both by ``--set`` and ``--grid`` is refused.
PRECEDENCE = ("--set", "--grid", "profile", "environment", "notebook default")

#: the parameter a chapter's findings are recorded under; the batch sets it for every job
_RUN_NAME = "run_name"
#: the parameter of the folder the executed notebooks go to (a page that writes a file
#: beside itself, e.g. 07's reproduction CSV); the batch sets it where declared
_OUTPUT_DIR = "output_dir"
#: notebooks that read what the chapters recorded (findings): they run in wave 1
_AFTER_CHAPTERS = ("_summary", "_reproduction")

#: notebooks whose ``subject`` is only the one shown in figures: they use every subject on disk
_ALL_SUBJECTS_NOTEBOOKS = ("00_data_tour",)


class BatchError(RuntimeError):
    """One or more jobs failed; ``results`` holds every job's outcome.

    Raised by :func:`run_jobs` at the end, after every other job has run.

    Parameters
    ----------
    message : str
        The error message: the failed notebooks and their errors.
    results : list of JobResult
        Every job's outcome, in job order (executed, skipped and failed ones).

    Attributes
    ----------
    results : list of JobResult
        As given.
    """

    def __init__(self, message: str, results: list):
        super().__init__(message)
        self.results = results


class BatchParameterError(ValueError):
    """A parameter value is invalid (named in the message); raised before anything runs.

    Raised by :func:`plan_jobs`, :func:`validate_parameters` and the command line's
    ``--grid``/``--set`` parsing; a :class:`ValueError`.
    """


# ---------------------------------------------------------------------------- fingerprints
def _sha(payload) -> str:
    """A fingerprint (the one cache's key builder, kind ``"notebooks"``)."""
    if not isinstance(payload, bytes):  # JSON-like: canonical text (paths, numbers, nested dicts)
        payload = json.dumps(payload, sort_keys=True, default=str)
    return cache_key("notebooks", payload, length=64)


def data_fingerprint(data_home) -> str:
    """Digest of every file under the NSD root: relative path, size and modification time.

    Contents are not read (a real NSD copy is hundreds of GB); a regenerated sandbox or an
    updated NSD file changes the digest. Hidden files and folders (``.*``) are left out;
    symbolic links are followed.

    Parameters
    ----------
    data_home : str or path-like
        The NSD root.

    Returns
    -------
    digest : str
        64 hexadecimal digits (part of every job's fingerprint, :func:`plan_jobs`).
    """
    root = Path(data_home).resolve()
    entries = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            path = Path(dirpath) / name
            try:
                st = path.stat()
            except OSError:
                continue
            entries.append((str(path.relative_to(root)), st.st_size, st.st_mtime_ns))
    return _sha(entries)


#: libraries whose version can change a notebook's numbers or figures
_TRACKED = ("numpy", "scipy", "scikit-learn", "pandas", "torch", "transformers", "nilearn",
            "nibabel", "matplotlib", "seaborn", "rsatoolbox", "papermill", "spacy")


def package_versions() -> dict[str, str]:
    """Versions of the package, of Python and of the libraries that can change a notebook's results.

    Recorded in the manifest for every executed notebook, and part of
    :func:`package_fingerprint`.

    Returns
    -------
    versions : dict of str to str
        ``"brainllm_utils"``, ``"python"`` and each tracked library (numpy, scipy,
        scikit-learn, pandas, torch, transformers, nilearn, nibabel, matplotlib, seaborn,
        rsatoolbox, papermill, spacy) → its version; ``"absent"`` for a library that is not
        installed.
    """
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    out = {"brainllm_utils": __version__, "python": sys.version.split()[0]}
    for name in _TRACKED:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "absent"
    return out


def package_fingerprint() -> str:
    """Digest of the package version, its source files and the tracked library versions.

    Part of every job's fingerprint (:func:`plan_jobs`): editing the package's source, or
    upgrading a tracked library (:func:`package_versions`), re-runs the notebooks.

    Returns
    -------
    digest : str
        64 hexadecimal digits.
    """
    pkg = Path(__file__).resolve().parents[1]
    sources = [(p.relative_to(pkg).as_posix(), _sha(p.read_bytes())) for p in sorted(pkg.rglob("*.py"))]
    return _sha({"versions": package_versions(), "sources": sources})


#: Small result files committed under ``book/`` that pages read instead of recomputing (the
#: positive world's scorecard, ...): part of the summary pages' fingerprints.
BOOK_RESULTS = REPO_ROOT / "book" / "results"


def _committed_results() -> list:
    """``(name, sha256)`` of each file under :data:`BOOK_RESULTS` (empty when there is none)."""
    if not BOOK_RESULTS.is_dir():
        return []
    return [(p.relative_to(BOOK_RESULTS).as_posix(), _sha(p.read_bytes()))
            for p in sorted(BOOK_RESULTS.rglob("*")) if p.is_file()]


def git_revision() -> dict:
    """The repository's git revision and whether it has uncommitted changes, if it is one.

    Recorded in the manifest for every executed notebook.

    Returns
    -------
    revision : dict
        ``{"rev": sha or None, "dirty": bool or None}``: the commit checked out and whether
        tracked files differ from it (untracked files aside); both ``None`` when the
        repository is not a git repository or git cannot be run.
    """
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return {"rev": None, "dirty": None}
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        return {"rev": rev.stdout.strip(), "dirty": bool(status.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"rev": None, "dirty": None}


# ---------------------------------------------------------------------------- validation
def _is_nsd_root(path: Path) -> bool:
    return (path / "nsddata").is_dir() and (path / "nsddata_betas").is_dir()


def _check_data_home(data_home) -> Path:
    if not isinstance(data_home, (str, os.PathLike)) or not str(data_home):
        raise BatchParameterError(f"data_home={data_home!r}: expected the path of an NSD root (a folder)")
    path = Path(data_home).expanduser()
    if not path.is_dir():
        raise BatchParameterError(
            f"data_home={str(data_home)!r}: no such folder (expected an NSD root holding "
            "nsddata/, nsddata_betas/ and nsddata_stimuli/; see the book's 'Getting NSD' page)")
    if not _is_nsd_root(path):
        raise BatchParameterError(
            f"data_home={str(data_home)!r}: not an NSD root (nsddata/ or nsddata_betas/ missing)")
    return path.resolve()


# ---------------------------------------------------------------------------- parameter rules
class _Context:
    """What a parameter's check may consult: the notebook, the NSD root, the job's values."""

    def __init__(self, stem: str, root: Path, parameters: dict, cache: dict):
        self.stem, self.root, self.parameters, self._cache = stem, root, parameters, cache

    def subjects(self) -> list:
        """Subjects with betas under the root (read once per root)."""
        if self.root not in self._cache:
            from ..nsd import NSD

            self._cache[self.root] = NSD(self.root).subjects
        return self._cache[self.root]

    def atlases(self) -> list:
        """Atlases with fsaverage label files (``lh.``/``rh.<atlas>.mgz``) under the root."""
        folder = self.root / "nsddata" / "freesurfer" / "fsaverage" / "label"
        lh = {p.name[3:-4] for p in folder.glob("lh.*.mgz")}
        return sorted(a for a in lh if (folder / f"rh.{a}.mgz").is_file())


@dataclass(frozen=True)
class _Rule:
    """How one notebook parameter is checked: its kind (the type of the notebook's default),
    whether ``None`` is allowed, what is expected (for messages) and the check itself, which
    returns the value (booleans normalised) or raises ``ValueError`` with the reason."""

    kind: str  # "int", "float", "bool", "str", "list", "dict", "path", "subject"
    expected: str
    check: object = None  # callable(value, ctx) -> value; None: the kind's type check only
    nullable: bool = False


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    import math

    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


#: the spellings of a boolean that ``--set``/``--grid`` accept (case-insensitive)
_TRUE, _FALSE = ("true", "1", "yes"), ("false", "0", "no")


def _as_bool(value, ctx=None) -> bool:
    if isinstance(value, bool):
        return value
    if _is_int(value) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError("not a boolean")


def _int_check(lo=None, hi=None):
    def check(value, ctx=None):
        if not _is_int(value):
            raise ValueError(f"not an integer ({type(value).__name__})")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError("out of range")
        return value
    return check


def _float_check(lo=None, hi=None, open_lo=True, open_hi=True):
    def check(value, ctx=None):
        if not _is_number(value):
            raise ValueError(f"not a finite number ({type(value).__name__})")
        if lo is not None and (value <= lo if open_lo else value < lo):
            raise ValueError("out of range")
        if hi is not None and (value >= hi if open_hi else value > hi):
            raise ValueError("out of range")
        return value
    return check


def _list_check(item, min_len=1, unique=True, key=None):
    """A list (or tuple) whose every item passes ``item``; at least ``min_len``; no duplicates
    (compared through ``key``, e.g. a subject's canonical name)."""
    def check(value, ctx):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"not a list ({type(value).__name__}; give a JSON list, e.g. --set "
                             f"'NAME=[...]')")
        if len(value) < min_len:
            raise ValueError(f"{len(value)} item(s)")
        out = [item(v, ctx) for v in value]
        if unique:
            seen = [json.dumps(key(v) if key else v, sort_keys=True, default=str) for v in out]
            dup = sorted({v for v in seen if seen.count(v) > 1})
            if dup:
                raise ValueError(f"duplicate item(s) {dup}")
        return type(value)(out) if isinstance(value, tuple) else out
    return check


def _subject_check(value, ctx):
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError(f"not a subject ({type(value).__name__})")
    try:
        label = subject_name(value)
    except ValueError:
        raise ValueError("not a subject name") from None
    have = ctx.subjects()
    if label not in have:
        raise ValueError(f"unknown subject {value!r}: subjects with betas under {ctx.root}: {have or 'none'}")
    return value


def _gallery_subject_check(value, ctx):
    _subject_check(value, ctx)
    chosen = ctx.parameters.get("subjects")
    if isinstance(chosen, (list, tuple)):
        try:
            names = [subject_name(s) for s in chosen]
        except ValueError:
            return value  # the subjects parameter is reported by its own check
        if subject_name(value) not in names:
            raise ValueError(f"not one of the analysed subjects {names}")
    return value


def _feature_check(value, ctx=None):
    from .. import features

    if not isinstance(value, str):
        raise ValueError(f"not a feature-space name ({type(value).__name__})")
    try:  # the registry's message: the available names, and plugins that failed to load
        features.lookup(value)
    except ValueError as err:
        raise ValueError(str(err)) from None
    if value.startswith("sbert:"):
        try:  # any local sentence-transformers model: it must be on this machine
            features.resolve_model(value.split(":", 1)[1])
        except features.ModelNotFoundError as err:
            raise ValueError(f"{value!r} is not installed: {err}") from None
    if value.startswith("hf:"):
        try:  # parsed, the model found and its config read (no weights loaded)
            features.check_text_model_name(value)
        except features.ModelNotFoundError as err:
            raise ValueError(f"{value!r} is not installed: {err}") from None
        except NotImplementedError as err:
            raise ValueError(str(err)) from None
        model, options = features.parse_text_model_name(value)
        if not Path(model).expanduser().is_absolute() and Path(model).expanduser().is_dir():
            # a folder relative to here: absolute, as kernels run in their output folder
            value = features.text_model_name(str(Path(model).expanduser().resolve()), **options)
    space = features.precomputed_space(value)
    if space is not None:  # a file: read and validated now, not in a kernel an hour later
        try:
            space.check()
        except (ValueError, OSError) as err:
            raise ValueError(str(err)) from None
        if value.startswith(features.PRECOMPUTED_PREFIX):  # absolute: kernels run elsewhere
            value = features.PRECOMPUTED_PREFIX + space.path
    return value


def _atlas_check(value, ctx):
    if not isinstance(value, str):
        raise ValueError(f"not an atlas name ({type(value).__name__})")
    have = ctx.atlases()
    if value not in have:
        raise ValueError(f"no fsaverage atlas {value!r} under {ctx.root} (lh./rh.{value}.mgz); "
                         f"atlases there: {have or 'none'}")
    return value


def _roi_label_check(atlas_parameter=None):
    """A label of the streams atlas (or of the atlas named by ``atlas_parameter``)."""
    def check(value, ctx):
        from ..nsd import NSD, STREAMS_LABELS

        if not isinstance(value, str):
            raise ValueError(f"not an ROI name ({type(value).__name__})")
        atlas = ctx.parameters.get(atlas_parameter) if atlas_parameter else None
        if atlas_parameter and isinstance(atlas, str) and atlas in ctx.atlases():
            try:
                names = sorted(set(NSD(ctx.root).roi_labels(atlas).values()) - {"Unknown", "unknown"})
            except (OSError, ValueError):
                return value  # the atlas itself is reported by its own check
            where = f"atlas {atlas!r}"
        else:
            names, where = list(STREAMS_LABELS), "the streams atlas"
        if value not in names:
            raise ValueError(f"{value!r} is not a label of {where}: {names}")
        return value
    return check


def _file_check(value, ctx=None):
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError(f"not a path ({type(value).__name__})")
    if not Path(str(value)).expanduser().is_file():
        raise ValueError("not a file")
    return value


def _folder_check(value, ctx=None):
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise ValueError(f"not a path ({type(value).__name__})")
    if not Path(str(value)).expanduser().is_dir():
        raise ValueError("not a folder")
    return value


def _str_check(value, ctx=None):
    if not isinstance(value, str):
        raise ValueError(f"not a string ({type(value).__name__})")
    return value


def _device_check(value, ctx=None):
    if not (value in ("auto", "cpu", "cuda") or (isinstance(value, str) and re.fullmatch(r"cuda:\d+", value))):
        raise ValueError("not a device")
    return value


def _choice_check(choices_of):
    def check(value, ctx=None):
        choices = choices_of()
        if not isinstance(value, str) or value not in choices:
            raise ValueError(f"unknown; available: {sorted(choices)}")
        return value
    return check


def _comparison_metrics():
    from ..chapters.model_comparison import METRICS

    return METRICS


def _comparison_encoders():
    from ..chapters.model_comparison import ENCODERS

    return ENCODERS


def _vision_model_check(value, ctx=None):
    """A built-in comparison model, or a registered one as '<name>' / '<name>:<layer>'."""
    from .. import vision

    if not isinstance(value, str):
        raise ValueError(f"not a vision-model name ({type(value).__name__})")
    try:
        return vision.check_model_reference(value)
    except (TypeError, ValueError) as err:
        raise ValueError(str(err)) from None


def _vision_presets():
    from ..vision import PRESETS as VISION_PRESETS

    return VISION_PRESETS


def _alpha_grid_check(value, ctx=None):
    if not isinstance(value, (list, tuple)) or len(value) != 3:
        raise ValueError("not a (log10 min, log10 max, number) triple")
    lo, hi, n = value
    if not (_is_number(lo) and _is_number(hi) and lo < hi) or not (_is_int(n) and n >= 1):
        raise ValueError("needs finite log10 min < log10 max and an integer number ≥ 1")
    return value


def _n_views_check(value, ctx=None):
    from ..viz import SURFACE_VIEWS

    return _int_check(1, len(SURFACE_VIEWS))(value)


def _contrast_sets_check(value, ctx=None):
    if not isinstance(value, dict) or not value:
        raise ValueError(f"not a non-empty dict ({type(value).__name__})")
    for name, sentences in value.items():
        if not isinstance(name, str) or not isinstance(sentences, (list, tuple)) or not sentences \
                or not all(isinstance(s, str) and s.strip() for s in sentences):
            raise ValueError(f"set {name!r}: expected a non-empty list of non-empty sentences")
    return value


def _contrasts_check(value, ctx):
    from ..encoding import CATEGORY_SENTENCES

    sets = ctx.parameters.get("contrast_sets")
    names = sorted(sets) if isinstance(sets, dict) else sorted(CATEGORY_SENTENCES)

    def pair(p, ctx):
        if not isinstance(p, (list, tuple)) or len(p) != 2 or not all(isinstance(x, str) for x in p):
            raise ValueError(f"{p!r} is not a pair of set names")
        if p[0] == p[1]:
            raise ValueError(f"{p!r} contrasts a set with itself")
        bad = [x for x in p if x not in names]
        if bad:
            raise ValueError(f"{p!r}: unknown set(s) {bad}; the sets: {names}")
        return p

    return _list_check(pair)(value, ctx)


def _sessions_rule(value, ctx):
    params = ctx.parameters
    if ctx.stem in _ALL_SUBJECTS_NOTEBOOKS:  # its `subject` is only the one shown: it reads every subject
        params = {k: v for k, v in params.items() if k != "subject"}
    _check_sessions(ctx.stem, value, params, ctx.root, ctx.subjects())
    return value


def _data_home_rule(value, ctx=None):
    return str(_check_data_home(value))


#: Every parameter the book's notebooks declare, with its check (a test asserts that each
#: declared parameter has one and that each notebook's default passes it). A parameter of a
#: notebook outside the book without a rule is checked against the type of its default.
PARAMETER_RULES: dict[str, _Rule] = {
    "data_home": _Rule("path", "an NSD root holding nsddata/ and nsddata_betas/ (None: $BRAINLLM_DATA, "
                       "else the sandbox)", _data_home_rule, True),
    "subject": _Rule("subject", "a subject with betas ('subjNN' or an integer)", _subject_check),
    "subjects": _Rule("list", "a non-empty list of distinct subjects with betas (None: all on disk)",
                      _list_check(_subject_check, key=subject_name), True),
    "gallery_subject": _Rule("subject", "one of the analysed subjects (None: the first)",
                             _gallery_subject_check, True),
    "sessions": _Rule("sessions", "sessions on disk: \"1-5\", a list of ints or {subject: sessions} (None: all "
                      "on disk)", _sessions_rule, True),
    "seed": _Rule("int", "an integer ≥ 0", _int_check(0)),
    "n_examples": _Rule("int", "an integer ≥ 1 (example scenes shown)", _int_check(1)),
    "feature_spaces": _Rule("list", "a non-empty list of distinct feature-space names",
                            _list_check(_feature_check)),
    "rq2_spaces": _Rule("list", "a list of distinct feature-space names", _list_check(_feature_check, 0)),
    "feature": _Rule("str", "a feature-space name", _feature_check),
    "models": _Rule("list", "a non-empty list of distinct feature-space names (a layer sweep: one name per "
                    "layer)", _list_check(_feature_check)),
    "metrics": _Rule("list", "a non-empty list of distinct metrics of chapters.model_comparison.METRICS",
                     _list_check(_choice_check(_comparison_metrics))),
    "encoder": _Rule("str", "an encoder of chapters.model_comparison.ENCODERS ('ridge': a penalty per "
                     "vertex; 'fracridge': the paper's single fraction)", _choice_check(_comparison_encoders)),
    "oracles": _Rule("bool", "a boolean: true/false, 1/0 or yes/no (on the sandbox, add the planted "
                     "truth:* spaces as reference rows)", _as_bool),
    "word_band": _Rule("str", "a feature-space name", _feature_check),
    "set_size": _Rule("int", "an integer ≥ 3 (images per sample set; an RDM correlation needs 3 pairs)",
                      _int_check(3)),
    "n_sets": _Rule("int", "an integer ≥ 1 (None: all sample sets)", _int_check(1), True),
    "searchlight_n_sets": _Rule("int", "an integer ≥ 1 (None: all sample sets)", _int_check(1), True),
    "n_pairs": _Rule("int", "an integer ≥ 1", _int_check(1)),
    "device": _Rule("str", "'auto', 'cpu', 'cuda' or 'cuda:N'", _device_check),
    "run_name": _Rule("str", "set by the batch runner", _str_check, True),
    "output_dir": _Rule("path", "set by the batch runner", _str_check, True),
    "fasttext_path": _Rule("path", "a word-vector file (fastText crawl-300d-2M.vec; None: $BRAINLLM_FASTTEXT, "
                           "else the fasttext_* spaces are not computed)", _file_check, True),
    "glove_path": _Rule("path", "a word-vector file (GloVe glove.840B.300d.txt; None: $BRAINLLM_GLOVE, "
                        "else the glove_* spaces are not computed)", _file_check, True),
    "corpus_file": _Rule("path", "a caption corpus file (None: the COCO pool's captions)", _file_check, True),
    "networks_dir": _Rule("path", "a folder of saved networks (None: train them)", _folder_check, True),
    "searchlight_radius": _Rule("int", "an integer ≥ 1 (voxels)", _int_check(1)),
    "surface_radius_mm": _Rule("float", "a number > 0 (mm)", _float_check(0)),
    "rq2_roi": _Rule("str", "an atlas with fsaverage labels on the root", _atlas_check),
    "partition_roi": _Rule("str", "an atlas with fsaverage labels on the root", _atlas_check),
    "roi": _Rule("str", "an atlas with fsaverage labels on the root", _atlas_check),
    "encoding_roi": _Rule("str", "an atlas with fsaverage labels on the root (None: the whole surface)",
                          _atlas_check, True),
    "alpha_grid": _Rule("list", "(log10 min, log10 max, number) with min < max and number ≥ 1",
                        _alpha_grid_check),
    "cv": _Rule("int", "an integer ≥ 2 (cross-validation folds)", _int_check(2)),
    "n_ratios": _Rule("int", "an integer ≥ 2 (band-weight ratios)", _int_check(2)),
    "contrast_sets": _Rule("dict", "{name: [sentences]} (None: people, places, food)", _contrast_sets_check, True),
    "contrasts": _Rule("list", "a non-empty list of distinct (A, B) pairs of contrast-set names",
                       _contrasts_check),
    "q": _Rule("float", "a number in (0, 1) (FDR level)", _float_check(0, 1)),
    "n_views": _Rule("int", "an integer in 1..4 (surface panels)", _n_views_check),
    "pool_per_image": _Rule("int", "an integer ≥ 0 (None: all captions)", _int_check(0), True),
    "n_gallery": _Rule("int", "an integer ≥ 1", _int_check(1)),
    "single_rois": _Rule("list", "a non-empty list of distinct labels of the `roi` atlas",
                         _list_check(_roi_label_check("roi"))),
    "rois": _Rule("list", "a non-empty list of distinct streams labels", _list_check(_roi_label_check())),
    "preset": _Rule("str", "a vision preset", _choice_check(_vision_presets)),
    "seeds": _Rule("list", "a non-empty list of distinct integers ≥ 0", _list_check(_int_check(0))),
    "epochs": _Rule("int", "an integer ≥ 1 (None: the preset's)", _int_check(1), True),
    "image_size": _Rule("int", "an integer ≥ 8 (pixels; None: the preset's)", _int_check(8), True),
    "n_train": _Rule("int", "an integer ≥ 1 (None: all but n_val)", _int_check(1), True),
    "n_val": _Rule("int", "an integer ≥ 1", _int_check(1)),
    "size_sweep": _Rule("list", "a list of distinct integers ≥ 1 (training-set sizes)",
                        _list_check(_int_check(1), 0)),
    "size_sweep_seeds": _Rule("list", "a non-empty list of distinct integers ≥ 0", _list_check(_int_check(0))),
    "comparison_models": _Rule("list", "a list of distinct vision.COMPARISON_MODELS names or "
                               "registered vision models ('<name>' or '<name>:<layer>')",
                               _list_check(_vision_model_check, 0)),
    "readout_epochs": _Rule("int", "an integer ≥ 1", _int_check(1)),
    "transfer_on_sample_sets": _Rule("bool", "a boolean: true/false, 1/0 or yes/no", _as_bool),
    "num_workers": _Rule("int", "an integer ≥ 0 (loader processes)", _int_check(0)),
}

#: the type each rule kind stands for (a rule's kind must match its notebook default's type)
_KIND_TYPES = {"int": (int,), "float": (int, float), "bool": (bool,), "str": (str,), "list": (list, tuple),
               "dict": (dict,), "path": (str, os.PathLike), "subject": (str, int),
               "sessions": (str, list, tuple, dict)}


def _default_rule(default) -> _Rule:
    """The rule of a parameter without an entry in :data:`PARAMETER_RULES`: its default's type."""
    if default is None:
        return _Rule("any", "any value", lambda v, ctx=None: v, True)
    if isinstance(default, bool):
        return _Rule("bool", "a boolean: true/false, 1/0 or yes/no", _as_bool)
    if isinstance(default, int):
        return _Rule("int", "an integer", _int_check())
    if isinstance(default, float):
        return _Rule("float", "a number", _float_check())
    if isinstance(default, str):
        return _Rule("str", "a string", _str_check)
    if isinstance(default, (list, tuple)):
        return _Rule("list", "a list", _list_check(lambda v, ctx=None: v, 0, unique=False))
    if isinstance(default, dict):
        return _Rule("dict", "a dict", lambda v, ctx=None: v if isinstance(v, dict) else _raise("not a dict"))
    return _Rule("any", "any value", lambda v, ctx=None: v, True)


def _raise(reason):
    raise ValueError(reason)


@fill_doc
def validate_parameters(notebook: str, parameters: dict, data_home=None, _cache=None,
                        sources: dict | None = None) -> dict:
    """Check every parameter of one job against :data:`PARAMETER_RULES`; return the values.

    Every parameter the notebook declares is checked, the given ones and the notebook's own
    defaults alike: names against the notebook's ``parameters`` cell; types against the rule
    (whose kind is the type of the notebook's default) and ranges or choices where the
    notebook or the package states them; subjects against those with betas on disk;
    ``sessions`` (``"1-5"``, a list of ints or ``{subject: sessions}``) against the beta files
    of every subject the job analyses; feature spaces against the registry (``sbert:<name>``:
    the model must be installed on this machine); atlases and ROI labels against the root's
    fsaverage label files; word-vector and corpus files must be files; comparison models and
    presets against :mod:`brainllm_utils.vision`; devices. ``None`` is accepted only where the
    notebook gives it a meaning (its rule says so). A parameter of a notebook outside the book
    (no rule) is checked against the type of its default.

    Parameters
    ----------
    notebook : str or pathlib.Path
        A notebook stem (``02_rsa``, looked up in ``notebooks/``) or the path of a source
        notebook.
    parameters : dict
        The job's parameter values, by name.
    %(data_home)s
        A ``data_home`` in ``parameters`` takes precedence. It must be an NSD root (holding
        ``nsddata/`` and ``nsddata_betas/``); its subjects are those with betas.
    _cache : dict, optional
        Private: subjects on disk by NSD root, filled and reused across calls (:func:`plan_jobs`
        passes one dict for all its jobs, so each root is read once); ``None``: a new dict.
    sources : dict of str to str, optional
        Where each given value came from (``"--set"``, ``"--grid"``, ``"profile 'paper'"``,
        ``"environment $BRAINLLM_FASTTEXT"``), named in the messages; default ``"given"``
        (``"notebook default"`` for the defaults).

    Returns
    -------
    parameters : dict
        ``parameters`` with booleans normalised (``"yes"``, ``"1"``, ``1`` → ``True``).

    Raises
    ------
    BatchParameterError
        For invalid parameters: one line each, naming the notebook, the parameter, its value
        and where it came from, and what was expected.
    ValueError
        For a ``notebook`` stem that is not a source notebook, or a notebook without a cell
        tagged ``parameters``.
    """
    source = list_notebooks([notebook])[0] if not isinstance(notebook, Path) else notebook
    stem = source.stem
    known = notebook_parameters(source)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise BatchParameterError(
            f"{stem}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    sources = dict(sources or {})
    cache = _cache if _cache is not None else {}
    root = parameters.get("data_home", data_home)
    try:
        root = _check_data_home(root if root is not None else get_data_home())
    except BatchParameterError as err:
        raise BatchParameterError(f"{stem}: {err} ({sources.get('data_home', 'given')})") from None
    full = {**known, **parameters}
    ctx = _Context(stem, root, full, cache)
    out, errors = dict(parameters), []
    for name, value in full.items():
        if name == "data_home":
            continue  # checked above
        rule = PARAMETER_RULES.get(name) or _default_rule(known[name])
        where = sources.get(name) or ("given" if name in parameters else "notebook default")
        if value is None:
            if not rule.nullable:
                errors.append(f"{stem}: {name}=None ({where}): None is not allowed here; expected "
                              f"{rule.expected}")
            continue
        try:
            checked = rule.check(value, ctx) if rule.check is not None else value
        except ValueError as err:
            errors.append(f"{stem}: {name}={value!r} ({where}): {err}; expected {rule.expected}")
            continue
        if name in out:
            out[name] = checked
    if errors:
        raise BatchParameterError("\n".join(errors))
    return out


def _check_sessions(stem: str, value, parameters: dict, root: Path, have: list) -> None:
    """``sessions`` of a job: well formed, and on disk for every subject the job analyses."""
    from ..nsd import NSD

    try:
        if not isinstance(value, dict):
            parse_session_spec(value)
    except ValueError as err:
        raise ValueError(str(err)) from None
    subjects = parameters.get("subjects")
    if subjects is None and parameters.get("subject") is not None:
        subjects = [parameters["subject"]]
    if subjects is not None and not isinstance(subjects, (list, tuple)):
        return  # the subjects parameter itself is reported by its own check
    try:
        names = have if subjects is None else [subject_name(s) for s in subjects]
    except (ValueError, TypeError):
        return  # the subjects parameter itself is reported by its own check
    nsd = NSD(root)
    for s in names:
        if s not in have:
            continue
        try:
            nsd.select_sessions(s, value, warn=False)
        except (ValueError, NSDFileError) as err:
            raise ValueError(f"for {s}: {err}") from None


@fill_doc
def data_used_record(parameters: dict, data_home=None, notebook=None) -> dict | None:
    """The subjects and sessions a job's chapter uses, for the manifest.

    Parameters
    ----------
    parameters : dict
        The job's parameters. ``subjects`` (or ``subject``; except in the data tour, which
        uses every subject on disk) and ``sessions`` are resolved as the chapter resolves them
        (:func:`~brainllm_utils.chapters.data_used`); missing ones take the notebook's
        defaults.
    %(data_home)s
        A ``data_home`` in ``parameters`` takes precedence.
    notebook : pathlib.Path, optional
        The source notebook: only one that declares ``sessions`` reads betas by session
        (others return ``None``). ``None``: ``parameters`` must hold ``sessions``.

    Returns
    -------
    record : dict or None
        ``root``, ``space``, ``subjects`` (list of str) and ``sessions`` (subject → list of
        int); ``{"error": message}`` when the data cannot be read; ``None`` for a notebook
        without a ``sessions`` parameter.
    """
    if notebook is not None:
        declared = notebook_parameters(Path(notebook))
        if "sessions" not in declared:
            return None
        parameters = {**declared, **parameters}
    if "sessions" not in parameters:
        return None
    from ..chapters import data_used
    from ..nsd import NSD

    subjects = parameters.get("subjects")
    tour = notebook is not None and Path(notebook).stem in _ALL_SUBJECTS_NOTEBOOKS
    if subjects is None and parameters.get("subject") is not None and not tour:
        subjects = [parameters["subject"]]
    try:
        table = data_used(NSD(parameters.get("data_home") or data_home), subjects, parameters["sessions"])
    except (ValueError, OSError) as err:
        return {"error": f"{type(err).__name__}: {err}"}
    return {"root": table.attrs["root"], "space": table.attrs["space"], "subjects": list(table.index),
            "sessions": table.attrs["sessions_by_subject"]}


# ---------------------------------------------------------------------------- planning
@dataclass
class Job:
    """One papermill run: ``source`` notebook with ``parameters`` into ``output``.

    Jobs are made by :func:`plan_jobs` and run by :func:`run_jobs`.

    Attributes
    ----------
    source : pathlib.Path
        The source notebook (``notebooks/NN_*.ipynb``).
    parameters : dict
        Values for its ``parameters`` cell, by name.
    output : pathlib.Path
        The executed notebook: ``NN_name.ipynb`` for the chapter's own grid point,
        ``NN_name__param-value.ipynb`` for another.
    grid_point : dict, default={}
        This job's values of the grid's parameters (empty: the chapter's own point); they are
        appended to the executed notebook's first heading.
    fingerprint : str, default=""
        Digest of the source notebook, the parameters, the input data and the package (set by
        :func:`plan_jobs`; a summary's also covers every wave-0 job's); stored in the
        executed notebook's ``metadata.brainllm``.
    wave : int, default=0
        Jobs run wave by wave: a summary or reproduction notebook (``*_summary``,
        ``*_reproduction``) reads what the others recorded, so it runs in wave 1, after every
        wave-0 job.
    config : str or None, default=None
        The plugin config file (absolute) the job's parameters were validated with
        (:func:`plan_jobs`); :func:`run_jobs` exports it to the kernel as
        ``$BRAINLLM_CONFIG`` (``""`` when ``None``: the kernel loads no config file).
    """

    source: Path
    parameters: dict
    output: Path
    grid_point: dict = field(default_factory=dict)
    fingerprint: str = ""
    #: jobs run wave by wave: a summary or reproduction notebook reads what the others
    #: recorded, so it runs in wave 1, after every wave-0 job
    wave: int = 0
    #: the plugin config file the job was validated with (exported to its kernel)
    config: str | None = None

    @property
    def name(self) -> str:
        """The job's name: its output notebook's stem, e.g. ``03_encoding__subjects-subj02``.

        It is also the ``run_name`` that :func:`plan_jobs` gives a chapter recording findings.
        """
        return self.output.stem

    def is_done(self) -> bool:
        """Whether ``output`` exists and was produced by exactly this job.

        The notebook's ``metadata.brainllm`` must hold this job's :attr:`fingerprint` and
        ``status: complete``. An unreadable notebook is reported and deleted
        (:func:`~brainllm_utils._utils.cache.load_entry`): the job is not done.

        Returns
        -------
        bool
            ``True`` when :func:`run_jobs` may skip the job.
        """
        meta = load_entry(self.output, lambda p: json.loads(p.read_text())["metadata"].get("brainllm", {}),
                          check=lambda m: None if isinstance(m, dict) else "no brainllm metadata")
        return bool(meta) and meta.get("fingerprint") == self.fingerprint and meta.get("status") == "complete"


@dataclass
class JobResult:
    """What became of one job in :func:`run_jobs`.

    Attributes
    ----------
    job : Job
        The job.
    status : {"executed", "skipped", "failed"}
        ``"skipped"``: its output was already finished (same fingerprint on disk).
    seconds : float, default=0.0
        Seconds the run took (0 unless executed).
    digest : str or None, default=None
        Digest of the executed notebook's outputs
        (:func:`~brainllm_utils.book.output_digest`); ``None`` unless executed.
    error : str or None, default=None
        ``"ExceptionType: message"`` of a failed job.
    worker : str or None, default=None
        ``host:pid`` of the process that ran it (``None`` for a skipped job).
    """

    job: Job
    status: str  # "executed", "skipped" or "failed"
    seconds: float = 0.0
    digest: str | None = None
    error: str | None = None
    worker: str | None = None


def _slug(value) -> str:
    if isinstance(value, (list, tuple)):
        return "+".join(_slug(v) for v in value) or "none"
    text = re.sub(r"[^A-Za-z0-9.]+", "-", str(value)).strip("-")
    return text or "none"


def _output_name(stem: str, point: dict) -> str:
    if not point:
        return f"{stem}.ipynb"
    parts = [f"{k}-{_slug(v)}" for k, v in sorted(point.items())]
    name = f"{stem}__{'_'.join(parts)}"
    if len(name) > 120:
        name = f"{name[:100]}_{_sha(point)[:10]}"
    return f"{name}.ipynb"


def profile_for(data_home) -> str:
    """``"sandbox"`` for a generated sandbox, ``"paper"`` for anything else (real NSD).

    The profile that ``profile="auto"`` picks (:func:`plan_jobs`, ``--profile auto``).

    Parameters
    ----------
    data_home : str or path-like
        An NSD root; a generated sandbox holds a truth card
        (:func:`~brainllm_utils.synth.is_sandbox`).

    Returns
    -------
    profile : {"sandbox", "paper"}
        A key of :data:`PROFILES`.
    """
    from ..synth import is_sandbox

    return "sandbox" if is_sandbox(data_home) else "paper"


@fill_doc
def plan_jobs(notebooks=None, grid: dict | None = None, fixed: dict | None = None,
              data_home=None, profile: str = "auto", smoke: bool = False,
              output_dir: Path = OUTPUT_DIR, notebook_dir: Path = NOTEBOOK_DIR,
              config=None) -> list[Job]:
    """Expand notebooks × the grid's cartesian product into validated jobs.

    ``grid`` maps a parameter to a list of values; ``fixed`` maps parameters to one value.
    A parameter applies to the notebooks that declare it (an error if none does). Each
    value's source follows :data:`PRECEDENCE`, highest first: ``fixed`` (``--set``; for
    ``data_home`` the ``data_home`` argument, ``--data``, too: two different roots are
    refused), the grid point (``--grid``; a parameter in both ``fixed`` and ``grid`` is
    refused), the profile (with ``smoke`` the ``smoke`` profile's on top), the environment
    (``$BRAINLLM_DATA`` for ``data_home``; ``$BRAINLLM_FASTTEXT``/``$BRAINLLM_GLOVE`` for
    ``fasttext_path``/``glove_path``, resolved here), the notebook's default.
    ``data_home`` is given to every notebook, ``output_dir``
    (where declared) as ``output_dir`` (both absolute here; :func:`run_jobs` passes paths to
    the notebook relative to its folder where both are in the repository,
    :func:`~brainllm_utils.book.notebook_paths`), and ``run_name``
    (where declared) as the job's output notebook name, e.g.
    ``03_encoding__subjects-subj02`` (the batch sets it; it cannot be given). Every job of
    the grid is checked with :func:`validate_parameters` (all of them before returning: the
    error lists every invalid value) and given its fingerprint (:attr:`Job.fingerprint`).

    User plugins are loaded and checked first (:func:`~brainllm_utils.features.check_plugins`:
    the entry points of ``brainllm_utils.plugins`` and the config file ``config``, else
    ``$BRAINLLM_CONFIG``, else ``./brainllm.toml``): a config file that is missing or
    invalid, a plugin module that cannot be imported, a precomputed-feature file that is
    missing or invalid stop the plan with every problem listed. Feature-space parameters are
    then checked against the registry with the plugins' spaces; a ``precomputed:<path>``
    name's file is validated and its path made absolute. The config file (absolute) goes with
    each job (:attr:`Job.config`) to its kernel, and the fingerprint covers the plugins (the
    config's content, the plugin modules' sources, the precomputed files' content).

    Parameters
    ----------
    notebooks : sequence of str, optional
        Notebook stems (``02_rsa``), planned in this order; ``None`` or empty: every
        ``NN_*.ipynb`` of ``notebook_dir`` (:func:`~brainllm_utils.book.list_notebooks`).
    grid : dict of str to list, optional
        Parameter → its values (at least one); a notebook's jobs are the cartesian product of
        the axes it declares. ``None``: no grid, one job per notebook.
    fixed : dict, optional
        Parameter → one value.
    %(data_home)s
        It must be an NSD root (holding ``nsddata/`` and ``nsddata_betas/``).
    profile : {"auto", "sandbox", "paper", "smoke"}, default="auto"
        A key of :data:`PROFILES`; ``"auto"``: :func:`profile_for` ``data_home`` (the paper's
        sizes on real NSD).
    %(smoke)s
    %(output_dir)s
    notebook_dir : pathlib.Path, default=NOTEBOOK_DIR
        Folder of the source notebooks (``notebooks/``).
    config : str or path-like, optional
        The plugin config file (``--config``); ``None``: ``$BRAINLLM_CONFIG``, else
        ``brainllm.toml`` in the working folder, else none
        (:func:`~brainllm_utils.features.find_config`).

    Returns
    -------
    jobs : list of Job
        Notebook by notebook in order, grid points in the product's order; summaries in
        wave 1.

    Raises
    ------
    BatchParameterError
        For a given ``run_name``, a grid parameter without values, a parameter in both
        ``grid`` and ``fixed``, two different roots, a ``data_home`` that is not an NSD root,
        an unknown profile, a parameter that no notebook declares, plugin problems (one line
        each), invalid values (:func:`validate_parameters`, one line each), or two grid
        points with the same output notebook.
    ValueError
        For an unknown notebook name (the message lists them).
    """
    if grid is not None and not isinstance(grid, dict):
        raise BatchParameterError(f"grid={grid!r}: expected a dict parameter -> list of values")
    if fixed is not None and not isinstance(fixed, dict):
        raise BatchParameterError(f"fixed={fixed!r}: expected a dict parameter -> value")
    for name, values in (grid or {}).items():
        if not isinstance(values, (list, tuple)):
            raise BatchParameterError(f"--grid {name}={values!r}: expected a list of values")
    grid = {k: list(v) for k, v in (grid or {}).items()}
    fixed = dict(fixed or {})
    if _RUN_NAME in grid or _RUN_NAME in fixed:
        raise BatchParameterError(f"{_RUN_NAME!r} is set by the batch runner (the output "
                                  "notebook's name); it cannot be given")
    if _OUTPUT_DIR in grid or _OUTPUT_DIR in fixed:
        raise BatchParameterError(f"{_OUTPUT_DIR!r} is set by the batch runner (the folder of "
                                  "the executed notebooks); it cannot be given")
    for name, values in grid.items():
        if not values:
            raise BatchParameterError(f"grid parameter {name!r}: no values")
    both = sorted(set(grid) & set(fixed))
    if both:
        raise BatchParameterError(
            f"parameter(s) {both} given both by --set ({', '.join(f'{k}={fixed[k]!r}' for k in both)}) and "
            f"by --grid: give each once (--set would make every grid point the same run under "
            "different names)")
    if not isinstance(smoke, bool):
        raise BatchParameterError(f"smoke={smoke!r}: expected True or False")
    sources = list_notebooks(notebooks, notebook_dir)
    if not sources:  # e.g. an installed package outside a checkout: never an empty, "successful" run
        raise BatchParameterError(f"no notebooks (NN_*.ipynb) in {notebook_dir}: the book's notebooks are in "
                                  "a source checkout (or pass --notebook-dir)")
    if profile != "auto" and profile not in PROFILES:
        raise BatchParameterError(f"profile={profile!r}: unknown; available: auto, {', '.join(sorted(PROFILES))}")
    # the NSD root, by PRECEDENCE: --set data_home (or --data: both explicit; two different
    # ones are refused) > --grid data_home > $BRAINLLM_DATA > the generated sandbox
    given = fixed.get("data_home")
    for value, where in ((given, "--set"), (data_home, "--data")):
        if value is not None and (not isinstance(value, (str, os.PathLike)) or not str(value)):
            raise BatchParameterError(f"data_home={value!r} ({where}): expected the path of an NSD root (a folder)")
    if given is not None and data_home is not None and \
            Path(given).expanduser().resolve() != Path(data_home).expanduser().resolve():
        raise BatchParameterError(f"data_home given twice: --data {str(data_home)!r} and --set "
                                  f"data_home={given!r}; give one")
    if "data_home" in grid and (data_home is not None or given is not None):
        raise BatchParameterError(f"data_home given both by --data/--set ({str(given or data_home)!r}) and by "
                                  "--grid; give one")
    if given is not None:
        root_source = "--set"
    elif data_home is not None:
        root_source = "--data"
    elif os.environ.get("BRAINLLM_DATA"):
        root_source = "environment $BRAINLLM_DATA"
    else:
        root_source = "default: the generated sandbox"
    explicit = given if given is not None else data_home

    def checked_root(value, where):
        try:
            return _check_data_home(value if value is not None else get_data_home())
        except BatchParameterError as err:
            raise BatchParameterError(f"{err} ({where})") from None

    root = None if "data_home" in grid else checked_root(explicit, root_source)
    config_path, plugins = _check_plugins(config)
    declared = {s.stem: notebook_parameters(s) for s in sources}
    for name in list(grid) + list(fixed):
        if not any(name in params for params in declared.values()):
            raise BatchParameterError(
                f"parameter {name!r} is declared by none of {[s.stem for s in sources]}")
    inputs: dict = {}
    package = package_fingerprint()
    jobs, cache, errors = [], {}, []
    for source in sources:
        known = declared[source.stem]
        axes = [k for k in grid if k in known]
        for combo in itertools.product(*(grid[k] for k in axes)):
            point = dict(zip(axes, combo))
            job_root = checked_root(point["data_home"], "--grid") if "data_home" in point else root
            job_profile = profile_for(job_root) if profile == "auto" else profile
            params, where = _job_parameters(source.stem, known, point, fixed, job_profile, smoke)
            if "data_home" in known:
                params["data_home"] = str(job_root)
                where["data_home"] = "--grid" if "data_home" in point else root_source
            if _OUTPUT_DIR in known:
                params[_OUTPUT_DIR] = str(Path(output_dir).resolve())
                where[_OUTPUT_DIR] = "set by the batch runner"
            output = Path(output_dir) / _output_name(source.stem, point)
            if _RUN_NAME in known:
                params[_RUN_NAME] = output.stem
                where[_RUN_NAME] = "set by the batch runner"
            try:
                params = validate_parameters(source, params, job_root, cache, where)
            except BatchParameterError as err:  # the whole grid is checked before anything runs
                errors += [line for line in str(err).splitlines() if line not in errors]
                continue
            job = Job(source=source, parameters=params, output=output, grid_point=point,
                      wave=1 if source.stem.endswith(_AFTER_CHAPTERS) else 0,
                      config=None if config_path is None else str(config_path))
            if job_root not in inputs:
                inputs[job_root] = data_fingerprint(job_root)
            parts = {"notebook": _sha(source.read_bytes()), "parameters": params,
                     "inputs": inputs[job_root], "package": package}
            used = _precomputed_inputs(params)
            if plugins or used:  # without plugins, the fingerprints of earlier versions
                parts["plugins"] = {**plugins, "precomputed": used}
            job.fingerprint = _sha(parts)
            jobs.append(job)
    if errors:
        head = f"{len(errors)} invalid parameter value(s); nothing was run:\n" if len(errors) > 1 else ""
        raise BatchParameterError(head + "\n".join(errors))
    # a summary is stale whenever anything it summarises is, including the committed results
    # it reads (make positive rewrites book/results/positive_world_findings.json)
    upstream = sorted(j.fingerprint for j in jobs if j.wave == 0)
    committed = _committed_results()
    for job in jobs:
        if job.wave:
            job.fingerprint = _sha({"own": job.fingerprint, "upstream": upstream, "committed": committed})
    outputs = [j.output for j in jobs]
    if len(set(outputs)) != len(outputs):
        raise BatchParameterError("two grid points map to the same output notebook")
    return jobs


def _check_plugins(config) -> tuple[Path | None, dict]:
    """Load and check the user's plugins before planning; ``(config file, plugin fingerprint)``."""
    from .. import features

    try:
        path = features.find_config(config)
    except (features.PluginError, TypeError) as err:
        raise BatchParameterError(f"--config: {err}") from None
    report = features.check_plugins(path)
    if report.problems:
        head = f"{len(report.problems)} plugin problem(s); nothing was run:\n"
        raise BatchParameterError(head + "\n".join(report.problems))
    return path, features.plugin_fingerprint(path)


def _precomputed_inputs(params: dict) -> dict:
    """Content identities of the ``precomputed:<path>`` files a job's parameters name."""
    from .. import features

    names = []
    for value in params.values():
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, str) and v.startswith(features.PRECOMPUTED_PREFIX):
                names.append(v)
    return {n: features.precomputed_space(n).identity() for n in sorted(set(names))}


#: parameters a notebook reads from the environment when they are None: the batch resolves
#: them (so that the value is validated, named in errors and part of the job's fingerprint)
_ENV_PARAMETERS = {"fasttext_path": "BRAINLLM_FASTTEXT", "glove_path": "BRAINLLM_GLOVE"}


def _job_parameters(stem: str, known: dict, point: dict, fixed: dict, profile: str,
                    smoke: bool) -> tuple[dict, dict]:
    """A job's given parameters and where each came from, by :data:`PRECEDENCE` (lowest first:
    environment, profile, smoke profile, --grid, --set; the notebook's defaults lie below)."""
    params, where = {}, {}
    for name, var in _ENV_PARAMETERS.items():
        if name in known and os.environ.get(var):
            params[name], where[name] = os.environ[var], f"environment ${var}"
    layers = [(PROFILES[profile].get(stem, {}), f"profile {profile!r}")]
    if smoke:
        layers.append((PROFILES["smoke"].get(stem, {}), "profile 'smoke' (--smoke)"))
    layers += [(point, "--grid"), ({k: v for k, v in fixed.items() if k in known}, "--set")]
    for values, label in layers:
        for name, value in values.items():
            params[name], where[name] = value, label
    return params, where


# ---------------------------------------------------------------------------- execution
_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: the environment variable of the plugin config file (features.CONFIG_ENV)
_CONFIG_ENV = "BRAINLLM_CONFIG"


#: Variables a Dask nanny sets in its worker before spawning it (Dask's
#: ``distributed.nanny.pre-spawn-environ`` defaults, beside the thread variables): glibc's
#: ``MALLOC_TRIM_THRESHOLD_=65536`` returns freed heap memory to the OS at once, which is
#: right for a worker holding task results but not for a notebook's kernel, a child of the
#: worker that inherits it: every large temporary (torch's activations, BLAS workspaces) is
#: then faulted in and zeroed by the kernel again. Chapter 05 alone, measured: 3.8 M minor
#: page faults and 8 s of system time in one cell, against 0.2 M and 1 s without it. Kernels
#: get the submitting process's value instead (unset when it has none).
_NANNY_VARS = ("MALLOC_TRIM_THRESHOLD_", "PYTHONHASHSEED")


def _nanny_env() -> dict:
    """Dask's nanny variables (:data:`_NANNY_VARS` and those of the Dask config's
    ``distributed.nanny.pre-spawn-environ`` / ``environ``, the thread variables aside) as
    this process has them (``None``: unset), for a kernel started on a worker."""
    names = set(_NANNY_VARS)
    try:
        import dask

        for key in ("distributed.nanny.pre-spawn-environ", "distributed.nanny.environ"):
            names.update(dask.config.get(key, default={}) or {})
    except ImportError:
        pass
    return {k: os.environ.get(k) for k in sorted(names - set(_THREAD_VARS))}


@contextlib.contextmanager
def _environment(env: dict):
    """``os.environ`` updated with ``env`` (a ``None`` value unsets), restored on exit."""
    saved = {k: os.environ.get(k) for k in env}
    for k, v in env.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = str(v)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


#: a running Dask scheduler's address: [tcp|tls|ucx|ws|wss://]host:port
_ADDRESS = re.compile(r"(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9][A-Za-z0-9._-]*):(\d{1,5})/?")
_SCHEDULERS = "local (a LocalCluster here), serial (in this process), slurm (dask-jobqueue) or a " \
              "running scheduler's address tcp://host:port"


class _RunRefused(RuntimeError):
    """A run that cannot start (another run holds the output folder, the scheduler is unreachable)."""


def _check_run_options(scheduler, workers, threads) -> None:
    """Refuse an unknown scheduler and a number of workers or threads below 1, at once."""
    if isinstance(scheduler, str):
        m = _ADDRESS.fullmatch(scheduler)
        if scheduler not in ("local", "serial", "slurm") and not (m and 1 <= int(m.group(1)) <= 65535) \
                and not scheduler.startswith("inproc://"):
            raise BatchParameterError(f"--scheduler {scheduler!r}: expected {_SCHEDULERS}")
    elif not hasattr(scheduler, "submit"):
        raise BatchParameterError(f"scheduler={scheduler!r}: expected {_SCHEDULERS}, or a distributed.Client")
    for name, value in (("workers", workers), ("threads", threads)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise BatchParameterError(f"--{name} {value!r}: expected an integer ≥ 1")


def _run_one(spec: dict) -> dict:
    """Execute one job (on a Dask worker or in-process); never raises for a failed cell."""
    output = Path(spec["output"])
    meta = {"fingerprint": spec["fingerprint"], "parameters": spec["parameters"],
            "grid_point": spec["grid_point"]}
    worker = f"{socket.gethostname()}:{os.getpid()}"
    started = _now()
    with _environment(spec["env"]):
        try:
            seconds, digest = execute_notebook(
                Path(spec["source"]), output, spec["parameters"], metadata=meta,
                failed_dir=output.parent / ".failed", title_suffix=spec["title_suffix"],
                return_digest=True)
        except Exception as err:  # a failed cell (PapermillExecutionError) or any job error
            return {"status": "failed", "error": f"{type(err).__name__}: {err}", "worker": worker,
                    "seconds": 0.0, "started": started}
    return {"status": "executed", "seconds": seconds, "digest": digest, "worker": worker,
            "started": started}


#: Seconds :func:`make_cluster` waits for the first SLURM job's Dask worker before it fails
#: the run with SLURM's reason (``--slurm-start-timeout``); raise it on a busy cluster.
SLURM_START_TIMEOUT = 300.0
#: Walltime of each SLURM job unless given (or the partition's time limit, when shorter).
_SLURM_WALLTIME = "04:00:00"
_STR, _INT, _BOOL = (str,), (int,), (bool,)
#: dask-jobqueue 0.9's ``SLURMCluster`` options (its own, ``SLURMJob``'s and ``Job``'s
#: keywords) that ``make_cluster`` passes through, with the types each accepts ("str list":
#: a list of strings; "path": a string or path).
_SLURM_OPTIONS: dict[str, tuple] = {
    # SLURMJob: the #SBATCH header
    "queue": _STR, "account": _STR, "walltime": _STR, "job_cpu": _INT, "job_mem": _STR,
    # Job: the worker and its job script
    "cores": _INT, "memory": (str, int), "processes": _INT, "nanny": _BOOL, "protocol": _STR,
    "security": (bool, "Security"), "interface": _STR, "death_timeout": (int, float, str),
    "local_directory": ("path",), "worker_command": _STR, "worker_extra_args": ("str list",),
    "job_extra_directives": ("str list",), "job_script_prologue": ("str list",),
    "job_directives_skip": ("str list",), "log_directory": ("path",), "shebang": _STR,
    "python": _STR, "job_name": _STR, "config_name": _STR,
    # SLURMCluster / JobQueueCluster: the scheduler on this machine
    "name": _STR, "shared_temp_directory": ("path",), "silence_logs": (str, bool, int),
    "dashboard_address": (str, type(None)), "host": _STR, "scheduler_options": (dict,),
    "scheduler_cls": (type,),
}
#: ``SLURMCluster`` keywords ``make_cluster`` refuses, and why.
_SLURM_REFUSED: dict[str, str] = {
    "n_workers": "the number of SLURM jobs is --workers (make_cluster's workers)",
    "job_cls": "the batch submits its own SLURM job class (it reports sbatch's errors)",
    "loop": "the batch runs the cluster on its own event loop",
    "asynchronous": "the batch drives the cluster synchronously",
    "scheduler": "set by the cluster (its own scheduler's address)",
    "project": "renamed 'account' in dask-jobqueue (deprecated)",
    "extra": "renamed 'worker_extra_args' in dask-jobqueue (deprecated)",
    "job_extra": "renamed 'job_extra_directives' in dask-jobqueue (deprecated)",
    "env_extra": "renamed 'job_script_prologue' in dask-jobqueue (deprecated)",
    "header_skip": "renamed 'job_directives_skip' in dask-jobqueue (deprecated)",
}


class SlurmStartError(RuntimeError):
    """SLURM refused a worker job, or none started within the start timeout.

    Raised by :func:`make_cluster` (``scheduler="slurm"``) with SLURM's own message: sbatch's
    error, or each pending job's state and reason from ``squeue``.

    Parameters
    ----------
    message : str
        What happened, with SLURM's message.
    """

    def __init__(self, message: str):
        super().__init__(message)


def _check_slurm_options(options: dict) -> None:
    """Refuse unknown, refused or mistyped ``SLURMCluster`` options with a clear message."""
    from distributed.security import Security

    for key, value in options.items():
        if key in _SLURM_REFUSED:
            raise ValueError(f"slurm option {key}={value!r}: not settable here; {_SLURM_REFUSED[key]}")
        if key not in _SLURM_OPTIONS:
            raise ValueError(f"slurm option {key!r}: not a dask_jobqueue.SLURMCluster option; accepted: "
                             + ", ".join(sorted(_SLURM_OPTIONS)))
        kinds = _SLURM_OPTIONS[key]
        ok = False
        for kind in kinds:
            if kind == "path":
                ok = isinstance(value, (str, os.PathLike))
            elif kind == "str list":
                ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value)
            elif kind == "Security":
                ok = isinstance(value, Security)
            elif kind is int:
                ok = isinstance(value, int) and not isinstance(value, bool)
            elif kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok = isinstance(value, kind)
            if ok:
                break
        if not ok:
            names = [k if isinstance(k, str) else ("None" if k is type(None) else k.__name__) for k in kinds]
            raise ValueError(f"slurm option {key}={value!r}: expected {' or '.join(names)}, got "
                             f"{type(value).__name__}")
        if key in ("job_cpu",) and value < 1:
            raise ValueError(f"slurm option {key}={value}: expected a positive int")
        if key == "memory":
            from dask.utils import parse_bytes

            try:
                nbytes = parse_bytes(value)
            except (ValueError, TypeError):
                nbytes = 0
            if nbytes <= 0:
                raise ValueError(f"slurm option memory={value!r}: expected an amount such as '4GB' "
                                 "(the memory of each SLURM job)")
        if key == "walltime" and not re.fullmatch(r"(\d+-)?\d+(:\d{1,2}){0,2}", value):
            raise ValueError(f"slurm option walltime={value!r}: expected SLURM's [D-]HH:MM:SS, "
                             "e.g. '04:00:00'")
        if key == "job_mem" and not re.fullmatch(r"\d+[KMGT]?", value):
            raise ValueError(f"slurm option job_mem={value!r}: expected SLURM's --mem, e.g. '4000M' or '4G'")


def _slurm_options(options: dict, threads: int) -> tuple[int, dict]:
    """``(cores, other options)`` of a SLURM cluster, checked (``ValueError`` with the reason)."""
    options = dict(options)
    cores = options.pop("cores", threads)
    if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
        raise ValueError(f"slurm option cores={cores!r}: expected a positive int (the cores of each job)")
    if cores != threads and threads != 1:
        raise ValueError(f"slurm option cores={cores} and threads={threads} disagree: both are the cores "
                         "of each SLURM job; give one of them (--threads N or --slurm cores=N)")
    if "processes" in options and options["processes"] != 1:
        raise ValueError(f"slurm option processes={options['processes']!r}: not settable here; each SLURM "
                         "job runs one notebook at a time (processes=1)")
    options.pop("processes", None)
    _check_slurm_options(options)
    return cores, options


def _minutes(limit: str) -> float:
    """SLURM's time limit text (``infinite``, ``1-00:00:00``, ``4:00:00``, ``30:00``, ``45``) in minutes."""
    if limit.strip().lower() in ("infinite", "unlimited", "n/a", ""):
        return float("inf")
    days, _, rest = limit.strip().rpartition("-")
    parts = [int(p) for p in rest.split(":")]
    h, m, s = ([0, 0] + parts)[-3:] if len(parts) > 1 else (0, parts[0], 0)
    return (int(days or 0) * 24 + h) * 60 + m + s / 60


def _slurm_partition(queue: str | None = None) -> dict:
    """The partition ``queue`` (default: SLURM's default partition) as ``sinfo`` reports it.

    Returns ``{"partition", "nodes": [(cpus, memory_mb), ...], "timelimit"}`` (one entry per
    node configuration). Raises ``RuntimeError`` when ``sinfo`` is absent or fails.
    """
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P|%c|%m|%l"], capture_output=True, text=True,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RuntimeError(f"sinfo: {err}") from None
    if out.returncode != 0:
        raise RuntimeError(f"sinfo failed: {out.stderr.strip()}")
    rows = [line.split("|") for line in out.stdout.splitlines() if line.count("|") == 3]
    default = next((r[0].rstrip("*") for r in rows if r[0].endswith("*")), None)
    name = queue or default
    if name is None:
        raise RuntimeError("sinfo shows no default partition: give --slurm queue=PARTITION")
    mine = [r for r in rows if r[0].rstrip("*") == name]
    if not mine:
        raise RuntimeError(f"no partition {name!r} in sinfo (partitions: "
                           f"{', '.join(sorted({r[0].rstrip('*') for r in rows}))})")
    nodes = [(int(r[1].rstrip("+")), int(r[2].rstrip("+"))) for r in mine]
    return {"partition": name, "nodes": nodes, "timelimit": mine[0][3]}


def _slurm_defaults(options: dict, cores: int) -> None:
    """Fill ``memory``/``job_mem`` and ``walltime`` from the partition (in place)."""
    need_memory = "memory" not in options
    if need_memory and "job_mem" in options:  # SLURM's --mem text gives dask's memory
        number, unit = re.fullmatch(r"(\d+)([KMGT]?)", options["job_mem"]).groups()
        options["memory"] = f"{number}{unit or 'M'}iB"
        need_memory = False
    try:
        part = _slurm_partition(options.get("queue"))
    except RuntimeError as err:
        if need_memory:
            raise ValueError(f"slurm option memory: not given, and the partition's memory could not be "
                             f"read ({err}); give --slurm memory=...GB") from None
        options.setdefault("walltime", _SLURM_WALLTIME)
        return
    if need_memory:
        fits = [(cpus, mb) for cpus, mb in part["nodes"] if cpus >= cores]
        if not fits:
            raise ValueError(f"cores={cores}: more than any node of partition {part['partition']!r} has "
                             f"({max(c for c, _ in part['nodes'])} CPUs)")
        # each job's share of a node: memory per core × cores, so that CPUs/cores jobs fit a node
        share_mb = min(mb * cores // cpus for cpus, mb in fits)
        options["memory"] = f"{share_mb}MiB"
        options["job_mem"] = f"{share_mb}M"  # exactly this (dask would round up to whole GiB)
    if "walltime" not in options:
        limit = part["timelimit"]
        options["walltime"] = limit if _minutes(limit) < _minutes(_SLURM_WALLTIME) else _SLURM_WALLTIME


@functools.cache
def _slurm_job_class():
    """``SLURMJob`` that keeps sbatch's error (dask-jobqueue only logs it in the background)
    and is "closed" once closed."""
    from dask_jobqueue.slurm import SLURMJob
    from distributed.core import Status

    class ReportingSLURMJob(SLURMJob):
        submit_error = None

        async def start(self):
            try:
                await super().start()
            except Exception as err:
                self.submit_error = f"{type(err).__name__}: {err}"
                self.status = Status.failed
                raise

        async def close(self):
            # dask-jobqueue's close leaves the status "running"; the cluster's close asserts
            # that every job it created (and that is still referenced) is closed
            await super().close()
            if self.status != Status.failed:
                self.status = Status.closed

    return ReportingSLURMJob


def _sbatch_message(error: str) -> str:
    """sbatch's own lines from dask-jobqueue's error text (its stderr, else everything)."""
    _, sep, stderr = error.partition("stderr:")
    return (stderr if sep else error).strip()


def _squeue(ids: list[str]) -> dict[str, tuple[str, str]]:
    """``{job id: (state, reason)}`` of those of ``ids`` that squeue still lists."""
    out = subprocess.run(["squeue", "-h", "-o", "%i|%T|%r", "-u", getpass.getuser()],
                         capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        raise SlurmStartError(f"squeue failed: {out.stderr.strip()}")
    states = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3 and parts[0] in ids:
            states[parts[0]] = (parts[1], parts[2])
    return states


def _job_log_tail(job, lines: int = 8) -> str:
    """Where a worker job's log is, and its last lines (sbatch's default: ``slurm-ID.out``)."""
    folder = getattr(job, "log_directory", None)
    path = (Path(folder) / f"{getattr(job, 'job_name', None) or 'worker'}-{job.job_id}.err" if folder
            else Path.cwd() / f"slurm-{job.job_id}.out")
    try:
        tail = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"its log would be {path} (not readable here)"
    return f"the end of its log {path}:\n" + "\n".join(tail)


def _wait_for_slurm_start(cluster, timeout: float, poll: float = 1.0) -> None:
    """Return when a worker of ``cluster`` has connected; raise :class:`SlurmStartError` when
    sbatch refused a job, when every submitted job ended without a worker, or after
    ``timeout`` seconds with each job's squeue state and reason."""
    start = time.monotonic()
    while True:
        if cluster.scheduler_info.get("workers"):
            return
        jobs = list(cluster.workers.values())
        refused = [j.submit_error for j in jobs if getattr(j, "submit_error", None)]
        if refused:
            raise SlurmStartError("SLURM refused the worker job (sbatch): " + _sbatch_message(refused[0]))
        ids = [str(j.job_id) for j in jobs if getattr(j, "job_id", None)]
        states = _squeue(ids) if ids else {}
        if ids and not states:
            raise SlurmStartError(f"SLURM job(s) {', '.join(ids)} ended before their Dask worker connected; "
                                  + _job_log_tail(next(j for j in jobs if str(j.job_id) == ids[0])))
        waited = time.monotonic() - start
        if waited >= timeout:
            what = "; ".join(f"job {i} {s} (reason: {r})" for i, (s, r) in sorted(states.items())) \
                or "no job was submitted"
            raise SlurmStartError(f"no SLURM worker started within {timeout:g} s (--slurm-start-timeout): "
                                  f"{what}")
        time.sleep(min(poll, max(timeout - waited, 0.05)))


#: Dask settings of a local cluster: no statistical profiler in the workers (it samples every
#: running task's stack every 10 ms) and a slower resource monitor. An idle 2-worker
#: LocalCluster running one task used 2.3 CPU-seconds per 18 s with Dask's defaults (13 % of a
#: core, on the 2 cores a notebook also needs) and 0.6 with these.
LOCAL_DASK_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.tick.interval": "200ms",
}


def make_cluster(scheduler: str = "local", workers: int = 2, threads: int = 1,
                 start_timeout: float = SLURM_START_TIMEOUT, **options):
    """A Dask cluster object for ``scheduler`` ``"local"`` or ``"slurm"``.

    ``local``: a :class:`distributed.LocalCluster` of ``workers`` single-threaded worker
    processes (no dashboard, :data:`LOCAL_DASK_CONFIG`). ``slurm``: a
    :class:`dask_jobqueue.SLURMCluster` whose every SLURM job is one worker with ``threads``
    cores, scaled to ``workers`` jobs; ``options``
    pass through (``queue``, ``account``, ``memory``, ``walltime``, ``job_extra_directives``,
    ``job_script_prologue``, ``log_directory``, ...: every keyword of dask-jobqueue 0.9's
    ``SLURMCluster``, type-checked; an unknown one is refused with the list of accepted ones).
    Resource defaults come from the partition (``queue``, else SLURM's default partition,
    read with ``sinfo``): ``memory`` is the node's memory per core × the job's cores (so that
    a node's CPUs / cores jobs fit on it), ``walltime`` is 4 h or the partition's time limit
    when shorter. With ``workers`` > 0 it then waits until the first worker connects: a job
    that sbatch refuses (e.g. "Memory specification can not be satisfied") raises at once, a
    job still pending (or gone) after ``start_timeout`` seconds raises with squeue's state and
    reason; the cluster is closed either way.

    Parameters
    ----------
    scheduler : {"local", "slurm"}, default="local"
        The kind of cluster.
    workers : int, default=2
        Worker processes (``"local"``) or SLURM jobs (``"slurm"``; 0: not scaled, no wait).
    threads : int, default=1
        Cores of each SLURM job (``"slurm"`` only; local workers have one thread each).
    start_timeout : float, default=300
        Seconds to wait for the first SLURM worker (``"slurm"`` with ``workers`` > 0); raise
        it on a busy cluster whose queue is long (:data:`SLURM_START_TIMEOUT`).
    **options
        Keyword options of :class:`distributed.LocalCluster` or
        :class:`dask_jobqueue.SLURMCluster`. For SLURM, ``cores`` is another name for
        ``threads`` (a conflicting pair is refused), ``processes`` may only be 1, and
        ``n_workers`` (use ``workers``), ``job_cls``, ``loop``, ``asynchronous``,
        ``scheduler`` and dask-jobqueue's deprecated names (``project``, ``extra``,
        ``job_extra``, ``env_extra``, ``header_skip``) are refused.

    Returns
    -------
    cluster : distributed.LocalCluster or dask_jobqueue.SLURMCluster
        The cluster (a context manager: close it when done).

    Raises
    ------
    ValueError
        For any other ``scheduler``, or a SLURM option that is unknown, refused, of the wrong
        type or conflicts with the arguments; or no ``memory`` where ``sinfo`` cannot tell
        the partition's memory.
    SlurmStartError
        When SLURM refused the worker job (sbatch's message), or no worker started within
        ``start_timeout`` seconds (each job's squeue state and reason).
    """
    if scheduler == "local":
        import logging

        import dask
        from distributed import LocalCluster

        # the workers receive this configuration when they start (their nannies pass it on)
        with dask.config.set(LOCAL_DASK_CONFIG):
            return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                dashboard_address=None, silence_logs=logging.ERROR, **options)
    if scheduler == "slurm":
        from dask_jobqueue import SLURMCluster

        if isinstance(start_timeout, bool) or not isinstance(start_timeout, (int, float)) \
                or not start_timeout > 0:
            raise ValueError(f"start_timeout={start_timeout!r}: expected seconds > 0")
        cores, options = _slurm_options(options, threads)
        _slurm_defaults(options, cores)
        cluster = SLURMCluster(cores=cores, processes=1, job_cls=_slurm_job_class(), **options)
        if workers:
            try:
                cluster.scale(jobs=workers)
                _wait_for_slurm_start(cluster, float(start_timeout))
            except BaseException:
                cluster.close()
                raise
        return cluster
    raise ValueError(f"scheduler={scheduler!r}: expected 'local', 'slurm', 'serial' or an address")


def _cost_hint(source: Path) -> float:
    """Seconds a notebook is expected to take (``metadata.brainllm.cost_hint_seconds``)."""
    try:
        meta = json.loads(Path(source).read_text())["metadata"]
        return float(meta.get("brainllm", {}).get("cost_hint_seconds", 0))
    except (OSError, ValueError, KeyError):
        return 0.0


def _title_suffix(point: dict) -> str:
    return ", ".join(f"{k} = {json.dumps(v)}" for k, v in point.items())


@fill_doc
def run_jobs(jobs: list[Job], scheduler="local", workers: int = 2, threads: int = 1,
             force: bool = False, env: dict | None = None, manifest: Path | None = None,
             progress: bool = True, cluster_options: dict | None = None,
             raise_on_failure: bool = True) -> list[JobResult]:
    """Run ``jobs``; finished ones (same fingerprint on disk) are skipped unless ``force``.

    Each notebook's kernel runs with ``threads`` BLAS/OpenMP threads, the job's plugin config
    as ``$BRAINLLM_CONFIG`` (:attr:`Job.config`; ``""`` for none) and the extra environment
    ``env``. Kernels load the plugins themselves (lazily, at their first feature-space lookup),
    so registrations reach every kernel on every worker. Jobs run wave by wave
    (:attr:`Job.wave`); within a wave the longest are submitted first (the seconds of their
    last run in the manifest, else the notebook's ``metadata.brainllm.cost_hint_seconds``),
    so that on a small cluster the longest chapter does not start last; on a ``"local"``
    cluster one job per worker thread is submitted and the longest waiting one follows
    whenever a job finishes (longest-processing-time-first list scheduling; Dask would
    otherwise place every job on a worker at once). Results come back in job order; the
    manifest (default
    ``<output_dir>/manifest.json``) is updated after each job. Failures raise
    :class:`BatchError` at the end (unless ``raise_on_failure=False``) after every other job
    has run; a failed notebook is kept under ``<output_dir>/.failed/``. One batch run writes
    to an output folder at a time (an advisory lock the OS drops on exit).

    Parameters
    ----------
    jobs : list of Job
        The jobs (:func:`plan_jobs`); all write to the same output folder.
    scheduler : str or distributed.Client, default="local"
        ``"serial"`` (in this process, in order), ``"local"`` (a LocalCluster of
        ``workers`` processes), ``"slurm"`` (dask-jobqueue), a scheduler address
        (``"tcp://host:8786"``) or a :class:`distributed.Client`.
    workers : int, default=2
        Dask workers of a ``"local"`` or ``"slurm"`` cluster (:func:`make_cluster`).
    threads : int, default=1
        BLAS/OpenMP threads of each notebook's kernel (``OMP_NUM_THREADS``,
        ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``); with ``"slurm"``, also each SLURM
        job's cores.
    force : bool, default=False
        Re-run finished jobs too.
    env : dict, optional
        Extra environment variables of each kernel (they override the thread variables;
        ``None`` unsets one). A kernel otherwise has its worker's environment, except for
        the variables a Dask nanny sets in its workers (glibc's ``MALLOC_TRIM_THRESHOLD_``,
        ``PYTHONHASHSEED``; :data:`_NANNY_VARS`), which it gets as this process has them.
    manifest : str or path-like, optional
        The manifest to update; ``None``: ``manifest.json`` beside the first job's output.
    %(progress_true)s
        Also prints a line with the number of runs, those already finished and the
        scheduler.
    cluster_options : dict, optional
        Keyword options of :func:`make_cluster` for ``"local"`` and ``"slurm"`` (e.g.
        SLURM's ``queue`` or ``memory``).
    raise_on_failure : bool, default=True
        Raise :class:`BatchError` when a job failed; ``False``: return the results, failed
        ones with ``status="failed"``.

    Returns
    -------
    results : list of JobResult
        One per job, in job order (empty for no jobs).

    Raises
    ------
    BatchError
        When a job failed (and ``raise_on_failure``), after every other job has run; its
        ``results`` holds every job's outcome.
    BatchParameterError
        For an unknown ``scheduler`` or ``workers``/``threads`` below 1 (before anything runs).
    RuntimeError
        When another batch run is writing to the same output folder, or the scheduler at an
        address cannot be reached.
    """
    from tqdm.auto import tqdm

    _check_run_options(scheduler, workers, threads)
    if not jobs:
        return []
    manifest = Path(manifest) if manifest else jobs[0].output.parent / "manifest.json"
    # a kernel on a Dask worker inherits the nanny's variables: it gets this process's instead
    kernel_env = {**_nanny_env(), **{k: threads for k in _THREAD_VARS}}
    kernel_env.update(env or {})
    git = git_revision()
    versions = package_versions()
    # the lock first: a run that is refused must not read, discard or skip another run's outputs
    with _output_lock(jobs[0].output.parent):
        results: dict[int, JobResult] = {}
        todo = []
        for i, job in enumerate(jobs):
            if not force and job.is_done():
                results[i] = JobResult(job, "skipped")
            else:
                todo.append(i)

        def spec(job):  # paths as the notebook in its folder sees them (_execute.notebook_paths)
            # the plugin config the job was validated with ("": none, not the kernel folder's)
            return {"source": str(job.source), "output": str(job.output),
                    "parameters": notebook_paths(job.parameters, job.output.parent),
                    "grid_point": job.grid_point,
                    "fingerprint": job.fingerprint,
                    "env": {_CONFIG_ENV: job.config or "", **kernel_env},
                    "title_suffix": _title_suffix(job.grid_point)}

        label = scheduler if isinstance(scheduler, str) else "client"
        if progress:
            print(f"[batch] {len(jobs)} notebook run(s), {len(jobs) - len(todo)} already finished; "
                  f"scheduler {label}", flush=True)
        bar = tqdm(total=len(jobs), initial=len(jobs) - len(todo), unit="notebook",
                   desc="batch", disable=not progress)

        def finish(i, out):
            job = jobs[i]
            res = JobResult(job, out["status"], out.get("seconds", 0.0), out.get("digest"),
                            out.get("error"), out.get("worker"))
            results[i] = res
            if res.status == "executed":
                _update_manifest(manifest, job, res, out["started"], git, versions, label)
            else:
                print(f"[batch] FAILED {job.name}: {res.error}\n[batch] the failed notebook is "
                      f"kept in {job.output.parent / '.failed' / job.output.name}",
                      file=sys.stderr, flush=True)
            bar.update(1)
            bar.set_postfix_str(job.name)

        waves = sorted({jobs[i].wave for i in todo})
        # longest first (the last run's seconds, else the notebook's hint), so that on a small
        # cluster the longest chapter does not start last
        previous = read_manifest(manifest)["notebooks"]
        cost = {i: previous.get(jobs[i].output.name, {}).get("seconds") or _cost_hint(jobs[i].source)
                for i in todo}
        if todo and scheduler == "serial":
            for i in sorted(todo, key=lambda i: jobs[i].wave):
                finish(i, _run_one(spec(jobs[i])))
        elif todo:
            with _client(scheduler, workers, threads, cluster_options or {}) as client:
                from distributed import as_completed

                def submit(i):
                    return client.submit(_run_one, spec(jobs[i]), pure=False,
                                         key=f"nb-{jobs[i].name}-{uuid.uuid4().hex[:8]}",
                                         priority=int(cost[i]))

                for wave in waves:
                    queue = sorted((i for i in todo if jobs[i].wave == wave), key=lambda i: -cost[i])
                    # a local cluster: one job per worker thread, the longest waiting job next
                    # whenever one finishes (Dask placed every job on a worker at once and ran
                    # a long chapter after the short ones: 02 last, 90 s more on 2 workers);
                    # elsewhere all at once, longest first (workers may join later)
                    slots = max(1, sum(client.nthreads().values())) if scheduler == "local" \
                        else len(queue)
                    futures = {submit(i): i for i in queue[:slots]}
                    queue = queue[slots:]
                    done = as_completed(list(futures))
                    for fut in done:
                        finish(futures.pop(fut), fut.result())
                        if queue:
                            i = queue.pop(0)
                            nxt = submit(i)
                            futures[nxt] = i
                            done.add(nxt)
        bar.close()
    ordered = [results[i] for i in range(len(jobs))]
    failed = [r for r in ordered if r.status == "failed"]
    if failed and raise_on_failure:
        names = ", ".join(r.job.name for r in failed)
        raise BatchError(f"{len(failed)} notebook(s) failed: {names}\n"
                         + "\n".join(f"--- {r.job.name}: {r.error}" for r in failed), ordered)
    return ordered


@contextlib.contextmanager
def _client(scheduler, workers, threads, cluster_options):
    from distributed import Client

    if not isinstance(scheduler, str):
        yield scheduler
        return
    if scheduler in ("local", "slurm"):
        with make_cluster(scheduler, workers, threads, **cluster_options) as cluster, \
                Client(cluster) as client:
            yield client
    else:
        try:
            client = Client(scheduler)
        except OSError as err:
            raise _RunRefused(f"--scheduler {scheduler!r}: cannot connect ({err}); start a Dask scheduler "
                              f"there, or use local or serial") from None
        with client:
            yield client


@contextlib.contextmanager
def _output_lock(folder: Path):
    """One batch run per output folder at a time (an advisory lock the OS drops on exit)."""
    try:
        with file_lock(folder / ".batch.lock", blocking=False, remove=True):
            # temporary files of a killed run: never complete, safe to remove under the lock
            for stale in folder.glob(".*.ipynb.*"):
                stale.unlink(missing_ok=True)
            remove_stale_temps(folder, depth=0)  # the manifest's, of a run killed while writing it
            yield
    except BlockingIOError:
        raise _RunRefused(f"another batch run is writing to {folder} (lock "
                           f"{folder / '.batch.lock'}); wait for it or stop it") from None


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def read_manifest(path) -> dict:
    """The manifest as ``{"notebooks": {output name: entry}}`` (empty when absent).

    An entry describes the last executed run of that output notebook: source ``notebook``,
    ``parameters``, ``grid_point``, ``fingerprint``, output ``digest``, ``seconds``,
    ``started`` and ``finished`` (UTC), ``worker``, ``scheduler``, ``git``
    (:func:`git_revision`), ``versions`` (:func:`package_versions`), ``data_used``
    (:func:`data_used_record`: the subjects and sessions; ``None`` for a notebook without a
    ``sessions`` parameter), ``partial_data`` and ``config`` (the plugin config file the
    job's kernel loaded, :attr:`Job.config`).

    Parameters
    ----------
    path : str or path-like
        The manifest file (``<output_dir>/manifest.json``).

    Returns
    -------
    manifest : dict
        The parsed file; ``{"notebooks": {}}`` when it does not exist.
    """
    path = Path(path)
    if not path.is_file():
        return {"notebooks": {}}
    return json.loads(path.read_text())


def _update_manifest(path: Path, job: Job, res: JobResult, started: str, git: dict,
                     versions: dict, scheduler: str) -> None:
    data = read_manifest(path)
    data["notebooks"][job.output.name] = {
        "notebook": job.source.name, "parameters": job.parameters, "grid_point": job.grid_point,
        "fingerprint": job.fingerprint, "digest": res.digest, "seconds": round(res.seconds, 2),
        "started": started, "finished": _now(), "worker": res.worker, "scheduler": scheduler,
        "git": git, "versions": versions, "data_used": data_used_record(job.parameters, notebook=job.source),
        "partial_data": exported_partial_data(job, started),
        "config": job.config,
    }
    atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")


def exported_partial_data(job: Job, started: str | None = None) -> list | None:
    """What a job's chapter left out of the data, from the results folder it exported.

    A chapter's export (:class:`~brainllm_utils.export.ExportFolder`) records
    :meth:`NSD.data_report() <brainllm_utils.nsd.NSD.data_report>` (sessions missing or all
    NaN, images without captions, subjects without betas) in
    ``<results>/<run_name>/manifest.json``; the batch copies it into its own manifest, so a
    batch over a partial NSD copy says so beside each notebook.

    Parameters
    ----------
    job : Job
        The job (its ``run_name`` parameter, else its notebook's name, names the folder).
    started : str, optional
        When the job started (ISO 8601): an export written before is another run's and is
        not used.

    Returns
    -------
    list of dict or None
        One record per event (empty: nothing left out); ``None`` when the job exported
        nothing (a notebook without an export cell) or the export predates ``started``.
    """
    import datetime as _dt_mod

    from .._utils.paths import get_results_dir

    name = job.parameters.get(_RUN_NAME) or job.source.stem
    path = get_results_dir() / str(name) / "manifest.json"
    try:
        exported = json.loads(path.read_text())
        created = _dt_mod.datetime.fromisoformat(exported["created"])
        partial = exported["partial_data"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if started is not None and created < _dt_mod.datetime.fromisoformat(started):
        return None
    return partial if isinstance(partial, list) else None


def format_results(results: list[JobResult], manifest: dict | None = None) -> str:
    """Markdown timing table of a batch: one row per job, then the executed total.

    Executed notebooks with their seconds, skipped ones with the seconds their stored run
    took (from the manifest; failed ones likewise; NaN when the manifest has no entry).

    Parameters
    ----------
    results : list of JobResult
        The batch's results (:func:`run_jobs`).
    manifest : dict, optional
        The manifest (:func:`read_manifest`); ``None``: no stored seconds (NaN).

    Returns
    -------
    table : str
        Markdown rows ``| notebook | status | seconds |``; the last sums the executed ones.
    """
    known = (manifest or {}).get("notebooks", {})
    lines = ["| notebook | status | seconds |", "|---|---|---:|"]
    total = 0.0
    for r in results:
        sec = r.seconds if r.status == "executed" else known.get(r.job.output.name, {}).get(
            "seconds", float("nan"))
        if r.status == "executed":
            total += sec
        lines.append(f"| {r.job.name} | {r.status} | {sec:.1f} |")
    lines.append(f"| **executed total** | | **{total:.1f}** |")
    return "\n".join(lines)


@fill_doc
def run_grid(notebooks=None, grid=None, fixed=None, data_home=None, profile="auto",
             smoke=False, output_dir: Path = OUTPUT_DIR, config=None,
             **run_options) -> list[JobResult]:
    """:func:`plan_jobs` then :func:`run_jobs` (keyword options pass through).

    Parameters
    ----------
    notebooks : sequence of str, optional
        Notebook stems (``02_rsa``), in this order; ``None``: every notebook.
    grid : dict of str to list, optional
        Parameter → its values, expanded to their cartesian product (as :func:`plan_jobs`).
    fixed : dict, optional
        Parameter → one value.
    %(data_home)s
    profile : {"auto", "sandbox", "paper", "smoke"}, default="auto"
        A key of :data:`PROFILES`; ``"auto"``: :func:`profile_for` ``data_home``.
    %(smoke)s
    %(output_dir)s
    config : str or path-like, optional
        The plugin config file (as :func:`plan_jobs`).
    **run_options
        Keyword options of :func:`run_jobs` (``scheduler``, ``workers``, ``threads``,
        ``force``, ...).

    Returns
    -------
    results : list of JobResult
        One per job, in job order.

    Raises
    ------
    BatchParameterError
        For an invalid parameter, before anything runs (:func:`plan_jobs`).
    BatchError
        When a job failed (:func:`run_jobs`).
    """
    jobs = plan_jobs(notebooks, grid, fixed, data_home, profile, smoke, output_dir,
                     config=config)
    return run_jobs(jobs, **run_options)


@fill_doc
def run_book(names=None, data_home: str | None = None, smoke: bool = False,
             output_dir: Path = OUTPUT_DIR, extra: dict | None = None,
             config=None) -> list[tuple[str, float]]:
    """Execute the chapters in order, serially, every time; returns ``[(name, seconds), ...]``.

    (:mod:`brainllm_utils.batch` is the resumable, parallel runner that ``make book`` uses.)
    The jobs are planned with the ``sandbox`` profile (the notebooks' own defaults) and run
    with ``force``; each kernel gets ``$OMP_NUM_THREADS`` threads (default 1).

    Parameters
    ----------
    names : sequence of str, optional
        Notebook stems (``00_data_tour``), run in this order; ``None``: every chapter.
    %(data_home)s
    %(smoke)s
    %(output_dir)s
    extra : dict, optional
        Parameter → one value, for every notebook that declares it (``fixed`` of
        :func:`plan_jobs`).
    config : str or path-like, optional
        The plugin config file (as :func:`plan_jobs`).

    Returns
    -------
    timings : list of (str, float)
        ``(notebook stem, seconds)`` per chapter, in order.

    Raises
    ------
    BatchError
        When a chapter failed, after the others have run.
    """
    jobs = plan_jobs(names, fixed=extra, data_home=data_home, profile="sandbox", smoke=smoke,
                     output_dir=output_dir, config=config)
    threads = int(os.environ.get("OMP_NUM_THREADS", "1") or 1)
    results = run_jobs(jobs, scheduler="serial", threads=threads, force=True, progress=False)
    return [(r.job.source.stem, r.seconds) for r in results]


# ---------------------------------------------------------------------------- command line
def _parse_value(text: str):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parse_assignments(items, as_grid: bool) -> dict:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise BatchParameterError(f"{item!r}: expected NAME=VALUE")
        name, text = item.split("=", 1)
        name = name.strip()
        if as_grid:
            value = _parse_value(text) if text.strip().startswith("[") else [
                _parse_value(v) for v in text.split(",")]
            if not isinstance(value, list):
                raise BatchParameterError(f"--grid {name}: expected a list of values")
        else:
            value = _parse_value(text)
        out[name] = value
    return out


def _workers_arg(value, jobs, data_home) -> int:
    """``--workers``: an integer ≥ 1, or ``auto`` (sandbox: 2; real NSD: :func:`default_workers`)."""
    if str(value) != "auto":
        try:
            n = int(str(value).strip())
        except ValueError:
            n = 0
        if n < 1:
            raise BatchParameterError(f"--workers {value!r}: expected an integer ≥ 1 or 'auto'")
        return n
    root = _check_data_home(data_home if data_home is not None else get_data_home())
    if profile_for(root) == "sandbox":
        return _SANDBOX_WORKERS
    n = default_workers(sorted({j.source.stem for j in jobs}))
    print(f"workers: {n} (available memory and the chapters' peak memory at full NSD size)", file=sys.stderr)
    return n


@fill_doc
def main(argv=None, prog=None) -> int:
    """Command line: ``python -m brainllm_utils.batch run [NOTEBOOK ...] [--data PATH] ...``.

    Plans the jobs (:func:`plan_jobs`), runs them (:func:`run_jobs`) and prints the timing
    table (:func:`format_results`) with the batch's wall time; ``--timings FILE`` also
    writes it to a file. ``--slurm KEY=VALUE`` passes options to the SLURM cluster
    (:func:`make_cluster`). The options are in the module doc and ``--help``.

    Parameters
    ----------
    %(argv)s
    %(prog)s

    Returns
    -------
    int
        Exit status: 0 when every notebook ran or was already finished, 1 when a notebook
        failed, 2 for an invalid parameter, option or notebook name, or a run that cannot
        start (another run holds the output folder, an unreachable scheduler); then nothing
        runs and no traceback is printed.
    """
    parser = argparse.ArgumentParser(prog=prog or "python -m brainllm_utils.batch",
                                     description=__doc__.split("\n\n")[0])
    epilog = ("Precedence of a notebook parameter's value, highest first: --set (for data_home also "
              "--data; two different roots are refused), --grid (a parameter given by both --set and "
              "--grid is refused), the profile (--smoke's sizes on top of --profile's), the environment "
              "($BRAINLLM_DATA for data_home, $BRAINLLM_FASTTEXT / $BRAINLLM_GLOVE for fasttext_path / "
              "glove_path), the notebook's default. Every parameter of every job, whatever its source, "
              "is checked before any notebook starts (type, range, the data on disk); an invalid one "
              "exits with status 2 naming the notebook, the parameter, its source and what was expected. "
              "Booleans: true/false, 1/0, yes/no.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="run notebooks × a parameter grid", description=epilog)
    run.add_argument("notebooks", nargs="*", help="stems, e.g. 02_rsa (default: all)")
    run.add_argument("--data", default=None, help="NSD root (default: $BRAINLLM_DATA, else the sandbox)")
    run.add_argument("--profile", default="auto", help="auto (sandbox defaults, or the paper's "
                     "settings on real NSD), sandbox, paper or smoke")
    run.add_argument("--grid", action="append", metavar="NAME=V1,V2",
                     help="a grid axis (comma list or a JSON list)")
    run.add_argument("--set", action="append", dest="fixed", metavar="NAME=VALUE",
                     help="one value (JSON, else a string) for every notebook that declares it")
    run.add_argument("--scheduler", default="local", help=_SCHEDULERS)
    run.add_argument("--workers", default="auto",
                     help=f"Dask workers, or auto (default): {_SANDBOX_WORKERS} on the sandbox; on real "
                     "NSD min(CPUs, available memory / the chapters' peak memory) (default_workers)")
    run.add_argument("--threads", type=int, default=1, help="BLAS/torch threads per notebook (≥ 1)")
    run.add_argument("--slurm", action="append", metavar="KEY=VALUE",
                     help="a dask_jobqueue.SLURMCluster option (repeatable; VALUE is JSON, else a string), "
                     "e.g. queue=gpu, memory=64GB, walltime=12:00:00, 'job_extra_directives=[\"--gres=gpu:1\"]'; "
                     "an unknown key is refused with the accepted ones. Defaults from the partition (sinfo): "
                     "memory = the node's memory per core x the job's cores (--threads), walltime = 4 h or the "
                     "partition's limit when shorter")
    run.add_argument("--slurm-start-timeout", type=float, default=SLURM_START_TIMEOUT, metavar="SECONDS",
                     help=f"fail when no SLURM worker has started after this long, with SLURM's reason "
                     f"(default {SLURM_START_TIMEOUT:g}; a job sbatch refuses fails at once)")
    run.add_argument("--output-dir", default=str(OUTPUT_DIR))
    run.add_argument("--notebook-dir", default=str(NOTEBOOK_DIR), help="source notebooks")
    run.add_argument("--force", action="store_true", help="re-run finished notebooks too")
    run.add_argument("--smoke", action="store_true",
                     help="the smoke profile's quick sizes on top of the profile (tests, tiny sandbox)")
    run.add_argument("--timings", default=None, help="also write the timing table here")
    run.add_argument("--config", default=None, metavar="PATH",
                     help="plugin config file (TOML: [plugins] modules/paths, "
                     "[feature_spaces.NAME] path/dim); default $BRAINLLM_CONFIG, else "
                     "./brainllm.toml if present. Loaded and checked before anything runs, and "
                     "exported to every kernel")
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:  # the options first (cheap): nothing is planned for a run that cannot start
        _check_run_options(args.scheduler, 1, args.threads)
        if str(args.workers) != "auto":
            _workers_arg(args.workers, [], args.data)
        grid = _parse_assignments(args.grid, as_grid=True)
        fixed = _parse_assignments(args.fixed, as_grid=False)
        slurm = _parse_assignments(args.slurm, as_grid=False)
        for item in args.slurm or []:  # walltime=30, queue=2: numbers as text where text is wanted
            key, text = (part.strip() for part in item.split("=", 1))
            kinds = _SLURM_OPTIONS.get(key, ())
            if str in kinds and int not in kinds and isinstance(slurm[key], (int, float)) \
                    and not isinstance(slurm[key], bool):
                slurm[key] = text
        jobs = plan_jobs(args.notebooks or None, grid, fixed, args.data, args.profile,
                         args.smoke, Path(args.output_dir), Path(args.notebook_dir), args.config)
    except (BatchParameterError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out_dir = Path(args.output_dir)
    try:
        workers = _workers_arg(args.workers, jobs, args.data)
    except BatchParameterError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    cluster_options = None
    if args.scheduler == "slurm":
        try:
            _slurm_options(slurm, args.threads)
            if not args.slurm_start_timeout > 0:
                raise ValueError(f"--slurm-start-timeout {args.slurm_start_timeout:g}: expected seconds > 0")
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        cluster_options = {**slurm, "start_timeout": args.slurm_start_timeout}
    try:
        results = run_jobs(jobs, args.scheduler, workers, args.threads, args.force,
                           cluster_options=cluster_options)
        failed = False
    except _RunRefused as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except BatchError as err:
        results, failed = err.results, True
        print(f"error: {err}", file=sys.stderr)
    except SlurmStartError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    table = format_results(results, read_manifest(out_dir / "manifest.json"))
    table += f"\n\nbatch wall time {time.perf_counter() - t0:.1f} s ({args.scheduler})\n"
    print(table)
    if args.timings:
        atomic_write_text(args.timings, table)
    return 1 if failed else 0

