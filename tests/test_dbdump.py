"""Dump and restore collections: round trips on a real embedded database and on a real server."""

from __future__ import annotations

import datetime
import json
import uuid
from contextlib import contextmanager

import bson
import pytest
from bson import Binary, Code, Decimal128, Int64, ObjectId, Regex, Timestamp, json_util
from bson.max_key import MaxKey
from bson.min_key import MinKey

from strongroom.config import Config
from strongroom.db import dbdump, dbrestore, engines
from strongroom.errors import BadInput, CorruptBackup, InvalidName, ServerRefused
from strongroom.fs import mutations

UTC = datetime.UTC


def every_type_document(n: int, project_id: ObjectId) -> dict:
    return {
        "_id": ObjectId(),
        "zeta": "key order is kept, not sorted",
        "projectId": project_id,
        "n": n,
        "big": Int64(n),
        "ratio": 0.5 + n,
        "price": Decimal128("12.50"),
        "when": datetime.datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=UTC),
        "blob": Binary(b"\x00\xffbytes", 0),
        "uuid": Binary(uuid.UUID(int=n).bytes, 4),
        "custom": Binary(b"xyz", 0x80),
        "nested": {"b": [1, {"c": None, "a": True}], "a": "\u00e9t\u00e9 \U0001f600"},
        "pattern": Regex("^a.*b$", "i"),
        "code": Code("function () { return 1; }"),
        "stamp": Timestamp(1700000000, 7),
        "low": MinKey(),
        "high": MaxKey(),
        "not_a_number": float("nan"),
        "text": "line one\r\nline two",
    }


def assert_same_documents(found: list[dict], expected: list[dict]) -> None:
    """Byte-for-byte: same keys in the same order, same BSON types, same values (NaN too)."""
    assert [bson.encode(d) for d in found] == [bson.encode(d) for d in expected]


def all_documents(database, name: str) -> list[dict]:
    return [bson.decode(raw) for raw in _raw_documents(database, name)]


def _raw_documents(database, name: str) -> list[bytes]:
    return [bson.encode(document) for document in database[name].find()]


@pytest.fixture
def database(tmp_path):
    return engines.open_database(Config(data_dir=tmp_path / "data"))


@pytest.fixture
def project_ids():
    return ObjectId(), ObjectId()


@pytest.fixture
def site(database, project_ids):
    """Two projects with editions, users, and a documents of every BSON type."""
    mine, other = project_ids
    database["project"].insert_many(
        [{"_id": mine, "name": "mine"}, {"_id": other, "name": "other"}]
    )
    editions = [every_type_document(n, mine if n % 2 else other) for n in range(6)]
    editions.append({"_id": ObjectId(), "projectId": str(mine), "name": "linked by hex string"})
    database["edition"].insert_many(editions)
    database["user"].insert_many([{"_id": "alice", "role": "admin"}, {"_id": "bob"}])
    return database


def project_queries(project_id: ObjectId) -> dict[str, dict]:
    return {
        "project": {"_id": project_id},
        "edition": {"projectId": {"$in": [project_id, str(project_id)]}},
    }


def editions_of(database, *project_ids) -> list[bytes]:
    """The raw edition records linked to any of ``project_ids``, sorted (order may change)."""
    raw = _raw_documents(database, "edition")
    return sorted(e for e in raw if bson.decode(e)["projectId"] in project_ids)


def site_queries(database) -> dict[str, dict]:
    return {name: {} for name in engines.list_collections(database)}


def test_dumped_bson_files_decode_to_exactly_the_documents_in_the_database(site, tmp_path):
    summary = dbdump.dump_collections(site, tmp_path / "db", site_queries(site))

    for name in ("project", "edition", "user"):
        path = tmp_path / "db" / "bson" / f"{name}.bson"
        dumped = list(dbdump.read_documents(path))
        assert_same_documents(dumped, all_documents(site, name))
        assert summary[name]["count"] == len(dumped)
        assert summary[name]["bytes"] == path.stat().st_size
    assert summary["edition"]["count"] == 7


def test_dumped_bson_keeps_tz_aware_datetimes_and_exact_types(site, tmp_path):
    dbdump.dump_collections(site, tmp_path / "db", {"edition": {}})

    first = next(dbdump.read_documents(tmp_path / "db" / "bson" / "edition.bson"))
    assert first["when"] == datetime.datetime(2024, 2, 29, 23, 59, 58, 123000, tzinfo=UTC)
    assert type(first["big"]) is Int64 and type(first["n"]) is int
    assert first["price"] == Decimal128("12.50")
    assert first["uuid"].subtype == 4 and first["custom"].subtype == 0x80
    assert list(first)[:3] == ["_id", "zeta", "projectId"]
    assert list(first["nested"]) == ["b", "a"]


