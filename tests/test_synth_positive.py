"""Tests of the positive-control sandbox (``tiny_positive``) and the generative-model options.

The positive world is the ``tiny`` world (seed 0) whose ventral and lateral ROIs are half
driven by MiniLM's caption embeddings; everything else must be the same. The betas are read
from the raw files (as in ``test_synth``); MiniLM runs through the package's encoder, as in
the generator (CPU, float32: the generator's cache entries are reused).
"""

from __future__ import annotations

import warnings

import nibabel as nib
import numpy as np
import pytest
from scipy.io import loadmat
from scipy.stats import spearmanr

from brainllm_utils import synth
from brainllm_utils.features.weights import MINILM, MINILM_SHA256, ModelNotFoundError

from synth_files import BETAS, TUNED, captions_by_nsd_id, digests, fsaverage_streams, image_means, mgh

DRIVEN = ("ventral", "lateral")


@pytest.fixture(scope="module")
def null(tiny_root):
    """The tiny null world (seed 0)."""
    return tiny_root


@pytest.fixture(scope="module")
def positive(tmp_path_factory):
    """The tiny positive world (seed 0)."""
    root = tmp_path_factory.mktemp("positive") / "nsd"
    return synth.make_synthetic_nsd(root, "tiny_positive", seed=0)


# --------------------------------------------------------------------------- the card
def test_the_card_records_the_mixture_and_the_encoder(positive):
    card = synth.load_truth(positive)
    assert card["preset"] == "tiny_positive" and card["format"] == synth.SANDBOX_FORMAT
    assert card["shared_tuning"] == synth.SHARED_TUNING
    for roi, mix in card["roi_spaces"].items():
        assert mix == (synth.POSITIVE_ROI_SPACES[roi] if roi in DRIVEN else synth.ROI_SPACES[roi]), roi
        assert abs(sum(mix.values()) - 1) < 1e-9
    assert synth.POSITIVE_ROI_SPACES["ventral"] == {"sentence": 0.5, "category": 0.5}
    enc = card["sentence_space"]
    assert enc["model"] == MINILM == synth.POSITIVE_SENTENCE_MODEL
    assert enc["weights_sha256"] == MINILM_SHA256  # the weights actually used, hashed at generation
    assert enc["dim"] == 384 and enc["normalize"] and enc["layer"] == "last hidden layer (6 of 6)"
    assert enc["pooling"].startswith("mean") and enc["aggregation"].startswith("mean of the image's caption")
    assert enc["rois"] == {"ventral": 0.5, "lateral": 0.5}
    X = synth.load_truth_array(positive, "features_sentence")
    assert X.shape == (card["sizes"]["n_images"], 384) == (card["sizes"]["n_images"], card["feature_spaces"]["sentence"])
    assert np.allclose(X.mean(0), 0, atol=1e-5) and np.isclose(X.var(0).mean(), 1, atol=1e-4)
    table = synth.truth_table(card)
    assert table.loc["ventral", "driven_by"] == "sentence 50%, category 50%"
    assert "all-MiniLM-L6-v2" in table.attrs["caption"] and "50% of each vertex's tuning" in table.attrs["caption"]


def test_the_planted_space_is_minilm_of_the_written_captions(positive):
    """features_sentence is MiniLM's mean caption embedding of the captions in the COCO JSON,
    centred and scaled by one number (the encoder's geometry kept)."""
    from brainllm_utils.features import embed_captions

    caps = captions_by_nsd_id(positive)
    E = embed_captions([caps[i] for i in range(len(caps))], model="minilm", device="cpu",
                       precision="fp32").astype(np.float64)
    E -= E.mean(0)
    X = synth.load_truth_array(positive, "features_sentence").astype(np.float64)
    scale = np.sqrt(E.var(0).mean())
    assert np.allclose(X * scale, E, atol=1e-5)


# --------------------------------------------------------------------------- same world but the drive
def test_same_inputs_as_the_null_world(null, positive):
    """Same seed: the design, images, captions, COCO files, responses, ROIs, transforms and the
    planted truth other than the sentence space are byte-identical; only betas and ncsnr change."""
    skip = {"nsddata/experiments/nsd/nsd_expdesign.mat", "sandbox_truth/card.json"}
    a, b = digests(null, skip), digests(positive, skip)
    assert set(b) - set(a) == {"sandbox_truth/features_sentence.npy"} and not set(a) - set(b)
    changed = {k for k in a if a[k] != b[k]}
    assert changed and all(TUNED.fullmatch(k) for k in changed), sorted(changed)
    ma, mb = (loadmat(r / "nsddata/experiments/nsd/nsd_expdesign.mat") for r in (null, positive))
    for key in ("masterordering", "subjectim", "sharedix"):
        assert np.array_equal(ma[key], mb[key])
    ca, cb = synth.load_truth(null), synth.load_truth(positive)
    differ = {k for k in ca.keys() | cb.keys() if ca.get(k) != cb.get(k)}
    assert differ == {"preset", "roi_spaces", "feature_spaces", "sentence_space", "generation_seconds"}


