"""The commands that make a backup and read what is stored: backup, list, show."""

from __future__ import annotations

import sys

import click

from strongroom.cli.common import json_option, print_json, project_option
from strongroom.humanize import count as _count
from strongroom.humanize import escape as _text
from strongroom.humanize import plural, took
from strongroom.humanize import size as _size


@click.command()
@project_option
@click.option("--note", default="", help="A note to remember why the backup was made.")
@click.option("--reason", type=click.Choice(["manual", "scheduled"]), default="manual", show_default=True,
              help="Why: 'scheduled' for backups made by cron or a timer.")
@click.option("--on-change", "on_change", type=click.Choice(["warn", "fail"]), default="warn", show_default=True,
              help="A file that keeps changing while it is read: store it as last read with a warning, "
                   "or fail the backup.")
@json_option
@click.pass_obj
def backup(obj, project_id, note, reason, on_change, as_json):
    """Make a backup of the site, or of one project; print its id, then any warnings
    (files skipped or stored while they changed) on standard error.

    \b
    Example:
        strongroom backup --project 6548a1b2c3d4e5f601234567 --note "before re-upload"
    """
    made = obj.service.make_backup(project_id, note=note, reason=reason, changed_files=on_change)
    obj.progress.done()
    if as_json:
        print_json(made)
    else:
        click.echo(made["id"])
        for warning in made["warnings"]:
            click.echo(f"warning: {_text(warning)}", err=True)


@click.command("list")
@project_option
@click.option("--remote", is_flag=True, help="List the copies in the offsite storage instead.")
@json_option
@click.pass_obj
def list_(obj, project_id, remote, as_json):
    """List the backups of the site or of a project, newest first, under a line naming the
    scope: a project's by its title and id, always; the site's on a terminal (down a pipe
    its rows come alone). With --remote: their copies in the configured S3 storage."""
    if remote:
        backups = obj.service.list_remote(project_id)
    else:  # the service (and the database behind it) only when the backup folders cannot answer
        from strongroom.inspect.listing import (
            without_service,  # here: ``--version`` and ``--help`` start without it
        )

        backups = without_service(obj.config, project_id)
        if backups is None:
            backups = obj.service.list_backups(project_id)
    if as_json:
        print_json(backups)
        return
    _warn_of_keys(obj.config, backups)
    name = _text(obj.service.scope_name(project_id, with_id=True))  # asks the database: only where shown
    what = "remote copies" if remote else "backups"
    if not backups:
        click.echo(f"No {what} of {name}.")
        return
    # A heading naming the scope: a project's always (its rows do not say whose they are),
    # the site's on a terminal (down a pipe its rows come alone, as they always did).
    if project_id is not None or sys.stdout.isatty():
        click.echo(f"{what.capitalize()} of {name}, newest first:")
    click.echo("\n".join(map(_row, backups)))  # one write, not one per backup


def _row(b: dict) -> str:
    """One backup's line in ``list``."""
    records = sum(b["records"].values())
    note = f"  {_text(b['note'])}" if b["note"] else ""  # user text: never raw to a terminal
    return (f"{b['id']:<22} {b['reason']:<11} {b['files']:>7,} files {_size(b['bytes']):>9} "
            f"{records:>7,} records  by {_text(b['created_by'])}{note}{UNTRUSTED.get(b.get('signature'), '')}")


UNTRUSTED = {  # what a row says of a backup whose signature this site cannot check
    "other-key": "  [SIGNED BY ANOTHER KEY: not restorable]",
    "no-key": "  [NOT CHECKED: no usable site key]",
}


def _warn_of_keys(config, backups: list[dict]) -> None:
    """One line on standard error when some backups' signatures cannot be checked here,
    naming the keys they name and the site key's own problem if it has one. (A remote
    copy's row carries no signature: its manifest is checked when it is pulled.)"""
    untrusted = [b for b in backups if b.get("signature") in UNTRUSTED]
    if not untrusted:
        return
    from strongroom.repo.signing import SiteKey  # here: ``--version`` starts without it

    state = SiteKey(config).state()
    why = state["problem"] or (f"the site key is {state['id']}" if state["id"] else "there is no site key")
    hint = "" if "key status" in why else "; see `strongroom key status`"
    signers = ", ".join(sorted({str(b["signed_by"]) for b in untrusted}))
    if any(b["signature"] == "other-key" for b in untrusted):
        said = f"signed by a key this site cannot check them with ({signers})"
    else:  # the site key itself is missing or refused: the backups may well be its own
        said = f"signed by {signers}, which cannot be checked here"
    are = "is" if len(untrusted) == 1 else "are"
    click.echo(f"warning: {plural(len(untrusted), 'backup')} {are} {said}; {_text(why)}{hint}", err=True)


@click.command()
@click.argument("backup_id")
@project_option
@json_option
@click.pass_obj
def show(obj, backup_id, project_id, as_json):
    """Show what one backup holds."""
    shown = obj.service.show_backup(backup_id, project_id)
    if as_json:
        print_json(shown)
        return
    m = shown["manifest"]
    scope = _text(obj.service.scope_name(m.get("project") if m["scope"] == "project" else None))
    project = f"  project  {m['project']}\n" if m["scope"] == "project" else ""
    click.echo(f"Backup {m['id']} of {scope} ({m['mode']})\n{project}", nl=False)
    made = shown["started_at"], m["created_at"]
    click.echo(f"  made     started {made[0]}, finished {made[1]} ({took(*made)}) "
               f"by {_text(m['created_by'])} ({m['reason']})")
    if m.get("note"):
        click.echo(f"  note     {_text(m['note'])}")
    f = m["files"]
    click.echo(f"  files    {plural(f['count'], 'file')}, {plural(f['dirs'], 'folder')}, "
               f"{plural(f['symlinks'], 'link')}, "
               f"{_size(f['bytes'])} ({_size(f['bytes_added'])} new in the pool)")
    for name, info in m["collections"].items():
        click.echo(f"  records  {name}: {_count(info['count'])} ({_size(info['bytes'])})")
    for warning in m.get("warnings", []):
        click.echo(f"  warning  {_text(warning)}")
