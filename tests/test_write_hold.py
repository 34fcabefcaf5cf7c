"""A backup holds the host's writes while it reads: a change is in it wholly or not at all.

The host app here writes a record and then a file in one request (as Pure3D saves an
edition's metadata and its scene file); the backup dumps the records, then reads the
files. Each test fixes the order of the two with events, never with sleeps.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time

import pytest
from flask import Flask, request

from conftest import wait_until
from strongroom.config import Config
from strongroom.db import dbdump
from strongroom.errors import BadInput
from strongroom.repo import write_hold
from strongroom.repo.manifest import read_manifest
from strongroom.service import Strongroom
from strongroom.web import (
    maintenance,
    make_blueprint,
    mount,
    refuse_writes_during_restore,
    service_factory_for,
)
from web_support import paused_job

COLLECTION = "note"


def host_app(config: Config, database, inside_write: threading.Event | None = None,
             go_on: threading.Event | None = None) -> Flask:
    """A host whose ``POST /note/<name>`` writes a record, then a file of the same name."""
    app = Flask("host")
    factory = service_factory_for(config)
    app.register_blueprint(make_blueprint(factory, lambda: None))  # its pages and its notice's template
    refuse_writes_during_restore(app, factory)

    @app.post("/note/<name>")
    def note(name):
        database[COLLECTION].insert_one({"_id": name, "text": request.form.get("text", "")})
        if inside_write is not None:
            inside_write.set()
            go_on.wait(60)
        (config.working_dir / f"{name}.txt").write_text("a note")
        return "saved"

    return app


def in_backup(config: Config, backup_id: str, name: str) -> tuple[bool, bool]:
    """Are the record and the file named ``name`` in the site backup?"""
    folder = config.backups_dir / "site" / backup_id
    bson = folder / "db" / "bson" / f"{COLLECTION}.bson"
    records = [d["_id"] for d in dbdump.read_documents(bson)] if bson.exists() else []
    return name in records, (folder / "files" / f"{name}.txt").exists()


def timings(config: Config, backup_id: str) -> dict:
    return read_manifest(config.backups_dir / "site" / backup_id)["timings"]


def backup_in_thread(service: Strongroom) -> tuple[threading.Thread, dict]:
    made: dict = {}
    thread = threading.Thread(target=lambda: made.update(service.make_backup()), name="strongroom-test-backup")
    thread.start()
    return thread, made


def post_in_thread(app: Flask, name: str) -> tuple[threading.Thread, dict]:
    answered: dict = {}

    def post():
        response = app.test_client().post(f"/note/{name}", data={"text": "x"})
        answered.update(status=response.status_code, headers=dict(response.headers), body=response.get_data(True))
        response.close()  # as a WSGI server does once the answer is sent: the request ends there

    thread = threading.Thread(target=post)
    thread.start()
    return thread, answered


def writes_meeting_a_hold(monkeypatch) -> threading.Event:
    """Set when a request's thread (not the backup's) finds a hold: a write that waits."""
    met = threading.Event()
    seen = write_hold.current_hold

    def current_hold(control, now=None):
        found = seen(control, now)
        if found is not None and threading.current_thread().name != "strongroom-test-backup":
            met.set()
        return found

    monkeypatch.setattr(write_hold, "current_hold", current_hold)
    return met


@pytest.fixture
def patient_writes(monkeypatch):
    """Writes wait for a hold as long as a slow machine may need (the bound is not under test)."""
    monkeypatch.setattr(write_hold, "WAIT", 300.0)


def test_a_write_under_way_when_a_backup_starts_is_in_it_wholly(engine_config, engine_database, engine_site,
                                                                 patient_writes):
    inside_write, go_on = threading.Event(), threading.Event()
    app = host_app(engine_config, engine_database, inside_write, go_on)
    writing, answered = post_in_thread(app, "under-way")
    assert inside_write.wait(60)  # the record is written, the file not yet
    service = Strongroom(engine_config, database=engine_database)
    backing_up, made = backup_in_thread(service)
    wait_until(lambda: write_hold.current_hold(service.control) is not None)
    go_on.set()  # the backup holds the writes and waits for this one to end
    writing.join(60)
    backing_up.join(120)
    assert answered["status"] == 200
    assert in_backup(engine_config, made["id"], "under-way") == (True, True)


def test_a_write_begun_while_a_backup_reads_waits_and_is_wholly_absent(engine_config, engine_database, engine_site,
                                                                       patient_writes, monkeypatch):
    app = host_app(engine_config, engine_database)
    service = Strongroom(engine_config, database=engine_database)
    saw_hold = writes_meeting_a_hold(monkeypatch)
    with paused_job(lambda kind, detail: "/files/" in detail) as (reached, release):  # the records are dumped
        backing_up, made = backup_in_thread(service)
        assert reached.wait(60)
        writing, answered = post_in_thread(app, "while-reading")
        assert saw_hold.wait(60)  # the write met the hold and waits
        assert engine_database[COLLECTION].find_one({"_id": "while-reading"}) is None
        release.set()
        backing_up.join(120)
        writing.join(60)
    assert answered["status"] == 200
    assert in_backup(engine_config, made["id"], "while-reading") == (False, False)
    assert timings(engine_config, made["id"])["hold"] > 0
    after = service.make_backup()
    assert in_backup(engine_config, after["id"], "while-reading") == (True, True)


def test_a_write_held_past_its_wait_gets_503_with_retry_after_and_changes_nothing(config, database, site,
                                                                                   monkeypatch):
    monkeypatch.setattr(write_hold, "WAIT", 0.0)
    app = host_app(config, database)
    service = Strongroom(config, database=database)
    with paused_job(lambda kind, detail: "/files/" in detail) as (reached, release):
        backing_up, _ = backup_in_thread(service)
        assert reached.wait(60)
        page = app.test_client().post("/note/refused")
        as_json = app.test_client().post("/note/refused", headers={"Accept": "application/json"})
        read = app.test_client().get("/note/refused")  # reads are never held (405 here: routing answers)
        release.set()
        backing_up.join(120)
    assert page.status_code == 503 and page.headers["Retry-After"].isdigit()
    assert "a backup of the site is reading it" in page.get_data(True)
    assert as_json.status_code == 503 and as_json.get_json()["error"]["code"] == "maintenance"
    assert read.status_code == 405
    assert database[COLLECTION].find_one({"_id": "refused"}) is None
    assert not (config.working_dir / "refused.txt").exists()
    assert write_hold.current_hold(service.control) is None  # released when the backup ended
    assert app.test_client().post("/note/refused").status_code == 200


def test_a_mounted_host_has_its_writes_held_too(config, database, site, monkeypatch):
    monkeypatch.setattr(write_hold, "WAIT", 0.0)
    wrote = []

    def host(environ, start_response):
        wrote.append(environ["REQUEST_METHOD"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"host"]

    mounted = mount(host, "/backups", config, lambda request: None, secret_key="k")
    client = Flask("outer").test_client()
    client.application.wsgi_app = mounted
    service = Strongroom(config, database=database)
    with paused_job(lambda kind, detail: "/files/" in detail) as (reached, release):
        backing_up, _ = backup_in_thread(service)
        assert reached.wait(60)
        held = client.post("/save/title/p1")
        read = client.get("/project/p1")
        release.set()
        backing_up.join(120)
    assert held.status_code == 503 and "Retry-After" in held.headers
    assert read.status_code == 200
    assert wrote == ["GET"]
    saved = client.post("/save/title/p1")
    assert saved.status_code == 200
    assert len(service.control.marks(write_hold.WRITERS)) == 1  # until the server closes its answer
    saved.close()
    assert service.control.marks(write_hold.WRITERS) == {}  # the write's mark went with its answer


def test_a_hold_whose_backup_is_gone_holds_nothing(config, site):
    control = Strongroom(config).control
    control.put_mark(write_hold.HOLD, write_hold.HOLD_KEY,
                     {"host": write_hold.this_host(), "pid": 2**22 + 7, "since": 0, "expires": 2**40})
    assert write_hold.current_hold(control) is None  # its process is gone
    key = write_hold.enter_write(control, wait=0)
    write_hold.leave_write(control, key)


def test_a_writer_whose_process_is_gone_is_not_waited_for(config, site):
    control = Strongroom(config).control
    control.put_mark(write_hold.WRITERS, "gone", {"host": write_hold.this_host(), "pid": 2**22 + 7,
                                                   "since": 10**10})
    with write_hold.holding_writes(control, {"operation": "backup"}, max_hold=60, drain=300) as held:
        assert write_hold.current_hold(control) is not None
    assert held.warnings == []
    assert write_hold.current_hold(control) is None


def test_a_write_that_does_not_end_is_waited_for_a_bounded_time_and_named(config, site):
    control = Strongroom(config).control
    entered = {}
    other_request = threading.Thread(target=lambda: entered.update(key=write_hold.enter_write(control)))
    other_request.start()  # a request of its own (this thread's own write is not waited for)
    other_request.join(60)
    with write_hold.holding_writes(control, {"operation": "backup"}, max_hold=60, drain=0) as held:
        pass  # this process: alive, and the write never leaves during the hold
    write_hold.leave_write(control, entered["key"])
    assert len(held.warnings) == 1 and "still under way" in held.warnings[0]


def test_a_backup_longer_than_the_hold_says_so(config, site):
    control = Strongroom(config).control
    ticks = iter([0.0, 100.0])  # put the hold, drop it
    with write_hold.holding_writes(control, {"operation": "backup"}, max_hold=5, clock=lambda: next(ticks)) as held:
        pass
    assert held.seconds == 100.0
    assert any("held for at most 5 s" in w for w in held.warnings)


def test_no_hold_when_it_is_set_to_zero(tmp_path, monkeypatch, database, site, config):
    monkeypatch.setenv("STRONGROOM_WRITE_HOLD", "0")
    monkeypatch.setenv("STRONGROOM_DATA_DIR", str(config.data_dir))
    off = Config.from_env()
    assert off.write_hold == 0
    made = Strongroom(off, database=database).make_backup()
    assert "hold" not in timings(config, made["id"])
    held = Strongroom(config, database=database).make_backup()
    assert "hold" in timings(config, held["id"])


@pytest.mark.parametrize("value", ["-1", "nan", "soon"])
def test_a_bad_hold_is_refused_in_one_line(monkeypatch, tmp_path, value):
    monkeypatch.setenv("STRONGROOM_WRITE_HOLD", value)
    monkeypatch.setenv("STRONGROOM_DATA_DIR", str(tmp_path))
    with pytest.raises(BadInput) as refused:
        Config.from_env()
    assert "\n" not in str(refused.value)


def mounted_host_app(config: Config, database) -> Flask:
    """The same host as ``host_app`` as a bare WSGI app behind ``mount`` (Pure3D's shape):
    ``POST /note/<name>`` writes a record and a file; ``/webdav/…`` answers any method."""

    def host(environ, start_response):
        method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
        if method == "POST" and path.startswith("/note/"):
            name = path.removeprefix("/note/")
            database[COLLECTION].insert_one({"_id": name, "text": "x"})
            (config.working_dir / f"{name}.txt").write_text("a note")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{method} {path}".encode()]

    outer = Flask("outer")
    outer.wsgi_app = mount(host, "/backups", config, lambda request: None, secret_key="k")
    return outer


def dead_pid() -> int:
    """The id of a process that was killed (SIGKILL) and is gone, as a worker killed mid-request."""
    worker = subprocess.Popen(["sleep", "600"])
    worker.send_signal(signal.SIGKILL)
    worker.wait(60)
    return worker.pid


@pytest.mark.parametrize("make_host", [host_app, mounted_host_app], ids=["blueprint host", "mounted host"])
def test_a_write_that_waited_for_a_restores_pre_restore_backup_is_refused_as_during_the_restore(
        make_host, config, database, site, patient_writes, monkeypatch):
    app = make_host(config, database)
    service = Strongroom(config, database=database)
    backup = service.make_backup()
    (config.working_dir / "changed-since.txt").write_text("so the restore has work to do")
    past_check, go_on = threading.Event(), threading.Event()
    entering, saw_hold = maintenance.enter_host_write, writes_meeting_a_hold(monkeypatch)

    def enter_host_write(service):  # the guard found no restore; the write is about to enter
        past_check.set()
        go_on.wait(60)
        return entering(service)

    monkeypatch.setattr(maintenance, "enter_host_write", enter_host_write)
    writing, answered = post_in_thread(app, "late")
    assert past_check.wait(60)
    restored: dict = {}
    with paused_job(lambda kind, detail: "/files/" in detail) as (reached, release):
        restoring = threading.Thread(target=lambda: restored.update(service.restore_backup(backup["id"])),
                                     name="strongroom-test-backup")
        restoring.start()
        assert reached.wait(60)  # the restore's journal is there; its pre-restore backup holds the writes
        go_on.set()
        assert saw_hold.wait(60)  # the write waits for that hold
        release.set()
        restoring.join(120)
        writing.join(60)
    assert restored["restored"] == backup["id"]
    # Refused during the restore, or let in once it was over (a quick restore can end before
    # the write looks again): wholly absent or wholly on the restored site, never in part.
    record = database[COLLECTION].find_one({"_id": "late"}) is not None
    written = (config.working_dir / "late.txt").exists()
    if answered["status"] == 503:
        assert "Retry-After" in answered["headers"] and (record, written) == (False, False)
    else:
        assert answered["status"] == 200 and (record, written) == (True, True), answered
    assert write_hold.writes_under_way(service.control) == {}


def failing_admit():
    raise OSError("the journal cannot be read")


@pytest.mark.parametrize("broken", ["the hold cannot be read", "the admission fails"])
def test_a_write_that_fails_on_its_way_in_leaves_no_mark(broken, config, site, monkeypatch):
    control = Strongroom(config).control
    admit = lambda: None
    if broken == "the hold cannot be read":
        def unreadable(kind, key):
            raise OSError("the control store is gone")

        monkeypatch.setattr(control, "mark", unreadable)
    else:
        admit = failing_admit
    with pytest.raises(OSError):
        write_hold.enter_write(control, admit=admit)
    assert control.marks(write_hold.WRITERS) == {}


def test_a_backup_made_inside_a_guarded_write_does_not_wait_for_that_write(config, database, site, monkeypatch):
    monkeypatch.setattr(write_hold, "DRAIN", 0.0)  # a write it waited for would be named in its warnings
    app = host_app(config, database)
    service = Strongroom(config, database=database)

    @app.post("/backup-now")
    def backup_now():  # a host's own button that makes a backup in the request
        return service.make_backup()["id"]

    response = app.test_client().post("/backup-now")
    assert response.status_code == 200
    warnings = read_manifest(config.backups_dir / "site" / response.get_data(True))["warnings"]
    assert not [w for w in warnings if "still under way" in w]
    assert write_hold.writes_under_way(service.control) == {}


def test_a_write_waiting_for_a_hold_writes_its_mark_once_more_not_at_every_look(config, site, monkeypatch):
    control = Strongroom(config).control
    control.put_mark(write_hold.HOLD, write_hold.HOLD_KEY, {"host": write_hold.this_host(), "pid": os.getpid(),
                                                            "since": time.time(), "expires": time.time() + 600})
    writes, put = [], control.put_mark
    monkeypatch.setattr(control, "put_mark", lambda kind, key, record: (writes.append(kind), put(kind, key, record)))
    looks = []

    def sleep(_seconds):
        looks.append(dict(control.marks(write_hold.WRITERS)))
        if len(looks) == 50:
            control.drop_mark(write_hold.HOLD, write_hold.HOLD_KEY)

    key = write_hold.enter_write(control, wait=300, sleep=sleep)
    write_hold.leave_write(control, key)
    assert len(looks) == 50
    assert looks == [{}] * 50  # while it waits it is not under way: a backup's drain never sees it
    assert writes.count(write_hold.WRITERS) == 2  # its first look, and its way in


def test_a_backup_drops_the_marks_of_writes_that_will_never_end_them(config, site):
    control = Strongroom(config).control
    now = time.time()
    control.put_mark(write_hold.WRITERS, "killed", {"host": write_hold.this_host(), "pid": dead_pid(), "since": now})
    control.put_mark(write_hold.WRITERS, "elsewhere-old", {"host": "another-machine", "pid": 1,
                                                           "since": now - write_hold.STALE_WRITER - 1})
    control.put_mark(write_hold.WRITERS, "elsewhere", {"host": "another-machine", "pid": 1, "since": now})
    with write_hold.holding_writes(control, {"operation": "backup"}, max_hold=60, drain=0) as held:
        pass
    # Another machine's process cannot be asked whether it lives: its mark is waited for
    # (a bounded time) until it is STALE_WRITER old.
    assert set(control.marks(write_hold.WRITERS)) == {"elsewhere"}
    assert len(held.warnings) == 1 and held.warnings[0].startswith("1 write(s)")


def test_webdav_reads_are_not_writes(config, database, site, monkeypatch):
    monkeypatch.setattr(write_hold, "WAIT", 0.0)
    client = mounted_host_app(config, database).test_client()
    service = Strongroom(config, database=database)
    with paused_job(lambda kind, detail: "/files/" in detail) as (reached, release):
        backing_up, _ = backup_in_thread(service)
        assert reached.wait(60)
        answers = {method: client.open("/webdav/project/p1/scene.glb", method=method).status_code
                   for method in ("PROPFIND", "OPTIONS", "REPORT", "PUT", "PROPPATCH", "MKCOL", "LOCK")}
        release.set()
        backing_up.join(120)
    assert answers == {"PROPFIND": 200, "OPTIONS": 200, "REPORT": 200,
                       "PUT": 503, "PROPPATCH": 503, "MKCOL": 503, "LOCK": 503}
