"""The ``strongroom`` command: parse, call the service, print. Nothing else lives here.

Exit status: 0 success, 2 bad input, 3 not found, 4 busy (another operation holds the
lock), 5 verification failed, 1 any other failure. Every failure prints one line on
standard error saying what went wrong and why.
"""

from __future__ import annotations

import json
import signal
import sys

import click

from . import __version__
from .config import ENV_DATA_DIR, ENV_DB, ENV_MODE, RUN_MODES, Config
from .errors import BadInput, StrongroomError
from .humanize import size as _size
from .progress import TerminalProgress
from .service import Strongroom


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


class Group(click.Group):
    """Turns the core's typed errors into one line and an exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except StrongroomError as exc:
            _fail(str(exc), exc.exit_code)
        except OSError as exc:
            _fail(f"{exc.strerror or exc}: {exc.filename}" if exc.filename else str(exc), 1)
        except Terminated as exc:
            _fail(str(exc), 143)


class Terminated(BaseException):
    """SIGTERM: unwinds like an error, so a restore in progress is rolled back."""


def _on_sigterm(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the first one suffices: let the rollback finish
    raise Terminated("terminated by SIGTERM")


def _fail(message: str, code: int) -> None:
    click.echo(f"strongroom: error: {message}", err=True)
    sys.exit(code)


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
    ctx.obj = Context(data_dir, mode, db)
    signal.signal(signal.SIGTERM, _on_sigterm)
    if ctx.invoked_subcommand not in ("recover", "demo"):
        recovered = ctx.obj.service.recover_if_needed()
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
@json_option
@click.pass_obj
def backup(obj, project_id, note, reason, as_json):
    """Make a backup of the site, or of one project; print its id.

    \b
    Example:
        strongroom backup --project 6548a1b2c3d4e5f601234567 --note "before re-upload"
    """
    made = obj.service.make_backup(project_id, note=note, reason=reason)
    obj.progress.done()
    if as_json:
        _print_json(made)
    else:
        click.echo(made["id"])


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
        note = f"  {b['note']}" if b["note"] else ""
        click.echo(f"{b['id']:<22} {b['reason']:<11} {b['files']:>7} files {_size(b['bytes']):>9} "
                   f"{records:>7} records  by {b['created_by']}{note}")


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
    click.echo(f"  made     {m['created_at']} by {m['created_by']} ({m['reason']})")
    if m.get("note"):
        click.echo(f"  note     {m['note']}")
    f = m["files"]
    click.echo(f"  files    {f['count']} files, {f['dirs']} folders, {f['symlinks']} links, "
               f"{_size(f['bytes'])} ({_size(f['bytes_added'])} new in the pool)")
    for name, info in m["collections"].items():
        click.echo(f"  records  {name}: {info['count']} ({_size(info['bytes'])})")
    for warning in m.get("warnings", []):
        click.echo(f"  warning  {warning}")


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
    for warning in result.get("warnings", []):  # what the database did not take, never silent
        click.echo(f"warning: {warning}", err=True)


def _print_preview(report: dict) -> None:
    click.echo(f"Restoring {report['backup']} would change:")
    files = report["files"]
    for kind in ("added", "changed", "removed"):
        click.echo(f"  files {kind:<8} {files[kind]['count']:>6}  ({_size(files[kind]['bytes'])})")
        for path in files[kind]["paths"][:20]:
            click.echo(f"      {path}")
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
@project_option
@json_option
@click.pass_obj
def verify(obj, backup_id, all_, project_id, as_json):
    """Re-hash every file and record dump of a backup against its manifest (exit 5 if any differ)."""
    if all_ == (backup_id is not None):
        raise BadInput("give a backup id or --all, not both or neither")
    reports = obj.service.verify_all(project_id) if all_ else [obj.service.verify_backup(backup_id, project_id)]
    obj.progress.done()
    if as_json:
        _print_json(reports)
    else:
        for report in reports:
            click.echo(f"{report['id']}: {'ok' if report['ok'] else 'FAILED'}")
            for problem in report["problems"]:
                click.echo(f"  {problem}")
    bad = [r["id"] for r in reports if not r["ok"]]
    if bad:
        _fail(f"verification failed for {', '.join(bad)}", 5)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--server", type=click.Choice(["dev", "waitress"]), default="dev", show_default=True,
              help="dev: Flask's development server; waitress: a production-grade WSGI server.")
@click.pass_obj
def serve(obj, host, port, server):
    """Run the demo web app (projects, admin page, backups panels, /api/v1) on the data dir.

    Sign in through the user picker (not in prod). Set STRONGROOM_SECRET_KEY to keep
    sessions across restarts.

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
