"""Backup ids, project ids, run mode names and relative paths: make, parse, validate.

This is the one validator: every name that comes from a user, a URL, a form, a backup
folder, an archive member or a manifest goes through a function here before it reaches
a path or a query. Anything not of the exact form is refused with ``InvalidName``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath

from strongroom.errors import InvalidName

# ASCII digits only: ``\d`` alone would take any script's digits, another name for the same time.
BACKUP_ID_RE = re.compile(r"\A(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2})(?:\.([1-9][0-9]{0,5}))?\Z", re.ASCII)
PROJECT_ID_RE = re.compile(r"\A[0-9a-f]{24}\Z")
# A run mode names folders (``working/<mode>``, ``db/<mode>``, a backups folder per mode):
# lower-case ASCII letters, digits, ``_`` and ``-``, starting with a letter, so it is never
# hidden, never ``.``/``..`` and never takes a path apart.
MODE_NAME_RE = re.compile(r"\A[a-z][a-z0-9_-]{0,31}\Z", re.ASCII)
TIME_FORMAT = "%Y-%m-%dT%H-%M-%S"
MAX_SUFFIX = 999_999  # the largest suffix BACKUP_ID_RE accepts


def _shown(value: object) -> str:
    """A short, printable form of a bad value for error messages."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate_backup_id(value: object) -> str:
    """Return ``value`` if it is a backup id (``2026-11-26T04-27-43`` or ``…43.2``)."""
    if not isinstance(value, str) or not (match := BACKUP_ID_RE.match(value)):
        raise InvalidName(f"not a backup id: {_shown(value)} (expected e.g. 2026-11-26T04-27-43)")
    try:
        _time_of(match.group(1))
    except ValueError:
        raise InvalidName(f"not a backup id: {_shown(value)} (no such date or time)") from None
    return value


def _time_of(text: str) -> datetime:
    """The time of ``2026-11-26T04-27-43`` (the regex fixed each field's place), or ValueError
    if there is no such date or time. By hand: ``strptime`` costs ~13 µs, and every listing
    pays it per backup."""
    return datetime(int(text[0:4]), int(text[5:7]), int(text[8:10]),
                    int(text[11:13]), int(text[14:16]), int(text[17:19]))


def is_backup_id(value: object) -> bool:
    try:
        validate_backup_id(value)
    except InvalidName:
        return False
    return True


def backup_id_sort_key(backup_id: str) -> tuple[str, int]:
    """Chronological order: the time, then the suffix (``.2`` after ``.1``, both after none)."""
    match = BACKUP_ID_RE.match(backup_id)
    return (match.group(1), int(match.group(2) or 0))


def backup_id_time(backup_id: str) -> datetime:
    match = BACKUP_ID_RE.match(validate_backup_id(backup_id))
    return _time_of(match.group(1)).replace(tzinfo=UTC)


def new_backup_id(existing: Iterable[str], now: datetime | None = None) -> str:
    """The id of a new backup: after every id in ``existing``, whatever the clock says.

    Normally the UTC time to the second, with a suffix ``.1``, ``.2``, … when that second
    is taken. The clock is not trusted: if ``now`` is not after the newest existing id
    (the clock was ahead before, or jumped back), the new id continues from the newest
    one (its time, the next suffix), so ids stay unique and a new backup sorts newest.
    Names in ``existing`` that are not backup ids are ignored.
    """
    now = now or datetime.now(UTC)
    base = now.astimezone(UTC).strftime(TIME_FORMAT)
    newest = max((name for name in existing if is_backup_id(name)), key=backup_id_sort_key, default=None)
    if newest is None or (base, 0) > backup_id_sort_key(newest):
        return base
    time, suffix = backup_id_sort_key(newest)
    if suffix < MAX_SUFFIX:
        return f"{time}.{suffix + 1}"
    later = datetime.strptime(time, TIME_FORMAT) + timedelta(seconds=1)  # suffixes used up
    return later.strftime(TIME_FORMAT)


def validate_project_id(value: object) -> str:
    """Return ``value`` if it is an ObjectId in hex (24 lower-case hex digits)."""
    if not isinstance(value, str) or not PROJECT_ID_RE.match(value):
        raise InvalidName(f"not a project id: {_shown(value)} (expected 24 hex digits)")
    return value


def validate_mode_name(value: object) -> str:
    """Return ``value`` if it can name a run mode (``pilot``, ``custom``, ``prod-2``)."""
    if not isinstance(value, str) or not MODE_NAME_RE.match(value):
        raise InvalidName(f"not a run mode name: {_shown(value)} (lower-case letters, digits, _ and -, "
                          "starting with a letter, at most 32)")
    return value


def is_mode_name(value: object) -> bool:
    return isinstance(value, str) and MODE_NAME_RE.match(value) is not None


def validate_relative_path(value: object) -> PurePosixPath:
    """A path inside a scope, as a manifest or an archive names it: relative, no ``..``.

    Only what could escape the scope or name no file is refused: absolute paths, empty,
    ``.`` or ``..`` components, NUL. Any other byte a file system allows in a name is
    kept (backslashes, newlines, names that are not UTF-8, as surrogate escapes), and
    there is no length limit: a path is only ever used one component at a time or
    below a folder of the scope.
    """
    check_relative_path(value)
    return PurePosixPath(value)


def check_relative_path(value: object) -> None:
    """``validate_relative_path``'s checks alone, for a caller that keeps the string (a
    file list's every entry: building the ``PurePosixPath`` was most of the cost)."""
    if not isinstance(value, str) or not value or "\0" in value:
        raise InvalidName(f"not a path: {_shown(value)}")
    if value.startswith("/"):
        raise InvalidName(f"refusing the absolute path {_shown(value)}: paths are relative to the scope's folder")
    # Each part, found by substring rather than by splitting (a file list checks every
    # entry): a part is '..', '.' or empty exactly when '/../', '/./' or '//' occurs
    # in the path between slashes.
    wrapped = f"/{value}/"
    if "/../" in wrapped:
        raise InvalidName(f"refusing the path {_shown(value)}: '..' could lead out of the scope's folder")
    if "//" in wrapped or "/./" in wrapped:
        raise InvalidName(f"refusing the path {_shown(value)}: an empty or '.' part (write it without)")
    if value.isascii():
        return  # ASCII always encodes
    try:
        os.fsencode(value)  # bytes that are not UTF-8 come as surrogate escapes; no other surrogate
    except UnicodeEncodeError:
        raise InvalidName(f"not a relative path: {_shown(value)} (not a file name)") from None
