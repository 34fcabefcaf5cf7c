"""The demo app for a WSGI server: ``gunicorn -w 4 --threads 2 strongroom.web.wsgi:app``.

Configured from the environment (``Config.from_env``: ``STRONGROOM_DATA_DIR``,
``STRONGROOM_MODE``, ``STRONGROOM_DB``, the lease's ``STRONGROOM_LEASE_EXPIRY`` and
``STRONGROOM_LEASE_HEARTBEAT``); every worker builds its own app on the same shared state
(``docs/deployment.md``).
"""

from __future__ import annotations

from strongroom.config import Config
from strongroom.web import create_app

app = create_app(Config.from_env())
