"""Gusto as a source: its event table, the ports a flow reads it through, the ``/v1/events``
poll and the payroll backfill — each feeding the same inbound path as webhooks.

Event table (event types: https://docs.gusto.com/embedded-payroll/docs/payroll-events and
https://docs.gusto.com/embedded-payroll/docs/employee-events):

=======================================================  ==========================
events                                                   flow
=======================================================  ==========================
``payroll.processed``                                    ``payroll_to_journal``
``payroll.reversed``, ``payroll.cancelled``              ``payroll_reversal``
``payroll.paid``                                         ``payroll_settlement``
``employee.created/updated/onboarded/terminated/…``      ``employee_to_master``
=======================================================  ==========================

``payroll.partially_reversed`` is stored and ignored (its amounts would be needed). An event's
version is its ``timestamp`` (epoch seconds): a newer event about a finished job re-opens it.

``payroll.paid`` is "not triggered in demo" (Gusto's demo environment never sends it,
https://docs.gusto.com/embedded-payroll/docs/payroll-events), and a webhook may be lost, so
:func:`settle_due` stands in for it: for every payroll posted but not yet settled whose debit
time (``payroll_status_meta.expected_debit_time``) has passed, it feeds a ``payroll.paid``
event of its own (``debit:<payroll uuid>``) into the same inbound path, as the backfill does
for ``payroll.processed``.
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Callable, Iterator

from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.connections import get_connection, settings_of
from connector_tasks.connectors.gusto.adapter import GustoPayrollSource
from connector_tasks.connectors.gusto.webhooks import SYSTEM, parse_event, routable
from connector_tasks.core.errors import ConfigurationError, RejectedError
from connector_tasks.core.locks import leased_lock
from connector_tasks.core.retry import call_with_retries
from connector_tasks.flows.catalog import REVERSAL_FLOW
from connector_tasks.flows.employee_to_master import FLOW as EMPLOYEE_FLOW
from connector_tasks.flows.payroll_to_journal import FLOW as PAYROLL_FLOW
from connector_tasks.flows.payroll_to_settlement import FLOW as SETTLEMENT_FLOW
from connector_tasks.pipeline.inbound import SourceEvent, accept, canonical_json
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, utcnow

log = logging.getLogger(__name__)

#: the employee events that change an employee's master
EMPLOYEE_EVENTS = frozenset({
    "employee.created", "employee.updated", "employee.onboarded", "employee.terminated",
    "employee.terminated_effective", "employee.termination_cancelled", "employee.rehired",
    "employee.rehire_effective", "employee.rehire_cancelled",
})
#: a payroll undone after processing
REVERSAL_EVENTS = frozenset({"payroll.reversed", "payroll.cancelled"})
#: event type → flow (the only place Gusto events meet flows)
EVENT_FLOWS = {"payroll.processed": PAYROLL_FLOW,
               "payroll.paid": SETTLEMENT_FLOW,
               **{e: REVERSAL_FLOW for e in REVERSAL_EVENTS},
               **{e: EMPLOYEE_FLOW for e in EMPLOYEE_EVENTS}}
#: ``/v1/events`` page size (OAS: limit 1..100).
EVENTS_PAGE = 100


class GustoSource(GustoPayrollSource):
    """The payroll, employee and reference ports of one connected company (see
    :mod:`connector_tasks.domain.ports`) over its client."""

    def pay_schedules(self) -> list[dict]:
        """The company's pay schedules, trimmed to ``uuid, name, custom_name, frequency,
        anchor_pay_date, active`` (``GET /v1/companies/{id}/pay_schedules``, OAS
        ``Pay-Schedule-List``)."""
        return [{k: p.get(k) for k in ("uuid", "name", "custom_name", "frequency", "anchor_pay_date", "active")}
                for p in self.client.list_pay_schedules(self.company_id)]


def open(connection) -> GustoSource:  # noqa: A001 - the registry's name for "the ports of a connection"
    """The ports of Gusto connection ``connection`` (an Endpoint or a row). Raises
    ConfigurationError when it is not connected to a company yet."""
    from connector_tasks.connectors.gusto.service import gusto_client

    if not connection.account:
        raise ConfigurationError(f"connection {connection.name!r} is not connected to a Gusto company")
    return GustoSource(gusto_client(connection), connection.account)


def _connected(s, connection_name: str) -> Connection:
    conn = get_connection(s, connection_name, system=SYSTEM)
    if not conn.account:
        raise ConfigurationError(f"connection {connection_name!r} is not connected to a Gusto company")
    return conn


# ---------------------------------------------------------------------------- polling
def poll_events(connection_name: str, *, max_pages: int = 50) -> dict:
    """The polling fallback: read ``GET /v1/events`` (system token, ascending) for the
    connection's company after its stored cursor (state ``events_cursor``, Gusto's
    ``starting_after_uuid``) and feed each event to the same inbound path as webhooks: a new
    event is stored (``source="poll"``) and handed on; one already received by webhook only
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
            conn = _connected(s, connection_name)
            client = gusto_client(conn)
            conn_id, company = conn.id, conn.account
            cursor = repo.get_state(s, conn.id, "events_cursor")
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
            for raw in page:
                event = parse_event(raw)
                _, created = accept(SYSTEM, conn_id, event, source="poll", routable=routable(event, company),
                                    raw_body=canonical_json(raw))
                new, dup = (new + 1, dup) if created else (new, dup + 1)
            if page:
                cursor = page[-1]["uuid"]
                with session_scope(settings.database_url) as s:
                    repo.put_state(s, conn_id, {"events_cursor": cursor, "events_polled_at": utcnow().isoformat()})
            if len(page) < EVENTS_PAGE:
                break
    return {"new": new, "duplicates": dup, "cursor": cursor, "pages": pages}


