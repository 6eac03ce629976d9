"""Execute the book's notebooks with papermill, where Jupyter Book renders them.

Source notebooks live in ``notebooks/`` (no outputs); executed copies go to
``book/notebooks/`` (git-ignored), which ``_toc.yml`` lists. Jupyter Book runs with
execution off and renders the stored outputs.

The command line and the resumable, parallel runner are in :mod:`brainllm_utils.book.batch`
(``python -m brainllm_utils.batch run``), which ``make book`` uses.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from .._utils.docs import fill_doc
from .._utils.paths import REPO_ROOT, atomic_path

__all__ = ["NOTEBOOK_DIR", "OUTPUT_DIR", "list_notebooks", "notebook_parameters", "execute_notebook",
           "output_digest"]

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
OUTPUT_DIR = REPO_ROOT / "book" / "notebooks"


def list_notebooks(names=None, notebook_dir: Path = NOTEBOOK_DIR) -> list[Path]:
    """Source notebooks, in chapter order; ``names`` selects by stem (``00_data_tour``).

    Parameters
    ----------
    names : sequence of str, optional
        Notebook stems, returned in this order; ``None`` or empty: every
        ``NN_*.ipynb`` of ``notebook_dir``.
    notebook_dir : pathlib.Path, default=NOTEBOOK_DIR
        Folder of the source notebooks.

    Returns
    -------
    paths : list of pathlib.Path
        The notebooks.

    Raises
    ------
    ValueError
        For a name that is not a notebook of ``notebook_dir`` (the message lists them).
    """
    available = sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return available
    by_stem = {p.stem: p for p in available}
    missing = [n for n in names if n not in by_stem]
    if missing:
        raise ValueError(f"unknown notebook(s) {missing}; available: {sorted(by_stem)}")
    return [by_stem[n] for n in names]


def notebook_parameters(path: Path) -> dict:
    """The literal defaults of a notebook's cell tagged ``parameters``.

    Parameters
    ----------
    path : str or path-like
        An ``.ipynb`` file.

    Returns
    -------
    parameters : dict
        Name → default of the first cell tagged ``parameters`` (names starting with ``_``
        left out).

    Raises
    ------
    ValueError
        When no cell is tagged ``parameters``.
    """
    nb = json.loads(Path(path).read_text())
    for cell in nb["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            namespace: dict = {}
            exec("".join(cell["source"]), {}, namespace)  # literals only, by convention
            return {k: v for k, v in namespace.items() if not k.startswith("_")}
    raise ValueError(f"{path}: no cell tagged 'parameters' (papermill needs one)")


@fill_doc
def execute_notebook(source: Path, output: Path, parameters: dict | None = None,
                     kernel_name: str | None = None, progress: bool = False,
                     metadata: dict | None = None, failed_dir: Path | None = None,
                     title_suffix: str = "", return_digest: bool = False):
    """Run ``source`` with papermill into ``output`` atomically; return seconds taken.

    Unknown parameter names are rejected before anything runs. A failing cell raises
    ``papermill.PapermillExecutionError`` and leaves no file at ``output``. The kernel
    runs in the repository root with matplotlib's inline backend.

    Parameters
    ----------
    source : pathlib.Path
        The source notebook (with a cell tagged ``parameters``).
    output : str or path-like
        Where the executed notebook is written (atomically, only on success).
    parameters : dict, optional
        Values for the ``parameters`` cell (papermill); unknown names raise ``ValueError``.
    kernel_name : str, optional
        Jupyter kernel; ``None``: the notebook's own.
    %(progress)s
        papermill's bar over cells.
    metadata : dict, optional
        Stored under the notebook's ``metadata.brainllm`` with ``status: complete``, the
        output digest and the seconds taken.
    failed_dir : str or path-like, optional
        Where a copy of a failed notebook goes (named like ``output``).
    title_suffix : str, default=""
        Appended in parentheses to the first heading (grid runs).
    return_digest : bool, default=False
        Also return the output digest (:func:`output_digest`).

    Returns
    -------
    seconds : float or tuple of (float, str)
        Seconds taken; ``(seconds, digest)`` with ``return_digest``.
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
        digest = _execute(source, output, parameters, kernel_name, progress, metadata,
                          failed_dir, title_suffix, t0)
    finally:
        if saved_backend is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved_backend
    seconds = time.perf_counter() - t0
    return (seconds, digest) if return_digest else seconds


def output_digest(nb) -> str:
    """Digest of a notebook's results (equal digests ⇔ the same numbers and figures).

    It hashes the code-cell outputs without stderr streams, execution counts or timing
    metadata.

    Parameters
    ----------
    nb : dict or nbformat.NotebookNode
        A notebook (its ``cells``).

    Returns
    -------
    digest : str
        SHA-256, hexadecimal.
    """
    import hashlib

    h = hashlib.sha256()
    for cell in nb["cells"]:
        if cell.get("cell_type") != "code":
            continue
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream":
                if out.get("name") == "stderr":
                    continue
                h.update(b"stream:" + "".join(out.get("text", "")).encode())
            elif kind in ("execute_result", "display_data"):
                for mime in sorted(out.get("data", {})):
                    value = out["data"][mime]
                    value = "".join(value) if isinstance(value, list) else json.dumps(value)
                    h.update(f"{mime}:".encode() + value.encode())
            elif kind == "error":
                h.update(f"error:{out.get('ename')}:{out.get('evalue')}".encode())
    return h.hexdigest()


def _add_title_suffix(nb, suffix: str) -> None:
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.split("\n")
        for i, line in enumerate(lines):
            if line.startswith("# "):
                lines[i] = f"{line} ({suffix})"
                cell.source = "\n".join(lines)
                return


def _execute(source: Path, output: Path, parameters: dict, kernel_name, progress,
             metadata, failed_dir, title_suffix, t0) -> str:
    import nbformat
    import papermill as pm

    with atomic_path(output) as tmp:
        tmp_nb = tmp.with_suffix(".ipynb")
        try:
            try:
                pm.execute_notebook(
                    str(source), str(tmp_nb), parameters=parameters, kernel_name=kernel_name,
                    progress_bar=progress, cwd=str(REPO_ROOT), log_output=False,
                )
            except Exception:
                if failed_dir is not None and tmp_nb.exists():
                    Path(failed_dir).mkdir(parents=True, exist_ok=True)
                    os.replace(tmp_nb, Path(failed_dir) / output.name)
                raise
            nb = nbformat.read(tmp_nb, as_version=4)
            digest = output_digest(nb)
            if title_suffix:
                _add_title_suffix(nb, title_suffix)
            nb.metadata["brainllm"] = {**(metadata or {}), "status": "complete",
                                       "digest": digest,
                                       "seconds": round(time.perf_counter() - t0, 2)}
            nbformat.write(nb, tmp_nb)
            os.replace(tmp_nb, tmp)
        finally:
            if tmp_nb.exists():
                tmp_nb.unlink()
    return digest
