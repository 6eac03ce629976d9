"""Open the built HTML book in headless Chromium and check every page a reader reaches.

For each page of ``_toc.yml`` (root, chapters, sections, glob entries) the check loads the
page in headless Chromium and records, after the page's ``load`` event: the number of
images and those that did not decode (``naturalWidth == 0``: a broken figure), whether the
rendered text shows a Python traceback, the page title and the amount of text. A screenshot
of each page (1280×900) is saved. A page passes when it has a title and text, every image
loaded, no traceback is shown, and its screenshot is not blank.

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

__all__ = ["CHROMIUM_FLAGS", "PageReport", "find_chromium", "toc_pages", "check_page", "check_site", "main"]

#: flags from shared/docs/toolchain.md (offline, no profile in $HOME, root-safe)
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--hide-scrollbars", "--allow-file-access-from-files"]
_MARK = "brainllm-site-check"

# runs in the page: force lazy images to load, then report after the load event
_PROBE = """
<script>
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('img').forEach(function (im) { im.loading = 'eager'; });
});
window.addEventListener('load', function () {
  setTimeout(function () {
    var imgs = Array.prototype.slice.call(document.images);
    var broken = imgs.filter(function (im) { return !(im.complete && im.naturalWidth > 0); })
                     .map(function (im) { return im.getAttribute('src'); });
    var main = document.querySelector('main') || document.body;
    var text = main.innerText || '';
    var report = {images: imgs.length, broken: broken,
                  traceback: /Traceback \\(most recent call last\\)/.test(text),
                  title: document.title, text_chars: text.length,
                  h1: (document.querySelector('h1') || {}).textContent || ''};
    var pre = document.createElement('pre');
    pre.id = '%s';
    pre.textContent = JSON.stringify(report);
    document.body.appendChild(pre);
  }, 500);
});
</script>
""" % _MARK


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
    screenshot : str or None
        Path of the saved screenshot.
    blank_screenshot : bool
        Whether the screenshot is blank (grey-level standard deviation below 2).
    error : str or None
        Why the page could not be checked (missing, timeout, no report).
    """

    page: str
    title: str = ""
    h1: str = ""
    images: int = 0
    broken: list = field(default_factory=list)
    traceback: bool = False
    text_chars: int = 0
    screenshot: str | None = None
    blank_screenshot: bool = False
    error: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the page passes.

        It passes with a title, more than 200 characters of text, every image loaded, no
        traceback, a non-blank screenshot and no error.
        """
        return (self.error is None and not self.broken and not self.traceback
                and bool(self.title) and self.text_chars > 200 and not self.blank_screenshot)

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
    html = page.read_text(errors="replace")
    probe = html.replace("</body>", _PROBE + "</body>", 1) if "</body>" in html else html + _PROBE
    # a probed copy beside the page, so relative links (images, CSS) resolve the same way
    fd, tmp = tempfile.mkstemp(prefix=f".{page.stem}.", suffix=".check.html", dir=page.parent)
    os.close(fd)
    with tempfile.TemporaryDirectory() as profile:
        flags = CHROMIUM_FLAGS + [f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}"]
        try:
            Path(tmp).write_text(probe)
            proc = _run([chromium, *flags, "--dump-dom", Path(tmp).as_uri()], timeout)
            m = re.search(rf'<pre id="{_MARK}">(.*?)</pre>', proc.stdout, re.S)
            if not m:
                report.error = (f"Chromium rendered no report (rc {proc.returncode}): "
                                f"{proc.stderr.strip()[-300:]}")
            else:
                import html as _html

                data = json.loads(_html.unescape(m.group(1)))
                for key, value in data.items():
                    setattr(report, key, value)
            if screenshot is not None:
                screenshot = Path(screenshot)
                screenshot.parent.mkdir(parents=True, exist_ok=True)
                _run([chromium, *flags, f"--screenshot={screenshot}", "--window-size=1280,900",
                      page.as_uri()], timeout)
                if screenshot.is_file() and screenshot.stat().st_size > 0:
                    report.screenshot = str(screenshot)
                    report.blank_screenshot = _blank(screenshot)
                else:
                    report.error = report.error or "Chromium wrote no screenshot"
        except subprocess.TimeoutExpired:
            report.error = f"Chromium timed out after {timeout} s"
        finally:
            Path(tmp).unlink(missing_ok=True)
    return report


def check_site(html_dir, screenshots=None, pages=None, chromium=None,
               toc="_toc.yml") -> list[PageReport]:
    """:func:`check_page` for every page of the book (or ``pages``).

    Screenshots are written to ``screenshots/<page path with / as __>.png`` when a folder
    is given.

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

    Returns
    -------
    reports : list of PageReport
        One per page, in order.
    """
    html_dir = Path(html_dir)
    pages = [Path(p) for p in pages] if pages is not None else toc_pages(html_dir, toc)
    reports = []
    for page in pages:
        shot = None
        if screenshots is not None:
            rel = page.resolve().relative_to(html_dir.resolve()).with_suffix("")
            shot = Path(screenshots) / ("__".join(rel.parts) + ".png")
        reports.append(check_page(page, chromium, shot))
    return reports


@fill_doc
def main(argv=None, prog=None) -> int:
    """Command line: ``python -m brainllm_utils.site_check [HTML_DIR] [--screenshots DIR]``.

    Prints one line per page and a summary; ``--report`` writes the reports as JSON,
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
    parser.add_argument("--if-available", action="store_true",
                        help="skip (rc 0) with a message when no Chromium is installed")
    args = parser.parse_args(argv)
    if find_chromium() is None:
        msg = "no Chromium found (apt-get install chromium, or set $CHROMIUM)"
        print(f"[site-check] {'skipped: ' if args.if_available else 'error: '}{msg}")
        return 0 if args.if_available else 2
    toc = Path(args.toc).resolve()
    reports = check_site(args.html_dir, args.screenshots, toc=toc)
    bad = [r for r in reports if not r.ok]
    for r in reports:
        status = "ok  " if r.ok else "FAIL"
        print(f"[site-check] {status} {Path(r.page).relative_to(Path(args.html_dir).resolve())}: "
              f"{r.images} image(s), {r.text_chars} chars"
              + ("" if r.ok else " — " + "; ".join(r.problems())))
    if args.report:
        Path(args.report).write_text(json.dumps([asdict(r) for r in reports], indent=1))
    print(f"[site-check] {len(reports) - len(bad)}/{len(reports)} pages pass; screenshots in "
          f"{args.screenshots}")
    return 1 if bad else 0

