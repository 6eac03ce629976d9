"""brainllm_utils.chapters.findings: what chapters record for the summary page, and the criteria.

Every scorecard row is tested with small synthetic inputs (no notebook, no NSD data): once where
it agrees, once where it does not, on the sandbox branch (planted truth) and on the real-NSD
branch, and where it has no criterion (``agrees is None``) or does not apply (``None``).
"""

from __future__ import annotations

import ast
import json

import numpy as np
import pandas as pd
import pytest

from brainllm_utils import viz
from brainllm_utils.chapters import findings
from brainllm_utils.nsd import NSD
from brainllm_utils.paths import REPO_ROOT


# --------------------------------------------------------------------------- record and load
def test_record_and_load_round_trip(tiny_root, tmp_path):
    nsd = NSD(tiny_root)
    rows = [findings.finding("RQ3", "decoding r", 0.51234, "> 0", True, "mostly positive"),
            findings.finding("RQ1", "searchlight", "12 of 100 vertices", agrees=None)]
    path = findings.record("04_decoding", rows, nsd, results_dir=tmp_path)
    assert path.name == "04_decoding.json"
    findings.record("02_rsa", [findings.finding("RQ1", "ROI RSA", float("nan"), agrees=False)],
                    nsd, results_dir=tmp_path)
    df = findings.load(nsd, results_dir=tmp_path)
    assert list(df.columns) == list(findings.FIELDS)
    assert list(df["rq"]) == ["RQ1", "RQ1", "RQ3"]  # RQ order, then chapter
    assert list(df["chapter"]) == ["02_rsa", "04_decoding", "04_decoding"]
    assert df.loc[2, "recovered"] == "0.512" and df.loc[0, "recovered"] == "nan"
    assert df.loc[2, "agrees"] is True or df.loc[2, "agrees"] == True  # noqa: E712


def test_grid_runs_are_kept_apart(tiny_root, tmp_path, monkeypatch):
    nsd = NSD(tiny_root)
    monkeypatch.setenv("BRAINLLM_RUN", "03_encoding__ignored")  # no longer read
    findings.record("03_encoding", [findings.finding("RQ1", "x", 1.0)], nsd, results_dir=tmp_path,
                    run="03_encoding__subjects-subj02")
    assert findings.load(nsd, results_dir=tmp_path).empty
    findings.record("03_encoding", [findings.finding("RQ1", "x", 2.0)], nsd, results_dir=tmp_path,
                    run=None)  # a notebook run by hand: run_name = None
    assert list(findings.load(nsd, results_dir=tmp_path)["recovered"]) == ["2.000"]
    files = sorted(p.name for p in findings.findings_dir(nsd, tmp_path).iterdir())
    assert files == ["03_encoding.json", "03_encoding__subjects-subj02.json"]
    assert json.loads((findings.findings_dir(nsd, tmp_path) / files[1]).read_text())["run"] \
        == "03_encoding__subjects-subj02"


def test_grid_jobs_record_under_their_own_run_name(tiny_root, tmp_path):
    """The batch gives each chapter job its output name as ``run_name``; recording under it
    keeps a grid point's findings out of the summary."""
    from brainllm_utils import batch

    jobs = batch.plan_jobs(["03_encoding"], grid={"subjects": [["subj01"], ["subj02"]]},
                           data_home=tiny_root, output_dir=tmp_path / "out")
    names = [j.parameters["run_name"] for j in jobs]
    assert names == ["03_encoding__subjects-subj01", "03_encoding__subjects-subj02"]
    (own,) = batch.plan_jobs(["03_encoding"], data_home=tiny_root, output_dir=tmp_path / "out")
    nsd = NSD(tiny_root)
    for run in names + [own.parameters["run_name"]]:
        findings.record("03_encoding", [findings.finding("RQ1", run, 1.0)], nsd,
                        results_dir=tmp_path, run=run)
    assert list(findings.load(nsd, results_dir=tmp_path)["analysis"]) == ["03_encoding"]


def test_bad_findings_are_refused(tiny_root, tmp_path):
    with pytest.raises(ValueError, match="RQ9"):
        findings.finding("RQ9", "x", 1)
    with pytest.raises(ValueError, match="lacks"):
        findings.record("01_x", [{"rq": "RQ1", "analysis": "x"}], NSD(tiny_root),
                        results_dir=tmp_path)


def test_scorecard_figure(tiny_root, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nsd = NSD(tiny_root)
    findings.record("05_image_to_llm", [findings.finding("RQ4", "a", 0.1, agrees=True),
                                        findings.finding("RQ4", "b", 0.2, agrees=False)],
                    nsd, results_dir=tmp_path, run="05_image_to_llm")
    fig, ax = plt.subplots()
    out = viz.plot_findings(findings.load(nsd, results_dir=tmp_path), ax=ax)
    assert out is ax
    texts = [t.get_text() for t in ax.texts]
    assert "RQ4" in texts and "✓" in texts and "✗" in texts
    assert "1 agree, 1 disagree" in ax.get_title(loc="left")
    viz.plot_findings(findings.load(nsd, results_dir=tmp_path / "none"), ax=ax)
    plt.close(fig)


@pytest.mark.parametrize("stem, function", [
    ("01_feature_spaces", "feature_space_rows"), ("02_rsa", "rsa_rows"), ("03_encoding", "encoding_rows"),
    ("04_decoding", "decoding_rows"), ("05_image_to_llm", "image_to_llm_rows"),
])
def test_hidden_cells_are_one_call(stem, function):
    """The notebooks hold no criteria or thresholds: the hidden cell is one statement,
    ``findings.record(stem, findings.<chapter>_rows(...), nsd, run=run_name)``."""
    nb = json.loads((REPO_ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    (cell,) = [c for c in nb["cells"] if "remove-cell" in c.get("metadata", {}).get("tags", [])]
    tree = ast.parse("".join(cell["source"]))
    assert len(tree.body) == 1, f"{stem}: the hidden cell must be one call"
    call = tree.body[0].value
    assert ast.unparse(call.func) == "findings.record"
    assert ast.literal_eval(call.args[0]) == stem
    assert ast.unparse(call.args[1].func) == f"findings.{function}"
    assert {k.arg: ast.unparse(k.value) for k in call.keywords} == {"run": "run_name"}
    numbers = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant)
               and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)]
    assert not numbers, f"{stem}: literal numbers (thresholds?) in the hidden cell: {numbers}"


# --------------------------------------------------------------------------- 01 feature spaces
def _closest(**spaces):
    return pd.DataFrame({"closest planted space": {m: f"truth:{s}" for m, s in spaces.items()},
                         "r": {m: 0.5 for m in spaces}})


def _ratios(**ratio):
    return pd.DataFrame({"reversal distance / random distance": ratio})


PAIRS = np.arange(6)  # three role-reversed pairs: a random baseline exists
ONE_PAIR = np.arange(2)


def test_closest_planted_space_row():
    good = findings.closest_planted_space_row(_closest(mpnet="category", mpnet_verbs="interaction",
                                                       multihot="category"))
    assert good["agrees"] is True and good["rq"] == "RQ1"
    assert good["recovered"] == "category for 2 of 3 (mpnet_verbs: interaction); mpnet r = 0.500"
    assert good["expected"] == "category; interaction for mpnet_verbs (actions)"
    bad = findings.closest_planted_space_row(_closest(mpnet="layout", mpnet_verbs="category"))
    assert bad["agrees"] is False
    assert bad["recovered"] == "category for 1 of 2 (mpnet: layout); mpnet r = 0.500"
    assert findings.closest_planted_space_row(None) is None  # real NSD: no planted spaces


def test_role_reversal_row():
    table = _ratios(mpnet=0.2, minilm=0.0, **{"truth:interaction": 0.6, "multihot": 0.0})
    good = findings.role_reversal_row(table, "mpnet", PAIRS)
    assert good["agrees"] is True and good["recovered"] == "0.200"
    assert good["expected"] == "> 0 (word order encoded), small next to truth:interaction (0.600)"
    assert findings.role_reversal_row(table, "minilm", PAIRS)["agrees"] is False  # word order lost
    too_far = _ratios(mpnet=0.9, **{"truth:interaction": 0.6})
    assert findings.role_reversal_row(too_far, "mpnet", PAIRS)["agrees"] is False
    assert findings.role_reversal_row(table, "mpnet", ONE_PAIR)["agrees"] is None  # no baseline
    assert findings.role_reversal_row(table, "minilm_large", PAIRS) is None
    assert findings.role_reversal_row(None, "mpnet", PAIRS) is None


def test_bag_of_words_row():
    good = findings.bag_of_words_row(_ratios(mpnet=0.2, multihot=0.0, mpnet_word_avg=1e-5), PAIRS)
    assert good["agrees"] is True
    assert good["analysis"] == ("Role-reversed pairs: bags of words (mpnet_word_avg, multihot), "
                                "largest reversal / random distance")
    assert good["expected"] == "0 (same words, same vector)"
    bad = findings.bag_of_words_row(_ratios(multihot=0.0, mpnet_word_avg=0.01), PAIRS)
    assert bad["agrees"] is False and bad["recovered"] == "0.010"
    assert findings.bag_of_words_row(_ratios(multihot=0.3), ONE_PAIR)["agrees"] is None
    assert findings.bag_of_words_row(_ratios(mpnet=0.2), PAIRS) is None
    assert findings.bag_of_words_row(None, PAIRS) is None


def _rdm_matrix(names):
    M = pd.DataFrame(0.5, index=names, columns=names)
    M.attrs["n_sets"] = 2
    return M


def test_model_rdm_row_has_no_criterion():
    row = findings.model_rdm_row(_rdm_matrix(["mpnet", "minilm"]), "minilm", np.zeros((2, 100)))
    assert row["agrees"] is None and row["recovered"] == "0.500"
    assert row["analysis"] == "Model RDMs: r(mpnet, minilm), 2 sets of 100 images"
    assert row["paper"] == "no model-by-model numbers (Fig. 3: brain scores only)"
    assert findings.model_rdm_row(_rdm_matrix(["mpnet"]), "minilm", np.zeros((2, 100))) is None


def test_feature_space_rows_sandbox_and_nsd():
    M = _rdm_matrix(["mpnet", "minilm", "mpnet_word_avg", "mpnet_scrambled"])
    sets = np.zeros((2, 12))
    table = _ratios(mpnet=0.2, minilm=0.1, multihot=0.0, **{"truth:interaction": 0.6})
    rows = findings.feature_space_rows(M, sets, summary=_closest(mpnet="category"), table=table,
                                       pair_ids=PAIRS)
    assert [r["analysis"].split(":")[0] for r in rows] == [
        "Model RDMs vs planted spaces", "Role-reversed pairs", "Role-reversed pairs",
        "Role-reversed pairs", "Model RDMs", "Model RDMs"]  # capped at MAX_FEATURE_SPACE_ROWS
    assert rows[-1]["analysis"].startswith("Model RDMs: r(mpnet, mpnet_scrambled)")
    nsd_rows = findings.feature_space_rows(M, sets)  # real NSD: no planted truth
    assert [r["analysis"][:22] for r in nsd_rows] == ["Model RDMs: r(mpnet, m"] * 3
    assert all(r["agrees"] is None for r in nsd_rows)
    with pytest.raises(ValueError, match="pair_ids"):
        findings.feature_space_rows(M, sets, table=table)


