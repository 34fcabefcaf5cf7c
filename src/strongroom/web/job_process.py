"""A job's own process: ``python -m strongroom.web.job_process <job id>``.

The web face starts one per job (``jobs._spawn``), detached from the worker that took
the request, so that recycling or killing every web worker leaves the operation running.
A process per job, rather than a long-running ``strongroom worker`` that claims queued
jobs, because a host then deploys nothing new: its gunicorn or uWSGI workers are all
there is, as before, and no job waits for a worker that an operator forgot to run (the
cost, a second or so to start Python, is nothing beside a backup or a restore).

The configuration comes in ``$STRONGROOM_JOB_CONFIG`` (``Config.to_json``: never on the
command line, where a database URI's password would be seen by ``ps``); what to do comes
from the job's record (``params``), rebuilt into the same call the web face makes for a
job in a thread (``work_of``).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import partial

from strongroom.config import Config
from strongroom.service import Strongroom
from strongroom.web import messages
from strongroom.web.jobs import ENV_JOB_CONFIG, run_job, validate_job_id


def work_of(params: dict) -> tuple[Callable, Callable[[dict], str]]:
    """``(work(service) -> result, describe(result) -> message)`` for a job's ``params``:
    ``{"kind", "project", "backup", "by", "note", "paths", "name"}``."""
    kind, project, backup, by = params["kind"], params.get("project"), params.get("backup"), params["by"]
    name = params.get("name")
    if kind == "backup":
        note = params.get("note") or ""
        return (lambda s: s.make_backup(project, note=note, reason="manual", by=by)), partial(messages.made, name=name)
    if kind == "restore" and params.get("paths") is not None:
        paths = list(params["paths"])
        return (lambda s: s.restore_parts(backup, paths, project, by=by)), messages.restored_parts
    if kind == "restore":
        return (lambda s: s.restore_backup(backup, project, by=by)), partial(messages.restored, name=name)
    if kind == "check":
        return (lambda s: s.verify_backup(backup, project, by=by)), messages.checked
    if kind == "delete":
        return (lambda s: s.delete_backup(backup, project, by=by)), partial(messages.deleted, name=name)
    raise ValueError(f"no such kind of job: {kind!r}")


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.WARNING, format="strongroom job %(process)d: %(message)s")
    job_id = validate_job_id(argv[0] if argv else None)
    config = Config.from_json(os.environ[ENV_JOB_CONFIG])
    factory = lambda progress=None: Strongroom(config, progress=progress, origin="web")
    record = factory().control.job(job_id)
    if record is None or not record.get("params"):
        return 1
    work, describe = work_of(record["params"])
    run_job(factory, job_id, work, describe)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
