"""Time BLT training per network from a portable pool file (any machine, CPU or GPU).

Step 1, where the sandbox is (writes images + both objectives' targets, ~10 MB)::

    .venv/bin/python benchmarks/bench_training.py export pool.npz --n 2200

Step 2, anywhere (needs only numpy, torch and this repository)::

    python benchmarks/bench_training.py run pool.npz --preset sandbox --device cpu --threads 2
    python benchmarks/bench_training.py run pool.npz --preset sandbox --device cuda
    python benchmarks/bench_training.py run pool.npz --preset paper --device cuda --epochs 1

Without a sandbox, ``synth`` writes a pool of random images and targets of the same shapes
(the time of an epoch does not depend on the pixel values)::

    python benchmarks/bench_training.py synth pool.npz --n 2200

Trains one network per objective (``mpnet``: cosine loss on caption embeddings;
``multihot``: BCE on category labels) on the first ``n - n_val`` images, scores the last
``n_val`` after every epoch, and prints seconds per network and per epoch, the final loss
and the held-out cosine per time step. Images are resized to the preset's input size (so the
``paper`` preset trains at 128 px on upsampled sandbox images: a timing, not a result).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def export(path, n, root=None, size=None):
    from brainllm_utils import vision

    # decoded into memory at one size: COCO's native sizes vary, so give --size on real COCO
    pool = vision.load_training_pool(root, n_images=n, size=size, in_memory=True)
    np.savez_compressed(path, images=pool.images,
                        mpnet=vision.make_targets("mpnet", pool.captions, pool.multihot),
                        multihot=vision.make_targets("multihot", pool.captions, pool.multihot))
    print(f"wrote {path}: {len(pool)} images {pool.images.shape[1:]}")


def synth(path, n, size=96, n_categories=80, dim=768, seed=0):
    """A pool file of random uint8 images and random targets of the real shapes (timing only)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    mpnet = rng.standard_normal((n, dim)).astype(np.float32)
    mpnet /= np.linalg.norm(mpnet, axis=1, keepdims=True)
    multihot = (rng.random((n, n_categories)) < 0.05).astype(np.float32)
    np.savez(path, images=images, mpnet=mpnet, multihot=multihot)
    print(f"wrote {path}: {n} random images {images.shape[1:]}, targets {dim} / {n_categories}")


def _resize(images, size):
    import torch
    import torch.nn.functional as F

    if images.shape[1] == size:
        return images
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def run(path, preset, device, threads, epochs, n_val, objectives, json_out, repeats=1, warmup=0):
    import torch

    from brainllm_utils import vision
    from brainllm_utils._utils.benchrecord import environment, interleaved_order

    if threads:
        torch.set_num_threads(threads)
    data = np.load(path)
    cfg, tc = vision.PRESETS[preset]
    if epochs:
        tc = dataclasses.replace(tc, epochs=epochs)
    images = _resize(data["images"], cfg.image_size)
    n_train = len(images) - n_val
    out = {"device": device, "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
           "threads": torch.get_num_threads(), "preset": preset, "n_train": n_train, "n_val": n_val,
           "image_size": cfg.image_size, "epochs": tc.epochs, "torch": torch.__version__,
           "python": platform.python_version(), "repeats": repeats, "warmup_images": warmup,
           "networks": {}}
    targets = {o: data[o].astype(np.float32) for o in objectives}
    train_cfg = {o: dataclasses.replace(tc, loss="cosine" if o == "mpnet" else "bce") for o in objectives}
    for objective in objectives if warmup else []:  # one short epoch each (allocator, kernels)
        vision.train_network(images[:warmup], targets[objective][:warmup], cfg,
                             dataclasses.replace(train_cfg[objective], epochs=1), seed=0,
                             device=device, progress=False, name=objective)
    for objective in [o for order in interleaved_order(objectives, repeats) for o in order]:
        y, t = targets[objective], train_cfg[objective]
        t0 = time.perf_counter()
        net = vision.train_network(images[:n_train], y[:n_train], cfg, t, seed=0,
                                   val_images=images[n_train:], val_targets=y[n_train:],
                                   device=device, progress=False, name=objective)
        secs = time.perf_counter() - t0
        last = net.history[-1]
        rec = out["networks"].setdefault(objective, {"runs": [], "epoch_seconds_runs": []})
        rec["runs"].append(secs)
        rec["epoch_seconds_runs"].append([h["seconds"] for h in net.history])
        rec.update({
            "seconds": round(statistics.median(rec["runs"]), 2),
            "epoch_seconds": [round(h["seconds"], 2) for h in net.history],
            "final_loss": last["loss"], "val_cosine_per_step": last.get("val_cosine")})
        per_epoch = ", ".join(f"{h['seconds']:.2f}" for h in net.history)
        print(f"{preset:11s} {objective:9s} {device:5s} {secs:8.1f} s  ({per_epoch} s/epoch)  "
              f"loss {last['loss']:.4f}", flush=True)
    if json_out:
        out["environment"] = environment()
        Path(json_out).write_text(json.dumps(out, indent=1))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("export")
    e.add_argument("path")
    e.add_argument("--n", type=int, default=2200)
    e.add_argument("--root", default=None)
    e.add_argument("--size", type=int, default=None,
                   help="decode every image at this square size (needed when native sizes vary)")
    s = sub.add_parser("synth")
    s.add_argument("path")
    s.add_argument("--n", type=int, default=2200)
    s.add_argument("--size", type=int, default=96, help="square image size (the sandbox pool's)")
    s.add_argument("--seed", type=int, default=0)
    r = sub.add_parser("run")
    r.add_argument("path")
    r.add_argument("--preset", default="sandbox")
    r.add_argument("--device", default="cpu")
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--epochs", type=int, default=None)
    r.add_argument("--n-val", type=int, default=200)
    r.add_argument("--objectives", nargs="+", default=["mpnet", "multihot"])
    r.add_argument("--json", default=None)
    r.add_argument("--repeats", type=int, default=1,
                   help="trainings per objective, interleaved (the JSON keeps every run)")
    r.add_argument("--warmup", type=int, default=0,
                   help="first train one epoch on this many images per objective (untimed)")
    args = ap.parse_args(argv)
    if args.cmd == "export":
        export(args.path, args.n, args.root, args.size)
    elif args.cmd == "synth":
        synth(args.path, args.n, args.size, seed=args.seed)
    else:
        run(args.path, args.preset, args.device, args.threads, args.epochs, args.n_val,
            args.objectives, args.json, args.repeats, args.warmup)


if __name__ == "__main__":
    main()
