"""Flow: a processed payroll run → one balanced journal entry.

Lines come from the payroll's totals (never from summing employees):

====================  ======  =========================================================
component             side    amount
====================  ======  =========================================================
gross_wages           Dr      ``gross_pay`` (split over employee cost centres)
employer_taxes        Dr      ``employer_taxes``
employer_benefits     Dr      ``employer_benefits`` (company contributions)
reimbursements        Dr      ``reimbursements``
net_pay               Cr      ``net_pay``
payroll_taxes         Cr      ``employee_taxes + employer_taxes``
benefit_deductions    Cr      ``employee_benefits_deductions − other_deductions``
employer_benefits_p.  Cr      ``employer_benefits``
other_deductions      Cr      ``other_deductions``
====================  ======  =========================================================

The entry balances exactly when the totals satisfy the payroll identity

    gross_pay + reimbursements = net_pay + employee_taxes + employee_benefits_deductions

which the source's published "Processed" example satisfies to the cent (130,635.89 =
81,752.94 + 35,546.72 + 13,336.23). In that example ``other_deductions`` (240.00) is *part
of* ``employee_benefits_deductions``: adding it separately would miss by exactly 240.00, so the
flow splits the deductions rather than adding them (ASSUMPTION drawn from the published
figures; the vendor documents no formula). A second, funding identity is checked too:
``company_debit = net_pay_debit + tax_debit + reimbursement_debit + child_support_debit``.
When either fails the flow raises :class:`MappingError` naming the difference; it never plugs.

Gross wages are split by earning type: each earning paid as a fixed amount (Bonus, Commission,
custom types) gets a line on its own ledger; the rest stays on the gross wages ledger.
Cost centres: each employee's pay goes to their cost centre (the employee master, see
:mod:`connector_tasks.flows.employee_to_master`); when those do not add up to the totals'
``gross_pay`` the remainder goes to the ``Unallocated`` cost centre and the entry carries a
warning. Excluded employees are left out. Each allocation also carries the employee's
dimensions (:func:`employee_dimensions`: id, code, department, job), so a target can book a
share by them (a company or a cost-centre code per department) without reading the source.
"""
from __future__ import annotations

from collections import OrderedDict
from decimal import Decimal
from typing import Iterable

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import (
    ZERO, CostAllocation, Employee, JournalEntry, JournalLine, PayrollRun,
)
from connector_tasks.flows.mapping.payroll import (
    COMPONENTS, CREDIT, UNALLOCATED_COST_CENTRE, PayrollMapping,
)

FLOW = "payroll_to_journal"


def journal_key(source: str, payroll_id: str, version: str | None = None) -> str:
    """Deterministic idempotency key and target reference: ``<source>-payroll-<id>[-<version>]``."""
    key = f"{source}-payroll-{payroll_id}"
    return f"{key}-{version}" if version else key


def check_identities(run: PayrollRun) -> None:
    """Raise :class:`MappingError` when the run's totals do not reconcile (see module doc)."""
    t = run.totals
    wages_side = t.gross_pay + t.reimbursements
    paid_side = t.net_pay + t.employee_taxes + t.employee_benefits_deductions
    if wages_side != paid_side:
        raise MappingError(
            f"payroll {run.source_id} totals do not reconcile: gross pay {t.gross_pay} + "
            f"reimbursements {t.reimbursements} = {wages_side}, but net pay {t.net_pay} + employee "
            f"taxes {t.employee_taxes} + employee deductions {t.employee_benefits_deductions} = "
            f"{paid_side} (difference {wages_side - paid_side})")
    if t.other_deductions > t.employee_benefits_deductions:
        raise MappingError(
            f"payroll {run.source_id}: other deductions {t.other_deductions} exceed total employee "
            f"deductions {t.employee_benefits_deductions} (difference "
            f"{t.other_deductions - t.employee_benefits_deductions})")
    funded = t.net_pay_debit + t.tax_debit + t.reimbursement_debit + t.child_support_debit
    if t.company_debit != funded:
        raise MappingError(
            f"payroll {run.source_id} debits do not reconcile: company debit {t.company_debit} but "
            f"net pay debit + tax debit + reimbursement debit + child support debit = {funded} "
            f"(difference {t.company_debit - funded})")


