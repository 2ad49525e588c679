"""How long a replayed webhook delivery stays harmless, and the sweep that enforces it.

A webhook delivery signed with an HMAC of its body alone (no signed timestamp header) can be
sent again by anyone who captured it. It is harmless while its event id (``inbound_event``:
unique per system and ``event_uuid``) is still stored — the replay is answered ``duplicate`` and
nothing runs. So stored event ids are kept at least as long as a source may legitimately send
the same event again: each webhook receiver declares that window, ``replay_window_days`` (the
source's retry span and event-feed depth, with its vendor source, in the receiver's module), and
the retention floor is the longest declared window plus :data:`MARGIN_DAYS`. A delivery whose own
(signed, in the body) timestamp is older than the retention is refused as stale by the receiver,
so removing an old id never re-opens a replay.

``EVENT_RETENTION_DAYS`` (default :data:`DEFAULT_RETENTION_DAYS`) may be longer than the floor,
never shorter (a ConfigurationError naming the variable); :func:`prune_events` never deletes an
event id younger than the floor. Even past retention a replay would post nothing twice: every
job asks the target for its idempotency key before writing.
"""
from __future__ import annotations

import datetime as dt

from celery import shared_task
from sqlalchemy import delete, exists, select

from connector_tasks import runtime
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.jobs.states import EventStatus
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent, SyncJob, utcnow

#: days added to the longest replay window a webhook receiver declares
MARGIN_DAYS = 5
#: retention when ``EVENT_RETENTION_DAYS`` is unset
DEFAULT_RETENTION_DAYS = 90
#: event states the sweep may remove (nothing still moving through the pipeline)
PRUNABLE = (EventStatus.PROCESSED.value, EventStatus.IGNORED.value)


def replay_window_days() -> int:
    """The longest ``replay_window_days`` any registered webhook receiver declares (days a
    source may send the same event again), 0 when none does."""
    from connector_tasks.connectors import registry

    return max((int(getattr(spec.load("webhook"), "replay_window_days", 0) or 0)
                for spec in registry.with_part("webhook")), default=0)


def retention_floor_days() -> int:
    """The shortest retention allowed (days): :func:`replay_window_days` + :data:`MARGIN_DAYS`."""
    return replay_window_days() + MARGIN_DAYS


def retention_days(settings=None) -> int:
    """``EVENT_RETENTION_DAYS`` (days, default 90). Raises :class:`ConfigurationError` naming
    the variable when it is not a positive whole number or is below
    :func:`retention_floor_days` (replays inside a source's window would be re-accepted)."""
    settings = settings or runtime.settings()
    days = settings.positive("EVENT_RETENTION_DAYS", DEFAULT_RETENTION_DAYS)
    floor = retention_floor_days()
    if days < floor:
        raise ConfigurationError(
            f"EVENT_RETENTION_DAYS must be at least {floor} (a source may send an event again for "
            f"{replay_window_days()} days), got {days}")
    return days


def stale(event_epoch: int | None, *, now: float, days: int) -> bool:
    """Whether an event stamped ``event_epoch`` (Unix seconds, the vendor's own ``timestamp``)
    is older than ``days`` at ``now``: its id may already be pruned, so it is refused rather
    than stored as new. An event without a timestamp is never stale."""
    return event_epoch is not None and event_epoch < now - days * 86400


def prune_cutoff(now: dt.datetime, days: int) -> dt.datetime:
    """The received-at instant before which events may be removed. Raises
    :class:`ConfigurationError` for ``days`` below :func:`retention_floor_days` (the sweep
    never deletes an event id younger than a source's replay window)."""
    floor = retention_floor_days()
    if days < floor:
        raise ConfigurationError(f"refusing to prune events younger than {floor} days (asked for {days})")
    return now - dt.timedelta(days=days)


def prune_events(now: dt.datetime | None = None, days: int | None = None) -> int:
    """Remove inbound events received before ``now - days`` (default: now and
    :func:`retention_days`) that are finished (:data:`PRUNABLE`) and that no job points at (a
    job's event stays for its audit trail). Returns the number removed. Raises
    :class:`ConfigurationError` for a retention below :func:`retention_floor_days`."""
    settings = runtime.settings()
    cutoff = prune_cutoff(now or utcnow(), retention_days(settings) if days is None else days)
    with session_scope(settings.database_url) as s:
        result = s.execute(delete(InboundEvent).where(
            InboundEvent.received_at < cutoff,
            InboundEvent.status.in_(PRUNABLE),
            ~exists(select(SyncJob.id).where(SyncJob.event_id == InboundEvent.id))))
        return result.rowcount or 0


@shared_task(name="connector.prune_events")
def prune_events_task() -> dict:
    """Beat's daily retention sweep: ``{"pruned": n}`` (:func:`prune_events`)."""
    return {"pruned": prune_events()}
