"""Benchmark brainllm_utils.embeddings.embed_sentences against sentence-transformers.

Same model, device, sentences and precision; interleaved repeats after a warm-up; median
of the repeats; disk cache disabled for ours. sentence-transformers gets each batch size
in ``--st-batch-sizes`` and is reported at its best.

    python benchmarks/bench_embeddings.py --model mpnet --n 1000 --device cpu --threads 2

On CUDA it also runs ours in bf16 and sentence-transformers in fp16 (``.half()``) and
checks the 20,000 sentences/s target.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

TARGET_CUDA = 20_000  # sentences/s, ours in bf16 on one GPU

_DET = ["a", "the", "two", "three", "some", "several", "an old", "a small", "a large"]
_ADJ = ["red", "white", "wooden", "busy", "empty", "green", "young", "tall", "striped", "blue",
        "crowded", "dirty", "small", "large", "black", "brown", "old", "colorful"]
_NOUN = ["man", "woman", "dog", "cat", "giraffe", "bus", "train", "kitchen", "table", "pizza",
         "street", "boat", "horse", "elephant", "skateboard", "bench", "plate", "clock", "tower",
         "field", "beach", "umbrella", "bicycle", "car", "sign", "laptop", "bed", "child", "zebra"]
_VERB = ["sitting", "standing", "walking", "parked", "eating", "riding", "lying", "holding",
         "looking", "playing", "waiting", "running", "flying", "resting"]
_PREP = ["on", "in", "next to", "near", "under", "behind", "in front of", "beside", "across"]


def make_captions(n: int, seed: int = 0) -> list[str]:
    """Deterministic COCO-like captions of 8–17 words from a small scene vocabulary."""
    rng = np.random.default_rng(seed)

    def pick(words):
        return words[rng.integers(len(words))]

    out = []
    for _ in range(n):
        target = int(rng.integers(8, 18))
        words = f"{pick(_DET)} {pick(_ADJ)} {pick(_NOUN)} {pick(_VERB)} {pick(_PREP)} the {pick(_NOUN)}".split()
        while len(words) < target:
            extra = f"{pick(_PREP)} a {pick(_ADJ)} {pick(_NOUN)}".split()
            words += extra
        words = words[:target]
        out.append(" ".join(words).capitalize() + ".")
    return out


def cpu_name() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except Exception:  # noqa: BLE001
        pass
    return platform.processor() or "unknown"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="mpnet", help="mpnet, minilm, a Hub name or a folder")
    p.add_argument("--n", type=int, default=1000, help="number of sentences")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (CPU)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--st-batch-sizes", default="32,256", help="comma-separated; best is reported")
    p.add_argument("--batch-size", type=int, default=None, help="ours (default: automatic)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=Path, default=None,
                   help="also write the settings, every repeat, medians and ratios here")
    args = p.parse_args(argv)

    import torch
    from sentence_transformers import SentenceTransformer

    import brainllm_utils
    from brainllm_utils._utils.benchrecord import environment, interleaved_order
    from brainllm_utils.embeddings import embed_sentences, get_model_spec
    from brainllm_utils.weights import resolve_model

    if args.threads:
        torch.set_num_threads(args.threads)
    device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    cuda = device.startswith("cuda")
    sentences = make_captions(args.n, args.seed)
    spec = get_model_spec(args.model)
    path = resolve_model(args.model)
    words = [len(s.split()) for s in sentences]
    print(f"model      {spec.name} (dim {spec.dim}, max_seq_length {spec.max_seq_length})")
    print(f"machine    {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} threads; device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if cuda else ""))
    print(f"sentences  n={len(sentences)}, {min(words)}-{max(words)} words (mean {np.mean(words):.1f}), "
          f"{len(set(sentences))} distinct, seed {args.seed}; brainllm_utils {brainllm_utils.__version__}")

    st = SentenceTransformer(str(path), device=device)
    st_half = None
    if cuda:
        st_half = SentenceTransformer(str(path), device=device).half()
    st_sizes = [int(b) for b in args.st_batch_sizes.split(",") if b]

    def sync():
        if cuda:
            torch.cuda.synchronize()

    runs = {}

    def ours(prec):
        return lambda s: embed_sentences(s, model=args.model, device=device, batch_size=args.batch_size,
                                         cache=False, precision=prec, progress=False)

    runs["ours fp32"] = ours("fp32")
    if cuda:
        runs["ours bf16"] = ours("bf16")
    for b in st_sizes:
        runs[f"st fp32 b{b}"] = (lambda b: lambda s: st.encode(s, batch_size=b, normalize_embeddings=False,
                                                               show_progress_bar=False))(b)
        if cuda:
            runs[f"st fp16 b{b}"] = (lambda b: lambda s: st_half.encode(s, batch_size=b, normalize_embeddings=False,
                                                                        show_progress_bar=False))(b)

    # warm-up (also loads our model once) and agreement
    warm = sentences[: min(256, len(sentences))]
    for fn in runs.values():
        fn(warm)
    sync()
    times = {k: [] for k in runs}
    outputs = {}
    for rep, order in enumerate(interleaved_order(list(runs), args.repeats)):
        for name in order:  # interleaved: the order alternates between repeats
            fn = runs[name]
            sync()
            t0 = time.perf_counter()
            out = fn(sentences)
            sync()
            times[name].append(time.perf_counter() - t0)
            if rep == 0:
                outputs[name] = np.asarray(out, dtype=np.float32)

    rate = {k: len(sentences) / statistics.median(v) for k, v in times.items()}
    print(f"\n{'path':<16} {'median s':>9} {'sent/s':>9}   repeats (s)")
    for k in runs:
        print(f"{k:<16} {statistics.median(times[k]):9.3f} {rate[k]:9.1f}   "
              + ", ".join(f"{t:.2f}" for t in times[k]))

    def cos_min(a, b):
        return float(((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)).min())

    ref = outputs[f"st fp32 b{st_sizes[0]}"]
    best_st32 = max((k for k in runs if k.startswith("st fp32")), key=rate.get)
    print(f"\nours fp32 vs best sentence-transformers fp32 ({best_st32}): "
          f"{rate['ours fp32'] / rate[best_st32]:.2f}x")
    print(f"agreement ours fp32 vs st fp32: min cosine {cos_min(outputs['ours fp32'], ref):.7f}, "
          f"max abs diff {np.abs(outputs['ours fp32'] - ref).max():.2e}")
    if cuda:
        best_st = max((k for k in runs if k.startswith("st")), key=rate.get)
        print(f"ours bf16 vs best sentence-transformers ({best_st}): {rate['ours bf16'] / rate[best_st]:.2f}x")
        print(f"agreement ours bf16 vs st fp32: min cosine {cos_min(outputs['ours bf16'], ref):.5f}")
        ok = rate["ours bf16"] >= TARGET_CUDA
        print(f"target {TARGET_CUDA:,} sent/s (ours bf16): {'PASS' if ok else 'FAIL'} ({rate['ours bf16']:,.0f})")
    if args.json:
        agree = {k: {"min_cosine": cos_min(outputs[k], ref),
                     "max_abs_diff": float(np.abs(outputs[k] - ref).max())}
                 for k in runs if k.startswith("ours")}
        args.json.write_text(json.dumps({
            "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
            "model": spec.name, "device": device, "n": len(sentences), "runs": times,
            "rate": rate, "best_st_fp32": best_st32, "st_default": f"st fp32 b{st_sizes[0]}",
            "agreement_vs_st_fp32": agree, "environment": environment()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
