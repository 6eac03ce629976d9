"""Public face of :mod:`brainllm_utils.features.embeddings` (cached sentence and caption
embeddings)."""

from .features.embeddings import (
    DEFAULT_MODEL,
    ModelSpec,
    clear_model_cache,
    embed_captions,
    embed_sentences,
    get_model_spec,
)

__all__ = [
    "DEFAULT_MODEL",
    "ModelSpec",
    "embed_sentences",
    "embed_captions",
    "get_model_spec",
    "clear_model_cache",
]
