"""Whether a scope already is exactly a backup's state, so that restoring it would change nothing.

Restoring a backup onto a folder and records that already hold it would save the current
state as a pre-restore backup, build a tree of hard links to the very same files, replace
every record by an equal one and swap the trees: work that grows with the scope and
changes nothing. So a whole restore asks first whether it would (with the lock held,
in the same pass as the check before a restore reads the file list: ``may_match``, then
a ``FilesMatcher`` fed that list, then, once the backup passed the check,
``records_match``); when
the answer is yes it changes nothing, and needs no pre-restore backup, since there is no
other state to keep. The check itself is not skipped: a damaged backup is still refused.

The comparison is the restore's own idea of "already in place", made strict:

- Files: the live folder is walked in the file list's order and the two go in
  lockstep: the same paths, in the same order, each as the restore would leave it. A
  file passes the restore's quick check (``manifest.same_file``: type, size, mtime and
  mode, the check that makes a restore keep a live file rather than copy it); a file
  the backup records as a hard link of an earlier one must be that file's inode; a
  symbolic link has the same target and time; a folder the same mode and time, as the
  restore gives them back; and so has the scope's folder itself. Anything else in the
  live folder, an extra path or a socket, is a difference.
- Records: per collection of the scope, the documents the scope selects and the
  backup's dump are the same, byte for byte, as a whole (in any order: a restore would
  leave the same records, in the dump's order, which no reader is promised). For the
  site, the live collections are exactly the backup's, with the same options and indexes
  (the dump's metadata, its ``uuid`` aside: a restore makes a new collection).

Cheap evidence comes first, and the first difference ends the comparison: for the site,
the collections' names, then every collection's options and indexes, then every
collection's count (``engines.collection_statistics``: on the embedded engine the rows
and their bytes, exactly, from its SQLite file; on a server its statistics, which can be
off, so a count that differs there is asked again exactly, ``count_documents``, before it
counts as a difference), smallest collection first; only then any document, smallest
collection first again. Each collection's documents are read once, the dump's and the
live ones side by side: while the two agree in order (after a restore the natural order
is the dump's) that costs a comparison of bytes; where they part, each record waits,
keyed by its ``_id`` with the SHA-256 of its bytes, for the record of that ``_id`` on the
other side. A record of the same ``_id`` with other bytes, one side ending first, or a
record still waiting at the end is a difference. A count is never taken as proof of
sameness, only of a difference: what it lets pass, the documents decide.

So a restore that has work to do pays at most one walk of the live folder and one read
of the records up to the first difference before it starts, and none of the records
when a count or an index already tells. What others write meanwhile is what they would
have written just after the restore: a path they change before the walk reaches it is a
difference, and the restore proper runs. On a disk that is not clearly roomy the walk
goes on to the end all the same: the restore's pre-flight count (``preflight.RestoreCount``)
is taken in it, instead of in a walk of its own.

Nothing extra is kept with the backup for this: the manifest's per-collection count and
bytes (``Source.recorded``: signed with the manifest, and checked against the dump by the
check before a restore) are the evidence a backup can give. A digest of each collection kept at backup time would let a restore
skip a collection only if the live side could be shown unchanged without reading it, and
no engine offers that: a server keeps no change counter per collection (MongoDB's
``dbHash`` reads the whole collection on the server, FerretDB has none), and the embedded
engine's file times are too coarse to prove that nothing was written.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterator
from itertools import zip_longest
from pathlib import Path

from bson import json_util

from strongroom.db.dbdump import collection_metadata
from strongroom.db.engines import collection_statistics, list_collections, raw_documents
from strongroom.fs.walking import Cursor, walk
from strongroom.inspect.diffing import dump_documents, id_key, split_documents
from strongroom.inspect.preview import same_as_restore
from strongroom.restore.rebuild import folder_mode
from strongroom.restore.sources import Source

log = logging.getLogger("strongroom")


def may_match(live: Path, source: Source) -> bool:
    """The quick part, before any list is read: ``source`` is a whole backup with its
    folder and records, and the scope's folder has that folder's mode and time."""
    if source.filtered or source.more_files is not None or source.top is None or source.bson_dir is None:
        return False  # a restore of parts, or of a backup without its folder: not this shortcut's
    try:
        return _same_folder(source.top, os.lstat(live))
    except FileNotFoundError:
        return False


class FilesMatcher:
    """Is everything below ``live`` what the backup's file list says, in the same order?
    ``see`` is given every entry of the list in turn (as the check before the restore
    reads it); ``matched`` answers at the end. After the first difference the walk
    stops and every later entry is ignored, unless ``count`` (``preflight.RestoreCount``)
    also takes the restore's pre-flight count in this walk: then the walk goes on to the
    end and every entry is handed to the count with the live item of its path, if any.
    ``compare=False``: only the count is wanted (the answer is no from the start)."""

    def __init__(self, live: Path, count=None, compare: bool = True):
        self._walked = walk(live)
        self._source = self._drawing(count.through(self._walked) if count is not None else self._walked)
        self._live: Cursor | None = None  # made at the first entry: it reads the walk's first item
        self._drawn = self._seen = 0  # items drawn from the walk, entries seen: equal while in step
        self._inodes: dict[str, int] = {}  # files with other names, for entries recorded as hard links
        self._count = count
        self.same = compare

    def _drawing(self, items: Iterator) -> Iterator:
        for item in items:
            self._drawn += 1
            yield item

    def see(self, entry: dict) -> None:
        if not self.same and self._count is None:
            return
        try:
            if self._live is None:
                self._live = Cursor(self._source, path_of=lambda item: item[0])
            item = self._live.find(entry["path"])
        except OSError:  # a folder that cannot be read: the restore proper will say what it is
            self._count is not None and self._count.fail()
            self.same, self._count = False, None
            self.close()
            return
        self._seen += 1
        if self._count is not None:
            self._count.see(entry, item)
        if not self.same:
            return
        # in step: this entry's path is the next item of the walk, none skipped before it
        self.same = item is not None and self._drawn == self._seen and _same(entry, item[1], item[2], self._inodes)
        if not self.same and self._count is None:
            self.close()
        elif self.same and entry["type"] == "file" and item[2].st_nlink > 1:
            self._inodes[entry["path"]] = item[2].st_ino

    def matched(self) -> bool:
        """Every entry was seen as it is live, and nothing else is there. The count, if
        any, is then taken over the rest of the walk."""
        try:
            self.same = self.same and next(self._source, None) is None
            if self._count is not None:
                for _ in self._source:
                    pass
        except OSError:
            self.same = False
            self._count is not None and self._count.fail()
        self.close()
        return self.same

    def close(self) -> None:
        self._walked.close()


def already_is(live: Path, source: Source, database, queries: dict[str, dict] | None) -> bool:
    """The whole comparison in one call, for a preview (which checks no backup): is the
    scope at ``live`` with the records ``queries`` select exactly ``source``'s state?"""
    if not may_match(live, source):
        return False
    matcher = FilesMatcher(live)
    try:
        for entry in source.entries():
            matcher.see(entry)
            if not matcher.same:
                return False
        files_match = matcher.matched()
    finally:
        matcher.close()
    return files_match and records_match(database, source, queries)


