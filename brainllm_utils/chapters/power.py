"""Calibration and power of the RQ2 claims on generated worlds (issue 16).

The sandbox's *null world* (presets ``tiny`` …) plants no sentence-level signal; the
*positive world* (``tiny_positive`` …) drives the ventral and lateral ROIs half by MiniLM's
caption embeddings (:data:`brainllm_utils.synth.POSITIVE_ROI_SPACES`). This module asks how
often the book's RQ2 criterion reports the sentence-level advantage in each world, over
seeds, as a function of the number of subjects and of images per subject:

- :func:`power_world` writes one small world with ``n_subjects`` subjects and
  ``n_images`` images per subject (one session, each image seen three times);
- :func:`score_claims` computes, on any data root, the discriminating RQ2 claims with the
  chapters' code: sampled ROI RSA per subject
  (:func:`~brainllm_utils.chapters.ch02_rsa.subject_rsa_table`, all the subject's images in
  one set) and the paired test across subjects of ``mpnet − control`` per ROI
  (:func:`~brainllm_utils.chapters.rq2.rq2_comparison`, i.e.
  :func:`~brainllm_utils.stats.pairwise_model_tests`). A claim is *detected* under the
  chapters' criterion: the difference is > 0 and significant at ``alpha``;
- :func:`power_run` is one world scored; :func:`power_sweep` runs seeds × worlds ×
  images per subject, and scores nested subject groups (the first 2, 4, 8 subjects of one
  world with the largest group) so each world is generated once;
- :func:`power_summary` turns the sweep into rates with exact binomial (Clopper–Pearson)
  intervals, and the effect sizes with their recovery: in the positive world, the
  difference that the planted space itself (``truth:sentence``, the oracle) reaches
  against the same control, and the share of it that MPNet recovers.

RQ3 (identification above an image-blind baseline) is not part of the sweep yet.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .._utils.numeric import check_int
from ..nsd import NSD
from ..synth import N_SUBJECTS, make_synthetic_nsd
from ._common import build_feature_table, subject_image_ids
from .ch02_rsa import subject_rsa_table
from .findings import ALPHA
from .rq2 import rq2_comparison

__all__ = ["WORLDS", "CLAIMS", "CLAIM_ROIS", "ORACLE", "SWEEP_COLUMNS", "world_overrides",
           "power_world", "world_features", "score_claims", "power_run", "power_sweep", "power_summary"]

#: world → the sandbox preset it is generated from
WORLDS = {"null": "tiny", "positive": "tiny_positive"}
#: claim → the control that ``mpnet`` must beat (RQ2's discriminating comparisons)
CLAIMS = {"mpnet_vs_word_avg": "mpnet_word_avg", "mpnet_vs_category": "mpnet_category_all"}
#: the ROIs the claims are scored in (those the positive world drives)
CLAIM_ROIS = ("ventral", "lateral")
#: the planted sentence space, scored as an oracle in the positive world
ORACLE = "truth:sentence"
#: the columns of :func:`score_claims`, :func:`power_run` and :func:`power_sweep`
SWEEP_COLUMNS = ("world", "seed", "n_subjects", "n_images", "roi", "claim", "control", "mpnet_mean",
                 "control_mean", "effect", "dz", "t", "p", "significant", "detected", "oracle_effect",
                 "oracle_p")
_MAIN = "mpnet"
_GRID = (10, 12, 9)  # a subject's volume grid (the tiny preset's first)


def _check_world(world) -> str:
    if not isinstance(world, str) or world not in WORLDS:
        raise ValueError(f"world={world!r}: expected one of {sorted(WORLDS)}")
    return world


def _check_alpha(alpha) -> float:
    if isinstance(alpha, (bool, np.bool_)) or not isinstance(alpha, (int, float, np.floating)) \
            or not np.isfinite(alpha) or not 0 < alpha < 1:
        raise ValueError(f"alpha={alpha!r}: expected a number in (0, 1)")
    return float(alpha)


def _check_sizes(n_subjects, n_images):
    n_subjects = check_int(n_subjects, "n_subjects", min_value=2)
    if n_subjects > N_SUBJECTS:
        raise ValueError(f"n_subjects={n_subjects}: at most {N_SUBJECTS} subjects (NSD's)")
    n_images = check_int(n_images, "n_images", min_value=10)
    if n_images > 2000:
        raise ValueError(f"n_images={n_images}: at most 2000 images per subject in a power world")
    return n_subjects, n_images


def world_overrides(n_subjects: int, n_images: int, n_captions: int = 3) -> dict:
    """The ``overrides`` of :func:`~brainllm_utils.synth.make_synthetic_nsd` for a power world.

    One session per subject of ``3 × n_images`` trials (each image seen three times, the
    RSA pool), a fifth of the images shared by all subjects, the ``tiny`` preset's volume
    grid for every subject, no planted NaN vertices or zeroed voxels, a small training
    pool.

    Parameters
    ----------
    n_subjects : int
        Subjects with data, 2 to 8.
    n_images : int
        Images per subject, 10 to 2000.
    n_captions : int, default=3
        Captions per image (the default preset's; MPNet's cost grows with it).

    Returns
    -------
    overrides : dict
        Keys of the generator's presets.
    """
    n_subjects, n_images = _check_sizes(n_subjects, n_images)
    n_captions = check_int(n_captions, "n_captions", min_value=1)
    if n_captions > 5:
        raise ValueError(f"n_captions={n_captions}: COCO has 5 captions per image")
    subjects = range(1, n_subjects + 1)
    return dict(data_sessions={s: 1 for s in subjects}, trials_per_session=3 * n_images,
                grids={s: _GRID for s in subjects}, nan_vertices={}, zeroed_voxels={},
                n_shared=max(1, n_images // 5), n_strict=max(1, n_images // 8), n_pool=20,
                n_captions=n_captions, shared_reversal_pairs=1, subject_reversal_pairs=1)


def power_world(root, world: str, seed: int, n_subjects: int, n_images: int, n_captions: int = 3) -> Path:
    """Generate one power world: ``world``'s preset at the sizes of :func:`world_overrides`.

    Parameters
    ----------
    root : str or path-like
        The folder to write (must not exist).
    world : {"null", "positive"}
        :data:`WORLDS`.
    seed : int
        The generator's seed (design, images, captions, tuning, noise).
    n_subjects : int
        Subjects with data, 2 to 8.
    n_images : int
        Images per subject, 10 to 2000.
    n_captions : int, default=3
        Captions per image.

    Returns
    -------
    root : pathlib.Path
        The written data root.
    """
    world = _check_world(world)
    seed = check_int(seed, "seed", min_value=0)
    overrides = world_overrides(n_subjects, n_images, n_captions)
    return Path(make_synthetic_nsd(root, WORLDS[world], seed=seed, overrides=overrides, progress=False))


def _is_positive_world(nsd) -> bool:
    from ..synth import load_truth

    return "sentence" in load_truth(nsd.root).get("feature_spaces", {})


def score_claims(nsd, subjects=None, rois=CLAIM_ROIS, alpha: float = ALPHA, seed: int = 0,
                 results_dir=None, oracle=None, device: str = "cpu", n_images=None, features=None):
    """The RQ2 claims on one data root: ``mpnet − control`` per ROI, paired across subjects.

    Each subject's ROI RSA (one sample set: ``n_images`` of its 3×-seen images drawn with
    ``seed``, by default all of them; Pearson of correlation-distance RDMs) for ``mpnet``,
    each control of :data:`CLAIMS` and, in a positive world, the planted space
    :data:`ORACLE`; then per claim and ROI
    :func:`~brainllm_utils.chapters.rq2.rq2_comparison` with the control alone (so the
    FDR step is the identity): a paired t-test over the subjects.

    Parameters
    ----------
    nsd : NSD
        A data root (a power world, or any sandbox).
    subjects : list, optional
        Subjects (default: all with data); at least 2.
    rois : sequence of str, default=CLAIM_ROIS
        ROIs of the streams atlas.
    alpha : float, default=0.05
        Level of the paired test (:data:`~brainllm_utils.chapters.findings.ALPHA`).
    seed : int, default=0
        Seed of the sample sets and of the sign-flip test.
    results_dir : str or path-like, optional
        Where the sample sets are saved (default: ``get_results_dir()``).
    oracle : bool, optional
        Score :data:`ORACLE` too (default: when the root plants a sentence space).
    device : str, default="cpu"
        Device of the RSA and of the encoders.
    n_images : int, optional
        Images per subject in the RSA (at least 10 and at most every subject's number of
        3×-seen images; default: all of them).
    features : dict, optional
        ``{name: (ids, X)}`` precomputed over sorted ids covering the subjects' images
        (:func:`world_features`); default: built here.

    Returns
    -------
    table : pandas.DataFrame
        One row per ROI and claim: ``roi, claim, control, n_subjects, n_images, mpnet_mean,
        control_mean, effect`` (mean of ``mpnet − control``), ``dz`` (effect / SD of the
        differences), ``t, p`` (paired t-test), ``significant`` (the package's:
        ``p ≤ alpha``, either sign), ``detected`` (the criterion: significant and
        ``effect > 0``),
        ``oracle_effect, oracle_p`` (the same test for :data:`ORACLE` − control; NaN
        without an oracle).
    """
    import pandas as pd

    alpha = _check_alpha(alpha)
    seed = check_int(seed, "seed", min_value=0)
    subjects = list(nsd.subjects if subjects is None else subjects)
    if len(subjects) < 2:
        raise ValueError(f"subjects={subjects!r}: the paired test needs at least 2 subjects")
    if isinstance(rois, str) or not rois:
        raise ValueError(f"rois={rois!r}: expected a non-empty list of ROI names")
    oracle = _is_positive_world(nsd) if oracle is None else bool(oracle)
    spaces = [_MAIN, *CLAIMS.values()] + ([ORACLE] if oracle else [])
    have = min(subject_image_ids(nsd, s).size for s in subjects)
    if n_images is None:
        n_images = have
    n_images = check_int(n_images, "n_images", min_value=10)
    if n_images > have:
        raise ValueError(f"n_images={n_images}: the subjects have only {have} images seen 3 times")
    scores = subject_rsa_table(nsd, subjects, feature_spaces=spaces, rois=list(rois), set_size=n_images,
                               seed=seed, n_sets=1, device=device, results_dir=results_dir, features=features,
                               progress=False)
    rows = []
    for claim, control in CLAIMS.items():
        test = rq2_comparison(scores, main=_MAIN, spaces=[control], q=alpha, seed=seed).set_index("roi")
        diffs = (scores[scores["model"] == _MAIN].set_index(["roi", "subject"])["r"]
                 - scores[scores["model"] == control].set_index(["roi", "subject"])["r"])
        if oracle:
            otest = rq2_comparison(scores, main=ORACLE, spaces=[control], q=alpha, seed=seed).set_index("roi")
        for roi in rois:
            row = test.loc[roi]
            d = diffs.loc[roi].to_numpy()
            sd = float(np.std(d, ddof=1))
            effect, p, sig = float(row["mean_diff"]), float(row["p_ttest"]), bool(row["significant"])
            rows.append(dict(roi=roi, claim=claim, control=control, n_subjects=len(subjects), n_images=n_images,
                             mpnet_mean=float(row["main_mean"]), control_mean=float(row["space_mean"]),
                             effect=effect, dz=effect / sd if sd > 0 else np.nan, t=float(row["t"]), p=p,
                             significant=sig, detected=sig and effect > 0,
                             oracle_effect=float(otest.loc[roi, "mean_diff"]) if oracle else np.nan,
                             oracle_p=float(otest.loc[roi, "p_ttest"]) if oracle else np.nan))
    return pd.DataFrame(rows)


def _check_grid(values, name: str, check) -> list:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name}={values!r}: expected a non-empty list")
    values = list(values)
    if not values:
        raise ValueError(f"{name}=[]: expected a non-empty list")
    out = [check(v) for v in values]
    if len(set(out)) != len(out):
        raise ValueError(f"{name}={values!r}: duplicates")
    return out


def world_features(nsd, subjects=None, oracle=None) -> dict:
    """The features :func:`score_claims` needs, built once over all the subjects' images.

    Parameters
    ----------
    nsd : NSD
        A data root.
    subjects : list, optional
        Subjects (default: all with data).
    oracle : bool, optional
        Include :data:`ORACLE` (default: when the root plants a sentence space).

    Returns
    -------
    features : dict of str to (ndarray, ndarray)
        ``{name: (ids, X)}`` for ``mpnet``, the controls of :data:`CLAIMS` (and the oracle),
        over the sorted union of the subjects' 3×-seen images.
    """
    subjects = list(nsd.subjects if subjects is None else subjects)
    oracle = _is_positive_world(nsd) if oracle is None else bool(oracle)
    spaces = [_MAIN, *CLAIMS.values()] + ([ORACLE] if oracle else [])
    ids = np.unique(np.concatenate([subject_image_ids(nsd, s) for s in subjects])).astype(np.int64)
    return {name: (ids, X) for name, X in build_feature_table(nsd, spaces, ids, progress=False).items()}


def _score_world(root, world, seed, images, groups, alpha, workdir):
    """Score the first ``n`` subjects of each group on ``n_images`` of their images, for each
    group and number of images, in one generated world (features built once)."""
    nsd = NSD(root, cache_dir=workdir / "betas")
    features = world_features(nsd, nsd.subjects[:max(groups)], oracle=world == "positive")
    frames = []
    for n_img in images:
        for n in groups:
            df = score_claims(nsd, subjects=nsd.subjects[:n], alpha=alpha, seed=seed, n_images=n_img,
                              results_dir=workdir / f"results-{n}-{n_img}", oracle=world == "positive",
                              features=features)
            df.insert(0, "world", world)
            df.insert(1, "seed", seed)
            frames.append(df)
    return frames


def power_run(world: str, seed: int, n_subjects: int, n_images: int, alpha: float = ALPHA,
              workdir=None, n_captions: int = 3):
    """One world generated (:func:`power_world`) and its RQ2 claims scored (:func:`score_claims`).

    Parameters
    ----------
    world : {"null", "positive"}
        :data:`WORLDS`.
    seed : int
        Seed of the world, of the sample sets and of the sign-flip test.
    n_subjects : int
        Subjects, 2 to 8.
    n_images : int
        Images per subject, 10 to 2000.
    alpha : float, default=0.05
        Level of the paired test.
    workdir : str or path-like, optional
        A folder for the world, its sample sets and cached betas (removed afterwards;
        default: a temporary folder).
    n_captions : int, default=3
        Captions per image.

    Returns
    -------
    table : pandas.DataFrame
        :data:`SWEEP_COLUMNS`: one row per ROI and claim.
    """
    import pandas as pd

    return power_sweep([seed], [world], [n_subjects], [n_images], alpha=alpha, workdir=workdir,
                       n_captions=n_captions, nested=False)[list(SWEEP_COLUMNS)].pipe(pd.DataFrame)


def power_sweep(seeds, worlds=("null", "positive"), n_subjects=(2, 4, 8), n_images=(30, 60),
                alpha: float = ALPHA, workdir=None, n_captions: int = 3, nested: bool = True,
                progress=None):
    """The RQ2 claims over seeds × worlds × images per subject × subjects, as a tidy table.

    With ``nested``, one world per seed and world kind is generated with
    ``max(n_subjects)`` subjects and ``max(n_images)`` images per subject; each setting
    scores its first ``n`` subjects on a seeded draw of ``n_images`` of each subject's
    images (subjects are independent draws of the generator, so the first ``n`` are a
    sample of ``n``; within a world the settings are nested, across seeds independent).
    This embeds each seed's captions once. Without ``nested`` every setting gets its own
    world of exactly its size. Each world is removed once scored;
    caption embeddings are cached (``get_cache_dir()``) and shared by the runs.

    Parameters
    ----------
    seeds : sequence of int
        Seeds (≥ 0), one world per seed and setting.
    worlds : sequence of {"null", "positive"}, default=("null", "positive")
        :data:`WORLDS`.
    n_subjects : sequence of int, default=(2, 4, 8)
        Group sizes, 2 to 8.
    n_images : sequence of int, default=(30, 60)
        Images per subject, 10 to 2000.
    alpha : float, default=0.05
        Level of the paired test.
    workdir : str or path-like, optional
        A folder for the worlds (default: a temporary folder, removed at the end).
    n_captions : int, default=3
        Captions per image.
    nested : bool, default=True
        Score nested subject groups of one world (see above).
    progress : callable, optional
        Called as ``progress(done, total, message)`` after each world (e.g. to print).

    Returns
    -------
    table : pandas.DataFrame
        :data:`SWEEP_COLUMNS`; ``attrs`` hold the settings (``alpha``, ``nested``,
        ``n_captions``, ``seconds``: wall time).
    """
    import pandas as pd

    seeds = _check_grid(seeds, "seeds", lambda s: check_int(s, "seeds", min_value=0))
    worlds = _check_grid(worlds, "worlds", _check_world)
    groups = _check_grid(n_subjects, "n_subjects", lambda n: _check_sizes(n, 10)[0])
    images = _check_grid(n_images, "n_images", lambda n: _check_sizes(2, n)[1])
    alpha = _check_alpha(alpha)
    check_int(n_captions, "n_captions", min_value=1, max_value=5)
    if not isinstance(nested, (bool, np.bool_)):
        raise ValueError(f"nested={nested!r}: expected True or False")
    if progress is not None and not callable(progress):
        raise ValueError(f"progress={progress!r}: expected a callable or None")
    groups = sorted(groups)
    images = sorted(images)
    settings = [(groups, images)] if nested else [([n], [i]) for i in images for n in groups]
    plan = [(seed, world, sizes, imgs) for seed in seeds for world in worlds for sizes, imgs in settings]
    t0 = time.perf_counter()
    own = workdir is None
    base = Path(tempfile.mkdtemp(prefix="power-")) if own else Path(workdir)
    frames = []
    try:
        for k, (seed, world, sizes, imgs) in enumerate(plan):
            run = base / f"{world}-s{seed}-i{max(imgs)}-n{max(sizes)}"
            if run.exists():
                shutil.rmtree(run)
            run.mkdir(parents=True)
            try:
                root = power_world(run / "nsd", world, seed, max(sizes), max(imgs), n_captions)
                frames += _score_world(root, world, seed, imgs, sizes, alpha, run)
            finally:
                shutil.rmtree(run, ignore_errors=True)
            if progress is not None:
                progress(k + 1, len(plan), f"{world} seed {seed}, images {imgs}, subjects {sizes}: "
                         f"{time.perf_counter() - t0:.0f} s")
    finally:
        if own:
            shutil.rmtree(base, ignore_errors=True)
    out = pd.concat(frames, ignore_index=True)[list(SWEEP_COLUMNS)]
    out.attrs.update(alpha=alpha, nested=bool(nested), n_captions=int(n_captions),
                     seconds=round(time.perf_counter() - t0, 1))
    return out


def _clopper_pearson(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    from scipy.stats import beta

    a = 1 - level
    lo = 0.0 if k == 0 else float(beta.ppf(a / 2, k, n - k + 1))
    hi = 1.0 if k == n else float(beta.ppf(1 - a / 2, k + 1, n - k))
    return lo, hi


#: the combined claim of :func:`every_control_runs`: ``mpnet`` above every control of
#: :data:`CLAIMS` at once (chapter 02's "beyond single words" criterion,
#: :func:`~brainllm_utils.chapters.findings.sentence_controls_row`)
EVERY_CONTROL = "mpnet_vs_every_control"


def every_control_runs(table):
    """The combined claim per run: ``mpnet`` ahead of every control of :data:`CLAIMS`.

    An intersection-union test: the run *detects* the claim when it detects each component
    (each difference > 0 and significant); its p-value is the largest component p, its
    effect the smallest component effect (and likewise the oracle's). Its false-positive
    rate can be no larger than any component's, so it is calibrated wherever one component
    is, even when another is not (the word-average comparison in the null world).

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`power_sweep` (:data:`SWEEP_COLUMNS`), with every claim of
        :data:`CLAIMS` for each run and ROI.

    Returns
    -------
    runs : pandas.DataFrame
        :data:`SWEEP_COLUMNS`, one row per ``world, seed, n_subjects, n_images, roi``, claim
        :data:`EVERY_CONTROL`, ``control`` the controls joined by "+", ``control_mean`` the
        best control's, ``dz``/``t`` of the component with the smallest effect.
    """
    import pandas as pd

    missing = sorted(set(SWEEP_COLUMNS) - set(table.columns))
    if missing:
        raise ValueError(f"table: columns {missing} missing (expected power_sweep's table)")
    keys = ["world", "seed", "n_subjects", "n_images", "roi"]
    rows = []
    for key, g in table[table["claim"].isin(list(CLAIMS))].groupby(keys, sort=True):
        if set(g["claim"]) != set(CLAIMS) or len(g) != len(CLAIMS):
            raise ValueError(f"run {dict(zip(keys, key))}: expected one row per claim {sorted(CLAIMS)}, got "
                             f"{sorted(g['claim'])}")
        weakest = g.loc[g["effect"].idxmin()]
        rows.append(dict(zip(keys, key), claim=EVERY_CONTROL, control="+".join(CLAIMS.values()),
                         mpnet_mean=float(g["mpnet_mean"].iloc[0]), control_mean=float(g["control_mean"].max()),
                         effect=float(g["effect"].min()), dz=float(weakest["dz"]), t=float(weakest["t"]),
                         p=float(g["p"].max()), significant=bool(g["significant"].astype(bool).all()),
                         detected=bool(g["detected"].astype(bool).all()),
                         oracle_effect=float(g["oracle_effect"].min()), oracle_p=float(g["oracle_p"].max())))
    return pd.DataFrame(rows, columns=list(SWEEP_COLUMNS))


def power_summary(table, alpha: float = ALPHA, level: float = 0.95, combined: bool = True):
    """Detection rates and effect sizes per world, claim, ROI and sample size.

    Parameters
    ----------
    table : pandas.DataFrame
        From :func:`power_sweep` (:data:`SWEEP_COLUMNS`).
    alpha : float, default=0.05
        The nominal level, repeated in the table and used by ``alpha_in_ci``.
    level : float, default=0.95
        Confidence level of the exact binomial (Clopper–Pearson) intervals.
    combined : bool, default=True
        Add the combined claim :data:`EVERY_CONTROL` (:func:`every_control_runs`).

    Returns
    -------
    summary : pandas.DataFrame
        One row per ``world, claim, roi, n_subjects, n_images``: ``n_runs``,
        ``rate`` (share of runs *detected*: the false-positive rate in the null world,
        the power in the positive world), ``ci_low, ci_high``, ``rate_two_sided`` (share
        significant in either direction), ``alpha``, ``alpha_in_ci`` (``alpha`` inside the
        interval), ``effect_mean, effect_sd`` (over runs), ``oracle_effect_mean``
        (the planted space's effect; NaN in the null world) and ``recovered``
        (``effect_mean / oracle_effect_mean``: the share of the planted advantage MPNet
        recovers).
    """
    import pandas as pd

    alpha = _check_alpha(alpha)
    if isinstance(level, (bool, np.bool_)) or not isinstance(level, (int, float)) or not 0 < level < 1:
        raise ValueError(f"level={level!r}: expected a number in (0, 1)")
    missing = sorted(set(SWEEP_COLUMNS) - set(table.columns))
    if missing:
        raise ValueError(f"table: columns {missing} missing (expected power_sweep's table)")
    if not isinstance(combined, (bool, np.bool_)):
        raise TypeError(f"combined={combined!r}: expected a bool")
    if combined:
        table = pd.concat([table[table["claim"] != EVERY_CONTROL], every_control_runs(table)], ignore_index=True)
    keys = ["world", "claim", "roi", "n_subjects", "n_images"]
    rows = []
    for key, g in table.groupby(keys, sort=True):
        n, k = len(g), int(g["detected"].sum())
        lo, hi = _clopper_pearson(k, n, level)
        oracle = float(g["oracle_effect"].mean()) if g["oracle_effect"].notna().any() else np.nan
        effect = float(g["effect"].mean())
        rows.append(dict(zip(keys, key), n_runs=n, rate=k / n, ci_low=lo, ci_high=hi,
                         rate_two_sided=float(g["significant"].mean()), alpha=alpha,
                         alpha_in_ci=bool(lo <= alpha <= hi), effect_mean=effect,
                         effect_sd=float(g["effect"].std(ddof=1)) if n > 1 else np.nan,
                         oracle_effect_mean=oracle,
                         recovered=effect / oracle if np.isfinite(oracle) and oracle != 0 else np.nan))
    return pd.DataFrame(rows)


#: the result files of the benchmark script (``benchmarks/power_positive_control.py``)
RESULT_FILES = {"runs": "power_runs.csv", "curves": "power_curves.csv", "settings": "power_settings.json"}


def write_results(folder, runs, curves, settings: dict) -> Path:
    """Write a sweep's tables and settings as :data:`RESULT_FILES` under ``folder``.

    Parameters
    ----------
    folder : str or path-like
        Created when missing.
    runs : pandas.DataFrame
        :func:`power_sweep`'s table.
    curves : pandas.DataFrame
        :func:`power_summary`'s table.
    settings : dict
        JSON-serialisable settings of the run.

    Returns
    -------
    folder : pathlib.Path
        The folder written.
    """
    import json

    from .._utils.paths import atomic_write_text

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for key, table in (("runs", runs), ("curves", curves)):
        atomic_write_text(folder / RESULT_FILES[key], table.to_csv(index=False, float_format="%.6g"))
    atomic_write_text(folder / RESULT_FILES["settings"], json.dumps(settings, indent=2) + "\n")
    return folder


def read_results(folder):
    """Read the files :func:`write_results` (or the benchmark script) wrote.

    The ``world`` column holds ``"null"``, which pandas' default reader would turn into
    NaN: only empty fields are missing values here.

    Parameters
    ----------
    folder : str or path-like
        The folder of :data:`RESULT_FILES`.

    Returns
    -------
    runs, curves : pandas.DataFrame
        The sweep and its summary.
    settings : dict
        The run's settings.

    Raises
    ------
    FileNotFoundError
        When a file is missing (the message names the command that writes them).
    """
    import json

    import pandas as pd

    folder = Path(folder)
    missing = [name for name in RESULT_FILES.values() if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder}: {missing} missing; run `python benchmarks/power_positive_control.py "
                                f"--out {folder}`")
    tables = [pd.read_csv(folder / RESULT_FILES[k], keep_default_na=False, na_values=[""])
              for k in ("runs", "curves")]
    for t in tables:
        bad = sorted(set(t["world"]) - set(WORLDS))
        if bad:
            raise ValueError(f"{folder}: unknown worlds {bad} in the results")
    settings = json.loads((folder / RESULT_FILES["settings"]).read_text())
    return tables[0], tables[1], settings


__all__ += ["RESULT_FILES", "write_results", "read_results", "EVERY_CONTROL", "every_control_runs"]
