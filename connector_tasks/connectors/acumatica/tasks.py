"""Acumatica tasks (queue ``acumatica``, cloud workers with store access): thin, they take the
job id and its stored payload, call the adapter and record the outcome with the same code as
``connector.record_post_result`` (called in-process: these workers reach the store).

Retryable errors (429, "API Login Limit", budget spent, 5xx, timeouts) are retried with a Celery
countdown (never sooner than ``Retry-After``); permanent ones (a missing GL account, Acumatica's
per-field errors, a wrong endpoint version) park the job with the text. Every attempt is an
audit row.
"""
from __future__ import annotations

import logging
from typing import Callable

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.connectors.acumatica import service
from connector_tasks.connectors.acumatica.adapter import sync_employee as _sync_employee
from connector_tasks.connectors.acumatica.client import SYSTEM
from connector_tasks.connectors.acumatica.mapping import GlAccount
from connector_tasks.core.errors import ConnectorError, RateLimitedError
from connector_tasks.core.retry import countdown
from connector_tasks.domain.model import EmployeeMaster, JournalEntry
from connector_tasks.jobs import describe, record_post_result
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import ExternalRef, utcnow

log = logging.getLogger(__name__)


def _run(task, job_id: int, base: dict, work: Callable[[], tuple[str, dict]]) -> None:
    """Run ``work() -> (target_id, detail)`` and record the outcome of job ``job_id``."""
    try:
        target_id, detail = work()
        record_post_result(job_id, {**base, "outcome": "ok", "target_id": target_id, "detail": detail})
    except (ConnectorError, SoftTimeLimitExceeded) as exc:
        retryable = exc.retryable if isinstance(exc, ConnectorError) else True
        retries = task.request.retries or 0
        if retryable and retries < task.max_retries:
            record_post_result(job_id, {**base, "outcome": "retry", "error": describe(exc)})
            after = exc.retry_after if isinstance(exc, RateLimitedError) else None
            raise task.retry(countdown=countdown(retries, after, base=runtime.settings().retry_base), exc=exc)
        record_post_result(job_id, {**base, "outcome": "failed", "error": describe(exc),
                                    "detail": {"lines": list(getattr(exc, "lines", []) or [])}})
    except Exception as exc:  # a bug or a malformed payload: park it, never lose it silently
        log.exception("%s failed for job %s", task.name, job_id)
        record_post_result(job_id, {**base, "outcome": "failed", "error": describe(exc)})


def _base(task, payload: dict, target_type: str, source_type: str) -> dict:
    return {"task_id": task.request.id, "worker": task.request.hostname, "started_at": utcnow().isoformat(),
            "phase": "post", "source_system": payload.get("source_system", "gusto"),
            "source_type": payload.get("source_type", source_type),
            "target_system": SYSTEM, "target_type": target_type,
            "seq": payload.get("seq")}   # a re-opened job's newer payload supersedes this one


@shared_task(name="acumatica.post_journal", bind=True, acks_late=True, max_retries=8)
def post_journal(self, job_id: int, payload: dict) -> None:
    """Post job ``job_id``'s journal to Acumatica exactly once.

    ``payload``: ``{"entry": JournalEntry dict, "connection": name, "accounts": {ledger:
    [account, subaccount]}}``. Looks for a GL batch carrying the entry key first (found → ``ok``
    with that ``BatchNbr``, nothing posted; released if releasing is on and it was not); else
    reads the chart of accounts and subaccounts, refuses a missing code before any write
    (parked, MappingError naming it), PUTs the balanced ``JournalTransaction`` and releases it
    when the connection says so. Reports ``target_type`` ``journal_transaction``.
    """
    base = _base(self, payload, "journal_transaction", "payroll")

    def work():
        entry = JournalEntry.from_dict(payload["entry"])
        accounts = {name: GlAccount(*pair) for name, pair in payload["accounts"].items()}
        with session_scope(runtime.settings().database_url) as s:
            conn = repo.get_connection(s, payload["connection"])
            client = service.client_for(conn)
            target = service.ledger_target(conn, accounts, client)
        with client:   # a cookie session is always logged out
            found = target.journal_status(entry.key)
            if found:
                released = target.release_if_needed(*found)
                return found[0], {"already_in_acumatica": True, "reference": entry.key, "released": released}
            batch = target.post_journal(entry)
        return batch, {"reference": entry.key, "released": target.release}

    _run(self, job_id, base, work)


@shared_task(name="acumatica.sync_employee", bind=True, acks_late=True, max_retries=8)
def sync_employee(self, job_id: int, payload: dict) -> None:
    """Create or alter the Acumatica ``Employee`` of job ``job_id``.

    ``payload``: ``{"master": EmployeeMaster dict, "connection": name, "department": id|None}``.
    Matched by the stored ExternalRef (source employee → EmployeeID), then by e-mail; status
    ``Inactive`` once the master has a deactivation date. Reports ``target_type`` ``employee``
    and ``detail["action"]`` ``created`` | ``altered`` | ``unchanged``.
    """
    base = _base(self, payload, "employee", "employee")

    def work():
        master = EmployeeMaster.from_dict(payload["master"])
        with session_scope(runtime.settings().database_url) as s:
            conn = repo.get_connection(s, payload["connection"])
            client = service.client_for(conn)
            ref = s.scalar(select(ExternalRef).where(
                ExternalRef.source_system == base["source_system"], ExternalRef.source_type == "employee",
                ExternalRef.source_id == master.key, ExternalRef.target_system == SYSTEM))
            known = ref.target_id if ref else None
        with client:
            employee_id, action = _sync_employee(client, master, department=payload.get("department"),
                                                 known_id=known)
        return employee_id, {"action": action, "employee_id": employee_id}

    _run(self, job_id, base, work)
