"""Tests for brainllm_utils.embeddings against sentence-transformers, plus the disk cache.

Weights: MiniLM is used in place from its pip package. MPNet's extraction takes ~5 s, so
it is prepared at most once per session: the folder made by
``python -m brainllm_utils.weights`` in the default cache is reused read-only when it
exists, otherwise the pip parts are extracted into a session temporary folder (shared with
test_weights.py). Tests then pass that *folder* as the model, so every embedding cache a
test writes goes under its own ``tmp_path`` (``BRAINLLM_CACHE`` is redirected there).
Models and sentence-transformers references are module-scoped (loaded once).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from brainllm_utils.features import embeddings as E
from brainllm_utils._utils import paths as _upaths
from brainllm_utils.embeddings import embed_captions, embed_sentences, get_model_spec
from brainllm_utils.weights import MINILM, prepare_mpnet, resolve_model

SENTENCES = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The stock market crashed today.",
    "A giraffe standing next to a tall tree in a zoo enclosure.",
    "two dogs playing with a red frisbee on the beach",
    "A KITCHEN WITH WHITE CABINETS AND A STAINLESS STEEL REFRIGERATOR.",
    "",
    "   leading and trailing spaces   ",
    "Tabs\tand\nnewlines\r\nin a caption.",
    "Ünïcödé café — naïve façade, 東京の夜景, Москва, 🙂🚲🍕!",
    "What?! ... -- ;; (parentheses) [brackets] {braces} #hash @at 100% $5.",
    "A man is eating food.",  # duplicate
    "a man is eating food.",  # case variant
    "Hi",
    "Hi",
    "x",
    "A bus parked on the side of a busy city street at night.",
    "Several people are skiing down a snowy mountain slope.",
    "A plate topped with broccoli, carrots and a large grilled steak.",
    "An old clock tower rising above the rooftops of a small town.",
    "A cat sleeping on a laptop keyboard.",
    "A young boy riding a skateboard down a concrete ramp at a skate park.",
    "Numbers 1234567890 and dates 2025-01-31 in text.",
    "https://example.com/a/b?c=d&e=f",
    "A very long caption " + "with many repeated words about a busy street scene " * 40,
    "Another long one: " + " ".join(f"token{i}" for i in range(600)),
    "A zebra grazing in a field next to a wooden fence.",
    "Fruit stand with bananas, apples and oranges.",
    "The quick brown fox jumps over the lazy dog.",
    "A woman holding an umbrella in the rain.",
]


def _cos(a, b):
    return (a * b).sum(-1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One torch thread: two threads on 2 vCPUs collapse under contention (toolchain.md §7)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def mpnet_dir(tmp_path_factory) -> Path:
    env = os.environ.get("BRAINLLM_CACHE")
    default = Path(env).expanduser() if env else _upaths._default_base() / "cache"
    folder = default / "models" / "all-mpnet-base-v2"
    if (folder / "model.safetensors").is_file():
        return folder
    return prepare_mpnet(cache_dir=tmp_path_factory.getbasetemp() / "brainllm_weights")


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    return resolve_model(MINILM)


@pytest.fixture(scope="module", params=["minilm", "mpnet"])
def model_case(request, minilm_dir, mpnet_dir):
    """(name, folder, sentence-transformers reference embeddings of SENTENCES).

    The reference uses batch_size=4: with the default 32, all 30 sentences share one batch
    padded to 384 tokens, which costs MPNet ~30 s on one core.
    """
    from sentence_transformers import SentenceTransformer

    folder = minilm_dir if request.param == "minilm" else mpnet_dir
    st = SentenceTransformer(str(folder), device="cpu")
    ref = st.encode(SENTENCES, batch_size=4, normalize_embeddings=False, convert_to_numpy=True)
    return request.param, folder, ref


@pytest.fixture(scope="module")
def minilm_st(minilm_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(minilm_dir), device="cpu")


# ----------------------------------------------------------------------------- agreement


def test_matches_sentence_transformers(model_case):
    name, folder, ref = model_case
    ours = embed_sentences(SENTENCES, model=folder, device="cpu", cache=False)
    assert ours.dtype == np.float32
    assert ours.shape == ref.shape == (len(SENTENCES), 384 if name == "minilm" else 768)
    assert _cos(ours, ref).min() >= 0.9999
    assert np.abs(ours - ref).max() < 1e-5
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_matches_with_small_batches(model_case):
    """Fixed small batches: padding inside batches must not change the result."""
    _, folder, ref = model_case
    ours = embed_sentences(SENTENCES, model=folder, device="cpu", cache=False, batch_size=3)
    assert _cos(ours, ref).min() >= 0.9999
    assert np.abs(ours - ref).max() < 1e-5


@pytest.mark.parametrize(
    "name,pair,other", [("minilm", 0.755, 0.009), ("mpnet", 0.660, -0.013)]
)
def test_sanity_cosines(name, pair, other, minilm_dir, mpnet_dir):
    folder = minilm_dir if name == "minilm" else mpnet_dir
    X = embed_sentences(
        ["A man is eating food.", "A man is eating a piece of bread.", "The stock market crashed today."],
        model=folder,
        device="cpu",
        cache=False,
    )
    assert X[0] @ X[1] == pytest.approx(pair, abs=0.005)
    assert X[0] @ X[2] == pytest.approx(other, abs=0.005)


def test_spec_reads_configs(minilm_dir, mpnet_dir):
    mini, mp = get_model_spec(minilm_dir), get_model_spec(mpnet_dir)
    assert (mini.max_seq_length, mini.dim, mini.pooling, mini.normalize) == (256, 384, ("mean",), True)
    assert (mp.max_seq_length, mp.dim, mp.pooling, mp.normalize) == (384, 768, ("mean",), True)
    assert get_model_spec("minilm").name == MINILM


def test_truncation_at_max_seq_length(minilm_dir):
    base = " ".join(f"word{i}" for i in range(400))  # far beyond 256 tokens
    X = embed_sentences([base, base + " and a different ending"], model=minilm_dir, device="cpu", cache=False)
    np.testing.assert_allclose(X[0], X[1], atol=1e-6)
    Y = embed_sentences(["short one", "short one and a different ending"], model=minilm_dir, cache=False)
    assert Y[0] @ Y[1] < 0.99


def _variant(tmp_path, src: Path, pooling: dict, normalize: bool, extra_modules=()) -> Path:
    """A MiniLM folder (files linked) with another pooling config and module list."""
    dst = tmp_path / "variant"
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file() and f.name != "modules.json":
            os.symlink(f, dst / f.name)
    (dst / "1_Pooling").mkdir()
    cfg = {"word_embedding_dimension": 384, **pooling}
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(cfg))
    mods = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        mods.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    mods += list(extra_modules)
    (dst / "modules.json").write_text(json.dumps(mods))
    return dst


@pytest.mark.parametrize(
    "pooling,modes",
    [
        ({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}, ("cls",)),
        ({"pooling_mode_max_tokens": True, "pooling_mode_mean_tokens": False}, ("max",)),
        ({"pooling_mode_mean_sqrt_len_tokens": True, "pooling_mode_mean_tokens": False}, ("mean_sqrt_len_tokens",)),
        ({"pooling_mode": "mean"}, ("mean",)),
    ],
)
def test_pooling_variants_match_sentence_transformers(tmp_path, minilm_dir, pooling, modes):
    from sentence_transformers import SentenceTransformer

    folder = _variant(tmp_path, minilm_dir, pooling, normalize=False)
    spec = get_model_spec(folder)
    assert spec.pooling == modes and spec.normalize is False
    sents = SENTENCES[:12]
    ours = embed_sentences(sents, model=folder, device="cpu", cache=False, batch_size=5)
    ref = SentenceTransformer(str(folder), device="cpu").encode(sents, normalize_embeddings=False)
    assert _cos(ours, ref).min() >= 0.9999
    np.testing.assert_allclose(ours, ref, atol=1e-4, rtol=1e-5)
    assert not np.allclose(np.linalg.norm(ours, axis=1), 1.0)  # no Normalize module


def test_unsupported_modules(tmp_path, minilm_dir):
    dense = {"idx": 3, "name": "3", "path": "3_Dense", "type": "sentence_transformers.models.Dense"}
    folder = _variant(tmp_path, minilm_dir, {"pooling_mode_mean_tokens": True}, True, [dense])
    with pytest.raises(NotImplementedError, match="Dense"):
        embed_sentences(["a"], model=folder, cache=False)


# ----------------------------------------------------------------------------- inputs


def _forbid_loading(monkeypatch):
    E.clear_model_cache()

    def boom(*a, **k):
        raise AssertionError("model must not be loaded")

    monkeypatch.setattr(E, "_load_model", boom)


def test_empty_input_without_loading(monkeypatch, minilm_dir, mpnet_dir):
    _forbid_loading(monkeypatch)
    for folder, d in [(minilm_dir, 384), (mpnet_dir, 768)]:
        out = embed_sentences([], model=folder)
        assert out.shape == (0, d) and out.dtype == np.float32
    assert embed_captions([], model=minilm_dir).shape == (0, 384)


@pytest.mark.parametrize("bad", ["a single string", b"bytes", ["ok", 3], ["ok", None], [b"x"], 5])
def test_type_errors(bad, minilm_dir):
    with pytest.raises(TypeError):
        embed_sentences(bad, model=minilm_dir, cache=False)


def test_device_auto_is_cpu_without_cuda():
    import torch

    assert E._resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert E._resolve_precision("auto", "cpu") == "fp32"
    with pytest.raises(ValueError):
        E._resolve_precision("int4", "cpu")


def test_auto_precision_follows_the_cpus_native_bf16(monkeypatch):
    """"auto" on a CPU: bf16 where it runs natively (the probe, or BRAINLLM_CPU_BF16=1),
    else fp32; explicit precisions are kept; a bad override is an error naming it."""
    from brainllm_utils._utils import device as D

    monkeypatch.setenv("BRAINLLM_CPU_BF16", "1")
    assert E._resolve_precision("auto", "cpu") == "bf16"
    assert E._resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setenv("BRAINLLM_CPU_BF16", "0")
    assert E._resolve_precision("auto", "cpu") == "fp32"
    assert E._resolve_precision("bf16", "cpu") == "bf16"
    monkeypatch.setenv("BRAINLLM_CPU_BF16", "yes")
    with pytest.raises(ValueError, match="BRAINLLM_CPU_BF16"):
        E._resolve_precision("auto", "cpu")
    monkeypatch.delenv("BRAINLLM_CPU_BF16")
    assert D.cpu_has_native_bf16() in (True, False)
    assert E._resolve_precision("auto", "cpu") == ("bf16" if D.cpu_has_native_bf16() else "fp32")


def test_cpu_bf16_embeddings_agree_with_fp32_and_are_cached_apart(monkeypatch, tmp_path, mpnet_dir):
    """MPNet in bf16 on the CPU ("auto" where the CPU has native bf16): cosine ≥ 0.999 to
    fp32 for every caption (0.9999 measured), a different cache entry from fp32's."""
    monkeypatch.setenv("BRAINLLM_CPU_BF16", "1")
    caps = ["A cat is held by a woman near the shore.", "Two men ride horses down a dusty road.",
            "A plate of pasta with tomato sauce and basil.", "A red bus parked beside a tall building.",
            "Children play football on a green field at sunset.", "A laptop and a cup of coffee on a desk."]
    ref = embed_sentences(caps, model=mpnet_dir, device="cpu", precision="fp32", cache=tmp_path)
    auto = embed_sentences(caps, model=mpnet_dir, device="cpu", cache=tmp_path)
    cos = (ref * auto).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(auto, axis=1)
    assert cos.min() >= E.BF16_MIN_COSINE and not np.array_equal(ref, auto)
    np.testing.assert_array_equal(embed_sentences(caps, model=mpnet_dir, device="cpu", precision="bf16",
                                                  cache=tmp_path), auto)


