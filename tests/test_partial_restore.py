"""Restoring part of a scope: chosen files and folders, or one project of a site backup,
in place (with a whole restore's safety) or into a folder of their own (``--to``).

The sentence every test here comes back to: the chosen parts end exactly as in the
backup, and nothing outside them changes."""

import os
import shutil
from pathlib import Path

import pytest
from bson import ObjectId

from conftest import records_fingerprint, tree_fingerprint
from strongroom.errors import BadInput, InvalidName, LinkedFolder, NotFound, RestoreFailed
from strongroom.fs import mutations
from strongroom.scopes import Scope, project_queries, scope_dir


def outside(fingerprint: dict, *parts: str) -> dict:
    return {path: value for path, value in fingerprint.items()
            if not any(path == part or path.startswith(part + "/") for part in parts)}


def inside(fingerprint: dict, *parts: str) -> dict:
    return {path: value for path, value in fingerprint.items()
            if any(path == part or path.startswith(part + "/") for part in parts)}


def test_restoring_one_file_puts_back_that_file_and_changes_nothing_else(service, config, database, site):
    live = config.working_dir
    made = service.make_backup()
    at_backup = tree_fingerprint(live)
    (live / "site.json").write_text('{"broken": true}')
    (live / "images" / "banner.png").write_bytes(b"changed after the backup")
    (live / "new-after-the-backup.txt").write_text("keep me")
    database.user.insert_one({"user": "newcomer", "role": "user"})
    changed, records = tree_fingerprint(live), records_fingerprint(database)

    result = service.restore_parts(made["id"], ["site.json"])

    after = tree_fingerprint(live)
    assert after["site.json"] == at_backup["site.json"]
    assert outside(after, "site.json") == outside(changed, "site.json")
    assert records_fingerprint(database) == records
    assert result["parts"] == ["site.json"] and result["records_restored"] is False
    assert result["copied"] == 1
    pre = service.show_backup(result["pre_restore"])
    assert pre["reason"] == "pre-restore" and pre["files"] == len([v for v in changed.values() if v[0] == "file"])


def test_restoring_a_folder_gives_back_its_files_and_removes_what_was_added_in_it(service, config, site):
    live = config.working_dir
    made = service.make_backup()
    at_backup = tree_fingerprint(live)
    texts = sorted((live / "texts").iterdir())
    texts[0].unlink()
    texts[1].write_text("changed")
    (live / "texts" / "added.txt").write_text("added after the backup")
    (live / "images" / "added.png").write_bytes(b"outside the part")
    changed = tree_fingerprint(live)

    service.restore_parts(made["id"], ["texts/"])

    after = tree_fingerprint(live)
    assert inside(after, "texts") == inside(at_backup, "texts")
    assert outside(after, "texts") == outside(changed, "texts")


def test_several_paths_are_restored_together_and_a_path_inside_another_counts_once(service, config, site):
    live = config.working_dir
    project = site.project_ids[0]
    made = service.make_backup()
    at_backup = tree_fingerprint(live)
    (live / "site.json").write_text("{}")
    shutil.rmtree(live / "project" / project / "edition")
    (live / "project" / project / "about.md").write_text("outside the parts")
    changed = tree_fingerprint(live)
    one_edition = next(path for path in at_backup if path.startswith(f"project/{project}/edition/"))
    parts = ["site.json", f"project/{project}/edition/", one_edition, f"project/{project}/edition"]

    result = service.restore_parts(made["id"], parts)

    after = tree_fingerprint(live)
    chosen = [f"project/{project}/edition", "site.json"]  # in walk order
    assert result["parts"] == chosen
    assert inside(after, *chosen) == inside(at_backup, *chosen)
    assert outside(after, *chosen) == outside(changed, *chosen)


def test_a_file_whose_folders_were_deleted_comes_back_with_them(service, config, site):
    live = config.working_dir
    project = site.project_ids[1]
    made = service.make_backup()
    at_backup = tree_fingerprint(live)
    shutil.rmtree(live / "project" / project)
    deep = next(path for path in sorted(at_backup) if path.startswith(f"project/{project}/edition/")
                and at_backup[path][0] == "file")

    service.restore_parts(made["id"], [deep])

    after = tree_fingerprint(live)
    assert after[deep] == at_backup[deep]
    assert [path for path in after if path.startswith(f"project/{project}")] == \
        [path for path in at_backup if path.startswith(f"project/{project}") and (deep == path or deep.startswith(path + "/"))]


def test_a_path_the_backup_does_not_hold_is_refused_by_name_before_anything_changes(service, config, site):
    made = service.make_backup()
    (config.working_dir / "site.json").write_text("{}")
    before = tree_fingerprint(config.working_dir)

    with pytest.raises(NotFound, match="holds no nothing-here.txt.*nothing was changed"):
        service.restore_parts(made["id"], ["site.json", "nothing-here.txt"])

    assert tree_fingerprint(config.working_dir) == before
    assert [b["id"] for b in service.list_backups()] == [made["id"]]  # no pre-restore backup either


