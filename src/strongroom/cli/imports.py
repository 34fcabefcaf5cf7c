"""The command that takes in backups made elsewhere: import (folders and archives)."""

from __future__ import annotations

from pathlib import Path

import click

from strongroom.cli.common import json_option, print_json, project_option
from strongroom.errors import BadArchive, BadInput
from strongroom.exchange.archive_format import SNIFF_BYTES, is_archive
from strongroom.humanize import escape as _text
from strongroom.humanize import path as _path
from strongroom.humanize import plural


@click.command("import")
@click.argument("source", required=False, type=click.Path(exists=True, allow_dash=True))
@project_option
@click.option("--as-project", "as_project", metavar="ID",
              help="With an archive of a project's backup: land it as a backup of this project instead.")
@click.option("--files", "files", type=click.Path(exists=True, file_okay=False), metavar="DIR",
              help="With a mongodump folder: the folder of files that goes with it "
                   "(the working folder, or the project's folder with --project).")
@click.option("--original-tree", type=click.Path(exists=True, file_okay=False), metavar="DATA_DIR",
              help="Take in every backup of this run mode in the original module's data dir.")
@click.option("--note", default="", help="A note for the new backup (default: where it came from).")
@json_option
@click.pass_obj
def import_(obj, source, project_id, as_project, files, original_tree, note, as_json):
    """Take in a backup made elsewhere as a new backup (reason 'import').

    SOURCE is an archive written by 'strongroom export' (a file, or '-' for standard
    input; tar, gzip or zstd, told by its content), or a folder: a backup of the original
    module (files/ and db/bson/, with one .bson per table or one per record), or a
    mongodump output folder given with --files. An archive is checked whole before
    anything lands; a project's archive lands as that project's backup, or with
    --as-project as another's. The new backup lists, verifies and restores like any
    other; a source that fails a check is refused and nothing is stored.

    \b
    Example:
        strongroom import site.tar.zst
        ssh host strongroom export 2026-11-26T04-27-43 -o - | strongroom import -
        strongroom import project.tar --as-project 6548a1b2c3d4e5f601234567
        strongroom import /old/data/backups/pilot/2024-03-01T10-00-00
        strongroom import /old/data/backups/pilot/project/6548a1b2c3d4e5f601234567/2024-03-01T10-00-00 \\
            --project 6548a1b2c3d4e5f601234567
        strongroom import dump/ --files /srv/site/working/pilot
        strongroom import --original-tree /old/data
    """
    if (source is None) == (original_tree is None):
        raise BadInput("give a SOURCE (archive or folder) or --original-tree DATA_DIR, not both or neither")
    if original_tree is not None:
        if project_id or files or as_project:
            raise BadInput("--original-tree finds the scope of each backup itself: no --project, --as-project "
                           "or --files")
        _import_tree(obj, original_tree, as_json)
        return
    if source == "-" or not Path(source).is_dir():
        if files:
            raise BadInput("--files is for mongodump folders, not for archives")
        made = _import_archive(obj, source, project_id, as_project, note)
    else:
        if as_project:
            raise BadInput("--as-project is for archives; a folder is imported into --project ID")
        made = obj.service.import_backup(source, project_id, files=files, note=note)
    obj.progress.done()
    if as_json:
        print_json(made)
    else:
        click.echo(made["id"])
        if "imported_from" in made:
            click.echo(f"imported from backup {made['imported_from']['name']}; archive fingerprint "
                       f"{made['imported_from']['fingerprint']}", err=True)


def _import_archive(obj, source: str, project_id, as_project, note) -> dict:
    """An archive from standard input or a file, told by its content, not its name."""
    if source == "-":
        stdin = click.get_binary_stream("stdin")
        if stdin.isatty():
            raise BadInput("refusing to read an archive from a terminal: pipe one in, or give its file")
        return obj.service.import_archive(stdin, project_id, as_project=as_project, note=note)
    with open(source, "rb") as fh:
        if not is_archive(fh.peek(SNIFF_BYTES)[:SNIFF_BYTES]):
            raise BadArchive(f"{source} is neither a folder nor a Strongroom archive (tar, gzip or zstd)")
        return obj.service.import_archive(fh, project_id, as_project=as_project, note=note)


def _import_tree(obj, original_tree, as_json: bool) -> None:
    """What was imported, skipped and refused; then, if any source was refused, one line
    naming them and exit 2 (the others were imported all the same)."""
    result = obj.service.import_original_tree(original_tree)
    obj.progress.done()
    if as_json:
        print_json(result)
    else:
        for made in result["imported"]:
            scope = "site" if made["scope"] == "site" else obj.service.scope_name(made["project"], with_id=True)
            click.echo(f"{made['id']}  {_text(scope)}  {_text(made['note'])}")
        click.echo(f"Imported {plural(len(result['imported']), 'backup')}, skipped {len(result['skipped'])} "
                   f"imported before, refused {len(result['refused'])}.")
        for refused in result["refused"]:
            click.echo(f"refused  {_path(refused['folder'])}: {_text(refused['reason'])}")
    if result["refused"]:
        names = ", ".join(_path(Path(r["folder"]).name) for r in result["refused"])
        raise BadInput(f"{plural(len(result['refused']), 'original backup')} refused ({names}); "
                       "the others were imported")
