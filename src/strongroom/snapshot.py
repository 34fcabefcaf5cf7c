"""Snapshot a folder into the pool.

Snapshot walks the folder depth-first with siblings sorted by name (``walking.walk``), so
entries come in the order of their path components. The previous backup's file list is
in that same order, which lets the walk merge-join against it in constant memory: a file
whose size, mtime and inode match its previous entry is linked to the object it had,
without being read. Any other file is hashed and stored (copied once, in one pass with
the hash, unless its content is already in the pool). Symbolic links are kept as links
and never followed; sockets, FIFOs and devices are skipped with a warning.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

from . import mutations
from .manifest import FileListWriter
from .parallel import Ordered, PhaseTimes
from .pool import Pool
from .walking import Cursor, walk

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


