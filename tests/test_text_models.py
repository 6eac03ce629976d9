"""Any local Hugging Face model as a feature space: pooling, layers, sweeps, prompts, caching.

Offline, no downloads: tiny random-weight models are built here from configs (a BERT
encoder, GPT-2 and Llama decoders; hidden size 32, 2-3 layers, seeded) with a word-level
tokenizer made by the ``tokenizers`` library, and saved to a temporary folder. Every
number is compared with a reference computed here directly with ``transformers``
(``output_hidden_states=True``, each sentence alone, so no padding) and pooling written
in the test; ours runs every sentence of different length in one padded batch.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from brainllm_utils import features
from brainllm_utils.features import embeddings as E
from brainllm_utils.features.embeddings import embed_captions, embed_sentences, get_model_spec

SENTS = [
    "A dog.",
    "A brown dog chasing a small cat across a grassy field.",
    "Two people riding horses on the beach at sunset , with a dog running behind them .",
    "A pizza on a wooden table.",
    "A man is eating pizza at the table.",
    "cat",
    "A red bus parked on the side of a busy city street next to a tall building at night .",
    "A dog.",  # duplicate
]
CAPTIONS = [
    ["A brown dog chasing a small cat across a grassy field.", "A dog."],
    ["Two people riding horses on the beach at sunset , with a dog running behind them ."],
    ["A pizza on a wooden table.", "A man is eating pizza at the table.", "cat"],
]
PROMPT = "A photo that shows : {caption} The end"
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "<bos>", "<eos>"]
# float32 agreement: 1e-6 per unit of the states' scale. The residual stream of these random
# models reaches |h| ~ 10, where a padded batch and a sentence alone (different matmul shapes)
# round differently by ~1e-6 · |h|; a wrong token, position or mask is off by ~0.1 or more.
ATOL = 1e-6
RTOL = 1e-6


def _close(actual, desired, err_msg=""):
    desired = np.asarray(desired)
    scale = max(1.0, float(np.abs(desired).max()))
    np.testing.assert_allclose(actual, desired, atol=ATOL * scale, rtol=RTOL, err_msg=err_msg)


# ----------------------------------------------------------------------------- tiny models
def _vocab(texts=()) -> dict[str, int]:
    """The word-level vocabulary of the test sentences (and of ``texts``, e.g. a sandbox's captions)."""
    import re

    words = sorted({w for s in SENTS + [PROMPT.replace("{caption}", "")] + [c for cs in CAPTIONS for c in cs]
                    + list(texts) for w in re.findall(r"\w+|[^\w\s]+", s.lower())})
    return {t: i for i, t in enumerate(SPECIALS + words)}


def _tokenizer(folder: Path, kind: str, padding_side: str = "right", texts=()):
    """A word-level fast tokenizer saved in ``folder``: BERT-style ([CLS] x [SEP], a pad
    token), GPT-2-style (no special tokens, no pad token) or Llama-style (<bos> x, no pad)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = _vocab(texts)
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    extra = {}
    if kind == "bert":
        tk.post_processor = processors.TemplateProcessing(
            single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
        extra = dict(pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]")
    elif kind == "llama":
        tk.post_processor = processors.TemplateProcessing(single="<bos> $A",
                                                          special_tokens=[("<bos>", vocab["<bos>"])])
        extra = dict(bos_token="<bos>", eos_token="<eos>")
    else:
        extra = dict(eos_token="<eos>")
    fast = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", model_max_length=64,
                                   padding_side=padding_side, **extra)
    fast.save_pretrained(folder)
    cfg_path = folder / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["padding_side"] = padding_side  # whatever the version writes, the side is in the config
    cfg_path.write_text(json.dumps(cfg))
    return fast


def _build(folder: Path, kind: str, padding_side: str = "right", texts=()) -> Path:
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model, LlamaConfig, LlamaModel

    folder.mkdir(parents=True)
    vocab = _vocab(texts)
    torch.manual_seed(0)
    if kind == "bert":
        model = BertModel(BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=3,
                                     num_attention_heads=4, intermediate_size=64, max_position_embeddings=64,
                                     pad_token_id=vocab["[PAD]"]), add_pooling_layer=False)
    elif kind == "gpt2":
        model = GPT2Model(GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=3, n_head=4, n_positions=64,
                                     bos_token_id=vocab["<eos>"], eos_token_id=vocab["<eos>"]))
    else:
        model = LlamaModel(LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                       max_position_embeddings=64, bos_token_id=vocab["<bos>"],
                                       eos_token_id=vocab["<eos>"], pad_token_id=None))
    with torch.no_grad():  # random weights large enough that layers differ clearly
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0.0, 0.2)
    model.eval().save_pretrained(folder)
    _tokenizer(folder, kind, padding_side, texts)
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_hf")
    return {
        "bert": _build(root / "bert", "bert"),
        "gpt2-right": _build(root / "gpt2-right", "gpt2", "right"),
        "gpt2-left": _build(root / "gpt2-left", "gpt2", "left"),
        "llama-right": _build(root / "llama-right", "llama", "right"),
        "llama-left": _build(root / "llama-left", "llama", "left"),
    }


def _states(folder: Path, texts: list[str]) -> list[tuple]:
    """Per text, alone (no padding): (hidden_states tuple, last_hidden_state), float64 numpy."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(folder))
    model = AutoModel.from_pretrained(str(folder)).eval()
    out = []
    for t in texts:
        enc = tok(t, return_tensors="pt")
        with torch.no_grad():
            res = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                        output_hidden_states=True)
        out.append(([h[0].double().numpy() for h in res.hidden_states], res.last_hidden_state[0].double().numpy()))
    return out


