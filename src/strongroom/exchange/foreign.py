"""Reading record dumps made by others: the original module's and mongodump's, checked.

Two layouts of a folder of BSON are read (``importing`` decides which one a source has):

- the original module's ``db/bson``: per table either ``<table>.bson`` (its documents
  concatenated) or a folder ``<table>/`` holding one ``.bson`` file per record (each
  ``bson.encode(record)``), read in file-name order; it has no metadata;
- mongodump's ``<db>/``: per collection ``<coll>.bson`` and ``<coll>.metadata.json``.

Everything here comes from outside and is checked before it is used, failing with a
one-line ``BadInput`` that names the file:

- Nothing below the folder is followed through a symbolic link: every folder and file is
  opened relative to its parent's descriptor with ``O_NOFOLLOW``, so a link (or a folder
  swapped for one) is refused, not followed out of the source.
- Collection names go through ``manifest.validate_collection_name``, the validator every
  stored name passes; ``system.*`` collections are left out with a warning.
- Every document is decoded in full: malformed or truncated BSON, a document over
  MongoDB's size limit, or one without ``_id`` is refused, with its position.
- Metadata must be a JSON object with a list of index specifications; only the fields a
  restore uses are kept, and its ``collectionName`` is set to the file's collection.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import bson
from bson import json_util

from strongroom.db import docfilter
from strongroom.db.dbdump import ID_INDEX, RAW_OPTIONS, READ_OPTIONS
from strongroom.errors import BadInput, InvalidName
from strongroom.repo.manifest import validate_collection_name

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024 + 16 * 1024  # MongoDB's limit, plus its own headroom
BATCH_DOCUMENTS = 1000
BSON_SUFFIX = ".bson"
METADATA_SUFFIX = ".metadata.json"


@dataclass
class ForeignCollection:
    """One collection of a foreign dump: its files (in reading order) and metadata, if any."""

    name: str
    files: list[tuple[str, ...]] = field(default_factory=list)  # paths below the dump folder
    metadata: tuple[str, ...] | None = None


@dataclass
class ForeignDump:
    """A dump found at ``source/base…``; every path in it is below that, as parts."""

    source: Path
    base: tuple[str, ...]
    collections: dict[str, ForeignCollection]
    warnings: list[str]

    @property
    def folder(self) -> Path:
        return self.source.joinpath(*self.base)


# -- opening without following links -------------------------------------------------


@contextmanager
def opened(root: Path, parts: tuple[str, ...], directory: bool):
    """A descriptor of ``root/parts…``, each component opened with ``O_NOFOLLOW``."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for n, part in enumerate(parts):
            last = n == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | (os.O_DIRECTORY if directory or not last else 0)
            try:
                child = os.open(part, flags, dir_fd=fd)
            except OSError as exc:
                raise BadInput(f"{_shown(root, parts[: n + 1])}: {_why(exc)}") from None
            os.close(fd)
            fd = child
        if not directory and not stat.S_ISREG(os.fstat(fd).st_mode):
            raise BadInput(f"{_shown(root, parts)} is not a regular file")
        yield fd
    finally:
        os.close(fd)


def _why(exc: OSError) -> str:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        return "a symbolic link or not a folder: not followed"
    return exc.strerror or str(exc)


def _shown(root: Path, parts: tuple[str, ...]) -> str:
    return str(root.joinpath(*parts))


def list_folder(root: Path, parts: tuple[str, ...]) -> list[tuple[str, str]]:
    """(name, kind) of a folder's entries, sorted; kind is ``dir``, ``file`` or ``other``."""
    with opened(root, parts, directory=True) as fd:
        found = []
        with os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_symlink():
                    raise BadInput(f"{_shown(root, (*parts, entry.name))} is a symbolic link: not followed")
                kind = "dir" if entry.is_dir(follow_symlinks=False) else (
                    "file" if entry.is_file(follow_symlinks=False) else "other")
                found.append((entry.name, kind))
    return sorted(found)


def read_bytes(root: Path, parts: tuple[str, ...]) -> bytes:
    with opened(root, parts, directory=False) as fd, os.fdopen(os.dup(fd), "rb") as fh:
        return fh.read()


# -- finding the collections ---------------------------------------------------------


def collection_name(file_name: str, where: str, warnings: list[str]) -> str | None:
    """The collection a file or folder name stands for, validated; None for ``system.*``."""
    if file_name.startswith("system."):
        warnings.append(f"left out {where}/{file_name}: system collections are not backed up")
        return None
    try:
        return validate_collection_name(file_name)
    except InvalidName as exc:
        raise BadInput(f"{where}/{file_name}: {exc}") from None


def read_original_dump(source: Path, base: tuple[str, ...]) -> ForeignDump:
    """The original module's ``db/bson`` (``base``): ``<table>.bson`` files or ``<table>/`` folders."""
    warnings: list[str] = []
    collections: dict[str, ForeignCollection] = {}
    bson_dir = source.joinpath(*base)
    for name, kind in list_folder(source, base):
        if kind == "file" and name.endswith(BSON_SUFFIX):
            files = [(name,)]
            table = collection_name(name[: -len(BSON_SUFFIX)], str(bson_dir), warnings)
        elif kind == "dir":
            files = [(name, record) for record, record_kind in list_folder(source, (*base, name))
                     if _record_file(bson_dir, name, record, record_kind)]
            table = collection_name(name, str(bson_dir), warnings)
        else:
            raise BadInput(f"{bson_dir / name}: not a table's .bson file or folder")
        if table is None:
            continue
        if table in collections:
            raise BadInput(f"{bson_dir}: table {table} is there both as a file and as a folder")
        collections[table] = ForeignCollection(table, files)
    _check_json_tables(source, base, collections)
    return ForeignDump(source, base, collections, warnings)


