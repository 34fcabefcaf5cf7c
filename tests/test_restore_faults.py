"""A restore that meets a fault ends as before or as the backup, and says which.

Build and check first, then switch: everything a restore reads is checked before the
first live change, so a damaged object is refused with nothing changed. Any error at
any mutation point of a restore (a full disk, an I/O error, a database error) ends, before
the call returns, exactly in the state before the restore (the error says so) or, if it
struck after the new state was in place, exactly in the backup's state (the restore
succeeded). The rollback goes on even when its journal cannot be written.
"""

import errno
import os
import sqlite3

import pytest

from faults import Prepared, State, count_points, fail_at_point, fresh_service, leftovers, sample
from strongroom.errors import CorruptBackup, NoSpace, RestoreFailed
from strongroom.scopes import Scope

SAMPLED = 8
ERRORS = {
    "ENOSPC": OSError(errno.ENOSPC, "No space left on device"),
    "EIO": OSError(errno.EIO, "Input/output error"),
    "EDQUOT": OSError(errno.EDQUOT, "Disk quota exceeded"),
    "database": sqlite3.OperationalError("database or disk is full"),
}
CHANGES = {"insert", "delete", "drop", "create-collection", "rename-collection"}


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return Prepared(tmp_path_factory.mktemp("restore-faults"))


def restore_of(prepared: Prepared, scope_kind: str):
    project = None if scope_kind == "site" else prepared.project
    backup = prepared.site_backup if project is None else prepared.project_backup
    return Scope.of(project), (lambda config: fresh_service(config).restore_backup(backup, project))


def test_a_damaged_object_is_refused_before_anything_live_changes(prepared):
    config = prepared.copy()
    service = fresh_service(config)
    # site.json changed since the backup, so the restore copies it from its object: flip
    # one bit of that object and set its mode back, so that only its content tells.
    stored = config.backups_dir / "site" / prepared.site_backup / "files" / "site.json"
    stored.chmod(0o644)
    data = bytearray(stored.read_bytes())
    data[0] ^= 1
    stored.write_bytes(bytes(data))
    stored.chmod(0o444)
    before = State(config, prepared.project_ids)
    points = []
    raised = fail_at_point(0, lambda: service.restore_backup(prepared.site_backup), OSError(),
                           later=lambda kind, detail: points.append(kind))
    assert isinstance(raised, CorruptBackup), raised
    assert "before anything live changed" in str(raised) and "site.json" in str(raised)
    assert not CHANGES & set(points), "records were changed before the damage was found"
    assert State(config, prepared.project_ids).scope(Scope.site()) == before.scope(Scope.site())
    assert leftovers(config, Scope.site()) == []


def fault_points(prepared: Prepared, scope_kind: str) -> list[tuple[str, str]]:
    """Every mutation point of a restore, from its journal's first write to its last step."""
    _, run = restore_of(prepared, scope_kind)
    return count_points(lambda: run(prepared.copy()))


@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_a_fault_at_any_point_of_a_restore_ends_as_before_or_as_the_backup(prepared, request, scope_kind):
    """A sample of points, each with one kind of error in turn; ``--slow``: every error at every point."""
    scope, run = restore_of(prepared, scope_kind)
    points = fault_points(prepared, scope_kind)
    kinds = list(ERRORS)
    if request.config.getoption("--slow"):
        chosen = [(k, error) for k in range(1, len(points) + 1) for error in kinds]
    else:
        chosen = [(k, kinds[i % len(kinds)]) for i, k in enumerate(sample(len(points), SAMPLED))]
    for k, error in chosen:
        config = prepared.copy()
        before = State(config, prepared.project_ids)
        raised = fail_at_point(k, lambda c=config: run(c), ERRORS[error])
        after = State(config, prepared.project_ids)
        if raised is None:  # struck after the switch: the restore is complete
            assert after.scope(scope) == prepared.at_backup.scope(scope), k
        else:
            assert isinstance(raised, (RestoreFailed, NoSpace)), (k, raised)
            assert "as it was" in str(raised) or "nothing was changed" in str(raised), raised
            assert after.scope(scope) == before.scope(scope), (k, raised)
        if points[k - 1][0] == "unlink" and points[k - 1][1].endswith(".journal.json"):
            assert fresh_service(config).maintenance() is not None  # it could not be removed...
        else:
            assert fresh_service(config).maintenance() is None, k  # no journal: nothing to recover
        fresh_service(config).recover()  # ...and the next command, recovering first, ends it
        assert leftovers(config, scope) == [], k
        assert State(config, prepared.project_ids).scope(scope) == after.scope(scope), k


@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_a_rollback_goes_on_when_its_journal_cannot_be_written(prepared, scope_kind):
    scope, run = restore_of(prepared, scope_kind)
    config = prepared.copy()
    probe = count_points(lambda: run(prepared.copy()))
    first_insert = next(i for i, (kind, detail) in enumerate(probe, 1)
                        if kind == "insert" and i > len(probe) // 2)
    before = State(config, prepared.project_ids)
    full = OSError(errno.ENOSPC, "No space left on device")
    raised = fail_at_point(first_insert, lambda: run(config), full,
                           later=lambda kind, detail: full if ".journal" in detail else None)
    assert isinstance(raised, RestoreFailed) and "put back as it was" in str(raised), raised
    assert State(config, prepared.project_ids).scope(scope) == before.scope(scope)
    assert not os.path.lexists(config.backups_dir / ".reserve")
