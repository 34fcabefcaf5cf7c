"""The manifest: what a backup holds, written last, read and checked before any use.

``manifest.json`` records the backup's identity (format, tool version, scope, mode, id,
created at/by, reason, note), per collection the count, size and SHA-256 of its BSON
file and the SHA-256 of its JSON and metadata files, a summary of the files (with the
mode of the folder itself) and the timings of each phase. Since format 2 it is signed
(``signing``): its checksums cover everything a restore or ``verify`` reads. Format 1
manifests (made before signing) are still read; ``verifying`` decides what they may do. The file list itself is
``files.jsonl`` beside it: one JSON object per line, streamed while the tree is walked,
so no structure proportional to the tree is built in memory; the manifest records its
SHA-256. A backup folder without ``manifest.json`` is incomplete and never used.

A file-list entry is ``{"path", "type": "file"|"dir"|"symlink", "mode", "mtime_ns"}``
plus ``size``, ``hash``, ``ino`` and ``ctime_ns`` for a file and ``target`` for a link.
A file may also carry ``sparse: true`` (it has holes, and so does its object), ``nlink``
(its inode has more names) and ``hardlink``: the path of an earlier file entry with
``nlink`` whose inode it shares, which a restore gives back as a hard link.
Every entry read back is validated: paths through ``ids.check_relative_path``, hashes
as 64 hex digits; anything else makes the backup ``CorruptBackup``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from strongroom import __version__
from strongroom.errors import CorruptBackup, InvalidName
from strongroom.fs import mutations
from strongroom.fs.walking import path_key
from strongroom.ids import backup_id_time, check_relative_path, validate_backup_id
from strongroom.repo.jsonlines import dumps_line, loads_line

FORMAT = "strongroom-backup"
FORMAT_VERSION = 2  # 2: signed (``signing``), with the hashes of each collection's JSON and metadata
UNSIGNED_VERSION = 1  # made before signing existed: listed and verified, restored once signed
MANIFEST = "manifest.json"
FILE_LIST = "files.jsonl"
HEX64 = re.compile(r"\A[0-9a-f]{64}\Z")
ENTRY_TYPES = ("file", "dir", "symlink")
COUNTED_AS = {"file": "files", "symlink": "links", "dir": "folders"}


def counted_as(entry_type: str) -> str:
    """The one rule for every count a person reads: under which word an entry of a file
    list (or a live path of that type) is counted. Only regular files are "files";
    folders and symbolic links are counted apart, so "44 files" means 44 files
    wherever it is shown (a backup's summary, the preview, the CLI and the API)."""
    return COUNTED_AS[entry_type]


REASONS = ("manual", "pre-restore", "scheduled", "import")


FLUSH_BYTES = 1 << 20  # the file list is written in blocks of about this size


class FileListWriter:
    """Streams file-list entries to ``files.jsonl`` and hashes them on the way."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = mutations.create(path)
        self._hash = hashlib.sha256()
        # One buffer, not a list of lines: each line orjson returns holds a few KB of
        # memory while it lives (4,096 kept lines were 15 MB of peak memory).
        self._pending = bytearray()
        self.count = 0

    def add(self, entry: dict) -> None:
        line = dumps_line(entry)  # names that are not UTF-8 kept intact as ASCII escapes
        self._hash.update(line)
        self._pending += line
        self.count += 1
        if len(self._pending) >= FLUSH_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            mutations.write(self._fh, self._pending)
            self._pending = bytearray()

    def close(self) -> str:
        """Flush, sync and close; return the SHA-256 of the whole list."""
        self._flush()
        self._fh.flush()
        os.fsync(self._fh.fileno())
        self._fh.close()
        return self._hash.hexdigest()

    def abort(self) -> None:
        self._fh.close()


def write_manifest(backup_dir: Path, manifest: dict) -> None:
    """Write and sync ``manifest.json``: after this the backup's content is durable."""
    mutations.write_file(backup_dir / MANIFEST, _manifest_bytes(manifest), sync=True)
    mutations.fsync_dir(backup_dir)


def replace_manifest(backup_dir: Path, manifest: dict) -> None:
    """Replace a published backup's manifest in one step: written and synced beside it
    under a hidden name, then renamed over it (used only to sign a format 1 backup)."""
    beside = backup_dir / f".{MANIFEST}.new"
    if os.path.lexists(beside):
        mutations.unlink(beside)
    mutations.write_file(beside, _manifest_bytes(manifest), sync=True)
    mutations.rename(beside, backup_dir / MANIFEST)
    mutations.fsync_dir(backup_dir)


def _manifest_bytes(manifest: dict) -> bytes:
    return json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False).encode() + b"\n"


