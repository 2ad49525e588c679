"""Gusto tasks (queue ``gusto``): thin, they take names and call the connector's source side.
Every job's prepare step is the pipeline's ``connector.prepare_job`` (sent to this queue)."""
from __future__ import annotations

import logging

from celery import shared_task

from connector_tasks.connectors.gusto import source
from connector_tasks.flows.reference import claim_reference_jobs

log = logging.getLogger(__name__)


@shared_task(name="gusto.sync_reference_data", bind=True, acks_late=True, max_retries=6)
def sync_reference_data(self, connection_name: str) -> list[int]:
    """Earning types and pay schedules of ``connection_name`` → its targets' ledger masters (on
    connect and on demand): claims (or re-opens) the reference-data job of each target and sends
    their prepare steps. Returns the job ids."""
    from connector_tasks.pipeline.tasks import publish_prepare

    job_ids = claim_reference_jobs(connection_name)
    for job_id in job_ids:
        publish_prepare(job_id)
    return job_ids


def _each_beat(work, connection_name: str, what: str) -> dict:
    """``work(connection_name)`` for a beat-driven task; an error is logged and waits for the
    next beat (which starts from the same state) rather than retrying in a storm."""
    try:
        return work(connection_name)
    except Exception:  # noqa: BLE001 - logged; the next beat tries again
        log.exception("gusto: %s of %s failed; the next beat tries again", what, connection_name)
        return {"error": True}


def _for_each_connection(task) -> list[str]:
    """Send ``task(name)`` for every connected Gusto connection; returns the names."""
    names = source.polled_connections()
    for name in names:
        task.delay(name)
    return names


@shared_task(name="gusto.poll_events", bind=True, acks_late=True, max_retries=3)
def poll_events(self, connection_name: str) -> dict:
    """The polling fallback for one connection (:func:`source.poll_events`)."""
    return _each_beat(source.poll_events, connection_name, "polling events")


@shared_task(name="gusto.poll_all")
def poll_all() -> list[str]:
    """Beat entry: one ``gusto.poll_events`` per connected Gusto connection."""
    return _for_each_connection(poll_events)


@shared_task(name="gusto.settle_due", bind=True, acks_late=True, max_retries=3)
def settle_due(self, connection_name: str) -> dict:
    """The ``payroll.paid`` stand-in for one connection (:func:`source.settle_due`)."""
    return _each_beat(source.settle_due, connection_name, "looking for funded payrolls")


@shared_task(name="gusto.settle_all")
def settle_all() -> list[str]:
    """Beat entry: one ``gusto.settle_due`` per connected Gusto connection."""
    return _for_each_connection(settle_due)
