"""Accounting master data: companies, accounts, code parts B-J, accounting years and periods, and
the posting checks the voucher routes share.

Projections (MODEL = public ACCRUL model files unless marked):

* ``CompanyHandling.svc/CompanySet(Company)`` — ASSUMPTION: name and shape invented (the
  company projection is not in the public ACCRUL files); attributes Company, Name, CurrencyCode,
  Country. Read only.
* ``AccountsHandling.svc/AccountSet(Company, Account)`` — MODEL ``AccountsHandling.projection``
  (entityset AccountSet for Account) and ``Account.entity`` (Description, ValidFrom, ValidUntil,
  AccntGroup, AccntType, ReqCodeB..J of enumeration AccountRequest = Can/Mandatory/Blocked).
  Read only here (the real projection also writes accounts).
* ``CodeBHandling.svc/CodeBSet(Company, CodeB)`` ... ``CodeJHandling.svc/CodeJSet`` — MODEL
  ``CodeBHandling.projection`` (entityset CodeBSet) and ``CodeB.entity`` (Description,
  ValidFrom, ValidUntil); C..J follow the same pattern (files CodeCHandling...CodeJHandling exist;
  their set names are ASSUMPTION by analogy). A code part value is *active* when the voucher
  date lies in ValidFrom..ValidUntil (that is how IFS deactivates values; there is no flag).
* ``AccountingPeriodsHandling.svc`` — MODEL ``AccountingPeriodsHandling.projection``:
  ``AccountingYearSet(Company, AccountingYear)`` with arrays ``AccountingPeriodDetailArray``
  (AccountingPeriod: DateFrom, DateUntil, YearEndPeriod of enum PeriodType) and
  ``AccYearDetailArray`` (AccYearLedgerInfo per LedgerId) -> ``AccPerDetailArray``
  (AccPeriodLedgerInfo: ``PeriodStatus`` of enum AccYearPerStatus = Open/Closed/FinallyClosed,
  ``AccPeriodLedgerInfo.entity``). The GL ledger is ``'00'``. Open/closed is per ledger period,
  so "is 2025-03 open in company 10?" reads::

      AccountingYearSet(Company='10',AccountingYear=2025)/AccYearDetailArray(LedgerId='00')
          /AccPerDetailArray?$filter=PeriodStatus eq IfsApp.AccountingPeriodsHandling.AccYearPerStatus'Open'

  Bound action ``AccPeriodLedgerInfo_OpenAccountingPeriod`` (returns Text) re-opens a period.
"""
from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

from sandbox.ifs_cloud import odata
from sandbox.ifs_cloud.odata import (BOOLEAN, DATE, ENUM, NUMBER, Action, Array, EntityType, Prop,
                                     Projection)
from sandbox.ifs_cloud.world import CODE_PARTS, IfsWorld

READ = frozenset({"Read"})
CENT = Decimal("0.01")


def _code_part_type(letter: str) -> EntityType:
    return EntityType(
        name=f"Code{letter}", table=f"code_{letter.lower()}", luname=f"Code{letter}", crud=READ,
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop(f"Code{letter}", key=True, max_length=20, uppercase=True),
               Prop("CodePart", max_length=1),
               Prop("Description", max_length=100),
               Prop("ValidFrom", DATE), Prop("ValidUntil", DATE),
               Prop("BudgetValue", BOOLEAN)])


def _open_period(ctx, rec: dict, params: dict) -> str:
    """MODEL: ``action OpenAccountingPeriod Text`` on AccPeriodLedgerInfo."""
    rec["PeriodStatus"] = "Open"
    ctx.world.touch(rec)
    return "TRUE"


