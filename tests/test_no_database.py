"""A backup never silently lacks its database: with no server named and no embedded
database for the run mode (a forgotten --db on a site whose records are on a server), a
backup, a restore and a restore's preview are refused, in one line saying what to give,
and no embedded database is made; a restore onto a new machine (no working folder
either) still makes the one it needs, and the demo still makes its own."""

import shutil
import time

import pytest
from flask import Flask

from conftest import tree_fingerprint
from strongroom.config import Config
from strongroom.errors import NoDatabase
from strongroom.policy import User
from strongroom.service import Strongroom
from strongroom.web import make_blueprint


@pytest.fixture
def without_database(service, config, site):
    """The demo site with a site and a project backup, then its embedded database gone:
    what a data dir whose records live on a server looks like without --db."""
    made = {"site": service.make_backup()["id"], "project": service.make_backup(site.project_ids[0])["id"]}
    shutil.rmtree(config.embedded_db_dir)
    return made


def _untouched(config):
    return tree_fingerprint(config.data_dir / "working"), tree_fingerprint(config.backups_root)


@pytest.mark.parametrize("project", [False, True], ids=["site", "project"])
def test_a_backup_without_a_database_is_refused_in_one_line_saying_to_pass_db_and_makes_none(
        cli_process, config, site, without_database, project):
    before = _untouched(config)
    args = ["backup", "--project", site.project_ids[0]] if project else ["backup"]

    result = cli_process(*args)

    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("strongroom: error: refusing to back up without the records")
    assert "pass --db mongodb://host/<name>" in lines[0] and result.stdout == ""
    assert not config.embedded_db_dir.exists()
    working, backups = _untouched(config)
    assert working == before[0]
    assert {k: v for k, v in backups.items() if "audit" not in k} == {
        k: v for k, v in before[1].items() if "audit" not in k}


@pytest.mark.parametrize("args", [["restore", "{site}", "--yes"], ["restore", "{site}", "--dry-run"],
                                  ["restore", "{project}", "--project", "{pid}", "--yes"],
                                  ["restore", "{site}", "--path", "site.json", "--yes"]],
                         ids=["restore", "dry-run", "project", "path"])
def test_a_restore_without_a_database_is_refused_and_changes_nothing(
        cli_process, config, site, without_database, args):
    values = {"site": without_database["site"], "project": without_database["project"], "pid": site.project_ids[0]}
    before = tree_fingerprint(config.data_dir / "working")

    result = cli_process(*[a.format(**values) for a in args])

    assert result.returncode == 3, result.stderr
    assert result.stderr.startswith("strongroom: error: refusing to ") and "pass --db" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not config.embedded_db_dir.exists()
    assert tree_fingerprint(config.data_dir / "working") == before


def test_a_restore_onto_a_new_machine_makes_the_embedded_database_it_needs(config, site, service, database):
    made = service.make_backup()["id"]
    records = {name: database[name].count_documents({}) for name in ("project", "edition", "user")}
    shutil.rmtree(config.embedded_db_dir)
    shutil.rmtree(config.data_dir / "working")

    result = Strongroom(config).restore_backup(made)

    assert result["restored"] == made
    fresh = Strongroom(config).database
    assert {name: fresh[name].count_documents({}) for name in records} == records


def test_an_import_makes_no_embedded_database(config, site, service, tmp_path, cli):
    made = service.make_backup()["id"]
    archive = tmp_path / "site.tar"
    assert cli("export", made, "-o", str(archive)).exit_code == 0
    shutil.rmtree(config.embedded_db_dir)

    imported = Strongroom(config).import_archive(archive.open("rb"))

    assert imported["reason"] == "import"
    assert not config.embedded_db_dir.exists()


def test_the_library_says_to_configure_the_database_not_to_pass_an_option(config, without_database):
    with pytest.raises(NoDatabase, match=r"configure the site's database \(STRONGROOM_DB"):
        Strongroom(config).make_backup()
    assert not config.embedded_db_dir.exists()


def test_the_web_face_refuses_a_backup_without_a_database_and_says_why(config, without_database):
    app = Flask("host")
    app.secret_key = "test"
    app.register_blueprint(make_blueprint(config, lambda: User("admin", "admin")))
    client = app.test_client()
    token = client.get("/api/v1/session").get_json()["csrf_token"]

    started = client.post("/api/v1/site/backups", json={}, headers={"X-CSRF-Token": token})
    job = _finished(client, started)

    assert job["state"] == "failed", job
    assert job["error"]["type"] == "NoDatabase" and "configure the site's database" in job["error"]["message"]
    assert " --db" not in job["error"]["message"], job["error"]["message"]
    assert not config.embedded_db_dir.exists()
    assert [b["id"] for b in Strongroom(config).list_backups()] == [without_database["site"]]


def _finished(client, started) -> dict:
    if started.status_code != 202:
        return {"state": "refused", "status": started.status_code, "body": started.get_json()}
    job_id = started.get_json()["job"]["id"]
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/api/v1/jobs/{job_id}").get_json()["job"]
        if job["state"] != "running" or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_the_demo_still_makes_its_embedded_database(tmp_path, cli_process):
    data = tmp_path / "demo"
    assert cli_process("--data-dir", str(data), "demo", "init", "--projects", "1", "--editions", "1").returncode == 0
    made = cli_process("--data-dir", str(data), "backup")
    assert made.returncode == 0, made.stderr
    assert (data / "db" / "pilot").is_dir()
    assert Config(data_dir=data).embedded_db_dir == data / "db" / "pilot"
