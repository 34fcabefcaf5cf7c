"""Strongroom mounted in front of a host shaped like Pure3D (``pure3d_host``): a bare exported
app whose ``wsgi_app`` is a dispatcher, a routed app made in a factory with its own
catch-all and a ``before_request`` that reads the database, users in its own session
(never rotated), and its layout's blocks ``head``, ``contentleft``, ``contentright``."""

import re

import pytest

from conftest import give_the_restore_work
from pure3d_host import create_app
from strongroom.db.engines import open_database
from strongroom.web import mount
from web_support import paused_job, prepared, state_of, web_data  # noqa: F401


@pytest.fixture
def host(web_data):
    app = create_app(web_data.data_dir, "pilot")
    client = app.test_client()
    yield app, client, web_data
    runner = app.extensions["pure3d_host"]["mounted"].app.extensions["strongroom"].runner
    job = runner.running()
    if job is not None:
        runner.wait(job, 60)


def sign_in(client, user: str) -> None:
    assert client.get(f"/alogin?user={user}").status_code == 302


def token(client) -> str:
    return client.get("/backups/api/v1/session").get_json()["csrf_token"]


def wait(app, response) -> dict:
    """The job a form started, once it has ended."""
    runner = app.extensions["pure3d_host"]["mounted"].app.extensions["strongroom"].runner
    return runner.wait(runner.get(response.headers["Location"].rsplit("/", 1)[-1]), 60).to_dict()


def test_the_panel_answers_under_the_prefix_inside_the_hosts_layout(host):
    _, client, data = host
    sign_in(client, "admin")
    page = client.get("/backups/site")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    right = re.search(r'<div id="contentright">(.*?)</div>\s*</main>', html, re.DOTALL).group(1)
    assert 'id="sr-panel"' in right and data.backups["pilot"]["site"] in right
    head = html.split("</head>")[0]
    assert '<meta name="host-head" content="kept">' in head  # the host's own head stays
    assert 'href="/backups/static/strongroom.css"' in head and 'src="/backups/static/strongroom.js"' in head
    assert "<title>Pure3D-shaped host</title>" in head  # no title block in that layout: left out
    assert 'id="host-login"' in html  # the layout's variables, from layout_context
    assert client.get("/backups/static/strongroom.css").status_code == 200


def test_the_hosts_own_pages_webdav_and_catch_all_still_answer(host):
    _, client, data = host
    sign_in(client, "admin")
    home = client.get("/")
    assert home.status_code == 200 and "host home" in home.get_data(as_text=True)
    assert "signed in as admin" in home.get_data(as_text=True)
    assert "project" in client.get(f"/project/{data.project_a}").get_data(as_text=True)
    assert client.get("/webdav/x/y").get_data(as_text=True) == "webdav GET /webdav/x/y"
    caught = client.get("/no/such/host/page")
    assert caught.status_code == 303 and caught.headers["Location"].endswith("/")
    assert client.get("/backupsx").status_code == 303  # only the prefix itself is Strongroom's


def test_the_hosts_catch_all_does_not_swallow_the_panel_or_the_api(host):
    _, client, _ = host
    sign_in(client, "admin")
    session = client.get("/backups/api/v1/session")
    assert session.status_code == 200 and session.get_json()["user"]["name"] == "admin"
    missing = client.get("/backups/site/2026-01-01T00-00-00/nothing")
    assert missing.status_code == 404 and 'class="sr-error"' in missing.get_data(as_text=True)
    assert client.get("/backups/api/v1/nothing").get_json()["error"]["status"] == 404
    served = client.get("/backups/api/v1/openapi.json").get_json()
    assert served["servers"][0]["url"] == "/backups/api/v1"
    assert client.get("/backups/nothing").status_code == 404


@pytest.mark.parametrize(("user", "site", "project_a", "project_b"), [
    (None, 403, 403, 403),
    ("user1", 403, 403, 403),
    ("org1", 403, 200, 403),
    ("admin", 200, 200, 200),
    ("root", 200, 200, 200),
])
def test_permissions_follow_the_hosts_signed_in_user(host, user, site, project_a, project_b):
    _, client, data = host
    if user:
        sign_in(client, user)
    assert client.get("/backups/site").status_code == site
    assert client.get(f"/backups/projects/{data.project_a}").status_code == project_a
    assert client.get(f"/backups/projects/{data.project_b}").status_code == project_b


