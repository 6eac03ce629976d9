"""Reading a sandbox's ground truth (``<root>/sandbox_truth/``): the card and its arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._utils.docs import fill_doc

__all__ = ["TRUTH_DIR", "SANDBOX_FORMAT", "load_truth", "is_sandbox", "is_current", "truth_table",
           "load_truth_array"]

#: Folder of the ground truth inside a sandbox root.
TRUTH_DIR = "sandbox_truth"
#: Version of the sandbox's file set, written to the card as ``"format"``. Raised whenever the
#: generator adds or changes files that the chapters read (2: the func1pt8 → fsaverage
#: transforms of the paper's searchlight; 3: tuning shared across subjects changes the betas,
#: and the card gains ``shared_tuning`` and ``sentence_space``), so that ``make book``
#: regenerates an older sandbox instead of stopping at a missing file or reading betas of
#: another generative model. A card without the key is format 1.
SANDBOX_FORMAT = 3


@fill_doc
def load_truth(root):
    """The truth card (``<root>/sandbox_truth/card.json``) as a dict.

    Parameters
    ----------
    %(root)s

    Returns
    -------
    card : dict
        The generator's settings and planted truth (preset, seed, ROI → feature spaces,
        SNR ranges, sizes, ...).
    """
    return json.loads((Path(root) / TRUTH_DIR / "card.json").read_text())


@fill_doc
def is_sandbox(root) -> bool:
    """Whether ``root`` is a generated sandbox (it holds a truth card).

    Parameters
    ----------
    %(root)s

    Returns
    -------
    bool
        True when ``<root>/sandbox_truth/card.json`` exists.
    """
    return (Path(root) / TRUTH_DIR / "card.json").is_file()


@fill_doc
def is_current(root) -> bool:
    """Whether ``root`` is a sandbox written by this version's generator (:data:`SANDBOX_FORMAT`).

    Parameters
    ----------
    %(root)s

    Returns
    -------
    bool
        False when ``root`` is no sandbox, or when its card's ``"format"`` (1 when absent)
        differs from :data:`SANDBOX_FORMAT`: the tree lacks files this version reads.
    """
    if not is_sandbox(root):
        return False
    return int(load_truth(root).get("format", 1)) == SANDBOX_FORMAT


def truth_table(card):
    """The truth card as a DataFrame, one row per stream ROI.

    Each row gives the ROI's planted feature spaces (weights) and SNR range; the
    sandbox's sizes are in the caption.

    Parameters
    ----------
    card : dict
        From :func:`load_truth`.

    Returns
    -------
    table : pandas.DataFrame
        Indexed by ROI, columns ``driven_by`` and ``snr``; ``table.attrs["caption"]``
        states the preset, seed and sizes.
    """
    import pandas as pd

    rows = []
    for roi, spaces in card["roi_spaces"].items():
        lo, hi = card["snr_ranges"][roi]
        mix = ", ".join(f"{name} {w:.0%}" if w < 1 else name
                        for name, w in sorted(spaces.items(), key=lambda kv: -kv[1]))
        rows.append(dict(roi=roi if roi != "other" else "rest of nsdgeneral",
                         driven_by=mix, snr=f"{lo:.1f}-{hi:.1f}"))
    table = pd.DataFrame(rows).set_index("roi")
    sizes = card["sizes"]
    caption = (
        f"preset {card['preset']} (seed {card['seed']}): {sizes['n_images']} images, "
        f"{len(card['subjects_with_data'])} subjects, {sizes['trials_per_session']} trials per "
        f"session, {card['n_strict_shared']} shared test images, "
        f"{len(card['role_reversed_pairs'])} role-reversed image pairs"
    )
    if "shared_tuning" in card:  # format ≥ 3
        caption += f", {card['shared_tuning']:.0%} of each vertex's tuning shared by the subjects"
    if card.get("sentence_space"):
        caption += f"; sentence = {card['sentence_space']['model']}, mean over each image's captions"
    table.attrs["caption"] = caption
    return table


@fill_doc
def load_truth_array(root, name):
    """A truth array, e.g. ``features_category`` or ``snr_fsaverage_subj01``.

    Parameters
    ----------
    %(root)s
    name : str
        File stem under ``<root>/sandbox_truth/``.

    Returns
    -------
    ndarray
        The array, as saved.
    """
    return np.load(Path(root) / TRUTH_DIR / f"{name}.npy", allow_pickle=False)
