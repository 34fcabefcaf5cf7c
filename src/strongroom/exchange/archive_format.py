"""The portable archive of one backup: its layout, its limits, its compression.

An archive is one tar stream (POSIX pax format), optionally compressed as a whole with
gzip or zstd, holding regular files only, in this order:

```
archive.json                       what this is: format, version, backup id, scope, project, mode
backup/manifest.json               the backup's signed manifest, as it is on disk
backup/files.jsonl                 its file list, as it is on disk
backup/db/bson/<coll>.bson         its record dumps, as they are on disk
backup/db/bson/<coll>.metadata.json
backup/db/json/<coll>.json
objects/<2 hex>/<sha256>           each distinct file content the file list names, once
SHA256SUMS                         last: "<sha256>  <member>" for every member before it
```

The files of the backup are not members: the file list says where each file, folder and
symbolic link goes and which object holds its content, so the archive holds no link of
any kind and no folder entry. ``SHA256SUMS`` is in ``sha256sum``'s format: after
``tar -xf`` into an empty folder, ``sha256sum -c SHA256SUMS`` checks the whole by hand;
its own SHA-256 is the archive's fingerprint, printed by export and import.

Reading trusts nothing: ``member_kind`` accepts only the names above (so no absolute
path, no ``..``, no name outside the layout), and ``Limits`` caps the number of
members and the bytes after decompression, counted as they are read, so a bomb stops at
the cap whatever its compression ratio.
"""

from __future__ import annotations

import gzip
import io
import os
import re
from dataclasses import dataclass

from strongroom.errors import BadArchive, BadInput

FORMAT = "strongroom-archive"
VERSION = 1
LABEL = "archive.json"
BACKUP = "backup"
OBJECTS = "objects"
CHECKSUMS = "SHA256SUMS"
COMPRESSIONS = ("none", "gzip", "zstd")
MEMBER_MODE = 0o600

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
SNIFF_BYTES = 512  # a tar header: "ustar" at offset 257

ENV_MAX_BYTES = "STRONGROOM_ARCHIVE_MAX_BYTES"
ENV_MAX_MEMBERS = "STRONGROOM_ARCHIVE_MAX_MEMBERS"

_COLLECTION = r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,119}"
_DB_MEMBER = re.compile(rf"\Abackup/db/(?:bson/({_COLLECTION})\.(?:bson|metadata\.json)|json/({_COLLECTION})\.json)\Z")
_OBJECT_MEMBER = re.compile(r"\Aobjects/([0-9a-f]{2})/(\1[0-9a-f]{62})\Z")


@dataclass(frozen=True)
class Limits:
    """What an import reads at most: members, and bytes of tar after decompression."""

    max_bytes: int = 64 << 30
    max_members: int = 2_000_000

    @classmethod
    def from_env(cls) -> Limits:
        """The defaults, or ``STRONGROOM_ARCHIVE_MAX_BYTES`` / ``_MAX_MEMBERS`` when set."""
        return cls(max_bytes=_env_int(ENV_MAX_BYTES, cls.max_bytes),
                   max_members=_env_int(ENV_MAX_MEMBERS, cls.max_members))


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    if not value.isdigit() or int(value) <= 0:
        raise BadInput(f"{name} must be a positive whole number, not {value!r}")
    return int(value)


