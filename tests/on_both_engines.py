"""Fixtures that put a test module on both engines: imported into it, its ``config`` and
``database`` (and so ``service``, ``site`` and the rest built on them) are conftest's
``engine_config`` and ``engine_database``, parametrized embedded and FerretDB.

    from on_both_engines import config, database  # noqa: F401 - fixtures
"""

import pytest

# A test of one engine's own behaviour runs on that engine alone (not skipped on the other).
SERVER_ONLY = pytest.mark.parametrize("engine_config", ["ferretdb"], indirect=True)
EMBEDDED_ONLY = pytest.mark.parametrize("engine_config", ["embedded"], indirect=True)


@pytest.fixture
def config(engine_config):
    return engine_config


@pytest.fixture
def database(engine_database):
    return engine_database
