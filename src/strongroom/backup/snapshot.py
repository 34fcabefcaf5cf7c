"""Snapshot a folder into the pool, as a live site has it.

Snapshot walks the folder depth-first with siblings sorted by name (``walking.walk_at``,
through directory descriptors, never following a link), so entries come in the order of
their path components. The previous backup's file list is in that same order, which
lets the walk merge-join against it in constant memory: a file whose size, mtime and
inode match its previous entry is linked to the object it had, without being opened.
The walking thread makes those links itself; once one took longer than ``COLD_LINK``
(it waited for the disk to read the object's inode), the next ``COLD_RUN`` unchanged files
are linked by the workers instead, whose waits overlap (and the run goes on while their
links stay slow); warm, no hand-off is paid.

Any other file is opened, hashed and stored by a worker thread (copied once, in one pass
with the hash, unless its content is already in the pool; a small file is read whole in
one call, ``pool.store`` with its size), with ``O_NOFOLLOW`` relative
to its folder's descriptor: the walk hands the workers a duplicate of that descriptor,
shared by the jobs of the folder's files and closed by the last of them (``_FolderRef``),
so the walking thread only lists and ``lstat``s while the workers open, read and ``fstat``.
As it queues a file to be read, the walk asks the kernel to read it ahead into memory
(``readahead``: advice only, skipped for files already there, at most 32 MB ahead of the
workers), so a cold disk has reads queued while the workers hash.
A file with more than one link is opened by the walking thread itself, as the first name
of its inode must be known to be stored before a later name is recorded as its link. A file whose size, mtime or ctime differs between the
``fstat`` before and after the read was written meanwhile: it is read again, up to
``READS`` times, then stored as last read with a warning naming it, or the backup fails
(``changed_files="fail"``): never stored torn without a word. Anything that disappears
between the walk and the read is skipped with a warning; a file or folder replaced by a
symbolic link is stored as the link it now is.

Symbolic links are kept as links (with their mtime) and never followed; sockets, FIFOs
and devices are skipped with a warning. Files that share an inode are recorded once:
the first entry carries ``nlink``, each later one ``hardlink`` (the first one's path)
and is linked to the same object unread. A sparse file (fewer blocks than its size)
is read and stored by its data ranges, so the object keeps its holes (``sparse``).
"""

from __future__ import annotations

import errno
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

from strongroom.errors import BadInput, FileChanged
from strongroom.fs import mutations
from strongroom.fs.nofollow import open_if_present
from strongroom.fs.parallel import Ordered, PhaseTimes
from strongroom.fs.readahead import ReadAhead
from strongroom.fs.walking import Cursor, Found, walk_at
from strongroom.humanize import path as shown
from strongroom.repo.manifest import FileListWriter, counted_as
from strongroom.repo.pool import SMALL_FILE, Pool

Progress = Callable[[str, int, "int | None"], None] | None
REPORT_BYTES = 8 << 20  # progress("reading", bytes, None) every 100 files or this many bytes

COLD_LINK = 200e-6  # seconds: a link slower than this waited for the disk (warm: 10-30 µs)
COLD_RUN = 64  # then this many unchanged files are linked by the workers, whose waits overlap
CHANGED_FILES = ("warn", "fail")
PAUSES = (0.0, 0.01, 0.05, 0.2)  # before each read of a file: one read, then three more
READS = len(PAUSES)
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # a FIFO must not block


@dataclass
class SnapshotStats:
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    bytes: int = 0
    bytes_read: int = 0
    bytes_added: int = 0
    objects_added: int = 0
    linked_unread: int = 0
    warnings: list[str] = field(default_factory=list)
    root: os.stat_result | None = None  # the folder itself, as opened


