"""The maintenance flag for the host app: while a restore runs, writes get 503.

A restore's journal exists from its first change until it has finished or rolled back
(``Strongroom.maintenance()``); meanwhile the scope may be half old, half new. The hook
below refuses the host app's own state-changing requests then, with a notice (HTML or
JSON, ``Retry-After: 5``); reads go on. The backup blueprint's own operations are not
refused here: they meet the operation lock and are refused with 409 and their reason.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask, render_template, request

from . import messages
from .api import error_response
from .blueprint import NAME

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def refuse_writes_during_restore(app: Flask, service_factory: Callable, layout: str | None = None) -> None:
    """Install the hook, and ``strongroom_maintenance`` (the notice or None) for templates."""

    def notice() -> str | None:
        journal = service_factory().maintenance()
        return messages.maintenance(journal) if journal else None

    @app.before_request
    def refuse_writes():
        if request.method in SAFE_METHODS or (request.blueprint or "").split(".")[0] == NAME:
            return None
        text = notice()
        if text is None:
            return None
        if request.accept_mimetypes.best == "application/json" or request.is_json:
            response = error_response(503, "maintenance", text)
        else:
            html = render_template("strongroom/maintenance.html", layout=layout or "strongroom/layout.html",
                                   notice=text)
            response = app.make_response((html, 503))
        response.headers["Retry-After"] = "5"
        return response

    @app.context_processor
    def maintenance_notice():
        return {"strongroom_maintenance": notice}
