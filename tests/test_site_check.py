"""brainllm_utils.site_check: headless Chromium finds broken figures, tracebacks, empty pages."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from brainllm_utils import site_check

needs_chromium = pytest.mark.skipif(
    site_check.find_chromium() is None and not os.environ.get("BRAINLLM_REQUIRE_CHROMIUM"),
    reason="no Chromium (apt-get install chromium); CI sets BRAINLLM_REQUIRE_CHROMIUM=1")

TEXT = "<p>" + "A paragraph of the chapter that a reader reads. " * 20 + "</p>"


def _page(folder, name, body):
    path = folder / name
    path.write_text(f"<html><head><title>{name}</title></head><body><main>"
                    f"<h1>{name}</h1>{body}</main></body></html>")
    return path


@pytest.fixture
def site(tmp_path):
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)).save(tmp_path / "fig.png")
    good = _page(tmp_path, "good.html", TEXT + '<img src="fig.png">')
    broken = _page(tmp_path, "broken.html", TEXT + '<img src="missing.png"><img src="fig.png">')
    trace = _page(tmp_path, "trace.html", TEXT + "<pre>Traceback (most recent call last):\n"
                  "  File x\nValueError: boom</pre>")
    empty = _page(tmp_path, "empty.html", "")
    return {"good": good, "broken": broken, "trace": trace, "empty": empty}


def test_toc_pages_follow_the_table_of_contents(tmp_path):
    html = tmp_path / "_build" / "html"
    (html / "book" / "notebooks").mkdir(parents=True)
    for name in ("ch1__a", "ch1__b"):
        (html / "book" / "notebooks" / f"{name}.html").write_text("x")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: A\n    chapters:\n"
        "      - file: book/notebooks/ch1\n        sections:\n"
        "          - glob: book/notebooks/ch1__*\n      - file: book/ref.md\n")
    pages = site_check.toc_pages(html)
    rel = [str(p.relative_to(html)) for p in pages]
    assert rel == ["book/intro.html", "book/notebooks/ch1.html", "book/notebooks/ch1__a.html",
                   "book/notebooks/ch1__b.html", "book/ref.html"]


def test_missing_page_is_reported_without_a_browser(tmp_path):
    report = site_check.check_page(tmp_path / "nope.html", chromium="/bin/true")
    assert not report.ok and "missing" in report.error


@needs_chromium
def test_chromium_sees_good_broken_traceback_and_empty_pages(site, tmp_path):
    shots = tmp_path / "shots"
    reports = {name: site_check.check_page(path, screenshot=shots / f"{name}.png")
               for name, path in site.items()}
    good = reports["good"]
    assert good.ok, good.problems()
    assert good.images == 1 and good.h1 == "good.html"
    assert (shots / "good.png").stat().st_size > 1000
    assert reports["broken"].broken == ["missing.png"] and not reports["broken"].ok
    assert reports["trace"].traceback and not reports["trace"].ok
    assert not reports["empty"].ok and "looks empty" in reports["empty"].problems()[0]
    assert not list(tmp_path.glob(".*.check.html")), "probe copies left behind"
