"""What changed between two backups, or between a backup and the live scope.

Files of two backups: their file lists are merge-joined in walk order (both are sorted
the same way, ``manifest.path_key``). A path only in the newer is *added*, only in the
older *removed*, in both *changed* when its content differs: for a file its hash (so a
file only touched is unchanged), for a link its target, and a change of kind (file to
folder, …). Against the live scope the restore preview's comparison is used, seen the
other way round (what was added since the backup is what a restore would remove); a
live file counts as changed when its size differs from the backup's, or its time or mode
do and its content (hashed then) is not the backup's.

Records: per collection, each document is keyed by its ``_id`` (type-exact) and
compared by the SHA-256 of its BSON bytes: *added*, *removed*, *changed* and
*unchanged* counts. The older side's keys and hashes are held in memory (about 100
bytes a record); the newer side is streamed. Against live, the scope's records are read
from the database as a restore of the backup would replace them (``linking``; a site:
every collection).
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

import bson

from strongroom.db import linking
from strongroom.db.engines import list_collections, raw_documents
from strongroom.inspect import preview
from strongroom.repo.manifest import COUNTED_AS, counted_as, iter_entries, path_key
from strongroom.repo.pool import hash_file
from strongroom.scopes import Scope, scope_dir

KINDS = ("added", "removed", "changed")


def diff_backup_files(old_dir: Path, old: dict, new_dir: Path, new: dict) -> dict:
    """``{"files"|"links"|"folders": {"added"|"removed"|"changed": {"count", "bytes",
    "paths"}, "unchanged": n}}`` from backup ``old`` to backup ``new``, each path counted
    under its kind (``manifest.counted_as``; a path whose kind changed, under its new kind)."""
    report = {word: _empty_files() for word in COUNTED_AS.values()}
    newer = iter_entries(new_dir, new)
    current = next(newer, None)
    for entry in iter_entries(old_dir, old):
        key = path_key(entry["path"])
        while current is not None and path_key(current["path"]) < key:
            _note(report, "added", current)
            current = next(newer, None)
        if current is not None and current["path"] == entry["path"]:
            if _same(entry, current):
                report[counted_as(current["type"])]["unchanged"] += 1
            else:
                _note(report, "changed", current)
            current = next(newer, None)
        else:
            _note(report, "removed", entry)
    while current is not None:
        _note(report, "added", current)
        current = next(newer, None)
    return report


def diff_live_files(live: Path, backup_dir: Path, manifest: dict) -> dict:
    """The same report from the backup to the live folder ``live``."""
    towards_backup = preview.diff_files(live, iter_entries(backup_dir, manifest), same=_same_live)
    return {word: {"added": kind["removed"], "removed": kind["added"], "changed": kind["changed"],
                   "unchanged": kind["unchanged"]} for word, kind in towards_backup.items()}


def _same_live(entry: dict, path: str, st) -> bool:
    """As a restore decides (size, time, mode), except that a file of the same size whose
    time or mode alone differ is hashed: only touched, it has not changed."""
    if preview.same_as_restore(entry, path, st):
        return True
    if entry["type"] != "file" or not stat.S_ISREG(st.st_mode) or st.st_size != entry["size"]:
        return False
    try:
        return hash_file(path)[0] == entry["hash"]
    except OSError:  # gone or swapped for a link since the walk saw it: not the same
        return False


def _empty_files() -> dict:
    report = {kind: {"count": 0, "bytes": 0, "paths": []} for kind in KINDS}
    report["unchanged"] = 0
    return report


def _same(old: dict, new: dict) -> bool:
    if old["type"] != new["type"]:
        return False
    if old["type"] == "file":
        return old["hash"] == new["hash"]
    if old["type"] == "symlink":
        return old["target"] == new["target"]
    return True


def _note(reports: dict, kind: str, entry: dict) -> None:
    report = reports[counted_as(entry["type"])]
    report[kind]["count"] += 1
    report[kind]["bytes"] += entry.get("size", 0)
    if len(report[kind]["paths"]) < preview.MAX_LISTED:
        report[kind]["paths"].append(entry["path"])


# -- records ----------------------------------------------------------------------------


def diff_backup_records(old_bson: Path, old_names: Iterable[str], new_bson: Path, new_names: Iterable[str]) -> dict:
    """Per collection in either backup ``{"added", "removed", "changed", "unchanged"}``."""
    old_names, new_names = set(old_names), set(new_names)
    return {name: _compare(dump_documents(old_bson, name) if name in old_names else iter(()),
                           dump_documents(new_bson, name) if name in new_names else iter(()))
            for name in sorted(old_names | new_names)}


def diff_live_records(bson_dir: Path, names: Iterable[str], database, queries: dict[str, dict] | None) -> dict:
    """From the backup's dumps to the live records of the scope (``queries`` None: the site)."""
    names = list(names)
    live_names = list(names) if queries is not None else sorted(set(names) | set(list_collections(database)))
    report = {}
    for name in live_names:
        old = dump_documents(bson_dir, name) if name in names else iter(())
        query = {} if queries is None else queries[name]
        report[name] = _compare(old, split_documents(raw_documents(database, name, query)))
    return report


def dump_documents(bson_dir: Path, name: str) -> Iterator[bytes]:
    """The raw BSON documents of a dump (``<name>.bson``: concatenated documents)."""
    with open(bson_dir / f"{name}.bson", "rb") as fh:
        while header := fh.read(4):
            size = int.from_bytes(header, "little")
            yield header + fh.read(size - 4)


def split_documents(batches: Iterable[bytes]) -> Iterator[bytes]:
    for batch in batches:
        offset = 0
        while offset < len(batch):
            size = int.from_bytes(batch[offset:offset + 4], "little")
            yield batch[offset:offset + size]
            offset += size


def _compare(old: Iterator[bytes], new: Iterator[bytes]) -> dict:
    before = {id_key(raw): hashlib.sha256(raw).digest() for raw in old}
    counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
    for raw in new:
        digest = before.pop(id_key(raw), None)
        if digest is None:
            counts["added"] += 1
        elif digest == hashlib.sha256(raw).digest():
            counts["unchanged"] += 1
        else:
            counts["changed"] += 1
    counts["removed"] = len(before)
    return counts


def id_key(raw: bytes) -> bytes:
    """A hashable, type-exact key for the document's ``_id``."""
    return bson.encode({"_id": bson.decode(raw)["_id"]})


def diff(sr, scope: Scope, backup_id: str, against: str) -> dict:
    """What changed from backup ``backup_id`` of the scope to backup ``against`` or to the
    live scope (``"live"``): ``{"from", "to", "scope", "project", "files", "links",
    "folders", "records"}`` (``Strongroom.diff_backups``)."""
    old_dir, old = sr.store.open(scope, backup_id)
    if against == "live":
        files = diff_live_files(scope_dir(sr.config, scope), old_dir, old)
        bson_dir = old_dir / "db" / "bson"
        records = diff_live_records(bson_dir, old["collections"], sr.database,
                                    linking.replaced_queries(sr.config, scope, sr.database, bson_dir))
    else:
        new_dir, new = sr.store.open(scope, against)
        files = diff_backup_files(old_dir, old, new_dir, new)
        records = diff_backup_records(old_dir / "db" / "bson", old["collections"],
                                      new_dir / "db" / "bson", new["collections"])
    return {"from": backup_id, "to": against, "scope": scope.kind, "project": scope.project_id,
            **files, "records": records}
