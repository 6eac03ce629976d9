"""The files the book reads from an NSD copy, per selection of subjects, sessions and spaces.

:func:`book_files` is the one list that the downloader (``python -m brainllm_utils.nsd
download``), the local-copy check and the book's "Getting NSD" page share. It was written
by reading the code that opens files (``NSD.path`` and ``root / ...`` in
:mod:`brainllm_utils.nsd`, :mod:`brainllm_utils.vision` and the chapters), so a file is
listed here exactly when some chapter reads it:

- experiment design, stimulus table (every chapter), stimulus images ``nsd_stimuli.hdf5``
  (00, 04, 05);
- COCO 2017 captions and instances placed in ``nsddata_stimuli/stimuli/nsd/annotations/``
  (every chapter: captions feed every feature space, instances the category spaces);
- per subject: ``responses.tsv`` and the betas of each selected session in each space (both
  hemispheres on fsaverage); ``ncsnr``; the fsaverage ``streams`` and ``nsdgeneral`` labels
  and colour tables; the fsaverage pial surfaces (chapter 02's surface searchlight on the
  full 163,842-vertex mesh);
- with ``volume=True``: what the volume searchlights of chapters 02 and 05 read (1.8-mm betas and
  ``brainmask.nii.gz``), the subject's ``streams``/``nsdgeneral`` ROI volumes, and the
  transforms that project a 1.8-mm map to fsaverage (NSD's ``nsd_mapdata`` route:
  ``transforms/{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz`` onto the subject's cortical depths,
  then ``transforms/{lh,rh}.white-to-fsaverage.mgz``).

Notes
-----
Chapter 02 reads the transform files for the paper's searchlight
(:func:`~brainllm_utils.nsd.project_to_fsaverage`); they and the ROI volumes (read only by
analyses run with ``space="func1pt8mm"``) are listed with ``required=False``: the downloader
skips an optional file the bucket lacks with a warning instead of failing, and chapter 02
then stops at the projection with the missing file's name and download hint.
"""

from __future__ import annotations

import re
import warnings
from collections import OrderedDict
from dataclasses import dataclass

from .layout import (
    ANNOTATIONS,
    COCO_DIR,
    EXPDESIGN,
    N_SUBJECTS,
    NSD_SESSIONS,
    SPACES,
    STIM_INFO,
    STIMULI,
    beta_dir,
    beta_files,
    responses_file,
    subject_name,
)

__all__ = [
    "BookFile",
    "book_files",
    "parse_sessions",
    "coco_source",
    "estimated_size",
    "book_files_table",
    "CHAPTERS",
    "COCO_ANNOTATIONS_ZIP",
    "COCO_IMAGE_ZIPS",
]

#: Notebook stems of the chapters that read NSD files, in book order.
CHAPTERS = ("00_data_tour", "01_feature_spaces", "02_rsa", "03_encoding", "04_decoding",
            "05_image_to_llm")
_BETA_CHAPTERS = ("00_data_tour", "02_rsa", "03_encoding", "04_decoding", "05_image_to_llm")
#: Atlases the chapters read on fsaverage (``streams``: ROI analyses; ``nsdgeneral``:
#: chapters 00 and 03, and the encoding ROI of the batch runner).
#: Chapters that read the 1.8-mm betas, the brain mask and the transforms to fsaverage (the
#: paper's volume searchlight in 02 and its network contrasts in 05).
_VOLUME_CHAPTERS = ("02_rsa", "05_image_to_llm")
_FS_ATLASES = {"streams": _BETA_CHAPTERS, "nsdgeneral": ("00_data_tour", "03_encoding")}
#: The COCO zip (path under COCO's base URL) holding the captions and instances JSONs.
COCO_ANNOTATIONS_ZIP = "annotations/annotations_trainval2017.zip"
#: The COCO image zips (path under COCO's base URL) by split.
COCO_IMAGE_ZIPS = {"train2017": "zips/train2017.zip", "val2017": "zips/val2017.zip"}
_COCO_JSONS = tuple(f"{k}_{s}.json" for k in ("captions", "instances") for s in ("train2017", "val2017"))
_MAX_SESSIONS = max(NSD_SESSIONS.values())


