"""Public face of :mod:`brainllm_utils.book.batch`: batch re-execution of the book's notebooks
on Dask (a grid of notebooks × parameters).

Command line: ``python -m brainllm_utils.batch run [NOTEBOOK ...] [--data PATH] ...``.
"""

from .book.batch import (
    PARAMETER_RULES,
    PRECEDENCE,
    PROFILES,
    SLURM_START_TIMEOUT,
    BatchError,
    BatchParameterError,
    data_fingerprint,
    data_used_record,
    exported_partial_data,
    format_results,
    git_revision,
    Job,
    JobResult,
    main,
    make_cluster,
    package_fingerprint,
    package_versions,
    plan_jobs,
    profile_for,
    read_manifest,
    run_book,
    run_grid,
    run_jobs,
    SlurmStartError,
    validate_parameters,
)

__all__ = [
    "PROFILES",
    "PARAMETER_RULES",
    "PRECEDENCE",
    "SLURM_START_TIMEOUT",
    "SlurmStartError",
    "BatchError",
    "BatchParameterError",
    "Job",
    "JobResult",
    "data_fingerprint",
    "package_fingerprint",
    "profile_for",
    "plan_jobs",
    "validate_parameters",
    "run_jobs",
    "run_grid",
    "run_book",
    "make_cluster",
    "read_manifest",
    "data_used_record",
    "exported_partial_data",
    "format_results",
    "package_versions",
    "git_revision",
    "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
