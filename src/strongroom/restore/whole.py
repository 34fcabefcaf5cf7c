"""Restoring a scope whole from one of its backups, and what that would change.

The order is the safety (``docs/guarantees.md``): the backup is checked against its
signed manifest in one pass over its file list, and in that same pass the live folder is
compared with it (``matching``); a scope that already is the backup's state is left
alone, with no pre-restore backup. Otherwise the room is checked (``preflight``), then
``restoring.restore`` saves the current state, builds the backup's tree beside the live
one, swaps it in and loads the records, rolling back on any failure. The caller holds
the operation lock and has recovered any interrupted restore first (``service``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from time import perf_counter

from strongroom.backup.backing_up import phases
from strongroom.check import verifying
from strongroom.db import linking
from strongroom.errors import CorruptBackup
from strongroom.fs.nofollow import check_no_links
from strongroom.inspect import preview
from strongroom.progress_model import announce, marked, restore_plan
from strongroom.repo.checkedlist import CheckedList
from strongroom.repo.manifest import iter_entries
from strongroom.restore import matching, preflight, restoring, sources
from strongroom.scopes import Scope, scope_dir

log = logging.getLogger("strongroom")


def restore_whole(sr, scope: Scope, backup_id: str, by: str) -> dict:
    """Put the scope back to the backup's state, after saving the current one
    (``Strongroom.restore_backup`` gives the result's keys)."""
    started = perf_counter()
    path, manifest = sr.store.open(scope, backup_id)
    announce(sr.progress, restore_plan(manifest))
    sr.progress("checking", 0, manifest["files"]["entries"])
    listing = CheckedList(path, manifest)  # read and checked once, for the check and the build
    source = sources.whole(path, manifest, listing)
    # On a disk not clearly roomy, the pre-flight counts the files in the check's own pass
    count = preflight.RestoreCount(sr, scope, path) if preflight.counts_files(sr, scope, manifest) else None
    unchanged = check_or_match(sr, scope, path, manifest, listing, source, count)
    if not unchanged:
        preflight.check_restore(sr, scope, path, manifest, listing.entries, count)
    sr.progress("checking", manifest["files"]["entries"], manifest["files"]["entries"])
    checked = perf_counter() - started
    if unchanged:
        result = restoring.nothing_to_do(source, manifest)  # nothing to change, nothing to save first
    else:
        make_pre_restore = lambda: sr.make_pre_restore(scope, backup_id, by, path)
        result = restoring.restore(sr, scope, path, manifest, by, make_pre_restore, lambda pre_path, pre: source)
    result["timings"] = {"check": round(checked, 4), **result.get("timings", {}),
                         "total": round(perf_counter() - started, 4)}
    log.info("restore of %s of the %s: %d files, %d copied, %d kept; %s", backup_id, scope,
             result["files"], result["copied"], result["kept"], phases(result["timings"]))
    return result


def check_or_match(sr, scope: Scope, path: Path, manifest: dict, listing: CheckedList,
                   source: sources.Source, count: preflight.RestoreCount | None = None) -> bool:
    """The check before a restore (``verifying.check_before_restore``; ``CorruptBackup``
    if it fails) and, in the same pass over the file list, whether the scope already
    is the backup's state (``matching``), and the pre-flight's ``count`` if given."""
    live = scope_dir(sr.config, scope)
    check_no_links(sr.config.data_dir, live)
    compare = matching.may_match(live, source)
    matcher = matching.FilesMatcher(live, count, compare) if compare or count is not None else None
    try:
        problems = verifying.check_before_restore(path, manifest, listing, each=matcher and matcher.see)
        files_match = matcher is not None and matcher.matched()
    finally:
        matcher and matcher.close()
    if problems:
        raise marked(CorruptBackup(f"refusing to restore {manifest['id']}: it fails verification: "
                                   f"{problems[0]}"), "refused")
    return files_match and matching.records_match(
        sr.database, source, linking.replaced_queries(sr.config, scope, sr.database, source.bson_dir))


def preview_whole(sr, scope: Scope, backup_id: str) -> dict:
    """What ``restore_whole`` would change, changing nothing (``Strongroom.preview_restore``).
    ``changes_nothing`` when the scope already is the backup's state as the restore itself
    would find it (``matching``); ``changes_only_metadata`` when no file, folder, link or
    record differs, yet the restore would still set back folder modes or times, or the
    collections' options or indexes (so it would run, saving the current state first)."""
    path, manifest = sr.store.open(scope, backup_id)
    queries = linking.replaced_queries(sr.config, scope, sr.database, path / "db" / "bson")
    report = {
        "backup": backup_id, "scope": scope.kind, "project": scope.project_id,
        **preview.diff_files(scope_dir(sr.config, scope), iter_entries(path, manifest)),
        "records": preview.diff_records(sr.database, path / "db" / "bson", list(manifest["collections"]), queries),
    }
    counted_nothing = preview.changes_nothing(report)
    nothing = counted_nothing and matching.already_is(scope_dir(sr.config, scope), sources.whole(path, manifest),
                                                      sr.database, queries)
    return {**report, "changes_nothing": nothing, "changes_only_metadata": counted_nothing and not nothing}
