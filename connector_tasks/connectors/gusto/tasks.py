"""Gusto tasks (queue ``gusto``): thin, they take ids and call the connector's service."""
from __future__ import annotations

from celery import shared_task

from connector_tasks.connectors.gusto import service
from connector_tasks.jobs import run_step


@shared_task(name="gusto.handle_event", bind=True, acks_late=True, max_retries=6)
def handle_event(self, event_id: int) -> None:
    """Route inbound event ``event_id``; a processed payroll is prepared as a journal and
    handed to its target's queue. Retries Gusto's transient errors with countdown."""
    job_id = service.claim_from_event(event_id)
    if job_id is not None:
        run_step(self, job_id, "prepare", service.prepare_payroll_journal)


@shared_task(name="gusto.replay_job", bind=True, acks_late=True, max_retries=6)
def replay_job(self, job_id: int) -> None:
    """Run job ``job_id``'s Gusto step again under its own idempotency key (replay)."""
    run_step(self, job_id, "prepare", service.prepare_payroll_journal)
