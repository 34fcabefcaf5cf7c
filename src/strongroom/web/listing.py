"""The panel's list of backups as pages: a page of rows, which page, and the filter.

The panel shows ``PER_PAGE`` backups at a time, newest first, and can hide the
``pre-restore`` backups (one more after every restore). Both come from the query string
(``sr_page``, ``sr_hide=pre-restore``; prefixed so they never clash with the host page's
own parameters); anything else there is ignored and a page out of range shows the last.
Pure: no Flask here.
"""

from __future__ import annotations

from collections.abc import Mapping

PER_PAGE = 20
PAGE_PARAMETER = "sr_page"
HIDE_PARAMETER = "sr_hide"
HIDABLE = "pre-restore"


def page_of(backups: list[dict], arguments: Mapping[str, str], per_page: int = PER_PAGE) -> dict:
    """``{"rows", "page", "pages", "total", "shown", "hidden", "hide_pre_restore"}`` for the
    query ``arguments``: ``rows`` the backups of the page asked for, ``hidden`` how many
    the filter left out."""
    hide = arguments.get(HIDE_PARAMETER) == HIDABLE
    kept = [b for b in backups if not (hide and b.get("reason") == HIDABLE)]
    pages = max(1, -(-len(kept) // per_page))
    page = min(max(_number(arguments.get(PAGE_PARAMETER)), 1), pages)
    start = (page - 1) * per_page
    return {"rows": kept[start:start + per_page], "page": page, "pages": pages, "total": len(backups),
            "shown": len(kept), "hidden": len(backups) - len(kept), "hide_pre_restore": hide}


def _number(value: str | None) -> int:
    """A page number from the query string; 1 for anything that is not a small number."""
    return int(value) if isinstance(value, str) and value.isdigit() and len(value) < 7 else 1


def link_arguments(arguments: Mapping[str, str], **changes) -> dict:
    """The panel's own query parameters with ``changes`` (None drops one), the rest kept."""
    kept = {key: value for key, value in arguments.items()}
    for key, value in changes.items():
        if value is None:
            kept.pop(key, None)
        else:
            kept[key] = str(value)
    return kept
