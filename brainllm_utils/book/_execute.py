"""Execute the book's notebooks with papermill, where Jupyter Book renders them.

Source notebooks live in ``notebooks/`` (no outputs); executed copies go to
``book/notebooks/`` (git-ignored), which ``_toc.yml`` lists. Jupyter Book runs with
execution off and renders the stored outputs.

The command line and the resumable, parallel runner are in :mod:`brainllm_utils.book.batch`
(``python -m brainllm_utils.batch run``), which ``make book`` uses.

Kernels: the notebooks' kernelspec is ``brainllm`` (:data:`KERNEL_NAME`; ``make install``
registers it in the virtual environment for JupyterLab, ``make lab``). The batch does not look
the name up among the installed kernels: it runs every notebook on the interpreter that runs
the batch (:func:`kernel_spec`), whose packages the batch's fingerprints describe, so a
checkout without a registered ``brainllm`` kernel (a CI venv, ``pip install .``) runs the same.
Kernels talk to the runner over IPC sockets on POSIX (over TCP, ipykernel warns for every
notebook that the traffic is not encrypted).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

from .._utils.docs import fill_doc
from .._utils.paths import REPO_ROOT, atomic_path

__all__ = ["NOTEBOOK_DIR", "OUTPUT_DIR", "KERNEL_NAME", "list_notebooks", "notebook_parameters",
           "execute_notebook", "output_digest", "kernel_spec", "notebook_path",
           "notebook_paths", "drop_progress_widgets"]

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
OUTPUT_DIR = REPO_ROOT / "book" / "notebooks"
#: the kernel of the book's notebooks (their kernelspec ``name``; ``make install`` registers it)
KERNEL_NAME = "brainllm"
#: environment variables holding paths: made absolute for a kernel that runs elsewhere
_PATH_ENV = ("BRAINLLM_DATA", "BRAINLLM_CACHE", "BRAINLLM_RESULTS", "BRAINLLM_MODELS",
             "BRAINLLM_FASTTEXT", "BRAINLLM_GLOVE", "BRAINLLM_CONFIG", "NILEARN_DATA")


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


def kernel_spec() -> dict:
    """The kernelspec of :data:`KERNEL_NAME` on this interpreter (``kernel.json``'s fields).

    The batch runs every notebook with it; ``make install`` registers the same kernel in the
    virtual environment (``ipykernel install --sys-prefix --name brainllm``).

    Returns
    -------
    spec : dict
        ``argv`` (this interpreter's ``ipykernel_launcher``), ``display_name``
        (``"brainllm (Python 3.x)"``), ``language`` and ``metadata``.
    """
    return {"argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"{KERNEL_NAME} (Python {sys.version_info[0]}.{sys.version_info[1]})",
            "language": "python", "metadata": {"debugger": True}}


def notebook_path(path, cwd, home: bool = False) -> str:
    """``path`` as a notebook running in ``cwd`` should be given it (a parameter's value).

    A path inside the repository is given relative to ``cwd`` when ``cwd`` is inside the
    repository too (the rendered parameters cell then shows ``../../data/sandbox``, not the
    builder's folders); with ``home``, a path under the user's home otherwise as ``~/...``
    (for readers that expand ``~``); anything else as an absolute path.

    Parameters
    ----------
    path : str or path-like
        A file or folder; a relative one is taken relative to this process's working folder.
    cwd : str or path-like
        The folder the notebook's kernel runs in.
    home : bool, default=False
        Write a path under ``Path.home()`` (outside the repository) as ``~/...``.

    Returns
    -------
    path : str
        POSIX-style where relative.
    """
    target = Path(os.path.abspath(Path(path).expanduser()))
    cwd = Path(os.path.abspath(Path(cwd).expanduser()))
    root = Path(os.path.abspath(REPO_ROOT))
    if target.is_relative_to(root) and cwd.is_relative_to(root):
        return Path(os.path.relpath(target, cwd)).as_posix()
    user = Path(os.path.abspath(Path.home()))
    if home and target.is_relative_to(user) and target != user:
        return "~/" + target.relative_to(user).as_posix()
    return str(target)


#: parameters that hold a path: ``data_home`` and names ending in _path, _dir or _file
_PATH_PARAMETER = re.compile(r"data_home|.+_(path|dir|file)")


def notebook_paths(parameters: dict, cwd) -> dict:
    """``parameters`` with every path given as :func:`notebook_path` writes it for ``cwd``.

    Path parameters are ``data_home`` (written with ``~`` under the home folder: the
    notebooks read it through :class:`~brainllm_utils.nsd.NSD`, which expands it) and
    string values of names ending in ``_path``, ``_dir`` or ``_file``; a relative one is
    taken relative to this process's working folder (where the batch was started).

    Parameters
    ----------
    parameters : dict
        Name → value, as validated by the batch (absolute ``data_home`` and ``output_dir``).
    cwd : str or path-like
        The folder the notebook's kernel runs in (the executed notebook's folder).

    Returns
    -------
    parameters : dict
        A new dict; other values unchanged.
    """
    out = dict(parameters)
    for name, value in parameters.items():
        if isinstance(value, (str, os.PathLike)) and str(value) and _PATH_PARAMETER.fullmatch(name):
            out[name] = notebook_path(value, cwd, home=name == "data_home")
    return out


_TQDM_VALUE = re.compile(r"\d+%\|")  # tqdm's "  40%|████      | 2/5 [...]"


def drop_progress_widgets(nb) -> int:
    """Remove tqdm's progress-bar widgets from an executed notebook (in place).

    In a kernel with ipywidgets, ``tqdm.auto`` draws each bar as a widget (an ``HBox`` of
    text and a ``FloatProgress``). A static page cannot show it (the widget's scripts are not
    loaded offline, and its stored text is the bar's first state), and its model id is random,
    so the bars are dropped; other widgets are kept, and the stored widget state
    (``metadata.widgets``) goes only when no widget output is left.

    Parameters
    ----------
    nb : nbformat.NotebookNode
        An executed notebook (``metadata.widgets`` holds the widget state when stored).

    Returns
    -------
    n : int
        Progress bars removed.
    """
    key = "application/vnd.jupyter.widget-state+json"
    view = "application/vnd.jupyter.widget-view+json"
    state = nb.metadata.get("widgets", {}).get(key, {}).get("state", {})

    def is_bar(out) -> bool:
        model = state.get(out["data"][view].get("model_id"), {})
        if model:
            children = model.get("state", {}).get("children", [])
            kinds = {state.get(str(c).removeprefix("IPY_MODEL_"), {}).get("model_name")
                     for c in children}
            return model.get("model_name") == "HBoxModel" and bool(
                kinds & {"FloatProgressModel", "IntProgressModel"})
        text = out["data"].get("text/plain", "")
        return bool(_TQDM_VALUE.search("".join(text) if isinstance(text, list) else text))

    removed, kept = 0, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        outputs = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "display_data" and view in out.get("data", {}) and is_bar(out):
                removed += 1
                continue
            if view in out.get("data", {}):
                kept.append(out["data"][view].get("model_id"))
            outputs.append(out)
        cell.outputs = outputs
    if removed and not kept and "widgets" in nb.metadata:
        nb.metadata.pop("widgets")
    return removed


@fill_doc
def execute_notebook(source: Path, output: Path, parameters: dict | None = None,
                     kernel_name: str | None = None, progress: bool = False,
                     metadata: dict | None = None, failed_dir: Path | None = None,
                     title_suffix: str = "", return_digest: bool = False):
    """Run ``source`` with papermill into ``output`` atomically; return seconds taken.

    Unknown parameter names are rejected before anything runs. A failing cell raises
    ``papermill.PapermillExecutionError`` and leaves no file at ``output``. The kernel runs
    in ``output``'s folder (where Jupyter runs the executed notebook when it is opened: give
    paths relative to it, :func:`notebook_path`) with matplotlib's inline backend; relative
    paths in ``$BRAINLLM_DATA``, ``$BRAINLLM_CACHE``, ... are made absolute for it. tqdm's
    progress widgets are dropped from ``output`` (:func:`drop_progress_widgets`).

    Parameters
    ----------
    source : pathlib.Path
        The source notebook (with a cell tagged ``parameters``).
    output : str or path-like
        Where the executed notebook is written (atomically, only on success).
    parameters : dict, optional
        Values for the ``parameters`` cell (papermill); unknown names raise ``ValueError``.
    kernel_name : str, optional
        An installed Jupyter kernel; ``None``: :data:`KERNEL_NAME` on this interpreter
        (:func:`kernel_spec`), whatever kernels are installed.
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
    env = {"MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    # the kernel runs in output's folder: a relative path in the environment means this one's
    env.update({k: os.path.abspath(os.environ[k]) for k in _PATH_ENV if os.environ.get(k)})
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        digest = _execute(source, output, parameters, kernel_name, progress, metadata,
                          failed_dir, title_suffix, t0)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
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


def _kernel_options(kernel_name) -> dict:
    """papermill's kernel arguments: this interpreter's kernel (or ``kernel_name``), IPC."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpec
    from traitlets.config import Config

    config = Config()
    if os.name == "posix":  # over TCP, ipykernel warns that nothing is encrypted
        import tempfile
        import uuid

        config.KernelManager.transport = "ipc"
        # the sockets' path prefix (jupyter_client's default, "kernel-ipc", is relative to the
        # kernel's cwd: two kernels in one output folder would share it); removed at shutdown
        config.KernelManager.ip = os.path.join(tempfile.gettempdir(),
                                               f"brainllm-kernel-{uuid.uuid4().hex[:16]}")
    if kernel_name is not None:
        return {"kernel_name": kernel_name, "config": config}

    class InterpreterKernelManager(AsyncKernelManager):
        """KERNEL_NAME on this interpreter, registered or not."""

        @property
        def kernel_spec(self):
            if self._kernel_spec is None:
                self._kernel_spec = KernelSpec(resource_dir="", **kernel_spec())
            return self._kernel_spec

        @property
        def ipykernel(self) -> bool:
            return True

    return {"kernel_name": KERNEL_NAME, "config": config,
            "kernel_manager_class": InterpreterKernelManager}


def _execute(source: Path, output: Path, parameters: dict, kernel_name, progress,
             metadata, failed_dir, title_suffix, t0) -> str:
    import nbformat
    import papermill as pm

    with atomic_path(output) as tmp:
        tmp_nb = tmp.with_suffix(".ipynb")
        try:
            try:
                pm.execute_notebook(
                    str(source), str(tmp_nb), parameters=parameters, progress_bar=progress,
                    cwd=str(output.parent), log_output=False, **_kernel_options(kernel_name),
                )
            except Exception:
                if failed_dir is not None and tmp_nb.exists():
                    Path(failed_dir).mkdir(parents=True, exist_ok=True)
                    os.replace(tmp_nb, Path(failed_dir) / output.name)
                raise
            nb = nbformat.read(tmp_nb, as_version=4)
            drop_progress_widgets(nb)
            if kernel_name is None:  # the kernel it ran on, by the name make install registers
                nb.metadata["kernelspec"] = {k: v for k, v in kernel_spec().items()
                                             if k in ("display_name", "language")}
                nb.metadata["kernelspec"]["name"] = KERNEL_NAME
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