def records_match(database, source: Source, queries: dict[str, dict] | None) -> bool:
    """Are the scope's records (``queries``, None for the whole site) the dump's, byte
    for byte, and for the site the collections, options and indexes too? The counts of
    the manifest (``source.recorded``) are evidence of a difference only. A comparison
    that cannot be made (the database failing meanwhile) is no match: the restore proper
    runs, and says what fails as it did before there was this shortcut."""
    try:
        return _records_match(database, source, queries)
    except Exception as exc:  # noqa: BLE001 - only a shortcut: never the reason a restore fails
        log.info("the records could not be compared with the backup (%s): restoring them", exc)
        return False


def _records_match(database, source: Source, queries: dict[str, dict] | None) -> bool:
    recorded = source.recorded
    names = sorted(source.collections, key=lambda name: (recorded.get(name, {}).get("bytes", 0), name))
    if queries is None:
        if sorted(list_collections(database)) != sorted(names):
            return False
        if not all(_same_metadata(database, source.bson_dir, name) for name in names):
            return False
        if not all(_same_count(database, name, recorded.get(name, {})) for name in names):
            return False
    elif any(name not in queries for name in names):
        return False  # no query selects its records: the restore proper refuses it, saying so
    return all(_same_documents(database, source.bson_dir, name, {} if queries is None else queries[name])
               for name in names)


def _same(entry: dict, path: str, st: os.stat_result, inodes: dict[str, int]) -> bool:
    """The restore preview's "unchanged" (``preview.same_as_restore``), and what the
    restore would still set on an item it keeps: a link's time, a folder's mode and
    time; a file recorded as a hard link must be its first name's inode."""
    if not same_as_restore(entry, path, st):
        return False
    kind = entry["type"]
    if kind == "file":
        return not entry.get("hardlink") or inodes.get(entry["hardlink"]) == st.st_ino
    if kind == "symlink":
        return st.st_mtime_ns == entry["mtime_ns"]
    return _same_folder(entry, st)


def _same_folder(entry: dict, st: os.stat_result) -> bool:
    return (stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == folder_mode(entry["mode"])
            and st.st_mtime_ns == entry["mtime_ns"])


