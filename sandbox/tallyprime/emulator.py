"""The TallyPrime emulator's state and XML entry point: :class:`TallyEmulator`.

One XML request at a time (a lock held per request: community clients serialise requests to
the desktop app, which is single-company and UI-bound — the exact desktop behaviour is an
ASSUMPTION); every processed request answers HTTP 200 with failures in the body
(https://help.tallysolutions.com/pre-requisites-for-integrations; tally-database-loader
checks only ``statusCode == 200``); the reply is in the request's encoding (UTF-16 replies
are UTF-16LE with a BOM — ASSUMPTION).

Password-protected companies (a company created with ``username``/``password``). Tally's own
answer: "When a request is received and the company is loaded, TallyPrime will respond to the
request ... regardless of whether the company is password protected or not. Hence, there is
no authentication required to process HTTP requests"
(https://help.tallysolutions.com/generic-errors-queries). No Tally document says how an XML
request would carry a company's user and password; the only public client code found sends
them as static variables ``SVCURRENTUSER`` and ``SVCURRENTUSERPASSWORD`` (a PHP
``TallyConnectionService::buildListCompaniesRequest``, itself marked "needs live
verification"). The emulator therefore offers, as a sandbox rule (ASSUMPTION, stricter than
Tally's FAQ), to refuse every request for a protected company whose STATICVARIABLES do not
carry :data:`USER_VARIABLE`/:data:`PASSWORD_VARIABLE` with the right values — so a client can
prove it sends them on every request — with STATUS 0 and a LINEERROR (texts
:data:`LOGIN_REQUIRED`/:data:`LOGIN_INVALID`, ours, ASSUMPTION). ``{"enforce_login": false}``
in the emulator config reproduces Tally's documented behaviour (credentials ignored). A
request naming no company that lists companies (a Company collection) is not for one company
and is answered. Each request is recorded with ``credentials``: ``"valid"``, ``"invalid"`` or
``"none"`` (never the values).
"""
from __future__ import annotations

import copy
import threading
import time

from defusedxml import ElementTree as SafeET
from defusedxml.common import DefusedXmlException

from .company import AuthFailure, Company, ImportFailure, company_table, resolve_company
from .exports import (BUILTIN_COLLECTIONS, engine_error, export_collection,
                      export_collection_tdl, export_data_legacy, export_data_tdl, export_day_book,
                      export_error, export_function, export_object, is_legacy_collection)
from .imports import import_data
from .inventory import voucher_summary
from .objects import canon
from .xmlio import (XML_DECLARATION, attr, children, decode_request, envelope, find, fmt_amount,
                    import_reply, tally_layout, text)

UNKNOWN_REQUEST = "Unknown Request, cannot be processed"
USER_VARIABLE = "SVCURRENTUSER"
PASSWORD_VARIABLE = "SVCURRENTUSERPASSWORD"
LOGIN_REQUIRED = "Company '{company}' needs a User Name and Password"
LOGIN_INVALID = "Invalid User Name or Password for Company '{company}'"

# Fault reply_bomb: a billion-laughs document (clients must parse replies safely).
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


