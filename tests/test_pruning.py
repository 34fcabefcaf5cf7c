"""Retention: which backups a policy keeps, and pruning that frees what they alone used."""

import json
import os

import pytest

from strongroom.backup.pruning import RetentionPolicy, backups_to_keep
from strongroom.errors import BadInput

HOURLY_FOR_THREE_DAYS = [f"2026-11-{day:02d}T{hour:02d}-00-00" for day in (24, 25, 26) for hour in range(0, 24, 6)]


def test_keep_last_keeps_the_newest():
    assert backups_to_keep(HOURLY_FOR_THREE_DAYS, RetentionPolicy(last=2)) == {
        "2026-11-26T18-00-00", "2026-11-26T12-00-00"}


def test_keep_daily_keeps_the_newest_of_each_day():
    assert backups_to_keep(HOURLY_FOR_THREE_DAYS, RetentionPolicy(daily=2)) == {
        "2026-11-26T18-00-00", "2026-11-25T18-00-00"}


def test_rules_add_up_and_suffixed_ids_count_as_newer():
    ids = HOURLY_FOR_THREE_DAYS + ["2026-11-26T18-00-00.1"]
    kept = backups_to_keep(ids, RetentionPolicy(last=1, daily=3, monthly=1))
    assert kept == {"2026-11-26T18-00-00.1", "2026-11-25T18-00-00", "2026-11-24T18-00-00"}


def test_weekly_uses_iso_weeks():
    ids = ["2026-11-22T10-00-00", "2026-11-23T10-00-00", "2026-11-29T10-00-00", "2026-11-30T10-00-00"]
    assert backups_to_keep(ids, RetentionPolicy(weekly=2)) == {"2026-11-30T10-00-00", "2026-11-29T10-00-00"}


def test_a_policy_that_keeps_nothing_is_refused():
    with pytest.raises(BadInput):
        RetentionPolicy()


def test_prune_deletes_what_the_policy_drops_and_frees_its_content(service, config, site):
    ids = []
    for n in range(3):
        (config.working_dir / f"only-{n}.bin").write_bytes(os.urandom(2000))
        ids.append(service.make_backup(note=str(n))["id"])
        (config.working_dir / f"only-{n}.bin").unlink()
    preview = service.prune_backups(RetentionPolicy(last=1), dry_run=True)
    assert preview["deleted"] == ids[1::-1] and [b["id"] for b in service.list_backups()] == ids[::-1]

    result = service.prune_backups(RetentionPolicy(last=1))

    assert result["kept"] == [ids[2]] and result["deleted"] == [ids[1], ids[0]]
    assert result["bytes_freed"] == 4000
    assert [b["id"] for b in service.list_backups()] == [ids[2]]
    assert service.verify_backup(ids[2])["ok"]


def test_prune_on_the_command_line_needs_a_policy_and_confirmation(cli, site):
    cli("backup")
    assert cli("prune", "--yes").exit_code == 2
    assert cli("prune", "--keep-last", "1").exit_code == 2  # no terminal, no --yes
    result = cli("prune", "--keep-last", "1", "--yes", "--json")
    assert result.exit_code == 0 and json.loads(result.output)["deleted"] == []
