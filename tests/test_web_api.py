"""The API against its OpenAPI document: every route described, every answer valid.

Each response below is checked against the schema the document gives for its path,
method and status, errors included (400, 403, 404, 405, 409). Every flow runs on both
engines (the embedded one and a real server).
"""

import json
import time
from importlib import resources

import jsonschema
import pytest

from conftest import give_the_restore_work
from web_support import (  # noqa: F401 - fixtures
    UserTokens,
    csrf_token,
    engine_prepared,
    engine_web_data,
    host_app,
    paused_job,
    prepared,
    wait_for_jobs,
)

DOC = json.loads(resources.files("strongroom.web").joinpath("openapi.json").read_text())


def conforms(response, path: str, method: str) -> dict:
    """Assert that ``response`` is what the document says for ``path`` and ``method``."""
    responses = DOC["paths"][path][method.lower()]["responses"]
    assert str(response.status_code) in responses, (path, method, response.status_code, response.get_json())
    spec = responses[str(response.status_code)]
    if "$ref" in spec:
        spec = DOC["components"]["responses"][spec["$ref"].rsplit("/", 1)[1]]
    schema = {**spec["content"]["application/json"]["schema"], "components": DOC["components"]}
    body = response.get_json()
    jsonschema.Draft202012Validator(schema).validate(body)
    return body


@pytest.fixture
def api(engine_web_data):
    """The API of a host app on either engine (the embedded one, and a real server)."""
    web_data = engine_web_data
    app = host_app(web_data.config("pilot"))
    client = app.test_client()
    tokens = UserTokens(client)
    tokens["admin"]  # now: during a site restore the session's page is not answered

    def call(method, url, user="admin", **kwargs):
        headers = {"X-Test-User": user, "X-CSRF-Token": tokens[user]}
        return client.open("/api/v1" + url, method=method, headers=headers, **kwargs)

    return app, call, web_data


def test_every_api_route_is_in_the_document_and_every_documented_one_exists(api):
    app = api[0]
    served = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("strongroom.api."):
            path = rule.rule.removeprefix("/api/v1").replace("<", "{").replace(">", "}")
            served |= {(path, m.lower()) for m in rule.methods - {"HEAD"}}
    documented = {(path, m) for path, ops in DOC["paths"].items() for m in ops}
    assert served == documented  # OPTIONS included: not routed, so 405 as the document says


def test_a_round_of_operations_conforms_to_the_document(api):
    _app, call, data = api
    site, a = "/site/backups", f"/projects/{data.project_a}/backups"
    backup_a = data.backups["pilot"]["A"]
    assert conforms(call("GET", "/session"), "/session", "get")["user"]["name"] == "admin"
    listed = conforms(call("GET", site), "/site/backups", "get")["backups"]
    assert listed[0]["id"] == data.backups["pilot"]["site"]
    conforms(call("GET", a), "/projects/{project_id}/backups", "get")
    conforms(call("GET", f"{a}/{backup_a}"), "/projects/{project_id}/backups/{backup_id}", "get")
    preview = conforms(call("POST", f"{a}/{backup_a}/restore", json={}), "/projects/{project_id}/backups/{backup_id}/restore", "post")
    assert preview["preview"]["backup"] == backup_a

    made = conforms(call("POST", a, json={"note": "api"}), "/projects/{project_id}/backups", "post")["job"]
    job = follow(call, made["id"])
    assert job["state"] == "done" and job["result"]["note"] == "api" and job["message"].startswith("Backup ")
    assert made["backup"] is None and job["backup"] == job["result"]["id"]  # the backup it made, once done
    give_the_restore_work(data.folder(data.project_a))  # a restore with work to do, then one with none
    for unchanged in (False, True):
        started = conforms(call("POST", f"{a}/{backup_a}/restore", json={"confirm": True}),
                           "/projects/{project_id}/backups/{backup_id}/restore", "post")["job"]
        result = follow(call, started["id"])["result"]
        assert result["restored"] == backup_a and result["unchanged"] is unchanged
        assert (result["pre_restore"] is None) is unchanged
    deleted = conforms(call("DELETE", f"{a}/{job['result']['id']}"), "/projects/{project_id}/backups/{backup_id}", "delete")
    assert follow(call, deleted["job"]["id"])["result"]["deleted"] == job["result"]["id"]


