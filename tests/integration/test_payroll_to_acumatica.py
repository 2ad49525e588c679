"""Gusto → Acumatica end to end: Gusto emulator → webhook → web → gusto worker → acumatica
workers → Acumatica emulator, with real Redis, real worker processes and HTTP everywhere, on
SQLite and on PostgreSQL. The payroll flow and the domain are the ones the Tally target uses."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
import requests
from sqlalchemy import delete, select

from connector_tasks import runtime
from connector_tasks.connections import write_settings
from connector_tasks.jobs.states import JobStatus, transition
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, ExternalRef, InboundEvent, Mapping, SyncJob
from connector_tasks.tenants import ALL_TENANTS
from sandbox.acumatica.server import serve as serve_acumatica
from tests.harness import DEMO_PAYROLL, GUSTO_CONN
from tests.harness import deployment_on

pytestmark = pytest.mark.integration

ACU_CONN = "demo-acumatica"
MARKER = f"[gusto-payroll-{DEMO_PAYROLL}]"


class Acu:
    """The Acumatica emulator seen over HTTP."""

    def __init__(self, base: str):
        self.base = base
        self.root = base.rsplit("/", 1)[0]

    def state(self) -> dict:
        return requests.get(f"{self.root}/_sandbox/state", timeout=30).json()

    def configure(self, **cfg) -> None:
        assert requests.post(f"{self.root}/_sandbox/config", json=cfg, timeout=30).status_code == 200

    def batches(self, marker: str) -> list[dict]:
        return [b for b in self.state()["journal_transactions"] if marker in b["Description"]]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def deployment(request, tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp(f"acu-{request.param}")
    server, base = serve_acumatica("127.0.0.1", 0, {"release_polls": 1}, env="test")
    try:
        with deployment_on(request.param, folder, redis_server.url, postgres_admin_url,
                           overrides={"retry_base": 0.3}) as dep:
            with session_scope(dep.settings.database_url) as s:
                conn = Connection(name=ACU_CONN, system="acumatica", account="Company", status="connected",
                                  settings={"base_url": base, "endpoint_version": "24.200.001", "branch": "HEADOFFICE",
                                            "ledger": "ACTUAL", "release": True, "auth": "oauth",
                                            "requests_per_minute": 600, "concurrent_requests": 3})
                s.add(conn)
                s.flush()
                repo.write_credentials(conn, runtime.vault(), {
                    "username": "admin", "password": "setup", "client_secret": "demo-acumatica-secret",
                    "client_id": "88358B02-A48D-A50E-F710-39C1636C30F6@Company"})
                gusto = s.scalar(select(Connection).where(Connection.name == GUSTO_CONN))
                write_settings(s, gusto, {"targets": [ACU_CONN]})  # the connect's jobs may write too
            dep.services.start_worker(name="acumatica", queues="acumatica")
            yield dep, Acu(base)
    finally:
        server.shutdown()


def _set_acu(dep, **settings) -> None:
    with session_scope(dep.settings.database_url) as s:
        conn = s.scalar(select(Connection).where(Connection.name == ACU_CONN))
        repo.merge_settings(s, conn.id, settings)


def test_published_example_posts_one_balanced_journal_transaction(deployment):
    dep, acu = deployment
    assert dep.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process").status_code == 200
    job = dep.wait_for_job(DEMO_PAYROLL)
    assert job["status"] == "done", job["last_error"]
    [batch] = acu.batches(MARKER)
    assert batch["Module"] == "GL" and batch["LedgerID"] == "ACTUAL" and batch["BranchID"] == "HEADOFFICE"
    assert batch["TransactionDate"] == "2021-02-22T00:00:00" and DEMO_PAYROLL in batch["Description"]
    assert batch["Status"] == "Posted"            # released: 202 then 204
    lines = [(d["Account"], Decimal(d["DebitAmount"]), Decimal(d["CreditAmount"])) for d in batch["Details"]]
    dr, cr = sum(l[1] for l in lines), sum(l[2] for l in lines)
    assert dr == cr == Decimal("137553.08")
    by_account: dict = {}
    for a, d, c in lines:   # earning types are lines of their own on the wages account
        prev = by_account.get(a, (0, 0))
        by_account[a] = (prev[0] + d, prev[1] + c)
    assert by_account["60000"] == (Decimal("130635.89"), 0)
    assert by_account["21000"] == (0, Decimal("81752.94"))
    assert by_account["21100"] == (0, Decimal("42463.91"))
    assert {d["Subaccount"] for d in batch["Details"]} == {"000-000"}
    assert {d["ReferenceNbr"] for d in batch["Details"]} == {DEMO_PAYROLL.replace("-", "")[:15]}
    assert job["target_ref"] == batch["BatchNbr"]
    with session_scope(dep.settings.database_url) as s:
        refs = s.scalars(select(ExternalRef).where(ExternalRef.source_id == DEMO_PAYROLL)).all()
        assert [(r.target_system, r.target_type, r.target_id) for r in refs] == [
            ("acumatica", "journal_transaction", batch["BatchNbr"])]


def test_redelivered_webhook_still_yields_one_journal(deployment):
    dep, acu = deployment
    writes = acu.state()["counters"]["journal_writes"]
    events = requests.get(f"{dep.gusto_url}/_sandbox/deliveries", timeout=10).json()
    event_uuid = next(d["event_uuid"] for d in events if d.get("kind") == "event")
    r = dep.gusto("POST", f"/_sandbox/deliveries/redeliver/{event_uuid}", params={"times": 3, "concurrent": 1})
    assert r.status_code == 200
    time.sleep(2)
    assert len(acu.batches(MARKER)) == 1
    assert acu.state()["counters"]["journal_writes"] == writes


def test_webhook_and_poll_for_the_same_payroll_still_yield_one_journal(deployment):
    from connector_tasks.connectors.gusto.source import poll_events

    dep, acu = deployment
    writes = acu.state()["counters"]["journal_writes"]
    polled = poll_events(GUSTO_CONN)  # /v1/events also holds the payroll.processed the webhook brought
    assert polled["duplicates"] >= 1
    with session_scope(dep.settings.database_url) as s:
        rows = s.scalars(select(InboundEvent).where(InboundEvent.event_type == "payroll.processed",
                                                    InboundEvent.entity_id == DEMO_PAYROLL)).all()
        assert len(rows) == 1 and rows[0].deliveries >= 2
    time.sleep(2)
    assert len(acu.batches(MARKER)) == 1
    assert acu.state()["counters"]["journal_writes"] == writes


def test_replay_after_the_reference_is_lost_finds_the_journal_and_posts_nothing(deployment):
    from connector_tasks.jobs.replay import replay_job

    dep, acu = deployment
    [batch] = acu.batches(MARKER)
    writes = acu.state()["counters"]["journal_writes"]
    with session_scope(dep.settings.database_url) as s:
        s.execute(delete(ExternalRef).where(ExternalRef.source_id == DEMO_PAYROLL))
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == DEMO_PAYROLL))
        transition(job, JobStatus.QUEUED)  # as if the job had been parked before it learnt the batch
        transition(job, JobStatus.FAILED, error="the reference was lost")
        job.target_ref, job_id = None, job.id
    assert replay_job(job_id, scope=ALL_TENANTS)["replayed"] is True
    job = dep.wait_for_job(DEMO_PAYROLL)
    assert job["status"] == "done", job["last_error"]
    assert job["target_ref"] == batch["BatchNbr"]
    assert len(acu.batches(MARKER)) == 1 and acu.state()["counters"]["journal_writes"] == writes
    with session_scope(dep.settings.database_url) as s:
        last = s.scalar(select(SyncJob).where(SyncJob.id == job_id)).attempts_log[-1]
        assert last.detail["already_in_acumatica"] is True


def test_mapping_to_a_missing_account_is_refused_before_any_write(deployment):
    dep, acu = deployment
    puts = acu.state()["counters"]["journal_put_attempts"]
    with session_scope(dep.settings.database_url) as s:
        conn = s.scalar(select(Connection).where(Connection.name == ACU_CONN))
        repo.set_mapping(s, conn.id, "gl_account", "Salaries Payable", "29999", {"subaccount": "000-000"})
    pid = dep.gusto("POST", "/_sandbox/payrolls", json={"compensations": 2}).json()["payroll_uuid"]
    dep.gusto("POST", f"/_sandbox/payrolls/{pid}/process")
    try:
        job = dep.wait_for_job(pid)
        assert job["status"] == "failed"
        assert "account 29999" in job["last_error"] and "Salaries Payable" in job["last_error"]
        assert acu.state()["counters"]["journal_put_attempts"] == puts
        assert acu.batches(f"[gusto-payroll-{pid}]") == []
    finally:
        with session_scope(dep.settings.database_url) as s:
            s.execute(delete(Mapping).where(Mapping.kind == "gl_account"))


def test_login_limit_storm_recovers_without_leaking_sessions(deployment):
    dep, acu = deployment
    _set_acu(dep, auth="cookie")
    acu.configure(api_user_limit=1, latency=0.05)
    dep.services.start_worker(name="acumatica2", queues="acumatica")
    try:
        pids = [dep.gusto("POST", "/_sandbox/payrolls", json={"compensations": 1}).json()["payroll_uuid"]
                for _ in range(4)]
        for pid in pids:
            dep.gusto("POST", f"/_sandbox/payrolls/{pid}/process")
        jobs = [dep.wait_for_job(pid, timeout=180) for pid in pids]
        assert [j["status"] for j in jobs] == ["done"] * 4, [j["last_error"] for j in jobs]
        state = acu.state()
        assert state["counters"]["login_limit_refusals"] > 0      # there was a storm
        assert state["open_sessions"] == 0                          # and no session leaked
        assert state["counters"]["logins"] == state["counters"]["logouts"]
        for pid in pids:
            assert len(acu.batches(f"[gusto-payroll-{pid}]")) == 1
    finally:
        dep.services.kill("worker-acumatica2")
        acu.configure(api_user_limit=2, latency=0.0)
        _set_acu(dep, auth="oauth")


def test_employee_task_creates_then_finds_by_external_ref_and_deactivates(deployment):
    import datetime as dt

    from connector_tasks.celery_app import app
    from connector_tasks.flows import targets
    from connector_tasks.domain.model import EmployeeMaster

    dep, acu = deployment
    master = EmployeeMaster(key="emp-int-1", name="Daniel Okafor (a1f002)", group="Sales",
                            email="daniel.okafor@example.com")

    def run(m: EmployeeMaster) -> dict:
        with session_scope(dep.settings.database_url) as s:
            gusto = s.scalar(select(Connection).where(Connection.name == GUSTO_CONN))
            acu_conn = s.scalar(select(Connection).where(Connection.name == ACU_CONN))
            payload = targets.employee_payload(s, acu_conn, m)
            job, _ = repo.claim_job(s, flow="employee_to_master", connection_id=gusto.id, target_id=acu_conn.id,
                                    source_id=m.key, key=f"gusto-employee-{m.key}")
            job.payload, job_id = payload, job.id
            if job.status != JobStatus.QUEUED:  # run again: the job is re-opened
                transition(job, JobStatus.QUEUED)
            transition(job, JobStatus.RUNNING)
            transition(job, JobStatus.POSTING, lease=600)
        app.send_task(payload["dispatch"]["task"], args=[job_id, payload], queue=payload["dispatch"]["queue"])
        job = dep.wait_for_job(m.key)
        assert job["status"] == "done", job["last_error"]
        with session_scope(dep.settings.database_url) as s:
            return s.get(SyncJob, job_id).attempts_log[-1].detail

    assert run(master)["action"] == "created"
    assert run(master)["action"] == "unchanged"
    gone = EmployeeMaster(**{**master.__dict__, "deactivation_date": dt.date(2024, 6, 30), "email": None})
    detail = run(gone)   # no e-mail: found through the stored ExternalRef only
    assert detail["action"] == "altered"
    [emp] = [e for e in acu.state()["employees"] if e["EmployeeName"] == master.name]
    assert emp["Status"] == "Inactive" and emp["EmployeeSettings"]["DepartmentID"] == "SALES"
    with session_scope(dep.settings.database_url) as s:
        refs = s.scalars(select(ExternalRef).where(ExternalRef.source_id == master.key)).all()
        assert [(r.target_type, r.target_id) for r in refs] == [("employee", emp["EmployeeID"])]


def test_a_gusto_hire_and_termination_keep_the_acumatica_employee_aligned(deployment):
    dep, acu = deployment
    r = dep.gusto("POST", "/_sandbox/employees/hire", json={"employees": [
        {"first_name": "Sara", "last_name": "Kim", "title": "Analyst", "department": "Finance",
         "employee_code": "sk0001"}]})
    uid = r.json()["created"][0]

    def employee():
        found = [e for e in acu.state()["employees"] if e["EmployeeName"] == "Sara Kim (sk0001)"]
        return found[0] if found else None

    deadline = time.monotonic() + 60
    while not employee():
        assert time.monotonic() < deadline, "the hire never reached Acumatica"
        time.sleep(0.3)
    assert employee()["Status"] == "Active"
    dep.gusto("POST", f"/_sandbox/employees/{uid}/terminate", json={"effective_date": "2024-03-31"})
    deadline = time.monotonic() + 60
    while employee()["Status"] != "Inactive":
        assert time.monotonic() < deadline, "the termination never reached Acumatica"
        time.sleep(0.3)
    assert len([e for e in acu.state()["employees"] if e["EmployeeName"].endswith("(sk0001)")]) == 1
