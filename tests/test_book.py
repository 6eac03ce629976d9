"""End to end: every notebook through papermill on the tiny sandbox, then a strict book build."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from brainllm_utils import book
from brainllm_utils.paths import REPO_ROOT


@pytest.fixture(scope="module")
def built_book(tiny_root, tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(REPO_ROOT / name, site / name)
    shutil.copytree(REPO_ROOT / "book", site / "book",
                    ignore=shutil.ignore_patterns("notebooks", "_build"))
    timings = book.run_book(data_home=str(tiny_root), smoke=True,
                            output_dir=site / "book" / "notebooks")
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
