"""The real MongoDB wire-protocol peers of the test suite: FerretDB, and mongo-tools.

``scripts/build-peers`` builds them into a cache outside the repository and ``./run test``
exports where they are (``STRONGROOM_FERRETDB``, ``STRONGROOM_MONGO_TOOLS``) or why they
could not be had (``STRONGROOM_*_UNAVAILABLE``). Without those variables the default cache
folder is looked at, so a plain ``pytest`` finds peers built earlier.

``STRONGROOM_TEST_MONGODB_URI`` (``mongodb://host:port/``) points the server tests at a
user's own server instead: nothing is started then, and each test still gets its own
database, dropped afterwards.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

FERRETDB_VERSION = "v1.24.2"
TOOLS_VERSION = "100.18.0"
OWN_SERVER_URI = os.environ.get("STRONGROOM_TEST_MONGODB_URI")


def _cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "strongroom" / "peers"


def _unavailable(peer_dir: Path, variable: str, fallback: str) -> str:
    reason = os.environ.get(variable) or os.environ.get("STRONGROOM_PEERS_UNAVAILABLE")
    if not reason and (peer_dir / "UNAVAILABLE").is_file():
        reason = (peer_dir / "UNAVAILABLE").read_text().strip()
    return reason or fallback


def ferretdb_binary() -> tuple[Path | None, str]:
    """The FerretDB binary, or ``None`` and the reason it is not there."""
    folder = _cache() / f"ferretdb-{FERRETDB_VERSION}"
    binary = Path(os.environ.get("STRONGROOM_FERRETDB") or folder / "ferretdb")
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary, ""
    return None, _unavailable(folder, "STRONGROOM_FERRETDB_UNAVAILABLE",
                              f"no FerretDB {FERRETDB_VERSION} binary: run scripts/build-peers (needs Go)")


def mongo_tool(name: str) -> tuple[Path | None, str]:
    """One of ``mongodump``, ``mongorestore``, ``bsondump``, or ``None`` and why not."""
    folder = os.environ.get("STRONGROOM_MONGO_TOOLS")
    binary = Path(folder) / name if folder else None
    if binary is not None and binary.is_file() and os.access(binary, os.X_OK):
        return binary, ""
    return None, (os.environ.get("STRONGROOM_MONGO_TOOLS_UNAVAILABLE")
                  or f"no mongo-tools: set STRONGROOM_MONGO_TOOLS to the folder of your own {TOOLS_VERSION} install")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A MongoDB wire-protocol server the tests may create and drop databases on."""

    _names = itertools.count(1)

    def __init__(self, base_uri: str, log: Path | None = None, process: subprocess.Popen | None = None):
        # A database named in the URI is ignored: every test gets its own.
        parts = urlsplit(base_uri)
        self.base_uri = urlunsplit((parts.scheme, parts.netloc, "/", "", ""))
        self.query = f"?{parts.query}" if parts.query else ""
        self.log = log
        self.process = process
        self._client = None

    @property
    def client(self):
        if self._client is None:
            import pymongo

            self._client = pymongo.MongoClient(self.base_uri + self.query, serverSelectionTimeoutMS=5000)
        return self._client

    def new_database_name(self, stem: str = "t") -> str:
        return f"strongroom_{stem}_{os.getpid()}_{next(self._names)}"

    def uri(self, database: str) -> str:
        return self.base_uri + database + self.query

    def drop(self, database: str) -> None:
        self.client.drop_database(database)

    def log_tail(self, lines: int = 40) -> str:
        if self.log is None or not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self._client is not None:
            self._client.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_ferretdb(binary: Path, folder: Path, timeout: float = 60) -> Server:
    """Start FerretDB (SQLite backend) on a free loopback port with its own folders under
    ``folder``; returns once it answers a ping. Its log is ``folder/ferretdb.log``."""
    data, state = folder / "data", folder / "state"
    data.mkdir(parents=True)
    state.mkdir()
    log = folder / "ferretdb.log"
    port = free_port()
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(binary), "--handler=sqlite", f"--sqlite-url=file:{data}/", f"--listen-addr=127.0.0.1:{port}",
             "--telemetry=disable", f"--state-dir={state}", "--debug-addr=-", "--log-level=warn"],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    server = Server(f"mongodb://127.0.0.1:{port}/", log, process)
    deadline = time.monotonic() + timeout
    while True:
        try:
            server.client.admin.command("ping")
            return server
        except Exception as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"FerretDB did not start ({exc}); its log:\n{server.log_tail()}") from exc
            time.sleep(0.1)


