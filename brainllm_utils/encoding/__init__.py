"""Layer 3: encoding and decoding models.

- Estimators with a scikit-learn interface (``_sklearn_api``): :class:`RidgeCV` (one penalty
  per target), :class:`BandedRidgeCV` (alias :class:`GroupRidgeCV`) and :class:`FracRidgeCV`,
  all over one torch solver (``_solvers``) that runs the same code on the CPU and the GPU.
  They are scikit-learn estimators (``Pipeline``, ``cross_val_score``, ``GridSearchCV``,
  ``clone``); ``score`` is scikit-learn's one mean R² (since 0.2: it was one Pearson r per
  target, now ``score_targets``).
- Scores (``_scoring``); the paper's protocol: train/test accuracy and in-silico contrasts
  (``_protocol``).
- Decoding (:mod:`~brainllm_utils.encoding.decoding`: brain → embedding → nearest captions) and
  caption metrics (:mod:`~brainllm_utils.encoding.caption_metrics`: BLEU-4, ROUGE-L, CIDEr-D).
"""

from . import caption_metrics, decoding  # noqa: F401  (public submodules)
from ._protocol import (
    CATEGORY_SENTENCES,
    embed_sentence_sets,
    in_silico_contrast,
    noise_ceiling_relation,
    train_test_encoding,
)
from ._scoring import pearson_r, r2_score
from ._sklearn_api import BandedRidgeCV, FracRidgeCV, GroupRidgeCV, RidgeCV
from ._solvers import band_weight_grid, kfold_splits
from .caption_metrics import (
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
from .decoding import (
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
    "RidgeCV",
    "BandedRidgeCV",
    "GroupRidgeCV",
    "FracRidgeCV",
    "pearson_r",
    "r2_score",
    "kfold_splits",
    "band_weight_grid",
    "train_test_encoding",
    "noise_ceiling_relation",
    "in_silico_contrast",
    "CATEGORY_SENTENCES",
    "embed_sentence_sets",
    "fit_decoder",
    "decode_embeddings",
    "embedding_correlation",
    "similarity_matrix",
    "identification_rank",
    "identification_accuracy",
    "Retrieval",
    "CaptionRetriever",
    "read_caption_file",
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
