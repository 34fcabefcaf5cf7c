"""Background jobs that every worker and every machine sees.

A job's record lives in the shared control state (``repo.control``: files under the
data dir for the embedded engine, a control collection on a MongoDB server), never in a
process's memory, so any worker of any instance answers any poll.

``JobRunner.start`` refuses at once (``Busy``) when a job is queued or running anywhere,
or another process holds the operation's lock or lease, so a second operation is never
queued; it then adds the job's record and runs it:

- ``process`` (the default): in a detached process of its own (``job_process``), which
  outlives the request and the worker that started it: a recycled or killed web worker
  leaves the job running.
- ``thread``: in a thread of this process (``$STRONGROOM_JOBS=thread``; the tests use it
  to pause a job at a chosen point).

Either way the job's own code (``run_job``) claims the record, reports the phase, the
amount done and the time left (``progress_model``) into it at most twice a second, beats
its heartbeat, and at the end writes the result, or the error and what became of the
operation (done, rolled back, refused, failed). A job whose process died is ended as
failed by the next reader once its heartbeat is older than the lease's expiry (at once
when its process on this host is gone: ``control.end_stale``), and the restore it left
is recovered by the next request that meets the journal (``Strongroom.recover_if_needed``),
which says in the job's record what recovery did. A job is never "running" forever.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from strongroom import humanize
from strongroom.errors import Busy, InvalidName, NotFound, StrongroomError
from strongroom.errors import describe as describe_error
from strongroom.progress_model import OUTCOMES, ProgressModel, outcome_of
from strongroom.repo.control import (
    ACTIVE,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    end_stale,
    is_stale,
    this_host,
)

JOB_ID_RE = re.compile(r"\A[0-9a-f]{32}\Z")
ENV_JOBS = "STRONGROOM_JOBS"  # process (default) or thread
ENV_JOB_CONFIG = "STRONGROOM_JOB_CONFIG"  # the configuration handed to a job's process
REPORT_EVERY = 0.5  # seconds: the most often a job's progress is written to shared state


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Job:
    """One moment of a job's record (and, for a job this process runs, its live progress)."""

    def __init__(self, record: dict, progress: ProgressModel | None = None):
        self.record = record
        self.progress = progress

    def __getattr__(self, name: str):
        if name in ("id", "kind", "project", "backup", "by", "started", "finished", "result", "error",
                    "recovery"):
            return self.record.get(name)
        raise AttributeError(name)

    @property
    def message(self) -> str:
        return self.record.get("message") or ""

    @property
    def state(self) -> str:
        """``running`` (queued or running), ``done`` or ``failed``."""
        return RUNNING if self.record.get("state") in ACTIVE else self.record.get("state", FAILED)

    def _shown(self) -> dict:
        if self.progress is not None and self.record.get("state") in ACTIVE:
            return self.progress.snapshot()
        return self.record.get("progress") or ProgressModel().snapshot()

    @property
    def step(self) -> str:
        """The phase in words: ``Copying files``."""
        return self._shown()["words"]

    @property
    def percent(self) -> int:
        """Of the whole operation, weighed by time (``progress_model``); 100 only when done."""
        return self._shown()["percent"]

    @property
    def outcome(self) -> str | None:
        return self.record.get("outcome") or self._shown().get("outcome")

    @property
    def outcome_words(self) -> str:
        """``running``, ``done``, ``failed and rolled back``, ``refused``, ``failed``."""
        return OUTCOMES.get(self.outcome, self.state)

    def still(self) -> Job:
        """This moment of the job, whose state no longer changes (the record is a copy)."""
        return Job(self.record)

    def to_dict(self) -> dict:
        shown = self._shown()
        return {
            "id": self.id, "kind": self.kind, "scope": "site" if self.project is None else "project",
            "project": self.project, "backup": self.backup, "by": self.by, "state": self.state,
            "queued": self.record.get("state") == QUEUED,
            "step": shown["words"], "phase": shown["phase"], "done": shown["done"], "total": shown["total"],
            "unit": shown["unit"], "percent": shown["percent"], "eta_seconds": shown["eta_seconds"],
            "eta": shown["eta"], "outcome": self.outcome, "outcome_words": self.outcome_words,
            "started": self.started, "finished": self.finished, "result": self.result,
            "error": self.error, "message": self.message, "recovery": self.recovery,
            "holder": self.record.get("holder"), "heartbeat": self.record.get("heartbeat"),
        }


def validate_job_id(value: object) -> str:
    if not isinstance(value, str) or not JOB_ID_RE.match(value):
        raise InvalidName("not a job id (expected 32 hex digits)")
    return value


def describe_holder(info: dict) -> str:
    """``another backup is running (started 10:14 UTC by admin)``."""
    started = info.get("started")
    when = f"started {humanize.clock(started)} " if started else ""
    return f"another {info.get('operation') or 'operation'} is running ({when}by {info.get('by') or 'someone'})"


