"""The main job end to end: Gusto emulator → webhook → web → Celery workers → tally_worker →
TallyPrime emulator, with real Redis, real worker processes and HTTP everywhere, on SQLite
and on PostgreSQL."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
import redis as redis_lib
import requests
from sqlalchemy import delete, func, select

from connector_tasks.core.signatures import hmac_sha256_hex
from tests.harness import DEMO_PAYROLL, GUSTO_CONN
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, ExternalRef, InboundEvent, Mapping, SyncAttempt, SyncJob
from connector_tasks.tenants import ALL_TENANTS

pytestmark = pytest.mark.integration


def _amounts(voucher: dict) -> list[Decimal]:
    return [Decimal(line.rsplit(": ", 1)[1]) for line in voucher["lines"]]


def _count(dep, model, *where) -> int:
    with session_scope(dep.settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(model).where(*where))


def test_oauth_stored_encrypted_tokens_and_verified_the_subscription(deployment):
    with session_scope(deployment.settings.database_url) as s:
        conn = s.scalar(select(Connection).where(Connection.name == GUSTO_CONN))
        assert conn.status == "connected"
        assert conn.account == "6bf7807c-a5a0-4f4d-b2e7-3fbb4b2299fb"
        assert repo.get_state(s, conn.id, "webhook_status") == "verified"
        assert "access_token" not in conn.credentials and conn.credentials.startswith("gAAAA")
    subs = deployment.gusto("GET", "/_sandbox/state").json()["subscriptions"]
    assert [s["status"] for s in subs] == ["verified"]


def test_published_example_posts_exactly_one_balanced_voucher(deployment):
    r = deployment.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process")
    assert r.status_code == 200
    job = deployment.wait_for_job(DEMO_PAYROLL)
    assert job["status"] == "done", job["last_error"]
    vouchers = [v for v in deployment.vouchers() if v["remote_id"] == f"gusto-payroll-{DEMO_PAYROLL}"]
    assert len(vouchers) == 1
    v = vouchers[0]
    amounts = _amounts(v)
    assert sum(amounts) == 0  # Tally's sign convention: debits negative, credits positive
    assert -sum(a for a in amounts if a < 0) == Decimal("137553.08")
    lines = dict(line.rsplit(": ", 1) for line in v["lines"])
    # gross wages split by earning type: the example pays each of 3 employees a 100.00 Bonus
    assert Decimal(lines["Salaries & Wages"]) == Decimal("-130335.89")
    assert Decimal(lines["Wages - Bonus"]) == Decimal("-300.00")
    assert Decimal(lines["Salaries Payable"]) == Decimal("81752.94")
    assert Decimal(lines["Payroll Taxes Payable"]) == Decimal("42463.91")
    assert v["date"] == "20210222"
    assert any("Unallocated" in w for w in job["warnings"])
    assert job["target_ref"]
    assert _count(deployment, ExternalRef, ExternalRef.source_id == DEMO_PAYROLL) == 1
    outcomes = deployment_outcomes(deployment)
    assert ("prepare", "ok") in outcomes and ("post", "ok") in outcomes


def deployment_outcomes(dep) -> list[tuple[str, str]]:
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == DEMO_PAYROLL))
        return [(a.phase, a.outcome) for a in s.scalars(select(SyncAttempt).where(SyncAttempt.job_id == job.id))]


def test_same_webhook_delivered_five_times_still_gives_one_voucher(deployment):
    events = requests.get(f"{deployment.gusto_url}/_sandbox/deliveries", timeout=10).json()
    event_uuid = next(d["event_uuid"] for d in events if d.get("kind") == "event")
    attempts_before = deployment_outcomes(deployment)
    r = deployment.gusto("POST", f"/_sandbox/deliveries/redeliver/{event_uuid}", params={"times": 5, "concurrent": 1})
    assert r.status_code == 200 and r.json()["deliveries"] == 5
    with session_scope(deployment.settings.database_url) as s:
        rows = s.scalars(select(InboundEvent).where(InboundEvent.event_uuid == event_uuid)).all()
        assert len(rows) == 1 and rows[0].deliveries == 6
    assert len([v for v in deployment.vouchers() if v["remote_id"] == f"gusto-payroll-{DEMO_PAYROLL}"]) == 1
    assert deployment_outcomes(deployment) == attempts_before  # nothing ran again
    assert _count(deployment, SyncJob, SyncJob.flow == "payroll_to_journal") == 1


def _queue_lengths(dep) -> dict:
    r = redis_lib.Redis.from_url(dep.settings.redis_url)
    return {q: r.llen(q) for q in ("gusto", "default")}


def test_bad_signature_is_401_and_nothing_is_stored_or_enqueued(deployment):
    body = json.dumps({"uuid": "11111111-2222-3333-4444-555555555555", "event_type": "payroll.processed",
                       "resource_type": "Company", "resource_uuid": "6bf7807c-a5a0-4f4d-b2e7-3fbb4b2299fb",
                       "entity_type": "Payroll", "entity_uuid": DEMO_PAYROLL, "timestamp": 1}).encode()
    before = _count(deployment, InboundEvent)
    queues = _queue_lengths(deployment)
    url = f"{deployment.web_url}/webhooks/gusto/{GUSTO_CONN}"
    for headers in ({"X-Gusto-Signature": hmac_sha256_hex("not-the-token", body)}, {}):
        r = requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=10)
        assert r.status_code == 401
    assert _count(deployment, InboundEvent) == before
    assert _queue_lengths(deployment) == queues


def test_malformed_and_oversize_bodies_are_refused(deployment):
    with session_scope(deployment.settings.database_url) as s:
        from connector_tasks import runtime
        from connector_tasks.store import repo

        conn = s.scalar(select(Connection).where(Connection.name == GUSTO_CONN))
        token = repo.read_credentials(conn, runtime.vault())["webhook_verification_token"]
    url = f"{deployment.web_url}/webhooks/gusto/{GUSTO_CONN}"
    before = _count(deployment, InboundEvent)
    garbage = b'{"uuid": "x", '
    r = requests.post(url, data=garbage, headers={"X-Gusto-Signature": hmac_sha256_hex(token, garbage)}, timeout=10)
    assert r.status_code == 400
    no_uuid = b'{"event_type": "payroll.processed"}'
    r = requests.post(url, data=no_uuid, headers={"X-Gusto-Signature": hmac_sha256_hex(token, no_uuid)}, timeout=10)
    assert r.status_code == 400 and "uuid" in r.json()["error"]
    big = b"{" + b" " * (deployment.settings.max_webhook_bytes + 1) + b"}"
    r = requests.post(url, data=big, headers={"X-Gusto-Signature": hmac_sha256_hex(token, big)}, timeout=30)
    assert r.status_code == 413
    assert _count(deployment, InboundEvent) == before


def test_tally_lineerror_parks_the_job_with_tallys_text_and_replay_posts_once(deployment):
    from connector_tasks.jobs.replay import job_summaries, replay_job

    # a payroll dated before the company's books begin (1 Apr 2020): Tally refuses the voucher
    pid = deployment.gusto("POST", "/_sandbox/payrolls", json={
        "compensations": 2, "check_date": "2020-03-27", "start_date": "2020-03-01",
        "end_date": "2020-03-15"}).json()["payroll_uuid"]
    deployment.gusto("POST", f"/_sandbox/payrolls/{pid}/process")
    job = deployment.wait_for_job(pid)
    assert job["status"] == "failed"
    assert "Date is not within the financial period" in job["last_error"]  # Tally's own LINEERROR text
    assert not [v for v in deployment.vouchers() if v["remote_id"] == f"gusto-payroll-{pid}"]
    assert job["id"] in [j["id"] for j in job_summaries(ALL_TENANTS, status="failed")]
    # the accountant opens the earlier financial year in Tally; the replay then posts once
    requests.post(f"{deployment.tally_url}/_sandbox/companies", timeout=10,
                  json={"name": "Demo Trading Co", "books_from": "20190401"}).raise_for_status()
    assert replay_job(job["id"], scope=ALL_TENANTS)["replayed"] is True
    replayed = deployment.wait_for_job(pid)
    assert replayed["status"] == "done", replayed["last_error"]
    assert len([v for v in deployment.vouchers() if v["remote_id"] == f"gusto-payroll-{pid}"]) == 1
    assert replay_job(job["id"], scope=ALL_TENANTS) == {"job": job["id"], "replayed": False, "reason": "already done",
                                     "target_ref": replayed["target_ref"]}
    assert len([v for v in deployment.vouchers() if v["remote_id"] == f"gusto-payroll-{pid}"]) == 1


def test_a_mapping_to_a_ledger_tally_lacks_is_parked_naming_it_before_any_import(deployment):
    from connector_tasks.jobs.replay import replay_job
    from connector_tasks.store import repo

    pid = deployment.gusto("POST", "/_sandbox/payrolls", json={"compensations": 2}).json()["payroll_uuid"]
    with session_scope(deployment.settings.database_url) as s:
        conn = s.scalar(select(Connection).where(Connection.name == GUSTO_CONN))
        repo.set_mapping(s, conn.id, "ledger", "net_pay", "Staff Salary Control")  # bypassing the CLI check
    before = len(deployment.tally_state()["companies"][0]["ledgers"])
    deployment.gusto("POST", f"/_sandbox/payrolls/{pid}/process")
    job = deployment.wait_for_job(pid)
    assert job["status"] == "failed" and "'Staff Salary Control'" in job["last_error"]
    assert len(deployment.tally_state()["companies"][0]["ledgers"]) == before  # nothing half-written
    assert not [v for v in deployment.vouchers() if v["remote_id"] == f"gusto-payroll-{pid}"]
    with session_scope(deployment.settings.database_url) as s:
        s.execute(delete(Mapping))
    assert replay_job(job["id"], scope=ALL_TENANTS)["replayed"] is True
    assert deployment.wait_for_job(pid)["status"] == "done"
