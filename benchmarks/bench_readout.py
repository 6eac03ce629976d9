"""Time transfer readouts: one at a time vs side by side (vision.transfer_readouts).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_readout.py --readouts 5 --epochs 20

Random features (n images × width) and a 768-d target, the chapter-05 shapes (4 trained
BLTs + the untrained one, 64 pooled channels, ~2,700 NSD images, 500 held out); prints the
seconds of each way, their ratio and the largest difference of the predictions.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--readouts", type=int, default=5)
    ap.add_argument("--n", type=int, default=2700)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=1,
                    help="timed runs of each way, interleaved (medians are printed)")
    ap.add_argument("--json", type=Path, default=None,
                    help="also write the settings, every repeat and the medians here")
    args = ap.parse_args(argv)

    import torch

    from brainllm_utils import vision
    from brainllm_utils._utils.benchrecord import environment, interleaved_order

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    sets = [rng.standard_normal((args.n, args.width)).astype(np.float32) for _ in range(args.readouts)]
    Y = (sets[0] @ rng.standard_normal((args.width, args.dim))).astype(np.float32)
    k = args.n_test
    pairs = [(X[:-k], X[-k:]) for X in sets]

    def one_at_a_time(epochs=args.epochs, rows=slice(None)):
        return [vision.transfer_readouts([(a[rows], b)], Y[:-k][rows], Y[-k:], "cosine",
                                         epochs=epochs)[0] for a, b in pairs]

    def side_by_side(epochs=args.epochs, rows=slice(None)):
        return vision.transfer_readouts([(a[rows], b) for a, b in pairs], Y[:-k][rows], Y[-k:],
                                        "cosine", epochs=epochs)

    one_at_a_time(1, slice(0, 256)), side_by_side(1, slice(0, 256))  # warm-up
    ways = {"one": one_at_a_time, "many": side_by_side}
    runs, out = {"one": [], "many": []}, {}
    for order in interleaved_order(["one", "many"], args.repeats):
        for way in order:
            t0 = time.perf_counter()
            out[way] = ways[way]()
            runs[way].append(time.perf_counter() - t0)
    one, many = out["one"], out["many"]
    t_one, t_many = statistics.median(runs["one"]), statistics.median(runs["many"])
    diff = max(float(np.abs(a["predictions"] - b["predictions"]).max()) for a, b in zip(one, many))
    print(f"{args.readouts} readouts, {args.n - k} train / {k} test, width {args.width} → {args.dim}, "
          f"{args.epochs} epochs, {torch.get_num_threads()} thread(s)")
    print(f"one at a time {t_one:.2f} s; side by side {t_many:.2f} s; ratio {t_one / t_many:.2f}x; "
          f"max |prediction difference| {diff:.2e}")
    if args.json:
        args.json.write_text(json.dumps({
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "runs": runs, "one_at_a_time_s": t_one, "side_by_side_s": t_many,
            "ratio": t_one / t_many, "max_abs_prediction_diff": diff,
            "threads": torch.get_num_threads(), "environment": environment()}, indent=1))


if __name__ == "__main__":
    main()
