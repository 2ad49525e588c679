"""Operator API: jobs (list, one, replay), audit trails, connections and mappings.

Every route needs ``Authorization: Bearer <token>``: an operator token made with
``ml-connector tokens create`` (stored hashed; see :mod:`connector_tasks.tenants`), or the
legacy ``API_TOKEN`` of the environment, which counts as an admin of the default tenant (kept
so existing deployments keep working; replace it with stored tokens and unset it). A missing,
unknown or revoked token is a 401. Every query runs in the caller's scope: an operator sees
only its tenant; another tenant's job, audit trail or connection is a 404, exactly like one
that does not exist (a 403 would tell that it exists); an admin sees every tenant.
"""
from __future__ import annotations

from flask import Blueprint, g, jsonify, request

from connector_tasks import runtime
from connector_tasks.core.errors import ConnectorError, MappingError
from connector_tasks.jobs.replay import job_summaries, replay_job
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from webapp.auth import caller_from_request

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.before_request
def _authorise():
    caller = caller_from_request(request)
    if caller is None:
        return jsonify(error="operator API token missing, unknown or revoked "
                             "(create one with `ml-connector tokens create`)"), 401
    g.caller = caller
    return None


def _scope():
    return g.caller.scope


#: the largest id an ``Integer`` primary key holds (PostgreSQL ``integer``); a larger one in a
#: query is a driver error (a 500), so it is answered 400 before any query
MAX_ID = 2**31 - 1


def _bad_id(job_id: int):
    """A 400 reply for a job id no row can have, else ``None``."""
    if not 0 < job_id <= MAX_ID:
        return jsonify(error=f"job id must be between 1 and {MAX_ID}"), 400
    return None


@bp.get("/jobs")
def jobs():
    """``?status=failed`` filters; returns ``{"jobs": [...]}`` (the caller's tenant's, or every
    tenant's for an admin) newest first."""
    return jsonify(jobs=job_summaries(_scope(), status=request.args.get("status")))


@bp.get("/jobs/<int:job_id>")
def job(job_id: int):
    """One job with its attempts; 404 when there is none in the caller's scope."""
    from connector_tasks.store.models import SyncJob

    if (bad := _bad_id(job_id)) is not None:
        return bad
    with session_scope(runtime.settings().database_url) as s:
        j = s.get(SyncJob, job_id)
        if j is None or not _scope().allows(j.tenant_id):
            return jsonify(error="no such job"), 404
        trail = repo.audit_trail(s, j.source_id, scope=_scope())
        return jsonify(next(x for x in trail["jobs"] if x["id"] == job_id))


@bp.post("/jobs/<int:job_id>/replay")
def replay(job_id: int):
    """Re-run a job under its own idempotency key; 404 when there is none in the caller's scope."""
    if (bad := _bad_id(job_id)) is not None:
        return bad
    result = replay_job(job_id, scope=_scope())
    if result.get("reason") == "no such job":
        return jsonify(result), 404
    return jsonify(result)


@bp.get("/audit/<source_id>")
def audit(source_id: str):
    """The audit trail of a source object (events, jobs, attempts, references) as far as the
    caller's scope reaches; 404 when nothing of it is in scope."""
    with session_scope(runtime.settings().database_url) as s:
        trail = repo.audit_trail(s, source_id, scope=_scope())
    if not (trail["events"] or trail["jobs"] or trail["external_refs"]):
        return jsonify(error=f"nothing is known about {source_id}"), 404
    return jsonify(trail)


@bp.get("/connections")
def connections():
    """``{"connections": [{name, system, status, account, tenant_id}]}`` in the caller's scope
    (never credentials)."""
    from sqlalchemy import select

    from connector_tasks.store.models import Connection

    with session_scope(runtime.settings().database_url) as s:
        rows = s.scalars(select(Connection).where(_scope().where(Connection.tenant_id)).order_by(Connection.id))
        return jsonify(connections=[{"name": c.name, "system": c.system, "status": c.status,
                                     "account": c.account, "tenant_id": c.tenant_id} for c in rows])


@bp.get("/connections/<name>/mappings")
def mappings(name: str):
    """The connection's effective payroll mapping (:func:`connector_tasks.flows.mapping.edit.show`);
    404 for a connection outside the caller's scope."""
    from connector_tasks.flows.mapping.edit import show

    try:
        return jsonify(show(name, scope=_scope()))
    except ConnectorError as exc:
        return jsonify(error=exc.message), 404


@bp.put("/connections/<name>/mappings/<kind>/<path:key>")
def set_mapping(name: str, kind: str, key: str):
    """Body ``{"ledger": "..."}``: map pay component (``kind=ledger``) or earning type
    (``kind=earning_type``) ``key`` to an existing ledger. 422 with the reason (a missing
    ledger is named); 503 when the target's agent does not answer."""
    from connector_tasks.connections import get_connection
    from connector_tasks.flows.mapping.edit import set_mapping as save

    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("ledger"), str):
        return jsonify(error='body must be {"ledger": "<ledger name>"}'), 400
    with session_scope(runtime.settings().database_url) as s:
        try:
            get_connection(s, name, scope=_scope())
        except ConnectorError as exc:
            return jsonify(error=exc.message), 404
    try:
        return jsonify(save(name, kind, key, body["ledger"], scope=_scope()))
    except MappingError as exc:
        return jsonify(error=exc.message), 422
    except ConnectorError as exc:
        return jsonify(error=exc.message), 503 if exc.retryable else 409
