"""Experiment design of an NSD copy: images, subjects, sessions, trials, the shared test set."""

from __future__ import annotations

import functools
import re

import numpy as np

from .._utils.docs import fill_doc
from ._manifest import parse_sessions
from .layout import (EXPDESIGN, responses_file, NSD_SESSIONS, SPACES, STIM_INFO, NSDFileError,
                     PartialDataWarning, _as_int, beta_dir, subject_name)

__all__ = ["SessionsMissingWarning", "parse_session_spec", "format_sessions"]


#: Columns of ``responses.tsv`` the reader needs.
RESPONSES_COLUMNS = ("SESSION", "73KID")


class SessionsMissingWarning(PartialDataWarning):
    """The design or ``responses.tsv`` lists sessions whose beta files are not on disk.

    Raised (as a warning) by :meth:`~brainllm_utils.nsd.NSD.sessions`, hence by every
    analysis that uses the sessions on disk by default; the message names the subject, the
    missing sessions and the command that downloads them. A
    :class:`~brainllm_utils.nsd.PartialDataWarning`, recorded in
    :meth:`~brainllm_utils.nsd.NSD.data_report`.
    """


def parse_session_spec(sessions) -> list[int] | None:
    """A session selection as a sorted list of distinct 1-based session numbers.

    Parameters
    ----------
    sessions : None, int, str or sequence of int
        ``None`` (returned as is: "the sessions on disk"), one session (``3``: session 3, as
        the string ``"3"``), a string of numbers and inclusive ranges separated by commas
        (``"1-5"``, ``"1-3,7,9-10"``; read by :func:`~brainllm_utils.nsd.parse_sessions`, the
        download command's syntax) or a sequence of ints. Sessions need not be consecutive.

    Returns
    -------
    sessions : list of int or None
        Sorted, without duplicates; ``None`` when ``sessions`` is ``None``.

    Raises
    ------
    ValueError
        For an empty selection, a number < 1, a session listed twice in a sequence (it would
        weigh twice; a string's ranges may overlap), a reversed range or anything else.
    TypeError
        For an entry that is not an integer (a float such as ``2.0`` or a bool; also a
        ValueError).

    Examples
    --------
    >>> parse_session_spec("1-3,7")
    [1, 2, 3, 7]
    >>> parse_session_spec([5, 2])
    [2, 5]
    """
    if sessions is None:
        return None
    out: list[int] = []
    if isinstance(sessions, str):
        out = parse_sessions(sessions)
    else:
        items = [sessions] if np.ndim(sessions) == 0 else list(sessions)
        for v in items:
            _as_int(v, f"sessions={sessions!r}: entry")
            out.append(int(v))
        dup = sorted({v for v in out if out.count(v) > 1})
        if dup:
            raise ValueError(f"sessions={sessions!r}: session(s) {dup} listed more than once "
                             "(each session's trials are averaged once)")
    if not out:
        raise ValueError(f"sessions={sessions!r}: selects no session")
    if min(out) < 1:
        raise ValueError(f"sessions={sessions!r}: sessions are 1-based (found {min(out)})")
    return sorted(set(out))


def format_sessions(sessions) -> str:
    """Sessions as a compact string of ranges, the inverse of :func:`parse_session_spec`.

    Parameters
    ----------
    sessions : sequence of int
        1-based session numbers.

    Returns
    -------
    text : str
        E.g. ``"1-3,7"`` (``""`` for no session).

    Examples
    --------
    >>> format_sessions([1, 2, 3, 7])
    '1-3,7'
    """
    vals = sorted(set(int(v) for v in sessions))
    parts = []
    i = 0
    while i < len(vals):
        j = i
        while j + 1 < len(vals) and vals[j + 1] == vals[j] + 1:
            j += 1
        parts.append(str(vals[i]) if i == j else f"{vals[i]}-{vals[j]}")
        i = j + 1
    return ",".join(parts)


