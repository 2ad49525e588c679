"""TallyPrime → ServiceTitan end to end with real parts: the Tally emulator and the agent
(``tally-worker``) polling it, real Redis, real Celery worker processes, the ServiceTitan
emulator over HTTP, on SQLite and PostgreSQL.

New voucher → one PO + one receipt; a second poll changes nothing; altered → the same PO
updated and received again, nothing duplicated; deleted → PO and receipt cancelled with a
reason; unmatched vendor and SKU → parked naming both, replayed after they exist → synced once;
a debit note → one return; a token expiring mid-run; a 429 storm within the budget; a poll
result answering no request is refused.
"""
from __future__ import annotations

import time
from decimal import Decimal

import pytest
from sqlalchemy import select

from connector_tasks.tenants import ALL_TENANTS
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, ExternalRef, SyncJob
from sandbox.servicetitan.kit import ServiceTitanKit
from tests.harness import DEMO_COMPANY_NAME, TALLY_CONN, TallyKit, deployment_on

pytestmark = pytest.mark.integration

FLOW = "purchase_to_order"
PARTY = "Ferguson Enterprises"
PIPE = {"item": "Copper pipe 3/4in", "part_number": "CU-PIPE-075", "quantity": "12", "rate": "38.50"}
CAP = {"item": "Run capacitor 45/5", "part_number": "CAP-45-5", "quantity": "3", "rate": "14.20"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dep(request, tmp_path_factory, redis_server, postgres_admin_url):
    from connector_tasks.connections import get_connection, write_settings

    st = ServiceTitanKit()
    st.start()
    folder = tmp_path_factory.mktemp(f"purchases-{request.param}")
    try:
        with deployment_on(request.param, folder, redis_server.url, postgres_admin_url,
                           overrides={"retry_base": 0.5}) as d:
            with session_scope(d.settings.database_url) as s:
                st.add_connection(s)
                write_settings(s, get_connection(s, TALLY_CONN), {"targets": [st.connection]})
            d.st = st
            d.tally = TallyKit(url=d.tally_url)
            yield d
    finally:
        st.stop()


def sync(dep, guid: str, *, status: str = "done", revision: int | None = None, timeout: float = 90) -> dict:
    """Poll Tally through the agent, then wait until the voucher's job is ``status`` (at
    ``revision`` when given)."""
    dep.tally.poll(wait=60)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = job_of(dep, guid)
        if job and job["status"] == status and (revision is None or job["revision"] >= revision):
            return job
        if job and job["status"] in ("done", "failed", "cancelled") and job["status"] != status \
                and (revision is None or job["revision"] >= revision):
            raise AssertionError(f"job ended {job['status']}: {job['last_error']}")
        time.sleep(0.2)
    raise AssertionError(f"job of {guid} not {status} within {timeout} s: {job_of(dep, guid)}")


def job_of(dep, guid: str) -> dict | None:
    with session_scope(dep.settings.database_url) as s:
        job = s.scalar(select(SyncJob).where(SyncJob.source_id == guid, SyncJob.flow == FLOW))
        return None if job is None else {"id": job.id, "status": job.status, "revision": job.revision,
                                         "target_ref": job.target_ref, "last_error": job.last_error,
                                         "warnings": job.warnings, "key": job.idempotency_key}


def pos_with(dep, key: str) -> list[dict]:
    t = dep.st.tenant()
    out = []
    for po in t["purchase_orders"]:
        if f"[mlc:{key}]" in (po.get("summary") or ""):
            out.append(dict(po, receipts=[r for r in t["receipts"] if r["purchaseOrderId"] == po["id"]]))
    return out


def the_po(dep, job: dict) -> dict:
    found = pos_with(dep, job["key"])
    assert len(found) == 1, found
    assert str(found[0]["id"]) == job["target_ref"]
    return found[0]


def active_items(po: dict) -> list[tuple[str, Decimal, Decimal]]:
    return sorted((str(i["skuId"]), Decimal(str(i["quantity"])), Decimal(str(i["cost"])))
                  for i in po["items"] if i.get("status", "Active") == "Active")


def sku_ids(dep) -> dict[str, int]:
    return {m["code"]: m["id"] for m in dep.st.tenant()["materials"]}


def test_new_voucher_becomes_one_received_po_and_a_second_poll_changes_nothing(dep):
    guid = dep.tally.fire_purchase(PARTY, [PIPE, CAP], reference="FE-INV-1001")
    job = sync(dep, guid)
    po = the_po(dep, job)
    ids = sku_ids(dep)
    assert po["status"] == "Received"
    assert active_items(po) == sorted([(str(ids["CU-PIPE-075"]), Decimal("12"), Decimal("38.50")),
                                       (str(ids["CAP-45-5"]), Decimal("3"), Decimal("14.20"))])
    vendor = next(v for v in dep.st.tenant()["vendors"] if v["name"] == PARTY)
    assert po["vendorId"] == vendor["id"] and po["vendorDocumentNumber"] == "FE-INV-1001"
    receipts = [r for r in po["receipts"] if r["active"]]
    assert len(receipts) == 1 and receipts[0]["vendorInvoiceNumber"] == "FE-INV-1001"
    assert Decimal(str(receipts[0]["receiptAmount"])) == Decimal("504.60")  # 12 x 38.50 + 3 x 14.20
    with session_scope(dep.settings.database_url) as s:
        refs = s.scalars(select(ExternalRef).where(ExternalRef.source_id == guid)).all()
        assert [(r.target_system, r.target_type, r.target_id) for r in refs] == [
            ("servicetitan", "purchase_order", job["target_ref"])]
    # nothing changed in Tally: the next poll stores nothing and writes nothing
    before = len(dep.st.tenant()["purchase_orders"])
    done = dep.tally.poll(wait=60)
    assert "0 changed vouchers" in done
    assert len(dep.st.tenant()["purchase_orders"]) == before
    assert len(pos_with(dep, job["key"])) == 1


def test_altered_voucher_updates_the_same_po_and_nothing_is_duplicated(dep):
    guid = dep.tally.fire_purchase(PARTY, [PIPE], reference="FE-INV-1002")
    first = sync(dep, guid)
    dep.tally.alter_purchase(guid, items=[{"item": PIPE["item"], "qty": "20", "rate": "38.50"},
                                          {"item": CAP["item"], "qty": "1", "rate": "14.25"}])
    job = sync(dep, guid, revision=first["revision"] + 1)
    assert job["target_ref"] == first["target_ref"]
    po = the_po(dep, job)
    ids = sku_ids(dep)
    assert po["status"] == "Received"
    assert active_items(po) == sorted([(str(ids["CU-PIPE-075"]), Decimal("20"), Decimal("38.50")),
                                       (str(ids["CAP-45-5"]), Decimal("1"), Decimal("14.25"))])
    active = [r for r in po["receipts"] if r["active"]]
    cancelled = [r for r in po["receipts"] if not r["active"]]
    assert len(active) == 1 and len(cancelled) == 1 and cancelled[0]["canceledReason"] == "Other"
    assert Decimal(str(active[0]["receiptAmount"])) == Decimal("784.25")
    from connector_tasks.store import repo

    with session_scope(dep.settings.database_url) as s:
        trail = repo.audit_trail(s, guid, scope=ALL_TENANTS)
    actions = [a["detail"].get("actions") for j in trail["jobs"] for a in j["attempts_log"]
               if a["phase"] == "post" and a["outcome"] == "ok"]
    assert ["found", f"receipt cancelled {cancelled[0]['id']}", "updated", f"received {active[0]['id']}"] in actions


def test_deleted_voucher_cancels_po_and_receipt_with_a_reason(dep):
    guid = dep.tally.fire_purchase(PARTY, [CAP], reference="FE-INV-1003")
    first = sync(dep, guid)
    dep.tally.delete_purchase(guid)
    job = sync(dep, guid, revision=first["revision"] + 1)
    po = the_po(dep, job)
    assert po["status"] == "Canceled"
    assert [r["active"] for r in po["receipts"]] == [False]
    assert po["receipts"][0]["canceledReason"] == "Other"


def test_cancelled_before_it_reached_servicetitan_ends_cancelled(dep):
    guid = dep.tally.fire_purchase("Nobody Supplies", [CAP], reference="X-1")
    dep.tally.cancel_purchase(guid)
    job = sync(dep, guid, status="cancelled")
    assert "nothing to cancel" in job["last_error"]
    assert pos_with(dep, job["key"]) == []


def test_unmatched_vendor_and_sku_parked_with_names_then_replayed_once(dep):
    from connector_tasks.jobs.replay import job_summaries, replay_job

    valve = {"item": "TXV valve R410A 3T", "part_number": "TXV-R410A-3T", "quantity": "2", "rate": "145.00"}
    guid = dep.tally.fire_purchase("Acme Valves Ltd", [valve, PIPE], reference="AV-77")
    job = sync(dep, guid, status="failed")
    assert "unmatched in ServiceTitan" in job["last_error"]
    assert "vendor 'Acme Valves Ltd'" in job["last_error"] and "SKU 'TXV-R410A-3T'" in job["last_error"]
    assert "CU-PIPE-075" not in job["last_error"]
    assert pos_with(dep, job["key"]) == []
    listed = next(j for j in job_summaries(ALL_TENANTS, status="failed") if j["id"] == job["id"])
    assert "TXV-R410A-3T" in listed["last_error"]
    # the vendor and the material are created in ServiceTitan; a replay syncs it once
    dep.st.admin("seed", {"vendors": [{"name": "Acme Valves Ltd"}],
                          "materials": [{"code": "TXV-R410A-3T", "description": "TXV valve R410A 3 ton",
                                         "cost": "145.00"}]})
    replay_job(job["id"], scope=ALL_TENANTS)
    deadline = time.monotonic() + 90
    while job_of(dep, guid)["status"] != "done":
        assert time.monotonic() < deadline, job_of(dep, guid)
        time.sleep(0.2)
    done = job_of(dep, guid)
    po = the_po(dep, done)
    assert po["status"] == "Received" and len([r for r in po["receipts"] if r["active"]]) == 1
    # a second replay of the done job writes nothing new
    replay_job(done["id"], scope=ALL_TENANTS)
    time.sleep(3)
    assert len(pos_with(dep, done["key"])) == 1
    assert len([r for r in pos_with(dep, done["key"])[0]["receipts"] if r["active"]]) == 1


def test_debit_note_becomes_one_return(dep):
    guid = dep.tally.fire_purchase(PARTY, [{**PIPE, "quantity": "1"}], kind="Debit Note", reference="RET-1")
    job = sync(dep, guid)
    returns = [r for r in dep.st.tenant()["returns"] if f"[mlc:{job['key']}]" in (r.get("memo") or "")]
    assert len(returns) == 1 and str(returns[0]["id"]) == job["target_ref"]
    assert Decimal(str(returns[0]["items"][0]["quantity"])) == Decimal("1")
    assert Decimal(str(returns[0]["items"][0]["cost"])) == Decimal("38.50")
    # ServiceTitan's API cannot cancel a return: a cancelled debit note leaves it, and says so
    dep.tally.cancel_purchase(guid)
    again = sync(dep, guid, revision=job["revision"] + 1)
    assert again["target_ref"] == job["target_ref"]
    from connector_tasks.store import repo

    with session_scope(dep.settings.database_url) as s:
        trail = repo.audit_trail(s, guid, scope=ALL_TENANTS)
    notes = [a["detail"].get("note") for j in trail["jobs"] for a in j["attempts_log"] if a["detail"]]
    assert any(n and "no cancellation of a return" in n for n in notes), notes
    assert [r["active"] for r in dep.st.tenant()["returns"] if str(r["id"]) == job["target_ref"]] == [True]


def test_token_expiring_mid_run_is_renewed_once(dep):
    before = dep.st.state()["counters"]["token_grants"]
    dep.st.admin("faults", {"expire_tokens": True})
    guid = dep.tally.fire_purchase(PARTY, [PIPE], reference="FE-INV-1004")
    job = sync(dep, guid)
    assert the_po(dep, job)["status"] == "Received"
    grants = dep.st.state()["counters"]["token_grants"] - before
    assert 1 <= grants <= 2  # renewed under the connection's lock, not once per request


def test_429_storm_stays_within_the_budget_and_syncs_once(dep):
    injected = dep.st.state()["counters"]["faults_injected"]
    dep.st.admin("faults", {"status": 429, "retry_after": 1, "count": 6, "path": "purchase-orders"})
    guid = dep.tally.fire_purchase(PARTY, [CAP, PIPE], reference="FE-INV-1005")
    job = sync(dep, guid, timeout=120)
    assert the_po(dep, job)["status"] == "Received"
    state = dep.st.state()
    assert state["counters"]["faults_injected"] - injected == 6     # every 429 of the storm was met
    assert state["rate"]["max_admitted_in_any_window"] <= 60
    assert len(pos_with(dep, job["key"])) == 1


def test_a_poll_result_answering_no_request_is_refused(dep):
    from connector_tasks.connectors.tallyprime.polling import record_tally_poll

    forged = {"request_id": "forged", "marks": {"voucher": 10 ** 9, "master": 0},
              "vouchers": [{"guid": "forged-guid", "alter_id": 5, "party_ledger": PARTY}],
              "state": {"voucher_alter_id": 10 ** 9, "master_alter_id": 0, "count": 1}, "current_guids": None}
    assert "refused" in record_tally_poll(TALLY_CONN, "forged", forged)
    assert job_of(dep, "forged-guid") is None
    with session_scope(dep.settings.database_url) as s:
        from connector_tasks.store import repo

        conn = s.scalar(select(Connection).where(Connection.name == TALLY_CONN))
        assert (repo.get_state(s, conn.id, "tally_purchase_poll") or {}).get("voucher_alter_id") != 10 ** 9


def test_ping_says_the_token_works_and_what_pos_use_and_bad_credentials_say_why(dep):
    from click.testing import CliRunner

    from connector_tasks.cli import main

    runner = CliRunner()
    done = runner.invoke(main, ["servicetitan", "ping", dep.st.connection])
    assert done.exit_code == 0, done.output
    assert "token works" in done.output and "'HVAC Service'" in done.output
    assert "'Standard'" in done.output and "'Main Warehouse'" in done.output
    done = runner.invoke(main, ["servicetitan", "connect", "wrong-st", "--tenant", "1000123456",
                                "--client-id", "cid.demo-servicetitan-tenant", "--client-secret", "nope",
                                "--app-key", "ak1.demo-servicetitan-app-key", "--api-url", dep.st.url,
                                "--auth-url", f"{dep.st.url}/connect/token"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(main, ["servicetitan", "ping", "wrong-st"])
    assert done.exit_code != 0 and "invalid_client" in done.output
    done = runner.invoke(main, ["servicetitan", "connect", "wrong-st", "--tenant", "1000123456",
                                "--client-id", "x", "--client-secret", "y", "--app-key", "z",
                                "--poll-interval-minutes", "20"])
    assert done.exit_code != 0


def test_beat_asks_for_a_poll_once_the_interval_has_passed(dep):
    from connector_tasks.connectors.tallyprime.polling import REQUEST_KEY, polls_due
    from connector_tasks.store import repo

    with session_scope(dep.settings.database_url) as s:
        conn = s.scalar(select(Connection).where(Connection.name == TALLY_CONN))
        last = repo.get_state(s, conn.id, REQUEST_KEY)
        repo.put_state(s, conn.id, {REQUEST_KEY: {**(last or {}), "sent_at": "2020-01-01T00:00:00+00:00"}})
    assert polls_due() == [TALLY_CONN]
    assert polls_due() == []  # the demo target says every 5 minutes: not due again yet


def test_protected_company_credentials_go_with_every_poll_request_and_a_wrong_password_says_why(dep):
    from connector_tasks import runtime
    from connector_tasks.connectors.tallyprime.polling import POLL_STATE_KEY, request_poll
    from connector_tasks.store import repo

    locked = TallyKit(url=dep.tally_url, company="Locked Traders")
    import requests

    requests.post(f"{dep.tally_url}/_sandbox/companies", json={
        "name": locked.company, "create": True, "books_from": "20200401", "username": "owner",
        "password": "s3cr&t<pw>"}, timeout=10).raise_for_status()

    def set_conn(account: str, creds: dict | None):
        with session_scope(dep.settings.database_url) as s:
            conn = s.scalar(select(Connection).where(Connection.name == TALLY_CONN))
            conn.account = account
            repo.write_credentials(conn, runtime.vault(), creds or {})
            repo.put_state(s, conn.id, {POLL_STATE_KEY: {}})

    def canceled() -> int:
        return sum(1 for po in dep.st.tenant()["purchase_orders"] if po["status"] == "Canceled")

    before = canceled()
    try:
        set_conn(locked.company, {"username": "owner", "password": "wrong"})
        answer = request_poll(TALLY_CONN, wait=60)
        assert answer["status"] == "error" and "AuthError" in answer["error"], answer
        from click.testing import CliRunner

        from connector_tasks.cli import main

        done = CliRunner().invoke(main, ["tallyprime", "login", TALLY_CONN, "--username", "owner",
                                         "--password", "s3cr&t<pw>"])
        assert done.exit_code == 0 and "s3cr" not in done.output, done.output
        with session_scope(dep.settings.database_url) as s:
            conn = s.scalar(select(Connection).where(Connection.name == TALLY_CONN))
            assert "s3cr" not in (conn.credentials or "")       # encrypted at rest
        seen = len(requests.get(f"{dep.tally_url}/_sandbox/state", timeout=30).json()["requests"])
        guid = locked.fire_purchase(PARTY, [PIPE], reference="LOCK-1")
        job = sync(dep, guid)
        assert the_po(dep, job)["status"] == "Received"
        sent = [r for r in requests.get(f"{dep.tally_url}/_sandbox/state", timeout=30).json()["requests"][seen:]
                if r.get("company", locked.company) == locked.company]
        assert sent and {r.get("credentials") for r in sent} == {"valid"}, sent
        # deleting this company's voucher cancels its PO, and only it: the vouchers of the
        # company the connection named before are not this company's deletions
        locked.delete_purchase(guid)
        sync(dep, guid, revision=job["revision"] + 1)
        assert the_po(dep, job)["status"] == "Canceled"
        assert canceled() == before + 1
    finally:
        set_conn(DEMO_COMPANY_NAME, None)
