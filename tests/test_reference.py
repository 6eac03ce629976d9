"""brainllm_utils.chapters.reference: the paper's numbers as data, paired like with like.

The values are checked against ``shared/docs/paper_methods.md`` §7 (typed here from that
document, an outside reference for the package's data), and every lookup is checked to
answer "no matching number" rather than borrow another row.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from brainllm_utils.chapters import reference as ref
from brainllm_utils.vision import COMPARISON_MODELS

#: paper_methods.md §7, typed from the document: model → (ventral, lateral, parietal)
METHODS_ROI_RSA = {"LLM-trained RCNN (seed avg)": (0.429, 0.468, 0.389),
                   "ecoset RCNN (category)": (0.367, 0.368, 0.340),
                   "CLIP ViT (image)": (0.289, 0.304, 0.278),
                   "SimCLR RN50": (0.342, 0.302, 0.295)}


def test_every_paper_row_has_its_source_and_label():
    assert set(ref.PAPER_ROI_RSA_MODELS) == {m for m, *_ in ref.PAPER_ROI_RSA}
    assert set(ref.PAPER_TRANSFER_MODELS) == {(n, t) for n, t, *_ in ref.PAPER_TRANSFER}
    table = ref.paper_reference_table()
    assert len(table) == 3 * len(ref.PAPER_ROI_RSA) + len(ref.PAPER_TRANSFER) + len(ref.PAPER_COUNTS)
    for col in ("paper_trained", "figure", "code", "note"):
        assert table[col].str.len().gt(0).all(), col
    rsa = table[table["quantity"] == "roi_rsa"].set_index(["paper_row", "item"])
    for model, values in METHODS_ROI_RSA.items():
        for roi, v in zip(ref.PAPER_ROI_RSA_ROIS, values):
            assert rsa.loc[(model, roi), "low"] == v
    assert rsa["code"].eq("get_dnn_activities/trainingImgs_vs_brainMatch_scatter.py").all()
    ecoset = rsa.loc[("ecoset RCNN (category)", "ventral")]
    assert ecoset["matches"] == "" and "ecoset" in ecoset["paper_trained"] and "1.45M" in ecoset["paper_trained"]
    assert rsa.loc[("LLM-trained RCNN (seed avg)", "lateral"), "matches"] == "blt_mpnet"
    # each book model matches at most one paper row
    matched = rsa.reset_index().drop_duplicates("paper_row")["matches"]
    assert not matched[matched != ""].duplicated().any()


def test_lookup_pairs_like_with_like():
    r = ref.paper_reference("blt_mpnet", "lateral")
    assert r.matches and r.low == r.high == 0.468 and r.paper_row == "LLM-trained RCNN (seed avg)"
    assert "MPNet" in r.paper_trained and "48,236" in r.paper_trained and r.code.endswith("scatter.py")
    assert r.text().startswith("0.468 (LLM-trained RCNN (seed avg); Fig. 4")
    assert ref.paper_reference("clip_vit_b32", "parietal").low == 0.278
    assert ref.paper_reference("resnext101_32x8d_wsl", "ventral").low == 0.323
    assert ref.paper_reference("nf_resnet50", "lateral").low == 0.337


@pytest.mark.parametrize("model, why", [
    ("blt_multihot", "ecoset"),          # the paper's category net is another network on other data
    ("mpnet", "no absolute per-ROI MPNet value"),
    ("multihot", "text spaces"),
    ("mpnet_nouns", "text spaces"),
    ("alexnet", "brain-score"),
    ("resnet50", "resnet50_julios"),
    ("untrained_blt", "untrained"),
    ("efficientnet_lite0", "EfficientNet"),
    ("truth:category", "sandbox"),
    ("my_new_net", "'my_new_net'"),
])
def test_lookup_never_borrows_a_row(model, why):
    for roi in ref.PAPER_ROI_RSA_ROIS:
        r = ref.paper_reference(model, roi)
        assert not r.matches and math.isnan(r.low) and math.isnan(r.high) and r.paper_row == ""
        assert why in r.note
        assert r.text().startswith("no matching paper number: ") and r.value_text() == "no matching number"


def test_every_comparison_model_has_an_answer():
    for name in COMPARISON_MODELS:
        assert name in ref.BOOK_MODEL_LABELS
        r = ref.paper_reference(name, "ventral")
        assert r.note, name  # either the caveat of its match or why there is none


def test_roi_outside_the_papers_table():
    r = ref.paper_reference("blt_mpnet", "early")
    assert not r.matches and "only in ventral, lateral, parietal" in r.note


def test_transfer_and_count_lookups():
    r = ref.paper_reference("blt_mpnet", quantity="transfer", target="mpnet")
    assert (r.low, r.high) == (0.682, 0.693) and r.figure == "Fig. 4b" and r.value_text() == "0.682–0.693"
    assert ref.paper_reference("blt_multihot", quantity="transfer", target="mpnet").value_text() == "0.621"
    assert not ref.paper_reference("clip_rn50", quantity="transfer", target="mpnet").matches
    assert not ref.paper_reference("blt_mpnet", quantity="transfer", target="glove").matches
    c = ref.paper_reference("test_images", quantity="count")
    assert c.matches and c.low == 515 and c.value_text() == "515"
    assert not ref.paper_reference("subjects", quantity="count").matches


@pytest.mark.parametrize("kwargs, match", [
    (dict(what="", roi="ventral"), "what"),
    (dict(what="blt_mpnet"), "roi"),
    (dict(what="blt_mpnet", roi="ventral", quantity="rsa"), "quantity"),
    (dict(what="blt_mpnet", roi="ventral", quantity="transfer", target="mpnet"), "target=, not roi="),
    (dict(what="blt_mpnet", quantity="transfer"), "target"),
    (dict(what="blt_mpnet", roi="ventral", target="mpnet"), "roi=, not target="),
    (dict(what="test_images", roi="ventral", quantity="count"), "no roi or target"),
])
def test_lookup_validates_its_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ref.paper_reference(**kwargs)


def test_paper_comparison_table():
    ours = pd.DataFrame({"ventral": [0.40, 0.30, 0.20], "early": [0.5, 0.4, 0.3]},
                        index=["blt_mpnet", "blt_multihot", "mpnet"])
    t = ref.paper_comparison(ours)
    assert t.loc[("blt_mpnet", "ventral"), "paper"] == 0.429 and t.loc[("blt_mpnet", "ventral"), "ours"] == 0.40
    for key in [("blt_multihot", "ventral"), ("mpnet", "ventral"), ("blt_mpnet", "early")]:
        assert math.isnan(t.loc[key, "paper"]) and t.loc[key, "paper_row"] == "" and t.loc[key, "note"]
    tr = ref.paper_comparison(pd.DataFrame({"multihot": [0.6]}, index=["blt_mpnet"]), quantity="transfer")
    assert tr.loc[("blt_mpnet", "multihot"), "paper"] == 0.638
    with pytest.raises(ValueError, match="quantity"):
        ref.paper_comparison(ours, quantity="count")
    with pytest.raises(ValueError, match="DataFrame"):
        ref.paper_comparison({"ventral": 1})


def test_chapter_02s_table_gives_mpnet_no_borrowed_number():
    from brainllm_utils.chapters import paper_rsa_comparison

    df = pd.DataFrame(dict(subject=["s1", "s2"] * 2, roi="lateral", model=["mpnet"] * 2 + ["multihot"] * 2,
                           r_normalised=[0.5, 0.7, 0.2, 0.4], r=0.1))
    t = paper_rsa_comparison(df, ["mpnet", "multihot"])
    assert t.loc[("mpnet", "lateral"), "ours"] == pytest.approx(0.6)
    assert t["paper"].isna().all() and (t["paper_row"] == "").all()  # not the LLM-trained RCNN's 0.468
    assert "no absolute per-ROI MPNet value" in t.loc[("mpnet", "ventral"), "note"]
    assert math.isnan(t.loc[("mpnet", "ventral"), "ours"])
    assert paper_rsa_comparison(df, ["mpnet"], value="r").loc[("mpnet", "lateral"), "ours"] == pytest.approx(0.1)
    with pytest.raises(ValueError, match="value='x'"):
        paper_rsa_comparison(df, ["mpnet"], value="x")
