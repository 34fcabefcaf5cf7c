"""Shared fixtures: a real data dir under tmp_path, the real embedded database, the demo site."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from strongroom.cli import main
from strongroom.config import Config
from strongroom.engines import list_collections, open_database
from strongroom.service import Strongroom

MONGODB_URI = os.environ.get("STRONGROOM_TEST_MONGODB_URI")
NO_MONGODB = "set STRONGROOM_TEST_MONGODB_URI to run against a MongoDB server (none can be installed here)"


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the exhaustive (slow) tests")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "mongodb" in item.keywords and not MONGODB_URI:
            item.add_marker(pytest.mark.skip(reason=NO_MONGODB))
        if "slow" in item.keywords and not config.getoption("--slow"):
            item.add_marker(pytest.mark.skip(reason="exhaustive run; pass --slow"))


@pytest.fixture
def config(tmp_path) -> Config:
    return Config(data_dir=tmp_path / "data", mode="pilot")


@pytest.fixture
def database(config):
    return open_database(config)


@pytest.fixture
def site(config, database):
    """The small demo site, made fresh in the temporary data dir."""
    from strongroom.demo import create_demo_site

    return create_demo_site(config, database, projects=3, editions=2, size="small", seed=1)


@pytest.fixture
def service(config, database) -> Strongroom:
    return Strongroom(config, database=database)


@pytest.fixture
def cli(config):
    """Run the CLI in-process on the fixture's data dir: ``cli("list", "--json")``."""
    runner = CliRunner()

    def run(*args, input=None):
        return runner.invoke(main, ["--data-dir", str(config.data_dir), "--mode", config.mode, *args], input=input)

    return run


@pytest.fixture
def cli_process(config):
    """Run the CLI as a separate process, as a user or cron would."""

    def run(*args, timeout=120, env=None):
        return subprocess.run(
            [sys.executable, "-m", "strongroom.cli", "--data-dir", str(config.data_dir), "--mode", config.mode, *args],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
        )

    return run


def tree_fingerprint(root: Path) -> dict[str, tuple]:
    """Every entry below ``root``: type, mode, size, mtime, content hash or link target."""
    found = {}
    if not root.exists():
        return found
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = Path(folder) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                found[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                found[rel] = ("dir", stat.S_IMODE(st.st_mode))
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                found[rel] = ("file", stat.S_IMODE(st.st_mode), st.st_size, st.st_mtime_ns, digest)
    return found


def records_fingerprint(database, queries: dict[str, dict] | None = None) -> dict[str, list]:
    """Every record of the given collections (all when None), sorted by ``_id``."""
    names = list(queries) if queries is not None else list_collections(database)
    found = {}
    for name in names:
        docs = list(database[name].find((queries or {}).get(name, {})))
        found[name] = sorted(docs, key=lambda d: str(d["_id"]))
    return {name: docs for name, docs in found.items() if docs or queries is not None}
