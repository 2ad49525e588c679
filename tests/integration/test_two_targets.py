"""One Gusto company connected to two targets at once (TallyPrime through its agent, Acumatica
through the cloud workers): each payroll is one job per target and lands once in each book,
however often its webhook is delivered. Real processes, both emulators, SQLite and PostgreSQL."""
from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, ExternalRef, SyncJob
from sandbox.acumatica.kit import AcumaticaKit
from tests.harness import DEMO_PAYROLL, TALLY_CONN, deployment_with

pytestmark = pytest.mark.integration

KEY = f"gusto-payroll-{DEMO_PAYROLL}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def two(request, tmp_path_factory, redis_server, postgres_admin_url):
    acu = AcumaticaKit()
    with deployment_with(request.param, tmp_path_factory.mktemp(f"two-{request.param}"), redis_server.url,
                         postgres_admin_url, [acu], targets=[TALLY_CONN, acu.connection]) as dep:
        yield dep, acu


def _jobs(dep) -> list[tuple[str, str, str | None]]:
    with session_scope(dep.settings.database_url) as s:
        rows = s.execute(select(Connection.name, SyncJob.status, SyncJob.target_ref)
                         .join(Connection, Connection.id == SyncJob.target_id)
                         .where(SyncJob.source_id == DEMO_PAYROLL, SyncJob.flow == "payroll_to_journal")).all()
    return sorted(tuple(r) for r in rows)


def test_each_payroll_posts_once_to_each_target_with_one_job_each(two):
    dep, acu = two
    assert dep.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process").status_code == 200
    for target in (TALLY_CONN, acu.connection):
        job = dep.wait_for_job(DEMO_PAYROLL, target=target, flow="payroll_to_journal")
        assert job["status"] == "done", (target, job["last_error"])
    jobs = _jobs(dep)
    assert [(name, status) for name, status, _ in jobs] == [("demo-acumatica", "done"), (TALLY_CONN, "done")]
    [voucher] = [v for v in dep.vouchers() if v["remote_id"] == KEY]
    [batch] = [b for b in acu.state()["journal_transactions"] if f"[{KEY}]" in b["Description"]]
    assert dict((n, ref) for n, _, ref in jobs) == {TALLY_CONN: str(voucher["master_id"]),
                                                   "demo-acumatica": batch["BatchNbr"]}
    with session_scope(dep.settings.database_url) as s:
        refs = s.execute(select(ExternalRef.target_system, ExternalRef.target_id)
                         .where(ExternalRef.source_id == DEMO_PAYROLL)).all()
    assert sorted(refs) == sorted([("acumatica", batch["BatchNbr"]), ("tallyprime", str(voucher["master_id"]))])


def test_a_redelivered_webhook_posts_nothing_new_in_either_book(two):
    dep, acu = two
    writes = acu.state()["counters"]["journal_writes"]
    events = requests.get(f"{dep.gusto_url}/_sandbox/deliveries", timeout=10).json()
    event_uuid = next(d["event_uuid"] for d in events if d.get("kind") == "event")
    assert dep.gusto("POST", f"/_sandbox/deliveries/redeliver/{event_uuid}",
                     params={"times": 3, "concurrent": 1}).status_code == 200
    time.sleep(2)
    assert len([v for v in dep.vouchers() if v["remote_id"] == KEY]) == 1
    assert acu.state()["counters"]["journal_writes"] == writes
    assert len(_jobs(dep)) == 2
