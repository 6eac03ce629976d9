"""The ``brainllm`` console command (brainllm_utils.book.cli): help, version, dispatch."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import pytest

import brainllm_utils
from brainllm_utils.book import cli
from brainllm_utils.paths import REPO_ROOT

#: subcommand → (module whose ``main`` it calls, that module's own argparse description words)
TARGETS = {
    "batch": "brainllm_utils.book.batch",
    "sandbox": "brainllm_utils.synth",
    "weights": "brainllm_utils.features.weights",
    "nsd": "brainllm_utils.nsd",
    "site-check": "brainllm_utils.book.site_check",
}


def _run(argv, capsys):
    """(exit status, stdout, stderr) of ``brainllm *argv`` in this process."""
    try:
        status = cli.main(argv)
    except SystemExit as exc:
        status = exc.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_help_lists_every_subcommand(capsys):
    status, out, _ = _run(["--help"], capsys)
    assert status == 0 and out.startswith("usage: brainllm ")
    for name in ("book", "batch", "sandbox", "weights", "nsd", "export", "site-check"):
        assert f"\n    {name}" in out, f"`brainllm --help` does not list {name}"
    assert set(cli.COMMANDS) == {"book", "export", *TARGETS}


def test_version_is_the_package_version(capsys):
    status, out, _ = _run(["--version"], capsys)
    assert status == 0 and out.strip() == f"brainllm {brainllm_utils.__version__}"


def test_unknown_or_missing_subcommand_is_a_usage_error(capsys):
    status, _, err = _run(["bogus"], capsys)
    assert status == 2 and "invalid choice: 'bogus'" in err
    status, _, err = _run([], capsys)
    assert status == 2 and "required: COMMAND" in err


@pytest.mark.parametrize("name", sorted(TARGETS) + ["book"])
def test_subcommand_help_is_the_targets_own(name, capsys):
    """`brainllm NAME --help` passes --help on: the usage line is the target's parser's,
    under the name `brainllm NAME`."""
    status, out, _ = _run([name, "--help"], capsys)
    assert status == 0
    assert out.startswith(f"usage: brainllm {name} "), out[:200]
    own = {"batch": "{run}", "sandbox": "--preset", "weights": "--cache-dir", "nsd": "{download,check}",
           "site-check": "--screenshots", "book": "--sandbox-preset"}[name]
    assert own in out


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_dispatch_reaches_the_targets_main_with_the_arguments(name, monkeypatch, capsys):
    import importlib

    module = importlib.import_module(TARGETS[name])
    calls = []

    def fake_main(argv=None, prog=None):
        calls.append((argv, prog))
        return 7

    monkeypatch.setattr(module, "main", fake_main)
    status, _, _ = _run([name, "x", "--flag", "-v", "--help"], capsys)
    assert calls == [(["x", "--flag", "-v", "--help"], f"brainllm {name}")]
    assert status == (0 if name == "sandbox" else 7)  # synth's main returns nothing


def test_sandbox_writes_a_real_tiny_sandbox(tmp_path, capsys):
    from brainllm_utils.synth import is_current, load_truth

    root = tmp_path / "sb"
    status, out, _ = _run(["sandbox", str(root), "--preset", "tiny", "--seed", "3", "--no-progress"], capsys)
    assert status == 0 and f"wrote {root}" in out
    assert is_current(root)
    assert load_truth(root)["seed"] == 3
    # a second run without --overwrite refuses, with the generator's message and no traceback
    status, _, err = _run(["sandbox", str(root), "--preset", "tiny"], capsys)
    assert status == 2 and "not empty" in err and "overwrite" in err


def test_nsd_check_runs_on_the_tiny_sandbox(tiny_root, capsys):
    status, out, _ = _run(["nsd", "check", str(tiny_root), "--profile", "sandbox"], capsys)
    assert status == 0, out[-2000:]


def test_weights_resolves_minilm(capsys):
    from brainllm_utils.features import MINILM

    status, out, err = _run(["weights", MINILM], capsys)
    assert status == 0, err
    path = Path(out.split(": ", 1)[1].strip())
    assert (path / "config.json").is_file()


def test_export_dispatches_lazily_or_says_unavailable(monkeypatch, capsys):
    monkeypatch.setattr(cli, "EXPORT_MODULE", "brainllm_utils._no_such_export_module")
    status, _, err = _run(["export", "--help"], capsys)
    assert status == 2 and "brainllm export: unavailable" in err
    calls = []
    fake = types.ModuleType("brainllm_fake_export")
    fake.main = lambda argv=None: calls.append(argv) or 0
    monkeypatch.setitem(sys.modules, "brainllm_fake_export", fake)
    monkeypatch.setattr(cli, "EXPORT_MODULE", "brainllm_fake_export")
    status, _, _ = _run(["export", "03_encoding", "--out", "x"], capsys)
    assert status == 0 and calls == [["03_encoding", "--out", "x"]]


def test_export_is_in_the_help_whether_or_not_it_exists(capsys):
    status, out, _ = _run(["--help"], capsys)
    assert "export" in out and cli.EXPORT_MODULE == "brainllm_utils.export"


# ----------------------------------------------------------------------------- brainllm book
def _fake_checkout(tmp_path: Path) -> Path:
    root = tmp_path / "checkout"
    (root / "notebooks").mkdir(parents=True)
    (root / "_config.yml").write_text("title: x\n")
    (root / "_toc.yml").write_text("root: index\n")
    return root


def test_book_refuses_outside_a_checkout(tmp_path, capsys):
    status = cli.run_book_command([], root=tmp_path)
    err = capsys.readouterr().err
    assert status == 2 and "not a source checkout" in err
    assert cli.source_checkout(REPO_ROOT)


def test_book_without_jupyter_book_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "find_jupyter_book", lambda: None)
    status = cli.run_book_command([], root=_fake_checkout(tmp_path))
    assert status == 2 and "brainllm-utils[book]" in capsys.readouterr().err


def test_jupyter_book_is_found_beside_the_interpreter():
    path = cli.find_jupyter_book()
    assert path is not None, "the book extra (jupyter-book) is installed by requirements.txt"
    assert path.parent == Path(sys.executable).parent


def test_book_runs_the_steps_of_make_book_in_order(tmp_path, monkeypatch, capsys):
    """Default sandbox missing → generated; then the batch, jupyter-book build and the site
    check, with make book's arguments; the steps themselves are recorded, not run."""
    root = _fake_checkout(tmp_path)
    for key in [*cli._BOOK_ENV, "NILEARN_DATA"]:  # restored after the test
        monkeypatch.setenv(key, "kept")
    monkeypatch.delenv("BRAINLLM_DATA", raising=False)
    monkeypatch.setattr(cli, "REPO_ROOT", root)
    monkeypatch.setattr(cli, "get_data_home", lambda: root / "data" / "sandbox")
    monkeypatch.setattr(cli, "find_jupyter_book", lambda: Path("/bin/jupyter-book"))
    steps = []
    monkeypatch.setattr(cli, "_batch", lambda argv, prog: steps.append(("batch", argv)) or 0)
    monkeypatch.setattr(cli, "_site_check", lambda argv, prog: steps.append(("site", argv)) or 0)
    monkeypatch.setattr(cli.subprocess, "run", lambda cmd, cwd: steps.append(("jb", cmd, cwd))
                        or subprocess.CompletedProcess(cmd, 0))
    status = cli.run_book_command(["02_rsa", "--sandbox-preset", "tiny", "--workers", "1"], root=root)
    assert status == 0
    from brainllm_utils.synth import is_current

    sandbox = root / "data" / "sandbox"
    assert is_current(sandbox), "the default sandbox was not generated"
    build = root / "_build"
    assert steps == [
        ("batch", ["run", "--data", str(sandbox), "--scheduler", "local", "--workers", "1", "--threads", "1",
                   "--timings", str(build / "notebook_timings.md"), "02_rsa"]),
        ("jb", ["/bin/jupyter-book", "build", str(root), "-W", "-n", "--keep-going"], root),
        ("site", [str(build / "html"), "--screenshots", str(build / "screenshots"), "--toc",
                  str(root / "_toc.yml"), "--if-available"]),
    ]
    assert "Book built:" in capsys.readouterr().out
    # a failing batch stops the build before Jupyter Book
    steps.clear()
    monkeypatch.setattr(cli, "_batch", lambda argv, prog: steps.append(("batch", argv)) or 1)
    assert cli.run_book_command(["--data", str(sandbox)], root=root) == 1
    assert [s[0] for s in steps] == ["batch"]


