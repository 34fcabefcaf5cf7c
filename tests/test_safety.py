"""Nothing is ever lost: crash and fail every operation at every mutation point.

Each test prepares a data dir once (the small demo site, a site backup and a project
backup taken, then files and records changed), counts the mutation points of one
operation, and for each point (a sample by default, all with ``--slow``) copies the data
dir, runs the operation killed or failing at that point, recovers, and checks the
invariants in ``faults.check_after_crash``. Every test runs on both engines: on the
server, a copy of the data dir comes with a copy of its database.
"""

import errno
import os
import signal
import subprocess

import pytest

from faults import (
    InjectedFault,
    Prepared,
    State,
    check_after_crash,
    count_points,
    crash_at,
    fail_at,
    fresh_service,
    sample,
)
from strongroom.errors import NoSpace, RestoreFailed
from strongroom.fs import mutations
from strongroom.scopes import Scope

SAMPLED = 8


@pytest.fixture
def prepared(tmp_path, engine_config, request):
    databases = None if engine_config.embedded else request.getfixturevalue("server_databases")
    return Prepared(tmp_path, engine_config, databases)


OPERATIONS = {
    "site backup": (lambda p: Scope.site(), lambda p, c: fresh_service(c).make_backup(), "changed"),
    "project backup": (lambda p: Scope.project(p.project), lambda p, c: fresh_service(c).make_backup(p.project),
                       "changed"),
    "site restore": (lambda p: Scope.site(), lambda p, c: fresh_service(c).restore_backup(p.site_backup),
                     "restored"),
    "project restore": (lambda p: Scope.project(p.project),
                        lambda p, c: fresh_service(c).restore_backup(p.project_backup, p.project), "restored"),
    "delete": (lambda p: Scope.site(), lambda p, c: fresh_service(c).delete_backup(p.site_backup), "changed"),
}


def crash_every_point(prepared: Prepared, name: str, exhaustive: bool) -> int:
    scope_of, run, outcome = OPERATIONS[name]
    scope = scope_of(prepared)
    probe = prepared.copy()
    points = count_points(lambda: run(prepared, probe))
    allowed = [prepared.changed] + ([prepared.at_backup] if outcome == "restored" else [])
    deleted = ("site", prepared.site_backup) if name == "delete" else None
    chosen = range(1, len(points) + 1) if exhaustive else sample(len(points), SAMPLED)
    for k in chosen:
        config = prepared.copy()
        before = State(config, prepared.project_ids)
        status = crash_at(k, lambda config=config: run(prepared, config))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (name, k, points[k - 1])
        check_after_crash(config, scope, prepared.project_ids, before, allowed, deleted)
    return len(points)


@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_crash_at_sampled_mutation_points_loses_nothing(prepared, name):
    assert crash_every_point(prepared, name, exhaustive=False) > SAMPLED


@pytest.mark.slow
@pytest.mark.parametrize("name", list(OPERATIONS))
def test_a_crash_at_every_mutation_point_loses_nothing(prepared, name):
    points = crash_every_point(prepared, name, exhaustive=True)
    print(f"{name}: {points} crash points exercised")


@pytest.mark.parametrize("kind,error", [
    ("insert", InjectedFault("injected database error")),
    ("write", OSError(errno.ENOSPC, "No space left on device")),
    ("rename", InjectedFault("injected rename failure")),
])
@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_a_failing_restore_is_rolled_back_automatically(prepared, kind, error, scope_kind):
    for k in (1, 2, 5):
        config = prepared.copy()
        service = fresh_service(config)
        project = None if scope_kind == "site" else prepared.project
        backup = prepared.site_backup if project is None else prepared.project_backup
        before = State(config, prepared.project_ids)
        # Fail inside the restore proper: after the pre-restore backup is published.
        points = count_points(lambda b=backup, p=project: fresh_service(prepared.copy()).restore_backup(b, p))
        published = next(i for i, (kind_, detail) in enumerate(points) if kind_ == "rename" and ".staging-" in detail)
        offset = sum(1 for kind_, _ in points[: published + 1] if kind_ == kind)
        raised = fail_at(offset + k, kind, lambda b=backup, p=project, s=service: s.restore_backup(b, p), error)
        if raised is None:
            continue  # fewer points of that kind than k: the restore simply succeeded
        assert isinstance(raised, RestoreFailed), raised
        assert "as it was" in str(raised)
        after = State(config, prepared.project_ids)
        scope = Scope.of(project)
        assert after.scope(scope) == before.scope(scope)
        assert service.maintenance() is None
        newest = next(b["reason"] for b in service.list_backups(project))
        if "before anything live changed" in str(raised) and "also saved as backup" not in str(raised):
            assert newest != "pre-restore"  # a copy of the unchanged state: deleted again
        else:
            assert newest == "pre-restore"


