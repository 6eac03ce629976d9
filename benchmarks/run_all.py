"""Run every side-by-side benchmark (``make bench``) and regenerate docs/benchmarks.md's tables.

    python benchmarks/run_all.py                    # all CPU benchmarks (20 min on 2 idle cores)
    python benchmarks/run_all.py --only ridge       # one (or several: --only ridge,banded)
    python benchmarks/run_all.py --report           # only regenerate the tables; runs nothing
    python benchmarks/run_all.py --list             # the benchmarks and their commands
    python benchmarks/run_all.py --device cuda      # the GPU commands (entries NAME@cuda)

Each benchmark is one of the ``bench_*.py`` scripts at its documented size, run in a fresh
process whose thread variables (``OMP/OPENBLAS/MKL_NUM_THREADS``) are fixed before numpy or
torch is imported. The scripts warm up, interleave the compared tools (the order alternates
between repeats) and write every repeat to a JSON file; the script records its environment
(:func:`brainllm_utils._utils.benchrecord.environment`) in that process. This driver reads
the 1-minute load average just before and after the process: a run whose load exceeded the
core count is kept but marked **unreliable**, and its numbers are not quoted. Before each
benchmark it waits (up to ``--settle-timeout`` s, default 300) for the load average to fall
to half the cores: the previous benchmark's own load fades with a 60 s time constant and
would otherwise count against the next one.

Results: ``docs/benchmarks.json``, one entry per benchmark (its last run; ``--only`` merges
one into the file). An entry keeps the earlier reliable runs of the same code (a hash of the
benchmark's script, the package modules it runs and the pins, :func:`fingerprint`; never
this driver or the recorder; up to ``benchrecord.MAX_RUNS`` runs in all) and the tables
quote medians and ranges over all of them: the machine's speed drifts more between runs
than within one run's repeats. Before a run replaces its record, its ratios are checked
against the range the record reported; the result is printed (``reproduced`` or
``OUTSIDE``), stored with the entry and stated under its table. The file lives beside the
page it generates, not under ``book/results/``:
the files there are part of the book's summary-page fingerprints, and a benchmark run must
not make the book rebuild. The page's tables sit between ``<!-- bench:NAME -->`` markers;
the prose around them is written by hand.

``--quick`` runs every benchmark at a tiny size into a scratch results file (checks the
tooling in about two minutes; its numbers mean nothing and never reach the docs).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from brainllm_utils._utils import benchrecord as br  # noqa: E402
from brainllm_utils._utils.paths import atomic_write_text  # noqa: E402

RESULTS = ROOT / "docs" / "benchmarks.json"
DOCS = ROOT / "docs" / "benchmarks.md"
#: Repeats of every benchmark (medians of these; the issue asks for ≥ 3).
REPEATS = 3
#: Before each benchmark, the 1-minute load average is waited for down to this fraction of
#: the cores (the previous benchmark's own load fades; ``--settle-timeout`` caps the wait).
SETTLED_LOAD = 0.5


@dataclasses.dataclass
class Bench:
    """One benchmark: a script, its documented arguments and how its JSON becomes table rows."""

    name: str
    title: str
    script: str
    args: Callable[[argparse.Namespace], list]  # documented size (CPU)
    rows: Callable[[dict], list]
    threads: int = 1
    quick: Callable[[argparse.Namespace], list] | None = None  # tiny size (--quick)
    cuda: Callable[[argparse.Namespace], list] | None = None  # reference GPU size (--device cuda)
    prepare: Callable[[argparse.Namespace], list] | None = None  # a command run first (untimed)
    #: the package code it measures (globs; with :data:`COMMON_CODE` and its script, the
    #: fingerprint under which its runs are pooled)
    code: tuple = ("brainllm_utils/**/*.py",)


#: Code every benchmark depends on: the package's root and shared helpers, and the pins.
COMMON_CODE = ("brainllm_utils/__init__.py", "brainllm_utils/_utils/*.py", "requirements.txt",
               "pyproject.toml")


def fingerprint(bench: Bench) -> str:
    """The hash of the code one benchmark measures, its script included (its runs pool only
    under an equal one)."""
    import hashlib

    package = br.code_fingerprint(ROOT, (*COMMON_CODE, *bench.code))
    script = (HERE / bench.script).read_bytes()
    return hashlib.sha256(package.encode() + b"\0" + script).hexdigest()[:16]


# ----------------------------------------------------------------------------- rows
def _embedding_rows(d: dict) -> list:
    n, runs = d["n"], d["runs"]
    rate = {k: [n / t for t in v] for k, v in runs.items()}
    agree = d["agreement_vs_st_fp32"]["ours fp32"]
    text = f"min cosine {agree['min_cosine']:.7f}, max abs diff {agree['max_abs_diff']:.1e}"
    size = f"{n:,} captions, fp32, {d['settings']['threads']} threads"
    rows = []
    # the same two rows whichever batch won this run, so that runs pool row by row: against
    # sentence-transformers' best batch of the sweep (named in the reference column) and its
    # default (the two coincide when the default won)
    swept = ", ".join(k.rsplit(" b", 1)[-1] for k in runs if k.startswith("st fp32 b"))
    for ref, what in ((d["best_st_fp32"], f"its best batch of {swept}"),
                      (d["st_default"], "its default batch")):
        batch = ref.rsplit(" b", 1)[-1]
        rows.append(br.summarise_row(
            f"{d['model']}: ours vs sentence-transformers at {what}", size, "sent/s",
            rate["ours fp32"], rate[ref], f"sentence-transformers `encode` (batch {batch})",
            higher_is_better=True, agreement=text))
    return rows


def _ridge_rows(d: dict) -> list:
    a = d["args"]
    size = (f"{a['n_train']:,} × ({a['bands'][0]}+{a['bands'][1]}) → {a['targets']:,} targets, "
            f"{int(a['alphas'][2])} alphas, {a['cv']} folds, {a['threads']} threads")
    rows = []
    for r in d["results"]:
        text = (f"mean test r {r['r_himalaya']:.4f} / {r['r_ours']:.4f} (himalaya / ours); "
                f"alphas agree {100 * r['alpha_agree']:.1f} %")
        if "gamma_agree" in r:
            text += f"; band weights agree {100 * r['gamma_agree']:.1f} %"
        name = r["name"].replace("Banded same-", "BandedRidgeCV, the same ")
        name = name.replace("γ", " band weights")
        if name.startswith("Banded h"):
            h, o = name[len("Banded h"):].split("/o")
            name = (f"BandedRidgeCV, each tool's default search (himalaya {h} draws, "
                    f"ours {o} weights)")
        peer = "himalaya"
        if r.get("peer_env"):  # the peer's processes ran with these variables (bench_ridge --peer-env)
            peer += " (" + ", ".join(f"{k}={v}" for k, v in r["peer_env"].items()) + ")"
        rows.append(br.summarise_row(name, size, "s", r["ours_runs"], r["himalaya_runs"],
                                     peer, agreement=text))
    return rows


def _searchlight_rows(d: dict) -> list:
    a, vol, runs = d["args"], d["volume"], d["runs_s_per_centre"]
    size = (f"{vol['n_centres']:,} centres, radius {float(a['radius']):g} (mean "
            f"{vol['mean_size']:.0f} / max {vol['max_size']} voxels), {a['n_stimuli']} stimuli, "
            f"ours {a['threads']} thread(s); rsatoolbox on {d['peer']['n']} of the centres")
    ms = {k: [1e3 * x for x in v] for k, v in runs.items()}
    rows = []
    for k, label in (("ours_rdm", "searchlight RSA, model as an RDM (Gram form)"),
                     ("ours_feat",
                      f"searchlight RSA, model as {a['model_dim']}-d features (low-rank)")):
        rows.append(br.summarise_row(label, size, "ms/centre", ms[k], ms["peer"], "rsatoolbox",
                                     agreement=f"max abs Δr {d[k]['max_abs_dr']:.1e}"))
    nsd = d["nsd_run"]
    rows.append(br.summarise_row(
        "NSD shape: sets of 100 images, 768-d model (ours only; one run)",
        f"{nsd['n_sets']} sets × {nsd['n_centres']:,} centres, radius 6 (mean "
        f"{nsd['mean_size']:.0f} / max {nsd['max_size']} voxels)", "ms per centre per set",
        [1e3 * nsd["s_per_centre_set"]]))
    return rows


def _nsd_rows(d: dict) -> list:
    rows = []
    for r in d["rows"]:
        runs = r.get("runs", [r])
        size = (f"2 subjects × {r['images']:,} images × {r['vertices']:,} vertices (float32 .mgh, "
                f"{r['sessions']} sessions)")
        rows.append(br.summarise_row("NSD.betas cache from .mgh sessions: peak anonymous memory",
                                     size, "MB", [x["peak_anon_mb"] for x in runs]))
        rows.append(br.summarise_row("NSD.betas cache from .mgh sessions: time", size, "s",
                                     [x["seconds"] for x in runs]))
    return rows


def _training_rows(d: dict) -> list:
    rows = []
    size = (f"`{d['preset']}` preset ({d['image_size']} px), {d['n_train']:,} images, "
            f"{d['threads']} thread(s)")
    for objective, rec in d["networks"].items():
        per_epoch = [sum(e) / len(e) for e in rec["epoch_seconds_runs"]]
        rows.append(br.summarise_row(f"BLT training, {objective} objective (ours only)", size,
                                     "s/epoch", per_epoch))
    return rows


def _readout_rows(d: dict) -> list:
    s = d["settings"]
    size = (f"{s['readouts']} readouts, {s['n'] - s['n_test']:,} train images, width {s['width']} "
            f"→ {s['dim']}, {s['epochs']} epochs, {d['threads']} thread(s)")
    return [br.summarise_row("transfer readouts side by side (`vision.transfer_readouts`)", size,
                             "s", d["runs"]["many"], d["runs"]["one"], "one at a time",
                             agreement="max abs prediction diff "
                                       f"{d['max_abs_prediction_diff']:.1e}")]


#: BandedRidgeCV's peer runs with its idle OpenBLAS workers sleeping at once: himalaya's numpy
#: backend drives two OpenBLAS libraries (numpy's and scipy's), and the pool that has just worked
#: spin-waits beside the other, so its process ran 3 threads on 2 cores (load above the cores)
#: and took longer (29.8 s against 23.0 s at the documented size, 2026-12-01). RidgeCV's peer
#: keeps the default, which is faster there (11.5 s against 16.1 s).
_BANDED_PEER_ENV = ["--peer-env", "OPENBLAS_THREAD_TIMEOUT=4"]


def _r(a):
    return ["--repeats", str(a.repeats)]


#: The package code of the embedding benchmarks and of the vision ones (which read NSD's layout).
_EMBED_CODE = ("brainllm_utils/features/**/*.py", "brainllm_utils/embeddings.py",
               "brainllm_utils/weights.py")
_VISION_CODE = ("brainllm_utils/vision/**/*.py", "brainllm_utils/nsd/**/*.py")

BENCHMARKS = [
    Bench("embeddings_minilm", "Sentence embeddings, all-MiniLM-L6-v2, vs sentence-transformers",
          "bench_embeddings.py",
          lambda a: ["--model", "minilm", "--n", "2000", "--device", "cpu", "--threads", "2",
                     *_r(a)],
          _embedding_rows, threads=2, code=_EMBED_CODE,
          quick=lambda a: ["--model", "minilm", "--n", "64", "--threads", "2", *_r(a)]),
    Bench("embeddings_mpnet", "Sentence embeddings, all-mpnet-base-v2, vs sentence-transformers",
          "bench_embeddings.py",
          lambda a: ["--model", "mpnet", "--n", "600", "--device", "cpu", "--threads", "2", *_r(a)],
          _embedding_rows, threads=2, code=_EMBED_CODE,
          quick=lambda a: ["--model", "mpnet", "--n", "32", "--threads", "2", *_r(a)],
          cuda=lambda a: ["--model", "mpnet", "--n", "100000", "--device", "cuda", *_r(a)]),
    Bench("ridge", "RidgeCV vs himalaya (peers.md Benchmark A)", "bench_ridge.py",
          lambda a: ["--threads", "2", *_r(a), "--skip", "banded", "--isolate"], _ridge_rows,
          threads=2, code=("brainllm_utils/encoding/**/*.py",),
          quick=lambda a: ["--threads", "2", *_r(a), "--skip", "banded", "--n-train", "300",
                           "--n-test", "100", "--targets", "300", "--isolate"],
          cuda=lambda a: ["--device", "cuda", "--n-train", "9000", "--n-test", "515", "--targets",
                          "100000", "--alphas", "-2", "6", "17", *_r(a), "--skip", "banded"]),
    Bench("banded", "BandedRidgeCV vs himalaya (reduced CPU size)", "bench_ridge.py",
          lambda a: ["--n-train", "1000", "--n-test", "250", "--bands", "384", "150", "--targets",
                     "2000", "--skip", "ridge", "--threads", "2", *_r(a), "--isolate",
                     *_BANDED_PEER_ENV], _ridge_rows,
          threads=2, code=("brainllm_utils/encoding/**/*.py",),
          quick=lambda a: ["--n-train", "200", "--n-test", "50", "--bands", "40", "20", "--targets",
                           "90", "--skip", "ridge", "--threads", "2", "--n-iter", "3", *_r(a),
                           "--isolate", *_BANDED_PEER_ENV],
          cuda=lambda a: ["--device", "cuda", "--n-train", "9000", "--n-test", "515", "--targets",
                          "100000", "--alphas", "-2", "6", "17", "--skip", "ridge", *_r(a)]),
    Bench("searchlight", "Searchlight RSA vs rsatoolbox", "bench_searchlight.py",
          lambda a: [*_r(a), "--nsd-centres", "2000", "--nsd-sets", "2", "--threads", "1"],
          _searchlight_rows, threads=1,
          code=("brainllm_utils/searchlight.py", "brainllm_utils/rsa/**/*.py"),
          quick=lambda a: [*_r(a), "--n-centres", "300", "--n-stimuli", "60", "--peer-centres",
                           "30",
                           "--nsd-centres", "400", "--nsd-sets", "1", "--threads", "1"],
          cuda=lambda a: ["--device", "cuda", *_r(a), "--nsd-sets", "100", "--nsd-centres",
                          "100000",
                          "--threads", "1"]),
    Bench("nsd_reader", "NSD reader: the betas cache of a whole fsaverage surface",
          "bench_nsd_memory.py",
          lambda a: ["--workdir", str(Path(a.workdir) / "nsd_mem"), "--session-series", "2",
                     "--base-sessions", "2", "--base-vertices", "163842", "--vertex-series",
                     "163842", "--cases", "betas", "--warmup", "1", *_r(a)], _nsd_rows, threads=1,
          quick=lambda a: ["--workdir", str(Path(a.workdir) / "nsd_mem_quick"), "--session-series",
                           "2", "--base-sessions", "2", "--base-vertices", "10242",
                           "--vertex-series", "10242", "--cases", "betas", *_r(a)]),
    Bench("training", "BLT network training (chapter 05)", "bench_training.py",
          lambda a: ["run", str(Path(a.workdir) / "pool.npz"), "--preset", "sandbox", "--threads",
                     "1", "--epochs", "1", "--warmup", "128", *_r(a)], _training_rows, threads=1,
          code=_VISION_CODE,
          quick=lambda a: ["run", str(Path(a.workdir) / "pool_quick.npz"), "--preset", "tiny",
                           "--threads", "1", "--epochs", "1", "--n-val", "16", *_r(a)],
          cuda=lambda a: ["run", str(Path(a.workdir) / "pool.npz"), "--preset", "sandbox_gpu",
                          "--device", "cuda", "--epochs", "1", "--warmup", "128", *_r(a)],
          prepare=lambda a: ["synth",
                             str(Path(a.workdir) / ("pool_quick.npz" if a.quick else "pool.npz")),
                             "--n", "96" if a.quick else "2200"]),
    Bench("readout", "Transfer readouts: side by side vs one at a time", "bench_readout.py",
          lambda a: ["--readouts", "5", "--epochs", "20", "--threads", "1", *_r(a)], _readout_rows,
          threads=1, code=_VISION_CODE,
          quick=lambda a: ["--readouts", "2", "--n", "300", "--n-test", "50", "--epochs", "2",
                           "--threads", "1", *_r(a)]),
]
BY_NAME = {b.name: b for b in BENCHMARKS}


# ----------------------------------------------------------------------------- running
def child_env(threads: int) -> dict:
    """The benchmark process's environment: thread variables fixed, this checkout first, offline."""
    env = dict(os.environ)
    for var in br.THREAD_VARIABLES:
        env[var] = str(threads)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    return env