def test_a_collection_that_does_not_exist_dumps_as_empty(database, tmp_path):
    summary = dbdump.dump_collections(database, tmp_path / "db", {"nothing": {}})

    assert summary["nothing"]["count"] == 0
    assert (tmp_path / "db" / "bson" / "nothing.bson").read_bytes() == b""
    assert summary["nothing"]["sha256"] == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert "nothing" not in database.list_collection_names()


def test_metadata_parses_as_extended_json_and_lists_the_id_index(site, tmp_path):
    dbdump.dump_collections(site, tmp_path / "db", {"edition": {}})

    text = (tmp_path / "db" / "bson" / "edition.metadata.json").read_text()
    metadata = json_util.loads(text)
    assert metadata["collectionName"] == "edition"
    assert metadata["type"] == "collection"
    assert {"v": 2, "key": {"_id": 1}, "name": "_id_"} in metadata["indexes"]
    assert '"v":{"$numberInt":"2"}' in text  # canonical, compact, as mongodump writes it


CANONICAL = json_util.CANONICAL_JSON_OPTIONS


def test_json_export_has_one_canonical_extended_json_document_per_line_equal_to_the_documents(
    site, tmp_path
):
    summary = dbdump.dump_collections(site, tmp_path / "db", site_queries(site))

    for name in ("project", "edition", "user"):
        lines = (tmp_path / "db" / "json" / f"{name}.json").read_text("utf-8").splitlines()
        expected = all_documents(site, name)
        assert len(lines) == len(expected) and summary[name]["json"] == "canonical"
        for line, document in zip(lines, expected, strict=True):
            assert line == json_util.dumps(document, json_options=CANONICAL, separators=(",", ":"),
                                           ensure_ascii=False)  # as mongoexport --jsonFormat=canonical
            json.loads(line)  # valid JSON, even with NaN in the document
            assert bson.encode(json_util.loads(line, json_options=CANONICAL)) == bson.encode(document)


@pytest.mark.parametrize("drop", [(), ("code",), ("code", "not_a_number")])
def test_json_lines_equal_json_util_canonical_with_and_without_code_and_nan(drop):
    document = every_type_document(3, ObjectId())
    document["scoped"] = Code("f()", {"inner": Code("g()"), "n": Int64(1), "flag": False})
    document["small"] = {"int32": 5, "int64": Int64(5), "edge": 2**31, "negative": -(2**31), "no": False}
    for key in drop:
        del document[key]
    if "code" in drop:
        del document["scoped"]
    decoded = bson.decode(bson.encode(document), dbdump.READ_OPTIONS)

    assert dbdump.canonical_json(decoded) == json_util.dumps(
        decoded, json_options=CANONICAL, separators=(",", ":"), ensure_ascii=False)


def test_a_project_filtered_dump_holds_exactly_that_projects_records(
    site, project_ids, tmp_path
):
    mine, _other = project_ids
    summary = dbdump.dump_collections(site, tmp_path / "db", project_queries(mine))

    projects = list(dbdump.read_documents(tmp_path / "db" / "bson" / "project.bson"))
    editions = list(dbdump.read_documents(tmp_path / "db" / "bson" / "edition.bson"))
    assert [p["_id"] for p in projects] == [mine]
    expected = [e for e in all_documents(site, "edition") if e["projectId"] in (mine, str(mine))]
    assert_same_documents(editions, expected)
    assert summary["edition"]["count"] == 4
    assert not (tmp_path / "db" / "bson" / "user.bson").exists()


def test_site_restore_gives_back_exactly_the_dumped_state(site, tmp_path):
    names = engines.list_collections(site)
    dbdump.dump_collections(site, tmp_path / "db", site_queries(site))
    before = {name: _raw_documents(site, name) for name in names}

    site["edition"].insert_one({"_id": ObjectId(), "added": True})
    site["edition"].update_one({}, {"$set": {"n": "changed"}})
    site["user"].delete_one({"_id": "bob"})
    site["newcomer"].insert_one({"_id": 1})

    counts = dbrestore.restore_collections(site, tmp_path / "db" / "bson", names, None)

    assert engines.list_collections(site) == names
    assert {name: _raw_documents(site, name) for name in names} == before
    assert counts == {"edition": 7, "project": 2, "user": 2}


