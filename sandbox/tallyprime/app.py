"""TallyPrime XML-gateway emulator (sandbox; never a production component).

One XML endpoint, ``POST /`` (any path is accepted, as on port 9000), state in memory. It
implements the subset of Tally behaviour documented in
``/work/shared/reference/external-apis.md`` §2 that ml-connector relies on:

* transport (§2.1): UTF-8 and UTF-16 requests (BOM or ``charset=utf-16``; no BOM = LE), the
  reply in the request's encoding (UTF-16 replies are UTF-16LE with a BOM — ASSUMPTION);
  HTTP 200 for every processed request, failures in the body; no authentication;
* imports (§2.2, §2.3): version-1 ``Import/Data`` (``Vouchers``, ``All Masters``) answered
  with ``ENVELOPE/HEADER(VERSION,STATUS)/BODY/DATA/IMPORTRESULT`` and legacy
  ``Import Data`` (``IMPORTDATA/REQUESTDESC/REQUESTDATA``) answered with a bare ``RESPONSE``;
  ``LINEERROR`` elements precede the counters; GROUP, COSTCATEGORY, COSTCENTRE, LEDGER and
  VOUCHER objects; every object gets GUID, MASTERID and ALTERID (per-company counters);
* exports: inline-TDL collections (``TYPE``, ``FETCH``, ``FILTER`` + ``SYSTEM Formulae``
  supporting exactly ``$RemoteID = "X"``, ``$AlterID > N`` and ``$Name = "X"``), Object
  exports, the ``Day Book`` report and the ``Company`` collection (loaded companies only,
  with ``ALTMSTID``/``ALTVCHID``, §2.2 "Change tracking"); voucher collections honour
  ``SVFROMDATE``/``SVTODATE``; ``&#4; Primary`` is emitted for root parents, as real
  exports do (§2.4), and fault ``ctrl_refs`` adds ``&#4;`` (or a raw ``\x04``) before
  narrations and ledger names;
* one request at a time (a lock held per XML request, §2.7 #3 — ASSUMPTION on the exact
  desktop behaviour).

Error catalogue (fixed wording; Tally's own punctuation varies by release, §2.3):
``Ledger 'X' does not exist!``, ``Group 'X' does not exist!``, ``Cost Category 'X' does not
exist!``, ``Cost Centre 'X' does not exist!``, ``Voucher Type 'X' does not exist!``,
``Voucher totals do not match!``, ``Date is not within the financial period``,
``Company 'X' is not loaded!`` (``No company is loaded!`` when SVCURRENTCOMPANY is absent
and no company is open), ``Unknown Request, cannot be processed``; for cost centres (wording
ours, ASSUMPTION) ``Cost Centre 'X' already exists!`` (Create of an existing name, rename onto
one) and ``Cost Centre 'X' does not exist!`` (Alter of an unknown name). Emulator-only texts (marked ASSUMPTION):
``ISDEEMEDPOSITIVE does not match the sign of AMOUNT for Ledger 'X'``, ``Cost Centre
allocation totals do not match for Ledger 'X'``, ``Cost Centres are not applicable for
Ledger 'X'``, ``Sandbox: unsupported filter formula …``.

Other ASSUMPTIONs: ``ACTION="Create"`` of an existing object (by name for masters other than
cost centres, by REMOTEID for vouchers) alters it and counts ``ALTERED`` (the default IMPORTDUPS behaviour;
external-apis §2.2 notes Create "may silently alter"); voucher numbers are always
auto-numbered per voucher type (§2.7 #2); a missing SVCURRENTCOMPANY means the first loaded
company; a Voucher collection without SVFROMDATE/SVTODATE holds every voucher.

Sandbox-only admin routes (NOT Tally): ``GET /_sandbox/state``, ``POST /_sandbox/reset``,
``POST /_sandbox/faults`` (see :func:`create_app`), ``POST /_sandbox/seed`` (bulk vouchers,
``sandbox/tallyprime/seed.py``).
"""
from __future__ import annotations

import copy
import datetime as dt
import re
import socket
import threading
import time
import uuid
from decimal import Decimal, InvalidOperation
from xml.sax.saxutils import escape, quoteattr

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException
from flask import Flask, Response, jsonify, request

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
ROOT_PARENT = "&#4; Primary"  # verbatim quirk of real exports (external-apis §2.4)

BOMB = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
        ' <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">\n'
        ' <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">\n'
        ' <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">\n'
        ' <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">\n'
        ' <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">\n'
        ' <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">\n'
        ' <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">\n'
        ' <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">\n'
        ' <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">\n'
        ']>\n<ENVELOPE><BODY><DATA>&lol9;</DATA></BODY></ENVELOPE>')


class ImportFailure(Exception):
    """One object refused during an import; the message is the LINEERROR text."""


# ============================================================================ state

class Company:
    """One company's books: masters, vouchers and its MASTERID/ALTERID counters."""

    def __init__(self, name: str, books_from: str):
        self.name = name
        self.books_from = books_from
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
        for name_, parent in PREDEFINED_GROUPS:
            self._new(self.groups, {"name": name_, "parent": parent})
        self._new(self.cost_categories, {"name": PRIMARY_COST_CATEGORY})
        for name_, parent in PREDEFINED_LEDGERS:
            self._new(self.ledgers, {"name": name_, "parent": parent, "cost_centres_on": False})
        for name_ in PREDEFINED_VOUCHER_TYPES:
            self._new(self.voucher_types, {"name": name_})

    def _ids(self, obj: dict) -> dict:
        self.master_id += 1
        self.alter_id += 1
        obj["master_id"] = self.master_id
        obj["alter_id"] = self.alter_id
        obj["guid"] = f"{self.guid_prefix}-{self.master_id:08x}"
        return obj

    def _new(self, table: dict, obj: dict) -> dict:
        table[obj["name"].casefold()] = self._ids(obj)
        return obj

    def touch(self, obj: dict) -> None:
        """Record an alteration: a new ALTERID (MASTERID and GUID stay)."""
        self.alter_id += 1
        obj["alter_id"] = self.alter_id