class _DesignMixin:
    """Methods of :class:`~brainllm_utils.nsd.NSD` that read the experiment design.

    Needs ``self.root``, ``self.path``, ``self.beta_version`` and the beta-file paths
    (``_beta_dir``, ``_beta_files``) of :class:`_LayoutMixin`.
    """

    @functools.cached_property
    def expdesign(self) -> dict[str, np.ndarray]:
        """``masterordering`` (n_trials,), ``subjectim`` (8, K), ``sharedix`` (S,), all 1-based int64."""
        import scipy.io

        p = self.path(EXPDESIGN)
        try:
            mat = scipy.io.loadmat(p)
        except Exception as err:  # truncated or not a MAT file
            raise NSDFileError(f"{p}: cannot read as a MATLAB file ({err})") from err
        out = {}
        for key in ("masterordering", "subjectim", "sharedix"):
            if key not in mat:
                raise NSDFileError(f"{p}: expected a '{key}' field (NSD expdesign)")
        out["masterordering"] = np.asarray(mat["masterordering"]).ravel().astype(np.int64)
        out["subjectim"] = np.asarray(mat["subjectim"]).astype(np.int64)
        out["sharedix"] = np.asarray(mat["sharedix"]).ravel().astype(np.int64)
        if "stimpattern" in mat:
            out["stimpattern"] = np.asarray(mat["stimpattern"])
        k = out["subjectim"].shape[1]
        mo = out["masterordering"]
        if mo.min() < 1 or mo.max() > k:
            raise NSDFileError(f"{p}: masterordering values must lie in 1..{k} (subjectim columns)")
        return out

    @functools.cached_property
    def stim_info(self):
        """``nsd_stim_info_merged.csv`` as a DataFrame; row i ↔ nsdId i."""
        import pandas as pd

        p = self.path(STIM_INFO)
        try:
            df = pd.read_csv(p, index_col=0)
        except Exception as err:
            raise NSDFileError(f"{p}: cannot parse as CSV ({err})") from err
        for col in ("cocoId", "cocoSplit", "nsdId"):
            if col not in df.columns:
                raise NSDFileError(f"{p}: expected a '{col}' column")
        if not np.array_equal(df["nsdId"].to_numpy(), np.arange(len(df))):
            raise NSDFileError(f"{p}: rows must be ordered by nsdId 0..{len(df) - 1}")
        return df

    @property
    def n_images(self) -> int:
        """Number of NSD images (73,000 on real NSD)."""
        return len(self.stim_info)

    @property
    def subjects(self) -> list[str]:
        """Subjects with betas on disk, e.g. ``["subj01", ...]``.

        A subject with a ``responses.tsv`` but no betas is left out with a
        :class:`~brainllm_utils.nsd.PartialDataWarning` (recorded in :meth:`data_report`).
        """
        base = self.root / "nsddata_betas" / "ppdata"
        if not base.is_dir():
            return []
        found = []
        for d in sorted(base.glob("subj[0-9][0-9]")):
            if any((d / space / self.beta_version).is_dir() for space in SPACES):
                found.append(d.name)
        for resp in sorted(self.root.glob("nsddata/ppdata/subj[0-9][0-9]/behav/responses.tsv")):
            name = resp.parts[-3]
            if name not in found:
                self._record(
                    "subject-without-betas",
                    f"{name}: {resp} exists but no {self.beta_version} betas are on disk under "
                    f"{base / name}: {name} is left out of every analysis. Download its betas with: "
                    f"python -m brainllm_utils.nsd download {self.root} --subjects {int(name[4:])}",
                    subject=name, file=base / name, stacklevel=3)
        return found

    def _check_subject(self, subject) -> str:
        name = subject_name(subject)
        if name not in self.subjects:
            raise ValueError(
                f"subject {subject!r} has no betas under {self.root / 'nsddata_betas/ppdata'}; "
                f"available: {self.subjects or 'none'}"
            )
        return name

    def _sessions_found(self, name: str, space: str) -> list[int]:
        """Sessions whose every beta file of ``space`` exists (any number, holes allowed)."""
        d = self.root / beta_dir(name, space, self.beta_version)
        if not d.is_dir():
            return []
        found = set()
        for p in d.iterdir():
            m = re.search(r"betas_session(\d+)\.", p.name)
            if m:
                found.add(int(m.group(1)))
        return sorted(n for n in found if n >= 1 and all(p.exists() for p in self._beta_files(name, space, n)))

    @fill_doc
    def sessions(self, subject, space: str = "fsaverage", warn: bool = True) -> list[int]:
        """The subject's acquired sessions whose beta files are on disk in ``space``.

        A partial download may leave holes (e.g. sessions 1–3 and 5): the sessions need not
        be consecutive; each session's trials are known from the design, so any subset is
        analysed correctly. "Acquired" sessions are those of ``responses.tsv`` (else the
        design, see :meth:`n_sessions`); files of sessions beyond them are ignored.

        Parameters
        ----------
        %(subject_any)s
        %(space)s
        warn : bool, default=True
            Warn (:class:`SessionsMissingWarning`, once per NSD object, subject and space)
            when acquired sessions are missing on disk, naming them and the command that
            downloads them.

        Returns
        -------
        sessions : list of int
            Sorted 1-based session numbers (empty when none is on disk).
        """
        name = subject_name(subject)
        if space not in SPACES:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        n_acq = self.n_sessions(name)
        on_disk = self._sessions_found(name, space)
        found = [s for s in on_disk if s <= n_acq]
        extra = [s for s in on_disk if s > n_acq]
        missing = sorted(set(range(1, n_acq + 1)) - set(found))
        resp = self.root / responses_file(name)
        if warn and extra and resp.exists():
            self._record(
                "sessions-not-in-responses",
                f"{name}: {resp} lists sessions 1..{n_acq}, but the {space} betas of session(s) "
                f"{format_sessions(extra)} are on disk too; they are ignored (their trials are not "
                f"confirmed by the behavioural file). Using sessions {format_sessions(found)}; a "
                "complete responses.tsv comes with: python -m brainllm_utils.nsd download "
                f"{self.root} --subjects {int(name[4:])}",
                subject=name, session=format_sessions(extra), file=resp, stacklevel=3)
        if warn and missing and found:
            self._record(
                "sessions-missing",
                f"{name}: {len(missing)} of its {n_acq} acquired sessions have no {space} betas on "
                f"disk (sessions {format_sessions(missing)}; using {format_sessions(found)}) under "
                f"{self.root / beta_dir(name, space, self.beta_version)}. Download them with: "
                f"python -m brainllm_utils.nsd download {self.root} --subjects {int(name[4:])} "
                f"--sessions {format_sessions(missing)} --space {space}",
                subject=name, session=format_sessions(missing),
                file=self.root / beta_dir(name, space, self.beta_version),
                category=SessionsMissingWarning, stacklevel=3)
        return found

    @fill_doc
    def select_sessions(self, subject, sessions=None, space: str = "fsaverage", warn: bool = True) -> list[int]:
        """The sessions an analysis of ``subject`` uses: validated, with their files on disk.

        Parameters
        ----------
        %(subject_any)s
        %(sessions)s
        %(space)s
        warn : bool, default=True
            With ``sessions=None``: warn about acquired sessions missing on disk
            (:meth:`sessions`).

        Returns
        -------
        sessions : list of int
            Sorted 1-based sessions, each acquired and with every beta file on disk.

        Raises
        ------
        ValueError
            For a malformed selection, a dict without an entry for the subject, or a session
            the subject did not acquire.
        NSDFileError
            When a requested session's beta file is missing (the message names the file and
            how to download it), or when no session of the subject is on disk.
        """
        name = subject_name(subject)
        if space not in SPACES:
            raise ValueError(f"space={space!r}: expected one of {SPACES}")
        if isinstance(sessions, dict):
            entries = {subject_name(k): v for k, v in sessions.items()}
            if name not in entries:
                raise ValueError(f"sessions: the dict has no entry for {name} (keys: {sorted(entries)})")
            sessions = entries[name]
        chosen = parse_session_spec(sessions)
        n_acq = self.n_sessions(name)
        if chosen is None:
            chosen = self.sessions(name, space, warn=warn)
            if not chosen:
                rel = beta_dir(name, space, self.beta_version)
                self.path(self._beta_files(name, space, 1)[0].relative_to(self.root).as_posix(), "beta file")
                raise NSDFileError(f"{self.root / rel}: no complete session of {name} on disk")
            return chosen
        bad = [s for s in chosen if s > n_acq]
        if bad:
            raise ValueError(f"sessions {format_sessions(bad)}: {name} has sessions 1..{n_acq}")
        for s in chosen:
            for f in self._beta_files(name, space, s):
                self.path(f.relative_to(self.root).as_posix(), f"beta file (session {s} of {name})")
        return chosen

    @fill_doc
    def sessions_on_disk(self, subject, space: str) -> int:
        """Number of consecutive sessions (from 1) whose beta files exist in ``space``.

        See :meth:`sessions` for the list of every session on disk (holes allowed), which
        the analyses use.

        Parameters
        ----------
        %(subject_any)s
        space : {"fsaverage", "func1pt8mm"}
            The betas' space.

        Returns
        -------
        n : int
            Sessions 1..n have all their beta files on disk (0: none).
        """
        name = subject_name(subject)
        n = 0
        while all(p.exists() for p in self._beta_files(name, space, n + 1)):
            n += 1
        return n

    def _responses(self, subject: str):
        import pandas as pd

        p = self.root / responses_file(subject)
        if not p.exists():
            return None
        try:
            df = pd.read_csv(p, sep="\t")
        except Exception as err:
            raise NSDFileError(f"{p}: cannot parse as tab-separated values ({err})") from err
        if len(df):
            for col in RESPONSES_COLUMNS:
                if col not in df.columns:
                    raise NSDFileError(f"{p}: expected a '{col}' column (NSD's responses.tsv has "
                                       f"{', '.join(RESPONSES_COLUMNS)}, …); found {list(df.columns)[:20]}")
                if not pd.api.types.is_integer_dtype(df[col]):
                    raise NSDFileError(f"{p}: column '{col}' must hold integers; found dtype {df[col].dtype}")
        return df

    @functools.cache
    def trials_per_session(self) -> int:
        """Trials per session (750 on NSD), from the first beta file found on disk.

        Returns
        -------
        n : int
            The last dimension of that file's image (its number of trials).
        """
        import nibabel as nib

        for subject in self.subjects:
            for space in SPACES:
                found = self._sessions_found(subject, space)
                f = self._beta_files(subject, space, found[0] if found else 1)[0]
                if f.exists():
                    try:
                        return int(nib.load(f).shape[-1])
                    except Exception as err:
                        raise NSDFileError(f"{f}: cannot read the image header ({err})") from err
        raise NSDFileError(f"no beta files found under {self.root / 'nsddata_betas'}")

    @functools.cache
    @fill_doc
    def n_sessions(self, subject) -> int:
        """Sessions acquired for ``subject``: from ``responses.tsv``, else the betas on disk.

        Without ``responses.tsv`` it is the highest session with beta files on disk (in
        either space; holes count as acquired, so :meth:`sessions` reports them missing).

        Without either on a full-size design (10,000 images per subject), the session count
        of the NSD release (:data:`~brainllm_utils.nsd.NSD_SESSIONS`) is used, so that the
        shared test set is defined by every subject.

        Parameters
        ----------
        %(subject_any)s

        Returns
        -------
        n : int
            The number of sessions (0 when nothing is known).
        """
        name = subject_name(subject)
        resp = self._responses(name)
        if resp is not None and len(resp):
            return int(resp["SESSION"].max())
        n = max(max(self._sessions_found(name, s), default=0) for s in SPACES)
        if n == 0 and self.expdesign["subjectim"].shape[1] == 10000:
            n = NSD_SESSIONS.get(int(name[4:]), 0)
        return n

    @fill_doc
    def trial_table(self, subject):
        """One row per acquired trial, in trial order.

        Parameters
        ----------
        %(subject_any)s

        Returns
        -------
        table : pandas.DataFrame
            One row per trial (``n_sessions × trials_per_session`` rows). Columns:
            ``session`` (1-based), ``k`` (0-based trial within session), ``t`` (0-based
            global trial), ``idx10k`` (1-based), ``nsd73`` (1-based), ``nsdId`` (0-based),
            ``is_shared``, ``repeat`` (0 for the first showing, 1, 2).

        Raises
        ------
        NSDFileError
            When the sessions outnumber ``masterordering``, or ``responses.tsv`` disagrees
            with the design.
        """
        import pandas as pd

        name = subject_name(subject)
        s = int(name[4:])
        design = self.expdesign
        n_trials = self.n_sessions(name) * self.trials_per_session()
        mo = design["masterordering"]
        if n_trials > mo.size:
            raise NSDFileError(
                f"{name}: {self.n_sessions(name)} sessions × {self.trials_per_session()} trials "
                f"exceed the {mo.size} trials of masterordering in {self.root / EXPDESIGN}"
            )
        t = np.arange(n_trials)
        idx10k = mo[:n_trials]
        if s > design["subjectim"].shape[0]:
            raise NSDFileError(f"{self.root / EXPDESIGN}: subjectim has {design['subjectim'].shape[0]} "
                               f"rows, none for {name}")
        nsd73 = design["subjectim"][s - 1, idx10k - 1]
        if nsd73.size and (nsd73.min() < 1 or nsd73.max() > self.n_images):
            raise NSDFileError(
                f"{self.root / EXPDESIGN}: subjectim of {name} holds 73KIDs {int(nsd73.min())}.."
                f"{int(nsd73.max())}, but {self.root / STIM_INFO} lists {self.n_images} images "
                "(73KIDs 1..n): the two files do not belong together")
        nsd_id = nsd73 - 1
        shared = np.isin(nsd73, design["sharedix"])
        order = np.argsort(nsd_id, kind="stable")
        repeat = np.empty(n_trials, dtype=np.int64)
        sorted_ids = nsd_id[order]
        starts = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
        run_start = np.repeat(starts, np.diff(np.r_[starts, n_trials]))
        repeat[order] = np.arange(n_trials) - run_start
        T = self.trials_per_session()
        table = pd.DataFrame(
            dict(session=t // T + 1, k=t % T, t=t, idx10k=idx10k, nsd73=nsd73,
                 nsdId=nsd_id, is_shared=shared, repeat=repeat)
        )
        resp = self._responses(name)
        if resp is not None and len(resp):
            if len(resp) != n_trials or not np.array_equal(resp["73KID"].to_numpy(), nsd73):
                raise NSDFileError(
                    f"{self.root / responses_file(name)}: its 73KID "
                    f"column disagrees with masterordering/subjectim of {self.root / EXPDESIGN}"
                )
        return table

    @fill_doc
    def trial_images(self, subject) -> np.ndarray:
        """0-based nsdIds of the subject's acquired trials, in trial order.

        Parameters
        ----------
        %(subject_any)s

        Returns
        -------
        nsd_ids : ndarray of int64 of shape (n_trials,)
            The ``nsdId`` column of :meth:`trial_table`.
        """
        return self.trial_table(subject)["nsdId"].to_numpy()

    @fill_doc
    def shared_test_images(self, sessions=None, subjects=None, space: str = "fsaverage") -> np.ndarray:
        """Sorted nsdIds of shared images seen 3× by every subject (515 on NSD).

        An image qualifies when (1) every subject of the design with acquired sessions saw it
        3 times in those sessions (the paper's definition: 515 images on NSD, whatever was
        downloaded) and (2) every subject analysed saw it 3 times *in the sessions used*
        (``sessions``, by default those on disk): an image whose third showing is in a
        session missing on disk is not a test image.

        Parameters
        ----------
        %(sessions)s
        subjects : list of str or int, optional
            The subjects analysed (``None``: every subject with betas on disk).
        %(space)s
            Where the sessions on disk are looked up.

        Returns
        -------
        nsd_ids : ndarray of int64 of shape (n_test,)
            0-based nsdIds, sorted (the shared test set of the encoding and decoding chapters).
        """
        design = self.expdesign
        mo = design["masterordering"]
        T = self.trials_per_session()
        n_shared = design["sharedix"].size
        n_cols = design["subjectim"].shape[1]
        head = design["subjectim"][:, :n_shared]
        if n_shared > n_cols or not (head == design["sharedix"][None, :]).all():
            raise NSDFileError(
                f"{self.root / EXPDESIGN}: the first {n_shared} columns of subjectim must be sharedix "
                "(NSD's shared images, in its order) for every subject; they are not, so the shared "
                "test set cannot be read from masterordering")
        keep = np.ones(n_shared, dtype=bool)
        for s in range(1, design["subjectim"].shape[0] + 1):
            n = self.n_sessions(s)
            if n == 0:
                continue
            counts = np.bincount(mo[: n * T], minlength=n_cols + 1)
            keep &= counts[1 : n_shared + 1] == 3
        used = self.subjects if subjects is None else [subject_name(s) for s in subjects]
        for name in used:
            chosen = np.asarray(self.select_sessions(name, sessions, space), dtype=np.int64)
            trials = (chosen[:, None] - 1) * T + np.arange(T)[None, :]
            counts = np.bincount(mo[trials.ravel()], minlength=n_cols + 1)
            keep &= counts[1 : n_shared + 1] == 3
        # subjectim[:, :S] == sharedix: shared 10k index q ↔ sharedix[q-1]
        return np.sort(design["sharedix"][keep] - 1)

    def summary(self):
        """One row per subject on disk: sessions, trials, images by number of repeats.

        Returns
        -------
        summary : pandas.DataFrame
            Indexed by ``subject``; columns ``sessions`` (acquired), ``trials``, ``images``,
            ``images_3x`` (images seen 3 times or more) over the acquired sessions,
            ``fsaverage_sessions`` and ``func1pt8mm_sessions`` (how many sessions have beta
            files on disk), ``sessions_on_disk`` (those of fsaverage, as ``"1-3,5"``) and
            ``images_3x_on_disk`` (images seen 3 times in the fsaverage sessions on disk).
        """
        import pandas as pd

        rows = []
        for name in self.subjects:
            table = self.trial_table(name)
            ids = table["nsdId"].to_numpy()
            counts = np.bincount(np.unique(ids, return_counts=True)[1], minlength=4)
            on_disk = self.sessions(name, "fsaverage", warn=False)
            disk_ids = ids[table["session"].isin(on_disk).to_numpy()]
            disk_counts = np.bincount(np.unique(disk_ids, return_counts=True)[1], minlength=4)
            rows.append(dict(
                subject=name, sessions=self.n_sessions(name), trials=ids.size,
                images=int(np.unique(ids).size), images_3x=int(counts[3:].sum()),
                fsaverage_sessions=len(on_disk),
                func1pt8mm_sessions=len(self.sessions(name, "func1pt8mm", warn=False)),
                sessions_on_disk=format_sessions(on_disk), images_3x_on_disk=int(disk_counts[3:].sum()),
            ))
        return pd.DataFrame(rows).set_index("subject")