# --------------------------------------------------------------------------- 02 RSA
CARD = {"roi_spaces": {"ventral": {"category": 1.0}, "lateral": {"interaction": 0.7, "category": 0.3},
                       "parietal": {"layout": 1.0}, "early": {"lowlevel": 1.0}}}


def _group(main="mpnet", **rois):
    """``roi=(mean, significant)`` for ``main``, plus a control model."""
    rows = [dict(roi=r, model=main, mean=m, significant=s) for r, (m, s) in rois.items()]
    rows += [dict(roi=r, model="multihot", mean=0.0, significant=False) for r in rois]
    return pd.DataFrame(rows)


def test_roi_rsa_row_on_real_nsd():
    group = _group(ventral=(0.1, True), lateral=(0.1, False))
    ours = pd.Series({"ventral": 0.4, "lateral": 0.3})
    good = findings.roi_rsa_row("ventral", group, ours, "mpnet")
    assert good["agrees"] is True and good["recovered"] == "0.400"
    assert good["expected"] == "> 0, FDR-significant across subjects"
    # the paper publishes no per-ROI MPNet value: no number borrowed from a network's row
    assert good["paper"] == "MPNet FDR-significant (Fig. 1b, 3); no published mpnet value"
    assert findings.roi_rsa_row("lateral", group, ours, "mpnet")["agrees"] is False
    negative = _group(ventral=(-0.1, True))
    assert findings.roi_rsa_row("ventral", negative, pd.Series({"ventral": -0.1}), "mpnet")["agrees"] is False
    assert findings.roi_rsa_row("parietal", group, ours, "mpnet") is None  # not analysed
    early = pd.Series({"early": 0.1})
    assert findings.roi_rsa_row("early", _group(early=(0.1, True)), early, "mpnet") is None  # no paper ROI


def test_roi_rsa_row_on_the_sandbox():
    group = _group(ventral=(0.1, True), lateral=(0.1, True), parietal=(0.01, False))
    ours = pd.Series({"ventral": 0.4, "lateral": 0.3, "parietal": 0.05})
    row = findings.roi_rsa_row("lateral", group, ours, "mpnet", CARD)
    assert row["agrees"] is True
    assert row["expected"] == "> 0, FDR-significant (planted: interaction 70%, category 30%)"
    # nothing captions describe is planted in parietal: it must score lowest
    low = findings.roi_rsa_row("parietal", group, ours, "mpnet", CARD)
    assert low["agrees"] is True
    assert low["expected"] == "lowest of ventral, lateral, parietal (planted: layout 100%)"
    high = findings.roi_rsa_row("parietal", group, ours.replace({0.05: 0.5}), "mpnet", CARD)
    assert high["agrees"] is False
    alone = findings.roi_rsa_row("parietal", _group(parietal=(0.0, False)), pd.Series({"parietal": 0.05}),
                                 "mpnet", CARD)
    assert alone["agrees"] is None  # nothing to compare with


def test_searchlight_row():
    sl = {"reject": np.array([True, False, False, False]), "t": np.array([5.0, 1.0, 0.5, np.nan])}
    good = findings.searchlight_row(sl, 8, "mpnet")
    assert good["agrees"] is True and good["recovered"] == "1 of 3 (33.3 %)"
    assert good["analysis"] == "Surface searchlight: mpnet FDR-significant vertices (q = 0.05, 8 subjects)"
    assert good["expected"] == "> 0"
    bad = findings.searchlight_row({"reject": np.zeros(4, bool), "t": np.ones(4)}, 3, "mpnet", sandbox=True)
    assert bad["agrees"] is False and bad["recovered"] == "0 of 4 (0.0 %)"
    assert bad["expected"] == "> 0 (planted signal across the visual streams)"


def test_paper_searchlight_row():
    names = {0: "Unknown", 5: "ventral", 6: "lateral", 7: "parietal", 1: "early"}
    streams = np.array([5, 5, 6, 6, 7, 7, 1, 1, 0, 0])
    test = {"reject": np.array([1, 0, 1, 0, 0, 0, 1, 0, 0, 0], bool), "mean": np.full(10, 0.1),
            "t": np.ones(10)}
    kw = dict(n_subjects=8, main="mpnet", radius=6)
    good = findings.paper_searchlight_row(test, streams, names, **kw)
    assert good["agrees"] is True and good["recovered"] == "3 of 10 (ventral 1, lateral 1, parietal 0)"
    assert good["analysis"].startswith("Paper's searchlight (volume spheres < 6 voxels → fsaverage)")
    assert good["expected"] == "> 0 in ventral and in lateral or parietal"
    only_ventral = dict(test, reject=np.array([1, 0, 0, 0, 0, 0, 1, 0, 0, 0], bool))
    assert findings.paper_searchlight_row(only_ventral, streams, names, **kw)["agrees"] is False
    negative = dict(test, mean=np.full(10, -0.1))  # significant, but r < 0: not counted
    assert findings.paper_searchlight_row(negative, streams, names, **kw)["recovered"].startswith("0 of 10")
    # sandbox: nsdgeneral = the first six vertices
    inside = np.arange(10) < 6
    spill = findings.paper_searchlight_row(test, streams, names, inside, sandbox=True, **kw)
    assert spill["agrees"] is False  # 2 of 6 inside (33 %) vs 1 of 4 outside (25 %): < 5x
    assert spill["recovered"] == "3 of 10; 33.3 % of nsdgeneral vs 25.0 % outside"
    clean = dict(test, reject=np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 0], bool))
    assert findings.paper_searchlight_row(clean, streams, names, inside, sandbox=True, **kw)["agrees"] is True
    none = dict(test, reject=np.zeros(10, bool))
    assert findings.paper_searchlight_row(none, streams, names, inside, sandbox=True, **kw)["agrees"] is False
    with pytest.raises(ValueError, match="nsdgeneral"):
        findings.paper_searchlight_row(test, streams, names, sandbox=True, **kw)
    with pytest.raises(ValueError, match="streams"):
        findings.paper_searchlight_row(test, streams[:-1], names, **kw)
    one = findings.paper_searchlight_row(None, streams, names, n_subjects=1, main="mpnet", radius=6)
    assert one["agrees"] is None and one["recovered"] == findings.NEEDS_SUBJECTS
    rows = findings.rsa_rows(_group(ventral=(0.1, True)), pd.Series({"ventral": 0.4}), None,
                             _tests(0.1, True), ["multihot"], main="mpnet", n_subjects=8,
                             paper_sl=dict(test=test, streams=streams, names=names, radius=6))
    assert [r["analysis"][:12] for r in rows] == ["ROI RSA, ven", "Paper's sear", "Surface sear",
                                                  "Paired mpnet"]


def _tests(d, significant, control="multihot", p=0.01):
    return pd.DataFrame([dict(roi="ventral", model_b=control, mean_diff=d, p_fdr=p, significant=significant),
                         dict(roi="lateral", model_b=control, mean_diff=-d, p_fdr=p, significant=True)])


def test_category_control_row_on_real_nsd():
    controls = ["multihot", "mpnet_word_avg"]
    good = findings.category_control_row(_tests(0.05, True), controls, "mpnet")
    assert good["agrees"] is True and good["recovered"] == "+0.050 (p_FDR = 0.01)"
    assert good["analysis"] == "Paired mpnet − multihot, ventral (r difference)"
    assert good["expected"] == "> 0, FDR-significant (full caption beats categories)"
    assert findings.category_control_row(_tests(-0.05, True), controls, "mpnet")["agrees"] is False
    assert findings.category_control_row(_tests(0.05, False), controls, "mpnet")["agrees"] is False
    assert findings.category_control_row(_tests(0.05, True), ["mpnet_word_avg"], "mpnet") is None


def test_category_control_row_on_the_sandbox():
    """Only categories are planted in ventral cortex: the category space must win there."""
    controls = ["mpnet_category_all", "multihot"]
    tests = _tests(-0.1, True, control="mpnet_category_all")
    good = findings.category_control_row(tests, controls, "mpnet", CARD)
    assert good["agrees"] is True
    assert good["expected"] == ("absent: < 0, FDR-significant (planted: category 100%: the category space "
                                "should win)")
    assert findings.category_control_row(_tests(0.1, True, "mpnet_category_all"), controls, "mpnet",
                                         CARD)["agrees"] is False
    assert findings.category_control_row(_tests(-0.1, False, "mpnet_category_all"), controls, "mpnet",
                                         CARD)["agrees"] is False


def test_oracle_winner_row():
    oracle = pd.DataFrame({"winner": {"ventral": "truth:category", "lateral": "truth:interaction"}})
    good = findings.oracle_winner_row(oracle, CARD)
    assert good["agrees"] is True and good["recovered"] == "2 of 2" and good["expected"] == "2 of 2"
    oracle.loc["parietal", "winner"] = "truth:category"
    bad = findings.oracle_winner_row(oracle, CARD)
    assert bad["agrees"] is False
    assert bad["recovered"] == "2 of 3 (parietal: truth:category, planted layout)"
    assert findings.oracle_winner_row(None, None) is None  # real NSD
    # a tie (winner_table: the best not separable from another model) is a miss
    tied = pd.DataFrame({"winner": {"ventral": "truth:category", "lateral": "tied: truth:interaction, mpnet"}})
    row = findings.oracle_winner_row(tied, CARD)
    assert row["agrees"] is False and row["recovered"].startswith("1 of 2 (lateral: tied: truth:interaction")
    # one subject: nothing tested, no criterion
    untested = pd.DataFrame({"winner": {"ventral": "untested: truth:category"}})
    assert findings.oracle_winner_row(untested, CARD)["agrees"] is None


def test_rsa_rows_sandbox_and_nsd():
    group = _group(ventral=(0.1, True), lateral=(0.1, True))
    ours = pd.Series({"ventral": 0.4, "lateral": 0.3})
    sl = {"reject": np.ones(3, bool), "t": np.ones(3)}
    tests = _tests(0.1, True)
    oracle = pd.DataFrame({"winner": {"ventral": "truth:category"}})
    rows = findings.rsa_rows(group, ours, sl, tests, ["multihot"], main="mpnet", n_subjects=3, card=CARD,
                             oracle=oracle)
    assert [r["analysis"][:12] for r in rows] == ["ROI RSA, ven", "ROI RSA, lat", "Surface sear",
                                                  "Paired mpnet", "Oracle check"]
    nsd_rows = findings.rsa_rows(group, ours, sl, tests, ["multihot"], main="mpnet", n_subjects=3)
    assert len(nsd_rows) == 4 and all(r["agrees"] is True for r in nsd_rows)
    with pytest.raises(ValueError, match="oracle"):
        findings.rsa_rows(group, ours, sl, tests, ["multihot"], main="mpnet", n_subjects=3, card=CARD)



#: the positive control's card (synth preset ``positive``): a sentence space planted in
#: ventral and lateral cortex, parietal as in the null world
POSITIVE_CARD = {"roi_spaces": {"ventral": {"sentence": 0.5, "category": 0.5},
                                "lateral": {"sentence": 0.5, "interaction": 0.35, "category": 0.15},
                                "parietal": {"layout": 1.0}, "early": {"lowlevel": 1.0}}}


