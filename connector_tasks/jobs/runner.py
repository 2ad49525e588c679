"""The one runner of job steps, for cloud steps and agent steps alike.

Every step is an attempt of a job, and the error tree decides what comes next
(:func:`decide`): a retryable error (``RateLimitedError``, ``TransientApiError``, a soft time
limit) while Celery retries remain → retried with a countdown (never sooner than the remote's
``Retry-After``); anything else, or the last try → the job is parked ``failed`` with the
reason, visible and replayable; an unexpected exception (a bug) → parked too, never looped.

* :func:`run_step`: a step that reaches the store (a flow's prepare step on a cloud worker):
  records its attempt and moves the job itself.
* :func:`run_target_step`: a target step, which may run where the store is out of reach (the
  agent beside the customer's books): it produces an :class:`Outcome` and hands it to ``report`` —
  :func:`~connector_tasks.jobs.results.record_outcome` in-process on a cloud worker, or a
  report in the agent's own outbox (:func:`connector_tasks.agents.outbox.outcome_reporter`),
  which the cloud's collector checks (its per-command capability) before recording it.
* :func:`hand_to_target`: the end of a prepare step: store the payload on the job, move it to
  ``posting`` and send the target step (after the commit).
"""
from __future__ import annotations

import datetime as dt
import enum
import logging
import traceback
from dataclasses import dataclass, field
from typing import Callable

from celery.exceptions import SoftTimeLimitExceeded

from connector_tasks import runtime
from connector_tasks.core.errors import ConnectorError, RateLimitedError
from connector_tasks.core.retry import countdown
from connector_tasks.jobs.states import JobStatus, transition
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import SyncAttempt, SyncJob, utcnow

log = logging.getLogger(__name__)

#: seconds a running step holds its job before the sweeper takes it as lost
STEP_LEASE = 300


def describe(exc: BaseException) -> str:
    """One line naming the error class and its text (plus the remote's lines, if any)."""
    text = f"{type(exc).__name__}: {exc}"
    lines = getattr(exc, "lines", None)
    if lines:
        text += " | " + " | ".join(lines)
    return text


def decide(task, exc: BaseException) -> tuple[bool, float]:
    """``(retry, countdown seconds)`` for ``exc`` raised inside Celery ``task``: retry while the
    error is retryable and ``task.max_retries`` is not reached; the countdown grows
    exponentially from ``RETRY_BASE_SECONDS`` and never undercuts a ``Retry-After``."""
    retryable = exc.retryable if isinstance(exc, ConnectorError) else isinstance(exc, SoftTimeLimitExceeded)
    retries = task.request.retries or 0
    delay = countdown(retries, exc.retry_after if isinstance(exc, RateLimitedError) else None,
                      base=runtime.settings().retry_base)
    return retryable and retries < task.max_retries, delay


