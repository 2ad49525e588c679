"""Store operations with their guarantees: dedupe inbound events, claim jobs under an
idempotency key, record every attempt, record external references, keep runtime state.

Every function takes an open SQLAlchemy ``Session`` and leaves committing to the caller,
except where it says otherwise. A job's status and lease are written only by
:func:`connector_tasks.jobs.states.transition`.
"""
from __future__ import annotations

import json

from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector_tasks.core.crypto import Vault
from connector_tasks.store.db import drop_hot_connection, hot_connection
from connector_tasks.store.models import (
    Connection, ConnectionState, ExternalRef, InboundEvent, Mapping, SyncAttempt, SyncJob, utcnow,
)


def merge_settings(session: Session, connection_id: int, changes: dict) -> None:
    """Set the top-level keys ``changes`` (JSON-serialisable values) in connection
    ``connection_id``'s ``settings`` with one ``UPDATE`` that reads and writes the column in
    the database (PostgreSQL ``jsonb ||``, SQLite ``json_set``), so two writers that change
    different keys at the same moment both keep their change. (Reading ``conn.settings`` and
    assigning a new dict loses whichever commit lands first: e.g. the reference-data job
    keeping pay schedules dropped an operator's ``target`` set meanwhile.) Other keys are
    left as they are. A ``Connection`` loaded in ``session`` is expired so its next read
    sees the merged value. Raises ValueError for a key that is not letters, digits and ``_``."""
    if not changes:
        return
    bad = [key for key in changes if not key.replace("_", "").isalnum()]
    if bad:
        raise ValueError(f"settings keys must be letters, digits and underscores: {bad}")
    now = utcnow()
    if session.get_bind().dialect.name == "postgresql":
        stmt = text("UPDATE connection SET settings = (COALESCE(settings::jsonb, '{}'::jsonb) || "
                    "CAST(:patch AS jsonb))::json, updated_at = :now WHERE id = :id")
        params = {"patch": json.dumps(changes), "now": now, "id": connection_id}
    else:
        pairs = ", ".join(f"'$.{key}', json(:v{i})" for i, key in enumerate(changes))
        stmt = text(f"UPDATE connection SET settings = json_set(COALESCE(settings, '{{}}'), {pairs}), "
                    "updated_at = :now WHERE id = :id")
        params = {f"v{i}": json.dumps(value) for i, value in enumerate(changes.values())}
        params.update(now=now, id=connection_id)
    stmt = stmt.bindparams(bindparam("now", type_=Connection.__table__.c.updated_at.type))
    session.execute(stmt, params)
    loaded = session.identity_map.get(session.identity_key(Connection, connection_id))
    if loaded is not None:
        session.expire(loaded, ["settings", "updated_at"])


def get_state(session: Session, connection_id: int, key: str, default=None):
    """Runtime state ``key`` of connection ``connection_id`` (its JSON value), else ``default``."""
    row = session.scalar(select(ConnectionState).where(ConnectionState.connection_id == connection_id,
                                                       ConnectionState.key == key))
    return default if row is None else row.value


def all_state(session: Session, connection_id: int) -> dict:
    """Every runtime state key of connection ``connection_id`` → its value."""
    rows = session.scalars(select(ConnectionState).where(ConnectionState.connection_id == connection_id))
    return {r.key: r.value for r in rows}


def put_state(session: Session, connection_id: int, values: dict) -> None:
    """Set runtime state ``{key: JSON value}`` of connection ``connection_id``: one upsert per
    key (``INSERT … ON CONFLICT (connection_id, key) DO UPDATE``), so writers of different keys
    never overwrite each other and two writers of one key leave the last one's value."""
    if not values:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    now = utcnow()
    for key, value in values.items():
        stmt = insert(ConnectionState).values(connection_id=connection_id, key=key, value=value, updated_at=now)
        session.execute(stmt.on_conflict_do_update(index_elements=["connection_id", "key"],
                                                   set_={"value": stmt.excluded.value, "updated_at": now}))


def read_credentials(conn: Connection, vault: Vault) -> dict:
    """The decrypted credentials dict of ``conn`` (``{}`` when none stored)."""
    return vault.decrypt(conn.credentials) if conn.credentials else {}


def write_credentials(conn: Connection, vault: Vault, values: dict) -> None:
    """Encrypt ``values`` into ``conn.credentials`` (replaces the whole dict)."""
    conn.credentials = vault.encrypt(values)


def _ingest_sql(dialect: str, p: str) -> tuple[str, str]:
    payload = f"CAST({p} AS JSON)" if dialect == "postgresql" else p
    table = InboundEvent.__tablename__
    insert = (f"INSERT INTO {table} (system, connection_id, event_uuid, event_type, entity_type, entity_id, "
              f"entity_version, payload, source, status, deliveries, received_at) VALUES ({p}, {p}, {p}, {p}, {p}, "
              f"{p}, {p}, {payload}, {p}, {p}, 1, {p}) ON CONFLICT (system, event_uuid) DO NOTHING RETURNING id")
    bump = (f"UPDATE {table} SET deliveries = deliveries + 1 WHERE system = {p} AND event_uuid = {p} "
            "RETURNING id")
    return insert, bump


