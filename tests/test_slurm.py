"""The batch's SLURM path (``--scheduler slurm``): option checks without SLURM, and runs on a
real single-node SLURM (Debian's slurm-wlm + munge, started by ``.ci/slurm-up``).

The SLURM tests run where ``sbatch`` exists (starting SLURM with ``.ci/slurm-up`` when none
answers) and skip elsewhere; with ``BRAINLLM_REQUIRE_SLURM=1`` (CI) they fail instead of
skipping, with the reason.
"""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import textwrap
from pathlib import Path

import pytest

from brainllm_utils import batch
from brainllm_utils.book import batch as _batch
from brainllm_utils.paths import REPO_ROOT

REQUIRED = os.environ.get("BRAINLLM_REQUIRE_SLURM") == "1"


# ---------------------------------------------------------------- options (no SLURM needed)
def test_the_checked_options_are_exactly_dask_jobqueues_slurmcluster_keywords():
    """Every keyword of the installed SLURMCluster (its own, SLURMJob's and Job's) is either
    passed through (with a type) or refused (with a reason), and nothing else is listed."""
    from dask_jobqueue import SLURMCluster
    from dask_jobqueue.core import Job
    from dask_jobqueue.slurm import SLURMJob

    keywords = set()
    for fn in (SLURMCluster.__init__, SLURMJob.__init__, Job.__init__):
        keywords |= {name for name, p in inspect.signature(fn).parameters.items()
                     if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD}
    listed = set(_batch._SLURM_OPTIONS) | set(_batch._SLURM_REFUSED)
    assert not set(_batch._SLURM_OPTIONS) & set(_batch._SLURM_REFUSED)
    assert listed == keywords, (f"not handled: {sorted(keywords - listed)}; "
                                f"not SLURMCluster keywords: {sorted(listed - keywords)}")


@pytest.mark.parametrize("options, named", [
    ({"quue": "gpu"}, "'quue': not a dask_jobqueue.SLURMCluster option; accepted: account, "),
    ({"walltime": 4}, "walltime=4: expected str, got int"),
    ({"walltime": "4 hours"}, "[D-]HH:MM:SS"),
    ({"job_extra_directives": "--gres=gpu:1"}, "expected str list"),
    ({"job_script_prologue": ["ok", 3]}, "expected str list"),
    ({"memory": "lots"}, "memory='lots': expected an amount"),
    ({"memory": 0}, "expected an amount"),
    ({"job_mem": "4 GB"}, "SLURM's --mem"),
    ({"job_cpu": 0}, "job_cpu=0: expected a positive int"),
    ({"job_cpu": True}, "expected int"),
    ({"nanny": "yes"}, "nanny='yes': expected bool"),
    ({"scheduler_options": ["a"]}, "expected dict"),
    ({"security": "tls"}, "expected bool or Security"),
    ({"processes": 2}, "processes=2: not settable"),
    ({"n_workers": 3}, "the number of SLURM jobs is --workers"),
    ({"job_cls": object}, "job_cls"),
    ({"asynchronous": True}, "synchronously"),
    ({"project": "lab"}, "renamed 'account'"),
    ({"extra": ["--lifetime", "1h"]}, "renamed 'worker_extra_args'"),
    ({"env_extra": ["module load x"]}, "renamed 'job_script_prologue'"),
    ({"cores": 0}, "positive int"),
])
def test_bad_slurm_options_are_refused_with_a_message(options, named):
    with pytest.raises(ValueError) as err:
        batch.make_cluster("slurm", workers=0, **{"memory": "4GB", **options})
    assert named in str(err.value)


def test_the_start_timeout_must_be_positive():
    for bad in (0, -5, "300", True):
        with pytest.raises(ValueError, match="start_timeout"):
            batch.make_cluster("slurm", workers=0, memory="4GB", start_timeout=bad)


