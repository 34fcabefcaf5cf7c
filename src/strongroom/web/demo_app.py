"""The demo app, on the original's data model: projects, their editions and files, an admin page.

It is the host app the blueprint is mounted in: it says who the user is
(``current_user``), where a scope's panel is (``panel_url``), and has one write of its
own (a project's title) that the maintenance flag refuses during a restore. Signing in
is a user picker outside ``prod``: it is for trying things out. In ``prod`` there is no
picker; a demo user signs in with their name and the password set in
``$STRONGROOM_DEMO_PASSWORD`` when the server starts (without it nobody can sign in there,
and ``/signin`` is not found). The admin page, with its list of users, is for admins and
root only. A sign-in starts a new session (a new CSRF token) with an id kept in the shared
control state (``repo.control``: under the data dir, or in a control collection on a server),
so every worker and every instance knows it; sign-out forgets it, so a copy of the old cookie
signs nobody in.
"""

from __future__ import annotations

import hmac
import os
import secrets
from collections.abc import Callable

from bson import ObjectId
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)

from strongroom import humanize
from strongroom.config import Config
from strongroom.demo import demo_users
from strongroom.errors import BadInput, NotAllowed, NotFound, StrongroomError
from strongroom.fs import mutations, privacy
from strongroom.ids import validate_project_id
from strongroom.policy import SITE_ROLES, User
from strongroom.scopes import Scope, scope_dir
from strongroom.web import csrf, maintenance
from strongroom.web.blueprint import error_page

LAYOUT = "demo/base.html"
SESSION_USER = "demo_user"
SESSION_ID = "demo_session"
MAX_TITLE = 200
ENV_DEMO_PASSWORD = "STRONGROOM_DEMO_PASSWORD"


def _state() -> dict:
    return current_app.extensions["strongroom_demo"]


def _database():
    return _state()["factory"]().database


def _control():
    return _state()["factory"]().control


def session_user_name() -> str | None:
    """Who signed in on this session, from the shared control state alone (not the site's
    users, which a site restore is replacing): the name, or None."""
    name = session.get(SESSION_USER)
    token = session.get(SESSION_ID)
    if not isinstance(name, str) or not isinstance(token, str) or _control().session_user(token) != name:
        return None  # never signed in, or signed out since: the cookie alone proves nothing
    return name


def current_user() -> User | None:
    """The signed-in demo user, as the blueprint wants it (cached for the request)."""
    if "demo_user" not in g:
        g.demo_user = None
        name = session_user_name()
        record = _database()["user"].find_one({"user": name}) if name is not None else None
        if record is not None:
            links = _database()["projectUser"].find({"user": name, "role": "organiser"})
            g.demo_user = User(name, record.get("role", "user"), frozenset(str(x["projectId"]) for x in links))
    return g.demo_user


SECRET_FILE = ".web-secret-key"  # in backups/: the demo app's session key, shared by its workers


def shared_secret(config: Config) -> str:
    """The demo app's session key when none is given: made once, at random, into
    ``backups/.web-secret-key`` (readable by the operator alone), so that every worker and
    every instance on the data dir signs and accepts the same cookies."""
    path = config.backups_base / SECRET_FILE
    privacy.ensure_folders(config)
    try:
        return path.read_text("ascii").strip()
    except FileNotFoundError:
        pass
    tmp = path.with_name(f"{SECRET_FILE}.{os.getpid()}.tmp")
    mutations.write_file(tmp, secrets.token_hex(32).encode(), sync=True)
    mutations.chmod(tmp, 0o600)
    try:
        mutations.link(tmp, path)  # the first to make it wins; the others read it
    except FileExistsError:
        pass
    finally:
        mutations.unlink(tmp)
    return path.read_text("ascii").strip()


def panel_url(project_id: str | None) -> str:
    return url_for("demo.admin") if project_id is None else url_for("demo.project", project_id=project_id)


def make_demo_blueprint(config: Config, factory: Callable) -> Blueprint:
    bp = Blueprint("demo", __name__, template_folder="templates")
    password = os.environ.get(ENV_DEMO_PASSWORD) or None
    bp.record_once(lambda state: state.app.extensions.update(
        strongroom_demo={"config": config, "factory": factory, "password": password}))
    bp.before_request(csrf.check_request)
    bp.before_request(refuse_reads_of_a_project_being_restored)
    bp.errorhandler(StrongroomError)(error_page)
    bp.app_context_processor(_layout_context)
    bp.add_url_rule("/", "home", home)
    bp.add_url_rule("/projects/<project_id>", "project", project)
    bp.add_url_rule("/projects/<project_id>/title", "edit_title", edit_title, methods=["POST"])
    bp.add_url_rule("/admin", "admin", admin)
    bp.add_url_rule("/signin", "signin", signin)
    bp.add_url_rule("/signin", "signin_as", signin_as, methods=["POST"])
    bp.add_url_rule("/signout", "signout", signout, methods=["POST"])
    return bp


def _layout_context() -> dict:
    if g.get("strongroom_maintenance_page"):
        # The users are not read (a site restore may be replacing them): the header names
        # who signed in on this session, as the shared control state knows it, without a role.
        user, name = None, session_user_name()
    else:
        user = current_user()
        name = user.name if user else None
    return {"demo_user": user, "demo_user_name": name, "demo_mode": _state()["config"].mode, "csrf_token": csrf.token(),
            "layout": LAYOUT, "demo_is_admin": user is not None and user.role in SITE_ROLES,
            "demo_can_sign_in": _signing_in() is not None}