def test_roi_rsa_row_counts_a_planted_sentence_space_as_caption_content():
    group = _group(ventral=(0.1, True), lateral=(0.1, True), parietal=(0.01, False))
    ours = pd.Series({"ventral": 0.4, "lateral": 0.3, "parietal": 0.05})
    only_sentence = {"roi_spaces": {"ventral": {"sentence": 1.0}, "lateral": {"lowlevel": 1.0}}}
    row = findings.roi_rsa_row("ventral", group, ours, "mpnet", only_sentence)
    assert row["expected"] == "> 0, FDR-significant (planted: sentence 100%)" and row["agrees"] is True
    # without the sentence space the same ROI holds nothing captions describe: it must score lowest
    no_sentence = {"roi_spaces": {"ventral": {"lowlevel": 1.0}, "lateral": {"lowlevel": 1.0}}}
    row = findings.roi_rsa_row("ventral", group, ours, "mpnet", no_sentence)
    assert row["expected"].startswith("lowest of") and row["agrees"] is False


def test_category_control_row_follows_the_card():
    """Null world: the category space must win in ventral cortex; positive world (a sentence
    space planted there): the full caption must win, the same test on the same table."""
    controls = ["mpnet_category_all", "multihot"]
    ahead, behind = _tests(0.1, True, "mpnet_category_all"), _tests(-0.1, True, "mpnet_category_all")
    pos = findings.category_control_row(ahead, controls, "mpnet", POSITIVE_CARD)
    assert pos["agrees"] is True
    assert pos["expected"].startswith("found: > 0, FDR-significant (planted: sentence 50%, category 50%")
    assert findings.category_control_row(behind, controls, "mpnet", POSITIVE_CARD)["agrees"] is False
    assert findings.category_control_row(_tests(0.1, False, "mpnet_category_all"), controls, "mpnet",
                                         POSITIVE_CARD)["agrees"] is False
    # the same tables judged by the null world's card: the opposite verdicts
    assert findings.category_control_row(ahead, controls, "mpnet", CARD)["agrees"] is False
    assert findings.category_control_row(behind, controls, "mpnet", CARD)["agrees"] is True


def _sentence_rq2(diff, p_fdr, roi="ventral"):
    """An ``rq2_comparison`` table: two category controls, the word average, a content-free
    word class and nouns (n = 4 subjects)."""
    spaces = ("multihot", "mpnet_category_all", "mpnet_word_avg", "mpnet_prepositions", "mpnet_nouns")
    kinds = ("categories", "categories", "word average", "word class", "word class")
    t = pd.DataFrame([dict(roi=roi, space=s, kind=k, n=4, mean_diff=d, p_fdr=p, significant=p <= 0.05, note="")
                      for s, k, d, p in zip(spaces, kinds, diff, p_fdr)])
    t.attrs["main"] = "mpnet"
    return t


def test_rq2_controls_row_where_a_sentence_space_is_planted():
    # everything beaten except nouns (which carry the planted category content): agrees
    t = _sentence_rq2([0.1, 0.1, 0.05, 0.2, -0.05], [0.01, 0.01, 0.02, 0.01, 0.3])
    row = findings.rq2_controls_row(t, "ventral", card=POSITIVE_CARD)
    assert row["agrees"] is True and row["recovered"].startswith("4 of 4 controls below mpnet")
    assert row["expected"].startswith("> 0, FDR-significant for each category, word-average and word-class")
    # the word average not beaten: disagrees
    t2 = _sentence_rq2([0.1, 0.1, 0.01, 0.2, -0.05], [0.01, 0.01, 0.4, 0.01, 0.3])
    assert findings.rq2_controls_row(t2, "ventral", card=POSITIVE_CARD)["agrees"] is False
    # the null world's card judges only the content-free class: the same table agrees
    null = findings.rq2_controls_row(t2, "ventral", card=CARD)
    assert null["agrees"] is True and null["recovered"].startswith("1 of 1 controls")


def test_sentence_controls_row_found_where_planted_absent_elsewhere():
    beaten = _sentence_rq2([0.1, 0.1, 0.05, 0.2, -0.05], [0.01, 0.01, 0.02, 0.01, 0.3])
    not_beaten = _sentence_rq2([0.1, -0.1, 0.05, 0.2, 0.0], [0.01, 0.01, 0.02, 0.01, 0.3])
    # positive world: the claim must hold
    row = findings.sentence_controls_row(beaten, "ventral", card=POSITIVE_CARD)
    assert row["agrees"] is True and row["recovered"].startswith("found: 3 of 3 below mpnet")
    assert row["expected"] == "found: each > 0, FDR-significant (planted: sentence 50%, category 50%)"
    assert row["rq"] == "RQ2"
    assert findings.sentence_controls_row(not_beaten, "ventral", card=POSITIVE_CARD)["agrees"] is False
    # null world: the claim must be absent
    row = findings.sentence_controls_row(not_beaten, "ventral", card=CARD)
    assert row["agrees"] is True and row["recovered"].startswith("absent: 2 of 3")
    assert row["expected"].startswith("absent: not above every one (no sentence space planted: category 100%")
    assert findings.sentence_controls_row(beaten, "ventral", card=CARD)["agrees"] is False
    # real NSD (rq2_controls_row states the paper's claim), a missing ROI, no such control: no row
    assert findings.sentence_controls_row(beaten, "ventral") is None
    assert findings.sentence_controls_row(beaten, "lateral", card=CARD) is None
    only_words = beaten[beaten["kind"] == "word class"]
    assert findings.sentence_controls_row(only_words, "ventral", card=CARD) is None
    one = _sentence_rq2([0.1] * 5, [np.nan] * 5)
    assert findings.sentence_controls_row(one, "ventral", card=CARD)["agrees"] is None


def test_rsa_rows_add_the_sentence_rows_on_the_sandbox_only():
    group = _group(ventral=(0.1, True))
    ours = pd.Series({"ventral": 0.4})
    sl = {"reject": np.ones(3, bool), "t": np.ones(3)}
    rq2 = _sentence_rq2([0.1, 0.1, 0.05, 0.2, -0.05], [0.01, 0.01, 0.02, 0.01, 0.3])
    oracle = pd.DataFrame({"winner": {"ventral": "truth:sentence"}})
    rows = findings.rsa_rows(group, ours, sl, _tests(0.1, True), ["multihot"], main="mpnet", n_subjects=3,
                             card=POSITIVE_CARD, oracle=oracle, rq2=rq2)
    assert [r["analysis"][:25] for r in rows[-2:]] == ["ROI RSA, ventral: mpnet −", "ROI RSA, ventral: beyond "]
    assert all(r["agrees"] is True for r in rows), [r for r in rows if r["agrees"] is not True]
    nsd_rows = findings.rsa_rows(group, ours, sl, _tests(0.1, True), ["multihot"], main="mpnet",
                                 n_subjects=3, rq2=rq2)
    assert not any("beyond single words" in r["analysis"] for r in nsd_rows)


# --------------------------------------------------------------------------- 03 encoding
ROI_NAMES = {0: "unknown", 1: "early", 2: "ventral", 3: "lateral", 4: "parietal"}
#: eight vertices: two per streams ROI; nsdgeneral = the first six
STREAMS = np.array([1, 1, 2, 2, 3, 3, 4, 4])
VISUAL = np.array([True] * 6 + [False] * 2)


def _group_map(sig):
    sig = np.asarray(sig, bool)
    return {"significant": sig, "p": np.where(sig, 0.001, 0.5), "mean": np.where(sig, 0.2, 0.0)}


def _fdr_row(sig, sandbox, q=0.05):
    return findings.encoding_fdr_row(_group_map(sig), VISUAL, STREAMS, ROI_NAMES, feature="mpnet", q=q,
                                     n_subjects=3, sandbox=sandbox)


def test_encoding_fdr_row_on_the_sandbox():
    good = _fdr_row([1, 1, 1, 1, 0, 0, 0, 0], sandbox=True)
    assert good["agrees"] is True
    assert good["recovered"] == "4 vertices, 4 in nsdgeneral (67% of it; 67% at p < .05)"
    assert good["analysis"] == ("Encoding (Fig. 1c): vertices with FDR-significant mpnet test r "
                                "(q = 0.05, 3 subjects)")
    assert good["expected"] == ("> 0, in nsdgeneral (no planted signal outside; FDR q = 0.05 allows ≈ 5% "
                                "false ones): ≥ 90% of them")
    assert _fdr_row([1, 0, 0, 0, 0, 0, 1, 1], sandbox=True)["agrees"] is False  # 2 of 3 outside
    assert _fdr_row(np.zeros(8), sandbox=True)["agrees"] is False  # none at all
    # a looser FDR level allows more of them outside: 2 of 3 inside passes at q = 0.2
    assert _fdr_row([1, 1, 0, 0, 0, 0, 1, 0], sandbox=True, q=0.2)["agrees"] is True


def test_encoding_fdr_row_on_real_nsd():
    good = _fdr_row([1, 0, 0, 0, 1, 0, 1, 0], sandbox=False)  # early, lateral and parietal
    assert good["agrees"] is True
    assert good["expected"] == "significant beyond ventral cortex too (early, lateral, parietal)"
    assert _fdr_row([1, 1, 1, 1, 1, 1, 0, 0], sandbox=False)["agrees"] is False  # nothing in parietal
    assert _fdr_row(np.zeros(8), sandbox=False)["agrees"] is False


def _rel(pearson, vertices="nsdgeneral", n=1200):
    """A ``ceiling_summary`` relation over ``n`` ``vertices`` vertices."""
    return {"pearson": pearson, "n": n, "vertices": vertices}


def test_encoding_ceiling_row():
    good = findings.encoding_ceiling_row(_rel(0.05), _rel(0.6), sandbox=True)
    assert good["agrees"] is True
    assert good["analysis"] == "Encoding r vs ceiling (Fig. 1d), over 1,200 nsdgeneral vertices"
    assert good["recovered"] == "r = 0.05 with inter-participant agreement, 0.60 with the noise ceiling"
    assert good["expected"] == ("> 0.5 with the noise ceiling (planted SNR); ≈ 0 (|r| < 0.1) with the "
                                "agreement (own projection per subject, no shared tuning)")
    assert findings.encoding_ceiling_row(_rel(0.05), _rel(0.4), sandbox=True)["agrees"] is False
    assert findings.encoding_ceiling_row(_rel(0.3), _rel(0.9), sandbox=True)["agrees"] is False
    nsd = findings.encoding_ceiling_row(_rel(0.3), _rel(0.1))
    assert nsd["agrees"] is True and nsd["expected"] == "> 0 with inter-participant agreement"
    assert findings.encoding_ceiling_row(_rel(-0.1), _rel(0.9))["agrees"] is False


def test_encoding_ceiling_row_follows_the_cards_shared_tuning():
    """With tuning shared by the subjects (truth card's shared_tuning > 0) the agreement must be
    positive, as in the paper; without, it must be about zero: the same r fails one and passes
    the other."""
    shared = findings.encoding_ceiling_row(_rel(0.6), _rel(0.8), sandbox=True, shared_tuning=0.5)
    assert shared["agrees"] is True and "50% of each vertex's tuning shared" in shared["expected"]
    assert findings.encoding_ceiling_row(_rel(0.6), _rel(0.8), sandbox=True, shared_tuning=0.0)["agrees"] is False
    assert findings.encoding_ceiling_row(_rel(0.6), _rel(0.8), sandbox=True)["agrees"] is False  # older card
    assert findings.encoding_ceiling_row(_rel(-0.2), _rel(0.8), sandbox=True, shared_tuning=0.5)["agrees"] is False
    assert findings.encoding_ceiling_row(_rel(0.6), _rel(0.3), sandbox=True, shared_tuning=0.5)["agrees"] is False
    assert findings.encoding_ceiling_row(_rel(0.05), _rel(0.8), sandbox=True, shared_tuning=0.0)["agrees"] is True
    for bad in (1.5, -0.1, float("nan"), "half"):
        with pytest.raises((ValueError, TypeError), match="shared_tuning"):
            findings.encoding_ceiling_row(_rel(0.6), _rel(0.8), sandbox=True, shared_tuning=bad)


