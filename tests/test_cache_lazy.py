"""Large memory-mapped cache entries are verified block by block as they are read (issue 15).

A :class:`~brainllm_utils._utils.cache.VerifiedArray` must (1) never hand out a number from a
block it has not verified, (2) not read the whole file on open, and (3) behave like the array
in every use the package makes of the betas and the encoders. Blocks are shrunk to 4 KiB and
the lazy threshold to 0 bytes, so the tiny sandbox's entries take the path a 13 GB one takes.
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from brainllm_utils._utils import cache as C
from brainllm_utils.nsd import NSD

BLOCK = 4096


@pytest.fixture
def lazy(monkeypatch):
    monkeypatch.setattr(C, "CHECKSUM_BLOCK", BLOCK)
    monkeypatch.setattr(C, "VERIFY_FULL_MAX", 0)


def _replace(path: Path, data: bytes) -> None:
    st = path.stat()
    path.unlink()
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    _replace(path, bytes(data))


def _entry(tmp_path, shape=(300, 37), dtype=np.float32) -> tuple[Path, np.ndarray]:
    a = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    p = tmp_path / "entry.npy"
    C.write_npy(p, a)
    return p, a


def _data_offset(p: Path) -> int:
    return int(np.load(p, mmap_mode="r").offset)


KEYS = {
    "int": 150,
    "negative-int": -100,
    "slice": slice(40, 90),
    "slice-step": slice(3, 250, 17),
    "slice-negative-step": slice(280, 10, -31),
    "empty-slice": slice(5, 5),
    "tuple-int-int": (150, 4),
    "column": (slice(None), 5),
    "column-range": (slice(None), slice(30, 33)),
    "rows-list": [3, 299, 150],
    "rows-array-unsorted": np.array([200, 10, 11, 120]),
    "rows-negative": np.array([-1, -100]),
    "rows-empty": np.array([], dtype=np.int64),
    "rows-and-columns": (np.array([5, 250]), np.array([1, 36])),
    "rows-slice-columns-list": (slice(100, 140), [0, 9, 36]),
    "bool-rows": np.arange(300) % 97 == 5,
    "bool-2d": np.pad(np.eye(37, dtype=bool), ((0, 263), (0, 0)))[:300],
    "ellipsis": (Ellipsis, 2),
    "newaxis": (None, 77),
    "scalar-bool": True,
}


@pytest.mark.parametrize("name", list(KEYS))
def test_every_index_equals_numpy(name, tmp_path, lazy):
    p, a = _entry(tmp_path)
    v = C.load_npy(p, mmap=True)
    assert isinstance(v, C.VerifiedArray)
    np.testing.assert_array_equal(v[KEYS[name]], a[KEYS[name]])


@pytest.mark.parametrize("name", list(KEYS))
def test_a_damaged_block_an_index_reads_is_never_returned(name, tmp_path, lazy):
    """Soundness: for every block holding an element the index selects, damage there raises."""
    p, a = _entry(tmp_path)
    off, item = _data_offset(p), a.itemsize
    flat = np.arange(a.size).reshape(a.shape)[KEYS[name]]
    starts = off + np.unique(np.asarray(flat)).ravel() * item
    touched = sorted(set((starts // BLOCK).tolist()) | set(((starts + item - 1) // BLOCK).tolist()))
    n_blocks = -(-p.stat().st_size // BLOCK)
    inner = [b for b in touched if 0 < b < n_blocks - 1]  # the first and last are checked on open
    if not inner:  # an empty selection reads nothing: damage elsewhere is not its concern
        _flip(p, (n_blocks // 2) * BLOCK + 1)
        np.testing.assert_array_equal(C.load_npy(p, mmap=True)[KEYS[name]], a[KEYS[name]])
        return
    for b in inner[:: max(1, len(inner) // 4)]:
        C.write_npy(p, a)
        _flip(p, b * BLOCK + 1)
        v = C.load_npy(p, mmap=True)
        with pytest.raises(C.CorruptCacheError, match=rf"entry\.npy: block {b} "):
            v[KEYS[name]]
        assert not p.exists() and not C.checksum_path(p).exists(), "a corrupt entry must be deleted"


def test_open_reads_only_the_first_and_last_blocks(tmp_path, lazy):
    p, a = _entry(tmp_path)
    v = C.load_npy(p, mmap=True)
    n_blocks = -(-p.stat().st_size // BLOCK)
    assert n_blocks > 10 and v.blocks_verified == 2
    assert v.shape == a.shape and v.dtype == a.dtype and len(v) == 300 and v.ndim == 2
    assert v.nbytes == a.nbytes and v.size == a.size
    assert v.blocks_verified == 2, "metadata must not read data"
    v[0]
    assert v.blocks_verified == 2
    np.testing.assert_array_equal(v[:, 0], a[:, 0])  # a column touches every block
    assert v.blocks_verified == n_blocks


@pytest.mark.parametrize("where", ["header", "first-block", "last-block", "truncated", "extended"])
def test_damage_seen_on_open_is_a_corrupt_entry(where, tmp_path, lazy):
    p, a = _entry(tmp_path)
    data = bytearray(p.read_bytes())
    if where == "header":
        data[20] ^= 0x01
    elif where == "first-block":
        data[BLOCK - 8] ^= 0x01
    elif where == "last-block":
        data[-3] ^= 0x01
    elif where == "truncated":
        data = data[:-BLOCK]
    else:
        data += b"\0" * 16
    _replace(p, bytes(data))
    with pytest.warns(C.CorruptCacheWarning, match="entry.npy"):
        assert C.load_npy(p, mmap=True) is None
    assert not p.exists()


WHOLE = {
    "asarray": lambda v: np.asarray(v),
    "array-copy": lambda v: np.array(v),
    "method-mean": lambda v: v.mean(axis=0),
    "method-copy": lambda v: v.copy(),
    "method-astype": lambda v: v.astype(np.float64),
    "attribute-T": lambda v: v.T,
    "operator": lambda v: v * 2.0 + 1.0,
    "reflected-operator": lambda v: 1.0 - v,
    "matmul": lambda v: v @ np.ones(v.shape[1], np.float32),
    "ufunc": lambda v: np.isfinite(v),
    "array-function": lambda v: np.sum(v, axis=1),
    "concatenate": lambda v: np.concatenate([v, v]),
    "iterate": lambda v: np.stack(list(v)),
    "pickle": lambda v: np.asarray(pickle.loads(pickle.dumps(v))),
}


@pytest.mark.parametrize("name", list(WHOLE))
def test_whole_array_use_equals_numpy_and_verifies_every_block(name, tmp_path, lazy):
    p, a = _entry(tmp_path)
    ref = WHOLE[name](a)
    got = WHOLE[name](C.load_npy(p, mmap=True))
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-6)
    C.write_npy(p, a)
    _flip(p, (p.stat().st_size // BLOCK // 2) * BLOCK + 5)  # a middle block, read by no open
    v = C.load_npy(p, mmap=True)
    with pytest.raises(C.CorruptCacheError, match="does not match its checksum"):
        WHOLE[name](v)


def test_read_only_and_verified_once(tmp_path, lazy, monkeypatch):
    p, a = _entry(tmp_path)
    v = C.load_npy(p, mmap=True)
    with pytest.raises(ValueError, match="read-only"):
        v[0] = 1.0
    np.asarray(v)
    calls = []
    real = C.hashlib.sha256
    monkeypatch.setattr(C.hashlib, "sha256", lambda *x: calls.append(1) or real(*x))
    v[:, 3], v[10:20], np.asarray(v)
    assert calls == [], "a verified block must not be hashed again"


def test_small_maps_and_in_memory_loads_are_verified_in_full(tmp_path, monkeypatch):
    monkeypatch.setattr(C, "CHECKSUM_BLOCK", BLOCK)
    p, a = _entry(tmp_path)
    mid = (p.stat().st_size // BLOCK // 2) * BLOCK + 5
    for kwargs in ({"mmap": True}, {"mmap": False}):  # below VERIFY_FULL_MAX / not a map
        C.write_npy(p, a)
        assert isinstance(C.load_npy(p, **kwargs), np.ndarray)
        _flip(p, mid)
        with pytest.warns(C.CorruptCacheWarning, match="checksum mismatch in block"):
            assert C.load_npy(p, **kwargs) is None
    monkeypatch.setattr(C, "VERIFY_FULL_MAX", 0)
    C.write_npy(p, a)
    _flip(p, mid)
    with pytest.warns(C.CorruptCacheWarning, match="checksum mismatch in block"):
        assert C.load_npy(p, mmap=False) is None, "an in-memory load reads everything: verify everything"


# --------------------------------------------------------------------------- the package's uses
@pytest.fixture
def nsd_lazy(tiny_root, tmp_path, lazy):
    return NSD(tiny_root, cache_dir=tmp_path / "cache")


@pytest.fixture(scope="module")
def clean(tiny_root, tmp_path_factory):
    """Results of the same calls with an ordinary (fully verified, in-memory) cache."""
    from brainllm_utils import encoding_analysis as ea
    from brainllm_utils import rsa_analysis as ra

    mp = pytest.MonkeyPatch()
    mp.setenv("BRAINLLM_CACHE", str(tmp_path_factory.mktemp("clean-cache")))
    try:
        nsd = NSD(tiny_root, cache_dir=tmp_path_factory.mktemp("clean-betas"))
        res = tmp_path_factory.mktemp("clean-results")
        return {
            "betas": np.array(nsd.betas("subj01", progress=False)[0]),
            "patterns": ra.roi_patterns(nsd, "subj01", ["ventral", "early"])[0],
            "table": ra.subject_rsa_table(nsd, feature_spaces=["truth:category"], rois=["ventral"],
                                          set_size=10, n_sets=2, device="cpu", results_dir=res),
            "searchlight": ra.surface_searchlight(nsd, "subj01", "truth:category", radius_mm=8.0,
                                                  set_size=10, n_sets=2, device="cpu", results_dir=res),
            "encoding": ea.fit_encoders(nsd, feature="multihot", roi=("streams", "early"),
                                        alphas=np.logspace(-1, 4, 6), cv=3, device="cpu").r,
        }
    finally:
        mp.undo()


def _lazy_betas(nsd):
    nsd.betas("subj01", progress=False)  # computes and writes the entry
    Y, _ = nsd.betas("subj01", progress=False)  # reads it: a lazily verified map
    assert isinstance(Y, C.VerifiedArray), type(Y)
    return Y


def test_chapters_read_lazily_verified_betas_and_get_the_clean_numbers(nsd_lazy, clean, tmp_path,
                                                                       monkeypatch):
    from brainllm_utils import encoding_analysis as ea
    from brainllm_utils import rsa_analysis as ra

    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "other-cache"))
    Y = _lazy_betas(nsd_lazy)
    np.testing.assert_array_equal(np.asarray(Y), clean["betas"])
    res = tmp_path / "results"
    pats = ra.roi_patterns(nsd_lazy, "subj01", ["ventral", "early"])[0]
    for roi in pats:
        np.testing.assert_array_equal(pats[roi], clean["patterns"][roi])
    table = ra.subject_rsa_table(nsd_lazy, feature_spaces=["truth:category"], rois=["ventral"],
                                 set_size=10, n_sets=2, device="cpu", results_dir=res)
    np.testing.assert_allclose(table["r"].to_numpy(), clean["table"]["r"].to_numpy(), atol=1e-10)
    sl = ra.surface_searchlight(nsd_lazy, "subj01", "truth:category", radius_mm=8.0, set_size=10,
                                n_sets=2, device="cpu", results_dir=res)
    np.testing.assert_allclose(np.asarray(sl), np.asarray(clean["searchlight"]), atol=1e-6, equal_nan=True)
    kw = dict(feature="multihot", roi=("streams", "early"), alphas=np.logspace(-1, 4, 6), cv=3, device="cpu")
    enc = ea.fit_encoders(nsd_lazy, **kw)
    np.testing.assert_allclose(enc.r, clean["encoding"], atol=1e-6, equal_nan=True)
    again = ea.fit_encoders(nsd_lazy, **kw)  # the encoders, read back from the cache (lazily)
    coef, icpt = again.encoders[again.subjects[0]]
    np.testing.assert_allclose(np.asarray(coef), np.asarray(enc.encoders[enc.subjects[0]][0]), atol=0)
    np.testing.assert_allclose(again.r, enc.r, atol=0, equal_nan=True)


def test_damage_found_mid_analysis_stops_it_and_a_rerun_recomputes(nsd_lazy, clean, tmp_path, monkeypatch):
    from brainllm_utils import rsa_analysis as ra

    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "other-cache"))
    _lazy_betas(nsd_lazy)
    ys = [q for q in (tmp_path / "cache" / "betas").glob("subj01_fsaverage_*.npy")
          if not q.name.endswith("_ids.npy")]
    assert len(ys) == 1
    y = ys[0]
    _flip(y, (y.stat().st_size // BLOCK // 2) * BLOCK + 5)
    with pytest.raises(C.CorruptCacheError, match=y.name):
        ra.roi_patterns(nsd_lazy, "subj01", ["ventral", "early"])
    assert not y.exists()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", C.CorruptCacheWarning)
        pats = ra.roi_patterns(nsd_lazy, "subj01", ["ventral", "early"])[0]
    for roi in pats:
        np.testing.assert_array_equal(pats[roi], clean["patterns"][roi])
    np.testing.assert_array_equal(np.asarray(_lazy_betas(nsd_lazy)), clean["betas"])


# --------------------------------------------------------------------------- verified once per process
def test_a_verified_unchanged_file_is_not_hashed_again_but_a_changed_one_is(tmp_path, monkeypatch):
    """A file whose every block this process verified is not re-hashed while its stat identity
    (inode, size, mtime, ctime of it and its sidecar) is unchanged; any write changes the
    identity, so a corruption after the first check is still found."""
    import time

    monkeypatch.setattr(C, "_VERIFIED", {})
    path = tmp_path / "entry.npy"
    np.save(path, np.arange(5000, dtype=np.float64))
    C.write_checksums(path)
    calls = []
    real = C._block_hashes
    monkeypatch.setattr(C, "_block_hashes", lambda *a: calls.append(1) or real(*a))
    # a file younger than the stability window is verified every time (coarse file clock)
    assert C.verify_checksums(path) is None and C.verify_checksums(path) is None
    assert len(calls) == 2 and not C._VERIFIED
    time.sleep(C._STABLE_S + 0.1)
    assert C.verify_checksums(path) is None and len(calls) == 3
    assert C.verify_checksums(path) is None and C.verify_checksums(path, full=True) is None
    assert len(calls) == 3  # remembered
    _flip(path, 200)  # an in-place change: ctime moves
    assert "checksum mismatch in block 0" in C.verify_checksums(path)
    assert len(calls) == 4
    # a replaced file (the same bytes keep their own new identity) is hashed again
    _replace(path, path.read_bytes())
    assert C.verify_checksums(path) is not None and len(calls) == 5
