"""The content-addressed pool: one read-only object per distinct file content.

An object lives at ``.pool/<first 2 hex>/<sha256 hex>`` and its content hashes to its
name, so ``sha256sum`` checks it. Backups hard-link their files to objects, so identical
content anywhere in the data dir is stored once and the object's link count says how
many backups still use it: an object with a link count of 1 is garbage.

Objects are written to ``.pool/.tmp/`` first, made read-only, and renamed into place, so
an object that exists under its name is always complete. Durability comes from one
``syncfs`` of the whole file system before a backup's manifest is written, not from a
``fsync`` per object, which would cost more than the copy itself on many small files. A writer that finds the object
already there links to it and discards its own copy. Content is read once, in large
blocks, and hashed while it is copied.

A small file (``_store_small``: up to ``SMALL_FILE`` bytes, no holes) is read whole in one
call and hashed first: if its object exists, the file is linked to it and nothing is
written; else the very bytes that were hashed are written once, as the new file at its
place in the backup being made (a staging folder, removed whole if the backup fails),
and that file is then linked under its object's name. No temporary name, no existence
check, no ``chmod`` (it is created read-only, unless the umask says otherwise): four
system calls for a new small object instead of ten.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import BinaryIO, TypeVar

from strongroom.fs import mutations
from strongroom.fs.parallel import PhaseTimes

ALGORITHM = "sha256"
BUFFER = 4 << 20  # large reads: fewer system calls, and hashlib releases the GIL on them
OBJECT_MODE = 0o400  # the owner alone reads objects (``privacy``: 0440 with a backup group)
FOLDER_MODE = 0o700  # the pool's folders and a backup's (``privacy``: 0750 with a backup group)
SMALL_FILE = 1 << 20  # files up to this size are read whole, in one call (``_store_small``)

_local = threading.local()
T = TypeVar("T")


def _buffer() -> bytearray:
    """This thread's copy buffer, allocated once."""
    buffer = getattr(_local, "buffer", None)
    if buffer is None:
        buffer = _local.buffer = bytearray(BUFFER)
    return buffer


def _open_no_follow(path, flags: int) -> int:
    """Open a file to read, refusing a symbolic link: a file of the working folder swapped
    for a link after the walk saw it must not pull the link's target into a backup."""
    return os.open(path, flags | os.O_NOFOLLOW)


Source = Path | str | int  # a path (opened with O_NOFOLLOW) or a descriptor open to read


def _reading(src: Source):
    """``src`` as an unbuffered file read from its start; a descriptor is not closed with it."""
    if isinstance(src, int):
        os.lseek(src, 0, os.SEEK_SET)
        return open(src, "rb", buffering=0, closefd=False)
    return open(src, "rb", buffering=0, opener=_open_no_follow)


def hash_file(src: Source, times: PhaseTimes | None = None, sparse: bool = False) -> tuple[str, int]:
    """The SHA-256 hex digest and size of a file's content (``sparse``: holes not read)."""
    started = perf_counter()
    with _reading(src) as fin:
        hasher, size, _, _ = _copy_sparse(fin, None) if sparse else _copy_dense(fin, None)
    if times is not None:
        times.add("hash", perf_counter() - started)
    return hasher.hexdigest(), size


def copy_hashing(src: Source, dst: Path | str, times: PhaseTimes | None = None,
                 sparse: bool = False) -> tuple[str, int]:
    """Copy ``src``'s content to the new file ``dst`` and hash it in the same pass.

    With ``sparse`` only ``src``'s data ranges (``SEEK_DATA``/``SEEK_HOLE``) are read and
    written; its holes stay holes in ``dst`` and are hashed as the zeros they read as, so
    the digest is that of the full logical content either way. A file system that cannot
    tell holes gets a plain copy. Returns (digest, size); the time spent hashing and
    copying goes to ``times``.
    """
    with _reading(src) as fin, mutations.create(dst, buffering=0) as fout:
        if sparse:
            hasher, size, hashing, copying = _copy_sparse(fin, fout)
        else:
            hasher, size, hashing, copying = _copy_dense(fin, fout)
    if times is not None:
        times.add("hash", hashing)
        times.add("copy", copying)
    return hasher.hexdigest(), size


