"""The commands that check and mend: verify (and repair), recover an interrupted restore."""

from __future__ import annotations

import click

from strongroom.cli.clierrors import fail as _fail
from strongroom.cli.common import json_option, print_json, project_option
from strongroom.errors import BadInput
from strongroom.humanize import escape as _text
from strongroom.humanize import plural


@click.command()
@click.option("--from", "records_from", metavar="BACKUP_ID",
              help="When the pre-restore backup is damaged: put the records back from this (sound) backup "
                   "of the scope instead; the files go back as they were before the restore.")
@json_option
@click.pass_obj
def recover(obj, records_from, as_json):
    """Finish or roll back a restore that was interrupted (crash, power loss, kill).

    Every other command does this first by itself; this one only recovers. The scope
    ends exactly as the backup or exactly as before the restore, never a mix. If the
    backup the rollback needs is damaged, nothing is changed and the message names the
    newest sound backup to give with --from.
    """
    recovered = obj.service.recover(records_from=records_from)
    if as_json:  # always an object: {"recovered": null} when there was nothing to do
        print_json({"recovered": recovered})
    elif recovered:
        click.echo(f"Recovered the restore of {recovered['backup']}: {recovered['outcome']}.")
    else:
        click.echo("Nothing to recover.")


@click.command()
@click.argument("backup_id", required=False)
@click.option("--all", "all_", is_flag=True, help="Verify every backup of the scope.")
@click.option("--repair", is_flag=True,
              help="Store again, from the pool or the live files, stored files whose content was damaged.")
@click.option("--sign-unsigned", is_flag=True,
              help="Sign backups made before backups were signed, once they verify clean, so they can be restored.")
@project_option
@json_option
@click.pass_obj
def verify(obj, backup_id, all_, repair, sign_unsigned, project_id, as_json):
    """Check a backup: its signature, every file and record dump re-hashed, nothing added.

    Also makes the backups private again where their modes let others in, and says so.
    Exit 5 if any backup fails (after --repair: any still damaged); exit 2 if a backup is
    NOT CHECKED because there is no usable site key (no outcome is recorded for it).

    \b
    Example:
        strongroom verify --all
        strongroom verify 2026-11-26T04-27-43 --repair
    """
    if all_ == (backup_id is not None):
        raise BadInput("give a backup id or --all, not both or neither")
    options = {"repair": repair, "sign_unsigned": sign_unsigned}
    reports = (obj.service.verify_all(project_id, **options) if all_
               else [obj.service.verify_backup(backup_id, project_id, **options)])
    obj.progress.done()
    if as_json:
        print_json(reports)
    else:
        for report in reports:
            _print_verification(report)
    bad = [r["id"] for r in reports if r["ok"] is False]
    if bad:
        _fail(None, f"verification failed for {', '.join(bad)}" + (": they stay damaged" if repair else ""), 5)
    unchecked = [r for r in reports if r["ok"] is None]
    if unchecked:  # no key to check with: no verdict on the backups, and nothing recorded
        _fail(None, f"{plural(len(unchecked), 'backup')} NOT CHECKED: {unchecked[0]['not_checked']}", 2)


def _print_verification(report: dict) -> None:
    click.echo(f"{report['id']}: {'ok' if report['ok'] else 'NOT CHECKED' if report['ok'] is None else 'FAILED'}")
    if report["ok"] is None:
        click.echo(f"  {_text(report['not_checked'])}")
    for label, key in (("", "problems"), ("repaired: ", "repaired"), ("fixed: ", "fixed"), ("note: ", "notes")):
        for line in report.get(key, []):
            click.echo(f"  {label}{_text(line)}")
