"""Importing backups made by others: the original module's folders and mongodump's.

Each source is written here exactly as its maker writes it (the original: ``bson.encode``
per record, ``files/`` a copy of the folder; mongodump: concatenated BSON plus
``.metadata.json``), taken in with ``strongroom import``, then restored over a changed
site and compared, records and files, with the state it was made from.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import bson
import pytest
from bson import json_util

from conftest import records_fingerprint, tree_fingerprint
from strongroom.config import Config
from strongroom.errors import BadInput
from strongroom.scopes import Scope, project_queries, rescue_dir, scope_dir
from strongroom.service import Strongroom

ORIGINAL_TIME = "2024-03-01T10-00-00"


def write_original_backup(folder: Path, database, queries: dict, files_from: Path, per_record: bool) -> Path:
    """A backup folder as the original module writes it: ``files/`` a copy of the folder,
    ``db/bson`` and ``db/json`` per table, one file per record or one per table."""
    for name, query in queries.items():
        records = list(database[name].find(query))
        bson_dir, json_dir = folder / "db" / "bson", folder / "db" / "json"
        if per_record:
            (bson_dir / name).mkdir(parents=True)
            (json_dir / name).mkdir(parents=True)
            for record in records:
                (bson_dir / name / f"{record['_id']}.bson").write_bytes(bson.encode(record))
                (json_dir / name / f"{record['_id']}.json").write_text(json.dumps(record, default=str))
        else:
            bson_dir.mkdir(parents=True, exist_ok=True)
            json_dir.mkdir(parents=True, exist_ok=True)
            (bson_dir / f"{name}.bson").write_bytes(b"".join(bson.encode(r) for r in records))
            (json_dir / f"{name}.json").write_text("".join(json.dumps(r, default=str) + "\n" for r in records))
    shutil.copytree(files_from, folder / "files", symlinks=True)
    return folder


def write_mongodump(folder: Path, database, queries: dict) -> Path:
    """A folder in mongodump's format, ``<dump>/<db>/<coll>.bson`` and ``.metadata.json``,
    written with pymongo's bson. The real mongodump cannot be had on this machine (no
    MongoDB server or tools can be installed here), so its format is written by hand."""
    for name, query in queries.items():
        db_dir = folder / "site"
        db_dir.mkdir(parents=True, exist_ok=True)
        records = list(database[name].find(query))
        (db_dir / f"{name}.bson").write_bytes(b"".join(bson.encode(r) for r in records))
        metadata = {"indexes": [{"v": 2, "key": {"_id": 1}, "name": "_id_"},
                                {"v": 2, "key": {"title": 1}, "name": "title_1"}],
                    "uuid": "0123456789abcdef0123456789abcdef", "collectionName": name, "type": "collection"}
        (db_dir / f"{name}.metadata.json").write_text(
            json_util.dumps(metadata, json_options=json_util.CANONICAL_JSON_OPTIONS))
    (folder / "prelude.json").write_text('{"ServerVersion":"7.0.0","ToolVersion":"100.18.0"}')
    return folder


def change_everything(config, database, site) -> None:
    """Make the live state differ from the source in records and files."""
    for name in ("project", "edition", "user"):
        database[name].delete_many({})
    database["extra"].insert_one({"_id": 1, "made": "after the backup"})
    for path in list(config.working_dir.rglob("*"))[:5]:
        if path.is_file():
            path.unlink()
    (config.working_dir / "new-after-backup.txt").write_text("should go")


def pool_objects(config) -> set[str]:
    return {p.name for p in config.pool_dir.rglob("*") if p.is_file()} if config.pool_dir.exists() else set()


def assert_nothing_landed(service, config, scope: Scope, backups_before: list, pool_before: set) -> None:
    root = config.backups_dir / ("site" if scope.is_site else f"project/{scope.project_id}")
    assert [b["id"] for b in service.list_backups(scope.project_id)] == backups_before
    assert not [p for p in (root.iterdir() if root.exists() else []) if p.name.startswith(".staging-")]
    assert pool_objects(config) == pool_before


@pytest.mark.parametrize("per_record", [True, False], ids=["a file per record", "a file per table"])
def test_an_original_site_backup_imports_and_restores_to_the_state_it_was_made_from(
        service, config, database, site, tmp_path, per_record):
    records, files = records_fingerprint(database), tree_fingerprint(config.working_dir)
    source = write_original_backup(tmp_path / "orig/backups/pilot" / ORIGINAL_TIME, database,
                                   {name: {} for name in records}, config.working_dir, per_record)
    change_everything(config, database, site)
    source_before = tree_fingerprint(source)

    made = service.import_backup(source)

    assert tree_fingerprint(source) == source_before  # the source is only read

    assert made["reason"] == "import" and made["scope"] == "site"
    assert made["records"] == {name: len(docs) for name, docs in records.items()}
    assert [b["id"] for b in service.list_backups()] == [made["id"]]
    assert service.verify_backup(made["id"])["ok"]
    manifest = service.show_backup(made["id"])["manifest"]
    assert manifest["imported_from"] == {"format": "original", "name": ORIGINAL_TIME}
    backup = config.backups_dir / "site" / made["id"]
    assert sorted(p.name for p in (backup / "db" / "bson").iterdir()) == sorted(
        [f"{n}.bson" for n in records] + [f"{n}.metadata.json" for n in records])
    service.restore_backup(made["id"])
    assert records_fingerprint(database) == records
    assert tree_fingerprint(config.working_dir) == files


def test_an_original_project_backup_imports_as_that_projects_backup_and_restores_only_it(
        service, config, database, site, tmp_path):
    project = site.project_ids[0]
    queries = project_queries(config, project)
    records, others = records_fingerprint(database, queries), records_fingerprint(database)
    live = scope_dir(config, Scope.project(project))
    files = tree_fingerprint(live)
    source = write_original_backup(tmp_path / f"orig/backups/pilot/project/{project}" / ORIGINAL_TIME,
                                   database, queries, live, per_record=True)
    database["edition"].update_many({"projectId": {"$in": [project]}}, {"$set": {"title": "changed"}})
    database["edition"].delete_many({"projectId": bson.ObjectId(project)})
    shutil.rmtree(live)
    live.mkdir()
    (live / "stray.txt").write_text("made after the backup")

    with pytest.raises(BadInput, match=f"--project {project}"):
        service.import_backup(source)  # a project's backup is never taken in as the site's
    site_backup = write_original_backup(tmp_path / "orig/backups/pilot" / ORIGINAL_TIME, database,
                                        {"user": {}}, config.working_dir, per_record=False)
    with pytest.raises(BadInput, match="whole site"):
        service.import_backup(site_backup, project)  # nor the site's as a project's
    made = service.import_backup(source, project)

    assert made["scope"] == "project" and made["project"] == project and made["reason"] == "import"
    assert service.verify_backup(made["id"], project)["ok"]
    service.restore_backup(made["id"], project)
    assert records_fingerprint(database, queries) == records
    assert tree_fingerprint(live) == files
    after = records_fingerprint(database)
    assert after["user"] == others["user"] and len(after["edition"]) == len(others["edition"])


def test_an_original_tree_is_taken_in_at_once_and_not_twice(service, config, database, site, tmp_path, cli):
    project = site.project_ids[1]
    tree = tmp_path / "orig"
    write_original_backup(tree / "backups/pilot" / ORIGINAL_TIME, database,
                          {name: {} for name in records_fingerprint(database)}, config.working_dir, False)
    queries = project_queries(config, project)
    write_original_backup(tree / f"backups/pilot/project/{project}" / ORIGINAL_TIME, database, queries,
                          scope_dir(config, Scope.project(project)), True)

    first = json.loads(cli("import", "--original-tree", str(tree), "--json").output)
    again = cli("import", "--original-tree", str(tree), "--json")

    assert [(m["scope"], m["project"]) for m in first["imported"]] == [("site", None), ("project", project)]
    assert again.exit_code == 0 and json.loads(again.output)["imported"] == []
    assert len(json.loads(again.output)["skipped"]) == 2
    assert [b["reason"] for b in service.list_backups(project)] == ["import"]


def test_an_original_tree_inside_strongrooms_own_data_dir_skips_strongrooms_backups(
        service, config, database, site):
    """Migrating in place: the original's backups lie beside Strongroom's own."""
    ours = service.make_backup()["id"]
    write_original_backup(config.shared_backups_dir / config.mode / ORIGINAL_TIME, database, {"user": {}},
                          config.working_dir, False)

    result = service.import_original_tree(config.data_dir)

    assert [m["note"] for m in result["imported"]] == [f"imported from the original backup {ORIGINAL_TIME}"]
    assert [b["id"] for b in service.list_backups()][1:] == [ours]


def test_an_original_tree_sharing_the_old_layout_skips_strongrooms_own_and_goes_on_past_a_refused_source(
        config, database, site, cli):
    """The data dir Strongroom used before its own root: its site and project backups, the
    files a restore rescued, its pool and key lie among the original's backups. A tree
    import takes in the original's, says what it did, and names the one it refused."""
    shared = Config(data_dir=config.data_dir, backups_location=config.shared_backups_dir)
    service = Strongroom(shared, database=database)
    project = site.project_ids[0]
    ours = service.make_backup()["id"], service.make_backup(project)["id"]
    rescued = rescue_dir(shared, Scope.site(), ours[0]) / "upload.tmp"
    rescued.parent.mkdir(parents=True)
    rescued.write_text("written by the app during a restore")
    mode_dir = shared.shared_backups_dir / "pilot"
    write_original_backup(mode_dir / ORIGINAL_TIME, database, {"user": {}}, shared.working_dir, False)
    write_original_backup(mode_dir / "project" / project / ORIGINAL_TIME, database,
                          project_queries(shared, project), scope_dir(shared, Scope.project(project)), False)
    broken = mode_dir / "2024-03-02T10-00-00"
    (broken / "files").mkdir(parents=True)  # no db/: refused

    first = cli("--backups-dir", str(shared.shared_backups_dir), "import", "--original-tree", str(shared.data_dir))
    again = cli("--backups-dir", str(shared.shared_backups_dir), "import", "--original-tree", str(shared.data_dir))

    assert first.exit_code == 2, first.output
    assert "Imported 2 backups, skipped 0 imported before, refused 1." in first.stdout
    assert f"refused  {broken}: " in first.stdout and "rescued" not in first.output
    assert first.stderr.strip().splitlines() == [
        "strongroom: error: 1 original backup refused (2024-03-02T10-00-00); the others were imported"]
    assert again.exit_code == 2 and "Imported 0 backups, skipped 2 imported before, refused 1." in again.stdout
    assert [b["reason"] for b in service.list_backups()] == ["import", "manual"]
    assert [b["reason"] for b in service.list_backups(project)] == ["import", "manual"]
    assert rescued.read_text() == "written by the app during a restore"


