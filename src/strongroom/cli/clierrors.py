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
from typing import ClassVar

import click

from strongroom.errors import Cancelled, StrongroomError, describe
from strongroom.humanize import escape
from strongroom.humanize import size as human_size
from strongroom.progress_model import outcome_of

ENV_LOG_FILE = "STRONGROOM_LOG_FILE"
log = logging.getLogger("strongroom")


class Group(click.Group):
    """Turns every failure into one line on standard error and an exit code.

    The core's typed errors carry their own; an interrupt is 130, SIGTERM 143, SIGHUP
    129, a full disk 6, and any other error (a database failure, a bug) is 1, with its
    full traceback in the ``strongroom`` log at DEBUG, never on the terminal.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise OneLineUsageError(exc.format_message(), exc.ctx) from None

    def invoke(self, ctx):
        # Before click takes the sub-command's arguments away: does the line ask for help?
        rest = [*(getattr(ctx, "_protected_args", None) or []), *ctx.args]
        ctx.meta["asks_for_help"] = any(arg in ctx.help_option_names for arg in rest)
        release_signals()  # a command starts stoppable, whatever one before it in this process passed
        try:
            result = super().invoke(ctx)
        except click.UsageError as exc:  # a sub-command's: click would print four lines
            raise OneLineUsageError(exc.format_message(), exc.ctx) from None
        except (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise  # click's own exits, and its other errors: already one line
        except Cancelled as exc:  # "no" at a confirmation: the user's choice, not an error
            end_progress(ctx, "refused")
            log.debug("command cancelled: %s", exc)
            click.echo(f"strongroom: {escape(str(exc))}", err=True)
            sys.exit(exc.exit_code)
        except StrongroomError as exc:
            end_progress(ctx, outcome_of(exc))
            fail(exc, str(exc), stopped_by(exc) or exc.exit_code)
        except Terminated as exc:
            end_progress(ctx, "failed")
            fail(exc, str(exc), exc.exit_code)
        except KeyboardInterrupt as exc:
            end_progress(ctx, "failed")
            fail(exc, "interrupted", 130)
        except BrokenPipeError:
            reader_gone()
        except Exception as exc:  # noqa: BLE001 - the last line of defence: no traceback for users
            end_progress(ctx, "failed")
            full = full_disk(ctx, exc)
            if full:
                fail(exc, f"{describe_error(exc)} ({full})", 6)
            fail(exc, describe_error(exc), 1)
        report_held()
        return result


class OneLineUsageError(click.UsageError):
    """A usage error (unknown command or option, bad value) as one line, like every other
    failure, with the help command to try; exit 2."""

    def show(self, file=None) -> None:
        command = self.ctx.command_path if self.ctx else "strongroom"
        message = " ".join(self.format_message().split())
        click.echo(f"strongroom: error: {message} (try '{command} --help')", err=True)


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
    from strongroom.fs import space  # statvfs and mount points: imported only when a command failed

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
    """One line that says what failed: the core's one rule (``errors.describe``)."""
    return describe(exc)


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


class _Held:
    """Signals that came after an operation's point of no return (``no_return``)."""

    holding = False
    signals: ClassVar[list[int]] = []


def hold_signals() -> None:
    """The operation has passed its point of no return (a restore's swap): from now on
    Ctrl-C, SIGTERM and SIGHUP no longer stop the command; it finishes, and says it did
    (``report_held``), so the exit status, the message, the audit log and the job say
    the same true thing: done."""
    _Held.holding = True


def release_signals() -> None:
    """A new command: a signal stops it again until it passes its own point of no return
    (the CLI run in-process, as a test or a host does, ran others before it)."""
    _Held.holding = False
    _Held.signals.clear()


def report_held() -> None:
    """After a command that succeeded: say which signal came too late to stop it."""
    if _Held.signals:
        name = signal.Signals(_Held.signals[0]).name
        click.echo(f"strongroom: {name} came after the point of no return: the operation was completed, "
                   "not stopped", err=True)


def on_interrupt(signum, frame):
    """Ctrl-C: stop (KeyboardInterrupt, exit 130), unless past the point of no return."""
    if _Held.holding:
        _Held.signals.append(signum)
        return
    raise KeyboardInterrupt


class Terminated(BaseException):
    """SIGTERM or SIGHUP: unwinds like an error, so a restore in progress is rolled back."""

    def __init__(self, signum: int):
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.exit_code = 128 + signum


def on_stop_signal(signum, frame):
    """SIGTERM or SIGHUP (the terminal went away): unwind, so a restore is rolled back
    (past its point of no return, it is finished instead: ``hold_signals``)."""
    if _Held.holding:
        _Held.signals.append(signum)
        return
    for ignored in STOP_SIGNALS:
        signal.signal(ignored, signal.SIG_IGN)  # the first one suffices: let the rollback finish
    raise Terminated(signum)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def end_progress(ctx, outcome: str) -> None:
    """A progress line on the terminal ends saying what became of the operation."""
    end = getattr(getattr(ctx.obj, "progress", None), "end", None)
    if end is not None:
        end(outcome)


FAILURE = "strongroom.failure"  # the context's meta key of the failure's line (for ``--ping-url``)


def fail(exc: BaseException | None, message: str, code: int) -> None:
    if exc is not None:
        log.debug("command failed: %s", message, exc_info=exc)
    line = escape(" ".join(message.split()))  # may quote user text
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[FAILURE] = line
    click.echo(f"strongroom: error: {line}", err=True)
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


def log_to_terminal() -> None:
    """For ``serve``: the ``strongroom`` log's INFO lines and up (one per backup and restore,
    with its timings) also on standard error, as a server's log; tracebacks stay in the
    log file only."""
    logger = logging.getLogger("strongroom")
    if logger.getEffectiveLevel() > logging.INFO:
        logger.setLevel(logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.INFO)
    handler.setFormatter(_OneLine("%(asctime)s strongroom %(levelname)s %(message)s"))
    logger.addHandler(handler)


class _OneLine(logging.Formatter):
    """A record as one line: no traceback on the terminal (the log file keeps it)."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        record.asctime = self.formatTime(record)
        return " ".join(self.formatMessage(record).split())
