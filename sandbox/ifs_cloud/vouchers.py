"""GL vouchers: two ways in, one way to read back.

(a) ``VoucherEntryAssistantHandling.svc`` (MODEL ``VoucherEntryAssistantHandling.projection``):
``VoucherSet`` is the *virtual* VoucherEntry; its rows are the virtual VoucherPosting in
``VoucherPostingArray``; the bound action ``CreateVoucher`` (returns Number) turns them into a
real voucher and ``RemoveTempVoucher`` discards them. Call order (UNCONFIRMED in IFS's OData Provider docs, the
emulator's choice)::

    POST VoucherSet                                   {"Company":"10","VoucherType":"M","VoucherDate":"2025-03-31", ...}
         -> 201, Objkey (virtual key, BOUND_ACTIONS: virtual sets are keyed Objkey)
    POST VoucherSet(Objkey='…')/VoucherPostingArray   {"Account":"6000","CodeB":"100","DebetAmount":100.0,
                                                       "Text":"…","ReferenceNumber":"<idempotency key>"}   (per row)
    POST VoucherSet(Objkey='…')/IfsApp.VoucherEntryAssistantHandling.VoucherEntry_CreateVoucher   {}
         -> 200 {"value": <VoucherNo>}   or 400 naming company / account / period / imbalance
    POST VoucherSet(Objkey='…')/IfsApp.VoucherEntryAssistantHandling.VoucherEntry_RemoveTempVoucher -> 204

  ASSUMPTIONS: AccountingYear/AccountingPeriod are derived from VoucherDate (the virtual marks
  them ``editable = [false]``; if sent they must agree); VoucherStatus defaults to Approved,
  AmountMethod to NetAmountEntry, UseCorrectionRows to false (what ``_Default`` would give);
  the rows hang off the header by Objkey/ParentObjkey like IFS virtual arrays
  (AccountingPeriodsHandling ``TransactionsInProgressArray(Objkey) to (ParentObjkey)``) rather
  than by (Company, VoucherType, VoucherNo, AccountingYear) as the model's array says, since
  VoucherNo is empty until the voucher exists; rows are checked by CreateVoucher, not when saved
  (config ``check_rows_on_insert``); a successful CreateVoucher consumes the virtual, so a retry
  of the same call answers 404 and the client must look the voucher up (no idempotency in IFS,
  CONVENTIONS).

(b) ``ExternalVouchers.svc/ExternalVouchersSet(Company, LoadId, RecordNo)`` (MODEL
``ExternalVouchers.projection`` + ``ExtTransactions.entity``): one row per transaction;
RecordNo is server-assigned (``insertable = [false]``); ``Correction`` is mandatory; the date
is ``TransactionDate`` — ``VoucherDate`` and ``AccountingPeriod`` are derived
(IS_SERVER_GENERATED) and refused on insert; LoadId is at most 20 characters and upper case.
The load is turned into vouchers through ``ExternalVoucherLoadInformationHandling.svc``
(MODEL ``ExternalVoucherLoadInformationHandling.projection``: ``ExtLoadInfoSet`` with bound
actions ``DoCheckTransactions``, ``DoCreateVoucher``, ``DoRemoveErrorCodes``)::

    POST ExternalVouchers.svc/ExternalVouchersSet     {"Company":"10","LoadId":"PAYROLL-P1","Correction":false,
                                                       "TransactionDate":"2025-03-31","VoucherType":"Z",
                                                       "Account":"6000","CodeB":"100","DebetAmount":100.0, ...}
    POST ExternalVoucherLoadInformationHandling.svc/ExtLoadInfoSet(Company='10',LoadId='PAYROLL-P1')
         /IfsApp.ExternalVoucherLoadInformationHandling.ExtLoadInfo_DoCreateVoucher   (If-Match) -> 204

  The emulator's rule (ASSUMPTION, after EXTERNAL_VOUCHERS): rows group into one voucher per
  LoadGroupItem (rows without one: per TransactionDate + VoucherType); DoCheckTransactions marks
  every row of a failing group with ``LoadError`` (groups that pass become Checked); the load
  becomes vouchers only through DoCreateVoucher, which checks first and, if any group fails
  (unbalanced to the cent, unknown/invalid account or code part, period not Open, ...), creates
  nothing and answers 400 naming the reason ("Allow Partial Create" off); otherwise every group
  becomes a voucher (TransCode EXTERNAL), rows go to state ``Updated`` with VoucherType,
  VoucherNo and AccountingYear filled in, and the load to ``Created``. Rows cannot be added to,
  changed in or deleted from a Created load.

Reading back: ``VoucherHandling.svc/VoucherSet(Company, VoucherType, VoucherNo,
AccountingYear)`` (MODEL ``VoucherHandling.projection``: ``crud = Read, Update``; POST answers
405, ODP_RESPONSE_CODES) with rows in ``VoucherRowArray``. "Does my voucher exist?" can be asked
three ways: ``VoucherSet?$filter=VoucherText2 eq '<key>'`` (header text, confirmed attribute),
``VoucherSet?$filter=VoucherRowArray/any(r:r/ReferenceNumber eq '<key>')`` (ASSUMPTION: lambda
support), or per voucher ``VoucherSet(...)/VoucherRowArray?$filter=ReferenceNumber eq '<key>'``;
for route (b) also ``ExternalVouchersSet?$filter=LoadId eq '<LOADID>'``.
"""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sandbox.ifs_cloud import accounting, odata
from sandbox.ifs_cloud.odata import (BOOLEAN, DATE, ENUM, NUMBER, Action, Array, EntityType, Prop,
                                     Projection)
