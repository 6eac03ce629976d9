"""A synthetic NSD ("sandbox") in the real NSD release layout, with a known ground truth.

:func:`make_synthetic_nsd` writes a tree that an unchanged real-NSD reader can read: same
paths, file names, formats, dtypes, axis orders and 1-/0-based index conventions as the
release (``shared/docs/nsd_layout.md`` §1–§4, §7); only the sizes shrink.

What is in the tree (``<root>/...``)
------------------------------------
- ``nsddata/experiments/nsd/nsd_expdesign.mat`` (``masterordering`` (1, D·T),
  ``subjectim`` (8, K), ``sharedix`` (1, S); float64, 1-based) and
  ``nsd_stim_info_merged.csv`` (row i ↔ nsdId i, the real columns).
- ``nsddata/ppdata/subjXX/behav/responses.tsv`` (19 columns, acquired trials only) and
  ``func1pt8mm/brainmask.nii.gz``, ``func1pt8mm/roi/{,lh.,rh.}{ROI}.nii.gz`` (int16).
- ``nsddata/ppdata/subjXX/transforms/{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz`` and
  ``{lh,rh}.white-to-fsaverage.mgz``: NSD's func1pt8 → fsaverage route
  (:func:`brainllm_utils.nsd.project_to_fsaverage`), consistent with the volume's cortex
  (:func:`_write_transforms`).
- ``nsddata/freesurfer/{fsaverage,subjXX}/label/``: ``{ROI}.mgz.ctab`` and, for fsaverage,
  ``{lh,rh}.{streams,nsdgeneral}.mgz``.
- ``nsddata_betas/ppdata/subjXX/func1pt8mm/betas_fithrf_GLMdenoise_RR/``:
  ``betas_sessionNN.nii.gz`` (int16, PSC × 300) and ``ncsnr.nii.gz``;
  ``.../fsaverage/betas_fithrf_GLMdenoise_RR/{lh,rh}.betas_sessionNN.mgh`` (float32 PSC,
  (V, 1, 1, T)) and ``{lh,rh}.ncsnr.mgh``. The surface is nilearn's bundled fsaverage5
  (10,242 vertices per hemisphere; its vertices are the first 10,242 of fsaverage).
- ``nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5`` (``imgBrick`` (N, H, W, 3) uint8; pixel
  (0, 0) encodes the nsdId as ``(id >> 16, id >> 8 & 255, id & 255)``),
  ``nsddata/stimuli/nsd/shared1000/sharedNNNN_nsdNNNNN.png`` and COCO 2017-format
  ``captions_*`` / ``instances_*`` JSONs under ``nsddata_stimuli/stimuli/nsd/annotations/``.
- ``coco/{train2017,val2017}/{cocoId:012d}.jpg``: a *training pool* of images never shown
  to subjects (the COCO images outside NSD), laid out as a user would unpack a COCO
  download next to NSD. Their captions and instances are in the same COCO JSONs; their
  cocoIds are not in the CSV.
- ``sandbox_truth/``: the ground truth (``card.json``, planted SNR per vertex/voxel, latent
  features, scene graphs). Analyses never read it; tests and the book do.

Generative model
----------------
Each image has a scene graph (background scene, 1–4 COCO-category objects with colour,
size, count and position, often one agent–action–patient interaction), rendered
procedurally, and described by 5 (sometimes 6) template captions. Four latent feature
spaces are computed per image: ``lowlevel`` (pixel statistics), ``category`` (multi-hot +
counts), ``interaction`` (agent⊗action, patient⊗action, action: role-bound) and
``layout`` (coarse occupancy, number/size/position of objects); each is z-scored per
dimension over the NSD images. For a voxel/vertex v driven by ROI r,

    P_s,v = sqrt(c) S_s,u(v) + sqrt(1 − c) I_s,v      (S, I ~ N(0, 1))
    g_s = Z_s P_s,v / sqrt(d_s)
    f_v = standardise( Σ_s sqrt(w_r,s) g_s )          (unit variance over the images)
    β[t, v] = scale_n,v · (a_v f_v[image(t)] + e[t, v]) + offset_n,v,  e ~ N(0, 1)

with a_v the true SNR (0 outside nsdgeneral), session n's per-voxel offset and scale,
and w_r the ROI → space mixture (:data:`ROI_SPACES`). Subjects share the ROI → space
mapping (so the representational geometry per ROI) and a share ``c`` of each voxel's
weights (``shared_tuning``, :data:`SHARED_TUNING` = 0.5 by default): ``S_s,u`` is common to
all subjects, with ``u(v)`` the fsaverage vertex (a volume voxel takes the column of its
nearest fsaverage5 vertex), and ``I_s,v`` is the subject's own; so the per-vertex
inter-participant agreement on the shared images (the paper's Fig. 1d) is positive, as on
NSD. ``c = 0`` gives the trees written before the share existed (same random streams). No
language model is involved anywhere in the default presets.

Positive control (``positive``, ``tiny_positive``)
--------------------------------------------------
The default (tiny) preset where the ventral and lateral ROIs take half their variance from a
planted ``sentence`` space (:data:`POSITIVE_ROI_SPACES`): each NSD image's captions, as
written to the COCO JSON, embedded by all-MiniLM-L6-v2 (:data:`POSITIVE_SENTENCE_MODEL`,
with the package's encoder :func:`brainllm_utils.features.embeddings.embed_captions`, CPU
float32, mean over captions as the paper), centred per dimension and divided by the root
mean variance. MiniLM, not MPNet: the book tests MPNet, which must find the planted
structure through what the two sentence encoders share. Same seed → the same design,
images, captions, COCO files, SNR, noise and weights on the other spaces as the default
(tiny) preset: the betas differ only in the driven ROIs. The card records the mixtures
(``roi_spaces``), the encoder (``sentence_space``: model, weights sha256, layer, pooling,
aggregation, scaling, driven ROIs) and ``features_sentence.npy``. Any preset takes
``roi_spaces`` and ``sentence_model`` (:data:`MODEL_OPTIONS`).

Quirks of real local copies (:data:`OPTIONS`, any preset, off by default)
-------------------------------------------------------------------------
Passed as ``overrides`` (or the command line's flags); with ``shared_tuning=0`` the
``default`` and ``tiny`` trees are byte-for-byte those written before these options existed
(pinned by a test), plus the transform files added since (from their own random stream;
pinned separately); the default share changes only the betas and ``ncsnr`` files.

- ``coco_native_sizes=True``: the training-pool JPEGs are rendered at COCO-like native
  sizes (:data:`COCO_SIZES`: 640×480, 500×375, 427×640, ...; seeded draw), and every
  image's COCO JSON ``width``/``height`` (NSD images included) and instance boxes use that
  size. The scene layout is in image fractions, so the objects sit where the ground truth
  says. The NSD brick stays square (NSD's 425×425 crops).
- ``missing_sessions={subject: [sessions]}``: the design and ``responses.tsv`` list those
  sessions; their beta files are not written (a partial download). ``ncsnr`` still covers
  every listed session, as the release's.
- ``data_sessions``: any subjects (one is fine) with any session counts.
- ``no_instance_images=n``: n NSD images (and about as large a share of the pool) are in
  the ``instances_*.json`` image lists without any instance annotation (as ~1 % of COCO).
  Their ids are in the card (``quirks``).
- ``caption_variety=True``: captions with lower/upper case, missing or doubled final
  periods, double and leading spaces, trailing spaces and newlines, and non-ASCII endings
  ("café", "façade", "naïve", "—", curly quotes, "°").
- ``mesh="fsaverage"`` (needs ``stream=True``): full-resolution fsaverage-like mesh, an
  icosahedral sphere subdivided 7 times (163,842 vertices per hemisphere, ``_mesh``), with
  ``nsddata/freesurfer/fsaverage/surf/{lh,rh}.{pial,white,inflated,sphere}``.
- ``stream=True``: NSD images rendered into the brick in batches; betas simulated and
  written 64 trials at a time (``_stream``'s writers), with one random stream per
  (session, block of 1,024 vertices/voxels), so that ``ncsnr`` is computed block by block
  from the same values drawn again, never from a whole subject in memory. Different random
  streams from the default path: a streamed tree is not the unstreamed one.

NSD-realistic presets
---------------------
``nsdlike``: every quirk above; subjects 1..``n_subjects`` (default 8) with NSD's session
counts × ``scale`` (default 1: 40, 40, 32, 30, 40, 32, 40, 30; each rounded, at least 1),
750 trials per session, 10,000 images per subject at ``scale=1`` (73,000 in all; 1,000
shared, ~515 seen 3× by all), the brick at 425×425, NSD's 1.8 mm grids
(:data:`NSD_GRIDS`, e.g. 81×104×83) with nsdcode affines, int16 volume betas, float32
fsaverage betas (163,842, 1, 1, 750) per hemisphere, 48,236 × ``scale`` pool JPEGs, ~1 %
of the images without instances, and the last session of the last subject with ≥ 2
sessions missing on disk. ``nsdlike_small`` (tests): the same with subjects 1 and 2
(1 and 2 sessions; subject 2's second missing), a 64-px brick, 40 pool images and the
volume betas gzip-stored (``gzip_level=0``): ≈ 60 s, < 1 GB RAM, ≈ 4 GB of disk.

Sizes for a memory benchmark ("N subjects × S sessions × 750 trials × 327,684 vertices"):
``make_synthetic_nsd(root, "nsdlike", overrides={"n_subjects": N, "scale": S / 40})`` gives
subjects 1..N with about S sessions each (NSD's relative counts: subjects 3, 4, 6, 8 get
fewer), or exactly S each with ``overrides={"n_subjects": N, "data_sessions": {s: S for s
in range(1, N + 1)}}``; one session of the last subject is missing on disk unless
``missing_sessions={}`` is passed. Add ``"n_pool"`` and ``"image_size"`` to keep the COCO
pool and the brick small when only the betas matter. Command line:
``python -m brainllm_utils.synth ROOT --preset nsdlike --n-subjects 2 --scale 0.1
--n-pool 200 --image-size 128``. Disk per session on disk ≈ 1.5 GB (983 MB of fsaverage
MGH + ≈ 0.5 GB of gzip-1 NIfTI; uncompressed with ``gzip_level=0``: ≈ 2 GB); the full
``nsdlike`` (8 × 30–40 sessions) needs ≈ 430 GB and about 5 hours. Peak RSS stays below
1 GB whatever the number of subjects and sessions (measured with ``/usr/bin/time -v``,
``--n-pool 200 --image-size 128``, OMP_NUM_THREADS=1 on a shared 2-core machine: 1 subject
× 2 sessions (1 on disk): 781 MB, 94 s, 1.6 GB; 2 subjects × 4 sessions (7 on disk):
848 MB, 386 s, 10.4 GB). Generation time: ≈ 50 s per session (both spaces).

Notes for readers of the tree
-----------------------------
- Volume ROI files hold −1 outside cortex, 0 in unlabelled cortex, 1..N labels; in
  ``lh.*``/``rh.*`` the other hemisphere's voxels are −1.
- ``ncsnr`` follows NSD (§4): per-session z-scoring, images with exactly 3 trials among the
  acquired sessions, ``ncsnr = sqrt(max(0, 1 − v²)) / v``. Volume voxels outside the brain
  mask get 0; fsaverage vertices that are NaN in the betas get NaN.
- The expdesign, CSV and COCO files cover all 8 subjects; betas, masks, ROIs and
  responses exist only for the subjects with data.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from .._utils.docs import fill_doc
from .._utils.paths import atomic_save_npy, atomic_write_text, fault_point, pid_alive
from ..nsd.layout import (
    ANNOTATIONS,
    BETA_VERSION,
    COCO_DIR,
    EXPDESIGN,
    N_SUBJECTS,
    NSD_SESSIONS,
    SHARED1000,
    STIM_INFO,
    STIMULI,
    STREAMS_LABELS,
    beta_dir,
    responses_file,
    subject_name,
)
from ..features.weights import MINILM, MPNET, canonical_name
from . import _mesh, _scenes
from ._stream import MghTrialWriter, NiftiTrialWriter
from ._truth import SANDBOX_FORMAT, TRUTH_DIR

__all__ = ["PRESETS", "OPTIONS", "MODEL_OPTIONS", "PLANTED_SPACES", "POSITIVE_ROI_SPACES", "POSITIVE_SENTENCE_MODEL",
           "SHARED_TUNING", "COCO_SIZES", "NSD_GRIDS", "ROI_SPACES", "Design", "compute_ncsnr", "make_synthetic_nsd", "main", "BETAS", "CTABS",
           "GENERATIVE_MODEL", "NSDGENERAL_RADIUS", "N_SUBJECTS", "RESPONSE_COLUMNS", "ROI_ORDER", "SNR_RANGES",
           "STREAMS_NAMES", "STREAMS_SEEDS", "VOLUME_ROIS"]

#: The beta version folder the sandbox writes (NSD's, :data:`brainllm_utils.nsd.BETA_VERSION`).
BETAS = BETA_VERSION

#: Generation presets. ``data_sessions``: subject -> number of acquired sessions.
PRESETS = {
    # 3 captions per image (COCO has 5): the book's cold build on 2 CPU cores is bound by
    # MPNet (~20 captions/s per core), so the default sandbox embeds ~60 % of the captions
    "default": dict(data_sessions={1: 3, 2: 3, 3: 3, 4: 2}, trials_per_session=750, n_shared=150,
                    n_strict=100, image_size=96, n_pool=2000, n_captions=3, shared_reversal_pairs=10,
                    subject_reversal_pairs=10,
                    grids={1: (24, 28, 22), 2: (25, 27, 22), 3: (24, 29, 21), 4: (26, 27, 23)},
                    nan_vertices={2: 2}, zeroed_voxels={1: (2, 3)}),
    "tiny": dict(data_sessions={1: 3, 2: 3, 3: 2}, trials_per_session=60, n_shared=12,
                 n_strict=8, image_size=32, n_pool=40, shared_reversal_pairs=1,
                 subject_reversal_pairs=1,
                 grids={1: (10, 12, 9), 2: (11, 11, 9), 3: (10, 12, 10)},
                 nan_vertices={2: 2}, zeroed_voxels={1: (2, 3)}),
}

#: NSD's 1.8 mm grids per subject (nsd_layout.md §5).
NSD_GRIDS = {1: (81, 104, 83), 2: (82, 106, 84), 3: (81, 106, 82), 4: (85, 99, 80),
             5: (79, 97, 78), 6: (85, 113, 83), 7: (78, 95, 81), 8: (80, 103, 78)}
#: COCO-like native (width, height) of the JPEGs when ``coco_native_sizes`` is on.
COCO_SIZES = [(640, 480), (500, 375), (427, 640), (480, 640), (640, 427), (375, 500), (612, 612),
              (640, 360), (333, 500)]

#: Quirks and switches usable with any preset (through ``overrides``), with their defaults
#: (all off: the ``default`` and ``tiny`` trees do not change).
OPTIONS = {
    # COCO JPEGs (training pool) and the COCO JSON image sizes of every image at
    # COCO-like native sizes (COCO_SIZES, seeded draw); the NSD brick stays square
    "coco_native_sizes": False,
    # {subject: [sessions]}: listed by the design and responses.tsv, betas not written
    "missing_sessions": {},
    # number of NSD images (and ~as many per pool image) without COCO instance annotations
    "no_instance_images": 0,
    # punctuation, case, whitespace and non-ASCII variety in the captions
    "caption_variety": False,
    # "fsaverage5" (nilearn's, 10,242 vertices per hemisphere) or "fsaverage" (an order-7
    # icosphere, 163,842 per hemisphere, with nsddata/freesurfer/fsaverage/surf/ files)
    "mesh": "fsaverage5",
    # stream the betas (trial batches, per-block random streams; bounded memory at any size)
    "stream": False,
    # gzip level of the streamed betas_sessionNN.nii.gz (0: stored, valid gzip, ~10× faster)
    "gzip_level": 1,
}

# NSD-realistic presets: `scale` multiplies NSD's session counts (40, 40, 32, 30, 40, 32, 40,
# 30; at least 1 each) of the first `n_subjects` subjects; `n_shared` = K // 10 (NSD: 1000
# of 10,000), `n_strict` ≈ 51.5 % of them (NSD's 515), `n_pool` = 48,236 × scale (COCO
# images outside NSD); "last" missing session: the last session of the last subject with ≥ 2
PRESETS["nsdlike"] = dict(
    n_subjects=8, scale=1.0, trials_per_session=750, n_shared=None, n_strict=None, image_size=425,
    n_pool=None, shared_reversal_pairs=20, subject_reversal_pairs=20, grids=NSD_GRIDS,
    nan_vertices={s: 3 for s in (6, 8)} | {2: 2}, zeroed_voxels={1: (1, 5)},
    coco_native_sizes=True, missing_sessions="last", no_instance_images=None, caption_variety=True,
    mesh="fsaverage", stream=True)
PRESETS["nsdlike_small"] = dict(
    PRESETS["nsdlike"], n_subjects=2, data_sessions={1: 1, 2: 2}, image_size=64, n_pool=40,
    shared_reversal_pairs=2, subject_reversal_pairs=2, gzip_level=0)

STREAMS_NAMES = list(STREAMS_LABELS)
#: ROI -> {feature space: variance share}; "other" = nsdgeneral outside the streams. The
#: null world's mixtures: a preset's ``roi_spaces`` replaces some of them (the positive control).
ROI_SPACES = {
    "early": {"lowlevel": 1.0},
    "midventral": {"lowlevel": 0.5, "category": 0.5},
    "midlateral": {"lowlevel": 0.5, "interaction": 0.3, "category": 0.2},
    "midparietal": {"lowlevel": 0.5, "layout": 0.5},
    "ventral": {"category": 1.0},
    "lateral": {"interaction": 0.7, "category": 0.3},
    "parietal": {"layout": 1.0},
    "other": {"lowlevel": 0.25, "category": 0.25, "interaction": 0.25, "layout": 0.25},
}
#: Spaces an ROI's mixture may name: the four scene-graph spaces and ``sentence``, a sentence
#: encoder's embedding of each image's captions (mean over captions), planted only where a
#: preset's ``roi_spaces`` asks for it (computed at generation time with ``sentence_model``).
PLANTED_SPACES = (*_scenes.FEATURE_SPACES, "sentence")
#: Default share of each vertex's (voxel's) tuning that all subjects have in common (preset key
#: ``shared_tuning``): at 0.5 the per-vertex inter-participant agreement on the shared images
#: is clearly positive (about 0.3-0.5 in the streams' ROIs of the default preset, from 0 before)
#: while every subject keeps an individual half, as anatomical alignment on fsaverage is loose.
SHARED_TUNING = 0.5
#: The positive control's ROIs and mixtures (``roi_spaces`` of the ``positive`` presets): the
#: ventral and lateral streams' higher ROIs take half their variance from the sentence space
#: and keep their null-world mixture, halved, for the other half; every other ROI is unchanged.
POSITIVE_ROI_SPACES = {
    "ventral": {"sentence": 0.5, "category": 0.5},
    "lateral": {"sentence": 0.5, "interaction": 0.35, "category": 0.15},
}
#: The positive control's planted sentence encoder: not MPNet, the model the book tests, so
#: that MPNet must find the planted structure through what the two encoders share.
POSITIVE_SENTENCE_MODEL = MINILM
#: Settings of the generative model that any preset can take through ``overrides``, with their
#: defaults; unlike :data:`OPTIONS` they are recorded in the card's own keys.
#: ``shared_tuning``: float in [0, 1]; ``roi_spaces``: {ROI: {space: share}} replacing those
#: ROIs' mixtures in :data:`ROI_SPACES` (shares > 0, summing to 1; spaces from
#: :data:`PLANTED_SPACES`); ``sentence_model``: the encoder of the ``sentence`` space (a name
#: :func:`brainllm_utils.features.embeddings.get_model_spec` resolves offline), needed exactly
#: when an ROI plants ``sentence``.
MODEL_OPTIONS = {"shared_tuning": SHARED_TUNING, "roi_spaces": {}, "sentence_model": None}
# The positive-control world: the default (tiny) preset with the ventral and lateral ROIs
# partly driven by MiniLM's caption embeddings; same seed -> same design, images, captions,
# subjects, noise and per-vertex weights of the other spaces as the default (tiny) preset.
PRESETS["positive"] = dict(PRESETS["default"], roi_spaces=POSITIVE_ROI_SPACES,
                           sentence_model=POSITIVE_SENTENCE_MODEL)
PRESETS["tiny_positive"] = dict(PRESETS["tiny"], roi_spaces=POSITIVE_ROI_SPACES,
                                sentence_model=POSITIVE_SENTENCE_MODEL)
#: ROI -> (low, high) of the uniform draw of the true SNR a_v (before border taper).
SNR_RANGES = {"early": (0.8, 1.5), "midventral": (0.6, 1.2), "midlateral": (0.5, 1.1),
              "midparietal": (0.5, 1.1), "ventral": (0.6, 1.3), "lateral": (0.4, 1.0),
              "parietal": (0.3, 0.9), "other": (0.1, 0.4)}
ROI_ORDER = STREAMS_NAMES + ["other"]

#: Seeds (right hemisphere, MNI-like mm; x mirrored for the left) and geodesic radii (mm,
#: measured on the inflated fsaverage5 mesh) of the streams labels.
STREAMS_SEEDS = {
    1: ([(8, -100, 0), (6, -88, 4), (8, -85, -4)], 30.0),
    2: ([(24, -82, -14)], 20.0),
    3: ([(36, -86, 2)], 20.0),
    4: ([(22, -86, 26)], 20.0),
    5: ([(34, -55, -15), (30, -68, -12)], 28.0),
    6: ([(46, -70, 4), (50, -62, 0)], 26.0),
    7: ([(24, -65, 50), (28, -58, 40)], 28.0),
}
NSDGENERAL_RADIUS = 45.0
#: Volume-only ROIs: name -> list of (label name, seed (right hemisphere, mm)).
VOLUME_ROIS = {
    "prf-visualrois": [("V1v", (8, -92, -6)), ("V1d", (8, -92, 6)), ("V2v", (14, -88, -12)),
                       ("V2d", (14, -88, 14)), ("V3v", (22, -84, -16)), ("V3d", (22, -86, 20)),
                       ("hV4", (30, -78, -14))],
    "floc-faces": [("OFA", (40, -78, -10)), ("FFA-1", (40, -55, -20)), ("FFA-2", (42, -45, -20)),
                   ("mTL-faces", (30, -20, -30)), ("aTL-faces", (35, 0, -35))],
    "floc-bodies": [("EBA", (48, -72, 2)), ("FBA-1", (40, -50, -18)), ("FBA-2", (42, -40, -18)),
                    ("mTL-bodies", (32, -25, -28))],
    "floc-places": [("OPA", (35, -80, 25)), ("PPA", (25, -45, -10)), ("RSC", (12, -55, 10))],
    "floc-words": [("OWFA", (42, -75, -12)), ("VWFA-1", (44, -58, -15)), ("VWFA-2", (45, -48, -15)),
                   ("mfs-words", (38, -40, -18)), ("mTL-words", (35, -28, -25))],
}
CTABS = {"streams": STREAMS_NAMES, "nsdgeneral": ["nsdgeneral"],
         **{roi: [name for name, _ in seeds] for roi, seeds in VOLUME_ROIS.items()}}
#: pseudo-mm extent of the fsaverage pial surface the volume grid is stretched over
_BRAIN_BOX = (np.array([-70.0, -106.0, -50.0]), np.array([70.0, 70.0, 80.0]))
RESPONSE_COLUMNS = ["SUBJECT", "SESSION", "RUN", "TRIAL", "73KID", "10KID", "TIME", "ISOLD",
                    "ISCORRECT", "RT", "CHANGEMIND", "MEMORYRECENT", "MEMORYFIRST", "ISOLDCURRENT",
                    "ISCORRECTCURRENT", "TOTAL1", "TOTAL2", "BUTTON", "MISSINGDATA"]


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------


def _rng(seed, *keys):
    """Independent named random stream: ``default_rng(SeedSequence([seed, *crc32(keys)]))``."""
    ints = [zlib.crc32(str(k).encode()) for k in keys]
    return np.random.default_rng(np.random.SeedSequence([int(seed), *ints]))


def _affine(shape):
    """NSD func1pt8mm affine (nsdcode's writer): 1.8 mm, centred."""
    A = np.diag([1.8, 1.8, 1.8, 1.0])
    A[:3, 3] = -(((1 + np.asarray(shape, float)) / 2) - 1) * 1.8
    return A


def _save_nifti(path, data, affine):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    img = nib.Nifti1Image(data, affine)
    img.header.set_data_dtype(data.dtype)
    nib.save(img, path)


def _save_mgh(path, data):
    import nibabel as nib

    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.MGHImage(data, np.eye(4)), path)


