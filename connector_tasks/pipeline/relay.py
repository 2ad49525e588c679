"""The outbox relay: publishes stored inbound events to the broker in batches.

With ``WEBHOOK_ENQUEUE=relay`` (the default) the web process only verifies, stores and commits an
event and answers; it never waits on the broker. This relay takes ``received`` events in
batches, publishes each system's share of a batch as one task message,
``connector.route_events(ids)`` (the same task for every system: routing reads the source's
event table from the registry), and marks them ``enqueued``. A worker routes the batch to jobs
and publishes one prepare task per routed job
(:func:`connector_tasks.pipeline.tasks.route_events`), so the per-event broker work
happens on the worker dynos, off the web tier and off the relay: a Celery task message costs
the relay ~0.2 ms of CPU (measured in bench/README.md), its share of a batch message ~0.01 ms.

* SQLite: claim (``received`` → ``relaying``, one statement under the store's writer lock, so
  two relays never claim the same row), publish, mark ``enqueued``; each step one autocommit
  statement, so the writer lock is never held while the broker is called. If publishing fails
  the batch goes back to ``received``; if the relay dies mid-batch the sweeper re-enqueues
  ``relaying`` rows after 30 s.
* PostgreSQL: claim-and-mark, publish, commit in one transaction (``FOR UPDATE SKIP LOCKED``),
  one UPDATE per batch instead of two; a failure or a dead relay rolls it back to
  ``received``. Measured under the ingest benchmark, the PostgreSQL server's CPU per request
  fell from 0.32-0.39 to 0.22-0.30 ms.

Events whose message was lost after ``enqueued`` are re-enqueued by the sweeper once the
posting lease has passed. Publishing an event twice is harmless: routing is idempotent. The
relay's statements run on its own DB-API connection (``db.hot_connection``) and find waiting
rows through the (status, id) index.
"""
from __future__ import annotations

import contextlib
import logging
import time

from config.celery import DEFAULT_QUEUE
from connector_tasks import runtime
from connector_tasks.store.db import drop_hot_connection, hot_connection
from connector_tasks.store.models import InboundEvent, utcnow

log = logging.getLogger(__name__)

#: the routing tasks (:mod:`connector_tasks.pipeline.tasks`)
ROUTE_EVENTS, ROUTE_EVENT = "connector.route_events", "connector.route_event"


def relay_once(batch: int = 500) -> int:
    """Claim up to ``batch`` stored events, publish them as one ``connector.route_events``
    message per system (ids in arrival order), mark them enqueued; returns how many.

    Raises whatever the broker raises after putting the batch back to ``received``.
    """
    url = runtime.settings().database_url
    if hot_connection(url).dialect == "postgresql":
        return _relay_in_one_transaction(url, batch)
    rows = _write(url, "UPDATE {t} SET status = 'relaying' WHERE id IN (SELECT id FROM {t} WHERE status = "
                       "'received' ORDER BY id LIMIT {p}) AND status = 'received' RETURNING id, system", (batch,),
                  returning=True)
    if not rows:
        return 0
    claimed = sorted(r[0] for r in rows)
    try:
        _publish(rows)
    except Exception:
        _write(url, "UPDATE {t} SET status = 'received' WHERE id IN ({ids}) AND status = 'relaying'", claimed)
        raise
    mark_enqueued(claimed, was="relaying")
    return len(rows)


def _relay_in_one_transaction(url: str, batch: int) -> int:
    """PostgreSQL: claim, publish and mark in one transaction, one UPDATE per batch instead of
    two. The rows are marked ``enqueued`` and stay locked until the commit, which comes after the
    broker took the batch (``SKIP LOCKED``: a second relay takes the next rows). A broker error
    rolls the transaction back, so the rows are ``received`` again; so does a relay that dies,
    when PostgreSQL sees its connection drop. A commit lost after the publish leaves the rows
    ``received``, to be published again: harmless, routing is idempotent."""
    conn = hot_connection(url)
    t = InboundEvent.__tablename__
    try:
        with conn.raw.transaction():
            rows = conn.raw.execute(
                f"UPDATE {t} SET status = 'enqueued', enqueued_at = %s WHERE id IN (SELECT id FROM {t} "
                f"WHERE status = 'received' ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, system",
                (conn.bind_datetime(utcnow()), batch)).fetchall()
            if rows:
                _publish(rows)
    except conn.errors:
        drop_hot_connection(url)
        raise
    return len(rows)


