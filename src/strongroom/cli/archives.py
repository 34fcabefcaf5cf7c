"""The command that writes a backup as one portable archive: export."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from strongroom.cli.common import json_option, project_option
from strongroom.errors import BadInput
from strongroom.exchange.archive_format import COMPRESSIONS
from strongroom.fs import mutations


@click.command("export")
@click.argument("backup_id")
@project_option
@click.option("-o", "--output", required=True, metavar="FILE|-",
              help="The archive to write; '-' writes it to standard output.")
@click.option("--compress", type=click.Choice(COMPRESSIONS), default="none", show_default=True,
              help="Compress the archive as a whole.")
@json_option
@click.pass_obj
def export(obj, backup_id, project_id, output, compress, as_json):
    """Write a backup as one portable archive (tar), to take in elsewhere with import.

    The archive holds the backup's manifest, file list, record dumps and each stored
    file content once, and ends with SHA256SUMS, a checksum of every member before it.
    Its fingerprint (the SHA-256 of SHA256SUMS) is printed (on standard error when the
    archive goes to standard output), and again by the import, to compare them. The
    backup is only read.

    \b
    Example:
        strongroom export 2026-11-26T04-27-43 -o site.tar.zst --compress zstd
        strongroom export 2026-11-26T04-27-43 -o - | ssh host strongroom import -
    """
    if output == "-":
        stdout = click.get_binary_stream("stdout")
        if stdout.isatty():
            raise BadInput("refusing to write an archive to a terminal: give -o FILE, or pipe it")
        result = obj.service.export_backup(backup_id, stdout, project_id, compress=compress)
        stdout.flush()
    else:
        folder = Path(output).parent
        if not folder.is_dir():  # said before any work, and by its name
            raise BadInput(f"cannot write {output}: the folder {folder} does not exist")
        result = _export_to_file(obj, backup_id, project_id, Path(output), compress)
    obj.progress.done()
    to_stderr = output == "-"  # standard output carries the archive
    if as_json:
        click.echo(json.dumps({**result, "output": output}, indent=2), err=to_stderr)
        return
    click.echo(f"exported {backup_id} ({result['objects']} stored contents, {result['bytes']} bytes of tar) "
               f"to {output}; fingerprint {result['fingerprint']}", err=to_stderr)


def _export_to_file(obj, backup_id: str, project_id, output: Path, compress: str) -> dict:
    """Written beside ``output`` under a hidden name, renamed into place once complete:
    an archive under the name is always whole."""
    partial = output.with_name(f".{output.name}.partial-{os.getpid()}")
    try:
        with mutations.create(partial) as fh:
            result = obj.service.export_backup(backup_id, fh, project_id, compress=compress)
            fh.flush()
            os.fsync(fh.fileno())
        mutations.rename(partial, output)
    finally:
        if os.path.lexists(partial):
            mutations.unlink(partial)
    return result
