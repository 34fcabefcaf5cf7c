"""The fault-injection harness: count an operation's mutation points, then crash at each.

Every change Strongroom makes to files or records passes through ``strongroom.fs.mutations``,
which calls a hook first. ``count_points`` records the points an operation passes;
``crash_at`` runs the operation in a forked child that kills itself (SIGKILL) at the k-th
point, as a power cut would; ``fail_at`` makes the k-th point of a kind raise an error in
this process. ``check_after_crash`` then asserts the guarantees of docs/guarantees.md.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path

from bson import ObjectId

from conftest import records_fingerprint, tree_fingerprint
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.fs import mutations
from strongroom.scopes import Scope, backups_root, project_queries, scope_dir
from strongroom.service import Strongroom


class InjectedFault(OSError):
    pass


def count_points(operation: Callable[[], object]) -> list[tuple[str, str]]:
    points = []
    previous = mutations.set_hook(lambda kind, detail: points.append((kind, detail)))
    try:
        operation()
    finally:
        mutations.set_hook(previous)
    return points


def crash_at(k: int, operation: Callable[[], object], how=signal.SIGKILL) -> int:
    """Run ``operation`` in a forked child that gets signal ``how`` at mutation point ``k``.

    Returns the child's wait status. The child opens its own database: ``operation``
    must build its service from scratch.
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            seen = 0

            def hook(kind, detail):
                nonlocal seen
                seen += 1
                if seen == k:
                    os.kill(os.getpid(), how)

            mutations.set_hook(hook)
            operation()
        except BaseException:  # noqa: BLE001 - any failure of the child is its exit code 1
            code = 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return status


def fail_at(k: int, kind: str, operation: Callable[[], object], error: BaseException) -> BaseException | None:
    """Run ``operation`` here, raising ``error`` at the k-th point of ``kind``; return what it raised."""
    seen = 0

    def hook(point_kind, detail):
        nonlocal seen
        if point_kind == kind:
            seen += 1
            if seen == k:
                raise error

    return raised_with(hook, operation)


def fail_at_point(k: int, operation: Callable[[], object], error: BaseException,
                  later: Callable[[str, str], BaseException | None] | None = None) -> BaseException | None:
    """Run ``operation`` here, raising ``error`` at its k-th mutation point, whatever its
    kind; after that, ``later(kind, detail)`` may name an error for any further point.
    Return what the operation raised."""
    seen = 0

    def hook(kind, detail):
        nonlocal seen
        seen += 1
        if seen == k:
            raise error
        more = later(kind, detail) if later and seen > k else None
        if more is not None:
            raise more

    return raised_with(hook, operation)


def raised_with(hook: Callable[[str, str], None], operation: Callable[[], object]) -> BaseException | None:
    """Run ``operation`` with ``hook`` told of every mutation point; return what it raised."""
    previous = mutations.set_hook(hook)
    try:
        operation()
    except BaseException as exc:  # noqa: BLE001 - the caller asserts on it
        return exc
    finally:
        mutations.set_hook(previous)
    return None


def leftovers(config: Config, scope: Scope) -> list[str]:
    """What a finished or undone restore must not leave: trees beside the live folder,
    the journal, the space reserve."""
    live = scope_dir(config, scope)
    found = [name for name in os.listdir(live.parent) if name.startswith(f".{live.name}.")]
    return found + [name for name in (".journal.json", ".journal.json.tmp", ".reserve")
                    if os.path.lexists(config.backups_dir / name)]


def sample(n: int, how_many: int) -> list[int]:
    """Points 1..n: all when few, else the first, the last and evenly spaced ones between."""
    if n <= how_many:
        return list(range(1, n + 1))
    step = (n - 1) / (how_many - 1)
    return sorted({1 + round(i * step) for i in range(how_many)} | {n})


def fresh_service(config: Config) -> Strongroom:
    return Strongroom(config, database=open_database(config))