def _company_table(config: dict) -> tuple[dict[str, Company], set[str]]:
    companies = {}
    for c in config.get("companies") or DEFAULT_COMPANIES:
        companies[c["name"].casefold()] = Company(c["name"], str(c.get("books_from", "20200401")))
    loaded = config.get("loaded")
    if loaded is None:
        loaded_set = set(companies)
    else:
        loaded_set = {n.casefold() for n in loaded}
    return companies, loaded_set


# ============================================================================ XML helpers

def _t(el, path: str, default: str = "") -> str:
    """Text at ``path`` (case-insensitive tags), stripped."""
    node = _find(el, path)
    return (node.text or "").strip() if node is not None else default


def _find(el, path: str):
    if el is None:
        return None
    for part in path.split("/"):
        up = part.upper()
        el = next((c for c in el if c.tag.upper() == up), None)
        if el is None:
            return None
    return el


def _children(el, tag: str) -> list:
    if el is None:
        return []
    up = tag.upper()
    return [c for c in el if c.tag.upper() == up]


def _attr(el, name: str) -> str:
    for k, v in el.attrib.items():
        if k.upper() == name.upper():
            return v.strip()
    return ""


def _name_of(el) -> str:
    return _t(el, "NAME") or _t(el, "NAME.LIST/NAME") or _attr(el, "NAME")


def _decode_request(raw: bytes, content_type: str | None) -> tuple[str, str]:
    """(text, encoding) where encoding is ``"utf-16"`` or ``"utf-8"``."""
    ct = (content_type or "").lower()
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le"), "utf-16"
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be"), "utf-16"
    if "utf-16" in ct or "utf16" in ct:
        return raw.decode("utf-16-le").lstrip("\ufeff"), "utf-16"
    return raw.decode("utf-8").lstrip("\ufeff"), "utf-8"


_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")


def _x(text) -> str:
    return escape(str(text))


def _envelope(data_inner: str, status: int = 1) -> str:
    return (f"<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>{status}</STATUS></HEADER>"
            f"<BODY><DESC></DESC><DATA>{data_inner}</DATA></BODY></ENVELOPE>")


def _fmt_amount(amount: Decimal) -> str:
    return format(amount.quantize(Decimal("0.01")), "f")


# ============================================================================ the emulator

