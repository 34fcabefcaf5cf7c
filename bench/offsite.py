"""Offsite copies against ``aws s3 sync``, to the same local SeaweedFS server, in one run.

    .venv/bin/python bench/offsite.py            the large demo site (~2 GB, 4,565 files)
    .venv/bin/python bench/offsite.py --quick    the small demo site (seconds)

Starts SeaweedFS on loopback (``weed`` from ``scripts/build-peers``), installs the AWS CLI
into a virtual environment of the bench's own (``~/.cache/strongroom/bench-awscli``; it is
not one of Strongroom's dependencies), makes the demo site and one backup of it, then times,
run after run, each against its anchor on buckets of their own:

- first push (``strongroom push``) against ``aws s3 sync`` of the working folder up;
- a push after 1 % of the files changed (and a backup) against ``aws s3 sync`` again;
- a full pull onto a new machine (an empty data dir with the exported site key) against
  ``aws s3 sync`` down into an empty folder.

Copies are unencrypted (``aws s3 sync`` encrypts nothing either). Prints medians and ratios,
and writes them to DIR/offsite.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))  # the suite's SeaweedFS starter: one of it
import workloads as w

from servers import seaweedfs_binary, start_seaweedfs

AWSCLI = Path.home() / ".cache" / "strongroom" / "bench-awscli"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
TARGETS = {"first push": 1.2, "push after 1 % changed": 0.5, "full pull": 1.2}


def aws() -> str:
    if not (AWSCLI / "bin" / "aws").exists():
        print("installing the AWS CLI for the bench (pip, once)...", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(AWSCLI)], check=True)
        subprocess.run([str(AWSCLI / "bin" / "pip"), "install", "--quiet", "awscli"], check=True)
    return str(AWSCLI / "bin" / "aws")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the small demo site")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")) / "strongroom-bench-offsite")
    args = parser.parse_args(argv)
    binary, reason = seaweedfs_binary()
    if binary is None:
        print(f"no SeaweedFS: {reason}", file=sys.stderr)
        return 2
    cli = aws()
    w.remove(args.dir)
    args.dir.mkdir(parents=True)
    os.environ.update(CREDENTIALS)
    server = start_seaweedfs(binary, args.dir / "seaweedfs", timeout=300)
    try:
        result = measure(args, cli, server.endpoint)
    finally:
        server.stop()
    (args.dir / "offsite.json").write_text(json.dumps(result, indent=2))
    print(f"{'operation':28} {'strongroom':>11} {'aws s3 sync':>12} {'ratio':>6} {'target':>7}")
    for name, row in result["rows"].items():
        print(f"{name:28} {row['strongroom']:10.2f}s {row['aws']:11.2f}s {row['ratio']:6.2f} "
              f"{'≤ ' + str(TARGETS[name]):>7}")
    return 0


def measure(args, cli: str, endpoint: str) -> dict:
    site = args.dir / "site"
    size = ["--size", "small"] if args.quick else ["--size", "large", "--projects", "40", "--editions", "5"]
    w.strongroom(site, "demo", "init", *size)
    working = site / "working" / "pilot"
    times: dict[str, dict[str, list[float]]] = {name: {"strongroom": [], "aws": []} for name in TARGETS}
    for run in range(args.runs):
        ours, theirs = f"sr-{uuid.uuid4().hex[:10]}", f"aws-{uuid.uuid4().hex[:10]}"
        w.run(cli, "--endpoint-url", endpoint, "s3", "mb", f"s3://{ours}")
        w.run(cli, "--endpoint-url", endpoint, "s3", "mb", f"s3://{theirs}")
        os.environ.update({"STRONGROOM_S3_BUCKET": ours, "STRONGROOM_S3_ENDPOINT": endpoint})
        sync_up = (cli, "--endpoint-url", endpoint, "--only-show-errors", "s3", "sync", working, f"s3://{theirs}/")

        w.strongroom(site, "backup")
        if run == 0:
            w.strongroom(site, "key", "export", "--to", str(args.dir / "site.key"))
        times["first push"]["strongroom"].append(w.strongroom_timed(site, "push"))
        times["first push"]["aws"].append(w.timed(*sync_up))

        w.change_some(working, 0.01, seed=run)
        w.strongroom(site, "backup")
        times["push after 1 % changed"]["strongroom"].append(w.strongroom_timed(site, "push"))
        times["push after 1 % changed"]["aws"].append(w.timed(*sync_up))

        newest = w.latest_backup(site)
        new_machine, down = args.dir / f"new-machine-{run}", args.dir / f"aws-down-{run}"
        new_machine.mkdir()
        down.mkdir()
        w.strongroom(new_machine, "key", "import", str(args.dir / "site.key"))
        times["full pull"]["strongroom"].append(w.strongroom_timed(new_machine, "pull", newest))
        times["full pull"]["aws"].append(w.timed(cli, "--endpoint-url", endpoint, "--only-show-errors", "s3", "sync",
                                                 f"s3://{theirs}/", down))
        w.remove(new_machine, down)
    rows = {}
    for name, both in times.items():
        ours, theirs = statistics.median(both["strongroom"]), statistics.median(both["aws"])
        rows[name] = {"strongroom": ours, "aws": theirs, "ratio": ours / theirs, "target": TARGETS[name],
                      "runs": both}
    return {"site": "small" if args.quick else "large", "runs": args.runs, "load": os.getloadavg(), "rows": rows}


if __name__ == "__main__":
    sys.exit(main())
