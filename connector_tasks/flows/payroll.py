"""Payroll flows over ports: a processed payroll → one balanced journal in the target's books;
a payroll undone at the source (reversed, or cancelled back to unprocessed) → a reversing
journal of the one posted, or nothing when nothing was posted; a payroll the source has funded
(its debit of the company's bank) → the settlement of the posted journal's liabilities, for a
target that books settlements.

Both steps read the source *now* (webhooks are thin and may arrive in any order), so whatever
order the events come in, the books end in the source's current state. A payroll processed
again after its journal was reversed (cancelled back to unprocessed, then processed anew: a newer
event re-opens the job as a new revision) posts a new journal under a key of its own
(``<key>-r<revision>``), and a later reversal reverses that one:

=========================  ===================================  ==================================
source says now            payroll job                          reversal job
=========================  ===================================  ==================================
processed, not reversed    posts the journal                    nothing to do (done, with a note)
reversed, or unprocessed   cancelled if not posted yet;          reverses the posted journal; waits
                           left as is once posted                while it is being posted; nothing
                                                                when it never was (done, a note)
=========================  ===================================  ==================================
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.core.errors import MappingError, TransientApiError
from connector_tasks.core.retry import call_with_retries
from connector_tasks.domain.model import JournalEntry, LedgerMaster, PayrollRun
from connector_tasks.flows import targets
from connector_tasks.flows.catalog import REVERSAL_FLOW
from connector_tasks.flows.context import JobContext, load_job
from connector_tasks.flows.mapping.payroll import PayrollMapping
from connector_tasks.flows.payroll_to_journal import FLOW as PAYROLL_FLOW, build_journal, earning_types_of
from connector_tasks.flows.payroll_to_settlement import build_settlement, settlement_key
from connector_tasks.flows.mapping.payroll import SETTLEMENT_COMPONENT
from connector_tasks.jobs.runner import finish, hand_to_target
from connector_tasks.jobs.states import JobStatus, transition
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob, utcnow


def payroll_mapping(session, conn) -> PayrollMapping:
    """The payroll mapping of source connection ``conn`` (a row or an Endpoint): component and
    earning-type overrides (Mapping rows of kinds ``ledger`` and ``earning_type``) over the
    defaults, and its cost category (setting ``cost_category``)."""
    from connector_tasks.connections import settings_of

    category = getattr(settings_of(conn), "cost_category", None)
    return PayrollMapping.from_overrides(repo.mapping_overrides(session, conn.id), category,
                                         repo.mapping_overrides(session, conn.id, kind="earning_type"))


def _undone(run: PayrollRun | None) -> str | None:
    """Why the payroll is not (or no longer) to be in the books, or ``None`` when it is."""
    if run is None:
        return "not processed at the source (cancelled back to unprocessed)"
    if run.reversed:
        return "reversed at the source"
    return None


def prepare_journal(job_id: int) -> dict | None:
    """Read the payroll and the employees from the source now, build the journal and hand it to
    the target (after the commit). Returns the payload sent, or ``None`` when the payroll was
    undone at the source before it was posted (the job ends ``cancelled`` with the reason).

    Raises the error tree: MappingError (totals do not reconcile, unknown component),
    ConfigurationError (no target connection, target cannot take journals), the source's API
    errors after short in-call retries.
    """
    ctx = load_job(job_id)
    with session_scope(runtime.settings().database_url) as s:
        mapping = payroll_mapping(s, ctx.source)
    source = ctx.source_port()
    # Short in-call retries for transient errors (429 honouring Retry-After, 5xx, timeouts);
    # longer waits are the task's Celery retries.
    run = call_with_retries(lambda: source.current_payroll(ctx.source_id))
    undone = _undone(run)
    if undone:
        finish(job_id, ctx.revision, JobStatus.CANCELLED,
               error=f"payroll {ctx.source_id} was {undone} before it was posted; nothing to post")
        return None
    employees = call_with_retries(source.list_employees)
    entry = build_journal(run, mapping, employees, source=ctx.source.system, source_label=ctx.source.spec.title,
                          key=_revision_key(ctx))
    used = {line.ledger for line in entry.lines}
    with session_scope(runtime.settings().database_url) as s:
        payload = targets.journal_payload(s, s.get(Connection, ctx.target.id), entry,
                                          mapping.ledger_masters(used, earning_types_of(run)))
    hand_to_target(job_id, ctx.revision, payload, warnings=entry.warnings)
    return payload


def _revision_key(ctx: JobContext) -> str:
    """The key this revision posts under: the job's key, unless the journal the job posted
    before has been reversed (the payroll came back after a cancellation): then a key of this
    revision's own, so the new journal is not mistaken for the reversed one."""
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, ctx.job_id)
        posted = ((job.payload or {}).get("entry") or {}).get("key")
        if not posted or not job.target_ref:
            return ctx.key
        reversal = s.scalar(select(SyncJob).where(SyncJob.flow == REVERSAL_FLOW, SyncJob.connection_id == ctx.source.id,
                                                  SyncJob.target_id == ctx.target.id,
                                                  SyncJob.source_id == ctx.source_id))
        undone = (reversal is not None and reversal.status == JobStatus.DONE
                  and ((reversal.payload or {}).get("reverses") or {}).get("key") == posted)
    return f"{ctx.key}-r{ctx.revision}" if undone else posted


