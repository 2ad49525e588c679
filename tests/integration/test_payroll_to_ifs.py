"""Gusto → IFS Cloud end to end: Gusto emulator → webhook → web → gusto worker → ifs_cloud
worker → IFS emulator, with real Redis, real worker processes and HTTP everywhere, on SQLite and
on PostgreSQL. The flows are the ones every target uses; IFS is one registry entry.

The demo connection (sandbox/ifs_cloud/kit.py) books the Sales department in company 30 and
everything else in company 10, with a cost centre (code part B) per department."""
from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from connector_tasks.connections import get_connection, write_settings
from connector_tasks.connectors.ifs_cloud.vouchers import reference_of
from connector_tasks.jobs.replay import replay_job
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import ExternalRef, SyncJob
from connector_tasks.tenants import ALL_TENANTS
from sandbox.ifs_cloud.kit import IFS_CONN, IfsKit
from tests.harness import DEMO_PAYROLL, GUSTO_CONN, deployment_with

pytestmark = pytest.mark.integration

KEY = f"gusto-payroll-{DEMO_PAYROLL}"
D = Decimal
#: short clocks, so a killed worker's task comes back in seconds (visibility timeout 20 s)
OVERRIDES = {"retry_base": 0.3, "visibility_timeout": 20, "task_time_limit": 15}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def ifs(request, tmp_path_factory, redis_server, postgres_admin_url):
    kit = IfsKit()
    with deployment_with(request.param, tmp_path_factory.mktemp(f"ifs-{request.param}"), redis_server.url,
                         postgres_admin_url, [kit], overrides=OVERRIDES) as dep:
        yield dep, kit, {}


def _set_ifs(dep, **changes) -> None:
    with session_scope(dep.settings.database_url) as s:
        write_settings(s, get_connection(s, IFS_CONN), changes)


def _amounts(rows: list[dict]) -> tuple[Decimal, Decimal]:
    return (sum((D(str(r.get("DebetAmount") or 0)) for r in rows), D("0")),
            sum((D(str(r.get("CreditAmount") or 0)) for r in rows), D("0")))


def _by_account(rows: list[dict]) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for r in rows:
        out[r["Account"]] = out.get(r["Account"], D("0")) + D(str(r.get("DebetAmount") or 0)) \
            - D(str(r.get("CreditAmount") or 0))
    return out


def _new_payroll(dep, **body) -> str:
    pid = dep.gusto("POST", "/_sandbox/payrolls", json={"compensations": 1, **body}).json()["payroll_uuid"]
    assert dep.gusto("POST", f"/_sandbox/payrolls/{pid}/process").status_code == 200
    return pid


def _paid(dep, pid: str) -> dict:
    r = dep.gusto("POST", "/_sandbox/events", json={"event_type": "payroll.paid", "entity_type": "Payroll",
                                                     "entity_uuid": pid})
    assert r.status_code == 201, r.text
    return r.json()


def _wait(dep, pid: str, flow: str = "payroll_to_journal", timeout: float = 90.0) -> dict:
    return dep.wait_for_job(pid, timeout, target=IFS_CONN, flow=flow)


