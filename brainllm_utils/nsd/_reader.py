"""Reader for the Natural Scenes Dataset (NSD) release layout.

One class, :class:`NSD`, reads a local NSD copy (or the generated sandbox, which uses the
same layout) with no special cases: every size (number of images, trials per session,
grids, vertices) is derived from the files, never hard-coded.

It is a facade over five concerns, one module each: the file layout (:mod:`.layout`,
:class:`_LayoutMixin` below), the experiment design (:mod:`._design`), the stimuli
(:mod:`._stimuli`), atlases and masks (:mod:`._atlas`) and the betas (:mod:`._betas`).

Index conventions (``shared/docs/nsd_layout.md``):

- ``nsdId`` is 0-based (row of ``nsd_stim_info_merged.csv``, index into ``imgBrick``);
- ``masterordering``, ``subjectim``, ``sharedix``, ``73KID``/``10KID`` are 1-based.

Betas are read session by session, masked before anything is accumulated, z-scored per
voxel within each session, and averaged over repeats into a float32 array (a memory map
for large outputs), cached atomically and keyed by every argument.

Examples
--------
>>> nsd = NSD("data/sandbox")                                   # doctest: +SKIP
>>> Y, ids = nsd.betas("subj01", space="fsaverage", roi=("streams", "ventral"))  # doctest: +SKIP
>>> caps = nsd.captions(ids[:3])                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from .._utils.paths import get_cache_dir, get_data_home
from ._atlas import _AtlasMixin
from ._betas import _BetasMixin
from ._design import _DesignMixin
from ._stimuli import _StimuliMixin
from .layout import BETA_VERSION, NSDFileError, PartialDataWarning, beta_dir, beta_files, download_hint

__all__ = ["NSD"]


class _LayoutMixin:
    """Where the files of one NSD root are: ``path`` (checked), ``cache_dir``, beta folders."""

    def path(self, relpath: str, kind: str = "file") -> Path:
        """Absolute path of ``relpath``; raises :class:`NSDFileError` if it is missing.

        Parameters
        ----------
        relpath : str
            A file or folder relative to the NSD root.
        kind : str, default="file"
            What the file is, for the error message (e.g. ``"beta file"``).

        Returns
        -------
        path : pathlib.Path
            ``root / relpath``, which exists.

        Raises
        ------
        NSDFileError
            When it is missing; the message says where it was expected and how to download
            it (:func:`~brainllm_utils.nsd.download_hint`).
        """
        p = self.root / relpath
        if not p.exists():
            raise NSDFileError(
                f"missing NSD {kind}: {p}\n  expected: {relpath} under the NSD root\n"
                f"  get it with: {download_hint(relpath)}"
            )
        return p

    @property
    def cache_dir(self) -> Path:
        """The cache root: ``cache_dir`` if given, else ``$BRAINLLM_CACHE`` or ``<repo>/data/cache``."""
        return get_cache_dir(self._cache_dir)

    def _beta_dir(self, subject: str, space: str) -> Path:
        return self.root / beta_dir(subject, space, self.beta_version)

    def _beta_files(self, subject: str, space: str, session: int) -> list[Path]:
        return [self.root / p for p in beta_files(subject, space, session, self.beta_version)]


class NSD(_LayoutMixin, _DesignMixin, _StimuliMixin, _AtlasMixin, _BetasMixin):
    """A local NSD copy (or the sandbox) in the NSD release layout.

    Parameters
    ----------
    root : path-like, optional
        The NSD root (the folder holding ``nsddata/``, ``nsddata_betas/`` and
        ``nsddata_stimuli/``). Default: ``$BRAINLLM_DATA``, then ``<repo>/data/sandbox``.
    cache_dir : path-like, optional
        Cache root of averaged betas (entries go to ``<cache_dir>/betas``); default:
        :func:`brainllm_utils._utils.paths.get_cache_dir`.
    beta_version : str, default="betas_fithrf_GLMdenoise_RR"
        GLMsingle beta version folder (the paper's "b3").
    """

    def __init__(self, root=None, cache_dir=None, beta_version: str = BETA_VERSION):
        for arg, value in (("root", root), ("cache_dir", cache_dir)):
            if value is not None and not isinstance(value, (str, os.PathLike)):
                raise TypeError(
                    f"NSD({arg}={value!r}): expected a folder path (str or path-like"
                    f"{'; the data_home parameter of the notebooks' if arg == 'root' else ''}) "
                    f"or None, not {type(value).__name__}")
        if not isinstance(beta_version, str) or not beta_version or "/" in beta_version:
            raise ValueError(f"beta_version={beta_version!r}: expected a beta folder name such as "
                             f"{BETA_VERSION!r}")
        self.root = get_data_home(root)
        if self.root.exists() and not self.root.is_dir():
            raise NSDFileError(
                f"NSD root {self.root} is a file, not a folder: expected a folder with the NSD "
                "release layout (nsddata/, nsddata_betas/, nsddata_stimuli/); check the root / "
                "data_home argument or BRAINLLM_DATA."
            )
        if not self.root.is_dir():
            raise NSDFileError(
                f"NSD root {self.root} does not exist: expected a folder with the NSD release "
                "layout (nsddata/, nsddata_betas/, nsddata_stimuli/). Generate the sandbox with "
                "`python -m brainllm_utils.synth data/sandbox` or point BRAINLLM_DATA / the "
                "data_home parameter at a local NSD copy."
            )
        self._cache_dir = cache_dir
        self.beta_version = beta_version
        self._json_cache: dict[str, dict] = {}
        self._report: list[dict] = []

    def _record(self, kind: str, message: str, *, subject=None, session=None, file=None,
                n_images=None, warn: bool = True, category=PartialDataWarning, stacklevel: int = 3):
        """Record one partial-data event in :meth:`data_report` and warn about it (once per
        identical event and NSD object)."""
        entry = dict(kind=kind, subject=subject, session=session,
                     file=None if file is None else str(file), n_images=n_images, message=message)
        if entry in self._report:
            return
        self._report.append(entry)
        if warn:
            warnings.warn(message, category, stacklevel=stacklevel)

    def data_report(self):
        """What this NSD object left out so far: one row per partial-data event.

        Every :class:`~brainllm_utils.nsd.PartialDataWarning` the reader issued (sessions
        missing on disk, sessions on disk that ``responses.tsv`` does not list, sessions whose
        betas are all NaN or constant, images whose captions are partly empty) is recorded
        here, so that a page or a manifest can show on how much less data an analysis ran
        (as are subjects with behavioural data but no betas on disk).

        Returns
        -------
        report : pandas.DataFrame
            Columns ``kind`` (``"sessions-missing"``, ``"sessions-not-in-responses"``,
            ``"session-all-nan"``, ``"empty-captions"``, ``"subject-without-betas"``), ``subject``, ``session`` (a session
            number or a string such as ``"3-4"``), ``file``, ``n_images`` (images affected;
            ``None`` where it does not apply) and ``message`` (the warning's text), in the
            order the events happened; empty (with those columns) when nothing was left out.
        """
        import pandas as pd

        cols = ["kind", "subject", "session", "file", "n_images", "message"]
        return pd.DataFrame(self._report, columns=cols)

    def __repr__(self) -> str:
        return f"NSD(root={str(self.root)!r})"