def test_enospc_during_a_backup_leaves_no_partial_backup(prepared):
    config = prepared.copy()
    service = fresh_service(config)
    before_ids = [b["id"] for b in service.list_backups()]
    raised = fail_at(3, "write", lambda: service.make_backup(), OSError(errno.ENOSPC, "No space left on device"))
    assert isinstance(raised, NoSpace) and "no backup was made" in str(raised)
    assert isinstance(raised.__cause__, OSError) and raised.__cause__.errno == errno.ENOSPC
    assert [b["id"] for b in service.list_backups()] == before_ids
    root = config.backups_dir / "site"
    assert not [p for p in root.iterdir() if p.name.startswith(".")]
    temporary = config.pool_dir / ".tmp"  # small files never pass through it
    assert not temporary.exists() or not list(temporary.iterdir())


def cli_args(config, *args: str) -> list[str]:
    return ["--data-dir", str(config.data_dir), "--mode", config.mode,
            *(["--db", config.db_uri] if config.db_uri else []), *args]


NOT_REACHED = 97  # the child's exit status when the point named never came


def restore_after_another(prepared, config, at: list[tuple[str, str]]) -> int:
    """In one process, as a test or a host that runs the CLI in-process does: the CLI
    restores the project's backup (past its point of no return), then the site's, which
    gets SIGTERM at the point ``at`` names: the first point of the last (kind, detail
    holding) pair once the points the pairs before it name have passed, in order (named,
    not numbered: how many points come first depends on the run, a file the pre-restore
    backup copies rather than links). Run in a forked child; return the second
    command's exit status (``NOT_REACHED`` if the point never came)."""
    from click.testing import CliRunner

    from strongroom.cli import main

    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 99
        try:
            runner = CliRunner()
            first = runner.invoke(main, cli_args(config, "restore", prepared.project_backup, "--project",
                                                 prepared.project, "--yes"))
            assert first.exit_code == 0, first.output
            waiting = list(at)

            def hook(kind, detail):
                if waiting and kind == waiting[0][0] and waiting[0][1] in str(detail):
                    del waiting[0]
                    if not waiting:
                        os.kill(os.getpid(), signal.SIGTERM)

            mutations.set_hook(hook)
            code = runner.invoke(main, cli_args(config, "restore", prepared.site_backup, "--yes")).exit_code
            code = NOT_REACHED if waiting else code
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status), status  # unwound or finished, never killed
    return os.WEXITSTATUS(status)


JOURNAL_WRITTEN = ("rename", ".journal.json")  # the restore's journal: the first one it writes
SWAPPED = ("rename", ".restore-")  # the new tree moved in (the old one moved aside before)


def test_sigterm_before_the_point_of_no_return_rolls_back_and_exits(prepared):
    """SIGTERM while a restore replaces the records (its journal written) or at the swap
    itself: the restore unwinds, puts back what it had replaced, and the command exits
    143; nothing is left for a recovery. So too when the process ran a restore before
    (one that passed its own point of no return: that one's held signals are not this
    one's)."""
    probe = prepared.copy()
    fresh_service(probe).restore_backup(prepared.project_backup, prepared.project)
    before = State(probe, prepared.project_ids)  # as the first command leaves the site
    first_drop = [JOURNAL_WRITTEN, ("drop", "")]
    for at in (first_drop, [*first_drop, ("rename", ".old-")]):  # the live tree about to be moved aside
        config = prepared.copy()
        assert restore_after_another(prepared, config, at) == 128 + signal.SIGTERM, at
        assert fresh_service(config).maintenance() is None  # rolled back in-process, no recovery needed
        assert State(config, prepared.project_ids).scope(Scope.site()) == before.scope(Scope.site()), at


def test_sigterm_past_the_point_of_no_return_lets_the_restore_finish(prepared):
    """Past the swap (the new tree in place) a restore can only be completed: SIGTERM then
    is held, the restore finishes and the command exits 0, with the backup's state in
    place and no journal pending (what the CLI says then: test_cli_faults)."""
    for at in ([SWAPPED, ("create", ".journal.json.tmp")],  # the journal's "cleanup"
               [SWAPPED, ("rmtree", ".sweep-")],  # the old tree's sweep
               [SWAPPED, ("unlink", ".reserve")]):  # the last change
        config = prepared.copy()
        assert restore_after_another(prepared, config, at) == 0, at  # finished, not stopped
        assert fresh_service(config).maintenance() is None
        assert State(config, prepared.project_ids).scope(Scope.site()) == prepared.at_backup.scope(Scope.site())


def test_a_crashed_restore_is_recovered_by_the_next_command(prepared, tmp_path):
    import sys

    config = prepared.copy()
    points = count_points(lambda: fresh_service(prepared.copy()).restore_backup(prepared.site_backup))
    before = State(config, prepared.project_ids)
    crash_at(len(points) // 2, lambda: fresh_service(config).restore_backup(prepared.site_backup))
    assert fresh_service(config).maintenance() is not None  # the journal says a restore was cut short
    database = ["--db", config.db_uri] if config.db_uri else []
    result = subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *database, "list"],
                            check=False, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    assert "recovered an interrupted restore" in result.stderr
    assert fresh_service(config).maintenance() is None
    assert State(config, prepared.project_ids).scope(Scope.site()) == before.scope(Scope.site())
