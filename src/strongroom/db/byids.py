"""Reading and deleting records named by their ``_id``s, in as few reads of the collection
as the server allows.

A MongoDB server finds a list of ``_id``s (``{"_id": {"$in": [...]}}``) through its
``_id`` index: one request per few thousand ids. FerretDB 1.x does not: it decodes and
filters every record of the collection for such a query (10-13 s for 200,000 records of
300-1,000 bytes on FerretDB 1.24 with SQLite), and only ``{"_id": <one id>}`` goes to its
storage, where SQLite still reads the table but without decoding (0.4-0.8 s for the same
records: its ``_id`` index is on another expression than its query), for an ObjectId or
a string (any other ``_id`` is filtered as a list is). So where the server says lists are
scanned (``capabilities.id_lists_scan``) and the ids are few (up to ``FEW_IDS``) and of
those types, each is asked on its own; otherwise, the list. Every deletion goes through
``strongroom.fs.mutations``.
"""

from __future__ import annotations

from collections.abc import Iterator

from bson import ObjectId

from strongroom.db import capabilities
from strongroom.fs import mutations

FEW_IDS = 8  # one-id requests cost ~1/25 of a list's scan on FerretDB 1.24; a deletion is two of them
IDS_PER_LIST = 5_000


def find_raw(collection, ids: list, session=None) -> Iterator[bytes]:
    """The records of ``ids``, as batches of raw BSON (any order)."""
    for query in _queries(collection, ids):
        yield from collection.find_raw_batches(query, session=session)


def delete(collection, ids: list, session=None) -> int:
    """Delete the records of ``ids``; the count deleted."""
    return sum(mutations.delete_many(collection, query, session=session) for query in _queries(collection, ids))


def _queries(collection, ids: list) -> list[dict]:
    if not ids:
        return []
    if (len(ids) <= FEW_IDS and all(isinstance(value, ObjectId | str) for value in ids)
            and capabilities.id_lists_scan(collection.database, collection.name)):
        return [{"_id": value} for value in ids]
    return [{"_id": {"$in": ids[start:start + IDS_PER_LIST]}} for start in range(0, len(ids), IDS_PER_LIST)]
