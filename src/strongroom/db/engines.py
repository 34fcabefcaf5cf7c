"""Open the site's database: MongoDB through pymongo, or the embedded engine (montydb).

Both give the pymongo interface (``db[name].find``, ``insert_many``, ``delete_many``,
``drop_collection``, ``list_collection_names``); the rest of Strongroom is written once
against it. Where the engines differ, the functions here hide it:

- The embedded engine is montydb on SQLite with BSON storage, one SQLite file per
  collection under ``<data dir>/db/<mode>/<mode>/``. It keeps no secondary indexes
  (``create_index`` is a no-op there), cannot rename collections and has no transactions.
- Raw BSON: ``raw_documents`` streams a collection's documents as the bytes the engine
  stores, never decoding them, so a dump keeps every type and key order exactly. On
  MongoDB that is ``find_raw_batches``; the embedded engine stores each document as
  ``bson.encode(document)`` in the SQLite table ``documents(k, v)`` of the collection's
  file, in the same row order as ``find()``, so the rows are read straight from there.
- Counts without reading: ``collection_statistics`` gives what a collection holds as the
  engine tells it cheaply: on the embedded engine the rows and their bytes, exactly, from
  the SQLite file; on a server its statistics (``$collStats``), which may be off (MongoDB
  after an unclean shutdown; FerretDB on PostgreSQL estimates).
- One moment: where the server offers snapshot reads (MongoDB 5.0 or later on a replica
  set or a sharded cluster), a dump reads every collection in one snapshot session
  (``snapshot_session``), so the collections agree with each other; elsewhere (a
  standalone server, FerretDB 1.x, the embedded engine) each collection is read as it is.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import bson

from strongroom.config import Config, database_name
from strongroom.errors import BadInput
from strongroom.repo.control import CONTROL_PREFIX


def driver_errors(*names: str) -> tuple[type[BaseException], ...]:
    """pymongo's exception classes ``names``, to catch or test with ``isinstance``: none
    while pymongo was never imported (the embedded engine), as nothing raises them then
    and importing pymongo only to name them costs 0.1-0.4 s of a restore."""
    errors = sys.modules.get("pymongo.errors")
    return () if errors is None else tuple(getattr(errors, name) for name in names)


def open_database(config: Config):
    """The database of ``config``'s run mode; the embedded one is created if absent."""
    if config.embedded:
        return _open_embedded(config.embedded_db_dir, config.mode)
    return _open_mongodb(config)


def describe(config: Config, database=None) -> dict:
    """``{"engine", "name"}`` of ``database``, or of the one ``config`` names (opening
    nothing, so an import makes no embedded database)."""
    if database is not None:
        return {"engine": "embedded" if is_embedded(database) else "mongodb", "name": database.name}
    if config.embedded:
        return {"engine": "embedded", "name": config.mode}
    return {"engine": "mongodb", "name": database_name(config.db_uri)}


def database_exists(config: Config) -> bool:
    """Is there a database to read? The embedded one exists once made (by ``demo init``, a
    restore or an app); asking must not make it, so that a mistyped run mode leaves no
    ``db/<mode>`` behind. A server's database is there as far as we can tell."""
    return not config.embedded or (config.embedded_db_dir / "monty.storage.cfg").is_file()


def _open_embedded(repository: Path, name: str) -> EmbeddedDatabase:
    from montydb import set_storage

    repository.mkdir(parents=True, exist_ok=True)
    if not (repository / "monty.storage.cfg").exists():
        set_storage(
            str(repository), storage="sqlite", use_bson=True, check_same_thread=False
        )
    return EmbeddedDatabase(repository, name)


class EmbeddedDatabase:
    """A montydb database that is safe to share between threads.

    A montydb client keeps one SQLite connection on its storage engine and closes it
    after every call, so threads sharing a client close each other's connection (errors,
    then a crash of the process). This gives each thread its own client on the same
    repository; SQLite's own locking keeps them consistent. Their connections go through
    one gate (``embedded_sharing``), so readers never create a collection's file and a
    collection is dropped only while no connection has it open. Everything else is the
    montydb database's own interface.
    """

    def __init__(self, repository: Path, name: str):
        self.repository = repository
        self.name = name
        self._local = threading.local()
        # montydb's storage is imported when a database is opened, not by every command
        from strongroom.db import embedded_sharing

        self.gate = embedded_sharing.gate_for(repository)

    def _database(self):
        database = getattr(self._local, "database", None)
        if database is None:
            from montydb import MontyClient

            from strongroom.db import embedded_sharing

            client = MontyClient(str(self.repository))
            embedded_sharing.install(client, self.gate)
            database = self._local.database = client[self.name]
        return database

    def drop_collection(self, name: str) -> None:
        from strongroom.db import embedded_sharing

        embedded_sharing.drop_collection_file(embedded_collection_file(self, name), self.gate)

    def __getitem__(self, name: str):
        return self._database()[name]

    def __getattr__(self, attribute: str):
        return getattr(self._database(), attribute)

    def __repr__(self) -> str:
        return f"EmbeddedDatabase({str(self.repository)!r}, {self.name!r})"