def snapshot(
    source: Path,
    files_dir: Path,
    pool: Pool,
    writer: FileListWriter,
    previous: Iterator[dict] | None = None,
    progress: Progress = None,
    times: PhaseTimes | None = None,
    trusted: Path | None = None,
    changed_files: str = "warn",
) -> SnapshotStats:
    """Copy ``source`` into ``files_dir`` as links into ``pool``; stream entries to ``writer``.

    ``source`` is opened below ``trusted`` (default: its parent) without following a
    link: a scope folder that is a link, or lies below one, raises ``LinkedFolder``.
    Unchanged files are linked by this thread as the walk reaches them; the others are
    stored by worker threads while the walk goes on. Entries reach ``writer`` in walk
    order all the same. ``times`` receives the seconds spent per phase.
    """
    if changed_files not in CHANGED_FILES:
        raise BadInput(f"changed_files must be one of {', '.join(CHANGED_FILES)}, not {changed_files!r}")
    stats = SnapshotStats()
    times = PhaseTimes() if times is None else times
    pool.make_folder(files_dir)
    root_fd = open_if_present(trusted or source.parent, source)
    if root_fd is None:
        return stats
    try:
        stats.root = os.fstat(root_fd)
        _Snapshot(pool, files_dir, writer, stats, times, progress, changed_files).run(root_fd, Cursor(previous))
    finally:
        os.close(root_fd)
    return stats


