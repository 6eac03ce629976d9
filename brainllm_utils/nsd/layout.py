"""The NSD release layout: relative paths, constants, subject names and file errors.

One place for everything the reader (:class:`~brainllm_utils.nsd.NSD`), the sandbox generator
(:mod:`brainllm_utils.synth`) and the analyses need to know about where NSD keeps what
(``shared/docs/nsd_layout.md``). Nothing here reads a file except :func:`read_ctab`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._utils.docs import fill_doc

__all__ = [
    "NSD_SESSIONS",
    "N_SUBJECTS",
    "BETA_VERSION",
    "SPACES",
    "EXPDESIGN",
    "STIM_INFO",
    "STIMULI",
    "ANNOTATIONS",
    "COCO_DIR",
    "SHARED1000",
    "STREAMS_LABELS",
    "responses_file",
    "NSDFileError",
    "PartialDataWarning",
    "download_hint",
    "subject_name",
    "read_ctab",
    "beta_dir",
    "beta_files",
]

#: Sessions acquired per subject in the full NSD release (2023), used only to define the
#: shared test set for subjects whose files are not on disk.
NSD_SESSIONS = {1: 40, 2: 40, 3: 32, 4: 30, 5: 40, 6: 32, 7: 40, 8: 30}
#: Subjects in NSD (rows of ``subjectim``).
N_SUBJECTS = 8
#: The GLMsingle beta version used by the paper ("b3").
BETA_VERSION = "betas_fithrf_GLMdenoise_RR"
#: The two spaces the betas come in.
SPACES = ("fsaverage", "func1pt8mm")

#: Relative paths of the experiment and stimulus files.
EXPDESIGN = "nsddata/experiments/nsd/nsd_expdesign.mat"
STIM_INFO = "nsddata/experiments/nsd/nsd_stim_info_merged.csv"
STIMULI = "nsddata_stimuli/stimuli/nsd/nsd_stimuli.hdf5"
ANNOTATIONS = "nsddata_stimuli/stimuli/nsd/annotations"
#: COCO images next to NSD (``coco/{train2017,val2017}/<cocoId:012d>.jpg``): the training pool.
COCO_DIR = "coco"
#: The shared images as PNG files (``sharedNNNN_nsdNNNNN.png``).
SHARED1000 = "nsddata/stimuli/nsd/shared1000"
#: Labels 1..7 of NSD's ``streams`` atlas, in the atlas's order.
STREAMS_LABELS = ("early", "midventral", "midlateral", "midparietal", "ventral", "lateral", "parietal")


class NSDFileError(FileNotFoundError):
    """A file of the NSD layout is missing, truncated, corrupt or has the wrong shape."""


class PartialDataWarning(UserWarning):
    """An analysis runs on less data than it asked for, and says so.

    Warned at the call (the message names the subject, session, file or images concerned and
    how many images are affected) and recorded in :meth:`NSD.data_report
    <brainllm_utils.nsd.NSD.data_report>`, so that a page can show what was left out: a
    session whose betas are all NaN, sessions on disk that ``responses.tsv`` does not list,
    captions that are empty, sessions missing on disk
    (:class:`~brainllm_utils.nsd.SessionsMissingWarning`, a subclass).
    """


class IntegerArgumentError(TypeError, ValueError):
    """An argument that must be an integer is not one (a bool, a float, a string…).

    A :class:`TypeError`; also a :class:`ValueError`, so that callers validating arguments
    with ``except ValueError`` see it too.
    """


def _as_int(value, name: str) -> int:
    """``value`` as an ``int``; :class:`IntegerArgumentError` naming ``name`` unless it is an
    ``int`` or a numpy integer (bools and floats, even integral ones, are refused: a float
    id is a computation gone wrong, never rounded)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise IntegerArgumentError(
            f"{name}={value!r}: expected an integer (int or numpy integer), not "
            f"{type(value).__name__}; floats and bools are refused, not rounded")
    return int(value)


def _as_int_array(values, name: str) -> np.ndarray:
    """``values`` as a 1-D int64 array; :class:`IntegerArgumentError` naming ``name`` unless
    every entry is an integer (numpy integer dtypes accepted; floats, bools, strings refused)."""
    if isinstance(values, (str, bytes)):
        raise IntegerArgumentError(f"{name}={values!r}: expected integers, not a string")
    a = np.asarray(values)
    if a.dtype == object:
        a = np.asarray([_as_int(v, name) for v in a.ravel()], dtype=np.int64)
    elif a.size and a.dtype.kind not in "iu":
        bad = a.ravel()[0]
        raise IntegerArgumentError(
            f"{name}: expected integers (int or numpy integer), got dtype {a.dtype} (e.g. {bad!r}); "
            "floats and bools are refused, not rounded")
    return a.astype(np.int64).ravel()


