"""A restore in a hostile world: links where folders were, odd modes, deep trees,
hard links, and other programs writing into the live folder while it runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import threading
from pathlib import Path

import pytest

from conftest import give_the_restore_work, tree_fingerprint
from strongroom.errors import LinkedFolder, RestoreFailed
from strongroom.fs import mutations
from strongroom.restore import rebuild, rescue
from strongroom.scopes import Scope, backups_root, scope_dir


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


# -- links where folders were -------------------------------------------------------


def test_a_restore_onto_a_linked_project_folder_refuses_before_any_change(service, config, site, tmp_path):
    project_id = site.project_ids[0]
    live = scope_dir(config, Scope.project(project_id))
    made = service.make_backup(project_id)
    elsewhere = tmp_path / "elsewhere"
    shutil.move(live, elsewhere)
    live.symlink_to(elsewhere)
    projects = live.parent
    before = (tree_fingerprint(elsewhere), mode_of(projects), sorted(os.listdir(projects)),
              service.store.ids(Scope.project(project_id)))

    with pytest.raises(LinkedFolder, match=str(live)):
        service.restore_backup(made["id"], project_id)

    after = (tree_fingerprint(elsewhere), mode_of(projects), sorted(os.listdir(projects)),
             service.store.ids(Scope.project(project_id)))
    assert after == before
    assert service.maintenance() is None


def test_a_restore_refuses_when_a_parent_of_the_scope_folder_is_a_link(service, config, site, tmp_path):
    project_id = site.project_ids[0]
    made = service.make_backup(project_id)
    projects = config.working_dir / "project"
    elsewhere = tmp_path / "elsewhere-projects"
    shutil.move(projects, elsewhere)
    projects.symlink_to(elsewhere)
    before = (tree_fingerprint(elsewhere), mode_of(elsewhere))

    with pytest.raises(LinkedFolder, match=str(projects)):
        service.restore_backup(made["id"], project_id)

    assert (tree_fingerprint(elsewhere), mode_of(elsewhere)) == before


def test_a_link_put_into_the_new_tree_while_it_is_built_redirects_no_write(service, config, site, tmp_path):
    made = service.make_backup()
    shutil.rmtree(config.working_dir / "images")  # so the restore copies into images/
    before = tree_fingerprint(config.working_dir)
    outside = tmp_path / "outside"
    outside.mkdir()
    swapped = False

    def swap_folder_for_link(kind, detail):
        # The moment the new tree's images/ exists, replace it by a link to ``outside``.
        nonlocal swapped
        staging = next(config.working_dir.parent.glob(".pilot.restore-*"), None)
        if not swapped and staging is not None and (staging / "images").is_dir():
            (staging / "images").rename(staging / "images-moved")
            (staging / "images").symlink_to(outside)
            swapped = True

    previous = mutations.set_hook(swap_folder_for_link)
    try:
        with pytest.raises(RestoreFailed):  # the new tree is not what was built: put back
            service.restore_backup(made["id"])
    finally:
        mutations.set_hook(previous)

    assert swapped
    assert list(outside.iterdir()) == []
    assert tree_fingerprint(config.working_dir) == before


def backup_folder_replaced_by_link(service, config, project_id, tmp_path) -> tuple[str, Path]:
    """Back up a project twice, then move its backups folder outside and link to it."""
    service.make_backup(project_id)
    made = service.make_backup(project_id)
    root = backups_root(config, Scope.project(project_id))
    elsewhere = tmp_path / "elsewhere-backups"
    shutil.move(root, elsewhere)
    root.symlink_to(elsewhere)
    return made["id"], elsewhere


def test_deleting_a_backup_whose_folder_is_a_link_refuses_and_changes_nothing_outside(service, config, site, tmp_path):
    project_id = site.project_ids[0]
    backup_id, elsewhere = backup_folder_replaced_by_link(service, config, project_id, tmp_path)
    before = tree_fingerprint(elsewhere)
    objects = sorted(p.name for p in config.pool_dir.rglob("*") if p.is_file())

    with pytest.raises(LinkedFolder):
        service.delete_backup(backup_id, project_id)

    assert tree_fingerprint(elsewhere) == before
    assert sorted(p.name for p in config.pool_dir.rglob("*") if p.is_file()) == objects


def test_restoring_from_a_backup_folder_that_is_a_link_refuses(service, config, site, tmp_path):
    project_id = site.project_ids[0]
    live = scope_dir(config, Scope.project(project_id))
    backup_id, elsewhere = backup_folder_replaced_by_link(service, config, project_id, tmp_path)
    (live / "changed.txt").write_text("after the backup")
    before = (tree_fingerprint(elsewhere), tree_fingerprint(live))

    with pytest.raises(LinkedFolder):
        service.restore_backup(backup_id, project_id)

    assert (tree_fingerprint(elsewhere), tree_fingerprint(live)) == before


def test_a_single_backup_folder_replaced_by_a_link_is_not_listed_and_not_deleted(service, config, site, tmp_path):
    kept = service.make_backup()
    made = service.make_backup()
    folder = backups_root(config, Scope.site()) / made["id"]
    elsewhere = tmp_path / "elsewhere-backup"
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere)
    before = tree_fingerprint(elsewhere)

    assert [b["id"] for b in service.list_backups()] == [kept["id"]]
    with pytest.raises(LinkedFolder):
        service.delete_backup(made["id"])
    assert tree_fingerprint(elsewhere) == before


@pytest.mark.parametrize("part", ["files", "db"])
def test_a_backup_whose_files_or_db_folder_was_replaced_by_a_link_is_not_listed(service, config, site, tmp_path,
                                                                                part):
    oldest, made, newest = (service.make_backup() for _ in range(3))
    folder = backups_root(config, Scope.site()) / made["id"] / part
    shutil.move(folder, tmp_path / "elsewhere")
    folder.symlink_to(tmp_path / "elsewhere")

    assert [b["id"] for b in service.list_backups()] == [newest["id"], oldest["id"]]


def test_a_scope_whose_backups_folder_is_reached_through_a_link_lists_nothing(service, config, site, tmp_path):
    project_id = site.project_ids[0]
    service.make_backup(project_id)
    projects = config.backups_dir / "project"
    shutil.move(projects, tmp_path / "elsewhere")
    projects.symlink_to(tmp_path / "elsewhere")

    assert service.list_backups(project_id) == []


def test_when_the_modes_backups_folder_is_a_link_delete_and_restore_change_nothing_there(service, config, site,
                                                                                          tmp_path):
    made = service.make_backup()
    elsewhere = tmp_path / "elsewhere-mode"
    shutil.move(config.backups_dir, elsewhere)
    config.backups_dir.symlink_to(elsewhere)
    before = {p: (p.lstat().st_mtime_ns, p.lstat().st_size) for p in elsewhere.rglob("*")}

    for operation in (service.delete_backup, service.restore_backup):
        with pytest.raises(LinkedFolder, match=str(config.backups_dir)):
            operation(made["id"])

    assert {p: (p.lstat().st_mtime_ns, p.lstat().st_size) for p in elsewhere.rglob("*")} == before


@pytest.mark.parametrize("linked", ["scope", "mode"])
def test_a_backup_refuses_to_write_through_a_backups_folder_replaced_by_a_link(service, config, site, tmp_path,
                                                                               linked):
    """Neither a new backup nor a restore's pre-restore backup lands outside ``backups/``."""
    project_id = site.project_ids[0]
    service.make_backup(project_id)
    folder = backups_root(config, Scope.project(project_id)) if linked == "scope" else config.backups_dir
    elsewhere = tmp_path / "elsewhere"
    shutil.move(folder, elsewhere)
    folder.symlink_to(elsewhere)
    before = tree_fingerprint(elsewhere)

    with pytest.raises(LinkedFolder, match=str(folder)):
        service.make_backup(project_id)
    assert tree_fingerprint(elsewhere) == before