_KNOWN_KEYS = {"data_sessions", "trials_per_session", "n_shared", "n_strict", "image_size", "n_pool",
               "n_captions", "shared_reversal_pairs", "subject_reversal_pairs", "grids", "nan_vertices",
               "zeroed_voxels", "n_subjects", "scale", *OPTIONS, *MODEL_OPTIONS}


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, bool)


def _check_data_sessions(ds):
    if not isinstance(ds, dict) or not ds:
        raise ValueError(f"data_sessions must be a non-empty dict subject -> sessions, got {ds!r}")
    for s, n in ds.items():
        if not _is_int(s) or not 1 <= s <= N_SUBJECTS or not _is_int(n) or n < 1:
            raise ValueError(f"data_sessions: need subject in 1..{N_SUBJECTS} -> sessions >= 1, got {s!r}: {n!r}")


def _resolve_nsdlike(cfg, overrides):
    """Fill the derived sizes of the nsdlike presets (data_sessions from n_subjects × scale)."""
    n_sub, scale = cfg["n_subjects"], cfg["scale"]
    if not _is_int(n_sub) or not 1 <= n_sub <= N_SUBJECTS:
        raise ValueError(f"n_subjects must be an int in 1..{N_SUBJECTS}, got {n_sub!r}")
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale <= 1:
        raise ValueError(f"scale must be a number in (0, 1], got {scale!r}")
    if "data_sessions" not in overrides and ("n_subjects" in overrides or "scale" in overrides
                                             or "data_sessions" not in cfg):
        cfg["data_sessions"] = {s: max(1, int(np.floor(NSD_SESSIONS[s] * scale + 0.5)))
                                for s in range(1, n_sub + 1)}
    if cfg.get("n_pool") is None:
        cfg["n_pool"] = max(20, int(round(48236 * scale)))
    if cfg["missing_sessions"] == "last":
        multi = [s for s, n in sorted(cfg["data_sessions"].items()) if n >= 2]
        cfg["missing_sessions"] = {multi[-1]: [cfg["data_sessions"][multi[-1]]]} if multi else {}