def test_duplicates_embedded_once(monkeypatch, minilm_dir):
    seen = []
    real = E._encode

    def spy(texts, *a, **k):
        seen.extend(texts)
        return real(texts, *a, **k)

    monkeypatch.setattr(E, "_encode", spy)
    sents = ["b", "a", "b", "c", "a", "b"]
    X = embed_sentences(sents, model=minilm_dir, cache=False)
    assert sorted(seen) == ["a", "b", "c"]
    np.testing.assert_array_equal(X[0], X[2])
    np.testing.assert_array_equal(X[1], X[4])
    assert not np.allclose(X[0], X[1])


def test_progress_bar_threshold(monkeypatch, capsys, minilm_dir):
    embed_sentences(["one", "two", "three"], model=minilm_dir, cache=False)
    assert "embed" not in capsys.readouterr().err
    monkeypatch.setattr(E, "_PROGRESS_MIN", 2)
    embed_sentences(["one", "two", "three"], model=minilm_dir, cache=False)
    assert "embed" in capsys.readouterr().err


# ----------------------------------------------------------------------------- captions


def test_embed_captions_mean_not_renormalised(minilm_dir):
    caps = [
        ["A dog on a beach.", "A brown dog running on sand.", "A dog."],
        ["A red bus on a street."],
        ["A dog."],  # duplicate caption across images
        ["Pizza on a plate.", "Pizza on a plate.", "A plate with food."],  # duplicate within image
    ]
    X = embed_captions(caps, model=minilm_dir, cache=False)
    assert X.shape == (4, 384) and X.dtype == np.float32
    for i, c in enumerate(caps):
        manual = embed_sentences(c, model=minilm_dir, cache=False).mean(axis=0)
        np.testing.assert_allclose(X[i], manual, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(X[[1, 2]], axis=1), 1.0, atol=1e-5)
    assert np.linalg.norm(X[0]) < 0.99 and np.linalg.norm(X[3]) < 0.99  # not re-normalised
    np.testing.assert_allclose(X[2], embed_sentences(["A dog."], model=minilm_dir, cache=False)[0], atol=1e-6)
    # order preserved
    Xr = embed_captions(caps[::-1], model=minilm_dir, cache=False)
    np.testing.assert_allclose(Xr, X[::-1], atol=1e-6)


