"""No typed numbers in the book's prose (issue 13, "no typed numbers in prose").

Every number a chapter's text states must come from the run or the reference data: a
``{glue:text}`` role (myst-nb ``glue``) or a generated table, so the sandbox book and the
NSD book both read true after any change of seed, preset or data. This test scans the
markdown cells of every chapter notebook (``notebooks/*.ipynb``) and ``book/intro.md`` and
fails on any number typed into the prose that is not on the allow-list below.

What is scanned: the markdown text after removing what is not prose — fenced code blocks,
inline code (`` `n_sets = 2` ``), MyST roles and their content (``{glue:text}`key```,
``{doc}``, ``{cite:t}``), math (``$...$``, ``$$...$$``), link targets, URLs and HTML
comments. A *number* is a run of digits (with thousands separators and decimals, and a
``k``/``M``/``B`` suffix: ``0.43``, ``1,000``, ``48k``, ``3.3M``) that is not part of a
name: digits glued to letters or to ``_``, ``-`` or ``/`` after a letter (``ResNet50``,
``fsaverage5``, ``BLEU-4``, ``ViT-B/32``, ``subj01``, ``RQ4``) are names, not numbers.

The allow-list (:data:`ALLOWED`) holds only numbers that cannot go stale with a run:

- mathematical ``0`` and ``1`` (``r > 0``, ``rank 0``, ``1-based``);
- references: ordered-list markers, ``Fig. 4b``, ``Figs 1, 2``, ``Supp. Fig. 10``, ``§7``,
  ``chapter 05``; years (1990–2029, e.g. ``COCO 2017``);
- fixed facts of NSD's design, stated as such: each image shown 3 times, 8 subjects,
  30–40 sessions of 750 trials, ~10,000 images per subject, the 73,000 (73k) images,
  327,684 fsaverage vertices (fsaverage5: 10,242 per hemisphere, 20,484 in all), 1.8 mm
  voxels;
- fixed constants of the paper's method that the page states as the method, not as a
  result: 100-image sample sets, spheres of 6 voxels, q/p = 0.05, 5-fold CV, the 768-d
  MPNet embedding, 10 seeds, 200 epochs, 10-layer networks, the transfer readout's Adam
  lr 0.05, eps 0.1, batch 96 and last 2,000 held-out images;
- NSD's neighbours: COCO 2017's 50,287 images outside NSD, Conceptual Captions' 3.3M;
- a default ridge-penalty grid named in a deviation (``13 log-spaced values``), shown in
  the parameters cell.

Not allowed, so glued: every result of a run (sandbox-specific values, counts of subjects,
images, seeds or epochs of the default parameters, planted weights) and every number the
paper *reports* (its ROI RSA and transfer values, its 515 shared test images, its networks'
training-set sizes): those come from :mod:`brainllm_utils.chapters.reference`.
Spelled-out numbers ("eight subjects", "three times") are not scanned.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from brainllm_utils.paths import REPO_ROOT

#: what is not prose, blanked before scanning (pattern, what it is)
NOT_PROSE = (
    (re.compile(r"```.*?```|~~~.*?~~~", re.S), "fenced code block"),
    (re.compile(r"<!--.*?-->", re.S), "HTML comment"),
    (re.compile(r"\$\$.*?\$\$", re.S), "display math"),
    (re.compile(r"\{[\w:.-]+\}`[^`]*`"), "MyST role with its content (glue, doc, cite, download)"),
    (re.compile(r"`[^`]*`"), "inline code"),
    (re.compile(r"(?<![\\$])\$[^$\n]+\$"), "inline math"),
    (re.compile(r"\]\([^)]*\)"), "link target"),
    (re.compile(r"https?://\S+"), "URL"),
)
#: a number: digits (thousands separators, decimals, k/M/B suffix) not glued to a name
NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z][-/])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[kMB](?!\w))?(?![\w])(?!\.\d)")

#: (pattern, why the numbers it covers cannot go stale); a number inside a match is allowed
ALLOWED = tuple((re.compile(p.replace(" ", r"\s+"), re.M), why) for p, why in (
    # mathematics and references
    (r"(?<![\d.,])[01](?![\d.,]\d)", "mathematical 0 and 1 (r > 0, rank 0, 1-based)"),
    (r"^\s*\d+\.\s", "ordered-list marker"),
    (r"(?:Supp(?:lementary)?\.?\s+)?(?:Figs?|Figure|Table)\.?\s+\d+[a-z]?(?:\s*[–-]\s*[a-z])?"
     r"(?:(?:,|\s+and)\s+(?:Figs?\.?\s+)?\d+[a-z]?)*", "figure or table reference"),
    (r"§\s*\d+(?:\.\d+)?", "section reference"),
    (r"\bchapters?\s+\d{2}(?:\s+and\s+\d{2})?", "chapter number"),
    (r"\b(?:199\d|20[0-2]\d)\b", "year (1990–2029)"),
    (r"\b[23]-D\b", "2-D and 3-D (dimensions of a view)"),
    # NSD's design (allen2022; brainllm_utils.nsd)
    (r"\b3\s*(?:×|-trial|times\b)", "NSD shows each image 3 times"),
    (r"\b8 subjects × 40 sessions|\b8\s+(?:NSD\s+)?subjects\b|\bhad 8\b", "NSD's 8 subjects"),
    (r"\b30\s*(?:–|to)\s*40\b(?:\s+sessions)?", "NSD's 30–40 sessions per subject"),
    (r"\b750(?:-trial|\s+trials)", "NSD's 750-trial sessions"),
    (r"~?10,000\s+(?:natural scenes|distinct images|images)", "NSD's ~10,000 images per subject"),
    (r"\b73(?:,000|k)\b", "NSD's 73,000 images"),
    (r"\b50,287 on full COCO 2017", "COCO 2017's images outside NSD (123,287 − 73,000)"),
    (r"\b327,684 vertices", "fsaverage's 327,684 vertices (NSD's surface betas)"),
    (r"\b10,242 vertices|\b20,484 vertices", "fsaverage5 mesh sizes"),
    (r"\b1\.8\s*mm", "NSD's 1.8 mm functional voxels"),
    (r"~84 GB for 1\.8 mm", "the original pipeline's RAM for one subject's volume (paper_methods §8.7)"),
    (r"Conceptual Captions (?:\{cite:p\}`\w+` )?\(3\.3M captions\)", "the size of Google Conceptual Captions"),
    # the paper's method (shared/docs/paper_methods.md), stated as the method
    (r"\b100(?:-image|\s+images\b)|\bsets? of 100\b", "the paper's 100-image sample sets"),
    (r"\bradius 6 voxels|\b6 voxels", "the paper's searchlight radius"),
    (r"\b[qp]\s*[=<]\s*0\.05\b", "the paper's significance level"),
    (r"\b5-fold\b", "5-fold cross-validation (the paper's and the package's)"),
    (r"\b768(?:-d|\s+embedding dimensions)", "MPNet's 768-d embedding"),
    (r"\b(?:its\s+)?10 seeds|\(paper: 10\)", "the paper's 10 seeds per objective"),
    (r"\b200 epochs", "the paper's 200 training epochs"),
    (r"\b10-layer\b", "the paper's 10-layer BLT-vNet"),
    (r"Adam lr 0\.05, eps 0\.1, batch 96", "the paper's transfer-readout optimiser"),
    (r"last 2,000 held out|the last 2,000\b", "the paper's 2,000 held-out transfer images"),
    # the default ridge-penalty grids named in a deviation (shown in the parameters cell)
    (r"\b1[35] log-spaced values(?: from 1 to 10⁷)?", "a default ridge-penalty grid"),
))


def _blank(text: str) -> str:
    for rx, _ in NOT_PROSE:
        text = rx.sub(lambda m: re.sub(r"[^\n]", " ", m.group()), text)
    return text


def typed_numbers(markdown: str) -> list[tuple[str, str]]:
    """Numbers typed into ``markdown``'s prose that the allow-list does not cover.

    Parameters
    ----------
    markdown : str
        One markdown cell or page.

    Returns
    -------
    list of (str, str)
        Each offending number and the text around it.
    """
    text = _blank(markdown)
    allowed = [(m.start(), m.end()) for rx, _ in ALLOWED for m in rx.finditer(text)]
    out = []
    for m in NUMBER.finditer(text):
        if not any(a <= m.start() and m.end() <= b for a, b in allowed):
            out.append((m.group(), " ".join(text[max(0, m.start() - 50):m.end() + 30].split())))
    return out


def _pages():
    pages = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")) + [REPO_ROOT / "book" / "intro.md"]
    assert len(pages) >= 9, pages  # chapters 00–07 and the intro
    return pages


def _markdown_cells(path: Path):
    if path.suffix == ".md":
        return [("page", path.read_text())]
    nb = nbformat.read(path, as_version=4)
    return [(c.get("id", str(i)), c.source) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"]


@pytest.mark.parametrize("path", _pages(), ids=lambda p: p.name)
def test_no_typed_numbers_in_the_prose(path):
    bad = [f"{cid}: {num!r} in …{ctx}…" for cid, src in _markdown_cells(path) for num, ctx in typed_numbers(src)]
    assert not bad, (f"{path.name}: numbers typed into markdown (glue them from the run or the reference data, "
                     "see this test's docstring):\n" + "\n".join(bad))


@pytest.mark.parametrize("text, caught", [
    ("On the default sandbox the spaces correlate (r ≈ 0.9).", ["0.9"]),
    ("On the default sandbox (seeds 0 and 1, 4 subjects) the network wins.", ["4"]),
    ("the paper's 515 shared test images", ["515"]),
    ("noise-ceiling-normalised RSA 0.43/0.47/0.39", ["0.43", "0.47", "0.39"]),
    ("trained on 1,000 images at 32 px for 8 epochs", ["1,000", "32", "8"]),
    ("a recurrent CNN trained on 48k images beat models trained on 940M", ["48k", "940M"]),
    ("held-out cosine 0.59 vs 0.56; floor 0.454", ["0.59", "0.56", "0.454"]),
    ("the lateral ROI is 70 % driven by interactions", ["70"]),
    ("alignment grows (0.12 → 0.17) from 250 to 1,000 images", ["0.12", "0.17", "250", "1,000"]),
    ("the paper had 10 subjects", ["10"]),
])
def test_the_scanner_catches_planted_numbers(text, caught):
    assert [n for n, _ in typed_numbers(text)] == caught


@pytest.mark.parametrize("text", [
    "r = {glue:text}`ch05_diff_ventral` in ventral cortex, {glue:text}`ch05_n_subjects` subjects",
    "as the paper's Fig. 1c–d and Fig. 4b (Supp. Fig. 10; Figs 1, 2; §7 of the methods)",
    "Each subject's 3×-seen images, the paper's 100-image sets, BH-FDR at q = 0.05",
    "parameters `n_sets = 2` and `seeds = [0, 1]`, {doc}`02_rsa`, {cite:p}`doerig2025`",
    "```python\nseeds = list(range(10))\nn_val = 2051\n```",
    "ResNet50, fsaverage5, BLEU-4, ViT-B/32, subj01, RQ4, EfficientNet-Lite0 and COCO 2017",
    "the noise ceiling $\\mathrm{NC} = 100\\,\\mathrm{ncsnr}^2 / (\\mathrm{ncsnr}^2 + 1/3)$",
    "1. **RQ1**: first\n2. **RQ2**: second",
    "The same map in 3-D, a 2-D flat map",
    "NSD's 8 subjects, 30–40 sessions of 750 trials, 327,684 vertices, 1.8 mm volumes",
])
def test_the_allow_list_passes_what_cannot_go_stale(text):
    assert typed_numbers(text) == []


def test_a_planted_number_in_a_real_notebook_fails(tmp_path):
    """The page test itself fails when a typed number is added to a chapter's markdown."""
    src = REPO_ROOT / "notebooks" / "02_rsa.ipynb"
    nb = nbformat.read(src, as_version=4)
    assert not [n for c in nb.cells if c.cell_type == "markdown" for n in typed_numbers(c.source)]
    nb.cells.append(nbformat.v4.new_markdown_cell("On the default sandbox `mpnet` wins ventral cortex by 0.12."))
    planted = tmp_path / "02_rsa.ipynb"
    nbformat.write(nb, planted)
    with pytest.raises(AssertionError, match=r"'0\.12'"):
        test_no_typed_numbers_in_the_prose(planted)
