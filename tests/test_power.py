"""Tests of the calibration and power sweep (``chapters.power``) and its figure.

The sweep test generates two tiny null and positive worlds (4 subjects, 20 images each,
one caption per image) and runs the chapters' RQ2 statistics on them: in the positive
world, MPNet must beat the category control more often than in the null world (where the
planted category space wins in ventral cortex).
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from brainllm_utils.chapters import power  # noqa: E402
from brainllm_utils.viz import plot_power_curves  # noqa: E402


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    seen = []
    table = power.power_sweep([0, 1], ["null", "positive"], n_subjects=[4], n_images=[20], n_captions=1,
                              workdir=tmp_path_factory.mktemp("power"),
                              progress=lambda k, n, msg: seen.append((k, n)))
    table.attrs["progress"] = seen
    return table


# --------------------------------------------------------------------------- the sweep
def test_sweep_table(sweep):
    assert tuple(sweep.columns) == power.SWEEP_COLUMNS
    # 2 seeds × 2 worlds × 1 size × 2 ROIs × 2 claims
    assert len(sweep) == 16
    assert sweep.attrs["progress"] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert set(sweep["world"]) == {"null", "positive"} and set(sweep["seed"]) == {0, 1}
    assert set(sweep["claim"]) == set(power.CLAIMS) and set(sweep["roi"]) == set(power.CLAIM_ROIS)
    assert (sweep["n_subjects"] == 4).all() and (sweep["n_images"] == 20).all()
    assert sweep["p"].between(0, 1).all() and np.isfinite(sweep["effect"]).all()
    # the criterion: significant at alpha, and mpnet ahead
    assert (sweep["detected"] == ((sweep["p"] <= 0.05) & (sweep["effect"] > 0))).all()
    assert (sweep["significant"] == (sweep["p"] <= 0.05)).all()
    assert np.allclose(sweep["effect"], sweep["mpnet_mean"] - sweep["control_mean"], atol=1e-9)
    # the oracle (the planted space) exists only in the positive world
    pos = sweep["world"] == "positive"
    assert sweep.loc[pos, "oracle_effect"].notna().all() and sweep.loc[~pos, "oracle_effect"].isna().all()
    # seeds give different worlds
    a, b = (sweep[(sweep["seed"] == s) & pos]["effect"].to_numpy() for s in (0, 1))
    assert not np.allclose(a, b)


def test_positive_world_is_detected_more_often_than_the_null_world(sweep):
    """MPNet above the category control: the planted sentence drive must show in the positive
    world and not in the null world (where the planted category space wins in ventral)."""
    cat = sweep[sweep["claim"] == "mpnet_vs_category"]
    hits = cat.groupby("world")["detected"].sum()
    assert hits["positive"] > hits["null"], cat[["world", "seed", "roi", "effect", "p", "detected"]]
    effect = cat.groupby("world")["effect"].mean()
    assert effect["positive"] > effect["null"] + 0.05
    # in the null world the category space wins in ventral cortex
    null_ventral = cat[(cat["world"] == "null") & (cat["roi"] == "ventral")]
    assert (null_ventral["effect"] < 0).all() and not null_ventral["detected"].any()


def test_summary(sweep):
    s = power.power_summary(sweep, combined=False)
    assert len(s) == 8 and (s["n_runs"] == 2).all()
    assert ((s["ci_low"] <= s["rate"]) & (s["rate"] <= s["ci_high"])).all()
    row = s.iloc[0]
    g = sweep[(sweep["world"] == row["world"]) & (sweep["claim"] == row["claim"]) & (sweep["roi"] == row["roi"])]
    assert row["rate"] == g["detected"].mean()
    assert math.isclose(row["effect_mean"], g["effect"].mean())
    pos = s[s["world"] == "positive"]
    assert np.isfinite(pos["recovered"]).all() and s[s["world"] == "null"]["recovered"].isna().all()
    assert np.allclose(pos["recovered"], pos["effect_mean"] / pos["oracle_effect_mean"])
    with pytest.raises(ValueError, match="columns"):
        power.power_summary(sweep.drop(columns="detected"))
    with pytest.raises(ValueError, match="level"):
        power.power_summary(sweep, level=1.5)


def test_every_control_is_an_intersection_union_claim(sweep):
    """Detected only where every component claim is; its p the largest, its effect the smallest."""
    every = power.every_control_runs(sweep)
    assert tuple(every.columns) == power.SWEEP_COLUMNS and len(every) == len(sweep) // len(power.CLAIMS)
    assert (every["claim"] == power.EVERY_CONTROL).all()
    keys = ["world", "seed", "n_subjects", "n_images", "roi"]
    parts = sweep.groupby(keys).agg(all_detected=("detected", "all"), p_max=("p", "max"),
                                    effect_min=("effect", "min"), control_max=("control_mean", "max"))
    joined = every.set_index(keys).join(parts)
    assert (joined["detected"] == joined["all_detected"]).all()
    assert np.allclose(joined["p"], joined["p_max"]) and np.allclose(joined["effect"], joined["effect_min"])
    assert np.allclose(joined["control_mean"], joined["control_max"])
    # a run that detects one claim only does not detect the combination
    one = sweep.copy()
    one["detected"] = one["claim"] == "mpnet_vs_category"
    assert not power.every_control_runs(one)["detected"].any()
    one["detected"] = True
    assert power.every_control_runs(one)["detected"].all()
    # the summary adds it (its rate can be no larger than any component's)
    s = power.power_summary(sweep)
    assert len(s) == 12 and set(s["claim"]) == {*power.CLAIMS, power.EVERY_CONTROL}
    by = s.set_index(["world", "roi", "n_subjects", "n_images", "claim"])["rate"].unstack("claim")
    assert (by[power.EVERY_CONTROL] <= by[list(power.CLAIMS)].min(axis=1) + 1e-12).all()
    # idempotent: a table that already holds the combination is not counted twice
    again = power.power_summary(pd.concat([sweep, every], ignore_index=True))
    pd.testing.assert_frame_equal(again, s)
    with pytest.raises(ValueError, match="one row per claim"):
        power.every_control_runs(sweep[sweep["claim"] != "mpnet_vs_word_avg"])
    with pytest.raises(ValueError, match="columns"):
        power.every_control_runs(sweep.drop(columns="p"))
    with pytest.raises(TypeError, match="combined"):
        power.power_summary(sweep, combined="yes")


def test_results_round_trip(sweep, tmp_path):
    """The world "null" survives the CSV (pandas' default reader would make it NaN)."""
    curves = power.power_summary(sweep)
    power.write_results(tmp_path, sweep, curves, {"seeds_run": [0, 1]})
    runs, back, settings = power.read_results(tmp_path)
    assert set(runs["world"]) == {"null", "positive"} and settings == {"seeds_run": [0, 1]}
    assert runs["detected"].dtype == bool and len(runs) == len(sweep)
    assert np.allclose(runs["effect"], sweep["effect"], rtol=1e-5)
    assert back["oracle_effect_mean"].isna().sum() == curves["oracle_effect_mean"].isna().sum()
    (tmp_path / power.RESULT_FILES["curves"]).unlink()
    with pytest.raises(FileNotFoundError, match="power_positive_control"):
        power.read_results(tmp_path)


def test_clopper_pearson_and_alpha_in_interval():
    # textbook values: 0 of 10 → [0, 0.3085]; 5 of 10 → [0.1871, 0.8129]
    lo, hi = power._clopper_pearson(0, 10)
    assert lo == 0 and math.isclose(hi, 0.30850, abs_tol=1e-4)
    lo, hi = power._clopper_pearson(5, 10)
    assert math.isclose(lo, 0.18709, abs_tol=1e-4) and math.isclose(hi, 0.81291, abs_tol=1e-4)
    rows = []
    for k, (det, p) in enumerate([(True, 0.01)] * 9 + [(False, 0.5)] * 11):
        rows.append(dict(world="null", seed=k, n_subjects=4, n_images=20, roi="ventral", claim="c", control="x",
                         mpnet_mean=0.5, control_mean=0.4, effect=0.1, dz=1.0, t=2.0, p=p, significant=det,
                         detected=det, oracle_effect=np.nan, oracle_p=np.nan))
    s = power.power_summary(pd.DataFrame(rows))
    # 9 of 20 detected: far above alpha, which falls outside the interval
    assert s["rate"].iloc[0] == 0.45 and not s["alpha_in_ci"].iloc[0]
    s = power.power_summary(pd.DataFrame(rows).assign(detected=False))
    assert s["rate"].iloc[0] == 0 and s["alpha_in_ci"].iloc[0]


# --------------------------------------------------------------------------- arguments
def test_world_overrides():
    o = power.world_overrides(3, 30)
    assert o["data_sessions"] == {1: 1, 2: 1, 3: 1} and o["trials_per_session"] == 90
    assert set(o["grids"]) == {1, 2, 3} and o["n_shared"] == 6 and o["n_captions"] == 3


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(n_subjects=1), ValueError, "n_subjects"),
    (dict(n_subjects=9), ValueError, "n_subjects"),
    (dict(n_subjects=2.5), TypeError, "n_subjects"),
    (dict(n_subjects=True), TypeError, "n_subjects"),
    (dict(n_images=5), ValueError, "n_images"),
    (dict(n_images=5000), ValueError, "n_images"),
    (dict(n_captions=0), ValueError, "n_captions"),
    (dict(n_captions=6), ValueError, "n_captions"),
])
def test_bad_sizes(kwargs, err, match):
    args = dict(n_subjects=2, n_images=20) | kwargs
    with pytest.raises(err, match=match):
        power.world_overrides(**args)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(seeds=[]), ValueError, "seeds"),
    (dict(seeds=[0, 0]), ValueError, "seeds"),
    (dict(seeds=[-1]), ValueError, "seeds"),
    (dict(seeds=0), ValueError, "seeds"),
    (dict(worlds=["alt"]), ValueError, "world"),
    (dict(worlds="null"), ValueError, "worlds"),
    (dict(n_subjects=[1]), ValueError, "n_subjects"),
    (dict(n_images=[4]), ValueError, "n_images"),
    (dict(alpha=0.0), ValueError, "alpha"),
    (dict(alpha=float("nan")), ValueError, "alpha"),
    (dict(alpha=True), ValueError, "alpha"),
    (dict(nested="yes"), ValueError, "nested"),
    (dict(progress=3), ValueError, "progress"),
])
def test_bad_sweep_arguments(kwargs, err, match, tmp_path):
    args = dict(seeds=[0], workdir=tmp_path) | kwargs
    with pytest.raises(err, match=match):
        power.power_sweep(**args)
    assert not list(tmp_path.iterdir())  # refused before anything was written