def test_encoding_ceiling_row_is_not_judged_over_the_whole_surface():
    """Over every vertex, non-visual cortex (r ≈ 0, agreement ≈ 0) makes any map correlate
    with the ceiling: such a relation is shown but not judged."""
    whole = findings.encoding_ceiling_row(_rel(0.3, "all"), _rel(0.9, "all"))
    assert whole["agrees"] is None and whole["analysis"].endswith("over all vertices")
    assert whole["expected"].endswith("(not judged: computed over all vertices, non-visual cortex included)")
    assert findings.encoding_ceiling_row({"pearson": 0.3}, _rel(0.9))["agrees"] is None  # no "vertices"
    assert findings.encoding_ceiling_row(_rel(0.05), _rel(0.6, "all"), sandbox=True)["agrees"] is None


def test_ceiling_summary_restricts_the_relation_to_the_mask(rng):
    """The trivial pass the restriction removes: inside the visual mask r and the ceiling are
    unrelated, outside both are 0, and over the whole surface they correlate."""
    from brainllm_utils.chapters import ch03_encoding as ea

    visual = np.zeros(400, bool)
    visual[:100] = True
    r = np.where(visual, rng.uniform(0.2, 0.4, 400), 0.0)
    ceiling = np.where(visual, rng.uniform(0.3, 0.6, 400), 0.0)
    whole, _ = ea.ceiling_summary(r, ceiling)
    inside, _ = ea.ceiling_summary(r, ceiling, mask=visual, mask_name="nsdgeneral")
    assert whole["pearson"] > 0.9 and whole["vertices"] == "all"
    assert abs(inside["pearson"]) < 0.3 and inside["n"] == 100 and inside["vertices"] == "nsdgeneral"
    assert inside["pearson"] == pytest.approx(np.corrcoef(r[:100], ceiling[:100])[0, 1])
    assert findings.encoding_ceiling_row(_rel(whole["pearson"], "all"), _rel(0.9, "all"))["agrees"] is None
    with pytest.raises(ValueError, match="mask"):
        ea.ceiling_summary(r, ceiling, mask=visual[:10])


ORDER = ["early", "ventral", "lateral", "parietal"]


def _ceilings(**fraction):
    return pd.DataFrame({"fraction": fraction})


def _recovered(expected, observed):
    return pd.DataFrame({"expected r / ceiling": expected, "observed r / ceiling": observed})


def test_roi_ceiling_fraction_row():
    table = _ceilings(early=0.1, ventral=0.5, lateral=0.3)
    good = findings.roi_ceiling_fraction_row(table, ORDER, "mpnet", _recovered(
        {"early": 0.0, "ventral": 0.7, "lateral": 0.4}, {}))
    assert good["agrees"] is True
    assert good["recovered"] == "best ventral (0.500), worst early (0.100)"
    assert good["expected"] == ("best ventral (0.700), worst early (0.000): planted weights × mpnet's R² "
                                "of each space")
    bad = findings.roi_ceiling_fraction_row(table, ORDER, "mpnet", _recovered(
        {"early": 0.0, "ventral": 0.4, "lateral": 0.7}, {}))
    assert bad["agrees"] is False
    nsd = findings.roi_ceiling_fraction_row(table, ORDER, "mpnet")
    assert nsd["agrees"] is None and nsd["expected"] == ""
    assert findings.roi_ceiling_fraction_row(_ceilings(other=0.3), ORDER, "mpnet") is None


def test_ceiling_fraction_fit_row():
    good = findings.ceiling_fraction_fit_row(_recovered([0.1, 0.5, 0.3, 0.0], [0.12, 0.45, 0.31, np.nan]))
    assert good["agrees"] is True
    assert good["analysis"] == ("Encoding accuracy per ROI: r(expected, observed fraction of ceiling) "
                                "over 3 ROIs")
    assert good["expected"] == "> 0.5 (expected from the planted weights)"
    bad = findings.ceiling_fraction_fit_row(_recovered([0.1, 0.5, 0.3], [0.5, 0.1, 0.3]))
    assert bad["agrees"] is False
    assert findings.ceiling_fraction_fit_row(None) is None  # real NSD


def _partition(**rois):
    """``roi=(unique to mpnet, unique to mpnet_word_avg)``."""
    return pd.DataFrame({"unique_mpnet": {r: a for r, (a, _) in rois.items()},
                         "unique_mpnet_word_avg": {r: b for r, (_, b) in rois.items()}})


TRUTH = pd.DataFrame({"category": {"early": 0.0, "ventral": 1.0, "lateral": 0.3, "midlateral": 0.7},
                      "interaction": {"early": 0.0, "ventral": 0.0, "lateral": 0.7, "midlateral": 0.3},
                      "lowlevel": {"early": 1.0, "ventral": 0.0, "lateral": 0.0, "midlateral": 0.0}})


def test_variance_partition_row_on_the_sandbox():
    good = findings.variance_partition_row(_partition(lateral=(0.02, 0.01), midlateral=(0.01, -0.01),
                                                      ventral=(0.0, 0.0)), "mpnet", "mpnet_word_avg", TRUTH)
    assert good["agrees"] is True and good["recovered"] == "0.020"
    assert good["analysis"] == ("Variance partitioning, lateral: test R² unique to mpnet beyond "
                                "mpnet_word_avg")
    assert good["expected"] == ("> 0 and > R² unique to mpnet_word_avg in lateral, midlateral (planted "
                                "interaction weight 0.7, 0.3); here mpnet_word_avg: 0.010")
    bad = findings.variance_partition_row(_partition(lateral=(0.02, 0.01), midlateral=(0.01, 0.03)),
                                          "mpnet", "mpnet_word_avg", TRUTH)
    assert bad["agrees"] is False  # midlateral: the word average explains more


def test_variance_partition_row_on_real_nsd():
    good = findings.variance_partition_row(_partition(lateral=(0.02, 0.01)), "mpnet", "mpnet_word_avg")
    assert good["agrees"] is True
    assert good["expected"] == "> 0 and > R² unique to mpnet_word_avg (0.010)"
    assert findings.variance_partition_row(_partition(lateral=(-0.01, -0.02)), "mpnet",
                                           "mpnet_word_avg")["agrees"] is False  # not > 0
    assert findings.variance_partition_row(_partition(ventral=(0.1, 0.0)), "mpnet", "mpnet_word_avg") is None


def test_in_silico_contrast_row():
    good = findings.in_silico_contrast_row(np.array([0.3, 0.5, 0.1]), sandbox=True)
    assert good["agrees"] is True and good["recovered"] == "0.300"
    assert good["analysis"] == ("In-silico food − people vs observed food − people images: mean r in "
                                "nsdgeneral")
    assert good["expected"] == "> 0 in every subject (food and people are planted category signal)"
    mixed = np.array([0.6, 0.5, -0.1])
    assert findings.in_silico_contrast_row(mixed, sandbox=True)["agrees"] is False  # one subject < 0
    assert findings.in_silico_contrast_row(mixed)["agrees"] is True  # real NSD: the mean
    assert findings.in_silico_contrast_row(np.array([-0.2, 0.1]))["agrees"] is False
    assert findings.in_silico_contrast_row(None) is None


def _baseline(r, shuffled, roi="nsdgeneral"):
    """``shuffled_baseline``'s table: per subject, the encoder's and the baseline's mean r."""
    out = pd.DataFrame({"r": r, "r_shuffled": shuffled, "n_vertices": 100},
                       index=pd.Index([f"subj0{i + 1}" for i in range(len(r))], name="subject"))
    out.attrs["roi"] = roi
    return out


def test_shuffled_baseline_row():
    good = findings.shuffled_baseline_row(_baseline([0.2, 0.25, 0.3, 0.22], [0.0, 0.01, -0.01, 0.02]), "mpnet")
    assert good["agrees"] is True and good["rq"] == "RQ1"
    assert good["analysis"] == ("Encoding vs shuffled-caption baseline: mean test r in nsdgeneral, "
                                "mpnet − shuffled")
    assert good["recovered"].startswith("0.242 vs 0.005 (+0.237, t = ")
    assert good["expected"] == "> 0, paired t across subjects p < 0.05 (two-sided; one test)"
    # a trivial encoder: no better than the one trained on shuffled captions
    same = findings.shuffled_baseline_row(_baseline([0.05, 0.02, 0.04, 0.03], [0.04, 0.03, 0.05, 0.02]), "mpnet")
    assert same["agrees"] is False
    # ahead on average, but in one subject only: not significant
    one_carries = findings.shuffled_baseline_row(_baseline([0.9, 0.01, 0.0, 0.02], [0.0, 0.02, 0.01, 0.0]), "mpnet")
    assert one_carries["agrees"] is False
    below = findings.shuffled_baseline_row(_baseline([0.0, 0.01, 0.0], [0.1, 0.12, 0.11]), "mpnet")
    assert below["agrees"] is False
    single = findings.shuffled_baseline_row(_baseline([0.2], [0.0]), "mpnet")
    assert single["agrees"] is None and findings.NEEDS_SUBJECTS in single["recovered"]
    assert findings.shuffled_baseline_row(None, "mpnet") is None


def test_encoding_rows_sandbox_and_nsd():
    args = (_group_map([1, 1, 0, 0, 0, 0, 0, 0]), VISUAL, STREAMS, ROI_NAMES, _rel(0.0),
            _rel(0.8), _ceilings(early=0.1, ventral=0.5), _partition(lateral=(0.02, 0.01)),
            np.array([0.2, 0.3]))
    kw = dict(feature="mpnet", word_band="mpnet_word_avg", order=ORDER, q=0.05, n_subjects=2)
    recovered = _recovered({"early": 0.0, "ventral": 0.7}, {"early": 0.1, "ventral": 0.5})
    rows = findings.encoding_rows(*args, **kw, sandbox=True, truth=TRUTH.drop(index="midlateral"),
                                  recovered=recovered, baseline=_baseline([0.2, 0.25, 0.3], [0.0, 0.01, -0.01]))
    assert [r["rq"] for r in rows] == ["RQ1", "RQ1", "RQ1", "RQ1", "RQ1", "RQ2", "RQ1"]
    assert rows[1]["analysis"].startswith("Encoding vs shuffled-caption baseline")
    assert [r["agrees"] for r in rows] == [True] * 7
    nsd_rows = findings.encoding_rows(*args, **kw)  # no baseline: no baseline row
    assert len(nsd_rows) == 5 and nsd_rows[2]["agrees"] is None  # no fit row, no expected fractions
    with pytest.raises(ValueError, match="truth"):
        findings.encoding_rows(*args, **kw, sandbox=True)


