"""A Sphinx extension for the book's build (``_config.yml``: ``sphinx.extra_extensions``).

It removes inline scripts that a page would include twice. sphinx-thebe 0.3.1 adds its
configuration (``const THEBE_JS_URL = ...``) with ``app.add_js_file(None, body=...)`` while
the builder already exists; Sphinx 7.4 then keeps it both in the registry (filename ``''``)
and in the builder (filename ``None``), so every page declared the constants twice and
Chromium raised ``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared`` on
every page (found by the site check's JavaScript-error check).
"""

from __future__ import annotations

__all__ = ["dedupe_scripts", "setup"]


def dedupe_scripts(app, pagename, templatename, context, doctree) -> None:
    """Drop the repeats of a script (same file or same inline body) from one page.

    Connected to Sphinx's ``html-page-context`` event; the first of equal scripts stays.

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The application.
    pagename : str
        The page being written.
    templatename : str
        Its template.
    context : dict
        The template context; its ``script_files`` list is filtered in place.
    doctree : docutils.nodes.document or None
        The page's doctree.
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        filename = getattr(js, "filename", js) or ""
        attributes = tuple(sorted((getattr(js, "attributes", None) or {}).items()))
        key = (str(filename), attributes)
        if key in seen:
            continue
        seen.add(key)
        kept.append(js)
    context["script_files"] = kept


def setup(app) -> dict:
    """Register :func:`dedupe_scripts` (Sphinx's extension entry point).

    Parameters
    ----------
    app : sphinx.application.Sphinx
        The application.

    Returns
    -------
    dict
        The extension's metadata (safe for parallel reading and writing).
    """
    app.connect("html-page-context", dedupe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