def component_amounts(run: PayrollRun) -> "OrderedDict[str, Decimal]":
    """Amount per pay component (all ≥ 0), in journal line order."""
    t = run.totals
    values = {
        "gross_wages": t.gross_pay,
        "employer_taxes": t.employer_taxes,
        "employer_benefits": t.employer_benefits,
        "reimbursements": t.reimbursements,
        "net_pay": t.net_pay,
        "payroll_taxes": t.employee_taxes + t.employer_taxes,
        "benefit_deductions": t.employee_benefits_deductions - t.other_deductions,
        "employer_benefits_payable": t.employer_benefits,
        "other_deductions": t.other_deductions,
    }
    for key, amount in values.items():
        if amount < ZERO:
            raise MappingError(f"payroll {run.source_id}: pay component {key} is negative ({amount})")
    return OrderedDict((c.key, values[c.key]) for c in COMPONENTS)


def cost_centre_name(employee: Employee | None, employee_id: str) -> str:
    """The cost-centre name of an employee: ``"First Last (code)"``; the id when unknown."""
    if employee is None:
        return employee_id
    short = employee.code or employee_id[-12:]
    return f"{employee.display_name} ({short})"


def employee_dimensions(employee: Employee | None, employee_id: str) -> tuple[tuple[str, str], ...]:
    """The dimensions of an employee's cost allocations (sorted ``(name, value)`` pairs, see
    :class:`~connector_tasks.domain.model.CostAllocation`): ``employee`` (the id), and when the
    source knows them ``code``, ``department`` and ``job`` (the primary job's title)."""
    values = {"employee": employee_id}
    if employee is not None:
        for name, value in (("code", employee.code), ("department", employee.department), ("job", employee.title)):
            if value:
                values[name] = value
    return tuple(sorted(values.items()))


def _allocations(per_centre: "OrderedDict[str, Decimal]", category: str,
                 dimensions: dict[str, tuple[tuple[str, str], ...]]) -> tuple[CostAllocation, ...]:
    return tuple(CostAllocation(category, name, amount, dimensions.get(name, ()))
                 for name, amount in per_centre.items() if amount != ZERO)


