"""Strongroom's backups beside the original module's: a root of their own that the
original's admin page never lists, a setting for where it is, and the move of backups
made in the layout they once shared (``strongroom migrate-layout``).

``original_listing`` is the original module's listing as its reference documentation
gives it (``getBackups``): every folder of ``backups/<mode>/`` but ``project`` is a site
backup, every folder of ``backups/<mode>/project/<id>/`` a backup of that project, hidden
names included, newest first.
"""

import os
import shutil
import stat

import pytest

from conftest import records_fingerprint, tree_fingerprint
from strongroom.config import Config
from strongroom.errors import BadInput
from strongroom.fs import mutations
from strongroom.service import Strongroom
from test_importing import ORIGINAL_TIME, write_original_backup
from test_restore_hostile import other_program, write_while_the_tree_is_built


def original_listing(data_dir, mode: str, project_id: str | None = None) -> list[str]:
    base = data_dir / "backups" / mode
    if project_id is not None:
        base = base / "project" / project_id
    if not os.path.isdir(base):
        return []
    with os.scandir(base) as entries:
        names = [entry.name for entry in entries if entry.is_dir() and entry.name != "project"]
    return sorted(names, reverse=True)


def host_backups(config, database, project: str) -> dict:
    """The original module's own backups of the site and of ``project``, made as it makes
    them (``backups/<mode>/<time>/``, ``backups/<mode>/project/<id>/<time>/``), 0755."""
    mode_dir = config.shared_backups_dir / config.mode
    write_original_backup(mode_dir / ORIGINAL_TIME, database, {"user": {}}, config.working_dir, False)
    write_original_backup(mode_dir / "project" / project / ORIGINAL_TIME, database, {"project": {}},
                          config.working_dir / "project" / project, False)
    return {"site": [ORIGINAL_TIME], "project": [ORIGINAL_TIME]}


def everything_strongroom_makes(service, config, project: str) -> dict:
    """A site backup, a project backup, and a restore that rescued what the app wrote meanwhile."""
    made = {"site": service.make_backup()["id"], "project": service.make_backup(project)["id"]}
    (config.working_dir / "site.json").write_text('{"changed": "after the backup"}')
    previous = mutations.set_hook(write_while_the_tree_is_built(config.working_dir, other_program))
    try:
        restored = service.restore_backup(made["site"])
    finally:
        mutations.set_hook(previous)
    assert restored["rescued"]["count"] > 0
    made["pre_restore"] = restored["pre_restore"]
    return made


def test_the_original_modules_listing_sees_none_of_strongrooms_folders(service, config, database, site):
    project = site.project_ids[0]
    theirs = host_backups(config, database, project)
    everything_strongroom_makes(service, config, project)

    assert original_listing(config.data_dir, "pilot") == theirs["site"]
    assert original_listing(config.data_dir, "pilot", project) == theirs["project"]
    assert config.backups_root == config.data_dir / "backups" / ".strongroom"
    assert [b["reason"] for b in service.list_backups()] == ["pre-restore", "manual"]


def test_the_backups_root_is_a_setting_of_the_cli_and_the_environment(tmp_path, config, site, cli_process):
    elsewhere = tmp_path / "vault"
    made = cli_process("--backups-dir", str(elsewhere), "backup")
    by_env = cli_process("backup", "--project", site.project_ids[0], env={"STRONGROOM_BACKUPS_DIR": str(elsewhere)})

    assert made.returncode == 0 and by_env.returncode == 0, (made.stderr, by_env.stderr)
    assert (elsewhere / "pilot" / "site" / made.stdout.strip() / "manifest.json").is_file()
    assert (elsewhere / "pilot" / "project" / site.project_ids[0] / by_env.stdout.strip()).is_dir()
    assert (elsewhere / ".pool").is_dir() and (elsewhere / ".site-key").is_file()
    assert not (config.data_dir / "backups").exists()
    listed = cli_process("--backups-dir", str(elsewhere), "list").stdout
    assert listed.split()[0] == made.stdout.strip()


@pytest.mark.parametrize("root", ["working/pilot/backups", "backups/pilot", "backups/custom/strongroom"])
def test_a_backups_root_the_original_would_list_or_a_site_backup_would_hold_is_refused(config, root):
    with pytest.raises(BadInput, match="backups root"):
        Config(data_dir=config.data_dir, backups_location=config.data_dir / root)


def old_layout(config, database) -> tuple[Config, Strongroom]:
    """Backups as versions before Strongroom's own root made them: in ``backups/`` itself."""
    shared = Config(data_dir=config.data_dir, backups_location=config.shared_backups_dir)
    return shared, Strongroom(shared, database=database)


def test_backups_of_the_old_layout_keep_working_where_they_are(config, database, site):
    _shared, old = old_layout(config, database)
    made = old.make_backup()["id"]

    found = Config(data_dir=config.data_dir)
    service = Strongroom(found, database=database)

    assert found.backups_root == config.shared_backups_dir and found.legacy_layout
    assert [b["id"] for b in service.list_backups()] == [made]
    again = service.make_backup()["id"]
    assert (config.shared_backups_dir / "pilot" / "site" / again).is_dir()
    assert service.status()["shared_layout"] is True


