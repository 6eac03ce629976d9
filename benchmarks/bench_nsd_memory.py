"""Peak memory of each chapter's heavy functions on NSD-shaped roots, extrapolated to full NSD.

Writes NSD-shaped roots (the NSD layout: ``nsd_expdesign.mat``, the stimulus CSV, fsaverage
``streams``/``nsdgeneral`` labels, float32 ``.mgh`` betas of 750-trial sessions with NaN
vertices, 2 subjects sharing ~5 % test images) of several sizes: an *image series* (sessions,
hence images per subject, grow at a fixed vertex count) and a *vertex series* (fsaverage5, 6 and
7 vertex counts at a fixed number of images). Each case runs the chapter's functions with the
``paper`` profile's settings (whole-surface encoding, all sample sets, ``streams`` decoding and
partitioning) in a fresh process while a thread samples the process's resident memory
(psutil: anonymous = rss − shared, what must fit in RAM; total includes the file-backed pages
of the memory-mapped betas, which the kernel drops under pressure; ``VmHWM`` is the kernel's
exact peak of the total). Per chapter, ``peak = a + b·images + c·vertices`` is fitted by least
squares and evaluated at full NSD (10,000 images per subject, 327,684 vertices).

    python benchmarks/bench_nsd_memory.py --workdir /tmp/nsd_mem

Deviations from a real run, all stated in the output: random data; random feature matrices of
the real widths (768) instead of MPNet embeddings and random multi-hot categories (the feature
builders are not what is measured); 2 penalties and 2 folds instead of 13/15 and 5 (CPU time;
the memory terms they change are the (n_alphas, n_vertices) float64 score grids of one block);
2 subjects, the fits (encoders, partitioning, decoding) on the first only (results are reduced
per subject before the next; the inter-subject ceiling and the category contrast run on both). The subjects' beta files are hard links of the first subject's (same data, separate caches).
Needs ~12 GB of disk with the defaults.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import numpy as np

T = 750  # trials per session
FULL = dict(images=10_000, vertices=327_684)  # full NSD: images per subject, fsaverage vertices
N_SUBJECTS = 2
STREAMS_FRACTION = 0.25  # fraction of fsaverage vertices in the 7 streams ROIs (assumed)
EMB = 768  # MPNet width


# ----------------------------------------------------------------------------- the roots
def write_root(root: Path, n_sessions: int, n_vertices: int, seed: int = 0) -> None:
    """An NSD-shaped root of ``N_SUBJECTS`` subjects × ``n_sessions`` × 750 trials of
    ``n_vertices`` per hemisphere (random float32 betas, 3 NaN vertices per hemisphere)."""
    import nibabel as nib
    import pandas as pd
    import scipy.io

    rng = np.random.default_rng(seed)
    K = n_sessions * T // 3  # images per subject, each seen 3 times
    n_shared = max(10, int(round(0.0515 * K)))  # NSD: 515 of ~10,000 test images
    mo = rng.permutation(np.repeat(np.arange(1, K + 1), 3))
    subjectim = np.zeros((8, K), dtype=np.int64)
    n = n_shared + 8 * (K - n_shared)
    own = rng.permutation(np.arange(n_shared + 1, n + 1))
    for s in range(8):
        subjectim[s, :n_shared] = np.arange(1, n_shared + 1)
        subjectim[s, n_shared:] = own[s * (K - n_shared):(s + 1) * (K - n_shared)]
    d = root / "nsddata/experiments/nsd"
    d.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(d / "nsd_expdesign.mat", dict(
        masterordering=mo[None].astype(float), subjectim=subjectim.astype(float),
        sharedix=np.arange(1, n_shared + 1)[None].astype(float)))
    pd.DataFrame(dict(cocoId=np.arange(n) + 100000, cocoSplit="train2017", nsdId=np.arange(n))
                 ).to_csv(d / "nsd_stim_info_merged.csv")
    lab = root / "nsddata/freesurfer/fsaverage/label"
    lab.mkdir(parents=True, exist_ok=True)
    names = ["early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal"]
    (lab / "streams.mgz.ctab").write_text("0 Unknown\n" + "".join(f"{i} {x}\n" for i, x in enumerate(names, 1)))
    (lab / "nsdgeneral.mgz.ctab").write_text("0 Unknown\n1 nsdgeneral\n")
    for h in ("lh", "rh"):
        streams = np.zeros(n_vertices, dtype=np.int32)
        inside = np.arange(int(STREAMS_FRACTION * n_vertices))  # a contiguous patch of labels
        streams[inside] = 1 + (inside * 7) // max(inside.size, 1)
        nib.save(nib.MGHImage(streams.reshape(-1, 1, 1), np.eye(4)), lab / f"{h}.streams.mgz")
        nib.save(nib.MGHImage((streams > 0).astype(np.int32).reshape(-1, 1, 1), np.eye(4)),
                 lab / f"{h}.nsdgeneral.mgz")
    if n_vertices in ICO_ORDER and n_vertices != 10242:  # fsaverage5 comes with nilearn
        from brainllm_utils.synth import _mesh

        _mesh.write_surfaces(root / "nsddata/freesurfer/fsaverage/surf", ICO_ORDER[n_vertices])
    first = None
    for s in range(1, N_SUBJECTS + 1):
        surf = root / f"nsddata_betas/ppdata/subj{s:02d}/fsaverage/betas_fithrf_GLMdenoise_RR"
        surf.mkdir(parents=True, exist_ok=True)
        for k in range(1, n_sessions + 1):
            for h in ("lh", "rh"):
                name = f"{h}.betas_session{k:02d}.mgh"
                if first is not None:  # the other subjects: hard links (disk), read as their own files
                    os.link(first / name, surf / name)
                    continue
                x = rng.standard_normal((n_vertices, 1, 1, T), dtype=np.float32)
                x[:3] = np.nan  # NaN vertices, as in real NSD
                nib.save(nib.MGHImage(x, np.eye(4)), surf / name)
                del x
        first = surf


def write_nsdlike_root(root: Path, n_sessions: int, seed: int = 0) -> None:
    """A root of the ``nsdlike`` sandbox preset: ``N_SUBJECTS`` subjects × ``n_sessions`` ×
    750 trials on the full 163,842-vertex mesh, every session on disk (a small brick and COCO
    pool: only the betas, meshes and labels matter here)."""
    from brainllm_utils.synth import make_synthetic_nsd

    make_synthetic_nsd(root, "nsdlike", seed, overwrite=True, progress=False, overrides={
        "n_subjects": N_SUBJECTS, "data_sessions": {s: n_sessions for s in range(1, N_SUBJECTS + 1)},
        "missing_sessions": {}, "n_pool": 100, "image_size": 64})


# ----------------------------------------------------------------------------- the cases
def _random_features(name: str, ids, width: int = EMB) -> np.ndarray:
    """Deterministic random rows per (space, nsdId): what a feature builder returns, in shape."""
    ids = np.asarray(ids, dtype=np.int64)
    out = np.empty((ids.size, width), dtype=np.float32)
    base = sum(name.encode())
    for i, x in enumerate(ids):
        out[i] = np.random.default_rng((base, int(x))).standard_normal(width, dtype=np.float32)
    return out


def _patch(nsd):
    """Random features and categories in place of the builders (not what is measured)."""
    from brainllm_utils.chapters import ch03_encoding, ch04_decoding

    def feats(nsd_, name, ids, **options):
        return _random_features(name, ids)

    ch03_encoding._features = feats
    ch04_decoding._features = feats
    cats = sorted({c for v in ch03_encoding.CONTRAST_CATEGORIES.values() for c in v})

    def categories(ids):
        ids = np.asarray(ids, dtype=np.int64)
        rng = np.random.default_rng(7)
        table = (rng.random((nsd.n_images, len(cats))) < 0.05).astype(np.float32)
        return table[ids], cats

    nsd.categories = categories


ALPHAS = np.logspace(0, 4, 2)  # 2 penalties (paper: 13 for encoding, 15 for decoding)
CV = 2  # folds (paper: 5)


def case_betas(nsd):
    """Chapter 00 and the first chapter to read a subject: the betas cache, built from the
    session files (whole fsaverage surface)."""
    for s in nsd.subjects:
        nsd.betas(s, "fsaverage", progress=False)


def case_ch01(nsd):
    """Chapter 01: model RDM correlations over all of a subject's sample sets (8 spaces)."""
    from brainllm_utils.chapters import model_rdm_correlations, subject_sets

    ids, sets = subject_sets(nsd, nsd.subjects[0], 100, 0, None, os.environ["BENCH_RESULTS"])
    used = np.unique(sets)
    feats = {f"space{k}": _random_features(f"space{k}", ids[used]) for k in range(8)}
    model_rdm_correlations(feats, np.searchsorted(used, sets), device="cpu")


