"""A host app shaped like Pure3D, with Strongroom mounted as a Pure3D maintainer would.

Like Pure3D (``src/control/webdavapp.py``, ``app.py``, ``users.py``), and written anew:

- the exported app is a bare Flask app whose ``wsgi_app`` is a dispatcher: ``/webdav/…``
  goes to a WebDAV sub-app once the routed app has said yes (``/auth/webdav/…``), all else
  to the routed app, which is made inside a factory and never exported;
- the routed app has a ``before_request`` that reads the database (who is signed in: the
  ``user`` record named in the session) and a catch-all route that redirects (303);
- users sign in with ``GET /alogin?user=NAME`` (the test users' way) and out with
  ``/alogout``; the session is a signed cookie that is neither rotated at sign-in nor
  revoked at sign-out;
- its layout has the blocks ``head``, ``contentleft`` and ``contentright`` (``pure3d_templates``).

``create_app(data_dir, mode, db_uri)`` is the factory (arguments default to
``$PURE3D_HOST_DATA_DIR``, ``$PURE3D_HOST_MODE``, ``$PURE3D_HOST_DB_URI``); with the data
dir set in the environment the module has ``app`` too, for ``gunicorn pure3d_host:app``.
The mount is the recipe of ``docs/web.md``; the pieces a test looks at are in
``app.extensions["pure3d_host"]`` (the routed app, the mount, the count of identify calls).
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, g, redirect, render_template, request, session

from strongroom.config import Config
from strongroom.policy import User
from strongroom.web import mount, service_factory_for

ENV_DATA_DIR = "PURE3D_HOST_DATA_DIR"
ENV_MODE = "PURE3D_HOST_MODE"
ENV_DB_URI = "PURE3D_HOST_DB_URI"
SECRET_KEY = "pure3d-host-secret"  # Pure3D's comes from its settings
TEMPLATES = Path(__file__).with_name("pure3d_templates")
PURE3D_BLOCKS = {"head": "head", "assets": "head", "content": "contentright"}
WEBDAV = "/webdav/"


def create_app(data_dir: str | Path | None = None, mode: str | None = None, db_uri: str | None = None) -> Flask:
    """The exported app: bare, its ``wsgi_app`` the dispatcher, Strongroom mounted in front."""
    config = Config(data_dir=Path(data_dir or os.environ[ENV_DATA_DIR]), mode=mode or os.environ.get(ENV_MODE, "pilot"),
                    db_uri=db_uri or os.environ.get(ENV_DB_URI) or None)
    services = service_factory_for(config)
    routed = make_routed_app(services().database)
    exported = Flask(__name__)
    dispatcher = dispatch_webdav(routed, WEBDAV, webdav_app)
    mounted = mount(dispatcher, "/backups", services, lambda request: user_of(routed, request),
                    secret_key=SECRET_KEY, layout="layout.html", layout_blocks=PURE3D_BLOCKS, templates=routed,
                    layout_context=lambda: {"loginWidget": '<span id="host-login">host login</span>'})
    exported.wsgi_app = mounted
    exported.extensions["pure3d_host"] = {"routed": routed, "mounted": mounted, "config": config,
                                          "identified": routed.config["identified"]}
    return exported


def user_of(routed: Flask, request) -> User | None:
    """Who is signed in to the host, read from the host's own session with the host's app."""
    name = routed.session_interface.open_session(routed, request).get("user")
    return _user(routed.config["database"], name) if isinstance(name, str) else None


def _user(database, name: str) -> User | None:
    record = database["user"].find_one({"user": name})
    if record is None:
        return None
    organised = database["projectUser"].find({"user": name, "role": "organiser"})
    return User(name, record.get("role", "user"), frozenset(str(link["projectId"]) for link in organised))


def make_routed_app(database) -> Flask:
    """The app with the routes, made inside the factory as Pure3D's ``appFactory`` does."""
    app = Flask(__name__ + ".routed", template_folder=str(TEMPLATES), static_folder=None)
    app.secret_key = SECRET_KEY
    app.config.update(database=database, identified=[0])

    @app.before_request
    def identify():
        app.config["identified"][0] += 1
        name = session.get("user")
        g.user = _user(database, name) if isinstance(name, str) else None

    def page(text: str):
        return render_template("page.html", text=text, loginWidget=f"signed in as {g.user.name}" if g.user else "")

    @app.route("/")
    def home():
        return page("host home")

    @app.route("/alogin")
    def login():
        session["user"] = request.args.get("user", "")  # no new session: as Pure3D's test users
        return redirect("/", 302)

    @app.route("/alogout")
    def logout():
        session.pop("user", None)  # the cookie copied before stays as good as it was
        return redirect("/", 302)

    @app.route("/project/<project>")
    def project(project):
        record = database["project"].find_one({"_id": _object_id(project)})
        return page(f"project {record['title']}" if record else "no such project")

    @app.route("/save/title/<project>", methods=["POST"])
    def save_title(project):
        if g.user is None:
            return "sign in first", 403
        database["project"].update_one({"_id": _object_id(project)}, {"$set": {"title": request.form["title"]}})
        return "saved"

    @app.route("/static/<path:path>")
    def static_file(path):
        return "/* host css */", 200, {"Content-Type": "text/css"}

    @app.route("/auth/webdav/<path:path>", methods=["GET", "PUT", "PROPFIND"])
    def auth_webdav(path):
        return g.user is not None

    @app.route("/cannot/webdav/<path:path>", methods=["GET", "PUT", "PROPFIND"])
    def no_webdav(path):
        return redirect("/", 303)

    @app.route("/<path:path>", methods=["GET", "POST", "PUT", "DELETE"])
    def remaining(path):
        return redirect("/", 303)  # Pure3D's catch-all: anything unrouted goes home

    return app


def _object_id(text: str):
    from bson import ObjectId
    from bson.errors import InvalidId

    try:
        return ObjectId(text)
    except InvalidId:
        return None


def webdav_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"webdav {environ['REQUEST_METHOD']} {environ['PATH_INFO']}".encode()]


def dispatch_webdav(app: Flask, prefix: str, webdav):
    """Pure3D's dispatcher, in its manner: ask the routed app at ``/auth<path>`` first."""

    def dispatcher(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if not path.startswith(prefix):
            return app.wsgi_app(environ, start_response)
        environ["PATH_INFO"] = f"/auth{path}"
        with app.request_context(environ):
            app.preprocess_request()
            authorized = app.dispatch_request()
        environ["PATH_INFO"] = path if authorized else f"/cannot{path}"
        return webdav(environ, start_response) if authorized else app.wsgi_app(environ, start_response)

    return dispatcher


app = create_app() if os.environ.get(ENV_DATA_DIR) else None
