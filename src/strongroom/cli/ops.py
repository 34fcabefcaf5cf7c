"""The commands an operator and a monitoring probe read: status, log (the audit log); and
the operator's one-time move of the backups out of the old layout: migrate-layout.

``status`` and ``log`` only read: they take no lock and, unlike the other commands, do
not first recover an interrupted restore (a probe must never start a rollback;
``status`` shows it pending).
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta

import click

from strongroom.cli.common import columns, json_option, print_json, project_option
from strongroom.errors import BadInput
from strongroom.humanize import ago, plural, when
from strongroom.humanize import escape as _text
from strongroom.humanize import path as _path
from strongroom.humanize import size as _size
from strongroom.ids import PROJECT_ID_RE

DURATION_RE = re.compile(r"\A(\d+)([smhdw])\Z")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@click.command()
@json_option
@click.pass_obj
def status(obj, as_json):
    """Show what to check first: per scope the newest backup and its age, the newest
    verified one; the pool, the free space, a pending restore, a running operation.

    Exit 0 whatever it finds; --json is meant for monitoring probes.

    \b
    Example:
        strongroom status
        strongroom --mode prod status --json | jq '.scopes[0].newest.age_seconds'
    """
    found = obj.service.status()
    if as_json:
        print_json(found)
        return
    click.echo(f"Strongroom status ({found['mode']}), {when(found['checked_at'])}")
    rows = [[_text(scope["name"]), _scope_line(scope, found["checked_at"])] for scope in found["scopes"]]
    shared = " (among the original module's folders: `strongroom migrate-layout` moves them)"
    rows.append(["backups", _path(found["backups_root"]) + (shared if found["shared_layout"] else "")])
    pool = found["pool"]
    rows.append(["pool", (f"{plural(pool['objects'], 'stored content')} (each distinct file content once, "
                          f"however many files and backups hold it), {_size(pool['bytes'])}")])
    rows.append(["free", f"{_size(found['free']['bytes'])} on {found['free']['on']}"])
    pending = found["restore_pending"]
    rows.append(["restore journal", _pending_words(obj.service, pending) if pending else "none pending"])
    busy = found["busy"]
    rows.append(["lock", f"held: {busy.get('operation')} by {_text(str(busy.get('by')))}{_holder_words(busy)}"
                 if busy else "free"])
    for job in found.get("jobs") or []:
        rows.append([f"job {job['id'][:8]}", (f"{job['state']}: {job['kind']} by {_text(str(job['by']))}"
                                              f"{' (' + job['phase'] + ')' if job.get('phase') else ''}"
                                              f"{_holder_words(job)}")])
    rows.append(["site key", _text(key_line(found["key"], found["scopes"]))])
    for line in columns(rows, indent="  "):
        click.echo(line)


def key_line(key: dict, scopes: list[dict]) -> str:
    """What ``status`` says of the site key: refused, missing while backups need it,
    never exported (a warning), or its fingerprint and last export."""
    if key["state"] == "refused":
        return f"REFUSED: {key['problem']}"
    if key["state"] == "missing":
        signed = sorted({u["signed_by"] for s in scopes for u in s.get("unopened", []) if u.get("signed_by")})
        return (f"MISSING: {key['problem'] or 'there is none at ' + key['path']}"
                + (f"; backups are signed by {', '.join(signed)}" if signed else "")
                + "; put the key back (`strongroom key import FILE`) or see `strongroom key status`")
    if key["state"] == "none":
        return f"none yet at {key['path']} (made by the first backup)"
    if not key["exported"]:
        return (f"{key['id']} at {key['path']}; WARNING: never exported: keep a copy elsewhere "
                "(`strongroom key export --to FILE`), without it no backup can be checked or restored")
    return f"{key['id']} at {key['path']}; exported {when(key['exported']['at'])}"


def _holder_words(info: dict) -> str:
    """``, process 123 on web-1, heartbeat 2 s ago``: who holds a lease or runs a job."""
    where = info.get("holder") or info
    words = f", process {where.get('pid')} on {_text(str(where.get('host')))}" if where.get("pid") else ""
    beat = info.get("heartbeat")
    if isinstance(beat, (int, float)):
        words += f", heartbeat {max(0, round(time.time() - beat))} s ago"
    return words


def _pending_words(service, pending: dict) -> str:
    """A restore running now (its process holds the lock), or one that was interrupted."""
    what = f"restore of {pending['backup']} ({_text(_pending_scope(service, pending))}), step {pending['step']}"
    if pending.get("running"):
        return f"running: {what}, by the process holding the lock"
    return f"PENDING: {what}, interrupted; the next command finishes or rolls it back"


def _pending_scope(service, pending: dict) -> str:
    project = pending.get("project")
    if isinstance(project, str) and PROJECT_ID_RE.match(project):
        return service.scope_name(project, with_id=True)
    return "the whole site"


def _scope_line(scope: dict, now: str) -> str:
    newest, verified, unopened = scope["newest"], scope["newest_verified"], scope.get("unopened", [])
    if not newest:
        if scope["backups"]:  # never "no backups" when there are: say why none opens
            return f"{plural(scope['backups'], 'backup')}, NONE OPENS: {unopened[0]['problem'] if unopened else 'unreadable'}"
        return "no backups"
    line = (f"{plural(scope['backups'], 'backup')}; newest {newest['id']} ({ago(newest['created_at'], _at(now))}, "
            f"{newest['reason']})")
    if unopened:
        line += f"; {len(unopened)} newer do NOT open ({unopened[0]['problem']})"
    line += f"; verified {verified['id']}" if verified else "; none verified"
    if scope["failed_verification"]:
        line += f"; FAILED verification: {', '.join(scope['failed_verification'])}"
    return line


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


@click.command("log")
@project_option
@click.option("--since", metavar="DATE|DURATION",
              help="Only entries from then on: a date (2026-11-20, 2026-11-20T10:00, UTC) or a "
                   "duration back from now (30m, 12h, 7d, 2w).")
@json_option
@click.pass_obj
def log_(obj, project_id, since, as_json):
    """Show the audit log: who did what, from where (cli or web), to which backup, and
    how it ended; oldest first.

    \b
    Example:
        strongroom log --since 7d
        strongroom log --project 6548a1b2c3d4e5f601234567 --json
    """
    moment = parse_since(since, datetime.now(UTC)) if since else None
    entries = obj.service.audit_entries(project_id, since=moment)
    if as_json:
        print_json(entries)
        return
    if not entries:
        click.echo("No entries.")
    names = _project_names(obj.service, entries)
    for line in columns([entry_cells(entry, names) for entry in entries], right=RIGHT):
        click.echo(line)


def _project_names(service, entries: list[dict]) -> dict[str, str]:
    """Each project of the entries by its title and id (``scope_name``), asked once each."""
    ids = {e.get("project") for e in entries if isinstance(e.get("project"), str) and PROJECT_ID_RE.match(e["project"])}
    return {project_id: service.scope_name(project_id, with_id=True) for project_id in sorted(ids)}


RIGHT = (6, 7)  # the duration and the size stand right, as numbers do


def entry_cells(entry: dict, names: dict[str, str] | None = None) -> list[str]:
    """One entry as the cells of its line (``columns`` lines them up), user text escaped;
    ``names`` names the projects (else their ids)."""
    project = entry.get("project") or "?"
    scope = "site" if entry.get("scope") == "site" else (names or {}).get(project) or f"project {project}"
    tail = ["dry run"] if entry.get("dry_run") is True else []
    if entry.get("error"):
        tail.append(f"error: {_text(str(entry['error']))}")
    return [when(entry["at"]), _text(str(entry.get("operation"))), _text(str(entry.get("outcome"))),
            f"{_text(str(entry.get('origin')))}:{_text(str(entry.get('by')))}", _text(scope),
            _text(str(entry.get("backup") or "-")),
            f"{entry['duration']:.1f} s" if isinstance(entry.get("duration"), (int, float)) else "",
            _size(entry["bytes"]) if isinstance(entry.get("bytes"), int) else "", "  ".join(tail)]


def parse_since(value: str, now: datetime) -> datetime:
    """``7d`` (back from ``now``) or an ISO date or time (UTC unless it says otherwise)."""
    match = DURATION_RE.match(value.strip())
    if match:
        return now - timedelta(**{UNITS[match[2]]: int(match[1])})
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise BadInput(f"--since takes a date (2026-11-20, 2026-11-20T10:00) or a duration "
                       f"(30m, 12h, 7d, 2w), not {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command("migrate-layout")
@json_option
@click.pass_obj
def migrate_layout(obj, as_json):
    """Move backups made before Strongroom had a root of its own out of the original
    module's folders (backups/<mode>/) into it (default: <data dir>/backups/.strongroom).

    Every backup, the pool and the site key are renamed, not copied, under the lock of
    each run mode: hard links stay whole, no content is read again. The original
    module's own backups stay where they are. Run it again to finish a move that was cut
    short; afterwards, restart any program (a web app) that was using the backups.

    \b
    Example:
        strongroom migrate-layout
    """
    result = obj.service.migrate_layout()
    if as_json:
        print_json(result)
    elif not result["moved"]:
        click.echo(f"Nothing to move: no backups of Strongroom's in the old layout of {_path(result['from'])}; "
                   f"the backups are in {_path(result['to'])}.")
    else:
        click.echo(f"Moved {len(result['moved'])} entries from {_path(result['from'])} to {_path(result['to'])}: "
                   + ", ".join(map(_path, result["moved"][:10])) + (" …" if len(result["moved"]) > 10 else ""))
