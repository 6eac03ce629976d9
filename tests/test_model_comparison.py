"""The model-comparison page: any feature space (× layer) scored by chapter 02's ROI RSA and
chapter 03's encoding, noise-ceiling normalised; its layer-by-ROI figure and batch checks."""

from __future__ import annotations

import json

import matplotlib
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import pdist
from scipy.stats import pearsonr

from brainllm_utils import features, viz
from brainllm_utils._utils.paths import REPO_ROOT
from brainllm_utils.book import batch
from brainllm_utils.chapters import _common, subject_image_ids, subject_sets
from brainllm_utils.chapters import ch02_rsa as ra
from brainllm_utils.chapters import ch03_encoding as ea
from brainllm_utils.chapters import model_comparison as mc
from brainllm_utils.nsd import NSD

matplotlib.use("Agg")

ROIS = ["early", "ventral"]
ALPHAS = np.logspace(-1, 3, 5)
#: small, fast settings on the tiny sandbox (the RSA sets hold 12 images)
FAST = dict(set_size=12, n_sets=1, cv=3, alphas=ALPHAS, device="cpu", progress=False)


@pytest.fixture(scope="module")
def nsd(tiny_root):
    return NSD(tiny_root)


@pytest.fixture(scope="module")
def images(nsd):
    """Every subject's 3×-seen images: what the encoders need."""
    return np.unique(np.concatenate([subject_image_ids(nsd, s) for s in nsd.subjects]))


@pytest.fixture(scope="module")
def comparison(nsd):
    return mc.compare_models(nsd, ["multihot", "sbert:all-MiniLM-L6-v2"], rois=ROIS, **FAST)


# --------------------------------------------------------------------------- the table
def test_table_has_one_row_per_model_roi_subject_and_metric(nsd, comparison):
    table, summary = comparison
    assert list(table.columns) == mc.TABLE_COLUMNS
    assert len(table) == 2 * len(ROIS) * len(nsd.subjects) * len(mc.METRICS)
    assert not table.duplicated(["model", "roi", "subject", "metric"]).any()
    assert set(table["model"]) == {"multihot", "sbert:all-MiniLM-L6-v2"}
    assert set(table["roi"]) == set(ROIS) and set(table["metric"]) == set(mc.METRICS)
    assert table["layer"].isna().all() and (table["base"] == table["model"]).all()
    assert np.isfinite(table["value"]).all() and np.isfinite(table["ceiling"]).all()
    assert list(summary.columns) == mc.SUMMARY_COLUMNS
    assert len(summary) == 2 * len(ROIS) * len(mc.METRICS)
    # rows in the order asked for
    assert list(dict.fromkeys(table["metric"])) == list(mc.METRICS)
    assert list(dict.fromkeys(summary["model"])) == ["multihot", "sbert:all-MiniLM-L6-v2"]
    first = table[(table["metric"] == "rsa") & (table["model"] == "multihot")]
    assert list(first["roi"]) == [r for r in ROIS for _ in nsd.subjects]
    assert list(first["subject"]) == list(nsd.subjects) * len(ROIS)


def test_normalised_is_value_over_the_chapters_ceilings(nsd, comparison):
    table = comparison.table
    rsa = table[table["metric"] == "rsa"]
    ok = rsa["ceiling"] > 0
    np.testing.assert_allclose(rsa.loc[ok, "normalised"], rsa.loc[ok, "value"] / rsa.loc[ok, "ceiling"],
                               rtol=1e-12)
    assert rsa.loc[~ok, "normalised"].isna().all()
    # the RSA ceiling is chapter 02's leave-one-subject-out ceiling of the subject and ROI
    loso = ra.loso_ceilings(nsd, nsd.subjects, ROIS).set_index(["subject", "roi"])["ceiling"]
    np.testing.assert_allclose(rsa["ceiling"], [loso[(s, r)] for s, r in zip(rsa["subject"], rsa["roi"])])
    enc = table[table["metric"] == "encoding"]
    ok = enc["ceiling"] > mc.ENCODING_MIN_CEILING
    assert ok.any()
    np.testing.assert_allclose(enc.loc[ok, "normalised"], enc.loc[ok, "value"] / enc.loc[ok, "ceiling"],
                               rtol=1e-12)
    assert enc.loc[~ok, "normalised"].isna().all()
    # the encoding ceiling: the mean repeat-based ceiling sqrt(NC/100) over the ROI's vertices
    labels = nsd.roi_volume(nsd.subjects[0], "streams", "fsaverage").ravel()
    code = {v: k for k, v in nsd.roi_labels("streams").items()}
    for k, s in enumerate(nsd.subjects):
        nc = np.sqrt(np.nan_to_num(nsd.noise_ceiling(s, "fsaverage", 3)) / 100.0)
        for roi in ROIS:
            row = enc[(enc["subject"] == s) & (enc["roi"] == roi) & (enc["model"] == "multihot")]
            sel = labels == code[roi]
            valid = np.isfinite(nsd.betas(s, progress=False)[0][:, sel]).all(0)
            assert row["ceiling"].item() == pytest.approx(nc[sel][valid].mean(), rel=1e-5)


