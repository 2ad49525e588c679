"""Ledger name → Acumatica GL account + subaccount, per Acumatica connection.

The payroll flow names ledgers (``connector_tasks/flows/mapping/payroll.py``); an Acumatica
connection books each ledger to an account code and a subaccount. Defaults are in
:data:`DEFAULT_GL_ACCOUNTS`; a connection overrides any ledger (or adds one) with
:class:`~connector_tasks.store.models.Mapping` rows ``kind="gl_account"``, ``key=<ledger
name>``, ``value=<account code>``, ``extra={"subaccount": "<subaccount>"}``. The connection
setting ``subaccount`` replaces the default subaccount (``000-000``) of rows that name none.

Employee departments map the same way: ``kind="department"``, ``key=<source department>``,
``value=<Acumatica DepartmentID>``; unmapped names become upper case without spaces.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from connector_tasks.core.errors import MappingError
from connector_tasks.flows.mapping.payroll import EARNING_LEDGER_FORMAT

GL_KIND = "gl_account"
DEPARTMENT_KIND = "department"
DEFAULT_SUBACCOUNT = "000-000"


@dataclass(frozen=True)
class GlAccount:
    """Where one ledger is booked: Acumatica ``Account`` (AccountCD) and ``Subaccount``
    (SubaccountCD, segments joined by ``-``)."""

    account: str
    subaccount: str

    def to_list(self) -> list[str]:
        return [self.account, self.subaccount]


#: Defaults for the payroll flow's default ledger names (a US-style chart; override per connection).
DEFAULT_GL_ACCOUNTS: dict[str, str] = {
    "Salaries & Wages": "60000",
    "Employer Payroll Taxes": "60100",
    "Employer Benefit Contributions": "60200",
    "Employee Reimbursements": "60300",
    "Salaries Payable": "21000",
    "Payroll Taxes Payable": "21100",
    "Benefits Payable": "21200",
    "Other Withholdings Payable": "21300",
}

#: Earning-type ledgers of the flow ("Wages - Bonus") default to the gross wages account.
EARNING_PREFIX = EARNING_LEDGER_FORMAT.split("{name}")[0]
EARNINGS_DEFAULT_LEDGER = "Salaries & Wages"


def resolve_accounts(ledgers: Iterable[str], overrides: dict[str, dict] | None = None, *,
                     default_subaccount: str | None = None) -> dict[str, GlAccount]:
    """``{ledger name: GlAccount}`` for every name in ``ledgers``.

    ``overrides`` is what :func:`connector_tasks.store.repo.mapping_overrides` returns for
    ``kind="gl_account"``: ``{ledger: {"ledger": <account code>, "subaccount": ...}}``.
    An earning-type ledger of the payroll flow (``Wages - <earning type>``) without a row goes
    to the gross wages account. Raises :class:`MappingError` naming the ledger when neither an override nor a default maps
    it, or when a row names an empty account.
    """
    overrides = overrides or {}
    sub_default = (default_subaccount or DEFAULT_SUBACCOUNT).strip()
    out: dict[str, GlAccount] = {}
    for name in ledgers:
        if name in out:
            continue
        row = overrides.get(name)
        if row is not None:
            account = str(row.get("ledger") or "").strip()
            if not account:
                raise MappingError(f"GL mapping of ledger {name!r} names no Acumatica account", system="acumatica")
            out[name] = GlAccount(account, str(row.get("subaccount") or sub_default).strip())
        elif name in DEFAULT_GL_ACCOUNTS:
            out[name] = GlAccount(DEFAULT_GL_ACCOUNTS[name], sub_default)
        elif EARNING_PREFIX and name.startswith(EARNING_PREFIX):
            out[name] = GlAccount(DEFAULT_GL_ACCOUNTS[EARNINGS_DEFAULT_LEDGER], sub_default)
        else:
            raise MappingError(f"ledger {name!r} is not mapped to an Acumatica GL account (add a "
                               f"'{GL_KIND}' mapping on the Acumatica connection)", system="acumatica")
    return out


def department_id(name: str | None, overrides: dict[str, dict] | None = None) -> str | None:
    """The Acumatica DepartmentID for a source department ``name`` (``None`` stays ``None``):
    a ``department`` mapping row, else the name upper-cased without spaces, at most 10
    characters (the DepartmentID length is an assumption)."""
    if not name:
        return None
    row = (overrides or {}).get(name)
    if row is not None and row.get("ledger"):
        return str(row["ledger"]).strip()
    return "".join(name.split()).upper()[:10]
