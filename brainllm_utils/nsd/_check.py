"""``python -m brainllm_utils.nsd check ROOT``: is a local NSD copy complete, intact and NSD-shaped?

:func:`check` reads the headers of image files (never a beta file's data), the design, the
stimulus table, ``responses.tsv`` and the brain masks, and reports, as a :class:`CheckReport`
of :class:`Finding` rows:

- **files**: each file the reader needs can be opened and is complete. How completeness is
  checked, per format:

  - ``.mgh`` (uncompressed): the file holds at least 284 header bytes plus
    ``prod(shape) × itemsize`` data bytes;
  - ``.nii``: at least ``vox_offset + prod(shape) × itemsize`` bytes;
  - ``.nii.gz``: the gzip trailer's ISIZE (uncompressed size mod 2³²) equals
    ``vox_offset + prod(shape) × itemsize`` (a 4-byte read); when it does not (a truncated
    file, or a valid multi-member gzip), the file is decompressed to its end in 16 MB pieces
    (memory stays bounded) and the decompressed size is compared instead;
  - ``.mgz`` (small label files): always decompressed to the end, as above;
  - ``.hdf5``: HDF5 itself refuses a file shorter than its recorded end of allocation
    (truncation), and a contiguous ``imgBrick`` must end inside the file;
  - ``.mat``, ``.csv``, ``.tsv``: parsed;
  - COCO ``.json`` files: starts with ``{`` and ends with ``}`` (a cut-off download does
    not); files under 32 MB are also parsed. COCO image folders are only checked to be
    non-empty (single JPEG files are not opened);
  - fsaverage surfaces (``surf/{lh,rh}.pial`` …): read whole (a few MB).

- **internal consistency** (always checked, on the sandbox too): the trial axis of every beta
  file equals the subject's other files (``trials_per_session``); sessions on disk have no
  gaps and agree with ``responses.tsv``; ``responses.tsv`` agrees with the design
  (:meth:`NSD.trial_table`); every planned image is shown three times in ``masterordering``;
  the first ``sharedix.size`` columns of ``subjectim`` are the shared images; CSV rows ==
  ``imgBrick`` images == images of the design; lh/rh vertex counts agree between betas,
  labels, ``ncsnr`` and surface meshes; a subject's volumes (betas, brain mask, ROIs,
  ``ncsnr``) share one grid and one affine; volume betas are int16 and surface betas float.
- **NSD facts** (:data:`NSD_FACTS`), checked only when the root looks like the full NSD
  release (73,000 images in the CSV, the design or ``imgBrick``; a (8, 10000) ``subjectim``;
  or a 30,000-trial ``masterordering``) and is not a generated sandbox (``sandbox_truth/``):
  session counts, 750 trials per session, images seen three times per subject, the 515
  shared test images, the design's shapes, 163,842 fsaverage vertices per hemisphere, the
  1.8 mm grids and affines (an affine other than nsdcode's formula only warns). Otherwise
  they are reported as skipped ("not NSD-sized").
- **chapters**: what each notebook needs (``_manifest.book_files``) that is not on disk, and
  the command that downloads it.
- **resources**: disk, memory and time for a profile on this machine
  (:func:`estimate_resources`; estimates, labelled so).

Exit status of the command line: 0 when usable (warnings allowed), 1 when any error.
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import math
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._utils.docs import fill_doc
from ._design import format_sessions
from .layout import (
    ANNOTATIONS,
    BETA_VERSION,
    COCO_DIR,
    EXPDESIGN,
    NSD_SESSIONS,
    STIM_INFO,
    STIMULI,
    NSDFileError,
    beta_dir,
    responses_file,
)

__all__ = [
    "LEVELS",
    "GROUPS",
    "NSD_FACTS",
    "CHAPTERS",
    "Finding",
    "ChapterStatus",
    "SubjectSize",
    "ResourceEstimate",
    "CheckReport",
    "check",
    "estimate_resources",
    "add_arguments",
    "run",
]

#: Finding levels, from harmless to fatal. ``skipped``: a check that does not apply here
#: (e.g. an NSD fact on a root that is not NSD-sized).
LEVELS = ("ok", "skipped", "warning", "error")
#: Finding groups: file integrity, internal consistency, NSD's release facts, chapters, resources.
GROUPS = ("files", "consistency", "nsd facts", "chapters", "resources")
#: The book's notebooks, in order (the stems ``book_files`` names in ``BookFile.chapters``).
CHAPTERS = ("00_data_tour", "01_feature_spaces", "02_rsa", "03_encoding", "04_decoding", "05_image_to_llm")

#: Facts of the full NSD release (shared/docs/nsd_layout.md §2, §3, §5), checked only on an
#: NSD-sized root. ``images_3x``: images a subject sees exactly 3 times over its sessions.
NSD_FACTS = {
    "n_images": 73000,
    "image_shape": (425, 425, 3),
    "masterordering": 30000,
    "subjectim": (8, 10000),
    "sharedix": 1000,
    "sessions": dict(NSD_SESSIONS),
    "trials_per_session": 750,
    "n_test": 515,
    "n_vertices": 163842,
    "voxel_mm": 1.8,
    "grids": {1: (81, 104, 83), 2: (82, 106, 84), 3: (81, 106, 82), 4: (85, 99, 80),
              5: (79, 97, 78), 6: (85, 113, 83), 7: (78, 95, 81), 8: (80, 103, 78)},
    "images_3x": {1: 10000, 2: 10000, 3: 6234, 4: 5445, 5: 10000, 6: 6234, 7: 10000, 8: 5445},
}

_MGH_HEADER = 284
#: A generated sandbox holds this truth card (``synth.is_sandbox``'s test; ``nsd`` cannot import
#: ``synth``, which imports ``nsd``): its NSD facts are never checked, even at NSD's sizes.
_SANDBOX_CARD = "sandbox_truth/card.json"
#: vertices per hemisphere of fsaverage5, whose mesh chapter 02 takes from nilearn
_NILEARN_MESH_VERTICES = 10242
_GZ_PIECE = 16 * 2**20
_JSON_PARSE_LIMIT = 32 * 2**20


# ----------------------------------------------------------------------------- report types
@dataclass(frozen=True)
class Finding:
    """One result of :func:`check`.

    Attributes
    ----------
    level : {"ok", "skipped", "warning", "error"}
        ``error``: the copy is damaged (the book would fail or compute wrong numbers);
        ``warning``: usable, but something deserves attention; ``skipped``: the check does
        not apply (e.g. an NSD fact on the sandbox).
    check : str
        The check's name, e.g. ``"trials per session"``.
    message : str
        What was found and what was expected.
    file : str or None
        The file concerned, relative to the root (``None`` when it is about the whole root).
    group : {"files", "consistency", "nsd facts", "chapters", "resources"}
        Which kind of check.
    """

    level: str
    check: str
    message: str
    file: str | None = None
    group: str = "consistency"


@dataclass(frozen=True)
class ChapterStatus:
    """What one notebook needs and whether it is all on disk.

    Attributes
    ----------
    chapter : str
        Notebook stem, e.g. ``"03_encoding"``.
    runnable : bool
        Every required file is on disk and none failed a check.
    missing : tuple of str
        Required files (relative paths) that are missing.
    optional_missing : tuple of str
        Optional files that are missing (the chapter runs without them).
    damaged : tuple of str
        Required files that are on disk but failed a check (truncated, wrong shape, ...).
    hint : str
        The command that downloads what is missing (empty when nothing is).
    """

    chapter: str
    runnable: bool
    missing: tuple[str, ...] = ()
    optional_missing: tuple[str, ...] = ()
    damaged: tuple[str, ...] = ()
    hint: str = ""


@dataclass(frozen=True)
class SubjectSize:
    """The sizes of one subject's data that drive :func:`estimate_resources`.

    Attributes
    ----------
    subject : str
        ``"subjNN"``.
    n_images : int
        Distinct images shown in the sessions on disk (rows of the beta cache).
    n_sessions : int
        Sessions on disk.
    trials_per_session : int
        Trials per session (750 on NSD).
    columns : dict of str to int
        Columns per space: fsaverage vertices (lh + rh), func1pt8mm brain-mask voxels.
    beta_bytes : dict of str to int
        Bytes of the beta files on disk per space.
    """

    subject: str
    n_images: int
    n_sessions: int
    trials_per_session: int
    columns: dict = field(default_factory=dict)
    beta_bytes: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ResourceEstimate:
    """Disk, memory and time that running the book needs here (:func:`estimate_resources`).

    Every number is an estimate from file sizes and stated rates, not a measurement.

    Attributes
    ----------
    profile : str
        The profile estimated (``paper``, ``sandbox`` or ``smoke``).
    data_bytes : int
        Bytes of the files under the root.
    cache_bytes : int
        Bytes the beta caches will take (all subjects and spaces).
    free_bytes : int or None
        Free bytes on the cache's file system (``None`` when unknown).
    ram_bytes : int
        Memory of the machine (or the ``memory_gb`` given).
    cpus : int
        CPU cores of the machine.
    peak_bytes : dict of str to int
        Estimated peak memory per notebook process.
    workers : int
        Notebooks that can run at once within 80 % of ``ram_bytes`` (at most ``cpus``),
        or the ``workers`` given.
    time_s : dict of str to float
        Rough wall time per notebook on one worker, in seconds.
    notes : tuple of str
        The formulas and rates used, in words.
    """

    profile: str
    data_bytes: int
    cache_bytes: int
    free_bytes: int | None
    ram_bytes: int
    cpus: int
    peak_bytes: dict
    workers: int
    time_s: dict
    notes: tuple[str, ...] = ()


@dataclass
class CheckReport:
    """The outcome of :func:`check`: findings, per-chapter status and resource estimates.

    Attributes
    ----------
    root : str
        The NSD root checked.
    profile : str
        The profile the resources were estimated for.
    nsd_sized : bool
        The root looks like the full NSD release (73,000 images) and is not a generated
        sandbox: its NSD facts were checked.
    sandbox : bool
        The root is a generated sandbox (it holds ``sandbox_truth/card.json``).
    subjects : dict of str to dict
        ``{subject: {space: [sessions on disk]}}``.
    findings : list of Finding
        Every check's result, in the order run.
    chapters : list of ChapterStatus
        One per notebook.
    resources : ResourceEstimate or None
        The estimates (``None`` when the root could not be read far enough).
    """

    root: str
    profile: str
    nsd_sized: bool = False
    sandbox: bool = False
    subjects: dict = field(default_factory=dict)
    findings: list = field(default_factory=list)
    chapters: list = field(default_factory=list)
    resources: ResourceEstimate | None = None

    @property
    def errors(self) -> list[Finding]:
        """The findings of level ``error``."""
        return [f for f in self.findings if f.level == "error"]

    @property
    def warnings(self) -> list[Finding]:
        """The findings of level ``warning``."""
        return [f for f in self.findings if f.level == "warning"]

    @property
    def usable(self) -> bool:
        """No error (warnings allowed)."""
        return not self.errors

    @property
    def exit_code(self) -> int:
        """0 when usable, 1 when damaged (the command line's exit status)."""
        return 0 if self.usable else 1

    def to_dict(self) -> dict:
        """The report as plain JSON-able data.

        Returns
        -------
        data : dict
            The fields, with ``usable``, ``exit_code`` and per-level counts added.
        """
        data = dataclasses.asdict(self)
        data["usable"] = self.usable
        data["exit_code"] = self.exit_code
        data["counts"] = {lvl: sum(f.level == lvl for f in self.findings) for lvl in LEVELS}
        return data

    def to_json(self, path=None) -> str:
        """The report as JSON text, optionally written to ``path``.

        Parameters
        ----------
        path : str or path-like, optional
            Write the text there too (atomically).

        Returns
        -------
        text : str
            Indented JSON of :meth:`to_dict`.
        """
        text = json.dumps(self.to_dict(), indent=2, default=_json_default)
        if path is not None:
            from .._utils.paths import atomic_write_text

            atomic_write_text(path, text + "\n")
        return text

    def format(self, show_ok: bool = False) -> str:
        """A readable report: verdict, findings by group, chapters, resources.

        Parameters
        ----------
        show_ok : bool, default=False
            List passing checks one by one too (otherwise they are counted).

        Returns
        -------
        text : str
            Plain text, one finding per line.
        """
        lines = [f"NSD check of {self.root}"]
        verdict = "USABLE" if self.usable else "DAMAGED"
        lines.append(
            f"verdict: {verdict} ({len(self.errors)} errors, {len(self.warnings)} warnings); "
            + ("NSD-sized: NSD facts checked" if self.nsd_sized
               else ("a generated sandbox, " if self.sandbox else "")
               + "not NSD-sized: NSD facts skipped, internal consistency checked")
        )
        for name, sessions in self.subjects.items():
            parts = [f"{space} {format_sessions(s) or 'none'}" for space, s in sessions.items()]
            lines.append(f"  {name}: sessions on disk: " + "; ".join(parts))
        marks = {"ok": "ok  ", "skipped": "skip", "warning": "WARN", "error": "ERR "}
        for group in GROUPS:
            if group == "chapters" and self.chapters:
                continue  # listed below, with the download hints
            rows = [f for f in self.findings if f.group == group]
            if not rows:
                continue
            n_ok = sum(f.level == "ok" for f in rows)
            lines.append(f"\n[{group}] {n_ok}/{len(rows)} ok")
            for f in rows:
                if f.level == "ok" and not show_ok:
                    continue
                where = f" ({f.file})" if f.file else ""
                lines.append(f"  {marks[f.level]} {f.check}: {f.message}{where}")
        if self.chapters:
            lines.append("\n[chapters]")
            for c in self.chapters:
                if c.runnable:
                    extra = f" (optional missing: {_short(c.optional_missing)})" if c.optional_missing else ""
                    lines.append(f"  {c.chapter}: runnable{extra}")
                    continue
                if c.damaged:
                    lines.append(f"  {c.chapter}: damaged {_short(c.damaged)} (delete and download again)")
                if c.missing:
                    lines.append(f"  {c.chapter}: missing {_short(c.missing)}")
                    if c.hint:
                        lines.append(f"      get it with: {c.hint}")
        r = self.resources
        if r is not None:
            lines.append(f"\n[resources] estimates for profile {r.profile!r} on this machine "
                         f"({_gb(r.ram_bytes)} RAM, {r.cpus} CPUs)")
            free = "unknown" if r.free_bytes is None else _gb(r.free_bytes)
            lines.append(f"  disk: data {_gb(r.data_bytes)}, beta caches {_gb(r.cache_bytes)} more "
                         f"(free: {free})")
            lines.append(f"  workers: {r.workers} notebooks at once")
            for ch in r.peak_bytes:
                lines.append(f"  {ch}: peak memory ≈ {_gb(r.peak_bytes[ch])}, "
                             f"time ≈ {_duration(r.time_s.get(ch, float('nan')))} (rough estimate)")
            for note in r.notes:
                lines.append(f"  note: {note}")
        return "\n".join(lines)


def _json_default(obj):
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, (tuple, set)):
        return list(obj)
    return str(obj)


