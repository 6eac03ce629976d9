"""The chapters' streamed (block-by-block) paths give the numbers of the whole-matrix paths.

Every analysis that streams the memory-mapped betas in column blocks is run with blocks of a few
columns (many blocks) and compared with the computation on the whole matrices, written out here
as the chapters did it before they streamed.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from brainllm_utils import encoding_analysis as ea  # noqa: E402
from brainllm_utils.chapters import _common  # noqa: E402
from brainllm_utils.chapters import ch02_rsa, ch04_decoding  # noqa: E402
from brainllm_utils.encoding import BandedRidgeCV, RidgeCV, band_weight_grid, pearson_r  # noqa: E402
from brainllm_utils.nsd import NSD  # noqa: E402

ALPHAS = np.logspace(-1, 4, 6)
pytestmark = pytest.mark.filterwarnings("ignore:.*edge of the grid.*:UserWarning")


@pytest.fixture(scope="module")
def nsd(tiny_root):
    return NSD(tiny_root)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of a few to a few hundred columns (tens of blocks or more on the tiny sandbox:
    ~13 columns for the partitioning's 848 feature weights, ~230 for an 80-feature encoder,
    7 for the ceiling). Blocks of one column change the float32 products' shapes enough to
    flip near-tie penalty choices, so they are not used."""
    monkeypatch.setattr(_common, "BLOCK_BYTES", 4 * 7 * (200 + 6 * 1600))


def _whole(nsd, s, roi=None):
    """subject_data as it was: the whole betas in memory, NaN → 0, then split."""
    roi_arg = nsd.roi_mask(s, roi) if isinstance(roi, str) else roi
    Y, ids = nsd.betas(s, roi=roi_arg, progress=False)
    Y = np.array(Y, dtype=np.float32)
    test = np.isin(ids, nsd.shared_test_images())
    valid = np.isfinite(Y).all(0)
    Y = np.where(np.isfinite(Y), Y, np.float32(0))
    return ids[~test], ids[test], Y[~test], Y[test], valid, nsd.columns(s, "fsaverage", roi_arg)


def test_blocks_cover_columns():
    blocks = _common._column_blocks(10, 103, block_bytes=4 * 10 * 25)
    assert [b.stop - b.start for b in blocks] == [25, 25, 25, 25, 3]
    assert _common._column_blocks(10, 5, block_bytes=1) == [slice(i, i + 1) for i in range(5)]


def test_subject_data_equals_whole_matrix(nsd):
    for s in nsd.subjects:
        d = ea.subject_data(nsd, s)
        tr_ids, te_ids, Y_tr, Y_te, valid, cols = _whole(nsd, s)
        np.testing.assert_array_equal(d.train_ids, tr_ids)
        np.testing.assert_array_equal(d.test_ids, te_ids)
        np.testing.assert_array_equal(d.Y_train, Y_tr)
        np.testing.assert_array_equal(d.Y_test, Y_te)
        np.testing.assert_array_equal(d.valid, valid)
        assert not valid.all() or s != "subj02"  # subj02 of the tiny sandbox has NaN vertices


