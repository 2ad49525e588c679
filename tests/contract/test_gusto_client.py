"""GustoClient against the emulator over real HTTP; what it sends is checked against the spec."""
import datetime as dt
import json
import threading
import time
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from connector_tasks.connectors.gusto import GustoClient, GustoPayrollSource
from connector_tasks.core.errors import (
    AuthError, ConfigurationError, RateLimitedError, RejectedError, TransientApiError,
)
from connector_tasks.core.oauth import TokenSet
from sandbox.gusto.app import COMPANY_UUID, PAYROLL_UUID
from tests.support.oauth import InMemoryTokenStore


def connect(base, store=None, **kw):
    """A client with tokens from the real consent + code exchange flow."""
    store = store or InMemoryTokenStore()
    client = GustoClient(base, "demo-client-id", "demo-client-secret", store, **kw)
    url = client.authorization_url("http://localhost/cb", "st8")
    r = requests.post(base + "/oauth/authorize", allow_redirects=False, timeout=5,
                      data={**{k: v[0] for k, v in parse_qs(urlsplit(url).query).items()
                               if k in ("client_id", "redirect_uri", "state")}})
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    tokens = client.exchange_code(code, "http://localhost/cb")
    assert store.load() == tokens and tokens.company_uuid == COMPANY_UUID
    return client, store


def log(base, path=None):
    entries = requests.get(base + "/_sandbox/requests", timeout=5).json()
    return [e for e in entries if path is None or e["path"] == path]


def test_authorization_url_shape():
    c = GustoClient("https://api.gusto-demo.com/", "cid", "sec", InMemoryTokenStore())
    u = urlsplit(c.authorization_url("https://app.example/cb?a=1", "s t"))
    assert (u.netloc, u.path) == ("api.gusto-demo.com", "/oauth/authorize")
    assert parse_qs(u.query) == {"client_id": ["cid"], "redirect_uri": ["https://app.example/cb?a=1"],
                                 "response_type": ["code"], "state": ["s t"]}


def test_get_payroll_decimals_and_spec_valid_query(gusto_emulator, validate_gusto_request):
    base = gusto_emulator()
    client, _ = connect(base)
    data = client.get_payroll(COMPANY_UUID, PAYROLL_UUID)
    assert data["totals"]["gross_pay"] == "130635.89"
    assert data["payroll_taxes"][0]["amount"] == Decimal("3546.72")
    assert type(data["employee_compensations"][2]["taxes"][0]["amount"]) is Decimal
    entry = log(base, f"/v1/companies/{COMPANY_UUID}/payrolls/{PAYROLL_UUID}")[-1]
    assert entry["query"] == {"include": ["benefits,deductions,taxes,totals,payroll_taxes,payroll_status_meta"],
                              "page": ["1"], "per": ["100"]}
    assert entry["headers"]["X-Gusto-API-Version"] == "2025-06-15"
    assert entry["headers"]["Authorization"].startswith("Bearer ")
    validate_gusto_request(entry)
    run = GustoPayrollSource(client, COMPANY_UUID).get_payroll(PAYROLL_UUID)
    assert run.totals.gross_pay == Decimal("130635.89") and len(run.compensations) == 3
    assert run.debit_date == dt.date(2021, 2, 18)   # payroll_status_meta.expected_debit_time


def test_get_payroll_merges_all_pages(gusto_emulator):
    base = gusto_emulator()
    client, _ = connect(base)
    pid = requests.post(base + "/_sandbox/payrolls", json={"compensations": 230}, timeout=5).json()["payroll_uuid"]
    data = client.get_payroll(COMPANY_UUID, pid)
    assert len(data["employee_compensations"]) == 230
    assert len({c["employee_uuid"] for c in data["employee_compensations"]}) == 230
    pages = [e["query"]["page"] for e in log(base, f"/v1/companies/{COMPANY_UUID}/payrolls/{pid}")]
    assert pages == [["1"], ["2"], ["3"]]


def test_list_employees_all_pages_including_terminated(gusto_emulator):
    base = gusto_emulator()
    client, _ = connect(base)
    requests.post(base + "/_sandbox/employees", json={"count": 120}, timeout=5)
    employees = client.list_employees(COMPANY_UUID)
    assert len(employees) == 123 and sum(e["terminated"] for e in employees) == 1
    assert len(log(base, f"/v1/companies/{COMPANY_UUID}/employees")) == 2
    mapped = GustoPayrollSource(client, COMPANY_UUID).list_employees()
    assert any(e.terminated and e.title == "Bookkeeper" for e in mapped)


