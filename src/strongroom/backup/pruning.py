"""Which backups a retention policy keeps (restic's ``forget`` rules, pure).

A policy keeps the newest ``last`` backups, plus the newest backup of each of the last
``hourly`` hours, ``daily`` days, ``weekly`` ISO weeks and ``monthly`` months that have
one (times in UTC, from the backup ids). A backup kept by any rule is kept. A policy
that keeps nothing at all is refused: pruning must never delete every backup.

"Newest" is the order the backups were made in, not what their ids say: a clock that
was ahead or jumped back gives ids out of that order. The order is the sequence number
each manifest records (``store.sequences``), then the id for backups without one. The
most recently made backup is always kept, and so is the one with the highest id,
whatever the policy says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from strongroom.errors import BadInput
from strongroom.ids import backup_id_sort_key, backup_id_time


@dataclass(frozen=True)
class RetentionPolicy:
    last: int = 0
    hourly: int = 0
    daily: int = 0
    weekly: int = 0
    monthly: int = 0

    def __post_init__(self) -> None:
        if any(n < 0 for n in self.counts()):
            raise BadInput("retention counts cannot be negative")
        if not any(self.counts()):
            raise BadInput("a retention policy must keep something: give at least one of --keep-last, "
                           "--keep-hourly, --keep-daily, --keep-weekly, --keep-monthly a number above 0")

    def counts(self) -> tuple[int, ...]:
        return (self.last, self.hourly, self.daily, self.weekly, self.monthly)


BUCKETS: dict[str, Callable[[datetime], tuple]] = {
    "hourly": lambda t: (t.year, t.month, t.day, t.hour),
    "daily": lambda t: (t.year, t.month, t.day),
    "weekly": lambda t: t.isocalendar()[:2],
    "monthly": lambda t: (t.year, t.month),
}


def backups_to_keep(
    backup_ids: Iterable[str], policy: RetentionPolicy, sequences: Mapping[str, int] | None = None
) -> set[str]:
    """The ids ``policy`` keeps; every other id may be deleted.

    ``sequences`` gives the order the backups were made in (see the module's description);
    without it, ids are taken to be in that order.
    """
    backup_ids = list(backup_ids)
    if not backup_ids:
        return set()
    sequences = sequences or {}
    newest_first = sorted(backup_ids, key=lambda i: (sequences.get(i, 0), backup_id_sort_key(i)), reverse=True)
    kept = set(newest_first[: policy.last])
    kept.add(newest_first[0])  # the most recently made backup, whatever its id says
    kept.add(max(backup_ids, key=backup_id_sort_key))  # and the one listed newest
    for rule, bucket_of in BUCKETS.items():
        wanted = getattr(policy, rule)
        seen: set[tuple] = set()
        for backup_id in newest_first:
            if len(seen) >= wanted:
                break
            bucket = bucket_of(backup_id_time(backup_id))
            if bucket not in seen:
                seen.add(bucket)
                kept.add(backup_id)
    return kept
