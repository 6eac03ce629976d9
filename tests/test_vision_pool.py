"""Tests of the streaming training pool (JPEGs of any size), lazy NSD stimuli and saved networks."""

from __future__ import annotations

import dataclasses
import io
import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from brainllm_utils import vision  # noqa: E402
from brainllm_utils.chapters import ch05_image_to_llm as va  # noqa: E402
from brainllm_utils.vision import _pool, _train  # noqa: E402

#: native COCO-like sizes (width, height), scaled down: landscape, portrait, square, odd
SIZES = [(64, 48), (50, 38), (43, 64), (40, 40), (37, 51), (72, 40)]


@pytest.fixture
def native_root(tree_copy):
    """The tiny sandbox with its pool JPEGs re-encoded at varying native sizes (new files:
    the hard-linked originals are untouched)."""
    from PIL import Image

    root = tree_copy()
    paths = sorted((root / "coco").glob("*/*.jpg"))
    assert paths
    for i, p in enumerate(paths):
        with Image.open(p) as im:
            im = im.convert("RGB").resize(SIZES[i % len(SIZES)], Image.BICUBIC)
        buf = io.BytesIO()
        im.save(buf, format="JPEG", quality=90)
        p.unlink()
        p.write_bytes(buf.getvalue())
    return root


def _count_decodes(monkeypatch):
    calls = []
    real = _pool._load_one

    def counting(path, size):
        calls.append(str(path))
        return real(path, size)

    monkeypatch.setattr(_pool, "_load_one", counting)
    return calls


# ------------------------------------------------------------------------ the pool
def test_native_sizes_stream_and_cannot_stack(native_root, cache_dir):
    from PIL import Image

    pool = vision.load_training_pool(native_root)
    assert pool.images is None  # sizes differ: the pool streams
    assert len({Image.open(p).size for p in pool.paths}) > 1
    with pytest.raises(ValueError, match="different sizes"):
        vision.load_training_pool(native_root, in_memory=True)
    fixed = vision.load_training_pool(native_root, size=24)  # one size: fits the budget, in memory
    assert fixed.images.shape == (len(pool), 24, 24, 3)
    assert vision.load_training_pool(native_root, size=24, memory_budget=0).images is None
    ds = pool.dataset(np.arange(5), 32, memory_budget=0)
    assert ds.streaming and ds.array is None and len(ds) == 5
    assert {ds[i].shape for i in range(5)} == {(32, 32, 3)}


def test_square_transform_is_centre_crop_then_resize(native_root):
    from PIL import Image

    pool = vision.load_training_pool(native_root, memory_budget=0)
    p = pool.paths[2]  # 43 × 64 (portrait)
    got = vision.PoolImages([p], 20)[0]
    with Image.open(p) as im:
        arr = np.asarray(im.convert("RGB"))
    h, w = arr.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    ref = np.asarray(Image.fromarray(arr[top:top + side, left:left + side]).resize((20, 20), Image.BICUBIC,
                                                                                    reducing_gap=None))
    np.testing.assert_array_equal(got, ref)
    # the same image from memory (native size) gives the same pixels as decoded from its file
    np.testing.assert_array_equal(vision.PoolImages(arr[None], 20)[0], got)
    np.testing.assert_array_equal(vision.PoolImages([p], 20)[0], got)  # deterministic


def test_pool_errors(tmp_path):
    with pytest.raises(ValueError, match="size"):
        vision.PoolImages(["a.jpg"], 0)
    with pytest.raises(ValueError, match="uint8"):
        vision.PoolImages(np.zeros((2, 4, 4, 3), np.float32), 4)
    with pytest.raises(IndexError):
        vision.PoolImages(["a.jpg"], 8, rows=[1])
    with pytest.raises(ValueError, match="memory_budget"):
        _pool._budget(-1)
    with pytest.raises(ValueError, match="pool_size"):
        vision.TrainConfig(pool_size=4)


def test_streaming_reads_one_batch_at_a_time(native_root, monkeypatch):
    pool = vision.load_training_pool(native_root, memory_budget=0)
    ds = pool.dataset(np.arange(len(pool)), 32, memory_budget=0)
    calls = _count_decodes(monkeypatch)
    y = np.random.default_rng(0).standard_normal((len(ds), 4)).astype(np.float32)
    cfg, tc = vision.PRESETS["tiny"]
    tc = dataclasses.replace(tc, epochs=1, batch_size=8)
    seen = []
    real_forward = vision.BLTNet.forward

    def forward(self, x, *a, **k):
        seen.append(len(calls))
        return real_forward(self, x, *a, **k)

    monkeypatch.setattr(vision.BLTNet, "forward", forward)
    vision.train_network(ds, y, cfg, tc, seed=0, progress=False)
    n_batches = len(ds) // 8
    assert seen == [8 * (b + 1) for b in range(n_batches)]  # never more than the batch being trained on
    assert len(calls) == 8 * n_batches


# ------------------------------------------------------------- training on the pool
def _train_pool(root, pool, tmp, **kw):
    return vision.train_or_load(root, "multihot", seed=3, preset="tiny", pool=pool, progress=False, n_val=8,
                                checkpoint_root=tmp, **kw)