def case_ch02(nsd):
    """Chapter 02: LOSO ceilings (two poolings) and the sampled ROI RSA of all sets, 6 spaces."""
    from brainllm_utils.chapters import loso_ceilings, rsa_design, subject_rsa_table
    from brainllm_utils.chapters.ch02_rsa import STREAMS_ROIS

    res = os.environ["BENCH_RESULTS"]
    c = loso_ceilings(nsd, nsd.subjects, rois=STREAMS_ROIS, pool="mean")
    loso_ceilings(nsd, nsd.subjects, rois=STREAMS_ROIS, pool="method")
    _, needed = rsa_design(nsd, nsd.subjects, 100, 0, None, res)
    features = {f"space{k}": (needed, _random_features(f"space{k}", needed)) for k in range(6)}
    subject_rsa_table(nsd, nsd.subjects, list(features), rois=STREAMS_ROIS, n_sets=None, device="cpu",
                      features=features, ceilings=c, results_dir=res)


def case_ch03(nsd):
    """Chapter 03: whole-surface encoders, inter-subject ceiling, banded partitioning on
    ``streams``, the in-silico and the observed category contrasts."""
    from brainllm_utils.chapters import ch03_encoding as ea

    _patch(nsd)
    one = nsd.subjects[:1]  # fits: one subject (each subject's fit is reduced before the next)
    enc = ea.fit_encoders(nsd, one, feature="mpnet", roi=None, alphas=ALPHAS, cv=CV, device="cpu")
    ea.group_map(np.concatenate([enc.r, enc.r]))
    ea.inter_subject_ceiling(nsd, nsd.subjects, roi=None)
    ea.variance_partition(nsd, one, bands=("mpnet", "mpnet_word_avg"), roi="streams",
                          alphas=ALPHAS, cv=CV, n_ratios=3, device="cpu")
    # the contrast's t-test needs ≥ 2 subjects: the fitted subject's (memory-mapped) encoders twice
    s0 = one[0]
    two = ea.EncodingResults([s0, s0 + "b"], enc.feature, np.concatenate([enc.r, enc.r]),
                             np.concatenate([enc.alphas, enc.alphas]),
                             {s0: enc.encoders[s0], s0 + "b": enc.encoders[s0]},
                             {s0: enc.columns[s0], s0 + "b": enc.columns[s0]})
    ea.in_silico_contrasts(two, embed_fn=lambda xs, **k: _random_features(
        "sentence", [zlib.crc32(x.encode()) for x in xs]))
    ea.category_contrast(nsd, nsd.subjects, ea.CONTRAST_CATEGORIES["food"], ea.CONTRAST_CATEGORIES["people"])


