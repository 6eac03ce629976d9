"""The ``brainllm`` console command: one entry point for the package's jobs.

``pip install`` puts ``brainllm`` on the ``PATH`` (``[project.scripts]`` in
``pyproject.toml``). Each subcommand hands its remaining arguments, unchanged, to the
command line of the module that does the work, so ``brainllm sandbox --help`` prints the
sandbox generator's own help:

==============  ===========================================  ===================================
subcommand      does                                         same as
==============  ===========================================  ===================================
``book``        sandbox if needed, every notebook, Jupyter   ``make book``
                Book build, browser check of the site
``batch``       notebooks × parameter grids on Dask          ``python -m brainllm_utils.batch``
``sandbox``     write a generated, ground-truth NSD tree     ``python -m brainllm_utils.synth``
``weights``     prepare the pip-packaged encoder weights     ``python -m brainllm_utils.weights``
``nsd``         ``download`` / ``check`` a local NSD copy    ``python -m brainllm_utils.nsd``
``export``      list or check the exported result files      ``python -m brainllm_utils.export``
``site-check``  every page of the built book in Chromium     ``python -m brainllm_utils.site_check``
==============  ===========================================  ===================================

``book`` needs a source checkout (the notebooks, ``_config.yml`` and ``_toc.yml`` are not in
the wheel) and the ``book`` extra (Jupyter Book); the other subcommands work from any
install.
"""

from __future__ import annotations

import argparse
import importlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .. import __version__
from .._utils.docs import fill_doc
from .._utils.paths import REPO_ROOT, get_data_home

__all__ = ["COMMANDS", "Command", "main", "run_book_command", "find_jupyter_book", "source_checkout"]


@dataclass(frozen=True)
class Command:
    """One ``brainllm`` subcommand.

    Parameters
    ----------
    name : str
        The subcommand (``brainllm NAME ...``).
    help : str
        One line for ``brainllm --help``.
    target : str
        The module whose command line it runs (shown in the help).
    run : callable
        ``run(argv, prog) -> int``: the module's ``main`` with the remaining arguments and
        the program name for its usage line.
    """

    name: str
    help: str
    target: str
    run: Callable[[list, str], int]


# ----------------------------------------------------------------------------- dispatch
# imports inside the functions: `brainllm --help` stays fast and never imports torch
def _batch(argv, prog):
    from .batch import main

    return main(argv, prog=prog)


def _site_check(argv, prog):
    from .site_check import main

    return main(argv, prog=prog)