def _check_arguments(root, preset, seed, overwrite, overrides, progress):
    """The arguments of :func:`make_synthetic_nsd`: types and ranges, each named when wrong."""
    if not isinstance(root, (str, os.PathLike)) or not str(root):
        raise ValueError(f"root={root!r}: expected a folder path (str or path-like)")
    if not isinstance(preset, str):
        raise ValueError(f"preset={preset!r}: expected one of {sorted(PRESETS)}")
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed={seed!r}: expected an integer ≥ 0 (numpy's SeedSequence)")
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite={overwrite!r}: expected True or False")
    if overrides is not None and not isinstance(overrides, dict):
        raise ValueError(f"overrides={overrides!r}: expected a dict of preset keys (known: {sorted(_KNOWN_KEYS)})")
    if progress is not None and not isinstance(progress, bool):
        raise ValueError(f"progress={progress!r}: expected True, False or None")


def _resolve_preset(preset, overrides):
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - _KNOWN_KEYS)
    if unknown:
        raise ValueError(f"unknown overrides {unknown} (keys of the overrides argument); known: {sorted(_KNOWN_KEYS)}")
    cfg = {**OPTIONS, **MODEL_OPTIONS, **PRESETS[preset], **overrides}
    cfg["name"] = preset
    _check_model_options(cfg)
    if "n_subjects" in cfg:
        _resolve_nsdlike(cfg, overrides)
    _check_data_sessions(cfg["data_sessions"])
    T = cfg["trials_per_session"]
    if not _is_int(T) or T < 12:
        raise ValueError(f"trials_per_session must be an int >= 12, got {T!r}")
    D = max(cfg["data_sessions"].values())
    if (D * T) % 3:
        raise ValueError("max(data_sessions) * trials_per_session must be divisible by 3")
    K = D * T // 3
    if cfg["n_shared"] is None:
        cfg["n_shared"] = max(1, K // 10)
    if cfg["n_strict"] is None:
        cfg["n_strict"] = max(1, int(round(0.515 * cfg["n_shared"])))
    S = cfg["n_shared"]
    if not 0 < S < K:
        raise ValueError("need 0 < n_shared < K")
    size = cfg["image_size"]
    if not _is_int(size) or size < 32 or (size % 32 and not cfg["stream"]):
        raise ValueError(f"image_size must be a multiple of 32 (any int >= 32 with stream=True), got {size!r}")
    missing = cfg["missing_sessions"]
    if not isinstance(missing, dict):
        raise ValueError(f"missing_sessions must be a dict subject -> [sessions], got {missing!r}")
    for s, sessions in missing.items():
        n = cfg["data_sessions"].get(s)
        if n is None:
            raise ValueError(f"missing_sessions: subject {s!r} has no data (data_sessions: {cfg['data_sessions']})")
        bad = [x for x in sessions if not _is_int(x) or not 1 <= x <= n]
        if bad or len(set(sessions)) >= n:
            raise ValueError(f"missing_sessions[{s}]: need distinct sessions in 1..{n}, leaving at least one "
                             f"on disk; got {list(sessions)}")
    N = S + N_SUBJECTS * (K - S)
    n_none = cfg["no_instance_images"]
    if n_none is None:  # nsdlike: ~1 % of the images, as COCO has ~1 % without instances
        n_none = cfg["no_instance_images"] = max(1, N // 100)
    if not _is_int(n_none) or not 0 <= n_none <= N:
        raise ValueError(f"no_instance_images must be an int in 0..{N}, got {n_none!r}")
    for key in ("coco_native_sizes", "caption_variety", "stream"):
        if not isinstance(cfg[key], bool):
            raise ValueError(f"{key} must be True or False, got {cfg[key]!r}")
    if not _is_int(cfg["gzip_level"]) or not 0 <= cfg["gzip_level"] <= 9:
        raise ValueError(f"gzip_level must be an int in 0..9, got {cfg['gzip_level']!r}")
    if cfg["mesh"] not in ("fsaverage5", "fsaverage"):
        raise ValueError(f"mesh must be 'fsaverage5' or 'fsaverage', got {cfg['mesh']!r}")
    if cfg["mesh"] == "fsaverage" and not cfg["stream"]:
        raise ValueError("mesh='fsaverage' (163,842 vertices per hemisphere) needs stream=True")
    no_grid = sorted(set(cfg["data_sessions"]) - set(cfg["grids"]))
    if no_grid:
        raise ValueError(f"grids: no volume grid for subjects {no_grid}")
    cfg.update(D=D, K=K, N=N, T=T, S=S)
    return cfg


def _is_number(x):
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, (bool, np.bool_))


def _check_model_options(cfg):
    """Validate :data:`MODEL_OPTIONS` in ``cfg``; set ``cfg["mixtures"]``, every ROI's mixture."""
    share = cfg["shared_tuning"]
    if not _is_number(share) or not np.isfinite(share) or not 0 <= share <= 1:
        raise ValueError(f"shared_tuning must be a finite number in [0, 1] (the share of each vertex's "
                         f"tuning common to all subjects), got {share!r}")
    cfg["shared_tuning"] = float(share)
    spaces = cfg["roi_spaces"]
    if not isinstance(spaces, dict):
        raise ValueError(f"roi_spaces must be a dict ROI -> {{space: share}}, got {spaces!r}")
    mixtures = {roi: dict(mix) for roi, mix in ROI_SPACES.items()}
    for roi, mix in spaces.items():
        if roi not in ROI_SPACES:
            raise ValueError(f"roi_spaces: unknown ROI {roi!r}; choose from {ROI_ORDER}")
        if not isinstance(mix, dict) or not mix:
            raise ValueError(f"roi_spaces[{roi!r}] must be a non-empty dict space -> share, got {mix!r}")
        for space, w in mix.items():
            if space not in PLANTED_SPACES:
                raise ValueError(f"roi_spaces[{roi!r}]: unknown space {space!r}; choose from {list(PLANTED_SPACES)}")
            if not _is_number(w) or not np.isfinite(w) or w <= 0:
                raise ValueError(f"roi_spaces[{roi!r}][{space!r}] must be a finite number > 0 (leave a space "
                                 f"out instead of giving it 0), got {w!r}")
        total = float(sum(mix.values()))
        if abs(total - 1) > 1e-6:
            raise ValueError(f"roi_spaces[{roi!r}]: the shares must sum to 1 (variance shares of the ROI's "
                             f"signal), got {total:g} from {mix}")
        mixtures[roi] = {space: float(w) for space, w in mix.items()}
    planted = [roi for roi, mix in mixtures.items() if "sentence" in mix]
    model = cfg["sentence_model"]
    if planted and model is None:
        raise ValueError(f"roi_spaces plants 'sentence' in {planted} but sentence_model is None; name the "
                         f"sentence encoder (e.g. {MINILM!r})")
    if model is not None:
        if not isinstance(model, str) or not model:
            raise ValueError(f"sentence_model must be a model name (str) or None, got {model!r}")
        if not planted:
            raise ValueError(f"sentence_model={model!r} but no ROI plants 'sentence' (roi_spaces "
                             f"{spaces!r}): it would be computed for nothing")
        if canonical_name(model) == MPNET:
            warnings.warn(f"sentence_model={model!r} is the model the book tests: a positive control "
                          "planted with it is circular (the positive presets use MiniLM)", UserWarning,
                          stacklevel=4)
    cfg["mixtures"] = mixtures


def _quirks(cfg):
    """The options that differ from :data:`OPTIONS` (for the truth card)."""
    return {k: cfg[k] for k in OPTIONS if cfg[k] != OPTIONS[k]}


# --------------------------------------------------------------------------------------
# Design (expdesign, CSV, responses)
# --------------------------------------------------------------------------------------


@dataclass
class Design:
    """Experimental design; all index arrays follow NSD's bases (see nsd_layout.md §2).

    Attributes
    ----------
    masterordering : ndarray of int of shape (n_sessions * T,)
        1-based indices into the rows of ``subjectim`` (the 10k index of each trial), the
        same for every subject.
    subjectim : ndarray of int64 of shape (8, K)
        1-based 73k ids of each subject's images (shared images first).
    sharedix : ndarray of int of shape (n_shared,)
        Sorted 1-based 73k ids of the images shown to every subject.
    data_sessions : dict of int to int
        Subject number (1-based) → number of acquired sessions.
    T : int
        Trials per session.
    strict_nsd_ids : ndarray of int of shape (n_strict,)
        0-based nsdIds of the strict shared set (shared images with all three showings
        within the sessions that every subject with data acquired); ``None`` until set by
        the generator.
    """

    masterordering: np.ndarray  # (D*T,) 1-based indices into subjectim rows
    subjectim: np.ndarray  # (8, K) 1-based 73k ids
    sharedix: np.ndarray  # (S,) sorted 1-based 73k ids
    data_sessions: dict
    T: int
    strict_nsd_ids: np.ndarray = field(default=None)  # 0-based nsdIds of the strict shared set

    @property
    def K(self):
        """Images per subject (columns of ``subjectim``)."""
        return self.subjectim.shape[1]

    @property
    def N(self):
        """Number of NSD images (the largest 73k id)."""
        return int(self.subjectim.max())

    def trials(self, subject):
        """(10k index q, 1-based 73k id) of each acquired trial of ``subject``.

        Parameters
        ----------
        subject : int
            1-based subject number (a key of ``data_sessions``).

        Returns
        -------
        q : ndarray of int of shape (n_trials,)
            1-based index into the subject's images, per trial in acquisition order.
        ids : ndarray of int64 of shape (n_trials,)
            1-based 73k id of each trial's image.
        """
        n = self.data_sessions[subject] * self.T
        q = self.masterordering[:n]
        return q, self.subjectim[subject - 1, q - 1]


def _make_masterordering(rng, cfg):
    """Each of 1..K exactly 3× over D·T trials; ``n_strict`` shared indices have all three
    showings within the first min(n_sessions)·T trials, the other shared ones at least one
    later; everything else placed at random."""
    T, D, K, S = cfg["T"], cfg["D"], cfg["K"], cfg["S"]
    m = min(cfg["data_sessions"].values())
    n_first = m * T
    shared = rng.permutation(np.arange(1, S + 1))
    n_strict = S if m == D else min(cfg["n_strict"], S, n_first // 3)
    strict, loose = shared[:n_strict], shared[n_strict:]
    first = list(np.repeat(strict, 3))
    rest = list(loose) if m < D else []
    free = np.concatenate([np.repeat(loose, 3 - (m < D)), np.repeat(np.arange(S + 1, K + 1), 3)])
    free = rng.permutation(free)
    k = n_first - len(first)
    first = np.concatenate([first, free[:k]]).astype(np.int64)
    rest = np.concatenate([rest, free[k:]]).astype(np.int64)
    return np.concatenate([rng.permutation(first), rng.permutation(rest)])


def _make_design(cfg, seed):
    rng = _rng(seed, "design")
    K, S, N = cfg["K"], cfg["S"], cfg["N"]
    mo = _make_masterordering(rng, cfg)
    ids = rng.permutation(np.arange(1, N + 1))
    sharedix = np.sort(ids[:S])
    others = ids[S:].reshape(N_SUBJECTS, K - S)
    subjectim = np.concatenate([np.broadcast_to(sharedix, (N_SUBJECTS, S)), others], axis=1)
    design = Design(mo, subjectim.astype(np.int64), sharedix, dict(cfg["data_sessions"]), cfg["T"])
    m = min(cfg["data_sessions"].values())
    counts = np.bincount(mo[: m * cfg["T"]], minlength=K + 1)
    strict_q = np.flatnonzero(counts[1 : S + 1] == 3) + 1
    design.strict_nsd_ids = np.sort(sharedix[strict_q - 1] - 1)
    return design


def _write_expdesign(tree, design):
    from scipy.io import savemat

    path = tree / EXPDESIGN
    path.parent.mkdir(parents=True, exist_ok=True)
    savemat(path, {"masterordering": design.masterordering[None, :].astype(np.float64),
                   "subjectim": design.subjectim.astype(np.float64),
                   "sharedix": design.sharedix[None, :].astype(np.float64)})


def _rep_trials(design):
    """(K, 3) sorted 1-based global trial numbers of the three showings of each index."""
    order = np.argsort(design.masterordering, kind="stable")
    return (order.reshape(design.K, 3) + 1)  # masterordering sorted: each q exactly 3×


def _write_stim_info(tree, seed, design, coco_ids, splits):
    import pandas as pd

    rng = _rng(seed, "stim_info")
    N = design.N
    nsd = np.arange(N)
    crops = ["(0, 0, 0.1, 0.1)", "(0, 0, 0.125, 0.125)", "(0.1, 0.1, 0, 0)", "(0, 0, 0, 0)",
             "(0.05, 0.05, 0.1, 0.1)"]
    cols = {"cocoId": coco_ids, "cocoSplit": splits,
            "cropBox": [crops[i] for i in rng.integers(len(crops), size=N)],
            "loss": np.round(rng.uniform(0, 0.2, N) * (rng.random(N) < 0.3), 4),
            "nsdId": nsd, "flagged": np.zeros(N, bool), "BOLD5000": rng.random(N) < 0.02,
            "shared1000": np.isin(nsd + 1, design.sharedix)}
    reps = _rep_trials(design)
    rep_cols = {}
    for s in range(1, N_SUBJECTS + 1):
        ids0 = design.subjectim[s - 1] - 1
        member = np.zeros(N, np.int64)
        member[ids0] = 1
        cols[f"subject{s}"] = member
        r = np.zeros((N, 3), np.int64)
        r[ids0] = reps
        for j in range(3):
            rep_cols[f"subject{s}_rep{j}"] = r[:, j]
    df = pd.DataFrame({**cols, **rep_cols})
    path = tree / STIM_INFO
    df.to_csv(path)


def _run_sizes(T):
    """Split T trials over 12 runs, odd runs taking the extra trials (750 -> 63/62)."""
    base, extra = divmod(T, 12)
    sizes = np.full(12, base)
    order = list(range(0, 12, 2)) + list(range(1, 12, 2))
    sizes[order[:extra]] += 1
    return sizes


def _write_responses(tree, seed, design, subject):
    import pandas as pd

    rng = _rng(seed, "responses", subject)
    q, k73 = design.trials(subject)
    n = len(q)
    T = design.T
    sizes = _run_sizes(T)
    run_of = np.repeat(np.arange(1, 13), sizes)
    trial_of = np.concatenate([np.arange(1, s + 1) for s in sizes])
    k = np.arange(n) % T
    session = np.arange(n) // T + 1
    seen, first_seen, session_seen = {}, {}, set()
    isold = np.zeros(n, np.int64)
    isoldcur = np.zeros(n, np.int64)
    recent = np.full(n, np.nan)
    firstm = np.full(n, np.nan)
    for t in range(n):
        key = int(q[t])
        if key in seen:
            isold[t] = 1
            recent[t] = t - seen[key]
            firstm[t] = t - first_seen[key]
        else:
            first_seen[key] = t
        if (session[t], key) in session_seen:
            isoldcur[t] = 1
        session_seen.add((session[t], key))
        seen[key] = t
    missing = rng.random(n) < 0.01
    correct = (rng.random(n) < 0.85).astype(float)
    button = np.where(correct == 1, 2 - isold, 1 + isold).astype(float)
    rt = rng.gamma(9.0, 90.0, n)
    for arr in (correct, button, rt):
        arr[missing] = np.nan
    df = pd.DataFrame({
        "SUBJECT": subject, "SESSION": session, "RUN": run_of[k], "TRIAL": trial_of[k],
        "73KID": k73, "10KID": q,
        "TIME": 737000.0 + session * 7 + run_of[k] * 0.004 + trial_of[k] * 4.0 / 86400,
        "ISOLD": isold, "ISCORRECT": correct, "RT": rt, "CHANGEMIND": (rng.random(n) < 0.02).astype(float),
        "MEMORYRECENT": recent, "MEMORYFIRST": firstm, "ISOLDCURRENT": isoldcur,
        "ISCORRECTCURRENT": correct, "TOTAL1": (~missing).astype(float), "TOTAL2": (~missing).astype(float),
        "BUTTON": button, "MISSINGDATA": missing.astype(np.int64),
    })[RESPONSE_COLUMNS]
    for c in ("ISCORRECT", "CHANGEMIND", "MEMORYRECENT", "MEMORYFIRST", "ISCORRECTCURRENT",
              "TOTAL1", "TOTAL2", "BUTTON"):
        df[c] = df[c].astype("Int64")
    df["CHANGEMIND"] = df["CHANGEMIND"].mask(missing)
    path = tree / responses_file(subject)
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, sep="\t", index=False, na_rep="NaN", float_format="%.6f")


# --------------------------------------------------------------------------------------
# Scenes, images, captions, COCO files
# --------------------------------------------------------------------------------------


def _reversal_pairs(rng, cfg, design):
    """Pairs (a, b) of nsdIds, a < b, for role-reversed scenes: some within the shared
    images, the others within each subject's own images."""
    pools = [(design.sharedix - 1, cfg["shared_reversal_pairs"])]
    pools += [(design.subjectim[s, design.sharedix.size:] - 1, cfg["subject_reversal_pairs"])
              for s in range(N_SUBJECTS)]
    pairs = []
    for ids, n in pools:
        chosen = rng.choice(ids, size=2 * n, replace=False).reshape(n, 2)
        pairs += [tuple(sorted(map(int, p))) for p in chosen]
    return sorted(pairs)


def _make_graphs(rng, n, pairs=()):
    """Scene graphs (with layout) for ``n`` images; ``b`` of each pair is ``a`` reversed."""
    partner = {b: a for a, b in pairs}
    starts = {a for a, _ in pairs}
    graphs = []
    for i in range(n):
        if i in partner:
            graphs.append(_scenes.reverse_roles(graphs[partner[i]]))
            continue
        g = _scenes.sample_scene_graph(rng, reversible=i in starts)
        graphs.append(_scenes.layout_scene(rng, g))
    return graphs


def _render_all(seed, tag, graphs, size, progress=None):
    rng = _rng(seed, "render", tag)
    images = np.empty((len(graphs), size, size, 3), np.uint8)
    for i, g in enumerate(graphs):
        images[i] = _scenes.render_image(rng, g, size, size)
        if progress is not None:
            progress.update(1)
    return images


def _captions(seed, graphs, pairs=(), tag="nsd", n_max=None, variety=False):
    """Captions per image; the two images of a reversal pair share the caption stream (and,
    with ``variety``, the same untidiness)."""
    key = {b: a for a, b in pairs}
    u = _rng(seed, "captions", tag).random((len(graphs), _scenes.CAPTION_RANDOMS))
    caps = [_scenes.make_captions(g, u[key.get(i, i)], n_max) for i, g in enumerate(graphs)]
    if variety:
        v = _rng(seed, "caption-variety", tag).random((len(graphs), 6, _scenes.VARIETY_RANDOMS))
        caps = [[_scenes.vary_caption(c, v[key.get(i, i), j]) for j, c in enumerate(cs)]
                for i, cs in enumerate(caps)]
    return caps


def _stamp_ids(images):
    ids = np.arange(len(images))
    images[:, 0, 0] = np.stack([ids >> 16, (ids >> 8) & 255, ids & 255], axis=1)


def _write_stimuli(tree, design, images):
    import h5py
    from PIL import Image

    path = tree / STIMULI
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        fh.create_dataset("imgBrick", data=images, chunks=(1, *images.shape[1:]),
                          compression="gzip", compression_opts=1)
    folder = tree / SHARED1000
    folder.mkdir(parents=True, exist_ok=True)
    for i, nsd73 in enumerate(design.sharedix, start=1):
        Image.fromarray(images[nsd73 - 1]).save(folder / f"shared{i:04d}_nsd{nsd73:05d}.png")


def _coco_json(kind, split, entries):
    """One COCO 2017-style JSON dict (``kind`` = captions or instances)."""
    out = {"info": {"description": "brainllm synthetic COCO-style annotations", "version": "1.0",
                    "year": 2017, "contributor": "brainllm sandbox", "date_created": "2017/09/01"},
           "licenses": [{"url": "https://creativecommons.org/licenses/by/4.0/", "id": 1,
                         "name": "Attribution License"}],
           "images": [], "annotations": []}
    for e in entries:
        if e["split"] != split:
            continue
        out["images"].append({"license": 1, "file_name": f"{e['coco_id']:012d}.jpg", "coco_url": "",
                              "height": e["height"], "width": e["width"], "date_captured": "2013-11-14 11:18:45",
                              "flickr_url": "", "id": e["coco_id"]})
        out["annotations"] += e[kind]
    if kind == "instances":
        out["categories"] = [{"supercategory": sup, "id": cid, "name": name}
                             for name, (cid, sup, _, _) in sorted(_scenes.CATEGORIES.items(), key=lambda kv: kv[1][0])]
    return out


def _coco_entries(graphs, captions, coco_ids, splits, sizes, counters, no_instances=()):
    """COCO annotations per image; ``sizes`` = (width, height) per image (boxes in its
    pixels); images in ``no_instances`` (indices) get no instance annotation."""
    entries = []
    no_instances = set(int(i) for i in no_instances)
    for i, (g, caps, cid, split) in enumerate(zip(graphs, captions, coco_ids, splits)):
        W, H = (int(x) for x in sizes[i])
        cap_anns = []
        for c in caps:
            counters["caption"] += 1
            cap_anns.append({"image_id": int(cid), "id": counters["caption"], "caption": c})
        inst = []
        for obj in ([] if i in no_instances else g["objects"]):
            for x0, y0, x1, y1 in obj["boxes"]:
                x0, x1 = np.clip([x0 * W, x1 * W], 0, W)
                y0, y1 = np.clip([y0 * H, y1 * H], 0, H)
                w, h = float(x1 - x0), float(y1 - y0)
                if w <= 0 or h <= 0:
                    continue
                counters["instance"] += 1
                box = [round(float(x0), 2), round(float(y0), 2), round(w, 2), round(h, 2)]
                poly = [box[0], box[1], box[0] + w, box[1], box[0] + w, box[1] + h, box[0], box[1] + h]
                inst.append({"segmentation": [[round(v, 2) for v in poly]], "area": round(w * h, 2),
                             "iscrowd": 0, "image_id": int(cid), "bbox": box,
                             "category_id": _scenes.CATEGORIES[obj["category"]][0],
                             "id": counters["instance"]})
        entries.append({"coco_id": int(cid), "split": split, "captions": cap_anns, "instances": inst,
                        "width": W, "height": H})
    return entries


def _write_coco(tree, entries):
    folder = tree / ANNOTATIONS
    folder.mkdir(parents=True, exist_ok=True)
    for kind in ("captions", "instances"):
        for split in ("train2017", "val2017"):
            text = json.dumps(_coco_json(kind, split, entries))
            atomic_write_text(folder / f"{kind}_{split}.json", text)


def _write_pool_jpegs(tree, seed, graphs, coco_ids, splits, sizes, progress=None):
    """Render the pool images one at a time (``sizes``: (width, height) each) and save them.

    Same random stream as :func:`_render_all` with tag ``pool``: square sizes give the
    same pixels."""
    from PIL import Image

    rng = _rng(seed, "render", "pool")
    for g, cid, split, (W, H) in zip(graphs, coco_ids, splits, sizes):
        img = _scenes.render_image(rng, g, int(H), int(W))
        folder = tree / COCO_DIR / split
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(folder / f"{cid:012d}.jpg", quality=95)
        _tick(progress)


def _coco_sizes(seed, tag, n, square, native):
    """(width, height) per image: ``square`` × ``square``, or drawn from :data:`COCO_SIZES`."""
    if not native:
        return np.full((n, 2), square, np.int64)
    pick = _rng(seed, "coco-sizes", tag).integers(len(COCO_SIZES), size=n)
    return np.asarray(COCO_SIZES, np.int64)[pick]


# --------------------------------------------------------------------------------------
# Feature spaces and the voxel model
# --------------------------------------------------------------------------------------


def _feature_spaces(graphs, images=None, lowlevel=None):
    """Z-scored (per dimension, over NSD images) feature matrices, float32 (N, d_s).

    Constant dimensions are set to 0. ``lowlevel``: the images' low-level features when
    already computed (streamed rendering), instead of ``images``.
    """
    raw = {"lowlevel": _scenes.lowlevel_features(images) if lowlevel is None else lowlevel}
    per_graph = [_scenes.graph_features(g) for g in graphs]
    for space in ("category", "interaction", "layout"):
        raw[space] = np.stack([f[space] for f in per_graph])
    out = {}
    for space in _scenes.FEATURE_SPACES:
        x = raw[space].astype(np.float64)
        sd = x.std(axis=0)
        z = np.where(sd > 0, (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1), 0.0)
        out[space] = z.astype(np.float32)
    return out


def _sentence_space(captions, model, progress=False):
    """The planted ``sentence`` space: (N, d) float32 and its description for the card.

    Each image's captions (as written to the COCO JSON) are embedded with the package's
    sentence encoder (:func:`brainllm_utils.features.embeddings.embed_captions`: the model's
    own pooling and normalisation, mean over the image's captions as the paper), on the CPU
    in float32 so that a seed gives the same numbers on any machine. The embeddings are
    centred per dimension and divided by one scalar, the root mean variance over dimensions:
    unlike the z-scored scene-graph spaces, the encoder's own geometry is kept.
    """
    from ..features.embeddings import embed_captions, get_model_spec
    from ..features.weights import sha256_file

    spec = get_model_spec(model)
    X = embed_captions(captions, model=model, device="cpu", precision="fp32", cache=True,
                       progress=bool(progress)).astype(np.float64)
    X -= X.mean(axis=0)
    rms = float(np.sqrt(X.var(axis=0).mean()))
    if not np.isfinite(rms) or rms == 0:
        raise ValueError(f"sentence_model={model!r}: the caption embeddings do not vary over the images")
    weights = spec.path / "model.safetensors"
    config = json.loads((spec.path / "config.json").read_text())
    n_layers = config.get("num_hidden_layers")
    info = {"model": spec.name, "weights_sha256": sha256_file(weights) if weights.is_file() else None,
            "dim": int(spec.dim),
            "layer": f"last hidden layer ({n_layers} of {n_layers})" if n_layers else "last hidden layer",
            "pooling": "+".join(spec.pooling) + " over the tokens (attention mask)",
            "normalize": bool(spec.normalize), "max_seq_length": int(spec.max_seq_length),
            "device": "cpu", "precision": "fp32",
            "captions": "each NSD image's captions as written to the COCO captions JSON",
            "aggregation": "mean of the image's caption embeddings (not re-normalised)",
            "scaling": f"centred per dimension, divided by the root mean variance over dimensions ({rms:.6g})"}
    return (X / rms).astype(np.float32), info


class _SharedTuning:
    """The part of each unit's tuning that every subject has in common.

    A unit's weights on space s are ``sqrt(c) · S_s[:, u] + sqrt(1 − c) · I`` with ``I`` the
    subject's own draw and ``S_s[:, u]`` a column common to all subjects: ``u`` is the
    fsaverage vertex (or, for a voxel, the nearest fsaverage5 vertex), and the columns come
    in blocks of :data:`_BLOCK` from one random stream per (space, block), so that any unit's
    column can be drawn on its own. ``cache``: keep the blocks drawn (fsaverage5-sized meshes).
    """

    def __init__(self, seed, share, cache=True):
        self.seed, self.share = seed, float(share)
        self.a = np.float32(np.sqrt(1.0 - self.share))
        self.b = np.float32(np.sqrt(self.share))
        self.cache = {} if cache else None

    def _block(self, space, d, k):
        key = (space, d, int(k))
        if self.cache is not None and key in self.cache:
            return self.cache[key]
        block = _rng(self.seed, "shared-tuning", space, int(k)).standard_normal((d, _BLOCK), dtype=np.float32)
        if self.cache is not None:
            self.cache[key] = block
        return block

    def columns(self, space, d, units):
        """(d, len(units)) float32: the shared columns of ``units`` for a space of ``d`` dims."""
        units = np.asarray(units, np.int64)
        out = np.empty((d, units.size), np.float32)
        block_of = units // _BLOCK
        order = np.argsort(block_of, kind="stable")
        bounds = np.flatnonzero(np.diff(block_of[order])) + 1
        for sel in np.split(order, bounds) if units.size else []:
            k = block_of[sel[0]]
            out[:, sel] = self._block(space, d, k)[:, units[sel] - k * _BLOCK]
        return out

    def mix(self, space, P, units):
        """Individual weights ``P`` (d, len(units)) mixed with the shared columns (``P`` if c = 0)."""
        if self.share == 0:
            return P
        return self.a * P + self.b * self.columns(space, P.shape[0], units)


def _signal(rng, features, rows, roi_index, mixtures, tuning, units, extra_rng):
    """Unit-variance signal f (len(rows), V) for voxels with ROI ``roi_index`` (−1: none).

    Parameters
    ----------
    rng : the subject's random stream of the weights on the scene-graph spaces
    features : dict of (N, d_s) arrays
    rows : (K,) int array, nsdIds of the subject's images (the signal is standardised
        over these)
    roi_index : (V,) int array into :data:`ROI_ORDER`, −1 for voxels without signal
    mixtures : ROI -> {space: share}
    tuning : :class:`_SharedTuning`
    units : (V,) int array, the shared-tuning unit of each voxel (see :class:`_SharedTuning`)
    extra_rng : space -> random stream of the subject's weights on a space beyond the four
        scene-graph ones (its own stream: the others' draws do not move)
    """
    V = roi_index.size
    f = np.zeros((rows.size, V), np.float32)
    for space in PLANTED_SPACES:
        if space not in features:
            continue
        mix = np.array([mixtures[r].get(space, 0.0) for r in ROI_ORDER] + [0.0])
        w = mix[roi_index]
        cols = np.flatnonzero(w > 0)
        if cols.size == 0:
            continue
        X = features[space][rows]
        r = rng if space in _scenes.FEATURE_SPACES else extra_rng(space)
        P = tuning.mix(space, r.standard_normal((X.shape[1], cols.size), dtype=np.float32), units[cols])
        f[:, cols] += np.sqrt(w[cols]).astype(np.float32) * (X @ P) / np.sqrt(X.shape[1])
    sd = f.std(axis=0)
    return np.where(sd > 0, (f - f.mean(axis=0)) / np.where(sd > 0, sd, 1), 0).astype(np.float32)


def _true_snr(rng, roi_index, taper):
    """a_v per voxel: uniform in the ROI's range times (1 − 0.4·taper²); 0 without ROI."""
    lo = np.array([SNR_RANGES[r][0] for r in ROI_ORDER] + [0.0])[roi_index]
    hi = np.array([SNR_RANGES[r][1] for r in ROI_ORDER] + [0.0])[roi_index]
    a = rng.uniform(lo, hi) * (1 - 0.4 * np.clip(taper, 0, 1) ** 2)
    return np.where(roi_index >= 0, a, 0.0).astype(np.float32)


def _simulate_session(rng, snr, signal, active, q):
    """(n_trials, V) float32 PSC betas of one session.

    ``signal`` (K, len(active)) holds f for the voxels ``active``; the others get noise.
    """
    V = snr.size
    beta = rng.standard_normal((q.size, V), dtype=np.float32)
    beta[:, active] += signal[q - 1] * snr[active]
    beta *= rng.uniform(1.0, 3.0, V).astype(np.float32)
    beta += rng.normal(0.0, 1.0, V).astype(np.float32)
    return beta


def compute_ncsnr(sessions, q_sessions):
    """NSD noise-ceiling SNR from per-session betas (nsd_layout.md §4).

    Parameters
    ----------
    sessions : list of array-like of float of shape (n_trials_session, n_voxels)
        Betas of each session, trials in rows.
    q_sessions : list of array-like of int of shape (n_trials_session,)
        The image (10k index) of each trial of each session.

    Returns
    -------
    ncsnr : ndarray of float32 of shape (n_voxels,)
        NaN where a voxel is NaN in every image.
    """
    z = []
    for b in sessions:
        b = np.asarray(b, np.float32)
        with np.errstate(invalid="ignore", divide="ignore"):
            z.append((b - b.mean(axis=0)) / b.std(axis=0))
    Z = np.concatenate(z, axis=0)
    q = np.concatenate(q_sessions)
    order = np.argsort(q, kind="stable")
    counts = np.bincount(q)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    three = np.flatnonzero(counts == 3)
    trials = order[starts[three][:, None] + np.arange(3)]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN voxels
        x1, x2, x3 = (Z[trials[:, j]] for j in range(3))
        m = (x1 + x2 + x3) / 3
        var = np.nanmean(((x1 - m) ** 2 + (x2 - m) ** 2 + (x3 - m) ** 2) / 2, axis=0)
        v = np.sqrt(var)
        ncsnr = np.sqrt(np.maximum(0, 1 - v**2)) / v
    return ncsnr.astype(np.float32)


# --------------------------------------------------------------------------------------
# fsaverage and volume anatomy
# --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _fsaverage5():
    """{hemi: (pial coords (V, 3), inflated coords (V, 3), faces)} from nilearn's bundle."""
    import nibabel as nib

    spec = importlib.util.find_spec("nilearn")
    if spec is None:
        raise ImportError("nilearn is needed for its bundled fsaverage5 mesh")
    folder = Path(spec.submodule_search_locations[0]) / "datasets/data/fsaverage5"
    out = {}
    for hemi in ("left", "right"):
        pial = nib.load(folder / f"pial_{hemi}.gii.gz")
        infl = nib.load(folder / f"infl_{hemi}.gii.gz")
        out[hemi] = (pial.darrays[0].data.astype(np.float64), infl.darrays[0].data.astype(np.float64),
                     pial.darrays[1].data.astype(np.int64))
    return out


def _mesh_graph(coords, faces):
    from scipy.sparse import coo_matrix

    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    w = np.linalg.norm(coords[e[:, 0]] - coords[e[:, 1]], axis=1)
    n = coords.shape[0]
    return coo_matrix((np.r_[w, w], (np.r_[e[:, 0], e[:, 1]], np.r_[e[:, 1], e[:, 0]])), shape=(n, n)).tocsr()


def _mesh_surfaces(mesh):
    """{hemi: (pial coords, inflated coords, faces)} of ``mesh`` (see :data:`OPTIONS`)."""
    if mesh == "fsaverage5":
        return _fsaverage5()
    surfs = _mesh.hemisphere_surfaces(7)
    return {h: (surfs[h]["pial"][0], surfs[h]["inflated"][0], surfs[h]["pial"][1].astype(np.int64))
            for h in ("left", "right")}


@lru_cache(maxsize=2)
def _fsaverage_labels(mesh="fsaverage5"):
    """Per hemisphere: streams (V,) 0..7, nsdgeneral (V,) 0/1, taper (V,) in [0, 1]."""
    from scipy.sparse.csgraph import dijkstra

    out = {}
    for hemi, sign in (("left", -1), ("right", 1)):
        pial, infl, faces = _mesh_surfaces(mesh)[hemi]
        sources, labels, radii = [], [], []
        for label, (seeds, radius) in STREAMS_SEEDS.items():
            for seed in seeds:
                xyz = np.array(seed, float) * [sign, 1, 1]
                sources.append(int(np.argmin(np.linalg.norm(pial - xyz, axis=1))))
                labels.append(label)
                radii.append(radius)
        dist, _, src = dijkstra(_mesh_graph(infl, faces), indices=sources, min_only=True,
                                return_predecessors=True)
        lookup = {s: i for i, s in enumerate(sources)}
        idx = np.array([lookup.get(int(s), -1) for s in src])
        lab = np.where(idx >= 0, np.array(labels)[idx], 0)
        rad = np.where(idx >= 0, np.array(radii)[idx], 0.0)
        streams = np.where(dist <= rad, lab, 0).astype(np.int32)
        nsdgeneral = ((dist <= NSDGENERAL_RADIUS) | (streams > 0)).astype(np.int32)
        taper = np.where(streams > 0, dist / np.maximum(rad, 1e-9), 0.0)
        out[hemi] = (streams, nsdgeneral, taper)
    return out


def _roi_index(streams, nsdgeneral):
    """Index into ROI_ORDER (streams label − 1, 7 = other nsdgeneral, −1 = none)."""
    return np.where(streams > 0, streams - 1, np.where(nsdgeneral > 0, len(STREAMS_NAMES), -1))


def _volume_anatomy(shape):
    """Brain mask, cortex, pseudo-mm coordinates and streams/nsdgeneral/taper per voxel."""
    from scipy.spatial import cKDTree

    shape = np.array(shape)
    ijk = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1).reshape(-1, 3)
    centre = (shape - 1) / 2
    rel = (ijk - centre) / ((shape - 2) / 2)  # ellipsoid leaving a 1-voxel shell
    mask = (rel**2).sum(axis=1) <= 1.0
    lo, hi = _BRAIN_BOX
    mm = (lo + hi) / 2 + rel * (hi - lo) / 2
    fs = _fsaverage5()
    labels = _fsaverage_labels()
    pts = np.concatenate([fs[h][0] for h in ("left", "right")])
    streams = np.concatenate([labels[h][0] for h in ("left", "right")])
    nsdgen = np.concatenate([labels[h][1] for h in ("left", "right")])
    taper = np.concatenate([labels[h][2] for h in ("left", "right")])
    voxel_mm = ((hi - lo) / (shape - 2)).max()
    dist, nearest = cKDTree(pts).query(mm)
    cortex = mask & (dist <= 0.75 * voxel_mm)
    return dict(mask=mask, cortex=cortex, mm=mm, voxel_mm=voxel_mm, nearest=nearest,
                streams=np.where(cortex, streams[nearest], 0), nsdgeneral=np.where(cortex, nsdgen[nearest], 0),
                taper=np.where(cortex, taper[nearest], 0.0))


