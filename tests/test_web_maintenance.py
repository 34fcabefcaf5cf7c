"""What the web face answers while a restore runs: the notice, 409 for the API's writes, 405s.

Each test holds a restore's job at a point where its records are half replaced (the
first drop of a site restore, the first delete of a project restore) and asks then.
"""

import re

import pytest
from flask import abort

from conftest import give_the_restore_work
from strongroom.db.engines import open_database
from strongroom.errors import NotAllowed
from strongroom.service import Strongroom
from strongroom.web import create_app
from test_web_api import conforms
from test_web_security import signed_in
from web_support import (  # noqa: F401
    UserTokens,
    csrf_token,
    host_app,
    paused_job,
    prepared,
    wait_for_jobs,
    web_data,
)


@pytest.fixture
def host(web_data):
    app = host_app(web_data.config("pilot"))
    client = app.test_client()
    tokens = UserTokens(client)
    tokens["admin"]  # now: during a site restore the session's page is not answered

    def call(method, url, user="admin", **kwargs):
        headers = {"X-Test-User": user, "X-CSRF-Token": tokens[user], **kwargs.pop("headers", {})}
        return client.open(url, method=method, headers=headers, **kwargs)

    return app, call, web_data


def change_a_record(data) -> None:
    """A site restore whose records already are the backup's does not load them: with a
    record changed, there is a load to hold the job in."""
    database = open_database(data.config("pilot"))
    database.project.update_one({"_id": database.project.find_one({})["_id"]}, {"$set": {"title": "changed"}})


def start_restore(call, data, scope: str):
    where = "site" if scope == "site" else f"projects/{data.project_a}"
    backup = data.backups["pilot"]["site" if scope == "site" else "A"]
    give_the_restore_work(data.folder(None if scope == "site" else data.project_a))
    if scope == "site":
        change_a_record(data)
    started = call("POST", f"/api/v1/{where}/backups/{backup}/restore", json={"confirm": True})
    assert started.status_code == 202, started.get_json()
    return started.get_json()["job"]["id"]


def test_during_a_site_restore_reads_get_503_writes_409_unrouted_methods_405_and_the_job_answers(host):
    app, call, data = host
    site_backup = data.backups["pilot"]["site"]
    with paused_job(lambda kind, detail: kind == "drop") as (reached, release):
        job = start_restore(call, data, "site")
        assert reached.wait(10)
        listed = call("GET", "/api/v1/site/backups")
        assert listed.status_code == 503 and listed.headers["Retry-After"] == "5"
        assert conforms(listed, "/site/backups", "get")["error"]["code"] == "maintenance"
        assert "a restore of the whole site is running" in listed.get_json()["error"]["message"]
        # the restore's own status keeps answering, to the session that started it
        assert conforms(call("GET", f"/api/v1/jobs/{job}"), "/jobs/{job_id}", "get")["job"]["state"] == "running"
        assert call("GET", "/api/v1/session").status_code == 503
        deleted = call("DELETE", f"/api/v1/site/backups/{site_backup}")
        assert conforms(deleted, "/site/backups/{backup_id}", "delete")["error"]["code"] == "busy"
        made = call("POST", f"/api/v1/projects/{data.project_a}/backups", json={})
        assert conforms(made, "/projects/{project_id}/backups", "post")["error"]["code"] == "busy"
        for method in ("PUT", "TRACE", "PATCH"):
            unrouted = call(method, f"/api/v1/site/backups/{site_backup}")
            assert unrouted.status_code == 405 and unrouted.is_json
            assert set(unrouted.headers["Allow"].split(", ")) >= {"GET", "DELETE"}
        assert call("GET", "/api/v1/openapi.json").status_code == 200
        options = call("OPTIONS", "/api/v1/site/backups")  # not routed: 405, never 503, as documented
        assert options.status_code == 405 and "GET" in options.headers["Allow"]
        page = call("GET", "/backups/site")
        assert page.status_code == 503 and '<meta http-equiv="refresh" content="5">' in page.get_data(as_text=True)
        assert call("POST", "/host/write").status_code == 503
        assert call("GET", "/no/such/page").status_code == 404
        release.set()
    wait_for_jobs(app)
    assert call("GET", f"/api/v1/jobs/{job}").get_json()["job"]["state"] == "done"
    assert call("GET", "/api/v1/site/backups").status_code == 200


def test_a_405_names_the_allowed_methods_when_no_restore_runs(host):
    _, call, data = host
    answer = call("PUT", f"/api/v1/projects/{data.project_a}/backups")
    assert answer.status_code == 405 and set(answer.headers["Allow"].split(", ")) >= {"GET", "POST"}
    assert conforms(answer, "/projects/{project_id}/backups", "get")["error"]["code"] == "method_not_allowed"