def check_member_name(name: str) -> None:
    """``BadArchive`` for a name that could reach outside the folder it is unpacked in."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise BadArchive(f"archive member {name!r} has an absolute or malformed path")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise BadArchive(f"archive member {name!r} has '..', '.' or an empty part in its path")


def member_kind(name: str) -> tuple[str, str | None]:
    """What a member of the layout is: ``("label"|"manifest"|"list"|"checksums", None)``,
    ``("db", collection)`` or ``("object", sha256)``; ``BadArchive`` for any other name."""
    check_member_name(name)
    fixed = {LABEL: "label", f"{BACKUP}/manifest.json": "manifest", f"{BACKUP}/files.jsonl": "list",
             CHECKSUMS: "checksums"}
    if name in fixed:
        return fixed[name], None
    db = _DB_MEMBER.match(name)
    if db and ".." not in name:
        return "db", db.group(1) or db.group(2)
    obj = _OBJECT_MEMBER.match(name)
    if obj:
        return "object", obj.group(2)
    raise BadArchive(f"archive member {name!r} is not part of a Strongroom archive")


def object_member(digest: str) -> str:
    return f"{OBJECTS}/{digest[:2]}/{digest}"


def checksum_lines(sums: list[tuple[str, str]]) -> bytes:
    """``SHA256SUMS``: one ``<sha256>  <member>`` line per member, in archive order."""
    return "".join(f"{digest}  {name}\n" for name, digest in sums).encode()


# -- compression --------------------------------------------------------------------


def compressing(out, compress: str):
    """A writer that compresses into ``out`` (``close()`` finishes the stream, not ``out``)."""
    if compress == "none":
        return _Unclosed(out)
    if compress == "gzip":
        return gzip.GzipFile(filename="", fileobj=out, mode="wb", mtime=0)  # no name in the header: the
        # stream's may be a temporary one (``.x.tar.gz.partial-123``), and a name says nothing of the content
    if compress == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3, threads=0).stream_writer(out, closefd=False)
    raise BadInput(f"--compress must be one of {', '.join(COMPRESSIONS)}, not {compress!r}")


class _Unclosed(io.RawIOBase):
    """``out`` as it is, except that closing it leaves ``out`` open."""

    def __init__(self, out):
        self._out = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self._out.write(data)
        return len(data)


def is_archive(head: bytes) -> bool:
    """Do these first bytes start a Strongroom archive (tar, gzip or zstd)? By content."""
    return head.startswith((GZIP_MAGIC, ZSTD_MAGIC)) or head[257:262] == b"ustar"


def decompressing(raw, limits: Limits) -> tuple[CountingReader, str]:
    """The tar bytes of the stream ``raw`` (its compression told by its first bytes),
    counted against ``limits``; and the compression's name."""
    head = _read_exactly(raw, SNIFF_BYTES)
    source = _Prefixed(head, raw)
    if head.startswith(GZIP_MAGIC):
        return CountingReader(gzip.GzipFile(fileobj=source, mode="rb"), limits), "gzip"
    if head.startswith(ZSTD_MAGIC):
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)
        return CountingReader(reader, limits), "zstd"
    if head[257:262] == b"ustar":
        return CountingReader(source, limits), "none"
    if not head:
        raise BadArchive("the archive is empty")
    raise BadArchive("not a Strongroom archive: neither tar nor gzip nor zstd")


def _read_exactly(raw, count: int) -> bytes:
    chunks, size = [], 0
    while size < count:
        chunk = raw.read(count - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


class _Prefixed(io.RawIOBase):
    """The bytes already read to tell the compression, then the rest of the stream."""

    def __init__(self, head: bytes, rest):
        self._head, self._rest = head, rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._rest.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


class CountingReader(io.RawIOBase):
    """Decompressed bytes, refused past ``limits.max_bytes``; a corrupt or cut stream is
    ``BadArchive``."""

    def __init__(self, inner, limits: Limits):
        self._inner, self._limits = inner, limits
        self._cap, self._capped_by = limits.max_bytes, "the most an import reads"
        self.count = 0

    def cap(self, total: int, why: str) -> None:
        """Refuse the stream past ``total`` bytes as well (``why``: who declared it)."""
        if total < self._cap:
            self._cap, self._capped_by = total, why

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        try:
            data = self._inner.read(len(buffer))
        except (EOFError, OSError) as exc:  # gzip: cut short, or not gzip after all
            raise BadArchive(f"the archive is truncated or damaged ({exc})") from None
        except Exception as exc:
            if type(exc).__name__ != "ZstdError":
                raise
            raise BadArchive(f"the archive is truncated or damaged ({exc})") from None
        self.count += len(data)
        if self.count > self._cap:
            raise BadArchive(f"the archive holds more than {self._cap} bytes once "
                             f"decompressed, {self._capped_by}: refused as a bomb")
        buffer[:len(data)] = data
        return len(data)
