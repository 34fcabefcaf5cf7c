"""File jobs on a few threads, their results handed back in the order they were given.

Copying and hashing release the GIL (``readinto``, ``write`` and ``hashlib`` on large
buffers), so two threads keep two cores busy while the walk goes on. The callers write
the file list in walk order, so ``Ordered`` returns results in submission order,
whatever order the jobs finish in; at most ``window`` jobs are pending, which bounds the
memory held for them.

Small jobs (``batch``) travel in groups of up to ``BATCH_JOBS`` jobs or ``BATCH_BYTES``
bytes of file: one hand-off to a worker per group instead of per file, which on a tree
of small files was most of the threads' cost (a ``Future``, a queue and a wake-up per
file, and the GIL passed back and forth for each).

When a mutation hook is installed (the fault-injection tests) every job runs inline, at
once, in the calling thread: the mutation points then come in a fixed order, the same
in every run, and a fault raised at one stops the operation right there.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Self

from strongroom.fs import mutations

WORKERS = max(2, min(4, os.cpu_count() or 1))
WINDOW = 64
BATCH_JOBS = 32  # small jobs per hand-off to a worker
BATCH_BYTES = 1 << 20  # or this many bytes of file, whichever comes first


class _Ready:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def done(self) -> bool:
        return True

    def result(self):
        return self.value


def _run_group(jobs: list[tuple[Callable, tuple]]) -> list:
    """A group of small jobs, run one after the other on one worker: their results."""
    return [job(*args) for job, args in jobs]


class Ordered:
    """``submit`` jobs (``batch`` small ones) and ``put`` plain values; ``ready``/``drain``
    yield their results in that order."""

    def __init__(self, workers: int = WORKERS, window: int = WINDOW):
        inline = mutations.hooked() or workers < 2
        self._executor = None if inline else ThreadPoolExecutor(workers, thread_name_prefix="strongroom")
        self._pending: deque[Future | _Ready] = deque()
        self._window = window
        self._group: list[tuple[Callable, tuple]] = []  # small jobs not handed to a worker yet
        self._group_bytes = 0
        self._groups: set[Future] = set()  # the futures whose result is a group's list

    @property
    def parallel(self) -> bool:
        """Do jobs run on worker threads (not inline, at once, in the calling thread)?"""
        return self._executor is not None

    def submit(self, job: Callable, *args) -> None:
        if self._executor is None:
            self.put(job(*args))
        else:
            self._send_group()
            self._pending.append(self._executor.submit(job, *args))

    def batch(self, size: int, job: Callable, *args) -> None:
        """``submit`` a small job (about a file of ``size`` bytes), grouped with the next ones."""
        if self._executor is None:
            self.put(job(*args))
            return
        self._group.append((job, args))
        self._group_bytes += size
        if len(self._group) >= BATCH_JOBS or self._group_bytes >= BATCH_BYTES:
            self._send_group()

    def send(self) -> None:
        """Hand the small jobs grouped so far to a worker now, not with the next ones."""
        if self._executor is not None:
            self._send_group()

    def _send_group(self) -> None:
        if self._group:
            future = self._executor.submit(_run_group, self._group)
            self._groups.add(future)
            self._pending.append(future)
            self._group, self._group_bytes = [], 0

    def put(self, value) -> None:
        if self._group:
            self._send_group()
        self._pending.append(_Ready(value))

    def ready(self) -> Iterator:
        """The results at the head of the queue that are done (waiting while it is full)."""
        return self._results(self._window)

    def drain(self) -> Iterator:
        """Every result left, waiting for each."""
        self._send_group()
        return self._results(-1)

    def _results(self, window: int) -> Iterator:
        """Results from the head while it is done, or while more than ``window`` wait
        (``-1``: all of them, waiting for each)."""
        pending, groups = self._pending, self._groups
        while pending and (len(pending) > window or pending[0].done()):
            done = pending.popleft()
            if done in groups:
                groups.discard(done)
                yield from done.result()
            else:
                yield done.result()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)


class PhaseTimes:
    """Seconds spent per phase (``hash``, ``copy``, ``link``…), summed over threads."""

    def __init__(self):
        self._lock = threading.Lock()
        self.seconds: dict[str, float] = {}

    def add(self, phase: str, seconds: float) -> None:
        with self._lock:
            self.seconds[phase] = self.seconds.get(phase, 0.0) + seconds

    def rounded(self) -> dict[str, float]:
        return {phase: round(seconds, 4) for phase, seconds in self.seconds.items()}