def copy_keeping_holes(fin, fout) -> tuple[str, int]:
    """Copy the open file ``fin`` into the new, empty open file ``fout`` (a file of the
    caller's: ``get``), its holes kept as holes, hashing the whole content on the way:
    (digest, size)."""
    hasher, size, _, _ = _copy_sparse(fin, fout)
    return hasher.hexdigest(), size


def _copy_dense(fin, fout, hasher=None, limit: int | None = None) -> tuple:
    """Copy from ``fin``'s position to its end (or ``limit`` bytes), hashing on the way;
    with ``fout`` None only hash."""
    hasher = hasher or hashlib.new(ALGORITHM)
    size, hashing, copying = 0, 0.0, 0.0
    buffer = _buffer()
    view = memoryview(buffer)
    while limit is None or size < limit:
        t0 = perf_counter()
        n = fin.readinto(buffer if limit is None or limit - size >= BUFFER else view[:limit - size])
        t1 = perf_counter()
        if not n:
            copying += t1 - t0
            break
        if size == 0 and n == BUFFER:  # a large file: ask for a longer read-ahead (one call per such file)
            _advise_sequential(fin.fileno())
        chunk = view[:n]
        hasher.update(chunk)
        t2 = perf_counter()
        if fout is not None:
            mutations.write(fout, chunk)
        copying += (t1 - t0) + (perf_counter() - t2)
        hashing += t2 - t1
        size += n
    return hasher, size, hashing, copying


def _advise_sequential(fd: int) -> None:
    """The file will be read once from start to end: Linux then doubles its read-ahead,
    which a cold read of a large file on a disk that seeks (or a virtual one) gains from."""
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    except OSError:  # advice only: a file system that does not take it reads as before
        pass


def _copy_sparse(fin, fout) -> tuple:
    """Copy only the data ranges of ``fin``, seeking over holes in ``fout`` and hashing zeros."""
    fd = fin.fileno()
    hasher = hashlib.new(ALGORITHM)
    position, hashing, copying = 0, 0.0, 0.0
    for start, end in _data_ranges(fd):
        if start is None:  # no hole support: the rest is copied as it reads
            fin.seek(position)
            _, n, h, c = _copy_dense(fin, fout, hasher)
            return hasher, position + n, hashing + h, copying + c
        t0 = perf_counter()
        _hash_zeros(hasher, start - position)
        hashing += perf_counter() - t0
        fin.seek(start)
        if fout is not None:
            fout.seek(start)
        _, n, h, c = _copy_dense(fin, fout, hasher, end - start)
        position, hashing, copying = start + n, hashing + h, copying + c
    size = max(position, os.fstat(fd).st_size)
    t0 = perf_counter()
    _hash_zeros(hasher, size - position)
    hashing += perf_counter() - t0
    if fout is not None:
        mutations.truncate(fout, size)  # the trailing hole, if any: a length, no blocks
    return hasher, size, hashing, copying


def _data_ranges(fd: int):
    """(start, end) of each data range of ``fd``; one ``(None, None)`` if holes are unknown."""
    offset = 0
    while True:
        try:
            start = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data after ``offset``: only a hole to the end
                return
            if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):
                yield None, None
                return
            raise
        end = os.lseek(fd, start, os.SEEK_HOLE)
        if end <= start:
            return
        yield start, end
        offset = end


_ZEROS = memoryview(bytes(1 << 20))


def _hash_zeros(hasher, count: int) -> None:
    """Feed ``count`` zero bytes to ``hasher``: what a hole reads as."""
    while count > 0:
        step = min(count, len(_ZEROS))
        hasher.update(_ZEROS[:step])
        count -= step