@pytest.mark.parametrize("options, expected", [
    ({"queue": "short", "account": "lab"}, ["#SBATCH -p short", "#SBATCH -A lab"]),
    ({"walltime": "1-12:00:00"}, ["#SBATCH -t 1-12:00:00"]),
    ({"job_cpu": 3}, ["#SBATCH --cpus-per-task=3"]),
    ({"job_mem": "3000M"}, ["#SBATCH --mem=3000M"]),
    ({"job_name": "nsd-run"}, ["#SBATCH -J nsd-run"]),
    ({"log_directory": "/scratch/logs"}, ["#SBATCH -o /scratch/logs/"]),
    ({"job_extra_directives": ["--gres=gpu:1"]}, ["#SBATCH --gres=gpu:1"]),
    ({"job_directives_skip": ["-t "]}, []),
    ({"job_script_prologue": ["source .venv/bin/activate"]}, ["source .venv/bin/activate"]),
    ({"worker_extra_args": ["--lifetime", "55m"]}, ["--lifetime 55m"]),
    ({"shebang": "#!/bin/bash -l"}, ["#!/bin/bash -l"]),
    ({"python": "/opt/py/bin/python"}, ["/opt/py/bin/python -m distributed"]),
    ({"local_directory": "/tmp/w"}, ["--local-directory /tmp/w"]),
    ({"death_timeout": 120}, ["--death-timeout 120"]),
    ({"nanny": False}, ["--no-nanny"]),
    ({"worker_command": "distributed.cli.dask_worker"}, ["-m distributed.cli.dask_worker"]),
])
def test_accepted_options_reach_the_job_script(options, expected):
    cluster = batch.make_cluster("slurm", workers=0, **{"memory": "4GB", "walltime": "01:00:00", **options})
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for text in expected:
        assert text in script, f"{text!r} not in\n{script}"
    if "job_directives_skip" in options:
        assert "#SBATCH -t" not in script


