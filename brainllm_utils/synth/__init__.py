"""Layer 2: a synthetic NSD ("sandbox") in the real NSD release layout, with a known ground truth.

:func:`make_synthetic_nsd` writes the tree (``_generate``, scenes and captions in ``_scenes``);
:func:`load_truth`, :func:`is_sandbox`, :func:`truth_table` and :func:`load_truth_array` read
its ground truth (``_truth``). :data:`OPTIONS` are the quirks of real local copies that any
preset can take (native COCO sizes, missing sessions, ...); :data:`MODEL_OPTIONS` the settings
of the generative model (tuning shared across subjects, ROI mixtures, a planted sentence
space); the ``nsdlike`` presets have NSD's sizes (full fsaverage mesh in ``_mesh``, streamed
writers in ``_stream``); the ``positive`` presets are the positive control, whose ventral and
lateral ROIs are partly driven by a sentence encoder's caption embeddings. Command line:
``python -m brainllm_utils.synth ROOT [--preset nsdlike ...]``.

The layer sits beside ``features`` (layer 2), whose sentence encoder the positive control
runs at generation time; ``nsd`` (layer 1) reads what it writes without importing it.
"""

from ._generate import (
    BETAS,
    COCO_SIZES,
    NSD_GRIDS,
    OPTIONS,
    CTABS,
    GENERATIVE_MODEL,
    MODEL_OPTIONS,
    NSDGENERAL_RADIUS,
    N_SUBJECTS,
    PLANTED_SPACES,
    POSITIVE_ROI_SPACES,
    POSITIVE_SENTENCE_MODEL,
    PRESETS,
    RESPONSE_COLUMNS,
    ROI_ORDER,
    ROI_SPACES,
    SHARED_TUNING,
    SNR_RANGES,
    STREAMS_NAMES,
    STREAMS_SEEDS,
    VOLUME_ROIS,
    Design,
    compute_ncsnr,
    main,
    make_synthetic_nsd,
)
from ._truth import SANDBOX_FORMAT, TRUTH_DIR, is_current, is_sandbox, load_truth, load_truth_array, truth_table

__all__ = [
    "PRESETS",
    "OPTIONS",
    "MODEL_OPTIONS",
    "PLANTED_SPACES",
    "POSITIVE_ROI_SPACES",
    "POSITIVE_SENTENCE_MODEL",
    "SHARED_TUNING",
    "COCO_SIZES",
    "NSD_GRIDS",
    "ROI_SPACES",
    "TRUTH_DIR",
    "SANDBOX_FORMAT",
    "is_current",
    "Design",
    "compute_ncsnr",
    "make_synthetic_nsd",
    "main",
    "is_sandbox",
    "load_truth",
    "load_truth_array",
    "truth_table",
    "BETAS",
    "CTABS",
    "GENERATIVE_MODEL",
    "NSDGENERAL_RADIUS",
    "N_SUBJECTS",
    "RESPONSE_COLUMNS",
    "ROI_ORDER",
    "SNR_RANGES",
    "STREAMS_NAMES",
    "STREAMS_SEEDS",
    "VOLUME_ROIS",
]