def test_rsa_value_matches_scipy_on_the_sample_set(nsd, comparison):
    """One set per subject: the score is Pearson r of scipy's correlation-distance RDMs."""
    table = comparison.table
    checked = 0
    for s in nsd.subjects:
        ids, sets = subject_sets(nsd, s, set_size=12, seed=0, n_sets=1)
        set_ids = np.sort(ids[sets[0]])
        X = features.build("multihot", nsd, set_ids)
        brain = ra.roi_patterns(nsd, s, ["ventral"], ids=set_ids)[0]["ventral"]
        if (np.abs(X).sum(1) == 0).any():
            continue  # an empty multi-hot row takes the chapters' empty-row rule, not scipy's
        want = pearsonr(pdist(brain, "correlation"), pdist(X, "correlation"))[0]
        got = table.query("metric == 'rsa' and model == 'multihot' and roi == 'ventral' and subject == @s")
        assert got["value"].item() == pytest.approx(want, abs=1e-6)
        checked += 1
    assert checked >= 1


def test_encoding_value_is_the_chapter_encoders_roi_mean(nsd, comparison):
    """The encoders on the ROIs' vertices score each vertex as chapter 03's whole-surface fit."""
    enc = ea.fit_encoders(nsd, nsd.subjects, feature="multihot", roi=None, alphas=ALPHAS, cv=3, device="cpu")
    ref = ea.roi_table(nsd, enc.r, nsd.subjects, name="r")
    got = comparison.table.query("metric == 'encoding' and model == 'multihot'")
    merged = got.merge(ref, on=["subject", "roi"])
    assert len(merged) == len(got) == len(ROIS) * len(nsd.subjects)
    np.testing.assert_allclose(merged["value"], merged["r"], atol=1e-5)


def test_summary_is_mean_and_sem_over_subjects(comparison):
    table, summary = comparison
    for (metric, model, roi), g in table.groupby(["metric", "model", "roi"]):
        row = summary[(summary["metric"] == metric) & (summary["model"] == model) & (summary["roi"] == roi)]
        v = g["value"].to_numpy()
        assert row["n_subjects"].item() == v.size
        assert row["mean"].item() == pytest.approx(v.mean())
        assert row["sem"].item() == pytest.approx(v.std(ddof=1) / np.sqrt(v.size))
        nv = g["normalised"].dropna().to_numpy()
        assert row["normalised_mean"].item() == pytest.approx(nv.mean() if nv.size else np.nan, nan_ok=True)


# --------------------------------------------------------------------------- it can fail
def test_the_planted_space_beats_a_shuffled_copy_of_itself(nsd, images):
    """The ventral ROI is driven by the planted category space only: that space must score
    clearly higher, by both metrics, than the same features shuffled across images (same
    marginal statistics, no image correspondence; seeded)."""
    truth = _common.build_feature_table(nsd, ["truth:category"], images, progress=False)["truth:category"]
    shuffled = truth[np.random.default_rng(0).permutation(truth.shape[0])]
    res = mc.compare_models(nsd, ["truth:category", "shuffled"], rois=["ventral"],
                            features={"shuffled": (images, shuffled)}, **FAST)
    means = res.table.groupby(["metric", "model"])["value"].mean()
    for metric in mc.METRICS:
        assert means[(metric, "truth:category")] > means[(metric, "shuffled")] + 0.1, means
    assert abs(means[("encoding", "shuffled")]) < 0.1, means


