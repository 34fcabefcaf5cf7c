"""A restore reads and checks the backup's file list once, for its check and its build.

What users rely on stays: a damaged file list or a missing or altered object is refused
before anything changes (no pre-restore backup, files and records as they were), kept in
memory or not; and what the restore builds is exactly the list its check accepted, even
if the file on disk changes in between.
"""

from __future__ import annotations

import json
import os
import stat

import pytest

from conftest import records_fingerprint, tree_fingerprint
from strongroom.errors import CorruptBackup
from strongroom.repo import checkedlist
from strongroom.repo.checkedlist import CheckedList
from strongroom.repo.manifest import FILE_LIST, iter_entries
from strongroom.restore import preflight
from strongroom.scopes import Scope, backups_root, scope_dir


def _folder(config, made):
    return backups_root(config, Scope.site()) / made["id"]


def _manifest(folder):
    return json.loads((folder / "manifest.json").read_text())


@pytest.fixture(params=["kept", "streamed"])
def kept_or_not(request, monkeypatch):
    """Every restore test runs with the list kept in memory and with it too large to keep."""
    if request.param == "streamed":
        monkeypatch.setattr(checkedlist, "LIMIT", 0)
    return request.param


def _refused_before_any_change(service, config, database, backup_id, words):
    tree, records = tree_fingerprint(config.working_dir), records_fingerprint(database)
    ids = [b["id"] for b in service.list_backups()]
    with pytest.raises(CorruptBackup, match=words):
        service.restore_backup(backup_id)
    assert tree_fingerprint(config.working_dir) == tree
    assert records_fingerprint(database) == records
    assert [b["id"] for b in service.list_backups()] == ids  # no pre-restore backup


def test_a_damaged_file_list_is_refused_before_anything_changes(service, config, database, site, kept_or_not):
    made = service.make_backup()
    listing = _folder(config, made) / FILE_LIST
    data = bytearray(listing.read_bytes())
    data[data.index(b'"mtime_ns":') + 12] ^= 1  # one digit of a time: still a valid entry
    listing.chmod(0o644)
    listing.write_bytes(bytes(data))
    (scope_dir(config, Scope.site()) / "site.json").write_text("changed after the backup")
    _refused_before_any_change(service, config, database, made["id"], "does not match its manifest")


def test_a_missing_object_is_refused_before_anything_changes(service, config, database, site, kept_or_not):
    made = service.make_backup()
    victim = next(e for e in iter_entries(_folder(config, made), _manifest(_folder(config, made)))
                  if e["type"] == "file" and "/" in e["path"])
    (_folder(config, made) / "files" / victim["path"]).unlink()
    (scope_dir(config, Scope.site()) / "site.json").write_text("changed after the backup")
    _refused_before_any_change(service, config, database, made["id"], f"{victim['path']} is missing")


def test_a_stored_file_made_writable_and_altered_is_refused_before_anything_changes(service, config, database,
                                                                                    site, kept_or_not):
    made = service.make_backup()
    folder = _folder(config, made)
    victim = next(e for e in iter_entries(folder, _manifest(folder)) if e["type"] == "file" and e["size"])
    stored = folder / "files" / victim["path"]
    stored.chmod(0o644)
    stored.write_bytes(b"x" * victim["size"])  # same size: only its mode, then its content, tell
    _refused_before_any_change(service, config, database, made["id"], "does not match its hash")


def test_a_file_list_changed_after_the_check_changes_nothing_the_restore_builds(service, config, site, monkeypatch):
    made = service.make_backup()
    before = tree_fingerprint(scope_dir(config, Scope.site()))
    (scope_dir(config, Scope.site()) / "site.json").write_text("changed after the backup")
    listing = _folder(config, made) / FILE_LIST
    checked = preflight.check_restore

    def then_edit_the_list(*args):  # between the check and the build
        checked(*args)
        listing.chmod(0o644)
        data = listing.read_bytes()
        assert b'"mode":420' in data
        listing.write_bytes(data.replace(b'"mode":420', b'"mode":511'))

    monkeypatch.setattr(preflight, "check_restore", then_edit_the_list)
    service.restore_backup(made["id"])
    assert tree_fingerprint(scope_dir(config, Scope.site())) == before


def test_a_partial_restore_also_builds_the_list_as_its_check_accepted_it(service, config, site, monkeypatch):
    made = service.make_backup()
    live = scope_dir(config, Scope.site())
    before = tree_fingerprint(live)
    (live / "site.json").write_text("changed after the backup")
    listing = _folder(config, made) / FILE_LIST
    checked = preflight.check_restore

    def then_edit_the_list(*args):  # between the check and the build
        checked(*args)
        listing.chmod(0o644)
        listing.write_bytes(listing.read_bytes().replace(b'"mode":420', b'"mode":511'))

    monkeypatch.setattr(preflight, "check_restore", then_edit_the_list)
    service.restore_parts(made["id"], ["site.json"])
    assert tree_fingerprint(live) == before


def test_the_list_is_kept_only_after_a_whole_pass_without_fault(service, config, site):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = _manifest(folder)
    everything = list(iter_entries(folder, manifest))

    listing = CheckedList(folder, manifest)
    next(listing.check())  # a pass cut short proves nothing about the rest
    assert not listing.held
    assert list(listing.entries()) == everything  # read and checked from the file again

    assert list(listing.check()) == everything
    assert listing.held
    os.chmod(folder / FILE_LIST, stat.S_IRUSR | stat.S_IWUSR)
    (folder / FILE_LIST).write_bytes(b"")  # what is kept is what was checked
    assert list(listing.entries()) == everything


def test_a_list_larger_than_the_limit_is_not_kept_but_read_again(service, config, site):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = _manifest(folder)
    listing = CheckedList(folder, manifest, limit=(folder / FILE_LIST).stat().st_size - 1)
    assert list(listing.check()) == list(iter_entries(folder, manifest))
    assert not listing.held
    assert list(listing.entries()) == list(iter_entries(folder, manifest))


def test_a_list_that_fails_its_hash_is_not_kept(service, config, site):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = _manifest(folder)
    manifest["files"]["list_sha256"] = "0" * 64
    listing = CheckedList(folder, manifest)
    with pytest.raises(CorruptBackup, match="does not match its manifest"):
        list(listing.check())
    assert not listing.held