# --------------------------------------------------------------------------- 04 decoding
def _dec(r, rank=None, n_test=6, shared=0.0, seed=0):
    """Decoding results of 2 subjects on ``n_test`` images; ``shared`` mixes a component common
    to every target embedding (which makes an image-blind prediction correlate)."""
    rng = np.random.default_rng(seed)
    true = rng.standard_normal((n_test, 16)) + shared * rng.standard_normal(16)
    r = np.broadcast_to(np.asarray(r, float), (2, n_test)).copy()
    rank = np.zeros((2, n_test), int) if rank is None else np.asarray(rank)
    return {"test_ids": np.arange(n_test), "true": true, "r": r, "rank": rank}


def test_decoding_accuracy_row():
    good = findings.decoding_accuracy_row(_dec(0.6), np.array([0.8, 0.7]), "mpnet", sandbox=True)
    assert good["agrees"] is True and good["recovered"] == "0.600"
    assert good["analysis"] == ("Decoding mpnet from all streams voxels: mean per-image r (100% of images "
                                "r > 0)")
    assert good["expected"].startswith("mostly positive and above an image-blind prediction (mean of the "
                                       "other test embeddings, r = ")
    assert good["expected"].endswith("); caption consistency 0.75 for reference; the streams ROIs carry "
                                     "planted category and interaction signal")
    negative = findings.decoding_accuracy_row(_dec(-0.1), np.array([0.8]), "mpnet")
    assert negative["agrees"] is False and "planted" not in negative["expected"]
    # all positive, but no better than predicting the mean of the other test images
    blind = findings.decoding_accuracy_row(_dec(0.5, shared=5.0), np.array([0.8]), "mpnet")
    assert blind["agrees"] is False


def test_identification_row():
    good = findings.identification_row(_dec(0.5, rank=np.zeros((2, 6), int)))
    assert good["agrees"] is True
    assert good["recovered"] == "top-1 100%, mean rank 0.0"
    assert good["expected"] == "above chance (top-1 16.7%, mean rank 2.5)"
    assert good["analysis"] == "Identification among 6 test images: top-1 and mean rank"
    chance = findings.identification_row(_dec(0.5, rank=np.tile(np.arange(6)[::-1], (2, 1))))
    assert chance["agrees"] is False


def _metrics(decoded, shuffled=None):
    rows = {"human": dict(kind="human", cider_d=1.3, bleu4=0.3),
            "oracle": dict(kind="oracle", cider_d=1.4, bleu4=0.35),
            "subj01": dict(kind="decoded", cider_d=decoded, bleu4=decoded / 4),
            "subj02": dict(kind="decoded", cider_d=decoded, bleu4=decoded / 4)}
    if shuffled is not None:
        rows["shuffled"] = dict(kind="shuffled", cider_d=shuffled, bleu4=shuffled / 4)
    return pd.DataFrame(rows).T.astype({"cider_d": float, "bleu4": float})


def test_caption_metric_row():
    good = findings.caption_metric_row(_metrics(0.6, shuffled=0.2), "cider_d", "CIDEr-D")
    assert good["agrees"] is True and good["recovered"] == "0.600"
    assert good["analysis"] == "Reconstructed captions: CIDEr-D, mean over subjects"
    assert good["expected"] == "> shuffled 0.200; human ceiling 1.300; oracle 1.400"
    bad = findings.caption_metric_row(_metrics(0.1, shuffled=0.2), "bleu4", "BLEU-4")
    assert bad["agrees"] is False and bad["expected"] == "> shuffled 0.050; human ceiling 0.300; oracle 0.350"
    none = findings.caption_metric_row(_metrics(0.6), "cider_d", "CIDEr-D")
    assert none["agrees"] is None and none["expected"] == "human ceiling 1.300; oracle 1.400"


def _ident(**rois):
    return pd.DataFrame({"identification": rois})


def test_single_roi_decoding_row_on_the_sandbox():
    truth = TRUTH.loc[["early", "ventral", "lateral"]]
    good = findings.single_roi_decoding_row(_ident(early=0.6, ventral=0.8, lateral=0.7), truth)
    assert good["agrees"] is True
    assert good["recovered"] == "ventral 0.800 > lateral 0.700 > early 0.600"
    assert good["expected"] == "ventral, lateral (planted category/interaction) above early"
    assert good["analysis"] == "Decoding from single ROIs: pairwise identification (chance 0.5)"
    bad = findings.single_roi_decoding_row(_ident(early=0.9, ventral=0.8), truth)
    assert bad["agrees"] is False
    only = findings.single_roi_decoding_row(_ident(ventral=0.8), truth)
    assert only["agrees"] is True and only["expected"] == "ventral above chance 0.5"
    assert findings.single_roi_decoding_row(_ident(ventral=0.45), truth)["agrees"] is False
    no_caption_roi = findings.single_roi_decoding_row(_ident(early=0.6), truth)
    assert no_caption_roi["agrees"] is None and no_caption_roi["expected"] == ""


def test_single_roi_decoding_row_counts_the_sentence_space():
    """A positive-control ROI driven half by the sentence space carries caption signal."""
    truth = pd.DataFrame({"category": {"early": 0.0, "lateral": 0.15}, "interaction": {"early": 0.0, "lateral": 0.35},
                          "sentence": {"early": 0.0, "lateral": 0.5}, "lowlevel": {"early": 1.0, "lateral": 0.0}})
    row = findings.single_roi_decoding_row(_ident(early=0.6, lateral=0.7), truth)
    assert row["agrees"] is True
    assert row["expected"] == "lateral (planted category/interaction/sentence) above early"
    # without the sentence column lateral's share (0.5) is not above PLANTED_CAPTION_SHARE
    no_sentence = findings.single_roi_decoding_row(_ident(early=0.6, lateral=0.7), truth.drop(columns="sentence"))
    assert no_sentence["agrees"] is None


def test_single_roi_decoding_row_on_real_nsd():
    row = findings.single_roi_decoding_row(_ident(early=0.6, ventral=0.8))
    assert row["agrees"] is None and row["expected"] == ""
    assert findings.single_roi_decoding_row(_ident(early=np.nan)) is None


def test_decoding_rows_sandbox_and_nsd():
    args = (_dec(0.6), np.array([0.8]), _metrics(0.6, shuffled=0.2), _ident(early=0.6, ventral=0.8))
    rows = findings.decoding_rows(*args, feature="mpnet", sandbox=True, truth=TRUTH)
    assert [r["analysis"][:14] for r in rows] == ["Decoding mpnet", "Identification", "Reconstructed ",
                                                  "Reconstructed ", "Decoding from "]
    assert all(r["agrees"] is True for r in rows)
    nsd_rows = findings.decoding_rows(*args, feature="mpnet", truth=TRUTH)  # truth ignored on NSD
    assert nsd_rows[-1]["agrees"] is None
    with pytest.raises(ValueError, match="truth"):
        findings.decoding_rows(*args, feature="mpnet", sandbox=True)


# --------------------------------------------------------------------------- 05 image to LLM
def _table(**rois):
    """``roi=(blt_mpnet, blt_multihot)`` normalised r."""
    return pd.DataFrame({r: {"blt_mpnet": a, "blt_multihot": b, "mpnet": 0.3} for r, (a, b) in rois.items()})


def _net_tests(**significant):
    """The pairwise table of blt_mpnet against the others (``stats.pairwise_model_tests``), as
    the chapter passes it (only its ``n`` is read by the chapter's rows)."""
    return pd.DataFrame([dict(roi=r, model_b="blt_multihot", significant=s) for r, s in significant.items()],
                        columns=["roi", "model_b", "significant"])


def _scores(diffs, n_subjects=6, noise=0.01, seed=0):
    """Per-subject (seed-averaged) scores of the two networks: ``diffs = {roi: mean LLM − category}``;
    every subject adds its own offset to both networks (what the paired test removes)."""
    rng = np.random.default_rng(seed)
    rows = []
    for roi, d in diffs.items():
        offset = rng.normal(0.3, 0.1, n_subjects)
        for i in range(n_subjects):
            rows.append(dict(subject=f"s{i}", roi=roi, model="blt_multihot", r_normalised=offset[i]))
            rows.append(dict(subject=f"s{i}", roi=roi, model="blt_mpnet",
                             r_normalised=offset[i] + d + rng.normal(0, noise)))
    return pd.DataFrame(rows)


def test_network_objective_row():
    table = _table(ventral=(0.5, 0.4), early=(0.1, 0.3), lateral=(0.41, 0.4))
    scores = _scores({"ventral": 0.1, "early": -0.2, "lateral": 0.01}, noise=0.05)
    tests = findings.objective_tests(scores, ["early", "ventral", "lateral"])
    assert list(tests["roi"]) == ["early", "ventral", "lateral"] and "Holm" in tests.attrs["correction"]
    good = findings.network_objective_row(table, tests, "ventral")
    assert good["agrees"] is True and good["rq"] == "RQ4"
    assert good["recovered"].startswith("+0.100 (paired t over 6 subjects, p_adj = ")
    assert good["expected"].startswith("LLM-trained ahead, significant (the paper's direction; paired t over "
                                       "subjects (two-sided), Holm")
    assert "over 3 roi level(s)" in good["expected"]
    assert good["analysis"] == "ROI RSA, ventral: LLM-trained − category-trained network (normalised r)"
    # the paper's ecoset network is not the book's multi-hot BLT: its 0.367 is never borrowed
    assert good["paper"].startswith("no matching paper difference (blt_multihot: ") and "ecoset" in good["paper"]
    assert "0.367" not in good["paper"] and good["paper"].endswith("blt_mpnet alone: 0.429 (LLM-trained RCNN "
                                                                    "(seed avg))")
    # significant, but the category-trained network ahead
    bad = findings.network_objective_row(table, tests, "early")
    assert bad["agrees"] is False and bad["recovered"].startswith("-0.200")
    assert "the paper tabulates ROI RSA only in ventral, lateral, parietal" in bad["paper"]
    # the LLM-trained network ahead on average, but within the noise: the sign alone does not pass
    small = tests.set_index("roi").loc["lateral"]
    assert small["mean_diff"] > 0 and not small["significant"]
    assert findings.network_objective_row(table, tests, "lateral")["agrees"] is False
    # the row reads the corrected decision: the same difference, not significant after the correction
    assert (tests["p_adj"] >= tests["p"]).all()
    assert findings.network_objective_row(table, tests.assign(significant=False), "ventral")["agrees"] is False
    assert findings.network_objective_row(table.drop(index="blt_multihot"), tests, "ventral") is None
    with pytest.raises(ValueError, match="objective_tests"):
        findings.network_objective_row(table, _net_tests(ventral=True), "ventral")


def test_network_objective_row_without_a_test():
    table = _table(ventral=(0.5, 0.4))
    one = findings.objective_tests(_scores({"ventral": 0.1}, n_subjects=1), ["ventral"])
    row = findings.network_objective_row(table, one, "ventral")
    assert row["agrees"] is None and row["recovered"] == f"+0.100 (paired test {findings.NEEDS_SUBJECTS})"
    assert row["analysis"].endswith("(r; one subject: no ceiling)")
    none = findings.network_objective_row(table, None, "ventral")
    assert none["agrees"] is None and none["recovered"] == "+0.100 (paired test not computed: no per-subject scores)"


def _winners(**w):
    return pd.DataFrame({"winner": w})


