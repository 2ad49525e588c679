"""SQLAlchemy 2 models of the store and the audit trail.

* :class:`Tenant`: one customer (workspace). Every connection and every job carries its
  ``tenant_id``; events, attempts, state, mappings and external references belong to the
  tenant of their connection (or job). See "Tenant scoping" in ``docs/architecture.md``.
* :class:`ApiToken`: an operator's API credential (SHA-256 of the token, never the token),
  with a role (``operator`` of one tenant, ``admin`` of the service) and a revocation time.
* :class:`Connection`: one linked account of one system, credentials encrypted, typed
  settings (the system's settings dataclass, validated when written).
* :class:`ConnectionState`: what the connector learns while it runs, one row per connection
  and key (cursors, webhook status, masters snapshots, pay schedules), kept out of settings.
* :class:`InboundEvent`: every webhook or polled event, unique per (system, event uuid).
* :class:`SyncJob`: one unit of work per (connection, target, flow, source object), with its
  idempotency key, the source version it last saw and its revision.
* :class:`SyncAttempt`: every try of a job: task id, times, outcome, error text, detail.
* :class:`ExternalRef`: source id ↔ target id in one target connection, recorded after the
  target accepted.
* :class:`Mapping`: per-connection overrides (pay component → ledger, cost category).

Statuses are the enums of :mod:`connector_tasks.jobs.states` (stored as their string values);
only :func:`connector_tasks.jobs.states.transition` writes a job's status and lease.
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON, BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    """Timezone-aware now in UTC."""
    return dt.datetime.now(dt.timezone.utc)


class Base(DeclarativeBase):
    """Declarative base of every model."""


#: the tenant every row created before tenants existed belongs to (migration 0005), and the
#: tenant of the demo and the kits
DEFAULT_TENANT_ID = 1
DEFAULT_TENANT = "default"


class Tenant(Base):
    """A customer's workspace: ``name`` (unique, letters, digits, ``-`` and ``_``)."""

    __tablename__ = "tenant"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class ApiToken(Base):
    """An operator credential of tenant ``tenant_id``: ``token_hash`` is the hex SHA-256 of the
    token (the token itself is shown once, at creation, and never stored); ``role`` is
    ``operator`` (sees its own tenant only) or ``admin`` (sees every tenant); ``revoked_at``
    is set when revoked (the token is refused from then on); ``label`` says whose it is."""

    __tablename__ = "api_token"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id"), nullable=False, index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    label: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class Connection(Base):
    """A connected account of tenant ``tenant_id``: ``system`` (a registry name), ``account`` (the account in that
    system: a company id or name), ``credentials`` (Fernet token of a JSON dict), ``settings``
    (the system's settings dataclass as JSON: targets, URLs, options), ``status``
    (``pending``, ``connected``)."""

    __tablename__ = "connection"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenant.id", name="fk_connection_tenant_id_tenant"),
                                           default=DEFAULT_TENANT_ID, nullable=False, index=True)
    system: Mapped[str] = mapped_column(String(32), nullable=False)
    account: Mapped[str | None] = mapped_column(String(255))
    credentials: Mapped[str | None] = mapped_column(Text)
    settings: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    status: Mapped[str] = mapped_column(String(32), default="pending", nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False)