class TallyEmulator:
    """State (companies, faults, request statistics) and request handling; :func:`create_app`
    wraps it in Flask. ``config``: ``{"companies": [{"name", "books_from": "YYYYMMDD"}],
    "loaded": [names]}`` (default one company "Demo Trading Co" from 20200401, all loaded).

    ``xml_lock`` serialises XML requests; ``data_lock`` (re-entrant) guards the state for
    the admin routes and seeding."""

    def __init__(self, config: dict | None = None):
        self.config = copy.deepcopy(config or {})
        self.xml_lock = threading.Lock()      # one XML request at a time (as the desktop app)
        self.data_lock = threading.RLock()    # guards state for admin routes
        self.reset()

    def reset(self) -> None:
        """Back to the configured initial state, faults and statistics cleared."""
        with self.data_lock:
            self.companies, self.loaded = company_table(self.config)
            self.faults = {"down": False, "hang_seconds": 0.0, "hang_count": 0,
                           "reply_bomb": False, "alter_reports_created": 0}
            self.request_count = 0
            self.requests: list[dict] = []
            self.arrived = 0
            self.max_arrived = 0
            self.in_flight = 0
            self.max_in_flight = 0

    def company_for(self, sv) -> Company:
        """The company a request's STATICVARIABLES ``sv`` names (see
        :func:`sandbox.tallyprime.company.resolve_company`); raises :class:`ImportFailure`."""
        return resolve_company(self.companies, self.loaded, text(sv, "SVCURRENTCOMPANY"))

    # ---------------------------------------------------------------- admin
    def state(self) -> dict:
        """JSON-safe snapshot: ``request_count``, ``requests`` (``{tallyrequest, type, id,
        credentials}`` each), ``max_in_flight``, ``max_concurrent_arrivals``, ``faults`` and
        ``companies`` (name, books_from, loaded, protected, alter_ids ``{master, voucher}``,
        groups, cost categories, cost centres, ledgers, units, godowns, stock groups, stock
        items, deleted objects, vouchers with lines as ``"Ledger: -12.00"`` strings and, for
        invoice vouchers, reference, flags and items with quantities/rates/amounts as
        strings)."""
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
                        "lines": [f"{e['ledger']}: {fmt_amount(e['amount'])}" for e in v["entries"]],
                        **({k: val for k, val in voucher_summary(v).items()
                            if k in ("reference", "is_cancelled", "is_optional", "items",
                                     "party_ledger")} if v.get("is_invoice") else {}),
                    } for v in c.vouchers],
                    "protected": c.requires_login(),
                    "alter_ids": dict(zip(("master", "voucher"), c.last_alter_ids())),
                    "units": [dict(u) for u in c.units.values()],
                    "godowns": [dict(g) for g in c.godowns.values()],
                    "stock_groups": [dict(g) for g in c.stock_groups.values()],
                    "stock_items": [dict(i) for i in c.stock_items.values()],
                    "deleted": list(c.deleted),
                })
            return out

    def set_faults(self, spec: dict) -> dict:
        """Apply a fault spec (keys documented in :func:`sandbox.tallyprime.app.create_app`);
        returns the current faults."""
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
            if "ctrl_refs" in spec:  # "ref" | "raw" | None: see exports.inject_ctrl
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
        """Process one XML request under the request lock; returns ``(body, content type)``
        (``text/xml; charset=utf-8`` or ``…utf-16``). Applies the faults ``hang_seconds``
        (sleep before answering, holding the lock), ``reply_bomb`` and ``hang_after_import``
        (the import completes, only the reply is late)."""
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
                        body_text, encoding = decode_request(raw, content_type)
                    except UnicodeDecodeError:
                        body_text, encoding = "", "utf-8"
                    with self.data_lock:
                        reply = self.dispatch(body_text)
                        if self.faults["reply_bomb"]:
                            self.faults["reply_bomb"] = False
                            reply = BOMB
                        hang_after = 0.0
                        if self.faults.get("hang_after_import") and "<VOUCHER" in body_text \
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

    def dispatch(self, body_text: str) -> str:
        """Route one decoded request by its ``HEADER`` (``TALLYREQUEST``, ``TYPE``, ``ID``,
        ``SUBTYPE``; https://help.tallysolutions.com/significance-of-tags) to an import or
        export and return the reply text; records ``{tallyrequest, type, id, credentials}``.
        Entity declarations → a sandbox error; not XML, not an ENVELOPE or an unknown request →
        ``Unknown Request, cannot be processed`` (STATUS 0). The legacy ``Export Data`` body
        (``EXPORTDATA/REQUESTDESC``) is only understood with ``TALLYREQUEST`` ``Export Data``:
        sent with ``EXPORT`` it is that same unknown request (live TallyPrime capture, RishieRich/ArcAstraOneAru). Replies
        are laid out as Tally does except for ml-connector's legacy shapes (see
        :mod:`sandbox.tallyprime.exports`). Caller holds ``data_lock``."""
        try:
            root = SafeET.fromstring(XML_DECLARATION.sub("", body_text, count=1))
        except DefusedXmlException:
            return envelope("Sandbox: entity declarations are not accepted", status=0)
        except SafeET.ParseError:
            return envelope(UNKNOWN_REQUEST, status=0)
        if root.tag.upper() != "ENVELOPE":
            return envelope(UNKNOWN_REQUEST, status=0)
        header = find(root, "HEADER")
        tally_request = text(header, "TALLYREQUEST").lower()
        req_type = text(header, "TYPE").lower()
        req_id = text(header, "ID")
        record = {"tallyrequest": text(header, "TALLYREQUEST"), "type": text(header, "TYPE"),
                  "id": req_id, "credentials": "none"}
        self.requests.append(record)
        if tally_request == "import data":
            sv = find(root, "BODY/IMPORTDATA/REQUESTDESC/STATICVARIABLES")
        elif tally_request == "export data":
            sv = find(root, "BODY/EXPORTDATA/REQUESTDESC/STATICVARIABLES")
        else:
            sv = find(root, "BODY/DESC/STATICVARIABLES")
        record["credentials"] = self._credentials(sv)
        tally = self.config.get("layout") == "tally"
        is_import = tally_request == "import data" or (tally_request == "import" and req_type == "data")
        legacy = (is_import or (tally_request == "export" and req_type == "object"
                                and canon(text(header, "SUBTYPE")) not in ("stockitem", "unit",
                                                                           "godown", "stockgroup",
                                                                           "vouchertype"))
                  or (tally_request == "export" and req_type == "data" and req_id.lower() == "day book")
                  or (tally_request == "export" and req_type == "collection"
                      and is_legacy_collection(root, req_id)))
        try:
            self._check_login(sv, root, tally_request, req_type, req_id)
        except AuthFailure as exc:
            if is_import:
                reply = import_reply(dict.fromkeys(("CREATED", "ALTERED", "DELETED", "LASTVCHID",
                                                    "LASTMID", "COMBINED", "IGNORED", "ERRORS",
                                                    "CANCELLED", "EXCEPTIONS"), 0) | {"ERRORS": 1},
                                     [str(exc)], legacy=tally_request == "import data", status=0)
            else:
                reply = export_error(str(exc)) if legacy else engine_error(str(exc))
            return tally_layout(reply) if (tally or not legacy) else reply
        reply, kind = self._route(root, header, sv, tally_request, req_type, req_id, tally, legacy)
        if kind == "ascii":
            return reply
        if kind == "tally" or (tally and kind != "raw"):
            return tally_layout(reply)
        return reply

    def _route(self, root, header, sv, tally_request, req_type, req_id, tally, legacy):
        """``(reply, kind)``: kind ``compact`` (as is, unless the config says ``tally``),
        ``tally`` (to be laid out), ``ascii`` (as is)."""
        if tally_request == "import data":
            return import_data(self, sv, find(root, "BODY/IMPORTDATA/REQUESTDATA"), legacy=True), "compact"
        if tally_request == "import" and req_type == "data":
            return import_data(self, sv, find(root, "BODY/DATA"), legacy=False), "compact"
        if tally_request == "export data":
            if find(root, "BODY/EXPORTDATA/REQUESTDESC") is None:
                return envelope(UNKNOWN_REQUEST, status=0), "compact"
            return export_data_legacy(self, root), "tally"
        if tally_request == "export":
            if req_type == "collection":
                if legacy and not tally:
                    return export_collection(self, root, sv, req_id), "compact"
                return export_collection_tdl(self, root, sv, req_id), "tally"
            if req_type == "object":
                return export_object(self, sv, text(header, "SUBTYPE"), req_id), \
                    ("compact" if legacy else "tally")
            if req_type == "data":
                if req_id.lower() == "day book":
                    return export_day_book(self, sv), "compact"
                reply, kind = export_data_tdl(self, root, sv, req_id)
                return reply, {"xml": "tally", "ascii": "ascii"}.get(kind, "compact")
            if req_type == "function":
                return export_function(self, root, sv, req_id), "tally"
        return envelope(UNKNOWN_REQUEST, status=0), "compact"

    # ---------------------------------------------------------------- credentials
    @staticmethod
    def _given(sv) -> tuple[str | None, str | None]:
        user = find(sv, USER_VARIABLE)
        password = find(sv, PASSWORD_VARIABLE)
        return ((user.text or "").strip() if user is not None else None,
                (password.text or "") if password is not None else None)

    def _credentials(self, sv) -> str:
        """What the request carried: ``"none"``; ``"valid"``/``"invalid"`` credentials for a
        protected company; ``"unchecked"`` when its company is not protected (or not loaded)."""
        user, password = self._given(sv)
        if user is None and password is None:
            return "none"

        def ok(c: Company) -> bool:
            return (user or "").casefold() == c.username.casefold() and password == c.password
        if not text(sv, "SVCURRENTCOMPANY"):
            # no company named: valid when they open one of the loaded protected companies
            protected = [c for k, c in self.companies.items()
                         if k in self.loaded and c.requires_login()]
            if any(ok(c) for c in protected):
                return "valid"
        try:
            company = self.company_for(sv)
        except ImportFailure:
            return "unchecked"
        if not company.requires_login():
            return "unchecked"
        return "valid" if ok(company) else "invalid"

    def _check_login(self, sv, root, tally_request, req_type, req_id) -> None:
        """Raise :class:`AuthFailure` when the request is for a protected company and does not
        carry its user name and password (see the module doc)."""
        if not self.config.get("enforce_login", True):
            return
        if not text(sv, "SVCURRENTCOMPANY") and tally_request == "export" and req_type == "collection":
            tdl = find(root, "BODY/DESC/TDL/TDLMESSAGE")
            coll = next((c for c in children(tdl, "COLLECTION")
                         if attr(c, "NAME").casefold() == req_id.casefold()), None)
            kind = (canon(text(coll, "TYPE")) if coll is not None
                    else BUILTIN_COLLECTIONS.get(canon(req_id), ""))
            if kind in ("company", "companies"):
                return
        try:
            company = self.company_for(sv)
        except ImportFailure:
            return  # the export/import itself answers "not loaded"
        if not company.requires_login():
            return
        user, password = self._given(sv)
        if user is None and password is None:
            raise AuthFailure(LOGIN_REQUIRED.format(company=company.name))
        if (user or "").casefold() != company.username.casefold() or password != company.password:
            raise AuthFailure(LOGIN_INVALID.format(company=company.name))


__all__ = ["TallyEmulator", "ImportFailure", "BOMB", "USER_VARIABLE", "PASSWORD_VARIABLE",
           "LOGIN_REQUIRED", "LOGIN_INVALID"]
