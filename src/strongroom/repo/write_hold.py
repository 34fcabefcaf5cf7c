"""Holding the host's writes while a backup reads: records and files of one moment.

A backup dumps the records, then reads the files. A change made through the host app
in between (a record and its file) would be in the backup in part: the record from
before, the file from after. So, for that window, the backup holds the host's writes on
every worker of every instance, through the shared control state (``control``):

- A writing request (the web face's guard, ``enter_write``) first puts a mark of its own
  under ``writers``, then looks for the hold: none, it goes on (once ``admit`` agrees:
  the guard refuses a write a restore began under) and drops its mark when it ends
  (``leave_write``); a hold, it drops its mark and waits for the hold to end without one
  (a write waiting is not under way, and its mark is written once more, not at every
  look), at most ``WAIT`` seconds, then is refused (``WritesHeld``: 503 with
  ``Retry-After``). Should anything fail while its mark is there, the mark is dropped.
- The backup (``holding_writes``) puts the hold, then waits until no writer's mark is
  left (the writes already under way end), dumps the records and reads the files, and
  drops the hold. It does not wait for the write it runs in (a backup made by a guarded
  request: ``_current_write`` names that request's mark).

Each side writes its own mark before it reads the other's, so of a write and a hold
that begin together at least one sees the other: the write is wholly before the
backup's reading or wholly after it. There is one hold per data dir and run mode: a
project's backup holds the whole site's writes too (a write does not say what it
changes). Nothing waits without bound: a hold expires ``max_hold`` seconds after it was
put (a backup still reading then goes on, and says in its warnings that writes were let
through), and one whose process on this host is gone holds nothing; a writer's mark whose
process on this host is gone, or (any host's) older than ``STALE_WRITER`` seconds, is
dropped by the next backup that finds it (a process on another host cannot be asked
whether it lives: its mark is waited for, ``DRAIN`` seconds at most, until it is that
old); a backup waits at most ``DRAIN`` seconds for the writes under way, and says so if
one was still going.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

from strongroom.errors import StrongroomError
from strongroom.repo.control import process_alive, this_host

log = logging.getLogger("strongroom")

HOLD, HOLD_KEY, WRITERS = "hold", "writes", "writers"
WAIT = 10.0  # seconds a write request waits for a hold to end before its 503
DRAIN = 30.0  # seconds a backup waits for the writes under way when it put its hold
STALE_WRITER = 600.0  # a writer's mark this old is from a request that will not end it
POLL = 0.05

# The mark of the write this request is (set by ``enter_write``): a backup made inside it
# must not wait for it. A context variable: each thread, each request its own.
_current_write: ContextVar[str | None] = ContextVar("strongroom_current_write", default=None)


class WritesHeld(StrongroomError):
    """A backup holds the host's writes: try again in a moment."""

    exit_code = 4
    http_status = 503

    def __init__(self, hold: dict):
        super().__init__(f"a backup of the site is reading it ({hold.get('operation', 'backup')} by "
                         f"{hold.get('by') or 'someone'}): changes wait until it is done; try again in a moment")
        self.hold = hold


@dataclass
class Held:
    """What a backup's hold came to: how long it lasted and what it could not promise."""

    since: float
    max_hold: float
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    @property
    def on(self) -> bool:
        return self.max_hold > 0


def _me() -> dict:
    return {"host": this_host(), "pid": os.getpid()}


def _live(record: dict | None, now: float, lifetime: float | None = None) -> bool:
    """Is the mark's process still there? Its own expiry (or ``lifetime`` since it was
    put) not passed, and, on this host, its process alive."""
    if record is None:
        return False
    expires = record.get("expires") if lifetime is None else float(record.get("since") or 0) + lifetime
    if float(expires or 0) < now:
        return False
    return record.get("host") != this_host() or process_alive(record.get("pid"))


def current_hold(control, now: float | None = None) -> dict | None:
    """The live hold, or None."""
    hold = control.mark(HOLD, HOLD_KEY)
    return hold if _live(hold, time.time() if now is None else now) else None


