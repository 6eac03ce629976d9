"""Feature-space registry: shapes and the property each space must have."""

from __future__ import annotations

import numpy as np
import pytest

from brainllm_utils import features
from brainllm_utils.features import _text

CAPTIONS = [
    ["A brown dog chasing a small cat across a grassy field.",
     "The dog runs after the cat in the park."],
    ["A cat chasing a brown dog across a grassy field.",
     "Two people riding horses on the beach."],
    ["A pizza on a wooden table.", "A man is eating pizza at the table."],
]
CATEGORIES = ["person", "dog", "cat", "horse", "pizza", "dining table", "sports ball"]
MULTIHOT = np.array([[0, 1, 1, 0, 0, 0, 0], [1, 1, 1, 1, 0, 0, 0], [0, 0, 0, 0, 1, 1, 0]],
                    dtype=np.float32)


class FakeNSD:
    """The two methods feature spaces use, on hand-written captions."""

    def captions(self, ids):
        return [CAPTIONS[i] for i in ids]

    def categories(self, ids):
        return MULTIHOT[np.asarray(ids)], CATEGORIES


@pytest.fixture(autouse=True)
def _cache(cache_dir):
    yield


def test_pos_filter_keeps_exactly_the_expected_words():
    tagged = features.tag_captions(["A brown dog chasing a small cat across a grassy field."])
    words = dict(tagged[0])
    assert [w for w, t in tagged[0] if t in features.POS_GROUPS["nouns"]] == ["dog", "cat", "field"]
    assert [w for w, t in tagged[0] if t in features.POS_GROUPS["verbs"]] == ["chasing"]
    assert [w for w, t in tagged[0] if t in features.POS_GROUPS["adjectives"]] == ["brown", "small", "grassy"]
    assert [w for w, t in tagged[0] if t in features.POS_GROUPS["prepositions"]] == ["across"]
    assert words["."] == "."
    nouns = _text.pos_words(FakeNSD(), np.array([2]), "nouns")
    assert nouns == [["pizza", "table", "man", "pizza", "table"]]
    assert _text.pos_words(FakeNSD(), np.array([2]), "adverbs") == [["something"]]


def test_scrambling_keeps_the_bag_of_words():
    toks = [w for w, _ in features.tag_captions(CAPTIONS[0][:1])[0]]
    rng = np.random.default_rng(3)
    scrambled = features.scramble_caption(toks, rng)
    assert sorted(scrambled.split(" ")) == sorted(toks)
    assert scrambled.split(" ") != toks


def test_multihot_matches_categories():
    X = features.build("multihot", FakeNSD(), [2, 0])
    np.testing.assert_array_equal(X, MULTIHOT[[2, 0]])


def test_unknown_and_duplicate_names():
    with pytest.raises(ValueError, match="unknown feature space 'mpnett'.*mpnet"):
        features.build("mpnett", FakeNSD(), [0])
    with pytest.raises(ValueError, match="already registered"):
        features.register("mpnet", "again")(lambda nsd, ids: None)
    assert {"mpnet", "multihot", "mpnet_scrambled", "mpnet_nouns"} <= set(features.available())
    assert "mpnet_prepositions" in features.describe().index


def _vectors_file(tmp_path, header: bool):
    rng = np.random.default_rng(0)
    words = ["dog", "cat", "pizza", "table", "fireplug", "ball", "person", "horse", "dining",
             "brown", "the", "a", "field"]
    vecs = {w: rng.normal(size=4).round(4).astype(np.float32) for w in words}
    lines = [f"{len(words)} 4"] if header else []
    lines += [w + " " + " ".join(f"{v:.4f}" for v in vecs[w]) for w in words]
    path = tmp_path / ("vectors.vec" if header else "glove.txt")
    path.write_text("\n".join(lines) + "\n")
    return path, vecs


@pytest.mark.parametrize("lib,header", [("fasttext", True), ("glove", False)])
def test_static_word_vectors(tmp_path, lib, header):
    path, vecs = _vectors_file(tmp_path, header)
    X = features.build(f"{lib}_categories", FakeNSD(), [0, 2], vectors_path=path)
    np.testing.assert_allclose(X[0], (vecs["dog"] + vecs["cat"]) / 2, atol=1e-6)
    np.testing.assert_allclose(X[1], (vecs["pizza"] + vecs["dining"] + vecs["table"]) / 3, atol=1e-6)
    nouns = features.build(f"{lib}_nouns", FakeNSD(), [2], vectors_path=path)
    # "man" is out of vocabulary and skipped
    np.testing.assert_allclose(nouns[0], (vecs["pizza"] + vecs["table"]) / 2, atol=1e-6)
    all_words = features.build(f"{lib}_all", FakeNSD(), [0], vectors_path=path)
    toks = [w.lower() for c in CAPTIONS[0] for w, _ in features.tag_captions([c])[0]]
    known = [vecs[w] for w in toks if w in vecs]  # OOV tokens are skipped
    np.testing.assert_allclose(all_words[0], np.mean(known, axis=0), atol=1e-6)


