"""Numbers and times in plain words, for people: the CLI's lines and the web's pages."""

from __future__ import annotations

import os
from datetime import UTC, datetime


def size(n: int) -> str:
    """``3.2 MB``: decimal units, one decimal from kB up."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def path(name: str) -> str:
    """A file path on one printable line: bytes that are not UTF-8 as ``\\xNN``, control
    characters (a newline in a name) as their escapes, everything else as it is."""
    text = os.fsencode(name).decode("utf-8", "backslashreplace")
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def count(n: int) -> str:
    """``1,204``."""
    return f"{n:,}"


def parse_time(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def when(value: str | datetime) -> str:
    """``2026-11-26 10:15:00 UTC``."""
    return parse_time(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def clock(value: str | datetime) -> str:
    """``10:14 UTC``: the time of day, for "started 10:14 UTC"."""
    return parse_time(value).astimezone(UTC).strftime("%H:%M UTC")


def ago(value: str | datetime, now: datetime | None = None) -> str:
    """``just now``, ``5 minutes ago``, ``3 days ago``."""
    seconds = int(((now or datetime.now(UTC)) - parse_time(value)).total_seconds())
    if seconds < 45:
        return "just now"
    for unit, length in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= length:
            n = round(seconds / length) if unit == "minute" else seconds // length
            return f"{n} {unit}{'s' if n != 1 else ''} ago"
    return "1 minute ago"


def plural(n: int, word: str) -> str:
    """``1 file``, ``1,204 files``."""
    return f"{count(n)} {word}{'' if n == 1 else 's'}"
