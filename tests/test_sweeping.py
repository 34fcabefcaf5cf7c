"""A restore's old tree is removed after the restore returns, by a detached sweep.

What users rely on: the restore's result and the restored state are those of a restore
that removed the old tree itself; the old tree's disk space is freed a moment later; a
sweep that dies leaves nothing the next operation does not remove; a tree being swept
is never backed up, restored, rescued or in the way of a later restore.

The sweep is a real process. To see it at work, its start is slowed by a
``sitecustomize`` module on its ``PYTHONPATH`` that sleeps (``slow_sweeps``).
"""

import os
import signal
import time
from pathlib import Path

import pytest

from conftest import give_the_restore_work, records_fingerprint, tree_fingerprint
from strongroom.fs import sweeping
from strongroom.repo.manifest import iter_entries
from strongroom.scopes import Scope, scope_dir

WAIT = 60  # seconds: a bound on how long a sweep of the small demo site may take here


def place(config):
    """The folder holding trees being swept and their names' prefix."""
    return sweeping.place_of(scope_dir(config, Scope.site()))


def swept_trees(config) -> list[str]:
    folder, prefix = place(config)
    return sorted(name for name in os.listdir(folder) if name.startswith(prefix))


def trees_beside(config, scope: Scope) -> list[str]:
    """Old and new trees of a restore of ``scope`` beside its live folder."""
    live = scope_dir(config, scope)
    return sorted(n for n in os.listdir(live.parent) if n.startswith(f".{live.name}."))


def wait_until(condition, seconds: float = WAIT) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def sweeps_of(config) -> dict[int, str]:
    """The live sweep processes of this data dir: pid -> the tree each removes."""
    found = {}
    names = set(swept_trees(config))
    for pid in os.listdir("/proc"):
        try:
            args = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if b"strongroom.fs.sweeping" in args and len(args) > 4 and args[4].decode() in names:
            found[int(pid)] = args[4].decode()
    return found


@pytest.fixture
def slow_sweeps(tmp_path, monkeypatch):
    """Every sweep started in this test waits ``SWEEP_START_DELAY`` seconds before its work."""
    folder = tmp_path / "slow-start"
    folder.mkdir()
    (folder / "sitecustomize.py").write_text(
        "import os, time\n"
        "time.sleep(float(os.environ.get('SWEEP_START_DELAY', '0')))\n")
    monkeypatch.setenv("PYTHONPATH", str(folder))
    monkeypatch.setenv("SWEEP_START_DELAY", "30")


def kill_sweeps(config) -> None:
    """Kill every sweep and wait until each has let go of its lock: until it is gone or a
    zombie. A dying process's command line empties (its memory goes) before its files are
    closed, so 'no sweep in /proc' alone came too early under load: the lock was still
    held, and the next operation rightly left that tree to its holder."""
    killed = list(sweeps_of(config))
    for pid in killed:
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: all(_ended(pid) for pid in killed))