# How long a command looks for an unreachable MongoDB server before it fails with one
# line (pymongo's default is 30 s); a URI's own serverSelectionTimeoutMS wins.
DEFAULT_SERVER_TIMEOUT_MS = 3000


def _open_mongodb(config: Config):
    import pymongo
    from pymongo.errors import ConfigurationError, InvalidURI

    options = {} if config.server_timeout_set else {"serverSelectionTimeoutMS": DEFAULT_SERVER_TIMEOUT_MS}
    try:
        client = pymongo.MongoClient(config.db_uri, tz_aware=True, **options)
        return client.get_default_database()
    except (ConfigurationError, InvalidURI) as exc:  # Config checked the form; an SRV lookup may still fail
        raise BadInput(f"the database URI cannot be used: {' '.join(str(exc).split())}") from exc


def is_embedded(database) -> bool:
    return isinstance(database, EmbeddedDatabase) or type(database).__module__.startswith("montydb")


# No dot in either prefix: FerretDB refuses to rename from or to a name holding one.
RESTORE_STAGING_PREFIX = "strongroom_restore_"
LEGACY_STAGING_PREFIX = "strongroom_restore."  # earlier versions' staging; still ignored and dropped
# Where a server without rename-with-dropTarget keeps the live collection for the
# milliseconds of a swap (see ``capabilities.rename_into_place``).
RESTORE_ASIDE_PREFIX = "strongroom_replaced_"


def list_collections(database) -> list[str]:
    """The collections that hold site data, sorted; system collections, the staging
    and set-aside collections of a restore in progress, and Strongroom's own control
    collections (``repo.control``: jobs, lease, sign-ins) are left out."""
    # A set: montydb names a collection after each file of its folder, so the -wal and
    # -shm files of an open SQLite connection would list the collection two more times.
    names = set(database.list_collection_names())
    return sorted(n for n in names if not n.startswith(("system.", RESTORE_STAGING_PREFIX, LEGACY_STAGING_PREFIX,
                                                         RESTORE_ASIDE_PREFIX, CONTROL_PREFIX)))


def supports_transactions(database) -> bool:
    """MongoDB runs multi-document transactions on replica sets and sharded clusters only."""
    from pymongo.topology_description import TOPOLOGY_TYPE

    kind = database.client.topology_description.topology_type
    return kind in (TOPOLOGY_TYPE.ReplicaSetWithPrimary, TOPOLOGY_TYPE.Sharded)


SNAPSHOT_WIRE_VERSION = 13  # MongoDB 5.0: find with the "snapshot" read concern outside a transaction
# The server no longer keeps the snapshot's moment (its history window, 300 s by default,
# passed) or cannot give it: the dump is read again without one.
SNAPSHOT_LOST_CODES = (239, 246)  # SnapshotTooOld, SnapshotUnavailable


def snapshot_reads(database) -> bool:
    """Can one dump read every collection at one moment (the "snapshot" read concern)?"""
    if is_embedded(database) or not supports_transactions(database):
        return False
    return int(database.command("hello").get("maxWireVersion", 0)) >= SNAPSHOT_WIRE_VERSION


@contextmanager
def snapshot_session(database, wanted: bool = True):
    """A snapshot session for the reads of one dump, or None where the server has none."""
    if not wanted or not snapshot_reads(database):
        yield None
        return
    with database.client.start_session(snapshot=True) as session:
        yield session


def snapshot_lost(exc: BaseException) -> bool:
    return isinstance(exc, driver_errors("OperationFailure")) and getattr(exc, "code", None) in SNAPSHOT_LOST_CODES


RAW_BATCH_DOCUMENTS = 1000
# A server's read batches: about this many bytes each (FerretDB's default, about 250
# documents of 1 KB a batch, costs it 15-20 % more work than batches of thousands), never
# more documents than READ_BATCH_DOCUMENTS. Sized from the collection's average document,
# since FerretDB 1.x does not keep a reply within MongoDB's 16 MB as MongoDB does: a batch
# asked by number alone could exceed the 48 MB a message may hold (``ONE_BY_ONE`` then).
READ_BATCH_BYTES = 4 << 20
READ_BATCH_DOCUMENTS = 5000
ONE_BY_ONE = 1


def raw_documents(database, name: str, query: dict, session=None, batch: int | None = None) -> Iterator[bytes]:
    """The documents of ``name`` matching ``query``, as batches of concatenated raw BSON,
    read in ``session`` (a snapshot, ``snapshot_session``) when one is given; from a
    server, ``batch`` documents a batch (default: ``read_batch``).

    The bytes are the stored ones (mongodump's ``.bson`` format once concatenated), in
    natural order. A collection that does not exist yields nothing.
    """
    if not is_embedded(database):
        batch = read_batch(database, name) if batch is None else batch
        yield from database[name].find_raw_batches(query, session=session, batch_size=batch)
        return
    rows = _embedded_rows(database, name, query)
    if rows is None:  # the collection was being written: go the slow, consistent way
        rows = [bson.encode(document) for document in database[name].find(query)]
    for start in range(0, len(rows), RAW_BATCH_DOCUMENTS):
        yield b"".join(rows[start : start + RAW_BATCH_DOCUMENTS])


