"""Shared state across processes and machines: jobs, the lease and its fencing, sign-ins.

Two web apps on one data dir (and one database) stand for two workers or two instances:
what one starts or signs in, the other sees. On a server the operation lock is a lease
that expires and is taken over (said in the audit log), and a holder that lost it takes
no irreversible step. Strongroom's own control collections are never dumped or restored.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time

import pytest

from conftest import records_fingerprint, tree_fingerprint, wait_until
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.errors import Busy, LeaseLost
from strongroom.repo import control, fencing, lease
from strongroom.service import Strongroom
from strongroom.web import create_app
from web_support import csrf_token, host_app

SHORT = {"lease_expiry": 2.0, "lease_heartbeat": 0.5}




@pytest.fixture
def site(engine_config):
    config = dataclasses.replace(engine_config, **SHORT)
    database = open_database(config)
    made = create_demo_site(config, database, projects=2, editions=2, seed=3)
    return config, database, made


def test_a_job_started_through_one_worker_is_answered_by_another(site):
    config, _, _ = site
    first, second = host_app(config).test_client(), host_app(config).test_client()
    admin = {"X-Test-User": "admin", "X-CSRF-Token": csrf_token(first, "admin")}
    started = first.post("/api/v1/site/backups", json={"note": "from worker one"}, headers=admin)
    assert started.status_code == 202, started.get_json()
    job_id = started.get_json()["job"]["id"]
    seen = second.get(f"/api/v1/jobs/{job_id}", headers={"X-Test-User": "admin"})
    assert seen.status_code == 200 and seen.get_json()["job"]["kind"] == "backup"
    ended = wait_until(lambda: (j := second.get(f"/api/v1/jobs/{job_id}", headers={"X-Test-User": "admin"})
                                .get_json()["job"])["state"] != "running" and j, what="the job's end")
    assert ended["state"] == "done" and ended["percent"] == 100, ended
    assert ended["result"]["id"] in [b["id"] for b in Strongroom(config).list_backups()]


def test_a_second_operation_through_another_worker_is_refused_naming_the_holder(site):
    config, _, _ = site
    first, second = host_app(config).test_client(), host_app(config).test_client()
    record = {"id": "a" * 32, "kind": "restore", "project": None, "backup": None, "by": "org1", "params": None,
              "state": "running", "created": time.time(), "heartbeat": time.time(), "started": "2026-12-05T10:14:00+00:00",
              "holder": {"host": control.this_host(), "pid": os.getpid()}}
    Strongroom(config).control.add_job(record)
    refused = second.post("/api/v1/site/backups", json={},
                          headers={"X-Test-User": "admin", "X-CSRF-Token": csrf_token(second, "admin")})
    assert refused.status_code == 409
    assert "another restore is running" in refused.get_json()["error"]["message"]
    assert "org1" in refused.get_json()["error"]["message"]
    assert first.get(f"/api/v1/jobs/{'a' * 32}", headers={"X-Test-User": "admin"}).status_code == 200


def test_a_job_whose_process_died_is_ended_as_failed_by_the_next_poll(site):
    config, _, _ = site
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    record = {"id": "b" * 32, "kind": "backup", "project": None, "backup": None, "by": "admin", "params": None,
              "state": "running", "created": time.time(), "heartbeat": time.time(), "started": "2026-12-05T10:14:00+00:00",
              "holder": {"host": control.this_host(), "pid": int(dead.stdout)}}
    Strongroom(config).control.add_job(record)
    client = host_app(config).test_client()
    shown = client.get(f"/api/v1/jobs/{'b' * 32}", headers={"X-Test-User": "admin"}).get_json()["job"]
    assert shown["state"] == "failed" and shown["error"]["type"] == "Interrupted"


def test_a_job_whose_heartbeat_stopped_is_ended_as_failed_after_the_expiry(site):
    config, _, _ = site
    record = {"id": "c" * 32, "kind": "backup", "project": None, "backup": None, "by": "admin", "params": None,
              "state": "running", "created": time.time(), "heartbeat": time.time(), "started": "2026-12-05T10:14:00+00:00",
              "holder": {"host": "another-machine", "pid": 1}}
    service = Strongroom(config)
    service.control.add_job(record)
    assert service.jobs()[0]["state"] == "running"  # beat just now, on a machine we cannot look at
    ended = wait_until(lambda: service.jobs()[0]["state"] == "failed", what="the job's end as failed")
    assert ended


def test_a_job_runs_in_a_process_of_its_own_and_outlives_its_worker(site, monkeypatch):
    config, _, _ = site
    monkeypatch.setenv("STRONGROOM_JOBS", "process")
    app = host_app(config)
    client = app.test_client()
    started = client.post("/api/v1/site/backups", json={"note": "own process"},
                          headers={"X-Test-User": "admin", "X-CSRF-Token": csrf_token(client, "admin")})
    job_id = started.get_json()["job"]["id"]
    record = wait_until(lambda: (r := Strongroom(config).control.job(job_id))["state"] in ("done", "failed") and r,
                        what="the job's end")
    assert record["state"] == "done", record
    assert record["holder"]["pid"] != os.getpid()
    assert record["progress"]["percent"] == 100


@pytest.mark.mongodb
def test_control_collections_are_neither_dumped_nor_restored(server_config):
    config = server_config
    database = open_database(config)
    create_demo_site(config, database, projects=1, editions=1, seed=2)
    service = Strongroom(config, database=database)
    service.control.add_job({"id": "d" * 32, "kind": "backup", "state": "done", "created": time.time()})
    made = service.make_backup()
    _, manifest = service.store.open(service.scope(), made["id"])
    assert not [name for name in manifest["collections"] if name.startswith("strongroom.")]
    service.control.add_job({"id": "e" * 32, "kind": "restore", "state": "done", "created": time.time()})
    database["project"].insert_one({"title": "made after the backup"})
    service.restore_backup(made["id"])
    assert {r["id"] for r in service.control.jobs()} >= {"d" * 32, "e" * 32}
    assert database["project"].count_documents({"title": "made after the backup"}) == 0


@pytest.mark.mongodb
def test_a_second_lease_taker_is_refused_naming_the_holder(server_config):
    database = open_database(server_config)
    with lease.ServerLease(database, "restore", "org1", expiry=30, heartbeat=5):
        with pytest.raises(Busy, match="restore by org1"), lease.ServerLease(database, "backup", "admin"):
            pass
        assert lease.holder(database)["by"] == "org1"
    assert lease.holder(database) is None
    with lease.ServerLease(database, "backup", "admin", expiry=30, heartbeat=5):
        assert lease.holder(database)["operation"] == "backup"


@pytest.mark.mongodb
def test_a_lease_that_is_renewed_is_kept_beyond_its_expiry(server_config):
    database = open_database(server_config)
    with lease.ServerLease(database, "backup", "admin", expiry=1.0, heartbeat=0.2) as held:
        first = lease.holder(database)["expires"]
        wait_until(lambda: lease.holder(database)["expires"] > first + 1.0, what="a renewal")
        held.check("swap")  # still ours
        with pytest.raises(Busy), lease.ServerLease(database, "delete", "admin", expiry=1.0, heartbeat=0.2):
            pass


@pytest.mark.mongodb
def test_an_expired_lease_is_taken_over_in_the_audit_log_and_its_old_holder_is_fenced(server_config):
    config = dataclasses.replace(server_config, **SHORT)
    database = open_database(config)
    create_demo_site(config, database, projects=1, editions=1, seed=2)
    service = Strongroom(config, database=database)
    made = service.make_backup()
    stalled = lease.ServerLease(database, "delete", "paused", expiry=1.0, heartbeat=0.2)
    stalled.__enter__()
    try:
        stalled._stop.set()  # its heartbeat stops, as in a paused process
        stalled._thread.join()
        wait_until(lambda: lease.holder(database) is None, what="the lease's expiry")
        with service._lock("backup", "admin"):
            pass  # took it over
        assert any(e["operation"] == "take-over" and "paused" in (e.get("error") or "")
                   for e in service.audit_entries())
        with fencing.holding(stalled), pytest.raises(LeaseLost):
            service.store.delete(service.scope(), made["id"])
    finally:
        stalled.__exit__(None, None, None)
    assert made["id"] in service.store.ids(service.scope())  # the fenced holder deleted nothing


def test_an_interrupted_restore_is_recovered_by_the_next_request_and_its_job_says_so(site):
    config, database, _ = site
    service = Strongroom(config, database=database)
    made = service.make_backup()
    before = (tree_fingerprint(config.working_dir), records_fingerprint(database))
    (config.working_dir / "new.txt").write_text("made after the backup")
    changed = (tree_fingerprint(config.working_dir), records_fingerprint(database))
    job_id = "f" * 32
    service.control.add_job({"id": job_id, "kind": "restore", "project": None, "backup": made["id"], "by": "admin",
                             "params": None, "state": "running", "created": time.time(), "heartbeat": time.time(),
                             "started": "2026-12-05T10:14:00+00:00", "holder": {"host": "elsewhere", "pid": 1}})
    killed = subprocess.run([sys.executable, "-c", KILLED_RESTORE, config.to_json(), made["id"], job_id],
                            check=False)
    assert killed.returncode == -9
    assert service.maintenance() is not None
    wait_until(lambda: service.busy() is None, what="the lock's or lease's release")
    client = host_app(config).test_client()
    assert client.get("/api/v1/site/backups", headers={"X-Test-User": "admin"}).status_code == 200
    assert service.maintenance() is None
    assert (tree_fingerprint(config.working_dir), records_fingerprint(database)) in (before, changed)
    record = service.control.job(job_id)
    assert record["state"] == "failed" and record["recovery"].startswith("rolled back"), record
    assert record["outcome"] == "rolled back"


KILLED_RESTORE = """
import os, signal, sys
from strongroom.config import Config
from strongroom.fs import mutations
from strongroom.service import Strongroom
config = Config.from_json(sys.argv[1])
def hook(kind, detail):
    if kind == "rename" and ".old-" in detail:  # the swap: the records are already replaced
        os.kill(os.getpid(), signal.SIGKILL)