@pytest.fixture
def fake_sinfo(tmp_path, monkeypatch):
    """A ``sinfo`` on PATH that answers like a two-partition cluster (the format the batch
    asks for: partition|CPUs|memory MB|time limit, one line per node configuration)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "sinfo"
    script.write_text(textwrap.dedent("""\
        #!/bin/sh
        [ "$*" = "-h -o %P|%c|%m|%l" ] || { echo "unexpected: $*" >&2; exit 3; }
        echo 'short*|8|64000|2:00:00'
        echo 'long|16|128000+|infinite'
        echo 'long|4|16000|infinite'
        """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    return script


def _script(**kwargs) -> str:
    cluster = batch.make_cluster("slurm", workers=0, **kwargs)
    try:
        return cluster.job_script()
    finally:
        cluster.close()


def test_memory_and_walltime_default_to_what_the_partition_offers(fake_sinfo):
    # default partition: 64,000 MB / 8 CPUs per core; its 2 h limit is shorter than 4 h
    script = _script(threads=2)
    assert "#SBATCH --mem=16000M" in script and "#SBATCH -t 2:00:00" in script
    assert "#SBATCH -p" not in script
    # 'long': node types 16 CPUs/128,000 MB and 4 CPUs/16,000 MB; the smaller per-core share
    # of the nodes a 4-core job fits on
    script = _script(threads=4, queue="long")
    assert "#SBATCH --mem=16000M" in script and "#SBATCH -t 04:00:00" in script
    # 8 cores fit only the big nodes
    assert "#SBATCH --mem=64000M" in _script(cores=8, queue="long")
    # what the user gives wins; SLURM's --mem text also sets Dask's memory limit
    assert "#SBATCH --mem=5G" in _script(memory="5GB", walltime="00:30:00")
    script = _script(job_mem="3000M")
    assert "#SBATCH --mem=3000M" in script and "--memory-limit 2.93GiB" in script
    with pytest.raises(ValueError, match="more than any node of partition 'short'"):
        _script(threads=9)
    with pytest.raises(ValueError, match="no partition 'gpu'"):
        _script(queue="gpu")


def test_without_sinfo_the_memory_must_be_given(tmp_path, monkeypatch):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "sinfo").write_text("#!/bin/sh\necho 'sinfo: error: resolve_ctls_from_dns_srv' >&2\nexit 1\n")
    (bindir / "sinfo").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(ValueError, match="memory: not given.*resolve_ctls_from_dns_srv.*--slurm memory="):
        _script()
    assert "#SBATCH -t 04:00:00" in _script(memory="4GB")


def test_slurm_time_limits_are_read_in_minutes():
    assert _batch._minutes("infinite") == float("inf")
    assert _batch._minutes("UNLIMITED") == float("inf")
    assert _batch._minutes("1-00:00:00") == 1440
    assert _batch._minutes("4:00:00") == 240
    assert _batch._minutes("30:00") == 30
    assert _batch._minutes("45") == 45
    assert _batch._minutes("2-3") == 2 * 1440 + 3


def test_cli_refuses_a_bad_slurm_option_before_anything_runs(tiny_root, tmp_path, capsys):
    rc = batch.main(["run", "00_data_tour", "--data", str(tiny_root), "--scheduler", "slurm",
                     "--slurm", "memory=4GB", "--slurm", "quue=gpu", "--output-dir", str(tmp_path)])
    assert rc == 2
    assert "'quue': not a dask_jobqueue.SLURMCluster option" in capsys.readouterr().err
    rc = batch.main(["run", "00_data_tour", "--data", str(tiny_root), "--scheduler", "slurm",
                     "--slurm-start-timeout", "0", "--output-dir", str(tmp_path)])
    assert rc == 2
    assert not any(tmp_path.iterdir())


# ------------------------------------------------------------------- a real SLURM (sbatch)
def _sinfo_ok(env) -> bool:
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=env,
                             timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return out.returncode == 0 and any(s.strip().rstrip("*") in ("idle", "mixed", "allocated")
                                       for s in out.stdout.splitlines())


@pytest.fixture(scope="module")
def slurm():
    """A SLURM that answers: the configured one (``SLURM_CONF`` or ``/etc/slurm``) if its node
    is up, else one started by ``.ci/slurm-up`` (stopped afterwards if this started it)."""
    env = dict(os.environ)
    if shutil.which("sinfo") and _sinfo_ok(env):
        yield {"conf": env.get("SLURM_CONF"), "started": False}
        return
    why_not = None
    if not shutil.which("sbatch"):
        why_not = "no SLURM on this machine (sbatch not found)"
    elif os.geteuid() != 0:
        why_not = "no SLURM answers and .ci/slurm-up needs root to start one"
    if why_not:
        if REQUIRED:
            pytest.fail(f"BRAINLLM_REQUIRE_SLURM=1 but {why_not}: run .ci/slurm-up as root")
        pytest.skip(f"{why_not} (BRAINLLM_REQUIRE_SLURM=1 makes this a failure)")
    folder = os.environ.get("BRAINLLM_SLURM_DIR", "/tmp/brainllm-slurm")
    up = subprocess.run([str(REPO_ROOT / ".ci" / "slurm-up"), folder], capture_output=True,
                        text=True, timeout=600)
    if up.returncode != 0:
        pytest.fail(f".ci/slurm-up could not start SLURM here:\n{up.stderr}")
    conf = str(Path(folder) / "slurm.conf")
    started = "reusing" not in up.stderr
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SLURM_CONF", conf)
        yield {"conf": conf, "started": started}
    if started:
        subprocess.run([str(REPO_ROOT / ".ci" / "slurm-down"), folder], capture_output=True,
                       timeout=120)


def test_slurm_up_describes_this_machine(slurm):
    """.ci/slurm-up's node has this machine's CPUs (not $OMP_NUM_THREADS's, which GNU nproc
    obeys) and less memory than it; the partition SLURM reports is that node."""
    if slurm["conf"] is None or "written by .ci/slurm-up" not in Path(slurm["conf"]).read_text():
        pytest.skip("a SLURM not started by .ci/slurm-up")
    node = next(line for line in Path(slurm["conf"]).read_text().splitlines()
                if line.startswith("NodeName="))
    fields = dict(f.split("=", 1) for f in node.split())
    assert int(fields["CPUs"]) == len(os.sched_getaffinity(0))
    total_mb = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    assert int(fields["RealMemory"]) < total_mb
    part = _batch._slurm_partition()
    assert part["nodes"] == [(int(fields["CPUs"]), int(fields["RealMemory"]))]


def _our_jobs(name: str) -> list[str]:
    out = subprocess.run(["squeue", "-h", "-n", name, "-o", "%i %T"], capture_output=True, text=True,
                         timeout=30, check=True)
    return out.stdout.split("\n") if out.stdout.strip() else []


def _node_memory_mb() -> int:
    out = subprocess.run(["sinfo", "-h", "-o", "%m"], capture_output=True, text=True, timeout=30,
                         check=True)
    return max(int(v.rstrip("+")) for v in out.stdout.split())


@pytest.mark.slow
def test_a_grid_on_slurm_gives_the_serial_results(slurm, tiny_root, tmp_path, monkeypatch, capsys):
    """Two subjects of the data tour as two SLURM jobs, through the command line with the
    default resources (read from the partition), then serially: identical notebooks."""
    logs = tmp_path / "slurm-logs"
    digests = {}
    for scheduler in ("slurm", "serial"):
        monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / f"cache_{scheduler}"))
        out = tmp_path / scheduler
        argv = ["run", "00_data_tour", "--data", str(tiny_root), "--smoke", "--grid",
                "subject=subj01,subj02", "--scheduler", scheduler, "--workers", "2",
                "--output-dir", str(out)]
        if scheduler == "slurm":
            argv += ["--slurm", f"log_directory={logs}", "--slurm", "job_name=brainllm-test-grid",
                     "--slurm-start-timeout", "120"]
        assert batch.main(argv) == 0, capsys.readouterr().err
        manifest = batch.read_manifest(out / "manifest.json")["notebooks"]
        assert sorted(manifest) == ["00_data_tour__subject-subj01.ipynb",
                                    "00_data_tour__subject-subj02.ipynb"]
        assert {e["scheduler"] for e in manifest.values()} == {scheduler}
        digests[scheduler] = [manifest[k]["digest"] for k in sorted(manifest)]
        if scheduler == "slurm":
            workers = {e["worker"] for e in manifest.values()}
            assert all(w.split(":")[1] != str(os.getpid()) for w in workers)
            # the workers were SLURM jobs: each wrote its log where log_directory says
            assert list(logs.glob("brainllm-test-grid-*.err"))
    assert digests["slurm"] == digests["serial"]
    assert digests["slurm"][0] != digests["slurm"][1]
    assert _our_jobs("brainllm-test-grid") == [], "the batch left its SLURM jobs behind"


@pytest.mark.slow
def test_a_job_slurm_rejects_fails_the_run_with_sbatchs_message(slurm, tiny_root, tmp_path, capsys):
    """More memory than the node has: sbatch refuses the job, and the run fails at once with
    SLURM's own message (not after the start timeout, not never)."""
    too_much = _node_memory_mb() + 4096
    rc = batch.main(["run", "00_data_tour", "--data", str(tiny_root), "--smoke", "--scheduler", "slurm",
                     "--workers", "1", "--slurm", f"memory={too_much}MiB", "--slurm",
                     "job_name=brainllm-test-rejected", "--slurm", f"log_directory={tmp_path / 'logs'}",
                     "--slurm-start-timeout", "600", "--output-dir", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "SLURM refused the worker job (sbatch)" in err
    assert "Memory specification can not be satisfied" in err, err
    assert not (tmp_path / "out" / "00_data_tour.ipynb").exists()
    assert _our_jobs("brainllm-test-rejected") == []


@pytest.mark.slow
@pytest.mark.parametrize("directive, reason", [("--begin=now+2hours", "BeginTime"),
                                               ("--hold", "JobHeldUser")])
def test_a_job_that_never_starts_fails_after_the_timeout_with_squeues_reason(slurm, tmp_path,
                                                                              directive, reason):
    name = f"brainllm-test-pending-{reason}"
    with pytest.raises(batch.SlurmStartError) as err:
        batch.make_cluster("slurm", workers=2, start_timeout=3, job_name=name,
                           log_directory=str(tmp_path), job_extra_directives=[directive])
    message = str(err.value)
    assert "no SLURM worker started within 3 s" in message
    assert message.count(f"PENDING (reason: {reason})") == 2, message
    assert _our_jobs(name) == [], "the pending jobs were not cancelled"


@pytest.mark.slow
def test_a_job_whose_worker_cannot_start_fails_with_the_end_of_its_log(slurm, tmp_path):
    """The job runs but its worker command fails at once (no such Python): the run fails as
    soon as SLURM no longer lists the job, with the end of the job's log."""
    name = "brainllm-test-no-python"
    with pytest.raises(batch.SlurmStartError) as err:
        batch.make_cluster("slurm", workers=1, start_timeout=600, job_name=name,
                           log_directory=str(tmp_path), python=str(tmp_path / "no-such-python"))
    message = str(err.value)
    assert "ended before their Dask worker connected" in message
    assert str(tmp_path / f"{name}-") in message and "no-such-python" in message, message


def test_cli_reads_numbers_as_text_where_slurm_wants_text(tiny_root, tmp_path, monkeypatch):
    """``--slurm walltime=30`` (30 minutes to SLURM) is JSON 30; the option wants text."""
    seen = {}

    def fake_run_jobs(jobs, scheduler, workers, threads, force, cluster_options=None):
        seen.update(cluster_options)
        return []

    monkeypatch.setattr(_batch, "run_jobs", fake_run_jobs)
    rc = batch.main(["run", "00_data_tour", "--data", str(tiny_root), "--scheduler", "slurm",
                     "--slurm", "walltime=30", "--slurm", "queue=7", "--slurm", "job_cpu=2",
                     "--slurm", "nanny=false", "--slurm", "memory=4GB", "--output-dir", str(tmp_path)])
    assert rc == 0
    assert seen == {"walltime": "30", "queue": "7", "job_cpu": 2, "nanny": False, "memory": "4GB",
                    "start_timeout": batch.SLURM_START_TIMEOUT}
