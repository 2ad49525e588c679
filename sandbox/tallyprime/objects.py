"""TDL objects of the TallyPrime emulator: the emulator's books seen as Tally exposes them to
inline TDL — objects with typed *methods* (``$Name``, ``$AlterID``, ``$AllInventoryEntries``)
and sub-collections.

Method names are matched case-insensitively and without spaces (``Is Deemed Positive`` =
``IsDeemedPositive``), as the NATIVEMETHOD lists of erpnext_tally_migrator ``queries.py``
(https://github.com/jobin05/erpnext_tally_migrator) write them. Every value is a :class:`V`
with Tally's data type (``String``, ``Number``, ``Date``, ``Logical``, ``Amount``,
``Quantity``, ``Rate``) — the ``TYPE`` attribute real exports carry (``<ALTERID
TYPE="Number"> 210</ALTERID>``, ``<STARTINGFROM TYPE="Date">20260401</STARTINGFROM>``; live
TallyPrime captures in RishieRich/ArcAstraOneAru ``connector/tests/fixtures/``; data types
String/Logical/Number/Amount/Quantity/Rate/Date as tally-database-loader's reader
``parseTallyDataTypeValue`` distinguishes them, ``dist/tally.mjs``).

Method sets per object type follow tally-database-loader's ``tally-export-config.yaml``
(``mst_*``/``trn_*`` field lists) and TallyConnector's TallyPrime 6 voucher resource. Two live
findings of a third-party client (``buildCollectionRequest`` comments, "verified live"):
``FETCH *`` returns every scalar method but *not* a voucher's entry lists nor a ledger's
``ClosingBalance`` (:data:`NOT_IN_STAR`), and an unknown method is silently left out ("an
unsupported native method ... fails open").

ASSUMPTIONs: a sub-object (a ledger entry, an inventory line) answers a method it lacks from
its voucher (what tally-database-loader relies on when it reads ``$Guid`` on
``Voucher.AllLedgerEntries``); ``AllLedgerEntries`` of an invoice voucher is its
``LEDGERENTRIES`` followed by the items' accounting allocations; ledger and stock balances are
computed over all non-cancelled, non-optional vouchers (no period, no opening balances).
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, NamedTuple

from .company import Company

SYSNAME_MARK = "\x04 "          # $$SysName:X is "\x04 X"; rendered as "&#4; X" (real exports)
PRIMARY = SYSNAME_MARK + "Primary"


class V(NamedTuple):
    """A typed TDL value. ``value``: str (String), Decimal (Number, Amount), dt.date or None
    (Date), bool (Logical), ``(Decimal, unit)`` (Quantity, Rate). ``type`` ``"List"`` holds a
    list of :class:`Obj` or of str (a plain string list such as ``MAILINGNAME.LIST``)."""
    type: str
    value: Any


def s(text) -> V:
    return V("String", "" if text is None else str(text))


def n(num) -> V:
    return V("Number", Decimal(num))


def b(flag) -> V:
    return V("Logical", bool(flag))


def amt(value) -> V:
    return V("Amount", None if value is None else Decimal(value))


def d(yyyymmdd: str | None) -> V:
    if not yyyymmdd:
        return V("Date", None)
    return V("Date", dt.datetime.strptime(yyyymmdd, "%Y%m%d").date())


def parent_of(name: str) -> V:
    """A parent method: the root reads ``$$SysName:Primary`` (exported ``&#4; Primary``)."""
    return s(name if name else PRIMARY)


def canon(name: str) -> str:
    """A method name as the emulator keys it: lower case, no spaces."""
    return name.replace(" ", "").replace("_", "").lower()


# Methods left out of FETCH * (live finding, see module doc).
NOT_IN_STAR = {"closingbalance"}

# List methods and the tag their items are written under (``<TAG>.LIST``).
LIST_TAGS = {"allledgerentries": "ALLLEDGERENTRIES", "ledgerentries": "LEDGERENTRIES",
             "allinventoryentries": "ALLINVENTORYENTRIES", "inventoryentries": "INVENTORYENTRIES",
             "batchallocations": "BATCHALLOCATIONS", "accountingallocations": "ACCOUNTINGALLOCATIONS",
             "categoryallocations": "CATEGORYALLOCATIONS",
             "costcentreallocations": "COSTCENTREALLOCATIONS", "billallocations": "BILLALLOCATIONS",
             "mailingname": "MAILINGNAME"}

TYPE_TAGS = {"company": "COMPANY", "group": "GROUP", "ledger": "LEDGER",
             "costcategory": "COSTCATEGORY", "costcentre": "COSTCENTRE",
             "vouchertype": "VOUCHERTYPE", "unit": "UNIT", "godown": "GODOWN",
             "stockgroup": "STOCKGROUP", "stockitem": "STOCKITEM", "voucher": "VOUCHER"}

# Collection TYPE names (and the spellings real clients use) → object type.
TYPE_ALIASES = {"company": "company", "companies": "company", "group": "group", "groups": "group",
                "ledger": "ledger", "ledgers": "ledger", "costcategory": "costcategory",
                "costcentre": "costcentre", "costcenter": "costcentre",
                "vouchertype": "vouchertype", "unit": "unit", "units": "unit",
                "godown": "godown", "godowns": "godown", "stockgroup": "stockgroup",
                "stockitem": "stockitem", "stockitems": "stockitem", "voucher": "voucher",
                "vouchers": "voucher"}

# Primary groups whose ledgers are revenue (profit and loss) accounts.
REVENUE_GROUPS = {"direct expenses", "direct incomes", "indirect expenses", "indirect incomes",
                  "purchase accounts", "sales accounts"}


def usable(v: dict) -> bool:
    """A voucher that counts in balances (not cancelled, not optional)."""
    return not v.get("is_cancelled") and not v.get("is_optional")


class Obj:
    """One TDL object: ``kind`` (``voucher``, ``ledger``, ``inventoryentry``…), its stored
    ``data``, the ``company`` and the ``parent`` object (for sub-objects). ``extra`` holds
    methods added by a collection's COMPUTE/BY/AGGRCOMPUTE."""

    __slots__ = ("kind", "data", "company", "parent", "extra", "emulator")

    def __init__(self, kind: str, data: dict, company: Company | None, parent: "Obj | None" = None,
                 emulator=None):
        self.kind, self.data, self.company, self.parent = kind, data, company, parent
        self.emulator = emulator if emulator is not None else (parent.emulator if parent else None)
        self.extra: dict[str, V] = {}

    # ------------------------------------------------------------------ access
    def tag(self) -> str:
        return TYPE_TAGS.get(self.kind, "OBJECT")

    def attrs(self) -> list[tuple[str, str]]:
        """Attributes of the object's element in an export."""
        if self.kind == "voucher":
            v = self.data
            view = "Invoice Voucher View" if v.get("is_invoice") else "Accounting Voucher View"
            return [("REMOTEID", v.get("remote_id", "")), ("VCHTYPE", v["type"]),
                    ("ACTION", "Create"), ("OBJVIEW", view)]
        if self.kind == "company":
            return [("NAME", self.data.name), ("RESERVEDNAME", "")]
        if self.kind in TYPE_TAGS:
            return [("NAME", self.data.get("name", "")), ("RESERVEDNAME", "")]
        return []

    def method(self, name: str) -> V | None:
        """The value of method ``name`` on this object (``None``: the object has no such
        method)."""
        key = canon(name)
        if key in self.extra:
            return self.extra[key]
        getter = METHODS.get(self.kind, {}).get(key)
        if getter is None:
            return None
        return getter(self)

    def lookup(self, name: str) -> V | None:
        """``$name`` as TDL resolves it: this object, then its parents (ASSUMPTION, module
        doc)."""
        obj: Obj | None = self
        while obj is not None:
            value = obj.method(name)
            if value is not None:
                return value
            obj = obj.parent
        return None

    def all_methods(self, *, star: bool = False) -> list[str]:
        """The method names written when an object is exported whole (a sub-object of a
        fetched list, ``FETCH *`` with ``star``)."""
        names = list(FULL.get(self.kind, ()))
        if star:
            names = [m for m in names if m not in NOT_IN_STAR and m not in LIST_TAGS]
        return names

    # ------------------------------------------------------------------ helpers
    def sub(self, kind: str, items) -> V:
        return V("List", [Obj(kind, i, self.company, self) for i in items])


# --------------------------------------------------------------------------- getters

def _common() -> dict:
    return {"name": lambda o: s(o.data["name"]), "guid": lambda o: s(o.data["guid"]),
            "masterid": lambda o: n(o.data["master_id"]),
            "alterid": lambda o: n(o.data["alter_id"])}


def _ledger_balance(o: Obj) -> V:
    name = o.data["name"]
    total = Decimal(0)
    for v in o.company.vouchers:
        if not usable(v):
            continue
        for e in all_ledger_entries(v):
            if e["ledger"] == name:
                total += e["amount"]
    return amt(total.quantize(Decimal("0.01")))


def _root_group(company: Company, group: str) -> str:
    seen = set()
    while group and group.casefold() in company.groups and group.casefold() not in seen:
        seen.add(group.casefold())
        parent = company.groups[group.casefold()]["parent"]
        if not parent:
            return group
        group = parent
    return group


def stock_position(company: Company, item: str) -> tuple[Decimal, Decimal]:
    """``(closing quantity, average inward rate)`` of a stock item over usable vouchers."""
    qty, in_qty, in_value = Decimal(0), Decimal(0), Decimal(0)
    for v in company.vouchers:
        if not usable(v):
            continue
        for line in v.get("inventory", ()):
            if line["stock_item"] != item:
                continue
            if line["is_deemed_positive"]:
                qty += line["qty"]
                in_qty += line["qty"]
                in_value += abs(line["amount"])
            else:
                qty -= line["qty"]
    rate = (in_value / in_qty).quantize(Decimal("0.01")) if in_qty else Decimal("0.00")
    return qty, rate


def unit_decimals(company: Company | None, unit: str) -> int:
    if company is None or not unit:
        return 0
    u = company.units.get(unit.casefold())
    return u["decimals"] if u else 0


def all_ledger_entries(v: dict) -> list[dict]:
    """A voucher's ``AllLedgerEntries`` (see the module doc)."""
    entries = list(v["entries"])
    for line in v.get("inventory", ()):
        for a in line["accounting"]:
            entries.append({"ledger": a["ledger"], "amount": a["amount"],
                            "is_deemed_positive": a["is_deemed_positive"], "allocations": [],
                            "is_party": False})
    return entries


def _fy_bounds(day: dt.date) -> tuple[dt.date, dt.date]:
    """The April–March financial year holding ``day`` (Indian default, ASSUMPTION)."""
    start = dt.date(day.year if day.month >= 4 else day.year - 1, 4, 1)
    return start, dt.date(start.year + 1, 3, 31)


def company_period(company: Company) -> tuple[dt.date, dt.date]:
    """The company's current period: the financial year of its latest voucher (of its books'
    beginning when it has none) — ASSUMPTION for Tally's "current period"."""
    last = max((v["date"] for v in company.vouchers), default=company.books_from)
    return _fy_bounds(dt.datetime.strptime(last, "%Y%m%d").date())


def _voucher_methods() -> dict:
    def party_entries(o):
        v = o.data
        return o.sub("ledgerentry", [dict(e, _party_bill=v.get("reference") or v["number"],
                                          _date=v["date"]) for e in v["entries"]])
    return {
        "date": lambda o: d(o.data["date"]), "effectivedate": lambda o: d(o.data["date"]),
        "vouchertypename": lambda o: s(o.data["type"]),
        "vouchernumber": lambda o: s(o.data["number"]),
        "reference": lambda o: s(o.data.get("reference", "")),
        "referencedate": lambda o: d(o.data.get("reference_date") or None),
        "narration": lambda o: s(o.data["narration"]),
        "partyledgername": lambda o: s(o.data.get("party_ledger", "")),
        "partyname": lambda o: s(o.data.get("party_ledger", "")),
        "isinvoice": lambda o: b(o.data.get("is_invoice")),
        "iscancelled": lambda o: b(o.data.get("is_cancelled")),
        "isoptional": lambda o: b(o.data.get("is_optional")),
        "persistedview": lambda o: s("Invoice Voucher View" if o.data.get("is_invoice")
                                     else "Accounting Voucher View"),
        "remoteid": lambda o: s(o.data.get("remote_id", "")),
        "guid": lambda o: s(o.data["guid"]), "masterid": lambda o: n(o.data["master_id"]),
        "alterid": lambda o: n(o.data["alter_id"]),
        "ledgerentries": party_entries,
        "allledgerentries": lambda o: o.sub("ledgerentry", all_ledger_entries(o.data)),
        "allinventoryentries": lambda o: o.sub("inventoryentry", o.data.get("inventory", [])),
        "inventoryentries": lambda o: o.sub("inventoryentry", o.data.get("inventory", [])),
    }


def _qty(o: Obj, qty: Decimal, unit: str) -> V:
    return V("Quantity", (qty, unit))


METHODS: dict[str, dict] = {
    "company": {
        "name": lambda o: s(o.data.name), "guid": lambda o: s(o.data.guid_prefix),
        "booksfrom": lambda o: d(o.data.books_from),
        "startingfrom": lambda o: V("Date", company_period(o.data)[0]),
        "endingat": lambda o: V("Date", company_period(o.data)[1]),
        "altmstid": lambda o: n(o.data.last_alter_ids()[0]),
        "altvchid": lambda o: n(o.data.last_alter_ids()[1]),
        "lastvoucherdate": lambda o: d(max((v["date"] for v in o.data.vouchers), default=None)),
    },
    "group": {**_common(), "parent": lambda o: parent_of(o.data["parent"]),
              "isrevenue": lambda o: b(_root_group(o.company, o.data["name"]).casefold()
                                      in REVENUE_GROUPS)},
    "ledger": {**_common(), "parent": lambda o: parent_of(o.data["parent"]),
               "iscostcentreson": lambda o: b(o.data.get("cost_centres_on")),
               "isrevenue": lambda o: b(_root_group(o.company, o.data["parent"]).casefold()
                                       in REVENUE_GROUPS),
               "openingbalance": lambda o: amt("0.00"),
               "closingbalance": _ledger_balance},
    "costcategory": _common(),
    "costcentre": {**_common(), "parent": lambda o: parent_of(o.data.get("parent", "")),
                   "category": lambda o: s(o.data.get("category", "")),
                   "mailingname": lambda o: s(o.data.get("mailing_name") or ""),
                   "forpayroll": lambda o: b(o.data.get("for_payroll")),
                   "isemployeegroup": lambda o: b(o.data.get("is_employee_group")),
                   "dateofjoin": lambda o: d(o.data.get("date_of_join") or None),
                   "deactivationdate": lambda o: d(o.data.get("deactivation_date") or None),
                   "designation": lambda o: s(o.data.get("designation") or ""),
                   "emailid": lambda o: s(o.data.get("email_id") or "")},
    "vouchertype": {**_common(),
                    "parent": lambda o: s(o.data.get("parent") or o.data["name"]),
                    "numberingmethod": lambda o: s("Automatic"),
                    "affectsstock": lambda o: b(o.company.base_voucher_type(o.data["name"]) in (
                        "Purchase", "Sales", "Debit Note", "Credit Note", "Stock Journal",
                        "Receipt Note", "Delivery Note", "Rejections In", "Rejections Out"))},
    "unit": {**_common(), "symbol": lambda o: s(o.data["name"]),
             "formalname": lambda o: s(o.data.get("formal_name", "")),
             "issimpleunit": lambda o: b(True),
             "decimalplaces": lambda o: n(o.data.get("decimals", 0))},
    "godown": {**_common(), "parent": lambda o: parent_of(o.data.get("parent", ""))},
    "stockgroup": {**_common(), "parent": lambda o: parent_of(o.data.get("parent", ""))},
    "stockitem": {**_common(), "parent": lambda o: parent_of(o.data.get("parent", "")),
                  "baseunits": lambda o: s(o.data.get("base_units", "")),
                  "mailingname": lambda o: V("List", [o.data["part_no"]] if o.data.get("part_no")
                                             else []),
                  "openingbalance": lambda o: _qty(o, Decimal(0), o.data.get("base_units", "")),
                  "closingbalance": lambda o: _qty(o, stock_position(o.company, o.data["name"])[0],
                                                   o.data.get("base_units", "")),
                  "closingrate": lambda o: V("Rate", (stock_position(o.company, o.data["name"])[1],
                                                      o.data.get("base_units", ""))),
                  "closingvalue": lambda o: amt(-(lambda q, r: (q * r).quantize(Decimal("0.01")))(
                      *stock_position(o.company, o.data["name"])))},
    "voucher": _voucher_methods(),
    "ledgerentry": {
        "ledgername": lambda o: s(o.data["ledger"]),
        "isdeemedpositive": lambda o: b(o.data["is_deemed_positive"]),
        "ispartyledger": lambda o: b(o.data.get("is_party")),
        "amount": lambda o: amt(o.data["amount"]),
        "categoryallocations": lambda o: o.sub("categoryallocation", _categories(o.data)),
        "billallocations": lambda o: o.sub("billallocation", [
            {"name": o.data["_party_bill"], "billtype": "New Ref", "amount": o.data["amount"]}]
            if o.data.get("is_party") and "_party_bill" in o.data else []),
    },
    "categoryallocation": {
        "category": lambda o: s(o.data["category"]),
        "isdeemedpositive": lambda o: b(o.parent.data["is_deemed_positive"]),
        "costcentreallocations": lambda o: o.sub("costcentreallocation", o.data["centres"]),
    },
    "costcentreallocation": {"name": lambda o: s(o.data["cost_centre"]),
                             "amount": lambda o: amt(o.data["amount"])},
    "billallocation": {"name": lambda o: s(o.data["name"]), "billtype": lambda o: s(o.data["billtype"]),
                       "amount": lambda o: amt(o.data["amount"])},
    "inventoryentry": {
        "stockitemname": lambda o: s(o.data["stock_item"]),
        "isdeemedpositive": lambda o: b(o.data["is_deemed_positive"]),
        "rate": lambda o: V("Rate", (o.data["rate"], o.data["unit"])),
        "actualqty": lambda o: _qty(o, o.data["qty"], o.data["unit"]),
        "billedqty": lambda o: _qty(o, o.data["qty"], o.data["unit"]),
        "amount": lambda o: amt(o.data["amount"]),
        "godownname": lambda o: s(o.data["batches"][0]["godown"] if o.data["batches"] else ""),
        "batchallocations": lambda o: o.sub("batchallocation", [
            dict(bt, unit=o.data["unit"]) for bt in o.data["batches"]]),
        "accountingallocations": lambda o: o.sub("accountingallocation", o.data["accounting"]),
    },
    "batchallocation": {
        "godownname": lambda o: s(o.data["godown"]), "batchname": lambda o: s(o.data["batch"]),
        "amount": lambda o: amt(o.data["amount"]),
        "actualqty": lambda o: _qty(o, o.data["qty"], o.data["unit"]),
        "billedqty": lambda o: _qty(o, o.data["qty"], o.data["unit"]),
    },
    "accountingallocation": {
        "ledgername": lambda o: s(o.data["ledger"]),
        "isdeemedpositive": lambda o: b(o.data["is_deemed_positive"]),
        "amount": lambda o: amt(o.data["amount"]),
    },
}


def _categories(entry: dict) -> list[dict]:
    cats: dict[str, list] = {}
    for a in entry.get("allocations", ()):
        cats.setdefault(a["category"], []).append(a)
    return [{"category": c, "centres": allocs} for c, allocs in cats.items()]


# Methods written when an object is exported whole, in Tally's order (ASSUMPTION: the order of
# TallyConnector's V6 resources for vouchers; name-first for masters).
FULL: dict[str, tuple[str, ...]] = {
    "company": ("name", "guid", "booksfrom", "startingfrom", "endingat", "altmstid", "altvchid"),
    "group": ("name", "parent", "isrevenue", "guid", "masterid", "alterid"),
    "ledger": ("name", "parent", "iscostcentreson", "isrevenue", "openingbalance",
               "closingbalance", "guid", "masterid", "alterid"),
    "costcategory": ("name", "guid", "masterid", "alterid"),
    "costcentre": ("name", "parent", "category", "mailingname", "forpayroll", "isemployeegroup",
                   "dateofjoin", "deactivationdate", "designation", "emailid", "guid",
                   "masterid", "alterid"),
    "vouchertype": ("name", "parent", "numberingmethod", "affectsstock", "guid", "masterid",
                    "alterid"),
    "unit": ("name", "formalname", "issimpleunit", "decimalplaces", "guid", "masterid",
             "alterid"),
    "godown": ("name", "parent", "guid", "masterid", "alterid"),
    "stockgroup": ("name", "parent", "guid", "masterid", "alterid"),
    "stockitem": ("name", "parent", "baseunits", "mailingname", "openingbalance", "guid",
                  "masterid", "alterid"),
    "voucher": ("date", "guid", "masterid", "alterid", "vouchertypename", "vouchernumber",
                "reference", "partyledgername", "persistedview", "isinvoice", "isoptional",
                "iscancelled", "narration", "remoteid", "ledgerentries", "allinventoryentries"),
    "ledgerentry": ("ledgername", "isdeemedpositive", "ispartyledger", "amount",
                    "categoryallocations", "billallocations"),
    "categoryallocation": ("category", "isdeemedpositive", "costcentreallocations"),
    "costcentreallocation": ("name", "amount"),
    "billallocation": ("name", "billtype", "amount"),
    "inventoryentry": ("stockitemname", "isdeemedpositive", "rate", "actualqty", "billedqty",
                       "amount", "batchallocations", "accountingallocations"),
    "batchallocation": ("godownname", "batchname", "amount", "actualqty", "billedqty"),
    "accountingallocation": ("ledgername", "isdeemedpositive", "amount"),
}

# Default methods of a collection without FETCH (ASSUMPTION): the identity of each object.
DEFAULT_FETCH = {"voucher": ("date", "vouchertypename", "vouchernumber", "guid", "masterid",
                             "alterid"),
                 "company": ("name", "guid", "startingfrom")}


def objects_of(company: Company | None, kind: str, emulator=None) -> list[Obj]:
    """Every object of ``kind`` in ``company`` (``company`` kind: the loaded companies)."""
    if kind == "company":
        return [Obj("company", c, c, emulator=emulator) for key, c in emulator.companies.items()
                if key in emulator.loaded]
    if kind == "voucher":
        return [Obj("voucher", v, company, emulator=emulator) for v in company.vouchers]
    table = {"group": company.groups, "ledger": company.ledgers,
             "costcategory": company.cost_categories, "costcentre": company.cost_centres,
             "vouchertype": company.voucher_types, "unit": company.units,
             "godown": company.godowns, "stockgroup": company.stock_groups,
             "stockitem": company.stock_items}[kind]
    return [Obj(kind, o, company, emulator=emulator) for o in table.values()]
