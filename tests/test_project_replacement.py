"""A project restore on a MongoDB server writes only the records that differ, by their
``_id``, and takes the live records from its pre-restore backup (``dbrestore``,
``linking.saved_alike``, ``byids``): the outcome is still exactly the backup's records for
the project, those added since (in either form of the project's id) removed, and nothing
else touched."""

import bson
import pytest
from bson import ObjectId
from pymongo import MongoClient, monitoring

from conftest import records_fingerprint
from strongroom.config import Config
from strongroom.db import byids, capabilities
from strongroom.demo import create_demo_site
from strongroom.service import Strongroom


class Commands(monitoring.CommandListener):
    """Every command the client sends, as (name, command document)."""

    def __init__(self):
        self.sent = []

    def started(self, event):
        self.sent.append((event.command_name, event.command))

    def succeeded(self, event):
        pass

    def failed(self, event):
        pass

    def of(self, name: str, collection: str) -> list[dict]:
        return [command for kind, command in self.sent if kind == name and command.get(name) == collection]


@pytest.fixture
def listened(server_config: Config):
    commands = Commands()
    client = MongoClient(server_config.db_uri, event_listeners=[commands])
    yield server_config, client.get_default_database(), commands
    client.close()


def project_editions(database, project_id: str) -> list[dict]:
    return records_fingerprint(database, {"edition": {"projectId": {"$in": [ObjectId(project_id), project_id]}}})[
        "edition"]


def dumped_ids(backup_dir, name: str) -> set:
    with open(backup_dir / "db" / "bson" / f"{name}.bson", "rb") as fh:
        return {document["_id"] for document in bson.decode_file_iter(fh)}


def test_a_project_restore_leaves_exactly_the_backups_records_of_the_project_and_touches_no_other(listened):
    config, database, _ = listened
    site = create_demo_site(config, database, seed=23)
    mine, other = site.project_ids[0], site.project_ids[1]
    service = Strongroom(config, database=database)
    made = service.make_backup(mine)
    backed_up = project_editions(database, mine)
    changed, removed = backed_up[0]["_id"], backed_up[1]["_id"]
    database.edition.update_one({"_id": changed}, {"$set": {"title": "changed since"}})
    database.edition.delete_one({"_id": removed})
    added = database.edition.insert_many([{"projectId": ObjectId(mine), "title": "added, ObjectId"},
                                          {"projectId": mine, "title": "added, hex"}]).inserted_ids
    theirs = database.edition.find_one({"projectId": ObjectId(other)})["_id"]
    database.edition.update_one({"_id": theirs}, {"$set": {"title": "another project's change"}})
    database.user.insert_one({"user": "newcomer"})
    others_before = records_fingerprint(database, {"edition": {"projectId": {"$nin": [ObjectId(mine), mine]}},
                                                   "user": {}, "projectUser": {}})

    result = service.restore_backup(made["id"], mine)

    assert project_editions(database, mine) == backed_up
    assert records_fingerprint(database, {"edition": {"projectId": {"$nin": [ObjectId(mine), mine]}},
                                          "user": {}, "projectUser": {}}) == others_before
    assert result["records"]["edition"] == len(backed_up)
    pre_dir = service.store.open(service.existing(result["pre_restore"], mine), result["pre_restore"])[0]
    assert set(added) | {changed} <= dumped_ids(pre_dir, "edition")  # the live records were saved first
    assert removed not in dumped_ids(pre_dir, "edition")


