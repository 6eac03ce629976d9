"""kill -9 at every step of every write protocol, then a rerun: the clean result, no leftovers (issue 15).

Each write that must survive a kill marks its steps with
:func:`~brainllm_utils._utils.paths.fault_point`. For each workload a first run records every
pass of every point (``BRAINLLM_FAULT_TRACE``); then, for each recorded pass, a fresh run is
killed there with ``SIGKILL`` (``BRAINLLM_FAULT_KILL=name#k``), the work is run again without
faults, and the result must equal a clean run's, with no temporary file, temporary tree, claim
or lock file left behind. Every run is a forked child of one driver process per workload, so
imports and model loading are paid once. The sandbox generator is killed at the first and the
last pass of each point (its ~45 atomic writes all go into one temporary tree that any kill
before the commit discards whole); every other workload at every pass.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from brainllm_utils._utils.paths import REPO_ROOT

SENTS = ["A cat on a mat.", "Two dogs play on the beach.", "A red bus in the rain.", "A cat on a mat."]

#: each workload as the body of ``work_fn(work)``, run in a forked child of one driver process
#: (the imports are paid once; every kill and every rerun is a fresh fork)
WORKLOADS_CODE = {
    "betas": """
        from brainllm_utils.nsd import NSD

        NSD(root).betas("subj01", progress=False, cache=False)  # lazy imports paid before the forks

        def work_fn(work):
            Y, ids = NSD(root, cache_dir=work / "cache").betas("subj01", progress=False)
            np.save(work / "out.npy", np.asarray(Y))
    """,
    "cache-entries": """
        from brainllm_utils._utils import cache as C

        def work_fn(work):
            rng = np.random.default_rng(3)
            arrays = C.cached_arrays(
                "encoding", "k" * 24, ("coef", "r"),
                lambda: {"coef": rng.standard_normal((40, 300)), "r": np.arange(300.0)},
                folder=work / "cache" / "encoding")
            doc = C.cached_json("dataset", "j" * 24, lambda: {"a": [1, 2, 3]}, cache=work / "cache")
            np.save(work / "out.npy", np.concatenate([arrays["coef"].ravel(), arrays["r"], doc["a"]]))
    """,
    "embed": """
        import torch
        torch.set_num_threads(1)
        from brainllm_utils.embeddings import embed_sentences

        embed_sentences(["warm up"], model=root, cache=False)  # the model, loaded once before the forks

        def work_fn(work):
            X = embed_sentences(json.loads(extra), model=root, cache=work / "cache")
            np.save(work / "out.npy", np.asarray(X))
    """,
    "synth-new": """
        from brainllm_utils.synth import is_current, make_synthetic_nsd

        def work_fn(work):
            tree = work / "trees" / "tiny"
            if not is_current(tree):  # what `make sandbox` does
                make_synthetic_nsd(tree, preset="tiny", seed=0, overwrite=True)
    """,
    "synth-overwrite": """
        from brainllm_utils.synth import make_synthetic_nsd

        def setup(work):  # an older tree (another seed) that the run replaces
            make_synthetic_nsd(work / "trees" / "tiny", preset="tiny", seed=1)

        def work_fn(work):
            make_synthetic_nsd(work / "trees" / "tiny", preset="tiny", seed=0, overwrite=True)
    """,
    "batch": """
        import nbformat
        from nbformat.v4 import new_code_cell, new_notebook
        from brainllm_utils import batch

        def setup(work):
            nb = new_notebook()
            params = new_code_cell("data_home = None\\nn = 4")
            params.metadata["tags"] = ["parameters"]
            nb.cells = [params, new_code_cell("print('sum', sum(range(n)))")]
            nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
            (work / "nbs").mkdir(parents=True)
            nbformat.write(nb, work / "nbs" / "01_toy.ipynb")

        def work_fn(work):
            rc = batch.main(["run", "--data", root, "--notebook-dir", str(work / "nbs"),
                             "--output-dir", str(work / "out"), "--scheduler", "serial"])
            if rc:
                raise SystemExit(rc)
    """,
}

_DRIVER = textwrap.dedent("""
    import json, os, signal, sys, traceback
    from pathlib import Path
    import numpy as np
    from brainllm_utils._utils import paths as P
    name, root, extra, base, every = sys.argv[1], sys.argv[2], sys.argv[3], Path(sys.argv[4]), sys.argv[5] == "1"
    setup = None
""") + "%(workload)s" + textwrap.dedent("""

    def child(work, env):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                for k in ("BRAINLLM_FAULT_KILL", "BRAINLLM_FAULT_TRACE"):
                    os.environ.pop(k, None)
                os.environ.update(env)
                P._fault_hits.clear()
                work_fn(work)
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush(); sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)

    def fresh(work):
        work.mkdir(parents=True)
        if setup is not None:
            setup(work)
        return work

    clean = fresh(base / "clean")
    trace = base / "trace.txt"
    report = {"clean": child(clean, {"BRAINLLM_FAULT_TRACE": str(trace)}), "kills": []}
    tags = trace.read_text().split() if trace.exists() else []
    report["tags"] = tags
    chosen = tags
    if not every:  # the first and the last pass of each point
        by_name = {}
        for t in tags:
            by_name.setdefault(t.split("#")[0], []).append(t)
        chosen = [t for passes in by_name.values() for t in sorted({passes[0], passes[-1]}, key=passes.index)]
    for i, tag in enumerate(chosen):
        work = fresh(base / f"kill{i}")
        killed = child(work, {"BRAINLLM_FAULT_KILL": tag})
        again = child(work, {}) if killed == -signal.SIGKILL else None
        report["kills"].append({"tag": tag, "work": work.name, "killed": killed, "rerun": again})
    (base / "report.json").write_text(json.dumps(report))