class _Snapshot:
    """One snapshot's state: where it writes, what it counted, the hard links it met."""

    def __init__(self, pool, files_dir, writer, stats, times, progress, changed_files):
        self.pool, self.writer, self.stats, self.times = pool, writer, stats, times
        self.progress, self.fail_on_change = progress, changed_files == "fail"
        self.base = f"{files_dir}/"
        self.inodes: dict[tuple[int, int], str] = {}  # files with more links: inode -> first path
        self.firsts: dict[str, dict | None] = {}  # those first paths -> their entries, once written
        self.open_files: set[int] = set()  # opened for a job not yet run
        self.reported = 0  # bytes, at the last progress report
        self.folders = _Folders()  # the folder descriptors lent to the workers
        self.cold_links = 0  # unchanged files whose links go to workers: the last link was slow
        self.readahead = ReadAhead()  # the files queued for workers, read ahead from disk

    def run(self, root_fd: int, cursor: Cursor) -> None:
        try:
            self._run(root_fd, cursor)
        finally:  # jobs cancelled by a failure never closed what was opened for them
            for fd in self.open_files:
                os.close(fd)
            self.folders.close_all()

    def _run(self, root_fd: int, cursor: Cursor) -> None:
        scanning = linking = 0.0
        with Ordered() as jobs, closing(walk_at(root_fd, warn=self.stats.warnings.append)) as items:
            while True:
                mark = perf_counter()
                item = next(items, None)
                if item is None:
                    break
                st = item.stat
                regular = stat.S_ISREG(st.st_mode)
                previous_entry = cursor.find(item.rel) if regular else None
                scanning += perf_counter() - mark
                mark = perf_counter()
                if regular and st.st_nlink > 1 and self._later_link(jobs, item):
                    pass
                elif self.cold_links and jobs.parallel and st.st_nlink == 1 and _unchanged(previous_entry, st):
                    self.cold_links -= 1
                    jobs.batch(0, self._link_or_store, self.folders.lend(item), item, previous_entry["hash"])
                elif _unchanged(previous_entry, st) and _link_unread(self.pool, previous_entry["hash"],
                                                                      self.base + item.rel):
                    jobs.put((_file_entry(item.rel, st, previous_entry["hash"], st.st_size), None, None))
                    took = perf_counter() - mark
                    linking += took
                    if took > COLD_LINK:
                        self.cold_links = COLD_RUN
                else:
                    self._other(jobs, item, previous_entry)
                for result in jobs.ready():
                    self._record(result)
            for result in jobs.drain():
                self._record(result)
        self.times.add("scan", scanning)
        self.times.add("link", linking)

    def _link_or_store(self, folder: _FolderRef, item: Found, digest: str) -> tuple:
        """A worker's job for an unchanged file: link it to the object it had, unread (on a
        cold disk the link waits for the object's inode: on workers those waits overlap);
        if the object is gone (collected), store the file again."""
        mark = perf_counter()
        try:
            linked = _link_unread(self.pool, digest, self.base + item.rel)
        except BaseException:
            folder.release()
            raise
        took = perf_counter() - mark
        self.times.add("link", took)
        if took > COLD_LINK:
            self.cold_links = COLD_RUN  # still cold: keep the links on the workers (a hint, unlocked)
        if not linked:
            return self._open_and_store(folder, item, True)
        folder.release()
        return _file_entry(item.rel, item.stat, digest, item.stat.st_size), None, None

    def _later_link(self, jobs: Ordered, item: Found) -> bool:
        """A file whose inode an earlier entry had: queue it as a hard link of that one.
        Otherwise remember it as the first name of its inode and say False."""
        key = (item.stat.st_dev, item.stat.st_ino)
        first = self.inodes.get(key)
        if first is None:
            self.inodes[key] = item.rel
            self.firsts[item.rel] = None
            return False
        jobs.put(({"path": item.rel, "type": "file", "hardlink": first, "st": item.stat}, "hardlink", None))
        return True

    def _forget(self, item: Found) -> None:
        """The first name of an inode was not stored after all: later names are not its links."""
        if self.firsts.pop(item.rel, False) is None:
            self.inodes.pop((item.stat.st_dev, item.stat.st_ino), None)

    def _other(self, jobs: Ordered, item: Found, previous_entry: dict | None) -> None:
        """Queue anything but an unchanged file: folders and links at once, files as jobs."""
        rel, st, dest = item.rel, item.stat, self.base + item.rel
        if stat.S_ISDIR(st.st_mode):
            self.pool.make_folder(dest)
            jobs.put(({"path": rel, "type": "dir", "mode": stat.S_IMODE(st.st_mode), "mtime_ns": st.st_mtime_ns},
                      None, None))
        elif stat.S_ISLNK(st.st_mode):
            self._link(jobs, item)
        elif stat.S_ISREG(st.st_mode):
            self._file(jobs, item, previous_entry)
        else:
            self.stats.warnings.append(f"skipped {shown(rel)}: not a regular file, folder or symbolic link")

    def _link(self, jobs: Ordered, item: Found) -> None:
        entry, _, warning = self._link_entry(item.rel, item.name, item.dir_fd, item.stat)
        if entry is None:
            self.stats.warnings.append(warning)
        else:
            jobs.put((entry, None, None))

    def _link_entry(self, rel: str, name: str, dir_fd: int, st: os.stat_result) -> tuple:
        """Store a symbolic link as the link it is: (entry, None, None), or (None, None,
        warning) when it changed meanwhile. Safe on a worker thread."""
        try:
            target = os.readlink(name, dir_fd=dir_fd)
            if not stat.S_ISLNK(st.st_mode):  # a file that became a link: its own time
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError as exc:  # gone (ENOENT) or no longer a link (EINVAL)
            return None, None, f"skipped {shown(rel)}: it changed while the folder was read ({exc.strerror})"
        mutations.symlink(target, self.base + rel)
        return {"path": rel, "type": "symlink", "target": target, "mtime_ns": st.st_mtime_ns}, None, None

    def _file(self, jobs: Ordered, item: Found, previous_entry: dict | None) -> None:
        """A worker opens, reads and closes the file, through its folder's descriptor lent
        to it; a file with more links is opened here (see the module's docstring)."""
        same_size = previous_entry is not None and previous_entry.get("size") == item.stat.st_size
        if item.stat.st_nlink > 1:
            self._open_here(jobs, item, same_size)
            return
        folder = self.folders.lend(item)
        size = item.stat.st_size
        if size > SMALL_FILE:
            jobs.send()  # the files advised so far are all on their way to a worker (``readahead``)
        advised = self.readahead.advise(item.dir_fd, item.name, size) if jobs.parallel else 0
        if size <= SMALL_FILE:
            jobs.batch(size, self._open_and_store, folder, item, same_size, advised)
        else:
            jobs.submit(self._open_and_store, folder, item, same_size, advised)

    def _open_and_store(self, folder: _FolderRef, item: Found, same_size: bool, advised: int = 0) -> tuple:
        """A worker's job: open the file through the lent folder, then ``_store`` it.
        Gone, replaced by a link or by something else: skipped or stored as what it is.
        ``advised``: the bytes of it the walk asked to be read ahead (``readahead``)."""
        try:
            return self._open_and_store_file(folder, item, same_size)
        finally:
            if advised:
                self.readahead.consumed(advised)

    def _open_and_store_file(self, folder: _FolderRef, item: Found, same_size: bool) -> tuple:
        try:
            try:
                fd = os.open(item.name, FILE_FLAGS, dir_fd=folder.fd)
            except FileNotFoundError:
                return None, None, f"skipped {shown(item.rel)}: it disappeared before it was read"
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise naming(exc, item.rel) from exc
                return self._link_entry(item.rel, item.name, folder.fd, item.stat)
        finally:
            folder.release()
        try:
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            return None, None, f"skipped {shown(item.rel)}: it was replaced while the folder was read"
        return self._store(fd, item.rel, st, same_size)

    def _open_here(self, jobs: Ordered, item: Found, same_size: bool) -> None:
        """Open the file in the walking thread (its folder's descriptor is only open now);
        a worker reads it and closes it."""
        try:
            fd = os.open(item.name, FILE_FLAGS, dir_fd=item.dir_fd)
        except FileNotFoundError:
            self._forget(item)
            self.stats.warnings.append(f"skipped {shown(item.rel)}: it disappeared before it was read")
            return
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise naming(exc, item.rel) from exc
            self._forget(item)
            self._link(jobs, item)  # replaced by a link since the walk saw it: store the link
            return
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) != (item.stat.st_dev, item.stat.st_ino):
                self._forget(item)  # replaced since the walk saw it: not the inode it had
            if not stat.S_ISREG(st.st_mode):
                self.stats.warnings.append(f"skipped {shown(item.rel)}: it was replaced while the folder was read")
                os.close(fd)
                return
        except BaseException:
            os.close(fd)
            raise
        self.open_files.add(fd)
        jobs.submit(self._store, fd, item.rel, st, same_size)

    def _store(self, fd: int, rel: str, st: os.stat_result, same_size: bool) -> tuple:
        """A worker's job: read the file into the pool until a read saw it unchanged."""
        dest = self.base + rel
        sparse = _sparse(st)
        try:
            for attempt, pause in enumerate(PAUSES):
                if pause:  # even sleep(0) costs a system call and a reschedule per file
                    time.sleep(pause)
                digest, size, added = self.pool.store(fd, dest, hash_first=same_size, times=self.times,
                                                      sparse=sparse, size=st.st_size)
                before, st = st, os.fstat(fd)
                if _same_version(before, st, size) or attempt == READS - 1:
                    break
                mutations.unlink(dest)  # torn: read it again
                self.pool.release([digest])
        except OSError as exc:
            if exc.filename is not None:
                raise  # it names its file (one the backup writes)
            raise naming(exc, rel) from exc  # a read of the live file: say which
        finally:
            self.open_files.discard(fd)
            os.close(fd)
        warning = None
        if not _same_version(before, st, size):
            if self.fail_on_change:
                raise FileChanged(f"{shown(rel)} kept changing while it was read ({READS} reads): "
                                  "the backup is refused (changed files: fail)")
            warning = (f"{shown(rel)} kept changing while it was read ({READS} reads): "
                       "stored as last read, which may mix old and new content")
        return _file_entry(rel, st, digest, size), (size, added), warning

    def _record(self, result) -> None:
        """Write one entry, in walk order, and count it."""
        entry, stored, warning = result
        if entry is None:  # skipped by a worker: gone, or replaced by what is not stored
            self.stats.warnings.append(warning)
            return
        if stored == "hardlink":
            entry, stored = self._hardlink_entry(entry), None
        if warning:
            self.stats.warnings.append(warning)
        if entry["path"] in self.firsts and entry["type"] == "file":
            entry["nlink"] = max(entry.get("nlink", 2), 2)  # what lets a later entry name it
            self.firsts[entry["path"]] = entry
        self.writer.add(entry)
        stats = self.stats
        counted = counted_as(entry["type"])  # the one rule every shown count follows
        if counted == "folders":
            stats.dirs += 1
        elif counted == "links":
            stats.symlinks += 1
        if counted != "files":
            return
        stats.files += 1
        stats.bytes += entry["size"]
        if stored is None:
            stats.linked_unread += 1
        else:
            size, added = stored
            stats.bytes_read += size
            if added:
                stats.objects_added += 1
                stats.bytes_added += size
        if self.progress and (stats.bytes - self.reported >= REPORT_BYTES or stats.files % 100 == 0):
            self.reported = stats.bytes  # bytes of the files walked: read, or linked unread
            self.progress("reading", stats.bytes, None)

    def _hardlink_entry(self, queued: dict) -> dict:
        """The entry of a later name of an inode: the first one's content, linked unread."""
        first = self.firsts[queued["hardlink"]]
        st = queued["st"]
        self.pool.link(first["hash"], self.base + queued["path"])
        self.stats.hardlinks += 1
        return {**_file_entry(queued["path"], st, first["hash"], first["size"]), "hardlink": first["path"]}