from sandbox.ifs_cloud.router import Ctx, check_required
from sandbox.ifs_cloud.world import CODE_PARTS

VOUCHER_STATUS = ["Approved", "NotApproved", "Error", "Cancelled", "AwaitingApproval",
                  "PartiallyApproved"]                       # VoucherStatus.enumeration (names)
#: VoucherStatus.enumeration DB values = the Voucher state machine's states (VoucherHandling
#: statemachine events use Objstate in ("Confirmed", "Waiting", "Error", ...)).
STATUS_TO_STATE = {"Approved": "Confirmed", "NotApproved": "Waiting", "Error": "Error",
                   "Cancelled": "Cancelled", "AwaitingApproval": "AwaitingApproval",
                   "PartiallyApproved": "PartiallyApproved"}
AMOUNT_METHOD = ["GrossAmountEntry", "NetAmountEntry"]      # DefAmountMethod.enumeration


def _row_props() -> list[Prop]:
    """Posting-row attributes (MODEL VoucherPosting / VoucherRow / GenLedVoucherRow)."""
    props = [Prop("Account", max_length=20, uppercase=True)]
    props += [Prop(f"Code{c}", max_length=20, uppercase=True) for c in CODE_PARTS]
    props += [Prop("CurrencyCode", max_length=3, uppercase=True), Prop("CurrencyRate", NUMBER),
              Prop("CurrencyDebetAmount", NUMBER), Prop("CurrencyCreditAmount", NUMBER),
              Prop("CurrencyAmount", NUMBER), Prop("DebetAmount", NUMBER), Prop("CreditAmount", NUMBER),
              Prop("Amount", NUMBER), Prop("Quantity", NUMBER),
              Prop("Text", max_length=100),                   # GenLedVoucherRow: Text maxlength 100
              Prop("ReferenceSerie", max_length=50),          # ASSUMPTION: length
              Prop("ReferenceNumber", max_length=50),         # ASSUMPTION: length
              Prop("OptionalCode", max_length=20, uppercase=True), Prop("ProjectActivityId", NUMBER),
              Prop("Correction", BOOLEAN),
              Prop("TransCode", max_length=10, insertable=False, updatable=False)]
    return props