def _gb(n) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def _duration(s: float) -> str:
    if not math.isfinite(s):
        return "unknown"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.0f} days"


def _short(paths, n: int = 3) -> str:
    paths = list(paths)
    head = ", ".join(paths[:n])
    return head + (f" … and {len(paths) - n} more" if len(paths) > n else "")


# ----------------------------------------------------------------------------- file integrity
def _gzip_size(path: Path, expected: int | None, trust_trailer: bool = True) -> tuple[int | None, str | None]:
    """Uncompressed size of a gzip file, or ``(None, why)`` when it is not a complete gzip.

    With ``trust_trailer``, a trailer ISIZE equal to ``expected`` mod 2³² is taken as the
    answer (4 bytes read); otherwise the file is decompressed to its end piece by piece.
    """
    size = path.stat().st_size
    if size < 18:
        return None, f"{size} bytes: shorter than an empty gzip file"
    with open(path, "rb") as fh:
        magic = fh.read(2)
        fh.seek(-4, os.SEEK_END)
        isize = int.from_bytes(fh.read(4), "little")
    if magic != b"\x1f\x8b":
        return None, "not a gzip file (wrong magic bytes)"
    if trust_trailer and expected is not None and isize == expected % 2**32:
        return expected, None
    n = 0
    try:
        with gzip.open(path, "rb") as fh:
            while True:
                piece = fh.read(_GZ_PIECE)
                if not piece:
                    break
                n += len(piece)
    except (EOFError, OSError, gzip.BadGzipFile) as err:
        return None, f"the gzip stream ends before its end marker ({err}): truncated"
    return n, None


