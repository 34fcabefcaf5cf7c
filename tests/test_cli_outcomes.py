"""What the command says is what happened, in words a person reads: counts with their
plurals and both kinds of thing counted, nothing to do said as such, and no refusal or
cancellation worded as something else."""

import json

from bson import ObjectId

from strongroom.db.engines import open_database


def test_one_project_out_of_a_site_backup_counts_its_records_and_a_no_op_says_nothing_to_restore(
        cli, config, database, site):
    project = site.project_ids[0]
    backup = cli("backup").output.strip()
    title = database.project.find_one({"_id": ObjectId(project)})["title"]
    database.project.update_one({"_id": ObjectId(project)}, {"$set": {"title": "renamed meanwhile"}})

    done = cli("restore", backup, "--project", project, "--from-site", "--yes")
    assert done.exit_code == 0, done.output
    assert done.output.startswith("Restored all files and ") and " records of project “" in done.output
    assert "(0 files copied, " in done.output  # the files were as they are: only the records changed
    assert database.project.find_one({"_id": ObjectId(project)})["title"] == title
    backups = len(json.loads(cli("list", "--project", project, "--json").output))

    again = cli("restore", backup, "--project", project, "--from-site", "--yes")
    assert again.exit_code == 0, again.output
    assert again.output.startswith("Nothing to restore: project “"), again.output
    assert "no pre-restore backup was needed" in again.output
    assert len(json.loads(cli("list", "--project", project, "--json").output)) == backups  # none made
    assert json.loads(cli("restore", backup, "--project", project, "--from-site", "--yes", "--json").output)["pre_restore"] is None


def test_status_tells_a_restore_running_now_from_one_that_was_interrupted(cli, config, site, tmp_path):
    """A restore stopped (SIGSTOP) mid-way by the fault hook still holds the lock: status
    says it is running; once its process is killed, that it was interrupted."""
    import os
    import subprocess
    import sys

    from test_cli_faults import RUNNER

    backup = cli("backup").output.strip()
    (config.working_dir / "site.json").write_text("changed")
    database = open_database(config)  # a record changed too: records that already are the backup's are not loaded
    database.project.update_one({"_id": database.project.find_one({})["_id"]}, {"$set": {"title": "changed"}})
    env = {**os.environ, "FAULT": "SIGSTOP", "FAULT_AT": "insert after rename .staging-"}
    child = subprocess.Popen([sys.executable, "-c", RUNNER, "--data-dir", str(config.data_dir), "--mode", config.mode,
                              "restore", backup, "--yes"], env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _, state = os.waitpid(child.pid, os.WUNTRACED)  # returns once it has stopped itself, at that point
        assert os.WIFSTOPPED(state)
        running = cli("status")
        line = next(x for x in running.output.splitlines() if "restore journal" in x)
        assert f"running: restore of {backup} (the whole site), step records" in line, line
        assert "PENDING" not in line and "( " not in line and " )" not in line
        assert json.loads(cli("status", "--json").output)["restore_pending"]["running"] is True
    finally:
        child.kill()
        child.wait()
    interrupted = cli("status")
    line = next(x for x in interrupted.output.splitlines() if "restore journal" in x)
    assert f"PENDING: restore of {backup} (the whole site), step records, interrupted;" in line, line
    assert json.loads(cli("status", "--json").output)["restore_pending"]["running"] is False


def test_a_prune_dry_run_gives_the_real_runs_figures_and_is_logged_as_a_dry_run(cli, config, site):
    for n in range(4):  # each backup holds a file no later one does
        (config.working_dir / "new.bin").write_bytes(bytes([n]) * (1000 + n))
        assert cli("backup").exit_code == 0
    dry = json.loads(cli("prune", "--keep-last", "1", "--dry-run", "--json").output)
    assert dry["dry_run"] is True and len(dry["deleted"]) == 3 and dry["bytes_freed"] > 0
    logged = json.loads(cli("log", "--json").output)[-1]
    assert logged["operation"] == "prune" and logged["dry_run"] is True
    assert "deleted" not in logged and logged["would_delete"] == dry["deleted"]
    assert cli("log").output.splitlines()[-1].endswith("dry run")
    text = cli("prune", "--keep-last", "1", "--dry-run").output
    assert text.startswith("Would delete 3 backups, kept 1 (") and "would be freed)." in text.splitlines()[0]

    real = json.loads(cli("prune", "--keep-last", "1", "--yes", "--json").output)
    assert real["deleted"] == dry["deleted"]
    assert (real["objects_freed"], real["bytes_freed"]) == (dry["objects_freed"], dry["bytes_freed"])
    assert "dry_run" not in json.loads(cli("log", "--json").output)[-1]


NOTES_REFUSED = ["esc \x1b]0;title\x07", "bell \x07", "rtl \u202eabc", "line \u2028 sep", "new\nline",
                 "isolate \u2066x\u2069", "lone \ud800 x", "x" * 501]


def test_every_face_refuses_a_note_the_api_refuses_and_makes_nothing(cli, config, database, site, tmp_path):
    """One validator (``humanize.validate_note``): the CLI's backup and import, the library,
    an archive's import, as the API and the web forms (``web.face``) refuse it."""
    import pytest

    from strongroom.errors import BadInput
    from strongroom.service import Strongroom
    from test_importing import ORIGINAL_TIME, write_original_backup

    made = cli("backup").output.strip()
    archive = tmp_path / "site.tar"
    assert cli("export", made, "-o", str(archive)).exit_code == 0
    source = write_original_backup(tmp_path / ORIGINAL_TIME, database, {"user": {}}, config.working_dir, True)
    service = Strongroom(config)
    for note in NOTES_REFUSED:
        for args in (["backup", "--note", note], ["import", str(source), "--note", note],
                     ["import", str(archive), "--note", note]):
            result = cli(*args)
            assert result.exit_code == 2, (args, result.output)
            assert "the note must be one line of at most 500 printable characters" in result.output
        with pytest.raises(BadInput):
            service.make_backup(note=note)
    assert [b["id"] for b in json.loads(cli("list", "--json").output)] == [made]  # nothing was made
    kept = "Café — 日本語 «quoted» " + "y" * 470
    assert cli("backup", "--note", kept).exit_code == 0
    assert json.loads(cli("list", "--json").output)[0]["note"] == kept


def test_an_imported_folder_s_name_in_the_note_it_gets_is_escaped(cli, config, database, site, tmp_path):
    from test_importing import ORIGINAL_TIME, write_original_backup

    source = write_original_backup(tmp_path / ORIGINAL_TIME, database, {"user": {}}, config.working_dir, True)
    odd = source.rename(tmp_path / f"{ORIGINAL_TIME}\u202eevil\x1b")
    result = cli("import", str(odd))
    assert result.exit_code == 0, result.output
    notes = [backup["note"] for backup in json.loads(cli("list", "--json").output)]
    assert all(note.isprintable() and len(note) <= 500 for note in notes)
    assert any(note.endswith("\\u202eevil\\x1b") for note in notes), notes


def test_export_compresses_by_the_name_refuses_to_replace_a_file_and_names_no_temporary_file(cli, site, tmp_path):
    import gzip

    made = cli("backup").output.strip()
    target = tmp_path / "x.tar.gz"
    done = cli("export", made, "-o", str(target))
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"Exported {made} (") and " of tar) to " in done.output
    assert " bytes of tar" not in done.output and "1 stored contents" not in done.output
    header = target.read_bytes()[:10]
    assert header[:2] == b"\x1f\x8b", "not gzip"
    assert not header[3] & 0x08, "the gzip header names a file"  # FNAME: no temporary name in it
    assert gzip.decompress(target.read_bytes())[257:262] == b"ustar"
    before = target.read_bytes()
    again = cli("export", made, "-o", str(target))
    assert again.exit_code == 2 and f"refusing to replace {target}" in again.output and "--force" in again.output
    assert target.read_bytes() == before
    assert cli("export", made, "-o", str(target), "--force").exit_code == 0
    plain = tmp_path / "x.tar"
    assert cli("export", made, "-o", str(plain)).exit_code == 0
    assert plain.read_bytes()[257:262] == b"ustar"
    zstd = tmp_path / "x.tar.zst"
    assert cli("export", made, "-o", str(zstd)).exit_code == 0
    assert zstd.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    assert cli("import", str(target)).exit_code == 0


