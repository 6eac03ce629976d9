"""Public face of :mod:`brainllm_utils.chapters` (findings): each chapter's key results for the summary page."""

from .chapters import (
    FIELDS,
    RQS,
    finding,
    findings_dir,
    load,
    record,
)

__all__ = [
    "FIELDS",
    "RQS",
    "finding",
    "record",
    "load",
    "findings_dir",
]
