"""One of two hosts sharing a bucket, for ``test_offsite_sharing``: ``python remote_racer.py
push|prune DATA_DIR MODE ROUNDS`` (the bucket from the STRONGROOM_S3_* environment).

``push``: each round adds new files (new objects), backs up and pushes. ``prune``: each round
changes a file, backs up, pushes and prunes the remote to the newest copy of its run mode, so
that every round drops a copy and deletes the objects nobody names. Prints a JSON summary.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from strongroom.backup.pruning import RetentionPolicy
from strongroom.config import Config, RemoteSettings
from strongroom.db.engines import open_database
from strongroom.service import Strongroom


def main(role: str, data_dir: str, mode: str, rounds: int) -> dict:
    config = Config(data_dir=Path(data_dir), mode=mode, remote=RemoteSettings.from_env())
    sr = Strongroom(config, database=open_database(config))
    done = {"pushed": [], "deleted": 0, "objects_deleted": 0, "objects_deferred": 0}
    for round_number in range(rounds):
        folder = config.working_dir / f"round-{round_number}"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(12 if role == "push" else 1):
            (folder / f"new-{n}.bin").write_bytes(os.urandom(16 << 10))
        made = sr.make_backup()
        done["pushed"] += sr.push_backups(made["id"])["pushed"]
        if role == "prune":
            pruned = sr.prune_remote(RetentionPolicy(last=1))
            done["deleted"] += len(pruned["deleted"])
            done["objects_deleted"] += pruned["objects_deleted"]
            done["objects_deferred"] += pruned["objects_deferred"]
    return done


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))