@dataclass(frozen=True)
class BookFile:
    """One file (or, for COCO images, one folder) of an NSD root that the book reads.

    Attributes
    ----------
    relpath : str
        Path relative to the NSD root, e.g. ``"nsddata/experiments/nsd/nsd_expdesign.mat"``.
        A trailing ``/`` marks a folder unpacked from a COCO image zip
        (``"coco/train2017/"``).
    source : {"s3", "coco"}
        ``"s3"``: the key in ``s3://natural-scenes-dataset/`` equals ``relpath``;
        ``"coco"``: from COCO's own zips (:func:`coco_source`).
    chapters : tuple of str
        Notebook stems that read it (``"00_data_tour"`` … ``"05_image_to_llm"``).
    required : bool
        ``False`` for files only an optional analysis reads (or none yet: the transforms).
    size : int, optional
        Expected bytes when known (filled from a bucket or server listing), else ``None``.
    """

    relpath: str
    source: str
    chapters: tuple[str, ...]
    required: bool
    size: int | None = None

    def __post_init__(self):
        if self.source not in ("s3", "coco"):
            raise ValueError(f"source={self.source!r}: expected 's3' or 'coco'")
        unknown = [c for c in self.chapters if c not in CHAPTERS]
        if unknown:
            raise ValueError(f"chapters={unknown}: expected names from {CHAPTERS}")
        if self.size is not None and (not isinstance(self.size, int) or self.size < 0):
            raise ValueError(f"size={self.size!r}: expected a byte count >= 0 or None")


def parse_sessions(text: str) -> list[int]:
    """Session numbers from a string such as ``"1-5,7"`` (sorted, without duplicates).

    Parameters
    ----------
    text : str
        Comma-separated 1-based session numbers and inclusive ranges ``a-b``.

    Returns
    -------
    sessions : list of int
        The sessions, ascending.

    Raises
    ------
    ValueError
        For an empty string, a malformed item, a reversed range, or a session outside
        1 … 40 (NSD's largest session count); the message names ``sessions``.

    Examples
    --------
    >>> parse_sessions("1-3,5")
    [1, 2, 3, 5]
    """
    if not isinstance(text, str):
        raise TypeError(f"sessions={text!r}: expected a string such as '1-5,7'")
    out: set[int] = set()
    items = [t.strip() for t in text.split(",")]
    if not any(items):
        raise ValueError(f"sessions={text!r}: expected session numbers such as '1-5,7'")
    for item in items:
        m = re.fullmatch(r"(\d+)(?:\s*-\s*(\d+))?", item)
        if not m:
            raise ValueError(f"sessions={text!r}: cannot read {item!r} (expected 'N' or 'A-B', e.g. '1-5,7')")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if b < a:
            raise ValueError(f"sessions={text!r}: range {item!r} runs backwards")
        out.update(range(a, b + 1))
    _check_range(sorted(out), text)
    return sorted(out)


def _check_range(sessions: list[int], given) -> None:
    bad = [s for s in sessions if not 1 <= s <= _MAX_SESSIONS]
    if bad:
        raise ValueError(f"sessions={given!r}: session(s) {bad} outside 1..{_MAX_SESSIONS} "
                         f"(NSD has at most {_MAX_SESSIONS} sessions per subject)")


def _session_list(sessions) -> list[int] | None:
    """``None`` (all), or the validated requested sessions."""
    if sessions is None:
        return None
    if isinstance(sessions, str):
        return parse_sessions(sessions)
    if isinstance(sessions, bool):
        raise TypeError(f"sessions={sessions!r}: expected None, an int, a list of ints or a string")
    if isinstance(sessions, int) or (hasattr(sessions, "__index__") and not hasattr(sessions, "__len__")):
        n = int(sessions)
        if not 1 <= n <= _MAX_SESSIONS:
            raise ValueError(f"sessions={sessions!r}: expected a session count in 1..{_MAX_SESSIONS}")
        return list(range(1, n + 1))
    try:
        items = list(sessions)
    except TypeError:
        raise TypeError(f"sessions={sessions!r}: expected None, an int, a list of ints or a string") from None
    if not items:
        raise ValueError("sessions=[]: expected at least one session")
    out = []
    for s in items:
        if isinstance(s, bool) or not hasattr(s, "__index__"):
            raise TypeError(f"sessions={sessions!r}: {s!r} is not an integer session number")
        out.append(int(s))
    out = sorted(set(out))
    _check_range(out, sessions)
    return out


