"""Flow: an employee, as the source knows them now → the headcount master in the books.

Each employee is one master found by a stable key (the source's employee id), never by name:
a hire creates it, a change of name, department (its group) or title (its designation) alters
it, a termination sets its deactivation date (books never delete masters), a rehire clears it.
The master's name is the cost centre payroll journals allocate wages to, so the headcount
masters and the payroll allocations are the same objects.
"""
from __future__ import annotations

from connector_tasks.domain.model import Employee, EmployeeMaster
from connector_tasks.flows.mapping.payroll import DEFAULT_COST_CATEGORY
from connector_tasks.flows.payroll_to_journal import cost_centre_name

FLOW = "employee_to_master"


def employee_key(source: str, employee_id: str) -> str:
    """Idempotency key of an employee's master job: ``<source>-employee-<id>``."""
    return f"{source}-employee-{employee_id}"


def build_master(employee: Employee, category: str | None = None) -> EmployeeMaster:
    """The master of ``employee`` under cost category ``category`` (default ``Employees``).

    ``group`` is the department (``None`` without one), ``designation`` the primary job's
    title, ``joining_date`` the hire date and ``deactivation_date`` the active termination's
    effective date (``None`` while employed, so a rehire re-activates the master).
    """
    return EmployeeMaster(
        key=employee.source_id,
        name=cost_centre_name(employee, employee.source_id),
        category=category or DEFAULT_COST_CATEGORY,
        group=employee.department or None,
        designation=employee.title or None,
        joining_date=employee.hire_date,
        deactivation_date=employee.termination_date,
        email=employee.email,
        code=employee.code or None,
    )