""")

def _leftovers(work: Path) -> list[str]:
    """Temporary files and trees, claims and locks anywhere under ``work``."""
    bad = []
    for p in work.rglob("*"):
        n = p.name
        if n.endswith(".tmp") or ".partial-" in n or ".old-" in n or n.startswith("claim-") \
                or n.endswith(".lock"):
            bad.append(str(p.relative_to(work)))
    return sorted(bad)


def _tree_digest(root: Path) -> str:
    """Every file's path and content; not what differs between two clean runs (the time in a
    ``.mat`` file's 128-byte header, the card's ``generation_seconds``)."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            data = p.read_bytes()
            if p.suffix == ".mat":
                data = data[128:]
            elif p.name == "card.json":
                card = json.loads(data)
                card.pop("generation_seconds", None)
                data = json.dumps(card, sort_keys=True).encode()
            h.update(data)
    return h.hexdigest()


def _result(name: str, work: Path):
    if name.startswith("synth"):
        return _tree_digest(work / "trees" / "tiny")
    if name == "batch":
        nb = json.loads((work / "out" / "01_toy.ipynb").read_text())
        return [o.get("text") for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    return np.load(work / "out.npy")


@pytest.fixture(scope="module")
def minilm():
    from brainllm_utils.weights import MINILM, resolve_model

    return str(resolve_model(MINILM))


WORKLOADS = list(WORKLOADS_CODE)
#: killed at every traced pass; the others at the first and last pass of each point (the sandbox
#: generator's ~45 atomic writes all go into one temporary tree that a kill discards whole)
EVERY_PASS = {"betas", "cache-entries", "embed", "batch"}
#: what each workload's kills must at least include (a point missing from the trace fails the test)
MUST_PASS = {
    "betas": {"lock.acquired", "allocate.allocated", "betas.session_added", "betas.averaged", "betas.flushed",
              "betas.data_in_place", "atomic.before_rename", "write_npy.synced", "checked_write.written"},
    "cache-entries": {"write_npy.saved", "write_npy.synced", "atomic.temp_created", "atomic.before_rename",
                      "atomic.renamed", "checked_write.written"},
    "embed": {"lock.acquired", "embed.encoded", "write_npy.synced", "atomic.renamed"},
    "synth-new": {"synth.built", "synth.committed", "atomic.before_rename"},
    "synth-overwrite": {"synth.built", "synth.old_moved_aside", "synth.committed"},
    "batch": {"lock.acquired", "atomic.before_rename", "atomic.renamed"},
}


@pytest.mark.parametrize("name", WORKLOADS)
def test_kill9_at_every_traced_step_then_rerun_equals_a_clean_run(name, tiny_root, tmp_path, minilm):
    root = minilm if name == "embed" else str(tiny_root)
    code = _DRIVER % {"workload": textwrap.dedent(WORKLOADS_CODE[name])}
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    for k in ("BRAINLLM_FAULT_KILL", "BRAINLLM_FAULT_TRACE"):
        env.pop(k, None)
    proc = subprocess.run([sys.executable, "-c", code, name, root, json.dumps(SENTS), str(tmp_path),
                           "1" if name in EVERY_PASS else "0"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["clean"] == 0, proc.stderr[-3000:]
    clean = _result(name, tmp_path / "clean")
    assert _leftovers(tmp_path / "clean") == []
    tags = report["tags"]
    missing = MUST_PASS[name] - {t.split("#")[0] for t in tags}
    assert not missing, f"{name}: the run never passed {sorted(missing)}: a protocol step lost its fault point"
    failures = []
    for k in report["kills"]:
        tag, work = k["tag"], tmp_path / k["work"]
        if k["killed"] != -signal.SIGKILL:
            failures.append(f"{tag}: not killed there (exit {k['killed']})")
            continue
        if k["rerun"] != 0:
            failures.append(f"{tag}: the rerun failed (exit {k['rerun']}); stderr: {proc.stderr[-1500:]}")
            continue
        got = _result(name, work)
        if not (np.array_equal(got, clean) if isinstance(clean, np.ndarray) else got == clean):
            failures.append(f"{tag}: the rerun's result differs from a clean run")
        left = _leftovers(work)
        if left:
            failures.append(f"{tag}: left behind {left}")
    print(f"{name}: {len(tags)} passes traced, killed at {len(report['kills'])}")
    assert report["kills"], "nothing was killed"
    assert not failures, "\n".join(failures)


def test_fault_points_do_nothing_without_the_variables(monkeypatch, tmp_path):
    from brainllm_utils._utils import paths as P

    monkeypatch.delenv("BRAINLLM_FAULT_KILL", raising=False)
    monkeypatch.delenv("BRAINLLM_FAULT_TRACE", raising=False)
    P.fault_point("atomic.renamed")  # alive
    monkeypatch.setenv("BRAINLLM_FAULT_TRACE", str(tmp_path / "t"))
    monkeypatch.setenv("BRAINLLM_FAULT_KILL", "other.step#1")
    before = dict(P._fault_hits)
    P.fault_point("x.y")
    P.fault_point("x.y")
    assert (tmp_path / "t").read_text().split() == [f"x.y#{before.get('x.y', 0) + 1}", f"x.y#{before.get('x.y', 0) + 2}"]
