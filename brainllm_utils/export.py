"""Public face of :mod:`brainllm_utils.chapters` exports: each chapter's results as MGH,
GIfTI, NIfTI, CSV, parquet and rsatoolbox HDF5 files under ``<results>/<chapter>/``.

Command line: ``python -m brainllm_utils.export {list,check} [RESULTS_DIR] [--chapter NAME]``.
"""

from .chapters import (
    ExportFolder,
    check_folder,
    download_markdown,
    export_rdms,
    export_surface_map,
    export_table,
    export_volume_map,
    findings_table,
    export_main as main,
    make_rdms,
    read_entry,
    results_folder,
    safe_name,
    sample_set_rdms,
)

__all__ = [
    "ExportFolder",
    "results_folder",
    "export_surface_map",
    "export_volume_map",
    "export_table",
    "export_rdms",
    "make_rdms",
    "sample_set_rdms",
    "safe_name",
    "findings_table",
    "read_entry",
    "check_folder",
    "download_markdown",
    "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
