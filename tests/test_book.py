"""End to end: every notebook through papermill on the tiny sandbox, then a strict book build."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from brainllm_utils import book
from brainllm_utils.paths import REPO_ROOT


@pytest.fixture(scope="module")
def built_book(tiny_root, tmp_path_factory):
    import os

    site = tmp_path_factory.mktemp("site")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, site / name)
    shutil.copytree(REPO_ROOT / "book", site / "book",
                    ignore=shutil.ignore_patterns("notebooks", "_build"))
    # the chapters' findings and exported files go to a results folder of this build's own
    # (the kernels inherit it; test_exports_read_back_equal reads it)
    results = site / "results"  # beside the book, as data/results is in the repository
    before = os.environ.get("BRAINLLM_RESULTS")
    os.environ["BRAINLLM_RESULTS"] = str(results)
    try:
        timings = book.run_book(data_home=str(tiny_root), smoke=True,
                                output_dir=site / "book" / "notebooks")
    finally:
        if before is None:
            os.environ.pop("BRAINLLM_RESULTS", None)
        else:
            os.environ["BRAINLLM_RESULTS"] = before
    return site, timings


@pytest.mark.slow
def test_every_notebook_runs_on_the_tiny_sandbox(built_book):
    site, timings = built_book
    assert [name for name, _ in timings] == [p.stem for p in book.list_notebooks()]
    for name, _ in timings:
        assert (site / "book" / "notebooks" / f"{name}.ipynb").exists()


@pytest.mark.slow
def test_strict_book_build(built_book):
    site, _ = built_book
    jb = Path(sys.executable).with_name("jupyter-book")
    proc = subprocess.run([str(jb), "build", str(site), "-W", "-n", "--keep-going"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = site / "_build" / "html"
    assert (html / "book" / "intro.html").exists()
    tour = (html / "book" / "notebooks" / "00_data_tour.html").read_text()
    assert "Traceback" not in tour
    assert tour.count("<img") >= 4, "figures missing from the rendered tour"
    for page in (html / "book" / "notebooks").glob("*.html"):
        text = page.read_text()
        # progress widgets are dropped (no dead widget or its text); the book's style sheet
        # (readable tables) is linked
        assert "widget-view+json" not in text and "HBox(" not in text, page.name
        assert "Error displaying widget" not in text, page.name
        assert "brainllm.css" in text, page.name
    # every chapter page links its exported files, and the links resolve in the built site
    import re
    from urllib.parse import unquote

    for nb in book.list_notebooks():
        page = html / "book" / "notebooks" / f"{nb.stem}.html"
        links = re.findall(r'<a class="reference download internal"[^>]*href="([^"]+)"',
                           page.read_text())
        assert any(unquote(h).endswith("/manifest.json") for h in links), f"{page.name}: no links"
        missing = [h for h in links if not (page.parent / unquote(h)).is_file()]
        assert not missing, f"{page.name}: download links that do not resolve: {missing}"


@pytest.mark.slow
def test_exports_read_back_equal(built_book):
    """Every chapter wrote its results folder (README + manifest), and every file read back
    (nibabel, nilearn, pandas, rsatoolbox) has the checksum of the notebook's values."""
    import json

    from brainllm_utils import export

    site, _ = built_book
    kinds = set()
    for nb in book.list_notebooks():
        folder = site / "results" / nb.stem
        assert (folder / "README.md").is_file() and (folder / "manifest.json").is_file(), nb.stem
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["files"], f"{nb.stem}: nothing exported"
        assert export.check_folder(folder) == [], nb.stem
        kinds |= {e["format"] for e in manifest["files"]}
        listed = {e["file"] for e in manifest["files"]} | {"README.md", "manifest.json"}
        assert {p.name for p in folder.iterdir()} == listed, f"{nb.stem}: unlisted files"
    assert kinds == {"mgh", "gifti", "nifti", "csv", "parquet", "rsatoolbox-hdf5"}


@pytest.mark.slow
def test_rendered_book_in_headless_chromium(built_book):
    """Every page of the table of contents renders in Chromium: figures decode, no
    traceback, text present; screenshots are kept in test-artifacts/screenshots/."""
    import os

    from brainllm_utils import site_check

    if site_check.find_chromium() is None and not os.environ.get("BRAINLLM_REQUIRE_CHROMIUM"):
        pytest.skip("no Chromium (apt-get install chromium); CI sets BRAINLLM_REQUIRE_CHROMIUM=1")
    site, _ = built_book
    html = site / "_build" / "html"
    if not (html / "book" / "intro.html").exists():
        test_strict_book_build(built_book)
    shots = REPO_ROOT / "test-artifacts" / "screenshots"
    reports = site_check.check_site(html, screenshots=shots, toc=site / "_toc.yml")
    chapters = [r for r in reports if "/notebooks/" in r.page]
    assert len(chapters) == len(book.list_notebooks())
    bad = {r.page: r.problems() for r in reports if not r.ok}
    assert not bad, bad
    assert all(r.images >= 1 for r in chapters), [(r.page, r.images) for r in chapters]
    assert all(Path(r.screenshot).is_file() for r in reports)
    # the searchlight and encoding pages embed the interactive 3-D view, and it drew
    by_name = {Path(r.page).stem: r for r in reports}
    for name in ("02_rsa", "03_encoding"):
        viewers = by_name[name].viewers
        assert len(viewers) == 1 and viewers[0]["canvases"] >= 1, (name, viewers)
        assert Path(by_name[name].viewer_screenshot).is_file()


def test_unknown_parameter_fails_before_running(tmp_path):
    src = book.list_notebooks(["00_data_tour"])[0]
    with pytest.raises(ValueError, match="unknown parameter.*subjekt"):
        book.execute_notebook(src, tmp_path / "out.ipynb", {"subjekt": "subj01"})
    assert not (tmp_path / "out.ipynb").exists()


