"""Exports and read-only file systems with true one-line messages (issue 22, points 8, 9):
an export that cannot write names the disk it writes to and never blames the backup; an
export killed outright leaves nothing the next one does not remove; a disk that turns
read-only mid-operation is reported as the operation's failure ("no backup was made",
"nothing was changed"), not masked by the lock's release, and the lock is let go."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys

import pytest

from conftest import as_user, give_the_restore_work
from faults import raised_with
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.errors import BackupFailed, StrongroomError
from strongroom.scopes import Scope, scope_dir
from strongroom.service import Strongroom

KB = 1 << 10


def _cli(config, *args):
    return subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)


def _one_line(result) -> str:
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line, result.stderr
    return line


def test_an_export_to_a_full_disk_names_that_disk_and_does_not_blame_the_backup(service, config, site, tmpfs):
    made = service.make_backup()
    disk = tmpfs("1m")
    (disk / "filler").write_bytes(b"x" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - 64 * KB))

    failed = _cli(config, "export", made["id"], "-o", str(disk / "site.tar"))

    assert failed.returncode == 6
    line = _one_line(failed)
    assert f"cannot write the archive {disk / 'site.tar'}" in line and f"free on {disk}" in line
    assert "verify" not in line and "the backup itself is fine" in line
    assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # no archive, no partial


def test_an_export_to_dev_full_names_dev_full_and_makes_nothing_beside_it(service, config, site, tmp_path):
    made = service.make_backup()
    # A node of /dev/full's own of numbers, in a folder of the test's: a bug that wrote
    # beside it and renamed over it would replace this one, not the system's.
    full = tmp_path / "dev" / "full"
    full.parent.mkdir()
    try:
        os.mknod(full, 0o666 | stat.S_IFCHR, os.makedev(1, 7))
    except PermissionError:
        pytest.skip("this container may not make a device node (no CAP_MKNOD)")

    failed = _cli(config, "export", made["id"], "-o", str(full))

    assert failed.returncode == 6
    line = _one_line(failed)
    assert f"cannot write the archive to {full}: No space left on device" in line and "verify" not in line
    assert os.listdir(full.parent) == ["full"] and stat.S_ISCHR(os.lstat(full).st_mode)


def test_what_an_export_killed_outright_left_is_removed_by_the_next_one(service, config, site, tmp_path):
    made = service.make_backup()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    left = tmp_path / f".site.tar.partial-{dead.stdout.strip()}"  # as a kill -9 leaves it
    left.write_bytes(b"half an archive")
    running = tmp_path / f".site.tar.partial-{os.getpid()}"  # an export still running (this process lives)
    running.write_bytes(b"")

    done = _cli(config, "export", made["id"], "-o", str(tmp_path / "site.tar"))

    assert done.returncode == 0, done.stderr
    assert not left.exists() and (tmp_path / "site.tar").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site.tar.partial-")] == [running.name]


def _read_only_from(point_kind: str, monkeypatch):
    """A hook that turns the disk "read-only" at the first ``point_kind`` mutation: that
    point and every later one fail with EROFS, and so does emptying the lock's file."""
    turned = []
    real_ftruncate = os.ftruncate

    def ftruncate(fd, length):
        if turned:
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real_ftruncate(fd, length)

    monkeypatch.setattr(os, "ftruncate", ftruncate)

    def hook(kind, detail):
        if kind == point_kind or turned:
            turned.append(kind)
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), detail)

    return hook


@pytest.mark.parametrize("operation", ["backup", "restore"])
def test_a_disk_turning_read_only_is_reported_as_the_operation_s_failure_and_the_lock_let_go(
        service, config, database, site, monkeypatch, operation):
    made = service.make_backup()
    give_the_restore_work(config.working_dir)
    run = (lambda: service.make_backup()) if operation == "backup" else (lambda: service.restore_backup(made["id"]))

    raised = raised_with(_read_only_from("write", monkeypatch), run)
    monkeypatch.undo()

    assert isinstance(raised, StrongroomError), repr(raised)
    words = "no backup was made" if operation == "backup" else "nothing was changed"
    assert words in str(raised) and "Read-only file system" in str(raised)
    if operation == "backup":
        assert isinstance(raised, BackupFailed)
    assert service.busy() is None  # the lock's file still names the operation, but nobody holds it
    Strongroom(config, database=database).make_backup(note="the lock was let go")  # same process, as serve


@pytest.mark.parametrize("command", [["backup"], ["restore", "BACKUP", "--yes"], ["delete", "BACKUP", "--yes"]])
def test_a_disk_read_only_before_an_operation_refuses_it_in_one_true_line(tmpfs, command):
    mount = tmpfs("64m")
    config = Config(data_dir=mount / "data")
    create_demo_site(config, open_database(config), projects=1, editions=1, size="small", seed=5)
    made = subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), "backup"],
                          capture_output=True, text=True, timeout=300, check=True).stdout.strip()
    subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)

    args = [made if arg == "BACKUP" else arg for arg in command]
    refused = subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                             capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)

    lines = refused.stderr.strip().splitlines()
    assert refused.returncode == 1 and len(lines) == 1, refused.stderr
    assert "Read-only file system" in lines[0] and "nothing was changed" in lines[0]
    status = subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), "status"],
                            capture_output=True, text=True, timeout=300, check=False)
    assert status.returncode == 0 and made in status.stdout


def test_a_file_the_backup_cannot_read_fails_it_naming_its_path_in_the_scope(second_user, public_place):
    """Strongroom run by an application's user, a file of root's in the site."""
    config = Config(data_dir=public_place / "data")
    site = create_demo_site(config, open_database(config), projects=1, editions=1, size="small", seed=4)
    subprocess.run(["chown", "-R", f"{second_user[0]}:{second_user[1]}", str(config.data_dir)], check=True)
    secret = scope_dir(config, Scope.project(site.project_ids[0])) / "secret.txt"
    secret.write_text("root's alone")
    secret.chmod(0o600)  # root's: the application's user cannot read it

    failed = as_user(second_user, "strongroom", "--data-dir", str(config.data_dir), "backup")

    assert failed.returncode == 1, failed.stderr
    line = _one_line(failed)
    assert f"Permission denied: project/{site.project_ids[0]}/secret.txt" in line and "no backup was made" in line
