"""The commands that change a scope or the stored backups: restore, delete, prune.

Each asks first (or takes ``--yes``); restore and prune can only show what they would do
(``--dry-run``).
"""

from __future__ import annotations

import click

from strongroom.cli.common import (
    change_lines,
    confirm,
    destructive_command,
    json_option,
    print_json,
    project_option,
    yes_option,
)
from strongroom.humanize import count, plural
from strongroom.humanize import escape as _text
from strongroom.humanize import path as _path
from strongroom.humanize import size as _size


@destructive_command
@click.option("--dry-run", is_flag=True, help="Only show what the restore would change; change nothing.")
@click.option("--path", "paths", multiple=True, metavar="PATH",
              help="Put back only this file or folder (relative to the scope's folder); repeat for more. "
                   "Files only: the records stay as they are.")
@click.option("--to", "to", metavar="DIR",
              help="Write what is put back into DIR (new or empty, outside the working dir and the backups) "
                   "instead of the live folder; nothing live changes.")
@click.option("--from-site", is_flag=True,
              help="With --project: take the project out of the site backup BACKUP_ID, even if the project "
                   "has a backup of its own with that id.")
def restore(obj, backup_id, project_id, yes, as_json, dry_run, paths, to, from_site):
    """Restore the site or a project from a backup, whole or in part.

    The current state is saved first as a 'pre-restore' backup; if the restore fails,
    it is put back from it. A project restore touches no other project and no user data;
    a site restore replaces everything, users included. With --path only the named
    files or folders are put back, and nothing else changes; with --project and the id
    of a site backup, that one project (files and records) is taken out of the site
    backup; with --to the files go into another folder.

    \b
    Example:
        strongroom restore 2026-11-26T04-27-43 --dry-run
        strongroom restore 2026-11-26T04-27-43 --yes
        strongroom restore 2026-11-26T04-27-43 --path texts --path site.json --yes
        strongroom restore 2026-11-26T04-27-43 --path texts/intro.md --to /tmp/recovered
    """
    from_site = obj.service.from_site_backup(backup_id, project_id, from_site or None)
    obj.service.check_restorable(backup_id, project_id, from_site)  # before any question: no key, no restore
    if paths or to is not None or from_site:
        _restore_parts(obj, backup_id, project_id, yes, as_json, dry_run, paths, to, from_site)
        return
    name = _text(obj.service.scope_name(project_id))
    if dry_run:
        report = obj.service.preview_restore(backup_id, project_id)
        print_json(report) if as_json else _print_preview(report, f"Restoring {name} from {backup_id}")
        return
    what = f"{name} (users included)" if project_id is None else name
    confirm(yes, f"Replace {what} by backup {backup_id}?")
    result = obj.service.restore_backup(backup_id, project_id)
    obj.progress.done()
    if as_json:
        print_json(result)
    elif result.get("unchanged"):
        click.echo(f"Nothing to restore: {name} already is backup {backup_id}, every file and record; "
                   "nothing was changed, so no pre-restore backup was needed.")
    else:
        click.echo(f"Restored {name} from {backup_id} ({plural(result['copied'], 'file')} copied, "
                   f"{count(result['kept'])} unchanged); "
                   f"the previous state is backup {result['pre_restore']}.")
        found = result.get("rescued") or {}
        if found.get("count"):
            click.echo(f"{plural(found['count'], 'file')} written by others during the restore were kept in "
                       f"{_path(found['place'])}.")
    for warning in result.get("warnings", []):  # what the database did not take, never silent
        click.echo(f"warning: {_text(warning)}", err=True)


