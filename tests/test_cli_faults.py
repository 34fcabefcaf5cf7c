"""Errors are one line: no traceback reaches a user from any command on any fault.

Each command runs in a real CLI process with a fault injected at one of its mutation
points (``strongroom.fs.mutations``), or into a read where it has none: a database error,
an I/O error, a full disk, a plain bug. Whatever happens, standard error holds one line
``strongroom: error: …`` and the exit code is one of docs/cli.md's ("Exit status"); the traceback goes to
the ``strongroom`` log (``STRONGROOM_LOG_FILE``) at DEBUG.
"""

import signal
import subprocess
import sys

import pytest

EXIT_CODES = {0, 1, 2, 3, 4, 5, 6, 129, 130, 143}

RUNNER = """
import errno, os, signal, sqlite3, sys
from strongroom.fs import mutations
from strongroom.repo import store
errors = {
    "database": lambda: sqlite3.OperationalError("disk I/O error"),
    "eio": lambda: OSError(errno.EIO, "Input/output error", "/somewhere/file"),
    "enospc": lambda: OSError(errno.ENOSPC, "No space left on device"),
    "bug": lambda: KeyError("a bug\\nover two lines"),
}
fault, at = os.environ["FAULT"], os.environ["FAULT_AT"]
if fault == "SIGINT":  # as a terminal's Ctrl-C: a runner started in the background ignores it
    signal.signal(signal.SIGINT, signal.default_int_handler)
# FAULT_AT: the n-th mutation point, or "KIND after AFTER_KIND SUBSTRING": the first point of
# KIND once a point of AFTER_KIND whose detail holds SUBSTRING has passed (what it names,
# however many points came before: their number depends on the run).
when = at.split(" ") if not at.isdigit() else None
at = 0 if when else int(at)
if at == 0 and not when:  # a read, for commands that change nothing
    def broken(*args, **kwargs):
        raise errors[fault]()
    store.BackupStore.ids = broken
    store.BackupStore.open = broken
else:
    seen, armed, fired = 0, False, False
    def hook(kind, detail):
        global seen, armed, fired
        seen += 1
        if when:
            hit = armed and not fired and kind == when[0]
            fired = fired or hit
            armed = armed or (kind == when[2] and when[3] in str(detail))
        else:
            hit = seen == at
        if hit and fault.startswith("SIG"):
            os.kill(os.getpid(), getattr(signal, fault))
        elif hit:
            raise errors[fault]()
    mutations.set_hook(hook)
from strongroom.cli import main
sys.argv[0] = "strongroom"
main()
"""


@pytest.fixture
def prepared(config, site, cli):
    backup = cli("backup").output.strip()
    project = site.project_ids[0]
    project_backup = cli("backup", "--project", project).output.strip()
    (config.working_dir / "site.json").write_text("changed")
    return {"site": backup, "project_id": project, "project": project_backup}


def commands(p: dict) -> dict[str, list[str]]:
    return {
        "backup": ["backup"],
        "backup --project": ["backup", "--project", p["project_id"]],
        "restore": ["restore", p["site"], "--yes"],
        "restore --project": ["restore", p["project"], "--project", p["project_id"], "--yes"],
        "delete": ["delete", p["project"], "--project", p["project_id"], "--yes"],
        "prune": ["prune", "--keep-last", "1", "--yes"],
        "list": ["list"], "show": ["show", p["site"]], "verify": ["verify", p["site"]], "recover": ["recover"],
    }


def run_with_fault(config, args, fault: str, at: int | str, log_file) -> subprocess.CompletedProcess:
    env = {"FAULT": fault, "FAULT_AT": str(at), "STRONGROOM_LOG_FILE": str(log_file)}
    import os

    return subprocess.run([sys.executable, "-c", RUNNER, "--data-dir", str(config.data_dir), *args],
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, **env}, check=False)


FAULTS = ("database", "eio", "enospc", "bug")
POINTS = (0, 1, 4)  # 0: a read; else the n-th change


def test_every_command_fails_in_one_line_whatever_the_fault(config, prepared, tmp_path, request):
    """Each command meets each kind of point; with ``--slow``, every fault at every one."""
    exhaustive = request.config.getoption("--slow")
    failures, logged = 0, 0
    for i, (name, args) in enumerate(commands(prepared).items()):
        for j, at in enumerate(POINTS):
            for fault in FAULTS if exhaustive else [FAULTS[(i + j) % len(FAULTS)]]:
                log_file = tmp_path / f"{name}-{at}-{fault}.log"
                result = run_with_fault(config, args, fault, at, log_file)
                assert "Traceback" not in result.stderr, (name, at, result.stderr)
                assert result.returncode in EXIT_CODES, (name, at, result.returncode)
                if result.returncode == 0:
                    continue
                failures += 1
                lines = result.stderr.strip().splitlines()
                assert len(lines) == 1 and lines[0].startswith("strongroom: error: "), (name, at, result.stderr)
                if result.returncode == 1 and fault == "bug":
                    assert "Traceback" in log_file.read_text(), (name, at)
                    logged += 1
    assert failures >= len(commands(prepared)) and logged > 0, (failures, logged)


