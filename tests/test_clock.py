"""Time is not trusted: a clock that was ahead, or jumps back, never reorders or loses backups.

The service is given a clock the test moves by hand (``Strongroom(..., clock=...)``).
"""

from datetime import UTC, datetime, timedelta

import pytest

from strongroom.backup.pruning import RetentionPolicy, backups_to_keep
from strongroom.ids import backup_id_sort_key, new_backup_id
from strongroom.service import Strongroom

TODAY = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock(TODAY)


@pytest.fixture
def timed(config, database, clock):
    return Strongroom(config, database=database, clock=clock)


def test_a_new_id_continues_after_the_newest_when_the_clock_is_behind_it():
    ahead = ["2026-11-27T12-00-00", "2026-11-25T08-00-00"]
    assert new_backup_id(ahead, TODAY) == "2026-11-27T12-00-00.1"
    assert new_backup_id([*ahead, "2026-11-27T12-00-00.1"], TODAY) == "2026-11-27T12-00-00.2"
    assert new_backup_id(ahead, TODAY + timedelta(days=2)) == "2026-11-28T12-00-00"


def test_a_new_id_moves_to_the_next_second_when_the_suffixes_are_used_up():
    assert new_backup_id(["2026-11-26T12-00-00.999999"], TODAY) == "2026-11-26T12-00-01"


def test_names_that_are_not_backup_ids_do_not_steer_a_new_id():
    assert new_backup_id(["9999-99-99T99-99-99", "notes.txt"], TODAY) == "2026-11-26T12-00-00"


def test_backups_made_while_the_clock_jumps_back_are_unique_and_sort_newest(timed, clock, site):
    made = []
    for step in (timedelta(0), timedelta(days=1), -timedelta(days=3), -timedelta(days=3), timedelta(seconds=1)):
        clock.now += step
        made.append(timed.make_backup(note=str(len(made)))["id"])
    assert len(set(made)) == len(made)
    assert sorted(made, key=backup_id_sort_key) == made
    assert [b["id"] for b in timed.list_backups()] == made[::-1]


def test_prune_keep_last_keeps_the_backup_made_today_after_a_clock_that_was_ahead(timed, clock, site):
    """The reproduction: a backup made while the clock was a day ahead, then one made today."""
    clock.now = TODAY + timedelta(days=1)
    ahead = timed.make_backup(note="clock ahead")["id"]
    clock.now = TODAY
    (timed.config.working_dir / "today.txt").write_text("made today")
    today = timed.make_backup(note="today")["id"]

    result = timed.prune_backups(RetentionPolicy(last=1))

    assert result["kept"] == [today] and result["deleted"] == [ahead]
    assert [b["note"] for b in timed.list_backups()] == ["today"]


def test_retention_keeps_the_most_recently_made_backup_whatever_its_id_says(timed, clock, site, monkeypatch):
    """A backup made last but named earlier (by an older version while the clock was
    wrong): the sequence number its manifest records, not its id, says it is the newest."""
    clock.now = TODAY + timedelta(days=1)
    first = timed.make_backup(note="first")["id"]
    monkeypatch.setattr("strongroom.backup.backing_up.new_backup_id", lambda taken, now: "2026-11-20T00-00-00")
    last = timed.make_backup(note="made last")["id"]
    assert timed.store.sequences(timed.scope()) == {first: 1, last: 2}

    result = timed.prune_backups(RetentionPolicy(last=1), dry_run=True)

    assert last in result["kept"] and first in result["kept"]  # the newest by id is kept too
    assert backups_to_keep([first, last], RetentionPolicy(last=1), {first: 1, last: 2}) >= {last}


def test_prune_never_deletes_the_newest_backup_whatever_the_rules():
    ids = ["2026-11-24T00-00-00", "2026-11-25T00-00-00", "2026-11-26T00-00-00"]
    made_last = {ids[0]: 3, ids[1]: 1, ids[2]: 2}
    kept = backups_to_keep(ids, RetentionPolicy(monthly=1), made_last)
    assert ids[0] in kept  # made last, though its id is the oldest
    assert ids[2] in kept  # listed newest
    assert backups_to_keep([], RetentionPolicy(last=1)) == set()


def test_a_backup_records_the_injected_clock_and_its_place_in_the_made_order(timed, clock, site, config):
    clock.now = TODAY + timedelta(hours=5)
    made = timed.show_backup(timed.make_backup()["id"])["manifest"]
    assert made["created_at"] == "2026-11-26T17:00:00+00:00" and made["sequence"] == 1
    assert timed.show_backup(timed.make_backup()["id"])["manifest"]["sequence"] == 2
