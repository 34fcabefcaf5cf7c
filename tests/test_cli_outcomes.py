"""What the command says is what happened, in words a person reads: counts with their
plurals and both kinds of thing counted, nothing to do said as such, and no refusal or
cancellation worded as something else."""

import json

from bson import ObjectId


def test_one_project_out_of_a_site_backup_counts_its_records_and_a_no_op_says_nothing_to_restore(
        cli, config, database, site):
    project = site.project_ids[0]
    backup = cli("backup").output.strip()
    title = database.project.find_one({"_id": ObjectId(project)})["title"]
    database.project.update_one({"_id": ObjectId(project)}, {"$set": {"title": "renamed meanwhile"}})

    done = cli("restore", backup, "--project", project, "--from-site", "--yes")
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"Restored all files and ") and " records of project “" in done.output
    assert "(0 files copied, " in done.output  # the files were as they are: only the records changed
    assert database.project.find_one({"_id": ObjectId(project)})["title"] == title
    backups = len(json.loads(cli("list", "--project", project, "--json").output))

    again = cli("restore", backup, "--project", project, "--from-site", "--yes")
    assert again.exit_code == 0, again.output
    assert again.output.startswith("Nothing to restore: project “"), again.output
    assert "no pre-restore backup was needed" in again.output
    assert len(json.loads(cli("list", "--project", project, "--json").output)) == backups  # none made
    assert json.loads(cli("restore", backup, "--project", project, "--from-site", "--yes", "--json").output)["pre_restore"] is None
