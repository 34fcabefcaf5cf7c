"""Several sites, one bucket: pushes and remote prunes announce themselves with lease objects.

A remote prune deletes the objects no copy names; a push sends objects before the copy
that names them, and counts on objects it finds in the bucket. Run at the same time by
two hosts (or two run modes: each mode's lock covers its own operations only), the prune
could delete what the push has just sent, or has just counted on. So each puts a lease
object under ``leases/`` before it looks at the objects, and looks for the other kind's
leases after:

- a push puts ``leases/push-<random>``, waits while any live ``leases/prune-*`` is there,
  then looks at the objects (lists them, or reads a copy that names them: ``remote``) and
  sends what is missing; it renews its lease as it goes and
  removes it once its manifests are up;
- a prune puts ``leases/prune-<random>``, deletes the manifests its policy drops, then
  lists the leases: while any live push lease is there it deletes no object (they are left
  for a later prune, ``objects_deferred``); otherwise it lists what is named and what is
  there, deletes the objects nobody names, and removes its lease.

Each puts its lease before it lists the other's, and each lists the other's before it
looks at the objects; the store lists every object put before the listing (S3, and the
S3-compatible stores tested, list consistently after a write). So of a push and a prune,
either the prune sees the push's lease and deletes no object, or the push's lease came
after the prune's listing of leases: then the prune's lease was there before the push
listed the leases, and the push waits for it to go before it looks at the objects. A push
that ended before the prune listed the leases had put its manifest, which the prune's
listing of what is named then shows. No push counts on an object a prune deletes, and no
prune deletes what a push sent before its manifest. (Checking the leases after listing
what is named is not enough: a push can run whole in between; the race test caught it.)

Ages are the store's own: a lease's age is the difference between its ``LastModified``
and that of the reader's own lease, just put, so the hosts' clocks do not matter. A lease
older than ``EXPIRY`` is that of a host that died mid-way: it is ignored, and a prune
deletes it. A push renews its lease every ``RENEW`` seconds, between objects, and fails
(the next push completes it) if it went longer than ``EXPIRY - MARGIN`` without; a prune
checks before each batch of deletions that its lease is younger than that (fencing), and
stops otherwise.
"""

from __future__ import annotations

import io
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from strongroom.errors import RemoteFailed

LEASES = "leases/"
EXPIRY = 3600.0  # seconds: a lease older than this is a dead host's
MARGIN = 600.0  # its holder stops this long before that
RENEW = 300.0  # a push renews its lease this often
POLL = 1.0  # seconds between looks while a push waits for a prune to finish


class Lease:
    """One push's or prune's lease object in the store (see the module's description)."""

    def __init__(self, store, kind: str):
        self.store, self.kind = store, kind
        self.name = f"{LEASES}{kind}-{uuid.uuid4().hex}"
        self.renewed = 0.0

    def put(self) -> None:
        self.store.put(self.name, io.BytesIO(b""))
        self.renewed = time.monotonic()

    def others(self, kind: str) -> list[str]:
        """The live leases of ``kind`` held by others, aged against this one (just renewed)."""
        self.put()
        stamps = self.store.stamps(LEASES)
        now = stamps.get(self.name)
        if now is None:
            raise RemoteFailed(f"{self.store.describe()} does not list the lease just written "
                               f"({self.name}): it cannot be shared safely by several sites")
        return [name for name, at in stamps.items()
                if name != self.name and name.startswith(f"{LEASES}{kind}-") and now - at < EXPIRY]

    def expired(self) -> list[str]:
        stamps = self.store.stamps(LEASES)
        now = stamps.get(self.name, 0.0)
        return [name for name, at in stamps.items() if now - at >= EXPIRY]

    def wait_while(self, kind: str) -> None:
        """Return once no live lease of ``kind`` is there (at most ``EXPIRY``: then it is dead)."""
        while self.others(kind):
            time.sleep(POLL)

    def renew_if_due(self) -> None:
        self.check()
        if time.monotonic() - self.renewed >= RENEW:
            self.put()

    def check(self) -> None:
        """Fencing: fail before an irreversible step when the lease may have lapsed."""
        if time.monotonic() - self.renewed >= EXPIRY - MARGIN:
            raise RemoteFailed(f"the {self.kind} went {EXPIRY - MARGIN:.0f} s without renewing its lease "
                               f"on {self.store.describe()}: stopped, run it again")


@contextmanager
def holding(store, kind: str) -> Iterator[Lease]:
    """A lease of ``kind`` (``push`` or ``prune``) put now and removed after the block."""
    lease = Lease(store, kind)
    lease.put()
    try:
        yield lease
    finally:
        try:
            store.delete([lease.name])
        except RemoteFailed:
            pass  # it expires: a later prune deletes it
