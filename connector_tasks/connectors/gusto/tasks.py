"""Gusto tasks (queue ``gusto``): thin, they take ids and call the connector's service."""
from __future__ import annotations

import logging

from celery import shared_task

from connector_tasks import runtime
from connector_tasks.connectors.gusto import service, sync
from connector_tasks.core.retry import countdown
from connector_tasks.flows.employee_to_master import FLOW as EMPLOYEE_FLOW
from connector_tasks.flows.payroll_to_journal import FLOW as PAYROLL_FLOW
from connector_tasks.jobs import run_step

log = logging.getLogger(__name__)

#: flow → its Gusto step ``fn(job_id)``.
STEPS = {
    PAYROLL_FLOW: service.prepare_payroll_journal,
    EMPLOYEE_FLOW: sync.prepare_employee_master,
    sync.REVERSAL_FLOW: sync.prepare_reversal,
    sync.REFERENCE_FLOW: sync.prepare_reference_data,
}


@shared_task(name="gusto.handle_event", bind=True, acks_late=True, max_retries=6)
def handle_event(self, event_id: int) -> None:
    """Route inbound event ``event_id`` to its job (:func:`sync.claim_from_event`) and run the
    job's Gusto step, which hands the result to the target's queue. Retries Gusto's transient
    errors with countdown."""
    routed = sync.claim_from_event(event_id)
    if routed is not None:
        flow, job_id = routed
        run_step(self, job_id, "prepare", STEPS[flow])


@shared_task(name="gusto.handle_events", bind=True, acks_late=True, max_retries=6)
def handle_events(self, event_ids: list[int]) -> dict:
    """Route a batch of inbound events that the outbox relay published as one message: each event
    → its job (:func:`sync.claim_from_event`, store only, no Gusto call), then one
    ``gusto.prepare_job`` per routed job, published together, so every job's Gusto step runs as
    its own task with its own retries. Events are routed in order; if the store fails on one,
    the rest of the batch is retried with countdown (routing is idempotent: an event already
    routed routes to the same job again). Returns ``{"events": n, "jobs": n}``."""
    routed: list[tuple[str, int]] = []
    for done, event_id in enumerate(event_ids):
        try:
            hit = sync.claim_from_event(event_id)
        except Exception as exc:  # noqa: BLE001 - the store is unreachable: keep the rest for later
            _publish_jobs(routed)
            delay = countdown(self.request.retries or 0, base=runtime.settings().retry_base)
            log.warning("gusto: routing event %s failed (%s); %d events retried in %.0f s",
                        event_id, exc, len(event_ids) - done, delay)
            raise self.retry(args=[event_ids[done:]], countdown=delay, exc=exc)
        if hit is not None:
            routed.append(hit)
    _publish_jobs(routed)
    return {"events": len(event_ids), "jobs": len(routed)}


def _publish_jobs(routed: list[tuple[str, int]]) -> None:
    """One ``gusto.prepare_job`` per ``(flow, job id)``, over one broker connection."""
    if not routed:
        return
    from connector_tasks.celery_app import app

    with app.producer_or_acquire() as producer:
        for flow, job_id in routed:
            app.send_task("gusto.prepare_job", args=[job_id, flow], producer=producer)


@shared_task(name="gusto.prepare_job", bind=True, acks_late=True, max_retries=6)
def prepare_job(self, job_id: int, flow: str) -> None:
    """Run the Gusto step of job ``job_id`` (of ``flow``), routed from a relay batch by
    :func:`handle_events`; retries Gusto's transient errors with countdown."""
    run_step(self, job_id, "prepare", STEPS[flow])


@shared_task(name="gusto.replay_job", bind=True, acks_late=True, max_retries=6)
def replay_job(self, job_id: int) -> None:
    """Run job ``job_id``'s Gusto step again under its own idempotency key (replay)."""
    flow = sync.flow_of(job_id)
    if flow is None:
        log.warning("replay of unknown job %s", job_id)
        return
    run_step(self, job_id, "prepare", STEPS[flow])


@shared_task(name="gusto.sync_reference_data", bind=True, acks_late=True, max_retries=6)
def sync_reference_data(self, connection_name: str) -> None:
    """Earning types and pay schedules of ``connection_name`` → the target's ledger masters
    (on connect and on demand)."""
    run_step(self, sync.claim_reference_job(connection_name), "prepare", sync.prepare_reference_data)


@shared_task(name="gusto.poll_events", bind=True, acks_late=True, max_retries=3)
def poll_events(self, connection_name: str) -> dict:
    """The polling fallback for one connection (:func:`sync.poll_events`); a transient error
    waits for the next beat rather than retrying in a storm."""
    try:
        return sync.poll_events(connection_name)
    except Exception:  # noqa: BLE001 - logged; the next beat polls again from the same cursor
        log.exception("gusto: polling events of %s failed; the next beat tries again", connection_name)
        return {"error": True}


@shared_task(name="gusto.poll_all")
def poll_all() -> list[str]:
    """Beat entry: one ``gusto.poll_events`` per connected Gusto connection."""
    names = sync.polled_connections()
    for name in names:
        poll_events.delay(name)
    return names
