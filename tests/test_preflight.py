"""The pre-flight estimate counts what an operation will write, not what exists."""

import os

import pytest

from conftest import give_the_restore_work
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.errors import NoSpace
from strongroom.restore import preflight
from strongroom.scopes import Scope
from strongroom.service import Strongroom


def test_a_backup_is_estimated_at_its_dumps_plus_the_files_it_will_copy(service, config, site):
    scope = Scope.site()
    service.make_backup()
    dumps = preflight.backup_needs(service, scope, service.store.latest(scope))
    assert dumps > 0  # nothing changed: only the dumps
    (config.working_dir / "new.bin").write_bytes(b"x" * 50_000)
    changed = next(p for p in config.working_dir.rglob("*.json") if p.is_file())
    changed.write_bytes(b"y" * 7_000)
    assert preflight.backup_needs(service, scope, service.store.latest(scope)) == dumps + 57_000


def test_a_restore_is_estimated_at_the_files_it_will_copy(service, config, site):
    scope = Scope.site()
    made = service.make_backup()
    path, manifest = service.store.open(scope, made["id"])
    assert preflight.restore_copies(service, scope, path, manifest) == 0  # all hard-linked
    victim = next(p for p in config.working_dir.rglob("*.json") if p.is_file())
    size = victim.stat().st_size
    victim.write_bytes(b"changed")
    assert preflight.restore_copies(service, scope, path, manifest) == size


def test_on_a_roomy_disk_the_check_walks_nothing(tmpfs, monkeypatch):
    """On a disk that is not nearly full nothing is walked. The data dir is on a file
    system of its own, a tmpfs mostly empty, so that "roomy" does not depend on how full
    the machine's disk is (a full suite on a disk a third full failed here)."""
    config = Config(data_dir=tmpfs("256m") / "data", mode="pilot")
    database = open_database(config)
    create_demo_site(config, database, projects=3, editions=2, size="small", seed=1)
    service = Strongroom(config, database=database)
    service.make_backup()

    def no_walk(*args):
        raise AssertionError("the pre-flight check walked the live folder")

    monkeypatch.setattr(preflight, "backup_needs", no_walk)
    monkeypatch.setattr(preflight, "restore_copies", no_walk)
    made = service.make_backup()
    give_the_restore_work(config.working_dir)  # onto the very same state a restore checks nothing
    assert service.restore_backup(made["id"])["pre_restore"]


def test_a_restore_is_estimated_in_one_walk_at_both_counts(service, config, site, monkeypatch):
    scope = Scope.site()
    made = service.make_backup()
    path, manifest = service.store.open(scope, made["id"])
    victim = next(p for p in config.working_dir.rglob("*.json") if p.is_file())
    victim.write_bytes(b"changed")  # copied by the restore and by the pre-restore backup
    (config.working_dir / "zzz-after-every-entry.bin").write_bytes(b"z" * 30_000)  # by the backup alone
    latest = service.store.latest(scope)
    apart = (preflight.backup_needs(service, scope, latest) + preflight.restore_copies(service, scope, path, manifest)
             + preflight._records_here(service, manifest) + preflight.space.RESERVE_BASE)
    walks = []
    walk = preflight._walk
    monkeypatch.setattr(preflight, "_walk", lambda folder: walks.append(folder) or walk(folder))
    assert preflight.restore_needs(service, scope, path, manifest, latest) == apart
    assert len(walks) == 1


@pytest.mark.parametrize("top_changed", [False, True], ids=["in step", "scope folder changed"])
def test_a_restore_on_a_disk_not_clearly_roomy_counts_in_the_checks_pass_what_a_walk_would(
        service, config, site, monkeypatch, top_changed):
    scope = Scope.site()
    made = service.make_backup()
    live = config.working_dir
    give_the_restore_work(live)  # changed: copied back
    extra = next(p for p in live.rglob("*") if p.is_dir()) / "extra-in-the-middle.bin"
    extra.write_bytes(b"e" * 20_000)  # only live: saved by the pre-restore backup
    next(p for p in sorted(live.rglob("*.json")) if p.is_file() and p != extra).unlink()  # copied back
    (live / "zzz-after-every-entry.bin").write_bytes(b"z" * 30_000)
    if not top_changed:
        os.utime(live, ns=(made_time := service.store.open(scope, made["id"])[1]["files"]["root"]["mtime_ns"],
                           made_time))  # the scope's folder as the backup has it: compared in step
    path, manifest = service.store.open(scope, made["id"])
    needed = preflight.restore_needs(service, scope, path, manifest, service.store.latest(scope))
    walks, refused = [], []
    walk = preflight._walk
    monkeypatch.setattr(preflight, "_walk", lambda folder: walks.append(folder) or walk(folder))
    refuse = preflight.space.refuse
    monkeypatch.setattr(preflight.space, "refuse", lambda what, need, *args: refused.append(need) or refuse(
        what, need, *args))
    monkeypatch.setattr(preflight.space, "free_bytes", lambda folder: needed - 1)  # not roomy, one byte short

    with pytest.raises(NoSpace):
        service.restore_backup(made["id"])
    assert refused == [needed] and walks == []  # the same count, without a walk of its own

    monkeypatch.setattr(preflight.space, "free_bytes", lambda folder: needed)
    assert service.restore_backup(made["id"])["pre_restore"]
    assert walks == [] and not extra.exists()