def _seed_labels(anat, seeds):
    """Label cortex voxels by the nearest seed (both hemispheres) within ~1.2 voxels + 6 mm."""
    pts, labs = [], []
    for k, (_, xyz) in enumerate(seeds, start=1):
        for sign in (-1, 1):
            pts.append(np.array(xyz, float) * [sign, 1, 1])
            labs.append(k)
    cortex = np.flatnonzero(anat["cortex"])  # only cortex voxels get labels: skip the rest
    d = np.linalg.norm(anat["mm"][cortex][:, None, :] - np.array(pts)[None], axis=2)
    best = d.argmin(axis=1)
    near = d[np.arange(len(best)), best] <= 6.0 + 1.2 * anat["voxel_mm"]
    out = np.zeros(anat["cortex"].size, np.int64)
    out[cortex] = np.where(near, np.array(labs)[best], 0)
    return out


def _write_volume_rois(folder, anat, shape, affine):
    rois = {"streams": anat["streams"], "nsdgeneral": anat["nsdgeneral"]}
    rois.update({name: _seed_labels(anat, seeds) for name, seeds in VOLUME_ROIS.items()})
    x = np.arange(shape[0])[:, None, None] * np.ones(shape)
    left = (x < shape[0] / 2).ravel()  # voxel i increases towards +x (right)
    for name, lab in rois.items():
        full = np.where(anat["cortex"], lab, -1).astype(np.int16)
        _save_nifti(folder / f"{name}.nii.gz", full.reshape(shape), affine)
        for hemi, keep in (("lh", left), ("rh", ~left)):
            _save_nifti(folder / f"{hemi}.{name}.nii.gz", np.where(keep, full, -1).astype(np.int16).reshape(shape), affine)


