"""Making a backup: stage, dump the records, snapshot the files, write the manifest, publish.

The backup is built in a hidden staging folder (``store``); the records are dumped first
(``dbdump``), then the files are snapshot into the pool (``snapshot``), merge-joined with
the best list of what is already known about the live files, so unchanged files are
linked unread. A backup of the live scope holds the host app's writes while it dumps and
reads (``write_hold``), so a change made through the host is in it wholly or not at all.
Everything written is flushed with one ``syncfs``; then the manifest is
signed with the site key (``signing``; made here at the first backup), written and
synced, and only then is the folder renamed into place. Any failure removes
the staging folder and the pool objects only it used.

The content comes from a ``Source``: the live scope by default, or a folder made by
other tools (``importing``), which goes through exactly the same steps. The id comes
from ``ids.new_backup_id`` with the service's clock, and the manifest records the
backup's ``sequence``, its place among the scope's backups in the order they were made.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from time import perf_counter

from strongroom.backup import snapshot
from strongroom.db import dbdump, docfilter, linking
from strongroom.db.engines import describe, list_collections
from strongroom.errors import (
    BackupFailed,
    BadInput,
    CorruptBackup,
    NoSpace,
    StrongroomError,
    os_reason,
)
from strongroom.fs import mutations, space
from strongroom.fs.nofollow import check_no_links
from strongroom.fs.parallel import PhaseTimes
from strongroom.fs.walking import walk
from strongroom.ids import new_backup_id
from strongroom.progress_model import announce
from strongroom.repo import liveindex, signing, write_hold
from strongroom.repo.manifest import (
    FILE_LIST,
    FileListWriter,
    file_list_intact,
    iter_entries,
    iter_file_list,
    new_manifest,
    summary,
    write_manifest,
)
from strongroom.scopes import Scope, backups_root, project_query_makers, scope_dir

log = logging.getLogger("strongroom")


@dataclass
class Source:
    """Where a backup's content comes from: the live scope, or a folder being imported.

    ``dump(db_dir, progress)`` writes the records into ``db_dir`` (``dbdump``'s format) and
    returns what ``dbdump.dump_collections`` returns; ``files`` is the folder to snapshot.
    ``live`` lets unchanged files be linked unread from what is known of the live folder.
    ``details`` go into the manifest as they are; ``warnings`` join the snapshot's.
    ``check_file_list`` reads the file list back through the validator before the
    manifest is written, so a folder whose names no restore could use is refused.
    """

    dump: Callable[[Path, Callable], dict[str, dict]]
    files: Path
    live: bool = True
    details: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    check_file_list: bool = False


def _dump_queries(sr, scope: Scope, db_dir: Path, restoring: Path | None) -> dict:
    """What a backup of ``scope`` into ``db_dir`` dumps: every collection whole for the
    site, else the project's records, a collection linked through another chosen by the
    ids of that other's records in this very dump, as it is written (and, before a
    restore, in the dump ``restoring`` about to be restored: ``linking``)."""
    if scope.is_site:
        return {name: {} for name in list_collections(sr.database)}
    ids_of = docfilter.dump_ids(db_dir / dbdump.BSON_DIR)
    if restoring is not None:
        ids_of = linking.either(ids_of, docfilter.dump_ids(restoring))
    return project_query_makers(sr.config, scope.project_id, ids_of)


def live_source(sr, scope: Scope, restoring: Path | None = None) -> Source:
    """The scope as it is now: its records in the database, its folder in the working dir.
    ``restoring``: the record dump a restore is about to load (``_dump_queries``)."""
    return Source(
        dump=lambda db_dir, progress: dbdump.dump_collections(
            sr.database, db_dir, _dump_queries(sr, scope, db_dir, restoring), progress),
        files=scope_dir(sr.config, scope),
    )


def make_backup(sr, scope: Scope, reason: str, note: str, by: str, source: Source | None = None,
                changed_files: str = "warn") -> dict:
    """Stage, fill and publish a backup of ``scope`` (the caller holds the lock).

    ``source`` defaults to the live scope; importing gives a folder made elsewhere.
    ``changed_files``: what to do with a file that keeps changing while it is read,
    ``"warn"`` (store it as last read, with a warning) or ``"fail"``.
    """
    # Nothing is written through a link: a scope's backups folder (or one above it, or the
    # pool) replaced by a link would take the new backup, and its objects, out of ``backups/``.
    check_no_links(sr.config.backups_anchor, backups_root(sr.config, scope))
    check_no_links(sr.config.backups_anchor, sr.store.pool.root)
    key = sr.store.site_key.get(create=True)
    source = source or live_source(sr, scope)
    started = sr.clock()  # one reading: the id and ``started_at`` agree
    backup_id = new_backup_id(sr.store.taken_names(scope), started)
    staging = sr.store.make_staging(sr.store.staging_path(scope, backup_id))
    try:
        manifest = _fill(sr, staging, scope, backup_id, reason, note, by, source, key, changed_files,
                         started.astimezone(UTC).isoformat(timespec="seconds"))
        sr.store.publish(staging, scope, backup_id)
    except BaseException as exc:
        _quietly(mutations.rmtree, staging)
        _quietly(sr.store.pool.collect_garbage)
        if space.is_out_of_space(exc):
            raise NoSpace(f"backup of the {scope} failed: the disk is full ({exc}); no backup was made, "
                          "nothing else changed") from exc
        if isinstance(exc, OSError):  # a disk turned read-only, an I/O error: say what it means
            raise BackupFailed(f"backup of the {scope} failed: {os_reason(exc)}; no backup was made, "
                               "nothing else changed") from exc
        raise
    return manifest

def _fill(sr, staging: Path, scope: Scope, backup_id: str, reason: str, note: str, by: str, source: Source,
          key: bytes, changed_files: str, started_at: str) -> dict:
    """Fill ``staging``: the records' dump, the files, a flush to disk, then the signed manifest."""
    timings = {}
    started = perf_counter()
    announce(sr.progress, _plan(sr, scope, source))
    previous = _intact_latest(sr, scope) if source.live else None
    max_hold = sr.config.write_hold if source.live else 0
    with write_hold.holding_writes(sr.control, {"operation": "backup", "by": by, "job": sr.job}, max_hold) as held:
        sr.progress("dumping", 0, None)
        collections = source.dump(staging / "db", sr.progress)
        timings["dump"] = perf_counter() - started
        stats, list_sha256, entries = _store_files(sr, staging, scope, source, previous, changed_files, timings)
    if held.on:
        timings["hold"] = held.seconds
    sr.progress("reading", stats.bytes, stats.bytes)
    mark = perf_counter()
    sr.progress("flushing", 0, stats.bytes_added)
    mutations.sync_filesystem(staging)
    sr.progress("flushing", stats.bytes_added, stats.bytes_added)
    timings["sync"] = perf_counter() - mark
    manifest = new_manifest(
        id=backup_id, scope=scope.kind, project=scope.project_id, mode=sr.config.mode,
        sequence=sr.store.next_sequence(scope),
        started_at=started_at,
        created_at=sr.clock().astimezone(UTC).isoformat(timespec="seconds"), created_by=by, reason=reason, note=note,
        parent=previous[1]["id"] if previous else None,
        hash_algorithm="sha256",
        database=describe(sr.config, sr.database if source.live else None),
        collections=collections,
        files=_files_section(stats, list_sha256, entries),
        warnings=source.warnings + stats.warnings + held.warnings,
        **source.details,
        timings={k: round(v, 4) for k, v in timings.items()} | {"total": round(perf_counter() - started, 4)},
    )
    manifest = signing.sign(manifest, key)
    write_manifest(staging, manifest)
    for warning in stats.warnings:  # the hold's were logged as they arose
        log.warning("backup %s of the %s: %s", backup_id, scope, warning)
    log.info("backup %s of the %s: %d files, %d bytes read, %d added; %s", backup_id, scope,
             stats.files, stats.bytes_read, stats.bytes_added, phases(manifest["timings"]))
    return manifest


