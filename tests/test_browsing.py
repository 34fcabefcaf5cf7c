"""Looking inside backups and comparing them: ls, cat, get, diff, and the record of each check."""

import io
import json
import os
import tarfile
import time

import pytest
from bson import ObjectId

from strongroom.errors import CorruptBackup, InvalidName, NotFound
from strongroom.repo import checks_record

TRAVERSALS = ["../etc", "/etc/passwd", "texts/../../x", "texts/./about.md", "a\0b", "texts//about.md"]


def stored(config, backup_id, rel, project_id=None):
    root = config.backups_dir / "site" if project_id is None else config.backups_dir / "project" / project_id
    return root / backup_id / "files" / rel


def untar(data: bytes) -> tarfile.TarFile:
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:gz")


def damage(path):
    """Change a stored file's content in place, keeping its size (as bit rot would)."""
    os.chmod(path, 0o600)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_ls_lists_folders_files_with_size_and_time_and_collections_with_record_counts(service, site, database):
    backup_id = service.make_backup(by="t")["id"]
    top = service.browse_backup(backup_id)
    folders = {f["name"]: f for f in top["folders"]}
    assert {"texts", "project", "images"} <= set(folders)
    texts = sorted((service.config.working_dir / "texts").iterdir())
    assert folders["texts"]["files"] == len(texts)
    assert folders["texts"]["bytes"] == sum(p.stat().st_size for p in texts)
    site_json = next(f for f in top["files"] if f["name"] == "site.json")
    assert site_json["size"] == (service.config.working_dir / "site.json").stat().st_size
    assert site_json["mtime"].startswith("2024-")
    assert top["collections"] == {name: database[name].count_documents({}) for name in top["collections"]}
    assert top["collections"]["edition"] == 6
    inside = service.browse_backup(backup_id, path="texts")
    assert sorted(f["name"] for f in inside["files"]) == [p.name for p in texts] and inside["folders"] == []


def test_ls_of_a_project_backup_shows_only_that_projects_folder_and_records(service, site):
    project_id = site.project_ids[0]
    backup_id = service.make_backup(project_id, by="t")["id"]
    top = service.browse_backup(backup_id, project_id)
    assert top["collections"]["project"] == 1
    names = [f["name"] for f in top["folders"] + top["files"]]
    assert names and not any(name in ("texts", "project", "site.json") for name in names)


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_paths_that_could_leave_the_backup_are_refused_before_anything_is_read(service, site, bad):
    backup_id = service.make_backup(by="t")["id"]
    for call in (lambda: service.browse_backup(backup_id, path=bad), lambda: service.backup_file(backup_id, None, bad),
                 lambda: service.backup_archive(backup_id, None, bad)):
        with pytest.raises(InvalidName):
            call()


def test_a_path_the_backup_does_not_hold_is_not_found(service, site):
    backup_id = service.make_backup(by="t")["id"]
    with pytest.raises(NotFound):
        service.browse_backup(backup_id, path="no/such/folder")
    with pytest.raises(NotFound):
        service.backup_file(backup_id, None, "texts")  # a folder is not a file
    with pytest.raises(NotFound):
        service.backup_archive(backup_id, None, "site.json")  # a file is not a folder


def test_cat_gives_the_file_as_backed_up_after_the_live_one_changed(service, site):
    live = service.config.working_dir / "site.json"
    before = live.read_bytes()
    backup_id = service.make_backup(by="t")["id"]
    live.write_bytes(b"changed since")
    entry, blocks = service.backup_file(backup_id, None, "site.json")
    assert b"".join(blocks) == before and entry["size"] == len(before)


def test_a_damaged_stored_file_is_never_delivered_whole(service, site, config):
    backup_id = service.make_backup(by="t")["id"]
    damage(stored(config, backup_id, "site.json"))
    _, blocks = service.backup_file(backup_id, None, "site.json")
    delivered = []
    with pytest.raises(CorruptBackup):
        delivered.extend(blocks)
    assert delivered == []  # the only block is held back until the hash matched: it did not


