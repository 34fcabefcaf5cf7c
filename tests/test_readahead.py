"""The read-ahead of files queued for the workers: advice only, bounded, never through a link."""

from __future__ import annotations

import hashlib
import os
import threading
import time

import pytest

from strongroom import readahead
from strongroom.manifest import iter_entries
from strongroom.readahead import ReadAhead, in_memory
from strongroom.scopes import Scope, backups_root, scope_dir

MIB = 1 << 20


def _cold_file(path, size: int):
    """A file of ``size`` random bytes, written to disk and dropped from the page cache."""
    path.write_bytes(os.urandom(size))
    _evict(path)
    return path


def _evict(path) -> None:
    """Drop the file's pages; skip where the file system keeps them (tmpfs). Told on a
    scratch file: a probe of a cold file itself starts reading it (``in_memory``)."""
    scratch = path.with_name(f".scratch-{path.name}")
    scratch.write_bytes(b"x" * 8192)
    for victim in (scratch, path):
        fd = os.open(victim, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    cold = not _cached(scratch)
    scratch.unlink()
    if not cold:
        pytest.skip("this file system keeps files in memory (tmpfs?): nothing to read ahead")


def _cached(path) -> bool:
    fd = os.open(path, os.O_RDONLY)
    try:
        return in_memory(fd)
    finally:
        os.close(fd)


def _folder(tmp_path) -> int:
    return os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)


def _eventually(check, seconds: float = 3.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_file_not_in_memory_is_read_ahead_and_counted_until_a_worker_is_done(tmp_path):
    path = _cold_file(tmp_path / "model.glb", 2 * MIB)
    ahead, folder = ReadAhead(), _folder(tmp_path)
    try:
        assert ahead.advise(folder, "model.glb", 2 * MIB) == 2 * MIB
    finally:
        os.close(folder)
    assert _eventually(lambda: _cached(path))  # the kernel read it without anyone reading
    assert ahead.ahead == 2 * MIB
    ahead.consumed(2 * MIB)
    assert ahead.ahead == 0


def test_a_file_in_memory_gets_no_advice_and_the_small_files_after_it_are_not_probed(tmp_path):
    (tmp_path / "warm.json").write_bytes(b"{}" * 100)
    small = [_cold_file(tmp_path / f"note-{n:02}.json", 4096) for n in range(readahead.WARM_SKIP + 1)]
    ahead, folder = ReadAhead(), _folder(tmp_path)
    try:
        assert ahead.advise(folder, "warm.json", 200) == 0
        skipped = [ahead.advise(folder, path.name, 4096) for path in small[:-1]]
        probed_again = ahead.advise(folder, small[-1].name, 4096)
    finally:
        os.close(folder)
    assert skipped == [0] * readahead.WARM_SKIP and not any(_cached(path) for path in small[:-1])
    assert probed_again == 4096 and ahead.ahead == 4096


def test_the_walk_waits_while_the_workers_are_a_budget_behind(tmp_path):
    for name in ("a", "b"):
        _cold_file(tmp_path / name, 3 * MIB)
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


def test_the_wait_is_bounded_and_a_large_file_is_advised_for_the_budget_only(tmp_path):
    _cold_file(tmp_path / "a", 3 * MIB)
    _cold_file(tmp_path / "large", 6 * MIB)
    ahead, folder = ReadAhead(budget=4 * MIB, wait=0.2), _folder(tmp_path)
    try:
        assert ahead.advise(folder, "a", 3 * MIB) == 3 * MIB
        started = time.monotonic()
        assert ahead.advise(folder, "large", 6 * MIB) == 4 * MIB  # no worker reported: advised anyway
        assert 0.15 <= time.monotonic() - started < 3
    finally:
        os.close(folder)


def test_a_link_or_a_fifo_in_a_files_place_gets_no_advice_and_does_not_block(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = _cold_file(outside / "secret", 2 * MIB)
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
    time.sleep(0.1)
    assert not _cached(secret)  # the link's target was not read ahead
    assert ahead.ahead == 0


def test_a_backup_reads_ahead_the_files_it_reads_from_a_cold_disk_and_stores_them_whole(service, config,
                                                                                          monkeypatch):
    live = scope_dir(config, Scope.site())
    (live / "models").mkdir(parents=True)
    sizes = {"models/a.glb": 3 * MIB, "models/b.glb": 2 * MIB + 5, "models/notes.json": 3000}
    for rel, size in sizes.items():
        _cold_file(live / rel, size)
    advised: list[int] = []
    real_advise = os.posix_fadvise

    def recording_advise(fd, offset, length, advice):
        if advice == os.POSIX_FADV_WILLNEED:
            advised.append(os.fstat(fd).st_size)
        return real_advise(fd, offset, length, advice)

    monkeypatch.setattr(os, "posix_fadvise", recording_advise)
    made = service.show_backup(service.make_backup()["id"])["manifest"]
    assert sorted(advised) == sorted(sizes.values())
    folder = backups_root(config, Scope.site()) / made["id"]
    stored = {entry["path"]: entry["hash"] for entry in iter_entries(folder, made) if entry["type"] == "file"}
    for rel in sizes:
        content = (live / rel).read_bytes()
        assert stored[rel] == hashlib.sha256(content).hexdigest()
        assert (folder / "files" / rel).read_bytes() == content
