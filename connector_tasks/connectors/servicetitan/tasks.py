"""ServiceTitan tasks (queue ``servicetitan``, cloud workers with store access): thin — they
take the job's stored payload (:mod:`.target`), do the work of :mod:`.purchasing` and record
the outcome in-process (:func:`~connector_tasks.jobs.results.record_outcome`).

Retryable errors (a 429 beyond the budget's wait, 5xx, timeouts, the budget spent) are retried
with a Celery countdown never sooner than ``Retry-After``; ServiceTitan's refusals park the job
with its own text. Every attempt is an audit row; ``detail["actions"]`` says what was done.
"""
from __future__ import annotations

from celery import shared_task

from connector_tasks import runtime
from connector_tasks.connections import get_connection
from connector_tasks.connectors.servicetitan import purchasing, service
from connector_tasks.connectors.servicetitan.client import SYSTEM
from connector_tasks.jobs.results import record_outcome
from connector_tasks.jobs.runner import run_target_step
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection
from sqlalchemy import select


def _client(name: str):
    with session_scope(runtime.settings().database_url) as s:
        return service.client_for(get_connection(s, name, system=SYSTEM))


@shared_task(name="servicetitan.sync_purchase", bind=True, acks_late=True, max_retries=8)
def sync_purchase(self, job_id: int, payload: dict) -> None:
    """Carry out job ``job_id``'s purchase payload exactly once: ``action`` ``purchase`` (PO +
    receipt, :func:`.purchasing.sync_purchase`), ``return`` (:func:`.purchasing.sync_return`)
    or ``cancel`` (:func:`.purchasing.cancel`). Reports ``target_type`` ``purchase_order`` or
    ``return`` with the ServiceTitan id."""
    action = payload.get("action")
    target_type = "return" if action == "return" or (action == "cancel" and payload.get("known_type") == "return") \
        else "purchase_order"

    def work():
        client = _client(payload["connection"])
        try:
            if action == "purchase":
                return purchasing.sync_purchase(client, payload)
            if action == "return":
                return purchasing.sync_return(client, payload)
            if action == "cancel":
                return purchasing.cancel(client, payload)
            raise ValueError(f"unknown purchase action {action!r}")
        finally:
            client.session.close()

    run_target_step(self, job_id, payload, work, target_type=target_type, report=record_outcome)


@shared_task(name="servicetitan.refresh_catalogs", acks_late=True)
def refresh_catalogs() -> dict:
    """Refresh every ServiceTitan connection's vendor and material cache (beat, every
    ``SERVICETITAN_CATALOG_SECONDS``); a connection that fails is logged and skipped. Returns
    ``{connection name: "ok" | error text}``."""
    out = {}
    with session_scope(runtime.settings().database_url) as s:
        conns = list(s.scalars(select(Connection).where(Connection.system == SYSTEM)))
        s.expunge_all()
    for conn in conns:
        try:
            client = service.client_for(conn)
            try:
                service.refresh_catalog(conn, client)
            finally:
                client.session.close()
            out[conn.name] = "ok"
        except Exception as exc:  # noqa: BLE001 - one tenant's trouble must not stop the others
            out[conn.name] = f"{type(exc).__name__}: {exc}"
    return out
