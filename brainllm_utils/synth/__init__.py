"""Layer 1: a synthetic NSD ("sandbox") in the real NSD release layout, with a known ground truth.

:func:`make_synthetic_nsd` writes the tree (``_generate``, scenes and captions in ``_scenes``);
:func:`load_truth`, :func:`is_sandbox`, :func:`truth_table` and :func:`load_truth_array` read
its ground truth (``_truth``). :data:`OPTIONS` are the quirks of real local copies that any
preset can take (native COCO sizes, missing sessions, ...); the ``nsdlike`` presets have NSD's
sizes (full fsaverage mesh in ``_mesh``, streamed writers in ``_stream``). Command line:
``python -m brainllm_utils.synth ROOT [--preset nsdlike ...]``.
"""

from ._generate import (
    BETAS,
    COCO_SIZES,
    NSD_GRIDS,
    OPTIONS,
    CTABS,
    GENERATIVE_MODEL,
    NSDGENERAL_RADIUS,
    N_SUBJECTS,
    PRESETS,
    RESPONSE_COLUMNS,
    ROI_ORDER,
    ROI_SPACES,
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
