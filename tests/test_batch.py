"""brainllm_utils.batch: grid planning, validation, resumability, Dask vs serial."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from brainllm_utils import batch, book
from brainllm_utils.nsd import NSD
from brainllm_utils.book import batch as _batch
from brainllm_utils.paths import REPO_ROOT


def _notebook(path: Path, params: str, *cells: str) -> Path:
    nb = new_notebook()
    p = new_code_cell(params)
    p.metadata["tags"] = ["parameters"]
    nb.cells = [new_markdown_cell(f"# {path.stem}"), p] + [new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def toy_notebooks(tmp_path):
    """Two quick notebooks: 01_square prints x², 02_fail raises when x == 3; 03_wait waits
    while a flag file exists (to be killed mid-run)."""
    src = tmp_path / "nbs"
    _notebook(src / "01_square.ipynb", "data_home = None\nx = 1", "print('square', x * x)")
    _notebook(src / "02_fail.ipynb", "data_home = None\nx = 1",
              "if x == 3:\n    raise RuntimeError('planted failure for x=3')\nprint('ok', x)")
    _notebook(src / "03_wait.ipynb", "data_home = None\nflag = ''",
              "import os, time\nwhile flag and os.path.exists(flag):\n    time.sleep(0.1)\n"
              "print('done')")
    return src


def test_plan_expands_the_grid_only_where_declared(tiny_root, tmp_path):
    jobs = batch.plan_jobs(["00_data_tour", "02_rsa"], grid={"subject": ["subj01", "subj02"]},
                           data_home=tiny_root, output_dir=tmp_path)
    names = [j.output.name for j in jobs]
    assert names == ["00_data_tour__subject-subj01.ipynb", "00_data_tour__subject-subj02.ipynb",
                     "02_rsa.ipynb"]
    assert jobs[1].parameters["subject"] == "subj02"
    assert jobs[0].parameters["data_home"] == str(Path(tiny_root).resolve())
    assert "subject" not in jobs[2].parameters
    assert len({j.fingerprint for j in jobs}) == 3


def test_paper_profile_applies_the_paper_settings(tiny_root, tmp_path):
    assert batch.profile_for(tiny_root) == "sandbox"
    (job,) = batch.plan_jobs(["02_rsa"], data_home=tiny_root, profile="paper",
                             output_dir=tmp_path)
    assert job.parameters["searchlight_radius"] == 6
    assert job.parameters["n_sets"] is None
    (job,) = batch.plan_jobs(["02_rsa"], data_home=tiny_root, output_dir=tmp_path)
    assert "searchlight_radius" not in job.parameters
    (job,) = batch.plan_jobs(["05_image_to_llm"], data_home=tiny_root, profile="paper", output_dir=tmp_path)
    assert job.parameters["searchlight_radius"] == 6 and job.parameters["searchlight_n_sets"] is None


def test_smoke_profile_applies_quick_sizes_on_top(tiny_root, tmp_path):
    (job,) = batch.plan_jobs(["02_rsa"], data_home=tiny_root, smoke=True, output_dir=tmp_path)
    assert job.parameters["set_size"] == 12 and job.parameters["searchlight_radius"] == 2
    assert "smoke" not in job.parameters
    (job,) = batch.plan_jobs(["02_rsa"], data_home=tiny_root, profile="paper", smoke=True,
                             output_dir=tmp_path)
    assert job.parameters["searchlight_radius"] == 2 and job.parameters["n_sets"] == 1
    (job,) = batch.plan_jobs(["02_rsa"], data_home=tiny_root, smoke=True, fixed={"set_size": 20},
                             output_dir=tmp_path)
    assert job.parameters["set_size"] == 20, "an explicit value beats the smoke size"
    (job,) = batch.plan_jobs(["05_image_to_llm"], data_home=tiny_root, smoke=True, output_dir=tmp_path)
    assert job.parameters["preset"] == "tiny" and job.parameters["transfer_on_sample_sets"] is True
    (job,) = batch.plan_jobs(["00_data_tour"], data_home=tiny_root, smoke=True, output_dir=tmp_path)
    assert set(job.parameters) == {"data_home", "output_dir"}  # the batch sets both; no smoke sizes


def test_run_sizes_live_in_parameter_cells_and_profiles():
    """Profiles name parameters their notebook declares; no notebook overrides its sizes."""
    for profile, per_notebook in batch.PROFILES.items():
        for stem, overrides in per_notebook.items():
            (source,) = _batch.list_notebooks([stem])
            unknown = set(overrides) - set(_batch.notebook_parameters(source))
            assert not unknown, f"PROFILES[{profile!r}][{stem!r}]: {unknown} not declared"
    for source in _batch.list_notebooks():
        code = "".join("".join(c["source"]) for c in json.loads(source.read_text())["cells"]
                       if c["cell_type"] == "code")
        assert "smoke" not in _batch.notebook_parameters(source), source.name
        assert "if smoke" not in code and "BRAINLLM_RUN" not in code, source.name


def test_every_chapter_job_gets_its_output_name_as_run_name(tiny_root, tmp_path):
    jobs = batch.plan_jobs(["00_data_tour", "02_rsa"], grid={"seed": [0, 1]}, data_home=tiny_root,
                           output_dir=tmp_path)
    assert {j.name: j.parameters.get("run_name") for j in jobs} == {
        "00_data_tour__seed-0": None, "00_data_tour__seed-1": None,
        "02_rsa__seed-0": "02_rsa__seed-0", "02_rsa__seed-1": "02_rsa__seed-1"}
    (job,) = batch.plan_jobs(["04_decoding"], data_home=tiny_root, output_dir=tmp_path)
    assert job.parameters["run_name"] == "04_decoding"


def test_run_name_reaches_the_notebook_without_an_environment_variable(tiny_root, tmp_path,
                                                                        monkeypatch):
    monkeypatch.delenv("BRAINLLM_RUN", raising=False)
    src = tmp_path / "nbs"
    _notebook(src / "01_named.ipynb", "data_home = None\nrun_name = None\nx = 1",
              "import os\nprint('run', run_name, os.environ.get('BRAINLLM_RUN'))")
    jobs = batch.plan_jobs(["01_named"], grid={"x": [1, 2]}, data_home=tiny_root,
                           output_dir=tmp_path / "out", notebook_dir=src)
    batch.run_jobs(jobs, scheduler="serial", progress=False)
    for job in jobs:
        nb = json.loads(job.output.read_text())
        printed = "".join("".join(o["text"]) for c in nb["cells"] for o in c.get("outputs", [])
                          if o.get("name") == "stdout")
        assert f"run {job.name} None" in printed


def test_rendered_parameters_give_paths_relative_to_the_notebook(tiny_root, tmp_path, monkeypatch,
                                                                 capfd):
    """With the data and the executed notebooks inside the repository, the injected parameters
    cell gives data_home and output_dir relative to the notebook's folder (not the builder's
    absolute path); the notebook reads its data in the batch and again when run from its own
    folder, as Jupyter runs it; the batch's output has no kernel transport warning."""
    from brainllm_utils.book import _execute

    root = Path(tiny_root).resolve()
    repo = Path(os.path.commonpath([root, tmp_path.resolve()]))  # stands in for the repository
    monkeypatch.setattr(_execute, "REPO_ROOT", repo)
    src = tmp_path / "nbs"
    _notebook(src / "01_paths.ipynb", "data_home = None\noutput_dir = None",
              "import os\nfrom brainllm_utils.nsd import NSD\n"
              "print('subjects', NSD(data_home).subjects, os.path.isdir(output_dir))")
    out = tmp_path / "book" / "notebooks"
    (job,) = batch.plan_jobs(["01_paths"], data_home=root, output_dir=out, notebook_dir=src)
    assert job.parameters["data_home"] == str(root)  # absolute for validation and the manifest
    capfd.readouterr()
    batch.run_jobs([job], scheduler="serial", progress=False)
    assert "without encryption" not in capfd.readouterr().err
    subjects = f"subjects {NSD(root).subjects} True"

    def injected_and_printed(path):
        nb = json.loads(path.read_text())
        cell = next(c for c in nb["cells"] if "injected-parameters" in c["metadata"].get("tags", []))
        printed = "".join("".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", []))
        return "".join(cell["source"]), printed

    source, printed = injected_and_printed(job.output)
    assert f'data_home = "{os.path.relpath(root, out)}"' in source
    assert 'output_dir = "."' in source and str(repo) not in source
    assert subjects in printed
    assert json.loads(job.output.read_text())["metadata"]["brainllm"]["parameters"]["output_dir"] == "."
    # the executed notebook, run again in its own folder with its stored parameters
    book.execute_notebook(job.output, out / "again.ipynb")
    assert subjects in injected_and_printed(out / "again.ipynb")[1]


@pytest.mark.parametrize("kwargs, named", [
    ({"grid": {"subject": ["subj01", "subj09"]}}, "subj09"),
    ({"fixed": {"feature_spaces": ["mpnet", "bogus_space"]}}, "bogus_space"),
    ({"fixed": {"comparison_models": ["alexnet", "no_such_net"]}}, "no_such_net"),
    ({"fixed": {"preset": "huge"}}, "preset='huge'"),
    ({"fixed": {"device": "tpu"}}, "device='tpu'"),
    ({"fixed": {"subjekt": "subj01"}}, "subjekt"),
    ({"data_home": "/no/such/nsd"}, "/no/such/nsd"),
    ({"profile": "fancy"}, "fancy"),
    ({"fixed": {"run_name": "mine"}}, "run_name"),
    ({"grid": {"run_name": ["a", "b"]}}, "run_name"),
])
def test_bad_parameters_fail_before_anything_runs(tiny_root, tmp_path, kwargs, named):
    kwargs.setdefault("data_home", tiny_root)
    with pytest.raises(batch.BatchParameterError) as err:
        batch.plan_jobs(None, output_dir=tmp_path, **kwargs)
    assert named in str(err.value)
    assert not any(tmp_path.iterdir())


def test_not_an_nsd_root_is_named(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(batch.BatchParameterError, match="not an NSD root"):
        batch.plan_jobs(["00_data_tour"], data_home=tmp_path / "empty", output_dir=tmp_path)


def test_cli_reports_a_bad_subject_with_rc_2(tiny_root, tmp_path, capsys):
    rc = batch.main(["run", "00_data_tour", "--data", str(tiny_root), "--grid",
                     "subject=subj01,subj42", "--output-dir", str(tmp_path / "out")])
    assert rc == 2
    assert "subj42" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_cli_grid_and_set_parsing():
    grid = _batch._parse_assignments(['subjects=[["subj01"], ["subj02"]]', "seed=0,1"], True)
    assert grid == {"subjects": [["subj01"], ["subj02"]], "seed": [0, 1]}
    fixed = _batch._parse_assignments(["feature=mpnet", "n_sets=null", "q=0.1"], False)
    assert fixed == {"feature": "mpnet", "n_sets": None, "q": 0.1}
    with pytest.raises(batch.BatchParameterError, match="NAME=VALUE"):
        _batch._parse_assignments(["oops"], False)


def test_fingerprint_follows_parameters_inputs_and_source(tiny_root, tree_copy, tmp_path):
    def fp(**kw):
        kw.setdefault("data_home", tiny_root)
        return batch.plan_jobs(["00_data_tour"], output_dir=tmp_path, **kw)[0].fingerprint

    base = fp()
    assert fp() == base
    assert fp(fixed={"seed": 1}) != base
    copy = tree_copy()
    before = batch.data_fingerprint(copy)
    target = next(p for p in sorted(copy.rglob("*.tsv")))
    target.unlink()
    target.write_text("changed\n")
    assert batch.data_fingerprint(copy) != before


def test_failed_cell_fails_loudly_and_leaves_no_output(toy_notebooks, tiny_root, tmp_path):
    out = tmp_path / "out"
    jobs = batch.plan_jobs(["01_square", "02_fail"], grid={"x": [2, 3]}, data_home=tiny_root,
                           output_dir=out, notebook_dir=toy_notebooks)
    with pytest.raises(batch.BatchError, match="02_fail__x-3") as err:
        batch.run_jobs(jobs, scheduler="serial", progress=False)
    status = {r.job.name: r.status for r in err.value.results}
    assert status == {"01_square__x-2": "executed", "01_square__x-3": "executed",
                      "02_fail__x-2": "executed", "02_fail__x-3": "failed"}
    assert "planted failure for x=3" in str(err.value)
    assert not (out / "02_fail__x-3.ipynb").exists()
    assert (out / ".failed" / "02_fail__x-3.ipynb").exists()
    assert not list(out.glob(".*.ipynb.*"))
    manifest = batch.read_manifest(out / "manifest.json")["notebooks"]
    assert sorted(manifest) == ["01_square__x-2.ipynb", "01_square__x-3.ipynb",
                                "02_fail__x-2.ipynb"]
    entry = manifest["01_square__x-3.ipynb"]
    assert entry["parameters"]["x"] == 3 and entry["seconds"] > 0
    assert entry["versions"]["numpy"] and "rev" in entry["git"]
    nb = json.loads((out / "01_square__x-3.ipynb").read_text())
    assert nb["metadata"]["brainllm"]["status"] == "complete"
    assert "".join(nb["cells"][0]["source"]).startswith("# 01_square (x = 3)")
    printed = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert "square 9" in "".join(printed[0]["text"])


def test_rerun_skips_finished_work_and_force_reruns(toy_notebooks, tiny_root, tmp_path):
    out = tmp_path / "out"

    def jobs(x=(1, 2)):
        return batch.plan_jobs(["01_square"], grid={"x": list(x)}, data_home=tiny_root,
                               output_dir=out, notebook_dir=toy_notebooks)

    first = batch.run_jobs(jobs(), scheduler="serial", progress=False)
    assert [r.status for r in first] == ["executed", "executed"]
    stamp = (out / "01_square__x-1.ipynb").stat().st_mtime_ns
    again = batch.run_jobs(jobs((1, 2, 4)), scheduler="serial", progress=False)
    assert [r.status for r in again] == ["skipped", "skipped", "executed"]
    assert (out / "01_square__x-1.ipynb").stat().st_mtime_ns == stamp
    forced = batch.run_jobs(jobs((1,)), scheduler="serial", progress=False, force=True)
    assert [r.status for r in forced] == ["executed"]
    # a changed source notebook invalidates its outputs
    src = toy_notebooks / "01_square.ipynb"
    nb = nbformat.read(src, as_version=4)
    nb.cells[-1].source = "print('square!', x * x)"
    nbformat.write(nb, src)
    assert [r.status for r in batch.run_jobs(jobs((1,)), scheduler="serial",
                                              progress=False)] == ["executed"]


def test_killed_run_resumes(toy_notebooks, tiny_root, tmp_path):
    out = tmp_path / "out"
    flag = tmp_path / "hold"
    flag.write_text("x")
    cmd = [sys.executable, "-m", "brainllm_utils.batch", "run", "01_square", "03_wait",
           "--data", str(tiny_root), "--notebook-dir", str(toy_notebooks), "--output-dir",
           str(out), "--scheduler", "serial", "--set", f"flag={json.dumps(str(flag))}"]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not list(out.glob(".03_wait.ipynb.*")) and time.time() < deadline:
            time.sleep(0.2)
        assert (out / "01_square.ipynb").exists(), "the first notebook should have finished"
        time.sleep(1.0)  # 03_wait is now running and waiting on the flag
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "03_wait.ipynb").exists()
    flag.unlink()
    jobs = batch.plan_jobs(["01_square", "03_wait"], fixed={"flag": str(flag)},
                           data_home=tiny_root, output_dir=out, notebook_dir=toy_notebooks)
    results = batch.run_jobs(jobs, scheduler="serial", progress=False)
    assert [r.status for r in results] == ["skipped", "executed"]
    assert (out / "03_wait.ipynb").exists()
    assert not list(out.glob(".*.ipynb.*")), "temporary files of the killed run remain"


def test_a_second_run_on_the_same_folder_is_refused(tmp_path):
    with _batch._output_lock(tmp_path):
        with pytest.raises(RuntimeError, match="another batch run"):
            with _batch._output_lock(tmp_path):
                pass


@pytest.mark.slow
def test_local_cluster_and_serial_give_identical_results(tiny_root, tmp_path):
    """The same grid (two subjects of the data tour) on a 2-worker LocalCluster and serially,
    each with its own empty cache: the executed notebooks' outputs are identical."""
    digests = {}
    for scheduler in ("local", "serial"):
        jobs = batch.plan_jobs(["00_data_tour"], grid={"subject": ["subj01", "subj02"]},
                               data_home=tiny_root, smoke=True, output_dir=tmp_path / scheduler)
        results = batch.run_jobs(jobs, scheduler=scheduler, workers=2, progress=False,
                                 env={"BRAINLLM_CACHE": str(tmp_path / f"cache_{scheduler}")})
        assert [r.status for r in results] == ["executed", "executed"]
        digests[scheduler] = [r.digest for r in results]
        manifest = batch.read_manifest(tmp_path / scheduler / "manifest.json")["notebooks"]
        assert {e["scheduler"] for e in manifest.values()} == {scheduler}
        if scheduler == "local":
            assert len({e["worker"] for e in manifest.values()}) == 2, "one worker did it all"
    assert digests["local"] == digests["serial"]
    assert digests["local"][0] != digests["local"][1]


def test_slurm_cluster_is_configured_through_dask_jobqueue():
    cluster = batch.make_cluster("slurm", workers=0, threads=4, queue="gpu", memory="64GB",
                                 walltime="02:00:00", job_extra_directives=["--gres=gpu:1"])
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -p gpu" in script
    assert "#SBATCH --gres=gpu:1" in script
    assert "#SBATCH -t 02:00:00" in script
    assert "--nthreads 4" in script


def test_slurm_cores_option_is_the_job_cores_and_conflicts_are_refused():
    """``--slurm cores=1`` used to fail with "got multiple values for keyword argument 'cores'"."""
    cluster = batch.make_cluster("slurm", workers=0, cores=3, memory="4GB")
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "--nthreads 3" in script and "#SBATCH --mem=4G" in script
    for bad, match in ((dict(threads=2, cores=4), "disagree"), (dict(cores=0), "positive int"),
                       (dict(processes=2), "processes"), (dict(n_workers=3), "n_workers")):
        with pytest.raises(ValueError, match=match):
            batch.make_cluster("slurm", workers=0, memory="4GB", **bad)


def test_summary_runs_last_and_follows_its_inputs(tiny_root, tmp_path):
    jobs = batch.plan_jobs(["01_feature_spaces", "06_summary"], data_home=tiny_root,
                           output_dir=tmp_path)
    assert [j.wave for j in jobs] == [0, 1]
    changed = batch.plan_jobs(["01_feature_spaces", "06_summary"], fixed={"seed": 1},
                              data_home=tiny_root, output_dir=tmp_path)
    assert changed[1].parameters == jobs[1].parameters
    assert changed[1].fingerprint != jobs[1].fingerprint, "summary must rerun after its inputs"


def test_summary_follows_the_committed_results_it_reads(tiny_root, tmp_path, monkeypatch):
    """make positive rewrites book/results/positive_world_findings.json: the summary page (and
    only it) must rerun."""
    monkeypatch.setattr(_batch, "BOOK_RESULTS", tmp_path / "results")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "world.json").write_text("{}")

    def plan():
        return batch.plan_jobs(["01_feature_spaces", "06_summary"], data_home=tiny_root,
                               output_dir=tmp_path / "out")

    before = plan()
    (tmp_path / "results" / "world.json").write_text('{"rows": []}')
    after = plan()
    assert after[0].fingerprint == before[0].fingerprint, "a chapter does not read book/results"
    assert after[1].fingerprint != before[1].fingerprint, "the summary must rerun"


