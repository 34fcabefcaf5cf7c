"""Verifying a backup: the checks before a restore, ``verify`` itself, and its repairs.

``check_before_restore`` is what a restore can afford before it changes anything: the
manifest is signed (``store.open`` checked the signature), the record dumps and their
JSON and metadata re-hash to the manifest's checksums (they are small), and each file's
stored object is there, of its size and read-only (an object that is not is re-hashed).
The content of every object the restore copies is hashed again as it is copied. The
file list is read through the restore's ``CheckedList``, so that the build takes the
entries the check accepted without reading them again (``checkedlist``); each stored
file is looked at from its folder's descriptor, folders opened without following links.

``verify_backup`` reads everything: every file re-hashed, every dump, and the backup
folder itself, which must hold nothing the manifest does not list. On the way it makes
``backups/``, the run mode's folder, the pool and the stored files private again where
their modes let others in (``privacy``), and says so. With ``repair``, a file whose
stored content no longer matches its hash is stored again (``repairing``) from the pool
or the live file when one of them still has that content; what cannot be repaired stays
a problem, naming the backup. With ``sign_unsigned``, a backup made before manifests
were signed (format 1) that verifies clean is signed, so that it may be restored.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

from strongroom.check import repairing
from strongroom.db import dbdump
from strongroom.errors import CorruptBackup, KeyMissing, KeyRefused
from strongroom.fs import privacy
from strongroom.fs.nofollow import FolderChain
from strongroom.progress_model import announce
from strongroom.repo import signing
from strongroom.repo.checkedlist import CheckedList
from strongroom.repo.checks_record import CHECKED, CHECKED_NEW
from strongroom.repo.manifest import (
    FILE_LIST,
    FORMAT_VERSION,
    MANIFEST,
    is_signed_format,
    iter_entries,
    replace_manifest,
)
from strongroom.repo.pool import hash_file
from strongroom.scopes import Scope, scope_dir

REPORT_BYTES = 8 << 20  # progress after every 100 files, and after any file this big


def check_before_restore(path: Path, manifest: dict, listing: CheckedList | None = None,
                         each: Callable[[dict], None] | None = None) -> list[str]:
    """What a restore checks before it changes anything, without reading every file.

    ``listing``, if given, is the backup's file list read through it, so that the
    restore's build can take the checked entries without reading them again. ``each``,
    if given, sees every entry of the list in the same pass (``matching``)."""
    if not is_signed_format(manifest):
        unsigned = (f"backup {manifest['id']} was made before backups were signed; check and sign it "
                    f"first with `strongroom verify {manifest['id']} --sign-unsigned`")
        return [unsigned]
    problems = dbdump.verify_dump(path / "db", manifest["collections"])
    entries = listing.check() if listing is not None else iter_entries(path, manifest)
    stored = _StoredFolders(path / "files")
    try:
        for entry in entries:
            if each is not None:
                each(entry)
            if entry["type"] != "file" or not stored.suspect(entry):
                continue
            problem = check_entry(path / "files", entry)
            if problem:
                problems.append(problem)
    except CorruptBackup as exc:
        problems.append(str(exc))
    finally:
        stored.close()
    return problems


class _StoredFolders:
    """The backup's stored files, each looked at from its folder's descriptor (one
    ``lstat`` of a name, not of a whole path), folders opened without following links."""

    def __init__(self, files_dir: Path):
        try:
            self._root: int | None = os.open(files_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            self._root = None  # every file is then suspect, and its check says why
        self._chain = FolderChain(self._root, strict=False)

    def suspect(self, entry: dict) -> bool:
        parent, _, name = entry["path"].rpartition("/")
        folder = self._chain.at(parent)
        if folder is None:
            return True
        try:
            return not looks_intact(os.lstat(name, dir_fd=folder), entry)
        except OSError:
            return True

    def close(self) -> None:
        self._chain.close()
        if self._root is not None:
            os.close(self._root)


def verify_backup(sr, scope: Scope, backup_id: str, *, repair: bool = False,
                  sign_unsigned: bool = False) -> dict:
    """Everything about one backup (lock held by the caller).

    ``{"id", "ok", "problems", "signed", "fixed", "repaired", "notes", "not_checked"}``:
    ``fixed`` lists the modes made private in the backup (the service adds the folders
    above it), ``repaired`` the files stored again. A signed backup met with no usable
    site key (none, or one refused) is not checked at all: ``ok`` is None and
    ``not_checked`` says why (a missing key is no damage of the backup's).
    """
    report = {"id": backup_id, "ok": False, "problems": [], "signed": False,
              "fixed": [],
              "repaired": [], "notes": [], "not_checked": None}
    try:
        path, manifest = sr.store.open(scope, backup_id)
    except (KeyMissing, KeyRefused) as exc:
        report.update(ok=None, not_checked=str(exc))
        return report
    except CorruptBackup as exc:
        report["problems"] = [str(exc)]
        return report
    tightened = privacy.seal_backup(sr.config, path)  # made before its modes were given when written
    if tightened:
        report["fixed"].append(f"{len(tightened)} folders and files of {path} (records, lists) had modes "
                               f"others could use; now {privacy.folder_mode(sr.config):04o} and "
                               f"{privacy.file_mode(sr.config):04o}")
    found = Findings()
    check_content(sr, path, manifest, found)
    if repair and found.list_intact:
        report["repaired"] = _repair(sr, scope, path, found)
    if found.private_again:
        report["fixed"].append(f"{found.private_again} stored files were readable by others; "
                               f"now mode {privacy.object_mode(sr.config):04o}")
    report["problems"] = found.problems
    report["ok"] = not found.problems
    report["signed"] = is_signed_format(manifest)
    if not report["signed"]:
        if sign_unsigned and report["ok"]:
            _sign_later(sr, path, manifest)
            report["signed"] = True
            report["notes"].append("made before backups were signed: checked and signed now")
        else:
            report["notes"].append("made before backups were signed: content checked; restore refuses "
                                   f"it until `strongroom verify {backup_id} --sign-unsigned`")
    return report


class Findings:
    def __init__(self) -> None:
        self.problems: list[str] = []
        self.damaged: list[tuple[dict, str]] = []  # file entries whose stored content is wrong
        self.list_intact = True  # the file list matched its manifest: its hashes may be used
        self.private_again = 0


def _repair(sr, scope: Scope, path: Path, found: Findings) -> list[str]:
    """Store again what can be; what is repaired is no longer a problem."""
    repaired = []
    live = scope_dir(sr.config, scope)
    for entry, problem in found.damaged:
        done = repairing.repair_file(sr.store.pool, path / "files", live, entry)
        if done:
            found.problems.remove(problem)
            repaired.append(done)
    return repaired


def check_content(sr, path: Path, manifest: dict, found: Findings) -> None:
    """Every dump and stored file re-hashed against ``manifest`` (as given: authenticating
    it is the caller's), and nothing in the folder it does not list; into ``found``."""
    found.problems.extend(dbdump.verify_dump(path / "db", manifest["collections"]))
    wanted, gid = privacy.object_mode(sr.config), privacy.group_id(sr.config)
    total, done, files = manifest["files"].get("bytes", 0), 0, 0
    announce(sr.progress, [("verifying", total)])
    sr.progress("verifying", 0, total)
    try:
        for entry in iter_entries(path, manifest):
            problem = check_entry(path / "files", entry)
            if problem:
                found.problems.append(problem)
                if entry["type"] == "file":
                    found.damaged.append((entry, problem))
            elif entry["type"] == "file" and privacy.repair_object(path / "files" / entry["path"], wanted, gid):
                found.private_again += 1
            if entry["type"] == "file":
                done, files = done + entry.get("size", 0), files + 1
                if files % 100 == 0 or entry.get("size", 0) >= REPORT_BYTES:
                    sr.progress("verifying", done, total)
    except CorruptBackup as exc:
        found.problems.append(str(exc))
        found.list_intact = False
    found.problems.extend(unlisted_files(path, manifest, complete=found.list_intact and not found.problems))
    sr.progress("verifying", total, total)


def check_entry(files_dir: Path, entry: dict) -> str | None:
    """Does the backup's copy of one file-list entry match it? A problem, or None."""
    target = files_dir / entry["path"]
    try:
        if entry["type"] == "file":
            digest, size = hash_file(target)
            if digest != entry["hash"] or size != entry["size"]:
                return f"file {entry['path']} does not match its hash: its content was changed"
        elif entry["type"] == "symlink":
            if os.readlink(target) != entry["target"]:
                return f"link {entry['path']} points elsewhere than recorded"
        elif not stat.S_ISDIR(os.lstat(target).st_mode):
            return f"folder {entry['path']} is missing"
    except FileNotFoundError:
        return f"{entry['type']} {entry['path']} is missing"
    except OSError as exc:
        return f"{entry['type']} {entry['path']} cannot be read: {exc.strerror}"
    return None


def object_suspect(stored: str, entry: dict) -> bool:
    """Is a backup's file not what an intact pool object looks like? (missing, resized,
    writable: objects are 0400, or 0440 with a backup group, or 0444 from older versions)"""
    try:
        st = os.lstat(stored)
    except OSError:
        return True
    return not looks_intact(st, entry)


def looks_intact(st: os.stat_result, entry: dict) -> bool:
    """Is the stored file ``st`` a regular, read-only file of the entry's size?"""
    return stat.S_ISREG(st.st_mode) and st.st_size == entry["size"] and not st.st_mode & 0o222


def unlisted_files(path: Path, manifest: dict, complete: bool) -> list[str]:
    """What lies in the backup folder that the manifest does not account for.

    Outside ``files/`` the expected names are few. Inside it, when every listed entry
    was found (``complete``), counting what is there is enough: more than the list means
    extras, and only then is the list read again to name them.
    """
    collections = list(manifest["collections"])
    expected = {
        "": {MANIFEST, FILE_LIST, "files", "db", CHECKED, CHECKED_NEW},  # the last check's note is no content
        "db": {dbdump.BSON_DIR, dbdump.JSON_DIR},
        f"db/{dbdump.BSON_DIR}": {f"{c}.bson" for c in collections} | {f"{c}.metadata.json" for c in collections},
        f"db/{dbdump.JSON_DIR}": {f"{c}.json" for c in collections},
    }
    extras = []
    for folder, names in expected.items():
        try:
            found = set(os.listdir(path / folder)) if folder else set(os.listdir(path))
        except (FileNotFoundError, NotADirectoryError):
            continue  # what is missing is reported by the checks of what should be there
        extras.extend(f"{folder}/{name}".lstrip("/") for name in sorted(found - names))
    files = path / "files"
    if complete and _count_tree(files) == manifest["files"]["entries"]:
        return [f"{extra} is in the backup folder but not in its manifest" for extra in extras]
    try:
        listed = {entry["path"] for entry in iter_entries(path, manifest)}
    except CorruptBackup:
        listed = set()
    extras.extend(f"files/{rel}" for rel in _walk_names(files) if rel not in listed)
    return [f"{extra} is in the backup folder but not in its manifest" for extra in extras]


def _walk_names(root: Path) -> Iterator[str]:
    """Every path below ``root``, relative, never following a link."""
    stack = [("", str(root))]
    while stack:
        prefix, folder = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            rel = prefix + entry.name
            yield rel
            if entry.is_dir(follow_symlinks=False):
                stack.append((rel + "/", entry.path))


def _count_tree(root: Path) -> int:
    return sum(1 for _ in _walk_names(root))


def _sign_later(sr, path: Path, manifest: dict) -> None:
    """Turn a verified format-1 manifest into a signed one, recording the checksums of
    the JSON and metadata files as they are now."""
    collections = {}
    for name, info in manifest["collections"].items():
        collections[name] = {**info,
                             "json_sha256": _sha256(path / "db" / dbdump.JSON_DIR / f"{name}.json"),
                             "metadata_sha256": _sha256(path / "db" / dbdump.BSON_DIR / f"{name}.metadata.json")}
    signed_at = datetime.now(UTC).isoformat(timespec="seconds")
    unsigned = {**manifest, "format_version": FORMAT_VERSION, "collections": collections,
                "signed_later": {"at": signed_at}}
    replace_manifest(path, signing.sign(unsigned, sr.store.site_key.get(create=True)))


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
