"""IFS Cloud as a ledger and master target (see :mod:`connector_tasks.flows.targets`): what a
flow hands over, built in the flow's prepare step and posted by the cloud workers' ``ifs_cloud``
queue (:mod:`.tasks`).

A journal (an accrual, its reversal, or a settlement) is split into one balanced journal per
IFS company here (:func:`~.companies.split_payroll`), with the ledgers resolved to IFS accounts
and the cost-centre mapping, so the stored payload says exactly which vouchers the task posts:
an unmapped ledger or an unbalanced company stops the job here, before IFS is asked anything.
IFS's chart belongs to the customer: this side creates no ledgers (no ``masters_payload``).
"""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from connector_tasks.connectors.ifs_cloud import service
from connector_tasks.connectors.ifs_cloud.client import SYSTEM
from connector_tasks.connectors.ifs_cloud.companies import split_payroll
from connector_tasks.connectors.ifs_cloud.vouchers import voucher_route
from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, LedgerMaster
from connector_tasks.store.models import Connection

#: the cloud queue of IFS Cloud's tasks (its registry entry's ``queues``)
QUEUE = "ifs_cloud"
POST_TASK = "ifs_cloud.post_vouchers"
EMPLOYEE_TASK = "ifs_cloud.sync_employee"


def _vouchers_payload(session: Session, target: Connection, entry: JournalEntry,
                      weights_from: JournalEntry | None) -> dict:
    service.check_settings(target)
    companies = split_payroll(entry, service.company_rules(target), weights_from=weights_from)
    accounts = service.accounts_for(session, target, [line.ledger for line in entry.lines])
    return {"entry": entry.to_dict(), "connection": target.name,
            "companies": {company: part.to_dict() for company, part in companies.items()},
            "accounts": {name: {"account": a.account, "cost_centre": a.cost_centre, "code_parts": dict(a.code_parts)}
                         for name, a in accounts.items()},
            "cost_centres": service.cost_centres(session, target).to_dict(),
            "dispatch": {"task": POST_TASK, "queue": QUEUE}}


def journal_payload(session: Session, target: Connection, entry: JournalEntry,
                    ledgers: list[LedgerMaster]) -> dict:
    """``{"entry", "connection", "companies", "accounts", "cost_centres", "dispatch"}`` for
    ``ifs_cloud.post_vouchers``: ``companies`` maps each IFS company code to its balanced part
    of ``entry`` (:func:`~.companies.split_payroll`, as ``JournalEntry.to_dict``), ``accounts``
    each ledger to ``{"account", "cost_centre", "code_parts"}``, ``cost_centres`` the mapping's
    :meth:`~.mapping.CostCentres.to_dict`. ``ledgers`` is not used (IFS's chart is the
    customer's). Raises MappingError (an unmapped ledger, a company that cannot balance) and
    ConfigurationError (missing settings)."""
    return _vouchers_payload(session, target, entry, None)


def settlement_payload(session: Session, target: Connection, entry: JournalEntry, ledgers: list[LedgerMaster],
                       accrual: JournalEntry) -> dict:
    """As :func:`journal_payload` for settlement ``entry``, split over the companies in the
    shares of ``accrual`` (the posted journal it settles), so each company settles its part."""
    return _vouchers_payload(session, target, entry, accrual)


def books_settlements(target: Connection) -> bool:
    """The connection's ``settlement`` setting (false: accrual only)."""
    return bool(service.check_settings(target).settlement)


def employee_payload(session: Session, target: Connection, master: EmployeeMaster) -> dict:
    """``{"master", "connection", "mode", "company", "dispatch"}`` for ``ifs_cloud.sync_employee``:
    ``mode`` the setting ``employee_sync`` (``customer`` or ``project_resource``), ``company``
    the employee's IFS company (:meth:`~.companies.CompanyRules.company_of_master`; project
    resources belong to one company). Raises ConfigurationError for missing settings."""
    settings = service.check_settings(target)
    return {"master": master.to_dict(), "connection": target.name, "mode": settings.employee_sync,
            "company": service.company_rules(target).company_of_master(master),
            "dispatch": {"task": EMPLOYEE_TASK, "queue": QUEUE}}


def missing_ledgers(target: Connection, names: list[str], wait: float) -> tuple[list[str], str]:
    """(the ledger names among ``names`` that IFS cannot take, where they were looked for): a
    name that maps to no IFS account (add an ``ifs_account`` mapping on the connection first),
    or whose account does not exist, or is not valid today, in one of the connection's
    companies. ``wait`` is not used (IFS answers directly). Raises the client's errors."""
    from connector_tasks import runtime
    from connector_tasks.connectors.ifs_cloud.mapping import resolve_accounts
    from connector_tasks.store.db import session_scope

    settings = service.check_settings(target)
    with session_scope(runtime.settings().database_url) as s:
        overrides = service.account_overrides(s, s.get(Connection, target.id))
    missing: list[str] = []
    accounts = {}
    for name in names:
        try:
            accounts[name] = resolve_accounts([name], overrides)[name]
        except MappingError:
            missing.append(name)
    client = service.client_for(target)
    try:
        route = voucher_route(client, settings.voucher_route)
        for company in settings.companies():
            problems, _ = route.master_data_problems(company, dt.date.today(),
                                                     [a.account for a in accounts.values()], {})
            missing.extend(n for n, a in accounts.items() if n not in missing
                           and any(f"account {a.account} " in p or "has no company" in p for p in problems))
    finally:
        client.session.close()
    where = f"IFS Cloud connection {target.name} (companies {', '.join(settings.companies())})"
    return missing, where


__all__ = ["journal_payload", "settlement_payload", "books_settlements", "employee_payload", "missing_ledgers",
           "QUEUE", "SYSTEM"]