def test_an_organiser_makes_a_backup_of_their_project_under_their_name_and_stays_signed_in(host):
    app, client, data = host
    sign_in(client, "org1")
    made = client.post(f"/backups/projects/{data.project_a}/make", data={"csrf_token": token(client), "note": "x"})
    assert made.status_code == 303 and made.headers["Location"].startswith("/backups/jobs/")
    job = wait(app, made)
    assert job["state"] == "done" and job["by"] == "org1"
    job_page = client.get(made.headers["Location"]).get_data(as_text=True)
    assert "made" in job_page and 'id="messages"' in job_page
    assert "signed in as org1" in client.get("/").get_data(as_text=True)  # the host's cookie untouched
    cookies = {cookie.key: cookie for cookie in client._cookies.values()}
    assert cookies["strongroom_session"].path == "/backups" and "session" in cookies


def test_a_token_from_before_sign_in_or_of_another_user_is_refused_on_the_hosts_unrotated_session(host):
    _, client, data = host
    before = state_of(data.config())
    anonymous = token(client)
    sign_in(client, "admin")
    refused = client.post("/backups/site/make", data={"csrf_token": anonymous})
    assert refused.status_code == 403 and "CSRF" in refused.get_data(as_text=True)
    admins = token(client)
    assert client.get("/alogout").status_code == 302
    sign_in(client, "root")
    api = client.post("/backups/api/v1/site/backups", json={}, headers={"X-CSRF-Token": admins})
    assert api.status_code == 403 and api.get_json()["error"]["code"] == "csrf_refused"
    assert state_of(data.config()) == before
    accepted = client.post("/backups/api/v1/site/backups", json={}, headers={"X-CSRF-Token": token(client)})
    assert accepted.status_code == 202


def test_during_a_site_restore_the_host_answers_503_without_running_its_code(host):
    app, client, data = host
    sign_in(client, "admin")
    identified = app.extensions["pure3d_host"]["identified"]
    give_the_restore_work(data.folder())
    database = open_database(data.config())  # a record changed: records that already are the backup's are not loaded
    database.project.update_one({"_id": database.project.find_one({})["_id"]}, {"$set": {"title": "changed"}})
    with paused_job(lambda kind, detail: kind == "drop") as (reached, release):
        started = client.post(f"/backups/site/{data.backups['pilot']['site']}/restore",
                              data={"csrf_token": token(client)})
        assert reached.wait(30)
        calls = identified[0]
        for path in ("/", f"/project/{data.project_a}", "/no/such/page", "/webdav/x"):
            answer = client.get(path)
            assert answer.status_code == 503 and "Maintenance: a restore of the whole site" in answer.get_data(as_text=True)
            assert answer.headers["Retry-After"] == "5"
        as_json = client.get("/", headers={"Accept": "application/json"})
        assert as_json.status_code == 503 and as_json.get_json()["error"]["code"] == "maintenance"
        assert client.post(f"/save/title/{data.project_a}", data={"title": "x"}).status_code == 503
        assert identified[0] == calls  # the host's before_request, which reads the users, never ran
        assert client.get("/static/host.css").status_code == 200  # open paths stay open
        page = client.get("/").get_data(as_text=True)
        assert '<div id="contentright">' in page  # the notice in the host's layout
        release.set()
    assert wait(app, started)["state"] == "done"
    assert client.get("/").status_code == 200


def test_during_a_project_restore_the_hosts_writes_get_503_and_its_reads_go_on(host):
    app, client, data = host
    sign_in(client, "admin")
    give_the_restore_work(data.folder(data.project_a))
    with paused_job(lambda kind, detail: kind == "delete") as (reached, release):
        started = client.post(f"/backups/projects/{data.project_a}/{data.backups['pilot']['A']}/restore",
                              data={"csrf_token": token(client)})
        assert reached.wait(30)
        assert client.post(f"/save/title/{data.project_b}", data={"title": "x"}).status_code == 503
        assert client.get(f"/project/{data.project_b}").status_code == 200
        release.set()
    assert wait(app, started)["state"] == "done"
    assert client.post(f"/save/title/{data.project_b}", data={"title": "x"}).status_code == 200


def test_a_mount_needs_a_secret_key_and_a_prefix_of_the_right_form(web_data, monkeypatch):
    monkeypatch.delenv("STRONGROOM_SECRET_KEY", raising=False)
    host = lambda environ, start_response: []
    with pytest.raises(ValueError, match="secret_key"):
        mount(host, "/backups", web_data.config(), lambda request: None)
    for prefix in ("backups", "/backups/"):
        with pytest.raises(ValueError, match="prefix"):
            mount(host, prefix, web_data.config(), lambda request: None, secret_key="k")
