"""Request envelopes for TallyPrime's XML gateway (pure functions returning ``str`` XML).

Every builder uses :func:`xmltodict.unparse`, which escapes ``&``, ``<`` and quotes (names like
``"Duties & Taxes"`` travel as ``Duties &amp; Taxes``, https://github.com/dhananjay1405/tally-database-loader processTdlOutputManipulation). No XML declaration
is written: the transport decides the encoding (UTF-8 or UTF-16, https://help.tallysolutions.com/pre-requisites-for-integrations/), and a
declaration naming another encoding than the bytes would make the document invalid.

Shapes follow the official envelope (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/): ``ENVELOPE/HEADER`` with
``VERSION`` 1, ``TALLYREQUEST``, ``TYPE``, ``ID`` (and ``SUBTYPE`` for objects), then
``BODY/DESC/STATICVARIABLES`` and, for imports, ``BODY/DATA/TALLYMESSAGE``.

Money is ``Decimal`` in currency units, printed with exactly two decimals.
"""
from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Iterable, Sequence

import xmltodict

from connector_tasks.core.errors import MappingError
from connector_tasks.domain.model import CENT, JournalEntry, JournalLine, LedgerMaster

EXPORT_FORMAT = "$$SysName:XML"
PRIMARY_COST_CATEGORY = "Primary Cost Category"

__all__ = [
    "tally_date", "tally_amount", "voucher_import", "masters_import", "object_export",
    "collection_export", "day_book_export", "company_list_export", "encode_request",
    "COMPANY_COLLECTION", "employee_import", "employee_groups_import", "employee_lookup_export",
    "company_alter_ids_export", "EMPLOYEE_KEY_FIELD", "EMPLOYEE_FETCH", "with_credentials",
    "USER_VARIABLE", "PASSWORD_VARIABLE", "inline_tdl_export",
]

COMPANY_COLLECTION = "MLCCompanyList"


def tally_date(value: dt.date | str) -> str:
    """``YYYYMMDD`` for a ``datetime.date`` (or a string already in that form).

    Source: https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ ("Dates: YYYYMMDD in requests"). Raises ``ValueError`` for a
    string that is not eight digits.
    """
    if isinstance(value, dt.date):
        return value.strftime("%Y%m%d")
    text = str(value).strip().replace("-", "")
    if len(text) != 8 or not text.isdigit():
        raise ValueError(f"not a YYYYMMDD date: {value!r}")
    return text


def tally_amount(amount: Decimal) -> str:
    """A ``Decimal`` printed as a plain decimal string with two places (``"-12000.00"``).

    Refuses ``float`` with ``TypeError`` (money is never float).
    """
    if not isinstance(amount, Decimal):
        raise TypeError(f"amount must be Decimal, got {type(amount).__name__}")
    return format(amount.quantize(CENT), "f")


def _yes_no(flag: bool) -> str:
    return "Yes" if flag else "No"


def _render(doc: dict) -> str:
    return xmltodict.unparse(doc, full_document=False)


def _static_variables(company: str | None, **extra: str | None) -> dict:
    sv: dict = {}
    if company:
        sv["SVCURRENTCOMPANY"] = company
    for key, value in extra.items():
        if value is not None:
            sv[key.upper()] = value
    return sv


def _signed(line_is_debit: bool, amount: Decimal) -> str:
    """Tally sign convention (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/): debit → negative, credit → positive."""
    return tally_amount(-amount if line_is_debit else amount)


def _ledger_entry(line: JournalLine) -> dict:
    entry: dict = {
        "LEDGERNAME": line.ledger,
        "ISDEEMEDPOSITIVE": _yes_no(line.is_debit),
        "AMOUNT": _signed(line.is_debit, line.amount),
    }
    if line.allocations:
        by_category: dict[str, list] = {}
        for alloc in line.allocations:
            by_category.setdefault(alloc.cost_category, []).append(alloc)
        entry["CATEGORYALLOCATIONS.LIST"] = [
            {
                "CATEGORY": category,
                "ISDEEMEDPOSITIVE": _yes_no(line.is_debit),
                "COSTCENTREALLOCATIONS.LIST": [
                    {"NAME": a.cost_centre, "AMOUNT": _signed(line.is_debit, a.amount)}
                    for a in allocs
                ],
            }
            for category, allocs in by_category.items()
        ]
    return entry


