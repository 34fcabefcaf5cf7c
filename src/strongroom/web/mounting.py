"""Strongroom in any WSGI app: a mount in front of the host, for hosts that export a dispatcher.

``mount(host, "/backups", services, current_user, secret_key=...)`` returns a WSGI app.
Requests under the prefix go to a Flask app of Strongroom's own that has the blueprint
with its pages at its top (``/backups/site``, ``/backups/projects/<id>``,
``/backups/jobs/<id>``, the API at ``/backups/api/v1``, the static files at
``/backups/static``); everything else goes to the host, untouched. So nothing of the
host's routing (a catch-all route, a WebDAV sub-app, a ``before_request``) sees the panel.

Who is there: ``current_user(request)`` is called with the request as Strongroom's app
sees it (the host's cookies included), at most once a request. A host that keeps its
users in its own Flask session reads them with its own app::

    def current_user(request):
        host_session = routed_app.session_interface.open_session(routed_app, request)
        return user_named(host_session.get("user"))   # a strongroom.policy.User or None

Strongroom's app keeps its own session (the CSRF secret, flashed messages) in a cookie
named ``strongroom_session`` whose path is the prefix, signed with a key derived from
``secret_key`` (the same in every worker process), so it never touches the host's cookie.

Its pages extend ``layout`` (with ``layout_blocks``, ``layouts.py``), found in
``templates`` (a folder, a Jinja loader, or the host's Flask app); ``layout_context()``
gives the layout's variables. While a restore runs the mount also guards the host as
``refuse_writes_during_restore`` does, before any of the host's code runs: its writes get
503, during a site restore every request but those under ``open_paths`` gets 503, and a
403, 404 or 500 that a restore's start overtook becomes 503 (``maintenance.py``). While a
backup reads, the host's writes wait for it, then get 503 (``repo.write_hold``); a write
counts as under way until its answer's body is closed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Callable, Iterable
from pathlib import Path

from flask import Flask, g, request
from jinja2 import BaseLoader, FileSystemLoader
from werkzeug.wsgi import ClosingIterator

from strongroom.config import Config
from strongroom.policy import User
from strongroom.repo import write_hold
from strongroom.web import maintenance
from strongroom.web.blueprint import make_blueprint, routing_error, service_factory_for
from strongroom.web.layouts import Layout

ENV_SECRET_KEY = "STRONGROOM_SECRET_KEY"
COOKIE = "strongroom_session"


class Mounted:
    """The WSGI app ``mount`` returns: ``app`` is Strongroom's Flask app, ``host`` the host."""

    def __init__(self, host: Callable, prefix: str, app: Flask, service_factory: Callable,
                 layout: Layout, guard_host: bool, open_paths: tuple[str, ...]):
        self.host, self.prefix, self.app = host, prefix, app
        self.service_factory, self.layout = service_factory, layout
        self.guard_host, self.open_paths = guard_host, open_paths

    def __call__(self, environ: dict, start_response: Callable):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix):]
            return self.app(environ, start_response)
        if not self.guard_host or path.startswith(self.open_paths):
            return self.host(environ, start_response)
        return self._guarded(environ, start_response)

    def _guarded(self, environ: dict, start_response: Callable):
        service = self.service_factory()
        journal = service.maintenance()
        write = environ.get("REQUEST_METHOD", "GET") not in maintenance.SAFE_METHODS
        if journal is not None:
            if write or journal.get("scope") == "site":
                return self._maintenance(environ, start_response, journal)
            return self.host(environ, start_response)  # answered knowing the restore
        if not write:
            return self._answered(environ, start_response)
        control = service.control
        try:
            key = maintenance.enter_host_write(service)
        except write_hold.WritesHeld as exc:
            with self.app.request_context(environ):
                response = maintenance.held_answer(exc, self.layout)
            return response(environ, start_response)
        except maintenance.RestoreBegan as exc:
            return self._maintenance(environ, start_response, exc.journal)
        try:
            body = self._answered(environ, start_response)
        except BaseException:
            write_hold.leave_write(control, key)
            raise
        return ClosingIterator(body, lambda: write_hold.leave_write(control, key))

    def _answered(self, environ: dict, start_response: Callable):
        """The host's answer, or the maintenance answer if a restore began meanwhile and
        made it spurious."""
        held = _Held(start_response)
        body = self.host(environ, held.start_response)
        if not held.waiting():
            return body
        journal = self.service_factory().maintenance()  # began during the request: was the answer spurious?
        if journal is None:
            return held.release(body)
        if hasattr(body, "close"):
            body.close()
        return self._maintenance(environ, start_response, journal)

    def _maintenance(self, environ: dict, start_response: Callable, journal: dict):
        with self.app.request_context(environ):
            running = self.service_factory().busy() is not None
            response = maintenance.answer(journal, self.layout, running=running)
        return response(environ, start_response)