class TallyEmulator:
    """State and request handling; :func:`create_app` wraps it in Flask."""

    def __init__(self, config: dict | None = None):
        self.config = copy.deepcopy(config or {})
        self.xml_lock = threading.Lock()      # one XML request at a time (as the desktop app)
        self.data_lock = threading.RLock()    # guards state for admin routes
        self.reset()

    def reset(self) -> None:
        """Back to the configured initial state, faults and statistics cleared."""
        with self.data_lock:
            self.companies, self.loaded = _company_table(self.config)
            self.faults = {"down": False, "hang_seconds": 0.0, "hang_count": 0,
                           "reply_bomb": False, "alter_reports_created": 0}
            self.request_count = 0
            self.requests: list[dict] = []
            self.arrived = 0
            self.max_arrived = 0
            self.in_flight = 0
            self.max_in_flight = 0

    # ---------------------------------------------------------------- admin
    def state(self) -> dict:
        """JSON-safe snapshot (amounts as strings)."""
        with self.data_lock:
            out = {"request_count": self.request_count, "requests": list(self.requests),
                   "max_in_flight": self.max_in_flight,
                   "max_concurrent_arrivals": self.max_arrived,
                   "faults": dict(self.faults), "companies": []}
            for key, c in self.companies.items():
                out["companies"].append({
                    "name": c.name, "books_from": c.books_from, "loaded": key in self.loaded,
                    "groups": [dict(g) for g in c.groups.values()],
                    "cost_categories": [dict(g) for g in c.cost_categories.values()],
                    "cost_centres": [copy.deepcopy(g) for g in c.cost_centres.values()],
                    "ledgers": [dict(g) for g in c.ledgers.values()],
                    "vouchers": [{
                        "remote_id": v["remote_id"], "date": v["date"], "type": v["type"],
                        "number": v["number"], "narration": v["narration"],
                        "master_id": v["master_id"], "alter_id": v["alter_id"],
                        "guid": v["guid"],
                        "lines": [f"{e['ledger']}: {_fmt_amount(e['amount'])}" for e in v["entries"]],
                    } for v in c.vouchers],
                })
            return out

    def set_faults(self, spec: dict) -> dict:
        """Apply a fault spec (see :func:`create_app`); returns the current faults."""
        with self.data_lock:
            if "down" in spec:
                self.faults["down"] = bool(spec["down"])
            if "hang_seconds" in spec:
                self.faults["hang_seconds"] = float(spec["hang_seconds"])
                self.faults["hang_count"] = int(spec.get("count", 1))
            if spec.get("hang_after_import"):
                self.faults["hang_after_import"] = float(spec["hang_after_import"])
            if spec.get("reply_bomb"):
                self.faults["reply_bomb"] = True
            if "ctrl_refs" in spec:  # "ref" | "raw" | None: see _inject_ctrl
                self.faults["ctrl_refs"] = spec["ctrl_refs"] or None
            if "alter_reports_created" in spec:
                self.faults["alter_reports_created"] = int(spec["alter_reports_created"])
            if spec.get("unload_company"):
                self.loaded.discard(spec["unload_company"].casefold())
            if spec.get("load_company"):
                self.loaded.add(spec["load_company"].casefold())
            return dict(self.faults)

    # ---------------------------------------------------------------- XML entry point
    def handle(self, raw: bytes, content_type: str | None) -> tuple[bytes, str]:
        """Process one XML request under the request lock; returns (body, content type)."""
        hang_after = 0.0
        with self.data_lock:
            self.arrived += 1
            self.max_arrived = max(self.max_arrived, self.arrived)
        try:
            with self.xml_lock:
                with self.data_lock:
                    self.in_flight += 1
                    self.max_in_flight = max(self.max_in_flight, self.in_flight)
                    self.request_count += 1
                    hang = 0.0
                    if self.faults["hang_count"] > 0:
                        hang = self.faults["hang_seconds"]
                        self.faults["hang_count"] -= 1
                try:
                    if hang:
                        time.sleep(hang)
                    try:
                        text, encoding = _decode_request(raw, content_type)
                    except UnicodeDecodeError:
                        text, encoding = "", "utf-8"
                    with self.data_lock:
                        reply = self._dispatch(text)
                        if self.faults["reply_bomb"]:
                            self.faults["reply_bomb"] = False
                            reply = BOMB
                        hang_after = 0.0
                        if self.faults.get("hang_after_import") and "<VOUCHER" in text \
                                and "<IMPORTRESULT>" in reply and "<CREATED>0</CREATED>" not in reply:
                            hang_after = self.faults.pop("hang_after_import")
                finally:
                    with self.data_lock:
                        self.in_flight -= 1
        finally:
            with self.data_lock:
                self.arrived -= 1
        if hang_after:
            # The import is done (Tally accepted it); only the reply is late. Sandbox fault.
            time.sleep(hang_after)
        if encoding == "utf-16":
            return b"\xff\xfe" + reply.encode("utf-16-le"), "text/xml; charset=utf-16"
        return reply.encode("utf-8"), "text/xml; charset=utf-8"

    def _dispatch(self, text: str) -> str:
        try:
            root = SafeET.fromstring(_DECL.sub("", text, count=1))
        except DefusedXmlException:
            return _envelope("Sandbox: entity declarations are not accepted", status=0)
        except SafeET.ParseError:
            return _envelope("Unknown Request, cannot be processed", status=0)
        if root.tag.upper() != "ENVELOPE":
            return _envelope("Unknown Request, cannot be processed", status=0)
        header = _find(root, "HEADER")
        tally_request = _t(header, "TALLYREQUEST").lower()
        req_type = _t(header, "TYPE").lower()
        req_id = _t(header, "ID")
        self.requests.append({"tallyrequest": _t(header, "TALLYREQUEST"), "type": _t(header, "TYPE"),
                              "id": req_id})
        if tally_request == "import data":
            desc = _find(root, "BODY/IMPORTDATA/REQUESTDESC")
            data = _find(root, "BODY/IMPORTDATA/REQUESTDATA")
            return self._import(_find(desc, "STATICVARIABLES"), data, legacy=True)
        if tally_request == "import" and req_type == "data":
            return self._import(_find(root, "BODY/DESC/STATICVARIABLES"), _find(root, "BODY/DATA"),
                                legacy=False)
        if tally_request == "export":
            sv = _find(root, "BODY/DESC/STATICVARIABLES")
            if req_type == "collection":
                return self._export_collection(root, sv, req_id)
            if req_type == "object":
                return self._export_object(root, sv, _t(header, "SUBTYPE"), req_id)
            if req_type == "data" and req_id.lower() == "day book":
                return self._export_day_book(sv)
        return _envelope("Unknown Request, cannot be processed", status=0)

    # ---------------------------------------------------------------- company
    def _company(self, sv) -> Company:
        name = _t(sv, "SVCURRENTCOMPANY")
        if not name:
            for key in self.companies:
                if key in self.loaded:
                    return self.companies[key]
            raise ImportFailure("No company is loaded!")
        key = name.casefold()
        if key not in self.companies or key not in self.loaded:
            raise ImportFailure(f"Company '{name}' is not loaded!")
        return self.companies[key]

    # ---------------------------------------------------------------- imports
    def _import(self, sv, data, *, legacy: bool) -> str:
        counters = dict.fromkeys(("CREATED", "ALTERED", "DELETED", "LASTVCHID", "LASTMID",
                                  "COMBINED", "IGNORED", "ERRORS", "CANCELLED", "EXCEPTIONS"), 0)
        errors: list[str] = []
        try:
            company = self._company(sv)
        except ImportFailure as exc:
            errors.append(str(exc))
            counters["ERRORS"] = 1
            return self._import_reply(counters, errors, legacy, status=0)
        objects = [obj for msg in _children(data, "TALLYMESSAGE") for obj in msg]
        for obj in objects:
            tag = obj.tag.upper()
            handler = {"GROUP": self._imp_group, "COSTCATEGORY": self._imp_category,
                       "COSTCENTRE": self._imp_centre, "LEDGER": self._imp_ledger,
                       "VOUCHER": self._imp_voucher}.get(tag)
            if handler is None:
                counters["EXCEPTIONS"] += 1  # unknown object: rejected without a message
                continue
            try:
                outcome, mid = handler(company, obj)
            except ImportFailure as exc:
                errors.append(str(exc))
                counters["ERRORS"] += 1
                continue
            counters[outcome] += 1
            if tag == "VOUCHER":
                counters["LASTVCHID"] = mid
            else:
                counters["LASTMID"] = mid
        return self._import_reply(counters, errors, legacy, status=1)

    @staticmethod
    def _import_reply(counters: dict, errors: list[str], legacy: bool, status: int) -> str:
        lines = "".join(f"<LINEERROR>{_x(e)}</LINEERROR>" for e in errors)
        nums = "".join(f"<{k}>{v}</{k}>" for k, v in counters.items())
        if legacy:
            return f"<RESPONSE>{lines}{nums}</RESPONSE>"
        return (f"<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>{status}</STATUS></HEADER>"
                f"<BODY><DATA>{lines}<IMPORTRESULT>{nums}</IMPORTRESULT></DATA></BODY></ENVELOPE>")

    @staticmethod
    def _action(obj) -> str:
        return (_attr(obj, "ACTION") or "Create").lower()

    def _upsert_master(self, company: Company, table: dict, obj, fields: dict) -> tuple[str, int]:
        name = fields["name"]
        if not name:
            raise ImportFailure(f"{obj.tag.title()} name is empty")
        key = name.casefold()
        action = self._action(obj)
        existing = table.get(key)
        if action == "delete":
            if existing is None:
                return "IGNORED", 0
            del table[key]
            return "DELETED", existing["master_id"]
        if existing is not None:
            if action in ("create", "alter"):
                existing.update({k: v for k, v in fields.items() if k != "name"})
                company.touch(existing)
                return "ALTERED", existing["master_id"]
        if action == "alter":
            return "IGNORED", 0
        obj_ = company._new(table, dict(fields))
        return "CREATED", obj_["master_id"]

    def _parent_group(self, company: Company, parent: str) -> str:
        parent = parent.strip()
        if parent in ("", "Primary"):
            return ""
        if parent.casefold() not in company.groups:
            raise ImportFailure(f"Group '{parent}' does not exist!")
        return company.groups[parent.casefold()]["name"]

    def _imp_group(self, company, obj):
        parent = self._parent_group(company, _t(obj, "PARENT"))
        return self._upsert_master(company, company.groups, obj,
                                   {"name": _name_of(obj), "parent": parent})

    def _imp_category(self, company, obj):
        return self._upsert_master(company, company.cost_categories, obj, {"name": _name_of(obj)})

    # Payroll fields of a cost centre (external-apis §2.6): request tag → stored key.
    _CENTRE_FIELDS = {"FORPAYROLL": "for_payroll", "ISEMPLOYEEGROUP": "is_employee_group",
                      "MAILINGNAME": "mailing_name", "DATEOFJOIN": "date_of_join",
                      "DESIGNATION": "designation", "DEACTIVATIONDATE": "deactivation_date",
                      "EMAILID": "email_id"}
    _CENTRE_DATES = ("DATEOFJOIN", "DEACTIVATIONDATE")
    _CENTRE_FLAGS = ("FORPAYROLL", "ISEMPLOYEEGROUP")

    def _imp_centre(self, company, obj):
        """COSTCENTRE import (external-apis §2.2 "Masters", §2.6 employees as cost centres).

        * ``Create`` of a new name creates it; of an existing name is refused with
          ``Cost Centre 'X' already exists!`` (ASSUMPTION: Tally's duplicate-master error;
          wording ours) — unlike the other masters, whose Create alters (§2.2 "may silently
          alter").
        * ``Alter`` finds the centre by the ``NAME`` attribute (its current name; §2.2
          identification via attributes), renames it to ``NAME.LIST/NAME`` (or ``NAME``) when
          that differs (ASSUMPTION), updates only the fields present, gives it a new ALTERID
          (§2.2 "Change tracking", MASTERID and GUID kept) and counts ``ALTERED``; an unknown
          name is refused with ``Cost Centre 'X' does not exist!`` (ASSUMPTION: §2.3 reports
          ``IGNORED=1`` for an unidentified voucher Alter; for masters we answer with the
          catalogue's LINEERROR). Renaming onto another centre's name → ``already exists``.
        * ``CATEGORY`` and a non-root ``PARENT`` must exist (catalogue errors); dates are
          YYYYMMDD; an empty element clears a field (ASSUMPTION).
        * Sandbox state per centre: ``alter_count`` and ``history`` (one snapshot of the
          fields per create/alter, with ``action`` and ``alter_id``).
        * Fault ``alter_reports_created``: the next N Alters are applied but answered as
          CREATED (the Alter-becomes-Create reply of §2.2/§2.7 #2) — sandbox only.
        """
        action = self._action(obj)
        attr_name = _attr(obj, "NAME")
        new_name = _t(obj, "NAME.LIST/NAME") or _t(obj, "NAME") or attr_name
        ident = (attr_name or new_name) if action == "alter" else new_name
        if not ident:
            raise ImportFailure("Costcentre name is empty")
        existing = company.cost_centres.get(ident.casefold())
        if action == "delete":
            if existing is None:
                return "IGNORED", 0
            del company.cost_centres[ident.casefold()]
            return "DELETED", existing["master_id"]
        if action == "create" and existing is not None:
            raise ImportFailure(f"Cost Centre '{existing['name']}' already exists!")
        if action == "alter" and existing is None:
            raise ImportFailure(f"Cost Centre '{ident}' does not exist!")
        fields: dict = {}
        if _find(obj, "CATEGORY") is not None or existing is None:
            category = _t(obj, "CATEGORY") or PRIMARY_COST_CATEGORY
            if category.casefold() not in company.cost_categories:
                raise ImportFailure(f"Cost Category '{category}' does not exist!")
            fields["category"] = company.cost_categories[category.casefold()]["name"]
        if _find(obj, "PARENT") is not None or existing is None:
            parent = _t(obj, "PARENT")
            parent = "" if parent == "Primary" else parent
            if parent:
                if parent.casefold() not in company.cost_centres:
                    raise ImportFailure(f"Cost Centre '{parent}' does not exist!")
                if parent.casefold() == (new_name or ident).casefold():
                    raise ImportFailure(f"Cost Centre '{parent}' cannot be its own parent")
                parent = company.cost_centres[parent.casefold()]["name"]
            fields["parent"] = parent
        for tag, key in self._CENTRE_FIELDS.items():
            node = _find(obj, tag)
            if node is None:
                if existing is None:
                    fields[key] = False if tag in self._CENTRE_FLAGS else ""
                continue
            value = (node.text or "").strip()
            if tag in self._CENTRE_FLAGS:
                fields[key] = value.lower() == "yes"
            elif tag in self._CENTRE_DATES and value:
                try:
                    dt.datetime.strptime(value, "%Y%m%d")
                except ValueError:
                    raise ImportFailure(f"Date '{value}' is not a valid date") from None
                fields[key] = value
            else:
                fields[key] = value
        if existing is None:
            centre = company._new(company.cost_centres, {"name": new_name, **fields,
                                                         "alter_count": 0, "history": []})
            centre["history"].append(self._centre_snapshot(centre, "create"))
            return "CREATED", centre["master_id"]
        if new_name != existing["name"]:
            other = company.cost_centres.get(new_name.casefold())
            if other is not None and other is not existing:
                raise ImportFailure(f"Cost Centre '{other['name']}' already exists!")
            old = existing["name"]
            del company.cost_centres[old.casefold()]
            existing["name"] = new_name
            company.cost_centres[new_name.casefold()] = existing
            for c in company.cost_centres.values():  # children follow the rename
                if c.get("parent") == old:
                    c["parent"] = new_name
            for v in company.vouchers:  # vouchers refer to the master, not to its old name
                for e in v["entries"]:
                    for a in e["allocations"]:
                        if a["cost_centre"] == old:
                            a["cost_centre"] = new_name
        existing.update(fields)
        company.touch(existing)
        existing["alter_count"] = existing.get("alter_count", 0) + 1
        existing.setdefault("history", []).append(self._centre_snapshot(existing, "alter"))
        if self.faults.get("alter_reports_created", 0) > 0:
            self.faults["alter_reports_created"] -= 1
            return "CREATED", existing["master_id"]
        return "ALTERED", existing["master_id"]

    @classmethod
    def _centre_snapshot(cls, centre: dict, action: str) -> dict:
        keys = ["name", "parent", "category", *cls._CENTRE_FIELDS.values()]
        return {"action": action, "alter_id": centre["alter_id"],
                **{k: centre.get(k) for k in keys}}

    def _imp_ledger(self, company, obj):
        parent = self._parent_group(company, _t(obj, "PARENT"))
        if not parent:
            raise ImportFailure(f"Group '{_t(obj, 'PARENT')}' does not exist!")
        return self._upsert_master(company, company.ledgers, obj, {
            "name": _name_of(obj), "parent": parent,
            "cost_centres_on": _t(obj, "ISCOSTCENTRESON").lower() == "yes"})

    def _imp_voucher(self, company: Company, obj):
        remote_id = _attr(obj, "REMOTEID")
        action = self._action(obj)
        existing = next((v for v in company.vouchers if remote_id and v["remote_id"] == remote_id), None)
        if action in ("delete", "cancel"):
            if existing is None:
                return "IGNORED", 0
            company.vouchers.remove(existing)
            return ("DELETED" if action == "delete" else "CANCELLED"), existing["master_id"]
        if action == "alter" and existing is None:
            return "IGNORED", 0
        date = _t(obj, "DATE")
        try:
            parsed = dt.datetime.strptime(date, "%Y%m%d").date()
        except ValueError:
            raise ImportFailure(f"Date '{date}' is not a valid date") from None
        if parsed < dt.datetime.strptime(company.books_from, "%Y%m%d").date():
            raise ImportFailure("Date is not within the financial period")
        vtype = _t(obj, "VOUCHERTYPENAME") or _attr(obj, "VCHTYPE")
        if vtype.casefold() not in company.voucher_types:
            raise ImportFailure(f"Voucher Type '{vtype}' does not exist!")
        vtype = company.voucher_types[vtype.casefold()]["name"]
        entries = []
        for e in _children(obj, "ALLLEDGERENTRIES.LIST") + _children(obj, "LEDGERENTRIES.LIST"):
            entries.append(self._voucher_entry(company, e))
        if len(entries) < 2:
            raise ImportFailure("Voucher totals do not match!" if entries else
                                "No entries in voucher!")
        if sum((e["amount"] for e in entries), Decimal(0)) != 0:
            raise ImportFailure("Voucher totals do not match!")
        fields = {"remote_id": remote_id, "date": date, "type": vtype,
                  "narration": _t(obj, "NARRATION"), "entries": entries}
        if existing is not None:
            existing.update(fields)
            company.touch(existing)
            return "ALTERED", existing["master_id"]
        number = company.vch_numbers.get(vtype, 0) + 1
        company.vch_numbers[vtype] = number
        voucher = company._ids(dict(fields, number=str(number)))
        company.vouchers.append(voucher)
        return "CREATED", voucher["master_id"]

    @staticmethod
    def _amount(text: str, ledger: str) -> Decimal:
        try:
            return Decimal(text.strip())
        except (InvalidOperation, AttributeError):
            raise ImportFailure(f"Invalid amount '{text}' for Ledger '{ledger}'") from None

    def _voucher_entry(self, company: Company, e) -> dict:
        ledger_name = _t(e, "LEDGERNAME")
        ledger = company.ledgers.get(ledger_name.casefold())
        if ledger is None:
            raise ImportFailure(f"Ledger '{ledger_name}' does not exist!")
        amount = self._amount(_t(e, "AMOUNT"), ledger_name)
        positive = _t(e, "ISDEEMEDPOSITIVE").lower() == "yes"
        if amount != 0 and positive != (amount < 0):
            # ASSUMPTION (emulator strictness): Yes ↔ negative (debit), No ↔ positive (credit).
            raise ImportFailure(f"ISDEEMEDPOSITIVE does not match the sign of AMOUNT for Ledger "
                                f"'{ledger['name']}'")
        allocations = []
        for cat in _children(e, "CATEGORYALLOCATIONS.LIST"):
            cname = _t(cat, "CATEGORY")
            if cname.casefold() not in company.cost_categories:
                raise ImportFailure(f"Cost Category '{cname}' does not exist!")
            if not ledger["cost_centres_on"]:
                raise ImportFailure(f"Cost Centres are not applicable for Ledger '{ledger['name']}'")
            for cc in _children(cat, "COSTCENTREALLOCATIONS.LIST"):
                ccname = _t(cc, "NAME")
                if ccname.casefold() not in company.cost_centres:
                    raise ImportFailure(f"Cost Centre '{ccname}' does not exist!")
                allocations.append({"category": company.cost_categories[cname.casefold()]["name"],
                                    "cost_centre": company.cost_centres[ccname.casefold()]["name"],
                                    "amount": self._amount(_t(cc, "AMOUNT"), ledger_name)})
        if allocations and sum((a["amount"] for a in allocations), Decimal(0)) != amount:
            raise ImportFailure(f"Cost Centre allocation totals do not match for Ledger "
                                f"'{ledger['name']}'")
        return {"ledger": ledger["name"], "amount": amount, "is_deemed_positive": positive,
                "allocations": allocations}

    # ---------------------------------------------------------------- exports
    def _export_error(self, text: str) -> str:
        return _envelope(f"<LINEERROR>{_x(text)}</LINEERROR>", status=0)

    @staticmethod
    def _date_range(sv) -> tuple[str | None, str | None]:
        return _t(sv, "SVFROMDATE") or None, _t(sv, "SVTODATE") or None

    def _export_collection(self, root, sv, req_id: str) -> str:
        tdl = _find(root, "BODY/DESC/TDL/TDLMESSAGE")
        coll = next((c for c in _children(tdl, "COLLECTION")
                     if _attr(c, "NAME").casefold() == req_id.casefold()), None)
        if coll is None:
            return _envelope(f"Could not find Collection '{_x(req_id)}'", status=0)
        obj_type = _t(coll, "TYPE").replace(" ", "").lower()
        fetch = [f.strip().lower() for f in _t(coll, "FETCH").split(",") if f.strip()]
        formulas = {_attr(s, "NAME").casefold(): (s.text or "").strip()
                    for s in _children(tdl, "SYSTEM") if _attr(s, "TYPE").lower() == "formulae"}
        predicates = []
        for fname in [f.strip() for f in _t(coll, "FILTER").split(",") if f.strip()]:
            formula = formulas.get(fname.casefold())
            if formula is None:
                return _envelope(f"Sandbox: filter '{_x(fname)}' has no SYSTEM Formulae", status=0)
            pred = _predicate(formula)
            if pred is None:
                return _envelope(f"Sandbox: unsupported filter formula {_x(formula)}", status=0)
            predicates.append(pred)
        if obj_type == "company":
            items = "".join(
                f"<COMPANY NAME={quoteattr(c.name)}><NAME>{_x(c.name)}</NAME>"
                f"<BOOKSFROM TYPE=\"Date\">{c.books_from}</BOOKSFROM>{_company_alter_ids_xml(c)}"
                f"</COMPANY>"
                for key, c in self.companies.items() if key in self.loaded)
            return _envelope(f"<COLLECTION>{items}</COLLECTION>")
        try:
            company = self._company(sv)
        except ImportFailure as exc:
            return self._export_error(str(exc))
        if obj_type == "voucher":
            frm, to = self._date_range(sv)
            rows = [v for v in company.vouchers
                    if (not frm or v["date"] >= frm) and (not to or v["date"] <= to)]
            rows = [v for v in rows if all(p(_fields_voucher(v)) for p in predicates)]
            body = "".join(_voucher_xml(v, fetch=fetch) for v in rows)
        else:
            table = {"ledger": company.ledgers, "group": company.groups,
                     "costcentre": company.cost_centres,
                     "costcategory": company.cost_categories,
                     "vouchertype": company.voucher_types}.get(obj_type)
            if table is None:
                return _envelope(f"Sandbox: unsupported collection type {_x(obj_type)}", status=0)
            rows = [o for o in table.values() if all(p(_fields_master(o)) for p in predicates)]
            body = "".join(_master_xml(obj_type, o) for o in rows)
        return _envelope(f"<COLLECTION>{self._inject_ctrl(body)}</COLLECTION>")

    def _export_object(self, root, sv, subtype: str, req_id: str) -> str:
        try:
            company = self._company(sv)
        except ImportFailure as exc:
            return self._export_error(str(exc))
        kind = subtype.replace(" ", "").lower()
        if kind == "voucher":
            v = next((v for v in company.vouchers if req_id in (v["remote_id"], v["guid"],
                                                                  str(v["master_id"]))), None)
            if v is None:
                return self._export_error(f"Could not find Voucher '{req_id}'")
            return _envelope(f"<TALLYMESSAGE>{_voucher_xml(v)}</TALLYMESSAGE>")
        table = {"ledger": company.ledgers, "group": company.groups,
                 "costcentre": company.cost_centres,
                 "costcategory": company.cost_categories}.get(kind)
        if table is None:
            return _envelope(f"Sandbox: unsupported object type {_x(subtype)}", status=0)
        obj = table.get(req_id.casefold())
        if obj is None:
            return self._export_error(f"Could not find {subtype} '{req_id}'")
        return _envelope(f"<TALLYMESSAGE>{_master_xml(kind, obj)}</TALLYMESSAGE>")

    def _inject_ctrl(self, body: str) -> str:
        """Fault ``ctrl_refs``: put ``&#4;`` (``"ref"``) or a raw ``\\x04`` (``"raw"``) before
        every exported narration and ledger name, as real exports do in other fields
        (external-apis §2.4; which fields carry it is an ASSUMPTION)."""
        mode = self.faults.get("ctrl_refs")
        if not mode:
            return body
        mark = "\x04" if mode == "raw" else "&#4;"
        for tag in ("<NARRATION>", "<LEDGERNAME>", "<PARTYLEDGERNAME>"):
            body = body.replace(tag, tag + mark)
        return body

    def _export_day_book(self, sv) -> str:
        try:
            company = self._company(sv)
        except ImportFailure as exc:
            return self._export_error(str(exc))
        frm, to = self._date_range(sv)
        rows = [v for v in company.vouchers
                if (not frm or v["date"] >= frm) and (not to or v["date"] <= to)]
        rows.sort(key=lambda v: (v["date"], v["master_id"]))
        msgs = self._inject_ctrl("".join(
            f'<TALLYMESSAGE xmlns:UDF="TallyUDF">{_voucher_xml(v)}</TALLYMESSAGE>' for v in rows))
        return ("<ENVELOPE><HEADER><TALLYREQUEST>Import Data</TALLYREQUEST></HEADER><BODY>"
                "<IMPORTDATA><REQUESTDESC><REPORTNAME>Vouchers</REPORTNAME><STATICVARIABLES>"
                f"<SVCURRENTCOMPANY>{_x(company.name)}</SVCURRENTCOMPANY></STATICVARIABLES>"
                f"</REQUESTDESC><REQUESTDATA>{msgs}</REQUESTDATA></IMPORTDATA></BODY></ENVELOPE>")


