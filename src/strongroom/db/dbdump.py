"""Dump collections in mongodump's on-disk format (``dbrestore`` puts them back).

A dump of a database into ``db_dir`` holds, per collection ``<coll>``:

- ``bson/<coll>.bson``: the documents as concatenated raw BSON, the bytes the engine
  stores (mongodump's format; ``mongorestore --dir db_dir/bson`` accepts it);
- ``bson/<coll>.metadata.json``: the collection's indexes and options as mongodump writes
  them, canonical Extended JSON (``{"options"?, "indexes", "uuid"?, "collectionName",
  "type"}``);
- ``json/<coll>.json``: the same documents as canonical Extended JSON, one a line, as
  ``mongoexport --jsonFormat=canonical`` writes them, for people and tools to read:
  every type is named (``{"$numberLong": "5"}``, ``{"$numberInt": "5"}``,
  ``{"$numberDouble": "1.5"}``, ``{"$date": {"$numberLong": …}}``), so
  ``json_util.loads`` or ``mongoimport`` gives back the very values (an ``Int64`` stays
  an ``Int64``). Backups made before this wrote relaxed Extended JSON there (where an
  ``Int64`` that fits in 32 bits reads back as an int); their manifest records the hash
  of the file they hold, so they verify as they are, and their BSON is the data.

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
import logging
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from uuid import UUID

import bson
from bson import ObjectId, json_util
from bson.codec_options import CodecOptions, DatetimeConversion
from bson.raw_bson import RawBSONDocument

from strongroom.db import engines
from strongroom.errors import InvalidName
from strongroom.fs import mutations

log = logging.getLogger("strongroom")

Progress = Callable[[str, int, "int | None"], None]

BSON_DIR = "bson"
JSON_DIR = "json"
ID_INDEX = {"v": 2, "key": {"_id": 1}, "name": "_id_"}
# Insert batches of up to 10,000 documents or 16 MB (pymongo splits a batch into messages
# of 48 MB at most anyway): FerretDB spends about 10 % less on 200,000 documents of 1 KB
# than in batches of 1,000 or 4 MB.
INSERT_BATCH_DOCUMENTS = 10_000
INSERT_BATCH_BYTES = 16 << 20
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



READ_AHEAD = 2  # batches a dump's reader may hold ready (``read_ahead``), about 4 MB each from a server
JSON_MODE = "canonical"  # what ``json/<coll>.json`` holds, recorded with each collection
INT32 = range(-(2**31), 2**31)


def dump_collections(
    database, db_dir: Path, queries: Mapping[str, dict | Callable[[], dict]], progress: Progress | None = None
) -> dict[str, dict]:
    """Dump the documents of each collection matching its query (``{}``: all) into ``db_dir``.

    Where the server offers snapshot reads every collection is read at one moment
    (``engines.snapshot_session``); should the server lose that moment (a dump longer than
    its history window), the dump is read again without it, with a warning in the log.

    A query may be a function, called when its collection's turn comes, once every
    collection before it is written: a project's collection linked through another reads
    the ids from that other's dump (``scopes.project_query_makers``). A collection that
    does not exist dumps as empty. Returns, per collection, ``{"count": documents,
    "bytes": size of the .bson file, "sha256": its hex digest}``.
    """
    for name in queries:
        check_collection_name(name)
    try:
        with engines.snapshot_session(database) as session:
            return _dump_in(database, db_dir, queries, progress, session)
    except Exception as exc:
        if engines.reply_too_large(exc):
            log.warning("the server sent a batch larger than a message may hold (%s): reading the dump again "
                        "one document a batch", exc)
            _empty(db_dir)
            with engines.snapshot_session(database) as session:
                return _dump_in(database, db_dir, queries, progress, session, engines.ONE_BY_ONE)
        if not engines.snapshot_lost(exc):
            raise
        log.warning("the server could not keep one moment for the whole dump (%s): reading it again "
                    "collection by collection", exc)
        _empty(db_dir)
        return _dump_in(database, db_dir, queries, progress, None)


def _dump_in(database, db_dir: Path, queries: Mapping[str, dict | Callable[[], dict]],
             progress: Progress | None, session, batch: int | None = None) -> dict[str, dict]:
    ahead = (lambda batches: batches) if engines.is_embedded(database) else read_ahead  # one SQLite read there
    collections = (
        (name, ahead(engines.raw_documents(database, name, query() if callable(query) else query, session, batch)),
         lambda name=name: collection_metadata(database, name))
        for name, query in queries.items()
    )
    return write_collections(db_dir, collections, len(queries), progress)


def read_ahead(batches: Iterator[bytes], depth: int = READ_AHEAD) -> Iterator[bytes]:
    """``batches``, read by a thread of their own up to ``depth`` batches ahead of the
    caller: the server prepares and sends the next batch (the thread waits on the socket,
    without the GIL) while the caller writes, hashes and encodes this one. Nothing is read
    before the caller asks for the first batch (a linked collection's query is only made
    once the collections before it are written), and no more than ``depth`` batches wait
    in memory. An error of the reading is raised here, in the caller; the caller stopping
    early stops and closes the reading."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def feed() -> None:
        try:
            for batch in batches:
                waiting.put(batch)
                if stop.is_set():
                    return
            waiting.put(_END)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            waiting.put(_Failed(exc))
        finally:
            close = getattr(batches, "close", None)
            close and close()

    reader = threading.Thread(target=feed, name="strongroom-dump-reader", daemon=True)
    reader.start()
    try:
        while True:
            item = waiting.get()
            if item is _END:
                return
            if isinstance(item, _Failed):
                raise item.exc
            yield item
    finally:
        stop.set()
        while reader.is_alive():  # make room for the one batch it may still be putting
            try:
                waiting.get(timeout=0.05)
            except queue.Empty:
                pass
        reader.join()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