def test_fit_encoders_streamed_equals_whole(nsd, cache_dir, small_blocks):
    from brainllm_utils import features

    res = ea.fit_encoders(nsd, feature="multihot", alphas=ALPHAS, cv=3, device="cpu")
    for i, s in enumerate(nsd.subjects):
        tr_ids, te_ids, Y_tr, Y_te, valid, cols = _whole(nsd, s)
        X_tr, X_te = features.build("multihot", nsd, tr_ids), features.build("multihot", nsd, te_ids)
        est = RidgeCV(alphas=ALPHAS, cv=3, device="cpu").fit(X_tr, Y_tr)
        r = pearson_r(est.predict(X_te), Y_te).astype(np.float32)
        r[~valid] = np.nan
        np.testing.assert_allclose(res.r[i, cols], r, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(res.alphas[i, cols], est.best_alphas_.astype(np.float32))
        coef, icpt = res.encoders[s]
        assert isinstance(coef, np.memmap)  # the weights stay on disk
        np.testing.assert_allclose(coef, est.coef_, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(icpt, est.intercept_, rtol=1e-5, atol=1e-6)


def test_inter_subject_ceiling_streamed_equals_whole(nsd, small_blocks):
    got = ea.inter_subject_ceiling(nsd)
    parts = [_whole(nsd, s) for s in nsd.subjects]
    Y = np.stack([np.where(p[4], p[3], np.nan) for p in parts])
    total, count = np.nansum(Y, axis=0), np.isfinite(Y).sum(0)
    for i, p in enumerate(parts):
        others = (total - np.nan_to_num(Y[i])) / np.maximum(count - np.isfinite(Y[i]), 1)
        np.testing.assert_allclose(got[i, p[5]], np.nan_to_num(pearson_r(Y[i], others)),
                                   rtol=1e-5, atol=1e-6)


def test_variance_partition_streamed_equals_whole(nsd, cache_dir, small_blocks):
    from brainllm_utils import features

    bands = ("multihot", "mpnet_category_all")
    roi = ("streams", "early")
    vp = ea.variance_partition(nsd, nsd.subjects[:1], bands=bands, roi=roi, alphas=ALPHAS, cv=3,
                               n_ratios=3, device="cpu")
    s = nsd.subjects[0]
    tr_ids, te_ids, Y_tr, Y_te, valid, cols = _whole(nsd, s, roi)
    Xa_tr, Xb_tr = (features.build(b, nsd, tr_ids) for b in bands)
    Xa_te, Xb_te = (features.build(b, nsd, te_ids) for b in bands)
    whole = ea.partition_r2(Xa_tr, Xb_tr, Y_tr, Xa_te, Xb_te, Y_te, alphas=ALPHAS, cv=3,
                            band_weights=band_weight_grid(2, 3), device="cpu")
    assert len(cols) > 7  # several blocks
    for k, v in whole.items():
        # R² differences of float32 products: 1e-5 absolute
        np.testing.assert_allclose(vp[k][0, cols], np.where(valid, v, np.nan), rtol=1e-5, atol=1e-5)
    assert BandedRidgeCV  # the estimator behind partition_r2


def test_category_contrast_streamed_equals_whole(nsd, small_blocks):
    a, b = ea.CONTRAST_CATEGORIES["people"], ea.CONTRAST_CATEGORIES["animals"]
    got = ea.category_contrast(nsd, nsd.subjects, a, b)
    for i, s in enumerate(nsd.subjects):
        tr_ids, _, Y_tr, _, valid, cols = _whole(nsd, s)
        multi, names = nsd.categories(tr_ids)
        col = {n: j for j, n in enumerate(names)}
        ha = multi[:, [col[c] for c in a if c in col]].any(1)
        hb = multi[:, [col[c] for c in b if c in col]].any(1)
        if (ha & ~hb).any() and (hb & ~ha).any():
            diff = Y_tr[ha & ~hb].mean(0) - Y_tr[hb & ~ha].mean(0)
            np.testing.assert_allclose(got["diff"][i, cols], np.where(valid, diff, np.nan),
                                       rtol=1e-5, atol=1e-6)


def test_in_silico_contrasts_blockwise_equals_full_weights(nsd, cache_dir):
    from brainllm_utils.encoding import embed_sentence_sets, in_silico_contrast

    def fake_embed(sentences, **kw):
        return np.stack([np.random.default_rng(len(x)).standard_normal(8) for x in sentences]).astype(np.float32)

    rng = np.random.default_rng(0)
    n_full = sum(nsd.n_vertices())
    cols = {s: np.sort(rng.choice(n_full, n_full - 40 * k, replace=False)) for k, s in enumerate(nsd.subjects)}
    encoders = {s: (rng.standard_normal((8, c.size)).astype(np.float32), rng.standard_normal(c.size).astype(np.float32))
                for s, c in cols.items()}
    res = ea.EncodingResults(list(nsd.subjects), "x", np.zeros((len(cols), n_full), np.float32),
                             np.zeros((len(cols), n_full), np.float32), encoders, cols)
    got = ea.in_silico_contrasts(res, contrasts=[("people", "places")], embed_fn=fake_embed)["people − places"]
    common = np.ones(n_full, bool)
    for c in cols.values():
        m = np.zeros(n_full, bool)
        m[c] = True
        common &= m
    encs = []
    for s, (coef, icpt) in encoders.items():
        fc = np.zeros((8, n_full), np.float32)
        fc[:, cols[s]] = coef
        fi = np.zeros(n_full, np.float32)
        fi[cols[s]] = icpt
        encs.append((fc[:, common], fi[common]))
    emb = embed_sentence_sets(None, embed_fn=fake_embed)
    want = in_silico_contrast(encs, emb["people"], emb["places"], fdr=True)
    for k in ("diff", "t", "p", "p_fdr"):
        np.testing.assert_allclose(got[k][..., common], want[k], rtol=1e-10, atol=1e-12)
    assert np.isnan(got["diff"][:, ~common]).all()


def test_decode_subjects_reads_only_valid_columns(nsd, cache_dir):
    from brainllm_utils import features

    roi = ("streams", "ventral")
    dec = ch04_decoding.decode_subjects(nsd, feature="multihot", roi=roi, alphas=ALPHAS, cv=3, device="cpu",
                                        cache=False)
    for i, s in enumerate(nsd.subjects):
        tr_ids, te_ids, Y_tr, Y_te, valid, _ = _whole(nsd, s, roi)
        est = RidgeCV(alphas=ALPHAS, cv=3, device="cpu").fit(Y_tr[:, valid], features.build("multihot", nsd, tr_ids))
        np.testing.assert_allclose(dec["pred"][i], est.predict(Y_te[:, valid]), rtol=1e-5, atol=1e-5)
        assert dec["n_voxels"][i] == valid.sum()


def test_kernel_solver_blocks_equal_one_block(monkeypatch):
    from brainllm_utils.encoding import _solvers

    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 300)).astype(np.float32)  # p > n: the kernel solver
    Y = (X[:, :5] @ rng.standard_normal((5, 7)) + rng.standard_normal((40, 7))).astype(np.float32)
    one = RidgeCV(alphas=ALPHAS, cv=4, device="cpu").fit(X, Y)
    monkeypatch.setattr(_solvers, "_KERNEL_BLOCK_BYTES", 8 * 40 * 17)  # blocks of 17 features
    many = RidgeCV(alphas=ALPHAS, cv=4, device="cpu").fit(X, Y)
    assert one.solver_ == many.solver_ == "kernel"
    np.testing.assert_array_equal(one.best_alphas_, many.best_alphas_)
    np.testing.assert_allclose(many.coef_, one.coef_, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(many.intercept_, one.intercept_, rtol=1e-5, atol=1e-6)


def test_roi_patterns_reads_rows_in_any_order(nsd):
    s = nsd.subjects[0]
    Y, ids = nsd.betas(s, progress=False)
    pick = ids[[9, 2, 5, 0, 7]]
    got, got_ids = ch02_rsa.roi_patterns(nsd, s, ["early", "ventral"], ids=pick)
    labels = nsd.roi_volume(s, "streams").ravel()[nsd.columns(s)]
    names = {v: k for k, v in nsd.roi_labels("streams").items()}
    for roi in ("early", "ventral"):
        X = np.asarray(Y)[[9, 2, 5, 0, 7]][:, labels == names[roi]]
        np.testing.assert_array_equal(got[roi], X[:, np.isfinite(X).all(0)])
    np.testing.assert_array_equal(got_ids, pick)


def test_cached_arrays_mmap(tmp_path):
    from brainllm_utils._utils.cache import cached_arrays

    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(6.0).reshape(2, 3)}

    first = cached_arrays("encoding", "k" * 24, ["a"], compute, folder=tmp_path, mmap=True)
    again = cached_arrays("encoding", "k" * 24, ["a"], compute, folder=tmp_path, mmap=True)
    assert isinstance(first["a"], np.memmap) and isinstance(again["a"], np.memmap)
    np.testing.assert_array_equal(again["a"], np.arange(6.0).reshape(2, 3))
    assert calls == [1]