def test_bad_run_and_score_arguments(tmp_path):
    with pytest.raises(ValueError, match="world"):
        power.power_world(tmp_path / "x", "nul", 0, 2, 20)
    with pytest.raises(ValueError, match="seed"):
        power.power_world(tmp_path / "x", "null", -1, 2, 20)
    with pytest.raises(ValueError, match="subjects"):
        power.score_claims(None, subjects=["subj01"])
    with pytest.raises(ValueError, match="rois"):
        power.score_claims(None, subjects=["subj01", "subj02"], rois="ventral")
    with pytest.raises(ValueError, match="alpha"):
        power.score_claims(None, alpha=1.0)
    assert not list(tmp_path.iterdir())


# --------------------------------------------------------------------------- the figure
def _summary():
    rows = []
    for world, base in (("null", 0.05), ("positive", 0.3)):
        for n_img in (30, 60):
            for n in (2, 4, 8):
                rate = min(1.0, base * n / 2) if world == "positive" else base
                rows.append(dict(world=world, claim="mpnet_vs_category", roi="lateral", n_subjects=n,
                                 n_images=n_img, rate=rate, ci_low=max(0, rate - 0.1),
                                 ci_high=min(1, rate + 0.1), alpha=0.05))
    return pd.DataFrame(rows)


