"""Browse, download, compare and check from the panel and the API: who may, what they get,
and that no URL reaches outside a backup they may see."""

import io
import tarfile

import pytest

from strongroom.policy import VIEW, can
from strongroom.repo.checks_record import last_check
from strongroom.scopes import Scope
from web_support import csrf_token, host_app, last_job, prepared, state_of, wait_for_jobs, web_data  # noqa: F401

USERS = {"anonymous": "", "plain user": "user1", "organiser of A": "org1", "organiser of B": "org2",
         "admin": "admin", "root": "root"}
READS = ("browse", "download", "archive", "diff")
OPS = (*READS, "check")


def scope_path(web_data, scope: str) -> str:
    return "site" if scope == "site" else f"projects/{web_data.project_a if scope == 'A' else web_data.project_b}"


def a_file(web_data, scope: str) -> str:
    """A path of a file each demo backup holds."""
    return "site.json" if scope == "site" else "about.md"


def request(client, face, op, scope_path, backup_id, user, path="", token=""):
    headers = {"X-Test-User": user}
    if face == "api":
        base = f"/api/v1/{scope_path}/backups/{backup_id}"
        urls = {"browse": f"{base}/browse", "download": f"{base}/download", "archive": f"{base}/archive",
                "diff": f"{base}/diff"}
        if op == "check":
            return client.post(f"{base}/check", headers={**headers, "X-CSRF-Token": token})
    else:
        base = f"/backups/{scope_path}/{backup_id}"
        urls = {"browse": f"{base}/details", "download": f"{base}/download", "archive": f"{base}/archive",
                "diff": f"{base}/changes"}
        if op == "check":
            return client.post(f"{base}/check", data={"csrf_token": token}, headers=headers)
    return client.get(urls[op], query_string={"path": path} if path else None, headers=headers)


def users_by_name(app):
    from web_support import users_of

    return users_of(app.config["factory"]().database)


@pytest.mark.parametrize("face", ["api", "pages"])
@pytest.mark.parametrize("scope", ["site", "A"])
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("user", list(USERS))
def test_browse_download_diff_and_check_follow_the_panels_permissions(web_data, user, op, scope, face):
    config = web_data.config("pilot")
    app = host_app(config)
    client = app.test_client()
    project_id = None if scope == "site" else web_data.project_a
    allowed = can(users_by_name(app).get(USERS[user]), VIEW, Scope.of(project_id), "pilot")
    backup_id = web_data.backups["pilot"][scope]
    before = state_of(config)
    path = a_file(web_data, scope) if op == "download" else ""

    response = request(client, face, op, scope_path(web_data, scope), backup_id, USERS[user], path,
                       csrf_token(client, USERS[user]))

    if not allowed:
        assert response.status_code == 403, response.get_data(as_text=True)[:300]
        assert state_of(config) == before
        return
    if op == "check":
        assert response.status_code == (202 if face == "api" else 303)
        wait_for_jobs(app)
        job = last_job(app)
        assert job.state == "done" and job.result["ok"], job.error
        folder = config.backups_dir / ("site" if scope == "site" else f"project/{project_id}") / backup_id
        assert last_check(folder)["by"] == USERS[user] and last_check(folder)["ok"]
        return
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert state_of(config) == before  # looking changes nothing


@pytest.mark.parametrize("face", ["api", "pages"])
@pytest.mark.parametrize("op", OPS)
def test_organiser_of_b_cannot_reach_a_backup_of_a_through_b_urls(web_data, op, face):
    config = web_data.config("pilot")
    app = host_app(config)
    client = app.test_client()
    before = state_of(config)
    response = request(client, face, op, scope_path(web_data, "B"), web_data.backups["pilot"]["A"], "org2",
                       "about.md" if op == "download" else "", csrf_token(client, "org2"))
    assert response.status_code == 404
    wait_for_jobs(app)
    assert state_of(config) == before


