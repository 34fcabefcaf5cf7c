"""Which documents of a dump a query selects, read without a database.

A site backup's dump holds every project's records; restoring one project from it loads
only the documents its queries select (``scopes.project_queries``). The queries are of
two forms, and only these are understood: ``{field: value}`` (equal, BSON types exact:
an ObjectId never equals its hex string) and ``{field: {"$in": [values]}}``. A field
may be a dotted path; an array field matches if any element does, as MongoDB's do. Any
other operator is refused (``BadInput``), never guessed at.

A project's collection linked through another (``editionUser`` through ``edition``) has
its query made from the ids of the project's records of that other collection, read
from the same dump first (``dump_ids``, ``dump_queries``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import bson
from bson import ObjectId

from strongroom.config import Config
from strongroom.db.dbdump import RAW_OPTIONS
from strongroom.errors import BadInput
from strongroom.scopes import IdsOf, project_queries

_MISSING = object()


def matcher(query: Mapping) -> Callable[[Mapping], bool]:
    """A test of a document against ``query`` (checked for form now, not per document)."""
    tests = [_field_test(field, condition) for field, condition in query.items()]
    return lambda document: all(test(document) for test in tests)


def _field_test(field: str, condition) -> Callable[[Mapping], bool]:
    if isinstance(condition, Mapping):
        if set(condition) != {"$in"} or not isinstance(condition["$in"], list | tuple):
            raise BadInput(f"a record query Strongroom cannot apply to a dump: {field!r}: {condition!r}")
        wanted = list(condition["$in"])
    else:
        wanted = [condition]
    return lambda document: _matches(_value(document, field), wanted)


def _value(document: Mapping, field: str):
    value = document
    for name in field.split("."):
        if not isinstance(value, Mapping):
            return _MISSING
        value = value.get(name, _MISSING)
    return value


def _matches(value, wanted: list) -> bool:
    if value is _MISSING:
        return False
    if isinstance(value, list) and any(_equal(item, candidate) for item in value for candidate in wanted):
        return True
    return any(_equal(value, candidate) for candidate in wanted)


def _equal(value, candidate) -> bool:
    """BSON equality: same type family and value (``True`` is not ``1``)."""
    if isinstance(value, bool) or isinstance(candidate, bool):
        return type(value) is type(candidate) and value == candidate
    return value == candidate


def dump_ids(bson_dir: Path) -> IdsOf:
    """``scopes.IdsOf`` read from a dump: the ``_id`` of each document of
    ``<collection>.bson`` the query selects (none when the dump lacks the collection). A
    site backup's ``edition.bson`` read with a project's query gives that project's
    editions, so the project's ``editionUser`` records can be chosen from the same dump."""

    def ids_of(name: str, query: dict) -> list:
        keep = matcher(query)
        try:
            with open(bson_dir / f"{name}.bson", "rb") as fh:
                return [document["_id"] for document in bson.decode_file_iter(fh, RAW_OPTIONS)
                        if keep(document)]
        except FileNotFoundError:
            return []

    return ids_of


def named_ids(config: Config, bson_dir: Path) -> IdsOf:
    """``scopes.IdsOf`` giving, for a collection others are linked through, the ids that
    the dump's records of those others name (the ``editionId`` of each ``editionUser``
    record, whatever its edition), a hex id also as ObjectId: where a dump loaded whole
    puts records, so that a restore can clear those places first (``linking``)."""

    def ids_of(name: str, _query: dict) -> list:
        found = []
        for link in config.model.linked:
            if link.via != name:
                continue
            try:
                with open(bson_dir / f"{link.collection}.bson", "rb") as fh:
                    for document in bson.decode_file_iter(fh, RAW_OPTIONS):
                        found.extend(_named(_value(document, link.field)))
            except FileNotFoundError:
                continue
        return found

    return ids_of


def _named(value) -> list:
    values = value if isinstance(value, list) else [] if value is _MISSING else [value]
    return [*values, *(ObjectId(v) for v in values if isinstance(v, str) and ObjectId.is_valid(v))]


def dump_queries(config: Config, project_id: str, bson_dir: Path) -> dict[str, dict]:
    """A project's queries as far as the dump in ``bson_dir`` knows its records: what to
    load from a dump that holds more (one project of a site backup)."""
    return project_queries(config, project_id, dump_ids(bson_dir))