def test_static_vectors_need_a_file(monkeypatch):
    monkeypatch.delenv("BRAINLLM_GLOVE", raising=False)
    with pytest.raises(FileNotFoundError, match="BRAINLLM_GLOVE"):
        features.build("glove_all", FakeNSD(), [0])
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        features.build("glove_all", FakeNSD(), [0], vectors_path="/nope.txt")


def test_bad_vectors_line_is_named(tmp_path):
    p = tmp_path / "bad.vec"
    p.write_text("2 3\ndog 1 2 3\ncat 1 2\n")
    with pytest.raises(ValueError, match=r"bad.vec:3"):
        features.load_word_vectors(p)


# ------------------------------------------------------------ with the real encoders
@pytest.fixture(scope="module")
def embed():
    pytest.importorskip("brainllm_utils.embeddings")
    from brainllm_utils.embeddings import embed_sentences

    return embed_sentences


def test_mpnet_is_the_unnormalised_mean_of_caption_embeddings(embed):
    X = features.build("mpnet", FakeNSD(), [0, 1])
    assert X.shape == (2, 768) and X.dtype == np.float32
    for row, i in enumerate([0, 1]):
        np.testing.assert_allclose(X[row], embed(CAPTIONS[i]).mean(axis=0), atol=1e-5)
    assert np.all(np.linalg.norm(X, axis=1) < 0.999)


def test_word_level_spaces_follow_their_definition(embed):
    nouns = features.build("mpnet_nouns", FakeNSD(), [2])
    np.testing.assert_allclose(nouns[0], embed(["pizza", "table", "man", "pizza", "table"]).mean(axis=0), atol=1e-5)
    sent = features.build("mpnet_nouns_sentence", FakeNSD(), [2])
    np.testing.assert_allclose(sent[0], embed(["pizza table", "man pizza table"]).mean(axis=0), atol=1e-5)
    cat = features.build("mpnet_category_all", FakeNSD(), [0, 2])
    np.testing.assert_allclose(cat, embed(["dog cat", "pizza dining table"]), atol=1e-5)
    avg = features.build("mpnet_word_avg", FakeNSD(), [2])
    toks = [w for c in CAPTIONS[2] for w, _ in features.tag_captions([c])[0]]
    np.testing.assert_allclose(avg[0], embed(toks).mean(axis=0), atol=1e-5)


def test_word_average_cannot_tell_role_reversals_but_mpnet_can(embed):
    a, b = "A dog chasing a cat.", "A cat chasing a dog."

    class Pair(FakeNSD):
        def captions(self, ids):
            return [[a], [b]]

    avg = features.build("mpnet_word_avg", Pair(), [0, 1])
    full = features.build("mpnet", Pair(), [0, 1])
    np.testing.assert_allclose(avg[0], avg[1], atol=1e-6)  # same bag of words
    assert np.abs(full[0] - full[1]).max() > 1e-3


def test_scrambled_space_is_seeded(embed):
    s0 = features.build("mpnet_scrambled", FakeNSD(), [0, 1], seed=0)
    s0b = features.build("mpnet_scrambled", FakeNSD(), [1], seed=0)
    s1 = features.build("mpnet_scrambled", FakeNSD(), [0, 1], seed=1)
    np.testing.assert_allclose(s0[1], s0b[0], atol=1e-6)  # independent of the other images asked
    assert np.abs(s0 - s1).max() > 1e-4
    assert s0.shape == (2, 768)


def test_other_encoders_by_name(embed):
    X = features.build("minilm", FakeNSD(), [0])
    assert X.shape == (1, 384)
    Y = features.build("sbert:sentence-transformers/all-MiniLM-L6-v2", FakeNSD(), [0])
    np.testing.assert_allclose(X, Y, atol=1e-6)
def test_mean_by_owner_equals_a_float64_scatter_add():
    """features._text.mean_by_owner (a sparse indicator product) against numpy's unbuffered
    np.add.at in float64: equal to the last bit, for shuffled owners and single items."""
    from brainllm_utils.features._text import mean_by_owner

    rng = np.random.default_rng(3)
    for n, m in [(50, 400), (5, 5), (1, 3)]:
        owner = rng.permutation(np.concatenate([np.arange(n), rng.integers(0, n, m - n)]))
        V = rng.standard_normal((m, 7)).astype(np.float32)
        ref = np.zeros((n, 7))
        np.add.at(ref, owner, V.astype(np.float64))
        ref = (ref / np.bincount(owner, minlength=n)[:, None]).astype(np.float32)
        got = mean_by_owner(V, owner, n)
        assert got.dtype == np.float32 and np.array_equal(got, ref)
    with pytest.raises(ValueError, match=r"images \[1\] have no items"):
        mean_by_owner(np.ones((2, 3), np.float32), np.array([0, 2]), 3)
