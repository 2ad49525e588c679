"""Shared fixtures: a real Redis server for the session, PostgreSQL when the run provides it.

PostgreSQL is not optional: ``./run test`` makes sure one answers and exports
``TEST_POSTGRES_URL``; a run without it fails loudly rather than skipping.
"""
from __future__ import annotations

import importlib
import os
import pkgutil

import pytest

from tests.harness import RedisServer


def _register_test_systems() -> None:
    """Register every system declared in the test tree (``tests/systems/<system>/``)."""
    import tests.systems
    from connector_tasks.connectors import registry

    for info in pkgutil.iter_modules(tests.systems.__path__):
        registry.register(importlib.import_module(f"tests.systems.{info.name}").SYSTEM, replace=True)


_register_test_systems()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    url = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
    try:
        import psycopg

        psycopg.connect(url, connect_timeout=3).close()
    except Exception as exc:  # a loud failure, never a skip
        pytest.fail(f"PostgreSQL is required at {url} (./run test starts or installs it): {exc}")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path, postgres_admin_url):
    """A fresh, migrated store on SQLite and on PostgreSQL."""
    from connector_tasks.store.db import upgrade
    from tests.harness import fresh_postgres_database

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'store.db'}"
        upgrade(url)
        yield url
    else:
        url, drop = fresh_postgres_database(postgres_admin_url)
        upgrade(url)
        yield url
        drop()