class ConnectionState(Base):
    """One piece of runtime state of a connection: ``key`` (e.g. ``events_cursor``,
    ``webhook_status``), ``value`` (JSON), ``updated_at``. One row per (connection, key), so
    two writers of different keys never overwrite each other."""

    __tablename__ = "connection_state"
    __table_args__ = (UniqueConstraint("connection_id", "key", name="uq_connection_state_conn_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    value: Mapped[object] = mapped_column(JSON, nullable=True)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False)


class InboundEvent(Base):
    """An event received by webhook or poll. ``status`` (:class:`~connector_tasks.jobs.states.
    EventStatus`): received → relaying → enqueued → processed, or ignored. ``payload`` is the
    parsed JSON as received; ``entity_version`` the source's version of the object it is about
    (an integer the source increases: an event timestamp, an AlterID), when it has one."""

    __tablename__ = "inbound_event"
    __table_args__ = (UniqueConstraint("system", "event_uuid", name="uq_inbound_event_system_uuid"),
                      Index("ix_inbound_event_status_id", "status", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    system: Mapped[str] = mapped_column(String(32), nullable=False)
    connection_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: see migration 0003
    event_uuid: Mapped[str] = mapped_column(String(64), nullable=False)
    event_type: Mapped[str] = mapped_column(String(64), nullable=False)
    entity_type: Mapped[str | None] = mapped_column(String(64))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    entity_version: Mapped[int | None] = mapped_column(BigInteger)
    source: Mapped[str] = mapped_column(String(16), default="webhook", nullable=False)
    payload: Mapped[dict] = mapped_column(JSON, nullable=False)
    status: Mapped[str] = mapped_column(String(16), default="received", nullable=False)
    deliveries: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    received_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    enqueued_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class SyncJob(Base):
    """One unit of work of tenant ``tenant_id`` (its source connection's tenant, copied so
    that the operator's job list filters on one indexed column): ``flow`` applied to
    ``source_id`` of source connection ``connection_id`` for target connection ``target_id``, under ``idempotency_key`` (the key
    the target is asked about before any write).

    ``status`` (:class:`~connector_tasks.jobs.states.JobStatus`): queued → running → posting →
    done; or failed (parked, replayable), cancelled (undone at the source before it reached the
    target). ``source_version`` is the newest source version routed to the job; ``revision``
    counts the times the job was re-opened because the source object changed (each revision
    re-reads the source, so the target ends in the source's current state). ``payload`` holds
    what the target step needs (the journal entry), ``target_ref`` what the target answered,
    ``warnings`` what a person should see."""

    __tablename__ = "sync_job"
    __table_args__ = (UniqueConstraint("connection_id", "target_id", "flow", "source_id",
                                       name="uq_sync_job_conn_target_flow_source"),
                      Index("ix_sync_job_status_lease", "status", "lease_until"),
                      Index("ix_sync_job_tenant_id_id", "tenant_id", "id"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # no foreign key: it is copied from the source connection in the job's INSERT (which
    # already checks that connection), and a second key would make every job insert on
    # PostgreSQL lock the tenant's row, shared by all its connections (see migration 0003)
    tenant_id: Mapped[int] = mapped_column(Integer, nullable=False)
    flow: Mapped[str] = mapped_column(String(64), nullable=False)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"), nullable=False)
    target_id: Mapped[int | None] = mapped_column(ForeignKey("connection.id", name="fk_sync_job_target_id_connection"))
    source_id: Mapped[str] = mapped_column(String(128), nullable=False, index=True)
    source_version: Mapped[int | None] = mapped_column(BigInteger)
    revision: Mapped[int] = mapped_column(Integer, default=1, nullable=False)
    idempotency_key: Mapped[str] = mapped_column(String(200), nullable=False, index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("inbound_event.id"))
    status: Mapped[str] = mapped_column(String(16), default="queued", nullable=False)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    last_error: Mapped[str | None] = mapped_column(Text)
    warnings: Mapped[list] = mapped_column(JSON, default=list, nullable=False)
    payload: Mapped[dict | None] = mapped_column(JSON)
    target_ref: Mapped[str | None] = mapped_column(String(255))
    lease_until: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow, nullable=False)
    attempts_log: Mapped[list["SyncAttempt"]] = relationship(back_populates="job", order_by="SyncAttempt.id")


class SyncAttempt(Base):
    """One try of a job step: ``phase`` (prepare, post), ``outcome`` (running, ok, retry,
    failed), the Celery ``task_id``, times, error text and the target's reply."""

    __tablename__ = "sync_attempt"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("sync_job.id"), nullable=False, index=True)
    phase: Mapped[str] = mapped_column(String(32), nullable=False)
    task_id: Mapped[str | None] = mapped_column(String(64))
    worker: Mapped[str | None] = mapped_column(String(128))
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    outcome: Mapped[str] = mapped_column(String(16), default="running", nullable=False)
    error: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict | None] = mapped_column(JSON)
    job: Mapped[SyncJob] = relationship(back_populates="attempts_log")


class ExternalRef(Base):
    """``source_system/source_type/source_id`` was written to target connection
    ``connection_id`` (of ``target_system``) as ``target_id``."""

    __tablename__ = "external_ref"
    __table_args__ = (UniqueConstraint("connection_id", "source_system", "source_type", "source_id",
                                       name="uq_external_ref_target_source"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"), nullable=False)
    source_system: Mapped[str] = mapped_column(String(32), nullable=False)
    source_type: Mapped[str] = mapped_column(String(32), nullable=False)
    source_id: Mapped[str] = mapped_column(String(128), nullable=False)
    target_system: Mapped[str] = mapped_column(String(32), nullable=False)
    target_type: Mapped[str] = mapped_column(String(32), nullable=False)
    target_id: Mapped[str] = mapped_column(String(255), nullable=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow, nullable=False)


class Mapping(Base):
    """A per-connection mapping row: ``kind`` (``ledger``, ``cost_category``), ``key`` (the pay
    component), ``value`` (the target's name), ``extra`` (e.g. the ledger's parent group)."""

    __tablename__ = "mapping"
    __table_args__ = (UniqueConstraint("connection_id", "kind", "key", name="uq_mapping_conn_kind_key"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connection.id"), nullable=False)
    kind: Mapped[str] = mapped_column(String(32), nullable=False)
    key: Mapped[str] = mapped_column(String(64), nullable=False)
    value: Mapped[str] = mapped_column(String(255), nullable=False)
    extra: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