def _write_ctab(path, names):
    lines = ["0 Unknown"] + [f"{i} {n}" for i, n in enumerate(names, start=1)]
    atomic_write_text(path, "\n".join(lines) + "\n")


def _write_label_files(tree, subjects, mesh="fsaverage5"):
    labels = _fsaverage_labels(mesh)
    fs_label = tree / "nsddata/freesurfer/fsaverage/label"
    if mesh != "fsaverage5":  # nilearn has fsaverage5's surfaces; the full mesh's come with the tree
        _mesh.write_surfaces(tree / "nsddata/freesurfer/fsaverage/surf", 7)
    for hemi, h in (("left", "lh"), ("right", "rh")):
        streams, nsdgeneral, _ = labels[hemi]
        _save_mgh(fs_label / f"{h}.streams.mgz", streams.reshape(-1, 1, 1))
        _save_mgh(fs_label / f"{h}.nsdgeneral.mgz", nsdgeneral.reshape(-1, 1, 1))
    for folder in [fs_label] + [tree / f"nsddata/freesurfer/{subject_name(s)}/label" for s in subjects]:
        folder.mkdir(parents=True, exist_ok=True)
        for roi, names in CTABS.items():
            _write_ctab(folder / f"{roi}.mgz.ctab", names)


# --------------------------------------------------------------------------------------
# Per-subject brain data
# --------------------------------------------------------------------------------------


