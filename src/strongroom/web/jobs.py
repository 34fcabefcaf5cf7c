"""Background jobs: a long operation runs in its own thread while the page polls it.

``JobRunner.start`` refuses at once (``Busy``) when a job of this runner is running or
another process holds the operation lock, so a second operation is never queued; it
then runs ``work(service)`` in a thread, on a service built by ``service_factory`` with
a ``progress_model.ProgressModel`` as its progress callback: the job shows the phase in
words, the amount done, the overall percentage and the time left, as the CLI does. The
outcome is kept: the result, or the error's status and message, and in ``outcome`` what
became of the operation (done, rolled back, refused, failed; ``progress_model``). Jobs live in memory (the last
``keep`` of them), so the web face must run in one process (threads are fine).
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from strongroom import humanize
from strongroom.errors import Busy, InvalidName, NotFound, StrongroomError
from strongroom.progress_model import OUTCOMES, ProgressModel, outcome_of

JOB_ID_RE = re.compile(r"\A[0-9a-f]{32}\Z")
RUNNING, DONE, FAILED = "running", "done", "failed"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Job:
    id: str
    kind: str  # backup, restore, delete, check
    project: str | None  # None for the site
    backup: str | None
    by: str
    state: str = RUNNING
    started: str = field(default_factory=_now)
    finished: str | None = None
    result: dict | None = None
    error: dict | None = None
    message: str = ""
    thread: threading.Thread | None = field(default=None, repr=False, compare=False)
    progress: ProgressModel = field(default_factory=ProgressModel, repr=False, compare=False)

    @property
    def step(self) -> str:
        """The phase in words: ``Copying files``."""
        return self.progress.snapshot()["words"]

    @property
    def percent(self) -> int:
        """Of the whole operation, weighed by time (``progress_model``); 100 only when done."""
        return self.progress.snapshot()["percent"]

    @property
    def outcome(self) -> str | None:
        return self.progress.outcome

    @property
    def outcome_words(self) -> str:
        """``running``, ``done``, ``failed and rolled back``, ``refused``, ``failed``."""
        return OUTCOMES.get(self.outcome, self.state)

    def still(self) -> Job:
        """A copy whose state no longer changes (the progress is still shared, and may run ahead).

        The state is set last when a job ends, so a copy that reads it as ended has the whole
        outcome; one that reads it as running is shown as running and followed.
        """
        return copy.copy(self)

    def to_dict(self) -> dict:
        shown = self.progress.snapshot()
        return {
            "id": self.id, "kind": self.kind, "scope": "site" if self.project is None else "project",
            "project": self.project, "backup": self.backup, "by": self.by, "state": self.state,
            "step": shown["words"], "phase": shown["phase"], "done": shown["done"], "total": shown["total"],
            "unit": shown["unit"], "percent": shown["percent"], "eta_seconds": shown["eta_seconds"],
            "eta": shown["eta"], "outcome": shown["outcome"], "outcome_words": self.outcome_words,
            "started": self.started, "finished": self.finished, "result": self.result,
            "error": self.error, "message": self.message,
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
    def __init__(self, service_factory: Callable, keep: int = 100):
        self.service_factory = service_factory
        self.keep = keep
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._lock = threading.RLock()  # start() asks running() while holding it

    def get(self, job_id: object) -> Job:
        job_id = validate_job_id(job_id)
        with self._lock:
            job = self._jobs.get(job_id)
        if job is None:
            raise NotFound("no such job (jobs are forgotten when the server restarts)")
        return job

    def running(self) -> Job | None:
        with self._lock:
            return next((job for job in self._jobs.values() if job.state == RUNNING), None)

    def holder(self, service) -> dict | None:
        """What runs now, here or in another process: ``{operation, by, started}`` or None."""
        job = self.running()
        if job is not None:
            return {"operation": job.kind, "by": job.by, "started": job.started}
        return service.busy()

    def start(self, kind: str, project: str | None, backup: str | None, by: str,
              work: Callable, describe: Callable[[dict], str], service) -> Job:
        """Run ``work(service)`` in a thread; refuse with ``Busy`` if anything runs now."""
        with self._lock:
            holder = self.holder(service)
            if holder is not None:
                raise Busy(describe_holder(holder))
            job = Job(secrets.token_hex(16), kind, project, backup, by)
            self._jobs[job.id] = job
            while len(self._jobs) > self.keep:
                self._jobs.popitem(last=False)
        job.thread = threading.Thread(target=self._run, args=(job, work, describe), daemon=True,
                                      name=f"strongroom-{kind}-{job.id[:8]}")
        job.thread.start()
        return job

    def _run(self, job: Job, work: Callable, describe: Callable[[dict], str]) -> None:
        state, outcome = FAILED, "failed"
        try:
            job.result = work(self.service_factory(progress=job.progress))
            job.message = describe(job.result)
            state = outcome = DONE
        except StrongroomError as exc:
            job.error = {"status": exc.http_status, "type": type(exc).__name__, "message": str(exc)}
            outcome = outcome_of(exc)
        except Exception as exc:  # noqa: BLE001 - a job must always end with an outcome
            job.error = {"status": 500, "type": type(exc).__name__, "message": str(exc) or repr(exc)}
        finally:
            job.progress.finish(outcome)
            job.finished = _now()
            job.state = state  # last: a reader that sees the end sees the whole outcome

    def wait(self, job: Job, timeout: float = 60) -> Job:
        """For tests and scripts: block until the job has ended."""
        if job.thread is not None:
            job.thread.join(timeout)
        return job