_END = object()


def _empty(db_dir: Path) -> None:
    """Remove what a dump that is to be read again wrote."""
    for folder in (db_dir / BSON_DIR, db_dir / JSON_DIR):
        for path in sorted(folder.iterdir()) if folder.is_dir() else ():
            mutations.unlink(path)


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
            lines = [canonical_json(document) + "\n" for document in _decoded(batch)]
            count += len(lines)
            lines = "".join(lines).encode()
            json_digest.update(lines)
            mutations.write(json_file, lines)
        _sync(bson_file)
        _sync(json_file)
    return {"count": count, "bytes": size, "sha256": digest.hexdigest(), "json_sha256": json_digest.hexdigest(),
            "json": JSON_MODE}


def _decoded(batch: bytes) -> Iterator[dict]:
    """The documents of a batch of concatenated BSON, decoded one at a time (a batch of
    4 MB decoded at once is some 30 MB of Python objects)."""
    view, offset = memoryview(batch), 0
    while offset < len(view):
        end = offset + int.from_bytes(view[offset:offset + 4], "little")
        yield bson.decode(view[offset:end], READ_OPTIONS)  # a length that lies: InvalidBSON
        offset = end


def canonical_json(document: dict) -> str:
    """One document as canonical Extended JSON on one line: the text
    ``json_util.dumps(document, json_options=CANONICAL_JSON_OPTIONS, separators=(",", ":"))``
    gives (as ``mongoexport --jsonFormat=canonical`` writes it), several times faster:
    the commonest types are converted here, each by its exact type (a ``Code`` is a
    ``str``, an ``Int64`` an ``int``, a ``bool`` an ``int``: each goes to json_util)."""
    return json.dumps(_canonical(document), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _canonical(value):
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _canonical(item) for key, item in value.items()}
    if kind is list:
        return [_canonical(item) for item in value]
    if kind is int:
        return {"$numberInt": str(value)} if value in INT32 else {"$numberLong": str(value)}
    if kind is ObjectId:
        return {"$oid": str(value)}
    return json_util.default(value, json_util.CANONICAL_JSON_OPTIONS)


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
