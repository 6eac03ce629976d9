"""Open the built HTML book in headless Chromium and check every page a reader reaches.

For each page of ``_toc.yml`` (root, chapters, sections, glob entries) the check loads the
page in headless Chromium and records, after the page's ``load`` event: the number of
images and those that did not decode (``naturalWidth == 0``: a broken figure), whether the
rendered text shows a Python traceback, the page title and the amount of text, the
JavaScript errors of the page and of its inline frames, and whether every interactive
surface viewer (:func:`brainllm_utils.viz.view_surface_map`, nilearn's ``view_surf``) drew
its plotly graph. A screenshot of each page (1280×900) is saved, and for a page with a
viewer a second one of the first viewer (``<page>__viewer.png``; both from one render of a
window tall enough to hold the viewer, the page's cut from its top). A page passes
when it has a title and text, every image loaded, no traceback is shown, no JavaScript
error was raised, every viewer rendered, and its screenshot is not blank.

JavaScript errors are what Chrome's console shows at level "error": calls of
``console.error``, uncaught exceptions and unhandled promise rejections, and resources
(scripts, stylesheets, images, frames) that failed to load. A hook injected first into the
page and into every ``srcdoc`` frame records them; Chromium's own log (``--enable-logging``)
adds any uncaught exception it reports from a frame the hook could not reach. Everything
runs without network: a page that needs a CDN fails here.

A viewer is a frame (or the page) holding nilearn's ``#surface-plot``; it rendered when it
holds a ``.js-plotly-plot`` with a WebGL canvas of non-zero size (plotly draws a message
instead of the canvas when WebGL is missing).

Command line (``make book`` runs it when Chromium is installed)::

    python -m brainllm_utils.site_check _build/html --screenshots test-artifacts/screenshots

Chromium: Debian's ``chromium`` (``apt-get install chromium``), or ``$CHROMIUM``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .._utils.docs import fill_doc

__all__ = ["CHROMIUM_FLAGS", "NO_REPORT_RETRIES", "PageReport", "find_chromium", "toc_pages", "check_page",
           "check_site", "main"]

#: flags from shared/docs/toolchain.md (offline, no profile in $HOME, root-safe)
#: (``--enable-unsafe-swiftshader``: WebGL in software for the surface viewers; the pages
#: checked are the project's own)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--enable-unsafe-swiftshader",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--allow-file-access-from-files"]
#: Chromium runs repeated, each with twice the virtual time, when a run dumps the page before
#: the probe has reported (seen on pages with a WebGL viewer under load); then the page fails
NO_REPORT_RETRIES = 2
_MARK = "brainllm-site-check"
_ERRORS = "__brainllmSiteErrors"
#: tallest window for a viewer screenshot (pixels; Chromium's limit is 16,384)
_MAX_SHOT_HEIGHT = 16000
#: the page screenshot's window (pixels)
_SHOT_WIDTH, _SHOT_HEIGHT = 1280, 900

# runs first in the page and in every srcdoc frame: records what the console shows as errors
# (in a frame, into the top page's list: srcdoc frames share its origin)
_HOOK = """<script>(function () {
  var w = window, top = w;
  try { if (w.parent && w.parent !== w && w.parent.document) { top = w.parent; } } catch (e) {}
  var where = (w === top) ? '' : '[frame] ';
  var list = top.%(errors)s = top.%(errors)s || [];
  function text(a) {
    try { return (a && a.stack) ? String(a.stack).split('\\n')[0]
                 : (typeof a === 'object' ? JSON.stringify(a) : String(a)); }
    catch (e) { return String(a); }
  }
  var orig = w.console.error;
  w.console.error = function () {
    list.push(where + 'console.error: ' + Array.prototype.map.call(arguments, text).join(' '));
    return orig.apply(w.console, arguments);
  };
  w.addEventListener('error', function (ev) {
    var t = ev.target;
    if (t && t !== w && t.tagName) {
      list.push(where + 'failed to load <' + t.tagName.toLowerCase() + '> '
                + (t.src || t.href || t.currentSrc || ''));
    } else {
      var msg = ev.message || text(ev.error);
      list.push(where + (/^Uncaught/.test(msg) ? '' : 'Uncaught ') + msg + ' ('
                + (ev.filename || '') + ':' + (ev.lineno || 0) + ')');
    }
  }, true);
  w.addEventListener('unhandledrejection', function (ev) {
    list.push(where + 'Unhandled promise rejection: ' + text(ev.reason));
  });
})();</script>""" % {"errors": _ERRORS}

# runs in the page: force lazy images to load, then report after the load event
_PROBE = """
<script>
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('img').forEach(function (im) { im.loading = 'eager'; });
});
function brainllmViewers() {
  // nilearn's surface views: #surface-plot in the page or in a same-origin frame
  var docs = [{doc: document, where: 'page', frame: null}];
  Array.prototype.forEach.call(document.querySelectorAll('iframe'), function (f, i) {
    try { if (f.contentDocument) { docs.push({doc: f.contentDocument, where: 'frame ' + (i + 1),
                                              frame: f}); } }
    catch (e) {}
  });
  var out = [];
  docs.forEach(function (d) {
    Array.prototype.forEach.call(d.doc.querySelectorAll('#surface-plot'), function (el) {
      // plotly marks the div it draws into (nilearn draws into #surface-plot itself)
      var plot = el.classList.contains('js-plotly-plot') ? el : el.querySelector('.js-plotly-plot');
      var canvases = plot ? Array.prototype.filter.call(plot.querySelectorAll('canvas'),
        function (c) { var r = c.getBoundingClientRect(); return c.width > 0 && c.height > 0
                                                              && r.width > 0 && r.height > 0; }) : [];
      var r = el.getBoundingClientRect();
      var top = (d.frame ? d.frame.getBoundingClientRect().top : 0) + r.top + window.scrollY;
      out.push({where: d.where, plot: !!plot, canvases: canvases.length, top: Math.round(top),
                width: Math.round(r.width), height: Math.round(r.height),
                text: (el.innerText || '').slice(0, 200)});
    });
  });
  return out;
}
window.addEventListener('load', function () {
  // one look, a second (virtual time) after the load event: frames have loaded by then and
  // plotly draws a viewer's WebGL canvas synchronously in the frame's ready handler
  function report() {
    var viewers = brainllmViewers();
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (im) { return !(im.complete && im.naturalWidth > 0); })
                     .map(function (im) { return im.getAttribute('src'); });
    var main = document.querySelector('main') || document.body;
    var text = main.innerText || '';
    var report = {images: imgs.length, broken: broken,
                  traceback: /Traceback \\(most recent call last\\)/.test(text),
                  title: document.title, text_chars: text.length,
                  h1: (document.querySelector('h1') || {}).textContent || '',
                  console_errors: (window.%(errors)s || []).slice(0, 50), viewers: viewers};
    var pre = document.createElement('pre');
    pre.id = '%(mark)s';
    pre.textContent = JSON.stringify(report);
    document.body.appendChild(pre);
  }
  setTimeout(report, 1000);
});
</script>
""" % {"mark": _MARK, "errors": _ERRORS}



@dataclass
class PageReport:
    """What one page rendered in headless Chromium (see :func:`check_page`).

    Attributes
    ----------
    page : str
        Absolute path of the HTML page.
    title : str
        The page's ``<title>``.
    h1 : str
        Text of its first ``<h1>``.
    images : int
        Number of ``<img>`` elements.
    broken : list of str
        ``src`` of the images that did not decode (``naturalWidth == 0``).
    traceback : bool
        Whether the rendered text shows a Python traceback.
    text_chars : int
        Characters of text in ``<main>`` (or the body).
    console_errors : list of str
        The JavaScript errors of the page and its frames (see the module doc), in order.
    viewers : list of dict
        One per surface viewer found: ``where`` (``"page"`` or ``"frame N"``), ``plot``
        (a plotly graph exists), ``canvases`` (WebGL canvases of non-zero size),
        ``top`` (its distance from the top of the page), ``width``, ``height`` (of the
        viewer, pixels) and ``text`` (what it shows instead).
    screenshot : str or None
        Path of the saved screenshot.
    viewer_screenshot : str or None
        Path of the screenshot of the first viewer (pages with a viewer).
    blank_screenshot : bool
        Whether the screenshot is blank (grey-level standard deviation below 2).
    error : str or None
        Why the page could not be checked (missing, timeout, no report).
    attempts : int
        Chromium runs it took to get the page's report (more than one when a run dumped the
        page before the probe reported; see :data:`NO_REPORT_RETRIES`).
    """

    page: str
    title: str = ""
    h1: str = ""
    images: int = 0
    broken: list = field(default_factory=list)
    traceback: bool = False
    text_chars: int = 0
    console_errors: list = field(default_factory=list)
    viewers: list = field(default_factory=list)
    screenshot: str | None = None
    viewer_screenshot: str | None = None
    blank_screenshot: bool = False
    error: str | None = None
    attempts: int = 0

    @property
    def broken_viewers(self) -> list:
        """The viewers that did not render (no plotly graph, or no WebGL canvas of size).

        Returns
        -------
        viewers : list of dict
            Entries of :attr:`viewers`.
        """
        return [v for v in self.viewers if not (v.get("plot") and v.get("canvases", 0) > 0
                                                and v.get("width", 0) > 0 and v.get("height", 0) > 0)]

    @property
    def ok(self) -> bool:
        """Whether the page passes.

        It passes with a title, more than 200 characters of text, every image loaded, no
        traceback, no JavaScript error, every surface viewer rendered, a non-blank
        screenshot and no error.
        """
        return (self.error is None and not self.broken and not self.traceback
                and bool(self.title) and self.text_chars > 200 and not self.blank_screenshot
                and not self.console_errors and not self.broken_viewers)

    def problems(self) -> list[str]:
        """What makes the page fail, in words.

        Returns
        -------
        problems : list of str
            One sentence per problem; empty when :attr:`ok`.
        """
        out = []
        if self.error:
            out.append(self.error)
        if self.broken:
            out.append(f"{len(self.broken)} broken image(s): {self.broken[:5]}")
        if self.traceback:
            out.append("shows a Python traceback")
        if not self.title or self.text_chars <= 200:
            out.append(f"looks empty (title {self.title!r}, {self.text_chars} characters)")
        if self.blank_screenshot:
            out.append("blank screenshot")
        if self.console_errors:
            out.append(f"{len(self.console_errors)} JavaScript error(s): "
                       + " | ".join(e[:300] for e in self.console_errors[:5]))
        for v in self.broken_viewers:
            why = ("no plotly graph" if not v.get("plot") else
                   "no WebGL canvas of non-zero size" if not v.get("canvases") else "zero size")
            shown = f" (it shows: {v['text'].strip()[:120]!r})" if v.get("text", "").strip() else ""
            out.append(f"surface viewer in {v.get('where', '?')} did not render: {why}{shown}")
        return out


def find_chromium() -> str | None:
    """``$CHROMIUM``, else the first of chromium, chromium-browser, google-chrome on PATH.

    Returns
    -------
    str or None
        The browser's command, or ``None`` when none is found.
    """
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def toc_pages(html_dir, toc="_toc.yml") -> list[Path]:
    """The HTML pages of ``_toc.yml`` (root first, glob entries expanded), in reading order.

    Parameters
    ----------
    html_dir : str or path-like
        The built book (``_build/html``).
    toc : str or path-like, default="_toc.yml"
        The table of contents; a relative path is taken from the book's root, two levels
        above ``html_dir``.

    Returns
    -------
    pages : list of pathlib.Path
        HTML files, each once (they need not exist).

    Raises
    ------
    FileNotFoundError
        When the table of contents is missing.
    """
    import yaml

    html_dir = Path(html_dir)
    toc_path = Path(toc) if Path(toc).is_absolute() else html_dir.parent.parent / toc
    if not toc_path.is_file():
        raise FileNotFoundError(f"{toc_path}: no table of contents next to {html_dir}")
    spec = yaml.safe_load(toc_path.read_text())
    pages: list[Path] = []

    def add(entry):
        if "file" in entry:
            pages.append(html_dir / f"{Path(entry['file']).with_suffix('')}.html")
        if "glob" in entry:
            pages.extend(sorted(html_dir.glob(f"{entry['glob']}.html")))
        for key in ("chapters", "sections", "parts"):
            for child in entry.get(key, []) or []:
                add(child)

    pages.append(html_dir / f"{Path(spec['root']).with_suffix('')}.html")
    add({k: v for k, v in spec.items() if k != "root"})
    seen, ordered = set(), []
    for p in pages:
        if p not in seen:
            seen.add(p)
            ordered.append(p)
    return ordered


def _run(cmd, timeout):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def _blank(png: Path) -> bool:
    import numpy as np
    from PIL import Image

    with Image.open(png) as im:
        arr = np.asarray(im.convert("L"), dtype=np.float32)
    return float(arr.std()) < 2.0


def check_page(page, chromium: str | None = None, screenshot=None,
               timeout: float = 90, budget_ms: int = 8000) -> PageReport:
    """Load ``page`` in headless Chromium; return what it rendered (see the module doc).

    Parameters
    ----------
    page : str or path-like
        An HTML file; a missing file is reported in ``error``.
    chromium : str, optional
        The browser's command; ``None``: :func:`find_chromium`.
    screenshot : str or path-like, optional
        Where a 1280×900 PNG screenshot is saved; ``None``: no screenshot.
    timeout : float, default=90
        Seconds allowed for each Chromium run.
    budget_ms : int, default=8000
        Chromium's virtual-time budget for the page to load and report.

    Returns
    -------
    report : PageReport
        What the page rendered.

    Raises
    ------
    FileNotFoundError
        When no Chromium is found.
    """
    page = Path(page).resolve()
    report = PageReport(page=str(page))
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: apt-get install chromium (or set $CHROMIUM)")
    if not page.is_file():
        report.error = f"{page}: page missing from the build"
        return report
    html = _hooked(page.read_text(errors="replace"))
    # probed copies beside the page, so relative links (images, CSS) resolve the same way
    fd, tmp = tempfile.mkstemp(prefix=f".{page.stem}.", suffix=".check.html", dir=page.parent)
    os.close(fd)
    probe_copy = Path(tmp)
    with tempfile.TemporaryDirectory() as profile:
        flags = CHROMIUM_FLAGS + [f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
        try:
            probe_copy.write_text(_before_body_end(html, _PROBE))
            # a page whose WebGL viewer stalls the software renderer can dump its DOM before the
            # probe has written its report: such a run is repeated (up to NO_REPORT_RETRIES
            # times, each with twice the virtual time) before the page is failed
            for attempt in range(1 + NO_REPORT_RETRIES):
                run_flags = [f for f in flags if not f.startswith("--virtual-time-budget=")]
                run_flags.append(f"--virtual-time-budget={budget_ms * 2 ** attempt}")
                proc = _run([chromium, *run_flags, "--enable-logging=stderr", "--v=0", "--dump-dom",
                             probe_copy.as_uri()], timeout)
                m = re.search(rf'<pre id="{_MARK}">(.*?)</pre>', proc.stdout, re.S)
                if m:
                    break
            report.attempts = attempt + 1
            if not m:
                report.error = (f"Chromium rendered no report (rc {proc.returncode}): "
                                f"{proc.stderr.strip()[-300:]}")
            else:
                import html as _html

                data = json.loads(_html.unescape(m.group(1)))
                for key, value in data.items():
                    setattr(report, key, value)
                errors = _merge_errors(report.console_errors, _uncaught_from_log(proc.stderr))
                # name the page, not its probed copy
                report.console_errors = [e.replace(probe_copy.as_uri(), page.name) for e in errors]
            if screenshot is not None:
                screenshot = Path(screenshot)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                # an earlier run's picture at the same path must not pass for this run's
                screenshot.unlink(missing_ok=True)
                if report.viewers:
                    # one render for both pictures: a WebGL viewer costs Chromium's software
                    # renderer ~10 CPU-seconds a run; the page's 1280×900 screenshot is the
                    # top of the tall one, cut before the tall one is cropped to the viewer
                    report.viewer_screenshot = _viewer_screenshot(
                        chromium, flags, page, report.viewers[0],
                        screenshot.with_name(f"{screenshot.stem}__viewer.png"), timeout,
                        page_shot=screenshot)
                else:
                    _run([chromium, *flags, f"--screenshot={screenshot}",
                          f"--window-size={_SHOT_WIDTH},{_SHOT_HEIGHT}", page.as_uri()], timeout)
                if screenshot.is_file() and screenshot.stat().st_size > 0:
                    report.screenshot = str(screenshot)
                    report.blank_screenshot = _blank(screenshot)
                else:
                    report.error = report.error or "Chromium wrote no screenshot"
        except subprocess.TimeoutExpired:
            report.error = f"Chromium timed out after {timeout} s"
        finally:
            probe_copy.unlink(missing_ok=True)
    return report


def _viewer_screenshot(chromium, flags, page: Path, viewer: dict, shot: Path, timeout,
                       page_shot: Path | None = None):
    """A 1280-wide screenshot of the page down to the viewer, cropped around it.

    A window tall enough to hold the viewer (at most ``_MAX_SHOT_HEIGHT``, at least 900)
    shows it without scrolling; the picture is then cut to the viewer and 150 pixels above
    and below. ``page_shot``: where the window's top 1280×900 is saved first (the page's
    screenshot, from the same render).
    """
    from PIL import Image

    top, height = int(viewer.get("top", 0)), int(viewer.get("height", 0))
    window = max(_SHOT_HEIGHT, min(top + height + 200, _MAX_SHOT_HEIGHT))
    shot.unlink(missing_ok=True)  # never an earlier run's picture
    _run([chromium, *flags, f"--screenshot={shot}", f"--window-size={_SHOT_WIDTH},{window}",
          page.as_uri()], timeout)
    if not (shot.is_file() and shot.stat().st_size > 0):
        return None
    with Image.open(shot) as im:
        if page_shot is not None:
            im.crop((0, 0, im.width, min(im.height, _SHOT_HEIGHT))).save(page_shot)
        box = (0, max(0, min(top - 150, im.height - _SHOT_HEIGHT)), im.width,
               min(im.height, top + height + 150))
        im.crop(box).save(shot)
    return str(shot)


def _before_body_end(html: str, script: str) -> str:
    return html.replace("</body>", script + "</body>", 1) if "</body>" in html else html + script


def _hooked(html: str) -> str:
    """``html`` with the error hook first in its ``<head>`` and in every ``srcdoc`` frame."""
    import html as _html

    def first(doc: str) -> str:
        m = re.search(r"<head[^>]*>", doc, re.I)
        if m:
            return doc[:m.end()] + _HOOK + doc[m.end():]
        m = re.search(r"<html[^>]*>", doc, re.I)
        return doc[:m.end()] + _HOOK + doc[m.end():] if m else _HOOK + doc

    def frame(m):
        inner = first(_html.unescape(m.group(2)))
        return f'{m.group(1)}"{_html.escape(inner, quote=True)}"'

    # srcdoc values are attribute-escaped (no raw double quote inside)
    html = re.sub(r'(<iframe\b[^>]*?\ssrcdoc=)"([^"]*)"', frame, html, flags=re.I)
    return first(html)


def _uncaught_from_log(stderr: str) -> list[str]:
    """Uncaught exceptions in Chromium's console log (``--enable-logging=stderr``).

    The log does not keep a message's level, but an uncaught exception is an error
    whatever frame raised it.
    """
    out = []
    for m in re.finditer(r':CONSOLE[^\]]*\] "(Uncaught .*?)", source: (\S*) \((\d+)\)', stderr):
        out.append(f"Uncaught {m.group(1)[len('Uncaught '):]} ({m.group(2)}:{m.group(3)})")
    return out


def _merge_errors(hooked: list, logged: list) -> list:
    """The hook's errors, plus the log's uncaught exceptions the hook did not see."""
    seen = " ".join(hooked)
    extra = [e for e in logged if e.split(" (")[0].replace("Uncaught ", "", 1)[:80] not in seen]
    return list(hooked) + extra


def check_site(html_dir, screenshots=None, pages=None, chromium=None,
               toc="_toc.yml", workers: int | None = None) -> list[PageReport]:
    """:func:`check_page` for every page of the book (or ``pages``).

    Screenshots are written to ``screenshots/<page path with / as __>.png`` when a folder
    is given. Pages are checked ``workers`` at a time, the largest HTML files first (the
    pages with surface viewers, whose WebGL runs take longest), so a slow page does not
    start last; the reports come back in page order.

    Parameters
    ----------
    html_dir : str or path-like
        The built book (``_build/html``).
    screenshots : str or path-like, optional
        Folder of the screenshots; ``None``: none taken.
    pages : sequence of str or path-like, optional
        The pages to check (under ``html_dir``); ``None``: :func:`toc_pages`.
    chromium : str, optional
        The browser's command; ``None``: :func:`find_chromium`.
    toc : str or path-like, default="_toc.yml"
        As :func:`toc_pages`.
    workers : int, optional
        Chromium runs at a time (each is its own browser, profile and temporary files);
        ``None``: 2, or 1 on a one-CPU machine. A Chromium run is mostly waiting, so two
        of them on two cores take about four fifths of the serial time, not half.

    Returns
    -------
    reports : list of PageReport
        One per page, in order.

    Raises
    ------
    ValueError
        When ``workers`` is not a positive int.
    """
    from concurrent.futures import ThreadPoolExecutor

    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, got {workers!r}")
    html_dir = Path(html_dir)
    pages = [Path(p) for p in pages] if pages is not None else toc_pages(html_dir, toc)
    shots: list[Path | None] = []
    for page in pages:
        shot = None
        if screenshots is not None:
            rel = page.resolve().relative_to(html_dir.resolve()).with_suffix("")
            shot = Path(screenshots) / ("__".join(rel.parts) + ".png")
        shots.append(shot)
    if workers == 1 or len(pages) < 2:
        return [check_page(page, chromium, shot) for page, shot in zip(pages, shots)]

    def size(i: int) -> int:
        try:
            return pages[i].stat().st_size
        except OSError:
            return 0

    order = sorted(range(len(pages)), key=size, reverse=True)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {i: pool.submit(check_page, pages[i], chromium, shots[i]) for i in order}
        return [futures[i].result() for i in range(len(pages))]


@fill_doc
def main(argv=None, prog=None) -> int:
    """Command line: ``python -m brainllm_utils.site_check [HTML_DIR] [--screenshots DIR]``.

    Prints one line per page, each problem of a failing page (its JavaScript errors
    named one by one) and a summary; ``--report`` writes the reports as JSON,
    ``--if-available`` skips (exit status 0) when no Chromium is installed.

    Parameters
    ----------
    %(argv)s
    %(prog)s

    Returns
    -------
    int
        Exit status: 0 when every page passes (or skipped), 1 when a page fails, 2 when no
        Chromium is found.
    """
    parser = argparse.ArgumentParser(prog=prog or "python -m brainllm_utils.site_check")
    parser.add_argument("html_dir", nargs="?", default="_build/html")
    parser.add_argument("--screenshots", default="test-artifacts/screenshots")
    parser.add_argument("--toc", default="_toc.yml")
    parser.add_argument("--report", default=None, help="write the reports as JSON here")
    parser.add_argument("--workers", type=int, default=None,
                        help="Chromium runs at a time (default: 2, or 1 on a one-CPU machine)")
    parser.add_argument("--if-available", action="store_true",
                        help="skip (rc 0) with a message when no Chromium is installed")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        msg = "no Chromium found (apt-get install chromium, or set $CHROMIUM)"
        print(f"[site-check] {'skipped: ' if args.if_available else 'error: '}{msg}")
        return 0 if args.if_available else 2
    toc = Path(args.toc).resolve()
    reports = check_site(args.html_dir, args.screenshots, toc=toc, workers=args.workers)
    bad = [r for r in reports if not r.ok]
    for r in reports:
        status = "ok  " if r.ok else "FAIL"
        viewers = f", {len(r.viewers)} surface viewer(s)" if r.viewers else ""
        print(f"[site-check] {status} {Path(r.page).relative_to(Path(args.html_dir).resolve())}: "
              f"{r.images} image(s), {r.text_chars} chars{viewers}")
        for problem in r.problems():
            print(f"[site-check]        - {problem}")
        for error in r.console_errors[5:20]:  # problems() names the first five
            print(f"[site-check]          {error[:300]}")
    if args.report:
        Path(args.report).write_text(json.dumps([asdict(r) for r in reports], indent=1))
    print(f"[site-check] {len(reports) - len(bad)}/{len(reports)} pages pass; screenshots in "
          f"{args.screenshots}")
    return 1 if bad else 0