def _ended(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # reaped
    return stat[stat.rindex(")") + 2] in "ZX"  # the state field, after the command's name


def test_the_restore_returns_before_its_old_tree_is_removed_and_the_sweep_removes_it(
        service, site, config, slow_sweeps, monkeypatch):
    monkeypatch.setenv("SWEEP_START_DELAY", "1")
    made = service.make_backup()
    at_backup = tree_fingerprint(config.working_dir)
    (config.working_dir / "site.json").write_text('{"changed": true}')
    result = service.restore_backup(made["id"])
    assert result["restored"] == made["id"] and result["copied"] == 1
    assert result["kept"] == result["files"] - 1 and result["rescued"]["count"] == 0
    assert tree_fingerprint(config.working_dir) == at_backup
    assert len(swept_trees(config)) == 1, "the old tree is being swept, out of the way"
    assert trees_beside(config, Scope.site()) == [n for n in swept_trees(config)]  # no .old- left
    assert service.maintenance() is None  # the restore is over: nothing to recover
    wait_until(lambda: not swept_trees(config))
    assert tree_fingerprint(config.working_dir) == at_backup


def test_a_sweep_blocks_no_operation_and_a_killed_sweeps_leftover_goes_with_the_next_one(
        service, site, config, slow_sweeps):
    made = service.make_backup()
    give_the_restore_work(config.working_dir)
    service.restore_backup(made["id"])
    assert len(sweeps_of(config)) == 1
    # A live sweep: the next operations run, and leave its tree to it.
    give_the_restore_work(config.working_dir)
    service.restore_backup(made["id"])  # the same backup again: the earlier old tree is not in its way
    again = service.make_backup()
    assert len(swept_trees(config)) == 2 and len(sweeps_of(config)) == 2
    assert not [e for e in iter_entries(*service.store.open(Scope.site(), again["id"]))
                if ".sweep-" in e["path"] or ".old-" in e["path"]]
    kill_sweeps(config)
    assert len(swept_trees(config)) == 2  # what the killed sweeps left ...
    service.list_backups()  # (reading is no operation: it removes nothing)
    assert len(swept_trees(config)) == 2
    service.make_backup(note="next")  # ... goes with the next operation
    assert swept_trees(config) == []


def test_a_project_tree_being_swept_is_never_backed_up_restored_or_rescued(service, site, config, slow_sweeps):
    project = site.project_ids[0]
    project_dir = scope_dir(config, Scope.project(project))
    site_backup = service.make_backup()
    at_site_backup = tree_fingerprint(config.working_dir)
    project_backup = service.make_backup(project)
    (project_dir / "new.bin").write_bytes(b"x" * 3000)
    service.restore_backup(project_backup["id"], project)
    assert trees_beside(config, Scope.project(project)) == []  # moved out of the site's folder
    assert len(swept_trees(config)) == 1
    site_again = service.make_backup()
    paths = [e["path"] for e in iter_entries(*service.store.open(Scope.site(), site_again["id"]))]
    assert not [p for p in paths if ".sweep-" in p or ".old-" in p or p.endswith("new.bin")]
    result = service.restore_backup(site_backup["id"])
    assert result["rescued"]["count"] == 0
    assert tree_fingerprint(config.working_dir) == at_site_backup
    kill_sweeps(config)
    service.recover()
    assert swept_trees(config) == []


def test_a_restore_under_a_mutation_hook_removes_its_old_tree_itself(service, site, config):
    """The fault tests count every change of a restore: with a hook, none is left to another process."""
    from faults import count_points

    made = service.make_backup()
    give_the_restore_work(config.working_dir)
    points = count_points(lambda: service.restore_backup(made["id"]))
    swept = [detail for kind, detail in points if kind == "rmtree" and ".sweep-" in str(detail)]
    assert len(swept) == 1 and swept_trees(config) == [] and trees_beside(config, Scope.site()) == []


def test_the_records_and_files_after_a_swept_restore_are_the_backups(service, site, config, database):
    made = service.make_backup()
    records = records_fingerprint(database)
    files = tree_fingerprint(config.working_dir)
    (config.working_dir / "site.json").unlink()
    database.user.delete_many({})
    service.restore_backup(made["id"])
    wait_until(lambda: not swept_trees(config))
    assert records_fingerprint(database) == records and tree_fingerprint(config.working_dir) == files


def test_in_a_server_that_embeds_python_the_sweep_is_a_thread_of_it(service, site, config, monkeypatch):
    import sys

    monkeypatch.setattr(sys, "executable", "/usr/bin/uwsgi")  # no Python to start: never run it
    made = service.make_backup()
    files = tree_fingerprint(config.working_dir)
    give_the_restore_work(config.working_dir)  # an old tree to sweep (onto the same state nothing is swapped)
    assert service.restore_backup(made["id"])["pre_restore"]
    assert sweeps_of(config) == {}
    wait_until(lambda: not swept_trees(config))
    assert tree_fingerprint(config.working_dir) == files


def test_a_project_folder_on_another_file_system_has_its_old_tree_removed_before_the_restore_returns(
        service, site, config, tmp_path):
    """It cannot be moved out of the site's folder (no rename across file systems): removed at once."""
    import shutil
    import subprocess

    projects = scope_dir(config, Scope.site()) / "project"
    saved = tmp_path / "saved"
    shutil.copytree(projects, saved, symlinks=True)
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(projects)],
                          check=False, capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        shutil.copytree(saved, projects, symlinks=True, dirs_exist_ok=True)
        project = site.project_ids[0]
        backup = service.make_backup(project)
        files = tree_fingerprint(scope_dir(config, Scope.project(project)))
        (scope_dir(config, Scope.project(project)) / "new.bin").write_bytes(b"x" * 3000)
        service.restore_backup(backup["id"], project)
        assert trees_beside(config, Scope.project(project)) == [] and swept_trees(config) == []
        assert tree_fingerprint(scope_dir(config, Scope.project(project))) == files
    finally:
        subprocess.run(["umount", "-l", str(projects)], check=False)
