"""Execute the book's notebooks with papermill, where Jupyter Book renders them.

Source notebooks live in ``notebooks/`` (no outputs); executed copies go to
``book/notebooks/`` (git-ignored), which ``_toc.yml`` lists. Jupyter Book runs with
execution off and renders the stored outputs.

Command line::

    python -m brainllm_utils.book run [--data PATH] [--smoke] [NOTEBOOK ...]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .paths import REPO_ROOT, atomic_path

__all__ = ["NOTEBOOK_DIR", "OUTPUT_DIR", "list_notebooks", "execute_notebook", "run_book"]

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
OUTPUT_DIR = REPO_ROOT / "book" / "notebooks"


def list_notebooks(names=None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Source notebooks, in chapter order; ``names`` selects by stem (``00_data_tour``)."""
    available = sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return available
    by_stem = {p.stem: p for p in available}
    missing = [n for n in names if n not in by_stem]
    if missing:
        raise ValueError(f"unknown notebook(s) {missing}; available: {sorted(by_stem)}")
    return [by_stem[n] for n in names]


def notebook_parameters(path: Path) -> dict:
    """The literal defaults of a notebook's cell tagged ``parameters``."""
    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            namespace: dict = {}
            exec("".join(cell["source"]), {}, namespace)  # literals only, by convention
            return {k: v for k, v in namespace.items() if not k.startswith("_")}
    raise ValueError(f"{path}: no cell tagged 'parameters' (papermill needs one)")


def execute_notebook(source: Path, output: Path, parameters: dict | None = None,
                     kernel_name: str | None = None, progress: bool = False) -> float:
    """Run ``source`` with papermill into ``output`` atomically; return seconds taken.

    Unknown parameter names are rejected before anything runs. A failing cell raises
    ``papermill.PapermillExecutionError`` and leaves no file at ``output``.
    """
    parameters = dict(parameters or {})
    known = notebook_parameters(source)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{source.name}: unknown parameter(s) {unknown}; known: {sorted(known)}")
    output = Path(output)
    t0 = time.perf_counter()
    # kernels inherit the environment: a non-interactive MPLBACKEND (e.g. Agg in CI) would
    # silently drop every figure from the executed notebook
    saved_backend = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    try:
        _execute(source, output, parameters, kernel_name, progress)
    finally:
        if saved_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved_backend
    return time.perf_counter() - t0


def _execute(source: Path, output: Path, parameters: dict, kernel_name, progress) -> None:
    import papermill as pm

    with atomic_path(output) as tmp:
        tmp_nb = tmp.with_suffix(".ipynb")
        try:
            pm.execute_notebook(
                str(source), str(tmp_nb), parameters=parameters, kernel_name=kernel_name,
                progress_bar=progress, cwd=str(REPO_ROOT), log_output=False,
            )
            os.replace(tmp_nb, tmp)
        finally:
            if tmp_nb.exists():
                tmp_nb.unlink()


def run_book(names=None, data_home: str | None = None, smoke: bool = False,
             output_dir: Path = OUTPUT_DIR, extra: dict | None = None) -> list[tuple[str, float]]:
    """Execute the chapters in order; returns ``[(name, seconds), ...]``."""
    timings = []
    for source in list_notebooks(names):
        params = dict(extra or {})
        known = notebook_parameters(source)
        if data_home is not None and "data_home" in known:
            params["data_home"] = str(Path(data_home).resolve())
        if smoke and "smoke" in known:
            params["smoke"] = True
        print(f"[book] executing {source.name} ...", flush=True)
        seconds = execute_notebook(source, output_dir / source.name, params)
        timings.append((source.stem, seconds))
    return timings


def format_timings(timings) -> str:
    lines = ["| notebook | seconds |", "|---|---:|"]
    lines += [f"| {name} | {sec:.1f} |" for name, sec in timings]
    lines.append(f"| **total** | **{sum(s for _, s in timings):.1f}** |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m brainllm_utils.book")
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="execute notebooks into book/notebooks/")
    run.add_argument("notebooks", nargs="*", help="stems, e.g. 00_data_tour (default: all)")
    run.add_argument("--data", default=None, help="NSD root (default: the sandbox)")
    run.add_argument("--smoke", action="store_true", help="pass smoke=True where supported")
    args = parser.parse_args(argv)
    if args.data is not None and not Path(args.data).is_dir():
        parser.error(f"--data {args.data}: no such folder (expected an NSD root)")
    timings = run_book(args.notebooks or None, data_home=args.data, smoke=args.smoke)
    print(format_timings(timings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
