"""Every failure of the command is one line on standard error, quickly, with the right exit
status: usage errors, a database URI that cannot work, an unreachable server, a "no" at
the confirmation, a reader that went away."""

import os
import pty
import subprocess
import sys
import time

import pytest

from conftest import tree_fingerprint


def one_line(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("strongroom: error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize("args, hint", [
    (["lisst"], "strongroom.cli --help')"),
    (["list", "--bogus"], "strongroom.cli list --help')"),
    (["--mode", "staging", "list"], "strongroom.cli --help')"),
    (["demo", "init", "--size", "huge"], "strongroom.cli demo init --help')"),
    (["restore"], "strongroom.cli restore --help')"),
])
def test_usage_errors_are_one_line_with_the_help_to_try_and_exit_2(cli_process, site, args, hint):
    result = cli_process(*args)
    assert result.returncode == 2
    assert one_line(result).endswith(hint)  # the program as it was called: here python -m strongroom.cli


def test_a_mistyped_command_still_gets_its_suggestion(cli_process, site):
    assert "Did you mean 'list'?" in one_line(cli_process("lisst"))


@pytest.mark.parametrize("uri", ["garbage", "mongodb://", "mongodb://127.0.0.1:1", "mongodb://h/site?nosuch=1",
                                 "http://127.0.0.1/site"])
@pytest.mark.parametrize("command", [["list"], ["verify", "--all"], ["backup"], ["show", "2026-11-26T04-27-43"],
                                     ["serve", "--port", "0"]])
def test_a_database_uri_that_cannot_work_is_refused_by_every_command(cli_process, config, site, uri, command):
    before = tree_fingerprint(config.data_dir)
    result = cli_process("--db", uri, *command, timeout=30)
    assert result.returncode == 2 and "database URI" in one_line(result)
    assert tree_fingerprint(config.data_dir) == before


def test_a_uri_with_a_password_is_never_echoed_in_the_refusal(cli_process, site):
    result = cli_process("--db", "mongodb://backup:s3cret@db1:27017", "list")
    assert result.returncode == 2 and "s3cret" not in one_line(result)


def test_an_unreachable_mongodb_fails_in_one_line_within_seconds(cli_process, site):
    started = time.monotonic()
    result = cli_process("--db", "mongodb://127.0.0.1:1/site", "backup", timeout=60)
    took = time.monotonic() - started
    line = one_line(result)
    assert result.returncode == 1 and "cannot reach the database server" in line and "127.0.0.1:1" in line
    assert "Topology" not in line and took < 15


def test_the_uri_may_set_how_long_to_look_for_the_server(cli_process, site):
    # Longer than the default (3 s), so the bound is one a busy machine cannot break: the
    # command looks for the server for the URI's 6 s, not for the default's 3 s.
    started = time.monotonic()
    result = cli_process("--db", "mongodb://127.0.0.1:1/site?serverSelectionTimeoutMS=6000", "backup", timeout=60)
    assert result.returncode == 1 and "cannot reach the database server" in one_line(result)
    assert time.monotonic() - started >= 6


def run_on_a_terminal(config, args, answer: bytes) -> tuple[int, str, str]:
    """Run the command with a terminal as its standard input, answer the question: the
    exit status, standard error, standard output (where the question is)."""
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                                   stdin=follower, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.write(leader, answer)
        out, err = process.communicate(timeout=120)
    finally:
        os.close(leader)
        os.close(follower)
    return process.returncode, err.decode(), out.decode()


@pytest.mark.parametrize("command", ["delete", "restore"])
def test_answering_no_at_the_confirmation_exits_1_cancelled_and_changes_nothing(config, cli, site, command):
    backup_id = cli("backup").output.strip()
    before = tree_fingerprint(config.data_dir / "backups"), tree_fingerprint(config.working_dir)
    code, err, _ = run_on_a_terminal(config, [command, backup_id], b"n\n")
    assert code == 1 and err == "strongroom: cancelled: nothing was changed\n", err  # the user's choice: no "error"
    assert (tree_fingerprint(config.data_dir / "backups"), tree_fingerprint(config.working_dir)) == before


def test_a_restore_against_an_unreachable_mongodb_says_so_by_one_rule_in_the_line_the_log_and_the_panel(
        cli_process, cli, config, site):
    """One rule for a database failure: the server and the cause, never pymongo's dump of
    its timeouts and topology; the same words on the terminal, in the audit log and in
    the panel's last operations (which read the audit log)."""
    import json

    from strongroom.service import Strongroom
    from strongroom.web.operations import panel_operations

    backup = cli("backup").output.strip()
    result = cli_process("--db", "mongodb://127.0.0.1:1/site", "restore", backup, "--yes", timeout=60)
    line = one_line(result)
    assert result.returncode == 1
    assert line == "strongroom: error: cannot reach the database server 127.0.0.1:1: [Errno 111] Connection refused"
    logged = json.loads(cli("log", "--json").output)[-1]
    assert (logged["operation"], logged["outcome"]) == ("restore", "failed")
    assert logged["error"] == "cannot reach the database server 127.0.0.1:1: [Errno 111] Connection refused"
    shown = panel_operations(Strongroom(config), None)["entries"][0]
    assert shown["error"] == logged["error"]
