"""Under gunicorn with 4 workers x 2 threads, on both engines, as a host deploys it.

A host app (``gunicorn_host``) and the demo app (``strongroom.web.wsgi``) are served by
real gunicorn masters on loopback ports; every request opens a new connection, so the
workers share them. Jobs run in processes of their own. A job's process can be made to
stop itself at a chosen point (``stop_hook/sitecustomize.py``), so the tests act at that
point whatever the machine's speed, and every wait polls for a state with a generous
bound. The lease's expiry is 3 s and its heartbeat 1 s (``STRONGROOM_LEASE_*``) where a test is
about the lease; elsewhere it is long, so that a job held at its stop is not taken for dead.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from conftest import ENGINES, records_fingerprint, tree_fingerprint
from conftest import wait_until as poll_until
from servers import free_port
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.service import Strongroom

TESTS = Path(__file__).parent
EXPIRY, HEARTBEAT = 3.0, 1.0  # the lease tests: a holder gone is taken over after 3 s
LONG_EXPIRY = 120.0  # the others, which hold a job stopped while they look around
BOUND = 90  # seconds: generous bounds for every wait
ADMIN = {"X-Test-User": "admin"}


wait_until = functools.partial(poll_until, timeout=BOUND)


class Instance:
    """One gunicorn master with its workers, serving ``app`` on a port of its own."""

    def __init__(self, env: dict, folder: Path, http: requests.Session, app: str = "gunicorn_host:app",
                 workers: int = 4):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"gunicorn-{self.port}.log"
        command = [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", "2",
                   "-b", f"127.0.0.1:{self.port}", "--graceful-timeout", "5", app]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.http = http  # one browser for every instance (the cookie is for 127.0.0.1, whatever the port)
        wait_until(self._ready, what=f"gunicorn on port {self.port} answering")
        wait_until(lambda: len(self.workers()) == workers, what="every worker started")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn ended: {self.log.read_text(errors='replace')[-3000:]}")
        try:
            return requests.get(self.url + "/api/v1/openapi.json", timeout=10).status_code == 200
        except requests.ConnectionError:
            return False

    def workers(self) -> set[int]:
        return children_of(self.process.pid)

    def call(self, method: str, path: str, **kwargs) -> requests.Response:
        headers = {**ADMIN, **kwargs.pop("headers", {})}
        if method not in ("GET", "HEAD"):  # the session's token, asked once (not during a site restore)
            if "csrf" not in self.http.__dict__:
                self.http.csrf = self.http.get(self.url + "/api/v1/session", headers=ADMIN, timeout=30).json()["csrf_token"]
            headers["X-CSRF-Token"] = self.http.csrf
        return self.http.request(method, self.url + path, headers=headers, timeout=60, **kwargs)

    def job(self, job_id: str) -> dict:
        answer = self.call("GET", f"/api/v1/jobs/{job_id}")
        assert answer.status_code == 200, (answer.status_code, answer.text[:300])
        return answer.json()["job"]

    def kill(self) -> None:
        """SIGKILL the master and every worker at once: the machine is gone."""
        pids = {self.process.pid, *self.workers()}
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def children_of(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def stopped(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "T"
    except OSError:
        return False


def ended(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


class Deployment:
    """A data dir (and a database on the server) with the demo site and a site backup."""

    def __init__(self, folder: Path, db_uri: str | None, expiry: float = LONG_EXPIRY):
        self.folder = folder
        self.config = Config(data_dir=folder / "data", db_uri=db_uri, lease_expiry=expiry, lease_heartbeat=HEARTBEAT)
        self.http = requests.Session()
        self.http.headers["Connection"] = "close"  # every request a new connection: any worker answers
        self.database = open_database(self.config)
        create_demo_site(self.config, self.database, projects=3, editions=2, seed=1)
        self.backup = Strongroom(self.config, database=self.database).make_backup(by="admin")["id"]
        self.at_backup = self.state()
        self.stop_file = folder / "stopped.pid"
        self.instances: list[Instance] = []

    def state(self) -> tuple:
        return tree_fingerprint(self.config.working_dir), records_fingerprint(self.database)

    def env(self, stop_at: str | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("STRONGROOM_")}
        env.update(STRONGROOM_DATA_DIR=str(self.config.data_dir), STRONGROOM_MODE="pilot", STRONGROOM_JOBS="process",
                   STRONGROOM_LEASE_EXPIRY=str(self.config.lease_expiry), STRONGROOM_LEASE_HEARTBEAT=str(HEARTBEAT),
                   STRONGROOM_SECRET_KEY="test", PYTHONPATH=f"{TESTS / 'stop_hook'}:{TESTS}")
        if self.config.db_uri:
            env["STRONGROOM_DB"] = self.config.db_uri
        if stop_at:
            env.update(STRONGROOM_TEST_STOP_AT=stop_at, STRONGROOM_TEST_STOP_FILE=str(self.stop_file))
        return env

    def serve(self, stop_at: str | None = None, app: str = "gunicorn_host:app") -> Instance:
        instance = Instance(self.env(stop_at), self.folder, self.http, app)
        self.instances.append(instance)
        return instance

    def stopped_job_process(self) -> int:
        """The pid of the job's process once it has stopped itself at the chosen point."""
        pid = wait_until(lambda: self.stop_file.is_file() and self.stop_file.read_text()
                         and int(self.stop_file.read_text()), what="the job's process at its stop")
        wait_until(lambda: stopped(pid), what="the job's process stopped")
        return pid

    def close(self) -> None:
        for instance in self.instances:
            instance.stop()
        # A job's process a test left stopped at its point would outlive the test (stopped,
        # holding its memory) once its server is gone: it ends with the deployment.
        pid = self.stop_file.is_file() and self.stop_file.read_text()
        if pid and stopped(int(pid)):
            os.kill(int(pid), signal.SIGKILL)


