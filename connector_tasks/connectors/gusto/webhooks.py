"""Gusto webhook deliveries: the signature, the verification handshake, event parsing.

Source: https://docs.gusto.com/embedded-payroll/docs/webhooks . A delivery is signed with
``X-Gusto-Signature``: lowercase hex HMAC-SHA256 of the raw body keyed by the subscription's
``verification_token``. Before the subscription is verified Gusto POSTs
``{"verification_token": "..."}`` to the URL (the handshake), which we store and confirm with
``PUT /v1/webhook_subscriptions/{uuid}/verify``. Payloads are thin (ids only): every step
re-reads Gusto. The event table (type → flow) is :data:`connector_tasks.connectors.gusto.source.EVENT_FLOWS`.
"""
from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from connector_tasks import runtime
from connector_tasks.connections import find_connection
from connector_tasks.core.errors import MappingError
from connector_tasks.core.safe_json import loads_strict
from connector_tasks.core.signatures import verify_hex_signature, well_formed_hex_signature
from connector_tasks.jobs.retention import retention_days, stale
from connector_tasks.pipeline.inbound import SourceEvent, WebhookReply
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope

SIGNATURE_HEADER = "X-Gusto-Signature"
SYSTEM = "gusto"
#: seconds a created subscription awaits its verification token after ``register_webhook``
#: asked for it (Gusto sends it at once; the wait covers its retries of that delivery)
HANDSHAKE_WINDOW = 600
#: ``webhook_status`` values: ``awaiting_token`` (we created a subscription: exactly one
#: handshake is accepted, within ``webhook_handshake.until``) → ``token_received`` → ``verified``;
#: ``token_missing`` when the wait ran out
AWAITING, RECEIVED, VERIFIED, MISSING = "awaiting_token", "token_received", "verified", "token_missing"

_UNAUTHORISED = {"error": "signature missing or invalid"}


def await_handshake(session, connection_id: int, *, window: float = HANDSHAKE_WINDOW) -> dict:
    """Open the one-time handshake window of a connection whose subscription we are creating
    (called by :func:`connector_tasks.connectors.gusto.service.register_webhook` before it asks
    Gusto): ``webhook_status`` = ``awaiting_token`` and ``webhook_handshake`` = ``{"nonce",
    "until": epoch seconds}``. Returns that handshake record. Nothing else opens it, so an
    unsolicited ``{"verification_token": …}`` is refused."""
    record = {"nonce": secrets.token_hex(16), "until": time.time() + window}
    repo.put_state(session, connection_id, {"webhook_status": AWAITING, "webhook_handshake": record})
    return record


def parse_body(body: bytes) -> dict:
    """Decode a JSON object from ``body`` with :func:`connector_tasks.core.safe_json.loads_strict`
    (nesting over 32 levels, ``NaN``/``Infinity``, over-long or overflowing numbers refused).
    Raises :class:`MappingError` (answered 400) for anything else."""
    try:
        data = loads_strict(body)
    except ValueError as exc:
        raise MappingError("webhook body is not valid JSON", system=SYSTEM, detail=str(exc)) from exc
    if not isinstance(data, dict):
        raise MappingError("webhook body is not a JSON object", system=SYSTEM)
    return data


def handshake_token(data: dict) -> str | None:
    """The ``verification_token`` of a handshake body (a body with only that key), else None."""
    if set(data) == {"verification_token"} and isinstance(data["verification_token"], str):
        return data["verification_token"]
    return None


def parse_event(data: dict) -> SourceEvent:
    """A :class:`SourceEvent` from a Gusto event body (webhook or ``/v1/events`` item):
    ``uuid``, ``event_type``, ``entity_type``, ``entity_uuid``, ``resource_uuid`` (the company:
    the account), ``timestamp`` (epoch seconds: the version). Raises MappingError naming a
    missing field."""
    for field in ("uuid", "event_type"):
        if not isinstance(data.get(field), str) or not data[field]:
            raise MappingError(f"webhook event lacks {field!r}", system=SYSTEM)
    ts = data.get("timestamp")
    return SourceEvent(uuid=data["uuid"], event_type=data["event_type"], entity_type=data.get("entity_type"),
                       entity_id=data.get("entity_uuid"),
                       version=ts if isinstance(ts, int) and not isinstance(ts, bool) else None,
                       account=data.get("resource_uuid"), raw=data)


def routable(event: SourceEvent, account: str | None) -> bool:
    """Whether ``event`` should reach routing for a connection of company ``account``: its type
    starts a flow and it is not another company's event."""
    from connector_tasks.connectors.gusto.source import EVENT_FLOWS

    foreign = account and event.account and event.account != account
    return bool(event.event_type in EVENT_FLOWS and not foreign)


@dataclass(frozen=True)
class _Endpoint:
    """What the webhook hot path needs of a connection, cached per process for ENDPOINT_TTL s."""

    id: int
    account: str | None
    token: str | None
    verified: bool
    fetched_at: float


ENDPOINT_TTL = 2.0