def voucher_import(entry: JournalEntry, company: str, voucher_type: str = "Journal") -> str:
    """The Import/Data ``Vouchers`` envelope that creates ``entry`` as one accounting voucher.

    ``<VOUCHER REMOTEID="{entry.key}" VCHTYPE=voucher_type ACTION="Create"
    OBJVIEW="Accounting Voucher View">`` with ``DATE`` (YYYYMMDD), ``VOUCHERTYPENAME``,
    ``NARRATION`` and one ``ALLLEDGERENTRIES.LIST`` per line: a debit is
    ``ISDEEMEDPOSITIVE=Yes`` with a negative ``AMOUNT``, a credit ``No`` with a positive one
    (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/, official Case Study I). Lines with cost allocations carry
    ``CATEGORYALLOCATIONS.LIST`` (``CATEGORY``, ``ISDEEMEDPOSITIVE``) holding
    ``COSTCENTREALLOCATIONS.LIST`` (``NAME``, ``AMOUNT`` signed like the line) (https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml). ``VOUCHERNUMBER`` is not sent: Tally auto-numbers and may replace it (Tally XML integration);
    the entry is identified by ``REMOTEID``.

    Raises :class:`MappingError` before building when the entry is unbalanced, a line has
    two sides, or allocations do not add up (``JournalEntry.check_balanced``), or when it has
    fewer than two lines.
    """
    entry.check_balanced()
    if len(entry.lines) < 2:
        raise MappingError(f"journal {entry.key} needs at least two lines", system="tallyprime")
    if not company:
        raise MappingError("Tally company name is empty", system="tallyprime")
    voucher = {
        "@REMOTEID": entry.key,
        "@VCHTYPE": voucher_type,
        "@ACTION": "Create",
        "@OBJVIEW": "Accounting Voucher View",
        "DATE": tally_date(entry.date),
        "VOUCHERTYPENAME": voucher_type,
        "NARRATION": entry.narration,
        "ALLLEDGERENTRIES.LIST": [_ledger_entry(line) for line in entry.lines],
    }
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Import", "TYPE": "Data", "ID": "Vouchers"},
        "BODY": {
            "DESC": {"STATICVARIABLES": _static_variables(company)},
            "DATA": {"TALLYMESSAGE": {"@xmlns:UDF": "TallyUDF", "VOUCHER": voucher}},
        },
    }})


def masters_import(ledgers: Iterable[LedgerMaster], cost_centres: Iterable[tuple[str, str]],
                   company: str, groups: Iterable[tuple[str, str]] = (),
                   cost_categories: Iterable[str] = ()) -> str:
    """The Import/Data ``All Masters`` envelope creating groups, cost categories, cost
    centres and ledgers, in that order (a ledger's group and a centre's category must exist
    before it; Tally imports objects in document order — ASSUMPTION).

    ``groups`` are ``(name, parent)`` pairs (parent e.g. ``"Current Liabilities"``; ``""`` or
    ``"Primary"`` for a primary group); ``cost_categories`` names categories to create;
    ``cost_centres`` are ``(category, name)`` pairs, created under the root (empty
    ``PARENT``); ``ledgers`` become ``<LEDGER NAME=… ACTION="Create">`` with ``NAME``,
    ``PARENT`` and ``ISCOSTCENTRESON`` (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Masters"; https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml).
    ``CATEGORY`` is written inside each ``COSTCENTRE`` (tag spelling: ASSUMPTION, following
    the TDL field name ``Category`` in tally-export-config.yaml).
    """
    groups = list(groups)
    categories = list(dict.fromkeys(cost_categories))
    centres = list(cost_centres)
    ledgers = list(ledgers)
    message: dict = {"@xmlns:UDF": "TallyUDF"}
    if groups:
        message["GROUP"] = [
            {"@NAME": name, "@ACTION": "Create", "NAME": name,
             "PARENT": "" if parent in (None, "", "Primary") else parent}
            for name, parent in groups
        ]
    if categories:
        message["COSTCATEGORY"] = [
            {"@NAME": name, "@ACTION": "Create", "NAME": name,
             "ALLOCATEREVENUE": "Yes", "ALLOCATENONREVENUE": "Yes"}
            for name in categories
        ]
    if centres:
        message["COSTCENTRE"] = [
            {"@NAME": name, "@ACTION": "Create", "NAME": name,
             "CATEGORY": category or PRIMARY_COST_CATEGORY, "PARENT": ""}
            for category, name in centres
        ]
    if ledgers:
        message["LEDGER"] = [
            {"@NAME": l.name, "@ACTION": "Create", "NAME": l.name, "PARENT": l.group,
             "ISCOSTCENTRESON": _yes_no(l.cost_centres_on)}
            for l in ledgers
        ]
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Import", "TYPE": "Data", "ID": "All Masters"},
        "BODY": {
            "DESC": {"STATICVARIABLES": _static_variables(company)},
            "DATA": {"TALLYMESSAGE": message},
        },
    }})


