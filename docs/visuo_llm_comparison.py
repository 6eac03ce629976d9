r"""One-off comparison of brainllm_utils with the authors' published code (``adriendoerig/visuo_llm``).

Not part of the package, the tests or the book: a developer runs it by hand, once, and records
what it prints in ``docs/visuo_llm_comparison.md``. It never copies the authors' code: it
*imports* their modules from a checkout given on the command line and runs them next to ours on
an NSD-shaped root (by default the sandbox), for the steps that need no GPU or TensorFlow:

1. the three-repeat filter and the repeat-averaged, session-z-scored betas
   (``utils/nsd_get_data_light.py``: ``get_subject_conditions``, ``load_or_compute_betas_average``,
   ``get_betas``, ``average_over_conditions``), fsaverage and func1pt8mm;
2. the shared test split (``get_conditions_515``, ``get_conditions_1000``);
3. the 100-image sampling (the loop inside ``searchlight_analyses/nsd_searchlight_main_tf.py``,
   executed on its own with a seeded ``np.random``; theirs is unseeded, so the partitions are
   compared by structure and by inclusion statistics over many seeds);
4. the noise ceilings: ROI leave-one-subject-out (inside ``roi_analyses/nsd_roi_analyses.py``)
   and the per-vertex inter-participant agreement (the script
   ``encoding_decoding_analyses/make_noise_ceiling.py``);
5. ROI RSA (``utils/nsd_prepare_modelrdms.py`` → ``roi_analyses/nsd_roi_analyses.py``, with
   ``utils/utils.py: corr_rdms`` and ``utils/batch_gen.py``), fed *our* seeded partition so both
   sides compare the same 100-image sets.

How their code is made to run (printed at start, nothing else is changed):

- their modules are loaded from the checkout through an import hook that rewrites two literals
  in the syntax tree: ``range(8)`` and ``n_subjects = 8`` become the number of subjects on the
  root (the sandbox has 4; NSD has 8, where the rewrite is a no-op);
- the script ``make_noise_ceiling.py`` is executed with its top-level path constants replaced
  (``nsd_dir``, ``nsd_derivatives_dir``, ``betas_dir``, ``results_dir``), ``n_voxels`` set to the
  root's vertex count and the literal ``515`` (the NSD test-set size) set to the root's;
- ``tensorflow_probability`` is replaced by a NumPy ``stats.correlation`` (Pearson along
  ``sample_axis``, the only function used); ``get_embeddings.embedding_models_zoo`` (needs
  TensorFlow Hub / sentence-transformers, unused here) by an empty module; the module
  ``decoding_analyses.decoding_utils`` that ``make_noise_ceiling.py`` imports was deleted from
  the repository, and ``pairwise_corr`` now lives in
  ``encoding_decoding_analyses/encoding_decoding_utils.py``: the old name is aliased to it;
- ``utils/get_name2file_dict.get_name2file_dict`` is replaced by a dict of our feature files
  (NSD-ordered ``.npy`` arrays, as their code expects);
- in ``nsd_roi_analyses``, ``corr_rdms``'s ``(1, 1)`` result is squeezed before their code stores
  it in a float array slot: numpy ≥ 2 raises on that assignment (numpy 1.25–1.26 only warned).

Command (about 100 s and 1.1 GB peak on the default sandbox, 2 CPUs)::

    # a checkout of the authors' repository at 22c6518 (any way; from a bare mirror G, file by
    # file, because two caption pickles are absent from the mirror and `git archive` stops there):
    G=/path/to/visuo_llm.git; mkdir -p /tmp/visuo_llm && cd /tmp/visuo_llm
    git --git-dir=$G ls-tree -r --name-only HEAD | while read f; do mkdir -p "$(dirname "$f")"; \
        git --git-dir=$G show "HEAD:$f" > "$f" 2>/dev/null || rm -f "$f"; done; cd -
    PYTHONPATH=. OMP_NUM_THREADS=1 python docs/visuo_llm_comparison.py /tmp/visuo_llm \
        --data data/sandbox --work /tmp/visuo_cmp --nan-probe

``/tmp/visuo_llm`` is the checkout's root (the folder holding ``src/nsd_visuo_semantics``).
``--nan-probe`` also reruns steps 1, 2, 4 and 5 on a copy of the root (symbolic links, in ``--work``)
where some fsaverage vertices are NaN in one session of one subject, to show how each side
handles missing values.
"""