LISTS_PROJECTS = ("demo.home", "demo.signin")


def refuse_reads_of_a_project_being_restored():
    """503 for the pages that show a project while its restore replaces its records.

    (During a site restore the maintenance hook refuses every page; during a project
    restore the users and the other projects are not touched, and those pages go on.)
    """
    journal = _state()["factory"]().maintenance()
    if journal is None or journal.get("scope") != "project" or request.method not in maintenance.SAFE_METHODS:
        return None
    if request.endpoint in LISTS_PROJECTS or (request.view_args or {}).get("project_id") == journal.get("project"):
        return maintenance.answer(journal, LAYOUT, running=_state()["factory"]().busy() is not None)
    return None


def home():
    database = _database()
    projects = sorted(database["project"].find({}), key=lambda p: p.get("title", ""))
    for p in projects:
        p["editions"] = database["edition"].count_documents({"projectId": p["_id"]})
    return render_template("demo/home.html", projects=projects)


def _project_record(project_id: str) -> dict:
    record = _database()["project"].find_one({"_id": ObjectId(validate_project_id(project_id))})
    if record is None:
        raise NotFound(f"no project {project_id}")
    return record


def _may_edit(user: User | None, project_id: str) -> bool:
    return user is not None and (user.role in SITE_ROLES or user.organiser_of(project_id))


def project(project_id):
    record = _project_record(project_id)
    editions = list(_database()["edition"].find({"projectId": record["_id"]}))
    folder = scope_dir(_state()["config"], Scope.project(project_id))
    for edition in editions:
        edition["files"] = _files(folder / "edition" / str(edition["_id"]))
    return render_template("demo/project.html", project=record, project_id=project_id, editions=editions,
                           files=_files(folder, depth=1), may_edit=_may_edit(current_user(), project_id))


def _files(folder, depth: int | None = None) -> list[tuple[str, int]]:
    """``(relative path, size)`` of the files below ``folder`` (only its own with ``depth=1``)."""
    found = []
    for root, dirs, names in os.walk(folder):
        if depth == 1:
            dirs.clear()
        for name in names:
            path = os.path.join(root, name)
            found.append((_shown(os.path.relpath(path, folder)), os.lstat(path).st_size))
    return sorted(found)


def _shown(name: str) -> str:
    """A file name as a page can show it: bytes that are not UTF-8 (kept by Python as lone
    surrogates, which no page can be encoded with) are written as ``\\xff``."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def edit_title(project_id):
    record = _project_record(project_id)
    if not _may_edit(current_user(), project_id):
        raise NotAllowed("only admins, root and the project's organisers may edit it")
    title = request.form.get("title", "").strip()
    if not title or len(title) > MAX_TITLE or humanize.has_refused_characters(title):
        raise BadInput(f"a title is one line of 1 to {MAX_TITLE} characters")
    _database()["project"].update_one({"_id": record["_id"]}, {"$set": {"title": title}})
    flash(f"Title changed to “{title}”", "success")
    return redirect(url_for("demo.project", project_id=project_id), 303)


def admin():
    user = current_user()
    if user is None:
        raise NotAllowed("sign in first")
    if user.role not in SITE_ROLES:
        raise NotAllowed("the admin page is for admins and root")
    return render_template("demo/admin.html", users=demo_users(_database()))


def _signing_in() -> str | None:
    """How one signs in here: ``picker`` (outside production modes), ``password`` (prod, with
    ``$STRONGROOM_DEMO_PASSWORD`` set) or None (prod without it: nobody)."""
    if not _state()["config"].production:
        return "picker"
    return "password" if _state()["password"] else None


def signin():
    way = _signing_in()
    if way is None:
        abort(404)  # prod with no password set: the host app's real sign-in would be used
    if way == "password":
        return render_template("demo/signin.html", users=[], titles={}, password=True)
    titles = {str(p["_id"]): p.get("title", "") for p in _database()["project"].find({}, {"title": 1})}
    return render_template("demo/signin.html", users=demo_users(_database()), titles=titles, password=False)


def signin_as():
    way = _signing_in()
    if way is None:
        abort(404)
    name = request.form.get("user", "")
    if way == "password" and not _password_matches(request.form.get("password", "")):
        raise NotAllowed("wrong user name or password")
    if name not in {u["user"] for u in demo_users(_database())}:
        raise NotAllowed("wrong user name or password") if way == "password" else BadInput("no such demo user")
    # A new session at sign-in: a new CSRF token, nothing carried over from before, and
    # an id the server knows, which sign-out forgets (the cookie is signed, not secret).
    session.clear()
    session_id = secrets.token_urlsafe(32)
    _control().add_session(session_id, name)
    session.update({SESSION_ID: session_id, SESSION_USER: name})
    flash(f"Signed in as {name}", "success")
    return redirect(url_for("demo.home"), 303)


def _password_matches(given: str) -> bool:
    expected = _state()["password"] or ""
    return bool(expected) and hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode("utf-8"))


def signout():
    if isinstance(session.get(SESSION_ID), str):
        _control().drop_session(session[SESSION_ID])  # a copy of the cookie is now worth nothing
    session.clear()
    flash("Signed out", "success")
    return redirect(url_for("demo.home"), 303)
