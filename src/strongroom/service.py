"""The use cases: make, list, show, restore, delete, verify, prune and import backups of a scope.

``Strongroom`` is the one object the CLI and the web talk to. It resolves and validates
the scope, takes the operation lock, checks for room (``preflight``), and hands the work
to the operations: ``backing_up``, ``restoring``, ``verifying`` (with ``repairing``),
``preview``, ``pruning`` and ``importing``, over ``store`` for the backup folders. It never prints: progress goes to the callback
``progress(step, done, total)`` given at construction, results are returned as plain
data, failures raised as the typed errors of ``errors``.

A restore first checks the backup (``verifying``), then makes a ``pre-restore`` backup of the current
state; if anything fails after that, the scope is put back from that backup before the
error is raised.
"""

from __future__ import annotations

import getpass
import logging
import os
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

from bson import ObjectId

from . import (
    backing_up,
    importing,
    preflight,
    preview,
    privacy,
    pruning,
    recovering,
    restoring,
    verifying,
)
from .backing_up import phases
from .config import Config
from .engines import database_exists, list_collections, open_database
from .errors import BadInput, Busy, CorruptBackup, LinkedFolder, NotFound
from .ids import validate_backup_id
from .journal import Journal
from .locking import OperationLock, is_locked
from .manifest import REASONS, iter_entries, summary
from .nofollow import check_no_links
from .pruning import RetentionPolicy
from .scopes import Scope, backups_root, record_queries, scope_dir, scope_name
from .snapshot import CHANGED_FILES
from .store import BackupStore

log = logging.getLogger("strongroom")


