"""Backups keep secrets secret: nobody but the operator (and a configured group) reads them."""

from __future__ import annotations

import grp
import os
import stat
import subprocess

import pytest

from strongroom.config import Config
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
    made = Strongroom(config).make_backup()
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
    service = Strongroom(config)
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