def _sandbox(argv, prog):
    from ..synth import main

    try:
        main(argv, prog=prog)
    except ValueError as err:  # e.g. a non-empty folder without --overwrite
        print(f"{prog}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _weights(argv, prog):
    from ..features.weights import main

    return main(argv, prog=prog)


def _nsd(argv, prog):
    from ..nsd import main

    return main(argv, prog=prog)


#: the module that provides ``brainllm export`` (``main(argv)``)
EXPORT_MODULE = "brainllm_utils.export"


def _export(argv, prog):
    try:
        module = importlib.import_module(EXPORT_MODULE)
    except ModuleNotFoundError as err:
        if err.name != EXPORT_MODULE:
            raise
        module = None
    entry = getattr(module, "main", None)
    if entry is None:
        print(f"{prog}: unavailable in this version of brainllm_utils ({__version__}): "
              f"{EXPORT_MODULE}.main does not exist", file=sys.stderr)
        return 2
    return entry(argv)


def _book(argv, prog):
    return run_book_command(argv, prog=prog)


COMMANDS = {c.name: c for c in (
    Command("book", "build the whole book: sandbox if needed, notebooks, Jupyter Book, site check "
            "(as `make book`; needs a source checkout and the 'book' extra)", "brainllm_utils.book.cli", _book),
    Command("batch", "run notebooks × parameter grids on Dask (LocalCluster, serial, SLURM)",
            "brainllm_utils.batch", _batch),
    Command("sandbox", "write a generated NSD tree with known ground truth", "brainllm_utils.synth", _sandbox),
    Command("weights", "prepare the pip-packaged sentence-encoder weights (offline)",
            "brainllm_utils.weights", _weights),
    Command("nsd", "download or check a local NSD copy (subcommands: download, check)",
            "brainllm_utils.nsd", _nsd),
    Command("export", "list or check the result files the chapters exported (NIfTI, GIfTI, MGH, "
            "CSV, parquet, RDMs)",
            EXPORT_MODULE, _export),
    Command("site-check", "check every page of the built book in headless Chromium",
            "brainllm_utils.site_check", _site_check),
)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="brainllm",
        description="brainllm: the book and package reproducing Doerig et al. 2025 (LLM caption "
        "embeddings vs fMRI on the Natural Scenes Dataset).",
        epilog="Each subcommand passes its arguments on: `brainllm COMMAND --help` shows its options.")
    parser.add_argument("--version", action="version", version=f"brainllm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for c in COMMANDS.values():
        sub.add_parser(c.name, help=f"{c.help} [{c.target}]", add_help=False)
    return parser


@fill_doc
def main(argv=None) -> int:
    """The ``brainllm`` console command: dispatch to a subcommand.

    Options before the subcommand (``--help``, ``--version``) are ``brainllm``'s own;
    everything after it goes to the subcommand unchanged.

    Parameters
    ----------
    %(argv)s

    Returns
    -------
    int
        The subcommand's exit status (0: success); 2 for an unknown subcommand.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    if not argv or argv[0].startswith("-") or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # --help, --version, or the usage error (exits)
        return 2  # pragma: no cover - parse_args exits for every such argv
    command = COMMANDS[argv[0]]
    status = command.run(argv[1:], f"brainllm {command.name}")
    return int(status or 0)


# ----------------------------------------------------------------------------- brainllm book
def source_checkout(root: Path = REPO_ROOT) -> bool:
    """Whether ``root`` is a source checkout that can build the book.

    Parameters
    ----------
    root : pathlib.Path
        The folder above the package (:data:`~brainllm_utils.paths.REPO_ROOT`).

    Returns
    -------
    bool
        True when it holds ``notebooks/``, ``_config.yml`` and ``_toc.yml``.
    """
    root = Path(root)
    return (root / "notebooks").is_dir() and (root / "_config.yml").is_file() and (root / "_toc.yml").is_file()


def find_jupyter_book() -> Path | None:
    """The ``jupyter-book`` program of the running interpreter's environment.

    Returns
    -------
    pathlib.Path or None
        ``<bin dir of sys.executable>/jupyter-book`` when it exists (the ``book`` extra
        installs it there), else ``None``.
    """
    path = Path(sys.executable).parent / "jupyter-book"
    return path if path.is_file() else None


#: environment of `make book` (Makefile): one BLAS thread per process, offline Hugging Face,
#: nilearn's data inside the project; values already set are kept
_BOOK_ENV = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


def _book_parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Build the whole book as `make book` does: generate the sandbox when the "
        "data is the default sandbox and missing or outdated, run the notebooks (brainllm batch run), "
        "build the HTML with Jupyter Book (-W -n --keep-going) and check every page in headless "
        "Chromium (skipped with a message when no Chromium is installed).")
    parser.add_argument("notebooks", nargs="*", help="notebook stems, e.g. 02_rsa (default: all)")
    parser.add_argument("--data", default=None,
                        help="NSD root (default: $BRAINLLM_DATA, else <checkout>/data/sandbox)")
    parser.add_argument("--sandbox-preset", default="default",
                        help="preset when the default sandbox is (re)generated (default: default)")
    parser.add_argument("--scheduler", default="local", help="batch scheduler (default: local)")
    parser.add_argument("--workers", default="auto", help="batch workers (default: auto)")
    parser.add_argument("--threads", default="1", help="BLAS/torch threads per notebook (default: 1)")
    parser.add_argument("--force", action="store_true", help="re-run finished notebooks too")
    parser.add_argument("--no-site-check", action="store_true", help="skip the browser check")
    return parser


def run_book_command(argv=None, prog: str = "brainllm book", root: Path = REPO_ROOT) -> int:
    """``brainllm book``: sandbox, notebooks, Jupyter Book and site check, as ``make book``.

    Parameters
    ----------
    argv : list of str, optional
        Arguments after ``book``; ``None``: none.
    prog : str, default="brainllm book"
        Program name in the usage line.
    root : pathlib.Path
        The source checkout (default: the one this package lives in).

    Returns
    -------
    int
        0 when every step passed; the failing step's status otherwise (2 when this is no
        source checkout or Jupyter Book is not installed; nothing runs then).
    """
    args = _book_parser(prog).parse_args([] if argv is None else list(argv))
    root = Path(root)
    if not source_checkout(root):
        print(f"{prog}: {root} is not a source checkout (no notebooks/, _config.yml, _toc.yml). The book "
              "is built from a clone of the repository: install it with `pip install -e '.[book]'` "
              "there (or run `make book`).", file=sys.stderr)
        return 2
    jb = find_jupyter_book()
    if jb is None:
        print(f"{prog}: Jupyter Book is not installed beside {sys.executable}: "
              "pip install 'brainllm-utils[book]' (or -r requirements.txt)", file=sys.stderr)
        return 2
    for key, value in _BOOK_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("NILEARN_DATA", str(root / "data" / "nilearn"))

    default_sandbox = root / "data" / "sandbox"
    data = Path(args.data).expanduser() if args.data else get_data_home()
    if data.resolve() == default_sandbox.resolve():
        from ..synth import is_current, make_synthetic_nsd

        if not is_current(data):
            print(f"[book] generating the sandbox ({args.sandbox_preset}) in {data}", flush=True)
            make_synthetic_nsd(data, args.sandbox_preset, 0, overwrite=True)

    build = root / "_build"
    batch_argv = ["run", "--data", str(data), "--scheduler", args.scheduler, "--workers", str(args.workers),
                  "--threads", str(args.threads), "--timings", str(build / "notebook_timings.md"),
                  *(["--force"] if args.force else []), *args.notebooks]
    status = _batch(batch_argv, f"{prog} (batch)")
    if status:
        return status
    status = subprocess.run([str(jb), "build", str(root), "-W", "-n", "--keep-going"], cwd=root).returncode
    if status:
        print(f"{prog}: jupyter-book build failed (exit status {status})", file=sys.stderr)
        return status
    if not args.no_site_check:
        status = _site_check([str(build / "html"), "--screenshots", str(build / "screenshots"),
                              "--toc", str(root / "_toc.yml"), "--if-available"], f"{prog} (site check)")
        if status:
            return status
    timings = build / "notebook_timings.md"
    if timings.is_file():
        print("Notebook timings:\n" + timings.read_text())
    print(f"Book built: {build / 'html' / 'index.html'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
