"""RQ3 beyond category labels (chapter 04): the label baseline, the paired test, the finding.

The sentence-level version of RQ3: decoding from an ROI must identify the test images'
captions better than a ridge from the images' own category labels does. The label baseline
is checked against an independent recomputation (scikit-learn's ``Ridge`` at the chosen
penalty is the same map as ours; here, the same split and our tested ``RidgeCV``), the test
against ``scipy.stats.ttest_rel`` with Holm's correction, and the finding against the truth
card's expected outcome in both sandbox worlds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

from brainllm_utils.chapters import ch04_decoding as da  # noqa: E402
from brainllm_utils.chapters import findings  # noqa: E402
from brainllm_utils.chapters._common import _features, _split  # noqa: E402
from brainllm_utils.chapters.ch03_encoding import _roi_arg  # noqa: E402
from brainllm_utils.encoding import RidgeCV, identification_rank  # noqa: E402
from brainllm_utils.nsd import NSD  # noqa: E402

ALPHAS = np.logspace(-2, 3, 6)


@pytest.fixture(scope="module")
def nsd(tiny_root):
    return NSD(tiny_root)


# --------------------------------------------------------------------------- label baseline
def test_label_baseline_matches_a_direct_recomputation(nsd, cache_dir):
    table = da.label_baseline(nsd, feature="mpnet_category_all", controls=("multihot",), alphas=ALPHAS,
                              cv=3, device="cpu")
    assert list(table.columns) == ["subject", "control", "mean_r", "top1", "identification", "n_train",
                                   "n_test"]
    assert len(table) == len(nsd.subjects) and set(table["control"]) == {"multihot"}
    shared = nsd.shared_test_images(None, nsd.subjects)
    for s, row in zip(nsd.subjects, table.itertuples()):
        d = _split(nsd, s, "fsaverage", _roi_arg(nsd, s, "streams"), shared)
        L_tr, L_te = _features(nsd, "multihot", d.train_ids), _features(nsd, "multihot", d.test_ids)
        E_tr, E_te = (_features(nsd, "mpnet_category_all", ids) for ids in (d.train_ids, d.test_ids))
        pred = RidgeCV(alphas=ALPHAS, cv=3, device="cpu").fit(L_tr, E_tr).predict(L_te)
        rank = identification_rank(pred, E_te)
        n = d.test_ids.size
        assert row.n_test == n and row.n_train == d.train_ids.size
        assert row.identification == pytest.approx(1 - rank.mean() / (n - 1), abs=1e-6)
        assert row.top1 == pytest.approx((rank == 0).mean(), abs=1e-9)
    # the category names' embedding is a function of the labels: the labels identify it well
    assert (table["identification"] > 0.7).all()
    again = da.label_baseline(nsd, feature="mpnet_category_all", controls=("multihot",), alphas=ALPHAS,
                              cv=3, device="cpu")
    pd.testing.assert_frame_equal(again, table)


@pytest.mark.parametrize("kwargs, match", [
    (dict(controls="multihot"), "controls"),
    (dict(controls=()), "controls"),
    (dict(alphas=[1.0, -1.0]), "alphas"),
    (dict(alphas=[[1.0]]), "alphas"),
    (dict(subjects=["subj08"]), "no data"),
])
def test_label_baseline_refuses_bad_arguments(nsd, kwargs, match):
    with pytest.raises(ValueError, match=match):
        da.label_baseline(nsd, **{"feature": "multihot", **kwargs})


# --------------------------------------------------------------------------- the paired test
def _tables(rng, n_subjects=6, gain=0.05):
    subjects = [f"subj{i:02d}" for i in range(1, n_subjects + 1)]
    labels = rng.uniform(0.7, 0.8, n_subjects)
    rows = []
    for s, lab in zip(subjects, labels):
        rows.append(dict(subject=s, roi="ventral", identification=lab + gain + rng.normal(0, 0.01)))
        rows.append(dict(subject=s, roi="early", identification=lab - 0.2 + rng.normal(0, 0.01)))
    base = [dict(subject=s, control=c, identification=lab - (0.1 if c == "mpnet_category_all" else 0.0))
            for s, lab in zip(subjects, labels) for c in ("multihot", "mpnet_category_all")]
    return pd.DataFrame(rows), pd.DataFrame(base), labels


def test_beyond_labels_table_is_the_paired_t_test_against_the_best_control(rng):
    by_roi, base, labels = _tables(rng)
    tests = da.beyond_labels_table(by_roi, base)
    assert list(tests["roi"]) == ["ventral", "early"]
    assert set(tests["control"]) == {"multihot"}  # the best control per subject
    p_raw = []
    for roi in ("ventral", "early"):
        brain = by_roi[by_roi["roi"] == roi]["identification"].to_numpy()
        ref = stats.ttest_rel(brain, labels)
        row = tests[tests["roi"] == roi].iloc[0]
        assert row["mean_diff"] == pytest.approx((brain - labels).mean(), abs=1e-12)
        assert row["p"] == pytest.approx(ref.pvalue, rel=1e-9)
        assert row["mean_a"] == pytest.approx(brain.mean()) and row["mean_b"] == pytest.approx(labels.mean())
        p_raw.append(ref.pvalue)
    # Holm over the two ROIs
    order = np.argsort(p_raw)
    holm = np.minimum(1, np.maximum.accumulate([p_raw[i] * (2 - k) for k, i in enumerate(order)]))
    assert np.allclose(tests["p_adj"].to_numpy()[order], holm)
    ventral, early = (tests[tests["roi"] == r].iloc[0] for r in ("ventral", "early"))
    assert ventral["significant"] and ventral["mean_diff"] > 0
    assert early["significant"] and early["mean_diff"] < 0
    # no gain: not significant
    flat, base0, _ = _tables(np.random.default_rng(1), gain=0.0)
    v = da.beyond_labels_table(flat, base0, rois=["ventral"]).iloc[0]
    assert abs(v["mean_diff"]) < 0.02


def test_beyond_labels_table_refuses_bad_tables(rng):
    by_roi, base, _ = _tables(rng)
    with pytest.raises(ValueError, match="by_roi: expected columns"):
        da.beyond_labels_table(by_roi.drop(columns="identification"), base)
    with pytest.raises(ValueError, match="baseline: expected columns"):
        da.beyond_labels_table(by_roi, base.drop(columns="control"))
    with pytest.raises(ValueError, match="not in by_roi"):
        da.beyond_labels_table(by_roi, base, rois=["parietal"])
    with pytest.raises(ValueError, match="no rows for subjects"):
        da.beyond_labels_table(by_roi, base[base["subject"] != "subj01"])


# --------------------------------------------------------------------------- the finding
CARD_NULL = {"roi_spaces": {"ventral": {"category": 1.0}}}
CARD_POS = {"roi_spaces": {"ventral": {"sentence": 0.5, "category": 0.5}}}


def _test_row(diff, significant, n=4):
    return pd.DataFrame([dict(roi="ventral", model_a="brain", model_b="labels", n=n, mean_a=0.8 + diff,
                              mean_b=0.8, mean_diff=diff, t=3.0, p=0.01, p_adj=0.02 if significant else 0.4,
                              significant=significant, correction="holm", control="multihot")])


@pytest.mark.parametrize("card, diff, sig, agrees, prefix", [
    (CARD_POS, 0.05, True, True, findings.FOUND),
    (CARD_POS, 0.05, False, False, findings.ABSENT),
    (CARD_POS, -0.05, True, False, findings.ABSENT),
    (CARD_NULL, -0.05, True, True, findings.ABSENT),
    (CARD_NULL, 0.05, True, False, findings.FOUND),
    (None, 0.05, True, True, findings.FOUND),
    (None, 0.01, False, False, findings.ABSENT),
])
def test_beyond_labels_row_follows_the_card(card, diff, sig, agrees, prefix):
    row = findings.beyond_labels_row(_test_row(diff, sig), card=card)
    assert row["rq"] == "RQ3" and row["agrees"] is agrees
    assert row["recovered"].startswith(prefix) and "multihot" in row["recovered"]
    if card is CARD_POS:
        assert row["expected"].startswith(findings.FOUND)
    elif card is CARD_NULL:
        assert row["expected"].startswith(findings.ABSENT)


def test_beyond_labels_row_without_enough_subjects():
    row = findings.beyond_labels_row(_test_row(0.05, False, n=1), card=CARD_POS)
    assert row["agrees"] is None and row["recovered"] == findings.NEEDS_SUBJECTS
    assert findings.beyond_labels_row(None)["agrees"] is None
    assert findings.beyond_labels_row(_test_row(0.05, True), roi="lateral", card=CARD_POS) is None


def test_decoding_rows_take_the_claim():
    with pytest.raises(ValueError, match="needs card"):
        findings.decoding_rows(None, None, None, None, feature="mpnet", sandbox=True, truth=pd.DataFrame(),
                               beyond_labels=_test_row(0.05, True))