def _pool(h: np.ndarray, mode: str) -> np.ndarray:
    return {"mean": h.mean(0), "cls": h[0], "last": h[-1], "max": h.max(0)}[mode]


def _reference(states, layer, mode, normalize=False) -> np.ndarray:
    rows = np.stack([_pool(hs[layer] if layer is not None else last, mode) for hs, last in states])
    if normalize:
        rows = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return rows


@pytest.fixture(scope="module")
def refs(models) -> dict[str, list]:
    return {k: _states(f, SENTS) for k, f in models.items()}


@pytest.fixture(autouse=True)
def _isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _forbid_loading(monkeypatch):
    E.clear_model_cache()

    def boom(*a, **k):
        raise AssertionError("model must not be loaded")

    monkeypatch.setattr(E, "_load_model", boom)


ONE_BATCH = len(SENTS)  # every sentence in one batch, padded to the longest


# ----------------------------------------------------------------------------- agreement
def test_specs_read_encoder_and_decoder_from_the_config(models):
    bert, gpt2, llama = (get_model_spec(models[k]) for k in ("bert", "gpt2-left", "llama-right"))
    assert (bert.decoder, bert.pooling, bert.normalize, bert.n_layers, bert.dim) == (False, ("mean",), False, 3, 32)
    assert (gpt2.decoder, gpt2.pooling, gpt2.padding_side, gpt2.n_layers) == (True, ("last",), "left", 3)
    assert (llama.decoder, llama.pooling, llama.padding_side, llama.n_layers) == (True, ("last",), "right", 2)
    assert bert.padding_side == "right"
    from transformers import AutoTokenizer

    for kind in ("gpt2-left", "llama-right"):  # decoders without a pad token: padded all the same
        assert AutoTokenizer.from_pretrained(str(models[kind])).pad_token_id is None