_INGEST_SQL = {d: _ingest_sql(d, p) for d, p in (("sqlite", "?"), ("postgresql", "%s"))}


def ingest_event(url: str, *, system: str, connection_id: int | None, payload: dict, event_uuid: str,
                 event_type: str, entity_type: str | None, entity_id: str | None,
                 entity_version: int | None = None, status: str = "received", source: str = "webhook",
                 payload_json: str | None = None) -> tuple[int, bool]:
    """The webhook hot path: one statement, one durable commit. Inserts the event unless (system,
    event_uuid) is known (``INSERT … ON CONFLICT DO NOTHING RETURNING id``); a duplicate only
    adds one to ``deliveries``. Returns (event id, created). The row is committed on return.

    Runs on this thread's own DB-API connection in autocommit mode (``db.hot_connection``: no
    pool checkout or ping, no statement building), under the store's writer lock on SQLite and
    durable on return (``HotConnection.durable_write``: on SQLite the fsync runs after the
    writer lock is released).
    ``payload_json`` is the payload's JSON text as received, stored verbatim (else ``payload``
    is serialised). A driver error drops the connection; on PostgreSQL a connection that had
    served before (it may have gone stale with a server restart) is retried once on a fresh
    one: if the first INSERT had committed after all, the retry counts a second delivery, so
    the event is never lost nor stored twice."""
    text = payload_json if payload_json is not None else json.dumps(payload)
    for retry in (True, False):
        conn = hot_connection(url)
        insert, bump = _INGEST_SQL[conn.dialect]
        try:
            with conn.durable_write():
                row = conn.raw.execute(insert, (system, connection_id, event_uuid, event_type, entity_type,
                                                entity_id, entity_version, text, source, status,
                                                conn.bind_datetime(utcnow()))).fetchall()
                if row:
                    created = True
                else:
                    created, row = False, conn.raw.execute(bump, (system, event_uuid)).fetchall()
            conn.used = True
            return row[0][0], created
        except conn.errors:
            drop_hot_connection(url)
            if not (retry and conn.used and conn.dialect == "postgresql"):
                raise


def find_job(session: Session, *, connection_id: int, target_id: int | None, flow: str,
             source_id: str) -> SyncJob | None:
    """The job of (connection, target, flow, source id), or ``None``."""
    target = SyncJob.target_id.is_(None) if target_id is None else SyncJob.target_id == target_id
    return session.scalar(select(SyncJob).where(SyncJob.connection_id == connection_id, target,
                                                SyncJob.flow == flow, SyncJob.source_id == source_id))


def claim_job(session: Session, *, flow: str, connection_id: int, target_id: int | None, source_id: str,
              key: str, event_id: int | None = None, version: int | None = None) -> tuple[SyncJob, bool]:
    """The job of (connection, target, flow, source id), created ``queued`` under ``key`` with
    source version ``version`` if new (a concurrent creator's row is returned instead), in the
    tenant of connection ``connection_id``; returns (job, created)."""
    job = find_job(session, connection_id=connection_id, target_id=target_id, flow=flow, source_id=source_id)
    if job is not None:
        return job, False
    from connector_tasks.jobs.states import JobStatus

    # the job's tenant is its source connection's, read by the INSERT itself
    tenant = select(Connection.tenant_id).where(Connection.id == connection_id).scalar_subquery()
    return _insert_unique(session, SyncJob(flow=flow, connection_id=connection_id, target_id=target_id,
                                           tenant_id=tenant, source_id=source_id, idempotency_key=key,
                                           event_id=event_id, source_version=version, revision=1,
                                           status=JobStatus.QUEUED.value),
                          lambda: find_job(session, connection_id=connection_id, target_id=target_id, flow=flow,
                                           source_id=source_id))


def _insert_unique(session: Session, row, lookup):
    """Insert ``row`` in a savepoint; when a unique constraint says another writer got there
    first, return that writer's row (``lookup()``) instead. Returns (row, created)."""
    try:
        with session.begin_nested():
            session.add(row)
        return row, True
    except IntegrityError:
        existing = lookup()
        if existing is None:  # pragma: no cover - the constraint fired for another reason
            raise
        return existing, False


def start_attempt(session: Session, job: SyncJob, *, phase: str, task_id: str | None,
                  worker: str | None = None) -> SyncAttempt:
    """Record the start of a try of ``job`` (its ``attempts`` counter and an attempt row)."""
    job.attempts += 1
    attempt = SyncAttempt(job_id=job.id, phase=phase, task_id=task_id, worker=worker)
    session.add(attempt)
    session.flush()
    return attempt