def object_export(company: str, subtype: str, name: str, fetch: Sequence[str]) -> str:
    """Export/Object envelope: ``TYPE Object``, ``SUBTYPE`` (Ledger, Voucher, CostCentre,
    Group…), ``<ID TYPE="Name">name</ID>`` and ``FETCHLIST/FETCH`` per field (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Export (object)", 3rd-party Demo Samples)."""
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Export", "TYPE": "Object",
                   "SUBTYPE": subtype, "ID": {"@TYPE": "Name", "#text": name}},
        "BODY": {"DESC": {
            "STATICVARIABLES": _static_variables(company, SVEXPORTFORMAT=EXPORT_FORMAT),
            "FETCHLIST": {"FETCH": list(fetch)},
        }},
    }})


def collection_export(company: str | None, collection_name: str, obj_type: str,
                      fetch: Sequence[str], filter_formula: str | None = None,
                      from_date: dt.date | str | None = None,
                      to_date: dt.date | str | None = None) -> str:
    """Export/Collection envelope with an inline TDL collection (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/, pattern
    of tally-database-loader): ``COLLECTION NAME=collection_name`` of ``TYPE obj_type`` with
    ``FETCH`` (comma-joined) and, when ``filter_formula`` is given, ``FILTER Fltr01`` plus
    ``<SYSTEM TYPE="Formulae" NAME="Fltr01">formula</SYSTEM>``.

    ``SVFROMDATE``/``SVTODATE`` (YYYYMMDD) bound voucher collections. ``company=None`` omits
    ``SVCURRENTCOMPANY`` (Tally then uses its current company). The formulas this project
    sends are ``$RemoteID = "X"`` (ASSUMPTION: RemoteID is filterable), ``$AlterID > N`` and
    ``$Name = "X"``.
    """
    collection: dict = {"@NAME": collection_name, "@ISMODIFY": "No", "TYPE": obj_type,
                        "FETCH": ", ".join(fetch)}
    tdl: dict = {"COLLECTION": collection}
    if filter_formula:
        collection["FILTER"] = "Fltr01"
        tdl["SYSTEM"] = {"@TYPE": "Formulae", "@NAME": "Fltr01", "#text": filter_formula}
    sv = _static_variables(
        company, SVEXPORTFORMAT=EXPORT_FORMAT,
        SVFROMDATE=tally_date(from_date) if from_date is not None else None,
        SVTODATE=tally_date(to_date) if to_date is not None else None)
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Export", "TYPE": "Collection",
                   "ID": collection_name},
        "BODY": {"DESC": {"STATICVARIABLES": sv, "TDL": {"TDLMESSAGE": tdl}}},
    }})


