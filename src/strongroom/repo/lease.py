"""The operation lease on a MongoDB server: one operation at a time across machines.

Where several machines share a data dir and a database, a host-local ``flock``
(``locking``) cannot say who runs, nor can a dead machine's lock be told from a live
one. So on a server the lock is a document, ``{_id: "operation"}`` in the control
collection ``strongroom.lease``: its holder (host, process, job, operation, user, start),
a random token, its heartbeat and its expiry, as epoch seconds.

- Taking it: the document is read; a live one refuses the taker with ``Busy``, naming
  the holder; an expired one (or one whose holder was a process of this host that is
  gone) is deleted, conditioned on its token; then the taker inserts its own. The insert
  is the arbiter: of two takers, one inserts and the other collides on the unique
  ``_id`` and is refused. (A conditional update would do on MongoDB, where it is atomic;
  FerretDB 1.x runs an update as a read and then a write, so two could both match.)
  Taking a lease that was not released is a takeover: said in the log and, by the
  caller's ``on_takeover``, in the audit log, never silently.
- A thread renews it every ``heartbeat`` seconds by an update conditioned on the token;
  an update that matches nothing means the lease was taken over: it is lost.
- ``check(step)`` (``fencing``) is asked before each irreversible step: it raises
  ``LeaseLost`` once the lease is lost, or when the lease's expiry has passed on this
  side and the document no longer carries our token.
- Releasing it deletes the document, conditioned on the token.

Times are the machines' clocks: keep them in step (NTP) and the expiry well above the
heartbeat (the defaults: 30 s and 5 s; ``config``).
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from datetime import UTC, datetime

from strongroom.errors import Busy, LeaseLost
from strongroom.repo import fencing
from strongroom.repo.control import LEASE, process_alive, this_host
from strongroom.repo.locking import describe

log = logging.getLogger("strongroom")
LEASE_ID = "operation"


def _expired(document: dict, now: float) -> bool:
    return float(document.get("expires") or 0) < now


def _dead_here(document: dict) -> bool:
    """Was the lease taken by a process of this host that is gone? (No need to wait for
    its expiry then, as with the embedded engine's lock.)"""
    old = document.get("holder") or {}
    return old.get("host") == this_host() and not process_alive(old.get("pid"))


def holder(database, now: float | None = None) -> dict | None:
    """The live lease's holder with its ``heartbeat`` and ``expires``, or None when the
    lease is free, expired, or held by a dead process of this host."""
    document = database[LEASE].find_one({"_id": LEASE_ID})
    now = time.time() if now is None else now
    if not document or not document.get("token") or _expired(document, now) or _dead_here(document):
        return None
    return {**(document.get("holder") or {}), "heartbeat": document.get("heartbeat"),
            "expires": document.get("expires")}


class ServerLease:
    """``with ServerLease(db, "restore", "admin", expiry=30, heartbeat=5):`` holds the lease."""

    def __init__(self, database, operation: str, by: str | None = None, job: str | None = None, *,
                 expiry: float = 30.0, heartbeat: float = 5.0, on_takeover=None):
        self.collection = database[LEASE]
        self.expiry, self.heartbeat = expiry, heartbeat
        self.on_takeover = on_takeover
        self.info = {"operation": operation, "by": by, "pid": os.getpid(), "host": this_host(), "job": job,
                     "started": datetime.now(UTC).isoformat(timespec="seconds")}
        self.token = secrets.token_hex(16)
        self.lost = False
        self.expires = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fence = None

    def __enter__(self):
        from pymongo.errors import DuplicateKeyError

        now = time.time()
        taken = {"holder": self.info, "token": self.token, "heartbeat": now, "expires": now + self.expiry}
        before = self.collection.find_one({"_id": LEASE_ID})
        if before is not None and before.get("token") and not _expired(before, now) and not _dead_here(before):
            self._refuse()
        if before is not None:  # expired, or its process gone: remove that lease, then race to insert
            self.collection.delete_one({"_id": LEASE_ID, "token": before.get("token")})
        try:
            self.collection.insert_one({"_id": LEASE_ID, **taken})  # the one arbiter: a unique _id
        except DuplicateKeyError:
            self._refuse()
        self.expires = now + self.expiry
        if before and before.get("token"):
            self._took_over(before)
        self._thread = threading.Thread(target=self._renew_loop, daemon=True, name="lease-heartbeat")
        self._thread.start()
        self._fence = fencing.holding(self)
        self._fence.__enter__()
        return self

    def _refuse(self):
        current = holder(self.collection.database) or {}
        raise Busy(f"refused: {describe(current)} is running; try again when it is done")

    def _took_over(self, before: dict) -> None:
        old = before.get("holder") or {}
        beat = datetime.fromtimestamp(float(before.get("heartbeat") or 0), UTC).isoformat(timespec="seconds")
        log.warning("took over the operation lease from %s (its last heartbeat %s; expired or its process gone): "
                    "its work is recovered now", describe(old), beat)
        if self.on_takeover is not None:
            self.on_takeover(old, beat)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.heartbeat):
            try:
                self.renew()
            except Exception as exc:  # noqa: BLE001 - a server blip: the next beat tries again
                log.warning("could not renew the operation lease: %s", exc)
            if self.lost:
                return

    def renew(self) -> None:
        now = time.time()
        result = self.collection.update_one({"_id": LEASE_ID, "token": self.token},
                                            {"$set": {"heartbeat": now, "expires": now + self.expiry}})
        if result.matched_count == 1:
            self.expires = now + self.expiry
        else:
            self.lost = True

    def check(self, step: str) -> None:
        """Fencing: ``LeaseLost`` if another process holds the lease now."""
        if not self.lost and time.time() < self.expires - self.heartbeat:
            return  # renewed recently enough: nobody can have taken it over
        if not self.lost:
            self.renew()  # our expiry is near or past: the token tells whether it is still ours
        if self.lost:
            raise LeaseLost(f"the operation lease was taken over by another process before the {step}; "
                            "this process stops here and takes no further step")

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._fence is not None:
            self._fence.__exit__(None, None, None)
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.collection.delete_one({"_id": LEASE_ID, "token": self.token})
        except Exception as failure:  # noqa: BLE001 - it expires by itself
            log.warning("could not release the operation lease (%s); it expires by itself", failure)