@pytest.fixture(params=ENGINES)
def deployment(request, tmp_path):
    db_uri = request.getfixturevalue("server_databases").new_uri("gunicorn") if request.param == "ferretdb" else None
    made = Deployment(tmp_path, db_uri)
    yield made
    made.close()


@pytest.fixture(params=ENGINES)
def short_lease_deployment(request, tmp_path):
    db_uri = request.getfixturevalue("server_databases").new_uri("gunicorn") if request.param == "ferretdb" else None
    made = Deployment(tmp_path, db_uri, expiry=EXPIRY)
    yield made
    made.close()


@pytest.fixture
def server_deployment(tmp_path, server_databases):
    made = Deployment(tmp_path, server_databases.new_uri("gunicorn"))
    yield made
    made.close()


@pytest.fixture
def short_lease_server(tmp_path, server_databases):
    made = Deployment(tmp_path, server_databases.new_uri("gunicorn"), expiry=EXPIRY)
    yield made
    made.close()


def start_restore(instance: Instance, deployment: Deployment) -> tuple[str, tuple]:
    """Change the site, then restore its backup: ``(job id, the state before the restore)``."""
    (deployment.config.working_dir / "made-after-the-backup.txt").write_text("new")
    before = deployment.state()
    started = instance.call("POST", f"/api/v1/site/backups/{deployment.backup}/restore", json={"confirm": True})
    assert started.status_code == 202, started.text[:300]
    return started.json()["job"]["id"], before


def final(instance: Instance, job_id: str) -> dict:
    return wait_until(lambda: (job := instance.job(job_id))["state"] != "running" and job, what="the job's end")


def test_every_poll_of_a_running_job_through_any_worker_answers(deployment):
    instance = deployment.serve(stop_at="mkdir:.staging-")
    started = instance.call("POST", "/api/v1/site/backups", json={"note": "polled"})
    assert started.status_code == 202, started.text[:300]
    job_id = started.json()["job"]["id"]
    pid = deployment.stopped_job_process()  # held mid-backup while the polls go round
    answers = []
    with ThreadPoolExecutor(8) as pool:  # several at once, as browsers poll, until several workers answered
        while len({a.headers.get("X-Worker") for a in answers}) < 2 and len(answers) < 400:
            answers += pool.map(lambda _: instance.call("GET", f"/api/v1/jobs/{job_id}"), range(16))
    assert len({a.headers.get("X-Worker") for a in answers}) >= 2, "one worker answered every poll"
    assert [a.status_code for a in answers] == [200] * len(answers)
    assert {a.json()["job"]["state"] for a in answers} == {"running"}
    os.kill(pid, signal.SIGCONT)
    assert final(instance, job_id)["state"] == "done"


@pytest.mark.parametrize("kind", ["backup", "restore"])
def test_killing_every_worker_mid_operation_leaves_the_job_to_end_and_the_scope_whole(deployment, kind):
    stop_at = "mkdir:.staging-" if kind == "backup" else "rename:.old-"
    instance = deployment.serve(stop_at=stop_at)
    if kind == "backup":
        before = deployment.state()
        job_id = instance.call("POST", "/api/v1/site/backups", json={}).json()["job"]["id"]
    else:
        job_id, before = start_restore(instance, deployment)
    pid = deployment.stopped_job_process()
    old_workers = instance.workers()
    for worker in old_workers:
        os.kill(worker, signal.SIGKILL)
    wait_until(lambda: len(instance.workers() - old_workers) == 4, what="gunicorn's new workers")
    os.kill(pid, signal.SIGCONT)
    job = final(instance, job_id)
    assert job["state"] == "done", job
    assert deployment.state() == (before if kind == "backup" else deployment.at_backup)
    assert Strongroom(deployment.config).maintenance() is None


