"""Domain objects: payroll runs, employees, journal entries, ledger masters.

Money is ``decimal.Decimal`` in the currency's units, quantised to the cent (:data:`CENT`),
from the wire's string to the target's string. No float ever holds an amount: :func:`money`
refuses one.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from connector_tasks.core.errors import MappingError

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


def money(value, *, what: str = "amount") -> Decimal:
    """Parse an amount into a cent-exact ``Decimal``.

    ``value`` is a ``str`` (``"130635.89"``), ``int`` or ``Decimal`` (JSON numbers reach us as
    ``Decimal`` because every JSON reader here uses ``parse_float=Decimal``). ``None`` and
    ``""`` are zero. Raises :class:`MappingError` for text that is not a number, and
    ``TypeError`` for a ``float`` (a float has already lost the cents' exactness).
    """
    if value is None or value == "":
        return ZERO
    if isinstance(value, float):
        raise TypeError(f"{what}: float {value!r} refused; parse JSON with parse_float=Decimal")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError) as exc:
        raise MappingError(f"{what} is not a number: {value!r}") from exc
    if not d.is_finite():
        raise MappingError(f"{what} is not a finite number: {value!r}")
    return d.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Employee:
    """A person on the payroll, as the source system knows them.

    ``source_id`` is the source's stable id (a UUID string); ``code`` a short human code.
    Dates are ``datetime.date``.
    """

    source_id: str
    first_name: str = ""
    last_name: str = ""
    code: str | None = None
    email: str | None = None
    department: str | None = None
    title: str | None = None
    hire_date: dt.date | None = None
    terminated: bool = False
    termination_date: dt.date | None = None

    @property
    def display_name(self) -> str:
        """``"First Last"``, or the source id when the source gave no name."""
        name = f"{self.first_name} {self.last_name}".strip()
        return name or self.source_id


@dataclass(frozen=True)
class EmployeeCompensation:
    """One employee's figures within a payroll run (amounts in currency units).

    ``earnings`` are the named earnings inside ``gross_pay`` paid as fixed amounts (earning
    types such as Bonus or Commission): ``((earning type name, Decimal amount), ...)``.
    """

    employee_id: str
    gross_pay: Decimal
    net_pay: Decimal
    excluded: bool = False
    earnings: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True)
class PayrollTotals:
    """Company-level totals of a processed payroll run (``Decimal``, currency units).

    Field meanings follow the payroll register: ``gross_pay`` is wages before withholding;
    ``employee_taxes`` are withheld from employees, ``employer_taxes`` are the company's own;
    ``employee_benefits_deductions`` is everything withheld from employees other than taxes,
    of which ``other_deductions`` is the non-benefit part (garnishments etc.);
    ``employer_benefits`` is the company's benefit contributions.
    """

    gross_pay: Decimal
    net_pay: Decimal
    employee_taxes: Decimal
    employer_taxes: Decimal
    employee_benefits_deductions: Decimal
    other_deductions: Decimal
    employer_benefits: Decimal
    reimbursements: Decimal
    imputed_pay: Decimal = ZERO
    check_amount: Decimal = ZERO
    company_debit: Decimal = ZERO
    net_pay_debit: Decimal = ZERO
    tax_debit: Decimal = ZERO
    reimbursement_debit: Decimal = ZERO
    child_support_debit: Decimal = ZERO


@dataclass(frozen=True)
class PayrollRun:
    """A processed payroll: who was paid what for which period, and its totals.

    ``source_id`` is the source's payroll id; ``version`` changes when the source edits it;
    ``reversed`` is true once the source reversed the run after processing it (it then nets to
    zero in the books: its journal and a reversing one). ``debit_date`` is the day the source
    takes the run's funding (``totals.company_debit``) from the company's bank, ``None`` when it
    does not say.
    """

    source_id: str
    company_id: str
    check_date: dt.date
    period_start: dt.date
    period_end: dt.date
    processed: bool
    totals: PayrollTotals
    compensations: tuple[EmployeeCompensation, ...] = ()
    off_cycle: bool = False
    version: str | None = None
    reversed: bool = False
    debit_date: dt.date | None = None


@dataclass(frozen=True)
class CostAllocation:
    """A share of a journal line booked to a cost centre within a cost category.

    ``dimensions`` describe whose share it is, as sorted ``(name, value)`` pairs a target may
    book by (e.g. a company or a cost-centre code per department): ``employee`` (the source's
    employee id), ``code`` (the employee's code), ``department``, ``job`` (the primary job's
    title). Empty for shares that belong to nobody in particular (``Unallocated``).
    """

    cost_category: str
    cost_centre: str
    amount: Decimal
    dimensions: tuple[tuple[str, str], ...] = ()

    def dimension(self, name: str) -> str | None:
        """The value of dimension ``name``, or ``None``."""
        return dict(self.dimensions).get(name)


@dataclass(frozen=True)
class JournalLine:
    """One ledger line of a journal entry: exactly one of ``debit``/``credit`` is non-zero.

    ``component`` is the pay component it came from (``gross_wages``, ``net_pay``, ...).
    ``allocations`` split the line over cost centres and add up to the line's amount.
    """

    ledger: str
    component: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    allocations: tuple[CostAllocation, ...] = ()

    @property
    def amount(self) -> Decimal:
        """The line's non-zero side (always positive)."""
        return self.debit if self.debit else self.credit

    @property
    def is_debit(self) -> bool:
        return self.debit != ZERO


@dataclass(frozen=True)
class JournalEntry:
    """A journal voucher: dated, narrated, balanced lines, with a deterministic ``key``.

    ``key`` is the idempotency key and the target-side reference (e.g. a remote id the ledger keeps).
    ``warnings`` are things a person should know (an unallocated remainder, say).
    """

    key: str
    date: dt.date
    narration: str
    lines: tuple[JournalLine, ...]
    source_ref: str
    warnings: tuple[str, ...] = field(default=())

    @property
    def total_debit(self) -> Decimal:
        return sum((l.debit for l in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((l.credit for l in self.lines), ZERO)

    def check_balanced(self) -> None:
        """Raise :class:`MappingError` unless debits equal credits to the cent, every line
        has exactly one positive side, and each line's cost allocations add up to it."""
        for line in self.lines:
            if (line.debit < 0 or line.credit < 0) or (line.debit != ZERO) == (line.credit != ZERO):
                raise MappingError(f"journal line {line.component} ({line.ledger}) must have "
                                   f"exactly one positive side: Dr {line.debit} Cr {line.credit}")
            if line.allocations:
                alloc = sum((a.amount for a in line.allocations), ZERO)
                if alloc != line.amount:
                    raise MappingError(f"cost allocations of {line.component} add up to {alloc}, "
                                       f"the line is {line.amount}")
        diff = self.total_debit - self.total_credit
        if diff != ZERO:
            raise MappingError(f"journal {self.key} is unbalanced: Dr {self.total_debit} "
                               f"Cr {self.total_credit} (difference {diff})")

    def reversed(self, *, key: str, date: dt.date, narration: str) -> "JournalEntry":
        """The reversing entry: every line's debit and credit swapped (allocations kept), under
        its own ``key``, so the original and the reversal together net every ledger and cost
        centre to zero. Never a deletion: both stay in the books."""
        lines = tuple(JournalLine(ledger=l.ledger, component=l.component, debit=l.credit, credit=l.debit,
                                  allocations=l.allocations) for l in self.lines)
        entry = JournalEntry(key=key, date=date, narration=narration, lines=lines,
                             source_ref=self.source_ref)
        entry.check_balanced()
        return entry

    def to_dict(self) -> dict:
        """A JSON-safe dict (amounts as strings) that :meth:`from_dict` reads back exactly."""
        return {
            "key": self.key, "date": self.date.isoformat(), "narration": self.narration,
            "source_ref": self.source_ref, "warnings": list(self.warnings),
            "lines": [{"ledger": l.ledger, "component": l.component, "debit": str(l.debit),
                       "credit": str(l.credit),
                       "allocations": [{"cost_category": a.cost_category,
                                        "cost_centre": a.cost_centre, "amount": str(a.amount),
                                        **({"dimensions": dict(a.dimensions)} if a.dimensions else {})}
                                       for a in l.allocations]} for l in self.lines],
        }

    @classmethod
    def from_dict(cls, data: dict) -> "JournalEntry":
        """Inverse of :meth:`to_dict`; raises ``KeyError``/:class:`MappingError` on bad data."""
        return cls(
            key=data["key"], date=dt.date.fromisoformat(data["date"]),
            narration=data["narration"], source_ref=data["source_ref"],
            warnings=tuple(data.get("warnings", ())),
            lines=tuple(JournalLine(
                ledger=l["ledger"], component=l["component"], debit=money(l["debit"]),
                credit=money(l["credit"]),
                allocations=tuple(CostAllocation(a["cost_category"], a["cost_centre"], money(a["amount"]),
                                                 tuple(sorted((str(k), str(v)) for k, v in
                                                              (a.get("dimensions") or {}).items())))
                                  for a in l["allocations"]))
                for l in data["lines"]),
        )


@dataclass(frozen=True)
class LedgerMaster:
    """A ledger the target must hold before a voucher uses it.

    ``group`` is the parent group (e.g. ``"Duties & Taxes"``); ``cost_centres_on`` whether
    the ledger takes cost-centre allocations.
    """

    name: str
    group: str
    cost_centres_on: bool = False

    def to_dict(self) -> dict:
        return {"name": self.name, "group": self.group, "cost_centres_on": self.cost_centres_on}


@dataclass(frozen=True)
class EmployeeMaster:
    """An employee as a headcount master in a book of accounts (e.g. a cost centre for payroll
    under the ``category`` cost category, or an employee record).

    ``key`` is the source's stable id (the payroll system's employee id): the target finds the master
    by it, never by ``name``, so a rename alters the master instead of creating a second one.
    ``name`` is unique within the company (``"First Last (code)"``); ``group`` the parent (an
    employee group, e.g. the department) or ``None`` for the category's root; dates are
    ``datetime.date``; a ``deactivation_date`` marks a termination (masters are never deleted);
    ``code`` is the employee's number at the source (``None`` when it has none).
    """

    key: str
    name: str
    category: str = "Employees"
    group: str | None = None
    designation: str | None = None
    joining_date: dt.date | None = None
    deactivation_date: dt.date | None = None
    email: str | None = None
    code: str | None = None

    def to_dict(self) -> dict:
        """A JSON-safe dict (ISO dates) that :meth:`from_dict` reads back exactly."""
        return {"key": self.key, "name": self.name, "category": self.category, "group": self.group,
                "designation": self.designation, "email": self.email, "code": self.code,
                "joining_date": self.joining_date.isoformat() if self.joining_date else None,
                "deactivation_date": self.deactivation_date.isoformat() if self.deactivation_date else None}

    @classmethod
    def from_dict(cls, data: dict) -> "EmployeeMaster":
        """Inverse of :meth:`to_dict`; raises ``KeyError``/``ValueError`` on bad data."""
        def day(v):
            return dt.date.fromisoformat(v) if v else None
        return cls(key=data["key"], name=data["name"], category=data.get("category") or "Employees",
                   group=data.get("group"), designation=data.get("designation"), email=data.get("email"),
                   code=data.get("code"),
                   joining_date=day(data.get("joining_date")),
                   deactivation_date=day(data.get("deactivation_date")))