def projections() -> list[Projection]:
    """The master-data projections (see the module docstring)."""
    out = [Projection(
        name="CompanyHandling", source="ASSUMPTION",
        sets={"CompanySet": "Company"},
        types={"Company": EntityType(
            name="Company", table="company", luname="Company", crud=READ,
            props=[Prop("Company", key=True, max_length=20, uppercase=True),
                   Prop("Name", max_length=100), Prop("CurrencyCode", max_length=3),
                   Prop("Country", max_length=2)])})]
    account = EntityType(
        name="Account", table="account", luname="Account", crud=READ,
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("Account", key=True, max_length=20, uppercase=True),
               Prop("Description", max_length=100), Prop("CodePart", max_length=1),
               Prop("AccntGroup", max_length=20), Prop("AccntType", max_length=20),
               Prop("ValidFrom", DATE), Prop("ValidUntil", DATE)]
        + [Prop(f"ReqCode{c}", ENUM, enum="AccountRequest") for c in CODE_PARTS])
    out.append(Projection(name="AccountsHandling", source=odata_src("AccountsHandling.projection"),
                          sets={"AccountSet": "Account"}, types={"Account": account},
                          enums={"AccountRequest": ["Can", "Mandatory", "Blocked"]}))
    for letter in CODE_PARTS:
        out.append(Projection(name=f"Code{letter}Handling", source=odata_src(f"Code{letter}Handling.projection"),
                              sets={f"Code{letter}Set": f"Code{letter}"},
                              types={f"Code{letter}": _code_part_type(letter)}))
    year = EntityType(
        name="AccountingYear", table="acc_year", luname="AccountingYear", crud=READ,
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("AccountingYear", NUMBER, key=True), Prop("YearStatusDb")],
        arrays={"AccountingPeriodDetailArray": Array("AccountingPeriodDetailArray", "AccountingPeriod",
                                                     (("Company", "Company"), ("AccountingYear", "AccountingYear"))),
                "AccYearDetailArray": Array("AccYearDetailArray", "AccYearLedgerInfo",
                                            (("Company", "Company"), ("AccountingYear", "AccountingYear")))})
    period = EntityType(
        name="AccountingPeriod", table="acc_period", luname="AccountingPeriod", crud=READ,
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("AccountingYear", NUMBER, key=True), Prop("AccountingPeriod", NUMBER, key=True),
               Prop("Description", max_length=100), Prop("DateFrom", DATE), Prop("DateUntil", DATE),
               Prop("YearEndPeriod", ENUM, enum="PeriodType")])
    year_ledger = EntityType(
        name="AccYearLedgerInfo", table="acc_year_ledger", luname="AccYearLedgerInfo", crud=READ,
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("AccountingYear", NUMBER, key=True), Prop("LedgerId", key=True, max_length=10),
               Prop("LedgerDesc", max_length=100)],
        arrays={"AccPerDetailArray": Array("AccPerDetailArray", "AccPeriodLedgerInfo",
                                           (("Company", "Company"), ("AccountingYear", "AccountingYear"),
                                            ("LedgerId", "LedgerId")))})
    period_ledger = EntityType(
        name="AccPeriodLedgerInfo", table="acc_period_ledger", luname="AccPeriodLedgerInfo", crud=READ,
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("AccountingYear", NUMBER, key=True), Prop("AccountingPeriod", NUMBER, key=True),
               Prop("LedgerId", key=True, max_length=10), Prop("Description", max_length=100),
               Prop("YearEndPeriod", ENUM, enum="PeriodType"), Prop("DateFrom", DATE),
               Prop("DateUntil", DATE), Prop("PeriodStatus", ENUM, enum="AccYearPerStatus")],
        actions={"OpenAccountingPeriod": Action("OpenAccountingPeriod", _open_period, returns="text",
                                                etag_required=True)})
    out.append(Projection(
        name="AccountingPeriodsHandling", source=odata_src("AccountingPeriodsHandling.projection"),
        sets={"AccountingYearSet": "AccountingYear"},
        types={t.name: t for t in (year, period, year_ledger, period_ledger)},
        enums={"PeriodType": ["YearOpening", "Ordinary", "YearClosing"],       # PeriodType.enumeration
               "AccYearPerStatus": ["Open", "Closed", "FinallyClosed"]}))       # AccYearPerStatus.enumeration
    return out


def odata_src(file: str) -> str:
    return f"prashweenet/demoproj2 accrul/model/accrul/{file}"


# ---------------------------------------------------------------------------------------- posting checks
class Problem(NamedTuple):
    """One reason a posting is refused; ``row`` is the row label (RowNo / RecordNo) or None."""

    entity: str
    tag: str
    message: str
    row: object = None
    ora: int = 20110

    def error(self) -> odata.ODataError:
        return odata.business_error(self.entity, self.tag, self.message, ora=self.ora)


