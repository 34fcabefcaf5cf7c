"""Shared fixtures: a real data dir under tmp_path, the real embedded database, the demo site,
and the same on a real MongoDB wire-protocol server (FerretDB, see ``servers``).

``engine_config`` (params ``embedded``, ``ferretdb``) gives a ``Config`` for either engine,
with ``engine_database``, ``engine_service`` and ``engine_site`` to match; a test module
converts to both engines by taking ``config`` from it. The ``ferretdb`` params skip, with
the reason, only where no FerretDB binary could be built (no Go).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from servers import (
    OWN_SERVER_URI,
    Server,
    ferretdb_binary,
    free_port,
    seaweedfs_binary,
    start_ferretdb,
    start_seaweedfs,
)
from strongroom.cli import main
from strongroom.config import Config, RemoteSettings
from strongroom.db.engines import list_collections, open_database
from strongroom.service import Strongroom

ENGINES = ("embedded", "ferretdb")
# The web face's jobs run in threads of the test's process, where a test can pause them at
# a chosen point (``web_support.paused_job``); the gunicorn tests run them as processes.
os.environ.setdefault("STRONGROOM_JOBS", "thread")
_servers: list[Server] = []


def pytest_addoption(parser):
    parser.addoption("--slow", action="store_true", help="also run the exhaustive (slow) tests")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "slow" in item.keywords and not config.getoption("--slow"):
            item.add_marker(pytest.mark.skip(reason="exhaustive run; pass --slow"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failed test that ran on the server gets the tail of the server's log in its report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed and _servers and ("ferretdb" in item.nodeid or "mongodb_server" in item.fixturenames):
        report.sections.append(("FerretDB log (tail)", _servers[0].log_tail()))


@pytest.fixture(scope="session")
def mongodb_server(tmp_path_factory):
    """FerretDB on a free loopback port with its own folders, for the whole session (or the
    user's own server named by STRONGROOM_TEST_MONGODB_URI)."""
    if OWN_SERVER_URI:
        server = Server(OWN_SERVER_URI)
    else:
        binary, reason = ferretdb_binary()
        if binary is None:
            pytest.skip(reason)
        server = _start_with_retries(binary, tmp_path_factory)
    _servers.append(server)
    yield server
    server.stop()
    _servers.remove(server)


def _start_with_retries(binary, tmp_path_factory, attempts: int = 3, start=start_ferretdb, name="ferretdb"):
    """The free port found may be taken before the server binds it: try again on another."""
    for attempt in range(1, attempts + 1):
        try:
            return start(binary, tmp_path_factory.mktemp(name))
        except RuntimeError:
            if attempt == attempts:
                raise
    raise AssertionError("unreachable")


# -- object stores for the offsite copies -------------------------------------------------

S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                  "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="session")
def moto_endpoint():
    """moto's S3 server (a mock of AWS) on loopback for the whole session (skipped, with
    the reason, if it cannot start)."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        pytest.skip(f"moto's server mode is not installed: {exc}")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - any reason it cannot start is a reason to skip
        pytest.skip(f"moto's S3 server did not start: {exc}")
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_endpoint(tmp_path_factory):
    """SeaweedFS (a real object store, its S3 gateway) on loopback for the whole session;
    skipped, with the reason, only where no ``weed`` could be built (no Go)."""
    binary, reason = seaweedfs_binary()
    if binary is None:
        pytest.skip(reason)
    server = _start_with_retries(binary, tmp_path_factory, start=start_seaweedfs, name="seaweedfs")
    yield server.endpoint
    server.stop()


@pytest.fixture(scope="session", params=["seaweedfs", "moto"])
def s3_endpoint(request):
    """Each object store in turn: the offsite tests that take it run against both."""
    return request.getfixturevalue(f"{request.param}_endpoint")


def s3_client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def settings(s3_endpoint, monkeypatch) -> RemoteSettings:
    """A new bucket, and the environment a user sets to use it (the CLI reads it)."""
    return new_bucket(s3_endpoint, monkeypatch)


@pytest.fixture
def key_file(tmp_path, monkeypatch):
    """A remote key (32 random bytes), named in the environment as a user would."""
    path = tmp_path / "remote.key"
    path.write_bytes(os.urandom(32))
    monkeypatch.setenv("STRONGROOM_REMOTE_KEY_FILE", str(path))
    return path


def new_bucket(endpoint: str, monkeypatch) -> RemoteSettings:
    for name, value in S3_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    bucket = f"offsite-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint).create_bucket(Bucket=bucket)
    monkeypatch.setenv("STRONGROOM_S3_BUCKET", bucket)
    monkeypatch.setenv("STRONGROOM_S3_PREFIX", "strongroom")
    monkeypatch.setenv("STRONGROOM_S3_ENDPOINT", endpoint)
    monkeypatch.delenv("STRONGROOM_REMOTE_KEY_FILE", raising=False)
    return RemoteSettings(bucket=bucket, prefix="strongroom", endpoint=endpoint)


class ServerDatabases:
    """Fresh databases on the server for one test, all dropped after it."""

    def __init__(self, server: Server):
        self.server, self.names = server, []

    def new(self, stem: str = "t") -> str:
        name = self.server.new_database_name(stem)
        self.names.append(name)
        return name

    def new_uri(self, stem: str = "t") -> str:
        return self.server.uri(self.new(stem))

    def drop_all(self) -> None:
        for name in self.names:
            self.server.drop(name)


@pytest.fixture
def server_databases(mongodb_server):
    databases = ServerDatabases(mongodb_server)
    yield databases
    databases.drop_all()


@pytest.fixture
def server_config(tmp_path, server_databases) -> Config:
    """A data dir whose records live in a fresh database on the server."""
    return Config(data_dir=tmp_path / "data", mode="pilot", db_uri=server_databases.new_uri())


@pytest.fixture(params=ENGINES)
def engine_config(request, tmp_path) -> Config:
    if request.param == "embedded":
        return Config(data_dir=tmp_path / "data", mode="pilot")
    return request.getfixturevalue("server_config")


@pytest.fixture
def engine_database(engine_config):
    return open_database(engine_config)


@pytest.fixture
def engine_service(engine_config, engine_database) -> Strongroom:
    return Strongroom(engine_config, database=engine_database)


@pytest.fixture
def engine_site(engine_config, engine_database):
    from strongroom.demo import create_demo_site

    return create_demo_site(engine_config, engine_database, projects=3, editions=2, size="small", seed=1)


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
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
            env={**os.environ, **(env or {})},
        )

    return run


@pytest.fixture
def tmpfs(tmp_path):
    """``tmpfs("64m")``: a small file system of that size mounted for the test (we are
    root), always unmounted after; skips, with the reason, where mounting is refused."""
    mounted = []

    def mount(size: str) -> Path:
        place = tmp_path / f"fs{len(mounted) or ''}"
        place.mkdir()
        made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(place)],
                              check=False, capture_output=True, text=True)
        if made.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
        mounted.append(place)
        return place

    yield mount
    for place in mounted:
        subprocess.run(["umount", "-l", str(place)], check=False)


SECOND_USER = "strongroom-attacker"
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")  # the test's own lives under /root, closed to others


@pytest.fixture(scope="session")
def second_user():
    """A second, unprivileged user, made once (``useradd``): ``(uid, gid)``. Skips, with
    the reason, where no user can be made or no process run as one."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to make a second user and run a process as that user")
    if SYSTEM_PYTHON is None or shutil.which("setpriv") is None:
        pytest.skip("needs /usr/bin/python3 and setpriv to run a process as another user")
    made = subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SECOND_USER],
                          capture_output=True, text=True, check=False)
    if made.returncode not in (0, 9):  # 9: the user exists already (an earlier session made it)
        pytest.skip(f"cannot make a second user: {made.stderr.strip()}")
    entry = pwd.getpwnam(SECOND_USER)
    return entry.pw_uid, entry.pw_gid