def polled_connections() -> list[str]:
    """Names of the Gusto connections the beat schedule polls: connected (a company known)
    and not opted out (setting ``poll`` false)."""
    with session_scope(runtime.settings().database_url) as s:
        return [c.name for c in s.scalars(select(Connection).where(Connection.system == SYSTEM))
                if c.account and settings_of(c).poll]


# ---------------------------------------------------------------------------- backfill
def _year_windows(start: dt.date, end: dt.date) -> Iterator[tuple[dt.date, dt.date]]:
    """``start``..``end`` in windows of at most 365 days (Gusto refuses > 1 year, OAS list)."""
    while start <= end:
        stop = min(end, start + dt.timedelta(days=364))
        yield start, stop
        start = stop + dt.timedelta(days=1)


def backfill(connection_name: str, start: dt.date, end: dt.date,
             progress: Callable[[int, int, str], None] | None = None) -> tuple[str, list[str]]:
    """Feed every payroll processed with a pay period within ``start``..``end`` into the inbound
    path as if Gusto had sent ``payroll.processed`` (an event ``backfill:<payroll uuid>``,
    ``source="backfill"``, no version: it never re-opens a finished job), so each becomes its
    job once: payrolls already posted are not posted again (same idempotency key).
    ``progress(done, total, payroll_uuid)`` is called per payroll. Returns the flow and the
    payroll uuids found (their jobs' ``source_id``); an event stored by an earlier backfill
    whose job is not done is routed again.

    Raises ValueError when ``end`` is before ``start``; Gusto's errors after short retries.
    """
    from connector_tasks.connectors.gusto.service import gusto_client
    from connector_tasks.pipeline.tasks import publish_route

    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    with session_scope(runtime.settings().database_url) as s:
        conn = _connected(s, connection_name)
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
        event = SourceEvent(uuid=body["uuid"], event_type="payroll.processed", entity_type="Payroll",
                            entity_id=pid, version=None, account=company, raw=body)
        event_id, created = accept(SYSTEM, conn_id, event, source="backfill")
        if not created and _unfinished(conn_id, pid):
            publish_route(event_id)  # stored by an earlier backfill and its job not done: route it again
        found.append(pid)
        if progress:
            progress(i, len(payrolls), pid)
    return PAYROLL_FLOW, found


