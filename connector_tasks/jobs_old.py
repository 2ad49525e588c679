"""The job machinery every flow shares, and the bookkeeping tasks on the ``default`` queue.

A job step (:func:`run_step`) records an attempt, runs, and lets the error tree decide:
retryable errors → Celery retry with countdown (the attempt says ``retry``); after the last try,
or for a permanent error, the job is parked ``failed`` with its reason. Results computed where
the store is out of reach (the Tally agent) come back through the broker as
:func:`record_post_result`.
"""
from __future__ import annotations

import datetime as dt
import logging
import traceback

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from sqlalchemy import and_, or_, select

from connector_tasks import runtime
from connector_tasks.core.errors import ConnectorError, RateLimitedError
from connector_tasks.core.retry import countdown
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, InboundEvent, SyncAttempt, SyncJob, utcnow

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """One line naming the error class and its text (plus the remote's lines, if any)."""
    text = f"{type(exc).__name__}: {exc}"
    lines = getattr(exc, "lines", None)
    if lines:
        text += " | " + " | ".join(lines)
    return text


def run_step(task, job_id: int, phase: str, fn) -> object:
    """Run ``fn(job_id)`` as one attempt of job ``job_id`` inside Celery ``task``.

    Returns ``fn``'s result, or ``None`` when the job is already done or gets parked.
    Raises Celery's ``Retry`` for a retryable error while retries remain.
    """
    url = runtime.settings().database_url
    with session_scope(url) as s:
        job = s.get(SyncJob, job_id)
        if job is None:
            log.warning("job %s vanished", job_id)
            return None
        if job.status == repo.DONE:
            return None
        attempt = repo.start_attempt(s, job, phase=phase, task_id=task.request.id,
                                     worker=task.request.hostname)
        job.status = repo.RUNNING
        attempt_id = attempt.id
    try:
        result = fn(job_id)
    except (ConnectorError, SoftTimeLimitExceeded) as exc:
        retries = task.request.retries or 0
        retryable = exc.retryable if isinstance(exc, ConnectorError) else True
        will_retry = retryable and retries < task.max_retries
        delay = countdown(retries, exc.retry_after if isinstance(exc, RateLimitedError) else None,
                          base=runtime.settings().retry_base)
        with session_scope(url) as s:
            job, attempt = s.get(SyncJob, job_id), s.get(SyncAttempt, attempt_id)
            repo.finish_attempt(attempt, "retry" if will_retry else "failed", error=describe(exc))
            if will_retry:
                job.status = repo.QUEUED
                job.last_error = describe(exc)
                # the sweeper leaves it alone while the retry is due
                job.lease_until = utcnow() + dt.timedelta(
                    seconds=delay + runtime.settings().visibility_timeout)
            else:
                repo.park(job, describe(exc))
        if will_retry:
            raise task.retry(countdown=delay, exc=exc)
        return None
    except Exception as exc:  # a bug, not a remote error: park, never loop
        with session_scope(url) as s:
            job, attempt = s.get(SyncJob, job_id), s.get(SyncAttempt, attempt_id)
            repo.finish_attempt(attempt, "failed", error=describe(exc),
                                detail={"traceback": traceback.format_exc()[-4000:]})
            repo.park(job, describe(exc))
        log.exception("job %s step %s failed unexpectedly", job_id, phase)
        return None
    with session_scope(url) as s:
        repo.finish_attempt(s.get(SyncAttempt, attempt_id), "ok")
    return result


def dispatch_to_target(app, job_id: int, payload: dict) -> None:
    """Send job ``job_id``'s target step as the payload's ``dispatch`` names it
    (``{"task": ..., "queue": ...}``), e.g. the Tally agent's queue."""
    d = payload["dispatch"]
    app.send_task(d["task"], args=[job_id, payload], queue=d["queue"])


