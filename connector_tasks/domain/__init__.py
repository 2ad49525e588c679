"""Frozen dataclasses of the business, free of I/O and of vendor names."""
from connector_tasks.domain.model import (  # noqa: F401
    CENT, CostAllocation, Employee, EmployeeCompensation, JournalEntry, JournalLine,
    LedgerMaster, PayrollRun, PayrollTotals, money,
)