def test_embed_captions_errors(minilm_dir):
    with pytest.raises(ValueError, match="image 1"):
        embed_captions([["a"], [], ["b"]], model=minilm_dir, cache=False)
    with pytest.raises(TypeError, match=r"captions_per_image\[0\]"):
        embed_captions(["a caption, not a list"], model=minilm_dir, cache=False)
    with pytest.raises(TypeError):
        embed_captions([["ok", 1]], model=minilm_dir, cache=False)


# ----------------------------------------------------------------------------- cache


def _npys(root: Path) -> list[Path]:
    # data files only: the store's lock file holds nothing
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".lock")


def test_cache_hit_does_not_load_model(monkeypatch, tmp_path, minilm_dir):
    sents = SENTENCES[:8]
    first = embed_sentences(sents, model=minilm_dir)
    root = tmp_path / "cache" / "embeddings" / "model"
    files = [p for p in root.glob("*.npy")]
    assert len(files) == 1 and len(files[0].stem) == 64  # <slug>/<sha256>.npy
    _forbid_loading(monkeypatch)
    np.testing.assert_array_equal(embed_sentences(sents, model=minilm_dir), first)
    # same sentences via the per-sentence store (list-level file removed): still no model
    files[0].unlink()
    np.testing.assert_array_equal(embed_sentences(sents, model=minilm_dir), first)
    # a reordered subset also comes from the store
    np.testing.assert_array_equal(embed_sentences(sents[3:0:-1], model=minilm_dir), first[3:0:-1])


