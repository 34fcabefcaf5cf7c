"""Restore a folder from a backup: build the backup's tree beside the live one, swap it in.

The tree is built beside the live folder (same file system) and swapped in with two
renames. A live file whose size, mtime and mode equal the backup's entry is hard-linked
into the new folder instead of copied (rsync's quick check); every other file is copied
from its pool object, hashed on the way. Live files are found by walking the live folder
alongside the entries (``walking``), so a live file is only reused when it is reached
through real folders, never through a symbolic link that would lead outside the scope.
Modes and modification times are given back from the manifest.
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
from .parallel import Ordered, PhaseTimes
from .pool import copy_hashing
from .walking import Cursor, walk

Progress = Callable[[str, int, "int | None"], None] | None



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
