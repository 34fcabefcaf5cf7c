"""Restoring a scope, rolling it back, and recovering from a crash.

Build and check first, then switch. The sequence, each step journaled (``journal``)
before it begins:

0. A reserve of disk space is made for the rollback (``space.Reserve``); without it the
   restore is refused before anything changes. When records are to be replaced, the
   embedded database's gate is probed first (a reader that keeps it refuses the restore
   here, before anything is saved).
1. ``pre-restore``: a backup of the current state is made (atomic by itself), and the
   reserve grown to what rolling the records back could need.
2. ``files``: the backup's tree is built beside the live folder, unchanged live files
   hard-linked, every other file copied from its pool object, and the copy hashed
   (small files on the way, large ones read back from the new file after a kernel
   copy: ``rebuild.build_tree``, ``restorecopy``), then flushed to disk. Its entries are those the check
   before the restore accepted (``Plan``: for a whole restore the caller passes the
   file list it checked, ``checkedlist``; a list above 32 MB is read and checked again). Nothing live has changed yet: a
   damaged object, a full disk or any other failure here only removes the new tree.
3. ``records``: the scope's records are replaced by the backup's (``dbrestore``); for the
   site, but for the collections the pre-restore backup proved to hold the backup's
   already (``matching.proven_unchanged``), which are left as they are.
4. ``swap``: two renames put the new tree in place of the live one, which is kept
   whole beside it (``.<name>.old-<id>``) until the next step; what others wrote into
   the live folder since the pre-restore backup read it is moved aside (``rescue``).
5. ``cleanup``: the restore is complete; the old tree is handed to a sweep (``sweeping``):
   renamed out of every scope's folder and removed by a detached process after the
   restore returns (its disk space is freed a moment later; if the sweep dies, the next
   operation removes the rest). Then the live index (``liveindex``) is written so the
   next backup need not read every file, and the journal removed.

If anything fails in steps 3-4 (a full disk, an I/O error, a database error, a signal),
the restore is undone at once (step ``rollback``): the new tree is removed, which frees
space, the reserve is released, the old tree is renamed back if it was moved, and the
records are put back from the pre-restore backup. Nothing in that needs space the
restore did not hold: renames and removals free space, and the records' room was
reserved. A journal write that fails does not stop it (the journal already says enough
to do the same again). A restore refused or undone before anything live changed
deletes its pre-restore backup again: it holds the live state as it still is. If the
process dies instead, ``recover`` does the same on the
next start (``recovering``). Either way the scope ends exactly in the backup's state or
exactly in the state before, never a mix.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from strongroom.db import dbrestore, docfilter, linking
from strongroom.errors import (
    BackupFailed,
    Busy,
    CorruptBackup,
    LeaseLost,
    NoSpace,
    RestoreFailed,
    StrongroomError,
)
from strongroom.fs import mutations, space, sweeping
from strongroom.fs.nofollow import check_no_links, open_below
from strongroom.progress_model import marked, nested, past_no_return
from strongroom.repo import fencing, liveindex
from strongroom.repo.manifest import iter_entries
from strongroom.restore import matching, rebuild, rescue, sources
from strongroom.restore.recovering import CHANGED_STEPS, tree_paths, undo
from strongroom.restore.recovering import quietly as _quietly
from strongroom.restore.recovering import reason_of as _reason
from strongroom.scopes import Scope, backups_root, in_model_order, rescue_dir, scope_dir

log = logging.getLogger("strongroom")

Plan = Callable[[Path, dict], sources.Source]  # (pre-restore path, manifest) -> what to put back


def restore(sr, scope: Scope, path: Path, manifest: dict, by: str,
            make_pre_restore: Callable[[], dict], plan: Plan | None = None, replaces_records: bool = True) -> dict:
    """Steps 0-5 above; ``sr`` is the ``Strongroom`` service (lock held by the caller).

    ``make_pre_restore()`` makes the pre-restore backup and returns its manifest.
    ``plan(pre_path, pre)``, given that backup, says what to put back (``sources``);
    by default the backup at ``path``, whole. A plan without records leaves them as
    they are, and so does its rollback (the journal says ``"records": false``).
    ``replaces_records``: the plan will replace records, so the embedded database's gate
    is probed before anything is saved (a reader that keeps it refuses the restore then,
    not after the pre-restore backup was made).
    """
    check_no_links(sr.config.data_dir, scope_dir(sr.config, scope))  # before anything changes
    if replaces_records and manifest.get("collections"):
        try:
            dbrestore.probe_replacing(sr.database)
        except Busy as exc:  # after the bound, naming the holder
            raise marked(Busy(f"restore of {manifest['id']} refused before anything was saved or changed: {exc}"),
                         "refused") from exc
    plan = plan or (lambda pre_path, pre: sources.whole(path, manifest))
    reserve = space.Reserve(sr.config.backups_dir)
    _reserve(reserve, space.RESERVE_BASE, manifest["id"])
    try:
        return _restore_reserved(sr, scope, manifest["id"], by, make_pre_restore, plan, reserve)
    finally:
        reserve.release()


def _restore_reserved(sr, scope: Scope, backup_id: str, by: str, make_pre_restore, plan: Plan,
                      reserve: space.Reserve) -> dict:
    try:
        entry = sr.journal.start(operation="restore", scope=scope.kind, project=scope.project_id,
                                 backup=backup_id, pre_restore=None, by=by, step="pre-restore",
                                 job=getattr(sr, "job", None))
    except Exception as exc:
        error = NoSpace if space.is_out_of_space(exc) else RestoreFailed
        raise marked(error(f"restore of {backup_id} refused: its journal could not be written ({_reason(exc)}); "
                           "nothing was changed"), "refused") from exc
    pre = None
    try:
        try:
            with nested(sr.progress, "saving"):
                pre = make_pre_restore()
        except Exception as exc:
            error = marked(_not_saved(backup_id, exc), "refused")
            if error is exc:
                raise
            raise error from exc
        _reserve(reserve, space.RESERVE_BASE + records_room(sr, pre), backup_id)
    except BaseException as exc:
        if not isinstance(exc, LeaseLost):
            _quietly(sr.journal.finish)
            if pre is not None:  # refused after saving: the saved state is the live one, unchanged
                _drop_pre_restore(sr, scope, pre["id"])
        raise
    entry["pre_restore"] = pre["id"]
    rescuer = _rescuer(sr, scope, entry)
    try:
        saved = sr.store.open(scope, pre["id"])
        source = plan(*saved)
        entry["records"] = source.bson_dir is not None
        result = build_and_switch(sr, scope, source, entry, rescuer=rescuer, pre=saved)
    except BaseException as exc:
        if isinstance(exc, LeaseLost):  # another process took over: it recovers; this one touches nothing
            raise
        if entry["step"] == "cleanup":  # complete: only the old tree's removal was cut short
            _quietly(sr.journal.finish)
            raise
        changed = entry["step"] in CHANGED_STEPS
        undo(sr, entry, cause=exc, reserve=reserve)
        kept = changed or not _drop_pre_restore(sr, scope, pre["id"])  # nothing changed: nothing to keep
        what = (f"; the {scope} was put back as it was, from backup {pre['id']}" if changed else
                f" before anything live changed; the {scope} is as it was"
                + (f" (also saved as backup {pre['id']})" if kept else ""))
        error = (Busy if isinstance(exc, Busy) and not changed else  # a holder past the bound: busy (exit 4)
                 CorruptBackup if isinstance(exc, CorruptBackup) else RestoreFailed)
        what += _rescued_words(rescuer.outcome() if rescuer else rescue.NOTHING)
        raise marked(error(f"restore of {backup_id} failed ({_reason(exc)}){what}"), "rolled back") from exc
    _quietly(sr.journal.finish)
    return {"restored": backup_id, "pre_restore": pre["id"], "unchanged": False, **result}


def _drop_pre_restore(sr, scope: Scope, pre_id: str) -> bool:
    """Delete the pre-restore backup of a restore refused before anything live changed:
    it holds the live state as it still is, and would stand in the list as a restore that
    never happened. True if it is gone; a failure to delete it is only logged (it is a
    sound backup all the same)."""
    try:
        sr.store.delete(scope, pre_id)
    except Exception as exc:  # noqa: BLE001 - the refusal, not this, is the outcome
        log.warning("could not delete the pre-restore backup %s of a refused restore (%s)", pre_id, _reason(exc))
        return False
    return True


def nothing_to_do(source: sources.Source, manifest: dict) -> dict:
    """The outcome of a restore onto a scope that already is the backup's state
    (``matching``): nothing changed, so no pre-restore backup was needed."""
    files = manifest["files"]
    hardlinked = files.get("hardlinks", 0)
    return {"restored": source.backup_id, "pre_restore": None, "unchanged": True, "files": files["count"],
            "copied": 0, "kept": files["count"] - hardlinked, "hardlinked": hardlinked, "bytes_copied": 0,
            "records": {name: manifest["collections"][name]["count"] for name in source.collections},
            "records_kept": {name: manifest["collections"][name]["count"] for name in source.collections},
            "warnings": [], "rescued": dict(rescue.NOTHING)}


def _rescued_words(rescued: dict) -> str:
    """For a failure message: files the rescue had already moved aside stay there."""
    if not rescued.get("count"):
        return ""
    return f"; {rescued['count']} files written by others meanwhile were kept in {rescued['place']}"


def _reserve(reserve: space.Reserve, size: int, backup_id: str) -> None:
    """Grow the reserve, or refuse the restore saying that nothing changed."""
    try:
        reserve.grow(size, f"restore of {backup_id}")
    except NoSpace:
        raise
    except Exception as exc:
        raise marked(RestoreFailed(f"restore of {backup_id} refused: no space could be reserved for a rollback "
                                   f"({_reason(exc)}); nothing was changed"), "refused") from exc


def _not_saved(backup_id: str, exc: Exception) -> Exception:
    """The error for a pre-restore backup that could not be made: nothing changed."""
    if isinstance(exc, StrongroomError) and not isinstance(exc, (NoSpace, BackupFailed)):
        return exc
    error = NoSpace if space.is_out_of_space(exc) else RestoreFailed
    reason = _reason(exc.__cause__ if isinstance(exc, (NoSpace, BackupFailed)) and exc.__cause__ else exc)
    return error(f"restore of {backup_id} refused: the current state could not be saved first ({reason}); "
                 "nothing was changed")


def records_room(sr, pre: dict) -> int:
    """Space that putting ``pre``'s records back could take on this file system: twice
    their size (log and database file) when the embedded database lives here, else 0."""
    if not sr.config.embedded or not space.same_file_system(sr.config.embedded_db_dir, sr.config.backups_dir):
        return 0
    return 2 * sum(info.get("bytes", 0) for info in pre.get("collections", {}).values())


def build_and_switch(sr, scope: Scope, source: sources.Source, entry: dict,
                     rescuer: rescue.Rescuer | None = None, pre: tuple[Path, dict] | None = None) -> dict:
    """Steps 2-5: build and check the new tree, replace the records (if ``source`` has
    any), swap the tree in; ``rescuer`` keeps what others wrote into the live folder
    meanwhile (``rescue``). ``pre``: the folder and manifest of the pre-restore backup
    this restore made: its dump may prove collections unchanged, and holds the live
    records as the replacement finds them (``_restore_records``)."""
    step = lambda name: sr.journal.step(entry, name)
    kept = matching.proven_unchanged(source, *pre) if pre is not None and scope.is_site else {}
    untouched = None
    if source.bson_dir is not None and kept and set(kept) == set(source.collections) == set(pre[1]["collections"]):
        entry["records"] = False  # every collection already is the backup's: the journal says no
        untouched = dbrestore.Restored(kept, kept=kept)  # record changes, and a rollback leaves them
    step("files")
    live = scope_dir(sr.config, scope)
    staging, old = tree_paths(live, source.backup_id)
    mutations.rmtree(old)  # a leftover: during "swap" an old tree must be this restore's
    mutations.makedirs(live.parent)
    index = liveindex.LiveIndexWriter(backups_root(sr.config, scope), sr.store.site_key.get())
    try:
        stats = rebuild.build_tree(source.entries(), source.files_dir, live, staging, source.total,
                                   sr.progress, index=index.add, root=sr.config.data_dir, top=source.top,
                                   more_files=source.more_files, counted=source.counted)
        # The new tree must be on disk before anything live changes: once the journal
        # says "cleanup", recovery keeps it, and the old tree goes.
        sr.progress("flushing", 0, stats.bytes_copied)
        mutations.sync_filesystem(staging)
        sr.progress("flushing", stats.bytes_copied, stats.bytes_copied)
        records = untouched or dbrestore.Restored()
        if source.bson_dir is not None and untouched is None:
            dbrestore.probe_replacing(sr.database)  # a reader that never lets go: fail now, nothing changed
            step("records")
            records = _restore_records(sr, scope, source, kept, pre)
        step("swap")
        fencing.check("swap")
        sr.progress("switching", 0, 1)
        rebuild.swap_in(staging, live, old, before_cleanup=lambda: _no_return(sr, step), root=sr.config.data_dir,
                        inspect_old=rescuer and rescuer.inspect,
                        dispose_old=lambda parent_fd, name: _hand_over(sr, parent_fd, name))
        sr.progress("switching", 1, 1)
    except BaseException as exc:
        if entry["step"] != "cleanup":
            _quietly(index.abort)
            raise
        log.warning("restore of %s: could not remove the old tree %s (%s); the next operation will",
                    source.backup_id, old, _reason(exc))
    _publish_index(sr, scope, index)
    return {"files": stats.files, "copied": stats.copied, "kept": stats.kept, "hardlinked": stats.hardlinked,
            "bytes_copied": stats.bytes_copied, "records": records,
            "records_kept": dict(getattr(records, "kept", {})), "timings": stats.times.rounded(),
            "warnings": list(getattr(records, "warnings", [])),
            "rescued": rescuer.outcome() if rescuer else rescue.NOTHING}


def _no_return(sr, step) -> None:
    """The point of no return: the new tree is in place; once the journal says
    "cleanup" the restore completes. The face is told first (``past_no_return``), so
    that a signal from here on lets it finish rather than report it stopped."""
    past_no_return(sr.progress)
    step("cleanup")


def _restore_records(sr, scope: Scope, source: sources.Source, kept: dict[str, int],
                     pre: tuple[Path, dict] | None) -> dbrestore.Restored:
    """Replace the scope's records by the source's: what the live ids and the dump's select
    (``linking``), in the model's order; from a dump holding more, what its own ids select.
    For the whole site, the collections ``kept``, which the pre-restore backup ``pre``
    proved to hold the source's records already, are left as they are
    (``matching.proven_unchanged``); for a project, the live records of the collections
    that backup holds as selected are taken from it (``linking.saved_alike``)."""
    queries = linking.replaced_queries(sr.config, scope, sr.database, source.bson_dir, filtered=source.filtered)
    selects = docfilter.dump_queries(sr.config, scope.project_id, source.bson_dir) if source.filtered else None
    names = in_model_order(sr.config, source.collections)
    sr.progress("loading", 0, source.records - sum(kept.values()))
    return dbrestore.restore_collections(sr.database, source.bson_dir, names, queries, sr.progress,
                                         selects=selects, kept=kept,
                                         saved=linking.saved_alike(sr.config, scope, pre and pre[0] / "db" / "bson"))


def _hand_over(sr, parent_fd: int, name: str) -> None:
    """Give the old tree ``name`` (beside the live folder) to a sweep (``sweeping``)."""
    place, prefix = sweeping.place_of(scope_dir(sr.config, Scope.site()))
    place_fd = open_below(sr.config.data_dir, place)
    try:
        sweeping.hand_over(parent_fd, name, place_fd, prefix)
    finally:
        os.close(place_fd)


def _rescuer(sr, scope: Scope, entry: dict) -> rescue.Rescuer | None:
    """What keeps files written by others during the restore: it compares the old tree
    with the pre-restore backup the journal names. (Undoing a restore before its swap
    needs none: the live folder, with whatever others wrote, was never moved; after the
    swap the old tree is renamed back whole.)"""
    pre_id = entry.get("pre_restore")
    if not pre_id:
        return None
    pre_path, pre = sr.store.open(scope, pre_id)
    return rescue.Rescuer(lambda: iter_entries(pre_path, pre), sr.config.backups_anchor,
                          rescue_dir(sr.config, scope, pre_id))


def _publish_index(sr, scope: Scope, index: liveindex.LiveIndexWriter) -> None:
    """The live index only saves the next backup work: failing to write it is no failure."""
    newest = sr.store.ids(scope)
    try:
        index.publish(newest[0] if newest else None)
    except Exception as exc:  # noqa: BLE001 - e.g. a full disk after the restore is complete
        log.warning("could not write the live index (%s); the next backup reads every file", _reason(exc))
        _quietly(index.abort)