def test_streaming_and_in_memory_give_the_same_weights(native_root, tmp_path, cache_dir, monkeypatch):
    pool = vision.load_training_pool(native_root)
    calls = _count_decodes(monkeypatch)
    streamed = _train_pool(native_root, pool, tmp_path / "a", memory_budget=0)
    assert len(calls) == 2 * len(pool)  # every image decoded once per epoch (train + validation)
    del calls[:]
    in_memory = _train_pool(native_root, pool, tmp_path / "b")  # fits the default budget: decoded once
    assert len(calls) == len(pool)
    workers = _train_pool(native_root, pool, tmp_path / "c", memory_budget=0, num_workers=2)
    assert streamed.weights_hash == in_memory.weights_hash == workers.weights_hash
    assert streamed.history[-1]["val_loss"] == pytest.approx(workers.history[-1]["val_loss"], abs=0)
    assert np.isfinite(streamed.history[-1]["loss"])
    # a pool loaded in memory at one size gives the same weights as that pool streamed
    tc = dataclasses.replace(vision.PRESETS["tiny"][1], loss="bce", pool_size=32)
    square = vision.load_training_pool(native_root, size=40)  # in memory at 40 px, squared again to 32
    assert square.images is not None
    a = _train_pool(native_root, square, tmp_path / "d", train_config=tc)
    streamed40 = vision.load_training_pool(native_root, size=40, memory_budget=0)
    assert streamed40.images is None
    b = _train_pool(native_root, streamed40, tmp_path / "e", train_config=tc, memory_budget=0)
    c = _train_pool(native_root, streamed40, tmp_path / "f", train_config=tc)  # decoded once at 40 px
    assert a.weights_hash == b.weights_hash == c.weights_hash != streamed.weights_hash


def test_augmentation_differs_per_epoch_and_is_seeded(native_root, monkeypatch):
    from brainllm_utils.vision import _blt

    pool = vision.load_training_pool(native_root, memory_budget=0)
    ds = pool.dataset(np.arange(len(pool)), 32, memory_budget=0)
    y = np.zeros((len(ds), 4), np.float32)
    cfg, tc = vision.PRESETS["tiny"]
    tc = dataclasses.replace(tc, epochs=2, batch_size=len(ds))  # one batch per epoch: every image each epoch
    real = _blt.augment

    def run(seed):
        out = []
        monkeypatch.setattr(_blt, "augment", lambda *a, **k: out.append(real(*a, **k).clone()) or out[-1])
        vision.train_network(ds, y, cfg, tc, seed=seed, progress=False)
        return out

    a, again, other = run(0), run(0), run(1)
    assert len(a) == 2
    for x, z in zip(a, again):
        torch.testing.assert_close(x, z, rtol=0, atol=0)  # reproducible per seed
    assert not torch.equal(a[0], other[0])
    # the same images, transformed differently in the two epochs (sorted by the epoch's order)
    g0, g1 = _train_generator_orders(len(ds), 0)
    e0 = a[0][np.argsort(g0)]
    e1 = a[1][np.argsort(g1)]
    assert all(not torch.equal(e0[i], e1[i]) for i in range(len(ds)))


def _train_generator_orders(n, seed):
    """Each epoch's batch order: the first draw of that epoch's generator (as train_network)."""
    return [torch.randperm(n, generator=_train._epoch_generator(seed, e)).numpy() for e in (0, 1)]


def test_evaluation_transform_is_deterministic(native_root):
    pool = vision.load_training_pool(native_root, memory_budget=0)
    ds = pool.dataset(np.arange(6), 32, memory_budget=0)
    x1 = vision.preprocess(ds.batch(np.arange(6)), 16)
    x2 = vision.preprocess(np.stack([ds[i] for i in range(6)]), 16)
    torch.testing.assert_close(x1, x2, rtol=0, atol=0)


