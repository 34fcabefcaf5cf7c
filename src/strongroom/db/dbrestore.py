"""Put dumped collections back, with the least exposure each engine allows.

Site restore (every collection; the database ends up holding exactly the dump):

- MongoDB: each collection is loaded into a staging collection
  ``strongroom_restore_<name>`` (created with the dumped options, indexes built), then
  swapped in by ``capabilities.rename_into_place``: readers see the old collection or
  the new one, never a half-filled one (on a server without rename-with-dropTarget, no
  collection of that name for the milliseconds between two renames). Collections the
  dump lacks are dropped last.
- Embedded (montydb): it cannot rename collections, so each collection is dropped and
  reloaded; the restore journal and its rollback carry the guarantee there.
- Either engine: a collection the caller has proven to hold the dump already (``kept``:
  the restore's pre-restore dump of it has the very bytes, options and indexes:
  ``matching.proven_unchanged``) is left as it is, not loaded again.

Project restore (only the records the queries select; nothing else is touched):

- MongoDB: the records the query selects are taken (their ``_id`` and the SHA-256 of
  their bytes; from the restore's pre-restore dump where it holds them, ``saved``, else
  read) and only the difference is written: a live record the dump does not hold byte
  for byte is deleted by its ``_id``, a dump's record the server does not hold byte for
  byte is inserted, a record equal on both sides is left as it is (``byids``). The end
  is what deleting every selected record and inserting the dump's gives; on a server
  that scans the whole collection for any query but one ``_id`` (FerretDB 1.x) it costs
  no such scan where delete and read-back by query cost two. It runs in one transaction
  where one can be started (``capabilities.transactions``); elsewhere without.
- Embedded: delete, then insert; the journal and rollback carry the guarantee.

Nothing the server refuses is dropped silently. A collection option or an index the
server does not implement (its answer on the attempt) is left out and named in the
result's ``warnings``; so are the indexes of a dump restored into the embedded engine,
which keeps none. A document the server refuses (a key with ``.`` or a leading ``$``,
a type it cannot store) fails the restore with ``ServerRefused`` naming it, and the
restore is rolled back.

On a server, what was inserted is read back (for a project, by the inserted ``_id``s) and
compared, document by document (SHA-256), with the backup: a server that stores a value
other than the one it was given (FerretDB 1.x turns -0.0 into 0.0) is named in
``warnings`` with how many documents differ.

Documents go back as ``RawBSONDocument``, byte for byte. Every change goes through
``strongroom.fs.mutations``. Every needed file is checked before anything changes.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from itertools import zip_longest
from pathlib import Path

import bson
from bson import json_util
from bson.raw_bson import RawBSONDocument

from strongroom.db import byids, capabilities, docfilter, engines
from strongroom.db.dbdump import (
    INSERT_BATCH_BYTES,
    INSERT_BATCH_DOCUMENTS,
    RAW_OPTIONS,
    READ_OPTIONS,
    UNBATCHED,
    check_collection_name,
    read_ahead,
)
from strongroom.errors import BadInput, CorruptBackup, ServerRefused
from strongroom.fs import mutations
from strongroom.repo import fencing
from strongroom.repo.control import is_control_collection

Progress = Callable[[str, int, "int | None"], None]
STAGING_PREFIX = engines.RESTORE_STAGING_PREFIX


class Restored(dict):
    """The records per collection that now hold the dump's, ``warnings``: what the engine
    did not take, and ``kept``: the collections among them left as they were (already the
    dump's: nothing was loaded there), with their counts."""

    def __init__(self, counts: dict[str, int] | None = None, warnings: list[str] | None = None,
                 kept: Mapping[str, int] | None = None):
        super().__init__(counts or {})
        self.warnings = warnings or []
        self.kept = dict(kept or {})

    def loaded(self) -> int:
        """The records inserted (the collections kept as they were aside)."""
        return sum(count for name, count in self.items() if name not in self.kept)


def restore_collections(
    database,
    bson_dir: Path,
    names: list[str],
    queries: dict[str, dict] | None,
    progress: Progress | None = None,
    *,
    selects: dict[str, dict] | None = None,
    saved: dict[str, Path] | None = None,
    kept: Mapping[str, int] | None = None,
) -> Restored:
    """Put the dumped documents of ``names`` back; return the count per collection (a
    ``Restored``, whose ``warnings`` name what the engine refused).

    ``queries is None`` restores the whole database (see the module's description);
    otherwise, per collection, the documents matching its query are replaced, in the
    order of ``names`` (a collection linked through another after it: ``linking``). With
    ``selects`` the dump may hold more (a site backup restoring one project): only the
    documents its queries match (``docfilter``) are loaded. ``saved`` names, per collection,
    a ``.bson`` file holding the records its query selects as they are now (the restore's
    pre-restore backup, made moments before while the host app's writes were held): on a
    server the replacement takes the live records from it instead of reading them again.
    ``kept`` (whole database
    only): the collections of ``names`` the caller has proven to hold the dump already,
    byte for byte, with its options and indexes, and their counts: they are left as they
    are (``matching.proven_unchanged``), neither loaded nor swapped nor dropped.
    """
    _check_restorable(bson_dir, names, queries, selects)
    names = [name for name in names if not is_control_collection(name)]  # never ours, whatever a dump holds
    fencing.check("replacement of the records")
    if queries is not None:
        return _restore_project(database, bson_dir, names, queries, progress, selects, saved or {})
    restored = Restored(kept={name: count for name, count in (kept or {}).items() if name in names})
    if not engines.is_embedded(database):
        capabilities.put_back_aside(database)
    for name in names:
        if name in restored.kept:
            restored[name] = restored.kept[name]
            continue
        _report(progress, "loading", restored.loaded(), None)
        metadata = _metadata(bson_dir, name)
        if engines.is_embedded(database):
            restored.warnings += _not_kept_by_embedded(name, metadata)
            mutations.drop_collection(database, name)
            restored[name] = _insert_documents(database[name], bson_dir / f"{name}.bson")
        else:
            restored[name] = _load_and_swap(database, bson_dir, name, metadata, restored.warnings)
    for stale in sorted(set(engines.list_collections(database)) - set(names)):
        mutations.drop_collection(database, stale)
    drop_staging_collections(database)
    _report(progress, "loading", restored.loaded(), restored.loaded())
    return restored


def probe_replacing(database) -> None:
    """Before any record changes: on the embedded engine, ``Busy`` (after the bounded
    wait, naming the holder) when a connection keeps the gate a drop needs
    (``embedded_sharing``), so that the restore fails with nothing changed."""
    gate = getattr(database, "gate", None)
    if engines.is_embedded(database) and gate is not None:
        gate.probe_exclusive()


def _metadata(bson_dir: Path, name: str) -> dict:
    return json_util.loads((bson_dir / f"{name}.metadata.json").read_text(encoding="utf-8"))


def _not_kept_by_embedded(name: str, metadata: dict) -> list[str]:
    """What a dump holds that the embedded engine cannot take: options, secondary indexes."""
    warnings = []
    if metadata.get("options"):
        warnings.append(f"{name}: collection options {_names(metadata['options'])} not restored: "
                        "the embedded engine keeps none")
    for spec in metadata.get("indexes", []):
        if spec.get("name") != "_id_":
            warnings.append(f"{name}: index {spec.get('name')!r} not restored: "
                            "the embedded engine keeps no secondary indexes")
    return warnings


def _load_and_swap(database, bson_dir: Path, name: str, metadata: dict, warnings: list[str]) -> int:
    """MongoDB: fill a staging collection, build its indexes, put it in place of ``name``."""
    staging = STAGING_PREFIX + name
    mutations.drop_collection(database, staging)
    _create_with_options(database, staging, name, metadata.get("options") or {}, warnings)
    count = _insert_documents(database[staging], bson_dir / f"{name}.bson")
    warnings += _altered(database[staging], {}, bson_dir / f"{name}.bson")
    _create_indexes(database[staging], name, metadata, warnings)
    capabilities.rename_into_place(database, staging, name)
    return count


def _create_with_options(database, staging: str, name: str, options: dict, warnings: list[str]) -> None:
    """Create ``staging`` with the dumped options; those the server refuses are left out
    (one by one, keeping every option it takes) and named in ``warnings``."""
    try:
        mutations.create_collection(database, staging, options)
        return
    except Exception as exc:
        if not capabilities.refused(exc):
            raise
    kept: dict = {}
    for key, value in options.items():
        try:
            mutations.create_collection(database, staging, {**kept, key: value})
        except Exception as exc:
            if not capabilities.refused(exc):
                raise
            warnings.append(f"{name}: collection option {key!r} not restored: the server refused it ({_says(exc)})")
            continue
        kept[key] = value
        mutations.drop_collection(database, staging)
    mutations.create_collection(database, staging, kept)


def _create_indexes(collection, name: str, metadata: dict, warnings: list[str]) -> None:
    """Build the dumped indexes; one the server refuses is named in ``warnings``."""
    models = _index_models(metadata)
    try:
        mutations.create_indexes(collection, models)
        return
    except Exception as exc:
        if len(models) == 1 and not _index_refused(exc):
            raise
    for model in models:  # one at a time, to keep every index the server takes
        try:
            mutations.create_indexes(collection, [model])
        except Exception as exc:
            if not _index_refused(exc):
                raise
            warnings.append(f"{name}: index {model.document['name']!r} not restored: "
                            f"the server refused it ({_says(exc)})")


def _index_refused(exc: BaseException) -> bool:
    """The server does not implement this kind of index (FerretDB answers a text index with
    IndexNotFound, 27; CannotCreateIndex is 67), as opposed to the data breaking it."""
    return capabilities.refused(exc) or (isinstance(exc, engines.driver_errors("OperationFailure"))
                                         and exc.code in (27, 67))


def drop_staging_collections(database) -> None:
    """Remove staging collections left by a restore that was cut short (and put back a
    collection a crash left renamed aside: ``capabilities.put_back_aside``)."""
    if engines.is_embedded(database):
        return
    capabilities.put_back_aside(database)
    for name in database.list_collection_names():
        if name.startswith((STAGING_PREFIX, engines.LEGACY_STAGING_PREFIX)):
            mutations.drop_collection(database, name)


def _restore_project(database, bson_dir, names, queries, progress, selects: dict[str, dict] | None,
                     saved: dict[str, Path]) -> Restored:
    # montydb cannot delete from a collection that was never written (it has no file yet:
    # "unable to open database file"); there is nothing to delete there anyway.
    existing = set(database.list_collection_names()) if engines.is_embedded(database) else None

    def replace(session=None) -> Restored:
        inserted = Restored()
        for name in names:
            _report(progress, "loading", sum(inserted.values()), None)
            keep = docfilter.matcher(selects[name]) if selects is not None else None
            if not engines.is_embedded(database):
                live = _stored(database[name], queries[name], session, saved.get(name))
                inserted[name] = _replace_difference(database[name], bson_dir / f"{name}.bson", live, keep,
                                                     session, inserted.warnings)
                continue
            if name in existing:
                mutations.delete_many(database[name], queries[name])
            inserted[name] = _insert_documents(database[name], bson_dir / f"{name}.bson", keep=keep)
        return inserted

    if not engines.is_embedded(database) and names:
        capabilities.id_lists_scan(database, names[0])  # asked now: a query plan is no transaction's business
    if engines.is_embedded(database) or not capabilities.transactions(database):
        restored = replace()
    else:
        with database.client.start_session() as session:
            restored = session.with_transaction(lambda s: replace(s))
    _report(progress, "loading", sum(restored.values()), sum(restored.values()))
    return restored


def _stored(collection, query: dict, session, saved: Path | None) -> Iterator:
    """The records ``query`` selects, as raw documents: from ``saved`` if given (and there),
    else read from the server."""
    if saved is not None and saved.is_file():
        return _dumped(saved, None)
    return (document for batch in collection.find_raw_batches(query, session=session)
            for document in bson.decode_all(batch, RAW_OPTIONS))


def _replace_difference(collection, bson_path: Path, stored: Iterable, keep: Callable | None, session,
                        warnings: list[str]) -> int:
    """Server: make the ``stored`` records (those the query selects) the dump's (those
    ``keep`` accepts), writing only what differs (see the module's description); the count
    of the dump's records, as a load of them all would give. What was inserted is read back
    (``_altered_written``)."""
    live: dict[bytes, tuple[object, bytes]] = {}  # _id key -> (_id, SHA-256 of the stored bytes)
    for document in stored:
        live[_id_key(document)] = (document["_id"], hashlib.sha256(document.raw).digest())
    wanted: dict[bytes, tuple[object, bytes]] = {}  # the same of the dump's
    selected = []  # (_id key, offset in the file) of each document ``keep`` accepts, in order
    for offset, document in _documents_at(bson_path):
        if keep is None or keep(document):
            key = _id_key(document)
            wanted.setdefault(key, (document["_id"], hashlib.sha256(document.raw).digest()))
            selected.append((key, offset))
    kept = {key for key, (_, digest) in live.items() if key in wanted and wanted[key][1] == digest}
    byids.delete(collection, [value for key, (value, _) in live.items() if key not in kept], session)
    digests: Counter = Counter()
    _insert_documents(collection, bson_path, session, digests=digests,
                      at=[offset for key, offset in selected if key not in kept])
    written = [value for key, (value, _) in wanted.items() if key not in kept]
    warnings += _altered_written(collection, written, digests, session)
    return len(selected)


def _documents_at(bson_path: Path) -> Iterator[tuple[int, object]]:
    """Each document of the file with the offset it starts at."""
    with open(bson_path, "rb") as fh:
        offset = 0
        while header := fh.read(4):
            raw = header + fh.read(int.from_bytes(header, "little") - 4)
            yield offset, RawBSONDocument(raw, RAW_OPTIONS)
            offset += len(raw)


def _read_at(fh, offsets: list[int]) -> Iterator:
    for offset in offsets:
        fh.seek(offset)
        header = fh.read(4)
        yield RawBSONDocument(header + fh.read(int.from_bytes(header, "little") - 4), RAW_OPTIONS)


def _id_key(document) -> bytes:
    """A type-exact key for the document's ``_id`` (an ObjectId never equals its hex)."""
    return bson.encode({"_id": document["_id"]})


def _check_restorable(bson_dir: Path, names: list[str], queries: dict[str, dict] | None,
                      selects: dict[str, dict] | None) -> None:
    for name in names:
        check_collection_name(name)
        if queries is not None and name not in queries:
            raise BadInput(f"no query says which records of {name!r} a project restore replaces")
        if selects is not None and name not in selects:
            raise BadInput(f"no query says which records of {name!r} to load from the dump")
        for path in (bson_dir / f"{name}.bson", bson_dir / f"{name}.metadata.json"):
            if not path.is_file():
                raise CorruptBackup(f"{path} is missing from the backup")


def _insert_documents(collection, bson_path: Path, session=None, limits: tuple | None = None,
                      digests: Counter | None = None, keep: Callable | None = None, at: list[int] | None = None) -> int:
    """Insert the file's documents unchanged, in batches of bounded count and size
    (one batch on the embedded engine: see ``dbdump.UNBATCHED``); count each document's
    SHA-256 into ``digests`` if given. With ``keep``, only the documents it accepts; with
    ``at``, only those starting at these offsets (in this order)."""
    if limits is None:
        embedded = engines.is_embedded(collection.database)
        limits = UNBATCHED if embedded else (INSERT_BATCH_DOCUMENTS, INSERT_BATCH_BYTES)
    max_documents, max_bytes = limits
    inserted, batch, size = 0, [], 0
    for document in _dumped(bson_path, keep, at):
        batch.append(document)
        size += len(document.raw)
        if digests is not None:
            digests[hashlib.sha256(document.raw).digest()] += 1
        if len(batch) >= max_documents or size >= max_bytes:
            inserted += _insert_batch(collection, batch, session)
            batch, size = [], 0
    return inserted + _insert_batch(collection, batch, session)


def _dumped(bson_path: Path, keep: Callable | None = None, at: list[int] | None = None) -> Iterator[RawBSONDocument]:
    """The dump's documents (those ``keep`` accepts; with ``at``, only those starting at
    these offsets, in this order), raw, one at a time."""
    with open(bson_path, "rb") as fh:
        for document in bson.decode_file_iter(fh, RAW_OPTIONS) if at is None else _read_at(fh, at):
            if keep is None or keep(document):
                yield document


def _altered_written(collection, ids: list, digests: Counter, session=None) -> list[str]:
    """``_altered`` for the few records a project restore wrote: read back those of
    ``ids`` and name, as a warning, the documents whose SHA-256 is not among ``digests``."""
    found: Counter = Counter()
    for batch in byids.find_raw(collection, ids, session):
        for document in bson.decode_all(batch, RAW_OPTIONS):
            found[hashlib.sha256(document.raw).digest()] += 1
    return _altered_warning(collection, digests, found)


def _altered(collection, query: dict, bson_path: Path, keep: Callable | None = None, session=None) -> list[str]:
    """A server may take a value and store another (FerretDB 1.x stores -0.0 as 0.0): read
    back what the query selects and name, as a warning, the documents that differ from
    the dump's (those ``keep`` accepts).

    Read in step with the dump (a thread reads the server's next batch meanwhile, outside
    a transaction), byte for byte, holding nothing: after an insert the server's order
    is the dump's. Only where the two part is each side counted by SHA-256, in a second
    read of both, so documents in another order are no difference and the altered ones
    are counted."""
    size = engines.read_batch(collection.database, collection.name)

    def live() -> Iterator[bytes]:
        batches = collection.find_raw_batches(query, session=session, batch_size=size)
        for batch in batches if session is not None else read_ahead(iter(batches)):
            for document in bson.decode_all(batch, RAW_OPTIONS):
                yield document.raw

    def stored() -> Iterator[bytes]:
        return (document.raw for document in _dumped(bson_path, keep))

    mine, theirs = stored(), live()
    try:
        if all(a == b for a, b in zip_longest(mine, theirs)):
            return []
    finally:
        mine.close()
        theirs.close()
    found = Counter(hashlib.sha256(raw).digest() for raw in live())
    expected = Counter(hashlib.sha256(raw).digest() for raw in stored())
    return _altered_warning(collection, expected, found)


def _altered_warning(collection, expected: Counter, found: Counter) -> list[str]:
    if found == expected:
        return []
    missing = sum((expected - found).values())
    return [(f"{_live_name(collection)}: {missing} document(s) stored by the server not exactly as backed up "
             "(it changed a value it accepted, such as -0.0 into 0.0)")]


def _insert_batch(collection, batch: list, session) -> int:
    """Insert, turning the server's refusal of a document into ``ServerRefused`` naming it."""
    try:
        return mutations.insert_many(collection, batch, session=session)
    except engines.driver_errors("BulkWriteError") as exc:
        error = (exc.details.get("writeErrors") or [{}])[0]
        index = error.get("index", 0)
        which = batch[index]["_id"] if index < len(batch) else "?"
        raise ServerRefused(f"the server refused document {which!r} of {_live_name(collection)}: "
                            f"{error.get('errmsg', exc)}") from exc
    except engines.driver_errors("AutoReconnect"):
        return _insert_one_by_one(collection, batch, session)


def _insert_one_by_one(collection, batch: list, session) -> int:
    """The connection dropped during a batch: a network blip, or a server that cannot
    parse a value (FerretDB 1.x drops the connection on Decimal128, NaN, MinKey, Code).
    Insert what is not there yet one document at a time, so the culprit is named."""
    from pymongo.errors import AutoReconnect

    for document in batch:
        if collection.find_one({"_id": document["_id"]}, {"_id": 1}, session=session) is not None:
            continue
        try:
            mutations.insert_many(collection, [document], session=session)
        except AutoReconnect as exc:
            raise ServerRefused(f"the server dropped the connection on document {document['_id']!r} of "
                                f"{_live_name(collection)} ({exc}): it holds a value the server cannot store "
                                f"({_types_of(document)})") from exc
    return len(batch)


def _types_of(document) -> str:
    """The BSON types a document holds, by name, for a message."""
    found: set[str] = set()

    def walk(value) -> None:
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)
        else:
            found.add(type(value).__name__)

    walk(bson.decode(document.raw, READ_OPTIONS))
    return "types: " + ", ".join(sorted(found))


def _live_name(collection) -> str:
    return collection.name.removeprefix(STAGING_PREFIX)


def _names(options: dict) -> str:
    return ", ".join(sorted(options))


def _says(exc: BaseException) -> str:
    """The server's own words, without pymongo's dump of the whole reply."""
    details = getattr(exc, "details", None) or {}
    return str(details.get("errmsg") or exc).split(", full error:")[0]


def _index_models(metadata: dict) -> list:
    models = []
    for spec in metadata.get("indexes", []):
        if spec.get("name") == "_id_":
            continue
        from pymongo import IndexModel  # only for an index to make: pymongo's import is heavy

        options = {k: v for k, v in spec.items() if k not in ("v", "key", "ns")}
        models.append(IndexModel(list(spec["key"].items()), **options))
    return models


def _report(progress: Progress | None, step: str, done: int, total: int | None) -> None:
    if progress is not None:
        progress(step, done, total)
