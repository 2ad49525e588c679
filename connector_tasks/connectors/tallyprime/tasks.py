"""TallyPrime tasks, run by the local agent ``tally_worker`` on queue ``tally.<connection>``.

The agent holds no database credentials and publishes no task: it talks to TallyPrime and
pushes each outcome (a typed :class:`~connector_tasks.jobs.runner.Outcome`, or a masters
snapshot) to its own outbox with the capability its command carried
(:mod:`connector_tasks.agents.outbox`); the cloud's collector checks and records it. Every
conversation with Tally happens under the leased Redis lock ``lock:tally:<url>`` (under the
agent's key prefix; one request in flight per Tally instance: Tally's XML server is
single-threaded and UI-bound, https://help.tallysolutions.com/pre-requisites-for-integrations/).
"""
from __future__ import annotations

import logging

from celery import shared_task

from connector_tasks import runtime
from connector_tasks.connectors.tallyprime.client import TallyClient
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.core.locks import leased_lock
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, LedgerMaster
from connector_tasks.agents.outbox import ReportTooLarge, agent_key, outcome_reporter, push_report
from connector_tasks.jobs.runner import describe, run_target_step
from connector_tasks.store.models import utcnow

log = logging.getLogger(__name__)

SYSTEM = "tallyprime"


def _client(company: str, secrets: dict | None = None) -> TallyClient:
    """A client of ``company`` on this agent's Tally, logged in with ``secrets["tally_login"]``
    (``{"username", "password"}``, sent with the command for a protected company) if given."""
    app = runtime.app_settings(SYSTEM)
    login = (secrets or {}).get("tally_login") or {}
    return TallyClient(app.url, company, timeout=(5, app.timeout), username=login.get("username"),
                       password=login.get("password"), max_reply_bytes=app.max_reply_bytes,
                       deadline=app.reply_deadline)


def _tally_lock(client: TallyClient):
    """The leased lock serialising every conversation with one Tally instance (a key under the
    agent's own prefix: the only keys its broker user may touch)."""
    name = f"lock:tally:{client.url.rstrip('/')}"
    if runtime.settings().environ.get("ML_AGENT_ID"):
        name = agent_key(name)
    return leased_lock(runtime.redis_client(), name, system=SYSTEM)


@shared_task(name="tally.post_journal", bind=True, acks_late=True, max_retries=8)
def post_journal(self, job_id: int, payload: dict) -> None:
    """Post the journal of job ``job_id`` to TallyPrime exactly once.

    ``payload``: ``{"entry": JournalEntry.to_dict(), "company": str, "ledgers": [LedgerMaster
    dicts], "cost_centres": [[category, centre], ...]}``. Under the Tally lock: asks Tally
    whether the voucher's REMOTEID exists (→ ``ok``, nothing written); refuses the entry when
    a ledger it uses neither exists in Tally nor is in ``payload["ledgers"]`` (the ledgers the
    connector owns and creates) — :class:`MappingError` naming the ledger(s) and the company,
    parked without retries, before anything is written; creates the missing owned ledgers and
    cost centres; imports the voucher. ``payload["secrets"]["tally_login"]`` (added by the
    cloud for a protected company, masked in logs) logs in. Reports ``ok`` with the voucher's MASTERID, ``retry``
    (Tally down, company not loaded, timeout: retried with countdown) or ``failed`` with
    Tally's own text (LINEERROR, nothing created).
    """
    def work() -> tuple[str, dict]:
        entry = JournalEntry.from_dict(payload["entry"])
        client = _client(payload["company"], payload.get("secrets"))
        # The look-up, the check, the masters and the import happen under one hold.
        with _tally_lock(client):
            existing = client.find_journal(entry.key)
            if existing:
                return existing, {"already_in_tally": True, "remote_id": entry.key}
            ledgers = [LedgerMaster(**m) for m in payload.get("ledgers", [])]
            client.check_ledgers(entry, ledgers)
            centres = [tuple(c) for c in payload.get("cost_centres", [])]
            created = client.ensure_ledgers(ledgers, centres)
            voucher_id = client.post_journal(entry)
        return voucher_id, {"remote_id": entry.key, "masters_created": created}

    run_target_step(self, job_id, payload, work, target_type="voucher", report=outcome_reporter(self.name, payload))