def wage_lines(run: PayrollRun, mapping: PayrollMapping, employees: dict[str, Employee]
               ) -> tuple[list[JournalLine], list[str]]:
    """The gross wages debit, split by earning type and over employee cost centres; plus warnings.

    Each earning type paid as a fixed amount (Bonus, Commission, ...) gets its own line on
    :meth:`PayrollMapping.earning_ledger`, allocated to the employees who earned it; the rest of
    ``gross_pay`` stays on the gross wages ledger, allocated by each employee's remaining gross
    pay. A shortfall against the totals goes to ``Unallocated`` with a warning. Raises
    MappingError when employees add up to more than the totals, or an employee's earnings
    exceed their gross pay. All lines carry component ``gross_wages``.
    """
    category = mapping.cost_category
    base: "OrderedDict[str, Decimal]" = OrderedDict()
    by_type: "OrderedDict[str, OrderedDict[str, Decimal]]" = OrderedDict()
    dims: dict[str, tuple[tuple[str, str], ...]] = {}
    for comp in run.compensations:
        if comp.excluded:
            continue
        name = cost_centre_name(employees.get(comp.employee_id), comp.employee_id)
        dims.setdefault(name, employee_dimensions(employees.get(comp.employee_id), comp.employee_id))
        earned = sum((amount for _, amount in comp.earnings), ZERO)
        if earned > comp.gross_pay:
            raise MappingError(f"payroll {run.source_id}: employee {comp.employee_id} earnings add up to "
                               f"{earned}, more than their gross pay {comp.gross_pay}")
        for et, amount in comp.earnings:
            centres = by_type.setdefault(et, OrderedDict())
            centres[name] = centres.get(name, ZERO) + amount
        if comp.gross_pay - earned != ZERO:
            base[name] = base.get(name, ZERO) + comp.gross_pay - earned
    earnings_total = sum((a for centres in by_type.values() for a in centres.values()), ZERO)
    allocated = sum(base.values(), ZERO) + earnings_total
    remainder = run.totals.gross_pay - allocated
    warnings: list[str] = []
    if remainder < ZERO:
        raise MappingError(f"payroll {run.source_id}: employee gross pay adds up to {allocated}, more "
                           f"than the total gross pay {run.totals.gross_pay} (difference {-remainder})")
    if remainder > ZERO:
        base[UNALLOCATED_COST_CENTRE] = remainder
        warnings.append(f"employee compensations add up to {allocated} of gross pay "
                        f"{run.totals.gross_pay}; {remainder} booked to cost centre "
                        f"'{UNALLOCATED_COST_CENTRE}'")
    lines = []
    base_amount = run.totals.gross_pay - earnings_total
    if base_amount != ZERO:
        lines.append(JournalLine(ledger=mapping.ledgers["gross_wages"], component="gross_wages",
                                 debit=base_amount, allocations=_allocations(base, category, dims)))
    for et in sorted(by_type):
        amount = sum(by_type[et].values(), ZERO)
        lines.append(JournalLine(ledger=mapping.earning_ledger(et), component="gross_wages",
                                 debit=amount, allocations=_allocations(by_type[et], category, dims)))
    return lines, warnings


def earning_types_of(run: PayrollRun) -> list[str]:
    """The earning types a run pays as fixed amounts (sorted, each once)."""
    return sorted({et for comp in run.compensations if not comp.excluded for et, _ in comp.earnings})


def build_journal(run: PayrollRun, mapping: PayrollMapping, employees: Iterable[Employee] = (),
                  *, source: str, source_label: str | None = None, key: str | None = None) -> JournalEntry:
    """The balanced journal entry of a processed payroll ``run``.

    ``source`` is the source system's short name (it prefixes the key), ``source_label`` its
    name in the narration; ``key`` replaces :func:`journal_key` (a later revision of a payroll
    whose earlier journal was reversed posts under a key of its own). ``employees`` name the
    cost centres (unknown ids are used as names). Raises
    :class:`MappingError` when the run is not processed, its totals do not reconcile, or the
    resulting entry does not balance to the cent.
    """
    if not run.processed:
        raise MappingError(f"payroll {run.source_id} is not processed; only processed payrolls are posted")
    check_identities(run)
    amounts = component_amounts(run)
    by_id = {e.source_id: e for e in employees}
    wages, warnings = wage_lines(run, mapping, by_id)
    lines: list[JournalLine] = []
    for comp in COMPONENTS:
        if comp.key == "gross_wages":
            lines.extend(wages)
            continue
        amount = amounts[comp.key]
        if amount == ZERO:
            continue
        ledger = mapping.ledgers[comp.key]
        lines.append(JournalLine(
            ledger=ledger, component=comp.key,
            debit=amount if comp.side != CREDIT else ZERO,
            credit=amount if comp.side == CREDIT else ZERO,
        ))
    p = run
    narration = (f"Payroll for pay period {p.period_start.isoformat()} to {p.period_end.isoformat()}, "
                 f"check date {p.check_date.isoformat()}; {source_label or source.title()} payroll {p.source_id}")
    entry = JournalEntry(key=key or journal_key(source, run.source_id), date=run.check_date,
                         narration=narration, lines=tuple(lines), source_ref=run.source_id,
                         warnings=tuple(warnings))
    entry.check_balanced()
    return entry