# ---------------------------------------------------------------------------------------- (a) assistant
def _entry_create(ctx: Ctx, values: dict, parent) -> dict:
    world = ctx.world
    check_required(ctx.etype("VoucherEntry"), values)
    company = values["Company"]
    if world.company(company) is None:
        raise odata.business_error("CompanyFinance", "NOTEXIST", f"Company {company!r} does not exist.", ora=20111)
    if world.get("voucher_type", (company, values["VoucherType"])) is None:
        raise odata.business_error("VoucherType", "NOTEXIST",
                                   f"Voucher type {values['VoucherType']!r} does not exist in company {company}.",
                                   ora=20111)
    year, period = accounting.year_period(world, company, values["VoucherDate"])
    if year is None:
        raise odata.business_error("AccountingPeriod", "NOPERIOD",
                                   f"No accounting period in company {company} covers "
                                   f"{values['VoucherDate'].isoformat()}.")
    for name, derived in (("AccountingYear", year), ("AccountingPeriod", period)):
        if values.get(name) is not None and values[name] != derived:
            raise odata.business_error("Voucher", "WRONGPERIOD",
                                       f"{name} {values[name]} does not match voucher date "
                                       f"{values['VoucherDate'].isoformat()} in company {company} "
                                       f"(it falls in {int(year)}-{int(period):02d}).")
    rec = {"Objkey": uuid.uuid4().hex.upper(), "Company": company, "VoucherType": values["VoucherType"],
           "VoucherNo": None, "VoucherDate": values["VoucherDate"], "AccountingYear": year,
           "AccountingPeriod": period, "VoucherStatus": values.get("VoucherStatus") or "Approved",
           "AmountMethod": values.get("AmountMethod") or "NetAmountEntry",
           "UseCorrectionRows": bool(values.get("UseCorrectionRows")),
           "VoucherText2": values.get("VoucherText2"), "UserGroup": values.get("UserGroup") or "AC",
           "UpdateError": None}
    return world.put("voucher_entry", (rec["Objkey"],), rec)


def _entry_update(ctx: Ctx, rec: dict, changes: dict) -> None:
    if "VoucherDate" in changes:
        year, period = accounting.year_period(ctx.world, rec["Company"], changes["VoucherDate"])
        if year is None:
            raise odata.business_error("AccountingPeriod", "NOPERIOD",
                                       f"No accounting period in company {rec['Company']} covers "
                                       f"{changes['VoucherDate'].isoformat()}.")
        changes = {**changes, "AccountingYear": year, "AccountingPeriod": period}
    rec.update(changes)


def _postings(ctx: Ctx, entry: dict) -> list[dict]:
    rows = [r for r in ctx.world.rows("voucher_posting") if r["ParentObjkey"] == entry["Objkey"]]
    return sorted(rows, key=lambda r: r["RowNo"])


def _entry_delete(ctx: Ctx, rec: dict) -> None:
    for row in _postings(ctx, rec):
        ctx.world.remove("voucher_posting", (row["Objkey"],))
    ctx.world.remove("voucher_entry", (rec["Objkey"],))


def _posting_create(ctx: Ctx, values: dict, parent: dict | None) -> dict:
    world = ctx.world
    if parent is None:
        raise odata.bad_uri("Rows are created through VoucherSet(Objkey='…')/VoucherPostingArray.")
    if values.get("Company") not in (None, parent["Company"]):
        raise odata.business_error("VoucherRow", "WRONGCOMPANY",
                                   f"Row company {values['Company']} differs from the voucher's company "
                                   f"{parent['Company']}.")
    row_no = Decimal(len(_postings(ctx, parent)) + 1)
    rec = {p.name: values.get(p.name) for p in ctx.etype("VoucherPosting").props}
    rec.update({"Objkey": uuid.uuid4().hex.upper(), "ParentObjkey": parent["Objkey"],
                "Company": parent["Company"], "RowNo": row_no, "TransCode": "MANUAL",
                "Correction": bool(values.get("Correction"))})
    if world.config.get("check_rows_on_insert"):
        problems = accounting.check_posting(world, parent["Company"], None, parent["VoucherDate"],
                                            [{**rec, "_label": int(row_no)}], check_balance=False)
        if problems:
            raise problems[0].error()
    return world.put("voucher_posting", (rec["Objkey"],), rec)


def _posting_update(ctx: Ctx, rec: dict, changes: dict) -> None:
    rec.update(changes)


def _posting_delete(ctx: Ctx, rec: dict) -> None:
    ctx.world.remove("voucher_posting", (rec["Objkey"],))


