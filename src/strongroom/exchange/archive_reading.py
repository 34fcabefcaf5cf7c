"""Reading an archive into a staging folder, and checking it whole before any use.

The stream is read once, member by member (``tarfile`` in stream mode, so standard
input works); each member is checked before a byte of it is written:

- a regular file (no link of any kind, no device, no FIFO, no folder entry), without
  setuid or setgid bit, under a name of the layout (``archive_format.member_kind``: no
  absolute path, no ``..``), never seen before, in the layout's order;
- within the caps (``archive_format.Limits``): members counted, and bytes counted after
  decompression as they are read, so a bomb stops at the cap;
- of the size the archive itself declared for it (``archive_sizes``): the manifest and
  then the file list, which come first, size every member after them, so a member whose
  header says more is refused before it is read, and the stream is cut at the declared
  total;
- an object is re-hashed as it is written and must hash to its name.

Members are written below ``staging`` only, under names the layout allows, in folders
this module made, with ``O_EXCL``. After the last member: ``SHA256SUMS`` must list every
member before it, in order, with the SHA-256 each hashed to (an archive cut anywhere
lacks it and is refused as truncated); ``archive.json`` must say what the manifest says;
the manifest must be well-formed and signed; the file list (checked against the manifest
when it is read) must name exactly the objects the archive holds; the record dumps must match the manifest.
Any failure is ``BadArchive``; the caller removes ``staging``.
"""

from __future__ import annotations

import hashlib
import json
import stat
import tarfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from strongroom.db import dbdump
from strongroom.errors import BadArchive, CorruptBackup
from strongroom.exchange import archive_format as fmt
from strongroom.exchange.archive_sizes import Declared
from strongroom.fs import mutations
from strongroom.repo.manifest import check_manifest, is_signed_format

SMALL_MEMBER = 16 << 20  # archive.json, the manifest and SHA256SUMS are read into memory
CHUNK = 1 << 20
MAX_HEADER = 1 << 20  # a pax header or GNU long name: a path and a few fields
HEADER_TYPES = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
                tarfile.GNUTYPE_LONGLINK)
ORDER = {"label": 0, "manifest": 1, "list": 2, "db": 3, "object": 4, "checksums": 5}


@dataclass
class Unpacked:
    """A checked archive in its staging folder."""

    folder: Path
    label: dict
    manifest: dict
    fingerprint: str
    compression: str
    uses: Counter = field(default_factory=Counter)  # object -> file entries that copy it

    @property
    def backup(self) -> Path:
        return self.folder / fmt.BACKUP

    def object_path(self, digest: str) -> Path:
        return self.folder / fmt.object_member(digest)


def unpack(raw, staging: Path, limits: fmt.Limits) -> Unpacked:
    """Read the archive stream ``raw`` into ``staging`` and check it whole."""
    reader, compression = fmt.decompressing(raw, limits)
    members = _Members(staging, limits, reader)
    try:
        with tarfile.open(fileobj=reader, mode="r|", tarinfo=_HeaderChecked) as tar:
            for member in tar:
                members.take(tar, member)
        while reader.read(CHUNK):  # the stream's end: a writer piping into us is not cut off
            pass
    except tarfile.TarError as exc:
        raise BadArchive(f"the archive is truncated or damaged ({exc})") from None
    return members.finish(compression)


class _HeaderChecked(tarfile.TarInfo):
    """``tarfile`` reads a pax extended header or a GNU long name whole into memory
    before the member it belongs to is seen: one of more than ``MAX_HEADER`` bytes is
    refused before it is read."""

    def _proc_member(self, tarfile_):
        if self.type in HEADER_TYPES and self.size > MAX_HEADER:
            raise BadArchive(f"the archive has an extended header of {self.size} bytes: refused as a bomb")
        if self.type == tarfile.GNUTYPE_SPARSE:
            raise BadArchive(f"archive member {self.name!r} is not a regular file")
        return super()._proc_member(tarfile_)