def test_list_payrolls_filters(gusto_emulator):
    base = gusto_emulator()
    client, _ = connect(base)
    got = client.list_payrolls(COMPANY_UUID, "2021-01-01", "2021-06-30")
    assert [p["payroll_uuid"] for p in got] == [PAYROLL_UUID]
    assert [p["processed"] for p in client.list_payrolls(COMPANY_UUID, "2021-01-01", "2021-06-30",
                                                         processed=False)] == [False]
    with pytest.raises(RejectedError):
        client.list_payrolls(COMPANY_UUID, "2019-01-01", "2021-06-30")   # > 1 year apart


def test_refresh_on_expiry_saves_before_use_and_request_is_spec_valid(gusto_emulator, validate_gusto_request):
    base = gusto_emulator()
    order = []

    class RecordingStore(InMemoryTokenStore):
        def save(self, tokens):
            order.append(("save", tokens.access_token))
            super().save(tokens)

    client, store = connect(base, RecordingStore(), before_request=lambda: order.append(("call",)))
    old = store.load()
    requests.post(base + "/_sandbox/clock", json={"advance": 7200 - 30}, timeout=5)  # within the 60 s margin
    store._tokens = TokenSet(old.access_token, old.refresh_token, time.time() + 30, old.scope, old.company_uuid)
    order.clear()
    client.get_payroll(COMPANY_UUID, PAYROLL_UUID)
    new = store.load()
    assert new.access_token != old.access_token and new.refresh_token != old.refresh_token
    assert order[0] == ("save", new.access_token) and order[1] == ("call",)
    refresh = [e for e in log(base, "/oauth/token") if (e["json"] or {}).get("grant_type") == "refresh_token"]
    assert len(refresh) == 1 and refresh[0]["json"]["refresh_token"] == old.refresh_token
    assert "client_secret" not in refresh[0]["query_string"]
    validate_gusto_request(refresh[0])
    api = log(base, f"/v1/companies/{COMPANY_UUID}/payrolls/{PAYROLL_UUID}")
    assert api[-1]["headers"]["Authorization"] == f"Bearer {new.access_token}"


