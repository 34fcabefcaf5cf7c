"""A mistyped data dir or run mode never makes a successful, empty backup, and leaves
nothing behind: no data dir, no embedded database of a mode that does not exist."""

import os
import subprocess
import sys

import pytest

from conftest import tree_fingerprint

COMMANDS = [["backup"], ["list"], ["show", "2026-11-26T04-27-43"], ["restore", "2026-11-26T04-27-43", "--yes"],
            ["delete", "2026-11-26T04-27-43", "--yes"], ["verify", "--all"], ["prune", "--keep-last", "1", "--yes"],
            ["recover"], ["serve", "--port", "0"], ["import", "/nonexistent"]]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_every_command_refuses_a_data_dir_that_does_not_exist_and_does_not_make_it(tmp_path, cli_process, command):
    typo = tmp_path / "srv" / "typo"
    result = cli_process("--data-dir", str(typo), *command, timeout=60)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"strongroom: error: no data dir {typo}"), result.stderr
    assert result.stdout == "" and not typo.exists() and not typo.parent.exists()


def test_the_data_dir_from_the_environment_is_checked_too(tmp_path):
    typo = tmp_path / "typo"
    result = subprocess.run([sys.executable, "-m", "strongroom.cli", "backup"], capture_output=True, text=True,
                            cwd=tmp_path, env={**os.environ, "STRONGROOM_DATA_DIR": str(typo)},
                            stdin=subprocess.DEVNULL, timeout=60, check=False)
    assert result.returncode == 3 and "no data dir" in result.stderr and not typo.exists()


def test_help_is_given_whatever_the_data_dir(tmp_path, cli_process):
    result = cli_process("--data-dir", str(tmp_path / "typo"), "backup", "--help")
    assert result.returncode == 0 and "Usage:" in result.stdout and not (tmp_path / "typo").exists()


def test_demo_init_makes_its_data_dir(tmp_path, cli_process):
    fresh = tmp_path / "fresh"
    result = cli_process("--data-dir", str(fresh), "demo", "init", "--projects", "1", "--editions", "1")
    assert result.returncode == 0, result.stderr
    assert (fresh / "working" / "pilot").is_dir()


@pytest.mark.parametrize("command", [["backup"], ["backup", "--project", "6548a1b2c3d4e5f601234567"]])
def test_a_mode_without_a_working_folder_or_database_backs_up_nothing_and_makes_no_database(
        config, cli_process, site, command):
    before = tree_fingerprint(config.data_dir / "working"), tree_fingerprint(config.data_dir / "db")
    result = cli_process("--mode", "test", *command)
    assert result.returncode == 3 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (config.data_dir / "db" / "test").exists()
    assert not (config.backups_root / "test" / "site").exists()
    assert (tree_fingerprint(config.data_dir / "working"), tree_fingerprint(config.data_dir / "db")) == before