class _Held:
    """A host's ``start_response`` that holds back a status a restore may have made
    spurious (403, 404, 500) until the mount has decided."""

    def __init__(self, start_response: Callable):
        self.start_response_of_server = start_response
        self.held: tuple | None = None
        self.written: list[bytes] = []
        self.decided = False

    def start_response(self, status: str, headers: list, exc_info=None):
        if self.decided or int(status[:3]) not in maintenance.SPURIOUS_DURING_RESTORE:
            return self.start_response_of_server(status, headers, exc_info)
        self.held = (status, headers, exc_info)
        return self.written.append

    def waiting(self) -> bool:
        self.decided = self.held is None  # a lazy app may start its response later: pass it on
        return self.held is not None

    def release(self, body):
        write = self.start_response_of_server(*self.held)
        for chunk in self.written:
            write(chunk)
        return body


def mount(host: Callable, prefix: str, services: Config | Callable, current_user: Callable[..., User | None], *,
          secret_key: str | bytes | None = None, layout: str | None = None,
          layout_blocks: dict[str, str | None] | None = None, templates: str | Path | BaseLoader | Flask | None = None,
          layout_context: Callable[[], dict] | None = None, guard_host: bool = True,
          open_paths: Iterable[str] = ("/static/",)) -> Mounted:
    """``host`` with Strongroom's panel and API under ``prefix`` (see the module's text).

    ``services`` is a ``Config`` or a ``factory(progress=None) -> Strongroom``;
    ``current_user(request)`` returns a ``strongroom.policy.User`` or None.
    """
    if not prefix.startswith("/") or prefix.endswith("/"):
        raise ValueError(f"the prefix must start with / and not end with it: {prefix!r}")
    factory = service_factory_for(services) if isinstance(services, Config) else services
    app = Flask(__name__, static_folder=None)
    app.secret_key = _session_key(secret_key or os.environ.get(ENV_SECRET_KEY))
    app.config.update(SESSION_COOKIE_NAME=COOKIE, SESSION_COOKIE_PATH=prefix, SESSION_COOKIE_HTTPONLY=True,
                      SESSION_COOKIE_SAMESITE="Lax")
    app.url_map.merge_slashes = False
    if templates is not None:
        app.jinja_loader = _loader(templates)
    if layout_context is not None:
        app.context_processor(layout_context)
    for status in (404, 405):  # every unrouted path under the prefix is ours: a page in the panel's look
        app.register_error_handler(status, routing_error)

    def user() -> User | None:
        if "strongroom_mounted_user" not in g:
            g.strongroom_mounted_user = current_user(request)
        return g.strongroom_mounted_user

    blueprint = make_blueprint(factory, user, layout=layout, layout_blocks=layout_blocks, pages_path="")
    app.register_blueprint(blueprint)
    return Mounted(host, prefix, app, factory, Layout(layout, layout_blocks), guard_host, tuple(open_paths))


def _session_key(secret_key: str | bytes | None) -> bytes:
    if not secret_key:
        raise ValueError(f"mount needs secret_key (or ${ENV_SECRET_KEY}): the same in every worker process, "
                         "or a form made in one is refused by another")
    key = secret_key.encode() if isinstance(secret_key, str) else secret_key
    return hmac.new(key, b"strongroom mounted session", hashlib.sha256).digest()


def _loader(templates: str | Path | BaseLoader | Flask) -> BaseLoader:
    if isinstance(templates, BaseLoader):
        return templates
    if isinstance(templates, Flask):
        return templates.jinja_loader
    return FileSystemLoader(str(templates))