@pytest.mark.parametrize("kind", ["bert", "gpt2-right", "gpt2-left", "llama-right", "llama-left"])
@pytest.mark.parametrize("pooling", ["mean", "cls", "last", "max"])
def test_every_pooling_and_layer_matches_hidden_states(models, refs, kind, pooling):
    """One padded batch of sentences of different lengths = each sentence alone, for layers
    0, -1, a middle one, the default (last_hidden_state) and the sweep of all."""
    n_layers = get_model_spec(models[kind]).n_layers
    sweep = embed_sentences(SENTS, model=models[kind], cache=False, batch_size=ONE_BATCH, pooling=pooling,
                            layer="all")
    assert sweep.shape == (n_layers + 1, len(SENTS), 32) and sweep.dtype == np.float32
    for layer in range(n_layers + 1):
        _close(sweep[layer], _reference(refs[kind], layer, pooling),
               err_msg=f"{kind} {pooling} sweep layer {layer}")
    for layer in (0, -1, 1, None):
        X = embed_sentences(SENTS, model=models[kind], cache=False, batch_size=ONE_BATCH, pooling=pooling,
                            layer=layer)
        _close(X, _reference(refs[kind], layer, pooling),
               err_msg=f"{kind} {pooling} layer {layer}")
    # padding matters here: the sentences' token counts differ
    assert len({len(hs[0]) for hs, _ in refs[kind]}) > 3


def test_layers_differ_and_padding_side_does_not(models, refs):
    a = embed_sentences(SENTS, model=models["gpt2-left"], cache=False, batch_size=ONE_BATCH, layer="all")
    b = embed_sentences(SENTS, model=models["gpt2-right"], cache=False, batch_size=ONE_BATCH, layer="all")
    _close(a, b)
    assert min(np.abs(a[i] - a[j]).max() for i in range(4) for j in range(i)) > 1e-2
    # the test has teeth: the left-padded batch run without position ids differs (GPT-2's
    # positions are absolute), so the agreement above needs them
    import torch
    from transformers import AutoModel, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(models["gpt2-left"]))
    tok.pad_token = tok.eos_token
    enc = tok(SENTS, padding=True, return_tensors="pt")
    assert (enc["attention_mask"][:, 0] == 0).any()  # some rows are padded on the left
    model = AutoModel.from_pretrained(str(models["gpt2-left"])).eval()
    with torch.no_grad():
        naive = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                      output_hidden_states=True).hidden_states[1][:, -1].numpy()
    assert np.abs(naive - _reference(refs["gpt2-left"], 1, "last")).max() > 1e-3


def test_defaults_are_last_token_for_decoders_and_mean_for_encoders(models, refs):
    for kind, mode in (("bert", "mean"), ("gpt2-left", "last"), ("llama-left", "last")):
        X = embed_sentences(SENTS, model=models[kind], cache=False, batch_size=3)
        _close(X, _reference(refs[kind], None, mode), err_msg=kind)
        assert not np.allclose(np.linalg.norm(X, axis=1), 1.0)


def test_normalize(models, refs):
    X = embed_sentences(SENTS, model=models["llama-left"], cache=False, layer=1, pooling="mean", normalize=True)
    _close(X, _reference(refs["llama-left"], 1, "mean", normalize=True))
    np.testing.assert_allclose(np.linalg.norm(X, axis=1), 1.0, atol=1e-6)


def test_prompt_template_is_applied_before_tokenising(models):
    texts = [PROMPT.replace("{caption}", s) for s in SENTS]
    for kind in ("bert", "gpt2-left"):
        ref = _states(models[kind], texts)
        X = embed_sentences(SENTS, model=models[kind], cache=False, prompt=PROMPT, layer=2, pooling="mean")
        _close(X, _reference(ref, 2, "mean"), err_msg=kind)
        plain = embed_sentences(SENTS, model=models[kind], cache=False, layer=2, pooling="mean")
        assert np.abs(X - plain).max() > 1e-3


def test_max_length_truncates(models, refs):
    X = embed_sentences(SENTS, model=models["gpt2-right"], cache=False, max_length=3, layer=3, pooling="mean")
    trunc = [([h[:3] for h in hs], last[:3]) for hs, last in refs["gpt2-right"]]
    _close(X, _reference(trunc, 3, "mean"))


def test_caption_aggregation_is_the_mean_over_captions(models):
    for layer in (1, "all"):
        X = embed_captions(CAPTIONS, model=models["llama-left"], cache=False, layer=layer, pooling="mean")
        for i, caps in enumerate(CAPTIONS):
            manual = embed_sentences(caps, model=models["llama-left"], cache=False, layer=layer, pooling="mean")
            np.testing.assert_allclose(X[..., i, :], manual.mean(axis=-2), atol=1e-6)
    assert X.shape == (3, len(CAPTIONS), 32)
    assert embed_captions([], model=models["bert"], layer="all").shape == (4, 0, 32)