def test_during_a_restore_an_api_write_without_the_csrf_token_is_still_refused_as_such(host):
    app, call, data = host
    with paused_job(lambda kind, detail: kind == "drop") as (reached, release):
        start_restore(call, data, "site")
        assert reached.wait(10)
        refused = call("DELETE", f"/api/v1/site/backups/{data.backups['pilot']['site']}",
                       headers={"X-CSRF-Token": "forged"})
        assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "csrf_refused"
        release.set()
    wait_for_jobs(app)


@pytest.fixture
def demo(web_data):
    app = create_app(web_data.config("pilot"), secret_key="test")
    return app, app.test_client(), web_data


def test_during_a_project_restore_only_the_pages_showing_projects_wait(demo):
    app, client, data = demo
    token = signed_in(client, "admin")
    backup = data.backups["pilot"]["A"]
    give_the_restore_work(data.folder(data.project_a))
    with paused_job(lambda kind, detail: kind == "delete") as (reached, release):
        client.post(f"/backups/projects/{data.project_a}/{backup}/restore", data={"csrf_token": token})
        assert reached.wait(10)
        for path in (f"/projects/{data.project_a}", "/"):
            waiting = client.get(path)
            assert waiting.status_code == 503 and "Maintenance: a restore of project" in waiting.get_data(as_text=True)
        assert client.get(f"/projects/{data.project_b}").status_code == 200
        assert client.get("/admin").status_code == 200  # the users are not touched by a project restore
        assert client.get(f"/api/v1/projects/{data.project_a}/backups").status_code == 200
        refused = client.delete(f"/api/v1/projects/{data.project_a}/backups/{backup}", headers={"X-CSRF-Token": token})
        assert refused.status_code == 409
        release.set()
    wait_for_jobs(app)
    assert client.get(f"/projects/{data.project_a}").status_code == 200


def test_during_a_site_restore_the_signed_in_admin_gets_the_notice_not_sign_in_first(demo):
    app, client, data = demo
    token = signed_in(client, "admin")
    give_the_restore_work(data.folder())
    change_a_record(data)
    users = open_database(data.config("pilot")).user  # the users are loaded again only if they changed
    users.update_one({"_id": users.find_one({})["_id"]}, {"$set": {"changed since the backup": True}})
    with paused_job(lambda kind, detail: kind == "drop" and detail == "user") as (reached, release):
        client.post(f"/backups/site/{data.backups['pilot']['site']}/restore", data={"csrf_token": token})
        assert reached.wait(10)
        for path in ("/admin", "/", f"/projects/{data.project_a}", "/backups/site"):
            answer = client.get(path)
            assert answer.status_code == 503, path
            assert re.search(r"Maintenance: a restore of the whole site is running", answer.get_data(as_text=True))
        as_json = client.get("/admin", headers={"Accept": "application/json"})
        assert as_json.status_code == 503 and as_json.get_json()["error"]["code"] == "maintenance"
        title = client.post(f"/projects/{data.project_a}/title", data={"csrf_token": token, "title": "x"})
        assert title.status_code == 503
        release.set()
    wait_for_jobs(app)
    assert client.get("/admin").status_code == 200


@pytest.mark.parametrize("failure", [lambda: abort(404), lambda: abort(403), NotAllowed("sign in first")])
def test_a_request_overtaken_by_a_restore_answers_the_notice_not_its_403_or_404(web_data, failure):
    app = host_app(web_data.config("pilot"))
    journal = Strongroom(web_data.config("pilot")).journal

    def read_while_a_restore_begins():
        journal.start(operation="restore", scope="site", project=None, backup="x", pre_restore=None, by="admin",
                      step="records")
        if isinstance(failure, Exception):
            raise failure
        failure()

    app.add_url_rule("/host/read", "read", read_while_a_restore_begins)
    try:
        answer = app.test_client().get("/host/read")
    finally:
        journal.finish()
    assert answer.status_code == 503 and "Maintenance:" in answer.get_data(as_text=True)


def test_a_site_restore_whose_process_died_says_it_was_cut_short_and_how_to_recover(web_data):
    app = host_app(web_data.config("pilot"))
    journal = Strongroom(web_data.config("pilot")).journal
    journal.start(operation="restore", scope="site", project=None, backup="x", pre_restore="y", by="admin",
                  step="records")  # as a killed `strongroom restore` leaves it: the journal, no lock holder
    try:
        answer = app.test_client().get("/api/v1/site/backups", headers={"X-Test-User": "admin"})
    finally:
        journal.finish()
    message = answer.get_json()["error"]["message"]
    assert answer.status_code == 503 and "was cut short" in message and "strongroom recover" in message
