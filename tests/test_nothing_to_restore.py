"""A restore that would change nothing says so, before and after (issue 21): its preview
says "would change nothing" (not a table of zeros, not "nothing has changed yet") on
every face, and a restore of a path that already is the backup's does nothing, makes no
pre-restore backup and says "Nothing to restore", as a whole restore does; a restore of
a path counts the files in that path, not in the whole site."""

import json
import os
import re

from strongroom.scopes import Scope, scope_dir
from test_web import demo, text  # noqa: F401 - the demo app fixture and its page text
from test_web_api import api, conforms  # noqa: F401 - the fixture
from test_web_security import signed_in
from web_support import engine_prepared, engine_web_data, prepared, web_data  # noqa: F401 - fixtures


def _files_below(folder) -> int:
    return sum(1 for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def test_the_preview_of_a_restore_that_would_change_nothing_says_so_whole_in_part_or_one_project(
        service, config, site):
    project = site.project_ids[0]
    made = service.make_backup()["id"]
    own = service.make_backup(project)["id"]

    whole = service.preview_restore(made)
    assert whole["changes_nothing"] is True and whole["changes_only_metadata"] is False
    assert service.preview_restore(own, project)["changes_nothing"] is True
    assert service.preview_parts(made, ["texts"])["changes_nothing"] is True
    assert service.preview_parts(made, (), project, from_site=True)["changes_nothing"] is True

    (config.working_dir / "texts" / "added.txt").write_text("after the backup")
    assert service.preview_restore(made)["changes_nothing"] is False
    assert service.preview_parts(made, ["texts"])["changes_nothing"] is False
    assert service.preview_parts(made, ["images"])["changes_nothing"] is True  # outside the change


def test_a_preview_that_counts_no_difference_but_a_folders_time_says_the_restore_would_still_run(
        service, config, site):
    made = service.make_backup()["id"]
    texts = config.working_dir / "texts"
    os.utime(texts, ns=(1, 1))  # as a file made and removed again leaves it: nothing counted differs

    report = service.preview_restore(made)

    assert report["changes_nothing"] is False and report["changes_only_metadata"] is True
    assert service.restore_backup(made)["unchanged"] is False  # the restore does run: the preview said so


def test_the_cli_dry_run_says_would_change_nothing_instead_of_a_table_of_zeros(cli, config, site):
    project = site.project_ids[0]
    made = cli("backup").output.strip()

    for args, start in ((["restore", made], "Restoring the whole site from "),
                        (["restore", made, "--path", "texts"], "Restoring texts of the site from "),
                        (["restore", made, "--project", project], "Restoring all files of project “")):
        shown = cli(*args, "--dry-run")
        assert shown.exit_code == 0, shown.output
        first = shown.output.splitlines()[0]
        assert first.startswith(start) and " would change nothing: every file " in first, shown.output
        assert "added" not in shown.output and "unchanged" not in shown.output  # no table of zeros
        assert "Nothing has changed" not in shown.output
        assert json.loads(cli(*args, "--dry-run", "--json").output)["changes_nothing"] is True

    os.utime(config.working_dir / "texts", ns=(1, 1))
    shown = cli("restore", made, "--dry-run").output
    assert " would change:\n" in shown and "set back folder modes or times" in shown


def test_restoring_a_path_that_already_is_the_backups_does_nothing_and_says_so(cli, service, config, site):
    made = cli("backup").output.strip()
    live = config.working_dir
    inodes = {path: path.lstat().st_ino for path in live.rglob("*")}

    done = cli("restore", made, "--path", "texts", "--yes")

    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"Nothing to restore: texts of the site already is as backup {made} holds it"), \
        done.output
    assert f"({_files_below(live / 'texts')} files)" in done.output and "no pre-restore backup" in done.output
    assert [b["id"] for b in service.list_backups()] == [made]  # no pre-restore backup
    assert {path: path.lstat().st_ino for path in live.rglob("*")} == inodes  # nothing rebuilt
    result = service.restore_parts(made, ["texts", "site.json"])
    assert result["unchanged"] is True and result["pre_restore"] is None
    assert result["files"] == result["kept"] == _files_below(live / "texts") + 1
    assert service.last_audit_entries(1)[0]["outcome"] == "ok"


