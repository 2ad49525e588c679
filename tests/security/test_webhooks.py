"""Attacks on ``POST /webhooks/gusto/<connection>``: malformed signatures, pathological JSON,
handshake hijack, stale replays — each refused with a 4xx and nothing stored."""
from __future__ import annotations

import http.client
import json
import time
import urllib.parse
import uuid

import pytest
import requests
from sqlalchemy import func, select

from connector_tasks.core.signatures import hmac_sha256_hex
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import DEFAULT_TENANT_ID, InboundEvent
from tests.harness import DEMO_PAYROLL, GUSTO_CONN

pytestmark = pytest.mark.integration


def _events(dep) -> int:
    with session_scope(dep.settings.database_url) as s:
        return s.scalar(select(func.count()).select_from(InboundEvent))


def _token(dep, name: str = GUSTO_CONN) -> str | None:
    from connector_tasks import runtime
    from connector_tasks.connections import get_connection
    from connector_tasks.store import repo

    with session_scope(dep.settings.database_url) as s:
        return repo.read_credentials(get_connection(s, name), runtime.vault()).get("webhook_verification_token")


def _state(dep, name: str, key: str):
    from connector_tasks.connections import get_connection
    from connector_tasks.store import repo

    with session_scope(dep.settings.database_url) as s:
        return repo.get_state(s, get_connection(s, name).id, key)