def as_user(user: tuple[int, int], *command: str, env: dict | None = None, timeout: float = 300):
    """Run ``command`` as ``user`` (``second_user``), with no supplementary group; a
    command starting with ``strongroom`` runs this worktree's Strongroom on the system's
    Python (the same minor version as the test's, whose own is not reachable by others)."""
    uid, gid = user
    if command[0] == "strongroom":
        command = (SYSTEM_PYTHON, "-m", "strongroom.cli", *command[1:])
        site = next(Path(sys.prefix).glob("lib/python3*/site-packages"))
        env = {"PYTHONPATH": f"{Path(__file__).parent.parent / 'src'}:{site}", **(env or {})}
    return subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--", *command],
                          capture_output=True, text=True, timeout=timeout, cwd="/", check=False,
                          env={"PATH": "/usr/bin:/bin", **(env or {})})


@pytest.fixture
def public_place():
    """A folder every user may enter (pytest's own temporary folders are root's alone)."""
    place = Path(tempfile.mkdtemp(prefix="strongroom-test-"))
    place.chmod(0o755)
    yield place
    shutil.rmtree(place)


def give_the_restore_work(folder: Path) -> Path:
    """Change one file's content below ``folder``, so that restoring a backup made just
    before has a file to copy back: a restore onto the backup's very state changes
    nothing and makes no pre-restore backup (``matching``). Returns the file."""
    path = min(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    path.chmod(0o644)
    path.write_bytes(path.read_bytes() + b" (changed since the backup)")
    return path


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


def wait_until(predicate, timeout: float = 60, what: str = "a state"):
    """Poll ``predicate`` until it returns something true, and return that: a generous
    bound, never a fixed sleep that assumes the machine's speed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"{what} was not reached within {timeout} s")
