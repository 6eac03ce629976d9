"""The built-in feature spaces (``shared/docs/paper_methods.md`` §2): sentence encoders,
categories, word averages, word classes and scrambled captions; any local Hugging Face text
model as ``hf:<model>[?options]`` (``_hf``)."""

from __future__ import annotations

import numpy as np

from ._hf import hf_space
from ._registry import register, register_pattern
from ._text import POS_FALLBACK, POS_GROUPS, flat_captions, mean_by_owner, pos_words, scramble_caption, tag_captions
from .weights import MINILM, MPNET

__all__: list[str] = []


def _embed_words_mean(words_per_image: list[list[str]], model: str, **opts) -> np.ndarray:
    """Embed each distinct word once; the image vector is the mean over its word tokens."""
    from .embeddings import embed_sentences

    vocab = sorted({w for ws in words_per_image for w in ws})
    index = {w: i for i, w in enumerate(vocab)}
    E = embed_sentences(vocab, model=model, **opts)
    flat = np.array([index[w] for ws in words_per_image for w in ws], dtype=np.int64)
    owner = np.repeat(np.arange(len(words_per_image)), [len(ws) for ws in words_per_image])
    return mean_by_owner(E[flat], owner, len(words_per_image))


def _embed_opts(options: dict) -> dict:
    return {k: options[k] for k in ("device", "batch_size", "cache") if k in options}


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


register_pattern(r"sbert:(?P<model>.+)", _sbert_factory)
# any local Hugging Face encoder or decoder, options in the name (``_hf``: the syntax); the
# pattern takes everything after ``hf:`` so that a bad option is named by the parser
register_pattern(r"hf:(?P<hf_spec>.*)", hf_space)


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
    caps, flat, owner = flat_captions(nsd, ids)
    words: list[list[str]] = [[] for _ in caps]
    for toks, i in zip(tag_captions(flat), owner):
        words[i].extend(w for w, _ in toks)
    return _embed_words_mean(words, MPNET, **_embed_opts(options))


def _pos_space(group: str):
    def fn(nsd, ids, **options):
        return _embed_words_mean(pos_words(nsd, ids, group), MPNET, **_embed_opts(options))

    return fn


def _pos_sentence_space(group: str):
    def fn(nsd, ids, **options):
        from .embeddings import embed_sentences

        caps, flat, owner = flat_captions(nsd, ids)
        tags = POS_GROUPS[group]
        texts = [" ".join(w for w, t in toks if t in tags) or POS_FALLBACK[group]
                 for toks in tag_captions(flat)]
        E = embed_sentences(texts, model=MPNET, **_embed_opts(options))
        return mean_by_owner(E, owner, len(caps))

    return fn


for _group in POS_GROUPS:
    register(f"mpnet_{_group}", f"{_group} ({', '.join(POS_GROUPS[_group])}) pooled over captions, "
             "embedded word by word, averaged", "words")(_pos_space(_group))
    register(f"mpnet_{_group}_sentence", f"per caption, its {_group} as one string embedded as a "
             "sentence, averaged over captions", "words")(_pos_sentence_space(_group))


@register("mpnet_scrambled", "each caption's words shuffled (seeded), embedded, averaged", "order")
def _mpnet_scrambled(nsd, ids, seed: int = 0, **options):
    from .embeddings import embed_sentences

    caps, flat, owner = flat_captions(nsd, ids)
    texts = []
    for k, toks in enumerate(tag_captions(flat)):
        # one stream per (image, caption): results do not depend on which images are asked
        rng = np.random.default_rng([int(seed), int(ids[owner[k]]), k - int(np.searchsorted(owner, owner[k]))])
        texts.append(scramble_caption([w for w, _ in toks], rng))
    E = embed_sentences(texts, model=MPNET, **_embed_opts(options))
    return mean_by_owner(E, owner, len(caps))