def _check_json_tables(source: Path, base: tuple[str, ...], collections: dict) -> None:
    """The JSON beside the BSON is not read (the BSON is the data), but a table found
    only there would be lost without a word: refuse it instead."""
    json_base = (*base[:-1], "json")
    try:
        entries = list_folder(source, json_base)
    except BadInput:
        return  # no json/ folder: nothing could be lost
    for name, _kind in entries:
        table = name.removesuffix(".json")
        if not table.startswith("system.") and table not in collections:
            raise BadInput(f"{source.joinpath(*json_base, name)}: table {table} has JSON but no BSON; "
                           "the records are imported from their BSON")


def _record_file(bson_dir: Path, table: str, name: str, kind: str) -> bool:
    if kind != "file" or not name.endswith(BSON_SUFFIX):
        raise BadInput(f"{bson_dir / table / name}: not a record's .bson file")
    return True


def read_mongodump(source: Path, base: tuple[str, ...]) -> ForeignDump:
    """A mongodump database folder (``base``): ``<coll>.bson`` and ``<coll>.metadata.json``."""
    warnings: list[str] = []
    collections: dict[str, ForeignCollection] = {}
    db_dir = source.joinpath(*base)
    for name, kind in list_folder(source, base):
        if name == "oplog.bson":
            warnings.append(f"left out {db_dir / name}: an oplog is not replayed")
            continue
        if name.endswith(".gz"):
            raise BadInput(f"{db_dir / name}: compressed dumps (--gzip) are not read; gunzip them first")
        if kind != "file" or not name.endswith((BSON_SUFFIX, METADATA_SUFFIX)):
            if name == "prelude.json":
                continue
            raise BadInput(f"{db_dir / name}: not a collection's .bson or .metadata.json file")
        stem = name[: -len(BSON_SUFFIX)] if name.endswith(BSON_SUFFIX) else name[: -len(METADATA_SUFFIX)]
        table = collection_name(stem, str(db_dir), warnings)
        if table is None:
            continue
        found = collections.setdefault(table, ForeignCollection(table))
        if name.endswith(BSON_SUFFIX):
            found.files.append((name,))
        else:
            found.metadata = (name,)
    return ForeignDump(source, base, collections, warnings)


def holds_dump(source: Path, base: tuple[str, ...]) -> bool:
    """Does the folder hold collections directly (any ``.bson`` or ``.metadata.json``)?"""
    return any(kind == "file" and name.endswith((BSON_SUFFIX, METADATA_SUFFIX)) and name != "oplog.bson"
               for name, kind in list_folder(source, base))


# -- reading documents ---------------------------------------------------------------


def documents(dump: ForeignDump, collection: ForeignCollection, query: dict | None = None) -> Iterator[bytes]:
    """The collection's documents (those matching ``query``, if given) as batches of raw
    BSON, each document checked in full (see the module's description)."""
    batch: list[bytes] = []
    for parts in collection.files:
        for raw in _checked_documents(dump.source, (*dump.base, *parts), query):
            batch.append(raw)
            if len(batch) >= BATCH_DOCUMENTS:
                yield b"".join(batch)
                batch.clear()
    if batch:
        yield b"".join(batch)


def _checked_documents(source: Path, parts: tuple[str, ...], query: dict | None) -> Iterator[bytes]:
    where = _shown(source, parts)
    with opened(source, parts, directory=False) as fd, os.fdopen(os.dup(fd), "rb") as fh:
        position = 0
        keep = docfilter.matcher(query) if query is not None else None
        try:
            for raw in bson.decode_file_iter(fh, RAW_OPTIONS):
                position += 1
                if len(raw.raw) > MAX_DOCUMENT_BYTES:
                    raise BadInput(f"{where}: document {position} is larger than MongoDB allows")
                document = bson.decode(raw.raw, READ_OPTIONS)
                if "_id" not in document:
                    raise BadInput(f"{where}: document {position} has no _id")
                if keep is None or keep(document):
                    yield raw.raw
        except (bson.errors.BSONError, ValueError, OverflowError) as exc:
            raise BadInput(f"{where}: document {position + 1} is not valid BSON ({exc})") from None


# -- metadata ------------------------------------------------------------------------


def metadata(dump: ForeignDump, collection: ForeignCollection) -> dict:
    """The collection's metadata in mongodump's form, checked; only ``_id`` when none."""
    default = {"indexes": [dict(ID_INDEX)], "collectionName": collection.name, "type": "collection"}
    if collection.metadata is None:
        return default
    parts = (*dump.base, *collection.metadata)
    where = _shown(dump.source, parts)
    try:
        found = json_util.loads(read_bytes(dump.source, parts))
    except (ValueError, TypeError, bson.errors.BSONError) as exc:
        raise BadInput(f"{where}: not valid Extended JSON ({exc})") from None
    indexes = found.get("indexes") if isinstance(found, dict) else None
    if not isinstance(indexes, list) or not all(
        isinstance(i, dict) and isinstance(i.get("key"), dict) and isinstance(i.get("name"), str) for i in indexes
    ):
        raise BadInput(f"{where}: not a collection's metadata (no list of indexes)")
    if found.get("type", "collection") != "collection":
        raise BadInput(f"{where}: a {found.get('type')!r}, not a collection: cannot be imported")
    checked = {"indexes": indexes, "collectionName": collection.name, "type": "collection"}
    if isinstance(found.get("options"), dict) and found["options"]:
        checked = {"options": found["options"], **checked}
    return checked
