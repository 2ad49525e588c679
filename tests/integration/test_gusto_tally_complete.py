"""Gusto → TallyPrime beyond the payroll journal, end to end with real workers and emulators:
employees as cost-centre masters, earning types as ledgers, the polling fallback, reversals,
mappings validated against Tally and the audit trail. On SQLite and on PostgreSQL."""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent, SyncAttempt, SyncJob
from connector_tasks.tenants import ALL_TENANTS
from tests.harness import DEMO_COMPANY_NAME, GUSTO_CONN

pytestmark = pytest.mark.integration


def company(dep) -> dict:
    return next(c for c in dep.tally_state()["companies"] if c["name"] == DEMO_COMPANY_NAME)


def wait_until(fn, timeout: float = 60.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def job_of(dep, flow: str, source_id: str) -> SyncJob | None:
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.flow == flow, SyncJob.source_id == source_id))
        if job is not None:
            s.expunge(job)
        return job


def finished(dep, flow: str, source_id: str) -> SyncJob:
    job = wait_until(lambda: (j := job_of(dep, flow, source_id)) and j.status in ("done", "failed") and j,
                     90, f"{flow} job of {source_id}")
    assert job.status == "done", job.last_error
    return job


def test_reference_data_on_connect_made_a_ledger_per_earning_type(deployment):
    job = wait_until(lambda: (j := job_of(deployment, "reference_data",
                                         "6bf7807c-a5a0-4f4d-b2e7-3fbb4b2299fb:reference-data"))
                     and j.status == "done" and j, 60, "reference data")
    ledgers = {l["name"]: l for l in company(deployment)["ledgers"]}
    for et in ("Bonus", "Cash Tips", "Commission", "Severance"):
        assert ledgers[f"Wages - {et}"]["parent"] == "Indirect Expenses"
    assert "Salaries Payable" in ledgers
    with session_scope(deployment.settings.database_url) as s:
        from connector_tasks.store.models import Connection

        conn = s.scalar(select(Connection).where(Connection.name == GUSTO_CONN))
        assert repo.get_state(s, conn.id, "pay_schedules")[0]["frequency"] == "Twice per month"
    assert job.target_ref


def test_hire_job_change_and_termination_give_one_master_altered_twice_then_deactivated(deployment):
    r = deployment.gusto("POST", "/_sandbox/employees/hire", json={"employees": [
        {"first_name": "Priya", "last_name": "Nair", "title": "Picker", "department": "Operations",
         "hire_date": "2024-04-01", "employee_code": "pn0001"}]})
    uid = r.json()["created"][0]
    name = "Priya Nair (pn0001)"

    def centre():
        found = [c for c in company(deployment)["cost_centres"] if c["name"] == name]
        return found[0] if found else None

    created = wait_until(centre, 60, "the hire's cost centre")
    assert created["alter_count"] == 0 and created["designation"] == "Picker"
    finished(deployment, "employee_to_master", uid)

    deployment.gusto("PATCH", f"/_sandbox/employees/{uid}", json={"title": "Shift Supervisor", "department": "Logistics"})
    wait_until(lambda: (c := centre()) and c["alter_count"] == 1 and c, 60, "the job change")
    deployment.gusto("POST", f"/_sandbox/employees/{uid}/terminate", json={"effective_date": "2024-09-30"})
    after = wait_until(lambda: (c := centre()) and c.get("deactivation_date") and c, 60, "the termination")
    finished(deployment, "employee_to_master", uid)
    time.sleep(1.0)  # terminated + terminated_effective: the second sync finds nothing to change
    after = centre()
    same_key = [c for c in company(deployment)["cost_centres"] if c["name"].endswith("(pn0001)")]
    assert len(same_key) == 1, "an Alter must never create a second master"
    assert after["alter_count"] == 2
    assert after["designation"] == "Shift Supervisor" and after["parent"] == "Logistics"
    assert after["deactivation_date"] in ("20240930", "2024-09-30")
    assert [h["action"] for h in after["history"]] == ["create", "alter", "alter"]

    result = CliRunner().invoke(__import__("connector_tasks.cli", fromlist=["main"]).main, ["audit", uid])
    assert result.exit_code == 0, result.output
    assert "employee.created" in result.output and "employee.terminated" in result.output
    assert "employee_to_master" in result.output and "cost_centre" in result.output


