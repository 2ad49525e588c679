"""The job state machine: the statuses of events and jobs, and the one function that writes a
job's status and lease.

Job statuses (:class:`JobStatus`) and the moves between them (:data:`MOVES`):

==============  ==================================================================  ============
from            to (why)                                                            lease
==============  ==================================================================  ============
(new)           queued (claimed for an event, a replay, a re-open)                  none
queued          running (a step started)                                             step lease
running         queued (a retryable error; the retry is due after the countdown)     countdown +
                                                                                    redelivery
running         posting (handed to the target)                                       posting lease
running         done (nothing to post), cancelled (undone at the source), failed     none
posting         posting (the target asked to retry; handed again by the sweeper)     posting lease
posting         done (the target accepted), failed (the target refused)              none
queued/running  queued (lease renewed by the sweeper when it re-sends a lost step)   redelivery
queued, failed  done (the target reported success late: it holds the object)         none
failed          queued (replay), cancelled (its source was undone)                   none
done, cancelled queued (re-opened: the source object changed; a new revision)        none
any but done    queued (an employee's job re-opened by news about them)              none
==============  ==================================================================  ============

``done`` and ``cancelled`` end a revision; ``failed`` is parked: visible, replayable. A lease
is the time after which the sweeper takes a job that stopped moving as lost and hands it on
again.

Event statuses (:class:`EventStatus`): ``received`` → ``relaying`` → ``enqueued`` →
``processed`` (routed to its jobs), or ``ignored`` (no flow for it, or not for this
connection).
"""
from __future__ import annotations

import datetime as dt
import enum

from connector_tasks.store.models import SyncJob, utcnow


class JobStatus(str, enum.Enum):
    """A job's status (stored as its value)."""

    QUEUED = "queued"
    RUNNING = "running"
    POSTING = "posting"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


class EventStatus(str, enum.Enum):
    """An inbound event's status (stored as its value)."""

    RECEIVED = "received"
    RELAYING = "relaying"
    ENQUEUED = "enqueued"
    PROCESSED = "processed"
    IGNORED = "ignored"

    def __str__(self) -> str:
        return self.value


Q, R, P, D, F, C = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.POSTING, JobStatus.DONE,
                    JobStatus.FAILED, JobStatus.CANCELLED)

#: allowed moves ``{from: {to, ...}}``; ``None`` is a job being created.
MOVES: dict[JobStatus | None, frozenset[JobStatus]] = {
    None: frozenset({Q}),
    Q: frozenset({Q, R, D, F, C}),
    R: frozenset({Q, R, P, D, F, C}),
    P: frozenset({Q, P, D, F}),
    F: frozenset({Q, D, C}),
    D: frozenset({Q}),
    C: frozenset({Q}),
}
#: statuses in which a job still moves on its own (the sweeper watches their leases)
ACTIVE = frozenset({Q, R, P})
#: statuses that end a revision
FINAL = frozenset({D, C})


class InvalidTransition(RuntimeError):
    """A move the state machine does not allow (a bug: the caller's logic is wrong)."""


def status_of(job: SyncJob) -> JobStatus | None:
    """The job's status as an enum (``None`` for a row not yet given one)."""
    return JobStatus(job.status) if job.status else None


def transition(job: SyncJob, to: JobStatus, *, lease: float | None = None, error: str | None = None,
               keep_error: bool = False) -> None:
    """Move ``job`` to status ``to``: the only writer of ``SyncJob.status`` and
    ``SyncJob.lease_until``.

    ``lease``: seconds from now after which the sweeper hands the job on again (``None``: no
    lease, for statuses that wait for a person or for nothing). ``error``: the reason, stored
    as ``last_error`` (parking, a retry); for ``done`` the last error is cleared unless
    ``keep_error``. Raises :class:`InvalidTransition` for a move :data:`MOVES` does not allow.
    """
    to = JobStatus(to)
    current = status_of(job)
    if to not in MOVES[current]:
        raise InvalidTransition(f"job {job.id} cannot move from {current} to {to}")
    job.status = to.value
    job.lease_until = utcnow() + dt.timedelta(seconds=lease) if lease is not None else None
    if error is not None:
        job.last_error = error
    elif to == D and not keep_error:
        job.last_error = None
