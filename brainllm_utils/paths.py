"""Public face of :mod:`brainllm_utils._utils.paths` (data, cache, results and model folders;
atomic writes; file locks)."""

from ._utils.paths import (
    REPO_ROOT,
    atomic_path,
    atomic_save_npy,
    atomic_write_text,
    file_lock,
    get_cache_dir,
    get_data_home,
    get_models_dir,
    get_results_dir,
)

__all__ = [
    "REPO_ROOT",
    "get_data_home",
    "get_cache_dir",
    "get_results_dir",
    "get_models_dir",
    "atomic_path",
    "atomic_save_npy",
    "atomic_write_text",
    "file_lock",
]