def test_published_example_posts_one_balanced_voucher_per_company(ifs):
    dep, kit, seen = ifs
    r = dep.gusto("POST", f"/_sandbox/payrolls/{DEMO_PAYROLL}/process")
    seen["event"] = r.json()["event"]["uuid"]
    job = _wait(dep, DEMO_PAYROLL)
    assert job["status"] == "done", job["last_error"]
    vouchers = kit.vouchers(job["target_ref"])
    assert [ref.split(":")[0] for ref in vouchers] == ["10", "30"]        # Sales is company 30
    total = D("0")
    for ref, (header, rows) in vouchers.items():
        dr, cr = _amounts(rows)
        assert dr == cr > 0, ref                                              # balanced per company
        total += dr
        assert header["VoucherDate"] == "2021-02-22" and header["VoucherType"] == "Z"
        assert {r["ReferenceNumber"] for r in rows} == {reference_of(KEY)}
    assert total == D("137553.08")
    (_, ten), (_, thirty) = vouchers.values()
    # wages and employer taxes by cost centre; liabilities without one
    assert {r["CodeB"] for r in thirty if r["Account"] in ("6000", "6100")} == {"300"}
    assert {r["CodeB"] for r in ten if r["Account"] in ("6000", "6100")} == {"100", "200"}
    assert not any(r.get("CodeB") for r in ten + thirty if r["Account"].startswith("2"))
    both = {a: _by_account(ten).get(a, 0) + _by_account(thirty).get(a, 0) for a in ("6000", "6100", "2100", "2200")}
    assert both == {"6000": D("130635.89"), "6100": D("6917.19"), "2100": D("-81752.94"), "2200": D("-42463.91")}
    with session_scope(dep.settings.database_url) as s:
        refs = s.scalars(select(ExternalRef).where(ExternalRef.source_id == DEMO_PAYROLL)).all()
        assert [(r.target_system, r.target_type, r.target_id) for r in refs] == [
            ("ifs_cloud", "voucher", job["target_ref"])]
        detail = s.get(SyncJob, job["id"]).attempts_log[-1].detail
        assert detail["vouchers"] == dict(ref.split(":", 1) for ref in vouchers) and detail["already_in_ifs"] == []


def test_the_same_webhook_five_times_posts_nothing_new(ifs):
    dep, kit, seen = ifs
    before = kit.state()["counters"]["vouchers_created"]
    r = dep.gusto("POST", f"/_sandbox/deliveries/redeliver/{seen['event']}", params={"times": 5, "concurrent": 1})
    assert r.status_code == 200 and r.json()["deliveries"] == 5
    time.sleep(3)
    assert kit.state()["counters"]["vouchers_created"] == before
    with session_scope(dep.settings.database_url) as s:
        jobs = s.scalars(select(SyncJob).where(SyncJob.source_id == DEMO_PAYROLL)).all()
        assert [(j.flow, j.status, j.attempts) for j in jobs] == [("payroll_to_journal", "done", 1)]


def test_settlement_after_the_paid_event(ifs):
    dep, kit, _ = ifs
    _paid(dep, DEMO_PAYROLL)
    job = _wait(dep, DEMO_PAYROLL, "payroll_settlement")
    assert job["status"] == "done", job["last_error"]
    assert any("paper checks" in w for w in job["warnings"])
    vouchers = kit.vouchers(job["target_ref"])
    assert [ref.split(":")[0] for ref in vouchers] == ["10", "30"]
    bank = D("0")
    for ref, (header, rows) in vouchers.items():
        dr, cr = _amounts(rows)
        assert dr == cr > 0, ref
        assert header["VoucherDate"] == "2021-02-18"                         # Gusto's expected debit time
        accounts = _by_account(rows)
        assert set(accounts) == {"2100", "2200", "1000"} and accounts["1000"] < 0
        bank -= accounts["1000"]
    assert bank == D("121747.71")                                            # the company debit
    with session_scope(dep.settings.database_url) as s:
        settlement = s.get(SyncJob, job["id"])
        accrual = s.scalar(select(SyncJob).where(SyncJob.source_id == DEMO_PAYROLL,
                                                 SyncJob.flow == "payroll_to_journal"))
        assert settlement.payload["settles"] == {"job": accrual.id, "target_ref": accrual.target_ref, "key": KEY}
        assert settlement.idempotency_key == f"{KEY}-settlement"
    created = kit.state()["counters"]["vouchers_created"]
    _paid(dep, DEMO_PAYROLL)                                                 # paid again: nothing new
    time.sleep(3)
    assert kit.state()["counters"]["vouchers_created"] == created


def test_settlement_by_the_debit_date_when_no_event_comes(ifs):
    from connector_tasks.connectors.gusto.source import settle_due

    dep, kit, _ = ifs
    pid = _new_payroll(dep)
    assert _wait(dep, pid)["status"] == "done"
    result = settle_due(GUSTO_CONN)
    assert result["due"] == [pid]                                            # 2021-02-18 has long passed
    job = _wait(dep, pid, "payroll_settlement")
    assert job["status"] == "done", job["last_error"]
    [(ref, (header, rows))] = kit.vouchers(job["target_ref"]).items()       # unknown employees: company 10
    assert ref.startswith("10:") and _amounts(rows)[0] == D("121747.71")
    assert settle_due(GUSTO_CONN)["due"] == []                               # settled once


