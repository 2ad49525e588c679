"""What a flow's prepare step knows about its job: the job, its source and target connections,
and the ports of the source (from the source system's registry ``source`` module)."""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from connector_tasks import runtime
from connector_tasks.connections import Endpoint, endpoint, targets_of
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.flows.catalog import get_flow
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, InboundEvent, SyncJob


@dataclass(frozen=True)
class JobContext:
    """A job as its prepare step sees it (detached): ``job_id``, ``flow``, ``source_id``,
    ``key``, ``revision`` (the revision this step prepares), the event that last routed it
    (``event_type``, ``event_payload``), and its ``source`` and ``target`` connections."""

    job_id: int
    flow: str
    source_id: str
    key: str
    revision: int
    event_type: str | None
    event_payload: dict | None
    source: Endpoint
    target: Endpoint

    def source_port(self):
        """The source system's ports for the source connection (``open(endpoint)`` of its
        registry ``source`` module): an object with the flow's source methods."""
        return self.source.spec.load("source").open(self.source)


def _adopt_target(s: Session, job: SyncJob, conn: Connection) -> Connection:
    """A job routed while its connection named no target: adopt the connection's only target of
    the flow's role (set since); else ConfigurationError."""
    flow = get_flow(job.flow)
    targets = targets_of(s, conn, flow.target_role)
    if len(targets) != 1:
        raise ConfigurationError(f"connection {conn.name!r} names no target connection" if not targets else
                                 f"connection {conn.name!r} has {len(targets)} targets; replay the event, "
                                 f"not this job")
    job.target_id = targets[0].id
    return targets[0]


def load_job(job_id: int) -> JobContext:
    """The :class:`JobContext` of job ``job_id``. Raises ConfigurationError when the source
    connection is not connected to an account or names no target (parked with that reason)."""
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        conn = s.get(Connection, job.connection_id)
        target = s.get(Connection, job.target_id) if job.target_id else _adopt_target(s, job, conn)
        source = endpoint(conn)
        if not source.account:
            raise ConfigurationError(f"connection {conn.name!r} is not connected to a "
                                     f"{source.spec.title} company")
        event = s.get(InboundEvent, job.event_id) if job.event_id else None
        return JobContext(job_id=job.id, flow=job.flow, source_id=job.source_id, key=job.idempotency_key,
                          revision=job.revision, event_type=event.event_type if event else None,
                          event_payload=dict(event.payload or {}) if event else None,
                          source=source, target=endpoint(target))
