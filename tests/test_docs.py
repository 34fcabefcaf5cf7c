"""The documentation holds: every relative link in the README and ``docs/`` leads to a file
(and, with an anchor, to a heading of it), every ``strongroom`` command the pages show is
one the CLI's parser accepts, and every command and option of the CLI is in the reference
(``docs/cli.md``), with its own heading and a help text.

Commands are parsed as click parses them, down to the last subcommand, running nothing.
The shell lines are split into commands by ``test_ops.strongroom_commands``, the helper
that checks the schedule recipes. Paths in the pages are examples, not files of this
machine: while parsing, no path option or argument has to exist.
"""

from __future__ import annotations

import itertools
import re
import textwrap
from pathlib import Path

import click
import pytest

from strongroom.cli import main
from strongroom.cli.monitoring import subcommand_words
from test_architecture import LAYER_OF
from test_ops import strongroom_commands

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
REFERENCE = ROOT / "docs" / "cli.md"

FENCE = re.compile(r"^(```|~~~)")
SHELL_BLOCKS = ("", "sh", "shell", "bash", "console", "text")  # code blocks that hold command lines


# -- reading Markdown ----------------------------------------------------------------------


def code_blocks(text: str) -> list[tuple[str, str, list[str]]]:
    """``(info string, the heading it is under, its lines)`` for every fenced code block."""
    blocks, heading, current, info = [], "", None, ""
    for line in text.splitlines():
        if current is None:
            if FENCE.match(line):
                current, info = [], line[3:].strip()
            elif line.startswith("#"):
                heading = line.lstrip("#").strip()
        elif FENCE.match(line):
            blocks.append((info, heading, current))
            current = None
        else:
            current.append(line)
    return blocks


def outside_code_blocks(text: str) -> list[str]:
    """The lines outside fenced code blocks."""
    kept, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            kept.append(line)
    return kept


def prose(text: str) -> str:
    """The text outside code blocks and inline code spans (links there are not links)."""
    return "\n".join(re.sub(r"(`+).*?\1", "", line) for line in outside_code_blocks(text))


def headings(text: str) -> list[str]:
    """The text of every heading (``#`` to ``######``), inline code and all."""
    found = []
    for line in outside_code_blocks(text):
        match = re.match(r"^#{1,6}\s+(.*?)(?:\s+#+)?\s*$", line)
        if match:
            found.append(match.group(1))
    return found


LINK = re.compile(r"!?\[[^\[\]]*(?:\[[^\[\]]*\][^\[\]]*)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HTML_LINK = re.compile(r"<(?:a|img)\s[^>]*?(?:href|src)=\"([^\"]+)\"", re.IGNORECASE)


def link_targets(text: str) -> list[str]:
    body = prose(text)
    return [*LINK.findall(body), *HTML_LINK.findall(body)]


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: its text as rendered, lowercased, every character
    but letters, digits, spaces, ``-`` and ``_`` dropped, spaces turned into ``-``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings; a repeated heading gets ``-1``, ``-2``, … as on GitHub."""
    found: set[str] = set()
    for heading in headings(text):
        slug = github_slug(heading)
        unique = slug
        for n in itertools.count(1):
            if unique not in found:
                break
            unique = f"{slug}-{n}"
        found.add(unique)
    return found


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link of ``page`` that leads nowhere, with why."""
    broken = []
    for target in link_targets(page.read_text()):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
            continue  # http:, https:, mailto: … are not the repository's
        where, _, anchor = target.partition("#")
        file = (page.parent / where).resolve() if where else page
        if not file.is_relative_to(root.resolve()):
            broken.append(f"{target}: outside the repository")
        elif not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and (file.suffix != ".md" or anchor not in anchors(file.read_text())):
            broken.append(f"{target}: no heading #{anchor} in {file.name}")
    return broken


# -- parsing commands ----------------------------------------------------------------------


def every_command(group: click.Group = main, path: tuple[str, ...] = ()):
    """``(path, command)`` for the group and every command below it."""
    yield path, group
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from every_command(command, (*path, name))
        else:
            yield (*path, name), command


