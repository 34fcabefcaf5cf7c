"""The audit log: who did what, from where, to which scope and backup, and how it ended.

``backups/<mode>/audit.log`` holds one JSON object per line, oldest first::

    {"at": "2026-11-26T03:00:04+00:00", "operation": "backup", "by": "root", "origin": "cli",
     "scope": "site", "project": null, "backup": "2026-11-26T03-00-00", "outcome": "ok",
     "error": null, "duration": 3.92, "bytes": 1204}

Writing: each entry is one ``os.write`` of the whole line on a descriptor opened with
``O_APPEND``, under an exclusive ``flock`` on ``.audit.lock`` beside it, so entries from
several processes never interleave and a crash leaves at most a torn last line. A line
that a full disk cut short is ended before the next one is appended, and readers skip any
line that is not a whole JSON object. When the log would grow past ``max_bytes`` it is
rotated first: ``audit.log.N-1`` to ``audit.log.N`` … ``audit.log`` to ``audit.log.1``,
keeping ``keep`` old files.

The log records operations; it is not part of any. So it is written with ``os`` directly,
not through ``mutations`` (a fault injected into an operation is not one of its own), and
an entry that cannot be written never changes an operation's outcome: it is a warning in
the ``strongroom`` log. Entries go into an existing ``backups/<mode>/`` only: an attempt
refused before that folder ever existed (a mistyped data dir) creates nothing.

``audited(operation)`` is the one hook: a decorator for a service method that takes
``project_id``, ``backup_id`` and ``by`` (those it has) and returns a result, writing one
entry however the method ends.
"""

from __future__ import annotations

import fcntl
import functools
import getpass
import inspect
import json
import logging
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from time import perf_counter

from strongroom.errors import LinkedFolder, describe
from strongroom.fs.nofollow import check_no_links, open_below
from strongroom.fs.waiting import flock_within
from strongroom.ids import PROJECT_ID_RE, is_backup_id
from strongroom.repo import layout

log = logging.getLogger("strongroom")

LOG_NAME = "audit.log"
LOCK_NAME = ".audit.lock"
MAX_BYTES = 4 << 20
KEEP = 5
MAX_ERROR = 500  # characters of an error line kept in an entry
FILE_MODE = 0o600
FILE_FLAGS = os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW


def os_user() -> str:
    """The operating system's user running this process, or ``unknown``."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


def one_line(text: object, limit: int = MAX_ERROR) -> str:
    """An error message on one line of at most ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class AuditLog:
    """The audit log of one run mode's backups folder, ``folder`` below ``root`` (the data
    dir): no folder between them is followed if it is a link (``nofollow``)."""

    def __init__(self, folder: Path, root: Path | None = None, max_bytes: int = MAX_BYTES, keep: int = KEEP):
        self.folder = Path(folder)
        self.root = Path(root) if root is not None else self.folder
        self.path = self.folder / LOG_NAME
        self.max_bytes = max_bytes
        self.keep = keep

    def append(self, entry: dict) -> None:
        """Add ``entry`` as one line; raises ``OSError`` (or ``LinkedFolder``) if it cannot."""
        line = (json.dumps(entry, default=str, ensure_ascii=True) + "\n").encode()
        folder = open_below(self.root, self.folder)  # every name below is opened relative to it
        try:
            lock_fd = os.open(LOCK_NAME, FILE_FLAGS | os.O_RDWR, FILE_MODE, dir_fd=folder)
            try:
                flock_within(lock_fd, fcntl.LOCK_EX, f"the audit log's lock {self.folder / LOCK_NAME}")
                self._rotate_if_full(folder, len(line))
                fd = os.open(LOG_NAME, FILE_FLAGS | os.O_RDWR | os.O_APPEND, FILE_MODE, dir_fd=folder)
                try:
                    if _ends_torn(fd):
                        line = b"\n" + line  # a line a full disk cut short: end it, do not glue onto it
                    os.write(fd, line)
                finally:
                    os.close(fd)
            finally:
                os.close(lock_fd)
        finally:
            os.close(folder)

    def _rotate_if_full(self, folder: int, adding: int) -> None:
        try:
            size = os.stat(LOG_NAME, dir_fd=folder, follow_symlinks=False).st_size
        except FileNotFoundError:
            return
        if size == 0 or size + adding <= self.max_bytes:
            return
        if self.keep < 1:
            os.unlink(LOG_NAME, dir_fd=folder)
            return
        for n in range(self.keep - 1, 0, -1):
            try:
                os.replace(_rotated(n), _rotated(n + 1), src_dir_fd=folder, dst_dir_fd=folder)
            except FileNotFoundError:
                continue
        os.replace(LOG_NAME, _rotated(1), src_dir_fd=folder, dst_dir_fd=folder)

    def files(self) -> list[Path]:
        """The log's files, oldest first; none if a folder on the way is a link."""
        try:
            check_no_links(self.root, self.folder)
        except LinkedFolder:
            return []
        found = [self.folder / _rotated(n) for n in range(self.keep, 0, -1)] + [self.path]
        return [path for path in found if path.is_file() and not path.is_symlink()]

    def entries(self) -> Iterator[dict]:
        """Every whole entry, oldest first; a torn or foreign line is skipped."""
        for path in self.files():
            try:
                with open(path, "rb") as fh:
                    for raw in fh:
                        entry = _parse(raw)
                        if entry is not None:
                            yield entry
            except FileNotFoundError:  # rotated away meanwhile
                continue


    def newest(self, count: int, wanted: Callable[[dict], bool] = lambda entry: True) -> list[dict]:
        """The last ``count`` whole entries that ``wanted`` keeps, newest first; reads the
        older files only when the newer do not hold enough (a panel shows ten)."""
        found: list[dict] = []
        for path in reversed(self.files()):
            try:
                lines = path.read_bytes().splitlines()
            except FileNotFoundError:  # rotated away meanwhile
                continue
            for raw in reversed(lines):
                entry = _parse(raw)
                if entry is not None and wanted(entry):
                    found.append(entry)
                    if len(found) >= count:
                        return found
        return found


