"""Company state of the TallyPrime emulator: one :class:`Company` per set of books.

A company holds its masters (groups, cost categories, cost centres, ledgers, voucher types)
and vouchers, each with the GUID, MASTERID and ALTERID Tally gives every object: MASTERID is
stable per object, ALTERID a per-company counter bumped by every create and alter
("Change tracking" as read by tally-database-loader, https://github.com/dhananjay1405/tally-database-loader
``src/tally.mts`` ``updateLastAlterId``, ``docs/incremental-sync.md``). A new company starts
with Tally's 28 predefined groups, the "Primary Cost Category", the ``Cash`` and
``Profit & Loss A/c`` ledgers, the predefined voucher types and the ``Main Location`` godown
(the one godown of a company that keeps none of its own; a third-party report builder notes a
live "Godown Summary" "verified ... against a company with one godown ("Main Location")").
ASSUMPTION: the emulator creates it with the first inventory object (stock item, unit,
inventory voucher), so a company without inventory keeps the MASTERIDs it always had.

Inventory (the purchase side of the books): units (``Nos``, ``Kg``... with their decimal
places), godowns, stock groups and stock items (``BASEUNITS``, the part number, a parent stock
group), as tally-database-loader reads them (``mst_uom``, ``mst_godown``, ``mst_stock_group``,
``mst_stock_item`` in https://github.com/dhananjay1405/tally-database-loader
``tally-export-config.yaml``). Invoice-mode vouchers (Purchase, Debit Note) hold the party and
tax lines in ``entries`` (``LEDGERENTRIES.LIST``) and the items in ``inventory``
(``ALLINVENTORYENTRIES.LIST`` with ``BATCHALLOCATIONS.LIST``/``ACCOUNTINGALLOCATIONS.LIST``;
layout of Accounting-Companion/TallyConnector's TallyPrime 6 test resource
``src/Tests/TallyConnector.XmlTests/Resources/TallyPrime/V6/Voucher/Vouchers_Purchase_complete.xml``).

A company may be protected by a Tally user name and password (see :attr:`Company.username`;
what the emulator makes of them is in :mod:`sandbox.tallyprime.emulator`).
"""
from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal, InvalidOperation

DEFAULT_COMPANIES = [{"name": "Demo Trading Co", "books_from": "20200401"}]

# Tally's 28 predefined groups: 15 primary, 13 sub-groups (name, parent; "" = Primary).
PREDEFINED_GROUPS: list[tuple[str, str]] = [
    ("Branch / Divisions", ""), ("Capital Account", ""), ("Current Assets", ""),
    ("Current Liabilities", ""), ("Direct Expenses", ""), ("Direct Incomes", ""),
    ("Fixed Assets", ""), ("Indirect Expenses", ""), ("Indirect Incomes", ""),
    ("Investments", ""), ("Loans (Liability)", ""), ("Misc. Expenses (ASSET)", ""),
    ("Purchase Accounts", ""), ("Sales Accounts", ""), ("Suspense A/c", ""),
    ("Bank Accounts", "Current Assets"), ("Bank OD A/c", "Loans (Liability)"),
    ("Cash-in-Hand", "Current Assets"), ("Deposits (Asset)", "Current Assets"),
    ("Duties & Taxes", "Current Liabilities"), ("Loans & Advances (Asset)", "Current Assets"),
    ("Provisions", "Current Liabilities"), ("Reserves & Surplus", "Capital Account"),
    ("Secured Loans", "Loans (Liability)"), ("Stock-in-Hand", "Current Assets"),
    ("Sundry Creditors", "Current Liabilities"), ("Sundry Debtors", "Current Assets"),
    ("Unsecured Loans", "Loans (Liability)"),
]
PREDEFINED_LEDGERS = [("Cash", "Cash-in-Hand"), ("Profit & Loss A/c", "")]
PREDEFINED_VOUCHER_TYPES = ["Contra", "Credit Note", "Debit Note", "Delivery Note", "Journal",
                            "Memorandum", "Payment", "Payroll", "Purchase", "Purchase Order",
                            "Receipt", "Receipt Note", "Rejections In", "Rejections Out",
                            "Reversing Journal", "Sales", "Sales Order", "Stock Journal",
                            "Attendance", "Physical Stock"]
