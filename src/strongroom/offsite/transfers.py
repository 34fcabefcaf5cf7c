"""Several transfers at once: the uploads of a push, the downloads of a pull.

Sent one at a time, small objects spend most of their time waiting for the storage's
answer; ``aws s3 sync`` runs ten transfers at once. ``Transfers`` runs up to ``WORKERS``
jobs at once in threads (boto3 clients are thread-safe; a job touches nothing else that
is shared but the pool, which is safe from several threads too) and:

- holds at most ``WINDOW`` jobs submitted and not yet reported, so a backup of a million
  files queues no million jobs: ``submit`` waits for a place;
- hands each job's result to its ``done`` callback in the caller's thread, so progress
  and the caller's bookkeeping stay single-threaded;
- on a job's failure starts no further job, waits for those under way (none outlives
  the ``with`` block: a pull removes its staging folder after it) and raises the first
  failure, as the loop it replaces would have. An exception in the caller's thread
  (an interruption) does the same, and is the one raised.

``finish`` returns once every job submitted has landed and been reported: what comes
after it (a remote manifest) can count on all of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Self

WORKERS = 8  # transfers at once: ``aws s3 sync`` runs ten
WINDOW = 2 * WORKERS  # jobs submitted and not yet reported


class _Stopped(Exception):
    """A job not started because another failed."""


class Transfers:
    def __init__(self, workers: int = WORKERS, window: int = WINDOW):
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="strongroom-transfer")
        self._window = window
        self._pending: dict[Future, Callable[[Any], None] | None] = {}
        self._failed = threading.Event()
        self._lock = threading.Lock()
        self._first: BaseException | None = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info) -> None:
        self._failed.set()  # after ``finish`` nothing is pending; otherwise stop what is queued
        self._executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, job: Callable[[], Any], done: Callable[[Any], None] | None = None) -> None:
        """Run ``job()`` in a worker; ``done(result)`` runs in this thread once it has."""
        while len(self._pending) >= self._window:
            self._report(FIRST_COMPLETED)
        self._pending[self._executor.submit(self._run, job)] = done

    def finish(self) -> None:
        """Wait for every job submitted, report them; raise the first failure."""
        while self._pending:
            self._report(FIRST_COMPLETED)

    def _run(self, job: Callable[[], Any]) -> Any:
        if self._failed.is_set():
            raise _Stopped
        try:
            return job()
        except BaseException as exc:
            with self._lock:
                if self._first is None:
                    self._first = exc
            self._failed.set()
            raise

    def _report(self, return_when: str) -> None:
        landed, _ = wait(self._pending, return_when=return_when)
        for future in landed:
            done = self._pending.pop(future)
            if future.exception() is not None:
                self._stop()
            if done is not None:
                done(future.result())

    def _stop(self) -> None:
        """Start nothing more, wait for the jobs under way, raise the first failure."""
        self._failed.set()
        self._executor.shutdown(wait=True, cancel_futures=True)
        self._pending.clear()
        raise self._first  # type: ignore[misc]  # set before the failed job's future landed