def test_batch_without_notebooks_is_an_error_not_an_empty_run(tmp_path, tiny_root, capsys):
    """Installed outside a checkout there are no notebooks: `brainllm batch run` says so."""
    status, _, err = _run(["batch", "run", "--data", str(tiny_root), "--notebook-dir", str(tmp_path),
                           "--output-dir", str(tmp_path / "out")], capsys)
    assert status == 2 and f"no notebooks (NN_*.ipynb) in {tmp_path}" in err



def test_export_reaches_the_export_module(tmp_path, capsys):
    """``brainllm export`` runs the real export CLI: ``list`` names a written table, ``check``
    passes on it and fails once the file no longer matches its manifest checksum."""
    import pandas as pd

    from brainllm_utils.chapters import ExportFolder

    folder = ExportFolder("06_summary", parameters={"seed": 0}, results_dir=tmp_path)
    folder.table("scores", pd.DataFrame({"subject": ["subj01", "subj02"], "r": [0.25, 0.5]}),
                 description="a test table")
    folder.close()
    status, out, _ = _run(["export", "list", str(tmp_path)], capsys)
    assert status == 0 and "scores.csv" in out
    assert _run(["export", "check", str(tmp_path)], capsys)[0] == 0
    csv = tmp_path / "06_summary" / "scores.csv"
    csv.write_text(csv.read_text().replace("0.25", "0.75"))
    assert _run(["export", "check", str(tmp_path)], capsys)[0] == 1
