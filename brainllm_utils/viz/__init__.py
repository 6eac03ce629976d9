"""Layer 5: figures for the book (a leaf: imports nothing else of the package but ``_utils``).

Every ``plot_*`` function draws into an ``Axes`` it is given (or creates one) and returns it;
none calls ``show()`` or ``savefig()``. ``view_surface_map`` returns an interactive 3-D view
instead (an HTML document a notebook shows inline). Brain maps (surface and volume) are in ``_brain``; the
figures of each chapter in ``chNN_<chapter>``, all re-exported here by name.
"""

from ._brain import (
    FSAVERAGE5_VERTICES,
    FSAVERAGE_VERTICES,
    SURFACE_VIEWS,
    plot_surface,
    plot_surface_views,
    plot_volume_slices,
    surface_axes,
    view_surface_map,
)
from .ch00_data_tour import (
    image_montage,
    plot_image_montage,
    plot_recovery,
    plot_roi_distributions,
)
from .ch01_feature_spaces import (
    plot_model_matrix,
    plot_pair_similarity,
)
from .ch02_rsa import (
    plot_paired_differences,
    plot_roi_rsa_bars,
)
from .ch03_encoding import (
    plot_r_vs_ceiling,
    plot_ridge_protocols,
    plot_roi_bars,
    plot_variance_partition,
)
from .ch04_decoding import (
    plot_caption_gallery,
    plot_decoding_r,
    plot_identification_ranks,
    plot_metric_bars,
)
from .ch05_image_to_llm import (
    plot_alignment_curve,
    plot_alignment_vs_training_size,
    plot_learning_curves,
    plot_model_comparison,
    plot_training_curves,
    plot_transfer,
)
from .ch06_summary import (
    plot_findings,
)
from .ch07_reproduction import (
    plot_reproduction,
)
from .model_comparison import (
    plot_model_layers,
)
from .power import (
    plot_power_curves,
)
from .rq2 import (
    plot_rq2_comparison,
)

__all__ = [
    "FSAVERAGE5_VERTICES",
    "SURFACE_VIEWS",
    "surface_axes",
    "plot_surface",
    "plot_surface_views",
    "plot_volume_slices",
    "FSAVERAGE_VERTICES",
    "view_surface_map",
    "image_montage",
    "plot_image_montage",
    "plot_roi_distributions",
    "plot_recovery",
    "plot_model_matrix",
    "plot_pair_similarity",
    "plot_roi_rsa_bars",
    "plot_paired_differences",
    "plot_r_vs_ceiling",
    "plot_roi_bars",
    "plot_variance_partition",
    "plot_ridge_protocols",
    "plot_decoding_r",
    "plot_identification_ranks",
    "plot_caption_gallery",
    "plot_metric_bars",
    "plot_training_curves",
    "plot_model_comparison",
    "plot_transfer",
    "plot_alignment_vs_training_size",
    "plot_learning_curves",
    "plot_alignment_curve",
    "plot_findings",
    "plot_reproduction",
    "plot_rq2_comparison",
    "plot_power_curves",
    "plot_model_layers",
]
