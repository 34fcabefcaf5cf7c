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


def mkdir(path: Path | str, mode: int = 0o777, dir_fd: int | None = None) -> None:
    """One new folder whose parent exists (``path`` relative to ``dir_fd`` if given)."""
    point("mkdir", path)
    os.mkdir(path, mode, dir_fd=dir_fd)


def rename(src: Path | str, dst: Path | str, src_dir_fd: int | None = None, dst_dir_fd: int | None = None) -> None:
    """Atomic on one file system; ``dst`` must not be a non-empty directory."""
    point("rename", f"{src} -> {dst}")
    os.replace(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


def link(src: Path | str, dst: Path | str, src_dir_fd: int | None = None, dst_dir_fd: int | None = None) -> None:
    """A hard link; never through a symbolic link at ``src``."""
    point("link", dst)
    os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)


def symlink(target: str, dst: Path | str, dir_fd: int | None = None) -> None:
    point("symlink", dst)
    os.symlink(target, dst, dir_fd=dir_fd)


def unlink(path: Path) -> None:
    point("unlink", path)
    os.unlink(path)


def rmtree(path: Path | str, dir_fd: int | None = None) -> None:
    """Remove a tree, making read-only folders writable first so that it always goes.

    With ``dir_fd``, ``path`` is a name in that folder and the tree is removed through
    folder descriptors, without recursion: a link inside it is removed, never followed,
    at any depth.
    """
    try:
        os.lstat(path, dir_fd=dir_fd)
    except FileNotFoundError:
        return
    point("rmtree", path)
    if dir_fd is not None:
        _remove_tree_at(dir_fd, os.fspath(path))
        return

    def retry_writable(func, failed_path, _exc_info):
        parent = os.path.dirname(failed_path)
        os.chmod(parent, 0o700)
        func(failed_path)

    shutil.rmtree(path, onerror=retry_writable)  # onexc is 3.12+


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _remove_tree_at(parent_fd: int, name: str) -> None:
    """``rmtree`` below a folder descriptor, one open folder per level, no recursion."""
    try:
        top = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except NotADirectoryError:  # a file or a link: removed itself, never followed
        os.unlink(name, dir_fd=parent_fd)
        return
    stack = [(parent_fd, name, top, _empty_but_folders(top))]
    try:
        while stack:
            parent, folder, fd, subfolders = stack[-1]
            if subfolders:
                child = subfolders.pop()
                try:
                    child_fd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                except NotADirectoryError:  # replaced meanwhile by a file or a link
                    _writable_retry(fd, os.unlink, child)
                    continue
                stack.append((fd, child, child_fd, _empty_but_folders(child_fd)))
                continue
            os.close(fd)
            stack.pop()
            _writable_retry(parent, os.rmdir, folder)
    finally:
        for _, _, fd, _ in stack:
            os.close(fd)


def _empty_but_folders(fd: int) -> list[str]:
    """Remove everything in the folder ``fd`` but its sub-folders; return their names."""
    folders = []
    with os.scandir(fd) as entries:
        listed = list(entries)
    for entry in listed:
        if entry.is_dir(follow_symlinks=False):
            folders.append(entry.name)
        else:
            _writable_retry(fd, os.unlink, entry.name)
    return folders


def _writable_retry(folder_fd: int, remove, name: str) -> None:
    """``remove(name)`` in ``folder_fd``, making the folder writable once if refused."""
    try:
        remove(name, dir_fd=folder_fd)
    except PermissionError:
        os.chmod(folder_fd, 0o700)
        remove(name, dir_fd=folder_fd)


def chmod(path: Path | str, mode: int) -> None:
    """Never called on a symbolic link: Linux cannot change a link's own mode."""
    point("chmod", path)
    os.chmod(path, mode)


def chown_group(path: Path | str, gid: int) -> None:
    """Give ``path`` to group ``gid``, keeping its owner."""
    point("chown", path)
    os.chown(path, -1, gid, follow_symlinks=False)


def chmod_fd(fd: int, mode: int, detail: str = "") -> None:
    """Change the mode of the file or folder open as ``fd`` (no path, so no link to follow)."""
    point("chmod", detail)
    os.chmod(fd, mode)


def utime(path: Path | str, mtime_ns: int, dir_fd: int | None = None) -> None:
    """Set the times of ``path`` itself: of a symbolic link, the link's own times."""
    point("utime", path)
    os.utime(path, ns=(mtime_ns, mtime_ns), dir_fd=dir_fd, follow_symlinks=False)


def utime_fd(fd: int, mtime_ns: int, detail: str = "") -> None:
    point("utime", detail)
    os.utime(fd, ns=(mtime_ns, mtime_ns))


def write(fh, data: bytes) -> None:
    """One write to an open file: the point where a full disk shows."""
    point("write", getattr(fh, "name", ""))
    written = fh.write(data)
    while written is not None and written < len(data):  # an unbuffered file may take part
        data = memoryview(data)[written:]
        written = fh.write(data)


def truncate(fh, size: int) -> None:
    """Set an open file's length (a hole where it grows): a write point too."""
    point("write", getattr(fh, "name", ""))
    os.ftruncate(fh.fileno(), size)


def create(path: Path | str, mode: str = "xb", buffering: int = -1):
    """Open a new file for writing (fails if it exists, unless ``mode`` says otherwise)."""
    point("create", path)
    return open(path, mode, buffering=buffering)


def create_fd(path: Path | str, mode: int) -> int:
    """A new file (never an existing one, never through a link), open to write, with
    ``mode`` as the umask lets it."""
    point("create", path)
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def open_append(path: Path | str, mode: int) -> int:
    """A file open to add to its end, made with ``mode`` if new; never through a link."""
    point("create", path)
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, mode)


def write_fd(fd: int, data: bytes, detail: str = "") -> None:
    """Write all of ``data`` to the open descriptor ``fd``: the point where a full disk shows."""
    point("write", detail)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def chown_group_fd(fd: int, gid: int, detail: str = "") -> None:
    """Give the file open as ``fd`` to group ``gid``, keeping its owner."""
    point("chown", detail)
    os.fchown(fd, -1, gid)


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
