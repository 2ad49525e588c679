"""WEBHOOK_ENQUEUE=relay: the web process only commits; the outbox relay publishes in batches."""
from __future__ import annotations

import pytest
import redis as redis_lib
from sqlalchemy import select

from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent
from sandbox.demo import DEMO_PAYROLL
from tests.harness import deployment_on

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dep(request, tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp(f"relay-{request.param}")
    with deployment_on(request.param, folder, redis_server.url, postgres_admin_url,
                       overrides={"webhook_enqueue": "relay"}) as d:
        yield d


def test_relay_mode_posts_the_example_once(dep):
    event = dep.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process").json()["event"]
    job = dep.wait_for_job(DEMO_PAYROLL)
    assert job["status"] == "done", job["last_error"]
    assert len([v for v in dep.vouchers() if v["remote_id"] == f"gusto-payroll-{DEMO_PAYROLL}"]) == 1
    with session_scope(dep.settings.database_url) as s:
        row = s.scalar(select(InboundEvent).where(InboundEvent.event_uuid == event["uuid"]))
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
