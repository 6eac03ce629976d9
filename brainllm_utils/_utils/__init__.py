"""Layer 0: utilities every other layer may use (and nothing of the package above them).

- :mod:`~brainllm_utils._utils.paths`: where data, caches and results live; atomic files; locks.
- :mod:`~brainllm_utils._utils.device`: the one device resolver, lazy torch, TF32 and thread guards.
"""

from .device import resolve_device
from .paths import (
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
    "resolve_device",
]