class Result(str, enum.Enum):
    """How a target step ended."""

    OK = "ok"
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    """What a target step reports for job ``job_id``.

    ``result``; ``revision``: the job revision of the payload the step ran (an outcome for an
    older revision than the job's is recorded but does not finish it); ``target_type`` /
    ``target_id``: what the target holds now (e.g. ``voucher`` / its MASTERID); ``error``: the
    reason of a retry or failure; ``detail``: the target's reply worth keeping (its error lines,
    what it created); ``phase``, ``task_id``, ``worker``, ``started_at`` (UTC) for the audit.
    """

    job_id: int
    result: Result
    target_type: str
    revision: int | None = None
    target_id: str | None = None
    error: str | None = None
    detail: dict = field(default_factory=dict)
    phase: str = "post"
    task_id: str | None = None
    worker: str | None = None
    started_at: dt.datetime = field(default_factory=utcnow)

    def to_wire(self) -> dict:
        """A JSON-safe dict for the broker (:meth:`from_wire` reads it back)."""
        return {"result": self.result.value, "target_type": self.target_type, "revision": self.revision,
                "target_id": self.target_id, "error": self.error, "detail": self.detail, "phase": self.phase,
                "task_id": self.task_id, "worker": self.worker, "started_at": self.started_at.isoformat()}

    @classmethod
    def from_wire(cls, job_id: int, data: dict) -> "Outcome":
        """Read an outcome sent by :meth:`to_wire`. Raises ValueError (naming the field) for a
        message that is not one: an unknown result, an ``ok`` without ``target_id``, a wrong
        type."""
        if not isinstance(data, dict):
            raise ValueError("an outcome must be a JSON object")
        try:
            result = Result(data.get("result"))
        except ValueError:
            raise ValueError(f"outcome result must be one of ok, retry, failed; got {data.get('result')!r}") from None
        target_type = data.get("target_type")
        if not isinstance(target_type, str) or not target_type:
            raise ValueError("outcome lacks target_type")
        target_id = data.get("target_id")
        if result is Result.OK and (not isinstance(target_id, str) or not target_id):
            raise ValueError("an ok outcome needs a target_id")
        revision = data.get("revision")
        if revision is not None and (not isinstance(revision, int) or isinstance(revision, bool)):
            raise ValueError("outcome revision must be an integer")
        detail = data.get("detail") or {}
        if not isinstance(detail, dict):
            raise ValueError("outcome detail must be an object")
        started = data.get("started_at")
        for name in ("error", "phase", "task_id", "worker"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise ValueError(f"outcome {name} must be a string")
        return cls(job_id=int(job_id), result=result, target_type=target_type, revision=revision,
                   target_id=target_id, error=data.get("error"), detail=detail, phase=data.get("phase") or "post",
                   task_id=data.get("task_id"), worker=data.get("worker"),
                   started_at=dt.datetime.fromisoformat(started) if started else utcnow())


def run_step(task, job_id: int, phase: str, fn: Callable[[int], object]) -> object:
    """Run ``fn(job_id)`` as one attempt of job ``job_id`` inside Celery ``task`` (a step that
    reaches the store). Returns ``fn``'s result, or ``None`` when the job is not waiting for
    this step (done, parked, posting: a late or duplicate message) or gets parked. Raises
    Celery's ``Retry`` for a retryable error while retries remain. A step whose job was
    re-opened meanwhile (a newer revision) closes its attempt without touching the job."""
    url = runtime.settings().database_url
    with session_scope(url) as s:
        job = s.get(SyncJob, job_id)
        if job is None:
            log.warning("job %s vanished", job_id)
            return None
        if job.status not in (JobStatus.QUEUED, JobStatus.RUNNING):
            log.info("job %s is %s; step %s not run", job_id, job.status, phase)
            return None
        attempt = repo.start_attempt(s, job, phase=phase, task_id=task.request.id, worker=task.request.hostname)
        transition(job, JobStatus.RUNNING, lease=STEP_LEASE)
        attempt_id, revision = attempt.id, job.revision
    try:
        result = fn(job_id)
    except (ConnectorError, SoftTimeLimitExceeded) as exc:
        will_retry, delay = decide(task, exc)
        with session_scope(url) as s:
            job, attempt = s.get(SyncJob, job_id), s.get(SyncAttempt, attempt_id)
            current = job.revision == revision
            repo.finish_attempt(attempt, "retry" if will_retry and current else "failed" if current else "superseded",
                                error=describe(exc))
            if current and will_retry:
                # the sweeper leaves it alone while the retry is due
                transition(job, JobStatus.QUEUED, lease=delay + runtime.settings().visibility_timeout,
                           error=describe(exc))
            elif current and job.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.POSTING):
                transition(job, JobStatus.FAILED, error=describe(exc))
        if current and will_retry:
            raise task.retry(countdown=delay, exc=exc)
        return None
    except Exception as exc:  # a bug, not a remote error: park, never loop
        with session_scope(url) as s:
            job, attempt = s.get(SyncJob, job_id), s.get(SyncAttempt, attempt_id)
            repo.finish_attempt(attempt, "failed", error=describe(exc),
                                detail={"traceback": traceback.format_exc()[-4000:]})
            if job.revision == revision and job.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.POSTING):
                transition(job, JobStatus.FAILED, error=describe(exc))
        log.exception("job %s step %s failed unexpectedly", job_id, phase)
        return None
    with session_scope(url) as s:
        repo.finish_attempt(s.get(SyncAttempt, attempt_id), "ok")
    return result


