"""Recording what a target step reported (:class:`~connector_tasks.jobs.runner.Outcome`):
finishing the job, recording the external reference, parking a refusal, or handing the newest
payload on again when an outcome of an older revision arrives."""
from __future__ import annotations

import logging

from connector_tasks import runtime
from connector_tasks.flows.catalog import FLOWS
from connector_tasks.jobs.runner import Outcome, Result, dispatch
from connector_tasks.jobs.states import JobStatus, transition
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncAttempt, SyncJob

log = logging.getLogger(__name__)


def record_outcome(outcome: Outcome) -> None:
    """Record ``outcome`` of job ``outcome.job_id``: one attempt row, then

    * an outcome for an older revision than the job's (the job was re-opened while the target
      step ran): kept in the audit only; if the job is ``posting`` its newest payload is sent
      again, so the target ends on the newest state whatever order the steps ran in — or, when
      the stored payload is itself an older revision's (the newest revision's prepare step
      found the job posting), the job is queued and its prepare step sent, never the old
      payload round again;
    * ``ok`` → ``done``, ``target_ref`` and the external reference (source object → target id in
      the job's target connection), idempotent for a repeated report;
    * ``failed`` → parked with the target's own text (unless already done);
    * ``retry`` → the posting lease is renewed (the target step retries itself).
    """
    resend, prepare = None, False
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, outcome.job_id)
        if job is None:
            log.warning("result for unknown job %s", outcome.job_id)
            return
        attempt = SyncAttempt(job_id=job.id, phase=outcome.phase, task_id=outcome.task_id, worker=outcome.worker,
                              started_at=outcome.started_at)
        s.add(attempt)
        repo.finish_attempt(attempt, outcome.result.value, error=outcome.error, detail=outcome.detail or None)
        status = JobStatus(job.status)
        stale = outcome.revision is not None and outcome.revision < job.revision
        if stale:
            attempt.detail = {**(attempt.detail or {}), "superseded_by_revision": job.revision}
            if status == JobStatus.POSTING and outcome.result != Result.RETRY and job.payload:
                if job.payload.get("revision") == job.revision:
                    transition(job, JobStatus.POSTING, lease=runtime.settings().posting_lease)
                    resend = dict(job.payload)
                else:
                    # the stored payload is an older revision's: the newest was never prepared
                    # (its prepare step found the job posting), so prepare it now instead of
                    # sending the old payload round again
                    transition(job, JobStatus.QUEUED, lease=runtime.settings().visibility_timeout)
                    prepare = True
        elif outcome.result == Result.OK:
            if status != JobStatus.DONE:
                transition(job, JobStatus.DONE)
            job.target_ref = outcome.target_id
            source = s.get(Connection, job.connection_id)
            target = s.get(Connection, job.target_id) if job.target_id else None
            repo.record_ref(s, connection_id=job.target_id or job.connection_id, source_system=source.system,
                            source_type=FLOWS[job.flow].source_type if job.flow in FLOWS else job.flow,
                            source_id=job.source_id, target_system=target.system if target else source.system,
                            target_type=outcome.target_type, target_id=outcome.target_id)
        elif outcome.result == Result.FAILED and status in (JobStatus.POSTING, JobStatus.RUNNING, JobStatus.QUEUED):
            transition(job, JobStatus.FAILED, error=outcome.error or "the target refused the job")
        elif outcome.result == Result.RETRY and status == JobStatus.POSTING:
            transition(job, JobStatus.POSTING, lease=runtime.settings().posting_lease, error=outcome.error)
    if resend is not None:
        dispatch(outcome.job_id, resend)
    if prepare:
        from connector_tasks.pipeline.tasks import publish_prepare

        publish_prepare(outcome.job_id)

