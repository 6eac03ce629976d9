"""Experiment design of an NSD copy: images, subjects, sessions, trials, the shared test set."""

from __future__ import annotations

import functools

import numpy as np

from .._utils.docs import fill_doc
from .layout import EXPDESIGN, responses_file, NSD_SESSIONS, SPACES, STIM_INFO, NSDFileError, subject_name

__all__: list[str] = []


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
        """Subjects with betas on disk, e.g. ``["subj01", ...]``."""
        base = self.root / "nsddata_betas" / "ppdata"
        if not base.is_dir():
            return []
        found = []
        for d in sorted(base.glob("subj[0-9][0-9]")):
            if any((d / space / self.beta_version).is_dir() for space in SPACES):
                found.append(d.name)
        return found

    def _check_subject(self, subject) -> str:
        name = subject_name(subject)
        if name not in self.subjects:
            raise ValueError(
                f"subject {subject!r} has no betas under {self.root / 'nsddata_betas/ppdata'}; "
                f"available: {self.subjects or 'none'}"
            )
        return name

    @fill_doc
    def sessions_on_disk(self, subject, space: str) -> int:
        """Number of consecutive sessions (from 1) whose beta files exist in ``space``.

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
            return pd.read_csv(p, sep="\t")
        except Exception as err:
            raise NSDFileError(f"{p}: cannot parse as tab-separated values ({err})") from err

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
                f = self._beta_files(subject, space, 1)[0]
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
        n = max(self.sessions_on_disk(name, s) for s in SPACES)
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
        nsd73 = design["subjectim"][s - 1, idx10k - 1]
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

    def shared_test_images(self) -> np.ndarray:
        """Sorted nsdIds of shared images seen 3× by every acquired subject (515 on NSD).

        Returns
        -------
        nsd_ids : ndarray of int64 of shape (n_test,)
            0-based nsdIds, sorted (the shared test set of the encoding and decoding chapters).
        """
        design = self.expdesign
        mo = design["masterordering"]
        T = self.trials_per_session()
        n_shared = design["sharedix"].size
        keep = np.ones(n_shared, dtype=bool)
        for s in range(1, design["subjectim"].shape[0] + 1):
            n = self.n_sessions(s)
            if n == 0:
                continue
            counts = np.bincount(mo[: n * T], minlength=design["subjectim"].shape[1] + 1)
            keep &= counts[1 : n_shared + 1] == 3
        # subjectim[:, :S] == sharedix: shared 10k index q ↔ sharedix[q-1]
        return np.sort(design["sharedix"][keep] - 1)

    def summary(self):
        """One row per subject on disk: sessions, trials, images by number of repeats.

        Returns
        -------
        summary : pandas.DataFrame
            Indexed by ``subject``; columns ``sessions``, ``trials``, ``images``,
            ``images_3x`` (images seen 3 times or more), ``fsaverage_sessions`` and
            ``func1pt8mm_sessions`` (sessions with beta files on disk).
        """
        import pandas as pd

        rows = []
        for name in self.subjects:
            ids = self.trial_images(name)
            counts = np.bincount(np.unique(ids, return_counts=True)[1], minlength=4)
            rows.append(dict(
                subject=name, sessions=self.n_sessions(name), trials=ids.size,
                images=int(np.unique(ids).size), images_3x=int(counts[3:].sum()),
                fsaverage_sessions=self.sessions_on_disk(name, "fsaverage"),
                func1pt8mm_sessions=self.sessions_on_disk(name, "func1pt8mm"),
            ))
        return pd.DataFrame(rows).set_index("subject")
