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

rsatoolbox interop (``_interop``): :func:`to_rdms` turns our vectors into an
:class:`rsatoolbox.rdm.RDMs` with the ``nsdId`` pattern descriptor (0-based NSD ids), and
:func:`compute_rdm` ``(as_rdms=True)`` returns one; every function here that takes RDMs or
patterns also takes rsatoolbox ``RDMs`` / ``Dataset`` objects (:func:`from_rdms`,
:func:`from_dataset`), checking that the ``nsdId`` s of two objects agree.
"""

from ._ceiling import NoiseCeiling, noise_ceiling, normalise_by_ceiling, pool_rdms
from ._compare import COMPARE_METHODS, canonical_method, compare_rdms, compare_rowwise, rank, tau_a
from ._inference import bootstrap_rsa_ci
from ._interop import NSD_ID, from_dataset, from_rdms, is_dataset, is_rdms, to_rdms
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
    "NSD_ID",
    "to_rdms",
    "from_rdms",
    "from_dataset",
    "is_rdms",
    "is_dataset",
]
