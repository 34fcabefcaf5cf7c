"""The backups of a scope: list, stage and publish, open, delete.

A backup is built in a hidden folder ``.staging-<id>`` beside the published ones and
renamed to ``<id>`` once its manifest is synced, so a listed backup is always complete.
Deletion renames the backup to ``.deleting-<id>`` first (one atomic step that unlists
it), then removes it and the pool objects no other backup links to. Hidden folders left
by a crash are removed by ``clean_leftovers`` at the start of the next operation.

Opening a backup authenticates its manifest under the site key (``signing``) and checks
that it says it is a backup of the scope and run mode whose folder it lies in, so a
backup copied into another project's folder, or edited, is ``CorruptBackup``. Manifests
of format 1 (made before signing) carry no signature: they open, and ``verifying``
refuses to restore them until they are signed.

A listing (``open_each``, and ``next_sequence``) reads the scope's manifests on a few
threads at once and hands them back in the ids' order: on a cold disk each read waits
for the disk, and a disk serves many small reads at once far faster than in a row.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from strongroom.config import Config
from strongroom.errors import CorruptBackup, KeyRefused, LinkedFolder, NotFound, SignedElsewhere
from strongroom.fs import mutations, privacy
from strongroom.fs.nofollow import check_folder, check_no_links, open_below
from strongroom.fs.parallel import Ordered
from strongroom.fs.privacy import folder_mode, group_id, object_mode
from strongroom.ids import backup_id_sort_key, is_backup_id, validate_backup_id
from strongroom.repo import fencing
from strongroom.repo.manifest import (
    MANIFEST,
    is_signed_format,
    iter_entries,
    parse_manifest,
    read_manifest,
    read_manifest_bytes,
)
from strongroom.repo.pool import Pool
from strongroom.repo.signing import SiteKey, authenticate
from strongroom.scopes import Scope, backups_root

STAGING_PREFIX = ".staging-"
DELETING_PREFIX = ".deleting-"
READERS = 16  # threads reading a listing's manifests: small reads that mostly wait for the disk


class BackupStore:
    def __init__(self, config: Config):
        self.config = config
        self.pool = Pool(config.pool_dir, object_mode(config), group_id(config), folder_mode(config))
        self.site_key = SiteKey(config)

    def ids(self, scope: Scope) -> list[str]:
        """Ids of the complete backups of ``scope``, newest first."""
        root = backups_root(self.config, scope)
        return [i for i in _listed(root) if os.path.isfile(os.path.join(root, i, MANIFEST))]

    def has_backups(self, scope: Scope) -> bool:
        """``ids`` is not empty: found from the newest, stopping at the first complete one."""
        root = backups_root(self.config, scope)
        return any(os.path.isfile(os.path.join(root, i, MANIFEST)) for i in _listed(root))

    def sequences(self, scope: Scope) -> dict[str, int]:
        """Each complete backup's sequence number: the order the scope's backups were made
        in, counted per scope and never read from a clock (``backing_up`` writes it in the
        manifest). 0 for a backup whose manifest has none (made before it was recorded)."""
        root = backups_root(self.config, scope)
        return {backup_id: _sequence(root / backup_id) for backup_id in self.ids(scope)}

    def next_sequence(self, scope: Scope) -> int:
        """The sequence number of the scope's next backup: after every existing one.

        Every complete backup's manifest is read (a pulled backup brings the sequence
        it was given elsewhere, so the newest id need not hold the highest), on the
        reader threads, and its number taken from the line Strongroom writes it on
        (``_written_sequence``) rather than by parsing the whole manifest."""
        root = backups_root(self.config, scope)
        highest = 0
        with Ordered(workers=READERS, window=-1) as reads:
            for backup_id in _listed(root):
                reads.batch(0, _read_manifest_bytes, root, backup_id)
            for backup_id, data in reads.drain():
                if data is not None:
                    highest = max(highest, _written_sequence(backup_id, data))
        return 1 + highest

    def taken_names(self, scope: Scope) -> set[str]:
        """Every name in use below the scope's root, complete or not (for a new id)."""
        root = backups_root(self.config, scope)
        if not root.is_dir():
            return set()
        names = set()
        for name in os.listdir(root):
            for prefix in (STAGING_PREFIX, DELETING_PREFIX):
                name = name.removeprefix(prefix)
            names.add(name)
        return names

    def path(self, scope: Scope, backup_id: str) -> Path:
        return backups_root(self.config, scope) / validate_backup_id(backup_id)

    def exists(self, scope: Scope, backup_id: str) -> bool:
        """A complete backup (with its manifest) of that id is there."""
        return (self.path(scope, backup_id) / MANIFEST).is_file()

    def open(self, scope: Scope, backup_id: str, authenticated: bool = True) -> tuple[Path, dict]:
        """The folder and manifest of a complete backup; ``NotFound`` if there is none.

        The manifest's signature is checked unless ``authenticated`` is False (for
        deleting a backup, which must work on a damaged one too); its scope, project
        and run mode must be those of the folder it lies in.
        """
        path = self.path(scope, backup_id)
        if not os.path.isfile(path / MANIFEST):
            raise NotFound(f"no backup {backup_id} of the {scope}")
        self._refuse_links(path)
        return path, self._manifest(scope, path, authenticated)

    def open_each(self, scope: Scope) -> Iterator[tuple[Path, dict, str]]:
        """Each complete backup of the scope, newest first, as ``(folder, manifest, trust)``,
        for the listings. ``trust`` says what the signature proves: ``"valid"`` (``open``
        accepts the backup), ``"unsigned"`` (made before signing, format 1), ``"other-key"``
        (signed with a key that is not the site's) or ``"no-key"`` (there is no usable site
        key to check it with): a backup is never hidden for its key, so that a lost or
        swapped key shows. Left out are the backups ``open`` refuses for anything else (an
        edited manifest, another scope's, a folder that is a link: ``verify --all`` reports
        them). The folders from the data dir to the scope's root are checked for links
        once, not again for each backup (each backup's own folder, ``files`` and ``db`` are).

        The backups' folders are checked and their manifests read on ``READERS`` threads, in
        groups, and handed back in the listing's order, where each manifest is parsed and
        authenticated: on a cold disk each backup waits for its folder's and its manifest's
        blocks, and a disk serves many such small reads at once far faster than one after
        another. The checks are ``open``'s."""
        root = backups_root(self.config, scope)
        try:
            check_no_links(self.config.backups_anchor, root)
        except LinkedFolder:
            return
        try:
            key = self.site_key.get()
        except KeyRefused:
            key = None  # every signed backup is then "no-key"; the key's problem is ``key status``'s
        with Ordered(workers=READERS, window=-1) as reads:
            for backup_id in _listed(root):
                reads.batch(0, _read_listed, root, backup_id)
            for backup_id, data in reads.drain():
                opened = self._listed_backup(scope, root, backup_id, data, key)
                if opened is not None:
                    yield opened

    def latest(self, scope: Scope) -> tuple[Path, dict] | None:
        """The newest backup ``open`` accepts, or None, found one backup after another (the
        newest is nearly always the one)."""
        root = backups_root(self.config, scope)
        try:
            check_no_links(self.config.backups_anchor, root)
        except LinkedFolder:
            return None
        for backup_id in _listed(root):
            opened = self._opened(scope, root, *_read_listed(root, backup_id))
            if opened is not None:
                return opened
        return None

    def _opened(self, scope: Scope, root: Path, backup_id: str, data: bytes | None) -> tuple[Path, dict] | None:
        """The folder and checked manifest of a backup ``_read_listed`` read (``data``: its
        manifest's bytes), or None if it is not complete or ``open`` would refuse it."""
        if data is None:
            return None
        try:
            return root / backup_id, self._checked(scope, backup_id, parse_manifest(backup_id, data), True)
        except CorruptBackup:
            return None

    def _listed_backup(self, scope: Scope, root: Path, backup_id: str, data: bytes | None,
                       key: bytes | None) -> tuple[Path, dict, str] | None:
        """``open_each``'s entry for one backup (``_opened``'s checks, ``key`` given)."""
        if data is None:
            return None
        try:
            manifest = parse_manifest(backup_id, data)
            self._check_scope(scope, backup_id, manifest)
            if not is_signed_format(manifest):
                return root / backup_id, manifest, "unsigned"
            authenticate(backup_id, manifest, key)
        except SignedElsewhere:
            return root / backup_id, manifest, "no-key" if key is None else "other-key"
        except CorruptBackup:
            return None
        return root / backup_id, manifest, "valid"

    def _manifest(self, scope: Scope, path: Path, authenticated: bool) -> dict:
        """The manifest of the backup in ``path``, read and checked (see ``open``)."""
        return self._checked(scope, path.name, read_manifest(path), authenticated)

    def _checked(self, scope: Scope, backup_id: str, manifest: dict, authenticated: bool) -> dict:
        """``manifest``, read from backup ``backup_id``, once its signature (unless not
        ``authenticated``), scope, project and run mode are checked (see ``open``)."""
        if authenticated and is_signed_format(manifest):
            authenticate(backup_id, manifest, self.site_key.get())
        self._check_scope(scope, backup_id, manifest)
        return manifest

    def _check_scope(self, scope: Scope, backup_id: str, manifest: dict) -> None:
        """``CorruptBackup`` unless ``manifest`` says it is a backup of ``scope`` in this
        run mode (the folder it was read from)."""
        expected = (scope.kind, scope.project_id)
        if (manifest.get("scope"), manifest.get("project")) != expected:
            raise CorruptBackup(f"backup {backup_id}: manifest is for another scope "
                                f"({manifest.get('scope')} {manifest.get('project') or ''}), not the {scope}")
        if manifest.get("mode") != self.config.mode:
            raise CorruptBackup(f"backup {backup_id}: manifest is for run mode {manifest.get('mode')!r}, "
                                f"not {self.config.mode!r}")

    def staging_path(self, scope: Scope, backup_id: str) -> Path:
        return backups_root(self.config, scope) / (STAGING_PREFIX + validate_backup_id(backup_id))

    def make_staging(self, staging: Path) -> Path:
        """The new folder ``staging`` below a scope's root, and the folders from the backups
        root to it made or given the private mode (``privacy``: whoever made them)."""
        privacy.make_folders(self.config, staging.parent)
        mutations.mkdir(staging, folder_mode(self.config))
        return staging

    def publish(self, staging: Path, scope: Scope, backup_id: str) -> Path:
        """Give the finished backup in ``staging`` its modes and rename it into place."""
        final = self.path(scope, backup_id)
        privacy.seal_backup(self.config, staging)
        mutations.rename(staging, final)
        mutations.fsync_dir(final.parent)
        return final

    def delete(self, scope: Scope, backup_id: str) -> tuple[int, int]:
        """Remove a backup and the objects only it used; return (objects, bytes) freed."""
        path, manifest = self.open(scope, backup_id, authenticated=False)
        check_no_links(self.config.backups_anchor, self.pool.root)
        doomed = DELETING_PREFIX + backup_id
        fencing.check(f"deletion of {backup_id}")
        # Through the scope root's descriptor: a folder swapped for a link after the
        # check above cannot redirect the rename or the removal out of ``backups/``.
        root_fd = open_below(self.config.backups_anchor, path.parent)
        try:
            mutations.rename(backup_id, doomed, src_dir_fd=root_fd, dst_dir_fd=root_fd)
            os.fsync(root_fd)
            digests = [e["hash"] for e in iter_entries(path.parent / doomed, manifest) if e["type"] == "file"]
            mutations.rmtree(doomed, dir_fd=root_fd)
        finally:
            os.close(root_fd)
        return self.pool.release(digests)

    def would_free(self, scope: Scope, backup_ids: list[str]) -> tuple[int, int]:
        """What deleting ``backup_ids`` together would free, as ``delete`` counts it,
        changing nothing: (objects, bytes) of the pool objects whose every other link is
        in those backups (``delete`` then leaves them with the pool's own link alone)."""
        held: dict[tuple[int, int], list] = {}
        for backup_id in backup_ids:
            path, _ = self.open(scope, backup_id, authenticated=False)
            for folder, _, names in os.walk(path / "files"):
                for name in names:
                    st = os.lstat(os.path.join(folder, name))
                    if stat.S_ISREG(st.st_mode):
                        held.setdefault((st.st_dev, st.st_ino), [0, st])[0] += 1
        freed = [st.st_size for links, st in held.values() if st.st_nlink - links == 1]
        return len(freed), sum(freed)

    def refuse_links(self, scope: Scope, backup_id: str) -> None:
        """``LinkedFolder`` if the backup's folder or one above it in ``backups/`` is a link."""
        self._refuse_links(self.path(scope, backup_id))

    def _refuse_links(self, path: Path) -> None:
        """``LinkedFolder`` if the backup ``path``, a folder between the data dir and it,
        or its ``files``/``db`` folder is a link: no backup is used or removed through one."""
        check_no_links(self.config.backups_anchor, path)
        for part in ("files", "db"):
            check_no_links(path, path / part)

    def scope_roots(self) -> list[Path]:
        """Every scope root of this mode: the site's and each project's."""
        roots = [self.config.backups_dir / "site"]
        projects = self.config.backups_dir / "project"
        if projects.is_dir():
            roots.extend(p for p in projects.iterdir() if p.is_dir())
        return roots

    def clean_leftovers(self) -> list[str]:
        """Remove staging and deleting folders left by a crash; return what was removed."""
        removed = []
        for root in self.scope_roots():
            if not root.is_dir() or _linked(self.config.backups_anchor, root):
                continue  # nothing is removed through a link (``open`` and ``delete`` refuse it)
            for entry in os.scandir(root):
                if entry.name.startswith((STAGING_PREFIX, DELETING_PREFIX)) or entry.name.endswith(".tmp"):
                    if entry.is_dir(follow_symlinks=False):
                        mutations.rmtree(Path(entry.path))
                    else:
                        mutations.unlink(Path(entry.path))
                    removed.append(f"{root.name}/{entry.name}")
        if removed:
            self.pool.collect_garbage()
        return removed