@pytest.mark.parametrize("project_scope", [False, True], ids=["site", "project"])
def test_a_mongodump_folder_with_its_files_imports_and_restores(
        service, config, database, site, tmp_path, project_scope):
    project = site.project_ids[2] if project_scope else None
    scope = Scope.of(project)
    queries = project_queries(config, project) if project else {name: {} for name in records_fingerprint(database)}
    records = records_fingerprint(database, queries)
    live = scope_dir(config, scope)
    files = tree_fingerprint(live)
    # mongodump of the whole database: a project import keeps that project's records only
    dump = write_mongodump(tmp_path / "dump", database, {name: {} for name in records_fingerprint(database)})
    shutil.copytree(live, tmp_path / "files", symlinks=True)
    change_everything(config, database, site)
    shutil.rmtree(live, ignore_errors=True)

    with pytest.raises(BadInput, match="--files"):
        service.import_backup(dump, project)
    # the dump folder, or (for a project, here) its database folder holding the collections
    made = service.import_backup(dump / "site" if project else dump, project, files=tmp_path / "files")

    assert made["records"] == {name: len(docs) for name, docs in records.items()}
    manifest = service.show_backup(made["id"], project)["manifest"]
    assert manifest["imported_from"] == {"format": "mongodump", "name": "site"}
    stored = json_util.loads((config.backups_dir / ("site" if not project else f"project/{project}") / made["id"]
                              / "db/bson/project.metadata.json").read_text())
    assert [i["name"] for i in stored["indexes"]] == ["_id_", "title_1"]
    service.restore_backup(made["id"], project)
    assert records_fingerprint(database, queries) == records
    assert tree_fingerprint(live) == files


