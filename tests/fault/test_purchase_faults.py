"""TallyPrime → ServiceTitan under crashes, with real processes: a cloud worker SIGKILLed after
ServiceTitan created the purchase order but before the worker learnt it, a lost answer to a
receipt, and the Tally agent SIGKILLed in the middle of a poll — each ends with exactly one
purchase order and one active receipt.

Short clocks as in ``test_faults.py``: 15 s visibility timeout (hard task limit 12 s), 0.5 s
first retry countdown.
"""
from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import select

from connector_tasks.store.db import session_scope
from connector_tasks.store.models import SyncAttempt, SyncJob
from sandbox.servicetitan.kit import ServiceTitanKit
from tests.harness import TALLY_CONN, TallyKit, wait_until

pytestmark = pytest.mark.integration

OVERRIDES = {"visibility_timeout": 15, "task_time_limit": 12, "retry_base": 0.5}
ENV = {"TALLY_TIMEOUT": "3"}
PARTY = "Ferguson Enterprises"
PIPE = {"item": "Copper pipe 3/4in", "part_number": "CU-PIPE-075", "quantity": "5", "rate": "38.50"}


@pytest.fixture(scope="module")
def dep(tmp_path_factory, redis_server):
    from connector_tasks.connections import get_connection, write_settings
    from tests.harness import start_deployment

    st = ServiceTitanKit()
    st.start()
    folder = tmp_path_factory.mktemp("purchase-faults")
    d = start_deployment(folder, redis_server.url, f"sqlite:///{folder / 'store.db'}", overrides=OVERRIDES, env=ENV)
    try:
        with session_scope(d.settings.database_url) as s:
            st.add_connection(s)
            write_settings(s, get_connection(s, TALLY_CONN), {"targets": [st.connection]})
        d.st = st
        d.tally = TallyKit(url=d.tally_url)
        yield d
    finally:
        d.stop()
        st.stop()



def job_of(dep, guid: str) -> SyncJob | None:
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == guid))
        if job is not None:
            s.expunge(job)
        return job


def pos_with(dep, key: str) -> list[dict]:
    t = dep.st.tenant()
    return [dict(po, receipts=[r for r in t["receipts"] if r["purchaseOrderId"] == po["id"]])
            for po in t["purchase_orders"] if f"[mlc:{key}]" in (po.get("summary") or "")]


def assert_synced_once(dep, guid: str, timeout: float = 120) -> SyncJob:
    job = wait_until(lambda: (j := job_of(dep, guid)) and j.status in ("done", "failed") and j, timeout,
                     f"the job of {guid} to end")
    assert job.status == "done", job.last_error
    [po] = pos_with(dep, job.idempotency_key)
    assert str(po["id"]) == job.target_ref and po["status"] == "Received"
    assert len([r for r in po["receipts"] if r["active"]]) == 1
    return job


def post_details(dep, job: SyncJob) -> list[dict]:
    with session_scope(dep.settings.database_url) as s:
        return [a.detail or {} for a in s.scalars(select(SyncAttempt).where(SyncAttempt.job_id == job.id,
                                                                            SyncAttempt.phase == "post"))]


def test_worker_killed_after_servicetitan_created_the_po_does_not_create_a_second(dep):
    # ServiceTitan creates the PO, then its answer is 30 s late: the worker is killed meanwhile
    dep.st.admin("faults", {"when": "after", "delay": 30, "method": "POST", "path": "purchase-orders"})
    guid = dep.tally.fire_purchase(PARTY, [PIPE], reference="CRASH-1")
    dep.tally.poll(wait=60)
    key = wait_until(lambda: (j := job_of(dep, guid)) and j.idempotency_key, 30, "the job")
    wait_until(lambda: pos_with(dep, key), 60, "ServiceTitan to hold the PO")
    dep.services.kill("worker-main")
    dep.st.admin("faults", method="DELETE")
    dep.services.start_worker()
    job = assert_synced_once(dep, guid)
    assert any(d.get("actions", [None])[0] == "found" for d in post_details(dep, job))  # found by its marker


def test_lost_answer_to_the_receipt_is_not_received_twice(dep):
    dep.st.admin("faults", {"when": "after", "status": 503, "method": "POST", "path": "receipts"})
    guid = dep.tally.fire_purchase(PARTY, [PIPE], reference="LOST-1")
    dep.tally.poll(wait=60)
    job = assert_synced_once(dep, guid)
    [po] = pos_with(dep, job.idempotency_key)
    assert len(po["receipts"]) == 1  # the retry found everything received: no second receipt


def test_agent_killed_mid_poll_then_polled_again_syncs_once(dep):
    from connector_tasks.connectors.tallyprime.polling import POLL_STATE_KEY, request_poll
    from connector_tasks.store import repo
    from connector_tasks.store.models import Connection

    def watermark():
        with session_scope(dep.settings.database_url) as s:
            conn = s.scalar(select(Connection).where(Connection.name == TALLY_CONN))
            return (repo.get_state(s, conn.id, POLL_STATE_KEY) or {}).get("voucher_alter_id")

    guid = dep.tally.fire_purchase(PARTY, [PIPE], reference="AGENT-1")
    before = watermark()
    requests.post(f"{dep.tally_url}/_sandbox/faults", json={"hang_seconds": 20, "count": 1},
                  timeout=10).raise_for_status()
    request_poll(TALLY_CONN)
    time.sleep(2)  # the agent is inside the poll, waiting for Tally
    dep.services.kill("tally-worker")
    assert watermark() == before and job_of(dep, guid) is None  # nothing recorded, nothing moved
    requests.post(f"{dep.tally_url}/_sandbox/faults", json={"hang_seconds": 0}, timeout=10)
    dep.restart_agent()
    # the killed poll's message may come back after the visibility timeout: its answer is
    # refused (a newer request superseded it), so the voucher is still synced once
    deadline = time.monotonic() + 60
    while True:
        try:
            dep.tally.poll(wait=30)
            break
        except Exception:  # noqa: BLE001 - the restarted agent may first serve the old message
            assert time.monotonic() < deadline
    assert_synced_once(dep, guid)
    assert watermark() > (before or 0)
