"""IFS Cloud tasks (queue ``ifs_cloud``, cloud workers with store access): thin, they take the
job id and its stored payload (:mod:`.target`), call the adapter and record the outcome with the
same code as an agent's checked report (``jobs.results.record_outcome``, called in-process: these
workers reach the store).

Retryable errors (429 and 503 beyond the in-call retries, the budget spent, other 5xx,
``MI_MODIFIED_ERROR`` twice, timeouts) are retried with a Celery countdown (never sooner than
``Retry-After``); permanent ones park the job with IFS's own text or the check that failed
(company, account, code part, period, currency). Every attempt is an audit row.
"""
from __future__ import annotations

from celery import shared_task

from connector_tasks import runtime
from connector_tasks.connections import get_connection
from connector_tasks.connectors.ifs_cloud import service
from connector_tasks.connectors.ifs_cloud.adapter import post_per_company
from connector_tasks.connectors.ifs_cloud.employees import sync_customer, sync_resource
from connector_tasks.connectors.ifs_cloud.mapping import CostCentres, IfsAccount
from connector_tasks.connectors.ifs_cloud.vouchers import reference_of
from connector_tasks.domain.model import EmployeeMaster, JournalEntry
from connector_tasks.jobs.results import record_outcome
from connector_tasks.jobs.runner import run_target_step
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob


def voucher_ref(ids: dict[str, str]) -> str:
    """The job's target id: ``"<company>:<voucher id>"`` per company, joined with ``;`` (e.g.
    ``"10:Z-2021-1;30:Z-2021-1"``)."""
    return ";".join(f"{company}:{voucher}" for company, voucher in ids.items())


@shared_task(name="ifs_cloud.post_vouchers", bind=True, acks_late=True, max_retries=8)
def post_vouchers(self, job_id: int, payload: dict) -> None:
    """Post job ``job_id``'s journal as one IFS voucher per company, exactly once.

    ``payload`` (:func:`.target.journal_payload`): ``{"entry", "connection", "companies":
    {company: JournalEntry dict}, "accounts": {ledger: {"account", "cost_centre",
    "code_parts"}}, "cost_centres"}``. IFS is asked first, per company, whether the entry's
    key already made a voucher (a worker killed between IFS's write and our record finds it
    here and writes nothing); every company still to post is checked before the first write
    (accounts and code parts exist and are valid in that company, the period is open, the
    company's currency); then each is posted (:func:`~.adapter.post_per_company`). The job is
    done only when every company's voucher exists: ``target_type`` ``voucher``, ``target_id``
    :func:`voucher_ref`, ``detail`` ``{"vouchers": {company: voucher id}, "already_in_ifs":
    [companies], "reference": <LoadId / ReferenceNumber>}``.
    """
    def work():
        entry = JournalEntry.from_dict(payload["entry"])
        parts = {company: JournalEntry.from_dict(e) for company, e in payload["companies"].items()}
        accounts = {name: IfsAccount(a["account"], bool(a["cost_centre"]), dict(a.get("code_parts") or {}))
                    for name, a in payload["accounts"].items()}
        centres = CostCentres.from_dict(payload["cost_centres"])
        with session_scope(runtime.settings().database_url) as s:
            conn = get_connection(s, payload["connection"])
            client = service.client_for(conn)
            currency = service.check_settings(conn).currency
            targets = {company: service.ledger_target(conn, client, company, accounts, centres) for company in parts}
        for target in targets.values():
            target.currency = currency
        try:
            ids, already = post_per_company(targets, parts)
        finally:
            client.session.close()
        return voucher_ref(ids), {"vouchers": ids, "already_in_ifs": already, "reference": reference_of(entry.key),
                                  "key": entry.key}

    run_target_step(self, job_id, payload, work, target_type="voucher", report=record_outcome)


@shared_task(name="ifs_cloud.sync_employee", bind=True, acks_late=True, max_retries=8)
def sync_employee(self, job_id: int, payload: dict) -> None:
    """Create or alter the IFS customer or project resource of job ``job_id``'s employee.

    ``payload`` (:func:`.target.employee_payload`): ``{"master": EmployeeMaster dict,
    "connection", "mode": "customer" | "project_resource", "company"}``. Matched by the
    ExternalRef this connection recorded for the employee, then by e-mail, then by employee
    number (:mod:`.employees`); never duplicated; inactive once the master has a deactivation
    date. Reports ``target_type`` ``customer`` (id: CustomerId) or ``project_resource`` (id:
    ``<company>:<ResourceId>``) and ``detail["action"]`` ``created`` | ``altered`` |
    ``unchanged``.
    """
    mode = payload.get("mode") or "customer"

    def work():
        master = EmployeeMaster.from_dict(payload["master"])
        with session_scope(runtime.settings().database_url) as s:
            conn = get_connection(s, payload["connection"])
            settings = service.check_settings(conn)
            client = service.client_for(conn)
            job = s.get(SyncJob, job_id)
            source = s.get(Connection, job.connection_id) if job else None
            ref = repo.find_ref(s, connection_id=conn.id, source_system=source.system, source_type="employee",
                                source_id=master.key) if source else None
            known = ref.target_id if ref is not None and ref.target_type == mode else None
        try:
            if mode == "project_resource":
                target_id, action = sync_resource(client, master, payload["company"], known_id=known)
            else:
                target_id, action = sync_customer(client, master, known_id=known, country=settings.customer_country,
                                                  language=settings.customer_language)
        finally:
            client.session.close()
        return target_id, {"action": action, mode: target_id, "company": payload.get("company")}

    run_target_step(self, job_id, payload, work, target_type=mode, report=record_outcome)
