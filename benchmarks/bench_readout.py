"""Time transfer readouts: one at a time vs side by side (vision.transfer_readouts).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_readout.py --readouts 5 --epochs 20

Random features (n images × width) and a 768-d target, the chapter-05 shapes (4 trained
BLTs + the untrained one, 64 pooled channels, ~2,700 NSD images, 500 held out); prints the
seconds of each way, their ratio and the largest difference of the predictions.
"""

from __future__ import annotations

import argparse
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
    args = ap.parse_args(argv)

    import torch

    from brainllm_utils import vision

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    sets = [rng.standard_normal((args.n, args.width)).astype(np.float32) for _ in range(args.readouts)]
    Y = (sets[0] @ rng.standard_normal((args.width, args.dim))).astype(np.float32)
    k = args.n_test
    pairs = [(X[:-k], X[-k:]) for X in sets]
    t0 = time.perf_counter()
    one = [vision.transfer_readouts([p], Y[:-k], Y[-k:], "cosine", epochs=args.epochs)[0] for p in pairs]
    t_one = time.perf_counter() - t0
    t0 = time.perf_counter()
    many = vision.transfer_readouts(pairs, Y[:-k], Y[-k:], "cosine", epochs=args.epochs)
    t_many = time.perf_counter() - t0
    diff = max(float(np.abs(a["predictions"] - b["predictions"]).max()) for a, b in zip(one, many))
    print(f"{args.readouts} readouts, {args.n - k} train / {k} test, width {args.width} → {args.dim}, "
          f"{args.epochs} epochs, {torch.get_num_threads()} thread(s)")
    print(f"one at a time {t_one:.2f} s; side by side {t_many:.2f} s; ratio {t_one / t_many:.2f}x; "
          f"max |prediction difference| {diff:.2e}")


if __name__ == "__main__":
    main()
