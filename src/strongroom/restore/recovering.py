"""Undoing a restore, and recovering from one a crash cut short.

``undo`` puts the journal's scope back as it was before the restore. It trusts nothing
it reads: before anything changes, the pre-restore backup whose records it will load is
authenticated and its record dumps re-hashed against its manifest (the files go back
from the old tree, which is the live folder as the restore found it, not from a backup);
a damaged one stops it there, naming the damage and the newest sound older backup, with
the journal as it was, so that ``recover --from <that backup>`` can take the records from
it instead. Then space first (the new tree is removed and the rollback's reserve
released), then, if the records may have changed (``CHANGED_STEPS``), the old tree is
renamed back and the records are loaded. Undoing is idempotent, so a journal step that
cannot be written does not stop it. ``recover``, run before every command, reads the journal: a
restore that reached ``cleanup`` is finished, any other is undone; with no journal, the
trees an ended restore or a dead sweep left are removed (``sweeping``). Nothing is removed or
renamed through a link: the live folder's parent is opened from the data dir
(``nofollow``).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from strongroom.check.verifying import check_before_restore
from strongroom.db import dbdump, dbrestore, linking
from strongroom.errors import (
    DRIVER_MODULES,
    BadInput,
    CorruptBackup,
    KeyRefused,
    NotFound,
    RestoreFailed,
    RollbackBlocked,
    describe,
)
from strongroom.fs import mutations, space, sweeping
from strongroom.fs.nofollow import open_below
from strongroom.ids import validate_backup_id
from strongroom.repo import fencing
from strongroom.scopes import Scope, in_model_order, scope_dir

log = logging.getLogger("strongroom")

# Steps after which the live records may differ from the pre-restore backup.
CHANGED_STEPS = ("records", "swap", "rollback")


def tree_paths(live: Path, backup_id: str) -> tuple[Path, Path]:
    """Where the new tree is built and where the old one goes during the swap."""
    return (live.parent / f".{live.name}.restore-{backup_id}",
            live.parent / f".{live.name}.old-{backup_id}")


def journal_scope(entry: dict) -> Scope:
    """The scope a journal names, validated like any other input."""
    kind = entry.get("scope")
    if kind not in ("site", "project"):
        raise CorruptBackup(f"the restore journal names no valid scope: {kind!r}")
    return Scope.of(entry.get("project") if kind == "project" else None)


def undo(sr, entry: dict, cause: BaseException | None = None, reserve: space.Reserve | None = None) -> None:
    """Put the journal's scope back as it was before the restore, then end the journal.

    First, before anything changes, the backup whose records will be loaded (the
    pre-restore one, or the one ``recover --from`` named: ``records_from``) is opened
    (authenticated) and its record dumps re-hashed against its manifest: a damaged one
    stops the undo there (``RollbackBlocked``), the journal left as it was. Then space:
    the new tree goes and the reserve is released before anything is written. Then, if
    the records may have changed, the old tree is renamed back (if it had been moved) and
    the records are loaded from that backup (unless the journal says the restore left
    them alone: ``"records": false``).
    """
    scope = journal_scope(entry)
    pre_id = entry.get("pre_restore")
    fencing.check("rollback")  # a holder that lost its lease leaves the undoing to the new one
    loads_records = bool(pre_id) and entry.get("step") in CHANGED_STEPS and entry.get("records", True)
    source_id = entry.get("records_from") or pre_id
    source = sound_source(sr, scope, entry, cause) if loads_records else None
    try:
        live = scope_dir(sr.config, scope)
        staging, old = tree_paths(live, entry["backup"])
        _remove_beside(sr, live, staging.name)
        if reserve is not None:
            reserve.release()
        space.remove_stale(sr.config.backups_dir)
        if pre_id and entry.get("step") in CHANGED_STEPS:
            _journal_quietly(sr, entry, "rollback")
            fencing.check("return of the old tree")
            _put_old_tree_back(sr, live, old.name)
            if source is not None:  # a partial restore of files leaves the records as they are
                source_path, source_manifest = source
                bson_dir = source_path / "db" / "bson"
                queries = linking.replaced_queries(sr.config, scope, sr.database, bson_dir)
                dbrestore.restore_collections(sr.database, bson_dir,
                                              in_model_order(sr.config, source_manifest["collections"]), queries)
        remove_leftover_trees(sr, scope)
    except BaseException as exc:
        what = f"restore of {entry.get('backup')} failed ({reason_of(cause)}) and so did" if cause else "recovery failed"
        project = f" --project {scope.project_id}" if scope.project_id else ""
        raise RestoreFailed(
            f"{what} putting the {scope} back ({reason_of(exc)}); the state before the restore is safe "
            f"in backup {source_id}: free some space if the disk is full, then run `strongroom recover` "
            f"(or `strongroom restore {source_id}{project}`)"
        ) from exc
    quietly(sr.journal.finish)


def sound_source(sr, scope: Scope, entry: dict, cause: BaseException | None = None) -> tuple[Path, dict]:
    """The folder and manifest of the backup an undo loads the records from, once its
    signature and every record dump it holds check against its manifest; else
    ``RollbackBlocked``, naming what is damaged and the newest sound older backup."""
    source_id = entry.get("records_from") or entry["pre_restore"]
    try:
        path, manifest = sr.store.open(scope, source_id)
        problems = dbdump.verify_dump(path / "db", manifest["collections"])
    except (CorruptBackup, KeyRefused, OSError) as exc:
        problems = [reason_of(exc)]
    if not problems:
        return path, manifest
    failed = f"the restore of {entry.get('backup')} failed ({reason_of(cause)}); it" if cause else \
        f"the interrupted restore of {entry.get('backup')}"
    sound = newest_sound(sr, scope, skip={source_id})
    way = (f"to put the records back from backup {sound} instead (the files go back as they were before the "
           f"restore), run `strongroom recover --from {sound}`" if sound else
           "no other sound backup of it was found")
    raise RollbackBlocked(
        f"{failed} cannot be rolled back: backup {source_id}, which holds the {scope}'s records from before "
        f"the restore, is damaged ({'; '.join(problems[:3])}); nothing was changed, and the restore stays "
        f"pending (the next command tries again); {way}")


def newest_sound(sr, scope: Scope, skip: set) -> str | None:
    """The newest backup of ``scope`` (none of ``skip``) that passes the checks a restore
    makes first (``verifying.check_before_restore``: signature, dumps, stored files)."""
    for backup_id in sr.store.ids(scope):
        if backup_id in skip:
            continue
        try:
            path, manifest = sr.store.open(scope, backup_id)
        except (CorruptBackup, KeyRefused, OSError):
            continue
        if not check_before_restore(path, manifest):
            return backup_id
    return None


def recover(sr, records_from: str | None = None) -> dict | None:
    """Finish or roll back a restore interrupted by a crash (lock held by the caller).

    With no journal, only sweeps what a finished restore could not remove; that writes
    nothing, so it works on a full disk. ``records_from``: the backup to take the
    records from when the pre-restore backup is damaged (``sound_source`` names one).
    """
    entry = sr.journal.read()
    if entry is None:
        if records_from is not None:
            raise NotFound("there is no interrupted restore to recover")
        sweep_leftovers(sr)
        return None
    scope = journal_scope(entry)
    step = entry.get("step")
    if records_from is not None:
        _take_records_from(sr, scope, entry, records_from)
    if step == "cleanup":
        outcome = f"completed the restore of {entry['backup']}"
        remove_leftover_trees(sr, scope)
        space.remove_stale(sr.config.backups_dir)
        sr.journal.finish()
    elif step in CHANGED_STEPS and entry.get("pre_restore"):
        source = entry.get("records_from")
        outcome = (f"rolled back: the files as they were before the restore, the records from backup {source} "
                   f"(the pre-restore backup {entry['pre_restore']} is damaged)" if source else
                   f"rolled back to {entry['pre_restore']}, the state before the restore")
        undo(sr, entry)
    else:
        outcome = "nothing had changed yet"
        undo(sr, entry)
    return {**entry, "outcome": outcome}


def _take_records_from(sr, scope: Scope, entry: dict, backup_id: str) -> None:
    """Record in the journal that the undo loads the records from ``backup_id`` (a backup
    of the journal's scope, checked as every source is), so that a crash during this
    recovery goes on the same way."""
    validate_backup_id(backup_id)
    if entry.get("step") not in CHANGED_STEPS or not entry.get("records", True):
        raise BadInput("the interrupted restore had not changed the records: `strongroom recover` needs no --from")
    if not sr.store.exists(scope, backup_id):
        raise NotFound(f"no backup {backup_id} of the {scope}")
    sound_source(sr, scope, {**entry, "records_from": backup_id})
    entry["records_from"] = backup_id
    sr.journal.step(entry, entry["step"])


def _remove_beside(sr, live: Path, name: str) -> None:
    """Remove the tree ``name`` beside the live folder, through the parent's descriptor."""
    if not live.parent.is_dir():
        return
    parent_fd = open_below(sr.config.data_dir, live.parent)  # never removes through a link
    try:
        mutations.rmtree(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _put_old_tree_back(sr, live: Path, old_name: str) -> None:
    """The swap had moved the live folder aside as ``old_name``: put it back in place."""
    if not live.parent.is_dir():
        return
    parent_fd = open_below(sr.config.data_dir, live.parent)
    try:
        if _exists_at(parent_fd, old_name):
            mutations.rmtree(live.name, dir_fd=parent_fd)
            mutations.rename(old_name, live.name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
            os.fsync(parent_fd)
    finally:
        os.close(parent_fd)


def _exists_at(dir_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def sweep_leftovers(sr) -> None:
    """Remove new or old trees and a space reserve left behind by an ended restore."""
    space.remove_stale(sr.config.backups_dir)
    remove_leftover_trees(sr, Scope.site())
    projects = scope_dir(sr.config, Scope.site()) / "project"
    if projects.is_dir():
        for name in os.listdir(projects):
            if name.startswith(".") and (".restore-" in name or ".old-" in name):
                mutations.rmtree(projects / name)


def remove_leftover_trees(sr, scope: Scope) -> None:
    """Remove the new and old trees a restore of ``scope`` left beside its live folder,
    and the old trees of the run mode a sweep did not finish (``sweeping``): a tree a
    live sweep still holds is left to it."""
    live = scope_dir(sr.config, scope)
    _remove_trees(sr, live.parent, (f".{live.name}.restore-", f".{live.name}.old-"))
    _remove_trees(sr, *sweeping.place_of(scope_dir(sr.config, Scope.site())))


def _remove_trees(sr, parent: Path, prefixes: str | tuple[str, ...]) -> None:
    if not parent.is_dir():
        return
    parent_fd = open_below(sr.config.data_dir, parent)  # never removes through a link
    try:
        for name in os.listdir(parent_fd):
            if not name.startswith(prefixes):
                continue
            held = sweeping.take(parent_fd, name)
            if held is None and _is_folder(parent_fd, name):
                continue  # a live sweep is removing it
            try:
                mutations.rmtree(name, dir_fd=parent_fd)
            finally:
                held is not None and os.close(held)
    finally:
        os.close(parent_fd)


def _is_folder(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(name, dir_fd=dir_fd).st_mode)
    except FileNotFoundError:
        return False


def _journal_quietly(sr, entry: dict, step: str) -> None:
    """A journal step that may fail (a full disk): the journal on disk still leads a
    recovery to the same end, since undoing is idempotent."""
    try:
        sr.journal.step(entry, step)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not write the restore journal (%s); going on", reason_of(exc))


def quietly(func, *args) -> None:
    """Run ``func(*args)`` as a best effort: a failure is only said in the log."""
    try:
        func(*args)
    except Exception as exc:  # noqa: BLE001 - best effort; said in the log
        log.warning("%s failed: %s", getattr(func, "__name__", func), reason_of(exc))


def reason_of(exc: BaseException | None) -> str:
    """An error in a few words, for a message that names what caused a failure."""
    if exc is None:
        return "unknown"
    if isinstance(exc, Exception) and type(exc).__module__.split(".")[0] in DRIVER_MODULES:
        return describe(exc)  # a database's failure by the one rule, never the driver's dump
    return "interrupted" if isinstance(exc, KeyboardInterrupt) else str(exc) or type(exc).__name__
