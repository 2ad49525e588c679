"""Acumatica as a ledger target (see :mod:`connector_tasks.flows.targets`): journals and
employees go to the cloud workers' ``acumatica`` queue, which have store access."""
from __future__ import annotations

from sqlalchemy.orm import Session

from connector_tasks.connectors.acumatica.mapping import department_id
from connector_tasks.connectors.acumatica.service import check_settings, department_overrides, gl_accounts
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, LedgerMaster
from connector_tasks.store.models import Connection

#: the cloud queue of Acumatica's tasks (its registry entry's ``queues``)
QUEUE = "acumatica"


def journal_payload(session: Session, target: Connection, entry: JournalEntry,
                    ledgers: list[LedgerMaster]) -> dict:
    """``{"entry", "connection", "accounts", "dispatch"}`` for ``acumatica.post_journal``:
    ``accounts`` maps each ledger of the entry to ``[account, subaccount]``. Raises
    MappingError naming an unmapped ledger and ConfigurationError for missing settings."""
    check_settings(target)
    accounts = gl_accounts(session, target, [line.ledger for line in entry.lines])
    return {"entry": entry.to_dict(), "connection": target.name,
            "accounts": {name: gl.to_list() for name, gl in accounts.items()},
            "dispatch": {"task": "acumatica.post_journal", "queue": QUEUE}}


def employee_payload(session: Session, target: Connection, master: EmployeeMaster) -> dict:
    """``{"master", "connection", "department", "dispatch"}`` for ``acumatica.sync_employee``;
    ``department`` is the Acumatica DepartmentID for ``master.group`` (or ``None``)."""
    check_settings(target)
    return {"master": master.to_dict(), "connection": target.name,
            "department": department_id(master.group, department_overrides(session, target)),
            "dispatch": {"task": "acumatica.sync_employee", "queue": QUEUE}}
