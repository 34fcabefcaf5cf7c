"""What must hold before a command runs: the data dir exists.

A mistyped ``--data-dir`` (or ``$STRONGROOM_DATA_DIR``) must never become a new, empty
data dir that a backup then reports as a success: every command but ``demo`` (which makes
one) refuses a data dir that does not exist, in one line, before it creates anything.
Asking for help (``--help`` anywhere) is never refused.
"""

from __future__ import annotations

import click

from strongroom.config import Config
from strongroom.errors import NotFound

MAKES_ITS_DATA_DIR = ("demo",)


def check_data_dir(ctx: click.Context, config: Config) -> None:
    """``NotFound`` (exit 3) when the command would work on a data dir that does not exist."""
    if ctx.invoked_subcommand in MAKES_ITS_DATA_DIR or asks_for_help(ctx):
        return
    if not config.data_dir.is_dir():
        raise NotFound(f"no data dir {config.data_dir} (a mistyped --data-dir? "
                       "'strongroom demo init' makes a demo one)")


def asks_for_help(ctx: click.Context) -> bool:
    """Does the rest of the command line ask for a command's help? (``clierrors.Group``
    notes it before click hands the arguments to the sub-command.)"""
    return bool(ctx.meta.get("asks_for_help"))