def test_cache_named_model_slug(tmp_path):
    embed_sentences(["a"], model="minilm")
    assert len(list((tmp_path / "cache" / "embeddings" / "all-MiniLM-L6-v2").glob("*.npy"))) == 1


def test_cache_invalidation_on_sentences(monkeypatch, minilm_dir):
    seen = []
    real = E._encode
    monkeypatch.setattr(E, "_encode", lambda texts, *a, **k: (seen.extend(texts), real(texts, *a, **k))[1])
    a = embed_sentences(["one", "two"], model=minilm_dir)
    b = embed_sentences(["one", "two", "three"], model=minilm_dir)
    assert seen == ["one", "two", "three"]  # only the new sentence was embedded
    np.testing.assert_array_equal(b[:2], a)
    c = embed_sentences(["two", "one"], model=minilm_dir)  # order is part of the key
    np.testing.assert_array_equal(c, a[::-1])
    assert seen == ["one", "two", "three"]


def test_cache_invalidation_on_model(monkeypatch, minilm_dir, mpnet_dir):
    embed_sentences(["one", "two"], model=minilm_dir)
    _forbid_loading(monkeypatch)
    with pytest.raises(AssertionError, match="must not be loaded"):
        embed_sentences(["one", "two"], model=mpnet_dir)