def test_a_database_error_says_so_in_one_line(config, prepared, tmp_path):
    result = run_with_fault(config, ["backup", "--project", prepared["project_id"]], "database", 1,
                            tmp_path / "log")
    assert result.returncode == 1
    assert result.stderr == "strongroom: error: database error: disk I/O error\n"


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGHUP", "SIGINT"])
def test_a_signal_during_a_restore_rolls_it_back_and_says_so_in_one_line(config, prepared, tmp_path, stop):
    from conftest import records_fingerprint, tree_fingerprint
    from faults import fresh_service
    from strongroom.db.engines import open_database

    at = "insert after rename .staging-"  # the records' load, once the pre-restore backup is published
    database = open_database(config)  # a record changed too: records that already are the backup's are not loaded
    database.project.update_one({"_id": database.project.find_one({})["_id"]}, {"$set": {"title": "changed"}})
    before = tree_fingerprint(config.working_dir), records_fingerprint(database)
    result = run_with_fault(config, ["restore", prepared["site"], "--yes"], stop, at, tmp_path / "log")
    assert result.returncode == 128 + getattr(signal, stop), result.stderr  # stopped, as docs/cli.md says ("Exit status")
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "put back as it was" in lines[0], result.stderr
    if stop != "SIGINT":
        assert f"terminated by {stop}" in lines[0]
    assert (tree_fingerprint(config.working_dir), records_fingerprint(open_database(config))) == before
    assert fresh_service(config).maintenance() is None


def test_reading_commands_go_on_when_recovery_fails_saying_so_in_one_line(config, prepared, cli_process):
    journal = config.backups_dir / ".journal.json"
    journal.write_text('{"operation": "restore", "scope": "nowhere", "step": "records", "pre_restore": "x"}')
    for args in (["list"], ["show", prepared["site"]], ["verify", prepared["site"]]):
        result = cli_process(*args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr.startswith("strongroom: warning: an interrupted restore is not recovered yet")
        assert len(result.stderr.strip().splitlines()) == 1
    changing = cli_process("backup")
    assert changing.returncode == 5 and len(changing.stderr.strip().splitlines()) == 1, changing.stderr
    assert journal.exists()  # nothing guessed: the operator decides


def test_a_reader_that_goes_away_ends_the_command_quietly_as_sigpipe_does(config, prepared):
    """``strongroom list | head -1``: no error line, and SIGPIPE's status (141), as other tools."""
    import os

    for args in (["list"], ["show", prepared["site"]], ["restore", prepared["site"], "--dry-run"]):
        reader, writer = os.pipe()
        os.close(reader)  # the reader is gone before the first line is written
        try:
            result = subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                                    stdout=writer, stderr=subprocess.PIPE, text=True, timeout=120,
                                    stdin=subprocess.DEVNULL, check=False)
        finally:
            os.close(writer)
        assert (result.returncode, result.stderr) == (141, ""), (args, result.stderr)


@pytest.mark.parametrize("at", [
    "rename after rename .restore-",  # the journal's "cleanup" being committed, the new tree in place
    "rmtree after rename .restore-",  # the old tree's sweep
    "unlink after rename .live-index.json.tmp",  # the journal's removal, the last change
])
@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_signal_past_the_point_of_no_return_lets_the_restore_finish_and_says_done(config, prepared, tmp_path,
                                                                                      cli, at, stop):
    """Past the swap a restore can only complete: a Ctrl-C (or SIGTERM) then is held until
    it has, and the exit status, the message, the audit log all say the same: done."""
    import json

    from faults import fresh_service

    site_json = config.working_dir / "site.json"
    assert site_json.read_text() == "changed"
    result = run_with_fault(config, ["restore", prepared["site"], "--yes"], stop, at, tmp_path / "log")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Restored the whole site from"), result.stdout
    assert result.stderr == (f"strongroom: {stop} came after the point of no return: the operation was completed, "
                             "not stopped\n")
    assert site_json.read_text() != "changed"  # the backup's state, really
    assert fresh_service(config).maintenance() is None  # no journal left pending
    last = json.loads(cli("log", "--json").output)[-1]
    assert (last["operation"], last["outcome"]) == ("restore", "ok"), last