@pytest.fixture(autouse=True)
def paths_need_not_exist(monkeypatch):
    """The pages' paths (``/old/data``, ``site.tar.zst``) are examples: parse them as words."""
    for _, command in every_command():
        for param in command.params:
            if isinstance(param.type, click.Path):
                monkeypatch.setattr(param.type, "exists", False)


def parse(args: list[str]) -> tuple[str, ...]:
    """Parse ``strongroom ARGS`` as click would, down to the last subcommand, running
    nothing; return the command's path (``("demo", "init")``). Raise click's error if the
    line is not valid. ``--help`` and ``--version`` are valid wherever click takes them."""
    contexts, path = [], []
    try:
        ctx = main.make_context("strongroom", list(args), resilient_parsing=False)
        contexts.append(ctx)
        command = main
        while isinstance(command, click.Group):
            words = [*subcommand_words(ctx), *ctx.args]
            if not words:
                raise click.UsageError("no command", ctx)
            name, rest = words[0], words[1:]
            command = command.get_command(ctx, name)
            if command is None:
                raise click.UsageError(f"no such command: {name}", ctx)
            path.append(name)
            ctx = command.make_context(name, rest, parent=ctx)
            contexts.append(ctx)
    except click.exceptions.Exit as exc:  # --help, --version: click's answer, exit 0
        if exc.exit_code != 0:
            raise
    finally:
        for ctx in reversed(contexts):
            ctx.close()
    return tuple(path)


def shown_commands(page: Path) -> list[tuple[str, list[str]]]:
    """``(line, args)`` of every ``strongroom`` command in the page's code blocks but the
    reference's synopsis (``synopsis_lines``): shell lines, ``\\`` continued, from the first
    word ``strongroom`` on (a cron line's times or a prompt before it are not the command's)."""
    found = []
    for info, heading, lines in code_blocks(page.read_text()):
        if info not in SHELL_BLOCKS or (page == REFERENCE and heading == "Synopsis"):
            continue
        text = "\n".join(lines).replace("\\\n", " ")
        for line in text.splitlines():
            start = re.search(r"(?:^|(?<=[\s(]))strongroom(?=\s|$)", line)
            if start:
                try:
                    commands = strongroom_commands(line[start.start():])
                except ValueError as exc:  # shlex: an unclosed quote
                    commands = [[f"(not a shell line: {exc})"]]
                found += [(line.strip(), args) for args in commands]
    return found


# -- the reference's synopsis --------------------------------------------------------------

PLACEHOLDERS = {
    "BACKUP_ID": "2026-11-26T04-27-43", "OTHER_ID": "2026-11-27T04-00-00", "ID": "6548a1b2c3d4e5f601234567",
    "N": "3", "TEXT": "a note", "PATH": "texts", "DIR": "/tmp/recovered", "FILE": "site.tar",
    "SOURCE": "/old/data/backups/pilot/2024-03-01T10-00-00", "DATA_DIR": "/old/data", "DATE": "2026-11-20",
    "DURATION": "7d", "URI": "mongodb://127.0.0.1:27017/site", "URL": "https://monitoring.example.org/ping/1",
    "HOST": "127.0.0.1", "MODE": "pilot", "MODES": "pilot,test,prod,custom", "MODEL": "pure3d", "KEY": "0123456789abcdef",
}
PLACEHOLDER = re.compile(r"\A[A-Z][A-Z0-9_]*\Z")


def synopsis_lines(text: str) -> list[str]:
    """The lines of the code block under the reference's "Synopsis" heading."""
    blocks = [lines for _, heading, lines in code_blocks(text) if heading == "Synopsis"]
    assert len(blocks) == 1, "docs/cli.md has one code block under its heading \"Synopsis\""
    return [line.strip() for line in blocks[0] if line.strip()]