def test_betas_differ_only_in_the_driven_rois(null, positive):
    labels, names = fsaverage_streams(null)
    driven = np.isin(labels, [names[r] for r in DRIVEN])
    card = synth.load_truth(null)
    for s in card["subjects_with_data"]:
        n = card["n_sessions"][f"subj{s:02d}"]
        fs = [r / f"nsddata_betas/ppdata/subj{s:02d}/fsaverage/{BETAS}" for r in (null, positive)]
        for k in range(1, n + 1):
            A, B = (np.concatenate([mgh(f / f"{h}.betas_session{k:02d}.mgh").reshape(-1, card["sizes"]
                    ["trials_per_session"]) for h in ("lh", "rh")]) for f in fs)
            assert np.array_equal(A[~driven], B[~driven], equal_nan=True), (s, k)
            assert (A[driven] != B[driven]).any(axis=1).mean() > 0.99, (s, k)
        vol = [r / f"nsddata_betas/ppdata/subj{s:02d}/func1pt8mm/{BETAS}" for r in (null, positive)]
        roi = np.asarray(nib.load(null / f"nsddata/ppdata/subj{s:02d}/func1pt8mm/roi/streams.nii.gz").dataobj).ravel()
        vdriven = np.isin(roi, [names[r] for r in DRIVEN])
        assert vdriven.sum() > 0  # a few voxels on the tiny grids
        zeroed = card["zeroed_voxels"][f"subj{s:02d}"]  # 0 in one session in both worlds
        for k in range(1, n + 1):
            A, B = (np.asarray(nib.load(v / f"betas_session{k:02d}.nii.gz").dataobj).reshape(roi.size, -1) for v in vol)
            assert np.array_equal(A[~vdriven], B[~vdriven]), (s, k)
            here = vdriven.copy()
            if k == zeroed["session"]:
                here[zeroed["flat_indices"]] = False
            assert (A[here] != B[here]).any(axis=1).all(), (s, k)


