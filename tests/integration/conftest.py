"""Integration fixtures: one whole deployment per test module, on SQLite and on PostgreSQL.
A module that needs another shape (one store only, an extra emulator) defines its own."""
from __future__ import annotations

import pytest

from tests.harness import deployment_on


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(request, tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp(f"{request.module.__name__.rsplit('.', 1)[-1]}-{request.param}")
    with deployment_on(request.param, folder, redis_server.url, postgres_admin_url) as d:
        yield d
