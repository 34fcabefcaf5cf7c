"""Disk space: what is free, and the reserve a restore's rollback counts on.

A rollback must not need space it cannot count on. So a restore, before it changes
anything, holds space in a reserve file, ``backups/<mode>/.reserve``, allocated with
``fallocate`` (the file system has really set the blocks aside, unlike a sparse file):
a few MB for the journal and the folders, plus, when the embedded database shares the
file system, room to load the scope's records back twice over (SQLite writes a page to
its write-ahead log before it writes it to the database file). If the reserve cannot be
made, the restore is refused before the first live change. A rollback frees the reserve
before it writes anything, so the room is there when it needs it. A reserve left by a
crash is removed by the next operation (``remove_stale``).
"""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

from strongroom.errors import NoSpace
from strongroom.fs import mutations
from strongroom.humanize import size as human_size

log = logging.getLogger("strongroom")

RESERVE_NAME = ".reserve"
RESERVE_BASE = 4 << 20  # the journal, a few folders, SQLite's own files: far less than this
OUT_OF_SPACE = (errno.ENOSPC, errno.EDQUOT)


def existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (a data dir may not exist yet)."""
    path = Path(path).absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def free_bytes(path: Path) -> int:
    """The bytes an unprivileged writer may still use on the file system holding ``path``."""
    st = os.statvfs(existing_ancestor(path))
    return st.f_bavail * st.f_frsize


def used_bytes(path: Path) -> int:
    """The bytes in use on the file system holding ``path``."""
    st = os.statvfs(existing_ancestor(path))
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def used_below(folder: Path) -> int:
    """An upper bound of the room everything below ``folder`` takes, without walking it:
    the bytes in use on its file system and on every file system mounted below it."""
    folder = existing_ancestor(folder)
    seen, total = set(), 0
    for place in [folder, *_mounts_below(folder)]:
        try:
            device = place.stat().st_dev
            if device not in seen:
                seen.add(device)
                total += used_bytes(place)
        except OSError:
            continue
    return total


def _mounts_below(folder: Path) -> list[Path]:
    """The mount points strictly below ``folder`` (``/proc/self/mountinfo``; none if unreadable)."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split(" ")
        if len(fields) > 4:
            place = Path(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[4]))
            if folder in place.parents:
                found.append(place)
    return found


def stored_size(st: os.stat_result) -> int:
    """The room a copy of the file ``st`` takes where holes are kept (the pool, a restore,
    ``get``): its size, or its allocated blocks when fewer (a sparse file; the rule by
    which a backup stores a file with its holes, ``snapshot``)."""
    return min(st.st_size, st.st_blocks * 512)


def mount_point(path: Path) -> Path:
    """The root of the file system holding ``path`` (for messages: "free on /srv")."""
    path = existing_ancestor(path)
    device = path.stat().st_dev
    while path != path.parent and path.parent.stat().st_dev == device:
        path = path.parent
    return path


def same_file_system(a: Path, b: Path) -> bool:
    return existing_ancestor(a).stat().st_dev == existing_ancestor(b).stat().st_dev


def is_out_of_space(exc: BaseException) -> bool:
    """Is this the error a full disk or an exhausted quota raises (OSError or SQLite's)?"""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in OUT_OF_SPACE:
            return True
        if type(exc).__module__ == "sqlite3" and "full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def refuse(what: str, needed: int, where: Path, free: int | None = None, purpose: str = "") -> NoSpace:
    """The error that says how much is needed and how much is free, and where."""
    free = free_bytes(where) if free is None else free
    return NoSpace(f"{what} needs about {human_size(needed)}{purpose}, and only {human_size(free)} "
                   f"are free on {mount_point(where)}; nothing was changed")


class Reserve:
    """Space held for a rollback: ``grow`` it before a risky step, ``release`` to use it."""

    def __init__(self, folder: Path):
        self.path = folder / RESERVE_NAME
        self.size = 0

    def grow(self, size: int, what: str) -> None:
        """Hold ``size`` bytes in all; ``NoSpace`` (holding nothing) if they are not free.

        ``what`` names the operation in the message: "restore of 2026-11-26T04-27-43".
        """
        if size <= self.size:
            return
        mutations.makedirs(self.path.parent)
        try:
            mutations.allocate(self.path, size)
        except OSError as exc:
            if exc.errno not in OUT_OF_SPACE:
                raise
            free = free_bytes(self.path.parent)
            self.release()
            raise refuse(what, size, self.path.parent, free, " kept free for its rollback") from exc
        self.size = size

    def release(self) -> None:
        """Give the space back; never fails (a rollback calls it when it needs room)."""
        self.size = 0
        try:
            if os.path.lexists(self.path):
                mutations.unlink(self.path)
        except Exception as exc:  # noqa: BLE001 - said in the log; the next operation removes it
            log.warning("could not remove the space reserve %s: %s", self.path, exc)


def remove_stale(folder: Path) -> None:
    """Remove a reserve left by a process that died (the caller holds the lock)."""
    Reserve(folder).release()
