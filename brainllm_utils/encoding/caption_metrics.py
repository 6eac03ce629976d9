"""Caption metrics computed offline: BLEU-4, ROUGE-L and CIDEr-D, plus a human ceiling.

Definitions follow coco-caption (Papineni et al. 2002; Lin 2004; Vedantam et al. 2015),
re-implemented from the papers and the coco-caption documentation:

- **Tokenizer** (:func:`tokenize`): lower-case, every character other than a letter,
  digit or in-word apostrophe becomes a space, split on whitespace. This approximates
  coco-caption's PTB tokenizer followed by punctuation removal (it does not split
  clitics: ``"don't"`` stays one token).
- **BLEU-n**: clipped n-gram precisions (counts clipped by the maximum count in any
  reference), geometric mean over n = 1…4, brevity penalty ``exp(1 − r/c)`` when
  ``c < r`` with ``r`` the reference length closest to the candidate length (shorter on
  ties). Corpus BLEU sums counts and lengths over all sentences before combining.
  No smoothing by default: a zero precision gives 0.
- **ROUGE-L**: longest common subsequence; per reference ``P = LCS/|cand|`` and
  ``R = LCS/|ref|``; the maxima over references are combined as
  ``F = (1+β²)PR/(R + β²P)`` with β = 1.2; the corpus score is the mean.
- **CIDEr-D**: for n = 1…4, tf-idf vectors ``tf(g)·log(N/df(g))`` where ``df(g)`` is the
  number of images whose references contain g (at least 1) and ``N`` the number of
  images; similarity ``Σ_g min(v_c, v_r)·v_r / (‖v_c‖‖v_r‖)`` (clipping), times the
  Gaussian length penalty ``exp(−(|c| − |r|)²/(2·6²))``; averaged over n and over
  references, times 10. The corpus score is the mean over images.

**Like-for-like ceiling.** A human caption can only be scored against the image's *other*
captions (4 of NSD's usual 5), while the paper scored the reconstructions against all 5. More
references raise BLEU (clipping by the maximum count over references), ROUGE-L (maximum
over references) and change CIDEr-D's document frequencies, so the two numbers were not
comparable. :func:`score_leave_one_out` scores any candidate exactly as
:func:`human_ceiling` scores the humans: in round ``i`` against each image's captions
without its ``i``-th (CIDEr-D frequencies from that round's references), averaged over
rounds. A reconstruction that is as good as one more human caption then scores the ceiling
in expectation (exactly, averaged over which caption plays the reconstruction).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import numpy as np

from .._utils.docs import fill_doc
from .._utils.numeric import check_float, check_int

__all__ = [
    "tokenize",
    "bleu",
    "sentence_bleu",
    "corpus_bleu",
    "rouge_l",
    "cider_d",
    "score_captions",
    "score_leave_one_out",
    "human_ceiling",
]

_NON_WORD = re.compile(r"[^a-z0-9']+")


def tokenize(text: str) -> list[str]:
    """Lower-case, strip punctuation, split: ``"A dog, running!"`` → ``['a', 'dog', 'running']``.

    Parameters
    ----------
    text : str
        A caption (anything else is converted with ``str``).

    Returns
    -------
    tokens : list of str
        Letters, digits and in-word apostrophes; clitics stay attached (``"don't"``).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}: {text!r:.60}")
    text = _NON_WORD.sub(" ", text.lower())
    toks = [t.strip("'") for t in text.split()]
    return [t for t in toks if t]


def _toks(x) -> list[str]:
    if isinstance(x, list):
        if not all(isinstance(t, str) for t in x):
            raise TypeError(f"a tokenised caption must be a list of str, got {x!r:.60}")
        return x
    return tokenize(x)


def _check_corpus(candidates, references) -> None:
    """``candidates`` (one per image) and ``references`` (a list per image) of equal length."""
    for name, v in (("candidates", candidates), ("references", references)):
        if isinstance(v, (str, bytes)) or not hasattr(v, "__len__"):
            raise TypeError(f"{name} must be a list with one entry per image, got {type(v).__name__}: "
                            f"{v!r:.60}")
    if len(candidates) != len(references):
        raise ValueError(f"candidates and references differ in length ({len(candidates)} vs "
                         f"{len(references)}): one candidate and one list of references per image")
    for i, refs in enumerate(references):
        if isinstance(refs, (str, bytes)):
            raise TypeError(f"references[{i}] must be a list of reference captions, not a single string")


