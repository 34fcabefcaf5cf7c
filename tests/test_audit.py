"""The audit log: every operation leaves one whole line saying who, from where, what, which
scope and backup, the outcome, the duration and the bytes; it survives torn lines,
concurrent writers and rotation, and never changes an operation's outcome."""

from __future__ import annotations

import json
import multiprocessing
import os

import pytest

from conftest import give_the_restore_work
from strongroom.cli.ops import parse_since
from strongroom.repo.audit import AuditLog, os_user
from strongroom.service import Strongroom
from strongroom.web import create_app
from test_web_security import signed_in
from web_support import prepared, wait_for_jobs, web_data  # noqa: F401

FIELDS = {"at", "operation", "by", "origin", "scope", "project", "backup", "outcome", "error", "duration", "bytes"}


def entries(config) -> list[dict]:
    return list(AuditLog(config.backups_dir).entries())


def test_each_cli_operation_leaves_one_entry_saying_who_from_where_what_and_how_it_ended(cli, config, site):
    made = cli("backup").output.strip()
    project = site.project_ids[0]
    cli("backup", "--project", project)
    assert cli("verify", made).exit_code == 0
    give_the_restore_work(config.working_dir)
    restored = json.loads(cli("restore", made, "--yes", "--json").output)
    cli("prune", "--keep-last", "1", "--yes")
    found = entries(config)
    assert [e["operation"] for e in found] == ["backup", "backup", "verify", "restore", "prune"]
    assert all(set(e) >= FIELDS and e["origin"] == "cli" and e["by"] == os_user() and e["outcome"] == "ok"
               and e["error"] is None and e["duration"] >= 0 for e in found)
    backup, project_backup, verify, restore, prune = found
    assert (backup["scope"], backup["project"], backup["backup"]) == ("site", None, made)
    assert backup["bytes"] > 0  # the first backup stored every file's content
    assert (project_backup["scope"], project_backup["project"]) == ("project", project)
    assert verify["backup"] == made and restore["backup"] == made
    assert restore["pre_restore"] == restored["pre_restore"] and restore["bytes"] == restored["bytes_copied"]
    assert prune["deleted"] == [made]


def test_a_failed_or_refused_operation_is_logged_with_its_one_line_error(cli, config, site):
    cli("backup")
    assert cli("restore", "2020-01-01T00-00-00", "--yes").exit_code == 3
    assert cli("delete", "../x", "--yes").exit_code == 2
    _, missing, bad = entries(config)
    assert (missing["operation"], missing["outcome"], missing["backup"]) == ("restore", "failed", "2020-01-01T00-00-00")
    assert missing["error"] == "no backup 2020-01-01T00-00-00 of the whole site"
    assert bad["outcome"] == "failed" and bad["backup"] is None  # an invalid name is never kept as given
    assert "not a backup id" in bad["error"] and "\n" not in bad["error"]


def test_a_verification_that_finds_damage_is_logged_as_failed_with_the_first_problem(cli, config, site):
    made = cli("backup").output.strip()
    damaged = next(p for p in (config.backups_dir / "site" / made / "db" / "json").iterdir())
    os.chmod(damaged, 0o600)
    damaged.write_text("[]")
    assert cli("verify", made).exit_code == 5
    verify = entries(config)[-1]
    assert verify["operation"] == "verify" and verify["outcome"] == "failed" and damaged.name in verify["error"]


def test_the_web_logs_the_signed_in_user_and_origin_web(web_data):
    app = create_app(web_data.config("pilot"), secret_key="test")
    client = app.test_client()
    token = signed_in(client, "org1")
    response = client.post(f"/backups/projects/{web_data.project_a}/make", data={"csrf_token": token, "note": "x"})
    assert response.status_code == 303
    wait_for_jobs(app)
    last = entries(web_data.config("pilot"))[-1]
    assert (last["operation"], last["origin"], last["by"], last["project"], last["outcome"]) == (
        "backup", "web", "org1", web_data.project_a, "ok")


def test_a_torn_last_line_is_skipped_and_the_next_entry_is_not_glued_to_it(tmp_path):
    log = AuditLog(tmp_path)
    log.append({"at": "2026-01-01T00:00:00+00:00", "operation": "backup"})
    with open(log.path, "ab") as fh:
        fh.write(b'{"at": "2026-01-01T00:00:01+00:00", "operation": "rest')  # a crash mid-line
    assert [e["operation"] for e in log.entries()] == ["backup"]
    log.append({"at": "2026-01-01T00:00:02+00:00", "operation": "delete"})
    assert [e["operation"] for e in log.entries()] == ["backup", "delete"]


