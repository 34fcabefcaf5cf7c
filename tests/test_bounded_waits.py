"""Every wait has a bound and a message (issue 22, point 5): a process that holds the
embedded database's gate, or any lock Strongroom waits for, and never lets go costs an
operation the bound and one line naming that process, never an endless wait."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

from conftest import give_the_restore_work, records_fingerprint, tree_fingerprint
from strongroom.errors import Busy
from strongroom.fs.waiting import flock_within
from strongroom.scopes import Scope
from strongroom.service import Strongroom

# Holds a shared flock on a folder (what every reader connection of the embedded engine
# holds while it is open) until killed.
HOLD = ("import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX if sys.argv[2] == 'ex' else fcntl.LOCK_SH)\n"
        "print('held', flush=True)\n"
        "time.sleep(600)\n")


@pytest.fixture
def hold():
    """``hold(folder, how)``: a process holding ``folder``'s flock until the test ends."""
    started = []

    def start(folder, how="sh"):
        process = subprocess.Popen([sys.executable, "-c", HOLD, str(folder), how], stdout=subprocess.PIPE, text=True)
        started.append(process)
        assert process.stdout.readline().strip() == "held"
        return process

    yield start
    for process in started:
        process.kill()
        process.wait()


def test_a_wait_past_its_bound_ends_naming_the_process_that_holds_the_lock(tmp_path, hold):
    holder = hold(tmp_path, "ex")
    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with pytest.raises(Busy) as refused:
            flock_within(fd, fcntl.LOCK_SH, "the test's folder", seconds=0.3)
    finally:
        os.close(fd)
    message = str(refused.value)
    assert "waited 0.3 s for the test's folder" in message and f"process {holder.pid} (" in message
    assert "-c" in message  # its command line


def test_a_restore_does_not_wait_for_ever_on_a_reader_that_keeps_the_database_open(service, config, database,
                                                                                   site, hold):
    made = service.make_backup()
    give_the_restore_work(config.working_dir)
    holder = hold(config.embedded_db_dir)
    files, records = tree_fingerprint(config.working_dir), records_fingerprint(database)

    refused = subprocess.run(
        [sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), "restore", made["id"], "--yes"],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL, check=False,
        env={**os.environ, "STRONGROOM_WAIT_SECONDS": "2"})

    assert refused.returncode == 4, refused.stderr
    line = refused.stderr.strip()
    assert len(line.splitlines()) == 1 and f"process {holder.pid}" in line and "embedded database" in line
    assert "refused before anything was saved or changed" in line
    assert tree_fingerprint(config.working_dir) == files and records_fingerprint(database) == records
    assert not (config.backups_dir / ".journal.json").exists()  # no maintenance left behind
    assert service.store.ids(Scope.site()) == [made["id"]]  # the gate was asked before saving: no pre-restore backup


def test_a_restore_refused_after_its_pre_restore_backup_deletes_that_backup_again(config, database, site, hold,
                                                                                  monkeypatch):
    """The gate is free when the restore starts and taken by a reader once the current
    state is saved (while the new tree is flushed): the restore is refused with nothing
    live changed, and the pre-restore backup, a copy of that unchanged state, goes."""
    made = Strongroom(config, database=database).make_backup()
    give_the_restore_work(config.working_dir)
    # a record changed too: records that already are the backup's are not replaced, and need no gate
    database.project.update_one({"_id": database.project.find_one({})["_id"]}, {"$set": {"title": "changed"}})
    files, records = tree_fingerprint(config.working_dir), records_fingerprint(database)
    objects = sorted(p.name for p in config.pool_dir.rglob("*") if p.is_file())
    monkeypatch.setenv("STRONGROOM_WAIT_SECONDS", "1")
    holders = []

    def progress(phase, done, total):
        if phase == "flushing" and not holders:
            holders.append(hold(config.embedded_db_dir))

    service = Strongroom(config, database=database, progress=progress)
    with pytest.raises(Busy, match="before anything live changed") as refused:
        service.restore_backup(made["id"])

    assert holders and f"process {holders[0].pid}" in str(refused.value)
    assert "also saved as backup" not in str(refused.value)
    assert service.store.ids(Scope.site()) == [made["id"]]
    assert tree_fingerprint(config.working_dir) == files and records_fingerprint(database) == records
    assert not (config.backups_dir / ".journal.json").exists()
    assert sorted(p.name for p in config.pool_dir.rglob("*") if p.is_file()) == objects  # its new objects went too