def test_precomputed_arrays_score_as_the_registered_space(nsd, images):
    """A space given as arrays goes through the same analyses as its registry name; the
    chapters' feature memo is left as it was."""
    X = features.build("multihot", nsd, images)
    before = set(_common._FEATURE_MEMO)
    res = mc.compare_models(nsd, ["multihot", "copy"], rois=ROIS, features={"copy": (images, X)}, **FAST)
    assert set(_common._FEATURE_MEMO) - before <= {(str(nsd.root), "multihot", "{}")}
    t = res.table.set_index(["metric", "roi", "subject", "model"])["value"].unstack("model")
    np.testing.assert_allclose(t["copy"], t["multihot"], atol=1e-6)


def test_fracridge_encoder_is_the_papers_single_fraction(nsd):
    res = mc.compare_models(nsd, ["multihot"], rois=ROIS, metrics=["encoding"], encoder="fracridge",
                            **FAST)
    frac = ea.fit_encoders_fracridge(nsd, nsd.subjects, feature="multihot",
                                     roi=nsd.roi_mask(nsd.subjects[0], "streams", ROIS), cv=3,
                                     device="cpu", progress=False)
    ref = ea.roi_table(nsd, frac.r, nsd.subjects, name="r")
    merged = res.table.merge(ref, on=["subject", "roi"])
    assert set(res.table["metric"]) == {"encoding"} and len(merged) == len(res.table)
    np.testing.assert_allclose(merged["value"], merged["r"], atol=1e-6)


def test_one_subject_has_no_rsa_ceiling(nsd):
    res = mc.compare_models(nsd, ["multihot"], subjects=[nsd.subjects[0]], rois=["ventral"],
                            metrics=["rsa"], **FAST)
    assert len(res.table) == 1 and np.isnan(res.table["ceiling"].item())
    assert np.isnan(res.table["normalised"].item()) and np.isfinite(res.table["value"].item())
    assert np.isnan(res.summary["sem"].item()) and "rsa" not in res.ceilings


# --------------------------------------------------------------------------- arguments
@pytest.mark.parametrize("kwargs, match", [
    (dict(models="mpnet"), "models='mpnet': expected a non-empty list"),
    (dict(models=[]), "expected a non-empty list"),
    (dict(models=["multihot", "multihot"]), r"models: \['multihot'\] given more than once"),
    (dict(models=["mpnet_typo"]), "models: unknown feature space 'mpnet_typo'; available"),
    (dict(models=["sbert:no-such/encoder-xyz"]), "not installed on this machine"),
    (dict(metrics=["rsa", "searchlight"]), "metrics=.*expected a non-empty list of distinct"),
    (dict(metrics="rsa"), "metrics='rsa'"),
    (dict(encoder="lasso"), "encoder='lasso': expected one of"),
    (dict(set_size=2), "set_size"),
    (dict(n_sets=0), "n_sets"),
    (dict(cv=1), "cv"),
    (dict(seed=-1), "seed"),
    (dict(alphas=[1.0, -2.0]), "alphas: expected a non-empty 1-D array of finite penalties > 0"),
    (dict(rois=["ventral", "V9"]), r"rois: \['V9'\] — expected distinct labels of atlas 'streams'"),
    (dict(rois="ventral"), "rois='ventral'"),
    (dict(features={"other": (np.arange(3), np.ones((3, 2)))}), "'other' is not one of models"),
    (dict(models=["x"], features={"x": (np.arange(3), np.full((3, 2), np.nan))}), "finite"),
    (dict(models=["x"], features={"x": (np.array([2, 1, 3]), np.ones((3, 2)))}), "sorted and distinct"),
    (dict(models=["x"], features={"x": (np.arange(3), np.ones((4, 2)))}), r"X must have shape \(3,"),
    (dict(models=["x"], features={"x": (np.arange(3), np.ones((3, 2)))}), r"features\['x'\]: .* no row"),
    (dict(feature_options=["device"]), "feature_options: expected a dict"),
    (dict(progress="yes"), "progress='yes': expected a bool"),
])
def test_arguments_are_checked_before_anything_runs(nsd, kwargs, match):
    args = dict(models=["multihot"], rois=ROIS, set_size=12, n_sets=1, cv=3, progress=False) | kwargs
    models = args.pop("models")
    with pytest.raises((ValueError, TypeError), match=match):
        mc.compare_models(nsd, models, **args)


