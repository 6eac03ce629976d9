"""Tests of the image-to-LLM chapter orchestration (brainllm_utils.vision_analysis)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from brainllm_utils import vision
from brainllm_utils import vision_analysis as va
from brainllm_utils._utils.device import torch_threads


def _fake_pool(rng, n=40, k=6):
    multihot = (rng.random((n, k)) < 0.3).astype(np.float32)
    return vision.TrainingPool(np.zeros((n, 8, 8, 3), np.uint8), np.arange(n, dtype=np.int64),
                               np.array(["train2017"] * n), [["a cat"]] * n, multihot, [str(i) for i in range(k)])


def test_pool_split_nested_disjoint_and_as_train_or_load():
    tr, val = va.pool_split(100, 30, 10)
    tr2, val2 = va.pool_split(100, 60, 10)
    assert tr.size == 30 and val.size == 10 and np.array_equal(val, val2)
    assert set(tr) <= set(tr2) and not set(tr2) & set(val)
    assert np.array_equal(tr, np.sort(tr))
    full, _ = va.pool_split(100, None, 10)
    assert full.size == 90
    with pytest.raises(ValueError):
        va.pool_split(100, 95, 10)


def test_validation_floors(rng):
    pool = _fake_pool(rng)
    tr, val = va.pool_split(len(pool), 20, 8)
    f = va.validation_floors(pool, "multihot", 20, 8)
    p = pool.multihot[tr].mean(0)
    Yv = pool.multihot[val]
    bce = -np.mean(Yv * np.log(np.clip(p, 1e-7, 1)) + (1 - Yv) * np.log(np.clip(1 - p, 1e-7, 1)))
    assert f["loss"] == pytest.approx(bce, rel=1e-5)
    # mpnet floor from given targets: 1 - mean cosine of the mean training target
    T = rng.normal(size=(len(pool), 5)).astype(np.float32) + 2.0
    g = va.validation_floors(pool, "mpnet", 20, 8, targets=T)
    m = T[tr].mean(0)
    cos = np.mean(T[val] @ m / np.linalg.norm(T[val], axis=1) / np.linalg.norm(m))
    assert g["cosine"] == pytest.approx(cos, rel=1e-5) and g["loss"] == pytest.approx(1 - cos, rel=1e-5)
    assert np.isnan(va.validation_floors(pool, "multihot", 20, 0)["loss"])


def test_chapter_configs_overrides():
    cfg, tc = va.chapter_configs("tiny", epochs=3, image_size=24)
    base_cfg, base_tc = vision.PRESETS["tiny"]
    assert cfg.image_size == 24 and tc.epochs == 3 and cfg.width == base_cfg.width
    assert va.chapter_configs("tiny") == (base_cfg, base_tc)


def test_sandbox_preset_is_the_learning_recipe():
    cfg, tc = vision.PRESETS["sandbox"]
    assert tc.augment and tc.epochs >= 6 and cfg.image_size <= 48  # the recipe that beats the floor on 2 CPUs


def test_average_over_seeds():
    rows = []
    for s, subj in enumerate(["subj01", "subj02"]):
        for m, r in (("a_seed0", 0.1), ("a_seed1", 0.3), ("other", 0.5)):
            rows.append(dict(subject=subj, roi="v", model=m, r=r + s, r_normalised=2 * (r + s), ceiling=0.5,
                             n_sets=2, set_size=10, r_sd_sets=0.0))
    out = va.average_over_seeds(pd.DataFrame(rows), {"a": ["a_seed0", "a_seed1"]})
    assert set(out["model"]) == {"a", "other"}
    a = out[out["model"] == "a"].set_index("subject")
    assert a.loc["subj01", "r"] == pytest.approx(0.2) and a.loc["subj02", "r_normalised"] == pytest.approx(2.4)
    assert (a["n_seeds"] == 2).all() and (a["ceiling"] == 0.5).all()


def test_size_alignment_table():
    df = pd.DataFrame(dict(subject=["s1", "s2", "s1", "s2"], roi="v", model=["n10", "n10", "n20", "n20"],
                           r_normalised=[0.1, 0.3, 0.5, 0.9]))
    t = va.size_alignment_table(df, {"n20": 20, "n10": 10})
    assert list(t["n_train"]) == [10, 20]
    assert t["mean"].tolist() == pytest.approx([0.2, 0.7])
    assert t["sem"].iloc[1] == pytest.approx(np.std([0.5, 0.9], ddof=1) / np.sqrt(2))
    # several seeds: one row per seed and size
    two = pd.concat([df, df.assign(model=df["model"] + "_s1", r_normalised=df["r_normalised"] + 1)])
    t = va.size_alignment_table(two, {"n20": 20, "n10": 10, "n20_s1": 20, "n10_s1": 10},
                                seeds={"n20": 0, "n10": 0, "n20_s1": 1, "n10_s1": 1})
    assert list(t["n_train"]) == [10, 10, 20, 20] and list(t["seed"]) == [0, 1, 0, 1]
    assert t["mean"].tolist() == pytest.approx([0.2, 1.2, 0.7, 1.7])
    with pytest.raises(ValueError, match="no seed for the models"):
        va.size_alignment_table(two, {"n20": 20, "n10_s1": 10}, seeds={"n20": 0})


def test_paper_tables():
    p = va.paper_transfer_numbers()
    assert p.loc[("blt_mpnet", "multihot"), "low"] == pytest.approx(0.638)
    df = pd.DataFrame(dict(subject=["s1", "s2"] * 2, roi="ventral", model=["x", "x", "y", "y"],
                           r_normalised=[0.5, 0.7, 0.2, 0.4]))
    df["model"] = df["model"].map({"x": "blt_mpnet", "y": "blt_multihot"})
    t = va.paper_comparison_table(df, ["blt_mpnet", "blt_multihot"], rois=["ventral", "early"])
    assert t.loc[("blt_mpnet", "ventral"), "paper"] == pytest.approx(0.429)
    assert t.loc[("blt_mpnet", "ventral"), "ours"] == pytest.approx(0.6)
    assert np.isnan(t.loc[("blt_mpnet", "early"), "paper"]) and np.isnan(t.loc[("blt_mpnet", "early"), "ours"])
    # the paper's ecoset network is not our multi-hot BLT: no number borrowed
    multihot = t.loc[("blt_multihot", "ventral")]
    assert multihot["ours"] == pytest.approx(0.3) and np.isnan(multihot["paper"]) and "ecoset" in multihot["note"]
    same = va.paper_comparison_table(df, {"LLM-trained RCNN (seed avg)": "blt_mpnet"}, rois=["ventral"])
    assert same.loc[("blt_mpnet", "ventral"), "paper"] == pytest.approx(0.429)
    with pytest.raises(ValueError, match="ecoset RCNN.*not 'blt_multihot'.*ecoset"):
        va.paper_comparison_table(df, {"ecoset RCNN (category)": "blt_multihot"}, rois=["ventral"])
    with pytest.raises(ValueError, match="value="):
        va.paper_comparison_table(df, ["blt_mpnet"], value="r")


def test_transfer_summary_groups_seeds_and_beats_floor(rng, cache_dir):
    n, d = 240, 8
    Z = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, 5)).astype(np.float32)
    target = Z @ W + 3.0
    feats = {"good_seed0": Z + 0.1 * rng.normal(size=Z.shape).astype(np.float32),
             "good_seed1": Z + 0.1 * rng.normal(size=Z.shape).astype(np.float32),
             "noise": rng.normal(size=(n, d)).astype(np.float32)}
    per, summ = va.transfer_summary(feats, {"emb": target}, n_test=60, epochs=30)
    per2, summ2 = va.transfer_summary(feats, {"emb": target}, n_test=60, epochs=30)  # from the cache
    pd.testing.assert_frame_equal(per, per2)
    per3, _ = va.transfer_summary(feats, {"emb": target}, n_test=60, epochs=30, cache=False)
    pd.testing.assert_frame_equal(per, per3)
    assert len(per) == 3 and set(summ.index.get_level_values("network")) == {"blt_good", "noise"}
    assert summ.loc[("blt_good", "emb"), "n_seeds"] == 2
    assert summ.loc[("blt_good", "emb"), "above_floor"] > 0.01
    assert summ.loc[("blt_good", "emb"), "score"] > summ.loc[("noise", "emb"), "score"]


def test_networks_train_cache_and_feed_rsa(tiny_root, tmp_path, monkeypatch):
    from brainllm_utils import rsa_analysis as ra
    from brainllm_utils.nsd import NSD

    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("BRAINLLM_RESULTS", str(tmp_path / "results"))
    pool = vision.load_training_pool(tiny_root)
    nets = va.train_objective_networks(tiny_root, ["multihot"], [0, 1], "tiny", n_train=None, n_val=8, pool=pool)
    assert list(nets) == ["multihot_seed0", "multihot_seed1"]
    assert nets["multihot_seed0"].weights_hash != nets["multihot_seed1"].weights_hash
    again = va.train_objective_networks(tiny_root, ["multihot"], [0], "tiny", n_train=None, n_val=8, pool=pool)
    assert again["multihot_seed0"].weights_hash == nets["multihot_seed0"].weights_hash
    tab = va.training_table(nets, pool=pool)
    assert (tab["n_train"] == len(pool) - 8).all() and (tab["seconds"] > 0).all()
    assert np.isfinite(tab[["val_loss", "floor_loss"]].to_numpy()).all()
    assert set(va.split_histories(nets)) == {"multihot"}
    sweep = va.train_size_sweep(tiny_root, [10, 20, 10_000], "multihot", 0, "tiny", n_val=8, pool=pool)
    assert list(sweep) == ["multihot_n10", "multihot_n20"] and sweep["multihot_n10"].meta["n_train"] == 10
    seeded = va.train_size_sweep(tiny_root, [10, 20], "multihot", preset="tiny", seeds=[0, 1], n_val=8, pool=pool)
    assert list(seeded) == ["multihot_seed0_n10", "multihot_seed0_n20", "multihot_seed1_n10", "multihot_seed1_n20"]
    assert [n.meta["seed"] for n in seeded.values()] == [0, 0, 1, 1]
    assert seeded["multihot_seed0_n10"].weights_hash == sweep["multihot_n10"].weights_hash  # the same run
    assert seeded["multihot_seed1_n10"].weights_hash != sweep["multihot_n10"].weights_hash
    with pytest.raises(ValueError, match="distinct seeds"):
        va.train_size_sweep(tiny_root, [10], "multihot", preset="tiny", seeds=[1, 1], n_val=8, pool=pool)

    nsd = NSD(tiny_root)
    design, needed = ra.rsa_design(nsd, set_size=8, n_sets=1)
    feats = va.network_features(nets, nsd, needed)
    cfg = vision.PRESETS["tiny"][0]
    assert feats["multihot_seed0"].shape == (needed.size, cfg.resolved()[0][-1])
    np.testing.assert_array_equal(feats["multihot_seed0"], va.network_features(nets, nsd, needed)["multihot_seed0"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("BRAINLLM_MODELS", str(tmp_path / "models"))
    comp, status = va.comparison_features(nsd, needed, ["untrained_blt", "resnet50"], blt_config=cfg)
    assert list(comp) == ["untrained_blt"] and comp["untrained_blt"].shape == (needed.size, cfg.resolved()[0][-1])
    assert not status.loc["resnet50", "available"] and status.loc["resnet50", "reason"]  # no weights or library

    df = va.network_rsa_table(nsd, feats, seed_groups={"blt_multihot": list(feats)}, other_features=comp,
                              rois=["early", "ventral"], set_size=8, n_sets=1, ids=needed)
    assert set(df["model"]) == {"blt_multihot", "untrained_blt"}
    assert len(df) == 2 * 2 * len(nsd.subjects) and np.isfinite(df["r"]).all()

    sl = va.searchlight_contrast(nsd, {"multihot_seed0": feats["multihot_seed0"]},
                                 {"untrained_blt": comp["untrained_blt"]}, needed, radius_mm=8.0, set_size=8)
    s = nsd.subjects[0]
    np.testing.assert_allclose(sl["diff"][s], sl["a"][s] - sl["b"][s])
    assert sl["test"]["mean"].shape == sl["a"][s].shape and sl["test"]["n_subjects"] == len(nsd.subjects)


def test_cpu_threads_context_restores():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1 or torch.cuda.is_available()
    assert torch.get_num_threads() == before
    with torch_threads(None):
        assert torch.get_num_threads() == before


def test_paper_searchlight_contrasts_are_paired_tests_of_seed_means(tiny_root, cache_dir, tmp_path):
    """Fig. 4c on the paper's searchlight: seed-mean maps per group, per-subject differences."""
    from brainllm_utils import synth
    from brainllm_utils.chapters import ch02_rsa, ch05_image_to_llm, rsa_design
    from brainllm_utils.nsd import NSD

    nsd = NSD(tiny_root)
    results = tmp_path / "results"
    _, needed = rsa_design(nsd, set_size=10, n_sets=1, results_dir=results)
    F = {k: synth.load_truth_array(tiny_root, f"features_{k}")[needed] for k in ("category", "layout", "lowlevel")}
    noise = np.random.default_rng(0).normal(size=F["category"].shape)
    llm = {"llm0": F["category"], "llm1": F["category"] + noise}
    kw = dict(radius=2.0, set_size=10, n_sets=1, device="cpu")
    with pytest.MonkeyPatch.context() as mp:  # the chapter function uses the default results folder
        mp.setenv("BRAINLLM_RESULTS", str(results))
        out = ch05_image_to_llm.paper_searchlight_contrasts(nsd, llm, {"cat0": F["layout"]}, F["lowlevel"],
                                                            needed, **kw)
        ref = ch02_rsa.paper_searchlight_maps(nsd, None, {k: (needed, X) for k, X in llm.items()},
                                              **kw)["fsaverage"]
    s = nsd.subjects[0]
    np.testing.assert_allclose(out["maps"]["llm"][s], (ref["llm0"][s] + ref["llm1"][s]) / 2, atol=1e-12)
    assert set(out["tests"]) == set(ch05_image_to_llm.PAPER_CONTRASTS)
    want = ch02_rsa.searchlight_difference_test(out["maps"]["llm"], out["maps"]["category"])
    got = out["tests"]["LLM-trained − category-trained"]
    np.testing.assert_array_equal(got["t"], want["t"])
    np.testing.assert_allclose(got["diff"][s], out["maps"]["llm"][s] - out["maps"]["category"][s])
    with pytest.raises(ValueError, match="at least one network"):
        ch05_image_to_llm.paper_searchlight_contrasts(nsd, {}, {"cat0": F["layout"]}, F["lowlevel"], needed, **kw)
