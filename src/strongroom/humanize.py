"""Numbers and times in plain words, for people: the CLI's lines and the web's pages."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime

from strongroom.errors import BadInput


def size(n: int) -> str:
    """``3.2 MB``: decimal units, one decimal from kB up."""
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


# Characters refused in text from users (notes, titles): controls (C0, DEL, C1: U+009B is
# a terminal's CSI), lone surrogates, line and paragraph separators, bidirectional
# controls (U+202E turns what follows around), invisible spaces that make two notes look
# alike (U+200B, U+2060, U+FEFF; the joiners U+200C and U+200D shape words and emoji, and
# stay). The OpenAPI document's pattern for notes says the same; ``web.face`` refuses them with it.
REFUSED_IN_TEXT = ("\x00-\x1f\x7f-\x9f\u061c\u200b\u200e\u200f\u2028-\u202e\u2060\u2066-\u2069\ufeff"
                   "\ud800-\udfff")
_REFUSED = re.compile(f"[{REFUSED_IN_TEXT}]")


def has_refused_characters(text: str) -> bool:
    """Does ``text`` hold a character no user text may hold (``REFUSED_IN_TEXT``)?"""
    return _REFUSED.search(text) is not None


MAX_NOTE = 500  # characters


def validate_note(value: object) -> str:
    """A note from a user, by the one rule every face applies (the CLI's ``--note``, the
    API and the web forms, ``import``): text of at most ``MAX_NOTE`` characters on one
    line, none of ``REFUSED_IN_TEXT`` (controls, line separators, bidirectional
    controls, invisible spaces, lone surrogates); ``BadInput`` otherwise. None is no note; the note is
    returned without surrounding spaces."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadInput("the note must be text")
    if len(value) > MAX_NOTE or has_refused_characters(value):
        raise BadInput(f"the note must be one line of at most {MAX_NOTE} printable characters "
                       "(no control, line-separator, bidirectional-control or invisible characters)")
    return value.strip()


def escape(text: str) -> str:
    """User text (a note, a title, a file name) made safe to print on one terminal line.

    Every character that is not printable (controls, C1 controls, bidirectional
    controls, line separators, lone surrogates, other invisible formatting) is shown as
    its escape (``\\x1b``, ``\\u202e``), as ``ls`` and ``git`` show such names; the rest
    as it is. Meant for text output only: ``--json`` prints the exact text.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def path(name: str) -> str:
    """A file path on one printable line: bytes that are not UTF-8 as ``\\xNN``, the rest
    as ``escape`` shows it."""
    return escape(os.fsencode(name).decode("utf-8", "backslashreplace"))


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


def duration(seconds: float) -> str:
    """``under 1 s``, ``5 s``, ``2 min 3 s``, ``1 h 4 min``: for "took …" and "… left"."""
    seconds = round(seconds)
    if seconds < 1:
        return "under 1 s"
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s" if seconds % 60 else f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def took(started: str | datetime, finished: str | datetime) -> str:
    """``took 5 s``: from a backup's start (its id's time) to its end (``created_at``)."""
    return "took " + duration(max(0.0, (parse_time(finished) - parse_time(started)).total_seconds()))


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


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 file``, ``1,204 files``; ``many`` for a word that does not take an s (``copies``)."""
    return f"{count(n)} {word if n == 1 else many or word + 's'}"