def test_best_model_row():
    oracle = _winners(ventral="truth:category", lateral="truth:interaction")
    row = findings.best_model_row(_winners(ventral="blt_mpnet", lateral="mpnet"), oracle)
    assert row["agrees"] is None  # sandbox: no language model made the data; the oracle row judges
    assert row["recovered"] == "ventral: blt_mpnet; lateral: mpnet"
    assert row["expected"] == "best planted space: ventral: truth:category; lateral: truth:interaction"
    # real NSD: the paper's claim, blt_mpnet first in each of its ROIs, by a tested, clear win
    good = findings.best_model_row(_winners(early="alexnet", ventral="blt_mpnet", lateral="blt_mpnet"))
    assert good["agrees"] is True
    assert good["expected"] == ("blt_mpnet the clear winner in ventral, lateral (ahead of every other model, "
                                "paired across subjects, corrected over the pairs)")
    assert findings.best_model_row(_winners(ventral="blt_mpnet", lateral="mpnet"))["agrees"] is False
    tie = findings.best_model_row(_winners(ventral="tied: blt_mpnet, clip_rn50"))
    assert tie["agrees"] is False  # not separable from another model: not first
    assert findings.best_model_row(_winners(ventral="untested: blt_mpnet"))["agrees"] is None  # one subject
    assert findings.best_model_row(_winners(early="blt_mpnet"))["agrees"] is None  # no paper ROI


def test_transfer_row():
    transfer = pd.DataFrame({"score": [0.6, 0.5, 0.3, 0.4]}, index=pd.MultiIndex.from_tuples(
        [("blt_mpnet", "mpnet"), ("blt_multihot", "mpnet"), ("blt_mpnet", "multihot"),
         ("blt_multihot", "multihot")], names=["network", "target"]))
    good = findings.transfer_row(transfer, "mpnet")
    assert good["agrees"] is True and good["recovered"] == "0.600 vs 0.500"
    assert good["analysis"] == ("Transfer readout to mpnet: LLM-trained vs category-trained features "
                                "(held-out cosine)")
    assert good["paper"] == "0.682–0.693 vs 0.621"
    bad = findings.transfer_row(transfer, "multihot")
    assert bad["agrees"] is False and bad["paper"] == "0.638 vs 0.622–0.636"
    assert findings.transfer_row(transfer.iloc[:1], "mpnet") is None


def _align(curves, rois=("v", "l")):
    """A size sweep's alignment table: ``curves = {seed: [alignment at 250, 500, 1000]}`` (the
    same in every ROI)."""
    return pd.DataFrame([dict(n_train=n, seed=sd, roi=roi, mean=m) for sd, ms in curves.items()
                         for n, m in zip((250, 500, 1000), ms) for roi in rois])


def test_training_size_row():
    grows = _align({0: [0.10, 0.15, 0.20], 1: [0.11, 0.15, 0.21], 2: [0.10, 0.16, 0.19]})
    good = findings.training_size_row(grows)
    assert good["agrees"] is True and good["recovered"].startswith("0.103 → 0.200; slope per decade +0.")
    assert good["analysis"] == "Alignment vs training-set size (250 → 1,000 images, mean over ROIs, 3 seeds)"
    assert good["expected"] == ("grows: per-seed slope on log10(size) > 0, one-sample t-test across ≥ 3 "
                                "seeds, p < 0.05")
    shrinks = _align({0: [0.20, 0.15, 0.10], 1: [0.21, 0.15, 0.11], 2: [0.19, 0.16, 0.10]})
    assert findings.training_size_row(shrinks)["agrees"] is False
    # larger at the end on average, but one seed carries it and the others fall: not a trend
    mixed = _align({0: [0.10, 0.30, 0.60], 1: [0.20, 0.19, 0.18], 2: [0.21, 0.20, 0.19]})
    assert mixed.groupby("n_train")["mean"].mean().iloc[-1] > mixed.groupby("n_train")["mean"].mean().iloc[0]
    assert findings.training_size_row(mixed)["agrees"] is False
    # fewer seeds than the test needs: no criterion (one sweep without a seed column, or 2 seeds)
    one = grows[grows["seed"] == 0].drop(columns="seed")
    row = findings.training_size_row(one)
    assert row["agrees"] is None and row["recovered"] == "0.100 → 0.200 (trend not tested: needs ≥ 3 seeds)"
    assert row["analysis"].endswith("mean over ROIs, 1 seed)")
    assert findings.training_size_row(grows[grows["seed"] < 2])["agrees"] is None
    assert findings.training_size_row(grows[grows["seed"] < 2], min_seeds=2)["agrees"] is True
    assert findings.training_size_row(None) is None  # no sweep ran
    assert findings.training_size_row(grows.iloc[:0]) is None


def test_image_to_llm_rows_sandbox_and_nsd():
    table = _table(early=(0.1, 0.3), ventral=(0.5, 0.4))
    winners = pd.DataFrame({"winner": {"early": "alexnet", "ventral": "blt_mpnet"}})
    transfer = pd.DataFrame({"score": [0.6, 0.5]}, index=pd.MultiIndex.from_tuples(
        [("blt_mpnet", "mpnet"), ("blt_multihot", "mpnet")], names=["network", "target"]))
    align = _align({0: [0.1, 0.2, 0.3], 1: [0.1, 0.21, 0.3], 2: [0.12, 0.2, 0.31]})
    oracle = pd.DataFrame({"winner": {"early": "truth:lowlevel", "ventral": "truth:category"}})
    scores = _scores({"early": -0.2, "ventral": 0.1})
    rows = findings.image_to_llm_rows(table, _net_tests(), winners, transfer, rois=["early", "ventral"],
                                      oracle=oracle, align=align, scores=scores)
    assert [r["agrees"] for r in rows] == [False, True, None, True, True]
    assert rows[2]["expected"].startswith("best planted space")
    nsd_rows = findings.image_to_llm_rows(table, _net_tests(), winners, transfer, rois=["early", "ventral"],
                                          scores=scores)
    assert len(nsd_rows) == 4 and nsd_rows[2]["expected"].startswith("blt_mpnet the clear winner in ventral")
    assert nsd_rows[2]["agrees"] is True
    # without the per-subject scores the objective rows are not judged
    assert [r["agrees"] for r in findings.image_to_llm_rows(table, _net_tests(), winners, transfer,
                                                            rois=["early", "ventral"])][:2] == [None, None]


# ---------------------------------------------------------------- one subject
def test_rows_that_need_two_subjects_say_so():
    nc = findings.NEEDS_SUBJECTS
    one = _group(ventral=(0.1, False), lateral=(0.2, False)).assign(n=1)
    row = findings.roi_rsa_row("ventral", one, pd.Series({"ventral": np.nan, "lateral": np.nan}), "mpnet")
    assert row["recovered"] == nc and row["agrees"] is None and row["paper"]
    assert findings.roi_rsa_row("ventral", one.assign(n=2), pd.Series({"ventral": 0.4, "lateral": 0.3}),
                                "mpnet")["recovered"] == "0.400"
    sl = findings.searchlight_row(None, 1, "mpnet")
    assert sl["recovered"] == nc and sl["agrees"] is None
    row = findings.category_control_row(_tests(0.05, False).assign(n=1), ["multihot"], "mpnet")
    assert row["recovered"] == nc and row["agrees"] is None
    assert findings.category_control_row(None, ["multihot"], "mpnet")["recovered"] == nc
    row = findings.encoding_fdr_row(None, VISUAL, STREAMS, ROI_NAMES, feature="mpnet", q=0.05, n_subjects=1)
    assert row["recovered"] == nc and row["agrees"] is None
    sandbox = findings.encoding_ceiling_row(None, _rel(0.6), sandbox=True)
    assert sandbox["agrees"] is True and nc in sandbox["recovered"] and "0.60" in sandbox["recovered"]
    assert findings.encoding_ceiling_row(None, _rel(0.4), sandbox=True)["agrees"] is False
    real = findings.encoding_ceiling_row(None, _rel(0.6))
    assert real["agrees"] is None and nc in real["recovered"]
    table = _table(ventral=(0.5, 0.4))
    one_subject = findings.objective_tests(_scores({"ventral": 0.1}, n_subjects=1), ["ventral"])
    row = findings.network_objective_row(table, one_subject, "ventral")
    assert row["agrees"] is None and row["recovered"] == f"+0.100 (paired test {nc})"
    assert row["analysis"].endswith("(r; one subject: no ceiling)")
    # the chapter functions assemble them without crashing
    rows = findings.rsa_rows(one, pd.Series({"ventral": np.nan, "lateral": np.nan}), None, None,
                             ["multihot"], main="mpnet", n_subjects=1)
    assert [r["recovered"] for r in rows] == [nc] * 4
    assert findings.group_size(None) == 0 and findings.group_size(one) == 1 and findings.group_size(_tests(1, True)) is None
    assert findings.not_computed("RQ2", "x")["agrees"] is None


# ---------------------------------------------------------------- 05: the values behind the rows
def _model_table():
    """Chapter 05's table: mean r per model × ROI (NaN: a ceiling ≤ 0)."""
    return pd.DataFrame({"ventral": {"blt_mpnet": 0.43, "blt_multihot": 0.37, "nf_resnet50": np.nan},
                         "lateral": {"blt_mpnet": 0.47, "blt_multihot": 0.36, "nf_resnet50": 0.33}})


def test_chapter_05_records_every_models_roi_rsa_beside_the_rows(tiny_root, tmp_path):
    table = _model_table()
    winners = pd.DataFrame({"winner": {"ventral": "blt_mpnet", "lateral": "blt_mpnet"}})
    transfer = pd.DataFrame({"score": [0.6, 0.5]}, index=pd.MultiIndex.from_tuples(
        [("blt_mpnet", "mpnet"), ("blt_multihot", "mpnet")], names=["network", "target"]))
    rows = findings.image_to_llm_rows(table, _net_tests(ventral=True, lateral=False).assign(n=8), winners,
                                      transfer, rois=["ventral", "lateral"], value="r_normalised")
    # the scorecard rows are the same as without values: only the best-model row carries them
    plain = findings.image_to_llm_rows(table, _net_tests(ventral=True, lateral=False).assign(n=8), winners,
                                       transfer, rois=["ventral", "lateral"])
    assert [{k: r[k] for k in findings.FIELDS if k != "chapter"} for r in rows] == \
           [{k: r[k] for k in findings.FIELDS if k != "chapter"} for r in plain]
    assert [("values" in r) for r in rows] == [False, False, True, False]
    values = rows[2]["values"]
    assert len(values) == 6 and {v["measure"] for v in values} == {"r_normalised"}
    assert {"quantity": "roi_rsa", "model": "nf_resnet50", "roi": "lateral", "value": 0.33,
            "measure": "r_normalised"} in values
    assert [v["value"] for v in values if v["model"] == "nf_resnet50" and v["roi"] == "ventral"] == [None]
    # recorded and read back; the scorecard (load) is unchanged
    nsd = NSD(tiny_root)
    path = findings.record("05_image_to_llm", rows, nsd, results_dir=tmp_path)
    assert "NaN" not in path.read_text()  # strict JSON: NaN is written as null
    df = findings.load(nsd, results_dir=tmp_path)
    assert list(df.columns) == list(findings.FIELDS) and len(df) == 4
    back = findings.load_values(nsd, results_dir=tmp_path)
    assert list(back.columns) == ["chapter", "analysis", *findings.VALUE_FIELDS] and len(back) == 6
    got = back.set_index(["model", "roi"])["value"]
    assert got[("blt_mpnet", "lateral")] == pytest.approx(0.47) and np.isnan(got[("nf_resnet50", "ventral")])
    assert set(back["analysis"]) == {rows[2]["analysis"]} and set(back["chapter"]) == {"05_image_to_llm"}
    # grid runs and other chapters are left out
    findings.record("05_image_to_llm", rows, nsd, results_dir=tmp_path, run="05_image_to_llm__seeds-0")
    assert len(findings.load_values(nsd, results_dir=tmp_path)) == 6
    assert findings.load_values(nsd, chapters=["02_rsa"], results_dir=tmp_path).empty
    assert findings.load_values(nsd, results_dir=tmp_path / "none").empty


