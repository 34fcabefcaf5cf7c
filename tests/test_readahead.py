"""The read-ahead of files queued for the workers: advice only, bounded, never through a link."""

from __future__ import annotations

import hashlib
import os
import stat
import threading
import time

import pytest

from strongroom.fs import readahead
from strongroom.fs.readahead import ReadAhead, in_memory
from strongroom.repo.manifest import iter_entries
from strongroom.scopes import Scope, backups_root, scope_dir

MIB = 1 << 20


class PageCache:
    """The kernel's page cache as the read-ahead sees it, owned by the test: a file is
    "in memory" when the test says so, and every probe and every advice is recorded. The
    tests then assert on what the code decided, never on what the kernel happened to keep
    (which other I/O on the machine changes)."""

    def __init__(self):
        self.warm: set[str] = set()
        self.probed: list[str] = []
        self.advised: list[tuple[str, int, int]] = []

    def name(self, fd: int) -> str:
        return os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))

    def in_memory(self, fd: int) -> bool:
        name = self.name(fd)
        self.probed.append(name)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return in_memory(fd)  # what the kernel answers for a FIFO or a device (ESPIPE)
        return name in self.warm

    def fadvise(self, fd: int, offset: int, length: int, advice: int) -> None:
        if advice == os.POSIX_FADV_WILLNEED:
            self.advised.append((self.name(fd), offset, length))


@pytest.fixture
def cache(monkeypatch) -> PageCache:
    cache = PageCache()
    monkeypatch.setattr(readahead, "in_memory", cache.in_memory)
    monkeypatch.setattr(os, "posix_fadvise", cache.fadvise)
    return cache


def _file(path, size: int):
    path.write_bytes(os.urandom(size))
    return path


def _folder(tmp_path) -> int:
    return os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)


def test_a_file_not_in_memory_is_read_ahead_and_counted_until_a_worker_is_done(tmp_path, cache):
    _file(tmp_path / "model.glb", 2 * MIB)
    ahead, folder = ReadAhead(), _folder(tmp_path)
    try:
        assert ahead.advise(folder, "model.glb", 2 * MIB) == 2 * MIB
    finally:
        os.close(folder)
    assert cache.advised == [("model.glb", 0, 2 * MIB)]  # the kernel is asked to read it
    assert ahead.ahead == 2 * MIB
    ahead.consumed(2 * MIB)
    assert ahead.ahead == 0


def test_a_file_in_memory_gets_no_advice_and_the_small_files_after_it_are_not_probed(tmp_path, cache):
    (tmp_path / "warm.json").write_bytes(b"{}" * 100)
    cache.warm.add("warm.json")
    small = [_file(tmp_path / f"note-{n:02}.json", 4096) for n in range(readahead.WARM_SKIP + 1)]
    ahead, folder = ReadAhead(), _folder(tmp_path)
    try:
        assert ahead.advise(folder, "warm.json", 200) == 0
        skipped = [ahead.advise(folder, path.name, 4096) for path in small[:-1]]
        probed_again = ahead.advise(folder, small[-1].name, 4096)
    finally:
        os.close(folder)
    assert skipped == [0] * readahead.WARM_SKIP
    assert cache.probed == ["warm.json", small[-1].name]  # the ones between were not even probed
    assert cache.advised == [(small[-1].name, 0, 4096)]
    assert probed_again == 4096 and ahead.ahead == 4096


def test_the_walk_waits_while_the_workers_are_a_budget_behind(tmp_path, cache):
    for name in ("a", "b"):
        _file(tmp_path / name, 3 * MIB)
    ahead, folder = ReadAhead(budget=4 * MIB, wait=10), _folder(tmp_path)
    done = threading.Timer(0.3, ahead.consumed, (3 * MIB,))
    try:
        assert ahead.advise(folder, "a", 3 * MIB) == 3 * MIB
        started = time.monotonic()
        done.start()
        assert ahead.advise(folder, "b", 3 * MIB) == 3 * MIB
        waited = time.monotonic() - started
    finally:
        done.cancel()
        os.close(folder)
    assert 0.25 <= waited < 5
    assert ahead.ahead == 3 * MIB


def test_the_wait_is_bounded_and_a_large_file_is_advised_for_the_budget_only(tmp_path, cache):
    _file(tmp_path / "a", 3 * MIB)
    _file(tmp_path / "large", 6 * MIB)
    ahead, folder = ReadAhead(budget=4 * MIB, wait=0.2), _folder(tmp_path)
    try:
        assert ahead.advise(folder, "a", 3 * MIB) == 3 * MIB
        started = time.monotonic()
        assert ahead.advise(folder, "large", 6 * MIB) == 4 * MIB  # no worker reported: advised anyway
        assert 0.15 <= time.monotonic() - started < 3
    finally:
        os.close(folder)


def test_a_link_or_a_fifo_in_a_files_place_gets_no_advice_and_does_not_block(tmp_path, cache):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = _file(outside / "secret", 2 * MIB)
    place = tmp_path / "place"
    place.mkdir()
    (place / "swapped").symlink_to(secret)
    os.mkfifo(place / "pipe")
    ahead, folder = ReadAhead(), _folder(place)
    try:
        assert ahead.advise(folder, "swapped", 2 * MIB) == 0
        assert ahead.advise(folder, "pipe", 2 * MIB) == 0
        assert ahead.advise(folder, "gone", 2 * MIB) == 0
    finally:
        os.close(folder)
    assert "secret" not in cache.probed and cache.advised == []  # the link's target was not even opened
    assert ahead.ahead == 0


def test_a_backup_reads_ahead_the_files_it_reads_from_a_cold_disk_and_stores_them_whole(service, config, cache):
    live = scope_dir(config, Scope.site())
    (live / "models").mkdir(parents=True)
    sizes = {"models/a.glb": 3 * MIB, "models/b.glb": 2 * MIB + 5, "models/notes.json": 3000}
    for rel, size in sizes.items():
        _file(live / rel, size)
    made = service.show_backup(service.make_backup()["id"])["manifest"]
    assert sorted(cache.advised) == sorted((rel.split("/")[-1], 0, size) for rel, size in sizes.items())
    folder = backups_root(config, Scope.site()) / made["id"]
    stored = {entry["path"]: entry["hash"] for entry in iter_entries(folder, made) if entry["type"] == "file"}
    for rel in sizes:
        content = (live / rel).read_bytes()
        assert stored[rel] == hashlib.sha256(content).hexdigest()
        assert (folder / "files" / rel).read_bytes() == content


def test_the_probe_tells_a_file_just_written_from_one_dropped_from_memory(tmp_path):
    """The one test of the kernel itself: ``in_memory`` reads the page cache's answer."""
    path = _file(tmp_path / "probe", 8192)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.pread(fd, 8192, 0)
        assert in_memory(fd)
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if in_memory(fd):
            pytest.skip("this file system keeps files in memory (tmpfs?)")
    finally:
        os.close(fd)
