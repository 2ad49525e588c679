"""Delivery guarantees under faults, with real processes: every scenario ends with each payroll
posted exactly once (or parked with a clear reason), every event accounted for.

The deployment runs with short clocks so crashes resolve in seconds: a 15 s visibility
timeout (hard task limit 12 s), a 3 s Tally read timeout and a 0.5 s first retry countdown.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
import time

import pytest
import requests
from sqlalchemy import select, update

from config.settings import child_environment
from tests.harness import GUSTO_CONN, wait_until
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent, SyncAttempt, SyncJob
from connector_tasks.tenants import ALL_TENANTS

pytestmark = pytest.mark.integration

OVERRIDES = {"visibility_timeout": 15, "task_time_limit": 12, "retry_base": 0.5}
ENV = {"TALLY_TIMEOUT": "3"}


@pytest.fixture(scope="module")
def dep(tmp_path_factory, redis_server):
    from tests.harness import start_deployment

    folder = tmp_path_factory.mktemp("faults")
    d = start_deployment(folder, redis_server.url, f"sqlite:///{folder / 'store.db'}", overrides=OVERRIDES, env=ENV)
    yield d
    d.stop()


def new_payroll(dep, **totals) -> str:
    body = {"compensations": 2}
    if totals:
        body["totals"] = totals
    r = dep.gusto("POST", "/_sandbox/payrolls", json=body)
    assert r.status_code == 201
    return r.json()["payroll_uuid"]


def process(dep, pid: str) -> dict:
    r = dep.gusto("POST", f"/_sandbox/payrolls/{pid}/process")
    assert r.status_code == 200
    return r.json()["event"]


def vouchers_for(dep, pid: str) -> list[dict]:
    return [v for v in dep.vouchers() if v["remote_id"] == f"gusto-payroll-{pid}"]


def tally_faults(dep, **spec) -> None:
    requests.post(f"{dep.tally_url}/_sandbox/faults", json=spec, timeout=10).raise_for_status()


def attempts(dep, pid: str) -> list[tuple[str, str]]:
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == pid))
        if job is None:
            return []
        return [(a.phase, a.outcome) for a in s.scalars(select(SyncAttempt).where(SyncAttempt.job_id == job.id)
                                                        .order_by(SyncAttempt.id))]



def assert_posted_once(dep, pid: str, timeout: float = 60.0) -> dict:
    job = dep.wait_for_job(pid, timeout=timeout)
    assert job["status"] == "done", job["last_error"]
    assert len(vouchers_for(dep, pid)) == 1
    return job


def test_agent_killed_before_tally_accepted_posts_once_after_restart(dep):
    tally_faults(dep, hang_seconds=6, count=1)  # the agent's first request hangs
    pid = new_payroll(dep)
    process(dep, pid)
    wait_until(lambda: dep.tally_state()["max_in_flight"] >= 1 and ("prepare", "ok") in attempts(dep, pid),
               what="the agent to be talking to Tally")
    time.sleep(1.0)
    dep.services.kill("tally-worker")  # SIGKILL the whole agent, pool and parent
    assert vouchers_for(dep, pid) == []
    dep.restart_agent()
    assert_posted_once(dep, pid)  # the unacked task came back after the visibility timeout


def test_agent_killed_after_tally_accepted_does_not_post_twice(dep):
    tally_faults(dep, hang_after_import=8)  # the voucher is created, only the reply is late
    pid = new_payroll(dep)
    process(dep, pid)
    wait_until(lambda: vouchers_for(dep, pid), timeout=30, what="Tally to accept the voucher")
    dep.services.kill("tally-worker")
    dep.restart_agent()
    assert_posted_once(dep, pid)
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == pid))
        details = [a.detail for a in s.scalars(select(SyncAttempt).where(SyncAttempt.job_id == job.id,
                                                                         SyncAttempt.phase == "post"))]
    assert any(d and d.get("already_in_tally") for d in details)  # found by REMOTEID, not re-posted


def test_tally_down_then_back(dep):
    tally_faults(dep, down=True)
    pid = new_payroll(dep)
    process(dep, pid)
    wait_until(lambda: ("post", "retry") in attempts(dep, pid), what="a retried post")
    assert vouchers_for(dep, pid) == []
    tally_faults(dep, down=False)
    assert_posted_once(dep, pid)


def test_company_not_loaded_then_loaded(dep):
    from tests.harness import DEMO_COMPANY_NAME

    tally_faults(dep, unload_company=DEMO_COMPANY_NAME)
    pid = new_payroll(dep)
    process(dep, pid)
    wait_until(lambda: ("post", "retry") in attempts(dep, pid), what="a retried post")
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == pid))
        assert "not loaded" in (job.last_error or "")
    tally_faults(dep, load_company=DEMO_COMPANY_NAME)
    assert_posted_once(dep, pid)


def test_reply_hanging_past_the_timeout_is_retried_and_posts_once(dep):
    tally_faults(dep, hang_seconds=5, count=1)  # longer than the 3 s read timeout
    pid = new_payroll(dep)
    process(dep, pid)
    assert_posted_once(dep, pid)
    assert ("post", "retry") in attempts(dep, pid)


def test_gusto_429_storm_and_5xx_burst(dep):
    dep.gusto("POST", "/_sandbox/faults", json={"status": 429, "count": 4, "retry_after": 1})
    dep.gusto("POST", "/_sandbox/faults", json={"status": 503, "count": 3})
    pid = new_payroll(dep)
    process(dep, pid)
    assert_posted_once(dep, pid)


def test_same_webhook_20_times_concurrently(dep):
    pid = new_payroll(dep)
    event = process(dep, pid)
    assert_posted_once(dep, pid)
    r = dep.gusto("POST", f"/_sandbox/deliveries/redeliver/{event['uuid']}", params={"times": 20, "concurrent": 1})
    assert r.json()["deliveries"] == 20
    with session_scope(dep.settings.database_url) as s:
        rows = s.scalars(select(InboundEvent).where(InboundEvent.event_uuid == event["uuid"])).all()
    assert len(rows) == 1 and rows[0].deliveries == 21
    time.sleep(1.0)
    assert len(vouchers_for(dep, pid)) == 1


def test_a_webhook_and_a_poll_for_the_same_payroll_post_once(dep):
    from connector_tasks.connectors.gusto.source import poll_events

    pid = new_payroll(dep)
    event = process(dep, pid)  # the webhook is on its way while two pollers read /v1/events
    results: list[dict] = []
    pollers = [threading.Thread(target=lambda: results.append(poll_events(GUSTO_CONN))) for _ in range(2)]
    for t in pollers:
        t.start()
    for t in pollers:
        t.join(60)
    assert len(results) == 2
    assert_posted_once(dep, pid)
    with session_scope(dep.settings.database_url) as s:
        rows = s.scalars(select(InboundEvent).where(InboundEvent.event_uuid == event["uuid"])).all()
        jobs = s.scalars(select(SyncJob).where(SyncJob.source_id == pid)).all()
    assert len(rows) == 1 and rows[0].deliveries >= 2  # the webhook and the poll: one row
    assert len(jobs) == 1 and jobs[0].status == "done"
    time.sleep(1.0)
    assert len(vouchers_for(dep, pid)) == 1


def test_xml_bomb_in_a_tally_reply_parks_the_job_then_replay_posts_once(dep):
    from connector_tasks.jobs.replay import replay_job

    tally_faults(dep, reply_bomb=True)
    pid = new_payroll(dep)
    process(dep, pid)
    job = dep.wait_for_job(pid)
    assert job["status"] == "failed" and "entity declarations are not allowed" in job["last_error"]
    assert vouchers_for(dep, pid) == []
    replay_job(job["id"], scope=ALL_TENANTS)
    assert_posted_once(dep, pid)


def test_totals_that_do_not_reconcile_are_parked_before_anything_reaches_tally(dep):
    requests_before = dep.tally_state()["request_count"]
    pid = new_payroll(dep, net_pay="81752.00")
    process(dep, pid)
    job = dep.wait_for_job(pid)
    assert job["status"] == "failed"
    assert "MappingError" in job["last_error"] and "difference 0.94" in job["last_error"]
    assert dep.tally_state()["request_count"] == requests_before  # nothing half-written
    assert attempts(dep, pid) == [("prepare", "failed")]  # permanent: not retried in a storm


def test_broker_down_when_the_webhook_arrives_then_redis_restarts(dep, redis_server):
    """No relay running either (crashed, or never started): the sweeper alone recovers it."""
    from connector_tasks.jobs.sweeper import sweep

    pid = new_payroll(dep)
    dep.services.kill("relay")
    redis_server.stop()
    try:
        event = process(dep, pid)
        row = wait_until(lambda: _event_row(dep, event["uuid"]), timeout=30, what="the stored event")
        assert row.status == "received"  # committed and acknowledged, not enqueued
    finally:
        redis_server.start()
    with session_scope(dep.settings.database_url) as s:  # age it past the sweeper's grace period
        s.execute(update(InboundEvent).where(InboundEvent.event_uuid == event["uuid"])
                  .values(received_at=dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)))
    assert sweep()["events"] >= 1
    assert_posted_once(dep, pid, timeout=90)
    if dep.settings.webhook_enqueue == "relay":
        dep.services.start_relay()


def test_broker_down_while_the_relay_runs_then_redis_restarts(dep, redis_server):
    """The relay keeps failing to publish while Redis is down, puts each batch back, and
    publishes the event itself once Redis is back: no sweeper needed, posted once."""
    if dep.settings.webhook_enqueue != "relay":
        pytest.fail("this deployment runs WEBHOOK_ENQUEUE=inline; the relay scenario needs relay")
    pid = new_payroll(dep)
    redis_server.stop()
    try:
        event = process(dep, pid)
        wait_until(lambda: _event_row(dep, event["uuid"]), timeout=30, what="the stored event")
        time.sleep(2.5)  # the relay tries (and fails) at least twice
        assert _event_row(dep, event["uuid"]).status in ("received", "relaying")
    finally:
        redis_server.start()
    assert_posted_once(dep, pid, timeout=90)
    assert _event_row(dep, event["uuid"]).status == "processed"


def _event_row(dep, event_uuid):
    with session_scope(dep.settings.database_url) as s:
        return s.scalar(select(InboundEvent).where(InboundEvent.event_uuid == event_uuid))


REFRESH_SCRIPT = """
import json, sys
from connector_tasks import runtime
from connector_tasks.connectors.gusto.service import gusto_client
from connector_tasks.connections import get_connection
from connector_tasks.store.db import session_scope
with session_scope(runtime.settings().database_url) as s:
    conn = get_connection(s, sys.argv[1])
