"""Gusto JSON → domain objects (:class:`PayrollRun`, :class:`Employee`), and the ports.

Implements the payroll and employee shapes of Gusto's OpenAPI document (``Payroll-Show``,
``Payroll-Totals-Type``, ``Employee``; https://docs.gusto.com/embedded-payroll/reference and
the spec at https://github.com/Gusto/gusto-python-client, ``.speakeasy/logs/changes/new.openapi.yaml``). Amounts go through :func:`connector_tasks.domain.model.money` (strings and ``Decimal``
accepted, float refused); dates through ``date.fromisoformat``. Bad data raises
:class:`MappingError`.
"""
from __future__ import annotations

import datetime as dt

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import (
    ZERO, Employee, EmployeeCompensation, PayrollRun, PayrollTotals, money,
)

# PayrollTotals field ← Gusto totals key (OAS Payroll-Totals-Type). "benefits" is "the
# total amount of company contributed benefits" → employer_benefits.
TOTALS_MAP = {
    "gross_pay": "gross_pay",
    "net_pay": "net_pay",
    "employee_taxes": "employee_taxes",
    "employer_taxes": "employer_taxes",
    "employee_benefits_deductions": "employee_benefits_deductions",
    "other_deductions": "other_deductions",
    "employer_benefits": "benefits",
    "reimbursements": "reimbursements",
    "imputed_pay": "imputed_pay",
    "check_amount": "check_amount",
    "company_debit": "company_debit",
    "net_pay_debit": "net_pay_debit",
    "tax_debit": "tax_debit",
    "reimbursement_debit": "reimbursement_debit",
    "child_support_debit": "child_support_debit",
}
REQUIRED_TOTALS = ("gross_pay", "net_pay", "employee_taxes", "employer_taxes")
#: fixed_compensations names that are not earnings (casefolded).
NOT_EARNINGS = frozenset({"reimbursement", "reimbursements"})


def _date(value, what: str) -> dt.date:
    """``YYYY-MM-DD`` → ``date``; raises :class:`MappingError` when absent or malformed."""
    try:
        return dt.date.fromisoformat(value)
    except (TypeError, ValueError) as exc:
        raise MappingError(f"Gusto {what} is not a date: {value!r}", system="gusto") from exc


def payroll_from_gusto(data: dict) -> PayrollRun:
    """Map a Gusto payroll (``GET …/payrolls/{id}`` body, all compensation pages merged)
    to a :class:`PayrollRun`.

    The id is ``payroll_uuid`` or ``uuid``; ``totals`` map onto :class:`PayrollTotals`
    (``benefits`` → ``employer_benefits``); each compensation's ``gross_pay``/``net_pay``
    (string or ``Decimal``) onto :class:`EmployeeCompensation`. Raises :class:`MappingError`
    when the payroll is not processed, lacks ``totals`` (or one of gross/net pay and the two
    tax totals), or carries a bad date or amount; ``TypeError`` if an amount is a float.
    ``debit_date`` is the (UTC) date of ``payroll_status_meta.expected_debit_time`` (OAS
    ``Payroll-Status-Meta-Type``: when Gusto debits the company), ``None`` without it.
    """
    pid = data.get("payroll_uuid") or data.get("uuid")
    if not pid:
        raise MappingError("Gusto payroll has neither payroll_uuid nor uuid", system="gusto")
    if not data.get("processed"):
        raise MappingError(f"Gusto payroll {pid} is not processed", system="gusto")
    totals = data.get("totals")
    if not isinstance(totals, dict) or not totals:
        raise MappingError(f"Gusto payroll {pid} has no totals (ask with include=totals)",
                           system="gusto")
    missing = [k for k in REQUIRED_TOTALS if totals.get(k) in (None, "")]
    if missing:
        raise MappingError(f"Gusto payroll {pid} totals lack {', '.join(missing)}", system="gusto")
    company = data.get("company_uuid")
    if not company:
        raise MappingError(f"Gusto payroll {pid} has no company_uuid", system="gusto")
    period = data.get("pay_period") or {}
    comps = []
    for i, c in enumerate(data.get("employee_compensations") or []):
        eid = c.get("employee_uuid")
        if not eid:
            raise MappingError(f"Gusto payroll {pid} compensation #{i} has no employee_uuid",
                               system="gusto")
        earnings = []
        for f in c.get("fixed_compensations") or []:
            name = (f.get("name") or "").strip()
            amount = money(f.get("amount"), what=f"{pid} {eid} fixed_compensations {name}")
            # ASSUMPTION: "Reimbursement" rides in fixed_compensations but is not pay (it is the
            # totals' reimbursements, outside gross_pay); every other name is an earning type.
            if name and amount != ZERO and name.casefold() not in NOT_EARNINGS:
                earnings.append((name, amount))
        comps.append(EmployeeCompensation(
            employee_id=eid,
            gross_pay=money(c.get("gross_pay"), what=f"{pid} {eid} gross_pay"),
            net_pay=money(c.get("net_pay"), what=f"{pid} {eid} net_pay"),
            excluded=bool(c.get("excluded", False)),
            earnings=tuple(earnings)))
    return PayrollRun(
        source_id=pid,
        company_id=company,
        check_date=_date(data.get("check_date"), f"payroll {pid} check_date"),
        period_start=_date(period.get("start_date"), f"payroll {pid} pay_period.start_date"),
        period_end=_date(period.get("end_date"), f"payroll {pid} pay_period.end_date"),
        processed=True,
        totals=PayrollTotals(**{field: money(totals.get(key), what=f"{pid} totals.{key}")
                                for field, key in TOTALS_MAP.items()}),
        compensations=tuple(comps),
        off_cycle=bool(data.get("off_cycle", False)),
        version=data.get("version"),
        # OAS Payroll ``reversal_payroll_uuids``: "Array of reversal payroll UUIDs, if applicable"
        reversed=bool(data.get("reversal_payroll_uuids")),
        debit_date=_debit_date(data, pid),
    )


