"""Shared control state: the jobs every worker and every machine sees, and sign-ins.

A web face under gunicorn or uWSGI runs in several processes, perhaps on several
machines; what one started, any other must be able to show. So a job's record (kind,
scope, backup, who, state, progress, outcome, error, times, the process running it and
its heartbeat) lives here, never in a process's memory, behind one small interface with
two stores. So do the marks of ``write_hold`` (a backup's hold on the host's writes, and
each write under way): small records put, read and dropped by key.

- ``FileControl`` (the embedded engine: one machine, several processes): one JSON file
  per record under ``backups/<mode>/.control/``, written whole to a temporary file and
  renamed into place (``mutations``), so a reader sees the old record or the new one.
  A change that reads a record first (``update_job``) holds an ``flock`` on
  ``.control/.lock`` meanwhile, so two writers never undo each other's change.
- ``ServerControl`` (a MongoDB server): control collections of Strongroom's own in the
  site's database (``strongroom.jobs``, ``strongroom.sessions``; the operation lease in
  ``strongroom.lease``, ``lease``), as Percona Backup for MongoDB keeps its state, so
  that no coordination service is needed. A change is one atomic update with its
  condition. No dump or restore of the site ever touches a collection whose name starts
  with ``CONTROL_PREFIX`` (``engines.list_collections``, ``dbrestore``).

A running job whose heartbeat is older than the lease's expiry, or whose process on
this host is gone, is ended as failed by whoever next reads the jobs (``end_stale``):
a job is never "running" forever.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import socket
import time
from collections.abc import Callable
from pathlib import Path

from strongroom.fs import mutations

CONTROL_PREFIX = "strongroom."  # collections of ours in the site's database
JOBS, SESSIONS, LEASE = "strongroom.jobs", "strongroom.sessions", "strongroom.lease"
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
ACTIVE = (QUEUED, RUNNING)
KEEP_JOBS = 200  # the newest records kept; older ones are removed when a job is added
FOLDER = ".control"


def is_control_collection(name: str) -> bool:
    return name.startswith(CONTROL_PREFIX)


def this_host() -> str:
    return socket.gethostname()


def process_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def is_stale(record: dict, expiry: float, now: float | None = None) -> bool:
    """Has the process of this queued or running job stopped? Its heartbeat is older than
    ``expiry`` seconds, or it ran on this host and its process is gone."""
    if record.get("state") not in ACTIVE:
        return False
    now = time.time() if now is None else now
    if now - float(record.get("heartbeat") or 0) > expiry:
        return True
    holder = record.get("holder") or {}
    return (record.get("state") == RUNNING and holder.get("host") == this_host()
            and not process_alive(holder.get("pid")))


def _session_key(token: str) -> str:
    """The name a sign-in is kept under: a hash, so no cookie text reaches a path."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class FileControl:
    """Control records as files under ``backups/<mode>/.control/``."""

    def __init__(self, backups_dir: Path, make_folder: Callable[[Path], None] | None = None):
        self.folder = backups_dir / FOLDER
        # Made private as every folder below the backups root is (``privacy.make_folders``).
        self.make_folder = make_folder or (lambda folder: mutations.makedirs(folder, 0o700))

    def _path(self, kind: str, key: str) -> Path:
        return self.folder / kind / f"{key}.json"

    def _read(self, path: Path) -> dict | None:
        try:
            return json.loads(path.read_text("utf-8"))
        except (FileNotFoundError, ValueError):
            return None

    def _write(self, path: Path, record: dict) -> None:
        if not path.parent.is_dir():
            self.make_folder(path.parent)
        # Its own name per writer: two threads of one process may write the same record.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            fd = mutations.create_fd(tmp, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(json.dumps(record, default=str).encode())
            mutations.rename(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    def _locked(self):
        if not self.folder.is_dir():
            self.make_folder(self.folder)
        return _Flock(self.folder / ".lock")

    # -- jobs -------------------------------------------------------------------------

    def add_job(self, record: dict) -> None:
        self._write(self._path("jobs", record["id"]), record)
        self._forget_old_jobs()

    def job(self, job_id: str) -> dict | None:
        return self._read(self._path("jobs", job_id))

    def update_job(self, job_id: str, changes: dict, expect: dict | None = None) -> bool:
        """Apply ``changes`` if the record exists and its fields equal ``expect``."""
        with self._locked():
            record = self.job(job_id)
            if record is None or any(record.get(k) != v for k, v in (expect or {}).items()):
                return False
            self._write(self._path("jobs", job_id), {**record, **changes})
            return True

    def jobs(self) -> list[dict]:
        """Every kept record, newest first."""
        folder = self.folder / "jobs"
        names = os.listdir(folder) if folder.is_dir() else []
        found = [self._read(folder / name) for name in names if name.endswith(".json")]
        return sorted((r for r in found if r), key=lambda r: r.get("created", 0), reverse=True)

    def _forget_old_jobs(self) -> None:
        for record in self.jobs()[KEEP_JOBS:]:
            if record.get("state") not in ACTIVE:
                mutations.unlink(self._path("jobs", record["id"]))

    # -- sign-ins ---------------------------------------------------------------------

    def add_session(self, token: str, name: str) -> None:
        self._write(self._path("sessions", _session_key(token)), {"user": name, "at": time.time()})

    def session_user(self, token: str) -> str | None:
        record = self._read(self._path("sessions", _session_key(token)))
        return record.get("user") if record else None

    def drop_session(self, token: str) -> None:
        path = self._path("sessions", _session_key(token))
        if path.exists():
            mutations.unlink(path)

    # -- marks: small records a process puts and drops (``write_hold``) -----------------

    def put_mark(self, kind: str, key: str, record: dict) -> None:
        self._write(self._path(kind, key), record)

    def mark(self, kind: str, key: str) -> dict | None:
        return self._read(self._path(kind, key))

    def marks(self, kind: str) -> dict[str, dict]:
        """Every mark of ``kind``, by its key (to drop one found to be left behind)."""
        folder = self.folder / kind
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return {}
        found = {name.removesuffix(".json"): self._read(folder / name) for name in names
                 if name.endswith(".json") and not name.startswith(".")}
        return {key: record for key, record in found.items() if record}

    def drop_mark(self, kind: str, key: str, token: str | None = None) -> None:
        """Remove the mark (only if its ``token`` is ``token``, when given)."""
        path = self._path(kind, key)
        if token is None:
            _unlink_if_there(path)
            return
        with self._locked():
            record = self.mark(kind, key)
            if record is not None and record.get("token") == token:
                _unlink_if_there(path)


class ServerControl:
    """Control records in the site's database, in collections of Strongroom's own."""

    def __init__(self, database):
        self.database = database

    def add_job(self, record: dict) -> None:
        jobs = self.database[JOBS]
        jobs.insert_one(_to_document(record))
        old = [d["_id"] for d in jobs.find({}, {"_id": 1}).sort("created", -1).skip(KEEP_JOBS)]
        if old:
            jobs.delete_many({"_id": {"$in": old}, "state": {"$nin": list(ACTIVE)}})

    def job(self, job_id: str) -> dict | None:
        return _from_document(self.database[JOBS].find_one({"_id": job_id}))

    def update_job(self, job_id: str, changes: dict, expect: dict | None = None) -> bool:
        query = {"_id": job_id, **(expect or {})}
        return self.database[JOBS].update_one(query, {"$set": _to_document(changes)}).matched_count == 1

    def jobs(self) -> list[dict]:
        return [_from_document(d) for d in self.database[JOBS].find({}).sort("created", -1).limit(KEEP_JOBS)]

    def add_session(self, token: str, name: str) -> None:
        self.database[SESSIONS].replace_one({"_id": _session_key(token)}, {"user": name, "at": time.time()},
                                            upsert=True)

    def session_user(self, token: str) -> str | None:
        record = self.database[SESSIONS].find_one({"_id": _session_key(token)})
        return record.get("user") if record else None

    def drop_session(self, token: str) -> None:
        self.database[SESSIONS].delete_one({"_id": _session_key(token)})

    def put_mark(self, kind: str, key: str, record: dict) -> None:
        self.database[CONTROL_PREFIX + kind].replace_one({"_id": key}, record, upsert=True)

    def mark(self, kind: str, key: str) -> dict | None:
        found = self.database[CONTROL_PREFIX + kind].find_one({"_id": key})
        return {k: v for k, v in found.items() if k != "_id"} if found else None

    def marks(self, kind: str) -> dict[str, dict]:
        return {d["_id"]: {k: v for k, v in d.items() if k != "_id"} for d in self.database[CONTROL_PREFIX + kind].find({})}

    def drop_mark(self, kind: str, key: str, token: str | None = None) -> None:
        self.database[CONTROL_PREFIX + kind].delete_one({"_id": key, **({"token": token} if token else {})})


ENCODED = ("params", "progress", "result", "error", "holder")  # kept as JSON text on a server


def _to_document(record: dict) -> dict:
    """A record as a document: free-form parts as JSON text (a result's keys may be any
    text, which a server may refuse as field names)."""
    document = {k: (json.dumps(v, default=str) if k in ENCODED else v) for k, v in record.items()}
    if "id" in document:
        document["_id"] = document.pop("id")
    return document


def _from_document(document: dict | None) -> dict | None:
    if document is None:
        return None
    record = {k: (json.loads(v) if k in ENCODED and isinstance(v, str) else v) for k, v in document.items()}
    record["id"] = record.pop("_id")
    return record


def end_stale(control, expiry: float) -> list[dict]:
    """End as failed every queued or running job whose process stopped (``is_stale``);
    return the records so ended. The update is conditional on the heartbeat read, so a
    job that beat meanwhile goes on."""
    ended, now = [], time.time()
    for record in control.jobs():
        if not is_stale(record, expiry, now):
            continue
        since = time.strftime("%H:%M:%S UTC", time.gmtime(float(record.get("heartbeat") or now)))
        error = {"status": 500, "type": "Interrupted",
                 "message": f"the process running this {record.get('kind')} stopped (last heartbeat {since})"}
        changes = {"state": FAILED, "outcome": "failed", "error": error, "finished": _iso(now)}
        if control.update_job(record["id"], changes, {"state": record["state"], "heartbeat": record.get("heartbeat")}):
            ended.append({**record, **changes})
    return ended


def note_recovery(control, job_id: str | None, outcome: str) -> None:
    """Say in the job's record what recovery made of the restore it left: ``outcome``
    (``rolled back to …``, ``completed the restore of …``); a job still marked running
    is ended as failed then."""
    if not job_id:
        return
    record = control.job(job_id)
    if record is None:
        return
    changes = {"recovery": outcome}
    if record.get("state") in ACTIVE:
        changes.update(state=FAILED, finished=_iso(time.time()), error={
            "status": 500, "type": "Interrupted", "message": f"the process running this {record.get('kind')} stopped"})
    if outcome.startswith("rolled back"):
        changes["outcome"] = "rolled back"
    elif outcome.startswith("completed"):
        changes.update(outcome="done", state=DONE, error=None)
    control.update_job(job_id, changes)


def _unlink_if_there(path: Path) -> None:
    try:
        mutations.unlink(path)
    except FileNotFoundError:
        pass


def _iso(epoch: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(epoch))


class _Flock:
    def __init__(self, path: Path):
        self.path = path

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)