def _listed(root: Path) -> list[str]:
    """The names below ``root`` that are backup ids and folders (not links), newest first:
    one listing of the folder, no ``stat`` of each (whether a backup is complete is its
    manifest's business)."""
    try:
        entries = list(os.scandir(root))
    except (FileNotFoundError, NotADirectoryError):
        return []
    found = [  # plain strings, not Paths: this runs per backup in every listing
        entry.name for entry in entries if is_backup_id(entry.name) and entry.is_dir(follow_symlinks=False)
    ]
    return sorted(found, key=backup_id_sort_key, reverse=True)


def _read_listed(root: Path, backup_id: str) -> tuple[str, bytes | None]:
    """The bytes of the manifest of backup ``backup_id`` below ``root`` (whose folders are
    checked for links), or None when the backup is not complete or is refused
    (``LinkedFolder``: its folder, ``files`` or ``db`` is a link). Only system calls: this
    runs on the reader threads of ``open_each``."""
    backup_id, data = _read_manifest_bytes(root, backup_id)
    if data is None:
        return backup_id, None  # not complete: ``ids`` does not list it either
    path = os.path.join(root, backup_id)  # strings: Paths cost more than the checks
    try:
        for folder in (path, os.path.join(path, "files"), os.path.join(path, "db")):
            check_folder(folder)
    except LinkedFolder:
        return backup_id, None
    return backup_id, data


