"""A whole restore whose pre-restore backup dumped exactly the backup's records (the
same dumps, byte for byte, under the write hold: ``matching.proven_unchanged``) puts
back the files alone: the records already are the
backup's, and loading them again would leave the same. A record that differs is still
loaded, and a rollback of a restore that left the records alone leaves them alone too."""

import pytest

from conftest import give_the_restore_work, tree_fingerprint
from strongroom.db import dbrestore
from strongroom.errors import RestoreFailed
from strongroom.restore import rebuild
from strongroom.scopes import Scope, scope_dir


@pytest.fixture
def loads(monkeypatch):
    """Every load of records (a restore's or a rollback's), by the collections it loads."""
    calls = []
    load = dbrestore.restore_collections

    def counted(database, bson_dir, names, *args, **kwargs):
        calls.append(list(names))
        return load(database, bson_dir, names, *args, **kwargs)

    monkeypatch.setattr(dbrestore, "restore_collections", counted)
    return calls


def _records(database) -> dict:
    return {name: sorted(map(repr, database[name].find({}))) for name in ("project", "edition", "user")}


def test_a_restore_after_only_files_changed_leaves_the_records_and_counts_them_put_back(
        service, config, site, database, loads):
    made = service.make_backup()
    live = scope_dir(config, Scope.site())
    expected = tree_fingerprint(live)
    records = _records(database)
    give_the_restore_work(live)

    result = service.restore_backup(made["id"])

    assert result["records_kept"] == result["records"] and loads == []
    manifest = service.store.open(Scope.site(), made["id"])[1]
    assert result["records"] == {name: info["count"] for name, info in manifest["collections"].items()}
    assert tree_fingerprint(live) == expected and _records(database) == records
    assert result["pre_restore"] and result["copied"] == 1


@pytest.mark.parametrize("files_too", [True, False], ids=["and a file", "alone"])
def test_a_changed_record_is_still_put_back(service, config, site, database, loads, files_too):
    made = service.make_backup()
    records = _records(database)
    first = database.project.find_one({})
    database.project.update_one({"_id": first["_id"]}, {"$set": {"title": "changed since the backup"}})
    if files_too:
        give_the_restore_work(scope_dir(config, Scope.site()))

    result = service.restore_backup(made["id"])

    assert result["records_kept"] != result["records"] and loads
    assert _records(database) == records


def test_a_rollback_of_a_restore_that_kept_the_records_leaves_them(service, config, site, database, loads,
                                                                  monkeypatch):
    service.make_backup()
    live = scope_dir(config, Scope.site())
    give_the_restore_work(live)
    made = service.make_backup()  # the changed file is the backup's; the live one changes again
    give_the_restore_work(live)
    before, records = tree_fingerprint(live), _records(database)

    def fail(*args, **kwargs):
        raise OSError("the swap failed")

    monkeypatch.setattr(rebuild, "swap_in", fail)
    with pytest.raises(RestoreFailed):
        service.restore_backup(made["id"])

    assert loads == []  # neither the restore nor its rollback touched the records
    assert tree_fingerprint(live) == before and _records(database) == records
