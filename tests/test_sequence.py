"""A new backup's sequence number comes after every backup of its scope, however made.

The sequence is the order backups were made in (``pruning`` keeps by it). The next one
is one more than the highest any complete backup of the scope holds: also a backup
whose id sorts older (pulled from elsewhere), one whose manifest was written in another
layout, and never one that a note merely mentions.
"""

import json
import shutil

from strongroom.scopes import Scope, backups_root
from tampering import read_manifest, resign


def test_the_next_sequence_is_after_every_backup_of_the_scope_whichever_holds_the_highest(service, config):
    config.working_dir.mkdir(parents=True)
    (config.working_dir / "page.html").write_text("<p>hello</p>\n")
    # A note is one line (``humanize.validate_note``); in the manifest its quotes are escaped.
    first = service.make_backup(note='"sequence": 900000,  "sequence": 900001')["id"]
    second = service.make_backup()["id"]
    assert service.store.next_sequence(Scope.site()) == 3  # a note that mentions one counts for nothing

    root = backups_root(config, Scope.site())
    older = "2020-01-01T00-00-00"  # pulled from elsewhere: an old id with a high number
    shutil.copytree(root / second, root / older, symlinks=True)
    manifest = {**read_manifest(root / second), "id": older, "sequence": 41}
    resign(config, root / older, manifest)  # written compactly, not as Strongroom writes it
    assert json.loads((root / older / "manifest.json").read_text())["sequence"] == 41
    assert service.store.next_sequence(Scope.site()) == 42

    made = service.make_backup()
    assert service.show_backup(made["id"])["manifest"]["sequence"] == 42
    assert service.store.sequences(Scope.site()) == {made["id"]: 42, second: 2, first: 1, older: 41}