def test_settlement_switched_off_ends_done_with_a_note(ifs):
    dep, kit, _ = ifs
    _set_ifs(dep, settlement=False)
    try:
        pid = _new_payroll(dep)
        assert _wait(dep, pid)["status"] == "done"
        created = kit.state()["counters"]["vouchers_created"]
        _paid(dep, pid)
        job = _wait(dep, pid, "payroll_settlement")
        assert job["status"] == "done" and job["target_ref"] is None
        assert any("does not book settlements" in w for w in job["warnings"])
        assert kit.state()["counters"]["vouchers_created"] == created
    finally:
        _set_ifs(dep, settlement=True)


def test_a_closed_period_parks_naming_it_then_posts_once_after_it_is_opened_and_replayed(ifs):
    dep, kit, _ = ifs
    kit.admin("faults", {"kind": "period", "company": "10", "year": 2021, "period": 3, "status": "Closed"})
    pid = _new_payroll(dep, check_date="2021-03-05", start_date="2021-02-16", end_date="2021-02-28")
    job = _wait(dep, pid)
    assert job["status"] == "failed"
    assert "accounting period 2021-03 of company 10 (ledger 00) is Closed" in job["last_error"]
    ref = reference_of(f"gusto-payroll-{pid}")
    assert not [t for t in kit.state()["tables"].get("ext_transaction", []) if t["LoadId"] == ref]  # nothing written
    kit.admin("faults", {"kind": "period", "company": "10", "year": 2021, "period": 3, "status": "Open"})
    assert replay_job(job["id"], scope=ALL_TENANTS)["replayed"] is True
    job = _wait(dep, pid)
    assert job["status"] == "done", job["last_error"]
    [(_, (header, rows))] = kit.vouchers(job["target_ref"]).items()
    assert header["VoucherDate"] == "2021-03-05" and _amounts(rows)[0] == _amounts(rows)[1]
    assert len({(v["Company"], v["VoucherNo"]) for v in kit.state()["tables"]["voucher"]
                if v["VoucherDate"] == "2021-03-05"}) == 1


def test_a_stale_etag_is_read_again_and_the_job_is_done(ifs):
    dep, kit, _ = ifs
    failures = kit.state()["counters"]["precondition_failures"]
    kit.admin("faults", {"kind": "stale_etag", "method": "POST", "path_contains": "DoCreateVoucher"})
    pid = _new_payroll(dep)
    job = _wait(dep, pid)
    assert job["status"] == "done", job["last_error"]
    assert kit.state()["counters"]["precondition_failures"] == failures + 1  # one 412, then through
    assert not kit.state()["faults_pending"]
    assert len(kit.vouchers(job["target_ref"])) == 1


def _ping(dep) -> dict:
    from connector_tasks.connectors.ifs_cloud.service import ping

    with session_scope(dep.settings.database_url) as s:
        conn = get_connection(s, IFS_CONN)
        s.expunge(conn)
    return ping(conn)


def test_ping_checks_the_token_the_companies_and_todays_period(ifs):
    dep, kit, _ = ifs
    result = _ping(dep)
    assert result["ok"] is True and result["token"] == "granted" and result["expires_in"] > 100
    assert {c: (v["currency"], v["status"]) for c, v in result["companies"].items()} == {
        "10": ("USD", "Open"), "30": ("USD", "Open")}
    today = dt.date.today()
    kit.admin("faults", {"kind": "period", "company": "30", "year": today.year, "period": today.month,
                         "status": "Closed"})
    try:
        result = _ping(dep)
        assert result["ok"] is False
        assert result["companies"]["30"]["problems"] == [
            f"accounting period {today.year}-{today.month:02d} of company 30 is Closed"]
    finally:
        kit.admin("faults", {"kind": "period", "company": "30", "year": today.year, "period": today.month,
                             "status": "Open"})


