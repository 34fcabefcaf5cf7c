"""Unchanged files on a cold disk: once a link waited for the disk, the workers link them."""

from __future__ import annotations

import os
import threading

from strongroom.backup import snapshot
from strongroom.repo.manifest import iter_entries
from strongroom.scopes import Scope, backups_root, scope_dir


def _tree(config, files: int = 80) -> dict[str, bytes]:
    live = scope_dir(config, Scope.site())
    contents = {}
    for folder in ("a", "b"):
        (live / folder).mkdir(parents=True)
        for n in range(files // 2):
            rel = f"{folder}/f{n:03}"
            contents[rel] = f"{rel} content".encode() * (n + 1)
            (live / rel).write_bytes(contents[rel])
    return contents


def _linkers(monkeypatch) -> list[str]:
    """Who makes each hard link into a backup being made: the threads' names."""
    names: list[str] = []
    real_link = os.link

    def recording_link(src, dst, *args, **kwargs):
        if "/files/" in str(dst):
            names.append(threading.current_thread().name)
        return real_link(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "link", recording_link)
    return names


def _entries(config, made: dict) -> dict[str, dict]:
    folder = backups_root(config, Scope.site()) / made["id"]
    return {entry["path"]: entry for entry in iter_entries(folder, made) if entry["type"] == "file"}


def test_after_a_slow_link_the_workers_link_the_unchanged_files_and_the_backup_is_the_same(service, config,
                                                                                           monkeypatch):
    contents = _tree(config)
    first = service.show_backup(service.make_backup()["id"])["manifest"]
    monkeypatch.setattr(snapshot, "COLD_LINK", 0.0)  # every link counts as one that waited for the disk
    linkers = _linkers(monkeypatch)
    second = service.show_backup(service.make_backup()["id"])["manifest"]
    assert second["files"]["linked_unread"] == second["files"]["count"] == len(contents)
    assert second["files"]["bytes_read"] == 0
    assert linkers[0] == threading.main_thread().name  # the slow one, then the workers
    assert len(linkers) == len(contents) and linkers.count(threading.main_thread().name) < len(contents) // 2
    assert _entries(config, second) == _entries(config, first)
    folder = backups_root(config, Scope.site()) / second["id"] / "files"
    assert all((folder / rel).read_bytes() == content for rel, content in contents.items())


def test_an_unchanged_file_whose_object_was_collected_is_stored_again_by_the_worker(service, config,
                                                                                     monkeypatch):
    contents = _tree(config)
    first = service.show_backup(service.make_backup()["id"])["manifest"]
    gone = _entries(config, first)["b/f010"]["hash"]
    os.unlink(service.store.pool.object_path(gone))  # its name in the pool only: the backup keeps its copy
    monkeypatch.setattr(snapshot, "COLD_LINK", 0.0)
    second = service.show_backup(service.make_backup()["id"])["manifest"]
    assert second["files"]["linked_unread"] == len(contents) - 1
    assert second["files"]["bytes_read"] == len(contents["b/f010"])
    assert _entries(config, second)["b/f010"]["hash"] == gone
    assert service.store.pool.object_path(gone).read_bytes() == contents["b/f010"]
