"""The one narrow layer through which every change to the file system or the database passes.

Everything in Strongroom that creates, renames, removes or writes a file, or inserts,
deletes or drops records, calls a function here instead of ``os``/``shutil``/pymongo
directly. Each call first passes a *mutation point* to the installed hook (none by
default), which lets the fault-injection tests count an operation's mutation points and
then raise an error or kill the process at any one of them.

Reads are not mutation points and go straight to ``os``.
"""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Hook = Callable[[str, str], None]

_hook: Hook | None = None

COPY_CHUNK = 1 << 20


def set_hook(hook: Hook | None) -> Hook | None:
    """Install ``hook(kind, detail)``, called before every mutation; return the previous one."""
    global _hook
    previous, _hook = _hook, hook
    return previous


def hooked() -> bool:
    """Is a hook installed? (Then callers keep their mutations in one thread, in order.)"""
    return _hook is not None


def point(kind: str, detail: Any = "") -> None:
    if _hook is not None:
        _hook(kind, str(detail))


# -- file system --------------------------------------------------------------------


def makedirs(path: Path, mode: int = 0o777) -> None:
    if not path.is_dir():
        point("mkdir", path)
        os.makedirs(path, mode=mode, exist_ok=True)


def mkdir(path: Path | str, mode: int = 0o777) -> None:
    """One new folder whose parent exists."""
    point("mkdir", path)
    os.mkdir(path, mode)


def rename(src: Path, dst: Path) -> None:
    """Atomic on one file system; ``dst`` must not be a non-empty directory."""
    point("rename", f"{src} -> {dst}")
    os.replace(src, dst)


def link(src: Path | str, dst: Path | str) -> None:
    point("link", dst)
    os.link(src, dst, follow_symlinks=False)


def symlink(target: str, dst: Path | str) -> None:
    point("symlink", dst)
    os.symlink(target, dst)


def unlink(path: Path) -> None:
    point("unlink", path)
    os.unlink(path)


def rmtree(path: Path) -> None:
    """Remove a tree, making read-only folders writable first so that it always goes."""
    if not os.path.lexists(path):
        return
    point("rmtree", path)

    def retry_writable(func, failed_path, _exc_info):
        parent = os.path.dirname(failed_path)
        os.chmod(parent, 0o700)
        func(failed_path)

    shutil.rmtree(path, onerror=retry_writable)  # onexc is 3.12+


def chmod(path: Path | str, mode: int) -> None:
    """Never called on a symbolic link: Linux cannot change a link's own mode."""
    point("chmod", path)
    os.chmod(path, mode)


def utime(path: Path | str, mtime_ns: int) -> None:
    point("utime", path)
    os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def write(fh, data: bytes) -> None:
    """One write to an open file: the point where a full disk shows."""
    point("write", getattr(fh, "name", ""))
    written = fh.write(data)
    while written is not None and written < len(data):  # an unbuffered file may take part
        data = memoryview(data)[written:]
        written = fh.write(data)


def create(path: Path | str, mode: str = "xb", buffering: int = -1):
    """Open a new file for writing (fails if it exists, unless ``mode`` says otherwise)."""
    point("create", path)
    return open(path, mode, buffering=buffering)


def write_file(path: Path, data: bytes, sync: bool = False) -> None:
    with create(path, "wb") as fh:
        write(fh, data)
        if sync:
            fh.flush()
            os.fsync(fh.fileno())


def copy_file(src: Path, dst: Path) -> None:
    """Copy content only (``dst`` must not exist); modes and times are set by the caller."""
    with open(src, "rb") as fin, create(dst) as fout:
        if _hook is None:
            shutil.copyfileobj(fin, fout, COPY_CHUNK)
            return
        while chunk := fin.read(COPY_CHUNK):
            write(fout, chunk)


def allocate(path: Path, size: int) -> None:
    """Make ``path`` a private file holding ``size`` bytes of disk space (``fallocate``)."""
    point("allocate", path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        try:
            os.posix_fallocate(fd, 0, size)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            _write_zeros(fd, size)  # a file system without fallocate (ZFS, some network ones)
    finally:
        os.close(fd)


def _write_zeros(fd: int, size: int) -> None:
    block = bytes(COPY_CHUNK)
    done = os.fstat(fd).st_size
    while done < size:
        done += os.pwrite(fd, block[: min(COPY_CHUNK, size - done)], done)
    os.fsync(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename or a new entry in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: Path) -> None:
    """Flush everything written to the file system holding ``path`` (``syncfs``)."""
    import ctypes

    fd = os.open(path, os.O_RDONLY)
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.syncfs(fd) != 0:
            os.sync()
    except (OSError, AttributeError):
        os.sync()
    finally:
        os.close(fd)


# -- database -----------------------------------------------------------------------


def insert_many(collection, documents: Iterable[dict], session=None) -> int:
    documents = list(documents)
    if not documents:
        return 0
    point("insert", f"{collection.name} x{len(documents)}")
    if session is None:  # montydb takes no session argument
        collection.insert_many(documents, ordered=True)
    else:
        collection.insert_many(documents, ordered=True, session=session)
    return len(documents)


def delete_many(collection, query: dict, session=None) -> int:
    point("delete", collection.name)
    if session is None:
        return collection.delete_many(query).deleted_count
    return collection.delete_many(query, session=session).deleted_count


def create_collection(database, name: str, options: dict) -> None:
    point("create-collection", name)
    database.create_collection(name, **options)


def drop_collection(database, name: str) -> None:
    point("drop", name)
    database.drop_collection(name)


def rename_collection(collection, new_name: str, drop_target: bool = True) -> None:
    point("rename-collection", f"{collection.name} -> {new_name}")
    collection.rename(new_name, dropTarget=drop_target)


def create_indexes(collection, index_models: list) -> None:
    if index_models:
        point("create-indexes", collection.name)
        collection.create_indexes(index_models)