def _create_voucher_action(ctx: Ctx, entry: dict, params: dict):
    """MODEL ``action CreateVoucher Number``: validate, create, return the voucher number."""
    world = ctx.world
    rows = [{**r, "_label": int(r["RowNo"])} for r in _postings(ctx, entry)]
    problems = accounting.check_posting(world, entry["Company"], entry["VoucherType"], entry["VoucherDate"],
                                        rows, label="voucher")
    if problems:
        world.counters["voucher_create_refusals"] += 1
        entry["UpdateError"] = problems[0].message
        world.touch(entry)
        raise problems[0].error()
    voucher = create_voucher(ctx, entry["Company"], entry["VoucherType"], entry["VoucherDate"], rows,
                             trans_code="MANUAL", status=entry["VoucherStatus"],
                             amount_method=entry["AmountMethod"], text=entry.get("VoucherText2"),
                             use_correction_rows=entry["UseCorrectionRows"])
    _entry_delete(ctx, entry)          # ASSUMPTION: the virtual is consumed
    return int(voucher["VoucherNo"])


def _remove_temp_voucher(ctx: Ctx, entry: dict, params: dict):
    """MODEL ``action RemoveTempVoucher``: discard the virtual and its rows."""
    _entry_delete(ctx, entry)
    return None


def create_voucher(ctx: Ctx, company: str, voucher_type: str, voucher_date: dt.date, rows: list[dict], *,
                   trans_code: str, status: str = "Approved", amount_method: str = "NetAmountEntry",
                   text: str | None = None, use_correction_rows: bool = False) -> dict:
    """Store a checked voucher (hold table) and its rows; the number comes from the
    (company, voucher type, year) series (ASSUMPTION: starting at config ``voucher_series_start``)."""
    world = ctx.world
    company_rec = world.company(company)
    year, period = accounting.year_period(world, company, voucher_date)
    number = Decimal(world.next_number(("voucher", company, voucher_type, int(year)),
                                       int(world.config.get("voucher_series_start", 1))))
    debit = credit = Decimal("0")
    for i, row in enumerate(rows, start=1):
        d, c = accounting.row_amounts(company_rec, row)
        debit += d
        credit += c
        stored = {p.name: row.get(p.name) for p in ctx.registry["VoucherHandling"].types["VoucherRow"].props}
        stored.update({"Company": company, "VoucherType": voucher_type, "VoucherNo": number,
                       "AccountingYear": year, "AccountingPeriod": period, "RowNo": Decimal(i),
                       "DebetAmount": d or None, "CreditAmount": c or None, "Amount": d - c,
                       "CurrencyCode": row.get("CurrencyCode") or company_rec["CurrencyCode"],
                       "TransCode": trans_code, "Correction": bool(row.get("Correction"))})
        if stored["CurrencyDebetAmount"] is None and stored["CurrencyCreditAmount"] is None \
                and stored["CurrencyCode"] == company_rec["CurrencyCode"]:
            stored["CurrencyDebetAmount"], stored["CurrencyCreditAmount"] = d or None, c or None
        stored["CurrencyAmount"] = (stored["CurrencyDebetAmount"] or 0) - (stored["CurrencyCreditAmount"] or 0)
        world.put("voucher_row", (company, voucher_type, number, year, Decimal(i)), stored)
    voucher = {"Company": company, "VoucherType": voucher_type, "VoucherNo": number, "AccountingYear": year,
               "AccountingPeriod": period, "VoucherDate": voucher_date, "VoucherStatus": status,
               "Objstate": STATUS_TO_STATE[status], "AmountMethod": amount_method,
               "UseCorrectionRows": use_correction_rows, "VoucherText2": text, "Userid": ctx.user,
               "DateReg": dt.date.today(), "FunctionGroup": "M" if trans_code == "MANUAL" else "Z",
               "InterimVoucher": False, "Balance": debit - credit, "CurrencyBalance": debit - credit,
               "VoucherUpdated": False}
    world.counters["vouchers_created"] += 1
    return world.put("voucher", (company, voucher_type, number, year), voucher)


