"""brainllm_utils.site_check: headless Chromium finds broken figures, tracebacks, empty pages."""

from __future__ import annotations

import os
from pathlib import Path

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



def test_site_pages_come_back_in_page_order_whatever_the_workers(tmp_path, monkeypatch):
    """Pages run largest first on two workers, but the reports follow the page order."""
    import threading

    from brainllm_utils.book import site_check as impl

    pages = [_page(tmp_path, f"p{i}.html", TEXT * (i + 1)) for i in range(5)]
    started, lock = [], threading.Lock()

    def fake(page, chromium=None, screenshot=None):
        with lock:
            started.append(Path(page).name)
        return impl.PageReport(page=str(page), screenshot=str(screenshot))

    monkeypatch.setattr(impl, "check_page", fake)
    for workers in (1, 2, 4):
        started.clear()
        reports = site_check.check_site(tmp_path, tmp_path / "shots", pages=pages, workers=workers)
        assert [Path(r.page).name for r in reports] == [p.name for p in pages]
        assert [Path(r.screenshot).name for r in reports] == [f"p{i}.png" for i in range(5)]
        if workers == 1:
            assert started == [p.name for p in pages]
        else:  # the largest page (the last one here) is submitted first
            assert started[0] == "p4.html" and sorted(started) == [p.name for p in pages]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="workers"):
            site_check.check_site(tmp_path, pages=pages, workers=bad)


@needs_chromium
def test_two_workers_report_what_one_does(site, tmp_path):
    pages = list(site.values())
    one = site_check.check_site(tmp_path, tmp_path / "one", pages=pages, workers=1)
    two = site_check.check_site(tmp_path, tmp_path / "two", pages=pages, workers=2)
    assert [r.ok for r in one] == [r.ok for r in two] == [True, False, False, False]
    assert [(r.images, r.broken, r.traceback) for r in one] == \
        [(r.images, r.broken, r.traceback) for r in two]
    assert all(Path(r.screenshot).parent.name == "two" for r in two)

# ------------------------------------------------------------ JavaScript errors and surface viewers
def _frame(inner: str, width=700, height=450) -> str:
    """An ``<iframe srcdoc>`` as notebooks show HTML documents (nilearn's views)."""
    import html

    return (f'<iframe srcdoc="{html.escape(inner, quote=True)}" width="{width}" '
            f'height="{height}" frameBorder="0"></iframe>')


@pytest.fixture
def js_site(tmp_path):
    pages = {
        "clean": TEXT + "<script>console.log('fine'); console.warn('only a warning');</script>",
        "console_error": TEXT + "<script>console.error('something broke');</script>",
        "uncaught": TEXT + "<script>null.x;</script>",
        "frame_error": TEXT + _frame("<html><head></head><body><script>notDefined();"
                                     "</script></body></html>"),
        "missing_script": TEXT + '<script src="missing.js"></script>',
        # nilearn's container without plotly.js: the graph is never drawn
        "broken_viewer": TEXT + _frame('<html><head></head><body><div id="surface-plot" '
                                       'style="width:600px;height:400px"></div></body></html>'),
    }
    return {name: _page(tmp_path, f"{name}.html", body) for name, body in pages.items()}


@needs_chromium
def test_javascript_errors_fail_a_page_and_are_named(js_site):
    reports = {name: site_check.check_page(path) for name, path in js_site.items()}
    clean = reports["clean"]
    assert clean.ok and clean.console_errors == [] and clean.viewers == [], clean.problems()
    errors = {name: r.console_errors for name, r in reports.items()}
    assert not reports["console_error"].ok
    assert errors["console_error"] == ["console.error: something broke"]
    assert len(errors["uncaught"]) == 1 and "TypeError" in errors["uncaught"][0]
    assert "uncaught.html" in errors["uncaught"][0]  # the page, not the probed copy
    assert any(e.startswith("[frame] Uncaught ReferenceError: notDefined")
               for e in errors["frame_error"]), errors["frame_error"]
    assert any("failed to load <script>" in e and "missing.js" in e
               for e in errors["missing_script"]), errors["missing_script"]
    for name in ("console_error", "uncaught", "frame_error", "missing_script"):
        assert not reports[name].ok, name
        assert "JavaScript error" in " ".join(reports[name].problems()), name


@needs_chromium
def test_a_viewer_that_did_not_draw_fails(js_site):
    report = site_check.check_page(js_site["broken_viewer"])
    assert report.viewers and report.viewers[0]["where"] == "frame 1"
    assert not report.viewers[0]["plot"] and report.broken_viewers == report.viewers
    assert not report.ok
    assert "surface viewer in frame 1 did not render: no plotly graph" in report.problems()


