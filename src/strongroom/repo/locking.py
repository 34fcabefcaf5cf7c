"""One operation at a time per data dir and run mode, on one machine (the embedded engine).

The lock is an ``flock`` on ``backups/<mode>/.lock``: the kernel drops it when its
process dies, so a lock left by a dead process never blocks anyone. The holder writes
who it is (operation, user, start, process) into the file, so that a refused caller can
be told what holds the lock. The lock is taken without waiting: a second operation is
refused at once with ``Busy``, never queued. A lock cannot be lost while its process
lives, so its fencing check (``check``) always passes. On a MongoDB server, where several
machines may share the data dir, the lease of ``lease`` takes its place.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from strongroom.errors import Busy, NoSpace, StrongroomError
from strongroom.fs.waiting import lock_holders


def holder(lock_path: Path) -> dict | None:
    """What the lock file says about its holder, if anything."""
    try:
        return json.loads(lock_path.read_text("utf-8") or "null")
    except (FileNotFoundError, ValueError):
        return None


def describe(info: dict | None) -> str:
    if not info:
        return "another operation"
    return (
        f"{info.get('operation', 'an operation')} by {info.get('by') or 'unknown'} "
        f"(started {info.get('started', '?')}, process {info.get('pid', '?')})"
    )


class OperationLock:
    """``with OperationLock(path, "restore", "admin"):`` runs the block holding the lock."""

    def __init__(self, path: Path, operation: str, by: str | None = None, job: str | None = None):
        self.path = path
        self.info = {
            "operation": operation,
            "by": by,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "job": job,
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._fd: int | None = None

    def __enter__(self) -> Self:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)  # the backups are the operator's (``privacy``)
        except OSError as exc:  # a disk read-only (or full) before anything began
            error = NoSpace if exc.errno == errno.ENOSPC else StrongroomError
            raise error(f"{self.info['operation']} refused: cannot take the operation lock {self.path} "
                        f"({exc.strerror}); nothing was changed") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Busy(f"refused: {describe(holder(self.path))} is running; try again when it is done") from None
        os.ftruncate(fd, 0)
        try:
            os.pwrite(fd, json.dumps(self.info).encode(), 0)
        except OSError:  # a full disk: the lock holds all the same, only unnamed
            pass
        self._fd = fd
        return self

    def check(self, step: str) -> None:
        """Fencing (``fencing``): an ``flock`` is held until its process ends."""

    def __exit__(self, *exc) -> None:
        """Let go, whatever happens to the file: on a disk that turned read-only the name
        cannot be emptied (``is_locked`` sees it is no longer held), but the lock goes, and
        the operation's own error is what the caller sees."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
            finally:
                os.close(fd)  # closing the descriptor releases its flock


def is_locked(lock_path: Path) -> dict | None:
    """The holder's info when someone holds the lock now, else None (for status pages).

    It only reads what the holder wrote (emptied on release) and checks that its process
    lives: probing with ``flock`` would itself hold the lock for an instant and could make
    a real operation starting then fail as busy.
    """
    info = holder(lock_path)
    if not info or not isinstance(info.get("pid"), int):
        return None
    try:
        os.kill(info["pid"], 0)
    except ProcessLookupError:
        return None  # died holding it: the kernel has released its flock
    except PermissionError:
        pass
    if lock_holders(lock_path) == set():
        return None  # it lives but let go without emptying the file (a read-only disk)
    return info