def _raw_post(url: str, body: bytes, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes]:
    """POST with header values sent as raw bytes (requests would refuse non-Latin-1 text)."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=15)
    conn.putrequest("POST", u.path)
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(len(body)))
    for name, value in headers:
        conn.putheader(name, value)
    conn.endheaders(body)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def _event(uuid_: str | None = None, ts: int | None = None) -> bytes:
    return json.dumps({"uuid": uuid_ or str(uuid.uuid4()), "event_type": "payroll.processed",
                       "resource_type": "Company", "entity_type": "Payroll", "entity_uuid": DEMO_PAYROLL,
                       "timestamp": int(time.time()) if ts is None else ts}).encode()


def test_malformed_signature_headers_are_401_never_500(deployment):
    url = f"{deployment.web_url}/webhooks/gusto/{GUSTO_CONN}"
    body = _event()
    before = _events(deployment)
    valid = hmac_sha256_hex(_token(deployment), body)
    for bad in ("é".encode() * 32,              # non-ASCII (UTF-8 bytes): compare_digest raised → 500 before
                b"\xff" * 64,                   # not even UTF-8
                valid[:-1].encode(),            # one digit short
                (valid + "0").encode(),         # one digit long
                b"z" * 64,                      # right length, not hex
                b"sha256=" + valid.encode(),    # a prefix Gusto does not send
                b""):
        status, data = _raw_post(url, body, [(b"X-Gusto-Signature", bad)])
        assert status == 401, (bad, status, data)
    assert _events(deployment) == before
    status, _ = _raw_post(url, body, [(b"X-Gusto-Signature", valid.encode())])
    assert status == 200 and _events(deployment) == before + 1  # the right signature still works


@pytest.mark.parametrize("body, reason", [
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nested"),       # RecursionError → 500 before
    (b'{"a":' * 40 + b"1" + b"}" * 40, "nested"),                  # deeper than the 32-level limit
    (b'{"uuid":"u1","event_type":"payroll.processed","timestamp":NaN}', "non-finite"),
    (b'{"uuid":"u2","event_type":"payroll.processed","timestamp":-Infinity}', "non-finite"),
    (b'{"uuid":"u3","event_type":"payroll.processed","timestamp":1e999}', "non-finite"),
    (b'{"uuid":"u4","event_type":"payroll.processed","timestamp":' + b"9" * 5000 + b"}", "longer"),
])
def test_pathological_json_signed_with_the_real_token_is_400(deployment, body, reason):
    url = f"{deployment.web_url}/webhooks/gusto/{GUSTO_CONN}"
    before = _events(deployment)
    r = requests.post(url, data=body, timeout=30,
                      headers={"X-Gusto-Signature": hmac_sha256_hex(_token(deployment), body)})
    assert r.status_code == 400, r.text
    assert reason in r.json()["detail"]
    assert _events(deployment) == before


def test_oversize_body_is_413_before_it_is_read(deployment):
    url = f"{deployment.web_url}/webhooks/gusto/{GUSTO_CONN}"
    body = b" " * (deployment.settings.max_webhook_bytes + 1)
    r = requests.post(url, data=body, headers={"X-Gusto-Signature": "0" * 64}, timeout=30)
    assert r.status_code == 413


def test_unsigned_handshake_on_a_verified_connection_is_refused(deployment):
    assert _state(deployment, GUSTO_CONN, "webhook_status") == "verified"
    token = _token(deployment)
    url = f"{deployment.web_url}/webhooks/gusto/{GUSTO_CONN}"
    r = requests.post(url, json={"verification_token": "attacker-chosen"}, timeout=10)
    assert r.status_code == 401
    # signed with the attacker's own token: still refused
    body = json.dumps({"verification_token": "attacker-chosen"}).encode()
    r = requests.post(url, data=body, headers={"X-Gusto-Signature": hmac_sha256_hex("attacker-chosen", body)},
                      timeout=10)
    assert r.status_code == 401
    # signed with the real token (a replayed handshake): a handshake body is refused, 400
    body = json.dumps({"verification_token": token}).encode()
    r = requests.post(url, data=body, headers={"X-Gusto-Signature": hmac_sha256_hex(token, body)}, timeout=10)
    assert r.status_code == 400 and "handshake" in r.json()["error"]
    assert _token(deployment) == token and _state(deployment, GUSTO_CONN, "webhook_status") == "verified"


def test_handshake_on_a_connection_we_never_subscribed_is_refused(deployment):
    """The hijack of issue 12: a connection created but with no subscription awaiting a token
    took any unsigned {"verification_token": ...}, again and again."""
    from connector_tasks.connections import open_connection

    with session_scope(deployment.settings.database_url) as s:
        open_connection(s, "gusto-unsubscribed", "gusto", tenant_id=DEFAULT_TENANT_ID)
    url = f"{deployment.web_url}/webhooks/gusto/gusto-unsubscribed"
    for token in ("attacker-1", "attacker-2"):
        r = requests.post(url, json={"verification_token": token}, timeout=10)
        assert r.status_code == 401
    assert _token(deployment, "gusto-unsubscribed") is None
    # and then an event "signed" with the token the attacker tried to plant
    body = _event()
    r = requests.post(url, data=body, headers={"X-Gusto-Signature": hmac_sha256_hex("attacker-1", body)},
                      timeout=10)
    assert r.status_code == 401


def test_the_awaited_handshake_is_accepted_once(deployment):
    from connector_tasks.connections import get_connection, open_connection
    from connector_tasks.connectors.gusto.webhooks import await_handshake

    with session_scope(deployment.settings.database_url) as s:
        open_connection(s, "gusto-awaiting", "gusto", tenant_id=DEFAULT_TENANT_ID)
    with session_scope(deployment.settings.database_url) as s:
        await_handshake(s, get_connection(s, "gusto-awaiting").id)  # what register_webhook does first
    url = f"{deployment.web_url}/webhooks/gusto/gusto-awaiting"
    first = json.dumps({"verification_token": "gusto-sent-this"}).encode()
    r = requests.post(url, data=first, headers={"X-Gusto-Signature": hmac_sha256_hex("gusto-sent-this", first)},
                      timeout=10)
    assert r.status_code == 200, r.text
    assert _state(deployment, "gusto-awaiting", "webhook_status") == "token_received"
    # a second handshake (the attacker racing Gusto, or a replay) is refused: the token stays
    r = requests.post(url, json={"verification_token": "attacker"}, timeout=10)
    assert r.status_code == 401
    assert _token(deployment, "gusto-awaiting") == "gusto-sent-this"


def test_an_expired_handshake_window_is_closed(deployment):
    from connector_tasks.connections import get_connection, open_connection
    from connector_tasks.connectors.gusto.webhooks import await_handshake

    with session_scope(deployment.settings.database_url) as s:
        conn = open_connection(s, "gusto-late", "gusto", tenant_id=DEFAULT_TENANT_ID)
        await_handshake(s, conn.id, window=-1)
    r = requests.post(f"{deployment.web_url}/webhooks/gusto/gusto-late",
                      json={"verification_token": "late"}, timeout=10)
    assert r.status_code == 401 and _token(deployment, "gusto-late") is None


def test_a_replay_older_than_the_retention_is_refused_and_a_recent_one_is_a_duplicate(deployment):
    from connector_tasks.jobs.retention import DEFAULT_RETENTION_DAYS

    url = f"{deployment.web_url}/webhooks/gusto/{GUSTO_CONN}"
    token = _token(deployment)
    old = _event(ts=int(time.time()) - (DEFAULT_RETENTION_DAYS + 1) * 86400)
    before = _events(deployment)
    r = requests.post(url, data=old, headers={"X-Gusto-Signature": hmac_sha256_hex(token, old)}, timeout=10)
    assert r.status_code == 200 and r.json()["status"] == "stale"
    assert _events(deployment) == before
    recent = _event()
    for expected in ("accepted", "duplicate", "duplicate"):
        r = requests.post(url, data=recent, headers={"X-Gusto-Signature": hmac_sha256_hex(token, recent)},
                          timeout=10)
        assert r.status_code == 200 and r.json()["status"] == expected
    assert _events(deployment) == before + 1


def test_retention_sweep_never_deletes_event_ids_inside_the_vendor_window(deployment):
    import datetime as dt

    from connector_tasks.core.errors import ConfigurationError
    from connector_tasks.jobs.retention import prune_events, retention_days, retention_floor_days
    from connector_tasks.store.models import utcnow

    def put(uuid_, age_days, status="processed"):
        with session_scope(deployment.settings.database_url) as s:
            s.add(InboundEvent(system="gusto", event_uuid=uuid_, event_type="employee.updated",
                               payload={}, status=status, received_at=utcnow() - dt.timedelta(days=age_days)))

    assert retention_floor_days() == 35  # Gusto's 30-day window (its receiver declares it) + 5
    tag = uuid.uuid4().hex[:8]
    put(f"young-{tag}", retention_floor_days() - 1)
    put(f"old-{tag}", retention_days(deployment.settings) + 1)
    put(f"old-moving-{tag}", retention_days(deployment.settings) + 1, status="received")
    with pytest.raises(ConfigurationError):
        prune_events(days=retention_floor_days() - 1)  # asking to prune inside the window is refused
    assert prune_events() >= 1
    with session_scope(deployment.settings.database_url) as s:
        left = set(s.scalars(select(InboundEvent.event_uuid).where(InboundEvent.event_uuid.like(f"%{tag}"))))
    assert left == {f"young-{tag}", f"old-moving-{tag}"}
    with pytest.raises(ConfigurationError, match="EVENT_RETENTION_DAYS"):
        retention_days(deployment.settings.with_env(EVENT_RETENTION_DAYS="7"))


def test_overlong_or_malformed_ids_in_urls_are_not_500(deployment):
    from connector_tasks.tenants import create_token

    web = deployment.web_url
    with session_scope(deployment.settings.database_url) as s:
        admin = {"Authorization": f"Bearer {create_token(s, 'default', 'admin')[1]}"}
    # past 64 bits (SQLite raised OverflowError → 500 before) or not an id at all: not found (a
    # request line over gunicorn's limit_request_line is refused by gunicorn itself: 414)
    for path, method in ((f"/api/jobs/{'9' * 400}/replay", "POST"),
                         (f"/api/jobs/{2**63}/replay", "POST"),
                         ("/api/jobs/-1/replay", "POST"),
                         ("/api/jobs/1e9/replay", "POST"),
                         (f"/webhooks/gusto/{'c' * 5000}", "POST"),
                         ("/webhooks/gusto/%00%01", "POST")):
        r = requests.request(method, web + path, timeout=10, data=b"{}", headers=admin)
        assert r.status_code in (400, 404, 414), (path, r.status_code, r.text[:200])
    # the largest id and an over-long source id reach their views and answer without error
    for path, method in ((f"/api/jobs/{2**63 - 1}/replay", "POST"), (f"/api/audit/{'x' * 3000}", "GET")):
        r = requests.request(method, web + path, timeout=10, headers=admin)
        assert r.status_code < 500 and r.status_code != 401, (path, r.status_code, r.text[:200])
