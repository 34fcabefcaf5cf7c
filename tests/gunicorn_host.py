"""The host app the gunicorn tests serve: ``gunicorn --pythonpath tests gunicorn_host:app``.

A bare Flask app with the blueprint mounted (``web_support.host_app``), configured from
the environment as a deployment would be; each answer names the worker process that gave
it (``X-Worker``), so a test can see that several workers answered.
"""

import os

from flask import Flask

from strongroom.config import Config
from web_support import host_app

app: Flask = host_app(Config.from_env())
app.after_request(lambda response: response.headers.update({"X-Worker": str(os.getpid())}) or response)