def _restore_parts(obj, backup_id, project_id, yes, as_json, dry_run, paths, to, from_site) -> None:
    """``restore --path``/``--to``, or one project out of a site backup (``restore_parts``)."""
    what = ", ".join(_path(path) for path in paths) if paths else "all files"
    name = "the site" if project_id is None else _text(obj.service.scope_name(project_id, with_id=True))
    scope = name + (f" (out of site backup {backup_id})" if from_site else "")
    if dry_run:
        report = obj.service.preview_parts(backup_id, paths, project_id, to=to, from_site=from_site)
        if as_json:
            print_json(report)
            return
        _print_preview(report, f"Restoring {what} of {scope} from {backup_id}"
                               + (f" into {_path(report['to'])}" if report["to"] else ""))
        if not report["records_restored"]:
            click.echo("  records: not restored (only files are put back)")
        return
    if to is None:
        confirm(yes, f"Replace {what} of {scope} by backup {backup_id}?")
    result = obj.service.restore_parts(backup_id, paths, project_id, to=to, from_site=from_site)
    obj.progress.done()
    if as_json:
        print_json(result)
        return
    if to is not None:
        click.echo(f"Wrote {what} of backup {backup_id} into {_path(result['to'])} ({plural(result['files'], 'file')}); "
                   "nothing live changed.")
        return
    records = sum((result.get("records") or {}).values())
    if result.get("unchanged"):
        held = (f"{name} already is what site backup {backup_id} holds of it, every file and record"
                if not paths else f"{what} of {scope} already {'is' if len(paths) == 1 else 'are'} as backup "
                                  f"{backup_id} holds {'it' if len(paths) == 1 else 'them'}, every file "
                                  f"({plural(result['files'], 'file')})")
        click.echo(f"Nothing to restore: {held}; nothing was changed, so no pre-restore backup was needed.")
        return
    click.echo(f"Restored {what}{' and ' + plural(records, 'record') if result['records_restored'] else ''} "
               f"of {scope} from {backup_id} ({plural(result['copied'], 'file')} copied, "
               f"{count(result['kept'])} unchanged); the previous state is backup {result['pre_restore']}.")
    if not result["records_restored"]:
        click.echo("Records were not restored: --path puts back files only.")
    found = result.get("rescued") or {}
    if found.get("count"):
        click.echo(f"{plural(found['count'], 'file')} written by others during the restore were kept in "
                   f"{_path(found['place'])}.")
    for warning in result.get("warnings", []):
        click.echo(f"warning: {_text(warning)}", err=True)


def _print_preview(report: dict, header: str) -> None:
    """A dry run: what the restore would change, as a table (``change_lines``), or that it
    would change nothing."""
    if report.get("changes_nothing"):
        records = sum(counts["unchanged"] for counts in report["records"].values())
        files = plural(report["files"]["unchanged"], "file")
        held = (f"every file and record already is as the backup holds it ({files}, {plural(records, 'record')})"
                if report.get("records_restored", True) else
                f"every file there already is as the backup holds it ({files})")
        click.echo(f"{header} would change nothing: {held}; nothing to restore.")
        return
    click.echo(f"{header} would change:")
    for line in change_lines(report):
        click.echo(line)
    if report.get("changes_only_metadata"):
        click.echo("  No file, folder, link or record differs, but the restore would still set back folder modes "
                   "or times, or the collections' options or indexes (saving the current state first).")


@destructive_command
def delete(obj, backup_id, project_id, yes, as_json):
    """Delete a backup, and the stored content no other backup uses."""
    name = _text(obj.service.scope_name(project_id))
    confirm(yes, f"Delete backup {backup_id} of {name}?")
    result = obj.service.delete_backup(backup_id, project_id)
    if as_json:
        print_json(result)
    else:
        click.echo(f"Deleted {backup_id} of {name} ({_size(result['bytes_freed'])} freed).")


@click.command()
@project_option
@click.option("--keep-last", default=0, type=click.IntRange(0), help="Keep the newest N backups.")
@click.option("--keep-hourly", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N hours.")
@click.option("--keep-daily", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N days.")
@click.option("--keep-weekly", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N weeks.")
@click.option("--keep-monthly", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N months.")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@click.option("--remote", is_flag=True, help="Prune the copies in the offsite storage instead.")
@yes_option
@json_option
@click.pass_obj
def prune(obj, project_id, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, dry_run, remote, yes,
          as_json):
    """Delete the backups a retention policy does not keep (for scheduled backups).

    A backup kept by any rule is kept; a policy must keep something. Times are UTC.
    With --remote the same policy prunes the copies in the offsite storage.

    \b
    Example (cron, nightly):
        strongroom backup --reason scheduled && strongroom prune --keep-daily 7 --keep-weekly 4 --yes
    """
    from strongroom.backup.pruning import RetentionPolicy

    policy = RetentionPolicy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly)
    if not dry_run:
        confirm(yes, f"Delete every {'remote copy' if remote else 'backup'} this policy does not keep?")
    if remote:
        from strongroom.cli.remote import print_pruned

        return print_pruned(obj.service.prune_remote(policy, project_id, dry_run=dry_run), as_json)
    result = obj.service.prune_backups(policy, project_id, dry_run=dry_run)
    obj.progress.done()
    if as_json:
        print_json(result)
        return
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {plural(len(result['deleted']), 'backup')}, kept {len(result['kept'])}"
               + f" ({_size(result['bytes_freed'])} {'would be freed' if dry_run else 'freed'}).")
    for backup_id in result["deleted"]:
        click.echo(f"  {backup_id}")