def _subject_list(subjects) -> list[str]:
    if isinstance(subjects, (str, int)) or hasattr(subjects, "__index__"):
        subjects = [subjects]
    try:
        items = list(subjects)
    except TypeError:
        raise TypeError(f"subjects={subjects!r}: expected subject numbers or names") from None
    if not items:
        raise ValueError("subjects=[]: expected at least one subject (1..8 or 'subj01'..'subj08')")
    names = []
    for s in items:
        try:
            name = subject_name(s)
        except ValueError as err:
            raise ValueError(f"subjects: {err}") from None
        if int(name[4:]) not in NSD_SESSIONS:
            raise ValueError(f"subjects: {s!r} is not an NSD subject (expected 1..{N_SUBJECTS})")
        if name not in names:
            names.append(name)
    return sorted(names)


def _space_list(spaces) -> list[str]:
    if isinstance(spaces, str):
        spaces = [spaces]
    out = []
    for sp in spaces:
        if sp not in SPACES:
            raise ValueError(f"spaces: {sp!r} is not a space of the betas (expected one of {SPACES})")
        if sp not in out:
            out.append(sp)
    if not out:
        raise ValueError(f"spaces=(): expected at least one of {SPACES}")
    return out


def book_files(subjects, sessions=None, spaces=("fsaverage",), *, coco_images: bool = False,
               volume: bool = True) -> list[BookFile]:
    """Every file the book reads for a selection of subjects, sessions and spaces.

    Parameters
    ----------
    subjects : iterable of int or str
        NSD subjects as ``1`` … ``8`` or ``"subj01"`` … (a single one is accepted too).
    sessions : None, int, sequence of int or str, optional
        ``None``: each subject's NSD sessions (40, 40, 32, 30, 40, 32, 40, 30); an int ``n``:
        sessions 1 … n; a sequence of session numbers; or a string such as ``"1-5,7"``
        (:func:`parse_sessions`). Sessions beyond a subject's count are dropped for that
        subject with a warning.
    spaces : sequence of {"fsaverage", "func1pt8mm"}, default=("fsaverage",)
        Spaces whose betas (and ``ncsnr``) every chapter may read.
    coco_images : bool, default=False
        Add the COCO 2017 train and val images (``coco/{train2017,val2017}/``) that chapter
        05 trains on.
    volume : bool, default=True
        Add what chapter 02's volume searchlight and its projection to fsaverage need:
        1.8-mm betas of the selected sessions, ``brainmask.nii.gz``, ROI volumes and the
        transform files (these last two are ``required=False``).

    Returns
    -------
    files : list of BookFile
        Unique relative paths, in a stable order (shared files, then per subject); sizes
        are ``None`` (a listing fills them).

    Raises
    ------
    ValueError
        For an unknown subject, session or space (the message names the parameter).

    Notes
    -----
    The transform files (``nsddata/ppdata/subjXX/transforms/{lh,rh}.func1pt8-to-layerB{1,2,3}.mgz``
    and ``{lh,rh}.white-to-fsaverage.mgz``, NSD's ``nsd_mapdata`` route from the 1.8-mm
    volume to fsaverage) project chapter 02's volume searchlight to fsaverage (the paper's
    searchlight); they are listed with ``required=False`` (a bucket without them warns). The
    subjects' ROI volumes are ``required=False`` too (read only by analyses run with
    ``space="func1pt8mm"``).
    """
    names = _subject_list(subjects)
    wanted = _session_list(sessions)
    spaces = _space_list(spaces)
    if not isinstance(coco_images, bool):
        raise TypeError(f"coco_images={coco_images!r}: expected True or False")
    if not isinstance(volume, bool):
        raise TypeError(f"volume={volume!r}: expected True or False")

    files: OrderedDict[str, BookFile] = OrderedDict()

    def add(relpath, chapters, required=True, source="s3"):
        chapters = tuple(c for c in CHAPTERS if c in chapters)
        old = files.get(relpath)
        if old is not None:  # the union of readers; required if any reader needs it
            chapters = tuple(c for c in CHAPTERS if c in chapters or c in old.chapters)
            required = required or old.required
        files[relpath] = BookFile(relpath, source, chapters, required)

    add(EXPDESIGN, CHAPTERS)
    add(STIM_INFO, CHAPTERS)
    add(STIMULI, ("00_data_tour", "04_decoding", "05_image_to_llm"))
    for js in _COCO_JSONS:
        add(f"{ANNOTATIONS}/{js}", CHAPTERS, source="coco")
    if coco_images:
        for split in COCO_IMAGE_ZIPS:
            add(f"{COCO_DIR}/{split}/", ("05_image_to_llm",), source="coco")
    if "fsaverage" in spaces:
        for atlas, chapters in _FS_ATLASES.items():
            for h in ("lh", "rh"):
                add(f"nsddata/freesurfer/fsaverage/label/{h}.{atlas}.mgz", chapters)
            add(f"nsddata/freesurfer/fsaverage/label/{atlas}.mgz.ctab", chapters)
        for h in ("lh", "rh"):
            add(f"nsddata/freesurfer/fsaverage/surf/{h}.pial", _VOLUME_CHAPTERS)  # surface discs
    else:  # the colour tables name the labels of the subjects' ROI volumes too
        for atlas, chapters in _FS_ATLASES.items():
            add(f"nsddata/freesurfer/fsaverage/label/{atlas}.mgz.ctab", chapters)

    clipped = {}
    for name in names:
        n_max = NSD_SESSIONS[int(name[4:])]
        subj_sessions = list(range(1, n_max + 1)) if wanted is None else [s for s in wanted if s <= n_max]
        if wanted is not None and len(subj_sessions) < len(wanted):
            clipped[name] = n_max
        if not subj_sessions:
            raise ValueError(f"sessions={sessions!r}: {name} has only {n_max} sessions, none selected")
        add(responses_file(name), _BETA_CHAPTERS)
        for space in spaces:
            for s in subj_sessions:
                for rel in beta_files(name, space, s):
                    add(rel, _BETA_CHAPTERS)
            d = beta_dir(name, space)
            nc = [f"{d}/{h}.ncsnr.mgh" for h in ("lh", "rh")] if space == "fsaverage" else [f"{d}/ncsnr.nii.gz"]
            for rel in nc:
                add(rel, ("00_data_tour", "03_encoding"))
            if space == "func1pt8mm":
                add(f"nsddata/ppdata/{name}/func1pt8mm/brainmask.nii.gz", _BETA_CHAPTERS)
        if volume:
            for s in subj_sessions:
                for rel in beta_files(name, "func1pt8mm", s):
                    add(rel, _VOLUME_CHAPTERS)
            add(f"nsddata/ppdata/{name}/func1pt8mm/brainmask.nii.gz", _VOLUME_CHAPTERS)
        if volume or "func1pt8mm" in spaces:
            for atlas, chapters in _FS_ATLASES.items():
                add(f"nsddata/ppdata/{name}/func1pt8mm/roi/{atlas}.nii.gz", chapters,
                    required=False)
        if volume:
            tdir = f"nsddata/ppdata/{name}/transforms"
            for h in ("lh", "rh"):
                for depth in ("layerB1", "layerB2", "layerB3"):
                    add(f"{tdir}/{h}.func1pt8-to-{depth}.mgz", _VOLUME_CHAPTERS, required=False)
                add(f"{tdir}/{h}.white-to-fsaverage.mgz", _VOLUME_CHAPTERS, required=False)
    if clipped:
        warnings.warn(
            f"sessions={sessions!r}: clipped to each subject's NSD sessions: "
            + ", ".join(f"{n} has {k}" for n, k in clipped.items()), stacklevel=2)
    return list(files.values())


