"""What the commands share: the common options, JSON output, the confirmation question."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Collection

import click

from strongroom.errors import BadInput, Cancelled
from strongroom.humanize import count, path, size

project_option = click.option(
    "--project", "project_id", metavar="ID", help="Work on one project (its id, 24 hex digits) instead of the whole site."
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
yes_option = click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")


def shown_width(text: str) -> int:
    """How many terminal columns ``text`` takes: a wide character (CJK) two, a combining
    mark or an invisible format character none (user text is escaped first)."""
    return sum(0 if unicodedata.combining(c) or unicodedata.category(c) == "Cf"
               else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def columns(rows: list[list[str]], right: Collection[int] = (), indent: str = "", gap: str = "  ") -> list[str]:
    """``rows`` of cells as lines whose columns line up, whatever the width of each value:
    every column as wide as its widest cell, the columns ``right`` names (numbers, sizes)
    right-aligned under their header; nothing trails a line."""
    widths = [max((shown_width(row[i]) for row in rows if i < len(row)), default=0)
              for i in range(max((len(row) for row in rows), default=0))]
    lines = []
    for row in rows:
        cells = [" " * (widths[i] - shown_width(cell)) + cell if i in right else
                 cell + " " * (widths[i] - shown_width(cell)) for i, cell in enumerate(row)]
        lines.append((indent + gap.join(cells)).rstrip())
    return lines


CHANGES = (("added", "+"), ("changed", "~"), ("removed", "-"))


def change_lines(report: dict, listed: int | None = 20) -> list[str]:
    """What a preview or a diff counts, as a table whose counts and sizes stand right
    under their headers (added, changed, removed, unchanged): files and their size, the
    folders and links when any of them changes, each collection's records; then up to
    ``listed`` paths of each change (None: all the report holds), marked ``+``, ``~``, ``-``."""
    files = report["files"]
    rows = [["", *(kind for kind, _ in CHANGES), "unchanged"],
            ["files", *(count(files[kind]["count"]) for kind, _ in CHANGES), count(files["unchanged"])],
            ["size", *(size(files[kind]["bytes"]) for kind, _ in CHANGES)]]
    for word in ("folders", "links"):  # counted apart from files (``manifest.counted_as``)
        counts = report.get(word) or {}
        if any(counts.get(kind, {}).get("count") for kind, _ in CHANGES):
            rows.append([word, *(count(counts[kind]["count"]) for kind, _ in CHANGES), count(counts["unchanged"])])
    for name, counts in report["records"].items():
        rows.append([f"records {name}", *(count(counts[kind]) for kind, _ in CHANGES), count(counts["unchanged"])])
    lines = columns(rows, right=range(1, 5), indent="  ")
    for kind, mark in CHANGES:
        shown = files[kind]["paths"][:listed]
        lines += [f"  {mark} {path(name)}" for name in shown]
        if files[kind]["count"] > len(shown):
            lines.append(f"  {mark} … and {count(files[kind]['count'] - len(shown))} more {kind}")
    return lines


def print_json(value) -> None:
    click.echo(json.dumps(value, indent=2, default=str))


def confirm(yes: bool, question: str) -> None:
    """Go on with ``--yes``, or when the user at the terminal says yes; refuse otherwise."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise BadInput("refusing without confirmation: no terminal to ask on; pass --yes")
    if not click.confirm(question, default=False):
        raise Cancelled("cancelled: nothing was changed")


def destructive_command(func):
    """A command that changes a backup's scope or the backup itself: id, scope, --yes, --json."""
    for decorate in reversed((click.command(), click.argument("backup_id"), project_option, yes_option,
                              json_option, click.pass_obj)):
        func = decorate(func)
    return func
