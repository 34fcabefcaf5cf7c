"""The demo app and the panel as a user meets them, through Flask's test client."""

import re

import pytest

from conftest import give_the_restore_work
from strongroom.scopes import Scope, scope_dir
from strongroom.web import create_app
from test_web_security import signed_in
from web_support import csrf_token, host_app, paused_job, prepared, wait_for_jobs, web_data  # noqa: F401


@pytest.fixture
def demo(web_data):
    app = create_app(web_data.config("pilot"), secret_key="test")
    return app, app.test_client(), web_data


def text(response) -> str:
    return response.get_data(as_text=True)


def test_the_home_page_lists_the_projects_and_the_picker_the_users(demo):
    _app, client, data = demo
    assert data.project_a in text(client.get("/"))
    picker = text(client.get("/signin"))
    assert all(f'data-user="{name}"' in picker for name in ("root", "admin", "org1", "user1"))


@pytest.mark.parametrize("user, sees_a, sees_b, sees_site", [
    ("user1", False, False, False), ("org1", True, False, False), ("admin", True, True, True), ("root", True, True, True),
])
def test_the_panel_is_shown_only_to_those_allowed(demo, user, sees_a, sees_b, sees_site):
    _app, client, data = demo
    signed_in(client, user)
    assert ('id="sr-panel"' in text(client.get(f"/projects/{data.project_a}"))) is sees_a
    assert ('id="sr-panel"' in text(client.get(f"/projects/{data.project_b}"))) is sees_b
    assert ('id="sr-panel"' in text(client.get("/admin"))) is sees_site


def test_an_anonymous_visitor_sees_no_panel_and_no_admin_page(demo):
    _app, client, data = demo
    assert 'id="sr-panel"' not in text(client.get(f"/projects/{data.project_a}"))
    assert client.get("/admin").status_code == 403


def test_the_panel_lists_newest_first_with_time_who_why_note_files_size_and_records(demo):
    _app, client, data = demo
    signed_in(client, "admin")
    page = text(client.get("/admin"))
    page = page[page.index('id="sr-panel"'):]
    assert page.index(data.backups["pilot"]["site"]) < page.index("</tbody>")
    for words in ("Made", "By", "Why", "Note", "Files", "Size", "New", "Records", "Details", "Restore", "Delete",
                  "just now", " UTC", "manual", ">site<"):
        assert words in page, words


def make_backup(client, path: str, token: str, note: str):
    response = client.post(f"/backups/{path}/make", data={"csrf_token": token, "note": note})
    assert response.status_code == 303 and "/backups/jobs/" in response.location
    return response.location


def test_make_backup_runs_as_a_job_then_flashes_the_outcome_and_lists_it(demo):
    app, client, data = demo
    token = signed_in(client, "org1")
    job_page = make_backup(client, f"projects/{data.project_a}", token, "from the page")
    wait_for_jobs(app)
    page = text(client.get(job_page))
    made = re.search(r"Backup (\S+) of project “[^”]+” made \(([\d,]+) files, [\d.]+ [KMG]?B new\)", page)
    assert made, page
    assert 'id="sr-progress"' in page and 'value="100"' in page
    listed = text(client.get(f"/projects/{data.project_a}"))
    table = listed[listed.index('id="sr-backups"'):]
    assert table.index(made.group(1)) < table.index(data.backups["pilot"]["A"])
    assert "from the page" in listed


def test_restore_shows_the_preview_first_then_puts_the_file_back(demo):
    app, client, data = demo
    token = signed_in(client, "org1")
    backup = data.backups["pilot"]["A"]
    scene = next(scope_dir(data.config(), Scope.project(data.project_a)).rglob("scene.json"))
    original = scene.read_bytes()
    scene.write_text("changed")
    preview = text(client.get(f"/backups/projects/{data.project_a}/{backup}/preview"))
    assert scene.read_text() == "changed"  # the preview changed nothing
    changed_row = re.search(r'<tr class="sr-changed"><td data-label="Change">changed</td><td class="sr-num" data-label="Files">(\d+)</td>', preview)
    assert changed_row and changed_row.group(1) == "1" and scene.name in preview
    response = client.post(f"/backups/projects/{data.project_a}/{backup}/restore", data={"csrf_token": token})
    wait_for_jobs(app)
    page = text(client.get(response.location))
    assert re.search(f"Backup {backup} of project “[^”]+” restored \\(", page), page
    assert scene.read_bytes() == original


