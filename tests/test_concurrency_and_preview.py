"""One operation at a time, and a dry run that tells exactly what the restore does, on
both engines (``config`` is ``engine_config``)."""

import multiprocessing
import os
import random
import time

import pytest
from bson import ObjectId

from conftest import give_the_restore_work, records_fingerprint, tree_fingerprint
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.errors import Busy
from strongroom.fs import mutations
from strongroom.scopes import Scope, project_queries, scope_dir
from strongroom.service import Strongroom


@pytest.fixture
def config(engine_config):
    return engine_config


def _contender(data_dir: str, db_uri: str | None, operation: str, backup_id: str, barrier, results) -> None:
    """Run in a forked process: wait for the other, then try the operation, slowly."""
    config = Config(data_dir=data_dir, db_uri=db_uri)
    service = Strongroom(config, database=open_database(config))
    mutations.set_hook(lambda kind, detail: time.sleep(0.002))  # stretch the operation
    barrier.wait()
    try:
        if operation == "backup":
            service.make_backup()
        else:
            service.restore_backup(backup_id)
        results.put((operation, "ran"))
    except Busy as exc:
        results.put((operation, f"busy: {exc}"))


@pytest.mark.parametrize("pair", [("backup", "backup"), ("backup", "restore"), ("restore", "restore")])
def test_two_processes_starting_together_one_runs_the_other_is_refused(service, config, site, pair):
    backup_id = service.make_backup()["id"]
    give_the_restore_work(config.working_dir)  # a restore that runs (onto the same state it is over at once)
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(2), context.Queue()
    processes = [context.Process(target=_contender, args=(str(config.data_dir), config.db_uri, op, backup_id, barrier, results))
                 for op in pair]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in pair]
    for process in processes:
        process.join(timeout=120)

    assert sorted(o == "ran" for _, o in outcomes) == [False, True], outcomes
    refused = next(o for _, o in outcomes if o != "ran")
    assert "is running" in refused
    fresh = Strongroom(config, database=open_database(config))
    assert all(fresh.verify_backup(b["id"])["ok"] for b in fresh.list_backups())
    assert fresh.maintenance() is None and fresh.busy() is None


def test_the_library_refuses_a_second_operation_at_once_naming_the_holder(service, config, site):
    with Strongroom(config)._lock("restore", "admin"):  # the lock (embedded) or the lease (server)
        started = time.monotonic()
        with pytest.raises(Busy, match="restore by admin"):
            service.make_backup()
        assert time.monotonic() - started < 1
        assert service.busy()["operation"] == "restore"
    assert service.busy() is None


def random_changes(config, database, rng: random.Random, project_id: str | None) -> None:
    root = scope_dir(config, Scope.of(project_id))
    files = sorted(p for p in root.rglob("*") if p.is_file())
    for path in rng.sample(files, k=min(len(files), 6)):
        action = rng.choice(["modify", "delete", "touch", "chmod", "same-size"])
        if action == "modify":
            path.write_bytes(os.urandom(rng.randint(1, 5000)))
        elif action == "delete":
            path.unlink()
        elif action == "touch":
            os.utime(path, ns=(rng.randint(1, 10**18), rng.randint(1, 10**18)))
        elif action == "chmod":
            path.chmod(0o600)
        else:
            data = bytearray(path.read_bytes())
            data[0] ^= 0xFF
            path.write_bytes(bytes(data))
    for n in range(rng.randint(1, 3)):
        folder = root / f"new-{n}"
        folder.mkdir(exist_ok=True)
        (folder / "file.bin").write_bytes(os.urandom(rng.randint(0, 3000)))
    query = {"projectId": ObjectId(project_id)} if project_id else {}
    editions = list(database.edition.find(query))
    database.edition.delete_one({"_id": rng.choice(editions)["_id"]})
    database.edition.update_one({"_id": rng.choice(editions)["_id"]}, {"$set": {"title": "edited"}})
    database.edition.insert_one({"projectId": ObjectId(project_id) if project_id else ObjectId(), "title": "new"})


def _what_changed(before: dict, after: dict) -> dict:
    kinds = {"added": set(after) - set(before), "removed": set(before) - set(after),
             "changed": {p for p in set(before) & set(after) if before[p] != after[p]}}
    return {kind: {p for p in paths if (after.get(p) or before.get(p))[0] != "dir"} for kind, paths in kinds.items()}


def _record_changes(before: dict, after: dict) -> dict:
    report = {}
    for name in set(before) | set(after):
        old = {d["_id"]: d for d in before.get(name, [])}
        new = {d["_id"]: d for d in after.get(name, [])}
        report[name] = {"added": len(set(new) - set(old)), "removed": len(set(old) - set(new)),
                        "changed": sum(1 for k in set(old) & set(new) if old[k] != new[k])}
    return report


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("scope_kind", ["site", "project"])
def test_the_dry_run_reports_exactly_what_the_restore_then_does(service, config, database, site, seed, scope_kind):
    project_id = None if scope_kind == "site" else site.project_ids[seed % len(site.project_ids)]
    backup_id = service.make_backup(project_id)["id"]
    random_changes(config, database, random.Random(seed), project_id)
    live = scope_dir(config, Scope.of(project_id))
    queries = None if project_id is None else project_queries(config, project_id)
    files_before, records_before = tree_fingerprint(live), records_fingerprint(database, queries)
    everything_before = tree_fingerprint(config.data_dir), records_fingerprint(database)

    preview = service.preview_restore(backup_id, project_id)

    assert (tree_fingerprint(config.data_dir), records_fingerprint(database)) == everything_before  # changed nothing
    service.restore_backup(backup_id, project_id)
    files_done = _what_changed(files_before, tree_fingerprint(live))
    reported = {kind: {p for word in ("files", "links") for p in preview[word][kind]["paths"]}
                for kind in ("added", "removed", "changed")}
    assert reported == files_done
    records_done = _record_changes(records_before, records_fingerprint(database, queries))
    for name, counts in records_done.items():
        assert {k: preview["records"][name][k] for k in counts} == counts, name