def test_roi_rsa_values_name_their_measure():
    table = _model_table()
    # one subject: tests have n = 1 (or none), the table holds plain r
    one = findings.image_to_llm_rows(table, _net_tests(ventral=False).assign(n=1),
                                     pd.DataFrame({"winner": {"ventral": "blt_mpnet"}}),
                                     pd.DataFrame({"score": []}), rois=["ventral"])
    assert {v["measure"] for v in one[1]["values"]} == {"r"}
    assert {v["measure"] for v in findings.image_to_llm_rows(
        table, None, pd.DataFrame({"winner": {"ventral": "x"}}), pd.DataFrame({"score": []}),
        rois=["ventral"])[1]["values"]} == {"r"}
    assert set(findings.ROI_RSA_MEASURES) == {"r_normalised", "r"}
    with pytest.raises(ValueError, match="measure='normalised'"):
        findings.roi_rsa_values(table, "normalised")
    with pytest.raises(ValueError, match="table"):
        findings.roi_rsa_values(table.to_dict(), "r")


@pytest.mark.parametrize("values, match", [
    ({"model": "x"}, "list of dicts"),
    ([{"quantity": "roi_rsa", "model": "x", "roi": "ventral", "value": 0.1}], "exactly"),
    ([{"quantity": "roi_rsa", "model": "x", "roi": "ventral", "value": "0.1", "measure": "r"}], "number or None"),
    ([{"quantity": "roi_rsa", "model": "", "roi": "ventral", "value": 0.1, "measure": "r"}], "non-empty text"),
])
def test_record_refuses_malformed_values(tiny_root, tmp_path, values, match):
    row = dict(findings.finding("RQ4", "best", "x"), values=values)
    with pytest.raises(ValueError, match=match):
        findings.record("05_image_to_llm", [row], NSD(tiny_root), results_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown fields"):
        findings.record("05_image_to_llm", [dict(row, extra=1)], NSD(tiny_root), results_dir=tmp_path)
    assert not (tmp_path / "findings").exists()


def _rq2(diff, p_fdr, roi="ventral"):
    """An ``rq2_comparison`` table of three controls in one ROI (8 subjects)."""
    spaces = ("multihot", "mpnet_nouns", "mpnet_prepositions")
    t = pd.DataFrame([dict(roi=roi, space=s, kind=k, n=8, mean_diff=d, p_fdr=p, significant=p <= 0.05, note="")
                      for s, k, d, p in zip(spaces, ("categories", "word class", "word class"), diff, p_fdr)])
    t.attrs["main"] = "mpnet"
    return t


# ---------------------------------------------------------------- every row can fail, and pass
#: rows without a criterion, and why: they are shown, never counted as agreeing or not
def _paper_sl(reject, sandbox=False):
    """The paper's searchlight over eight vertices: two per ROI (early, ventral, lateral, parietal);
    nsdgeneral = the first six; every mean r positive."""
    test = {"reject": np.array(reject, bool), "mean": np.full(8, 0.1), "t": np.ones(8)}
    return findings.paper_searchlight_row(test, STREAMS, ROI_NAMES, VISUAL if sandbox else None,
                                          n_subjects=8, main="mpnet", radius=6, sandbox=sandbox)


DESCRIPTIVE = {
    "model_rdm_row": "a model-by-model RDM correlation; the paper reports none and claims nothing about it",
}

def _beyond(gain, n=5):
    """chapter 04's beyond-labels test: brain identification = labels' + gain (+ noise)."""
    from brainllm_utils.chapters.ch04_decoding import beyond_labels_table

    rng = np.random.default_rng(3)
    subjects = [f"subj{i:02d}" for i in range(1, n + 1)]
    lab = rng.uniform(0.9, 0.95, n)
    by_roi = pd.DataFrame([dict(subject=s, roi="ventral", identification=v + gain + rng.normal(0, 0.003))
                           for s, v in zip(subjects, lab)])
    base = pd.DataFrame([dict(subject=s, control="multihot", identification=v) for s, v in zip(subjects, lab)])
    return beyond_labels_table(by_roi, base)


CARD_POSITIVE = {"roi_spaces": {"ventral": {"sentence": 0.5, "category": 0.5}}}
CARD_NULL = {"roi_spaces": {"ventral": {"category": 1.0}}}


#: row function → inputs on which it disagrees (agrees False)
FAILING = {
    "closest_planted_space_row": lambda: findings.closest_planted_space_row(_closest(mpnet="layout")),
    "role_reversal_row": lambda: findings.role_reversal_row(
        _ratios(minilm=0.0, **{"truth:interaction": 0.6}), "minilm", PAIRS),
    "bag_of_words_row": lambda: findings.bag_of_words_row(_ratios(mpnet_word_avg=0.01), PAIRS),
    "roi_rsa_row": lambda: findings.roi_rsa_row("lateral", _group(lateral=(0.1, False)),
                                                pd.Series({"lateral": 0.3}), "mpnet"),
    "paper_searchlight_row": lambda: _paper_sl([0, 0, 1, 1, 0, 0, 0, 0]),  # ventral only, nothing beyond
    "searchlight_row": lambda: findings.searchlight_row({"reject": np.zeros(4, bool), "t": np.ones(4)}, 3,
                                                        "mpnet"),
    "category_control_row": lambda: findings.category_control_row(_tests(0.05, False), ["multihot"], "mpnet"),
    "oracle_winner_row": lambda: findings.oracle_winner_row(
        pd.DataFrame({"winner": {"parietal": "truth:category"}}), CARD),
    "encoding_fdr_row": lambda: _fdr_row(np.zeros(8), sandbox=False),
    "shuffled_baseline_row": lambda: findings.shuffled_baseline_row(
        _baseline([0.05, 0.02, 0.04], [0.04, 0.03, 0.05]), "mpnet"),
    "encoding_ceiling_row": lambda: findings.encoding_ceiling_row(_rel(-0.1), _rel(0.9)),
    "roi_ceiling_fraction_row": lambda: findings.roi_ceiling_fraction_row(
        _ceilings(early=0.1, ventral=0.5, lateral=0.3), ORDER, "mpnet",
        _recovered({"early": 0.0, "ventral": 0.4, "lateral": 0.7}, {})),
    "ceiling_fraction_fit_row": lambda: findings.ceiling_fraction_fit_row(
        _recovered([0.1, 0.5, 0.3], [0.5, 0.1, 0.3])),
    "variance_partition_row": lambda: findings.variance_partition_row(
        _partition(lateral=(-0.01, -0.02)), "mpnet", "mpnet_word_avg"),
    "in_silico_contrast_row": lambda: findings.in_silico_contrast_row(np.array([-0.2, 0.1])),
    "decoding_accuracy_row": lambda: findings.decoding_accuracy_row(_dec(0.5, shared=5.0), np.array([0.8]),
                                                                    "mpnet"),
    "identification_row": lambda: findings.identification_row(
        _dec(0.5, rank=np.tile(np.arange(6)[::-1], (2, 1)))),
    "caption_metric_row": lambda: findings.caption_metric_row(_metrics(0.1, shuffled=0.2), "cider_d", "CIDEr-D"),
    "single_roi_decoding_row": lambda: findings.single_roi_decoding_row(
        _ident(early=0.9, ventral=0.8), TRUTH.loc[["early", "ventral"]]),
    "beyond_labels_row": lambda: findings.beyond_labels_row(_beyond(0.02), card=CARD_NULL),
    "network_objective_row": lambda: findings.network_objective_row(
        _table(lateral=(0.41, 0.4)), findings.objective_tests(_scores({"lateral": 0.01}, noise=0.05),
                                                              ["lateral"]), "lateral"),
    "best_model_row": lambda: findings.best_model_row(_winners(ventral="tied: blt_mpnet, clip_rn50")),
    "transfer_row": lambda: findings.transfer_row(pd.DataFrame(
        {"score": [0.3, 0.4]}, index=pd.MultiIndex.from_tuples([("blt_mpnet", "mpnet"), ("blt_multihot", "mpnet")])),
        "mpnet"),
    "training_size_row": lambda: findings.training_size_row(
        _align({0: [0.10, 0.30, 0.60], 1: [0.20, 0.19, 0.18], 2: [0.21, 0.20, 0.19]})),
    "rq2_controls_row": lambda: findings.rq2_controls_row(_rq2([0.1, 0.02, 0.3], [0.01, 0.3, 0.01]), "ventral"),
    "sentence_controls_row": lambda: findings.sentence_controls_row(  # found in the null world
        _sentence_rq2([0.1, 0.1, 0.05, 0.2, 0.0], [0.01, 0.01, 0.02, 0.01, 0.3]), "ventral", card=CARD),
}

#: row function → inputs on which it agrees (agrees True)
PASSING = {
    "closest_planted_space_row": lambda: findings.closest_planted_space_row(
        _closest(mpnet="category", mpnet_verbs="interaction")),
    "role_reversal_row": lambda: findings.role_reversal_row(
        _ratios(mpnet=0.2, **{"truth:interaction": 0.6}), "mpnet", PAIRS),
    "bag_of_words_row": lambda: findings.bag_of_words_row(_ratios(multihot=0.0), PAIRS),
    "roi_rsa_row": lambda: findings.roi_rsa_row("ventral", _group(ventral=(0.1, True)),
                                                pd.Series({"ventral": 0.4}), "mpnet"),
    "paper_searchlight_row": lambda: _paper_sl([0, 0, 1, 0, 1, 0, 0, 0]),  # ventral and lateral
    "searchlight_row": lambda: findings.searchlight_row({"reject": np.ones(4, bool), "t": np.ones(4)}, 3,
                                                        "mpnet"),
    "category_control_row": lambda: findings.category_control_row(_tests(0.05, True), ["multihot"], "mpnet"),
    "oracle_winner_row": lambda: findings.oracle_winner_row(
        pd.DataFrame({"winner": {"ventral": "truth:category"}}), CARD),
    "encoding_fdr_row": lambda: _fdr_row([1, 0, 0, 0, 1, 0, 1, 0], sandbox=False),
    "shuffled_baseline_row": lambda: findings.shuffled_baseline_row(
        _baseline([0.2, 0.25, 0.3], [0.0, 0.01, -0.01]), "mpnet"),
    "encoding_ceiling_row": lambda: findings.encoding_ceiling_row(_rel(0.3), _rel(0.1)),
    "roi_ceiling_fraction_row": lambda: findings.roi_ceiling_fraction_row(
        _ceilings(early=0.1, ventral=0.5), ORDER, "mpnet", _recovered({"early": 0.0, "ventral": 0.7}, {})),
    "ceiling_fraction_fit_row": lambda: findings.ceiling_fraction_fit_row(
        _recovered([0.1, 0.5, 0.3], [0.12, 0.45, 0.31])),
    "variance_partition_row": lambda: findings.variance_partition_row(
        _partition(lateral=(0.02, 0.01)), "mpnet", "mpnet_word_avg"),
    "in_silico_contrast_row": lambda: findings.in_silico_contrast_row(np.array([0.3, 0.1])),
    "decoding_accuracy_row": lambda: findings.decoding_accuracy_row(_dec(0.6), np.array([0.8]), "mpnet"),
    "identification_row": lambda: findings.identification_row(_dec(0.5)),
    "caption_metric_row": lambda: findings.caption_metric_row(_metrics(0.6, shuffled=0.2), "cider_d", "CIDEr-D"),
    "single_roi_decoding_row": lambda: findings.single_roi_decoding_row(
        _ident(early=0.6, ventral=0.8), TRUTH.loc[["early", "ventral"]]),
    "beyond_labels_row": lambda: findings.beyond_labels_row(_beyond(0.02), card=CARD_POSITIVE),
    "network_objective_row": lambda: findings.network_objective_row(
        _table(ventral=(0.5, 0.4)), findings.objective_tests(_scores({"ventral": 0.1}), ["ventral"]), "ventral"),
    "best_model_row": lambda: findings.best_model_row(_winners(ventral="blt_mpnet")),
    "transfer_row": lambda: findings.transfer_row(pd.DataFrame(
        {"score": [0.6, 0.4]}, index=pd.MultiIndex.from_tuples([("blt_mpnet", "mpnet"), ("blt_multihot", "mpnet")])),
        "mpnet"),
    "training_size_row": lambda: findings.training_size_row(
        _align({0: [0.10, 0.15, 0.20], 1: [0.11, 0.15, 0.21], 2: [0.10, 0.16, 0.19]})),
    "rq2_controls_row": lambda: findings.rq2_controls_row(_rq2([0.1, 0.05, 0.3], [0.01, 0.02, 0.01]), "ventral"),
    "sentence_controls_row": lambda: findings.sentence_controls_row(  # found where planted
        _sentence_rq2([0.1, 0.1, 0.05, 0.2, 0.0], [0.01, 0.01, 0.02, 0.01, 0.3]), "ventral", card=POSITIVE_CARD),
}


def _row_functions():
    import inspect

    return sorted(name for name, f in inspect.getmembers(findings, inspect.isfunction)
                  if name.endswith("_row") and not name.startswith("_") and f.__module__ == findings.__name__)


def test_every_row_function_has_a_failing_and_a_passing_case():
    """A new ``*_row`` in findings.py without a case here breaks the suite."""
    rows = _row_functions()
    assert len(rows) >= 20
    judged = [r for r in rows if r not in DESCRIPTIVE]
    assert sorted(FAILING) == judged, f"rows without a failing case: {sorted(set(judged) - set(FAILING))}"
    assert sorted(PASSING) == judged, f"rows without a passing case: {sorted(set(judged) - set(PASSING))}"
    assert set(DESCRIPTIVE) <= set(rows)


@pytest.mark.parametrize("name", sorted(FAILING))
def test_each_row_fails_on_its_failing_case(name):
    row = FAILING[name]()
    assert row is not None and row["agrees"] is False, f"{name}: {row}"


@pytest.mark.parametrize("name", sorted(PASSING))
def test_each_row_passes_on_its_passing_case(name):
    row = PASSING[name]()
    assert row is not None and row["agrees"] is True, f"{name}: {row}"


def test_descriptive_rows_are_never_judged():
    M = _rdm_matrix(["mpnet", "minilm"])
    for v in (-1.0, 0.0, 0.5, 1.0):
        M.loc[:, :] = v
        assert findings.model_rdm_row(M, "minilm", np.zeros((2, 10)))["agrees"] is None


def test_chapter_row_lists_only_build_rows_through_row_functions():
    """The chapters' assemblers (``*_rows``) make their rows only with ``*_row`` functions (so
    every scorecard row is one of those the tests above enumerate)."""
    import inspect

    tree = ast.parse(inspect.getsource(findings))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    helpers = {"_kept", "objective_tests", "roi_rsa_values", "group_size"}
    assemblers = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.endswith("_rows")
                  and not n.name.startswith("_")]
    assert len(assemblers) == 5
    for fn in assemblers:
        called = {c.func.id for c in ast.walk(fn) if isinstance(c, ast.Call) and isinstance(c.func, ast.Name)}
        other = sorted(c for c in called & defined if not c.endswith("_row") and c not in helpers)
        assert not other, f"{fn.name} builds rows with {other}: make them *_row functions with failing cases"


