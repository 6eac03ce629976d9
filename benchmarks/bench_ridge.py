"""Benchmark brainllm_utils.encoding against himalaya (same data, folds, grids, device).

One command prints seconds (median of ``--repeats`` after a warm-up), speed ratios, mean
test r and how often the chosen alphas (and band weights) agree:

    .venv/bin/python benchmarks/bench_ridge.py                      # CPU, Benchmark A size
    .venv/bin/python benchmarks/bench_ridge.py --device cuda \\
        --n-train 9000 --n-test 515 --targets 100000 --alphas -2 6 17   # reference GPU size

Data (peers.md Benchmark A): i.i.d. Gaussian bands A (768) and B (300); a third of the
targets A-only, a third B-only, a third mixed (weight a ~ U(0, 1) on A); signal variance
1, noise SD 2 (ceiling of r = 1/√5 ≈ 0.447). Timings = fit + predict. Runs of ours and
himalaya are interleaved (the order alternates) so machine load hits both alike.

``--isolate`` runs every timed repeat of each tool in a fresh process (that process makes the
data, warms its tool up on a small slice, times one fit + predict and hands back its
predictions and choices): himalaya's numpy backend (OpenBLAS's thread pool) and ours (torch's
OpenMP pool) then never share a process, whose two sets of spinning threads can otherwise
hold 2 cores at a load above 2 and slow whichever tool runs second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def make_data(n_train, n_test, pa, pb, t, seed=0, noise=2.0):
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    XA = rng.standard_normal((n, pa)).astype(np.float32)
    XB = rng.standard_normal((n, pb)).astype(np.float32)
    a = rng.uniform(0, 1, t)
    k = t // 3
    a[:k], a[k : 2 * k] = 1.0, 0.0
    WA = rng.standard_normal((pa, t)) / np.sqrt(pa)
    WB = rng.standard_normal((pb, t)) / np.sqrt(pb)
    Y = (XA @ WA) * np.sqrt(a) + (XB @ WB) * np.sqrt(1 - a) + noise * rng.standard_normal((n, t))
    Y = Y.astype(np.float32)
    tr, te = slice(0, n_train), slice(n_train, n)
    return XA[tr], XB[tr], Y[tr], XA[te], XB[te], Y[te], a


def sync(device):
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def timed(fn, device):
    sync(device)
    t0 = time.perf_counter()
    out = fn()
    sync(device)
    return time.perf_counter() - t0, out


def pearson(P, Y):
    from brainllm_utils.encoding import pearson_r

    return pearson_r(np.asarray(P, dtype=np.float64), Y)


CASES = ("ridge", "banded_same", "banded_default")


def _case_name(case, args, n_same, n_grid):
    return {"ridge": "RidgeCV", "banded_same": f"Banded same-{n_same}γ",
            "banded_default": f"Banded h{args.n_iter}/o{n_grid}"}[case]


def _pearson_np(P, Y):
    """Column-wise Pearson r (numpy, float64): the isolated driver imports neither tool."""
    P = np.asarray(P, np.float64) - np.mean(P, 0)
    Y = np.asarray(Y, np.float64) - np.mean(Y, 0)
    return (P * Y).sum(0) / np.sqrt((P * P).sum(0) * (Y * Y).sum(0))


def _child(args):
    """One timed fit + predict of one tool (``--child h|o``) on one case, in this process."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(args.threads)
    alphas = np.logspace(*args.alphas[:2], int(args.alphas[2]))
    XA, XB, Y, XAt, XBt, Yt, _ = make_data(args.n_train, args.n_test, *args.bands, args.targets)
    X, Xt = np.concatenate([XA, XB], 1), np.concatenate([XAt, XBt], 1)
    small = slice(0, 200)
    out = {}
    if args.child == "h":
        from himalaya.backend import set_backend
        from himalaya.ridge import GroupRidgeCV as HGroup
        from himalaya.ridge import RidgeCV as HRidge
        from himalaya.scoring import r2_score as h_r2

        hb = args.himalaya_backend or ("torch_cuda" if args.device.startswith("cuda") else "numpy")
        backend = set_backend(hb, on_error="raise")
        if hb.startswith("torch"):
            import torch

            torch.set_num_threads(args.threads)
        from brainllm_utils.encoding import band_weight_grid

        grid = band_weight_grid(2)
        same = grid[grid.min(1) > 0]

        def fit(Xa, Xb, Xall, Yy, Xta, Xtb, Xtall):
            if args.case == "ridge":
                m = HRidge(alphas=alphas, cv=args.cv, fit_intercept=True, solver_params=dict(score_func=h_r2))
                m.fit(Xall, Yy)
                return m, backend.to_numpy(m.predict(Xtall))
            gam = same if args.case == "banded_same" else args.n_iter
            sp = dict(n_iter=gam, alphas=alphas, score_func=h_r2, progress_bar=False)
            m = HGroup(groups="input", cv=args.cv, fit_intercept=True, solver_params=sp, random_state=0)
            m.fit([Xa, Xb], Yy)
            return m, backend.to_numpy(m.predict([Xta, Xtb]))

        def choices(m):
            a = backend.to_numpy(m.best_alphas_)
            return a, (None if args.case == "ridge" else np.exp(backend.to_numpy(m.deltas_)) * a[None])
    else:
        import torch

        torch.set_num_threads(args.threads)
        from brainllm_utils.encoding import BandedRidgeCV, RidgeCV, band_weight_grid

        grid = band_weight_grid(2)
        same = grid[grid.min(1) > 0]

        def fit(Xa, Xb, Xall, Yy, Xta, Xtb, Xtall):
            if args.case == "ridge":
                m = RidgeCV(alphas=alphas, cv=args.cv, device=args.device, allow_tf32=args.tf32)
                m.fit(Xall, Yy)
                return m, m.predict(Xtall)
            gam = same if args.case == "banded_same" else None
            m = BandedRidgeCV(alphas=alphas, cv=args.cv, device=args.device, band_weights=gam,
                              allow_tf32=args.tf32)
            m.fit([Xa, Xb], Yy)
            return m, m.predict([Xta, Xtb])

        def choices(m):
            return np.asarray(m.best_alphas_), (None if args.case == "ridge" else np.asarray(m.best_band_weights_))

    with warnings.catch_warnings():  # the small slice's edge-of-grid and solver notes
        warnings.simplefilter("ignore")
        fit(XA[small], XB[small], X[small], Y[small, :50], XAt[:20], XBt[:20], Xt[:20])  # warm-up
    sync(args.device)
    t0 = time.perf_counter()
    m, P = fit(XA, XB, X, Y, XAt, XBt, Xt)
    sync(args.device)
    out["seconds"] = time.perf_counter() - t0
    out["alphas"], gammas = choices(m)
    if gammas is not None:
        out["gammas"] = gammas
    out["pred"] = np.asarray(P, np.float32)
    out["torch_loaded"] = np.array("torch" in sys.modules)  # the isolation's check (himalaya: False)
    out["peer_env_seen"] = np.array(json.dumps({k: os.environ.get(k) for k in _peer_env(args.peer_env)}))
    np.savez(args.out, **out)
    return out


