"""Decoding: identification, retrieval with a fake embedder, and the real MiniLM model."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from brainllm_utils.decoding import (
    CaptionRetriever,
    decode_embeddings,
    embedding_correlation,
    identification_accuracy,
    identification_rank,
    read_caption_file,
    similarity_matrix,
)

BANK = ["a dog runs on the grass", "two men play chess", "a red bus on a street", "a bowl of soup", "a child flies a kite"]


def fake_embed(sentences, dim=32, **kwargs):
    """Deterministic pseudo-embedding (unit norm) from a hash of each sentence."""
    out = []
    for s in sentences:
        seed = int.from_bytes(hashlib.sha256(s.encode()).digest()[:8], "little")
        v = np.random.default_rng(seed).standard_normal(dim)
        out.append(v / np.linalg.norm(v))
    return np.asarray(out, dtype=np.float32)


def test_identification_rank_perfect_and_by_hand(rng):
    E = rng.standard_normal((6, 10))
    np.testing.assert_array_equal(identification_rank(E, E), 0)
    assert identification_accuracy(E, E) == 1.0
    # predictions that point at the next item: own item beaten by exactly one other
    P = np.roll(E, -1, axis=0)
    S = similarity_matrix(P, E)
    expect = [(S[i] > S[i, i]).sum() for i in range(6)]
    np.testing.assert_array_equal(identification_rank(P, E), expect)
    assert np.all(identification_rank(P, E) >= 1)
    # hand example with cosine: pred 0 is closer to item 1
    P2 = np.array([[0.0, 1.0], [0.0, 1.0]])
    T2 = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(identification_rank(P2, T2, metric="cosine"), [1, 0])


def test_embedding_correlation(rng):
    E = rng.standard_normal((5, 20))
    P = 2 * E + 1
    np.testing.assert_allclose(embedding_correlation(P, E), 1.0)
    Q = rng.standard_normal((5, 20))
    np.testing.assert_allclose(embedding_correlation(Q, E), [np.corrcoef(a, b)[0, 1] for a, b in zip(Q, E)], rtol=1e-12)


def test_decode_embeddings_recovers_linear_map(rng):
    from brainllm_utils.encoding import RidgeCV

    E = rng.standard_normal((150, 8))
    X = E @ rng.standard_normal((8, 40)) + 0.3 * rng.standard_normal((150, 40))
    P = decode_embeddings(X[:120], E[:120], X[120:], RidgeCV(alphas=np.logspace(-2, 3, 6), device="cpu"))
    assert P.shape == (30, 8)
    assert embedding_correlation(P, E[120:]).mean() > 0.9
    assert np.mean(identification_rank(P, E[120:]) == 0) > 0.8


def test_retrieval_finds_own_caption():
    r = CaptionRetriever(BANK, embed_fn=fake_embed)
    res = r.query(fake_embed(BANK), k=3)
    assert res.best() == BANK
    np.testing.assert_allclose(res.scores[:, 0], 1.0, atol=1e-6)
    assert res.scores.shape == (5, 3) and np.all(np.diff(res.scores, axis=1) <= 1e-7)
    np.testing.assert_array_equal(res.indices[:, 0], np.arange(5))
    # batching over the bank gives the same answer
    r2 = CaptionRetriever(BANK, embed_fn=fake_embed, batch_size=2)
    res2 = r2.query(fake_embed(BANK), k=3)
    np.testing.assert_array_equal(res.indices, res2.indices)
    # one query, k larger than the bank
    one = r.query(fake_embed([BANK[2]])[0] * 5.0, k=10)
    assert one.captions[0][0] == BANK[2] and len(one.captions[0]) == 5
    # the bank is embedded once
    calls = []

    def counting(s, **kw):
        calls.append(len(s))
        return fake_embed(s)

    r3 = CaptionRetriever(BANK, embed_fn=counting)
    r3.query(fake_embed(BANK[:1]))
    r3.query(fake_embed(BANK[1:2]))
    assert calls == [5]
    with pytest.raises(ValueError, match="dimension"):
        r.query(np.ones(7))


def test_from_file_plain_and_tsv(tmp_path):
    plain = tmp_path / "bank.txt"
    plain.write_text("a dog runs\n\ntwo cats sleep\n", encoding="utf-8")
    assert read_caption_file(plain) == ["a dog runs", "two cats sleep"]
    tsv = tmp_path / "Train_GCC-training.tsv"
    tsv.write_text("a dog runs\thttp://x/1.jpg\nactor attends the premiere\thttp://x/2.jpg\n", encoding="utf-8")
    r = CaptionRetriever.from_file(tsv, embed_fn=fake_embed)
    assert r.captions == ["a dog runs", "actor attends the premiere"]
    assert r.query_sentences(["actor attends the premiere"], k=1).best() == ["actor attends the premiere"]
    assert read_caption_file(tsv, max_captions=1) == ["a dog runs"]


def test_real_minilm_retrieval(tmp_path):
    emb = pytest.importorskip("brainllm_utils.embeddings")
    try:
        emb.get_model_spec("sentence-transformers/all-MiniLM-L6-v2")
    except Exception as exc:  # weights not installed
        pytest.skip(f"MiniLM weights unavailable: {exc}")
    import torch

    torch.set_num_threads(1)
    r = CaptionRetriever(BANK, model="sentence-transformers/all-MiniLM-L6-v2", cache=tmp_path, device="cpu")
    res = r.query_sentences(BANK, k=2)
    assert res.best() == BANK
    np.testing.assert_allclose(res.scores[:, 0], 1.0, atol=1e-4)
    # a paraphrase finds its caption
    assert r.query_sentences(["a puppy running across a lawn"], k=1).best() == [BANK[0]]
