"""WEBHOOK_ENQUEUE=relay (the default): the web process only commits; the outbox relay publishes in
batches. (``inline``: test_inline_enqueue.py.)"""
from __future__ import annotations

import pytest
import redis as redis_lib
from sqlalchemy import select

from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent
from tests.harness import deployment_on, post_example_once

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dep(request, tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp(f"relay-{request.param}")
    with deployment_on(request.param, folder, redis_server.url, postgres_admin_url,
                       overrides={"webhook_enqueue": "relay"}) as d:
        yield d


def test_relay_mode_posts_the_example_once(dep):
    row = post_example_once(dep)
    assert row.status == "processed" and row.enqueued_at is not None


def test_relay_claims_each_event_once_and_puts_a_batch_back_when_the_broker_fails(dep, redis_server):
    from connector_tasks.relay import relay_once
    from connector_tasks.store import repo

    dep.services.kill("relay")  # drive the relay by hand
    for i in range(7):
        repo.ingest_event(dep.settings.database_url, system="gusto", connection_id=None, payload={},
                          event_uuid=f"relay-{i}", event_type="employee.updated", entity_type="Employee",
                          entity_id=f"e{i}")
    broker = redis_lib.Redis.from_url(redis_server.url)
    before = broker.llen("gusto")
    redis_server.stop()
    try:
        with pytest.raises(Exception):
            relay_once(batch=5)
    finally:
        redis_server.start()
    with session_scope(dep.settings.database_url) as s:
        statuses = [e.status for e in s.scalars(select(InboundEvent).where(InboundEvent.event_uuid.like("relay-%")))]
    assert statuses.count("received") == 7  # nothing lost, nothing left half-claimed
    assert relay_once(batch=5) == 5 and relay_once(batch=5) == 2 and relay_once(batch=5) == 0
    assert broker.llen("gusto") - before == 7
    dep.services.start_relay()


def test_hot_path_stores_the_body_verbatim_once_and_counts_duplicates(dep):
    import datetime as dt
    import json

    from connector_tasks.store import repo

    url = dep.settings.database_url
    body = '{"uuid": "hot-1", "event_type": "employee.updated", "amount": "12.30", "name": "Zoë"}'
    kw = dict(system="gusto", connection_id=None, payload=json.loads(body), payload_json=body, event_uuid="hot-1",
              event_type="employee.updated", entity_type="Employee", entity_id="e1", status="ignored")
    first, again = repo.ingest_event(url, **kw), repo.ingest_event(url, **kw)
    assert first[1] is True and again == (first[0], False)
    with session_scope(url) as s:
        row = s.get(InboundEvent, first[0])
        assert row.deliveries == 2 and row.payload == json.loads(body) and row.status == "ignored"
        received = row.received_at if row.received_at.tzinfo else row.received_at.replace(tzinfo=dt.timezone.utc)
        assert abs(dt.datetime.now(dt.timezone.utc) - received) < dt.timedelta(minutes=1)
        older = s.scalar(select(InboundEvent.id).where(  # compares like the sweeper's query
            InboundEvent.id == first[0], InboundEvent.received_at < dt.datetime.now(dt.timezone.utc)))
        assert older == first[0]


@pytest.fixture
def pg_store(postgres_admin_url):
    """A fresh, migrated PostgreSQL store (this behaviour exists only on PostgreSQL)."""
    from connector_tasks.store.db import upgrade
    from tests.harness import fresh_postgres_database

    url, drop = fresh_postgres_database(postgres_admin_url)
    upgrade(url)
    yield url
    drop()


def test_hot_connection_survives_a_postgresql_backend_restart(pg_store):
    import psycopg

    from connector_tasks.store import repo
    from connector_tasks.store.db import hot_connection

    url = pg_store
    kw = dict(system="gusto", connection_id=None, payload={}, event_type="employee.updated", entity_type=None,
              entity_id=None, status="ignored")
    repo.ingest_event(url, event_uuid="hot-pg-1", **kw)
    backend = hot_connection(url).raw.info.backend_pid
    admin = hot_connection(url).raw.info.dsn
    with psycopg.connect(admin, autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(%s)", (backend,))
    event_id, created = repo.ingest_event(url, event_uuid="hot-pg-2", **kw)  # retried on a fresh connection
    assert created and hot_connection(url).raw.info.backend_pid != backend
    with session_scope(url) as s:
        assert s.get(InboundEvent, event_id).event_uuid == "hot-pg-2"
