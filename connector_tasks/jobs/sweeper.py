"""Nothing lost: the sweeper hands on again whatever stopped moving (beat runs it every minute)."""
from __future__ import annotations

import datetime as dt
import logging

from celery import shared_task
from sqlalchemy import and_, or_, select

from connector_tasks import runtime
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.jobs.runner import dispatch
from connector_tasks.jobs.states import EventStatus, JobStatus, transition
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent, SyncJob, utcnow

log = logging.getLogger(__name__)

#: seconds an event may wait for the relay before the sweeper publishes it itself
RELAY_GRACE = 30


@shared_task(name="connector.sweep")
def sweep() -> dict:
    """Hand on again whatever stopped moving:

    * inbound events stored but never enqueued (broker or relay down when they came), after
      :data:`RELAY_GRACE` seconds → routed;
    * inbound events enqueued but never routed within the posting lease (their message was lost,
      or routing failed past its last retry) → routed again, once per lease;
    * jobs ``queued``/``running`` past their lease (a lost message, a dead worker) → their
      prepare step is sent again under the same key;
    * jobs ``posting`` past their lease (no outcome from the target) → the stored payload is sent
      to the target again, which asks the target first, so nothing posts twice.

    Returns counts ``{"events": n, "replayed": n, "reposted": n, "undeliverable": n}`` (a
    posting job whose target step cannot be sent now, e.g. its agent was revoked and no other
    is registered: logged, left ``posting`` for the next lease, the others still sent).
    """
    from connector_tasks.pipeline.tasks import publish_prepare, publish_route

    settings = runtime.settings()
    now = utcnow()
    with session_scope(settings.database_url) as s:
        events = []
        for e in s.scalars(select(InboundEvent).where(or_(
                and_(InboundEvent.status.in_([EventStatus.RECEIVED.value, EventStatus.RELAYING.value]),
                     InboundEvent.received_at < now - dt.timedelta(seconds=RELAY_GRACE)),
                and_(InboundEvent.status == EventStatus.ENQUEUED.value,
                     InboundEvent.enqueued_at < now - dt.timedelta(seconds=settings.posting_lease))))):
            if e.status == EventStatus.ENQUEUED.value:
                e.enqueued_at = now  # a new lease: enqueued again once per lease, not every minute
            events.append(e.id)
        stale = s.scalars(select(SyncJob).where(
            SyncJob.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value, JobStatus.POSTING.value]),
            SyncJob.lease_until < now)).all()
        replay, repost = [], []
        for job in stale:
            if job.status == JobStatus.POSTING and job.payload and job.payload.get("dispatch"):
                transition(job, JobStatus.POSTING, lease=settings.posting_lease)
                repost.append((job.id, job.payload))
            else:
                transition(job, JobStatus(job.status), lease=settings.visibility_timeout)
                replay.append(job.id)
    for event_id in events:
        publish_route(event_id)
    for job_id in replay:
        publish_prepare(job_id)
    undeliverable = 0
    for job_id, payload in repost:
        try:
            dispatch(job_id, payload)
        except ConfigurationError as exc:  # e.g. its agent was revoked: the others still go
            undeliverable += 1
            log.warning("job %s not reposted: %s", job_id, exc.message)
    return {"events": len(events), "replayed": len(replay), "reposted": len(repost) - undeliverable,
            "undeliverable": undeliverable}
