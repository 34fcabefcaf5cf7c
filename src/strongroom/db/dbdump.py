"""Dump collections in mongodump's on-disk format (``dbrestore`` puts them back).

A dump of a database into ``db_dir`` holds, per collection ``<coll>``:

- ``bson/<coll>.bson``: the documents as concatenated raw BSON, the bytes the engine
  stores (mongodump's format; ``mongorestore --dir db_dir/bson`` accepts it);
- ``bson/<coll>.metadata.json``: the collection's indexes and options as mongodump writes
  them, canonical Extended JSON (``{"options"?, "indexes", "uuid"?, "collectionName",
  "type"}``);
- ``json/<coll>.json``: the same documents as relaxed Extended JSON, one a line
  (mongoexport's format), for people to read.

Guarantees:

- Documents are never decoded and re-encoded on the way to the ``.bson`` file, nor on the
  way back into the database (they are inserted as ``RawBSONDocument``), so key order and
  every BSON type (``Int64``, ``Decimal128``, binary subtypes, dates) survive exactly.
- The ``.bson`` bytes are hashed (SHA-256) as they are written, and every file is
  fsync'ed before it is closed: the counts, sizes and hashes returned describe durable
  data, ready for the manifest.
- Every change to a file or to the database goes through ``strongroom.fs.mutations``.
- Restore checks that every file it needs is there before it changes anything.

The embedded engine (montydb) keeps no secondary indexes: its metadata lists just the
``_id_`` index and a restore there recreates none. It also inserts a whole collection in
one ``insert_many`` there (see ``UNBATCHED``); MongoDB gets bounded batches.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from uuid import UUID

import bson
from bson import Code, ObjectId, json_util
from bson.codec_options import CodecOptions, DatetimeConversion, TypeDecoder, TypeRegistry
from bson.raw_bson import RawBSONDocument

from strongroom.db import engines
from strongroom.errors import InvalidName
from strongroom.fs import mutations

Progress = Callable[[str, int, "int | None"], None]

BSON_DIR = "bson"
JSON_DIR = "json"
ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}
INSERT_BATCH_DOCUMENTS = 1000
INSERT_BATCH_BYTES = 4 << 20
# montydb checks each inserted _id against a *list* of the collection's keys, read again
# at every insert_many: n documents in batches cost ~n*n/2 comparisons (20,000 documents:
# 12 s in batches of 1000, 0.9 s in one). So the embedded engine gets one batch per file.
UNBATCHED = (float("inf"), float("inf"))

# Decoding for people (JSON, read_documents): aware UTC datetimes, and dates outside
# Python's range kept as DatetimeMS instead of failing.
READ_OPTIONS = CodecOptions(tz_aware=True, datetime_conversion=DatetimeConversion.DATETIME_AUTO)
# Raw documents, and should an engine look inside one (montydb does), dates outside
# Python's range come out as DatetimeMS instead of failing.
RAW_OPTIONS = CodecOptions(document_class=RawBSONDocument, datetime_conversion=DatetimeConversion.DATETIME_AUTO)



def _relaxed_default(value):
    """``json_util.default`` in relaxed mode, with the commonest type (``ObjectId``) first."""
    if type(value) is ObjectId:
        return {"$oid": str(value)}
    return json_util.default(value, json_util.RELAXED_JSON_OPTIONS)


def dump_collections(
    database, db_dir: Path, queries: Mapping[str, dict | Callable[[], dict]], progress: Progress | None = None
) -> dict[str, dict]:
    """Dump the documents of each collection matching its query (``{}``: all) into ``db_dir``.

    A query may be a function, called when its collection's turn comes, once every
    collection before it is written: a project's collection linked through another reads
    the ids from that other's dump (``scopes.project_query_makers``). A collection that
    does not exist dumps as empty. Returns, per collection, ``{"count": documents,
    "bytes": size of the .bson file, "sha256": its hex digest}``.
    """
    for name in queries:
        check_collection_name(name)
    collections = (
        (name, engines.raw_documents(database, name, query() if callable(query) else query),
         lambda name=name: collection_metadata(database, name))
        for name, query in queries.items()
    )
    return write_collections(db_dir, collections, len(queries), progress)


def write_collections(
    db_dir: Path,
    collections: Iterable[tuple[str, Iterable[bytes], Callable[[], dict]]],
    total: int,
    progress: Progress | None = None,
) -> dict[str, dict]:
    """Write a dump from ``(name, batches of raw BSON, metadata())`` per collection.

    ``dump_collections`` feeds it from a database; importing feeds it documents read from
    a foreign dump, so both land in exactly the same format. Same return value.
    """
    bson_dir, json_dir = db_dir / BSON_DIR, db_dir / JSON_DIR
    mutations.makedirs(bson_dir)
    mutations.makedirs(json_dir)
    summary = {}
    for name, batches, metadata_of in collections:
        check_collection_name(name)
        _report(progress, "dumping", sum(s["count"] for s in summary.values()), None)
        summary[name] = _dump_documents(batches, bson_dir / f"{name}.bson", json_dir / f"{name}.json")
        metadata = json_util.dumps(
            metadata_of(),
            json_options=json_util.CANONICAL_JSON_OPTIONS,
            separators=(",", ":"),
        ).encode()
        mutations.write_file(bson_dir / f"{name}.metadata.json", metadata, sync=True)
        summary[name]["metadata_sha256"] = hashlib.sha256(metadata).hexdigest()
    mutations.fsync_dir(bson_dir)
    mutations.fsync_dir(json_dir)
    dumped = sum(s["count"] for s in summary.values())
    _report(progress, "dumping", dumped, dumped)
    return summary


def _dump_documents(batches: Iterable[bytes], bson_path: Path, json_path: Path) -> dict:
    digest, json_digest, count, size = hashlib.sha256(), hashlib.sha256(), 0, 0
    with mutations.create(bson_path) as bson_file, mutations.create(json_path) as json_file:
        for batch in batches:
            mutations.write(bson_file, batch)
            digest.update(batch)
            size += len(batch)
            documents, has_code = _decode_for_json(batch)
            count += len(documents)
            lines = _json_lines(documents, has_code).encode()
            json_digest.update(lines)
            mutations.write(json_file, lines)
        _sync(bson_file)
        _sync(json_file)
    return {"count": count, "bytes": size, "sha256": digest.hexdigest(), "json_sha256": json_digest.hexdigest()}


class _CodeSpotter(TypeDecoder):
    """Notes whether a decoded batch holds any ``Code`` value (see ``_json_lines``)."""

    bson_type = Code

    def __init__(self) -> None:
        self.found = False

    def transform_bson(self, value):
        self.found = True
        return value


def _decode_for_json(batch: bytes) -> tuple[list[dict], bool]:
    spotter = _CodeSpotter()
    options = READ_OPTIONS.with_options(type_registry=TypeRegistry([spotter]))
    return bson.decode_all(batch, options), spotter.found


def _json_lines(documents: list[dict], has_code: bool) -> str:
    """Relaxed Extended JSON, one document a line, as ``json_util.dumps`` writes it.

    ``json.dumps`` with ``json_util.default`` gives the same text several times faster,
    except for ``Code`` (a ``str`` subclass it would write as a plain string, so a batch
    holding one goes through json_util) and for NaN and infinities (refused by
    ``allow_nan=False``, then written by json_util).
    """
    if has_code:
        return "".join(_relaxed_json_slow(document) + "\n" for document in documents)
    return "".join(_relaxed_json(document) + "\n" for document in documents)


def _relaxed_json(document: dict) -> str:
    try:
        return json.dumps(document, default=_relaxed_default, allow_nan=False, ensure_ascii=False)
    except ValueError:
        return _relaxed_json_slow(document)


def _relaxed_json_slow(document: dict) -> str:
    return json_util.dumps(
        document, json_options=json_util.RELAXED_JSON_OPTIONS, ensure_ascii=False
    )


def collection_metadata(database, name: str) -> dict:
    """The collection's options, indexes, uuid, name and type, as mongodump records them."""
    if engines.is_embedded(database):
        return {"indexes": [dict(ID_INDEX)], "collectionName": name, "type": "collection"}
    info = next(iter(database.list_collections(filter={"name": name})), None)
    if info is None:  # does not exist: dumped as empty, like a fresh collection
        return {"indexes": [dict(ID_INDEX)], "collectionName": name, "type": "collection"}
    metadata = {}
    if info.get("options"):
        metadata["options"] = info["options"]
    metadata["indexes"] = list(database[name].list_indexes())
    uuid = info.get("info", {}).get("uuid")
    if uuid is not None:
        metadata["uuid"] = uuid.hex if isinstance(uuid, UUID) else bytes(uuid).hex()
    metadata["collectionName"] = name
    metadata["type"] = info.get("type", "collection")
    return metadata


