"""Layer 1: the NSD reader (:class:`NSD`) and the NSD release layout (:mod:`.layout`).

``NSD`` is a facade over five concerns, one module each: file layout, experiment design
(``_design``), stimuli (``_stimuli``), atlases and masks (``_atlas``), betas (``_betas``).
"""

from ._atlas import noise_ceiling_from_ncsnr
from ._download import DownloadError, DownloadSummary, download
from ._manifest import BookFile, book_files, book_files_table, parse_sessions
from ._check import CheckReport, Finding, check, estimate_resources
from ._cli import main
from ._design import SessionsMissingWarning, format_sessions, parse_session_spec
from ._reader import NSD
from ._transforms import (
    DEPTHS,
    load_fsaverage_transforms,
    project_to_fsaverage,
    transform_files,
    volume_to_surface,
)
from .layout import (
    BETA_VERSION,
    N_SUBJECTS,
    NSD_SESSIONS,
    SPACES,
    STREAMS_LABELS,
    NSDFileError,
    PartialDataWarning,
    download_hint,
    subject_name,
)

__all__ = [
    "NSD",
    "BookFile",
    "book_files",
    "book_files_table",
    "parse_sessions",
    "download",
    "DownloadError",
    "DownloadSummary",
    "CheckReport",
    "Finding",
    "check",
    "estimate_resources",
    "NSDFileError",
    "PartialDataWarning",
    "SessionsMissingWarning",
    "format_sessions",
    "parse_session_spec",
    "NSD_SESSIONS",
    "N_SUBJECTS",
    "BETA_VERSION",
    "SPACES",
    "STREAMS_LABELS",
    "download_hint",
    "noise_ceiling_from_ncsnr",
    "subject_name",
    "DEPTHS",
    "transform_files",
    "load_fsaverage_transforms",
    "volume_to_surface",
    "project_to_fsaverage",
    "main",
]