def assistant_projection() -> Projection:
    entry = EntityType(
        name="VoucherEntry", table="voucher_entry", luname="Voucher",
        props=[Prop("Objkey", key=True, insertable=False, updatable=False, max_length=50),
               Prop("Company", required=True, max_length=20, uppercase=True, updatable=False),
               Prop("VoucherType", required=True, max_length=3, uppercase=True, updatable=False),
               Prop("VoucherNo", NUMBER, insertable=False, updatable=False),
               Prop("VoucherDate", DATE, required=True),
               Prop("AccountingYear", NUMBER, updatable=False),
               Prop("AccountingPeriod", NUMBER, updatable=False),
               Prop("VoucherStatus", ENUM, enum="VoucherStatus"),
               Prop("AmountMethod", ENUM, enum="DefAmountMethod"),
               Prop("UseCorrectionRows", BOOLEAN),
               Prop("VoucherText2", max_length=200), Prop("UserGroup", max_length=30, uppercase=True),
               Prop("UpdateError", max_length=2000, insertable=False, updatable=False)],
        arrays={"VoucherPostingArray": Array("VoucherPostingArray", "VoucherPosting", (("Objkey", "ParentObjkey"),))},
        actions={"CreateVoucher": Action("CreateVoucher", _create_voucher_action, returns=NUMBER),
                 "RemoveTempVoucher": Action("RemoveTempVoucher", _remove_temp_voucher)},
        create=_entry_create, update=_entry_update, delete=_entry_delete)
    posting = EntityType(
        name="VoucherPosting", table="voucher_posting", luname="VoucherRow",
        props=[Prop("Objkey", key=True, insertable=False, updatable=False, max_length=50),
               Prop("ParentObjkey", insertable=False, updatable=False, max_length=50),
               Prop("Company", max_length=20, uppercase=True, updatable=False),
               Prop("RowNo", NUMBER, insertable=False, updatable=False)] + _row_props(),
        create=_posting_create, update=_posting_update, delete=_posting_delete)
    return Projection(name="VoucherEntryAssistantHandling",
                      source=accounting.odata_src("VoucherEntryAssistantHandling.projection"),
                      sets={"VoucherSet": "VoucherEntry"},
                      types={"VoucherEntry": entry, "VoucherPosting": posting},
                      enums={"VoucherStatus": VOUCHER_STATUS, "DefAmountMethod": AMOUNT_METHOD})


# ---------------------------------------------------------------------------------------- VoucherHandling
def _voucher_update(ctx: Ctx, rec: dict, changes: dict) -> None:
    rec.update(changes)


def handling_projection() -> Projection:
    voucher = EntityType(
        name="VoucherEntry", table="voucher", luname="Voucher", crud=frozenset({"Read", "Update"}),
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("VoucherType", key=True, max_length=3, uppercase=True),
               Prop("VoucherNo", NUMBER, key=True),
               Prop("AccountingYear", NUMBER, key=True),
               Prop("AccountingPeriod", NUMBER, updatable=False),
               Prop("VoucherDate", DATE, updatable=False),              # ASSUMPTION: not updatable
               Prop("VoucherStatus", ENUM, enum="VoucherStatus", updatable=False),
               Prop("Objstate", ENUM, enum="VoucherState", updatable=False),
               Prop("AmountMethod", ENUM, enum="DefAmountMethod", updatable=False),
               Prop("UseCorrectionRows", BOOLEAN), Prop("VoucherText2", max_length=200),
               Prop("Userid", max_length=30, updatable=False), Prop("DateReg", DATE, updatable=False),
               Prop("FunctionGroup", max_length=10, updatable=False),
               Prop("InterimVoucher", BOOLEAN, updatable=False),
               Prop("Balance", NUMBER, updatable=False), Prop("CurrencyBalance", NUMBER, updatable=False)],
        arrays={"VoucherRowArray": Array("VoucherRowArray", "VoucherRow",
                                         (("Company", "Company"), ("VoucherType", "VoucherType"),
                                          ("VoucherNo", "VoucherNo"), ("AccountingYear", "AccountingYear")))},
        update=_voucher_update,
        # MODEL: where VOUCHER_UPDATED_DB='N' (vouchers still in the hold table; all of them here)
        where=lambda ctx, rec: not rec.get("VoucherUpdated"))
    row = EntityType(
        name="VoucherRow", table="voucher_row", luname="VoucherRow", crud=frozenset({"Read"}),
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("VoucherType", key=True, max_length=3, uppercase=True),
               Prop("VoucherNo", NUMBER, key=True), Prop("AccountingYear", NUMBER, key=True),
               Prop("RowNo", NUMBER, key=True), Prop("AccountingPeriod", NUMBER)] + _row_props())
    return Projection(name="VoucherHandling", source=accounting.odata_src("VoucherHandling.projection"),
                      sets={"VoucherSet": "VoucherEntry"},
                      types={"VoucherEntry": voucher, "VoucherRow": row},
                      enums={"VoucherStatus": VOUCHER_STATUS, "DefAmountMethod": AMOUNT_METHOD,
                             "VoucherState": ["Confirmed", "Waiting", "Error", "Cancelled",
                                              "AwaitingApproval", "PartiallyApproved"]})


