"""How the ``strongroom`` command fails: one line on standard error, an exit code, no traceback.

Every exception a command lets through ends here (``Group.invoke``): the core's typed
errors carry their exit code (``errors``); an interrupt is 130, SIGTERM 143 and SIGHUP
129 (both unwind like an error, so that a restore in progress is rolled back); anything
else, a full disk, a database failure or a bug, is 1. The message is one line; the full
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

ENV_LOG_FILE = "STRONGROOM_LOG_FILE"
log = logging.getLogger("strongroom")


class Group(click.Group):
    """Turns every failure into one line on standard error and an exit code.

    The core's typed errors carry their own; an interrupt is 130, SIGTERM 143, SIGHUP
    129, and any other error (a full disk, a database failure, a bug) is 1, with its
    full traceback in the ``strongroom`` log at DEBUG, never on the terminal.
    """

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise  # click's own: usage errors and exits, already one line
        except StrongroomError as exc:
            fail(exc, str(exc), exc.exit_code)
        except Terminated as exc:
            fail(exc, str(exc), exc.exit_code)
        except KeyboardInterrupt as exc:
            fail(exc, "interrupted", 130)
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            fail(exc, describe_error(exc), 1)


def describe_error(exc: BaseException) -> str:
    """One line that says what failed: the OS's words and the file, or the database's."""
    if isinstance(exc, OSError) and exc.strerror:
        text = f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    elif type(exc).__module__.split(".")[0] in ("sqlite3", "pymongo", "montydb", "bson"):
        text = f"database error: {exc}"
    else:
        text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return " ".join(text.split())


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