def _read_manifest_bytes(root: Path, backup_id: str) -> tuple[str, bytes | None]:
    """The bytes of the manifest of backup ``backup_id`` below ``root``, or None when it
    has none (not complete) or it is not a file (``manifest.read_manifest_bytes``)."""
    return backup_id, read_manifest_bytes(os.path.join(root, backup_id))


# The top-level "sequence" as ``manifest`` writes it (indented 2, one key a line). Only a
# top-level key starts a line with exactly two spaces: a string's own line breaks are
# escaped in JSON, and nested keys are indented further.
WRITTEN_SEQUENCE = re.compile(rb'^  "sequence": (0|[1-9][0-9]{0,17}),?$', re.MULTILINE)


def _written_sequence(backup_id: str, data: bytes) -> int:
    """The sequence number in the manifest ``data`` of backup ``backup_id`` (0 when it has
    none or is not a manifest), from its line when written by Strongroom, else parsed."""
    found = WRITTEN_SEQUENCE.findall(data)
    if len(found) == 1:
        return int(found[0])
    try:
        sequence = parse_manifest(backup_id, data).get("sequence", 0)
    except CorruptBackup:
        return 0
    return sequence if isinstance(sequence, int) and sequence > 0 else 0


def _sequence(path: Path) -> int:
    try:
        sequence = read_manifest(path).get("sequence", 0)
    except CorruptBackup:
        return 0
    return sequence if isinstance(sequence, int) and sequence > 0 else 0


def _linked(data_dir: Path, folder: Path) -> bool:
    try:
        check_no_links(data_dir, folder)
    except LinkedFolder:
        return True
    return False
