"""What makes the demo site the same for the same seed: its ObjectIds and its dates.

Ids are hashes of the seed, the kind and the number; dates are a fixed base date plus
offsets. Nothing here reads the clock or an unseeded random source.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from bson import ObjectId

BASE_DATE = datetime(2024, 3, 1, 9, 0, 0, tzinfo=UTC)


def object_id(seed: int, kind: str, n: int) -> ObjectId:
    return ObjectId(hashlib.sha256(f"{seed}:{kind}:{n}".encode()).digest()[:12])


def mtime_ns(index: int) -> int:
    return int((BASE_DATE + timedelta(days=30, seconds=61 * index)).timestamp()) * 10**9
