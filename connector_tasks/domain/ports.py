"""Ports: what a flow needs from a source or a target, with no vendor named.

Connectors implement these; flows take them as arguments. All methods may raise the errors
of :mod:`connector_tasks.core.errors`.
"""
from __future__ import annotations

from typing import Iterable, Protocol

from connector_tasks.domain.model import Employee, JournalEntry, LedgerMaster, PayrollRun


class PayrollSource(Protocol):
    """Reads processed payroll runs."""

    def get_payroll(self, payroll_id: str) -> PayrollRun:
        """The run with every employee compensation (all pages read)."""


class EmployeeSource(Protocol):
    """Reads employees."""

    def list_employees(self) -> Iterable[Employee]:
        """Every employee of the connected company (terminated ones included)."""


class LedgerTarget(Protocol):
    """Posts journal entries to a book of accounts."""

    def find_journal(self, key: str) -> str | None:
        """The target's id of the entry posted under ``key``, or ``None``."""

    def ensure_ledgers(self, ledgers: Iterable[LedgerMaster], cost_centres: Iterable[tuple[str, str]]) -> list[str]:
        """Create the missing ledgers and (category, cost centre) pairs; return what was created."""

    def post_journal(self, entry: JournalEntry) -> str:
        """Post ``entry`` once; return the target's id. Raises RejectedError with the
        target's text when refused."""