def test_a_token_expiring_mid_run_is_renewed_and_the_job_is_done(ifs):
    dep, kit, _ = ifs
    assert _ping(dep)["ok"]                            # a token (180 s) is stored
    kit.admin("config", {"token_ttl": 1, "latency": 0.1})
    _set_ifs(dep, token_margin=0.2)
    kit.admin("faults", {"kind": "expire_tokens"})     # the stored token dies: a 401, then 1-second tokens
    state = kit.state()["counters"]
    grants, unauthorized = state["token_grants"], state["unauthorized"]
    try:
        pid = _new_payroll(dep)
        job = _wait(dep, pid, timeout=120)
        assert job["status"] == "done", job["last_error"]
    finally:
        kit.admin("config", {"token_ttl": 180, "latency": 0.0})
        _set_ifs(dep, token_margin=30.0)
    state = kit.state()["counters"]
    assert state["token_grants"] >= grants + 2                               # renewed during the run
    assert state["unauthorized"] >= unauthorized + 1                         # after the 401 as well
    [(_, (_, rows))] = kit.vouchers(job["target_ref"]).items()
    assert rows and _amounts(rows)[0] == _amounts(rows)[1]


def test_a_worker_killed_between_the_write_and_the_record_posts_nothing_twice(ifs):
    dep, kit, _ = ifs
    kit.admin("faults", {"kind": "hold_answer", "seconds": 30, "method": "POST", "path_contains": "DoCreateVoucher"})
    pid = _new_payroll(dep)
    ref = reference_of(f"gusto-payroll-{pid}")

    def made() -> list[dict]:
        return [r for r in kit.state()["tables"].get("voucher_row", []) if r.get("ReferenceNumber") == ref]
    _wait_for("IFS to make the voucher", made)
    dep.services.kill("worker-main")                  # SIGKILL while the answer is on its way
    with session_scope(dep.settings.database_url) as s:
        assert s.scalar(select(SyncJob).where(SyncJob.source_id == pid)).status == "posting"
    dep.services.start_worker()                       # the unacked task comes back to the new worker
    job = _wait(dep, pid, timeout=120)
    assert job["status"] == "done", job["last_error"]
    assert len({(r["VoucherType"], r["VoucherNo"]) for r in made()}) == 1
    with session_scope(dep.settings.database_url) as s:
        details = [a.detail for a in s.get(SyncJob, job["id"]).attempts_log if a.phase == "post"]
    assert details[-1]["already_in_ifs"] == ["10"]    # found by its reference, not posted again


def _wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"{what} never happened"
        time.sleep(0.3)


def test_employees_hired_and_terminated_become_active_then_inactive_customers(ifs):
    dep, kit, _ = ifs

    def customers(number: str) -> list[dict]:
        return [c for c in kit.state()["tables"].get("customer", []) if c.get("Cf_EmployeeNo") == number]

    uid = dep.gusto("POST", "/_sandbox/employees/hire", json={"employees": [
        {"first_name": "Sara", "last_name": "Kim", "title": "Analyst", "department": "Sales",
         "employee_code": "sk0001"}]}).json()["created"][0]
    [customer] = _wait_for("the hire", lambda: customers("sk0001"))
    assert customer["Name"] == "Sara Kim (sk0001)" and customer["Cf_Active"] is True
    emails = [m["Value"] for m in kit.state()["tables"]["customer_comm"] if m["CustomerId"] == customer["CustomerId"]]
    assert emails == ["sara.kim@example.com"]
    dep.gusto("POST", f"/_sandbox/employees/{uid}/terminate", json={"effective_date": "2024-03-31"})
    _wait_for("the termination", lambda: customers("sk0001")[0]["Cf_Active"] is False)
    assert len(customers("sk0001")) == 1
    with session_scope(dep.settings.database_url) as s:
        refs = s.scalars(select(ExternalRef).where(ExternalRef.source_id == uid)).all()
        assert [(r.target_type, r.target_id) for r in refs] == [("customer", customer["CustomerId"])]
    # matched by e-mail: IFS already holds existing.employee@example.com as customer 1001
    count = len(kit.state()["tables"]["customer"])
    dep.gusto("POST", "/_sandbox/employees/hire", json={"employees": [
        {"first_name": "Existing", "last_name": "Employee", "employee_code": "ee0001"}]})
    _wait_for("the match", lambda: [c for c in kit.state()["tables"]["customer"]
                                    if c["CustomerId"] == "1001" and c["Name"] == "Existing Employee (ee0001)"])
    assert len(kit.state()["tables"]["customer"]) == count
    assert [c["Cf_EmployeeNo"] for c in kit.state()["tables"]["customer"] if c["CustomerId"] == "1001"] == ["E-0001"]