# ============================================================================ rendering

_FORMULA_EQ = re.compile(r'^\s*\$(RemoteID|Name|MailingName)\s*=\s*"([^"]*)"\s*$', re.I)
_FORMULA_GT = re.compile(r"^\s*\$AlterID\s*>\s*(\d+)\s*$", re.I)


def _predicate(formula: str):
    """The formula forms the sandbox evaluates (``$RemoteID``/``$Name``/``$MailingName = "X"``,
    ``$AlterID > N``); ``None`` for anything else. ``$MailingName`` compares exactly
    (ASSUMPTION: filterable on a real Tally, external-apis §2.6 lists the field)."""
    m = _FORMULA_EQ.match(formula)
    if m:
        field, value = m.group(1).lower(), m.group(2)
        if field == "name":
            return lambda f: (f.get("name") or "").casefold() == value.casefold()
        if field == "mailingname":
            return lambda f: (f.get("mailingname") or "") == value
        return lambda f: (f.get("remoteid") or "") == value
    m = _FORMULA_GT.match(formula)
    if m:
        threshold = int(m.group(1))
        return lambda f: int(f.get("alterid") or 0) > threshold
    return None


def _fields_voucher(v: dict) -> dict:
    return {"remoteid": v["remote_id"], "alterid": v["alter_id"], "name": v["number"]}