def test_a_restore_of_a_path_counts_the_files_in_that_path_not_in_the_site(cli, service, config, site):
    made = cli("backup").output.strip()
    texts = config.working_dir / "texts"
    in_texts, in_site = _files_below(texts), _files_below(config.working_dir)
    assert in_site > in_texts + 5
    min(texts.iterdir()).write_text("changed after the backup")

    done = cli("restore", made, "--path", "texts", "--yes")

    assert done.exit_code == 0, done.output
    assert f"(1 file copied, {in_texts - 1} unchanged)" in done.output, done.output
    again = service.restore_parts(made, ["texts"])
    assert again["unchanged"] is True
    min(texts.iterdir()).write_text("changed again")
    result = service.restore_parts(made, ["texts"])
    assert (result["files"], result["copied"], result["kept"]) == (in_texts, 1, in_texts - 1)


def test_the_web_preview_of_a_restore_that_would_change_nothing_says_so_and_offers_no_restore(demo):
    _app, client, data = demo
    token = signed_in(client, "org1")
    backup = data.backups["pilot"]["A"]  # project A as it is now
    url = f"/backups/projects/{data.project_a}/{backup}"

    page = text(client.get(f"{url}/preview"))
    words = re.search(r'<p id="sr-preview-words"[^>]*>(.*?)</p>', page, re.DOTALL).group(1)
    assert words.startswith("Restoring this backup would change nothing: every file and record of project")
    assert "There is nothing to restore." in words and "Nothing has changed" not in page
    assert 'id="sr-preview-files"' not in page and 'id="sr-confirm-restore"' not in page

    part = text(client.post(f"{url}/preview-part", data={"csrf_token": token, "path": "about.md"}))
    assert "Restoring this would change nothing: every file there already is as the backup holds it (1 file)" in part
    assert 'id="sr-confirm-restore-part"' not in part

    (scope_dir(data.config(), Scope.project(data.project_a)) / "about.md").write_text("changed")
    changed = text(client.get(f"{url}/preview"))
    assert "would change nothing" not in changed and 'id="sr-confirm-restore"' in changed


def test_the_api_preview_says_whether_the_restore_would_change_anything(api):
    _app, call, data = api
    backup = data.backups["pilot"]["A"]
    url, path = f"/projects/{data.project_a}/backups/{backup}/restore", "/projects/{project_id}/backups/{backup_id}/restore"
    preview = conforms(call("POST", url, json={}), path, "post")["preview"]
    assert preview["changes_nothing"] is True and preview["changes_only_metadata"] is False
    (scope_dir(data.config(), Scope.project(data.project_a)) / "about.md").write_text("changed")
    assert conforms(call("POST", url, json={}), path, "post")["preview"]["changes_nothing"] is False


def test_the_preview_of_a_path_lists_only_that_path_and_the_folders_leading_to_it(service, config, site, monkeypatch):
    """So that asking whether one file needs restoring costs that file, not a walk of the site."""
    from strongroom.fs import walking

    project = site.project_ids[0]
    made = service.make_backup()["id"]
    part = min((config.working_dir / "project" / project).rglob("scene.json")).parent.relative_to(config.working_dir)
    listed, listing = [], walking._listing
    monkeypatch.setattr(walking, "_listing", lambda fd: listed.append(os.readlink(f"/proc/self/fd/{fd}")) or listing(fd))

    assert service.preview_parts(made, [part.as_posix()])["changes_nothing"] is True

    root = str(config.working_dir)
    leading = {root, *(f"{root}/{'/'.join(part.parts[:n])}" for n in range(1, len(part.parts)))}
    assert listed and all(folder in leading or folder.startswith(f"{root}/{part.as_posix()}") for folder in listed), listed
