"""The command that takes in backups made by others: import."""

from __future__ import annotations

import click

from ..errors import BadInput
from ..humanize import escape as _text
from .common import json_option, print_json, project_option


@click.command("import")
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
            print_json(result)
            return
        for made in result["imported"]:
            scope = "site" if made["scope"] == "site" else f"project {made['project']}"
            click.echo(f"{made['id']}  {scope}  {_text(made['note'])}")
        click.echo(f"Imported {len(result['imported'])} backups, skipped {len(result['skipped'])} imported before.")
        return
    made = obj.service.import_backup(source, project_id, files=files, note=note)
    obj.progress.done()
    if as_json:
        print_json(made)
    else:
        click.echo(made["id"])