# --------------------------------------------------------------------------- the two sandbox worlds
def _world(*rows):
    """Findings rows ``(analysis, recovered, expected, agrees)`` of chapter 02, RQ2."""
    return [dict(findings.finding("RQ2", a, rec, exp, ok), chapter="02_rsa") for a, rec, exp, ok in rows]


def test_compare_worlds_verdicts():
    null = _world(("beyond words", "absent: 1 of 3", "absent: not all (planted: category 100%)", True),
                  ("fp", "found: 3 of 3", "absent: not all", False),
                  ("missed", "absent: 2 of 3", "absent: not all", True),
                  ("rq1", "0.4", "> 0 (planted: category 100%)", True),
                  ("rq1 bad", "-0.1", "> 0", False), ("metric", "0.9", "> shuffled 0.175", True),
                  ("criteria", "2 of 2", "> 0 for each word class", True),
                  ("desc", "3", "", None), ("null only", "1", "", True))
    pos = _world(("beyond words", "found: 3 of 3", "found: each > 0 (planted: sentence 50%)", True),
                 ("fp", "found: 3 of 3", "found: each > 0", True),
                 ("missed", "absent: 2 of 3", "found: each > 0", False),
                 ("rq1", "0.5", "> 0 (planted: sentence 50%, category 50%)", True),
                 ("rq1 bad", "0.2", "> 0", True), ("metric", "1.2", "> shuffled 0.201", True),
                 ("criteria", "5 of 5", "> 0 for each category, word-average and word class", True),
                 ("desc", "4", "", None), ("pos only", "1", "", True))
    df = findings.compare_worlds(null, pos)
    assert list(df.columns) == list(findings.WORLD_FIELDS)
    verdict = df.set_index("analysis")["verdict"].to_dict()
    assert verdict == {
        "beyond words": "found where planted, absent in null",
        "fp": "cannot tell apart: the null world shows it too",
        "missed": "missed where planted",
        # the planted mixture and a baseline's value differ, the outcome asked for does not
        "rq1": "agrees in both (same expectation in both worlds)",
        "metric": "agrees in both (same expectation in both worlds)",
        "rq1 bad": "disagrees in the null world",
        "criteria": "agrees in both (criteria differ with the card)",
        "desc": findings.NO_CRITERION,
        "null only": "only in the null world",
        "pos only": "only in the positive world",
    }
    row = df.set_index("analysis").loc["beyond words"]
    assert row["null"] == "✓ absent: 1 of 3" and row["positive"] == "✓ found: 3 of 3"
    assert row["expected_positive"] == "found: each > 0 (planted: sentence 50%)"
    assert df.set_index("analysis").loc["pos only", "null"] == ""
    # the worlds swapped: no claim flips from absent to found any more
    swapped = findings.compare_worlds(pos, null).set_index("analysis")["verdict"]
    assert swapped["beyond words"] == "agrees in both (criteria differ with the card)"
    assert swapped["fp"] == "disagrees in the positive world"


def test_compare_worlds_reads_load_tables_and_refuses_bad_input(tiny_root, tmp_path):
    nsd = NSD(tiny_root)
    findings.record("02_rsa", [findings.finding("RQ1", "ROI RSA", 0.4, "> 0", True),
                               findings.finding("RQ2", "beyond", "absent", "absent", True)], nsd, results_dir=tmp_path)
    table = findings.load(nsd, results_dir=tmp_path)
    df = findings.compare_worlds(table, table)
    assert list(df["verdict"]) == ["agrees in both (same expectation in both worlds)"] * 2
    assert list(df["rq"]) == ["RQ1", "RQ2"]
    with pytest.raises(TypeError, match="positive_rows"):
        findings.compare_worlds(table, "not a table")
    with pytest.raises(ValueError, match="null_rows: each finding needs"):
        findings.compare_worlds([{"rq": "RQ1"}], table)
    with pytest.raises(ValueError, match="recorded twice"):
        findings.compare_worlds(pd.concat([table, table]), table)
    with pytest.raises(ValueError, match="'agrees' must be"):
        findings.compare_worlds([dict(table.iloc[0].to_dict(), agrees="yes")], table)


def test_scorecard_file_round_trip_and_absent(tiny_root, tmp_path):
    nsd = NSD(tiny_root)
    path = tmp_path / "book" / "positive_world_findings.json"
    assert findings.load_scorecard(path) is None  # not yet computed: the page says so
    with pytest.raises(ValueError, match="no findings recorded"):
        findings.save_scorecard(nsd, path, results_dir=tmp_path)
    findings.record("02_rsa", [findings.finding("RQ1", "ROI RSA", 0.4, "> 0", True),
                               findings.finding("RQ2", "x", "3", "", None)], nsd, results_dir=tmp_path)
    findings.record("02_rsa", [findings.finding("RQ1", "grid", 1.0)], nsd, results_dir=tmp_path,
                    run="02_rsa__seed-1")  # a grid run: left out, as on the page
    with pytest.raises(ValueError, match="timings"):
        findings.save_scorecard(nsd, path, results_dir=tmp_path, timings={"02_rsa": -1.0})
    findings.save_scorecard(nsd, path, results_dir=tmp_path, timings={"02_rsa": 12.5})
    card = findings.load_scorecard(path)
    assert card["world"] == "null" and card["chapters"] == ["02_rsa"] and card["timings_s"] == {"02_rsa": 12.5}
    assert card["command"] == findings.POSITIVE_COMMAND
    assert list(card["rows"]["analysis"]) == ["ROI RSA", "x"]
    assert list(card["rows"]["agrees"]) == [True, None]
    assert "roi_spaces" in card and "data" not in json.loads(path.read_text())
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a scorecard file"):
        findings.load_scorecard(path)


def test_scorecard_is_for_sandbox_worlds_only(tmp_path):
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="not a generated sandbox"):
        findings.save_scorecard(SimpleNamespace(root=tmp_path), tmp_path / "x.json", results_dir=tmp_path)


def test_world_comparison_says_when_the_positive_world_is_missing():
    null = pd.DataFrame(_world(("beyond words", "absent: 1", "absent: not all", True)), columns=list(findings.FIELDS))
    table, counts, message = findings.world_comparison(null, None)
    assert table is None and counts == {} and message == "not yet computed: run make positive"
    pos = {"chapters": ["02_rsa"], "rows": pd.DataFrame(_world(("beyond words", "found: 3", "found: all", True)))}
    table, counts, message = findings.world_comparison(null, pos)
    assert counts == {"found where planted, absent in null": 1}
    assert message == "1 claims of chapters 02_rsa compared" and len(table) == 1
    # the null world has not run the positive world's chapters: nothing to compare
    table, counts, message = findings.world_comparison(null.iloc[:0], pos)
    assert table is None and message.startswith("the null world's chapters 02_rsa have not run yet")
    with pytest.raises(TypeError, match="scorecard"):
        findings.world_comparison(null, {"rows": []})
