"""A chapter's results as files other tools open: ``<results>/<chapter>/``.

Every chapter notebook ends with one cell that writes what it computed into its results
folder (:func:`results_folder`; ``<results>`` = ``get_results_dir()``, i.e.
``$BRAINLLM_RESULTS`` or ``data/results``):

- surface maps (fsaverage) as MGH, NSD's own format (``lh.<name>.mgh``, ``rh.<name>.mgh``,
  each of shape ``(n_vertices, 1, 1)``), and as GIfTI (``lh.<name>.func.gii``,
  ``rh.<name>.func.gii``; one data array with the map's name, intent and hemisphere);
- volume maps (a subject's func1pt8mm grid) as NIfTI (``<name>.nii.gz``) with the
  subject's own affine and header (from its ``brainmask.nii.gz``);
- tables as CSV and parquet (numbers stay numbers: a text column whose every value is a
  number is refused);
- RDMs as HDF5 written by rsatoolbox's own ``RDMs.save(..., file_type="hdf5")``, with the
  pattern descriptor ``nsdId`` (0-based NSD image ids, the package's convention: row ``i``
  of ``nsd_stim_info_merged.csv``; add 1 for the 73k ids of NSD's ``.mat`` files and
  ``shared1000`` file names) and the RDM descriptors ``subject``, ``roi`` and ``model``;
- ``manifest.json`` and ``README.md``: every file, what it holds, its units, space, shape
  and dtype, the run's parameters, and a SHA-256 checksum of the in-memory values
  (:func:`values_checksum`, :func:`table_checksum`), which :func:`check_folder` recomputes
  from the files read back.

Checksums. A map's ``sha256`` is that of the float64, C-order bytes of the values as
stored (maps are written as float32, the precision MGH stores and the analyses compute in:
``sha256_source`` is the same checksum of the in-memory array before that cast and is equal
to ``sha256`` whenever the map was float32 already; ``max_abs_cast_error`` says how far the
cast moved any value). A table's checksum covers every column in order, numbers as float64
bytes and text as UTF-8. An RDMs file's checksum covers its dissimilarities (float64), its
``nsdId`` descriptor and its RDM descriptors.

Writes are atomic (a failed write leaves no file) and every argument is validated: names
safe as file names, vertex counts against the dataset's fsaverage, a volume's shape against
the subject's grid.
"""

from __future__ import annotations

import datetime as _dt
import gzip
import hashlib
import json
import math
import os
import re
from pathlib import Path

import numpy as np

from .._utils.docs import fill_doc
from .._utils.paths import atomic_path, atomic_write_text, get_results_dir

__all__ = [
    "EXPORT_DTYPE",
    "MANIFEST",
    "README",
    "results_folder",
    "values_checksum",
    "table_checksum",
    "rdms_checksum",
    "export_surface_map",
    "export_volume_map",
    "export_table",
    "make_rdms",
    "sample_set_rdms",
    "export_rdms",
    "safe_name",
    "findings_table",
    "ExportFolder",
    "read_entry",
    "check_folder",
    "download_markdown",
    "main",
]

#: dtype maps are written in (MGH stores no float64)
EXPORT_DTYPE = np.float32
#: the manifest's file name in each chapter folder
MANIFEST = "manifest.json"
#: the README's file name in each chapter folder
README = "README.md"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,119}$")
_HEMIS = ("lh", "rh")
_GIFTI_STRUCTURE = {"lh": "CortexLeft", "rh": "CortexRight"}
_INTENTS = ("NIFTI_INTENT_NONE", "NIFTI_INTENT_ESTIMATE", "NIFTI_INTENT_TTEST",
            "NIFTI_INTENT_PVAL", "NIFTI_INTENT_ZSCORE", "NIFTI_INTENT_CORREL", "NIFTI_INTENT_LABEL")


def _check_name(name, what: str = "name") -> str:
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name or name.endswith("."):
        raise ValueError(f"{what}={name!r}: expected a file-name-safe name (letters, digits, "
                         "'_', '-', '+', '.', not starting with a dot, no '..', at most 120 characters)")
    return name


def safe_name(text) -> str:
    """``text`` made safe as (part of) a file name: other characters become ``-``.

    Parameters
    ----------
    text : str
        E.g. a feature-space name such as ``"sbert:all-MiniLM-L6-v2"``.

    Returns
    -------
    str
        E.g. ``"sbert-all-MiniLM-L6-v2"``.
    """
    out = re.sub(r"[^A-Za-z0-9_.+-]", "-", str(text)).strip(".")
    out = re.sub(r"\.\.+", ".", out)
    if not out:
        raise ValueError(f"{text!r}: nothing left of it as a file name")
    return out[:120]


def results_folder(chapter: str, results_dir=None) -> Path:
    """The results folder of ``chapter``: ``<results>/<chapter>/`` (created).

    Parameters
    ----------
    chapter : str
        The notebook's stem (``"02_rsa"``) or a grid run's name; must be safe as a folder
        name.
    results_dir : str or path-like, optional
        Default: ``get_results_dir()`` (``$BRAINLLM_RESULTS``, else ``data/results``).

    Returns
    -------
    pathlib.Path
        The folder.
    """
    _check_name(chapter, "chapter")
    if chapter == "findings":
        raise ValueError("chapter='findings' is the findings' own folder (chapters.findings)")
    path = get_results_dir(results_dir) / chapter
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- checksums
def values_checksum(values) -> str:
    """SHA-256 of an array's values as float64, C order (shape not included).

    Every NaN is hashed as the same NaN (its sign and payload bits are not values).

    Parameters
    ----------
    values : array-like of numbers

    Returns
    -------
    str
        Hex digest.
    """
    return hashlib.sha256(_float_bytes(values)).hexdigest()