def test_employees_as_project_resources_in_their_company(ifs):
    dep, kit, _ = ifs
    _set_ifs(dep, employee_sync="project_resource")

    def resources() -> list[dict]:
        return [r for r in kit.state()["tables"].get("project_resource", []) if r["ResourceId"] == "RS0001"]

    try:
        uid = dep.gusto("POST", "/_sandbox/employees/hire", json={"employees": [
            {"first_name": "Ravi", "last_name": "Shah", "title": "Account Executive", "department": "Sales",
             "employee_code": "rs0001"}]}).json()["created"][0]
        [resource] = _wait_for("the hire", resources)
        assert resource["Company"] == "30" and resource["Objstate"] == "Active"     # Sales → company 30
        assert resource["Description"] == "Ravi Shah (rs0001)" and resource["Email"] == "ravi.shah@example.com"
        dep.gusto("POST", f"/_sandbox/employees/{uid}/terminate", json={"effective_date": "2024-03-31"})
        _wait_for("the termination", lambda: resources()[0]["Objstate"] == "Inactive")
        assert len(resources()) == 1
    finally:
        _set_ifs(dep, employee_sync="customer")


def test_the_cli_connects_maps_and_pings_and_ledger_mappings_are_checked_against_ifs(ifs):
    from click.testing import CliRunner

    from connector_tasks.cli import main
    from connector_tasks.flows.mapping.edit import unset_mapping
    from sandbox.ifs_cloud.kit import CLIENT_ID, CLIENT_SECRET, NAMESPACE

    dep, kit, _ = ifs
    cli = CliRunner()

    def run(*args: str):
        return cli.invoke(main, list(args), catch_exceptions=False)

    r = run("ifs_cloud", "connect", "cli-ifs", "--system-url", kit.url, "--namespace", NAMESPACE,
            "--client-id", CLIENT_ID, "--client-secret", CLIENT_SECRET, "--default-company", "10",
            "--no-settlement", "--bank-account", "1090")
    assert r.exit_code == 0, r.output
    assert run("ifs_cloud", "map", "cli-ifs", "--department", "Sales", "--company", "30",
               "--cost-centre", "300").exit_code == 0
    assert run("ifs_cloud", "map", "cli-ifs", "--ledger", "Salaries Payable", "--account", "2100",
               "--code-part", "C=PRJ1").exit_code == 0
    bad = run("ifs_cloud", "map", "cli-ifs", "--ledger", "Salaries Payable", "--account", "2100", "--code-part", "Z=1")
    assert bad.exit_code == 1 and "code part 'Z'" in bad.output
    with session_scope(dep.settings.database_url) as s:
        conn = get_connection(s, "cli-ifs")
        assert (conn.settings["company_by_department"], conn.settings["cost_centre_by_department"],
                conn.settings["settlement"], conn.settings["bank_account"]) == ({"Sales": "30"}, {"Sales": "300"},
                                                                                False, "1090")
        assert "client_secret" not in str(conn.credentials)                   # encrypted
    r = run("ifs_cloud", "ping", "cli-ifs")
    assert r.exit_code == 0, r.output
    assert '"ok": true' in r.output and '"30"' in r.output
    # a ledger mapping on the Gusto connection is checked against IFS first
    r = run("mappings", "set", GUSTO_CONN, "net_pay", "Accrued Wages Nowhere")
    assert r.exit_code != 0 and "does not exist in IFS Cloud connection demo-ifs" in r.output
    try:
        assert run("mappings", "set", GUSTO_CONN, "net_pay", "Salaries Payable").exit_code == 0
    finally:
        unset_mapping(GUSTO_CONN, "ledger", "net_pay", scope=ALL_TENANTS)
