"""Looking inside a backup: list a folder, read one file, pack one folder as a tar.gz stream.

Everything comes from the backup's authenticated manifest: the file list (``files.jsonl``,
each entry validated as it streams, its hash checked at the end) says which folders and
files there are, with their size and time; the collections and their record counts are
the manifest's, which ``verify`` checks against the dumps. A path asked for goes through
``ids.validate_relative_path`` (the one validator) and must be an entry of the list, so
no request names anything outside the backup's ``files/``.

Stored content is read from the backup's ``files/`` (hard links into the pool) opened
one folder at a time without following links, and hashed as it is streamed: the last
block is held back until the hash matches the manifest's, so damaged content is never
delivered whole (``CorruptBackup`` is raised instead, and a download ends short of its
announced length). Nothing here holds a whole file or archive in memory. A file written
out (``write_file``, for ``get``) keeps the holes of its stored object: only the object's
data ranges are read and written (``SEEK_DATA``/``SEEK_HOLE``, as the pool and restores
copy), so a 100 GB sparse file takes its data's room, not its length's.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from strongroom.errors import CorruptBackup, NotFound
from strongroom.fs.nofollow import open_below
from strongroom.ids import validate_relative_path
from strongroom.repo.manifest import iter_entries
from strongroom.repo.pool import copy_keeping_holes

CHUNK = 1 << 20


def normalise(path: str | None) -> str:
    """A path inside a backup: ``""`` (or None) is the top; any other is validated
    (``InvalidName`` for ``..``, an absolute path, an empty part, NUL, …)."""
    if not path:
        return ""
    validate_relative_path(path)
    return path


def iso_time(mtime_ns: int) -> str:
    return datetime.fromtimestamp(mtime_ns / 1e9, UTC).isoformat(timespec="seconds")


def list_folder(backup_dir: Path, manifest: dict, path: str | None = "") -> dict:
    """What the backup holds at ``path``: ``{"backup", "path", "type", "folders", "files",
    "collections"}``. ``folders``: each child folder with ``name``, ``path``, ``mtime`` and
    the ``files`` and ``bytes`` below it; ``files``: each child file or link with ``name``,
    ``path``, ``type``, ``size``, ``mtime`` (and ``target`` for a link). A ``path`` that
    names a file lists that one file. ``NotFound`` when the backup has no such entry."""
    path = normalise(path)
    prefix = f"{path}/" if path else ""
    folders: dict[str, dict] = {}
    files: list[dict] = []
    found_kind = "dir" if not path else None
    for entry in iter_entries(backup_dir, manifest):
        rel = entry["path"]
        if rel == path:
            found_kind = entry["type"]
            if entry["type"] != "dir":
                files.append(_file_row(entry))
            continue
        if not rel.startswith(prefix):
            continue
        name, _, below = rel[len(prefix):].partition("/")
        if not below:
            if entry["type"] == "dir":
                folders[name] = {"name": name, "path": rel, "mtime": iso_time(entry["mtime_ns"]), "files": 0, "bytes": 0}
            else:
                files.append(_file_row(entry))
        elif name in folders and entry["type"] == "file":
            folders[name]["files"] += 1
            folders[name]["bytes"] += entry["size"]
    if found_kind is None:
        raise NotFound(f"backup {manifest['id']} holds nothing at {path!r}")
    collections = {name: info.get("count", 0) for name, info in manifest["collections"].items()}
    return {"backup": manifest["id"], "path": path, "type": found_kind, "folders": list(folders.values()),
            "files": files, "collections": collections if not path else {}}


def _file_row(entry: dict) -> dict:
    row = {"name": entry["path"].rsplit("/", 1)[-1], "path": entry["path"], "type": entry["type"],
           "size": entry.get("size", 0), "mtime": iso_time(entry["mtime_ns"])}
    if entry["type"] == "symlink":
        row["target"] = entry["target"]
    return row


def find_entry(backup_dir: Path, manifest: dict, path: str) -> dict:
    """The file-list entry at ``path`` (validated); ``NotFound`` if there is none."""
    path = normalise(path)
    if not path:
        return {"path": "", "type": "dir"}
    for entry in iter_entries(backup_dir, manifest):
        if entry["path"] == path:
            return entry
    raise NotFound(f"backup {manifest['id']} holds nothing at {path!r}")


def read_file(backup_dir: Path, entry: dict) -> Iterator[bytes]:
    """The stored content of the file ``entry``, in blocks, checked against its hash: the
    last block comes only once the whole content matched (``CorruptBackup`` otherwise)."""
    if entry["type"] != "file":
        raise NotFound(f"{entry['path'] or 'the top folder'} is a {_kind(entry)}, not a file")
    # A file object, not a bare descriptor: a stream dropped before it starts still closes it.
    return _checked_blocks(open(_open_stored(backup_dir, entry["path"]), "rb", buffering=0), entry)


def _open_stored(backup_dir: Path, rel: str) -> int:
    """The stored file ``files/<rel>``, opened without following a link anywhere below ``files/``."""
    parent, _, name = rel.rpartition("/")
    files = backup_dir / "files"
    try:
        folder = open_below(files, files / parent if parent else files)
    except OSError as exc:
        raise CorruptBackup(f"backup {backup_dir.name}: the folder of {rel} cannot be opened: {exc.strerror}") from None
    try:
        return os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=folder)
    except OSError as exc:
        raise CorruptBackup(f"backup {backup_dir.name}: file {rel} cannot be read: {exc.strerror}") from None
    finally:
        os.close(folder)


def _checked_blocks(fh, entry: dict) -> Iterator[bytes]:
    hasher, size, held = hashlib.sha256(), 0, b""
    with fh:
        while block := fh.read(CHUNK):
            hasher.update(block)
            size += len(block)
            if held:
                yield held
            held = block
    if hasher.hexdigest() != entry["hash"] or size != entry["size"]:
        raise CorruptBackup(f"file {entry['path']} in the backup does not match its hash: its content was changed")
    if held:
        yield held


def write_file(backup_dir: Path, entry: dict, fd: int) -> int:
    """Write the stored content of the file ``entry`` into the new, empty file open as
    ``fd``, keeping the stored object's holes, and check it against the entry's hash:
    ``CorruptBackup`` if it does not match (the caller removes what was written); returns
    the length written."""
    if entry["type"] != "file":
        raise NotFound(f"{entry['path'] or 'the top folder'} is a {_kind(entry)}, not a file")
    with (open(_open_stored(backup_dir, entry["path"]), "rb", buffering=0) as fin,
          open(fd, "wb", buffering=0, closefd=False) as fout):
        digest, size = copy_keeping_holes(fin, fout)
    if digest != entry["hash"] or size != entry["size"]:
        raise CorruptBackup(f"file {entry['path']} in the backup does not match its hash: its content was changed")
    return size


def _kind(entry: dict) -> str:
    return {"dir": "folder", "symlink": "link"}.get(entry["type"], entry["type"])


def archive_folder(backup_dir: Path, manifest: dict, path: str | None = "") -> Iterator[bytes]:
    """The folder at ``path`` (its files, folders and links, with their modes and times) as
    a gzip-compressed tar stream, members named below the folder's own name (the backup id
    for the top). Each file's content is checked against its hash as it is packed."""
    path = normalise(path)
    top = find_entry(backup_dir, manifest, path)
    if top["type"] != "dir":
        raise NotFound(f"{path} is a {_kind(top)}, not a folder")
    root = path.rsplit("/", 1)[-1] if path else manifest["id"]
    prefix = f"{path}/" if path else ""
    return _gzipped(_tar_blocks(backup_dir, manifest, path, prefix, root, top))