def test_a_folder_archive_holds_each_file_with_its_content_mode_and_time(service, site):
    backup_id = service.make_backup(by="t")["id"]
    name, blocks = service.backup_archive(backup_id, None, "project")
    assert name == f"{backup_id}-project.tar.gz"
    archive = untar(b"".join(blocks))
    live = service.config.working_dir / "project"
    members = {m.name: m for m in archive.getmembers()}
    files = [p for p in live.rglob("*") if p.is_file()]
    assert files and len([m for m in members.values() if m.isfile()]) == len(files)
    for path in files:
        member = members["project/" + str(path.relative_to(live))]
        assert archive.extractfile(member).read() == path.read_bytes()
        assert member.mode == path.stat().st_mode & 0o7777 and member.mtime == int(path.stat().st_mtime)
    whole, blocks = service.backup_archive(backup_id, None, "")
    assert whole == f"{backup_id}.tar.gz"
    assert f"{backup_id}/site.json" in untar(b"".join(blocks)).getnames()


def test_an_archive_with_a_damaged_file_fails_instead_of_ending_normally(service, site, config):
    backup_id = service.make_backup(by="t")["id"]
    damage(stored(config, backup_id, "texts/about.md"))
    _, blocks = service.backup_archive(backup_id, None, "texts")
    with pytest.raises(CorruptBackup):
        b"".join(blocks)


def change_things(service, database):
    work = service.config.working_dir
    (work / "texts" / "new.md").write_text("new")
    (work / "texts" / "about.md").unlink()
    (work / "site.json").write_text('{"changed": true}')
    os.utime(work / "texts" / "intro.md", (1e9, 1e9))  # touched, same content
    database["edition"].insert_one({"_id": ObjectId(), "title": "added"})
    first = database["edition"].find_one()
    database["edition"].update_one({"_id": first["_id"]}, {"$set": {"title": "renamed"}})
    database["user"].delete_one({"_id": database["user"].find_one()["_id"]})


def test_diff_of_two_backups_names_files_and_counts_records_added_removed_and_changed(service, site, database):
    old = service.make_backup(by="t")["id"]
    change_things(service, database)
    time.sleep(1.05)
    new = service.make_backup(by="t")["id"]
    report = service.diff_backups(old, new)
    files = report["files"]
    assert files["added"]["paths"] == ["texts/new.md"] and files["removed"]["paths"] == ["texts/about.md"]
    assert files["changed"]["paths"] == ["site.json"]  # intro.md was only touched: same content
    assert report["records"]["edition"] == {"added": 1, "removed": 0, "changed": 1, "unchanged": 5}
    assert report["records"]["user"]["removed"] == 1 and report["records"]["project"]["changed"] == 0


def test_diff_against_live_shows_what_changed_since_the_backup(service, site, database):
    old = service.make_backup(by="t")["id"]
    assert service.diff_backups(old)["files"]["changed"]["count"] == 0
    change_things(service, database)
    report = service.diff_backups(old, "live")
    assert report["to"] == "live"
    assert report["files"]["added"]["paths"] == ["texts/new.md"]
    assert report["files"]["removed"]["paths"] == ["texts/about.md"]
    assert report["files"]["changed"]["paths"] == ["site.json"]  # intro.md was only touched: same content
    assert report["records"]["edition"] == {"added": 1, "removed": 0, "changed": 1, "unchanged": 5}
    assert report["records"]["user"]["removed"] == 1