TRAVERSALS = ["../../../../etc/passwd", "/etc/passwd", "..", "../site", "x/../../..", "%2e%2e/%2e%2e",
              "a\x00b", "./site.json", "texts//about.md"]


@pytest.mark.parametrize("face", ["api", "pages"])
@pytest.mark.parametrize("op", ["browse", "download", "archive"])
@pytest.mark.parametrize("bad", TRAVERSALS)
def test_paths_in_the_url_that_leave_the_backup_are_refused(web_data, face, op, bad):
    config = web_data.config("pilot")
    client = host_app(config).test_client()
    site = web_data.backups["pilot"]["site"]
    response = request(client, face, op, "site", site, "admin", bad)
    assert response.status_code in (400, 404), (bad, response.status_code)
    body = response.get_data()
    assert b"root:" not in body and config.site_key_path.read_bytes() not in body


@pytest.mark.parametrize("url", ["/backups/site/..%2f..%2fetc/download?path=passwd",
                                 "/api/v1/site/backups/..%2F..%2Fetc/download?path=passwd",
                                 "/backups/site/2026-11-26T04-27-43%2f..%2f../download?path=x",
                                 "/api/v1/projects/..%2fsite/backups/x/archive"])
def test_ids_in_the_url_that_leave_the_backups_are_refused(web_data, url):
    client = host_app(web_data.config("pilot")).test_client()
    response = client.get(url, headers={"X-Test-User": "admin"})
    assert response.status_code in (400, 404)
    assert b"root:" not in response.get_data()


