"""The content-addressed pool: one read-only object per distinct file content.

An object lives at ``.pool/<first 2 hex>/<sha256 hex>`` and its content hashes to its
name, so ``sha256sum`` checks it. Backups hard-link their files to objects, so identical
content anywhere in the data dir is stored once and the object's link count says how
many backups still use it: an object with a link count of 1 is garbage.

Objects are written to ``.pool/.tmp/`` first, made read-only, and renamed into place, so
an object that exists under its name is always complete. Durability comes from one
``syncfs`` of the whole file system before a backup's manifest is written, not from a
``fsync`` per object, which would cost more than the copy itself on many small files. A writer that finds the object
already there links to it and discards its own copy.
"""

from __future__ import annotations

import errno
import hashlib
import os
from pathlib import Path

from . import mutations

ALGORITHM = "sha256"
CHUNK = 1 << 20
OBJECT_MODE = 0o444


def hash_file(path: Path) -> tuple[str, int]:
    """The SHA-256 hex digest and size of a file's content."""
    with open(path, "rb") as fh:
        digest = hashlib.file_digest(fh, ALGORITHM)
        return digest.hexdigest(), fh.tell()


class Pool:
    """The objects below ``root``; it knows nothing of backups."""

    def __init__(self, root: Path):
        self.root = root
        self.tmp = root / ".tmp"

    def object_path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def has(self, digest: str) -> bool:
        return self.object_path(digest).is_file()

    def link(self, digest: str, dest: Path) -> None:
        """Make ``dest`` a hard link to the object; a copy where the link limit is reached."""
        try:
            mutations.link(self.object_path(digest), dest)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            mutations.copy_file(self.object_path(digest), dest)
            mutations.chmod(dest, OBJECT_MODE)

    def store(self, src: Path, dest: Path, hash_first: bool = False) -> tuple[str, int, bool]:
        """Put ``src``'s content in the pool and link ``dest`` to it.

        With ``hash_first`` the file is read and hashed before anything is written, which
        costs nothing when the content is already there (a touched, unchanged file);
        otherwise it is copied and hashed in one pass. Returns (digest, size, added).
        """
        if hash_first:
            digest, size = hash_file(src)
            if self._link_existing(digest, dest):
                return digest, size, False
        tmp, digest, size = self._copy_to_tmp(src)
        if self._link_existing(digest, dest):
            mutations.unlink(tmp)
            return digest, size, False
        obj = self.object_path(digest)
        mutations.makedirs(obj.parent)
        mutations.rename(tmp, obj)
        self.link(digest, dest)
        return digest, size, True

    def _link_existing(self, digest: str, dest: Path) -> bool:
        if not self.has(digest):
            return False
        try:
            self.link(digest, dest)
        except FileNotFoundError:  # collected by another mode between the check and the link
            return False
        return True

    def _copy_to_tmp(self, src: Path) -> tuple[Path, str, int]:
        mutations.makedirs(self.tmp)
        tmp = self.tmp / f"{os.getpid()}-{os.urandom(6).hex()}"
        hasher = hashlib.new(ALGORITHM)
        size = 0
        with open(src, "rb") as fin, mutations.create(tmp) as fout:
            while chunk := fin.read(CHUNK):
                hasher.update(chunk)
                mutations.write(fout, chunk)
                size += len(chunk)
        mutations.chmod(tmp, OBJECT_MODE)
        return tmp, hasher.hexdigest(), size

    def check(self, digest: str) -> bool:
        """Re-hash the object: True when its content still matches its name."""
        try:
            return hash_file(self.object_path(digest))[0] == digest
        except FileNotFoundError:
            return False

    def release(self, digests) -> tuple[int, int]:
        """Remove those of ``digests`` no backup links to any more; return (count, bytes)."""
        removed = freed = 0
        for digest in set(digests):
            obj = self.object_path(digest)
            try:
                st = obj.stat()
            except FileNotFoundError:
                continue
            if st.st_nlink == 1:
                mutations.unlink(obj)
                removed, freed = removed + 1, freed + st.st_size
        return removed, freed

    def collect_garbage(self) -> tuple[int, int]:
        """Remove every unused object and every left-over temporary file."""
        if self.tmp.is_dir():
            for leftover in self.tmp.iterdir():
                if not _writer_alive(leftover.name):
                    mutations.unlink(leftover)
        digests = []
        if self.root.is_dir():
            for bucket in self.root.iterdir():
                if len(bucket.name) == 2 and bucket.is_dir():
                    digests.extend(entry.name for entry in bucket.iterdir())
        return self.release(digests)


def _writer_alive(tmp_name: str) -> bool:
    """Temporary objects are named ``<pid>-<random>``: is that process still running?"""
    pid = tmp_name.partition("-")[0]
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return int(pid) != os.getpid()
