"""The ``strongroom`` command: parse, call the service, print. Nothing else lives here.

Exit status: 0 success, 2 bad input, 3 not found, 4 busy (another operation holds the
lock), 5 verification failed, 6 not enough disk space, 130 interrupted, 143 / 129
terminated (SIGTERM / SIGHUP), 1 any other failure. Every failure prints one line on
standard error saying what went wrong and why, never a traceback (that goes to the
``strongroom`` log: ``clierrors``).
"""

from __future__ import annotations

import json
import logging
import signal
import sys

import click

from . import __version__
from .clierrors import STOP_SIGNALS, Group, describe_error, on_stop_signal, set_up_logging
from .clierrors import fail as _fail
from .config import ENV_DATA_DIR, ENV_DB, ENV_MODE, RUN_MODES, Config
from .errors import BadInput, StrongroomError
from .humanize import escape as _text
from .humanize import path as _path
from .humanize import size as _size
from .progress import TerminalProgress
from .service import Strongroom

log = logging.getLogger("strongroom")
_on_sigterm = on_stop_signal  # its former name here


class Context:
    def __init__(self, data_dir, mode, db):
        self.config = Config.from_env(data_dir, mode, db)
        self.progress = TerminalProgress()
        self._service = None

    @property
    def service(self) -> Strongroom:
        if self._service is None:
            self._service = Strongroom(self.config, progress=self.progress)
        return self._service


project_option = click.option(
    "--project", "project_id", metavar="ID", help="Work on one project (its id, 24 hex digits) instead of the whole site."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def _print_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--data-dir", envvar=ENV_DATA_DIR, type=click.Path(file_okay=False),
              help=f"The data dir: working/<mode>/ and backups/ (env {ENV_DATA_DIR}; default ./data).")
@click.option("--mode", envvar=ENV_MODE, type=click.Choice(RUN_MODES), default="pilot", show_default=True,
              help=f"Run mode; each has its own working dir, database and backups (env {ENV_MODE}).")
@click.option("--db", envvar=ENV_DB, metavar="URI",
              help=f"mongodb://host/<name> for a MongoDB server (env {ENV_DB}); "
                   "default: the embedded database at <data dir>/db/<mode>.")
@click.version_option(__version__, prog_name="strongroom")
@click.pass_context
def main(ctx, data_dir, mode, db):
    """Back up and restore a site's working files and MongoDB database, whole or per project.

    \b
    Example:
        strongroom demo init
        strongroom backup --note "before upgrade"
        strongroom list
        strongroom restore 2026-11-26T04-27-43
    """
    set_up_logging()
    ctx.obj = Context(data_dir, mode, db)
    for stop in STOP_SIGNALS:
        signal.signal(stop, on_stop_signal)
    if ctx.invoked_subcommand not in ("recover", "demo"):
        _recover_first(ctx.obj.service, reading=ctx.invoked_subcommand in READ_ONLY)


READ_ONLY = ("list", "show", "verify")


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


@main.command()
@json_option
@click.pass_obj
def recover(obj, as_json):
    """Finish or roll back a restore that was interrupted (crash, power loss, kill).

    Every other command does this first by itself; this one only recovers. The scope
    ends exactly as the backup or exactly as before the restore, never a mix.
    """
    recovered = obj.service.recover()
    if as_json:
        _print_json(recovered)
    elif recovered:
        click.echo(f"Recovered the restore of {recovered['backup']}: {recovered['outcome']}.")
    else:
        click.echo("Nothing to recover.")


@main.command()
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
        _print_json(made)
    else:
        click.echo(made["id"])
        for warning in made["warnings"]:
            click.echo(f"warning: {_text(warning)}", err=True)


@main.command("list")
@project_option
@json_option
@click.pass_obj
def list_(obj, project_id, as_json):
    """List the backups of the site or of a project, newest first."""
    backups = obj.service.list_backups(project_id)
    if as_json:
        _print_json(backups)
        return
    if not backups:
        click.echo("No backups.")
    for b in backups:
        records = sum(b["records"].values())
        note = f"  {_text(b['note'])}" if b["note"] else ""  # user text: never raw to a terminal
        click.echo(f"{b['id']:<22} {b['reason']:<11} {b['files']:>7} files {_size(b['bytes']):>9} "
                   f"{records:>7} records  by {_text(b['created_by'])}{note}")


