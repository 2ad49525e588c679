"""Operator API: jobs (list, one, replay) and audit trails."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from connector_tasks import runtime
from connector_tasks.operations import job_summaries, replay_job
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/jobs")
def jobs():
    """``?status=failed`` filters; returns ``{"jobs": [...]}`` newest first."""
    return jsonify(jobs=job_summaries(status=request.args.get("status")))


@bp.post("/jobs/<int:job_id>/replay")
def replay(job_id: int):
    """Re-run a job under its own idempotency key."""
    return jsonify(replay_job(job_id))


@bp.get("/audit/<source_id>")
def audit(source_id: str):
    """The audit trail of a source object (events, jobs, attempts, references)."""
    with session_scope(runtime.settings().database_url) as s:
        return jsonify(repo.audit_trail(s, source_id))
