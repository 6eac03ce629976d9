"""Layer 3: image-to-LLM networks (Doerig et al. 2025, §6, RQ4): BLT training, activations,
comparisons.

On this module
--------------
- **Training pool** (:func:`load_training_pool`): COCO images never shown to subjects
  (``<root>/coco/{train2017,val2017}/*.jpg`` whose cocoId is not in
  ``nsd_stim_info_merged.csv``; 50,287 on full COCO 2017, of which the ``paper`` preset
  trains on 48,236 and validates on 2,051), their captions and multi-hot categories from
  the COCO JSONs under ``nsddata_stimuli/stimuli/nsd/annotations/``. JPEGs of any size
  stream from disk (:class:`PoolImages`, a map-style dataset read by a torch
  ``DataLoader`` with worker processes) unless they fit a memory budget
  (:data:`POOL_MEMORY_BUDGET`); each is centre-cropped to a square and resized to
  ``TrainConfig.pool_size`` (the paper's 256 px squares) either way.
- **Targets** (:func:`make_targets`): mean MPNet caption embedding (cosine loss) or
  multi-hot categories (binary cross-entropy; the control).
- **Network** (:class:`BLTNet`, :class:`BLTConfig`, :data:`PRESETS`): a BLT recurrent CNN
  with a readout at every time step.
- **Training** (:func:`train_network`, :func:`train_or_load`): seeded, deterministic on
  CPU, an atomic checkpoint per epoch, resumable (a resumed run ends with the same weights
  as an uninterrupted one), tqdm progress, CPU or CUDA (bf16 autocast on CUDA).
  Augmentation at training only (random square crop of 33–100 % of the area resized to
  the input size, flip, brightness, saturation, contrast; seeded per epoch);
  evaluation is a deterministic resize/centre crop.
- **Saved networks** (:func:`save_network`, :func:`load_network`): a finished network is
  kept as ``weights.pt`` (state dict) + ``manifest.json`` (format version, configuration,
  seed, data selection, training history, versions); :func:`train_or_load` reloads it
  when everything matches, or loads networks trained elsewhere from ``networks_dir``.
- **Activations** (:func:`extract_activations`): any layer × time step, spatially averaged,
  cached on disk keyed by the weights' hash, layer/step and image ids; images in memory or
  read batch by batch (:class:`LazyImages`, e.g. NSD's ``imgBrick``).
- **Comparison models** (:func:`comparison_model`, :func:`extract_features`): torchvision,
  timm and open_clip architectures with weights from a local file only, untrained
  baselines (random BLT, a small AlexNet-like net); a missing library or weights file gives
  a :class:`ModelStatus` with the reason, never an error.
- **User models** (:func:`register_model`, :func:`model_features`): a callable, a torch
  module read at named layers (forward hooks), or ``"torchvision:<arch>"``,
  ``"timm:<arch>"``, ``"open_clip:<arch>/<pretrained>"`` with local weights, registered once
  and used by name (``"<name>"`` or ``"<name>:<layer>"``) in chapter 05's comparison;
  activations cached per model and layer.
- **Transfer readout** (:func:`transfer_readout`, :func:`transfer_table`): linear readouts
  from frozen features to caption embeddings (cosine) and multi-hot labels (BCE), scored on
  held-out images against the mean-target floor (and mean average precision).

Modules: ``_pool`` (training pool, targets), ``_blt`` (the network), ``_train`` (presets,
training, checkpoints), ``_activations``, ``_comparison`` (comparison models), ``_transfer``
(readouts), ``_user_models`` (registered user models). Torch is imported lazily: importing
this package does not import torch (the network classes of ``_blt`` are loaded on first
access).
"""

from ._activations import LazyImages, extract_activations, layer_names
from ._comparison import COMPARISON_MODELS, FeatureModel, ModelStatus, comparison_model, extract_features
from ._pool import (
    POOL_MEMORY_BUDGET,
    PoolImages,
    TrainingPool,
    load_coco_annotations,
    load_coco_images,
    load_training_pool,
    make_targets,
    pool_coco_ids,
)
from ._train import (
    NETWORK_FORMAT,
    NETWORK_FORMAT_VERSION,
    PRESETS,
    TrainConfig,
    TrainedNetwork,
    build_network,
    load_checkpoint,
    load_network,
    pool_split,
    save_network,
    train_network,
    train_precision,
    train_networks,
    train_or_load,
    weights_hash,
)
from ._transfer import mean_average_precision, transfer_readout, transfer_readouts, transfer_table
from ._user_models import (
    OUTPUT_LAYER,
    VISION_POOLINGS,
    VisionModel,
    check_model_reference,
    get_model,
    is_registered_model,
    model_features,
    parse_model_name,
    register_model,
    registered_models,
    unregister_model,
)

__all__ = [
    "BLTConfig",
    "BLTNet",
    "TrainConfig",
    "PRESETS",
    "TrainingPool",
    "PoolImages",
    "POOL_MEMORY_BUDGET",
    "TrainedNetwork",
    "ModelStatus",
    "FeatureModel",
    "pool_coco_ids",
    "load_coco_images",
    "load_coco_annotations",
    "load_training_pool",
    "make_targets",
    "build_network",
    "preprocess",
    "augment",
    "layer_shapes",
    "train_network",
    "train_precision",
    "pool_split",
    "train_or_load",
    "train_networks",
    "load_checkpoint",
    "save_network",
    "load_network",
    "NETWORK_FORMAT",
    "NETWORK_FORMAT_VERSION",
    "weights_hash",
    "extract_activations",
    "LazyImages",
    "layer_names",
    "COMPARISON_MODELS",
    "comparison_model",
    "extract_features",
    "VisionModel",
    "VISION_POOLINGS",
    "OUTPUT_LAYER",
    "register_model",
    "unregister_model",
    "registered_models",
    "get_model",
    "parse_model_name",
    "is_registered_model",
    "check_model_reference",
    "model_features",
    "mean_average_precision",
    "transfer_readout",
    "transfer_readouts",
    "transfer_table",
]

_LAZY = ("BLTConfig", "BLTNet", "preprocess", "augment", "layer_shapes")


def __getattr__(name):  # the torch-backed network classes, imported on first access
    if name in _LAZY:
        from . import _blt

        return getattr(_blt, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