class LoadSampler(threading.Thread):
    """Samples the 1-minute load average every few seconds while a benchmark runs."""

    def __init__(self, every: float = 5.0):
        super().__init__(daemon=True)
        self.every, self.samples, self._stop_event = every, [], threading.Event()

    def run(self):
        while not self._stop_event.wait(self.every):
            self.samples.append(br.load_average()[0])

    def stop(self) -> list:
        self._stop_event.set()
        self.join()
        return self.samples


def run_one(bench: Bench, a: argparse.Namespace, code: str = "") -> dict | None:
    """Run one benchmark in its own process; the results entry, or ``None`` if it failed."""
    cuda = a.device.startswith("cuda")
    make_args = bench.quick if a.quick else bench.cuda if cuda else bench.args
    name = bench.name + ("@cuda" if cuda else "")
    if make_args is None:
        print(f"== {name}: no {'quick' if a.quick else a.device} variant; skipped", flush=True)
        return None
    script = str(HERE / bench.script)
    env = child_env(bench.threads)
    Path(a.workdir).mkdir(parents=True, exist_ok=True)
    if bench.prepare is not None:
        prep = [sys.executable, script, *bench.prepare(a)]
        if not Path(prep[3]).exists():
            subprocess.run(prep, env=env, check=True, cwd=ROOT)
    argv = [sys.executable, script, *make_args(a)]
    print(f"\n== {name}: {br.command_line(argv)}  (threads {bench.threads})", flush=True)
    with tempfile.TemporaryDirectory(dir=a.workdir) as tmp:
        out = Path(tmp) / "result.json"
        date, commit = br.utc_now(), br.git_commit()
        settled, waited = (None, 0.0) if a.settle_timeout == 0 else br.wait_for_load(
            SETTLED_LOAD * os.cpu_count(), a.settle_timeout)
        if waited >= 1:
            print(f"== {name}: waited {waited:.0f} s for the load average to settle "
                  f"({settled:.2f})", flush=True)
        sampler = LoadSampler()
        before = br.load_average()
        t0 = time.perf_counter()
        sampler.start()
        try:
            proc = subprocess.run([*argv, "--json", str(out)], env=env, cwd=ROOT, timeout=a.timeout)
        except subprocess.TimeoutExpired:
            sampler.stop()
            print(f"== {name} FAILED: still running after {a.timeout} s (stopped)", file=sys.stderr,
                  flush=True)
            return None
        wall = time.perf_counter() - t0
        after = br.load_average()
        during = sampler.stop()
        if proc.returncode != 0 or not out.exists():
            print(f"== {name} FAILED (exit code {proc.returncode})", file=sys.stderr, flush=True)
            return None
        data = json.loads(out.read_text())
    cores = int(os.cpu_count() or 1)
    reliable, reason = br.assess_load(before, after, cores)
    env_rec = data.pop("environment")
    entry = {
        "name": name, "title": bench.title, "device": a.device, "command": br.command_line(argv),
        "date": date, "commit": commit,
        "settings": {"threads": bench.threads, "repeats": a.repeats, "quick": a.quick,
                     "thread_variables": {v: env[v] for v in br.THREAD_VARIABLES}},
        "environment": env_rec,
        "load": {"before": before, "after": after, "cores": cores,
                 "max_during": max(during, default=None), "settle_wait_s": round(waited, 1)},
        "reliable": reliable, "unreliable_reason": reason, "wall_s": round(wall, 1),
        "rows": bench.rows(data), "raw": data, "fingerprint": code,
    }
    br.validate_entry(entry)
    verdict = "reliable" if reliable else f"UNRELIABLE ({reason})"
    print(f"== {name}: {wall:.0f} s; load {before[0]:.2f} → {after[0]:.2f} on {cores} cores: "
          f"{verdict}", flush=True)
    return entry