class JobRunner:
    def __init__(self, service_factory: Callable, run: str | None = None):
        self.service_factory = service_factory
        self.run = run or os.environ.get(ENV_JOBS) or "process"
        if self.run not in ("process", "thread"):
            raise ValueError(f"{ENV_JOBS} must be process or thread, not {self.run!r}")
        self._live: dict[str, ProgressModel] = {}  # the jobs this process runs in threads
        self._lock = threading.Lock()  # one start at a time in this process

    def get(self, job_id: object) -> Job:
        job_id = validate_job_id(job_id)
        service = self.service_factory()
        control = service.control
        record = control.job(job_id)
        if record is not None and is_stale(record, service.config.lease_expiry):
            end_stale(control, service.config.lease_expiry)
            service.recover_if_needed()  # the restore it left, if any; noted in its record
            record = control.job(job_id)
        if record is None:
            raise NotFound("no such job (only the newest jobs are kept)")
        return Job(record, self._live.get(job_id))

    def jobs(self) -> list[Job]:
        """The kept jobs, newest first (those whose process stopped ended as failed)."""
        return [Job(record, self._live.get(record["id"])) for record in self.service_factory().jobs()]

    def running(self) -> Job | None:
        return next((job for job in self.jobs() if job.state == RUNNING), None)

    def holder(self, service) -> dict | None:
        """What runs now, anywhere: ``{operation, by, started}`` or None."""
        job = self.running()
        if job is not None:
            return {"operation": job.kind, "by": job.by, "started": job.started}
        return service.busy()

    def start(self, kind: str, project: str | None, backup: str | None, by: str,
              work: Callable, describe: Callable[[dict], str], service, params: dict | None = None) -> Job:
        """Run ``work(service)`` as a job; refuse with ``Busy`` if anything runs now.

        In a process of its own the operation is rebuilt from ``params``
        (``job_process.work_of``); without them the job runs in a thread."""
        with self._lock:
            holder = self.holder(service)
            if holder is not None:
                raise Busy(describe_holder(holder))
            now = time.time()
            record = {"id": secrets.token_hex(16), "kind": kind, "project": project, "backup": backup, "by": by,
                      "params": params, "state": QUEUED, "created": now, "heartbeat": now, "started": _now(),
                      "finished": None, "holder": {"host": this_host(), "pid": os.getpid()},
                      "progress": None, "outcome": None, "result": None, "error": None, "message": ""}
            service.control.add_job(record)
        if self.run == "process" and params is not None:
            _spawn(service.config, record["id"])
            return Job(record)
        progress = ProgressModel()
        self._live[record["id"]] = progress
        thread = threading.Thread(target=self._run_here, args=(record["id"], work, describe, progress),
                                  daemon=True, name=f"strongroom-{kind}-{record['id'][:8]}")
        thread.start()
        return Job(record, progress)

    def _run_here(self, job_id: str, work: Callable, describe: Callable, progress: ProgressModel) -> None:
        try:
            run_job(self.service_factory, job_id, work, describe, progress)
        finally:
            self._live.pop(job_id, None)

    def wait(self, job: Job, timeout: float = 60) -> Job:
        """For tests and scripts: poll until the job has ended (or ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            current = self.get(job.id)
            if current.state != RUNNING or time.monotonic() > deadline:
                return current.still()
            time.sleep(0.05)


def _spawn(config, job_id: str) -> None:
    """Start the job's own process, detached from this one (a session of its own: the web
    server's signals to its workers do not reach it), and reap it when it ends."""
    env = {**os.environ, ENV_JOB_CONFIG: config.to_json()}
    process = subprocess.Popen([sys.executable, "-m", "strongroom.web.job_process", job_id], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True,
                               close_fds=True)
    threading.Thread(target=process.wait, daemon=True, name=f"reap-{job_id[:8]}").start()


def run_job(service_factory: Callable, job_id: str, work: Callable, describe: Callable[[dict], str],
            progress: ProgressModel | None = None) -> None:
    """Claim the queued job, run ``work(service)`` reporting into its record, end it."""
    progress = progress or ProgressModel()
    service = service_factory(progress=progress)
    service.job = job_id
    control, config = service.control, service.config
    holder = {"host": this_host(), "pid": os.getpid()}
    claimed = {"state": RUNNING, "holder": holder, "heartbeat": time.time(), "progress": progress.snapshot()}
    if not control.update_job(job_id, claimed, {"state": QUEUED}):
        return  # ended meanwhile (its start took longer than the lease's expiry)
    reporter = _Reporter(control, job_id, progress, config.lease_heartbeat)
    reporter.start()
    ending = {"state": FAILED, "outcome": "failed"}
    try:
        result = work(service)
        ending = {"state": DONE, "outcome": "done", "result": result, "message": describe(result)}
        if (control.job(job_id) or {}).get("kind") == "backup":
            ending["backup"] = result.get("id")  # the backup it made, as a restore's job names its source
    except StrongroomError as exc:
        ending["error"] = {"status": exc.http_status, "type": type(exc).__name__, "message": str(exc)}
        ending["outcome"] = outcome_of(exc)
    except Exception as exc:  # noqa: BLE001 - a job must always end with an outcome
        ending["error"] = {"status": 500, "type": type(exc).__name__, "message": describe_error(exc)}
    finally:
        reporter.stop()
        progress.finish(ending["outcome"])
        ending.update(progress=progress.snapshot(), finished=_now(), heartbeat=time.time())
        if not control.update_job(job_id, ending, {"state": RUNNING}):
            control.update_job(job_id, {"late": ending})  # ended as stale meanwhile: say what came after


class _Reporter:
    """Writes the job's progress into its record at most every ``REPORT_EVERY`` seconds
    when it changed, and its heartbeat at least every ``heartbeat`` seconds."""

    def __init__(self, control, job_id: str, progress: ProgressModel, heartbeat: float):
        self.control, self.job_id, self.progress, self.heartbeat = control, job_id, progress, heartbeat
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=f"report-{job_id[:8]}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        last_shown, last_beat = None, time.monotonic()
        while not self._stop.wait(REPORT_EVERY):
            shown = self.progress.snapshot()
            comparable = {k: v for k, v in shown.items() if k not in ("eta", "eta_seconds")}
            if comparable == last_shown and time.monotonic() - last_beat < self.heartbeat:
                continue
            try:
                self.control.update_job(self.job_id, {"progress": shown, "heartbeat": time.time()},
                                        {"state": RUNNING})
            except Exception:  # noqa: BLE001, S112 - a missed beat; the next one tries again
                continue
            last_shown, last_beat = comparable, time.monotonic()