class _FolderRef:
    """A duplicate of a walked folder's descriptor, lent to the jobs of its files: each
    job ``release``s it once done with it, and the last user closes it."""

    __slots__ = ("fd", "key", "owner", "users")

    def __init__(self, fd: int, key: tuple[int, str], owner: _Folders):
        self.fd, self.key, self.owner, self.users = fd, key, owner, 1  # the walking thread's own hold

    def release(self) -> None:
        self.owner.release(self)


class _Folders:
    """The folder descriptors lent to workers: the current folder's, held by the walking
    thread until the walk leaves it, and any still used by pending jobs."""

    def __init__(self):
        self._lock = threading.Lock()
        self._current: _FolderRef | None = None
        self._open: set[_FolderRef] = set()

    def lend(self, item: Found) -> _FolderRef:
        """The descriptor of ``item``'s folder, with one more user (the job about to be
        submitted). One ``dup`` per folder the walk is in, not one per file."""
        key = (item.dir_fd, item.rel[:len(item.rel) - len(item.name)])  # a folder's prefix is unique
        current = self._current
        if current is None or current.key != key:
            if current is not None:
                self.release(current)
            current = self._current = _FolderRef(os.dup(item.dir_fd), key, self)
            with self._lock:
                self._open.add(current)
        with self._lock:
            current.users += 1
        return current

    def release(self, ref: _FolderRef) -> None:
        with self._lock:
            ref.users -= 1
            last = ref.users == 0
            if last:
                self._open.discard(ref)
        if last:
            os.close(ref.fd)

    def close_all(self) -> None:
        """After the walk and every job: close what jobs cancelled by a failure still held."""
        with self._lock:
            left, self._open, self._current = self._open, set(), None
        for ref in left:
            os.close(ref.fd)