def day_book_export(company: str, from_date: dt.date | str, to_date: dt.date | str) -> str:
    """Export/Data ``Day Book`` report for ``from_date``..``to_date`` (inclusive) as XML:
    ``SVFROMDATE``/``SVTODATE`` YYYYMMDD, ``SVEXPORTFORMAT $$SysName:XML`` (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Export (report)")."""
    sv = _static_variables(company, SVFROMDATE=tally_date(from_date),
                           SVTODATE=tally_date(to_date), SVEXPORTFORMAT=EXPORT_FORMAT)
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Export", "TYPE": "Data", "ID": "Day Book"},
        "BODY": {"DESC": {"STATICVARIABLES": sv}},
    }})


def company_list_export() -> str:
    """Collection export of ``Company`` objects with ``Name`` and ``BooksFrom`` (the loaded
    companies; pattern of tally-database-loader ``fetchTallyCompanyList``, https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/). No ``SVCURRENTCOMPANY``."""
    return collection_export(None, COMPANY_COLLECTION, "Company", ["Name", "BooksFrom"])


# ----------------------------------------------------------------------- credentials

#: Static variables carrying a protected company's Tally user name and password. No Tally
#: document says how an XML request carries them (Tally's FAQ says a *loaded* company answers
#: HTTP requests without any: https://help.tallysolutions.com/generic-errors-queries); these
#: names are the only ones found in public client code (a PHP ``TallyConnectionService``,
#: itself "needs live verification"). ASSUMPTION — change them here only.
USER_VARIABLE = "SVCURRENTUSER"
PASSWORD_VARIABLE = "SVCURRENTUSERPASSWORD"

_SV_OPEN = re.compile(r"<STATICVARIABLES>|<STATICVARIABLES/>")
_DESC_OPEN = re.compile(r"<DESC>|<DESC/>")


def with_credentials(xml: str, username: str | None, password: str | None) -> str:
    """``xml`` with the company's user name and password added as the first static variables
    (:data:`USER_VARIABLE`, :data:`PASSWORD_VARIABLE`, escaped) — into the first
    ``STATICVARIABLES`` element (``BODY/DESC``, ``IMPORTDATA/REQUESTDESC`` or
    ``EXPORTDATA/REQUESTDESC``), or a new one opening ``DESC``. ``username`` None → ``xml``
    unchanged. Raises ``ValueError`` for an envelope with neither (every builder here writes
    one)."""
    if not username:
        return xml
    pair = (f"<{USER_VARIABLE}>{_escape(username)}</{USER_VARIABLE}>"
            f"<{PASSWORD_VARIABLE}>{_escape(password or '')}</{PASSWORD_VARIABLE}>")
    m = _SV_OPEN.search(xml)
    if m:
        if m.group(0).endswith("/>"):
            return xml[:m.start()] + f"<STATICVARIABLES>{pair}</STATICVARIABLES>" + xml[m.end():]
        return xml[:m.end()] + pair + xml[m.end():]
    m = _DESC_OPEN.search(xml)
    if m is None:
        raise ValueError("Tally envelope has no STATICVARIABLES or DESC to carry credentials")
    sv = f"<STATICVARIABLES>{pair}</STATICVARIABLES>"
    if m.group(0).endswith("/>"):
        return xml[:m.start()] + f"<DESC>{sv}</DESC>" + xml[m.end():]
    return xml[:m.end()] + sv + xml[m.end():]


def _escape(value: str) -> str:
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"))


def inline_tdl_export(company: str | None, collection_name: str, collections: Sequence[dict],
                      formulas: dict[str, str] | None = None,
                      from_date: dt.date | str | None = None,
                      to_date: dt.date | str | None = None) -> str:
    """Export/Collection envelope whose ``TDLMESSAGE`` holds several ``COLLECTION``
    definitions (xmltodict dicts with ``@NAME``; e.g. an aggregate over a source collection,
    the pattern of tally-database-loader's ``generateCollectionRequestXMLPayload``) and ``SYSTEM TYPE="Formulae"`` per ``formulas`` item; ``ID`` =
    ``collection_name``. Dates as in :func:`collection_export`."""
    tdl: dict = {"COLLECTION": list(collections)}
    if formulas:
        tdl["SYSTEM"] = [{"@TYPE": "Formulae", "@NAME": k, "#text": v} for k, v in formulas.items()]
    sv = _static_variables(
        company, SVEXPORTFORMAT=EXPORT_FORMAT,
        SVFROMDATE=tally_date(from_date) if from_date is not None else None,
        SVTODATE=tally_date(to_date) if to_date is not None else None)
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Export", "TYPE": "Collection",
                   "ID": collection_name},
        "BODY": {"DESC": {"STATICVARIABLES": sv, "TDL": {"TDLMESSAGE": tdl}}},
    }})