def grammar(line: str) -> list:
    """A synopsis line as a tree: a word, ``("optional", [branches])`` for ``[…]`` or
    ``("one of", [branches])`` for ``( … | … )``; a branch is a list of those; ``…`` (more
    of the same) adds nothing to parse. ``A|B`` without spaces is one word: a choice."""
    tokens = line.replace("[", " [ ").replace("]", " ] ").split()
    assert tokens[0] == "strongroom", line

    def sequence(i: int, closing: str | None) -> tuple[list, int]:
        branches, items = [], []
        while i < len(tokens):
            token = tokens[i]
            if token == closing:
                return [*branches, items], i + 1
            if token in ("]", ")"):
                raise AssertionError(f"unbalanced {token!r} in: {line}")
            if token == "|":
                branches, items = [*branches, items], []
            elif token in ("[", "("):
                inner, i = sequence(i + 1, "]" if token == "[" else ")")
                items.append(("optional" if token == "[" else "one of", inner))
                continue
            elif token != "…":
                items.append(token)
            i += 1
        assert closing is None, f"{closing!r} missing in: {line}"
        assert not branches, f"alternatives outside ( ) or [ ] in: {line}"
        return [items], i

    return sequence(1, None)[0][0]


def expansions(tree: list) -> list[list[str]]:
    """Concrete command lines of a synopsis: without any optional part and with every one;
    each alternative in turn; placeholders filled in, a choice ``A|B`` taken as ``A``."""
    groups = []

    def collect(items):
        for item in items:
            if isinstance(item, tuple):
                groups.append(item)
                for branch in item[1]:
                    collect(branch)

    collect(tree)
    choices = [{}] + [{id(group): n} for group in groups for n in range(1, len(group[1]))]

    def expand(items, full: bool, chosen: dict) -> list[str]:
        words = []
        for item in items:
            if isinstance(item, str):
                words.append(fill(item))
            elif item[0] == "one of" or full:
                words += expand(item[1][chosen.get(id(item), 0)], full, chosen)
        return words

    found = [expand(tree, full, chosen) for chosen in choices for full in (False, True)]
    return [words for n, words in enumerate(found) if words not in found[:n]]


def fill(word: str) -> str:
    first = word.split("|")[0] if "|" in word else word
    if PLACEHOLDER.match(first):
        assert first in PLACEHOLDERS, f"unknown placeholder {first}: name it in PLACEHOLDERS with an example"
        return PLACEHOLDERS[first]
    return first


def named_options(line: str) -> list[tuple[str, str | None]]:
    """``(option, the word after it)`` for each option word of a synopsis line."""
    words = [w for w in line.replace("[", " ").replace("]", " ").replace("(", " ").replace(")", " ").split()]
    return [(word, words[i + 1] if i + 1 < len(words) else None)
            for i, word in enumerate(words) if word.startswith("-") and word != "-"]


def documented() -> dict[tuple[str, ...], list[str]]:
    """The synopsis lines of the reference by the command path they parse to."""
    by_path: dict[tuple[str, ...], list[str]] = {}
    for line in synopsis_lines(REFERENCE.read_text()):
        by_path.setdefault(parse(expansions(grammar(line))[0]), []).append(line)
    return by_path


def option_of(path: tuple[str, ...], name: str) -> click.Parameter | None:
    """The option ``name`` of the command at ``path``, or of the groups above it."""
    commands = dict(every_command())
    for depth in range(len(path), -1, -1):
        for param in commands[path[:depth]].params:
            if name in (*param.opts, *param.secondary_opts):
                return param
    return None


# -- links -----------------------------------------------------------------------------------


def test_github_anchors_are_the_headings_lowercased_without_punctuation_spaces_as_hyphens():
    assert github_slug("Monitoring: `--ping-url`") == "monitoring---ping-url"
    assert github_slug("Moving a backup to another site: export and import") == \
        "moving-a-backup-to-another-site-export-and-import"
    assert github_slug("What an import checks, before anything lands") == "what-an-import-checks-before-anything-lands"
    assert github_slug("`strongroom demo init`") == "strongroom-demo-init"
    assert github_slug("Files in [the pool](x.md) and_more") == "files-in-the-pool-and_more"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n### A") == {"a", "a-1", "a-2"}