def report_reproduction(entry: dict, old: dict | None) -> None:
    """Print how this run's ratios compare with the spread its record reported."""
    rep, name = entry.get("reproduction"), entry["name"]
    if rep is None:
        why = ("no earlier run" if old is None else
               "the record measured other code" if old.get("fingerprint") != entry["fingerprint"]
               else "this run or the record is unreliable")
        print(f"== {name}: no reproduction check ({why})", flush=True)
        return
    if not rep["rows"]:
        what = ("its rows have no reference (nothing to compare)"
                if all(r["ratio"] is None for r in entry["rows"])
                else "no ratio of this run matches a row of the record")
        print(f"== {name}: no reproduction check ({what})", flush=True)
    for r in rep["rows"]:
        verdict = "reproduced" if r["within"] else "OUTSIDE"
        print(f"== {name}: {r['case']}: {r['ratio']:.2f}× against the recorded "
              f"{r['recorded_ratio']:.2f}× ({r['recorded_min']:.2f}–{r['recorded_max']:.2f}×, "
              f"{rep['against_runs']} run(s)): {verdict}", flush=True)


def load_results(path: Path) -> dict:
    """The results file (validated), or an empty one."""
    if not path.exists():
        return {"schema": 1, "benchmarks": {}}
    results = json.loads(path.read_text())
    br.validate_results(results)
    return results