def case_ch04(nsd):
    """Chapter 04: decoding from the ``streams`` vertices (kernel ridge, voxels as features)."""
    from brainllm_utils.chapters import ch04_decoding as da

    _patch(nsd)
    da.decode_subjects(nsd, nsd.subjects[:1], feature="mpnet", roi="streams", alphas=ALPHAS, cv=CV,
                       device="cpu")


def case_ch05(nsd):
    """Chapter 05, its brain side: ROI RSA of 10 seeds × 2 objectives of network features
    (512-d) and 6 other spaces over all sample sets (the networks' training and the stimuli
    are not measured here)."""
    from brainllm_utils.chapters import loso_ceilings, network_rsa_table, rsa_design
    from brainllm_utils.chapters.ch02_rsa import STREAMS_ROIS

    res = os.environ["BENCH_RESULTS"]
    _, ids = rsa_design(nsd, nsd.subjects, 100, 0, None, res)
    nets = {f"{o}_seed{k}": _random_features(f"{o}{k}", ids, 512) for o in ("mpnet", "multihot") for k in range(10)}
    groups = {o: [f"{o}_seed{k}" for k in range(10)] for o in ("mpnet", "multihot")}
    other = {f"space{k}": _random_features(f"space{k}", ids) for k in range(6)}
    c = loso_ceilings(nsd, nsd.subjects, rois=STREAMS_ROIS, pool="mean")
    network_rsa_table(nsd, nets, seed_groups=groups, other_features=other, subjects=nsd.subjects,
                      rois=STREAMS_ROIS, n_sets=None, device="cpu", ceilings=c, ids=ids)