class GustoWebhooks:
    """The receiver of ``POST /webhooks/gusto/<connection>`` (the registry's ``webhook``).

    ``replay_window_days`` (30): how long Gusto may send the same event again, which the event
    retention must cover (:mod:`connector_tasks.jobs.retention`). Sources: a delivery answered
    non-2xx is retried "up to 16 times with exponential backoff"
    (https://docs.gusto.com/app-integrations/docs/webhooks, "Retries") — the total span is not published, ASSUMPTION: under 30 days (a Sidekiq-style
    16-retry schedule spans about 2–3 days); ``GET /v1/events`` serves the last 30 days (OAS
    ``/v1/events``), so a poll or backfill can bring any event up to 30 days old again; Gusto
    asks receivers to store each event's ``uuid`` to recognise repeats
    (https://docs.gusto.com/embedded-payroll/docs/best-practices, "Ensure that your event
    handlers are idempotent").
    """

    system = SYSTEM
    replay_window_days = 30

    def __init__(self):
        self._endpoints: dict[str, _Endpoint] = {}

    def _endpoint(self, name: str) -> _Endpoint | None:
        """The connection's webhook facts (one store read and decrypt per ``ENDPOINT_TTL``
        seconds: a re-verified token is seen by every web process within that time)."""
        cached = self._endpoints.get(name)
        if cached is not None and time.monotonic() - cached.fetched_at < ENDPOINT_TTL:
            return cached
        with session_scope(runtime.settings().database_url) as s:
            conn = find_connection(s, name, system=SYSTEM)
            if conn is None:
                self._endpoints.pop(name, None)
                return None
            creds = repo.read_credentials(conn, runtime.vault())
            verified = repo.get_state(s, conn.id, "webhook_status") == "verified"
            found = _Endpoint(conn.id, conn.account, creds.get("webhook_verification_token"), verified,
                              time.monotonic())
        self._endpoints[name] = found
        return found

    def receive(self, connection_name: str, body: bytes, headers) -> WebhookReply:
        """One delivery to ``connection_name``; the raw ``body`` is checked before it is parsed.

        Answers 404 (unknown connection); 401 for a malformed ``X-Gusto-Signature`` (not 64
        ASCII hex digits) or one that does not verify, unless the connection is awaiting its
        one handshake (:meth:`_handshake`); 400 for a signed body that is not a well-formed
        event (:func:`parse_body`) or that is a handshake body (a handshake is accepted once, for
        the subscription we created); 200 for an event to store (``event`` set; a signed event
        older than the retention, :func:`connector_tasks.jobs.retention.stale`, is answered 200
        ``stale`` and not stored) or the awaited handshake."""
        found = self._endpoint(connection_name)
        if found is None:
            return WebhookReply(404, {"error": f"no Gusto connection named {connection_name!r}"})
        signature = headers.get(SIGNATURE_HEADER)
        if signature is not None and not well_formed_hex_signature(signature):
            return WebhookReply(401, {"error": f"{SIGNATURE_HEADER} is malformed (64 hex digits expected)"})
        if found.token and signature and verify_hex_signature(found.token, body, signature):
            try:
                data = parse_body(body)
                if handshake_token(data) is not None:
                    return WebhookReply(400, {"error": "a verification token was already received "
                                                       "for this connection; handshake refused"})
                event = parse_event(data)
            except MappingError as exc:
                return WebhookReply(400, {"error": exc.message, "detail": exc.detail})
            if stale(event.version, now=time.time(), days=retention_days()):
                return WebhookReply(200, {"status": "stale", "event": event.uuid,
                                          "detail": f"older than the {retention_days()}-day event retention"})
            return WebhookReply(200, {}, event=event, connection_id=found.id,
                                routable=routable(event, found.account), raw_body=body.decode())
        if found.verified:
            return WebhookReply(401, _UNAUTHORISED)
        return self._handshake(connection_name, body, signature)

    def _handshake(self, connection_name: str, body: bytes, signature: str | None) -> WebhookReply:
        """Gusto POSTs the verification token itself once we created a subscription: store it
        (encrypted) — only while the connection awaits it (:func:`await_handshake`: state
        ``awaiting_token``, within its window), only once (the window's nonce is claimed in
        Redis with ``SET NX``), and when signed, signed with that token. Anything else is 401;
        the body is not even parsed unless a handshake is awaited."""
        vault = runtime.vault()
        with session_scope(runtime.settings().database_url) as s:
            conn = find_connection(s, connection_name, system=SYSTEM)
            if conn is None or repo.get_state(s, conn.id, "webhook_status") != AWAITING:
                return WebhookReply(401, _UNAUTHORISED)
            window = repo.get_state(s, conn.id, "webhook_handshake") or {}
            if not window.get("nonce") or float(window.get("until") or 0) < time.time():
                return WebhookReply(401, {"error": "no webhook subscription is awaiting its verification token"})
            try:
                new_token = handshake_token(parse_body(body))
            except MappingError:
                new_token = None
            if new_token is None or (signature and not verify_hex_signature(new_token, body, signature)):
                return WebhookReply(401, _UNAUTHORISED)
            claim = f"gusto:handshake:{conn.id}:{window['nonce']}"
            if not runtime.redis_client().set(claim, "1", nx=True, ex=HANDSHAKE_WINDOW * 2):
                return WebhookReply(401, {"error": "the verification token was already received"})
            creds = repo.read_credentials(conn, vault)
            creds["webhook_verification_token"] = new_token
            repo.write_credentials(conn, vault, creds)
            repo.put_state(s, conn.id, {"webhook_status": RECEIVED})
        self._endpoints.pop(connection_name, None)
        return WebhookReply(200, {"status": "verification token received"})


RECEIVER = GustoWebhooks()