def test_delete_asks_first_then_removes_the_backup(demo):
    app, client, data = demo
    token = signed_in(client, "admin")
    backup = data.backups["pilot"]["site"]
    confirm = text(client.get(f"/backups/site/{backup}/confirm-delete"))
    assert "Delete this backup" in confirm
    response = client.post(f"/backups/site/{backup}/delete", data={"csrf_token": token})
    wait_for_jobs(app)
    assert re.search(rf"Backup {backup} of the whole site deleted \([\d.]+ [KMG]?B freed\)",
                     text(client.get(response.location)))
    assert f'data-backup-id="{backup}"' not in text(client.get("/admin"))  # (the activity list names it)


def test_details_show_the_records_and_files_of_a_backup(demo):
    _app, client, data = demo
    signed_in(client, "admin")
    page = text(client.get(f"/backups/site/{data.backups['pilot']['site']}/details"))
    assert "edition" in page and "projectUser" in page and "files in" in page


def test_a_second_operation_is_refused_with_a_plain_message(demo):
    app, client, data = demo
    token = signed_in(client, "admin")
    with paused_job() as (reached, release):
        make_backup(client, "site", token, "first")
        assert reached.wait(10)
        response = client.post(f"/backups/site/{data.backups['pilot']['site']}/restore", data={"csrf_token": token})
        assert response.status_code == 303 and response.location.endswith("/admin")
        page = text(client.get(response.location))
        assert re.search(r"Restore refused: another backup is running \(started \d\d:\d\d UTC by admin\)", page)
        release.set()
    wait_for_jobs(app)


def test_while_a_restore_runs_host_writes_get_503_with_a_notice(demo):
    app, client, data = demo
    token = signed_in(client, "admin")
    journal = data.config().backups_dir / ".journal.json"
    title_form = {"csrf_token": token, "title": "New title"}
    give_the_restore_work(data.folder(data.project_a))
    with paused_job(lambda kind, detail: journal.exists()) as (reached, release):
        client.post(f"/backups/projects/{data.project_a}/{data.backups['pilot']['A']}/restore", data={"csrf_token": token})
        assert reached.wait(10)
        refused = client.post(f"/projects/{data.project_a}/title", data=title_form)
        assert refused.status_code == 503 and refused.headers["Retry-After"]
        assert "Maintenance: a restore of project" in text(refused)
        assert "Maintenance:" in text(client.get("/"))  # reads go on, with the notice
        release.set()
    wait_for_jobs(app)
    assert client.post(f"/projects/{data.project_a}/title", data=title_form).status_code == 303
    assert "New title" in text(client.get(f"/projects/{data.project_a}"))


def test_the_maintenance_answer_is_json_for_json_clients(web_data):
    app = host_app(web_data.config("pilot"))
    client = app.test_client()
    journal = web_data.config().backups_dir / ".journal.json"
    give_the_restore_work(web_data.folder())
    with paused_job(lambda kind, detail: journal.exists()) as (reached, release):
        client.post(f"/api/v1/site/backups/{web_data.backups['pilot']['site']}/restore", json={"confirm": True},
                    headers={"X-Test-User": "admin", "X-CSRF-Token": csrf_token(client, "admin")})
        assert reached.wait(10)
        refused = client.post("/host/write", json={})
        assert refused.status_code == 503 and refused.get_json()["error"]["code"] == "maintenance"
        release.set()
    wait_for_jobs(app)
    assert client.post("/host/write", json={}).status_code == 200


def test_in_prod_the_panel_says_the_system_makes_backups_and_offers_no_changes(web_data):
    app = host_app(web_data.config("prod"))
    page = text(app.test_client().get("/backups/site", headers={"X-Test-User": "admin"}))
    assert "the system makes the backups" in page and web_data.backups["prod"]["site"] in page
    assert "Make backup" not in page and "/preview" not in page and "confirm-delete" not in page


