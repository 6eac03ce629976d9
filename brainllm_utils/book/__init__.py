"""Layer 6: the book runner — papermill execution (``_execute``), the resumable Dask batch over
notebooks × parameter grids (:mod:`~brainllm_utils.book.batch`), the headless-Chromium check
of the built book (:mod:`~brainllm_utils.book.site_check`), the ``brainllm`` console command
(:mod:`~brainllm_utils.book.cli`) and the environment installer ``make`` runs by path
(:mod:`~brainllm_utils.book.install`, standard library only).

Source notebooks live in ``notebooks/`` (no outputs); executed copies go to
``book/notebooks/`` (git-ignored), which ``_toc.yml`` lists. Jupyter Book runs with
execution off and renders the stored outputs.
"""

from . import batch, site_check  # noqa: F401  (public submodules)
from ._execute import (
    KERNEL_NAME,
    NOTEBOOK_DIR,
    OUTPUT_DIR,
    drop_progress_widgets,
    execute_notebook,
    kernel_spec,
    list_notebooks,
    notebook_parameters,
    notebook_path,
    notebook_paths,
    output_digest,
)
from .batch import run_book

__all__ = [
    "NOTEBOOK_DIR",
    "OUTPUT_DIR",
    "list_notebooks",
    "notebook_parameters",
    "execute_notebook",
    "output_digest",
    "KERNEL_NAME",
    "kernel_spec",
    "notebook_path",
    "notebook_paths",
    "drop_progress_widgets",
    "run_book",
]