def _plan(sr, scope: Scope, source: Source) -> list[tuple[str, float | None]]:
    """The phases of a backup with the work each is expected to take: as much as the
    scope's latest backup held; for a first backup, the bytes of the files to read,
    found by a walk of their folder that reads no content (``_bytes_below``), so
    that its bar moves with the bytes and shows their total."""
    latest = sr.store.latest(scope)
    if latest is None:
        listens = getattr(sr.progress, "plan", None) is not None  # a bare callback: no walk for it
        total = _bytes_below(source.files) if listens else None
        return [("dumping", None), ("reading", total), ("flushing", total)]
    made = summary(latest[1])
    return [("dumping", sum(made["records"].values())), ("reading", made["bytes"]),
            ("flushing", made["bytes_added"] or None)]


def _bytes_below(folder: Path) -> int | None:
    """The bytes of the regular files below ``folder`` (None if it cannot be walked)."""
    try:
        return sum(st.st_size for _, _, st in walk(folder) if stat.S_ISREG(st.st_mode))
    except (OSError, StrongroomError):
        return None


def _store_files(sr, staging: Path, scope: Scope, source: Source, previous, changed_files: str,
                 timings: dict) -> tuple[snapshot.SnapshotStats, str, int]:
    """Snapshot the source's files into the pool and the staging folder's file list;
    return the snapshot's figures, the list's checksum and its number of entries."""
    writer = FileListWriter(staging / FILE_LIST)
    mark = perf_counter()
    times = PhaseTimes()
    try:
        stats = snapshot.snapshot(
            source.files, staging / "files", sr.store.pool, writer,
            previous=_known_entries(sr, scope, previous) if source.live else None,
            progress=sr.progress, times=times,
            trusted=sr.config.data_dir if source.live else None, changed_files=changed_files,
        )
    except BaseException:
        writer.abort()
        raise
    list_sha256 = writer.close()
    if source.check_file_list:
        _check_file_list(staging, list_sha256, writer.count)
    timings["files"] = perf_counter() - mark
    timings.update({phase: times.seconds.get(phase, 0.0) for phase in ("scan", "hash", "copy", "link")})
    return stats, list_sha256, writer.count