def _same_count(database, name: str, recorded: dict) -> bool:
    """Does nothing cheap tell the whole collection ``name`` apart from its dump? Its
    count (and bytes, where the engine knows them exactly) against the manifest's; a
    server's count that differs is asked again exactly before it is believed."""
    statistics = collection_statistics(database, name)
    if statistics is None or recorded.get("count") is None:
        return True  # nothing cheap to tell: the documents will
    if statistics.count != recorded["count"] and not statistics.exact:
        return database[name].count_documents({}) == recorded["count"]
    if statistics.bytes is not None and recorded.get("bytes") is not None and statistics.bytes != recorded["bytes"]:
        return False
    return statistics.count == recorded["count"]


def _same_documents(database, bson_dir: Path, name: str, query: dict) -> bool:
    """The live documents ``query`` selects are the dump's, byte for byte, in one read of
    each (``same_records``)."""
    stored = dump_documents(bson_dir, name)
    live = split_documents(raw_documents(database, name, query))
    try:
        return same_records(stored, live)
    finally:
        stored.close()
        live.close()


def same_records(stored: Iterator[bytes], live: Iterator[bytes]) -> bool:
    """Do the two streams of raw BSON documents hold the same documents, in any order?
    Both are read once, side by side, and no further than the first difference: equal
    bytes in step cost nothing more; where the two part, each record waits (its ``_id``
    and the SHA-256 of its bytes) for the record of its ``_id`` on the other side, so what
    is held is what is out of step. The same ``_id`` with other bytes, one side ending
    first, an ``_id`` twice on one side, or anything still waiting at the end is a
    difference."""
    waiting: tuple[dict, dict] = ({}, {})  # the stored side's, the live side's: _id -> SHA-256
    for mine, theirs in zip_longest(stored, live):
        if mine == theirs:
            continue
        if mine is None or theirs is None:
            return False
        my_key, their_key = id_key(mine), id_key(theirs)
        if my_key == their_key:
            return False
        if not (_meet(my_key, mine, waiting[0], waiting[1]) and _meet(their_key, theirs, waiting[1], waiting[0])):
            return False
    return not waiting[0] and not waiting[1]


def _meet(key: bytes, raw: bytes, mine: dict, theirs: dict) -> bool:
    """Meet the other side's record of ``key`` if it waits (the same bytes?), else wait."""
    digest = hashlib.sha256(raw).digest()
    if key in theirs:
        return theirs.pop(key) == digest
    if key in mine:
        return False
    mine[key] = digest
    return True


def proven_unchanged(source: Source, pre_path: Path, pre: dict) -> dict[str, int]:
    """The collections a whole site restore of ``source`` may leave as they are, with
    their counts: those whose dump in ``pre``, the pre-restore backup this restore just
    made, is the backup's byte for byte (the ``.bson``'s SHA-256, count and bytes) with
    the same options and indexes (``uuid`` aside, as ``records_match`` compares them).
    The live collection then already holds exactly the backup's documents, in the same
    order: loading it again would change nothing.

    Only when nothing could have written in between: ``pre`` was made with the host's
    writes held (``write_hold``), every write under way drained before its dump and no
    warning of any kind (a hold that expired, a write still going); after that, the
    restore's journal refuses every write through the guarded host until it ends. A
    backup made without a hold, a partial or filtered source, or any doubt: none."""
    if source.bson_dir is None or source.filtered or source.more_files is not None:
        return {}
    if pre.get("timings", {}).get("hold") is None or pre.get("warnings"):
        return {}
    pre_dir = pre_path / "db" / "bson"
    kept = {}
    for name in source.collections:
        mine, theirs = source.recorded.get(name, {}), pre.get("collections", {}).get(name)
        if not theirs or any(mine.get(key) is None or mine.get(key) != theirs.get(key)
                             for key in ("sha256", "count", "bytes")):
            continue
        same = mine.get("metadata_sha256") is not None and mine["metadata_sha256"] == theirs.get("metadata_sha256")
        if not same and not _same_metadata_files(
                source.bson_dir / f"{name}.metadata.json", pre_dir / f"{name}.metadata.json"):
            continue
        kept[name] = mine["count"]
    return kept


def _same_metadata_files(mine: Path, theirs: Path) -> bool:
    try:
        return _canonical(_read_metadata(mine)) == _canonical(_read_metadata(theirs))
    except (OSError, ValueError):
        return False


def _read_metadata(path: Path) -> dict:
    return json_util.loads(path.read_text(encoding="utf-8"))


def _same_metadata(database, bson_dir: Path, name: str) -> bool:
    """The collection's options and indexes are the dump's (``uuid`` aside)."""
    return _canonical(_read_metadata(bson_dir / f"{name}.metadata.json")) == _canonical(
        collection_metadata(database, name))


def _canonical(metadata: dict) -> str:
    """The metadata as the dump writes it, read back and written again, without ``uuid``."""
    options = json_util.CANONICAL_JSON_OPTIONS
    again = json_util.loads(json_util.dumps(metadata, json_options=options), json_options=options)
    again.pop("uuid", None)
    return json_util.dumps(again, json_options=options)
