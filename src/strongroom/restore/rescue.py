"""Keep what another program wrote into the live folder while a restore ran.

A restore saves the live folder in a pre-restore backup, builds the backup's tree beside
it and swaps the two; the old tree is then removed. A file another program created or
changed in the live folder after the pre-restore backup read it is in neither the new
tree nor any backup, so before the old tree goes it is compared with the pre-restore
backup's file list: every file or link of the old tree that is not hard-linked into
the new tree (same inode at the same path) and that the list does not describe (same
size, mtime and inode; for a link, its mtime) is moved, keeping its path, to the
restore's rescue folder (``scopes.rescue_dir``), private to the operator. The restore's
result names that folder and counts what is in it.

Cost: the two trees are read folder by folder (their listings carry each name's inode),
so a file the restore kept costs no system call of its own; only the others are
stat'ed. Both trees are walked through folder descriptors, never through a link.
Folders themselves are not rescued: a new, empty folder goes with the old tree.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

from strongroom.fs import mutations
from strongroom.fs.nofollow import (
    FolderChain,
    open_below,
    open_folder,
    open_folder_or_none,
    proc_path,
)
from strongroom.fs.walking import Cursor

NOTHING = {"count": 0, "bytes": 0, "place": None, "paths": []}
SHOWN = 20  # paths named in the outcome; the folder holds them all


class Rescuer:
    """Compares the old tree with the pre-restore list and moves out what only it holds."""

    def __init__(self, pre_entries: Callable[[], Iterator[dict]], root: Path, place: Path):
        self._pre_entries = pre_entries
        self._root = root
        self.place = place
        self._chain: FolderChain | None = None
        self._place_fd: int | None = None
        self.count = self.bytes = 0
        self.paths: list[str] = []

    def inspect(self, parent_fd: int, old_name: str, new_name: str) -> None:
        """Rescue from the old tree ``old_name`` what the new tree ``new_name`` beside it
        (both in ``parent_fd``) and the pre-restore backup lack."""
        try:
            old_fd = open_folder(parent_fd, old_name)
        except FileNotFoundError:
            return  # there was no live folder before the restore
        new_fd = open_folder_or_none(parent_fd, new_name)
        try:
            self._compare(old_fd, new_fd, Cursor(self._pre_entries()))
        finally:
            os.close(old_fd)
            new_fd is not None and os.close(new_fd)
            self._close()

    def outcome(self) -> dict:
        if not self.count:
            return dict(NOTHING)
        return {"count": self.count, "bytes": self.bytes, "place": str(self.place), "paths": self.paths}

    def _compare(self, old_root: int, new_root: int | None, pre: Cursor) -> None:
        """Walk the old tree in walk order, without recursion (no depth limit), with
        the new tree's folder at the same path alongside."""
        stack = [_Level(old_root, new_root, "", owned=False)]
        try:
            while stack:
                level = stack[-1]
                item = next(level.items, None)
                if item is None:
                    stack.pop().close()
                    continue
                rel = level.prefix + item.name
                if item.is_dir(follow_symlinks=False):
                    deeper = _Level.below(level, item.name, rel + "/")
                    deeper and stack.append(deeper)
                elif level.new.get(item.name) != item.inode():  # else: kept in the new tree
                    st = item.stat(follow_symlinks=False)
                    if not _described(pre.find(rel), st):
                        self._move(level.old_fd, item.name, rel, st)
        finally:
            for level in stack:
                level.close()

    def _move(self, old_fd: int, name: str, rel: str, st: os.stat_result) -> None:
        into = self._folder(rel.rpartition("/")[0])
        try:
            mutations.rename(name, name, src_dir_fd=old_fd, dst_dir_fd=into)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            _copy(old_fd, into, name, st)  # the backups are on another file system
        self.count += 1
        self.bytes += st.st_size if stat.S_ISREG(st.st_mode) else 0
        if len(self.paths) < SHOWN:
            self.paths.append(rel)

    def _folder(self, folder: str) -> int:
        """The rescue folder's sub-folder for ``folder``, made at first use."""
        if self._chain is None:
            self._place_fd = open_below(self._root, self.place, create=True)
            self._chain = FolderChain(self._place_fd, makes=True)
        return self._chain.at(folder)

    def _close(self) -> None:
        if self._chain is not None:
            self._chain.close()
            os.close(self._place_fd)
            self._chain = self._place_fd = None


class _Level:
    """One folder of the old tree being compared: its entries by name, and the inodes
    of the same folder of the new tree (none if the new tree has no such folder)."""

    def __init__(self, old_fd: int, new_fd: int | None, prefix: str, owned: bool = True):
        self.old_fd, self.new_fd, self.prefix, self._owned = old_fd, new_fd, prefix, owned
        with os.scandir(old_fd) as it:
            self.items = iter(sorted(it, key=lambda e: e.name))
        self.new = {}
        if new_fd is not None:
            with os.scandir(new_fd) as it:
                self.new = {e.name: e.inode() for e in it}

    @classmethod
    def below(cls, level: _Level, name: str, prefix: str) -> _Level | None:
        try:
            old_fd = open_folder(level.old_fd, name)
        except OSError:
            return None  # replaced meanwhile by something that is not a folder
        new_fd = open_folder_or_none(level.new_fd, name) if name in level.new else None
        try:
            return cls(old_fd, new_fd, prefix)
        except BaseException:
            os.close(old_fd)
            new_fd is not None and os.close(new_fd)
            raise

    def close(self) -> None:
        if self._owned:
            os.close(self.old_fd)
            self.new_fd is not None and os.close(self.new_fd)


def _described(entry: dict | None, st: os.stat_result) -> bool:
    """Does the pre-restore backup hold this file or link as it is now?"""
    if stat.S_ISREG(st.st_mode):
        return (entry is not None and entry["type"] == "file" and entry["size"] == st.st_size
                and entry["mtime_ns"] == st.st_mtime_ns and entry.get("ino") == st.st_ino)
    if stat.S_ISLNK(st.st_mode):
        return entry is not None and entry["type"] == "symlink" and entry["mtime_ns"] == st.st_mtime_ns
    return True  # sockets, FIFOs, devices: no backup holds them, none is kept


def _copy(old_fd: int, into: int, name: str, st: os.stat_result) -> None:
    if stat.S_ISLNK(st.st_mode):
        mutations.symlink(os.readlink(name, dir_fd=old_fd), name, dir_fd=into)
        mutations.utime(name, st.st_mtime_ns, dir_fd=into)
        return
    mutations.copy_file(Path(proc_path(old_fd, name)), Path(proc_path(into, name)))
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=into)
    try:
        mutations.chmod_fd(fd, stat.S_IMODE(st.st_mode) & 0o777, name)
        mutations.utime_fd(fd, st.st_mtime_ns, name)
    finally:
        os.close(fd)