def _fields_master(o: dict) -> dict:
    return {"remoteid": "", "alterid": o["alter_id"], "name": o["name"],
            "mailingname": o.get("mailing_name") or ""}


def _company_alter_ids_xml(c: "Company") -> str:
    """``$AltMstId``/``$AltVchId``: the last master and voucher AlterIDs (external-apis §2.2
    "Change tracking"). ASSUMPTION: taken as the highest AlterID among existing objects, so a
    deleted object's AlterID is not remembered (real Tally's counter only grows)."""
    masters = max((o["alter_id"] for t in (c.groups, c.cost_categories, c.cost_centres,
                                           c.ledgers, c.voucher_types) for o in t.values()),
                  default=0)
    vouchers = max((v["alter_id"] for v in c.vouchers), default=0)
    return (f'<ALTMSTID TYPE="Number"> {masters}</ALTMSTID>'
            f'<ALTVCHID TYPE="Number"> {vouchers}</ALTVCHID>')


def _parent_xml(parent: str) -> str:
    return f'<PARENT TYPE="String">{_x(parent) if parent else ROOT_PARENT}</PARENT>'


def _ids_xml(o: dict) -> str:
    return (f'<GUID TYPE="String">{o["guid"]}</GUID><MASTERID TYPE="Number"> {o["master_id"]}'
            f'</MASTERID><ALTERID TYPE="Number"> {o["alter_id"]}</ALTERID>')