def test_streamed_positive_world(tmp_path):
    """stream=True plants the sentence space too: the driven ROIs' betas change, the others do
    not (up to float32 summation order: the streamed weights hold a zero block for them)."""
    roots = [synth.make_synthetic_nsd(tmp_path / p, p, seed=0, overrides={"stream": True, "data_sessions": {1: 1}})
             for p in ("tiny", "tiny_positive")]
    assert synth.load_truth(roots[1])["sentence_space"]["rois"] == {"ventral": 0.5, "lateral": 0.5}
    labels, names = fsaverage_streams(roots[0])
    driven = np.isin(labels, [names[r] for r in DRIVEN])
    A, B = (np.concatenate([mgh(r / f"nsddata_betas/ppdata/subj01/fsaverage/{BETAS}/{h}.betas_session01.mgh")
                            .reshape(labels.size // 2, -1) for h in ("lh", "rh")]) for r in roots)
    assert np.allclose(A[~driven], B[~driven], rtol=1e-5, atol=1e-5, equal_nan=True)
    assert np.median(np.abs(A[driven] - B[driven]).mean(1)) > 0.1


# --------------------------------------------------------------------------- the planted drive is there
def _rdm(X):
    return 1 - np.corrcoef(X)[np.triu_indices(len(X), 1)]


def _minilm_rdm_correlations(root):
    """Per subject, Spearman r of the MiniLM-of-captions RDM with each streams ROI's betas RDM
    (the subject's images seen three times): {roi: [r per subject]}."""
    from brainllm_utils.features import embed_captions

    caps = captions_by_nsd_id(root)
    labels, names = fsaverage_streams(root)
    out = {}
    for s in synth.load_truth(root)["subjects_with_data"]:
        ids, Y = image_means(root, s)
        model = _rdm(embed_captions([caps[int(i)] for i in ids], model="minilm", device="cpu",
                                    precision="fp32"))
        for roi, k in names.items():
            if k > 0:
                cols = (labels == k) & np.isfinite(Y).all(0)
                out.setdefault(roi, []).append(spearmanr(model, _rdm(Y[:, cols]))[0])
    return out


def test_minilm_aligns_with_the_driven_rois_only_in_the_positive_world(null, positive):
    """MiniLM's caption RDM matches the ventral and lateral betas' RDMs clearly better in the
    positive world than in the null world (captions describe the planted categories there
    too, so the null world's r is not 0); the other ROIs are untouched."""
    a, b = _minilm_rdm_correlations(null), _minilm_rdm_correlations(positive)
    for roi in DRIVEN:
        gain = np.array(b[roi]) - np.array(a[roi])
        assert gain.mean() > 0.15 and (gain > 0.05).all(), (roi, a[roi], b[roi])
    for roi in set(a) - set(DRIVEN):
        assert np.allclose(a[roi], b[roi]), roi


# --------------------------------------------------------------------------- argument validation
BAD = [
    ({"shared_tuning": -0.1}, r"shared_tuning must be a finite number in \[0, 1\]"),
    ({"shared_tuning": 1.5}, "shared_tuning"),
    ({"shared_tuning": float("nan")}, "shared_tuning"),
    ({"shared_tuning": float("inf")}, "shared_tuning"),
    ({"shared_tuning": "0.5"}, "shared_tuning"),
    ({"shared_tuning": True}, "shared_tuning"),
    ({"shared_tuning": None}, "shared_tuning"),
    ({"roi_spaces": [("ventral", {"category": 1.0})]}, "roi_spaces must be a dict"),
    ({"roi_spaces": {"V1": {"category": 1.0}}}, "roi_spaces: unknown ROI 'V1'"),
    ({"roi_spaces": {"ventral": {}}}, r"roi_spaces\['ventral'\] must be a non-empty dict"),
    ({"roi_spaces": {"ventral": {"gpt": 1.0}}}, r"roi_spaces\['ventral'\]: unknown space 'gpt'"),
    ({"roi_spaces": {"ventral": {"category": 0.5, "layout": 0.4}}}, r"roi_spaces\['ventral'\]: .*sum to 1.*got 0.9"),
    ({"roi_spaces": {"lateral": {"category": 0.7, "interaction": 0.7}}}, r"roi_spaces\['lateral'\]: .*sum to 1"),
    ({"roi_spaces": {"ventral": {"category": float("nan")}}}, r"roi_spaces\['ventral'\]\['category'\]"),
    ({"roi_spaces": {"ventral": {"category": 1.0, "layout": 0.0}}}, r"roi_spaces\['ventral'\]\['layout'\] .*> 0"),
    ({"roi_spaces": {"ventral": {"category": 1.5, "layout": -0.5}}}, r"roi_spaces\['ventral'\]\['layout'\]"),
    ({"roi_spaces": {"ventral": {"category": "1"}}}, r"roi_spaces\['ventral'\]\['category'\]"),
    ({"roi_spaces": {"ventral": {"sentence": 1.0}}}, "sentence_model is None"),
    ({"sentence_model": "minilm"}, "no ROI plants 'sentence'"),
    ({"roi_spaces": {"ventral": {"sentence": 1.0}}, "sentence_model": 3}, "sentence_model must be a model name"),
]


@pytest.mark.parametrize("overrides, match", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_model_options_are_refused(tmp_path, overrides, match):
    with pytest.raises(ValueError, match=match):
        synth.make_synthetic_nsd(tmp_path / "x", "tiny", overrides=overrides)
    assert not (tmp_path / "x").exists() and not list(tmp_path.iterdir())


def test_positive_overrides_and_missing_encoder(tmp_path):
    # the positive preset's own roi_spaces validate; an override replaces them whole
    with pytest.raises(ValueError, match="sentence_model"):
        synth.make_synthetic_nsd(tmp_path / "x", "tiny_positive", overrides={"roi_spaces": {}})
    # an encoder that is not available offline stops the run before anything is written
    with pytest.raises(ModelNotFoundError):
        synth.make_synthetic_nsd(tmp_path / "x", "tiny_positive",
                                 overrides={"sentence_model": str(tmp_path / "no-such-model")})
    assert not list(tmp_path.iterdir())
    # planting MPNet, the model the book tests, would make the control circular: warned
    with pytest.warns(UserWarning, match="circular"):
        synth._generate._resolve_preset("tiny_positive", {"sentence_model": "mpnet"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        synth._generate._resolve_preset("tiny_positive", {})
    with pytest.raises(ValueError, match="shared_tuning"):
        synth.main([str(tmp_path / "cli"), "--preset", "tiny", "--shared-tuning", "2"])
