"""Share the embedded engine's collection files between readers and a restore, safely.

montydb keeps each collection in its own SQLite file (WAL mode) and opens a connection
for every operation. Two of its habits break a restore while the web app reads:

- A read of a collection whose file was just dropped *creates* an empty file (SQLite
  creates what it opens), with no table: the reader fails with ``no such table:
  documents``, and the restore, which now finds a file, skips creating the table and
  fails the same way.
- Dropping a collection removes its file while other connections may have it open.
  Their ``-wal`` and ``-shm`` files are named after the path, so the collection made
  next under that name shares them with the old, unlinked one: a reader closing last
  checkpoints and deletes the new file's WAL, and SQLite's shared memory is truncated
  under a live mapping (a bus error was seen).

So every connection this engine opens holds a *gate* shared for its lifetime, and only
``create_table`` may create a file (every other connection opens with ``mode=rw``); a
read of a file that is absent or has no table yet answers "no documents", as montydb
does for a collection that does not exist. Dropping a collection takes the gate
exclusive: no connection is open, in this process or another, while the file and its
``-wal``/``-shm`` are removed. The gate is an ``flock`` on the repository's folder, so a
CLI restore and a running web server respect each other. No hold is waited for without
limit (``waiting``): past ``STRONGROOM_WAIT_SECONDS`` the wait ends with ``Busy``, naming
the processes that hold the gate (a reader that never lets go), and a restore probes
the gate (``probe_exclusive``) before it changes a record, so such a reader makes it fail
with nothing changed rather than wait in maintenance.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from montydb.storage import sqlite
from montydb.storage.sqlite import SQLiteKVEngine

from strongroom.fs.waiting import flock_within

SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")
ABSENT_MESSAGES = ("unable to open database file", "no such table")


class Gate:
    """A shared/exclusive lock on a folder, usable from many threads and processes.

    Each hold opens its own descriptor of the folder (flock locks belong to an open
    file, so threads exclude each other too, and nothing is created: it works on a full
    disk); a thread may nest shared holds, counted.
    """

    def __init__(self, path: Path):
        self.path = path
        self._local = threading.local()

    def _lock(self, operation: int) -> int:
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            what = f"the embedded database {self.path} ({'to replace a collection' if operation == fcntl.LOCK_EX else 'to read it'})"
            flock_within(fd, operation, what)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def acquire_shared(self) -> None:
        depth = getattr(self._local, "depth", 0)
        if depth == 0:
            self._local.fd = self._lock(fcntl.LOCK_SH)
        self._local.depth = depth + 1

    def release_shared(self) -> None:
        self._local.depth -= 1
        if self._local.depth == 0:
            os.close(self._local.fd)  # closing the descriptor lets go of its lock

    def probe_exclusive(self) -> None:
        """Take the gate exclusive and let go at once: ``Busy`` (nothing changed) when a
        connection keeps it past the bound."""
        with self.exclusive():
            pass

    @contextmanager
    def exclusive(self):
        """No connection is open on the database while this is held (none of this thread either)."""
        if getattr(self._local, "depth", 0):
            raise RuntimeError("a thread holding the gate shared cannot take it exclusive")
        fd = self._lock(fcntl.LOCK_EX)
        try:
            yield
        finally:
            os.close(fd)


class _GatedConnection:
    """``contextlib.closing`` for a connection that also lets go of the gate."""

    def __init__(self, connection: sqlite3.Connection, gate: Gate):
        self.connection, self.gate = connection, gate

    def __enter__(self) -> sqlite3.Connection:
        return self.connection

    def __exit__(self, *exc_info) -> None:
        try:
            self.connection.close()
        finally:
            self.gate.release_shared()


class GatedEngine(SQLiteKVEngine):
    """montydb's SQLite engine with the gate, no file created by reading, absent = empty."""

    def __init__(self, config: dict, gate: Gate):
        super().__init__(config)
        self.gate = gate
        self.check_same_thread = bool(config.get("check_same_thread", True))

    def _connect(self, db_file, wconcern=None, create: bool = False, reading: bool = False):
        """A connection holding the gate; only ``create`` makes a file, and a reader sets
        no pragma (``journal_mode`` would try to convert a file still being made)."""
        self.gate.acquire_shared()
        try:
            connection = sqlite3.connect(f"{Path(db_file).as_uri()}?mode={'rwc' if create else 'rw'}", uri=True,
                                         check_same_thread=self.check_same_thread)
            try:
                connection.text_factory = str
                if not reading:
                    connection.executescript(self.db_pragmas + ";" + _write_concern_pragmas(self, wconcern))
            except BaseException:
                connection.close()
                raise
        except BaseException:
            self.gate.release_shared()
            raise
        return _GatedConnection(connection, self.gate)

    def create_table(self, db_file):
        with self._connect(db_file, create=True) as connection, connection:
            connection.execute(sqlite.CREATE_TABLE.format(sqlite.SQLITE_RECORD_TABLE))

    def read_all(self, db_file, limit):
        table = sqlite.SQLITE_RECORD_TABLE
        sql = sqlite.SELECT_LIMIT_RECORD.format(table, limit) if limit else sqlite.SELECT_ALL_RECORD.format(table)
        return self._read(db_file, sql)

    def read_all_keys(self, db_file):
        return self._read(db_file, sqlite.SELECT_ALL_KEYS.format(sqlite.SQLITE_RECORD_TABLE))

    def _read(self, db_file, sql: str) -> list:
        try:
            with self._connect(db_file, reading=True) as connection:
                return connection.execute(sql).fetchall()
        except sqlite3.OperationalError as exc:
            if _absent(exc):
                return []
            raise


def _write_concern_pragmas(engine: SQLiteKVEngine, wconcern) -> str:
    """montydb's own translation of a write concern (``wtimeout`` is SQLite's busy_timeout)."""
    if not wconcern:
        return ""
    document = dict(wconcern.document)
    timeout = document.pop("wtimeout", None)
    if timeout:
        document["busy_timeout"] = timeout
    return engine._assemble_pragmas(document)


def _absent(exc: sqlite3.OperationalError) -> bool:
    """The file vanished or was made but has no table yet: the collection has no documents."""
    return any(text in str(exc) for text in ABSENT_MESSAGES)


def gate_for(repository: Path) -> Gate:
    """The gate of a montydb repository (``db/<mode>/``, which holds one database): the
    folder itself, so no file is added where montydb lists its databases."""
    return Gate(Path(repository))


def install(client, gate: Gate) -> None:
    """Make a ``MontyClient``'s SQLite storage go through the gate (other storages are left as they are)."""
    storage = client._storage
    if isinstance(storage._conn, SQLiteKVEngine):
        storage._conn = GatedEngine(storage._config, gate)


def drop_collection_file(collection_file: Path, gate: Gate) -> None:
    """Remove a collection's file and its side files while no connection is open on it.

    A left-over ``-wal`` beside a new file of the same name would be read as part of it.
    """
    with gate.exclusive():
        for path in [collection_file, *(Path(f"{collection_file}{side}") for side in SQLITE_SIDE_FILES)]:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
