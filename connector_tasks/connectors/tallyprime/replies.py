"""Reading TallyPrime's replies: decoding, sanitising, safe parsing, import counters, exports.

Tally answers HTTP 200 for every processed request; success or failure is in the body
(https://help.tallysolutions.com/pre-requisites-for-integrations/; https://help.tallysolutions.com/xml-integration/ "Response"; https://help.tallysolutions.com/xml-integration/ (import counters)). Replies may be UTF-16 and may hold character
references to code points that XML 1.0 forbids (``&#4;``, https://github.com/dhananjay1405/tally-database-loader processTdlOutputManipulation), so every
reply is decoded with :func:`decode_body`, cleaned with :func:`sanitize` and only then parsed
with :func:`parse_xml` (xmltodict with entity declarations refused — an XML bomb in a reply
raises :class:`RejectedError`, it is never expanded).
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from decimal import Decimal
from xml.parsers import expat as _expat

import xmltodict

from connector_tasks.core.errors import MappingError, RejectedError, TransientApiError
from connector_tasks.domain.model import money

SYSTEM = "tallyprime"
ENTITY_REFUSED = "Tally reply refused: entity declarations are not allowed"

__all__ = [
    "decode_body", "sanitize", "parse_xml", "ImportResult", "parse_import_reply",
    "ensure_success", "parse_collection", "parse_day_book", "parse_tally_date", "find_all",
    "find_first", "as_list", "text_of", "ENTITY_REFUSED", "ensure_altered_only",
    "employee_centre",
]


# --------------------------------------------------------------------------- decoding

_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_\-]+)", re.I)


def decode_body(raw: bytes, content_type: str | None) -> str:
    """Reply bytes → text.

    A UTF-16 BOM wins (LE or BE); else ``charset=utf-16`` in ``content_type`` means UTF-16LE
    (what tally-database-loader reads, https://help.tallysolutions.com/pre-requisites-for-integrations/); else, when the first bytes look
    like UTF-16LE ASCII (``<\\x00``), UTF-16LE; else UTF-8 (invalid bytes replaced, never
    raising). A leading BOM character is dropped.
    """
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le", errors="replace")
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be", errors="replace")
    charset = None
    if content_type:
        m = _CHARSET.search(content_type)
        charset = m.group(1).lower() if m else None
    if charset in ("utf-16", "utf16", "utf-16le", "unicode"):
        return raw.decode("utf-16-le", errors="replace").lstrip("\ufeff")
    if charset == "utf-16be":
        return raw.decode("utf-16-be", errors="replace").lstrip("\ufeff")
    if len(raw) >= 2 and raw[1] == 0 and raw[0] != 0:
        return raw.decode("utf-16-le", errors="replace").lstrip("\ufeff")
    text = raw.decode("utf-8", errors="replace")
    return text.lstrip("\ufeff")


# --------------------------------------------------------------------------- sanitising

_CHAR_REF = re.compile(r"&#(?:[xX]([0-9a-fA-F]+)|([0-9]+));")
_RAW_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _legal_xml_char(cp: int) -> bool:
    return (cp in (0x9, 0xA, 0xD) or 0x20 <= cp <= 0xD7FF or 0xE000 <= cp <= 0xFFFD
            or 0x10000 <= cp <= 0x10FFFF)


def sanitize(text: str) -> str:
    """Remove what XML 1.0 forbids but real Tally exports contain (https://github.com/dhananjay1405/tally-database-loader processTdlOutputManipulation).

    Character references to illegal code points (``&#4;``, ``&#x4;``, ``&#0;``…) are deleted,
    legal ones (``&#10;``, ``&#x939;``) kept; raw control characters other than tab, LF and
    CR are deleted. ``<PARENT>&#4; Primary</PARENT>`` becomes ``<PARENT> Primary</PARENT>``
    (surrounding whitespace is stripped later by the parser).
    """
    def _ref(m: re.Match) -> str:
        try:
            cp = int(m.group(1), 16) if m.group(1) is not None else int(m.group(2))
        except ValueError:  # pragma: no cover - regex guarantees digits
            return ""
        return m.group(0) if _legal_xml_char(cp) else ""

    return _RAW_ILLEGAL.sub("", _CHAR_REF.sub(_ref, text))


# --------------------------------------------------------------------------- parsing

class _EntityRefused(Exception):
    pass


def _refuse_entity(*_args, **_kwargs):
    raise _EntityRefused(ENTITY_REFUSED)


class _GuardedExpat:
    """Stand-in for :mod:`xml.parsers.expat` whose parsers refuse entity declarations
    (internal, external and parameter) whatever the installed xmltodict version does."""

    ExpatError = _expat.ExpatError
    error = _expat.error

    @staticmethod
    def ParserCreate(*args, **kwargs):  # noqa: N802 - expat's name
        parser = _expat.ParserCreate(*args, **kwargs)
        parser.EntityDeclHandler = _refuse_entity
        parser.UnparsedEntityDeclHandler = _refuse_entity
        parser.ExternalEntityRefHandler = _refuse_entity
        return parser


def parse_xml(text: str, *, clean: bool = True) -> dict:
    """Parse Tally XML text into xmltodict's nested dict (attributes as ``@NAME``, text as
    ``#text`` when an element also has attributes).

    ``clean`` runs :func:`sanitize` first (default). Entity declarations are refused:
    raises :class:`RejectedError` (``ENTITY_REFUSED``, ``system="tallyprime"``) for a
    DTD/entity bomb; :class:`TransientApiError` for text that is not well-formed XML (a
    truncated or garbled reply says nothing about the request's effect; callers check
    before retrying).
    """
    if clean:
        text = sanitize(text)
    try:
        return xmltodict.parse(text, expat=_GuardedExpat, disable_entities=True)
    except _EntityRefused as exc:
        raise RejectedError(ENTITY_REFUSED, system=SYSTEM, body=text[:2000]) from exc
    except ValueError as exc:
        if "entit" in str(exc).lower():
            raise RejectedError(ENTITY_REFUSED, system=SYSTEM, body=text[:2000]) from exc
        raise TransientApiError("Tally reply is not well-formed XML", system=SYSTEM,
                                detail=str(exc), body=text[:2000]) from exc
    except _expat.ExpatError as exc:
        raise TransientApiError("Tally reply is not well-formed XML", system=SYSTEM,
                                detail=str(exc), body=text[:2000]) from exc


# --------------------------------------------------------------------------- tree helpers

def as_list(value) -> list:
    """``None`` → ``[]``, a list as is, anything else → ``[value]`` (xmltodict makes a single
    child a dict and repeated children a list)."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def text_of(value) -> str:
    """The text of an xmltodict node: a string as is, ``#text`` of a dict, ``""`` for
    ``None``/empty elements; stripped."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return str(value.get("#text") or "").strip()
    if isinstance(value, list):
        return text_of(value[0]) if value else ""
    return str(value).strip()


def find_all(node, tag: str) -> list:
    """Every value stored under ``tag`` anywhere below ``node`` (document order, depth first;
    case-sensitive tag)."""
    found: list = []

    def walk(n):
        if isinstance(n, dict):
            for key, value in n.items():
                if key == tag:
                    found.extend(as_list(value))
                if not key.startswith("@") and key != "#text":
                    walk(value)
        elif isinstance(n, list):
            for item in n:
                walk(item)

    walk(node)
    return found


def find_first(node, tag: str):
    """The first value under ``tag`` anywhere below ``node``, or ``None``."""
    found = find_all(node, tag)
    return found[0] if found else None


def _flatten(node) -> dict:
    """An object element → flat dict: attributes without ``@`` (children win on clashes),
    simple children as stripped text, lists and complex children kept as nested values."""
    out: dict = {}
    if not isinstance(node, dict):
        return {"#text": text_of(node)}
    for key, value in node.items():
        if key.startswith("@"):
            out.setdefault(key[1:], value)
        elif key == "#text":
            out["#text"] = str(value).strip()
    for key, value in node.items():
        if key.startswith("@") or key == "#text":
            continue
        if isinstance(value, dict) and all(k.startswith("@") or k == "#text" for k in value):
            out[key] = text_of(value)
        elif isinstance(value, (dict, list)):
            out[key] = value
        else:
            out[key] = text_of(value)
    return out


# --------------------------------------------------------------------------- import replies

_COUNTERS = ("CREATED", "ALTERED", "DELETED", "COMBINED", "IGNORED", "ERRORS", "CANCELLED",
             "EXCEPTIONS", "LASTVCHID", "LASTMID")


@dataclass(frozen=True)
class ImportResult:
    """The counters of a Tally import reply (https://help.tallysolutions.com/xml-integration/ "Response").

    All counters are ints (0 when absent); ``line_errors`` holds every ``LINEERROR`` text in
    document order (plus the ``DATA`` text of a ``STATUS 0`` failure envelope); ``status`` is
    ``HEADER/STATUS`` when present (1 processed, 0 failed), else ``None``.
    """

    created: int = 0
    altered: int = 0
    deleted: int = 0
    combined: int = 0
    ignored: int = 0
    errors: int = 0
    cancelled: int = 0
    exceptions: int = 0
    last_vch_id: int = 0
    last_mid: int = 0
    line_errors: tuple[str, ...] = ()
    status: int | None = None

    def summary(self) -> str:
        """``"CREATED=1 ALTERED=0 … EXCEPTIONS=0"`` for messages and logs."""
        return (f"CREATED={self.created} ALTERED={self.altered} DELETED={self.deleted} "
                f"COMBINED={self.combined} IGNORED={self.ignored} ERRORS={self.errors} "
                f"CANCELLED={self.cancelled} EXCEPTIONS={self.exceptions}")


def _int(value) -> int:
    text = text_of(value)
    if not text:
        return 0
    try:
        return int(Decimal(text))
    except Exception:  # noqa: BLE001 - a garbled counter reads as 0, logged via summary
        return 0


def parse_import_reply(text: str) -> ImportResult:
    """Counters of an import reply, whichever wrapper Tally used (https://help.tallysolutions.com/xml-integration/ "Response"):
    ``ENVELOPE/BODY/DATA/IMPORTRESULT`` (version-1 ``Import/Data``) or a bare ``RESPONSE``
    (legacy ``Import Data``), plus every ``LINEERROR`` anywhere. A ``STATUS 0`` envelope whose
    ``DATA`` is plain text (``DESC not found``) adds that text to ``line_errors``.

    Raises :class:`RejectedError` (entity bomb) or :class:`TransientApiError` (not XML) from
    :func:`parse_xml`, and :class:`RejectedError` when the reply carries no counters, no
    status and no error text (not an import reply).
    """
    doc = parse_xml(text)
    counters = find_first(doc, "IMPORTRESULT")
    if not isinstance(counters, dict):
        response = doc.get("RESPONSE") if isinstance(doc, dict) else None
        counters = response if isinstance(response, dict) else None
    line_errors = [text_of(e) for e in find_all(doc, "LINEERROR")]
    status = None
    envelope = doc.get("ENVELOPE") if isinstance(doc, dict) else None
    if isinstance(envelope, dict):
        header = envelope.get("HEADER")
        if isinstance(header, dict) and "STATUS" in header:
            status = _int(header.get("STATUS"))
        body = envelope.get("BODY")
        data = body.get("DATA") if isinstance(body, dict) else None
        if status == 0 and data is not None and not isinstance(data, dict):
            if text_of(data):
                line_errors.append(text_of(data))
    elif isinstance(doc, dict) and isinstance(doc.get("RESPONSE"), str):
        # <RESPONSE>Unknown Request, cannot be processed</RESPONSE>
        line_errors.append(text_of(doc["RESPONSE"]))
    if counters is None and status is None and not line_errors:
        raise RejectedError("Tally reply is not an import result", system=SYSTEM,
                            body=text[:2000])
    values = {c: _int((counters or {}).get(c)) for c in _COUNTERS}
    return ImportResult(
        created=values["CREATED"], altered=values["ALTERED"], deleted=values["DELETED"],
        combined=values["COMBINED"], ignored=values["IGNORED"], errors=values["ERRORS"],
        cancelled=values["CANCELLED"], exceptions=values["EXCEPTIONS"],
        last_vch_id=values["LASTVCHID"], last_mid=values["LASTMID"],
        line_errors=tuple(e for e in line_errors if e), status=status,
    )


def ensure_success(result: ImportResult, expect: str = "created") -> None:
    """Raise unless ``result`` shows the expected effect and no failure (https://help.tallysolutions.com/xml-integration/ "Response"; https://help.tallysolutions.com/xml-integration/ (import counters): "HTTP 200 that created nothing is a failure").

    Failure = ``ERRORS>0``, ``EXCEPTIONS>0``, any ``LINEERROR``, ``STATUS 0``, or nothing done
    as expected: ``expect="created"`` needs ``CREATED>0``, ``"altered"`` needs
    ``ALTERED>0`` (or ``COMBINED>0``), ``"any"`` needs one of created/altered/combined/
    deleted/cancelled > 0. Raises :class:`RejectedError` with ``lines=result.line_errors``,
    the message carrying Tally's own text (or the counters when Tally gave none), ``detail``
    the counters. Raises ``ValueError`` for an unknown ``expect``.
    """
    if expect not in ("created", "altered", "any"):
        raise ValueError(f"expect must be created, altered or any, not {expect!r}")
    lines = list(result.line_errors)
    if lines or result.errors or result.exceptions or result.status == 0:
        if lines:
            message = "Tally refused the import: " + "; ".join(lines)
        else:
            message = (f"Tally refused the import without a message ({result.summary()}; "
                       f"EXCEPTIONS>0 usually means an invalid field)")
        raise RejectedError(message, system=SYSTEM, lines=lines, detail=result.summary())
    if expect == "created":
        ok = result.created > 0
    elif expect == "altered":
        ok = result.altered > 0 or result.combined > 0
    else:
        ok = (result.created + result.altered + result.combined + result.deleted
              + result.cancelled) > 0
    if not ok:
        raise RejectedError(f"Tally answered but nothing was {expect} ({result.summary()})",
                            system=SYSTEM, lines=lines, detail=result.summary())


# --------------------------------------------------------------------------- exports

def _raise_export_failure(doc: dict, text: str) -> None:
    """Exports answer ``STATUS 0`` with a text or LINEERROR when they fail."""
    envelope = doc.get("ENVELOPE") if isinstance(doc, dict) else None
    header = envelope.get("HEADER") if isinstance(envelope, dict) else None
    status = _int(header.get("STATUS")) if isinstance(header, dict) and "STATUS" in header else None
    errors = [text_of(e) for e in find_all(doc, "LINEERROR")]
    if status == 0:
        body = envelope.get("BODY") if isinstance(envelope, dict) else None
        data = body.get("DATA") if isinstance(body, dict) else None
        if data is not None and not isinstance(data, dict) and text_of(data):
            errors.append(text_of(data))
    if status == 0 or errors:
        raise RejectedError("Tally refused the export: " + ("; ".join(errors) or "STATUS 0"),
                            system=SYSTEM, lines=errors, body=text[:2000])


def parse_collection(text: str, tag: str) -> list[dict]:
    """Objects of a collection export (``ENVELOPE/BODY/DATA/COLLECTION/<tag>``, https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/) as flat dicts: attributes (``NAME``, ``REMOTEID``…) and simple children as stripped
    strings keyed by their upper-case tag; nested lists kept as xmltodict values.

    ``tag`` is the object tag (``LEDGER``, ``VOUCHER``, ``COSTCENTRE``, ``COMPANY``…). An
    empty collection gives ``[]``. Raises :class:`RejectedError` for a ``STATUS 0`` reply or
    one with ``LINEERROR`` (its text in the message), plus :func:`parse_xml`'s errors.
    """
    doc = parse_xml(text)
    _raise_export_failure(doc, text)
    collection = find_first(doc, "COLLECTION")
    if not isinstance(collection, dict):
        return []
    return [_flatten(node) for node in as_list(collection.get(tag.upper()))]


_MONTHS = {m: i for i, m in enumerate(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}


def parse_tally_date(value: str) -> dt.date:
    """``20240131`` or ``31-Jan-2024`` (both occur in exports, https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/) → date.
    Raises :class:`MappingError` for anything else."""
    text = (value or "").strip()
    try:
        if len(text) == 8 and text.isdigit():
            return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))
        day, mon, year = text.split("-")
        year_i = int(year)
        if year_i < 100:
            year_i += 2000
        return dt.date(year_i, _MONTHS[mon[:3].lower()], int(day))
    except (ValueError, KeyError) as exc:
        raise MappingError(f"not a Tally date: {value!r}", system=SYSTEM) from exc


def _entry_lists(voucher: dict) -> list:
    return as_list(voucher.get("ALLLEDGERENTRIES.LIST")) + as_list(voucher.get("LEDGERENTRIES.LIST"))


def _yes(value) -> bool:
    return text_of(value).lower() == "yes"


def parse_voucher(voucher: dict) -> dict:
    """One exported ``VOUCHER`` element → ``{"date": date, "voucher_type", "number",
    "remote_id", "guid", "master_id", "alter_id", "narration", "ledger_entries": [{"ledger",
    "amount": Decimal (Tally sign: negative = debit), "is_deemed_positive": bool,
    "is_debit": bool, "cost_allocations": [{"category", "cost_centre", "amount": Decimal}]}]}``.
    Raises :class:`MappingError` for an unreadable date or amount."""
    entries = []
    for e in _entry_lists(voucher):
        if not isinstance(e, dict):
            continue
        amount = money(text_of(e.get("AMOUNT")), what="Tally AMOUNT")
        allocs = []
        for cat in as_list(e.get("CATEGORYALLOCATIONS.LIST")):
            if not isinstance(cat, dict):
                continue
            for cc in as_list(cat.get("COSTCENTREALLOCATIONS.LIST")):
                if isinstance(cc, dict):
                    allocs.append({"category": text_of(cat.get("CATEGORY")),
                                   "cost_centre": text_of(cc.get("NAME")),
                                   "amount": money(text_of(cc.get("AMOUNT")), what="Tally AMOUNT")})
        entries.append({
            "ledger": text_of(e.get("LEDGERNAME")),
            "amount": amount,
            "is_deemed_positive": _yes(e.get("ISDEEMEDPOSITIVE")),
            "is_debit": amount < 0,
            "cost_allocations": allocs,
        })
    date_text = text_of(voucher.get("DATE"))
    return {
        "date": parse_tally_date(date_text) if date_text else None,
        "voucher_type": text_of(voucher.get("VOUCHERTYPENAME")) or str(voucher.get("@VCHTYPE") or ""),
        "number": text_of(voucher.get("VOUCHERNUMBER")),
        "remote_id": str(voucher.get("@REMOTEID") or text_of(voucher.get("REMOTEID"))),
        "guid": text_of(voucher.get("GUID")),
        "master_id": text_of(voucher.get("MASTERID")),
        "alter_id": text_of(voucher.get("ALTERID")),
        "narration": text_of(voucher.get("NARRATION")),
        "ledger_entries": entries,
    }


def parse_day_book(text: str) -> list[dict]:
    """Vouchers of a Day Book export (``…/TALLYMESSAGE/VOUCHER`` anywhere in the reply,
    https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/) as :func:`parse_voucher` dicts, in document order. Raises like
    :func:`parse_collection`."""
    doc = parse_xml(text)
    _raise_export_failure(doc, text)
    return [parse_voucher(v) for v in find_all(doc, "VOUCHER") if isinstance(v, dict)]


# --------------------------------------------------------------------------- employees

def ensure_altered_only(result: ImportResult, expected: int = 1, what: str = "master") -> None:
    """Raise unless an Alter import altered exactly ``expected`` objects and created none
    (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/; https://help.tallysolutions.com/xml-integration/ (REMOTEID identification): TallyPrime answered an Alter it could not identify by
    CREATING a second object, counters reporting success — so ``ALTERED`` must be checked,
    never "no error").

    Order of checks: any failure (``LINEERROR``, ``ERRORS``, ``EXCEPTIONS``, ``STATUS 0``) →
    :class:`RejectedError` with Tally's text; ``CREATED>0`` → :class:`RejectedError`
    ("… a duplicate {what} was made"); ``ALTERED != expected`` (``IGNORED=1`` = target not
    found, Tally XML integration, "Response") → :class:`RejectedError` naming the counters.
    """
    lines = list(result.line_errors)
    if lines or result.errors or result.exceptions or result.status == 0:
        ensure_success(result, expect="any")  # raises with Tally's own text
        raise RejectedError(f"Tally refused the alter ({result.summary()})", system=SYSTEM,
                            lines=lines, detail=result.summary())  # pragma: no cover
    if result.created:
        raise RejectedError(
            f"Tally answered an Alter with CREATED={result.created}: a duplicate {what} was "
            f"made instead of altering the existing one ({result.summary()})",
            system=SYSTEM, lines=lines, detail=result.summary())
    if result.altered != expected:
        raise RejectedError(f"Tally altered {result.altered} of {expected} {what}(s) "
                            f"({result.summary()})", system=SYSTEM, lines=lines,
                            detail=result.summary())


def _root(parent: str) -> str:
    """``""`` for a root parent (exports say ``&#4; Primary``, tally-database-loader; sanitised to
    ``Primary``)."""
    return "" if parent.strip() in ("", "Primary") else parent.strip()


def _optional_date(value) -> dt.date | None:
    text = text_of(value)
    return parse_tally_date(text) if text else None


def employee_centre(row: dict) -> dict:
    """One payroll cost centre from :func:`parse_collection` (tag ``COSTCENTRE``) → ``{"name",
    "key" (MAILINGNAME), "parent" ("" = root), "category", "for_payroll": bool,
    "is_employee_group": bool, "joining_date": date|None, "deactivation_date": date|None,
    "designation", "email", "master_id", "alter_id"}`` (https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml field names;
    ``MAILINGNAME`` is read plain or as ``MAILINGNAME.LIST/MAILINGNAME``). Raises
    :class:`MappingError` for an unreadable date."""
    key = row.get("MAILINGNAME")
    if key is None or isinstance(key, (dict, list)):
        lst = row.get("MAILINGNAME.LIST")
        key = find_first(lst, "MAILINGNAME") if isinstance(lst, (dict, list)) else lst
    return {
        "name": text_of(row.get("NAME")),
        "key": text_of(key),
        "parent": _root(text_of(row.get("PARENT"))),
        "category": text_of(row.get("CATEGORY")),
        "for_payroll": _yes(row.get("FORPAYROLL")),
        "is_employee_group": _yes(row.get("ISEMPLOYEEGROUP")),
        "joining_date": _optional_date(row.get("DATEOFJOIN")),
        "deactivation_date": _optional_date(row.get("DEACTIVATIONDATE")),
        "designation": text_of(row.get("DESIGNATION")),
        "email": text_of(row.get("EMAILID")),
        "master_id": text_of(row.get("MASTERID")),
        "alter_id": text_of(row.get("ALTERID")),
    }