def test_unknown_notebook_is_named():
    with pytest.raises(ValueError, match="99_nope"):
        book.list_notebooks(["99_nope"])


def test_failing_notebook_leaves_no_output(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook
    from papermill.exceptions import PapermillExecutionError

    nb = new_notebook()
    p = new_code_cell("x = 1")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, new_code_cell("raise RuntimeError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "01_bad.ipynb"
    nbformat.write(nb, src)
    with pytest.raises(PapermillExecutionError, match="boom"):
        book.execute_notebook(src, tmp_path / "out" / "01_bad.ipynb", {"x": 2})
    assert not (tmp_path / "out" / "01_bad.ipynb").exists()


def _toy(path, *cells):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    nb = new_notebook()
    p = new_code_cell("x = 1")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p] + [new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": book.KERNEL_NAME, "display_name": "brainllm (Python 3)",
                                 "language": "python"}
    nbformat.write(nb, path)
    return path


def test_notebooks_ask_for_the_brainllm_kernel():
    for path in book.list_notebooks():
        spec = json.loads(path.read_text())["metadata"]["kernelspec"]
        assert spec["name"] == book.KERNEL_NAME == "brainllm", path.name
        assert spec["display_name"].startswith("brainllm (Python 3"), path.name
    assert "--name brainllm" in (REPO_ROOT / "Makefile").read_text()


def test_batch_kernel_is_this_interpreter_whatever_is_registered(tmp_path, monkeypatch, capfd):
    """The executed notebook ran on this interpreter as 'brainllm', even where a kernel of
    that name is registered elsewhere (here a broken one first on JUPYTER_PATH) or not at
    all; over IPC, so ipykernel does not warn about unencrypted TCP; tqdm's widget bars are
    dropped from the stored notebook while other widgets are kept."""
    import nbformat

    kernels = tmp_path / "jupyter" / "kernels" / "brainllm"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps(
        {"argv": ["false", "{connection_file}"], "display_name": "broken", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    src = _toy(tmp_path / "01_toy.ipynb",
               "import os, sys\nprint('python', sys.executable, 'cwd', sorted(os.listdir('.')))",
               "from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='toy'):\n    pass\nprint('looped')",
               "import ipywidgets\nipywidgets.IntSlider(value=x)")
    out = tmp_path / "out" / "01_toy.ipynb"
    capfd.readouterr()
    book.execute_notebook(src, out, {"x": 4})
    err = capfd.readouterr().err
    assert "without encryption" not in err, err
    nb = nbformat.read(out, as_version=4)
    assert nb.metadata["kernelspec"]["name"] == "brainllm"
    assert nb.metadata["kernelspec"]["display_name"] == book.kernel_spec()["display_name"]
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert f"python {sys.executable}" in printed and "looped" in printed
    assert "kernel-ipc" not in printed, "the kernel's sockets belong in the temporary folder"
    view = "application/vnd.jupyter.widget-view+json"
    widgets = [o for c in nb.cells for o in c.get("outputs", []) if view in o.get("data", {})]
    assert len(widgets) == 1 and "IntSlider" in json.dumps(nb.metadata["widgets"]), widgets
    assert "FloatProgress" not in json.dumps(nb.cells)


def test_progress_bar_widgets_are_recognised():
    """drop_progress_widgets removes a tqdm HBox and keeps a slider; without stored widget
    state a bar is known by tqdm's text."""
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    view = "application/vnd.jupyter.widget-view+json"

    def out(mid, text):
        return new_output("display_data", data={view: {"model_id": mid}, "text/plain": text})

    nb = new_notebook(cells=[new_code_cell("", outputs=[out("bar", "  0%|   | 0/3"),
                                                        out("sl", "IntSlider(value=4)")])])
    state = {"bar": {"model_name": "HBoxModel", "state": {"children": ["IPY_MODEL_p", "IPY_MODEL_t"]}},
             "p": {"model_name": "FloatProgressModel"}, "t": {"model_name": "HTMLModel"},
             "sl": {"model_name": "IntSliderModel"}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    assert book.drop_progress_widgets(nb) == 1
    assert [o["data"][view]["model_id"] for o in nb.cells[0].outputs] == ["sl"]
    assert "widgets" in nb.metadata
    nb = new_notebook(cells=[new_code_cell("", outputs=[out("a", " 40%|████      | 2/5 [00:01<00:01]")])])
    assert book.drop_progress_widgets(nb) == 1 and nb.cells[0].outputs == []


def test_notebook_paths_are_relative_inside_the_repository(tmp_path, monkeypatch):
    cwd = REPO_ROOT / "book" / "notebooks"
    assert book.notebook_path(REPO_ROOT / "data" / "sandbox", cwd) == "../../data/sandbox"
    assert book.notebook_path(cwd, cwd) == "."
    monkeypatch.setenv("HOME", str(tmp_path))
    assert book.notebook_path(tmp_path / "nsd", cwd, home=True) == "~/nsd"
    assert book.notebook_path(tmp_path / "nsd", cwd) == str(tmp_path / "nsd")
    assert book.notebook_path("/somewhere/else", cwd, home=True) == "/somewhere/else"
    params = book.notebook_paths({"data_home": str(tmp_path / "nsd"), "output_dir": str(cwd),
                                  "corpus_file": None, "n_sets": 2, "glove_path": "/x/g.txt"}, cwd)
    assert params == {"data_home": "~/nsd", "output_dir": ".", "corpus_file": None, "n_sets": 2,
                      "glove_path": "/x/g.txt"}