# --------------------------------------------------------------------------- layers
@pytest.mark.parametrize("name, vision, want", [
    ("hf:/m/llm?layer=3&pooling=last", False, ("hf:/m/llm?pooling=last", 3)),
    ("hf:/m/llm?pooling=last&layer=12", False, ("hf:/m/llm?pooling=last", 12)),
    ("hf:/m/llm?prompt=a&layer=-1&pooling=mean", False, ("hf:/m/llm?prompt=a&pooling=mean", -1)),
    ("hf:/m/llm?layer=2&pooling=last&sweep=all", False, ("hf:/m/llm?pooling=last", 2)),
    ("hf:/m/llm?layer=5", False, ("hf:/m/llm", 5)),
    ("alexnet?layer=conv5", False, ("alexnet", "conv5")),
    ("mynet:layer4", True, ("mynet", "layer4")),
    ("mynet:2", True, ("mynet", 2)),
    ("sbert:all-MiniLM-L6-v2", False, ("sbert:all-MiniLM-L6-v2", None)),
    ("mpnet", True, ("mpnet", None)),
])
def test_model_layer_reads_the_layer_a_name_encodes(name, vision, want):
    base, layer = mc.model_layer(name, vision=vision)
    assert base == want[0]
    assert (isinstance(layer, float) and np.isnan(layer)) if want[1] is None else layer == want[1]
    with pytest.raises(TypeError, match="name"):
        mc.model_layer(3)


def test_layers_of_array_models_reach_the_table(nsd, images):
    rng = np.random.default_rng(0)
    feats = {f"net:layer{k}": (images, rng.normal(size=(images.size, 4)).astype(np.float32)) for k in (2, 1)}
    res = mc.compare_models(nsd, list(feats), rois=["ventral"], metrics=["rsa"], features=feats, **FAST)
    got = res.table.drop_duplicates("model").set_index("model")
    assert got.loc["net:layer1", "layer"] == "layer1" and (got["base"] == "net").all()


# --------------------------------------------------------------------------- the figure
def _sweep_table():
    """A tidy table of a three-layer sweep (given out of order) and a layerless model."""
    rows = []
    names = {"hf:m?layer=2": ("hf:m", 2), "hf:m?layer=0": ("hf:m", 0), "hf:m?layer=1": ("hf:m", 1),
             "mpnet": ("mpnet", np.nan)}
    for i, (name, (base, layer)) in enumerate(names.items()):
        for j, roi in enumerate(["early", "ventral", "lateral"]):
            for k, s in enumerate(["subj01", "subj02"]):
                for metric in mc.METRICS:
                    v = 0.1 * i + 0.01 * j + 0.001 * k
                    rows.append(dict(model=name, base=base, layer=layer, roi=roi, subject=s, metric=metric,
                                     value=v, ceiling=0.5, normalised=2 * v))
    return pd.DataFrame(rows, columns=mc.TABLE_COLUMNS)