class Strongroom:
    def __init__(self, config: Config, database=None, progress=None, clock=None):
        self.config = config
        # The time new backups are named and stamped with; tests inject a clock that jumps.
        self.clock = clock or (lambda: datetime.now(UTC))
        self._database = database
        self.store = BackupStore(config)
        self.journal = Journal(config.backups_dir / ".journal.json")
        self.progress = progress or (lambda step, done, total: None)

    @property
    def database(self):
        if self._database is None:
            self._database = open_database(self.config)
        return self._database

    @property
    def lock_path(self) -> Path:
        return self.config.backups_dir / ".lock"

    def busy(self) -> dict | None:
        """Who holds the operation lock now, or None."""
        return is_locked(self.lock_path)

    # -- scopes ---------------------------------------------------------------------

    def scope(self, project_id: str | None = None, *, in_database: bool = True) -> Scope:
        """The validated scope. A project must exist in the database, or (with
        ``in_database=False``, for restoring a deleted project) have backups."""
        scope = Scope.of(project_id)
        if scope.is_site or (not in_database and self.store.ids(scope)):
            return scope  # having backups is enough, and reading them needs no database
        if not database_exists(self.config):  # asking would make it: say no, as it holds nothing
            raise NotFound(f"no project {scope.project_id}: the {self.config.mode} database does not exist")
        found = self.database[self.config.model.project_collection].find_one(
            {"_id": ObjectId(scope.project_id)}, {"_id": 1}
        )
        if found is None and (in_database or not self.store.ids(scope)):
            raise NotFound(f"no project {scope.project_id}")
        return scope

    def scope_name(self, project_id: str | None = None) -> str:
        """``the whole site`` or ``project “Title”`` (``scopes.scope_name``); asking makes no
        embedded database."""
        database = self.database if database_exists(self.config) else None
        return scope_name(self.config, database, Scope.of(project_id))

    def _existing(self, backup_id: str, project_id: str | None) -> Scope:
        """The scope, once it is known that the backup exists (checked before any lock)."""
        scope = self.scope(project_id, in_database=False)
        if not self.store.exists(scope, backup_id):
            raise NotFound(f"no backup {backup_id} of {self.scope_name(scope.project_id)}")
        self.store.refuse_links(scope, backup_id)  # before the lock is written, in backups/
        return scope

    def _lock(self, operation: str, by: str | None) -> OperationLock:
        privacy.ensure_folders(self.config)  # first use: made private before anything goes in
        return OperationLock(self.lock_path, operation, by)

    # -- reading --------------------------------------------------------------------

    def list_backups(self, project_id: str | None = None) -> list[dict]:
        """Summaries of the scope's complete backups, newest first."""
        scope = self.scope(project_id, in_database=False)
        found = []
        for backup_id in self.store.ids(scope):
            try:
                found.append(summary(self.store.open(scope, backup_id)[1]))
            except (CorruptBackup, LinkedFolder):
                continue  # ``verify --all`` reports it
        return found

    def show_backup(self, backup_id: str, project_id: str | None = None) -> dict:
        """The summary of one backup plus its manifest's details."""
        validate_backup_id(backup_id)
        scope = self.scope(project_id, in_database=False)
        _, manifest = self.store.open(scope, backup_id)
        return {**summary(manifest), "manifest": manifest}

    # -- making ---------------------------------------------------------------------

    def make_backup(self, project_id: str | None = None, *, note: str = "",
                    reason: str = "manual", by: str | None = None, changed_files: str = "warn") -> dict:
        """Back up the scope; return the new backup's summary (its ``warnings`` name the
        files skipped or stored while they changed).

        ``changed_files``: a file that keeps changing while it is read is stored as last
        read with a warning (``"warn"``) or fails the backup (``"fail"``).
        """
        if reason not in REASONS:
            raise BadInput(f"reason must be one of {', '.join(REASONS)}, not {reason!r}")
        if changed_files not in CHANGED_FILES:
            raise BadInput(f"changed_files must be one of {', '.join(CHANGED_FILES)}, not {changed_files!r}")
        scope = self.scope(project_id)
        self._refuse_nothing_there(scope)
        check_no_links(self.config.data_dir, backups_root(self.config, scope))  # before the lock is written
        by = by or _default_user()
        with self._lock("backup", by):
            self._recover_locked()
            preflight.check_backup(self, scope)
            return summary(self._make_backup(scope, reason, note, by, changed_files))

    def _refuse_nothing_there(self, scope: Scope) -> None:
        """``NotFound`` for a site with neither a working dir nor a record: a mistyped data
        dir or run mode would otherwise make an empty backup and report success (a cron job
        would never say it backs up nothing)."""
        working = scope_dir(self.config, scope)
        if scope.is_site and not os.path.lexists(working) and not self._holds_records():
            raise NotFound(f"nothing to back up: the working dir {working} does not exist and the "
                           f"{self.config.mode} database holds no records (a wrong data dir or run mode?)")

    def _holds_records(self) -> bool:
        return database_exists(self.config) and bool(list_collections(self.database))

    def _make_backup(self, scope: Scope, reason: str, note: str, by: str, changed_files: str = "warn") -> dict:
        return backing_up.make_backup(self, scope, reason, note, by, changed_files=changed_files)

    # -- importing ------------------------------------------------------------------

    def import_backup(self, source: str | os.PathLike, project_id: str | None = None, *,
                      files: str | os.PathLike | None = None, note: str = "", by: str | None = None) -> dict:
        """Take in a backup made by others (``importing``) as a new backup of the site or
        of a project, with reason ``import``; return its summary."""
        scope = Scope.of(project_id)
        by = by or _default_user()
        with self._lock("import", by):
            self._recover_locked()
            made = importing.import_folder(self, scope, Path(source), files and Path(files), note, by)
            return summary(made)

    def import_original_tree(self, data_dir: str | os.PathLike, *, by: str | None = None) -> dict:
        """Take in every backup of this run mode in an original data dir, oldest first,
        leaving out those imported before. ``{"imported": [summaries], "skipped": [names]}``."""
        by = by or _default_user()
        imported, skipped = [], []
        with self._lock("import", by):
            self._recover_locked()
            for scope, folder in importing.original_tree(Path(data_dir), self.config.mode):
                if folder.name in importing.imported_names(self.store, scope):
                    skipped.append(f"{scope}: {folder.name}")
                    continue
                imported.append(summary(importing.import_folder(self, scope, folder, None, "", by)))
        return {"imported": imported, "skipped": skipped}

    # -- restoring ------------------------------------------------------------------

    def restore_backup(self, backup_id: str, project_id: str | None = None, *, by: str | None = None) -> dict:
        """Put the scope back to the backup's state, after saving the current one.

        Returns ``{"restored", "pre_restore", "files", "copied", "kept", "hardlinked",
        "bytes_copied", "records", "rescued": {"count", "bytes", "place", "paths"}}``
        (``rescued``: what others wrote into the live folder meanwhile, moved to
        ``place``); raises ``RestoreFailed`` (after rolling back) if it fails part-way,
        ``LinkedFolder`` before any change if the scope's folder or a parent is a link.
        """
        validate_backup_id(backup_id)
        scope = self._existing(backup_id, project_id)
        by = by or _default_user()
        with self._lock("restore", by):
            self._recover_locked()
            started = perf_counter()
            path, manifest = self.store.open(scope, backup_id)
            problems = verifying.check_before_restore(path, manifest)
            if problems:
                raise CorruptBackup(f"refusing to restore {backup_id}: it fails verification: {problems[0]}")
            preflight.check_restore(self, scope, path, manifest)
            checked = perf_counter() - started
            make_pre_restore = lambda: self._make_backup(scope, "pre-restore", f"before restoring {backup_id}", by)
            result = restoring.restore(self, scope, path, manifest, by, make_pre_restore)
            result["timings"] = {"check": round(checked, 4), **result.get("timings", {}),
                                 "total": round(perf_counter() - started, 4)}
            log.info("restore of %s of the %s: %d files, %d copied, %d kept; %s", backup_id, scope,
                     result["files"], result["copied"], result["kept"], phases(result["timings"]))
            return result

    def preview_restore(self, backup_id: str, project_id: str | None = None) -> dict:
        """What ``restore_backup`` would change, changing nothing (a dry run).

        ``{"backup", "scope", "project", "files": {"added"|"removed"|"changed": {"count",
        "bytes", "paths"}, "unchanged"}, "records": {coll: {"added", "removed", "changed",
        "unchanged"}}}``.
        """
        validate_backup_id(backup_id)
        scope = self._existing(backup_id, project_id)
        path, manifest = self.store.open(scope, backup_id)
        queries = record_queries(self.config, scope)
        return {
            "backup": backup_id, "scope": scope.kind, "project": scope.project_id,
            "files": preview.diff_files(scope_dir(self.config, scope), iter_entries(path, manifest)),
            "records": preview.diff_records(self.database, path / "db" / "bson", list(manifest["collections"]), queries),
        }

    def maintenance(self) -> dict | None:
        """What a running (or crashed, not yet recovered) restore is doing, or None.

        While this is not None the scope it names may be in a mixed state: the web face
        refuses writes with 503 and shows a notice.
        """
        return self.journal.read()

    def recover(self, by: str | None = None) -> dict | None:
        """Finish or roll back an interrupted restore; clean what a crash left behind.

        Returns the journal with an ``outcome`` if there was a restore to recover.
        """
        with self._lock("recover", by or _default_user()):
            return self._recover_locked()

    def recover_if_needed(self) -> dict | None:
        """``recover`` when a crash left work behind and nobody holds the lock; else None."""
        if self.journal.read() is None or self.busy():
            return None
        try:
            return self.recover()
        except Busy:
            return None

    def _recover_locked(self) -> dict | None:
        outcome = recovering.recover(self)
        self.store.clean_leftovers()
        return outcome

    # -- deleting and verifying -----------------------------------------------------

    def delete_backup(self, backup_id: str, project_id: str | None = None, *, by: str | None = None) -> dict:
        validate_backup_id(backup_id)
        scope = self._existing(backup_id, project_id)
        with self._lock("delete", by or _default_user()):
            self._recover_locked()
            objects, freed = self.store.delete(scope, backup_id)
        return {"deleted": backup_id, "objects_freed": objects, "bytes_freed": freed}

    def prune_backups(self, policy: RetentionPolicy, project_id: str | None = None, *,
                      dry_run: bool = False, by: str | None = None) -> dict:
        """Delete the scope's backups that ``policy`` does not keep, and the content only
        they used. ``{"kept": [ids], "deleted": [ids], "objects_freed", "bytes_freed"}``."""
        scope = self.scope(project_id, in_database=False)
        with self._lock("prune", by or _default_user()):
            self._recover_locked()
            ids = self.store.ids(scope)
            kept = pruning.backups_to_keep(ids, policy, self.store.sequences(scope))
            doomed = [backup_id for backup_id in ids if backup_id not in kept]
            objects = freed = 0
            for done, backup_id in enumerate([] if dry_run else doomed, 1):
                self.progress("prune", done, len(doomed))
                more_objects, more_bytes = self.store.delete(scope, backup_id)
                objects, freed = objects + more_objects, freed + more_bytes
        return {"kept": [i for i in ids if i in kept], "deleted": doomed,
                "objects_freed": objects, "bytes_freed": freed, "dry_run": dry_run}

    def verify_backup(self, backup_id: str, project_id: str | None = None, *, repair: bool = False,
                      sign_unsigned: bool = False) -> dict:
        """Re-hash every file and dump of the backup, and check its signature and folder.

        ``{"id", "ok", "problems", "signed", "fixed", "repaired", "notes"}``; see
        ``verifying.verify_backup`` for ``repair`` and ``sign_unsigned``.
        """
        validate_backup_id(backup_id)
        scope = self._existing(backup_id, project_id)
        with self._lock("verify", _default_user()):
            return verifying.verify_backup(self, scope, backup_id, repair=repair, sign_unsigned=sign_unsigned)

    def verify_all(self, project_id: str | None = None, *, repair: bool = False,
                   sign_unsigned: bool = False) -> list[dict]:
        scope = self.scope(project_id, in_database=False)
        return [self.verify_backup(backup_id, project_id, repair=repair, sign_unsigned=sign_unsigned)
                for backup_id in self.store.ids(scope)]


def _default_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"

