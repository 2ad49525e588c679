"""The pipeline's tasks, the same for every system: route events to jobs (``default`` queue,
store only), and run a job's prepare step on its source system's queue (where that system's
budget is spent)."""
from __future__ import annotations

import logging

from celery import shared_task

from config.celery import DEFAULT_QUEUE
from connector_tasks import runtime
from connector_tasks.connectors import registry
from connector_tasks.core.retry import countdown
from connector_tasks.flows.catalog import get_flow
from connector_tasks.jobs.runner import run_step
from connector_tasks.pipeline.relay import ROUTE_EVENT, ROUTE_EVENTS
from connector_tasks.pipeline.routing import route
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob

log = logging.getLogger(__name__)

PREPARE_JOB = "connector.prepare_job"


def _prepare_queue(job_id: int) -> str:
    """The queue of job ``job_id``'s prepare step: its source system's first cloud queue."""
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        if job is None:
            return DEFAULT_QUEUE
        spec = registry.find(s.get(Connection, job.connection_id).system)
    return spec.queues[0] if spec is not None and spec.queues else DEFAULT_QUEUE


def publish_prepare(job_id: int, producer=None) -> None:
    """Send job ``job_id``'s prepare step (``connector.prepare_job``) to its source's queue."""
    from connector_tasks.celery_app import app

    app.send_task(PREPARE_JOB, args=[job_id], queue=_prepare_queue(job_id), producer=producer)


def publish_route(event_id: int) -> None:
    """Send event ``event_id`` to routing (``connector.route_event``, default queue)."""
    from connector_tasks.celery_app import app

    app.send_task(ROUTE_EVENT, args=[event_id], queue=DEFAULT_QUEUE)


def _publish_jobs(job_ids: list[int]) -> None:
    """One prepare message per job, over one broker connection."""
    if not job_ids:
        return
    from connector_tasks.celery_app import app

    with app.producer_or_acquire() as producer:
        for job_id in job_ids:
            publish_prepare(job_id, producer=producer)


@shared_task(name=ROUTE_EVENTS, bind=True, acks_late=True, max_retries=6)
def route_events(self, event_ids: list[int]) -> dict:
    """Route a batch of stored events that the outbox relay published as one message: each event
    → its jobs (:func:`~connector_tasks.pipeline.routing.route`, store only), then one prepare
    message per due job, so every job's source step runs as its own task with its own retries.
    Events are routed in order; if the store fails on one, the rest of the batch is retried with
    a countdown (routing is idempotent). Returns ``{"events": n, "jobs": n}``."""
    due: list[int] = []
    for done, event_id in enumerate(event_ids):
        try:
            due.extend(route(event_id))
        except Exception as exc:  # noqa: BLE001 - the store is unreachable: keep the rest for later
            _publish_jobs(due)
            delay = countdown(self.request.retries or 0, base=runtime.settings().retry_base)
            log.warning("routing event %s failed (%s); %d events retried in %.0f s",
                        event_id, exc, len(event_ids) - done, delay)
            raise self.retry(args=[event_ids[done:]], countdown=delay, exc=exc)
    _publish_jobs(due)
    return {"events": len(event_ids), "jobs": len(due)}


@shared_task(name=ROUTE_EVENT, bind=True, acks_late=True, max_retries=6)
def route_event(self, event_id: int) -> dict:
    """Route one event (inline hand-off, the sweeper) and publish its due jobs; retried with a
    countdown when the store is unreachable."""
    try:
        due = route(event_id)
    except Exception as exc:  # noqa: BLE001 - the store is unreachable: retry later
        raise self.retry(countdown=countdown(self.request.retries or 0, base=runtime.settings().retry_base),
                         exc=exc)
    _publish_jobs(due)
    return {"events": 1, "jobs": len(due)}


@shared_task(name=PREPARE_JOB, bind=True, acks_late=True, max_retries=6)
def prepare_job(self, job_id: int) -> None:
    """Run job ``job_id``'s prepare step (its flow's ``prepare``) as one attempt; the source's
    transient errors are retried with a countdown, anything else parks the job."""
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        flow = job.flow if job else None
    if flow is None:
        log.warning("prepare of unknown job %s", job_id)
        return
    run_step(self, job_id, "prepare", get_flow(flow).prepare_step())
