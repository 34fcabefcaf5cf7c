"""The disaster-recovery drill (docs/disaster-recovery.md): the machine is gone, the bucket is not.

A site is backed up and its copies pushed to a real object store (SeaweedFS). Then a new
machine: an empty data dir, an empty database (a new one on the server, or a new embedded
one), no ``backups/``; only the bucket's settings and the keys docs/keys.md tells the operator
to keep elsewhere (the remote key, and the exported site key). With the documented commands
alone, run as an operator runs them (``key import``, ``list --remote``, ``pull``, ``restore``),
the whole site comes back: every file byte for byte with its mode and time, every record
identical as canonical Extended JSON, the backup history listed. With the remote key alone
the content comes back too, and the pull says that it signed the copies again.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
from bson import json_util

from conftest import new_bucket, tree_fingerprint
from strongroom.db.engines import list_collections, open_database

pytestmark = pytest.mark.parametrize("engine_config", ["embedded", "ferretdb"], indirect=True)


def _canonical_records(database) -> dict[str, list[str]]:
    """Every record of every collection as canonical Extended JSON, in ``_id`` order."""
    options = json_util.CANONICAL_JSON_OPTIONS
    return {name: sorted(json_util.dumps(doc, json_options=options) for doc in database[name].find())
            for name in list_collections(database)}


def _strongroom(data_dir, db_uri, *args, env=None) -> subprocess.CompletedProcess:
    """The CLI as an operator runs it on that machine."""
    command = [sys.executable, "-m", "strongroom.cli", "--data-dir", str(data_dir), "--mode", "pilot"]
    command += ["--db", db_uri] if db_uri else []
    done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, check=False, env={**os.environ, **(env or {})})
    assert done.returncode == 0, f"strongroom {' '.join(args)} failed: {done.stderr}"
    return done


@pytest.mark.parametrize("kept", ["remote and site keys", "remote key alone"])
def test_the_whole_site_comes_back_on_a_new_machine_from_the_bucket_and_the_kept_keys(
        engine_config, engine_database, engine_site, seaweedfs_endpoint, tmp_path, monkeypatch, request, kept):
    old_db = None if engine_config.embedded else engine_config.db_uri
    new_bucket(seaweedfs_endpoint, monkeypatch)
    safe = tmp_path / "kept-elsewhere"  # what the operator keeps away from the machine
    safe.mkdir()
    remote_key = safe / "remote.key"
    remote_key.write_bytes(os.urandom(32))
    remote_key.chmod(0o600)
    monkeypatch.setenv("STRONGROOM_REMOTE_KEY_FILE", str(remote_key))

    old = engine_config.data_dir
    first = json.loads(_strongroom(old, old_db, "backup", "--note", "monday", "--json").stdout)
    (engine_config.working_dir / "arrived-tuesday.txt").write_text("tuesday's upload")
    engine_database["user"].insert_one({"name": "tuesday's user"})
    second = json.loads(_strongroom(old, old_db, "backup", "--note", "tuesday", "--json").stdout)
    _strongroom(old, old_db, "key", "export", "--to", str(safe / "site.key"))
    _strongroom(old, old_db, "push", "--all")
    files, records = tree_fingerprint(engine_config.working_dir), _canonical_records(engine_database)
    old_key = {b["signed_by"] for b in json.loads(_strongroom(old, old_db, "list", "--json").stdout)}
    assert len(old_key) == 1 and None not in old_key

    # The machine is gone: a new one, with nothing of the old but the bucket and the kept keys.
    new = tmp_path / "new-machine"
    new_db = None if engine_config.embedded else request.getfixturevalue("server_databases").new_uri("drill")
    shutil.rmtree(old)
    new.mkdir()  # the procedure's first step: the data dir, empty
    if kept == "remote and site keys":
        _strongroom(new, new_db, "key", "import", str(safe / "site.key"))
    listed = json.loads(_strongroom(new, new_db, "list", "--remote", "--json").stdout)
    assert [b["id"] for b in listed] == [second["id"], first["id"]]
    pulls = [json.loads(_strongroom(new, new_db, "pull", second["id"], "--json").stdout)]
    said = _strongroom(new, new_db, "pull", first["id"]).stdout  # as a person reads it
    _strongroom(new, new_db, "restore", second["id"], "--yes")

    assert tree_fingerprint(new / "working" / "pilot") == files
    new_database = open_database(engine_config.__class__(data_dir=new, mode="pilot", db_uri=new_db))
    assert _canonical_records(new_database) == records
    history = json.loads(_strongroom(new, new_db, "list", "--json").stdout)
    assert {(b["id"], b["note"]) for b in history} >= {(first["id"], "monday"), (second["id"], "tuesday")}
    assert all(b["reason"] == "pre-restore" for b in history if b["id"] not in (first["id"], second["id"]))
    verified = _strongroom(new, new_db, "verify", "--all")
    assert verified.returncode == 0
    if kept == "remote key alone":
        assert {p["signed_again_from"] for p in pulls} == old_key, "the pull says it signed the copies again"
        assert f"signed again under this site's key: it was signed by the site key {old_key.pop()}" in said
    else:
        assert not any(p["signed_again_from"] for p in pulls), "signed by the imported key: taken as they are"
        assert "signed again" not in said
