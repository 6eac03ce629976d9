"""``python -m brainllm_utils.nsd``: the NSD tools' command line (:func:`brainllm_utils.nsd.main`).

Subcommands ``download`` and ``check``; see ``python -m brainllm_utils.nsd --help``.
"""

from __future__ import annotations

from ._cli import main

__all__ = ["main"]


if __name__ == "__main__":
    raise SystemExit(main())