def _ngrams(tokens: Sequence[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def _bleu_stats(cand: list[str], refs: list[list[str]], max_n: int):
    """Clipped matches and totals per n, candidate length, closest reference length."""
    matches, totals = [], []
    for n in range(1, max_n + 1):
        c = _ngrams(cand, n)
        maxref: Counter = Counter()
        for r in refs:
            for g, k in _ngrams(r, n).items():
                maxref[g] = max(maxref[g], k)
        matches.append(sum(min(k, maxref[g]) for g, k in c.items()))
        totals.append(max(len(cand) - n + 1, 0))
    clen = len(cand)
    rlen = min((abs(len(r) - clen), len(r)) for r in refs)[1]
    return np.array(matches, float), np.array(totals, float), clen, rlen


def _combine(matches, totals, clen, rlen, smooth: bool) -> float:
    if clen == 0:
        return 0.0
    if smooth:  # add-one on n > 1 (Lin & Och 2004), for sentence-level use
        matches = matches + np.r_[0.0, np.ones(len(matches) - 1)]
        totals = totals + np.r_[0.0, np.ones(len(totals) - 1)]
    if np.any(matches == 0) or np.any(totals == 0):
        return 0.0
    logp = np.mean(np.log(matches / totals))
    bp = 1.0 if clen >= rlen else math.exp(1.0 - rlen / clen)
    return float(bp * math.exp(logp))


@fill_doc
def sentence_bleu(candidate, references, max_n: int = 4, smooth: bool = False) -> float:
    """BLEU-``max_n`` of one candidate against its references (strings or token lists).

    Parameters
    ----------
    %(candidate)s
    %(references_one)s
    %(max_n)s
    smooth : bool, default=False
        Add one to the matches and totals of n > 1 (Lin & Och 2004), for sentence-level
        use; without it a zero precision gives 0.

    Returns
    -------
    float
        BLEU in [0, 1].
    """
    max_n = check_int(max_n, "max_n", min_value=1)
    if isinstance(references, (str, bytes)):
        raise TypeError("references must be a list of reference captions, not a single string")
    refs = [_toks(r) for r in references]
    if not refs:
        raise ValueError("need at least one reference")
    return _combine(*_bleu_stats(_toks(candidate), refs, max_n), smooth)


@fill_doc
def corpus_bleu(candidates: Sequence, references: Sequence[Sequence], max_n: int = 4) -> float:
    """Corpus BLEU-``max_n``: counts and lengths summed over sentences first.

    Parameters
    ----------
    %(candidates)s
    %(references)s
    %(max_n)s

    Returns
    -------
    float
        Corpus BLEU in [0, 1] (unsmoothed).
    """
    max_n = check_int(max_n, "max_n", min_value=1)
    _check_corpus(candidates, references)
    M, T, C, R = np.zeros(max_n), np.zeros(max_n), 0, 0
    for cand, refs in zip(candidates, references):
        m, t, c, r = _bleu_stats(_toks(cand), [_toks(x) for x in refs], max_n)
        M, T, C, R = M + m, T + t, C + c, R + r
    return _combine(M, T, C, R, smooth=False)


@fill_doc
def bleu(candidates, references, max_n: int = 4) -> dict:
    """Corpus BLEU-1…``max_n`` (``{"bleu1": …, "bleu4": …}``).

    Parameters
    ----------
    %(candidates)s
    %(references)s
    %(max_n)s

    Returns
    -------
    scores : dict of str to float
        ``"bleu1"`` … ``"bleu{max_n}"``, each :func:`corpus_bleu`.
    """
    max_n = check_int(max_n, "max_n", min_value=1)
    _check_corpus(candidates, references)
    return {f"bleu{n}": corpus_bleu(candidates, references, n) for n in range(1, max_n + 1)}


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


@fill_doc
def rouge_l(candidate, references, beta: float = 1.2) -> float:
    """ROUGE-L F-measure of one candidate (coco-caption: β = 1.2, max P and R over refs).

    Parameters
    ----------
    %(candidate)s
    %(references_one)s
    beta : float, default=1.2
        Weight of recall against precision in ``F = (1+β²)PR/(R + β²P)``.

    Returns
    -------
    float
        ROUGE-L in [0, 1] (0 for an empty candidate or no references).
    """
    beta = check_float(beta, "beta", min_value=0, min_inclusive=False)
    if isinstance(references, (str, bytes)):
        raise TypeError("references must be a list of reference captions, not a single string")
    cand = _toks(candidate)
    refs = [_toks(r) for r in references]
    if not cand or not refs:
        return 0.0
    ps, rs = [], []
    for r in refs:
        lcs = _lcs(cand, r)
        ps.append(lcs / len(cand))
        rs.append(lcs / len(r) if r else 0.0)
    p, r = max(ps), max(rs)
    if p == 0 or r == 0:
        return 0.0
    return float((1 + beta**2) * p * r / (r + beta**2 * p))


def _tfidf(tokens, n, df, log_n):
    c = _ngrams(tokens, n)
    vec = {g: k * (log_n - math.log(max(1.0, df.get(g, 0.0)))) for g, k in c.items()}
    norm = math.sqrt(sum(v * v for v in vec.values()))
    return vec, norm


@fill_doc
def cider_d(candidates: Sequence, references: Sequence[Sequence], sigma: float = 6.0, max_n: int = 4, df: dict | None = None) -> tuple[float, np.ndarray]:
    """CIDEr-D: ``(corpus score, per-image scores)``.

    Parameters
    ----------
    %(candidates)s
    %(references)s
    sigma : float, default=6.0
        Width of the Gaussian length penalty ``exp(−(|c| − |r|)²/(2σ²))``.
    %(max_n)s
    df : dict, optional
        Document frequencies: n-gram tuple → count, with ``df["__N__"]`` the number of
        documents. ``None``: computed from ``references`` (one document per image).

    Returns
    -------
    score : float
        Mean over images (0 for no images).
    per_image : ndarray of float64 of shape (n_images,)
        Each image's CIDEr-D.
    """
    sigma = check_float(sigma, "sigma", min_value=0, min_inclusive=False)
    max_n = check_int(max_n, "max_n", min_value=1)
    _check_corpus(candidates, references)
    refs_t = [[_toks(r) for r in refs] for refs in references]
    if df is None:
        df = _document_frequency(refs_t, max_n)
    log_n = math.log(float(df.get("__N__", len(refs_t))))
    scores = np.zeros(len(candidates))
    for i, (cand, refs) in enumerate(zip(candidates, refs_t)):
        ct = _toks(cand)
        total = 0.0
        for r in refs:
            delta = len(ct) - len(r)
            sims = []
            for n in range(1, max_n + 1):
                vc, nc = _tfidf(ct, n, df, log_n)
                vr, nr = _tfidf(r, n, df, log_n)
                val = sum(min(v, vr[g]) * vr[g] for g, v in vc.items() if g in vr)
                if nc > 0 and nr > 0:
                    val /= nc * nr
                else:
                    val = 0.0
                sims.append(val * math.exp(-(delta**2) / (2 * sigma**2)))
            total += float(np.mean(sims))
        scores[i] = 10.0 * total / max(len(refs), 1)
    return float(scores.mean()) if len(scores) else 0.0, scores


def _document_frequency(refs_t: Sequence[Sequence[list[str]]], max_n: int) -> dict:
    df: Counter = Counter()
    for refs in refs_t:
        seen = set()
        for r in refs:
            for n in range(1, max_n + 1):
                seen.update(_ngrams(r, n))
        df.update(seen)
    out = dict(df)
    out["__N__"] = len(refs_t)
    return out


def score_captions(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """BLEU-4 (corpus), ROUGE-L (mean) and CIDEr-D (mean), with per-image arrays.

    Parameters
    ----------
    candidates : sequence of str
        One candidate caption per image (e.g. decoded).
    references : sequence of sequence of str
        For each image, its reference captions.

    Returns
    -------
    scores : dict
        ``{"bleu4", "rouge_l", "cider_d", "per_image": {"bleu4", "rouge_l", "cider_d"}}``:
        corpus values (floats) and per-image arrays of shape (n_images,) (per-image
        BLEU-4 is the unsmoothed sentence BLEU).
    """
    _check_corpus(candidates, references)
    cands = [tokenize(c) for c in candidates]
    refs = [[tokenize(r) for r in rs] for rs in references]
    cd, cd_i = cider_d(cands, refs)
    rl_i = np.array([rouge_l(c, r) for c, r in zip(cands, refs)])
    b_i = np.array([sentence_bleu(c, r) for c, r in zip(cands, refs)])
    return dict(
        bleu4=corpus_bleu(cands, refs),
        rouge_l=float(rl_i.mean()) if len(rl_i) else 0.0,
        cider_d=cd,
        per_image=dict(bleu4=b_i, rouge_l=rl_i, cider_d=cd_i),
    )


def _loo_rounds(refs):
    """Round ``i``: the images with more than ``i`` (and at least 2) captions, and each such
    image's captions without its ``i``-th."""
    n_max = max((len(r) for r in refs), default=0)
    for i in range(n_max):
        idx = [k for k, r in enumerate(refs) if len(r) > i and len(r) >= 2]
        if idx:
            yield i, idx, [refs[k][:i] + refs[k][i + 1:] for k in idx]


def _round_scores(cands, others) -> tuple[dict, np.ndarray, np.ndarray]:
    rl = np.array([rouge_l(c, o) for c, o in zip(cands, others)])
    cd, cd_i = cider_d(cands, others)
    return (dict(bleu4=corpus_bleu(cands, others), rouge_l=float(rl.mean()), cider_d=cd), rl, cd_i)


def score_leave_one_out(candidates: Sequence[str], references: Sequence[Sequence[str]]) -> dict:
    """Score candidates against the same leave-one-out reference sets as the human ceiling.

    In round ``i`` every image with more than ``i`` captions (and at least 2) is scored
    against its captions without the ``i``-th, exactly the references
    :func:`human_ceiling` gives that image's ``i``-th human caption in round ``i`` (same
    count, same CIDEr-D document frequencies); the result is the mean over rounds.
    Images with fewer than 2 captions are left out, as in the ceiling.

    Parameters
    ----------
    candidates : sequence of str
        One candidate caption per image (e.g. reconstructed).
    references : sequence of sequence of str
        For each image, its human captions.

    Returns
    -------
    scores : dict
        ``bleu4``, ``rouge_l``, ``cider_d`` (means over rounds), ``per_round`` (a list of
        dicts with the same keys), ``per_image`` (``rouge_l`` and ``cider_d``: each image's
        mean over its rounds, NaN for an image with fewer than 2 captions) and
        ``n_images`` (images scored).

    Raises
    ------
    ValueError
        When the lengths differ or no image has 2 or more captions.

    Notes
    -----
    Averaged over which of an image's captions plays the candidate, one more human caption
    scores exactly :func:`human_ceiling` (each ordered pair of captions appears once as
    candidate/left-out in both), so the ceiling is the like-for-like reference; scoring
    against all captions (:func:`score_captions`) gives candidates one reference more.
    """
    if len(candidates) != len(references):
        raise ValueError(f"candidates ({len(candidates)}) and references ({len(references)}) differ in length")
    cands = [tokenize(c) for c in candidates]
    refs = [[tokenize(r) for r in rs] for rs in references]
    rounds = []
    rl_sum, cd_sum, count = np.zeros(len(refs)), np.zeros(len(refs)), np.zeros(len(refs))
    for _, idx, others in _loo_rounds(refs):
        sc, rl, cd_i = _round_scores([cands[k] for k in idx], others)
        rounds.append(sc)
        rl_sum[idx] += rl
        cd_sum[idx] += cd_i
        count[idx] += 1
    if not rounds:
        raise ValueError("need at least one image with 2 or more captions")
    out = {k: float(np.mean([r[k] for r in rounds])) for k in ("bleu4", "rouge_l", "cider_d")}
    with np.errstate(invalid="ignore", divide="ignore"):
        out["per_image"] = dict(rouge_l=rl_sum / count, cider_d=cd_sum / count)
    out["per_round"] = rounds
    out["n_images"] = int((count > 0).sum())
    return out


def human_ceiling(references: Sequence[Sequence[str]]) -> dict:
    """Human-to-human ceiling: each reference scored against the image's other references.

    Round ``i`` takes the i-th caption of every image with more than ``i`` captions (and
    at least 2) as the candidate and the others as references; CIDEr-D document
    frequencies come from that round's references. Score reconstructions with
    :func:`score_leave_one_out` to compare like with like.

    Parameters
    ----------
    references : sequence of sequence of str
        For each image, its human captions (images with fewer than 2 are skipped).

    Returns
    -------
    ceiling : dict
        The mean over rounds of ``bleu4``, ``rouge_l`` and ``cider_d``, plus
        ``per_round`` (a list of dicts with the same keys).

    Raises
    ------
    ValueError
        When no image has 2 or more captions.
    """
    refs = [[tokenize(r) for r in rs] for rs in references]
    rounds = [_round_scores([refs[k][i] for k in idx], others)[0] for i, idx, others in _loo_rounds(refs)]
    if not rounds:
        raise ValueError("need at least one image with 2 or more captions")
    out = {k: float(np.mean([r[k] for r in rounds])) for k in ("bleu4", "rouge_l", "cider_d")}
    out["per_round"] = rounds
    return out
