"""Security tests: each attack of issue 12 on the web tier, the webhooks and Tally's replies,
run against real processes (redis-server from tests/harness.py, gunicorn as the Procfile runs
it, the Celery worker, the Tally agent, the emulators, hostile HTTP servers). Each test fails
for the attacker: the attack is made and its outcome asserted."""
from __future__ import annotations

import pytest

from tests.harness import deployment_on


@pytest.fixture(scope="package")
def deployment(tmp_path_factory, redis_server, postgres_admin_url):
    """One whole deployment (SQLite store) shared by the security tests: gunicorn with the
    Procfile's settings (config/gunicorn.py), worker, relay, Tally agent, emulators; the Gusto
    connection is OAuth-connected and its webhook verified through the real handshake."""
    folder = tmp_path_factory.mktemp("security")
    with deployment_on("sqlite", folder, redis_server.url, postgres_admin_url) as d:
        yield d
