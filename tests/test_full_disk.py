"""Nothing is lost when the disk runs out: backups and restores on a real, small, full file system.

Each test mounts a tmpfs of a few MB (we are root; skipped, with the reason, where
mounting is refused), copies a prepared data dir into it (the demo site with a few MB
of files and of records added, a site and a project backup, then files and records
changed), fills the file system until only ``free`` bytes are left, and runs one
command in a real CLI process. Whatever the outcome, the scope is exactly as before or
exactly as the backup, the command's exit code and its one line say which, no journal
is left, and ``list`` works on the still-full disk. A sample of fill levels by default,
all of them with ``--slow``.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from bson import ObjectId

from faults import State, count_points, crash_at, fresh_service
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.restore import preflight
from strongroom.scopes import Scope, scope_dir

KB, MB = 1 << 10, 1 << 20
FS_SIZE = 40 * MB
# Free space left: fixed amounts, and amounts just above the pre-flight estimate, where
# the estimate lets the operation start and the disk may still run out on the way.
LEVELS = {"fits": 24 * MB, "estimate+2MB": "+2048", "estimate+1MB": "+1024", "estimate+512KB": "+512",
          "estimate+128KB": "+128", "estimate": "+0", **{f"{n}MB": n * MB for n in (12, 8, 5, 1)},
          "200KB": 200 * KB, "40KB": 40 * KB, "4KB": 4 * KB}
SAMPLED = ("fits", "estimate+1MB", "estimate+128KB", "5MB", "4KB")


class Template:
    """A data dir to copy: backups taken, then the files and records changed."""

    def __init__(self, root: Path):
        self.config = Config(data_dir=root / "template")
        database = open_database(self.config)
        site = create_demo_site(self.config, database, projects=2, editions=2, seed=3)
        self.project_ids = list(site.project_ids)
        self.project = self.project_ids[0]
        project_dir = scope_dir(self.config, Scope.project(self.project))
        rng = random.Random(5)
        self._bulk(database, project_dir, rng)
        service = fresh_service(self.config)
        self.backups = {"site": service.make_backup(note="site")["id"],
                        "project": service.make_backup(self.project, note="project")["id"]}
        self.at_backup = State(self.config, self.project_ids)
        self._bulk(database, project_dir, rng)  # new content: a restore must copy it all back
        (self.config.working_dir / "site.json").write_text('{"changed": true}')
        self.changed = State(self.config, self.project_ids)

    def _bulk(self, database, project_dir: Path, rng: random.Random) -> None:
        """A few MB of files in the project and ~1 MB of records, in the project too."""
        for i in range(3):
            (project_dir / f"bulk{i}.bin").write_bytes(rng.randbytes(MB))
        database.edition.delete_many({"bulk": True})
        database.edition.insert_many([{"projectId": ObjectId(self.project), "bulk": True, "n": i,
                                       "text": rng.randbytes(300).hex()} for i in range(1500)])


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return Template(tmp_path_factory.mktemp("full-disk"))


@pytest.fixture
def small_fs(tmpfs):
    """A tmpfs of FS_SIZE mounted for the test, always unmounted after."""
    return tmpfs(FS_SIZE)


def fill(mount: Path, free: int) -> Path:
    """Leave ``free`` bytes free on the file system (as near as its blocks allow)."""
    filler = mount / "filler"
    st = os.statvfs(mount)
    available = st.f_bavail * st.f_frsize
    if available > free:
        with open(filler, "wb") as fh:
            os.posix_fallocate(fh.fileno(), 0, available - free)
    return filler


def strongroom(config: Config, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                          check=False, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def run_full(template: Template, mount: Path, free: int, *args: str):
    """Copy the template into the small file system, fill it, run the command; return
    (config, state before, result, list's result on the still-full disk)."""
    subprocess.run(["cp", "-a", str(template.config.data_dir), str(mount / "data")], check=True)
    config = Config(data_dir=mount / "data")
    before = State(config, template.project_ids)
    if isinstance(free, str):  # KB above what the pre-flight check estimates
        free = estimate(config, args) + int(free) * KB
    filler = fill(mount, free)
    result = strongroom(config, *args)
    listed = strongroom(config, "list", "--json")
    journal_left = (config.backups_dir / ".journal.json").exists()
    filler.unlink(missing_ok=True)
    return config, before, result, listed, journal_left


def pool_objects(config: Config) -> list[str]:
    return sorted(p.name for p in config.pool_dir.rglob("*") if not p.is_dir())


def estimate(config: Config, args: tuple[str, ...]) -> int:
    """What the pre-flight check estimates the command needs."""
    service = fresh_service(config)
    project = args[args.index("--project") + 1] if "--project" in args else None
    scope = Scope.of(project)
    latest = service.store.latest(scope)
    if args[0] == "backup":
        return preflight.backup_needs(service, scope, latest)
    path, manifest = service.store.open(scope, args[1])
    return preflight.restore_needs(service, scope, path, manifest, latest)


def assert_one_line(result: subprocess.CompletedProcess) -> None:
    if result.returncode != 0:
        assert "Traceback" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert result.stderr.startswith("strongroom: error: "), result.stderr


def levels(request) -> list[str]:
    return list(LEVELS) if request.config.getoption("--slow") else list(SAMPLED)


@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_a_restore_on_a_full_disk_ends_as_before_or_as_the_backup_and_says_which(
        template, small_fs, scope_kind, request):
    project = None if scope_kind == "site" else template.project
    scope = Scope.of(project)
    outcomes = {}
    for level in levels(request):
        args = ["restore", template.backups[scope_kind], "--yes"] + (["--project", project] if project else [])
        config, before, result, listed, journal_left = run_full(template, small_fs, LEVELS[level], *args)
        assert_one_line(result)
        after = State(config, template.project_ids)
        if result.returncode == 0:
            assert after.scope(scope) == template.at_backup.scope(scope), level
            assert "Restored" in result.stdout
        else:
            assert after.scope(scope) == before.scope(scope), (level, result.stderr)
            assert "as it was" in result.stderr or "nothing was changed" in result.stderr, result.stderr
        assert not journal_left, (level, result.stderr)
        assert listed.returncode == 0, (level, listed.stderr)
        assert fresh_service(config).maintenance() is None
        outcomes[level] = result.returncode
        subprocess.run(["rm", "-rf", str(small_fs / "data")], check=True)
    assert outcomes["fits"] == 0 and outcomes[levels(request)[-1]] != 0, outcomes


@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_a_backup_on_a_full_disk_is_complete_or_absent_and_says_which(template, small_fs, scope_kind, request):
    project = None if scope_kind == "site" else template.project
    scope = Scope.of(project)
    outcomes = {}
    for level in levels(request):
        args = ["backup", "--json"] + (["--project", project] if project else [])
        config, before, result, listed, journal_left = run_full(template, small_fs, LEVELS[level], *args)
        assert_one_line(result)
        service = fresh_service(config)
        ids = service.store.ids(scope)
        if result.returncode == 0:
            made = json.loads(result.stdout)["id"]
            assert ids[0] == made and service.verify_backup(made, project)["ok"]
        else:
            assert len(ids) == 1, (level, ids)
            assert pool_objects(config) == pool_objects(template.config), level  # no stray object
        assert State(config, template.project_ids).scope(scope) == before.scope(scope)
        assert not journal_left
        assert listed.returncode == 0, (level, listed.stderr)
        outcomes[level] = result.returncode
        subprocess.run(["rm", "-rf", str(small_fs / "data")], check=True)
    assert outcomes["fits"] == 0 and outcomes[levels(request)[-1]] != 0, outcomes


def test_reading_commands_work_on_a_full_disk(template, small_fs):
    subprocess.run(["cp", "-a", str(template.config.data_dir), str(small_fs / "data")], check=True)
    config = Config(data_dir=small_fs / "data")
    site, project = template.backups["site"], template.backups["project"]
    fill(small_fs, 0)
    for args in (["list"], ["list", "--project", template.project], ["show", site],
                 ["show", project, "--project", template.project], ["verify", site],
                 ["verify", "--all", "--project", template.project], ["recover"]):
        result = strongroom(config, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert result.stderr == "", (args, result.stderr)


def test_commands_that_must_read_the_database_on_a_full_disk_say_the_disk_is_full(template, small_fs):
    """SQLite cannot even read without room for its shared memory: "disk I/O error", exit 1,
    was all a user saw; the disk being full is the reason, and exit 6 says it."""
    subprocess.run(["cp", "-a", str(template.config.data_dir), str(small_fs / "data")], check=True)
    config = Config(data_dir=small_fs / "data")
    before = State(config, template.project_ids)
    filler = fill(small_fs, 0)
    for args in (["backup", "--project", template.project], ["restore", template.backups["site"], "--dry-run"]):
        result = strongroom(config, *args)
        lines = result.stderr.splitlines()
        assert result.returncode in (0, 6), (args, result.stderr)
        if result.returncode == 6:
            assert len(lines) == 1 and "the disk is full" in lines[0], (args, result.stderr)
    filler.unlink()  # the fingerprints read the database too
    assert vars(State(config, template.project_ids)) == vars(before)


@pytest.mark.parametrize("operation", ["backup", "restore"])
def test_an_operation_that_clearly_does_not_fit_is_refused_first_with_the_figures(template, small_fs, operation):
    args = ["backup"] if operation == "backup" else ["restore", template.backups["site"], "--yes"]
    subprocess.run(["cp", "-a", str(template.config.data_dir), str(small_fs / "data")], check=True)
    config = Config(data_dir=small_fs / "data")
    backups_before = State(config, template.project_ids).backups
    filler = fill(small_fs, 2 * MB)  # the changed files alone are 3 MB
    points_before = sorted(p.name for p in config.backups_dir.rglob("*"))
    result = strongroom(config, *args)
    assert result.returncode == 6, result.stderr
    assert "needs about" in result.stderr and "MB are free on " + str(small_fs) in result.stderr, result.stderr
    assert "nothing was changed" in result.stderr
    assert sorted(p.name for p in config.backups_dir.rglob("*")) == points_before  # not even a pre-restore
    filler.unlink()
    assert State(config, template.project_ids).backups == backups_before


@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_a_restore_killed_while_replacing_records_is_rolled_back_on_a_disk_then_full(
        template, small_fs, tmp_path, scope_kind):
    """The reserve a killed restore leaves behind is the room its recovery needs."""
    project = None if scope_kind == "site" else template.project
    scope = Scope.of(project)
    backup = template.backups[scope_kind]
    probe = Config(data_dir=tmp_path / "probe")
    subprocess.run(["cp", "-a", str(template.config.data_dir), str(probe.data_dir)], check=True)
    points = count_points(lambda: fresh_service(probe).restore_backup(backup, project))
    published = next(i for i, (kind, detail) in enumerate(points) if kind == "rename" and ".staging-" in detail)
    k = next(i for i, (kind, _) in enumerate(points, 1) if i > published and kind in ("drop", "delete")) + 1
    subprocess.run(["cp", "-a", str(template.config.data_dir), str(small_fs / "data")], check=True)
    config = Config(data_dir=small_fs / "data")
    before = State(config, template.project_ids)
    status = crash_at(k, lambda: fresh_service(config).restore_backup(backup, project))
    assert os.WIFSIGNALED(status)
    assert fresh_service(config).maintenance()["step"] == "records"
    filler = fill(small_fs, 0)
    recovered = strongroom(config, "recover")
    assert recovered.returncode == 0, recovered.stderr
    assert "rolled back" in recovered.stdout
    assert strongroom(config, "list").returncode == 0
    filler.unlink()
    assert State(config, template.project_ids).scope(scope) == before.scope(scope)
    assert fresh_service(config).maintenance() is None