def test_sentence_transformers_models_keep_todays_output(monkeypatch):
    """MiniLM: the default path is unchanged; layer=-1 reads the same states, and explicit
    options equal to its config give the same spec (the same cache key)."""
    from brainllm_utils.weights import MINILM, resolve_model

    folder = resolve_model(MINILM)
    default = embed_sentences(SENTS, model=folder, cache=False)
    last = embed_sentences(SENTS, model=folder, cache=False, layer=-1)
    np.testing.assert_allclose(last, default, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(default, axis=1), 1.0, atol=1e-5)
    assert get_model_spec(folder, pooling="mean", normalize=True) == get_model_spec(folder)
    assert get_model_spec(folder).key("fp32") == get_model_spec(folder, pooling="mean").key("fp32")
    assert get_model_spec(folder, layer=-1).key("fp32") != get_model_spec(folder).key("fp32")

    class NSD:
        def captions(self, ids):
            return [CAPTIONS[i] for i in ids]

    np.testing.assert_array_equal(features.build("hf:minilm", NSD(), [0, 2]), features.build("minilm", NSD(), [0, 2]))


# ----------------------------------------------------------------------------- cache
def test_cache_hit_is_identical_and_every_option_is_in_the_key(monkeypatch, models):
    folder = models["gpt2-left"]
    opts = dict(pooling="mean", layer=2, prompt=PROMPT, normalize=False, max_length=20)
    first = embed_sentences(SENTS, model=folder, **opts)
    _forbid_loading(monkeypatch)
    np.testing.assert_array_equal(embed_sentences(SENTS, model=folder, **opts), first)
    np.testing.assert_array_equal(embed_sentences(SENTS[2:0:-1], model=folder, **opts), first[2:0:-1])  # store
    for change in (dict(pooling="max"), dict(layer=1), dict(layer=None), dict(prompt="{caption} !"),
                   dict(prompt=None), dict(normalize=True), dict(max_length=19), dict(precision="bf16")):
        with pytest.raises(AssertionError, match="must not be loaded"):
            embed_sentences(SENTS, model=folder, **{**opts, **change})
    from dataclasses import replace

    spec = get_model_spec(folder, **{k: v for k, v in opts.items()})
    assert replace(spec, padding_side="right").key("fp32") != spec.key("fp32")
    assert replace(spec, files_id="x").key("fp32") != spec.key("fp32")  # tokenizer or config edited


def test_sweep_caches_each_layer(monkeypatch, models, tmp_path):
    folder = models["bert"]
    sweep = embed_sentences(SENTS, model=folder, layer="all", pooling="cls")
    part = embed_sentences(SENTS, model=folder, layer=[3, 1], pooling="cls")
    _forbid_loading(monkeypatch)
    np.testing.assert_array_equal(part, sweep[[3, 1]])
    for layer in range(4):
        np.testing.assert_array_equal(embed_sentences(SENTS, model=folder, layer=layer, pooling="cls"),
                                      sweep[layer])
        np.testing.assert_array_equal(embed_sentences(SENTS, model=folder, layer=layer - 4, pooling="cls"),
                                      sweep[layer])
    np.testing.assert_array_equal(embed_sentences(SENTS[:3], model=folder, layer="all", pooling="cls"),
                                  sweep[:, :3])
    lists = list((tmp_path / "cache" / "embeddings" / "bert").glob("*.npy"))
    assert len(lists) == 4 + 4  # the sweep's 4 layers and the subset's 4 ([3, 1] was a hit)


class FakeNSD:
    def captions(self, ids):
        return [CAPTIONS[i] for i in ids]