# ---------------------------------------------------------------------------------------- (b) external vouchers
EXT_STATES = ["Loaded", "Checked", "Updated"]        # ExtTransactions.entity state machine
LOAD_STATES = ["Loaded", "LoadedWithErrors", "Checked", "PartlyChecked", "Created", "PartlyCreated"]


def _ext_create(ctx: Ctx, values: dict, parent) -> dict:
    world = ctx.world
    check_required(ctx.etype("ExtTransactions"), values)
    company, load_id = values["Company"], values["LoadId"]
    if world.company(company) is None:
        raise odata.business_error("CompanyFinance", "NOTEXIST", f"Company {company!r} does not exist.", ora=20111)
    load = world.get("ext_load", (company, load_id))
    if load is not None and load["ExtLoadState"] == "Created":
        raise odata.business_error("ExtLoadInfo", "LOADCREATED",
                                   f"Load {load_id} in company {company} is already Created; "
                                   f"transactions cannot be added to it.")
    if load is None:
        load = world.put("ext_load", (company, load_id), {
            "Company": company, "LoadId": load_id, "Userid": ctx.user, "ExtLoadState": "Loaded",
            "LoadDate": dt.date.today()})
    record_no = Decimal(world.next_number(("ext", company, load_id)))
    rec = {p.name: values.get(p.name) for p in ctx.etype("ExtTransactions").props}
    year, period = accounting.year_period(world, company, values["TransactionDate"])
    rec.update({"Company": company, "LoadId": load_id, "RecordNo": record_no, "Objstate": "Loaded",
                "VoucherDate": values["TransactionDate"], "AccountingYear": year,
                "AccountingPeriod": period, "LoadError": None, "VoucherNo": None,
                "UserGroup": values.get("UserGroup") or "AC"})
    load["ExtLoadState"] = "Loaded"
    world.touch(load)
    return world.put("ext_transaction", (company, load_id, record_no), rec)


def _ext_guard(ctx: Ctx, rec: dict, verb: str) -> None:
    if rec["Objstate"] == "Updated":
        raise odata.business_error("ExtTransactions", "UPDATED",
                                   f"Transaction {int(rec['RecordNo'])} of load {rec['LoadId']} in company "
                                   f"{rec['Company']} already made voucher {rec['VoucherType']} "
                                   f"{int(rec['VoucherNo'])}; it cannot be {verb}.")


def _ext_update(ctx: Ctx, rec: dict, changes: dict) -> None:
    _ext_guard(ctx, rec, "changed")
    rec.update(changes)
    if "TransactionDate" in changes:
        rec["VoucherDate"] = changes["TransactionDate"]
        rec["AccountingYear"], rec["AccountingPeriod"] = accounting.year_period(
            ctx.world, rec["Company"], changes["TransactionDate"])
    rec["Objstate"], rec["LoadError"] = "Loaded", None


def _ext_delete(ctx: Ctx, rec: dict) -> None:
    _ext_guard(ctx, rec, "deleted")
    ctx.world.remove("ext_transaction", (rec["Company"], rec["LoadId"], rec["RecordNo"]))


