"""Every BSON type survives a backup and a restore byte for byte, on both engines.

Each document holds one kind of value. On the embedded engine every kind must round-trip;
on the server, a kind the server refuses (its own error on a plain insert) is skipped
with that error, every other must round-trip exactly. "Exactly" means the bytes the
engine hands back after the restore equal ``bson.encode`` of the original document:
same keys, same order, same types, same values (-0.0 and NaN included).
"""

from __future__ import annotations

import datetime
import hashlib

import bson
import pytest
from bson import Binary, Code, DBRef, Decimal128, Int64, ObjectId, Regex, Timestamp, json_util
from bson.codec_options import DatetimeConversion
from bson.datetime_ms import DatetimeMS
from bson.max_key import MaxKey
from bson.min_key import MinKey
from bson.raw_bson import RawBSONDocument
from pymongo.errors import AutoReconnect

from strongroom.db import dbdump, dbrestore, engines
from strongroom.db.engines import open_database
from strongroom.service import Strongroom
from tampering import read_manifest, resign

UTC = datetime.UTC
MAX_BSON = 16 * 1024 * 1024


def _nested_documents(depth: int) -> dict:
    value: dict = {"bottom": True}
    for level in range(depth - 1):
        value = {f"level{level}": value}
    return value


def _nested_arrays(depth: int) -> list:
    value: list = ["bottom"]
    for _ in range(depth - 1):
        value = [value]
    return value


KINDS = {
    "int32": 2**31 - 1,
    "int64": Int64(2**63 - 1),
    "double": 3.141592653589793,
    "double -0.0": -0.0,
    "double NaN": float("nan"),
    "double +infinity": float("inf"),
    "double -infinity": float("-inf"),
    "decimal128": Decimal128("1234567890.123456789012345678901234"),
    "decimal128 NaN": Decimal128("NaN"),
    "decimal128 -0": Decimal128("-0"),
    "date before 1970": datetime.datetime(1901, 12, 13, 20, 45, 52, 1000, tzinfo=UTC),
    "date after 2038": datetime.datetime(2106, 2, 7, 6, 28, 16, tzinfo=UTC),
    "date outside Python's range": DatetimeMS(-62135596800001 - 10**12),
    **{f"binary subtype {subtype}": Binary(bytes(range(16)), subtype) for subtype in (0, 1, 2, 3, 4, 5, 6, 7, 8, 0x80)},
    "objectid": ObjectId("64b7f0c2a1b2c3d4e5f60718"),
    "timestamp": Timestamp(4294967295, 4294967295),
    "regex": Regex("^a[b-z]*$", "imsx"),
    "minkey": MinKey(),
    "maxkey": MaxKey(),
    "code": Code("function (x) { return x * 2; }"),
    "code with scope": Code("function () { return y; }", {"y": 1}),
    "dbref": DBRef("edition", ObjectId("64b7f0c2a1b2c3d4e5f60719"), "site"),
    "string": "plain ascii",
    "unicode string": "\u00e9t\u00e9 \u4e2d\u6587 \U0001f600 \u202e",
    "boolean": True,
    "null": None,
    "array": [1, "two", 3.0, None, {"four": 4}],
    "nested arrays 100 deep": _nested_arrays(100),
    "nested documents 100 deep": _nested_documents(99),  # 100 with the top-level document
    "unicode keys": {"\u00e9t\u00e9": 1, "\u4e2d\u6587": 2, "\U0001f600": 3, "key with space": 4},
}


# Kinds a server may take and store changed; the restore must then say so.
ALTERED_BY_SERVER = {"double -0.0"}


def document_of(kind: str, n: int = 0) -> dict:
    return {"_id": n, "kind": kind, "value": KINDS[kind], "after": "key order is kept"}


def near_16_mb_document() -> dict:
    """A document 1 KiB below the 16 MiB limit."""
    document = {"_id": "big", "kind": "near 16 MB", "data": Binary(b"")}
    overhead = len(bson.encode(document))
    document["data"] = Binary(b"\xa5" * (MAX_BSON - 1024 - overhead))
    return document


def stored(database, name: str) -> list[bytes]:
    """The documents as the engine hands them back, each its raw bytes, in natural order."""
    raw = b"".join(engines.raw_documents(database, name, {}))
    return [d.raw for d in bson.decode_all(raw, dbdump.RAW_OPTIONS)]


def refusal(database, document: dict, exact: bool = False) -> str | None:
    """The server's own error on a plain insert of ``document``, or ``None`` if it took it
    (``exact``: and gives back its very bytes)."""
    probe = database["fidelity_probe"]
    try:
        probe.insert_one(RawBSONDocument(bson.encode(document), dbdump.RAW_OPTIONS))
        if exact and stored(database, "fidelity_probe") != [bson.encode(document)]:
            return "stored altered"
    except AutoReconnect as exc:  # the server's answer was to close the connection
        return f"it closed the connection on the insert ({exc})"
    except Exception as exc:  # noqa: BLE001 - whatever the server answers is the reason
        return f"{type(exc).__name__}: {str(exc).split(', full error')[0]}"
    finally:
        database.drop_collection("fidelity_probe")
    return None


def skip_if_refused(database, document: dict) -> None:
    if not engines.is_embedded(database):
        reason = refusal(database, document)
        if reason:
            pytest.skip(f"the server refuses {document['kind']}: {reason}")


