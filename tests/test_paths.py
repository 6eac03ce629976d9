"""Locations, atomic writes and device resolution."""

from __future__ import annotations

import numpy as np
import pytest

from brainllm_utils import paths
from brainllm_utils._utils.device import resolve_device


def test_precedence_argument_env_default(tmp_path, monkeypatch):
    monkeypatch.setenv("BRAINLLM_DATA", str(tmp_path / "env"))
    assert paths.get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert paths.get_data_home() == tmp_path / "env"
    monkeypatch.delenv("BRAINLLM_DATA")
    assert paths.get_data_home() == paths.REPO_ROOT / "data" / "sandbox"
    monkeypatch.setenv("BRAINLLM_MODELS", str(tmp_path / "models"))
    assert paths.get_models_dir() == tmp_path / "models" and (tmp_path / "models").is_dir()


def test_atomic_save_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "x.npy"
    with pytest.raises(RuntimeError):
        with paths.atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise RuntimeError("interrupted")
    assert list(tmp_path.iterdir()) == []
    paths.atomic_save_npy(target, np.arange(3))
    np.testing.assert_array_equal(np.load(target), np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]


def test_resolve_device():
    import torch

    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="expected 'auto', 'cpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cuda"):
            resolve_device("cuda")


def test_file_lock_excludes_a_second_holder(tmp_path):
    from brainllm_utils.paths import file_lock

    with file_lock(tmp_path / "x.lock"):
        with pytest.raises(BlockingIOError):
            with file_lock(tmp_path / "x.lock", blocking=False):
                pass
    with file_lock(tmp_path / "x.lock", blocking=False):  # released: free again
        pass
