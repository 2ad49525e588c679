"""Acumatica tasks (queue ``acumatica``, cloud workers with store access): thin, they take the
job id and its stored payload, call the adapter and record the outcome with the same code as
an agent's checked report (``jobs.results.record_outcome``, called in-process: these workers reach
the store).

Retryable errors (429, "API Login Limit", budget spent, 5xx, timeouts) are retried with a Celery
countdown (never sooner than ``Retry-After``); permanent ones (a missing GL account, Acumatica's
per-field errors, a wrong endpoint version) park the job with the text. Every attempt is an
audit row.
"""
from __future__ import annotations

import logging

from celery import shared_task

from connector_tasks import runtime
from connector_tasks.connections import get_connection
from connector_tasks.connectors.acumatica import service
from connector_tasks.connectors.acumatica.adapter import sync_employee as _sync_employee
from connector_tasks.connectors.acumatica.mapping import GlAccount
from connector_tasks.domain.model import EmployeeMaster, JournalEntry
from connector_tasks.jobs.results import record_outcome
from connector_tasks.jobs.runner import run_target_step
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob

log = logging.getLogger(__name__)


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
    def work():
        entry = JournalEntry.from_dict(payload["entry"])
        accounts = {name: GlAccount(*pair) for name, pair in payload["accounts"].items()}
        with session_scope(runtime.settings().database_url) as s:
            conn = get_connection(s, payload["connection"])
            client = service.client_for(conn)
            target = service.ledger_target(conn, accounts, client)
        with client:   # a cookie session is always logged out
            found = target.journal_status(entry.key)
            if found:
                released = target.release_if_needed(*found)
                return found[0], {"already_in_acumatica": True, "reference": entry.key, "released": released}
            batch = target.post_journal(entry)
        return batch, {"reference": entry.key, "released": target.release}

    run_target_step(self, job_id, payload, work, target_type="journal_transaction", report=record_outcome)


@shared_task(name="acumatica.sync_employee", bind=True, acks_late=True, max_retries=8)
def sync_employee(self, job_id: int, payload: dict) -> None:
    """Create or alter the Acumatica ``Employee`` of job ``job_id``.

    ``payload``: ``{"master": EmployeeMaster dict, "connection": name, "department": id|None}``.
    Matched by the stored ExternalRef of the job's source employee in this target connection
    (→ EmployeeID), then by e-mail; status
    ``Inactive`` once the master has a deactivation date. Reports ``target_type`` ``employee``
    and ``detail["action"]`` ``created`` | ``altered`` | ``unchanged``.
    """
    def work():
        master = EmployeeMaster.from_dict(payload["master"])
        with session_scope(runtime.settings().database_url) as s:
            conn = get_connection(s, payload["connection"])
            client = service.client_for(conn)
            job = s.get(SyncJob, job_id)
            source = s.get(Connection, job.connection_id) if job else None
            ref = repo.find_ref(s, connection_id=conn.id, source_system=source.system, source_type="employee",
                                source_id=master.key) if source else None
            known = ref.target_id if ref else None
        with client:
            employee_id, action = _sync_employee(client, master, department=payload.get("department"),
                                                 known_id=known)
        return employee_id, {"action": action, "employee_id": employee_id}

    run_target_step(self, job_id, payload, work, target_type="employee", report=record_outcome)