PRIMARY_COST_CATEGORY = "Primary Cost Category"
MAIN_LOCATION = "Main Location"
PRIMARY_BATCH = "Primary Batch"  # batch name of an item without batches (TallyConnector V6 resource)
# Base voucher types whose vouchers move stock in (purchases) or out (purchase returns).
INWARD_BASES = ("Purchase",)
OUTWARD_BASES = ("Debit Note",)
# Voucher types carried as sub-types of another (parent = base type), so ``$$IsPurchase`` and
# friends see through a company's own types ("GST Purchase" under Purchase).

# Payroll fields of a cost centre (employees are cost centres with FORPAYROLL, fields as in
# tally-database-loader's tally-export-config.yaml ``mst_employee`` and TallyConnector's
# EmployeeGroup.cs): XML tag → stored key; which are dates and which Yes/No flags.
CENTRE_FIELDS = {"FORPAYROLL": "for_payroll", "ISEMPLOYEEGROUP": "is_employee_group",
                 "MAILINGNAME": "mailing_name", "DATEOFJOIN": "date_of_join",
                 "DESIGNATION": "designation", "DEACTIVATIONDATE": "deactivation_date",
                 "EMAILID": "email_id"}
CENTRE_DATES = ("DATEOFJOIN", "DEACTIVATIONDATE")
CENTRE_FLAGS = ("FORPAYROLL", "ISEMPLOYEEGROUP")


class ImportFailure(Exception):
    """One object (or the whole request's company) refused; the message is the LINEERROR text."""


class AuthFailure(ImportFailure):
    """The request did not carry the company's user name and password (or carried wrong ones);
    the message is the refusal text (see :mod:`sandbox.tallyprime.emulator`)."""


def parse_decimal(value, what: str) -> Decimal:
    """``value`` (str, int or Decimal; never float) as a Decimal; refused with
    ``Invalid <what> 'X'`` (emulator wording)."""
    if isinstance(value, float):
        raise ImportFailure(f"Invalid {what} '{value}' (send a string, not a float)")
    try:
        d = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ImportFailure(f"Invalid {what} '{value}'") from None
    if not d.is_finite():
        raise ImportFailure(f"Invalid {what} '{value}'")
    return d


