"""The masters snapshot end to end: the cloud side asks, the real tally agent process exports
from the TallyPrime emulator over HTTP, a real default-queue worker stores it (real Redis)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from connector_tasks.connectors.tallyprime.reference import missing_ledgers, request_masters_snapshot
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection
from tests.harness import DEMO_COMPANY_NAME, TALLY_CONN
from tests.harness import deployment_on

pytestmark = pytest.mark.integration


def test_snapshot_comes_back_through_agent_and_worker(tmp_path, redis_server, postgres_admin_url):
    with deployment_on("sqlite", tmp_path, redis_server.url, postgres_admin_url) as dep:
        snap = request_masters_snapshot(TALLY_CONN, wait=90)
        assert snap["company"] == DEMO_COMPANY_NAME
        assert snap["ledgers"]["Cash"] == "Cash-in-Hand"
        assert "Primary Cost Category" in snap["cost_categories"]
        assert missing_ledgers(snap, ["Cash", "Bank of Nowhere"]) == ["Bank of Nowhere"]
        with session_scope(dep.settings.database_url) as s:
            conn = s.scalar(select(Connection).where(Connection.name == TALLY_CONN))
            assert repo.get_state(s, conn.id, "tally_masters")["request_id"] == snap["request_id"]
        again = request_masters_snapshot(TALLY_CONN, wait=90)
        # a fresh snapshot each time; the reference-data job of the connect may have added
        # ledgers in between, never removed one
        assert again["request_id"] != snap["request_id"]
        assert snap["ledgers"].items() <= again["ledgers"].items()