def finish_attempt(attempt: SyncAttempt, outcome: str, *, error: str | None = None,
                   detail: dict | None = None) -> None:
    """Close an attempt with ``outcome`` (ok, retry, failed, skipped) and its error text."""
    attempt.outcome = outcome
    attempt.finished_at = utcnow()
    attempt.error = error
    if detail is not None:
        attempt.detail = detail


def find_ref(session: Session, *, connection_id: int, source_system: str, source_type: str,
             source_id: str) -> ExternalRef | None:
    """The reference of a source object in target connection ``connection_id``, or ``None``."""
    return session.scalar(select(ExternalRef).where(
        ExternalRef.connection_id == connection_id, ExternalRef.source_system == source_system,
        ExternalRef.source_type == source_type, ExternalRef.source_id == source_id))


def record_ref(session: Session, *, connection_id: int, source_system: str, source_type: str,
               source_id: str, target_system: str, target_type: str, target_id: str) -> ExternalRef:
    """Record (or return the existing) reference: source object → ``target_id`` in target
    connection ``connection_id``."""
    ref = find_ref(session, connection_id=connection_id, source_system=source_system,
                   source_type=source_type, source_id=source_id)
    if ref is None:
        ref = ExternalRef(connection_id=connection_id, source_system=source_system,
                          source_type=source_type, source_id=source_id, target_system=target_system,
                          target_type=target_type, target_id=target_id)
        session.add(ref)
    return ref


def mapping_overrides(session: Session, connection_id: int, kind: str = "ledger") -> dict[str, dict]:
    """``{key: {"ledger": value, **extra}}`` of a connection's mapping rows of ``kind``."""
    rows = session.scalars(select(Mapping).where(Mapping.connection_id == connection_id,
                                                 Mapping.kind == kind))
    return {r.key: {"ledger": r.value, **(r.extra or {})} for r in rows}


def set_mapping(session: Session, connection_id: int, kind: str, key: str, value: str,
                extra: dict | None = None) -> Mapping:
    """Create or replace one mapping row."""
    row = session.scalar(select(Mapping).where(Mapping.connection_id == connection_id,
                                               Mapping.kind == kind, Mapping.key == key))
    if row is None:
        row = Mapping(connection_id=connection_id, kind=kind, key=key, value=value, extra=extra or {})
        session.add(row)
    else:
        row.value, row.extra = value, extra or {}
    return row


def audit_trail(session: Session, source_id: str, *, scope) -> dict:
    """Everything ``scope`` (a :class:`connector_tasks.tenants.Scope`) may see about a source
    object: events (of the scope's connections; an event of no connection only for every
    tenant), jobs with attempts (by the job's tenant), external refs (of the scope's target
    connections). Another tenant's rows are left out, so the trail reads as if they did not
    exist."""
    events_q = select(InboundEvent).where(InboundEvent.entity_id == source_id)
    refs_q = select(ExternalRef).where(ExternalRef.source_id == source_id)
    if not scope.everything:
        mine = select(Connection.id).where(scope.where(Connection.tenant_id))
        events_q = events_q.where(InboundEvent.connection_id.in_(mine))
        refs_q = refs_q.where(ExternalRef.connection_id.in_(mine))
    events = session.scalars(events_q.order_by(InboundEvent.id)).all()
    jobs = session.scalars(select(SyncJob).where(SyncJob.source_id == source_id, scope.where(SyncJob.tenant_id))
                           .order_by(SyncJob.id)).all()
    refs = session.scalars(refs_q).all()
    return {
        "source_id": source_id,
        "events": [{"id": e.id, "uuid": e.event_uuid, "type": e.event_type, "source": e.source,
                    "status": e.status, "deliveries": e.deliveries,
                    "received_at": e.received_at.isoformat()} for e in events],
        "jobs": [{"id": j.id, "flow": j.flow, "status": j.status, "key": j.idempotency_key,
                  "connection_id": j.connection_id, "target_id": j.target_id, "revision": j.revision,
                  "source_version": j.source_version,
                  "attempts": j.attempts, "last_error": j.last_error, "warnings": j.warnings,
                  "target_ref": j.target_ref, "reverses": (j.payload or {}).get("reverses"),
                  "attempts_log": [{"id": a.id, "phase": a.phase, "task_id": a.task_id,
                                    "worker": a.worker, "outcome": a.outcome, "error": a.error,
                                    "started_at": a.started_at.isoformat(),
                                    "finished_at": a.finished_at.isoformat() if a.finished_at else None,
                                    "detail": a.detail} for a in j.attempts_log]}
                 for j in jobs],
        "external_refs": [{"source": f"{r.source_system}/{r.source_type}", "connection_id": r.connection_id,
                           "target_system": r.target_system,
                           "target_type": r.target_type, "target_id": r.target_id} for r in refs],
    }