def test_a_payroll_paying_a_new_earning_type_creates_its_ledger_first(deployment):
    deployment.gusto("POST", "/_sandbox/earning_types", json={"name": "Night Shift Allowance"})
    pid = deployment.gusto("POST", "/_sandbox/payrolls", json={
        "compensations": 2, "check_date": "2021-03-19", "start_date": "2021-03-01", "end_date": "2021-03-15",
        "earnings": [{"name": "Night Shift Allowance", "amount": "150.00"}]}).json()["payroll_uuid"]
    deployment.gusto("POST", f"/_sandbox/payrolls/{pid}/process")
    job = finished(deployment, "payroll_to_journal", pid)
    c = company(deployment)
    ledgers = {l["name"]: l for l in c["ledgers"]}
    assert ledgers["Wages - Night Shift Allowance"]["parent"] == "Indirect Expenses"
    voucher = next(v for v in c["vouchers"] if v["remote_id"] == f"gusto-payroll-{pid}")
    lines = dict(l.rsplit(": ", 1) for l in voucher["lines"])
    assert Decimal(lines["Wages - Night Shift Allowance"]) == Decimal("-150.00")
    assert Decimal(lines["Wages - Bonus"]) == Decimal("-200.00")  # the example's Bonus, 2 employees
    assert sum(Decimal(v) for v in lines.values()) == 0
    assert job.target_ref


def test_a_webhook_dropped_on_the_floor_is_recovered_by_the_poll(deployment):
    deployment.gusto("POST", "/_sandbox/deliveries/drop", json={"count": 1})
    pid = deployment.gusto("POST", "/_sandbox/payrolls", json={
        "compensations": 1, "check_date": "2021-04-02", "start_date": "2021-03-16",
        "end_date": "2021-03-31"}).json()["payroll_uuid"]
    event = deployment.gusto("POST", f"/_sandbox/payrolls/{pid}/process").json()["event"]
    time.sleep(1.0)
    assert job_of(deployment, "payroll_to_journal", pid) is None  # nothing arrived
    from connector_tasks.celery_app import app

    app.send_task("gusto.poll_all")  # what beat sends every GUSTO_POLL_SECONDS
    finished(deployment, "payroll_to_journal", pid)
    with session_scope(deployment.settings.database_url) as s:
        ev = s.scalar(select(InboundEvent).where(InboundEvent.event_uuid == event["uuid"]))
        assert ev.source == "poll" and ev.deliveries == 1
    # a second poll finds nothing new: everything Gusto keeps is already in the store
    from connector_tasks.connectors.gusto.source import poll_events

    again = poll_events(GUSTO_CONN)
    assert again["new"] == 0
    assert len([v for v in company(deployment)["vouchers"] if v["remote_id"] == f"gusto-payroll-{pid}"]) == 1


def test_a_reversal_after_posting_yields_a_reversing_voucher_that_nets_to_zero(deployment):
    pid = deployment.gusto("POST", "/_sandbox/payrolls", json={
        "compensations": 2, "check_date": "2021-04-16", "start_date": "2021-04-01",
        "end_date": "2021-04-15"}).json()["payroll_uuid"]
    deployment.gusto("POST", f"/_sandbox/payrolls/{pid}/process")
    original = finished(deployment, "payroll_to_journal", pid)
    deployment.gusto("POST", f"/_sandbox/payrolls/{pid}/reverse")
    reversal = finished(deployment, "payroll_reversal", pid)
    vouchers = {v["remote_id"]: v for v in company(deployment)["vouchers"]}
    orig_v, rev_v = vouchers[f"gusto-payroll-{pid}"], vouchers[f"gusto-payroll-{pid}-reversal"]
    net: dict[str, Decimal] = {}
    for v in (orig_v, rev_v):
        for line in v["lines"]:
            ledger, amount = line.rsplit(": ", 1)
            net[ledger] = net.get(ledger, Decimal("0")) + Decimal(amount)
    assert set(net.values()) == {Decimal("0.00")}
    assert original.target_ref in rev_v["narration"]
    assert reversal.payload["reverses"]["job"] == original.id
    # a redelivered reversal posts nothing new
    result = CliRunner().invoke(__import__("connector_tasks.cli", fromlist=["main"]).main, ["audit", pid])
    assert "payroll_reversal" in result.output and f"reverses job #{original.id}" in result.output