def read_documents(bson_path: Path) -> Iterator[dict]:
    """The documents of a ``.bson`` file, one at a time (datetimes aware, in UTC)."""
    with open(bson_path, "rb") as fh:
        yield from bson.decode_file_iter(fh, READ_OPTIONS)


def verify_dump(db_dir: Path, collections: dict[str, dict]) -> list[str]:
    """Re-hash every ``.bson`` file against its recorded count, size and SHA-256, and its
    JSON and metadata files against theirs (recorded since manifests are signed).

    Returns the problems found, each a sentence naming the file; empty means all is well.
    """
    problems = []
    for name, expected in collections.items():
        for path, key in ((db_dir / JSON_DIR / f"{name}.json", "json_sha256"),
                          (db_dir / BSON_DIR / f"{name}.metadata.json", "metadata_sha256")):
            problem = _check_sha256(path, expected.get(key))
            if problem:
                problems.append(problem)
        path = db_dir / BSON_DIR / f"{name}.bson"
        if not path.is_file():
            problems.append(f"{path} is missing")
            continue
        try:
            count, size, sha256 = _measure(path)
        except bson.errors.InvalidBSON as exc:
            problems.append(f"{path} is not valid BSON: {exc}")
            continue
        for what, found in (("count", count), ("bytes", size), ("sha256", sha256)):
            if found != expected.get(what):
                problems.append(
                    f"{path}: {what} is {found}, the backup recorded {expected.get(what)}"
                )
    return problems


