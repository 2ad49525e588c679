"""Exports of the TallyPrime emulator: inline-TDL collections, single objects, reports,
functions.

Two families of request shapes (see :func:`is_legacy_collection`):

* the shapes ml-connector's own client has always sent (a COLLECTION of TYPE/FETCH/FILTER with
  ``$RemoteID``/``$Name``/``$MailingName = "X"`` or ``$AlterID > N``; Objects; the ``TYPE=Data``
  Day Book) keep the compact one-line replies recorded tests were written against (a sandbox
  deviation: real Tally lays every reply out one element per line);
* everything else real clients send is answered through :mod:`sandbox.tallyprime.tdl` and laid
  out as Tally does (:func:`sandbox.tallyprime.xmlio.tally_layout`): collections with
  NATIVEMETHOD/COMPUTE/FILTERS/CHILDOF/aggregates, collections of the inventory masters,
  built-in collections by ID, ``TYPE=Data`` inline-TDL reports, Stock Summary and List of
  Accounts, the legacy ``Export Data`` reports (Day Book, Bills Receivable, Stock Summary, List
  of Accounts) and ``TYPE=Function`` (``$$SystemPeriodFrom`` …). Emulator config
  ``{"layout": "tally"}`` sends the first family through the engine too.

Legacy details:

* Collections (``TYPE=Collection``, the ``COLLECTION`` named by ``ID`` in the request's inline
  TDL, with ``TYPE``, ``FETCH`` and ``FILTER`` + ``SYSTEM TYPE="Formulae"``): the pattern
  tally-database-loader uses (https://github.com/dhananjay1405/tally-database-loader,
  ``fetchTallyCompanyList``; incremental sync with ``$AlterID > N``). The emulator evaluates
  exactly ``$RemoteID``/``$Name``/``$MailingName = "X"`` and ``$AlterID > N``. Types:
  Company (loaded companies only, with ``ALTMSTID``/``ALTVCHID``), Voucher (honouring
  ``SVFROMDATE``/``SVTODATE``; without them every voucher — ASSUMPTION), Ledger, Group,
  CostCentre, CostCategory, VoucherType.
* Objects (``TYPE=Object``, ``SUBTYPE`` + ``ID``; vouchers by REMOTEID, GUID or MASTERID).
* The ``Day Book`` report (``TYPE=Data``), answered in the legacy ``IMPORTDATA`` layout real
  Tally uses for report exports (Case Study I,
  https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/).

Fault ``ctrl_refs`` puts ``&#4;`` (or a raw ``\\x04``) before exported narrations and ledger
names, as real exports carry such references in other fields (tally-database-loader removes
them in ``processTdlOutputManipulation``; which fields carry them is an ASSUMPTION).
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

from .company import Company, ImportFailure
from .objects import TYPE_ALIASES, Obj, V, canon, objects_of, stock_position
from .tdl import (Env, TdlError, collection_rows_xml, definitions, display_text, evaluate,
                  evaluate_collection, object_xml, parse_date, report_ascii, report_xml,
                  run_report)
from .xmlio import (attr, children, collection_envelope, company_xml, envelope, find,
                    master_xml, text, voucher_xml, x)

LEGACY_TYPES = {"company", "voucher", "ledger", "group", "costcentre", "costcategory",
                "vouchertype"}

FORMULA_EQ = re.compile(r'^\s*\$(RemoteID|Name|MailingName)\s*=\s*"([^"]*)"\s*$', re.I)
FORMULA_GT = re.compile(r"^\s*\$AlterID\s*>\s*(\d+)\s*$", re.I)


def predicate(formula: str):
    """A filter function over an object's fields for the formula forms the sandbox evaluates
    (``$RemoteID``/``$Name``/``$MailingName = "X"``, ``$AlterID > N``); ``None`` for anything
    else. ``$Name`` compares case-insensitively, ``$MailingName`` exactly (ASSUMPTION:
    filterable on a real Tally; tally-database-loader exports the field)."""
    m = FORMULA_EQ.match(formula)
    if m:
        field, value = m.group(1).lower(), m.group(2)
        if field == "name":
            return lambda f: (f.get("name") or "").casefold() == value.casefold()
        if field == "mailingname":
            return lambda f: (f.get("mailingname") or "") == value
        return lambda f: (f.get("remoteid") or "") == value
    m = FORMULA_GT.match(formula)
    if m:
        threshold = int(m.group(1))
        return lambda f: int(f.get("alterid") or 0) > threshold
    return None


def _fields_voucher(v: dict) -> dict:
    return {"remoteid": v["remote_id"], "alterid": v["alter_id"], "name": v["number"]}


def _fields_master(o: dict) -> dict:
    return {"remoteid": "", "alterid": o["alter_id"], "name": o["name"],
            "mailingname": o.get("mailing_name") or ""}


def export_error(message: str) -> str:
    """A failed export: STATUS 0 with one ``LINEERROR``."""
    return envelope(f"<LINEERROR>{x(message)}</LINEERROR>", status=0)


def date_range(sv) -> tuple[str | None, str | None]:
    """``(SVFROMDATE, SVTODATE)`` of the request (``YYYYMMDD``; None when absent)."""
    return text(sv, "SVFROMDATE") or None, text(sv, "SVTODATE") or None


def _in_range(vouchers: list[dict], sv) -> list[dict]:
    frm, to = date_range(sv)
    return [v for v in vouchers if (not frm or v["date"] >= frm) and (not to or v["date"] <= to)]


def inject_ctrl(body: str, faults: dict) -> str:
    """Fault ``ctrl_refs``: ``&#4;`` (``"ref"``) or a raw ``\\x04`` (``"raw"``) before every
    exported narration, ledger and party ledger name; ``body`` unchanged without the fault."""
    mode = faults.get("ctrl_refs")
    if not mode:
        return body
    mark = "\x04" if mode == "raw" else "&#4;"
    for tag in ("<NARRATION>", "<LEDGERNAME>", "<PARTYLEDGERNAME>"):
        body = body.replace(tag, tag + mark)
        typed = tag[:-1] + ' TYPE="String">'          # the same fields as the engine types them
        body = body.replace(typed, typed + mark)
    return body


def export_collection(emulator, root, sv, req_id: str) -> str:
    """``TYPE=Collection``: the ``COLLECTION NAME=req_id`` of the request's
    ``BODY/DESC/TDL/TDLMESSAGE`` → ``ENVELOPE/…/DATA/COLLECTION`` of the matching objects
    (:func:`master_xml`/:func:`voucher_xml`). Errors (STATUS 0): no such collection
    (``Could not find Collection 'X'``), a filter without its formula or with a formula the
    sandbox does not evaluate, an unsupported type (sandbox texts), a company not loaded."""
    tdl = find(root, "BODY/DESC/TDL/TDLMESSAGE")
    coll = next((c for c in children(tdl, "COLLECTION")
                 if attr(c, "NAME").casefold() == req_id.casefold()), None)
    if coll is None:
        return envelope(f"Could not find Collection '{x(req_id)}'", status=0)
    obj_type = text(coll, "TYPE").replace(" ", "").lower()
    fetch = [f.strip().lower() for f in text(coll, "FETCH").split(",") if f.strip()]
    formulas = {attr(s, "NAME").casefold(): (s.text or "").strip()
                for s in children(tdl, "SYSTEM") if attr(s, "TYPE").lower() == "formulae"}
    predicates = []
    for fname in [f.strip() for f in text(coll, "FILTER").split(",") if f.strip()]:
        formula = formulas.get(fname.casefold())
        if formula is None:
            return envelope(f"Sandbox: filter '{x(fname)}' has no SYSTEM Formulae", status=0)
        pred = predicate(formula)
        if pred is None:
            return envelope(f"Sandbox: unsupported filter formula {x(formula)}", status=0)
        predicates.append(pred)
    if obj_type == "company":
        items = "".join(company_xml(c) for key, c in emulator.companies.items() if key in emulator.loaded)
        return envelope(f"<COLLECTION>{items}</COLLECTION>")
    try:
        company = emulator.company_for(sv)
    except ImportFailure as exc:
        return export_error(str(exc))
    if obj_type == "voucher":
        rows = [v for v in _in_range(company.vouchers, sv) if all(p(_fields_voucher(v)) for p in predicates)]
        body = "".join(voucher_xml(v, fetch=fetch, company=company) for v in rows)
    else:
        table = {"ledger": company.ledgers, "group": company.groups,
                 "costcentre": company.cost_centres,
                 "costcategory": company.cost_categories,
                 "vouchertype": company.voucher_types}.get(obj_type)
        if table is None:
            return envelope(f"Sandbox: unsupported collection type {x(obj_type)}", status=0)
        rows = [o for o in table.values() if all(p(_fields_master(o)) for p in predicates)]
        body = "".join(master_xml(obj_type, o) for o in rows)
    return envelope(f"<COLLECTION>{inject_ctrl(body, emulator.faults)}</COLLECTION>")


def is_legacy_collection(root, req_id: str) -> bool:
    """Whether a ``TYPE=Collection`` request is one ml-connector's client has always sent
    (answered by :func:`export_collection`, compact): the collection's name starts with
    ``MLC`` (every collection that client names does), its COLLECTION has only TYPE (of
    :data:`LEGACY_TYPES`), one FETCH (no ``*``) and FILTER, each filter's formula is one the
    legacy :func:`predicate` evaluates, and the TDLMESSAGE holds only COLLECTION and
    SYSTEM."""
    if not req_id.upper().startswith("MLC"):
        return False
    tdl = find(root, "BODY/DESC/TDL/TDLMESSAGE")
    coll = next((c for c in children(tdl, "COLLECTION")
                 if attr(c, "NAME").casefold() == req_id.casefold()), None)
    if coll is None or any(c.tag.upper() not in ("COLLECTION", "SYSTEM") for c in tdl):
        return False
    tags = [c.tag.upper() for c in coll]
    if not set(tags) <= {"TYPE", "FETCH", "FILTER"} or tags.count("FETCH") > 1 \
            or tags.count("FILTER") > 1 or "TYPE" not in tags:
        return False
    if text(coll, "TYPE").replace(" ", "").lower() not in LEGACY_TYPES or "*" in text(coll, "FETCH"):
        return False
    formulas = {attr(sy, "NAME").casefold(): (sy.text or "").strip()
                for sy in children(tdl, "SYSTEM") if attr(sy, "TYPE").lower() == "formulae"}
    for fname in [f.strip() for f in text(coll, "FILTER").split(",") if f.strip()]:
        formula = formulas.get(fname.casefold())
        if formula is None or predicate(formula) is None:
            return False
    return True


def _env(emulator, sv, tdl=None, *, need_company: bool = True) -> Env:
    """The formula environment of a request: its company (``None`` when it names none and
    none is loaded, unless ``need_company``), static variables and TDL definitions."""
    svars = {c.tag.upper(): (c.text or "").strip() for c in (sv if sv is not None else [])}
    try:
        company = emulator.company_for(sv)
    except ImportFailure:
        if need_company:
            raise
        company = None
    formulas, collections = definitions(tdl)
    return Env(emulator, company, svars, formulas, collections)


def engine_error(message: str) -> str:
    """A refused export in the engine family (laid out by the caller)."""
    return envelope(f"<LINEERROR>{x(message)}</LINEERROR>", status=0)


BUILTIN_COLLECTIONS = {k: v for k, v in TYPE_ALIASES.items()}
BUILTIN_COLLECTIONS.update({"listofcompanies": "company", "costcentres": "costcentre",
                            "costcategories": "costcategory", "vouchertypes": "vouchertype",
                            "stockgroups": "stockgroup"})


def export_collection_tdl(emulator, root, sv, req_id: str) -> str:
    """``TYPE=Collection`` through the TDL engine: the request's COLLECTION named ``req_id``
    (or, without one, a built-in collection of that name — ``Ledger``, ``Stock Item``,
    ``Company`` … — with each object's default methods; ASSUMPTION for the method set) →
    the objects with their fetched methods (typed), COMPUTE values, aggregate rows as
    ``OBJECT``. Compact; the dispatcher lays it out. Errors: STATUS 0 with a LINEERROR."""
    tdl = find(root, "BODY/DESC/TDL/TDLMESSAGE")
    formulas, collections = definitions(tdl)
    coll = collections.get(req_id.casefold())
    try:
        if coll is None:
            kind = BUILTIN_COLLECTIONS.get(canon(req_id))
            if kind is None:
                return envelope(f"Could not find Collection '{x(req_id)}'", status=0)
            env = _env(emulator, sv, tdl, need_company=kind != "company")
            objs = objects_of(env.company, kind, emulator)
            rows = "".join(object_xml(o, [], False) for o in objs)
        else:
            kind = TYPE_ALIASES.get(canon(text(coll, "TYPE").split(":")[0]))
            env = _env(emulator, sv, tdl, need_company=kind not in ("company", None))
            objs = evaluate_collection(coll, env)
            rows = collection_rows_xml(coll, objs)
    except ImportFailure as exc:
        return engine_error(str(exc))
    except TdlError as exc:
        return engine_error(str(exc))
    return collection_envelope(inject_ctrl(rows, emulator.faults))


OBJECT_KINDS = {"stockitem", "unit", "godown", "stockgroup", "vouchertype"}


def export_object(emulator, sv, subtype: str, req_id: str) -> str:
    """``TYPE=Object``: ``SUBTYPE`` Voucher (``ID`` = REMOTEID, GUID or MASTERID), Ledger,
    Group, Cost Centre or Cost Category (``ID`` = name) → ``ENVELOPE/…/DATA/TALLYMESSAGE``.
    Not found → STATUS 0 ``Could not find <subtype> 'X'``; other subtypes → a sandbox error."""
    try:
        company = emulator.company_for(sv)
    except ImportFailure as exc:
        return export_error(str(exc))
    kind = subtype.replace(" ", "").lower()
    if kind == "voucher":
        v = next((v for v in company.vouchers if req_id in (v["remote_id"], v["guid"],
                                                              str(v["master_id"]))), None)
        if v is None:
            return export_error(f"Could not find Voucher '{req_id}'")
        return envelope(f"<TALLYMESSAGE>{voucher_xml(v, company=company)}</TALLYMESSAGE>")
    if kind in OBJECT_KINDS:
        obj = next((o for o in objects_of(company, kind, emulator)
                    if o.data["name"].casefold() == req_id.casefold()), None)
        if obj is None:
            return export_error(f"Could not find {subtype} '{req_id}'")
        return envelope(f"<TALLYMESSAGE>{object_xml(obj, [(m, m, None) for m in obj.all_methods()], False)}"
                        f"</TALLYMESSAGE>")
    table = {"ledger": company.ledgers, "group": company.groups,
             "costcentre": company.cost_centres,
             "costcategory": company.cost_categories}.get(kind)
    if table is None:
        return envelope(f"Sandbox: unsupported object type {x(subtype)}", status=0)
    obj = table.get(req_id.casefold())
    if obj is None:
        return export_error(f"Could not find {subtype} '{req_id}'")
    return envelope(f"<TALLYMESSAGE>{master_xml(kind, obj)}</TALLYMESSAGE>")


def export_day_book(emulator, sv) -> str:
    """``TYPE=Data``, ``ID=Day Book``: the company's vouchers in ``SVFROMDATE``..``SVTODATE``
    ordered by date then MASTERID, each in a ``TALLYMESSAGE``, in the
    ``IMPORTDATA/REQUESTDESC/REQUESTDATA`` layout; a company not loaded → STATUS 0."""
    try:
        company = emulator.company_for(sv)
    except ImportFailure as exc:
        return export_error(str(exc))
    rows = sorted(_in_range(company.vouchers, sv), key=lambda v: (v["date"], v["master_id"]))
    msgs = inject_ctrl("".join(
        f'<TALLYMESSAGE xmlns:UDF="TallyUDF">{voucher_xml(v, company=company)}</TALLYMESSAGE>'
        for v in rows),
        emulator.faults)
    return ("<ENVELOPE><HEADER><TALLYREQUEST>Import Data</TALLYREQUEST></HEADER><BODY>"
            "<IMPORTDATA><REQUESTDESC><REPORTNAME>Vouchers</REPORTNAME><STATICVARIABLES>"
            f"<SVCURRENTCOMPANY>{x(company.name)}</SVCURRENTCOMPANY></STATICVARIABLES>"
            f"</REQUESTDESC><REQUESTDATA>{msgs}</REQUESTDATA></IMPORTDATA></BODY></ENVELOPE>")


# =========================================================================== reports

def _sv_dict(sv) -> dict[str, str]:
    return {c.tag.upper(): (c.text or "").strip() for c in (sv if sv is not None else [])}


def _show_date(day: dt.date) -> str:
    """A date as Tally's reports show it: ``1-Apr-26`` (live Bills Receivable capture)."""
    return f"{day.day}-{day:%b}-{day:%y}"


def _day(yyyymmdd: str) -> dt.date:
    return dt.datetime.strptime(yyyymmdd, "%Y%m%d").date()


def stock_summary(company: Company) -> str:
    """The Stock Summary report, item-wise (ASSUMPTION: as with ``ISITEMWISE`` Yes): per stock
    item with a closing balance an alternating ``DSPACCNAME/DSPDISPNAME`` and
    ``DSPSTKINFO/DSPSTKCL`` (``DSPCLQTY`` "30 Nos", ``DSPCLRATE``, ``DSPCLAMTA`` negative =
    debit) — the shape several third-party parsers read from live replies (e.g. the
    "alternating DSPACCNAME/DSPSTKINFO siblings" of a TallyPrime report-builder comment)."""
    from .tdl import fmt_qty
    out = []
    for item in sorted(company.stock_items.values(), key=lambda i: i["name"].casefold()):
        qty, rate = stock_position(company, item["name"])
        if qty == 0:
            continue
        value = (qty * rate).quantize(Decimal("0.01"))
        out.append(f"<DSPACCNAME><DSPDISPNAME>{x(item['name'])}</DSPDISPNAME></DSPACCNAME>"
                   f"<DSPSTKINFO><DSPSTKCL><DSPCLQTY>{x(fmt_qty(qty, item['base_units'], company).strip())}"
                   f"</DSPCLQTY><DSPCLRATE>{rate}</DSPCLRATE><DSPCLAMTA>{-value}</DSPCLAMTA>"
                   f"</DSPSTKCL></DSPSTKINFO>")
    return f"<ENVELOPE>{''.join(out)}</ENVELOPE>"


def bills_receivable(company: Company, svars: dict[str, str]) -> str:
    """Bills Receivable (legacy ``Export Data`` only, live TallyPrime capture in RishieRich/ArcAstraOneAru connector/tests/fixtures): flat repeats of
    ``BILLFIXED(BILLDATE, BILLREF, BILLPARTY)``, ``BILLCL`` (negative = receivable),
    ``BILLDUE``, ``BILLOVERDUE`` (days). ASSUMPTION (no bill-wise tracking in the sandbox):
    every debit to a ledger under Sundry Debtors in a usable voucher is an open bill
    referenced by its voucher number, due on its date, overdue as of ``SVTODATE`` (today when
    absent)."""
    from .objects import usable
    from .tdl import _under
    as_of = parse_date(svars.get("SVTODATE", "")) or dt.date.today()
    frm = parse_date(svars.get("SVFROMDATE", ""))
    out = []
    for v in sorted(company.vouchers, key=lambda v: (v["date"], v["master_id"])):
        day = _day(v["date"])
        if not usable(v) or day > as_of or (frm and day < frm):
            continue
        for e in v["entries"]:
            led = company.ledgers.get(e["ledger"].casefold())
            if led is None or e["amount"] >= 0 or not _under(company.groups, led["parent"],
                                                             "Sundry Debtors"):
                continue
            out.append(f"<BILLFIXED><BILLDATE>{_show_date(day)}</BILLDATE>"
                       f"<BILLREF>{x(v['number'])}</BILLREF><BILLPARTY>{x(led['name'])}"
                       f"</BILLPARTY></BILLFIXED><BILLCL>{e['amount'].quantize(Decimal('0.01'))}"
                       f"</BILLCL><BILLDUE>{_show_date(day)}</BILLDUE>"
                       f"<BILLOVERDUE>{(as_of - day).days}</BILLOVERDUE>")
    return f"<ENVELOPE>{''.join(out)}</ENVELOPE>"


ACCOUNT_TYPES = {
    "allacctg.masters": ("group", "ledger", "costcategory", "costcentre", "vouchertype"),
    "allaccountingmasters": ("group", "ledger", "costcategory", "costcentre", "vouchertype"),
    "allinventorymasters": ("unit", "godown", "stockgroup", "stockitem"),
    "ledgers": ("ledger",), "groups": ("group",), "costcentres": ("costcentre",),
    "costcategories": ("costcategory",), "vouchertypes": ("vouchertype",), "units": ("unit",),
    "godowns": ("godown",), "stockgroups": ("stockgroup",), "stockitems": ("stockitem",),
}
ALL_MASTERS = ("group", "ledger", "costcategory", "costcentre", "vouchertype", "unit", "godown",
               "stockgroup", "stockitem")


def list_of_accounts(emulator, company: Company, svars: dict[str, str]) -> str:
    """List of Accounts: the masters in the ``IMPORTDATA/REQUESTDATA/TALLYMESSAGE`` layout
    Tally exports reports in (Case Study I). ``ACCOUNTTYPE`` (``All Acctg. Masters``, ``All
    Inventory Masters``, ``Ledgers``, ``Stock Items`` …; ASSUMPTION on the accepted values)
    selects them; without it every master. Each master is written whole, typed."""
    kinds = ACCOUNT_TYPES.get(canon(svars.get("ACCOUNTTYPE", "")), ALL_MASTERS)
    msgs = []
    for kind in kinds:
        for o in objects_of(company, kind, emulator):
            body = object_xml(o, [(m, m, None) for m in o.all_methods()], False)
            msgs.append(f'<TALLYMESSAGE xmlns:UDF="TallyUDF">{body}</TALLYMESSAGE>')
    return ("<ENVELOPE><HEADER><TALLYREQUEST>Import Data</TALLYREQUEST></HEADER><BODY>"
            "<IMPORTDATA><REQUESTDESC><REPORTNAME>All Masters</REPORTNAME><STATICVARIABLES>"
            f"<SVCURRENTCOMPANY>{x(company.name)}</SVCURRENTCOMPANY></STATICVARIABLES>"
            f"</REQUESTDESC><REQUESTDATA>{''.join(msgs)}</REQUESTDATA></IMPORTDATA></BODY>"
            "</ENVELOPE>")


def export_data_tdl(emulator, root, sv, req_id: str) -> tuple[str, str]:
    """``TYPE=Data`` other than the legacy Day Book: ``(reply, kind)`` with ``kind`` ``"xml"``
    (to be laid out) or ``"ascii"`` (sent as is).

    * an inline-TDL REPORT named ``req_id`` (tally-database-loader's shape) → its lines, as
      ``<ENVELOPE>`` + one ``<XMLTAG>text</XMLTAG>`` per field, or, for ``SVEXPORTFORMAT``
      ``ASCII (Comma Delimited)``, ``"v1","v2",`` CRLF per line (empty output = no line; the
      loader reads an empty reply as "company closed");
    * ``Bills Receivable`` → an empty ``<ENVELOPE></ENVELOPE>`` (live TallyPrime answered
      the ``TYPE=Data`` form so; only the legacy ``Export Data`` form lists bills);
    * ``Stock Summary`` → :func:`stock_summary`; ``List of Accounts`` → :func:`list_of_accounts`;
    * anything else → ``Unknown Request, cannot be processed`` (STATUS 0).
    """
    tdl = find(root, "BODY/DESC/TDL/TDLMESSAGE")
    svars = _sv_dict(sv)
    ascii_out = "ascii" in svars.get("SVEXPORTFORMAT", "").lower()
    reports = {attr(r, "NAME").casefold() for r in children(tdl, "REPORT")}
    try:
        if req_id.casefold() in reports:
            env = _env(emulator, sv, tdl, need_company=False)
            report = next(r for r in children(tdl, "REPORT")
                          if attr(r, "NAME").casefold() == req_id.casefold())
            if not children(report, "FORMS") and not children(report, "FORM"):
                return "<ENVELOPE></ENVELOPE>", "xml"   # USE/SET-only reports: nothing shown
            rows = run_report(req_id, tdl, env)
            if ascii_out:
                return report_ascii(rows), "ascii"
            return report_xml(rows), "xml"
        name = canon(req_id)
        if name == "billsreceivable":
            return "<ENVELOPE></ENVELOPE>", "xml"
        if name in ("stocksummary", "listofaccounts"):
            company = emulator.company_for(sv)
            if name == "stocksummary":
                return stock_summary(company), "xml"
            return list_of_accounts(emulator, company, svars), "xml"
    except ImportFailure as exc:
        return engine_error(str(exc)), "xml"
    except TdlError as exc:
        return engine_error(str(exc)), "xml"
    return envelope("Unknown Request, cannot be processed", status=0), "compact"


def export_data_legacy(emulator, root) -> str:
    """The legacy ``TALLYREQUEST`` ``Export Data`` form (``BODY/EXPORTDATA/REQUESTDESC`` with
    ``REPORTNAME`` and ``STATICVARIABLES``): Day Book (vouchers in SVFROMDATE..SVTODATE,
    ``IMPORTDATA`` layout), Bills Receivable, Stock Summary, List of Accounts. Another report
    → ``Unknown Request, cannot be processed``."""
    desc = find(root, "BODY/EXPORTDATA/REQUESTDESC")
    sv = find(desc, "STATICVARIABLES")
    svars = _sv_dict(sv)
    name = canon(text(desc, "REPORTNAME"))
    try:
        if name == "daybook":
            return export_day_book(emulator, sv)
        company = emulator.company_for(sv)
        if name == "billsreceivable":
            return bills_receivable(company, svars)
        if name == "stocksummary":
            return stock_summary(company)
        if name == "listofaccounts":
            return list_of_accounts(emulator, company, svars)
    except ImportFailure as exc:
        return export_error(str(exc))
    return envelope("Unknown Request, cannot be processed", status=0)


JD_EPOCH = dt.date(1899, 12, 31)


def export_function(emulator, root, sv, req_id: str) -> str:
    """``TYPE=Function`` (tally-database-loader ``fetchTallyCompanyDefaultPeriod`` sends
    ``<ID>$$SystemPeriodFrom</ID>`` and reads ``<RESULT TYPE="Date" JD="n">``): the function
    ``req_id`` (``$$`` optional) with ``DESC/FUNCPARAMLIST/PARAM`` values as its arguments
    (TallyConnector's ``FunctionParam``), evaluated for the request's company →
    ``DATA/RESULT TYPE="<type>"``; a date carries ``JD`` = days since 31-Dec-1899 (JD 1 =
    1-Jan-1900, per a third-party client's reading; ASSUMPTION) and shows ``1-Apr-2024``
    (ASSUMPTION). Functions outside :data:`sandbox.tallyprime.tdl.FUNCTIONS` → a sandbox
    error."""
    name = req_id.strip()
    name = name[2:] if name.startswith("$$") else name
    params = [p.text or "" for p in children(find(root, "BODY/DESC/FUNCPARAMLIST"), "PARAM")]
    try:
        env = _env(emulator, sv, None, need_company=False)
        src = "$$" + name + "".join(':"' + p.replace('"', "") + '"' for p in params)
        value = evaluate(src, None, env)
    except (TdlError, ImportFailure) as exc:
        return engine_error(str(exc))
    if value.type == "Date":
        if value.value is None:
            inner = '<RESULT TYPE="Date"></RESULT>'
        else:
            day = value.value
            inner = (f'<RESULT TYPE="Date" JD="{(day - JD_EPOCH).days}">'
                     f"{day.day}-{day:%b}-{day.year}</RESULT>")
    else:
        inner = f'<RESULT TYPE="{value.type}">{x(display_text(value, env.company))}</RESULT>'
    return envelope(inner)