def encode_request(xml: str, encoding: str = "utf-8") -> tuple[bytes, str]:
    """``(body, content_type)`` for sending ``xml``.

    ``"utf-8"`` → UTF-8 bytes, ``text/xml;charset=utf-8``. ``"utf-16"`` → UTF-16LE bytes
    without BOM and ``text/xml;charset=utf-16``, as tally-database-loader does (https://help.tallysolutions.com/pre-requisites-for-integrations/). Raises ``ValueError`` for another encoding.
    """
    enc = encoding.lower().replace("_", "-")
    if enc in ("utf-8", "utf8"):
        return xml.encode("utf-8"), "text/xml;charset=utf-8"
    if enc in ("utf-16", "utf16", "utf-16le", "utf-16-le"):
        return xml.encode("utf-16-le"), "text/xml;charset=utf-16"
    raise ValueError(f"unsupported Tally request encoding {encoding!r}")


# --------------------------------------------------------------------------- employees

#: The cost-centre field holding :attr:`EmployeeMaster.key` (the source's employee id).
#: https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml lists ``MailingName`` as the payroll employee's id field; ASSUMPTION:
#: a real TallyPrime keeps a 36-character uuid there intact and it is exported as
#: ``MAILINGNAME`` (or ``MAILINGNAME.LIST/MAILINGNAME``, both are read) and filterable as
#: ``$MailingName``.
EMPLOYEE_KEY_FIELD = "MailingName"

#: Fields fetched when reading payroll cost centres back (https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml field names).
EMPLOYEE_FETCH = ["Name", "Parent", "Category", "MailingName", "ForPayroll", "IsEmployeeGroup",
                  "DateOfJoin", "DeactivationDate", "Designation", "EmailId", "MasterID",
                  "AlterID", "GUID"]


def _employee_fields(master) -> dict:
    """The managed fields of an employee cost centre, in the order they are sent. ``None``
    values travel as empty elements so an Alter clears them (ASSUMPTION: an empty element
    clears a date/string field on Alter)."""
    return {
        "PARENT": master.group or "",
        "CATEGORY": master.category,
        "FORPAYROLL": "Yes",
        "ISEMPLOYEEGROUP": "No",
        "MAILINGNAME": master.key,
        "DATEOFJOIN": tally_date(master.joining_date) if master.joining_date else "",
        "DESIGNATION": master.designation or "",
        "DEACTIVATIONDATE": tally_date(master.deactivation_date) if master.deactivation_date else "",
        "EMAILID": master.email or "",
    }


