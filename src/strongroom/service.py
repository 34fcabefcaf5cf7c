"""The one door: every use case the CLI and the web reach, as a table of contents.

``Strongroom`` resolves and validates the scope, takes the operation lock, recovers an
interrupted restore first, leaves one entry in the audit log (``repo.audit``'s
``@audited``: who, from where, what, which scope and backup, outcome, duration, bytes),
and hands the work to the package that does it:

- making: ``backup.backing_up`` (room first: ``restore.preflight``); pruning: ``backup.pruning``
- restoring: ``restore.whole`` and ``restore.in_part`` (over ``restore.restoring``);
  recovery: ``restore.recovering``
- reading: ``inspect.listing``, ``inspect.browsing``, ``inspect.diffing``, ``inspect.status``
- checking: ``check.verifying`` (its outcome kept with the backup: ``repo.checks_record``);
  the site key's life (status, export, import, adopt): ``check.keys``
- in and out: ``exchange.importing``, ``exchange.archive_import``, ``exchange.exporting``;
  offsite: ``offsite.remote``, ``offsite.remote_pull``

It never prints: progress goes to the callback ``progress(step, done, total)`` given at
construction (phases and units as ``progress_model`` names them), results are returned as
plain data, failures raised as the typed errors of ``errors``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from bson import ObjectId

from strongroom.backup import backing_up, pruning
from strongroom.backup.pruning import RetentionPolicy
from strongroom.backup.snapshot import CHANGED_FILES
from strongroom.check import keys, verifying
from strongroom.config import Config
from strongroom.db.engines import database_exists, list_collections, open_database
from strongroom.errors import BadInput, Busy, NoDatabase, NotFound
from strongroom.exchange import archive_import, exporting, importing
from strongroom.exchange.archive_format import Limits
from strongroom.fs import privacy
from strongroom.fs.nofollow import check_no_links
from strongroom.humanize import validate_note
from strongroom.ids import PROJECT_ID_RE, validate_backup_id
from strongroom.inspect import browsing, diffing, listing
from strongroom.inspect.status import scope_status, site_status
from strongroom.offsite import remote_pull
from strongroom.offsite.remote import Remote
from strongroom.progress_model import announce
from strongroom.repo import audit, checks_record, layout, lease
from strongroom.repo.audit import AuditLog, audited
from strongroom.repo.control import FileControl, ServerControl, end_stale, note_recovery
from strongroom.repo.journal import Journal
from strongroom.repo.locking import OperationLock, is_locked
from strongroom.repo.manifest import REASONS, summary
from strongroom.repo.store import BackupStore
from strongroom.restore import in_part, partial, preflight, recovering, whole
from strongroom.scopes import Scope, backups_root, scope_dir, scope_name

log = logging.getLogger("strongroom")


class Strongroom:
    def __init__(self, config: Config, database=None, progress=None, clock=None, origin: str = "library",
                 job: str | None = None):
        self.config = config
        self.job = job  # the web job this service runs, if any: named by the lock, the lease and the journal
        # Where the calls come from, for the audit log: "cli", "web", or a library caller.
        self.origin = origin
        self.audit_log = AuditLog(config.backups_dir, config.backups_anchor)
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
        """Who holds the operation lock (embedded) or lease (server) now, or None."""
        if self.config.embedded:
            return is_locked(self.lock_path)
        return lease.holder(self.database)

    @property
    def control(self) -> FileControl | ServerControl:
        """The shared control state of this run mode: jobs and sign-ins (``repo.control``)."""
        if self.config.embedded:
            return FileControl(self.config.backups_dir, lambda folder: privacy.make_folders(self.config, folder))
        return ServerControl(self.database)

    def jobs(self) -> list[dict]:
        """The kept job records, newest first, once those whose process stopped are ended."""
        control = self.control
        end_stale(control, self.config.lease_expiry)
        return control.jobs()

    # -- scopes ---------------------------------------------------------------------

    def scope(self, project_id: str | None = None, *, in_database: bool = True) -> Scope:
        """The validated scope. A project must exist in the database, or (with
        ``in_database=False``, for restoring a deleted project) have backups."""
        scope = Scope.of(project_id)
        if scope.is_site or (not in_database and self.store.has_backups(scope)):
            return scope  # having backups is enough, and reading them needs no database
        if not database_exists(self.config):  # asking would make it: say no, as it holds nothing
            raise NotFound(f"no project {scope.project_id}: the {self.config.mode} database does not exist")
        found = self.database[self.config.model.project_collection].find_one(
            {"_id": ObjectId(scope.project_id)}, {"_id": 1}
        )
        if found is None and (in_database or not self.store.ids(scope)):
            raise NotFound(f"no project {scope.project_id}")
        return scope

    def scope_name(self, project_id: str | None = None, *, with_id: bool = False) -> str:
        """``the whole site`` or ``project “Title”`` (``scopes.scope_name``; ``with_id``:
        ``project “Title” (<id>)``); asking makes no embedded database."""
        database = self.database if database_exists(self.config) else None
        return scope_name(self.config, database, Scope.of(project_id), with_id)

    def existing(self, backup_id: str, project_id: str | None) -> Scope:
        """The scope, once it is known that the backup exists (checked before any lock)."""
        scope = self.scope(project_id, in_database=False)
        if not self.store.exists(scope, backup_id):
            raise NotFound(f"no backup {backup_id} of {self.scope_name(scope.project_id, with_id=True)}")
        self.store.refuse_links(scope, backup_id)  # before the lock is written, in backups/
        return scope

    @contextmanager
    def _lock(self, operation: str, by: str | None) -> Iterator[OperationLock | lease.ServerLease]:
        """Hold the operation lock (the embedded engine's ``flock``: one machine) or the
        server's lease (several), once the backups are known to be where the configuration
        says (``layout``: not moved away meanwhile) and their folders are private (whoever
        made them)."""
        layout.check_in_place(self.config)
        privacy.ensure_folders(self.config)
        if self.config.embedded:
            held = OperationLock(self.lock_path, operation, by, self.job)
        else:
            held = lease.ServerLease(self.database, operation, by, self.job, expiry=self.config.lease_expiry,
                                     heartbeat=self.config.lease_heartbeat, on_takeover=self._took_over)
        with held as taken:
            layout.check_in_place(self.config)  # again: a move may have ended while we waited
            yield taken
    def _took_over(self, old: dict, heartbeat: str) -> None:
        """An expired lease was taken over: a line in the audit log (the log has one too)."""
        entry = audit.new_entry("take-over", None, None, old.get("by") or "unknown", self.origin)
        entry["error"] = audit.one_line(f"took over the lease of {old.get('operation')} by {old.get('by')} "
                                        f"(process {old.get('pid')} on {old.get('host')}, job {old.get('job')}): "
                                        f"no heartbeat since {heartbeat}")
        try:
            self.audit_log.append(entry)
        except Exception as exc:  # noqa: BLE001 - the log line stands
            log.warning("could not write the take-over to the audit log: %s", exc)

    # -- reading --------------------------------------------------------------------

    def list_backups(self, project_id: str | None = None) -> list[dict]:
        """Summaries of the scope's complete backups, newest first."""
        return listing.summaries(self.store, self.scope(project_id, in_database=False))

    def show_backup(self, backup_id: str, project_id: str | None = None) -> dict:
        """The summary of one backup plus its manifest's details."""
        validate_backup_id(backup_id)
        scope = self.scope(project_id, in_database=False)
        if not self.store.exists(scope, backup_id):
            raise NotFound(f"no backup {backup_id} of {self.scope_name(project_id, with_id=True)}")
        _, manifest = self.store.open(scope, backup_id)
        return {**summary(manifest), "manifest": manifest}

    def browse_backup(self, backup_id: str, project_id: str | None = None, path: str | None = "") -> dict:
        """What the backup holds at ``path`` (``browsing.list_folder``), with its last check."""
        backup_dir, manifest = self._open(backup_id, project_id)
        return {**browsing.list_folder(backup_dir, manifest, path), "last_check": checks_record.last_check(backup_dir)}

    def backup_file(self, backup_id: str, project_id: str | None, path: str) -> tuple[dict, Iterator[bytes]]:
        """The file-list entry of one stored file and its content, streamed and checked
        against its hash (``browsing.read_file``)."""
        backup_dir, manifest = self._open(backup_id, project_id)
        entry = browsing.find_entry(backup_dir, manifest, path)
        return entry, browsing.read_file(backup_dir, entry)

    def write_backup_file(self, backup_id: str, project_id: str | None, path: str, fd: int) -> dict:
        """Write one stored file into the new file open as ``fd``, its holes kept and its
        content checked against its hash (``browsing.write_file``); its file-list entry."""
        backup_dir, manifest = self._open(backup_id, project_id)
        entry = browsing.find_entry(backup_dir, manifest, path)
        browsing.write_file(backup_dir, entry, fd)
        return entry

    def backup_archive(self, backup_id: str, project_id: str | None, path: str | None = "") -> tuple[str, Iterator[bytes]]:
        """A file name and the tar.gz stream of one folder of the backup (``browsing.archive_folder``)."""
        backup_dir, manifest = self._open(backup_id, project_id)
        return browsing.archive_name(manifest, path), browsing.archive_folder(backup_dir, manifest, path)

    def diff_backups(self, backup_id: str, against: str = "live", project_id: str | None = None) -> dict:
        """What changed from backup ``backup_id`` to backup ``against`` or to the live scope
        (``"live"``): ``{"from", "to", "scope", "project", "files", "links", "folders",
        "records"}`` (``diffing``; ``files`` counts regular files only)."""
        validate_backup_id(backup_id)
        if against != "live":
            validate_backup_id(against)
        return diffing.diff(self, self.scope(project_id, in_database=False), backup_id, against)

    def _open(self, backup_id: str, project_id: str | None) -> tuple[Path, dict]:
        """The folder and authenticated manifest of an existing backup of the scope."""
        validate_backup_id(backup_id)
        return self.store.open(self.scope(project_id, in_database=False), backup_id)

    # -- operations status and audit log ---------------------------------------------

    def status(self) -> dict:
        """What an operator checks first (``status``): per scope the newest backup and the
        newest verified one, then the pool, the free space, a pending restore, the lock."""
        scopes = [scope_status(self, scope) for scope in self.scopes_with_backups()]
        return site_status(self, scopes)

    def scope_status(self, project_id: str | None = None) -> dict:
        """The status of one scope alone (``status``'s entry for it)."""
        return scope_status(self, Scope.of(project_id))

    def scopes_with_backups(self) -> list[Scope]:
        """The site, and each project that has a backup folder, in id order."""
        found = [Scope.site()]
        projects = self.config.backups_dir / "project"
        if projects.is_dir():
            for name in sorted(os.listdir(projects)):
                if PROJECT_ID_RE.match(name) and self.store.ids(Scope.project(name)):
                    found.append(Scope.project(name))
        return found

    def audit_entries(self, project_id: str | None = None, *, site_only: bool = False,
                      since: datetime | None = None) -> list[dict]:
        """The audit log's entries, oldest first: all, one project's, or the site's alone."""
        if project_id is not None:
            Scope.of(project_id)  # the one validator, before it is compared with anything
        return audit.select(self.audit_log.entries(), project_id=project_id, site_only=site_only, since=since)

    def last_audit_entries(self, count: int, project_id: str | None = None) -> list[dict]:
        """The log's last ``count`` entries, newest first: all, or one project's."""
        if project_id is None:
            return self.audit_log.newest(count)
        Scope.of(project_id)
        return self.audit_log.newest(count, lambda entry: entry.get("project") == project_id)

    # -- making ---------------------------------------------------------------------

    @audited("backup", lambda entry, made: entry.update(backup=made["id"], bytes=made["bytes_added"]))
    def make_backup(self, project_id: str | None = None, *, note: str = "",
                    reason: str = "manual", by: str | None = None, changed_files: str = "warn") -> dict:
        """Back up the scope; return the new backup's summary (its ``warnings`` name the
        files skipped or stored while they changed).

        ``changed_files``: a file that keeps changing while it is read is stored as last
        read with a warning (``"warn"``) or fails the backup (``"fail"``).
        """
        note = validate_note(note)
        if reason not in REASONS:
            raise BadInput(f"reason must be one of {', '.join(REASONS)}, not {reason!r}")
        if changed_files not in CHANGED_FILES:
            raise BadInput(f"changed_files must be one of {', '.join(CHANGED_FILES)}, not {changed_files!r}")
        self._refuse_nothing_there(Scope.of(project_id))
        self._require_database("backup")
        scope = self.scope(project_id)
        check_no_links(self.config.backups_anchor, backups_root(self.config, scope))  # before the lock is written
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

    def _require_database(self, doing: str) -> None:  # doing: a key of ``REFUSALS``
        """``NoDatabase`` when no server is configured and the run mode has no embedded
        database: a backup would hold no records (and make an empty database), a restore
        would put them where the app does not read them. A restore onto a site that has no
        working folder either (a new machine) makes the embedded database it needs."""
        if not self.config.embedded or self._database is not None or database_exists(self.config):
            return
        if doing != "backup" and not os.path.lexists(self.config.working_dir):
            return
        where = (f"no database server is named and run mode {self.config.mode} has no embedded database "
                 f"({self.config.embedded_db_dir})")
        how = ("pass --db mongodb://host/<name>" if self.origin == "cli" else
               "configure the site's database (STRONGROOM_DB, or the db_uri of the Config given to Strongroom)")
        raise NoDatabase(f"refusing to {REFUSALS[doing]}: {where}; {how}")

    def _holds_records(self) -> bool:
        return database_exists(self.config) and bool(list_collections(self.database))

    def _make_backup(self, scope: Scope, reason: str, note: str, by: str, changed_files: str = "warn") -> dict:
        return backing_up.make_backup(self, scope, reason, note, by, changed_files=changed_files)

    # -- importing ------------------------------------------------------------------

    @audited("import", lambda entry, made: entry.update(backup=made["id"], bytes=made["bytes_added"]))
    def import_backup(self, source: str | os.PathLike, project_id: str | None = None, *,
                      files: str | os.PathLike | None = None, note: str = "", by: str | None = None) -> dict:
        """Take in a backup made by others (``importing``) as a new backup of the site or
        of a project, with reason ``import``; return its summary."""
        note = validate_note(note)
        scope = Scope.of(project_id)
        by = by or _default_user()
        with self._lock("import", by):
            self._recover_locked()
            made = importing.import_folder(self, scope, Path(source), files and Path(files), note, by)
            return summary(made)

    @audited("export", lambda entry, result: entry.update(bytes=result["bytes"]))
    def export_backup(self, backup_id: str, out, project_id: str | None = None, *,
                      compress: str = "none") -> dict:
        """Write the backup as one portable archive to the binary stream ``out``
        (``exporting``); return what was written, with the archive's fingerprint."""
        validate_backup_id(backup_id)
        scope = self.existing(backup_id, project_id)
        return exporting.export_backup(self, scope, backup_id, out, compress)

    @audited("import", lambda entry, made: entry.update(backup=made["id"], bytes=made.get("bytes_added")))
    def import_archive(self, stream, project_id: str | None = None, *, as_project: str | None = None,
                       note: str = "", by: str | None = None, limits: Limits | None = None) -> dict:
        """Take in an archive made by ``export_backup`` (here or on another site) from the
        binary stream ``stream`` as a new backup with reason ``import``; return its summary
        with ``imported_from``. The archive is checked whole first (``archive_import``)."""
        note = validate_note(note)
        by = by or _default_user()
        with self._lock("import", by):
            self._recover_locked()
            made = archive_import.import_archive(self, stream, project_id, as_project, note, by,
                                                 limits or Limits.from_env())
            return {**summary(made), "imported_from": made["imported_from"]}

    @audited("import", lambda entry, found: _tree_outcome(entry, found))
    def import_original_tree(self, data_dir: str | os.PathLike, *, by: str | None = None) -> dict:
        """Take in every backup of this run mode in an original data dir, oldest first,
        leaving out those imported before and Strongroom's own, going on past a source it
        refuses. ``{"imported": [summaries], "skipped": [names], "refused": [{"scope",
        "project", "folder", "reason"}]}`` (``importing.import_tree``)."""
        by = by or _default_user()
        with self._lock("import", by):
            self._recover_locked()
            return importing.import_tree(self, Path(data_dir), by)

    # -- restoring (``restore.whole``, ``restore.in_part``) --------------------------

    @audited("restore", lambda entry, result: entry.update(bytes=result.get("bytes_copied"),
                                                        pre_restore=result.get("pre_restore")))
    def restore_backup(self, backup_id: str, project_id: str | None = None, *, by: str | None = None) -> dict:
        """Put the scope back to the backup's state, after saving the current one.

        When the scope already is exactly the backup's state (``matching``), nothing is
        changed and no pre-restore backup is made: ``unchanged`` is true and
        ``pre_restore`` None. Returns ``{"restored", "pre_restore", "unchanged", "files",
        "copied", "kept", "hardlinked", "bytes_copied", "records", "records_unchanged", "rescued": {"count", "bytes", "place", "paths"}}``
        (``records_unchanged``: the records already were the backup's, so they were not loaded again;
        ``rescued``: what others wrote into the live folder meanwhile, moved to
        ``place``); raises ``RestoreFailed`` (after rolling back) if it fails part-way,
        ``LinkedFolder`` before any change if the scope's folder or a parent is a link.
        """
        validate_backup_id(backup_id)
        scope = self.existing(backup_id, project_id)
        keys.require_key(self, f"restore of {backup_id}")
        self._require_database("restore")
        by = by or _default_user()
        with self._lock("restore", by):
            self._recover_locked()
            return whole.restore_whole(self, scope, backup_id, by)

    @audited("restore", skip=lambda _: True)  # a refusal is the restore's, logged as such; a pass is not yet one
    def check_restorable(self, backup_id: str, project_id: str | None = None, from_site: bool | None = None) -> None:
        """What a restore checks before it asks anything: the backup exists (``NotFound``)
        and there is a usable site key to check it with (``KeyRefused``: ``keys.require_key``)."""
        in_part.scopes_of(self, backup_id, project_id, from_site)
        keys.require_key(self, f"restore of {backup_id}")

    def make_pre_restore(self, scope: Scope, backup_id: str, by: str, restoring: Path | None = None) -> dict:
        """The backup of the current state a restore makes first (reason ``pre-restore``);
        ``restoring`` is the folder of the backup to be restored, whose records it adds to
        what a project's linked collections select (``linking``)."""
        source = backing_up.live_source(self, scope, restoring and restoring / "db" / "bson")
        return backing_up.make_backup(self, scope, "pre-restore", f"before restoring {backup_id}", by, source)

    def preview_restore(self, backup_id: str, project_id: str | None = None) -> dict:
        """What ``restore_backup`` would change, changing nothing (a dry run).

        ``{"backup", "scope", "project", "files": {"added"|"removed"|"changed": {"count",
        "bytes", "paths"}, "unchanged"}, "links": (same), "folders": (same), "records": {coll: {"added", "removed", "changed",
        "unchanged"}}}``.
        """
        validate_backup_id(backup_id)
        scope = self.existing(backup_id, project_id)
        self._require_database("preview")
        return whole.preview_whole(self, scope, backup_id)

    def from_site_backup(self, backup_id: str, project_id: str | None, from_site: bool | None = None) -> bool:
        """Would restoring ``project_id`` from ``backup_id`` take the project out of a site
        backup? (``in_part.from_site_backup``)"""
        return in_part.from_site_backup(self.store, backup_id, project_id, from_site)

    def check_parts(self, backup_id: str, paths, project_id: str | None = None, *,
                    from_site: bool | None = None) -> list[str]:
        """The parts, as ``restore_parts`` would take them, once known to be in the backup
        (``InvalidName``, ``BadInput``, ``NotFound`` otherwise); changes nothing."""
        scope, backup_scope = in_part.scopes_of(self, backup_id, project_id, from_site)
        parts = in_part.open_source(self, scope, backup_scope, backup_id, paths)[3]
        return parts.paths if parts else []

    @audited("restore-part", lambda entry, result: entry.update(bytes=result.get("bytes_copied"),
                                                             paths=result.get("parts"), to=result.get("to")))
    def restore_parts(self, backup_id: str, paths=(), project_id: str | None = None, *,
                      to: str | os.PathLike | None = None, by: str | None = None,
                      from_site: bool | None = None) -> dict:
        """Put back only ``paths`` (files or folders, relative to the scope's folder) of the
        backup, and, for one project out of a site backup, that project (its files, and its
        records when no path is named). Outside the parts nothing changes; the safety is a
        whole restore's (``partial``). With ``to``, the parts are written into that folder
        instead and nothing live changes (no pre-restore backup). ``from_site``: see
        ``from_site_backup``.

        Returns ``restore_backup``'s result plus ``"parts"`` (None: all) and
        ``"records_restored"``; with ``to``: ``{"restored", "to", "parts", "files",
        "copied", "bytes_copied", "records_restored": False}``.
        """
        scope, backup_scope = in_part.scopes_of(self, backup_id, project_id, from_site)
        keys.require_key(self, f"restore of {backup_id}")
        target = partial.check_target(self.config, to) if to is not None else None
        if target is None:
            self._require_database("restore")
        by = by or _default_user()
        with self._lock("restore", by):
            self._recover_locked()
            return in_part.restore_parts(self, scope, backup_scope, backup_id, paths, target, by)

    def preview_parts(self, backup_id: str, paths=(), project_id: str | None = None, *,
                      to: str | os.PathLike | None = None, from_site: bool | None = None) -> dict:
        """What ``restore_parts`` would change, changing nothing: ``preview_restore``'s
        report counting only the parts, plus ``"parts"`` and ``"records_restored"``."""
        scope, backup_scope = in_part.scopes_of(self, backup_id, project_id, from_site)
        target = partial.check_target(self.config, to) if to is not None else None
        if target is None:
            self._require_database("preview")
        return in_part.preview_parts(self, scope, backup_scope, backup_id, paths, target)

    def maintenance(self) -> dict | None:
        """What a running (or crashed, not yet recovered) restore is doing, or None.

        While this is not None the scope it names may be in a mixed state: the web face
        refuses writes with 503 and shows a notice.
        """
        return self.journal.read()

    @audited("recover", lambda entry, outcome: outcome and entry.update(backup=outcome.get("backup"),
                                                                        result=outcome.get("outcome")),
             skip=lambda outcome: outcome is None)
    def recover(self, by: str | None = None, *, records_from: str | None = None) -> dict | None:
        """Finish or roll back an interrupted restore; clean what a crash left behind.

        Returns the journal with an ``outcome`` if there was a restore to recover.
        ``records_from``: when the pre-restore backup is damaged (``RollbackBlocked``
        names it and the newest sound backup), the backup to load the records from.
        """
        with self._lock("recover", by or _default_user()):
            return self._recover_locked(records_from)

    def recover_if_needed(self) -> dict | None:
        """``recover`` when a crash left work behind and nobody holds the lock; else None."""
        if self.journal.read() is None or self.busy():
            return None
        try:
            return self.recover()
        except Busy:
            return None

    def _recover_locked(self, records_from: str | None = None) -> dict | None:
        outcome = recovering.recover(self, records_from)
        self.store.clean_leftovers()
        if outcome is not None:  # the job that left the journal says what became of its restore
            try:
                note_recovery(self.control, outcome.get("job"), outcome["outcome"])
            except Exception as exc:  # noqa: BLE001 - the recovery itself stands
                log.warning("could not note the recovery in the job's record: %s", exc)
        return outcome

    # -- deleting and verifying -----------------------------------------------------

    @audited("delete", lambda entry, result: entry.update(bytes=result["bytes_freed"]))
    def delete_backup(self, backup_id: str, project_id: str | None = None, *, by: str | None = None) -> dict:
        validate_backup_id(backup_id)
        scope = self.existing(backup_id, project_id)
        with self._lock("delete", by or _default_user()):
            self._recover_locked()
            announce(self.progress, [("removing", 1)])
            self.progress("removing", 0, 1)
            objects, freed = self.store.delete(scope, backup_id)
            self.progress("removing", 1, 1)
        return {"deleted": backup_id, "objects_freed": objects, "bytes_freed": freed}

    @audited("prune", lambda entry, result: entry.update(bytes=result["bytes_freed"], dry_run=True,
                                                          would_delete=result["deleted"]) if result["dry_run"]
             else entry.update(bytes=result["bytes_freed"], deleted=result["deleted"]))
    def prune_backups(self, policy: RetentionPolicy, project_id: str | None = None, *,
                      dry_run: bool = False, by: str | None = None) -> dict:
        """Delete the scope's backups that ``policy`` does not keep, and the content only
        they used. ``{"kept": [ids], "deleted": [ids], "objects_freed", "bytes_freed",
        "dry_run"}``; a dry run deletes nothing and gives the figures the real run would
        (``store.would_free``), and its audit entry says ``dry_run`` and ``would_delete``."""
        scope = self.scope(project_id, in_database=False)
        with self._lock("prune", by or _default_user()):
            self._recover_locked()
            ids = self.store.ids(scope)
            kept = pruning.backups_to_keep(ids, policy, self.store.sequences(scope))
            doomed = [backup_id for backup_id in ids if backup_id not in kept]
            objects, freed = self.store.would_free(scope, doomed) if dry_run else (0, 0)
            announce(self.progress, [("removing", len(doomed))])
            for done, backup_id in enumerate([] if dry_run else doomed):
                self.progress("removing", done, len(doomed))
                more_objects, more_bytes = self.store.delete(scope, backup_id)
                objects, freed = objects + more_objects, freed + more_bytes
            self.progress("removing", len(doomed), len(doomed))
        return {"kept": [i for i in ids if i in kept], "deleted": doomed,
                "objects_freed": objects, "bytes_freed": freed, "dry_run": dry_run}

    @audited("verify", lambda entry, report: report["ok"] or entry.update(
        outcome="not checked" if report["not_checked"] else "failed",
        error=audit.one_line(report["not_checked"] or (report["problems"] or ["failed"])[0])))
    def verify_backup(self, backup_id: str, project_id: str | None = None, *, repair: bool = False,
                      sign_unsigned: bool = False, by: str | None = None) -> dict:
        """Re-hash every file and dump of the backup, and check its signature and folder.

        ``{"id", "ok", "problems", "signed", "fixed", "repaired", "notes", "not_checked",
        "checked"}``; see ``verifying.verify_backup`` for ``repair``, ``sign_unsigned`` and
        a backup that could not be checked (``ok`` None). The outcome is kept with the
        backup (``checks_record``): ``checked`` is that record (None when not checked:
        no outcome is kept, as there is none).
        """
        validate_backup_id(backup_id)
        scope = self.existing(backup_id, project_id)
        by = by or _default_user()
        # Before the lock, which gives the folders their modes silently: here it is said.
        fixed = privacy.repair_folders(self.config) + privacy.repair_key(self.config)
        with self._lock("verify", by):
            report = verifying.verify_backup(self, scope, backup_id, repair=repair, sign_unsigned=sign_unsigned)
            report["fixed"][:0] = fixed
            if report["not_checked"]:
                report["checked"] = None
                return report
            try:
                report["checked"] = checks_record.record_check(self.store.path(scope, backup_id), report, by)
            except OSError as exc:  # a full disk or a read-only copy: the check itself still stands
                report["checked"] = None
                report["notes"].append(f"the outcome could not be kept with the backup: {exc.strerror or exc}")
            return report

    def verify_all(self, project_id: str | None = None, *, repair: bool = False,
                   sign_unsigned: bool = False, by: str | None = None) -> list[dict]:
        scope = self.scope(project_id, in_database=False)
        return [self.verify_backup(backup_id, project_id, repair=repair, sign_unsigned=sign_unsigned, by=by)
                for backup_id in self.store.ids(scope)]

    # -- the backups' layout ----------------------------------------------------------

    def migrate_layout(self, *, by: str | None = None) -> dict:
        """Move backups made in the layout shared with the original module's folders into
        Strongroom's own root (``layout.migrate``). ``{"from", "to", "moved"}``."""
        return layout.migrate(self.config, by or _default_user())

    # -- the site key (``check.keys``) -----------------------------------------------

    def key_report(self) -> dict:
        """The site key in use, its exports, and which keys sign the backups (``key status``)."""
        return keys.report(self)

    @audited("key-export")
    def export_key(self, to: str | os.PathLike, *, by: str | None = None) -> dict:
        """Copy the site key into the new file ``to`` for safekeeping, and record it."""
        return keys.export_key(self, Path(to), by or _default_user())

    @audited("key-import")
    def import_key(self, source: str | os.PathLike, *, by: str | None = None) -> dict:
        """Put a saved site key back in place (``keys.import_key``)."""
        with self._lock("key-import", by or _default_user()):
            return keys.import_key(self, Path(source), by or _default_user())

    def adoption_candidates(self, from_key: str) -> list[dict]:
        """What ``adopt_key`` would sign: the summaries of the backups signed by ``from_key``
        that the site key cannot check, with ``scope`` and ``project``."""
        return [summary(manifest) for _, _, manifest in keys.candidates(self, from_key)]

    @audited("key-adopt", lambda entry, result: entry.update(
        adopted=[b["id"] for b in result["adopted"]], refused=[b["id"] for b in result["refused"]]))
    def adopt_key(self, from_key: str, *, by: str | None = None) -> dict:
        """Trust the content of the backups signed by the lost key ``from_key``: verify each in
        full and sign those that pass with the site key (``keys.adopt``)."""
        by = by or _default_user()
        with self._lock("key-adopt", by):
            self._recover_locked()
            return keys.adopt(self, from_key, by)

    # -- offsite copies (``remote``) -------------------------------------------------

    def _remote(self) -> Remote:
        """The configured remote; ``BadInput`` (before any lock) when none is configured."""
        return Remote.open(self.config.remote)

    @audited("push", lambda entry, result: entry.update(bytes=result["bytes_uploaded"], pushed=result["pushed"]))
    def push_backups(self, backup_id: str | None = None, project_id: str | None = None, *,
                     all_backups: bool = False, by: str | None = None) -> dict:
        """Copy the scope's backup ``backup_id``, every backup (``all_backups``) or the
        newest one to the remote, sending only what it lacks. ``{"pushed": [ids],
        "already": [ids], "objects_uploaded", "bytes_uploaded", "encrypted", "remote",
        "warnings"}``: ``warnings`` says when the copies are not encrypted."""
        if backup_id is not None and all_backups:
            raise BadInput("give one backup id or --all, not both")
        if backup_id is not None:
            validate_backup_id(backup_id)
        scope = self.scope(project_id, in_database=False)
        target = self._remote()
        with self._lock("push", by or _default_user()):
            self._recover_locked()
            ids = self.store.ids(scope)
            if backup_id is not None and backup_id not in ids:
                raise NotFound(f"no backup {backup_id} of the {scope}")
            chosen = [backup_id] if backup_id is not None else ids if all_backups else ids[:1]
            if not chosen:
                raise NotFound(f"no backups of the {scope} to push")
            return target.push(self, scope, chosen)

    @audited("pull")
    def pull_backup(self, backup_id: str, project_id: str | None = None, *, by: str | None = None) -> dict:
        """Fetch a remote copy back into the scope's backups (``remote_pull``); its summary."""
        validate_backup_id(backup_id)
        scope = Scope.of(project_id)
        target = self._remote()
        with self._lock("pull", by or _default_user()):
            self._recover_locked()
            return remote_pull.pull(self, target, scope, backup_id)

    def list_remote(self, project_id: str | None = None) -> list[dict]:
        """Summaries of the scope's remote copies in this run mode, newest first."""
        return self._remote().list(self.config.mode, Scope.of(project_id))

    @audited("prune-remote", lambda entry, result: entry.update(bytes=result["bytes_deleted"], dry_run=True,
                                                             would_delete=result["deleted"]) if result["dry_run"]
             else entry.update(bytes=result["bytes_deleted"], deleted=result["deleted"]))
    def prune_remote(self, policy: RetentionPolicy, project_id: str | None = None, *,
                     dry_run: bool = False, by: str | None = None) -> dict:
        """Delete the remote copies ``policy`` does not keep, then the objects no copy
        uses. ``{"kept", "deleted", "objects_deleted", "bytes_deleted", "objects_deferred",
        "dry_run"}``; a dry run deletes nothing and gives the real run's figures."""
        scope = Scope.of(project_id)
        target = self._remote()
        with self._lock("prune", by or _default_user()):
            return target.prune(self, scope, policy, dry_run)


def _tree_outcome(entry: dict, found: dict) -> None:
    """The audit entry of a tree import: what it made, and a failure naming what it refused."""
    entry.update(bytes=sum(m["bytes_added"] for m in found["imported"]),
                 imported=[m["id"] for m in found["imported"]])
    if found["refused"]:
        entry.update(outcome="failed", error=audit.one_line(
            f"refused {len(found['refused'])}: " + "; ".join(r["folder"] for r in found["refused"])))


REFUSALS = {  # what ``_require_database`` refuses, and why
    "backup": "back up without the records",
    "restore": "restore: the records would go into a new, empty database, not the site's",
    "preview": "compare with the live records: there are none to compare with",
}


def _default_user() -> str:
    return audit.os_user()

