"""A restore onto a scope that already is the backup's state changes nothing and saves
nothing first; the least difference, in a file, a folder, a link or a record, makes the
restore proper run (pre-restore backup, build, swap), on both engines."""

import dataclasses
import os
from pathlib import Path

import pytest
from bson import ObjectId

from conftest import records_fingerprint, tree_fingerprint
from on_both_engines import config, database  # noqa: F401 - fixtures
from strongroom.config import DataModel
from strongroom.db.dbdump import collection_metadata
from strongroom.errors import CorruptBackup, RestoreFailed
from strongroom.repo import checkedlist
from strongroom.restore import matching
from strongroom.scopes import Scope, backups_root, project_queries, scope_dir
from strongroom.service import Strongroom


def inodes(root: Path) -> dict[str, int]:
    return {p.relative_to(root).as_posix(): p.lstat().st_ino for p in root.rglob("*")}


def test_restoring_the_state_the_site_is_in_changes_nothing_and_makes_no_backup(service, config, database, site):
    live = scope_dir(config, Scope.site())
    made = service.make_backup()
    files, records, ids = tree_fingerprint(live), records_fingerprint(database), inodes(live)

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is True and result["pre_restore"] is None
    assert result["copied"] == 0 and result["bytes_copied"] == 0 and result["kept"] == made["files"]
    assert [b["id"] for b in service.list_backups()] == [made["id"]]  # no pre-restore backup
    assert tree_fingerprint(live) == files and records_fingerprint(database) == records
    assert inodes(live) == ids  # not one file rewritten or relinked
    logged = service.last_audit_entries(1)[0]
    assert logged["operation"] == "restore" and logged["outcome"] == "ok" and logged.get("pre_restore") is None


def test_the_state_a_restore_leaves_is_recognised_by_the_next_restore(service, config, database, site):
    live = scope_dir(config, Scope.site())
    made = service.make_backup()
    (live / "added.txt").write_text("to be removed by the restore")
    first = service.restore_backup(made["id"])
    assert first["unchanged"] is False and first["pre_restore"]

    again = service.restore_backup(made["id"])

    assert again["unchanged"] is True and again["pre_restore"] is None
    assert len(service.list_backups()) == 2  # the backup and the first restore's pre-restore backup


def _first_file(live: Path) -> Path:
    return min(p for p in live.rglob("*") if p.is_file() and not p.is_symlink())


def _touch(live: Path) -> None:
    path = _first_file(live)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _rewrite(live: Path) -> None:
    path = _first_file(live)
    path.write_bytes(path.read_bytes() + b"!")


def _remode(live: Path) -> None:
    _first_file(live).chmod(0o600)


def _add_file(live: Path) -> None:
    (live / "zz-new.txt").write_text("new")


def _remove_file(live: Path) -> None:
    _first_file(live).unlink()


def _add_folder(live: Path) -> None:
    (live / "zz-empty").mkdir()


def _remode_folder(live: Path) -> None:
    folder = next(p for p in sorted(live.rglob("*")) if p.is_dir())
    folder.chmod(0o700)


def _retime_folder(live: Path) -> None:
    folder = next(p for p in sorted(live.rglob("*")) if p.is_dir())
    st = folder.stat()
    os.utime(folder, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))


def _relink(live: Path) -> None:
    link = live / "a-link"
    link.unlink()
    link.symlink_to("somewhere-else")


def _retime_link(live: Path) -> None:
    os.utime(live / "a-link", ns=(0, 1_000_000_000), follow_symlinks=False)


def _remode_scope_folder(live: Path) -> None:
    live.chmod(0o700)


def _retime_scope_folder(live: Path) -> None:
    st = live.stat()
    os.utime(live, ns=(st.st_atime_ns, st.st_mtime_ns - 5_000_000_000))


def _change_record(database) -> None:
    first = database.edition.find_one({})
    database.edition.update_one({"_id": first["_id"]}, {"$set": {"title": "edited"}})


def _add_record(database) -> None:
    database.edition.insert_one({"projectId": ObjectId(), "title": "added"})


def _remove_record(database) -> None:
    database.edition.delete_one({"_id": database.edition.find_one({})["_id"]})


def _add_collection(database) -> None:
    database.extra.insert_one({"new": "collection"})


FILE_CHANGES = [_touch, _rewrite, _remode, _add_file, _remove_file, _add_folder, _remode_folder, _retime_folder,
                _relink, _retime_link, _remode_scope_folder, _retime_scope_folder]