def test_the_job_process_killed_mid_restore_ends_failed_and_the_next_request_rolls_it_back(
        short_lease_deployment):
    deployment = short_lease_deployment
    instance = deployment.serve(stop_at="rename:.old-")  # the records already replaced
    job_id, before = start_restore(instance, deployment)
    pid = deployment.stopped_job_process()
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: ended(pid), what="the job's process gone")
    job = final(instance, job_id)
    assert job["state"] == "failed", job
    wait_until(lambda: instance.call("GET", "/api/v1/site/backups").status_code == 200, what="the maintenance's end")
    job = instance.job(job_id)
    assert job["outcome"] == "rolled back" and job["recovery"].startswith("rolled back"), job
    assert deployment.state() == before


def test_the_demo_apps_sign_in_holds_on_every_worker(deployment):
    instance = deployment.serve(app="strongroom.web.wsgi:app")
    browser = requests.Session()
    browser.headers["Connection"] = "close"
    token = browser.get(instance.url + "/api/v1/session", timeout=30).json()["csrf_token"]
    signed = browser.post(instance.url + "/signin", data={"user": "admin", "csrf_token": token},
                          allow_redirects=False, timeout=30)
    assert signed.status_code == 303
    pages = [browser.get(instance.url + "/admin", timeout=30) for _ in range(10)]
    assert [page.status_code for page in pages] == [200] * 10


@pytest.mark.mongodb
def test_two_instances_on_one_data_dir_and_database_share_jobs_refusals_and_maintenance(server_deployment):
    one = server_deployment.serve(stop_at="rename:.old-")
    two = server_deployment.serve()
    job_id, _ = start_restore(one, server_deployment)
    server_deployment.stopped_job_process()
    assert two.job(job_id)["kind"] == "restore"  # the other instance knows the job
    refused = two.call("POST", "/api/v1/projects/" + "0" * 24 + "/backups", json={})
    assert refused.status_code == 409
    assert "restore" in refused.json()["error"]["message"] and "admin" in refused.json()["error"]["message"]
    for instance in (one, two):
        answer = instance.call("GET", "/api/v1/site/backups")
        assert answer.status_code == 503 and answer.json()["error"]["code"] == "maintenance"


@pytest.mark.mongodb
def test_the_lease_holder_killed_outright_lets_the_other_instance_recover_and_go_on(short_lease_server):
    server_deployment = short_lease_server
    one = server_deployment.serve(stop_at="rename:.old-")
    two = server_deployment.serve()
    job_id, before = start_restore(one, server_deployment)
    pid = server_deployment.stopped_job_process()
    one.kill()
    os.kill(pid, signal.SIGKILL)
    started = wait_until(lambda: (a := two.call("POST", "/api/v1/site/backups", json={})).status_code == 202 and a,
                         what="the next operation accepted after the lease's expiry")
    assert final(two, started.json()["job"]["id"])["state"] == "done"
    assert server_deployment.state() == before  # rolled back, never mixed
    restore = two.job(job_id)
    assert restore["state"] == "failed" and restore["recovery"].startswith("rolled back"), restore
    entries = Strongroom(server_deployment.config).audit_entries()
    assert any(e["operation"] == "take-over" for e in entries)


@pytest.mark.mongodb
def test_a_paused_holder_whose_lease_was_taken_over_swaps_nothing_afterwards(short_lease_server):
    server_deployment = short_lease_server
    one = server_deployment.serve(stop_at="mkdir:.restore-")  # building the new tree: nothing live changed
    two = server_deployment.serve()
    job_id, before = start_restore(one, server_deployment)
    pid = server_deployment.stopped_job_process()
    # beyond the expiry, the other instance meets the journal and recovers it
    wait_until(lambda: two.call("GET", "/api/v1/site/backups").status_code == 200, what="the take-over")
    assert Strongroom(server_deployment.config).maintenance() is None
    os.kill(pid, signal.SIGCONT)
    wait_until(lambda: ended(pid), what="the paused process's end")
    assert server_deployment.state() == before  # it swapped nothing, replaced no record
    assert Strongroom(server_deployment.config).maintenance() is None
    record = Strongroom(server_deployment.config).control.job(job_id)
    assert record["state"] == "failed", record
    assert (record.get("late") or {}).get("error", {}).get("type") == "LeaseLost", record
