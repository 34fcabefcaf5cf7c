"""Restore a folder from a backup: build the backup's tree beside the live one, swap it in.

The tree is built beside the live folder (same file system) and swapped in with two
renames. A live file whose size, mtime and mode equal the backup's entry is hard-linked
into the new folder instead of copied (rsync's quick check); every other file is copied
from the backup and the copy hashed (``restorecopy``: large files by the kernel, hashed
from the new file; a file recorded ``"sparse": true`` is copied leaving its holes). The
walk opens each file to copy ahead of its copy, with read-ahead asked for
(``restorecopy.open_source``), and hands it to a worker thread. A file the backup records as a hard link of an
earlier one (``"hardlink": <earlier path>``) is linked to that earlier file of the new
tree, once the two are known to hold the same content.

Nothing is written, removed or re-moded through a path that could lead elsewhere: the
live folder's parent is opened from the data dir one component at a time without
following links (``nofollow``), and every folder of the new tree, of the live tree and
of the backup is reached from its parent's descriptor, so a name is one component,
depth and length are unlimited, and a link anywhere on the way is never followed (a
live file behind one is simply not reused). The new tree stays private to the operator
(folders 0700) until its modes are given back at the end. Modes and times come from the
manifest, except that setuid and setgid bits are never set, nor sticky on files; links
get their own times back.

Progress is reported as ``progress("copying", bytes done, bytes in all)``, counting a
file when it is in place in the new tree (kept or copied and checked), so the figure
follows the copies the worker threads finish, not the entries handed to them. For
tests only, ``STRONGROOM_TEST_COPY_DELAY`` (seconds) slows every copy by that much, so
a small restore lasts long enough to watch its progress; it changes nothing else.
"""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

from strongroom.errors import CorruptBackup, InvalidName, LinkedFolder
from strongroom.fs import mutations
from strongroom.fs.nofollow import (
    PRIVATE_DIR,
    FolderChain,
    open_below,
    open_folder,
    open_folder_or_none,
    proc_path,
)
from strongroom.fs.parallel import Ordered, PhaseTimes
from strongroom.ids import validate_relative_path
from strongroom.repo.manifest import file_mode, path_key, same_file
from strongroom.repo.pool import hash_file
from strongroom.restore import restorecopy

Progress = Callable[[str, int, "int | None"], None] | None
REPORT_BYTES = 8 << 20  # progress after this many bytes ...
REPORT_SECONDS = 0.1  # ... or this long, whichever comes first
TEST_COPY_DELAY = "STRONGROOM_TEST_COPY_DELAY"
FROM_MORE = "_from"  # an entry copied from ``more_files`` (``sources.FROM_PRE``)


def folder_mode(mode: int) -> int:
    """The mode a restored folder gets: permissions and sticky, never setuid or setgid."""
    return mode & 0o1777


@dataclass
class RestoreStats:
    files: int = 0
    copied: int = 0
    bytes_copied: int = 0
    kept: int = 0
    hardlinked: int = 0
    times: PhaseTimes = field(default_factory=PhaseTimes)
    folders: list[dict] = field(default_factory=list)  # their modes and times are set last


@dataclass
class _Trees:
    """The three trees a build walks together, each as a chain of open folders."""

    built: FolderChain
    live: FolderChain
    stored: FolderChain
    built_root: int
    stored_root: int
    more: FolderChain | None = None  # the second source (``more_files``), if any


