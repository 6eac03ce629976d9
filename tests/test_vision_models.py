"""Tests of user vision models (brainllm_utils.vision.register_model): layers read with hooks,
callables, per-layer caches, the torchvision/timm/open_clip adapters (through stand-in
modules: the real libraries need other torch versions than ours) and chapter 05's comparison."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from brainllm_utils import vision  # noqa: E402
from brainllm_utils.vision import _user_models  # noqa: E402

IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
CLIP = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))


class TinyNet(torch.nn.Module):
    """conv → ReLU → conv → pool → linear: conv maps, a pooled map and logits to read."""

    def __init__(self):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        self.act = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(4, 6, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.head = torch.nn.Linear(6, 5)

    def forward(self, x):
        return self.head(self.pool(self.conv2(self.act(self.conv1(x)))).flatten(1))


def tiny_net(seed: int = 0) -> TinyNet:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return TinyNet()


@pytest.fixture(autouse=True)
def _clean_registry():
    saved = dict(_user_models._REGISTRY)
    yield
    _user_models._REGISTRY.clear()
    _user_models._REGISTRY.update(saved)


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, (7, 16, 16, 3), dtype=np.uint8)


def _normalise(images, mean, std):
    """The reference transform, written here: [0, 1] RGB, channels first, (x - mean) / std."""
    x = torch.from_numpy(images).permute(0, 3, 1, 2).double() / 255.0
    return ((x - torch.tensor(mean, dtype=torch.float64)[:, None, None])
            / torch.tensor(std, dtype=torch.float64)[:, None, None]).float()


def _manual(net, x, layers, pooling="mean", forward=None):
    """Hooks written here: each layer's output, conv maps averaged (or flattened)."""
    seen, handles = {}, []
    mods = dict(net.named_modules())
    for name in layers:
        if name != "output":
            handles.append(mods[name].register_forward_hook(
                lambda m, a, out, name=name: seen.__setitem__(name, out.detach().clone())))
    with torch.no_grad():
        seen["output"] = (forward or net)(x)
    for h in handles:
        h.remove()
    out = {}
    for name in layers:
        t = seen[name]
        if t.ndim == 4:
            t = t.mean(dim=(2, 3)) if pooling == "mean" else t.flatten(1)
        out[name] = t.numpy()
    return out


# ------------------------------------------------------------------ torch modules
def test_module_layers_match_a_manual_forward_with_hooks(images):
    net = tiny_net(1)
    layers = ["conv1", "act", "conv2", "pool", "output"]
    m = vision.register_model("tiny", net, layers, preprocess={"size": 16}, description="a tiny net")
    acts = m.activations(images, batch_size=3, device="cpu", cache=False)
    ref = _manual(net, _normalise(images, *IMAGENET), layers)
    assert list(acts) == layers
    for name in layers:
        assert acts[name].dtype == np.float32 and acts[name].shape == ref[name].shape
        np.testing.assert_allclose(acts[name], ref[name], atol=1e-6, rtol=0)
    assert acts["conv2"].shape == (7, 6) and acts["output"].shape == (7, 5)

    flat = vision.register_model("tiny_flat", net, ["conv1"], preprocess={"size": 16}, pooling="flatten")
    got = flat.activations(images, device="cpu", cache=False)["conv1"]
    want = _manual(net, _normalise(images, *IMAGENET), ["conv1"], pooling="flatten")["conv1"]
    assert got.shape == (7, 4 * 8 * 8)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    mx = vision.register_model("tiny_max", net, ["conv2"], preprocess={"size": 16}, pooling="max")
    with torch.no_grad():
        c2 = net.conv2(net.act(net.conv1(_normalise(images, *IMAGENET))))
    np.testing.assert_allclose(mx.activations(images, device="cpu", cache=False)["conv2"],
                               c2.amax(dim=(2, 3)).numpy(), atol=1e-6, rtol=0)
    assert net.training  # the module's mode is restored after the forward passes


def test_default_preprocessing_resizes_to_224_with_imagenet_statistics(images):
    net = tiny_net(2)
    m = vision.register_model("tiny224", net, ["conv2"])
    x = torch.nn.functional.interpolate(torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255,
                                        size=(224, 224), mode="bilinear", align_corners=False)
    x = (x - torch.tensor(IMAGENET[0])[:, None, None]) / torch.tensor(IMAGENET[1])[:, None, None]
    np.testing.assert_allclose(m.activations(images, device="cpu", cache=False)["conv2"],
                               _manual(net, x, ["conv2"])["conv2"], atol=1e-5, rtol=0)


