"""Operations: the shipped schedule recipes hold only valid commands, ``--ping-url`` reports
each run to monitoring without ever changing its outcome, and ``status`` says what an
operator checks first."""

from __future__ import annotations

import configparser
import importlib.util
import json
import os
import shlex
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import click
import pytest
import yaml

from strongroom.cli import main
from strongroom.cli.monitoring import subcommand_words
from strongroom.cli.ping import ping_url
from strongroom.repo.journal import Journal
from web_support import prepared, web_data  # noqa: F401

RECIPES = Path(__file__).resolve().parent.parent / "docs" / "recipes"
CONTROL = {"&&", "||", ";", "|", "(", ")", "{", "}"}
SHELL_WORDS = {"if", "then", "else", "elif", "fi", "exec", "!"}


# -- the recipes ---------------------------------------------------------------------------


def strongroom_commands(shell: str) -> list[list[str]]:
    """The arguments of every ``strongroom`` command in a shell line (``sh -c`` followed)."""
    lexer = shlex.shlex(shell, posix=True, punctuation_chars=";&|(){}")
    lexer.whitespace_split = True
    found, simple = [], []
    for token in [*lexer, ";"]:
        if token in CONTROL:
            found += _command(simple)
            simple = []
        else:
            simple.append(token)
    return found


def _command(words: list[str]) -> list[list[str]]:
    while words and (words[0] in SHELL_WORDS or ("=" in words[0] and not words[0].startswith("-"))):
        words = words[1:]  # shell keywords and VAR=value assignments before the command
    if not words:
        return []
    name = os.path.basename(words[0].lstrip("-@+!:"))
    if name in ("sh", "bash") and "-c" in words[1:]:
        return strongroom_commands(words[words.index("-c") + 1])
    return [words[1:]] if name == "strongroom" else []


def check_invocation(args: list[str]) -> None:
    """Parse ``strongroom ARGS`` as click would, running nothing; raise if it is not valid."""
    with main.make_context("strongroom", list(args), resilient_parsing=False) as ctx:
        words = [*subcommand_words(ctx), *ctx.args]
        if not words:
            raise click.UsageError("no command")
        name, rest = words[0], words[1:]
        command = main.get_command(ctx, name)
        if command is None:
            raise click.UsageError(f"no such command: {name}")
        command.make_context(name, rest, parent=ctx).close()


def systemd_commands(path: Path) -> list[list[str]]:
    class MultiValues(dict):  # systemd allows ExecStartPost= (and others) several times
        def __setitem__(self, key, value):
            if key in self and isinstance(value, list) and isinstance(self[key], list):
                self[key].extend(value)
            else:
                super().__setitem__(key, value)

    parser = configparser.RawConfigParser(dict_type=MultiValues, strict=False, interpolation=None,
                                          empty_lines_in_values=False)
    parser.optionxform = str
    parser.read(path)
    found = []
    for section in parser.sections():
        for key, value in parser.items(section):
            if key.startswith("Exec"):
                for line in value.splitlines():  # the key's values, one a line
                    found += strongroom_commands(line)
    return found


def cronjob_commands(path: Path) -> list[list[str]]:
    found = []
    for document in yaml.safe_load_all(path.read_text()):
        if document.get("kind") != "CronJob":
            continue
        for container in document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]:
            argv = [*container.get("command", []), *container.get("args", [])]
            found += strongroom_commands(shlex.join(argv))
    return found


def cron_commands(path: Path) -> list[list[str]]:
    found = []
    for line in path.read_text().splitlines():
        fields = line.split(None, 6)
        if line.startswith("#") or len(fields) < 7 or "=" in fields[0]:
            continue
        found += strongroom_commands(fields[6])  # minute hour day month weekday user command
    return found


