"""Static word vectors (fastText, GloVe) from a user-supplied file: ``fasttext_*`` / ``glove_*``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .._utils.cache import file_identity
from ._registry import register_pattern
from ._text import CATEGORY_RENAMES, POS_GROUPS, flat_captions, pos_words, tag_captions

__all__ = ["load_word_vectors"]

_VECTORS: dict[tuple, dict[str, np.ndarray]] = {}  # the last file read, per process


def load_word_vectors(path, vocabulary=None) -> dict[str, np.ndarray]:
    """Read a fastText ``.vec`` (header "n d") or GloVe ``.txt`` (no header) vectors file.

    Only words in ``vocabulary`` are kept when it is given (the full files hold millions of
    words). Lines with the wrong number of values raise an error naming the line.

    Parameters
    ----------
    path : str or path-like
        The vectors file (e.g. fastText ``crawl-300d-2M.vec`` or GloVe
        ``glove.840B.300d.txt``).
    vocabulary : iterable of str, optional
        Words to keep; ``None``: every word of the file.

    Returns
    -------
    vectors : dict of str to ndarray of float32 of shape (n_dims,)
        Word → vector, plus the key ``"__dim__"`` holding zeros of the vectors' length.

    Raises
    ------
    FileNotFoundError
        When ``path`` is not a file (the message says which files to get and
        ``BRAINLLM_FASTTEXT`` / ``BRAINLLM_GLOVE``).
    ValueError
        For a line with too few values, or a file without vectors.
    """
    if vocabulary is not None:
        if isinstance(vocabulary, (str, bytes)):
            raise TypeError("vocabulary must be an iterable of words, not a single string; wrap it in a list")
        vocabulary = list(vocabulary)
        bad = [w for w in vocabulary if not isinstance(w, str)]
        if bad:
            raise TypeError(f"vocabulary must hold words (str), got {bad[0]!r}")
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
        caps, flat, owner = flat_captions(nsd, ids)
        words_per_image = [[] for _ in caps]
        for toks, i in zip(tag_captions(flat), owner):
            words_per_image[i].extend(w.lower() for w, _ in toks)
    elif kind in POS_GROUPS:
        words_per_image = pos_words(nsd, ids, kind)
    else:
        raise ValueError(f"{lib}_{kind}: kind must be all, categories or one of {list(POS_GROUPS)}")
    vocab = {w for ws in words_per_image for w in ws}
    vocab |= {w.capitalize() for w in vocab}
    if not path.is_file():
        load_word_vectors(path)  # raises, naming the file and how to get one
    key = (file_identity(path), frozenset(vocab))
    if key not in _VECTORS:
        _VECTORS.clear()
        _VECTORS[key] = load_word_vectors(path, vocab)
    return _mean_vectors(words_per_image, _VECTORS[key])




register_pattern(r"(?P<lib>fasttext|glove)_(?P<kind>[a-z]+)", _static_factory)