def test_the_words_count_right_and_name_what_is_refused(cli, config, site):
    made = cli("backup").output.strip()
    status = cli("status").output
    assert "1 backup;" in status and "1 backups" not in status
    assert "stored content" in status and " objects" not in status
    show = cli("show", made).output
    assert " files, " in show and " folders, " in show
    assert " files " in cli("list").output

    keep0 = cli("prune", "--keep-last", "0", "--yes")
    assert keep0.exit_code == 2 and "a number above 0" in keep0.output and "give --keep-last," not in keep0.output
    up = cli("restore", made, "--path", "../x", "--yes")
    assert up.exit_code == 2 and "'..'" in up.output and "not a relative path" not in up.output
    absolute = cli("restore", made, "--path", "/etc/passwd", "--yes")
    assert absolute.exit_code == 2 and "absolute path" in absolute.output

    (config.working_dir / "texts" / "only.txt").write_text("x")
    restored = cli("restore", made, "--path", "texts/only.txt", "--to", str(config.data_dir.parent / "out"))
    assert restored.exit_code != 0 or "(1 files)" not in restored.output
    (config.working_dir / "site.json").write_text("changed again")
    one = cli("restore", made, "--path", "site.json", "--yes")
    assert one.exit_code == 0 and "(1 file copied," in one.output, one.output


def test_diff_orders_added_changed_removed_as_the_dry_run_does(cli, config, site):
    made = cli("backup").output.strip()
    (config.working_dir / "new.txt").write_text("new")
    (config.working_dir / "site.json").write_text("changed")
    removed = next(p for p in (config.working_dir / "texts").iterdir() if p.is_file())
    removed.unlink()
    lines = cli("diff", made).output.splitlines()
    dry = cli("restore", made, "--dry-run").output.splitlines()
    for shown in (lines, dry):  # one table: the same headers in the same order
        assert any(line.split() == ["added", "changed", "removed", "unchanged"] for line in shown), shown
        marks = [line.strip()[0] for line in shown if line.strip()[:2] in ("+ ", "~ ", "- ")]
        assert marks == sorted(marks, key="+~-".index) and set(marks) == set("+~-"), marks


def test_log_columns_stand_still_whatever_the_operation(cli, config, site):
    made = cli("backup").output.strip()
    (config.working_dir / "site.json").write_text("changed")
    assert cli("restore", made, "--path", "site.json", "--yes").exit_code == 0
    lines = [line for line in cli("log").output.splitlines() if line.strip()]
    starts = {line.index(" ok ") for line in lines}
    assert len(starts) == 1, lines
