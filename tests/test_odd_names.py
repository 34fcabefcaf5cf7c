"""Any name a file system allows round-trips: backup, list, preview, verify, restore."""

import os
import shutil

from conftest import tree_fingerprint
from strongroom.repo.pool import Pool
from strongroom.scopes import Scope, scope_dir
from test_web_security import signed_in
from web_support import prepared, web_data  # noqa: F401

ODD_NAMES = [
    "back\\slash.txt", "new\nline", "tab\there", "-rf", "--help", "...", "..a", " ", "\x7fdel",
    os.fsdecode(b"latin1-\xe9t\xe9"), "\u00e9t\u00e9 \u2603", "x" * 255,
]


def make_odd_tree(live) -> None:
    """Files under every odd name, a folder under a non-UTF-8 name, a path of 1,250+ bytes."""
    live.mkdir(parents=True, exist_ok=True)
    for n, name in enumerate(ODD_NAMES):
        (live / name).write_bytes(f"content {n}".encode())
    odd_folder = live / os.fsdecode(b"dir-\xff\xfe\n")
    odd_folder.mkdir()
    (odd_folder / "-").write_bytes(b"inside")
    (odd_folder / "link\\").symlink_to("../" + ODD_NAMES[0])
    deep = live.joinpath(*["d" * 250] * 5)
    deep.mkdir(parents=True)
    (deep / ("f" * 255)).write_bytes(b"far down")
    assert len(str(deep / ("f" * 255)).encode()) - len(str(live).encode()) > 1000


def test_odd_names_round_trip_through_backup_list_preview_verify_and_restore(service, config):
    live = scope_dir(config, Scope.site())
    make_odd_tree(live)
    before = tree_fingerprint(live)

    made = service.make_backup()
    again = service.show_backup(service.make_backup()["id"])["manifest"]  # a later backup still works
    assert again["files"]["linked_unread"] == again["files"]["count"] == made["files"]
    assert [b["id"] for b in service.list_backups()] == [again["id"], made["id"]]
    assert service.verify_backup(made["id"])["ok"]
    preview = service.preview_restore(made["id"])
    files = {p for p, facts in before.items() if facts[0] not in ("dir", "link")}
    assert preview["files"]["unchanged"] == len(files) == made["files"]

    shutil.rmtree(live)
    live.mkdir()
    (live / "other").write_text("other")
    preview = service.preview_restore(made["id"])
    kinds = ("files", "links", "folders")
    assert {p for word in kinds for p in preview[word]["added"]["paths"]} == set(before)
    service.restore_backup(made["id"])
    assert tree_fingerprint(live) == before


def test_a_backslash_in_a_name_does_not_break_later_backups_or_restores_of_older_ones(service, config):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "clean.txt").write_text("clean")
    clean = service.make_backup()
    (live / "back\\slash.txt").write_text("odd")
    service.make_backup()
    service.make_backup()
    service.restore_backup(clean["id"])
    assert sorted(p.name for p in live.iterdir()) == ["clean.txt"]


def test_identical_content_under_255_byte_names_is_stored_once(service, config):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    for n in range(40):
        (live / (f"{n:03d}" + "n" * 252)).write_bytes(b"same content")
    made = service.make_backup()
    assert made["files"] == 40
    objects = [p for p in config.pool_dir.glob("??/*")]
    assert len(objects) == 1 and objects[0].stat().st_nlink == 41


def test_a_private_copy_under_a_255_byte_name_is_replaced_by_a_link_to_the_object(tmp_path):
    pool = Pool(tmp_path / "pool")
    (tmp_path / "a").write_bytes(b"same")
    (tmp_path / "out").mkdir()
    digest, _, _ = pool.store(tmp_path / "a", tmp_path / "out" / "first")
    private = tmp_path / "out" / ("n" * 255)
    private.write_bytes(b"same")  # what a writer that lost the race to publish holds
    pool._share(digest, private)
    assert private.stat().st_ino == pool.object_path(digest).stat().st_ino
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["first", "n" * 255]


def test_the_dry_run_shows_every_odd_name_on_one_printable_line(service, config, cli):
    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    made = service.make_backup()
    (live / "new\nline").write_text("x")
    (live / os.fsdecode(b"caf\xe9")).write_text("x")
    result = cli("restore", made["id"], "--dry-run")
    assert result.exit_code == 0, result.output
    assert "\n  - new\\nline\n" in result.output
    assert "\n  - caf\\xe9\n" in result.output


def test_ls_and_diff_show_a_name_that_is_not_utf8_as_the_dry_run_does(service, config, cli):
    live = scope_dir(config, Scope.site())
    folder = live / os.fsdecode(b"dir-\xff")
    folder.mkdir(parents=True)
    (folder / os.fsdecode(b"caf\xe9")).write_text("x")
    (folder / "link").symlink_to(os.fsdecode(b"caf\xe9"))
    made = service.make_backup()
    (folder / os.fsdecode(b"caf\xe9")).write_text("changed")

    top = cli("ls", made["id"])
    inside = cli("ls", made["id"], os.fsdecode(b"dir-\xff"))
    changed = cli("diff", made["id"])

    assert "dir-\\xff/" in top.output and "udc" not in top.output
    assert "  caf\\xe9\n" in inside.output and "link -> caf\\xe9" in inside.output and "udc" not in inside.output
    assert "~ dir-\\xff/caf\\xe9" in changed.output and "udc" not in changed.output


def test_the_web_preview_shows_odd_names_readably(web_data):
    from strongroom.web import create_app

    app = create_app(web_data.config("pilot"), secret_key="test")
    client = app.test_client()
    signed_in(client, "org1")
    folder = scope_dir(web_data.config(), Scope.project(web_data.project_a))
    (folder / os.fsdecode(b"caf\xe9.txt")).write_text("x")
    (folder / "new\nline.txt").write_text("x")
    response = client.get(f"/backups/projects/{web_data.project_a}/{web_data.backups['pilot']['A']}/preview")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "caf\\xe9.txt" in page and "new\\nline.txt" in page


def test_the_file_list_is_json_lines_with_utf8_names_and_escapes_for_names_that_are_not(service, config):
    import json

    live = scope_dir(config, Scope.site())
    live.mkdir(parents=True)
    (live / "café.txt").write_bytes(b"a")
    (live / os.fsdecode(b"raw\xff.bin")).write_bytes(b"b")
    made = service.make_backup()
    listing = config.backups_dir / "site" / made["id"] / "files.jsonl"
    raw = listing.read_bytes()
    assert "café.txt".encode() in raw  # readable as it is: grep finds the name
    assert b"\\udcff" in raw  # a byte that is not UTF-8: kept, as an ASCII escape
    paths = [json.loads(line)["path"] for line in raw.splitlines()]
    assert sorted(paths) == sorted(["café.txt", os.fsdecode(b"raw\xff.bin")])
    assert service.restore_backup(made["id"])["files"] == 2
