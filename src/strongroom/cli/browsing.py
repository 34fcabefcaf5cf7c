"""The commands that look inside backups: ls (folders, files, collections), cat (one
file's content), get (one file or folder to a local path) and diff (what changed)."""

from __future__ import annotations

import os
import sys

import click

from strongroom.cli.common import change_lines, json_option, print_json, project_option
from strongroom.errors import BadInput
from strongroom.humanize import path as _path
from strongroom.humanize import plural as _plural
from strongroom.humanize import size as _size


def _typed(path: str) -> str:
    """A path as typed at a shell: ``/`` is the top, and a trailing ``/`` (from completion) is dropped."""
    return "" if path == "/" else path.removesuffix("/")


@click.command()
@click.argument("backup_id")
@click.argument("path", required=False, default="")
@project_option
@json_option
@click.pass_obj
def ls(obj, backup_id, path, project_id, as_json):
    """List what a backup holds at PATH (default: its top): folders, files with size and
    time, and (at the top) its collections with their record counts.

    \b
    Example:
        strongroom ls 2026-11-26T04-27-43
        strongroom ls 2026-11-26T04-27-43 project/6548a1b2c3d4e5f601234567 --json
    """
    listing = obj.service.browse_backup(backup_id, project_id, _typed(path))
    if as_json:
        print_json(listing)
        return
    for folder in listing["folders"]:
        click.echo(f"{'folder':<7} {_size(folder['bytes']):>9}  {folder['mtime']}  {_path(folder['name'])}/"
                   f"  ({_plural(folder['files'], 'file')})")
    for row in listing["files"]:
        target = f" -> {_path(row['target'])}" if row["type"] == "symlink" else ""
        kind = "link" if row["type"] == "symlink" else "file"
        click.echo(f"{kind:<7} {_size(row['size']):>9}  {row['mtime']}  {_path(row['name'])}{target}")
    for name, count in listing["collections"].items():
        click.echo(f"{'records':<7} {count:>9}  {name}")
    if not (listing["folders"] or listing["files"] or listing["collections"]):
        click.echo("(empty)")


@click.command()
@click.argument("backup_id")
@click.argument("path")
@project_option
@click.pass_obj
def cat(obj, backup_id, path, project_id):
    """Write one file of a backup to standard output, as it was backed up (its content is
    checked against its hash on the way: a damaged file fails with exit 5, short).

    \b
    Example:
        strongroom cat 2026-11-26T04-27-43 site.json
    """
    _, blocks = obj.service.backup_file(backup_id, project_id, path)
    out = sys.stdout.buffer
    for block in blocks:
        out.write(block)
    out.flush()


@click.command()
@click.argument("backup_id")
@click.argument("path", required=False, default="")
@click.option("--to", "target", required=True, type=click.Path(dir_okay=False),
              help="The local file to write (it must not exist yet). A folder is written as a .tar.gz archive.")
@project_option
@click.pass_obj
def get(obj, backup_id, path, target, project_id):
    """Fetch one file of a backup, or one folder as a tar.gz archive, into a new local file.
    Nothing live changes.

    \b
    Example:
        strongroom get 2026-11-26T04-27-43 texts/about.txt --to about.txt
        strongroom get 2026-11-26T04-27-43 images --to images.tar.gz
    """
    path = _typed(path)
    listing = obj.service.browse_backup(backup_id, project_id, path)
    blocks = obj.service.backup_archive(backup_id, project_id, path)[1] if listing["type"] == "dir" else None
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BadInput(f"{target} exists already; give a new file name") from None
    try:
        try:
            if blocks is not None:
                with open(fd, "wb", closefd=False) as fh:
                    fh.writelines(blocks)
            else:
                obj.service.write_backup_file(backup_id, project_id, path, fd)  # a sparse file stays sparse
        finally:
            os.close(fd)
    except BaseException:
        os.unlink(target)  # a damaged file or an interrupted copy leaves nothing half-written
        raise
    click.echo(target)


@click.command()
@click.argument("backup_id")
@click.argument("other", required=False, default="live", metavar="[OTHER_ID|live]")
@project_option
@json_option
@click.pass_obj
def diff(obj, backup_id, other, project_id, as_json):
    """What changed from a backup to another backup, or to the live files and records (the
    default): files added, changed (by content) and removed, and per collection the
    records added, changed (by _id and content) and removed, in the order the dry run
    of a restore gives them.

    \b
    Example:
        strongroom diff 2026-11-26T04-27-43
        strongroom diff 2026-11-26T04-27-43 2026-11-27T04-00-00 --json
    """
    report = obj.service.diff_backups(backup_id, other, project_id)
    if as_json:
        print_json(report)
        return
    click.echo(f"From {report['from']} to {report['to']}:")
    for line in change_lines(report, listed=None):
        click.echo(line)
