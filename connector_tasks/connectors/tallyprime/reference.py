"""Tally reference data for the cloud side: a snapshot of the company's masters.

The cloud cannot reach TallyPrime (its port is never exposed; only the local agent talks to
it), so mappings are validated against a snapshot the agent exports on request:

1. :func:`request_masters_snapshot` (cloud, e.g. the mappings CLI/API) sends
   ``tally.report_masters(connection_name, request_id, company=...)`` to the agent's queue
   ``tally.<connection>`` and waits;
2. the agent exports ledgers with their groups, cost categories, cost centres and the
   company's last master/voucher AlterIDs (Tally XML case study 1: collection exports and
   "Change tracking") and pushes it to its outbox with the request's capability;
3. the cloud's collector checks it (:mod:`connector_tasks.agents.outbox`) and
   :func:`store_masters` stores it as the Tally connection's runtime state
   ``tally_masters``; the waiting caller finds it by ``request_id``.

:func:`missing_ledgers` then tells which mapped ledgers Tally does not hold.
"""
from __future__ import annotations

import logging
import time
import uuid

from connector_tasks import runtime
from connector_tasks.agents.outbox import request_handler
from connector_tasks.connections import get_connection
from connector_tasks.connectors.tallyprime.target import tally_queue
from connector_tasks.core.errors import ConfigurationError, TransientApiError
from connector_tasks.store import repo
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection, utcnow

log = logging.getLogger(__name__)

SYSTEM = "tallyprime"
#: runtime-state key of the last good snapshot.
SNAPSHOT_KEY = "tally_masters"
#: runtime-state key of the last request's outcome (``request_id``, ``error``, ``at``).
REQUEST_KEY = "tally_masters_request"
POLL_SECONDS = 0.2


def _tally_connection(session, connection_name: str) -> Connection:
    """The TallyPrime connection ``connection_name`` (ConfigurationError when unknown or of
    another system)."""
    return get_connection(session, connection_name, system=SYSTEM)


@request_handler("tally.report_masters")
def store_masters(connection_name: str, request_id: str, snapshot: dict) -> None:
    """Store what the Tally agent exported for request ``request_id``.

    A good ``snapshot`` (see ``tally.report_masters``) becomes the connection's state
    ``tally_masters = {"ledgers": {name: group}, "cost_categories": [names],
    "cost_centres": [{"name", "category", "parent", "for_payroll", "is_employee_group",
    "key"}], "alter_ids": {"master": int|None, "voucher": int|None}, "company",
    "fetched_at": iso, "request_id"}``; a failed one (``{"error": ...}``) leaves the last good
    snapshot in place. Either way state ``tally_masters_request = {"request_id",
    "error": str|None, "at": iso}``. An unknown or non-Tally connection is logged and
    ignored (nothing to retry). Idempotent: a redelivery writes the same values.
    """
    url = runtime.settings().database_url
    with session_scope(url) as s:
        try:
            conn = _tally_connection(s, connection_name)
        except ConfigurationError as exc:
            log.warning("masters snapshot %s dropped: %s", request_id, exc.message)
            return
        changes = {}
        error = snapshot.get("error")
        if not error:
            changes[SNAPSHOT_KEY] = {
                "ledgers": dict(snapshot.get("ledgers") or {}),
                "cost_categories": list(snapshot.get("cost_categories") or []),
                "cost_centres": list(snapshot.get("cost_centres") or []),
                "alter_ids": dict(snapshot.get("alter_ids") or {}),
                "company": snapshot.get("company") or conn.account,
                "fetched_at": snapshot.get("fetched_at") or utcnow().isoformat(),
                "request_id": request_id,
            }
        changes[REQUEST_KEY] = {"request_id": request_id, "error": error,
                                "retryable": bool(snapshot.get("retryable")) if error else None,
                                "at": utcnow().isoformat()}
        repo.put_state(s, conn.id, changes)


def request_masters_snapshot(connection_name: str, *, wait: float = 30) -> dict:
    """Ask the Tally agent of ``connection_name`` for a fresh masters snapshot and return it
    (the ``tally_masters`` state, see :func:`store_masters`) once stored.

    Sends ``tally.report_masters(connection_name, request_id, company=<account>)`` to queue
    ``tally.<connection_name>`` of the connection's registered agent (with the request's
    capability, :func:`connector_tasks.agents.lanes.send_request`) and polls the store every 0.2 s for up to ``wait`` seconds.
    Raises :class:`ConfigurationError` for an unknown or non-Tally connection;
    :class:`TransientApiError` when the broker refuses the message, when the agent reports it
    could not read Tally (its error text included), or when no answer came within ``wait``
    seconds (the message says to start ``tally-worker run`` and open the
    company in TallyPrime).
    """
    from connector_tasks.agents.lanes import send_request

    url = runtime.settings().database_url
    with session_scope(url) as s:
        company = _tally_connection(s, connection_name).account
    request_id = uuid.uuid4().hex
    try:
        send_request(connection_name, tally_queue(connection_name), "tally.report_masters", request_id,
                     [connection_name, request_id], {"company": company})
    except ConfigurationError:
        raise
    except Exception as exc:  # noqa: BLE001 - kombu raises many kinds when the broker is down
        raise TransientApiError(f"could not ask the Tally agent of {connection_name!r} for its "
                                f"masters: the broker refused the message", system=SYSTEM,
                                detail=str(exc)) from exc
    deadline = time.monotonic() + max(0.0, wait)
    while True:
        with session_scope(url) as s:
            conn_id = _tally_connection(s, connection_name).id
            snapshot = repo.get_state(s, conn_id, SNAPSHOT_KEY) or {}
            last = repo.get_state(s, conn_id, REQUEST_KEY) or {}
        if snapshot.get("request_id") == request_id:
            return snapshot
        if last.get("request_id") == request_id and last.get("error"):
            raise TransientApiError(f"the Tally agent of {connection_name!r} could not read the "
                                    f"masters of company {company!r}: {last['error']}",
                                    system=SYSTEM)
        if time.monotonic() >= deadline:
            raise TransientApiError(
                f"the Tally agent of {connection_name!r} did not answer within {wait:g} s; is "
                f"its agent (`tally-worker run`) running beside TallyPrime "
                f"(queue {tally_queue(connection_name)}) and a default-queue worker (the outbox collector) running?",
                system=SYSTEM)
        time.sleep(POLL_SECONDS)


def missing_ledgers(snapshot: dict, names) -> list[str]:
    """The names among ``names`` (any iterable of str) that are not ledgers in ``snapshot``
    (``snapshot["ledgers"]`` keys), compared case-insensitively (ASSUMPTION: Tally names are
    case-insensitive), deduplicated, in first-seen order. An empty name counts as missing."""
    have = {n.casefold() for n in (snapshot.get("ledgers") or {})}
    return [n for n in dict.fromkeys(names) if not n or n.casefold() not in have]