def test_every_relative_link_in_the_readme_and_the_docs_leads_to_a_file_and_heading_that_exist():
    assert len(PAGES) >= 8  # README, cli, web, operations, development, architecture, guarantees, …
    broken = {page.relative_to(ROOT).as_posix(): broken_links(page) for page in PAGES}
    assert not {page: links for page, links in broken.items() if links}


def test_the_readme_leads_to_every_page_of_the_docs():
    linked = {(ROOT / target.partition("#")[0]).resolve() for target in link_targets((ROOT / "README.md").read_text())}
    assert not [page.name for page in PAGES[1:] if page.resolve() not in linked]


def test_the_link_check_finds_a_missing_file_a_missing_heading_and_a_link_out_of_the_repository(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## A section: with `code`\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[good](docs/other.md) [good too](docs/other.md#a-section-with-code) [here](#top) "
        "[web](https://example.org/x.md) `[in code](nowhere.md)`\n\n# Top\n\n"
        "[gone](docs/missing.md) [no such heading](docs/other.md#a-section) "
        "![picture](docs/missing.png) [out](../../etc/passwd)\n"
        "```\n[in a code block](nowhere.md)\n```\n")
    assert broken_links(page, tmp_path) == [
        "docs/missing.md: no such file", "docs/other.md#a-section: no heading #a-section in other.md",
        "docs/missing.png: no such file", "../../etc/passwd: outside the repository"]


# -- commands the pages show -----------------------------------------------------------------


def test_every_strongroom_command_the_pages_show_is_accepted_by_the_parser():
    shown = {page.relative_to(ROOT).as_posix(): shown_commands(page) for page in PAGES}
    assert len(shown["docs/cli.md"]) >= 30 and len(shown["README.md"]) >= 8
    refused = {}
    for page, commands in shown.items():
        for line, args in commands:
            try:
                parse(args)
            except click.ClickException as exc:
                refused.setdefault(page, []).append(f"{line}: {exc.format_message()}")
    assert not refused


def test_the_command_check_refuses_what_the_parser_refuses():
    for bad in (["bakup"], ["backup", "--reason", "nightly"], ["prune", "--keep-daily"], ["demo", "init", "--size", "huge"],
                ["demo"], ["restore"], ["export", "2026-11-26T04-27-43"], ["list", "--everything"], []):
        with pytest.raises(click.ClickException):
            parse(bad)
    assert parse(["--mode", "prod", "demo", "init", "--seed", "3"]) == ("demo", "init")
    assert parse(["--version"]) == () and parse(["restore", "--help"]) == ("restore",)


