"""The commands an operator and a monitoring probe read: status, log (the audit log).

Both only read: they take no lock and, unlike the other commands, do not first recover
an interrupted restore (a probe must never start a rollback; ``status`` shows it pending).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import click

from strongroom.cli.common import json_option, print_json, project_option
from strongroom.errors import BadInput
from strongroom.humanize import ago, when
from strongroom.humanize import escape as _text
from strongroom.humanize import size as _size

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
    for scope in found["scopes"]:
        click.echo(f"  {_scope_name(scope):<33} {_scope_line(scope, found['checked_at'])}")
    pool = found["pool"]
    click.echo(f"  {'pool':<33} {pool['objects']:,} objects, {_size(pool['bytes'])}")
    click.echo(f"  {'free':<33} {_size(found['free']['bytes'])} on {found['free']['on']}")
    pending = found["restore_pending"]
    click.echo(f"  {'restore journal':<33} " + (
        f"PENDING: restore of {pending['backup']} ({pending['scope']} {pending['project'] or ''}), "
        f"step {pending['step']}; the next command finishes or rolls it back" if pending else "none pending"))
    busy = found["busy"]
    click.echo(f"  {'lock':<33} " + (f"held: {busy.get('operation')} by {_text(str(busy.get('by')))}"
                                     if busy else "free"))
    click.echo(f"  {'site key':<33} {_text(key_line(found['key'], found['scopes']))}")


def key_line(key: dict, scopes: list[dict]) -> str:
    """What ``status`` says of the site key: refused, missing while backups need it,
    never exported (a warning), or its fingerprint and last export."""
    if key["problem"]:
        return f"REFUSED: {key['problem']}"
    if not key["id"]:
        signed = sorted({u["signed_by"] for s in scopes for u in s.get("unopened", []) if u.get("signed_by")})
        if signed:
            return (f"MISSING: backups are signed by {', '.join(signed)}; put the key back "
                    "(`strongroom key import FILE`) or see `strongroom key status`")
        return f"none yet at {key['path']} (made by the first backup)"
    if not key["exported"]:
        return (f"{key['id']} at {key['path']}; WARNING: never exported: keep a copy elsewhere "
                "(`strongroom key export --to FILE`), without it no backup can be checked or restored")
    return f"{key['id']} at {key['path']}; exported {when(key['exported']['at'])}"


def _scope_name(scope: dict) -> str:
    return "site" if scope["scope"] == "site" else f"project {scope['project']}"


def _scope_line(scope: dict, now: str) -> str:
    newest, verified, unopened = scope["newest"], scope["newest_verified"], scope.get("unopened", [])
    if not newest:
        if scope["backups"]:  # never "no backups" when there are: say why none opens
            return f"{scope['backups']} backups, NONE OPENS: {unopened[0]['problem'] if unopened else 'unreadable'}"
        return "no backups"
    line = (f"{scope['backups']} backups; newest {newest['id']} ({ago(newest['created_at'], _at(now))}, "
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
    for entry in entries:
        click.echo(format_entry(entry))


def format_entry(entry: dict) -> str:
    """One entry on one line, user text escaped."""
    scope = "site" if entry.get("scope") == "site" else f"project {entry.get('project') or '?'}"
    figures = [f"{entry['duration']:.1f} s" if isinstance(entry.get("duration"), (int, float)) else "",
               _size(entry["bytes"]) if isinstance(entry.get("bytes"), int) else ""]
    line = (f"{when(entry['at'])}  {_text(str(entry.get('operation'))):<8} {_text(str(entry.get('outcome'))):<6} "
            f"{_text(str(entry.get('origin')))}:{_text(str(entry.get('by')))}  {scope}  {entry.get('backup') or '-'}"
            f"  {'  '.join(f for f in figures if f)}")
    if entry.get("error"):
        line += f"  error: {_text(str(entry['error']))}"
    return line.rstrip()


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