def _subject_signal_rows(design, subject):
    return design.subjectim[subject - 1] - 1  # nsdIds, row q-1 ↔ 10k index q


def _write_fsaverage_subject(tree, seed, cfg, design, features, subject, progress, tuning):
    labels = _fsaverage_labels()
    streams = np.concatenate([labels[h][0] for h in ("left", "right")])
    nsdgen = np.concatenate([labels[h][1] for h in ("left", "right")])
    taper = np.concatenate([labels[h][2] for h in ("left", "right")])
    V = streams.size
    Vh = V // 2
    roi = _roi_index(streams, nsdgen)
    rng = _rng(seed, "fsaverage", subject)
    snr = _true_snr(rng, roi, taper)
    active = np.flatnonzero(roi >= 0)
    signal = _signal(rng, features, _subject_signal_rows(design, subject), roi[active], cfg["mixtures"], tuning,
                     active, lambda space: _rng(seed, "fsaverage-weights", space, subject))
    nan_vertices = np.sort(rng.choice(V, size=cfg["nan_vertices"].get(subject, 0), replace=False))
    folder = tree / beta_dir(subject_name(subject), "fsaverage")
    q_all, _ = design.trials(subject)
    sessions, qs = [], []
    for n in range(1, design.data_sessions[subject] + 1):
        q = q_all[(n - 1) * design.T: n * design.T]
        beta = _simulate_session(_rng(seed, "fsaverage-noise", subject, n), snr, signal, active, q)
        beta[:, nan_vertices] = np.nan
        for h, sl in (() if n in cfg["missing_sessions"].get(subject, ()) else (("lh", slice(0, Vh)), ("rh", slice(Vh, V)))):
            # (T, Vh) C-order == (Vh, 1, 1, T) F-order, the MGH on-disk order: no copy
            _save_mgh(folder / f"{h}.betas_session{n:02d}.mgh",
                      np.ascontiguousarray(beta[:, sl]).T.reshape(Vh, 1, 1, -1))
        sessions.append(beta)
        qs.append(q)
        _tick(progress)
    ncsnr = compute_ncsnr(sessions, qs)
    for h, sl in (("lh", slice(0, Vh)), ("rh", slice(Vh, V))):
        _save_mgh(folder / f"{h}.ncsnr.mgh", ncsnr[sl].reshape(Vh, 1, 1))
    return snr, nan_vertices


def _volume_subject_anatomy(seed, cfg, subject):
    """Grid, affine, anatomy, the subject's volume random stream (after the true SNR draw),
    ROI index and true SNR: the start shared by the in-memory and the streamed writers."""
    shape = tuple(cfg["grids"][subject])
    anat = _volume_anatomy(shape)
    rng = _rng(seed, "volume", subject)
    roi = _roi_index(anat["streams"], anat["nsdgeneral"])
    snr = _true_snr(rng, roi, anat["taper"])
    return shape, _affine(shape), anat, rng, roi, snr


def _write_volume_subject(tree, seed, cfg, design, features, subject, progress, tuning):
    shape, affine, anat, rng, roi, snr = _volume_subject_anatomy(seed, cfg, subject)
    inmask = np.flatnonzero(anat["mask"])
    signal = _signal(rng, features, _subject_signal_rows(design, subject), roi[inmask], cfg["mixtures"], tuning,
                     anat["nearest"][inmask], lambda space: _rng(seed, "volume-weights", space, subject))
    active = np.arange(inmask.size)
    zero_session, n_zero = cfg["zeroed_voxels"].get(subject, (0, 0))
    zeroed = np.sort(rng.choice(inmask.size, size=n_zero, replace=False))
    ppdata = tree / f"nsddata/ppdata/{subject_name(subject)}/func1pt8mm"
    _save_nifti(ppdata / "brainmask.nii.gz", anat["mask"].reshape(shape).astype(np.int16), affine)
    _write_volume_rois(ppdata / "roi", anat, shape, affine)
    folder = tree / beta_dir(subject_name(subject), "func1pt8mm")
    q_all, _ = design.trials(subject)
    sessions, qs = [], []
    for n in range(1, design.data_sessions[subject] + 1):
        q = q_all[(n - 1) * design.T: n * design.T]
        beta = _simulate_session(_rng(seed, "volume-noise", subject, n), snr[inmask], signal, active, q)
        stored = np.clip(np.rint(beta * 300), -32768, 32767).astype(np.int16)
        if n == zero_session:
            stored[:, zeroed] = 0
        full = np.zeros((anat["mask"].size, q.size), np.int16)
        full[inmask] = stored.T
        if n not in cfg["missing_sessions"].get(subject, ()):
            _save_nifti(folder / f"betas_session{n:02d}.nii.gz", full.reshape(*shape, q.size), affine)
        sessions.append(stored.astype(np.float32) / 300)
        qs.append(q)
        _tick(progress)
    ncsnr = np.zeros(anat["mask"].size, np.float32)
    ncsnr[inmask] = np.nan_to_num(compute_ncsnr(sessions, qs), nan=0.0)
    _save_nifti(folder / "ncsnr.nii.gz", ncsnr.reshape(shape), affine)
    return snr.reshape(shape), inmask[zeroed]


#: Native-surface vertices of the fsaverage mesh each sandbox subject lacks (a share), so
#: that ``white-to-fsaverage`` is a many-to-one nearest-vertex map as on NSD, not a bijection.
TRANSFORM_DROP = 0.02
#: Cortical depths of ``layerB1..3`` as fractions of the way from pial to white [U: NSD's order].
TRANSFORM_DEPTHS = (0.25, 0.5, 0.75)


@lru_cache(maxsize=2)
def _pial_white(mesh):
    """{hemi: (pial coords, white coords)} of ``mesh`` (fsaverage5: nilearn's; else the icosphere's)."""
    if mesh == "fsaverage5":
        import nibabel as nib

        folder = Path(importlib.util.find_spec("nilearn").submodule_search_locations[0]) / "datasets/data/fsaverage5"
        return {h: (_fsaverage5()[h][0], nib.load(folder / f"white_{h}.gii.gz").darrays[0].data.astype(np.float64))
                for h in ("left", "right")}
    surfs = _mesh.hemisphere_surfaces(7)
    return {h: (surfs[h]["pial"][0], surfs[h]["white"][0]) for h in ("left", "right")}


def _mm_to_voxel(mm, shape):
    """Inverse of :func:`_volume_anatomy`'s voxel → pseudo-mm map: 0-based voxel coordinates."""
    shape = np.asarray(shape, np.float64)
    lo, hi = _BRAIN_BOX
    rel = (mm - (lo + hi) / 2) / ((hi - lo) / 2)
    return (shape - 1) / 2 + rel * (shape - 2) / 2


def _write_transforms(tree, seed, cfg, subject):
    """NSD's func1pt8 → fsaverage transform files for one subject.

    The subject's "native" surface is the fsaverage mesh without a seeded 2 % of its
    vertices, in a seeded order; ``layerB1..3`` are points 1/4, 1/2, 3/4 of the way from its
    pial to its white surface, as 1-based coordinates of the subject's 1.8-mm grid through the
    same pseudo-mm map that placed the volume's cortex (:func:`_volume_anatomy`), ``9999``
    outside the grid; ``white-to-fsaverage`` gives each fsaverage vertex the 1-based index
    of the nearest native vertex (on the white surface). Float32 coordinates and int32 indices.
    """
    from scipy.spatial import cKDTree

    shape = tuple(cfg["grids"][subject])
    rng = _rng(seed, "transforms", subject)
    folder = tree / f"nsddata/ppdata/{subject_name(subject)}/transforms"
    for hemi, h in (("left", "lh"), ("right", "rh")):
        pial, white = _pial_white(cfg["mesh"])[hemi]
        V = pial.shape[0]
        keep = np.sort(rng.choice(V, size=V - int(round(TRANSFORM_DROP * V)), replace=False))
        native = keep[rng.permutation(keep.size)]  # native vertex j is fsaverage vertex native[j]
        for k, frac in enumerate(TRANSFORM_DEPTHS, start=1):
            ijk = _mm_to_voxel(pial[native] + frac * (white[native] - pial[native]), shape) + 1
            ijk[((ijk < 1) | (ijk > np.asarray(shape))).any(1)] = 9999.0
            _save_mgh(folder / f"{h}.func1pt8-to-layerB{k}.mgz", ijk.astype(np.float32).reshape(-1, 1, 1, 3))
        nearest = cKDTree(white[native]).query(white)[1]
        _save_mgh(folder / f"{h}.white-to-fsaverage.mgz", (nearest + 1).astype(np.int32).reshape(-1, 1, 1))


def _tick(progress):
    if progress is not None:
        progress.update(1)


# --------------------------------------------------------------------------------------
# Streamed generation (stream=True: nsdlike): bounded memory at any size
# --------------------------------------------------------------------------------------

#: units (vertices or in-mask voxels) per random stream of the streamed betas
_BLOCK = 1024
#: trials simulated and written at once
_BATCH = 64
#: NSD images rendered at once
_IMAGE_BATCH = 256


def _stream_nsd_images(tree, seed, design, graphs, size, progress):
    """Render the NSD images in batches straight into the brick (and the shared PNGs).

    Returns the low-level features (N, 44) of the unstamped images; for a size that is not
    a multiple of 32 they are computed on a copy resized to the multiple of 32 below.
    """
    import h5py
    from PIL import Image

    N = len(graphs)
    rng = _rng(seed, "render", "nsd")
    fsize = size - size % 32
    lowlevel = None
    shared = {int(i) - 1: k for k, i in enumerate(design.sharedix, start=1)}
    path = tree / STIMULI
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = tree / SHARED1000
    folder.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as fh:
        ds = fh.create_dataset("imgBrick", shape=(N, size, size, 3), dtype=np.uint8, chunks=(1, size, size, 3),
                               compression="gzip", compression_opts=1)
        for start in range(0, N, _IMAGE_BATCH):
            stop = min(N, start + _IMAGE_BATCH)
            batch = np.empty((stop - start, size, size, 3), np.uint8)
            for i in range(start, stop):
                batch[i - start] = _scenes.render_image(rng, graphs[i], size, size)
                _tick(progress)
            small = batch if fsize == size else np.stack(
                [np.asarray(Image.fromarray(im).resize((fsize, fsize), Image.BILINEAR)) for im in batch])
            feats = _scenes.lowlevel_features(small)
            if lowlevel is None:
                lowlevel = np.empty((N, feats.shape[1]), np.float32)
            lowlevel[start:stop] = feats
            ids = np.arange(start, stop)
            batch[:, 0, 0] = np.stack([ids >> 16, (ids >> 8) & 255, ids & 255], axis=1)
            ds[start:stop] = batch
            for i in range(start, stop):
                if i in shared:
                    Image.fromarray(batch[i - start]).save(folder / f"shared{shared[i]:04d}_nsd{i + 1:05d}.png")
    return lowlevel


