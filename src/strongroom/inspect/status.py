"""The status an operator (or a monitoring probe) checks first, read without the lock.

Per scope (the site, and each project that has backups): how many backups, the newest
one and its age, the newest one that passed ``verify`` (from ``checks_record``) and still
opens under the key in use, and the backups whose last verification failed. For the data dir: what the pool holds (objects
and bytes), the free space where the backups are, whether a restore journal is pending
(an interrupted restore the next command recovers), who holds the lock (embedded) or
the lease (server) now, with its heartbeat, the web face's queued and running jobs, and the
site key: its fingerprint, why it cannot be used if it cannot, and whether a copy of it
was ever exported.

Everything here only reads, and a part that cannot be read (a damaged manifest, a pool
object removed meanwhile) is left out rather than failing the whole status: a probe must
always get an answer.
"""

from __future__ import annotations

import os
from datetime import datetime

from strongroom.errors import CorruptBackup, KeyRefused, LinkedFolder, SignedElsewhere
from strongroom.fs.space import free_bytes, mount_point
from strongroom.humanize import parse_time
from strongroom.repo import checks_record, keyring
from strongroom.scopes import Scope, backups_root


def scope_status(sr, scope: Scope) -> dict:
    """``{"scope", "project", "name", "backups", "newest", "newest_verified",
    "failed_verification", "unopened"}``; ``name`` as people know the scope (a project by
    its title and id: ``scopes.scope_name``); ``newest`` is the newest backup that opens
    (authenticated under the site key), ``unopened`` the backups newer than it that do
    not, each ``{"id", "problem", "signed_by"}`` (signed by another key, no usable key,
    edited)."""
    now = sr.clock()
    ids = sr.store.ids(scope)  # once: each id was validated by it, and a scope may have thousands
    root = backups_root(sr.config, scope)
    checks = {i: checks_record.last_check(root / i) or {} for i in ids}
    newest, unopened = _newest(sr, scope, ids, now)
    return {
        "scope": scope.kind, "project": scope.project_id, "name": sr.scope_name(scope.project_id, with_id=True),
        "backups": len(ids),
        "newest": newest,
        "newest_verified": _newest_verified(sr, scope, ids, checks, now),
        "failed_verification": [i for i in ids if checks[i].get("ok") is False],
        "unopened": unopened,
    }


def _newest_verified(sr, scope: Scope, ids: list[str], checks: dict, now: datetime) -> dict | None:
    """The newest backup whose last check passed and that opens now, under the key in use:
    a check that passed under another key (or before the key was lost) vouches for nothing
    this site can restore."""
    for backup_id in ids:
        if checks[backup_id].get("ok") is True:
            found = _backup(sr, scope, backup_id, now)
            if found.get("created_at"):
                return {**found, "verified_at": checks[backup_id]["at"]}
    return None


def _newest(sr, scope: Scope, ids: list[str], now: datetime) -> tuple[dict | None, list[dict]]:
    """The newest backup that opens, and those newer than it that do not."""
    unopened = []
    for backup_id in ids:
        found = _backup(sr, scope, backup_id, now)
        if found.get("created_at"):
            return found, unopened
        unopened.append({"id": backup_id, "problem": found["problem"], "signed_by": found["signed_by"]})
    return None, unopened


def _backup(sr, scope: Scope, backup_id: str, now: datetime) -> dict:
    """``{"id", "created_at", "age_seconds", "reason"}``; when it cannot be opened, the id
    with ``problem`` and ``signed_by`` (the key a signature it cannot check names)."""
    try:
        _, manifest = sr.store.open(scope, backup_id)
    except SignedElsewhere as exc:
        return _unopened(backup_id, str(exc), exc.key_id)
    except (CorruptBackup, LinkedFolder, KeyRefused) as exc:
        return _unopened(backup_id, str(exc), None)
    except (OSError, ValueError) as exc:
        return _unopened(backup_id, f"backup {backup_id} cannot be read: {exc}", None)
    created = manifest.get("created_at")
    age = int((now - parse_time(created)).total_seconds()) if created else None
    return {"id": backup_id, "created_at": created, "age_seconds": age, "reason": manifest.get("reason")}


def _unopened(backup_id: str, problem: str, signed_by: str | None) -> dict:
    return {"id": backup_id, "created_at": None, "age_seconds": None, "reason": None,
            "problem": problem, "signed_by": signed_by}


def key_status(sr) -> dict:
    """The site key: ``SiteKey.state`` (``path``, ``configured``, ``state``: ``ok``, ``none``,
    ``missing`` or ``refused``, ``id``, ``problem``) and ``exported``, the last recorded
    export of the key in use (None: never)."""
    state = sr.store.site_key.state()
    exported = keyring.exports(sr.config, state["id"]) if state["id"] else []
    return {**state, "exported": exported[-1] if exported else None}


def site_status(sr, scopes: list[dict]) -> dict:
    """The whole status: the scopes given, and the data dir's pool, space, journal, lock,
    and where the backups are (``backups_root``; ``shared_layout``: still among the original
    module's folders, for ``strongroom migrate-layout``). A restore's journal with a live
holder of the lock is a restore running now (``"running": true``); without one, a restore
that was interrupted, which the next command finishes or rolls back."""
    base = sr.config.backups_base
    journal, busy = sr.journal.read(), sr.busy()
    if journal and busy is None:  # interrupted, or it ended between the two reads: look again
        busy = sr.busy()
        journal = sr.journal.read()
    return {
        "mode": sr.config.mode, "checked_at": sr.clock().isoformat(timespec="seconds"),
        "backups_root": str(base), "shared_layout": sr.config.legacy_layout,
        "scopes": scopes, "pool": pool_usage(sr.config.pool_dir),
        "free": {"bytes": free_bytes(base), "on": str(mount_point(base))},
        "restore_pending": journal and {**{key: journal.get(key) for key in ("backup", "scope", "project", "step", "started")},
                                        "running": busy is not None},
        "busy": busy,
        "jobs": _active_jobs(sr),
        "key": key_status(sr),
    }


def _active_jobs(sr) -> list[dict] | None:
    """The web face's queued and running jobs (``repo.control``): kind, scope, who, state,
    phase, the process running it and its heartbeat; None when they cannot be read."""
    keys = ("id", "kind", "project", "backup", "by", "state", "started", "holder", "heartbeat")
    try:
        return [{**{key: job.get(key) for key in keys}, "phase": (job.get("progress") or {}).get("phase")}
                for job in sr.jobs() if job.get("state") in ("queued", "running")]
    except Exception:  # noqa: BLE001 - a probe must always get an answer
        return None


def pool_usage(pool_dir) -> dict:
    """``{"objects", "bytes"}``: the pool's stored objects and their size."""
    objects = size = 0
    try:
        shards = list(os.scandir(pool_dir))
    except FileNotFoundError:
        return {"objects": 0, "bytes": 0}
    for shard in shards:
        if shard.name.startswith(".") or not shard.is_dir(follow_symlinks=False):
            continue  # the pool's own temporary folder
        for entry in os.scandir(shard.path):
            if entry.name.startswith(".") or not entry.is_file(follow_symlinks=False):
                continue  # an object being written
            try:
                size += entry.stat(follow_symlinks=False).st_size
            except FileNotFoundError:
                continue
            objects += 1
    return {"objects": objects, "bytes": size}