def test_a_file_download_is_the_backed_up_content_as_an_attachment(web_data):
    config = web_data.config("pilot")
    client = host_app(config).test_client()
    live = config.working_dir / "site.json"
    backed_up = live.read_bytes()
    live.write_text("changed since")
    response = request(client, "pages", "download", "site", web_data.backups["pilot"]["site"], "admin", "site.json")
    assert response.status_code == 200 and response.get_data() == backed_up
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "site.json" in response.headers["Content-Disposition"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert int(response.headers["Content-Length"]) == len(backed_up)


def test_a_folder_download_is_a_tar_gz_of_that_folder(web_data):
    config = web_data.config("pilot")
    client = host_app(config).test_client()
    site = web_data.backups["pilot"]["site"]
    response = request(client, "api", "archive", "site", site, "admin", "texts")
    assert response.status_code == 200 and response.mimetype == "application/gzip"
    with tarfile.open(fileobj=io.BytesIO(response.get_data()), mode="r:gz") as archive:
        for path in (config.working_dir / "texts").iterdir():
            assert archive.extractfile(f"texts/{path.name}").read() == path.read_bytes()


def test_the_details_page_browses_folders_files_and_collections(web_data):
    config = web_data.config("pilot")
    client = host_app(config).test_client()
    site = web_data.backups["pilot"]["site"]
    top = request(client, "pages", "browse", "site", site, "admin").get_data(as_text=True)
    assert 'data-path="texts"' in top and 'data-path="site.json"' in top and "edition" in top
    inside = request(client, "pages", "browse", "site", site, "admin", "texts").get_data(as_text=True)
    assert 'data-path="texts/about.md"' in inside and 'data-path="site.json"' not in inside
    listing = request(client, "api", "browse", "site", site, "admin").get_json()["listing"]
    assert listing["collections"]["edition"] > 0 and {f["name"] for f in listing["folders"]} >= {"texts"}


def test_the_changes_page_and_the_api_show_what_changed_since_a_backup(web_data):
    config = web_data.config("pilot")
    client = host_app(config).test_client()
    site = web_data.backups["pilot"]["site"]
    (config.working_dir / "texts" / "about.md").write_text("edited")
    page = request(client, "pages", "diff", "site", site, "admin").get_data(as_text=True)
    assert 'data-kind="changed" data-count="1"' in page and "texts/about.md" in page
    diff = request(client, "api", "diff", "site", site, "admin").get_json()["diff"]
    assert diff["files"]["changed"]["paths"] == ["texts/about.md"] and diff["to"] == "live"
    a_later = client.get(f"/api/v1/site/backups/{site}/diff", query_string={"against": "../x"},
                         headers={"X-Test-User": "admin"})
    assert a_later.status_code == 400


def test_check_needs_post_and_the_csrf_token_and_the_panel_then_shows_it(web_data):
    config = web_data.config("pilot")
    app = host_app(config)
    client = app.test_client()
    site = web_data.backups["pilot"]["site"]
    assert client.get(f"/backups/site/{site}/check", headers={"X-Test-User": "admin"}).status_code == 405
    refused = client.post(f"/backups/site/{site}/check", headers={"X-Test-User": "admin"})
    assert refused.status_code in (400, 403) and app.extensions["strongroom"].runner.running() is None
    assert "never checked" in client.get("/backups/site", headers={"X-Test-User": "admin"}).get_data(as_text=True)
    done = request(client, "pages", "check", "site", site, "admin", token=csrf_token(client, "admin"))
    wait_for_jobs(app)
    job_page = client.get(done.headers["Location"], headers={"X-Test-User": "admin"}).get_data(as_text=True)
    assert "checked: every file and record is as it was made" in job_page
    panel = client.get("/backups/site", headers={"X-Test-User": "admin"}).get_data(as_text=True)
    assert 'data-checked="ok"' in panel and "checked" in panel


def test_a_check_that_finds_damage_says_so_in_the_list(web_data):
    config = web_data.config("pilot")
    app = host_app(config)
    client = app.test_client()
    site = web_data.backups["pilot"]["site"]
    stored = config.backups_dir / "site" / site / "files" / "site.json"
    stored.chmod(0o600)
    stored.write_bytes(stored.read_bytes()[:-1] + b"?")
    request(client, "api", "check", "site", site, "admin", token=csrf_token(client, "admin"))
    wait_for_jobs(app)
    listed = client.get("/api/v1/site/backups", headers={"X-Test-User": "admin"}).get_json()["backups"]
    checked = next(b for b in listed if b["id"] == site)["last_check"]
    assert checked["ok"] is False and "site.json" in checked["problems"][0]
    assert 'data-checked="failed"' in client.get("/backups/site", headers={"X-Test-User": "admin"}).get_data(as_text=True)


def test_check_is_allowed_in_prod_for_those_who_see_the_backups(web_data):
    config = web_data.config("prod")
    app = host_app(config)
    client = app.test_client()
    response = request(client, "api", "check", "site", web_data.backups["prod"]["site"], "admin",
                       token=csrf_token(client, "admin"))
    assert response.status_code == 202
    wait_for_jobs(app)
    assert app.extensions["strongroom"].runner.get(response.get_json()["job"]["id"]).result["ok"]


def test_a_file_whose_name_is_not_utf8_or_holds_markup_is_listed_and_downloadable_by_its_link(web_data):
    import os
    import re
    from html import unescape

    from strongroom.service import Strongroom

    config = web_data.config("pilot")
    odd = {b"caf\xe9-latin1.txt": b"latin", b"new\nline<img src=x>&.txt": b"markup", "naïve ü.txt".encode(): b"utf8"}
    for name, content in odd.items():
        (config.working_dir / "texts" / os.fsdecode(name)).write_bytes(content)
    made = Strongroom(config).make_backup(by="t")["id"]
    client = host_app(config).test_client()
    page = request(client, "pages", "browse", "site", made, "admin", "texts")
    assert page.status_code == 200 and "<img src=x" not in page.get_data(as_text=True)
    links = [unescape(link) for link in re.findall(r'href="([^"]*/download\?path=[^"]*)"', page.get_data(as_text=True))]
    got = {client.get(link, headers={"X-Test-User": "admin"}).get_data() for link in links}
    assert set(odd.values()) <= got