def test_figure_has_a_row_per_model_and_layer_and_a_column_per_roi():
    import matplotlib.pyplot as plt

    table = _sweep_table()
    ax = viz.plot_model_layers(table, metric="encoding")
    M = np.asarray(ax.images[-1].get_array())
    assert M.shape == (4, 3)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["hf:m?layer=0", "hf:m?layer=1", "hf:m?layer=2",
                                                            "mpnet"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["early", "ventral", "lateral"]
    want = table[table["metric"] == "encoding"].groupby(["model", "roi"])["normalised"].mean()
    assert M[0, 1] == pytest.approx(want[("hf:m?layer=0", "ventral")])
    assert M[3, 2] == pytest.approx(want[("mpnet", "lateral")])
    assert len(ax.lines) == 1  # one line between the sweep's family and the next model
    fig, ax2 = plt.subplots()
    assert viz.plot_model_layers(table, value="value", ax=ax2, rois=["ventral"]) is ax2
    assert np.asarray(ax2.images[-1].get_array()).shape == (4, 1)
    plt.close("all")


def test_figure_checks_its_table():
    table = _sweep_table()
    with pytest.raises(ValueError, match="metric='decoding': no rows"):
        viz.plot_model_layers(table, metric="decoding")
    with pytest.raises(ValueError, match="missing columns"):
        viz.plot_model_layers(table.drop(columns="subject"))
    with pytest.raises(ValueError, match="have no 'rsa' rows"):
        viz.plot_model_layers(table, rois=["parietal"])


# --------------------------------------------------------------------------- the page
def test_notebook_parameters_pass_the_batch_checks(tiny_root):
    nb = json.loads((REPO_ROOT / "notebooks" / "08_model_comparison.ipynb").read_text())
    (params,) = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    ns = {}
    exec("".join(params["source"]), ns)  # noqa: S102 - the notebook's own literal defaults
    assert "mpnet" in ns["models"] and "sbert:all-MiniLM-L6-v2" in ns["models"]
    batch.validate_parameters("08_model_comparison", {}, data_home=tiny_root)
    for stem in ("paper", "smoke"):
        batch.validate_parameters("08_model_comparison", batch.PROFILES[stem]["08_model_comparison"],
                                  data_home=tiny_root)
    with pytest.raises(batch.BatchParameterError, match="models=.*unknown feature space"):
        batch.validate_parameters("08_model_comparison", {"models": ["mpnet_typo"]}, data_home=tiny_root)
    with pytest.raises(batch.BatchParameterError, match="encoder=.*unknown"):
        batch.validate_parameters("08_model_comparison", {"encoder": "lasso"}, data_home=tiny_root)


# --------------------------------------------------------------------------- an hf: layer sweep
def _tiny_gpt2(folder, texts):
    """A random-weight GPT-2 (3 layers, hidden size 32) with a word-level tokenizer of ``texts``'
    words, saved with ``save_pretrained`` (no download)."""
    import re

    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in re.findall(r"\w+|[^\w\s]+", t.lower())})
    vocab = {t: i for i, t in enumerate(["[UNK]", "<eos>"] + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.normalizer = normalizers.Lowercase()
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    torch.manual_seed(0)
    model = GPT2Model(GPT2Config(vocab_size=len(vocab), n_embd=32, n_layer=3, n_head=4, n_positions=64,
                                 bos_token_id=1, eos_token_id=1))
    model.eval().save_pretrained(folder)
    PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", eos_token="<eos>",
                            model_max_length=64).save_pretrained(folder)
    return folder


def test_an_hf_layer_sweep_is_scored_layer_by_layer(nsd, images, tmp_path, tiny_root):
    """A tiny random decoder's layer sweep (``features.layer_sweep`` names) goes through both
    analyses by name: one row per layer, the family and layer read back, and each layer scored
    as its own features (built by the registry, given as arrays) are."""
    folder = _tiny_gpt2(tmp_path / "gpt2", [c for cs in nsd.captions(images) for c in cs])
    sweep = features.layer_sweep(f"hf:{folder}?pooling=last")
    assert len(sweep) == 4  # the embeddings and 3 layers
    res = mc.compare_models(nsd, sweep, rois=["ventral"], **FAST)
    got = res.table.drop_duplicates("model").set_index("model")
    assert list(got["layer"]) == [0, 1, 2, 3]
    assert (got["base"] == f"hf:{folder}?pooling=last").all()
    arrays = {f"copy{k}": (images, features.build(name, nsd, images)) for k, name in enumerate(sweep)}
    ref = mc.compare_models(nsd, list(arrays), rois=["ventral"], features=arrays, **FAST)
    np.testing.assert_allclose(res.table["value"], ref.table["value"], atol=1e-6)
    batch.validate_parameters("08_model_comparison", {"models": sweep}, data_home=tiny_root)
    with pytest.raises(ValueError, match="models: .*layer"):
        mc.compare_models(nsd, [f"hf:{folder}?layer=9"], **FAST)


def test_a_registered_vision_model_joins_through_its_activations(nsd, images):
    """A user's vision model (vision.register_model, a callable) at its layer: activations
    computed by vision.model_features, given as arrays named "<name>:<layer>"."""
    from brainllm_utils import vision

    def colour_stats(batch):  # (n, H, W, 3) uint8 -> per-channel mean and SD: (n, 6)
        x = np.asarray(batch, dtype=np.float32) / 255.0
        return np.concatenate([x.mean((1, 2)), x.std((1, 2))], axis=1)

    vision.register_model("colourstats", colour_stats, version="test-1")
    try:
        feats, status = vision.model_features(["colourstats"], nsd.images(images), image_ids=images,
                                              cache=False)
    finally:
        vision.unregister_model("colourstats")
    assert list(feats) == ["colourstats:output"] and all(s.available for s in status)
    res = mc.compare_models(nsd, list(feats), rois=["early", "ventral"],
                            features={k: (images, X) for k, X in feats.items()}, **FAST)
    row = res.table.iloc[0]
    assert (row["base"], row["layer"]) == ("colourstats", "output")
    assert np.isfinite(res.table["value"]).all() and len(res.table) == 2 * len(nsd.subjects) * 2