def coco_source(relpath: str) -> tuple[str, str]:
    """Where a ``source="coco"`` file comes from: ``(zip path under COCO's URL, member)``.

    Parameters
    ----------
    relpath : str
        A :attr:`BookFile.relpath` with ``source == "coco"``.

    Returns
    -------
    zip_path : str
        E.g. ``"annotations/annotations_trainval2017.zip"`` (under
        ``http://images.cocodataset.org/``).
    member : str
        The zip member (``"annotations/captions_train2017.json"``) or, for an image folder,
        the members' prefix (``"train2017/"``).

    Raises
    ------
    ValueError
        For a path that does not come from COCO.
    """
    relpath = str(relpath)
    if relpath.startswith(f"{ANNOTATIONS}/") and relpath.rsplit("/", 1)[1] in _COCO_JSONS:
        return COCO_ANNOTATIONS_ZIP, "annotations/" + relpath.rsplit("/", 1)[1]
    for split, zp in COCO_IMAGE_ZIPS.items():
        if relpath.rstrip("/") == f"{COCO_DIR}/{split}":
            return zp, f"{split}/"
    raise ValueError(f"relpath={relpath!r} is not a COCO file of the book "
                     f"({ANNOTATIONS}/{{captions,instances}}_*2017.json or {COCO_DIR}/<split>/)")