def test_plot_power_curves():
    s = _summary()
    fig, ax = plt.subplots()
    out = plot_power_curves(s, "mpnet_vs_category", "lateral", ax=ax)
    assert out is ax
    # one error-bar line per world and number of images, plus the alpha line
    assert len(ax.containers) == 4
    styles = sorted(c.lines[0].get_linestyle() for c in ax.containers)
    assert styles == ["-", "-", "--", "--"]
    for c in ax.containers:
        x, y = c.lines[0].get_data()
        assert np.allclose(x, [2, 4, 8], rtol=0.05)  # the worlds drawn slightly apart
    alpha_lines = [ln for ln in ax.lines if list(ln.get_ydata()) == [0.05, 0.05]]
    assert len(alpha_lines) == 1
    pos = [c for c in ax.containers if c.lines[0].get_linestyle() == "-"][0]
    assert np.allclose(pos.lines[0].get_ydata(), [0.3, 0.6, 1.0])
    assert "α = 0.05" in [t.get_text() for t in ax.get_legend().get_texts()]
    plt.close(fig)
    ax = plot_power_curves(s, "mpnet_vs_category", "lateral", alpha=0.1, intervals=False)
    assert any(list(ln.get_ydata()) == [0.1, 0.1] for ln in ax.lines)
    plt.close(ax.figure)


def test_plot_power_curves_refuses_what_it_cannot_draw():
    s = _summary()
    with pytest.raises(ValueError, match="no rows"):
        plot_power_curves(s, "mpnet_vs_word_avg", "lateral")
    with pytest.raises(ValueError, match="columns"):
        plot_power_curves(s.drop(columns="rate"), "mpnet_vs_category", "lateral")