def download_hint(relpath: str) -> str:
    """The command that fetches ``relpath`` (relative to the NSD root).

    Files of one subject (betas, masks, ROIs, behaviour) name that subject and, for beta
    files, the session: ``python -m brainllm_utils.nsd download <root> --subjects N
    --sessions S``; the COCO annotations and images name the COCO switches of the same
    command. An ``aws s3`` command for the single file follows as a fallback (NSD files only).

    Parameters
    ----------
    relpath : str or path-like
        A file or folder of the NSD layout, relative to the NSD root.

    Returns
    -------
    hint : str
        The download command (and, for NSD files, the ``aws`` fallback).

    Examples
    --------
    >>> hint = download_hint("nsddata_betas/ppdata/subj02/fsaverage/"
    ...                      "betas_fithrf_GLMdenoise_RR/lh.betas_session07.mgh")
    >>> hint.startswith("python -m brainllm_utils.nsd download <root> --subjects 2 --sessions 7 --space fsaverage")
    True
    """
    relpath = str(relpath).strip("/")
    terms = " (accept the NSD Terms and Conditions first; see the book's 'Getting NSD' page)"
    if relpath.startswith(ANNOTATIONS):
        return (
            "python -m brainllm_utils.nsd download <root> --subjects 1 (fetches the COCO 2017 "
            "annotations zip from COCO's site with the subject's files), or by hand: "
            "annotations_trainval2017.zip from the COCO website, captions_*2017.json and "
            f"instances_*2017.json into <root>/{ANNOTATIONS}/"
        )
    if relpath.startswith(COCO_DIR + "/") or relpath == COCO_DIR:
        return "python -m brainllm_utils.nsd download <root> --subjects 1 --coco-images"
    cmd = "python -m brainllm_utils.nsd download <root>"
    subj = re.search(r"/(subj\d\d)/", "/" + relpath + "/")
    if subj:
        cmd += f" --subjects {int(subj.group(1)[4:])}"
        sess = re.search(r"session(\d+)", relpath)
        if sess:
            cmd += f" --sessions {int(sess.group(1))}"
        space = next((sp for sp in SPACES if f"/{sp}/" in "/" + relpath + "/"), None)
        if space:
            cmd += f" --space {space}"
    else:
        cmd += " --subjects 1"
    return (
        f"{cmd}{terms}\n  or by hand: aws s3 cp --no-sign-request "
        f"s3://natural-scenes-dataset/{relpath} <root>/{relpath}"
    )


def subject_name(subject) -> str:
    """``"subjNN"`` for ``"subj01"``, ``"01"``, ``1`` or ``np.int64(1)``; ValueError otherwise.

    Parameters
    ----------
    subject : str or int
        A subject as a name (``"subj01"``), digits (``"01"``) or an integer.

    Returns
    -------
    name : str
        ``"subjNN"`` (two digits).

    Raises
    ------
    TypeError
        For a bool, a float or anything but a str or an integer (also a ValueError).
    ValueError
        For a string that is not a subject name.

    Examples
    --------
    >>> subject_name(1), subject_name("subj02"), subject_name("3")
    ('subj01', 'subj02', 'subj03')
    """
    if isinstance(subject, (bool, np.bool_)) or not isinstance(subject, (str, int, np.integer)):
        raise IntegerArgumentError(
            f"subject={subject!r}: expected 'subjNN' (e.g. 'subj01') or an integer, not "
            f"{type(subject).__name__}")
    if isinstance(subject, (int, np.integer)):
        return f"subj{int(subject):02d}"
    m = re.fullmatch(r"(?:subj)?0*(\d+)", str(subject))
    if not m:
        raise ValueError(f"subject {subject!r}: expected 'subjNN' (e.g. 'subj01') or an integer")
    return f"subj{int(m.group(1)):02d}"


def read_ctab(path: Path) -> dict[int, str]:
    """``{label: name}`` of a FreeSurfer colour table (``<int> <name> ...`` lines).

    Parameters
    ----------
    path : pathlib.Path
        A ``.ctab`` file.

    Returns
    -------
    labels : dict of int to str
        Label value → name (``0``/``-1`` included when the table lists them).
    """
    labels = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].lstrip("-").isdigit():
            labels[int(parts[0])] = parts[1]
    if not labels:
        raise NSDFileError(f"{path}: expected lines '<int> <name>' (a FreeSurfer colour table)")
    return labels


@fill_doc
def responses_file(subject: str) -> str:
    """Relative path of a subject's behavioural responses (one row per acquired trial).

    Parameters
    ----------
    %(subject_any)s

    Returns
    -------
    relpath : str
        ``nsddata/ppdata/subjNN/behav/responses.tsv``.
    """
    return f"nsddata/ppdata/{subject_name(subject)}/behav/responses.tsv"


def beta_dir(subject: str, space: str, beta_version: str = BETA_VERSION) -> str:
    """Relative folder of a subject's betas in ``space``.

    Parameters
    ----------
    subject : str
        A subject name, ``"subj01"`` … (used as is).
    space : {"fsaverage", "func1pt8mm"}
        The betas' space.
    beta_version : str, default="betas_fithrf_GLMdenoise_RR"
        The GLMsingle beta version folder (:data:`BETA_VERSION`).

    Returns
    -------
    relpath : str
        ``nsddata_betas/ppdata/<subject>/<space>/<beta_version>``.
    """
    if space not in SPACES:
        raise ValueError(f"space={space!r}: expected one of {SPACES}")
    return f"nsddata_betas/ppdata/{subject}/{space}/{beta_version}"


def beta_files(subject: str, space: str, session: int, beta_version: str = BETA_VERSION) -> list[str]:
    """Relative paths of one session's beta files (lh and rh on fsaverage, one NIfTI in the volume).

    Parameters
    ----------
    subject : str
        A subject name, ``"subj01"`` … (used as is).
    space : {"fsaverage", "func1pt8mm"}
        The betas' space.
    session : int
        1-based session number.
    beta_version : str, default="betas_fithrf_GLMdenoise_RR"
        The GLMsingle beta version folder (:data:`BETA_VERSION`).

    Returns
    -------
    relpaths : list of str
        ``[lh.betas_sessionNN.mgh, rh.betas_sessionNN.mgh]`` on fsaverage,
        ``[betas_sessionNN.nii.gz]`` in func1pt8mm.
    """
    d = beta_dir(subject, space, beta_version)
    if space == "fsaverage":
        return [f"{d}/{h}.betas_session{session:02d}.mgh" for h in ("lh", "rh")]
    return [f"{d}/betas_session{session:02d}.nii.gz"]
