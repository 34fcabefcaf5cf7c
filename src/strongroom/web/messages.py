"""Every outcome in plain words, for flashed messages and the API's ``message`` fields."""

from __future__ import annotations

from strongroom import humanize

LABELS = {"backup": "Backup", "restore": "Restore", "delete": "Delete", "check": "Check"}


def _of(name: str | None) -> str:
    """`` of project “Alpine Atlas”`` (the scope as ``scopes.scope_name`` names it), or nothing."""
    return f" of {name}" if name else ""


def made(summary: dict, name: str | None = None) -> str:
    """``Backup 2026-11-26T10-15-00 of project “Alpine Atlas” made (1,204 files, 3.2 MB new)``,
    then its warnings (``; 1 warning: skipped upload.tmp: it disappeared before it was read``)."""
    text = (f"Backup {summary['id']}{_of(name)} made ({humanize.plural(summary['files'], 'file')}, "
            f"{humanize.size(summary['bytes_added'])} new)")
    warnings = summary.get("warnings") or []
    if warnings:
        more = f" (and {len(warnings) - 3} more)" if len(warnings) > 3 else ""
        text += f"; {humanize.plural(len(warnings), 'warning')}: {'; '.join(warnings[:3])}{more}"
    return text


def restored(result: dict, name: str | None = None) -> str:
    if result.get("unchanged"):
        return (f"Nothing to restore from backup {result['restored']}{_of(name)}: every file and record already "
                "was as in it, so nothing was changed and no pre-restore backup was needed")
    return (f"Backup {result['restored']}{_of(name)} restored ({humanize.plural(result['copied'], 'file')} copied, "
            f"{humanize.count(result['kept'])} unchanged); the state before it is kept as backup "
            f"{result['pre_restore']}{rescued(result)}")


def restored_parts(result: dict) -> str:
    """``Restored texts, site.json from backup … (2 files copied); …; records were not restored``."""
    parts = result.get("parts") or []
    if result.get("unchanged") and parts:
        return (f"Nothing to restore from backup {result['restored']}: {', '.join(parts)} already "
                f"{'was' if len(parts) == 1 else 'were'} as in it, every file, so nothing was changed and no "
                "pre-restore backup was needed")
    if result.get("unchanged"):
        return restored(result)
    what = ", ".join(parts) or "all files"
    if result.get("records_restored"):
        what += f" and {humanize.plural(sum((result.get('records') or {}).values()), 'record')}"
    records = "" if result.get("records_restored") else "; records were not restored (files only)"
    return (f"Restored {what} from backup {result['restored']} ({humanize.plural(result['copied'], 'file')} "
            f"copied); the state before it is kept as backup {result['pre_restore']}{records}{rescued(result)}")


def rescued(result: dict) -> str:
    """What another program wrote during the restore and where it was kept, if anything."""
    found = result.get("rescued") or {}
    if not found.get("count"):
        return ""
    return (f"; {humanize.plural(found['count'], 'file')} written by others during the restore "
            f"kept in {found['place']}")


def deleted(result: dict, name: str | None = None) -> str:
    return f"Backup {result['deleted']}{_of(name)} deleted ({humanize.size(result['bytes_freed'])} freed)"


def checked(report: dict) -> str:
    """``Backup 2026-11-26T10-15-00 checked: whole`` or ``…: 2 problems: file a.txt does not match…``."""
    if report["ok"]:
        return f"Backup {report['id']} checked: every file and record is as it was made"
    if report.get("not_checked"):
        return f"Backup {report['id']} NOT checked: {report['not_checked']}"
    problems = report.get("problems") or []
    return (f"Backup {report['id']} checked: {humanize.plural(len(problems), 'problem')}: "
            f"{'; '.join(problems[:3])}{' …' if len(problems) > 3 else ''}")


def refused(kind: str, reason: str) -> str:
    """``Restore refused: another backup is running (started 10:14 UTC by admin)``."""
    return f"{LABELS.get(kind, kind.title())} refused: {reason}"


def failed(kind: str, error: dict) -> str:
    return f"{LABELS.get(kind, kind.title())} failed: {error['message']}"


def restore_running(journal: dict, running: bool = True, name: str | None = None) -> str:
    """``a restore of the whole site is running (started 10:14 UTC by admin)``; ``name``
    names the scope (``scopes.scope_name``), else the journal's id does."""
    scope = name or ("the whole site" if journal.get("scope") == "site" else f"project {journal.get('project')}")
    started = f"started {humanize.clock(journal['started'])} " if journal.get("started") else ""
    state = "is running" if running else "was cut short"
    return f"a restore of {scope} {state} ({started}by {journal.get('by') or 'someone'})"


def maintenance(journal: dict, running: bool = True, name: str | None = None) -> str:
    """The notice; ``running=False`` when the restore's process died (the journal waits for
    ``strongroom recover``, or the next start of the web app, to put things back)."""
    during = "the site is unavailable" if journal.get("scope") == "site" else "changes are refused"
    if not running:
        return (f"Maintenance: {restore_running(journal, False, name)}; {during} until `strongroom recover` "
                "puts it back as it was.")
    return f"Maintenance: {restore_running(journal, True, name)}; {during} until it is done. Try again in a moment."


def routing(exc, path: str, method: str, api: bool = False) -> str:
    """What routing's refusal says, in our words (not Werkzeug's stock text): a 404 names
    what was asked for, a 405 what the address takes; any other keeps its description."""
    if exc.code == 404:
        hint = "the API's addresses are in its openapi.json" if api else "check the address, or go back to the backups"
        return f"There is nothing at {humanize.escape(path)}: {hint}."
    if exc.code == 405:
        allowed = [m for m in getattr(exc, "valid_methods", None) or [] if m not in ("HEAD", "OPTIONS")]
        takes = f"; it takes {' or '.join(allowed)}" if allowed else ""
        return f"{humanize.escape(path)} does not take {method}{takes}."
    return exc.description or exc.name
