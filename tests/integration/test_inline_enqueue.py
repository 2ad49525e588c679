"""WEBHOOK_ENQUEUE=inline: the web process publishes each event itself after the commit; no relay
process runs. (Its own module: one deployment at a time shares the suite's Redis.)"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent
from sandbox.demo import DEMO_PAYROLL
from tests.harness import deployment_on

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def inline_dep(tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp("inline-sqlite")
    with deployment_on("sqlite", folder, redis_server.url, postgres_admin_url,
                       overrides={"webhook_enqueue": "inline"}) as d:
        yield d


def test_inline_mode_posts_the_example_once_without_a_relay(inline_dep):
    dep = inline_dep
    assert "relay" not in [name for name, _ in dep.services.procs]
    event = dep.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process").json()["event"]
    job = dep.wait_for_job(DEMO_PAYROLL)
    assert job["status"] == "done", job["last_error"]
    assert len([v for v in dep.vouchers() if v["remote_id"] == f"gusto-payroll-{DEMO_PAYROLL}"]) == 1
    with session_scope(dep.settings.database_url) as s:
        row = s.scalar(select(InboundEvent).where(InboundEvent.event_uuid == event["uuid"]))
        assert row.status == "processed" and row.enqueued_at is not None