class _StreamedBetas:
    """The betas of one subject in one space, simulated in trial batches.

    Noise comes from one random stream per (session, block of :data:`_BLOCK` units), so a
    block's values over a whole session can be drawn again on their own (for the ncsnr
    pass) and equal the ones written; the signal is ``(X[image] @ W − mu) / sd`` with the
    per-unit weights ``W`` of the active units only (never a (K, V) matrix).
    """

    def __init__(self, seed, tag, subject, design, X, roi, snr, cfg, tuning, units):
        self.seed, self.tag, self.subject, self.design, self.X = seed, tag, subject, design, X
        self.snr, self.T = snr, design.T
        self.V = roi.size
        self.active = np.flatnonzero(roi >= 0)
        rng = _rng(seed, f"{tag}-weights", subject)
        blocks = []
        for space in cfg["dims"]:  # the spaces of X, in its column order
            d = cfg["dims"][space]
            mix = np.array([cfg["mixtures"][r].get(space, 0.0) for r in ROI_ORDER] + [0.0])
            w = np.sqrt(mix[roi[self.active]] / d).astype(np.float32)
            P = rng.standard_normal((d, self.active.size), dtype=np.float32)
            blocks.append(tuning.mix(space, P, units[self.active]) * w)
        self.W = np.concatenate(blocks)  # (sum d_s, n_active)
        rows = design.subjectim[subject - 1] - 1
        self.mu = np.empty(self.active.size, np.float32)
        self.sd = np.empty(self.active.size, np.float32)
        Xs = X[rows]
        for c in range(0, self.active.size, 2048):
            f = (Xs @ self.W[:, c:c + 2048]).astype(np.float64)
            self.mu[c:c + 2048] = f.mean(axis=0)
            self.sd[c:c + 2048] = f.std(axis=0)
        self.inv_sd = np.where(self.sd > 0, 1 / np.where(self.sd > 0, self.sd, 1), 0).astype(np.float32)
        self.n_sessions = design.data_sessions[subject]
        q_all, ids = design.trials(subject)
        self.q = [q_all[(n - 1) * self.T: n * self.T] for n in range(1, self.n_sessions + 1)]
        self.img = [ids[(n - 1) * self.T: n * self.T] - 1 for n in range(1, self.n_sessions + 1)]
        self.scale = np.empty((self.n_sessions, self.V), np.float32)
        self.offset = np.empty((self.n_sessions, self.V), np.float32)
        for n in range(1, self.n_sessions + 1):
            r = _rng(seed, f"{tag}-session", subject, n)
            self.scale[n - 1] = r.uniform(1.0, 3.0, self.V)
            self.offset[n - 1] = r.normal(0.0, 1.0, self.V)
        self.blocks = [(b, min(b + _BLOCK, self.V)) for b in range(0, self.V, _BLOCK)]

    def _noise_streams(self, n):
        return [_rng(self.seed, f"{self.tag}-noise", self.subject, n, k) for k in range(len(self.blocks))]

    def _signal(self, img, cols):
        f = (self.X[img] @ self.W[:, cols] - self.mu[cols]) * self.inv_sd[cols]
        return f * self.snr[self.active[cols]]

    def session_batches(self, n):
        """Yield (trial slice, (n_batch, V) float32 PSC betas) of session ``n`` in order."""
        streams = self._noise_streams(n)
        img = self.img[n - 1]
        everything = slice(None)
        for t0 in range(0, self.T, _BATCH):
            t1 = min(self.T, t0 + _BATCH)
            beta = np.empty((t1 - t0, self.V), np.float32)
            for (a, b), r in zip(self.blocks, streams):
                beta[:, a:b] = r.standard_normal((t1 - t0, b - a), dtype=np.float32)
            beta[:, self.active] += self._signal(img[t0:t1], everything)
            beta *= self.scale[n - 1]
            beta += self.offset[n - 1]
            yield slice(t0, t1), beta

    def block_sessions(self, k):
        """(units slice, [(T, width) float32 PSC betas of each session]) of block ``k``."""
        a, b = self.blocks[k]
        lo, hi = np.searchsorted(self.active, [a, b])
        cols = slice(lo, hi)
        local = self.active[lo:hi] - a
        out = []
        for n in range(1, self.n_sessions + 1):
            beta = _rng(self.seed, f"{self.tag}-noise", self.subject, n, k).standard_normal(
                (self.T, b - a), dtype=np.float32)
            if hi > lo:
                beta[:, local] += self._signal(self.img[n - 1], cols)
            beta *= self.scale[n - 1, a:b]
            beta += self.offset[n - 1, a:b]
            out.append(beta)
        return slice(a, b), out


def _stream_fsaverage_subject(tree, seed, cfg, design, X, subject, progress, tuning):
    labels = _fsaverage_labels(cfg["mesh"])
    streams = np.concatenate([labels[h][0] for h in ("left", "right")])
    nsdgen = np.concatenate([labels[h][1] for h in ("left", "right")])
    taper = np.concatenate([labels[h][2] for h in ("left", "right")])
    roi = _roi_index(streams, nsdgen)
    V = roi.size
    Vh = V // 2
    rng = _rng(seed, "fsaverage", subject)
    snr = _true_snr(rng, roi, taper)
    nan_vertices = np.sort(rng.choice(V, size=cfg["nan_vertices"].get(subject, 0), replace=False))
    sim = _StreamedBetas(seed, "fsaverage", subject, design, X, roi, snr, cfg, tuning, np.arange(V))
    folder = tree / beta_dir(subject_name(subject), "fsaverage")
    for n in range(1, sim.n_sessions + 1):
        if n not in cfg["missing_sessions"].get(subject, ()):
            with MghTrialWriter(folder / f"lh.betas_session{n:02d}.mgh", Vh, design.T) as lh, \
                    MghTrialWriter(folder / f"rh.betas_session{n:02d}.mgh", Vh, design.T) as rh:
                for _, beta in sim.session_batches(n):
                    beta[:, nan_vertices] = np.nan
                    lh.write(beta[:, :Vh])
                    rh.write(beta[:, Vh:])
        _tick(progress)
    ncsnr = np.empty(V, np.float32)
    for k in range(len(sim.blocks)):
        cols, sessions = sim.block_sessions(k)
        nan_here = nan_vertices[(nan_vertices >= cols.start) & (nan_vertices < cols.stop)] - cols.start
        for beta in sessions:
            beta[:, nan_here] = np.nan
        ncsnr[cols] = compute_ncsnr(sessions, sim.q)
    _tick(progress)
    for h, sl in (("lh", slice(0, Vh)), ("rh", slice(Vh, V))):
        _save_mgh(folder / f"{h}.ncsnr.mgh", ncsnr[sl].reshape(Vh, 1, 1))
    return snr, nan_vertices


def _stream_volume_subject(tree, seed, cfg, design, X, subject, progress, tuning):
    shape, affine, anat, rng, roi, snr = _volume_subject_anatomy(seed, cfg, subject)
    inmask = np.flatnonzero(anat["mask"])
    zero_session, n_zero = cfg["zeroed_voxels"].get(subject, (0, 0))
    zeroed = np.sort(rng.choice(inmask.size, size=n_zero, replace=False))
    ppdata = tree / f"nsddata/ppdata/{subject_name(subject)}/func1pt8mm"
    _save_nifti(ppdata / "brainmask.nii.gz", anat["mask"].reshape(shape).astype(np.int16), affine)
    _write_volume_rois(ppdata / "roi", anat, shape, affine)
    sim = _StreamedBetas(seed, "volume", subject, design, X, roi[inmask], snr[inmask], cfg, tuning,
                         anat["nearest"][inmask])
    folder = tree / beta_dir(subject_name(subject), "func1pt8mm")

    def stored(beta, n, first=0):
        out = np.clip(np.rint(beta * 300), -32768, 32767).astype(np.int16)
        if n == zero_session:
            here = zeroed[(zeroed >= first) & (zeroed < first + beta.shape[1])] - first
            out[:, here] = 0
        return out

    for n in range(1, sim.n_sessions + 1):
        if n not in cfg["missing_sessions"].get(subject, ()):
            with NiftiTrialWriter(folder / f"betas_session{n:02d}.nii.gz", shape, design.T, affine,
                                  inside=inmask, compresslevel=cfg["gzip_level"]) as w:
                for _, beta in sim.session_batches(n):
                    w.write(stored(beta, n))
        _tick(progress)
    ncsnr = np.zeros(anat["mask"].size, np.float32)
    for k in range(len(sim.blocks)):
        cols, sessions = sim.block_sessions(k)
        sessions = [stored(b, n, cols.start).astype(np.float32) / 300 for n, b in enumerate(sessions, start=1)]
        ncsnr[inmask[cols]] = np.nan_to_num(compute_ncsnr(sessions, sim.q), nan=0.0)
    _tick(progress)
    _save_nifti(folder / "ncsnr.nii.gz", ncsnr.reshape(shape), affine)
    return snr.reshape(shape), inmask[zeroed]


# --------------------------------------------------------------------------------------
# Truth
# --------------------------------------------------------------------------------------

GENERATIVE_MODEL = (
    "beta[t, v] = scale[n, v] * (a_v * f_v[image(t)] + e[t, v]) + offset[n, v], e ~ N(0, 1); "
    "f_v = standardise(sum_s sqrt(w[roi(v), s]) * Z_s @ P_s[:, v] / sqrt(d_s)), P_s[:, v] = sqrt(c) * "
    "S_s[:, u(v)] + sqrt(1 - c) * I_s[:, v], S ~ N(0, 1) common to all subjects (u(v): the fsaverage "
    "vertex; for a voxel, its nearest fsaverage5 vertex), I ~ N(0, 1) per subject, c = shared_tuning; "
    "w = roi_spaces; Z_s = z-scored feature space s over NSD images (sentence, where planted: each "
    "image's mean caption embedding by sentence_space's model, centred per dimension and divided by "
    "the root mean variance); scale ~ U(1, 3), offset ~ N(0, 1) per session "
    "and voxel; volume betas stored as int16 round(300 * beta); a_v = U(ROI range) * (1 - 0.4 * "
    "(geodesic distance to seed / radius)^2) inside the streams, U(0.1, 0.4) elsewhere in "
    "nsdgeneral, 0 outside nsdgeneral."
)


def _write_truth(tree, cfg, seed, design, graphs, pool_graphs, pairs, features, subject_truth, t0, extra=None,
                 sentence=None):
    folder = tree / TRUTH_DIR
    folder.mkdir(parents=True, exist_ok=True)
    for space, x in features.items():
        atomic_save_npy(folder / f"features_{space}.npy", x)
    for s, info in subject_truth.items():
        atomic_save_npy(folder / f"snr_fsaverage_{subject_name(s)}.npy", info["snr_fs"])
        atomic_save_npy(folder / f"snr_func1pt8mm_{subject_name(s)}.npy", info["snr_vol"])
    atomic_write_text(folder / "scenes.json", json.dumps({"nsd": graphs, "pool": pool_graphs}))
    card = {
        "format": SANDBOX_FORMAT, "seed": int(seed), "preset": cfg["name"],
        "sizes": {"n_images": cfg["N"], "images_per_subject": cfg["K"], "n_shared": cfg["S"],
                  "trials_per_session": cfg["T"], "planned_sessions": cfg["D"],
                  "image_size": cfg["image_size"], "n_pool": cfg["n_pool"],
                  "captions_per_image": cfg.get("n_captions") or "5 (6 for ~5 %)",
                  "fsaverage_vertices_per_hemi": int(_fsaverage_labels(cfg["mesh"])["left"][0].size),
                  "grids": {subject_name(s): list(g) for s, g in cfg["grids"].items()}},
        "subjects_with_data": [int(s) for s in sorted(design.data_sessions)],
        "n_sessions": {subject_name(s): int(n) for s, n in design.data_sessions.items()},
        "generative_model": GENERATIVE_MODEL,
        "roi_spaces": cfg["mixtures"], "snr_ranges": {k: list(v) for k, v in SNR_RANGES.items()},
        "shared_tuning": cfg["shared_tuning"],
        "sentence_space": sentence,
        "feature_spaces": {s: int(x.shape[1]) for s, x in features.items()},
        "categories": {n: v[0] for n, v in _scenes.CATEGORIES.items()},
        "actions": _scenes.ACTION_NAMES, "scenes": _scenes.SCENE_NAMES,
        "n_caption_templates": _scenes.N_TEMPLATES,
        "role_reversed_pairs": [list(p) for p in pairs],
        "strict_shared_nsd_ids": design.strict_nsd_ids.tolist(),
        "n_strict_shared": int(design.strict_nsd_ids.size),
        "nan_vertices": {subject_name(s): i["nan_vertices"].tolist() for s, i in subject_truth.items()},
        "zeroed_voxels": {subject_name(s): {"session": cfg["zeroed_voxels"].get(s, (0, 0))[0],
                                     "flat_indices": i["zeroed"].tolist()} for s, i in subject_truth.items()},
        "generation_seconds": round(time.perf_counter() - t0, 2),
    }
    quirks = _quirks(cfg)
    if quirks:  # only then: the default and tiny cards stay as they were
        quirks["missing_sessions"] = {subject_name(s): sorted(int(x) for x in v)
                                      for s, v in cfg["missing_sessions"].items()}
        card["quirks"] = {**quirks, **(extra or {})}
    atomic_write_text(folder / "card.json", json.dumps(card, indent=1))


# --------------------------------------------------------------------------------------
# Public entry point
# --------------------------------------------------------------------------------------


def _check_root(root, overwrite):
    if root.exists() and not root.is_dir():
        raise ValueError(f"root={str(root)!r}: is a file, not a folder; give the path of a folder to write "
                         "the tree into (it is never replaced by a tree, even with overwrite=True)")
    for parent in root.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"root={str(root)!r}: {parent} is a file, not a folder")
            break
    if root.exists() and any(root.iterdir()) and not overwrite:
        raise ValueError(f"root={str(root)!r}: exists and is not empty; pass overwrite=True to replace it")


