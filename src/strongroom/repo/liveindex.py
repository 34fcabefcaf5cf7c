"""After a restore: which content each live file holds, so the next backup need not read it.

A restore copies every file it cannot reuse, and a copy is a new inode, so the next
backup, which trusts a file unread only when its size, mtime *and inode* match its
previous backup, would read all of them again, although the restore has just written
exactly the backup's content there. So the restore writes, beside the scope's backups,
the list of what it built: the restored backup's entries with the live inodes
(``.live-index.jsonl``), and a header (``.live-index.json``) with the list's SHA-256 and
the id of the scope's newest backup at that time. The next backup uses the list instead
of its newest backup's when that id is still the newest: nothing was backed up since.
Both files are renamed into place, header last; a missing or damaged index is ignored.
The header is signed with the site key (``signing``), so an index edited by anyone
without the key is ignored too: it could otherwise make the next backup record another
content for a file it does not read.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from strongroom.errors import CorruptBackup
from strongroom.fs import mutations
from strongroom.repo.manifest import FileListWriter, iter_file_list
from strongroom.repo.signing import is_signed_by, sign

INDEX = ".live-index.jsonl"
HEADER = ".live-index.json"
TMP_SUFFIX = ".tmp"


class LiveIndexWriter:
    """Collects the built tree's entries, in walk order; ``publish`` puts them in place."""

    def __init__(self, root: Path, key: bytes | None):
        self.root = root
        self.key = key
        mutations.makedirs(root)
        for name in (INDEX, HEADER):
            _remove(root / (name + TMP_SUFFIX))
        self._writer = FileListWriter(root / (INDEX + TMP_SUFFIX))

    def add(self, entry: dict) -> None:
        self._writer.add(entry)

    def publish(self, based_on: str | None) -> None:
        sha256 = self._writer.close()
        header = {"based_on": based_on, "sha256": sha256, "entries": self._writer.count}
        if self.key is not None:
            header = sign(header, self.key)
        mutations.write_file(self.root / (HEADER + TMP_SUFFIX), json.dumps(header).encode())
        _remove(self.root / HEADER)  # the old header first: never a new list under an old header
        mutations.rename(self.root / (INDEX + TMP_SUFFIX), self.root / INDEX)
        mutations.rename(self.root / (HEADER + TMP_SUFFIX), self.root / HEADER)

    def abort(self) -> None:
        self._writer.abort()
        _remove(self.root / (INDEX + TMP_SUFFIX))


def read(root: Path, newest_backup: str | None, key: bytes | None) -> Iterator[dict] | None:
    """The index's entries if it describes the live tree since ``newest_backup`` and its
    header is signed with ``key``, else None."""
    try:
        header = json.loads((root / HEADER).read_text("utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    if not isinstance(header, dict) or header.get("based_on") != newest_backup or not is_signed_by(header, key):
        return None
    entries = iter_file_list(root / INDEX, "the live index", header.get("sha256"), header.get("entries"))
    try:
        return _checked_whole(entries, root, header)
    except CorruptBackup:
        return None


def _checked_whole(entries: Iterator[dict], root: Path, header: dict) -> Iterator[dict]:
    """Check the list's hash before anyone uses an entry of it (it is small next to the tree)."""
    from strongroom.repo.pool import hash_file

    if hash_file(root / INDEX)[0] != header.get("sha256"):
        raise CorruptBackup("the live index does not match its header")
    return entries


def _remove(path: Path) -> None:
    if path.exists():
        mutations.unlink(path)
