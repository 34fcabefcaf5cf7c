"""``verify --repair``: damaged stored content is stored again where a right copy exists."""

from __future__ import annotations

import hashlib
import os

from strongroom.fs import mutations
from strongroom.scopes import Scope, backups_root


def _files(config, backup_id):
    return backups_root(config, Scope.site()) / backup_id / "files"


def _damage(path):
    """Flip one byte and put the read-only mode back, as a careful intruder would."""
    mode = os.lstat(path).st_mode
    path.chmod(0o600)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    path.chmod(mode & 0o7777)


def _victim(config, backup_id):
    stored = next(p for p in _files(config, backup_id).rglob("*.glb"))
    return stored, stored.relative_to(_files(config, backup_id)).as_posix()


def test_repair_stores_damaged_content_again_from_the_live_file_for_every_backup(service, config, site, cli):
    first = service.make_backup()
    second = service.make_backup()
    stored, rel = _victim(config, second["id"])
    inode = stored.stat().st_ino
    _damage(stored)
    assert not service.verify_backup(first["id"])["ok"]

    result = cli("verify", second["id"], "--repair")

    assert result.exit_code == 0, result.output
    assert f"repaired: file {rel}: stored again from the live file" in result.output
    assert hashlib.sha256(stored.read_bytes()).hexdigest() == hashlib.sha256(
        (config.working_dir / rel).read_bytes()).hexdigest()
    assert stored.stat().st_ino == inode and stored.stat().st_mode & 0o777 == 0o400
    assert service.verify_backup(first["id"])["ok"]  # the same object: repaired for both
    assert service.verify_backup(second["id"])["ok"]


def test_repair_names_the_backup_when_the_live_file_changed_too(service, config, site, cli):
    made = service.make_backup()
    stored, rel = _victim(config, made["id"])
    _damage(stored)
    (config.working_dir / rel).write_bytes(b"new content since")

    result = cli("verify", "--all", "--repair")

    assert result.exit_code == 5
    assert f"verification failed for {made['id']}: they stay damaged" in result.output
    assert not service.verify_backup(made["id"])["ok"]


def test_repair_links_a_missing_file_to_its_object_again(service, config, site):
    made = service.make_backup()
    stored, rel = _victim(config, made["id"])
    stored.unlink()

    report = service.verify_backup(made["id"], repair=True)

    assert report["ok"] and report["repaired"] == [f"file {rel}: stored again from the pool"]
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()
    assert stored.stat().st_ino == (config.pool_dir / digest[:2] / digest).stat().st_ino


def test_every_change_a_repair_makes_goes_through_mutations(service, config, site):
    made = service.make_backup()
    stored, _ = _victim(config, made["id"])
    _damage(stored)
    seen = []
    previous = mutations.set_hook(lambda kind, detail: seen.append((kind, detail)))
    try:
        assert service.verify_backup(made["id"], repair=True)["ok"]
    finally:
        mutations.set_hook(previous)
    digest = hashlib.sha256(stored.read_bytes()).hexdigest()
    obj = str(config.pool_dir / digest[:2] / digest)
    assert ("create", obj) in seen and ("write", obj) in seen and ("chmod", obj) in seen


class _Injected(OSError):
    pass


def test_a_repair_cut_short_at_any_change_leaves_a_backup_another_repair_completes(service, config, site):
    made = service.make_backup()
    stored, _ = _victim(config, made["id"])
    _damage(stored)
    service.verify_backup(made["id"], repair=True)  # makes the pool's temporary folder, once
    _damage(stored)
    points = []
    previous = mutations.set_hook(lambda kind, detail: points.append(kind))
    try:
        service.verify_backup(made["id"], repair=True)
    finally:
        mutations.set_hook(previous)
    assert len(points) >= 4
    for k in range(1, len(points) + 1):
        _damage(stored)
        seen = []

        def fail_at_k(kind, detail, k=k, seen=seen):
            seen.append(kind)
            if len(seen) == k:
                raise _Injected(f"injected at {kind} {detail}")

        previous = mutations.set_hook(fail_at_k)
        try:
            service.verify_backup(made["id"], repair=True)
        except _Injected:
            pass
        finally:
            mutations.set_hook(previous)
        assert service.verify_backup(made["id"], repair=True)["ok"], k
        assert service.verify_backup(made["id"])["ok"], k
        # a temporary copy stays only when removing it was what failed (collected later)
        assert seen[k - 1] == "unlink" or not list(config.pool_dir.glob(".tmp/*")), k
        for leftover in config.pool_dir.glob(".tmp/*"):
            leftover.unlink()