def test_a_mapping_to_a_missing_ledger_is_refused_with_its_name(deployment):
    from connector_tasks.core.errors import MappingError
    from connector_tasks.flows.mapping.edit import set_mapping, show

    with pytest.raises(MappingError, match="'HDFC Salary A/c' does not exist"):
        set_mapping(GUSTO_CONN, "ledger", "net_pay", "HDFC Salary A/c", scope=ALL_TENANTS)
    assert not next(c for c in show(GUSTO_CONN, scope=ALL_TENANTS)["components"] if c["component"] == "net_pay")["mapped"]
    row = set_mapping(GUSTO_CONN, "ledger", "net_pay", "Salaries Payable", scope=ALL_TENANTS)  # exists (reference data)
    assert row["ledger"] == "Salaries Payable"
    cli = __import__("connector_tasks.cli", fromlist=["main"]).main
    out = CliRunner().invoke(cli, ["mappings", "set", GUSTO_CONN, "Bonus", "Staff Bonus", "--earning-type"])
    assert out.exit_code != 0 and "'Staff Bonus' does not exist" in out.output


def test_backfill_posts_each_processed_payroll_of_the_range_once_with_progress(deployment):
    cli = __import__("connector_tasks.cli", fromlist=["main"]).main
    pids = []
    for start, end, check in (("2022-01-01", "2022-01-15", "2022-01-20"), ("2022-01-16", "2022-01-31", "2022-02-04")):
        pids.append(deployment.gusto("POST", "/_sandbox/payrolls", json={
            "compensations": 1, "start_date": start, "end_date": end, "check_date": check}).json()["payroll_uuid"])
    # processed at Gusto before the connector existed: no webhook ever came for them
    out = CliRunner().invoke(cli, ["backfill", GUSTO_CONN, "--from", "2022-01-01", "--to", "2022-01-31",
                                   "--timeout", "120"])
    assert out.exit_code == 0, out.output
    assert "2 processed payroll(s)" in out.output and "done 2" in out.output
    remote = [v["remote_id"] for v in company(deployment)["vouchers"]]
    assert all(remote.count(f"gusto-payroll-{p}") == 1 for p in pids)
    time.sleep(1.0)  # a second hand-off of the same event (e.g. by the relay) would route it again
    with session_scope(deployment.settings.database_url) as s:
        for pid in pids:  # each backfilled event was handed to the broker once: one Gusto step
            job = s.scalar(select(SyncJob).where(SyncJob.source_id == pid))
            prepares = s.scalars(select(SyncAttempt).where(SyncAttempt.job_id == job.id,
                                                           SyncAttempt.phase == "prepare")).all()
            assert len(prepares) == 1, [(a.outcome, a.task_id) for a in prepares]
    again = CliRunner().invoke(cli, ["backfill", GUSTO_CONN, "--from", "2022-01-01", "--to", "2022-01-31",
                                     "--timeout", "60"])
    assert again.exit_code == 0, again.output
    remote = [v["remote_id"] for v in company(deployment)["vouchers"]]
    assert all(remote.count(f"gusto-payroll-{p}") == 1 for p in pids)
    bad = CliRunner().invoke(cli, ["backfill", GUSTO_CONN, "--from", "2022-02-01", "--to", "2022-01-01"])
    assert bad.exit_code == 1 and "is before --from" in bad.output
