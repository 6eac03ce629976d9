"""The one cache (brainllm_utils._utils.cache): keys, the version table, the corrupt-entry policy,
and every kind of entry the package writes, corrupted and recomputed with a warning."""

from __future__ import annotations

import json
import os
import warnings

import numpy as np
import pytest

from brainllm_utils._utils import cache as C
from brainllm_utils._utils.cache import CorruptCacheWarning, write_checksums

GARBAGE = b"\x93NUMPY garbage, not an array" * 3


# --------------------------------------------------------------------------- keys
def test_cache_key_is_deterministic_and_separates_inputs(rng):
    a = rng.normal(size=(5, 3))
    k = C.cache_key("betas", "subj01", a, [1, 2], {"x": 1.5, "y": None})
    assert k == C.cache_key("betas", "subj01", a.copy(), [1, 2], {"y": None, "x": 1.5})
    assert len(k) == 24 and int(k, 16) >= 0
    different = [
        C.cache_key("betas", "subj02", a, [1, 2], {"x": 1.5, "y": None}),
        C.cache_key("betas", "subj01", a + 1e-12, [1, 2], {"x": 1.5, "y": None}),
        C.cache_key("betas", "subj01", a.astype(np.float32), [1, 2], {"x": 1.5, "y": None}),
        C.cache_key("betas", "subj01", a.reshape(3, 5), [1, 2], {"x": 1.5, "y": None}),
        C.cache_key("betas", "subj01", a, [1, 2, 3], {"x": 1.5, "y": None}),
        C.cache_key("betas", "subj01", a, [1, 2], {"x": 1.5, "y": 0}),
        C.cache_key("searchlight", "subj01", a, [1, 2], {"x": 1.5, "y": None}),
    ]
    assert k not in different and len(set(different)) == len(different)
    # type tags: "1" ≠ 1 ≠ 1.0 ≠ True; (a, b) concatenations do not collide
    assert len({C.cache_key("betas", v) for v in ("1", 1, 1.0, True)}) == 4
    assert C.cache_key("betas", "ab", "c") != C.cache_key("betas", "a", "bc")


def test_version_bump_changes_every_key_of_that_kind(monkeypatch):
    before = C.cache_key("embeddings", "x"), C.cache_key("betas", "x")
    monkeypatch.setitem(C.CACHE_VERSIONS, "embeddings", C.CACHE_VERSIONS["embeddings"] + 1)
    after = C.cache_key("embeddings", "x"), C.cache_key("betas", "x")
    assert after[0] != before[0] and after[1] == before[1]


def test_unknown_kind_and_type_raise():
    with pytest.raises(ValueError, match="unknown cache kind"):
        C.cache_key("nope", 1)
    with pytest.raises(TypeError, match="cannot key"):
        C.cache_key("betas", object())


def test_arrays_are_streamed_not_copied(tmp_path, rng):
    """A memory map, a C-ordered copy and a strided view of the same values share one key."""
    a = rng.normal(size=(300, 40)).astype(np.float32)
    np.save(tmp_path / "a.npy", a)
    mm = np.load(tmp_path / "a.npy", mmap_mode="r")
    fortran = np.asfortranarray(a)
    assert C.array_digest(mm) == C.array_digest(a) == C.array_digest(fortran)
    assert C.cache_key("betas", mm) == C.cache_key("betas", a)
    assert C.array_digest(a[:, ::2]) == C.array_digest(np.ascontiguousarray(a[:, ::2]))
    assert C.array_digest(a[:, ::2]) != C.array_digest(a[:, 1::2])


def test_file_identity_follows_the_file(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"1234")
    k1 = C.cache_key("betas", C.file_identity(f))
    os.utime(f, ns=(1, 1))
    k2 = C.cache_key("betas", C.file_identity(f))
    f.write_bytes(b"12345")
    k3 = C.cache_key("betas", C.file_identity(f))
    assert len({k1, k2, k3}) == 3
    with pytest.raises(FileNotFoundError, match="missing"):
        C.file_identity(tmp_path / "absent")


def test_resolve_cache(tmp_path, cache_dir):
    assert C.resolve_cache(True, "betas") == cache_dir / "betas"
    assert C.resolve_cache(tmp_path / "root", "betas") == tmp_path / "root" / "betas"
    assert C.resolve_cache(False, "betas") is None and C.resolve_cache(None, "betas") is None
    with pytest.raises(TypeError):
        C.resolve_cache(3, "betas")


