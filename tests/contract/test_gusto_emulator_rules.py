"""The Gusto emulator's vendor rules, over real HTTP: OAuth and tokens
(https://docs.gusto.com/app-integrations/docs/oauth2,
https://docs.gusto.com/embedded-payroll/docs/company-access-tokens), the version header
(https://docs.gusto.com/embedded-payroll/docs/api-versioning), rate limits
(https://docs.gusto.com/app-integrations/docs/rate-limits), versions and 409
(https://docs.gusto.com/embedded-payroll/docs/idempotency) and webhooks
(https://docs.gusto.com/embedded-payroll/docs/webhooks)."""
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import requests

from sandbox.gusto.app import COMPANY_UUID, OTHER_COMPANY_UUID, PAYROLL_UUID

CREDS = {"client_id": "demo-client-id", "client_secret": "demo-client-secret"}
PAYROLL_PATH = f"/v1/companies/{COMPANY_UUID}/payrolls/{PAYROLL_UUID}"
EMPLOYEE = "187412e1-3dbe-491a-bb2f-2f40323a7067"          # an employee of COMPANY_UUID (seed)


def auth(token, version="2025-06-15"):
    h = {"Authorization": f"Bearer {token}"}
    if version:
        h["X-Gusto-API-Version"] = version
    return h