def write_report(results: dict, docs: Path) -> bool:
    """Regenerate the page's tables from the results; ``True`` if the page changed."""
    text = docs.read_text()
    new = br.update_markdown(text, results)
    if new != text:
        atomic_write_text(docs, new)
    return new != text


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", action="append", default=None,
                    help="benchmark name(s), comma-separated or repeated (default: all)")
    ap.add_argument("--report", action="store_true", help="regenerate the docs tables only")
    ap.add_argument("--list", action="store_true", help="print the benchmarks and their commands")
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the reference GPU sizes")
    ap.add_argument("--repeats", type=int, default=REPEATS, help="repeats per benchmark (≥ 3)")
    ap.add_argument("--quick", action="store_true",
                    help="tiny sizes into a scratch results file (checks the tooling only)")
    ap.add_argument("--results", type=Path, default=None,
                    help=f"default: {RESULTS.relative_to(ROOT)}")
    ap.add_argument("--docs", type=Path, default=DOCS, help="the page whose tables are regenerated")
    ap.add_argument("--timeout", type=float, default=1800,
                    help="seconds after which one benchmark is stopped and counted as failed")
    ap.add_argument("--settle-timeout", type=float, default=None,
                    help="longest wait (s) before each benchmark for the 1-minute load average "
                         f"to fall to {SETTLED_LOAD:g} × cores (default 300; 0 with --quick)")
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "brainllm_bench"),
                    help="scratch files (NSD-shaped roots, the training pool)")
    a = ap.parse_args(argv)
    if a.settle_timeout is None:
        a.settle_timeout = 0.0 if a.quick else 300.0
    if not a.settle_timeout >= 0:
        ap.error(f"--settle-timeout {a.settle_timeout!r}: expected seconds ≥ 0")
    if a.repeats < 3 and not a.quick:
        ap.error("--repeats must be ≥ 3 (medians of at least 3 interleaved repeats)")
    if a.device not in ("cpu", "cuda") and not a.device.startswith("cuda:"):
        ap.error(f"--device must be cpu or cuda[:N], got {a.device!r}")
    names = [n for spec in (a.only or []) for n in spec.split(",") if n] or list(BY_NAME)
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        ap.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BY_NAME)}")
    results_path = a.results or (Path(a.workdir) / "benchmarks_quick.json" if a.quick else RESULTS)
    if a.quick and results_path.resolve() == RESULTS.resolve():
        ap.error("--quick never writes the committed results file")
    if a.list:
        for n in names:
            b = BY_NAME[n]
            command = br.command_line(["python", str(HERE / b.script), *b.args(a)])
            print(f"{n:18s} {b.title}\n{'':18s} {command}"
                  f"  (threads {b.threads})")
        return 0
    if a.report:
        changed = write_report(load_results(results_path), a.docs)
        print(f"{a.docs}: {'tables regenerated' if changed else 'already up to date'}")
        return 0
    results = load_results(results_path)
    failed, t0 = [], time.perf_counter()
    for n in names:
        entry = run_one(BY_NAME[n], a, fingerprint(BY_NAME[n]))
        if entry is None:
            failed.append(n)
            continue
        old = results["benchmarks"].get(entry["name"])
        entry["reproduction"] = br.reproduction(entry, old) if entry["reliable"] else None
        report_reproduction(entry, old)
        br.merge_history(entry, old)
        results["benchmarks"][entry["name"]] = entry
        results_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(results_path, json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    print(f"\n{len(names) - len(failed)} of {len(names)} benchmarks in "
          f"{time.perf_counter() - t0:.0f} s; "
          f"results in {results_path}", flush=True)
    if not a.quick:
        write_report(results, a.docs)
        print(f"tables of {a.docs} regenerated")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
