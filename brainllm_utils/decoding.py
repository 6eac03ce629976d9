"""Public face of :mod:`brainllm_utils.encoding.decoding` (brain activity → caption embedding →
nearest captions)."""

from .encoding.decoding import (
    CaptionRetriever,
    Retrieval,
    decode_embeddings,
    embedding_correlation,
    fit_decoder,
    identification_accuracy,
    identification_rank,
    read_caption_file,
    similarity_matrix,
)

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