def test_project_restore_touches_no_other_project_nor_other_collections(
    site, project_ids, tmp_path
):
    mine, other = project_ids
    dbdump.dump_collections(site, tmp_path / "db", project_queries(mine))
    mine_before = editions_of(site, mine, str(mine))

    site["edition"].delete_many({"projectId": mine})
    site["edition"].insert_one({"_id": ObjectId(), "projectId": mine, "new": True})
    site["edition"].update_many({"projectId": other}, {"$set": {"touched": "after backup"}})
    site["project"].update_one({"_id": mine}, {"$set": {"name": "renamed"}})
    site["user"].insert_one({"_id": "carol"})
    others_after = editions_of(site, other)
    users_after = _raw_documents(site, "user")

    counts = dbrestore.restore_collections(
        site, tmp_path / "db" / "bson", ["project", "edition"], project_queries(mine)
    )

    assert counts == {"project": 1, "edition": 4}
    assert editions_of(site, mine, str(mine)) == mine_before
    assert editions_of(site, other) == others_after
    assert _raw_documents(site, "user") == users_after
    assert site["project"].find_one({"_id": mine})["name"] == "mine"
    assert site["project"].find_one({"_id": other})["name"] == "other"


def test_a_project_restore_onto_a_database_that_never_held_its_collections_loads_them(
    site, project_ids, tmp_path
):
    """A project backup taken in onto a fresh site (an imported archive, a new server):
    the embedded engine has no file yet for ``project`` or ``edition``."""
    mine, _ = project_ids
    dbdump.dump_collections(site, tmp_path / "db", project_queries(mine))
    expected = editions_of(site, mine, str(mine))
    fresh = engines.open_database(Config(data_dir=tmp_path / "fresh"))
    fresh["user"].insert_one({"_id": "alice"})  # a site, just not with these collections

    counts = dbrestore.restore_collections(
        fresh, tmp_path / "db" / "bson", ["project", "edition"], project_queries(mine)
    )

    assert counts == {"project": 1, "edition": len(expected)}
    assert editions_of(fresh, mine, str(mine)) == expected
    assert fresh["project"].find_one({"_id": mine})["name"] == "mine"


def test_a_project_restore_without_a_query_for_a_collection_is_refused(site, tmp_path):
    dbdump.dump_collections(site, tmp_path / "db", {"edition": {}})
    with pytest.raises(BadInput):
        dbrestore.restore_collections(site, tmp_path / "db" / "bson", ["edition"], {})
    assert site["edition"].count_documents({}) == 7


def test_a_restore_with_a_missing_file_changes_nothing(site, tmp_path):
    dbdump.dump_collections(site, tmp_path / "db", site_queries(site))
    (tmp_path / "db" / "bson" / "user.bson").unlink()
    with pytest.raises(CorruptBackup, match="user.bson"):
        dbrestore.restore_collections(
            site, tmp_path / "db" / "bson", ["edition", "project", "user"], None
        )
    assert site["edition"].count_documents({}) == 7


def test_verify_dump_finds_nothing_wrong_in_a_fresh_dump(site, tmp_path):
    summary = dbdump.dump_collections(site, tmp_path / "db", site_queries(site))
    assert dbdump.verify_dump(tmp_path / "db", summary) == []


def test_verify_dump_reports_a_flipped_byte_and_names_the_file(site, tmp_path):
    summary = dbdump.dump_collections(site, tmp_path / "db", site_queries(site))
    path = tmp_path / "db" / "bson" / "edition.bson"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    problems = dbdump.verify_dump(tmp_path / "db", summary)

    assert problems and all(str(path) in problem for problem in problems)


def test_verify_dump_reports_a_missing_file(site, tmp_path):
    summary = dbdump.dump_collections(site, tmp_path / "db", {"user": {}})
    (tmp_path / "db" / "bson" / "user.bson").unlink()
    assert dbdump.verify_dump(tmp_path / "db", summary) == [
        f"{tmp_path / 'db' / 'bson' / 'user.bson'} is missing"
    ]


@pytest.fixture
def counted_points():
    points = []
    previous = mutations.set_hook(lambda kind, detail: points.append((kind, detail)))
    yield points
    mutations.set_hook(previous)