def test_concurrent_workers_refresh_once(gusto_emulator):
    base = gusto_emulator()
    _, store = connect(base)
    t = store.load()
    store.save(TokenSet(t.access_token, t.refresh_token, time.time() - 1, t.scope, t.company_uuid))
    errors, results = [], []

    def worker():
        c = GustoClient(base, "demo-client-id", "demo-client-secret", store)
        try:
            results.append(c.get_payroll(COMPANY_UUID, PAYROLL_UUID)["payroll_uuid"])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(20)
    assert errors == [] and results == [PAYROLL_UUID] * 6
    refreshes = [e for e in log(base, "/oauth/token") if (e["json"] or {}).get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1


def test_401_after_other_worker_rotated_reloads_stored_tokens(gusto_emulator):
    base = gusto_emulator()
    a, store = connect(base)
    stale = store.load()
    b = GustoClient(base, "demo-client-id", "demo-client-secret", store)
    # worker A rotates and uses the new token: the old access token dies (OAS /oauth/token)
    a._refresh(stale.access_token)
    a.get_payroll(COMPANY_UUID, PAYROLL_UUID)
    fresh = store.load()
    # worker B read the store before A rotated: its first load() still sees the stale pair
    calls = []
    orig = store.load
    store.load = lambda: (calls.append(1), stale if len(calls) == 1 else orig())[1]
    assert b.get_payroll(COMPANY_UUID, PAYROLL_UUID)["payroll_uuid"] == PAYROLL_UUID
    store.load = orig
    assert store.load() == fresh                                    # B did not refresh again
    refreshes = [e for e in log(base, "/oauth/token") if (e["json"] or {}).get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1


def test_dead_refresh_token_raises_auth_error(gusto_emulator):
    base = gusto_emulator()
    client, store = connect(base)
    t = store.load()
    requests.post(base + "/oauth/revoke", json={"client_id": "demo-client-id", "client_secret": "demo-client-secret",
                                                "token": t.access_token}, timeout=5)
    with pytest.raises(AuthError) as err:
        client.get_payroll(COMPANY_UUID, PAYROLL_UUID)
    assert "invalid_grant" in str(err.value)
    assert store.load() == t                                        # nothing overwritten


def test_406_is_configuration_error(gusto_emulator):
    base = gusto_emulator()
    store = connect(base)[1]
    client = GustoClient(base, "demo-client-id", "demo-client-secret", store, api_version="2024-04-01")
    with pytest.raises(ConfigurationError) as err:
        client.list_employees(COMPANY_UUID)
    assert "2024-04-01" in str(err.value) and not err.value.retryable


def test_429_calls_hook_and_raises(gusto_emulator):
    base = gusto_emulator({"rate_limit": 2, "rate_window": 30})
    seen = []
    client, _ = connect(base, on_rate_limited=seen.append)    # exchange_code used 1 (token_info)
    client.get_payroll(COMPANY_UUID, PAYROLL_UUID)
    with pytest.raises(RateLimitedError) as err:
        client.get_payroll(COMPANY_UUID, PAYROLL_UUID)
    assert err.value.retry_after == seen[0] and 25 <= seen[0] <= 30
    assert "Rate limit exceeded" in err.value.detail


def test_5xx_and_404_map_to_error_tree(gusto_emulator):
    base = gusto_emulator()
    client, _ = connect(base)
    requests.post(base + "/_sandbox/faults", json={"status": 503, "count": 1}, timeout=5)
    with pytest.raises(TransientApiError) as err:
        client.list_employees(COMPANY_UUID)
    assert err.value.retryable and err.value.status == 503
    with pytest.raises(RejectedError) as err:
        client.get_payroll(COMPANY_UUID, "00000000-0000-0000-0000-000000000000")
    assert err.value.status == 404 and err.value.lines == ["The requested resource was not found."]


def test_transport_error_is_transient():
    client = GustoClient("http://127.0.0.1:9", "c", "s",
                         InMemoryTokenStore(TokenSet("a", "r", time.time() + 3600)), timeout=(0.5, 0.5))
    with pytest.raises(TransientApiError):
        client.list_employees(COMPANY_UUID)


def test_no_tokens_is_auth_error():
    client = GustoClient("http://127.0.0.1:9", "c", "s", InMemoryTokenStore())
    with pytest.raises(AuthError):
        client.list_employees(COMPANY_UUID)


def test_webhook_subscription_and_events_with_system_token(gusto_emulator, webhook_receiver, validate_gusto_request):
    base = gusto_emulator({"delivery_backoff": 0.05})
    client = GustoClient(base, "demo-client-id", "demo-client-secret", InMemoryTokenStore())
    sub = client.create_webhook_subscription(webhook_receiver.url, ["Payroll", "Employee"])
    assert sub["status"] == "pending"
    token = json.loads(webhook_receiver.wait_for(1)[0][1])["verification_token"]
    with pytest.raises(RejectedError) as err:
        client.verify_webhook_subscription(sub["uuid"], "not-it")
    assert err.value.status == 422 and err.value.lines == ["Invalid verification token"]
    assert client.verify_webhook_subscription(sub["uuid"], token)["status"] == "verified"
    evs = [requests.post(base + "/_sandbox/events", timeout=5, json={
        "event_type": "employee.updated", "entity_type": "Employee", "entity_uuid": f"e{i}"}).json() for i in range(3)]
    page = client.list_events(limit=2, resource_uuid=COMPANY_UUID)
    assert [e["uuid"] for e in page] == [e["uuid"] for e in evs[:2]]
    assert isinstance(page[0]["timestamp"], int)
    assert [e["uuid"] for e in client.list_events(starting_after_uuid=page[-1]["uuid"])] == [evs[2]["uuid"]]
    token_calls = log(base, "/oauth/token")
    assert len(token_calls) == 1 and token_calls[0]["json"]["grant_type"] == "system_access"
    validate_gusto_request(token_calls[0])
    for entry in log(base, "/v1/webhook_subscriptions") + log(base, f"/v1/webhook_subscriptions/{sub['uuid']}/verify") \
            + log(base, "/v1/events"):
        validate_gusto_request(entry)


def test_spec_request_validation_can_fail(gusto_emulator, validate_gusto_request):
    """The request validator really checks bodies (a bad body must raise)."""
    entry = {"method": "PUT", "path": "/v1/webhook_subscriptions/x/verify", "query": {},
             "headers": {"Authorization": "Bearer t", "Content-Type": "application/json"},
             "body": json.dumps({"token": "wrong field"})}
    with pytest.raises(Exception):
        validate_gusto_request(entry)


def test_rate_headers_of_successful_calls_reach_the_hook(gusto_emulator):
    base = gusto_emulator({"rate_limit": 3, "rate_window": 30})
    seen = []
    client, _ = connect(base, on_response=lambda h: seen.append(dict(h)))  # token_info used 1
    client.get_payroll(COMPANY_UUID, PAYROLL_UUID)
    client.get_payroll(COMPANY_UUID, PAYROLL_UUID)  # the grant's last request of the window
    assert seen[-1]["X-RateLimit-Remaining"] == "0" and int(seen[-1]["X-RateLimit-Reset"]) > 0