def test_authorization_code_flow_with_consent_page(gusto_emulator):
    base = gusto_emulator()
    q = {"client_id": "demo-client-id", "redirect_uri": "http://localhost:5000/oauth/callback?x=1",
         "response_type": "code", "state": "xyz"}
    page = requests.get(base + "/oauth/authorize", params=q, timeout=5)
    assert page.status_code == 200 and "Allow" in page.text and COMPANY_UUID in page.text
    r = requests.post(base + "/oauth/authorize", allow_redirects=False, timeout=5,
                      data={**{k: q[k] for k in ("client_id", "redirect_uri", "state")},
                            "company_uuid": COMPANY_UUID})
    assert r.status_code == 302
    loc = urlsplit(r.headers["Location"])
    assert (loc.scheme, loc.netloc, loc.path) == ("http", "localhost:5000", "/oauth/callback")
    params = parse_qs(loc.query)
    assert params["state"] == ["xyz"] and params["x"] == ["1"]
    code = params["code"][0]
    body = {**CREDS, "grant_type": "authorization_code", "code": code, "redirect_uri": q["redirect_uri"]}
    bad = requests.post(base + "/oauth/token", json={**body, "redirect_uri": "http://evil/cb"}, timeout=5)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_grant"
    ok = requests.post(base + "/oauth/token", json=body, timeout=5)
    assert ok.status_code == 200
    tok = ok.json()
    assert len(tok["access_token"]) == 43 and set(tok["access_token"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    again = requests.post(base + "/oauth/token", json=body, timeout=5)      # single use
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"


def test_auto_approve_and_code_expiry(gusto_emulator):
    base = gusto_emulator({"auto_approve": True})
    q = {"client_id": "demo-client-id", "redirect_uri": "http://localhost/cb", "response_type": "code",
         "state": "s"}
    r = requests.get(base + "/oauth/authorize", params=q, allow_redirects=False, timeout=5)
    assert r.status_code == 302
    code = parse_qs(urlsplit(r.headers["Location"]).query)["code"][0]
    requests.post(base + "/_sandbox/clock", json={"advance": 601}, timeout=5)  # codes live 10 min
    r = requests.post(base + "/oauth/token", timeout=5, json={**CREDS, "grant_type": "authorization_code",
                                                              "code": code, "redirect_uri": q["redirect_uri"]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_client_errors_on_token_endpoint(gusto_emulator):
    base = gusto_emulator()
    r = requests.post(base + "/oauth/token", params={"client_secret": "demo-client-secret"},
                      json={**CREDS, "grant_type": "system_access"}, timeout=5)
    assert r.status_code == 400                                   # secret in URL (company-access-tokens doc)
    r = requests.post(base + "/oauth/token", json={**CREDS, "client_secret": "nope",
                                                   "grant_type": "system_access"}, timeout=5)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_refresh_token_is_single_use_and_rotates(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    first = gusto_helpers.company_tokens(base)
    body = {**CREDS, "grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    r1 = requests.post(base + "/oauth/token", json=body, timeout=5)
    assert r1.status_code == 200 and r1.json()["refresh_token"] != first["refresh_token"]
    r2 = requests.post(base + "/oauth/token", json=body, timeout=5)
    assert r2.status_code == 400 and r2.json()["error"] == "invalid_grant"
    # the old access token works until the new one is first used, then dies with it (OAS)
    assert requests.get(base + PAYROLL_PATH, headers=auth(first["access_token"]), timeout=5).status_code == 200
    assert requests.get(base + PAYROLL_PATH, headers=auth(r1.json()["access_token"]), timeout=5).status_code == 200
    assert requests.get(base + PAYROLL_PATH, headers=auth(first["access_token"]), timeout=5).status_code == 401


def test_access_token_expires_after_ttl(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tok = gusto_helpers.company_tokens(base)["access_token"]
    assert requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5).status_code == 200
    requests.post(base + "/_sandbox/clock", json={"advance": 7199}, timeout=5)
    assert requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5).status_code == 200
    requests.post(base + "/_sandbox/clock", json={"advance": 2}, timeout=5)
    assert requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5).status_code == 401


def test_revoke_kills_the_token(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tokens = gusto_helpers.company_tokens(base)
    r = requests.post(base + "/oauth/revoke", json={**CREDS, "token": tokens["access_token"]}, timeout=5)
    assert r.status_code == 200
    assert requests.get(base + PAYROLL_PATH, headers=auth(tokens["access_token"]), timeout=5).status_code == 401
    r = requests.post(base + "/oauth/token", timeout=5, json={**CREDS, "grant_type": "refresh_token",
                                                              "refresh_token": tokens["refresh_token"]})
    assert r.status_code == 400


def test_company_token_reaches_only_its_company(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tok = gusto_helpers.company_tokens(base, OTHER_COMPANY_UUID)["access_token"]
    r = requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5)
    assert r.status_code == 404 and r.json()["errors"][0]["category"] == "not_found"
    r = requests.get(base + "/v1/employees/187412e1-3dbe-491a-bb2f-2f40323a7067", headers=auth(tok), timeout=5)
    assert r.status_code == 404
    r = requests.get(base + f"/v1/companies/{OTHER_COMPANY_UUID}/employees", headers=auth(tok), timeout=5)
    assert r.status_code == 200 and len(r.json()) == 1
    sys_tok = gusto_helpers.system_token(base)   # a system token is not a company token
    assert requests.get(base + PAYROLL_PATH, headers=auth(sys_tok), timeout=5).status_code == 403


def test_version_header_rules(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tok = gusto_helpers.company_tokens(base)["access_token"]
    r = requests.get(base + PAYROLL_PATH, headers=auth(tok, version=None), timeout=5)
    assert r.status_code == 200 and r.headers["X-Gusto-API-Version"] == "2025-06-15"
    for bad in ("2024-04-01", "2999-01-01", "latest"):
        r = requests.get(base + PAYROLL_PATH, headers=auth(tok, version=bad), timeout=5)
        assert r.status_code == 406, bad
        assert r.json() == {"name": "Invalid X-Gusto-API-Version Header",
                            "message": f"Invalid API Version `{bad}`. Version must be >= your application's "
                                       "minimum API version `2025-06-15` and not in the future."}


def test_rate_limit_small_window(gusto_emulator, gusto_helpers):
    base = gusto_emulator({"rate_limit": 5, "rate_window": 1.0})
    tok = gusto_helpers.company_tokens(base)["access_token"]
    remaining = []
    for _ in range(5):
        r = requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5)
        assert r.status_code == 200
        assert r.headers["X-RateLimit-Limit"] == "5" and "Retry-After" not in r.headers
        remaining.append(int(r.headers["X-RateLimit-Remaining"]))
        assert int(r.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert remaining == [4, 3, 2, 1, 0]
    r = requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5)
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "1" and r.headers["X-RateLimit-Remaining"] == "0"
    assert r.json()["errors"][0]["category"] == "rate_limit_exceeded"
    # a second grant has its own budget
    other = gusto_helpers.company_tokens(base)["access_token"]
    assert requests.get(base + PAYROLL_PATH, headers=auth(other), timeout=5).status_code == 200
    # a refreshed token stays on the same grant (same budget)
    time.sleep(1.05)
    assert requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5).status_code == 200


def test_rate_limit_default_is_200_per_rolling_60s(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tok = gusto_helpers.company_tokens(base)["access_token"]
    s = requests.Session()
    for i in range(200):
        r = s.get(base + "/v1/token_info", headers=auth(tok), timeout=5)
        assert r.status_code == 200, i
    assert r.headers["X-RateLimit-Limit"] == "200" and r.headers["X-RateLimit-Remaining"] == "0"
    r = s.get(base + "/v1/token_info", headers=auth(tok), timeout=5)
    assert r.status_code == 429 and 55 <= int(r.headers["Retry-After"]) <= 60
    s.post(base + "/_sandbox/clock", json={"advance": 61})        # window rolls over
    assert s.get(base + "/v1/token_info", headers=auth(tok), timeout=5).status_code == 200


def test_fault_injection(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tok = gusto_helpers.company_tokens(base)["access_token"]
    requests.post(base + "/_sandbox/faults", json={"status": 503, "count": 2}, timeout=5)
    requests.post(base + "/_sandbox/faults", json={"status": 429, "count": 1, "retry_after": 7}, timeout=5)
    codes = [requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5) for _ in range(4)]
    assert [c.status_code for c in codes] == [503, 503, 429, 200]
    assert codes[2].headers["Retry-After"] == "7"


def _subscribe(base, token, url, types=("Payroll",)):
    r = requests.post(base + "/v1/webhook_subscriptions", headers=auth(token), timeout=5,
                      json={"url": url, "subscription_types": list(types)})
    assert r.status_code == 201
    return r.json()


def test_verification_and_event_delivery_are_signed(gusto_emulator, gusto_helpers, webhook_receiver):
    base = gusto_emulator({"delivery_backoff": 0.05})
    token = gusto_helpers.system_token(base)
    sub = _subscribe(base, token, webhook_receiver.url, ["Payroll"])
    headers, raw = webhook_receiver.wait_for(1)[0]
    vtoken = json.loads(raw)["verification_token"]
    assert headers["X-Gusto-Signature"] == hmac.new(vtoken.encode(), raw, hashlib.sha256).hexdigest()
    # pending subscriptions receive no events
    requests.post(base + "/_sandbox/events", json={"event_type": "payroll.updated", "entity_type": "Payroll",
                                                   "entity_uuid": PAYROLL_UUID}, timeout=5)
    r = requests.put(base + f"/v1/webhook_subscriptions/{sub['uuid']}/verify", headers=auth(token),
                     json={"verification_token": vtoken}, timeout=5)
    assert r.json()["status"] == "verified"
    # Employee events are not delivered to a Payroll-only subscription
    requests.post(base + "/_sandbox/events", json={"event_type": "employee.updated", "entity_type": "Employee",
                                                   "entity_uuid": "e1"}, timeout=5)
    r = requests.post(base + "/_sandbox/payrolls/c3a1f9d2-7e4b-4c8a-9f1e-2b6d5a8c3e71/process", timeout=5)
    event = r.json()["event"]
    headers, raw = webhook_receiver.wait_for(2)[1]
    assert json.loads(raw) == event
    assert set(event) == {"uuid", "event_type", "resource_type", "resource_uuid", "entity_type",
                          "entity_uuid", "timestamp"}
    assert event["event_type"] == "payroll.processed" and event["resource_type"] == "Company"
    expected = hmac.new(vtoken.encode(), raw, hashlib.sha256).hexdigest()
    assert headers["X-Gusto-Signature"] == expected
    # re-serialising the JSON would not verify: the signature is over the raw bytes
    reserialised = json.dumps(json.loads(raw)).encode()
    assert reserialised != raw
    assert hmac.new(vtoken.encode(), reserialised, hashlib.sha256).hexdigest() != expected
    time.sleep(0.2)
    assert len(webhook_receiver.received) == 2


def test_delivery_retries_non_2xx_with_backoff(gusto_emulator, gusto_helpers, webhook_receiver):
    base = gusto_emulator({"delivery_backoff": 0.05, "delivery_attempts": 4})
    token = gusto_helpers.system_token(base)
    sub = _subscribe(base, token, webhook_receiver.url, ["Employee"])
    vtoken = json.loads(webhook_receiver.wait_for(1)[0][1])["verification_token"]
    requests.put(base + f"/v1/webhook_subscriptions/{sub['uuid']}/verify", headers=auth(token),
                 json={"verification_token": vtoken}, timeout=5)
    webhook_receiver.statuses[:] = [500, 503]
    ev = requests.post(base + "/_sandbox/events", json={"event_type": "employee.updated", "entity_type": "Employee",
                                                        "entity_uuid": "e1"}, timeout=5).json()
    got = webhook_receiver.wait_for(4)[1:]
    assert len({raw for _, raw in got}) == 1                         # the same bytes each time
    time.sleep(0.1)
    log = [d for d in requests.get(base + "/_sandbox/deliveries", timeout=5).json() if d["event_uuid"] == ev["uuid"]]
    assert [(d["attempt"], d["status"], d["ok"]) for d in log] == [(1, 500, False), (2, 503, False), (3, 200, True)]
    gaps = [b["time"] - a["time"] for a, b in zip(log, log[1:])]
    assert gaps[0] >= 0.045 and gaps[1] >= 0.095                     # 0.05 * 2**n
    # gives up after delivery_attempts
    webhook_receiver.statuses[:] = [500] * 10
    ev2 = requests.post(base + "/_sandbox/events", json={"event_type": "employee.created", "entity_type": "Employee",
                                                         "entity_uuid": "e2"}, timeout=5).json()
    webhook_receiver.wait_for(8)
    time.sleep(0.3)
    log2 = [d for d in requests.get(base + "/_sandbox/deliveries", timeout=5).json() if d["event_uuid"] == ev2["uuid"]]
    assert [d["attempt"] for d in log2] == [1, 2, 3, 4] and not any(d["ok"] for d in log2)


def test_redeliver_concurrently_and_events_cursor(gusto_emulator, gusto_helpers, webhook_receiver):
    base = gusto_emulator({"delivery_backoff": 0.05})
    token = gusto_helpers.system_token(base)
    sub = _subscribe(base, token, webhook_receiver.url, ["Payroll"])
    vtoken = json.loads(webhook_receiver.wait_for(1)[0][1])["verification_token"]
    requests.put(base + f"/v1/webhook_subscriptions/{sub['uuid']}/verify", headers=auth(token),
                 json={"verification_token": vtoken}, timeout=5)
    events = [requests.post(base + "/_sandbox/events", timeout=5,
                            json={"event_type": f"payroll.{t}", "entity_type": "Payroll",
                                  "entity_uuid": PAYROLL_UUID}).json() for t in ("created", "updated", "processed")]
    webhook_receiver.wait_for(4)
    r = requests.post(base + f"/_sandbox/deliveries/redeliver/{events[2]['uuid']}?times=3&concurrent=1", timeout=30)
    assert r.json()["deliveries"] == 3
    bodies = webhook_receiver.json_bodies()
    assert sum(1 for b in bodies if b.get("uuid") == events[2]["uuid"]) == 4
    ev = requests.get(base + "/v1/events", params={"starting_after_uuid": events[0]["uuid"], "limit": 1},
                      headers=auth(token), timeout=5).json()
    assert [e["uuid"] for e in ev] == [events[1]["uuid"]]
    ev = requests.get(base + "/v1/events", params={"event_type": "payroll.*", "sort_order": "desc"},
                      headers=auth(token), timeout=5).json()
    assert [e["uuid"] for e in ev] == [e["uuid"] for e in events[::-1]]
    assert requests.get(base + "/v1/events", params={"limit": 101}, headers=auth(token), timeout=5).status_code == 422
    assert requests.get(base + "/v1/events", params={"resource_uuid": OTHER_COMPANY_UUID}, headers=auth(token),
                        timeout=5).json() == []


def test_sandbox_state_reset_and_request_log(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tok = gusto_helpers.company_tokens(base)["access_token"]
    requests.get(base + PAYROLL_PATH, params={"include": "totals"}, headers=auth(tok), timeout=5)
    log = requests.get(base + "/_sandbox/requests", timeout=5).json()
    assert log[-1]["path"] == PAYROLL_PATH and log[-1]["query"] == {"include": ["totals"]}
    assert log[-1]["headers"]["Authorization"] == f"Bearer {tok}"
    state = requests.get(base + "/_sandbox/state", timeout=5).json()
    assert state["counts"]["payrolls"] == 2 and state["grants"][0]["requests_in_window"] == 1
    requests.post(base + "/_sandbox/reset", timeout=5)
    state = requests.get(base + "/_sandbox/state", timeout=5).json()
    assert state["grants"] == [] and state["counts"]["requests"] == 0
    assert requests.get(base + PAYROLL_PATH, headers=auth(tok), timeout=5).status_code == 401


def test_company_job_and_compensation_routes_follow_strict_access(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    own = gusto_helpers.company_tokens(base)["access_token"]
    other = gusto_helpers.company_tokens(base, OTHER_COMPANY_UUID)["access_token"]
    job = requests.get(base + f"/v1/employees/{EMPLOYEE}", headers=auth(own), timeout=5).json()["jobs"][0]
    comp = job["compensations"][0]
    paths = [f"/v1/companies/{COMPANY_UUID}", f"/v1/jobs/{job['uuid']}", f"/v1/jobs/{job['uuid']}/compensations",
             f"/v1/compensations/{comp['uuid']}"]
    for path in paths:
        assert requests.get(base + path, headers=auth(own), timeout=5).status_code == 200, path
        r = requests.get(base + path, headers=auth(other), timeout=5)        # another company's → 404
        assert r.status_code == 404 and r.json()["errors"][0]["category"] == "not_found", path
        assert requests.get(base + path, timeout=5).status_code == 401, path
    r = requests.put(base + f"/v1/compensations/{comp['uuid']}", json={"version": comp["version"], "rate": "1.00"},
                     headers=auth(other), timeout=5)
    assert r.status_code == 404
    assert requests.get(base + f"/v1/companies/{OTHER_COMPANY_UUID}", headers=auth(other), timeout=5).json()[
        "name"] == "Other Holdings LLC"
    sys_tok = gusto_helpers.system_token(base)
    assert requests.get(base + paths[0], headers=auth(sys_tok), timeout=5).status_code == 403


def test_compensation_update_needs_the_current_version_and_fires_its_event(gusto_emulator, gusto_helpers):
    base = gusto_emulator()
    tok = gusto_helpers.company_tokens(base)["access_token"]
    job = requests.get(base + f"/v1/employees/{EMPLOYEE}", headers=auth(tok), timeout=5).json()["jobs"][0]
    url = base + f"/v1/compensations/{job['current_compensation_uuid']}"
    seen = requests.get(url, headers=auth(tok), timeout=5).json()      # two writers read one version
    first = requests.put(url, json={"version": seen["version"], "rate": "50.00"}, headers=auth(tok), timeout=5)
    assert first.status_code == 200 and first.json()["rate"] == "50.00"
    second = requests.put(url, json={"version": seen["version"], "rate": "60.00"}, headers=auth(tok), timeout=5)
    assert second.status_code == 409
    assert second.json()["errors"][0]["category"] == "invalid_resource_version"
    assert requests.get(url, headers=auth(tok), timeout=5).json()["rate"] == "50.00"   # the loser changed nothing
    fresh = requests.get(url, headers=auth(tok), timeout=5).json()["version"]          # re-read, retry: accepted
    again = requests.put(url, json={"version": fresh, "rate": "60.00"}, headers=auth(tok), timeout=5)
    assert again.status_code == 200 and again.json()["rate"] == "60.00"
    r = requests.put(url, json={"rate": "70.00"}, headers=auth(tok), timeout=5)          # no version
    assert r.status_code == 422 and r.json()["errors"][0]["error_key"] == "version"
    r = requests.put(url, json={"version": again.json()["version"], "rate": "lots"}, headers=auth(tok), timeout=5)
    assert r.status_code == 422 and r.json()["errors"][0]["error_key"] == "rate"
    r = requests.put(url, json={"version": again.json()["version"]}, headers=auth(tok), timeout=5)
    assert r.status_code == 200 and r.json()["version"] == again.json()["version"]   # nothing changed
    events = requests.get(base + "/v1/events", params={"event_type": "employee_job_compensation.*"},
                          headers=auth(gusto_helpers.system_token(base)), timeout=5).json()
    assert [(e["event_type"], e["entity_type"], e["entity_uuid"], e["resource_uuid"]) for e in events] == [
        ("employee_job_compensation.updated", "EmployeeJobCompensation", job["current_compensation_uuid"],
         COMPANY_UUID)] * 3


def test_unknown_routes_need_no_token_and_are_logged(gusto_emulator):
    base = gusto_emulator()
    r = requests.get(base + "/v1/payrolls", timeout=5)
    assert r.status_code == 404 and r.json()["errors"][0]["category"] == "not_found"
    assert r.headers["X-Gusto-API-Version"] == "2025-06-15"
    r = requests.post(base + "/_sandbox/no-such-admin-route", json={}, timeout=5)
    assert r.status_code == 404 and r.json()["errors"][0]["category"] == "not_found"
    log = requests.get(base + "/_sandbox/requests", timeout=5).json()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [("GET", "/v1/payrolls", 404)]


def test_refuses_production():
    import pytest
    from sandbox.gusto.server import ProductionRefused, serve
    with pytest.raises(ProductionRefused):
        serve(env="production")