def test_every_mutation_of_a_dump_and_a_restore_goes_through_the_mutation_layer(
    site, tmp_path, counted_points
):
    dbdump.dump_collections(site, tmp_path / "db", {"edition": {}})
    kinds = {kind for kind, _ in counted_points}
    assert {"mkdir", "create", "write"} <= kinds

    counted_points.clear()
    dbrestore.restore_collections(site, tmp_path / "db" / "bson", ["edition"], None)
    assert ("drop", "project") in counted_points and ("drop", "edition") in counted_points
    assert ("insert", "edition x7") in counted_points


def test_an_error_raised_at_a_mutation_point_stops_the_restore(site, tmp_path):
    dbdump.dump_collections(site, tmp_path / "db", site_queries(site))

    class Injected(Exception):
        pass

    def fail_on_insert(kind, detail):
        if kind == "insert":
            raise Injected(detail)

    previous = mutations.set_hook(fail_on_insert)
    try:
        with pytest.raises(Injected):
            dbrestore.restore_collections(
                site, tmp_path / "db" / "bson", ["edition", "project", "user"], None
            )
    finally:
        mutations.set_hook(previous)
    assert site["edition"].count_documents({}) == 0  # dropped, then stopped before inserting
    assert site["project"].count_documents({}) == 2  # never reached


def test_restore_inserts_in_bounded_batches(database, tmp_path, counted_points):
    database["many"].insert_many([{"_id": n} for n in range(2500)])
    dbdump.dump_collections(database, tmp_path / "db", {"many": {}})
    database["many"].delete_many({})
    counted_points.clear()

    count = dbrestore._insert_documents(
        database["many"], tmp_path / "db" / "bson" / "many.bson", limits=(1000, 4 << 20)
    )

    inserts = [detail for kind, detail in counted_points if kind == "insert"]
    assert inserts == ["many x1000", "many x1000", "many x500"]
    assert count == database["many"].count_documents({}) == 2500


def test_the_embedded_engine_restores_a_collection_in_one_insert(
    database, tmp_path, counted_points
):
    database["many"].insert_many([{"_id": n} for n in range(2500)])
    dbdump.dump_collections(database, tmp_path / "db", {"many": {}})
    counted_points.clear()

    dbrestore.restore_collections(database, tmp_path / "db" / "bson", ["many"], None)

    assert [d for kind, d in counted_points if kind == "insert"] == ["many x2500"]


def test_progress_counts_the_records_dumped_after_each_collection(site, tmp_path):
    steps = []
    dumped = dbdump.dump_collections(
        site, tmp_path / "db", site_queries(site), lambda *step: steps.append(step)
    )
    counts = [dumped[name]["count"] for name in ("edition", "project", "user")]
    total = sum(counts)
    assert steps == [
        ("dumping", 0, None), ("dumping", counts[0], None), ("dumping", counts[0] + counts[1], None),
        ("dumping", total, total),
    ]


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "system.users", "nul\0"])
def test_collection_names_that_could_leave_the_folder_are_refused(database, tmp_path, name):
    with pytest.raises(InvalidName):
        dbdump.dump_collections(database, tmp_path / "db", {name: {}})
    assert not (tmp_path / "db").exists()


def test_summarise_records_counts_per_collection(site, project_ids):
    mine, _ = project_ids
    assert dbdump.summarise_records(site, project_queries(mine)) == {"project": 1, "edition": 4}


def test_reading_the_embedded_engine_leaves_no_files_beside_the_collection(site, tmp_path):
    dbdump.dump_collections(site, tmp_path / "db", site_queries(site))
    folder = engines.embedded_collection_file(site, "edition").parent
    assert sorted(p.name for p in folder.iterdir()) == [
        "edition.collection", "project.collection", "user.collection"
    ]
    assert site.list_collection_names().count("edition") == 1


def test_raw_documents_of_the_embedded_engine_are_exactly_the_bson_of_find(site):
    raw = b"".join(engines.raw_documents(site, "edition", {}))
    assert raw == b"".join(bson.encode(d) for d in site["edition"].find())


def test_a_collection_being_written_is_read_through_find(site):
    wal = engines.embedded_collection_file(site, "edition").with_name("edition.collection-wal")
    wal.write_bytes(b"")  # what montydb leaves while a write is in progress
    try:
        raw = b"".join(engines.raw_documents(site, "edition", {}))
    finally:
        wal.unlink(missing_ok=True)  # montydb removes it once its own read is done
    assert raw == b"".join(bson.encode(d) for d in site["edition"].find())


# -- a real server (FerretDB, or the one STRONGROOM_TEST_MONGODB_URI names) ----------