# --------------------------------------------------------------------------- the policy
def test_load_npy_policy(tmp_path):
    p = tmp_path / "e.npy"
    assert C.load_npy(p) is None  # missing: no warning
    C.write_npy(p, np.ones((2, 3), np.float32))
    assert C.load_npy(p, shape=(2, 3), dtype=np.float32).shape == (2, 3)
    for kwargs in (dict(shape=(3, 2)), dict(dtype=np.float64), dict(rows=5), dict(ndim=3)):
        C.write_npy(p, np.ones((2, 3), np.float32))
        with pytest.warns(CorruptCacheWarning, match="deleted, recomputing"):
            assert C.load_npy(p, **kwargs) is None
        assert not p.exists()
    C.write_npy(p, np.array([1.0, np.nan]))
    companion = tmp_path / "e_ids.npy"
    companion.write_bytes(b"x")
    with pytest.warns(CorruptCacheWarning, match="non-finite"):
        assert C.load_npy(p, finite=True, companions=[companion]) is None
    assert not p.exists() and not companion.exists()
    p.write_bytes(GARBAGE)
    with pytest.warns(CorruptCacheWarning):
        assert C.load_npy(p) is None


def test_cached_arrays_recompute_a_corrupt_member(tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return {"a": np.arange(3.0), "b": np.ones(2)}

    out = C.cached_arrays("encoding", "k", ("a", "b"), compute, cache=tmp_path)
    again = C.cached_arrays("encoding", "k", ("a", "b"), compute, cache=tmp_path)
    assert len(calls) == 1 and np.array_equal(again["a"], out["a"])
    (tmp_path / "encoding" / "k_b.npy").write_bytes(GARBAGE)
    with pytest.warns(CorruptCacheWarning):
        third = C.cached_arrays("encoding", "k", ("a", "b"), compute, cache=tmp_path)
    assert len(calls) == 2 and np.array_equal(third["b"], out["b"])
    assert C.cached_arrays("encoding", "k", ("a", "b"), compute, cache=False) and len(calls) == 3


def test_a_failed_write_warns_and_the_result_is_returned(tmp_path, monkeypatch):
    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(C, "write_npy", boom)
    with pytest.warns(UserWarning, match="could not write"):
        out = C.cached_arrays("encoding", "k", ("a",), lambda: {"a": np.ones(2)}, cache=tmp_path)
    assert np.array_equal(out["a"], np.ones(2))


# --------------------------------------------------------------------------- every kind
def _corrupt(paths):
    paths = list(paths)
    assert paths, "no cache entry was written"
    for p in paths:
        p.write_bytes(GARBAGE)
    return paths


def _recomputed(fn, expected, paths, equal=np.testing.assert_array_equal):
    with pytest.warns(CorruptCacheWarning, match="deleted, recomputing"):
        again = fn()
    equal(again, expected)
    for p in paths:  # rewritten and readable
        assert p.exists() and p.read_bytes() != GARBAGE
    with warnings.catch_warnings():
        warnings.simplefilter("error", CorruptCacheWarning)
        equal(fn(), expected)  # and now a clean hit


@pytest.fixture
def nsd(tiny_root, cache_dir):
    from brainllm_utils.nsd import NSD

    return NSD(tiny_root)


def test_kind_betas(nsd, cache_dir):
    Y, _ = nsd.betas("subj01", progress=False)
    Y = np.array(Y)
    paths = _corrupt((cache_dir / "betas").glob("*[0-9a-f].npy"))
    _recomputed(lambda: np.array(nsd.betas("subj01", progress=False)[0]), Y, paths)


def test_betas_key_covers_the_design(tree_copy, cache_dir):
    """Editing nsd_expdesign.mat after caching must not return the old averages."""
    from brainllm_utils.nsd import NSD

    root = tree_copy()
    nsd = NSD(root)
    k1 = nsd.betas_key("subj01")
    expdesign = root / "nsddata/experiments/nsd/nsd_expdesign.mat"
    data = expdesign.read_bytes()
    expdesign.unlink()
    expdesign.write_bytes(data)
    os.utime(expdesign, ns=(10**9, 10**9))
    assert NSD(root).betas_key("subj01") != k1
    assert NSD(root).betas_key("subj01", sessions=[1]) != NSD(root).betas_key("subj01")


@pytest.fixture
def minilm_dir():
    from brainllm_utils.weights import MINILM, resolve_model

    return resolve_model(MINILM)


def test_kind_embeddings(cache_dir, minilm_dir):
    from brainllm_utils.embeddings import embed_sentences

    sents = ["a dog runs", "two cats sleep"]
    E = embed_sentences(sents, model=minilm_dir)
    lists = [p for p in (cache_dir / "embeddings").rglob("*.npy") if "sentences-" not in str(p)]
    _recomputed(lambda: embed_sentences(sents, model=minilm_dir), E, _corrupt(lists),
                equal=lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6))
    shards = [p for p in (cache_dir / "embeddings").rglob("shard-*.npy") if not p.name.endswith("keys.npy")]
    _corrupt(shards)
    for p in lists:
        p.unlink()
    with pytest.warns(CorruptCacheWarning):
        again = embed_sentences(sents, model=minilm_dir)
    np.testing.assert_allclose(again, E, atol=1e-6)