def test_in_prod_the_demo_has_no_user_picker(web_data):
    client = create_app(web_data.config("prod"), secret_key="test").test_client()
    assert client.get("/signin").status_code == 404
    assert client.post("/signin", data={"user": "admin"}).status_code in (403, 404)


def test_a_job_page_without_javascript_refreshes_itself_while_running(demo):
    app, client, _data = demo
    token = signed_in(client, "admin")
    with paused_job() as (reached, release):
        job_page = make_backup(client, "site", token, "")
        assert reached.wait(10)
        page = text(client.get(job_page))
        assert '<noscript><meta http-equiv="refresh"' in page and 'data-state="running"' in page
        release.set()
    wait_for_jobs(app)


def test_a_job_that_ends_while_its_page_is_made_is_shown_running_or_with_its_outcome(demo, monkeypatch):
    """The job's thread may end between the page's look at the job and its drawing: the page
    must show one moment, never a finished job without its outcome (once a browser saw that)."""
    from strongroom.web import blueprint

    app, client, _data = demo
    token = signed_in(client, "admin")
    drawn = blueprint._page

    def job_ends_meanwhile(template, *args, **context):
        if template == "strongroom/job.html":
            release.set()
            wait_for_jobs(app)
        return drawn(template, *args, **context)

    with paused_job() as (reached, release):
        job_page = make_backup(client, "site", token, "")
        assert reached.wait(10)
        monkeypatch.setattr(blueprint, "_page", job_ends_meanwhile)
        page = text(client.get(job_page))
    assert 'data-state="running"' in page and "of the whole site made" not in page
    monkeypatch.setattr(blueprint, "_page", drawn)
    again = text(client.get(job_page))  # what the page's script does when its poll sees the end
    assert 'data-state="done"' in again and re.search(r'class="sr-flash sr-success"[^>]*>Backup \S+ of the whole site made', again)


def test_pages_that_list_files_show_any_name_a_file_system_allows(demo):
    """A name that is not UTF-8, or holds a newline or markup, is shown, escaped: never a 500."""
    import os

    _app, client, data = demo
    signed_in(client, "admin")
    folder = scope_dir(data.config(), Scope.project(data.project_a))
    for name in (b"caf\xe9-latin1.txt", b"new\nline<img src=x onerror=alert(1)>.txt"):
        (folder / os.fsdecode(name)).write_bytes(b"odd")
    backup = data.backups["pilot"]["A"]
    for url in (f"/projects/{data.project_a}", f"/backups/projects/{data.project_a}/{backup}/preview"):
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        page = text(response)
        assert "<img src=x" not in page, url
    assert "caf\\xe9-latin1.txt" in text(client.get(f"/projects/{data.project_a}"))
    from strongroom.service import Strongroom

    made = Strongroom(data.config()).make_backup(data.project_a)["id"]
    details = client.get(f"/backups/projects/{data.project_a}/{made}/details")
    assert details.status_code == 200 and "<img src=x" not in text(details)


def test_not_found_is_said_in_our_words_and_a_missing_project_is_404_to_admins(demo):
    """Routing's 404 in pages and in the API says what was asked for, not Werkzeug's stock
    text; a project id that names no project is 404 "no project" to an admin (who may know
    which projects exist) and 403 to an organiser of another project (who may not)."""
    _app, client, _data = demo
    stock = "The requested URL was not found on the server"
    page = client.get("/backups/no/such/page")
    assert page.status_code == 404 and stock not in text(page) and "There is nothing at /backups/no/such/page" in text(page)
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404 and api.get_json()["error"]["message"].startswith("There is nothing at /api/v1/no-such")
    assert stock not in api.get_data(as_text=True)
    missing = "a" * 24
    signed_in(client, "admin")
    assert client.get(f"/api/v1/projects/{missing}/backups").get_json()["error"] == {
        "status": 404, "code": "not_found", "message": f"no project {missing}"}
    assert client.get(f"/backups/projects/{missing}").status_code == 404
    signed_in(client, "org1")
    assert client.get(f"/api/v1/projects/{missing}/backups").status_code == 403  # not told whether it exists