def _rotated(n: int) -> str:
    return f"{LOG_NAME}.{n}"


def _ends_torn(fd: int) -> bool:
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _parse(raw: bytes) -> dict | None:
    try:
        entry = json.loads(raw)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) and "operation" in entry and "at" in entry else None


def select(entries: Iterator[dict], *, project_id: str | None = None, site_only: bool = False,
           since: datetime | None = None) -> list[dict]:
    """The entries of one project (or of the site alone), made at ``since`` or later."""
    chosen = []
    for entry in entries:
        if project_id is not None and entry.get("project") != project_id:
            continue
        if site_only and entry.get("scope") != "site":
            continue
        if since is not None and _time(entry) < since:
            continue
        chosen.append(entry)
    return chosen


def _time(entry: dict) -> datetime:
    try:
        moment = datetime.fromisoformat(str(entry["at"]))
    except ValueError:
        return datetime.min.replace(tzinfo=UTC)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# -- the hook the service uses -------------------------------------------------------------


def audited(operation: str, outcome: Callable[[dict, object], None] | None = None,
            skip: Callable[[object], bool] | None = None):
    """Decorate a service method so that every call leaves one audit entry.

    The entry's ``by``, ``project`` and ``backup`` come from the method's arguments of
    those names (``by`` defaults to the operating system's user), ``origin`` from the
    service's ``origin``. ``outcome(entry, result)`` fills in what only the result knows
    (the backup made, the bytes, a verification that failed); ``skip(result)`` says a call
    that did nothing worth recording (``recover`` with nothing to recover).
    """

    def wrap(method):
        signature = inspect.signature(method)

        @functools.wraps(method)
        def run(service, *args, **kwargs):
            arguments = signature.bind(service, *args, **kwargs).arguments
            entry = new_entry(operation, arguments.get("project_id"), arguments.get("backup_id"),
                              arguments.get("by") or os_user(), getattr(service, "origin", "library"))
            started = perf_counter()
            try:
                result = method(service, *args, **kwargs)
            except BaseException as exc:
                entry.update(outcome="failed", error=one_line(describe(exc)))
                _write(service, entry, started)
                raise
            if outcome is not None:
                outcome(entry, result)
            if skip is None or not skip(result):
                _write(service, entry, started)
            return result

        return run

    return wrap


def new_entry(operation: str, project_id: object, backup_id: object, by: str, origin: str) -> dict:
    """An entry that says ``ok`` until told otherwise; names from outside are kept only
    if they are valid (an invalid one is what the error line then says)."""
    project = project_id if isinstance(project_id, str) and PROJECT_ID_RE.match(project_id) else None
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"), "operation": operation,
        "by": one_line(by, 200), "origin": origin,
        "scope": "site" if project_id is None else "project", "project": project,
        "backup": backup_id if is_backup_id(backup_id) else None,
        "outcome": "ok", "error": None, "duration": None, "bytes": None,
    }


def _write(service, entry: dict, started: float) -> None:
    entry["duration"] = round(perf_counter() - started, 3)
    if not service.audit_log.folder.is_dir() or not layout.in_place(service.config):
        # Nothing was ever backed up in this run mode (or the data dir is mistyped), or the
        # backups were moved away (``layout``): a refused attempt creates nothing; its
        # error was said to the caller.
        log.info("no backups folder for the audit log; not recorded: %s", entry)
        return
    try:
        service.audit_log.append(entry)
    except Exception as exc:  # noqa: BLE001 - the operation's outcome stands; the log says why
        log.warning("could not write to the audit log: %s (entry: %s)", exc, entry)
