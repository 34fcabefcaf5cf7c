"""Walking a folder in the order every file list uses, and merge-joining two such streams.

The walk is depth-first with siblings sorted by name, so entries come in the order of
their path components (``path_key``). File lists are written in that order, so
a walk and a list (or two lists) can be joined in constant memory with ``Cursor``.

Links are never followed. The walk goes from folder to folder through open directory
file descriptors: each folder is opened with ``O_NOFOLLOW`` relative to its parent's
descriptor and listed through its own, and every entry is looked at with ``lstat``
relative to it. So a folder swapped for a symbolic link between its parent's listing
and the descent is not entered: what is there now is reported instead (the link, or
nothing if it is gone). The scope folder itself is opened the same way, component by
component below a trusted folder (``nofollow.open_if_present``), so a scope folder that
is a link, or lies below one, is refused (``LinkedFolder``). The walk is a loop, not a recursion: any
depth is walked; at most ``OPEN_FOLDERS`` ancestors stay open, deeper ones are opened
again through ``..`` (and checked to be the same folder) on the way back up.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

from strongroom.errors import LinkedFolder
from strongroom.fs.nofollow import DIR_FLAGS, NOT_A_FOLDER
from strongroom.humanize import path as shown

OPEN_FOLDERS = 200  # open ancestors at most; far below the usual limit of 1024 descriptors

Warn = Callable[[str], None] | None


def path_key(path: str) -> tuple[str, ...]:
    """The walk order of every file list: by path components."""
    return tuple(path.split("/"))


class Found(NamedTuple):
    """One entry of the walk. ``dir_fd`` is its parent folder's descriptor, open until
    the next entry is asked for: open or read the entry through it (``name``)."""

    rel: str
    name: str
    dir_fd: int
    stat: os.stat_result


class _Folder:
    """A folder being walked: its descriptor (None while closed to save descriptors),
    the path prefix of its entries, its entries still to come, and its identity."""

    __slots__ = ("entries", "fd", "identity", "owned", "prefix")

    def __init__(self, fd: int, prefix: str, entries: Iterator, st: os.stat_result, owned: bool = True):
        self.fd, self.prefix, self.entries, self.owned = fd, prefix, entries, owned
        self.identity = (st.st_dev, st.st_ino)


def walk_at(root_fd: int, warn: Warn = None, descend: Callable[[str], bool] | None = None) -> Iterator[Found]:
    """Everything below the open folder ``root_fd``, in walk order, never through a link.

    An entry that disappears before it is looked at is skipped (``warn`` is told); a
    folder replaced by a link or a file in that instant is reported as what it is now.
    ``root_fd`` stays open and is the caller's; every other descriptor is closed here.
    ``descend(rel)``, if given, says which folders to go into (a folder it refuses is
    still reported, its contents are not walked).
    """
    stack = [_Folder(root_fd, "", _listing(root_fd), os.fstat(root_fd), owned=False)]
    try:
        while stack:
            folder = stack[-1]
            entry = next(folder.entries, None)
            if entry is None:
                _leave(stack, warn)
                continue
            found = _look(folder, entry, warn)
            if found is None:
                continue
            if isinstance(found, Found):
                yield found
                continue
            child_fd, child = found
            if descend is not None and not descend(child.rel):
                os.close(child_fd)
                yield child
                continue
            yield child
            stack.append(_Folder(child_fd, child.rel + "/", _listing(child_fd), child.stat))
            _limit_open(stack)
    finally:
        for folder in stack:
            if folder.owned and folder.fd is not None:
                os.close(folder.fd)


def _look(folder: _Folder, name: str, warn: Warn):
    """A ``Found`` for anything but a folder; ``(fd, Found)`` for a folder, opened;
    None for an entry that is gone. Looked at through the folder's descriptor of now
    (it may have been reopened since the listing)."""
    rel = folder.prefix + name
    try:
        st = os.stat(name, dir_fd=folder.fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            return Found(rel, name, folder.fd, st)
        fd = os.open(name, DIR_FLAGS, dir_fd=folder.fd)
    except FileNotFoundError:
        _gone(warn, rel)
        return None
    except OSError as exc:
        if exc.errno not in NOT_A_FOLDER:
            raise
        return _replaced(folder, name, rel, warn)
    try:
        return fd, Found(rel, name, folder.fd, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise


def _replaced(folder: _Folder, name: str, rel: str, warn: Warn) -> Found | None:
    """A folder that was swapped for something else after it was listed: what is there now."""
    try:
        st = os.stat(name, dir_fd=folder.fd, follow_symlinks=False)
    except FileNotFoundError:
        _gone(warn, rel)
        return None
    if stat.S_ISDIR(st.st_mode):  # swapped back and forth meanwhile: not worth chasing
        if warn:
            warn(f"skipped {shown(rel)}: the folder was replaced while it was read")
        return None
    return Found(rel, name, folder.fd, st)


def _gone(warn: Warn, rel: str) -> None:
    if warn:
        warn(f"skipped {shown(rel)}: it disappeared while the folder was read")


def _listing(fd: int) -> Iterator[str]:
    """The folder's names, sorted (names that are not UTF-8 as surrogate escapes)."""
    return iter(sorted(os.listdir(fd)))