def _clean_stale_trees(root):
    """Remove the temporary trees (``.NAME.partial-HOST-PID-*``, ``.NAME.old-PID-*``) that a killed
    run on this machine left beside ``root``; warn about those this machine cannot judge.

    A tree whose process is alive is left alone (a concurrent run); an unparseable or foreign
    one (another host, an older naming) is reported with a ``UserWarning`` naming it.
    """
    import socket

    host = socket.gethostname()
    unknown = []
    for path in sorted(root.parent.glob(f".{root.name}.partial-*")) + sorted(root.parent.glob(f".{root.name}.old-*")):
        rest = path.name[len(f".{root.name}."):]
        kind, _, tail = rest.partition("-")
        parts = tail.split("-")
        if kind == "partial" and len(parts) >= 3 and parts[-2].isdigit() and "-".join(parts[:-2]) == host:
            pid = int(parts[-2])
        elif kind == "old" and len(parts) >= 2 and parts[0].isdigit():
            pid = int(parts[0])
        else:
            unknown.append(path)
            continue
        if pid != os.getpid() and not pid_alive(pid):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
    if unknown:
        warnings.warn(f"temporary trees of another machine or an older run beside {root} (remove them if no "
                      f"run is writing them): {[str(u) for u in unknown]}", UserWarning, stacklevel=3)


def _commit(partial, root):
    """Move the finished tree onto ``root`` (replacing an old one last)."""
    trash = None
    fault_point("synth.built")
    if root.exists():
        trash = root.parent / f".{root.name}.old-{os.getpid()}-{time.time_ns()}"
        os.replace(root, trash)
        fault_point("synth.old_moved_aside")
    os.replace(partial, root)
    fault_point("synth.committed")
    if trash is not None:
        shutil.rmtree(trash) if trash.is_dir() else trash.unlink()


def _build(tree, cfg, seed, progress, t0):
    design = _make_design(cfg, seed)
    _write_expdesign(tree, design)
    subjects = sorted(design.data_sessions)
    for s in subjects:
        _write_responses(tree, seed, design, s)

    pairs = _reversal_pairs(_rng(seed, "pairs"), cfg, design)
    graphs = _make_graphs(_rng(seed, "scenes"), cfg["N"], pairs)
    pool_graphs = _make_graphs(_rng(seed, "pool-scenes"), cfg["n_pool"])
    size = cfg["image_size"]
    if cfg["stream"]:
        features = _feature_spaces(graphs, lowlevel=_stream_nsd_images(tree, seed, design, graphs, size, progress))
    else:
        images = _render_all(seed, "nsd", graphs, size, progress)
        features = _feature_spaces(graphs, images)
        _stamp_ids(images)
        _write_stimuli(tree, design, images)
        del images

    rng = _rng(seed, "coco")
    coco_ids = 100000 + np.arange(cfg["N"])
    splits = np.where(rng.random(cfg["N"]) < 0.75, "train2017", "val2017")
    pool_ids = 500000 + np.arange(cfg["n_pool"])
    pool_splits = np.where(rng.random(cfg["n_pool"]) < 0.95, "train2017", "val2017")
    native = cfg["coco_native_sizes"]
    nsd_sizes = _coco_sizes(seed, "nsd", cfg["N"], size, native)
    pool_sizes = _coco_sizes(seed, "pool", cfg["n_pool"], size, native)
    no_inst, no_inst_pool = _no_instance_images(seed, cfg)
    counters = {"caption": 0, "instance": 0}
    n_caps, variety = cfg.get("n_captions"), cfg["caption_variety"]
    nsd_captions = _captions(seed, graphs, pairs, n_max=n_caps, variety=variety)
    entries = _coco_entries(graphs, nsd_captions, coco_ids, splits, nsd_sizes, counters, no_inst)
    entries += _coco_entries(pool_graphs, _captions(seed, pool_graphs, tag="pool", n_max=n_caps, variety=variety),
                             pool_ids, pool_splits, pool_sizes, counters, no_inst_pool)
    _write_coco(tree, entries)
    del entries
    _write_pool_jpegs(tree, seed, pool_graphs, pool_ids, pool_splits, pool_sizes, progress)
    _write_stim_info(tree, seed, design, coco_ids, splits)

    sentence = None
    if cfg["sentence_model"] is not None:
        features["sentence"], sentence = _sentence_space(nsd_captions, cfg["sentence_model"], progress is not None)
        sentence["rois"] = {roi: mix["sentence"] for roi, mix in cfg["mixtures"].items() if "sentence" in mix}
    del nsd_captions

    _write_label_files(tree, subjects, cfg["mesh"])
    truth = {}
    # the full mesh's shared columns are drawn again per subject (hundreds of MB if kept)
    tuning = _SharedTuning(seed, cfg["shared_tuning"], cache=cfg["mesh"] == "fsaverage5")
    if cfg["stream"]:
        cfg["dims"] = {space: int(features[space].shape[1]) for space in PLANTED_SPACES if space in features}
        X = np.concatenate([features[space] for space in cfg["dims"]], axis=1)
    for s in subjects:
        if cfg["stream"]:
            snr_fs, nan_v = _stream_fsaverage_subject(tree, seed, cfg, design, X, s, progress, tuning)
            snr_vol, zeroed = _stream_volume_subject(tree, seed, cfg, design, X, s, progress, tuning)
        else:
            snr_fs, nan_v = _write_fsaverage_subject(tree, seed, cfg, design, features, s, progress, tuning)
            snr_vol, zeroed = _write_volume_subject(tree, seed, cfg, design, features, s, progress, tuning)
        _write_transforms(tree, seed, cfg, s)
        truth[s] = {"snr_fs": snr_fs, "snr_vol": snr_vol, "nan_vertices": nan_v, "zeroed": zeroed}
    quirks = {"no_instance_nsd_ids": no_inst.tolist(), "no_instance_pool_coco_ids": (500000 + no_inst_pool).tolist(),
              "coco_sizes_drawn": bool(native)}
    _write_truth(tree, cfg, seed, design, graphs, pool_graphs, pairs, features, truth, t0, quirks, sentence)


def _no_instance_images(seed, cfg):
    """Indices of the NSD and pool images whose COCO instances are left out."""
    n = cfg["no_instance_images"]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    rng = _rng(seed, "no-instances")
    nsd = np.sort(rng.choice(cfg["N"], size=n, replace=False))
    n_pool = min(cfg["n_pool"], max(1, int(round(n * cfg["n_pool"] / cfg["N"]))))
    return nsd, np.sort(rng.choice(cfg["n_pool"], size=n_pool, replace=False))


@fill_doc
def make_synthetic_nsd(root, preset="default", seed=0, *, overwrite=False, overrides=None, progress=None):
    """Write a synthetic NSD tree (real NSD layout) with a known ground truth.

    Parameters
    ----------
    root : str or path-like
        Destination; built in ``root.parent/.{root.name}.partial-XXXX`` and renamed at the
        end, so an interrupted run never leaves a tree that looks complete.
    preset : {"default", "tiny", "positive", "tiny_positive", "nsdlike", "nsdlike_small"}, default="default"
        ``default``: 4 subjects with data, 750 trials per session, 4,950 NSD images
        (≤ 90 s, < 1 GB); ``tiny``: 3 subjects, 60 trials per session (≈ 3 s, for tests);
        ``positive`` / ``tiny_positive``: the same trees with the ventral and lateral ROIs
        half driven by MiniLM's caption embeddings (:data:`POSITIVE_ROI_SPACES`; the
        positive control, see the module docstring; MiniLM runs at generation time, ≈ 2 min
        more for ``positive`` on one core unless its embedding cache holds the captions);
        ``nsdlike``: NSD's sizes and quirks (see the module docstring: huge at
        ``scale=1``); ``nsdlike_small``: the same quirks, 2 subjects, 1 + 2 sessions of 750
        trials, full fsaverage (for tests).
    %(seed)s
        Same seed → identical arrays.
    overwrite : bool, default=False
        Replace an existing non-empty ``root`` (otherwise ``ValueError``).
    overrides : dict, optional
        Keys of :data:`PRESETS` entries, :data:`OPTIONS` or :data:`MODEL_OPTIONS` to change
        (e.g. ``{"trials_per_session": 150}``, ``{"missing_sessions": {2: [3]}}``,
        ``{"shared_tuning": 0.0}``; for the nsdlike presets also ``n_subjects`` and
        ``scale``). Unknown keys raise. An ``roi_spaces`` override replaces the preset's
        whole ``roi_spaces`` (the ROIs it does not name keep :data:`ROI_SPACES`).
    progress : bool, optional
        Show a tqdm bar; default: for the ``default`` and ``nsdlike`` presets.

    Returns
    -------
    root : pathlib.Path
        ``root``, absolute.

    Raises
    ------
    ValueError
        For an invalid argument or override (named in the message, with what was expected),
        a ``root`` that is a file, or a non-empty ``root`` without ``overwrite``.
    brainllm_utils.features.weights.ModelNotFoundError
        When a preset plants a ``sentence`` space whose ``sentence_model`` is not available
        offline (checked before anything is written).

    Notes
    -----
    Temporary trees that a killed run on this machine left beside ``root``
    (``.NAME.partial-HOST-PID-*``, ``.NAME.old-PID-*`` of a process that no longer runs) are
    removed at the start; those of another machine or an older naming are reported with a
    ``UserWarning``.
    """
    t0 = time.perf_counter()
    _check_arguments(root, preset, seed, overwrite, overrides, progress)
    cfg = _resolve_preset(preset, overrides)
    if cfg["sentence_model"] is not None:  # fail before writing anything when the encoder is missing
        from ..features.embeddings import get_model_spec

        get_model_spec(cfg["sentence_model"])
    root = Path(root).expanduser().absolute()
    _check_root(root, overwrite)
    root.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale_trees(root)
    import socket

    partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-{socket.gethostname()}-{os.getpid()}-",
                                    dir=root.parent))
    bar = None
    if progress if progress is not None else preset in ("default", "positive", "nsdlike"):
        from tqdm.auto import tqdm

        n_sessions = sum(cfg["data_sessions"].values())
        n_ncsnr = 2 * len(cfg["data_sessions"]) if cfg["stream"] else 0
        bar = tqdm(total=cfg["N"] + cfg["n_pool"] + 2 * n_sessions + n_ncsnr, desc="synthetic NSD", unit="step",
                   mininterval=1.0)
    try:
        _build(partial, cfg, seed, bar, t0)
        _commit(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        if bar is not None:
            bar.close()
    return root


def _parse_sessions(text):
    """``"1:3,2:2"`` -> {1: 3, 2: 2}."""
    try:
        return {int(s): int(n) for s, n in (part.split(":") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SUBJECT:SESSIONS[,...], got {text!r}") from None


def _parse_missing(text):
    """``"1:2+3,2:3"`` -> {1: [2, 3], 2: [3]}."""
    try:
        return {int(s): [int(x) for x in n.split("+")] for s, n in (part.split(":") for part in text.split(","))}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SUBJECT:SESSION[+SESSION...][,...], got {text!r}") from None


def _disk_usage(path):
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


@fill_doc
def main(argv=None, prog=None):
    """Command line: ``python -m brainllm_utils.synth ROOT [--preset P] [--seed S]``.

    Writes the tree with :func:`make_synthetic_nsd` and prints its size and duration.

    Parameters
    ----------
    %(argv)s
    %(prog)s
    """
    parser = argparse.ArgumentParser(prog=prog or "python -m brainllm_utils.synth",
                                     description="Write a synthetic NSD tree (real NSD layout).")
    parser.add_argument("root", type=Path)
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    parser.add_argument("--data-sessions", type=_parse_sessions, metavar="S:N,...",
                        help="subjects with data and their session counts, e.g. 1:3 or 1:3,2:2")
    parser.add_argument("--missing-sessions", type=_parse_missing, metavar="S:N[+N...],...",
                        help="sessions listed but not written, e.g. 2:3 or 1:2+3,2:3")
    parser.add_argument("--coco-native-sizes", action="store_true", default=None,
                        help="COCO JPEGs and JSON sizes at COCO-like native sizes")
    parser.add_argument("--no-instance-images", type=int, metavar="N",
                        help="N NSD images (and some pool images) without COCO instances")
    parser.add_argument("--caption-variety", action="store_true", default=None,
                        help="captions with punctuation, case, whitespace and non-ASCII variety")
    parser.add_argument("--n-subjects", type=int, help="nsdlike presets: subjects with data (1..8)")
    parser.add_argument("--scale", type=float, help="nsdlike presets: fraction of NSD's session counts")
    parser.add_argument("--trials-per-session", type=int)
    parser.add_argument("--n-pool", type=int, help="COCO training-pool images")
    parser.add_argument("--image-size", type=int, help="side of the NSD brick's images")
    parser.add_argument("--shared-tuning", type=float, metavar="C",
                        help=f"share of each vertex's tuning common to all subjects, in [0, 1] (default {SHARED_TUNING})")
    parser.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    args = parser.parse_args(argv)
    overrides = {key: getattr(args, key) for key in (
        "data_sessions", "missing_sessions", "coco_native_sizes", "no_instance_images", "caption_variety",
        "n_subjects", "scale", "trials_per_session", "n_pool", "image_size", "shared_tuning")
        if getattr(args, key) is not None}
    t0 = time.perf_counter()
    root = make_synthetic_nsd(args.root, args.preset, args.seed, overwrite=args.overwrite, overrides=overrides,
                              progress=args.progress)
    print(f"wrote {root} in {time.perf_counter() - t0:.1f} s, {_disk_usage(root) / 1e6:.1f} MB")

