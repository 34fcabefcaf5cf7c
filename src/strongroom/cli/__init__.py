"""The ``strongroom`` command: parse, call the service, print. Nothing else lives here.

One module per group of commands (``backups``, ``changes``, ``checks``, ``imports``,
``keys``, ``ops``, ``site``), imported when its command is looked up (``COMMANDS``); this one
holds the group itself, its global options and the recovery every command but
``recover``, ``demo``, ``status``, ``log`` and ``key`` runs first. The group's ``--ping-url``
is ``monitoring``'s.

Exit status: 0 success, 2 bad input, 3 not found, 4 busy (another operation holds the
lock), 5 verification failed, 6 not enough disk space, 130 interrupted, 143 / 129
terminated (SIGTERM / SIGHUP), 141 the reader went away, 1 any other failure (also "no" at
a confirmation: cancelled). A signal that comes after a restore's point of no return
is held until it is done, and it exits 0 (``clierrors.hold_signals``). Every failure prints one line on
standard error saying what went wrong and why, never a traceback (that goes to the
``strongroom`` log: ``clierrors``).
"""

from __future__ import annotations

import logging
import signal
from importlib import import_module
from typing import TYPE_CHECKING

import click

from strongroom import __version__
from strongroom.cli.clierrors import (
    STOP_SIGNALS,
    describe_error,
    on_interrupt,
    on_stop_signal,
    set_up_logging,
)
from strongroom.cli.monitoring import PingingGroup, ping_url_option
from strongroom.cli.preconditions import asks_for_help, check_data_dir
from strongroom.cli.progress import TerminalProgress
from strongroom.config import (
    ENV_BACKUPS_DIR,
    ENV_DATA_DIR,
    ENV_DB,
    ENV_MODE,
    ENV_MODEL,
    ENV_MODES,
    ENV_PRODUCTION_MODES,
    MODELS,
    PRODUCTION_MODES,
    RUN_MODES,
    Config,
)
from strongroom.errors import StrongroomError

if TYPE_CHECKING:
    from strongroom.service import Strongroom

log = logging.getLogger("strongroom")


class Context:
    """What every command gets (``obj``): the configuration, the progress bar, and the
    service, opened on first use (``demo`` and ``--help`` need no database)."""

    def __init__(self, data_dir, mode, db, backups_dir=None, modes=None, production_modes=None, model=None):
        self.config = Config.from_env(data_dir, mode, db, backups_dir=backups_dir, modes=modes,
                                      production_modes=production_modes, model=model)
        self.progress = TerminalProgress()
        self._service = None

    @property
    def service(self) -> Strongroom:
        if self._service is None:
            # The service (and the database drivers behind it) is imported on first use:
            # ``--version`` and ``--help`` start without it.
            from strongroom.service import Strongroom

            self._service = Strongroom(self.config, progress=self.progress, origin="cli")
        return self._service


# Each command's module is imported when that command is looked up (to run it, or by
# ``--help`` to list them all): a command starts without the others' imports (the archive
# formats, the object store, browsing), and ``--version`` without any.
COMMANDS = {
    "backup": "backups:backup", "cat": "browsing:cat", "delete": "changes:delete", "demo": "site:demo",
    "diff": "browsing:diff", "export": "archives:export", "get": "browsing:get", "import": "imports:import_",
    "key": "keys:key", "list": "backups:list_", "log": "ops:log_", "ls": "browsing:ls",
    "migrate-layout": "ops:migrate_layout", "prune": "changes:prune", "pull": "remote:pull", "push": "remote:push",
    "recover": "checks:recover", "restore": "changes:restore", "serve": "site:serve", "show": "backups:show",
    "status": "ops:status", "verify": "checks:verify",
}