#: Icosahedral vertex counts per hemisphere (fsaverage5, 6, 7) and their subdivision orders.
ICO_ORDER = {10242: 5, 40962: 6, 163842: 7}


def case_ch02_searchlight(nsd):
    """Chapter 02, the surface searchlight: 10 mm geodesic discs on the pial mesh of this
    vertex count (an icosphere surface, as the ``nsdlike`` sandbox writes; nilearn's
    fsaverage5 at 10,242), the sampled RSA of one set of 100 images in every disc. The disc
    lists grow with the vertices (not a block): this case is the one that does."""
    from brainllm_utils.chapters import subject_sets, surface_searchlight

    s = nsd.subjects[0]
    ids, sets = subject_sets(nsd, s, 100, 0, 1, os.environ["BENCH_RESULTS"])
    used = ids[np.unique(sets)]
    surface_searchlight(nsd, s, "space0", radius_mm=10.0, n_sets=1, device="cpu",
                        features=(used, _random_features("space0", used)),
                        results_dir=os.environ["BENCH_RESULTS"])


#: Native sizes (width, height) of the random JPEGs of chapter 05's training pool, as COCO's.
COCO_SIZES = [(640, 480), (500, 375), (427, 640), (480, 640), (640, 427), (375, 500), (612, 612)]
#: COCO images outside NSD the paper trains on (chapter 05's full pool: 48,236 + 2,051 held out).
FULL_POOL = 48_236


