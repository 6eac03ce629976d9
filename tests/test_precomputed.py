"""Precomputed feature spaces: every file format against numpy ground truth, validation
errors naming the file, the cache (hit, miss on a changed file, corrupt entry), registration."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from brainllm_utils import features
from brainllm_utils._utils.cache import CorruptCacheWarning
from brainllm_utils.features import _plugins, _precomputed, _registry


@pytest.fixture(autouse=True)
def _isolated(cache_dir, monkeypatch):
    """A fresh cache; no config file; the registry and plugin state restored afterwards."""
    monkeypatch.setenv("BRAINLLM_CONFIG", "")
    saved = (dict(_registry._REGISTRY), list(_registry._PATTERNS), dict(_registry._FAMILIES))
    state = {k: (set(v) if isinstance(v, set) else dict(v) if isinstance(v, dict) else v)
             for k, v in _plugins._STATE.items()}
    _precomputed._PARSED.clear()
    yield
    _registry._REGISTRY.clear()
    _registry._REGISTRY.update(saved[0])
    _registry._PATTERNS[:] = saved[1]
    _registry._FAMILIES.clear()
    _registry._FAMILIES.update(saved[2])
    _plugins._STATE.clear()
    _plugins._STATE.update(state)
    _precomputed._PARSED.clear()


def _truth(n=40, d=6, seed=0):
    """Shuffled nsdIds across NSD's range and float32-exact features (as float64)."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(73_000, size=n, replace=False)
    ids[0], ids[1] = 0, 72_999  # both ends of the range
    X = rng.normal(size=(n, d)).astype(np.float32).astype(np.float64)
    return ids.astype(np.int64), X


def _frame(ids, X):
    df = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    df.insert(2, "nsdId", ids)  # not the first column: found by name
    return df


def _write(fmt: str, folder, ids, X):
    """The file of format ``fmt`` holding ``ids`` and ``X``; its path (and an ``ids=`` file)."""
    import h5py

    side = None
    if fmt == "npz":
        path = folder / "f.npz"
        np.savez(path, nsdId=ids, features=X)
    elif fmt == "npy_sidecar":
        path = folder / "f.npy"
        np.save(path, X)
        np.save(folder / "f.nsdId.npy", ids)
    elif fmt == "npy_column0":
        path = folder / "f.npy"
        np.save(path, np.column_stack([ids.astype(np.float64), X]))
    elif fmt == "npy_ids_option":
        path = folder / "f.npy"
        np.save(path, X)
        side = folder / "other_ids.npy"
        np.save(side, ids)
    elif fmt == "parquet_column":
        path = folder / "f.parquet"
        _frame(ids, X).to_parquet(path)
    elif fmt == "parquet_index":
        path = folder / "f.parquet"
        _frame(ids, X).set_index("nsdId").to_parquet(path)
    elif fmt == "csv":
        path = folder / "f.csv"
        _frame(ids, X).to_csv(path, index=False)
    elif fmt == "csv_index":
        path = folder / "f.csv"
        _frame(ids, X).set_index("nsdId").to_csv(path)
    elif fmt in ("h5", "hdf5"):
        path = folder / f"f.{fmt}"
        with h5py.File(path, "w") as fh:
            fh["nsdId"] = ids
            fh["features"] = X
    else:
        raise AssertionError(fmt)
    return path, side


