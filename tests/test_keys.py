"""Keys that cannot be swapped or lost in silence (issue 22, points 1-3).

The forged backup is made by a second, unprivileged user who may write ``backups/`` but
not read the key, running as that user (``setpriv``); root's Strongroom must refuse the
key that user put in place, and, with the genuine key back, the backup they forged.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import SECOND_USER as ATTACKER
from conftest import (
    SYSTEM_PYTHON,
    as_user,
    give_the_restore_work,
    records_fingerprint,
    tree_fingerprint,
)
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.repo.signing import key_id
from strongroom.scopes import Scope, backups_root
from strongroom.service import Strongroom


def _run(config, *args, env=None, timeout=60):
    """The CLI as a separate process, with a bound: a command that waits forever fails."""
    return subprocess.run([sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), *args],
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
                          env={**os.environ, **(env or {})})


# -- what may stand at the key's place --------------------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path, 0o600)


def _folder(path: Path) -> None:
    path.mkdir(mode=0o700)


def _link(path: Path) -> None:
    real = path.with_name("real.key")
    real.write_bytes(os.urandom(32))
    real.chmod(0o600)
    path.symlink_to(real)


def _device(path: Path) -> None:
    try:
        os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(1, 3))  # /dev/null's numbers
    except PermissionError:
        pytest.skip("this container may not make a device node (no CAP_MKNOD)")


@pytest.mark.parametrize("configured", [False, True], ids=["default-place", "configured"])
@pytest.mark.parametrize("make, named", [(_fifo, "a FIFO"), (_folder, "a folder"), (_link, "a symbolic link"),
                                         (_device, "a device")], ids=["fifo", "folder", "link", "device"])
def test_anything_but_a_plain_file_at_the_key_place_is_refused_at_once(config, site, tmp_path, make, named,
                                                                         configured):
    place = tmp_path / "keys" / "site.key" if configured else config.site_key_path
    place.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    make(place)
    env = {"STRONGROOM_SITE_KEY_FILE": str(place)} if configured else {}

    made = _run(config, "backup", env=env)
    assert made.returncode == 2 and named in made.stderr and "refused" in made.stderr, made.stderr
    status = _run(config, "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    assert named in json.loads(status.stdout)["key"]["problem"]
    assert "REFUSED" in _run(config, "status", env=env).stdout
    assert _run(config, "list", env=env).returncode == 0


# -- a key swapped by someone who may write backups/ -----------------------------------------------


# The attacker's steps, with nothing but Python's standard library: put a key in place of
# root's (which they may rename, not read), copy the genuine backup under a newer id with a
# PHP shell planted in a text file, fix its file list and checksums, and sign its manifest
# with that key, as docs/guarantees.md tells anyone how to. The key is one of their own
# ("own"), or a file of root's whose content they know (hex), such as a stored object of a
# 32-byte file they wrote into the site: renamed into place, it has root's owner and mode,
# once its other name is unlinked.
FORGE = r"""
import hashlib, hmac, json, os, shutil, sys
backups, genuine, forged, victim, how = sys.argv[1:6]  # backups: the backups root, where the key is
os.rename(os.path.join(backups, ".site-key"), os.path.join(backups, ".site-key.was"))
if how == "own":
    key = os.urandom(32)
    fd = os.open(os.path.join(backups, ".site-key"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.write(fd, key)
    os.close(fd)
else:
    key, stored, other_name = bytes.fromhex(how), sys.argv[6], sys.argv[7]
    os.unlink(other_name)
    os.rename(stored, os.path.join(backups, ".site-key"))
shutil.copytree(genuine, forged)
shell = b"<?php system($_GET['c']); ?>"
planted = os.path.join(forged, "files", victim)
os.chmod(planted, 0o600)
with open(planted, "wb") as fh:
    fh.write(shell)
os.chmod(planted, 0o400)
lines = []
for line in open(os.path.join(forged, "files.jsonl"), "rb"):
    entry = json.loads(line)
    if entry["path"] == victim:
        entry["hash"], entry["size"] = hashlib.sha256(shell).hexdigest(), len(shell)
    lines.append(json.dumps(entry, separators=(",", ":")).encode() + b"\n")
with open(os.path.join(forged, "files.jsonl"), "wb") as fh:
    fh.write(b"".join(lines))
manifest = json.load(open(os.path.join(forged, "manifest.json")))
manifest.pop("signature")
manifest["id"] = os.path.basename(forged)
manifest["sequence"] += 1
manifest["files"]["list_sha256"] = hashlib.sha256(b"".join(lines)).hexdigest()
body = json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()
manifest["signature"] = {"algorithm": "hmac-sha256",
                         "key_id": hashlib.sha256(b"strongroom site key id\0" + key).hexdigest()[:16],
                         "value": hmac.new(key, body, hashlib.sha256).hexdigest()}
json.dump(manifest, open(os.path.join(forged, "manifest.json"), "w"))
"""


def _as_attacker(attacker, *args):
    return as_user(attacker, SYSTEM_PYTHON, "-I", "-c", FORGE, *map(str, args))


def test_a_backup_forged_by_a_user_who_swapped_the_key_is_refused_by_root(second_user, public_place):
    attacker = second_user
    config = Config(data_dir=public_place / "data")
    database = open_database(config)
    create_demo_site(config, database, projects=2, editions=1, size="small", seed=3)
    genuine = Strongroom(config, database=database).make_backup()
    root = backups_root(config, Scope.site())
    victim = min(p.relative_to(config.working_dir).as_posix() for p in config.working_dir.rglob("about.md"))
    # The attacker may write backups/ (and so rename anything in it) but not read the key.
    for path in [config.backups_base, *config.backups_base.rglob("*")]:
        if path != config.site_key_path:
            os.chown(path, attacker[0], attacker[1], follow_symlinks=False)
    forged_id = genuine["id"][:-2] + "59"
    done = _as_attacker(attacker, config.backups_base, root / genuine["id"], root / forged_id, victim, "own")
    assert done.returncode == 0, done.stderr
    live, records = tree_fingerprint(config.working_dir), records_fingerprint(database)

    verified = _run(config, "verify", "--all")
    assert verified.returncode == 2 and f"owned by {ATTACKER}" in verified.stderr
    assert f"{forged_id}: NOT CHECKED" in verified.stdout
    restored = _run(config, "restore", forged_id, "--yes")
    assert restored.returncode == 2 and f"owned by {ATTACKER}" in restored.stderr
    assert tree_fingerprint(config.working_dir) == live and records_fingerprint(database) == records

    # Root takes the key's folder back and puts the genuine key back (the attacker's is
    # kept aside): the forgery shows.
    os.chown(config.backups_base, 0, 0)
    back = _run(config, "key", "import", str(config.backups_base / ".site-key.was"))
    assert back.returncode == 0, back.stderr
    verified = _run(config, "verify", "--all")
    assert verified.returncode == 5
    assert f"{forged_id}: FAILED" in verified.stdout and "signed with another site key" in verified.stdout
    assert f"{genuine['id']}: ok" in verified.stdout
    listed = _run(config, "list")
    assert forged_id in listed.stdout and "SIGNED BY ANOTHER KEY" in listed.stdout
    assert _run(config, "restore", forged_id, "--yes").returncode == 5
    assert tree_fingerprint(config.working_dir) == live and records_fingerprint(database) == records


def test_a_key_that_others_may_write_is_refused_and_not_repaired(service, config, site):
    made = service.make_backup()
    config.site_key_path.chmod(0o620)
    report = Strongroom(config, database=service.database).verify_backup(made["id"])
    assert report["ok"] is None and "lets others than its owner write it" in report["not_checked"]
    assert stat.S_IMODE(config.site_key_path.stat().st_mode) == 0o620


@pytest.mark.parametrize("how", ["owner", "group"])
def test_a_key_swapped_for_a_stored_object_of_roots_in_a_folder_others_may_write_is_refused(
        second_user, public_place, how):
    """Swap by rename: the attacker may write the key's folder (they own it, or their group
    may write it) and the pool's, but read neither the key nor root's stored objects. They
    write a 32-byte file into the site; root backs it up; its stored object is root's, mode
    0400, and its content the attacker's: renamed into the key's place (its backup's name
    unlinked), it passes every check on the file itself. Its folder does not."""
    attacker = second_user
    config = Config(data_dir=public_place / "data")
    database = open_database(config)
    create_demo_site(config, database, projects=2, editions=1, size="small", seed=3)
    service = Strongroom(config, database=database)
    genuine = service.make_backup()
    known = os.urandom(32)  # what the attacker, as the app's user, wrote into the site
    (config.working_dir / "token.bin").write_bytes(known)
    holding = service.make_backup()
    root = backups_root(config, Scope.site())
    other_name = root / holding["id"] / "files" / "token.bin"
    stored = config.pool_dir / hashlib.sha256(known).hexdigest()[:2] / hashlib.sha256(known).hexdigest()
    assert os.path.samefile(stored, other_name)
    kept_roots = {os.stat(config.site_key_path).st_ino, os.stat(stored).st_ino}
    for path in [config.backups_base, *config.backups_base.rglob("*")]:
        if os.lstat(path).st_ino in kept_roots:
            continue  # the key and the object stay root's, 0600 and 0400
        if how == "owner":
            os.chown(path, attacker[0], attacker[1], follow_symlinks=False)
        else:
            os.chown(path, -1, attacker[1], follow_symlinks=False)
            path.chmod(path.stat().st_mode | (0o070 if path.is_dir() else 0o040))
    victim = min(p.relative_to(config.working_dir).as_posix() for p in config.working_dir.rglob("about.md"))
    forged_id = holding["id"].split(".")[0] + ".99"  # newer than both, valid
    done = _as_attacker(attacker, config.backups_base, root / genuine["id"], root / forged_id, victim, known.hex(),
                        stored, other_name)
    assert done.returncode == 0, done.stderr
    assert config.site_key_path.read_bytes() == known and config.site_key_path.stat().st_uid == 0
    folder_mode = stat.S_IMODE(config.backups_base.stat().st_mode)
    live, records = tree_fingerprint(config.working_dir), records_fingerprint(database)

    verified = _run(config, "verify", "--all")
    assert verified.returncode == 2, verified.stdout + verified.stderr
    assert f"{forged_id}: NOT CHECKED" in verified.stdout and f"{forged_id}: ok" not in verified.stdout
    assert "its folder" in verified.stderr and len(verified.stderr.strip().splitlines()) == 1
    restored = _run(config, "restore", forged_id, "--yes")
    assert restored.returncode == 2 and "its folder" in restored.stderr
    assert tree_fingerprint(config.working_dir) == live and records_fingerprint(database) == records
    assert stat.S_IMODE(config.backups_base.stat().st_mode) == folder_mode  # refused, not tightened in passing


def test_a_key_in_a_folder_others_may_write_is_refused_and_the_folder_left_as_it_is(service, config, site):
    made = service.make_backup()
    config.backups_base.chmod(0o777)

    refused = _run(config, "backup")
    assert refused.returncode == 2 and "may be written by others" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    verified = _run(config, "verify", made["id"])
    assert verified.returncode == 2 and f"{made['id']}: NOT CHECKED" in verified.stdout
    status = json.loads(_run(config, "status", "--json").stdout)
    assert status["key"]["state"] == "refused" and "may be written by others" in status["key"]["problem"]
    assert stat.S_IMODE(config.backups_base.stat().st_mode) == 0o777
    config.backups_base.chmod(0o700)
    assert _run(config, "verify", made["id"]).returncode == 0


@pytest.mark.parametrize("length", [16, 31, 33])
def test_a_key_of_any_length_but_32_bytes_is_refused_in_one_line(service, config, site, length):
    made = service.make_backup()
    key = config.site_key_path
    key.chmod(0o600)
    key.write_bytes(key.read_bytes()[:length].ljust(length, b"\0"))

    for command in (["backup"], ["restore", made["id"], "--yes"], ["verify", made["id"]]):
        done = _run(config, *command)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and f"holds {length} bytes" in lines[0], command
        assert "exactly 32" in lines[0]
    status = _run(config, "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout)["key"]["state"] == "refused"


def test_verify_without_the_key_says_not_checked_exits_2_and_records_nothing(service, config, site, tmp_path):
    made = service.make_backup()
    assert service.verify_backup(made["id"])["ok"]
    record = (backups_root(config, Scope.site()) / made["id"] / "checked.json").read_bytes()
    _lose_the_key(config, tmp_path)

    for args in ([made["id"]], ["--all"]):
        verified = _run(config, "verify", *args)
        assert verified.returncode == 2, verified.stderr
        assert f"{made['id']}: NOT CHECKED" in verified.stdout and "FAILED" not in verified.stdout
        assert "NOT CHECKED" in verified.stderr and "no site key" in verified.stderr
    report = json.loads(_run(config, "verify", made["id"], "--json").stdout)[0]
    assert report["ok"] is None and report["not_checked"] and report["problems"] == [] and report["checked"] is None
    assert (backups_root(config, Scope.site()) / made["id"] / "checked.json").read_bytes() == record
    assert json.loads(_run(config, "status", "--json").stdout)["scopes"][0]["failed_verification"] == []


def test_restore_without_the_key_is_refused_before_anything_is_saved(service, config, database, site, tmp_path):
    made = service.make_backup()
    fingerprint = key_id(config.site_key_path.read_bytes())
    give_the_restore_work(config.working_dir)
    _lose_the_key(config, tmp_path)
    live, records = tree_fingerprint(config.working_dir), records_fingerprint(database)
    backups = sorted(p.name for p in backups_root(config, Scope.site()).iterdir())

    for extra in ([], ["--path", "site.json"], ["--dry-run"]):
        refused = _run(config, "restore", made["id"], "--yes", *extra)
        lines = refused.stderr.strip().splitlines()
        assert refused.returncode == 2 and len(lines) == 1, refused.stderr
        assert "site key is missing" in lines[0] and "nothing was saved or changed" in lines[0]
        assert "strongroom key import" in lines[0] and f"key adopt --from {fingerprint}" in lines[0]
        assert "docs/keys.md" in lines[0]
    assert sorted(p.name for p in backups_root(config, Scope.site()).iterdir()) == backups
    assert tree_fingerprint(config.working_dir) == live and records_fingerprint(database) == records
    assert not (config.backups_dir / ".journal.json").exists()


def test_status_names_as_verified_only_a_backup_that_opens_with_the_key_in_use(service, config, site, tmp_path):
    made = service.make_backup()
    assert service.verify_backup(made["id"])["ok"]
    assert json.loads(_run(config, "status", "--json").stdout)["scopes"][0]["newest_verified"]["id"] == made["id"]
    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    other.chmod(0o600)

    for env in ({"STRONGROOM_SITE_KEY_FILE": str(other)}, None):  # another key; then the key lost
        if env is None:
            _lose_the_key(config, tmp_path)
        found = json.loads(_run(config, "status", "--json", env=env).stdout)["scopes"][0]
        assert found["newest"] is None and found["newest_verified"] is None
        text = _run(config, "status", env=env).stdout
        assert "1 backup, NONE OPENS" in text and f"verified {made['id']}" not in text


# -- a key lost ------------------------------------------------------------------------------


def _lose_the_key(config, tmp_path) -> Path:
    saved = tmp_path / "saved.key"
    shutil.move(config.site_key_path, saved)
    return saved


def test_a_lost_key_hides_no_backup_and_makes_no_new_key(service, config, site, tmp_path):
    made = service.make_backup()
    fingerprint = key_id(config.site_key_path.read_bytes())
    _lose_the_key(config, tmp_path)

    listed = _run(config, "list")
    assert listed.returncode == 0 and made["id"] in listed.stdout and "No backups" not in listed.stdout
    assert fingerprint in listed.stderr
    entry = json.loads(_run(config, "list", "--json").stdout)[0]
    assert (entry["id"], entry["signature"], entry["signed_by"]) == (made["id"], "no-key", fingerprint)
    text, as_json = _run(config, "status"), _run(config, "status", "--json")
    assert as_json.returncode == text.returncode == 0
    site_status = json.loads(as_json.stdout)["scopes"][0]
    assert site_status["backups"] == 1 and site_status["unopened"][0]["signed_by"] == fingerprint
    assert "no backups" not in text.stdout and "1 backup, NONE OPENS" in text.stdout
    assert "MISSING" in text.stdout

    refused = _run(config, "backup")
    assert refused.returncode == 2 and "no new key is made" in refused.stderr and fingerprint in refused.stderr
    assert not config.site_key_path.exists()
    assert _run(config, "verify", made["id"]).returncode == 2  # NOT CHECKED: no key is no damage


def test_a_saved_key_is_put_back_and_a_wrong_one_refused(service, config, site, tmp_path):
    made = service.make_backup()
    saved = _lose_the_key(config, tmp_path)
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    wrong.chmod(0o600)

    refused = _run(config, "key", "import", str(wrong))
    assert refused.returncode == 2 and "signed none of the backups here" in refused.stderr
    assert not config.site_key_path.exists()
    assert _run(config, "key", "import", str(saved)).returncode == 0
    assert _run(config, "verify", made["id"]).returncode == 0
    assert _run(config, "backup").returncode == 0


def test_adopting_a_lost_key_verifies_every_backup_and_signs_only_the_sound_ones(service, config, database,
                                                                                   site, tmp_path):
    sound = service.make_backup()
    (config.working_dir / "more.txt").write_text("more")
    damaged = service.make_backup()
    fingerprint = key_id(config.site_key_path.read_bytes())
    dump = backups_root(config, Scope.site()) / damaged["id"] / "db" / "bson" / "edition.bson"
    dump.chmod(0o600)
    dump.write_bytes(dump.read_bytes()[:-1] + b"\x01")
    _lose_the_key(config, tmp_path)

    asked = _run(config, "key", "adopt", "--from", fingerprint)  # no terminal, no --yes: nothing is done
    assert asked.returncode == 2 and sound["id"] in asked.stdout and damaged["id"] in asked.stdout
    assert not config.site_key_path.exists()
    adopted = _run(config, "key", "adopt", "--from", fingerprint, "--yes")
    assert adopted.returncode == 5 and f"NOT adopted {damaged['id']}" in adopted.stderr

    new_key = key_id(config.site_key_path.read_bytes())
    assert new_key != fingerprint
    manifest = json.loads((backups_root(config, Scope.site()) / sound["id"] / "manifest.json").read_text())
    assert manifest["adopted"]["from_key"] == fingerprint and manifest["signature"]["key_id"] == new_key
    assert _run(config, "verify", sound["id"]).returncode == 0
    assert _run(config, "verify", damaged["id"]).returncode == 5
    entry = [e for e in Strongroom(config).audit_entries() if e["operation"] == "key-adopt"][-1]
    assert entry["adopted"] == [sound["id"]] and entry["refused"] == [damaged["id"]]
    (config.working_dir / "more.txt").unlink()
    (config.working_dir / "other.txt").write_text("x")
    assert _run(config, "restore", sound["id"], "--yes").returncode == 0
    assert not (config.working_dir / "other.txt").exists()


def test_status_warns_until_a_copy_of_the_key_is_exported(service, config, site, tmp_path):
    service.make_backup()
    assert "never exported" in _run(config, "status").stdout
    assert json.loads(_run(config, "status", "--json").stdout)["key"]["exported"] is None
    inside = _run(config, "key", "export", "--to", str(config.backups_base / "copy.key"))
    assert inside.returncode == 2 and not (config.backups_base / "copy.key").exists()

    copy = tmp_path / "copy.key"
    assert _run(config, "key", "export", "--to", str(copy)).returncode == 0
    assert copy.read_bytes() == config.site_key_path.read_bytes()
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert "never exported" not in _run(config, "status").stdout
    assert json.loads(_run(config, "status", "--json").stdout)["key"]["exported"]["to"] == str(copy)
    assert _run(config, "key", "export", "--to", str(copy)).returncode == 2  # never over a file


@pytest.mark.parametrize("content", [None, b"short"], ids=["missing", "short"])
def test_status_json_answers_with_exit_0_when_the_configured_key_is_missing_or_short(service, config, site,
                                                                                     tmp_path, content):
    service.make_backup()
    key = tmp_path / "site.key"
    if content is not None:
        key.write_bytes(content)
        key.chmod(0o600)
    env = {"STRONGROOM_SITE_KEY_FILE": str(key)}
    as_json = _run(config, "status", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr
    found = json.loads(as_json.stdout)
    assert found["key"]["problem"] and found["scopes"][0]["backups"] == 1 and found["scopes"][0]["newest"] is None
    assert found["key"]["state"] == ("missing" if content is None else "refused")
    text = _run(config, "status", env=env)
    word = "MISSING" if content is None else "REFUSED"
    assert text.returncode == 0 and "NONE OPENS" in text.stdout, text.stdout
    assert re.search(rf"^  site key +{word}", text.stdout, re.MULTILINE), text.stdout


def test_status_text_and_json_agree_after_the_key_is_lost(service, config, site, tmp_path):
    made = service.make_backup()
    assert service.verify_backup(made["id"])["ok"]
    _lose_the_key(config, tmp_path)
    _run(config, "verify", "--all")  # NOT CHECKED: it leaves no failed check behind

    found = json.loads(_run(config, "status", "--json").stdout)
    text = _run(config, "status").stdout
    assert found["key"]["state"] == "missing" and "MISSING" in text
    site_status = found["scopes"][0]
    assert site_status["newest"] is None and site_status["newest_verified"] is None
    assert site_status["failed_verification"] == [] and "FAILED" not in text
    assert "1 backup, NONE OPENS" in text