def pool_size(nsd) -> int:
    """Training-pool images of the ``05train`` case at this root's size: about a subject's
    images (``n_images // 8``; the CPU time of the paper's network bounds it)."""
    return max(96, nsd.n_images // 8)


def case_ch05_train(nsd):
    """Chapter 05, its network side: one epoch of the ``paper`` preset (10 layers, 6 steps,
    128 px, batch 96) on a pool of JPEGs of COCO's native sizes streamed from disk by 2 loader
    workers (the paper's 256 px squares, then the training augmentation), MPNet-width random
    targets. Memory is summed over the process and its loader workers."""
    import dataclasses

    from PIL import Image

    from brainllm_utils import vision

    n = pool_size(nsd)
    folder = Path(os.environ["BRAINLLM_CACHE"]).parent / f"coco_bench_{n}"
    if not (folder / ".complete").exists():
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        for i in range(n):
            w, h = COCO_SIZES[i % len(COCO_SIZES)]
            Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(folder / f"{i:012d}.jpg", quality=90)
        (folder / ".complete").touch()
    paths = sorted(folder.glob("*.jpg"))
    cfg, tc = vision.PRESETS["paper"]
    data = vision.PoolImages(paths, size=tc.pool_size)
    targets = np.random.default_rng(1).standard_normal((n, EMB)).astype(np.float32)
    vision.train_network(data, targets, cfg, dataclasses.replace(tc, epochs=1, warmup_epochs=0), seed=0,
                         device="cpu", progress=False, num_workers=2)


CASES = {"betas": case_betas, "01": case_ch01, "02": case_ch02, "03": case_ch03, "04": case_ch04,
         "05": case_ch05, "05train": case_ch05_train, "02sl": case_ch02_searchlight}
#: Cases that grow with the training pool, not with a subject's images and vertices.
POOL_CASES = {"05train"}


def run_case(root: str, case: str, cache: str) -> dict:
    """Run one case in this process, sampling memory every 10 ms."""
    import psutil

    os.environ["BRAINLLM_CACHE"] = cache
    os.environ["BENCH_RESULTS"] = os.environ["BRAINLLM_RESULTS"] = str(Path(cache) / "results")
    import torch  # noqa: F401  (imported before the baseline: every chapter imports it)

    from brainllm_utils.nsd import NSD

    proc = psutil.Process()
    peak = [0, 0]
    stop = threading.Event()

    def sample():  # this process and its children (chapter 05's loader workers)
        while not stop.is_set():
            anon = rss = 0
            for p in [proc, *proc.children(recursive=True)]:
                try:
                    m = p.memory_info()
                except psutil.Error:
                    continue
                anon, rss = anon + m.rss - m.shared, rss + m.rss
            peak[0], peak[1] = max(peak[0], anon), max(peak[1], rss)
            time.sleep(0.01)

    m0 = proc.memory_info()
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    t0 = time.perf_counter()
    nsd = NSD(root)
    CASES[case](nsd)
    seconds = time.perf_counter() - t0
    pool = pool_size(nsd) if case in POOL_CASES else None
    stop.set()
    th.join()
    hwm = 0
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) * 1024
    mb = 2**20
    return dict(case=case, seconds=seconds, pool=pool, baseline_anon_mb=(m0.rss - m0.shared) / mb,
                peak_anon_mb=peak[0] / mb, peak_rss_mb=peak[1] / mb, vmhwm_mb=hwm / mb)


# ----------------------------------------------------------------------------- the driver
def _saturated(p) -> bool:
    """A subject's betas span at least one full block of columns (images × vertices × 4 bytes ≥
    ``BLOCK_BYTES``): below that, the streamed blocks are smaller than at full size."""
    from brainllm_utils.chapters._common import BLOCK_BYTES

    return p["images"] * p["vertices"] * 4 >= BLOCK_BYTES


#: Cases whose arrays are streamed in blocks of bounded bytes: their peak is additive in images
#: and vertices once the betas fill a block. The others hold (images × ROI vertices) arrays
#: (ROI patterns, the decoder's voxels): a product term.
STREAMED = {"betas", "03"}