def _count_forward(monkeypatch) -> list:
    calls: list = []
    real = E._load_model

    def counting(spec, device, precision):
        loaded = real(spec, device, precision)
        loaded.model.register_forward_hook(lambda *a: calls.append(spec.name))
        return loaded

    E.clear_model_cache()
    monkeypatch.setattr(E, "_load_model", counting)
    return calls


def test_layer_sweep_names_run_the_model_once(monkeypatch, models):
    calls = _count_forward(monkeypatch)
    try:
        names = features.layer_sweep(f"hf:{models['gpt2-left']}?pooling=mean")
        assert len(names) == 4
        X = features.build_many(names, FakeNSD(), [0, 1, 2], batch_size=64)
        assert len(calls) == 1  # one batch, one forward pass, four layers
        states = [_states(models["gpt2-left"], caps) for caps in CAPTIONS]
        for layer, name in enumerate(names):
            assert features.parse_text_model_name(name)[1]["layer"] == layer
            ref = np.stack([_reference(s, layer, "mean").mean(axis=0) for s in states])
            _close(X[name], ref, err_msg=name)
        single = features.build(f"hf:{models['gpt2-left']}?layer=2&pooling=mean", FakeNSD(), [0, 1, 2])
        np.testing.assert_array_equal(single, X[names[2]])  # the sweep's cache
        assert len(calls) == 1
        # a single-layer name alone runs one forward pass without the others' hidden states
        features.build(f"hf:{models['gpt2-left']}?layer=2&pooling=max", FakeNSD(), [0, 1, 2], batch_size=64)
        assert len(calls) == 2
    finally:
        E.clear_model_cache()


def test_sweep_forward_count_equals_a_single_layer_run(monkeypatch, models):
    calls = _count_forward(monkeypatch)
    try:
        embed_sentences(SENTS, model=models["bert"], cache=False, layer="all", batch_size=3)
        n_sweep = len(calls)
        embed_sentences(SENTS, model=models["bert"], cache=False, layer=1, batch_size=3)
        assert n_sweep == len(calls) - n_sweep == 3  # 7 distinct sentences in batches of 3
    finally:
        E.clear_model_cache()


# ----------------------------------------------------------------------------- names
def test_hf_names_round_trip_and_build(models, refs):
    folder = str(models["llama-right"])
    name = features.text_model_name(folder, layer=-1, pooling="cls", prompt="50% & {caption}", normalize=True,
                                    max_length=30)
    assert name == f"hf:{folder}?layer=-1&pooling=cls&prompt=50%25 %26 {{caption}}&normalize=true&max_length=30"
    model, opts = features.parse_text_model_name(name)
    assert model == folder
    assert opts == dict(layer=-1, pooling="cls", prompt="50% & {caption}", normalize=True, max_length=30)
    X = features.build(f"hf:{folder}?layer=1&pooling=max", FakeNSD(), [1])
    ref = _reference(_states(models["llama-right"], CAPTIONS[1]), 1, "max").mean(axis=0)
    _close(X[0], ref)
    assert features.lookup(name)[1] == {"hf_spec": name[3:]}


@pytest.mark.parametrize("name,match", [
    ("hf:", "no model"),
    ("hf:minilm?", "nothing after"),
    ("hf:minilm?depth=3", "unknown option 'depth'"),
    ("hf:minilm?layer=1&layer=2", "'layer' is given twice"),
    ("hf:minilm?layer", "has no '='"),
    ("hf:minilm?layer=", "'layer' has an empty value"),
    ("hf:minilm?layer=1.5", "layer must be an int"),
    ("hf:minilm?layer=all", "layer_sweep"),
    ("hf:minilm?pooling=sum", "pooling must be one of"),
    ("hf:minilm?normalize=yes", "normalize must be 'true' or 'false'"),
    ("hf:minilm?max_length=0", "max_length must be a positive int"),
    ("hf:minilm?prompt=no placeholder", r"exactly once"),
    ("hf:minilm?prompt={caption}{caption}", r"exactly once"),
    ("hf:minilm?sweep=all", "needs 'layer'"),
    ("hf:minilm?layer=1&sweep=1;2", "sweep must be"),
])
def test_bad_names_are_refused_naming_the_option(name, match):
    with pytest.raises(ValueError, match=match):
        features.parse_text_model_name(name)
    with pytest.raises(ValueError, match=match):
        features.build(name, FakeNSD(), [0])