def test_only_the_records_that_differ_are_written_each_by_its_id(listened):
    config, database, commands = listened
    site = create_demo_site(config, database, seed=24)
    mine = site.project_ids[0]
    service = Strongroom(config, database=database)
    made = service.make_backup(mine)
    backed_up = project_editions(database, mine)
    changed = backed_up[0]["_id"]
    database.edition.update_one({"_id": changed}, {"$set": {"title": "changed since"}})
    added = database.edition.insert_one({"projectId": mine, "title": "added, hex"}).inserted_id
    commands.sent.clear()

    service.restore_backup(made["id"], mine)

    deleted = [statement["q"] for command in commands.of("delete", "edition") for statement in command["deletes"]]
    assert deleted and all(set(query) == {"_id"} for query in deleted)
    assert {_id for query in deleted for _id in _ids(query)} == {changed, added}
    inserted = [document["_id"] for command in commands.of("insert", "edition") for document in command["documents"]]
    assert inserted == [changed]
    by_query = [command for command in commands.of("find", "edition") if "projectId" in command.get("filter", {})]
    assert len(by_query) == 2  # "already the backup's state?" and the pre-restore backup; no delete, no read-back
    assert project_editions(database, mine) == backed_up


def _ids(query: dict) -> list:
    value = query["_id"]
    return value["$in"] if isinstance(value, dict) else [value]


def test_a_project_restored_out_of_a_site_backup_loses_what_was_added_since_and_keeps_the_other_projects(listened):
    config, database, _ = listened
    site = create_demo_site(config, database, seed=25)
    mine, other = site.project_ids[0], site.project_ids[1]
    service = Strongroom(config, database=database)
    made = service.make_backup()
    backed_up = project_editions(database, mine)
    database.edition.insert_one({"projectId": mine, "title": "added, hex"})
    database.edition.update_one({"_id": backed_up[0]["_id"]}, {"$set": {"title": "changed since"}})
    database.edition.insert_one({"projectId": ObjectId(other), "title": "another project's new edition"})
    theirs = project_editions(database, other)

    service.restore_parts(made["id"], (), mine, from_site=True)

    assert project_editions(database, mine) == backed_up
    assert project_editions(database, other) == theirs


def test_few_ids_are_asked_one_by_one_where_the_server_scans_for_a_list(listened):
    _, database, commands = listened
    database.edition.insert_many([{"_id": ObjectId(), "n": n} for n in range(byids.FEW_IDS + 2)])
    ids = [document["_id"] for document in database.edition.find({}, {"_id": 1})]
    scans = capabilities.id_lists_scan(database, "edition")
    commands.sent.clear()

    few = sum(len(bson.decode_all(batch)) for batch in byids.find_raw(database.edition, ids[:2]))
    many = sum(len(bson.decode_all(batch)) for batch in byids.find_raw(database.edition, ids))

    assert (few, many) == (2, len(ids))
    filters = [command["filter"] for command in commands.of("find", "edition")]
    expected_few = [{"_id": ids[0]}, {"_id": ids[1]}] if scans else [{"_id": {"$in": ids[:2]}}]
    assert filters == [*expected_few, {"_id": {"$in": ids}}]
    assert byids.delete(database.edition, ids[:1]) == 1 and byids.delete(database.edition, ids[1:]) == len(ids) - 1


def test_a_record_the_server_stores_altered_is_named_after_a_project_restore(server_config):
    """A project backup made on the embedded engine holds -0.0; FerretDB stores 0.0: the
    record written is read back by its ``_id`` and the difference named."""
    from strongroom.db.engines import open_database

    embedded = Config(data_dir=server_config.data_dir)
    local = open_database(embedded)
    mine = create_demo_site(embedded, local, seed=26).project_ids[0]
    local.edition.insert_one({"_id": "negative zero", "projectId": ObjectId(mine), "value": -0.0})
    made = Strongroom(embedded, database=local).make_backup(mine)
    database = open_database(server_config)
    database.probe.insert_one({"_id": 1, "value": -0.0})
    if str(database.probe.find_one()["value"]) == "-0.0":
        pytest.skip("this server keeps -0.0")

    result = Strongroom(server_config, database=database).restore_backup(made["id"], mine)

    assert result["warnings"] == [("edition: 1 document(s) stored by the server not exactly as backed up "
                                  "(it changed a value it accepted, such as -0.0 into 0.0)")]
    assert database.edition.find_one({"_id": "negative zero"})["value"] == 0.0
