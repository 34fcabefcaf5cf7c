"""Listing a scope of many backups: read at once, shown newest first, every check kept.

``list`` (the CLI, the panel and the API share ``list_backups``) reads each backup's
manifest. On a cold disk each read waits for the disk, so the reads go out together, on
several threads; what is shown must not change for it: the order is the ids' (newest
first), and a backup that is incomplete, edited, signed for another scope or reached
through a link is still left out, wherever it lies in the listing.
"""

import json
import os
import shutil
import threading
from datetime import UTC, datetime, timedelta

from strongroom.scopes import Scope, backups_root
from tampering import read_manifest, resign, write_manifest

COPIES = 80


def backup_ids(count: int) -> list[str]:
    """``count`` backup ids a second apart, oldest first (some with a suffix)."""
    start = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    ids = []
    for n in range(count):
        base = (start + timedelta(seconds=n)).strftime("%Y-%m-%dT%H-%M-%S")
        ids.append(f"{base}.{n % 3}" if n % 3 else base)
    return ids


def copies_of_one_backup(service, config) -> list[str]:
    """``COPIES`` complete, signed backups of the site (one real backup, copied under other
    ids and signed as the site would): the ids, oldest first."""
    config.working_dir.mkdir(parents=True)
    (config.working_dir / "page.html").write_text("<p>hello</p>\n")
    made = service.make_backup()["id"]
    root = backups_root(config, Scope.site())
    ids = backup_ids(COPIES)
    for backup_id in ids:
        shutil.copytree(root / made, root / backup_id, symlinks=True)
        resign(config, root / backup_id, {**read_manifest(root / made), "id": backup_id})
    shutil.rmtree(root / made)
    return ids


def test_many_backups_are_listed_newest_first_leaving_out_each_one_a_check_refuses(service, config):
    ids = copies_of_one_backup(service, config)
    root = backups_root(config, Scope.site())
    refused = {ids[3], ids[17], ids[29], ids[44], ids[58], ids[71]}
    edited = read_manifest(root / ids[3])
    write_manifest(root / ids[3], {**edited, "note": "edited without the key"})
    shutil.rmtree(root / ids[17] / "files")
    os.symlink("/", root / ids[17] / "files")  # a backup holding a link is never used
    os.unlink(root / ids[29] / "manifest.json")  # incomplete
    os.unlink(root / ids[44] / "manifest.json")
    os.mkfifo(root / ids[44] / "manifest.json")  # not a file: must neither be listed nor hang the listing
    resign(config, root / ids[58], {**read_manifest(root / ids[58]), "mode": "prod"})
    manifest = read_manifest(root / ids[71])
    (root / ids[71] / "manifest.json").write_bytes(json.dumps(manifest).encode()[:-40])  # cut short

    listed = [b["id"] for b in service.list_backups()]

    assert listed == [i for i in reversed(ids) if i not in refused]
    assert service.store.latest(Scope.site())[1]["id"] == ids[-1]


def test_a_listing_reads_the_backups_on_several_threads_at_once(service, config, monkeypatch):
    ids = copies_of_one_backup(service, config)
    root = str(backups_root(config, Scope.site()))
    readers = set()
    real_lstat = os.lstat

    def lstat(path, *args, **kwargs):  # a spy: records the thread, then the real call
        if str(path).startswith(root + os.sep):
            readers.add(threading.get_ident())
        return real_lstat(path, *args, **kwargs)

    monkeypatch.setattr(os, "lstat", lstat)
    assert [b["id"] for b in service.list_backups()] == list(reversed(ids))
    assert len(readers) > 1
