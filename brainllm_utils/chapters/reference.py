"""The paper's reference numbers, as data (``shared/docs/paper_methods.md`` §7)."""

from __future__ import annotations

__all__ = ["PAPER_ROI_RSA", "PAPER_TRANSFER", "PAPER_ROI_RSA_SOURCE", "PAPER_TRANSFER_SOURCE", "PAPER_COUNTS",
           "paper_reference_numbers", "paper_transfer_numbers"]

#: Noise-ceiling-normalised ROI RSA of networks, hand-entered from the paper's code
#: (``trainingImgs_vs_brainMatch_scatter.py``): model, training images, ventral, lateral, parietal.
PAPER_ROI_RSA = (
        ("LLM-trained RCNN (seed avg)", 48_236, 0.429, 0.468, 0.389),
        ("ecoset RCNN (category)", 1_450_000, 0.367, 0.368, 0.340),
        ("CORnet-S", 1_280_000, 0.382, 0.361, 0.379),
        ("NF-ResNet50", 1_280_000, 0.351, 0.337, 0.351),
        ("AlexNet-GN supervised", 1_280_000, 0.366, 0.330, 0.356),
        ("AlexNet (brain-score)", 1_280_000, 0.297, 0.261, 0.305),
        ("ResNet50 (brain-score)", 1_280_000, 0.346, 0.329, 0.348),
        ("ResNet50 Places365", 1_800_000, 0.334, 0.303, 0.347),
        ("Taskonomy scene-cat", 4_500_000, 0.112, 0.074, 0.130),
        ("ResNeXt101 WSL", 940_000_000, 0.323, 0.312, 0.325),
        ("CLIP RN50 (image)", 400_000_000, 0.325, 0.333, 0.308),
        ("CLIP ViT (image)", 400_000_000, 0.289, 0.304, 0.278),
        ("IPCL AlexNet-GN", 1_280_000, 0.283, 0.235, 0.342),
        ("SimCLR RN50", 1_280_000, 0.342, 0.302, 0.295),
)
#: Transfer readouts (held-out cosine, Fig. 4b): network, target, low, high (``low``/``high``
#: span the 10 seeds where the paper's code reports a range).
PAPER_TRANSFER = (
    ("blt_mpnet", "mpnet", 0.682, 0.693),
    ("blt_multihot", "multihot", 0.622, 0.636),
    ("blt_mpnet", "multihot", 0.638, 0.638),
    ("blt_multihot", "mpnet", 0.621, 0.621),
)


def paper_reference_numbers(rois=("ventral", "lateral", "parietal")):
    """Noise-ceiling-normalised ROI RSA reported by the paper's code (``paper_methods.md`` §7).

    Hand-entered values of ``trainingImgs_vs_brainMatch_scatter.py`` (networks only; the
    paper's code does not publish absolute per-ROI MPNet values): :data:`PAPER_ROI_RSA`.

    Parameters
    ----------
    rois : sequence of {"ventral", "lateral", "parietal"}, default=("ventral", "lateral", "parietal")
        The ROI columns kept, in this order.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``model``; columns ``training_images`` and one per ROI.
    """
    import pandas as pd

    df = pd.DataFrame(list(PAPER_ROI_RSA), columns=["model", "training_images", "ventral", "lateral",
                                                   "parietal"]).set_index("model")
    return df[["training_images", *rois]]


def paper_transfer_numbers():
    """The paper's transfer readout (held-out cosine, Fig. 4b; ``paper_methods.md`` §7).

    The values of :data:`PAPER_TRANSFER`; ``low``/``high`` span the 10 seeds where the
    paper's code reports a range.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ``(network, target)``; columns ``low`` and ``high``.
    """
    import pandas as pd

    return pd.DataFrame(list(PAPER_TRANSFER), columns=["network", "target", "low", "high"]).set_index(
        ["network", "target"])


# ---------------------------------------------------------------------------- sources
#: Where :data:`PAPER_ROI_RSA` comes from in the paper.
PAPER_ROI_RSA_SOURCE = ("the paper's training-images vs brain-match scatter (values hand-entered in its code, "
                        "get_dnn_activities/trainingImgs_vs_brainMatch_scatter.py)")
#: Where :data:`PAPER_TRANSFER` comes from in the paper.
PAPER_TRANSFER_SOURCE = "Fig. 4b (transfer readout; the paper's code, transfer_perf_plot.py)"
#: Counts the paper states: quantity, value, source.
PAPER_COUNTS = (
    ("shared test images (seen 3× by all 8 subjects)", 515,
     "Methods (test set; code get_conditions_515); Fig. 2b ranks 0–514"),
)