def archive_name(manifest: dict, path: str) -> str:
    """The file name a download of the folder at ``path`` gets: ``<backup id>[-<folder>].tar.gz``."""
    path = normalise(path)
    return f"{manifest['id']}-{path.rsplit('/', 1)[-1]}.tar.gz" if path else f"{manifest['id']}.tar.gz"


def _gzipped(blocks: Iterator[bytes]) -> Iterator[bytes]:
    gzip = zlib.compressobj(6, zlib.DEFLATED, 31)  # wbits 31: the gzip format
    pending, size = [], 0
    for block in blocks:
        if out := gzip.compress(block):
            pending.append(out)
            size += len(out)
        if size >= CHUNK:  # fewer, larger writes to the client
            yield b"".join(pending)
            pending, size = [], 0
    pending.append(gzip.flush())
    yield b"".join(pending)


def _tar_blocks(backup_dir, manifest, path, prefix, root, top) -> Iterator[bytes]:
    yield _header(root, top)
    for entry in iter_entries(backup_dir, manifest):
        if not entry["path"].startswith(prefix) or entry["path"] == path:
            continue
        yield _header(f"{root}/{entry['path'][len(prefix):]}", entry)
        if entry["type"] == "file":
            yield from read_file(backup_dir, entry)
            if entry["size"] % tarfile.BLOCKSIZE:
                yield tarfile.NUL * (tarfile.BLOCKSIZE - entry["size"] % tarfile.BLOCKSIZE)
    yield tarfile.NUL * (2 * tarfile.BLOCKSIZE)  # the end of the archive


def _header(name: str, entry: dict) -> bytes:
    info = tarfile.TarInfo(name)
    info.mtime = entry.get("mtime_ns", 0) // 1_000_000_000
    info.mode = entry.get("mode", 0o755 if entry["type"] == "dir" else 0o644) & 0o7777
    if entry["type"] == "dir":
        info.type = tarfile.DIRTYPE
    elif entry["type"] == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, entry["target"]
    else:
        info.size = entry["size"]
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