client = gusto_client(conn)
print(json.dumps({"employees": len(client.list_employees(conn.account))}))
"""


def test_two_workers_refreshing_the_same_grant_at_once(dep):
    dep.gusto("POST", "/_sandbox/clock", json={"advance": 7300})  # the access token has expired
    env = child_environment(dep.settings)
    procs = [subprocess.Popen([sys.executable, "-c", REFRESH_SCRIPT, GUSTO_CONN], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1])["employees"] >= 3
    refreshes = [r for r in requests.get(f"{dep.gusto_url}/_sandbox/requests", timeout=10).json()
                 if r.get("path") == "/oauth/token" and (r.get("json") or {}).get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1  # single-flight: the second worker re-read the saved tokens


def test_no_secret_appears_in_any_log_line(dep):
    from connector_tasks import runtime
    from connector_tasks.connections import get_connection
    from connector_tasks.store import repo

    with session_scope(dep.settings.database_url) as s:
        creds = repo.read_credentials(get_connection(s, GUSTO_CONN), runtime.vault())
    secrets = [creds["oauth"]["access_token"], creds["oauth"]["refresh_token"],
               creds["webhook_verification_token"], dep.settings.var("GUSTO_CLIENT_SECRET"),
               *dep.settings.fernet_keys]
    logs = list((dep.settings.instance_path / "logs").glob("*.log"))
    assert logs
    for path in logs:
        text = path.read_text(errors="replace")
        for secret in secrets:
            assert secret not in text, f"a secret appears in {path.name}"


HAMMER_SCRIPT = """
import json, sys, time
from connector_tasks import runtime
from connector_tasks.connectors.gusto.service import gusto_client
from connector_tasks.core.errors import RateLimitedError
from connector_tasks.connections import get_connection
from connector_tasks.store.db import session_scope
with session_scope(runtime.settings().database_url) as s:
    conn = get_connection(s, sys.argv[1])
