"""WEBHOOK_ENQUEUE=relay (the default): the web process only commits; the outbox relay publishes in
batches. (``inline``: test_inline_enqueue.py.)"""
from __future__ import annotations

import time

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
    from connector_tasks.pipeline.relay import relay_once
    from connector_tasks.store import repo

    dep.services.kill("relay")  # drive the relay by hand, and read what it published before a worker does
    dep.services.kill("worker-main")
    for i in range(7):
        repo.ingest_event(dep.settings.database_url, system="gusto", connection_id=None, payload={},
                          event_uuid=f"relay-{i}", event_type="employee.updated", entity_type="Employee",
                          entity_id=f"e{i}")
    broker = redis_lib.Redis.from_url(redis_server.url)
    before = broker.llen("default")
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
    messages = [_task_message(m) for m in broker.lrange("default", 0, broker.llen("default") - before - 1)]
    assert [task for task, _ in messages] == ["connector.route_events"] * 2  # one message per batch
    with session_scope(dep.settings.database_url) as s:
        ids = set(s.scalars(select(InboundEvent.id).where(InboundEvent.event_uuid.like("relay-%"))))
    assert sorted(len(args[0]) for _, args in messages) == [2, 5]
    assert {i for _, args in messages for i in args[0]} == ids  # each event in exactly one message
    dep.services.start_worker()
    dep.services.start_relay()


def test_two_relays_at_once_publish_each_event_exactly_once(dep, redis_server):
    """Two relays draining the same backlog together (two threads, each on its own connection;
    SQLite: the claim is one statement under the writer lock; PostgreSQL: the claim, the
    publish and the mark are one transaction, ``SKIP LOCKED``) publish every event once."""
    from concurrent.futures import ThreadPoolExecutor

    from connector_tasks.pipeline.relay import relay_once
    from connector_tasks.store import repo

    dep.services.kill("relay")
    dep.services.kill("worker-main")
    broker = redis_lib.Redis.from_url(redis_server.url)
    before = broker.llen("default")
    ids = {repo.ingest_event(dep.settings.database_url, system="gusto", connection_id=None, payload={},
                             event_uuid=f"two-relays-{i}", event_type="employee.updated",
                             entity_type="Employee", entity_id=f"e{i}")[0] for i in range(300)}

    def drain(_) -> int:
        n = 0
        while (got := relay_once(batch=20)):
            n += got
        return n

    with ThreadPoolExecutor(2) as pool:  # a relay's error is raised here
        counts = list(pool.map(drain, range(2)))
    published = [i for m in broker.lrange("default", 0, broker.llen("default") - before - 1)
                 for i in _task_message(m)[1][0]]
    assert sorted(published) == sorted(ids) and sum(counts) == 300
    with session_scope(dep.settings.database_url) as s:
        statuses = set(s.scalars(select(InboundEvent.status).where(InboundEvent.id.in_(ids))))
    assert statuses == {"enqueued"}
    dep.services.start_worker()
    dep.services.start_relay()


def _task_message(raw: bytes) -> tuple[str, list]:
    """(task name, args) of a Celery message as kombu's Redis transport stores it."""
    import base64
    import json

    message = json.loads(raw)
    body = base64.b64decode(message["body"]) if message["properties"]["body_encoding"] == "base64" else message["body"]
    return message["headers"]["task"], json.loads(body)[0]


def test_sweeper_enqueues_again_an_event_whose_message_was_lost(dep):
    """An event marked ``enqueued`` that no worker routed within the posting lease (its message
    was lost) is published again by the sweeper, and its lease starts over."""
    import datetime as dt

    from connector_tasks.jobs.sweeper import sweep
    from connector_tasks.store import repo

    url = dep.settings.database_url
    event_id, _ = repo.ingest_event(url, system="gusto", connection_id=None, payload={}, event_uuid="lost-1",
                                    event_type="company.updated", entity_type="Company", entity_id="c1",
                                    status="enqueued")
    old = dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=dep.settings.posting_lease + 60)
    with session_scope(url) as s:
        s.get(InboundEvent, event_id).enqueued_at = old
    assert sweep()["events"] >= 1
    with session_scope(url) as s:
        stamp = s.get(InboundEvent, event_id).enqueued_at
    assert (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.timezone.utc)) > old + dt.timedelta(seconds=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # a worker routed it: a company event starts no job
        with session_scope(url) as s:
            if s.get(InboundEvent, event_id).status == "ignored":
                return
        time.sleep(0.2)
    pytest.fail("the swept event was never routed")


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
