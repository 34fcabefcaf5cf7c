"""The restore journal: what a restore is doing, durable before each step.

``backups/<mode>/.journal.json`` exists from the moment a restore changes anything until
it has finished or been rolled back. It records the scope, the backup being restored,
the ``pre-restore`` backup holding the state before, the current step, and, for a
restore of some files only, ``"records": false`` (it leaves the records alone, and so
does undoing it; an older journal without the field restored records), and it is
written to a temporary file, synced and renamed over the old one, so it is always
whole. Its presence is also the maintenance flag: while it exists the scope may be in
a mixed state, and the web face refuses writes.

Steps, in order: ``pre-restore`` (the backup of the current state is being made),
``files`` (the new tree is being built beside the live one), ``records``, ``swap``,
``cleanup`` (complete), and ``rollback``. After a crash, recovery reads it: up to
``files`` nothing live has changed, so it only removes the new tree; at ``records``,
``swap`` or ``rollback`` it puts the old tree back and loads the records of the
``pre-restore`` backup; at ``cleanup`` it only finishes removing the old tree. Undoing
is idempotent, so a crash during recovery is recovered the same way, and a journal
write that fails during a rollback (a full disk) does not stop it.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from strongroom.fs import mutations
from strongroom.repo import fencing

STEPS = ("pre-restore", "records", "files", "swap", "cleanup", "rollback")
NAME = ".journal.json"  # in ``backups/<mode>/``


def unfinished_restore(backups_dir: Path) -> bool:
    """Is there a journal in ``backups_dir``: something a recovery may have to finish?
    (One ``lstat``: a command that only reads checks this before it loads the service.)"""
    return os.path.lexists(backups_dir / NAME)


class Journal:
    def __init__(self, path: Path):
        self.path = path

    def read(self) -> dict | None:
        """The journal of an unfinished restore, or None."""
        try:
            return json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return None
        except ValueError:  # cannot happen with the rename protocol; treat as no journal
            return None

    def start(self, **fields) -> dict:
        entry = {
            **fields,
            "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        self._write(entry)
        return entry

    def step(self, entry: dict, step: str) -> None:
        """Record that ``step`` is about to begin; durable before it does."""
        assert step in STEPS, step
        fencing.check(f"restore's {step} step")
        entry["step"] = step
        self._write(entry)

    def finish(self) -> None:
        fencing.check("end of the restore's journal")  # never a journal a new holder may be using
        if self.path.exists():
            mutations.unlink(self.path)
            mutations.fsync_dir(self.path.parent)

    def _write(self, entry: dict) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            mutations.write_file(tmp, json.dumps(entry, indent=1).encode(), sync=True)
            mutations.rename(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)  # a full disk leaves no half-written journal behind
            raise
        mutations.fsync_dir(self.path.parent)
