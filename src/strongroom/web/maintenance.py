"""Maintenance while a restore runs: what the host app and the blueprint answer then.

A restore's journal exists from its first change until it has finished or rolled back
(``Strongroom.maintenance()``); meanwhile its scope may be half old, half new. So, while
it exists:

- Writes to the host app get 503 with a notice (HTML, or JSON when the client asks for
  it), ``Retry-After: 5``. The API's own writes get 409 (``busy``), its documented
  conflict, before any permission check (which would read the users); the panel's forms
  are refused with their reason, as when any other operation holds the lock.
- During a *site* restore every collection, the users' too, is being replaced: every
  request that needs the database gets 503, reads included, so nobody is told "sign in
  first" or "not found" because the users or the projects are being reloaded. Static
  files and the OpenAPI document stay available.
- A request that began before the restore and ends during it with 403, 404 or 500 is
  answered 503 too: what it read may have been half-loaded.
- Requests that routing refuses (404, or 405 with ``Allow``) are answered by routing.
- While a backup dumps the records and reads the files, the host's writes wait for it
  (``repo.write_hold``), at most ``write_hold.WAIT`` seconds, then get 503 with
  ``Retry-After``; so a change is in the backup wholly or not at all. A write let in
  looks for a restore's journal once more (``enter_host_write``): the hold it waited for
  may have been a restore's pre-restore backup, and it must not write into a scope being
  replaced.
- Reads are the methods that change nothing: GET, HEAD, OPTIONS and WebDAV's PROPFIND,
  REPORT and SEARCH (``SAFE_METHODS``); every other method is a write.
- A job's status (``/api/v1/jobs/<id>``) always answers: it reads the shared control
  state, not the site's records (``face.Face.job``); so does a job's page, to the session
  that started the job (to others, the notice: ``blueprint.job_page``).

The journal, the lock or lease and the jobs are shared state (the data dir, the
database), so every worker of every instance gives the same answers. A journal whose
restore's process is gone is recovered by the first request that meets it
(``recover_orphan``), and the maintenance answer ends.

The notice's page refreshes itself, so a browser comes back once the restore is over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from flask import Flask, current_app, g, render_template, request

from strongroom.errors import StrongroomError
from strongroom.repo import write_hold
from strongroom.web import messages
from strongroom.web.api import error_response
from strongroom.web.face import NAME
from strongroom.web.layouts import Layout, layout_of

SAFE_METHODS = ("GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT", "SEARCH")  # WebDAV's reads too
SPURIOUS_DURING_RESTORE = (403, 404, 500)
RETRY_AFTER = 5
# Never refused: they need no site record (a job's status is read from the control state).
ALWAYS_OPEN = ("static", "strongroom.static", "strongroom.api.openapi", "strongroom.api.job")


log = logging.getLogger("strongroom")


def wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json" or request.is_json


def answer(journal: dict, layout: Layout | str | None, as_json: bool = False, running: bool = True):
    """The 503 maintenance answer, as JSON or as a page (in ``layout``) that refreshes itself."""
    return notice_answer(messages.maintenance(journal, running), layout, as_json)


def held_answer(exc: write_hold.WritesHeld, layout: Layout | str | None):
    """The 503 answer to a write that a backup's hold kept waiting too long."""
    return notice_answer(str(exc), layout)


def notice_answer(text: str, layout: Layout | str | None, as_json: bool = False):
    """A 503 with ``text`` and ``Retry-After``, as JSON or as a page that refreshes itself."""
    if as_json or wants_json():
        response = error_response(503, "maintenance", text)
    else:
        g.strongroom_maintenance_page = True  # the host's layout must not read its users to draw it
        html = render_template("strongroom/maintenance.html", layout=layout_of(layout).template(current_app.jinja_env),
                               notice=text, refresh=RETRY_AFTER if request.method in SAFE_METHODS else None)
        response = current_app.make_response((html, 503))
    response.headers["Retry-After"] = str(RETRY_AFTER)
    return response


