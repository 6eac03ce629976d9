"""Shared fixtures: offline environment, seeded RNG, and the tiny generated sandbox."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# "auto" precisions resolve to float32 on every CPU (embeddings compared with their
# references, trainings with their recorded values); tests of the bf16 path set it themselves
os.environ["BRAINLLM_CPU_BF16"] = "0"


@pytest.fixture(scope="session", autouse=True)
def _offline_session_env(tmp_path_factory):
    """Tests never write into the repository's data/: caches, results and nilearn's data dir
    point at the session's temporary folder (model weights stay in BRAINLLM_MODELS)."""
    os.environ["NILEARN_DATA"] = str(tmp_path_factory.mktemp("nilearn_data"))
    os.environ["BRAINLLM_CACHE"] = str(tmp_path_factory.mktemp("session_cache"))
    os.environ["BRAINLLM_RESULTS"] = str(tmp_path_factory.mktemp("session_results"))
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """The ``tiny`` sandbox, generated once per test session (read-only by convention)."""
    from brainllm_utils.synth import make_synthetic_nsd

    root = tmp_path_factory.mktemp("sandbox") / "tiny"
    make_synthetic_nsd(root, preset="tiny", seed=0)
    return root


@pytest.fixture
def cache_dir(tmp_path, monkeypatch) -> Path:
    """A fresh cache folder for this test (BRAINLLM_CACHE points at it)."""
    path = tmp_path / "cache"
    monkeypatch.setenv("BRAINLLM_CACHE", str(path))
    return path


@pytest.fixture
def tree_copy(tiny_root, tmp_path):
    """A private copy of the tiny sandbox (hard links: cheap) that a test may damage."""

    def _copy() -> Path:
        dst = tmp_path / "copy"
        shutil.copytree(tiny_root, dst, copy_function=os.link)
        return dst

    return _copy


def replace_file(path: Path, data: bytes) -> None:
    """Replace a (possibly hard-linked) file without touching the original inode."""
    path.unlink()
    path.write_bytes(data)