def test_verify_keeps_its_outcome_beside_the_manifest_and_a_clean_backup_stays_clean(service, site, config):
    backup_id = service.make_backup(by="t")["id"]
    folder = config.backups_dir / "site" / backup_id
    assert checks_record.last_check(folder) is None
    assert service.list_backups()[0]["last_check"] is None
    first = service.verify_backup(backup_id, by="admin")
    assert first["ok"] and first["checked"]["ok"] and first["checked"]["by"] == "admin"
    assert checks_record.last_check(folder) == first["checked"]
    assert (folder / checks_record.CHECKED).stat().st_mode & 0o077 == 0
    assert service.verify_backup(backup_id)["ok"]  # the record is not taken for an added file
    damage(stored(config, backup_id, "site.json"))
    failed = service.verify_backup(backup_id)
    assert not failed["ok"] and checks_record.last_check(folder)["ok"] is False
    assert "site.json" in checks_record.last_check(folder)["problems"][0]
    assert service.list_backups()[0]["last_check"]["ok"] is False


def test_a_record_that_is_not_one_reads_as_never_checked(tmp_path):
    (tmp_path / checks_record.CHECKED).write_text('{"at": "yesterday", "ok": "yes"}')
    assert checks_record.last_check(tmp_path) is None
    (tmp_path / checks_record.CHECKED).write_text("not json")
    assert checks_record.last_check(tmp_path) is None


# -- the command line -------------------------------------------------------------------


def test_cli_ls_cat_get_and_diff(cli, site, config, tmp_path):
    backup_id = cli("backup").output.strip()
    listed = cli("ls", backup_id)
    assert listed.exit_code == 0 and "texts/" in listed.output and "edition" in listed.output
    as_json = json.loads(cli("ls", backup_id, "texts/", "--json").output)  # as shell completion types it
    assert {f["name"] for f in as_json["files"]} >= {"about.md"}
    about = (config.working_dir / "texts" / "about.md").read_bytes()
    assert cli("cat", backup_id, "texts/about.md").stdout_bytes == about
    target = tmp_path / "texts.tar.gz"
    assert cli("get", backup_id, "texts", "--to", str(target)).exit_code == 0
    assert untar(target.read_bytes()).extractfile("texts/about.md").read() == about
    again = cli("get", backup_id, "texts", "--to", str(target))
    assert again.exit_code == 2 and "exists already" in again.output
    (config.working_dir / "texts" / "about.md").write_text("edited")
    diffed = cli("diff", backup_id)
    assert diffed.exit_code == 0 and "~ texts/about.md" in diffed.output
    assert json.loads(cli("diff", backup_id, "live", "--json").output)["files"]["changed"]["count"] == 1


def test_cli_refuses_traversal_with_exit_2_and_a_missing_path_with_exit_3(cli, site):
    backup_id = cli("backup").output.strip()
    for bad in TRAVERSALS[:3]:
        for command in ("ls", "cat"):
            result = cli(command, backup_id, bad)
            assert result.exit_code == 2, (command, bad, result.output)
    assert cli("ls", backup_id, "nothing/here").exit_code == 3
    assert cli("cat", "2030-01-01T00-00-00", "site.json").exit_code == 3


def test_cli_get_of_a_damaged_file_exits_5_and_leaves_no_file(cli, site, config, tmp_path):
    backup_id = cli("backup").output.strip()
    damage(stored(config, backup_id, "site.json"))
    target = tmp_path / "site.json"
    result = cli("get", backup_id, "site.json", "--to", str(target))
    assert result.exit_code == 5 and not target.exists()


def test_a_project_diff_counts_only_that_projects_files_and_records(service, site, database):
    project_id, other = site.project_ids[:2]
    backup_id = service.make_backup(project_id, by="t")["id"]
    database["edition"].insert_one({"_id": ObjectId(), "projectId": ObjectId(other), "title": "elsewhere"})
    database["edition"].insert_one({"_id": ObjectId(), "projectId": ObjectId(project_id), "title": "here"})
    (service.config.working_dir / "texts" / "about.md").write_text("site file, not the project's")
    report = service.diff_backups(backup_id, "live", project_id)
    assert report["records"]["edition"]["added"] == 1 and set(report["records"]) == {"project", "edition"}
    assert report["files"]["changed"]["count"] == report["files"]["added"]["count"] == 0
