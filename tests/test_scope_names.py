"""Projects are named by their titles, everywhere people read them: the CLI's list, show,
questions and results, the panel's headings and the flashed outcomes. One function names
a scope (``scopes.scope_name``); it falls back to the id, and never fails a command."""

import os
import pty
import re
import subprocess
import sys

import pytest
from bson import ObjectId

from strongroom.config import Config
from strongroom.scopes import Scope, scope_name
from strongroom.service import Strongroom
from strongroom.web import create_app


def title_of(database, project_id: str) -> str:
    return database["project"].find_one({"_id": ObjectId(project_id)})["title"]


def test_the_site_and_a_project_are_named_as_people_know_them(config, database, site):
    project_id = site.project_ids[0]
    assert scope_name(config, database, Scope.site()) == "the whole site"
    assert scope_name(config, database, Scope.project(project_id)) == f"project “{title_of(database, project_id)}”"


def test_a_project_without_a_title_or_a_record_or_a_database_is_named_by_its_id(config, database, site):
    project_id = site.project_ids[0]
    database["project"].update_one({"_id": ObjectId(project_id)}, {"$unset": {"title": 1}})
    assert scope_name(config, database, Scope.project(project_id)) == f"project {project_id}"
    gone = "6548a1b2c3d4e5f601234567"
    assert scope_name(config, database, Scope.project(gone)) == f"project {gone}"
    assert scope_name(config, None, Scope.project(gone)) == f"project {gone}"


def test_a_long_title_is_shortened_and_white_space_folded(config, database, site):
    project_id = site.project_ids[0]
    database["project"].update_one({"_id": ObjectId(project_id)}, {"$set": {"title": "  A  " + "b" * 300}})
    name = scope_name(config, database, Scope.project(project_id))
    assert name.startswith("project “A bbb") and name.endswith("…”") and len(name) < 100


def test_naming_a_scope_makes_no_embedded_database(tmp_path):
    (tmp_path / "data").mkdir()
    service = Strongroom(Config(data_dir=tmp_path / "data", mode="test"))
    assert service.scope_name("6548a1b2c3d4e5f601234567") == "project 6548a1b2c3d4e5f601234567"
    assert not (tmp_path / "data" / "db").exists()


def output_on_a_terminal(config, args) -> str:
    """What the command prints when its standard output is a terminal."""
    leader, follower = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                               stdout=follower, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the command has closed its terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    process.wait(60)
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_the_cli_names_the_project_by_title_in_list_show_and_results(cli, config, database, site):
    project_id = site.project_ids[0]
    title = title_of(database, project_id)
    backup_id = cli("backup", "--project", project_id).output.strip()
    named = f"project “{title}” ({project_id})"
    listed = cli("list", "--project", project_id).output
    assert listed.splitlines()[0] == f"Backups of {named}, newest first:"  # down a pipe too
    assert listed.splitlines()[1].startswith(backup_id)
    on_a_terminal = output_on_a_terminal(config, ["list", "--project", project_id])
    assert on_a_terminal.splitlines()[0] == f"Backups of {named}, newest first:"
    assert on_a_terminal.splitlines()[1].startswith(backup_id)
    assert f"Backup {backup_id} of project “{title}” (pilot)" in cli("show", backup_id, "--project", project_id).output
    deleted = cli("delete", backup_id, "--project", project_id, "--yes").output
    assert deleted.startswith(f"Deleted {backup_id} of project “{title}” (")
    assert cli("list", "--project", project_id).output.strip() == f"No backups of {named}."
    assert cli("list").output.strip() == "No backups of the whole site."


def test_the_cli_shows_a_title_with_control_characters_escaped(cli, database, site):
    project_id = site.project_ids[0]
    database["project"].update_one({"_id": ObjectId(project_id)}, {"$set": {"title": "Evil\x1b[2Jtitle"}})
    backup_id = cli("backup", "--project", project_id).output.strip()
    shown = cli("show", backup_id, "--project", project_id).output
    assert "\x1b" not in shown and "Evil\\x1b[2Jtitle" in shown


def test_the_question_before_a_restore_names_the_project(config, cli, database, site):
    project_id = site.project_ids[0]
    backup_id = cli("backup", "--project", project_id).output.strip()
    from test_cli_one_line import run_on_a_terminal

    _, _, question = run_on_a_terminal(config, ["restore", backup_id, "--project", project_id], b"n\n")
    assert f"Replace project “{title_of(database, project_id)}” by backup {backup_id}?" in question


@pytest.fixture
def app_and_client(config, database, site):
    app = create_app(config, secret_key="test")
    client = app.test_client()
    token = client.get("/api/v1/session").get_json()["csrf_token"]
    client.post("/signin", data={"csrf_token": token, "user": "admin"})
    return app, client


def test_the_panel_heading_and_the_flash_name_the_project_by_title(app_and_client, database, site):
    from web_support import csrf_token, wait_for_jobs

    app, client = app_and_client
    project_id = site.project_ids[0]
    title = title_of(database, project_id)
    page = client.get(f"/projects/{project_id}").get_data(as_text=True)
    assert f"Backups of project “{title}”" in page and f"Backups of project {project_id}" not in page
    made = client.post(f"/backups/projects/{project_id}/make", data={"csrf_token": csrf_token(client), "note": ""})
    wait_for_jobs(app)
    job_page = client.get(made.location).get_data(as_text=True)
    assert re.search(f"Backup \\S+ of project “{re.escape(title)}” made \\(", job_page)
    assert "Backup of project “" + title + "”" in job_page  # the job page's heading