def follow(call, job_id: str) -> dict:
    deadline = time.monotonic() + 60
    while True:
        job = conforms(call("GET", f"/jobs/{job_id}"), "/jobs/{job_id}", "get")["job"]
        if job["state"] != "running" or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_errors_conform_to_the_document_with_their_status(api):
    _app, call, data = api
    site_backup = data.backups["pilot"]["site"]
    cases = [
        (call("GET", "/site/backups/not-an-id"), "/site/backups/{backup_id}", "get", 400, "invalid_name"),
        (call("GET", "/site/backups", user="user1"), "/site/backups", "get", 403, "not_allowed"),
        (call("GET", "/site/backups/2001-01-01T00-00-00"), "/site/backups/{backup_id}", "get", 404, "not_found"),
        (call("GET", f"/site/backups/{site_backup}/restore"), "/site/backups/{backup_id}/restore", "post", 405,
         "method_not_allowed"),
        (call("GET", f"/projects/{'f' * 24}/backups"), "/projects/{project_id}/backups", "get", 404, "not_found"),
        (call("GET", f"/jobs/{'0' * 32}"), "/jobs/{job_id}", "get", 404, "not_found"),
    ]
    for response, path, method, status, code in cases:
        assert response.status_code == status, (path, response.get_json())
        assert conforms(response, path, method)["error"]["code"] == code


def test_a_second_operation_is_refused_with_409_and_says_what_runs(api):
    app, call, data = api
    with paused_job() as (reached, release):
        first = call("POST", "/site/backups", json={})
        assert first.status_code == 202 and reached.wait(10)
        second = call("POST", f"/site/backups/{data.backups['pilot']['site']}/restore", json={"confirm": True})
        body = conforms(second, "/site/backups/{backup_id}/restore", "post")
        assert second.status_code == 409
        assert body["error"]["code"] == "busy"
        assert body["error"]["message"].startswith("Restore refused: another backup is running (started ")
        assert body["error"]["message"].endswith(" UTC by admin)")
        release.set()
    wait_for_jobs(app)


def test_a_backup_or_restore_without_the_key_is_refused_at_once_and_audited(api):
    """With the key gone (the backups here are signed by it), a backup could not be signed
    and no restore could check its backup: both answer 409 at once, start no job, and
    leave one audit entry each saying so (before, the backup answered 202 and its job failed,
    and the restore's refusal was in no audit entry)."""
    from strongroom.repo.audit import AuditLog

    app, call, data = api
    config = data.config("pilot")
    config.site_key_path.rename(config.site_key_path.with_name("key-kept-elsewhere"))
    site_backup = data.backups["pilot"]["site"]
    before = call("GET", "/site/backups").get_json()["backups"]
    backup = call("POST", "/site/backups", json={})
    restore = call("POST", f"/site/backups/{site_backup}/restore", json={"confirm": True})
    for response, path in ((backup, "/site/backups"), (restore, "/site/backups/{backup_id}/restore")):
        body = conforms(response, path, "post")
        assert response.status_code == 409, body
        assert body["error"]["code"] == "key_refused" and "nothing was saved" in body["error"]["message"], body
    wait_for_jobs(app)
    assert call("GET", "/site/backups").get_json()["backups"] == before  # no job made one
    audited = [e for e in AuditLog(config.backups_dir).entries() if e["outcome"] == "failed"]
    assert [(e["operation"], e["by"]) for e in audited] == [("backup", "admin"), ("restore", "admin")]
    assert all("refused" in e["error"] for e in audited)
    assert audited[1]["backup"] == site_backup


def test_a_job_reports_its_step_and_percentage_while_it_runs(api):
    app, call, _data = api
    with paused_job(lambda kind, detail: kind == "link") as (reached, release):
        job = call("POST", "/site/backups", json={}).get_json()["job"]
        assert reached.wait(10)
        running = call("GET", f"/jobs/{job['id']}").get_json()["job"]
        assert running["state"] == "running"
        assert running["step"] not in ("", "starting")  # the core has reported a step
        assert running["percent"] is None or 0 <= running["percent"] <= 100
        release.set()
    wait_for_jobs(app)
    done = call("GET", f"/jobs/{job['id']}").get_json()["job"]
    assert done["state"] == "done" and done["percent"] == 100 and done["finished"]
    assert done["message"].startswith(f"Backup {done['result']['id']} of the whole site made "
                                      f"({done['result']['files']:,} files, ")
    assert done["message"].endswith(" new)")


def test_jobs_are_seen_only_by_those_who_may_see_their_scope(api):
    app, call, _data = api
    job = call("POST", "/site/backups", json={}).get_json()["job"]
    wait_for_jobs(app)
    assert call("GET", f"/jobs/{job['id']}", user="org1").status_code == 403
    assert call("GET", f"/jobs/{job['id']}", user="root").status_code == 200
