"""The command line: outputs, exit codes, confirmation, bad input, the lock."""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import records_fingerprint, tree_fingerprint
from strongroom.cli import main
from strongroom.repo.locking import OperationLock

BAD_IDS = ["../x", "..%2f", "", "x" * 300, "2026-11-26T04-27-43\n", "/etc", "%2e%2e%2f"]


AUDIT_FILES = ("audit.log", ".audit.lock")  # a refused attempt is recorded there: that is the point


def snapshot_all(config, database):
    backups = {path: found for path, found in tree_fingerprint(config.data_dir / "backups").items()
               if path.rsplit("/", 1)[-1] not in AUDIT_FILES}
    return tree_fingerprint(config.data_dir / "working"), backups, records_fingerprint(database)


def test_backup_prints_its_id_and_list_json_has_the_documented_fields(cli, site):
    made = cli("backup", "--note", "first")
    assert made.exit_code == 0, made.output
    backup_id = made.output.strip()
    listed = json.loads(cli("list", "--json").output)
    assert [b["id"] for b in listed] == [backup_id]
    assert set(listed[0]) >= {"id", "scope", "project", "created_at", "reason", "note", "files", "bytes", "records"}
    assert listed[0]["note"] == "first" and listed[0]["records"]["edition"] == 6


def test_project_backup_json_is_one_object_and_show_describes_it(cli, site):
    project_id = site.project_ids[0]
    made = json.loads(cli("backup", "--project", project_id, "--json").output)
    assert made["scope"] == "project" and made["project"] == project_id and made["records"]["project"] == 1
    shown = cli("show", made["id"], "--project", project_id)
    assert shown.exit_code == 0 and "of project “" in shown.output and project_id in shown.output
    assert json.loads(cli("list", "--project", project_id, "--json").output)[0]["id"] == made["id"]
    assert json.loads(cli("list", "--json").output) == []  # project backups are not site backups


@pytest.mark.parametrize("bad", BAD_IDS)
@pytest.mark.parametrize("command", ["show", "restore", "delete", "verify"])
def test_bad_backup_ids_exit_2_and_touch_nothing(cli, config, database, site, command, bad):
    cli("backup")
    before = snapshot_all(config, database)
    args = [command, bad] + (["--yes"] if command in ("restore", "delete") else [])
    result = cli(*args)
    assert result.exit_code == 2, result.output
    assert "not a backup id" in result.output
    assert snapshot_all(config, database) == before


@pytest.mark.parametrize("bad", BAD_IDS + ["6548A1B2C3D4E5F601234567"])
def test_bad_project_ids_exit_2(cli, site, bad):
    result = cli("backup", "--project", bad)
    assert result.exit_code == 2 and "not a project id" in result.output


def test_unknown_project_ids_and_backups_exit_3_and_touch_nothing(cli, config, database, site):
    before = snapshot_all(config, database)
    for args in (["backup", "--project", "0" * 24], ["list", "--project", "0" * 24],
                 ["restore", "2020-01-01T00-00-00", "--yes"], ["delete", "2020-01-01T00-00-00", "--yes"]):
        result = cli(*args)
        assert result.exit_code == 3, (args, result.output)
    assert snapshot_all(config, database) == before


def test_restore_and_delete_refuse_without_a_terminal_or_yes(cli, config, database, site):
    backup_id = cli("backup").output.strip()
    before = snapshot_all(config, database)
    for command in ("restore", "delete"):
        result = cli(command, backup_id)
        assert result.exit_code == 2 and "--yes" in result.output
    assert snapshot_all(config, database) == before


def test_restore_and_delete_work_with_yes(cli, config, site):
    backup_id = cli("backup").output.strip()
    (config.working_dir / "stray.txt").write_text("x")
    restored = cli("restore", backup_id, "--yes")
    assert restored.exit_code == 0 and "pre-restore" not in restored.output
    assert not (config.working_dir / "stray.txt").exists()
    listed = json.loads(cli("list", "--json").output)
    assert [b["reason"] for b in listed] == ["pre-restore", "manual"]
    assert cli("delete", backup_id, "--yes").exit_code == 0
    assert [b["id"] for b in json.loads(cli("list", "--json").output)] == [listed[0]["id"]]


def test_verify_exits_5_naming_the_damaged_file(cli, config, site):
    backup_id = cli("backup").output.strip()
    assert cli("verify", backup_id).exit_code == 0
    assert cli("verify", "--all").exit_code == 0
    victim = next((config.backups_dir / "site" / backup_id / "files").rglob("*.jpg"))
    victim.chmod(0o644)
    with open(victim, "r+b") as fh:
        byte = fh.read(1)
        fh.seek(0)
        fh.write(bytes([byte[0] ^ 1]))
    result = cli("verify", backup_id)
    assert result.exit_code == 5
    assert victim.name in result.output


def test_a_held_lock_makes_a_second_process_exit_4_saying_what_holds_it(config, site, cli_process):
    with OperationLock(config.backups_dir / ".lock", "restore", "admin"):
        result = cli_process("backup")
    assert result.returncode == 4
    assert "restore by admin" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_lock_left_by_a_killed_process_does_not_block(config, site, cli_process):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         ("import sys, time; from pathlib import Path; from strongroom.repo.locking import OperationLock\n"
          f"with OperationLock(Path({str(config.backups_dir / '.lock')!r}), 'backup', 'cron'):\n"
          "    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    assert cli_process("backup").returncode == 4
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    result = cli_process("backup")
    assert result.returncode == 0, result.stderr


def test_every_command_has_help_with_an_explanation():
    from click.testing import CliRunner

    runner = CliRunner()
    names = main.list_commands(None)
    assert len(names) == 22
    for name in names:
        command = main.get_command(None, name)
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and len(result.output) > 100, name
        assert command.help


def test_the_environment_chooses_the_data_dir_and_mode(tmp_path, site, config):
    env = {**os.environ, "STRONGROOM_DATA_DIR": str(config.data_dir), "STRONGROOM_MODE": "pilot"}
    made = subprocess.run([sys.executable, "-m", "strongroom.cli", "backup"], env=env, capture_output=True,
                          text=True, stdin=subprocess.DEVNULL, check=False)
    assert made.returncode == 0, made.stderr
    assert (config.backups_dir / "site" / made.stdout.strip() / "manifest.json").is_file()
    other = subprocess.run([sys.executable, "-m", "strongroom.cli", "--mode", "test", "list", "--json"], env=env,
                           capture_output=True, text=True, check=False)
    assert json.loads(other.stdout) == []


def test_demo_init_refuses_to_overwrite(cli, site):
    result = cli("demo", "init")
    assert result.exit_code == 2


def test_a_backup_of_a_data_dir_with_nothing_in_it_exits_3_and_makes_no_backup(cli_process, config):
    """A mistyped --mode in a cron line must not make empty backups with exit 0 (a data dir
    that does not exist is refused before: test_cli_data_dir)."""
    config.data_dir.mkdir(parents=True)
    result = cli_process("backup", "--reason", "scheduled")
    assert result.returncode == 3, (result.stdout, result.stderr)
    assert result.stderr.startswith("strongroom: error: nothing to back up: the working dir ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert not list((config.backups_dir).rglob("manifest.json"))
    assert cli_process("list").stdout.strip() == "No backups of the whole site."
