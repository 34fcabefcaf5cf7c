"""The service against a real MongoDB wire-protocol server: FerretDB, started by the
``mongodb_server`` fixture (or the server STRONGROOM_TEST_MONGODB_URI names; each test gets
a fresh database there, dropped after it)."""

import pytest

from conftest import records_fingerprint, tree_fingerprint
from faults import count_points
from strongroom.config import Config
from strongroom.db.engines import list_collections, open_database
from strongroom.demo import create_demo_site
from strongroom.service import Strongroom


@pytest.fixture
def mongo_config(server_config) -> Config:
    return server_config


def test_a_site_restore_on_mongodb_swaps_staging_collections_in_by_rename(mongo_config):
    database = open_database(mongo_config)
    create_demo_site(mongo_config, database, seed=3)
    database.edition.create_index("projectId", name="by_project")
    service = Strongroom(mongo_config, database=database)
    before = records_fingerprint(database), tree_fingerprint(mongo_config.working_dir)
    made = service.make_backup()
    database.edition.delete_many({})
    database.extra.insert_one({"x": 1})

    points = count_points(lambda: service.restore_backup(made["id"]))

    assert (records_fingerprint(database), tree_fingerprint(mongo_config.working_dir)) == before
    renames = [detail for kind, detail in points if kind == "rename-collection"]
    assert "strongroom_restore_edition -> edition" in renames
    assert not [n for n in database.list_collection_names() if n.startswith(("strongroom_restore", "strongroom_replaced"))]
    assert "by_project" in database.edition.index_information()
    assert "extra" not in list_collections(database)


def test_a_project_restore_on_mongodb_touches_no_other_project(mongo_config):
    database = open_database(mongo_config)
    site = create_demo_site(mongo_config, database, seed=4)
    service = Strongroom(mongo_config, database=database)
    mine, other = site.project_ids[0], site.project_ids[1]
    made = service.make_backup(mine)
    before = records_fingerprint(database)
    database.edition.delete_many({})
    database.user.insert_one({"user": "newcomer"})

    service.restore_backup(made["id"], mine)

    after = records_fingerprint(database)
    assert after["project"] == before["project"]
    mine_editions = [d for d in before["edition"] if str(d["projectId"]) == mine]
    assert [d for d in after["edition"]] == mine_editions  # the other project's were deleted later, stay so
    assert database.user.count_documents({"user": "newcomer"}) == 1
    assert other not in {str(d["projectId"]) for d in after["edition"]}


def test_a_restore_the_server_cannot_take_fails_and_rolls_back_naming_the_document(mongo_config, tmp_path):
    """A backup made on the embedded engine holds a Decimal128, which FerretDB 1.x cannot
    store: restoring it onto the server fails, says which document, and puts the site back."""
    from bson import Decimal128

    from strongroom.errors import RestoreFailed

    embedded = Config(data_dir=mongo_config.data_dir)
    local = open_database(embedded)
    create_demo_site(embedded, local, seed=5)
    local.edition.insert_one({"_id": "priced", "price": Decimal128("12.50")})
    made = Strongroom(embedded, database=local).make_backup()
    database = open_database(mongo_config)
    try:
        database.probe.insert_one({"price": Decimal128("1")})
    except Exception:  # noqa: BLE001 - the refusal this test is about
        database.drop_collection("probe")
    else:
        pytest.skip("this server stores Decimal128")
    database.edition.insert_many([{"_id": n, "title": f"live {n}"} for n in range(3)])
    before = records_fingerprint(database), tree_fingerprint(mongo_config.working_dir)

    with pytest.raises(RestoreFailed, match=r"document 'priced' of edition.*put back") as raised:
        Strongroom(mongo_config, database=database).restore_backup(made["id"])

    assert "Decimal128" in str(raised.value)
    assert (records_fingerprint(database), tree_fingerprint(mongo_config.working_dir)) == before
    assert not [n for n in database.list_collection_names() if n.startswith(("strongroom_restore", "strongroom_replaced"))]


def test_a_collection_a_crash_left_renamed_aside_is_put_back_and_a_finished_ones_leftover_dropped(mongo_config):
    from strongroom.db.dbrestore import drop_staging_collections

    database = open_database(mongo_config)
    database.edition.insert_one({"_id": 1})
    database.edition.rename("strongroom_replaced_edition")  # crash between the two renames
    database.strongroom_restore_edition.insert_one({"_id": 2})
    database.user.insert_one({"_id": "live"})
    database.strongroom_replaced_user.insert_one({"_id": "old"})  # crash after the rename in

    drop_staging_collections(database)

    assert sorted(database.list_collection_names()) == ["edition", "user"]
    assert list(database.edition.find()) == [{"_id": 1}]
    assert list(database.user.find()) == [{"_id": "live"}]


def test_what_the_server_stored_altered_is_named_by_the_cli_restore(mongo_config):
    """A backup made on the embedded engine holds -0.0; FerretDB stores it as 0.0: the
    restore succeeds and the CLI says so on stderr."""
    import subprocess
    import sys

    embedded = Config(data_dir=mongo_config.data_dir)
    local = open_database(embedded)
    create_demo_site(embedded, local, seed=6)
    local.edition.insert_one({"_id": "negative zero", "value": -0.0})
    made = Strongroom(embedded, database=local).make_backup()
    database = open_database(mongo_config)
    database.probe.insert_one({"_id": 1, "value": -0.0})
    if str(database.probe.find_one()["value"]) == "-0.0":
        pytest.skip("this server keeps -0.0")

    done = subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(mongo_config.data_dir),
                           "--db", mongo_config.db_uri, "restore", made["id"], "--yes"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    assert ("warning: edition: 1 document(s) stored by the server not exactly as backed up "
            "(it changed a value it accepted, such as -0.0 into 0.0)") in done.stderr
    assert database.edition.find_one({"_id": "negative zero"})["value"] == 0.0


def test_during_a_site_restore_a_reader_sees_the_old_or_the_new_collection_never_a_partial_one(mongo_config):
    """What docs/guarantees.md promises a reader on a server: at every step of a site
    restore, ``edition`` is the old collection or the restored one; on a server without
    rename-with-dropTarget it is missing for exactly one step, between the two renames."""
    from strongroom.fs import mutations

    database = open_database(mongo_config)
    create_demo_site(mongo_config, database, seed=8)
    service = Strongroom(mongo_config, database=database)
    made = service.make_backup()
    restored = sorted(str(d["_id"]) for d in database.edition.find())
    database.edition.insert_many([{"title": f"later {n}"} for n in range(5)])
    old = sorted(str(d["_id"]) for d in database.edition.find())
    reader = open_database(mongo_config)  # a client of its own, as another application's
    seen = []

    def look(kind, detail):
        present = "edition" in reader.list_collection_names()
        ids = sorted(str(d["_id"]) for d in reader.edition.find()) if present else None
        seen.append((detail, "old" if ids == old else "restored" if ids == restored else "missing" if ids is None
                     else f"partial ({len(ids)})"))

    previous = mutations.set_hook(look)
    try:
        service.restore_backup(made["id"])
    finally:
        mutations.set_hook(previous)

    states = [state for _, state in seen]
    assert set(states) <= {"old", "restored", "missing"}, states
    assert states[0] == "old" and states[-1] == "restored"
    missing = [detail for detail, state in seen if state == "missing"]
    set_aside = "edition -> strongroom_replaced_edition" in [detail for detail, _ in seen]
    assert missing == (["strongroom_restore_edition -> edition"] if set_aside else [])
