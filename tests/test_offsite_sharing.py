"""Several sites, one bucket: a push and a remote prune racing on one prefix lose nothing.

Two processes, as two hosts would be (their own data dirs and run modes, so no local lock
keeps them apart), share one bucket prefix on SeaweedFS: one pushes a new backup each round,
the other backs up, pushes and prunes the remote down to its newest copy each round, for 50
rounds. Whatever their interleaving, every copy the bucket lists as complete has every object
it names, and comes back whole; once nobody pushes, a prune deletes what nobody names.
(Before the leases, ``remote_lease``, such a prune deleted the objects a push had sent and
not yet named in its manifest.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import new_bucket
from strongroom.backup.pruning import RetentionPolicy
from strongroom.config import Config
from strongroom.db.engines import open_database
from strongroom.demo import create_demo_site
from strongroom.offsite.remote import OBJECTS, Remote
from strongroom.offsite.remote_lease import LEASES
from strongroom.service import Strongroom

ROUNDS = 50
RACER = Path(__file__).with_name("remote_racer.py")


def _missing(remote: Remote) -> dict[str, list[str]]:
    """Per listed copy, the objects it names that the bucket lacks."""
    present = set(remote.store.list(OBJECTS))
    found = {}
    for doc in remote.documents().values():
        parts = {digest: rel for rel, digest in doc["parts"].items()}
        lacking = [parts.get(d, d) for d in doc["objects"] if OBJECTS + remote.cipher.object_name(d) not in present]
        if lacking:
            found[f"{doc['mode']}/{doc['id']}"] = lacking
    return found


def test_a_push_and_a_remote_prune_racing_on_one_bucket_never_leave_a_listed_copy_incomplete(
        seaweedfs_endpoint, tmp_path, monkeypatch):
    settings = new_bucket(seaweedfs_endpoint, monkeypatch)
    hosts = {"push": Config(data_dir=tmp_path / "host-a", mode="test", remote=settings),
             "prune": Config(data_dir=tmp_path / "host-b", mode="pilot", remote=settings)}
    for config in hosts.values():
        create_demo_site(config, open_database(config), projects=1, editions=1, size="small", seed=2)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    racers = {role: subprocess.Popen([sys.executable, str(RACER), role, str(config.data_dir), config.mode,
                                      str(ROUNDS)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env)
              for role, config in hosts.items()}
    outcome = {}
    for role, process in racers.items():
        out, err = process.communicate(timeout=1800)
        assert process.returncode == 0, f"the {role} host failed: {err[-2000:]}"
        outcome[role] = json.loads(out)

    remote = Remote.open(settings)
    assert _missing(remote) == {}, "a copy listed as complete lacks objects"
    pusher = Strongroom(hosts["push"], database=open_database(hosts["push"]))
    listed = {b["id"] for b in pusher.list_remote()}
    assert set(outcome["push"]["pushed"]) <= listed and len(outcome["push"]["pushed"]) == ROUNDS
    assert outcome["prune"]["deleted"] == ROUNDS - 1, "every round but the first dropped a copy"

    newest = max(outcome["push"]["pushed"])
    pusher.delete_backup(newest)
    pusher.pull_backup(newest)
    assert pusher.verify_backup(newest)["ok"]

    # Nobody pushes now: a prune deletes every object no copy names, and no lease is left.
    pruner = Strongroom(hosts["prune"], database=open_database(hosts["prune"]))
    final = pruner.prune_remote(RetentionPolicy(last=1))
    assert final["objects_deferred"] == 0
    named = {OBJECTS + remote.cipher.object_name(d) for doc in remote.documents().values() for d in doc["objects"]}
    assert set(remote.store.list(OBJECTS)) == named
    assert remote.store.list(LEASES) == {}
