"""The commands that copy backups to and from offsite storage: push, pull.

``list --remote`` and ``prune --remote`` (in ``backups`` and ``changes``) read and prune
the copies; the printing of those lives here too.
"""

from __future__ import annotations

import click

from strongroom.cli.common import json_option, print_json, project_option
from strongroom.humanize import plural
from strongroom.humanize import size as _size


@click.command()
@click.argument("backup_id", required=False)
@click.option("--all", "all_backups", is_flag=True, help="Push every backup of the scope, not only the newest.")
@project_option
@json_option
@click.pass_obj
def push(obj, backup_id, all_backups, project_id, as_json):
    """Copy a backup (default: the newest) to the configured S3 storage, sending only
    what the storage does not hold yet. Encrypted on this machine when a key is
    configured (STRONGROOM_REMOTE_KEY_FILE); otherwise a warning says it is not.

    \b
    Example:
        STRONGROOM_S3_BUCKET=backups strongroom push --all
    """
    result = obj.service.push_backups(backup_id, project_id, all_backups=all_backups)
    obj.progress.done()
    if as_json:
        print_json(result)
    else:
        for pushed in result["pushed"]:
            click.echo(f"pushed {pushed}")
        for already in result["already"]:
            click.echo(f"already there {already}")
        click.echo(f"{plural(result['objects_uploaded'], 'stored content')} sent ({_size(result['bytes_uploaded'])}) "
                   f"to {result['remote']}")
    for warning in result["warnings"]:
        click.echo(f"warning: {warning}", err=True)


@click.command()
@click.argument("backup_id")
@project_option
@json_option
@click.pass_obj
def pull(obj, backup_id, project_id, as_json):
    """Fetch a backup's copy back from the S3 storage into this site's backups; it then
    lists, verifies and restores like any other.

    \b
    Example:
        strongroom list --remote
        strongroom pull 2026-11-26T04-27-43 && strongroom restore 2026-11-26T04-27-43
    """
    result = obj.service.pull_backup(backup_id, project_id)
    obj.progress.done()
    if as_json:
        print_json(result)
    else:
        click.echo(f"Pulled {result['id']} ({plural(result['objects_fetched'], 'stored content')} fetched, "
                   f"{_size(result['bytes_fetched'])})")
        if result.get("signed_again_from"):
            click.echo(f"signed again under this site's key: it was signed by the site key "
                       f"{result['signed_again_from']}, which this site does not hold (its content "
                       "was proven by the remote key)")


def print_pruned(result: dict, as_json: bool) -> None:
    """What ``prune --remote`` did, or would do."""
    if as_json:
        print_json(result)
        return
    dry_run = result["dry_run"]
    copies = plural(len(result["deleted"]), "remote copy", "remote copies")
    click.echo(f"{'Would delete' if dry_run else 'Deleted'} {copies}, kept {len(result['kept'])} "
               f"({_size(result['bytes_deleted'])} {'would be freed' if dry_run else 'freed'}).")
    for backup_id in result["deleted"]:
        click.echo(f"  {backup_id}")
    if result.get("objects_deferred"):
        click.echo(f"{plural(result['objects_deferred'], 'stored content')} no copy uses "
                   f"{'was' if result['objects_deferred'] == 1 else 'were'} left for a later prune: "
                   "a push to the same storage is under way.")