RECORD_CHANGES = [_change_record, _add_record, _remove_record, _add_collection]


@pytest.mark.parametrize("change", FILE_CHANGES + RECORD_CHANGES, ids=lambda change: change.__name__.strip("_"))
def test_any_difference_makes_the_restore_proper_run_and_put_the_backup_back(change, service, config, database,
                                                                               site):
    live = scope_dir(config, Scope.site())
    (live / "a-link").symlink_to("project")
    made = service.make_backup()
    files, records = tree_fingerprint(live), records_fingerprint(database)

    change(live) if change in FILE_CHANGES else change(database)
    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and result["pre_restore"] not in (None, made["id"])
    assert tree_fingerprint(live) == files and records_fingerprint(database) == records
    assert service.restore_backup(made["id"])["unchanged"] is True


def test_a_record_with_other_field_order_is_a_difference(service, config, database, site):
    """Equal as dictionaries is not enough: the restore puts back the stored bytes."""
    made = service.make_backup()
    first = database.edition.find_one({})
    reordered = {"_id": first["_id"], **{k: v for k, v in reversed(list(first.items())) if k != "_id"}}
    database.edition.delete_one({"_id": first["_id"]})
    database.edition.insert_one(reordered)

    assert service.restore_backup(made["id"])["unchanged"] is False


def test_records_in_another_natural_order_but_equal_still_match(service, config, database, site):
    made = service.make_backup()
    documents = list(database.edition.find({}))
    database.edition.delete_many({})
    database.edition.insert_many(list(reversed(documents)))

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is True


def test_a_hard_link_broken_into_two_equal_files_is_a_difference(service, config, database, site):
    live = scope_dir(config, Scope.site())
    (live / "one.txt").write_text("same content")
    os.link(live / "one.txt", live / "two.txt")
    made = service.make_backup()
    assert service.restore_backup(made["id"])["unchanged"] is True

    st = (live / "two.txt").stat()
    (live / "two.txt").unlink()
    (live / "two.txt").write_text("same content")
    os.chmod(live / "two.txt", st.st_mode & 0o777)
    os.utime(live / "two.txt", ns=(st.st_atime_ns, st.st_mtime_ns))

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False
    assert (live / "one.txt").stat().st_ino == (live / "two.txt").stat().st_ino


def test_a_project_already_in_its_backups_state_is_left_alone(service, config, database, site):
    project_id = site.project_ids[0]
    live = scope_dir(config, Scope.project(project_id))
    made = service.make_backup(project_id)

    assert service.restore_backup(made["id"], project_id)["unchanged"] is True
    assert [b["id"] for b in service.list_backups(project_id)] == [made["id"]]

    oid = ObjectId(project_id)
    database.edition.update_one({"projectId": oid}, {"$set": {"title": "edited"}})
    database.edition.update_one({"projectId": {"$ne": oid}}, {"$set": {"title": "others' edit"}})
    result = service.restore_backup(made["id"], project_id)

    assert result["unchanged"] is False and result["pre_restore"]
    assert database.edition.find_one({"projectId": {"$ne": oid}, "title": "others' edit"})  # not the project's
    queries = project_queries(config, project_id)
    assert service.restore_backup(made["id"], project_id)["unchanged"] is True
    assert records_fingerprint(database, queries)  # still there, as backed up
    assert live.is_dir()


def test_an_index_added_since_the_backup_is_a_difference_where_the_engine_keeps_it(service, config, database,
                                                                                    site):
    made = service.make_backup()
    database.edition.create_index("title", name="by_title")
    kept = "by_title" in _index_names(database)  # the embedded engine keeps no secondary index

    result = service.restore_backup(made["id"])

    assert kept is (config.db_uri is not None)
    assert result["unchanged"] is not kept
    assert "by_title" not in _index_names(database)
    assert service.restore_backup(made["id"])["unchanged"] is True


def _index_names(database) -> list[str]:
    return [spec["name"] for spec in collection_metadata(database, "edition")["indexes"]]


