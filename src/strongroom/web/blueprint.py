"""The backups blueprint: the panel, its pages and the API, for any Flask + MongoDB site.

Mount it once::

    app.register_blueprint(make_blueprint(config, current_user=my_current_user))

``current_user()`` returns a ``strongroom.policy.User`` (name, role, ids of the projects
the user organises) or ``None``. Host templates show a panel with
``{{ strongroom_panel() }}`` (site) or ``{{ strongroom_panel(project_id) }}``.

Pages (``/backups/site/…`` and ``/backups/projects/<id>/…``): the panel alone, a backup's
details with its browse view (``?path=``, with a form to restore one file or folder of
it), one file's download, one folder's download as a tar.gz (``browsing.py``), what changed
since the backup (``changes?against=``), the restore preview with its confirmation form
(also for a part), the delete confirmation, and a job's progress (a backup, restore, delete
or check). State changes are POST forms with the session's CSRF token; a GET on
them is 405. The API is mounted at ``/api/v1`` (``api.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from markupsafe import Markup
from werkzeug.exceptions import HTTPException

from strongroom import humanize
from strongroom.config import Config
from strongroom.db.engines import database_exists, open_database
from strongroom.errors import Busy, NotAllowed, StrongroomError
from strongroom.policy import User
from strongroom.service import Strongroom
from strongroom.web import (
    api,
    chart,
    csrf,
    downloads,
    listing,
    maintenance,
    messages,
    operations,
    titles,
)
from strongroom.web.face import NAME, Face
from strongroom.web.layouts import Layout


def service_factory_for(config: Config, database=None) -> Callable[..., Strongroom]:
    """``factory(progress=None)``: a service on ``config``, sharing one open database (once
    it exists: an embedded one is not made by a look, nor by a backup, see ``service``)."""
    shared = {"database": database}

    def factory(progress=None) -> Strongroom:
        if shared["database"] is None and database_exists(config):
            shared["database"] = open_database(config)
        return Strongroom(config, database=shared["database"], progress=progress, origin="web")

    return factory


def make_blueprint(services: Config | Callable[..., Strongroom], current_user: Callable[[], User | None], *,
                   panel_url: Callable[[str | None], str] | None = None, layout: str | None = None,
                   layout_blocks: dict[str, str | None] | None = None, pages_path: str = "/backups") -> Blueprint:
    """The blueprint; ``services`` is a ``Config`` or a ``factory(progress=None) -> Strongroom``.

    ``panel_url(project_id)`` is where the host shows a scope's panel (default: the
    blueprint's own page); ``layout`` the template the pages extend (it shows flashed
    messages), ``layout_blocks`` which of its blocks take the pages' title, head and
    content, and the stylesheet and script (``assets``) (``layouts.py``; default: blocks
    ``title``, ``head`` and ``content``). ``pages_path`` is where the pages are in the app
    (``mounting.py`` puts them at the top of an app of their own).
    """
    factory = service_factory_for(services) if isinstance(services, Config) else services
    face = Face(factory, current_user, panel_url, Layout(layout, layout_blocks))
    bp = Blueprint(NAME, __name__, template_folder="templates", static_folder="static",
                   static_url_path=f"{pages_path}/static")
    bp.record_once(lambda state: _install(state.app, face, state.url_prefix or "", pages_path))
    bp.before_request(csrf.check_request)
    _guard_during_restores(bp, factory, face.layout)
    bp.errorhandler(StrongroomError)(error_page)

    def scoped(path: str, view, methods=("GET",)) -> None:
        for rule, defaults in ((f"{pages_path}/site{path}", {"project_id": None}),
                               (f"{pages_path}/projects/<project_id>{path}", {})):
            bp.add_url_rule(rule, view.__name__, view, methods=methods, defaults=defaults, merge_slashes=False)

    scoped("", panel_page)
    scoped("/make", make, ("POST",))
    scoped("/<backup_id>/details", details)
    scoped("/<backup_id>/preview", preview)
    scoped("/<backup_id>/restore", restore, ("POST",))
    scoped("/<backup_id>/preview-part", preview_part, ("POST",))
    scoped("/<backup_id>/restore-part", restore_part, ("POST",))
    scoped("/<backup_id>/confirm-delete", confirm_delete)
    scoped("/<backup_id>/delete", delete, ("POST",))
    scoped("/<backup_id>/download", download)
    scoped("/<backup_id>/archive", archive)
    scoped("/<backup_id>/changes", changes)
    scoped("/<backup_id>/check", check, ("POST",))
    bp.add_url_rule(f"{pages_path}/jobs/<job_id>", "job_page", job_page, merge_slashes=False)
    bp.register_blueprint(api.make_api_blueprint(), url_prefix="/api/v1")
    return bp


def _guard_during_restores(bp: Blueprint, factory: Callable, layout: Layout) -> None:
    """The blueprint's own maintenance answers (``maintenance.py``), after the CSRF check."""
    # A job's page answers for itself: its progress to the session that started it, the
    # maintenance notice to others (``job_page``).
    guard = maintenance.Guard(factory, layout, (*maintenance.ALWAYS_OPEN, f"{NAME}.job_page"), refuse_writes=False,
                              is_api=lambda: request.blueprint == f"{NAME}.api")
    bp.before_request(guard.before)
    bp.after_request(guard.after)


