"""Benchmark records (``make bench``): environment, load rule, protocol and the generated tables."""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import statistics
import sys
import time

import numpy as np
import pytest

from brainllm_utils._utils import benchrecord as br
from brainllm_utils._utils.paths import REPO_ROOT


def _run_all():
    """benchmarks/run_all.py as a module (registered first: its dataclass needs its module)."""
    if "brainllm_bench_run_all" not in sys.modules:
        path = REPO_ROOT / "benchmarks" / "run_all.py"
        spec = importlib.util.spec_from_file_location("brainllm_bench_run_all", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    return sys.modules["brainllm_bench_run_all"]


# ----------------------------------------------------------------------------- environment
def test_environment_records_every_field_with_its_type(monkeypatch):
    for key in [k for k in os.environ if k.startswith("OPENBLAS_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    monkeypatch.setenv("OPENBLAS_VERBOSE", "0")
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    import threadpoolctl
    import torch

    env = br.environment()
    for key, typ in br.ENV_FIELDS.items():
        assert isinstance(env[key], typ), key
    assert env["n_cores"] == os.cpu_count()
    assert env["cpu_model"] and env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert env["threads"]["OMP_NUM_THREADS"] == "1" and env["threads"]["MKL_NUM_THREADS"] is None
    assert env["threads"]["torch"] == torch.get_num_threads()
    assert env["openblas_env"] == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_VERBOSE": "0"}
    # the BLAS record is threadpoolctl's own view of this process
    ref = threadpoolctl.threadpool_info()
    assert [(b["internal_api"], b["version"], b["num_threads"]) for b in env["blas"]] == [
        (b["internal_api"], b["version"], b["num_threads"]) for b in ref]
    assert any(b["internal_api"] == "openblas" for b in env["blas"])  # numpy's
    for lib in env["blas"]:
        assert set(br.BLAS_FIELDS) <= set(lib) and isinstance(lib["num_threads"], int)
    versions = env["versions"]
    assert versions["numpy"] == np.__version__ and versions["torch"] == torch.__version__
    for name in ("himalaya", "rsatoolbox", "sentence-transformers"):
        assert name in versions and (versions[name] is None or isinstance(versions[name], str))
    json.dumps(env)  # serialisable as it is


def test_load_average_is_the_os_triple():
    load = br.load_average()
    assert len(load) == 3 and all(isinstance(x, float) and x >= 0 for x in load)


# ----------------------------------------------------------------------------- load rule
@pytest.mark.parametrize("before, after, cores, reliable", [
    (0.3, 1.9, 2, True),
    (2.0, 2.0, 2, True),            # equal to the cores: not exceeded
    (2.01, 0.5, 2, False),          # before
    (0.5, 3.4, 2, False),           # after
    ([2.6, 1.0, 0.5], [1.0, 1.0, 1.0], 2, False),  # the 1-minute value of a triple
    ([1.0, 9.0, 9.0], [1.0, 9.0, 9.0], 2, True),   # 5- and 15-minute values do not count
    (5.0, 5.0, 8, True),
])
def test_load_rule_marks_a_run_unreliable_when_the_load_exceeded_the_cores(before, after, cores,
                                                                           reliable):
    ok, reason = br.assess_load(before, after, cores)
    assert ok is reliable
    assert (reason is None) == reliable
    if not reliable:
        assert f"{cores} cores" in reason


@pytest.mark.parametrize("before, after, cores, match", [
    (-1.0, 0.0, 2, "before"), (0.0, float("nan"), 2, "after"), (True, 0.0, 2, "before"),
    ([], 0.0, 2, "before"), ("1.0", 0.0, 2, "before"), (0.0, 0.0, 0, "n_cores"),
    (0.0, 0.0, 2.0, "n_cores"),
])
def test_load_rule_checks_its_arguments(before, after, cores, match):
    with pytest.raises((TypeError, ValueError), match=match):
        br.assess_load(before, after, cores)


def test_run_all_applies_the_load_rule_to_injected_loads(tmp_path, monkeypatch):
    """The driver runs a benchmark in its own process with the thread variables fixed, reads
    its JSON and marks the run by the loads around it (injected here)."""
    ra = _run_all()
    script = tmp_path / "bench_fake.py"
    script.write_text(
        "import json, os, sys\n"
        "from brainllm_utils._utils.benchrecord import environment\n"
        "out = sys.argv[sys.argv.index('--json') + 1]\n"
        "json.dump({'omp': os.environ['OMP_NUM_THREADS'], 'openblas': os.environ["
        "'OPENBLAS_NUM_THREADS'], 'runs': [3.0, 2.0, 4.0], 'ref': [6.0, 6.0, 6.0],"
        " 'environment': environment()}, open(out, 'w'))\n")
    bench = ra.Bench("fake", "A fake benchmark", str(script), lambda a: [],
                     lambda d: [br.summarise_row("case", "size", "s", d["runs"], d["ref"], "peer")],
                     threads=1)
    args = argparse.Namespace(device="cpu", quick=False, repeats=3, timeout=300,
                              workdir=str(tmp_path / "work"), settle_timeout=0.0)

    class NoSampler:  # the loads come from the injected values only
        def start(self):
            pass

        def stop(self):
            return []

    monkeypatch.setattr(ra, "LoadSampler", NoSampler)
    cores = os.cpu_count()
    for loads, reliable in (([[0.1, 0, 0], [cores - 0.5, 0, 0]], True),
                            ([[0.1, 0, 0], [cores + 0.5, 0, 0]], False)):
        seq = iter(loads)
        monkeypatch.setattr(ra.br, "load_average", lambda: next(seq, [0.0, 0.0, 0.0]))
        entry = ra.run_one(bench, args)
        br.validate_entry(entry)
        assert entry["reliable"] is reliable and br.quotable(entry) is reliable
        assert entry["load"]["before"][0] == 0.1 and entry["load"]["cores"] == cores
        assert entry["raw"]["omp"] == entry["raw"]["openblas"] == "1"
        assert entry["environment"]["threads"]["OMP_NUM_THREADS"] == "1"
        assert entry["rows"][0]["ours"] == 3.0 and entry["rows"][0]["ratio"] == 2.0


def test_wait_for_load_waits_until_the_load_settles_or_the_timeout():
    now = [0.0]

    def sleep(dt):
        now[0] += dt

    loads = iter([2.0, 1.6, 1.2, 0.9, 0.5])
    load, waited = br.wait_for_load(1.0, 60, poll=5, read=lambda: [next(loads), 0, 0],
                                    sleep=sleep, clock=lambda: now[0])
    assert (load, waited) == (0.9, 15.0)
    # never below the threshold: returns at the timeout with the last reading
    now[0] = 0.0
    load, waited = br.wait_for_load(0.5, 12, poll=5, read=lambda: 1.7, sleep=sleep,
                                    clock=lambda: now[0])
    assert (load, waited) == (1.7, 12.0)
    # already settled: no wait
    assert br.wait_for_load(1.0, 60, read=lambda: [0.2, 0, 0], sleep=sleep,
                            clock=lambda: 0.0) == (0.2, 0.0)


@pytest.mark.parametrize("kwargs, match", [(dict(threshold=-1.0, timeout=1), "threshold"),
                                           (dict(threshold=1.0, timeout=float("nan")), "timeout"),
                                           (dict(threshold=True, timeout=1), "threshold"),
                                           (dict(threshold=1.0, timeout=1, poll=0), "poll")])
def test_wait_for_load_checks_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        br.wait_for_load(read=lambda: 0.0, **kwargs)


def test_run_all_waits_for_the_previous_load_to_fade(tmp_path, monkeypatch):
    """Before a benchmark the driver waits for the load average to fall to half the cores
    (the previous benchmark's own load), records the wait, and judges the run by the loads
    read after it."""
    ra = _run_all()
    script = tmp_path / "bench_fake.py"
    script.write_text(
        "import json, sys\nfrom brainllm_utils._utils.benchrecord import environment\n"
        "json.dump({'runs': [1.0, 1.0, 1.0], 'environment': environment()}, "
        "open(sys.argv[sys.argv.index('--json') + 1], 'w'))\n")
    bench = ra.Bench("fake", "A fake benchmark", str(script), lambda a: [],
                     lambda d: [br.summarise_row("case", "size", "s", d["runs"])], threads=1)
    args = argparse.Namespace(device="cpu", quick=False, repeats=3, timeout=300,
                              workdir=str(tmp_path / "work"), settle_timeout=300.0)
    cores = os.cpu_count()
    # the previous benchmark's load (cores + 0.3) fades below cores / 2, then the run
    seq = iter([cores + 0.3, cores * 0.75, cores * 0.4, cores * 0.4, cores * 0.9])
    monkeypatch.setattr(ra.br, "load_average", lambda: [next(seq, 0.0), 0.0, 0.0])
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    entry = ra.run_one(bench, args)
    br.validate_entry(entry)
    assert [d for d in slept if d >= 1] == [5.0, 5.0] and entry["reliable"] is True
    assert entry["load"]["before"][0] == cores * 0.4 and entry["load"]["after"][0] == cores * 0.9
    assert entry["load"]["settle_wait_s"] >= 0


def test_run_all_checks_its_arguments(capsys):
    ra = _run_all()
    for argv, match in ((["--repeats", "2"], "≥ 3"), (["--only", "nope"], "unknown benchmark"),
                        (["--device", "tpu"], "--device"),
                        (["--settle-timeout", "-1"], "--settle-timeout")):
        with pytest.raises(SystemExit):
            ra.main(argv)
        assert match in capsys.readouterr().err


# ----------------------------------------------------------------------------- protocol
def test_interleaved_order_alternates_the_order_of_the_compared_runs():
    assert br.interleaved_order(["ours", "peer"], 3) == [["ours", "peer"], ["peer", "ours"],
                                                         ["ours", "peer"]]
    rounds = br.interleaved_order(["a", "b", "c"], 4)
    assert rounds == [["a", "b", "c"], ["c", "b", "a"]] * 2
    for r in rounds:
        assert sorted(r) == ["a", "b", "c"]
    # over an even number of rounds, each run is first as often as last
    firsts = [r[0] for r in br.interleaved_order(["x", "y"], 6)]
    assert firsts.count("x") == firsts.count("y") == 3
    assert br.interleaved_order(("only",), 2) == [["only"], ["only"]]


@pytest.mark.parametrize("labels, repeats", [([], 3), (["a", "a"], 3), (["a", "b"], 0),
                                             (["a", "b"], 2.0), ([1, 2], 3)])
def test_interleaved_order_checks_its_arguments(labels, repeats):
    with pytest.raises((TypeError, ValueError)):
        br.interleaved_order(labels, repeats)


def test_median_of_repeats_and_paired_ratios_match_numpy():
    rng = np.random.default_rng(0)
    ours, ref = rng.uniform(1, 2, 5), rng.uniform(4, 9, 5)
    s = br.median_spread(ours)
    assert s == {"median": float(np.median(ours)), "min": float(ours.min()),
                 "max": float(ours.max()), "n": 5}
    assert br.median_spread([1.0, 4.0])["median"] == statistics.median([1.0, 4.0]) == 2.5
    row = br.summarise_row("c", "s", "s", ours, ref, "peer")
    assert row["ours"] == np.median(ours) and row["reference"] == np.median(ref)
    assert row["ratio"] == pytest.approx(np.median(ref) / np.median(ours), rel=1e-15)
    assert row["ratio_min"] == pytest.approx((ref / ours).min(), rel=1e-15)
    assert row["ratio_max"] == pytest.approx((ref / ours).max(), rel=1e-15)
    rates = br.summarise_row("c", "s", "sent/s", ref, ours, "peer", higher_is_better=True)
    assert rates["ratio"] == pytest.approx(np.median(ref) / np.median(ours), rel=1e-15)
    alone = br.summarise_row("c", "s", "MB", [3.0, 1.0, 2.0])
    assert alone["ours"] == 2.0 and alone["ratio"] is None and alone["reference"] is None


@pytest.mark.parametrize("kwargs, match", [
    (dict(ours_runs=[]), "at least one"), (dict(ours_runs=[1.0, float("inf")]), "finite"),
    (dict(reference_runs=[1.0, 2.0]), "pair"), (dict(reference_name=None), "reference_name"),
    (dict(reference_runs=[0.0, 1.0, 1.0]), "positive"), (dict(case=3), "case"),
])
def test_summarise_row_checks_its_arguments(kwargs, match):
    args = dict(case="c", size="s", unit="s", ours_runs=[1.0, 2.0, 3.0],
                reference_runs=[2.0, 2.0, 2.0], reference_name="peer") | kwargs
    with pytest.raises((TypeError, ValueError), match=match):
        br.summarise_row(**args)


# ----------------------------------------------------------------------------- the docs generator
def _entry(name="ridge", reliable=True):
    env = {"cpu_model": "Test CPU @ 1.00GHz", "n_cores": 2, "platform": "Linux", "python": "3.11.7",
           "blas": [{"user_api": "blas", "internal_api": "openblas", "version": "0.3.29",
                     "architecture": "SkylakeX", "num_threads": 2, "filepath": "/x.so"}],
           "threads": {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "MKL_NUM_THREADS": "2",
                       "torch": 2},
           "openblas_env": {},
           "versions": {"numpy": "2.3.0", "torch": "2.13.0", "himalaya": "0.4.11"}}
    rows = [br.summarise_row("RidgeCV", "2,000 × 1,068", "s", [4.0, 3.9, 4.2], [9.8, 10.1, 9.7],
                             "himalaya", agreement="alphas agree 100.0 %"),
            br.summarise_row("peak memory", "500 images", "MB", [1541.2, 1540.0, 1539.0])]
    return {"name": name, "title": "RidgeCV vs himalaya", "device": "cpu",
            "command": "python benchmarks/bench_ridge.py --threads 2",
            "date": "2026-12-01 09:00 UTC",
            "commit": "abc1234", "settings": {"threads": 2}, "environment": env,
            "load": {"before": [0.2, 0.3, 0.4],
                     "after": [1.8, 1.0, 0.6] if reliable else [3.7, 2, 1],
                     "cores": 2},
            "reliable": reliable, "unreliable_reason": None if reliable else "load 3.70 > 2 cores",
            "rows": rows}


PAGE = """# Benchmarks

Hand-written prose stays.

<!-- bench:ridge -->
old table, replaced
<!-- /bench:ridge -->

More prose: 10.7× stays here only because it is prose.

<!-- bench:ridge@cuda -->
<!-- /bench:ridge@cuda -->
"""


def test_docs_generator_renders_the_tables_from_a_results_file():
    results = {"schema": 1, "benchmarks": {"ridge": _entry()}}
    page = br.update_markdown(PAGE, results)
    assert "Hand-written prose stays." in page and "More prose: 10.7×" in page
    assert "old table" not in page
    table = page.split("<!-- bench:ridge -->\n")[1].split("\n<!-- /bench:ridge -->")[0]
    lines = table.splitlines()
    assert lines[0].startswith("| case | size | reference | ours | speed-up")
    assert lines[2] == ("| RidgeCV | 2,000 × 1,068 | himalaya: 9.80 s | 4.00 s | **2.45×** "
                        "| 2.31–2.59× | 1 × 3 | alphas agree 100.0 % |")
    assert lines[3] == "| peak memory | 500 images | — | 1,540 MB | — | — | 1 × 3 | — |"
    provenance = lines[-1]
    for text in ("2026-12-01 09:00 UTC", "abc1234", "bench_ridge.py --threads 2",
                 "Test CPU @ 1.00GHz", "2 cores", "openblas 0.3.29 (SkylakeX; 2 threads; x)",
                 "OMP_NUM_THREADS=2", "torch 2", "himalaya 0.4.11", "0.20 before", "1.80 after"):
        assert text in provenance, text
    gpu = page.split("<!-- bench:ridge@cuda -->\n")[1]
    assert gpu.startswith("*No GPU run recorded")
    assert br.update_markdown(page, results) == page  # idempotent


def _drop(entry, path):
    obj = entry
    for key in path[:-1]:
        obj = obj[key]
    del obj[path[-1]]
    return entry


@pytest.mark.parametrize("path", [("environment",), ("load",), ("rows",), ("reliable",),
                                  ("environment", "blas", 0, "architecture"),
                                  ("environment", "threads", "torch"), ("environment", "versions"),
                                  ("load", "after"), ("rows", 0, "ratio"),
                                  ("rows", 1, "ours_runs")])
def test_docs_generator_refuses_a_results_file_with_a_missing_field(path):
    results = {"schema": 1, "benchmarks": {"ridge": _drop(_entry(), path)}}
    with pytest.raises(ValueError, match=repr(path[-1]) if isinstance(path[-1], str) else "rows"):
        br.update_markdown(PAGE, results)
    with pytest.raises(ValueError):
        br.render_table(results["benchmarks"]["ridge"])


def test_docs_generator_refuses_mistyped_fields_and_misfiled_entries():
    bad = _entry()
    bad["rows"][0]["ours"] = "4.0"
    with pytest.raises(ValueError, match="'ours'"):
        br.validate_entry(bad)
    bad = _entry()
    bad["reliable"] = 1
    with pytest.raises(ValueError, match="'reliable'"):
        br.validate_entry(bad)
    with pytest.raises(ValueError, match="named"):
        br.validate_results({"schema": 1, "benchmarks": {"banded": _entry("ridge")}})
    with pytest.raises(ValueError, match="schema"):
        br.validate_results({"benchmarks": {}})
    with pytest.raises(ValueError, match="unbalanced"):
        br.update_markdown("<!-- bench:ridge -->\n", {"schema": 1, "benchmarks": {}})


def test_docs_generator_refuses_an_unreliable_run_as_quotable():
    entry = _entry(reliable=False)
    assert br.quotable(entry) is False
    with pytest.raises(br.UnreliableRunError, match="not quotable"):
        br.render_table(entry)
    page = br.update_markdown(PAGE, {"schema": 1, "benchmarks": {"ridge": entry}})
    block = page.split("<!-- bench:ridge -->\n")[1].split("\n<!-- /bench:ridge -->")[0]
    assert "unreliable" in block and "not quoted" in block and "load 3.70 > 2 cores" in block
    for number in ("9.80", "4.00", "2.45", "1,540"):  # none of the run's numbers
        assert number not in block


def test_docs_generator_says_when_a_benchmark_has_not_run():
    page = br.update_markdown("<!-- bench:banded -->\n<!-- /bench:banded -->",
                              {"schema": 1, "benchmarks": {}})
    assert "Not run yet" in page and "--only banded" in page


# ----------------------------------------------------------------------------- the committed page
def test_committed_benchmark_tables_are_generated_from_the_committed_results():
    """docs/benchmarks.md's tables are exactly what the results file renders (no hand edits),
    and every benchmark of run_all has its block on the page."""
    results = json.loads((REPO_ROOT / "docs" / "benchmarks.json").read_text())
    br.validate_results(results)
    page = (REPO_ROOT / "docs" / "benchmarks.md").read_text()
    assert br.update_markdown(page, results) == page
    for name in _run_all().BY_NAME:
        assert f"<!-- bench:{name} -->" in page, name
    for name, entry in results["benchmarks"].items():
        assert f"<!-- bench:{name} -->" in page, name
        load = entry["load"]
        ok, _ = br.assess_load(load["before"], load["after"], load["cores"])
        assert entry["reliable"] is ok, f"{name}: 'reliable' disagrees with the load rule"


def test_run_all_rows_from_a_ridge_result():
    ra = _run_all()
    d = {"args": {"n_train": 2000, "bands": [768, 300], "targets": 5000, "alphas": [-1, 6, 15],
                  "cv": 5, "threads": 2},
         "results": [{"name": "RidgeCV", "himalaya_runs": [9.8, 9.9, 9.7],
                      "ours_runs": [3.9, 4.0, 3.8],
                      "r_himalaya": 0.2381, "r_ours": 0.2381, "alpha_agree": 1.0},
                     {"name": "Banded same-11γ", "himalaya_runs": [8.0, 8.0, 8.0],
                      "ours_runs": [2.0, 2.0, 2.0], "r_himalaya": 0.29, "r_ours": 0.29,
                      "alpha_agree": 1.0, "gamma_agree": 0.99}]}
    rows = ra._ridge_rows(copy.deepcopy(d))
    assert [r["case"] for r in rows] == ["RidgeCV", "BandedRidgeCV, the same 11 band weights"]
    assert rows[0]["ratio"] == pytest.approx(9.8 / 3.9) and rows[0]["reference_name"] == "himalaya"
    assert "5,000 targets, 15 alphas, 5 folds, 2 threads" in rows[0]["size"]
    assert "band weights agree 99.0 %" in rows[1]["agreement"]


def test_isolated_ridge_benchmark_runs_each_tool_in_its_own_process(tmp_path):
    """bench_ridge --isolate: every repeat of each tool is a fresh process (the himalaya one
    never imports torch), and the results equal an in-process run's choices."""
    pytest.importorskip("himalaya")
    path = REPO_ROOT / "benchmarks" / "bench_ridge.py"
    spec = importlib.util.spec_from_file_location("brainllm_bench_ridge", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    size = ["--n-train", "120", "--n-test", "40", "--bands", "12", "6", "--targets", "30",
            "--alphas", "-1", "4", "6", "--cv", "3", "--n-iter", "2", "--threads", "1", "--repeats", "2",
            "--skip", "banded_default"]  # the default-search case runs the same child code
    out = tmp_path / "iso.json"
    # the peer's extra environment reaches its processes only (bench_ridge checks; recorded)
    iso = bench.main(size + ["--isolate", "--json", str(out), "--peer-env", "BRAINLLM_TEST_PEER_ENV=7"])
    assert all(r["peer_env"] == {"BRAINLLM_TEST_PEER_ENV": "7"} for r in iso)
    inproc = bench.main(size)
    assert [r["name"] for r in iso] == [r["name"] for r in inproc] == ["RidgeCV", "Banded same-11γ"]
    for a, b in zip(iso, inproc):
        assert a["isolated"] and len(a["himalaya_runs"]) == len(a["ours_runs"]) == 2
        assert a["alpha_agree"] == pytest.approx(b["alpha_agree"])
        assert a["r_ours"] == pytest.approx(b["r_ours"], abs=1e-6)
        assert a["r_himalaya"] == pytest.approx(b["r_himalaya"], abs=1e-6)
    assert json.loads(out.read_text())["results"][0]["name"] == "RidgeCV"
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        bench._peer_env(["no-equals-sign"])
    with pytest.raises(SystemExit, match="needs --isolate"):
        bench.main(size + ["--peer-env", "A=1"])


def test_embedding_rows_are_the_same_two_whichever_batch_won():
    """Runs pool row by row, so the rows keep their names whichever of sentence-transformers'
    batches was fastest: its best batch of the sweep (named in the reference) and its default."""
    ra = _run_all()
    d = {"n": 600, "model": "m", "settings": {"threads": 2},
         "runs": {"ours fp32": [10.0, 10.0, 10.0], "st fp32 b32": [12.0, 12.0, 12.0],
                  "st fp32 b256": [15.0, 15.0, 15.0]},
         "agreement_vs_st_fp32": {"ours fp32": {"min_cosine": 0.9999999, "max_abs_diff": 2e-7}},
         "best_st_fp32": "st fp32 b32", "st_default": "st fp32 b32"}
    rows = ra._embedding_rows(copy.deepcopy(d))
    cases = [r["case"].split(" at ")[1] for r in rows]
    assert cases == ["its best batch of 32, 256", "its default batch"]
    assert [r["ratio"] for r in rows] == pytest.approx([1.2, 1.2])
    assert rows[0]["reference_name"] == "sentence-transformers `encode` (batch 32)"
    d["best_st_fp32"] = "st fp32 b256"
    d["runs"]["st fp32 b256"] = [11.0, 11.0, 11.0]
    rows = ra._embedding_rows(d)
    assert [r["case"].split(" at ")[1] for r in rows] == cases
    assert [r["ratio"] for r in rows] == pytest.approx([1.1, 1.2])
    assert rows[0]["reference_name"] == "sentence-transformers `encode` (batch 256)"


def test_each_benchmark_is_fingerprinted_by_the_code_it_measures(tmp_path, monkeypatch):
    """A change to the ridge solver starts a new series for the ridge benchmarks only; the
    recorder and the driver never count."""
    ra = _run_all()
    before = {b.name: ra.fingerprint(b) for b in ra.BENCHMARKS}
    assert before["ridge"] == before["banded"] and before["ridge"] != before["searchlight"]
    real = br.code_fingerprint

    def with_edit(root=None, globs=br.CODE_GLOBS, exclude=br.RECORDER_FILES):
        h = real(root, globs, exclude)
        return h + "*" if any("encoding" in g for g in globs) else h  # as if encoding changed

    monkeypatch.setattr(ra.br, "code_fingerprint", with_edit)
    after = {b.name: ra.fingerprint(b) for b in ra.BENCHMARKS}
    assert {n for n in before if before[n] != after[n]} == {"ridge", "banded"}
    assert not {"brainllm_utils/_utils/benchrecord.py", "benchmarks/run_all.py"} - set(
        br.RECORDER_FILES)


# ----------------------------------------------------------------------------- runs of the same code
def test_code_fingerprint_follows_the_contents_of_the_code(tmp_path):
    (tmp_path / "brainllm_utils").mkdir()
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "brainllm_utils" / "a.py").write_text("x = 1\n")
    (tmp_path / "benchmarks" / "b.py").write_text("y = 2\n")
    (tmp_path / "notes.md").write_text("not code\n")
    f0 = br.code_fingerprint(tmp_path)
    assert len(f0) == 16 and br.code_fingerprint(tmp_path) == f0
    (tmp_path / "notes.md").write_text("changed, still not code\n")
    assert br.code_fingerprint(tmp_path) == f0
    (tmp_path / "brainllm_utils" / "a.py").write_text("x = 2\n")
    assert br.code_fingerprint(tmp_path) != f0
    (tmp_path / "brainllm_utils" / "a.py").write_text("x = 1\n")
    assert br.code_fingerprint(tmp_path) == f0
    (tmp_path / "benchmarks" / "b.py").rename(tmp_path / "benchmarks" / "c.py")  # a rename counts
    assert br.code_fingerprint(tmp_path) != f0
    with pytest.raises(ValueError, match="no file"):
        br.code_fingerprint(tmp_path / "benchmarks", globs=("*.txt",))
    assert br.code_fingerprint() == br.code_fingerprint(REPO_ROOT)


def _run(date, ours, ref, fingerprint="f1", reliable=True):
    e = _entry(reliable=reliable)
    e["date"] = date
    e["rows"] = [br.summarise_row("RidgeCV", "2,000 × 1,068", "s", ours, ref, "himalaya",
                                  agreement="alphas agree 100.0 %")]
    e["fingerprint"] = fingerprint
    return e


def test_history_keeps_the_reliable_runs_of_the_same_code_only():
    a = br.merge_history(_run("d1", [4.0, 4.1, 3.9], [10.0, 10.2, 9.9]), None)
    assert a["history"] == []
    b = br.merge_history(_run("d2", [3.6, 3.7, 3.8], [11.0, 11.1, 10.9]), a)
    assert [h["date"] for h in b["history"]] == ["d1"]
    assert b["history"][0]["rows"][0]["ours_runs"] == [4.0, 4.1, 3.9]
    bad = br.merge_history(_run("d3", [9.0, 9.0, 9.0], [9.0, 9.0, 9.0], reliable=False), b)
    assert [h["date"] for h in bad["history"]] == ["d1", "d2"]  # kept for the next run
    c = br.merge_history(_run("d4", [3.5, 3.6, 3.7], [10.5, 10.6, 10.4]), bad)
    assert [h["date"] for h in c["history"]] == ["d1", "d2"]  # the unreliable run is not pooled
    other = br.merge_history(_run("d5", [3.0, 3.1, 3.2], [10.0, 10.0, 10.0], fingerprint="f2"), c)
    assert other["history"] == []  # the code changed: earlier runs say nothing about it
    runs = None
    for i in range(8):
        runs = br.merge_history(_run(f"e{i}", [4.0, 4.0, 4.0], [8.0, 8.0, 8.0]), runs)
    assert [h["date"] for h in runs["history"]] == ["e3", "e4", "e5", "e6"]  # MAX_RUNS = 5 in all
    assert len(br.merge_history(_run("x", [1.0] * 3, [2.0] * 3), runs, max_runs=1)["history"]) == 0
    with pytest.raises(ValueError, match="fingerprint"):
        br.merge_history({"name": "ridge"}, None)
    br.validate_entry(c)


def test_pooled_rows_are_the_medians_and_paired_ratios_of_every_repeat():
    a = br.merge_history(_run("d1", [4.0, 4.4, 3.9], [10.0, 10.2, 9.9]), None)
    b = br.merge_history(_run("d2", [3.6, 3.7, 3.8], [11.0, 11.6, 10.9]), a)
    (row,) = br.pooled_rows(b)
    ours = [4.0, 4.4, 3.9, 3.6, 3.7, 3.8]
    ref = [10.0, 10.2, 9.9, 11.0, 11.6, 10.9]
    paired = np.array(ours)[[3, 4, 5, 0, 1, 2]] ** -1 * np.array(ref)[[3, 4, 5, 0, 1, 2]]
    assert row["n_runs"] == 2 and row["ours"] == pytest.approx(np.median(ours))
    assert row["reference"] == pytest.approx(np.median(ref))
    assert row["ratio"] == pytest.approx(np.median(ref) / np.median(ours))
    assert (row["ratio_min"], row["ratio_max"]) == pytest.approx((paired.min(), paired.max()))
    (alone,) = br.pooled_rows(a)
    assert alone["n_runs"] == 1 and alone["ratio"] == a["rows"][0]["ratio"]
    c = _run("d3", [4.0] * 3, [8.0] * 3)
    c["rows"][0]["size"] = "another size"
    c["history"] = b["history"] + [br._run_record(b)]
    assert br.pooled_rows(c)[0]["n_runs"] == 1  # rows of another size are not pooled


def test_reproduction_checks_a_new_run_against_the_recorded_spread():
    rec = br.merge_history(_run("d1", [4.0, 4.2, 3.8], [10.0, 10.0, 10.0]), None)
    # recorded paired ratios 2.38–2.63: 2.50 is inside, 3.00 is not
    inside = br.reproduction(_run("d2", [4.0] * 3, [10.0] * 3), rec)
    assert inside["all_within"] and inside["against_runs"] == 1
    assert inside["rows"][0]["recorded_min"] == pytest.approx(10 / 4.2)
    outside = br.reproduction(_run("d2", [4.0] * 3, [12.0] * 3), rec)
    assert not outside["all_within"] and outside["rows"][0]["within"] is False
    assert br.reproduction(_run("d2", [4.0] * 3, [10.0] * 3, fingerprint="f2"), rec) is None
    assert br.reproduction(_run("d2", [4.0] * 3, [10.0] * 3), None) is None
    assert br.reproduction(_run("d2", [4.0] * 3, [10.0] * 3),
                           _run("d1", [4.0] * 3, [10.0] * 3, reliable=False)) is None
    # the pooled record's wider range is what a new run is checked against
    rec2 = br.merge_history(_run("d3", [3.0] * 3, [10.0] * 3), rec)
    wide = br.reproduction(_run("d4", [4.0] * 3, [12.0] * 3), rec2)
    assert wide["against_runs"] == 2 and wide["all_within"]


def test_the_table_says_which_runs_it_pools_and_whether_this_run_reproduced():
    rec = br.merge_history(_run("2026-12-01 10:00 UTC", [4.0, 4.2, 3.8], [10.0] * 3), None)
    new = _run("2026-12-01 11:00 UTC", [4.0] * 3, [12.0] * 3)
    new["reproduction"] = br.reproduction(new, rec)
    br.merge_history(new, rec)
    table = br.render_table(new)
    assert "| 2 × 3 |" in table
    assert "pool this run with 1 earlier run of the same code: 2026-12-01 10:00 UTC (`abc1234`)" in table
    assert "reproduced 0 of 1 ratio within the range the 1 earlier run reported" in table
    assert "outside: RidgeCV 3.00× against 2.38–2.63×" in table
    bad = copy.deepcopy(new)
    bad["history"][0]["rows"][0].pop("ours_runs")
    with pytest.raises(ValueError, match="ours_runs"):
        br.validate_entry(bad)
    bad = copy.deepcopy(new)
    bad["fingerprint"] = 3
    with pytest.raises(ValueError, match="fingerprint"):
        br.validate_entry(bad)


def test_run_all_pools_a_second_run_of_the_same_code(tmp_path, monkeypatch, capsys):
    """Two runs of one benchmark through the driver's main: the second is checked against the
    first's range, printed, and pooled with it."""
    ra = _run_all()
    script = tmp_path / "bench_fake.py"
    script.write_text(
        "import json, sys\n"
        "from brainllm_utils._utils.benchrecord import environment\n"
        "out = sys.argv[sys.argv.index('--json') + 1]\n"
        "json.dump({'runs': [3.0, 2.0, 4.0], 'ref': [6.0, 6.0, 6.0], 'environment': environment()},"
        " open(out, 'w'))\n")
    bench = ra.Bench("fake", "A fake benchmark", str(script), lambda a: [],
                     lambda d: [br.summarise_row("case", "size", "s", d["runs"], d["ref"], "peer")])
    monkeypatch.setitem(ra.BY_NAME, "fake", bench)
    monkeypatch.setattr(ra.br, "load_average", lambda: [0.0, 0.0, 0.0])
    results, docs = tmp_path / "r.json", tmp_path / "page.md"
    docs.write_text("<!-- bench:fake -->\n<!-- /bench:fake -->\n")
    argv = ["--only", "fake", "--results", str(results), "--docs", str(docs), "--settle-timeout",
            "0", "--workdir", str(tmp_path / "w")]
    assert ra.main(argv) == 0
    assert "no reproduction check (no earlier run)" in capsys.readouterr().out
    assert ra.main(argv) == 0
    out = capsys.readouterr().out
    assert "case: 2.00× against the recorded 2.00× (1.50–3.00×, 1 run(s)): reproduced" in out
    entry = json.loads(results.read_text())["benchmarks"]["fake"]
    assert entry["fingerprint"] == ra.fingerprint(bench) and len(entry["history"]) == 1
    assert entry["reproduction"]["all_within"] is True
    assert "| 2 × 3 |" in docs.read_text()
