"""A partial restore that meets a fault or a crash ends as before or as asked, never a mix.

Same harness as ``test_safety`` and ``test_restore_faults`` (``faults``): the prepared
data dir has a site backup, then changes to ``site.json``, one project's files and
records and a user. The partial restores put back ``site.json`` and that project's
folder (files only), or that project whole out of the site backup. At sampled mutation
points an error is raised (the restore must undo itself before it returns) or the
process is killed (the next command's recovery must finish or undo it). Both engines.
"""

import errno
import os
import signal
import sqlite3

import pytest

from faults import (
    Prepared,
    State,
    check_after_crash,
    count_points,
    crash_at,
    fail_at_point,
    fresh_service,
    leftovers,
    sample,
)
from strongroom.errors import NoSpace, RestoreFailed
from strongroom.scopes import Scope

SAMPLED = 6
ERRORS = [OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EIO, "Input/output error"),
          sqlite3.OperationalError("database or disk is full")]

RESTORES = {
    "paths": (lambda p: Scope.site(),
              lambda p, c: fresh_service(c).restore_parts(p.site_backup, ["site.json", f"project/{p.project}"])),
    "project of a site backup": (lambda p: Scope.project(p.project),
                                 lambda p, c: fresh_service(c).restore_parts(p.site_backup, project_id=p.project)),
}


@pytest.fixture
def prepared(tmp_path, engine_config, request):
    databases = None if engine_config.embedded else request.getfixturevalue("server_databases")
    return Prepared(tmp_path, engine_config, databases)


def completed(prepared: Prepared, name: str) -> tuple[State, int]:
    """The state a successful run ends in, and how many mutation points it passes."""
    _, run = RESTORES[name]
    config = prepared.copy()
    points = count_points(lambda: run(prepared, config))
    return State(config, prepared.project_ids), len(points)


def test_the_paths_restore_changes_the_parts_and_nothing_else(prepared):
    done, _ = completed(prepared, "paths")
    site_files = done.site_files
    assert site_files["site.json"] == prepared.at_backup.site_files["site.json"]
    assert done.projects[prepared.project][0] == prepared.at_backup.projects[prepared.project][0]
    assert done.site_records == prepared.changed.site_records  # records: untouched
    assert {k: v for k, v in site_files.items() if k != "site.json" and not k.startswith(f"project/{prepared.project}")} \
        == {k: v for k, v in prepared.changed.site_files.items()
            if k != "site.json" and not k.startswith(f"project/{prepared.project}")}


@pytest.mark.parametrize("name", list(RESTORES))
def test_an_error_at_any_point_of_a_partial_restore_ends_as_before_or_as_asked(prepared, name):
    scope_of, run = RESTORES[name]
    scope = scope_of(prepared)
    done, count = completed(prepared, name)
    for i, k in enumerate(sample(count, SAMPLED)):
        config = prepared.copy()
        before = State(config, prepared.project_ids)
        raised = fail_at_point(k, lambda c=config: run(prepared, c), ERRORS[i % len(ERRORS)])
        after = State(config, prepared.project_ids)
        if raised is None:  # struck after the switch: the restore is complete
            assert after.scope(scope) == done.scope(scope), k
        else:
            assert isinstance(raised, RestoreFailed | NoSpace), (k, raised)
            assert after.scope(scope) == before.scope(scope), (k, raised)
        fresh_service(config).recover()
        assert leftovers(config, scope) == [], k
        assert State(config, prepared.project_ids).scope(scope) == after.scope(scope), k


@pytest.mark.parametrize("name", list(RESTORES))
def test_a_crash_at_any_point_of_a_partial_restore_is_finished_or_undone_by_recovery(prepared, name):
    scope_of, run = RESTORES[name]
    scope = scope_of(prepared)
    done, count = completed(prepared, name)
    for k in sample(count, SAMPLED):
        config = prepared.copy()
        before = State(config, prepared.project_ids)
        status = crash_at(k, lambda c=config: run(prepared, c))
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, k
        check_after_crash(config, scope, prepared.project_ids, before, [before, done])
