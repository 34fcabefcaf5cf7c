"""Waiting for a file lock with a bound, and saying who holds it when the bound is passed.

``flock_within`` takes an ``flock`` the way ``fcntl.flock`` does, but never waits
without limit: it tries without blocking, then again after growing pauses (5 ms up to
0.2 s), until ``STRONGROOM_WAIT_SECONDS`` (60 by default) have passed; then it raises
``Busy`` with one line naming what it waited for and which processes hold it, found in
``/proc/locks`` by the file's device and inode, each with its command line. A process
that holds a lock for ever (a stuck reader of the embedded database, a forgotten shell)
so costs an operation a minute and a clear message, not an endless wait.
"""

from __future__ import annotations

import fcntl
import os
import time

from strongroom.errors import Busy

ENV_WAIT = "STRONGROOM_WAIT_SECONDS"
DEFAULT_WAIT = 60.0
FIRST_PAUSE, LONGEST_PAUSE = 0.005, 0.2
SHOWN = 100  # characters of a holder's command line


def bound() -> float:
    """How long a lock is waited for, in seconds (``STRONGROOM_WAIT_SECONDS``)."""
    try:
        return max(0.0, float(os.environ.get(ENV_WAIT, DEFAULT_WAIT)))
    except ValueError:
        return DEFAULT_WAIT


def flock_within(fd: int, operation: int, what: str, seconds: float | None = None) -> None:
    """``flock(fd, operation)`` within ``seconds`` (default ``bound()``), else ``Busy``
    naming ``what`` (the thing waited for) and its holders."""
    limit = bound() if seconds is None else seconds
    deadline = time.monotonic() + limit
    pause = FIRST_PAUSE
    while True:
        try:
            fcntl.flock(fd, operation | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise Busy(f"waited {limit:g} s for {what}: held by {holders(fd)}; "
                           "nothing was changed while waiting") from None
        time.sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE)


def holders(fd: int) -> str:
    """Who holds a lock on the file open as ``fd``: ``process 123 (cmd …)``, or a
    vaguer phrase when ``/proc/locks`` cannot say."""
    info = os.fstat(fd)
    pids = sorted(_locking_pids(info.st_dev, info.st_ino))
    if not pids:
        return "another process"
    return ", ".join(f"process {pid}{_command(pid)}" for pid in pids[:5]) + (" and others" if len(pids) > 5 else "")


def lock_holders(path) -> set[int] | None:
    """The processes that hold a lock on the file ``path`` now, read from ``/proc/locks``
    (taking no lock); None when that cannot be told (no such file, no ``/proc``)."""
    try:
        info = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    return _holding(lines, info.st_dev, info.st_ino)


def _locking_pids(dev: int, ino: int) -> set[int]:
    """The processes ``/proc/locks`` says hold a lock on the inode (not those waiting)."""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return set()
    return _holding(lines, dev, ino)


def _holding(lines: list[str], dev: int, ino: int) -> set[int]:
    wanted = f"{os.major(dev):02x}:{os.minor(dev):02x}:{ino}"
    found, by_inode = set(), set()
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or parts[1] == "->":  # "->": a process waiting, not holding
            continue
        pid, where = parts[4], parts[5]
        if not pid.isdigit():
            continue
        if where == wanted:
            found.add(int(pid))
        elif where.rsplit(":", 1)[-1] == str(ino):
            by_inode.add(int(pid))  # some file systems name the device otherwise
    return found or by_inode


def _command(pid: int) -> str:
    if pid == os.getpid():
        return " (this process)"
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            words = fh.read().split(b"\0")
    except OSError:
        return ""
    line = " ".join(w.decode("utf-8", "replace") for w in words if w)
    return f" ({line[:SHOWN]}{'…' if len(line) > SHOWN else ''})" if line else ""
