"""Routing: a stored event → the jobs it starts or re-opens, for every source alike.

The source's event table (``EVENT_FLOWS`` in its registry ``source`` module) names the flow of
each event type; an event of a type not in the table is ``ignored``. For each target of the
event's connection whose system plays the flow's target role, the job of (connection, target,
flow, object) is claimed under the flow's key. An existing job is

* re-opened as a new revision when the flow follows its object (``reopen_always``: an
  employee's master) or when another event carries a source version at least as new as the
  one the job has seen (sources stamp versions in whole seconds, so two changes in one second
  share one; re-reading the source again is harmless) — the prepare step re-reads the source,
  so the target ends in the source's current state;
* handed on again while it is still queued or running (a redelivered message is harmless);
* otherwise left alone: a duplicate, or an older event after a newer one.

A connection with no target gets one job without a target, which its prepare step parks with
the reason ("names no target connection"), visible and replayable once a target is set.
"""
from __future__ import annotations

import logging

from connector_tasks import runtime
from connector_tasks.connections import targets_of
from connector_tasks.connectors import registry
from connector_tasks.flows.catalog import FLOWS, Flow
from connector_tasks.jobs.states import EventStatus, JobStatus, transition
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, InboundEvent, SyncJob

log = logging.getLogger(__name__)


def flow_for(system: str, event_type: str) -> Flow | None:
    """The flow an event of ``event_type`` from ``system`` starts, or ``None``."""
    spec = registry.find(system)
    if spec is None or not spec.source:
        return None
    name = getattr(spec.load("source"), "EVENT_FLOWS", {}).get(event_type)
    return FLOWS.get(name) if name else None


def _news(job: SyncJob, event: InboundEvent) -> bool:
    """Whether ``event`` may carry news about ``job``'s object: another event than the one that
    last routed it, with a version not older than the job has seen."""
    version, seen = event.entity_version, job.source_version
    return event.id != job.event_id and version is not None and (seen is None or version >= seen)


def _reopen(job: SyncJob, event: InboundEvent) -> None:
    job.revision += 1
    job.event_id = event.id
    if event.entity_version is not None and (job.source_version is None or event.entity_version > job.source_version):
        job.source_version = event.entity_version
    transition(job, JobStatus.QUEUED)


def route(event_id: int) -> list[int]:
    """The ids of the jobs event ``event_id`` starts or re-opens (their prepare steps are due),
    ``[]`` when there is nothing to do. Marks the event ``processed`` (or ``ignored``).
    Idempotent: routing an event again routes it to the same jobs."""
    with session_scope(runtime.settings().database_url) as s:
        event = s.get(InboundEvent, event_id)
        if event is None or event.status == EventStatus.IGNORED:
            return []
        flow = flow_for(event.system, event.event_type)
        if flow is None or not event.entity_id or event.connection_id is None:
            event.status = EventStatus.IGNORED.value
            return []
        conn = s.get(Connection, event.connection_id)
        key = flow.key(event.system, event.entity_id)
        targets = [t.id for t in targets_of(s, conn, flow.target_role)] or [None]
        due = []
        for target_id in targets:
            job, created = repo.claim_job(s, flow=flow.name, connection_id=conn.id, target_id=target_id,
                                          source_id=event.entity_id, key=key, event_id=event.id,
                                          version=event.entity_version)
            if created:
                due.append(job.id)
            elif (flow.reopen_always and event.id != job.event_id) or _news(job, event):
                _reopen(job, event)
                due.append(job.id)
            elif job.status in (JobStatus.QUEUED, JobStatus.RUNNING):
                due.append(job.id)
        event.status = EventStatus.PROCESSED.value
        return due