def test_kind_pos_tags(cache_dir):
    from brainllm_utils.features import tag_captions

    caps = ["A man rides a horse.", "Two dogs play in the snow."]
    tags = tag_captions(caps)
    paths = _corrupt((cache_dir / "pos_tags").glob("*.json"))
    _recomputed(lambda: tag_captions(caps), tags, paths, equal=lambda a, b: a == b or pytest.fail("tags"))
    paths[0].write_text(json.dumps([[["only", "one"]]]))  # valid JSON, wrong content: its checksum
    with pytest.warns(CorruptCacheWarning, match="checksum"):
        assert tag_captions(caps) == tags
    paths[0].write_text(json.dumps([[["only", "one"]]]))  # ... and with a matching checksum: the check
    write_checksums(paths[0])
    with pytest.warns(CorruptCacheWarning, match="expected 2"):
        assert tag_captions(caps) == tags


def test_kind_encoding(nsd, cache_dir):
    from brainllm_utils import encoding_analysis as ea

    kw = dict(subjects=["subj01"], feature="multihot", roi="nsdgeneral", alphas=[1.0, 10.0], cv=3,
              device="cpu")
    enc = ea.fit_encoders(nsd, **kw)
    paths = _corrupt(sorted((cache_dir / "encoding").glob("*_coef.npy")))
    _recomputed(lambda: ea.fit_encoders(nsd, **kw).r, enc.r, paths)


@pytest.fixture
def searchlight_inputs(nsd, tmp_path):
    from brainllm_utils import rsa_analysis as ra
    from brainllm_utils import synth

    results = tmp_path / "results"
    ids, sets = ra.subject_sets(nsd, "subj01", 10, 0, 2, results)
    used = np.unique(sets)
    feats = (ids[used], synth.load_truth_array(nsd.root, "features_category")[ids[used]])
    return dict(set_size=10, n_sets=2, device="cpu", features=feats, results_dir=results)


def test_kind_searchlight(nsd, cache_dir, searchlight_inputs):
    from brainllm_utils import rsa_analysis as ra

    def run():
        return ra.surface_searchlight(nsd, "subj01", "truth:category", radius_mm=8.0, **searchlight_inputs)

    m = run()
    paths = _corrupt((cache_dir / "searchlight").glob("surface_*.npy"))
    _recomputed(run, m, paths)


def test_two_partitions_never_share_a_searchlight_entry(nsd, cache_dir, tmp_path):
    """The old key hashed the first 64 hex digits of the sets only (their first 4 values)."""
    from brainllm_utils.chapters import ch02_rsa

    bk = nsd.betas_key("subj01")
    X = np.ones((30, 4))
    a = np.arange(30).reshape(3, 10)
    b = a.copy()
    b[2, [7, 9]] = b[2, [9, 7]]  # same shape, same first row: differs only late in the last set
    c = a.copy()
    c[0, 5], c[1, 5] = c[1, 5], c[0, 5]  # the same images, another partition
    keys = {ch02_rsa._searchlight_key("surface", bk, s, X, 8.0) for s in (a, b, c)}
    assert len(keys) == 3
    # end to end: two seeds → two partitions → two entries
    from brainllm_utils import rsa_analysis as ra
    from brainllm_utils import synth

    truth = synth.load_truth_array(nsd.root, "features_category")
    for seed in (0, 1):
        ids, sets = ra.subject_sets(nsd, "subj01", 10, seed, 2, tmp_path / "r")
        ra.surface_searchlight(nsd, "subj01", "truth:category", radius_mm=8.0, set_size=10, seed=seed,
                               n_sets=2, device="cpu", features=(ids, truth[ids]), results_dir=tmp_path / "r")
    assert len(list((cache_dir / "searchlight").glob("surface_*.npy"))) == 2