def _check_sha256(path: Path, expected: str | None) -> str | None:
    """A side file's problem, if any; a backup that recorded no hash for it (format 1)
    is checked for its presence alone."""
    try:
        with open(path, "rb") as fh:
            found = hashlib.file_digest(fh, "sha256").hexdigest()
    except FileNotFoundError:
        return f"{path} is missing"
    if expected is not None and found != expected:
        return f"{path}: its content was changed (sha256 is {found}, the backup recorded {expected})"
    return None


def _measure(path: Path) -> tuple[int, int, str]:
    digest, count, size = hashlib.sha256(), 0, 0
    with open(path, "rb") as fh:
        for document in bson.decode_file_iter(fh, RAW_OPTIONS):
            digest.update(document.raw)
            size += len(document.raw)
            count += 1
    return count, size, digest.hexdigest()


def summarise_records(database, queries: dict[str, dict]) -> dict[str, int]:
    """How many records each collection holds that match its query."""
    return {name: database[name].count_documents(query) for name, query in queries.items()}


def check_collection_name(name: str) -> str:
    """A collection name is used as a file name: refuse any that could leave the folder."""
    if (
        not isinstance(name, str)
        or not name
        or name.startswith((".", "system."))
        or any(c in name for c in "/\\\0")
    ):
        raise InvalidName(f"{name!r} is not a collection name Strongroom can back up")
    return name


def _sync(fh) -> None:
    fh.flush()
    os.fsync(fh.fileno())


def _report(progress: Progress | None, step: str, done: int, total: int | None) -> None:
    if progress is not None:
        progress(step, done, total)