def write_dump(db_dir, documents: list[dict]) -> None:
    """A dump of collection ``fidelity`` as Strongroom writes it, made from the documents
    themselves (so a server that alters a value on insert cannot hide it)."""
    (db_dir / "bson").mkdir(parents=True)
    (db_dir / "bson" / "fidelity.bson").write_bytes(b"".join(bson.encode(d) for d in documents))
    (db_dir / "bson" / "fidelity.metadata.json").write_text(
        '{"indexes":[{"v":{"$numberInt":"2"},"key":{"_id":{"$numberInt":"1"}},"name":"_id_"}],'
        '"collectionName":"fidelity","type":"collection"}')


@pytest.mark.parametrize("kind", list(KINDS))
def test_each_bson_type_round_trips_byte_exact_through_dump_and_restore(engine_config, kind, tmp_path):
    database = open_database(engine_config)
    document = document_of(kind)
    skip_if_refused(database, document)
    write_dump(tmp_path / "db", [document])

    restored = dbrestore.restore_collections(database, tmp_path / "db" / "bson", ["fidelity"], None)
    summary = dbdump.dump_collections(database, tmp_path / "again", {"fidelity": {}})

    if kind in ALTERED_BY_SERVER and not engines.is_embedded(database) and stored(database, "fidelity") != [
            bson.encode(document)]:
        # Not silent: the restore names what the server changed.
        assert restored.warnings == [("fidelity: 1 document(s) stored by the server not exactly as backed up "
                                      "(it changed a value it accepted, such as -0.0 into 0.0)")]
        pytest.skip(f"the server stores {kind} altered (named in the restore's warnings)")
    assert restored.warnings == []
    assert stored(database, "fidelity") == [bson.encode(document)]
    assert (tmp_path / "again" / "bson" / "fidelity.bson").read_bytes() == bson.encode(document)
    assert summary["fidelity"]["count"] == 1


def test_every_type_the_engine_accepts_round_trips_through_a_backup_and_a_restore(engine_config):
    """The service's own backup and restore, every accepted kind at once (and a document
    near 16 MB), then a change, then the restore gives back the very bytes."""
    database = open_database(engine_config)
    documents = [document_of(kind, n) for n, kind in enumerate(KINDS)]
    accepted = [d for d in documents if engines.is_embedded(database) or refusal(database, d, exact=True) is None]
    assert len(accepted) >= len(documents) // 2  # most kinds; the rest are named by the test above
    big = near_16_mb_document()
    engine_config.working_dir.mkdir(parents=True)
    (engine_config.working_dir / "site.json").write_text("{}")
    database["fidelity"].insert_many([RawBSONDocument(bson.encode(d), dbdump.RAW_OPTIONS) for d in accepted])
    database["big"].insert_one(RawBSONDocument(bson.encode(big), dbdump.RAW_OPTIONS))
    service = Strongroom(engine_config, database=database)
    made = service.make_backup()
    database["fidelity"].drop()  # not delete_many: montydb cannot query dates outside Python's range
    database["big"].drop()

    restored = service.restore_backup(made["id"])

    assert stored(database, "fidelity") == [bson.encode(d) for d in accepted]
    assert restored["warnings"] == []
    assert stored(database, "big") == [bson.encode(big)]
    assert service.verify_backup(made["id"])["ok"]


JSON_READ = json_util.CANONICAL_JSON_OPTIONS.with_options(
    tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)


def test_a_backups_json_gives_back_every_type_as_it_was(config):
    """``db/json`` is canonical Extended JSON: read back with ``json_util.loads`` (or
    ``mongoimport``), every value has its type again, an ``Int64(5)`` an ``Int64``."""
    database = open_database(config)
    documents = [document_of(kind, n) for n, kind in enumerate(KINDS)]
    documents.append({"_id": len(documents), "kind": "small int64", "value": Int64(5), "int32": 5})
    database["fidelity"].insert_many([RawBSONDocument(bson.encode(d), dbdump.RAW_OPTIONS) for d in documents])
    config.working_dir.mkdir(parents=True)
    made = Strongroom(config, database=database).make_backup()

    lines = (config.backups_dir / "site" / made["id"] / "db" / "json" / "fidelity.json").read_text("utf-8")
    loaded = [json_util.loads(line, json_options=JSON_READ) for line in lines.splitlines()]

    assert [bson.encode(d) for d in loaded] == [bson.encode(d) for d in documents]
    assert type(loaded[-1]["value"]) is Int64 and type(loaded[-1]["int32"]) is int
    assert '"value":{"$numberLong":"5"}' in lines.splitlines()[-1]


def test_a_backup_whose_json_is_relaxed_as_older_versions_wrote_it_still_verifies_and_restores(
        config, site, service, database):
    made = service.make_backup()["id"]
    folder = config.backups_dir / "site" / made
    manifest = read_manifest(folder)
    for name in manifest["collections"]:
        path = folder / "db" / "json" / f"{name}.json"
        documents = list(dbdump.read_documents(folder / "db" / "bson" / f"{name}.bson"))
        text = "".join(json_util.dumps(d, json_options=json_util.RELAXED_JSON_OPTIONS, ensure_ascii=False) + "\n"
                       for d in documents)
        path.write_text(text, "utf-8")
        manifest["collections"][name]["json_sha256"] = hashlib.sha256(text.encode()).hexdigest()
        manifest["collections"][name].pop("json", None)
    resign(config, folder, manifest)
    database["project"].delete_many({})

    assert service.verify_backup(made)["ok"]
    assert service.restore_backup(made)["restored"] == made
    assert database["project"].count_documents({}) == len(site.project_ids)
