"""Before a backup or a restore: is there clearly room for it? Refuse early if not.

The estimate counts what will be written, not what exists:

- a backup writes its record dumps (BSON and Extended JSON; estimated from the
  embedded database's files, or from the scope's latest backup on MongoDB) and copies
  the files that differ from what is known of them (the live index a restore left, or
  the latest backup's file list: a file whose size, mtime and inode match is linked,
  not copied);
- a restore writes its pre-restore backup (as above), copies the backup's files that
  differ from the live ones (size, mtime and mode: ``manifest.same_file``), loads the
  records (when the embedded database is on the same file system), and holds the
  rollback's reserve (``space``).

A file is counted at the room its copy takes: a sparse file by its allocated blocks
(the pool and a restore keep its holes), not its length. Counting means walking the live
folder, so it is skipped when even a generous upper bound fits, twice over: everything
in use on the file systems holding the scope (``live_bound``; never an earlier backup's
size, which says nothing of how the live data grew since), the dumps, and for a restore
the backup's whole size: a disk that is not nearly full costs nothing. A restore's
count walks the live folder once for both of its parts, and takes the backup's entries
as the check before the restore accepted them (``checkedlist``) rather than reading and
checking the list again; a whole restore takes it in the check before the restore,
whose comparison already walks the live folder in the list's order
(``RestoreCount``, ``matching.FilesMatcher``), so that it walks nothing of its own. The check is an estimate, not a promise: a refused operation changed
nothing (``NoSpace``, exit 6); an accepted one that still runs out is undone.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from strongroom.backup.backing_up import known_entries
from strongroom.fs import space
from strongroom.fs.walking import Cursor, walk
from strongroom.repo.manifest import iter_entries, same_file
from strongroom.scopes import Scope, scope_dir

JSON_FACTOR = 2  # a dump is BSON plus Extended JSON, which is larger than the BSON


def check_backup(sr, scope: Scope) -> None:
    """``NoSpace`` if a backup of ``scope`` clearly does not fit."""
    free = space.free_bytes(sr.config.backups_dir)
    latest = sr.store.latest(scope)
    if free > 2 * (live_bound(sr, scope) + _dumps(sr, scope, latest[1] if latest else None)):
        return
    needed = backup_needs(sr, scope, latest)
    if needed > free:
        raise space.refuse(f"a backup of the {scope}", needed, sr.config.backups_dir, free)


def check_restore(sr, scope: Scope, path: Path, manifest: dict, entries: Callable[[], Iterator[dict]] | None = None,
                  counted: RestoreCount | None = None) -> None:
    """``NoSpace`` if restoring ``manifest``'s backup clearly does not fit (pre-restore
    backup, files to copy, records, the rollback's reserve). ``entries``: the backup's
    file list as the check before the restore accepted it (``checkedlist``), if at hand;
    ``counted``: the files' count already taken in the check's pass, if it was."""
    free = space.free_bytes(sr.config.backups_dir)
    latest = sr.store.latest(scope)
    if _roomy(sr, scope, manifest, free, latest):
        return
    files = counted.files() if counted is not None else None
    needed = (restore_needs(sr, scope, path, manifest, latest, entries and entries()) if files is None else
              files + _dumps(sr, scope, latest[1] if latest else None) + _records_here(sr, manifest)
              + space.RESERVE_BASE)
    if needed > free:
        raise space.refuse(f"restoring {manifest['id']}", needed, sr.config.backups_dir, free)


def counts_files(sr, scope: Scope, manifest: dict) -> bool:
    """Will ``check_restore`` count the files (the disk is not clearly roomy)?"""
    latest = sr.store.latest(scope)
    return not _roomy(sr, scope, manifest, space.free_bytes(sr.config.backups_dir), latest)


def _roomy(sr, scope: Scope, manifest: dict, free: int, latest: tuple[Path, dict] | None) -> bool:
    """Does even the generous upper bound fit twice over (see the module's description)?"""
    bound = _scope_bytes(manifest) + _records_here(sr, manifest) + space.RESERVE_BASE
    return free > 2 * (bound + live_bound(sr, scope) + _dumps(sr, scope, latest[1] if latest else None))


class RestoreCount:
    """``restore_needs``'s count of the files (what the pre-restore backup and the
    restore would copy), taken in another pass: the comparison's walk of the live folder
    passes through ``through``, and ``see`` is given each of the backup's entries with
    the live item of its path (None if there is none), both in walk order
    (``matching.FilesMatcher``). ``files()`` is None if the pass failed part-way."""

    def __init__(self, sr, scope: Scope, path: Path):
        self._path = path
        self._known = known_entries(sr, scope, sr.store.latest(scope))
        self._saved = [0]
        self._copied = 0
        self._failed = False

    def through(self, walked: Iterator) -> Iterator:
        return _tallied(walked, self._known, self._saved)

    def see(self, entry: dict, found) -> None:
        self._copied += _copy_bytes(self._path, entry, found)

    def fail(self) -> None:
        self._failed = True

    def files(self) -> int | None:
        return None if self._failed else self._saved[0] + self._copied


def restore_needs(sr, scope: Scope, path: Path, manifest: dict, latest: tuple[Path, dict] | None,
                  entries: Iterator[dict] | None = None) -> int:
    """Bytes a restore would write: its pre-restore backup, the files it copies, the
    records, and the reserve it holds for a rollback. One walk of the live folder serves
    both counts: the pre-restore backup's tally is taken as the restore's comparison
    draws each live item (``_tallied``), and then of the items after the backup's last."""
    saved = [0]
    walked = _tallied(_walk(scope_dir(sr.config, scope)), known_entries(sr, scope, latest), saved)
    copied = _copies(path, entries if entries is not None else iter_entries(path, manifest), walked)
    for _ in walked:
        pass
    return (saved[0] + _dumps(sr, scope, latest[1] if latest else None) + copied
            + _records_here(sr, manifest) + space.RESERVE_BASE)


def backup_needs(sr, scope: Scope, latest: tuple[Path, dict] | None) -> int:
    """Bytes a backup would write: the dumps and the files not known unchanged."""
    copied = [0]
    for _ in _tallied(_walk(scope_dir(sr.config, scope)), known_entries(sr, scope, latest), copied):
        pass
    return copied[0] + _dumps(sr, scope, latest[1] if latest else None)


def restore_copies(sr, scope: Scope, path: Path, manifest: dict) -> int:
    """Bytes of the backup's files that a restore copies (the others are hard-linked)."""
    return _copies(path, iter_entries(path, manifest), _walk(scope_dir(sr.config, scope)))


def _tallied(walked: Iterator, known: Iterator[dict] | None, tally: list[int]) -> Iterator:
    """``walked``'s items, passed on as they are; ``tally[0]`` grows by the room of each
    regular file a backup would copy (not known unchanged from ``known``)."""
    known_at = Cursor(known)
    for item in walked:
        rel, _path, st = item
        if stat.S_ISREG(st.st_mode) and not _known_unchanged(known_at.find(rel), st):
            tally[0] += space.stored_size(st)  # the pool keeps a sparse file's holes
        yield item


def _copies(path: Path, entries: Iterator[dict], walked: Iterator) -> int:
    """Bytes of the backup's files (``entries``) that differ from the live ones in
    ``walked`` (both in walk order) and so would be copied."""
    live = Cursor(walked, path_of=lambda item: item[0])
    return sum(_copy_bytes(path, entry, live.find(entry["path"])) for entry in entries if entry["type"] == "file")


def _copy_bytes(path: Path, entry: dict, found) -> int:
    """Room the restore's copy of ``entry`` takes, 0 if it keeps the live item ``found``."""
    if entry["type"] != "file" or (found is not None and same_file(entry, found[2])):
        return 0
    return _stored(path, entry)


def _stored(path: Path, entry: dict) -> int:
    """Room the restored copy of ``entry`` takes: a sparse file's is its stored object's
    allocated blocks (a restore keeps its holes), any other file's its size."""
    if not entry.get("sparse"):
        return entry["size"]
    try:
        return space.stored_size(os.lstat(path / "files" / entry["path"]))
    except OSError:
        return entry["size"]


def live_bound(sr, scope: Scope) -> int:
    """An upper bound of what the scope's live files take, found without walking them
    and without trusting an earlier backup's size (the live data may have grown since):
    the room in use on the file systems that hold them (``space.used_below``)."""
    return space.used_below(scope_dir(sr.config, scope))


def _known_unchanged(entry: dict | None, st: os.stat_result) -> bool:
    """The backup's own rule (``snapshot``): same size, mtime and inode is linked unread."""
    return (entry is not None and entry.get("type") == "file" and entry.get("size") == st.st_size
            and entry.get("mtime_ns") == st.st_mtime_ns and entry.get("ino") == st.st_ino)


def _walk(folder: Path):
    return walk(folder) if folder.is_dir() and not folder.is_symlink() else iter(())


def _scope_bytes(manifest: dict) -> int:
    return manifest.get("files", {}).get("bytes", 0)


def _dumps(sr, scope: Scope, latest: dict | None) -> int:
    """The dumps' size: the embedded database's files of the scope's collections (an
    upper bound for a project), else the latest backup's dumps."""
    if sr.config.embedded:
        folder = sr.config.embedded_db_dir / sr.config.mode
        names = None if scope.is_site else sr.config.model.collections
        total = 0
        if folder.is_dir():
            for entry in os.scandir(folder):
                name = entry.name.removesuffix(".collection")
                if entry.name.endswith(".collection") and (names is None or name in names):
                    total += entry.stat().st_size
        return JSON_FACTOR * total
    if latest is None:
        return 0
    return JSON_FACTOR * sum(info.get("bytes", 0) for info in latest.get("collections", {}).values())


def _records_here(sr, manifest: dict) -> int:
    """Room the backup's records take in an embedded database on this file system."""
    if not sr.config.embedded or not space.same_file_system(sr.config.embedded_db_dir, sr.config.backups_dir):
        return 0
    return 2 * sum(info.get("bytes", 0) for info in manifest.get("collections", {}).values())