def _publish(rows: list[tuple[int, str]]) -> None:
    """One ``connector.route_events(ids)`` per system among ``rows`` of (event id, system), ids
    ascending, over one broker connection."""
    from connector_tasks.celery_app import app

    by_system: dict[str, list[int]] = {}
    for event_id, system in sorted(rows):
        by_system.setdefault(system, []).append(event_id)
    with app.producer_or_acquire() as producer, _batched(producer):
        for system, event_ids in by_system.items():
            app.send_task(ROUTE_EVENTS, args=[event_ids], producer=producer, queue=DEFAULT_QUEUE)


def hand_off(event_id: int) -> bool:
    """Hand stored ``received`` event ``event_id`` on, as the deployment is set up (the webhook
    path, polling and backfill of every source use this): with ``WEBHOOK_ENQUEUE=relay`` there
    is nothing to do, the relay publishes it in its next batch (publishing it here too would
    route it twice); with ``inline`` ``connector.route_event`` is published now and the event
    marked ``enqueued``. Returns whether it was published here.
    A broker error is logged, not raised: the event stays ``received`` and the sweeper
    enqueues it later."""
    if runtime.settings().webhook_enqueue != "inline":
        return False
    from connector_tasks.celery_app import app

    try:
        app.send_task(ROUTE_EVENT, args=[event_id], queue=DEFAULT_QUEUE)
        mark_enqueued([event_id])
    except Exception:  # noqa: BLE001 - broker down: stored and committed; the sweeper enqueues it
        log.exception("could not enqueue event %s; left for the sweeper", event_id)
        return False
    return True


def mark_enqueued(event_ids: list[int], *, was: str = "received") -> None:
    """Record that events ``event_ids`` (still in state ``was``) were handed to the broker: one
    statement, one commit (the relay after a batch; the web process with WEBHOOK_ENQUEUE=inline)."""
    _write(runtime.settings().database_url, "UPDATE {t} SET status = 'enqueued', enqueued_at = {p} "
           "WHERE id IN ({ids}) AND status = {p}", [*event_ids, was], stamp=True, tail=1)


def _write(url: str, sql: str, params, *, returning: bool = False, stamp: bool = False, tail: int = 0) -> list:
    """Run one statement on this process's hot connection (autocommit: one statement, one
    commit; SQLite: under the writer lock). ``{t}`` is the table, ``{p}`` a placeholder,
    ``{ids}`` one placeholder per parameter but the last ``tail``; ``stamp`` puts the current
    time first."""
    conn = hot_connection(url)
    params = list(params)
    sql = sql.format(t=InboundEvent.__tablename__, p=conn.param,
                     ids=", ".join([conn.param] * (len(params) - tail)))
    if stamp:
        params.insert(0, conn.bind_datetime(utcnow()))
    try:
        with conn.write_lock():
            cur = conn.raw.execute(sql, params)
            return cur.fetchall() if returning else []
    except conn.errors:
        drop_hot_connection(url)
        raise


def _batched(producer):
    """The producer's publish batch (kombu >= 5.7), else publish one by one."""
    batch = getattr(producer, "batch", None)
    return batch(max_size=10_000) if batch is not None else contextlib.nullcontext()


def run_relay(poll: float = 0.02, batch: int = 500, stop=None, sent_events: bool = False) -> None:
    """Relay forever (or until ``stop()`` is true): straight on while batches come full, else
    sleep ``poll`` seconds between looks. A broker error is logged and retried after 1 s.

    Unless ``sent_events``, this process publishes without Celery's ``task-sent`` events (a
    second message per task message; it was about 40 % of the relay's CPU when the relay sent
    one task per event): the store already records the
    hand-off (``enqueued``, ``enqueued_at``), and Flower still sees each task from the worker's
    ``task-received`` on."""
    if not sent_events:
        from connector_tasks.celery_app import app

        app.conf.task_send_sent_event = False
    while stop is None or not stop():
        try:
            n = relay_once(batch)
        except Exception:
            log.exception("relay could not publish; retrying in 1 s")
            time.sleep(1.0)
            continue
        if n < batch:
            time.sleep(poll)
