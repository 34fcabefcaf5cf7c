"""The command that writes a backup as one portable archive: export."""

from __future__ import annotations

import io
import json
import os
import stat
from pathlib import Path

import click

from strongroom.cli.common import json_option, project_option
from strongroom.errors import BadInput, OutputFailed, os_reason
from strongroom.exchange.archive_format import COMPRESSIONS
from strongroom.fs import mutations, space
from strongroom.humanize import plural
from strongroom.humanize import size as human_size


@click.command("export")
@click.argument("backup_id")
@project_option
@click.option("-o", "--output", required=True, metavar="FILE|-",
              help="The archive to write; '-' writes it to standard output.")
@click.option("--compress", type=click.Choice(COMPRESSIONS), default=None,
              help="Compress the archive as a whole (default: by the name's suffix, .gz or .tgz gzip, "
                   ".zst zstd, any other none).")
@click.option("--force", is_flag=True, help="Replace FILE if it is there (else an existing FILE is refused).")
@json_option
@click.pass_obj
def export(obj, backup_id, project_id, output, compress, force, as_json):
    """Write a backup as one portable archive (tar), to take in elsewhere with import.

    The archive holds the backup's manifest, file list, record dumps and each stored
    file content once, and ends with SHA256SUMS, a checksum of every member before it.
    Its fingerprint (the SHA-256 of SHA256SUMS) is printed (on standard error when the
    archive goes to standard output), and again by the import, to compare them. The
    backup is only read. Without --compress the name says: x.tar.gz is gzip, x.tar.zst
    zstd. An existing FILE is replaced only with --force.

    \b
    Example:
        strongroom export 2026-11-26T04-27-43 -o site.tar.zst
        strongroom export 2026-11-26T04-27-43 -o - | ssh host strongroom import -
    """
    compress = compress or compression_of(output)
    try:
        result = _export(obj, backup_id, project_id, output, compress, force)
    except OutputFailed as exc:  # say where, and which disk: the backup is not at fault
        raise OutputFailed(_where_it_failed(output, exc), exc.reason, exc.full) from exc
    obj.progress.done()
    to_stderr = output == "-"  # standard output carries the archive
    if as_json:
        click.echo(json.dumps({**result, "output": output}, indent=2), err=to_stderr)
        return
    click.echo(f"Exported {backup_id} ({plural(result['objects'], 'stored content')}, {human_size(result['bytes'])} of tar) "
               f"to {output}; fingerprint {result['fingerprint']}", err=to_stderr)


SUFFIXES = {".gz": "gzip", ".tgz": "gzip", ".zst": "zstd", ".tzst": "zstd"}


def compression_of(output: str) -> str:
    """The compression an archive's name asks for (``x.tar.gz``: gzip), none for any other."""
    return SUFFIXES.get(Path(output).suffix.lower(), "none") if output != "-" else "none"


def _export(obj, backup_id: str, project_id, output: str, compress: str, force: bool) -> dict:
    if output == "-":
        stdout = click.get_binary_stream("stdout")
        if stdout.isatty():
            raise BadInput("refusing to write an archive to a terminal: give -o FILE, or pipe it")
        result = obj.service.export_backup(backup_id, _Flushed(stdout), project_id, compress=compress)
        return result
    target = Path(output)
    if not target.parent.is_dir():  # said before any work, and by its name
        raise BadInput(f"cannot write {output}: the folder {target.parent} does not exist")
    if _special(target):  # a device or a FIFO (/dev/null, a pipe): written as it is, never beside it
        with open(target, "wb") as fh:
            return obj.service.export_backup(backup_id, _Flushed(fh), project_id, compress=compress)
    if os.path.lexists(target) and not force:
        raise BadInput(f"refusing to replace {output}: it is there; give --force to replace it, or another name")
    return _export_to_file(obj, backup_id, project_id, target, compress)


def _special(path: Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


class _Flushed(io.RawIOBase):
    """``out``, flushed after the last write (so that a write error shows inside the export)."""

    def __init__(self, out):
        self.out = out

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.out.write(data)
        self.out.flush()
        return len(data)


def _export_to_file(obj, backup_id: str, project_id, output: Path, compress: str) -> dict:
    """Written beside ``output`` under a hidden name, renamed into place once complete:
    an archive under the name is always whole. What an export killed outright left
    beside it (its process gone) is removed first, as backups remove their staging."""
    _remove_dead_partials(output)
    partial = output.with_name(f"{PARTIAL.format(name=output.name)}{os.getpid()}")
    try:
        with mutations.create(partial) as fh:
            result = obj.service.export_backup(backup_id, _Flushed(fh), project_id, compress=compress)
            try:
                os.fsync(fh.fileno())
            except OSError as exc:
                raise OutputFailed(f"cannot write the archive: {os_reason(exc)}", os_reason(exc),
                                   space.is_out_of_space(exc)) from exc
        mutations.rename(partial, output)
    finally:
        if os.path.lexists(partial):
            mutations.unlink(partial)
    return result


PARTIAL = ".{name}.partial-"


def _remove_dead_partials(output: Path) -> None:
    prefix = PARTIAL.format(name=output.name)
    for entry in os.scandir(output.parent):
        pid = entry.name.removeprefix(prefix)
        if entry.name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            mutations.unlink(Path(entry.path))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _where_it_failed(output: str, exc: OutputFailed) -> str:
    """One line naming the destination, and for a full disk which disk and what is free."""
    if output == "-":
        where = "to standard output"
    elif _special(Path(output)):
        where = f"to {output}"
    else:
        where = str(output)
    reason = exc.reason
    if exc.full and output != "-" and not _special(Path(output)):
        folder = Path(output).absolute().parent
        reason = f"the disk is full ({human_size(space.free_bytes(folder))} free on {space.mount_point(folder)})"
    return f"cannot write the archive {where}: {reason}; no archive was made (the backup itself is fine)"