def _original(s, ctx: JobContext) -> SyncJob | None:
    return s.scalar(select(SyncJob).where(SyncJob.flow == PAYROLL_FLOW, SyncJob.connection_id == ctx.source.id,
                                          SyncJob.target_id == ctx.target.id, SyncJob.source_id == ctx.source_id))


def prepare_reversal(job_id: int) -> dict | None:
    """The payroll undone at the source after it was posted → the reversing entry of the posted
    journal (every line's sides swapped, its own key ``<key>-reversal``, dated the day the
    source reported it) handed to the same target; never a deletion. The payload records the
    original job and voucher (``reverses``), so the audit trail links them.

    The source is read first: a payroll it still holds as processed and not reversed has
    nothing to reverse (done, with a note). Original not posted yet (queued, running, posting)
    → TransientApiError (retried later). Never posted (no job, parked, cancelled) → nothing to
    reverse: a parked original is cancelled so a replay cannot post it, and this job ends with
    a note. Returns the payload sent or ``None``.
    """
    ctx = load_job(job_id)
    source = ctx.source_port()
    run = call_with_retries(lambda: source.current_payroll(ctx.source_id))
    kind = ctx.event_type or "payroll reversed"
    if _undone(run) is None:
        finish(job_id, ctx.revision, JobStatus.DONE,
               warnings=[f"{kind}: payroll {ctx.source_id} is processed and not reversed at the source; "
                         "nothing to reverse"])
        return None
    with session_scope(runtime.settings().database_url) as s:
        original = _original(s, ctx)
        if original is None or original.status in (JobStatus.FAILED, JobStatus.CANCELLED):
            if original is not None and original.status == JobStatus.FAILED:
                transition(original, JobStatus.CANCELLED,
                           error=f"{original.last_error or ''} | cancelled at source ({kind})".strip(" |"))
            note = f"{kind}: payroll {ctx.source_id} was never posted; nothing to reverse"
        elif original.status != JobStatus.DONE or not (original.payload or {}).get("entry"):
            raise TransientApiError(f"payroll {ctx.source_id} is not posted yet (job {original.id} is "
                                    f"{original.status}); the reversal waits for it", system=ctx.source.system)
        else:
            note = None
            entry = JournalEntry.from_dict(original.payload["entry"])
            stamp = (ctx.event_payload or {}).get("timestamp")
            when = dt.datetime.fromtimestamp(stamp, dt.timezone.utc).date() if isinstance(stamp, int) \
                else utcnow().date()
            reversal = entry.reversed(
                key=f"{entry.key}-reversal", date=max(when, entry.date),
                narration=(f"Reversal of {ctx.source.spec.title} payroll {ctx.source_id} ({kind}); reverses "
                           f"voucher {original.target_ref} ({entry.key})"))
            ledgers = [LedgerMaster(**m) for m in original.payload.get("ledgers", [])]
            payload = targets.journal_payload(s, s.get(Connection, ctx.target.id), reversal, ledgers)
            payload["reverses"] = {"job": original.id, "target_ref": original.target_ref, "key": entry.key}
    if note:
        finish(job_id, ctx.revision, JobStatus.DONE, warnings=[note])
        return None
    hand_to_target(job_id, ctx.revision, payload)
    return payload