def test_cost_hints_order_the_longest_first():
    hints = {p.stem: _batch._cost_hint(p) for p in _batch.list_notebooks()}
    assert all(v > 0 for v in hints.values()), hints
    assert max(hints, key=hints.get) == "05_image_to_llm"


def test_sessions_are_validated_against_the_files_on_disk(tiny_root, tree_copy, tmp_path):
    jobs = batch.plan_jobs(["03_encoding"], fixed={"sessions": "1-2"}, data_home=tiny_root, output_dir=tmp_path)
    assert jobs[0].parameters["sessions"] == "1-2"  # passed through to the notebook
    batch.validate_parameters("03_encoding", {"sessions": [1, 2], "subjects": ["subj01"]}, tiny_root)
    batch.validate_parameters("01_feature_spaces", {"sessions": "1-3", "subject": "subj01"}, tiny_root)
    for value, named in [("1-3", "subj03 has sessions 1..2"), ("x", "sessions='x'"), ([0], "1-based"),
                         ({"subj01": "1-2"}, "no entry for subj02")]:
        with pytest.raises(batch.BatchParameterError, match=named):
            batch.validate_parameters("03_encoding", {"sessions": value}, tiny_root)
    root = tree_copy()
    (root / "nsddata_betas/ppdata/subj02/fsaverage/betas_fithrf_GLMdenoise_RR/lh.betas_session02.mgh").unlink()
    with pytest.raises(batch.BatchParameterError, match=r"subj02.*lh.betas_session02.mgh"):
        batch.validate_parameters("04_decoding", {"sessions": "1-2"}, root)
    batch.validate_parameters("04_decoding", {"sessions": "1-2", "subjects": [1, 3]}, root)
    rc = batch.main(["run", "03_encoding", "--data", str(tiny_root), "--set", "sessions=1-9",
                     "--output-dir", str(tmp_path / "out")])
    assert rc == 2 and not (tmp_path / "out").exists()


