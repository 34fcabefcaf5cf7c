"""Snapshot a folder into the pool, and restore a folder from a backup.

Snapshot walks the folder depth-first with siblings sorted by name, so entries come in
the order of their path components. The previous backup's file list is in that same
order, which lets the walk merge-join against it in constant memory: a file whose size,
mtime, ctime and inode match its previous entry is linked to the object it had, without
being read. Any other file is hashed and stored (copied once, in one pass with the hash,
unless its content is already in the pool). Symbolic links are kept as links and never
followed; sockets, FIFOs and devices are skipped with a warning.

Restore builds the folder beside the live one (same file system) and swaps it in with
two renames. A live file whose size and mtime equal the backup's entry is hard-linked
into the new folder instead of copied (rsync's quick check); every other file is copied
from its pool object. Modes and modification times are given back from the manifest.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import mutations
from .manifest import FileListWriter
from .pool import Pool

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


def path_key(path: str) -> tuple[str, ...]:
    """The order of the walk and of every file list."""
    return tuple(path.split("/"))


class _Previous:
    """A cursor over the previous backup's entries, advanced in walk order."""

    def __init__(self, entries: Iterator[dict] | None):
        self._entries = entries or iter(())
        self._current = next(self._entries, None)

    def find(self, path: str) -> dict | None:
        key = path_key(path)
        while self._current is not None and path_key(self._current["path"]) < key:
            self._current = next(self._entries, None)
        if self._current is not None and self._current["path"] == path:
            return self._current
        return None


def walk(root: Path, prefix: str = "") -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of everything below ``root``, in walk order:
    depth-first, siblings by name, a folder right before its contents."""
    with os.scandir(root) as it:
        entries = sorted(it, key=lambda e: e.name)
    for entry in entries:
        rel = prefix + entry.name
        st = entry.stat(follow_symlinks=False)
        yield rel, entry.path, st
        if stat.S_ISDIR(st.st_mode):
            yield from walk(Path(entry.path), rel + "/")


def snapshot(
    source: Path,
    files_dir: Path,
    pool: Pool,
    writer: FileListWriter,
    previous: Iterator[dict] | None = None,
    progress: Progress = None,
) -> SnapshotStats:
    """Copy ``source`` into ``files_dir`` as links into ``pool``; stream entries to ``writer``."""
    stats = SnapshotStats()
    cursor = _Previous(previous)
    mutations.makedirs(files_dir)
    if not source.is_dir():
        return stats
    for rel, path, st in walk(source):
        dest = files_dir / rel
        if stat.S_ISDIR(st.st_mode):
            mutations.makedirs(dest)
            writer.add({"path": rel, "type": "dir", "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns})
            stats.dirs += 1
        elif stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            mutations.symlink(target, dest)
            writer.add({"path": rel, "type": "symlink", "target": target, "mtime_ns": st.st_mtime_ns})
            stats.symlinks += 1
        elif stat.S_ISREG(st.st_mode):
            writer.add(_snapshot_file(Path(path), rel, st, dest, pool, cursor.find(rel), stats))
            if progress and stats.files % 100 == 0:
                progress("files", stats.files, None)
        else:
            stats.warnings.append(f"skipped {rel}: not a regular file, folder or symbolic link")
    return stats


def _unchanged(previous: dict | None, st: os.stat_result) -> bool:
    return (
        previous is not None
        and previous["type"] == "file"
        and previous["size"] == st.st_size
        and previous["mtime_ns"] == st.st_mtime_ns
        and previous.get("ctime_ns") == st.st_ctime_ns
        and previous.get("ino") == st.st_ino
    )


def _snapshot_file(path, rel, st, dest, pool, previous, stats) -> dict:
    digest = None
    if _unchanged(previous, st):
        try:
            pool.link(previous["hash"], dest)
            digest, size = previous["hash"], previous["size"]
            stats.linked_unread += 1
        except FileNotFoundError:
            digest = None
    if digest is None:
        same_size = previous is not None and previous.get("size") == st.st_size
        digest, size, added = pool.store(path, dest, hash_first=same_size)
        stats.bytes_read += size
        if added:
            stats.objects_added += 1
            stats.bytes_added += size
    stats.files += 1
    stats.bytes += size
    return {
        "path": rel, "type": "file", "size": size, "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns, "hash": digest, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns,
    }


# -- restore ------------------------------------------------------------------------


@dataclass
class RestoreStats:
    files: int = 0
    copied: int = 0
    bytes_copied: int = 0
    kept: int = 0


def build_tree(entries: Iterator[dict], files_dir: Path, live: Path, staging: Path,
               total: int, progress: Progress = None) -> RestoreStats:
    """Build the backup's tree at ``staging``, reusing unchanged files of ``live``."""
    stats = RestoreStats()
    mutations.rmtree(staging)
    mutations.makedirs(staging)
    folders = []
    for done, entry in enumerate(entries, 1):
        rel = entry["path"]
        dest = staging / rel
        if entry["type"] == "dir":
            mutations.makedirs(dest)
            folders.append(entry)
        elif entry["type"] == "symlink":
            mutations.symlink(entry["target"], dest)
        else:
            _restore_file(entry, files_dir / rel, live / rel, dest, stats)
        if progress and done % 100 == 0:
            progress("files", done, total)
    for entry in reversed(folders):  # deepest last in the list: set their times first
        mutations.chmod(staging / entry["path"], entry["mode"])
        mutations.utime(staging / entry["path"], entry["mtime_ns"])
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


def _lstat(path: Path) -> os.stat_result | None:
    try:
        return path.lstat()
    except (FileNotFoundError, NotADirectoryError):
        return None


def _restore_file(entry: dict, stored: Path, live: Path, dest: Path, stats: RestoreStats) -> None:
    stats.files += 1
    if same_file(entry, _lstat(live)):
        mutations.link(live, dest)
        stats.kept += 1
        return
    mutations.copy_file(stored, dest)
    stats.copied += 1
    stats.bytes_copied += entry["size"]
    mutations.chmod(dest, entry["mode"])
    mutations.utime(dest, entry["mtime_ns"])


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