def prepare_settlement(job_id: int) -> dict | None:
    """The payroll funded by the source (its debit of the company's bank: an event such as
    ``payroll.paid``, or the source's debit date passing) → the settlement entry
    (:func:`~connector_tasks.flows.payroll_to_settlement.build_settlement`) handed to the target
    that posted the payroll's journal, under ``<posted key>-settlement``. The payload records the
    accrual job and voucher (``settles``), so the audit trail links them.

    Ends ``done`` with a note, posting nothing, when the target books no settlements (asked
    first, before the source is read: :func:`connector_tasks.flows.targets.books_settlements`),
    when the source no longer holds the payroll as processed and not reversed, when the
    accrual was cancelled, or when the source debits nothing for it. Accrual not posted yet
    (no job, queued, running, posting) → TransientApiError (retried later); accrual parked →
    MappingError naming it (replay it, then this job). Returns the payload sent or ``None``.
    """
    ctx = load_job(job_id)
    with session_scope(runtime.settings().database_url) as s:
        books = targets.books_settlements(s.get(Connection, ctx.target.id))
    if not books:
        finish(job_id, ctx.revision, JobStatus.DONE,
               warnings=[f"{ctx.target.spec.title} connection {ctx.target.name} does not book settlements "
                         f"(accrual only); nothing to post for payroll {ctx.source_id}"])
        return None
    source = ctx.source_port()
    run = call_with_retries(lambda: source.current_payroll(ctx.source_id))
    undone = _undone(run)
    if undone:
        finish(job_id, ctx.revision, JobStatus.DONE, warnings=[f"payroll {ctx.source_id} was {undone}; nothing to settle"])
        return None
    with session_scope(runtime.settings().database_url) as s:
        mapping = payroll_mapping(s, ctx.source)
        accrual, settles = _posted_accrual(s, ctx)
        entry = None if accrual is None else build_settlement(run, mapping, key=settlement_key(accrual.key),
                                                              source_label=ctx.source.spec.title)
        if entry is not None:
            payload = targets.settlement_payload(s, s.get(Connection, ctx.target.id), entry,
                                                 _settlement_ledgers(mapping, entry), accrual)
            payload["settles"] = settles
    if entry is None:
        finish(job_id, ctx.revision, JobStatus.DONE,
               warnings=[settles if accrual is None else
                         f"the source debits nothing for payroll {ctx.source_id}; nothing to settle"])
        return None
    hand_to_target(job_id, ctx.revision, payload, warnings=entry.warnings)
    return payload


def _posted_accrual(s, ctx: JobContext) -> tuple[JournalEntry | None, dict | str]:
    """The journal the payroll job of ``ctx``'s payroll and target posted, with
    ``{"job", "target_ref", "key"}`` of it; or ``(None, why there is nothing to settle)`` when
    that job was cancelled. Raises TransientApiError while it is not posted yet, MappingError
    when it is parked."""
    original = _original(s, ctx)
    if original is None or original.status in (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.POSTING):
        state = f" (job {original.id} is {original.status})" if original is not None else ""
        raise TransientApiError(f"payroll {ctx.source_id} is not posted yet{state}; the settlement waits for it",
                                system=ctx.source.system)
    if original.status == JobStatus.FAILED:
        raise MappingError(f"payroll {ctx.source_id} cannot be settled: its journal (job {original.id}) is parked "
                           f"({original.last_error}); replay that job, then this one")
    if original.status != JobStatus.DONE or not (original.payload or {}).get("entry"):
        return None, (f"payroll {ctx.source_id}'s journal was never posted (job {original.id} is "
                      f"{original.status}); nothing to settle")
    accrual = JournalEntry.from_dict(original.payload["entry"])
    return accrual, {"job": original.id, "target_ref": original.target_ref, "key": accrual.key}


def _settlement_ledgers(mapping: PayrollMapping, entry: JournalEntry) -> list[LedgerMaster]:
    """The ledger masters ``entry`` uses that the connector owns (the bank ledger among them,
    unless a person mapped it)."""
    bank = mapping.ledgers[SETTLEMENT_COMPONENT.key]
    used = {line.ledger for line in entry.lines}
    ledgers = [m for m in mapping.ledger_masters(used) if m.name != bank]
    if bank in used and bank not in mapping.user_ledgers:
        ledgers.append(LedgerMaster(bank, mapping.groups.get(bank, SETTLEMENT_COMPONENT.group)))
    return ledgers

__all__ = ["prepare_journal", "prepare_reversal", "prepare_settlement", "payroll_mapping", "REVERSAL_FLOW"]
