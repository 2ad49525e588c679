"""The Gusto side of every Gusto flow: route an inbound event to its job, prepare the job from
Gusto's current data, and hand the result to the target connection; plus the polling fallback,
the payroll backfill and the reference data.

Routing (:func:`claim_from_event`), by event type (external-apis.md §1.5 "Event types"):

=======================================================  =========================  ==============
events                                                   flow                       job per
=======================================================  =========================  ==============
``payroll.processed``                                    ``payroll_to_journal``     payroll
``payroll.reversed``, ``payroll.cancelled``              ``payroll_reversal``       payroll
``employee.created/updated/onboarded/terminated/…``      ``employee_to_master``     employee
=======================================================  =========================  ==============

Webhooks are thin (§1.5 pitfall 5): every step re-reads Gusto, so events arriving out of
order or twice converge on Gusto's current state. An employee's job is re-opened by each of
its events; each preparation carries a sequence number, and an outcome that comes back for
an older sequence re-sends the newest payload (see ``connector.record_post_result``).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Iterator

from sqlalchemy import select

from connector_tasks import runtime, targets
from connector_tasks.connectors.gusto.adapter import GustoPayrollSource
from connector_tasks.connectors.gusto.webhooks import (
    EMPLOYEE_EVENTS, REVERSAL_EVENTS, SYSTEM, parse_event,
)
from connector_tasks.core.errors import ConfigurationError, RejectedError, TransientApiError
from connector_tasks.core.locks import leased_lock
from connector_tasks.core.retry import call_with_retries
from connector_tasks.domain.model import JournalEntry, LedgerMaster
from connector_tasks.flows.employee_to_master import FLOW as EMPLOYEE_FLOW, build_master, employee_key
from connector_tasks.flows.mapping.payroll import UNALLOCATED_COST_CENTRE, PayrollMapping
from connector_tasks.flows.payroll_to_journal import FLOW as PAYROLL_FLOW, journal_key
from connector_tasks.jobs import dispatch_to_target
from connector_tasks.relay import hand_off
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, InboundEvent, SyncJob, utcnow

log = logging.getLogger(__name__)

REVERSAL_FLOW = "payroll_reversal"
REFERENCE_FLOW = "reference_data"
#: ``/v1/events`` page size (OAS: limit 1..100).
EVENTS_PAGE = 100


def _connection_and_target(s, conn_id: int) -> tuple[Connection, Connection]:
    conn = s.get(Connection, conn_id)
    target_name = (conn.settings or {}).get("target")
    if not target_name:
        raise ConfigurationError(f"connection {conn.name!r} names no target connection")
    if not conn.account:
        raise ConfigurationError(f"connection {conn.name!r} is not connected to a Gusto company")
    return conn, repo.get_connection(s, target_name)


def payroll_mapping(s, conn: Connection) -> PayrollMapping:
    """The connection's payroll mapping: component and earning-type overrides (Mapping rows of
    kinds ``ledger`` and ``earning_type``) over the defaults, and its cost category."""
    return PayrollMapping.from_overrides(repo.mapping_overrides(s, conn.id),
                                         (conn.settings or {}).get("cost_category"),
                                         repo.mapping_overrides(s, conn.id, kind="earning_type"))


# ---------------------------------------------------------------------------- routing
def claim_from_event(event_id: int) -> tuple[str, int] | None:
    """``(flow, job id)`` of the job event ``event_id`` starts or re-opens, or ``None`` when
    there is nothing to do (unknown or ignored event, payroll job already posting/done/parked).

    A payroll job is claimed once under its idempotency key; an employee's job is re-opened by
    every event about that employee (its master follows Gusto's current state).
    """
    with session_scope(runtime.settings().database_url) as s:
        event = s.get(InboundEvent, event_id)
        if event is None or event.status == "ignored":
            return None
        kind, entity = event.event_type, event.entity_id
        if not entity:
            event.status = "ignored"
            return None
        if kind == "payroll.processed":
            flow, key = PAYROLL_FLOW, journal_key(SYSTEM, entity)
        elif kind in REVERSAL_EVENTS:
            flow, key = REVERSAL_FLOW, journal_key(SYSTEM, entity) + "-reversal"
        elif kind in EMPLOYEE_EVENTS:
            flow, key = EMPLOYEE_FLOW, employee_key(SYSTEM, entity)
        else:
            event.status = "ignored"
            return None
        job, created = repo.claim_job(s, flow=flow, connection_id=event.connection_id, source_id=entity,
                                      key=key, event_id=event.id)
        event.status = "processed"
        if not created and flow == EMPLOYEE_FLOW:
            job.status, job.event_id = repo.QUEUED, event.id  # re-opened: Gusto has news
            return flow, job.id
        if not created and job.status in (repo.POSTING, repo.DONE, repo.FAILED):
            return None
        return flow, job.id


def flow_of(job_id: int) -> str | None:
    """The flow of job ``job_id`` (``None`` when it does not exist)."""
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        return job.flow if job else None


def _post(job_id: int, payload: dict) -> dict:
    from connector_tasks.celery_app import app

    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        job.payload = payload
        repo.mark_posting(job, runtime.settings().posting_lease)
    dispatch_to_target(app, job_id, payload)
    return payload


# ---------------------------------------------------------------------------- employees
def prepare_employee_master(job_id: int) -> dict:
    """Read the employee from Gusto now (§1.7), build the master and hand it to the target
    (e.g. the Tally agent: a cost centre created or altered). Returns the payload sent.

    Raises ConfigurationError (no target, target keeps no employees), RejectedError (Gusto
    does not know the employee: 404), Gusto's transient errors.
    """
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        conn, target = _connection_and_target(s, job.connection_id)
        from connector_tasks.connectors.gusto.service import gusto_client

        source = GustoPayrollSource(gusto_client(conn), conn.account)
        category = (conn.settings or {}).get("cost_category")
        employee_id, seq, target_id = job.source_id, job.attempts, target.id
    employee = call_with_retries(lambda: source.get_employee(employee_id))
    master = build_master(employee, category)
    with session_scope(runtime.settings().database_url) as s:
        payload = targets.employee_payload(s, s.get(Connection, target_id), master, source_system=SYSTEM)
    payload["seq"] = seq
    return _post(job_id, payload)


# ---------------------------------------------------------------------------- reversals
def prepare_reversal(job_id: int) -> dict | None:
    """A ``payroll.reversed`` / ``payroll.cancelled`` after posting → the reversing entry of
    the posted journal (every line's sides swapped, its own key ``<key>-reversal``, dated the
    day Gusto reported it) handed to the same target; never a deletion. The reversal job
    records the original job and voucher in its payload (``reverses``), so the audit trail
    links them.

    Not posted yet (queued/posting) → TransientApiError (retried later). Never posted (no job,
    or parked failed) → nothing to reverse: the original job is parked as ``cancelled`` so a
    replay cannot post it, and this job ends with a warning. Returns the payload sent or None.
    """
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        original = s.scalar(select(SyncJob).where(SyncJob.flow == PAYROLL_FLOW,
                                                  SyncJob.source_id == job.source_id))
        event = s.get(InboundEvent, job.event_id) if job.event_id else None
        kind = event.event_type if event else "payroll.reversed"
        if original is None or original.status in (repo.FAILED, repo.CANCELLED):
            note = (f"{kind}: payroll {job.source_id} was never posted; nothing to reverse")
            if original is not None and original.status == repo.FAILED:
                original.status = repo.CANCELLED
                original.last_error = f"{original.last_error or ''} | cancelled at source ({kind})".strip(" |")
            job.warnings = [note]
            job.status, job.lease_until = repo.DONE, None
            return None
        if original.status != repo.DONE or not (original.payload or {}).get("entry"):
            raise TransientApiError(f"payroll {job.source_id} is not posted yet (job {original.id} is "
                                    f"{original.status}); the reversal waits for it", system=SYSTEM)
        conn, target = _connection_and_target(s, job.connection_id)
        entry = JournalEntry.from_dict(original.payload["entry"])
        when = dt.datetime.fromtimestamp(event.payload.get("timestamp"), dt.timezone.utc).date() \
            if event and isinstance((event.payload or {}).get("timestamp"), int) else utcnow().date()
        reversal = entry.reversed(
            key=job.idempotency_key, date=max(when, entry.date),
            narration=(f"Reversal of Gusto payroll {job.source_id} ({kind}); reverses voucher "
                       f"{original.target_ref} ({entry.key})"))
        ledgers = [LedgerMaster(**m) for m in original.payload.get("ledgers", [])]
        payload = targets.journal_payload(s, target, reversal, ledgers, source_system=SYSTEM,
                                          source_type="payroll_reversal")
        payload["reverses"] = {"job": original.id, "target_ref": original.target_ref, "key": entry.key}
    return _post(job_id, payload)


# ---------------------------------------------------------------------------- reference data
def claim_reference_job(connection_name: str) -> int:
    """The reference-data job of a Gusto connection (created once, re-opened on each call)."""
    with session_scope(runtime.settings().database_url) as s:
        conn = repo.get_connection(s, connection_name)
        if not conn.account:
            raise ConfigurationError(f"connection {connection_name!r} is not connected to a Gusto company")
        job, _ = repo.claim_job(s, flow=REFERENCE_FLOW, connection_id=conn.id,
                                source_id=f"{conn.account}:reference-data",
                                key=f"{SYSTEM}-reference-data-{conn.account}")
        job.status = repo.QUEUED
        return job.id


def prepare_reference_data(job_id: int) -> dict | None:
    """Read the company's earning types and pay schedules (§1.7); keep the pay schedules on
    the connection (``settings["pay_schedules"]``) and make the target hold every ledger the
    payroll journals may use: the components' default ledgers, one per active earning type
    (under the wages group), and the ``Unallocated`` cost centre. Returns the payload sent, or
    None when the target keeps no such masters (the job ends with a note)."""
    with session_scope(runtime.settings().database_url) as s:
        job = s.get(SyncJob, job_id)
        conn, target = _connection_and_target(s, job.connection_id)
        from connector_tasks.connectors.gusto.service import gusto_client

        client = gusto_client(conn)
        source = GustoPayrollSource(client, conn.account)
        mapping = payroll_mapping(s, conn)
        conn_id, target_id = conn.id, target.id
    earning_types = call_with_retries(source.earning_types)
    schedules = call_with_retries(lambda: client.list_pay_schedules(source.company_id))
    with session_scope(runtime.settings().database_url) as s:
        repo.merge_settings(s, conn_id, {
            "earning_types": earning_types,
            "pay_schedules": [{k: p.get(k) for k in ("uuid", "name", "custom_name", "frequency", "anchor_pay_date",
                                                      "active")} for p in schedules]})
        ledgers = mapping.ledger_masters(None, earning_types)
        try:
            payload = targets.masters_payload(s, s.get(Connection, target_id), ledgers,
                                              [(mapping.cost_category, UNALLOCATED_COST_CENTRE)])
        except ConfigurationError as exc:
            job = s.get(SyncJob, job_id)
            job.warnings = [f"reference data read; {exc}"]
            job.status, job.lease_until = repo.DONE, None
            return None
    payload.update(source_system=SYSTEM, source_type="reference_data")
    return _post(job_id, payload)


# ---------------------------------------------------------------------------- polling
def poll_events(connection_name: str, *, max_pages: int = 50) -> dict:
    """The polling fallback: read ``GET /v1/events`` (§1.5, system token, ascending) for the
    connection's company after its stored cursor (``settings["events_cursor"]``,
    ``starting_after_uuid``) and feed each event to the same inbound path as webhooks: a new
    event is stored (``source="poll"``) and enqueued; one already received by webhook only
    counts a delivery. The cursor is saved after every page, so a crash re-reads at most one
    page. One poller per connection at a time (a Redis lock). A cursor Gusto no longer knows
    (events are kept 30 days) restarts from the oldest event kept.

    Returns ``{"new": n, "duplicates": n, "cursor": uuid | None, "pages": n}``. Raises Gusto's
    errors (TransientApiError, RateLimitedError, AuthError) after short in-call retries.
    """
    from connector_tasks.connectors.gusto.service import gusto_client

    settings = runtime.settings()
    with leased_lock(runtime.redis_client(), f"lock:gusto-poll:{connection_name}", wait=5.0, system=SYSTEM):
        with session_scope(settings.database_url) as s:
            conn = repo.get_connection(s, connection_name)
            if not conn.account:
                raise ConfigurationError(f"connection {connection_name!r} is not connected to a Gusto company")
            client = gusto_client(conn)
            conn_id, company, cursor = conn.id, conn.account, (conn.settings or {}).get("events_cursor")
        new = dup = pages = 0
        while pages < max_pages:
            try:
                page = call_with_retries(lambda: client.list_events(cursor, EVENTS_PAGE, resource_uuid=company))
            except RejectedError as exc:
                if cursor and exc.status == 422:  # cursor aged out of Gusto's 30 days
                    log.warning("gusto: events cursor %s unknown to Gusto; re-reading from the oldest", cursor)
                    cursor = None
                    continue
                raise
            pages += 1
            for ev in page:
                event = parse_event(ev)
                status = "received" if event.flow else "ignored"
                event_id, created = repo.ingest_event(
                    settings.database_url, system=SYSTEM, connection_id=conn_id, payload=ev,
                    event_uuid=event.uuid, event_type=event.event_type, entity_type=event.entity_type,
                    entity_id=event.entity_uuid, status=status, source="poll")
                if created:
                    new += 1
                    if status == "received":
                        hand_off(SYSTEM, event_id)
                else:
                    dup += 1
            if page:
                cursor = page[-1]["uuid"]
                with session_scope(settings.database_url) as s:
                    repo.merge_settings(s, conn_id, {"events_cursor": cursor,
                                                     "events_polled_at": utcnow().isoformat()})
            if len(page) < EVENTS_PAGE:
                break
    return {"new": new, "duplicates": dup, "cursor": cursor, "pages": pages}


def polled_connections() -> list[str]:
    """Names of the Gusto connections the beat schedule polls: connected (a company known)
    and not opted out (``settings["poll"] is False``)."""
    with session_scope(runtime.settings().database_url) as s:
        return [c.name for c in s.scalars(select(Connection).where(Connection.system == SYSTEM))
                if c.account and (c.settings or {}).get("poll", True) is not False]


# ---------------------------------------------------------------------------- backfill
def _year_windows(start: dt.date, end: dt.date) -> Iterator[tuple[dt.date, dt.date]]:
    """``start``..``end`` in windows of at most 365 days (Gusto refuses > 1 year, §1.6)."""
    while start <= end:
        stop = min(end, start + dt.timedelta(days=364))
        yield start, stop
        start = stop + dt.timedelta(days=1)


def backfill_payrolls(connection_name: str, start: dt.date, end: dt.date,
                      progress: Callable[[int, int, str], None] | None = None) -> list[str]:
    """Feed every payroll processed with a pay period within ``start``..``end`` into the inbound
    path as if Gusto had sent ``payroll.processed`` (an event ``backfill:<payroll uuid>``,
    ``source="backfill"``), so each becomes its job once: payrolls already posted are not
    posted again (same idempotency key). ``progress(done, total, payroll_uuid)`` is called per
    payroll. Returns the uuids of the payrolls found (their jobs' ``source_id``).

    Raises ValueError when ``end`` is before ``start``; Gusto's errors after short retries.
    """
    from connector_tasks.celery_app import app
    from connector_tasks.connectors.gusto.service import gusto_client

    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    settings = runtime.settings()
    with session_scope(settings.database_url) as s:
        conn = repo.get_connection(s, connection_name)
        if not conn.account:
            raise ConfigurationError(f"connection {connection_name!r} is not connected to a Gusto company")
        client = gusto_client(conn)
        conn_id, company = conn.id, conn.account
    payrolls: list[dict] = []
    for a, b in _year_windows(start, end):
        payrolls.extend(call_with_retries(lambda: client.list_payrolls(company, a, b, processed=True)))
    found = []
    for i, p in enumerate(payrolls, 1):
        pid = p.get("payroll_uuid") or p.get("uuid")
        body = {"uuid": f"backfill:{pid}", "event_type": "payroll.processed", "resource_type": "Company",
                "resource_uuid": company, "entity_type": "Payroll", "entity_uuid": pid,
                "timestamp": int(utcnow().timestamp())}
        event_id, created = repo.ingest_event(settings.database_url, system=SYSTEM, connection_id=conn_id,
                                              payload=body, event_uuid=body["uuid"], event_type="payroll.processed",
                                              entity_type="Payroll", entity_id=pid, source="backfill")
        with session_scope(settings.database_url) as s:
            job = s.scalar(select(SyncJob).where(SyncJob.flow == PAYROLL_FLOW, SyncJob.source_id == pid))
            redrive = job is None or job.status not in (repo.DONE, repo.POSTING)
        if created:
            hand_off(SYSTEM, event_id)
        elif redrive:  # stored by an earlier backfill and its job not done: route it again
            app.send_task("gusto.handle_event", args=[event_id])
        found.append(pid)
        if progress:
            progress(i, len(payrolls), pid)
    return found
