"""Restoring a scope, rolling it back, and recovering from a crash.

The sequence, each step journaled (``journal``) before it begins:

1. ``pre-restore``: a backup of the current state is made (atomic by itself).
2. ``records``: the scope's records are replaced by the backup's (``dbdump``).
3. ``files``: the backup's tree is built beside the live folder, unchanged live files
   hard-linked instead of copied (``rebuild.build_tree``), and flushed to disk.
4. ``swap``: two renames put the new tree in place of the live one; what others wrote
   into the live folder since the pre-restore backup read it is moved aside (``rescue``).
5. ``cleanup``: the old tree is removed; then the journal is removed.

If anything fails in steps 2-4, the scope is put back from the pre-restore backup by
the same procedure (step ``rollback``), and the error is raised as ``RestoreFailed``.
If the process dies instead, ``recover`` does the same on the next start: it rolls back
unless the journal reached ``cleanup``, when the restore is complete but for removing
the old tree. Either way the scope ends exactly in the backup's state or exactly in the
state before, never a mix.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import dbrestore, liveindex, mutations, rebuild, rescue
from .errors import CorruptBackup, RestoreFailed
from .manifest import iter_entries, restorable_root_mode
from .nofollow import check_no_links, open_below
from .scopes import Scope, backups_root, project_queries, rescue_dir, scope_dir


def tree_paths(live: Path, backup_id: str) -> tuple[Path, Path]:
    """Where the new tree is built and where the old one goes during the swap."""
    return (live.parent / f".{live.name}.restore-{backup_id}",
            live.parent / f".{live.name}.old-{backup_id}")


def restore(sr, scope: Scope, path: Path, manifest: dict, by: str) -> dict:
    """Steps 1-5 above; ``sr`` is the ``Strongroom`` service (lock held by the caller)."""
    backup_id = manifest["id"]
    check_no_links(sr.config.data_dir, scope_dir(sr.config, scope))  # before anything changes
    entry = sr.journal.start(operation="restore", scope=scope.kind, project=scope.project_id,
                             backup=backup_id, pre_restore=None, by=by, step="pre-restore")
    try:
        pre = sr._make_backup(scope, "pre-restore", f"before restoring {backup_id}", by)
    except BaseException:
        sr.journal.finish()
        raise
    entry["pre_restore"] = pre["id"]
    try:
        result = apply_backup(sr, scope, path, manifest, entry, rescuer=_rescuer(sr, scope, entry))
    except BaseException as exc:
        rescued = roll_back(sr, entry, cause=exc)
        raise RestoreFailed(f"restore of {backup_id} failed ({_reason(exc)}); the {scope} was put back "
                            f"as it was, from backup {pre['id']}{_rescued_words(rescued)}") from exc
    sr.journal.finish()
    return {"restored": backup_id, "pre_restore": pre["id"], **result}


def apply_backup(sr, scope: Scope, path: Path, manifest: dict, entry: dict | None,
                 rescuer: rescue.Rescuer | None = None) -> dict:
    """Make the scope's records and folder equal to the backup's (steps 2-5); ``rescuer``
    keeps what others wrote into the live folder meanwhile (``rescue``)."""
    step = (lambda name: sr.journal.step(entry, name)) if entry else (lambda name: None)
    step("records")
    queries = None if scope.is_site else project_queries(sr.config, scope.project_id)
    names = list(manifest["collections"])
    sr.progress("records", 0, len(names))
    records = dbrestore.restore_collections(sr.database, path / "db" / "bson", names, queries, sr.progress)
    step("files")
    live = scope_dir(sr.config, scope)
    staging, old = tree_paths(live, manifest["id"])
    mutations.makedirs(live.parent)
    index = liveindex.LiveIndexWriter(backups_root(sr.config, scope), sr.store.site_key.get())
    try:
        stats = rebuild.build_tree(iter_entries(path, manifest), path / "files", live, staging,
                                    manifest["files"]["entries"], sr.progress, index=index.add,
                                    root=sr.config.data_dir, top=_top(manifest))
    except BaseException:
        index.abort()
        raise
    # The new tree must be on disk before it replaces the old one: once the journal says
    # "cleanup", recovery keeps it, and the old tree goes.
    mutations.sync_filesystem(staging)
    step("swap")
    rebuild.swap_in(staging, live, old, before_cleanup=lambda: step("cleanup"), root=sr.config.data_dir,
                    inspect_old=rescuer and rescuer.inspect)
    newest = sr.store.ids(scope)
    index.publish(newest[0] if newest else None)
    return {"files": stats.files, "copied": stats.copied, "kept": stats.kept, "hardlinked": stats.hardlinked,
            "bytes_copied": stats.bytes_copied, "records": records, "timings": stats.times.rounded(),
            "warnings": list(getattr(records, "warnings", [])),
            "rescued": rescuer.outcome() if rescuer else rescue.NOTHING}


def _top(manifest: dict) -> dict | None:
    """The scope folder's own mode and time, as a restore may give them (``restorable_root_mode``)."""
    top = manifest["files"].get("root")
    return top and {**top, "mode": restorable_root_mode(top["mode"])}


