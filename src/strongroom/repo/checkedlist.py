"""A backup's file list, read and checked once for both passes of a restore.

A restore walks the file list twice: the check before it changes anything
(``verifying.check_before_restore``) and the build of the new tree
(``rebuild.build_tree``). ``CheckedList.check()`` reads the file once and checks every
entry as ``manifest.iter_entries`` does (form, walk order, place, hard links, and at the
end the list's hash and count against the signed manifest). When that pass ran to its
end without a fault, the bytes it checked are kept in memory, and ``entries()`` parses
those same bytes again without checking them again: bytes held by the process cannot
change, so the build gets exactly what was checked, even if the file on disk changed
in between. Memory stays bounded: a list larger than ``LIMIT`` bytes (about 150,000
entries of ordinary path lengths) is not kept, and ``entries()`` reads and checks the
file again, as before. Until ``check()`` has run to its end, ``entries()`` does the same.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

from strongroom.errors import CorruptBackup
from strongroom.repo.jsonlines import loads_line
from strongroom.repo.manifest import FILE_LIST, check_file_list, iter_entries

LIMIT = 32 << 20  # bytes of file list kept in memory at most


class CheckedList:
    """The file list of the backup at ``backup_dir`` (``manifest`` its manifest)."""

    def __init__(self, backup_dir: Path, manifest: dict, limit: int | None = None):
        # LIMIT is read now, not when the module was loaded, so that a test can make it small
        self.backup_dir, self.manifest = backup_dir, manifest
        self.limit = LIMIT if limit is None else limit
        self._held: bytes | None = None  # the checked bytes, once a whole pass found no fault

    @property
    def held(self) -> bool:
        """Are the checked bytes kept (``entries()`` parses them without reading the file)?"""
        return self._held is not None

    def check(self) -> Iterator[dict]:
        """The entries, each checked (``CorruptBackup`` at the first fault), read once."""
        files, name = self.manifest["files"], f"backup {self.backup_dir.name}"
        try:
            with open(self.backup_dir / FILE_LIST, "rb") as fh:
                blob = fh.read() if os.fstat(fh.fileno()).st_size <= self.limit else None
        except FileNotFoundError:
            raise CorruptBackup(f"{name} has no file list") from None
        if blob is None:  # too large to keep: read and checked as it streams, as before
            yield from iter_entries(self.backup_dir, self.manifest)
            return
        yield from check_file_list(io.BytesIO(blob), name, files.get("list_sha256"), files.get("entries"))
        self._held = blob  # reached only when every entry, the hash and the count passed

    def entries(self) -> Iterator[dict]:
        """The entries again: parsed from the checked bytes if they are kept, else read
        and checked from the file."""
        if self._held is None:
            return iter_entries(self.backup_dir, self.manifest)
        return (loads_line(line) for line in io.BytesIO(self._held))
