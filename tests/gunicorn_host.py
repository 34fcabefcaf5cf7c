"""The host app the gunicorn tests serve: ``gunicorn gunicorn_host:app`` (``tests`` on the path).

A bare Flask app with the blueprint and the maintenance hook mounted, configured from the
environment as a deployment would be. Who asks is the ``X-Test-User`` header (a stand-in
for the host's own sign-in, which reads no site record: a worker that starts while a site
restore reloads the users still knows them). Each answer names the worker process that
gave it (``X-Worker``), so a test can see that several workers answered.
"""

import os

from flask import Flask, request

from strongroom.config import Config
from strongroom.policy import User
from strongroom.web import make_blueprint, refuse_writes_during_restore, service_factory_for

USERS = {"admin": User("admin", "admin", frozenset())}

app = Flask("host")
app.secret_key = "test"
factory = service_factory_for(Config.from_env())
app.register_blueprint(make_blueprint(factory, lambda: USERS.get(request.headers.get("X-Test-User", ""))))
refuse_writes_during_restore(app, factory)
app.after_request(lambda response: response.headers.update({"X-Worker": str(os.getpid())}) or response)