class Pool:
    """The objects below ``root``; it knows nothing of backups."""

    def __init__(self, root: Path, object_mode: int = OBJECT_MODE, group: int | None = None,
                 folder_mode: int = FOLDER_MODE):
        self.root = root
        self.object_mode = object_mode
        self.folder_mode = folder_mode
        self.group = group
        self.tmp = root / ".tmp"
        self._prefix = f"{root}/"
        self._mode_exact: bool | None = None  # do new files get ``object_mode`` as created (umask)?

    def object_path(self, digest: str) -> Path:
        return self.root / digest[:2] / digest

    def object_name(self, digest: str) -> str:
        """``object_path`` as a string: the fast form for the per-file paths."""
        return f"{self._prefix}{digest[:2]}/{digest}"

    def has(self, digest: str) -> bool:
        return os.path.isfile(self.object_name(digest))

    def link(self, digest: str, dest: Path | str) -> None:
        """Make ``dest`` a hard link to the object; a copy where the link limit is reached."""
        obj = self.object_name(digest)
        try:
            mutations.link(obj, dest)
        except OSError as exc:
            if exc.errno != errno.EMLINK:
                raise
            copy_hashing(obj, dest, sparse=True)  # keeps a sparse object's holes
            self.seal(dest)

    def store(self, src: Source, dest: Path | str, hash_first: bool = False,
              times: PhaseTimes | None = None, sparse: bool = False,
              size: int | None = None) -> tuple[str, int, bool]:
        """Put ``src``'s content in the pool and link ``dest`` to it.

        ``src`` is a path (opened with ``O_NOFOLLOW``) or a descriptor open to read, read
        from its start. With ``hash_first`` the file is read and hashed before anything
        is written, which costs nothing when the content is already there (a touched,
        unchanged file); otherwise it is copied and hashed in one pass. With ``sparse``
        holes are neither read nor written: the object keeps them. ``size``, the size of
        the descriptor's file as last seen, lets a small file be read whole in one call
        (``_store_small``). Returns (digest, size, added). Safe to call from several
        threads at once.
        """
        if size is not None and size <= SMALL_FILE and not sparse and isinstance(src, int):
            stored = self._store_small(src, str(dest), size, times, hash_first)
            if stored is not None:
                return stored
        if hash_first:
            digest, size = hash_file(src, times, sparse)
            if self._link_existing(digest, dest):
                return digest, size, False
        tmp = f"{self.tmp}/{os.getpid()}-{os.urandom(6).hex()}"
        copied = False  # once True, ``tmp`` exists: no lstat to find out in ``finally``
        try:
            digest, size = self._copy_to_tmp(src, tmp, times, sparse)
            copied = True
            return digest, size, self._adopt(tmp, digest, dest)
        finally:
            if copied or os.path.lexists(tmp):
                mutations.unlink(tmp)

    def store_written(self, digest: str, dest: Path | str, write: Callable[[BinaryIO], T]) -> tuple[T, bool]:
        """Put in the pool the content of ``digest`` that ``write(fh)`` writes to a new file
        (the caller checks it is that content, raising otherwise) and link ``dest`` to it:
        one write where ``store`` of a file written first would take two. (What ``write``
        returned, added). Safe to call from several threads at once."""
        tmp = f"{self.tmp}/{os.getpid()}-{os.urandom(6).hex()}"
        try:
            try:
                fh = mutations.create(tmp)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):  # made meanwhile by another writer
                    self.make_folder(self.tmp)
                fh = mutations.create(tmp)
            with fh:
                written = write(fh)
            return written, self._adopt(tmp, digest, dest)
        finally:
            if os.path.lexists(tmp):
                mutations.unlink(tmp)

    def _adopt(self, tmp: str, digest: str, dest: Path | str) -> bool:
        """The new file ``tmp`` of ``digest``'s content becomes that object (or the one there
        already), linked as ``dest``; True when it was added."""
        self.seal(tmp)
        if self._link_existing(digest, dest):
            return False
        # ``dest`` links the new inode before it is published under its name, so a
        # collector (another run mode shares the pool) never sees it with one link.
        mutations.link(tmp, dest)
        added = self._publish(tmp, digest)
        if not added:
            self._share(digest, dest)
        return added

    def _store_small(self, fd: int, dest: str, size: int, times: PhaseTimes | None,
                     likely_there: bool) -> tuple[str, int, bool] | None:
        """``store`` for a file of ``size`` bytes (at most ``SMALL_FILE``, no holes) open as
        ``fd``: read whole in one call, hashed, linked to the object of that content if
        there is one, else written once as a new object. None when the read did not give
        ``size`` bytes (the file changed since it was looked at): it is then read as any
        other file.

        ``likely_there`` False (a file no earlier backup had at this size) skips looking
        for the object first: the content is written, and if its object turns out to
        exist ``dest`` is linked to it instead (the same result, one write more)."""
        started = perf_counter()
        data = os.pread(fd, size + 1, 0)  # one byte more: a file that grew shows it
        if len(data) != size:
            return None
        read = perf_counter()
        digest = hashlib.sha256(data).hexdigest()
        hashed = perf_counter()
        if likely_there and _link_unless_missing(self, digest, dest):
            added = False  # an existing object: nothing written
        else:
            added = self._write_object(data, digest, dest)
        if times is not None:
            times.add("hash", hashed - read)
            times.add("copy", (read - started) + (perf_counter() - hashed))
        return digest, size, added

    def _write_object(self, data: bytes, digest: str, dest: str) -> bool:
        """Write ``data`` (which hashes to ``digest``) as the new file ``dest``, then name
        it as the object: complete before it has that name, and linked by ``dest`` before
        any collector can see it (see ``store``). False (and ``dest`` linked to the
        existing object) if another writer named the same content first."""
        fd = mutations.create_fd(dest, self.object_mode)
        try:
            if data:
                mutations.write_fd(fd, data, dest)
            if self.group is not None:
                mutations.chown_group_fd(fd, self.group, dest)
            if self.group is not None or not self._exact_mode(fd):
                mutations.chmod_fd(fd, self.object_mode, dest)
        finally:
            os.close(fd)
        return self._publish(dest, digest) or self._shared(digest, dest)

    def _shared(self, digest: str, dest: str) -> bool:
        self._share(digest, dest)
        return False

    def _exact_mode(self, fd: int) -> bool:
        """Did the new file get ``object_mode`` as created? Asked once: the umask may
        take bits away, and then every new object is ``chmod``-ed."""
        if self._mode_exact is None:
            self._mode_exact = stat.S_IMODE(os.fstat(fd).st_mode) == self.object_mode
        return self._mode_exact

    def _copy_to_tmp(self, src: Source, tmp: str, times: PhaseTimes | None, sparse: bool) -> tuple[str, int]:
        """``copy_hashing`` into ``tmp``, making the temporary folder only when it is missing
        (the first object, or after someone removed it): no stat per file to check it."""
        try:
            return copy_hashing(src, tmp, times, sparse)
        except FileNotFoundError as exc:
            if exc.filename != tmp:
                raise
        try:
            self.make_folder(self.tmp)
        except FileExistsError:  # another thread or process missed it too and made it first
            pass
        return copy_hashing(src, tmp, times, sparse)

    def make_folder(self, path: Path | str) -> None:
        """A new folder of the pool or of a backup's ``files/``, private as the objects are
        (``privacy``): the folder mode, the backup group's when one is configured."""
        try:
            mutations.mkdir(path, self.folder_mode)
        except FileNotFoundError:  # the pool's own folder is not there yet (a pool used alone)
            mutations.makedirs(Path(path).parent)
            mutations.mkdir(path, self.folder_mode)
        if self.group is not None:
            mutations.chown_group(path, self.group)
            mutations.chmod(path, self.folder_mode)

    def seal(self, path: Path | str) -> None:
        """Make a new object read-only, readable by the owner (and the backup group) alone."""
        if self.group is not None:
            mutations.chown_group(path, self.group)
        mutations.chmod(path, self.object_mode)

    def _publish(self, tmp: str, digest: str) -> bool:
        """Name the new object by its hash; False if another writer named one first."""
        obj = self.object_name(digest)
        try:
            try:
                mutations.link(tmp, obj)
            except FileNotFoundError:  # its bucket's first object: make the bucket then, not stat it each time
                try:
                    self.make_folder(os.path.dirname(obj))
                except FileExistsError:  # made meanwhile by another writer
                    pass
                mutations.link(tmp, obj)
        except FileExistsError:
            return False  # the same content was named first by another thread or process
        return True

    def _share(self, digest: str, dest: Path | str) -> None:
        """Replace ``dest``, a private copy, by a link to the object of the same content."""
        # A short name of our own beside ``dest``: the user's name plus a suffix could
        # pass NAME_MAX (255 bytes).
        beside = os.path.join(os.path.dirname(dest), f".strongroom-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            mutations.link(self.object_path(digest), beside)
        except FileNotFoundError:  # collected meanwhile: the private copy stays
            return
        mutations.rename(beside, dest)

    def _link_existing(self, digest: str, dest: Path | str) -> bool:
        if not self.has(digest):
            return False
        try:
            self.link(digest, dest)
        except FileNotFoundError:  # collected by another mode between the check and the link
            return False
        return True

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


def _link_unless_missing(pool: Pool, digest: str, dest: str) -> bool:
    """Link ``dest`` to the object ``digest``: False if there is no such object."""
    try:
        pool.link(digest, dest)
    except FileNotFoundError:
        return False
    return True


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
    return True
