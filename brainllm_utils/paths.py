"""Public face of :mod:`brainllm_utils._utils.paths` (data, cache, results and model folders;
atomic writes; file locks; stale temporary files; free-space checks)."""

from ._utils.paths import (
    REPO_ROOT,
    CacheFullError,
    allocate_npy,
    atomic_path,
    atomic_save_npy,
    atomic_write_text,
    check_free_space,
    file_lock,
    get_cache_dir,
    get_data_home,
    get_models_dir,
    get_results_dir,
    remove_stale_temps,
    scratch_npy,
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
    "CacheFullError",
    "allocate_npy",
    "check_free_space",
    "remove_stale_temps",
    "scratch_npy",
]
