"""Restores under load: a real server on loopback, readers signed in as admin, answers counted.

A threaded werkzeug server runs the demo app on 127.0.0.1; a few reader threads, each
with its own signed-in admin session, loop over pages and API reads (a bounded number of
requests, within a time limit, stopping by themselves) while site and project restores
run one after the other through the API. Every restore must succeed, and every answer
must be the page (200) or the maintenance notice (503): never a 500, and never a 403 or
404 on a page that exists for a signed-in admin.

The engine comes from one fixture, ``engine_config``: the module's own gives the
embedded engine; the suite's (both engines) replaces it by deleting it here.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.cookiejar import CookieJar
from urllib.error import HTTPError
from urllib.request import HTTPCookieProcessor, HTTPRedirectHandler, Request, build_opener

import pytest
from werkzeug.serving import make_server

from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.service import Strongroom
from strongroom.web import create_app

READERS = 4
MAX_REQUESTS_PER_READER = 3000
TIME_LIMIT = 120  # seconds, for the readers and for each restore
RESTORES = ("site", "project", "site", "project", "site")


@pytest.fixture(params=["embedded"])
def engine_config(request, tmp_path) -> Config:
    return Config(data_dir=tmp_path / "data", mode="pilot")


class _NoRedirect(HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a 303 is an answer to count, not to follow


class Client:
    """One browser: its own cookies; ``request`` returns (status, body) for any status."""

    def __init__(self, base: str):
        self.base = base
        self.opener = build_opener(HTTPCookieProcessor(CookieJar()), _NoRedirect())
        self.token = ""

    def request(self, method: str, path: str, body: dict | None = None, form: dict | None = None,
                accept: str = "text/html") -> tuple[int, bytes]:
        headers = {"Accept": accept, "X-CSRF-Token": self.token}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body).encode(), "application/json"
        elif form is not None:
            data = "&".join(f"{k}={v}" for k, v in form.items()).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            with self.opener.open(Request(self.base + path, data, headers, method=method), timeout=60) as answer:
                return answer.status, answer.read()
        except HTTPError as refused:
            return refused.code, refused.read()

    def sign_in(self, user: str) -> None:
        status, body = self.request("GET", "/api/v1/session", accept="application/json")
        assert status == 200
        self.token = json.loads(body)["csrf_token"]
        assert self.request("POST", "/signin", form={"csrf_token": self.token, "user": user})[0] == 303
        status, body = self.request("GET", "/api/v1/session", accept="application/json")
        self.token = json.loads(body)["csrf_token"]  # a new one: the session is new at sign-in


@dataclass
class Served:
    base: str
    app: object
    project: str
    backups: dict
    counts: Counter = field(default_factory=Counter)


@pytest.fixture
def served(engine_config):
    database = open_database(engine_config)
    project = create_demo_site(engine_config, database, projects=3, editions=2, size="small", seed=1).project_ids[0]
    service = Strongroom(engine_config, database=database)
    backups = {"site": service.make_backup(note="load", by="admin")["id"],
               "project": service.make_backup(project, note="load", by="admin")["id"]}
    app = create_app(engine_config, database=database, secret_key="test")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_port}", app, project, backups)
    finally:
        server.shutdown()
        thread.join(10)


PAGES = [("/", "text/html"), ("/admin", "text/html"), ("/api/v1/site/backups", "application/json"),
         ("/projects/{project}", "text/html"), ("/api/v1/projects/{project}/backups", "application/json"),
         ("/backups/site/{site}/details", "text/html")]


def read_pages(served: Served, client: Client, stop: threading.Event, deadline: float) -> None:
    """Loop over pages that exist for an admin, each page at least once, then until told to
    stop, the cap or the deadline (so the count read does not hang on the machine's speed)."""
    pages = [(page.format(project=served.project, site=served.backups["site"]), accept) for page, accept in PAGES]
    for n in range(MAX_REQUESTS_PER_READER):
        if time.monotonic() > deadline or (stop.is_set() and n >= len(PAGES)):
            return
        path, accept = pages[n % len(pages)]
        status, _ = client.request("GET", path, accept=accept)
        served.counts[(path, status)] += 1  # Counter updates are atomic enough under the GIL


def run_restore(served: Served, admin: Client, scope: str) -> dict:
    where = "site" if scope == "site" else f"projects/{served.project}"
    status, body = admin.request("POST", f"/api/v1/{where}/backups/{served.backups[scope]}/restore",
                                 body={"confirm": True}, accept="application/json")
    assert status == 202, body
    runner = served.app.extensions["strongroom"].runner
    job = runner.wait(runner.get(json.loads(body)["job"]["id"]), TIME_LIMIT)
    return job.to_dict()


def test_restores_succeed_while_signed_in_admins_read_and_nobody_gets_500_403_or_404(served):
    readers = [Client(served.base) for _ in range(READERS)]
    admin = Client(served.base)
    for client in [*readers, admin]:
        client.sign_in("admin")
    stop, deadline = threading.Event(), time.monotonic() + TIME_LIMIT
    threads = [threading.Thread(target=read_pages, args=(served, client, stop, deadline)) for client in readers]
    for thread in threads:
        thread.start()
    try:
        jobs = [run_restore(served, admin, scope) for scope in RESTORES]
    finally:
        stop.set()
        for thread in threads:
            thread.join(TIME_LIMIT)
    assert [(job["state"], job["error"]) for job in jobs] == [("done", None)] * len(RESTORES)
    by_status = Counter()
    for (path, status), count in served.counts.items():
        by_status[status] += count
    print(f"answers by status: {dict(by_status)}")
    wrong = {key: count for key, count in served.counts.items() if key[1] not in (200, 503)}
    assert wrong == {}, f"answers other than 200 and 503: {wrong} (all: {dict(by_status)})"
    assert sum(by_status.values()) >= READERS * len(PAGES)  # every reader read every page
    assert admin.request("GET", "/admin")[0] == 200  # and the admin is still signed in after it all