def test_migrate_layout_moves_strongrooms_backups_and_leaves_the_originals(config, database, site, cli):
    project = site.project_ids[0]
    shared, old = old_layout(config, database)
    theirs = host_backups(shared, database, project)
    made = everything_strongroom_makes(old, shared, project)
    listed = {scope: [b["id"] for b in old.list_backups(scope)] for scope in (None, project)}
    key = shared.site_key_path.read_bytes()
    audit = (shared.backups_dir / "audit.log").read_text()
    assert original_listing(config.data_dir, "pilot") != theirs["site"]  # what the move is for

    result = cli("migrate-layout")

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Moved 7 entries from {config.shared_backups_dir} to ")
    assert "pilot/.control," in result.output  # the shared control state (jobs, the backup's hold) goes too
    moved = Config(data_dir=config.data_dir)
    service = Strongroom(moved, database=database)
    assert moved.backups_root == config.data_dir / "backups" / ".strongroom" and not moved.legacy_layout
    assert original_listing(config.data_dir, "pilot") == theirs["site"]
    assert original_listing(config.data_dir, "pilot", project) == theirs["project"]
    assert {scope: [b["id"] for b in service.list_backups(scope)] for scope in (None, project)} == listed
    assert moved.site_key_path.read_bytes() == key and not (config.shared_backups_dir / ".site-key").exists()
    assert (moved.backups_dir / "audit.log").read_text().startswith(audit)
    assert (moved.backups_dir / "rescued" / "site" / made["pre_restore"]).is_dir()
    assert sorted(os.listdir(config.shared_backups_dir)) == [".strongroom", "pilot"]
    assert sorted(os.listdir(config.shared_backups_dir / "pilot")) == [ORIGINAL_TIME, "project"]
    _links_into_the_pool_are_whole(moved, made["site"])
    assert all(service.verify_backup(backup_id)["ok"] for backup_id in listed[None])
    assert cli("migrate-layout").output.startswith("Nothing to move")


def _links_into_the_pool_are_whole(config, backup_id: str) -> None:
    files = config.backups_dir / "site" / backup_id / "files"
    stored = [p for p in files.rglob("*") if p.is_file() and not p.is_symlink()]
    assert stored
    for path in stored:
        st = path.stat()
        assert st.st_nlink >= 2 and stat.S_IMODE(st.st_mode) == 0o400, path
    objects = {p.stat().st_ino for p in config.pool_dir.glob("??/*")}
    assert {p.stat().st_ino for p in stored} <= objects


def test_a_move_cut_short_stops_every_operation_until_migrate_layout_finishes_it(config, database, site, cli):
    _shared, old = old_layout(config, database)
    made = old.make_backup()["id"], old.make_backup(site.project_ids[1])["id"]
    records = records_fingerprint(database)

    def cut(kind, detail):
        if kind == "rename" and "/.pool ->" in detail:
            raise OSError("the machine went down here")

    previous = mutations.set_hook(cut)
    try:
        with pytest.raises(OSError, match="went down"):
            Strongroom(Config(data_dir=config.data_dir)).migrate_layout()
    finally:
        mutations.set_hook(previous)

    interrupted = Strongroom(Config(data_dir=config.data_dir), database=database)
    with pytest.raises(BadInput, match="cut short: run `strongroom migrate-layout`"):
        interrupted.make_backup()
    assert cli("backup").exit_code == 2

    finished = cli("migrate-layout")
    assert finished.exit_code == 0, finished.output
    service = Strongroom(Config(data_dir=config.data_dir), database=database)
    assert [b["id"] for b in service.list_backups()] == [made[0]]
    assert [b["id"] for b in service.list_backups(site.project_ids[1])] == [made[1]]
    assert service.verify_backup(made[0])["ok"]
    service.restore_backup(made[0])
    assert records_fingerprint(database) == records


def test_a_program_started_before_the_move_refuses_to_work_and_says_to_restart(config, database, site):
    _shared, old = old_layout(config, database)
    old.make_backup()
    running = Strongroom(Config(data_dir=config.data_dir), database=database)  # a web app, say

    Strongroom(Config(data_dir=config.data_dir), database=database).migrate_layout()

    before = tree_fingerprint(config.shared_backups_dir)
    with pytest.raises(BadInput, match="were moved to .*restart"):
        running.make_backup()
    assert tree_fingerprint(config.shared_backups_dir) == before


def test_a_move_onto_a_root_that_holds_backups_is_refused(config, database, site, tmp_path):
    _shared, old = old_layout(config, database)
    old.make_backup()
    elsewhere = Config(data_dir=config.data_dir, backups_location=tmp_path / "vault")
    Strongroom(elsewhere, database=database).make_backup()

    with pytest.raises(BadInput, match="already holds backups"):
        Strongroom(elsewhere, database=database).migrate_layout()
    assert (config.shared_backups_dir / ".pool").is_dir()
    shutil.rmtree(tmp_path / "vault")