# ---------------------------------------------------------------- lazy NSD stimuli
def test_nsd_images_read_lazily_in_sorted_batches(tiny_root, cache_dir, monkeypatch):
    from brainllm_utils.nsd import NSD

    nsd = NSD(tiny_root)
    cfg = vision.PRESETS["tiny"][0]
    nets = {"a": vision.build_network(dataclasses.replace(cfg, out_dim=5), seed=0)}
    ids = np.random.default_rng(0).permutation(np.arange(min(nsd.n_images, 50)))[:37]
    eager = {k: next(iter(vision.extract_activations(n, nsd.images(ids), image_ids=ids, cache=False).values()))
             for k, n in nets.items()}
    calls = []
    real = type(nsd).images
    monkeypatch.setattr(type(nsd), "images", lambda self, i: calls.append(np.asarray(i)) or real(self, i))
    lazy = va.network_features(nets, nsd, ids, batch_size=8)
    np.testing.assert_allclose(lazy["a"], eager["a"], rtol=1e-5, atol=1e-6)
    assert len(calls) >= 37 // 8  # batch by batch, never all at once
    assert all(c.size <= 8 and np.all(np.diff(c) > 0) for c in calls)  # increasing ids (h5py)
    reads = np.concatenate([c for c in calls if c.size > 1])
    assert np.all(np.diff(reads) > 0)  # forward through the file
    comp, _ = va.comparison_features(nsd, ids, ["untrained_blt"], blt_config=cfg)
    ref, _ = vision.extract_features({"untrained_blt": vision.build_network(cfg, 0)}, nsd.images(ids),
                                     image_ids=ids, cache=False)
    np.testing.assert_allclose(comp["untrained_blt"], ref["untrained_blt"], rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------- saved networks
def _no_training(monkeypatch):
    def boom(*a, **k):
        raise AssertionError("trained although a saved network matches")

    monkeypatch.setattr(_train, "train_network", boom)


def test_networks_are_saved_and_reloaded(tiny_root, cache_dir, monkeypatch):
    pool = vision.load_training_pool(tiny_root)
    kw = dict(n_train=None, n_val=8, pool=pool)
    nets = va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", **kw)
    net = nets["multihot_seed0"]
    folder = net.checkpoint.parent
    m = json.loads((folder / "manifest.json").read_text())
    assert m["format"] == vision.NETWORK_FORMAT and m["format_version"] == vision.NETWORK_FORMAT_VERSION
    assert m["seed"] == 0 and m["objective"] == "multihot" and m["config"] == net.config.to_dict()
    assert m["data"]["n_train"] == len(pool) - 8 and m["data"]["n_val"] == 8 and m["data"]["pool_size"] == 32
    assert m["training"]["epochs"] == len(m["training"]["history"]) == vision.PRESETS["tiny"][1].epochs
    assert m["training"]["package_version"] and m["weights"]["sha256"] == net.weights_hash
    state = torch.load(folder / "weights.pt", weights_only=True)
    assert set(state) == set(net.model.state_dict())
    assert not list(folder.glob("epoch_001.pt")) or len(list(folder.glob("epoch_*.pt"))) <= 2

    _no_training(monkeypatch)
    again = va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", **kw)["multihot_seed0"]
    assert again.weights_hash == net.weights_hash and again.history == net.history
    for change in (dict(seeds=[1]), dict(epochs=3), dict(n_train=20), dict(image_size=24)):
        seeds = change.pop("seeds", [0])
        with pytest.raises(AssertionError, match="trained although"):
            va.train_objective_networks(tiny_root, ["multihot"], seeds, "tiny", **{**kw, **change})
    other = vision.load_training_pool(tiny_root, n_images=30)  # another data selection
    with pytest.raises(AssertionError, match="trained although"):
        va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", **{**kw, "pool": other})


def test_networks_dir_loads_and_validates(tiny_root, cache_dir, tmp_path, monkeypatch):
    pool = vision.load_training_pool(tiny_root)
    kw = dict(n_train=None, n_val=8, pool=pool)
    net = va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", **kw)["multihot_seed0"]
    shutil.rmtree(cache_dir)  # nothing left to reload from the cache
    elsewhere = tmp_path / "networks"
    vision.save_network(net, elsewhere / "multihot_seed0")
    _no_training(monkeypatch)
    got = va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", networks_dir=elsewhere, **kw)
    assert got["multihot_seed0"].weights_hash == net.weights_hash
    manifest = elsewhere / "multihot_seed0" / "manifest.json"
    with pytest.raises(ValueError, match=r"manifest\.json.*train_config\.epochs: saved 2, requested 5"):
        va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", networks_dir=elsewhere, epochs=5, **kw)
    with pytest.raises(ValueError, match=r"data\.n_train"):
        va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", networks_dir=elsewhere,
                                    **{**kw, "n_train": 10})
    with pytest.raises(FileNotFoundError, match="multihot_seed1"):
        va.train_objective_networks(tiny_root, ["multihot"], [1], "tiny", networks_dir=elsewhere, **kw)
    # any folder name works when the manifest names the network
    (elsewhere / "multihot_seed0").rename(elsewhere / "from_the_cluster")
    assert va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", networks_dir=elsewhere,
                                       **kw)["multihot_seed0"].weights_hash == net.weights_hash
    manifest = elsewhere / "from_the_cluster" / "manifest.json"
    m = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**m, "format_version": 99}))
    with pytest.raises(ValueError, match="format_version 99"):
        vision.load_network(manifest.parent)
    manifest.write_text(json.dumps({**m, "weights": {**m["weights"], "sha256": "0" * 64}}))
    with pytest.raises(ValueError, match="weights hash"):
        vision.load_network(manifest.parent)


def test_paper_preset_recipe():
    cfg, tc = vision.PRESETS["paper"]
    assert (cfg.image_size, cfg.n_layers, cfg.n_steps, tc.pool_size, tc.batch_size, tc.epochs) == (128, 10, 6, 256,
                                                                                                    96, 200)
    from brainllm_utils.book.batch import PROFILES

    p = PROFILES["paper"]["05_image_to_llm"]
    assert p["n_train"] is None and p["n_val"] == 2051  # 50,287 − 2,051 = 48,236 training images on COCO
