"""Backups keep secrets secret: nobody but the operator (and a configured group) reads them."""

from __future__ import annotations

import grp
import os
import stat
import subprocess
from pathlib import Path

import pytest

from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.scopes import Scope, backups_root
from strongroom.service import Strongroom

NOBODY = 65534


def _mode(path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


@pytest.fixture
def open_umask():
    """The loosest umask there is: modes must not depend on it."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def _secret_site(config):
    secret = config.working_dir / "secret.key"
    secret.parent.mkdir(parents=True)
    secret.write_bytes(b"the password is swordfish")
    secret.chmod(0o000)
    return secret


def _stored(config, backup_id, rel):
    return backups_root(config, Scope.site()) / backup_id / "files" / rel


def test_a_file_of_mode_000_is_stored_where_only_the_operator_can_read_it(config, database, open_umask):
    _secret_site(config)
    made = Strongroom(config, database=database).make_backup()

    for folder in (config.backups_base, config.backups_dir, config.pool_dir):
        assert _mode(folder) == 0o700, folder
    stored = _stored(config, made["id"], "secret.key")
    assert _mode(stored) == 0o400
    assert all(_mode(p) == 0o400 for p in config.pool_dir.glob("??/*"))


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to run a process as another user")
def test_another_user_cannot_read_a_stored_secret(public_place):
    config = Config(data_dir=public_place / "data")
    (public_place / "data").mkdir(mode=0o755)
    _secret_site(config)
    made = Strongroom(config, database=open_database(config)).make_backup()  # a site with records
    stored = _stored(config, made["id"], "secret.key")
    digest = next(config.pool_dir.glob("??/*"))
    for path in (stored, digest):
        reader = subprocess.run(["cat", str(path)], user=NOBODY, capture_output=True, text=True, cwd="/", check=False)
        assert reader.returncode != 0 and "Permission denied" in reader.stderr
        assert "swordfish" not in reader.stdout


def test_a_configured_group_may_read_and_nobody_else(tmp_path, open_umask):
    group = grp.getgrall()[-1]
    config = Config(data_dir=tmp_path / "data", backup_group=group.gr_name)
    _secret_site(config)
    service = Strongroom(config, database=open_database(config))  # a site with records
    made = service.make_backup()

    for folder in (config.backups_base, config.backups_dir, config.pool_dir):
        assert _mode(folder) == 0o750 and os.lstat(folder).st_gid == group.gr_gid
    stored = _stored(config, made["id"], "secret.key")
    assert _mode(stored) == 0o440 and os.lstat(stored).st_gid == group.gr_gid


def test_verify_makes_loosened_backups_private_again_and_says_so(service, config, site, cli):
    made = service.make_backup()
    config.backups_base.chmod(0o755)
    (config.backups_base / "prod").mkdir(mode=0o755)  # another run mode's, made by an older version
    config.pool_dir.chmod(0o777)
    stored = next(p for p in _stored(config, made["id"], "").rglob("*") if p.is_file())
    stored.chmod(0o444)  # as objects were before backups were private
    config.site_key_path.chmod(0o644)

    result = cli("verify", made["id"])

    assert result.exit_code == 0, result.output
    assert "fixed:" in result.output and str(config.pool_dir) in result.output
    assert "stored files were readable by others" in result.output
    assert _mode(config.backups_base) == _mode(config.pool_dir) == _mode(config.backups_base / "prod") == 0o700
    assert _mode(stored) == 0o400 and _mode(config.site_key_path) == 0o600
    again = service.verify_backup(made["id"])
    assert again["ok"] and again["fixed"] == []


def _everything_below(root: Path) -> list[tuple[Path, os.stat_result]]:
    found = []
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            found.append((path, os.lstat(path)))
    return found


def _loose(root: Path, folder_mode: int = 0o700) -> list[str]:
    """What below ``root`` others (beyond the group's read) could read or enter: folders not
    of ``folder_mode``, files with any bit for others or a write bit for the group."""
    loose = []
    for path, st in [(root, os.lstat(root)), *_everything_below(root)]:
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISDIR(st.st_mode) and mode != folder_mode or stat.S_ISREG(st.st_mode) and mode & 0o027:
            loose.append(f"{path} {mode:04o}")
    return loose


def _host_made_backups_folders(config) -> None:
    """The host (the original module) made ``backups/`` and ``backups/pilot/`` 0755 before."""
    (config.data_dir / "backups" / "pilot").mkdir(parents=True, mode=0o755)
    (config.data_dir / "backups").chmod(0o755)
    (config.data_dir / "backups" / "pilot").chmod(0o755)


def test_folders_a_host_made_0755_are_private_from_the_first_backup_when_they_are_strongrooms(
        config, database, site):
    """The layout shared with the original's folders (``backups/`` itself as the root)."""
    _host_made_backups_folders(config)
    shared = Config(data_dir=config.data_dir, backups_location=config.shared_backups_dir)
    service = Strongroom(shared, database=database)

    made = service.make_backup()
    service.make_backup(site.project_ids[0])

    assert _mode(shared.backups_root) == _mode(shared.backups_dir) == 0o700
    assert _loose(shared.backups_root) == []
    backup = shared.backups_dir / "site" / made["id"]
    for rel in ("db/bson/user.bson", "db/bson/user.metadata.json", "db/json/user.json", "manifest.json"):
        assert _mode(backup / rel) == 0o600, rel


def test_in_strongrooms_own_root_everything_is_private_and_the_hosts_folders_are_left_as_they_are(
        config, database, site):
    _host_made_backups_folders(config)
    service = Strongroom(config, database=database)

    service.make_backup()
    service.make_backup(site.project_ids[0])
    service.verify_backup(service.list_backups()[0]["id"])

    assert _loose(config.backups_root) == []
    assert _mode(config.data_dir / "backups") == _mode(config.data_dir / "backups" / "pilot") == 0o755


def test_a_project_folder_of_the_original_module_strongroom_writes_into_is_made_private(config, database, site):
    project = site.project_ids[0]
    theirs = config.shared_backups_dir / "pilot" / "project" / project
    theirs.mkdir(parents=True, mode=0o755)
    theirs.chmod(0o755)
    shared = Config(data_dir=config.data_dir, backups_location=config.shared_backups_dir)

    Strongroom(shared, database=database).make_backup(project)

    assert _mode(theirs) == _mode(theirs.parent) == 0o700


def test_with_a_backup_group_the_group_modes_are_given_from_the_first_backup(config, database, site):
    group = grp.getgrgid(os.getgid())
    _host_made_backups_folders(config)
    shared = Config(data_dir=config.data_dir, backups_location=config.shared_backups_dir, backup_group=group.gr_name)

    made = Strongroom(shared, database=database).make_backup()

    assert _loose(shared.backups_root, folder_mode=0o750) == []
    backup = shared.backups_dir / "site" / made["id"]
    assert _mode(backup / "db" / "bson" / "user.bson") == 0o640
    assert _mode(backup / "db") == _mode(backup / "files") == 0o750


def test_verify_makes_the_records_of_an_older_backup_private_and_says_so(service, config, site):
    made = service.make_backup()["id"]
    backup = config.backups_dir / "site" / made
    for path in [*backup.glob("db/*/*"), backup / "manifest.json"]:
        path.chmod(0o644)  # as versions before wrote them
    (backup / "db").chmod(0o755)

    report = service.verify_backup(made)

    assert report["ok"] and any("(records, lists) had modes others could use" in f for f in report["fixed"])
    assert _loose(backup) == []
    assert service.verify_backup(made)["fixed"] == []