def _image_completeness(path: Path, img) -> str | None:
    """Why the image file at ``path`` is incomplete (None when its data all exist)."""
    header = img.header
    shape = tuple(int(s) for s in img.shape)
    itemsize = np.dtype(header.get_data_dtype()).itemsize
    data = int(np.prod(shape, dtype=np.int64)) * itemsize
    name = path.name
    if name.endswith(".mgh"):
        need = _MGH_HEADER + data
        size = path.stat().st_size
        return None if size >= need else f"{size} bytes, the header's shape {shape} needs {need}: truncated"
    if name.endswith(".mgz"):
        n, why = _gzip_size(path, None, trust_trailer=False)
        if why:
            return why
        need = _MGH_HEADER + data
        return None if n >= need else f"{n} bytes uncompressed, shape {shape} needs {need}: truncated"
    # where the data start, as nibabel reads them (the header's vox_offset may be 0 for a
    # single-file NIfTI, meaning the 352-byte minimum)
    offset = int(getattr(img.dataobj, "offset", 352))
    need = offset + data
    if name.endswith(".nii.gz"):
        n, why = _gzip_size(path, need)
        if why:
            return why
        return None if n >= need else f"{n} bytes uncompressed, shape {shape} needs {need}: truncated"
    size = path.stat().st_size
    return None if size >= need else f"{size} bytes, shape {shape} needs {need}: truncated"


