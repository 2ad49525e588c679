"""Operator operations on jobs, shared by the CLI and the API: list them, replay one."""
from __future__ import annotations

from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.jobs.states import JobStatus, transition
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import SyncJob
from connector_tasks.tenants import Scope


def job_summaries(scope: Scope, status: str | None = None, limit: int = 100) -> list[dict]:
    """Jobs of ``scope`` (a tenant, or every tenant) newest first (optionally only ``status``),
    as dicts for display: ``id``, ``tenant_id``, ``flow``, ``source_id``, ``status``,
    ``attempts``, ``key``, ``revision``, ``target_ref``, ``last_error``, ``warnings``,
    ``updated_at`` (ISO). One tenant's list reads index ``(tenant_id, id)``."""
    with session_scope(runtime.settings().database_url) as s:
        q = select(SyncJob).where(scope.where(SyncJob.tenant_id)).order_by(SyncJob.id.desc()).limit(limit)
        if status:
            q = q.where(SyncJob.status == status)
        return [{"id": j.id, "tenant_id": j.tenant_id, "flow": j.flow, "source_id": j.source_id, "status": j.status,
                 "attempts": j.attempts, "key": j.idempotency_key, "revision": j.revision,
                 "target_ref": j.target_ref, "last_error": j.last_error, "warnings": j.warnings,
                 "updated_at": j.updated_at.isoformat()} for j in s.scalars(q)]


def replay_job(job_id: int, *, scope: Scope) -> dict:
    """Re-run job ``job_id`` of ``scope`` under its own idempotency key (a job of another
    tenant is answered as "no such job", like one that does not exist).

    The prepare step runs again (so a corrected mapping, connection or source takes effect) and
    hands the rebuilt payload to the target, which is asked first whether the key already
    exists: a job that already reached the target posts nothing new. A ``done`` job is left
    alone. Returns ``{"job": id, "replayed": bool, ...}``.
    """
    from connector_tasks.pipeline.tasks import publish_prepare

    if not 0 < job_id < 2**31:  # no Integer key is out there; a query would be a driver error
        return {"job": job_id, "replayed": False, "reason": "no such job"}
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        if job is None or not scope.allows(job.tenant_id):
            return {"job": job_id, "replayed": False, "reason": "no such job"}
        if job.status == JobStatus.DONE:
            return {"job": job_id, "replayed": False, "reason": "already done", "target_ref": job.target_ref}
        transition(job, JobStatus.QUEUED, error=job.last_error)
    publish_prepare(job_id)
    return {"job": job_id, "replayed": True}