class Commands(PingingGroup):
    """The group whose commands are imported on first lookup (``COMMANDS``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and name in COMMANDS:
            module, attribute = COMMANDS[name].split(":")
            self.add_command(getattr(import_module(f"strongroom.cli.{module}"), attribute), name)
        return self.commands.get(name)

    def resolve_command(self, ctx: click.Context, args: list[str]):
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # its "Did you mean" drew on the commands loaded
            raise click.exceptions.NoSuchCommand(exc.command_name, possibilities=self.list_commands(ctx),
                                                 ctx=ctx) from None


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar=ENV_DATA_DIR, type=click.Path(file_okay=False),
              help=f"The data dir: working/<mode>/ and backups/ (env {ENV_DATA_DIR}; default ./data).")
@click.option("--mode", envvar=ENV_MODE, default="pilot", show_default=True, metavar="MODE",
              help=f"Run mode, one of --modes; each has its own working dir, database and backups (env {ENV_MODE}).")
@click.option("--modes", envvar=ENV_MODES, metavar="LIST",
              help=f"The run modes, separated by commas (env {ENV_MODES}; default {','.join(RUN_MODES)}).")
@click.option("--production-modes", envvar=ENV_PRODUCTION_MODES, metavar="LIST",
              help="The run modes where backups are the system's job: no backup, restore or delete from the "
                   f"web face (env {ENV_PRODUCTION_MODES}; default {','.join(PRODUCTION_MODES)}).")
@click.option("--db", envvar=ENV_DB, metavar="URI",
              help=f"mongodb://host/<name> for a MongoDB server (env {ENV_DB}); "
                   "default: the embedded database at <data dir>/db/<mode>.")
@click.option("--backups-dir", envvar=ENV_BACKUPS_DIR, type=click.Path(file_okay=False), metavar="DIR",
              help=f"Where the backups, their pool and the site key live (env {ENV_BACKUPS_DIR}); "
                   "default: <data dir>/backups/.strongroom.")
@click.option("--model", envvar=ENV_MODEL, metavar="NAME|FILE",
              help=f"Which records make a project: {' or '.join(MODELS)} (default original: project and "
                   f"edition), or a .json/.toml model file (env {ENV_MODEL}; docs/data-model.md).")
@ping_url_option
@click.version_option(__version__, prog_name="strongroom")
@click.pass_context
def main(ctx, data_dir, mode, modes, production_modes, db, backups_dir, model, ping_url):
    """Back up and restore a site's working files and MongoDB database, whole or per project.

    \b
    Example:
        strongroom demo init
        strongroom backup --note "before upgrade"
        strongroom list
        strongroom restore 2026-11-26T04-27-43
    """
    from strongroom.repo.journal import unfinished_restore  # here: ``--version`` starts without it

    set_up_logging()
    try:
        ctx.obj = Context(data_dir, mode, db, backups_dir, modes, production_modes, model)
    except StrongroomError as exc:  # a setting that cannot work: a usage error, with the help to try
        raise click.UsageError(str(exc), ctx=ctx) from None
    check_data_dir(ctx, ctx.obj.config)
    for stop in STOP_SIGNALS:
        signal.signal(stop, on_stop_signal)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not when started ignoring it (``&``)
        signal.signal(signal.SIGINT, on_interrupt)
    if (ctx.invoked_subcommand not in ("recover", "demo", *OPS_READERS) and not asks_for_help(ctx)
            and unfinished_restore(ctx.obj.config.backups_dir)):  # none: the service need not load for it
        _recover_first(ctx.obj.service, reading=ctx.invoked_subcommand in READ_ONLY)


READ_ONLY = ("list", "show", "verify", "ls", "cat", "get", "diff", "export")
OPS_READERS = ("status", "log", "key")  # a probe never starts a rollback; nor does mending the key


def _recover_first(service: Strongroom, reading: bool) -> None:
    """Recover a crashed restore before the command. A command that only reads goes on
    if that fails (a full disk, say), with one line saying so; any other stops."""
    try:
        recovered = service.recover_if_needed()
    except Exception as exc:
        if not reading:
            raise
        message = str(exc) if isinstance(exc, StrongroomError) else describe_error(exc)
        log.debug("recovery before a read failed", exc_info=exc)
        click.echo(f"strongroom: warning: an interrupted restore is not recovered yet: {message}", err=True)
        return
    if recovered:
        click.echo(f"strongroom: recovered an interrupted restore: {recovered['outcome']}", err=True)