def finish(job_id: int, revision: int, status: JobStatus, *, warnings: list[str] | tuple[str, ...] = (),
           error: str | None = None) -> bool:
    """End job ``job_id``'s revision ``revision`` without a target step: ``done`` (nothing to
    post; ``warnings`` say why) or ``cancelled`` (undone at the source; ``error`` says how).
    Returns False, changing nothing, when the job was re-opened meanwhile."""
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        if job.revision != revision:
            return False
        job.warnings = list(warnings)
        transition(job, status, error=error)
    return True


def hand_to_target(job_id: int, revision: int, payload: dict, *, warnings=()) -> bool:
    """Store ``payload`` on job ``job_id`` (with ``payload["revision"] = revision``), move it to
    ``posting`` with the posting lease, commit, then send the target step the payload's
    ``dispatch`` names (``{"task", "queue"}``). Returns False, sending nothing, when the job was
    re-opened meanwhile (its newer revision's step sends the newer payload)."""
    payload = {**payload, "revision": revision}
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        if job.revision != revision or job.status != JobStatus.RUNNING:
            log.info("job %s moved on (revision %s, %s); payload of revision %s dropped",
                     job_id, job.revision, job.status, revision)
            return False
        job.payload = payload
        job.warnings = list(warnings)
        transition(job, JobStatus.POSTING, lease=runtime.settings().posting_lease)
    dispatch(job_id, payload)
    return True


def dispatch(job_id: int, payload: dict) -> None:
    """Send job ``job_id``'s target step as ``payload["dispatch"]`` names it
    (``{"task": ..., "queue": ...}``). With ``"agent": <connection>`` the step goes to the lane
    of the agent registered for that connection, under its key prefix and with the command's
    capability (:func:`connector_tasks.agents.lanes.send_job_step`; ConfigurationError when no
    agent is registered)."""
    from connector_tasks.celery_app import app

    d = payload["dispatch"]
    if d.get("agent"):
        from connector_tasks.agents.lanes import send_job_step

        send_job_step(d["agent"], d["queue"], d["task"], job_id, payload)
        return
    app.send_task(d["task"], args=[job_id, payload], queue=d["queue"])


def run_target_step(task, job_id: int, payload: dict, work: Callable[[], tuple[str, dict]], *,
                    target_type: str, report: Callable[[Outcome], None]) -> None:
    """Run target step ``work() -> (target_id, detail)`` of job ``job_id`` inside Celery
    ``task`` and ``report`` its :class:`Outcome`: ``ok``; ``retry`` for a retryable error while
    retries remain (then Celery retries with a countdown); ``failed`` otherwise, with the
    remote's lines in ``detail["lines"]``. A bug or a malformed payload is reported ``failed``
    too (with the traceback in the worker's log), never lost."""
    base = dict(job_id=job_id, target_type=target_type, revision=payload.get("revision"),
                task_id=task.request.id, worker=task.request.hostname, started_at=utcnow())
    try:
        target_id, detail = work()
        report(Outcome(result=Result.OK, target_id=target_id, detail=detail, **base))
    except (ConnectorError, SoftTimeLimitExceeded) as exc:
        # A soft time limit means the target was slow: nothing is known about the effect, so
        # retry (the look-up by key comes first next time).
        will_retry, delay = decide(task, exc)
        if will_retry:
            report(Outcome(result=Result.RETRY, error=describe(exc), **base))
            raise task.retry(countdown=delay, exc=exc)
        report(Outcome(result=Result.FAILED, error=describe(exc),
                       detail={"lines": list(getattr(exc, "lines", []) or [])}, **base))
    except Exception as exc:  # a bug or a malformed payload: park it, never lose it silently
        log.exception("%s failed for job %s", task.name, job_id)
        report(Outcome(result=Result.FAILED, error=describe(exc), **base))

