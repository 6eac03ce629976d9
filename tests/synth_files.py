"""Helpers of the sandbox tests (``test_synth``, ``test_synth_positive``) that read a generated
tree's raw files with plain libraries (nibabel, scipy.io, json, pandas), never through
``brainllm_utils.nsd``."""

from __future__ import annotations

import hashlib
import json
import re

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.io import loadmat

from brainllm_utils import synth

BETAS = "betas_fithrf_GLMdenoise_RR"
#: the files the shared tuning (and a planted space) changes: every betas and ncsnr file
TUNED = re.compile(r"nsddata_betas/ppdata/subj\d\d/(fsaverage|func1pt8mm)/betas_fithrf_GLMdenoise_RR/"
                   r"((lh|rh)\.)?(betas_session\d\d|ncsnr)\.(mgh|nii\.gz)")


def mgh(path):
    """The data of an MGH/MGZ file as an array."""
    return np.asarray(nib.load(path).dataobj)


def digests(root, skip=()):
    """{relative path: sha256} of every file under ``root`` but ``skip``."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*")
            if p.is_file() and str(p.relative_to(root)) not in skip}


def image_means(root, subject, ids=None):
    """Per image, the mean over its trials of the fsaverage betas z-scored per session.

    Returns ``(ids, (n_images, 2 * n_vertices) float64)``; ``ids`` (0-based nsdIds) default:
    the subject's images with all three trials on disk.
    """
    card = synth.load_truth(root)
    T = card["sizes"]["trials_per_session"]
    n = card["n_sessions"][f"subj{subject:02d}"]
    m = loadmat(root / "nsddata/experiments/nsd/nsd_expdesign.mat")
    mo = np.asarray(m["masterordering"]).ravel().astype(np.int64)[: n * T]
    image = np.asarray(m["subjectim"]).astype(np.int64)[subject - 1, mo - 1] - 1
    folder = root / f"nsddata_betas/ppdata/subj{subject:02d}/fsaverage/{BETAS}"
    z = []
    for k in range(1, n + 1):
        b = np.concatenate([mgh(folder / f"{h}.betas_session{k:02d}.mgh").reshape(-1, T)
                            for h in ("lh", "rh")]).T.astype(np.float64)
        z.append((b - b.mean(0)) / b.std(0))
    z = np.concatenate(z)
    if ids is None:
        u, c = np.unique(image, return_counts=True)
        ids = u[c == 3]
    return np.asarray(ids), np.stack([z[image == i].mean(0) for i in ids])


def fsaverage_streams(root):
    """Streams label per fsaverage vertex (lh then rh) and {name: label} from the ctab."""
    folder = root / "nsddata/freesurfer/fsaverage/label"
    labels = np.concatenate([mgh(folder / f"{h}.streams.mgz").ravel() for h in ("lh", "rh")])
    names = dict(line.split()[::-1] for line in (folder / "streams.mgz.ctab").read_text().splitlines())
    return labels, {k: int(v) for k, v in names.items()}


def inter_subject_agreement(root):
    """Per vertex, each subject's r with the mean of the others over the strict shared images
    (the paper's Fig. 1d), averaged over subjects; NaN where undefined."""
    card = synth.load_truth(root)
    ids = card["strict_shared_nsd_ids"]
    Y = np.stack([image_means(root, s, ids)[1] for s in card["subjects_with_data"]])
    r = []
    for i in range(len(Y)):
        a = Y[i] - Y[i].mean(0)
        b = np.delete(Y, i, axis=0).mean(0)
        b = b - b.mean(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            r.append((a * b).sum(0) / np.sqrt((a**2).sum(0) * (b**2).sum(0)))
    return np.mean(r, axis=0)


def captions_by_nsd_id(root):
    """{0-based nsdId: [captions in annotation order]} from the CSV and the COCO captions JSONs."""
    stim = pd.read_csv(root / "nsddata/experiments/nsd/nsd_stim_info_merged.csv", index_col=0)
    by_coco = {}
    for split in ("train2017", "val2017"):
        data = json.loads((root / f"nsddata_stimuli/stimuli/nsd/annotations/captions_{split}.json").read_text())
        for a in sorted(data["annotations"], key=lambda a: a["id"]):
            by_coco.setdefault(a["image_id"], []).append(a["caption"])
    return {int(i): by_coco[int(c)] for i, c in zip(stim["nsdId"], stim["cocoId"])}
