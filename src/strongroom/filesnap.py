"""Snapshot a folder into the pool, and restore a folder from a backup.

Snapshot walks the folder depth-first with siblings sorted by name, so entries come in
the order of their path components. The previous backup's file list is in that same
order, which lets the walk merge-join against it in constant memory: a file whose size,
mtime and inode match its previous entry is linked to the object it had, without
being read. Any other file is hashed and stored (copied once, in one pass with the hash,
unless its content is already in the pool). Symbolic links are kept as links and never
followed; sockets, FIFOs and devices are skipped with a warning.

Restore builds the folder beside the live one (same file system) and swaps it in with
two renames. A live file whose size, mtime and mode equal the backup's entry is
hard-linked into the new folder instead of copied (rsync's quick check); every other
file is copied from its pool object. Live files are found by walking the live folder
alongside the entries, so a live file is only reused when it is reached through real
folders, never through a symbolic link that would lead outside the scope. Modes and modification times are given back from the manifest.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from time import perf_counter

from . import mutations
from .errors import CorruptBackup
from .manifest import FileListWriter, path_key
from .parallel import Ordered, PhaseTimes
from .pool import Pool, copy_hashing

Progress = Callable[[str, int, "int | None"], None] | None


@dataclass
class SnapshotStats:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    bytes: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    objects_added: int = 0
    linked_unread: int = 0
    warnings: list[str] = field(default_factory=list)


class Cursor:
    """Finds items of a stream in walk order by path, advancing only forward.

    The stream is a file list's entries (path under ``"path"``) or ``walk``'s tuples
    (path first); asked for paths in walk order, it merge-joins in constant memory.
    """

    def __init__(self, items: Iterator | None, path_of: Callable = lambda item: item["path"]):
        self._items = items or iter(())
        self._path_of = path_of
        self._current = next(self._items, None)

    def find(self, path: str):
        key = path_key(path)
        while self._current is not None and path_key(self._path_of(self._current)) < key:
            self._current = next(self._items, None)
        if self._current is not None and self._path_of(self._current) == path:
            return self._current
        return None


def walk(root: Path | str, prefix: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of everything below ``root``, in walk order:
    depth-first, siblings by name, a folder right before its contents."""
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        st = entry.stat(follow_symlinks=False)
        yield rel, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(entry.path, rel + "/")


def snapshot(
    source: Path,
    files_dir: Path,
    pool: Pool,
    writer: FileListWriter,
    previous: Iterator[dict] | None = None,
    progress: Progress = None,
    times: PhaseTimes | None = None,
) -> SnapshotStats:
    """Copy ``source`` into ``files_dir`` as links into ``pool``; stream entries to ``writer``.

    Unchanged files are linked by this thread as the walk reaches them; the others are
    stored by worker threads while the walk goes on. Entries reach ``writer`` in walk
    order all the same. ``times`` receives the seconds spent per phase.
    """
    stats = SnapshotStats()
    times = PhaseTimes() if times is None else times
    cursor = Cursor(previous)
    mutations.makedirs(files_dir)
    if not source.is_dir():
        return stats
    base = f"{files_dir}/"
    scanning = linking = 0.0
    with Ordered() as jobs:
        items = walk(source)
        while True:
            mark = perf_counter()
            item = next(items, None)
            if item is None:
                break
            rel, path, st = item
            previous_entry = cursor.find(rel) if stat.S_ISREG(st.st_mode) else None
            scanning += perf_counter() - mark
            mark = perf_counter()
            if _unchanged(previous_entry, st) and _link_unread(pool, previous_entry["hash"], base + rel):
                jobs.put((_file_entry(rel, st, previous_entry["hash"], st.st_size), None))
                linking += perf_counter() - mark
            else:
                _snapshot_other(jobs, pool, rel, path, st, base + rel, previous_entry, stats, times)
            for result in jobs.ready():
                _record(result, writer, stats, progress)
        for result in jobs.drain():
            _record(result, writer, stats, progress)
    times.add("scan", scanning)
    times.add("link", linking)
    return stats


