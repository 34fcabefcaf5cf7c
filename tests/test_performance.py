"""What makes backups and restores cost what changed: files linked unread, copies counted,
timings recorded, and the benchmark kept runnable."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "bench" / "run.py"
ROWS = {"first_backup", "unchanged_backup_vs_rsync", "unchanged_backup_vs_restic", "changed_1pct_backup",
        "touched_backup", "restore_empty", "restore_empty_durable", "restore_unchanged", "disk_10_backups",
        "project_backup",
        "dump_records", "peak_memory"}


def test_a_second_backup_links_every_unchanged_file_without_reading_it(service, site):
    service.make_backup()
    second = service.show_backup(service.make_backup()["id"])["manifest"]
    assert second["files"]["linked_unread"] == second["files"]["count"] > 0
    assert second["files"]["bytes_read"] == 0


def test_a_projects_first_backup_reuses_what_the_site_backup_read(service, site):
    service.make_backup()
    project = site.project_ids[0]
    made = service.show_backup(service.make_backup(project)["id"], project)["manifest"]
    assert made["files"]["linked_unread"] == made["files"]["count"] > 0


def test_the_manifest_and_the_log_give_the_time_of_every_phase(service, site, caplog):
    with caplog.at_level(logging.INFO, logger="strongroom"):
        made = service.show_backup(service.make_backup()["id"])["manifest"]
    assert {"dump", "scan", "hash", "copy", "link", "sync", "total"} <= set(made["timings"])
    assert any("scan" in record.getMessage() and "hash" in record.getMessage() for record in caplog.records)


def test_a_restore_onto_an_unchanged_folder_copies_nothing(service, site):
    made = service.make_backup()
    result = service.restore_backup(made["id"])
    assert result["copied"] == 0 and result["kept"] == result["files"] > 0
    assert "total" in result["timings"]


def test_the_quick_benchmark_runs_and_reports_every_row(tmp_path):
    out = tmp_path / "results.json"
    done = subprocess.run([sys.executable, str(BENCH), "--quick", "--dir", str(tmp_path / "bench"), "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env={**os.environ}, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert {row["row"] for row in result["rows"]} == ROWS
    for row in result["rows"]:
        assert "skipped" in row or row["ratio"] is not None


def test_version_and_help_start_without_the_service_or_the_database_drivers():
    probe = ("import sys\n"
             "from strongroom.cli import main\n"
             "for args in (['--version'], ['--help']):\n"
             "    try:\n"
             "        main(args)\n"
             "    except SystemExit:\n"
             "        pass\n"
             "heavy = sorted(m for m in ('strongroom.service', 'bson', 'pymongo', 'montydb', 'flask', 'sqlite3')\n"
             "               if m in sys.modules)\n"
             "print(','.join(heavy), file=sys.stderr)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False)
    assert "strongroom, version" in done.stdout
    assert done.stderr.strip().splitlines()[-1:] in ([], [""]), done.stderr