@needs_chromium
def test_a_surface_view_renders_offline_and_is_screenshot(tmp_path):
    """A real :func:`viz.view_surface_map` page: plotly draws its WebGL canvas in headless
    Chromium without network, no console error, and the viewer gets its own screenshot."""
    from brainllm_utils import viz

    rng = np.random.default_rng(0)
    values = np.where(rng.random(2 * viz.FSAVERAGE5_VERTICES) < 0.2,
                      rng.uniform(0.1, 0.4, 2 * viz.FSAVERAGE5_VERTICES), np.nan)
    view = viz.view_surface_map(values[:viz.FSAVERAGE5_VERTICES], values[viz.FSAVERAGE5_VERTICES:],
                                title="a map")
    page = _page(tmp_path, "viewer.html", TEXT * 3 + view.get_iframe())
    report = site_check.check_page(page, screenshot=tmp_path / "shots" / "viewer.png")
    assert report.ok, report.problems()
    [viewer] = report.viewers
    assert viewer["plot"] and viewer["canvases"] >= 1 and viewer["width"] > 500
    shot = Path(report.viewer_screenshot)
    assert shot.name == "viewer__viewer.png"
    # the page's own screenshot is the first 1280×900 of the same render, not blank
    with Image.open(report.screenshot) as im:
        assert im.size == (1280, 900)
    assert not report.blank_screenshot
    with Image.open(shot) as im:
        arr = np.asarray(im.convert("RGB"), dtype=np.int16)
    # the viewer is in view: coloured (map) pixels and grey cortex, not just page text
    coloured = (arr.max(-1) - arr.min(-1)) > 60
    assert coloured.mean() > 0.002, coloured.mean()


def test_the_book_extension_drops_repeated_inline_scripts():
    """sphinx-thebe's inline config reached every page twice (filename '' and None): a
    SyntaxError the JavaScript check found on every page."""
    from sphinx.builders.html._assets import _JavaScript

    from brainllm_utils.book import sphinx_ext

    body = 'const THEBE_JS_URL = "x"'
    scripts = [_JavaScript("a.js"), _JavaScript("", body=body), _JavaScript(None, body=body),
               _JavaScript("a.js"), _JavaScript("", body="const other = 1")]
    context = {"script_files": list(scripts)}
    sphinx_ext.dedupe_scripts(None, "page", "page.html", context, None)
    assert context["script_files"] == [scripts[0], scripts[1], scripts[4]]


def test_a_run_without_a_report_is_repeated_with_more_virtual_time(tmp_path, monkeypatch):
    """Chromium can dump a page before the probe reports (a stalled WebGL viewer): the run is
    repeated with twice the virtual time, and the page fails only when every run lacks it."""
    import json
    import subprocess

    from brainllm_utils.book import site_check as sc

    page = _page(tmp_path, "p.html", TEXT)
    report = json.dumps({"title": "p", "h1": "p", "text_chars": 1000}).replace('"', "&quot;")
    budgets, answers = [], []

    def fake_run(cmd, timeout):
        budgets.append(next(int(f.split("=")[1]) for f in cmd if f.startswith("--virtual-time-budget=")))
        out = answers.pop(0) if answers else ""
        return subprocess.CompletedProcess(cmd, 0, stdout=out, stderr="")

    monkeypatch.setattr(sc, "_run", fake_run)
    answers[:] = ["", f'<pre id="{sc._MARK}">{report}</pre>']
    r = sc.check_page(page, chromium="chromium", budget_ms=1000)
    assert r.error is None and r.attempts == 2 and r.title == "p" and budgets == [1000, 2000]
    budgets.clear()
    answers[:] = []
    r = sc.check_page(page, chromium="chromium", budget_ms=1000)
    assert "rendered no report" in r.error and r.attempts == 1 + sc.NO_REPORT_RETRIES
    assert budgets == [1000 * 2 ** k for k in range(1 + sc.NO_REPORT_RETRIES)]


def test_a_stale_screenshot_does_not_pass_for_a_failed_render(tmp_path, monkeypatch):
    """A picture left at the screenshot's path by an earlier run is not this run's: when
    Chromium writes none, the page fails with "wrote no screenshot"."""
    import json
    import subprocess

    from PIL import Image

    from brainllm_utils.book import site_check as sc

    page = _page(tmp_path, "p.html", TEXT)
    report = json.dumps({"title": "p", "h1": "p", "text_chars": 1000}).replace('"', "&quot;")

    def fake_run(cmd, timeout):  # reports, but never writes a screenshot
        return subprocess.CompletedProcess(cmd, 0, stdout=f'<pre id="{sc._MARK}">{report}</pre>',
                                           stderr="")

    monkeypatch.setattr(sc, "_run", fake_run)
    shot = tmp_path / "shots" / "p.png"
    shot.parent.mkdir()
    Image.new("RGB", (1280, 900), (255, 255, 255)).save(shot)  # an earlier run's
    r = sc.check_page(page, chromium="chromium", screenshot=shot)
    assert r.error == "Chromium wrote no screenshot" and r.screenshot is None and not shot.exists()
