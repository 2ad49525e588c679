"""Employee flow over ports: an employee as the source knows them now → the headcount master in
the target's books (created, altered, deactivated; never deleted). See
:mod:`connector_tasks.flows.employee_to_master` for the mapping itself."""
from __future__ import annotations

from connector_tasks import runtime
from connector_tasks.connections import settings_of
from connector_tasks.core.retry import call_with_retries
from connector_tasks.flows import targets
from connector_tasks.flows.context import load_job
from connector_tasks.flows.employee_to_master import build_master
from connector_tasks.jobs.runner import hand_to_target
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection


def prepare_master(job_id: int) -> dict:
    """Read the employee from the source now, build the master and hand it to the target (e.g.
    a cost centre created or altered by the agent beside the books). Returns the payload sent.

    Each event about the employee re-opens the job as a new revision; the payload carries it, so
    an outcome of an older revision never finishes the job (the newest payload is sent again).
    Raises ConfigurationError (no target, the target keeps no employees), RejectedError (the
    source does not know the employee), the source's transient errors.
    """
    ctx = load_job(job_id)
    source = ctx.source_port()
    employee = call_with_retries(lambda: source.get_employee(ctx.source_id))
    master = build_master(employee, getattr(settings_of(ctx.source), "cost_category", None))
    with session_scope(runtime.settings().database_url) as s:
        payload = targets.employee_payload(s, s.get(Connection, ctx.target.id), master)
    hand_to_target(job_id, ctx.revision, payload)
    return payload
