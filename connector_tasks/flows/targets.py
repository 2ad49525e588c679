"""Targets: how what a flow prepared reaches the target connection's system.

A flow knows only :class:`~connector_tasks.domain.model.JournalEntry` and the ledger masters it
uses; each target system supplies a module (its registry entry's ``target``) with

``journal_payload(session, target: Connection, entry: JournalEntry,
ledgers: list[LedgerMaster]) -> dict``

returning a JSON-safe payload that holds at least ``"entry"`` (``entry.to_dict()``) and
``"dispatch"`` (``{"task": <task name>, "queue": <queue>}``): the task that posts it, called as
``task(job_id, payload)``, which records its outcome (``jobs.results.record_outcome``; an agent
pushes it to its outbox and the cloud's collector records it, :mod:`connector_tasks.agents`). The
payload is stored on the job, so the sweeper and a replay hand the same thing over again.

A target that books settlements (the source's debit of the company's bank for a payroll,
:mod:`connector_tasks.flows.payroll_to_settlement`) also supplies

``settlement_payload(session, target: Connection, entry: JournalEntry, ledgers:
list[LedgerMaster], accrual: JournalEntry) -> dict``

shaped as ``journal_payload``'s (``accrual`` is the posted journal of the same payroll, e.g. to
split the settlement as the accrual was split), and may supply ``books_settlements(target:
Connection) -> bool`` (a connection that books accruals only says ``False``). A target without
``settlement_payload`` books no settlements: its settlement jobs end ``done`` with a note.

A target that keeps employees in step also supplies

``employee_payload(session, target: Connection, master: EmployeeMaster) -> dict``

with ``"master"`` (``master.to_dict()``) and ``"dispatch"``; its task creates or alters the
employee record (found by ``master.key``, never duplicated) and reports back the same way, with
``target_type`` naming the record (``cost_centre``, ``employee``) and ``detail["action"]`` one of
``created``, ``altered``, ``unchanged``.

A target whose masters the connector keeps (ledgers, cost centres) supplies

``masters_payload(session, target: Connection, ledgers: list[LedgerMaster],
cost_centres: list[tuple[str, str]]) -> dict``

with ``"dispatch"``; its task creates whatever is missing (reference data).

A target that can tell which ledgers its books hold supplies

``missing_ledgers(target: Connection, names: list[str], wait: float) -> tuple[list[str], str]``

(the names it lacks, and where it looked), used to refuse a mapping to a ledger that does not
exist.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from connector_tasks.connectors import registry
from connector_tasks.core.errors import ConfigurationError
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, LedgerMaster
from connector_tasks.store.models import Connection


def _target_module(target: Connection, what: str, function: str):
    spec = registry.get(target.system)
    if not spec.target:
        raise ConfigurationError(f"connection {target.name!r} is a {spec.title} connection, "
                                 f"which cannot receive {what}")
    module = spec.load("target")
    if not hasattr(module, function):
        raise ConfigurationError(f"connection {target.name!r} ({spec.title}) cannot receive {what}")
    return getattr(module, function)


def supports(target: Connection, function: str) -> bool:
    """True when ``target``'s system supplies ``function`` on its target side."""
    spec = registry.find(target.system)
    return bool(spec and spec.target and hasattr(spec.load("target"), function))


def journal_payload(session: Session, target: Connection, entry: JournalEntry,
                    ledgers: list[LedgerMaster]) -> dict:
    """The payload that posts ``entry`` to ``target`` (see the module docstring for its shape).

    Raises ConfigurationError when ``target``'s system is not a ledger target, and whatever the
    target's own ``journal_payload`` raises (e.g. MappingError for an unmapped GL account).
    """
    payload = _target_module(target, "journals", "journal_payload")(session, target, entry, ledgers)
    if "dispatch" not in payload or "entry" not in payload:
        raise ConfigurationError(f"{target.system} target built a payload without entry/dispatch")
    return payload


def books_settlements(target: Connection) -> bool:
    """True when ``target``'s system supplies ``settlement_payload`` and the connection books
    settlements (its target side's ``books_settlements(target)``, when it has one)."""
    if not supports(target, "settlement_payload"):
        return False
    check = getattr(registry.get(target.system).load("target"), "books_settlements", None)
    return bool(check(target)) if check is not None else True


def settlement_payload(session: Session, target: Connection, entry: JournalEntry, ledgers: list[LedgerMaster],
                       accrual: JournalEntry) -> dict:
    """The payload that posts settlement ``entry`` of the payroll whose journal ``accrual`` was
    posted (shape as :func:`journal_payload`'s). Raises ConfigurationError when ``target`` books
    no settlements (ask :func:`books_settlements` first), and what the target's own
    ``settlement_payload`` raises (e.g. MappingError for an unmapped bank account)."""
    payload = _target_module(target, "settlements", "settlement_payload")(session, target, entry, ledgers, accrual)
    if "dispatch" not in payload or "entry" not in payload:
        raise ConfigurationError(f"{target.system} target built a payload without entry/dispatch")
    return payload


def employee_payload(session: Session, target: Connection, master: EmployeeMaster) -> dict:
    """The payload that creates or alters ``master`` at ``target`` (shape in the module
    docstring). Raises ConfigurationError when the target keeps no employees."""
    payload = _target_module(target, "employees", "employee_payload")(session, target, master)
    if "dispatch" not in payload or "master" not in payload:
        raise ConfigurationError(f"{target.system} target built a payload without master/dispatch")
    return payload


def masters_payload(session: Session, target: Connection, ledgers: list[LedgerMaster],
                    cost_centres: list[tuple[str, str]]) -> dict:
    """The payload that makes ``target`` hold ``ledgers`` and the ``(category, centre)`` pairs
    (shape in the module docstring). Raises ConfigurationError when the target keeps none."""
    payload = _target_module(target, "ledger masters", "masters_payload")(session, target, ledgers, cost_centres)
    if "dispatch" not in payload:
        raise ConfigurationError(f"{target.system} target built a payload without dispatch")
    return payload


def missing_ledgers(target: Connection, names: list[str], wait: float) -> tuple[list[str], str]:
    """(the names among ``names`` that ``target``'s books lack, where they were looked for).
    Raises ConfigurationError when the target cannot tell, and whatever asking it raises (e.g.
    TransientApiError when its agent does not answer within ``wait`` seconds)."""
    return _target_module(target, "ledger checks", "missing_ledgers")(target, names, wait)
