"""Every outcome in plain words, for flashed messages and the API's ``message`` fields."""

from __future__ import annotations

from .. import humanize

LABELS = {"backup": "Backup", "restore": "Restore", "delete": "Delete"}


def made(summary: dict) -> str:
    """``Backup 2026-11-26T10-15-00 made (1,204 files, 3.2 MB new)``, then its warnings
    (``; 1 warning: skipped upload.tmp: it disappeared before it was read``)."""
    text = (f"Backup {summary['id']} made ({humanize.plural(summary['files'], 'file')}, "
            f"{humanize.size(summary['bytes_added'])} new)")
    warnings = summary.get("warnings") or []
    if warnings:
        more = f" (and {len(warnings) - 3} more)" if len(warnings) > 3 else ""
        text += f"; {humanize.plural(len(warnings), 'warning')}: {'; '.join(warnings[:3])}{more}"
    return text


def restored(result: dict) -> str:
    return (f"Backup {result['restored']} restored ({humanize.plural(result['copied'], 'file')} copied, "
            f"{humanize.count(result['kept'])} unchanged); the state before it is kept as backup "
            f"{result['pre_restore']}")


def deleted(result: dict) -> str:
    return f"Backup {result['deleted']} deleted ({humanize.size(result['bytes_freed'])} freed)"


def refused(kind: str, reason: str) -> str:
    """``Restore refused: another backup is running (started 10:14 UTC by admin)``."""
    return f"{LABELS.get(kind, kind.title())} refused: {reason}"


def failed(kind: str, error: dict) -> str:
    return f"{LABELS.get(kind, kind.title())} failed: {error['message']}"


def maintenance(journal: dict) -> str:
    scope = "the whole site" if journal.get("scope") == "site" else f"project {journal.get('project')}"
    started = f"started {humanize.clock(journal['started'])} " if journal.get("started") else ""
    return (f"Maintenance: a restore of {scope} is running ({started}by {journal.get('by') or 'someone'}); "
            "changes are refused until it is done. Try again in a moment.")