def test_layer_sweep_names(models):
    base = f"hf:{models['bert']}?pooling=cls"
    assert features.layer_sweep(base) == [f"hf:{models['bert']}?layer={i}&pooling=cls&sweep=all" for i in range(4)]
    assert features.layer_sweep(base, layers=[-1, 1]) == [
        f"hf:{models['bert']}?layer={i}&pooling=cls&sweep=3,1" for i in (3, 1)]
    with pytest.raises(ValueError, match="already has option 'layer'"):
        features.layer_sweep(base + "&layer=2")
    with pytest.raises(ValueError, match="out of range"):
        features.layer_sweep(base, layers=[4])
    with pytest.raises(ValueError, match="repeats"):
        features.layer_sweep(base, layers=[3, -1])
    with pytest.raises(ValueError, match="not an hf:"):
        features.layer_sweep("mpnet")
    with pytest.raises(ValueError, match="layers must be 'all'"):
        features.layer_sweep(base, layers="every")
    with pytest.raises(ValueError, match="not one of its sweep"):
        features.build(f"hf:{models['bert']}?layer=2&sweep=0,1", FakeNSD(), [0])


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(pooling="sum"), ValueError, "pooling must be one of"),
    (dict(pooling=1), TypeError, "pooling must be a str"),
    (dict(layer=4), ValueError, r"layer=4 is out of range .* 4 entries"),
    (dict(layer=-5), ValueError, "layer=-5 is out of range"),
    (dict(layer=1.0), TypeError, "layer must be an int"),
    (dict(layer=True), TypeError, "layer must be an int"),
    (dict(layer="first"), ValueError, "layer must be an int, None, 'all'"),
    (dict(layer=[]), ValueError, "empty list"),
    (dict(layer=[0, -4]), ValueError, "repeats"),
    (dict(prompt="{caption}"[1:]), ValueError, "exactly once"),
    (dict(prompt=3), TypeError, "prompt must be a str"),
    (dict(normalize="yes"), TypeError, "normalize must be a bool"),
    (dict(max_length=0), ValueError, "max_length must be a positive int"),
    (dict(max_length=2.5), TypeError, "max_length must be a positive int"),
    (dict(max_length=65), ValueError, "exceeds the 64 positions"),
])
def test_bad_options_are_refused_before_loading(monkeypatch, models, kwargs, exc, match):
    _forbid_loading(monkeypatch)
    with pytest.raises(exc, match=match):
        embed_sentences(["a dog"], model=models["bert"], **kwargs)


def test_a_sentence_without_tokens_is_named(models):
    with pytest.raises(ValueError, match="has no tokens"):
        embed_sentences(["A dog.", ""], model=models["gpt2-right"], cache=False)
    assert embed_sentences([""], model=models["bert"], cache=False).shape == (1, 32)  # [CLS] [SEP]


def test_encoder_decoder_models_are_refused(tmp_path):
    folder = tmp_path / "t5"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "t5", "is_encoder_decoder": True,
                                                    "d_model": 32, "num_layers": 2}))
    with pytest.raises(NotImplementedError, match="encoder-decoder"):
        get_model_spec(folder)


