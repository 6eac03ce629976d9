"""Searchlight RSA: brainllm_utils vs rsatoolbox on the same random volume, plus NSD projections.

One command (CPU, ~3-5 minutes on 2 cores)::

    .venv/bin/python benchmarks/bench_searchlight.py

GPU, NSD-sized (100 sets × 100 images × ~100,000 centres of up to ~900 voxels)::

    python benchmarks/bench_searchlight.py --skip-peer --device cuda --nsd-sets 100 --nsd-centres 100000

Each measurement runs in its own spawned process (so its peak RSS is its own), ours and
rsatoolbox's interleaved, ``--repeats`` times; medians are reported. rsatoolbox runs on
``--peer-centres`` centres (a random subset of the same spheres) and is extrapolated per
centre; both the measured and the extrapolated numbers are printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _n_centres(mask: np.ndarray, radius: float) -> int:
    """Centres (≥ 50 % of the sphere in the mask) counted by an FFT convolution."""
    from scipy.signal import fftconvolve

    from brainllm_utils.searchlight import sphere_offsets

    off = sphere_offsets(radius)
    R = int(off.max())
    ker = np.zeros((2 * R + 1,) * 3)
    ker[tuple((off + R).T)] = 1
    cnt = fftconvolve(mask.astype(float), ker, mode="same")
    return int((mask & (cnt >= 0.5 * len(off) - 1e-6)).sum())


def _ball_mask(n_centres_target: int, radius: float) -> np.ndarray:
    """A ball-shaped mask sized so that about ``n_centres_target`` voxels are centres."""
    R = (3 * n_centres_target / (4 * np.pi)) ** (1 / 3) + radius / 2
    for _ in range(12):
        size = int(2 * np.ceil(R + radius) + 3)
        g = np.indices((size,) * 3) - (size - 1) / 2
        mask = (g**2).sum(0) < R**2
        n_c = _n_centres(mask, radius)
        if abs(n_c - n_centres_target) < 0.02 * n_centres_target:
            break
        R *= (n_centres_target / max(n_c, 1)) ** (1 / 3)
    return mask


def _problem(a):
    from scipy.spatial.distance import pdist

    from brainllm_utils.searchlight import volume_neighbourhoods

    mask = _ball_mask(a["n_centres"], a["radius"])
    centres, nbs = volume_neighbourhoods(mask, a["radius"])
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(a["n_stimuli"], int(mask.sum()))).astype(np.float32)
    F = rng.normal(size=(a["n_stimuli"], a["model_dim"]))
    model_rdm = pdist(F, "correlation")
    peer_idx = np.sort(rng.choice(len(centres), min(a["peer_centres"], len(centres)),
                                  replace=False))
    return mask, centres, nbs, Y, F, model_rdm, peer_idx


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(job, a, q):
    import os

    os.environ["TQDM_DISABLE"] = "1"
    import torch

    torch.set_num_threads(a["threads"])
    mask, centres, nbs, Y, F, model_rdm, peer_idx = _problem(a)
    out = {"job": job}
    if job.startswith("ours"):
        from brainllm_utils.searchlight import searchlight_rsa

        models = model_rdm if job == "ours_rdm" else F
        searchlight_rsa(Y, nbs[:200], models, progress=False, device=a["device"])  # warm-up
        base = _rss_mb()
        t = time.perf_counter()
        r = searchlight_rsa(Y, nbs, models, progress=False, device=a["device"])
        if a["device"].startswith("cuda"):
            torch.cuda.synchronize()
        out["seconds"] = time.perf_counter() - t
        out["n"] = len(nbs)
        out["peak_mb"] = _rss_mb() - base
        out["r_peer"] = r[0, peer_idx].tolist()
        out["mean_size"] = float(np.mean([len(x) for x in nbs]))
        out["max_size"] = int(max(len(x) for x in nbs))
    else:
        from rsatoolbox.inference import eval_fixed
        from rsatoolbox.model import ModelFixed
        from rsatoolbox.rdm import RDMs
        from rsatoolbox.util.searchlight import evaluate_models_searchlight, get_searchlight_RDMs

        vol_idx = np.flatnonzero(mask)  # rsatoolbox indexes the whole volume
        data_2d = np.zeros((Y.shape[0], mask.size), dtype=np.float32)
        data_2d[:, vol_idx] = Y
        c = vol_idx[centres[peer_idx]]
        nb = [vol_idx[nbs[i]] for i in peer_idx]
        model = ModelFixed("m", RDMs(model_rdm[None]))
        base = _rss_mb()
        t = time.perf_counter()
        sl_rdms = get_searchlight_RDMs(data_2d, c, nb, np.arange(Y.shape[0]),
                                       method="correlation", verbose=False)
        t_rdm = time.perf_counter() - t
        ev = evaluate_models_searchlight(sl_rdms, model, eval_fixed, method="corr")
        out["seconds"] = time.perf_counter() - t
        out["seconds_rdms"] = t_rdm
        out["n"] = len(c)
        out["peak_mb"] = _rss_mb() - base
        out["r_peer"] = [float(e.evaluations.ravel()[0]) for e in ev]
    q.put(out)


def _result(q, p):
    """The child's result; fails (instead of waiting for ever) when the child died first."""
    import queue

    while True:
        try:
            return q.get(timeout=5)
        except queue.Empty:
            if not p.is_alive():
                raise SystemExit(f"a benchmark process exited (code {p.exitcode}) before reporting")