FORMATS = ["npz", "npy_sidecar", "npy_column0", "npy_ids_option", "parquet_column",
           "parquet_index", "csv", "csv_index", "h5", "hdf5"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_returns_the_requested_rows_in_order(fmt, tmp_path):
    ids, X = _truth()
    path, side = _write(fmt, tmp_path, ids, X)
    want_ids = ids[[5, 0, 1, 5, 17]]  # unsorted, with a repeat, both ends of NSD's range
    got_ids, got = features.load_precomputed(path, want_ids, dim=6, ids=side)
    assert got.dtype == np.float32 and got.shape == (5, 6)
    np.testing.assert_array_equal(got_ids, want_ids)
    np.testing.assert_array_equal(got, X[[5, 0, 1, 5, 17]].astype(np.float32))
    all_ids, all_X = features.load_precomputed(path, ids=side)  # every row, by ascending id
    order = np.argsort(ids)
    np.testing.assert_array_equal(all_ids, ids[order])
    np.testing.assert_array_equal(all_X, X[order].astype(np.float32))


@pytest.mark.parametrize("fmt", ["npz", "csv", "h5"])
def test_build_by_registered_name_and_by_path(fmt, tmp_path):
    ids, X = _truth(seed=1)
    path, _ = _write(fmt, tmp_path, ids, X)
    want = ids[[3, 2, 9]]
    space = features.register_precomputed("user_feats", path, dim=6, description="mine")
    assert isinstance(space, features.PrecomputedSpace) and space.path == str(path.resolve())
    expected = X[[3, 2, 9]].astype(np.float32)
    np.testing.assert_array_equal(features.build("user_feats", None, want, device="cpu"), expected)
    np.testing.assert_array_equal(features.build(f"precomputed:{path}", None, want), expected)
    assert features.describe().loc["user_feats", "description"] == "mine"
    named = features.describe(["user_feats", f"precomputed:{path}", "sbert:x", "multihot",
                               "hf:x?layer=1"])
    assert list(named.index) == ["user_feats", f"precomputed:{path}", "sbert:x", "multihot",
                                 "hf:x?layer=1"]
    assert list(named["group"]) == ["precomputed", "precomputed", "encoders", "categories",
                                    "encoders"]
    assert "Hugging Face" in named.loc["hf:x?layer=1", "description"]
    with pytest.raises(ValueError, match="unknown feature space 'nope'"):
        features.describe(["nope"])
    with pytest.raises(TypeError, match="not a single string"):
        features.describe("multihot")
    assert "precomputed:<path>" in features.available()
    assert features.precomputed_space("user_feats") == space
    assert features.precomputed_space(f"precomputed:{path}").path == str(path.resolve())
    assert features.precomputed_space("multihot") is None


def test_bool_and_integer_columns_are_numbers(tmp_path):
    ids = np.array([4, 2, 9])
    multihot = np.array([[True, False], [False, False], [True, True]])
    np.savez(tmp_path / "m.npz", nsdId=ids, features=multihot)
    np.testing.assert_array_equal(features.load_precomputed(tmp_path / "m.npz", [9, 4])[1],
                                  np.array([[1, 1], [1, 0]], dtype=np.float32))
    pd.DataFrame({"nsdId": ids, "a": [1, 2, 3], "b": multihot[:, 0]}).to_csv(tmp_path / "m.csv",
                                                                          index=False)
    np.testing.assert_array_equal(features.load_precomputed(tmp_path / "m.csv", [2])[1],
                                  np.array([[2, 0]], dtype=np.float32))


# --------------------------------------------------------------------------- errors
def _npz(tmp_path, ids, X, name="bad.npz"):
    path = tmp_path / name
    np.savez(path, nsdId=ids, features=X)
    return path


def test_missing_ids_are_counted_and_shown(tmp_path):
    ids, X = _truth(n=10)
    path = _npz(tmp_path, ids, X)
    have = set(ids.tolist())
    absent = [i for i in range(100) if i not in have][:7]
    with pytest.raises(features.PrecomputedError) as err:
        features.load_precomputed(path, [ids[0], *absent, absent[0]])
    msg = str(err.value)
    assert str(path) in msg and "7 of the 8 nsdIds" in msg
    assert f"[{', '.join(map(str, absent[:5]))}, ...]" in msg


@pytest.mark.parametrize("bad, match", [
    (np.nan, r"1 row\(s\) hold NaN or infinite values.*nsdIds \[11\]"),
    (np.inf, r"1 row\(s\) hold NaN or infinite"),
    (1e300, r"beyond float32's range"),
])
def test_non_finite_values_are_refused(tmp_path, bad, match):
    X = np.ones((4, 3))
    X[2, 1] = bad
    path = _npz(tmp_path, np.array([3, 7, 11, 12]), X)
    with pytest.raises(features.PrecomputedError, match=match) as err:
        features.load_precomputed(path, [3])
    assert str(path) in str(err.value)


@pytest.mark.parametrize("ids, match", [
    (np.array([1, 5, 5, 9]), r"1 nsdId\(s\) appear more than once \(\[5\]\)"),
    (np.array([1, 5, 73_000, 9]), r"outside NSD's range 0..72999 \(\[73000\]\)"),
    (np.array([1, -1, 3, 9]), r"outside NSD's range"),
    (np.array([1.0, 2.5, 3.0, 9.0]), r"not whole numbers \(rows \[1\]: \[2.5\]\)"),
    (np.array(["a", "b", "c", "d"]), r"dtype <U1; expected integers"),
    (np.array([[1, 2], [3, 4]]), r"one id per row \(1-D\)"),
    (np.array([1, 2, 3]), r"4 feature rows but 3 nsdIds"),
])
def test_bad_ids_are_refused(tmp_path, ids, match):
    path = _npz(tmp_path, ids, np.zeros((4, 2)))
    with pytest.raises(features.PrecomputedError, match=match) as err:
        features.load_precomputed(path)
    assert str(path) in str(err.value)


def test_wrong_dimension_and_shape_are_refused(tmp_path):
    path = _npz(tmp_path, np.arange(4), np.zeros((4, 3)))
    with pytest.raises(features.PrecomputedError, match=r"3 features per image; expected dim=5"):
        features.load_precomputed(path, dim=5)
    flat = _npz(tmp_path, np.arange(4), np.zeros(4), "flat.npz")
    with pytest.raises(features.PrecomputedError, match=r"shape \(4,\); expected a 2-D matrix"):
        features.load_precomputed(flat)
    empty = _npz(tmp_path, np.arange(4), np.zeros((4, 0)), "empty.npz")
    with pytest.raises(features.PrecomputedError, match="at least one image and one feature"):
        features.load_precomputed(empty)
    text = _npz(tmp_path, np.arange(2), np.array([["a", "b"], ["c", "d"]]), "text.npz")
    with pytest.raises(features.PrecomputedError, match="expected a numeric matrix"):
        features.load_precomputed(text)
    with pytest.raises(ValueError, match="dim=0"):
        features.load_precomputed(path, dim=0)
    with pytest.raises(ValueError, match="dim=True"):
        features.load_precomputed(path, dim=True)


def test_tables_need_an_id_column_and_numeric_features(tmp_path):
    df = pd.DataFrame({"nsdId": [1, 2], "a": [0.5, 1.0], "label": ["dog", "cat"]})
    df.to_csv(tmp_path / "t.csv", index=False)
    with pytest.raises(features.PrecomputedError, match=r"t.csv: non-numeric column\(s\) \['label'\]"):
        features.load_precomputed(tmp_path / "t.csv")
    df.drop(columns="label").to_parquet(tmp_path / "t.parquet")
    assert features.load_precomputed(tmp_path / "t.parquet")[1].shape == (2, 1)
    df.drop(columns=["label", "nsdId"]).to_csv(tmp_path / "noid.csv", index=False)
    with pytest.raises(features.PrecomputedError, match=r"noid.csv: no 'nsdId' column or index"):
        features.load_precomputed(tmp_path / "noid.csv")
    df.drop(columns="label").to_csv(tmp_path / "unnamed.csv")  # an unnamed index saved
    with pytest.raises(features.PrecomputedError, match=r"unnamed column\(s\) \['Unnamed: 0'\]"):
        features.load_precomputed(tmp_path / "unnamed.csv")
    pd.DataFrame({"nsdId": [1, None], "a": [0.5, 1.0]}).to_csv(tmp_path / "nan_id.csv", index=False)
    with pytest.raises(features.PrecomputedError, match="not whole numbers"):
        features.load_precomputed(tmp_path / "nan_id.csv")


def test_containers_need_their_arrays(tmp_path):
    import h5py

    np.savez(tmp_path / "a.npz", ids=np.arange(3), features=np.zeros((3, 2)))
    with pytest.raises(features.PrecomputedError, match=r"a.npz: no array \['nsdId'\].*'ids'"):
        features.load_precomputed(tmp_path / "a.npz")
    with h5py.File(tmp_path / "a.h5", "w") as fh:
        fh["nsdId"] = np.arange(3)
    with pytest.raises(features.PrecomputedError, match=r"a.h5: no dataset \['features'\]"):
        features.load_precomputed(tmp_path / "a.h5")
    (tmp_path / "junk.h5").write_bytes(b"not hdf5")
    with pytest.raises(features.PrecomputedError, match="junk.h5: not a readable HDF5 file"):
        features.load_precomputed(tmp_path / "junk.h5")
    np.save(tmp_path / "one.npy", np.zeros((3, 1)))
    with pytest.raises(features.PrecomputedError, match=r"one.npy: no ids sidecar one.nsdId.npy"):
        features.load_precomputed(tmp_path / "one.npy")
    with pytest.raises(features.PrecomputedError, match=r"the ids file .*nope.npy \(ids=\) not found"):
        features.load_precomputed(tmp_path / "one.npy", ids=tmp_path / "nope.npy")
    with pytest.raises(ValueError, match="an ids file goes with a .npy matrix only"):
        features.load_precomputed(tmp_path / "a.npz", ids=tmp_path / "x.npy")
    (tmp_path / "f.txt").write_text("1 2 3")
    with pytest.raises(features.PrecomputedError, match=r"unsupported file type '.txt'"):
        features.load_precomputed(tmp_path / "f.txt")
    with pytest.raises(features.PrecomputedError, match="missing.npz not found"):
        features.load_precomputed(tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="path=3"):
        features.load_precomputed(3)


# --------------------------------------------------------------------------- the cache
def test_cache_hit_and_a_changed_file_misses(tmp_path, cache_dir, monkeypatch):
    ids, X = _truth(n=30, seed=2)
    path, _ = _write("csv", tmp_path, ids, X)
    calls = []
    parse = _precomputed._parse
    monkeypatch.setattr(_precomputed, "_parse", lambda *a: calls.append(a) or parse(*a))
    want = ids[[4, 1]]
    first = features.load_precomputed(path, want)[1]
    assert len(calls) == 1
    entries = sorted(p.name for p in (cache_dir / "features" / "precomputed").glob("*.npy"))
    assert len(entries) == 2 and entries[0].endswith("_X.npy")
    _precomputed._PARSED.clear()  # as a new process: the disk entry is read, the file is not
    _precomputed._SHA.clear()
    np.testing.assert_array_equal(features.load_precomputed(path, want)[1], first)
    assert len(calls) == 1
    # the same size and the modification time restored: the content's sha256 still differs
    st = path.stat()
    X2 = X.copy()
    X2[4] = X[1]
    X2[1] = X[4]
    _frame(ids, X2).to_csv(path, index=False)
    assert path.stat().st_size == st.st_size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    swapped = features.load_precomputed(path, want)[1]
    assert len(calls) == 2
    np.testing.assert_array_equal(swapped, first[::-1])
    _precomputed._PARSED.clear()
    features.load_precomputed(tmp_path / "f.csv", want, cache=False)
    assert len(calls) == 3  # cache=False: the file is read, no disk entry is written
    assert len(list((cache_dir / "features" / "precomputed").glob("*.npy"))) == 4


def test_a_corrupt_cache_entry_is_recomputed(tmp_path, cache_dir):
    ids, X = _truth(n=12, seed=3)
    path, _ = _write("npz", tmp_path, ids, X)
    features.load_precomputed(path)
    (entry,) = (cache_dir / "features" / "precomputed").glob("*_X.npy")
    data = bytearray(entry.read_bytes())
    data[-4:] = b"\x00\x00\xc0\x7f"  # a NaN in the last value
    entry.write_bytes(bytes(data))
    _precomputed._PARSED.clear()
    with pytest.warns(CorruptCacheWarning):
        got = features.load_precomputed(path, ids)[1]
    np.testing.assert_array_equal(got, X.astype(np.float32))


def test_an_ids_sidecar_change_misses(tmp_path):
    ids, X = _truth(n=8, seed=4)
    path, _ = _write("npy_sidecar", tmp_path, ids, X)
    before = features.load_precomputed(path, ids[:1])[1]
    np.save(tmp_path / "f.nsdId.npy", ids[::-1].copy())  # the same ids, rows now reversed
    np.testing.assert_array_equal(before, X[:1].astype(np.float32))
    np.testing.assert_array_equal(features.load_precomputed(path, ids[:1])[1],
                                  X[-1:].astype(np.float32))


# --------------------------------------------------------------------------- registration
def test_registration_is_idempotent_and_checked(tmp_path):
    ids, X = _truth(n=5)
    a = _npz(tmp_path, ids, X, "a.npz")
    b = _npz(tmp_path, ids, X, "b.npz")
    first = features.register_precomputed("dup_space", a, dim=6)
    assert features.register_precomputed("dup_space", str(a), dim=6) == first  # no-op
    with pytest.raises(ValueError, match="'dup_space' is already registered"):
        features.register_precomputed("dup_space", b, dim=6)
    with pytest.raises(ValueError, match="already registered"):
        features.register_precomputed("mpnet", a)
    with pytest.raises(ValueError, match="read their file directly"):
        features.register_precomputed("precomputed:x", a)
    with pytest.raises(TypeError, match="name="):
        features.register_precomputed("", a)
    with pytest.raises(TypeError, match="description="):
        features.register_precomputed("ok", a, description=3)
    with pytest.raises(features.PrecomputedError, match="not found"):
        features.register_precomputed("gone", tmp_path / "gone.npz")
    bad = _npz(tmp_path, np.array([1, 1, 2, 3, 4]), X, "bad.npz")
    features.register_precomputed("lazy_bad", bad)  # content read at the first build ...
    with pytest.raises(features.PrecomputedError, match="appear more than once"):
        features.register_precomputed("eager_bad", bad, check=True)  # ... or now
    assert "eager_bad" not in features.available()
    with pytest.raises(features.PrecomputedError, match="appear more than once"):
        features.build("lazy_bad", None, [1])
    assert first.check() == (5, 6)
    import hashlib

    assert first.identity()["sha256"] == hashlib.sha256(a.read_bytes()).hexdigest()
