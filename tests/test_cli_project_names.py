"""What the CLI prints names a project as people know it, by its title, with the id to
type next: list, status, log, the errors of show, a project taken out of a site backup."""

import pytest
from bson import ObjectId


@pytest.fixture
def named(site, database, service):
    """The demo site's first project, its title as the CLI shows it, and a site backup
    and a backup of that project."""
    project = site.project_ids[0]
    title = database["project"].find_one({"_id": ObjectId(project)})["title"]
    made = {"site": service.make_backup()["id"], "project": service.make_backup(project)["id"]}
    return project, f"project “{title}” ({project})", made


def test_list_of_a_project_names_it_by_title_and_id_above_its_rows_even_down_a_pipe(cli_process, named):
    project, name, made = named
    result = cli_process("list", "--project", project)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    heading, *rows = result.stdout.splitlines()
    assert heading == f"Backups of {name}, newest first:"
    assert [row.split()[0] for row in rows] == [made["project"]]
    assert cli_process("list").stdout.split()[0] == made["site"]  # the site's rows come alone down a pipe


def test_list_of_a_project_without_backups_names_it_by_title_and_id(cli_process, site, database, named):
    other = site.project_ids[1]
    title = database["project"].find_one({"_id": ObjectId(other)})["title"]
    result = cli_process("list", "--project", other)
    assert result.stdout == f"No backups of project “{title}” ({other}).\n"


def test_status_names_each_project_by_title(cli_process, named):
    _project, name, _made = named
    lines = cli_process("status").stdout.splitlines()
    assert any(line.strip().startswith(name) for line in lines), lines
    assert any(line.strip().startswith("the whole site") for line in lines), lines


def test_log_names_each_project_by_title(cli_process, named):
    _project, name, made = named
    lines = [line for line in cli_process("log").stdout.splitlines() if made["project"] in line and "backup" in line]
    assert any(f"  {name}  {made['project']}" in line for line in lines), lines


def test_show_of_a_missing_backup_of_a_project_names_the_project_by_title(cli_process, named):
    project, name, _made = named
    result = cli_process("show", "2001-01-01T00-00-00", "--project", project)
    assert result.returncode == 3
    assert result.stderr == f"strongroom: error: no backup 2001-01-01T00-00-00 of {name}\n"


def test_a_project_out_of_a_site_backup_is_named_by_title(cli_process, named):
    project, name, made = named
    result = cli_process("restore", made["site"], "--project", project, "--from-site", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"Restoring all files of {name} (out of site backup {made['site']}) from ")


def test_a_site_backup_without_the_project_says_so_naming_it_by_title(cli_process, database, named):
    _project, _name, made = named
    newer = ObjectId()
    database["project"].insert_one({"_id": newer, "title": "Made after the backup"})
    result = cli_process("restore", made["site"], "--project", str(newer), "--from-site", "--yes")
    assert result.returncode == 3
    assert result.stderr == (f"strongroom: error: site backup {made['site']} holds no project “Made after the "
                             f"backup” ({newer}): nothing was changed\n")