def test_model_key_covers_identity(minilm_dir):
    spec = get_model_spec(minilm_dir)
    base = spec.key("fp32")
    from dataclasses import replace

    assert spec.key("bf16") != base
    for change in (
        {"weights_id": "x"},
        {"pooling": ("cls",)},
        {"max_seq_length": 128},
        {"normalize": False},
        {"name": "other"},
    ):
        assert replace(spec, **change).key("fp32") != base


def test_cache_false_and_explicit_dir(tmp_path, minilm_dir):
    embed_sentences(["one"], model=minilm_dir, cache=False)
    assert not (tmp_path / "cache" / "embeddings").exists()
    embed_sentences(["one"], model=minilm_dir, cache=tmp_path / "mine")
    assert list((tmp_path / "mine" / "embeddings" / "model").glob("*.npy"))  # a path is a cache root
    assert not (tmp_path / "cache" / "embeddings").exists()


def test_crash_mid_write_leaves_no_cache_file(monkeypatch, tmp_path, minilm_dir):
    real_save = np.save

    def crash(fh, arr, *a, **k):
        real_save(fh, arr[: max(len(arr) // 2, 0)], *a, **k)  # partial write, then die
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(np, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        embed_sentences(["one", "two", "three"], model=minilm_dir)
    monkeypatch.setattr(np, "save", real_save)
    root = tmp_path / "cache" / "embeddings"
    assert _npys(root) == []  # neither a list file nor a shard, no temp files
    X = embed_sentences(["one", "two", "three"], model=minilm_dir)
    assert X.shape == (3, 384)


@pytest.mark.parametrize("garbage", [b"", b"\x93NUMPY garbage", None])
def test_corrupt_list_cache_recomputed(tmp_path, minilm_dir, garbage):
    sents = ["one", "two", "three"]
    good = embed_sentences(sents, model=minilm_dir)
    root = tmp_path / "cache" / "embeddings" / "model"
    (f,) = root.glob("*.npy")
    if garbage is None:  # valid npy, wrong shape
        np.save(f, np.zeros((2, 384), np.float32))
    else:
        f.write_bytes(garbage)
    shutil.rmtree(next(root.glob("sentences-*")))  # force a real recompute
    with pytest.warns(UserWarning, match="corrupt"):
        again = embed_sentences(sents, model=minilm_dir)
    np.testing.assert_allclose(again, good, atol=1e-6)
    np.testing.assert_array_equal(np.load(f), again)  # rewritten


def test_corrupt_shard_recomputed(tmp_path, minilm_dir):
    sents = ["one", "two", "three"]
    good = embed_sentences(sents, model=minilm_dir)
    root = tmp_path / "cache" / "embeddings" / "model"
    next(root.glob("*.npy")).unlink()
    (shard,) = [p for p in root.glob("sentences-*/shard-*.npy") if not p.name.endswith(".keys.npy")]
    shard.write_bytes(b"\x00" * 10)
    with pytest.warns(UserWarning, match="corrupt"):
        again = embed_sentences(sents, model=minilm_dir)
    np.testing.assert_allclose(again, good, atol=1e-6)


def test_store_compaction(monkeypatch, tmp_path, minilm_dir):
    monkeypatch.setattr(E, "_MAX_SHARDS", 3)
    for i in range(5):
        embed_sentences([f"sentence {i}"], model=minilm_dir)
    store = next((tmp_path / "cache" / "embeddings" / "model").glob("sentences-*"))
    assert len(list(store.glob("shard-*.keys.npy"))) <= 3
    _forbid_loading(monkeypatch)
    X = embed_sentences([f"sentence {i}" for i in range(5)][::-1], model=minilm_dir)
    assert X.shape == (5, 384) and len({x.tobytes() for x in X}) == 5


def test_parallel_callers_embed_shared_sentences_once(monkeypatch, tmp_path, minilm_dir):
    """Two concurrent callers (e.g. two notebooks on two Dask workers) wanting the same new
    sentences: the second waits on the store's lock and reads the first one's rows."""
    import threading
    import time as _time

    from brainllm_utils.features import embeddings as emb

    real = emb._encode
    calls = []

    def slow_encode(texts, *a, **k):
        calls.append(len(texts))
        _time.sleep(0.5)
        return real(texts, *a, **k)

    monkeypatch.setattr(emb, "_encode", slow_encode)
    out = {}

    def worker(name, sents):
        out[name] = embed_sentences(sents, model=minilm_dir)

    a = threading.Thread(target=worker, args=("a", SENTENCES[:6]))
    b = threading.Thread(target=worker, args=("b", SENTENCES[:6][::-1]))
    a.start()
    _time.sleep(0.1)
    b.start()
    a.join()
    b.join()
    assert calls == [6], calls
    np.testing.assert_array_equal(out["a"], out["b"][::-1])


def test_parallel_callers_with_disjoint_sentences_embed_at_the_same_time(monkeypatch, tmp_path,
                                                                        minilm_dir):
    """Disjoint work is not serialised: the second caller starts before the first ends."""
    import threading
    import time as _time

    from brainllm_utils.features import embeddings as emb

    real = emb._encode
    spans = []

    def slow_encode(texts, *a, **k):
        t0 = _time.perf_counter()
        _time.sleep(0.5)
        out = real(texts, *a, **k)
        spans.append((t0, _time.perf_counter()))
        return out

    monkeypatch.setattr(emb, "_encode", slow_encode)
    threads = [threading.Thread(target=embed_sentences, args=(part,), kwargs={"model": minilm_dir})
               for part in (SENTENCES[:4], SENTENCES[4:8])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(spans) == 2
    (a0, a1), (b0, b1) = sorted(spans)
    assert b0 < a1, "the second caller waited for the first"


def test_stale_claim_of_a_dead_process_is_ignored(tmp_path, minilm_dir):
    from brainllm_utils.features import embeddings as emb

    sents = SENTENCES[:3]
    spec = emb.get_model_spec(minilm_dir)
    folder = tmp_path / "cache" / "embeddings" / spec.slug / f"sentences-{spec.key('fp32')[:16]}"
    folder.mkdir(parents=True)
    stale = folder / "claim-dead.keys"
    stale.write_bytes(emb._sentence_keys(sents).tobytes())  # nobody holds its lock
    X = embed_sentences(sents, model=minilm_dir)
    assert X.shape == (3, 384)
    assert not stale.exists()