@shared_task(name="tally.sync_employee", bind=True, acks_late=True, max_retries=8)
def sync_employee(self, job_id: int, payload: dict) -> None:
    """Create or alter the employee of job ``job_id`` as a payroll cost centre in TallyPrime
    (an employee is a payroll cost centre in Tally; :meth:`TallyClient.sync_employee`).

    ``payload``: ``{"master": EmployeeMaster.to_dict(), "company": str, "dispatch": {...}}``.
    Runs under the same leased Tally lock as :func:`post_journal` and reports an Outcome with
    ``target_type "cost_centre"``, ``target_id`` the cost centre's MASTERID and ``detail
    {"action": created|altered|unchanged, "name", "changed", "masters_created"}``; retry/park
    exactly as :func:`post_journal`.
    """
    def work() -> tuple[str, dict]:
        master = EmployeeMaster.from_dict(payload["master"])
        client = _client(payload["company"], payload.get("secrets"))
        with _tally_lock(client):
            result = client.sync_employee(master)
        return result["master_id"], {"action": result["action"], "name": result["name"], "key": master.key,
                                     "changed": result.get("changed", []),
                                     "masters_created": result.get("masters_created", [])}

    run_target_step(self, job_id, payload, work, target_type="cost_centre", report=outcome_reporter(self.name, payload))


@shared_task(name="tally.report_masters", bind=True, acks_late=True)
def report_masters(self, connection_name: str, request_id: str, company: str | None = None,
                   capability: str | None = None, secrets: dict | None = None) -> None:
    """Export the masters snapshot of the Tally company and push it to the agent's outbox as a
    ``masters`` report with the request's ``capability`` (the cloud stores it with
    :func:`~connector_tasks.connectors.tallyprime.reference.store_masters`); sent by :func:`connector_tasks.connectors.tallyprime.reference.request_masters_snapshot`
    to queue ``tally.<connection_name>``.

    ``snapshot`` is :meth:`TallyClient.masters_snapshot` plus ``fetched_at`` (ISO UTC) and
    ``request_id``. ``secrets``: the company's login when it is protected (see
    :func:`post_journal`). ``company`` is the Tally company (the connection's account); when
    omitted, the only company loaded in Tally is used. Never retried: on any error the
    snapshot is ``{"request_id", "error": "<class>: <text>", "retryable": bool}`` so the
    waiting caller learns at once why (Tally down, company not loaded…).
    """
    try:
        if not company:
            report = _client("?", secrets).check()
            if len(report["companies"]) != 1:
                raise ConfigurationError(
                    f"connection {connection_name!r} names no company and Tally has "
                    f"{len(report['companies'])} loaded ({report['detail']})", system=SYSTEM)
            company = report["companies"][0]
        client = _client(company, secrets)
        with _tally_lock(client):
            snapshot = client.masters_snapshot()
        snapshot.update(fetched_at=utcnow().isoformat(), request_id=request_id)
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the waiting caller
        log.warning("tally.report_masters for %s failed: %s", connection_name, describe(exc))
        snapshot = {"request_id": request_id, "error": describe(exc),
                    "retryable": bool(getattr(exc, "retryable", False)),
                    "fetched_at": utcnow().isoformat()}
    report = {"kind": "request", "command": self.name, "connection": connection_name,
              "request_id": request_id, "capability": capability}
    try:
        push_report({**report, "result": snapshot})
    except ReportTooLarge as exc:
        push_report({**report, "result": {"request_id": request_id, "error": f"ReportTooLarge: {exc}",
                                            "retryable": False, "fetched_at": utcnow().isoformat()}})


@shared_task(name="tally.ensure_masters", bind=True, acks_late=True, max_retries=8)
def ensure_masters(self, job_id: int, payload: dict) -> None:
    """Make TallyPrime hold the reference-data masters of job ``job_id``: ``payload``
    ``{"ledgers": [LedgerMaster dicts], "cost_centres": [[category, centre]], "company"}``;
    what exists is left alone (:meth:`TallyClient.ensure_ledgers`). Reports ``ok`` with
    ``target_type "masters"``, ``target_id`` the company and ``detail["masters_created"]``;
    retry/park exactly as :func:`post_journal`."""
    def work() -> tuple[str, dict]:
        client = _client(payload["company"], payload.get("secrets"))
        ledgers = [LedgerMaster(**m) for m in payload.get("ledgers", [])]
        centres = [tuple(c) for c in payload.get("cost_centres", [])]
        with _tally_lock(client):
            created = client.ensure_ledgers(ledgers, centres)
        return payload["company"], {"masters_created": created}

    run_target_step(self, job_id, payload, work, target_type="masters", report=outcome_reporter(self.name, payload))