def _snapshot_other(jobs: Ordered, pool, rel, path, st, dest, previous_entry, stats, times) -> None:
    """Queue anything but an unchanged file: folders and links at once, files as jobs."""
    if stat.S_ISDIR(st.st_mode):
        mutations.mkdir(dest)
        jobs.put(({"path": rel, "type": "dir", "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns}, None))
        stats.dirs += 1
    elif stat.S_ISLNK(st.st_mode):
        target = os.readlink(path)
        mutations.symlink(target, dest)
        jobs.put(({"path": rel, "type": "symlink", "target": target, "mtime_ns": st.st_mtime_ns}, None))
        stats.symlinks += 1
    elif stat.S_ISREG(st.st_mode):
        same_size = previous_entry is not None and previous_entry.get("size") == st.st_size
        jobs.submit(_store_file, pool, path, rel, st, dest, same_size, times)
    else:
        stats.warnings.append(f"skipped {rel}: not a regular file, folder or symbolic link")


def _unchanged(previous: dict | None, st: os.stat_result) -> bool:
    """DESIGN's rule: same size, mtime and inode. Not ctime: a restore hard-links every
    unchanged live file into the new tree and then unlinks the old name, which changes
    each one's ctime, so a ctime check would make the next backup re-read everything."""
    return (
        previous is not None
        and previous["type"] == "file"
        and previous["size"] == st.st_size
        and previous["mtime_ns"] == st.st_mtime_ns
        and previous.get("ino") == st.st_ino
    )


def _link_unread(pool: Pool, digest: str, dest: str) -> bool:
    try:
        pool.link(digest, dest)
    except FileNotFoundError:  # the object is gone (collected): store the file again
        return False
    return True


def _store_file(pool, path, rel, st, dest, same_size, times) -> tuple[dict, tuple[int, bool]]:
    """A worker's job: read the file into the pool (hashing first if it may be there)."""
    digest, size, added = pool.store(path, dest, hash_first=same_size, times=times)
    return _file_entry(rel, st, digest, size), (size, added)


def _file_entry(rel: str, st: os.stat_result, digest: str, size: int) -> dict:
    return {
        "path": rel, "type": "file", "size": size, "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns, "hash": digest, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns,
    }


def _record(result, writer: FileListWriter, stats: SnapshotStats, progress: Progress) -> None:
    """Write one entry, in walk order, and count it."""
    entry, stored = result
    writer.add(entry)
    if entry["type"] != "file":
        return
    stats.files += 1
    stats.bytes += entry["size"]
    if stored is None:
        stats.linked_unread += 1
    else:
        size, added = stored
        stats.bytes_read += size
        if added:
            stats.objects_added += 1
            stats.bytes_added += size
    if progress and stats.files % 100 == 0:
        progress("files", stats.files, None)


# -- restore ------------------------------------------------------------------------


@dataclass
class RestoreStats:
    files: int = 0
    copied: int = 0
    bytes_copied: int = 0
    kept: int = 0
    times: PhaseTimes = field(default_factory=PhaseTimes)


def build_tree(entries: Iterator[dict], files_dir: Path, live: Path, staging: Path,
               total: int, progress: Progress = None, index: Callable | None = None) -> RestoreStats:
    """Build the backup's tree at ``staging``, reusing unchanged files of ``live``.

    Files are copied from the pool by worker threads, hashed on the way: an object whose
    content no longer matches its entry raises ``CorruptBackup`` before the swap.
    ``index``, if given, receives every entry in walk order with its new inode (``ino``).
    """
    stats = RestoreStats()
    mutations.rmtree(staging)
    mutations.makedirs(staging)
    folders = []
    stored_base, dest_base = f"{files_dir}/", f"{staging}/"
    live_files = Cursor(walk(live) if live.is_dir() and not live.is_symlink() else None,
                        path_of=lambda item: item[0])
    linking = 0.0
    with Ordered() as jobs:
        for done, entry in enumerate(entries, 1):
            rel = entry["path"]
            dest = dest_base + rel
            if entry["type"] == "dir":
                mutations.mkdir(dest)
                folders.append(entry)
                jobs.put(entry)
            elif entry["type"] == "symlink":
                mutations.symlink(entry["target"], dest)
                jobs.put(entry)
            else:
                stats.files += 1
                mark = perf_counter()
                found = live_files.find(rel)
                if found is not None and same_file(entry, found[2]):
                    mutations.link(found[1], dest)
                    jobs.put({**entry, "ino": found[2].st_ino})
                    stats.kept += 1
                    linking += perf_counter() - mark
                else:
                    jobs.submit(_copy_checked, entry, stored_base + rel, dest, stats.times)
                    stats.copied += 1
                    stats.bytes_copied += entry["size"]
            for built in jobs.ready():
                index and index(built)
            if progress and done % 100 == 0:
                progress("files", done, total)
        for built in jobs.drain():
            index and index(built)
    stats.times.add("link", linking)
    for entry in reversed(folders):  # deepest last in the list: set their times first
        mutations.chmod(dest_base + entry["path"], entry["mode"])
        mutations.utime(dest_base + entry["path"], entry["mtime_ns"])
    return stats


def same_file(entry: dict, st: os.stat_result | None) -> bool:
    """rsync's quick check, plus the mode: a live file that needs no copy and no change.

    The mode counts because an unchanged file is hard-linked into the new tree, sharing
    its inode: changing its mode would change the live tree before the swap.
    """
    return (
        st is not None
        and stat.S_ISREG(st.st_mode)
        and st.st_size == entry["size"]
        and st.st_mtime_ns == entry["mtime_ns"]
        and stat.S_IMODE(st.st_mode) == entry["mode"]
    )


def _copy_checked(entry: dict, stored: str, dest: str, times: PhaseTimes) -> dict:
    """A worker's job: copy one file from its pool object, checking the object's hash;
    return its entry with the copy's inode."""
    digest, size = copy_hashing(stored, dest, times)
    if digest != entry["hash"] or size != entry["size"]:
        raise CorruptBackup(f"file {entry['path']} does not match its hash: its content was changed")
    mutations.chmod(dest, entry["mode"])
    mutations.utime(dest, entry["mtime_ns"])
    return {**entry, "ino": os.lstat(dest).st_ino}


def swap_in(staging: Path, live: Path, old: Path, before_cleanup=None) -> None:
    """Replace ``live`` by ``staging``: two renames, then the old tree goes.

    ``before_cleanup`` is called once the new tree is in place and durable, before the
    old one is removed (the restore journals that point).
    """
    mutations.rmtree(old)
    if os.path.lexists(live):
        mutations.rename(live, old)
    mutations.rename(staging, live)
    mutations.fsync_dir(live.parent)
    if before_cleanup:
        before_cleanup()
    mutations.rmtree(old)