def _float_bytes(values) -> bytes:
    """float64 C-order bytes with every NaN the same NaN (0/0 sets the sign bit on x86, a
    NaN read back from text does not: the same missing value, different bytes)."""
    arr = np.array(values, dtype=np.float64, order="C")
    arr[np.isnan(arr)] = np.nan
    return arr.tobytes()


def _column_kind(series) -> str:
    import pandas as pd

    if pd.api.types.is_bool_dtype(series.dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(series.dtype):
        return "number"
    return "text"


def _canonical_column(series, kind: str) -> bytes:
    import pandas as pd

    if kind == "number":
        return _float_bytes(pd.to_numeric(series).to_numpy(dtype=np.float64, na_value=np.nan))
    if kind == "bool":
        out = np.array([np.nan if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                        else (1.0 if v in (True, "True", "true", 1) else 0.0)
                        for v in series.tolist()], dtype=np.float64)
        return _float_bytes(out)
    return "\x1f".join("" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                       else str(v) for v in series.tolist()).encode()


def table_checksum(table, kinds: dict | None = None) -> str:
    """SHA-256 of a table's columns, in order: names, then values.

    Numbers and booleans are hashed as float64 bytes (NaN for missing), text as UTF-8.

    Parameters
    ----------
    table : pandas.DataFrame
        The table as exported (flat columns, index reset).
    kinds : dict of str to {"number", "bool", "text"}, optional
        Each column's kind (as the manifest records it); default: from the dtypes. Given
        when reading back a CSV, whose booleans come back as text.

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    for col in table.columns:
        kind = (kinds or {}).get(str(col)) or _column_kind(table[col])
        h.update(str(col).encode() + b"\x1e" + kind.encode() + b"\x1e")
        h.update(_canonical_column(table[col], kind))
    return h.hexdigest()


def rdms_checksum(rdms) -> str:
    """SHA-256 of an rsatoolbox ``RDMs``: dissimilarities, ``nsdId`` and descriptors.

    The dissimilarities as float64 bytes, the ``nsdId`` pattern descriptor as int64 and the
    ``subject``, ``roi`` and ``model`` RDM descriptors as text.

    Parameters
    ----------
    rdms : rsatoolbox.rdm.RDMs

    Returns
    -------
    str
        Hex digest.
    """
    h = hashlib.sha256()
    h.update(_float_bytes(rdms.dissimilarities))
    h.update(np.ascontiguousarray(np.asarray(rdms.pattern_descriptors["nsdId"],
                                             dtype=np.int64)).tobytes())
    for key in ("subject", "roi", "model"):
        h.update(("\x1f".join(str(v) for v in rdms.rdm_descriptors[key])).encode() + b"\x1e")
    return h.hexdigest()


# ----------------------------------------------------------------------------- writers
def _as_map(values, what: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise TypeError(f"{what}: expected real numbers, got dtype {arr.dtype}")
    return arr


def _stored(arr: np.ndarray):
    stored = arr.astype(EXPORT_DTYPE)
    with np.errstate(invalid="ignore"):
        diff = np.abs(stored.astype(np.float64) - arr.astype(np.float64))
    finite = np.isfinite(diff)
    return stored, float(diff[finite].max()) if finite.any() else 0.0


def _write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def _check_text(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what}: expected str, got {type(value).__name__}")
    return value


def export_surface_map(folder, name: str, values, n_vertices, *, description: str,
                       units: str = "", intent: str = "NIFTI_INTENT_NONE") -> list[dict]:
    """Write an fsaverage map as MGH and GIfTI, one file per hemisphere.

    Parameters
    ----------
    folder : str or path-like
        The chapter's results folder.
    name : str
        The map's name (file-name safe), e.g. ``"searchlight_r_subj01"``.
    values : array-like of shape (n_lh + n_rh,)
        The map, left hemisphere then right (the package's fsaverage layout); NaN allowed.
    n_vertices : tuple of (int, int)
        The dataset's fsaverage vertices per hemisphere (``NSD.n_vertices()``: 163,842 each on
        NSD); the map must have exactly their sum.
    description : str
        What the map holds (written in the manifest and the GIfTI metadata).
    units : str, optional
        The values' units (``"Pearson r"``, ``"t"``, ...).
    intent : str, default="NIFTI_INTENT_NONE"
        The GIfTI data array's intent (one of ``NIFTI_INTENT_NONE``, ``_ESTIMATE``,
        ``_TTEST``, ``_PVAL``, ``_ZSCORE``, ``_CORREL``, ``_LABEL``).

    Returns
    -------
    list of dict
        One manifest entry per file written (4).
    """
    import nibabel as nib
    from nibabel.gifti import GiftiDataArray, GiftiImage, GiftiMetaData

    folder = Path(folder)
    _check_name(name)
    _check_text(description, "description")
    _check_text(units, "units")
    if intent not in _INTENTS:
        raise ValueError(f"intent={intent!r}: expected one of {_INTENTS}")
    nv = tuple(int(n) for n in n_vertices)
    if len(nv) != 2 or min(nv) <= 0:
        raise ValueError(f"n_vertices={n_vertices!r}: expected (n_lh, n_rh), both positive")
    arr = _as_map(values, f"surface map {name!r}")
    if arr.shape != (sum(nv),):
        raise ValueError(f"surface map {name!r}: shape {arr.shape}, expected ({sum(nv)},) = "
                         f"{nv[0]} left + {nv[1]} right fsaverage vertices of this dataset")
    parts = {"lh": arr[:nv[0]], "rh": arr[nv[0]:]}
    entries = []
    for hemi in _HEMIS:
        src = parts[hemi]
        stored, err = _stored(src)
        common = {"kind": "surface_map", "name": name, "hemi": hemi, "space": "fsaverage",
                  "description": description, "units": units, "dtype": str(stored.dtype),
                  "source_dtype": str(src.dtype), "sha256": values_checksum(stored),
                  "sha256_source": values_checksum(src), "max_abs_cast_error": err,
                  "n_finite": int(np.isfinite(stored).sum())}
        mgh = nib.MGHImage(stored.reshape(-1, 1, 1), np.eye(4))
        f = f"{hemi}.{name}.mgh"
        _write_bytes(folder / f, mgh.to_bytes())
        entries.append({"file": f, "format": "mgh", "shape": [int(src.size), 1, 1], **common})
        meta = GiftiMetaData({"Name": name, "Description": description, "Units": units})
        da = GiftiDataArray(stored, intent=intent, datatype="NIFTI_TYPE_FLOAT32", meta=meta)
        gii = GiftiImage(darrays=[da], meta=GiftiMetaData(
            {"AnatomicalStructurePrimary": _GIFTI_STRUCTURE[hemi], "Name": name}))
        f = f"{hemi}.{name}.func.gii"
        _write_bytes(folder / f, gii.to_bytes())
        entries.append({"file": f, "format": "gifti", "shape": [int(src.size)], "intent": intent,
                        **common})
    return entries


def export_volume_map(folder, name: str, values, reference, *, subject: str, description: str,
                      units: str = "", space: str = "func1pt8mm") -> dict:
    """Write a subject-space volume map as NIfTI with the subject's affine and header.

    Parameters
    ----------
    folder : str or path-like
        The chapter's results folder.
    name : str
        The map's name (file-name safe); the file is ``<name>.nii.gz``.
    values : array-like of shape (X, Y, Z)
        The map on the subject's grid; NaN allowed (outside the brain, say).
    reference : nibabel.Nifti1Image
        An image of the subject's grid (its ``brainmask.nii.gz``): the map must have its
        shape, and takes its affine, qform/sform codes and zooms.
    subject : str
        The subject (recorded in the manifest).
    description : str
        What the map holds.
    units : str, optional
        The values' units.
    space : str, default="func1pt8mm"
        The grid's name (recorded).

    Returns
    -------
    dict
        The file's manifest entry.
    """
    import nibabel as nib

    folder = Path(folder)
    _check_name(name)
    _check_text(description, "description")
    _check_text(units, "units")
    arr = _as_map(values, f"volume map {name!r}")
    shape = tuple(int(n) for n in reference.shape[:3])
    if arr.shape != shape:
        raise ValueError(f"volume map {name!r}: shape {arr.shape}, expected {shape} "
                         f"({subject}'s {space} grid, from {getattr(reference, 'get_filename', lambda: None)()})")
    stored, err = _stored(arr)
    header = reference.header.copy()
    header.set_data_dtype(np.float32)
    img = nib.Nifti1Image(stored, reference.affine, header)
    img.header.set_intent("none")
    img.header["descrip"] = description[:79].encode("ascii", "replace")
    img.set_qform(reference.affine, int(reference.header["qform_code"]) or 1)
    img.set_sform(reference.affine, int(reference.header["sform_code"]) or 1)
    f = f"{name}.nii.gz"
    _write_bytes(folder / f, gzip.compress(img.to_bytes(), mtime=0))
    return {"file": f, "format": "nifti", "kind": "volume_map", "name": name, "subject": subject,
            "space": space, "description": description, "units": units, "shape": list(shape),
            "affine": np.asarray(reference.affine, dtype=float).tolist(),
            "dtype": str(stored.dtype), "source_dtype": str(arr.dtype),
            "sha256": values_checksum(stored), "sha256_source": values_checksum(arr),
            "max_abs_cast_error": err, "n_finite": int(np.isfinite(stored).sum())}


def _flat_table(table, name: str):
    import pandas as pd

    if isinstance(table, pd.Series):
        table = table.to_frame(table.name if table.name is not None else "value")
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table {name!r}: expected a pandas DataFrame or Series, got "
                        f"{type(table).__name__}")
    df = table.copy()
    df.attrs = {}  # notes such as a DataFrame's attrs go to the manifest (_table_notes)
    if isinstance(df.columns, pd.MultiIndex):
        df.columns = ["_".join(str(p) for p in c if str(p) != "") for c in df.columns]
    keep_index = not (isinstance(df.index, pd.RangeIndex) and df.index.names == [None])
    if keep_index:
        names = [n if n is not None else ("index" if df.index.nlevels == 1 else f"index_{i}")
                 for i, n in enumerate(df.index.names)]
        df.index = df.index.set_names(names)
        df = df.reset_index()
    df.columns = [str(c) for c in df.columns]
    if len(set(df.columns)) != len(df.columns):
        raise ValueError(f"table {name!r}: duplicate column names {list(df.columns)}")
    for col in df.columns:
        s = df[col]
        if isinstance(s.dtype, pd.CategoricalDtype):
            df[col] = s = s.astype(object)
        if pd.api.types.is_bool_dtype(s.dtype) or pd.api.types.is_numeric_dtype(s.dtype):
            if pd.api.types.is_complex_dtype(s.dtype):
                raise TypeError(f"table {name!r}, column {col!r}: complex numbers")
            if pd.api.types.is_float_dtype(s.dtype) and s.dtype != np.float64:
                # float32 text (CSV) reads back as a different float64: widen first (exact)
                df[col] = s.astype(np.float64)
            continue
        values = [v for v in s.tolist() if not (v is None or v is pd.NA
                                                or (isinstance(v, float) and math.isnan(v)))]
        if values and all(isinstance(v, (bool, np.bool_)) for v in values):
            df[col] = s.astype("boolean")
            continue
        if values and all(isinstance(v, (int, float, np.integer, np.floating))
                          and not isinstance(v, (bool, np.bool_)) for v in values):
            df[col] = pd.to_numeric(s)
            continue
        text = [str(v) for v in values]
        if text and all(_is_number_text(t) for t in text):
            raise ValueError(f"table {name!r}, column {col!r}: numbers stored as text "
                             f"({text[:3]} ...); pass the numbers, not formatted strings")
        df[col] = pd.Series([None if v is None or v is pd.NA
                             or (isinstance(v, float) and math.isnan(v)) else str(v)
                             for v in s.tolist()], index=s.index, dtype=object)
    return df


def _is_number_text(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return text.strip().lower() not in ("nan", "inf", "-inf", "")


def export_table(folder, name: str, table, *, description: str, units: str = "") -> list[dict]:
    """Write a table as CSV and parquet (numbers as numbers).

    A named or non-default index becomes columns; a two-level column index is joined with
    ``_``. Booleans are kept (nullable); a text column whose every value reads as a number
    is refused (the caller passed formatted strings).

    Parameters
    ----------
    folder : str or path-like
        The chapter's results folder.
    name : str
        The table's name (file-name safe); the files are ``<name>.csv`` and
        ``<name>.parquet``.
    table : pandas.DataFrame or pandas.Series
        The table as the notebook has it (unrounded).
    description : str
        What a row is and what the columns hold.
    units : str, optional
        The numbers' units, where they share one.

    Returns
    -------
    list of dict
        The two files' manifest entries.
    """
    folder = Path(folder)
    _check_name(name)
    _check_text(description, "description")
    _check_text(units, "units")
    df = _flat_table(table, name)
    kinds = {c: _column_kind(df[c]) for c in df.columns}
    notes = {str(k): _jsonable(v) for k, v in getattr(table, "attrs", {}).items()
             if v is None or isinstance(v, (str, int, float, bool, np.number))}
    common = {"kind": "table", "name": name, "description": description, "units": units,
              "notes": notes,
              "shape": [int(df.shape[0]), int(df.shape[1])], "columns": kinds,
              "sha256": table_checksum(df)}
    with atomic_path(folder / f"{name}.csv") as tmp:
        df.to_csv(tmp, index=False)
    with atomic_path(folder / f"{name}.parquet") as tmp:
        df.to_parquet(tmp, index=False, engine="pyarrow")
    return [{"file": f"{name}.csv", "format": "csv", **common},
            {"file": f"{name}.parquet", "format": "parquet", **common}]


def make_rdms(dissimilarities, nsd_ids, *, subject, roi, model, measure: str = "correlation"):
    """An rsatoolbox ``RDMs`` with ``nsdId`` and ``subject``/``roi``/``model`` descriptors.

    ``nsdId`` is the pattern descriptor; ``subject``, ``roi`` and ``model`` are RDM
    descriptors.

    Parameters
    ----------
    dissimilarities : array-like of shape (n_rdm, n_pairs) or (n_pairs,)
        Condensed RDMs (upper triangle, row-major, as ``scipy.spatial.distance.pdist``
        and :func:`brainllm_utils.rsa.compute_rdm`).
    nsd_ids : array-like of int of shape (n_images,)
        The 0-based NSD image ids of the patterns, in the RDMs' order.
    subject, roi, model : str or list of str
        One value for every RDM, or one per RDM (``roi=""`` for a model RDM, ``model="data"``
        for a brain RDM, say).
    measure : str, default="correlation"
        The dissimilarity measure (``"correlation"``: 1 − Pearson r).

    Returns
    -------
    rsatoolbox.rdm.RDMs
    """
    from ..rsa import to_rdms

    d = np.asarray(dissimilarities, dtype=np.float64)
    if d.ndim == 1:
        d = d[None]
    if d.ndim != 2:
        raise ValueError(f"dissimilarities: expected (n_rdm, n_pairs), got shape {d.shape}")
    ids = np.asarray(nsd_ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer) or (ids < 0).any():
        raise ValueError("nsd_ids: expected a 1-D array of non-negative integer (0-based) nsdIds")
    if len(np.unique(ids)) != ids.size:
        raise ValueError("nsd_ids: repeated nsdIds (one pattern per image)")
    n = ids.size
    if d.shape[1] != n * (n - 1) // 2:
        raise ValueError(f"dissimilarities: {d.shape[1]} pairs per RDM, expected "
                         f"{n * (n - 1) // 2} for {n} images")
    desc = {}
    for key, val in (("subject", subject), ("roi", roi), ("model", model)):
        vals = [val] * d.shape[0] if isinstance(val, str) else [str(v) for v in val]
        if len(vals) != d.shape[0]:
            raise ValueError(f"{key}: {len(vals)} values for {d.shape[0]} RDMs")
        desc[key] = vals
    # the package's one converter (rsa.to_rdms): pdist order, nsdId as the pattern descriptor
    return to_rdms(d, ids.astype(np.int64), rdm_descriptors=desc, dissimilarity_measure=measure)


@fill_doc
def sample_set_rdms(nsd, subject: str, image_ids, features: dict, feature_ids, rois=None,
                 atlas: str = "streams", sessions=None, device: str = "auto"):
    """One subject's brain RDMs (one per ROI) and the models' RDMs on the same images.

    Correlation distance (1 − Pearson r) throughout, as the chapters' RSA: the brain RDMs
    from the subject's fsaverage patterns in each ROI (:func:`roi_patterns`), the model RDMs
    from the feature rows with the book's empty-row convention (``rsa.separate_empty_rows``).

    Parameters
    ----------
    %(nsd)s
    %(subject)s
    image_ids : array-like of int of shape (n_images,)
        The 0-based nsdIds (e.g. one sample set), in the RDMs' order.
    features : dict of str to ndarray of shape (n_feature_images, n_features)
        Model name → feature rows, row ``i`` the image ``feature_ids[i]``.
    feature_ids : array-like of int
        The sorted nsdIds of the feature rows.
    rois : list of str, optional
        ROIs of ``atlas`` (default: all its labels; ``[]``: no brain RDMs).
    atlas : str, default="streams"
        The fsaverage atlas.
    %(sessions)s
    %(device)s

    Returns
    -------
    rsatoolbox.rdm.RDMs
        Brain RDMs first (``model="data"``, ``roi`` = the ROI), then one per model
        (``roi=""``), all with ``subject`` and the pattern descriptor ``nsdId``
        (:func:`make_rdms`).
    """
    from ..rsa import compute_rdm
    from ._common import _rsa_rows, rows_of
    from .ch02_rsa import roi_patterns

    ids = np.asarray(image_ids, dtype=np.int64)
    if not isinstance(features, dict):
        raise TypeError(f"features: expected a dict of name -> array, got {type(features).__name__}")
    order = np.argsort(ids, kind="stable")
    patterns = {}
    if rois is None or len(rois):  # rois=[]: the models' RDMs only (no betas read)
        patterns = roi_patterns(nsd, subject, rois, atlas, ids=ids[order], sessions=sessions)[0]
    back = np.empty_like(order)
    back[order] = np.arange(order.size)
    d, roi_of, model_of = [], [], []
    for roi, X in patterns.items():
        d.append(compute_rdm(X[back], device=device, dtype="float64",
                             out_dtype="float64"))
        roi_of.append(roi)
        model_of.append("data")
    rows = rows_of(np.asarray(feature_ids, dtype=np.int64), ids)
    for name, X in features.items():
        d.append(compute_rdm(_rsa_rows(np.asarray(X)[rows])[0], device=device, dtype="float64",
                             out_dtype="float64"))
        roi_of.append("")
        model_of.append(str(name))
    return make_rdms(np.stack(d), ids, subject=str(subject), roi=roi_of, model=model_of)


def export_rdms(folder, name: str, rdms, *, description: str) -> dict:
    """Write rsatoolbox ``RDMs`` with rsatoolbox's own HDF5 writer.

    Parameters
    ----------
    folder : str or path-like
        The chapter's results folder.
    name : str
        File-name-safe name; the file is ``<name>.hdf5`` (``rsatoolbox.rdm.load_rdm`` reads
        it).
    rdms : rsatoolbox.rdm.RDMs
        With the ``nsdId`` pattern descriptor and the ``subject``, ``roi`` and ``model``
        RDM descriptors (:func:`make_rdms`).
    description : str
        What the RDMs are.

    Returns
    -------
    dict
        The file's manifest entry.
    """
    from rsatoolbox.rdm import RDMs

    folder = Path(folder)
    _check_name(name)
    _check_text(description, "description")
    if not isinstance(rdms, RDMs):
        raise TypeError(f"rdms: expected rsatoolbox.rdm.RDMs, got {type(rdms).__name__}")
    missing = [k for k in ("subject", "roi", "model") if k not in rdms.rdm_descriptors]
    if "nsdId" not in rdms.pattern_descriptors or missing:
        raise ValueError(f"RDMs {name!r}: needs the pattern descriptor 'nsdId' and the RDM "
                         f"descriptors subject, roi, model (missing {missing or ['nsdId']})")
    f = f"{name}.hdf5"
    with atomic_path(folder / f) as tmp:
        rdms.save(str(tmp), file_type="hdf5", overwrite=True)
    return {"file": f, "format": "rsatoolbox-hdf5", "kind": "rdms", "name": name,
            "description": description, "units": str(rdms.dissimilarity_measure),
            "shape": [int(rdms.n_rdm), int(rdms.n_cond)], "nsdId": "0-based NSD image ids",
            "rdm_descriptors": {k: [str(v) for v in rdms.rdm_descriptors[k]]
                                for k in ("subject", "roi", "model")},
            "sha256": rdms_checksum(rdms)}


def findings_table(path):
    """A chapter's recorded findings (its ``findings`` JSON) as a table of numbers.

    Columns: the JSON's fields, ``agrees`` as a nullable boolean, ``recovered_value`` (the
    ``recovered`` text as a float where it is one number, as :func:`findings.finding` writes
    a float: 3 decimals; NaN where the row states text) and, for rows that carry a
    ``values`` table, one row per value with ``value`` (float), ``quantity``, ``model``,
    ``roi`` and ``measure``.

    Parameters
    ----------
    path : str or path-like
        The JSON written by :func:`findings.record`.

    Returns
    -------
    pandas.DataFrame
    """
    import pandas as pd

    data = json.loads(Path(path).read_text())
    rows = []
    for r in data["rows"]:
        text = str(r["recovered"])
        num = float(text) if _is_number_text(text) or text.lower() == "nan" else np.nan
        base = {"chapter": data["chapter"], "run": data["run"], "rq": r["rq"],
                "analysis": r["analysis"], "recovered": text, "recovered_value": num,
                "expected": r["expected"], "agrees": r["agrees"], "paper": r["paper"]}
        vals = r.get("values") or [None]
        for v in vals:
            v = v or {}
            rows.append({**base, "quantity": v.get("quantity"), "model": v.get("model"),
                         "roi": v.get("roi"), "measure": v.get("measure"),
                         "value": np.nan if v.get("value") is None else float(v["value"])})
    df = pd.DataFrame(rows)
    df["agrees"] = df["agrees"].astype("boolean")
    df["recovered_value"] = df["recovered_value"].astype(float)
    df["value"] = df["value"].astype(float)
    return df


# ----------------------------------------------------------------------------- the folder
def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


def _report_table(report):
    """``NSD.data_report()`` with its sessions as numbers where they are one (``"2"`` → 2; a
    range such as ``"3-4"`` stays text), so that the table keeps numbers as numbers."""
    import pandas as pd

    report = report.copy()
    if "session" in report:
        report["session"] = pd.Series([int(v) if isinstance(v, str) and v.strip().isdigit() else v
                                       for v in report["session"].tolist()], index=report.index,
                                      dtype=object)
    return report


class ExportFolder:
    """A chapter's results folder, written file by file, described by a manifest.

    :meth:`close` writes ``manifest.json`` and ``README.md``.

    Opening one removes the files a previous run listed in the folder's manifest (and the
    old manifest), so the folder holds exactly this run's files.

    Parameters
    ----------
    chapter : str
        The notebook's stem (``"02_rsa"``), or a grid run's name.
    parameters : dict, optional
        The run's parameters (as given: ``data_home`` ``None`` stays ``None``), recorded.
    nsd : NSD, optional
        The dataset: needed for surface maps (its fsaverage vertex counts) and volume maps
        (the subject's grid); its root is recorded.
    results_dir : str or path-like, optional
        Default: ``get_results_dir()``.
    title : str, optional
        The README's title (default: the chapter).
    """

    def __init__(self, chapter: str, parameters: dict | None = None, nsd=None,
                 results_dir=None, title: str | None = None):
        if parameters is not None and not isinstance(parameters, dict):
            raise TypeError(f"parameters: expected a dict, got {type(parameters).__name__}")
        self.chapter = chapter
        self.path = results_folder(chapter, results_dir)
        self.parameters = dict(parameters or {})
        self.nsd = nsd
        self.title = title or chapter
        self.entries: list[dict] = []
        old = self.path / MANIFEST
        if old.exists():
            try:
                listed = [e["file"] for e in json.loads(old.read_text())["files"]]
            except (ValueError, KeyError, TypeError):
                listed = []
            for f in listed + [README, MANIFEST]:
                p = self.path / Path(f).name
                if p.is_file():
                    p.unlink()

    def _need_nsd(self, what):
        if self.nsd is None:
            raise ValueError(f"{what}: this ExportFolder was opened without nsd=")
        return self.nsd

    def _add(self, entries):
        files = {e["file"] for e in self.entries}
        for e in entries:
            if e["file"] in files:
                raise ValueError(f"{self.chapter}: {e['file']} was already exported in this run")
        self.entries.extend(entries)
        return [self.path / e["file"] for e in entries]

    def surface_map(self, name: str, values, *, description: str, units: str = "",
                    intent: str = "NIFTI_INTENT_NONE") -> list[Path]:
        """Export an fsaverage map (MGH and GIfTI per hemisphere; :func:`export_surface_map`).

        Parameters
        ----------
        name : str
            The map's name.
        values : array-like of shape (n_lh + n_rh,)
            The map, checked against ``nsd.n_vertices()``.
        description : str
            What it holds.
        units : str, optional
            Its units.
        intent : str, default="NIFTI_INTENT_NONE"
            The GIfTI intent.

        Returns
        -------
        list of pathlib.Path
            The files written.
        """
        nv = self._need_nsd("surface_map").n_vertices()
        return self._add(export_surface_map(self.path, name, values, nv, description=description,
                                            units=units, intent=intent))

    def volume_map(self, name: str, values, *, subject: str, description: str,
                   units: str = "") -> list[Path]:
        """Export a subject's func1pt8mm map as NIfTI with the subject's affine.

        :func:`export_volume_map`; the grid is the subject's ``brainmask.nii.gz``.

        Parameters
        ----------
        name : str
            The map's name.
        values : array-like of shape (X, Y, Z)
            The map on the subject's grid.
        subject : str
            The subject.
        description : str
            What it holds.
        units : str, optional
            Its units.

        Returns
        -------
        list of pathlib.Path
            The file written.
        """
        import nibabel as nib

        from ..nsd import subject_name

        nsd = self._need_nsd("volume_map")
        subject = subject_name(subject)
        ref = nib.load(nsd.path(f"nsddata/ppdata/{subject}/func1pt8mm/brainmask.nii.gz"))
        return self._add([export_volume_map(self.path, name, values, ref, subject=subject,
                                            description=description, units=units)])

    def table(self, name: str, table, *, description: str, units: str = "") -> list[Path]:
        """Export a table as CSV and parquet (:func:`export_table`).

        Parameters
        ----------
        name : str
            The table's name.
        table : pandas.DataFrame or pandas.Series
            The table.
        description : str
            What a row is.
        units : str, optional
            Shared units.

        Returns
        -------
        list of pathlib.Path
            The files written.
        """
        return self._add(export_table(self.path, name, table, description=description,
                                      units=units))

    def rdms(self, name: str, rdms, *, description: str) -> list[Path]:
        """Export rsatoolbox ``RDMs`` as HDF5 (:func:`export_rdms`).

        Parameters
        ----------
        name : str
            The file's name.
        rdms : rsatoolbox.rdm.RDMs
            From :func:`make_rdms`.
        description : str
            What they are.

        Returns
        -------
        list of pathlib.Path
            The file written.
        """
        return self._add([export_rdms(self.path, name, rdms, description=description)])

    def findings(self, path) -> list[Path]:
        """Export the chapter's recorded findings as a numeric table (:func:`findings_table`).

        Parameters
        ----------
        path : str or path-like
            The JSON :func:`findings.record` returned.

        Returns
        -------
        list of pathlib.Path
            The files written (``findings.csv``, ``findings.parquet``).
        """
        return self.table("findings", findings_table(path),
                          description="this run's scorecard rows (the findings JSON, kept as is): "
                          "recovered_value is the recovered text as a number where it is one "
                          "(3 decimals, as the JSON); value: the numbers a row carries")

    def close(self) -> Path:
        """Write ``manifest.json`` and ``README.md`` describing the files exported.

        Returns
        -------
        pathlib.Path
            The manifest.
        """
        from .. import __version__

        root = None if self.nsd is None else str(self.nsd.root)
        # what the reader left out (sessions missing or all NaN, empty captions, subjects
        # without betas: NSD.data_report), so the files say on how much less data they rest
        report = None if self.nsd is None else _report_table(self.nsd.data_report())
        partial = [] if report is None else report.to_dict("records")
        if partial and "partial_data.csv" not in {e["file"] for e in self.entries}:
            self.table("partial_data", report,
                       description="data the run left out (NSD.data_report: one row per warning)")
        manifest = {
            "chapter": self.chapter,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "package": f"brainllm_utils {__version__}",
            "data_root": root,
            "parameters": _jsonable(self.parameters),
            "checksums": ("sha256 of the values as stored, float64 C-order bytes (maps); "
                          "of each column in order (tables; numbers as float64, text as UTF-8); "
                          "of the dissimilarities, nsdId and descriptors (RDMs); "
                          "python -m brainllm_utils.export check recomputes them from the files"),
            "nsdId": "0-based NSD image ids (row of nsd_stim_info_merged.csv; 73k id = nsdId + 1)",
            "partial_data": partial,
            "files": self.entries,
        }
        path = self.path / MANIFEST
        atomic_write_text(path, json.dumps(_jsonable(manifest), indent=1) + "\n")
        atomic_write_text(self.path / README, _readme(manifest))
        return path


def _readme(manifest: dict) -> str:
    lines = [f"# {manifest['chapter']}: exported results", "",
             f"Written by {manifest['package']} on {manifest['created']} from `{manifest['data_root']}`.",
             "Every file, with its shape, units and checksum, is listed in `manifest.json`;",
             "`python -m brainllm_utils.export check <results dir>` re-reads every file and",
             "compares its values with the checksum taken before writing.", "",
             "- Surface maps: fsaverage, `lh.`/`rh.` per hemisphere, as MGH (shape (n_vertices, 1, 1),",
             "  FreeSurfer/NSD) and GIfTI (`.func.gii`, nilearn/Workbench), float32.",
             "- Volume maps: NIfTI on the subject's func1pt8mm grid with the subject's affine.",
             "- Tables: CSV and parquet (same content).",
             "- RDMs: rsatoolbox HDF5 (`rsatoolbox.rdm.load_rdm`); pattern descriptor `nsdId` =",
             "  0-based NSD image ids (add 1 for NSD's 73k ids).", "",
             "## Parameters", "", "```json", json.dumps(manifest["parameters"], indent=1), "```", "",
             "## Data left out", "",
             *([f"- {e['message']}" for e in manifest["partial_data"]]
               or ["Nothing: every session and caption the run asked for was read."]), "",
             "## Files", "", "| file | kind | shape | units | what |", "|---|---|---|---|---|"]
    for e in manifest["files"]:
        what = e["description"].replace("|", "/").replace("\n", " ")
        lines.append(f"| `{e['file']}` | {e['kind']} ({e['format']}) | {tuple(e['shape'])} | "
                     f"{e.get('units', '')} | {what} |")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- reading back
def read_entry(folder, entry: dict):
    """Read one exported file back with the tools a user would use.

    MGH and NIfTI with nibabel, GIfTI with ``nilearn.surface.load_surf_data``, CSV and
    parquet with pandas, RDMs with ``rsatoolbox.rdm.load_rdm``.

    Parameters
    ----------
    folder : str or path-like
        The chapter's results folder.
    entry : dict
        The file's manifest entry.

    Returns
    -------
    ndarray, pandas.DataFrame or rsatoolbox.rdm.RDMs
        The values (maps: the array as stored, MGH reshaped as written).
    """
    import pandas as pd

    path = Path(folder) / entry["file"]
    fmt = entry["format"]
    if fmt in ("mgh", "nifti"):
        import nibabel as nib

        return np.asarray(nib.load(path).get_fdata(dtype=np.float64))
    if fmt == "gifti":
        from nilearn.surface import load_surf_data

        return np.asarray(load_surf_data(str(path)), dtype=np.float64)
    if fmt == "csv":
        text = [c for c, kind in entry.get("columns", {}).items() if kind == "text"]
        return pd.read_csv(path, keep_default_na=False, na_values=[""],
                           dtype={c: str for c in text})
    if fmt == "parquet":
        return pd.read_parquet(path)
    if fmt == "rsatoolbox-hdf5":
        from rsatoolbox.rdm import load_rdm

        return load_rdm(str(path), file_type="hdf5")
    raise ValueError(f"{path}: unknown format {fmt!r} in the manifest")


def _entry_checksum(value, entry: dict) -> str:
    if entry["kind"] in ("surface_map", "volume_map"):
        return values_checksum(np.asarray(value).reshape(-1) if entry["format"] != "nifti"
                               else value)
    if entry["kind"] == "table":
        return table_checksum(value, entry["columns"])
    return rdms_checksum(value)


def check_folder(folder) -> list[str]:
    """Re-read every file of a chapter folder's manifest and compare its checksum.

    Parameters
    ----------
    folder : str or path-like
        A chapter's results folder (with ``manifest.json``).

    Returns
    -------
    list of str
        Problems (empty: every file reads back to the values the notebook had).
    """
    folder = Path(folder)
    mpath = folder / MANIFEST
    if not mpath.is_file():
        return [f"{mpath}: missing"]
    problems = []
    if not (folder / README).is_file():
        problems.append(f"{folder / README}: missing")
    manifest = json.loads(mpath.read_text())
    for entry in manifest["files"]:
        path = folder / entry["file"]
        if not path.is_file():
            problems.append(f"{path}: listed in the manifest, missing")
            continue
        try:
            value = read_entry(folder, entry)
        except Exception as err:  # noqa: BLE001 - reported, the check goes on
            problems.append(f"{path}: cannot be read ({type(err).__name__}: {err})")
            continue
        shape = list(getattr(value, "shape", ()))
        if entry["kind"] == "rdms":
            shape = [int(value.n_rdm), int(value.n_cond)]
        if shape != list(entry["shape"]):
            problems.append(f"{path}: shape {shape}, manifest {entry['shape']}")
        got = _entry_checksum(value, entry)
        if got != entry["sha256"]:
            problems.append(f"{path}: checksum {got[:12]} != manifest {entry['sha256'][:12]} "
                            "(the values read back differ from the notebook's)")
    return problems


def download_markdown(folder, output_dir=None) -> str:
    """MyST markdown listing a chapter folder's files as ``{download}`` links.

    Parameters
    ----------
    folder : str or path-like
        The chapter's results folder (after :meth:`ExportFolder.close`).
    output_dir : str or path-like, optional
        The folder of the executed notebook (the book page): links are relative to it, so
        that Sphinx copies the files into the built site. ``None`` (an interactive run): the
        files are listed by path, without links.

    Returns
    -------
    str
        Markdown (render it as MyST: cell metadata ``mystnb: {markdown_format: myst}``).
    """
    folder = Path(folder)
    manifest = json.loads((folder / MANIFEST).read_text())
    files = [README, MANIFEST] + [e["file"] for e in manifest["files"]]
    what = {e["file"]: f"{e['kind'].replace('_', ' ')}, {e['format']}" for e in manifest["files"]}
    what.update({README: "what each file holds", MANIFEST: "shapes, units, checksums, parameters"})
    head = (f"**Exported results**: {len(manifest['files'])} files in `{manifest['chapter']}/` "
            "of the results folder (`python -m brainllm_utils.export check` verifies them)")
    partial = manifest.get("partial_data") or []
    if partial:
        # shown on the page, not only warned in the kernel's log
        items = "\n".join(f"- {e['message']}" for e in partial)
        head = (f"````{{warning}}\nThis run left data out ({len(partial)} events, "
                f"`partial_data.csv`):\n\n{items}\n````\n\n{head}")
    if output_dir is None:
        return "\n".join([head + ":", ""] + [f"- `{folder / f}` ({what[f]})" for f in files]) + "\n"
    lines = []
    for f in files:
        rel = os.path.relpath(folder / f, Path(output_dir).resolve())
        lines.append(f"- {{download}}`{f} <{Path(rel).as_posix()}>` ({what[f]})")
    # a collapsed admonition (sphinx-togglebutton): the list can be long (a map per subject)
    return "\n".join([head + ".", "", "````{admonition} Download the files", ":class: dropdown",
                      "", *lines, "````"]) + "\n"


# ----------------------------------------------------------------------------- command line
def _chapter_folders(results_dir, chapters):
    root = Path(results_dir) if results_dir is not None else get_results_dir()
    folders = sorted(p for p in root.iterdir() if (p / MANIFEST).is_file()) if root.is_dir() else []
    if chapters:
        unknown = sorted(set(chapters) - {p.name for p in folders})
        if unknown:
            raise SystemExit(f"no exported results for {unknown} under {root} "
                             f"(found: {[p.name for p in folders]})")
        folders = [p for p in folders if p.name in chapters]
    return root, folders


def main(argv=None) -> int:
    """``python -m brainllm_utils.export {list,check} [RESULTS_DIR] [--chapter NAME ...]``.

    ``list`` prints each chapter folder's files (kind, format, shape, name); ``check``
    re-reads every file a manifest lists (nibabel, nilearn, pandas, rsatoolbox) and compares
    its checksum with the one taken from the notebook's values before writing.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        0 when every checked file matches (or for ``list``), 1 otherwise.
    """
    import argparse

    parser = argparse.ArgumentParser(prog="python -m brainllm_utils.export",
                                     description="List or verify the chapters' exported results.")
    parser.add_argument("command", choices=["list", "check"])
    parser.add_argument("results_dir", nargs="?", default=None,
                        help="results folder (default: $BRAINLLM_RESULTS, else data/results)")
    parser.add_argument("--chapter", action="append", default=None,
                        help="only this chapter folder (repeatable)")
    args = parser.parse_args(argv)
    root, folders = _chapter_folders(args.results_dir, args.chapter)
    if not folders:
        print(f"no exported chapter folders (with {MANIFEST}) under {root}")
        return 1 if args.command == "check" else 0
    bad = 0
    for folder in folders:
        manifest = json.loads((folder / MANIFEST).read_text())
        if args.command == "list":
            print(f"{folder.name}: {len(manifest['files'])} files ({manifest['created']})")
            for e in manifest["files"]:
                print(f"  {e['file']:<48} {e['kind']:<12} {e['format']:<16} {tuple(e['shape'])}")
            continue
        problems = check_folder(folder)
        bad += bool(problems)
        print(f"{folder.name}: " + ("ok, " + f"{len(manifest['files'])} files match their checksums"
                                    if not problems else f"{len(problems)} problem(s)"))
        for p in problems:
            print(f"  {p}")
    return 1 if bad else 0
