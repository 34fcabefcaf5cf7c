"""Shared parts of the web tests: a prepared data dir, host apps, and clients that sign in.

``prepared`` (session-wide) makes the small demo site in ``pilot`` and in ``prod`` with a
site backup and a backup of projects A and B in each; ``web_data`` copies it for one test.
``engine_prepared`` and ``engine_web_data`` do the same on both engines (params
``embedded``, ``ferretdb``): on the server each mode has its own database, copied too.
``host_app`` mounts the blueprint on a bare Flask app, as any host would, taking the user
from the ``X-Test-User`` header (a test stand-in for the host's own sign-in).
"""

from __future__ import annotations

import subprocess
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask, request

from conftest import ENGINES, records_fingerprint, tree_fingerprint
from servers import copy_database
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site, demo_users
from strongroom.fs import mutations
from strongroom.policy import User
from strongroom.service import Strongroom
from strongroom.web import make_blueprint, refuse_writes_during_restore, service_factory_for

MODES = ("pilot", "prod")


@dataclass
class Prepared:
    root: Path
    project_a: str
    project_b: str
    backups: dict  # mode -> {"site"|"A"|"B": backup id}
    databases: dict | None = None  # mode -> database name on the server (None: embedded)


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Prepared:
    return _prepare(tmp_path_factory.mktemp("web-template") / "data", None)


@pytest.fixture(scope="session", params=ENGINES)
def engine_prepared(request, tmp_path_factory):
    if request.param == "embedded":
        yield request.getfixturevalue("prepared")
        return
    server = request.getfixturevalue("mongodb_server")
    names = {mode: server.new_database_name(f"web_{mode}") for mode in MODES}
    yield _prepare(tmp_path_factory.mktemp("web-template-server") / "data", server, names)
    for name in names.values():
        server.drop(name)


def _prepare(root: Path, server, names: dict | None = None) -> Prepared:
    backups = {}
    for mode in MODES:
        config = Config(data_dir=root, mode=mode, db_uri=server.uri(names[mode]) if server else None)
        database = open_database(config)
        site = create_demo_site(config, database, projects=3, editions=2, seed=1)
        a, b = site.project_ids[:2]
        service = Strongroom(config, database=database)
        made = {"site": service.make_backup(note="site", by="admin")["id"],
                "B": service.make_backup(b, note="project B", by="org2")["id"]}
        time.sleep(1.05)  # so that A's backup id is one that B's scope does not have
        made["A"] = service.make_backup(a, note="project A", by="org1")["id"]
        backups[mode] = made
    return Prepared(root, a, b, backups, names)


@dataclass
class WebData:
    data_dir: Path
    project_a: str
    project_b: str
    backups: dict
    db_uris: dict | None = None  # mode -> its database on the server (None: embedded)

    def config(self, mode: str = "pilot") -> Config:
        return Config(data_dir=self.data_dir, mode=mode, db_uri=self.db_uris[mode] if self.db_uris else None)

    def folder(self, project_id: str | None = None, mode: str = "pilot") -> Path:
        """The live folder of the site, or of a project."""
        working = self.data_dir / "working" / mode
        return working if project_id is None else working / "project" / project_id


@pytest.fixture
def web_data(prepared, tmp_path) -> WebData:
    target = tmp_path / "data"
    subprocess.run(["cp", "-a", str(prepared.root), str(target)], check=True)
    return WebData(target, prepared.project_a, prepared.project_b, prepared.backups)


@pytest.fixture
def engine_web_data(engine_prepared, tmp_path, request) -> WebData:
    """``web_data`` on either engine: on the server, each mode's database copied afresh."""
    target = tmp_path / "data"
    subprocess.run(["cp", "-a", str(engine_prepared.root), str(target)], check=True)
    uris = None
    if engine_prepared.databases:
        databases = request.getfixturevalue("server_databases")
        uris = {}
        for mode, source in engine_prepared.databases.items():
            copy = databases.new(f"web_{mode}")
            copy_database(databases.server, source, copy)
            uris[mode] = databases.server.uri(copy)
    return WebData(target, engine_prepared.project_a, engine_prepared.project_b, engine_prepared.backups, uris)


def users_of(database) -> dict[str, User]:
    return {u["user"]: User(u["user"], u["role"], frozenset(u["organises"])) for u in demo_users(database)}


def host_app(config: Config) -> Flask:
    """A bare host app: the blueprint, the maintenance hook and one write of its own."""
    app = Flask("host")
    app.secret_key = "test"
    factory = service_factory_for(config)
    users = users_of(factory().database)
    app.register_blueprint(make_blueprint(factory, lambda: users.get(request.headers.get("X-Test-User", ""))))
    refuse_writes_during_restore(app, factory)
    app.add_url_rule("/host/write", "write", lambda: "written", methods=["POST"])
    app.config["factory"] = factory
    return app


def csrf_token(client, user: str | None = None) -> str:
    """The CSRF token of the client's session for who is there: ``user`` in ``host_app``
    (its ``X-Test-User``; nobody when None), the signed-in user in the demo app."""
    headers = {"X-Test-User": user} if user else {}
    return client.get("/api/v1/session", headers=headers).get_json()["csrf_token"]


class UserTokens(dict):
    """``host_app``'s CSRF tokens of one client's session, per user (a token is bound to
    the user it was issued to), each asked for once."""

    def __init__(self, client):
        super().__init__()
        self.client = client

    def __missing__(self, user: str) -> str:
        self[user] = token = csrf_token(self.client, user)
        return token


def wait_for_jobs(app, timeout: float = 60) -> None:
    """Wait until no job of the app's blueprint is running."""
    runner = app.extensions["strongroom"].runner
    deadline = time.monotonic() + timeout
    while runner.running() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.running() is None, "a job did not end in time"


def last_job(app):
    """The newest job of the app's blueprint."""
    return app.extensions["strongroom"].runner.jobs()[0]


def state_of(config: Config, database=None) -> tuple:
    """Everything a request could change: files, backups, records."""
    database = database or open_database(config)
    return (tree_fingerprint(config.data_dir / "working"), tree_fingerprint(config.data_dir / "backups"),
            records_fingerprint(database))


@contextmanager
def paused_job(when=lambda kind, detail: True):
    """Pause a job's thread at its first mutation point where ``when(kind, detail)`` holds.

    Yields ``(reached, release)``: wait on ``reached``, look around, ``release.set()``.
    """
    reached, release = threading.Event(), threading.Event()

    def hook(kind, detail):
        if (threading.current_thread().name.startswith("strongroom-") and not release.is_set()
                and "/.control/" not in detail and when(kind, detail)):  # not the job's own record
            reached.set()
            release.wait(30)

    previous = mutations.set_hook(hook)
    try:
        yield reached, release
    finally:
        release.set()
        mutations.set_hook(previous)
