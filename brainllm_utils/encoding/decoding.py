"""Decoding (RQ3): brain activity → caption embedding → nearest captions.

- :func:`fit_decoder` / :func:`decode_embeddings`: ridge from voxels to the embedding
  dimensions (one penalty per dimension by default; :class:`~brainllm_utils.encoding.RidgeCV`).
- :func:`embedding_correlation`: per-image Pearson r between predicted and true embedding.
- :func:`identification_rank`: rank of the true image among the test images by
  correlation (0 = best), and :func:`identification_accuracy`.
- :class:`CaptionRetriever`: embeds a caption bank once (disk cache of
  :func:`brainllm_utils.embeddings.embed_sentences`, plus memory) and returns the
  nearest captions by cosine similarity.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from .._utils.docs import fill_doc
from .._utils.numeric import check_int
from ._scoring import pearson_r
from ._sklearn_api import RidgeCV

__all__ = [
    "fit_decoder",
    "decode_embeddings",
    "embedding_correlation",
    "similarity_matrix",
    "identification_rank",
    "identification_accuracy",
    "Retrieval",
    "CaptionRetriever",
    "read_caption_file",
]


def _same_rows(a, b, name_a: str, name_b: str) -> None:
    """Two arrays with one row per sample each (a mismatch names both arguments)."""
    if np.ndim(a) == 0 or np.ndim(b) == 0 or np.shape(a)[0] != np.shape(b)[0]:
        raise ValueError(f"{name_a} and {name_b} must have one row per sample each, got shapes "
                         f"{np.shape(a)} and {np.shape(b)}")


@fill_doc
def fit_decoder(X_train, E_train, estimator=None):
    """Fit brain (n, voxels) → embedding (n, d). Default: ``RidgeCV()`` (per-dimension α).

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_voxels)
        Brain activity of the training images.
    E_train : array-like of shape (n_train, n_dims)
        Their caption embeddings (the decoder's targets).
    %(estimator)s
        With :class:`RidgeCV`, one penalty per embedding dimension.

    Returns
    -------
    estimator : object
        The fitted estimator (what its ``fit`` returns).
    """
    _same_rows(X_train, E_train, "X_train", "E_train")
    est = RidgeCV() if estimator is None else estimator
    return est.fit(X_train, E_train)


@fill_doc
def decode_embeddings(X_train, E_train, X_test, estimator=None) -> np.ndarray:
    """Fit on train and return predicted embeddings for ``X_test`` (float64, (n_test, d)).

    Parameters
    ----------
    X_train : array-like of shape (n_train, n_voxels)
        Brain activity of the training images.
    E_train : array-like of shape (n_train, n_dims)
        Their caption embeddings.
    X_test : array-like of shape (n_test, n_voxels)
        Brain activity of the test images.
    %(estimator)s

    Returns
    -------
    E_pred : ndarray of float64 of shape (n_test, n_dims)
        Decoded embeddings.
    """
    est = fit_decoder(X_train, E_train, estimator)
    return np.asarray(est.predict(X_test), dtype=np.float64)


@fill_doc
def embedding_correlation(pred, true) -> np.ndarray:
    """Per-image Pearson r between predicted and true embeddings (rows), shape (n,).

    Parameters
    ----------
    %(pred_true)s

    Returns
    -------
    r : ndarray of shape (n_items,)
        Pearson r of each row of ``pred`` with the same row of ``true``.
    """
    _same_rows(pred, true, "pred", "true")
    return pearson_r(np.asarray(pred), np.asarray(true), axis=1)


@fill_doc
def similarity_matrix(pred, true, metric: str = "correlation") -> np.ndarray:
    """``S[i, j]`` = similarity of prediction i with true embedding j (correlation or cosine).

    Parameters
    ----------
    pred : array-like of shape (n_pred, n_dims)
        Predicted embeddings.
    true : array-like of shape (n_true, n_dims)
        True embeddings.
    %(decoding_metric)s

    Returns
    -------
    S : ndarray of float64 of shape (n_pred, n_true)
        Similarities; a row of zero norm (constant, for correlation) has NaN similarity with
        everything (the package's rule for Pearson).
    """
    A = np.asarray(pred, dtype=np.float64)
    B = np.asarray(true, dtype=np.float64)
    if A.shape[1] != B.shape[1]:
        raise ValueError("pred and true must have the same embedding dimension")
    if metric == "correlation":
        A = A - A.mean(1, keepdims=True)
        B = B - B.mean(1, keepdims=True)
    elif metric != "cosine":
        raise ValueError("metric must be 'correlation' or 'cosine'")
    na = np.linalg.norm(A, axis=1, keepdims=True)
    nb = np.linalg.norm(B, axis=1, keepdims=True)
    # the package's rule for Pearson (pearson_r): a constant row has no correlation → NaN
    A = np.where(na > 0, A / np.where(na > 0, na, 1.0), np.nan)
    B = np.where(nb > 0, B / np.where(nb > 0, nb, 1.0), np.nan)
    return A @ B.T


@fill_doc
def identification_rank(pred, true, metric: str = "correlation") -> np.ndarray:
    """Rank of the true item among all items for each prediction (0 = identified).

    The rank counts the items strictly more similar to prediction i than its own true
    item (ties count in its favour). Chance mean rank is ``(n − 1)/2``.

    Parameters
    ----------
    %(pred_true)s
    %(decoding_metric)s

    Returns
    -------
    ranks : ndarray of int of shape (n_items,)
        Rank of item i's true embedding for prediction i, in 0 … n_items − 1; a constant
        prediction or true embedding (NaN similarity) identifies nothing: rank
        n_items − 1.
    """
    S = similarity_matrix(pred, true, metric)
    if S.shape[0] != S.shape[1]:
        raise ValueError("pred and true must hold the same items")
    own = np.diag(S)
    rank = (S > own[:, None]).sum(1)
    # a constant prediction (or true item) has no similarity: it identifies nothing
    return np.where(np.isnan(own), S.shape[0] - 1, rank)


@fill_doc
def identification_accuracy(pred, true, metric: str = "correlation") -> float:
    """Pairwise identification accuracy: mean fraction of other items beaten (chance 0.5).

    Parameters
    ----------
    %(pred_true)s
    %(decoding_metric)s

    Returns
    -------
    float
        ``1 − mean rank / (n_items − 1)`` (:func:`identification_rank`); 1 is perfect.
    """
    n = len(pred)
    if n < 2:
        raise ValueError(f"pred needs at least 2 items to identify one among others, got {n}")
    return float(1.0 - identification_rank(pred, true, metric).mean() / max(n - 1, 1))


@dataclass
class Retrieval:
    """Result of :meth:`CaptionRetriever.query`.

    Attributes
    ----------
    captions : list of list of str
        The ``k`` nearest bank captions of each query, ``(n_queries, k)``.
    scores : ndarray of float32 of shape (n_queries, k)
        Their cosine similarities, descending.
    indices : ndarray of int64 of shape (n_queries, k)
        Their rows in the bank.
    """

    captions: list[list[str]]  # (n_queries, k)
    scores: np.ndarray  # (n_queries, k) cosine similarities, descending
    indices: np.ndarray  # (n_queries, k) rows of the bank

    def best(self) -> list[str]:
        """The top caption per query.

        Returns
        -------
        list of str
            One caption per query (``n_queries``).
        """
        return [c[0] for c in self.captions]


def read_caption_file(path, column: int = 0, max_captions: int | None = None) -> list[str]:
    """Read a caption corpus: one caption per line, or a TSV (caption in ``column``).

    Conceptual Captions TSVs (caption, URL) work as they are. Empty lines are skipped.

    Parameters
    ----------
    path : str or path-like
        A text file; read as TSV when its suffix is ``.tsv``/``.tab`` or its first line
        holds a tab.
    column : int, default=0
        TSV column of the caption (rows without it are skipped).
    max_captions : int, optional
        Stop after this many captions.

    Returns
    -------
    captions : list of str
        Stripped, non-empty captions in file order.

    Raises
    ------
    ValueError
        When the file holds no caption.
    """
    column = check_int(column, "column", min_value=0)
    max_captions = check_int(max_captions, "max_captions", min_value=1, allow_none=True)
    path = Path(path)
    out: list[str] = []
    with path.open(encoding="utf-8", newline="") as fh:
        tsv = path.suffix.lower() in (".tsv", ".tab")
        if not tsv:
            first = fh.readline()
            tsv = "\t" in first
            fh.seek(0)
        rows = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE) if tsv else ([line.rstrip("\r\n")] for line in fh)
        for row in rows:
            if not row or len(row) <= column:
                continue
            cap = row[column].strip()
            if cap:
                out.append(cap)
            if max_captions is not None and len(out) >= max_captions:
                break
    if not out:
        raise ValueError(f"no captions found in {path}")
    return out


class CaptionRetriever:
    """Nearest captions (cosine) in an embedded caption bank.

    Parameters
    ----------
    bank_captions : sequence of str
        The bank (e.g. generated sandbox captions disjoint from the test images, or
        Conceptual Captions via :meth:`from_file`).
    model : str, optional
        Sentence encoder passed to ``embed_fn``; ``None``: the package's default sentence
        encoder (MPNet) with the default ``embed_fn``, none passed to a custom one.
    embed_fn : callable, optional
        ``embed_fn(sentences, model=..., cache=..., **embed_kwargs)`` → (n, d) array.
        Default: :func:`brainllm_utils.embeddings.embed_sentences` (imported lazily).
    cache : bool or path, default True
        Passed to ``embed_fn`` (the embeddings module's disk cache); the bank matrix is
        also kept in memory.
    batch_size : int, default 65536
        Bank rows scored at a time in :meth:`query`.
    **embed_kwargs
        Extra arguments for ``embed_fn`` (e.g. ``device``).

    Examples
    --------
    >>> fake = lambda s, **kw: np.eye(len(s))
    >>> r = CaptionRetriever(["a cat", "a dog"], embed_fn=fake)
    >>> r.query(np.array([0.0, 1.0]), k=1).best()
    ['a dog']
    """

    def __init__(self, bank_captions: Sequence[str], model: str | None = None, embed_fn: Callable | None = None, cache=True, batch_size: int = 65536, **embed_kwargs):
        self.captions = [str(c) for c in bank_captions]
        if not self.captions:
            raise ValueError("empty caption bank")
        self.model = model
        self.embed_fn = embed_fn
        self.cache = cache
        self.batch_size = int(batch_size)
        self.embed_kwargs = embed_kwargs
        self._bank: np.ndarray | None = None

    @classmethod
    def from_file(cls, path: str | os.PathLike, column: int = 0, max_captions: int | None = None, **kwargs) -> "CaptionRetriever":
        """Build from a corpus file (see :func:`read_caption_file`).

        Parameters
        ----------
        path : str or path-like
            One caption per line, or a TSV.
        column : int, default=0
            TSV column of the caption.
        max_captions : int, optional
            Keep only the first captions.
        **kwargs
            Passed to :class:`CaptionRetriever` (``model``, ``embed_fn``, ``cache``, ...).

        Returns
        -------
        CaptionRetriever
            A retriever over the file's captions (embedded on first use).
        """
        return cls(read_caption_file(path, column, max_captions), **kwargs)

    def _embed(self, sentences: Sequence[str]) -> np.ndarray:
        fn = self.embed_fn
        kw = dict(self.embed_kwargs)
        if fn is None:
            from ..features.embeddings import DEFAULT_MODEL, embed_sentences

            fn = embed_sentences
            kw.setdefault("model", self.model or DEFAULT_MODEL)
            kw.setdefault("cache", self.cache)
        elif self.model is not None:
            kw.setdefault("model", self.model)
        return np.asarray(fn(list(sentences), **kw), dtype=np.float32)

    @property
    def bank_embeddings(self) -> np.ndarray:
        """Unit-norm bank embeddings ``(n_bank, n_dims)`` float32, computed on first use."""
        if self._bank is None:
            E = self._embed(self.captions)
            if E.shape[0] != len(self.captions):
                raise ValueError("embed_fn returned the wrong number of rows")
            n = np.linalg.norm(E, axis=1, keepdims=True)
            self._bank = (E / np.where(n > 0, n, 1.0)).astype(np.float32)
        return self._bank

    def embed_queries(self, sentences: Sequence[str]) -> np.ndarray:
        """Embed query sentences with the bank's encoder.

        Parameters
        ----------
        sentences : sequence of str
            The queries.

        Returns
        -------
        ndarray of float32 of shape (n_sentences, n_dims)
            Their embeddings (not normalised).
        """
        return self._embed(sentences)

    def query(self, embeddings, k: int = 5) -> Retrieval:
        """The ``k`` nearest bank captions (cosine) for each query embedding (n, d) or (d,).

        Parameters
        ----------
        embeddings : array-like of shape (n_queries, n_dims) or (n_dims,)
            Query embeddings (e.g. decoded from brain activity), any norm.
        k : int, default=5
            Captions per query (at most the bank's size).

        Returns
        -------
        Retrieval
            Captions, cosine similarities (descending, ties by bank order) and bank rows.
        """
        Q = np.atleast_2d(np.asarray(embeddings, dtype=np.float32))
        B = self.bank_embeddings
        if Q.shape[1] != B.shape[1]:
            raise ValueError(f"query dimension {Q.shape[1]} differs from the bank's {B.shape[1]}")
        qn = np.linalg.norm(Q, axis=1, keepdims=True)
        Q = Q / np.where(qn > 0, qn, 1.0)
        k = min(check_int(k, "k", min_value=1), len(B))
        best_s = np.full((len(Q), 0), -np.inf, dtype=np.float32)
        best_i = np.zeros((len(Q), 0), dtype=np.int64)
        for start in range(0, len(B), self.batch_size):
            S = Q @ B[start : start + self.batch_size].T
            kk = min(k, S.shape[1])
            part = np.argpartition(-S, kk - 1, axis=1)[:, :kk]
            s = np.take_along_axis(S, part, 1)
            best_s = np.concatenate([best_s, s], 1)
            best_i = np.concatenate([best_i, part + start], 1)
            if best_s.shape[1] > k:
                keep = np.argpartition(-best_s, k - 1, axis=1)[:, :k]
                best_s = np.take_along_axis(best_s, keep, 1)
                best_i = np.take_along_axis(best_i, keep, 1)
        # sort descending, ties by bank order
        order = np.lexsort((best_i, -best_s), axis=1) if best_s.size else best_i
        best_s = np.take_along_axis(best_s, order, 1)
        best_i = np.take_along_axis(best_i, order, 1)
        caps = [[self.captions[j] for j in row] for row in best_i]
        return Retrieval(caps, best_s, best_i)

    def query_sentences(self, sentences: Sequence[str], k: int = 5) -> Retrieval:
        """Embed ``sentences`` and query (handy for checks: a bank caption finds itself).

        Parameters
        ----------
        sentences : sequence of str
            The queries.
        k : int, default=5
            Captions per query.

        Returns
        -------
        Retrieval
            As :meth:`query`.
        """
        return self.query(self.embed_queries(sentences), k)

    def __len__(self) -> int:
        return len(self.captions)
