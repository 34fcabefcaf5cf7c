"""Put dumped collections back, with the least exposure each engine allows.

Site restore (every collection; the database ends up holding exactly the dump):

- MongoDB: each collection is loaded into a staging collection
  ``strongroom_restore.<name>`` (created with the dumped options, indexes built), then
  swapped in by ``renameCollection`` with ``dropTarget``: readers see the old collection
  or the new one, never a half-filled one. Collections the dump lacks are dropped last.
- Embedded (montydb): it cannot rename collections, so each collection is dropped and
  reloaded; the restore journal and its rollback carry the guarantee there.

Project restore (only the records the queries select; nothing else is touched):

- MongoDB: delete and insert run in one transaction where the deployment supports them
  (replica set or sharded cluster); on a standalone server they run without.
- Embedded: delete, then insert; the journal and rollback carry the guarantee.

Documents go back as ``RawBSONDocument``, byte for byte. Every change goes through
``strongroom.mutations``. Every needed file is checked before anything changes.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import bson
from bson import json_util

from . import engines, mutations
from .dbdump import INSERT_BATCH_BYTES, INSERT_BATCH_DOCUMENTS, RAW_OPTIONS, UNBATCHED, check_collection_name
from .errors import BadInput, CorruptBackup

Progress = Callable[[str, int, "int | None"], None]
STAGING_PREFIX = engines.RESTORE_STAGING_PREFIX


def restore_collections(
    database,
    bson_dir: Path,
    names: list[str],
    queries: dict[str, dict] | None,
    progress: Progress | None = None,
) -> dict[str, int]:
    """Put the dumped documents of ``names`` back; return the count inserted per collection.

    ``queries is None`` restores the whole database (see the module's description);
    otherwise, per collection, the documents matching its query are replaced.
    """
    _check_restorable(bson_dir, names, queries)
    if queries is not None:
        return _restore_project(database, bson_dir, names, queries, progress)
    inserted = {}
    for done, name in enumerate(names):
        _report(progress, f"restore {name}", done, len(names))
        if engines.is_embedded(database):
            mutations.drop_collection(database, name)
            inserted[name] = _insert_documents(database[name], bson_dir / f"{name}.bson")
        else:
            inserted[name] = _load_and_swap(database, bson_dir, name)
    for stale in sorted(set(engines.list_collections(database)) - set(names)):
        mutations.drop_collection(database, stale)
    drop_staging_collections(database)
    _report(progress, "restore", len(names), len(names))
    return inserted


def _load_and_swap(database, bson_dir: Path, name: str) -> int:
    """MongoDB: fill a staging collection, build its indexes, rename it over ``name``."""
    staging = STAGING_PREFIX + name
    metadata = json_util.loads((bson_dir / f"{name}.metadata.json").read_text(encoding="utf-8"))
    mutations.drop_collection(database, staging)
    mutations.create_collection(database, staging, metadata.get("options") or {})
    count = _insert_documents(database[staging], bson_dir / f"{name}.bson")
    mutations.create_indexes(database[staging], _index_models(metadata))
    mutations.rename_collection(database[staging], name, drop_target=True)
    return count


def drop_staging_collections(database) -> None:
    """Remove staging collections left by a restore that was cut short."""
    if engines.is_embedded(database):
        return
    for name in database.list_collection_names():
        if name.startswith(STAGING_PREFIX):
            mutations.drop_collection(database, name)


def _restore_project(database, bson_dir, names, queries, progress) -> dict[str, int]:
    def replace(session=None) -> dict[str, int]:
        inserted = {}
        for done, name in enumerate(names):
            _report(progress, f"restore {name}", done, len(names))
            mutations.delete_many(database[name], queries[name], session=session)
            inserted[name] = _insert_documents(database[name], bson_dir / f"{name}.bson", session=session)
        return inserted

    if engines.is_embedded(database) or not engines.supports_transactions(database):
        return replace()
    with database.client.start_session() as session:
        return session.with_transaction(lambda s: replace(s))


def _check_restorable(bson_dir: Path, names: list[str], queries: dict[str, dict] | None) -> None:
    for name in names:
        check_collection_name(name)
        if queries is not None and name not in queries:
            raise BadInput(f"no query says which records of {name!r} a project restore replaces")
        for path in (bson_dir / f"{name}.bson", bson_dir / f"{name}.metadata.json"):
            if not path.is_file():
                raise CorruptBackup(f"{path} is missing from the backup")


def _insert_documents(collection, bson_path: Path, session=None, limits: tuple | None = None) -> int:
    """Insert the file's documents unchanged, in batches of bounded count and size
    (one batch on the embedded engine: see ``dbdump.UNBATCHED``)."""
    if limits is None:
        embedded = engines.is_embedded(collection.database)
        limits = UNBATCHED if embedded else (INSERT_BATCH_DOCUMENTS, INSERT_BATCH_BYTES)
    max_documents, max_bytes = limits
    inserted, batch, size = 0, [], 0
    with open(bson_path, "rb") as fh:
        for document in bson.decode_file_iter(fh, RAW_OPTIONS):
            batch.append(document)
            size += len(document.raw)
            if len(batch) >= max_documents or size >= max_bytes:
                inserted += mutations.insert_many(collection, batch, session=session)
                batch, size = [], 0
    return inserted + mutations.insert_many(collection, batch, session=session)


def _index_models(metadata: dict) -> list:
    from pymongo import IndexModel

    models = []
    for spec in metadata.get("indexes", []):
        if spec.get("name") == "_id_":
            continue
        options = {k: v for k, v in spec.items() if k not in ("v", "key", "ns")}
        models.append(IndexModel(list(spec["key"].items()), **options))
    return models


def _report(progress: Progress | None, step: str, done: int, total: int | None) -> None:
    if progress is not None:
        progress(step, done, total)
