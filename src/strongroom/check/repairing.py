"""Repairing a backup's file whose stored content no longer matches its hash.

A backup's file is a hard link to a pool object, and the same object is linked by every
backup that holds that content: damage to one is damage to all. The right content may
still be somewhere: in the pool object under its name (when the backup's link is a
separate, damaged copy), or in the live file at the same path when it has not changed
since. A source counts only once it has been hashed and found right.

The damaged inode is rewritten in place, from a verified copy, so every backup linking
to it is repaired at once; then it is made read-only again. A backup file that is
missing is linked to the (now right) object again. Nothing is written unless a right
source was found, and every write goes through ``mutations``: a crash mid-way leaves an
object no worse than the damaged one it was.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from strongroom.fs import mutations
from strongroom.repo.pool import Pool, copy_hashing, hash_file


def repair_file(pool: Pool, files_dir: Path, live_dir: Path, entry: dict) -> str | None:
    """Store ``entry``'s content again for the backup whose files are ``files_dir``;
    return what was done, or None when no right copy of the content exists anywhere."""
    digest = entry["hash"]
    target = files_dir / entry["path"]
    obj = pool.object_path(digest)
    if not _holds(obj, digest):
        if not _restore_object(pool, obj, live_dir / entry["path"], target, entry):
            return None
        source = "the live file"
    else:
        source = "the pool"
    if _holds(target, digest):
        return f"file {entry['path']}: stored again from {source}"
    if os.path.lexists(target):
        beside = target.parent / f".{os.urandom(6).hex()}.repair"
        mutations.link(obj, beside)
        mutations.rename(beside, target)
    else:
        mutations.makedirs(target.parent)
        pool.link(digest, target)
    return f"file {entry['path']}: stored again from {source}"


def _restore_object(pool: Pool, obj: Path, live: Path, target: Path, entry: dict) -> bool:
    """Give the object (or, when there is none, the backup's file) the live file's
    content, if that content is right. False when it is not."""
    digest = entry["hash"]
    try:
        if os.lstat(live).st_size != entry["size"]:
            return False  # changed since: not worth reading
    except OSError:
        return False
    mutations.makedirs(pool.tmp)
    tmp = pool.tmp / f"{os.getpid()}-{os.urandom(6).hex()}"
    try:
        try:
            found, _ = copy_hashing(live, tmp)
        except OSError:  # gone, a link, a folder, unreadable: not a source
            return False
        if found != digest:
            return False
        if _is_file(obj):
            _rewrite(obj, tmp, pool)
            return True
        mutations.makedirs(obj.parent)
        if _is_file(target):  # the object is gone, the backup's copy is damaged
            _rewrite(target, tmp, pool)
            mutations.link(target, obj)
            return True
        pool.seal(tmp)
        mutations.link(tmp, obj)
        return True
    finally:
        if os.path.lexists(tmp):
            mutations.unlink(tmp)


def _rewrite(inode: Path, good: Path, pool: Pool) -> None:
    """Put ``good``'s content into the existing file ``inode``, keeping its links."""
    mutations.chmod(inode, 0o600)
    with open(good, "rb") as fin, mutations.create(inode, "wb") as fout:
        while chunk := fin.read(1 << 20):
            mutations.write(fout, chunk)
        fout.flush()
        os.fsync(fout.fileno())
    pool.seal(inode)


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def _holds(path: Path, digest: str) -> bool:
    try:
        return hash_file(path)[0] == digest
    except OSError:
        return False