class _Members:
    def __init__(self, staging: Path, limits: fmt.Limits, reader: fmt.CountingReader):
        self.staging, self.limits, self.reader = staging, limits, reader
        self.declared: Declared | None = None  # what the manifest, then the list, say of the sizes
        self.count = 0
        self.sums: list[tuple[str, str]] = []
        self.names: set[str] = set()
        self.small: dict[str, bytes] = {}
        self.objects: set[str] = set()
        self.db: dict[str, int] = Counter()
        self.phase = -1
        self.listed: bytes | None = None

    def take(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        self.count += 1
        if self.count > self.limits.max_members:
            raise BadArchive(f"the archive holds more than {self.limits.max_members} members, "
                             "the most an import takes: refused as a bomb")
        name = member.name
        fmt.check_member_name(name)
        _check_type(member)
        if member.mode & (stat.S_ISUID | stat.S_ISGID):
            raise BadArchive(f"archive member {name!r} has the setuid or setgid bit")
        if self.listed is not None:
            raise BadArchive(f"archive member {name!r} follows {fmt.CHECKSUMS}, which must be last")
        if name in self.names:
            raise BadArchive(f"archive member {name!r} appears twice")
        self.names.add(name)
        if member.size > self.limits.max_bytes:
            raise BadArchive(f"archive member {name!r} is larger than {self.limits.max_bytes} bytes, "
                             "the most an import reads: refused as a bomb")
        kind, detail = fmt.member_kind(name)
        self._check_order(name, kind)
        if self.declared is not None:
            self.declared.check(kind, detail, name, member.size)  # before a byte of it is read
        data = tar.extractfile(member)
        if kind in ("label", "manifest", "checksums"):
            content = _read_small(name, data, member.size)
            if kind == "checksums":
                self.listed = content
                return
            self.small[kind] = content
            digest = hashlib.sha256(content).hexdigest()
            if kind == "manifest":
                self.declared = Declared(_json("the manifest", content))
        else:
            digest = self._write(name, data, self.declared.watch(kind, detail, name) if self.declared else None)
        if kind == "list":
            self.declared.take_list(self.staging / name)
            self.reader.cap(self.declared.total(self.reader.count, self.count),
                            "what its manifest and file list declare")
        if kind == "object":
            if digest != detail:
                raise BadArchive(f"archive member {name!r} does not hash to its name: its content was changed")
            self.objects.add(detail)
        elif kind == "db":
            self.db[detail] += 1
        self.sums.append((name, digest))

    def _check_order(self, name: str, kind: str) -> None:
        order = ORDER[kind]
        if order < self.phase or (order == self.phase and kind not in ("db", "object")):
            raise BadArchive(f"archive member {name!r} is out of the archive's order")
        if self.phase < ORDER["list"] and order != self.phase + 1:
            raise BadArchive(f"archive member {name!r} comes where {_expected(self.phase + 1)} must")
        self.phase = order

    def _write(self, name: str, data, watch=None) -> str:
        """Write a member below staging (a name of the layout: no way out), hashing it;
        each chunk is first given to ``watch`` (``Declared.watch``), which may refuse it."""
        path = self.staging / name
        mutations.makedirs(path.parent)
        hasher = hashlib.sha256()
        with mutations.create(path) as out:
            while chunk := data.read(CHUNK):
                if watch is not None:
                    watch(chunk)
                hasher.update(chunk)
                mutations.write(out, chunk)
        return hasher.hexdigest()

    def finish(self, compression: str) -> Unpacked:
        if self.listed is None:
            raise BadArchive(f"the archive is truncated: it ends before its {fmt.CHECKSUMS}")
        if self.listed != fmt.checksum_lines(self.sums):
            raise BadArchive(f"the archive's members do not match its {fmt.CHECKSUMS}: it was changed or damaged")
        label = _json(fmt.LABEL, self.small["label"])
        manifest = _json("the manifest", self.small["manifest"])
        mutations.makedirs(self.staging / fmt.BACKUP)
        mutations.write_file(self.staging / fmt.BACKUP / "manifest.json", self.small["manifest"])
        unpacked = Unpacked(self.staging, label, manifest, hashlib.sha256(self.listed).hexdigest(), compression,
                            self.declared.uses)
        _check_label(label, manifest)
        _check_contents(unpacked, set(self.declared.sizes), self.objects, self.db)
        return unpacked


def _expected(phase: int) -> str:
    return {0: fmt.LABEL, 1: "backup/manifest.json", 2: "backup/files.jsonl"}[phase]


def _check_type(member: tarfile.TarInfo) -> None:
    if member.issym() or member.islnk():
        raise BadArchive(f"archive member {member.name!r} is a link: an archive holds no links")
    if member.ischr() or member.isblk() or member.isfifo():
        raise BadArchive(f"archive member {member.name!r} is a device or FIFO")
    if not member.isreg() or member.issparse():
        raise BadArchive(f"archive member {member.name!r} is not a regular file")


def _read_small(name: str, data, size: int) -> bytes:
    if size > SMALL_MEMBER:
        raise BadArchive(f"archive member {name!r} is too large ({size} bytes)")
    return data.read(size)


def _json(what: str, content: bytes) -> dict:
    try:
        value = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadArchive(f"{what} of the archive is not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise BadArchive(f"{what} of the archive is not a JSON object")
    return value


def _check_label(label: dict, manifest: dict) -> None:
    """``archive.json`` must be ours and say what the signed manifest says."""
    if label.get("format") != fmt.FORMAT or label.get("version") != fmt.VERSION:
        raise BadArchive(f"not a Strongroom archive of a supported version ({label.get('format')!r} "
                         f"{label.get('version')!r})")
    try:
        check_manifest(str(label.get("backup")), manifest)
    except CorruptBackup as exc:
        raise BadArchive(f"the archive's manifest is not valid: {exc}") from None
    if not is_signed_format(manifest):
        raise BadArchive("the archive's manifest is unsigned")
    said = (label.get("scope"), label.get("project"))
    signed = (manifest.get("scope"), manifest.get("project"))
    if said != signed:
        raise BadArchive(f"the archive says it holds a backup of the {_scope(*said)}, but its manifest is "
                         f"of the {_scope(*signed)}: refused")


def _scope(kind, project) -> str:
    return "site" if kind == "site" else f"project {project}"


def _check_contents(unpacked: Unpacked, needed: set[str], objects: set[str], db: dict[str, int]) -> None:
    """The file list (read and checked as it came: ``Declared.take_list``) names exactly
    the archive's objects; the record dumps match the manifest."""
    manifest = unpacked.manifest
    if needed - objects:
        raise BadArchive(f"the archive lacks the stored content {min(needed - objects)} its file list names")
    if objects - needed:
        raise BadArchive(f"the archive holds content its file list does not name ({min(objects - needed)})")
    if set(db) != set(manifest["collections"]) or any(count != 3 for count in db.values()):
        raise BadArchive("the archive's record dumps are not the collections its manifest lists")
    problems = dbdump.verify_dump(unpacked.backup / "db", manifest["collections"])
    if problems:
        raise BadArchive(f"the archive's records do not match its manifest: {problems[0]}")