# ----------------------------------------------------------------------------- batch workers
def test_default_workers_from_memory_and_cpus(monkeypatch):
    from brainllm_utils.book import batch

    monkeypatch.setattr(batch, "NOTEBOOK_PEAK_GB", {"02_rsa": 3.0, "03_encoding": 6.0})
    gib = 2**30
    nbs = ["02_rsa", "03_encoding"]
    # floor((64 − 2 reserve) / 6) = 10, capped by 8 CPUs
    assert batch.default_workers(nbs, available_bytes=64 * gib, cpus=8) == 8
    assert batch.default_workers(nbs, available_bytes=64 * gib, cpus=32) == 10
    # only chapter 02 in the run: its own peak counts
    assert batch.default_workers(["02_rsa"], available_bytes=32 * gib, cpus=32) == 10
    # less memory than one notebook: serial, never 0
    assert batch.default_workers(nbs, available_bytes=4 * gib, cpus=8) == 1
    # a chapter the table does not cover takes the 8 GB budget
    assert batch.default_workers(["05_image_to_llm"], available_bytes=34 * gib, cpus=32) == 4
    # the machine's values when none are given (psutil, CPU affinity), monkeypatched
    monkeypatch.setattr(batch, "_available_memory", lambda: 20 * gib)
    monkeypatch.setattr(batch, "_cpu_count", lambda: 16)
    # every chapter: 05 is not in the (patched) table, so the 8 GB budget counts
    assert batch.default_workers() == 2
    assert batch.default_workers(["02_rsa"]) == 6
    with pytest.raises(ValueError):
        batch.default_workers(available_bytes=gib, cpus=0)


