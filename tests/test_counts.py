"""Counts a person reads: "files" means regular files everywhere (issue 11, item 2).

A backup's summary, the restore preview of the service, the CLI's dry run and the API
all count through ``manifest.counted_as``: folders and links are never counted as files.
"""

import json
import re

from strongroom.scopes import Scope, scope_dir


def _tree(live):
    """5 files in 3 folders, one symbolic link."""
    for folder in ("a", "a/b", "c"):
        (live / folder).mkdir(parents=True, exist_ok=True)
    for n, path in enumerate(("top.txt", "a/one.txt", "a/b/two.txt", "a/b/three.txt", "c/four.txt")):
        (live / path).write_text(f"content {n}")
    (live / "c" / "to-top").symlink_to("../top.txt")


def test_the_preview_counts_files_not_folders_as_the_backup_does(service, config):
    live = scope_dir(config, Scope.site())
    _tree(live)
    made = service.make_backup()
    preview = service.preview_restore(made["id"])
    assert made["files"] == 5
    assert preview["files"]["unchanged"] == 5
    assert preview["folders"]["unchanged"] == 3 and preview["links"]["unchanged"] == 1

    (live / "a" / "b" / "two.txt").unlink()
    (live / "c" / "new.txt").write_text("new")
    (live / "d").mkdir()
    preview = service.preview_restore(made["id"])
    assert preview["files"]["added"]["paths"] == ["a/b/two.txt"]
    assert preview["files"]["removed"]["paths"] == ["c/new.txt"]
    assert preview["files"]["unchanged"] == 4
    assert preview["folders"]["removed"]["paths"] == ["d"]


def test_the_cli_dry_run_and_its_json_count_files_not_folders(cli, config, database):  # a site with a database
    _tree(scope_dir(config, Scope.site()))
    backup_id = cli("backup").output.strip()
    (scope_dir(config, Scope.site()) / "after.txt").write_text("made after the backup")
    shown = cli("restore", backup_id, "--dry-run")
    assert re.search(r"^  files +0 +0 +1 +5$", shown.output, re.MULTILINE), shown.output  # added changed removed unchanged
    report = json.loads(cli("restore", backup_id, "--dry-run", "--json").output)
    assert report["files"]["unchanged"] == 5
