"""Gusto webhook deliveries: the signature, the verification handshake, event parsing.

Source: https://docs.gusto.com/embedded-payroll/docs/webhooks . A delivery is signed with
``X-Gusto-Signature``: lowercase hex HMAC-SHA256 of the raw body keyed by the subscription's
``verification_token``. Before the subscription is verified Gusto POSTs
``{"verification_token": "..."}`` to the URL (the handshake), which we store and confirm with
``PUT /v1/webhook_subscriptions/{uuid}/verify``. Payloads are thin (ids only): every step
re-reads Gusto. The event table (type → flow) is :data:`connector_tasks.connectors.gusto.source.EVENT_FLOWS`.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass

from connector_tasks import runtime
from connector_tasks.connections import find_connection
from connector_tasks.core.errors import MappingError
from connector_tasks.core.signatures import verify_hex_signature
from connector_tasks.pipeline.inbound import SourceEvent, WebhookReply
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope

SIGNATURE_HEADER = "X-Gusto-Signature"
SYSTEM = "gusto"


def parse_body(body: bytes) -> dict:
    """Decode a JSON object from ``body``. Raises :class:`MappingError` for anything else."""
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
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
    """The receiver of ``POST /webhooks/gusto/<connection>`` (the registry's ``webhook``)."""

    system = SYSTEM

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
        Answers 404 (unknown connection), 401 (bad or missing signature), 400 (malformed), 200
        (an event to store — ``event`` set —, a handshake, or a handshake already stored)."""
        found = self._endpoint(connection_name)
        if found is None:
            return WebhookReply(404, {"error": f"no Gusto connection named {connection_name!r}"})
        signature = headers.get(SIGNATURE_HEADER)
        if found.token and signature and verify_hex_signature(found.token, body, signature):
            try:
                data = parse_body(body)
                if handshake_token(data):
                    return WebhookReply(200, {"status": "handshake already stored"})
                event = parse_event(data)
            except MappingError as exc:
                return WebhookReply(400, {"error": exc.message})
            return WebhookReply(200, {}, event=event, connection_id=found.id,
                                routable=routable(event, found.account), raw_body=body.decode())
        if found.verified:
            return WebhookReply(401, {"error": "signature missing or invalid"})
        return self._handshake(connection_name, body, signature)

    def _handshake(self, connection_name: str, body: bytes, signature: str | None) -> WebhookReply:
        """Before verification Gusto POSTs the verification token itself: store it (encrypted)."""
        try:
            data = parse_body(body)
        except MappingError:
            return WebhookReply(401, {"error": "signature missing or invalid"})
        new_token = handshake_token(data)
        if new_token is None or (signature and not verify_hex_signature(new_token, body, signature)):
            return WebhookReply(401, {"error": "signature missing or invalid"})
        vault = runtime.vault()
        with session_scope(runtime.settings().database_url) as s:
            conn = find_connection(s, connection_name, system=SYSTEM)
            if conn is None or repo.get_state(s, conn.id, "webhook_status") == "verified":
                return WebhookReply(401, {"error": "signature missing or invalid"})
            creds = repo.read_credentials(conn, vault)
            creds["webhook_verification_token"] = new_token
            repo.write_credentials(conn, vault, creds)
            repo.put_state(s, conn.id, {"webhook_status": "token_received"})
        self._endpoints.pop(connection_name, None)
        return WebhookReply(200, {"status": "verification token received"})


RECEIVER = GustoWebhooks()