def test_every_strongroom_command_in_the_shipped_recipes_is_a_valid_invocation():
    units = sorted(RECIPES.glob("*.service"))
    found = {path.name: systemd_commands(path) for path in units}
    found["strongroom-cronjob.yaml"] = cronjob_commands(RECIPES / "strongroom-cronjob.yaml")
    found["strongroom.cron"] = cron_commands(RECIPES / "strongroom.cron")
    for name, commands in found.items():
        for args in commands:
            check_invocation(args)  # raises a click error if not
    every = [args[0] for commands in found.values() for args in commands]
    assert {"backup", "prune", "verify", "push"} <= set(every)
    for name in ("strongroom-cronjob.yaml", "strongroom.cron", "strongroom-backup.service"):
        assert [args[0] for args in found[name] if args[0] != "verify"] == ["backup", "prune", "push"], name
        assert ["backup", "--reason", "scheduled"] in found[name]


def test_the_recipe_check_rejects_what_is_not_a_valid_invocation():
    for bad in (["bakup"], ["backup", "--reason", "nightly"], ["prune", "--keep-daily"], ["verify", "--everything"]):
        with pytest.raises(click.ClickException):
            check_invocation(bad)
    assert strongroom_commands("/bin/sh -c 'a && exec /usr/bin/strongroom list --json'") == [["list", "--json"]]


def test_the_systemd_timers_say_when(tmp_path):
    for name, when in (("strongroom-backup.timer", "03:00"), ("strongroom-verify.timer", "Sun")):
        parser = configparser.RawConfigParser(strict=False)
        parser.read(RECIPES / name)
        assert when in parser["Timer"]["OnCalendar"] and parser["Install"]["WantedBy"] == "timers.target"


# -- --ping-url ----------------------------------------------------------------------------


class Monitor:
    """A healthchecks-style server on loopback that records the pings it gets."""

    def __init__(self, status: int = 200):
        self.pings: list[tuple[str, str, str]] = []
        monitor = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                monitor.pings.append(("POST", self.path, self.rfile.read(length).decode()))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"OK")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/ping/abc-123"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def paths(self) -> list[str]:
        return [path for _, path, _ in self.pings]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def monitor():
    found = Monitor()
    yield found
    found.close()


def test_a_scheduled_backup_pings_start_then_success(cli, site, monitor):
    result = cli("--ping-url", monitor.url, "backup", "--reason", "scheduled")
    assert result.exit_code == 0, result.output
    assert monitor.paths() == ["/ping/abc-123/start", "/ping/abc-123"]
    assert monitor.pings[1][2] == "strongroom backup: ok"


def test_a_failed_verification_pings_fail_with_the_one_line_outcome_and_keeps_exit_5(cli, config, site, monitor):
    made = cli("backup").output.strip()
    damaged = next((config.backups_dir / "site" / made / "db" / "json").iterdir())
    os.chmod(damaged, 0o600)
    damaged.write_text("[]")
    result = cli("--ping-url", monitor.url, "verify", "--all")
    assert result.exit_code == 5
    assert monitor.paths() == ["/ping/abc-123/start", "/ping/abc-123/fail"]
    body = monitor.pings[1][2]
    assert body.startswith("strongroom verify: exit 5: verification failed for " + made) and "\n" not in body


def test_a_refused_command_pings_fail_with_its_error_line(cli, site, monitor):
    result = cli("--ping-url", monitor.url, "prune", "--yes")  # a policy that keeps nothing
    assert result.exit_code == 2
    assert monitor.paths()[-1] == "/ping/abc-123/fail" and "exit 2: " in monitor.pings[-1][2]


def test_the_ping_url_comes_from_the_environment_too(config, site, monitor, cli_process):
    result = cli_process("backup", env={"STRONGROOM_PING_URL": monitor.url})
    assert result.returncode == 0, result.stderr
    assert monitor.paths() == ["/ping/abc-123/start", "/ping/abc-123"]


def test_commands_a_schedule_does_not_run_and_help_ping_nothing(cli, site, monitor):
    for args in (["list"], ["status"], ["backup", "--help"]):
        assert cli("--ping-url", monitor.url, *args).exit_code == 0
    assert monitor.pings == []


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/ping/x"


def test_an_unreachable_monitor_warns_once_and_never_changes_the_outcome(config, site, cli_process):
    result = cli_process("--ping-url", _closed_port_url(), "backup")
    assert result.returncode == 0
    warnings = result.stderr.strip().splitlines()
    assert len(warnings) == 1 and warnings[0].startswith("strongroom: warning: could not report to the monitoring")
    assert len(json.loads(cli_process("list", "--json").stdout)) == 1