def _peer_env(items):
    """``KEY=VALUE`` strings of ``--peer-env`` as a dict (the himalaya processes' extra
    environment); a malformed item raises ``SystemExit`` naming it."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not key.replace("_", "").isalnum():
            raise SystemExit(f"--peer-env: expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _isolated(args, argv):
    """Every timed repeat of each tool in a fresh process (``--isolate``); same results format."""
    import tempfile

    from brainllm_utils.encoding import band_weight_grid

    argv = list(sys.argv[1:] if argv is None else argv)
    base = [a for a in argv if a not in ("--isolate",)]
    peer_env = _peer_env(args.peer_env)
    if "--json" in base:  # the children write no JSON
        i = base.index("--json")
        del base[i:i + 2]
    grid = band_weight_grid(2)
    n_same = int((grid.min(1) > 0).sum())
    cases = [c for c in CASES if c not in args.skip
             and not (c.startswith("banded") and "banded" in args.skip)]
    _, _, _, _, _, Yt, _ = make_data(args.n_train, args.n_test, *args.bands, args.targets)
    print(f"# bench_ridge (isolated processes): n_train={args.n_train} n_test={args.n_test} "
          f"bands={args.bands} targets={args.targets} alphas=logspace({args.alphas[0]:g},"
          f"{args.alphas[1]:g},{int(args.alphas[2])}) cv={args.cv} threads={args.threads}", flush=True)
    results = []
    k = args.targets // 3
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases:
            repeats = args.repeats if case == "ridge" else (args.banded_repeats or args.repeats)
            runs = {"h": [], "o": []}
            last = {}
            for r in range(repeats):
                for who in (("h", "o") if r % 2 == 0 else ("o", "h")):
                    out = Path(tmp) / f"{case}_{who}_{r}.npz"
                    env = {**os.environ, **(peer_env if who == "h" else {})}
                    subprocess.run([sys.executable, str(Path(__file__).resolve()), *base, "--child", who,
                                    "--case", case, "--out", str(out)], check=True, env=env)
                    with np.load(out) as z:
                        last[who] = {key: z[key] for key in z.files}
                    if who == "h" and args.himalaya_backend in (None, "numpy") and not args.device.startswith("cuda") \
                            and bool(last[who]["torch_loaded"]):
                        raise RuntimeError("the himalaya process imported torch: the tools were not isolated")
                    seen = json.loads(str(last[who]["peer_env_seen"]))
                    want = peer_env if who == "h" else {k: os.environ.get(k) for k in peer_env}
                    if seen != want:
                        raise RuntimeError(f"--peer-env: the {'himalaya' if who == 'h' else 'brainllm'} "
                                           f"process saw {seen}, expected {want}")
                    runs[who].append(float(last[who]["seconds"]))
            h, o = last["h"], last["o"]
            rh, ro = _pearson_np(h["pred"], Yt), _pearson_np(o["pred"], Yt)
            th, to = runs["h"], runs["o"]
            res = dict(
                name=_case_name(case, args, n_same, len(grid)),
                himalaya_s=statistics.median(th), ours_s=statistics.median(to),
                himalaya_runs=th, ours_runs=to, ratio=statistics.median(th) / statistics.median(to),
                r_himalaya=float(rh.mean()), r_ours=float(ro.mean()),
                r_b_only_himalaya=float(rh[k:2 * k].mean()), r_b_only_ours=float(ro[k:2 * k].mean()),
                alpha_agree=float(np.mean(np.isclose(h["alphas"], o["alphas"], rtol=1e-4))),
                max_abs_pred_diff=float(np.max(np.abs(h["pred"] - o["pred"]))),
                isolated=True,
                peer_env=peer_env,
            )
            if "gammas" in o:
                res["gamma_agree"] = float(np.mean(np.all(np.isclose(h["gammas"], o["gammas"], atol=1e-4), 0)))
                res["ours_A_share"] = [float(np.median(o["gammas"][0, sl]))
                                       for sl in (slice(0, k), slice(k, 2 * k), slice(2 * k, None))]
            print(f"{res['name']:<16} himalaya {res['himalaya_s']:8.2f} s  ours {res['ours_s']:7.2f} s  "
                  f"ratio {res['ratio']:5.1f}x  mean r {res['r_himalaya']:.4f} / {res['r_ours']:.4f}  "
                  f"alpha agree {100 * res['alpha_agree']:.1f}%"
                  + (f"  gamma agree {100 * res['gamma_agree']:.1f}%" if "gamma_agree" in res else "")
                  + f"  runs h={['%.2f' % x for x in th]} o={['%.2f' % x for x in to]}", flush=True)
            results.append(res)
    if args.json:
        from brainllm_utils._utils.benchrecord import environment

        cpu = "?"
        try:
            cpu = [line.split(":", 1)[1].strip() for line in subprocess.run(
                ["lscpu"], capture_output=True, text=True).stdout.splitlines() if line.startswith("Model name")][0]
        except Exception:
            pass
        Path(args.json).write_text(json.dumps(dict(args=vars(args), cpu=cpu, gpu=None, results=results,
                                                   environment=environment()), indent=2))
    return results


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--n-test", type=int, default=500)
    ap.add_argument("--bands", type=int, nargs=2, default=[768, 300])
    ap.add_argument("--targets", type=int, default=5000)
    ap.add_argument("--alphas", type=float, nargs=3, default=[-1, 6, 15], metavar=("LOG_MIN", "LOG_MAX", "N"))
    ap.add_argument("--cv", type=int, default=5)
    ap.add_argument("--n-iter", type=int, default=20, help="himalaya random-search iterations")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--banded-repeats", type=int, default=None, help="default: --repeats")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--himalaya-backend", default=None, help="default: numpy on CPU, torch_cuda on GPU")
    ap.add_argument("--tf32", action="store_true", help="allow TF32 in ours (GPU)")
    ap.add_argument("--skip", nargs="*", default=[], choices=["ridge", "banded", "banded_same", "banded_default"])
    ap.add_argument("--json", default=None, help="write results here")
    ap.add_argument("--isolate", action="store_true",
                    help="each timed repeat of each tool in its own process")
    ap.add_argument("--peer-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment of the himalaya processes only (with --isolate), e.g. "
                         "OPENBLAS_THREAD_TIMEOUT=4: its two OpenBLAS pools (numpy's and scipy's) then "
                         "sleep when idle instead of spinning beside each other")
    ap.add_argument("--child", choices=["h", "o"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--case", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return _child(args)
    if args.isolate:
        return _isolated(args, argv)
    if args.peer_env:
        raise SystemExit("--peer-env needs --isolate (the himalaya processes' own environment)")

    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)
    import himalaya
    from himalaya.backend import set_backend
    from himalaya.ridge import GroupRidgeCV as HGroup
    from himalaya.ridge import RidgeCV as HRidge
    from himalaya.scoring import r2_score as h_r2

    from brainllm_utils.encoding import BandedRidgeCV, RidgeCV, band_weight_grid

    hb = args.himalaya_backend or ("torch_cuda" if args.device.startswith("cuda") else "numpy")
    backend = set_backend(hb, on_error="raise")
    alphas = np.logspace(*args.alphas[:2], int(args.alphas[2]))
    XA, XB, Y, XAt, XBt, Yt, a = make_data(args.n_train, args.n_test, *args.bands, args.targets)
    X, Xt = np.concatenate([XA, XB], 1), np.concatenate([XAt, XBt], 1)
    cpu = "?"
    try:
        cpu = [l.split(":", 1)[1].strip() for l in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines() if l.startswith("Model name")][0]
    except Exception:
        pass
    gpu = torch.cuda.get_device_name() if args.device.startswith("cuda") else None
    print(f"# bench_ridge: n_train={args.n_train} n_test={args.n_test} bands={args.bands} targets={args.targets} "
          f"alphas=logspace({args.alphas[0]:g},{args.alphas[1]:g},{int(args.alphas[2])}) cv={args.cv} (contiguous KFold)")
    print(f"# device={args.device} ({gpu or cpu}) threads={args.threads} torch {torch.__version__} himalaya {himalaya.__version__} backend={hb} tf32={args.tf32}")

    def h_fit_predict_ridge():
        m = HRidge(alphas=alphas, cv=args.cv, fit_intercept=True, solver_params=dict(score_func=h_r2))
        m.fit(X, Y)
        P = backend.to_numpy(m.predict(Xt))
        return m, P

    def o_fit_predict_ridge():
        m = RidgeCV(alphas=alphas, cv=args.cv, device=args.device, allow_tf32=args.tf32)
        m.fit(X, Y)
        return m, m.predict(Xt)

    def h_fit_predict_banded(gammas):
        sp = dict(n_iter=gammas, alphas=alphas, score_func=h_r2, progress_bar=False)
        m = HGroup(groups="input", cv=args.cv, fit_intercept=True, solver_params=sp, random_state=0)
        m.fit([XA, XB], Y)
        P = backend.to_numpy(m.predict([XAt, XBt]))
        return m, P

    def o_fit_predict_banded(gammas):
        m = BandedRidgeCV(alphas=alphas, cv=args.cv, device=args.device, band_weights=gammas, allow_tf32=args.tf32)
        m.fit([XA, XB], Y)
        return m, m.predict([XAt, XBt])

    def run_pair(name, h_fn, o_fn, repeats):
        # warm-up on a small slice (imports, allocator, BLAS threads)
        th, to = [], []
        for r in range(repeats):
            order = [("h", h_fn), ("o", o_fn)] if r % 2 == 0 else [("o", o_fn), ("h", h_fn)]
            for who, fn in order:
                dt, out = timed(fn, args.device)
                (th if who == "h" else to).append(dt)
                if who == "h":
                    hm, hp = out
                else:
                    om, op = out
        rh, ro = pearson(hp, Yt), pearson(op, Yt)
        res = dict(
            name=name,
            himalaya_s=statistics.median(th), ours_s=statistics.median(to),
            himalaya_runs=th, ours_runs=to,
            ratio=statistics.median(th) / statistics.median(to),
            r_himalaya=float(rh.mean()), r_ours=float(ro.mean()),
            r_b_only_himalaya=float(rh[args.targets // 3 : 2 * (args.targets // 3)].mean()),
            r_b_only_ours=float(ro[args.targets // 3 : 2 * (args.targets // 3)].mean()),
            alpha_agree=float(np.mean(np.isclose(backend.to_numpy(hm.best_alphas_), om.best_alphas_, rtol=1e-4))),
            max_abs_pred_diff=float(np.max(np.abs(hp - op))),
        )
        if hasattr(om, "best_band_weights_"):
            hg = np.exp(backend.to_numpy(hm.deltas_)) * backend.to_numpy(hm.best_alphas_)[None]
            res["gamma_agree"] = float(np.mean(np.all(np.isclose(hg, om.best_band_weights_, atol=1e-4), 0)))
            k = args.targets // 3
            res["ours_A_share"] = [float(np.median(om.best_band_weights_[0, s])) for s in (slice(0, k), slice(k, 2 * k), slice(2 * k, None))]
        print(f"{name:<16} himalaya {res['himalaya_s']:8.2f} s  ours {res['ours_s']:7.2f} s  ratio {res['ratio']:5.1f}x  "
              f"mean r {res['r_himalaya']:.4f} / {res['r_ours']:.4f}  alpha agree {100 * res['alpha_agree']:.1f}%"
              + (f"  gamma agree {100 * res['gamma_agree']:.1f}%" if "gamma_agree" in res else "")
              + f"  runs h={['%.2f' % x for x in th]} o={['%.2f' % x for x in to]}", flush=True)
        return res

    # warm-up: tiny fits of both
    small = slice(0, 200)
    HRidge(alphas=alphas, cv=args.cv).fit(X[small], Y[small, :50])
    RidgeCV(alphas=alphas, cv=args.cv, device=args.device).fit(X[small], Y[small, :50])

    results = []
    if "ridge" not in args.skip:
        results.append(run_pair("RidgeCV", h_fit_predict_ridge, o_fit_predict_ridge, args.repeats))
    br = args.banded_repeats or args.repeats
    grid = band_weight_grid(2)
    same = grid[grid.min(1) > 0]  # himalaya cannot take a zero band weight
    if "banded_same" not in args.skip and "banded" not in args.skip:
        results.append(run_pair(f"Banded same-{len(same)}γ", lambda: h_fit_predict_banded(same), lambda: o_fit_predict_banded(same), br))
    if "banded_default" not in args.skip and "banded" not in args.skip:
        results.append(run_pair(f"Banded h{args.n_iter}/o{len(grid)}", lambda: h_fit_predict_banded(args.n_iter), lambda: o_fit_predict_banded(None), br))
    if args.json:
        from brainllm_utils._utils.benchrecord import environment

        Path(args.json).write_text(json.dumps(dict(args=vars(args), cpu=cpu, gpu=gpu, results=results,
                                                   environment=environment()), indent=2))
    return results


if __name__ == "__main__":
    main()
