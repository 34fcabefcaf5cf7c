"""Which documents of a dump a query selects, read without a database.

A site backup's dump holds every project's records; restoring one project from it loads
only the documents its queries select (``scopes.project_queries``). The queries are of
two forms, and only these are understood: ``{field: value}`` (equal, BSON types exact:
an ObjectId never equals its hex string) and ``{field: {"$in": [values]}}``. A field
may be a dotted path; an array field matches if any element does, as MongoDB's do. Any
other operator is refused (``BadInput``), never guessed at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from strongroom.errors import BadInput

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
