"""Exporting a backup as one portable archive (``archive_format`` gives the layout).

The backup is opened like for a restore (its manifest authenticated under the site key,
its folder checked for links), its file list read through the validator, and each
distinct object it names is written once, re-hashed on the way: a damaged object fails
the export (``CorruptBackup``) instead of travelling. Every member is hashed as it is
written, and ``SHA256SUMS`` closes the archive; a stream cut before it is refused by
import as truncated. A failure to write the archive (a full disk, ``/dev/full``, a reader
gone) is ``OutputFailed``, told apart from a damaged backup: the backup is not blamed.
The backup is only read: the export takes no lock, and a backup deleted meanwhile fails
the export, never the deletion.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from datetime import datetime
from pathlib import Path

from strongroom.errors import BadInput, CorruptBackup, OutputFailed, os_reason
from strongroom.exchange import archive_format as fmt
from strongroom.fs import space
from strongroom.fs.nofollow import check_no_links
from strongroom.repo.manifest import FILE_LIST, MANIFEST, is_signed_format, iter_entries
from strongroom.scopes import Scope


def export_backup(sr, scope: Scope, backup_id: str, out, compress: str = "none") -> dict:
    """Write the archive of backup ``backup_id`` of ``scope`` to the binary stream ``out``.

    Returns ``{"id", "scope", "project", "compress", "members", "objects", "bytes",
    "fingerprint"}`` (``bytes``: of tar, before compression; ``fingerprint``: the
    SHA-256 of ``SHA256SUMS``).
    """
    if compress not in fmt.COMPRESSIONS:
        raise BadInput(f"--compress must be one of {', '.join(fmt.COMPRESSIONS)}, not {compress!r}")
    path, manifest = sr.store.open(scope, backup_id)
    if not is_signed_format(manifest):
        raise BadInput(f"backup {backup_id} was made before backups were signed: "
                       "sign it first (verify --sign-unsigned), then export it")
    digests = list(dict.fromkeys(e["hash"] for e in iter_entries(path, manifest) if e["type"] == "file"))
    output = _Output(out)
    try:
        return _write(sr, scope, backup_id, path, manifest, digests, output, compress)
    except _WriteError as exc:  # the destination's fault, never the backup's
        output.dead = True  # what tar and the compressor still hold is dropped, never written later
        error = exc.error
        if isinstance(error, BrokenPipeError):
            raise error from None  # the reader went away: the command ends quietly, as other tools do
        full = space.is_out_of_space(error)
        raise OutputFailed(f"cannot write the archive: {os_reason(error)}; no archive was made (the backup is "
                           "fine)", os_reason(error), full) from error
    except BaseException:
        output.dead = True
        raise


def _write(sr, scope: Scope, backup_id: str, path: Path, manifest: dict, digests: list[str], out,
           compress: str) -> dict:
    writer = _ArchiveWriter(fmt.compressing(out, compress), _timestamp(manifest))
    label = {"format": fmt.FORMAT, "version": fmt.VERSION, "backup": backup_id, "scope": scope.kind,
             "project": scope.project_id, "mode": manifest.get("mode"), "created_at": manifest.get("created_at"),
             "objects": len(digests)}
    writer.add_bytes(fmt.LABEL, json.dumps(label, indent=2).encode() + b"\n")
    for name in (MANIFEST, FILE_LIST):
        writer.add_file(f"{fmt.BACKUP}/{name}", path / name)
    for name in sorted(manifest["collections"]):
        for member in (f"db/bson/{name}.bson", f"db/bson/{name}.metadata.json", f"db/json/{name}.json"):
            writer.add_file(f"{fmt.BACKUP}/{member}", path / member)
    check_no_links(sr.config.backups_anchor, sr.store.pool.root)
    for done, digest in enumerate(digests):
        sr.progress("export", done, len(digests))
        writer.add_object(digest, sr.store.pool.object_path(digest))
    sr.progress("export", len(digests), len(digests))
    fingerprint = writer.finish()
    return {"id": backup_id, "scope": scope.kind, "project": scope.project_id, "compress": compress,
            "members": len(writer.sums) + 1, "objects": len(digests), "bytes": writer.counted.count,
            "fingerprint": fingerprint}


def _timestamp(manifest: dict) -> int:
    try:
        return int(datetime.fromisoformat(manifest.get("created_at", "")).timestamp())
    except (TypeError, ValueError):
        return 0


class _WriteError(Exception):
    """Writing the archive failed (not an ``OSError``, so that no read's handler takes it)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _Output(io.RawIOBase):
    """The caller's stream, its write errors told apart from the backup's read errors."""

    def __init__(self, out):
        self.out, self.dead = out, False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        if self.dead:
            return len(data)
        try:
            self.out.write(data)
        except OSError as exc:
            raise _WriteError(exc) from exc
        return len(data)


class _Counted(io.RawIOBase):
    """Counts the tar bytes on their way to the compressor."""

    def __init__(self, inner):
        self.inner, self.count = inner, 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.inner.write(data)
        self.count += len(data)
        return len(data)


class _Hashing(io.RawIOBase):
    """Reads a file for tar, hashing what it hands over."""

    def __init__(self, fh):
        self.fh, self.hasher, self.size = fh, hashlib.sha256(), 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.fh.readinto(buffer)
        self.hasher.update(memoryview(buffer)[:n])
        self.size += n
        return n


class _ArchiveWriter:
    def __init__(self, compressed, mtime: int):
        self.compressed = compressed
        self.counted = _Counted(compressed)
        self.tar = tarfile.open(fileobj=self.counted, mode="w|", format=tarfile.PAX_FORMAT,  # noqa: SIM115 - closed by finish()
                                copybufsize=1 << 20)
        self.mtime = mtime
        self.sums: list[tuple[str, str]] = []

    def _info(self, name: str, size: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, fmt.MEMBER_MODE, self.mtime
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        return info

    def add_bytes(self, name: str, data: bytes) -> None:
        self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))
        self.sums.append((name, hashlib.sha256(data).hexdigest()))

    def add_file(self, name: str, path: Path) -> str:
        """Add the regular file ``path`` (never through a link); return its SHA-256."""
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with open(fd, "rb", buffering=0) as fh:
            size = os.fstat(fd).st_size
            reader = _Hashing(fh)
            self.tar.addfile(self._info(name, size), io.BufferedReader(reader, 1 << 20))
        digest = reader.hasher.hexdigest()
        self.sums.append((name, digest))
        return digest

    def add_object(self, digest: str, path: Path) -> None:
        try:
            found = self.add_file(fmt.object_member(digest), path)
        except (FileNotFoundError, OSError) as exc:
            raise CorruptBackup(f"cannot export: the stored content {digest} is unreadable ({exc}); "
                                "run verify") from None
        if found != digest:
            raise CorruptBackup(f"cannot export: the stored content {digest} is damaged; run verify --repair")

    def finish(self) -> str:
        """Write ``SHA256SUMS`` and close the streams; return the archive's fingerprint."""
        sums = fmt.checksum_lines(self.sums)
        self.tar.addfile(self._info(fmt.CHECKSUMS, len(sums)), io.BytesIO(sums))
        self.tar.close()
        self.compressed.close()
        return hashlib.sha256(sums).hexdigest()
