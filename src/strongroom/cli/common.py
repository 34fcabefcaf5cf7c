"""What the commands share: the common options, JSON output, the confirmation question."""

from __future__ import annotations

import json
import sys

import click

from strongroom.errors import BadInput, Cancelled

project_option = click.option(
    "--project", "project_id", metavar="ID", help="Work on one project (its id, 24 hex digits) instead of the whole site."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def print_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def confirm(yes: bool, question: str) -> None:
    """Go on with ``--yes``, or when the user at the terminal says yes; refuse otherwise."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadInput("refusing without confirmation: no terminal to ask on; pass --yes")
    if not click.confirm(question, default=False):
        raise Cancelled("cancelled: nothing was changed")


def destructive_command(func):
    """A command that changes a backup's scope or the backup itself: id, scope, --yes, --json."""
    for decorate in reversed((click.command(), click.argument("backup_id"), project_option, yes_option,
                              json_option, click.pass_obj)):
        func = decorate(func)
    return func
