"""Command-line tools for a local NSD copy (``python -m brainllm_utils.nsd``, ``brainllm nsd``).

Subcommands: ``download`` (:mod:`brainllm_utils.nsd._download`) fetches the files the book
reads for a selection of subjects and sessions; ``check`` (:mod:`brainllm_utils.nsd._check`)
validates a local copy, lists what each chapter still needs and estimates time, disk and
memory. Each subcommand module provides ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse

from .._utils.docs import fill_doc
from . import _check, _download

__all__ = ["main"]


@fill_doc
def main(argv=None, prog=None) -> int:
    """Parse the command line and run the chosen subcommand.

    Parameters
    ----------
    %(argv)s
    %(prog)s

    Returns
    -------
    code : int
        The subcommand's exit status (0: success).
    """
    parser = argparse.ArgumentParser(prog=prog or "python -m brainllm_utils.nsd",
                                     description="Tools for a local copy of the Natural Scenes Dataset.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("download", help="fetch the files the book reads for a selection",
                       description="Download the files the book reads for a selection of subjects, sessions "
                       "and spaces: NSD's from its public S3 bucket (anonymously), the COCO 2017 "
                       "annotations (and, with --coco-images, images) from COCO's zips.")
    _download.add_arguments(p)
    p.set_defaults(func=_download.run)
    p = sub.add_parser("check", help="validate a local copy; list what each chapter misses; estimate resources",
                       description="Check a local NSD copy (or the sandbox): file integrity, internal "
                       "consistency, NSD's release facts (on an NSD-sized root), the files each chapter still "
                       "needs, and time, disk and memory for a profile on this machine. Exit status 0 when "
                       "usable (warnings allowed), 1 when damaged.")
    _check.add_arguments(p)
    p.set_defaults(func=_check.run)
    args = parser.parse_args(argv)
    return args.func(args)
