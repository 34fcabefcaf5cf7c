"""Read-ahead of the files queued for the workers, so a cold disk always has reads to do.

The workers read and hash files, each one file at a time; a worker hashing a block, or
waiting for one small file's read, leaves the disk with little to do. So as the walk
queues a file for a worker it asks the kernel to start reading that file into the page
cache (``posix_fadvise`` ``WILLNEED``, which returns at once), at most ``BUDGET`` bytes
ahead of what the workers have finished: the walk waits there (``WAIT`` seconds at most),
and a worker's job calls ``consumed`` once its file is read. Of a file larger than the
budget only its first ``BUDGET`` bytes are advised; the worker's own sequential read-ahead
does the rest.

It is advice only: nothing is read through it, and the content stored is still only
what the worker reads and hashes itself, with every check it makes. A file whose first
page is already in memory (a ``preadv`` with ``RWF_NOWAIT`` tells) gets no advice, and the
next ``WARM_SKIP`` small files are then not even probed (a warm tree would otherwise
pay three system calls per file for nothing). Any error (the file gone, replaced by a
link, which ``O_NOFOLLOW`` refuses, or by what takes no advice) just means no read-ahead.
The file is opened relative to its folder's descriptor, never through a link, and not
blocking (a FIFO put in its place does not hang the walk).
"""

from __future__ import annotations

import errno
import os
import threading

BUDGET = 32 << 20  # bytes advised and not yet read by a worker (64 and 128 MB measured no faster)
WAIT = 2.0  # seconds the walk waits for the workers at most, then advises anyway
SMALL = 1 << 20  # files below this size may go unprobed after a warm one
WARM_SKIP = 31  # small files not probed after one was found in memory
FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY  # never a terminal's


class ReadAhead:
    """Advice for the files queued for workers, at most ``budget`` bytes ahead of them."""

    def __init__(self, budget: int = BUDGET, wait: float = WAIT):
        self.budget, self.wait = budget, wait
        self.ahead = 0  # bytes advised, not yet read by a worker
        self._skip = 0  # small files to leave unprobed: the last probe found memory
        self._changed = threading.Condition()

    def advise(self, dir_fd: int, name: str, size: int) -> int:
        """Start reading the file ``name`` of the folder ``dir_fd`` (``size`` bytes) into
        memory once the workers are close enough behind. Returns the bytes advised (0:
        none); the job that reads the file must then call ``consumed`` with them, whatever
        happens to it. Every file advised before must already be in a worker's queue."""
        if size < SMALL and self._skip:
            self._skip -= 1
            return 0
        length = min(size, self.budget)
        with self._changed:
            self._changed.wait_for(lambda: self.ahead + length <= self.budget, self.wait)
        advised = _advised(dir_fd, name, length)
        if advised is None:  # in memory already, and likely its neighbours too
            self._skip = WARM_SKIP
        if not advised:
            return 0
        with self._changed:
            self.ahead += length
        return length

    def consumed(self, length: int) -> None:
        """A worker is done with a file advised for ``length`` bytes: the walk may advise more."""
        with self._changed:
            self.ahead -= length
            self._changed.notify_all()


def _advised(dir_fd: int, name: str, length: int) -> bool | None:
    """Advise the kernel to read the file's first ``length`` bytes: True; None if its
    start is in memory already; False if it could not be advised."""
    try:
        fd = os.open(name, FLAGS, dir_fd=dir_fd)
    except OSError:  # gone, a link now (ELOOP), not readable: the worker will say so
        return False
    try:
        if in_memory(fd):
            return None
        os.posix_fadvise(fd, 0, length, os.POSIX_FADV_WILLNEED)
        return True
    except OSError:  # not a regular file any more (ESPIPE), or no advice taken
        return False
    finally:
        os.close(fd)


def in_memory(fd: int) -> bool:
    """Is the first page of the file in the page cache? (A read that may not wait; on a
    file that is not, Linux starts reading its start all the same.)"""
    try:
        return os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT) >= 0
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EINVAL):  # cannot tell: advise
            return False
        raise