# -- modes and times -----------------------------------------------------------------


def test_restores_never_set_setuid_or_setgid_bits_nor_sticky_on_files(service, config, site):
    live = config.working_dir
    (live / "setuid.sh").write_text("#!/bin/sh\n")
    (live / "setuid.sh").chmod(0o4755)
    (live / "sticky.txt").write_text("x")
    (live / "sticky.txt").chmod(0o1644)
    (live / "shared").mkdir()
    (live / "shared").chmod(0o3775)  # setgid and sticky on a folder
    (live / "unchanged-setgid.bin").write_bytes(b"y")
    (live / "unchanged-setgid.bin").chmod(0o2750)
    live.chmod(0o2755)
    made = service.make_backup()
    (live / "setuid.sh").write_text("changed")  # one file copied back, the others found unchanged

    service.restore_backup(made["id"])

    assert mode_of(live / "setuid.sh") == 0o755
    assert mode_of(live / "sticky.txt") == 0o644
    assert mode_of(live / "shared") == 0o1775
    assert mode_of(live / "unchanged-setgid.bin") == 0o750
    assert mode_of(live) == 0o755


def test_symbolic_links_get_their_times_back(service, config, site):
    link = config.working_dir / "a-link"
    link.symlink_to("site.json")
    os.utime(link, ns=(1_500_000_000_000_000_123, 1_500_000_000_000_000_123), follow_symlinks=False)
    made = service.make_backup()
    link.unlink()

    service.restore_backup(made["id"])

    assert os.readlink(link) == "site.json"
    assert link.lstat().st_mtime_ns == 1_500_000_000_000_000_123