def _amount(value) -> Decimal:
    return Decimal(str(value)) if value is not None else Decimal("0")


def row_amounts(company: dict, row: dict) -> tuple[Decimal, Decimal] | Problem:
    """(debit, credit) of a row in the company's currency, rounded to the cent.

    A row gives DebetAmount/CreditAmount (company currency), or CurrencyDebetAmount/
    CurrencyCreditAmount (transaction currency, converted with CurrencyRate; 1 when CurrencyCode
    is the company's), or a signed Amount / CurrencyAmount (positive = debit). MODEL attribute
    names (VoucherEntryAssistantHandling, ExtTransactions.entity); the conversion rule is
    ASSUMPTION (IFS looks the rate up from its currency tables)."""
    label = row.get("_label")
    debit, credit = row.get("DebetAmount"), row.get("CreditAmount")
    if debit is None and credit is None and row.get("Amount") is not None:
        amt = _amount(row["Amount"])
        debit, credit = (amt, None) if amt >= 0 else (None, -amt)
    if debit is None and credit is None:
        cdebit, ccredit = row.get("CurrencyDebetAmount"), row.get("CurrencyCreditAmount")
        if cdebit is None and ccredit is None and row.get("CurrencyAmount") is not None:
            amt = _amount(row["CurrencyAmount"])
            cdebit, ccredit = (amt, None) if amt >= 0 else (None, -amt)
        currency = row.get("CurrencyCode") or company["CurrencyCode"]
        rate = row.get("CurrencyRate")
        if currency != company["CurrencyCode"] and rate is None and (cdebit or ccredit):
            return Problem("CurrencyRate", "NORATE",
                           f"No currency rate for {currency} in company {company['Company']} (row {label}); "
                           f"send CurrencyRate or amounts in {company['CurrencyCode']}.", label)
        factor = Decimal("1") if currency == company["CurrencyCode"] else _amount(rate)
        debit = _amount(cdebit) * factor if cdebit is not None else None
        credit = _amount(ccredit) * factor if ccredit is not None else None
    d = _amount(debit).quantize(CENT, ROUND_HALF_UP)
    c = _amount(credit).quantize(CENT, ROUND_HALF_UP)
    return d, c