def test_the_commands_of_a_page_are_read_from_its_shell_blocks_as_a_shell_would_split_them(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(textwrap.dedent("""\
        `strongroom inline --is-not-read`
        ```
        $ strongroom --mode prod status   # a comment
        0 3 * * *  root  strongroom backup --reason scheduled && strongroom prune --keep-daily 7 --yes
        strongroom export 2026-11-26T04-27-43 -o - \\
            | ssh prod strongroom import -
        STRONGROOM_PING_URL=https://example.org/1 strongroom verify --all
        cp docs/recipes/strongroom.env /etc/strongroom/
        (cd /tmp/old && ./run strongroom --version)
        ```
        ```json
        {"strongroom list": 1}
        ```
        ```mermaid
        a["the strongroom command"]
        ```
        """))
    assert [args for _, args in shown_commands(page)] == [
        ["--mode", "prod", "status"], ["backup", "--reason", "scheduled"], ["prune", "--keep-daily", "7", "--yes"],
        ["export", "2026-11-26T04-27-43", "-o", "-"], ["verify", "--all"], ["--version"]]


def test_a_synopsis_line_expands_into_lines_without_and_with_its_optional_parts_and_each_alternative():
    tree = grammar("strongroom verify ( BACKUP_ID | --all ) [--project ID [--from-site]] [--reason a|b] [--path PATH …]")
    assert expansions(tree) == [
        ["verify", "2026-11-26T04-27-43"],
        ["verify", "2026-11-26T04-27-43", "--project", "6548a1b2c3d4e5f601234567", "--from-site", "--reason", "a",
         "--path", "texts"],
        ["verify", "--all"],
        ["verify", "--all", "--project", "6548a1b2c3d4e5f601234567", "--from-site", "--reason", "a", "--path", "texts"],
    ]
    with pytest.raises(AssertionError):
        grammar("strongroom push BACKUP_ID | --all")


def test_every_synopsis_line_of_the_reference_parses_with_and_without_its_optional_parts():
    lines = synopsis_lines(REFERENCE.read_text())
    assert len(lines) >= 20
    for line in lines:
        for words in expansions(grammar(line)):
            try:
                parse(words)
            except click.ClickException as exc:
                raise AssertionError(f"{line}\n  as {' '.join(words)}: {exc.format_message()}") from None


def test_the_choices_a_synopsis_lists_are_the_options_choices():
    for path, lines in documented().items():
        for line in lines:
            for option, after in named_options(line):
                param = option_of(path, option)
                assert param is not None, f"{line}: no option {option}"
                if after and "|" in after and not all(PLACEHOLDER.match(part) for part in after.split("|")):
                    assert isinstance(param.type, click.Choice), f"{line}: {option} takes no choice"
                    assert set(after.split("|")) == set(param.type.choices), f"{line}: {option} {after}"


# -- every command in the reference ----------------------------------------------------------


def test_every_command_is_in_the_reference_under_its_own_heading_and_has_a_help_text():
    titles = headings(REFERENCE.read_text())
    by_path = documented()
    for path, command in every_command():
        assert (command.help or "").strip(), f"strongroom {' '.join(path)} has no help text"
        if isinstance(command, click.Group):
            continue
        name = " ".join(path)
        assert path in by_path, f"strongroom {name} has no line in the reference's synopsis"
        assert any(f"`strongroom {name}`" in title for title in titles), \
            f"docs/cli.md has no heading `strongroom {name}`"


def test_every_option_of_every_command_is_named_in_the_reference_synopsis():
    by_path = documented()
    missing = []
    for path, command in every_command():
        lines = by_path.get(path, []) if path else [line for lines in by_path.values() for line in lines]
        named = {option for line in lines for option, _ in named_options(line)}
        for param in command.params:
            if isinstance(param, click.Option) and not param.hidden and "--help" not in param.opts \
                    and "--version" not in param.opts and not set(param.opts) & named:
                missing.append(f"strongroom {' '.join(path)} {'/'.join(param.opts)}")
    assert not missing, "options the reference's synopsis does not name: " + ", ".join(missing)


# -- the architecture and the module map -----------------------------------------------------

SRC = ROOT / "src" / "strongroom"


def test_every_module_of_the_package_is_in_the_module_map_of_the_development_page():
    text = (ROOT / "docs" / "development.md").read_text()
    modules = [path.relative_to(SRC).as_posix() for path in sorted(SRC.rglob("*.py"))
               if path.name != "__init__.py" and "__pycache__" not in path.parts]
    assert len(modules) > 80
    missing = [module for module in modules if f"`{module}`" not in text]
    assert not missing, f"docs/development.md's module map lacks {missing}"


def test_the_architecture_diagram_draws_every_layer_of_the_architecture_test_top_down():
    blocks = [lines for info, _, lines in code_blocks((ROOT / "docs" / "architecture.md").read_text())
              if info == "mermaid"]
    assert len(blocks) == 1 and blocks[0][0].startswith("flowchart")
    ranks, drawn = [], set()
    for line in blocks[0]:
        box = re.match(r'\s*\w+\["([^"<]*)', line)  # a box's first line names its packages or modules
        if not box:
            continue
        units = {unit for unit in LAYER_OF if re.search(rf"(?<![\w/]){unit}(/|\.py)", box.group(1))}
        layers = {LAYER_OF[unit] for unit in units}
        assert len(layers) == 1, f"each box names units of one layer: {line.strip()}"
        ranks.append(layers.pop())
        drawn |= units
    assert drawn == set(LAYER_OF), f"not drawn: {sorted(set(LAYER_OF) - drawn)}"
    assert ranks == sorted(ranks, reverse=True), "the boxes go from the highest layer down to the lowest"