def _install(app: Flask, face: Face, prefix: str, pages_path: str) -> None:
    app.extensions[NAME] = face
    app.extensions[csrf.IDENTITY] = face.identity
    app.jinja_env.globals["strongroom_panel"] = render_panel
    app.jinja_env.globals["sr_path_url"] = downloads.path_url
    app.jinja_env.filters["sr_path_field"] = downloads.path_field
    app.jinja_env.globals["strongroom_scope_name"] = scope_name
    app.jinja_env.globals["sr_titled"] = lambda path, exact=False: titles.titled(face, path, exact)
    app.jinja_env.filters.update(sr_size=humanize.size, sr_count=humanize.count,
                                 sr_when=humanize.when, sr_ago=humanize.ago, sr_took=humanize.took,
                                 sr_path=humanize.path, sr_text=humanize.escape, sr_plural=lambda n, word: humanize.plural(n, word))
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.config["SESSION_COOKIE_HTTPONLY"] = True
    api.install_error_pages(app, prefix + "/api/v1/", prefix + pages_path + "/", routing_error)


def _face() -> Face:
    return current_app.extensions[NAME]


def _page(template: str, http_status: int = 200, **context):
    back = _panel_target(context["project_id"]) if "project_id" in context else None
    layout = _face().layout.template(current_app.jinja_env)
    return render_template(template, layout=layout, csrf_token=csrf.token(), back=back, **context), http_status


def error_page(exc: StrongroomError):
    return _page("strongroom/error.html", exc.http_status, error=exc, status=exc.http_status)


def routing_error(exc: HTTPException):
    """Routing's 404 and 405 as a page in the panel's look (a 405 keeps its ``Allow``)."""
    body, status = _page("strongroom/error.html", exc.code or 500, error=messages.routing(exc, request.path, request.method),
                         status=exc.code)
    response = make_response(body, status)
    for name, value in exc.get_headers():
        if name.lower() != "content-type":
            response.headers[name] = value
    return response


def _panel_target(project_id: str | None) -> str:
    """Where the scope's panel is: the host's page for it, or ours."""
    face = _face()
    return face.panel_url(project_id) if face.panel_url else url_for(f"{NAME}.panel_page", project_id=project_id)


def _back_to_panel(project_id: str | None):
    return redirect(_panel_target(project_id), 303)


def panel_context(project_id: str | None) -> dict | None:
    """What the panel shows, or None when the user may not see the scope's backups."""
    face = _face()
    if not face.can("view", project_id):
        return None
    job = face.runner.running()
    backups = face.list(project_id)
    listed = listing.page_of(backups, request.args)
    return {
        "project_id": project_id, "backups": listed["rows"], "listing": listed, "panel_link": _panel_link,
        "mode": face.mode, "production": face.production,
        "may_change": face.can("backup", project_id), "notice": face.notice(),
        "job": job if job and job.project == project_id else None, "csrf_token": csrf.token(),
        "ops": operations.panel_operations(face.service(), project_id),
        "chart": chart.backups_chart(backups),
    }


def scope_name(project_id: str | None = None) -> str:
    """``{{ strongroom_scope_name(project_id) }}``: the scope as people know it (a project
    by its title: ``scopes.scope_name``)."""
    return _face().service().scope_name(project_id)


