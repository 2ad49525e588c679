"""Ports: what a flow needs from a source or a target, with no vendor named.

Connectors implement these; flows take them as arguments. All methods may raise the errors
of :mod:`connector_tasks.core.errors`. :class:`Role` names what a system can be in a flow; the
registry (``connectors/registry.py``) says which roles each system plays.
"""
from __future__ import annotations

import enum
from typing import Iterable, Protocol

from connector_tasks.domain.model import Employee, JournalEntry, LedgerMaster, PayrollRun


class Role(str, enum.Enum):
    """What a system can be in a flow. A flow names the source role it reads from and the
    target role it writes to; a connection feeds only targets whose system plays that role."""

    PAYROLL_SOURCE = "payroll_source"
    EMPLOYEE_SOURCE = "employee_source"
    PURCHASE_SOURCE = "purchase_source"
    RECEIVABLES_SOURCE = "receivables_source"
    LEDGER_TARGET = "ledger_target"
    MASTER_TARGET = "master_target"
    INVENTORY_TARGET = "inventory_target"
    MESSAGE_CHANNEL = "message_channel"


class PayrollSource(Protocol):
    """Reads payroll runs."""

    def get_payroll(self, payroll_id: str) -> PayrollRun:
        """The processed run with every employee compensation (all pages read). Raises
        MappingError when the run is not processed."""

    def current_payroll(self, payroll_id: str) -> PayrollRun | None:
        """The run as the source holds it now: ``None`` when it is not (or no longer)
        processed, else the run, whose ``reversed`` says whether it was reversed since."""


class EmployeeSource(Protocol):
    """Reads employees."""

    def list_employees(self) -> Iterable[Employee]:
        """Every employee of the connected company (terminated ones included)."""

    def get_employee(self, employee_id: str) -> Employee:
        """One employee as the source knows them now."""


class ReferenceSource(Protocol):
    """Reads the reference data payroll journals depend on."""

    def earning_types(self) -> list[str]:
        """Names of the active earning types (each may become a wages ledger)."""

    def pay_schedules(self) -> list[dict]:
        """The pay schedules: ``[{"uuid", "name", "custom_name", "frequency",
        "anchor_pay_date", "active"}]``."""


class LedgerTarget(Protocol):
    """Posts journal entries to a book of accounts."""

    def find_journal(self, key: str) -> str | None:
        """The target's id of the entry posted under ``key``, or ``None``."""

    def ensure_ledgers(self, ledgers: Iterable[LedgerMaster], cost_centres: Iterable[tuple[str, str]]) -> list[str]:
        """Create the missing ledgers and (category, cost centre) pairs; return what was created."""

    def post_journal(self, entry: JournalEntry) -> str:
        """Post ``entry`` once; return the target's id. Raises RejectedError with the
        target's text when refused."""