@pytest.mark.parametrize("path", ["../escape", "/etc/passwd", "a/../../b", "", "."])
def test_a_path_that_could_leave_the_scope_is_refused(service, site, path):
    made = service.make_backup()
    with pytest.raises((InvalidName, BadInput)):
        service.restore_parts(made["id"], [path])


def test_the_preview_counts_only_the_parts_and_changes_nothing(service, config, site):
    live = config.working_dir
    made = service.make_backup()
    (live / "texts" / "added.txt").write_text("x")
    (live / "site.json").write_text("{}")  # outside the part: not counted
    before = tree_fingerprint(live)

    report = service.preview_parts(made["id"], ["texts"])

    assert report["files"]["removed"]["paths"] == ["texts/added.txt"]
    assert report["files"]["changed"]["count"] == report["files"]["added"]["count"] == 0
    files_in_part = [path for path, item in inside(before, "texts").items() if item[0] == "file"]
    assert report["files"]["unchanged"] == len(files_in_part) - 1  # folders are counted apart
    assert report["records"] == {} and report["records_restored"] is False
    assert tree_fingerprint(live) == before


def test_files_others_write_outside_the_parts_during_the_restore_are_kept(service, config, site):
    live = config.working_dir
    made = service.make_backup()
    (live / "site.json").write_text("{}")
    written = []

    def others_write(kind, detail):  # just before the live folder is moved aside
        if kind == "rename" and ".old-" in detail and not written:
            (live / "written-meanwhile.txt").write_text("by someone else")
            written.append(detail)

    previous = mutations.set_hook(others_write)
    try:
        result = service.restore_parts(made["id"], ["site.json"])
    finally:
        mutations.set_hook(previous)

    assert written and result["rescued"]["count"] == 1
    assert (Path(result["rescued"]["place"]) / "written-meanwhile.txt").read_text() == "by someone else"


# -- into a folder of their own (--to) -------------------------------------------------------


def test_to_writes_the_parts_into_a_new_folder_and_changes_nothing_live(service, config, database, site, tmp_path):
    live = config.working_dir
    made = service.make_backup()
    at_backup = tree_fingerprint(live)
    (live / "texts").rename(live / "texts-moved")
    before, records = tree_fingerprint(live), records_fingerprint(database)
    target = tmp_path / "recovered"

    result = service.restore_parts(made["id"], ["texts", "site.json"], to=target)

    assert tree_fingerprint(target) == inside(at_backup, "texts", "site.json")
    assert tree_fingerprint(live) == before and records_fingerprint(database) == records
    assert [b["id"] for b in service.list_backups()] == [made["id"]]  # nothing live: no pre-restore
    assert result["to"] == str(target) and result["records_restored"] is False
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".recovered")]


def test_to_fills_an_empty_folder_and_refuses_one_that_is_not_empty(service, site, tmp_path):
    made = service.make_backup()
    empty, full = tmp_path / "empty", tmp_path / "full"
    empty.mkdir()
    full.mkdir()
    (full / "mine.txt").write_text("not to be lost")

    service.restore_parts(made["id"], ["site.json"], to=empty)
    with pytest.raises(BadInput, match="not an empty folder"):
        service.restore_parts(made["id"], ["site.json"], to=full)

    assert os.listdir(empty) == ["site.json"]
    assert os.listdir(full) == ["mine.txt"]


@pytest.mark.parametrize("where", ["working/pilot/restored", "working/test", "backups/pilot/x", "backups", "."])
def test_to_refuses_a_folder_inside_the_live_files_or_the_backups(service, config, site, where):
    made = service.make_backup()
    before = tree_fingerprint(config.data_dir / "working")
    with pytest.raises(BadInput, match="inside the live files or the backups"):
        service.restore_parts(made["id"], ["site.json"], to=config.data_dir / where)
    assert tree_fingerprint(config.data_dir / "working") == before


def test_to_never_follows_a_link(service, site, tmp_path):
    made = service.make_backup()
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)

    for target in (tmp_path / "link", tmp_path / "link" / "below"):
        with pytest.raises(LinkedFolder, match="symbolic link"):
            service.restore_parts(made["id"], ["site.json"], to=target)

    assert os.listdir(real) == []


# -- one project of a site backup, on both engines ------------------------------------------


@pytest.fixture
def engine_parts(engine_config, engine_database, engine_site, engine_service):
    return engine_config, engine_database, engine_site, engine_service