def _master_xml(kind: str, o: dict) -> str:
    tag = {"ledger": "LEDGER", "group": "GROUP", "costcentre": "COSTCENTRE",
           "costcategory": "COSTCATEGORY", "vouchertype": "VOUCHERTYPE"}[kind]
    inner = f"<NAME>{_x(o['name'])}</NAME>"
    if kind in ("ledger", "group", "costcentre"):
        inner += _parent_xml(o.get("parent", ""))
    if kind == "ledger":
        inner += f"<ISCOSTCENTRESON>{'Yes' if o['cost_centres_on'] else 'No'}</ISCOSTCENTRESON>"
    if kind == "costcentre":
        inner += f"<CATEGORY>{_x(o['category'])}</CATEGORY>"
        # payroll fields (external-apis §2.6); dates YYYYMMDD, empty when unset
        for field_tag, key in TallyEmulator._CENTRE_FIELDS.items():
            value = o.get(key)
            if field_tag in TallyEmulator._CENTRE_FLAGS:
                value = "Yes" if value else "No"
            inner += f"<{field_tag}>{_x(value or '')}</{field_tag}>"
    return f'<{tag} NAME={quoteattr(o["name"])} RESERVEDNAME="">{inner}{_ids_xml(o)}</{tag}>'


def _voucher_xml(v: dict, fetch: list[str] | None = None) -> str:
    entries = ""
    for e in v["entries"]:
        cats: dict[str, list] = {}
        for a in e["allocations"]:
            cats.setdefault(a["category"], []).append(a)
        alloc_xml = "".join(
            f"<CATEGORYALLOCATIONS.LIST><CATEGORY>{_x(cat)}</CATEGORY>"
            f"<ISDEEMEDPOSITIVE>{'Yes' if e['is_deemed_positive'] else 'No'}</ISDEEMEDPOSITIVE>"
            + "".join(f"<COSTCENTREALLOCATIONS.LIST><NAME>{_x(a['cost_centre'])}</NAME>"
                      f"<AMOUNT>{_fmt_amount(a['amount'])}</AMOUNT></COSTCENTREALLOCATIONS.LIST>"
                      for a in allocs)
            + "</CATEGORYALLOCATIONS.LIST>" for cat, allocs in cats.items())
        entries += (f"<ALLLEDGERENTRIES.LIST><LEDGERNAME>{_x(e['ledger'])}</LEDGERNAME>"
                    f"<ISDEEMEDPOSITIVE>{'Yes' if e['is_deemed_positive'] else 'No'}"
                    f"</ISDEEMEDPOSITIVE><AMOUNT>{_fmt_amount(e['amount'])}</AMOUNT>"
                    f"{alloc_xml}</ALLLEDGERENTRIES.LIST>")
    want = set(fetch or [])
    full = not fetch or "allledgerentries" in want or "*" in want
    return (f'<VOUCHER REMOTEID={quoteattr(v["remote_id"])} VCHTYPE={quoteattr(v["type"])} '
            f'ACTION="Create" OBJVIEW="Accounting Voucher View">'
            f'<DATE TYPE="Date">{v["date"]}</DATE>'
            f'<VOUCHERTYPENAME>{_x(v["type"])}</VOUCHERTYPENAME>'
            f'<VOUCHERNUMBER>{_x(v["number"])}</VOUCHERNUMBER>'
            f'<REMOTEID>{_x(v["remote_id"])}</REMOTEID>'
            f'<NARRATION>{_x(v["narration"])}</NARRATION>'
            # ASSUMPTION: only vouchers that name a party (seeded ones) export PARTYLEDGERNAME.
            + (f'<PARTYLEDGERNAME>{_x(v["party_ledger"])}</PARTYLEDGERNAME>'
               if v.get("party_ledger") else "") +
            f'{_ids_xml(v)}{entries if full else ""}</VOUCHER>')