def _run(job, a):
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    p = ctx.Process(target=_child, args=(job, a, q))
    p.start()
    res = _result(q, p)
    p.join()
    return res


def _nsd_child(a, q):
    """Our engine at NSD shape: sets of 100 images, spheres of radius 6 (≤ 895 voxels)."""
    import torch

    from brainllm_utils.rsa import make_sample_sets
    from brainllm_utils.searchlight import pad_neighbourhoods, searchlight_rsa, volume_neighbourhoods

    torch.set_num_threads(a["threads"])
    mask = _ball_mask(a["nsd_centres"], 6)
    centres, nbs = volume_neighbourhoods(mask, 6)
    idx, counts = pad_neighbourhoods(nbs)
    del nbs
    n_img = 100 * a["nsd_sets"]
    rng = np.random.default_rng(0)
    Y = rng.standard_normal(size=(n_img, int(mask.sum())), dtype=np.float32)
    sets = make_sample_sets(n_img, 100, seed=0)
    F = rng.normal(size=(n_img, 768)).astype(np.float32)  # an MPNet-sized embedding
    searchlight_rsa(Y, idx[:256], F, sets=sets[:1], device=a["device"], progress=False)
    if a["device"].startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    base = _rss_mb()
    t = time.perf_counter()
    searchlight_rsa(Y, idx, F, sets=sets, device=a["device"], progress=a["progress"])
    if a["device"].startswith("cuda"):
        torch.cuda.synchronize()
    dt = time.perf_counter() - t
    out = {"seconds": dt, "n_centres": len(centres), "n_sets": len(sets),
           "mean_size": float(counts.mean()), "max_size": int(counts.max()),
           "peak_mb": _rss_mb() - base, "data_mb": Y.nbytes / 2**20}
    if a["device"].startswith("cuda"):
        out["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        out["gpu"] = torch.cuda.get_device_name()
    q.put(out)


def _cpu_model() -> str:
    try:
        txt = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        return next(line.split(":", 1)[1].strip() for line in txt.splitlines()
                    if line.startswith("Model name"))
    except Exception:  # pragma: no cover
        return platform.processor()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n-stimuli", type=int, default=500)
    ap.add_argument("--n-centres", type=int, default=5000, help="target centres in the volume")
    ap.add_argument("--radius", type=float, default=3)
    ap.add_argument("--model-dim", type=int, default=64, help="features of the random model")
    ap.add_argument("--peer-centres", type=int, default=500,
                    help="rsatoolbox runs on this many centres, extrapolated per centre")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for ours")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--nsd-sets", type=int, default=2, help="sets of 100 in the NSD-shape run")
    ap.add_argument("--nsd-centres", type=int, default=400, help="centres in the NSD-shape run")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--json", type=Path, help="also write the results here")
    a = vars(ap.parse_args(argv))

    print(f"# bench_searchlight  ({_cpu_model()}; device={a['device']}; threads={a['threads']})")
    print("command:", " ".join([Path(sys.executable).name] + sys.argv))
    results = {"args": {k: str(v) for k, v in a.items()}, "cpu": _cpu_model()}

    from brainllm_utils._utils.benchrecord import environment, interleaved_order

    if not a["skip_peer"]:
        runs = {"ours_rdm": [], "ours_feat": [], "peer": []}
        for order in interleaved_order(("ours_rdm", "peer", "ours_feat"), a["repeats"]):
            for job in order:  # the order alternates between repeats
                runs[job].append(_run(job, a))
        med = {k: float(np.median([r["seconds"] / r["n"] for r in v])) for k, v in runs.items()}
        o, p = runs["ours_rdm"][0], runs["peer"][0]
        n_all = o["n"]
        print(f"\nvolume: {n_all} centres, radius {a['radius']} (< r, truncated), "
              f"mean {o['mean_size']:.1f} / max {o['max_size']} voxels, {a['n_stimuli']} stimuli")
        print(f"rsatoolbox measured on {p['n']} centres: {np.median([r['seconds'] for r in runs['peer']]):.1f} s "
              f"(RDMs {p['seconds_rdms']:.1f} s), peak +{p['peak_mb']:.0f} MB")
        ext_mem = n_all * a["n_stimuli"] * (a["n_stimuli"] - 1) / 2 * 8 / 2**30
        print(f"rsatoolbox extrapolated to {n_all} centres: {med['peer'] * n_all:.0f} s, "
              f"RDM store {ext_mem:.2f} GB (float64)")
        print("\n| engine | s / centre | total (all centres) | peak RSS | max abs dr vs rsatoolbox | speed-up |")
        print("|---|---:|---:|---:|---:|---:|")
        print(f"| rsatoolbox get_searchlight_RDMs + evaluate (1 core) | {med['peer'] * 1e3:.2f} ms "
              f"| {med['peer'] * n_all:.0f} s (extrap.) | +{p['peak_mb']:.0f} MB ({p['n']} centres) | ref. | 1 |")
        for k, label in [("ours_rdm", "ours, model RDM (Gram form)"),
                         ("ours_feat", f"ours, model features d={a['model_dim']} (low-rank)")]:
            r = runs[k][0]
            dr = np.max(np.abs(np.array(r["r_peer"]) - np.array(p["r_peer"])))
            print(f"| {label}, {a['threads']} thread(s) | {med[k] * 1e3:.3f} ms | {med[k] * n_all:.1f} s "
                  f"| +{r['peak_mb']:.0f} MB | {dr:.1e} | {med['peer'] / med[k]:.1f}x |")
            results[k] = {"s_per_centre": med[k], "max_abs_dr": float(dr), "peak_mb": r["peak_mb"],
                          "speedup": med["peer"] / med[k]}
        results["peer"] = {"s_per_centre": med["peer"], "peak_mb": p["peak_mb"], "n": p["n"],
                           "extrapolated_gb": ext_mem}
        results["runs_s_per_centre"] = {k: [r["seconds"] / r["n"] for r in v] for k, v in runs.items()}
        results["volume"] = {"n_centres": n_all, "mean_size": o["mean_size"], "max_size": o["max_size"]}

    # NSD-shape run: our engine with sets of 100 images and radius-6 spheres
    ctx = mp.get_context("spawn")
    q = ctx.Queue()
    pr = ctx.Process(target=_nsd_child, args=(a, q))
    pr.start()
    nsd = _result(q, pr)
    pr.join()
    per = nsd["seconds"] / (nsd["n_centres"] * nsd["n_sets"])
    print(f"\nNSD shape ({a['device']}): {nsd['n_sets']} sets x 100 images x {nsd['n_centres']} centres "
          f"(radius 6, mean {nsd['mean_size']:.0f} / max {nsd['max_size']} voxels), "
          f"768-d model: {nsd['seconds']:.2f} s = {per * 1e6:.1f} us per centre per set; "
          f"peak RSS +{nsd['peak_mb']:.0f} MB" + (f", GPU peak {nsd['gpu_peak_mb']:.0f} MB ({nsd['gpu']})"
                                                 if "gpu" in nsd else ""))
    results["nsd_run"] = nsd | {"s_per_centre_set": per}
    print("\nProjection for one NSD subject (10,000 images = 100 sets of 100; radius 6):")
    print("| scope | centres | ours (this device) | ours memory | rsatoolbox (per-set RDMs, 1 core) |")
    print("|---|---:|---:|---:|---:|")
    peer_set = None
    if "peer" in results:
        # rsatoolbox's correlation RDM (einsum) costs ~ n^2 v per centre: rescale the
        # measured per-centre time to 100 images and the NSD sphere size (rough)
        peer_set = (results["peer"]["s_per_centre"] * (100 / a["n_stimuli"]) ** 2
                    * nsd["mean_size"] / runs["ours_rdm"][0]["mean_size"])
    for scope, n_c, n_vox in [("nsdgeneral", 15_000, 15_000), ("whole brain", 100_000, 700_000)]:
        t_ours = per * n_c * 100
        mem = 10_000 * n_vox * 4 / 2**30
        peer_txt = "—"
        if peer_set is not None:
            peer_txt = (f"{peer_set * n_c * 100 / 3600:.1f} h, {n_c * 4950 * 8 / 2**30:.1f} GB per set "
                        f"({n_c * 49_995_000 * 8 / 2**40:.1f} TB unsampled)")
        print(f"| {scope} | {n_c:,} | {t_ours / 60:.1f} min | data {mem:.1f} GB + chunk | {peer_txt} |")
    print("(rsatoolbox: measured per-centre time rescaled by (100 / n_stimuli)^2 x (NSD / benchmark "
          "sphere size), a rough n^2 v model; its RDM store is n_centres x 4,950 float64 per set.)")
    if a["json"]:
        results["environment"] = environment()
        a["json"].write_text(json.dumps(results, indent=2, default=float))


if __name__ == "__main__":
    main()
