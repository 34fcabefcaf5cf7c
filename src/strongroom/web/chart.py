"""A scope's backups over time, drawn here as inline SVG: no script, no library.

Two small charts side by side: per day, how many backups were made (bars) and the size
of the files they keep (the largest backup of the day, a line); per backup, oldest to
newest, how many bytes it added to the store. Every bar and point carries a ``<title>``
(its figures in words), so a pointer or a screen reader gets the numbers, and the
figure has a one-line summary as its label.
"""

from __future__ import annotations

from collections import OrderedDict

from markupsafe import Markup, escape

from strongroom import humanize

WIDTH, HEIGHT, PAD = 320, 96, 4
MAX_BARS = 60  # the newest ones: a bar stays at least 5 px wide
MAX_BAR = 24  # px: one backup is a bar, not a wall


def by_day(backups: list[dict]) -> list[dict]:
    """``[{"day", "count", "bytes"}]``, oldest day first: ``bytes`` is the size of the
    files of the day's largest backup (what one backup of that day keeps)."""
    days: OrderedDict[str, dict] = OrderedDict()
    for b in sorted(backups, key=lambda b: (b["started_at"], b["id"])):
        day = days.setdefault(b["started_at"][:10], {"day": b["started_at"][:10], "count": 0, "bytes": 0})
        day["count"] += 1
        day["bytes"] = max(day["bytes"], b["bytes"])
    return list(days.values())[-MAX_BARS:]


def _bars(values: list[int], titles: list[str], css: str) -> list[str]:
    top = max(values) or 1
    step = (WIDTH - 2 * PAD) / len(values)
    shapes = []
    for n, (value, title) in enumerate(zip(values, titles, strict=True)):
        height = 0 if value == 0 else max(1.0, (HEIGHT - 2 * PAD) * value / top)
        width = min(step * 0.7, MAX_BAR)
        shapes.append(f'<rect class="{css}" x="{PAD + n * step + (step - width) / 2:.1f}" y="{HEIGHT - PAD - height:.1f}" '
                      f'width="{width:.1f}" height="{height:.1f}"><title>{escape(title)}</title></rect>')
    return shapes


def _line(values: list[int], titles: list[str], css: str) -> list[str]:
    top = max(values) or 1
    step = (WIDTH - 2 * PAD) / len(values)
    points = [(PAD + (n + 0.5) * step, HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top) for n, v in enumerate(values)]
    shapes = [f'<polyline class="{css}" fill="none" points="{" ".join(f"{x:.1f},{y:.1f}" for x, y in points)}"/>']
    shapes += [f'<circle class="{css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"><title>{escape(t)}</title></circle>'
               for (x, y), t in zip(points, titles, strict=True)]
    return shapes


def _svg(chart_id: str, label: str, shapes: list[str]) -> str:
    return (f'<svg class="sr-chart-svg" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-label="{escape(label)}" preserveAspectRatio="none">'
            f'<line class="sr-chart-axis" x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}"/>'
            + "".join(shapes) + "</svg>")


def backups_chart(backups: list[dict]) -> Markup:
    """The figure for a scope's backups (summaries, any order), or nothing when there are none."""
    if not backups:
        return Markup("")
    days = by_day(backups)
    day_words = [f"{d['day']}: {humanize.plural(d['count'], 'backup')}, {humanize.size(d['bytes'])} of files"
                 for d in days]
    per_day = _bars([d["count"] for d in days], day_words, "sr-bar-count")
    per_day += _line([d["bytes"] for d in days], day_words, "sr-line-size")
    in_order = sorted(backups, key=lambda b: (b["started_at"], b["id"]))
    newest = in_order[-MAX_BARS:]
    added = _bars([b["bytes_added"] for b in newest],
                  [f"{b['id']}: {humanize.size(b['bytes_added'])} new, {humanize.size(b['bytes'])} of files"
                   for b in newest], "sr-bar-added")
    total_added = sum(b["bytes_added"] for b in backups)
    day_label = (f"{humanize.plural(len(backups), 'backup')} over {humanize.plural(len(days), 'day')}; "
                 f"the newest keeps {humanize.size(in_order[-1]['bytes'])} of files")
    added_label = f"new bytes per backup, {humanize.size(total_added)} in all"
    return Markup(
        '<figure class="sr-chart" id="sr-chart">'
        f'<div class="sr-chart-part"><figcaption>Backups per day <span class="sr-key sr-key-count">count</span> '
        f'<span class="sr-key sr-key-size">size of files</span></figcaption>{_svg("sr-chart-days", day_label, per_day)}'
        f'<p class="sr-chart-words">{escape(day_label)}</p></div>'
        f'<div class="sr-chart-part"><figcaption>New in the store, per backup</figcaption>'
        f'{_svg("sr-chart-added", added_label, added)}<p class="sr-chart-words">{escape(added_label)}</p></div>'
        "</figure>")
