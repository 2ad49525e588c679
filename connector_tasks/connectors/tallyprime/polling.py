"""TallyPrime as a polled purchase source: the poll runs on the agent's lane, its result comes
back as the outcome of the command the cloud gave.

1. The cloud (:func:`request_poll`, from beat's :func:`polls_due` every minute or the CLI/demo)
   records a poll request ``{request_id, sent_at, status: pending}`` in the Tally connection's
   state and sends ``tally.poll_purchases(connection, request_id, company=, state=,
   capability=, secrets=)`` into the agent's prefixed lane ``tally.<connection>``
   (:func:`connector_tasks.agents.lanes.send_request`: a capability for subject
   ``request:<connection>:<request_id>``; one request in flight: the agent is one process, one
   task at a time, and holds the Tally lock).
2. The agent (:func:`poll_purchases_task`) asks Tally for the company's AlterID high-water marks
   first, exports only the purchase vouchers, debit notes and stock items with a higher AlterID,
   counts the company's purchase vouchers and, only when the count says something disappeared,
   reads the cheap GUID list (:func:`~.exports.poll_purchases`). It pushes the result to its
   own outbox as a ``request`` report with the capability it was given
   (:func:`connector_tasks.agents.outbox.push_report`); it holds no database credentials and
   can publish no task a cloud worker runs.
3. The cloud's collector checks the report (agent active, capability for this connection and
   request, the connection the agent's own) and hands it to :func:`record_tally_poll`, which
   refuses a result that answers no request it issued (unknown, superseded or already answered
   ``request_id``: the agent is untrusted), checks its
   shape, stores one event per changed voucher (``purchase.changed``, keyed by GUID and
   AlterID) and per deleted GUID (``purchase.deleted``) through the one inbound path
   (:func:`connector_tasks.pipeline.inbound.store`, committed), then — only after the whole
   batch is claimed in the store — stores the new watermark, and hands the new events on to
   routing.

A failed poll (Tally down, company not loaded, a refused login) reports ``{"error"}``: the
watermark stays, the next poll reads the same changes again.

Credentials: the Tally user name and password of a protected company are the Tally
connection's encrypted credentials (``username``, ``password``); they travel only inside the
command (``secrets``, added at publish by :func:`~.target.command_secrets`, masked in the
task's ``kwargsrepr``) to the agent, which sends them with every request to Tally
(:class:`~.client.TallyClient`) and never logs or keeps them.

A result too large for one report (``AGENT_REPORT_MAX_BYTES``, 16 MiB by default: roughly
15,000 changed vouchers, or a GUID list of 400,000 vouchers) is reported as an error naming the
limit instead; the watermark stays and the operator raises the limit for that first poll.
"""
from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from decimal import Decimal

from celery import shared_task
from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.connections import get_connection, targets_of
from connector_tasks.connectors.tallyprime.source import CHANGED, DELETED, SYSTEM
from connector_tasks.agents.outbox import request_handler
from connector_tasks.connectors.tallyprime.target import tally_queue
from connector_tasks.core.errors import ConfigurationError, TransientApiError
from connector_tasks.domain.ports import Role
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, SyncJob, utcnow

log = logging.getLogger(__name__)

#: state key of the poll's watermark (:attr:`~.exports.PurchasePoll.state`)
POLL_STATE_KEY = "tally_purchase_poll"
#: state key of the last poll request: ``{"request_id", "sent_at", "status", "error", ...}``
REQUEST_KEY = "tally_poll_request"
POLL_TASK = "tally.poll_purchases"
#: minutes between polls when no target says otherwise
DEFAULT_INTERVAL_MINUTES = 10
#: at most this many vouchers in one poll result (a larger one is refused as malformed)
MAX_VOUCHERS = 200_000

# the agent process's cache of stock item name → part number, per connection
_PART_NUMBERS: dict[str, dict[str, str]] = {}


# ============================================================================ cloud: request
def _request_record_lock(connection_name: str):
    """The broker's lock around every read-modify-write of a connection's poll request record
    (a new request, an answer): SQLite has no row locks, and an answer merged into a record
    read just before a newer request was written would put the older request back (seen: the
    newer request's answer was then refused and its caller waited in vain). Raises
    TransientApiError when it is not had within 30 s."""
    from connector_tasks.core.locks import leased_lock

    return leased_lock(runtime.redis_client(), f"lock:tally-poll-request:{connection_name}", lease=15.0,
                       wait=30.0, system=SYSTEM)


