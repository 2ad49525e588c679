"""Reference-data flow over ports: the source's earning types and pay schedules → the ledgers
payroll journals will use, created in the target's books ahead of the first payroll."""
from __future__ import annotations

from connector_tasks import runtime
from connector_tasks.connections import get_connection, targets_of
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.retry import call_with_retries
from connector_tasks.domain.ports import Role
from connector_tasks.flows import targets
from connector_tasks.flows.catalog import REFERENCE_FLOW, get_flow
from connector_tasks.flows.context import load_job
from connector_tasks.flows.mapping.payroll import UNALLOCATED_COST_CENTRE
from connector_tasks.flows.payroll import payroll_mapping
from connector_tasks.jobs.runner import finish, hand_to_target
from connector_tasks.jobs.states import JobStatus, transition
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


def claim_reference_jobs(connection_name: str) -> list[int]:
    """The reference-data job of source connection ``connection_name`` for each of its ledger
    targets (created once, re-opened on each call as a new revision). Raises ConfigurationError
    when the connection is not connected to an account or names no ledger target."""
    flow = get_flow(REFERENCE_FLOW)
    with session_scope(runtime.settings().database_url) as s:
        conn = get_connection(s, connection_name)
        if not conn.account:
            raise ConfigurationError(f"connection {connection_name!r} is not connected to a company")
        found = targets_of(s, conn, Role.LEDGER_TARGET)
        if not found:
            raise ConfigurationError(f"connection {connection_name!r} names no target connection")
        source_id = f"{conn.account}:reference-data"
        ids = []
        for target in found:
            job, created = repo.claim_job(s, flow=flow.name, connection_id=conn.id, target_id=target.id,
                                          source_id=source_id, key=flow.key(conn.system, source_id))
            if not created and job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
                job.revision += 1
                transition(job, JobStatus.QUEUED)
            ids.append(job.id)
        return ids


def prepare_reference_data(job_id: int) -> dict | None:
    """Read the company's earning types and pay schedules from the source; keep them as the
    connection's runtime state (``earning_types``, ``pay_schedules``) and make the target hold
    every ledger the payroll journals may use: the components' default ledgers, one per active
    earning type (under the wages group), and the ``Unallocated`` cost centre. Returns the
    payload sent, or ``None`` when the target keeps no such masters (the job ends with a note)."""
    ctx = load_job(job_id)
    source = ctx.source_port()
    earning_types = call_with_retries(source.earning_types)
    schedules = call_with_retries(source.pay_schedules)
    with session_scope(runtime.settings().database_url) as s:
        repo.put_state(s, ctx.source.id, {"earning_types": earning_types, "pay_schedules": schedules})
        mapping = payroll_mapping(s, ctx.source)
        ledgers = mapping.ledger_masters(None, earning_types)
        try:
            payload = targets.masters_payload(s, s.get(Connection, ctx.target.id), ledgers,
                                              [(mapping.cost_category, UNALLOCATED_COST_CENTRE)])
        except ConfigurationError as exc:
            note = f"reference data read; {exc}"
            payload = None
    if payload is None:
        finish(job_id, ctx.revision, JobStatus.DONE, warnings=[note])
        return None
    hand_to_target(job_id, ctx.revision, payload)
    return payload