class Guard:
    """The two hooks around a request: refuse it now, or replace a spurious answer."""

    def __init__(self, service_factory: Callable, layout: Layout | None, open_endpoints: Iterable[str],
                 covers: Callable[[], bool] = lambda: True, is_api: Callable[[], bool] = lambda: False,
                 refuse_writes: bool = True, hold_writes: bool = False):
        self.service_factory = service_factory
        self.refuse_writes = refuse_writes  # else a write goes on and meets the lock (the panel's forms)
        self.hold_writes = hold_writes  # the host's writes wait while a backup reads (``write_hold``)
        self.layout = layout
        self.open_endpoints = tuple(open_endpoints)
        self.covers = covers  # the requests these hooks are for
        self.is_api = is_api  # answered in JSON, writes refused with 409

    def _routed(self) -> bool:
        """A request for a view that may need the database (OPTIONS is answered by routing)."""
        return (self.covers() and request.routing_exception is None and request.method != "OPTIONS"
                and request.endpoint not in self.open_endpoints)

    def before(self):
        journal = recover_orphan(self.service_factory())
        g.strongroom_restore_at_start = journal
        if journal is None or not self._routed():
            return None
        write = request.method not in SAFE_METHODS
        if write and self.is_api():
            return error_response(409, "busy", messages.refused(_kind_of(request.endpoint),
                                                                messages.restore_running(journal, self._running())))
        if journal.get("scope") == "site" or (write and self.refuse_writes):
            return answer(journal, self.layout, self.is_api(), self._running())
        return None

    def before_write(self):
        """Let the host's write in once no backup holds the writes (else 503)."""
        if not self.hold_writes or request.method in SAFE_METHODS or not self._routed():
            return None
        service = self.service_factory()
        try:
            g.strongroom_write = (service.control, enter_host_write(service))
        except write_hold.WritesHeld as exc:
            return held_answer(exc, self.layout)
        except RestoreBegan as exc:
            return answer(exc.journal, self.layout, self.is_api(), self._running())
        return None

    def teardown(self, _exc=None) -> None:
        entered = g.pop("strongroom_write", None)
        if entered is not None:
            write_hold.leave_write(*entered)

    def _running(self) -> bool:
        """Does the restore's process still hold the lock (or did it die, leaving the journal)?"""
        return self.service_factory().busy() is not None

    def after(self, response):
        if response.status_code not in SPURIOUS_DURING_RESTORE or not self._routed():
            return response
        if g.get("strongroom_restore_at_start") is not None:
            return response  # it was answered knowing the restore: not spurious
        journal = self.service_factory().maintenance()
        return answer(journal, self.layout, self.is_api(), self._running()) if journal else response


class RestoreBegan(Exception):
    """A restore began before a write was let in: it is refused as every write then is."""

    def __init__(self, journal: dict):
        super().__init__("a restore began")
        self.journal = journal


def enter_host_write(service) -> str:
    """Let a write to the host in (``write_hold.enter_write``): its mark's key. With its
    mark in place, it looks for a restore's journal: a write that waited for the hold of
    a restore's pre-restore backup would otherwise go on while the restore replaces the
    scope (``RestoreBegan``; its mark is dropped). A restore that begins after this look
    finds the mark and waits for the write before its pre-restore backup reads."""

    def admit() -> None:
        journal = service.maintenance()
        if journal is not None:
            raise RestoreBegan(journal)

    return write_hold.enter_write(service.control, admit=admit)


def recover_orphan(service) -> dict | None:
    """The journal of a restore in progress, or None; a journal whose restore's process is
    gone (the lock's holder dead, the lease expired) is recovered first, here and now, by
    whichever worker meets it: rolled back or finished, and said in its job's record."""
    journal = service.maintenance()
    if journal is not None and service.busy() is None:
        try:
            service.recover_if_needed()
        except StrongroomError as exc:  # the journal stays: the notice says to run `strongroom recover`
            log.warning("could not recover the interrupted restore of %s: %s", journal.get("backup"), exc)
        journal = service.maintenance()
    return journal


def _kind_of(endpoint: str | None) -> str:
    name = (endpoint or "").rsplit(".", 1)[-1]
    return {"create_backup": "backup", "restore_backup": "restore", "restore_part": "restore",
            "delete_backup": "delete"}.get(name, "change")


def refuse_writes_during_restore(app: Flask, service_factory: Callable, layout: str | None = None,
                                 open_endpoints: Iterable[str] = ALWAYS_OPEN,
                                 layout_blocks: dict[str, str | None] | None = None) -> None:
    """Install the host app's hooks (the blueprint has its own), and
    ``strongroom_maintenance`` (the notice or None) for templates.

    ``open_endpoints`` are never refused: they must not need the database. The notice's
    page extends ``layout`` with ``layout_blocks`` (as ``make_blueprint``'s).
    """

    guard = Guard(service_factory, Layout(layout, layout_blocks), open_endpoints,
                  covers=lambda: (request.blueprint or "").split(".")[0] != NAME, hold_writes=True)
    app.before_request(guard.before)
    app.before_request(guard.before_write)
    app.after_request(guard.after)
    app.teardown_request(guard.teardown)

    def notice() -> str | None:
        service = service_factory()
        journal = service.maintenance()
        return messages.maintenance(journal, service.busy() is not None) if journal else None

    app.context_processor(lambda: {"strongroom_maintenance": notice})