client = gusto_client(conn)
end = time.time() + float(sys.argv[2])
ok = vendor_429 = 0
while time.time() < end:
    try:
        client.list_employees(conn.account)
        ok += 1
    except RateLimitedError as exc:
        if exc.status == 429:
            vendor_429 += 1
        time.sleep(min(exc.retry_after or 0.5, 1.0))
print(json.dumps({"ok": ok, "vendor_429": vendor_429}))
"""


def test_four_workers_hammering_gusto_never_exceed_200_in_any_60s_window(dep):
    """Real Gusto numbers (200 per rolling 60 s), real time: 4 processes for 66 s."""
    started = requests.get(f"{dep.gusto_url}/_sandbox/state", timeout=10).json()["now"]
    env = child_environment(dep.settings)
    procs = [subprocess.Popen([sys.executable, "-c", HAMMER_SCRIPT, GUSTO_CONN, "66"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sum(r["vendor_429"] for r in results) == 0  # Gusto never had to refuse us
    log = requests.get(f"{dep.gusto_url}/_sandbox/requests", timeout=30).json()
    times = sorted(r["time"] for r in log if r["path"].startswith("/v1/") and r["time"] >= started - 60)
    worst = max(sum(1 for t in times[i:] if t < start + 60) for i, start in enumerate(times))
    assert worst <= 200
    admitted = sum(r["ok"] for r in results)
    assert admitted >= 190, results  # and the budget was used, not starved