def test_the_log_rotates_by_size_keeping_n_old_files_and_every_line_whole(tmp_path):
    log = AuditLog(tmp_path, max_bytes=1000, keep=2)
    for n in range(100):
        log.append({"at": "2026-01-01T00:00:00+00:00", "operation": "backup", "n": n})
    files = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("audit.log"))
    assert files == ["audit.log", "audit.log.1", "audit.log.2"]
    assert all(p.stat().st_size <= 1000 for p in log.files())
    kept = [e["n"] for e in log.entries()]
    assert kept == list(range(100 - len(kept), 100)) and 10 < len(kept) < 100  # the newest, in order


def _append_many(folder: str, writer: int) -> None:
    log = AuditLog(folder, max_bytes=20_000, keep=50)
    for n in range(200):
        log.append({"at": "2026-01-01T00:00:00+00:00", "operation": "backup", "writer": writer, "n": n,
                    "padding": "x" * 50})


def test_concurrent_writers_never_interleave_or_lose_a_line_across_rotations(tmp_path):
    processes = [multiprocessing.get_context("fork").Process(target=_append_many, args=(str(tmp_path), w))
                 for w in range(4)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    assert all(p.exitcode == 0 for p in processes)
    lines = [line for path in AuditLog(tmp_path, keep=50).files() for line in path.read_bytes().splitlines()]
    assert len(lines) == 800 and all(json.loads(line)["operation"] == "backup" for line in lines)
    seen = {(e["writer"], e["n"]) for e in AuditLog(tmp_path, keep=50).entries()}
    assert seen == {(w, n) for w in range(4) for n in range(200)}


def test_an_audit_log_that_cannot_be_written_never_fails_the_operation(service, config, site):
    config.backups_dir.mkdir(parents=True, exist_ok=True)
    (config.backups_dir / "audit.log").mkdir()  # no file can be opened there
    made = service.make_backup(note="still made")
    assert made["id"] in [b["id"] for b in service.list_backups()]


def test_a_refused_attempt_on_a_data_dir_without_backups_creates_nothing(cli, config):
    assert cli("restore", "2020-01-01T00-00-00", "--yes").exit_code == 3
    assert not (config.data_dir / "backups").exists()


def test_the_audit_log_is_private_to_the_operator(service, config, site):
    service.make_backup()
    assert (config.backups_dir / "audit.log").stat().st_mode & 0o077 == 0


def test_export_archive_import_partial_restore_and_push_are_audited_too(cli, config, site, tmp_path):
    made = cli("backup").output.strip()
    archive = tmp_path / "site.tar"
    exported = json.loads(cli("export", made, "-o", str(archive), "--json").output)
    imported = json.loads(cli("import", str(archive), "--json").output)
    assert cli("restore", made, "--path", "site.json", "--yes").exit_code == 0
    assert cli("push", made).exit_code == 2  # no bucket configured: refused, and logged as such

    export, import_, part, push = entries(config)[1:]  # the pre-restore backup is the restore's own
    assert (export["operation"], export["backup"], export["bytes"]) == ("export", made, exported["bytes"])
    assert (import_["operation"], import_["backup"], import_["outcome"]) == ("import", imported["id"], "ok")
    assert (part["operation"], part["backup"], part["outcome"], part["paths"]) == ("restore-part", made, "ok", ["site.json"])
    assert (push["operation"], push["outcome"]) == ("push", "failed") and "STRONGROOM_S3_BUCKET" in push["error"]


def test_log_shows_entries_filtered_by_project_and_since(cli, config, site):
    project = site.project_ids[0]
    cli("backup")
    cli("backup", "--project", project)
    log = AuditLog(config.backups_dir)
    log.append({**entries(config)[0], "at": "2020-01-01T00:00:00+00:00", "operation": "delete"})
    everything = json.loads(cli("log", "--json").output)
    assert [e["operation"] for e in everything] == ["backup", "backup", "delete"]
    assert [e["project"] for e in json.loads(cli("log", "--project", project, "--json").output)] == [project]
    recent = json.loads(cli("log", "--since", "1d", "--json").output)
    assert [e["operation"] for e in recent] == ["backup", "backup"]
    assert len(json.loads(cli("log", "--since", "2019-12-31", "--json").output)) == 3
    text = cli("log").output.splitlines()
    assert len(text) == 3 and "cli:" in text[0] and "backup" in text[0]
    assert cli("log", "--since", "yesterday").exit_code == 2
    assert cli("log", "--project", "../x").exit_code == 2


def test_log_prints_user_text_escaped_on_one_line(cli, config, site):
    config.backups_dir.mkdir(parents=True)
    AuditLog(config.backups_dir).append({"at": "2026-01-01T00:00:00+00:00", "operation": "backup", "by": "x\x1b[31m",
                                         "origin": "web", "scope": "site", "outcome": "failed",
                                         "error": "bad\u202ename"})
    shown = cli("log").output
    assert "\x1b" not in shown and "\u202e" not in shown and len(shown.splitlines()) == 1


def test_since_takes_a_duration_or_a_date():
    from datetime import UTC, datetime

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert parse_since("90m", now) == datetime(2026, 11, 26, 10, 30, tzinfo=UTC)
    assert parse_since("2w", now) == datetime(2026, 11, 12, 12, 0, tzinfo=UTC)
    assert parse_since("2026-11-20", now) == datetime(2026, 11, 20, tzinfo=UTC)


def _panel(client, path: str) -> str:
    page = client.get(path).get_data(as_text=True)
    return page[page.index('id="sr-panel"'):] if 'id="sr-panel"' in page else ""


def test_the_panel_shows_the_last_entries_of_its_scope_to_those_allowed(web_data):
    config = web_data.config("pilot")
    service = Strongroom(config, origin="cli")
    service.verify_backup(web_data.backups["pilot"]["A"], web_data.project_a, by="ops-a")
    service.verify_backup(web_data.backups["pilot"]["B"], web_data.project_b, by="ops-b")
    service.verify_backup(web_data.backups["pilot"]["site"], by="ops-site")
    app = create_app(config, secret_key="test")
    client = app.test_client()
    signed_in(client, "org1")
    project_a = _panel(client, f"/projects/{web_data.project_a}")
    assert 'id="sr-audit"' in project_a and "ops-a" in project_a
    assert "ops-b" not in project_a and "ops-site" not in project_a  # another scope's entries stay hidden
    signed_in(client, "admin")
    site = _panel(client, "/admin")
    assert all(who in site for who in ("ops-a", "ops-b", "ops-site"))
    assert site.index("ops-site") < site.index("ops-a")  # newest first
    signed_in(client, "user1")
    assert _panel(client, f"/projects/{web_data.project_a}") == ""


def test_the_newest_entries_are_read_from_the_end_across_rotated_files(tmp_path):
    log = AuditLog(tmp_path, max_bytes=600, keep=3)
    for n in range(30):
        log.append({"at": "2026-01-01T00:00:00+00:00", "operation": "backup", "n": n, "project": "p" if n % 3 else None})
    assert [e["n"] for e in log.newest(4)] == [29, 28, 27, 26]
    assert [e["n"] for e in log.newest(3, lambda e: e["project"] is None)] == [27, 24, 21]
    assert len(log.files()) > 2 and len(log.newest(1000)) == len(list(log.entries()))


def test_a_recovery_that_did_something_is_logged_and_one_with_nothing_to_do_is_not(cli, config, site):
    from strongroom.repo.journal import Journal

    made = cli("backup").output.strip()
    assert cli("recover").exit_code == 0  # nothing to recover: no entry
    Journal(config.backups_dir / ".journal.json").start(operation="restore", scope="site", project=None,
                                                       backup=made, pre_restore=None, step="files")
    assert cli("recover").exit_code == 0
    operations = [(e["operation"], e.get("result")) for e in entries(config)]
    assert operations == [("backup", None), ("recover", "nothing had changed yet")]
    assert entries(config)[-1]["backup"] == made


def test_the_log_is_never_written_or_read_through_a_linked_backups_folder(service, config, site, tmp_path):
    from strongroom.errors import LinkedFolder

    made = service.make_backup()
    elsewhere = tmp_path / "elsewhere-mode"
    config.backups_dir.rename(elsewhere)
    config.backups_dir.symlink_to(elsewhere)
    before = (elsewhere / "audit.log").read_bytes()
    with pytest.raises(LinkedFolder):
        service.delete_backup(made["id"])
    assert (elsewhere / "audit.log").read_bytes() == before
    assert service.audit_entries() == []
