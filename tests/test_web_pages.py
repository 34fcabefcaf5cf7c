"""The panel's pages in words: styled 404 and 405 pages (the API keeps JSON), the
maintenance notice said once, plurals and sizes in one style, the list's pages and filter."""

import re

from conftest import give_the_restore_work
from strongroom.service import Strongroom
from strongroom.web import create_app
from web_support import csrf_token, host_app, paused_job, prepared, wait_for_jobs, web_data  # noqa: F401


def demo_client(web_data, user="admin"):
    app = create_app(web_data.config("pilot"), secret_key="test")
    client = app.test_client()
    client.post("/signin", data={"csrf_token": csrf_token(client), "user": user})
    return app, client


def test_a_missing_page_and_a_wrong_method_get_styled_pages_not_werkzeugs(web_data):
    _, client = demo_client(web_data)
    for path in ("/no/such/page", "/backups/site/2026-11-26T04-27-43/details/extra", "/projects/x/y/z"):
        missing = client.get(path)
        page = missing.get_data(as_text=True)
        assert missing.status_code == 404 and 'class="sr-error"' in page and "Not found" in page, path
        assert "Strongroom demo" in page  # the app's own layout
    wrong = client.get("/backups/site/make")
    assert wrong.status_code == 405 and 'class="sr-error"' in wrong.get_data(as_text=True)
    assert "POST" in wrong.headers["Allow"]
    api = client.get("/api/v1/nothing-here")
    assert api.status_code == 404 and api.get_json()["error"]["status"] == 404


def test_a_host_app_gets_styled_pages_under_the_panels_paths_and_keeps_its_own_elsewhere(web_data):
    client = host_app(web_data.config("pilot")).test_client()
    ours = client.get("/backups/site/2026-11-26T04-27-43/nothing", headers={"X-Test-User": "admin"})
    assert ours.status_code == 404 and 'class="sr-error"' in ours.get_data(as_text=True)
    theirs = client.get("/host/elsewhere")
    assert theirs.status_code == 404 and 'class="sr-error"' not in theirs.get_data(as_text=True)


def test_the_maintenance_notice_is_said_once_on_every_page(web_data):
    app, client = demo_client(web_data)
    token = csrf_token(client)
    backup = web_data.backups["pilot"]["A"]
    give_the_restore_work(web_data.folder(web_data.project_a))
    with paused_job(lambda kind, detail: kind == "delete") as (reached, release):
        client.post(f"/backups/projects/{web_data.project_a}/{backup}/restore", data={"csrf_token": token})
        assert reached.wait(10)
        for path in (f"/projects/{web_data.project_a}", f"/projects/{web_data.project_b}", "/admin"):
            page = client.get(path).get_data(as_text=True)
            assert page.count("Maintenance: a restore of project") == 1, path
        release.set()
    wait_for_jobs(app)


def test_counts_have_their_plurals_and_sizes_one_style(web_data):
    _, client = demo_client(web_data)
    admin = client.get("/admin").get_data(as_text=True)
    assert "project(s)" not in admin and re.search(r"<td>0 projects</td>", admin)
    assert re.search(r"<td>1 project</td>", admin)
    project = client.get(f"/projects/{web_data.project_a}").get_data(as_text=True)
    assert " bytes<" not in project and re.search(r"\(\d+ B\)", project)


def test_prune_says_one_backup_not_one_backups(cli, site):
    cli("backup")
    cli("backup")
    assert "Would delete 1 backup, kept 1 (0 B would be freed)." in cli("prune", "--keep-last", "1", "--dry-run").output


def test_the_panel_shows_20_backups_a_page_and_can_hide_pre_restore_ones(web_data):
    service = Strongroom(web_data.config("pilot"))
    for n in range(22):
        service.make_backup(note=f"n{n}", reason="pre-restore" if n % 2 else "manual", by="admin")
    _, client = demo_client(web_data)
    rows = lambda page: re.findall(r'<tr data-backup-id="([^"]+)"', page)
    first = client.get("/admin").get_data(as_text=True)
    assert len(rows(first)) == 20 and "Page 1 of 2" in first
    second = client.get("/admin?sr_page=2").get_data(as_text=True)
    assert len(rows(second)) == 3 and not set(rows(first)) & set(rows(second))
    assert rows(client.get("/admin?sr_page=999").get_data(as_text=True)) == rows(second)
    assert rows(client.get("/admin?sr_page=-1").get_data(as_text=True)) == rows(first)
    hidden = client.get("/admin?sr_hide=pre-restore").get_data(as_text=True)
    assert len(rows(hidden)) == 12 and "11 pre-restore hidden" in hidden and "Page 1 of" not in hidden
    assert ">pre-restore</td>" not in hidden
