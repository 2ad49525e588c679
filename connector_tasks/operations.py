"""Operator operations shared by the CLI and the API: list jobs, replay a job."""
from __future__ import annotations

from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob


def job_summaries(status: str | None = None, limit: int = 100) -> list[dict]:
    """Jobs newest first (optionally only ``status``), as dicts for display."""
    with session_scope(runtime.settings().database_url) as s:
        q = select(SyncJob).order_by(SyncJob.id.desc()).limit(limit)
        if status:
            q = q.where(SyncJob.status == status)
        return [{"id": j.id, "flow": j.flow, "source_id": j.source_id, "status": j.status,
                 "attempts": j.attempts, "key": j.idempotency_key, "target_ref": j.target_ref,
                 "last_error": j.last_error, "warnings": j.warnings,
                 "updated_at": j.updated_at.isoformat()} for j in s.scalars(q)]


def replay_job(job_id: int) -> dict:
    """Re-run job ``job_id`` under its own idempotency key.

    The source step runs again (so a corrected mapping or connection takes effect) and hands the
    rebuilt entry to the target, which is asked first whether the key already exists: a job
    that already reached the target posts nothing new. A ``done`` job is left alone.
    Returns ``{"job": id, "replayed": bool, ...}``.
    """
    from connector_tasks.celery_app import app

    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        if job is None:
            return {"job": job_id, "replayed": False, "reason": "no such job"}
        if job.status == repo.DONE:
            return {"job": job_id, "replayed": False, "reason": "already done", "target_ref": job.target_ref}
        system = s.get(Connection, job.connection_id).system
        job.status = repo.QUEUED
    app.send_task(f"{system}.replay_job", args=[job_id])
    return {"job": job_id, "replayed": True}


def rotate_credentials() -> int:
    """Re-encrypt every connection's credentials under the newest Fernet key (MultiFernet
    rotation) in one transaction; returns how many were re-encrypted. Raises
    ConfigurationError when a stored secret opens with none of the configured keys."""
    vault = runtime.vault()
    count = 0
    with session_scope(runtime.settings().database_url) as s:
        for conn in s.scalars(select(Connection).where(Connection.credentials.is_not(None))):
            conn.credentials = vault.rotate(conn.credentials)
            count += 1
    return count
