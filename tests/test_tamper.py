"""A backup says what it is, and nobody changes that unnoticed (issue 9's reproductions).

Each attack edits a real backup on disk as someone with write access to ``backups/`` but
without the site key would; ``verify`` must fail and a restore must refuse before the
first live change (no pre-restore backup, records and files as they were).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest

from conftest import records_fingerprint, tree_fingerprint
from strongroom.config import Config
from strongroom.errors import CorruptBackup
from strongroom.scopes import Scope, backups_root, scope_dir
from strongroom.service import Strongroom
from tampering import read_manifest, resign, write_manifest


def _folder(config, made, scope=None):
    return backups_root(config, scope or Scope.site()) / made["id"]


def _refused_before_any_change(service, config, database, backup_id, project_id=None):
    """Restore must raise CorruptBackup and leave everything as it was."""
    scope = Scope.of(project_id)
    tree, records = tree_fingerprint(config.working_dir), records_fingerprint(database)
    ids = [b["id"] for b in service.list_backups(project_id)]
    with pytest.raises(CorruptBackup):
        service.restore_backup(backup_id, project_id)
    assert tree_fingerprint(config.working_dir) == tree
    assert stat.S_IMODE(scope_dir(config, scope).stat().st_mode) & 0o700 == 0o700
    assert records_fingerprint(database) == records
    assert [b["id"] for b in service.list_backups(project_id)] == ids  # no pre-restore backup


def test_removing_a_collection_from_the_manifest_fails_verify_and_restore(service, config, database, site, cli):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = read_manifest(folder)
    del manifest["collections"]["edition"]
    write_manifest(folder, manifest)

    report = service.verify_backup(made["id"])
    assert not report["ok"] and any("signature" in p for p in report["problems"])
    assert cli("verify", made["id"]).exit_code == 5
    assert cli("restore", made["id"], "--yes").exit_code == 5
    _refused_before_any_change(service, config, database, made["id"])


def test_a_root_mode_of_zero_fails_verify_and_restore(service, config, database, site):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = read_manifest(folder)
    manifest["files"]["root"]["mode"] = 0
    write_manifest(folder, manifest)

    assert not service.verify_backup(made["id"])["ok"]
    _refused_before_any_change(service, config, database, made["id"])


def test_a_setuid_mode_in_the_file_list_with_its_hash_updated_fails(service, config, database, site):
    made = service.make_backup()
    folder = _folder(config, made)
    lines = [json.loads(line) for line in (folder / "files.jsonl").read_text().splitlines()]
    victim = next(e for e in lines if e["type"] == "file")
    victim["mode"] = 0o4755
    data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in lines).encode()
    (folder / "files.jsonl").write_bytes(data)
    manifest = read_manifest(folder)
    manifest["files"]["list_sha256"] = hashlib.sha256(data).hexdigest()
    write_manifest(folder, manifest)

    report = service.verify_backup(made["id"])
    assert not report["ok"] and any("signature" in p for p in report["problems"])
    _refused_before_any_change(service, config, database, made["id"])


@pytest.mark.parametrize("name", ["json/edition.json", "bson/edition.metadata.json"])
def test_an_edit_of_the_json_or_metadata_of_a_dump_fails_verify_and_restore(service, config, database, site, name):
    made = service.make_backup()
    path = _folder(config, made) / "db" / name
    path.write_bytes(path.read_bytes().replace(b"1", b"2", 1) + b"\n")

    report = service.verify_backup(made["id"])
    assert not report["ok"] and any(name.split("/")[-1] in p for p in report["problems"])
    _refused_before_any_change(service, config, database, made["id"])


def test_a_project_backup_copied_under_another_project_is_refused(service, config, database, site):
    project_a, project_b = site.project_ids[:2]
    made = service.make_backup(project_a)
    source = _folder(config, made, Scope.project(project_a))
    copy = backups_root(config, Scope.project(project_b)) / made["id"]
    copy.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source, copy, copy_function=os.link)

    plain = service.verify_backup(made["id"], project_b)
    assert not plain["ok"] and any("another scope" in p for p in plain["problems"])
    manifest = read_manifest(copy)
    manifest["project"] = project_b
    write_manifest(copy, manifest)
    edited = service.verify_backup(made["id"], project_b)
    assert not edited["ok"] and any("signature" in p for p in edited["problems"])
    _refused_before_any_change(service, config, database, made["id"], project_b)


def test_a_backup_copied_into_another_run_mode_is_refused(service, config, database, site, tmp_path):
    made = service.make_backup()
    other = Config(data_dir=config.data_dir, mode="test")
    copy = backups_root(other, Scope.site()) / made["id"]
    copy.parent.mkdir(parents=True)
    shutil.copytree(_folder(config, made), copy, copy_function=os.link)
    report = Strongroom(other, database=database).verify_backup(made["id"])
    assert not report["ok"] and any("run mode 'pilot'" in p for p in report["problems"])


def test_a_signed_manifest_downgraded_to_the_unsigned_format_cannot_be_restored(service, config, database, site):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = read_manifest(folder)
    del manifest["signature"]
    manifest["format_version"] = 1
    manifest["files"]["root"]["mode"] = 0o4777
    write_manifest(folder, manifest)
    report = service.verify_backup(made["id"])
    assert report["signed"] is False and any("before backups were signed" in n for n in report["notes"])
    _refused_before_any_change(service, config, database, made["id"])


def test_a_backup_signed_under_another_key_is_told_apart_from_an_edited_one(service, config, site):
    made = service.make_backup()
    config.site_key_path.chmod(0o600)
    config.site_key_path.write_bytes(os.urandom(32))
    report = Strongroom(config, database=service.database).verify_backup(made["id"])
    assert not report["ok"] and any("another site key" in p for p in report["problems"])


def test_the_site_key_is_made_once_private_and_never_overwritten(service, config, site):
    assert not config.site_key_path.exists()
    service.make_backup()
    key = config.site_key_path.read_bytes()
    assert len(key) == 32 and stat.S_IMODE(config.site_key_path.stat().st_mode) == 0o600
    Strongroom(config, database=service.database).make_backup()
    assert config.site_key_path.read_bytes() == key
    assert list(config.site_key_path.parent.glob(".site-key.*")) == []


def test_a_configured_site_key_signs_and_a_missing_one_is_refused(config, database, site, tmp_path, cli_process):
    key_file = tmp_path / "site.key"
    key_file.write_bytes(os.urandom(32))
    made = cli_process("backup", env={"STRONGROOM_SITE_KEY_FILE": str(key_file)})
    assert made.returncode == 0, made.stderr
    backup_id = made.stdout.strip()
    assert not config.site_key_path.exists()
    assert cli_process("verify", backup_id, env={"STRONGROOM_SITE_KEY_FILE": str(key_file)}).returncode == 0
    unkeyed = cli_process("verify", backup_id)
    assert unkeyed.returncode == 2 and "NOT CHECKED" in unkeyed.stdout and "no site key" in unkeyed.stdout
    missing = cli_process("verify", backup_id, env={"STRONGROOM_SITE_KEY_FILE": str(tmp_path / "nope")})
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_restore_never_sets_setuid_or_setgid_on_the_folder_whatever_a_signed_manifest_says(service, config, site):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = read_manifest(folder)
    manifest["files"]["root"]["mode"] = 0o6000
    resign(config, folder, manifest)
    service.restore_backup(made["id"])
    assert stat.S_IMODE(config.working_dir.stat().st_mode) == 0o700


def test_verify_names_files_in_a_backup_folder_that_the_manifest_does_not_list(service, config, site):
    made = service.make_backup()
    folder = _folder(config, made)
    (folder / "files" / "planted.txt").write_text("not from the site")
    (folder / "files" / "project" / "planted-dir").mkdir()
    (folder / "db" / "json" / "user2.json").write_text("{}")
    (folder / "README").write_text("hi")

    problems = service.verify_backup(made["id"])["problems"]
    for name in ("files/planted.txt", "files/project/planted-dir", "db/json/user2.json", "README"):
        assert any(p.startswith(f"{name} is in the backup folder") for p in problems), (name, problems)
    assert len(problems) == 4


def _as_version_1(folder):
    """Make a backup look as one made before signing existed: format 1, no signature,
    no checksums of the JSON and metadata files."""
    manifest = read_manifest(folder)
    del manifest["signature"]
    manifest["format_version"] = 1
    for info in manifest["collections"].values():
        del info["json_sha256"], info["metadata_sha256"]
    write_manifest(folder, manifest)


def test_an_unsigned_backup_is_listed_and_verified_and_restored_only_once_signed(service, config, database, site, cli):
    made = service.make_backup()
    _as_version_1(_folder(config, made))

    assert [b["id"] for b in service.list_backups()] == [made["id"]]
    report = service.verify_backup(made["id"])
    assert report["ok"] and report["signed"] is False
    _refused_before_any_change(service, config, database, made["id"])
    refused = cli("restore", made["id"], "--yes")
    assert refused.exit_code == 5 and "--sign-unsigned" in refused.output

    signed = cli("verify", made["id"], "--sign-unsigned")
    assert signed.exit_code == 0 and "signed now" in signed.output
    manifest = read_manifest(_folder(config, made))
    assert manifest["format_version"] == 2 and "signature" in manifest
    assert service.verify_backup(made["id"])["signed"] is True
    (config.working_dir / "stray.txt").write_text("x")
    service.restore_backup(made["id"])
    assert not (config.working_dir / "stray.txt").exists()


def test_an_unsigned_backup_with_damaged_content_is_not_signed(service, config, site):
    made = service.make_backup()
    folder = _folder(config, made)
    _as_version_1(folder)
    dump = folder / "db" / "bson" / "edition.bson"
    dump.write_bytes(dump.read_bytes()[:-3])
    report = service.verify_backup(made["id"], sign_unsigned=True)
    assert not report["ok"] and report["signed"] is False
    assert read_manifest(folder)["format_version"] == 1


def test_a_tampered_backup_can_still_be_deleted(service, config, site):
    made = service.make_backup()
    folder = _folder(config, made)
    manifest = read_manifest(folder)
    manifest["note"] = "edited"
    write_manifest(folder, manifest)
    service.delete_backup(made["id"])
    assert not folder.exists()


def test_processes_making_the_site_key_at_once_end_with_one_key(config, tmp_path):
    script = ("import sys; from strongroom.config import Config; from strongroom.repo.signing import SiteKey\n"
              "sys.stdout.write(SiteKey(Config(sys.argv[1])).get(create=True).hex())")
    makers = [subprocess.Popen([sys.executable, "-c", script, str(config.data_dir)], stdout=subprocess.PIPE, text=True)
              for _ in range(6)]
    keys = {maker.communicate(timeout=60)[0] for maker in makers}
    assert keys == {config.site_key_path.read_bytes().hex()}
    assert sorted(p.name for p in config.backups_base.iterdir()) == [".site-key"]


def test_a_live_index_edited_without_the_key_is_ignored_by_the_next_backup(service, config, site):
    made = service.make_backup()
    shutil.rmtree(config.working_dir)
    service.restore_backup(made["id"])
    root = backups_root(config, Scope.site())
    entries = [json.loads(line) for line in (root / ".live-index.jsonl").read_text().splitlines()]
    files = [e for e in entries if e["type"] == "file"]
    files[0]["hash"], files[1]["hash"] = files[1]["hash"], files[0]["hash"]  # swap two files' content
    data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in entries).encode()
    (root / ".live-index.jsonl").write_bytes(data)
    header = json.loads((root / ".live-index.json").read_text())
    header["sha256"] = hashlib.sha256(data).hexdigest()
    (root / ".live-index.json").write_text(json.dumps(header))

    after = service.make_backup()
    manifest = service.show_backup(after["id"])["manifest"]["files"]
    assert manifest["linked_unread"] < manifest["count"]  # the index was not trusted
    assert service.verify_backup(after["id"])["ok"]
    for entry in files[:2]:
        stored = backups_root(config, Scope.site()) / after["id"] / "files" / entry["path"]
        assert stored.read_bytes() == (config.working_dir / entry["path"]).read_bytes()