# ============================================================================ Flask

def create_app(config: dict | None = None) -> Flask:
    """The emulator as a Flask app.

    ``config``: ``{"companies": [{"name", "books_from": "YYYYMMDD"}], "loaded": [names]}``
    (defaults: one company "Demo Trading Co" from 20200401, all loaded).

    Routes: ``POST /`` and ``POST /<any path>`` — the Tally XML gateway. Sandbox-only (NOT
    Tally): ``GET /_sandbox/state`` (JSON snapshot: companies with masters and vouchers,
    lines as ``"Ledger: -12.00"`` strings, ``request_count``, ``requests``,
    ``max_in_flight``, ``max_concurrent_arrivals``), ``POST /_sandbox/reset``, ``POST
    /_sandbox/faults`` with JSON ``{"down": bool, "hang_seconds": float, "count": N,
    "unload_company": name, "load_company": name, "reply_bomb": bool,
    "alter_reports_created": N}``. Each cost centre in the state carries its payroll fields,
    ``alter_count`` and ``history`` (see ``TallyEmulator._imp_centre``);
    ``alter_reports_created`` answers the next N cost-centre Alters with CREATED. ``down`` closes each
    XML connection without an answer (the client sees a broken connection, as close to
    "connection refused" as a running server can get — ASSUMPTION); ``hang_seconds`` sleeps,
    holding the request lock, before answering the next ``count`` (default 1) XML requests;
    ``reply_bomb`` makes the next XML reply a billion-laughs document; ``ctrl_refs``
    (``"ref"``, ``"raw"`` or null) puts ``&#4;`` / ``\x04`` before exported narrations and
    ledger names until cleared; ``POST /_sandbox/seed`` adds bulk vouchers
    (:func:`sandbox.tallyprime.seed.seed_from_spec`);
    ``hang_after_import`` (seconds) lets the next voucher import that creates something
    complete, then delays only its reply (a crash "after Tally accepted").
    """
    app = Flask("sandbox.tallyprime")
    emulator = TallyEmulator(config)
    app.extensions["tally_emulator"] = emulator

    @app.get("/_sandbox/state")
    def state():
        return jsonify(emulator.state())

    @app.post("/_sandbox/reset")
    def reset():
        emulator.reset()
        return jsonify({"ok": True})

    @app.post("/_sandbox/faults")
    def faults():
        return jsonify(emulator.set_faults(request.get_json(force=True) or {}))

    @app.post("/_sandbox/companies")
    def companies():
        """Sandbox: ``{"name", "books_from": "YYYYMMDD"}`` changes a company's books beginning
        (as an accountant opening an earlier financial year would); 404 for an unknown one."""
        body = request.get_json(force=True) or {}
        with emulator.data_lock:
            company = emulator.companies.get(str(body.get("name", "")).casefold())
            if company is None:
                return jsonify({"error": "no such company"}), 404
            if body.get("books_from"):
                company.books_from = str(body["books_from"])
            return jsonify({"name": company.name, "books_from": company.books_from})

    @app.post("/_sandbox/seed")
    def seed():
        from .seed import seed_from_spec
        return jsonify(seed_from_spec(emulator, request.get_json(force=True) or {}))

    @app.post("/")
    @app.post("/<path:_any>")
    def gateway(_any: str = ""):
        if emulator.faults["down"]:
            sock = request.environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            return Response("Tally is down (sandbox fault)", status=503)
        body, ctype = emulator.handle(request.get_data(), request.headers.get("Content-Type"))
        return Response(body, status=200, content_type=ctype)

    return app