from __future__ import annotations

import argparse
import ast
import importlib.abc
import importlib.util
import json
import os
import pickle
import shutil
import sys
import time
import types
from pathlib import Path

import numpy as np

PKG = "nsd_visuo_semantics"


# --------------------------------------------------------------------------- loading their code
class _Rewrite(ast.NodeTransformer):
    """``range(8)`` → ``range(n)``, ``n_subjects = 8`` → ``n_subjects = n``, and top-level
    overrides for scripts; every rewrite is logged as (file, line, before, after)."""

    def __init__(self, fname, n_subjects, overrides=None, literals=None):
        self.fname, self.n, self.overrides = fname, n_subjects, overrides or {}
        self.literals = literals or {}
        self.log = []
        self.depth = 0

    def _note(self, node, before, after):
        self.log.append((self.fname, node.lineno, before, after))

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1
        return node

    def visit_Call(self, node):
        self.generic_visit(node)
        if (isinstance(node.func, ast.Name) and node.func.id == "range" and len(node.args) == 1
                and isinstance(node.args[0], ast.Constant) and node.args[0].value == 8 and self.n != 8):
            self._note(node, "range(8)", f"range({self.n})")
            node.args[0] = ast.copy_location(ast.Constant(self.n), node.args[0])
        return node

    def visit_Constant(self, node):
        if type(node.value) is int and node.value in self.literals:
            self._note(node, repr(node.value), repr(self.literals[node.value]))
            return ast.copy_location(ast.Constant(self.literals[node.value]), node)
        return node

    def visit_Assign(self, node):
        if len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if self.depth == 0 and name in self.overrides:
                self._note(node, f"{name} = {ast.unparse(node.value)}", f"{name} = {self.overrides[name]!r}")
                node.value = ast.copy_location(ast.Constant(self.overrides[name]), node.value)
                return node
            if (name == "n_subjects" and isinstance(node.value, ast.Constant) and node.value.value == 8
                    and self.n != 8):
                self._note(node, "n_subjects = 8", f"n_subjects = {self.n}")
                node.value = ast.copy_location(ast.Constant(self.n), node.value)
                return node
        self.generic_visit(node)
        return node


