"""File jobs on a few threads, their results handed back in the order they were given.

Copying and hashing release the GIL (``readinto``, ``write`` and ``hashlib`` on large
buffers), so two threads keep two cores busy while the walk goes on. The callers write
the file list in walk order, so ``Ordered`` returns results in submission order,
whatever order the jobs finish in; at most ``window`` jobs are pending, which bounds the
memory held for them.

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

from . import mutations

WORKERS = max(2, min(4, os.cpu_count() or 1))
WINDOW = 64


class _Ready:
    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value

    def done(self) -> bool:
        return True

    def result(self):
        return self.value


class Ordered:
    """``submit`` jobs and ``put`` plain values; ``ready``/``drain`` yield them in order."""

    def __init__(self, workers: int = WORKERS, window: int = WINDOW):
        inline = mutations.hooked() or workers < 2
        self._executor = None if inline else ThreadPoolExecutor(workers, thread_name_prefix="strongroom")
        self._pending: deque[Future | _Ready] = deque()
        self._window = window

    def submit(self, job: Callable, *args) -> None:
        if self._executor is None:
            self.put(job(*args))
        else:
            self._pending.append(self._executor.submit(job, *args))

    def put(self, value) -> None:
        self._pending.append(_Ready(value))

    def ready(self) -> Iterator:
        """The results at the head of the queue that are done (waiting while it is full)."""
        pending = self._pending
        while pending and (pending[0].done() or len(pending) > self._window):
            yield pending.popleft().result()

    def drain(self) -> Iterator:
        while self._pending:
            yield self._pending.popleft().result()

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