def request_poll(connection_name: str, *, wait: float | None = None) -> dict:
    """Ask the agent of Tally connection ``connection_name`` for a purchase poll now; returns
    the request record ``{"request_id", "sent_at", "status": "pending"}`` or, with ``wait``
    seconds, the request once answered (``status`` ``done`` with ``events``/``vouchers``/
    ``deleted`` counts, or ``error``). A newer request supersedes an unanswered older one.
    Raises ConfigurationError (unknown or non-Tally connection, or no agent registered for
    it) and TransientApiError (the broker refused the message, or no answer within ``wait``)."""
    from connector_tasks.agents import lanes

    url = runtime.settings().database_url
    with _request_record_lock(connection_name), session_scope(url) as s:
        conn = get_connection(s, connection_name, system=SYSTEM)
        company = conn.account
        state = repo.get_state(s, conn.id, POLL_STATE_KEY) or {}
        if state.get("company") != company:
            state = {}          # another company (or none yet): its first poll
        state = {k: v for k, v in state.items() if k not in ("company", "epoch")}
        request = {"request_id": uuid.uuid4().hex, "sent_at": utcnow().isoformat(), "status": "pending",
                   "company": company}
        repo.put_state(s, conn.id, {REQUEST_KEY: request})
    try:
        lanes.send_request(connection_name, tally_queue(connection_name), POLL_TASK, request["request_id"],
                           [connection_name, request["request_id"]], {"company": company, "state": state})
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds when the broker is down
        raise TransientApiError(f"could not ask the Tally agent of {connection_name!r} for a poll: the broker "
                                f"refused the message", system=SYSTEM, detail=str(exc)) from exc
    if wait is None:
        return request
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        with session_scope(url) as s:
            last = repo.get_state(s, get_connection(s, connection_name).id, REQUEST_KEY) or {}
        if last.get("request_id") == request["request_id"] and last.get("status") != "pending":
            return last
        time.sleep(0.2)
    raise TransientApiError(f"the Tally agent of {connection_name!r} did not answer the poll within {wait:g} s; "
                            f"is its agent (`tally-worker run`) running?", system=SYSTEM)


def interval_minutes(session, conn: Connection) -> int:
    """Minutes between polls of ``conn``: the smallest ``poll_interval_minutes`` of its targets
    that play an inventory target (:data:`DEFAULT_INTERVAL_MINUTES` when none says)."""
    from connector_tasks.connections import settings_of

    values = [getattr(settings_of(t), "poll_interval_minutes", None)
              for t in targets_of(session, conn, Role.INVENTORY_TARGET)]
    values = [v for v in values if isinstance(v, int)]
    return min(values) if values else DEFAULT_INTERVAL_MINUTES


@shared_task(name="connector.tally_polls_due", acks_late=True)
def polls_due() -> list[str]:
    """Beat, every minute: request a poll of every Tally connection that feeds an inventory
    target and whose last request is older than its :func:`interval_minutes`. Returns the
    connection names asked."""
    now = utcnow()
    due = []
    with session_scope(runtime.settings().database_url) as s:
        for conn in s.scalars(select(Connection).where(Connection.system == SYSTEM)):
            try:
                if not targets_of(s, conn, Role.INVENTORY_TARGET):
                    continue
                minutes = interval_minutes(s, conn)
            except ConfigurationError as exc:
                log.warning("tally poll of %s skipped: %s", conn.name, exc)
                continue
            last = repo.get_state(s, conn.id, REQUEST_KEY) or {}
            sent = dt.datetime.fromisoformat(last["sent_at"]) if last.get("sent_at") else None
            if sent is not None and sent.tzinfo is None:
                sent = sent.replace(tzinfo=dt.timezone.utc)
            if sent is None or (now - sent).total_seconds() >= minutes * 60:
                due.append(conn.name)
    for name in due:
        try:
            request_poll(name)
        except Exception as exc:  # noqa: BLE001 - one connection's trouble must not stop the others
            log.warning("tally poll of %s not requested: %s", name, exc)
    return due


