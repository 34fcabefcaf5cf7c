"""When a backup was last checked, and what the check found: ``checked.json`` beside its manifest.

A backup never changes once it is complete, and its signed manifest covers everything a
restore reads; the outcome of ``verify`` is not part of it, so it is kept in its own
small file, ``checked.json``, in the backup folder next to ``manifest.json``. It says
``{"at", "ok", "problems", "by"}``: the UTC time of the check, whether the backup was
found whole, the first few problems, and who asked. It is written to a hidden name,
made private, synced and renamed into place, so a reader sees the previous record or
the new one, never half of one. It is a note, not evidence: anyone who can write the
backup folder can edit it, so a restore never trusts it (it re-checks what it uses).

``last_check(backup_folder)`` reads it back: the record, or None when the backup was
never checked or the file is not a record of this form.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

from strongroom.fs import mutations

CHECKED = "checked.json"
CHECKED_NEW = f".{CHECKED}.new"  # where the next record is written before it replaces the last
MAX_PROBLEMS = 10  # problems kept in the record; ``verify`` itself lists them all


def record_check(backup_folder: Path, report: dict, by: str, at: datetime | None = None) -> dict:
    """Keep the outcome of ``verify`` (``report``: ``{"ok", "problems", …}``) with the backup."""
    record = {
        "at": (at or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        "ok": bool(report.get("ok")),
        "problems": [str(p) for p in report.get("problems", [])[:MAX_PROBLEMS]],
        "by": str(by),
    }
    beside = backup_folder / CHECKED_NEW
    if os.path.lexists(beside):
        mutations.unlink(beside)
    mutations.write_file(beside, json.dumps(record, indent=2).encode() + b"\n", sync=True)
    mutations.chmod(beside, 0o600)  # backups are the operator's alone (``privacy``)
    mutations.rename(beside, backup_folder / CHECKED)
    mutations.fsync_dir(backup_folder)
    return record


def last_check(backup_folder: Path) -> dict | None:
    """The last check of the backup in ``backup_folder``: ``{"at", "ok", "problems", "by"}``,
    or None if it was never checked (or the record is unreadable)."""
    try:
        with open(backup_folder / CHECKED, "rb", opener=_no_follow) as fh:
            record = json.loads(fh.read(1 << 16))
    except (OSError, ValueError):
        return None
    if not _well_formed(record):
        return None
    return {key: record[key] for key in ("at", "ok", "problems", "by")}


def _well_formed(record: object) -> bool:
    if not isinstance(record, dict):
        return False
    try:
        datetime.fromisoformat(record.get("at"))
    except (TypeError, ValueError):
        return False
    return (isinstance(record.get("ok"), bool) and isinstance(record.get("by"), str)
            and isinstance(record.get("problems"), list) and all(isinstance(p, str) for p in record["problems"]))


def _no_follow(path, flags):
    return os.open(path, flags | os.O_NOFOLLOW)
