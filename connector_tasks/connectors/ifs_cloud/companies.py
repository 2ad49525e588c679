"""Which IFS company a share of a payroll belongs to, and a payroll journal split into one
balanced journal per company.

IFS keeps each legal entity (a location, a subsidiary) as its own company, with its own chart,
periods and voucher series (``Company`` is a key of every ACCRUL entity: Account, CodeB,
AccountingPeriod, Voucher; public IFS Cloud 21R1 model files, prashweenet/demoproj2
``accrul/model/accrul/``), so a payroll that pays people of several companies becomes one
voucher per company. :class:`CompanyRules` says whose company a share is, from the dimensions
the payroll flow puts on each employee's cost allocation (employee id and code, department,
job); :func:`split_payroll` splits the journal.

The split rule (:func:`split_payroll`): the payroll's totals are company-wide, but only gross
wages are allocated per employee. Every other line (employer taxes, benefits, net pay, tax and
deduction liabilities) is apportioned over the same employee shares, in proportion to each
share's gross wages (largest-remainder rounding to the cent, so each line's parts add up to
it exactly). Each company then holds its employees' wages and its pro-rata part of every other
line; rounding can leave a company a few cents out of balance (the differences across
companies sum to zero), and one line per company absorbs its difference — net pay in an
accrual or its reversal, the bank in a settlement — so every company's voucher balances to the
cent while every line still totals the source's figure. ASSUMPTION: pro rata to gross wages;
a payroll source's per-employee taxes and deductions need not add up to its totals (the
source's published example has three compensations of 8,373.75 under a gross pay of
130,635.89), so they cannot carry the split.
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from typing import Iterable, Mapping

from connector_tasks.connectors.ifs_cloud.client import SYSTEM
from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import CENT, ZERO, CostAllocation, EmployeeMaster, JournalEntry, JournalLine

#: Lines that absorb a company's rounding difference, first found first (then the company's
#: largest line).
BALANCING_COMPONENTS = ("company_debit", "net_pay")


@dataclass(frozen=True)
class CompanyRules:
    """Share → IFS company code: ``by_employee`` (source employee id, employee code or cost
    centre name → company), ``by_job`` (job title), ``by_department``, tried in that order, then
    ``default``."""

    default: str
    by_employee: Mapping[str, str] = field(default_factory=dict)
    by_job: Mapping[str, str] = field(default_factory=dict)
    by_department: Mapping[str, str] = field(default_factory=dict)

    def _company(self, employee_keys: Iterable[str | None], job: str | None, department: str | None) -> str:
        for key in employee_keys:
            if key and key in self.by_employee:
                return self.by_employee[key]
        if job and job in self.by_job:
            return self.by_job[job]
        if department and department in self.by_department:
            return self.by_department[department]
        return self.default

    def company_of(self, allocation: CostAllocation) -> str:
        """The company of ``allocation`` (by its ``employee``/``code`` dimensions or its cost
        centre name, its ``job``, its ``department``; else the default)."""
        return self._company((allocation.dimension("employee"), allocation.dimension("code"), allocation.cost_centre),
                             allocation.dimension("job"), allocation.dimension("department"))

    def company_of_master(self, master: EmployeeMaster) -> str:
        """The company of an employee master (its key, code or name; designation; group)."""
        return self._company((master.key, master.code, master.name), master.designation, master.group)

    @property
    def companies(self) -> list[str]:
        """Every company the rules name, the default first."""
        named = {*self.by_employee.values(), *self.by_job.values(), *self.by_department.values()} - {self.default}
        return [self.default, *sorted(named)]


def apportion(amount: Decimal, weights: Mapping[object, Decimal]) -> "OrderedDict[object, Decimal]":
    """``amount`` (``Decimal``, cents) split over ``weights`` (positive ``Decimal``s) in
    proportion, each part in cents, the parts adding up to ``amount`` exactly: each key gets
    its share rounded down, and the cents left go one each to the largest remainders (earlier
    keys first on a tie). Keys with a zero part are kept. Raises ValueError without a positive
    weight."""
    total = sum(weights.values(), ZERO)
    if total <= ZERO:
        raise ValueError("apportion needs a positive weight")
    exact = [(key, amount * w / total) for key, w in weights.items()]
    parts = OrderedDict((key, share.quantize(CENT, rounding=ROUND_DOWN)) for key, share in exact)
    left = int((amount - sum(parts.values(), ZERO)) / CENT)
    order = sorted(range(len(exact)), key=lambda i: -(exact[i][1] - parts[exact[i][0]]))
    for i in order[:left]:
        parts[exact[i][0]] += CENT
    return parts


def _weights(entry: JournalEntry) -> "OrderedDict[tuple, Decimal]":
    """Each allocated share of ``entry`` (its allocations, merged by cost category, centre and
    dimensions) → its amount."""
    weights: "OrderedDict[tuple, Decimal]" = OrderedDict()
    for line in entry.lines:
        for a in line.allocations:
            key = (a.cost_category, a.cost_centre, a.dimensions)
            weights[key] = weights.get(key, ZERO) + a.amount
    return OrderedDict((k, v) for k, v in weights.items() if v > ZERO)


def _balance(company: str, lines: list[JournalLine], key: str) -> list[JournalLine]:
    """``lines`` with the balancing line's amount (and its largest allocation) moved by the
    company's difference, so debits equal credits. Raises MappingError when that would make
    it zero or negative."""
    diff = sum((l.debit for l in lines), ZERO) - sum((l.credit for l in lines), ZERO)
    if diff == ZERO:
        return lines
    pick = next((i for comp in BALANCING_COMPONENTS for i, l in enumerate(lines) if l.component == comp),
                max(range(len(lines)), key=lambda i: lines[i].amount))
    line = lines[pick]
    change = diff if not line.is_debit else -diff
    amount = line.amount + change
    if amount <= ZERO:
        raise MappingError(f"journal {key}: company {company}'s share of {line.component} ({line.amount}) cannot "
                           f"absorb its rounding difference {diff}", system=SYSTEM)
    allocs = list(line.allocations)
    if allocs:
        big = max(range(len(allocs)), key=lambda i: allocs[i].amount)
        a = allocs[big]
        allocs[big] = CostAllocation(a.cost_category, a.cost_centre, a.amount + change, a.dimensions)
    fixed = JournalLine(line.ledger, line.component, debit=amount if line.is_debit else ZERO,
                        credit=ZERO if line.is_debit else amount, allocations=tuple(allocs))
    return lines[:pick] + [fixed] + lines[pick + 1:]


def split_payroll(entry: JournalEntry, rules: CompanyRules, *,
                  weights_from: JournalEntry | None = None) -> "OrderedDict[str, JournalEntry]":
    """``entry`` as one balanced journal per IFS company (the rule of the module docstring),
    companies in :attr:`CompanyRules.companies` order, each keeping ``entry``'s key, date,
    narration, source_ref and warnings (a voucher's identity in IFS is (company, key)).

    The shares are ``weights_from``'s allocations when given (a settlement is split as the
    accrual it settles was), else ``entry``'s own. Allocated lines go by their allocations;
    unallocated lines are apportioned over the shares (:func:`apportion`), each part carrying
    the share's cost centre and dimensions; with no share at all, everything goes to
    ``rules.default``. A company with no lines gets no entry. Amounts are ``Decimal`` cents.

    Raises :class:`MappingError` when ``entry`` does not balance
    (:meth:`JournalEntry.check_balanced`) or a company's balancing line cannot absorb its
    rounding difference.
    """
    entry.check_balanced()
    weights = _weights(weights_from or entry)
    per_company: dict[str, list[JournalLine]] = {}
    for line in entry.lines:
        allocs = [a for a in line.allocations if a.amount]
        if not allocs and weights:
            allocs = [CostAllocation(category, centre, part, dims)
                      for (category, centre, dims), part in apportion(line.amount, weights).items() if part]
        groups: "OrderedDict[str, list[CostAllocation]]" = OrderedDict()
        if not allocs:
            groups[rules.default] = []
        for a in allocs:
            groups.setdefault(rules.company_of(a), []).append(a)
        for company, mine in groups.items():
            amount = sum((a.amount for a in mine), ZERO) if mine else line.amount
            per_company.setdefault(company, []).append(JournalLine(
                ledger=line.ledger, component=line.component, debit=amount if line.is_debit else ZERO,
                credit=ZERO if line.is_debit else amount, allocations=tuple(mine)))
    order = [c for c in rules.companies if c in per_company] + sorted(c for c in per_company
                                                                      if c not in rules.companies)
    out: "OrderedDict[str, JournalEntry]" = OrderedDict()
    for company in order:
        lines = _balance(company, per_company[company], entry.key)
        part = JournalEntry(key=entry.key, date=entry.date, narration=entry.narration, lines=tuple(lines),
                            source_ref=entry.source_ref, warnings=entry.warnings)
        part.check_balanced()
        out[company] = part
    return out
