"""TallyPrime as a ledger and employee target (see :mod:`connector_tasks.flows.targets`): the
work goes to the site's local agent on queue ``tally.<connection>`` with what it needs."""
from __future__ import annotations

from sqlalchemy.orm import Session

from connector_tasks.connectors import registry
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, LedgerMaster
from connector_tasks.store.models import Connection

SYSTEM = "tallyprime"


def tally_queue(connection: str) -> str:
    """The lane of ``connection``'s agent: ``tally.<connection>`` (the registry's agent queue)."""
    return registry.get(SYSTEM).agent_lane(connection)


def journal_payload(session: Session, target: Connection, entry: JournalEntry,
                    ledgers: list[LedgerMaster]) -> dict:
    """``{"entry", "company", "ledgers", "cost_centres", "dispatch"}`` for ``tally.post_journal``:
    ``company`` is the Tally company (the connection's account); ``ledgers`` the ledgers the
    connector owns and may create (every other ledger the entry uses must already exist in
    Tally, else the job is parked naming it); ``cost_centres`` the ``[category, centre]``
    pairs the entry allocates to."""
    centres = sorted({(a.cost_category, a.cost_centre) for line in entry.lines for a in line.allocations})
    return {"entry": entry.to_dict(), "company": target.account,
            "ledgers": [m.to_dict() for m in ledgers],
            "cost_centres": [list(c) for c in centres],
            "dispatch": {"task": "tally.post_journal", "queue": tally_queue(target.name), "agent": target.name}}


def employee_payload(session: Session, target: Connection, master: EmployeeMaster) -> dict:
    """``{"master": master.to_dict(), "company": target.account, "dispatch": {"task":
    "tally.sync_employee", "queue": "tally.<connection>"}}`` for ``tally.sync_employee``
    (the employee becomes a payroll cost centre, https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml)."""
    return {"master": master.to_dict(), "company": target.account,
            "dispatch": {"task": "tally.sync_employee", "queue": tally_queue(target.name), "agent": target.name}}


def masters_payload(session: Session, target: Connection, ledgers: list[LedgerMaster],
                    cost_centres: list[tuple[str, str]]) -> dict:
    """``{"ledgers", "cost_centres", "company", "dispatch"}`` for ``tally.ensure_masters``: the
    ledgers the connector owns (reference data) and ``[category, centre]`` pairs, created in
    Tally when missing."""
    return {"ledgers": [m.to_dict() for m in ledgers], "cost_centres": [list(c) for c in cost_centres],
            "company": target.account,
            "dispatch": {"task": "tally.ensure_masters", "queue": tally_queue(target.name), "agent": target.name}}


def command_secrets(session: Session, target: Connection) -> dict | None:
    """What the agent needs with each command and must not keep: ``{"tally_login":
    {"username", "password"}}`` when the company is under Tally's security control (the
    connection's encrypted credentials ``username``/``password``, stored by ``ml-connector
    tallyprime login``), else ``None``. Added by the cloud when it
    sends a command (:mod:`connector_tasks.agents.lanes`), never stored in a job's payload."""
    from connector_tasks import runtime
    from connector_tasks.store import repo

    creds = repo.read_credentials(target, runtime.vault()) if target.credentials else {}
    if not creds.get("username"):
        return None
    return {"tally_login": {"username": creds["username"], "password": creds.get("password") or ""}}


def missing_ledgers(target: Connection, names: list[str], wait: float) -> tuple[list[str], str]:
    """The names among ``names`` that the Tally company of ``target`` lacks, asked through its
    agent (a fresh masters snapshot, :mod:`.reference`), and where they were looked for. Raises
    TransientApiError when the agent does not answer within ``wait`` seconds."""
    from connector_tasks.connectors.tallyprime.reference import missing_ledgers as missing, request_masters_snapshot

    snapshot = request_masters_snapshot(target.name, wait=wait)
    return missing(snapshot, names), f"Tally company {target.account!r}"
