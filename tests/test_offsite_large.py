"""A 1 GB file goes to a real object store (SeaweedFS) and comes back, streamed: the push
and the pull, each run as the CLI in a process of its own, stay within a memory bound
(their peak resident size, ``ru_maxrss`` through a launcher) far below the file's size."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

from conftest import new_bucket
from strongroom.db.engines import open_database
from strongroom.service import Strongroom

GIB = 1 << 30
PEAK_BOUND = 300 << 20  # bytes: a third of the file; measured figures in docs/performance.md


# The CLI runs under a small launcher that reports its child's peak: a child forked straight
# from this test process would count the test process's own memory at the fork as its peak
# (Linux keeps the high-water mark of the memory an exec replaces), and earlier tests in the
# same worker leave that at hundreds of MB. The launcher's child starts from its few MB.
LAUNCHER = ("import resource, subprocess, sys\n"
            "done = subprocess.run(sys.argv[1:], capture_output=True, stdin=subprocess.DEVNULL)\n"
            "sys.stderr.buffer.write(done.stderr[-2000:] + done.stdout[-500:])\n"
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
            "sys.exit(done.returncode)")


def _cli_peak(config, *args) -> int:
    """Run the CLI; its peak resident memory in bytes."""
    done = subprocess.run([sys.executable, "-c", LAUNCHER, sys.executable, "-m", "strongroom.cli",
                           "--data-dir", str(config.data_dir), "--mode", config.mode, *args],
                          capture_output=True, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, f"strongroom {' '.join(args)}: {done.stderr.decode()}"
    return int(done.stdout) * 1024  # kilobytes on Linux


def test_a_1_gb_file_is_pushed_and_pulled_streamed_within_a_memory_bound(
        config, seaweedfs_endpoint, key_file, monkeypatch):
    new_bucket(seaweedfs_endpoint, monkeypatch)
    monkeypatch.setenv("STRONGROOM_REMOTE_KEY_FILE", str(key_file))
    config.working_dir.mkdir(parents=True)
    big = config.working_dir / "scan.raw"
    digest = hashlib.sha256()
    with open(big, "wb") as out:
        block = os.urandom(1 << 20)
        for n in range(GIB >> 20):
            chunk = n.to_bytes(8, "big") + block[8:]  # every MiB differs
            digest.update(chunk)
            out.write(chunk)
    sr = Strongroom(config, database=open_database(config))
    made = sr.make_backup()

    push_peak = _cli_peak(config, "push")
    sr.delete_backup(made["id"])
    sr.store.pool.collect_garbage()
    pull_peak = _cli_peak(config, "pull", made["id"])
    print(f"peak memory: push {push_peak / 2**20:.0f} MiB, pull {pull_peak / 2**20:.0f} MiB")
    assert push_peak < PEAK_BOUND and pull_peak < PEAK_BOUND

    assert sr.verify_backup(made["id"])["ok"]
    big.unlink()
    sr.restore_backup(made["id"])
    with open(big, "rb") as back:
        assert hashlib.file_digest(back, "sha256").hexdigest() == digest.hexdigest()
