"""What the panel shows of operations: the scope's status and its last audit entries.

Shown only inside a panel, so only to those the panel is shown to (``policy``: view).
An admin's site panel shows every scope, the pool, the free space and the whole audit
log's last entries; a project's panel that project's status and entries alone. Reading
them never fails the panel: a status that cannot be read is left out, with the reason.
"""

from __future__ import annotations

import logging

from strongroom.errors import describe as describe_error

log = logging.getLogger("strongroom")

LAST_ENTRIES = 10


def panel_operations(service, project_id: str | None) -> dict:
    """``{"status", "entries"}`` for the scope's panel (``status`` None if unreadable)."""
    try:
        if project_id is None:
            status = service.status()
        else:
            status = {"scopes": [service.scope_status(project_id)], "restore_pending": None, "pool": None,
                      "free": None}
        entries = service.last_audit_entries(LAST_ENTRIES, project_id)
    except Exception as exc:  # noqa: BLE001 - the panel's list of backups matters more
        log.warning("could not read the status or the audit log for the panel: %s", exc)
        return {"status": None, "entries": [], "error": describe_error(exc)}
    return {"status": status, "entries": entries, "error": None}