@shared_task(name="connector.record_post_result", acks_late=True)
def record_post_result(job_id: int, outcome: dict) -> None:
    """Record what a target agent reported for job ``job_id``.

    ``outcome``: ``{"outcome": "ok"|"retry"|"failed", "target_id", "target_system",
    "target_type", "error", "detail", "task_id", "worker", "started_at"}``. ``ok`` finishes the
    job and records the external reference; ``failed`` parks it; ``retry`` only logs the try.
    Idempotent: a repeated ``ok`` leaves one reference. A job re-opened while its target step
    ran (an employee changed again) carries a newer ``payload["seq"]``: an outcome for an
    older ``seq`` is logged and the newest payload is sent again, so the target ends on the
    newest state whatever order the agent ran them in.
    """
    url = runtime.settings().database_url
    resend = None
    with session_scope(url) as s:
        job = s.get(SyncJob, job_id)
        if job is None:
            log.warning("result for unknown job %s", job_id)
            return
        started = outcome.get("started_at")
        attempt = SyncAttempt(job_id=job.id, phase=outcome.get("phase", "post"),
                              task_id=outcome.get("task_id"), worker=outcome.get("worker"),
                              started_at=dt.datetime.fromisoformat(started) if started else utcnow())
        s.add(attempt)
        repo.finish_attempt(attempt, outcome["outcome"], error=outcome.get("error"),
                            detail=outcome.get("detail"))
        latest = (job.payload or {}).get("seq")
        stale = latest is not None and outcome.get("seq") is not None and outcome["seq"] < latest
        if stale and job.status != repo.DONE:
            attempt.detail = {**(attempt.detail or {}), "superseded_by_seq": latest}
            if outcome["outcome"] != "retry":
                repo.mark_posting(job, runtime.settings().posting_lease)
                resend = dict(job.payload)
        elif outcome["outcome"] == "ok":
            job.status = repo.DONE
            job.last_error = None
            job.lease_until = None
            job.target_ref = outcome["target_id"]
            repo.record_ref(s, connection_id=job.connection_id, source_system=outcome.get("source_system", "gusto"),
                            source_type=outcome.get("source_type", "payroll"), source_id=job.source_id,
                            target_system=outcome.get("target_system", "tallyprime"),
                            target_type=outcome.get("target_type", "voucher"),
                            target_id=outcome["target_id"])
        elif outcome["outcome"] == "failed" and job.status != repo.DONE:
            repo.park(job, outcome.get("error") or "target refused the job")
        elif outcome["outcome"] == "retry" and job.status != repo.DONE:
            job.last_error = outcome.get("error")
            repo.mark_posting(job, runtime.settings().posting_lease)
    if resend is not None:
        from connector_tasks.celery_app import app

        dispatch_to_target(app, job_id, resend)


@shared_task(name="connector.sweep")
def sweep() -> dict:
    """Nothing lost: hand on again whatever stopped moving (run by beat every minute).

    * inbound events stored but never enqueued (broker down when they came) → enqueued;
    * inbound events enqueued but never routed to a job within the posting lease (their
      message was lost, or routing failed past its last retry) → enqueued again;
    * jobs ``queued``/``running`` past their lease (a lost message, a dead worker) → their
      source step is replayed under the same key;
    * jobs ``posting`` past their lease (no outcome from the target agent) → the stored entry is
      sent to the target again, which asks the target first, so nothing posts twice.

    Returns counts ``{"events": n, "replayed": n, "reposted": n}``.
    """
    from connector_tasks.celery_app import app

    settings = runtime.settings()
    now = utcnow()
    with session_scope(settings.database_url) as s:
        events = []
        for e in s.scalars(select(InboundEvent).where(or_(
                and_(InboundEvent.status.in_(["received", "relaying"]),
                     InboundEvent.received_at < now - dt.timedelta(seconds=30)),
                and_(InboundEvent.status == "enqueued",
                     InboundEvent.enqueued_at < now - dt.timedelta(seconds=settings.posting_lease))))):
            if e.status == "enqueued":
                e.enqueued_at = now  # a new lease: enqueued again once per lease, not every minute
            events.append((e.id, e.system))
        stale = s.scalars(select(SyncJob).where(SyncJob.status.in_([repo.QUEUED, repo.RUNNING, repo.POSTING]),
                                                SyncJob.lease_until < now)).all()
        replay, repost = [], []
        for job in stale:
            if job.status == repo.POSTING and job.payload and job.payload.get("dispatch"):
                repo.mark_posting(job, settings.posting_lease)
                repost.append((job.id, job.payload))
            else:
                job.lease_until = now + dt.timedelta(seconds=settings.visibility_timeout)
                replay.append((job.id, s.get(Connection, job.connection_id).system))
    for event_id, system in events:
        app.send_task(f"{system}.handle_event", args=[event_id])
    for job_id, system in replay:
        app.send_task(f"{system}.replay_job", args=[job_id])
    for job_id, payload in repost:
        dispatch_to_target(app, job_id, payload)
    return {"events": len(events), "replayed": len(replay), "reposted": len(repost)}
