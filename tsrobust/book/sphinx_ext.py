"""A small Sphinx extension for the book's HTML.

Jupyter Book 1's extensions register some inline scripts twice (e.g. sphinx-thebe's
``const THEBE_JS_URL = …``), and a ``const`` declared twice is a JavaScript error on every page.
This extension drops exact duplicates from each page's script list.
"""

from __future__ import annotations


def _key(script):
    filename = getattr(script, "filename", script) or ""  # None and "" both mean inline
    attributes = getattr(script, "attributes", {}) or {}
    return str(filename), tuple(sorted((k, str(v)) for k, v in attributes.items()))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