@pytest.fixture
def mongo_database(server_config):
    return engines.open_database(server_config)


SERVER_REFUSED = ("price", "code", "low", "high", "not_a_number")


def server_document(n: int, project_id: ObjectId) -> dict:
    """``every_type_document`` less the types FerretDB 1.x cannot store (Decimal128, Code,
    MinKey, MaxKey, NaN: it drops the connection). The BSON fidelity test covers each type
    on the server, skipping with the server's own error."""
    document = every_type_document(n, project_id)
    for key in SERVER_REFUSED:
        del document[key]
    return document


def test_mongodb_site_round_trip_keeps_documents_and_indexes(mongo_database, project_ids, tmp_path):
    database = mongo_database
    mine, other = project_ids
    database["edition"].insert_many(
        [server_document(n, mine if n % 2 else other) for n in range(5)]
    )
    database["edition"].create_index([("projectId", 1), ("n", -1)], name="by_project")
    database["user"].insert_one({"_id": "alice"})
    before = {name: _raw_documents(database, name) for name in ("edition", "user")}
    summary = dbdump.dump_collections(database, tmp_path / "db", site_queries(database))
    metadata = json_util.loads((tmp_path / "db" / "bson" / "edition.metadata.json").read_text())
    assert [i["name"] for i in metadata["indexes"]] == ["_id_", "by_project"]
    assert len(metadata["uuid"]) == 32

    database.drop_collection("edition")
    database["user"].insert_one({"_id": "mallory"})
    database["stale"].insert_one({"_id": 1})
    restored = dbrestore.restore_collections(database, tmp_path / "db" / "bson", ["edition", "user"], None)

    assert engines.list_collections(database) == ["edition", "user"]
    assert {name: _raw_documents(database, name) for name in ("edition", "user")} == before
    assert "by_project" in database["edition"].index_information()
    assert dbdump.verify_dump(tmp_path / "db", summary) == []
    assert restored.warnings == []
    assert set(database.list_collection_names()) == {"edition", "user"}  # no staging, nothing set aside


def test_mongodb_project_round_trip_touches_no_other_project(mongo_database, project_ids, tmp_path):
    database = mongo_database
    mine, other = project_ids
    database["project"].insert_many([{"_id": mine}, {"_id": other}])
    database["edition"].insert_many(
        [server_document(n, mine if n % 2 else other) for n in range(6)]
    )
    dbdump.dump_collections(database, tmp_path / "db", project_queries(mine))
    database["edition"].delete_many({})

    counts = dbrestore.restore_collections(
        database, tmp_path / "db" / "bson", ["project", "edition"], project_queries(mine)
    )

    assert counts == {"project": 1, "edition": 3}
    assert database["edition"].count_documents({"projectId": other}) == 0
    assert database["project"].count_documents({}) == 2


def _write_metadata(db_dir, name: str, options: dict, indexes: list[dict]) -> None:
    metadata = {"options": options, "indexes": [dict(dbdump.ID_INDEX), *indexes],
                "collectionName": name, "type": "collection"}
    (db_dir / "bson" / f"{name}.metadata.json").write_text(
        json_util.dumps(metadata, json_options=json_util.CANONICAL_JSON_OPTIONS))


TTL_INDEX = {"v": 2, "key": {"when": 1}, "name": "expire", "expireAfterSeconds": 60}
PLAIN_INDEX = {"v": 2, "key": {"n": 1}, "name": "by_n", "unique": True}
VALIDATOR = {"validator": {"n": {"$type": "int"}}}


def test_what_the_server_refuses_of_a_dump_is_named_and_the_rest_restored(mongo_database, project_ids, tmp_path):
    """A dump from a fuller MongoDB (a TTL index, a validator) restored on a server that
    implements neither: the documents and the plain index go back, the rest is named."""
    database = mongo_database
    database["edition"].insert_many([server_document(n, project_ids[0]) for n in range(3)])
    dbdump.dump_collections(database, tmp_path / "db", {"edition": {}})
    _write_metadata(tmp_path / "db", "edition", VALIDATOR, [PLAIN_INDEX, TTL_INDEX])
    before = _raw_documents(database, "edition")

    restored = dbrestore.restore_collections(database, tmp_path / "db" / "bson", ["edition"], None)

    assert _raw_documents(database, "edition") == before
    assert "by_n" in database["edition"].index_information()
    accepted = database["edition"].index_information()
    expected = [] if "expire" in accepted else ["edition: index 'expire' not restored: the server refused it"]
    options = next(database.list_collections(filter={"name": "edition"})).get("options", {})
    if "validator" not in options:
        expected.insert(0, "edition: collection option 'validator' not restored: the server refused it")
    assert [w.split(" (")[0] for w in restored.warnings] == expected
    assert all("not implemented" in w for w in restored.warnings)  # the server's own words