class Company:
    """One company's books: masters, vouchers and its MASTERID/ALTERID counters.

    Tables map the casefolded name to the object (a dict with ``name``, ``master_id``,
    ``alter_id``, ``guid`` and its own fields); ``vouchers`` is a list in creation order;
    ``vch_numbers`` the last auto-number per voucher type. ``books_from`` is ``YYYYMMDD``.
    """

    def __init__(self, name: str, books_from: str, *, username: str | None = None,
                 password: str | None = None):
        self.name = name
        self.books_from = books_from
        #: Tally user name and password of a company under security control (None: none).
        self.username = username or None
        self.password = password if username else None
        self.guid_prefix = str(uuid.uuid5(uuid.NAMESPACE_DNS, "sandbox.tally." + name))
        self.master_id = 0
        self.alter_id = 0
        self.groups: dict[str, dict] = {}
        self.cost_categories: dict[str, dict] = {}
        self.cost_centres: dict[str, dict] = {}
        self.ledgers: dict[str, dict] = {}
        self.voucher_types: dict[str, dict] = {}
        self.vouchers: list[dict] = []
        self.vch_numbers: dict[str, int] = {}
        self.units: dict[str, dict] = {}
        self.godowns: dict[str, dict] = {}
        self.stock_groups: dict[str, dict] = {}
        self.stock_items: dict[str, dict] = {}
        #: ``[{"kind", "name"/"guid", "master_id", "alter_id"}]`` of deleted objects (sandbox state)
        self.deleted: list[dict] = []
        self._deleted_max = {"master": 0, "voucher": 0}
        for name_, parent in PREDEFINED_GROUPS:
            self._new(self.groups, {"name": name_, "parent": parent})
        self._new(self.cost_categories, {"name": PRIMARY_COST_CATEGORY})
        for name_, parent in PREDEFINED_LEDGERS:
            self._new(self.ledgers, {"name": name_, "parent": parent, "cost_centres_on": False})
        for name_ in PREDEFINED_VOUCHER_TYPES:
            self._new(self.voucher_types, {"name": name_, "parent": ""})

    def _ids(self, obj: dict) -> dict:
        """Give ``obj`` the next MASTERID and ALTERID and its GUID
        (``<company guid prefix>-<masterid as 8 hex digits>``, the shape of a real GUID such as
        ``52889497-…-00001018``); returns it."""
        self.master_id += 1
        self.alter_id += 1
        obj["master_id"] = self.master_id
        obj["alter_id"] = self.alter_id
        obj["guid"] = f"{self.guid_prefix}-{self.master_id:08x}"
        return obj

    def _new(self, table: dict, obj: dict) -> dict:
        """Store a new master in ``table`` under its casefolded name, with fresh ids."""
        table[obj["name"].casefold()] = self._ids(obj)
        return obj

    def touch(self, obj: dict) -> None:
        """Record an alteration: a new ALTERID (MASTERID and GUID stay)."""
        self.alter_id += 1
        obj["alter_id"] = self.alter_id

    def last_alter_ids(self) -> tuple[int, int]:
        """``($AltMstId, $AltVchId)``: the last master and voucher AlterIDs, which
        tally-database-loader compares to decide whether to sync. ASSUMPTION: taken as the
        highest AlterID among existing objects, so a deleted object's AlterID is not
        remembered (real Tally's counter only grows)."""
        masters = max((o["alter_id"] for t in self.master_tables() for o in t.values()),
                      default=0)
        vouchers = max((v["alter_id"] for v in self.vouchers), default=0)
        # A deleted object's AlterID stays counted (ASSUMPTION: deleting does not lower
        # $AltVchId; whether it raises it is unknown, so it does not).
        return max(masters, self._deleted_max["master"]), max(vouchers, self._deleted_max["voucher"])

    def master_tables(self) -> tuple[dict, ...]:
        """Every master table (for AlterID bookkeeping)."""
        return (self.groups, self.cost_categories, self.cost_centres, self.ledgers,
                self.voucher_types, self.units, self.godowns, self.stock_groups, self.stock_items)

    def forget(self, kind: str, obj: dict) -> None:
        """Record a deleted object (``kind`` ``"voucher"`` or a master kind) so the company's
        last AlterIDs keep counting it and the sandbox state shows it."""
        bucket = "voucher" if kind == "voucher" else "master"
        self._deleted_max[bucket] = max(self._deleted_max[bucket], obj["alter_id"])
        self.deleted.append({"kind": kind, "name": obj.get("name") or obj.get("number", ""),
                             "guid": obj["guid"], "master_id": obj["master_id"],
                             "alter_id": obj["alter_id"]})

    def ensure_main_location(self) -> dict:
        """The ``Main Location`` godown, created on first use (see the module doc)."""
        key = MAIN_LOCATION.casefold()
        if key not in self.godowns:
            self._new(self.godowns, {"name": MAIN_LOCATION, "parent": ""})
        return self.godowns[key]

    # ------------------------------------------------------------------ voucher types
    def base_voucher_type(self, name: str) -> str:
        """The predefined type a voucher type derives from (its own name for a predefined
        one; ``""`` for an unknown name). Custom types carry ``parent``."""
        seen = set()
        key = name.casefold()
        while key in self.voucher_types and key not in seen:
            seen.add(key)
            vt = self.voucher_types[key]
            if not vt.get("parent"):
                return vt["name"]
            key = vt["parent"].casefold()
        return ""

    def requires_login(self) -> bool:
        """Whether the company is under security control (has a user name)."""
        return bool(self.username)


def company_table(config: dict) -> tuple[dict[str, Company], set[str]]:
    """``(companies by casefolded name, casefolded names of the loaded ones)`` from the
    emulator config ``{"companies": [{"name", "books_from", "username", "password"}], "loaded":
    [names]}``
    (defaults: :data:`DEFAULT_COMPANIES`, all loaded)."""
    companies = {}
    for c in config.get("companies") or DEFAULT_COMPANIES:
        companies[c["name"].casefold()] = Company(c["name"], str(c.get("books_from", "20200401")),
                                                  username=c.get("username"),
                                                  password=c.get("password"))
    loaded = config.get("loaded")
    loaded_set = set(companies) if loaded is None else {n.casefold() for n in loaded}
    return companies, loaded_set


def resolve_company(companies: dict[str, Company], loaded: set[str], name: str) -> Company:
    """The company a request names in ``SVCURRENTCOMPANY`` (``name``; empty = the first loaded
    one, ASSUMPTION). Raises :class:`ImportFailure` ``No company is loaded!`` or ``Company 'X'
    is not loaded!`` ("At least one company must be loaded",
    https://help.tallysolutions.com/pre-requisites-for-integrations; wording from the
    emulator's fixed catalogue)."""
    if not name:
        for key in companies:
            if key in loaded:
                return companies[key]
        raise ImportFailure("No company is loaded!")
    key = name.casefold()
    if key not in companies or key not in loaded:
        raise ImportFailure(f"Company '{name}' is not loaded!")
    return companies[key]