class State:
    """Fingerprints of a data dir: each scope's files and records, and every backup folder."""

    def __init__(self, config: Config, project_ids: list[str]):
        database = open_database(config)
        self.site_files = tree_fingerprint(config.working_dir)
        self.site_records = records_fingerprint(database)
        self.projects = {
            pid: (tree_fingerprint(scope_dir(config, Scope.project(pid))),
                  records_fingerprint(database, project_queries(config, pid)))
            for pid in project_ids
        }
        self.backups = {}
        for scope in [Scope.site()] + [Scope.project(pid) for pid in project_ids]:
            root = backups_root(config, scope)
            if root.is_dir():
                for folder in root.iterdir():
                    self.backups[(str(scope), folder.name)] = tree_fingerprint(folder)

    def scope(self, scope: Scope):
        if scope.is_site:
            return self.site_files, self.site_records
        return self.projects[scope.project_id]


def check_after_crash(config: Config, scope: Scope, project_ids: list[str], before: State,
                      allowed: list[State], deleted: tuple[str, str] | None = None) -> None:
    """Recover, then assert invariants 1-5 of the harness (see issue 3 / docs/guarantees.md)."""
    service = fresh_service(config)
    service.recover()
    after = State(config, project_ids)
    # 1. The scope is exactly one of the allowed states, never a mix.
    assert after.scope(scope) in [state.scope(scope) for state in allowed], f"{scope} is in a mixed state"
    # 2. Every listed backup verifies; nothing partial is listed; no hidden leftovers.
    for s in [Scope.site()] + [Scope.project(pid) for pid in project_ids]:
        for backup_id in service.store.ids(s):
            report = service.verify_backup(backup_id, s.project_id)
            assert report["ok"], report
        root = backups_root(config, s)
        if root.is_dir():
            leftovers = [p.name for p in root.iterdir()
                         if p.name.startswith(".") and p.name not in (".live-index.jsonl", ".live-index.json")]
            assert not leftovers, f"leftovers: {leftovers}"
    assert service.maintenance() is None, "the journal outlived the recovery"
    # 3. Earlier backups are byte-for-byte unchanged (a deleted one may be gone, whole).
    for key, fingerprint in before.backups.items():
        if key == deleted and key not in after.backups:
            continue
        assert after.backups.get(key) == fingerprint, f"backup {key} changed"
    # 4. No lock is left held, and the next operation succeeds.
    assert service.busy() is None
    # 5. Other projects are unchanged.
    for pid in project_ids:
        if scope.is_site or pid == scope.project_id:
            continue
        assert after.projects[pid] == before.projects[pid], f"project {pid} changed"
    fresh_service(config).make_backup(project_ids[-1], note="after the crash")


class Prepared:
    """A data dir with backups and later changes, copied afresh for every run (with its
    database, on a server: ``databases`` makes the fresh ones)."""

    def __init__(self, root: Path, engine: Config | None = None, databases=None):
        self.databases = databases
        self.template = Config(data_dir=root / "template", db_uri=engine.db_uri if engine else None)
        database = open_database(self.template)
        site = create_demo_site(self.template, database, projects=3, editions=2, seed=7)
        self.project_ids = list(site.project_ids)
        self.project = self.project_ids[0]
        service = fresh_service(self.template)
        self.site_backup = service.make_backup(note="site")["id"]
        self.project_backup = service.make_backup(self.project, note="project")["id"]
        self.at_backup = State(self.template, self.project_ids)
        live = self.template.working_dir
        (live / "site.json").write_text('{"changed": true}')
        (scope_dir(self.template, Scope.project(self.project)) / "about.md").unlink()
        (scope_dir(self.template, Scope.project(self.project)) / "new.bin").write_bytes(os.urandom(3000))
        database.edition.insert_one({"projectId": ObjectId(self.project), "title": "later"})
        database.user.update_one({"user": "admin"}, {"$set": {"nickname": "changed"}})
        self.changed = State(self.template, self.project_ids)
        self.root, self.runs = root, 0

    def copy(self) -> Config:
        self.runs += 1
        target = self.root / f"run-{self.runs}"
        subprocess.run(["cp", "-a", str(self.template.data_dir), str(target)], check=True)
        if self.template.embedded:
            return Config(data_dir=target)
        from servers import copy_database

        source = open_database(self.template).name
        copy = self.databases.new("run")
        copy_database(self.databases.server, source, copy)
        return Config(data_dir=target, db_uri=self.databases.server.uri(copy))