def _fit(case, points):
    """Least squares ``peak = a + b·images + c·vertices (+ d·images·vertices)`` in MB.

    Streamed cases: additive, over the sizes that fill a block. The others: with the product
    term, over every size (the sizes must include one off the two series' lines). Returns
    ``(coef, predict)``: the coefficients (images in thousands, vertices in 100k) and a
    function of (images, vertices).
    """
    if case in POOL_CASES:  # a + b·pool images (thousands), at the paper's pool size
        # over the pools of ≥ 4 batches of 96: the allocator's high-water mark settles after
        # the first full steps (the optimiser's state appears after the first)
        if sum(p["pool"] >= 4 * 96 for p in points) >= 2:
            points = [p for p in points if p["pool"] >= 4 * 96]
        A = np.array([[1.0, p["pool"] / 1e3] for p in points])
        coef, *_ = np.linalg.lstsq(A, np.array([p["peak_anon_mb"] for p in points]), rcond=None)
        return coef, lambda n, v: float(coef[0] + coef[1] * FULL_POOL / 1e3)
    streamed = case in STREAMED
    if streamed and sum(map(_saturated, points)) >= 3:
        points = [p for p in points if _saturated(p)]

    def design(n, v):
        n, v = n / 1e3, v / 1e5
        return [1.0, n, v] if streamed else [1.0, n, v, n * v]

    A = np.array([design(p["images"], p["vertices"]) for p in points])
    y = np.array([p["peak_anon_mb"] for p in points])
    coef, *_ = np.linalg.lstsq(A, y, rcond=None)
    return coef, lambda n, v: float(np.dot(design(n, v), coef))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="/tmp/nsd_mem")
    ap.add_argument("--session-series", default="2,4,8", help="sessions per subject (image series)")
    ap.add_argument("--vertex-series", default="10242,40962,81920,163842", help="vertices per hemisphere")
    ap.add_argument("--base-sessions", type=int, default=2, help="sessions of the vertex series")
    ap.add_argument("--base-vertices", type=int, default=40962, help="vertices of the image series")
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--nsdlike", action="store_true",
                    help="measure on roots of the nsdlike sandbox preset instead (brainllm_utils.synth: "
                    "the 163,842-vertex icosphere fsaverage and its surf/ files, NSD's grids, COCO's "
                    "native image sizes; 2 subjects × each --session-series value, every session on "
                    "disk): the image series only, at 327,684 vertices")
    ap.add_argument("--repeats", type=int, default=1,
                    help="runs of each case at each size; the row holds their medians and the runs")
    ap.add_argument("--warmup", type=int, default=0, help="untimed runs of each case before the repeats")
    ap.add_argument("--json", help="also write the measurements here")
    ap.add_argument("--report", help="only print the tables of measurements written by --json "
                    "(comma-separated files; a later file's rows replace an earlier one's)")
    ap.add_argument("--run-case", help=argparse.SUPPRESS)
    ap.add_argument("--root", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run_case:
        print(json.dumps(run_case(args.root, args.run_case, str(Path(args.root) / "cache"))))
        return 0
    cases = args.cases.split(",")
    if args.report:
        merged = {}
        for f in args.report.split(","):
            data = json.loads(Path(f).read_text())
            for r in data["rows"] if isinstance(data, dict) else data:
                merged[(r["case"], r["sessions"], r["vertices"])] = r
        report(list(merged.values()), [c for c in cases if any(k[0] == c for k in merged)], args.base_sessions)
        return 0
    if args.nsdlike:  # the preset's mesh is full fsaverage: no vertex series
        args.base_vertices = 163842
        sizes = [(int(s), 163842) for s in args.session_series.split(",")]
    else:
        sizes = [(int(s), args.base_vertices) for s in args.session_series.split(",")]
        sizes += [(args.base_sessions, int(v)) for v in args.vertex_series.split(",")
                  if (args.base_sessions, int(v)) not in sizes]
    rows = []
    for n_sess, n_vert in sizes:
        root = Path(args.workdir) / (f"nsdlike_s{n_sess}" if args.nsdlike else f"s{n_sess}_v{n_vert}")
        if not (root / ".complete").exists():
            t0 = time.time()
            if args.nsdlike:
                write_nsdlike_root(root, n_sess)
            else:
                write_root(root, n_sess, n_vert)
            (root / ".complete").touch()
            print(f"wrote {root} in {time.time() - t0:.0f} s", flush=True)
        if "betas" in cases:  # measured from the session files: no cache yet
            subprocess.run(["rm", "-rf", str(root / "cache")], check=True)
        for case in cases:
            if case in POOL_CASES and n_vert != args.base_vertices:
                continue  # the training pool does not depend on the vertices: image series only
            if case == "02sl" and n_vert not in ICO_ORDER:
                continue  # the searchlight needs a mesh: icosphere vertex counts only
            # every case computes from the betas cache: results cached by an earlier case or run
            # (fitted encoders, sample sets) are removed first
            runs = []
            for k in range(args.warmup + args.repeats):
                if case == "betas" and k:  # each run builds the betas cache from the session files
                    subprocess.run(["rm", "-rf", str(root / "cache")], check=True)
                for kind in ("encoding", "searchlight", "results"):
                    subprocess.run(["rm", "-rf", str(root / "cache" / kind)], check=True)
                out = subprocess.run([sys.executable, __file__, "--run-case", case, "--root", str(root)],
                                     capture_output=True, text=True)
                if out.returncode != 0:
                    print(out.stderr[-3000:], file=sys.stderr)
                    raise SystemExit(f"case {case} failed on {root}")
                if k >= args.warmup:
                    runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = dict(runs[0])
            if args.repeats > 1:  # medians of the repeats, and every run
                for key in ("seconds", "peak_anon_mb", "peak_rss_mb", "vmhwm_mb"):
                    r[key] = float(np.median([x[key] for x in runs]))
                r["runs"] = runs
            r.update(sessions=n_sess, images=n_sess * T // 3, vertices=2 * n_vert)
            rows.append(r)
            print(f"{case:>6s}  {r['images']:6d} images  {r['vertices']:7d} vertices  {r['seconds']:7.1f} s  "
                  f"peak anonymous {r['peak_anon_mb']:7.0f} MB  peak RSS {r['peak_rss_mb']:7.0f} MB  "
                  f"VmHWM {r['vmhwm_mb']:7.0f} MB", flush=True)
    if args.json:
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from brainllm_utils._utils.benchrecord import environment

        settings = {k: v for k, v in vars(args).items() if k not in ("run_case", "root", "report")}
        Path(args.json).write_text(json.dumps({"settings": settings, "rows": rows,
                                               "environment": environment()}, indent=1))
    report(rows, cases, args.base_sessions)
    return 0


def report(rows, cases, base_sessions) -> None:
    """Print the vertex series, the fits and the extrapolation (also as a markdown table)."""
    print(f"\n{platform.node()}, {os.cpu_count()} CPUs, {time.strftime('%Y-%m-%d')}; "
          f"{N_SUBJECTS} subjects, streams = {STREAMS_FRACTION:.0%} of the vertices")
    print("\nvertex series (anonymous peak, MB) at "
          f"{base_sessions * T // 3} images per subject:")
    for case in [c for c in cases if c not in POOL_CASES]:
        ser = [r for r in rows if r["case"] == case and r["sessions"] == base_sessions]
        ser.sort(key=lambda r: r["vertices"])
        print(f"  {case:>6s}: " + ", ".join(f"{r['vertices']}: {r['peak_anon_mb']:.0f}"
                                            + ("" if _saturated(r) else " (< 1 block)") for r in ser))
    print("\nfit peak = a + b·images + c·vertices [+ d·images·vertices] (anonymous MB; images in "
          "thousands, vertices in 100k; streamed cases additive over the sizes whose betas fill a "
          "256 MiB block), extrapolated to full NSD "
          f"({FULL['images']} images per subject, {FULL['vertices']} vertices):")
    md = ["| case | model | a (MB) | b (MB per 1k images) | c (MB per 100k vertices) | d (MB per 1k images × 100k vertices) "
          "| largest measured, anonymous | **full NSD, anonymous** |",
          "|---|---|---:|---:|---:|---:|---:|---:|"]
    for case in cases:
        pts = [r for r in rows if r["case"] == case]
        coef, predict = _fit(case, pts)
        full = predict(FULL["images"], FULL["vertices"])
        d = f"{coef[3]:.1f}" if coef.size > 3 else "—"
        top = max(pts, key=lambda r: r["peak_anon_mb"])
        model = ("streamed pool (a + b·pool images)" if case in POOL_CASES else
                 "streamed (additive)" if case in STREAMED else "ROI arrays (product term)")
        print(f"  {case:>6s} {model:26s} " + " ".join(f"{x:8.1f}" for x in coef) + f"  → {full / 1024:.2f} GB")
        if case in POOL_CASES:
            md.append(f"| {case} | {model} | {coef[0]:.0f} | {coef[1]:.1f} per 1k pool images | — | — "
                      f"| {top['peak_anon_mb']:.0f} MB ({top['pool']:,} pool images) "
                      f"| **{full / 1024:.2f} GB** ({FULL_POOL:,} pool images) |")
            continue
        md.append(f"| {case} | {model} | {coef[0]:.0f} | {coef[1]:.1f} | {coef[2]:.1f} | {d} "
                  f"| {top['peak_anon_mb']:.0f} MB ({top['images']:,} images, {top['vertices']:,} vertices) "
                  f"| **{full / 1024:.2f} GB** |")
    print("\n" + "\n".join(md))


if __name__ == "__main__":
    sys.exit(main())
