"""Fencing: before each irreversible step, check that this process still holds the lease.

A lease that can expire needs it: a process paused (SIGSTOP, a stalled VM, a long GC)
beyond its lease's expiry may wake up after another process took the lease over and
began recovering; it must then take no further step that cannot be undone. The holder of
the operation's lock or lease installs itself here for the duration of the operation
(``holding``); the steps that cannot be undone call ``check(step)``: the swap and the
old tree's return in a restore (``restore``), the records' replacement (``dbrestore``),
a backup's deletion (``store``) and each restore journal step (``journal``). A holder
that has lost its lease raises ``LeaseLost``; with no holder installed (a library caller
with its own locking) the check passes.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

_holder: ContextVar = ContextVar("strongroom_fence", default=None)


def check(step: str) -> None:
    """Raise ``LeaseLost`` if the operation's holder lost its lease; else return."""
    holder = _holder.get()
    if holder is not None:
        holder.check(step)


@contextmanager
def holding(holder):
    """Within the block, ``check`` asks ``holder.check(step)``."""
    token = _holder.set(holder)
    try:
        yield holder
    finally:
        _holder.reset(token)