# ----------------------------------------------------------------------------- the checker
class _Checker:
    """Runs the checks of :func:`check` on one root, collecting findings."""

    def __init__(self, root: Path, profile: str):
        from ._reader import NSD

        self.root = root
        self.nsd = NSD(root)
        self.report = CheckReport(root=str(root), profile=profile)
        self.design = None
        self.n_csv = None
        self.brick_shape = None
        self.T = None
        self.sessions: dict[str, dict[str, list[int]]] = {}
        self.hemi_counts: dict[str, dict[str, int]] = {"lh": {}, "rh": {}}
        self.grids: dict[str, tuple] = {}
        self.affines: dict[str, np.ndarray] = {}
        self.mask_voxels: dict[str, int] = {}
        self.trial_counts: dict[str, int] = {}
        self.n_beta_ok = 0

    # -------------------------------------------------------------------- helpers
    def add(self, level, check, message, file=None, group="consistency"):
        if isinstance(file, Path):
            file = self.rel(file)
        self.report.findings.append(Finding(level, check, message, file, group))

    def rel(self, path: Path) -> str:
        try:
            return str(Path(path).relative_to(self.root))
        except ValueError:
            return str(path)

    def load_header(self, path: Path, check: str):
        """nibabel image of ``path`` with its completeness checked; None (and an error) if bad."""
        import nibabel as nib

        try:
            img = nib.load(path)
        except Exception as err:
            self.add("error", check, f"cannot read the header ({err}); truncated or corrupt?", path, "files")
            return None
        try:
            why = _image_completeness(path, img)
        except OSError as err:
            why = f"cannot read ({err})"
        if why:
            self.add("error", check, why, path, "files")
            return None
        return img

    @property
    def nsd_sized(self) -> bool:
        return self.report.nsd_sized

    def fact(self, check: str, ok: bool, message: str, file=None, bad: str = "error"):
        """An NSD-facts finding (level ``bad`` when not ``ok``); nothing on a root that is not NSD-sized."""
        if not self.nsd_sized:
            return
        self.add("ok" if ok else bad, check, message, file, "nsd facts")

    # -------------------------------------------------------------------- design
    def check_design(self):
        p = self.root / EXPDESIGN
        if not p.exists():
            self.add("error", "design", "missing (every chapter needs it)", EXPDESIGN, "files")
            return
        try:
            d = self.nsd.expdesign
        except NSDFileError as err:
            self.add("error", "design", str(err).replace(str(p), "").strip(": "), EXPDESIGN, "files")
            return
        self.design = d
        self.add("ok", "design", "readable", EXPDESIGN, "files")
        mo, sim, six = d["masterordering"], d["subjectim"], d["sharedix"]
        counts = np.bincount(mo, minlength=sim.shape[1] + 1)[1:]
        if np.all(counts == 3):
            self.add("ok", "images seen three times",
                     f"each of the {counts.size} images of masterordering is shown 3 times", EXPDESIGN)
        else:
            bad = np.flatnonzero(counts != 3)
            self.add("error", "images seen three times",
                     f"{bad.size} of {counts.size} subject images are not shown exactly 3 times in "
                     f"masterordering (e.g. 10k index {bad[0] + 1}: {counts[bad[0]]}×)", EXPDESIGN)
        S = six.size
        if sim.shape[1] >= S and np.all(sim[:, :S] == six[None, :]):
            self.add("ok", "shared images", f"subjectim[:, :{S}] == sharedix for every subject", EXPDESIGN)
        else:
            self.add("error", "shared images",
                     f"the first {S} columns of subjectim differ from sharedix", EXPDESIGN)

    # -------------------------------------------------------------------- stimuli
    def check_stimuli(self):
        p = self.root / STIM_INFO
        if not p.exists():
            self.add("error", "stimulus table", "missing (every chapter needs it)", STIM_INFO, "files")
        else:
            try:
                df = self.nsd.stim_info
                self.n_csv = len(df)
                self.add("ok", "stimulus table", f"{self.n_csv} rows", STIM_INFO, "files")
            except NSDFileError as err:
                self.add("error", "stimulus table", str(err).replace(str(p), "").strip(": "), STIM_INFO,
                         "files")
        p = self.root / STIMULI
        if p.exists():
            import h5py

            try:
                with h5py.File(p, "r") as f:
                    if "imgBrick" not in f:
                        raise KeyError("no dataset 'imgBrick'")
                    brick = f["imgBrick"]
                    self.brick_shape = tuple(int(s) for s in brick.shape)
                    dtype = brick.dtype
                    offset = brick.id.get_offset()
                    storage = brick.id.get_storage_size()
                if offset is not None and offset + storage > p.stat().st_size:
                    self.add("error", "stimulus images", f"imgBrick ends at byte {offset + storage}, the file "
                             f"has {p.stat().st_size}: truncated", STIMULI, "files")
                elif len(self.brick_shape) != 4 or self.brick_shape[3] != 3 or dtype != np.uint8:
                    self.add("error", "stimulus images", f"imgBrick is {dtype} {self.brick_shape}, expected "
                             "uint8 (n_images, height, width, 3)", STIMULI, "files")
                else:
                    self.add("ok", "stimulus images", f"imgBrick {self.brick_shape} uint8", STIMULI, "files")
            except (OSError, KeyError) as err:
                self.add("error", "stimulus images", f"cannot read imgBrick ({err}); truncated or corrupt?",
                         STIMULI, "files")
                self.brick_shape = None
        for kind in ("captions", "instances"):
            for split in ("train2017", "val2017"):
                rel = f"{ANNOTATIONS}/{kind}_{split}.json"
                if (self.root / rel).exists():
                    self.check_json(self.root / rel)

    def check_json(self, path: Path):
        size = path.stat().st_size
        try:
            with open(path, "rb") as fh:
                head = fh.read(64).lstrip()[:1]
                fh.seek(max(0, size - 64))
                tail = fh.read().rstrip()[-1:]
        except OSError as err:
            self.add("error", "COCO annotations", f"cannot read ({err})", path, "files")
            return
        if head != b"{" or tail != b"}":
            self.add("error", "COCO annotations", "does not start with '{' and end with '}': truncated or "
                     "not JSON", path, "files")
            return
        if size <= _JSON_PARSE_LIMIT:
            try:
                data = json.loads(path.read_text())
            except ValueError as err:
                self.add("error", "COCO annotations", f"not valid JSON ({err})", path, "files")
                return
            if not {"images", "annotations"} <= set(data):
                self.add("error", "COCO annotations", "expected 'images' and 'annotations' keys", path, "files")
                return
        self.add("ok", "COCO annotations", f"{size / 1e6:.1f} MB, complete", path, "files")

    def check_image_counts(self):
        n_design = None
        if self.design is not None:
            n_design = int(np.unique(self.design["subjectim"]).size)
            if int(self.design["subjectim"].max()) != n_design:
                self.add("error", "design images", f"subjectim holds {n_design} distinct images but ids up "
                         f"to {int(self.design['subjectim'].max())} (expected 1..{n_design})", EXPDESIGN)
        if self.n_csv is not None and n_design is not None:
            ok = self.n_csv == n_design
            self.add("ok" if ok else "error", "CSV rows vs design",
                     f"{self.n_csv} rows, the design has {n_design} images" + ("" if ok else ": rows missing"
                                                                                 if self.n_csv < n_design
                                                                                 else ": extra rows"),
                     STIM_INFO)
        if self.brick_shape is not None:
            ref = self.n_csv if self.n_csv is not None else n_design
            if ref is not None:
                ok = self.brick_shape[0] == ref
                self.add("ok" if ok else "error", "imgBrick images vs CSV",
                         f"imgBrick has {self.brick_shape[0]} images, the CSV/design {ref}", STIMULI)
        # the shared1000 column, when present, marks exactly sharedix
        if self.n_csv is not None and self.design is not None and "shared1000" in self.nsd.stim_info.columns:
            marked = np.flatnonzero(self.nsd.stim_info["shared1000"].to_numpy().astype(bool)) + 1
            ok = np.array_equal(marked, np.sort(self.design["sharedix"]))
            self.add("ok" if ok else "error", "shared1000 column",
                     "marks the sharedix images" if ok else
                     f"marks {marked.size} images, not the {self.design['sharedix'].size} of sharedix", STIM_INFO)
        # is this the full NSD release?
        facts = NSD_FACTS
        signs = []
        if self.design is not None:
            signs += [self.design["subjectim"].shape == tuple(facts["subjectim"]),
                      self.design["masterordering"].size == facts["masterordering"]]
        signs += [self.n_csv == facts["n_images"], n_design == facts["n_images"],
                  self.brick_shape is not None and self.brick_shape[0] == facts["n_images"]]
        self.report.sandbox = (self.root / _SANDBOX_CARD).is_file()
        self.report.nsd_sized = any(signs) and not self.report.sandbox
        if self.report.sandbox:
            self.add("skipped", "NSD facts", f"a generated sandbox ({_SANDBOX_CARD} exists"
                     + (", NSD-sized" if any(signs) else f", {n_design} images") + "): not NSD-sized data, "
                     "NSD's release facts are not checked; internal consistency is", None, "nsd facts")
            return
        if not self.report.nsd_sized:
            sizes = []
            if n_design is not None:
                sizes.append(f"{n_design} images")
            self.add("skipped", "NSD facts", "not NSD-sized (" + (", ".join(sizes) or "no design")
                     + f", NSD has {facts['n_images']}): NSD's release facts are not checked; "
                     "internal consistency is", None, "nsd facts")
            return
        if self.design is not None:
            d = self.design
            self.fact("design shapes", d["masterordering"].size == facts["masterordering"]
                      and d["subjectim"].shape == tuple(facts["subjectim"]) and d["sharedix"].size == facts["sharedix"],
                      f"masterordering {d['masterordering'].size}, subjectim {d['subjectim'].shape}, sharedix "
                      f"{d['sharedix'].size} (NSD: {facts['masterordering']}, {tuple(facts['subjectim'])}, "
                      f"{facts['sharedix']})", EXPDESIGN)
            mo = d["masterordering"]
            for s, n in sorted(facts["sessions"].items()):
                T = facts["trials_per_session"]
                got = int(np.sum(np.bincount(mo[: n * T]) == 3))
                want = facts["images_3x"].get(s)
                if want is not None:
                    self.fact(f"images seen 3× (subj{s:02d})", got == want,
                              f"{got} images 3× within {n} sessions (NSD: {want})", EXPDESIGN)
        if self.n_csv is not None:
            self.fact("CSV rows", self.n_csv == facts["n_images"], f"{self.n_csv} rows (NSD: {facts['n_images']})",
                      STIM_INFO)
        if self.brick_shape is not None:
            want = (facts["n_images"], *facts["image_shape"])
            self.fact("imgBrick shape", self.brick_shape == want, f"{self.brick_shape} (NSD: {want})", STIMULI)

    # -------------------------------------------------------------------- subjects and sessions
    def check_subjects(self):
        subjects = self.nsd.subjects
        if not subjects:
            self.add("error", "subjects", "no subject has betas under nsddata_betas/ppdata", "nsddata_betas/ppdata")
            return
        self.add("ok", "subjects", f"betas on disk for {', '.join(subjects)}", None)
        if len(subjects) == 1:
            self.add("warning", "subjects", "one subject: analyses that need ≥ 2 subjects (leave-one-subject-out "
                     "and inter-subject ceilings, group tests) will be skipped", None)
        for name in subjects:
            if int(name[4:]) not in NSD_SESSIONS:
                self.add("error", "subjects", f"{name} is not an NSD subject (subj01..subj08; the design has "
                         "8 rows): move it out of the root", f"nsddata_betas/ppdata/{name}", "files")
                continue
            self.check_subject(name)
        self.check_trial_counts()

    def session_files(self, name: str, space: str) -> dict[int, list[Path]]:
        d = self.root / beta_dir(name, space, BETA_VERSION)
        found: dict[int, list[Path]] = {}
        if d.is_dir():
            for p in sorted(d.iterdir()):
                # the names the reader opens (layout.beta_files): two-digit sessions
                pattern = (r"(?:lh|rh)\.betas_session(\d\d)\.mgh" if space == "fsaverage"
                           else r"betas_session(\d\d)\.nii\.gz")
                m = re.fullmatch(pattern, p.name)
                if m:
                    found.setdefault(int(m.group(1)), []).append(p)
        return found

    def check_subject(self, name: str):
        s = int(name[4:])
        self.sessions[name] = {}
        for space in ("fsaverage", "func1pt8mm"):
            files = self.session_files(name, space)
            if not files:
                continue
            complete = []
            for sess, paths in sorted(files.items()):
                if space == "fsaverage":
                    hemis = {p.name.split(".")[0] for p in paths}
                    if hemis != {"lh", "rh"}:
                        have = paths[0]
                        other = "rh" if "lh" in hemis else "lh"
                        self.add("error", "sessions on disk", f"session {sess}: {have.name} without its "
                                 f"{other} twin", have.parent / f"{other}.betas_session{sess:02d}.mgh", "files")
                        continue
                complete.append(sess)
            self.sessions[name][space] = complete
            if not complete:
                continue
            gaps = sorted(set(range(1, max(complete) + 1)) - set(complete))
            if gaps:  # one finding per subject and space, naming the first missing file
                g = gaps[0]
                fname = (f"lh.betas_session{g:02d}.mgh" if space == "fsaverage" else f"betas_session{g:02d}.nii.gz")
                self.add("warning", "sessions on disk",
                         f"{name} {space}: session{'s' if len(gaps) > 1 else ''} {format_sessions(gaps)} missing between "
                         f"the sessions on disk ({format_sessions(complete)}); the book uses the sessions on disk "
                         f"(NSD.sessions), download the missing ones for the full design",
                         self.root / beta_dir(name, space, BETA_VERSION) / fname, "files")
            for sess in complete:
                for p in files[sess]:
                    self.check_beta_file(name, space, sess, p)
            n_nsd = NSD_FACTS["sessions"].get(s)
            if n_nsd is not None:
                self.fact(f"sessions ({name} {space})", max(complete) <= n_nsd,
                          f"{len(complete)} of NSD's {n_nsd} sessions on disk"
                          + ("" if max(complete) <= n_nsd else f"; session {max(complete)} > {n_nsd}"))
        self.report.subjects[name] = self.sessions[name]
        self.check_responses(name)
        if any(sp == "fsaverage" for sp in self.sessions[name]):
            for h in ("lh", "rh"):
                p = self.root / beta_dir(name, "fsaverage", BETA_VERSION) / f"{h}.ncsnr.mgh"
                if p.exists():
                    img = self.load_header(p, "ncsnr")
                    if img is not None:
                        self.hemi_counts[h][self.rel(p)] = int(img.shape[0])
        self.check_volumes(name)

    def check_beta_file(self, name, space, sess, p: Path):
        img = self.load_header(p, "beta file")
        if img is None:
            return
        self.n_beta_ok += 1
        shape = tuple(int(x) for x in img.shape)
        dtype = np.dtype(img.header.get_data_dtype())
        rel = self.rel(p)
        if space == "fsaverage":
            if len(shape) != 4 or shape[1:3] != (1, 1):
                self.add("error", "beta file", f"shape {shape}, expected (n_vertices, 1, 1, n_trials)", p, "files")
                return
            if dtype.kind != "f":
                self.add("error", "beta file", f"dtype {dtype}, expected float (fsaverage betas are PSC)", p, "files")
            self.hemi_counts[p.name[:2]][rel] = shape[0]
        else:
            if len(shape) != 4:
                self.add("error", "beta file", f"shape {shape}, expected (X, Y, Z, n_trials)", p, "files")
                return
            if dtype != np.int16:
                self.add("error", "beta file", f"dtype {dtype}, expected int16 (PSC × 300; the reader divides "
                         "by 300)", p, "files")
            self.grids[rel] = shape[:3]
            self.affines[rel] = np.asarray(img.affine)
        self.trial_counts[rel] = shape[3]

    def check_trial_counts(self):
        if not self.trial_counts:
            return
        self.add("ok", "beta files", f"{self.n_beta_ok} beta files: headers readable, data complete", None,
                 "files")
        T, n = Counter(self.trial_counts.values()).most_common(1)[0]
        self.T = T
        bad = {f: t for f, t in self.trial_counts.items() if t != T}
        for f, t in bad.items():
            self.add("error", "trials per session", f"{t} trials, expected {T} (as {n} other beta files)", f)
        if not bad:
            self.add("ok", "trials per session", f"all {len(self.trial_counts)} beta files have {T} trials")
        try:
            reader_T = self.nsd.trials_per_session()
        except NSDFileError:
            reader_T = None
        if reader_T is not None and reader_T != T:
            self.add("error", "trials per session", f"the reader takes {reader_T} trials per session from the "
                     f"first subject's session 1, most files have {T}", None)
        self.fact("trials per session", T == NSD_FACTS["trials_per_session"],
                  f"{T} trials per session (NSD: {NSD_FACTS['trials_per_session']})")

    def check_responses(self, name: str):
        rel = responses_file(name)
        p = self.root / rel
        on_disk = [max(v) for v in self.sessions[name].values() if v]
        n_disk = max(on_disk) if on_disk else 0
        if not p.exists():
            self.add("warning", "responses.tsv", f"missing: {name}'s sessions are taken from the betas on disk "
                     f"({n_disk}); the design cannot be cross-checked", rel, "files")
            return
        try:
            resp = self.nsd._responses(name)
        except NSDFileError as err:
            self.add("error", "responses.tsv", str(err).replace(str(p), "").strip(": "), rel, "files")
            return
        if resp is None or not len(resp) or "SESSION" not in resp.columns:
            self.add("error", "responses.tsv", "no SESSION column or no rows", rel, "files")
            return
        sess = resp["SESSION"].to_numpy()
        n_resp = int(sess.max())
        per = np.bincount(sess.astype(np.int64), minlength=n_resp + 1)[1:]
        if np.any(per == 0):
            self.add("error", "responses.tsv", f"sessions {format_sessions(np.flatnonzero(per == 0) + 1)} have no rows "
                     f"(it lists sessions 1..{n_resp})", rel)
        if len(set(per[per > 0])) > 1:
            self.add("error", "responses.tsv", f"sessions have different trial counts ({sorted(set(per))})", rel)
        elif self.T is not None or self.trial_counts:
            T = self.T or Counter(self.trial_counts.values()).most_common(1)[0][0]
            if per[0] != T:
                self.add("error", "responses.tsv", f"{per[0]} rows per session, the beta files have {T} trials", rel)
        for space, sessions in self.sessions[name].items():
            if sessions and max(sessions) < n_resp:
                self.add("warning", "sessions vs responses.tsv",
                         f"{name}: responses.tsv lists {n_resp} sessions, {space} has sessions "
                         f"{format_sessions(sessions)} on disk: the book uses those", rel)
            elif sessions and max(sessions) > n_resp:
                self.add("warning", "sessions vs responses.tsv",
                         f"{name}: {max(sessions)} sessions on disk in {space}, responses.tsv lists only {n_resp}: "
                         "the reader ignores the betas beyond them", rel)
        n_nsd = NSD_FACTS["sessions"].get(int(name[4:]))
        if n_nsd is not None and self.nsd_sized and n_resp != n_nsd:
            self.add("warning", f"sessions in responses.tsv ({name})",
                     f"{n_resp} sessions, NSD has {n_nsd} (a copy from before the 2023 release lists 3 fewer)",
                     rel, "nsd facts")
        elif n_nsd is not None:
            self.fact(f"sessions in responses.tsv ({name})", True, f"{n_resp} sessions (NSD: {n_nsd})", rel)
        if self.design is None:
            return
        try:
            table = self.nsd.trial_table(name)
        except NSDFileError as err:
            self.add("error", "responses.tsv vs design", str(err).replace(str(p), "").strip(": "), rel)
            return
        except Exception as err:  # a design too short for the sessions, unreadable betas ...
            self.add("error", "responses.tsv vs design", f"cannot build the trial table ({err})", rel)
            return
        self.add("ok", "responses.tsv vs design", f"{len(table)} trials agree with masterordering/subjectim", rel)

    # -------------------------------------------------------------------- volumes
    def check_volumes(self, name: str):
        base = self.root / "nsddata" / "ppdata" / name / "func1pt8mm"
        extra = []
        if (base / "brainmask.nii.gz").exists():
            extra.append(base / "brainmask.nii.gz")
        if (base / "roi").is_dir():  # the files the book reads; others (aseg, mean, ...) are not checked
            extra += sorted((base / "roi").glob("*.nii.gz"))
        ncsnr = self.root / beta_dir(name, "func1pt8mm", BETA_VERSION) / "ncsnr.nii.gz"
        if ncsnr.exists():
            extra.append(ncsnr)
        for p in extra:
            img = self.load_header(p, "volume")
            if img is None:
                continue
            self.grids[self.rel(p)] = tuple(int(x) for x in img.shape[:3])
            self.affines[self.rel(p)] = np.asarray(img.affine)
            if p.name == "brainmask.nii.gz":
                try:
                    self.mask_voxels[name] = int(np.count_nonzero(np.asanyarray(img.dataobj)))
                except Exception as err:
                    self.add("error", "volume", f"cannot read the mask ({err})", p, "files")
        mine = {f: g for f, g in self.grids.items() if f"/{name}/" in f"/{f}"}
        if not mine:
            return
        mask_rel = self.rel(base / "brainmask.nii.gz")
        ref = mine.get(mask_rel) or Counter(mine.values()).most_common(1)[0][0]
        ref_from = "brainmask.nii.gz" if mask_rel in mine else "most of its volumes"
        bad = {f: g for f, g in mine.items() if g != ref}
        for f, g in bad.items():
            self.add("error", "volume grid", f"grid {g}, {name}'s grid is {ref} (from {ref_from})", f)
        if not bad:
            self.add("ok", "volume grid", f"{name}: {len(mine)} volumes share the grid {ref}")
        ref_aff = self.affines.get(mask_rel)
        if ref_aff is None:
            ref_aff = next(self.affines[f] for f, g in mine.items() if g == ref)
        bad_aff = [f for f in mine if f not in bad and not np.allclose(self.affines[f], ref_aff, atol=1e-3)]
        for f in bad_aff:
            self.add("error", "volume affine", f"affine differs from {name}'s {ref_from}", f)
        s = int(name[4:])
        grid = NSD_FACTS["grids"].get(s)
        if grid is not None:
            self.fact(f"1.8 mm grid ({name})", tuple(ref) == tuple(grid), f"{ref} (NSD: {tuple(grid)})")
        mm = NSD_FACTS["voxel_mm"]
        want = np.diag([mm, mm, mm, 1.0])
        want[:3, 3] = -(((1 + np.asarray(ref, float)) / 2) - 1) * mm
        # a warning, not an error: the formula is nsdcode's writer's (nsd_layout.md §2), not
        # checked against the released files; the book reads voxels by index, not by position
        self.fact(f"1.8 mm affine ({name})", bool(np.allclose(ref_aff, want, atol=1e-3)),
                  "nsdcode's affine (diag 1.8 mm, centred)" if np.allclose(ref_aff, want, atol=1e-3)
                  else f"affine {np.round(ref_aff, 3).tolist()}, nsdcode's writer gives "
                  f"{np.round(want, 3).tolist()}", bad="warning")

    # -------------------------------------------------------------------- fsaverage
    def check_fsaverage(self):
        label = self.root / "nsddata" / "freesurfer" / "fsaverage" / "label"
        for p in sorted(label.glob("[lr]h.*.mgz")) if label.is_dir() else []:
            img = self.load_header(p, "fsaverage label")
            if img is not None:
                self.hemi_counts[p.name[:2]][self.rel(p)] = int(img.shape[0])
        surf = self.root / "nsddata" / "freesurfer" / "fsaverage" / "surf"
        if surf.is_dir():
            import nibabel as nib

            for p in sorted(surf.iterdir()):
                if not re.fullmatch(r"[lr]h\.(pial|white|inflated|sphere|sphere\.reg|smoothwm|orig)", p.name):
                    continue
                try:
                    coords, faces = nib.freesurfer.read_geometry(p)
                except Exception as err:
                    self.add("error", "fsaverage surface", f"cannot read ({err}); truncated?", p, "files")
                    continue
                if faces.size and (faces.max() >= coords.shape[0] or faces.min() < 0):
                    self.add("error", "fsaverage surface", "faces index vertices that do not exist", p, "files")
                    continue
                self.hemi_counts[p.name[:2]][self.rel(p)] = int(coords.shape[0])
        modes = {}
        for h in ("lh", "rh"):
            counts = self.hemi_counts[h]
            if not counts:
                continue
            ref, n = Counter(counts.values()).most_common(1)[0]
            modes[h] = ref
            bad = {f: c for f, c in counts.items() if c != ref}
            for f, c in bad.items():
                self.add("error", "vertex count", f"{c} {h} vertices, expected {ref} (as {n} other {h} files)", f)
        if len(modes) == 2:
            if modes["lh"] != modes["rh"]:
                f = next(iter(self.hemi_counts["rh"]))
                self.add("error", "vertex count", f"lh files have {modes['lh']} vertices, rh files {modes['rh']} "
                         "(fsaverage hemispheres have equal counts)", f)
            elif not any(lvl.level == "error" and lvl.check == "vertex count" for lvl in self.report.findings):
                n_files = sum(len(v) for v in self.hemi_counts.values())
                self.add("ok", "vertex count", f"{modes['lh']} vertices per hemisphere in all {n_files} "
                         "fsaverage files (betas, labels, ncsnr, surfaces)")
        for h, v in modes.items():
            self.fact(f"fsaverage vertices ({h})", v == NSD_FACTS["n_vertices"],
                      f"{v} (NSD: {NSD_FACTS['n_vertices']})")
        self.n_vertices = modes

    # -------------------------------------------------------------------- shared test set
    def check_test_set(self):
        if self.design is None or not self.trial_counts:
            return
        try:
            test = self.nsd.shared_test_images()
        except Exception as err:
            self.add("error", "shared test images", f"cannot be computed ({err})", EXPDESIGN)
            return
        if test.size == 0:
            self.add("error", "shared test images", "no shared image is seen 3 times by every subject: the "
                     "encoding and decoding chapters have no test set", EXPDESIGN)
        else:
            self.add("ok", "shared test images", f"{test.size} shared images seen 3× by every subject", EXPDESIGN)
        if not self.nsd_sized:
            return
        full = all(self.nsd.n_sessions(s) == n for s, n in NSD_FACTS["sessions"].items())
        want = NSD_FACTS["n_test"]
        if full:
            self.fact("shared test images", test.size == want, f"{test.size} (NSD: {want})", EXPDESIGN)
        elif test.size != want:
            self.add("warning", "shared test images", f"{test.size} (NSD: {want} over all sessions): some subject's "
                     "responses.tsv lists fewer sessions than NSD", EXPDESIGN, "nsd facts")

    # -------------------------------------------------------------------- chapters
    def check_chapters(self, coco_images: bool = True):
        from ._manifest import book_files

        subjects = {name: sorted(set().union(*map(set, spaces.values())) if spaces else set())
                    for name, spaces in self.sessions.items()}
        selection = {name: sess for name, sess in subjects.items() if sess}
        if not selection:
            selection = {"subj01": [1]}
            self.add("warning", "chapters", "no subject on disk: listing what subj01's session 1 would need",
                     None, "chapters")
        # fsaverage5 data (10,242 vertices per hemisphere): chapter 02 takes the mesh from nilearn
        # (chapters.ch02_rsa.fsaverage_mesh), the surf/ files are read only for full fsaverage
        fs5 = set(getattr(self, "n_vertices", {}).values()) == {_NILEARN_MESH_VERTICES}
        files = {}
        for name, sess in selection.items():
            n_max = NSD_SESSIONS[int(name[4:])]  # sessions beyond NSD's are reported above
            sess = [x for x in sess if x <= n_max] or [1]
            for bf in book_files([int(name[4:])], sess, coco_images=coco_images):
                if bf.relpath in files:
                    old = files[bf.relpath]
                    files[bf.relpath] = dataclasses.replace(
                        old, chapters=tuple(sorted(set(old.chapters) | set(bf.chapters))),
                        required=old.required or bf.required)
                else:
                    files[bf.relpath] = bf
        chapters = list(CHAPTERS) + sorted({c for bf in files.values() for c in bf.chapters} - set(CHAPTERS))
        missing = {c: [] for c in chapters}
        optional = {c: [] for c in chapters}
        if fs5:
            files = {k: v for k, v in files.items() if not k.startswith("nsddata/freesurfer/fsaverage/surf/")}
        for bf in files.values():
            p = self.root / bf.relpath
            present = p.exists() and (any(p.iterdir()) if p.is_dir() else p.stat().st_size > 0)
            if (present and self.nsd_sized and bf.source == "s3" and bf.size is not None and p.is_file()
                    and p.stat().st_size != bf.size):
                self.add("error", "file size", f"{p.stat().st_size} bytes, the release's is {bf.size}",
                         bf.relpath, "nsd facts")
            if present:
                continue
            for c in bf.chapters:
                (missing if bf.required else optional)[c].append(bf)
        bad_files = {f.file for f in self.report.findings
                     if f.level == "error" and f.file and f.group in ("files", "consistency")}
        for c in chapters:
            miss = sorted(missing[c], key=lambda b: b.relpath)
            damaged = tuple(sorted(b.relpath for b in files.values()
                                   if b.required and c in b.chapters and b.relpath in bad_files))
            hint = self.download_hint(miss) if miss else ""
            status = ChapterStatus(c, not miss and not damaged, tuple(b.relpath for b in miss),
                                   tuple(sorted(b.relpath for b in optional[c])), damaged, hint)
            self.report.chapters.append(status)
            if miss:
                self.add("warning", c, f"not runnable: missing {_short(status.missing)} ({len(miss)} files)",
                         None, "chapters")
            if damaged:
                self.add("error", c, f"not runnable: damaged {_short(damaged)} (see the errors above)", None,
                         "chapters")
            if status.runnable:
                self.add("ok", c, "runnable: every file it needs is on disk", None, "chapters")

    def download_hint(self, files) -> str:
        """The download command for ``files``: their subjects and sessions (else those on disk).

        The downloader skips files already complete, so the command fetches what is missing.
        """
        subj = sorted({int(m.group(1)) for b in files for m in [re.search(r"subj(\d\d)", b.relpath)] if m})
        sess = sorted({int(m.group(1)) for b in files for m in [re.search(r"session(\d+)", b.relpath)] if m})
        on_disk = {name: sorted(set().union(*map(set, sp.values()))) for name, sp in self.sessions.items() if sp}
        if not subj:
            subj = sorted(int(n[4:]) for n, v in on_disk.items() if v) or [1]
        if not sess:
            sess = sorted(set().union(*map(set, on_disk.values()))) if on_disk else [1]
        cmd = (f"python -m brainllm_utils.nsd download {self.root} --subjects {','.join(map(str, subj))} "
               f"--sessions {format_sessions(sess)}")
        if any(f"/func1pt8mm/{BETA_VERSION}/" in b.relpath and b.relpath.endswith("ncsnr.nii.gz") for b in files):
            cmd += " --space func1pt8mm"  # the volume's ncsnr comes only with that space's betas
        if any(b.relpath.startswith(COCO_DIR + "/") for b in files):
            cmd += " --coco-images"
        return cmd