def test_import_on_the_command_line_prints_the_new_backup(cli, config, database, site, tmp_path):
    source = write_original_backup(tmp_path / ORIGINAL_TIME, database, {"user": {}}, config.working_dir, True)
    result = cli("import", str(source), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["reason"] == "import"
    assert cli("list").output.split()[1] == "import"


def _truncated(source: Path) -> None:
    target = next((source / "db/bson/user").iterdir())
    target.write_bytes(target.read_bytes()[:-3])


def _garbage_inside(source: Path) -> None:
    target = next((source / "db/bson/user").iterdir())
    data = bytearray(target.read_bytes())
    data[4] = 0x77  # an element type BSON does not have
    target.write_bytes(bytes(data))


def _no_id(source: Path) -> None:
    (source / "db/bson/user/extra.bson").write_bytes(bson.encode({"name": "no id"}))


def _link_to_outside(source: Path) -> None:
    outside = source.parent / "secret.bson"
    outside.write_bytes(bson.encode({"_id": 1, "secret": "outside the source"}))
    (source / "db/bson/stolen.bson").symlink_to(outside)


def _linked_table_folder(source: Path) -> None:
    shutil.move(source / "db/bson/user", source.parent / "user-elsewhere")
    (source / "db/bson/user").symlink_to(source.parent / "user-elsewhere")


def _linked_files(source: Path) -> None:
    shutil.move(source / "files", source.parent / "files-elsewhere")
    (source / "files").symlink_to(source.parent / "files-elsewhere")


def _bad_name(source: Path) -> None:
    (source / "db/bson/bad name!.bson").write_bytes(b"")


def _both_layouts(source: Path) -> None:
    (source / "db/bson/user.bson").write_bytes(b"")


def _no_bson(source: Path) -> None:
    shutil.rmtree(source / "db/bson")


def _json_only(source: Path) -> None:
    (source / "db/json/lost").mkdir()
    (source / "db/json/lost/1.json").write_text('{"_id": 1}')


BAD_SOURCES = {
    "a table in JSON only": (_json_only, "has JSON but no BSON"),
    "a truncated record": (_truncated, "not valid BSON"),
    "an invalid element": (_garbage_inside, "not valid BSON"),
    "a record without _id": (_no_id, "has no _id"),
    "a link out of the source": (_link_to_outside, "symbolic link"),
    "a table folder that is a link": (_linked_table_folder, "symbolic link"),
    "files/ that is a link": (_linked_files, "files is a symbolic link"),
    "a collection name the validator refuses": (_bad_name, "not a collection name"),
    "a table both as file and folder": (_both_layouts, "both as a file and as a folder"),
    "no db/bson": (_no_bson, "no bson/ folder"),
}


@pytest.mark.parametrize("name", BAD_SOURCES)
def test_a_bad_original_backup_is_refused_with_one_line_and_nothing_lands(
        service, config, database, site, tmp_path, name):
    spoil, message = BAD_SOURCES[name]
    service.make_backup()
    before, pool_before = [b["id"] for b in service.list_backups()], pool_objects(config)
    source = write_original_backup(tmp_path / "orig" / ORIGINAL_TIME, database,
                                   {"user": {}, "project": {}}, config.working_dir, True)
    (source / "files" / "only-in-the-source.bin").write_bytes(os.urandom(3000))
    spoil(source)

    with pytest.raises(BadInput, match=message) as refused:
        service.import_backup(source)

    assert "\n" not in str(refused.value)
    assert_nothing_landed(service, config, Scope.site(), before, pool_before)


def test_a_project_import_whose_source_lacks_the_project_is_refused(service, config, database, site, tmp_path):
    project = site.project_ids[0]
    other = site.project_ids[1]
    source = write_original_backup(tmp_path / ORIGINAL_TIME, database, project_queries(config, other),
                                   scope_dir(config, Scope.project(other)), True)
    (source / "files" / "only-in-the-source.bin").write_bytes(os.urandom(3000))
    pool_before = pool_objects(config)
    with pytest.raises(BadInput, match=f"no record of project {project}"):
        service.import_backup(source, project)
    assert_nothing_landed(service, config, Scope.project(project), [], pool_before)


def test_a_mongodump_of_several_databases_or_bad_metadata_is_refused(service, config, database, site, tmp_path):
    dump = write_mongodump(tmp_path / "dump", database, {"user": {}})
    shutil.copytree(dump / "site", dump / "other")
    with pytest.raises(BadInput, match="several databases"):
        service.import_backup(dump, files=config.working_dir)
    shutil.rmtree(dump / "other")
    (dump / "site" / "user.metadata.json").write_text('{"indexes": "none"}')
    with pytest.raises(BadInput, match="no list of indexes"):
        service.import_backup(dump, files=config.working_dir)
    (dump / "site" / "user.metadata.json").unlink()
    (dump / "site" / "user.bson.gz").write_bytes(b"")
    with pytest.raises(BadInput, match="gunzip"):
        service.import_backup(dump, files=config.working_dir)
    assert service.list_backups() == []


def test_a_bad_source_on_the_command_line_is_one_line_and_exit_2(cli_process, config, tmp_path):
    config.data_dir.mkdir()
    (tmp_path / "empty").mkdir()
    result = cli_process("import", str(tmp_path / "empty"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "neither an original backup" in result.stderr


def test_imported_records_keep_every_byte_of_the_source(service, config, database, site, tmp_path):
    """Documents are stored as the source has them, never decoded and re-encoded: key
    order and types that Python would change (Int64, Decimal128, binary subtypes, dates
    outside Python's range, -0.0) come through exactly."""
    from bson import SON, Binary, Decimal128, Int64, ObjectId
    from bson.datetime_ms import DatetimeMS

    documents = [
        SON([("z", 1), ("_id", ObjectId()), ("a", Int64(7))]),
        {"_id": 2, "money": Decimal128("1.10"), "blob": Binary(b"\x00\x01", 5), "minus_zero": -0.0},
        {"_id": 3, "long_ago": DatetimeMS(-(10 ** 14)), "far_ahead": DatetimeMS(10 ** 15), "nested": [[{"x": [1]}]]},
    ]
    source = tmp_path / ORIGINAL_TIME
    (source / "db/bson").mkdir(parents=True)
    (source / "files").mkdir()
    raw = b"".join(bson.encode(d) for d in documents)
    (source / "db/bson/odd.bson").write_bytes(raw)

    made = service.import_backup(source)

    stored = config.backups_dir / "site" / made["id"] / "db/bson/odd.bson"
    assert stored.read_bytes() == raw
    assert service.verify_backup(made["id"])["ok"]


def test_a_full_disk_at_any_write_of_an_import_leaves_nothing_behind(service, config, database, site, tmp_path):
    """ENOSPC injected at sampled write points of an import (records and files alike)."""
    import errno

    from faults import count_points, fail_at, sample
    from strongroom.errors import NoSpace

    service.make_backup()
    before, pool_before = [b["id"] for b in service.list_backups()], pool_objects(config)
    source = write_original_backup(tmp_path / ORIGINAL_TIME, database,
                                   {name: {} for name in records_fingerprint(database)}, config.working_dir, True)
    (source / "files" / "only-in-the-source.bin").write_bytes(os.urandom(3000))
    writes = sum(kind == "write" for kind, _ in count_points(lambda: service.import_backup(source)))
    service.delete_backup(service.list_backups()[0]["id"])
    assert pool_objects(config) == pool_before

    for k in sample(writes, 6):
        raised = fail_at(k, "write", lambda: service.import_backup(source), OSError(errno.ENOSPC, "disk full"))
        assert isinstance(raised, NoSpace) and raised.__cause__.errno == errno.ENOSPC, k
        assert_nothing_landed(service, config, Scope.site(), before, pool_before)


def test_records_are_selected_by_the_data_models_queries_as_mongodb_would():
    from bson import ObjectId

    from strongroom.db.docfilter import matcher

    def matches(document, query):
        return matcher(query)(document)

    oid = ObjectId()
    query = {"projectId": {"$in": [oid, str(oid)]}}
    assert matches({"_id": 1, "projectId": oid}, query)
    assert matches({"_id": 1, "projectId": str(oid)}, query)
    assert matches({"_id": 1, "projectId": [ObjectId(), oid]}, query)
    assert not matches({"_id": 1, "projectId": ObjectId()}, query)
    assert not matches({"_id": 1}, query)
    assert matches({"_id": 1, "meta": {"project": oid}}, {"meta.project": oid})
    assert not matches({"_id": 1, "meta": {"project": str(oid)}}, {"meta.project": oid})


def test_a_project_gone_from_the_database_comes_back_from_its_imported_backup(
        service, config, database, site, tmp_path):
    project = site.project_ids[0]
    queries = project_queries(config, project)
    records = records_fingerprint(database, queries)
    live = scope_dir(config, Scope.project(project))
    files = tree_fingerprint(live)
    source = write_original_backup(tmp_path / ORIGINAL_TIME, database, queries, live, per_record=True)
    for name, query in queries.items():
        database[name].delete_many(query)
    shutil.rmtree(live)

    made = service.import_backup(source, project)
    service.restore_backup(made["id"], project)

    assert records_fingerprint(database, queries) == records
    assert tree_fingerprint(live) == files
