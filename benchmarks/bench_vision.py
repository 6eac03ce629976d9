"""Time BLT training per network on the default sandbox (CPU or GPU).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_vision.py --threads 1
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_vision.py --threads 2
    .venv/bin/python benchmarks/bench_vision.py --device cuda --preset sandbox_gpu

Loads the training pool (cached), builds the targets (MPNet embeddings are cached after
the first run; their time is reported separately), then trains one network per objective
with the chosen preset into a temporary checkpoint folder (nothing is reused) and prints
seconds per network and per epoch, the final loss and the held-out cosine per time step.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=None, help="NSD root (default: get_data_home())")
    ap.add_argument("--preset", default="sandbox")
    ap.add_argument("--objectives", nargs="+", default=["mpnet", "multihot"])
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--epochs", type=int, default=None)
    ap.add_argument("--n-val", type=int, default=200)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)

    import dataclasses

    import torch

    from brainllm_utils import vision

    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    pool = vision.load_training_pool(args.root)
    t_pool = time.perf_counter() - t0
    cfg, tc = vision.PRESETS[args.preset]
    if args.epochs:
        tc = dataclasses.replace(tc, epochs=args.epochs)
    results = {"device": args.device, "threads": torch.get_num_threads(), "preset": args.preset,
               "config": cfg.to_dict(), "train_config": tc.to_dict(), "n_pool": len(pool),
               "pool_seconds": t_pool, "python": platform.python_version(), "torch": torch.__version__,
               "networks": {}}
    for objective in args.objectives:
        t0 = time.perf_counter()
        vision.make_targets(objective, pool.captions, pool.multihot)  # warm the embedding cache
        t_targets = time.perf_counter() - t0
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            net = vision.train_or_load(args.root, objective, seed=0, preset=args.preset, config=cfg,
                                       train_config=dataclasses.replace(tc, loss="cosine" if objective == "mpnet" else "bce"),
                                       n_val=args.n_val, device=args.device, pool=pool, checkpoint_root=tmp)
            secs = time.perf_counter() - t0
        last = net.history[-1]
        results["networks"][objective] = {
            "seconds": secs, "targets_seconds": t_targets, "n_train": net.meta["n_train"],
            "epoch_seconds": [round(h["seconds"], 2) for h in net.history],
            "final_loss": last["loss"], "val_cosine_per_step": last.get("val_cosine")}
        per_epoch = ", ".join(f"{h['seconds']:.1f}" for h in net.history)
        print(f"{objective:9s} {secs:7.1f} s  ({per_epoch} s/epoch)  "
              f"loss {last['loss']:.4f}  val cos/step {[round(c, 3) for c in last.get('val_cosine', [])]}",
              flush=True)
    print(json.dumps(results, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
