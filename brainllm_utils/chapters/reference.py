"""The paper's reference numbers, as data with their source (``shared/docs/paper_methods.md`` §6, §7).

Each number the paper reports and the book compares with is data here: the values
(:data:`PAPER_ROI_RSA`, :data:`PAPER_TRANSFER`, :data:`PAPER_COUNTS`), where they are in the
paper and its code (:data:`PAPER_ROI_RSA_FIGURE`, :data:`PAPER_ROI_RSA_CODE`,
:data:`PAPER_TRANSFER_CODE`), what the paper trained and scored for each row
(:data:`PAPER_ROI_RSA_MODELS`, :data:`PAPER_TRANSFER_MODELS`) and which of the book's models,
if any, is the same kind of model trained the same way.

:func:`paper_reference` answers, for one of the book's models and an ROI (or a readout
target), the paper's matching number, or says that the paper has none and why — it never
borrows another row (the paper's ecoset-trained network is not the book's COCO multi-hot
BLT; the LLM-trained network's numbers are not MPNet's). :func:`paper_reference_table` lists
every number with its source and ``matches`` column; :func:`paper_comparison` sets a table
of the book's values next to the matching paper numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["PAPER_ROI_RSA", "PAPER_TRANSFER", "PAPER_ROI_RSA_SOURCE", "PAPER_TRANSFER_SOURCE", "PAPER_COUNTS",
           "paper_reference_numbers", "paper_transfer_numbers",
           "PAPER_ROI_RSA_FIGURE", "PAPER_ROI_RSA_CODE", "PAPER_TRANSFER_CODE", "PAPER_ROI_RSA_ROIS",
           "PAPER_ROI_RSA_MODELS", "PAPER_TRANSFER_MODELS", "PAPER_TRANSFER_NOTE", "BOOK_MODEL_LABELS",
           "REFERENCE_QUANTITIES", "PaperReference", "paper_reference", "paper_reference_table",
           "paper_comparison"]

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
    The rows are the paper's models, not the book's: what each row trained is in
    :data:`PAPER_ROI_RSA_MODELS`, and :func:`paper_reference` gives a book model its
    matching row only (none for the book's multi-hot BLT: the ``ecoset RCNN (category)``
    row is a BLT-vNet trained on ecoset categories).

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
#: Where in the paper :data:`PAPER_ROI_RSA` is shown.
PAPER_ROI_RSA_FIGURE = "Fig. 4 (networks' brain match vs training images)"

# ---------------------------------------------------------------------------- rows with their source
#: The script that hand-enters :data:`PAPER_ROI_RSA` in the paper's code.
PAPER_ROI_RSA_CODE = "get_dnn_activities/trainingImgs_vs_brainMatch_scatter.py"
#: The script of :data:`PAPER_TRANSFER` in the paper's code.
PAPER_TRANSFER_CODE = "transfer_perf_plot.py"
#: The ROIs :data:`PAPER_ROI_RSA` has values for, in its column order.
PAPER_ROI_RSA_ROIS = ("ventral", "lateral", "parietal")

_BLT_PAPER = ("BLT-vNet (half channels: 10 recurrent layers, 6 time steps), read at layer 9, step 5, "
              "correlation values averaged over 10 seeds")
#: Each row of :data:`PAPER_ROI_RSA` → (what the paper trained and scored, this book's model
#: that is the same kind of model trained the same way or None, and the caveat of that pairing
#: or why the book has none). ``shared/docs/paper_methods.md`` §6.
PAPER_ROI_RSA_MODELS = {
    "LLM-trained RCNN (seed avg)": (
        f"{_BLT_PAPER}; trained to output the mean MPNet caption embedding (cosine) on 48,236 COCO images "
        "outside NSD, epoch 200",
        "blt_mpnet",
        "same objective and training data (the `paper` preset on full COCO); the sandbox preset is a "
        "small BLT on generated scenes"),
    "ecoset RCNN (category)": (
        "BLT-vNet trained on ecoset categories, 1.45M images, epoch 80, GroupNorm (dnn_ecoset_category)",
        None,
        "the book trains no ecoset network; its category network, blt_multihot, is a BLT trained on COCO "
        "multi-hot labels (a different objective and data set)"),
    "CORnet-S": ("CORnet-S, ImageNet (1.28M images), decoder.avgpool", None, "the book has no CORnet-S"),
    "NF-ResNet50": ("timm nf_resnet50, ImageNet (1.28M images), pooled features", "nf_resnet50",
                    "the same timm model and readout"),
    "AlexNet-GN supervised": ("AlexNet with GroupNorm, supervised on ImageNet (open_ipcl), fc7", None,
                              "the book has no group-norm AlexNet"),
    "AlexNet (brain-score)": ("brain-score alexnet, ImageNet, last layer, spatial mean", None,
                              "the book's alexnet is torchvision's read at fc7, not brain-score's last layer"),
    "ResNet50 (brain-score)": ("brain-score resnet50_julios, ImageNet, last layer, spatial mean", None,
                               "the book's resnet50 is torchvision's, not brain-score's resnet50_julios"),
    "ResNet50 Places365": ("ResNet50 trained on Places365 scene categories (1.8M images)", None,
                           "the book has no Places365 network"),
    "Taskonomy scene-cat": ("Taskonomy ResNet50, scene classification (4.5M images)", None,
                            "the book has no Taskonomy network"),
    "ResNeXt101 WSL": ("ResNeXt101-32x8d, weakly supervised on 940M Instagram images, avgpool",
                       "resnext101_32x8d_wsl", "the same weights and readout"),
    "CLIP RN50 (image)": ("CLIP RN50 image encoder (encode_image), 400M image-text pairs", "clip_rn50",
                          "the same OpenAI weights and readout"),
    "CLIP ViT (image)": ("CLIP ViT-B/32 image encoder (encode_image), 400M image-text pairs", "clip_vit_b32",
                         "the same OpenAI weights and readout"),
    "IPCL AlexNet-GN": ("IPCL self-supervised AlexNet-GN, ImageNet (open_ipcl), fc7", None,
                        "the book has no IPCL network"),
    "SimCLR RN50": ("SimCLR-v1 ResNet50, ImageNet, final_avg_pool", None, "the book has no SimCLR network"),
}
#: Each row of :data:`PAPER_TRANSFER` → what the paper trained and scored (Fig. 4b).
PAPER_TRANSFER_MODELS = {
    ("blt_mpnet", "mpnet"): "frozen features of the MPNet-trained BLT-vNet (48,236 COCO images, epoch 200), "
                            "linear readout to the MPNet caption embedding, range over 10 seeds",
    ("blt_multihot", "multihot"): "frozen features of the multi-hot-trained BLT-vNet (48,236 COCO images, "
                                  "epoch 200), linear readout to COCO multi-hot labels, range over 10 seeds",
    ("blt_mpnet", "multihot"): "frozen features of the MPNet-trained BLT-vNet (48,236 COCO images, epoch 200), "
                               "linear readout to COCO multi-hot labels",
    ("blt_multihot", "mpnet"): "frozen features of the multi-hot-trained BLT-vNet (48,236 COCO images, "
                               "epoch 200), linear readout to the MPNet caption embedding",
}
#: Caveat of every transfer pairing (the paper's networks and ours are the same two objectives
#: on the same COCO training data; the readout's data differ).
PAPER_TRANSFER_NOTE = ("same networks' objectives and training data; the paper held out the last 2,000 of the "
                       "73k NSD images, the book holds out part of the subjects' images")

#: What this book's models are, for the reference rows (name → what was trained / scored).
BOOK_MODEL_LABELS = {
    "blt_mpnet": "BLT trained to output the mean MPNet caption embedding (cosine) on the training pool "
                 "(COCO images outside NSD on real data), mean over seeds",
    "blt_multihot": "BLT trained on COCO multi-hot category labels (BCE) on the training pool, mean over seeds",
    "mpnet": "MPNet (all-mpnet-base-v2) caption embeddings, mean over an image's captions (a text space)",
    "multihot": "COCO multi-hot category labels (a text space)",
    "untrained_blt": "BLT with random weights (a baseline)",
    "untrained_alexnet": "AlexNet-like CNN with random weights (a baseline)",
    "alexnet": "torchvision AlexNet, ImageNet, fc7",
    "resnet50": "torchvision ResNet50, ImageNet, avgpool",
    "efficientnet_lite0": "EfficientNet-Lite0, ImageNet, pooled head",
    "nf_resnet50": "timm nf_resnet50, ImageNet, pooled features",
    "resnext101_32x8d_wsl": "ResNeXt101-32x8d WSL, avgpool",
    "clip_rn50": "CLIP RN50 encode_image (OpenAI weights)",
    "clip_vit_b32": "CLIP ViT-B/32 encode_image (OpenAI weights)",
}
#: Why the paper has no ROI RSA number for a book model (beyond "no row in the paper's table").
_NO_ROI_RSA_ROW = {
    "blt_multihot": ("the paper reports its multi-hot BLT only in the transfer readout (Fig. 4b) and in maps, "
                     "with no ROI RSA number; its tabulated category network is a BLT-vNet trained on "
                     "ecoset categories (1.45M images, epoch 80), not COCO multi-hot labels"),
    "mpnet": ("the paper publishes no absolute per-ROI MPNet value (Fig. 1b and 3 show it as maps and bars; "
              "the numbers are in neither its code nor its captions)"),
    "untrained_blt": "the paper has no untrained baseline",
    "untrained_alexnet": "the paper has no untrained baseline",
    "efficientnet_lite0": "the paper has no EfficientNet",
    "alexnet": PAPER_ROI_RSA_MODELS["AlexNet (brain-score)"][2],
    "resnet50": PAPER_ROI_RSA_MODELS["ResNet50 (brain-score)"][2],
}
_TEXT_SPACE = ("the paper publishes no absolute per-ROI value for its text spaces (Fig. 3 and the supplementary "
               "figures show them as bars; the numbers are in neither its code nor its captions)")
REFERENCE_QUANTITIES = ("roi_rsa", "transfer", "count")


@dataclass(frozen=True)
class PaperReference:
    """The paper's number matching one of this book's quantities, or why there is none.

    Attributes
    ----------
    what : str
        The book's model (``"blt_mpnet"``, ``"mpnet"``, ``"clip_rn50"``, ...), or for a count
        the counted quantity (``"test_images"``).
    quantity : {"roi_rsa", "transfer", "count"}
        Noise-ceiling-normalised ROI RSA, transfer readout (held-out cosine), or a count.
    item : str
        The ROI (``roi_rsa``), the readout target (``transfer``) or ``""``.
    matches : bool
        Whether the paper reports this quantity for the same kind of model trained the same way.
    low, high : float
        The paper's value (``low == high``) or range; NaN without a match.
    paper_row : str
        The paper's row (e.g. ``"LLM-trained RCNN (seed avg)"``); ``""`` without a match.
    paper_trained : str
        What the paper trained / scored in that row; ``""`` without a match.
    ours : str
        What this book's model is (:data:`BOOK_MODEL_LABELS`; ``""`` when unknown).
    figure : str
        Where in the paper the number is shown; ``""`` without a match.
    code : str
        The file of the paper's code that holds the number; ``""`` without a match.
    note : str
        The caveat of the pairing, or why the paper has no matching number.
    """

    what: str
    quantity: str
    item: str
    matches: bool
    low: float = math.nan
    high: float = math.nan
    paper_row: str = ""
    paper_trained: str = ""
    ours: str = ""
    figure: str = ""
    code: str = ""
    note: str = ""

    def value_text(self) -> str:
        """The paper's value as text (``"0.429"``, ``"0.682–0.693"``), or ``"no matching number"``.

        Returns
        -------
        str
            Three decimals for scores, thousands separators for counts.
        """
        if not self.matches:
            return "no matching number"
        fmt = "{:,.0f}" if self.quantity == "count" else "{:.3f}"
        return fmt.format(self.low) if self.low == self.high else f"{fmt.format(self.low)}–{fmt.format(self.high)}"

    def text(self) -> str:
        """One line for a table or a finding: the value with its row and source, or why none.

        Returns
        -------
        str
            ``"0.429 (LLM-trained RCNN (seed avg); Fig. 4, trainingImgs_vs_brainMatch_scatter.py)"``
            or ``"no matching paper number: <why>"``.
        """
        if not self.matches:
            return f"no matching paper number: {self.note}"
        return f"{self.value_text()} ({self.paper_row}; {self.figure}, {self.code.rsplit('/', 1)[-1]})"


def _check_text(name: str, value) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name}={value!r}: expected a non-empty string")
    return value


def paper_reference(what: str, roi: str | None = None, *, quantity: str = "roi_rsa",
                    target: str | None = None) -> PaperReference:
    """The paper's number for one of this book's quantities, or why the paper has none.

    Pairs like with like only: a book model gets a paper number when the paper reports the
    same quantity for the same kind of model trained the same way
    (:data:`PAPER_ROI_RSA_MODELS`, :data:`PAPER_TRANSFER_MODELS`). Otherwise the answer says
    so (``matches`` False) and why; it never borrows another row (e.g. the paper's ecoset
    network for the book's multi-hot BLT, or the LLM-trained network for MPNet).

    Parameters
    ----------
    what : str
        The book's model (``roi_rsa``, ``transfer``: e.g. ``"blt_mpnet"``, ``"mpnet"``,
        ``"clip_vit_b32"``), or ``"test_images"`` (``count``).
    roi : str, optional
        The ROI (``roi_rsa`` only; required there).
    quantity : {"roi_rsa", "transfer", "count"}, default="roi_rsa"
        Which kind of number.
    target : str, optional
        The readout target (``transfer`` only; required there): ``"mpnet"`` or ``"multihot"``.

    Returns
    -------
    PaperReference
        The match, with the paper's row, what it trained, its figure and code file; or
        ``matches`` False and the reason in ``note``.
    """
    _check_text("what", what)
    if quantity not in REFERENCE_QUANTITIES:
        raise ValueError(f"quantity={quantity!r}: expected one of {REFERENCE_QUANTITIES}")
    ours = BOOK_MODEL_LABELS.get(what, "")
    if quantity == "count":
        if roi is not None or target is not None:
            raise ValueError("quantity='count' takes no roi or target")
        if what != "test_images":
            return PaperReference(what, quantity, "", False, note=f"the paper states no count of {what!r}")
        (label, count, source), = PAPER_COUNTS
        return PaperReference(what, quantity, "", True, float(count), float(count), paper_row=label,
                              paper_trained=label, ours="shared test images of this run",
                              figure=source.split("; ")[-1], code="get_conditions_515", note=source)
    if quantity == "transfer":
        if roi is not None:
            raise ValueError("quantity='transfer' takes target=, not roi=")
        _check_text("target", target)
        hit = [(lo, hi) for n, t, lo, hi in PAPER_TRANSFER if n == what and t == target]
        if not hit:
            known = sorted({n for n, *_ in PAPER_TRANSFER})
            why = (f"the paper's transfer readout has no target {target!r}" if what in known else
                   f"the paper's transfer readout covers only its two BLT networks ({', '.join(known)})")
            return PaperReference(what, quantity, target, False, ours=ours, note=why)
        (low, high), = hit
        return PaperReference(what, quantity, target, True, low, high, paper_row=f"{what} → {target}",
                              paper_trained=PAPER_TRANSFER_MODELS[(what, target)], ours=ours,
                              figure="Fig. 4b", code=PAPER_TRANSFER_CODE, note=PAPER_TRANSFER_NOTE)
    if target is not None:
        raise ValueError("quantity='roi_rsa' takes roi=, not target=")
    _check_text("roi", roi)
    rows = {m: v for m, _, *v in PAPER_ROI_RSA}
    row = next((m for m, (_, book, _) in PAPER_ROI_RSA_MODELS.items() if book == what), None)
    if row is None:
        why = _NO_ROI_RSA_ROW.get(what)
        if why is None and what.startswith("truth:"):
            why = "a planted space of the generated sandbox: the paper has no counterpart"
        if why is None:
            why = _TEXT_SPACE if _is_text_space(what) else f"the paper reports no ROI RSA number for {what!r}"
        return PaperReference(what, quantity, roi, False, ours=ours, note=why)
    if roi not in PAPER_ROI_RSA_ROIS:
        return PaperReference(what, quantity, roi, False, ours=ours, paper_row=row,
                              note=f"the paper tabulates ROI RSA only in {', '.join(PAPER_ROI_RSA_ROIS)}")
    value = rows[row][PAPER_ROI_RSA_ROIS.index(roi)]
    trained, _, note = PAPER_ROI_RSA_MODELS[row]
    return PaperReference(what, quantity, roi, True, value, value, paper_row=row, paper_trained=trained,
                          ours=ours, figure=PAPER_ROI_RSA_FIGURE, code=PAPER_ROI_RSA_CODE, note=note)


def _is_text_space(name: str) -> bool:
    """Whether ``name`` is a registered feature space (a text space of RQ1/RQ2)."""
    from ..features import lookup

    try:
        lookup(name)
    except (ValueError, KeyError):
        return False
    return True


def paper_reference_table():
    """Every number the paper reports that the book compares with, with its source and match.

    Returns
    -------
    table : pandas.DataFrame
        One row per number: ``quantity`` (:data:`REFERENCE_QUANTITIES`), ``paper_row``,
        ``item`` (ROI, target or ``""``), ``low``, ``high``, ``paper_trained`` (what the
        paper trained / scored), ``figure``, ``code`` (file of the paper's code),
        ``matches`` (this book's model that is the same kind of model trained the same way,
        ``""`` when none) and ``note`` (the caveat of the match, or why the book has none).
    """
    import pandas as pd

    rows = []
    for model, _, *values in PAPER_ROI_RSA:
        trained, book, note = PAPER_ROI_RSA_MODELS[model]
        for roi, v in zip(PAPER_ROI_RSA_ROIS, values):
            rows.append(dict(quantity="roi_rsa", paper_row=model, item=roi, low=v, high=v, paper_trained=trained,
                             figure=PAPER_ROI_RSA_FIGURE, code=PAPER_ROI_RSA_CODE, matches=book or "", note=note))
    for network, target, low, high in PAPER_TRANSFER:
        rows.append(dict(quantity="transfer", paper_row=f"{network} → {target}", item=target, low=low, high=high,
                         paper_trained=PAPER_TRANSFER_MODELS[(network, target)], figure="Fig. 4b",
                         code=PAPER_TRANSFER_CODE, matches=network, note=PAPER_TRANSFER_NOTE))
    for label, count, source in PAPER_COUNTS:
        ref = paper_reference("test_images", quantity="count")
        rows.append(dict(quantity="count", paper_row=label, item="", low=float(count), high=float(count),
                         paper_trained=label, figure=ref.figure, code=ref.code, matches="test_images",
                         note=source))
    return pd.DataFrame(rows, columns=["quantity", "paper_row", "item", "low", "high", "paper_trained", "figure",
                                       "code", "matches", "note"])


def paper_comparison(table, quantity: str = "roi_rsa"):
    """This book's numbers next to the paper's matching ones (NaN and the reason where none).

    Parameters
    ----------
    table : pandas.DataFrame
        The book's values: indexed by model, one column per ROI (``roi_rsa``) or per target
        (``transfer``).
    quantity : {"roi_rsa", "transfer"}, default="roi_rsa"
        What ``table`` holds.

    Returns
    -------
    comparison : pandas.DataFrame
        Indexed by ``(model, item)``: ``ours``, ``paper`` (the paper's value, or the middle
        of its range; NaN without a match), ``paper_low``, ``paper_high``, ``paper_row``,
        ``paper_trained``, ``source`` (figure and code file) and ``note`` (the pairing's
        caveat, or why the paper has no matching number).
    """
    import pandas as pd

    if quantity not in ("roi_rsa", "transfer"):
        raise ValueError(f"quantity={quantity!r}: expected 'roi_rsa' or 'transfer'")
    if not isinstance(table, pd.DataFrame):
        raise ValueError("table: expected a DataFrame indexed by model with one column per ROI or target")
    rows = []
    for model in table.index:
        for item in table.columns:
            ref = (paper_reference(str(model), str(item)) if quantity == "roi_rsa"
                   else paper_reference(str(model), quantity="transfer", target=str(item)))
            rows.append(dict(model=model, item=item, ours=float(table.loc[model, item]),
                             paper=(ref.low + ref.high) / 2, paper_low=ref.low, paper_high=ref.high,
                             paper_row=ref.paper_row if ref.matches else "", paper_trained=ref.paper_trained,
                             source=f"{ref.figure}, {ref.code}" if ref.matches else "", note=ref.note))
    return pd.DataFrame(rows, columns=["model", "item", "ours", "paper", "paper_low", "paper_high", "paper_row",
                                       "paper_trained", "source", "note"]).set_index(["model", "item"])