# ----------------------------------------------------------------------------- resources
#: Rates behind the time estimates, measured on the 2-vCPU development machine unless said:
#: reading ``.nii.gz`` betas ~30 s per GB compressed and ``.mgh`` ~125 MB/s (docs/benchmarks.md);
#: MPNet ~20 captions/s per core (docs/benchmarks.md); float32 matrix products 42 GFLOP/s
#: per core (one-thread ``a @ b``, 2000 × 2000 × 4000), of which the analyses are credited a
#: quarter (10 GFLOP/s: they are not pure products); BLT training 31 GFLOP/s per core (the
#: ``sandbox`` preset, batch 32, one thread, channels-last). GPU: an assumed 20 TFLOP/s
#: effective (not measured: no GPU was lent).
_RATES = {"niigz_s_per_byte": 30 / 1e9, "mgh_bytes_per_s": 125e6, "captions_per_s_core": 20.0,
          "flops_per_core": 10e9, "blt_flops_per_core": 31e9, "gpu_flops": 20e12}
#: Per-profile workload of the time estimate: feature spaces embedded, ridge alphas, random
#: image sets of the RSA; chapter 05's networks (seeds × 2 objectives), epochs, training
#: images (``None``: the pool on disk) and training FLOP per image of its BLT preset
#: (``vision.PRESETS`` ``paper`` / ``sandbox`` / ``tiny``: 6 × the multiply-adds of the
#: convolutions and linear layers of one forward pass, counted with forward hooks).
_PROFILE_WORK = {
    "paper": dict(n_models=6, n_alphas=20, rsa_sets=100, nets=20, epochs=200, n_train=48236,
                  blt_flop_per_image=8.26e9),
    "sandbox": dict(n_models=6, n_alphas=10, rsa_sets=20, nets=4, epochs=8, n_train=1000,
                    blt_flop_per_image=0.16e9),
    "smoke": dict(n_models=3, n_alphas=3, rsa_sets=1, nets=2, epochs=2, n_train=None,
                  blt_flop_per_image=1.2e6),
}
#: Memory of a notebook process before it reads any data: Python, numpy/scipy/pandas, nilearn,
#: matplotlib (1.0 GB); chapters that load a language model or torch networks: 2.5 GB.
_BASE_BYTES = {"00_data_tour": 1.0e9, "01_feature_spaces": 2.5e9, "02_rsa": 1.0e9, "03_encoding": 1.0e9,
               "04_decoding": 1.0e9, "05_image_to_llm": 2.5e9}


