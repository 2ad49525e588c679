"""AcumaticaClient and the adapter against the Acumatica emulator over real HTTP (https://help.myob.com.au/advanced/Docs/Published/IntegrationDevelopmentGuide/)."""
from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal

import pytest
import redis as redis_lib
import requests

from connector_tasks.connectors.acumatica.adapter import AcumaticaLedgerTarget, sync_employee
from connector_tasks.connectors.acumatica.client import AcumaticaClient
from connector_tasks.connectors.acumatica.limits import ConcurrencySlots
from connector_tasks.connectors.acumatica.mapping import GlAccount, resolve_accounts
from connector_tasks.core.errors import ConfigurationError, MappingError, RateLimitedError, RejectedError
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, JournalLine
from sandbox.acumatica.server import serve
from tests.support.oauth import InMemoryTokenStore

CLIENT_ID = "88358B02-A48D-A50E-F710-39C1636C30F6@Company"


@pytest.fixture
def site():
    servers = []

    def start(config: dict | None = None):
        server, base = serve("127.0.0.1", 0, config, env="test")
        servers.append(server)
        world = server.app.extensions["acumatica"]
        return base, world

    yield start
    for s in servers:
        s.shutdown()


def client(base, auth="oauth", version="24.200.001", **kw):
    return AcumaticaClient(base, version, auth=auth, client_id=CLIENT_ID, client_secret="demo-acumatica-secret",
                           username="admin", password="setup", tenant="Company",
                           token_store=kw.pop("token_store", InMemoryTokenStore()), **kw)


def entry(key="gusto-payroll-p1", acct_ledger="Salaries Payable"):
    return JournalEntry(key=key, date=dt.date(2021, 2, 22), narration="Gusto payroll p1", source_ref="p1", lines=(
        JournalLine("Salaries & Wages", "gross_wages", debit=Decimal("2791.25")),
        JournalLine(acct_ledger, "net_pay", credit=Decimal("2791.25"))))


def test_wrong_endpoint_version_is_a_configuration_error_naming_it(site):
    base, _ = site()
    with pytest.raises(ConfigurationError, match="25.100.001"):
        client(base, version="25.100.001").account_codes()


