"""Pay component → ledger mapping for payroll journals.

A *pay component* is one figure of a payroll's totals that becomes one journal line. The
defaults name ledgers an Indian or Southeast Asian SME would keep (under Tally's predefined
groups); a connection overrides any of them with :class:`~connector_tasks.store.models.Mapping`
rows (``kind="ledger"``, ``key=<component>``, ``value=<ledger>``, ``extra={"group": ...}``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

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

DEFAULT_COST_CATEGORY = "Primary Cost Category"
UNALLOCATED_COST_CENTRE = "Unallocated"


@dataclass(frozen=True)
class PayrollMapping:
    """The ledgers (and cost category) a connection's payroll journals use.

    ``ledgers`` maps component key → ledger name, ``groups`` ledger name → parent group.
    Build it with :meth:`from_overrides`.
    """

    ledgers: dict[str, str]
    groups: dict[str, str]
    cost_category: str = DEFAULT_COST_CATEGORY
    cost_centre_ledgers: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_overrides(cls, overrides: dict[str, dict] | None = None,
                       cost_category: str | None = None) -> "PayrollMapping":
        """Defaults with ``overrides`` applied: ``{component: {"ledger": name, "group": g}}``.

        Raises :class:`MappingError` for an unknown component or an empty ledger name.
        """
        ledgers = {c.key: c.ledger for c in COMPONENTS}
        groups = {c.ledger: c.group for c in COMPONENTS}
        for key, spec in (overrides or {}).items():
            if key not in ledgers:
                raise MappingError(f"unknown pay component {key!r}; known: {', '.join(COMPONENT_KEYS)}")
            name = (spec.get("ledger") or "").strip()
            if not name:
                raise MappingError(f"mapping of {key!r} names no ledger")
            ledgers[key] = name
            default_group = next(c.group for c in COMPONENTS if c.key == key)
            groups[name] = spec.get("group") or groups.get(name) or default_group
        cc = frozenset(ledgers[c.key] for c in COMPONENTS if c.cost_centres)
        return cls(ledgers=ledgers, groups=groups, cost_category=cost_category or DEFAULT_COST_CATEGORY,
                   cost_centre_ledgers=cc)

    def ledger_masters(self, used: set[str] | None = None) -> list[LedgerMaster]:
        """The ledger masters the journal needs (only ``used`` names when given), each once."""
        seen: dict[str, LedgerMaster] = {}
        for comp in COMPONENTS:
            name = self.ledgers[comp.key]
            if (used is None or name in used) and name not in seen:
                seen[name] = LedgerMaster(name=name, group=self.groups[name],
                                          cost_centres_on=name in self.cost_centre_ledgers)
        return list(seen.values())
