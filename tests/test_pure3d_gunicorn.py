"""Strongroom as Pure3D runs it: installed from the wheel, mounted in front of a host shaped
like Pure3D (``pure3d_host``: a bare exported app dispatching to a factory-made routed app,
its catch-all, its own sessions, its layout's blocks), served by gunicorn with Pure3D's
default of 2 worker processes x 2 threads.

The host module and its templates are copied to a folder of their own and served by the
wheel's venv (``test_wheel.venv``), so nothing is imported from the source tree; jobs run
in processes of their own started by that venv's Python.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from conftest import records_fingerprint
from conftest import wait_until as poll_until
from servers import free_port
from strongroom.config import Config
from strongroom.db.engines import open_database
from test_wheel import _clean_environment, built, venv  # noqa: F401 - the wheel's venv, built once
from web_support import prepared, users_of, web_data  # noqa: F401

BOUND = 120  # seconds any one state is waited for, at most; each wait polls for it
HERE = Path(__file__).parent


wait_until = functools.partial(poll_until, timeout=BOUND)


@pytest.fixture
def pure3d(venv, web_data, tmp_path):
    """The Pure3D-shaped host under gunicorn -w 2 --threads 2, from the wheel's venv."""
    site = tmp_path / "host"
    site.mkdir()
    shutil.copy2(HERE / "pure3d_host.py", site / "pure3d_host.py")
    shutil.copytree(HERE / "pure3d_templates", site / "pure3d_templates")
    port = free_port()
    env = {**_clean_environment(), "PURE3D_HOST_DATA_DIR": str(web_data.data_dir), "PURE3D_HOST_MODE": "pilot"}
    env.pop("STRONGROOM_JOBS", None)  # jobs in processes of their own, as deployed
    log = tmp_path / "gunicorn.log"
    with log.open("wb") as out:
        server = subprocess.Popen([str(venv / "bin" / "python"), "-I", "-m", "gunicorn", "-w", "2", "--threads", "2",
                                   "--chdir", str(site), "-b", f"127.0.0.1:{port}", "--graceful-timeout", "5",
                                   "pure3d_host:app"], cwd=site, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        if server.poll() is not None:
            raise AssertionError(log.read_text(errors="replace")[-3000:])
        try:
            return requests.get(url + "/", timeout=10).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_until(ready, what="gunicorn answering")
        yield url, web_data
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()


def signed_in(url: str, user: str) -> requests.Session:
    browser = requests.Session()
    assert browser.get(f"{url}/alogin?user={user}", allow_redirects=False, timeout=30).status_code == 302
    return browser


def token(browser: requests.Session, url: str) -> str:
    return browser.get(url + "/backups/api/v1/session", timeout=30).json()["csrf_token"]


def follow(browser: requests.Session, url: str, job_id: str, also=None) -> tuple[dict, list[int]]:
    """Poll the job through whichever worker answers until it ends; every answer's status."""
    statuses = []

    def ended():
        answer = browser.get(f"{url}/backups/api/v1/jobs/{job_id}", timeout=30)
        statuses.append(answer.status_code)
        if also:
            also()
        job = answer.json().get("job") if answer.status_code == 200 else None
        return job if job and job["state"] in ("done", "failed") else None

    return wait_until(ended, what=f"the end of job {job_id}"), statuses


def test_the_permission_matrix_holds_for_the_hosts_users_under_two_workers(pure3d):
    url, data = pure3d
    config = Config(data_dir=data.data_dir, mode="pilot")
    users = users_of(open_database(config))
    organiser = next(user for user in users.values() if user.role == "user" and user.organises)
    plain = next(user for user in users.values() if user.role == "user" and not user.organises)
    mine, other = min(organiser.organises), next(p for p in (data.project_a, data.project_b)
                                                        if p not in organiser.organises)
    expected = {
        ("admin", "/backups/site"): 200, ("root", "/backups/site"): 200,
        (organiser.name, "/backups/site"): 403, (plain.name, "/backups/site"): 403,
        (organiser.name, f"/backups/projects/{mine}"): 200, (organiser.name, f"/backups/projects/{other}"): 403,
        (plain.name, f"/backups/projects/{mine}"): 403,
    }
    seen = {(name, path): signed_in(url, name).get(url + path, timeout=30).status_code for name, path in expected}
    assert seen == expected
    panel = signed_in(url, "admin").get(url + "/backups/site", timeout=30).text
    assert 'id="contentright"' in panel and 'id="sr-panel"' in panel  # inside the host's layout
    assert requests.get(url + "/no/such/page", allow_redirects=False, timeout=30).status_code == 303


def test_a_backup_and_a_restore_from_the_panel_under_two_workers_put_the_site_back(pure3d):
    url, data = pure3d
    config = Config(data_dir=data.data_dir, mode="pilot")
    admin = signed_in(url, "admin")
    headers = {"X-CSRF-Token": token(admin, url)}
    started = admin.post(url + "/backups/api/v1/site/backups", json={"note": "before the change"},
                         headers=headers, timeout=60)
    assert started.status_code == 202, started.text[:300]
    made, polls = follow(admin, url, started.json()["job"]["id"])
    assert made["state"] == "done", made
    assert set(polls) == {200}  # whichever worker answered, it knew the job
    backup_id = made["result"]["id"]
    before = records_fingerprint(open_database(config)), (config.working_dir / "site.json").read_bytes()

    assert admin.post(f"{url}/save/title/{data.project_a}", data={"title": "changed by the host"},
                      timeout=30).text == "saved"
    (config.working_dir / "site.json").write_text("changed")
    host_answers = []
    restore = admin.post(f"{url}/backups/api/v1/site/backups/{backup_id}/restore", json={"confirm": True},
                         headers=headers, timeout=60)
    assert restore.status_code == 202, restore.text[:300]
    done, polls = follow(admin, url, restore.json()["job"]["id"],
                         also=lambda: host_answers.append(requests.get(url + "/", timeout=30).status_code))
    assert done["state"] == "done", done
    assert set(polls) == {200}  # the job's own status answers during the site restore
    assert set(host_answers) <= {200, 503}  # the host's pages: served, or the maintenance answer
    assert (records_fingerprint(open_database(config)), (config.working_dir / "site.json").read_bytes()) == before
    assert admin.get(url + "/", timeout=30).status_code == 200
