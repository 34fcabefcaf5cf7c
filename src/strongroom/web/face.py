"""What the HTML pages and the API share: who asks, whether they may, and the call.

Every request goes the same way: the scope is built from the URL's project id through
the one validator (``Scope.of``; a backup id through ``validate_backup_id``), the host's
``current_user()`` is asked who is there, ``policy.can`` decides, and only then is the
service called or a job started. Nothing here knows HTML or JSON.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import g, session

from strongroom.errors import BadInput, KeyMissing, KeyRefused, NotAllowed, StrongroomError
from strongroom.humanize import validate_note
from strongroom.ids import validate_backup_id
from strongroom.policy import BACKUP, DELETE, RESTORE, VIEW, User, can
from strongroom.scopes import Scope
from strongroom.web import messages
from strongroom.web.job_process import work_of
from strongroom.web.jobs import Job, JobRunner, describe_holder
from strongroom.web.layouts import Layout

NAME = "strongroom"  # the blueprint's name, and the key of the host app's extension

# A check changes nothing but its own record: whoever may see a scope's backups may check
# them (admins for the site, organisers for their projects), in prod too.
ACTION_OF = {"backup": BACKUP, "restore": RESTORE, "delete": DELETE, "check": VIEW}
LIVE = "live"
STARTED_HERE = "strongroom_jobs"  # the session's key for the ids of the jobs it started
KEEP_STARTED = 10


class Face:
    def __init__(self, service_factory: Callable, current_user: Callable[[], User | None],
                 panel_url: Callable[[str | None], str] | None = None, layout: Layout | None = None):
        self.service_factory = service_factory
        self.current_user = current_user
        self.runner = JobRunner(service_factory)
        self.panel_url = panel_url
        self.layout = layout or Layout()

    def service(self):
        return self.service_factory()

    @property
    def mode(self) -> str:
        return self.service().config.mode

    @property
    def production(self) -> bool:
        """Is the run mode a production one (``policy``: no user-triggered change)?"""
        return self.service().config.production

    def user(self) -> User | None:
        return self.current_user()

    def identity(self) -> str | None:
        """Whom the CSRF token is bound to (``csrf.py``): "" for nobody, else the user's
        name; None while a site restore replaces the users (their records are not read)."""
        journal = self.service().maintenance()
        if journal is not None and journal.get("scope") == "site":
            return None
        user = self.user()
        return "" if user is None else user.name

    def can(self, action: str, project_id: str | None) -> bool:
        config = self.service().config
        return can(self.user(), action, Scope.of(project_id), config.mode, config.production_modes)

    def authorize(self, action: str, project_id: str | None) -> Scope:
        """The validated scope, if the current user may do ``action`` on it."""
        scope = Scope.of(project_id)
        user, config = self.user(), self.service().config
        if can(user, action, scope, config.mode, config.production_modes):
            return scope
        if user is None:
            raise NotAllowed("sign in first: backups are shown only to those allowed to see them")
        if config.production and can(user, VIEW, scope, config.mode, config.production_modes):
            raise NotAllowed(f"not in {config.mode}: there the system makes backups (scheduled); "
                             "nobody makes, restores or deletes them by hand")
        who = "admins and root" if scope.is_site else "admins, root and the project's organisers"
        raise NotAllowed(f"only {who} may {action} backups of {self.service().scope_name(scope.project_id)}")

    # -- reading ----------------------------------------------------------------------

    def list(self, project_id: str | None) -> list[dict]:
        self.authorize(VIEW, project_id)
        return self.service().list_backups(project_id)

    def show(self, project_id: str | None, backup_id: str) -> dict:
        self.authorize(VIEW, project_id)
        return self.service().show_backup(validate_backup_id(backup_id), project_id)

    def preview(self, project_id: str | None, backup_id: str) -> dict:
        self.authorize(RESTORE, project_id)
        return self.service().preview_restore(validate_backup_id(backup_id), project_id)

    def preview_parts(self, project_id: str | None, backup_id: str, paths: list[str]) -> dict:
        self.authorize(RESTORE, project_id)
        return self.service().preview_parts(validate_backup_id(backup_id), paths, project_id)
    def browse(self, project_id: str | None, backup_id: str, path: object) -> dict:
        self.authorize(VIEW, project_id)
        return self.service().browse_backup(validate_backup_id(backup_id), project_id, _text_or_none(path))

    def file(self, project_id: str | None, backup_id: str, path: object):
        """``(entry, blocks)`` of one stored file, for a download."""
        self.authorize(VIEW, project_id)
        return self.service().backup_file(validate_backup_id(backup_id), project_id, _text_or_none(path) or "")

    def archive(self, project_id: str | None, backup_id: str, path: object):
        """``(file name, blocks)`` of one folder as a tar.gz, for a download."""
        self.authorize(VIEW, project_id)
        return self.service().backup_archive(validate_backup_id(backup_id), project_id, _text_or_none(path))

    def diff(self, project_id: str | None, backup_id: str, against: object) -> dict:
        self.authorize(VIEW, project_id)
        against = LIVE if against in (None, "", LIVE) else validate_backup_id(against)
        return self.service().diff_backups(validate_backup_id(backup_id), against, project_id)

    def job(self, job_id: str) -> Job:
        """The job, for whoever may see its scope; during a site restore (the users are
        being reloaded: nobody can be asked who they are) for the session that started it."""
        job = self.runner.get(job_id)
        journal = self.service().maintenance()
        if journal is not None and journal.get("scope") == "site":
            if job.id not in session.get(STARTED_HERE, []):
                raise NotAllowed("only the session that started this job may follow it during a site restore")
            g.strongroom_maintenance_page = True  # the host's layout must not read its users either
            return job
        self.authorize(VIEW, job.project)
        return job

    def notice(self) -> str | None:
        """What the panel says while an operation runs, or None."""
        service = self.service()
        journal = service.maintenance()
        if journal is not None:
            return messages.maintenance(journal, service.busy() is not None, journal_scope_name(service, journal))
        holder = self.runner.holder(service)
        return f"Busy: {describe_holder(holder).removeprefix('another ')}" if holder else None

    # -- changing ---------------------------------------------------------------------

    def start(self, kind: str, project_id: str | None, backup_id: str | None = None, note: object = "") -> Job:
        """Check everything that can be checked at once, then run the operation as a job."""
        self.authorize(ACTION_OF[kind], project_id)
        service, by = self.service(), self.user().name
        if kind == "backup":
            note = _clean_note(note)
            service.check_backup_possible(project_id, by=by)  # NotFound, KeyRefused now, not in the job
            return self._run(service, kind, project_id, None, by, note=note, name=service.scope_name(project_id))
        validate_backup_id(backup_id)
        try:
            service.show_backup(backup_id, project_id)  # NotFound now, not in the job
        except (KeyMissing, KeyRefused):
            if kind == "restore":
                service.check_restorable(backup_id, project_id, by=by)  # refused again, and audited
            raise
        if kind == "restore":
            service.check_restorable(backup_id, project_id, by=by)  # KeyRefused now, and audited
        # named now: a restore may change the title
        return self._run(service, kind, project_id, backup_id, by, name=service.scope_name(project_id))

    def start_parts(self, project_id: str | None, backup_id: str, paths: list[str]) -> Job:
        """Restore only ``paths`` of the backup, as a job (kind ``restore``), once they are
        known to be in it."""
        self.authorize(RESTORE, project_id)
        service, by = self.service(), self.user().name
        paths = service.check_parts(validate_backup_id(backup_id), paths, project_id)  # NotFound now
        return self._run(service, "restore", project_id, backup_id, by, paths=paths)

    def _run(self, service, kind: str, project_id: str | None, backup_id: str | None, by: str, **more) -> Job:
        """The job, in a process of its own or a thread (``jobs``); remembered in the
        session, so that its status answers while a site restore reloads the users."""
        params = {"kind": kind, "project": project_id, "backup": backup_id, "by": by, **more}
        work, describe = work_of(params)
        job = self.runner.start(kind, project_id, backup_id, by, work, describe, service, params)
        session[STARTED_HERE] = [*session.get(STARTED_HERE, [])[-(KEEP_STARTED - 1):], job.id]
        return job


def _text_or_none(value: object) -> str | None:
    """A path from a query string: text (the one validator checks it later), or None."""
    if value is None or isinstance(value, str):
        return value
    raise BadInput("the path must be text")


def _clean_note(note: object) -> str:
    """The note as the OpenAPI document says, by the core's one rule (``humanize.validate_note``)."""
    return validate_note(note)


def journal_scope_name(service, journal: dict) -> str | None:
    """The name of the scope a restore's journal is about, or None to let its id speak (a
    journal is read from disk: its project id is checked like any other)."""
    if journal.get("scope") != "project":
        return None
    try:
        return service.scope_name(journal.get("project"))
    except StrongroomError:
        return None