def test_a_monitor_answering_errors_changes_no_exit_code(cli, site):
    failing = Monitor(status=500)
    try:
        assert cli("--ping-url", failing.url, "backup").exit_code == 0
        assert cli("--ping-url", failing.url, "verify", "2020-01-01T00-00-00").exit_code == 3
    finally:
        failing.close()
    assert [path for path in failing.paths()] == ["/ping/abc-123/start", "/ping/abc-123",
                                                  "/ping/abc-123/start", "/ping/abc-123/fail"]


def test_only_http_ping_urls_are_accepted(cli, site):
    for bad in ("file:///etc/passwd", "ftp://host/x", "no-scheme"):
        result = cli("--ping-url", bad, "backup")
        assert result.exit_code == 2 and "http://" in result.output


def test_ping_urls_follow_the_healthchecks_convention():
    assert ping_url("https://hc.test/ping/u/", "start") == "https://hc.test/ping/u/start"
    assert ping_url("https://hc.test/ping/u", "success") == "https://hc.test/ping/u"
    assert ping_url("https://hc.test/ping/u?rid=1", "fail") == "https://hc.test/ping/u/fail?rid=1"


# -- status --------------------------------------------------------------------------------


def status(cli) -> dict:
    result = cli("status", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_status_of_a_site_without_backups_says_so_and_exits_0(cli, site):
    found = status(cli)
    assert [(s["scope"], s["backups"], s["newest"]) for s in found["scopes"]] == [("site", 0, None)]
    assert found["pool"] == {"objects": 0, "bytes": 0} and found["restore_pending"] is None
    assert "no backups" in cli("status").output


def test_status_gives_per_scope_the_newest_backup_its_age_and_the_newest_verified(cli, config, site):
    project = site.project_ids[1]
    first = cli("backup").output.strip()
    assert cli("verify", first).exit_code == 0
    made_project = cli("backup", "--project", project).output.strip()
    second = json.loads(cli("backup", "--reason", "scheduled", "--json").output)["id"]
    found = status(cli)
    site_status, project_status = found["scopes"]
    assert (site_status["backups"], site_status["newest"]["id"], site_status["newest"]["reason"]) == (
        2, second, "scheduled")
    assert 0 <= site_status["newest"]["age_seconds"] < 120
    assert site_status["newest_verified"]["id"] == first  # the newer one was never verified
    assert (project_status["project"], project_status["newest"]["id"]) == (project, made_project)
    assert project_status["newest_verified"] is None
    objects = [p for p in config.pool_dir.glob("??/*") if p.is_file()]
    assert found["pool"] == {"objects": len(objects), "bytes": sum(p.stat().st_size for p in objects)}
    assert found["free"]["bytes"] > 0 and found["busy"] is None
    text = cli("status").output
    assert f"newest {second}" in text and f"verified {first}" in text and "project “" in text and f"({project})" in text


def test_status_names_the_backups_whose_last_verification_failed(cli, config, site):
    made = cli("backup").output.strip()
    assert cli("verify", made).exit_code == 0
    damaged = next((config.backups_dir / "site" / made / "db" / "json").iterdir())
    os.chmod(damaged, 0o600)
    damaged.write_text("[]")
    assert cli("verify", made).exit_code == 5
    site_status = status(cli)["scopes"][0]
    assert site_status["failed_verification"] == [made] and site_status["newest_verified"] is None
    assert "FAILED verification" in cli("status").output


def test_status_shows_a_pending_restore_journal_and_does_not_recover_it(cli, config, site):
    made = cli("backup").output.strip()
    journal = Journal(config.backups_dir / ".journal.json")
    journal.start(operation="restore", scope="site", project=None, backup=made, pre_restore=made, step="files")
    found = status(cli)
    assert found["restore_pending"]["backup"] == made and found["restore_pending"]["step"] == "files"
    assert "PENDING" in cli("status").output
    assert journal.read() is not None  # a probe never starts a rollback


def test_the_panel_shows_the_status_of_its_scope_to_those_allowed(web_data):
    from strongroom.web import create_app
    from test_audit import _panel
    from test_web_security import signed_in

    config = web_data.config("pilot")
    app = create_app(config, secret_key="test")
    client = app.test_client()
    signed_in(client, "org1")
    project_a = _panel(client, f"/projects/{web_data.project_a}")
    assert 'id="sr-status"' in project_a and web_data.backups["pilot"]["A"] in project_a
    assert f'data-scope="{web_data.project_b}"' not in project_a and 'data-scope="site"' not in project_a
    assert "Pool:" not in project_a  # the data dir's figures are for the site's panel
    signed_in(client, "admin")
    site = _panel(client, "/admin")
    for scope in ("site", web_data.project_a, web_data.project_b):
        assert f'data-scope="{scope}"' in site
    assert "Pool:" in site and "none pending" in site


def test_the_verification_record_is_private_and_a_full_record_never_fails_verify(cli, config, site):
    made = cli("backup").output.strip()
    assert cli("verify", made).exit_code == 0
    record = config.backups_dir / "site" / made / "checked.json"
    assert record.stat().st_mode & 0o077 == 0
    record.unlink()
    record.mkdir()  # cannot be replaced by a file: the outcome stands all the same
    result = cli("verify", made)
    assert result.exit_code == 0 and result.output.splitlines()[0] == f"{made}: ok"
    assert "could not be kept" in result.output  # said, not hidden
    assert status(cli)["scopes"][0]["newest_verified"] is None  # unreadable: "never verified"


def test_the_web_recipe_runs_two_replicas_under_gunicorn_on_the_cronjobs_shared_volume():
    documents = list(yaml.safe_load_all((RECIPES / "strongroom-web.yaml").read_text()))
    deployment = next(d for d in documents if d["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    assert deployment["spec"]["selector"]["matchLabels"] == deployment["spec"]["template"]["metadata"]["labels"]
    (container,) = pod["containers"]
    argv = [*container["command"], *container["args"]]
    assert argv[0] == "gunicorn" and argv[-1] == "strongroom.web.wsgi:app"
    assert int(argv[argv.index("--workers") + 1]) >= 2 and int(argv[argv.index("--threads") + 1]) >= 2
    assert importlib.util.find_spec("strongroom.web.wsgi") is not None  # the module gunicorn loads
    cron_claims = {v["persistentVolumeClaim"]["claimName"]
                   for d in yaml.safe_load_all((RECIPES / "strongroom-cronjob.yaml").read_text())
                   if d["kind"] == "CronJob"
                   for v in d["spec"]["jobTemplate"]["spec"]["template"]["spec"]["volumes"]}
    assert {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"]} == cron_claims  # one shared volume
    env = {e["name"]: float(e["value"]) for e in container["env"]}
    assert 0 < 2 * env["STRONGROOM_LEASE_HEARTBEAT"] <= env["STRONGROOM_LEASE_EXPIRY"]
    assert {"configMapRef": {"name": "strongroom"}} in container["envFrom"]
    service = next(d for d in documents if d["kind"] == "Service")
    assert service["spec"]["selector"] == deployment["spec"]["template"]["metadata"]["labels"]


def test_the_site_panel_tells_a_restore_running_now_from_an_interrupted_one_and_counts_in_words(web_data, monkeypatch):
    """Issue 21: the panel said "pending" for a restore running now, and "objects" where
    every other face says stored contents."""
    from strongroom.service import Strongroom
    from strongroom.web import create_app
    from test_audit import _panel
    from test_web_security import signed_in

    client = create_app(web_data.config("pilot"), secret_key="test").test_client()
    signed_in(client, "admin")
    status = Strongroom.status
    for running, words in ((True, "a restore of B1 is running (step files)"),
                           (False, "PENDING: a restore of B1 was interrupted at step files; the next operation")):
        pending = {"backup": "B1", "scope": "project", "project": web_data.project_a, "step": "files",
                   "started": None, "running": running}
        monkeypatch.setattr(Strongroom, "status", lambda self, pending=pending: {**status(self), "restore_pending": pending})
        site = _panel(client, "/admin")
        assert words in site, site
    assert " stored contents (each distinct file content once)" in site and " objects," not in site
