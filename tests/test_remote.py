"""Offsite copies: push, list --remote, pull and prune --remote against real S3 servers.

Every test runs against two servers started by the suite on 127.0.0.1 (``s3_endpoint`` in
conftest): SeaweedFS, a real object store, and moto's mock of AWS; each test gets a bucket
of its own. The bucket is read back with boto3 to check what the storage provider
sees: names, content, what a second push sends, what an interrupted push leaves.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import threading
from datetime import UTC, datetime, timedelta

import pytest

from conftest import free_port, records_fingerprint, s3_client, tree_fingerprint
from strongroom import humanize
from strongroom.errors import BadInput, CorruptBackup, NotFound, RemoteFailed
from strongroom.offsite.remote import OBJECTS, Remote
from strongroom.offsite.remote_cipher import CHUNK, NONCE, TAG, Sealed
from strongroom.offsite.remote_lease import LEASES
from strongroom.offsite.remote_store import S3Store
from strongroom.offsite.transfers import Transfers
from strongroom.scopes import scope_dir
from strongroom.service import Strongroom


def _service(config, database, settings, key=None, **kwargs) -> Strongroom:
    remote = dataclasses.replace(settings, key_file=key)
    return Strongroom(dataclasses.replace(config, remote=remote), database=database, **kwargs)


def _bucket(settings) -> dict[str, dict]:
    """Every object in the bucket: its key -> {"etag", "modified", "body"}."""
    client = s3_client(settings.endpoint)
    found = {}
    for item in client.list_objects_v2(Bucket=settings.bucket).get("Contents", []):
        body = client.get_object(Bucket=settings.bucket, Key=item["Key"])["Body"].read()
        found[item["Key"]] = {"etag": item["ETag"], "modified": item["LastModified"], "body": body}
    return found


def _consistent(sr: Strongroom) -> list[str]:
    """Objects a remote manifest names that the remote lacks (none, when consistent)."""
    remote = Remote.open(sr.config.remote)
    present = set(remote.store.list(OBJECTS))
    return [digest for doc in remote.documents().values() for digest in doc["objects"]
            if OBJECTS + remote.cipher.object_name(digest) not in present]


def _change_everything(config, database) -> None:
    working = config.working_dir
    for path in list(working.rglob("*"))[:5]:
        if path.is_file():
            path.write_bytes(b"changed after the backup")
    (working / "new-after-backup.txt").write_text("new")
    database["project"].delete_many({})
    database["user"].insert_one({"name": "arrived later"})


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_a_site_backup_pushed_and_pulled_back_verifies_and_restores_the_site(
        config, database, site, settings, tmp_path, encrypted):
    key = tmp_path / "remote.key" if encrypted else None
    if key:
        key.write_bytes(os.urandom(32))
    sr = _service(config, database, settings, key)
    files, records = tree_fingerprint(config.working_dir), records_fingerprint(database)
    made = sr.make_backup(note="before the move")

    pushed = sr.push_backups()
    assert pushed["pushed"] == [made["id"]] and pushed["encrypted"] is encrypted
    assert [b["id"] for b in sr.list_remote()] == [made["id"]]

    sr.delete_backup(made["id"])
    sr.store.pool.collect_garbage()
    assert not any(sr.store.pool.root.glob("??/*")), "the pool is empty: the pull must fetch every object"
    pulled = sr.pull_backup(made["id"])
    assert pulled["id"] == made["id"] and pulled["reason"] == "manual" and pulled["note"] == "before the move"
    assert pulled["objects_fetched"] > 0
    assert sr.verify_backup(made["id"])["ok"]

    _change_everything(config, database)
    sr.restore_backup(made["id"])
    assert tree_fingerprint(config.working_dir) == files
    assert records_fingerprint(database) == records


def test_a_project_backup_goes_out_and_comes_back_through_the_cli(config, database, site, settings, cli):
    project = site.project_ids[0]
    folder = scope_dir(config, Strongroom(config, database=database).scope(project))
    files = tree_fingerprint(folder)
    made = json.loads(cli("backup", "--project", project, "--json").output)

    pushed = cli("push", "--project", project)
    assert pushed.exit_code == 0, pushed.output
    assert f"pushed {made['id']}" in pushed.output
    listed = json.loads(cli("list", "--remote", "--project", project, "--json").output)
    assert [b["id"] for b in listed] == [made["id"]] and listed[0]["project"] == project
    assert json.loads(cli("list", "--remote", "--json").output) == [], "the site has no copies"
    shown = cli("list", "--remote", "--project", project)  # the text the disaster-recovery drill reads
    assert shown.exit_code == 0 and made["id"] in shown.output and "copies" in shown.output, shown.output
    nothing = cli("list", "--remote")
    assert nothing.exit_code == 0 and "No remote copies of the whole site." in nothing.output, nothing.output

    assert cli("delete", made["id"], "--project", project, "--yes").exit_code == 0
    pulled = cli("pull", made["id"], "--project", project)
    assert pulled.exit_code == 0, pulled.output
    for path in folder.rglob("*"):
        if path.is_file():
            path.write_bytes(b"ruined")
    restored = cli("restore", made["id"], "--project", project, "--yes")
    assert restored.exit_code == 0, restored.output
    assert tree_fingerprint(folder) == files


def test_a_second_push_sends_nothing_and_a_new_backup_sends_only_what_changed(
        config, database, site, settings, monkeypatch):
    sr = _service(config, database, settings)
    sr.make_backup()
    first = sr.push_backups()
    before = _bucket(settings)

    puts = []
    real_put = S3Store.put
    monkeypatch.setattr(S3Store, "put", lambda store, key, body: (
        key.startswith(LEASES) or puts.append(key), real_put(store, key, body)))  # leases are no content
    again = sr.push_backups(all_backups=True)
    assert again["pushed"] == [] and again["objects_uploaded"] == 0 and puts == []
    after = _bucket(settings)
    assert {k: (v["etag"], v["modified"]) for k, v in after.items()} == \
           {k: (v["etag"], v["modified"]) for k, v in before.items()}

    (config.working_dir / "one-new-file.txt").write_text("only this is new")
    sr.make_backup()
    third = sr.push_backups()
    # The new file, the new file list, and the dumps (their JSON records times)
    # at most: nothing of the unchanged files.
    assert 1 <= third["objects_uploaded"] < first["objects_uploaded"] / 2
    assert len(puts) == third["objects_uploaded"] + 1  # and its manifest


@pytest.mark.parametrize("fail_after", [0, 6, "manifest"])
def test_an_interrupted_push_leaves_the_remote_consistent_and_the_next_push_completes_it(
        config, database, site, settings, monkeypatch, fail_after):
    sr = _service(config, database, settings)
    made = sr.make_backup()
    total = len(Remote.open(sr.config.remote).store.list(""))  # an empty bucket: 0
    assert total == 0
    real_put = S3Store.put
    puts = []

    def failing_put(store, key, body):
        if key.startswith(LEASES):
            return real_put(store, key, body)
        last = fail_after == "manifest" and key.startswith("backups/")
        if last or (fail_after != "manifest" and len(puts) > fail_after):  # the marker goes first
            raise RemoteFailed("the connection dropped (injected)")
        puts.append(key)
        real_put(store, key, body)

    monkeypatch.setattr(S3Store, "put", failing_put)
    with pytest.raises(RemoteFailed):
        sr.push_backups()
    monkeypatch.setattr(S3Store, "put", real_put)

    assert sr.list_remote() == [], "no manifest: the copy is not listed"
    assert _consistent(sr) == []
    completed = sr.push_backups()
    assert completed["pushed"] == [made["id"]]
    if fail_after == "manifest":
        assert completed["objects_uploaded"] == 0, "every object was there: only the manifest was missing"
    assert _consistent(sr) == []
    sr.delete_backup(made["id"])
    sr.pull_backup(made["id"])
    assert sr.verify_backup(made["id"])["ok"]


def test_a_push_with_several_objects_in_flight_one_failing_puts_no_manifest_and_the_next_push_completes(
        config, database, site, settings, monkeypatch):
    sr = _service(config, database, settings)
    made = sr.make_backup()
    real_put = S3Store.put
    together = threading.Barrier(3, timeout=60)  # three uploads in flight at once, or it breaks
    arrived, failed = [], []

    def put_three_at_once_one_failing(store, key, body):
        if key.startswith(OBJECTS):
            with lock:
                arrived.append(key)
                meeting = len(arrived) <= 3
            if meeting and together.wait() == 0:  # one of the three, while the others are in flight
                failed.append(key)
                raise RemoteFailed("the connection dropped (injected)")
        real_put(store, key, body)

    lock = threading.Lock()
    monkeypatch.setattr(S3Store, "put", put_three_at_once_one_failing)
    with pytest.raises(RemoteFailed, match=r"^the connection dropped \(injected\)$"):
        sr.push_backups()
    monkeypatch.setattr(S3Store, "put", real_put)

    assert len(failed) == 1
    assert not [key for key in _bucket(settings) if "backups/" in key], "no manifest went up"
    assert sr.list_remote() == [] and _consistent(sr) == []
    completed = sr.push_backups()
    assert completed["pushed"] == [made["id"]] and _consistent(sr) == []
    assert completed["objects_uploaded"] >= 1, "at least the object that failed went up now"
    sr.delete_backup(made["id"])
    sr.store.pool.collect_garbage()
    sr.pull_backup(made["id"])
    assert sr.verify_backup(made["id"])["ok"]


def test_transfers_start_nothing_after_a_failure_and_raise_it_once_those_under_way_are_done():
    ran, go = [], threading.Event()
    transfers = Transfers(workers=2, window=4)

    def failing():
        go.wait(60)
        raise RemoteFailed("first failure")

    def slow():
        transfers._failed.wait(60)  # still under way when the other fails
        ran.append("slow")
        return "slow"

    with pytest.raises(RemoteFailed, match="first failure"), transfers:
        transfers.submit(failing)
        transfers.submit(slow, lambda result: ran.append(f"reported {result}"))
        transfers.submit(lambda: ran.append("queued"))
        go.set()
        transfers.submit(lambda: ran.append("queued later"))
        transfers.finish()
    assert ran[0] == "slow", "the job under way ended"
    assert "queued" not in ran and "queued later" not in ran, "none started after the failure"


def test_objects_an_earlier_copy_does_not_name_are_asked_for_and_not_sent_again_when_there(
        config, database, site, settings, monkeypatch):
    """The push learns what is there from the newest copy of the scope; what that copy does
    not name (here: sent by a push cut short before its manifest) is asked for, not resent."""
    sr = _service(config, database, settings)
    sr.make_backup()
    sr.push_backups()
    (config.working_dir / "one-new-file.txt").write_text("only this is new")
    made = sr.make_backup()
    real_put = S3Store.put

    def manifest_fails(store, key, body):
        if key.startswith("backups/"):
            raise RemoteFailed("the connection dropped (injected)")
        real_put(store, key, body)

    monkeypatch.setattr(S3Store, "put", manifest_fails)
    with pytest.raises(RemoteFailed):
        sr.push_backups()
    monkeypatch.setattr(S3Store, "put", real_put)
    completed = sr.push_backups()
    assert completed["pushed"] == [made["id"]] and completed["objects_uploaded"] == 0
    assert _consistent(sr) == []


def test_encrypted_copies_show_the_provider_no_name_content_or_record(
        config, database, site, settings, tmp_path):
    secret_name, secret_content, secret_record = "quarterly-plan-of-ACME.txt", b"launch code 4711 ZEBRA", "Ottilie Q."
    (config.working_dir / secret_name).write_bytes(secret_content)
    database["user"].insert_one({"name": secret_record})
    needles = [secret_name.encode(), secret_content, secret_record.encode(),
               b"quarterly-plan", b"edition", b"projectUser"]

    plain = _service(config, database, settings)
    made = plain.make_backup()
    plain.push_backups()
    seen = b"".join(k.encode() + v["body"] for k, v in _bucket(settings).items())
    assert all(needle in seen for needle in needles), "the plain copy shows them: the check below can fail"

    key = tmp_path / "remote.key"
    key.write_bytes(os.urandom(32))
    sealed_settings = dataclasses.replace(settings, prefix="sealed")
    sealed = _service(config, database, sealed_settings, key)
    sealed.push_backups()
    bucket = {k: v for k, v in _bucket(settings).items() if k.startswith("sealed/")}
    seen = b"".join(k.encode() + v["body"] for k, v in bucket.items())
    for needle in needles:
        assert needle not in seen
    hashes = {e["hash"] for e in _entries(sealed, made["id"])}
    assert not any(h in k for h in hashes for k in bucket), "object names are not content hashes"
    assert made["id"] not in " ".join(bucket), "nor do names show the backup"


def _entries(sr, backup_id):
    from strongroom.repo.manifest import iter_entries
    from strongroom.scopes import Scope

    path, manifest = sr.store.open(Scope.site(), backup_id)
    return [e for e in iter_entries(path, manifest) if e["type"] == "file"]


def test_the_wrong_key_or_none_is_refused_with_one_clear_line(
        config, database, site, settings, key_file, tmp_path, cli_process):
    sr = _service(config, database, settings, key_file)
    made = sr.make_backup()
    sr.push_backups()

    other = tmp_path / "other.key"
    other.write_bytes(os.urandom(32))
    with pytest.raises(BadInput, match="another key"):
        _service(config, database, settings, other).pull_backup(made["id"])
    with pytest.raises(BadInput, match="are encrypted"):
        _service(config, database, settings).list_remote()

    wrong = cli_process("pull", made["id"], env={"STRONGROOM_REMOTE_KEY_FILE": str(other)})
    assert wrong.returncode == 2
    assert len(wrong.stderr.strip().splitlines()) == 1 and "another key" in wrong.stderr
    assert sr.store.ids(sr.scope()) == [made["id"]]


def test_a_changed_remote_object_fails_the_pull_and_nothing_lands(config, database, site, settings, key_file):
    sr = _service(config, database, settings, key_file)
    made = sr.make_backup()
    sr.push_backups()
    client = s3_client(settings.endpoint)
    bucket = _bucket(settings)
    biggest = max((k for k in bucket if "/objects/" in k), key=lambda k: len(bucket[k]["body"]))
    body = bytearray(bucket[biggest]["body"])
    body[-20] ^= 1
    client.put_object(Bucket=settings.bucket, Key=biggest, Body=bytes(body))

    sr.delete_backup(made["id"])
    with pytest.raises(CorruptBackup, match="does not open"):
        sr.pull_backup(made["id"])
    assert sr.store.ids(sr.scope()) == []
    assert not [p.name for p in (config.backups_dir / "site").iterdir()], "no staging folder is left"


def test_an_encrypted_copy_comes_back_on_a_new_server_with_a_new_site_key(
        config, database, site, settings, key_file, tmp_path):
    sr = _service(config, database, settings, key_file)
    made = sr.make_backup()
    sr.push_backups()

    fresh = dataclasses.replace(config, data_dir=tmp_path / "new-server")
    from strongroom.db.engines import open_database

    new_site = _service(fresh, open_database(fresh), settings, key_file)
    pulled = new_site.pull_backup(made["id"])
    assert pulled["id"] == made["id"]
    assert new_site.verify_backup(made["id"])["ok"]
    manifest = new_site.show_backup(made["id"])["manifest"]
    assert manifest["pulled"]["signed_by"] == json.loads(
        (sr.store.path(sr.scope(), made["id"]) / "manifest.json").read_text())["signature"]["key_id"]


def test_a_plain_copy_signed_by_another_site_key_is_refused(config, database, site, settings, tmp_path):
    sr = _service(config, database, settings)
    made = sr.make_backup()
    sr.push_backups()
    fresh = dataclasses.replace(config, data_dir=tmp_path / "new-server")
    from strongroom.db.engines import open_database

    with pytest.raises(CorruptBackup, match="another site key"):
        _service(fresh, open_database(fresh), settings).pull_backup(made["id"])


def test_prune_remote_keeps_what_the_policy_keeps_and_deletes_content_only_the_others_used(
        config, database, site, settings, cli):
    days = iter(datetime(2026, 11, 1, 3, tzinfo=UTC) + timedelta(days=n) for n in range(10))
    sr = _service(config, database, settings, clock=lambda: next(days))
    only_old = config.working_dir / "only-in-the-oldest.txt"
    only_old.write_text("gone after the first backup")
    ids = [sr.make_backup()["id"]]
    only_old.unlink()
    ids += [sr.make_backup()["id"] for _ in range(3)]
    sr.push_backups(all_backups=True)
    old_digest = next(e["hash"] for e in _entries(sr, ids[0]) if e["path"] == only_old.name)
    assert any(k.endswith(f"/objects/{old_digest}") for k in _bucket(settings))

    bucket = {key: found["etag"] for key, found in _bucket(settings).items()}
    dry = json.loads(cli("prune", "--remote", "--keep-last", "2", "--dry-run", "--json").output)
    assert dry["deleted"] == [ids[1], ids[0]] and dry["dry_run"] is True
    assert dry["objects_deleted"] >= 1 and dry["bytes_deleted"] >= len("gone after the first backup")
    words = cli("prune", "--remote", "--keep-last", "2", "--dry-run").output.splitlines()
    assert words == [f"Would delete 2 remote copies, kept 2 ({humanize.size(dry['bytes_deleted'])} would be freed).",
                     f"  {ids[1]}", f"  {ids[0]}"]
    assert {key: found["etag"] for key, found in _bucket(settings).items()} == bucket  # nothing written, not a lease
    logged = json.loads(cli("log", "--json").output)[-1]
    assert (logged["operation"], logged["dry_run"], logged["would_delete"]) == ("prune-remote", True, [ids[1], ids[0]])
    assert "deleted" not in logged and logged["bytes"] == dry["bytes_deleted"]

    pruned = cli("prune", "--remote", "--keep-last", "2", "--yes", "--json")
    assert pruned.exit_code == 0, pruned.output
    done = json.loads(pruned.output)
    assert {**done, "dry_run": True} == dry  # the dry run's figures were the real run's
    logged = json.loads(cli("log", "--json").output)[-1]
    assert (logged["deleted"], logged["bytes"], "dry_run" in logged) == ([ids[1], ids[0]], done["bytes_deleted"], False)

    assert [b["id"] for b in sr.list_remote()] == [ids[3], ids[2]]
    assert not any(k.endswith(f"/objects/{old_digest}") for k in _bucket(settings))
    assert _consistent(sr) == []
    assert sr.store.ids(sr.scope()) == ids[::-1], "the local backups are untouched"
    sr.delete_backup(ids[2])
    sr.pull_backup(ids[2])
    assert sr.verify_backup(ids[2])["ok"]


def test_push_without_a_key_says_once_that_the_copies_are_not_encrypted(config, database, site, settings,
                                                                        cli_process):
    sr = _service(config, database, settings)
    sr.make_backup()
    (config.working_dir / "another.txt").write_text("x")
    sr.make_backup()
    done = cli_process("push", "--all")
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("not encrypted") == 1
    assert done.stdout.count("pushed ") == 2


def test_no_bucket_configured_is_one_line_and_exit_2(config, database, site, cli_process, monkeypatch):
    monkeypatch.delenv("STRONGROOM_S3_BUCKET", raising=False)
    Strongroom(config, database=database).make_backup()
    for args in (["push"], ["list", "--remote"], ["pull", "2026-11-26T04-27-43"]):
        done = cli_process(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.count("\n") == 1 and "STRONGROOM_S3_BUCKET" in done.stderr


def test_a_storage_that_cannot_be_reached_is_one_line(config, database, site, settings, cli_process):
    Strongroom(config, database=database).make_backup()
    down = f"http://127.0.0.1:{free_port()}"
    done = cli_process("push", env={"STRONGROOM_S3_ENDPOINT": down}, timeout=60)
    assert done.returncode == 1
    assert done.stderr.count("\n") == 1 and "cannot reach the remote storage" in done.stderr
    with pytest.raises(RemoteFailed, match="cannot reach"):
        _service(config, database, dataclasses.replace(settings, endpoint=down)).list_remote()


def test_pulling_what_the_remote_lacks_or_what_is_here_already_is_refused(config, database, site, settings):
    sr = _service(config, database, settings)
    made = sr.make_backup()
    with pytest.raises(NotFound, match="no copies"):
        sr.pull_backup(made["id"])
    sr.push_backups()
    with pytest.raises(NotFound):
        sr.pull_backup("2020-01-01T00-00-00")
    with pytest.raises(BadInput, match="already here"):
        sr.pull_backup(made["id"])
    with pytest.raises(BadInput, match="not both"):
        sr.push_backups(made["id"], all_backups=True)


@pytest.mark.parametrize("size", [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK])
def test_sealed_content_opens_to_what_went_in_at_every_chunk_boundary(size):
    cipher = Sealed(os.urandom(32))
    content = os.urandom(size)
    sealed = io.BytesIO()
    assert cipher.seal("objects/x", io.BytesIO(content), sealed) == hashlib.sha256(content).hexdigest()
    opened = io.BytesIO()
    assert cipher.open("objects/x", io.BytesIO(sealed.getvalue()), opened) == hashlib.sha256(content).hexdigest()
    assert opened.getvalue() == content
    # Not in clear; a content of a few bytes can turn up by chance in random ciphertext
    # (one byte does in about one run of eight), so only a longer one says anything.
    assert size < 16 or content[:64] not in sealed.getvalue()


def test_sealed_content_cut_reordered_moved_or_under_another_key_does_not_open():
    cipher = Sealed(os.urandom(32))
    sealed = io.BytesIO()
    cipher.seal("objects/x", io.BytesIO(os.urandom(2 * CHUNK + 5)), sealed)
    data = sealed.getvalue()
    frame = NONCE + CHUNK + TAG
    head, first, second, last = data[:4], data[4:4 + frame], data[4 + frame:4 + 2 * frame], data[4 + 2 * frame:]
    broken = {
        "cut at a chunk's end": head + first + second,
        "reordered": head + second + first + last,
        "a chunk dropped": head + first + last,
    }
    for what, variant in broken.items():
        with pytest.raises(CorruptBackup):
            cipher.open("objects/x", io.BytesIO(variant), io.BytesIO())
        assert what
    with pytest.raises(CorruptBackup):
        cipher.open("objects/y", io.BytesIO(data), io.BytesIO())  # put under another name
    with pytest.raises(CorruptBackup):
        Sealed(os.urandom(32)).open("objects/x", io.BytesIO(data), io.BytesIO())
    assert cipher.object_name("ab" * 32) != Sealed(os.urandom(32)).object_name("ab" * 32)


def test_a_pull_that_fails_at_any_kind_of_change_leaves_no_backup_and_no_stored_content(
        config, database, site, settings):
    from faults import InjectedFault, count_points, fail_at

    sr = _service(config, database, settings)
    made = sr.make_backup()
    sr.push_backups()

    def start_empty():
        sr.delete_backup(made["id"])
        sr.store.pool.collect_garbage()

    start_empty()
    points = count_points(lambda: sr.pull_backup(made["id"]))
    start_empty()
    kinds = {kind: sum(1 for k, _ in points if k == kind) for kind, _ in points}
    assert {"create", "write", "link", "rename"} <= set(kinds)
    for kind, count in kinds.items():
        for k in sorted({1, (count + 1) // 2, count}):
            raised = fail_at(k, kind, lambda: sr.pull_backup(made["id"]), InjectedFault(f"{kind} #{k}"))
            if raised is None:  # this run passed fewer such points (no leftovers to clean): it landed
                assert sr.verify_backup(made["id"])["ok"]
                start_empty()
                continue
            assert isinstance(raised, InjectedFault), (kind, k, raised)
            assert sr.store.ids(sr.scope()) == [], (kind, k)
            assert list((config.backups_dir / "site").iterdir()) == [], (kind, k)
            assert _linked_by_backups(sr.store.pool) == [], (kind, k)
    assert sr.pull_backup(made["id"])["id"] == made["id"]
    assert sr.verify_backup(made["id"])["ok"]


def _linked_by_backups(pool) -> list[str]:
    """Pool objects some backup still links to. (A writer's temporary name for an object
    counts for nothing: a later run's garbage collection removes both.)"""
    pending = {p.stat().st_ino for p in pool.tmp.iterdir()} if pool.tmp.is_dir() else set()
    return [p.name for p in pool.root.glob("??/*")
            if p.stat().st_nlink - (p.stat().st_ino in pending) > 1]


def test_a_backup_whose_stored_content_was_damaged_is_not_pushed(config, database, site, settings):
    sr = _service(config, database, settings)
    made = sr.make_backup()
    entry = max(_entries(sr, made["id"]), key=lambda e: e["size"])
    stored = sr.store.pool.object_path(entry["hash"])
    stored.chmod(0o600)
    content = bytearray(stored.read_bytes())
    content[0] ^= 0xFF  # same size, same mode afterwards: only its content shows the damage
    stored.write_bytes(bytes(content))
    stored.chmod(0o400)

    with pytest.raises(CorruptBackup, match="no longer matches its hash"):
        sr.push_backups()
    assert sr.list_remote() == []


MULTIPART = 8 << 20  # boto3's default threshold: larger objects go up in parts


def test_objects_of_every_size_class_go_out_and_come_back_whole(config, database, settings):
    """Empty, one byte, just below and above the multipart threshold, several parts; the
    store's ETags show which went up in parts."""
    sizes = {"empty": 0, "one": 1, "below": MULTIPART - 1, "above": MULTIPART + 1, "parts": 3 * MULTIPART + 5}
    config.working_dir.mkdir(parents=True)
    for name, size in sizes.items():
        (config.working_dir / f"{name}.bin").write_bytes(os.urandom(size))
    files = tree_fingerprint(config.working_dir)
    sr = _service(config, database, settings)
    made = sr.make_backup()
    sr.push_backups()

    by_size = {len(v["body"]): v["etag"] for k, v in _bucket(settings).items() if "/objects/" in k}
    assert "-" not in by_size[MULTIPART - 1] and "-" in by_size[MULTIPART + 1], "one part below, parts above"
    assert by_size[3 * MULTIPART + 5].strip('"').endswith("-4")

    sr.delete_backup(made["id"])
    sr.store.pool.collect_garbage()
    sr.pull_backup(made["id"])
    assert sr.verify_backup(made["id"])["ok"]
    for path in config.working_dir.iterdir():
        path.unlink()
    sr.restore_backup(made["id"])
    assert tree_fingerprint(config.working_dir) == files
