"""What a restore would change, computed without changing anything.

Files: the live folder is walked in the same order as the backup's file list and the two
are merge-joined. A path only in the backup will be *added*, one only in the live folder
*removed*, one in both *changed* unless it is the same: for a file, the quick check the
restore itself uses (``manifest.same_file``: size, mtime and mode), for a link its
target, for a folder its presence. So the preview reports exactly the files the restore
will copy or remove. Counts follow ``manifest.counted_as``: regular files under
``files``, symbolic links under ``links``, folders under ``folders`` (never a folder
counted as a file).

Records: per collection of the scope, the backup's documents and the live ones are
compared by ``_id``: *added*, *removed*, *changed* (same ``_id``, other content) and
*unchanged* counts. A site restore also removes every collection the backup lacks.

``changes_nothing`` reads a report (a preview's, or a diff's of the same shape): no file,
folder, link or record added, changed or removed. A preview says so
(``"changes_nothing"``), and a restore of parts that would change nothing does nothing.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import bson

from strongroom.db import docfilter
from strongroom.db.engines import list_collections, raw_documents
from strongroom.fs.walking import walk
from strongroom.repo.manifest import COUNTED_AS, counted_as, path_key, same_file

MAX_LISTED = 1000  # paths listed per kind; the counts are always complete


def diff_files(live: Path, entries: Iterator[dict], within: Callable[[str], bool] | None = None,
               same=None, descend: Callable[[str], bool] | None = None) -> dict:
    """``{"files"|"links"|"folders": {"added"|"removed"|"changed": {"count", "bytes",
    "paths"}, "unchanged": n}}``, each path counted under its kind (``counted_as``); with
    ``within``, only the paths it accepts count (a partial restore's parts), and the walk
    of the live folder goes only into the folders ``descend`` accepts (those in the
    parts and those that lead to them);
    ``same(entry, path, st)`` says whether a live item is the entry's (default: as a restore decides)."""
    same = same or same_as_restore
    report = {word: _empty() for word in COUNTED_AS.values()}
    current = walk(live, descend) if live.is_dir() else iter(())
    if within is not None:
        current = (item for item in current if within(item[0]))
        entries = (entry for entry in entries if within(entry["path"]))
    live_item = next(current, None)
    for entry in entries:
        key = path_key(entry["path"])
        while live_item is not None and path_key(live_item[0]) < key:
            _note_live(report, live_item)
            live_item = next(current, None)
        bucket = report[counted_as(entry["type"])]
        if live_item is not None and live_item[0] == entry["path"]:
            if same(entry, live_item[1], live_item[2]):
                bucket["unchanged"] += 1
            else:
                _note(bucket, "changed", entry["path"], entry.get("size", 0))
            live_item = next(current, None)
        else:
            _note(bucket, "added", entry["path"], entry.get("size", 0))
    while live_item is not None:
        _note_live(report, live_item)
        live_item = next(current, None)
    return report


def changes_nothing(report: dict) -> bool:
    """Does ``report`` (``diff_files`` with ``"records"``: a preview, or a diff) find no
    file, folder, link or record added, changed or removed?"""
    kinds = [report[word] for word in COUNTED_AS.values() if word in report] + list(report["records"].values())
    return not any(_counted(kind.get(change)) for kind in kinds for change in ("added", "changed", "removed"))


def _counted(change) -> int:
    """A change's count: ``{"count": n, …}`` for files, folders and links, ``n`` for records."""
    return change["count"] if isinstance(change, dict) else change or 0


def _empty() -> dict:
    report = {kind: {"count": 0, "bytes": 0, "paths": []} for kind in ("added", "removed", "changed")}
    report["unchanged"] = 0
    return report


def _note_live(report: dict, live_item) -> None:
    """A live path the backup lacks: removed, counted under its own kind."""
    st = live_item[2]
    kind = "dir" if stat.S_ISDIR(st.st_mode) else "symlink" if stat.S_ISLNK(st.st_mode) else "file"
    _note(report[counted_as(kind)], "removed", live_item[0], _live_size(st))


def same_as_restore(entry: dict, path: str, st) -> bool:
    if entry["type"] == "file":
        return same_file(entry, st)
    if entry["type"] == "symlink":
        return stat.S_ISLNK(st.st_mode) and os.readlink(path) == entry["target"]
    return stat.S_ISDIR(st.st_mode)


def _live_size(st) -> int:
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def _note(report: dict, kind: str, path: str, size: int) -> None:
    report[kind]["count"] += 1
    report[kind]["bytes"] += size
    if len(report[kind]["paths"]) < MAX_LISTED:
        report[kind]["paths"].append(path)


def diff_records(database, bson_dir: Path, names: list[str], queries: dict[str, dict] | None,
                 selects: dict[str, dict] | None = None) -> dict:
    """Per collection ``{"added", "removed", "changed", "unchanged"}`` counts: the live
    records ``queries`` select (as a restore replaces them: ``linking``; None: the whole
    site) against the dump's; with ``selects``, only the dump's documents those select
    count (``docfilter``: one project of a site backup)."""
    report = {}
    for name in names:
        keep = docfilter.matcher(selects[name]) if selects is not None else (lambda doc: True)
        with open(bson_dir / f"{name}.bson", "rb") as fh:
            wanted = {_id_key(doc): doc for doc in bson.decode_file_iter(fh) if keep(doc)}
        query = {} if queries is None else queries[name]
        report[name] = _compare(wanted, _live_documents(database, name, query))
    if queries is None:
        for stale in sorted(set(list_collections(database)) - set(names)):
            report[stale] = _compare({}, _live_documents(database, stale, {}))
    return report


def _live_documents(database, name: str, query: dict) -> Iterator[dict]:
    for raw in raw_documents(database, name, query):
        yield from bson.decode_all(raw)


def _compare(wanted: dict, live: Iterator[dict]) -> dict:
    counts = {"added": 0, "removed": 0, "changed": 0, "unchanged": 0}
    seen = set()
    for doc in live:
        key = _id_key(doc)
        seen.add(key)
        if key not in wanted:
            counts["removed"] += 1
        elif wanted[key] == doc:
            counts["unchanged"] += 1
        else:
            counts["changed"] += 1
    counts["added"] = sum(1 for key in wanted if key not in seen)
    return counts


def _id_key(document: dict) -> bytes:
    """A hashable, type-exact key for any ``_id`` value."""
    return bson.encode({"_id": document["_id"]})