def _load_rows(ctx: Ctx, load: dict) -> list[dict]:
    rows = [r for r in ctx.world.rows("ext_transaction")
            if r["Company"] == load["Company"] and r["LoadId"] == load["LoadId"]]
    return sorted(rows, key=lambda r: r["RecordNo"])


def _groups(rows: list[dict]) -> dict[tuple, list[dict]]:
    """ASSUMPTION (grouping criterion of the load type): LoadGroupItem, else date + voucher type."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        key = ("G", r["LoadGroupItem"]) if r.get("LoadGroupItem") else ("D", r["TransactionDate"], r.get("VoucherType"))
        groups.setdefault(key, []).append(r)
    return groups


def _check_load(ctx: Ctx, load: dict) -> list[tuple[list[dict], list]]:
    """Check every pending group; mark rows (LoadError / Checked). Returns [(rows, problems)]."""
    world = ctx.world
    pending = [r for r in _load_rows(ctx, load) if r["Objstate"] != "Updated"]
    results = []
    for rows in _groups(pending).values():
        vtype = rows[0].get("VoucherType")
        problems = []
        if not vtype:
            problems.append(accounting.Problem("ExtTransactions", "NOVOUTYPE",
                                               f"Load {load['LoadId']} in company {load['Company']}: "
                                               f"transaction {int(rows[0]['RecordNo'])} has no VoucherType."))
        if len({r.get("VoucherType") for r in rows}) > 1 or len({r["TransactionDate"] for r in rows}) > 1:
            problems.append(accounting.Problem("ExtTransactions", "MIXEDGROUP",
                                               f"Load {load['LoadId']} in company {load['Company']}: load group "
                                               f"{rows[0].get('LoadGroupItem')} mixes voucher types or dates."))
        labelled = [{**r, "_label": int(r["RecordNo"])} for r in rows]
        problems += accounting.check_posting(world, load["Company"], vtype, rows[0]["TransactionDate"], labelled,
                                             label=f"load {load['LoadId']} group "
                                                   f"{rows[0].get('LoadGroupItem') or rows[0]['TransactionDate']}")
        for r in rows:
            own = [p for p in problems if p.row == int(r["RecordNo"])] or [p for p in problems if p.row is None]
            r["LoadError"] = own[0].message if own else (problems[0].message if problems else None)
            r["Objstate"] = "Loaded" if problems else "Checked"
            world.touch(r)
        results.append((rows, problems))
    passed = sum(1 for _, p in results if not p)
    load["ExtLoadState"] = ("Checked" if passed == len(results) else "PartlyChecked" if passed else "Loaded") \
        if results else load["ExtLoadState"]
    world.touch(load)
    return results


def _do_check(ctx: Ctx, load: dict, params: dict):
    """MODEL ``action DoCheckTransactions``: marks rows, answers 204 either way (EXTERNAL_VOUCHERS)."""
    _check_load(ctx, load)
    return None


def _do_create(ctx: Ctx, load: dict, params: dict):
    """MODEL ``action DoCreateVoucher``: all groups pass the check or nothing is created."""
    world = ctx.world
    results = _check_load(ctx, load)
    if not results:
        raise odata.business_error("ExtLoadInfo", "NOTRANSACTIONS",
                                   f"Load {load['LoadId']} in company {load['Company']} has no transactions "
                                   f"waiting to become vouchers.")
    failing = [p for _, probs in results for p in probs]
    if failing:
        world.counters["voucher_create_refusals"] += 1
        raise failing[0].error()
    for rows, _ in results:
        labelled = [{**r, "_label": int(r["RecordNo"])} for r in rows]
        voucher = create_voucher(ctx, load["Company"], rows[0]["VoucherType"], rows[0]["TransactionDate"],
                                 labelled, trans_code="EXTERNAL")
        for r in rows:
            r.update({"Objstate": "Updated", "VoucherNo": voucher["VoucherNo"],
                      "AccountingYear": voucher["AccountingYear"], "LoadError": None})
            world.touch(r)
    load["ExtLoadState"] = "Created"
    world.touch(load)
    return None


def _do_remove_errors(ctx: Ctx, load: dict, params: dict):
    """MODEL ``action DoRemoveErrorCodes``: clear LoadError on the load's transactions."""
    for r in _load_rows(ctx, load):
        if r["LoadError"]:
            r["LoadError"] = None
            ctx.world.touch(r)
    return None


