"""Text that lines up (issue 21): the columns of ``status``, ``log`` and a restore's dry
run stand still whatever the width of their values (a project's title beside ``site``,
``restore-part`` beside ``backup``, ``refused`` beside ``ok``), numbers and sizes
right-aligned under their headers."""

import re

from strongroom.cli.common import columns, shown_width
from strongroom.repo.audit import AuditLog


def _starts(line: str, values: list[str]) -> list[int]:
    """Where each of ``values`` starts in ``line``, in order."""
    found, at = [], 0
    for value in values:
        at = line.index(value, at)
        found.append(at)
        at += len(value)
    return found


def test_columns_pad_each_to_its_widest_cell_and_stand_numbers_right():
    lines = columns([["name", "files", "size"], ["a", "1", "852 B"], ["longer name", "1,204", "300.0 KB"],
                     ["\u5927\u5b66", "7", ""]], right=(1, 2), indent="  ")
    assert lines == ["  name         files      size",
                     "  a                1     852 B",
                     "  longer name  1,204  300.0 KB",
                     "  \u5927\u5b66             7"]  # a wide character takes two columns
    assert shown_width("\u5927\u5b66") == 4 and shown_width("e\u0301") == 1


def test_status_values_start_in_one_column_whatever_the_scopes_name(cli, site):
    project = site.project_ids[0]
    assert cli("backup").exit_code == 0
    assert cli("backup", "--project", project).exit_code == 0
    shown = cli("status")
    assert shown.exit_code == 0, shown.output
    rows = shown.output.splitlines()[1:]
    assert any("project “" in row for row in rows) and any(row.startswith("  the whole site ") for row in rows)
    labels = ("the whole site", "project “", "backups", "pool", "free", "restore journal", "lock", "site key")
    starts = {re.search(r"\S  +(?=\S)", row).end() for row in rows if row.lstrip().startswith(labels)}
    assert len(starts) == 1, shown.output


def test_log_columns_stand_still_for_every_operation_scope_and_outcome(cli, config, site):
    project = site.project_ids[0]
    made = cli("backup").output.strip()
    assert cli("backup", "--project", project, "--note", "one project").exit_code == 0
    (config.working_dir / "site.json").write_text("changed")
    assert cli("restore", made, "--path", "site.json", "--yes").exit_code == 0
    assert cli("prune", "--keep-last", "1", "--dry-run").exit_code == 0
    AuditLog(config.backups_dir).append({"at": "2026-01-01T00:00:00+00:00", "operation": "restore", "by": "someone",
                                         "origin": "web", "scope": "site", "outcome": "refused",
                                         "error": "another backup is running"})
    lines = [line for line in cli("log").output.splitlines() if line.strip()]
    assert {"backup", "restore-part", "prune", "restore"} <= {line.split()[3] for line in lines}
    assert any("project “" in line for line in lines) and any(" site " in line for line in lines)
    ids = [re.search(r"  (\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d(\.\d+)?|-)(  |$)", line) for line in lines]
    assert all(ids) and len({match.start(1) for match in ids}) == 1, lines  # the backup column
    outcomes = [re.search(r" (ok|refused) ", line).start() for line in lines]
    assert len(set(outcomes)) == 1, lines
    durations = [re.search(r"\d+\.\d s", line) for line in lines]
    assert len({match.end() for match in durations if match}) == 1, lines  # right-aligned


def test_the_dry_run_stands_counts_and_sizes_right_under_their_headers(cli, config, site):
    made = cli("backup").output.strip()
    live = config.working_dir
    (live / "texts" / "big.bin").write_bytes(b"x" * 300_000)  # to be removed: 300.0 KB
    min((live / "images").iterdir()).unlink()  # to come back: a few KB
    (live / "site.json").write_text("{}")  # to be changed: a few bytes

    shown = cli("restore", made, "--dry-run")

    assert shown.exit_code == 0, shown.output
    lines = shown.output.splitlines()
    header = next(line for line in lines if line.split() == ["added", "changed", "removed", "unchanged"])
    ends = [match.end() for match in re.finditer(r"\S+", header)]
    table = lines[lines.index(header) + 1:]
    table = table[:next(i for i, line in enumerate(table) if line.lstrip()[:2] in ("+ ", "~ ", "- "))]
    assert [line.split()[0] for line in table][:2] == ["files", "size"] and any("records" in line for line in table)
    for line in table:
        cells = list(re.finditer(r"\S+(?: \S+)*", line))[1:]  # after the row's name: its figures
        assert cells and [cell.end() for cell in cells] == ends[:len(cells)], (line, header)
    sizes = next(line for line in table if line.split()[0] == "size")
    assert "300.0 KB" in sizes and " B " in sizes + " "


def test_every_count_a_command_prints_takes_its_plural_and_its_thousands_separator(cli, config):
    """Issue 21's "4,566 objects beside 4465 files", "1 backups": every count in words."""
    made_site = cli("demo", "init", "--projects", "1", "--editions", "200")
    assert made_site.exit_code == 0, made_site.output
    assert ": 1 project, " in made_site.output and " files (" in made_site.output
    made = cli("backup").output.strip()
    shown = {"demo init": made_site.output, "show": cli("show", made).output, "key status": cli("key", "status").output}
    min((config.working_dir / "project").rglob("scene.json")).write_text("changed")
    shown |= {"restore": cli("restore", made, "--yes").output, "status": cli("status").output, "log": cli("log").output}

    assert "signs      1 backup: " in shown["key status"], shown["key status"]
    assert "(1 file copied, 1,10" in shown["restore"], shown["restore"]
    for command, output in shown.items():
        without_times = re.sub(r"\d{4}-\d\d-\d\d[T ]\d\d[-:]\d\d[-:]\d\d(\.\d+)?|[0-9a-f]{16,}|/\S+", "", output)
        assert not re.search(r"(?<![\d,.])\d{4,}(?![\d,])", without_times), (command, output)
