"""Peak memory and time of ``NSD.betas`` on real-NSD-sized files.

Writes one subject at real NSD size (1.8 mm grid 81 × 104 × 83, 750-trial sessions, int16
``.nii.gz`` betas; fsaverage 163,842 vertices per hemisphere, float32 ``.mgh``) in the NSD
layout, then runs the reader in a fresh process per case while sampling the process's
resident memory (anonymous = what must fit in RAM; total includes file-backed pages of
memory maps, which the kernel can drop).

    python benchmarks/bench_nsd_memory.py --sessions 3 --workdir /tmp/nsd_scale

Random data (no NSD file is read or stored). Needs ~3.5 GB of disk per fsaverage session.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

GRID = (81, 104, 83)
N_VERTICES = 163842
T = 750


def write_tree(root: Path, n_sessions: int, seed: int = 0, fsaverage: bool = True) -> None:
    import nibabel as nib
    import pandas as pd
    import scipy.io

    rng = np.random.default_rng(seed)
    K = n_sessions * T // 3
    mo = rng.permutation(np.repeat(np.arange(1, K + 1), 3))
    subjectim = np.arange(1, 8 * K + 1).reshape(8, K)
    d = root / "nsddata/experiments/nsd"
    d.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(d / "nsd_expdesign.mat", dict(
        masterordering=mo[None].astype(float), subjectim=subjectim.astype(float),
        sharedix=subjectim[0, :10][None].astype(float)))
    n = 8 * K
    pd.DataFrame(dict(cocoId=np.arange(n) + 100000, cocoSplit="train2017", nsdId=np.arange(n))
                 ).to_csv(d / "nsd_stim_info_merged.csv")
    affine = np.diag([1.8, 1.8, 1.8, 1.0])
    affine[:3, 3] = -(((1 + np.array(GRID)) / 2) - 1) * 1.8
    xyz = np.stack(np.meshgrid(*[np.linspace(-1, 1, g) for g in GRID], indexing="ij"))
    brain = (xyz**2).sum(0) < 0.8
    general = brain & (xyz[1] < -0.35) & ((xyz**2).sum(0) > 0.45)
    sub = root / "nsddata/ppdata/subj01/func1pt8mm"
    (sub / "roi").mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(brain.astype(np.int16), affine), sub / "brainmask.nii.gz")
    roi = np.where(brain, 0, -1).astype(np.int16)
    roi[general] = 1
    nib.save(nib.Nifti1Image(roi, affine), sub / "roi/nsdgeneral.nii.gz")
    lab = root / "nsddata/freesurfer/fsaverage/label"
    lab.mkdir(parents=True, exist_ok=True)
    (lab / "nsdgeneral.mgz.ctab").write_text("0 Unknown\n1 nsdgeneral\n")
    hemi_labels = {}
    for h in ("lh", "rh"):
        v = np.zeros(N_VERTICES, dtype=np.int32)
        v[rng.choice(N_VERTICES, 7_500, replace=False)] = 1
        hemi_labels[h] = v
        nib.save(nib.MGHImage(v.reshape(-1, 1, 1), np.eye(4)), lab / f"{h}.nsdgeneral.mgz")
    print(f"nsdgeneral: {general.sum()} voxels, {sum(v.sum() for v in hemi_labels.values())} vertices; "
          f"brain mask {brain.sum()} voxels", flush=True)
    vol = root / "nsddata_betas/ppdata/subj01/func1pt8mm/betas_fithrf_GLMdenoise_RR"
    surf = root / "nsddata_betas/ppdata/subj01/fsaverage/betas_fithrf_GLMdenoise_RR"
    vol.mkdir(parents=True, exist_ok=True)
    surf.mkdir(parents=True, exist_ok=True)
    for s in range(1, n_sessions + 1):
        t0 = time.time()
        data = np.zeros(GRID + (T,), dtype=np.int16)
        data[brain] = rng.integers(-600, 600, size=(brain.sum(), T), dtype=np.int16)
        img = nib.Nifti1Image(data, affine)
        img.header.set_data_dtype(np.int16)
        nib.save(img, vol / f"betas_session{s:02d}.nii.gz")
        del data, img
        if fsaverage:
            for h in ("lh", "rh"):
                x = rng.standard_normal((N_VERTICES, 1, 1, T), dtype=np.float32)
                x[:3] = np.nan  # NaN vertices, as in real NSD
                nib.save(nib.MGHImage(x, np.eye(4)), surf / f"{h}.betas_session{s:02d}.mgh")
                del x
        print(f"session {s}: written in {time.time() - t0:.0f} s", flush=True)


CASES = {
    "volume nsdgeneral": dict(space="func1pt8mm", roi=("nsdgeneral", None)),
    "volume whole brain mask": dict(space="func1pt8mm", roi=None),
    "fsaverage nsdgeneral": dict(space="fsaverage", roi=("nsdgeneral", None)),
    "fsaverage whole brain": dict(space="fsaverage", roi=None),
}


def _rss():
    """(anonymous, total) resident memory of this process in bytes, from /proc."""
    fields = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            k, _, v = line.partition(":")
            fields[k] = v.strip()
    kb = lambda k: int(fields.get(k, "0 kB").split()[0]) * 1024  # noqa: E731
    return kb("RssAnon"), kb("VmRSS")


def run_case(root: str, case: str, cache: str) -> dict:
    """Run one case in this process, sampling memory every 20 ms."""
    os.environ["BRAINLLM_CACHE"] = cache
    from brainllm_utils.nsd import NSD

    peak = [0, 0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            anon, total = _rss()
            peak[0], peak[1] = max(peak[0], anon), max(peak[1], total)
            time.sleep(0.02)

    base_anon, base_total = _rss()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    Y, ids = NSD(root).betas("subj01", progress=False, **CASES[case])
    seconds = time.perf_counter() - t0
    stop.set()
    th.join()
    return dict(case=case, seconds=seconds, shape=list(Y.shape), baseline_mb=base_anon / 2**20,
                peak_anon_mb=peak[0] / 2**20, peak_rss_mb=peak[1] / 2**20)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sessions", type=int, default=3)
    ap.add_argument("--workdir", default="/tmp/nsd_scale")
    ap.add_argument("--no-fsaverage", action="store_true")
    ap.add_argument("--run-case", help=argparse.SUPPRESS)
    args = ap.parse_args()
    root = Path(args.workdir) / "nsd"
    if args.run_case:
        print(json.dumps(run_case(str(root), args.run_case, str(Path(args.workdir) / "cache"))))
        return 0
    stamp = root / f".complete-{args.sessions}"
    if not stamp.exists():
        write_tree(root, args.sessions, fsaverage=not args.no_fsaverage)
        stamp.touch()
    rows = []
    for case in CASES:
        if args.no_fsaverage and "fsaverage" in case:
            continue
        subprocess.run(["rm", "-rf", str(Path(args.workdir) / "cache")], check=True)
        out = subprocess.run([sys.executable, __file__, "--workdir", args.workdir,
                              "--sessions", str(args.sessions), "--run-case", case],
                             capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{case:26s} {r['seconds']:7.1f} s  shape {tuple(r['shape'])}  "
              f"peak anonymous {r['peak_anon_mb']:7.0f} MB (baseline {r['baseline_mb']:.0f})  "
              f"peak RSS incl. mapped files {r['peak_rss_mb']:7.0f} MB", flush=True)
    print(f"\n{args.sessions} sessions × {T} trials; per-session cost ≈ seconds / {args.sessions}. "
          "A 40-session subject reads 40 sessions; the per-session working set does not grow.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