class _TheirLoader(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import ``nsd_visuo_semantics.*`` from the checkout, with :class:`_Rewrite` applied."""

    def __init__(self, src: Path, n_subjects: int):
        self.src, self.n, self.log = src, n_subjects, []

    def find_spec(self, name, path=None, target=None):
        if name != PKG and not name.startswith(PKG + "."):
            return None
        rel = Path(*name.split("."))
        pkg_init = self.src / rel / "__init__.py"
        if pkg_init.exists():
            return importlib.util.spec_from_file_location(name, pkg_init, loader=self,
                                                          submodule_search_locations=[str(pkg_init.parent)])
        mod = self.src / rel.with_suffix(".py")
        if mod.exists():
            return importlib.util.spec_from_file_location(name, mod, loader=self)
        return None

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        path = Path(module.__spec__.origin)
        tree = ast.parse(path.read_text(), str(path))
        rw = _Rewrite(str(path.relative_to(self.src)), self.n)
        tree = ast.fix_missing_locations(rw.visit(tree))
        self.log += rw.log
        exec(compile(tree, str(path), "exec"), module.__dict__)


def _np_correlation(x, y=None, sample_axis=0, event_axis=None, **_):
    """NumPy stand-in for ``tfp.stats.correlation(x, y, sample_axis, event_axis=None)``:
    the Pearson correlation of x and y along ``sample_axis``, elementwise over the other axes
    (biased moments, as tfp; 0/0 gives NaN, as tfp)."""
    x = np.asarray(x, np.float64)
    y = x if y is None else np.asarray(y, np.float64)
    xc = x - x.mean(axis=sample_axis, keepdims=True)
    yc = y - y.mean(axis=sample_axis, keepdims=True)
    cov = (xc * yc).mean(axis=sample_axis)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = cov / np.sqrt((xc**2).mean(axis=sample_axis) * (yc**2).mean(axis=sample_axis))
    return types.SimpleNamespace(numpy=lambda: out.astype(np.float32))


def install_their_code(checkout: Path, n_subjects: int) -> _TheirLoader:
    """Make ``import nsd_visuo_semantics...`` load the checkout (see the module docstring)."""
    src = checkout / "src"
    if not (src / PKG / "utils" / "nsd_get_data_light.py").exists():
        raise SystemExit(f"{checkout}: not a visuo_llm checkout (no src/{PKG}/utils/nsd_get_data_light.py)")
    tfp = types.ModuleType("tensorflow_probability")
    tfp.stats = types.SimpleNamespace(correlation=_np_correlation)
    sys.modules.setdefault("tensorflow_probability", tfp)
    zoo = types.ModuleType(f"{PKG}.get_embeddings.embedding_models_zoo")
    sys.modules[zoo.__name__] = zoo
    zoo.get_embedding_model = zoo.get_embeddings = None
    loader = _TheirLoader(src, n_subjects)
    sys.meta_path.insert(0, loader)
    import nsd_visuo_semantics.encoding_decoding_analyses.encoding_decoding_utils as edu
    old = types.ModuleType(f"{PKG}.decoding_analyses")
    old.__path__ = []
    sys.modules[old.__name__] = old
    sys.modules[f"{PKG}.decoding_analyses.decoding_utils"] = edu
    return loader


def run_their_script(path: Path, n_subjects: int, overrides: dict, literals: dict) -> tuple[dict, list]:
    """Execute a top-level script of theirs with its constants replaced; return its namespace."""
    tree = ast.parse(path.read_text(), str(path))
    rw = _Rewrite(path.name, n_subjects, overrides, literals)
    tree = ast.fix_missing_locations(rw.visit(tree))
    ns = {"__name__": "__visuo_script__", "__file__": str(path)}
    exec(compile(tree, str(path), "exec"), ns)
    return ns, rw.log


def their_sampler(script: Path):
    """The partition loop of ``nsd_searchlight_main_tf.py`` (the ``if MODEL_NAME == "mpnet"``
    branch), compiled from their file as a function ``f(all_conditions, subj_n_samples)``."""
    tree = ast.parse(script.read_text(), str(script))
    loop = None
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
                and ast.unparse(node.test) == "MODEL_NAME == 'mpnet'"):
            body = [n for n in node.body if isinstance(n, (ast.Assign, ast.For))]
            loop = body
            break
    if loop is None:
        raise SystemExit(f"{script}: the sampling loop was not found")
    fn = ast.FunctionDef(
        name="sample", args=ast.arguments(posonlyargs=[], args=[ast.arg("all_conditions"), ast.arg("subj_n_samples")],
                                          kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=loop + [ast.Return(ast.Name("subj_sample_pool", ast.Load()))], decorator_list=[])
    mod = ast.fix_missing_locations(ast.Module([fn], type_ignores=[]))
    ns = {"np": np}
    exec(compile(mod, str(script), "exec"), ns)
    return ns["sample"], ast.unparse(ast.Module(loop, type_ignores=[]))


# --------------------------------------------------------------------------- helpers
def _maxdiff(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    both = np.isnan(a) & np.isnan(b)
    only = np.isnan(a) ^ np.isnan(b)
    d = np.abs(a - b)[~(both | only)]
    return float(d.max()) if d.size else 0.0, int(only.sum())


def _row(step, what, theirs, ours, agreement):
    print(f"| {step} | {what} | {theirs} | {ours} | {agreement} |", flush=True)
    return dict(step=step, what=what, theirs=str(theirs), ours=str(ours), agreement=str(agreement))


def nan_probe_root(data: Path, work: Path, subject="subj02", session=2, n_nan=50, seed=0) -> Path:
    """A copy of ``data`` (symbolic links) where ``n_nan`` lh fsaverage vertices of the streams
    ROIs (and 10 outside them) are NaN in one session of one subject."""
    import nibabel as nb

    root = work / "nan_root"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for top in sorted(data.iterdir()):
        (root / top.name).symlink_to(top.resolve())
    betas = Path("nsddata_betas/ppdata") / subject / "fsaverage" / "betas_fithrf_GLMdenoise_RR"
    # replace the linked nsddata_betas by a tree of links, with one real file
    (root / "nsddata_betas").unlink()
    for f in sorted((data / "nsddata_betas").rglob("*")):
        if f.is_file():
            dst = root / f.relative_to(data)
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.symlink_to(f.resolve())
    fname = root / betas / f"lh.betas_session{session:02d}.mgh"
    fname.unlink()
    img = nb.load(data / betas / fname.name)
    arr = np.asarray(img.dataobj).astype(np.float32)
    streams = np.asarray(nb.load(data / "nsddata/freesurfer/fsaverage/label/lh.streams.mgz").dataobj).ravel()
    rng = np.random.default_rng(seed)
    inside = rng.choice(np.flatnonzero(streams > 0), n_nan, replace=False)
    outside = rng.choice(np.flatnonzero(streams == 0), 10, replace=False)
    arr.reshape(arr.shape[0], -1)[np.r_[inside, outside]] = np.nan
    nb.save(nb.MGHImage(arr, img.affine, img.header), fname)
    return root


# --------------------------------------------------------------------------- the steps
def compare(data: Path, work: Path, checkout: Path, seed: int, n_seeds: int, spaces, label: str,
            do_sampling: bool = True, do_rsa: bool = True):
    from brainllm_utils.chapters import (
        dataset_key,
        inter_subject_ceiling,
        loso_ceilings,
        subject_image_ids,
        subject_rsa_table,
        subject_sets,
    )
    from brainllm_utils.nsd import NSD
    from brainllm_utils.rsa import make_sample_sets

    import nsd_visuo_semantics.utils.nsd_get_data_light as ngd

    work.mkdir(parents=True, exist_ok=True)
    nsd = NSD(data, cache_dir=work / "ours_cache")
    subjects = list(nsd.subjects)
    nsd_dir = str(data)
    betas_dir = work / "their_betas"
    betas_dir.mkdir(exist_ok=True)
    rows = []
    print(f"\n## {label}: {data}\n")
    print("| step | what | theirs | ours | agreement |\n|---|---|---|---|---|")

    # ---------------------------------------------------------------- 1. three repeats + betas
    their_sample = {}
    for s in subjects:
        conditions, conditions_sampled, sample = ngd.get_subject_conditions(nsd_dir, s, 40, keep_only_3repeats=True)
        their_sample[s] = sample
        ours = subject_image_ids(nsd, s)
        same = np.array_equal(np.asarray(sample) - 1, ours)
        rows.append(_row("1 three-repeat filter", f"{s}: images seen exactly 3× (sorted nsdId)",
                         f"{len(sample)} (of {len(np.unique(conditions))} shown, {len(conditions)} trials)",
                         len(ours), "identical" if same else "DIFFERENT"))
        for space in spaces:
            bfile = betas_dir / f"{s}_betas_average_{space}.npy"
            t0 = time.time()
            theirs = ngd.load_or_compute_betas_average(str(bfile), nsd_dir, s, 40, conditions,
                                                       conditions_sampled, space)
            t1 = time.time()
            Y, ids = nsd.betas(s, space=space, progress=False)
            t2 = time.time()
            if space == "fsaverage":
                T = theirs.T
            else:
                cols = nsd.columns(s, space)
                T = theirs.reshape(-1, theirs.shape[-1])[cols].T
            d, nan_only = _maxdiff(T, Y)
            rows.append(_row("1 averaged betas", f"{s} {space}: z-score per session, mean of 3 repeats "
                             f"({T.shape[0]} images × {T.shape[1]} columns)",
                             f"{np.isnan(T).sum()} NaN ({t1 - t0:.1f} s)", f"{np.isnan(np.asarray(Y)).sum()} NaN "
                             f"({t2 - t1:.1f} s)",
                             f"max abs diff {d:.2e}; NaN in one only: {nan_only}"))
            del theirs, T, Y
        # free their volume average (only the fsaverage one is reused below)
        for f in betas_dir.glob(f"{s}_betas_average_func1pt8mm.npy"):
            f.unlink()

    # ---------------------------------------------------------------- 2. test split
    t1000 = np.asarray(ngd.get_conditions_1000(nsd_dir)) - 1
    shared = np.sort(nsd.expdesign["sharedix"].ravel() - 1)
    rows.append(_row("2 test split", "shared images (their glob of shared1000/*.png vs our sharedix)",
                     t1000.size, shared.size, "identical" if np.array_equal(np.sort(t1000), shared) else "DIFFERENT"))
    t515 = np.asarray(ngd.get_conditions_515(nsd_dir), dtype=np.int64) - 1
    o515 = nsd.shared_test_images()
    rows.append(_row("2 test split", f"shared images seen 3× by all {len(subjects)} subjects (NSD: 515)",
                     t515.size, o515.size,
                     "identical sets"
                     if np.array_equal(np.sort(t515), o515) else
                     f"DIFFERENT: {np.setdiff1d(t515, o515).size} only theirs, {np.setdiff1d(o515, t515).size} only ours"))
    order_same = np.array_equal(t515, np.sort(t515))
    rows.append(_row("2 test split", "order of their list", "ascending nsdId" if order_same else "not sorted",
                     "ascending nsdId", "same order" if order_same else "order differs"))

    # ---------------------------------------------------------------- 3. sampling
    if do_sampling:
        sample_fn, src = their_sampler(checkout / "src" / PKG / "searchlight_analyses" / "nsd_searchlight_main_tf.py")
        s0 = subjects[0]
        n = len(their_sample[s0])
        n_sets = n // 100
        np.random.seed(seed)
        theirs = np.asarray(sample_fn(range(n), n_sets))
        ours_ids, ours = subject_sets(nsd, s0, seed=seed, results_dir=work / "ours_results")

        def _structure(p):
            flat = p.ravel()
            return (f"{p.shape[0]}×{p.shape[1]}, disjoint={np.unique(flat).size == flat.size}, "
                    f"rows sorted={bool(np.all(np.diff(p, axis=1) > 0))}, left out={n - flat.size}")
        rows.append(_row("3 sampling", f"{s0}: partition of {n} images into sets of 100",
                         _structure(theirs), _structure(ours),
                         "same structure" if _structure(theirs) == _structure(ours) else "DIFFERENT structure"))
        # inclusion and co-membership statistics over many seeds (both are uniform random partitions)
        inc_t, inc_o = np.zeros(n), np.zeros(n)
        same_t = same_o = 0
        for k in range(n_seeds):
            np.random.seed(10_000 + k)
            pt = np.asarray(sample_fn(range(n), n_sets))
            po = make_sample_sets(n, 100, seed=10_000 + k)
            inc_t[pt.ravel()] += 1
            inc_o[po.ravel()] += 1
            # are images 0 and 1 in the same set?
            same_t += any(0 in r and 1 in r for r in pt)
            same_o += any(0 in r and 1 in r for r in po)
        p_in = n_sets * 100 / n
        p_pair = n_sets * 100 * 99 / (n * (n - 1))
        sd_binom = np.sqrt(p_in * (1 - p_in) / n_seeds)  # per-image rate if each draw is uniform

        def _rates(inc):
            r = inc / n_seeds
            return f"mean {r.mean():.3f}, SD {r.std():.4f}, range {r.min():.3f}–{r.max():.3f}"
        rows.append(_row("3 sampling", f"{s0}: per-image inclusion rate over {n_seeds} seeds "
                         f"(expected mean {p_in:.3f}, SD {sd_binom:.4f})",
                         _rates(inc_t), _rates(inc_o), "same distribution (uniform random partition)"))
        rows.append(_row("3 sampling", f"{s0}: P(images 0 and 1 share a set) over {n_seeds} seeds "
                         f"(expected {p_pair:.4f})", f"{same_t / n_seeds:.4f}", f"{same_o / n_seeds:.4f}",
                         "consistent"))
        rows.append(_row("3 sampling", "seeding", "global np.random, unseeded in the original (seeded here)",
                         "np.random.default_rng(seed), saved as nsdIds", "partitions differ draw by draw (by design)"))
        sampling_src = src
    else:
        sampling_src = None

    # ---------------------------------------------------------------- 4a. per-vertex agreement
    script = checkout / "src" / PKG / "encoding_decoding_analyses" / "make_noise_ceiling.py"
    nc_dir = work / f"their_special515_{label}"
    if nc_dir.exists():
        shutil.rmtree(nc_dir)
    n_vert = int(sum(nsd.n_vertices()))
    ns, log = run_their_script(script, len(subjects),
                               dict(nsd_dir=nsd_dir, nsd_derivatives_dir=str(work), betas_dir=str(betas_dir),
                                    results_dir=str(nc_dir), n_voxels=n_vert),
                               {515: int(t515.size)})
    theirs_nc = np.load(nc_dir / "noise_ceiling.npy")
    ours_sub = inter_subject_ceiling(nsd)
    ours_nc = ours_sub.mean(0)
    theirs_sub = ns["subj_corrs"]  # (n_subjects, n_vertices), before their mean over subjects
    both = np.isfinite(theirs_sub) & np.isfinite(ours_sub)
    close = both & np.isclose(theirs_sub, ours_sub, atol=1e-4)
    rows.append(_row("4 noise ceiling", "per-vertex agreement, each subject's r (subjects × vertices)",
                     f"{np.isnan(theirs_sub).sum()} NaN", f"{np.isnan(ours_sub).sum()} NaN",
                     f"{close.sum()} of {theirs_sub.size} equal (max abs diff there "
                     f"{np.abs(theirs_sub - ours_sub)[close].max():.2e}); differ at "
                     f"{(both & ~close).sum()} finite + {(~both).sum()} NaN-in-theirs entries"))
    d, nan_only = _maxdiff(theirs_nc, ours_nc)
    rows.append(_row("4 noise ceiling", f"per-vertex inter-participant agreement ({n_vert} vertices, "
                     f"{t515.size} test images, {len(subjects)} subjects)",
                     f"mean {np.nanmean(theirs_nc):.4f}, {np.isnan(theirs_nc).sum()} NaN",
                     f"mean {np.nanmean(ours_nc):.4f}, {np.isnan(ours_nc).sum()} NaN",
                     f"max abs diff {d:.2e} (finite in both); NaN in one only: {nan_only}"))
    if nan_only or d > 1e-4:
        bad = np.flatnonzero(~np.isclose(theirs_nc, ours_nc, atol=1e-4, equal_nan=False))
        rows.append(_row("4 noise ceiling", "vertices that differ (first 5: vertex theirs/ours)",
                         ", ".join(f"{v}:{theirs_nc[v]:.3f}" for v in bad[:5]),
                         ", ".join(f"{v}:{ours_nc[v]:.3f}" for v in bad[:5]), f"{bad.size} vertices"))

    result = dict(rows=rows, script_rewrites=log, sampling_loop=sampling_src)
    if not do_rsa:
        return result

    # ---------------------------------------------------------------- 4b + 5. ROI ceilings, ROI RSA
    import nsd_visuo_semantics.roi_analyses.nsd_roi_analyses as nra
    import nsd_visuo_semantics.utils.nsd_prepare_modelrdms as npm

    base = work / f"their_base_{label}"
    if base.exists():
        shutil.rmtree(base)
    emb_dir = work / "features"
    emb_dir.mkdir(exist_ok=True)
    from brainllm_utils.synth import load_truth_array

    models = ["category", "lowlevel", "layout"]
    files, feats = {}, {}
    for m in models:
        X = np.asarray(load_truth_array(data, f"features_{m}"), dtype=np.float32)
        files[m] = str(emb_dir / f"nsd_truth_{m}.npy")
        np.save(files[m], X)
        feats[m] = (np.arange(X.shape[0], dtype=np.int64), X)
    npm.get_name2file_dict = lambda *a, **k: files
    # numpy ≥ 2 refuses `per_left_out_corrs[s] = <(1, 1) array>` (a DeprecationWarning in 1.25–1.26,
    # the numpy their code was written for): their corr_rdms is called unchanged, its (1, 1)
    # result handed back as a 0-d array (same value; the per-set means are unaffected)
    their_corr_rdms = nra.corr_rdms
    nra.corr_rdms = lambda X, Y: np.squeeze(their_corr_rdms(X, Y))
    npm.nsd_prepare_modelrdms(models, "correlation", str(emb_dir), str(base / "serialised_models_correlation"),
                              nsd_dir, None, None, OVERWRITE=True)
    # our seeded partition, written where their ROI analysis reads the searchlight's sampling
    design = {}
    for s in subjects:
        ids, sets = subject_sets(nsd, s, seed=seed, results_dir=work / "ours_results")
        design[s] = (ids, sets)
        d_ = base / "searchlight_respectedsampling_correlation" / s / "saved_sampling"
        d_.mkdir(parents=True, exist_ok=True)
        np.save(d_ / f"{s}_nsd-allsubstim_sampling.npy", sets)
    rois_dir = str(data / "nsddata" / "freesurfer" / "fsaverage" / "label")
    t0 = time.time()
    nra.nsd_roi_analyses(models, "correlation", 0, "streams", nsd_dir, str(betas_dir), rois_dir, str(base),
                         OVERWRITE_NEURO_RDMs=True, OVERWRITE_RDM_CORRs=True)
    t1 = time.time()
    cache = base / "roi_analyses" / "streams_roi_results_correlation" / "cache"
    with open(cache / "noise_ceilings_rois_515_correlation_per_sub.pkl", "rb") as f:
        their_ceil = pickle.load(f)
    with open(cache / "all_correlation_rdm_corrs.pkl", "rb") as f:
        their_r = pickle.load(f)
    with open(cache / "subjWiseNoiseCeiling_group_corrs.pkl", "rb") as f:
        their_norm = pickle.load(f)
    ours_ceil = loso_ceilings(nsd, subjects, pool="mean")
    ours = subject_rsa_table(nsd, subjects, feature_spaces=models, features=feats, seed=seed,
                             results_dir=work / "ours_results", ceilings=ours_ceil, device="cpu")
    t2 = time.time()
    rois = list(their_ceil)
    tc = np.array([[their_ceil[r][s] for s in subjects] for r in rois])
    oc = ours_ceil.set_index(["roi", "subject"])["ceiling"]
    oc = np.array([[oc[(r, s)] for s in subjects] for r in rois])
    d, _ = _maxdiff(tc, oc)
    rows.append(_row("4 noise ceiling", f"ROI LOSO ceiling, {len(rois)} ROIs × {len(subjects)} subjects, "
                     f"{t515.size}-image RDMs",
                     f"range {tc.min():.4f}–{tc.max():.4f}", f"range {oc.min():.4f}–{oc.max():.4f}",
                     f"max abs diff {d:.2e}"))
    ours_meth = loso_ceilings(nsd, subjects, pool="method").set_index(["roi", "subject"])["ceiling"]
    om = np.array([[ours_meth[(r, s)] for s in subjects] for r in rois])
    rows.append(_row("4 noise ceiling", "same, our pool=\"method\" (rsatoolbox's z-scored pooling)",
                     "-", f"range {om.min():.4f}–{om.max():.4f}", f"max abs diff to theirs {_maxdiff(tc, om)[0]:.2e}"))
    oi = ours.set_index(["model", "roi", "subject"])
    tr = np.array([[[their_r[s][m][r] for s in subjects] for r in rois] for m in models])
    orr = np.array([[[oi.loc[(m, r, s), "r"] for s in subjects] for r in rois] for m in models])
    tn = np.array([[their_norm[m][r] for r in rois] for m in models])
    on = np.array([[[oi.loc[(m, r, s), "r_normalised"] for s in subjects] for r in rois] for m in models])
    n_sets = {s: design[s][1].shape[0] for s in subjects}
    rows.append(_row("5 ROI RSA", f"raw r, {len(models)} models × {len(rois)} ROIs × {len(subjects)} subjects, "
                     f"sets of 100 ({', '.join(f'{s}:{k}' for s, k in n_sets.items())} sets), same partition",
                     f"range {tr.min():.4f}–{tr.max():.4f} ({t1 - t0:.0f} s)",
                     f"range {orr.min():.4f}–{orr.max():.4f} ({t2 - t1:.0f} s)", f"max abs diff {_maxdiff(tr, orr)[0]:.2e}"))
    rows.append(_row("5 ROI RSA", "r ÷ subject's own LOSO ceiling", f"range {tn.min():.4f}–{tn.max():.4f}",
                     f"range {on.min():.4f}–{on.max():.4f}", f"max abs diff {_maxdiff(tn, on)[0]:.2e}"))
    # group statistics: what their figure script does with these values vs ours
    from scipy import stats

    from brainllm_utils.stats import paired_ttest

    k = rois.index("ventral") if "ventral" in rois else 0
    a, b = tn[0, k], tn[1, k]
    p_ind = stats.ttest_ind(a, b).pvalue
    p_pair = float(paired_ttest(a, b)[1])
    rows.append(_row("5 ROI RSA", f"{models[0]} vs {models[1]} in {rois[k]} (normalised, {len(subjects)} subjects): "
                     "two-sided p", f"{p_ind:.2e} (scipy ttest_ind, unpaired, as their figure script)",
                     f"{p_pair:.2e} (stats.paired_ttest)", "different tests (see text)"))
    rows.append(_row("5 ROI RSA", "error bar", "np.std (ddof=0) / √8 (8 hard-coded)",
                     "SD (ddof=1) / √n_subjects in stats.group_tests", "different (see text)"))
    result.update(dataset_key=dataset_key(nsd))
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkout", type=Path, help="root of a visuo_llm checkout (holds src/nsd_visuo_semantics)")
    p.add_argument("--data", type=Path, default=Path("data/sandbox"), help="NSD-shaped root (default: the sandbox)")
    p.add_argument("--work", type=Path, default=Path("/tmp/visuo_cmp"), help="scratch folder (their caches, ours)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample sets (both sides)")
    p.add_argument("--n-seeds", type=int, default=200, help="partitions drawn for the sampling statistics")
    p.add_argument("--spaces", default="fsaverage,func1pt8mm", help="beta spaces compared in step 1")
    p.add_argument("--nan-probe", action="store_true", help="also rerun steps 1, 2, 4 and 5 on a root with NaN vertices")
    p.add_argument("--json", type=Path, help="write the rows here")
    a = p.parse_args(argv)
    from brainllm_utils.nsd import NSD

    n_sub = len(NSD(a.data).subjects)
    loader = install_their_code(a.checkout.resolve(), n_sub)
    git = a.checkout / ".git"
    print(f"visuo_llm checkout: {a.checkout.resolve()}" + (f" ({git})" if git.exists() else ""))
    print(f"root: {a.data.resolve()} ({n_sub} subjects); seed {a.seed}")
    out = compare(a.data.resolve(), a.work / "main", a.checkout.resolve(), a.seed, a.n_seeds,
                  a.spaces.split(","), "sandbox")
    if a.nan_probe:
        root = nan_probe_root(a.data.resolve(), a.work)
        out["nan_probe"] = compare(root, a.work / "nan", a.checkout.resolve(), a.seed, a.n_seeds,
                                   ["fsaverage"], "nan-probe", do_sampling=False, do_rsa=True)
    # their code prints progress with carriage returns and no newline: the tables again, clean
    for label, res in [("sandbox", out)] + ([("nan-probe", out["nan_probe"])] if a.nan_probe else []):
        print(f"\n### {label}\n\n| step | what | theirs | ours | agreement |\n|---|---|---|---|---|")
        for r in res["rows"]:
            print(f"| {r['step']} | {r['what']} | {r['theirs']} | {r['ours']} | {r['agreement']} |")
    print("\nrewrites of their code (file, line, before → after):")
    rewrites = sorted(set(loader.log + out["script_rewrites"]))
    for f, line, before, after in rewrites:
        print(f"  {f}:{line}: {before} → {after}")
    print("\ntheir sampling loop, as executed:\n" + "\n".join("    " + s for s in (out["sampling_loop"] or "").splitlines()))
    if a.json:
        a.json.write_text(json.dumps(dict(out, rewrites=rewrites), indent=1, default=str))


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