def test_a_project_backup_with_a_collection_the_configuration_no_longer_names_fails_as_before(
        service, config, database, site):
    """Not a crash of the comparison: the restore proper refuses it, naming the collection."""
    project_id = site.project_ids[0]
    commented = DataModel(linked=(("edition", "projectId"), ("comment", "projectId")))
    database.comment.insert_one({"projectId": ObjectId(project_id), "text": "kept"})
    made = Strongroom(dataclasses.replace(config, model=commented), database=database).make_backup(project_id)
    files, records = tree_fingerprint(scope_dir(config, Scope.site())), records_fingerprint(database)

    with pytest.raises(RestoreFailed, match="no query says which records of 'comment'"):
        service.restore_backup(made["id"], project_id)

    assert tree_fingerprint(scope_dir(config, Scope.site())) == files and records_fingerprint(database) == records


@pytest.mark.parametrize("change", [_change_record, _add_record, _remove_record],
                         ids=lambda change: change.__name__.strip("_"))
def test_records_that_differ_are_told_apart_reading_each_collection_at_most_once(change, service, config, database,
                                                                                site, monkeypatch):
    """No collection is read twice (the comparison by ``_id`` once read every record
    again): a record changed where it stands, one more or one fewer is a difference seen
    in one pass, or before any record is read, from the counts."""
    made = service.make_backup()
    change(database)
    reads = []
    read = matching.raw_documents
    monkeypatch.setattr(matching, "raw_documents", lambda db, name, query: reads.append(name) or read(db, name, query))

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and result["pre_restore"]
    assert len(reads) == len(set(reads))


def test_a_file_list_too_large_to_keep_in_memory_is_compared_as_it_streams(service, config, database, site,
                                                                          monkeypatch):
    monkeypatch.setattr(checkedlist, "LIMIT", 0)
    reads = []
    read = checkedlist.iter_entries
    monkeypatch.setattr(checkedlist, "iter_entries", lambda *args: reads.append(args) or read(*args))
    live = scope_dir(config, Scope.site())
    made = service.make_backup()

    assert service.restore_backup(made["id"])["unchanged"] is True
    assert len(reads) == 1  # checked and compared in one pass as it streamed

    _add_file(live)
    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and not (live / "zz-new.txt").exists()
    assert len(reads) == 3  # then read and checked again for the build (the pre-flight counts in the check's pass)


def test_records_that_cannot_be_compared_are_restored_as_before(service, config, database, site, monkeypatch):
    """The comparison is a shortcut: the database failing under it is no reason for the
    restore to fail (the restore proper, reading the records itself, says what fails)."""
    made = service.make_backup()

    def failing(*args):
        raise ConnectionError("the server went away")

    monkeypatch.setattr(matching, "raw_documents", failing)
    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and result["pre_restore"]


def test_a_fifo_the_backup_could_not_hold_is_a_difference_and_goes(service, config, database, site):
    live = scope_dir(config, Scope.site())
    made = service.make_backup()
    os.mkfifo(live / "zz-fifo")

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and not os.path.lexists(live / "zz-fifo")


def test_names_that_are_not_utf8_are_compared_like_any_other(service, config, database, site):
    live = os.fsencode(scope_dir(config, Scope.site()))
    odd = live + b"/odd-\xff\nname"
    with open(odd, "wb") as fh:
        fh.write(b"odd")
    os.symlink(b"target-\xfe", live + b"/link-\xfe")
    made = service.make_backup()

    assert service.restore_backup(made["id"])["unchanged"] is True

    os.utime(odd, ns=(0, 5))
    assert service.restore_backup(made["id"])["unchanged"] is False
    assert os.stat(odd).st_mtime_ns != 5
    assert service.restore_backup(made["id"])["unchanged"] is True


def _damage_a_dump(folder: Path) -> None:
    dump = folder / "db" / "bson" / "edition.bson"
    dump.chmod(0o600)
    data = bytearray(dump.read_bytes())
    data[-2] ^= 1
    dump.write_bytes(bytes(data))


def _grow_a_stored_file(folder: Path) -> None:
    stored = min(p for p in (folder / "files").rglob("*") if p.is_file() and not p.is_symlink())
    stored.chmod(0o600)
    with open(stored, "ab") as fh:
        fh.write(b"!")


@pytest.mark.parametrize("damage", [_damage_a_dump, _grow_a_stored_file], ids=lambda damage: damage.__name__.strip("_"))
def test_a_damaged_backup_is_refused_even_when_the_scope_already_is_its_state(damage, service, config, database,
                                                                             site):
    made = service.make_backup()
    damage(backups_root(config, Scope.site()) / made["id"])

    with pytest.raises(CorruptBackup, match="fails verification"):
        service.restore_backup(made["id"])

    assert [b["id"] for b in service.list_backups()] == [made["id"]]
