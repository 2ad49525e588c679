"""The inbound path every source shares: a webhook, a poll or a backfill produces
:class:`SourceEvent` values; :func:`store` records each one once (unique per system and event
id) and :func:`connector_tasks.pipeline.relay.hand_off` passes it on to routing.

A system's webhook receiver (its registry entry's ``webhook``) turns a request into a
:class:`WebhookReply`: the HTTP answer and, when the delivery is an event, the event to store.
The web tier stores it (durably, before answering) and hands it off; the receiver itself never
touches the store, so every source is received the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field

from connector_tasks import runtime
from connector_tasks.jobs.states import EventStatus
from connector_tasks.pipeline.relay import hand_off
from connector_tasks.store import repo


@dataclass(frozen=True)
class SourceEvent:
    """One event of a source, as its connector parsed it.

    ``uuid``: the source's event id (the dedupe key within the system); ``event_type``;
    ``entity_type`` / ``entity_id``: the object it is about; ``version``: the source's version
    of that object when the source has one (an integer it only increases: an event timestamp,
    an AlterID), else ``None``; ``account``: the source account the event belongs to (a company
    id), used to refuse another account's events; ``raw``: the event as received (JSON-safe).
    """

    uuid: str
    event_type: str
    entity_type: str | None
    entity_id: str | None
    version: int | None = None
    account: str | None = None
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class WebhookReply:
    """What the web tier answers a delivery: HTTP ``status`` and a JSON ``body``; ``event``
    (with ``connection_id``) when the delivery is an event to store, ``routable`` false when it
    is stored only for the record (no flow for it, another account's event); ``raw_body`` the
    request's text, stored verbatim."""

    status: int
    body: dict
    event: SourceEvent | None = None
    connection_id: int | None = None
    routable: bool = True
    raw_body: str | None = None


def store(system: str, connection_id: int | None, event: SourceEvent, *, source: str = "webhook",
          routable: bool = True, raw_body: str | None = None) -> tuple[int, bool]:
    """Record ``event`` of ``system`` for connection ``connection_id`` unless (system, uuid) is
    known (then only its delivery count grows); committed and durable on return. ``source`` is
    how it came (``webhook``, ``poll``, ``backfill``); an event that is not ``routable`` is
    stored ``ignored``. Returns (event id, created). Raises the store's errors."""
    status = EventStatus.RECEIVED if routable else EventStatus.IGNORED
    return repo.ingest_event(runtime.settings().database_url, system=system, connection_id=connection_id,
                             payload=event.raw, event_uuid=event.uuid, event_type=event.event_type,
                             entity_type=event.entity_type, entity_id=event.entity_id,
                             entity_version=event.version, status=status.value, source=source,
                             payload_json=raw_body)


def accept(system: str, connection_id: int | None, event: SourceEvent, *, source: str,
           routable: bool = True, raw_body: str | None = None) -> tuple[int, bool]:
    """:func:`store` the event, then hand a new routable one on to routing (the relay, or at
    once with ``WEBHOOK_ENQUEUE=inline``). Returns (event id, created)."""
    event_id, created = store(system, connection_id, event, source=source, routable=routable, raw_body=raw_body)
    if created and routable:
        hand_off(event_id)
    return event_id, created


def receive(system: str, reply: WebhookReply) -> WebhookReply:
    """Store the event a receiver accepted (if any) and hand it on; returns the reply to send,
    its body saying ``accepted`` or ``duplicate``."""
    if reply.event is None:
        return reply
    event_id, created = accept(system, reply.connection_id, reply.event, source="webhook",
                               routable=reply.routable, raw_body=reply.raw_body)
    body = {**reply.body, "status": "accepted" if created else "duplicate", "event": reply.event.uuid}
    return WebhookReply(reply.status, body)


def canonical_json(data: dict) -> str:
    """``data`` as compact JSON text (what a poll or a backfill stores as the raw event)."""
    return json.dumps(data, separators=(",", ":"), default=str)
