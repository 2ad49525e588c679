"""200 employees hired at once: every hire ends as its own Tally cost centre, and Gusto sees no
more than 200 requests in any 60 s (its real limit, real time). PostgreSQL store; this test
runs for a bit over a minute because the budget makes it wait."""
from __future__ import annotations

import time

import pytest
import requests
from sqlalchemy import func, select

from connector_tasks.store.db import session_scope
from connector_tasks.store.models import SyncJob
from tests.harness import DEMO_COMPANY_NAME
from tests.harness import deployment_on

pytestmark = pytest.mark.integration

HIRES = 200


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, redis_server, postgres_admin_url):
    folder = tmp_path_factory.mktemp("bulk-hire")
    with deployment_on("postgresql", folder, redis_server.url, postgres_admin_url) as d:
        yield d


def test_200_hires_at_once_stay_within_gustos_budget_and_end_as_200_masters(deployment):
    started = deployment.gusto("GET", "/_sandbox/state").json()["now"]
    r = deployment.gusto("POST", "/_sandbox/employees/hire",
                         json={"count": HIRES, "department": "Warehouse", "title": "Associate"})
    hired = set(r.json()["created"])
    assert len(hired) == HIRES

    def done() -> int:
        with session_scope(deployment.settings.database_url) as s:
            return s.scalar(select(func.count()).select_from(SyncJob).where(
                SyncJob.flow == "employee_to_master", SyncJob.source_id.in_(hired), SyncJob.status == "done"))

    deadline = time.monotonic() + 300
    while done() < HIRES:
        assert time.monotonic() < deadline, f"only {done()} of {HIRES} hires synced"
        deployment.services.check_alive()
        time.sleep(1.0)
    with session_scope(deployment.settings.database_url) as s:
        parked = s.scalars(select(SyncJob).where(SyncJob.status == "failed")).all()
        assert not parked, [j.last_error for j in parked]

    company = next(c for c in deployment.tally_state()["companies"] if c["name"] == DEMO_COMPANY_NAME)
    hires = [c for c in company["cost_centres"] if c["name"].startswith("Hire")]
    assert len(hires) == HIRES and len({c["name"] for c in hires}) == HIRES
    assert {c["parent"] for c in hires} == {"Warehouse"}

    log = requests.get(f"{deployment.gusto_url}/_sandbox/requests", timeout=30).json()
    times = sorted(r["time"] for r in log if r["path"].startswith("/v1/") and r["time"] >= started)
    assert len(times) >= HIRES  # each hire was read from Gusto
    worst = max(sum(1 for t in times[i:] if t < start + 60) for i, start in enumerate(times))
    assert worst <= 200
    statuses = [r.get("status") for r in log if r["path"].startswith("/v1/") and r["time"] >= started]
    assert 429 not in statuses  # our budget held, Gusto never had to refuse