# -- the tree builder on its own: deep trees and hard links -------------------------


def make_file_at(root_fd: int, rel: str, content: bytes) -> None:
    """Create a file at any depth below ``root_fd`` (paths past PATH_MAX included)."""
    *folders, name = rel.split("/")
    fd = os.dup(root_fd)
    for folder in folders:
        try:
            os.mkdir(folder, dir_fd=fd)
        except FileExistsError:
            pass
        child = os.open(folder, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=fd)
    os.write(out, content)
    os.close(out)
    os.close(fd)


def read_file_at(root_fd: int, rel: str) -> tuple[bytes, os.stat_result]:
    *folders, name = rel.split("/")
    fd = os.dup(root_fd)
    for folder in folders:
        child = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        os.close(fd)
        fd = child
    try:
        handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=fd)
        try:
            return os.read(handle, 1 << 20), os.fstat(handle)
        finally:
            os.close(handle)
    finally:
        os.close(fd)


def entries_for(files: dict[str, bytes], hardlinks: dict[str, str] | None = None) -> list[dict]:
    """File-list entries, in walk order, for ``files`` and the folders above them."""
    hardlinks = hardlinks or {}
    entries, seen = [], set()
    for rel in sorted(files, key=lambda p: tuple(p.split("/"))):
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder not in seen:
                seen.add(folder)
                entries.append({"path": folder, "type": "dir", "mode": 0o755, "mtime_ns": 1_000_000_000})
        entry = {"path": rel, "type": "file", "size": len(files[rel]), "mode": 0o640,
                 "mtime_ns": 1_600_000_000_000_000_000, "hash": hashlib.sha256(files[rel]).hexdigest()}
        if rel in hardlinks:
            entry["hardlink"] = hardlinks[rel]
        entries.append(entry)
    return entries


