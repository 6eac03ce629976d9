"""Caption metrics against values worked out by hand on tiny examples."""

from __future__ import annotations

import math

import numpy as np
import pytest

from brainllm_utils.caption_metrics import (
    cider_d,
    corpus_bleu,
    human_ceiling,
    rouge_l,
    score_captions,
    score_leave_one_out,
    sentence_bleu,
    tokenize,
)

CAT = "the cat sat on the mat"
REF = "the cat is on the mat"


def test_tokenize():
    assert tokenize("A Dog, running!  In the PARK.") == ["a", "dog", "running", "in", "the", "park"]
    assert tokenize("don't stop -- 'quoted'") == ["don't", "stop", "quoted"]
    assert tokenize("") == []


def test_bleu_by_hand():
    # 1-grams 5/6 (the×2, cat, on, mat), 2-grams 3/5 (the cat, on the, the mat),
    # 3-grams 1/4 (on the mat), 4-grams 0/3; equal lengths → BP = 1
    assert sentence_bleu(CAT, [REF], max_n=1) == pytest.approx(5 / 6)
    assert sentence_bleu(CAT, [REF], max_n=2) == pytest.approx(math.sqrt(5 / 6 * 3 / 5))
    assert sentence_bleu(CAT, [REF], max_n=3) == pytest.approx(0.5)  # (5/6·3/5·1/4)^(1/3)
    assert sentence_bleu(CAT, [REF]) == 0.0  # no 4-gram match, no smoothing
    # c = 5 < r = 6: p = 4/5, 3/4, 2/3, 1/2; BP = exp(1 - 6/5)
    assert sentence_bleu("a b c d e", ["a b c d f g"]) == pytest.approx(math.exp(-0.2) * 0.2**0.25)
    assert sentence_bleu(REF, [REF]) == pytest.approx(1.0)


def test_bleu_clipping_and_multiple_references():
    # "the" clipped at its maximum count over references (2): 2/3; closest ref length 3
    assert sentence_bleu("the the the", ["the cat", "the the dog"], max_n=1) == pytest.approx(2 / 3)
    # closest reference length: tie between 3 and 5 for c = 4 → the shorter (3): BP = 1
    assert sentence_bleu("a b c d", ["a b c", "a b c d e"], max_n=1) == pytest.approx(1.0)
    # c = 2, refs 3 and 5: r = 3 → BP = exp(1 - 3/2)
    assert sentence_bleu("a b", ["a b c", "a b c d e"], max_n=1) == pytest.approx(math.exp(-0.5))


def test_corpus_bleu_sums_before_combining():
    cands = ["a b c d e", "a b c d"]
    refs = [["a b c d f g"], ["a b c d"]]
    p = [8 / 9, 6 / 7, 4 / 5, 2 / 3]
    expect = math.exp(1 - 10 / 9) * math.exp(np.mean(np.log(p)))
    assert corpus_bleu(cands, refs) == pytest.approx(expect)
    assert corpus_bleu(cands, refs) != pytest.approx(np.mean([sentence_bleu(c, r) for c, r in zip(cands, refs)]))


def test_bleu_matches_nltk_if_installed():
    nltk_bleu = pytest.importorskip("nltk.translate.bleu_score")
    cands = [tokenize(CAT), tokenize("a b c d e"), tokenize("a man rides a horse on the beach")]
    refs = [[tokenize(REF)], [tokenize("a b c d f g")], [tokenize("a man riding a horse on a beach"), tokenize("a person on a horse")]]
    assert corpus_bleu(cands, refs) == pytest.approx(nltk_bleu.corpus_bleu(refs, cands), abs=1e-12)


def test_rouge_l_by_hand():
    # LCS("a b c", "a x b y c z") = 3: P = 1, R = 1/2, F = 2.44·0.5/(0.5 + 1.44)
    assert rouge_l("a b c", ["a x b y c z"]) == pytest.approx(2.44 * 0.5 / (0.5 + 1.44))
    assert rouge_l(CAT, [REF]) == pytest.approx(5 / 6)  # LCS 5 of 6 both ways
    # P and R maximised separately over references: P = 1 (ref 1), R = 2/3 (ref 2)
    val = rouge_l("a b", ["a b c d", "a b c"])
    assert val == pytest.approx(2.44 * 1 * (2 / 3) / (2 / 3 + 1.44 * 1))
    assert rouge_l("q", ["a b"]) == 0.0


def test_cider_d_by_hand_unigrams():
    refs = [["a cat"], ["a dog"]]
    # N = 2, df(a) = 2 → idf 0; df(cat) = df(dog) = 1 → idf log 2
    score, per = cider_d(["a cat", "a cat"], refs, max_n=1)
    np.testing.assert_allclose(per, [10.0, 0.0])
    assert score == pytest.approx(5.0)
    # tf 2 vs 1 with clipping: min(2l, l)·l / (2l·l) = 0.5
    assert cider_d(["cat cat", "dog"], refs, max_n=1)[1][0] == pytest.approx(5.0)
    # one token shorter than the reference: Gaussian penalty exp(-1/(2·36))
    assert cider_d(["cat", "dog"], refs, max_n=1)[1][0] == pytest.approx(10 * math.exp(-1 / 72))