def enter_write(control, wait: float | None = None, clock=time.monotonic, sleep=time.sleep,
                admit: Callable[[], None] = lambda: None) -> str:
    """Let a writing request in: its mark's key (give it to ``leave_write`` when the
    request ends), once no backup holds the writes and ``admit()`` (called with the mark
    in place) has not raised; ``WritesHeld`` after ``wait`` seconds (``WAIT``) of a hold."""
    deadline = clock() + (WAIT if wait is None else wait)
    key = f"{os.getpid()}-{secrets.token_hex(8)}"
    while True:
        control.put_mark(WRITERS, key, {**_me(), "since": time.time()})
        try:
            hold = current_hold(control)
            if hold is None:
                admit()
        except BaseException:
            _drop_quietly(control, key)
            raise
        if hold is None:
            _current_write.set(key)
            return key
        control.drop_mark(WRITERS, key)
        while hold is not None:  # no mark meanwhile: a waiting write is not under way
            if clock() >= deadline:
                raise WritesHeld(hold)
            sleep(POLL)
            hold = current_hold(control)


def leave_write(control, key: str) -> None:
    if _current_write.get() == key:
        _current_write.set(None)
    control.drop_mark(WRITERS, key)


def _drop_quietly(control, key: str) -> None:
    try:
        control.drop_mark(WRITERS, key)
    except Exception as exc:  # noqa: BLE001 - the failure that brought us here is the one to report
        log.warning("could not drop the mark of write %s: %s", key, exc)


def writes_under_way(control, now: float | None = None) -> dict[str, dict]:
    """The marks of the writes under way, by key, but for the request this runs in. A
    mark left by a process that will not drop it (gone, on this host; or older than
    ``STALE_WRITER``) is dropped here."""
    now = time.time() if now is None else now
    own, found = _current_write.get(), {}
    for key, mark in control.marks(WRITERS).items():
        if _live(mark, now, STALE_WRITER):
            if key != own:
                found[key] = mark
            continue
        log.warning("dropped the mark of a write that will not end it (process %s on %s, begun %.0f s ago)",
                    mark.get("pid"), mark.get("host"), now - float(mark.get("since") or 0))
        control.drop_mark(WRITERS, key)
    return found


@contextmanager
def holding_writes(control, who: dict, max_hold: float, drain: float | None = None,
                   clock=time.monotonic, sleep=time.sleep) -> Iterator[Held]:
    """Hold the host's writes for the ``with`` block (at most ``max_hold`` seconds; 0:
    no hold). ``who`` (operation, by, job) is shown to the writes refused meanwhile."""
    since = time.time()
    held = Held(since, max_hold)
    if max_hold <= 0:
        yield held
        return
    token = secrets.token_hex(8)
    started = clock()
    control.put_mark(HOLD, HOLD_KEY, {**who, **_me(), "token": token, "since": since, "expires": since + max_hold})
    try:
        _drain(control, held, DRAIN if drain is None else drain, started, clock, sleep)
        yield held
    finally:
        try:
            control.drop_mark(HOLD, HOLD_KEY, token)
        finally:
            held.seconds = clock() - started
            if held.seconds > max_hold:
                message = (f"the host's writes were held for at most {max_hold:g} s and this backup read for "
                           f"{held.seconds:.1f} s: a change made after that may be in it in part "
                           "(set STRONGROOM_WRITE_HOLD higher)")
                log.warning(message)
                held.warnings.append(message)


def _drain(control, held: Held, drain: float, started: float, clock, sleep) -> None:
    """Wait for the writes under way to end, at most ``drain`` seconds from ``started``."""
    while True:
        under_way = writes_under_way(control)
        if not under_way:
            return
        if clock() >= started + drain:
            oldest = min(float(w.get("since") or 0) for w in under_way.values())
            message = (f"{len(under_way)} write(s) to the host app still under way after {drain:g} s "
                       f"(the oldest began {time.time() - oldest:.0f} s ago): the backup may hold part of them")
            log.warning(message)
            held.warnings.append(message)
            return
        sleep(POLL)