def copy_database(server: Server, source: str, target: str) -> None:
    """Copy every collection of ``source`` into ``target`` (documents byte for byte, and
    indexes), as ``cp -a`` copies a data dir holding the embedded database."""
    import bson

    from strongroom.db.dbdump import RAW_OPTIONS

    client = server.client
    for info in client[source].list_collections():
        name = info["name"]
        client[target].create_collection(name, **(info.get("options") or {}))
        for batch in client[source][name].find_raw_batches({}):
            documents = bson.decode_all(batch, RAW_OPTIONS)
            if documents:
                client[target][name].insert_many(documents, ordered=True)
        for index in client[source][name].list_indexes():
            if index["name"] != "_id_":
                options = {k: v for k, v in index.items() if k not in ("v", "key", "ns")}
                client[target][name].create_index(list(index["key"].items()), **options)



# -- SeaweedFS: a real S3-compatible object store for the offsite tests -----------------------

SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"


def seaweedfs_binary() -> tuple[Path | None, str]:
    """SeaweedFS's ``weed``, or ``None`` and the reason it is not there."""
    folder = _cache() / f"seaweedfs-{SEAWEEDFS_VERSION}"
    binary = Path(os.environ.get("STRONGROOM_SEAWEEDFS") or folder / "weed")
    if binary.is_file() and os.access(binary, os.X_OK):
        return binary, ""
    return None, _unavailable(folder, "STRONGROOM_SEAWEEDFS_UNAVAILABLE",
                              f"no SeaweedFS {SEAWEEDFS_VERSION} binary: run scripts/build-peers (needs Go)")


class ObjectServer:
    """A running S3-compatible server: its endpoint, its process and its log."""

    def __init__(self, endpoint: str, log: Path, process: subprocess.Popen):
        self.endpoint, self.log, self.process = endpoint, log, process

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:]) if self.log.is_file() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_seaweedfs(binary: Path, folder: Path, timeout: float = 120) -> ObjectServer:
    """``weed server`` with its master, volume server, filer and S3 gateway on free loopback
    ports (every listener named: none on a default port, none beyond 127.0.0.1, no
    telemetry), data under ``folder``, volumes of 64 MB as many as the disk holds
    (``-volume.max=0``); returns once S3 answers a bucket listing. Its log is
    ``folder/weed.log``. ``RuntimeError`` when it does not start (a port taken meanwhile)."""
    data = folder / "data"
    data.mkdir(parents=True)
    # Each bucket is a collection of its own, which grows 7 volumes at a time by default:
    # one at a time lets a test session's hundred buckets fit (read from the working folder).
    (folder / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\ncopy_other = 1\n")
    ports = _free_ports(8)
    names = ["master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
             "filer.port.grpc", "s3.port", "s3.port.grpc"]
    command = [str(binary), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
               "-master.telemetry=false", "-filer", "-s3", "-s3.port.iceberg=0", "-s3.port.lance=0",
               "-master.volumeSizeLimitMB=64", "-volume.max=0",
               f"-filer.localSocket={folder}/filer.sock", f"-s3.localSocket={folder}/s3.sock",
               *(f"-{name}={port}" for name, port in zip(names, ports, strict=True))]
    log = folder / "weed.log"
    with open(log, "wb") as out:
        # The gateway takes its one identity from these variables: requests are authenticated.
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=folder, env=env)
    server = ObjectServer(f"http://127.0.0.1:{ports[names.index('s3.port')]}", log, process)
    deadline = time.monotonic() + timeout
    import boto3
    from botocore.config import Config as BotoConfig

    client = boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=BotoConfig(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1}))
    probe, made = f"probe-{os.getpid()}", False
    while True:
        try:  # a bucket made and written: the filer and a volume are up, not only the gateway
            if not made:
                client.create_bucket(Bucket=probe)
                made = True
            client.put_object(Bucket=probe, Key="probe", Body=b"probe")
            client.delete_object(Bucket=probe, Key="probe")
            return server
        except Exception as exc:
            if process.poll() is not None or time.monotonic() > deadline:
                server.stop()
                raise RuntimeError(f"SeaweedFS did not start ({exc}); its log:\n{server.log_tail()}") from exc
            time.sleep(0.2)


def _free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now (another process may take one before it is bound:
    the caller retries)."""
    ports: set[int] = set()
    while len(ports) < count:
        ports.add(free_port())
    return sorted(ports)