# ----------------------------------------------------------------------------- size estimates
# Estimates from facts in shared/docs/nsd_layout.md (file shapes and dtypes; sizes quoted there),
# not from a listing: a dry run of the downloader reports the bucket's real sizes.
_FS_VERTICES = 163_842      # vertices per fsaverage hemisphere
_TRIALS = 750               # trials per session
_MGH_HEADER = 284           # bytes before the data of an MGH file
_NIFTI_HEADER = 352         # bytes before the data of a NIfTI-1 file
#: 1.8-mm grids of the subjects (nsd_layout.md §5): bound the size of the gzipped volume betas.
_FUNC1PT8_GRIDS = {1: (81, 104, 83), 2: (82, 106, 84), 3: (81, 106, 82), 4: (85, 99, 80),
                   5: (79, 97, 78), 6: (85, 113, 83), 7: (78, 95, 81), 8: (80, 103, 78)}


def _fs_surface_bytes() -> int:
    # FreeSurfer triangle file: 3-byte magic, two text lines (~50 bytes), two int32 counts,
    # float32 xyz per vertex, int32 triple per face (an icosahedron of order 7: 2V − 4 faces)
    return 3 + 50 + 8 + _FS_VERTICES * 12 + (2 * _FS_VERTICES - 4) * 12


_ESTIMATES = [
    # (pattern, bytes, how the number was obtained)
    (r".*/fsaverage/betas_fithrf_GLMdenoise_RR/[lr]h\.betas_session\d\d\.mgh",
     _MGH_HEADER + _FS_VERTICES * _TRIALS * 4, "163,842 × 750 float32 + header"),
    (r".*/fsaverage/betas_fithrf_GLMdenoise_RR/[lr]h\.ncsnr\.mgh",
     _MGH_HEADER + _FS_VERTICES * 4, "163,842 float32 + header"),
    (re.escape(STIMULI), 73_000 * 425 * 425 * 3, "73,000 × 425 × 425 × 3 uint8 (no HDF5 overhead)"),
    (re.escape(STIM_INFO), 11_000_000, "~11 MB (nsd_layout.md)"),
    (re.escape(f"{ANNOTATIONS}/captions_train2017.json"), 91_900_000, "91.9 MB (nsd_layout.md)"),
    (re.escape(f"{ANNOTATIONS}/captions_val2017.json"), 3_870_000, "3.87 MB (nsd_layout.md)"),
    (r"nsddata/freesurfer/fsaverage/surf/[lr]h\.pial", _fs_surface_bytes(),
     "163,842 vertices, 327,680 faces"),
]


def _volume_bound(relpath: str) -> int | None:
    m = re.fullmatch(r"nsddata_betas/ppdata/subj0(\d)/func1pt8mm/betas_fithrf_GLMdenoise_RR/"
                     r"betas_session\d\d\.nii\.gz", relpath)
    if not m or int(m.group(1)) not in _FUNC1PT8_GRIDS:
        return None
    x, y, z = _FUNC1PT8_GRIDS[int(m.group(1))]
    return _NIFTI_HEADER + x * y * z * _TRIALS * 2