def test_the_manifest_records_the_data_used(tiny_root, tree_copy):
    source = _batch.NOTEBOOK_DIR / "03_encoding.ipynb"
    rec = batch.data_used_record({"data_home": str(tiny_root), "subjects": [1, 3], "sessions": "1-2"},
                                 notebook=source)
    assert rec["subjects"] == ["subj01", "subj03"]
    assert rec["sessions"] == {"subj01": [1, 2], "subj03": [1, 2]}
    root = tree_copy()
    (root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR/rh.betas_session03.mgh").unlink()
    with pytest.warns(UserWarning, match="subj01"):
        rec = batch.data_used_record({"data_home": str(root)}, notebook=source)  # the notebook's default: on disk
    assert rec["sessions"] == {"subj01": [1, 2], "subj02": [1, 2, 3], "subj03": [1, 2]}
    assert batch.data_used_record({"data_home": str(root)}, notebook=_batch.NOTEBOOK_DIR / "06_summary.ipynb") is None
    assert "error" in batch.data_used_record({"data_home": str(root), "sessions": [3]}, notebook=source)
    tour = batch.data_used_record({"data_home": str(tiny_root), "subject": "subj02"},
                                  notebook=_batch.NOTEBOOK_DIR / "00_data_tour.ipynb")
    assert tour["subjects"] == ["subj01", "subj02", "subj03"]  # the tour shows every subject
    one = batch.data_used_record({"data_home": str(tiny_root), "subject": "subj02"},
                                 notebook=_batch.NOTEBOOK_DIR / "01_feature_spaces.ipynb")
    assert one["subjects"] == ["subj02"]


def test_manifest_records_the_partial_data_a_chapter_exported(tree_copy, tiny_root, tmp_path, monkeypatch):
    """Issue 15: data left out (here a session missing on disk) is in the batch's manifest too."""
    root = tree_copy()
    for f in (root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR").glob("*session02*"):
        f.unlink()
    results = tmp_path / "results"
    monkeypatch.setenv("BRAINLLM_RESULTS", str(results))
    src = tmp_path / "nbs"
    code = ("from brainllm_utils import export\nfrom brainllm_utils.nsd import NSD\n"
            "nsd = NSD(data_home)\nnsd.betas('subj01', progress=False, cache=False)\n"
            "export.ExportFolder(run_name or '01_partial', nsd=nsd).close()")
    _notebook(src / "01_partial.ipynb", "data_home = None\nrun_name = None", code)
    _notebook(src / "02_plain.ipynb", "data_home = None\nx = 1", "print(x)")
    out = tmp_path / "out"
    jobs = batch.plan_jobs(["01_partial", "02_plain"], data_home=root, output_dir=out, notebook_dir=src)
    assert [r.status for r in batch.run_jobs(jobs, scheduler="serial", progress=False)] == ["executed"] * 2
    entries = batch.read_manifest(out / "manifest.json")["notebooks"]
    partial = entries["01_partial.ipynb"]["partial_data"]
    assert [e["kind"] for e in partial] == ["sessions-missing"], partial
    assert partial[0]["subject"] == "subj01" and "2" in str(partial[0]["session"])
    assert entries["02_plain.ipynb"]["partial_data"] is None  # exports nothing
    # an export older than the job is another run's: not reported as this one's
    assert batch.exported_partial_data(jobs[0], started="2999-01-01T00:00:00+00:00") is None
    # a complete copy exports an empty record
    full = tmp_path / "out-full"
    jobs = batch.plan_jobs(["01_partial"], data_home=tiny_root, output_dir=full, notebook_dir=src)
    assert [r.status for r in batch.run_jobs(jobs, scheduler="serial", progress=False)] == ["executed"]
    assert batch.read_manifest(full / "manifest.json")["notebooks"]["01_partial.ipynb"]["partial_data"] == []


def test_local_cluster_workers_run_without_the_profiler():
    """make_cluster("local") starts its workers with LOCAL_DASK_CONFIG (no 10 ms stack
    sampler, a 2 s resource monitor), and leaves this process's Dask configuration as it was."""
    import dask
    from distributed import Client

    before = dask.config.get("distributed.worker.profile.enabled")
    with batch.make_cluster("local", workers=1) as cluster, Client(cluster) as client:
        got = client.run(lambda: (dask.config.get("distributed.worker.profile.enabled"),
                                  dask.config.get("distributed.admin.system-monitor.interval")))
    assert list(got.values()) == [(False, "2s")]
    assert dask.config.get("distributed.worker.profile.enabled") == before


def test_local_cluster_runs_the_longest_waiting_job_next(tiny_root, tmp_path):
    """On a 1-worker LocalCluster, jobs start one at a time in decreasing cost (the last
    run's seconds in the manifest): the longest first, whatever the planning order."""
    jobs = batch.plan_jobs(["00_data_tour"], grid={"subject": ["subj01", "subj02"]},
                           data_home=tiny_root, smoke=True, output_dir=tmp_path)
    manifest = tmp_path / "manifest.json"
    # the planning order's last job was the longest last time
    manifest.write_text(json.dumps({"notebooks": {
        jobs[0].output.name: {"seconds": 5.0}, jobs[1].output.name: {"seconds": 500.0}}}))
    results = batch.run_jobs(jobs, scheduler="local", workers=1, progress=False, force=True,
                             env={"BRAINLLM_CACHE": str(tmp_path / "cache")})
    assert [r.status for r in results] == ["executed", "executed"]
    entries = batch.read_manifest(manifest)["notebooks"]
    first, second = (entries[j.output.name] for j in jobs)
    assert second["started"] < second["finished"] <= first["started"], (first, second)


def test_kernels_on_local_workers_do_not_inherit_the_nannys_malloc_setting(tiny_root, tmp_path,
                                                                          monkeypatch):
    """A Dask nanny sets MALLOC_TRIM_THRESHOLD_=65536 in its worker (glibc then gives freed
    memory back at once, and a kernel re-faults every large temporary): a notebook's kernel on
    a local worker gets this process's value instead, unset when it has none; the thread
    variables are still the batch's, and env= still overrides."""
    src = tmp_path / "nbs"
    code = ("import json, os\nkeys = ['MALLOC_TRIM_THRESHOLD_', 'OMP_NUM_THREADS', 'MINE']\n"
            "json.dump({k: os.environ.get(k) for k in keys}, open(out, 'w'))")
    _notebook(src / "01_env.ipynb", "out = None", code)
    seen = {}
    for case, client_value, extra in (("unset", None, {}), ("set", "131072", {"MINE": "1"})):
        if client_value is None:
            monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
        else:
            monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", client_value)
        target = tmp_path / f"{case}.json"
        jobs = batch.plan_jobs(["01_env"], fixed={"out": str(target)}, data_home=tiny_root,
                               notebook_dir=src, output_dir=tmp_path / case)
        results = batch.run_jobs(jobs, scheduler="local", workers=1, threads=2, progress=False,
                                 env=extra)
        assert [r.status for r in results] == ["executed"], results
        seen[case] = json.loads(target.read_text())
    assert seen["unset"] == {"MALLOC_TRIM_THRESHOLD_": None, "OMP_NUM_THREADS": "2", "MINE": None}
    assert seen["set"] == {"MALLOC_TRIM_THRESHOLD_": "131072", "OMP_NUM_THREADS": "2", "MINE": "1"}


def test_environment_sets_unsets_and_restores(monkeypatch):
    monkeypatch.setenv("BRAINLLM_T_A", "a")
    monkeypatch.delenv("BRAINLLM_T_B", raising=False)
    with _batch._environment({"BRAINLLM_T_A": None, "BRAINLLM_T_B": 3}):
        assert "BRAINLLM_T_A" not in os.environ and os.environ["BRAINLLM_T_B"] == "3"
    assert os.environ["BRAINLLM_T_A"] == "a" and "BRAINLLM_T_B" not in os.environ


def test_a_given_client_gets_every_job_of_a_wave_at_once(toy_notebooks, tiny_root, tmp_path):
    """With a Client (or a scheduler address) every job of a wave is submitted at once
    (workers may join later): all are with the scheduler while the first still runs."""
    from distributed import Client, LocalCluster

    out, flag = tmp_path / "out", tmp_path / "flag"
    flag.write_text("")
    common = dict(data_home=tiny_root, output_dir=out, notebook_dir=toy_notebooks)
    jobs = batch.plan_jobs(["03_wait"], fixed={"flag": str(flag)}, **common) \
        + batch.plan_jobs(["01_square"], grid={"x": [2, 3]}, **common)
    seen = {}
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        import threading

        def watch():  # while 03_wait holds the only worker, the others wait with the scheduler
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                tasks = client.run_on_scheduler(lambda dask_scheduler: len(dask_scheduler.tasks))
                if tasks >= len(jobs):
                    seen["tasks"] = tasks
                    break
                time.sleep(0.2)
            flag.unlink()

        watcher = threading.Thread(target=watch)
        watcher.start()
        results = batch.run_jobs(jobs, scheduler=client, progress=False)
        watcher.join()
    assert seen.get("tasks") == len(jobs)
    assert [r.status for r in results] == ["executed"] * len(jobs)
