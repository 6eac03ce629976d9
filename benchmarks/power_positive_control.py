"""Calibration and power of the RQ2 claims: null world vs positive world, over seeds.

For every seed, one null world (preset ``tiny``) and one positive world (``tiny_positive``:
ventral and lateral half driven by MiniLM's caption embeddings) are generated with 8
subjects and the largest number of images per subject; the first 2, 4 and 8 subjects are
scored on a seeded draw of 30 and 60 of their images with the chapters' RQ2 code (sampled
ROI RSA, paired t-test across subjects of ``mpnet − control`` at α = 0.05;
:mod:`brainllm_utils.chapters.power`). Writes, under ``--out``:

- ``power_runs.csv``: one row per world, seed, group size, images, ROI and claim;
- ``power_curves.csv``: the rates (false-positive rate in the null world, detection rate
  in the positive world) with exact binomial intervals, the effect sizes and their
  recovery against the planted space (:func:`~brainllm_utils.chapters.power.power_summary`);
- ``power_settings.json``: the command, settings, package version, git revision, machine
  and wall time.

The files are rewritten after each seed; with ``--max-minutes`` no seed is started that
would (at the pace of the last one) end past the budget, and the JSON says how many seeds
ran (``complete`` is false when fewer than asked).

Generated data only (never NSD). The default sweep asks for 10 seeds × 2 worlds × 30/60
images × 2/4/8 subjects and stops starting seeds after ``--max-minutes`` (18); most of a
seed's time is MPNet embedding its captions (once per seed: the null and positive worlds of a
seed share them, through the embedding cache). ``power_settings.json`` records the wall time,
the seeds run and the machine's load:

    .venv/bin/python benchmarks/power_positive_control.py                 # the default sweep
    .venv/bin/python benchmarks/power_positive_control.py --seeds 2 --n-images 30   # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent


def git_revision() -> str:
    """HEAD's commit, with ``+dirty`` when tracked files differ from it ("" without git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=ROOT, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if head and dirty else "")


def _resummarise(out: Path, alpha: float) -> int:
    from brainllm_utils.chapters.power import power_summary, read_results, write_results

    runs, _, settings = read_results(out)
    summary = power_summary(runs, alpha=alpha)
    settings["summary_revision"] = git_revision()
    settings["summary_command"] = "python benchmarks/power_positive_control.py --resummarise"
    write_results(out, runs, summary, settings)
    print(f"rewrote {out}/power_curves.csv from {len(runs)} runs ({len(summary)} rows)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, default=10, help="number of seeds (worlds per setting)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--n-subjects", type=int, nargs="+", default=[2, 4, 8])
    p.add_argument("--n-images", type=int, nargs="+", default=[30, 60], help="images per subject")
    p.add_argument("--worlds", nargs="+", default=["null", "positive"], choices=["null", "positive"])
    p.add_argument("--alpha", type=float, default=0.05)
    p.add_argument("--n-captions", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "book" / "results", help="folder of the result files")
    p.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    p.add_argument("--max-minutes", type=float, default=18.0,
                   help="stop starting seeds that would end past this wall time (the JSON records the "
                        "seeds run); 0: no limit")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="caption-embedding cache (default: BRAINLLM_CACHE / the package's cache)")
    p.add_argument("--resummarise", action="store_true",
                   help="run nothing: re-read --out's power_runs.csv and rewrite power_curves.csv with "
                        "this revision's power_summary (the settings record both revisions)")
    args = p.parse_args(argv)
    if args.resummarise:
        return _resummarise(args.out, args.alpha)
    if args.seeds < 1:
        p.error("--seeds must be ≥ 1")
    if args.cache_dir is not None:
        os.environ["BRAINLLM_CACHE"] = str(args.cache_dir)

    import brainllm_utils
    from brainllm_utils.chapters.power import power_summary, power_sweep, write_results

    import pandas as pd

    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    print(f"power sweep: seeds {seeds[0]}..{seeds[-1]}, worlds {args.worlds}, subjects {args.n_subjects}, "
          f"images {args.n_images}, alpha {args.alpha}; brainllm_utils {brainllm_utils.__version__}; "
          f"{os.cpu_count()} CPUs", flush=True)
    revision = git_revision()  # the code that runs: read once, before any result is written
    t0 = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    frames, done, last = [], [], 0.0

    def report(k, total, message):
        print(f"  seed {seed} [{k}/{total}] {message}", flush=True)

    for seed in seeds:
        elapsed = time.perf_counter() - t0
        if args.max_minutes and done and elapsed + last > 60 * args.max_minutes:
            print(f"stopping before seed {seed}: {elapsed:.0f} s spent, a seed takes ~{last:.0f} s, "
                  f"budget {args.max_minutes:g} min", flush=True)
            break
        ts = time.perf_counter()
        frames.append(power_sweep([seed], args.worlds, args.n_subjects, args.n_images, alpha=args.alpha,
                                  workdir=args.workdir, n_captions=args.n_captions, progress=report))
        last = time.perf_counter() - ts
        done.append(seed)
        runs = pd.concat(frames, ignore_index=True)
        summary = power_summary(runs, alpha=args.alpha)
        wall = time.perf_counter() - t0
        settings = dict(
            command="python benchmarks/power_positive_control.py " + " ".join(sys.argv[1:] if argv is None else argv),
            seeds_asked=seeds, seeds_run=done, complete=len(done) == len(seeds), worlds=args.worlds,
            n_subjects=args.n_subjects, n_images=args.n_images, alpha=args.alpha, n_captions=args.n_captions,
            nested=("one world per seed and kind with max(n_subjects) subjects and max(n_images) images per "
                    "subject; each setting scores its first n subjects on a seeded draw of n_images images"),
            presets={"null": "tiny", "positive": "tiny_positive"},
            test="paired t-test across subjects of mpnet - control ROI RSA r (one sample set per subject); "
                 "detected: p <= alpha and mpnet ahead",
            intervals="Clopper-Pearson 95 %", brainllm_utils=brainllm_utils.__version__,
            git_revision=revision, python=platform.python_version(), machine=platform.machine(),
            cpus=os.cpu_count(), load_average_at_write=list(os.getloadavg()), wall_seconds=round(wall, 1),
            seconds_per_seed=round(wall / len(done), 1), data="generated sandbox worlds only (no NSD data)")
        write_results(args.out, runs, summary, settings)
        print(f"seed {seed} done in {last:.0f} s ({len(done)}/{len(seeds)}; {wall:.0f} s in all)", flush=True)
    show = summary[["world", "claim", "roi", "n_subjects", "n_images", "n_runs", "rate", "ci_low", "ci_high",
                    "effect_mean", "recovered"]]
    print(show.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    print(f"wall time {wall:.0f} s; wrote {args.out}/power_runs.csv, power_curves.csv, power_settings.json")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