def test_sentence_transformers_lasttoken_pooling_matches_sentence_transformers(tmp_path):
    """A sentence-transformers folder whose Pooling config says ``lasttoken`` is read as
    ``last`` and agrees with ``SentenceTransformer.encode`` (the outside reference)."""
    import os

    from sentence_transformers import SentenceTransformer

    from brainllm_utils.weights import MINILM, resolve_model

    src = resolve_model(MINILM)
    dst = tmp_path / "lasttoken"
    dst.mkdir()
    for f in src.iterdir():
        if f.is_file() and f.name != "modules.json":
            os.symlink(f, dst / f.name)
    (dst / "1_Pooling").mkdir()
    (dst / "1_Pooling" / "config.json").write_text(json.dumps(
        {"word_embedding_dimension": 384, "pooling_mode_lasttoken": True, "pooling_mode_mean_tokens": False}))
    (dst / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}]))
    assert get_model_spec(dst).pooling == ("last",)
    ours = embed_sentences(SENTS, model=dst, cache=False, batch_size=ONE_BATCH)
    ref = SentenceTransformer(str(dst), device="cpu").encode(SENTS, batch_size=ONE_BATCH, normalize_embeddings=False)
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=1e-5)
    explicit = embed_sentences(SENTS, model=src, cache=False, batch_size=ONE_BATCH, pooling="last", normalize=False)
    np.testing.assert_array_equal(explicit, ours)


def test_sharded_checkpoints_are_read_and_keyed_by_every_shard(tmp_path, models):
    """Large models come in shards (an index and several files): they load, give the same
    numbers, and a touched shard changes the model's cache key."""
    import os

    from transformers import AutoModel

    folder = tmp_path / "sharded"
    AutoModel.from_pretrained(str(models["llama-left"])).save_pretrained(folder, max_shard_size="20KB")
    for f in models["llama-left"].iterdir():
        if f.name.startswith("tokenizer") or f.name == "special_tokens_map.json":
            os.symlink(f, folder / f.name)
    shards = sorted(folder.glob("model-*.safetensors"))
    assert len(shards) > 1 and not (folder / "model.safetensors").exists()
    X = embed_sentences(SENTS, model=folder, cache=False, layer="all")
    ref = embed_sentences(SENTS, model=models["llama-left"], cache=False, layer="all")
    np.testing.assert_array_equal(X, ref)
    before = get_model_spec(folder).key("fp32")
    os.utime(shards[-1], ns=(0, 10**9))
    assert get_model_spec(folder).key("fp32") != before


def test_sweep_on_the_sandbox_feeds_rsa(tiny_root, models):
    """Wiring on the real reader: every layer of a sweep built on the generated sandbox is
    the caption mean of that layer and gives a finite RDM per layer."""
    from brainllm_utils.nsd import NSD
    from brainllm_utils.rsa import compute_rdm

    nsd = NSD(tiny_root)
    ids = np.arange(12)
    names = features.layer_sweep(f"hf:{models['llama-left']}?pooling=mean&normalize=true")
    X = features.build_many(names, nsd, ids)
    direct = embed_captions(nsd.captions(ids), model=models["llama-left"], cache=False, layer="all",
                            pooling="mean", normalize=True)
    rdms = []
    for layer, name in enumerate(names):
        assert X[name].shape == (12, 32)
        _close(X[name], direct[layer], err_msg=name)
        rdms.append(compute_rdm(X[name], device="cpu"))
        assert rdms[-1].shape == (66,) and np.isfinite(rdms[-1]).all()
    assert np.abs(rdms[0] - rdms[-1]).max() > 1e-3


def test_check_text_model_name_checks_against_the_model_without_loading(monkeypatch, models):
    """What a batch's parameter check can call: the whole name against the model's config."""
    _forbid_loading(monkeypatch)
    good = f"hf:{models['gpt2-left']}?layer=-1&pooling=max"
    assert features.check_text_model_name(good) == good
    for name in features.layer_sweep(f"hf:{models['bert']}", layers=[0, 2]):
        assert features.check_text_model_name(name) == name
    for bad, match in [(f"hf:{models['gpt2-left']}?layer=4", "out of range"),
                       (f"hf:{models['bert']}?max_length=100", "exceeds the 64 positions"),
                       (f"hf:{models['bert']}?layer=1&sweep=0,2", "not one of its sweep"),
                       (f"hf:{models['bert']}?layer=1&sweep=0,9", "out of range"),
                       ("hf:minilm?colour=red", "unknown option 'colour'")]:
        with pytest.raises(ValueError, match=match):
            features.check_text_model_name(bad)
    with pytest.raises(features.ModelNotFoundError):
        features.check_text_model_name("hf:no/such-model-here")