def build_tree(entries: Iterator[dict], files_dir: Path, live: Path, staging: Path,
               total: int, progress: Progress = None, index: Callable | None = None, *,
               root: Path | None = None, top: dict | None = None,
               more_files: Path | None = None, counted: Callable[[str], bool] | None = None) -> RestoreStats:
    """Build the backup's tree at ``staging``, reusing unchanged files of ``live``.

    ``root`` is the trusted folder above both (the data dir): no folder between it and
    ``live`` may be a link (``LinkedFolder``). ``top``, the manifest's ``root`` entry,
    gives the mode and time of the folder itself. Files are copied from the backup by
    worker threads, hashed on the way: content that no longer matches its entry raises
    ``CorruptBackup`` before the swap. ``index``, if given, receives every entry in
    walk order with its new inode (``ino``). An entry marked ``"_from"`` is copied from
    ``more_files`` instead of ``files_dir`` (a partial restore: the live state outside its
    parts, from the pre-restore backup). ``counted(path)``, if given, says which files
    the result counts (``files``, ``copied``, ``kept``, ``hardlinked``) and the progress
    follows: a restore of parts counts its parts, not the live files it keeps around them;
    ``bytes_copied`` is every byte written. ``total`` is the bytes of the files counted, for
    ``progress("copying", done, total)``.
    """
    parent_fd = open_below(root or live.parent, live.parent)
    try:
        _refuse_linked_live(parent_fd, live)
        mutations.rmtree(staging.name, dir_fd=parent_fd)
        mutations.mkdir(staging.name, PRIVATE_DIR, dir_fd=parent_fd)
        built_root = open_folder(parent_fd, staging.name)
        live_root = open_folder_or_none(parent_fd, live.name)
        stored_root = os.open(files_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        more_root = None if more_files is None else os.open(more_files, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        trees = _Trees(FolderChain(built_root), FolderChain(live_root, strict=False),
                       FolderChain(stored_root), built_root, stored_root,
                       None if more_root is None else FolderChain(more_root))
        try:
            stats = _build(entries, trees, total, progress, index, counted)
            _give_folders_back(built_root, stats.folders, top)
            return stats
        finally:
            for chain in (trees.built, trees.live, trees.stored, trees.more):
                chain is not None and chain.close()
            for fd in (built_root, live_root, stored_root, more_root):
                fd is not None and os.close(fd)
    finally:
        os.close(parent_fd)


def _build(entries: Iterator[dict], trees: _Trees, total: int, progress: Progress,
           index: Callable | None, counted: Callable[[str], bool] | None) -> RestoreStats:
    builder = _Builder(trees, index or (lambda built: None), _Reporter(progress, total), counted)
    try:
        with Ordered() as builder.jobs:
            for entry in entries:
                builder.place(entry)
                builder.hand_on(builder.jobs.ready())
            builder.hand_on(builder.jobs.drain())
            builder.report.last()
    finally:
        for fd in list(builder.lent):  # jobs cancelled by a failure never ran to close theirs
            os.close(fd)
    builder.stats.times.add("link", builder.linking)
    builder.stats.bytes_copied += builder.aside.bytes_copied
    return builder.stats


class _Reporter:
    """``progress("copying", bytes in place, total)``, every ``REPORT_BYTES`` bytes or
    ``REPORT_SECONDS`` (a call per file would cost more than a small file's copy)."""

    def __init__(self, progress: Progress, total: int):
        self.progress, self.total = progress, total
        self.done = self.reported = 0
        self.when = time.monotonic()

    def placed(self, entry: dict) -> None:
        if entry.get("type") != "file" or self.progress is None:
            return
        self.done += entry.get("size", 0)
        now = time.monotonic()
        if self.done - self.reported >= REPORT_BYTES or now - self.when >= REPORT_SECONDS:
            self.reported, self.when = self.done, now
            self.progress("copying", self.done, self.total)

    def last(self) -> None:
        if self.progress is not None:
            self.progress("copying", self.done, max(self.total, self.done))


class _Builder:
    """Places each entry of the file list in the new tree, in walk order."""

    def __init__(self, trees: _Trees, index: Callable, report: _Reporter,
                 counted: Callable[[str], bool] | None = None):
        self.trees, self.index, self.report = trees, index, report
        self.counted = counted or (lambda path: True)
        self.stats = RestoreStats()
        self.aside = RestoreStats()  # the files not counted (``build_tree``'s ``counted``)
        self.jobs: Ordered | None = None
        self.lent: set[int] = set()  # descriptors handed to copy jobs, each closed by its job
        self.linking = 0.0

    def hand_on(self, built: Iterator[dict]) -> None:
        for entry in built:
            entry.pop(FROM_MORE, None)
            self.index(entry)
            if self.counted(entry["path"]):
                self.report.placed(entry)

    def place(self, entry: dict) -> None:
        parent, _, name = entry["path"].rpartition("/")
        into = self.trees.built.at(parent)
        if entry["type"] == "dir":
            mutations.mkdir(name, PRIVATE_DIR, dir_fd=into)
            self.stats.folders.append(entry)
            self.jobs.put(entry)
        elif entry["type"] == "symlink":
            mutations.symlink(entry["target"], name, dir_fd=into)
            mutations.utime(name, entry["mtime_ns"], dir_fd=into)
            self.jobs.put(entry)
        else:
            stats = self.stats if self.counted(entry["path"]) else self.aside
            stats.files += 1
            if not (entry.get("hardlink") and self._hard_link(entry, into, name, stats)):
                self._file(entry, parent, into, name, stats)

    def _hard_link(self, entry: dict, into: int, name: str, stats: RestoreStats) -> bool:
        self.hand_on(self.jobs.drain())  # the earlier file must be complete first
        linked = _link_earlier(entry, self.trees, into, name)
        if linked is None:
            return False
        stats.hardlinked += 1
        self.jobs.put(linked)
        return True

    def _file(self, entry: dict, parent: str, into: int, name: str, stats: RestoreStats) -> None:
        """Keep the live file if it is unchanged (a hard link), else copy it from the backup."""
        mark = perf_counter()
        live_dir = self.trees.live.at(parent)
        st = _lstat_or_none(name, live_dir)
        if same_file(entry, st):
            mutations.link(name, name, src_dir_fd=live_dir, dst_dir_fd=into)
            self.jobs.put({**entry, "ino": st.st_ino})
            stats.kept += 1
            self.linking += perf_counter() - mark
            return
        stored = self.trees.more if entry.get(FROM_MORE) else self.trees.stored
        source = restorecopy.open_source(stored.at(parent), name, entry["size"])
        self.lent.add(source)
        dest = os.dup(into)
        self.lent.add(dest)
        self.jobs.submit(_copy_checked, entry, source, dest, name, self.stats.times, self.lent)
        stats.copied += 1
        stats.bytes_copied += entry["size"]


def _copy_checked(entry: dict, source: int, dest_dir: int, name: str, times: PhaseTimes,
                  lent: set[int]) -> dict:
    """A worker's job: copy one file from the backup, checking its hash, then give it its
    mode and time; return its entry with the copy's inode. Closes both descriptors
    (and takes them out of ``lent``)."""
    try:
        _test_delay()
        digest, size, fd = restorecopy.copy_file(source, dest_dir, name, entry["path"],
                                                 sparse=entry.get("sparse") is True, times=times)
        try:
            if digest != entry["hash"] or size != entry["size"]:
                raise CorruptBackup(f"file {entry['path']} does not match its hash: its content was changed")
            mutations.chmod_fd(fd, file_mode(entry["mode"]), entry["path"])
            mutations.utime_fd(fd, entry["mtime_ns"], entry["path"])
            return {**entry, "ino": os.fstat(fd).st_ino}
        finally:
            os.close(fd)
    finally:
        lent.difference_update((source, dest_dir))
        os.close(source)
        os.close(dest_dir)


def _test_delay() -> None:
    """``STRONGROOM_TEST_COPY_DELAY`` seconds of sleep per copy: for tests that watch a
    restore's progress (see the module's docstring); unset, nothing."""
    delay = os.environ.get(TEST_COPY_DELAY)
    if delay:
        time.sleep(float(delay))


def _link_earlier(entry: dict, trees: _Trees, into: int, name: str) -> dict | None:
    """Restore a hard link: link ``name`` to the earlier file of the new tree it shared
    its inode with, if the backup holds the same content for both; else None (copied)."""
    earlier = entry["hardlink"]
    try:
        validate_relative_path(earlier)
    except InvalidName:
        raise CorruptBackup(f"file {entry['path']}: not a hard link to a path: {earlier!r}") from None
    if path_key(earlier) >= path_key(entry["path"]):
        raise CorruptBackup(f"file {entry['path']}: hard link to {earlier!r}, which does not come before it")
    if not _same_content(trees.stored_root, earlier, entry):
        return None
    folder, _, earlier_name = earlier.rpartition("/")
    source = _open_path(trees.built_root, folder)
    try:
        if not stat.S_ISREG(os.lstat(earlier_name, dir_fd=source).st_mode):
            return None
        mutations.link(earlier_name, name, src_dir_fd=source, dst_dir_fd=into)
    finally:
        source != trees.built_root and os.close(source)
    return {**entry, "ino": os.lstat(name, dir_fd=into).st_ino}


def _same_content(stored_root: int, earlier: str, entry: dict) -> bool:
    """Does the backup hold, for ``earlier``, the content of ``entry``'s hash? The same
    pool object (one inode) proves it without reading; otherwise it is hashed."""
    mine, theirs = _stat_in(stored_root, entry["path"]), _stat_in(stored_root, earlier)
    if theirs is None or not stat.S_ISREG(theirs.st_mode):
        return False
    if mine is not None and (mine.st_dev, mine.st_ino) == (theirs.st_dev, theirs.st_ino):
        return True
    folder, _, earlier_name = earlier.rpartition("/")
    source = _open_path(stored_root, folder)
    try:
        return hash_file(proc_path(source, earlier_name)) == (entry["hash"], entry["size"])
    finally:
        source != stored_root and os.close(source)


def _stat_in(root_fd: int, rel: str) -> os.stat_result | None:
    folder, _, name = rel.rpartition("/")
    try:
        fd = _open_path(root_fd, folder)
    except OSError:
        return None
    try:
        return _lstat_or_none(name, fd)
    finally:
        fd != root_fd and os.close(fd)


def _open_path(root_fd: int, folder: str) -> int:
    """Open ``folder`` below ``root_fd`` one component at a time (``root_fd`` itself for "")."""
    fd = root_fd
    for name in folder.split("/") if folder else ():
        child = open_folder(fd, name)
        fd != root_fd and os.close(fd)
        fd = child
    return fd


def _give_folders_back(built_root: int, folders: list[dict], top: dict | None) -> None:
    """Modes and times of the folders, deepest first (a folder's time is set after its
    contents are complete), then of the tree's own folder (``top``)."""
    chain = FolderChain(built_root)
    try:
        for entry in reversed(folders):
            fd = chain.at(entry["path"])
            mutations.chmod_fd(fd, folder_mode(entry["mode"]), entry["path"])
            mutations.utime_fd(fd, entry["mtime_ns"], entry["path"])
    finally:
        chain.close()
    if top:
        mutations.chmod_fd(built_root, folder_mode(top["mode"]), ".")
        mutations.utime_fd(built_root, top["mtime_ns"], ".")
    else:  # the backup had no folder: a new one, as ``mkdir`` would have made it
        mutations.chmod_fd(built_root, 0o777 & ~_umask(), ".")


def _umask() -> int:
    """The process's umask, read without changing it (``os.umask`` would, for every thread)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def _lstat_or_none(name: str, dir_fd: int | None) -> os.stat_result | None:
    if dir_fd is None:
        return None
    try:
        return os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return None


def _refuse_linked_live(parent_fd: int, live: Path) -> None:
    st = _lstat_or_none(live.name, parent_fd)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise LinkedFolder(f"{live} is a symbolic link or not a folder: refusing to restore through it")


def swap_in(staging: Path, live: Path, old: Path, before_cleanup: Callable[[], None] | None = None, *,
            root: Path | None = None, inspect_old: Callable[[int, str, str], None] | None = None,
            dispose_old: Callable[[int, str], None] | None = None) -> None:
    """Replace ``live`` by ``staging``: two renames, then the old tree goes.

    ``inspect_old(parent_fd, old_name, live_name)`` is called once the new tree is in place and
    durable, with the old tree beside it (the restore rescues from it what nobody backed
    up); then ``before_cleanup`` (the restore journals that point); then the old tree
    is removed, or given to ``dispose_old(parent_fd, old_name)`` (the restore hands it
    to a sweep that removes it after the restore returns, ``sweeping``). No folder
    between ``root`` and ``live`` may be a link.
    """
    parent_fd = open_below(root or live.parent, live.parent)
    try:
        _refuse_linked_live(parent_fd, live)
        mutations.rmtree(old.name, dir_fd=parent_fd)
        if _lstat_or_none(live.name, parent_fd) is not None:
            mutations.rename(live.name, old.name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        mutations.rename(staging.name, live.name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
        os.fsync(parent_fd)
        if inspect_old:
            inspect_old(parent_fd, old.name, live.name)
        if before_cleanup:
            before_cleanup()
        if _lstat_or_none(old.name, parent_fd) is not None:
            (dispose_old or _remove_tree)(parent_fd, old.name)
    finally:
        os.close(parent_fd)


def _remove_tree(parent_fd: int, name: str) -> None:
    mutations.rmtree(name, dir_fd=parent_fd)