@main.command()
@click.argument("backup_id")
@project_option
@json_option
@click.pass_obj
def show(obj, backup_id, project_id, as_json):
    """Show what one backup holds."""
    shown = obj.service.show_backup(backup_id, project_id)
    if as_json:
        _print_json(shown)
        return
    m = shown["manifest"]
    scope = "site" if m["scope"] == "site" else f"project {m['project']}"
    click.echo(f"Backup {m['id']} of the {scope} ({m['mode']})")
    click.echo(f"  made     {m['created_at']} by {_text(m['created_by'])} ({m['reason']})")
    if m.get("note"):
        click.echo(f"  note     {_text(m['note'])}")
    f = m["files"]
    click.echo(f"  files    {f['count']} files, {f['dirs']} folders, {f['symlinks']} links, "
               f"{_size(f['bytes'])} ({_size(f['bytes_added'])} new in the pool)")
    for name, info in m["collections"].items():
        click.echo(f"  records  {name}: {info['count']} ({_size(info['bytes'])})")
    for warning in m.get("warnings", []):
        click.echo(f"  warning  {_text(warning)}")


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadInput("refusing without confirmation: no terminal to ask on; pass --yes")
    if not click.confirm(question, default=False):
        raise BadInput("cancelled")


def destructive_command(func):
    """A command that changes a backup's scope or the backup itself: id, scope, --yes, --json."""
    for decorate in reversed((main.command(), click.argument("backup_id"), project_option, yes_option,
                              json_option, click.pass_obj)):
        func = decorate(func)
    return func


@destructive_command
@click.option("--dry-run", is_flag=True, help="Only show what the restore would change; change nothing.")
def restore(obj, backup_id, project_id, yes, as_json, dry_run):
    """Restore the site or a project from a backup.

    The current state is saved first as a 'pre-restore' backup; if the restore fails,
    it is put back from it. A project restore touches no other project and no user data;
    a site restore replaces everything, users included.

    \b
    Example:
        strongroom restore 2026-11-26T04-27-43 --dry-run
        strongroom restore 2026-11-26T04-27-43 --yes
    """
    if dry_run:
        report = obj.service.preview_restore(backup_id, project_id)
        _print_json(report) if as_json else _print_preview(report)
        return
    what = "the whole site (users included)" if project_id is None else f"project {project_id}"
    _confirm(yes, f"Replace {what} by backup {backup_id}?")
    result = obj.service.restore_backup(backup_id, project_id)
    obj.progress.done()
    if as_json:
        _print_json(result)
    else:
        click.echo(f"Restored {backup_id} ({result['copied']} files copied, {result['kept']} unchanged); "
                   f"the previous state is backup {result['pre_restore']}.")
        found = result.get("rescued") or {}
        if found.get("count"):
            click.echo(f"{found['count']} files written by others during the restore were kept in "
                       f"{_path(found['place'])}.")
    for warning in result.get("warnings", []):  # what the database did not take, never silent
        click.echo(f"warning: {_text(warning)}", err=True)


def _print_preview(report: dict) -> None:
    click.echo(f"Restoring {report['backup']} would change:")
    files = report["files"]
    for kind in ("added", "changed", "removed"):
        click.echo(f"  files {kind:<8} {files[kind]['count']:>6}  ({_size(files[kind]['bytes'])})")
        for path in files[kind]["paths"][:20]:
            click.echo(f"      {_path(path)}")
        if files[kind]["count"] > 20:
            click.echo(f"      … and {files[kind]['count'] - 20} more")
    click.echo(f"  files unchanged {files['unchanged']:>6}")
    for name, counts in report["records"].items():
        click.echo(f"  records {name}: {counts['added']} added, {counts['changed']} changed, "
                   f"{counts['removed']} removed, {counts['unchanged']} unchanged")


@destructive_command
def delete(obj, backup_id, project_id, yes, as_json):
    """Delete a backup, and the stored content no other backup uses."""
    _confirm(yes, f"Delete backup {backup_id}?")
    result = obj.service.delete_backup(backup_id, project_id)
    if as_json:
        _print_json(result)
    else:
        click.echo(f"Deleted {backup_id} ({_size(result['bytes_freed'])} freed).")


