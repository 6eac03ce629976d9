"""Public face of :mod:`brainllm_utils.encoding.caption_metrics` (BLEU-4, ROUGE-L, CIDEr-D and a
human ceiling, computed offline)."""

from .encoding.caption_metrics import (
    bleu,
    cider_d,
    corpus_bleu,
    human_ceiling,
    rouge_l,
    score_captions,
    score_leave_one_out,
    sentence_bleu,
    tokenize,
)

__all__ = [
    "tokenize",
    "bleu",
    "sentence_bleu",
    "corpus_bleu",
    "rouge_l",
    "cider_d",
    "score_captions",
    "score_leave_one_out",
    "human_ceiling",
]
