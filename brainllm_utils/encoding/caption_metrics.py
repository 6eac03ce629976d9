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
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Sequence

import numpy as np

from .._utils.docs import fill_doc

__all__ = [
    "tokenize",
    "bleu",
    "sentence_bleu",
    "corpus_bleu",
    "rouge_l",
    "cider_d",
    "score_captions",
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
    text = _NON_WORD.sub(" ", str(text).lower())
    toks = [t.strip("'") for t in text.split()]
    return [t for t in toks if t]


def _toks(x) -> list[str]:
    return x if isinstance(x, list) else tokenize(x)


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
    if len(candidates) != len(references):
        raise ValueError("candidates and references differ in length")
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
    if len(candidates) != len(references):
        raise ValueError("candidates and references differ in length")
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


def human_ceiling(references: Sequence[Sequence[str]]) -> dict:
    """Human-to-human ceiling: each reference scored against the image's other references.

    Round ``i`` takes the i-th caption of every image with more than ``i`` captions (and
    at least 2) as the candidate and the others as references; CIDEr-D document
    frequencies come from that round's references.

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
    n_max = max((len(r) for r in refs), default=0)
    rounds = []
    for i in range(n_max):
        idx = [k for k, r in enumerate(refs) if len(r) > i and len(r) >= 2]
        if not idx:
            continue
        cands = [refs[k][i] for k in idx]
        others = [refs[k][:i] + refs[k][i + 1 :] for k in idx]
        rounds.append(
            dict(
                bleu4=corpus_bleu(cands, others),
                rouge_l=float(np.mean([rouge_l(c, o) for c, o in zip(cands, others)])),
                cider_d=cider_d(cands, others)[0],
            )
        )
    if not rounds:
        raise ValueError("need at least one image with 2 or more captions")
    out = {k: float(np.mean([r[k] for r in rounds])) for k in ("bleu4", "rouge_l", "cider_d")}
    out["per_round"] = rounds
    return out