def employee_import(master, company: str, *, action: str = "Create",
                    current_name: str | None = None) -> str:
    """The Import/Data ``All Masters`` envelope creating or altering one employee as a
    payroll cost centre (https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml: employees are ``COSTCENTRE`` masters with
    ``FORPAYROLL=Yes`` under a cost category; fields ``MailingName``, ``DateOfJoin``,
    ``DeactivationDate``, ``Designation``, ``EmailId``).

    ``master`` is an :class:`~connector_tasks.domain.model.EmployeeMaster`. ``action``
    ``"Create"`` → ``<COSTCENTRE NAME=master.name ACTION="Create"><NAME>…``; ``"Alter"`` →
    ``<COSTCENTRE NAME=current_name ACTION="Alter">`` identified by its current name (the
    attribute, https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Identification … via attributes") with the new name in
    ``NAME.LIST/NAME`` (a rename when it differs — ASSUMPTION: Tally renames a master this
    way). Dates are YYYYMMDD (Tally XML case study 1); ``PARENT`` is the employee group (``""`` = the
    category's root); ``MAILINGNAME`` carries ``master.key`` (see
    :data:`EMPLOYEE_KEY_FIELD`). Raises :class:`MappingError` for an empty company or name,
    a name containing ``"``, or another action.
    """
    if action not in ("Create", "Alter"):
        raise MappingError(f"employee import action must be Create or Alter, not {action!r}",
                           system="tallyprime")
    if not company:
        raise MappingError("Tally company name is empty", system="tallyprime")
    if not master.name or not master.name.strip():
        raise MappingError(f"employee {master.key} has no name", system="tallyprime")
    ident = current_name if action == "Alter" and current_name else master.name
    centre: dict = {"@NAME": ident, "@ACTION": action}
    if action == "Alter":
        centre["NAME.LIST"] = {"NAME": master.name}
    else:
        centre["NAME"] = master.name
    centre.update(_employee_fields(master))
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Import", "TYPE": "Data", "ID": "All Masters"},
        "BODY": {
            "DESC": {"STATICVARIABLES": _static_variables(company)},
            "DATA": {"TALLYMESSAGE": {"@xmlns:UDF": "TallyUDF", "COSTCENTRE": centre}},
        },
    }})


def employee_groups_import(company: str, categories: Iterable[str],
                           groups: Iterable[tuple[str, str]]) -> str:
    """The Import/Data ``All Masters`` envelope creating cost categories and employee groups:
    ``COSTCATEGORY`` per name in ``categories`` (revenue and non-revenue allocation on),
    then per ``(category, name)`` in ``groups`` a ``COSTCENTRE`` with ``CATEGORY``, empty
    ``PARENT``, ``FORPAYROLL=Yes`` and ``ISEMPLOYEEGROUP=Yes`` (https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml,
    TallyConnector ``EmployeeGroup.cs``). Categories come first (a centre's category must
    exist before it)."""
    message: dict = {"@xmlns:UDF": "TallyUDF"}
    categories = list(dict.fromkeys(categories))
    groups = list(groups)
    if categories:
        message["COSTCATEGORY"] = [
            {"@NAME": n, "@ACTION": "Create", "NAME": n, "ALLOCATEREVENUE": "Yes",
             "ALLOCATENONREVENUE": "Yes"} for n in categories]
    if groups:
        message["COSTCENTRE"] = [
            {"@NAME": n, "@ACTION": "Create", "NAME": n, "CATEGORY": c, "PARENT": "",
             "FORPAYROLL": "Yes", "ISEMPLOYEEGROUP": "Yes"} for c, n in groups]
    return _render({"ENVELOPE": {
        "HEADER": {"VERSION": "1", "TALLYREQUEST": "Import", "TYPE": "Data", "ID": "All Masters"},
        "BODY": {
            "DESC": {"STATICVARIABLES": _static_variables(company)},
            "DATA": {"TALLYMESSAGE": message},
        },
    }})


def employee_lookup_export(company: str, key: str) -> str:
    """Collection export of the ``CostCentre`` objects whose ``MailingName`` is ``key``
    (``FILTER`` ``$MailingName = "key"``, fetching :data:`EMPLOYEE_FETCH`; pattern of
    https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Export (collection)"). The caller quotes ``key`` safely first."""
    return collection_export(company, "MLCEmployeeByKey", "CostCentre", EMPLOYEE_FETCH,
                             f'${EMPLOYEE_KEY_FIELD} = "{key}"')


def company_alter_ids_export(company: str) -> str:
    """Collection export of ``Company`` with ``AltMstId`` and ``AltVchId`` (the last master
    and voucher AlterIDs; https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Change tracking", tally-database-loader
    ``fetchTallyCompanyList``)."""
    return collection_export(company, "MLCCompanyAlterIds", "Company",
                             ["Name", "AltMstId", "AltVchId"])
