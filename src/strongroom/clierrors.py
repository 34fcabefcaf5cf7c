"""How the ``strongroom`` command fails: one line on standard error, an exit code, no traceback.

Every exception a command lets through ends here (``Group.invoke``): the core's typed
errors carry their exit code (``errors``); an interrupt is 130, SIGTERM 143 and SIGHUP
129 (both unwind like an error, so that a restore in progress is rolled back), also when
the core reports the rollback it made because of them; a reader of the output that went
away (``strongroom list | head -1``) ends the command quietly with 141, as SIGPIPE ends
other tools; a full disk that reaches here untyped (an ENOSPC, or the embedded
database's "disk I/O error" on a disk with almost nothing free) is 6, saying so;
anything else, a database failure or a bug, is 1. The message is one line; the full
traceback goes to the ``strongroom`` log at DEBUG, which the command writes to the file
``$STRONGROOM_LOG_FILE`` when set and never to the terminal.
"""

from __future__ import annotations

import logging
import os
import signal
import sys

import click

from .errors import StrongroomError
from .humanize import escape
from .humanize import size as human_size

ENV_LOG_FILE = "STRONGROOM_LOG_FILE"
log = logging.getLogger("strongroom")


class Group(click.Group):
    """Turns every failure into one line on standard error and an exit code.

    The core's typed errors carry their own; an interrupt is 130, SIGTERM 143, SIGHUP
    129, a full disk 6, and any other error (a database failure, a bug) is 1, with its
    full traceback in the ``strongroom`` log at DEBUG, never on the terminal.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise  # click's own: usage errors and exits, already one line
        except StrongroomError as exc:
            fail(exc, str(exc), stopped_by(exc) or exc.exit_code)
        except Terminated as exc:
            fail(exc, str(exc), exc.exit_code)
        except KeyboardInterrupt as exc:
            fail(exc, "interrupted", 130)
        except BrokenPipeError:
            reader_gone()
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            full = full_disk(ctx, exc)
            if full:
                fail(exc, f"{describe_error(exc)} ({full})", 6)
            fail(exc, describe_error(exc), 1)


NEARLY_FULL = 1 << 20  # below this, SQLite's "disk I/O error" is its shared memory or WAL not fitting


def full_disk(ctx: click.Context, exc: BaseException) -> str | None:
    """Words saying the disk is full when that is what ``exc`` is (exit 6), else None.

    A full disk raises ENOSPC, but the embedded database (SQLite) says "disk I/O error"
    when it cannot make the shared memory it needs even to read: with the disk holding
    it (nearly) full, that is the reason, and the user is told so.
    """
    config = getattr(ctx.obj, "config", None)
    if config is None:
        return None
    from . import space  # statvfs and mount points: imported only when a command failed

    sqlite_io = type(exc).__module__ == "sqlite3" and "disk I/O error" in str(exc)
    if not space.is_out_of_space(exc) and not (sqlite_io and config.embedded):
        return None
    folder = config.embedded_db_dir if sqlite_io else config.data_dir
    try:
        free = space.free_bytes(folder)
        if sqlite_io and free >= NEARLY_FULL:
            return None
        return f"the disk is full: {human_size(free)} free on {space.mount_point(folder)}"
    except OSError:
        return None


def describe_error(exc: BaseException) -> str:
    """One line that says what failed: the OS's words and the file, or the database's."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif type(exc).__module__.split(".")[0] in ("sqlite3", "pymongo", "montydb", "bson"):
        text = f"database error: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


def stopped_by(exc: BaseException) -> int | None:
    """The exit code of the signal behind ``exc`` (a restore rolled back because it was
    stopped still exits as stopped: 143, 129 or 130), or None."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, Terminated):
            return exc.exit_code
        if isinstance(exc, KeyboardInterrupt):
            return 130
        exc = exc.__cause__ or exc.__context__
    return None


def reader_gone() -> None:
    """Standard output's reader went away: stop quietly with SIGPIPE's status, as other
    tools do, and keep Python from failing again on the final flush."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    sys.exit(128 + signal.SIGPIPE)


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like an error, so a restore in progress is rolled back."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


def on_stop_signal(signum, frame):
    """SIGTERM or SIGHUP (the terminal went away): unwind, so a restore is rolled back."""
    for ignored in STOP_SIGNALS:
        signal.signal(ignored, signal.SIG_IGN)  # the first one suffices: let the rollback finish
    raise Terminated(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def fail(exc: BaseException | None, message: str, code: int) -> None:
    if exc is not None:
        log.debug("command failed: %s", message, exc_info=exc)
    click.echo(f"strongroom: error: {escape(' '.join(message.split()))}", err=True)  # may quote user text
    sys.exit(code)


def set_up_logging() -> None:
    """The ``strongroom`` log goes to the file ``$STRONGROOM_LOG_FILE`` (DEBUG and up,
    tracebacks included) when set; never to the terminal, which gets one line per failure."""
    logger = logging.getLogger("strongroom")
    logging.raiseExceptions = False  # a log file on a full disk must not print tracebacks
    if logger.handlers:
        return
    path = os.environ.get(ENV_LOG_FILE)
    if path:
        try:
            handler = logging.FileHandler(path, delay=True)
        except OSError:
            handler = logging.NullHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.setLevel(logging.DEBUG)
    else:
        handler = logging.NullHandler()
    logger.addHandler(handler)
