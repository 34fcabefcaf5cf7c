"""What ``verify`` found, kept: when each backup was last verified, and whether it passed.

A backup folder is never changed after it is complete (and ``verify`` refuses anything in
it the manifest does not list), so the record lives beside the backups, in
``backups/<mode>/verified.json``::

    {"site": {"2026-11-26T03-00-00": {"at": "2026-11-26T04:00:00+00:00", "ok": true}},
     "project/6548a1b2c3d4e5f601234567": {...}}

It is written by ``verify`` (which holds the operation lock) to a temporary file, synced
and renamed over the old one, so it is always whole; entries of backups that no longer
exist are dropped then. It is a convenience for ``status``, not a guarantee: a record
that cannot be written (a full disk, a read-only data dir) never fails the verification,
and a missing or unreadable record only means "never verified".
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

from . import mutations
from .scopes import Scope

log = logging.getLogger("strongroom")

RECORD_NAME = "verified.json"


def scope_key(scope: Scope) -> str:
    return "site" if scope.is_site else f"project/{scope.project_id}"


class VerifiedRecord:
    def __init__(self, folder: Path):
        self.path = Path(folder) / RECORD_NAME

    def read(self) -> dict:
        """``{scope key: {backup id: {"at", "ok"}}}``; empty when there is none."""
        try:
            found = json.loads(self.path.read_text("utf-8"))
        except (OSError, ValueError):
            return {}
        return found if isinstance(found, dict) else {}

    def of(self, scope: Scope) -> dict:
        """``{backup id: {"at", "ok"}}`` of one scope."""
        found = self.read().get(scope_key(scope))
        return found if isinstance(found, dict) else {}

    def note(self, scope: Scope, backup_id: str, ok: bool, existing: list[str]) -> None:
        """Record a verification's outcome; never raises (a warning in the log instead)."""
        try:
            record = self.read()
            kept = {k: v for k, v in self.of(scope).items() if k in existing}
            kept[backup_id] = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "ok": bool(ok)}
            record[scope_key(scope)] = kept
            self._write(record)
        except Exception as exc:  # noqa: BLE001 - the verification's outcome stands
            log.warning("could not record the verification of %s: %s", backup_id, exc)

    def _write(self, record: dict) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            mutations.write_file(tmp, json.dumps(record, indent=1, sort_keys=True).encode(), sync=True)
            mutations.chmod(tmp, 0o600)  # the operator's, as everything in backups/
            mutations.rename(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
