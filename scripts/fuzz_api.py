"""Fuzz the JSON API with schemathesis against a real ``strongroom serve`` on 127.0.0.1.

A demo site is made in a temporary folder (or ``--data-dir`` is used), the demo app is
served on a free loopback port, and ``st run`` is run against ``/api/v1/openapi.json``
once per role: anonymous, an admin and an organiser (signed in through the demo's user
picker, with the session's CSRF token as a header). Every check schemathesis has runs,
in every phase (examples, coverage, fuzzing, stateful sequences), with a fixed seed and
an example budget per operation, so that a run is repeatable and bounded. The exit
status is 0 only when every role's run found nothing.

    .venv/bin/python scripts/fuzz_api.py                  # the long run (about 3 minutes)
    .venv/bin/python scripts/fuzz_api.py --examples 5     # what the test suite runs
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import requests

ROLES = ("anonymous", "admin", "org1")
PHASES = "examples,coverage,fuzzing,stateful"
CONFIG = Path(__file__).with_name("schemathesis.toml")


def cli(data_dir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "strongroom.cli", "--data-dir", str(data_dir), *args]


def serve(data_dir: Path) -> tuple[subprocess.Popen, str]:
    """``strongroom serve`` on a free loopback port, and its URL once it listens."""
    env = {**os.environ, "STRONGROOM_SECRET_KEY": "fuzz"}
    process = subprocess.Popen(cli(data_dir, "serve", "--host", "127.0.0.1", "--port", "0"), env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
    if not found:
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, found.group(1)


def signed_in_headers(base: str, user: str) -> list[str]:
    """The ``Cookie`` and ``X-CSRF-Token`` headers of a session signed in as ``user``."""
    session = requests.Session()
    token = session.get(base + "api/v1/session", timeout=30).json()["csrf_token"]
    if user != "anonymous":
        answer = session.post(base + "signin", data={"user": user, "csrf_token": token}, timeout=30,
                              allow_redirects=False)
        answer.raise_for_status()
        token = session.get(base + "api/v1/session", timeout=30).json()["csrf_token"]  # a new one at sign-in
    cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
    return [f"Cookie: {cookie}", f"X-CSRF-Token: {token}"]


def fuzz(base: str, user: str, examples: int, seed: int, max_time: int | None, scratch: str) -> int:
    command = [shutil.which("st", path=os.path.dirname(sys.executable)) or "st", "--config-file", str(CONFIG), "run",
               base + "api/v1/openapi.json", "--checks", "all", "--phases", PHASES, "--seed", str(seed),
               "--max-examples", str(examples), "--workers", "1", "--no-color",
               "--generation-database", "none", "--request-timeout", "30"]
    if max_time:
        command += ["--max-time", str(max_time)]
    for header in signed_in_headers(base, user):
        command += ["-H", header]
    print(f"== fuzzing the API as {user}", flush=True)
    # in the scratch folder: st keeps a crash cache in its working dir, not for the repository
    return subprocess.run(command, check=False, stdin=subprocess.DEVNULL, cwd=scratch).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="examples per operation and phase (default 200)")
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--max-time", type=int, help="seconds per role, at most")
    parser.add_argument("--roles", default=",".join(ROLES), help=f"comma-separated (default {','.join(ROLES)})")
    parser.add_argument("--data-dir", type=Path, help="an existing data dir (default: a new demo site)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="strongroom-fuzz-") as scratch:
        data_dir = args.data_dir or Path(scratch) / "data"
        if args.data_dir is None:
            subprocess.run(cli(data_dir, "demo", "init"), check=True, stdout=subprocess.DEVNULL)
        process, base = serve(data_dir)
        try:
            failed = [user for user in args.roles.split(",")
                      if fuzz(base, user, args.examples, args.seed, args.max_time, scratch) != 0]
        finally:
            process.terminate()
            process.wait(30)
    print(f"fuzzing found failures as: {', '.join(failed)}" if failed else "fuzzing found nothing", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