def _files_section(stats: snapshot.SnapshotStats, list_sha256: str, entries: int) -> dict:
    """The manifest's ``files``: the list's checksum and the snapshot's figures."""
    root = stats.root  # as the walk opened it, never through a link
    return {
        "list": FILE_LIST, "entries": entries, "list_sha256": list_sha256,
        "count": stats.files, "dirs": stats.dirs, "symlinks": stats.symlinks, "hardlinks": stats.hardlinks,
        "bytes": stats.bytes, "bytes_read": stats.bytes_read, "bytes_added": stats.bytes_added,
        "objects_added": stats.objects_added, "linked_unread": stats.linked_unread,
        "root": {"mode": root.st_mode & 0o7777, "mtime_ns": root.st_mtime_ns} if root else None,
    }


def _check_file_list(staging: Path, list_sha256: str, entries: int) -> None:
    """Every entry readable by a restore (``manifest.iter_file_list``), else ``BadInput``."""
    try:
        for _ in iter_file_list(staging / FILE_LIST, "the files", list_sha256, entries):
            pass
    except CorruptBackup as exc:
        raise BadInput(str(exc)) from None


def _intact_latest(sr, scope: Scope) -> tuple[Path, dict] | None:
    latest = sr.store.latest(scope)
    return latest if latest and file_list_intact(*latest) else None

def _known_entries(sr, scope: Scope, previous: tuple[Path, dict] | None):
    """The entries that let a backup link unchanged files unread: the live index a
    restore left if nothing was backed up since (``liveindex``), else the scope's latest
    backup's, or for a project's first backup the latest site backup's entries below
    the project's folder (a sub-tree of the site's walk, so in the same order)."""
    newest = sr.store.ids(scope)
    restored = liveindex.read(backups_root(sr.config, scope), newest[0] if newest else None, sr.store.site_key.get())
    if restored is not None:
        return restored
    if previous:
        return iter_entries(*previous)
    site = None if scope.is_site else _intact_latest(sr, Scope.site())
    if site is None:
        return None
    prefix = scope_dir(sr.config, scope).relative_to(scope_dir(sr.config, Scope.site())).as_posix() + "/"
    return ({**entry, "path": entry["path"][len(prefix):]}
            for entry in iter_entries(*site) if entry["path"].startswith(prefix))


known_entries = _known_entries  # public for the pre-flight check (``preflight``): one rule


def phases(timings: dict) -> str:
    """Timings as a log line: ``dump 0.012 s, scan 0.100 s, …``."""
    return ", ".join(f"{phase} {seconds:.3f} s" for phase, seconds in timings.items())


def _quietly(func, *args) -> None:
    try:
        func(*args)
    except Exception:  # noqa: BLE001, S110 - best effort while another error is on its way up
        pass