class Tokens(torch.nn.Module):
    """(n, C, H, W) → ((n, H*W, C) tokens, an auxiliary tensor): a tuple output."""

    def forward(self, x):
        return x.flatten(2).transpose(1, 2), x.sum()


class TokenNet(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.tokens = Tokens()

    def forward(self, x):
        return self.tokens(self.conv(x))[0].mean(1)


def test_tokens_tuples_and_a_callable_preprocess(images, cache_dir):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = TokenNet()
    x = _normalise(images, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    with torch.no_grad():
        conv = net.conv(x)
    calls = []

    def prep(batch):  # a user transform, as numpy
        calls.append(len(batch))
        return ((batch.astype(np.float64) / 255 - 0.5) / 0.25).transpose(0, 3, 1, 2)

    m = vision.register_model("tok", net, ["conv", "tokens"], preprocess=prep)
    acts = m.activations(images, device="cpu")
    np.testing.assert_allclose(acts["conv"], conv.mean(dim=(2, 3)).numpy(), atol=1e-6, rtol=0)
    np.testing.assert_allclose(acts["tokens"], conv.flatten(2).transpose(1, 2).mean(1).numpy(),
                               atol=1e-6, rtol=0)  # (n, T, D): the mean over tokens
    assert not list(cache_dir.rglob("*.npy"))  # a callable preprocess without version: uncached
    f = vision.register_model("tok_flat", net, ["tokens"], preprocess=prep, pooling="flatten", version="a")
    np.testing.assert_allclose(f.activations(images, device="cpu")["tokens"],
                               conv.flatten(2).transpose(1, 2).flatten(1).numpy(), atol=1e-6, rtol=0)
    n = len(calls)
    f.activations(images, device="cpu")
    assert len(calls) == n and len(list(cache_dir.rglob("*.npy"))) == 1  # versioned: cached
    feats, _ = vision.model_features({"tok": ["tokens"], "tok_flat": None}, images, device="cpu")
    assert list(feats) == ["tok:tokens", "tok_flat:tokens"]


def test_user_callable(images, cache_dir):
    calls = []

    def colour_means(batch):
        calls.append(len(batch))
        return batch.reshape(len(batch), -1, 3).mean(1)

    m = vision.register_model("colours", colour_means, description="mean RGB")
    assert m.layers == ("output",) and m.layer_names() == ["output"]
    X = m.activations(images, batch_size=4)["output"]
    np.testing.assert_allclose(X, images.reshape(7, -1, 3).mean(1), rtol=1e-6)
    assert calls == [4, 3]
    assert not list(cache_dir.rglob("*.npy"))  # no version: its behaviour cannot be keyed
    v = vision.register_model("colours_v1", colour_means, version="1")
    v.activations(images, batch_size=4)
    n = len(calls)
    np.testing.assert_array_equal(v.activations(images, batch_size=4)["output"], X)
    assert len(calls) == n and len(list(cache_dir.rglob("*.npy"))) == 1

    feats, st = vision.model_features(["colours", "colours_v1:output"], images)
    assert list(feats) == ["colours:output", "colours_v1:output"] and all(s.available for s in st)

    bad = vision.register_model("bad_shape", lambda b: b.reshape(len(b), -1)[:-1])
    with pytest.raises(ValueError, match="bad_shape.*expected numbers of shape"):
        bad.activations(images, cache=False)
    nan = vision.register_model("nan", lambda b: np.full((len(b), 2), np.nan))
    with pytest.raises(ValueError, match="non-finite"):
        nan.activations(images, cache=False)


def test_layer_and_argument_validation(images):
    net = tiny_net()
    with pytest.raises(ValueError, match=r"unknown layer\(s\) \['conv9'\].*conv1, act, conv2"):
        vision.register_model("t", net, ["conv1", "conv9"])
    m = vision.register_model("t", net, ["conv1"])
    with pytest.raises(ValueError, match="unknown layer.*'nope'.*valid layers: output, conv1"):
        m.activations(images, ["nope"], cache=False)
    with pytest.raises(ValueError, match="twice"):
        m.activations(images, ["conv1", "conv1"], cache=False)
    with pytest.raises(TypeError, match="layers must be"):
        vision.register_model("t2", net, [3])
    with pytest.raises(ValueError, match="one layer, 'output'"):
        vision.register_model("c", lambda b: b, ["conv1"])
    with pytest.raises(ValueError, match="does its own preprocessing"):
        vision.register_model("c", lambda b: b, preprocess={"size": 8})
    with pytest.raises(ValueError, match="no ':'"):
        vision.register_model("a:b", net)
    with pytest.raises(ValueError, match="built-in comparison model"):
        vision.register_model("resnet50", net)
    with pytest.raises(ValueError, match="'torchvision:<arch>'"):
        vision.register_model("k", "keras:resnet")
    with pytest.raises(ValueError, match="'open_clip:<arch>/<pretrained>'"):
        vision.register_model("k", "open_clip:RN50")
    with pytest.raises(TypeError, match="model must be"):
        vision.register_model("k", 3)
    with pytest.raises(ValueError, match="pooling"):
        vision.register_model("k", net, pooling="sum")
    with pytest.raises(ValueError, match="only for library models"):
        vision.register_model("k", net, weights="w.pth")
    with pytest.raises(ValueError, match="unknown keys"):
        vision.register_model("k", net, preprocess={"resize": 8})
    with pytest.raises(ValueError, match="std"):
        vision.register_model("k", net, preprocess={"std": (1, 0, 1)})
    assert vision.register_model("t", net, ["conv1"]) is m  # the same registration twice
    with pytest.raises(ValueError, match="already registered"):
        vision.register_model("t", net, ["conv2"])
    assert vision.register_model("t", net, ["conv2"], replace=True).layers == ("conv2",)
    with pytest.raises(ValueError, match="no vision model 'zzz'.*registered"):
        vision.get_model("zzz")
    with pytest.raises(ValueError, match="empty layer"):
        vision.parse_model_name("t:")
    assert vision.parse_model_name("t:conv1") == (vision.get_model("t"), ["conv1"])
    with pytest.raises(ValueError, match="images"):
        m.activations(images.astype(np.float32), cache=False)

    class Shared(torch.nn.Module):  # one ReLU used twice: it has no single activation
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 2, 3)
            self.act = torch.nn.ReLU()

        def forward(self, x):
            return self.act(self.conv(self.act(x)))

    s = vision.register_model("shared", Shared(), ["act"], preprocess={"size": 16})
    with pytest.raises(ValueError, match="'act' ran 2 times"):
        s.activations(images, cache=False, device="cpu")
    assert vision.check_model_reference("t:conv1") == "t:conv1"
    assert vision.check_model_reference("resnet50") == "resnet50"
    with pytest.raises(ValueError, match="unknown layer"):
        vision.check_model_reference("t:conv7")
    with pytest.raises(ValueError, match="unknown vision model 'u:x'.*registered"):
        vision.check_model_reference("u:x")
    vision.unregister_model("shared")
    assert "shared" not in vision.registered_models()


# ------------------------------------------------------------------ caches
def test_cache_per_model_and_layer(images, cache_dir):
    net = tiny_net(3)
    ref = _manual(net, _normalise(images, *IMAGENET), ["conv2"])["conv2"]  # before counting
    calls = []
    net.register_forward_pre_hook(lambda mod, args: calls.append(1))
    m = vision.register_model("cached", net, ["conv1", "conv2"], preprocess={"size": 16})
    ids = np.arange(7) + 100
    a = m.activations(images, ["conv1"], image_ids=ids, batch_size=4, device="cpu")
    assert len(calls) == 2
    files = list(cache_dir.rglob("*.npy"))
    assert len(files) == 1 and files[0].name.startswith("conv1_")
    before = files[0].stat()
    b = m.activations(images, ["conv1"], image_ids=ids, batch_size=4, device="cpu")
    assert len(calls) == 2  # a hit: no forward pass
    np.testing.assert_array_equal(a["conv1"], b["conv1"])

    both = m.activations(images, image_ids=ids, batch_size=4, device="cpu")  # conv2 is new
    assert len(calls) == 4 and list(both) == ["conv1", "conv2"]
    after = files[0].stat()
    assert (after.st_mtime_ns, after.st_ino) == (before.st_mtime_ns, before.st_ino)  # not rewritten
    assert len(list(cache_dir.rglob("*.npy"))) == 2
    np.testing.assert_allclose(both["conv2"], ref, atol=1e-6, rtol=0)
    m.activations(images, image_ids=ids, device="cpu")
    assert len(calls) == 4

    # another version: a miss (same numbers); changed weights: a miss with other numbers
    v2 = vision.register_model("cached_v2", net, ["conv1"], preprocess={"size": 16}, version="2")
    np.testing.assert_array_equal(v2.activations(images, image_ids=ids, device="cpu")["conv1"], a["conv1"])
    assert len(calls) == 5
    saved = {k: v.clone() for k, v in net.state_dict().items()}
    with torch.no_grad():
        net.conv1.bias += 1.0
    c = m.activations(images, ["conv1"], image_ids=ids, device="cpu")
    assert len(calls) == 6 and not np.allclose(c["conv1"], a["conv1"])
    net.load_state_dict(saved)
    np.testing.assert_array_equal(m.activations(images, ["conv1"], image_ids=ids, device="cpu")["conv1"],
                                  a["conv1"])
    assert len(calls) == 6  # the original weights: a hit again
    m.activations(images, ["conv1"], image_ids=ids + 1, device="cpu")  # other images: a miss
    assert len(calls) == 7
    other = vision.register_model("cached_crop", net, ["conv1"], preprocess={"size": 16, "crop": 0.5})
    other.activations(images, image_ids=ids, device="cpu")  # other preprocessing: a miss
    assert len(calls) == 8


# ------------------------------------------------------------------ library adapters
def _library_env(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLLM_MODELS", str(tmp_path / "models"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    (tmp_path / "models" / "vision").mkdir(parents=True)
    return tmp_path / "models" / "vision"


def test_torchvision_and_timm_adapters_through_stand_in_modules(tmp_path, monkeypatch, images):
    folder = _library_env(tmp_path, monkeypatch)
    tv, tvm = types.ModuleType("torchvision"), types.ModuleType("torchvision.models")
    tvm.tinynet = lambda weights=None: tiny_net(0)
    tv.models = tvm
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.models", tvm)
    trained = tiny_net(5)
    torch.save(trained.state_dict(), folder / "tinynet-0123abcd.pth")

    m = vision.register_model("tv_tiny", "torchvision:tinynet", ["conv2", "output"], preprocess={"size": 16})
    assert m.status.available and m.status.weights == str(folder / "tinynet-0123abcd.pth")
    assert m.layer_names() == ["output", "conv1", "act", "conv2", "pool", "head"]
    acts = m.activations(images, device="cpu", cache=False)
    ref = _manual(trained, _normalise(images, *IMAGENET), ["conv2", "output"])
    for k in ref:
        np.testing.assert_allclose(acts[k], ref[k], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="valid layers: output, conv1"):
        m.activations(images, ["layer4"], cache=False)
    missing = vision.register_model("tv_missing", "torchvision:othernet")
    tvm.othernet = tvm.tinynet
    assert not missing.status.available and "nothing is downloaded" in missing.status.reason
    with pytest.raises(RuntimeError, match="unavailable.*nothing is downloaded"):
        missing.activations(images)
    with pytest.raises(ValueError, match="no architecture 'nonet'"):
        vision.register_model("tv_typo", "torchvision:nonet").status

    timm = types.ModuleType("timm")
    timm.is_model = lambda arch: arch == "tiny_timm"
    timm.create_model = lambda arch, pretrained=False: tiny_net(0)
    monkeypatch.setitem(sys.modules, "timm", timm)
    path = tmp_path / "elsewhere.pth"
    torch.save(tiny_net(6).state_dict(), path)
    t = vision.register_model("timm_tiny", "timm:tiny_timm", ["pool"], weights=path, preprocess={"size": 16})
    assert t.status.weights == str(path)
    np.testing.assert_allclose(t.activations(images, device="cpu", cache=False)["pool"],
                               _manual(tiny_net(6), _normalise(images, *IMAGENET), ["pool"])["pool"],
                               atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="timm has no architecture 'vit_x'"):
        vision.register_model("timm_typo", "timm:vit_x").status


def test_open_clip_adapter_and_missing_libraries(tmp_path, monkeypatch, images, cache_dir):
    folder = _library_env(tmp_path, monkeypatch)

    class TinyClip(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.visual = tiny_net(0)
            self.text = torch.nn.Linear(3, 5)

        def encode_image(self, x):
            return self.visual(x)

    def create_model(arch, pretrained=None):
        model = TinyClip()
        model.load_state_dict(torch.load(pretrained, weights_only=True))
        return model

    oc = types.ModuleType("open_clip")
    oc.create_model, oc.list_models = create_model, lambda: ["TinyCLIP"]
    monkeypatch.setitem(sys.modules, "open_clip", oc)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(8)
        trained = TinyClip()
    torch.save(trained.state_dict(), folder / "TinyCLIP_openai.pt")
    m = vision.register_model("clip_tiny", "open_clip:TinyCLIP/openai", ["visual.conv2", "output"],
                              preprocess={"size": 16})
    assert m.status.available and "text" not in m.layer_names() and "visual.conv1" in m.layer_names()
    acts = m.activations(images, device="cpu")
    ref = _manual(trained, _normalise(images, *CLIP), ["visual.conv2", "output"], forward=trained.encode_image)
    for k in ref:
        np.testing.assert_allclose(acts[k], ref[k], atol=1e-6, rtol=0)
    assert len(list(cache_dir.rglob("*.npy"))) == 2  # keyed on the weights file's identity
    with pytest.raises(ValueError, match="unknown layer.*'text'"):
        m.activations(images, ["text"])

    monkeypatch.setitem(sys.modules, "timm", None)  # not installed: a skip, never an error
    gone = vision.register_model("timm_gone", "timm:resnet18", ["layer4"])
    feats, st = vision.model_features(["timm_gone", "clip_tiny:output"], images, device="cpu")
    assert list(feats) == ["clip_tiny:output"]
    assert [s.name for s in st] == ["timm_gone:layer4", "clip_tiny:output"]
    assert not st[0].available and "library missing" in st[0].reason and st[1].available
    assert not gone.status.available


# ------------------------------------------------------------------ chapter 05
def test_chapter_comparison_scores_registered_models(tiny_root, tmp_path, monkeypatch):
    from brainllm_utils import rsa_analysis as ra
    from brainllm_utils import vision_analysis as va
    from brainllm_utils.nsd import NSD

    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BRAINLLM_RESULTS", str(tmp_path / "results"))
    monkeypatch.setitem(sys.modules, "timm", None)
    nsd = NSD(tiny_root)
    _, needed = ra.rsa_design(nsd, set_size=8, n_sets=1)
    net = tiny_net(4)
    vision.register_model("mynet", net, ["conv1", "conv2"], preprocess={"size": 32}, description="mine")
    vision.register_model("means", lambda b: b.reshape(len(b), -1, 3).mean(1), version="1")
    vision.register_model("absent", "timm:resnet18")

    base, base_status = va.comparison_features(nsd, needed, ["untrained_alexnet"], device="cpu")
    comp, status = va.comparison_features(nsd, needed, ["untrained_alexnet", "mynet", "means", "absent",
                                                        "mynet:pool"], device="cpu")
    assert list(comp) == ["untrained_alexnet", "mynet:conv1", "mynet:conv2", "means:output", "mynet:pool"]
    assert list(status.index) == list(comp)[:4] + ["absent:output", "mynet:pool"]
    np.testing.assert_array_equal(comp["untrained_alexnet"], base["untrained_alexnet"])  # unchanged
    assert status.loc["untrained_alexnet"].tolist() == base_status.loc["untrained_alexnet"].tolist()
    absent = status.loc["absent:output"]
    assert not absent["available"] and "library missing" in absent["reason"]
    assert status.loc["mynet:conv1", "description"] == "mine"
    ref = vision.get_model("mynet").activations(nsd.images(needed), image_ids=needed, device="cpu",
                                                cache=False)
    np.testing.assert_allclose(comp["mynet:conv2"], ref["conv2"], atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="asked for twice"):
        va.comparison_features(nsd, needed, ["mynet", "mynet:conv1"], device="cpu")

    user = {k: v for k, v in comp.items() if ":" in k}
    df = va.network_rsa_table(nsd, {}, other_features=user, rois=["early", "ventral"], set_size=8,
                              n_sets=1, ids=needed)
    assert set(df["model"]) == set(user)
    assert len(df) == len(user) * 2 * len(nsd.subjects) and np.isfinite(df["r"]).all()
    one = va.network_rsa_table(nsd, {}, other_features={"x": comp["mynet:conv2"]},
                               rois=["early", "ventral"], set_size=8, n_sets=1, ids=needed)
    got = df[df["model"] == "mynet:conv2"].set_index(["subject", "roi"])["r"]
    np.testing.assert_allclose(got, one.set_index(["subject", "roi"])["r"].loc[got.index], atol=1e-12)