def _rescuer(sr, scope: Scope, entry: dict) -> rescue.Rescuer | None:
    """What keeps files written by others during the restore: it compares the old tree
    with the pre-restore backup the journal names."""
    pre_id = entry.get("pre_restore")
    if not pre_id:
        return None
    pre_path, pre = sr.store.open(scope, pre_id)
    return rescue.Rescuer(lambda: iter_entries(pre_path, pre), sr.config.data_dir,
                          rescue_dir(sr.config, scope, pre_id))


def _journal_scope(entry: dict) -> Scope:
    """The scope a journal names, validated like any other input."""
    kind = entry.get("scope")
    if kind not in ("site", "project"):
        raise CorruptBackup(f"the restore journal names no valid scope: {kind!r}")
    return Scope.of(entry.get("project") if kind == "project" else None)


def roll_back(sr, entry: dict, cause: BaseException | None = None) -> dict:
    """Put the journal's scope back from its pre-restore backup, then end the journal.

    Returns what was rescued: before the swap the live folder is still the one the
    pre-restore backup read, so what others wrote into it since is kept aside as a
    finished restore would keep it (after the swap the live folder is the backup's).
    """
    scope = _journal_scope(entry)
    pre_id = entry["pre_restore"]
    before_swap = entry.get("step") not in ("swap", "cleanup", "rollback")
    sr.journal.step(entry, "rollback")
    try:
        pre_path, pre = sr.store.open(scope, pre_id)
        result = apply_backup(sr, scope, pre_path, pre, None,
                              rescuer=_rescuer(sr, scope, entry) if before_swap else None)
        rescued = _add(result["rescued"], _rescue_from_old_trees(sr, scope, entry))
        remove_leftover_trees(sr, scope)
    except BaseException as exc:
        what = f"restore of {entry['backup']} failed ({_reason(cause)}) and so did" if cause else "recovery failed"
        project = f" --project {scope.project_id}" if scope.project_id else ""
        raise RestoreFailed(
            f"{what} putting the {scope} back ({_reason(exc)}); the state before the restore is safe "
            f"in backup {pre_id}: run `strongroom recover` or `strongroom restore {pre_id}{project}`"
        ) from exc
    sr.journal.finish()
    return rescued


def _rescue_from_old_trees(sr, scope: Scope, entry: dict) -> dict:
    """A restore cut short after its swap, before it had moved aside what others wrote,
    left that in its old tree: keep it before the leftover trees go. (That tree is the
    live folder the pre-restore backup read, so the same comparison holds.)"""
    live = scope_dir(sr.config, scope)
    old = tree_paths(live, entry["backup"])[1]
    if not os.path.lexists(old):
        return rescue.NOTHING
    rescuer = _rescuer(sr, scope, entry)
    parent_fd = open_below(sr.config.data_dir, live.parent)
    try:
        rescuer.inspect(parent_fd, old.name, live.name)
    finally:
        os.close(parent_fd)
    return rescuer.outcome()


def _add(one: dict, other: dict) -> dict:
    """Two rescues into the same place, counted as one."""
    if not other["count"]:
        return one
    if not one["count"]:
        return other
    return {"count": one["count"] + other["count"], "bytes": one["bytes"] + other["bytes"],
            "place": one["place"], "paths": (one["paths"] + other["paths"])[:rescue.SHOWN]}


def _rescued_words(rescued: dict) -> str:
    if not rescued.get("count"):
        return ""
    return f"; {rescued['count']} files written by others meanwhile were kept in {rescued['place']}"


def recover(sr) -> dict | None:
    """Finish or roll back a restore interrupted by a crash (lock held by the caller)."""
    entry = sr.journal.read()
    if entry is None:
        return None
    scope = _journal_scope(entry)
    step = entry.get("step")
    if step == "pre-restore" or not entry.get("pre_restore"):
        outcome = "nothing had changed yet"
        remove_leftover_trees(sr, scope)
        sr.journal.finish()
    elif step == "cleanup":
        outcome = f"completed the restore of {entry['backup']}"
        remove_leftover_trees(sr, scope)
        sr.journal.finish()
    else:
        outcome = f"rolled back to {entry['pre_restore']}, the state before the restore"
        outcome += _rescued_words(roll_back(sr, entry))
    return {**entry, "outcome": outcome}


def remove_leftover_trees(sr, scope: Scope) -> None:
    live = scope_dir(sr.config, scope)
    if not live.parent.is_dir():
        return
    prefixes = (f".{live.name}.restore-", f".{live.name}.old-")
    parent_fd = open_below(sr.config.data_dir, live.parent)  # never removes through a link
    try:
        for name in os.listdir(parent_fd):
            if name.startswith(prefixes):
                mutations.rmtree(name, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def _reason(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    return str(exc) or type(exc).__name__