def external_projections() -> list[Projection]:
    ext = EntityType(
        name="ExtTransactions", table="ext_transaction", luname="ExtTransactions",
        props=[Prop("Company", key=True, required=True, max_length=20, uppercase=True),
               Prop("LoadId", key=True, required=True, max_length=20, uppercase=True),
               Prop("RecordNo", NUMBER, key=True, insertable=False, updatable=False),
               Prop("Objstate", ENUM, enum="ExtTransactionsState", insertable=False, updatable=False),
               Prop("LoadGroupItem", max_length=50, uppercase=True),
               Prop("LoadError", max_length=2000, insertable=False, updatable=False),
               Prop("TransactionDate", DATE, required=True),        # ASSUMPTION: required here
               Prop("VoucherDate", DATE, insertable=False, updatable=False),
               Prop("LoadType", max_length=20), Prop("VoucherType", max_length=3, uppercase=True),
               Prop("VoucherNo", NUMBER, insertable=False, updatable=False),
               Prop("AccountingYear", NUMBER, insertable=False, updatable=False),
               Prop("AccountingPeriod", NUMBER, insertable=False, updatable=False),
               Prop("Account", required=True, max_length=20, uppercase=True)]
        + [Prop(f"Code{c}", max_length=20, uppercase=True) for c in CODE_PARTS]
        + [Prop("CurrencyDebetAmount", NUMBER), Prop("CurrencyCreditAmount", NUMBER),
           Prop("CurrencyAmount", NUMBER), Prop("DebetAmount", NUMBER), Prop("CreditAmount", NUMBER),
           Prop("Amount", NUMBER), Prop("CurrencyCode", max_length=3, uppercase=True),
           Prop("CurrencyRate", NUMBER), Prop("Quantity", NUMBER),
           Prop("ProcessCode", max_length=10, uppercase=True), Prop("OptionalCode", max_length=20, uppercase=True),
           Prop("Text", max_length=200), Prop("PartyType", max_length=20),
           Prop("ReferenceSerie", max_length=50), Prop("ReferenceNumber", max_length=50),
           Prop("Correction", BOOLEAN, required=True), Prop("UserGroup", max_length=30, uppercase=True)],
        create=_ext_create, update=_ext_update, delete=_ext_delete)
    # Correction is required=[true] in the projection: check_required treats False as a value.
    load = EntityType(
        name="ExtLoadInfo", table="ext_load", luname="ExtLoadInfo", crud=frozenset({"Read"}),
        props=[Prop("Company", key=True, max_length=20, uppercase=True),
               Prop("LoadId", key=True, max_length=20, uppercase=True),
               Prop("Userid", max_length=30), Prop("ExtLoadState", ENUM, enum="ExtLoadState"),
               Prop("LoadDate", DATE)],
        actions={"DoCheckTransactions": Action("DoCheckTransactions", _do_check, etag_required=True),
                 "DoCreateVoucher": Action("DoCreateVoucher", _do_create, etag_required=True),
                 "DoRemoveErrorCodes": Action("DoRemoveErrorCodes", _do_remove_errors, etag_required=True)})
    return [Projection(name="ExternalVouchers", source=accounting.odata_src("ExternalVouchers.projection"),
                       sets={"ExternalVouchersSet": "ExtTransactions"}, types={"ExtTransactions": ext},
                       enums={"ExtTransactionsState": EXT_STATES}),
            Projection(name="ExternalVoucherLoadInformationHandling",
                       source=accounting.odata_src("ExternalVoucherLoadInformationHandling.projection"),
                       sets={"ExtLoadInfoSet": "ExtLoadInfo"}, types={"ExtLoadInfo": load},
                       enums={"ExtLoadState": LOAD_STATES})]


def projections() -> list[Projection]:
    return [assistant_projection(), handling_projection(), *external_projections()]