def read_batch(database, name: str) -> int:
    """Documents per read batch for ``name`` on a server: ``READ_BATCH_BYTES`` of its
    average document (its ``collStats``), at most ``READ_BATCH_DOCUMENTS``; 0 (the
    server's own choice) when the server will not say."""
    try:
        average = int(database.command("collStats", name).get("avgObjSize") or 0)
    except driver_errors("PyMongoError"):
        return 0
    return max(1, min(READ_BATCH_DOCUMENTS, READ_BATCH_BYTES // average)) if average > 0 else 0


def reply_too_large(exc: BaseException) -> bool:
    """A server's reply exceeded what a message may hold (FerretDB 1.x packs a batch
    of large documents past it): read again ``ONE_BY_ONE``."""
    return isinstance(exc, driver_errors("ProtocolError")) and "larger than server max message size" in str(exc)


def embedded_collection_file(database, name: str) -> Path:
    """The SQLite file of an embedded collection (see ``_open_embedded``)."""
    return Path(database.repository) / database.name / f"{name}.collection"


def _embedded_rows(database, name: str, query: dict) -> list[bytes] | None:
    """Read the stored BSON of an embedded collection from its SQLite file, or ``None``.

    The file is opened read-only and *immutable*, so SQLite neither locks it nor creates
    ``-wal``/``-shm`` files beside it (a plain read-only connection leaves those behind,
    and montydb then lists the collection three times). That is only sound while nobody
    writes: montydb closes its connection after every operation, which folds the WAL back
    into the file and removes it; so the read is trusted only if no WAL file exists and
    the file is unchanged from before to after it, else ``None`` (caller uses ``find``).
    A non-empty ``query`` is answered by montydb (``_id`` only), then the rows are picked
    by their key, montydb's own encoding of ``_id``.
    """
    path = embedded_collection_file(database, name)
    if not path.is_file():
        return [] if name not in database.list_collection_names() else None
    wanted = _embedded_keys(database, name, query) if query else None
    rows = _embedded_select(path, "SELECT k, v FROM documents")
    if rows is None:
        return None
    return [bytes(v) for k, v in rows if wanted is None or bytes(k) in wanted]


def _embedded_select(path: Path, sql: str) -> list[tuple] | None:
    """The rows ``sql`` selects from an embedded collection's file, read as ``_embedded_rows``
    says, or ``None`` when a writer was at work (or the file dropped or being made)."""
    before = _file_state(path)
    if before is None:
        return None
    try:
        connection = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True)
        try:
            rows = connection.execute(sql).fetchall()
        finally:
            connection.close()
    except sqlite3.OperationalError:  # dropped or being made meanwhile
        return None
    return rows if _file_state(path) == before else None


@dataclass(frozen=True)
class Statistics:
    """What a collection holds, as its engine tells it without reading a document."""

    count: int
    bytes: int | None  # the documents' BSON bytes, where the engine knows them exactly
    exact: bool  # False: a server's statistics, which can be off


def collection_statistics(database, name: str) -> Statistics | None:
    """``name``'s count (and, on the embedded engine, bytes), or ``None`` when nothing cheap
    can tell (an embedded collection being written, a server that will not say).

    Embedded: ``count(*)`` and the sum of the stored documents' lengths, from the SQLite
    file without decoding a row. A server: ``$collStats`` (its ``count``, summed over
    shards), the number it keeps, which an unclean shutdown can leave off until the next
    ``validate`` and which FerretDB on PostgreSQL estimates: ``exact`` is False."""
    if is_embedded(database):
        rows = _embedded_select(embedded_collection_file(database, name),
                                "SELECT count(*), coalesce(sum(length(v)), 0) FROM documents")
        return None if rows is None else Statistics(rows[0][0], rows[0][1], exact=True)
    try:
        answers = list(database[name].aggregate([{"$collStats": {"count": {}}}]))
    except driver_errors("PyMongoError"):
        return None
    return Statistics(sum(int(answer.get("count", 0)) for answer in answers), None, exact=False)


def _embedded_keys(database, name: str, query: dict) -> set[bytes]:
    from montydb.types import bson as monty_bson

    found = database[name].find(query, {"_id": 1})
    return {bytes(monty_bson.id_encode(document["_id"])) for document in found}


def _file_state(path: Path) -> tuple | None:
    """Size, mtime and inode of the file; ``None`` while it has a WAL (a writer is at work)."""
    if os.path.lexists(f"{path}-wal"):
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ino)
