"""Pay component → ledger mapping for payroll journals.

A *pay component* is one figure of a payroll's totals that becomes one journal line. The
defaults name ledgers an Indian or Southeast Asian SME would keep (under the predefined groups
of the ledgers such businesses use: Indirect Expenses, Current Liabilities, Duties & Taxes); a
connection overrides any of them with :class:`~connector_tasks.store.models.Mapping`
rows (``kind="ledger"``, ``key=<component>``, ``value=<ledger>``, ``extra={"group": ...}``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import LedgerMaster

DEBIT, CREDIT = "debit", "credit"


@dataclass(frozen=True)
class Component:
    """A pay component: its side of the journal and its default ledger and parent group."""

    key: str
    side: str
    ledger: str
    group: str
    label: str
    cost_centres: bool = False


#: Order is the order of the journal lines.
COMPONENTS: tuple[Component, ...] = (
    Component("gross_wages", DEBIT, "Salaries & Wages", "Indirect Expenses", "Gross wages", cost_centres=True),
    Component("employer_taxes", DEBIT, "Employer Payroll Taxes", "Indirect Expenses", "Employer taxes"),
    Component("employer_benefits", DEBIT, "Employer Benefit Contributions", "Indirect Expenses",
              "Employer benefit contributions"),
    Component("reimbursements", DEBIT, "Employee Reimbursements", "Indirect Expenses", "Reimbursements"),
    Component("net_pay", CREDIT, "Salaries Payable", "Current Liabilities", "Net pay"),
    Component("payroll_taxes", CREDIT, "Payroll Taxes Payable", "Duties & Taxes",
              "Payroll taxes (employee + employer)"),
    Component("benefit_deductions", CREDIT, "Benefits Payable", "Current Liabilities",
              "Employee benefit deductions"),
    Component("employer_benefits_payable", CREDIT, "Benefits Payable", "Current Liabilities",
              "Employer benefit contributions payable"),
    Component("other_deductions", CREDIT, "Other Withholdings Payable", "Current Liabilities",
              "Other withholdings"),
)
COMPONENT_KEYS = tuple(c.key for c in COMPONENTS)

#: The settlement's credit (:mod:`connector_tasks.flows.payroll_to_settlement`): the bank or
#: clearing account the source debits for the run's funding. Not an accrual line, so not in
#: :data:`COMPONENTS`; a connection may still rename its ledger (a ``ledger`` row keyed
#: ``company_debit``).
SETTLEMENT_COMPONENT = Component("company_debit", CREDIT, "Payroll Bank Account", "Bank Accounts",
                                 "Company debit (bank)")

#: Employees are cost centres of this category (the headcount masters); payroll wages are
#: allocated to the same centres.
DEFAULT_COST_CATEGORY = "Employees"
UNALLOCATED_COST_CENTRE = "Unallocated"
#: The default ledger of an earning type (Bonus → "Wages - Bonus"): prefixed so it can never
#: collide with, say, a "Commission" income ledger the company already keeps.
EARNING_LEDGER_FORMAT = "Wages - {name}"


@dataclass(frozen=True)
class PayrollMapping:
    """The ledgers (and cost category) a connection's payroll journals use.

    ``ledgers`` maps component key → ledger name (the settlement's ``company_debit`` too),
    ``groups`` ledger name → parent group.
    ``earning_ledgers`` maps an earning type's name → the ledger of a user's choosing (others
    get :data:`EARNING_LEDGER_FORMAT`, under the gross wages ledger's group). ``user_ledgers``
    are the ledgers a person mapped: they must already exist in the target (the connector
    creates only the ledgers it owns). Build it with :meth:`from_overrides`.
    """

    ledgers: dict[str, str]
    groups: dict[str, str]
    cost_category: str = DEFAULT_COST_CATEGORY
    cost_centre_ledgers: frozenset[str] = field(default_factory=frozenset)
    earning_ledgers: dict[str, str] = field(default_factory=dict)
    user_ledgers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_overrides(cls, overrides: dict[str, dict] | None = None,
                       cost_category: str | None = None,
                       earning_overrides: dict[str, dict] | None = None) -> "PayrollMapping":
        """Defaults with ``overrides`` applied: ``{component: {"ledger": name, "group": g}}``,
        and ``earning_overrides`` ``{earning type name: {"ledger": name}}``.

        Raises :class:`MappingError` for an unknown component or an empty ledger name.
        """
        every = (*COMPONENTS, SETTLEMENT_COMPONENT)
        ledgers = {c.key: c.ledger for c in every}
        groups = {c.ledger: c.group for c in every}
        for key, spec in (overrides or {}).items():
            if key not in ledgers:
                raise MappingError(f"unknown pay component {key!r}; known: {', '.join(ledgers)}")
            name = (spec.get("ledger") or "").strip()
            if not name:
                raise MappingError(f"mapping of {key!r} names no ledger")
            ledgers[key] = name
            default_group = next(c.group for c in every if c.key == key)
            groups[name] = spec.get("group") or groups.get(name) or default_group
        earning = {}
        for name, spec in (earning_overrides or {}).items():
            ledger = (spec.get("ledger") or "").strip()
            if not ledger:
                raise MappingError(f"mapping of earning type {name!r} names no ledger")
            earning[name] = ledger
        cc = frozenset(ledgers[c.key] for c in COMPONENTS if c.cost_centres)
        user = frozenset(ledgers[k] for k in (overrides or {})) | frozenset(earning.values())
        return cls(ledgers=ledgers, groups=groups, cost_category=cost_category or DEFAULT_COST_CATEGORY,
                   cost_centre_ledgers=cc, earning_ledgers=earning, user_ledgers=user)

    def earning_ledger(self, earning_type: str) -> str:
        """The ledger of earning type ``earning_type`` (a user's mapping, else the default name)."""
        return self.earning_ledgers.get(earning_type) or EARNING_LEDGER_FORMAT.format(name=earning_type)

    @property
    def wages_group(self) -> str:
        """The group of the gross wages ledger, where earning-type ledgers are created."""
        return self.groups[self.ledgers["gross_wages"]]

    def ledger_masters(self, used: set[str] | None = None,
                       earning_types: Iterable[str] = ()) -> list[LedgerMaster]:
        """The ledger masters the connector owns and may create (only ``used`` names when
        given), each once: the components' default ledgers and a ledger per earning type in
        ``earning_types`` (under :attr:`wages_group`, taking cost centres). Ledgers a person
        mapped (:attr:`user_ledgers`) are never listed: they must exist already."""
        seen: dict[str, LedgerMaster] = {}
        for comp in COMPONENTS:
            name = self.ledgers[comp.key]
            if (used is None or name in used) and name not in seen and name not in self.user_ledgers:
                seen[name] = LedgerMaster(name=name, group=self.groups[name],
                                          cost_centres_on=name in self.cost_centre_ledgers)
        for et in earning_types:
            name = self.earning_ledger(et)
            if (used is None or name in used) and name not in seen and name not in self.user_ledgers:
                seen[name] = LedgerMaster(name=name, group=self.wages_group, cost_centres_on=True)
        return list(seen.values())