def _panel_link(**changes) -> str:
    """This page again, with the panel's query parameters changed (paging, the filter)."""
    arguments = listing.link_arguments(request.args.to_dict(), **changes)
    return url_for(request.endpoint, **(request.view_args or {}), **arguments)


def render_panel(project_id: str | None = None) -> Markup:
    """``{{ strongroom_panel(project_id) }}`` in a host template: the panel, or nothing."""
    context = panel_context(project_id)
    return Markup(render_template("strongroom/panel.html", **context) if context else "")


# -- views ------------------------------------------------------------------------------


def panel_page(project_id):
    _face().authorize("view", project_id)
    return _page("strongroom/panel_page.html", project_id=project_id)


def details(project_id, backup_id):
    face = _face()
    backup = face.show(project_id, backup_id)
    listing = face.browse(project_id, backup_id, downloads.query_arg("path"))
    return _page("strongroom/details.html", project_id=project_id, backup=backup, listing=listing,
                 crumbs=downloads.crumbs(listing["path"]), may_restore=face.can("restore", project_id))


def download(project_id, backup_id):
    return downloads.send_file(_face(), project_id, backup_id)


def archive(project_id, backup_id):
    return downloads.send_folder(_face(), project_id, backup_id)


def changes(project_id, backup_id):
    face = _face()
    report = face.diff(project_id, backup_id, request.args.get("against"))
    others = [b["id"] for b in face.list(project_id) if b["id"] != backup_id]
    return _page("strongroom/changes.html", project_id=project_id, backup=face.show(project_id, backup_id),
                 diff=report, others=others)


def preview(project_id, backup_id):
    face = _face()
    report = face.preview(project_id, backup_id)
    backup = face.show(project_id, backup_id)
    return _page("strongroom/preview.html", project_id=project_id, backup=backup, preview=report)


def preview_part(project_id, backup_id):
    """What restoring the files or folders of the form (a row of the browse view, or the
    path typed on the details page) would change."""
    face = _face()
    report = face.preview_parts(project_id, backup_id, downloads.form_paths() or [""])
    backup = face.show(project_id, backup_id)
    return _page("strongroom/preview_part.html", project_id=project_id, backup=backup, preview=report)


def restore_part(project_id, backup_id):
    try:
        job = _face().start_parts(project_id, backup_id, downloads.form_paths())
    except Busy as exc:
        flash(messages.refused("restore", str(exc)), "error")
        return _back_to_panel(project_id)
    return redirect(url_for(f"{NAME}.job_page", job_id=job.id), 303)


def confirm_delete(project_id, backup_id):
    face = _face()
    face.authorize("delete", project_id)
    return _page("strongroom/confirm_delete.html", project_id=project_id, backup=face.show(project_id, backup_id))


def make(project_id):
    return _start("backup", project_id, note=request.form.get("note", ""))


def restore(project_id, backup_id):
    return _start("restore", project_id, backup_id)


def delete(project_id, backup_id):
    return _start("delete", project_id, backup_id)


def check(project_id, backup_id):
    return _start("check", project_id, backup_id)


def _start(kind: str, project_id, backup_id=None, note=""):
    try:
        job = _face().start(kind, project_id, backup_id, note)
    except Busy as exc:
        flash(messages.refused(kind, str(exc)), "error")
        return _back_to_panel(project_id)
    return redirect(url_for(f"{NAME}.job_page", job_id=job.id), 303)


def job_page(job_id):
    # One moment of the job for the whole page: the job's thread may end while the page is
    # made, and a page drawn as finished must also carry the outcome's flash.
    face = _face()
    try:
        job = face.job(job_id).still()
    except NotAllowed:
        journal = face.service().maintenance()
        if journal is None or journal.get("scope") != "site":
            raise
        # Another session's job during a site restore: the users are being reloaded, so
        # nobody can be asked who they are; the notice, as on every other page.
        return maintenance.answer(journal, face.layout, running=face.service().busy() is not None)
    if job.state == "done":
        found_damage = job.kind == "check" and not (job.result or {}).get("ok")
        flash(job.message, "error" if found_damage else "success")
    elif job.state == "failed":
        flash(messages.failed(job.kind, job.error), "error")
    return _page("strongroom/job.html", job=job, project_id=job.project)