def test_workers_auto_sandbox_and_real_nsd(monkeypatch, tiny_root, tmp_path):
    import shutil

    from brainllm_utils.book import batch

    assert batch._workers_arg("auto", [], str(tiny_root)) == batch._SANDBOX_WORKERS
    assert batch._workers_arg("3", [], str(tiny_root)) == 3
    with pytest.raises(batch.BatchParameterError):
        batch._workers_arg("0", [], str(tiny_root))
    real = tmp_path / "nsd"  # not a sandbox: no truth card
    for part in ("nsddata", "nsddata_betas"):
        shutil.copytree(tiny_root / part, real / part, copy_function=os.link)
    monkeypatch.setattr(batch, "_available_memory", lambda: 40 * 2**30)
    monkeypatch.setattr(batch, "_cpu_count", lambda: 64)
    monkeypatch.setattr(batch, "NOTEBOOK_PEAK_GB", {"03_encoding": 5.0})
    from types import SimpleNamespace

    jobs = [SimpleNamespace(source=Path("notebooks/03_encoding.ipynb"))] * 2
    assert batch._workers_arg("auto", jobs, str(real)) == 7  # floor(38 / 5)
    assert batch._workers_arg("auto", [], str(real)) == 4  # every chapter: 05's 8 GB budget


def test_surface_searchlight_on_the_memory_map_equals_copied_rows(nsd, tmp_path):
    from brainllm_utils.chapters import build_feature_table, rows_of, subject_sets
    from brainllm_utils.rsa import searchlight_rsa, surface_neighbourhoods

    s = nsd.subjects[1]  # has NaN vertices
    got = ch02_rsa.surface_searchlight(nsd, s, "truth:category", radius_mm=8.0, set_size=12, n_sets=2,
                                       device="cpu", cache=False, results_dir=tmp_path)
    # as the chapter did before: the sets' rows copied, sets made local to them
    ids, sets = subject_sets(nsd, s, 12, 0, 2, tmp_path)
    used = np.unique(sets.ravel())
    X = build_feature_table(nsd, ["truth:category"], ids[used])["truth:category"]
    Y, all_ids = nsd.betas(s, progress=False)
    Yu = np.asarray(Y)[rows_of(all_ids, ids[used])]
    finite = np.isfinite(Yu).all(0)
    assert not finite.all()
    want = np.full(Yu.shape[1], np.nan, np.float32)
    n_lh, n_rh = nsd.n_vertices()
    for hemi, off, nv in (("left", 0, n_lh), ("right", n_lh, n_rh)):
        mask = finite[off:off + nv]
        centres, neigh = surface_neighbourhoods(ch02_rsa.fsaverage_mesh(nsd, hemi), 8.0, mask=mask)
        cols = off + np.flatnonzero(mask)
        want[cols[centres]] = searchlight_rsa(Yu[:, cols], neigh, X, sets=np.searchsorted(used, sets),
                                              device="cpu", progress=False)[0]
    np.testing.assert_array_equal(got, want)


def test_cli_rejects_a_bad_worker_count_before_running(tiny_root, tmp_path, capsys):
    from brainllm_utils.book import batch

    rc = batch.main(["run", "00_data_tour", "--data", str(tiny_root), "--workers", "0",
                     "--output-dir", str(tmp_path / "out")])
    assert rc == 2 and "--workers" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("kind", ["surface", "volume"])
def test_searchlight_in_chunks_of_centres_equals_one_call(nsd, tmp_path, monkeypatch, kind):
    """Full-size maps go to searchlight_rsa a chunk of centres at a time (bounded padded
    arrays): the map is the same as from one call over every centre."""
    def run():
        ch02_rsa._DISCS.clear()
        if kind == "surface":
            return ch02_rsa.surface_searchlight(nsd, nsd.subjects[1], "truth:category", radius_mm=8.0,
                                                set_size=12, n_sets=2, device="cpu", cache=False,
                                                results_dir=tmp_path)
        return ch02_rsa.volume_searchlight(nsd, nsd.subjects[0], "truth:category", radius=2.0,
                                           set_size=12, n_sets=2, device="cpu", cache=False,
                                           results_dir=tmp_path)

    whole = run()
    calls = []
    real = ch02_rsa.searchlight_rsa

    def counting(*args, **kwargs):
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(ch02_rsa, "searchlight_rsa", counting)
    monkeypatch.setattr(ch02_rsa, "SEARCHLIGHT_CHUNK_ENTRIES", 1000)
    chunked = run()
    assert len(calls) >= 3 and max(calls) < 200  # several chunks of few centres each
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-6, equal_nan=True)
    assert np.array_equal(np.isnan(chunked), np.isnan(whole))