mutations.set_hook(hook)
Strongroom(config, job=sys.argv[3]).restore_backup(sys.argv[2], by="admin")
"""


def test_a_sign_in_through_one_worker_holds_in_another_and_a_sign_out_everywhere(tmp_path):
    config = Config(data_dir=tmp_path / "data")
    create_demo_site(config, open_database(config), projects=1, editions=1, seed=1)
    one, two = create_app(config).test_client(), create_app(config).test_client()
    token = one.get("/api/v1/session").get_json()["csrf_token"]
    assert one.post("/signin", data={"user": "admin", "csrf_token": token}).status_code == 303
    cookie = one.get_cookie("session")
    two.set_cookie("session", cookie.value)
    assert two.get("/admin").status_code == 200  # another worker, another app object: same key, same sign-in
    token = two.get("/api/v1/session").get_json()["csrf_token"]
    assert two.post("/signout", data={"csrf_token": token}).status_code == 303
    three = create_app(config).test_client()
    three.set_cookie("session", cookie.value)  # the old cookie, after sign-out elsewhere
    assert three.get("/admin").status_code == 403


def test_status_shows_the_holder_its_heartbeat_and_the_running_jobs(site):
    config, database, _ = site
    service = Strongroom(config, database=database)
    service.control.add_job({"id": "9" * 32, "kind": "restore", "project": None, "backup": None, "by": "org1",
                             "params": None, "state": "running", "created": time.time(), "heartbeat": time.time(),
                             "started": "2026-12-05T10:14:00+00:00",
                             "holder": {"host": control.this_host(), "pid": os.getpid()}})
    with Strongroom(config, database=database, job="9" * 32)._lock("restore", "org1"):
        found = service.status()
    assert [job["id"] for job in found["jobs"]] == ["9" * 32] and found["jobs"][0]["by"] == "org1"
    assert found["busy"]["by"] == "org1" and found["busy"]["job"] == "9" * 32
    assert found["busy"]["pid"] == os.getpid() and found["busy"]["host"] == control.this_host()
    if not config.embedded:
        assert time.time() - found["busy"]["heartbeat"] < 60