def _unfinished(conn_id: int, payroll_id: str) -> bool:
    """True unless every payroll job of the payroll on connection ``conn_id`` is done or posting."""
    from connector_tasks.store.models import SyncJob

    with session_scope(runtime.settings().database_url) as s:
        jobs = s.scalars(select(SyncJob).where(SyncJob.connection_id == conn_id, SyncJob.flow == PAYROLL_FLOW,
                                               SyncJob.source_id == payroll_id)).all()
        return not jobs or any(j.status not in ("done", "posting") for j in jobs)


# ---------------------------------------------------------------------------- settlement by debit date
def _posted_unsettled(conn_id: int) -> list[str]:
    """Payroll uuids of connection ``conn_id`` whose journal job is done for some target while
    no settlement job exists for them yet."""
    from connector_tasks.store.models import SyncJob

    with session_scope(runtime.settings().database_url) as s:
        posted = set(s.scalars(select(SyncJob.source_id).where(
            SyncJob.connection_id == conn_id, SyncJob.flow == PAYROLL_FLOW, SyncJob.status == "done")))
        settled = set(s.scalars(select(SyncJob.source_id).where(
            SyncJob.connection_id == conn_id, SyncJob.flow == SETTLEMENT_FLOW)))
    return sorted(posted - settled)


def settle_due(connection_name: str, *, now: dt.datetime | None = None) -> dict:
    """The stand-in for ``payroll.paid`` (see the module docstring): for each payroll of the
    connection posted but not settled, read it from Gusto now (``GET …/payrolls/{id}``, its
    ``payroll_status_meta``) and, once its ``expected_debit_time`` has passed (``now``, UTC;
    a payroll without one: its check date), feed a ``payroll.paid`` event
    ``debit:<payroll uuid>`` (``source="schedule"``, no version) into the inbound path. Routing
    then claims the settlement job per target; a real ``payroll.paid`` later finds the same job
    and the target finds the settlement by its key, so nothing is settled twice. A payroll no
    longer processed, or reversed, is left alone.

    Returns ``{"due": [payroll uuids], "waiting": [payroll uuids]}``. Raises Gusto's errors after
    short in-call retries.
    """
    from connector_tasks.connectors.gusto.adapter import payroll_from_gusto
    from connector_tasks.connectors.gusto.service import gusto_client

    now = now or dt.datetime.now(dt.timezone.utc)
    with session_scope(runtime.settings().database_url) as s:
        conn = _connected(s, connection_name)
        client = gusto_client(conn)
        conn_id, company = conn.id, conn.account
    due, waiting = [], []
    for pid in _posted_unsettled(conn_id):
        data = call_with_retries(lambda: client.get_payroll(company, pid))
        if not data.get("processed") or data.get("reversal_payroll_uuids"):
            continue
        run = payroll_from_gusto(data)
        stamp = (data.get("payroll_status_meta") or {}).get("expected_debit_time")
        debit_at = (dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00")) if stamp else
                    dt.datetime.combine(run.check_date, dt.time(), dt.timezone.utc))
        if debit_at > now:
            waiting.append(pid)
            continue
        body = {"uuid": f"debit:{pid}", "event_type": "payroll.paid", "resource_type": "Company",
                "resource_uuid": company, "entity_type": "Payroll", "entity_uuid": pid,
                "timestamp": int(debit_at.timestamp())}
        event = SourceEvent(uuid=body["uuid"], event_type="payroll.paid", entity_type="Payroll", entity_id=pid,
                            version=None, account=company, raw=body)
        accept(SYSTEM, conn_id, event, source="schedule")
        due.append(pid)
    return {"due": due, "waiting": waiting}
