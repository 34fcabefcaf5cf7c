"""Folders opened by descriptor, one component at a time, never through a symbolic link.

Writing through a path re-resolves it at every call, so a folder swapped for a link
between a check and a write redirects the write. Everything that changes a tree here
works relative to folder descriptors instead: each folder is opened from its parent's
descriptor with ``O_NOFOLLOW | O_DIRECTORY``, so a link anywhere on the way makes the
open fail instead of being followed, and a name is only ever one component (no
``PATH_MAX`` limit on depth; ``NAME_MAX`` per name). ``open_below`` opens a folder
below a trusted root (the data dir) and names the component that is a link (the backup
side opens a scope folder to walk the same way, ``open_if_present``);
``FolderChain`` keeps open the folders along the current path of a walk.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from strongroom.errors import LinkedFolder
from strongroom.fs import mutations

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
PRIVATE_DIR = 0o700
NOT_A_FOLDER = (errno.ELOOP, errno.ENOTDIR)  # what O_NOFOLLOW | O_DIRECTORY says of a link or a file


def open_folder(parent_fd: int, name: str) -> int:
    """Open the folder ``name`` of ``parent_fd``; OSError (ENOTDIR/ELOOP) if it is a link."""
    return os.open(name, DIR_FLAGS, dir_fd=parent_fd)


def open_folder_or_none(parent_fd: int, name: str) -> int | None:
    """``open_folder``, or None when ``name`` is missing, a link or anything but a folder
    (a live tree being read: what cannot be opened safely is simply not used)."""
    try:
        return open_folder(parent_fd, name)
    except OSError:
        return None


def _parts(root: Path, target: Path) -> list[str]:
    return list(target.relative_to(root).parts)


def check_no_links(root: Path, target: Path) -> None:
    """Refuse (``LinkedFolder``) if ``target`` or a folder between ``root`` and it is a
    symbolic link or not a folder. A missing component ends the check: nothing below it
    exists to be followed."""
    path = root
    for name in _parts(root, target):
        path = path / name
        if not check_folder(path):
            return


def check_folder(path: Path | str) -> bool:
    """Refuse (``LinkedFolder``) if ``path`` itself is a symbolic link or not a folder;
    False when it is missing, True when it is a folder (one ``lstat``, for loops over
    many backups whose common folders were checked once)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise _refusal(Path(path))
    return True


def _refusal(path: Path) -> LinkedFolder:
    """The error for ``path``, a component that is a link or not a folder, naming which."""
    kind = "a symbolic link" if os.path.islink(path) else "not a folder"
    return LinkedFolder(f"{path} is {kind}: links are never followed, nothing is read or "
                        "changed through it")


def open_below(root: Path, target: Path, create: bool = False) -> int:
    """A descriptor of ``target``, opened component by component from ``root`` without
    following links (``LinkedFolder`` names the one that is a link). With ``create``,
    missing folders are made, private to the operator. The caller closes it."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    path = root
    try:
        for name in _parts(root, target):
            path = path / name
            child = _open_or_make(fd, name, path, create)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_if_present(root: Path, target: Path) -> int | None:
    """``open_below`` without creating anything: None if ``target`` or a folder on the
    way to it does not exist (nothing there to be followed)."""
    try:
        return open_below(root, target)
    except FileNotFoundError:
        return None


def _open_or_make(parent_fd: int, name: str, path: Path, create: bool) -> int:
    try:
        return open_folder(parent_fd, name)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno in NOT_A_FOLDER:
            raise _refusal(path) from None
        raise
    try:
        mutations.mkdir(name, PRIVATE_DIR, dir_fd=parent_fd)
    except FileExistsError:  # made meanwhile by someone else: open it like any other
        pass
    return _open_or_make(parent_fd, name, path, False)


class FolderChain:
    """The folders along one path below a root descriptor, kept open while a walk in
    walk order stays below them: moving to the next entry's folder closes the folders
    left and opens the ones entered, each from its parent, never through a link.

    ``strict`` chains (a tree being built) raise when a folder cannot be opened; the
    others (a live tree being read) give ``None`` for it and everything below. A
    chain that ``makes`` creates missing folders, private to the operator.
    """

    def __init__(self, root_fd: int | None, strict: bool = True, makes: bool = False):
        self._fds: list[int | None] = [root_fd]
        self._names: list[str] = []
        self._strict = strict
        self._makes = makes
        self._current = ""

    def at(self, folder: str) -> int | None:
        """The descriptor of ``folder`` (a relative path, ``""`` for the root)."""
        if folder == self._current:
            return self._fds[-1]
        parts = folder.split("/") if folder else []
        keep = 0
        while keep < len(self._names) and keep < len(parts) and self._names[keep] == parts[keep]:
            keep += 1
        self._close_from(keep + 1)
        for name in parts[keep:]:
            self._fds.append(self._open(self._fds[-1], name))
            self._names.append(name)
        self._current = folder
        return self._fds[-1]

    def _open(self, parent: int | None, name: str) -> int | None:
        if parent is None:
            return None
        if self._makes:
            return _open_or_make(parent, name, Path(*self._names, name), True)
        if self._strict:
            return open_folder(parent, name)
        return open_folder_or_none(parent, name)

    def _close_from(self, level: int) -> None:
        while len(self._fds) > level:
            fd = self._fds.pop()
            self._names.pop()
            if fd is not None:
                os.close(fd)

    def close(self) -> None:
        """Close every folder of the chain but the root (the caller's)."""
        self._close_from(1)
        self._current = ""


def proc_path(dir_fd: int, name: str) -> str:
    """A short path to ``name`` in the folder open as ``dir_fd``, for code that takes
    paths: it resolves through the descriptor, whatever the folder's real depth."""
    return f"/proc/self/fd/{dir_fd}/{name}"
