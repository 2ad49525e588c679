"""Store operations with their guarantees: dedupe inbound events, claim jobs under an
idempotency key, record every attempt, park failures, record external references.

Every function takes an open SQLAlchemy ``Session`` and leaves committing to the caller,
except where it says otherwise.
"""
from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import bindparam, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from connector_tasks.core.crypto import Vault
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.store.db import drop_hot_connection, hot_connection
from connector_tasks.store.models import (
    Connection, ExternalRef, InboundEvent, Mapping, SyncAttempt, SyncJob, utcnow,
)

#: job states; ``failed`` is parked (visible, replayable), ``done`` is final.
QUEUED, RUNNING, POSTING, DONE, FAILED = "queued", "running", "posting", "done", "failed"
#: a job whose source object was cancelled before it ever reached the target: never replayed
CANCELLED = "cancelled"


def get_connection(session: Session, name: str) -> Connection:
    """The connection called ``name``. Raises :class:`ConfigurationError` when there is none."""
    conn = session.scalar(select(Connection).where(Connection.name == name))
    if conn is None:
        raise ConfigurationError(f"no connection named {name!r}")
    return conn


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
              f"payload, source, status, deliveries, received_at) VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {payload}, "
              f"{p}, {p}, 1, {p}) ON CONFLICT (system, event_uuid) DO NOTHING RETURNING id")
    bump = (f"UPDATE {table} SET deliveries = deliveries + 1 WHERE system = {p} AND event_uuid = {p} "
            "RETURNING id")
    return insert, bump


_INGEST_SQL = {d: _ingest_sql(d, p) for d, p in (("sqlite", "?"), ("postgresql", "%s"))}


def ingest_event(url: str, *, system: str, connection_id: int | None, payload: dict, event_uuid: str,
                 event_type: str, entity_type: str | None, entity_id: str | None,
                 status: str = "received", source: str = "webhook",
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
                                                entity_id, text, source, status,
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


def claim_job(session: Session, *, flow: str, connection_id: int, source_id: str, key: str,
              event_id: int | None = None) -> tuple[SyncJob, bool]:
    """The job of (flow, source_id), created under ``key`` if new; returns (job, created)."""
    lookup = select(SyncJob).where(SyncJob.flow == flow, SyncJob.source_id == source_id)
    job = session.scalar(lookup)
    if job is not None:
        return job, False
    return _insert_unique(session, SyncJob(flow=flow, connection_id=connection_id, source_id=source_id,
                                           idempotency_key=key, event_id=event_id, status=QUEUED), lookup)


def _insert_unique(session: Session, row, lookup):
    """Insert ``row`` in a savepoint; when a unique constraint says another writer got there
    first, return that writer's row instead. Returns (row, created)."""
    try:
        with session.begin_nested():
            session.add(row)
        return row, True
    except IntegrityError:
        existing = session.scalar(lookup)
        if existing is None:  # pragma: no cover - the constraint fired for another reason
            raise
        return existing, False


def start_attempt(session: Session, job: SyncJob, *, phase: str, task_id: str | None,
                  worker: str | None = None, lease_seconds: int = 300) -> SyncAttempt:
    """Record the start of a try of ``job`` and lease it for ``lease_seconds``."""
    job.attempts += 1
    job.lease_until = utcnow() + dt.timedelta(seconds=lease_seconds)
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


def mark_posting(job: SyncJob, lease_seconds: int) -> None:
    """The job's entry is handed to the target; if no outcome comes back within
    ``lease_seconds`` the sweeper hands it over again (the target dedupes by key)."""
    job.status = POSTING
    job.lease_until = utcnow() + dt.timedelta(seconds=lease_seconds)


def park(job: SyncJob, error: str) -> None:
    """Park ``job`` as failed with ``error``: visible in ``jobs list --failed``, replayable."""
    job.status = FAILED
    job.last_error = error
    job.lease_until = None


def record_ref(session: Session, *, connection_id: int, source_system: str, source_type: str,
               source_id: str, target_system: str, target_type: str, target_id: str) -> ExternalRef:
    """Record (or return the existing) source ↔ target reference."""
    ref = session.scalar(select(ExternalRef).where(
        ExternalRef.source_system == source_system, ExternalRef.source_type == source_type,
        ExternalRef.source_id == source_id, ExternalRef.target_system == target_system))
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


def audit_trail(session: Session, source_id: str) -> dict:
    """Everything known about a source object: events, jobs with attempts, external refs."""
    events = session.scalars(select(InboundEvent).where(InboundEvent.entity_id == source_id)
                             .order_by(InboundEvent.id)).all()
    jobs = session.scalars(select(SyncJob).where(SyncJob.source_id == source_id).order_by(SyncJob.id)).all()
    refs = session.scalars(select(ExternalRef).where(ExternalRef.source_id == source_id)).all()
    return {
        "source_id": source_id,
        "events": [{"id": e.id, "uuid": e.event_uuid, "type": e.event_type, "source": e.source,
                    "status": e.status, "deliveries": e.deliveries,
                    "received_at": e.received_at.isoformat()} for e in events],
        "jobs": [{"id": j.id, "flow": j.flow, "status": j.status, "key": j.idempotency_key,
                  "attempts": j.attempts, "last_error": j.last_error, "warnings": j.warnings,
                  "target_ref": j.target_ref, "reverses": (j.payload or {}).get("reverses"),
                  "attempts_log": [{"id": a.id, "phase": a.phase, "task_id": a.task_id,
                                    "worker": a.worker, "outcome": a.outcome, "error": a.error,
                                    "started_at": a.started_at.isoformat(),
                                    "finished_at": a.finished_at.isoformat() if a.finished_at else None,
                                    "detail": a.detail} for a in j.attempts_log]}
                 for j in jobs],
        "external_refs": [{"source": f"{r.source_system}/{r.source_type}", "target_system": r.target_system,
                           "target_type": r.target_type, "target_id": r.target_id} for r in refs],
    }
