"""Hostile input through every route that takes an id, GET on every change, CSRF, cookies.

Every payload goes into every id place of every route (project id, backup id, job id),
sent by admin with a valid CSRF token so that only the validator stands in the way: the
answer is 400 or 404, and the files, backups and records are exactly as before.
"""

import re
from urllib.parse import quote

import pytest

from strongroom.web import create_app
from web_support import csrf_token, prepared, state_of, wait_for_jobs, web_data  # noqa: F401

PAYLOADS = ["..", "../x", "%2e%2e%2f", "..%252f", "/etc", "%00", "a" * 300, "\n", '{"$ne": null}']
SEGMENTS = sorted({quote(p, safe="") for p in PAYLOADS} | {"..", "%2e%2e%2f", "..%252f", "%00"})
ID_ARGS = ("project_id", "backup_id", "job_id")


@pytest.fixture
def demo(web_data):
    """The demo app on a copy of the prepared data dir, with a signed-in admin."""
    app = create_app(web_data.config("pilot"), secret_key="test")
    client = app.test_client()
    token = signed_in(client, "admin")
    return app, client, token, web_data


def signed_in(client, user: str) -> str:
    page = client.get("/signin").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    assert client.post("/signin", data={"csrf_token": token, "user": user}).status_code == 303
    return csrf_token(client)  # a new one: the session is new at sign-in


def routes_with_ids(app):
    for rule in app.url_map.iter_rules():
        args = {name for name in ID_ARGS if f"<{name}>" in rule.rule}
        if args:
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                yield rule, method, args


def build(rule, data, bad_arg=None, bad=None) -> str:
    values = {"project_id": data.project_a, "backup_id": data.backups["pilot"]["A"], "job_id": "0" * 32}
    path = rule.rule
    for name in rule.arguments:
        value = bad if name == bad_arg else values[name]
        path = path.replace(f"<{name}>", value)
    return path


def send(client, method, url, token):
    kwargs = {"headers": {"X-CSRF-Token": token}}
    if method == "POST":
        kwargs["data"] = {"csrf_token": token, "note": "x", "title": "x"}
    return client.open(url, method=method, **kwargs)


@pytest.mark.parametrize("segment", SEGMENTS)
def test_hostile_ids_in_every_route_get_400_or_404_and_touch_nothing(demo, segment):
    app, client, token, data = demo
    config = data.config("pilot")
    before = state_of(config)
    tried = 0
    for rule, method, args in routes_with_ids(app):
        for arg in args:
            response = send(client, method, build(rule, data, arg, segment), token)
            assert response.status_code in (400, 404), (rule.rule, method, arg, response.status_code)
            tried += 1
    wait_for_jobs(app)
    assert tried >= 25
    assert state_of(config) == before


@pytest.mark.parametrize("body", [{"note": {"$ne": None}}, {"note": "a" * 600}, {"note": "two\nlines"}, ["x"]])
def test_hostile_api_bodies_are_refused_with_400(demo, body):
    _app, client, token, data = demo
    before = state_of(data.config("pilot"))
    response = client.post("/api/v1/site/backups", json=body, headers={"X-CSRF-Token": token})
    assert response.status_code == 400
    response = client.post(f"/api/v1/site/backups/{data.backups['pilot']['site']}/restore",
                           json={"confirm": {"$ne": None}}, headers={"X-CSRF-Token": token})
    assert response.status_code == 400
    assert state_of(data.config("pilot")) == before


@pytest.mark.parametrize("user", ["..", "../admin", '{"$ne": null}', "admin\n", "a" * 300])
def test_hostile_sign_in_names_are_refused(demo, user):
    _app, client, token, _data = demo
    response = client.post("/signin", data={"csrf_token": token, "user": user})
    assert response.status_code == 400


def unsafe_only_rules(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.endswith("static") or not rule.methods & {"POST", "DELETE"}:
            continue
        served_by_get = any(other.rule == rule.rule and "GET" in other.methods for other in app.url_map.iter_rules())
        if not served_by_get:
            yield rule


def test_get_on_every_state_changing_route_is_405_and_changes_nothing(demo):
    app, client, token, data = demo
    before = state_of(data.config("pilot"))
    rules = list(unsafe_only_rules(app))
    assert len(rules) >= 8  # make, restore, delete (site and project), API restore, title, sign-out
    for rule in rules:
        response = client.get(build(rule, data) + "?csrf_token=" + token)
        assert response.status_code == 405, rule.rule
    wait_for_jobs(app)
    assert state_of(data.config("pilot")) == before


def test_every_change_without_the_csrf_token_is_refused(demo):
    app, client, _token, data = demo
    before = state_of(data.config("pilot"))
    for rule in app.url_map.iter_rules():
        for method in rule.methods & {"POST", "DELETE"}:
            for sent in ({}, {"csrf_token": "forged"}):
                response = client.open(build(rule, data), method=method, data=sent)
                assert response.status_code == 403, (rule.rule, method)
    wait_for_jobs(app)
    assert state_of(data.config("pilot")) == before


def test_api_errors_for_a_missing_token_have_the_stable_shape(demo):
    _app, client, _token, _data = demo
    response = client.post("/api/v1/site/backups", json={})
    assert response.status_code == 403
    assert response.get_json() == {"error": {"status": 403, "code": "csrf_refused", "message": response.get_json()["error"]["message"]}}


def test_session_cookie_is_http_only_and_same_site(web_data):
    app = create_app(web_data.config("pilot"), secret_key="test")
    client = app.test_client()
    response = client.get("/api/v1/session")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_backups_are_never_served_as_files(demo):
    app, client, _token, data = demo
    static = [rule for rule in app.url_map.iter_rules() if "filename" in rule.arguments]
    assert [rule.endpoint for rule in static] == ["strongroom.static"]
    folder = app.blueprints["strongroom"].static_folder
    import os

    assert sorted(os.listdir(folder)) == ["strongroom.css", "strongroom.js"]
    backup = data.backups["pilot"]["site"]
    for path in (f"/backups/static/..%2f..%2f..%2fbackups/pilot/site/{backup}/manifest.json",
                 f"/backups/static/../../backups/pilot/site/{backup}/manifest.json",
                 f"/backups/pilot/site/{backup}/manifest.json", "/backups/static/%2e%2e/api.py"):
        assert client.get(path).status_code == 404, path
