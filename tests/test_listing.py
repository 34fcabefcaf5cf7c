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
import subprocess
import sys
import threading
import time
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


def test_a_listing_waits_for_several_backups_reads_at_once(service, config, monkeypatch):
    ids = copies_of_one_backup(service, config)
    root = str(backups_root(config, Scope.site()))
    real_lstat, lock = os.lstat, threading.Lock()
    waiting, most = 0, 0

    def slow_lstat(path, *args, **kwargs):  # a disk that takes 2 ms a read: how many wait at once?
        nonlocal waiting, most
        if not str(path).startswith(root + os.sep):
            return real_lstat(path, *args, **kwargs)
        with lock:
            waiting += 1
            most = max(most, waiting)
        try:
            time.sleep(0.002)
            return real_lstat(path, *args, **kwargs)
        finally:
            with lock:
                waiting -= 1

    monkeypatch.setattr(os, "lstat", slow_lstat)
    assert [b["id"] for b in service.list_backups()] == list(reversed(ids))
    assert most > 1


def list_in_a_fresh_process(data_dir, *args) -> tuple[str, set[str]]:
    """``strongroom list`` run by a new interpreter: its output, and the modules it loaded."""
    probe = ("import sys; from strongroom.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('\\n'.join(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe, "--data-dir", str(data_dir), "list", *args],
                          capture_output=True, text=True, check=True)
    return done.stdout, set(done.stderr.split())


def test_list_starts_without_the_service_or_the_database_drivers(service, config):
    ids = copies_of_one_backup(service, config)
    shown, loaded = list_in_a_fresh_process(config.data_dir, "--json")
    assert [b["id"] for b in json.loads(shown)] == list(reversed(ids))
    assert not loaded & {"strongroom.service", "montydb", "pymongo", "bson"}


def test_list_still_finishes_an_interrupted_restore_first(service, config):
    ids = copies_of_one_backup(service, config)
    service.journal.start(operation="restore", scope="site", project=None, step="reserved", backup=ids[-1],
                          pre_restore=None)
    shown, loaded = list_in_a_fresh_process(config.data_dir)
    assert "strongroom.service" in loaded  # the journal is there: the service recovers first
    assert not service.journal.path.exists()
    assert [line.split()[0] for line in shown.splitlines()] == list(reversed(ids))


def test_version_still_starts_without_what_list_reads_with():
    probe = ("import sys; from strongroom.cli import main\n"
             "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
             "print('\\n'.join(sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "strongroom, version" in done.stdout
    loaded = set(done.stderr.split())
    assert not loaded & {"strongroom.inspect.listing", "strongroom.repo.store", "strongroom.repo.journal", "concurrent.futures"}


def test_each_command_starts_without_the_other_commands_modules():
    """The group imports a command's module when it is looked up: ``--version`` loads
    none of them, ``list --help`` only its own (not the archive formats of ``export`` and
    ``import``, nor the object store of ``push``)."""
    probe = ("import sys; from strongroom.cli import main\n"
             "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
             "print('\\n'.join(sys.modules), file=sys.stderr)")
    commands = {"strongroom.cli.archives", "strongroom.cli.imports", "strongroom.cli.remote",
                "strongroom.cli.browsing", "strongroom.cli.backups", "strongroom.exchange.archive_format"}
    loaded = {}
    for args in (["--version"], ["list", "--help"]):
        done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, check=True)
        assert done.stdout.strip(), args
        loaded[args[0]] = set(done.stderr.split()) & commands
    assert loaded == {"--version": set(), "list": {"strongroom.cli.backups"}}