def test_the_embedded_engine_names_the_indexes_and_options_it_cannot_keep(site, tmp_path):
    dbdump.dump_collections(site, tmp_path / "db", {"edition": {}})
    _write_metadata(tmp_path / "db", "edition", VALIDATOR, [PLAIN_INDEX])

    restored = dbrestore.restore_collections(site, tmp_path / "db" / "bson", ["edition"], None)

    assert restored.warnings == [
        "edition: collection options validator not restored: the embedded engine keeps none",
        "edition: index 'by_n' not restored: the embedded engine keeps no secondary indexes",
    ]


def _append_raw(bson_path, document: bytes) -> None:
    with open(bson_path, "ab") as fh:
        fh.write(document)


def _dotted_key_document() -> bytes:
    """A document with the key ``a.b``: legal BSON, refused by servers that check keys."""
    body = b"\x10a.b\x00" + (1).to_bytes(4, "little") + b"\x07_id\x00" + bytes(ObjectId().binary)
    return (len(body) + 5).to_bytes(4, "little") + body + b"\x00"


def test_a_document_the_server_refuses_fails_the_restore_naming_it(mongo_database, project_ids, tmp_path):
    database = mongo_database
    database["edition"].insert_many([server_document(n, project_ids[0]) for n in range(3)])
    dbdump.dump_collections(database, tmp_path / "db", {"edition": {}})
    refused = _dotted_key_document()
    _append_raw(tmp_path / "db" / "bson" / "edition.bson", refused)
    probe = database["probe"]
    with pytest.raises(Exception):  # noqa: B017 - any refusal: what this test is about
        probe.insert_one(bson.raw_bson.RawBSONDocument(refused))
    before = _raw_documents(database, "edition")

    with pytest.raises(ServerRefused, match=r"refused document ObjectId\('[0-9a-f]{24}'\) of edition.*a\.b"):
        dbrestore.restore_collections(database, tmp_path / "db" / "bson", ["edition"], None)

    assert _raw_documents(database, "edition") == before  # the live collection was never touched


def test_a_server_without_snapshot_reads_dumps_collection_by_collection(engine_database, engine_site, tmp_path):
    # FerretDB 1.x is a standalone server and the embedded engine has no sessions: neither
    # offers the "snapshot" read concern, and the dump must not ask for it.
    assert engines.snapshot_reads(engine_database) is False
    made = dbdump.dump_collections(engine_database, tmp_path / "db", {"project": {}, "edition": {}})
    assert made["project"]["count"] == len(engine_site.project_ids)


def test_a_snapshot_the_server_lost_midway_is_read_again_without_it(engine_database, engine_site, tmp_path,
                                                                    monkeypatch, caplog):
    """A dump longer than the server's snapshot history window fails with SnapshotTooOld
    (code 239) in the middle: it is read again from the start without a snapshot, whole."""
    from pymongo.errors import OperationFailure

    queries = {"project": {}, "edition": {}, "user": {}}
    expected = dbdump.dump_collections(engine_database, tmp_path / "plain", queries)
    snapshot = object()
    reads = []
    plain_reads = engines.raw_documents

    @contextmanager
    def a_snapshot(database, wanted=True):
        yield snapshot

    def raw_documents(database, name, query, session=None, batch=None):
        reads.append((name, session is snapshot))
        if session is snapshot and name == "edition":
            raise OperationFailure("Read timestamp is older than the oldest available timestamp", code=239)
        return plain_reads(database, name, query, None, batch)

    monkeypatch.setattr(engines, "snapshot_session", a_snapshot)
    monkeypatch.setattr(engines, "raw_documents", raw_documents)
    with caplog.at_level("WARNING", logger="strongroom"):
        made = dbdump.dump_collections(engine_database, tmp_path / "again", queries)
    assert made == expected
    assert reads == [("project", True), ("edition", True), ("project", False), ("edition", False), ("user", False)]
    assert "could not keep one moment" in caplog.text
    assert sorted(p.name for p in (tmp_path / "again" / "bson").iterdir()) == sorted(
        p.name for p in (tmp_path / "plain" / "bson").iterdir())