def stored_tree(tmp_path: Path, files: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    """A backup's ``files`` folder: ``links`` maps a path to an earlier one it is a hard link of."""
    stored = tmp_path / "backup-files"
    stored.mkdir()
    fd = os.open(stored, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for rel, content in files.items():
            if rel not in (links or {}):
                make_file_at(fd, rel, content)
        for rel, earlier in (links or {}).items():
            (stored / rel).parent.mkdir(parents=True, exist_ok=True)
            os.link(stored / earlier, stored / rel)
    finally:
        os.close(fd)
    return stored


def rebuild_into(tmp_path: Path, entries: list[dict], stored: Path) -> tuple[Path, rebuild.RestoreStats]:
    live = tmp_path / "working" / "live"
    live.parent.mkdir(exist_ok=True)
    staging, old = live.parent / ".live.restore-x", live.parent / ".live.old-x"
    stats = rebuild.build_tree(iter(entries), stored, live, staging, len(entries), root=tmp_path)
    rebuild.swap_in(staging, live, old, root=tmp_path)
    return live, stats


def test_trees_deeper_and_longer_than_any_path_the_system_takes_are_rebuilt(tmp_path):
    deep = "/".join(["d"] * 320) + "/deep.txt"  # 320 levels
    long_name = "n" * 255
    very_long = "/".join([long_name] * 20) + "/" + "f" * 255  # over 5,000 bytes: past PATH_MAX
    odd = ["tab\there", "new\nline", "-leading-dash", "...", "back\\slash", "latin-\udce9", " space "]
    files = {deep: b"deep", very_long: b"long", **{f"odd/{name}": name.encode("utf-8", "surrogateescape")
                                                    for name in odd}}
    stored = stored_tree(tmp_path, files)

    live, stats = rebuild_into(tmp_path, entries_for(files), stored)

    assert stats.copied == len(files)
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for rel, content in files.items():
            data, st = read_file_at(fd, rel)
            assert (data, stat.S_IMODE(st.st_mode), st.st_mtime_ns) == (content, 0o640, 1_600_000_000_000_000_000)
    finally:
        os.close(fd)


def test_hard_linked_files_come_back_as_hard_links(tmp_path):
    files = {"a/first.bin": b"shared content", "b/second.bin": b"shared content", "c/other.bin": b"other"}
    stored = stored_tree(tmp_path, files, links={"b/second.bin": "a/first.bin"})
    entries = entries_for(files, hardlinks={"b/second.bin": "a/first.bin"})

    live, stats = rebuild_into(tmp_path, entries, stored)

    first, second = (live / "a/first.bin").stat(), (live / "b/second.bin").stat()
    assert (first.st_ino, first.st_nlink) == (second.st_ino, 2)
    assert (live / "b/second.bin").read_bytes() == b"shared content"
    assert stats.hardlinked == 1 and stats.copied == 2


def test_a_folder_the_backup_did_not_have_is_made_as_mkdir_would_make_it(tmp_path):
    umask = os.umask(0o027)
    os.umask(umask)
    stored = tmp_path / "backup-files"
    stored.mkdir()

    live, _ = rebuild_into(tmp_path, [], stored)

    assert mode_of(live) == 0o777 & ~umask


def test_a_hard_link_to_different_content_is_restored_as_its_own_copy(tmp_path):
    files = {"a/first.bin": b"one content", "b/second.bin": b"another content"}
    stored = stored_tree(tmp_path, files)
    entries = entries_for(files, hardlinks={"b/second.bin": "a/first.bin"})

    live, stats = rebuild_into(tmp_path, entries, stored)

    assert (live / "b/second.bin").read_bytes() == b"another content"
    assert (live / "b/second.bin").stat().st_ino != (live / "a/first.bin").stat().st_ino
    assert stats.hardlinked == 0


def test_a_sparse_file_is_restored_with_its_holes(tmp_path):
    size = 64 << 20
    stored = tmp_path / "backup-files"
    stored.mkdir()
    with open(stored / "disk.img", "wb") as fh:
        fh.truncate(size)
        fh.seek(1 << 20)
        fh.write(b"data" * 1024)
    content = (stored / "disk.img").read_bytes()
    assert (stored / "disk.img").stat().st_blocks * 512 < 1 << 20  # the file system keeps holes
    entry = {"path": "disk.img", "type": "file", "size": size, "mode": 0o644, "mtime_ns": 1_000_000_000,
             "hash": hashlib.sha256(content).hexdigest(), "sparse": True}

    live, stats = rebuild_into(tmp_path, [entry], stored)

    assert stats.copied == 1
    assert (live / "disk.img").read_bytes() == content
    assert (live / "disk.img").stat().st_blocks * 512 < 1 << 20


# -- other programs writing during the restore ---------------------------------------


def write_while_the_tree_is_built(live: Path, writer) -> callable:
    """A mutation hook that, the first time the new tree gets a folder, runs ``writer``
    on a thread of its own against the live folder and waits for it to finish."""
    done = threading.Event()

    def hook(kind, detail):
        if kind == "mkdir" and ".restore-" in detail and not done.is_set():
            done.set()
            thread = threading.Thread(target=writer, args=(live,))
            thread.start()
            thread.join()

    return hook


def other_program(live: Path) -> None:
    (live / "written-during-restore.txt").write_text("an upload that arrived mid-restore")
    (live / "site.json").write_text('{"edited": "while the restore ran"}')
    (live / "uploads" / "new").mkdir(parents=True)
    (live / "uploads" / "new" / "photo.bin").write_bytes(b"\x89PNG" * 100)


def test_files_written_by_others_during_a_restore_are_kept_where_the_restore_says(service, config, site):
    live = config.working_dir
    made = service.make_backup()
    expected = tree_fingerprint(live)
    (live / "images" / "banner.png").write_bytes(b"changed after the backup")

    previous = mutations.set_hook(write_while_the_tree_is_built(live, other_program))
    try:
        result = service.restore_backup(made["id"])
    finally:
        mutations.set_hook(previous)

    rescued = result["rescued"]
    place = Path(rescued["place"])
    assert rescued["count"] == 3
    assert sorted(rescued["paths"]) == ["site.json", "uploads/new/photo.bin", "written-during-restore.txt"]
    assert (place / "written-during-restore.txt").read_text() == "an upload that arrived mid-restore"
    assert (place / "site.json").read_text() == '{"edited": "while the restore ran"}'
    assert (place / "uploads" / "new" / "photo.bin").read_bytes() == b"\x89PNG" * 100
    assert place.is_relative_to(config.backups_dir / "rescued")
    assert mode_of(config.backups_dir / "rescued") == 0o700
    assert tree_fingerprint(live) == expected  # the restore itself is exact
    # What the pre-restore backup already holds is not "rescued" again.
    assert not (place / "images").exists()


@pytest.fixture
def deep_tmp(tmp_path):
    """``tmp_path``, emptied afterwards of trees too deep for pytest's own recursive clean-up."""
    yield tmp_path
    remove_deep_trees(tmp_path)


def test_a_file_written_deeper_than_pythons_recursion_limit_is_rescued_and_the_old_tree_removed(deep_tmp):
    tmp_path = deep_tmp
    deep = "/".join(["d"] * 1200)
    stored = tmp_path / "backup-files"
    stored.mkdir()
    live = tmp_path / "working" / "live"
    live.mkdir(parents=True)
    fd = os.open(live, os.O_RDONLY | os.O_DIRECTORY)
    try:
        make_file_at(fd, deep + "/late.txt", b"written during the restore")
    finally:
        os.close(fd)
    rescuer = rescue.Rescuer(lambda: iter(()), tmp_path, tmp_path / "rescued")
    staging, old = live.parent / ".live.restore-x", live.parent / ".live.old-x"
    rebuild.build_tree(iter([]), stored, live, staging, 0, root=tmp_path)

    rebuild.swap_in(staging, live, old, root=tmp_path, inspect_old=rescuer.inspect)

    assert rescuer.outcome()["count"] == 1
    assert not old.exists() and list(live.iterdir()) == []
    fd = os.open(tmp_path / "rescued", os.O_RDONLY | os.O_DIRECTORY)
    try:
        assert read_file_at(fd, deep + "/late.txt")[0] == b"written during the restore"
    finally:
        os.close(fd)


def remove_deep_trees(folder: Path) -> None:
    """Leave nothing too deep for pytest's own recursive clean-up of old temporary folders."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name in os.listdir(fd):
            mutations.rmtree(name, dir_fd=fd)
    finally:
        os.close(fd)


def test_a_restore_nobody_disturbs_rescues_nothing(service, config, site):
    made = service.make_backup()
    (config.working_dir / "site.json").write_text("changed, and saved by the pre-restore backup")
    (config.working_dir / "added.txt").write_text("also saved by it")

    result = service.restore_backup(made["id"])

    assert result["rescued"]["count"] == 0
    assert not (config.backups_dir / "rescued").exists()


def test_a_restore_that_fails_before_its_swap_leaves_what_others_wrote_in_place(service, config, site):
    live = config.working_dir
    made = service.make_backup()
    (live / "images" / "banner.png").write_bytes(b"changed after the backup")  # so the restore copies
    write = write_while_the_tree_is_built(live, other_program)
    building, failed = threading.Event(), threading.Event()

    def write_then_fail(kind, detail):  # the first copy into the new tree fails
        write(kind, detail)
        if kind == "mkdir" and ".restore-" in detail:
            building.set()
        if kind == "chmod" and building.is_set() and not failed.is_set():
            failed.set()
            raise OSError(5, "Input/output error (injected)")

    previous = mutations.set_hook(write_then_fail)
    try:
        with pytest.raises(RestoreFailed, match="before anything live changed"):
            service.restore_backup(made["id"])
    finally:
        mutations.set_hook(previous)

    # The live folder was never moved: what the other program wrote is there, in place.
    assert (live / "written-during-restore.txt").read_text() == "an upload that arrived mid-restore"
    assert (live / "site.json").read_text() == '{"edited": "while the restore ran"}'
    assert (live / "uploads" / "new" / "photo.bin").read_bytes() == b"\x89PNG" * 100
    assert (live / "images" / "banner.png").read_bytes() == b"changed after the backup"
    assert not (config.backups_dir / "rescued").exists()


def test_a_restore_that_fails_while_keeping_what_others_wrote_loses_none_of_it(service, config, site):
    live = config.working_dir
    made = service.make_backup()
    give_the_restore_work(live)
    before = tree_fingerprint(live)
    write = write_while_the_tree_is_built(live, other_program)
    moves = []

    def write_then_fail_on_the_second_move(kind, detail):
        write(kind, detail)
        if kind == "rename" and detail in ("site.json -> site.json", "photo.bin -> photo.bin",
                                           "written-during-restore.txt -> written-during-restore.txt"):
            moves.append(detail)
            if len(moves) == 2:
                raise OSError(5, "Input/output error (injected)")

    previous = mutations.set_hook(write_then_fail_on_the_second_move)
    try:
        with pytest.raises(RestoreFailed, match="1 files written by others meanwhile were kept in") as raised:
            service.restore_backup(made["id"])
    finally:
        mutations.set_hook(previous)

    # Undone after the swap: the old folder came back whole but for what the rescue had
    # already moved aside, which the message names. Every write is in one place or the other.
    place = Path(str(raised.value).rpartition("kept in ")[2])
    written = {"written-during-restore.txt": b"an upload that arrived mid-restore",
               "site.json": b'{"edited": "while the restore ran"}',
               "uploads/new/photo.bin": b"\x89PNG" * 100}
    for path, content in written.items():
        found = [folder / path for folder in (live, place) if (folder / path).is_file()]
        assert [p.read_bytes() for p in found] == [content], path
    after = tree_fingerprint(live)
    untouched = {p: v for p, v in before.items() if p not in written and not p.startswith("uploads/new")}
    assert {p: v for p, v in after.items() if p in untouched} == untouched


def test_the_cli_says_where_files_written_during_a_restore_were_kept(service, config, site, cli):
    made = service.make_backup()
    give_the_restore_work(config.working_dir)
    previous = mutations.set_hook(write_while_the_tree_is_built(config.working_dir, other_program))
    try:
        result = cli("restore", made["id"], "--yes")
    finally:
        mutations.set_hook(previous)

    assert result.exit_code == 0, result.output
    assert "3 files written by others during the restore were kept in " in result.output
    assert str(config.backups_dir / "rescued" / "site") in result.output


def test_the_web_outcome_says_where_files_written_during_a_restore_were_kept():
    from strongroom.web import messages

    result = {"restored": "2026-11-26T04-27-43", "pre_restore": "2026-11-26T05-00-00", "copied": 1, "kept": 9,
              "rescued": {"count": 2, "bytes": 10, "place": "/srv/backups/pilot/rescued/site/x", "paths": []}}

    assert messages.restored(result).endswith(
        "; 2 files written by others during the restore kept in /srv/backups/pilot/rescued/site/x")
    assert "written by others" not in messages.restored({**result, "rescued": {"count": 0}})