def test_oauth_refresh_rotates_and_the_old_refresh_token_is_dead(site):
    base, world = site({"access_token_ttl": 1})
    store = InMemoryTokenStore()
    c = client(base, token_store=store)
    assert "60000" in c.account_codes()
    first = store.load()
    assert first.refresh_token
    assert c.subaccount_codes() >= {"000-000"}   # token within the refresh margin → refreshed
    second = store.load()
    assert second.refresh_token != first.refresh_token and store.saves == 2
    r = requests.post(f"{base}/identity/connect/token", data={
        "grant_type": "refresh_token", "refresh_token": first.refresh_token, "client_id": CLIENT_ID,
        "client_secret": "demo-acumatica-secret"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"
    assert world.counters["token_grants"] == 2


def test_cookie_session_is_logged_out_even_when_the_work_fails(site):
    base, world = site()
    c = client(base, auth="cookie")
    with pytest.raises(MappingError):
        with c:
            AcumaticaLedgerTarget(c, {"Salaries & Wages": GlAccount("60000", "000-000"),
                                      "Salaries Payable": GlAccount("99999", "000-000")},
                                  branch="HEADOFFICE").post_journal(entry())
    assert world.state()["open_sessions"] == 0
    assert world.counters["logins"] == 1 and world.counters["logouts"] == 1


def test_missing_account_is_refused_before_any_write_with_its_code(site):
    base, world = site()
    accounts = resolve_accounts(["Salaries & Wages"], {"Salaries Payable": {"ledger": "29999", "subaccount": "9-9"}}) | \
        resolve_accounts(["Salaries Payable"], {"Salaries Payable": {"ledger": "29999", "subaccount": "9-9"}})
    with pytest.raises(MappingError) as exc:
        AcumaticaLedgerTarget(client(base), accounts, branch="HEADOFFICE").post_journal(entry())
    assert "account 29999" in exc.value.message and "subaccount 9-9" in exc.value.message
    assert world.counters["journal_put_attempts"] == 0


def test_per_field_and_per_line_errors_become_rejected_lines(site):
    base, world = site()
    c = client(base)
    body = {"Module": "GL", "BranchID": "NOWHERE", "LedgerID": "ACTUAL", "Details": [
        {"Account": "60000", "Subaccount": "000-000", "DebitAmount": Decimal("1.00"), "CreditAmount": Decimal("0")},
        {"Account": "99999", "Subaccount": "000-000", "DebitAmount": Decimal("0"), "CreditAmount": Decimal("1.00")}]}
    with pytest.raises(RejectedError) as exc:
        c.put_entity("JournalTransaction", body, insert_only=True)
    assert exc.value.status == 422 and not exc.value.retryable
    assert exc.value.lines == ["BranchID 'NOWHERE': Branch 'NOWHERE' cannot be found in the system.",
                               "Details line 2: Account '99999': 'Account' cannot be found in the system. 99999"]
    assert world.counters["journal_writes"] == 0


def test_release_polls_202_until_204_and_the_batch_is_posted(site):
    base, world = site({"release_polls": 2})
    target = AcumaticaLedgerTarget(client(base), resolve_accounts(["Salaries & Wages", "Salaries Payable"]),
                                   branch="HEADOFFICE", release=True)
    batch = target.post_journal(entry())
    assert target.journal_status("gusto-payroll-p1") == (batch, "Posted")
    polls = [r for r in world.requests_log if "/status/" in r["path"]]
    assert [r["status"] for r in polls] == [202, 202, 204]


def test_login_limit_is_retried_and_429_per_minute_is_rate_limited(site):
    base, world = site({"api_user_limit": 1})
    holder = client(base, auth="cookie")
    holder.login()
    waiter = client(base, auth="cookie", login_attempts=2)
    with pytest.raises(RateLimitedError, match="API Login Limit"):
        waiter.login()
    assert world.counters["login_limit_refusals"] == 2
    threading.Timer(0.2, holder.close).start()
    with client(base, auth="cookie", login_attempts=5) as c:   # frees up while it backs off
        assert "60000" in c.account_codes()
    assert world.state()["open_sessions"] == 0
    base2, _ = site({"requests_per_minute": 2})
    c2 = client(base2, auth="cookie")
    with pytest.raises(RateLimitedError) as exc:
        with c2:
            c2.account_codes()
            c2.account_codes()
    assert exc.value.status == 429 and exc.value.retry_after and exc.value.retry_after > 0


def test_concurrent_request_slots_bound_requests_in_flight(site, redis_server):
    base, world = site({"latency": 0.15})
    r = redis_lib.Redis.from_url(redis_server.url)
    slots = ConcurrencySlots(r, "contract-slots", 2, lease=10)
    errors = []

    def work():
        try:
            client(base, slots=slots).account_codes()
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert not errors
    assert world.max_in_flight <= 2
    assert slots.in_use() == 0


def test_employee_created_then_unchanged_then_altered_matched_by_id_then_email(site):
    base, world = site()
    c = client(base)
    m = EmployeeMaster(key="e1", name="Maya Patel (a1f001)", group="Operations", email="maya@example.com")
    eid, action = sync_employee(c, m, department="OPERATIONS", known_id=None)
    assert action == "created" and eid.startswith("EP")
    assert sync_employee(c, m, department="OPERATIONS", known_id=eid) == (eid, "unchanged")
    gone = EmployeeMaster(key="e1", name="Maya Patel (a1f001)", group="Operations", email="maya@example.com",
                          deactivation_date=dt.date(2024, 5, 31))
    assert sync_employee(c, gone, department="OPERATIONS", known_id=None) == (eid, "altered")  # by e-mail
    [emp] = world.state()["employees"]
    assert emp["Status"] == "Inactive" and emp["EmployeeSettings"]["DepartmentID"] == "OPERATIONS"
    with pytest.raises(RejectedError, match="Department"):
        sync_employee(c, EmployeeMaster(key="e2", name="X"), department="NOPE", known_id=None)
