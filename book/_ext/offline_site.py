"""Keep every page of the course site self-contained and free of console errors (issue 3).

Jupyter Book 1.x always loads sphinx-thebe ("run this page on a remote kernel"). Its set-up
script names a CDN address and, with Sphinx 7.4, lands on every page twice, which is a
JavaScript error ("THEBE_JS_URL has already been declared"). The course has no remote kernels
(learners run the notebooks in JupyterLab), so this extension drops thebe's scripts.

The theme's first inline script sets the colour mode from localStorage, or to "" on a first
visit, which the theme then reports as a console error. A tiny inline script sets "auto" instead.
"""

from __future__ import annotations

THEME_MODE_FIX = (
    "const root = document.documentElement; if (!root.dataset.mode) root.dataset.mode = 'auto';"
)


def _is_thebe(script) -> bool:
    body = getattr(script, "attributes", {}).get("body", "") or ""
    return "thebe" in str(getattr(script, "filename", script)) or "THEBE_JS_URL" in body


def drop_thebe(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if scripts is not None:
        context["script_files"] = [s for s in scripts if not _is_thebe(s)]


def setup(app):
    app.add_js_file(None, body=THEME_MODE_FIX, priority=100)
    app.connect("html-page-context", drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
