"""A double fault: a restore killed while it replaced the records, and then its pre-restore
backup's record dump damaged (issue 22, point 4). Recovery must check what it loads
before it changes anything, say what is damaged and which backup is sound, leave the
restore pending, and take the records from that backup when told to."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bson import ObjectId

from conftest import give_the_restore_work, records_fingerprint, tree_fingerprint
from faults import count_points, crash_at, fresh_service
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.scopes import Scope, backups_root


def _prepared(root) -> tuple[Config, str]:
    """A site, a backup of it, then a file and a record changed."""
    config = Config(data_dir=root / "data")
    database = open_database(config)
    create_demo_site(config, database, projects=2, editions=2, size="small", seed=5)
    target = fresh_service(config).make_backup(note="target")["id"]
    give_the_restore_work(config.working_dir)
    database.edition.insert_one({"projectId": ObjectId(), "title": "after the backup"})
    return config, target


def _cli(config, *args):
    return subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                          capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)


def _damage(path) -> None:
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_recovery_never_loads_a_damaged_pre_restore_dump_and_takes_the_records_from_a_sound_backup(tmp_path):
    probe, probe_target = _prepared(tmp_path / "probe")
    points = count_points(lambda: fresh_service(probe).restore_backup(probe_target))
    first_insert = 1 + next(i for i, (kind, _) in enumerate(points) if kind == "insert")

    config, target = _prepared(tmp_path / "real")
    before_restore_files = tree_fingerprint(config.working_dir)
    crash_at(first_insert, lambda: fresh_service(config).restore_backup(target))
    journal = json.loads((config.backups_dir / ".journal.json").read_text())
    assert journal["step"] == "records" and journal["pre_restore"]
    pre = journal["pre_restore"]
    _damage(backups_root(config, Scope.site()) / pre / "db" / "bson" / "edition.bson")
    database = open_database(config)
    files, records = tree_fingerprint(config.working_dir), records_fingerprint(database)

    for _ in range(2):  # and again: the state is one recover can be run on again
        refused = _cli(config, "recover")
        assert refused.returncode == 5, refused.stderr
        line = refused.stderr.strip()
        assert len(line.splitlines()) == 1 and "Traceback" not in line
        assert f"backup {pre}" in line and "is damaged" in line and "edition.bson" in line
        assert "nothing was changed" in line and f"recover --from {target}" in line
        assert tree_fingerprint(config.working_dir) == files and records_fingerprint(database) == records
        assert json.loads((config.backups_dir / ".journal.json").read_text())["step"] == "records"
    assert _cli(config, "backup").returncode == 5  # every change waits for the recovery
    assert _cli(config, "list").returncode == 0  # reading goes on, with a warning

    recovered = _cli(config, "recover", "--from", target)
    assert recovered.returncode == 0, recovered.stderr
    assert f"records from backup {target}" in recovered.stdout
    assert not (config.backups_dir / ".journal.json").exists()
    assert tree_fingerprint(config.working_dir) == before_restore_files
    target_records = {name: len(docs) for name, docs in records_fingerprint(database).items()}
    assert target_records["edition"] == 4  # the target's, not the later record
    assert _cli(config, "backup").returncode == 0
    assert os.path.isdir(backups_root(config, Scope.site()) / pre)  # the damaged backup is left for inspection