@main.command()
@project_option
@click.option("--keep-last", default=0, type=click.IntRange(0), help="Keep the newest N backups.")
@click.option("--keep-hourly", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N hours.")
@click.option("--keep-daily", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N days.")
@click.option("--keep-weekly", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N weeks.")
@click.option("--keep-monthly", default=0, type=click.IntRange(0), help="Keep the newest backup of each of N months.")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@yes_option
@json_option
@click.pass_obj
def prune(obj, project_id, keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, dry_run, yes, as_json):
    """Delete the backups a retention policy does not keep (for scheduled backups).

    A backup kept by any rule is kept; a policy must keep something. Times are UTC.

    \b
    Example (cron, nightly):
        strongroom backup --reason scheduled && strongroom prune --keep-daily 7 --keep-weekly 4 --yes
    """
    from .pruning import RetentionPolicy

    policy = RetentionPolicy(keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly)
    if not dry_run:
        _confirm(yes, "Delete every backup this policy does not keep?")
    result = obj.service.prune_backups(policy, project_id, dry_run=dry_run)
    obj.progress.done()
    if as_json:
        _print_json(result)
        return
    verb = "Would delete" if dry_run else "Deleted"
    click.echo(f"{verb} {len(result['deleted'])} backups, kept {len(result['kept'])}"
               + ("." if dry_run else f" ({_size(result['bytes_freed'])} freed)."))
    for backup_id in result["deleted"]:
        click.echo(f"  {backup_id}")


@main.command()
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
    Exit 5 if any backup fails (after --repair: any still damaged).

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
        _print_json(reports)
    else:
        for report in reports:
            _print_verification(report)
    bad = [r["id"] for r in reports if not r["ok"]]
    if bad:
        _fail(None, f"verification failed for {', '.join(bad)}" + (": they stay damaged" if repair else ""), 5)


def _print_verification(report: dict) -> None:
    click.echo(f"{report['id']}: {'ok' if report['ok'] else 'FAILED'}")
    for label, key in (("", "problems"), ("repaired: ", "repaired"), ("fixed: ", "fixed"), ("note: ", "notes")):
        for line in report.get(key, []):
            click.echo(f"  {label}{_text(line)}")


@main.command("import")
@click.argument("source", required=False, type=click.Path(exists=True, file_okay=False))
@project_option
@click.option("--files", "files", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="With a mongodump folder: the folder of files that goes with it "
                   "(the working folder, or the project's folder with --project).")
@click.option("--original-tree", type=click.Path(exists=True, file_okay=False), metavar="DATA_DIR",
              help="Take in every backup of this run mode in the original module's data dir.")
@click.option("--note", default="", help="A note for the new backup (default: where it came from).")
@json_option
@click.pass_obj
def import_(obj, source, project_id, files, original_tree, note, as_json):
    """Take in a backup made by others as a new backup (reason 'import').

    SOURCE is a folder: a backup of the original module (files/ and db/bson/, with one
    .bson per table or one per record), or a mongodump output folder given with --files.
    The new backup lists, verifies and restores like any other; a source that fails a
    check is refused and nothing is stored.

    \b
    Example:
        strongroom import /old/data/backups/pilot/2024-03-01T10-00-00
        strongroom import /old/data/backups/pilot/project/6548a1b2c3d4e5f601234567/2024-03-01T10-00-00 \\
            --project 6548a1b2c3d4e5f601234567
        strongroom import dump/ --files /srv/site/working/pilot
        strongroom import --original-tree /old/data
    """
    if (source is None) == (original_tree is None):
        raise BadInput("give a SOURCE folder or --original-tree DATA_DIR, not both or neither")
    if original_tree is not None:
        if project_id or files:
            raise BadInput("--original-tree finds the scope of each backup itself: no --project or --files")
        result = obj.service.import_original_tree(original_tree)
        obj.progress.done()
        if as_json:
            _print_json(result)
            return
        for made in result["imported"]:
            scope = "site" if made["scope"] == "site" else f"project {made['project']}"
            click.echo(f"{made['id']}  {scope}  {_text(made['note'])}")
        click.echo(f"Imported {len(result['imported'])} backups, skipped {len(result['skipped'])} imported before.")
        return
    made = obj.service.import_backup(source, project_id, files=files, note=note)
    obj.progress.done()
    if as_json:
        _print_json(made)
    else:
        click.echo(made["id"])


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--server", type=click.Choice(["dev", "waitress"]), default="dev", show_default=True,
              help="dev: Flask's development server; waitress: a production-grade WSGI server.")
@click.pass_obj
def serve(obj, host, port, server):
    """Run the demo web app (projects, admin page, backups panels, /api/v1) on the data dir.

    Sign in through the user picker (not in prod); sign-ins end at sign-out or when the
    server stops. STRONGROOM_SECRET_KEY sets the key that signs the session cookie.

    \b
    Example:
        strongroom demo init && strongroom serve --port 8000
        strongroom --mode prod serve --server waitress --host 0.0.0.0
    """
    from .web import create_app
    from .web.serving import run_server

    app = create_app(obj.config, database=obj.service.database)
    run_server(app, host, port, server, announce=lambda url: click.echo(f"Serving the demo app on {url} "
                                                                        "(Ctrl-C to stop)", err=False))


@main.group()
def demo():
    """The demo site: users, projects, editions and files in the embedded database."""


@demo.command("init")
@click.option("--projects", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--editions", default=2, show_default=True, type=click.IntRange(0, 1000), help="Editions per project.")
@click.option("--size", type=click.Choice(["small", "large"]), default="small", show_default=True,
              help="small: KB-sized files, for tests; large: about 2 GB, for benchmarks.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same site.")
@click.pass_obj
def demo_init(obj, projects, editions, size, seed):
    """Create a deterministic demo site; refuses to overwrite existing data."""
    from .demo import create_demo_site

    site = create_demo_site(obj.config, obj.service.database, projects=projects, editions=editions,
                            size=size, seed=seed, progress=obj.progress)
    obj.progress.done()
    click.echo(f"Demo site made in {obj.config.data_dir}: {len(site.project_ids)} projects, "
               f"{site.file_count} files ({_size(site.total_bytes)}).")
    for project_id in site.project_ids:
        click.echo(f"  project {project_id}")


if __name__ == "__main__":
    main()