def _limit_open(stack: list[_Folder]) -> None:
    """Close the descriptor of the ancestor that makes one too many open."""
    if len(stack) > OPEN_FOLDERS + 1:
        far = stack[-OPEN_FOLDERS - 1]
        if far.owned and far.fd is not None:
            os.close(far.fd)
            far.fd = None


def _leave(stack: list[_Folder], warn: Warn) -> None:
    """Done with the innermost folder: close it, reopening its parent first if needed."""
    done = stack.pop()
    try:
        if stack and stack[-1].fd is None:
            parent = stack[-1]
            fd = os.open("..", DIR_FLAGS, dir_fd=done.fd)
            st = os.fstat(fd)
            parent.fd = fd
            if (st.st_dev, st.st_ino) != parent.identity:  # moved meanwhile: stop there
                parent.entries = iter(())
                if warn:
                    warn(f"skipped the rest of {shown(parent.prefix[:-1])}: it was moved while it was read")
    finally:
        if done.owned:
            os.close(done.fd)


def walk(root: Path | str, descend: Callable[[str], bool] | None = None) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, absolute path, lstat) of everything below ``root``, in walk order:
    depth-first, siblings by name, a folder right before its contents; only into the
    folders ``descend`` accepts, if given. ``root`` itself is opened with ``O_NOFOLLOW``:
    a link there raises ``LinkedFolder``."""
    base = f"{root}/"
    try:
        fd = os.open(root, DIR_FLAGS)
    except OSError as exc:
        if exc.errno not in NOT_A_FOLDER:
            raise
        raise LinkedFolder(f"refusing to walk {root}: it is a symbolic link or not a folder, "
                           "and links are never followed") from None
    try:
        for found in walk_at(fd, descend=descend):
            yield found.rel, base + found.rel, found.stat
    finally:
        os.close(fd)


class Cursor:
    """Finds items of a stream in walk order by path, advancing only forward.

    The stream is a file list's entries (path under ``"path"``) or ``walk``'s tuples
    (path first); asked for paths in walk order, it merge-joins in constant memory.
    """

    def __init__(self, items: Iterator | None, path_of: Callable = lambda item: item["path"]):
        self._items = items or iter(())
        self._path_of = path_of
        self._advance()

    def _advance(self) -> None:
        """Step to the next item, computing its sort key once (not at every ``find``)."""
        self._current = next(self._items, None)
        self._key = None if self._current is None else path_key(self._path_of(self._current))

    def find(self, path: str):
        key = path_key(path)
        while self._current is not None and self._key < key:
            self._advance()
        if self._current is not None and self._key == key:
            return self._current
        return None
