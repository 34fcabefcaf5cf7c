"""A secret kept in a file (the site key): read only if nobody else can have put it there.

``read_private_file`` refuses, at once and without waiting on it, anything at the file's
place that is not a plain file its reader alone could have written: a link, a folder, a
FIFO, a socket or a device is refused on its ``lstat`` before it is opened, and the file
is then opened without following a link and without blocking (``O_NOFOLLOW |
O_NONBLOCK``, so a FIFO swapped in meanwhile is not waited on) and judged again on its
``fstat``: its owner must be the user reading it (the effective uid), group and others
may not write it, it has one name (a hard link to someone else's file is another file's
content under the key's name), and it is small. Only then is it read, from that
descriptor.

The folder it lies in is judged too, and the file is opened through that folder's
descriptor (so the folder judged is the one read from): it must be owned by the reader
or by root, and no group or other may write it. Whoever may write the folder may rename
the key away and put another file there, and not only one of their own (refused by its
owner): any file of the reader's they can rename in, such as a stored object whose
content they wrote, would pass every check on the file itself. Such a folder is refused,
never tightened in passing: a key already swapped would then be taken as genuine.

``write_private_file`` makes a new one: written whole and synced under a temporary name
in the same folder, mode 0600 before a byte of the secret is in it, then linked into
place, so that it appears whole or not at all and never replaces an existing file.
While the temporary name still exists the file has two names, both in that folder:
``read_private_file`` accepts that (and only that) second name.
"""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

from strongroom.fs import mutations

MAX_BYTES = 4096  # a key is 32 bytes; anything this large is not one
TEMPORARY = ".{name}.new-"  # the temporary names of a file being made


class Refused(Exception):
    """What is at a private file's place cannot be trusted; the message says why."""


def read_private_file(path: Path, max_bytes: int = MAX_BYTES, check_folder: bool = True) -> bytes:
    """The content of ``path`` once it passes the checks above; ``FileNotFoundError`` if
    there is nothing there, ``Refused`` (with the reason) if what is there fails them.
    ``check_folder`` False judges the file alone (a saved copy being read back, checked
    by what it holds)."""
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if check_folder:
            judge_folder(path.parent, os.fstat(folder))
        return _read(path, folder, max_bytes)
    finally:
        os.close(folder)


def _read(path: Path, folder: int, max_bytes: int) -> bytes:
    _judge(path, os.lstat(path.name, dir_fd=folder))  # a FIFO or a device is never opened at all
    try:
        fd = os.open(path.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder)
    except OSError as exc:
        if isinstance(exc, FileNotFoundError):
            raise
        raise Refused(f"it cannot be opened: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        _judge(path, info)
        data = os.read(fd, max_bytes + 1)
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise Refused(f"it is larger than {max_bytes} bytes: not a key")
    return data


def judge_folder(folder: Path, info: os.stat_result) -> None:
    """``Refused`` unless ``folder`` (``info``: its ``stat``) is owned by the reader or
    root and writable by nobody else."""
    if info.st_uid not in (os.geteuid(), 0):
        raise Refused(f"its folder {folder} is owned by {user_name(info.st_uid)}, not by "
                      f"{user_name(os.geteuid())} who runs Strongroom (or root): its owner can swap the key")
    if info.st_mode & 0o022:
        raise Refused(f"its folder {folder} (mode {stat.S_IMODE(info.st_mode):04o}) may be written by others than "
                      "its owner, who could swap the key: make it writable by its owner alone (chmod go-w), "
                      "after checking the key in it is yours")


def folder_is_safe(folder: Path) -> bool:
    """Would ``judge_folder`` accept ``folder`` as it is now? (False when it cannot be read.)"""
    try:
        judge_folder(folder, os.stat(folder))
    except (Refused, OSError):
        return False
    return True


def _judge(path: Path, info: os.stat_result) -> None:
    kind = _kind(info.st_mode)
    if kind != "file":
        raise Refused(f"it is {kind}, not a plain file")
    if info.st_uid != os.geteuid():
        raise Refused(f"it is owned by {user_name(info.st_uid)}, not by {user_name(os.geteuid())} who runs Strongroom")
    if info.st_mode & 0o022:
        raise Refused(f"its mode {stat.S_IMODE(info.st_mode):04o} lets others than its owner write it")
    if info.st_nlink > 1 and not _being_made(path, info) and not _one_name_now(path, info):
        raise Refused(f"it has {info.st_nlink} names (a hard link): its content may be another file's")


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISREG, "file"), (stat.S_ISLNK, "a symbolic link"), (stat.S_ISDIR, "a folder"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a device"),
                       (stat.S_ISBLK, "a device")):
        if test(mode):
            return name
    return "not a file"


def _being_made(path: Path, info: os.stat_result) -> bool:
    """Is the second name of ``info`` the temporary name ``write_private_file`` links from?"""
    if info.st_nlink != 2:
        return False
    prefix = TEMPORARY.format(name=path.name)
    try:
        with os.scandir(path.parent) as entries:
            return any(entry.name.startswith(prefix) and entry.inode() == info.st_ino for entry in entries)
    except OSError:
        return False


def _one_name_now(path: Path, info: os.stat_result) -> bool:
    """Has the second name gone meanwhile (the maker removed its temporary name between
    the first look and ``_being_made``'s)? The same file, with one name now."""
    try:
        now = os.lstat(path)
    except OSError:
        return False
    return (now.st_dev, now.st_ino) == (info.st_dev, info.st_ino) and now.st_nlink == 1


def user_name(uid: int) -> str:
    """``name (uid N)``, or ``uid N`` for a uid with no name."""
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def write_private_file(path: Path, data: bytes) -> bool:
    """Make ``path`` hold ``data``, mode 0600, unless something is already there: True if
    this call made it, False if it was there (then it is left as it was)."""
    folder = path.parent
    tmp = folder / f"{TEMPORARY.format(name=path.name)}{os.getpid()}-{os.urandom(6).hex()}"
    try:
        with mutations.create(tmp) as fh:
            mutations.chmod(tmp, 0o600)  # before the secret is in it
            mutations.write(fh, data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            mutations.link(tmp, path)
        except FileExistsError:
            return False  # another process made it first
        mutations.fsync_dir(folder)
        return True
    finally:
        if os.path.lexists(tmp):
            mutations.unlink(tmp)
