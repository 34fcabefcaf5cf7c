"""The web face: a Flask blueprint any Flask + MongoDB site can mount, and the demo app.

- ``make_blueprint(config_or_factory, current_user=...)``: the backups panel, its pages
  and the JSON API (``blueprint.py``, ``api.py``).
- ``refuse_writes_during_restore(app, service_factory)``: 503 for the host's writes
  while a restore runs, and for every request that needs the database while a site
  restore runs (``maintenance.py``).
- ``mount(host_wsgi_app, prefix, config_or_factory, current_user, secret_key=...)``: the
  panel and the API under ``prefix`` in front of any WSGI app, for hosts whose exported
  app is a dispatcher (``mounting.py``).
- ``create_app(config)``: the demo app on the demo site (``demo_app.py``), which
  ``strongroom serve`` runs.
"""

from __future__ import annotations

import os

from flask import Flask

from strongroom.config import Config
from strongroom.web.blueprint import make_blueprint, routing_error, service_factory_for
from strongroom.web.maintenance import refuse_writes_during_restore
from strongroom.web.mounting import mount

__all__ = ["create_app", "make_blueprint", "mount", "refuse_writes_during_restore", "service_factory_for"]

ENV_SECRET_KEY = "STRONGROOM_SECRET_KEY"


def create_app(config: Config, database=None, secret_key: str | None = None) -> Flask:
    """The demo app on ``config``'s data dir: projects, editions, an admin page, the panels.

    The session key comes from ``secret_key``, ``$STRONGROOM_SECRET_KEY`` or, failing
    both, a random key kept in the data dir for every worker (``demo_app.shared_secret``).
    """
    from strongroom.web import demo_app

    app = Flask(__name__, static_folder=None)
    app.secret_key = secret_key or os.environ.get(ENV_SECRET_KEY) or demo_app.shared_secret(config)
    app.config.update(SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax")
    app.url_map.merge_slashes = False  # "//etc" in an id place is a 404, not a redirect to "/etc"
    factory = service_factory_for(config, database)
    factory().recover_if_needed()
    for status in (404, 405):  # every page of the demo app, before the blueprint keeps the API's JSON
        app.register_error_handler(status, routing_error)
    app.register_blueprint(make_blueprint(factory, demo_app.current_user, panel_url=demo_app.panel_url,
                                          layout=demo_app.LAYOUT))
    app.register_blueprint(demo_app.make_demo_blueprint(config, factory))
    refuse_writes_during_restore(app, factory, layout=demo_app.LAYOUT)
    return app
