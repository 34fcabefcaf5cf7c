"""What an archive declares of its own members' sizes, so that an import refuses early.

An archive's members come in an order that declares sizes before the content they size:
the manifest (second member) says how many entries the file list has, and each
collection's BSON size and record count; the file list (third) gives the size of every
object that follows. So each member's size, which its tar header states before a byte of
it is read, is held to what the archive itself declared:

- the file list: at most ``MAX_LINE`` bytes per entry the manifest counts;
- a record dump (``.bson``): exactly the bytes the manifest records; its Extended JSON at
  most ``JSON_FACTOR`` times that plus ``PER_DOCUMENT`` per record (relaxed JSON of any
  BSON value is far from that); its metadata at most ``SMALL``;
- an object: named by the file list, and exactly the size the list gives its content;
- the whole stream, once the list is read: the sum of all that, with each member's
  headers and padding (``PER_MEMBER``) and the archive's closing blocks.

A member whose header says more, or an object the list does not name, is refused before
it is read. The file list and the record dumps, whose sizes only the manifest (which
nobody signed for this site) declares, are watched as they stream (``watch``): a list
line longer than ``MAX_LINE`` or more lines than the manifest counts, a BSON document
whose length field is not that of a document (at least ``MIN_DOCUMENT``, at most
``MAX_DOCUMENT`` bytes, ending in a zero byte) or more documents than it counts, stop
the member at once; so a manifest that declares gigabytes for a bomb of zeros gains
nothing. And and the decompressed stream is cut at the declared total: a crafted archive
that would expand to gigabytes writes next to nothing. What is declared is checked too,
in the end (``archive_reading``): the list against the manifest's checksum as soon as it
is read, every dump and object against its hash.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from strongroom.errors import BadArchive, CorruptBackup
from strongroom.repo.manifest import iter_file_list

SMALL = 16 << 20  # archive.json, the manifest, a metadata file, SHA256SUMS's line budget
MAX_LINE = 16 << 10  # one file-list line: a path (at most 4,096 bytes, escaped), a link's target, fields
JSON_FACTOR = 16
PER_DOCUMENT = 256
PER_MEMBER = 4 * 512  # a member's header, a pax header and its block, its padding
CLOSING = 20 * 512  # the two end blocks and the last record's padding
CHECKSUM_LINE = 256  # "<64 hex>  <member name>\n"
MIN_DOCUMENT = 5  # a BSON document: its int32 length, no field, its closing zero byte
MAX_DOCUMENT = (16 << 20) + (16 << 10)  # MongoDB's 16 MiB, and what mongodump allows beyond it


class Declared:
    """The sizes the manifest (then the file list) of an archive declare."""

    def __init__(self, manifest: dict):
        files, collections = manifest.get("files"), manifest.get("collections")
        if not isinstance(files, dict) or not _count(files.get("entries")) or not isinstance(collections, dict):
            raise BadArchive("the archive's manifest does not say how many files and which collections it holds")
        for name, info in collections.items():
            if not isinstance(info, dict) or not _count(info.get("bytes")) or not _count(info.get("count")):
                raise BadArchive(f"the archive's manifest gives collection {name!r} no size")
            if info["count"] * MIN_DOCUMENT > info["bytes"]:
                raise BadArchive(f"the archive's manifest gives collection {name!r} {info['count']} records "
                                 f"in {info['bytes']} bytes: no BSON holds that")
        self.manifest, self.entries, self.collections = manifest, files["entries"], collections
        self.sizes: dict[str, int] | None = None  # object -> size, once the list is read
        self.uses: Counter = Counter()  # object -> file entries that copy it

    def bound(self, kind: str, detail: str | None, name: str) -> tuple[int, bool, str]:
        """``(bytes, exact, said by)`` for a member of ``kind`` (``archive_format.member_kind``)."""
        if kind == "list":
            return self.entries * MAX_LINE + MAX_LINE, False, "manifest (its entry count)"
        if kind == "db":
            info = self.collections.get(detail)
            if info is None:
                raise BadArchive(f"archive member {name!r} is of a collection its manifest does not list")
            if name.endswith(".metadata.json"):
                return SMALL, False, "layout"
            if name.endswith(".bson"):
                return info["bytes"], True, "manifest"
            return JSON_FACTOR * info["bytes"] + PER_DOCUMENT * info["count"], False, "manifest (its BSON size)"
        if kind == "object":
            if self.sizes is None or detail not in self.sizes:
                raise BadArchive(f"archive member {name!r} is content its file list does not name")
            return self.sizes[detail], True, "file list"
        return SMALL, False, "layout"

    def check(self, kind: str, detail: str | None, name: str, size: int) -> None:
        """``BadArchive`` before a byte of the member is read, if its header's ``size``
        is not what the archive declared for it."""
        limit, exact, said = self.bound(kind, detail, name)
        if size > limit or (exact and size != limit):
            raise BadArchive(f"archive member {name!r} is {size} bytes, but the archive's own {said} "
                             f"{'gives it' if exact else 'allows it at most'} {limit}: refused before it is read")

    def watch(self, kind: str, detail: str | None, name: str):
        """A function to give each chunk of member ``name`` as it is read, which raises
        ``BadArchive`` as soon as the content cannot be what the manifest declares; None
        for members held to an exact size the list gives or checked whole."""
        if kind == "list":
            return _Lines(name, self.entries).feed
        if kind == "db" and name.endswith(".bson"):
            return _Documents(name, self.collections[detail]["count"]).feed
        return None

    def take_list(self, path: Path) -> None:
        """Read the file list just written (checked against the manifest's checksum and
        count, and by the validator every restore uses): the objects and their sizes."""
        files = self.manifest["files"]
        sizes: dict[str, int] = {}
        try:
            for entry in iter_file_list(path, "the archive's backup", files.get("list_sha256"), files.get("entries")):
                if entry["type"] != "file":
                    continue
                if sizes.setdefault(entry["hash"], entry["size"]) != entry["size"]:
                    raise BadArchive(f"the archive's file list gives content {entry['hash']} two sizes")
                if "hardlink" not in entry:
                    self.uses[entry["hash"]] += 1
        except CorruptBackup as exc:
            raise BadArchive(str(exc)) from None
        self.sizes = sizes

    def total(self, so_far: int, members_so_far: int) -> int:
        """Bytes of tar the whole archive may hold, once the list is read: ``so_far`` read
        up to here (``members_so_far`` members), then every dump and object declared."""
        assert self.sizes is not None
        dumps = sum(self.bound("db", name, f"{name}{suffix}")[0] for name in self.collections
                    for suffix in (".bson", ".json", ".metadata.json"))
        members = members_so_far + 3 * len(self.collections) + len(self.sizes) + 1
        return (so_far + dumps + sum(self.sizes.values()) + members * CHECKSUM_LINE
                + (members - members_so_far) * PER_MEMBER + CLOSING)


class _Lines:
    """A file list as it streams: no line longer than ``MAX_LINE``, at most ``entries`` lines."""

    def __init__(self, name: str, entries: int):
        self.name, self.left, self.open = name, entries, 0  # bytes of the line not ended yet

    def feed(self, chunk: bytes) -> None:
        ends = chunk.count(b"\n")
        self.left -= ends
        if self.left < 0:
            raise BadArchive(f"archive member {self.name!r} has more lines than the archive's own manifest "
                             "counts entries: refused as it was read")
        self.open = len(chunk) - chunk.rfind(b"\n") - 1 if ends else self.open + len(chunk)
        if self.open > MAX_LINE:
            raise BadArchive(f"archive member {self.name!r} has a line of more than {MAX_LINE} bytes, "
                             "which no file list holds: refused as it was read")


class _Documents:
    """A BSON dump as it streams: each document's length field is a document's (at least
    ``MIN_DOCUMENT``, at most ``MAX_DOCUMENT``), each ends in a zero byte, and there are
    at most ``count`` of them."""

    def __init__(self, name: str, count: int):
        self.name, self.left = name, count
        self.head = b""  # the start of a length field cut by a chunk's end
        self.need = 0  # bytes of the current document still to come

    def feed(self, chunk: bytes) -> None:
        at, end = 0, len(chunk)
        while at < end:
            if self.need:
                step = min(self.need, end - at)
                at, self.need = at + step, self.need - step
                if not self.need and chunk[at - 1] != 0:
                    self._refuse("a document that does not end in a zero byte")
                continue
            taken = chunk[at:at + 4 - len(self.head)]
            self.head, at = self.head + taken, at + len(taken)
            if len(self.head) < 4:
                return
            length = int.from_bytes(self.head, "little", signed=True)
            self.head = b""
            if not MIN_DOCUMENT <= length <= MAX_DOCUMENT:
                self._refuse(f"a document {length} bytes long")
            self.left -= 1
            if self.left < 0:
                self._refuse("more documents than the archive's own manifest counts")
            self.need = length - 4

    def _refuse(self, what: str) -> None:
        raise BadArchive(f"archive member {self.name!r} holds {what}, which no record dump holds: "
                         "refused as it was read")


def _count(value: object) -> bool:
    """Is ``value`` a whole number of zero or more (a count, a size)?"""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