def check_posting(world: IfsWorld, company_code: str, voucher_type: str | None, voucher_date,
                  rows: list[dict], *, label: str = "voucher", check_balance: bool = True) -> list[Problem]:
    """Every reason IFS would refuse these rows as one voucher of ``company_code`` dated
    ``voucher_date``, in the order IFS would meet them (the caller raises the first).

    Rules (MODEL attributes; messages ASSUMPTION, worded ``Entity.TAG: text`` per ORA_20110):
    company exists; voucher type exists in it; a ledger-00 period covers the date and its
    PeriodStatus is Open; at least one row; per row: Account exists in the company and is valid on
    the date (ValidFrom..ValidUntil); every CodeB..CodeJ given exists and is valid on the date;
    code parts the account marks Mandatory are present and those it marks Blocked are absent;
    a row is either debit or credit, not both; negative amounts only on correction rows
    (ASSUMPTION); finally total debit = total credit to the cent in company currency."""
    problems: list[Problem] = []
    company = world.company(company_code) if company_code else None
    if company is None:
        return [Problem("CompanyFinance", "NOTEXIST", f"Company {company_code!r} does not exist.", ora=20111)]
    if voucher_type is not None and world.get("voucher_type", (company_code, voucher_type)) is None:
        problems.append(Problem("VoucherType", "NOTEXIST",
                                f"Voucher type {voucher_type!r} does not exist in company {company_code}.",
                                ora=20111))
    if voucher_date is None:
        problems.append(Problem("Voucher", "NOVOUDATE", f"The {label} in company {company_code} has no voucher date."))
        return problems
    period = world.period_for(company_code, voucher_date)
    if period is None:
        problems.append(Problem("AccountingPeriod", "NOPERIOD",
                                f"No accounting period in company {company_code} covers {voucher_date.isoformat()}."))
    elif period["PeriodStatus"] != "Open":
        y, p = int(period["AccountingYear"]), int(period["AccountingPeriod"])
        problems.append(Problem("AccPeriodLedgerInfo", "PERIODCLOSED",
                                f"Accounting period {y}-{p:02d} ({period['Description']}) is "
                                f"{period['PeriodStatus']} in company {company_code} (ledger 00): "
                                f"no voucher dated {voucher_date.isoformat()} can be entered."))
    if not rows:
        problems.append(Problem("Voucher", "NOROWS", f"The {label} in company {company_code} has no rows."))
        return problems
    total_d = total_c = Decimal("0")
    for row in rows:
        row_label = row.get("_label")
        acc_code = row.get("Account")
        account = world.get("account", (company_code, acc_code)) if acc_code else None
        if not acc_code:
            problems.append(Problem("VoucherRow", "NULLVALUE",
                                    f"Field [Account] is mandatory (row {row_label}, company {company_code}).", row_label))
        elif account is None:
            problems.append(Problem("Account", "NOTEXIST",
                                    f"Account {acc_code} does not exist in company {company_code} (row {row_label}).",
                                    row_label, ora=20111))
        elif not (account["ValidFrom"] <= voucher_date <= account["ValidUntil"]):
            problems.append(Problem("Account", "NOTVALID",
                                    f"Account {acc_code} in company {company_code} is not valid on "
                                    f"{voucher_date.isoformat()} (valid {account['ValidFrom'].isoformat()} to "
                                    f"{account['ValidUntil'].isoformat()}; row {row_label}).", row_label))
        for letter in CODE_PARTS:
            value = row.get(f"Code{letter}")
            demand = account.get(f"ReqCode{letter}", "Can") if account else "Can"
            if value:
                part = world.get(f"code_{letter.lower()}", (company_code, value))
                if part is None:
                    problems.append(Problem(f"Code{letter}", "NOTEXIST",
                                            f"Code {letter} value {value} does not exist in company "
                                            f"{company_code} (row {row_label}).", row_label, ora=20111))
                elif not (part["ValidFrom"] <= voucher_date <= part["ValidUntil"]):
                    problems.append(Problem(f"Code{letter}", "NOTVALID",
                                            f"Code {letter} value {value} in company {company_code} is not valid "
                                            f"on {voucher_date.isoformat()} (valid until "
                                            f"{part['ValidUntil'].isoformat()}; row {row_label}).", row_label))
                if demand == "Blocked":
                    problems.append(Problem("Account", "CODEPARTBLOCKED",
                                            f"Code part {letter} is blocked for account {acc_code} in company "
                                            f"{company_code} (row {row_label}).", row_label))
            elif demand == "Mandatory":
                problems.append(Problem("Account", "CODEPARTMANDATORY",
                                        f"Code part {letter} is mandatory for account {acc_code} in company "
                                        f"{company_code} (row {row_label}).", row_label))
        amounts = row_amounts(company, row)
        if isinstance(amounts, Problem):
            problems.append(amounts)
            continue
        d, c = amounts
        if d and c:
            problems.append(Problem("VoucherRow", "DEBITANDCREDIT",
                                    f"Row {row_label} in company {company_code} has both a debit and a credit amount.",
                                    row_label))
        if (d < 0 or c < 0) and not row.get("Correction"):
            problems.append(Problem("VoucherRow", "NEGATIVEAMOUNT",
                                    f"Row {row_label} in company {company_code} has a negative amount; use a "
                                    f"correction row (Correction = true) instead.", row_label))
        total_d += d
        total_c += c
    if check_balance and total_d != total_c:
        problems.append(Problem("Voucher", "NOTBALANCED",
                                f"The {label} in company {company_code} is not balanced: debit {total_d}, "
                                f"credit {total_c}, difference {total_d - total_c}."))
    return problems


def year_period(world: IfsWorld, company: str, date: dt.date) -> tuple[Decimal, Decimal] | tuple[None, None]:
    period = world.period_for(company, date)
    if period is None:
        return None, None
    return period["AccountingYear"], period["AccountingPeriod"]
