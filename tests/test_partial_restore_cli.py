"""``strongroom restore --path/--to/--project``: partial restores from the command line."""

import json

from bson import ObjectId

from conftest import records_fingerprint, tree_fingerprint


def test_restore_path_puts_back_one_file_says_records_stay_and_leaves_the_rest(cli, config, database, site):
    backup_id = cli("backup").output.strip()
    live = config.working_dir
    original = (live / "site.json").read_bytes()
    (live / "site.json").write_text("{}")
    (live / "images" / "banner.png").write_bytes(b"changed outside")
    database.user.insert_one({"user": "newcomer"})
    records = records_fingerprint(database)

    result = cli("restore", backup_id, "--path", "site.json", "--yes")

    assert result.exit_code == 0, result.output
    assert "Restored site.json of the site" in result.output
    assert "Records were not restored" in result.output
    assert (live / "site.json").read_bytes() == original
    assert (live / "images" / "banner.png").read_bytes() == b"changed outside"
    assert records_fingerprint(database) == records


def test_restore_path_asks_first_and_dry_run_changes_nothing(cli, config, site):
    backup_id = cli("backup").output.strip()
    (config.working_dir / "texts" / "added.txt").write_text("x")
    before = tree_fingerprint(config.working_dir)

    refused = cli("restore", backup_id, "--path", "texts")
    shown = cli("restore", backup_id, "--path", "texts", "--dry-run")
    as_json = json.loads(cli("restore", backup_id, "--path", "texts", "--dry-run", "--json").output)

    assert refused.exit_code == 2 and "--yes" in refused.output
    assert shown.exit_code == 0 and "texts/added.txt" in shown.output and "records: not restored" in shown.output
    assert as_json["parts"] == ["texts"] and as_json["files"]["removed"]["paths"] == ["texts/added.txt"]
    assert tree_fingerprint(config.working_dir) == before


def test_restore_of_several_paths_and_a_missing_one_exits_3_naming_it(cli, config, site):
    backup_id = cli("backup").output.strip()
    (config.working_dir / "site.json").write_text("{}")
    before = tree_fingerprint(config.working_dir)

    result = cli("restore", backup_id, "--path", "site.json", "--path", "no/such/file", "--yes")

    assert result.exit_code == 3 and "holds no no/such/file" in result.output
    assert tree_fingerprint(config.working_dir) == before


def test_restore_to_writes_into_a_folder_and_refuses_the_live_tree(cli, config, site, tmp_path):
    backup_id = cli("backup").output.strip()
    before = tree_fingerprint(config.working_dir)

    written = cli("restore", backup_id, "--path", "texts", "--to", str(tmp_path / "out"))
    inside = cli("restore", backup_id, "--path", "texts", "--to", str(config.working_dir / "out"), "--yes")

    assert written.exit_code == 0 and "nothing live changed" in written.output, written.output
    assert sorted(p.name for p in (tmp_path / "out" / "texts").iterdir()) == \
        sorted(p.name for p in (config.working_dir / "texts").iterdir())
    assert inside.exit_code == 2 and "inside the live files" in inside.output
    assert tree_fingerprint(config.working_dir) == before


def test_restore_project_from_a_site_backup_puts_back_that_project(cli, config, database, site):
    backup_id = cli("backup").output.strip()
    project = site.project_ids[0]
    database.edition.delete_many({"projectId": ObjectId(project)})
    (config.working_dir / "project" / project / "about.md").unlink()

    result = cli("restore", backup_id, "--project", project, "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["records_restored"] is True
    assert database.edition.count_documents({"projectId": ObjectId(project)}) == 2
    assert (config.working_dir / "project" / project / "about.md").is_file()


def test_restore_from_site_takes_the_project_out_of_the_site_backup(cli, config, site):
    backup_id = cli("backup").output.strip()
    project = site.project_ids[1]
    about = config.working_dir / "project" / project / "about.md"
    original = about.read_bytes()
    about.write_text("changed")

    shown = cli("restore", backup_id, "--project", project, "--from-site", "--dry-run")
    result = cli("restore", backup_id, "--project", project, "--from-site", "--yes")

    assert shown.exit_code == 0 and "about.md" in shown.output and "records edition" in shown.output
    assert result.exit_code == 0 and f"out of site backup {backup_id}" in result.output, result.output
    assert about.read_bytes() == original
    assert cli("restore", backup_id, "--from-site", "--yes").exit_code == 3  # no project named
