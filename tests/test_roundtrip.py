"""Backup → change → restore → equal, for the site and for a project, on both engines
(the embedded one and a real server: ``config`` is ``engine_config``)."""

import os
from pathlib import Path

import pytest
from bson import ObjectId

from conftest import records_fingerprint, tree_fingerprint
from strongroom.scopes import Scope, backups_root, project_queries, scope_dir


@pytest.fixture
def config(engine_config):
    return engine_config


def change_files(folder: Path) -> None:
    """Add, modify, delete and re-mode files, add a folder and a link."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    files[0].write_bytes(b"changed content")
    files[1].unlink()
    files[2].chmod(0o600)
    (folder / "added.txt").write_text("new file")
    (folder / "added-folder" / "deeper").mkdir(parents=True)
    (folder / "added-folder" / "deeper" / "x.bin").write_bytes(os.urandom(1000))
    (folder / "a-link").symlink_to("added.txt")


def change_records(database, project_id: str | None) -> None:
    """Add, modify and delete records (of the project, if given)."""
    oid = ObjectId(project_id) if project_id else None
    edition_query = {"projectId": oid} if oid else {}
    database.edition.insert_one({"projectId": oid or ObjectId(), "title": "added"})
    first = database.edition.find_one(edition_query)
    database.edition.update_one({"_id": first["_id"]}, {"$set": {"title": "modified"}})
    last = list(database.edition.find(edition_query))[-2]
    database.edition.delete_one({"_id": last["_id"]})
    database.project.update_one({"_id": oid} if oid else {}, {"$set": {"title": "renamed"}})
    if not project_id:
        database.user.delete_many({"role": "user"})
        database.extra.insert_one({"new": "collection"})


def test_site_round_trip_gives_back_every_file_and_record(service, config, database, site):
    live = scope_dir(config, Scope.site())
    before_files, before_records = tree_fingerprint(live), records_fingerprint(database)
    made = service.make_backup(note="before")

    change_files(live)
    change_records(database, None)
    changed_files, changed_records = tree_fingerprint(live), records_fingerprint(database)
    assert changed_files != before_files and changed_records != before_records

    result = service.restore_backup(made["id"])

    assert tree_fingerprint(live) == before_files
    assert records_fingerprint(database) == before_records
    assert result["pre_restore"] != made["id"]

    # The pre-restore backup holds the changed state, and restores it.
    pre = service.show_backup(result["pre_restore"])
    assert pre["reason"] == "pre-restore"
    service.restore_backup(result["pre_restore"])
    assert tree_fingerprint(live) == changed_files
    assert records_fingerprint(database) == changed_records


def test_project_round_trip_touches_no_other_project_and_no_user_data(service, config, database, site):
    project_id, other_id = site.project_ids[0], site.project_ids[1]
    live = scope_dir(config, Scope.project(project_id))
    other = scope_dir(config, Scope.project(other_id))
    queries = project_queries(config, project_id)
    before_files, before_records = tree_fingerprint(live), records_fingerprint(database, queries)
    made = service.make_backup(project_id)

    change_files(live)
    change_records(database, project_id)
    # Changes outside the project, made after the backup, must survive its restore.
    (other / "other-change.txt").write_text("keep me")
    database.user.insert_one({"user": "newcomer", "role": "user"})
    database.edition.update_one({"projectId": ObjectId(other_id)}, {"$set": {"title": "other changed"}})
    outside_files = tree_fingerprint(config.working_dir)
    outside_files = {k: v for k, v in outside_files.items() if not k.startswith(f"project/{project_id}")}
    outside_records = records_fingerprint(database)
    outside_records["edition"] = [d for d in outside_records["edition"] if d["projectId"] != ObjectId(project_id)]
    del outside_records["project"]

    service.restore_backup(made["id"], project_id)

    assert tree_fingerprint(live) == before_files
    assert records_fingerprint(database, queries) == before_records
    after_outside = {k: v for k, v in tree_fingerprint(config.working_dir).items()
                     if not k.startswith(f"project/{project_id}")}
    assert after_outside == outside_files
    after_records = records_fingerprint(database)
    after_records["edition"] = [d for d in after_records["edition"] if d["projectId"] != ObjectId(project_id)]
    del after_records["project"]
    assert after_records == outside_records
    assert database.project.count_documents({}) == len(site.project_ids)


def test_a_deleted_project_can_be_restored_from_its_backups(service, config, database, site):
    project_id = site.project_ids[2]
    live = scope_dir(config, Scope.project(project_id))
    queries = project_queries(config, project_id)
    before_files, before_records = tree_fingerprint(live), records_fingerprint(database, queries)
    made = service.make_backup(project_id)
    for name, query in queries.items():
        database[name].delete_many(query)
    import shutil
    shutil.rmtree(live)

    service.restore_backup(made["id"], project_id)

    assert tree_fingerprint(live) == before_files
    assert records_fingerprint(database, queries) == before_records


def test_restore_gives_back_modes_and_modification_times(service, config, site):
    live = config.working_dir
    target = next(p for p in live.rglob("*.json"))
    target.chmod(0o640)
    os.utime(target, ns=(1_600_000_000_123_456_789, 1_600_000_000_123_456_789))
    made = service.make_backup()
    target.chmod(0o666)
    target.write_text("{}")

    service.restore_backup(made["id"])

    st = target.stat()
    assert (st.st_mode & 0o777, st.st_mtime_ns) == (0o640, 1_600_000_000_123_456_789)


def test_symbolic_links_are_kept_as_links_and_special_files_skipped_with_a_warning(service, config, site):
    live = config.working_dir
    (live / "outside-link").symlink_to("/etc/passwd")
    os.mkfifo(live / "a-fifo")
    made = service.make_backup()
    shown = service.show_backup(made["id"])
    assert any("a-fifo" in w for w in shown["manifest"]["warnings"])
    (live / "outside-link").unlink()

    service.restore_backup(made["id"])

    assert os.readlink(live / "outside-link") == "/etc/passwd"
    assert not (live / "a-fifo").exists()


def test_restore_onto_an_unchanged_folder_copies_nothing(service, database, site):
    made = service.make_backup()
    change_records(database, None)  # so that the restore proper runs (onto the very same state it would not)
    result = service.restore_backup(made["id"])
    assert result["copied"] == 0 and result["kept"] == result["files"] > 0 and result["pre_restore"]


def test_a_restore_never_reuses_a_file_reached_through_a_symlinked_folder(service, config, site, tmp_path):
    live = config.working_dir
    made = service.make_backup()
    outside = tmp_path / "outside-images"
    import shutil
    shutil.copytree(live / "images", outside, copy_function=shutil.copy2)
    shutil.rmtree(live / "images")
    (live / "images").symlink_to(outside)

    result = service.restore_backup(made["id"])

    restored = live / "images" / "banner.png"
    assert not (live / "images").is_symlink()
    assert restored.stat().st_ino != (outside / "banner.png").stat().st_ino
    assert restored.stat().st_nlink == 1 and result["copied"] >= 1


def test_the_backup_after_a_restore_reads_nothing_the_restore_wrote(service, config, site):
    import shutil

    made = service.make_backup()
    shutil.rmtree(config.working_dir)  # a restore into an empty folder copies every file
    result = service.restore_backup(made["id"])
    assert result["copied"] == result["files"] > 0
    after = service.show_backup(service.make_backup()["id"])["manifest"]["files"]
    assert after["bytes_read"] == 0 and after["linked_unread"] == after["count"]
    (config.working_dir / "site.json").write_text('{"changed": 1}')
    later = service.show_backup(service.make_backup()["id"])["manifest"]["files"]
    assert later["count"] - later["linked_unread"] == 1  # the index is used once: then the backup's own list


@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_a_backup_verifies_names_a_damaged_dump_and_is_deleted_without_touching_the_records(
        service, config, database, site, scope_kind):
    project_id = None if scope_kind == "site" else site.project_ids[0]
    made = service.make_backup(project_id)
    kept = service.make_backup(project_id)
    records = records_fingerprint(database)
    assert service.verify_backup(made["id"], project_id)["ok"]

    dump = backups_root(config, Scope.of(project_id)) / made["id"] / "db" / "bson" / "edition.bson"
    dump.chmod(0o644)
    damaged = bytearray(dump.read_bytes())
    damaged[-2] ^= 0xFF
    dump.write_bytes(bytes(damaged))
    report = service.verify_backup(made["id"], project_id)
    assert not report["ok"] and any("edition.bson" in problem for problem in report["problems"])

    service.delete_backup(made["id"], project_id)

    assert [b["id"] for b in service.list_backups(project_id)] == [kept["id"]]
    assert service.verify_backup(kept["id"], project_id)["ok"]
    assert records_fingerprint(database) == records