@fill_doc
def estimate_resources(subjects, *, profile: str = "paper", data_bytes: int = 0, ram_bytes: int | None = None,
                       cpus: int | None = None, free_bytes: int | None = None, workers: int | None = None,
                       chunk_columns: int | None = None, n_pool: int | None = None,
                       gpu: bool = True) -> ResourceEstimate:
    """Estimate disk, memory per notebook, parallel workers and time for ``subjects``.

    All numbers are estimates from sizes; the formulas (``N`` images of a subject, ``C``
    columns of a space, ``T`` trials per session, ``B = min(C, chunk_columns)``, 4 bytes per
    float32):

    - **beta cache** per subject and space: ``N × C × 4`` bytes (whole brain: all fsaverage
      vertices, every brain-mask voxel);
    - **peak memory** of a notebook: its base (interpreter and libraries, 1.0 GB; 2.5 GB for
      the chapters that load a language model or torch) plus the larger of one session read
      (``T × C × 4``) and three ``N × B`` float32 blocks alive at once (the reader's
      finalisation holds the counts, the ratio and the result of a block of the
      memory-mapped sums; the analyses stream ``B`` columns at a time), for the largest
      subject and space; file-backed pages of memory maps are not counted (the kernel can
      drop them);
    - **workers**: ``floor(0.8 × RAM / max peak)``, at least 1, at most the CPU count;
      each notebook's compute gets ``CPUs // workers`` cores;
    - **time** (rough): reading the betas once (``.nii.gz`` ≈ 30 s per GB, ``.mgh`` ≈
      125 MB/s: measured, docs/benchmarks.md) plus a per-chapter compute count at 10 GFLOP/s
      per core (a quarter of the measured one-core float32 matrix product): captions at 20
      per second per core per model (01), RDMs ``2 × sets × N × C`` (02), ridge
      ``alphas × N² × (C + N)`` (03), decoding ``2 × N² × C`` (04), BLT training
      ``networks × epochs × images × FLOP per image`` (8.3 GFLOP for the paper's preset,
      counted) on an assumed 20 TFLOP/s GPU, or at the measured 31 GFLOP/s per core without
      one (05).

    Parameters
    ----------
    subjects : list of SubjectSize
        The subjects on disk and their sizes.
    profile : {"paper", "sandbox", "smoke"}, default="paper"
        Which book profile's workload to estimate.
    data_bytes : int, default=0
        Bytes of the data already on disk (reported as is).
    ram_bytes : int, optional
        Memory available; default: the machine's (psutil).
    cpus : int, optional
        CPU cores; default: the machine's (psutil).
    free_bytes : int, optional
        Free disk for the caches (reported; a warning is the caller's).
    workers : int, optional
        Use this many parallel notebooks instead of the memory-derived number.
    chunk_columns : int, optional
        Columns processed at a time; default: the reader's (``NSD.betas``'s ``chunk_columns``).
    n_pool : int, optional
        Training-pool images on disk (chapter 05; default: the profile's).
    gpu : bool, default=True
        Chapter 05 trains on a GPU (else on the CPU cores).

    Returns
    -------
    estimate : ResourceEstimate
        Disk, peak memory and time per chapter, workers and the notes.
    """
    import psutil

    if profile not in _PROFILE_WORK:
        raise ValueError(f"profile={profile!r}: expected one of {sorted(_PROFILE_WORK)}")
    if chunk_columns is None:
        import inspect

        from ._reader import NSD

        chunk_columns = inspect.signature(NSD.betas).parameters["chunk_columns"].default
    if int(chunk_columns) < 1:
        raise ValueError(f"chunk_columns={chunk_columns}: expected an integer ≥ 1")
    if workers is not None and int(workers) < 1:
        raise ValueError(f"workers={workers}: expected an integer ≥ 1")
    if ram_bytes is not None and ram_bytes <= 0:
        raise ValueError(f"ram_bytes={ram_bytes}: expected > 0")
    ram = int(ram_bytes) if ram_bytes is not None else int(psutil.virtual_memory().total)
    cpus = int(cpus) if cpus is not None else int(psutil.cpu_count() or 1)
    work = _PROFILE_WORK[profile]
    cache = 0
    working = 0.0
    read_s = 0.0
    n_max, c_max = 0, 0
    for sub in subjects:
        for space, C in sub.columns.items():
            cache += sub.n_images * C * 4
            B = min(C, int(chunk_columns))
            working = max(working, sub.trials_per_session * C * 4, 3 * sub.n_images * B * 4)
            n_max, c_max = max(n_max, sub.n_images), max(c_max, C)
        for space, nbytes in sub.beta_bytes.items():
            read_s += nbytes * _RATES["niigz_s_per_byte"] if space == "func1pt8mm" else nbytes / _RATES["mgh_bytes_per_s"]
    if profile == "smoke":  # quick sizes: a few hundred images, ROI columns
        n_max, c_max = min(n_max, 300), min(c_max, 20000)
        working = min(working, 3 * 300 * min(c_max, chunk_columns) * 4)
    peak = {ch: int(_BASE_BYTES[ch] + working) for ch in CHAPTERS}
    if workers is None:
        workers = max(1, min(cpus, int(0.8 * ram // max(peak.values()))))
    threads = max(1, cpus // int(workers))  # cores per notebook when `workers` run at once
    flops = _RATES["flops_per_core"] * threads
    n_subj = max(1, len(subjects))
    n_images_all = sum(s.n_images for s in subjects)
    n_train = n_pool if n_pool is not None else (work["n_train"] or 0)
    if work["n_train"] is not None and n_pool is not None:
        n_train = min(n_pool, work["n_train"])
    time_s = {
        "00_data_tour": read_s + n_subj * n_max * c_max * 10 / flops,
        "01_feature_spaces": work["n_models"] * 5 * n_images_all / (_RATES["captions_per_s_core"] * threads),
        "02_rsa": n_subj * work["rsa_sets"] * n_max * c_max * 2 / flops,
        "03_encoding": n_subj * work["n_alphas"] * n_max**2 * (c_max + n_max) / flops,
        "04_decoding": n_subj * n_max**2 * c_max * 2 / flops,
        "05_image_to_llm": work["nets"] * work["epochs"] * n_train * work["blt_flop_per_image"]
        / (_RATES["gpu_flops"] if gpu else _RATES["blt_flops_per_core"] * threads) + n_subj * n_max * c_max * 10 / flops,
    }
    notes = (
        "beta cache = images × columns × 4 bytes per subject and space (whole brain: every fsaverage vertex, "
        "every brain-mask voxel)",
        f"peak = base (1.0 GB; 2.5 GB with a language model or torch) + max(one session T × C × 4, "
        f"3 × N × min(C, {chunk_columns}) × 4) (anonymous memory; the memory-mapped beta cache adds "
        "file-backed pages the kernel can drop)",
        "workers = floor(0.8 × RAM / largest peak), within 1..CPUs; each notebook gets CPUs // workers "
        f"= {threads} cores",
        "times are order-of-magnitude estimates: beta reading at measured rates (docs/benchmarks.md), compute "
        "at 10 GFLOP/s per core, chapter 05's training at "
        f"{work['blt_flop_per_image'] / 1e9:.3g} GFLOP per image and epoch on "
        + ("an assumed 20 TFLOP/s GPU" if gpu else "31 GFLOP/s per CPU core (no GPU found: a GPU is strongly "
                                                   "recommended for the paper profile)"),
    )
    return ResourceEstimate(profile=profile, data_bytes=int(data_bytes), cache_bytes=int(cache),
                            free_bytes=free_bytes, ram_bytes=ram, cpus=cpus, peak_bytes=peak,
                            workers=int(workers), time_s={k: float(v) for k, v in time_s.items()}, notes=notes)


def _subject_sizes(ck: _Checker) -> list[SubjectSize]:
    out = []
    for name, spaces in ck.sessions.items():
        sessions = sorted(set().union(*map(set, spaces.values()))) if spaces else []
        if not sessions or ck.T is None:
            continue
        n_images = 0
        if ck.design is not None:
            try:
                table = ck.nsd.trial_table(name)
                n_images = int(table.loc[table["session"].isin(sessions), "nsdId"].nunique())
            except Exception:
                n_images = 0
        if n_images == 0:  # no usable design: every trial a new image (an upper bound)
            n_images = len(sessions) * ck.T
        columns, nbytes = {}, {}
        nv = getattr(ck, "n_vertices", {})
        if spaces.get("fsaverage") and nv:
            columns["fsaverage"] = int(sum(nv.values()))
        if spaces.get("func1pt8mm"):
            if name in ck.mask_voxels:
                columns["func1pt8mm"] = ck.mask_voxels[name]
            else:
                grids = [g for f, g in ck.grids.items() if f"/{name}/" in f"/{f}"]
                if grids:
                    columns["func1pt8mm"] = int(np.prod(grids[0]))
        for space, sess in spaces.items():
            d = ck.root / beta_dir(name, space, BETA_VERSION)
            nbytes[space] = sum(p.stat().st_size for s in sess for p in d.glob(f"*betas_session{s:02d}.*"))
        out.append(SubjectSize(name, n_images, len(sessions), ck.T, columns, nbytes))
    return out


def _tree_bytes(root: Path) -> int:
    total = 0
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            try:
                total += (Path(dirpath) / name).stat().st_size
            except OSError:
                pass
    return total


# ----------------------------------------------------------------------------- entry points
@fill_doc
def check(root, *, profile: str = "paper", workers: int | None = None, memory_gb: float | None = None,
          coco_images: bool = True) -> CheckReport:
    """Check a local NSD copy (or the sandbox): integrity, consistency, NSD facts, chapters, resources.

    Reads headers, the design, the CSV and ``responses.tsv``; never a whole beta file
    (a ``.nii.gz`` whose gzip trailer disagrees with its header is decompressed, streaming,
    to find where it ends). See the module's docstring for what each check compares.

    Parameters
    ----------
    %(root)s
    profile : {"paper", "sandbox", "smoke"}, default="paper"
        The book profile whose resources are estimated (:func:`estimate_resources`).
    workers : int, optional
        Parallel notebooks to plan for (default: as many as the memory allows).
    memory_gb : float, optional
        Memory to plan for, in GB (default: the machine's RAM, from psutil).
    coco_images : bool, default=True
        Count chapter 05's COCO training images among the files it needs.

    Returns
    -------
    report : CheckReport
        The findings (``report.exit_code`` is 0 when usable, 1 when damaged), the chapters'
        status and the resource estimates.
    """
    if profile not in _PROFILE_WORK:
        raise ValueError(f"profile={profile!r}: expected one of {sorted(_PROFILE_WORK)}")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, (int, np.integer))
                                or workers < 1):
        raise ValueError(f"workers={workers!r}: expected an integer ≥ 1")
    if memory_gb is not None and (isinstance(memory_gb, bool) or not isinstance(memory_gb, (int, float))
                                  or not memory_gb > 0 or not math.isfinite(memory_gb)):
        raise ValueError(f"memory_gb={memory_gb!r}: expected a number > 0")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        report = CheckReport(root=str(root), profile=profile)
        report.findings.append(Finding("error", "root", "does not exist or is not a folder", None, "files"))
        return report
    ck = _Checker(root, profile)
    ck.check_design()
    ck.check_stimuli()
    ck.check_image_counts()
    ck.check_subjects()
    ck.check_fsaverage()
    ck.check_test_set()
    ck.check_chapters(coco_images=coco_images)
    try:
        free = shutil.disk_usage(ck.nsd.cache_dir).free
    except OSError:
        free = None
    pool = root / COCO_DIR / "train2017"
    n_pool = sum(1 for _ in pool.glob("*.jpg")) if pool.is_dir() else None
    gpu = Path("/proc/driver/nvidia/version").exists() or shutil.which("nvidia-smi") is not None
    res = estimate_resources(_subject_sizes(ck), profile=profile, data_bytes=_tree_bytes(root),
                             ram_bytes=None if memory_gb is None else int(memory_gb * 1e9),
                             free_bytes=free, workers=workers, n_pool=n_pool, gpu=gpu)
    ck.report.resources = res
    if free is not None and res.cache_bytes > free:
        ck.add("warning", "disk", f"the beta caches need {_gb(res.cache_bytes)}, {_gb(free)} free under "
               f"{ck.nsd.cache_dir}", None, "resources")
    peak = max(res.peak_bytes.values())
    if res.workers * peak > 0.8 * res.ram_bytes:
        ck.add("warning", "memory", f"{res.workers} workers × {_gb(peak)} peak exceed 80 % of {_gb(res.ram_bytes)} "
               "RAM: use fewer workers", None, "resources")
    else:
        ck.add("ok", "memory", f"{res.workers} workers × {_gb(peak)} peak fit in {_gb(res.ram_bytes)} RAM", None,
               "resources")
    return ck.report


def add_arguments(parser) -> None:
    """Add ``check``'s arguments to an argparse (sub)parser and set ``func`` to :func:`run`.

    Parameters
    ----------
    parser : argparse.ArgumentParser
        The ``check`` subcommand's parser.
    """
    parser.add_argument("root", help="the NSD root (the folder holding nsddata/, nsddata_betas/, ...)")
    parser.add_argument("--profile", default="paper", choices=sorted(_PROFILE_WORK),
                        help="the book profile whose time, disk and memory are estimated (default: paper)")
    parser.add_argument("--json", metavar="FILE", default=None, help="also write the report as JSON to FILE")
    parser.add_argument("--workers", type=int, default=None, help="notebooks run at once (default: from memory)")
    parser.add_argument("--memory-gb", type=float, default=None, help="memory to plan for (default: this machine's)")
    parser.add_argument("--no-coco-images", action="store_true",
                        help="do not count chapter 05's COCO training images as needed")
    parser.add_argument("--show-ok", action="store_true", help="list passing checks too")
    parser.set_defaults(func=run)


def run(args) -> int:
    """Run the ``check`` subcommand: print the report, optionally write JSON.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed arguments of :func:`add_arguments`.

    Returns
    -------
    status : int
        0 when the copy is usable (warnings allowed), 1 when it is damaged, 2 for an invalid
        argument (the message is printed to stderr).
    """
    import sys

    try:
        report = check(args.root, profile=args.profile, workers=args.workers, memory_gb=args.memory_gb,
                       coco_images=not getattr(args, "no_coco_images", False))
    except ValueError as err:
        print(f"check: {err}", file=sys.stderr)
        return 2
    print(report.format(show_ok=getattr(args, "show_ok", False)))
    if args.json:
        report.to_json(args.json)
    return report.exit_code