def test_cider_d_exact_match_is_ten():
    refs = [["w x y z"], ["p q r s"], ["k l m n"]]
    score, per = cider_d(["w x y z", "p q r s", "k l m n"], refs)
    np.testing.assert_allclose(per, 10.0)
    # averaged over references: a second, unrelated reference halves it
    score2, per2 = cider_d(["w x y z"], [["w x y z", "e f g h"]], df={"__N__": 3, ("w",): 1})
    assert per2[0] == pytest.approx(5.0)


def test_score_captions_and_human_ceiling():
    refs = [["a dog runs on the grass", "a dog runs on the grass"], ["two men play chess in a park", "two men play chess in a park"]]
    out = score_captions(["a dog runs on the grass", "a cat sleeps"], refs)
    assert set(out) == {"bleu4", "rouge_l", "cider_d", "per_image"}
    assert out["per_image"]["rouge_l"][0] == pytest.approx(1.0)
    assert out["per_image"]["bleu4"][0] == pytest.approx(1.0)
    assert out["per_image"]["bleu4"][1] == 0.0
    ceil = human_ceiling(refs)  # identical references → perfect agreement
    assert ceil["bleu4"] == pytest.approx(1.0) and ceil["rouge_l"] == pytest.approx(1.0)
    assert len(ceil["per_round"]) == 2
    ceil2 = human_ceiling([["a b c d", "a b c e"], ["x y z w", "x y z q", "x y"]])
    assert 0 < ceil2["rouge_l"] < 1
    with pytest.raises(ValueError):
        human_ceiling([["only one"]])


def _six_captions(seed: int, n_images: int = 12):
    """Images with 6 captions each, drawn from a small vocabulary so that n-grams recur."""
    rng = np.random.default_rng(seed)
    scenes = [["a", "dog", "runs", "on", "the", "grass", "in", "a", "park"],
              ["two", "men", "play", "chess", "at", "a", "wooden", "table", "outside"],
              ["a", "red", "bus", "drives", "down", "a", "busy", "city", "street"]]
    out = []
    for k in range(n_images):
        base = scenes[k % len(scenes)]
        caps = []
        for _ in range(6):
            words = [w if rng.random() > 0.35 else str(rng.choice(["big", "small", "old", "the", "a", "near"]))
                     for w in base]
            caps.append(" ".join(words[: rng.integers(6, len(words) + 1)]))
        out.append(caps)
    return out


def test_leave_one_out_scores_a_human_like_candidate_at_the_ceiling():
    """One more human caption, scored like for like, reaches the human ceiling exactly
    (averaged over which of the 6 captions plays the candidate); scored against all the
    other 5 captions (one reference more than the humans get) it beats the ceiling."""
    six = _six_captions(0)
    loo, every, ceiling = [], [], []
    for r in range(6):
        cand = [caps[r] for caps in six]
        refs = [caps[:r] + caps[r + 1:] for caps in six]
        loo.append(score_leave_one_out(cand, refs))
        every.append(score_captions(cand, refs))
        ceiling.append(human_ceiling(refs))
    for m in ("bleu4", "rouge_l", "cider_d"):
        want = np.mean([c[m] for c in ceiling])
        assert 0 < want
        assert np.mean([x[m] for x in loo]) == pytest.approx(want, rel=1e-12)
    # the asymmetric scoring (5 references vs the humans' 4) is biased upwards
    assert np.mean([x["bleu4"] for x in every]) > 1.02 * np.mean([c["bleu4"] for c in ceiling])
    assert np.mean([x["rouge_l"] for x in every]) > 1.02 * np.mean([c["rouge_l"] for c in ceiling])


def test_score_leave_one_out_rounds_and_checks():
    refs = [["a b c d", "a b c e", "a b x y"], ["p q r s", "p q r t"], ["only one"]]
    out = score_leave_one_out(["a b c d", "p q r s", "anything"], refs)
    assert len(out["per_round"]) == 3 and out["n_images"] == 2  # the 1-caption image is left out
    assert np.isnan(out["per_image"]["rouge_l"][2])
    assert out["per_round"][2]["rouge_l"] == pytest.approx(1.0)  # round 2: only image 0, its copy stays
    assert out["per_image"]["rouge_l"][1] == pytest.approx(np.mean([rouge_l("p q r s", ["p q r t"]), 1.0]))
    with pytest.raises(ValueError):
        score_leave_one_out(["a"], refs)
    with pytest.raises(ValueError):
        score_leave_one_out(["a"], [["only one"]])