def new_manifest(**fields) -> dict:
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "tool_version": __version__, **fields}


def read_manifest(backup_dir: Path) -> dict:
    """The manifest of a complete backup, checked for form; ``CorruptBackup`` otherwise."""
    try:
        data = (backup_dir / MANIFEST).read_bytes()
    except FileNotFoundError:
        raise CorruptBackup(f"backup {backup_dir.name} has no manifest: it is incomplete") from None
    return parse_manifest(backup_dir.name, data)


def read_manifest_bytes(backup_dir: Path | str) -> bytes | None:
    """The bytes of ``manifest.json`` in ``backup_dir``, or None when it has none (not
    complete) or it is not a file. Opened without blocking: a FIFO in the manifest's
    place must not hang the reader (listings read these on threads, unauthenticated)."""
    try:
        fd = os.open(os.path.join(backup_dir, MANIFEST), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        info = os.fstat(fd)
        return _read_all(fd, info.st_size) if stat.S_ISREG(info.st_mode) else None
    finally:
        os.close(fd)


def _read_all(fd: int, size: int) -> bytes:
    """Everything in the file ``fd`` of ``size`` bytes (more if it grew meanwhile)."""
    chunks = [os.read(fd, size + 1)]
    while chunks[-1] and sum(map(len, chunks)) > size:
        chunks.append(os.read(fd, 1 << 16))
    return b"".join(chunks)


def parse_manifest(name: str, data: bytes) -> dict:
    """The manifest of backup ``name`` from the bytes of its file, checked for form as
    ``read_manifest`` checks it (for callers that read the file themselves)."""
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise CorruptBackup(f"backup {name}: manifest is not valid JSON ({exc})") from None
    _check_manifest(name, manifest)
    return manifest


def _check_manifest(name: str, manifest: object) -> None:
    problem = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        problem = "not a Strongroom manifest"
    elif manifest.get("format_version") not in (UNSIGNED_VERSION, FORMAT_VERSION):
        problem = f"format version {manifest.get('format_version')!r} is not supported"
    elif manifest.get("id") != name:
        problem = f"manifest names backup {manifest.get('id')!r}"
    elif not isinstance(manifest.get("collections"), dict) or not isinstance(manifest.get("files"), dict):
        problem = "manifest lacks its collections or files"
    if problem is None and not _valid_sequence(manifest.get("sequence", 0)):
        problem = "manifest gives an invalid sequence number"
    if problem is None and not _valid_root(manifest["files"].get("root")):
        problem = "manifest gives the folder itself an invalid mode or time"
    if problem is None:
        try:
            validate_backup_id(manifest["id"])
            for collection in manifest["collections"]:
                validate_collection_name(collection)
        except InvalidName as exc:
            problem = str(exc)
    if problem is None and manifest["format_version"] == FORMAT_VERSION:
        problem = _missing_checksum(manifest)
    if problem:
        raise CorruptBackup(f"backup {name}: {problem}")


def check_manifest(name: str, manifest: object) -> None:
    """``CorruptBackup`` unless ``manifest`` is a well-formed manifest of backup ``name``
    (for a manifest read from elsewhere than a backup folder: an archive)."""
    _check_manifest(name, manifest)


def _missing_checksum(manifest: dict) -> str | None:
    """A signed manifest must hold a checksum of everything a restore or verify reads."""
    if not HEX64.match(str(manifest["files"].get("list_sha256"))):
        return "manifest lacks the checksum of its file list"
    for name, info in manifest["collections"].items():
        for key in ("sha256", "json_sha256", "metadata_sha256"):
            if not isinstance(info, dict) or not HEX64.match(str(info.get(key))):
                return f"manifest lacks the {key} of collection {name}"
    return None


def is_signed_format(manifest: dict) -> bool:
    """Made since manifests are signed? (Format 1 backups carry no signature.)"""
    return manifest.get("format_version") == FORMAT_VERSION


def restorable_root_mode(mode: int) -> int:
    """The mode a restore gives the scope's folder: never setuid or setgid, and its owner
    may always list, enter and change it, whatever a manifest says."""
    return (mode & 0o1777) | 0o700


def _valid_sequence(sequence: object) -> bool:
    return isinstance(sequence, int) and not isinstance(sequence, bool) and sequence >= 0


def _valid_root(root: object) -> bool:
    if root is None:
        return True
    return (isinstance(root, dict) and isinstance(root.get("mode"), int) and 0 <= root["mode"] <= 0o7777
            and isinstance(root.get("mtime_ns"), int))


COLLECTION_NAME = re.compile(r"\A[A-Za-z0-9_][A-Za-z0-9_.\-]{0,119}\Z")


def validate_collection_name(name: object) -> str:
    """A collection name safe to use as a file name (no separators, no leading dot)."""
    if not isinstance(name, str) or not COLLECTION_NAME.match(name) or ".." in name:
        raise InvalidName(f"not a collection name Strongroom can store: {name!r}")
    return name


def iter_entries(backup_dir: Path, manifest: dict) -> Iterator[dict]:
    """The backup's file-list entries, each validated (see ``iter_file_list``)."""
    files = manifest["files"]
    return iter_file_list(backup_dir / FILE_LIST, f"backup {backup_dir.name}",
                          files.get("list_sha256"), files.get("entries"))


def iter_file_list(path: Path, name: str, sha256: str | None, entries: int | None) -> Iterator[dict]:
    """The entries of a file list, each validated; its hash and count are checked at the end.

    Besides each entry's form, the list's shape is checked as it streams: paths come in
    walk order, each exactly once, and each entry's parent is a folder entry already
    seen. So no entry can lead through a link or a file: a restore that creates the
    entries in order never follows a link out of the scope.
    """
    try:
        with open(path, "rb") as fh:
            yield from check_file_list(fh, name, sha256, entries)
    except FileNotFoundError:
        raise CorruptBackup(f"{name} has no file list") from None


def check_file_list(lines: Iterable[bytes], name: str, sha256: str | None, entries: int | None) -> Iterator[dict]:
    """``iter_file_list`` of lines already at hand (an open file, or bytes held in memory)."""
    hasher = hashlib.sha256()
    count = 0
    folders: list[str] = []  # the chain of folders leading to the current entry
    linkable: set[str] = set()  # files with more names, which later entries may link to
    previous: tuple[str, ...] = ()
    for line in lines:
        hasher.update(line)
        count += 1
        entry = _checked_entry(name, line)
        previous = _check_place(name, entry, folders, previous, linkable)
        yield entry
    if hasher.hexdigest() != sha256 or count != entries:
        raise CorruptBackup(f"{name}: file list does not match its manifest")


def _check_place(name: str, entry: dict, folders: list[str], previous: tuple, linkable: set[str]) -> tuple:
    """Where the entry stands in the list: after the previous one, inside a folder of the
    list, and, for a hard link, naming an earlier file entry (never a link or a folder,
    through which a restore could reach out of the scope)."""
    key = path_key(entry["path"])
    if key <= previous:
        raise CorruptBackup(f"{name}: file list out of order at {entry['path']!r}")
    parent = "/".join(key[:-1])
    while folders and folders[-1] != parent:
        folders.pop()
    if parent and not folders:
        raise CorruptBackup(f"{name}: {entry['path']!r} is not inside a folder of the backup")
    if entry["type"] == "dir":
        folders.append(entry["path"])
    elif "hardlink" in entry and entry["hardlink"] not in linkable:
        raise CorruptBackup(f"{name}: {entry['path']!r} is a hard link to {entry['hardlink']!r}, "
                            "which is no earlier file of the backup")
    if "nlink" in entry:
        linkable.add(entry["path"])
    return key


def _checked_entry(name: str, line: bytes) -> dict:
    """One entry, checked for form; ``name`` says whose list it is in errors."""
    try:
        entry = loads_line(line)
        check_relative_path(entry["path"])
        kind = entry["type"]
        if kind not in ENTRY_TYPES or not isinstance(entry.get("mtime_ns"), int):
            raise ValueError(f"bad entry {entry['path']!r}")
        if kind == "file" and not (HEX64.match(str(entry.get("hash"))) and isinstance(entry.get("size"), int)):
            raise ValueError(f"bad file entry {entry['path']!r}")
        if kind == "symlink" and not isinstance(entry.get("target"), str):
            raise ValueError(f"bad link entry {entry['path']!r}")
        if kind != "symlink" and not (isinstance(entry.get("mode"), int) and 0 <= entry["mode"] <= 0o7777):
            raise ValueError(f"bad mode for {entry['path']!r}")
        _check_file_extras(entry, kind)
    except (ValueError, KeyError, TypeError, InvalidName) as exc:
        raise CorruptBackup(f"{name}: file list: {exc}") from None
    return entry


def _check_file_extras(entry: dict, kind: str) -> None:
    """``sparse``, ``nlink`` and ``hardlink``: only on files, each of its form."""
    extras = [key for key in ("sparse", "nlink", "hardlink") if key in entry]
    if not extras:
        return
    if kind != "file":
        raise ValueError(f"{entry['path']!r}: only files have {extras[0]!r}")
    if "sparse" in entry and entry["sparse"] is not True:
        raise ValueError(f"bad sparse flag for {entry['path']!r}")
    if "nlink" in entry and not (isinstance(entry["nlink"], int) and not isinstance(entry["nlink"], bool)
                                 and entry["nlink"] >= 2):
        raise ValueError(f"bad link count for {entry['path']!r}")
    if "hardlink" in entry:
        check_relative_path(entry["hardlink"])


def started_at(manifest: dict) -> str:
    """When the backup started: the time its id was made from. ``created_at`` is when it
    was finished. Backups made before ``started_at`` was recorded take their id's time."""
    recorded = manifest.get("started_at")
    if isinstance(recorded, str):
        return recorded
    return backup_id_time(manifest["id"]).isoformat(timespec="seconds")


def summary(manifest: dict) -> dict:
    """The stable JSON form of a backup for ``list --json`` and the API: ``started_at``
    (the id's time) and ``created_at`` (when it was finished) both given."""
    files = manifest["files"]
    return {
        "id": manifest["id"],
        "scope": manifest["scope"],
        "project": manifest.get("project"),
        "mode": manifest.get("mode"),
        "started_at": started_at(manifest),
        "created_at": manifest.get("created_at"),
        "created_by": manifest.get("created_by"),
        "reason": manifest.get("reason"),
        "note": manifest.get("note", ""),
        "files": files.get("count", 0),
        "bytes": files.get("bytes", 0),
        "bytes_added": files.get("bytes_added", 0),
        "records": {name: info.get("count", 0) for name, info in manifest["collections"].items()},
        "warnings": list(manifest.get("warnings", [])),
    }


def file_list_intact(backup_dir: Path, manifest: dict) -> bool:
    """True when ``files.jsonl`` still hashes to what the manifest recorded."""
    try:
        with open(backup_dir / FILE_LIST, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() == manifest["files"].get("list_sha256")
    except FileNotFoundError:
        return False


def file_mode(mode: int) -> int:
    """The mode a restored file gets: permissions only, never setuid, setgid or sticky."""
    return mode & 0o777


def same_file(entry: dict, st: os.stat_result | None) -> bool:
    """rsync's quick check, plus the mode: a live file that needs no copy and no change.

    The mode counts because an unchanged file is hard-linked into the new tree, sharing
    its inode: changing its mode would change the live tree before the swap.
    """
    return (
        st is not None
        and stat.S_ISREG(st.st_mode)
        and st.st_size == entry["size"]
        and st.st_mtime_ns == entry["mtime_ns"]
        and stat.S_IMODE(st.st_mode) == file_mode(entry["mode"])
    )