def _debit_date(data: dict, pid: str) -> dt.date | None:
    """The UTC date of ``payroll_status_meta.expected_debit_time`` (ISO 8601, e.g.
    ``2021-02-18T22:00:00Z``), or ``None`` when Gusto gave none. Raises MappingError when it is
    not a time."""
    stamp = (data.get("payroll_status_meta") or {}).get("expected_debit_time")
    if not stamp:
        return None
    try:
        when = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
    except ValueError as exc:
        raise MappingError(f"Gusto payroll {pid} expected_debit_time is not a time: {stamp!r}", system="gusto") from exc
    return (when.astimezone(dt.timezone.utc) if when.tzinfo else when).date()


def _primary_job(data: dict) -> dict:
    jobs = [j for j in (data.get("jobs") or []) if isinstance(j, dict)]
    return next((j for j in jobs if j.get("primary")), jobs[0] if jobs else {})


def employee_from_gusto(data: dict) -> Employee:
    """Map a Gusto employee (OAS ``Employee``) to :class:`Employee`.

    ``title`` and ``hire_date`` come from the primary job (else the first job; ``hired_at`` /
    ``title`` at top level as fallbacks); an empty title is ``None``. Raises
    :class:`MappingError` without ``uuid`` or with a malformed hire date.
    """
    uid = data.get("uuid")
    if not uid:
        raise MappingError("Gusto employee has no uuid", system="gusto")
    job = _primary_job(data)
    hire = job.get("hire_date") or data.get("hired_at")
    # the active termination's effective date (OAS ``Termination``)
    active = [t for t in (data.get("terminations") or []) if isinstance(t, dict) and t.get("active")]
    ends = sorted(t.get("effective_date") for t in active if t.get("effective_date"))
    return Employee(
        source_id=uid,
        first_name=data.get("first_name") or "",
        last_name=data.get("last_name") or "",
        code=data.get("employee_code") or None,
        email=data.get("email") or data.get("work_email") or None,
        department=data.get("department") or None,
        title=(job.get("title") or data.get("title") or None),
        hire_date=_date(hire, f"employee {uid} hire_date") if hire else None,
        terminated=bool(data.get("terminated", False)),
        termination_date=_date(ends[-1], f"employee {uid} termination effective_date") if ends else None,
    )


class GustoPayrollSource:
    """The ``PayrollSource`` and ``EmployeeSource`` ports (``connector_tasks/domain/ports.py``)
    for one connected Gusto company, over a :class:`~.client.GustoClient`.

    Raises the client's errors and :class:`MappingError`.
    """

    def __init__(self, client, company_id: str):
        self.client = client
        self.company_id = company_id

    def get_payroll(self, payroll_id: str) -> PayrollRun:
        """The processed run with every employee compensation (all pages read). Raises
        MappingError when Gusto holds it as not processed."""
        return payroll_from_gusto(self.client.get_payroll(self.company_id, payroll_id))

    def current_payroll(self, payroll_id: str) -> PayrollRun | None:
        """The run as Gusto holds it now: ``None`` when it is not processed (a cancelled payroll
        goes back to unprocessed: OAS ``Unprocessed-Payroll``, "A payroll that has been
        transitioned back to unprocessed state after cancellation"), else the run with
        ``reversed`` set when Gusto lists reversal payrolls for it."""
        data = self.client.get_payroll(self.company_id, payroll_id)
        if not data.get("processed"):
            return None
        return payroll_from_gusto(data)

    def list_employees(self) -> list[Employee]:
        """Every employee of the company, terminated ones included."""
        return [employee_from_gusto(e) for e in self.client.list_employees(self.company_id)]

    def get_employee(self, employee_id: str) -> Employee:
        """One employee as Gusto knows them now (``GET /v1/employees/{id}``)."""
        return employee_from_gusto(self.client.get_employee(employee_id))

    def earning_types(self) -> list[str]:
        """Names of the company's active earning types, default and custom (OAS ``Earning-Type-List``)."""
        body = self.client.list_earning_types(self.company_id) or {}
        return [e["name"] for group in ("default", "custom") for e in body.get(group) or []
                if e.get("name") and e.get("active", True)]
