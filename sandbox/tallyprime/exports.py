"""Exports of the TallyPrime emulator: inline-TDL collections, single objects, the Day Book.

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

import re

from .company import ImportFailure
from .xmlio import attr, children, company_xml, envelope, find, master_xml, text, voucher_xml, x

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
        body = "".join(voucher_xml(v, fetch=fetch) for v in rows)
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
        return envelope(f"<TALLYMESSAGE>{voucher_xml(v)}</TALLYMESSAGE>")
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
        f'<TALLYMESSAGE xmlns:UDF="TallyUDF">{voucher_xml(v)}</TALLYMESSAGE>' for v in rows),
        emulator.faults)
    return ("<ENVELOPE><HEADER><TALLYREQUEST>Import Data</TALLYREQUEST></HEADER><BODY>"
            "<IMPORTDATA><REQUESTDESC><REPORTNAME>Vouchers</REPORTNAME><STATICVARIABLES>"
            f"<SVCURRENTCOMPANY>{x(company.name)}</SVCURRENTCOMPANY></STATICVARIABLES>"
            f"</REQUESTDESC><REQUESTDATA>{msgs}</REQUESTDATA></IMPORTDATA></BODY></ENVELOPE>")