def _same_version(before: os.stat_result, after: os.stat_result, size: int) -> bool:
    """Did nothing write the file between the two stats (and was all of it read)?"""
    return (before.st_size == after.st_size == size and before.st_mtime_ns == after.st_mtime_ns
            and before.st_ctime_ns == after.st_ctime_ns)


def naming(exc: OSError, rel: str) -> OSError:
    """``exc`` naming the live file by its path in the scope (the system names only what
    it was given: a name in its folder, or nothing for a read), as the message shows it."""
    return type(exc)(exc.errno, exc.strerror, shown(rel))


def _sparse(st: os.stat_result) -> bool:
    """Fewer blocks than its size: it has holes (or is stored compressed), so it is
    read by its data ranges."""
    return st.st_blocks * 512 < st.st_size


def _unchanged(previous: dict | None, st: os.stat_result) -> bool:
    """The rule for unchanged files: same size, mtime and inode. Not ctime: a restore hard-links every
    unchanged live file into the new tree and then unlinks the old name, which changes
    each one's ctime, so a ctime check would make the next backup re-read everything."""
    return (
        previous is not None
        and previous["type"] == "file"
        and previous["size"] == st.st_size
        and previous["mtime_ns"] == st.st_mtime_ns
        and previous.get("ino") == st.st_ino
    )


def _link_unread(pool: Pool, digest: str, dest: str) -> bool:
    try:
        pool.link(digest, dest)
    except FileNotFoundError:  # the object is gone (collected): store the file again
        return False
    return True


def _file_entry(rel: str, st: os.stat_result, digest: str, size: int) -> dict:
    entry = {
        "path": rel, "type": "file", "size": size, "mode": stat.S_IMODE(st.st_mode),
        "mtime_ns": st.st_mtime_ns, "hash": digest, "ino": st.st_ino, "ctime_ns": st.st_ctime_ns,
    }
    if st.st_nlink > 1:
        entry["nlink"] = st.st_nlink
    if _sparse(st):
        entry["sparse"] = True
    return entry