def estimated_size(relpath: str) -> tuple[int | None, str]:
    """An estimate of a book file's size from NSD's documented shapes (no listing).

    Parameters
    ----------
    relpath : str
        A :attr:`BookFile.relpath`.

    Returns
    -------
    size : int or None
        Estimated bytes, or ``None`` where no documented fact gives it (compressed
        volumes and labels, the design ``.mat``, ``responses.tsv``, COCO instances and
        images: a dry run of the downloader lists their real sizes).
    basis : str
        How the estimate was obtained (empty when ``size`` is ``None``); it starts with
        ``"≤"`` when ``size`` is an upper bound (the gzipped 1.8-mm betas: their
        uncompressed size, X × Y × Z × 750 int16).
    """
    bound = _volume_bound(str(relpath))
    if bound is not None:
        return bound, "≤ X × Y × Z × 750 int16 uncompressed (gzip makes it smaller)"
    for pattern, size, basis in _ESTIMATES:
        if re.fullmatch(pattern, str(relpath)):
            return size, basis
    return None, ""


def _pattern(relpath: str) -> str:
    p = re.sub(r"subj0\d", "subjXX", relpath)
    p = re.sub(r"session\d\d", "sessionNN", p)
    p = re.sub(r"^(?:lh|rh)\.|(?<=/)(?:lh|rh)\.", "{lh,rh}.", p)
    return p


def _fmt_bytes(n: float) -> str:
    for unit, k in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= k:
            return f"{n / k:.1f} {unit}"
    return f"{int(n)} B"


def book_files_table(subjects, sessions=None, spaces=("fsaverage",), *, coco_images: bool = False,
                     volume: bool = True) -> str:
    """A markdown table of :func:`book_files` grouped by file pattern, with estimated sizes.

    Files that differ only in subject, session or hemisphere share a row; sizes come from
    :func:`estimated_size` (``?`` where unknown), and the total counts only known sizes.

    Parameters
    ----------
    subjects : iterable of int or str
        As :func:`book_files`.
    sessions : None, int, sequence of int or str, optional
        As :func:`book_files`.
    spaces : sequence of {"fsaverage", "func1pt8mm"}, default=("fsaverage",)
        As :func:`book_files`.
    coco_images : bool, default=False
        As :func:`book_files`.
    volume : bool, default=True
        As :func:`book_files`.

    Returns
    -------
    table : str
        Markdown: one row per pattern (files, chapters, required, estimated size each and in
        all), then a total row; ends with a newline.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = book_files(subjects, sessions, spaces, coco_images=coco_images, volume=volume)
    rows: OrderedDict[str, dict] = OrderedDict()
    for f in files:
        size, basis = estimated_size(f.relpath)
        row = rows.setdefault(_pattern(f.relpath), {
            "n": 0, "chapters": f.chapters, "required": f.required, "source": f.source,
            "sizes": set(), "total": 0, "unknown": False, "bound": False})
        row["n"] += 1
        if size is None:
            row["unknown"] = True
        else:
            row["sizes"].add(size)
            row["total"] += size
            row["bound"] |= basis.startswith("≤")
    lines = ["| file | from | files | chapters | required | each (estimate) | total (estimate) |",
             "|---|---|---:|---|---|---:|---:|"]
    total = bound_total = n_unknown = n_files = 0
    for key, r in rows.items():
        le = "≤ " if r["bound"] else ""
        if r["unknown"] or not r["sizes"]:
            each_s = tot_s = "?"
        else:
            lo, hi = min(r["sizes"]), max(r["sizes"])
            each_s = le + (_fmt_bytes(lo) if lo == hi or _fmt_bytes(lo) == _fmt_bytes(hi)
                           else f"{_fmt_bytes(lo)}–{_fmt_bytes(hi)}")
            tot_s = le + _fmt_bytes(r["total"])
        lines.append(f"| `{key}` | {r['source']} | {r['n']} | {', '.join(c[:2] for c in r['chapters'])} "
                     f"| {'yes' if r['required'] else 'no'} | {each_s} | {tot_s} |")
        if r["unknown"]:
            n_unknown += r["n"]
        elif r["bound"]:
            bound_total += r["total"]
        else:
            total += r["total"]
        n_files += r["n"]
    summary = f"**{_fmt_bytes(total)}**"
    if bound_total:
        summary += f" + ≤ {_fmt_bytes(bound_total)} (upper bounds)"
    if n_unknown:
        summary += f" + {n_unknown} files of unknown size"
    lines.append(f"| **total** | | {n_files} | | | | {summary} |")
    return "\n".join(lines) + "\n"
