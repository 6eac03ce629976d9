"""brainllm_utils.chapters.reproduction: the run's numbers next to the paper's, and the page.

Findings are made with the chapters' own row functions (``findings.*_row``), so a change of
what a chapter records breaks these tests instead of silently emptying the table.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from brainllm_utils import batch, book, viz
from brainllm_utils.chapters import findings, paper_reference_numbers as reference_rsa
from brainllm_utils.chapters import reproduction as rp
from brainllm_utils.nsd import NSD, NSD_SESSIONS

CHAPTERS = ("04_decoding", "05_image_to_llm")


def _found(llm_mpnet=0.690, cat_mpnet=0.621, llm_multihot=0.638, cat_multihot=0.630, n_test=515,
           diffs=(0.05, 0.10, -0.02)):
    """Findings of chapters 04 and 05 as the chapters record them (real row functions)."""
    transfer = pd.DataFrame(
        {"score": [llm_mpnet, cat_mpnet, llm_multihot, cat_multihot]},
        index=pd.MultiIndex.from_tuples([("blt_mpnet", "mpnet"), ("blt_multihot", "mpnet"),
                                         ("blt_mpnet", "multihot"), ("blt_multihot", "multihot")],
                                        names=["network", "target"]))
    rois = ["ventral", "lateral", "parietal"]
    table = pd.DataFrame({roi: [0.4 + d, 0.4] for roi, d in zip(rois, diffs)}, index=["blt_mpnet", "blt_multihot"])
    tests = pd.DataFrame({"roi": rois, "model_a": "blt_mpnet", "model_b": "blt_multihot", "n": 8,
                          "mean_diff": list(diffs), "p_adj": 0.01, "significant": True,
                          "correction": "paired t over subjects, Holm over 3 ROIs"})  # findings.objective_tests
    rank = np.zeros((2, n_test), dtype=int)
    rows05 = [findings.network_objective_row(table, tests, roi) for roi in rois]
    rows05 += [findings.transfer_row(transfer, t) for t in findings.TRANSFER_TARGETS]
    rows04 = [findings.identification_row({"test_ids": np.arange(n_test), "rank": rank})]
    rows = [dict(r, chapter="05_image_to_llm") for r in rows05] + [dict(r, chapter="04_decoding") for r in rows04]
    return pd.DataFrame(rows, columns=list(findings.FIELDS))


#: the paper's network of each book model that has one (reproduction.BOOK_MODELS)
BOOK_OF = {book: model for model, (book, _) in rp.BOOK_MODELS.items() if book}
PAPER_ROIS = ("ventral", "lateral", "parietal")


def _values(overrides=None, drop=(), value=None, n=8):
    """Chapter 05's recorded ROI RSA values, as the chapter records them (real row function)
    and ``findings.load_values`` reads them: every book model at the paper's value, unless
    ``overrides[(model, roi)]`` says otherwise; ``drop``: models the run did not have."""
    paper = reference_rsa()
    table = pd.DataFrame({roi: {book: paper.loc[model, roi] for book, model in BOOK_OF.items()}
                          for roi in PAPER_ROIS})
    table.loc["blt_multihot"] = 0.30  # no paper row (the paper's control is an ecoset network)
    table.loc["mpnet"] = 0.25
    for (model, roi), v in (overrides or {}).items():
        table.loc[model, roi] = v
    table = table.drop(index=list(drop))
    tests = pd.DataFrame({"roi": list(PAPER_ROIS), "model_b": "blt_multihot", "significant": True, "n": n})
    winners = pd.DataFrame({"winner": {roi: "blt_mpnet" for roi in PAPER_ROIS}})
    rows = findings.image_to_llm_rows(table, tests, winners, pd.DataFrame({"score": []}), rois=list(PAPER_ROIS),
                                      value=value)
    return pd.DataFrame([dict(chapter="05_image_to_llm", analysis=r["analysis"], **v)
                         for r in rows for v in r.get("values", [])],
                        columns=["chapter", "analysis", *findings.VALUE_FIELDS]).astype({"value": float})


def _nsd_description(**changes):
    """A real NSD copy as describe_dataset reports it: full size, 8 subjects, all sessions."""
    d = {"root": "/data/nsd", "sandbox": False, "n_images": 73_000, "subjectim_shape": [8, 10_000],
         "subjects": [f"subj{s:02d}" for s in range(1, 9)],
         "sessions": {f"subj{s:02d}": n for s, n in NSD_SESSIONS.items()}}
    d.update(changes)
    return d


def _paper_run(**changes):
    """Run parameters of the paper profile, as the batch manifest records them."""
    out = {ch: {**batch.PROFILES["paper"][ch], "data_home": "/data/nsd", "run_name": ch} for ch in CHAPTERS}
    for ch, params in changes.items():
        out[ch].update(params)
    return out


def _row(df, kind, item_part):
    rows = df[(df["kind"] == kind) & df["item"].str.contains(item_part, regex=False)]
    assert len(rows) == 1, (kind, item_part, list(df["item"]))
    return rows.iloc[0]


# --------------------------------------------------------------------------- the sandbox
def test_sandbox_rows_are_not_comparable_and_say_why(tiny_root):
    nsd = NSD(tiny_root)
    desc = rp.describe_dataset(nsd)
    assert desc["sandbox"] is True and desc["subjects"] == nsd.subjects
    df = rp.reproduction_table(_found(), nsd, run_parameters=_paper_run(), paper_settings=batch.PROFILES["paper"])
    assert list(df.columns) == list(rp.COLUMNS)
    assert not df["comparable"].any()
    assert df["agrees"].map(lambda v: v is None).all()
    assert df["why_not"].str.startswith("sandbox data: synthetic brain, not NSD").all()
    # the run's numbers are still read, for orientation
    assert _row(df, "transfer", "(blt_mpnet) → mpnet")["ours"] == pytest.approx(0.690)
    assert rp.run_verdict(df).startswith("Not comparable")
    df = rp.reproduction_table(_found(), nsd, run_parameters=_paper_run(), paper_settings=batch.PROFILES["paper"],
                               values=_values())
    assert not df["comparable"].any() and df["why_not"].str.startswith("sandbox data: synthetic brain").all()
    assert df["ours"].notna().sum() == 1 + 4 + 15  # count, transfer, networks × ROIs


def test_every_paper_number_has_a_row_with_its_source():
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"])
    assert (df["kind"] == "roi_rsa").sum() == 14 * 3  # every network × ROI of the paper
    assert (df["kind"] == "transfer").sum() == 4
    assert df["paper_source"].str.len().gt(0).all() and df["tolerance_reason"].str.len().gt(0).all()
    rcnn = _row(df, "roi_rsa", "LLM-trained RCNN (seed avg), lateral")
    assert rcnn["paper"] == 0.468 and np.isnan(rcnn["ours"])
    assert "not computed by this run" in rcnn["why_not"] and rcnn["agrees"] is None
    assert "not computed by this run: the book has no CORnet-S" in _row(df, "roi_rsa", "CORnet-S, ventral")["why_not"]


# --------------------------------------------------------------------------- real NSD: agreement
@pytest.mark.parametrize("value, agrees", [(0.707, True), (0.708, False), (0.682, True), (0.668, True),
                                           (0.667, False)])
def test_transfer_agrees_at_the_tolerance_edges(value, agrees):
    # paper: 0.682–0.693 over 10 seeds; tolerance: the widest seed spread, 0.014
    df = rp.reproduction_table(_found(llm_mpnet=value), _nsd_description(), _paper_run(), batch.PROFILES["paper"])
    row = _row(df, "transfer", "(blt_mpnet) → mpnet")
    assert row["tolerance"] == pytest.approx(0.014)
    assert row["comparable"] and row["why_not"] == ""
    assert row["ours"] == pytest.approx(value)
    assert row["agrees"] is agrees


@pytest.mark.parametrize("value, agrees", [(0.607, True), (0.606, False), (0.635, True), (0.636, False)])
def test_single_paper_value_agrees_within_tolerance(value, agrees):
    df = rp.reproduction_table(_found(cat_mpnet=value), _nsd_description(), _paper_run(), batch.PROFILES["paper"])
    row = _row(df, "transfer", "(blt_multihot) → mpnet")
    assert (row["paper_low"], row["paper_high"]) == (0.621, 0.621)
    assert row["agrees"] is agrees


def test_a_real_nsd_run_with_the_paper_settings_is_compared():
    df = rp.reproduction_table(_found(n_test=514, cat_multihot=0.70), _nsd_description(), _paper_run(),
                               batch.PROFILES["paper"])
    comp = df[df["comparable"]]
    assert set(comp["kind"]) == {"transfer", "count"} and len(comp) == 5
    count = _row(df, "count", "shared test images")
    assert count["ours"] == 514 and count["agrees"] is False  # exact: 515
    assert _row(df, "transfer", "(blt_multihot) → multihot")["agrees"] is False
    assert _row(df, "transfer", "(blt_mpnet) → multihot")["agrees"] is True
    # the paper's LLM − category difference is against an ecoset network: the book's multi-hot BLT
    # has no paper number, so the table has no difference row (nothing borrowed)
    assert "roi_rsa_difference" not in set(df["kind"])
    assert not df["item"].str.contains("−").any()
    assert rp.run_verdict(df).startswith("Comparable: 5 of")
    assert rp.reproduction_table(_found(n_test=515), _nsd_description(), _paper_run(),
                                 batch.PROFILES["paper"]).pipe(_row, "count", "shared")["agrees"] is True


# --------------------------------------------------------------------------- real NSD: networks' ROI RSA
def test_the_networks_roi_rsa_are_compared_from_chapter_05s_values():
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"], values=_values())
    rsa = df[df["kind"] == "roi_rsa"]
    have = rsa[rsa["ours"].notna()]
    # the five networks the book has, in the three ROIs; all at the paper's value here
    assert sorted(set(have["item"].str.rsplit(", ", n=1).str[0])) == sorted(BOOK_OF.values())
    assert len(have) == 15 and have["comparable"].all() and (have["agrees"] == True).all()  # noqa: E712
    assert (have["ours"] == have["paper"]).all()
    rcnn = _row(df, "roi_rsa", "LLM-trained RCNN (seed avg), lateral")
    assert rcnn["ours"] == pytest.approx(0.468) and rcnn["note"].startswith("book: blt_mpnet (per-subject r averaged over its seeds, as the paper's code")
    assert rcnn["tolerance"] == 0.05 and "no error bars" in rcnn["tolerance_reason"]
    assert _row(df, "roi_rsa", "CLIP ViT (image), parietal")["note"] == (
        "book: clip_vit_b32; paper: CLIP ViT-B/32 image encoder (encode_image), 400M image-text pairs")
    assert "paper: BLT-vNet trained on ecoset categories" in _row(df, "roi_rsa", "ecoset RCNN (category), ventral")["note"]
    # the networks the book does not have stay without a value, with the reason
    cornet = _row(df, "roi_rsa", "CORnet-S, ventral")
    assert np.isnan(cornet["ours"]) and cornet["why_not"] == "not computed by this run: the book has no CORnet-S"
    # 15 networks × ROIs, 4 transfer readouts, the test-set count: 20 of the paper's 47 numbers
    assert len(df) == 47 and int(df["comparable"].sum()) == 20
    assert rp.run_verdict(df) == ("Comparable: 20 of 47 of the paper's numbers can be compared with this run; "
                                  "20 of them agree within their tolerance.")


@pytest.mark.parametrize("model, roi, value, agrees", [
    # paper 0.429; tolerance ±0.05 normalised r
    ("blt_mpnet", "ventral", 0.479, True), ("blt_mpnet", "ventral", 0.480, False),
    ("blt_mpnet", "ventral", 0.379, True), ("blt_mpnet", "ventral", 0.378, False),
    # paper 0.278 (CLIP ViT, parietal)
    ("clip_vit_b32", "parietal", 0.328, True), ("clip_vit_b32", "parietal", 0.329, False),
    ("clip_vit_b32", "parietal", 0.228, True), ("clip_vit_b32", "parietal", 0.227, False),
])
def test_roi_rsa_agrees_at_the_tolerance_edges(model, roi, value, agrees):
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"],
                               values=_values({(model, roi): value}))
    row = _row(df, "roi_rsa", f"{BOOK_OF[model]}, {roi}")
    assert row["comparable"] and row["why_not"] == ""
    assert row["ours"] == pytest.approx(value)
    assert row["agrees"] is agrees
    others = df[(df["kind"] == "roi_rsa") & df["comparable"] & (df["item"] != row["item"])]
    assert len(others) == 14 and (others["agrees"] == True).all()  # noqa: E712


def test_roi_rsa_that_cannot_be_compared_says_why():
    # one subject: the chapter's table holds plain r (no ceiling); shown, never compared
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"],
                               values=_values(n=1))
    row = _row(df, "roi_rsa", "NF-ResNet50, ventral")
    assert row["ours"] == pytest.approx(0.351) and not row["comparable"] and row["agrees"] is None
    assert "the book's value is plain r (one subject: no leave-one-subject-out ceiling)" in row["why_not"]
    # a comparison model the run did not have (weights missing), a NaN (ceiling ≤ 0)
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"],
                               values=_values({("nf_resnet50", "lateral"): np.nan}, drop=["clip_rn50"]))
    clip = _row(df, "roi_rsa", "CLIP RN50 (image), ventral")
    assert np.isnan(clip["ours"]) and not clip["comparable"]
    # the paper profile keeps the notebook's default comparison_models: the manifest does not list them
    assert ("clip_rn50 has no ventral ROI RSA in chapter 05's table: not among the run's comparison models, or "
            "its weights were missing") in clip["why_not"]
    for models, reason in [(["alexnet"], "not in the run's comparison_models"),
                           (["clip_rn50"], "in the run's comparison_models but not computed: its weights were "
                                           "missing")]:
        run = _paper_run(**{"05_image_to_llm": {"comparison_models": models}})
        clip = _row(rp.reproduction_table(_found(), _nsd_description(), run, batch.PROFILES["paper"],
                                          values=_values(drop=["clip_rn50"])), "roi_rsa", "CLIP RN50 (image), lateral")
        assert reason in clip["why_not"]
    no_roi = _values()
    no_roi = no_roi[no_roi["roi"] != "parietal"]
    row = _row(rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"],
                                     values=no_roi), "roi_rsa", "NF-ResNet50, parietal")
    assert "ROI parietal not among the chapter's rois" in row["why_not"]
    nan = _row(df, "roi_rsa", "NF-ResNet50, lateral")
    assert np.isnan(nan["ours"]) and "chapter 05 recorded NaN for nf_resnet50, lateral" in nan["why_not"]
    assert int(df["comparable"].sum()) == 5 + 15 - 3 - 1
    # values not given, or recorded by a book that did not record them, or chapter 05 not run
    for values, reason in [(None, "no recorded values given"),
                           (_values().iloc[:0], "chapter 05's findings carry no ROI RSA values")]:
        row = _row(rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"],
                                         values=values), "roi_rsa", "LLM-trained RCNN (seed avg), ventral")
        assert np.isnan(row["ours"]) and reason in row["why_not"]
    found = _found()
    row = _row(rp.reproduction_table(found[found["chapter"] != "05_image_to_llm"], _nsd_description(),
                                     _paper_run(), batch.PROFILES["paper"], values=_values().iloc[:0]),
               "roi_rsa", "ResNeXt101 WSL, lateral")
    assert "chapter 05_image_to_llm recorded no findings" in row["why_not"]
    # another run's settings: the values are read but not compared
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(**{"05_image_to_llm": {"n_sets": 2}}),
                               batch.PROFILES["paper"], values=_values())
    row = _row(df, "roi_rsa", "LLM-trained RCNN (seed avg), ventral")
    assert row["ours"] == pytest.approx(0.429) and "paper profile not used: n_sets=2" in row["why_not"]


def test_the_ecoset_row_is_never_paired_with_the_multihot_blt():
    # chapter 05 records blt_multihot's ROI RSA, but the paper's category row is an ecoset network
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(), batch.PROFILES["paper"],
                               values=_values())
    for roi in PAPER_ROIS:
        row = _row(df, "roi_rsa", f"ecoset RCNN (category), {roi}")
        assert np.isnan(row["ours"]) and not row["comparable"] and row["agrees"] is None
        assert "the book trains no ecoset network" in row["why_not"]
    assert "blt_multihot" not in {b for b, _ in rp.BOOK_MODELS.values()}


def test_bad_values_are_named():
    with pytest.raises(ValueError, match="values: expected a DataFrame"):
        rp.reproduction_table(_found(), _nsd_description(), values=pd.DataFrame({"model": ["x"]}))
    twice = pd.concat([_values(), _values().iloc[:1]])
    with pytest.raises(ValueError, match="recorded twice"):
        rp.reproduction_table(_found(), _nsd_description(), values=twice)


# --------------------------------------------------------------------------- real NSD: why not
@pytest.mark.parametrize("dataset, run, reason", [
    (dict(subjects=["subj01"], sessions={"subj01": 40}), {}, "subjects 1 of 8 on disk"),
    (dict(sessions={**{f"subj{s:02d}": n for s, n in NSD_SESSIONS.items()}, "subj04": 29}), {},
     "sessions on disk: subj04 29 of 30"),
    (dict(n_images=7_300, subjectim_shape=[8, 1_000]), {}, "not full-size NSD: 7,300 images, subjectim 8 × 1,000"),
    ({}, {"05_image_to_llm": {"preset": "tiny", "seeds": [0]}},
     "paper profile not used: preset=\"tiny\" (paper: \"paper\"), seeds=[0] (paper: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])"),
    ({}, {"05_image_to_llm": {"subjects": ["subj01", "subj02"]}}, "subjects 2 of 8"),
    ({}, {"05_image_to_llm": {"sessions": [1, 2]}}, "sessions selected (sessions=[1, 2])"),
])
def test_a_real_nsd_run_that_differs_from_the_paper_is_not_comparable(dataset, run, reason):
    df = rp.reproduction_table(_found(), _nsd_description(**dataset), _paper_run(**run), batch.PROFILES["paper"])
    row = _row(df, "transfer", "(blt_mpnet) → mpnet")
    assert not row["comparable"] and row["agrees"] is None
    assert reason in row["why_not"], row["why_not"]


def test_unknown_settings_are_not_comparable():
    df = rp.reproduction_table(_found(), _nsd_description())
    assert not df["comparable"].any()
    assert df["why_not"].str.contains("run settings unknown (no batch manifest)", regex=False).all()
    df = rp.reproduction_table(_found(), _nsd_description(), {"04_decoding": {}}, batch.PROFILES["paper"])
    assert "no manifest entry for 05_image_to_llm" in _row(df, "transfer", "(blt_mpnet) → mpnet")["why_not"]
    assert "no manifest entry" not in _row(df, "count", "shared")["why_not"]
    df = rp.reproduction_table(_found(), _nsd_description(), _paper_run(), None)
    assert "the paper profile's settings were not given" in _row(df, "count", "shared")["why_not"]


def test_a_chapter_that_did_not_run_is_named():
    found = _found()
    df = rp.reproduction_table(found[found["chapter"] != "05_image_to_llm"], _nsd_description(), _paper_run(),
                               batch.PROFILES["paper"])
    row = _row(df, "transfer", "(blt_mpnet) → mpnet")
    assert np.isnan(row["ours"]) and "chapter 05_image_to_llm recorded no findings" in row["why_not"]


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="found"):
        rp.reproduction_table(pd.DataFrame({"x": [1]}), _nsd_description())
    with pytest.raises(ValueError, match="dataset: missing"):
        rp.reproduction_table(_found(), {"sandbox": False})
    with pytest.raises(ValueError, match="run_parameters"):
        rp.reproduction_table(_found(), _nsd_description(), run_parameters={"05_image_to_llm": 3})


def test_manifest_parameters_keep_each_chapters_own_run():
    manifest = {"notebooks": {
        "05_image_to_llm.ipynb": {"notebook": "05_image_to_llm.ipynb", "parameters": {"preset": "paper"}},
        "05_image_to_llm__seed-1.ipynb": {"notebook": "05_image_to_llm.ipynb", "parameters": {"preset": "tiny"}},
    }}
    assert rp.manifest_parameters(manifest) == {"05_image_to_llm": {"preset": "paper"}}
    assert rp.manifest_parameters({"notebooks": {}}) == {}
    with pytest.raises(ValueError, match="manifest"):
        rp.manifest_parameters({"x": 1})


# --------------------------------------------------------------------------- CSV
def test_csv_round_trip(tmp_path):
    df = rp.reproduction_table(_found(cat_multihot=0.70), _nsd_description(), _paper_run(), batch.PROFILES["paper"])
    assert set(df["agrees"].map(repr)) == {"True", "False", "None"}
    path = rp.write_reproduction_csv(df, tmp_path / "out" / "reproduction.csv")
    back = rp.read_reproduction_csv(path)
    pd.testing.assert_frame_equal(back, df, check_dtype=False)
    assert list(back["agrees"]) == list(df["agrees"])  # None stays None, not NaN or "None"
    assert list(tmp_path.joinpath("out").iterdir()) == [path], "no temporary file left"


def test_csv_refuses_other_tables_and_leaves_nothing(tmp_path):
    with pytest.raises(ValueError, match="columns"):
        rp.write_reproduction_csv(pd.DataFrame({"a": [1]}), tmp_path / "r.csv")
    df = rp.reproduction_table(_found(), _nsd_description())
    with pytest.raises(ValueError, match=r"\.csv"):
        rp.write_reproduction_csv(df, tmp_path / "r.txt")
    assert not list(tmp_path.iterdir())
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="bad.csv: expected the columns"):
        rp.read_reproduction_csv(tmp_path / "bad.csv")


# --------------------------------------------------------------------------- figure
def test_plot_marks_agreement_and_greys_what_is_not_comparable():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # one subject: the networks' ROI RSA are plain r, shown but not comparable (hollow grey)
    df = rp.reproduction_table(_found(cat_multihot=0.70), _nsd_description(), _paper_run(), batch.PROFILES["paper"],
                               values=_values(n=1).query("model in ['blt_mpnet', 'nf_resnet50'] and roi != 'lateral'"))
    fig, ax = plt.subplots()
    assert viz.plot_reproduction(df, ax=ax) is ax
    shown = df[df["ours"].notna()]
    assert len(ax.get_yticks()) == len(shown) == 5 + 4
    faces = [matplotlib.colors.to_hex(line.get_markerfacecolor()) if line.get_markerfacecolor() != "none"
             else "none" for line in ax.get_lines() if line.get_marker() in ("o", ">", "<")]
    assert faces.count("#1a9850") == 4 and faces.count("#d73027") == 1 and faces.count("none") == 4
    fig2, ax2 = plt.subplots()
    viz.plot_reproduction(rp.reproduction_table(_found(), dict(_nsd_description(), sandbox=True)), ax=ax2,
                          show_not_comparable=False)
    assert "no number of this run" in ax2.texts[0].get_text()
    plt.close("all")


# --------------------------------------------------------------------------- the page
def test_batch_runs_the_page_after_the_chapters_with_its_output_dir(tiny_root, tmp_path):
    jobs = batch.plan_jobs(["05_image_to_llm", "07_reproduction"], data_home=tiny_root, output_dir=tmp_path)
    assert [j.wave for j in jobs] == [0, 1]
    assert jobs[1].parameters == {"data_home": str(tiny_root.resolve()), "output_dir": str(tmp_path.resolve())}
    # a chapter declares output_dir too (its exported files are linked relative to it)
    assert jobs[0].parameters["output_dir"] == str(tmp_path.resolve())
    with pytest.raises(batch.BatchParameterError, match="output_dir"):
        batch.plan_jobs(["07_reproduction"], data_home=tiny_root, fixed={"output_dir": "/x"}, output_dir=tmp_path)


def test_page_runs_on_the_sandbox_and_writes_the_csv(tiny_root, tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLLM_RESULTS", str(tmp_path / "results"))
    nsd = NSD(tiny_root)
    found = _found()
    values = _values()
    best = dict(findings.best_model_row(pd.DataFrame({"winner": {"ventral": "blt_mpnet"}})),
                values=values[list(findings.VALUE_FIELDS)].to_dict("records"))
    for ch in CHAPTERS:
        rows = found[found["chapter"] == ch].drop(columns="chapter").to_dict("records")
        findings.record(ch, rows + ([best] if ch == "05_image_to_llm" else []), nsd)
    out = tmp_path / "book"
    (source,) = book.list_notebooks(["07_reproduction"])
    book.execute_notebook(source, out / "07_reproduction.ipynb",
                          {"data_home": str(tiny_root), "output_dir": str(out)})
    df = rp.read_reproduction_csv(out / "reproduction.csv")
    assert len(df) and not df["comparable"].any()
    assert df["why_not"].str.startswith("sandbox data: synthetic brain, not NSD").all()
    assert _row(df, "transfer", "(blt_mpnet) → mpnet")["ours"] == pytest.approx(0.690)
    assert _row(df, "roi_rsa", "LLM-trained RCNN (seed avg), ventral")["ours"] == pytest.approx(0.429)
    assert df["ours"].notna().sum() == 1 + 4 + 15
    nb = json.loads((out / "07_reproduction.ipynb").read_text())
    outputs = [o for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])]
    glued = {o["metadata"]["scrapbook"]["name"]:  # myst-nb glue, as the book reads it
             {k.removeprefix(o["metadata"]["scrapbook"].get("mime_prefix", "")): v for k, v in o["data"].items()}
             for o in outputs if "scrapbook" in o.get("metadata", {})}
    assert glued["repro_verdict"]["text/markdown"].startswith("**Not comparable**")
    assert glued["repro_n_comparable"]["text/plain"] == "0"
    assert any("image/png" in o.get("data", {}) for o in outputs), "no figure"
    markdown = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "{download}`" in markdown and "<reproduction.csv>`" in markdown
