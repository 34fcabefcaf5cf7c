"""A site restore leaves a collection as it is when the pre-restore backup it has just made
proves that collection to hold the backup's records already (the same bytes in the same
order, the same options and indexes); every other collection is loaded as before, on both
engines. Without that proof (bytes in another order, an index added, no write hold) the
collection is loaded."""

import dataclasses

import pytest

from conftest import records_fingerprint
from on_both_engines import SERVER_ONLY, config, database  # noqa: F401 - fixtures
from strongroom.db import dbrestore
from strongroom.db.engines import raw_documents
from strongroom.errors import RestoreFailed
from strongroom.service import Strongroom


@pytest.fixture
def loaded(monkeypatch) -> list[str]:
    """The collections a restore loads documents into (live names), in order."""
    names: list[str] = []
    insert = dbrestore._insert_documents

    def spy(collection, bson_path, *args, **kwargs):
        names.append(bson_path.stem)
        return insert(collection, bson_path, *args, **kwargs)

    monkeypatch.setattr(dbrestore, "_insert_documents", spy)
    return names


def _change_project(database) -> None:
    first = database.project.find_one({})
    database.project.update_one({"_id": first["_id"]}, {"$set": {"title": "edited"}})


def _raw(database, name: str) -> list[bytes]:
    return [bytes(batch) for batch in raw_documents(database, name, {})]


def test_a_site_restore_loads_only_the_collection_that_differs(service, config, database, site, loaded):
    made = service.make_backup()
    records = records_fingerprint(database)
    editions = _raw(database, "edition")
    _change_project(database)

    result = service.restore_backup(made["id"])

    assert result["unchanged"] is False and result["pre_restore"]
    assert loaded == ["project"]  # nothing else was read into the database again
    others = {name: count for name, count in made["records"].items() if name != "project"}
    assert result["records_kept"] == others and result["records"] == made["records"]
    assert records_fingerprint(database) == records and _raw(database, "edition") == editions


@SERVER_ONLY  # the embedded engine gives collections no uuid
def test_an_unchanged_collection_keeps_its_identity_on_a_server(service, config, database, site):
    made = service.make_backup()
    uuids = {info["name"]: info["info"]["uuid"] for info in database.list_collections()}
    _change_project(database)

    service.restore_backup(made["id"])

    now = {info["name"]: info["info"]["uuid"] for info in database.list_collections()}
    assert now["edition"] == uuids["edition"]  # never dropped, never swapped
    assert now["project"] != uuids["project"]  # loaded into a staging collection and swapped in
    assert not [name for name in now if name.startswith(dbrestore.STAGING_PREFIX)]


def test_equal_records_in_another_order_are_loaded_again_in_the_backups_order(service, config, database, site,
                                                                               loaded):
    made = service.make_backup()
    records, editions = records_fingerprint(database), _raw(database, "edition")
    documents = list(database.edition.find({}))
    database.edition.delete_many({})
    database.edition.insert_many(list(reversed(documents)))
    _change_project(database)

    result = service.restore_backup(made["id"])

    assert "edition" in loaded and "project" in loaded and "edition" not in result["records_kept"]
    assert records_fingerprint(database) == records and _raw(database, "edition") == editions


@SERVER_ONLY  # the embedded engine keeps no secondary index
def test_an_index_added_since_the_backup_has_the_collection_loaded_again(service, config, database, site, loaded):
    made = service.make_backup()
    database.edition.create_index("title", name="by_title")
    _change_project(database)

    result = service.restore_backup(made["id"])

    assert "edition" in loaded and "edition" not in result["records_kept"]
    assert "by_title" not in {index["name"] for index in database.edition.list_indexes()}


def test_without_a_write_hold_every_collection_is_loaded(config, database, site, loaded):
    service = Strongroom(dataclasses.replace(config, write_hold=0), database=database)
    made = service.make_backup()
    records = records_fingerprint(database)
    _change_project(database)

    result = service.restore_backup(made["id"])

    assert sorted(loaded) == sorted(made["records"]) and result["records_kept"] == {}
    assert records_fingerprint(database) == records


def test_a_restore_that_fails_loading_the_changed_collection_puts_everything_back(service, config, database, site,
                                                                                  monkeypatch):
    made = service.make_backup()
    _change_project(database)
    before = records_fingerprint(database)
    insert = dbrestore._insert_documents
    failed = []

    def once(collection, bson_path, *args, **kwargs):  # the restore's load fails, the rollback's does not
        if bson_path.stem == "project" and not failed:
            failed.append(bson_path)
            raise OSError("the disk failed")
        return insert(collection, bson_path, *args, **kwargs)

    monkeypatch.setattr(dbrestore, "_insert_documents", once)
    with pytest.raises(RestoreFailed, match="put back as it was"):
        service.restore_backup(made["id"])

    assert records_fingerprint(database) == before
    assert service.journal.read() is None
