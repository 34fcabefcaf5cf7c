"""Shared parts of the web tests: a prepared data dir, host apps, and clients that sign in.

``prepared`` (session-wide) makes the small demo site in ``pilot`` and in ``prod`` with a
site backup and a backup of projects A and B in each; ``web_data`` copies it for one test.
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

from conftest import records_fingerprint, tree_fingerprint
from strongroom import mutations
from strongroom.config import Config
from strongroom.demo import create_demo_site, demo_users
from strongroom.engines import open_database
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


@pytest.fixture(scope="session")
def prepared(tmp_path_factory) -> Prepared:
    root = tmp_path_factory.mktemp("web-template") / "data"
    backups = {}
    for mode in MODES:
        config = Config(data_dir=root, mode=mode)
        database = open_database(config)
        site = create_demo_site(config, database, projects=3, editions=2, seed=1)
        a, b = site.project_ids[:2]
        service = Strongroom(config, database=database)
        made = {"site": service.make_backup(note="site", by="admin")["id"],
                "B": service.make_backup(b, note="project B", by="org2")["id"]}
        time.sleep(1.05)  # so that A's backup id is one that B's scope does not have
        made["A"] = service.make_backup(a, note="project A", by="org1")["id"]
        backups[mode] = made
    return Prepared(root, a, b, backups)


@dataclass
class WebData:
    data_dir: Path
    project_a: str
    project_b: str
    backups: dict

    def config(self, mode: str = "pilot") -> Config:
        return Config(data_dir=self.data_dir, mode=mode)


@pytest.fixture
def web_data(prepared, tmp_path) -> WebData:
    target = tmp_path / "data"
    subprocess.run(["cp", "-a", str(prepared.root), str(target)], check=True)
    return WebData(target, prepared.project_a, prepared.project_b, prepared.backups)


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


def csrf_token(client) -> str:
    return client.get("/api/v1/session").get_json()["csrf_token"]


def wait_for_jobs(app, timeout: float = 60) -> None:
    """Wait until no job of the app's blueprint is running."""
    runner = app.extensions["strongroom"].runner
    deadline = time.monotonic() + timeout
    while runner.running() is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert runner.running() is None, "a job did not end in time"


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
        if threading.current_thread().name.startswith("strongroom-") and not release.is_set() and when(kind, detail):
            reached.set()
            release.wait(30)

    previous = mutations.set_hook(hook)
    try:
        yield reached, release
    finally:
        release.set()
        mutations.set_hook(previous)
