"""Typed errors of the core. The CLI maps them to exit codes, the web to HTTP statuses."""

import re


class StrongroomError(Exception):
    """Base of every error the core raises on purpose."""

    exit_code = 1
    http_status = 500


class InvalidName(StrongroomError):
    """A backup id, project id or path that is not of the accepted form."""

    exit_code = 2
    http_status = 400


class BadInput(StrongroomError):
    """Input that is well-formed but cannot be acted on (bad option, missing confirmation)."""

    exit_code = 2
    http_status = 400


class Cancelled(StrongroomError):
    """The user answered no at a confirmation: nothing was changed."""

    exit_code = 1
    http_status = 400


class NotFound(StrongroomError):
    """A backup or project that does not exist."""

    exit_code = 3
    http_status = 404


class NoDatabase(NotFound):
    """No database to read or write the records in: no server is configured and the run
    mode has no embedded database (a forgotten ``--db`` would otherwise make an empty one)."""


class Busy(StrongroomError):
    """Another operation holds the lock of this data dir and mode."""

    exit_code = 4
    http_status = 409


class LeaseLost(StrongroomError):
    """The operation's lease expired and another process took it over: this one must not
    take another irreversible step (the new holder recovers what it left)."""

    exit_code = 4
    http_status = 409


class CorruptBackup(StrongroomError):
    """A backup whose content does not match its manifest."""

    exit_code = 5
    http_status = 409


class SignedElsewhere(CorruptBackup):
    """A backup whose signature this site cannot check: it was signed with another key
    than the site key in use, or there is no site key. ``key_id`` is the key it names.
    Listed and named as such, never restored (``strongroom key adopt`` is the way back)."""

    def __init__(self, message: str, key_id: str | None):
        super().__init__(message)
        self.key_id = key_id


class KeyMissing(SignedElsewhere):
    """A signed backup met with no site key to check it: not damage, and not a verdict
    on the backup (``verify`` says NOT CHECKED; a restore is refused before anything is
    saved or changed). The way back is to put the key back (docs/keys.md)."""

    exit_code = 2


class KeyRefused(StrongroomError):
    """The site key cannot be used: what is at its place could have been put there by
    someone else (owner, mode, type), is no key (not exactly 32 bytes), lies in a folder others
    may write, a configured key
    is missing, or making a key now would leave backups signed by another one
    unverifiable. Nothing was changed."""

    exit_code = 2
    http_status = 409


class NotAllowed(StrongroomError):
    """The user may not do this here (see ``policy``)."""

    exit_code = 1
    http_status = 403


class RestoreFailed(StrongroomError):
    """A restore failed part-way; the scope was put back from its pre-restore backup."""


class BackupFailed(StrongroomError):
    """A backup failed part-way (a disk turned read-only, an I/O error): no backup was
    made and nothing else changed."""


class OutputFailed(StrongroomError):
    """Writing where the caller asked (an archive's file, standard output) failed: what
    was read is fine. ``reason``: the system's words; exit 6 when the disk is full."""

    def __init__(self, message: str, reason: str, full: bool):
        super().__init__(message)
        self.reason, self.full = reason, full
        if full:
            self.exit_code, self.http_status = 6, 507


class RollbackBlocked(CorruptBackup):
    """A restore cannot be undone: the backup its rollback would load is damaged. Nothing
    was changed by the attempt; the restore stays pending (its journal as it was)."""


class ServerRefused(StrongroomError):
    """The database server refused to store something a backup holds (a document, a type)."""


class LinkedFolder(StrongroomError):
    """A scope folder, a backup folder or one of their parents is a symbolic link (or
    not a folder): it is never followed, nothing is read, written or deleted through it."""

    exit_code = 1
    http_status = 409


class FileChanged(StrongroomError):
    """A file kept changing while a backup read it, and the policy says to fail."""

    exit_code = 1
    http_status = 409


class NoSpace(StrongroomError):
    """The file system has clearly not got the space an operation needs; nothing was changed."""

    exit_code = 6
    http_status = 507


class RemoteFailed(StrongroomError):
    """The remote storage of offsite copies could not be reached, or refused a request."""

    exit_code = 1
    http_status = 502


class BadArchive(StrongroomError):
    """An archive to import that is malformed, truncated, too big, or not what it says:
    refused as a whole before anything of it lands."""

    exit_code = 2
    http_status = 400


def os_reason(exc: OSError) -> str:
    """An OS error in a few words: its text and, when it has one, the file it names."""
    text = exc.strerror or str(exc) or type(exc).__name__
    return f"{text}: {exc.filename}" if exc.filename else text


DRIVER_MODULES = ("sqlite3", "pymongo", "montydb", "bson")
UNREACHABLE = ("ServerSelectionTimeoutError", "AutoReconnect", "ConnectionFailure", "NetworkTimeout")
_DRIVER_TAIL = re.compile(r" \(configured timeouts|, Timeout: |, Topology Description: ")


def describe(exc: BaseException) -> str:
    """Any error in one short line, the one rule of every face (CLI, audit log, jobs, the
    panel): an OS error by its text and file, ours by its message, and a database
    failure as a sentence with the server and the cause (``cannot reach the database
    server 127.0.0.1:27017: [Errno 111] Connection refused``), never the driver's dump
    of its timeouts and topology."""
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    if isinstance(exc, StrongroomError):
        text = str(exc) or type(exc).__name__
    elif isinstance(exc, OSError) and exc.strerror and type(exc).__module__.split(".")[0] not in DRIVER_MODULES:
        text = os_reason(exc)
    elif type(exc).__module__.split(".")[0] in DRIVER_MODULES:
        first = _DRIVER_TAIL.split(str(exc), maxsplit=1)[0].strip()
        if type(exc).__name__ in UNREACHABLE:
            server, _, cause = first.split(",")[0].partition(": ")
            text = (f"cannot reach the database server {server}: {cause}" if cause else
                    f"cannot reach the database server: {server or 'no server answered'}")
        else:
            text = f"database error: {first or type(exc).__name__}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())
