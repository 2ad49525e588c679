"""Operator API: jobs (list, one, replay), audit trails and mappings.

Every route needs ``Authorization: Bearer <API_TOKEN>`` when ``API_TOKEN`` is set; in
production the API answers 403 until it is set (it can replay jobs and change mappings).
"""
from __future__ import annotations

import hmac

from flask import Blueprint, jsonify, request

from connector_tasks import runtime
from connector_tasks.core.errors import ConnectorError, MappingError
from connector_tasks.jobs.replay import job_summaries, replay_job
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _authorise():
    settings = runtime.settings()
    token = settings.api_token
    if not token:
        if settings.is_production:
            return jsonify(error="the operator API is off: set API_TOKEN"), 403
        return None
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return jsonify(error="operator API token missing or wrong"), 401
    return None


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


@bp.get("/connections/<name>/mappings")
def mappings(name: str):
    """The connection's effective payroll mapping (:func:`connector_tasks.flows.mapping.edit.show`)."""
    from connector_tasks.flows.mapping.edit import show

    try:
        return jsonify(show(name))
    except ConnectorError as exc:
        return jsonify(error=exc.message), 404


@bp.put("/connections/<name>/mappings/<kind>/<path:key>")
def set_mapping(name: str, kind: str, key: str):
    """Body ``{"ledger": "..."}``: map pay component (``kind=ledger``) or earning type
    (``kind=earning_type``) ``key`` to an existing ledger. 422 with the reason (a missing
    ledger is named); 503 when the target's agent does not answer."""
    from connector_tasks.flows.mapping.edit import set_mapping as save

    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("ledger"), str):
        return jsonify(error='body must be {"ledger": "<ledger name>"}'), 400
    try:
        return jsonify(save(name, kind, key, body["ledger"]))
    except MappingError as exc:
        return jsonify(error=exc.message), 422
    except ConnectorError as exc:
        return jsonify(error=exc.message), 503 if exc.retryable else 409
