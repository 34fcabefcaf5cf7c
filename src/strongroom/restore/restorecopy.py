"""Copy one stored file into the tree a restore builds, and hash what was written.

A large file (``KERNEL_COPY`` bytes or more) is copied by the kernel
(``copy_file_range``: no pass through a user-space buffer; on a file system that can,
the copy shares the object's blocks), a piece of ``PIECE`` bytes at a time, and each
piece is hashed right after it is copied, by reading *the new file* back from the page
cache. The digest a restore compares with
the manifest is thus the digest of the bytes the new tree holds, not of what was read
from the object: a damaged object, or one changed while it was copied, gives a digest
that does not match, and the restore is refused before anything live changes, exactly
as with a copy hashed on the way. Hashing each piece while it is still in memory keeps
the check from reading the disk again, whatever the file's size.

Where the kernel refuses (``EXDEV``: the backup and the working folder on two file
systems; ``EINVAL``, ``ENOSYS``, ``EOPNOTSUPP``: a file system or kernel without it), or
copies nothing from a file that is not empty, the file is copied as a small one is:
read into a buffer, hashed, and those same bytes written. A file recorded sparse keeps
its holes (``pool.copy_hashing``).

Every write passes through ``mutations`` (a ``create`` point for the new file, a
``write`` point before each piece), so the fault-injection tests reach these copies as
any other. The new file is created private (0600) and handed back open, for the caller
to give it its mode and time through the descriptor.
"""

from __future__ import annotations

import errno
import hashlib
import os
import threading
from time import perf_counter

from strongroom.fs import mutations
from strongroom.fs.nofollow import proc_path
from strongroom.fs.parallel import PhaseTimes
from strongroom.repo.pool import ALGORITHM, copy_hashing

KERNEL_COPY = 1 << 20  # files from this size on are copied by the kernel
PIECE = 8 << 20  # copied, then hashed, this much at a time
PREFETCH = 8 << 20  # read ahead when a file is opened, up to this much
BUFFER = 4 << 20  # the read buffer of the other files, one per thread
REFUSED = frozenset({errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP})
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE = 0o600  # until the caller gives the file its own mode

_local = threading.local()


def open_source(folder: int, name: str, size: int) -> int:
    """Open the stored file ``name`` of ``folder`` to copy it (a link is never followed),
    and ask the kernel to start reading its first ``PREFETCH`` bytes now: opened ahead of
    its copy, each file's read is under way while earlier files are copied, so a cold
    disk serves many reads at once instead of one file after the other."""
    fd = os.open(name, READ_FLAGS, dir_fd=folder)
    if size > 0:  # (a length of 0 would mean "to the end", whatever the file holds)
        try:
            os.posix_fadvise(fd, 0, min(size, PREFETCH), os.POSIX_FADV_WILLNEED)
        except OSError:  # advice only
            pass
    return fd


def copy_file(src: int, dest_dir: int, name: str, detail: str, *, sparse: bool = False,
              times: PhaseTimes | None = None) -> tuple[str, int, int]:
    """Copy the file open as ``src`` (``open_source``; not closed here) to the new file
    ``name`` of ``dest_dir``.

    Returns the digest and size of the new file's content and a descriptor open on the
    new file (to read or to write; the caller closes it). ``detail`` names the file at
    the mutation points.
    """
    if sparse:
        digest, size = copy_hashing(src, proc_path(dest_dir, name), times, sparse=True)
        return digest, size, os.open(name, READ_FLAGS, dir_fd=dest_dir)
    dst = mutations.create_fd(proc_path(dest_dir, name), NEW_FILE)
    try:
        copied = None
        if os.fstat(src).st_size >= KERNEL_COPY:
            copied = _copy_in_kernel(src, dst, dest_dir, name, detail, times)
        if copied is None:
            digest, size = _copy_through_buffer(src, dst, detail, times)
            copied, dst = (digest, size, dst), None  # handed back open
        return copied
    finally:
        if dst is not None:
            os.close(dst)


def _copy_in_kernel(src: int, dst: int, dest_dir: int, name: str, detail: str,
                    times: PhaseTimes | None) -> tuple[str, int, int] | None:
    """The kernel copies, each piece is then hashed from the new file; None when the
    kernel refuses before anything was copied (both files are then as they were)."""
    _advise_sequential(src)
    reader = os.open(name, READ_FLAGS, dir_fd=dest_dir)
    try:
        hasher, size, copying, hashing = hashlib.new(ALGORITHM), 0, 0.0, 0.0
        while True:
            mutations.point("write", detail)
            started = perf_counter()
            try:
                count = os.copy_file_range(src, dst, PIECE)
            except OSError as exc:
                if size == 0 and exc.errno in REFUSED:
                    os.close(reader)
                    return None
                raise
            copied = perf_counter()
            if count == 0:
                break
            _hash_piece(reader, size, count, hasher)
            size += count
            copying, hashing = copying + copied - started, hashing + perf_counter() - copied
        if size == 0 and os.fstat(src).st_size > 0:  # a file system that copies nothing: by hand
            os.close(reader)
            return None
    except BaseException:
        os.close(reader)
        raise
    if times is not None:
        times.add("copy", copying)
        times.add("hash", hashing)
    return hasher.hexdigest(), size, reader


def _hash_piece(fd: int, offset: int, count: int, hasher) -> None:
    """Hash ``count`` bytes of ``fd`` from ``offset``: read back from the page cache, where
    the copy has just put them (a read, not a mapping: a file cut short under a mapping
    would kill the process)."""
    buffer = _buffer()
    with memoryview(buffer) as view:
        end = offset + count
        while offset < end:
            read = os.preadv(fd, [view[:min(len(buffer), end - offset)]], offset)
            if read == 0:  # the file was cut short meanwhile: what is missing is not hashed
                return
            with view[:read] as chunk:
                hasher.update(chunk)
            offset += read


def _buffer() -> bytearray:
    """This thread's buffer, allocated once."""
    buffer = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(BUFFER)
    return buffer


def _copy_through_buffer(src: int, dst: int, detail: str, times: PhaseTimes | None) -> tuple[str, int]:
    """Read ``src`` from its current position into this thread's buffer, hash, and
    write those same bytes to ``dst``, to the end."""
    buffer = _buffer()
    hasher, size, copying, hashing = hashlib.new(ALGORITHM), 0, 0.0, 0.0
    with memoryview(buffer) as view:
        while True:
            started = perf_counter()
            count = os.readv(src, [buffer])
            read = perf_counter()
            if count == 0:
                copying += read - started
                break
            with view[:count] as chunk:
                hasher.update(chunk)
                hashed = perf_counter()
                mutations.write_fd(dst, chunk, detail)
            size += count
            copying += (read - started) + (perf_counter() - hashed)
            hashing += hashed - read
    if times is not None:
        times.add("copy", copying)
        times.add("hash", hashing)
    return hasher.hexdigest(), size


def _advise_sequential(fd: int) -> None:
    """The object will be read once from start to end: a longer read-ahead."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except OSError:  # advice only
        pass
