"""Public face of :mod:`brainllm_utils.book.site_check`: every page of the built book in
headless Chromium.

Command line: ``python -m brainllm_utils.site_check _build/html [--screenshots DIR]``.
"""

from .book.site_check import (
    CHROMIUM_FLAGS,
    check_page,
    check_site,
    find_chromium,
    main,
    PageReport,
    toc_pages,
)

__all__ = [
    "CHROMIUM_FLAGS",
    "PageReport",
    "find_chromium",
    "toc_pages",
    "check_page",
    "check_site",
    "main",
]

if __name__ == "__main__":
    raise SystemExit(main())