def test_one_project_comes_back_from_a_site_backup_with_its_records_and_nothing_else(engine_parts):
    config, database, site, service = engine_parts
    project, other = site.project_ids[0], site.project_ids[1]
    queries = project_queries(config, project)
    folder = scope_dir(config, Scope.project(project))
    made = service.make_backup()
    files_at_backup, records_at_backup = tree_fingerprint(folder), records_fingerprint(database, queries)
    (folder / "about.md").unlink()
    (folder / "added.bin").write_bytes(b"added")
    database.edition.insert_one({"projectId": ObjectId(project), "title": "later"})
    database.project.update_one({"_id": ObjectId(project)}, {"$set": {"title": "renamed"}})
    (scope_dir(config, Scope.project(other)) / "about.md").write_text("the other project changed")
    database.edition.update_one({"projectId": ObjectId(other)}, {"$set": {"title": "other changed"}})
    database.user.insert_one({"user": "newcomer", "role": "user"})
    rest_files = outside(tree_fingerprint(config.working_dir), f"project/{project}")
    rest_records = records_fingerprint(database)
    rest_records["edition"] = [d for d in rest_records["edition"] if d["projectId"] != ObjectId(project)]
    del rest_records["project"]

    assert service.from_site_backup(made["id"], project)
    preview = service.preview_parts(made["id"], project_id=project)
    result = service.restore_parts(made["id"], project_id=project)

    assert preview["records"]["edition"]["removed"] == 1 and preview["records"]["project"]["changed"] == 1
    assert tree_fingerprint(folder) == files_at_backup
    assert records_fingerprint(database, queries) == records_at_backup
    assert outside(tree_fingerprint(config.working_dir), f"project/{project}") == rest_files
    after = records_fingerprint(database)
    after["edition"] = [d for d in after["edition"] if d["projectId"] != ObjectId(project)]
    del after["project"]
    assert after == rest_records
    assert database.project.count_documents({}) == len(site.project_ids)
    assert result["records_restored"] is True
    assert service.show_backup(result["pre_restore"], project)["scope"] == "project"


def test_a_path_of_one_project_from_a_site_backup_restores_files_only(engine_parts):
    config, database, site, service = engine_parts
    project = site.project_ids[2]
    folder = scope_dir(config, Scope.project(project))
    made = service.make_backup()
    at_backup = tree_fingerprint(folder)
    (folder / "about.md").write_text("changed")
    (folder / "icon.png").write_bytes(b"changed too")
    database.edition.insert_one({"projectId": ObjectId(project), "title": "later"})
    records = records_fingerprint(database)

    result = service.restore_parts(made["id"], ["about.md"], project_id=project)

    after = tree_fingerprint(folder)
    assert after["about.md"] == at_backup["about.md"] and after["icon.png"] != at_backup["icon.png"]
    assert records_fingerprint(database) == records and result["records_restored"] is False


def test_a_project_a_site_backup_does_not_hold_is_refused(service, site):
    made = service.make_backup()
    with pytest.raises(NotFound, match="holds no project"):
        service.restore_parts(made["id"], project_id="0123456789abcdef01234567")


def test_a_project_backup_with_the_site_backups_id_comes_first_unless_from_site_is_asked(config, database, site):
    from datetime import UTC, datetime

    from strongroom.service import Strongroom

    frozen = Strongroom(config, database=database, clock=lambda: datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC))
    project = site.project_ids[0]
    folder = scope_dir(config, Scope.project(project))
    made = frozen.make_backup()
    (folder / "about.md").write_text("as in the project's own backup")
    assert frozen.make_backup(project)["id"] == made["id"]  # one id, two scopes
    (folder / "about.md").write_text("changed since both")

    assert not frozen.from_site_backup(made["id"], project)
    frozen.restore_parts(made["id"], ["about.md"], project)
    assert (folder / "about.md").read_text() == "as in the project's own backup"
    assert frozen.from_site_backup(made["id"], project, from_site=True)
    frozen.restore_parts(made["id"], ["about.md"], project, from_site=True)
    assert (folder / "about.md").read_text() != "as in the project's own backup"
    with pytest.raises(NotFound, match="name the project"):
        frozen.restore_parts(made["id"], ["about.md"], from_site=True)


def test_a_failed_restore_of_paths_rolls_back_the_files_and_leaves_records_written_meanwhile(service, config,
                                                                                              database, site):
    live = config.working_dir
    made = service.make_backup()
    (live / "site.json").write_text("{}")
    before = tree_fingerprint(live)

    def fail_at_the_swap(kind, detail):  # someone writes a record, then the disk fails
        if kind == "rename" and ".old-" in detail:
            database.user.insert_one({"user": "written-meanwhile", "role": "user"})
            raise OSError(5, "Input/output error")

    previous = mutations.set_hook(fail_at_the_swap)
    try:
        with pytest.raises(RestoreFailed, match="put back as it was"):
            service.restore_parts(made["id"], ["site.json"])
    finally:
        mutations.set_hook(previous)

    assert tree_fingerprint(live) == before
    assert database.user.count_documents({"user": "written-meanwhile"}) == 1  # records never touched
    assert service.maintenance() is None


def test_parts_take_one_path_given_alone_and_fold_a_path_inside_another():
    from strongroom.restore.parts import Parts

    assert Parts("texts/intro.md").paths == ["texts/intro.md"]
    assert Parts(["texts/a", "texts", "site.json", "texts/"]).paths == ["site.json", "texts"]
    assert Parts(["a/b/c"]).ancestors == {"a", "a/b"}
    with pytest.raises(BadInput):
        Parts([])
