"""The outbox relay: publishes stored inbound events to the broker in batches.

With ``WEBHOOK_ENQUEUE=relay`` the web process only verifies, stores and commits an event and
answers; it never waits on the broker. This relay claims ``received`` events in batches
(``received`` → ``relaying``, one statement, so two relays never claim the same row), publishes
them over one broker connection, and marks them ``enqueued``. If publishing fails the batch goes
back to ``received``; if the relay dies mid-batch the sweeper re-enqueues ``relaying`` rows
after a minute. Publishing a row twice is harmless: the task is idempotent.
"""
from __future__ import annotations

import logging
import time

from sqlalchemy import select, update

from connector_tasks import runtime
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent, utcnow

log = logging.getLogger(__name__)


def relay_once(batch: int = 500) -> int:
    """Claim up to ``batch`` stored events, publish them, mark them enqueued; returns how many.

    Raises whatever the broker raises after putting the batch back to ``received``.
    """
    from connector_tasks.celery_app import app

    url = runtime.settings().database_url
    with session_scope(url) as s:
        ids = select(InboundEvent.id).where(InboundEvent.status == "received").order_by(InboundEvent.id).limit(batch)
        rows = s.execute(update(InboundEvent).where(InboundEvent.id.in_(ids), InboundEvent.status == "received")
                         .values(status="relaying").returning(InboundEvent.id, InboundEvent.system)).all()
    if not rows:
        return 0
    claimed = [r[0] for r in rows]
    try:
        with app.producer_or_acquire() as producer:
            for event_id, system in rows:
                app.send_task(f"{system}.handle_event", args=[event_id], producer=producer)
    except Exception:
        with session_scope(url) as s:
            s.execute(update(InboundEvent).where(InboundEvent.id.in_(claimed), InboundEvent.status == "relaying")
                      .values(status="received"))
        raise
    with session_scope(url) as s:
        s.execute(update(InboundEvent).where(InboundEvent.id.in_(claimed), InboundEvent.status == "relaying")
                  .values(status="enqueued", enqueued_at=utcnow()))
    return len(rows)


def run_relay(poll: float = 0.02, batch: int = 500, stop=None) -> None:
    """Relay forever (or until ``stop()`` is true): straight on while batches come full, else
    sleep ``poll`` seconds between looks. A broker error is logged and retried after 1 s."""
    while stop is None or not stop():
        try:
            n = relay_once(batch)
        except Exception:
            log.exception("relay could not publish; retrying in 1 s")
            time.sleep(1.0)
            continue
        if n < batch:
            time.sleep(poll)
