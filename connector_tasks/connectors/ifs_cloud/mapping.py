"""Ledger name → IFS account (+ code parts), and cost centre → code part value, per IFS
connection.

The payroll flow names ledgers (``connector_tasks/flows/mapping/payroll.py`` ``COMPONENTS``);
an IFS connection books each ledger to an account of the company's chart (code part A) and,
for accounts kept by cost centre, a code part B value (IFS's code parts B…J carry the
dimensions; B is conventionally the cost centre — ASSUMPTION, a customer may use another letter,
hence :attr:`CostCentres.code_part`). Whether an account demands, allows or blocks a code part
is the account's ``ReqCodeB``…``ReqCodeJ`` (Mandatory / Can / Blocked, ``Account.entity`` of the
public IFS Cloud 21R1 ACCRUL model files, prashweenet/demoproj2 ``accrul/model/accrul/``); the
mapping says which accounts take the cost centre, and :mod:`.vouchers` checks it against IFS
before anything is written.

Defaults (:data:`DEFAULT_IFS_ACCOUNTS`) are the sandbox emulator's seeded US-style payroll chart
(ASSUMPTION: a demo chart, not any customer's). A connection overrides a ledger (or adds one)
with :class:`~connector_tasks.store.models.Mapping` rows ``kind="ifs_account"``, ``key=<ledger
name>``, ``value=<account>``, ``extra={"cost_centre": true|false, "code_parts": {"C": "PRJ1"}}``,
and maps cost centres with rows ``kind="ifs_cost_centre"``, ``key=<cost centre name>``,
``value=<code B value>``, or by the employee's department (setting
``cost_centre_by_department``: an allocation's ``department`` dimension); the connection setting
``default_cost_centre`` replaces :data:`DEFAULT_CODE_B` for the rest and for unallocated amounts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import CostAllocation
from connector_tasks.flows.mapping.payroll import EARNING_LEDGER_FORMAT, SETTLEMENT_COMPONENT, UNALLOCATED_COST_CENTRE

SYSTEM = "ifs_cloud"
ACCOUNT_KIND = "ifs_account"
COST_CENTRE_KIND = "ifs_cost_centre"
#: The code part that carries the cost centre (ASSUMPTION: IFS's usual use of code part B).
COST_CENTRE_CODE_PART = "B"
#: Code B value for cost centres without a mapping and for unallocated amounts (emulator seed:
#: 100 Administration).
DEFAULT_CODE_B = "100"
CODE_PART_LETTERS = "BCDEFGHIJ"


@dataclass(frozen=True)
class IfsAccount:
    """Where one ledger is booked in IFS: ``account`` (code part A), ``cost_centre`` (rows of
    this account carry the cost centre in :attr:`CostCentres.code_part`), ``code_parts`` fixed
    values of other code parts (``{"C": "PRJ1"}``, letters B…J)."""

    account: str
    cost_centre: bool = False
    code_parts: Mapping[str, str] = field(default_factory=dict)


#: ``{ledger name: (account, takes a cost centre)}`` for the payroll flow's default ledger names,
#: onto the emulator's seeded chart: 6000 wages, 6100 employer payroll taxes, 6200 employee
#: benefits (all three demand code part B), 1090 payroll clearing, 2100 accrued net pay, 2200
#: payroll tax liability, 2300 benefit deductions payable, 2320 garnishments payable.
#: ASSUMPTION: reimbursements debit the payroll clearing account (the seed has no reimbursement
#: expense account); override per connection.
DEFAULT_IFS_ACCOUNTS: dict[str, tuple[str, bool]] = {
    "Salaries & Wages": ("6000", True),
    "Employer Payroll Taxes": ("6100", True),
    "Employer Benefit Contributions": ("6200", True),
    "Employee Reimbursements": ("1090", False),
    "Salaries Payable": ("2100", False),
    "Payroll Taxes Payable": ("2200", False),
    "Benefits Payable": ("2300", False),
    "Other Withholdings Payable": ("2320", False),
    SETTLEMENT_COMPONENT.ledger: ("1000", False),
}

#: Earning-type ledgers of the flow ("Wages - Bonus") default to the gross wages account.
EARNING_PREFIX = EARNING_LEDGER_FORMAT.split("{name}")[0]
EARNINGS_DEFAULT_LEDGER = "Salaries & Wages"


def _code_parts(name: str, raw) -> dict[str, str]:
    parts: dict[str, str] = {}
    for letter, value in dict(raw or {}).items():
        letter = str(letter).strip().upper()
        if letter not in CODE_PART_LETTERS or not str(value or "").strip():
            raise MappingError(f"IFS mapping of ledger {name!r}: code part {letter!r} = {value!r} is not a "
                               f"code part B-J with a value", system=SYSTEM)
        parts[letter] = str(value).strip()
    return parts


def resolve_accounts(ledgers: Iterable[str], overrides: Mapping[str, Mapping] | None = None) -> dict[str, IfsAccount]:
    """``{ledger name: IfsAccount}`` for every name in ``ledgers``.

    ``overrides``: ``{ledger: {"ledger": <account>, "cost_centre": bool, "code_parts": {...}}}``
    (the shape :func:`connector_tasks.store.repo.mapping_overrides` gives for
    ``kind="ifs_account"``; ``cost_centre`` defaults to the default mapping's, else False). An
    earning-type ledger (``Wages - <type>``) without a row goes to the gross wages account.
    Raises :class:`MappingError` naming the ledger when nothing maps it, a row names no account,
    or a code part is malformed.
    """
    overrides = overrides or {}
    out: dict[str, IfsAccount] = {}
    for name in ledgers:
        if name in out:
            continue
        row = overrides.get(name)
        default = DEFAULT_IFS_ACCOUNTS.get(name)
        if default is None and EARNING_PREFIX and name.startswith(EARNING_PREFIX):
            default = DEFAULT_IFS_ACCOUNTS[EARNINGS_DEFAULT_LEDGER]
        if row is not None:
            account = str(row.get("ledger") or row.get("account") or "").strip()
            if not account:
                raise MappingError(f"IFS mapping of ledger {name!r} names no account", system=SYSTEM)
            cost_centre = row.get("cost_centre")
            if cost_centre is None:
                cost_centre = default[1] if default else False
            out[name] = IfsAccount(account.upper(), bool(cost_centre), _code_parts(name, row.get("code_parts")))
        elif default is not None:
            out[name] = IfsAccount(default[0], default[1])
        else:
            raise MappingError(f"ledger {name!r} is not mapped to an IFS account (add an '{ACCOUNT_KIND}' "
                               f"mapping on the IFS connection)", system=SYSTEM)
    return out


@dataclass(frozen=True)
class CostCentres:
    """Cost centre → code part value. ``values`` the mapped cost-centre names;
    ``by_department`` department → value (an allocation's ``department`` dimension);
    ``default`` the value for the rest, for
    :data:`~connector_tasks.flows.mapping.payroll.UNALLOCATED_COST_CENTRE` and for unallocated
    lines of cost-centre accounts; ``code_part`` the letter (default B)."""

    values: Mapping[str, str] = field(default_factory=dict)
    default: str = DEFAULT_CODE_B
    code_part: str = COST_CENTRE_CODE_PART
    by_department: Mapping[str, str] = field(default_factory=dict)

    def value_of(self, name: str | None) -> str:
        """The code part value for cost centre ``name`` (the default when unmapped, empty or
        ``Unallocated``)."""
        if not name or name == UNALLOCATED_COST_CENTRE:
            return self.default
        return self.values.get(name, self.default)

    def value_for(self, allocation: CostAllocation) -> str:
        """The code part value of ``allocation``: its cost centre's row, else its department's,
        else the default."""
        name = allocation.cost_centre
        if name and name != UNALLOCATED_COST_CENTRE and name in self.values:
            return self.values[name]
        department = allocation.dimension("department")
        if department and department in self.by_department:
            return self.by_department[department]
        return self.value_of(name)

    def to_dict(self) -> dict:
        """A JSON-safe dict that :meth:`from_dict` reads back."""
        return {"values": dict(self.values), "default": self.default, "code_part": self.code_part,
                "by_department": dict(self.by_department)}

    @classmethod
    def from_dict(cls, data: Mapping) -> "CostCentres":
        """Inverse of :meth:`to_dict`."""
        return cls(dict(data.get("values") or {}), str(data.get("default") or DEFAULT_CODE_B),
                   str(data.get("code_part") or COST_CENTRE_CODE_PART), dict(data.get("by_department") or {}))


def resolve_cost_centres(overrides: Mapping[str, Mapping] | None = None, *, default: str | None = None,
                         code_part: str = COST_CENTRE_CODE_PART,
                         by_department: Mapping[str, str] | None = None) -> CostCentres:
    """A :class:`CostCentres` from ``kind="ifs_cost_centre"`` rows (``{name: {"ledger": <value>}}``),
    ``by_department`` (department → value), the connection's ``default`` (else
    :data:`DEFAULT_CODE_B`) and ``code_part``. Raises :class:`MappingError` for a row without a
    value or a letter outside B-J."""
    letter = str(code_part).strip().upper()
    if letter not in CODE_PART_LETTERS:
        raise MappingError(f"IFS cost centre code part must be one of B-J (got {code_part!r})", system=SYSTEM)
    values = {}
    for name, row in (overrides or {}).items():
        value = str(row.get("ledger") or row.get("value") or "").strip()
        if not value:
            raise MappingError(f"IFS cost centre mapping of {name!r} names no code {letter} value", system=SYSTEM)
        values[name] = value.upper()
    departments = {str(k): str(v).strip().upper() for k, v in (by_department or {}).items()}
    return CostCentres(values, str(default or DEFAULT_CODE_B).strip().upper(), letter, departments)
