"""Layer 3: representational similarity analysis — RDMs (``_rdm``), their comparisons
(``_compare``), the paper's sampling (``_sampling``, ``_sampled``), noise ceilings (``_ceiling``),
bootstrap inference (``_inference``) and the searchlight (neighbourhoods in ``_neighbourhoods``,
the streaming engine in ``_searchlight``).

Pure functions (no file I/O except the explicit sample-set helpers). Arrays follow the
package conventions: ``X`` is ``(n_images, n_features)``; a *condensed* RDM is the upper
triangle in :func:`scipy.spatial.distance.pdist` order, ``(n_pairs,)`` with
``n_pairs = n (n - 1) / 2``; stacks of RDMs are ``(k, n_pairs)``.

The paper's ROI analysis (Doerig et al. 2025, ``paper_methods.md`` §3) never compares full
10,000-image RDMs: a subject's images are split once, with a seed here, into disjoint sets of
100; each set's 100 × 100 brain and model RDMs are compared by Pearson r over the 4,950
pairs, and the subject's score is the mean over sets. :func:`make_sample_sets`,
:func:`get_sample_sets` and :func:`sampled_rsa` implement that; :func:`roi_rsa` returns a
tidy :class:`pandas.DataFrame` for the book.
"""

from ._ceiling import NoiseCeiling, noise_ceiling, normalise_by_ceiling, pool_rdms
from ._compare import COMPARE_METHODS, canonical_method, compare_rdms, compare_rowwise, rank, tau_a
from ._inference import bootstrap_rsa_ci
from ._neighbourhoods import (
    pad_neighbourhoods,
    sphere_offsets,
    surface_neighbourhoods,
    to_surface,
    to_volume,
    volume_neighbourhoods,
)
from ._rdm import RDM_METRICS, compute_rdm, empty_rows, n_items, rdm_to_square, separate_empty_rows, sub_rdm
from ._sampled import SampledRSA, roi_rsa, sampled_rsa
from ._sampling import get_sample_sets, load_sample_sets, make_sample_sets, save_sample_sets
from ._searchlight import searchlight_rsa

__all__ = [
    "RDM_METRICS",
    "COMPARE_METHODS",
    "compute_rdm",
    "compare_rdms",
    "compare_rowwise",
    "canonical_method",
    "rank",
    "tau_a",
    "n_items",
    "rdm_to_square",
    "sub_rdm",
    "empty_rows",
    "separate_empty_rows",
    "make_sample_sets",
    "save_sample_sets",
    "load_sample_sets",
    "get_sample_sets",
    "sampled_rsa",
    "SampledRSA",
    "roi_rsa",
    "pool_rdms",
    "noise_ceiling",
    "NoiseCeiling",
    "normalise_by_ceiling",
    "bootstrap_rsa_ci",
    "sphere_offsets",
    "volume_neighbourhoods",
    "surface_neighbourhoods",
    "pad_neighbourhoods",
    "searchlight_rsa",
    "to_volume",
    "to_surface",
]
