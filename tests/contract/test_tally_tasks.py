"""The Tally agent's tasks run in-process (Celery ``apply``) against the emulator over HTTP,
with real Redis for the Tally lock; what they report is captured where the agent's outbox would
take it. The masters snapshot goes through the cloud's checked recording
(``connector.record_agent_report``: its capability verified) into a real store (SQLite and
PostgreSQL)."""
import json
import datetime as dt
import threading
from decimal import Decimal

import pytest
from sqlalchemy import select

from config.settings import Settings, set_settings
from connector_tasks.agents import outbox
from connector_tasks.agents.collector import record_agent_report
from connector_tasks.agents.models import Agent
from connector_tasks.connectors.tallyprime import reference, tasks
from connector_tasks.connectors.tallyprime.target import employee_payload, journal_payload
from connector_tasks.core.errors import ConfigurationError, TransientApiError
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, JournalLine, LedgerMaster
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection

COMPANY = "Demo Trading Co"


@pytest.fixture
def agent(tally, redis_server, tmp_path, monkeypatch):
    """Settings pointing at the emulator; ``reports`` collects what the tasks report."""
    set_settings(Settings.from_env({"INSTANCE_PATH": str(tmp_path), "ML_CONNECTOR_ENV": "test"})
                 .with_overrides(redis_url=redis_server.url, database_url=f"sqlite:///{tmp_path / 'unused.db'}")
                 .with_env(TALLY_URL=tally.url))
    reports = []

    def push(report):
        if report["kind"] == "outcome":
            reports.append((report["job_id"], report["outcome"]))

    monkeypatch.setattr(outbox, "push_report", push)
    monkeypatch.setattr(tasks, "push_report", push)
    return reports


def test_post_journal_with_unknown_user_ledger_is_parked_naming_it(agent, tally):
    entry = JournalEntry("gusto-payroll-p7", dt.date(2024, 1, 31), "Payroll", (
        JournalLine("Salaries & Wages", "gross_wages", debit=Decimal("100.00")),
        JournalLine("Bank of Nowhere", "net_pay", credit=Decimal("100.00"))), "p7")
    target = Connection(name="site", system="tallyprime", account=COMPANY)
    payload = journal_payload(None, target, entry, [LedgerMaster("Salaries & Wages", "Indirect Expenses")])
    assert payload["dispatch"] == {"task": "tally.post_journal", "queue": "tally.site", "agent": "site"}
    tasks.post_journal.apply(args=[7, payload])
    [(job_id, outcome)] = agent
    assert job_id == 7 and outcome["result"] == "failed"
    assert "'Bank of Nowhere'" in outcome["error"] and COMPANY in outcome["error"]
    assert "MappingError" in outcome["error"]
    state = tally.state()
    assert [r for r in state["requests"] if r["tallyrequest"] == "Import"] == []
    company = state["companies"][0]
    assert company["vouchers"] == [] and "Salaries & Wages" not in {l["name"] for l in company["ledgers"]}


def test_sync_employee_task_reports_cost_centre_with_action(agent, tally):
    target = Connection(name="site", system="tallyprime", account=COMPANY)
    master = EmployeeMaster(key="emp-1", name="Bo Chen (E2)", group="Sales", designation="Rep",
                            joining_date=dt.date(2022, 5, 1))
    payload = employee_payload(None, target, master)
    assert payload == {"master": master.to_dict(), "company": COMPANY,
                       "dispatch": {"task": "tally.sync_employee", "queue": "tally.site", "agent": "site"}}
    tasks.sync_employee.apply(args=[3, payload])
    tasks.sync_employee.apply(args=[3, payload])
    payload["master"]["deactivation_date"] = "2024-02-29"
    tasks.sync_employee.apply(args=[3, payload])
    outcomes = [o for _, o in agent]
    assert [o["result"] for o in outcomes] == ["ok", "ok", "ok"]
    assert [o["detail"]["action"] for o in outcomes] == ["created", "unchanged", "altered"]
    assert {o["target_type"] for o in outcomes} == {"cost_centre"}
    assert len({o["target_id"] for o in outcomes}) == 1
    assert outcomes[0]["detail"]["name"] == "Bo Chen (E2)"


def test_sync_employee_task_retries_while_tally_is_down(agent, tally):
    tally.fault(unload_company=COMPANY)
    payload = employee_payload(None, Connection(name="site", system="tallyprime", account=COMPANY),
                               EmployeeMaster(key="emp-2", name="Cy Diaz (E3)"))
    tasks.sync_employee.apply(args=[4, payload])
    assert agent[0][1]["result"] == "retry" and "not loaded" in agent[0][1]["error"]


@pytest.fixture
def store(database_url, agent, monkeypatch):
    """A migrated store holding Tally connection ``site`` and its registered agent; the broker
    is replaced by threads: the agent's lane runs ``tally.report_masters`` as the agent would,
    and its outbox report goes to ``connector.record_agent_report`` as the collector would."""
    from config.settings import get_settings
    from connector_tasks.agents import lanes
    set_settings(get_settings().with_overrides(database_url=database_url))
    with session_scope(database_url) as s:
        s.add(Connection(name="site", system="tallyprime", account=COMPANY, settings={"keep": 1}))
        s.add(Connection(name="g", system="gusto", settings={}))
        s.add(Agent(connections=["site"], state="active"))
        s.flush()
        agent_id = s.scalar(select(Agent.id))
    sent, recorded = [], []

    def push(report):
        recorded.append(record_agent_report(agent_id, json.dumps(report)))

    monkeypatch.setattr(tasks, "push_report", push)

    def publish(agent, queue, task, args, kwargs=None):
        sent.append((task, queue, agent))
        if not getattr(publish, "drop", False):
            threading.Thread(target=tasks.report_masters.apply, kwargs={"args": args, "kwargs": kwargs}).start()

    monkeypatch.setattr(lanes, "publish", publish)
    publish.sent, publish.recorded, publish.agent_id = sent, recorded, agent_id
    return publish


def test_masters_snapshot_round_trip_is_stored_on_the_connection(store, tally, database_url):
    snap = reference.request_masters_snapshot("site", wait=20)
    assert store.sent == [("tally.report_masters", "tally.site", store.agent_id)]
    assert store.recorded == ["recorded"]
    assert snap["ledgers"]["Cash"] == "Cash-in-Hand" and snap["company"] == COMPANY
    assert "Primary Cost Category" in snap["cost_categories"]
    assert isinstance(snap["alter_ids"]["master"], int) and snap["fetched_at"]
    with session_scope(database_url) as s:
        conn = s.scalar(select(Connection).where(Connection.name == "site"))
        assert repo.get_state(s, conn.id, "tally_masters") == snap and conn.settings["keep"] == 1
        assert repo.get_state(s, conn.id, "tally_masters_request")["error"] is None
    assert reference.missing_ledgers(snap, ["cash", "Bank of Nowhere", "Bank of Nowhere"]) == ["Bank of Nowhere"]


def test_snapshot_errors_and_silence_are_reported_clearly(store, tally, database_url):
    with pytest.raises(ConfigurationError, match="gusto"):
        reference.request_masters_snapshot("g", wait=1)
    with pytest.raises(ConfigurationError, match="no connection"):
        reference.request_masters_snapshot("nope", wait=1)
    tally.fault(unload_company=COMPANY)
    with pytest.raises(TransientApiError, match="is not loaded"):
        reference.request_masters_snapshot("site", wait=20)
    store.drop = True
    with pytest.raises(TransientApiError, match="did not answer within 0.5 s"):
        reference.request_masters_snapshot("site", wait=0.5)
