"""RQ2 against the brain: which spaces run, word-vector files, sbert models, the paired
comparison with its correction, encoding per ROI, findings rows, the figure and the batch
checks."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from brainllm_utils import features, viz
from brainllm_utils._utils.paths import REPO_ROOT
from brainllm_utils.book import batch
from brainllm_utils.chapters import findings, rq2, rsa_design
from brainllm_utils.chapters import ch02_rsa as ra
from brainllm_utils.chapters import ch03_encoding as ea
from brainllm_utils.nsd import NSD

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def _no_vector_env(monkeypatch):
    for env, _, _ in rq2.VECTOR_FILES.values():
        monkeypatch.delenv(env, raising=False)


@pytest.fixture(scope="module")
def nsd(tiny_root):
    return NSD(tiny_root)


def _write_vectors(path, words, dim=5, seed=0, header=False):
    """A small word-vector file (GloVe layout, or fastText's with ``header``) and its vectors."""
    rng = np.random.default_rng(seed)
    vecs = {w: rng.normal(size=dim).astype(np.float32) for w in sorted(set(words))}
    lines = [f"{len(vecs)} {dim}"] if header else []
    lines += [w + " " + " ".join(f"{x:.6f}" for x in v) for w, v in vecs.items()]
    path.write_text("\n".join(lines) + "\n")
    return {w: np.array([float(f"{x:.6f}") for x in v]) for w, v in vecs.items()}


# --------------------------------------------------------------------------- the plan
def test_plan_skips_word_vectors_without_a_file_and_keeps_the_rows():
    plan = rq2.check_rq2_spaces(["mpnet", "multihot", "glove_all", "fasttext_categories", "multihot",
                                 "sbert:all-MiniLM-L6-v2"])
    assert plan.spaces == ["multihot", "glove_all", "fasttext_categories", "sbert:all-MiniLM-L6-v2"]
    assert plan.runnable == ["multihot", "sbert:all-MiniLM-L6-v2"]
    assert plan.skipped == {"glove_all": rq2.NO_VECTOR_FILE, "fasttext_categories": rq2.NO_VECTOR_FILE}


def test_plan_reads_the_vector_file_from_the_parameter_or_the_environment(tmp_path, monkeypatch):
    f = tmp_path / "glove.txt"
    _write_vectors(f, ["dog", "cat"])
    plan = rq2.check_rq2_spaces(["glove_all", "fasttext_all"], glove_path=f)
    assert plan.runnable == ["glove_all"] and plan.options["glove_all"] == {"vectors_path": str(f)}
    assert plan.skipped == {"fasttext_all": rq2.NO_VECTOR_FILE}
    monkeypatch.setenv("BRAINLLM_FASTTEXT", str(f))
    assert rq2.check_rq2_spaces(["fasttext_all"]).runnable == ["fasttext_all"]
    with pytest.raises(FileNotFoundError, match="glove.840B.300d"):
        rq2.check_rq2_spaces(["glove_all"], glove_path=tmp_path / "missing.txt")
    monkeypatch.setenv("BRAINLLM_FASTTEXT", str(tmp_path / "nope.vec"))
    with pytest.raises(FileNotFoundError, match=r"\$BRAINLLM_FASTTEXT"):
        rq2.check_rq2_spaces(["multihot"])


def test_plan_refuses_unknown_and_uninstalled_spaces_naming_the_parameter():
    with pytest.raises(ValueError, match="rq2_spaces: unknown feature space 'mpnet_nouns_typo'"):
        rq2.check_rq2_spaces(["mpnet_nouns_typo"])
    with pytest.raises(ValueError, match=r"rq2_spaces: 'sbert:no-such/encoder-xyz'.*not installed"):
        rq2.check_rq2_spaces(["sbert:no-such/encoder-xyz"])
    with pytest.raises(ValueError, match="expected a list"):
        rq2.check_rq2_spaces("multihot")


def test_rq2_kind():
    assert [rq2.rq2_kind(s) for s in ("multihot", "fasttext_all", "mpnet_word_avg", "mpnet_adverbs",
                                      "mpnet_verbs_sentence", "mpnet_scrambled", "sbert:x", "mpnet")] == [
        "categories", "word vectors", "word average", "word class", "word class, as a sentence", "scrambled",
        "sentence encoder", "other"]
    assert all(rq2.rq2_kind(s) != "other" for s in rq2.RQ2_SPACES)


# --------------------------------------------------------------------------- the comparison
def _scores(n_sub=5, seed=0):
    rng = np.random.default_rng(seed)
    rows = []
    for s in range(n_sub):
        for roi, base in (("ventral", 0.3), ("lateral", 0.2)):
            m = base + rng.normal(0, 0.02)
            rows += [dict(subject=f"subj{s + 1:02d}", roi=roi, model="mpnet", r=m),
                     dict(subject=f"subj{s + 1:02d}", roi=roi, model="multihot", r=m - 0.1 + rng.normal(0, 0.01)),
                     dict(subject=f"subj{s + 1:02d}", roi=roi, model="mpnet_adverbs", r=m + rng.normal(0, 0.05))]
    return pd.DataFrame(rows)


def test_comparison_is_a_paired_test_with_fdr_within_each_roi():
    df = _scores()
    plan = rq2.RQ2Plan(spaces=["multihot", "glove_all", "mpnet_adverbs"], runnable=["multihot", "mpnet_adverbs"],
                       skipped={"glove_all": rq2.NO_VECTOR_FILE})
    tab = rq2.rq2_comparison(df, plan, main="mpnet", rois=["lateral", "ventral"])
    assert list(tab["roi"]) == ["lateral"] * 3 + ["ventral"] * 3
    assert list(tab["space"][:3]) == ["multihot", "glove_all", "mpnet_adverbs"]
    for roi in ("lateral", "ventral"):
        wide = df[df["roi"] == roi].pivot(index="subject", columns="model", values="r")
        ps = []
        for s in ("multihot", "mpnet_adverbs"):
            t, p = sps.ttest_rel(wide["mpnet"], wide[s])
            row = tab[(tab["roi"] == roi) & (tab["space"] == s)].iloc[0]
            assert row["t"] == pytest.approx(t) and row["p_ttest"] == pytest.approx(p)
            assert row["mean_diff"] == pytest.approx((wide["mpnet"] - wide[s]).mean())
            assert row["space_mean"] == pytest.approx(wide[s].mean()) and row["n"] == 5
            ps.append(p)
        # Benjamini–Hochberg over the two computed spaces of this ROI
        lo, hi = sorted(ps)
        adj = {lo: min(2 * lo, hi), hi: hi}
        got = tab[(tab["roi"] == roi) & (tab["note"] == "")].set_index("space")["p_fdr"]
        assert got["multihot"] == pytest.approx(adj[ps[0]]) and got["mpnet_adverbs"] == pytest.approx(adj[ps[1]])
        skipped = tab[(tab["roi"] == roi) & (tab["space"] == "glove_all")].iloc[0]
        assert skipped["note"] == rq2.NO_VECTOR_FILE and np.isnan(skipped["mean_diff"]) and not skipped["significant"]
    assert tab[tab["space"] == "multihot"]["significant"].all()
    assert "Benjamini–Hochberg" in tab.attrs["correction"] and tab.attrs["main"] == "mpnet"


def test_comparison_with_one_subject_says_not_tested_and_checks_its_input():
    df = _scores(n_sub=1)
    tab = rq2.rq2_comparison(df, main="mpnet")
    assert (tab["note"] == "not tested: needs ≥ 2 subjects").all() and tab["p_fdr"].isna().all()
    assert np.isfinite(tab["mean_diff"]).all()
    with pytest.raises(ValueError, match="main model 'minilm'"):
        rq2.rq2_comparison(df, main="minilm")
    with pytest.raises(ValueError, match="no scores and were not skipped"):
        rq2.rq2_comparison(df, main="mpnet", spaces=["glove_all"])


# --------------------------------------------------------------------------- on the tiny sandbox
def test_word_vectors_from_a_given_file_reach_roi_rsa(nsd, tmp_path):
    """GloVe from a small generated file: the features are the mean vectors of the caption
    tokens (OOV skipped), and the ROI RSA and comparison get a computed row."""
    design, needed = rsa_design(nsd, nsd.subjects, set_size=12, seed=0, n_sets=1, results_dir=tmp_path)
    caps = nsd.captions(needed)
    flat = [c for cs in caps for c in cs]
    tagged = iter(features.tag_captions(flat))
    tokens = [[w.lower() for _ in cs for w, _ in next(tagged)] for cs in caps]
    vocab = sorted({w for ws in tokens for w in ws})
    known = vocab[::2]  # half the words are out of vocabulary
    f = tmp_path / "glove.small.txt"
    vecs = _write_vectors(f, known, dim=6)
    plan = rq2.check_rq2_spaces(["glove_all", "fasttext_all", "mpnet_category_all"], glove_path=f,
                                main="multihot")
    feats = rq2.rq2_features(nsd, plan, needed, names=["glove_all"])
    ids, X = feats["glove_all"]
    assert np.array_equal(ids, needed) and X.shape == (needed.size, 6)
    for i, ws in enumerate(tokens):
        found = [vecs[w] for w in ws if w in vecs]
        expect = np.mean(found, axis=0) if found else np.zeros(6)
        np.testing.assert_allclose(X[i], expect, atol=1e-5)
    main = {"multihot": (needed, features.build("multihot", nsd, needed))}
    df = ra.subject_rsa_table(nsd, nsd.subjects, ["multihot", "glove_all"], rois=["ventral"],
                              set_size=12, seed=0, n_sets=1, device="cpu", features={**main, **feats},
                              results_dir=tmp_path)
    plan.runnable.remove("mpnet_category_all")  # not scored here: the comparison must say so
    plan.skipped["mpnet_category_all"] = "not computed: left out by this test"
    tab = rq2.rq2_comparison(df, plan, main="multihot", rois=["ventral"])
    assert list(tab["space"]) == ["glove_all", "fasttext_all", "mpnet_category_all"]
    assert np.isfinite(tab.set_index("space").loc["glove_all", "p_ttest"])
    assert tab.set_index("space").loc["glove_all", "note"] == ""
    assert tab.set_index("space").loc["fasttext_all", "note"] == rq2.NO_VECTOR_FILE
    with pytest.raises(ValueError, match="not runnable"):
        rq2.rq2_features(nsd, plan, needed, names=["fasttext_all"])


def test_encoding_scores_use_the_main_protocol_on_roi_vertices(nsd, tmp_path, cache_dir):
    """Per vertex the ROI-only fit equals the whole-surface fit of fit_encoders, so the RQ2
    table's main-model scores are the chapter's own encoder's, averaged per ROI."""
    f = tmp_path / "crawl.vec"
    caps = nsd.captions(np.arange(200))
    _write_vectors(f, [w.lower().strip(".,") for cs in caps for c in cs for w in c.split()], dim=4, header=True)
    plan = rq2.check_rq2_spaces(["fasttext_all", "glove_categories"], fasttext_path=f, main="multihot")
    alphas = np.logspace(-1, 3, 5)
    scores = rq2.rq2_encoding_scores(nsd, nsd.subjects, plan, main="multihot", roi="streams", alphas=alphas,
                                     cv=3, device="cpu")
    assert list(dict.fromkeys(scores["model"])) == ["multihot", "fasttext_all"]
    whole = ea.fit_encoders(nsd, nsd.subjects, feature="multihot", roi=None, alphas=alphas, cv=3, device="cpu")
    ref = ea.roi_table(nsd, whole.r, nsd.subjects, name="r")
    got = scores[scores["model"] == "multihot"].merge(ref, on=["subject", "roi"], suffixes=("", "_whole"))
    assert len(got) == len(ref) > 0
    np.testing.assert_allclose(got["r"], got["r_whole"], atol=1e-5)
    tab = rq2.rq2_comparison(scores, plan, main="multihot")
    assert (tab[tab["space"] == "glove_categories"]["note"] == rq2.NO_VECTOR_FILE).all()
    assert tab[tab["space"] == "fasttext_all"]["p_ttest"].notna().all()


# --------------------------------------------------------------------------- findings
def _table(diffs, p_fdr, roi="ventral", spaces=("multihot", "mpnet_nouns", "mpnet_prepositions"), n=8,
           skipped=("glove_all",)):
    rows = [dict(roi=roi, space=s, kind=rq2.rq2_kind(s), n=n, mean_diff=d, p_fdr=p, significant=p <= 0.05,
                 note="") for s, d, p in zip(spaces, diffs, p_fdr)]
    rows += [dict(roi=roi, space=s, kind=rq2.rq2_kind(s), n=np.nan, mean_diff=np.nan, p_fdr=np.nan,
                  significant=False, note=rq2.NO_VECTOR_FILE) for s in skipped]
    t = pd.DataFrame(rows)
    t.attrs["main"] = "mpnet"
    return t


def test_rq2_row_on_real_nsd_needs_every_control_beaten():
    ok = findings.rq2_controls_row(_table([0.1, 0.05, 0.2], [0.001, 0.01, 0.001]), "ventral")
    assert ok["agrees"] is True and ok["rq"] == "RQ2" and "3 of 3" in ok["recovered"]
    assert "glove_all" in ok["recovered"], "a skipped control is named, not dropped"
    bad = findings.rq2_controls_row(_table([0.1, 0.05, 0.2], [0.001, 0.2, 0.001]), "ventral")
    assert bad["agrees"] is False and "mpnet_nouns" in bad["recovered"]
    neg = findings.rq2_controls_row(_table([-0.1, 0.05, 0.2], [0.001, 0.01, 0.001]), "ventral")
    assert neg["agrees"] is False
    one = findings.rq2_controls_row(_table([0.1, 0.05, 0.2], [np.nan] * 3, n=1), "ventral")
    assert one["agrees"] is None and one["recovered"] == findings.NEEDS_SUBJECTS
    assert findings.rq2_controls_row(None, "ventral") is None
    assert findings.rq2_controls_row(_table([0.1] * 3, [0.01] * 3), "lateral") is None


def test_rq2_row_on_the_sandbox_judges_content_free_word_classes_where_captions_are_planted():
    card = {"roi_spaces": {"ventral": {"category": 1.0}, "parietal": {"layout": 1.0}}}
    # on the sandbox only the word classes naming no object or action count: nouns may win
    t = _table([-0.1, -0.05, 0.3], [0.001, 0.01, 0.001])
    row = findings.rq2_controls_row(t, "ventral", card=card)
    assert row["agrees"] is True and "1 of 1" in row["recovered"] and "category 100%" in row["expected"]
    t = _table([0.1, 0.05, 0.01], [0.001, 0.01, 0.4])
    assert findings.rq2_controls_row(t, "ventral", card=card)["agrees"] is False
    assert findings.rq2_controls_row(_table([0.1] * 3, [0.01] * 3, roi="parietal"), "parietal", card=card) is None


def test_rsa_and_encoding_rows_carry_the_rq2_rows():
    tab = pd.concat([_table([0.1, 0.05, 0.2], [0.001, 0.01, 0.001], roi=r) for r in ("ventral", "lateral")])
    tab.attrs["main"] = "mpnet"
    rows = [findings.rq2_controls_row(tab, roi, method="Encoding") for roi in ("ventral", "lateral")]
    assert [r["analysis"].split(":")[0] for r in rows] == ["Encoding, ventral", "Encoding, lateral"]
    assert all(r["agrees"] for r in rows)
    assert all(r["paper"].startswith("not run by the paper") for r in rows)
    assert findings.rq2_controls_row(tab, "ventral")["paper"].startswith("full caption above")


# --------------------------------------------------------------------------- figure, notebooks, batch
def test_figure_shows_every_space_and_returns_the_axes():
    import matplotlib.pyplot as plt

    tab = pd.concat([_table([0.1, -0.05, 0.2], [0.001, 0.5, 0.001], roi=r) for r in ("ventral", "lateral")])
    fig, ax = plt.subplots()
    out = viz.plot_rq2_comparison(tab, ax=ax, main="mpnet")
    assert out is ax
    texts = [t.get_text() for t in ax.texts]
    assert "+0.100*" in texts and "-0.050" in texts
    assert sum("no vector file given" in t for t in texts) == 2
    assert [t.get_text() for t in ax.get_yticklabels()] == ["multihot", "mpnet_nouns", "mpnet_prepositions",
                                                            "glove_all"]
    plt.close(fig)


def _parameters(stem):
    return batch.notebook_parameters(REPO_ROOT / "notebooks" / f"{stem}.ipynb")


def test_profiles_and_notebook_defaults():
    assert batch.PROFILES["paper"]["02_rsa"]["rq2_spaces"] == list(rq2.RQ2_SPACES)
    assert batch.PROFILES["paper"]["03_encoding"]["rq2_spaces"] == list(rq2.RQ2_SPACES)
    assert batch.PROFILES["paper"]["03_encoding"]["rq2_roi"] == "streams"
    nb02 = json.loads((REPO_ROOT / "notebooks" / "02_rsa.ipynb").read_text())
    nb03 = json.loads((REPO_ROOT / "notebooks" / "03_encoding.ipynb").read_text())
    for nb, want in ((nb02, rq2.SANDBOX_RSA_SPACES), (nb03, rq2.SANDBOX_ENCODING_SPACES)):
        (params,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
        ns = {}
        exec("".join(params["source"]), ns)  # noqa: S102 - the notebook's own literal defaults
        assert ns["rq2_spaces"] == list(want)
        assert ns["fasttext_path"] is None and ns["glove_path"] is None


def test_batch_refuses_uninstalled_sbert_models_and_missing_vector_files(tiny_root, tmp_path):
    with pytest.raises(batch.BatchParameterError, match=r"rq2_spaces=.*'sbert:no-such/encoder-xyz'.*not installed"):
        batch.validate_parameters("02_rsa", {"rq2_spaces": ["sbert:no-such/encoder-xyz"]}, data_home=tiny_root)
    with pytest.raises(batch.BatchParameterError, match="rq2_spaces=.*unknown feature space"):
        batch.validate_parameters("03_encoding", {"rq2_spaces": ["mpnet_typo"]}, data_home=tiny_root)
    with pytest.raises(batch.BatchParameterError, match="glove_path=.*not a file"):
        batch.validate_parameters("03_encoding", {"glove_path": str(tmp_path / "none.txt")}, data_home=tiny_root)
    batch.validate_parameters("02_rsa", {"rq2_spaces": ["sbert:all-MiniLM-L6-v2", "glove_all"]},
                              data_home=tiny_root)


def test_chapter_rows_end_with_the_rq2_rows():
    group = pd.DataFrame({"roi": ["ventral"], "model": ["mpnet"], "mean": [0.2], "significant": [True], "n": [8]})
    ours = pd.Series({"ventral": 0.5})
    tab = _table([0.1, 0.05, 0.2], [0.001, 0.01, 0.001])
    base = findings.rsa_rows(group, ours, None, None, ["multihot"], main="mpnet", n_subjects=8)
    rows = findings.rsa_rows(group, ours, None, None, ["multihot"], main="mpnet", n_subjects=8, rq2=tab)
    assert rows[:len(base)] == base and len(rows) == len(base) + 1
    assert rows[-1]["analysis"].startswith("ROI RSA, ventral: mpnet − each RQ2 control")
