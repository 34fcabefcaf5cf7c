"""The pre-flight estimate counts what an operation will write, not what exists."""

from conftest import give_the_restore_work
from strongroom.restore import preflight
from strongroom.scopes import Scope


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


def test_on_a_roomy_disk_the_check_walks_nothing(service, config, site, monkeypatch):
    # Roomy: more free than twice what the file system holds in use (the bound that needs no
    # walk), whatever else this machine's disk holds today.
    monkeypatch.setattr(preflight.space, "free_bytes", lambda path: 2**62)
    service.make_backup()

    def no_walk(*args):
        raise AssertionError("the pre-flight check walked the live folder")

    monkeypatch.setattr(preflight, "backup_needs", no_walk)
    monkeypatch.setattr(preflight, "restore_copies", no_walk)
    made = service.make_backup()
    give_the_restore_work(config.working_dir)  # onto the very same state a restore checks nothing
    assert service.restore_backup(made["id"])["pre_restore"]