# ============================================================================ agent
def _jsonable(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@shared_task(name=POLL_TASK, bind=True, acks_late=True)
def poll_purchases_task(self, connection_name: str, request_id: str, company: str | None = None,
                        state: dict | None = None, capability: str | None = None,
                        secrets: dict | None = None) -> None:
    """(Agent) Poll the Tally company's purchases since ``state`` (the watermark the cloud
    holds) under the Tally lock, logging in with ``secrets["tally_login"]`` when the company is
    protected, and push the result to this agent's outbox as a ``request`` report carrying
    ``capability`` (the one the command came with): ``{"request_id",
    "marks", "vouchers" (JSON-safe voucher dicts), "stock_items" (count), "count",
    "current_guids" (list, or ``None`` when the GUID list was not read), "state", "requests",
    "polled_at"}``, or ``{"request_id", "error", "retryable"}``. Never retried (the cloud asks
    again at the next interval). A result over the report limit is reported as an error naming
    it."""
    from connector_tasks.agents.outbox import ReportTooLarge, push_report
    from connector_tasks.connectors.tallyprime.exports import poll_purchases
    from connector_tasks.connectors.tallyprime.tasks import _tally_lock
    from connector_tasks.connectors.tallyprime.client import TallyClient
    from connector_tasks.jobs.runner import describe

    try:
        if not company:
            raise ConfigurationError(f"connection {connection_name!r} names no Tally company", system=SYSTEM)
        tally = runtime.app_settings(SYSTEM)
        login = (secrets or {}).get("tally_login") or {}
        client = TallyClient(tally.url, company, username=login.get("username") or None,
                             password=login.get("password") or None, timeout=(5, tally.timeout),
                             max_reply_bytes=tally.max_reply_bytes, deadline=tally.reply_deadline)
        with _tally_lock(client):
            poll = poll_purchases(client, state or None, part_numbers=_PART_NUMBERS.setdefault(connection_name, {}))
        result = {"request_id": request_id, "marks": poll.marks, "vouchers": _jsonable(poll.vouchers),
                  "stock_items": len(poll.stock_items), "count": poll.count,
                  "current_guids": sorted(poll.current_guids) if poll.guid_list_fetched else None,
                  "state": poll.state, "requests": poll.requests, "polled_at": utcnow().isoformat()}
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the cloud
        log.warning("tally poll of %s failed: %s", connection_name, describe(exc))
        result = {"request_id": request_id, "error": describe(exc),
                  "retryable": bool(getattr(exc, "retryable", False))}
    report = {"kind": "request", "command": POLL_TASK, "connection": connection_name,
              "request_id": request_id, "capability": capability}
    try:
        push_report({**report, "result": result})
    except ReportTooLarge as exc:
        log.warning("tally poll of %s: %s", connection_name, exc)
        push_report({**report, "result": {"request_id": request_id, "retryable": False,
                                          "error": f"the poll's result is too large for one report: {exc}"}})


# ============================================================================ cloud: result
def _check_result(result) -> None:
    """Raise ValueError naming what is wrong with a poll result from the (untrusted) agent."""
    if not isinstance(result, dict):
        raise ValueError("a poll result must be an object")
    if result.get("error") is not None:
        if not isinstance(result["error"], str):
            raise ValueError("error must be a string")
        return
    vouchers = result.get("vouchers")
    if not isinstance(vouchers, list) or len(vouchers) > MAX_VOUCHERS:
        raise ValueError("vouchers must be a list")
    for v in vouchers:
        if not isinstance(v, dict) or not isinstance(v.get("guid"), str) or not v["guid"]:
            raise ValueError("every voucher needs a guid")
        if type(v.get("alter_id")) is not int:
            raise ValueError(f"voucher {v.get('guid')} has no integer alter_id")
    marks, st = result.get("marks"), result.get("state")
    if not isinstance(marks, dict) or type(marks.get("voucher")) is not int:
        raise ValueError("marks.voucher must be an integer")
    if not isinstance(st, dict) or any(type(st.get(k)) is not int for k in ("voucher_alter_id", "master_alter_id")):
        raise ValueError("state must carry integer watermarks")
    guids = result.get("current_guids")
    if guids is not None and (not isinstance(guids, list) or not all(isinstance(g, str) for g in guids)):
        raise ValueError("current_guids must be a list of strings")


def _answer(connection_name: str, connection_id: int, request_id: str, request_changes: dict,
            watermark: dict | None = None, *, company: str | None = None, epoch: str | None = None) -> bool:
    """Under the request-record lock (and a row lock where the store has them): store ``watermark`` (read from
    ``company``, tagged with it and its ``epoch``; only while the connection still names that
    company) and, when the record is still this request's, merge ``request_changes`` into it.
    A newer request sent meanwhile is never overwritten. Returns whether the record was this
    request's."""
    from connector_tasks.store.models import ConnectionState

    with _request_record_lock(connection_name), session_scope(runtime.settings().database_url) as s:
        row = s.scalar(select(ConnectionState).where(ConnectionState.connection_id == connection_id,
                                                     ConnectionState.key == REQUEST_KEY).with_for_update())
        current = dict(row.value or {}) if row is not None else {}
        conn = s.get(Connection, connection_id)
        changes = {}
        if watermark is not None and company == conn.account:
            changes[POLL_STATE_KEY] = {**watermark, "company": company, "epoch": epoch}
        mine = current.get("request_id") == request_id
        if mine:
            changes[REQUEST_KEY] = {**current, **request_changes}
        repo.put_state(s, connection_id, changes)
    return mine


def _known_guids(session, conn: Connection, epoch: str | None) -> set[str]:
    """The voucher GUIDs of ``conn`` the store has purchase jobs for, made since ``epoch`` (ISO
    time the connection began polling its current company: GUIDs of a company it named before
    are never taken as deleted from this one)."""
    from connector_tasks.flows.purchase_to_order import FLOW

    query = select(SyncJob.source_id).where(SyncJob.connection_id == conn.id, SyncJob.flow == FLOW)
    if epoch:
        since = dt.datetime.fromisoformat(epoch)
        query = query.where(SyncJob.created_at >= (since if since.tzinfo else since.replace(tzinfo=dt.timezone.utc)))
    return set(session.scalars(query))


@request_handler(POLL_TASK)
def record_tally_poll(connection_name: str, request_id: str, result: dict) -> dict:
    """(Cloud) Record what the agent polled for request ``request_id`` (see the module
    docstring). Returns ``{"refused": reason}`` for a result that answers no pending request
    the cloud issued or is malformed (nothing stored), else ``{"events": n new, "vouchers": n,
    "deleted": n}`` (``{"error": text}`` when the agent reported a failure). Idempotent: a
    redelivered result finds its request answered and is refused; events are unique per
    (system, uuid)."""
    from connector_tasks.pipeline.inbound import SourceEvent, store
    from connector_tasks.pipeline.relay import hand_off

    url = runtime.settings().database_url
    with session_scope(url) as s:
        try:
            conn = get_connection(s, connection_name, system=SYSTEM)
        except ConfigurationError as exc:
            log.warning("poll result %s refused: %s", request_id, exc.message)
            return {"refused": exc.message}
        pending = repo.get_state(s, conn.id, REQUEST_KEY) or {}
        conn_id, company = conn.id, pending.get("company") or conn.account
        previous = repo.get_state(s, conn.id, POLL_STATE_KEY) or {}
        # the company's polling epoch: kept while the watermark is this company's, else it
        # starts with this request (a connection moved to another company starts afresh)
        epoch = previous.get("epoch") if previous.get("company") == company and previous.get("epoch") \
            else pending.get("sent_at")
        known = _known_guids(s, conn, epoch)
    if pending.get("request_id") != request_id or pending.get("status") != "pending":
        log.warning("poll result %s of %s refused: it answers no pending poll request", request_id, connection_name)
        return {"refused": "answers no pending poll request of this connection"}
    try:
        _check_result(result)
    except ValueError as exc:
        _answer(connection_name, conn_id, request_id, {"status": "error", "error": f"malformed: {exc}",
                                      "answered_at": utcnow().isoformat()})
        log.warning("poll result %s of %s refused: %s", request_id, connection_name, exc)
        return {"refused": f"malformed: {exc}"}
    if result.get("error"):
        _answer(connection_name, conn_id, request_id, {"status": "error", "error": result["error"],
                                      "answered_at": utcnow().isoformat()})
        return {"error": result["error"]}
    created: list[int] = []
    for v in result["vouchers"]:
        event = SourceEvent(uuid=f"{v['guid']}:{v['alter_id']}", event_type=CHANGED, entity_type="purchase",
                            entity_id=v["guid"], version=v["alter_id"], account=company, raw=v)
        event_id, new = store(SYSTEM, conn_id, event, source="poll")
        if new:
            created.append(event_id)
    deleted: list[str] = []
    if result.get("current_guids") is not None:
        current = set(result["current_guids"]) | {v["guid"] for v in result["vouchers"]}
        deleted = sorted(known - current)
        for guid in deleted:
            event = SourceEvent(uuid=f"{guid}:deleted", event_type=DELETED, entity_type="purchase", entity_id=guid,
                                version=int(result["marks"]["voucher"]), account=company,
                                raw={"guid": guid, "deleted": True, "alter_id": int(result["marks"]["voucher"])})
            event_id, new = store(SYSTEM, conn_id, event, source="poll")
            if new:
                created.append(event_id)
    summary = {"events": len(created), "vouchers": len(result["vouchers"]), "deleted": len(deleted)}
    # the batch is claimed in the store: now the watermark may move on (a newer request sent
    # meanwhile keeps its own record; it asked from the older watermark, which is harmless)
    _answer(connection_name, conn_id, request_id, {"status": "done", "answered_at": utcnow().isoformat(),
                                  "requests": result.get("requests"), **summary}, watermark=result["state"],
            company=company, epoch=epoch)
    for event_id in created:
        hand_off(event_id)
    log.info("tally poll of %s: %d vouchers, %d deleted, %d new events", connection_name, summary["vouchers"],
             summary["deleted"], summary["events"])
    return summary


def beat_schedule(app) -> dict:
    """Beat's entry: :func:`polls_due` every 60 s (each connection is polled every
    :func:`interval_minutes`)."""
    return {"tally-purchase-polls": {"task": "connector.tally_polls_due", "schedule": 60.0}}
