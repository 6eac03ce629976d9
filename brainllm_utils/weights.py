"""Public face of :mod:`brainllm_utils.features.weights` (offline sentence-encoder weights).

Command line: ``python -m brainllm_utils.weights`` prepares both pip-packaged models.
"""

from .features.weights import (
    MINILM,
    MINILM_SHA256,
    MPNET,
    MPNET_SHA256,
    ModelNotFoundError,
    canonical_name,
    find_mpnet_parts,
    main,
    prepare_mpnet,
    resolve_model,
    sha256_file,
)

__all__ = [
    "MPNET",
    "MINILM",
    "MPNET_SHA256",
    "MINILM_SHA256",
    "ModelNotFoundError",
    "canonical_name",
    "find_mpnet_parts",
    "prepare_mpnet",
    "resolve_model",
    "sha256_file",
    "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
