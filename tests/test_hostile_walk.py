"""The backup side in a hostile world: links, files that change or vanish, deep trees."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import time

import pytest

from conftest import tree_fingerprint
from strongroom.errors import FileChanged, LinkedFolder
from strongroom.fs import walking
from strongroom.scopes import Scope, backups_root, scope_dir
from tampering import resign


def entries_of(config, scope, backup_id) -> dict[str, dict]:
    folder = backups_root(config, scope) / backup_id
    return {e["path"]: e for e in map(json.loads, (folder / "files.jsonl").read_text().splitlines())}


def pool_holds(config, content: bytes) -> bool:
    digest = hashlib.sha256(content).hexdigest()
    return (config.pool_dir / digest[:2] / digest).exists()


@pytest.fixture
def outside(tmp_path):
    """A folder outside the data dir with a secret in it, standing for /etc."""
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "shadow").write_bytes(b"root:secret-hash:19000::::::")
    return folder


# -- links are never followed ------------------------------------------------------


def test_a_project_folder_that_is_a_link_is_refused_by_name_and_nothing_of_its_target_is_stored(
        service, config, site, outside):
    project_id = site.project_ids[0]
    folder = scope_dir(config, Scope.project(project_id))
    shutil.rmtree(folder)
    folder.symlink_to(outside)

    with pytest.raises(LinkedFolder, match=str(folder)):
        service.make_backup(project_id)
    assert not pool_holds(config, b"root:secret-hash:19000::::::")
    assert service.list_backups(project_id) == []


def test_a_project_folder_below_a_linked_folder_is_refused(service, config, site, tmp_path):
    project_id = site.project_ids[0]
    projects = scope_dir(config, Scope.site()) / "project"
    moved = tmp_path / "elsewhere"
    projects.rename(moved)
    projects.symlink_to(moved)

    with pytest.raises(LinkedFolder, match=str(projects)):
        service.make_backup(project_id)


def test_a_restore_preview_onto_a_linked_project_folder_is_refused_by_name(service, config, site, outside):
    project_id = site.project_ids[0]
    made = service.make_backup(project_id)
    folder = scope_dir(config, Scope.project(project_id))
    shutil.rmtree(folder)
    folder.symlink_to(outside)
    with pytest.raises(LinkedFolder, match=str(folder)):
        service.preview_restore(made["id"], project_id)


def test_the_cli_refuses_a_linked_project_folder_in_one_line(config, site, outside, cli):
    project_id = site.project_ids[1]
    folder = scope_dir(config, Scope.project(project_id))
    shutil.rmtree(folder)
    folder.symlink_to(outside)
    result = cli("backup", "--project", project_id)
    assert result.exit_code == 1
    assert "symbolic link" in result.output and "Traceback" not in result.output


def test_a_folder_swapped_for_a_link_just_before_it_is_entered_is_stored_as_the_link(
        service, config, outside, monkeypatch):
    live = scope_dir(config, Scope.site())
    (live / "uploads").mkdir(parents=True)
    (live / "uploads" / "photo.jpg").write_bytes(b"photo")
    real_open, real_scandir = os.open, os.scandir
    swapped = []

    def swap(name) -> None:
        if os.fsdecode(name).endswith("uploads") and not swapped:
            swapped.append(name)
            monkeypatch.undo()
            shutil.rmtree(live / "uploads")
            (live / "uploads").symlink_to(outside)

    def opening(path, flags, *args, **kwargs):  # the moment the walk descends (fd-based)
        swap(path)
        return real_open(path, flags, *args, **kwargs)

    def listing(path="."):  # the same moment, for a walk that descends by path
        if not isinstance(path, int):
            swap(path)
        return real_scandir(path)

    monkeypatch.setattr(os, "open", opening)
    monkeypatch.setattr(os, "scandir", listing)
    made = service.make_backup()
    monkeypatch.undo()

    assert swapped
    entries = entries_of(config, Scope.site(), made["id"])
    assert entries["uploads"]["type"] == "symlink" and entries["uploads"]["target"] == str(outside)
    assert not any(path.startswith("uploads/") for path in entries)
    assert not pool_holds(config, b"root:secret-hash:19000::::::")


def test_a_tree_400_levels_deep_round_trips(service, config):
    live = scope_dir(config, Scope.site())
    deep = live.joinpath(*["d"] * 400)
    deep.mkdir(parents=True)
    (deep / "bottom.txt").write_text("bottom")
    before = tree_fingerprint(live)
    made = service.make_backup()
    assert made["files"] == 1
    assert entries_of(config, Scope.site(), made["id"])["/".join(["d"] * 400) + "/bottom.txt"]["size"] == 6
    assert service.verify_backup(made["id"])["ok"]
    assert service.list_backups()[0]["id"] == made["id"]
    assert service.preview_restore(made["id"])["files"]["unchanged"] == 1  # the file; its 400 folders are not files
    shutil.rmtree(live / "d")
    assert service.preview_restore(made["id"])["files"]["added"]["count"] == 1
    service.restore_backup(made["id"])
    assert tree_fingerprint(live) == before


def test_the_walk_has_no_depth_limit_and_keeps_few_folders_open(tmp_path):
    depth = 1200  # past Python's recursion limit
    folder = tmp_path
    try:
        for _ in range(depth):
            folder = folder / "d"
            os.mkdir(folder)
        (folder / "f").write_text("x")
        open_before = len(os.listdir("/proc/self/fd"))
        most, found = 0, []
        for rel, path, st in walking.walk(tmp_path):
            most = max(most, len(os.listdir("/proc/self/fd")) - open_before)
            found.append(rel)
        assert len(found) == depth + 1 and found[-1] == "/".join(["d"] * depth + ["f"])
        assert most <= walking.OPEN_FOLDERS + 5
        assert len(os.listdir("/proc/self/fd")) == open_before  # every descriptor closed
    finally:
        subprocess.run(["rm", "-rf", str(tmp_path / "d")], check=True)  # shutil.rmtree recurses


def test_folders_reopened_on_the_way_back_up_are_walked_to_the_end(tmp_path, monkeypatch):
    monkeypatch.setattr(walking, "OPEN_FOLDERS", 2)
    (tmp_path / "x" / "a" / "b" / "c" / "d").mkdir(parents=True)
    for name in ("x/a/b/c/d/f", "x/a/b/g", "x/a/h", "x/y", "z"):
        (tmp_path / name).write_text(name)
    (tmp_path / "x" / "w").mkdir()
    (tmp_path / "x" / "w" / "v").write_text("v")
    open_before = len(os.listdir("/proc/self/fd"))
    walked = [(rel, stat.S_ISDIR(st.st_mode)) for rel, _, st in walking.walk(tmp_path)]
    assert walked == [("x", True), ("x/a", True), ("x/a/b", True), ("x/a/b/c", True), ("x/a/b/c/d", True),
                      ("x/a/b/c/d/f", False), ("x/a/b/g", False), ("x/a/h", False), ("x/w", True),
                      ("x/w/v", False), ("x/y", False), ("z", False)]
    assert len(os.listdir("/proc/self/fd")) == open_before


# -- files that change or vanish while they are read -------------------------------


def changing_while_read(service, monkeypatch, live, name: str, times: int):
    """Make the pool see ``name`` rewritten during its first ``times`` reads."""
    pool = service.store.pool
    original = pool.store
    seen = {"reads": 0}

    def store(src, dest, *args, **kwargs):
        result = original(src, dest, *args, **kwargs)
        if str(dest).endswith("/" + name) and seen["reads"] < times:
            seen["reads"] += 1
            with open(live / name, "ab") as fh:  # another program appends meanwhile
                fh.write(b" and more")
        return result

    monkeypatch.setattr(pool, "store", store)
    return seen


def test_a_file_written_while_it_is_read_is_read_again_and_stored_as_it_now_is(service, config, monkeypatch):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "log.txt").write_bytes(b"first version")
    seen = changing_while_read(service, monkeypatch, live, "log.txt", times=1)

    made = service.make_backup()

    assert seen["reads"] == 1 and made["warnings"] == []
    stored = backups_root(config, Scope.site()) / made["id"] / "files" / "log.txt"
    assert stored.read_bytes() == (live / "log.txt").read_bytes() == b"first version and more"
    assert entries_of(config, Scope.site(), made["id"])["log.txt"]["size"] == len(b"first version and more")


def test_a_file_that_keeps_changing_is_stored_with_a_warning_that_names_it(service, config, monkeypatch):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "busy.db").write_bytes(b"v")
    changing_while_read(service, monkeypatch, live, "busy.db", times=100)

    made = service.make_backup()

    assert len(made["warnings"]) == 1 and "busy.db" in made["warnings"][0]
    shown = service.show_backup(made["id"])
    assert shown["manifest"]["warnings"] == made["warnings"] == service.list_backups()[0]["warnings"]


def test_the_fail_policy_refuses_the_backup_of_a_file_that_keeps_changing(service, config, monkeypatch):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "busy.db").write_bytes(b"v")
    changing_while_read(service, monkeypatch, live, "busy.db", times=100)

    with pytest.raises(FileChanged, match="busy.db"):
        service.make_backup(changed_files="fail")
    assert service.list_backups() == []


def test_a_failed_backup_leaves_no_file_open(service, config, monkeypatch):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "a-busy.db").write_bytes(b"v")
    for n in range(300):
        (live / f"file-{n:03d}").write_bytes(b"%d" % n)
    changing_while_read(service, monkeypatch, live, "a-busy.db", times=100)
    pool, busy_store = service.store.pool, service.store.pool.store

    def slow_store(src, dest, *args, **kwargs):  # the others wait in the queue, opened
        if not str(dest).endswith("a-busy.db"):
            time.sleep(0.05)
        return busy_store(src, dest, *args, **kwargs)

    monkeypatch.setattr(pool, "store", slow_store)
    open_before = sorted(os.listdir("/proc/self/fd"))

    with pytest.raises(FileChanged):
        service.make_backup(changed_files="fail")
    assert sorted(os.listdir("/proc/self/fd")) == open_before


def test_the_cli_shows_warnings_and_takes_the_change_policy(service, config, monkeypatch, cli):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "busy.db").write_bytes(b"v")
    monkeypatch.setattr("strongroom.service.Strongroom", lambda *a, **k: service)
    changing_while_read(service, monkeypatch, live, "busy.db", times=100)

    as_json = cli("backup", "--json")
    assert as_json.exit_code == 0
    assert "busy.db" in json.loads(as_json.stdout)["warnings"][0]
    text = cli("backup")
    assert text.exit_code == 0 and "warning: busy.db kept changing" in text.stderr
    failed = cli("backup", "--on-change", "fail")
    assert failed.exit_code == 1 and "busy.db" in failed.stderr and "Traceback" not in failed.output


def vanishing(monkeypatch, when_reaching: str, remove):
    """Remove something the moment the backup, having looked at ``when_reaching``, goes on."""
    from strongroom.backup import snapshot

    class Cursor(snapshot.Cursor):
        def find(self, path):
            if path == when_reaching:
                remove()
            return super().find(path)

    monkeypatch.setattr(snapshot, "Cursor", Cursor)


def test_a_file_that_disappears_between_the_walk_and_the_read_is_skipped_with_a_warning(
        service, config, monkeypatch):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "keep.txt").write_text("keep")
    (live / "upload.tmp").write_text("temporary")
    vanishing(monkeypatch, "upload.tmp", (live / "upload.tmp").unlink)

    made = service.make_backup()

    assert made["files"] == 1 and set(entries_of(config, Scope.site(), made["id"])) == {"keep.txt"}
    assert len(made["warnings"]) == 1 and "upload.tmp" in made["warnings"][0]


def test_a_folder_that_disappears_during_the_walk_is_skipped_with_a_warning(service, config, monkeypatch):
    live = scope_dir(config, Scope.site())
    (live / "cache" / "deep").mkdir(parents=True)
    (live / "cache" / "deep" / "x").write_text("x")
    (live / "a.txt").write_text("a")
    vanishing(monkeypatch, "a.txt", lambda: shutil.rmtree(live / "cache"))

    made = service.make_backup()

    assert set(entries_of(config, Scope.site(), made["id"])) == {"a.txt"}
    assert any("cache" in warning for warning in made["warnings"])


# -- hard links and sparse files ---------------------------------------------------


def test_files_sharing_an_inode_are_recorded_as_hard_links_of_the_first(service, config):
    live = scope_dir(config, Scope.site())
    (live / "sub").mkdir(parents=True)
    (live / "a.bin").write_bytes(b"shared content")
    os.link(live / "a.bin", live / "b.bin")
    os.link(live / "a.bin", live / "sub" / "c.bin")
    (live / "single.bin").write_bytes(b"alone")

    for made in (service.make_backup(), service.make_backup()):  # first and unchanged backups alike
        entries = entries_of(config, Scope.site(), made["id"])
        assert "hardlink" not in entries["a.bin"] and entries["a.bin"]["nlink"] == 3
        assert entries["b.bin"]["hardlink"] == entries["sub/c.bin"]["hardlink"] == "a.bin"
        assert entries["b.bin"]["hash"] == entries["a.bin"]["hash"] and entries["b.bin"]["size"] == 14
        assert "hardlink" not in entries["single.bin"] and "nlink" not in entries["single.bin"]
        assert made["bytes_added"] in (0, len(b"shared content") + len(b"alone"))
        assert service.verify_backup(made["id"])["ok"]
    assert service.show_backup(made["id"])["manifest"]["files"]["hardlinks"] == 2


@pytest.mark.parametrize("target", ["sub", "zz-link", "later.bin", "missing.bin", "single.bin"])
def test_a_hard_link_must_name_an_earlier_file_with_more_links(service, config, target):
    live = scope_dir(config, Scope.site())
    (live / "sub").mkdir(parents=True)
    (live / "a.bin").write_bytes(b"shared")
    os.link(live / "a.bin", live / "b.bin")
    (live / "later.bin").write_bytes(b"later")
    (live / "single.bin").write_bytes(b"single")
    (live / "zz-link").symlink_to("sub")
    made = service.make_backup()
    folder = backups_root(config, Scope.site()) / made["id"]
    lines = [json.loads(line) for line in (folder / "files.jsonl").read_text().splitlines()]
    for entry in lines:
        if entry["path"] == "b.bin":
            entry["hardlink"] = target
    data = "".join(json.dumps(e, separators=(",", ":")) + "\n" for e in lines).encode()
    (folder / "files.jsonl").write_bytes(data)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["list_sha256"] = hashlib.sha256(data).hexdigest()
    resign(config, folder, manifest)  # as someone holding the site key: the list check must still refuse it

    report = service.verify_backup(made["id"])
    assert not report["ok"] and any("hard link" in problem for problem in report["problems"])


def test_a_sparse_file_is_stored_sparse_and_hashed_as_its_full_content(service, config):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    size = 64 << 20
    with open(live / "disk.img", "wb") as fh:
        fh.truncate(size)
        fh.seek(40 << 20)
        fh.write(b"data in the middle")
    assert os.stat(live / "disk.img").st_blocks * 512 < 1 << 20

    made = service.make_backup()

    entry = entries_of(config, Scope.site(), made["id"])["disk.img"]
    assert entry["sparse"] is True and entry["size"] == size
    with open(live / "disk.img", "rb") as fh:
        assert entry["hash"] == hashlib.file_digest(fh, "sha256").hexdigest()
    stored = config.pool_dir / entry["hash"][:2] / entry["hash"]
    assert stored.stat().st_size == size and stored.stat().st_blocks * 512 < 1 << 20
    assert made["bytes_added"] == size  # logical bytes, not blocks
    assert service.verify_backup(made["id"])["ok"]


def test_the_web_outcome_of_a_backup_names_its_warnings():
    from strongroom.web import messages

    summary = {"id": "2026-11-26T10-15-00", "files": 3, "bytes_added": 0,
               "warnings": ["skipped upload.tmp: it disappeared before it was read"]}
    assert messages.made(summary) == ("Backup 2026-11-26T10-15-00 made (3 files, 0 B new); "
                                      "1 warning: skipped upload.tmp: it disappeared before it was read")
    assert messages.made({**summary, "warnings": []}).endswith(" new)")
