"""Layer 0: utilities every other layer may use (and nothing of the package above them).

- :mod:`~brainllm_utils._utils.paths`: where data, caches and results live; atomic files; locks.
- :mod:`~brainllm_utils._utils.device`: the one device resolver, lazy torch, TF32 and thread guards.
- :mod:`~brainllm_utils._utils.cache`: the one cache (keys, versions, the corrupt-entry policy).
- :mod:`~brainllm_utils._utils.numeric`: the one Pearson correlation (NaN for constant inputs).
- :mod:`~brainllm_utils._utils.docs`: shared docstring fragments (``docdict``) and ``fill_doc``.
"""

from .cache import (
    CACHE_VERSIONS,
    CacheUnavailableWarning,
    CorruptCacheError,
    CorruptCacheWarning,
    VerifiedArray,
    array_digest,
    checksum_path,
    cache_key,
    cached_arrays,
    cached_json,
    file_identity,
    load_entry,
    load_npy,
    resolve_cache,
    save_npy,
    verify_checksums,
    writable_cache,
    write_checksums,
    write_npy,
)
from .device import import_torch, resolve_device, tf32, torch_threads
from .docs import docdict, fill_doc
from .numeric import pearson_r
from .paths import (
    REPO_ROOT,
    CacheFullError,
    allocate_npy,
    atomic_path,
    atomic_save_npy,
    atomic_write_text,
    check_free_space,
    file_lock,
    remove_stale_temps,
    scratch_npy,
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
    "CacheFullError",
    "allocate_npy",
    "check_free_space",
    "remove_stale_temps",
    "scratch_npy",
    "resolve_device",
    "import_torch",
    "tf32",
    "torch_threads",
    "CACHE_VERSIONS",
    "CorruptCacheWarning",
    "CorruptCacheError",
    "VerifiedArray",
    "resolve_cache",
    "cache_key",
    "array_digest",
    "file_identity",
    "load_entry",
    "load_npy",
    "save_npy",
    "write_npy",
    "write_checksums",
    "verify_checksums",
    "checksum_path",
    "writable_cache",
    "CacheUnavailableWarning",
    "cached_arrays",
    "cached_json",
    "pearson_r",
    "docdict",
    "fill_doc",
]