def test_kind_sample_sets(tmp_path):
    from brainllm_utils.rsa import get_sample_sets

    ids = np.arange(100, 160)
    sets = get_sample_sets("subj01", ids, set_size=10, seed=2, results_dir=tmp_path)
    paths = _corrupt((tmp_path / "sampling").glob("*.npy"))
    _recomputed(lambda: get_sample_sets("subj01", ids, set_size=10, seed=2, results_dir=tmp_path), sets, paths)


@pytest.fixture
def pool(tiny_root, cache_dir):
    from brainllm_utils import vision

    return vision.load_training_pool(tiny_root)


def test_kind_vision_images(tiny_root, cache_dir, pool):
    from brainllm_utils import vision

    paths = _corrupt((cache_dir / "vision_images").glob("*.npy"))
    _recomputed(lambda: vision.load_training_pool(tiny_root).images, pool.images, paths)


def test_kind_checkpoints_and_activations(tiny_root, cache_dir, pool):
    from brainllm_utils import vision

    kw = dict(preset="tiny", pool=pool, progress=False, n_train=16)
    net = vision.train_or_load(tiny_root, "multihot", seed=0, **kw)
    final = net.checkpoint
    _corrupt([final])
    with pytest.warns(CorruptCacheWarning):
        again = vision.train_or_load(tiny_root, "multihot", seed=0, **kw)
    assert again.weights_hash == net.weights_hash  # resumed from the last good epoch: same weights
    assert final.exists() and final.read_bytes() != GARBAGE

    imgs, ids = pool.images[:6], pool.coco_ids[:6]
    A = vision.extract_activations(net, imgs, image_ids=ids)
    paths = _corrupt((cache_dir / "activations").rglob("*.npy"))
    _recomputed(lambda: vision.extract_activations(net, imgs, image_ids=ids), A, paths,
                equal=lambda a, b: [np.testing.assert_allclose(a[k], b[k], rtol=1e-6) for k in b])


def test_kind_features(cache_dir, pool):
    from brainllm_utils import vision

    imgs, ids = pool.images[:4], pool.coco_ids[:4]
    feats, _ = vision.extract_features(["untrained_alexnet"], imgs, image_ids=ids, device="cpu")
    paths = _corrupt((cache_dir / "features").glob("*.npy"))
    _recomputed(lambda: vision.extract_features(["untrained_alexnet"], imgs, image_ids=ids, device="cpu")[0],
                feats, paths, equal=lambda a, b: np.testing.assert_allclose(a["untrained_alexnet"],
                                                                           b["untrained_alexnet"], rtol=1e-5))


def test_kind_transfer(cache_dir, rng):
    from brainllm_utils import vision_analysis as va

    X = {"net_seed0": rng.normal(size=(40, 5)).astype(np.float32)}
    Y = {"mpnet": rng.normal(size=(40, 3)).astype(np.float32)}
    per, _ = va.transfer_summary(X, Y, 10, epochs=3)
    paths = _corrupt((cache_dir / "transfer").glob("*.npy"))
    _recomputed(lambda: va.transfer_summary(X, Y, 10, epochs=3)[0]["score"].to_numpy(),
                per["score"].to_numpy(), paths, equal=lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6))


def test_kind_notebooks(tmp_path):
    from brainllm_utils.book.batch import Job

    out = tmp_path / "01_x.ipynb"
    job = Job(source=tmp_path / "src.ipynb", parameters={}, output=out, fingerprint="f")
    out.write_text(json.dumps({"metadata": {"brainllm": {"fingerprint": "f", "status": "complete"}}}))
    assert job.is_done()
    _corrupt([out])
    with pytest.warns(CorruptCacheWarning):
        assert not job.is_done()  # rerun: the notebook is executed again
    assert not out.exists()


def test_every_kind_has_a_corruption_test():
    tested = {name.removeprefix("test_kind_") for name in globals() if name.startswith("test_kind_")}
    covered = set()
    for t in tested:
        covered |= set(t.split("_and_"))
    missing = set(C.CACHE_VERSIONS) - covered - {"dataset"}  # "dataset" only names a results folder
    assert not missing, f"cache kinds without a corruption test: {sorted(missing)}"
