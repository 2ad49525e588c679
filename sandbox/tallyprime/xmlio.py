"""XML helpers of the TallyPrime emulator: decoding and reading requests, rendering replies.

Named ``xmlio`` (not ``xml``) so it can never shadow the standard library's ``xml`` package.

Reading: tags are matched case-insensitively (Tally accepts ``<Name>`` and ``<NAME>``).
Requests arrive in UTF-8 or UTF-16 (BOM or ``charset=utf-16``; UTF-16 without BOM is read as
little-endian, as tally-database-loader sends it: https://github.com/dhananjay1405/tally-database-loader
``src/tally.mts`` ``postTallyXML``; charsets per https://help.tallysolutions.com/pre-requisites-for-integrations).

Layout: builders write compact XML; :func:`tally_layout` lays a reply out as Tally does — one
element per line, one space of indentation per level, CRLF line ends (the live TallyPrime
captures in RishieRich/ArcAstraOneAru ``connector/tests/fixtures/list_of_companies.xml`` are
indented that way; tally-database-loader removes ``\r\n`` from replies in
``processTdlOutputManipulation`` and reads collections line by line in
``parseXmlToJsonCollection``, which needs every field on a line of its own).

Rendering: the ``ENVELOPE/HEADER(VERSION, STATUS)/BODY/DESC/DATA`` reply
(https://help.tallysolutions.com/significance-of-tags), import results as in Tally's Case
Study I (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/),
masters and vouchers with ``GUID``/``MASTERID``/``ALTERID`` and ``&#4; Primary`` for a root
parent, as real exports carry it (tally-database-loader strips such references in
``processTdlOutputManipulation``).
"""
from __future__ import annotations

import re
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from .company import CENTRE_FIELDS, CENTRE_FLAGS, Company

ROOT_PARENT = "&#4; Primary"  # verbatim quirk of real exports
XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>")

MASTER_TAGS = {"ledger": "LEDGER", "group": "GROUP", "costcentre": "COSTCENTRE",
               "costcategory": "COSTCATEGORY", "vouchertype": "VOUCHERTYPE"}


# ------------------------------------------------------------------ reading
def decode_request(raw: bytes, content_type: str | None) -> tuple[str, str]:
    """``(text, encoding)`` of a request body, encoding ``"utf-16"`` or ``"utf-8"``: a BOM
    decides, else ``charset=utf-16`` in ``content_type`` (little-endian), else UTF-8. Raises
    UnicodeDecodeError for bytes that are not text in that encoding."""
    ct = (content_type or "").lower()
    if raw.startswith(b"\xff\xfe"):
        return raw[2:].decode("utf-16-le"), "utf-16"
    if raw.startswith(b"\xfe\xff"):
        return raw[2:].decode("utf-16-be"), "utf-16"
    if "utf-16" in ct or "utf16" in ct:
        return raw.decode("utf-16-le").lstrip("\ufeff"), "utf-16"
    return raw.decode("utf-8").lstrip("\ufeff"), "utf-8"


def find(el, path: str):
    """The element at ``path`` (``A/B/C``, tags case-insensitive) below ``el``, or None."""
    if el is None:
        return None
    for part in path.split("/"):
        up = part.upper()
        el = next((c for c in el if c.tag.upper() == up), None)
        if el is None:
            return None
    return el


def text(el, path: str, default: str = "") -> str:
    """Stripped text at ``path`` below ``el`` (``default`` when there is no such element)."""
    node = find(el, path)
    return (node.text or "").strip() if node is not None else default


def children(el, tag: str) -> list:
    """The direct children of ``el`` with tag ``tag`` (case-insensitive)."""
    if el is None:
        return []
    up = tag.upper()
    return [c for c in el if c.tag.upper() == up]


def attr(el, name: str) -> str:
    """Attribute ``name`` of ``el`` (case-insensitive), stripped; ``""`` when absent."""
    for k, v in el.attrib.items():
        if k.upper() == name.upper():
            return v.strip()
    return ""


def name_of(el) -> str:
    """A master's name: ``NAME``, else ``NAME.LIST/NAME``, else its ``NAME`` attribute."""
    return text(el, "NAME") or text(el, "NAME.LIST/NAME") or attr(el, "NAME")


# ------------------------------------------------------------------ rendering
def x(value) -> str:
    """``value`` as escaped XML text (``&`` → ``&amp;``, e.g. ``Duties &amp; Taxes``)."""
    return escape(str(value))


def fmt_amount(amount: Decimal) -> str:
    """An amount as Tally writes it: two decimals, minus for debits (``-12000.00``)."""
    return format(amount.quantize(Decimal("0.01")), "f")


# Object counters Tally writes into DESC/CMPINFO of a collection export (all 0 in the live
# capture of a Company collection; ASSUMPTION: the same block, all 0, for every collection).
CMPINFO_TAGS = ("COMPANY", "GROUP", "LEDGER", "COSTCATEGORY", "COSTCENTRE", "GODOWN",
                "STOCKGROUP", "STOCKCATEGORY", "STOCKITEM", "VOUCHERTYPE", "CURRENCY", "UNIT",
                "BUDGET", "CLIENTRULE", "SERVERRULE", "STATE", "TDSRATE", "TAXCLASSIFICATION",
                "STCATEGORY", "DEDUCTEETYPE", "ATTENDANCETYPE", "FBTCATEGORY", "FBTASSESSEETYPE",
                "TARIFFCLASSIFICATION", "EXCISEDUTYCLASSIFICATION", "SERIALNUMBER",
                "ADJUSTMENTCLASSIFICATION", "INCOMETAXSLAB", "INCOMETAXCLASSIFICATION",
                "LBTCLASSIFICATION", "TAXUNIT", "RETURNMASTER", "GSTCLASSIFICATION",
                "VOUCHERNUMBERSERIES", "VOUCHER")
CMPINFO = "<CMPINFO>" + "".join(f"<{t}>0</{t}>" for t in CMPINFO_TAGS) + "</CMPINFO>"

_TOKENS = re.compile(r"<[^>]+>|[^<]+")


def tally_layout(xml: str) -> str:
    """``xml`` (compact, as the builders write it) laid out one element per line: a leaf
    (``<TAG …>text</TAG>``) or an empty element on one line, a parent's start and end tags on
    lines of their own, one space per level, ``\r\n`` after every line. Text is never
    touched (``<ALTERID TYPE="Number"> 210</ALTERID>`` keeps its space)."""
    toks = _TOKENS.findall(xml)
    lines, depth, i = [], 0, 0
    while i < len(toks):
        tok = toks[i]
        if tok.startswith("</"):
            depth = max(0, depth - 1)
            lines.append(" " * depth + tok)
            i += 1
        elif tok.startswith("<?") or tok.startswith("<!") or tok.endswith("/>"):
            lines.append(" " * depth + tok)
            i += 1
        elif tok.startswith("<"):
            nxt = toks[i + 1] if i + 1 < len(toks) else ""
            if nxt.startswith("</"):
                lines.append(" " * depth + tok + nxt)
                i += 2
            elif nxt and not nxt.startswith("<") and i + 2 < len(toks) and toks[i + 2].startswith("</"):
                lines.append(" " * depth + tok + nxt + toks[i + 2])
                i += 3
            else:
                lines.append(" " * depth + tok)
                depth += 1
                i += 1
        else:
            if tok.strip():
                lines.append(" " * depth + tok)
            i += 1
    return "\r\n".join(lines) + "\r\n"


def collection_envelope(rows: str) -> str:
    """A collection export's reply around its object elements (with DESC/CMPINFO)."""
    return (f"<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>1</STATUS></HEADER>"
            f"<BODY><DESC>{CMPINFO}</DESC><DATA><COLLECTION>{rows}</COLLECTION></DATA></BODY>"
            f"</ENVELOPE>")


def envelope(data_inner: str, status: int = 1) -> str:
    """``<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>…`` reply around ``DATA`` content."""
    return (f"<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>{status}</STATUS></HEADER>"
            f"<BODY><DESC></DESC><DATA>{data_inner}</DATA></BODY></ENVELOPE>")


def import_reply(counters: dict, errors: list[str], legacy: bool, status: int) -> str:
    """An import's answer: one ``LINEERROR`` per refused object, in order, then the counters
    (``CREATED``, ``ALTERED``, …). Version-1 requests get
    ``ENVELOPE/…/DATA/IMPORTRESULT`` (Case Study I); legacy ``Import Data`` requests a bare
    ``RESPONSE`` (a live TallyPrime 7.1 capture, third-party; which wrapper answers which form
    is not confirmed by Tally — ASSUMPTION)."""
    lines = "".join(f"<LINEERROR>{x(e)}</LINEERROR>" for e in errors)
    nums = "".join(f"<{k}>{v}</{k}>" for k, v in counters.items())
    if legacy:
        return f"<RESPONSE>{lines}{nums}</RESPONSE>"
    return (f"<ENVELOPE><HEADER><VERSION>1</VERSION><STATUS>{status}</STATUS></HEADER>"
            f"<BODY><DATA>{lines}<IMPORTRESULT>{nums}</IMPORTRESULT></DATA></BODY></ENVELOPE>")


def company_xml(c: Company) -> str:
    """A ``COMPANY`` collection item: ``NAME``, ``BOOKSFROM`` and ``ALTMSTID``/``ALTVCHID``
    (:meth:`Company.last_alter_ids`), the fields tally-database-loader fetches."""
    masters, vouchers = c.last_alter_ids()
    return (f"<COMPANY NAME={quoteattr(c.name)}><NAME>{x(c.name)}</NAME>"
            f"<BOOKSFROM TYPE=\"Date\">{c.books_from}</BOOKSFROM>"
            f'<ALTMSTID TYPE="Number"> {masters}</ALTMSTID>'
            f'<ALTVCHID TYPE="Number"> {vouchers}</ALTVCHID></COMPANY>')


def _parent_xml(parent: str) -> str:
    return f'<PARENT TYPE="String">{x(parent) if parent else ROOT_PARENT}</PARENT>'


def _ids_xml(o: dict) -> str:
    return (f'<GUID TYPE="String">{o["guid"]}</GUID><MASTERID TYPE="Number"> {o["master_id"]}'
            f'</MASTERID><ALTERID TYPE="Number"> {o["alter_id"]}</ALTERID>')


def master_xml(kind: str, o: dict) -> str:
    """A master as exported: ``<LEDGER NAME=… RESERVEDNAME="">`` (likewise GROUP, COSTCENTRE,
    COSTCATEGORY, VOUCHERTYPE for ``kind`` ``ledger``, ``group``, ``costcentre``,
    ``costcategory``, ``vouchertype``) with ``NAME``, ``PARENT`` (ledgers, groups, cost
    centres), ``ISCOSTCENTRESON`` (ledgers), ``CATEGORY`` and the payroll fields (cost
    centres; dates ``YYYYMMDD``, empty when unset; flags Yes/No) and the ids."""
    tag = MASTER_TAGS[kind]
    inner = f"<NAME>{x(o['name'])}</NAME>"
    if kind in ("ledger", "group", "costcentre"):
        inner += _parent_xml(o.get("parent", ""))
    if kind == "ledger":
        inner += f"<ISCOSTCENTRESON>{'Yes' if o['cost_centres_on'] else 'No'}</ISCOSTCENTRESON>"
    if kind == "costcentre":
        inner += f"<CATEGORY>{x(o['category'])}</CATEGORY>"
        for field_tag, key in CENTRE_FIELDS.items():
            value = o.get(key)
            if field_tag in CENTRE_FLAGS:
                value = "Yes" if value else "No"
            inner += f"<{field_tag}>{x(value or '')}</{field_tag}>"
    return f'<{tag} NAME={quoteattr(o["name"])} RESERVEDNAME="">{inner}{_ids_xml(o)}</{tag}>'


def voucher_xml(v: dict, fetch: list[str] | None = None, company: Company | None = None) -> str:
    """A voucher as exported: ``<VOUCHER REMOTEID VCHTYPE ACTION="Create" OBJVIEW="Accounting
    Voucher View">`` (attributes per https://help.tallysolutions.com/developer-reference/introduction/understanding-integration-transactions/)
    with ``DATE``, ``VOUCHERTYPENAME``, ``VOUCHERNUMBER``, ``REMOTEID``, ``NARRATION``,
    ``PARTYLEDGERNAME`` (only when the voucher names a party — ASSUMPTION), the ids and, unless
    ``fetch`` is given without ``AllLedgerEntries`` or ``*``, its ``ALLLEDGERENTRIES.LIST``
    (debits ``ISDEEMEDPOSITIVE=Yes`` with negative amounts) with cost-centre allocations.
    An invoice voucher (purchase, debit note) is written whole, typed, as a collection export
    writes it (:func:`sandbox.tallyprime.tdl.object_xml`: ``LEDGERENTRIES.LIST``,
    ``ALLINVENTORYENTRIES.LIST`` …); ``company`` gives its units' decimal places."""
    if v.get("is_invoice"):
        from .objects import Obj
        from .tdl import object_xml
        wanted = [f.strip().lower() for f in (fetch or []) if f.strip() and f.strip() != "*"]
        entries = [(f.replace(" ", ""), f, None) for f in wanted] or None
        obj = Obj("voucher", v, company)
        return object_xml(obj, entries or [(k, k, None) for k in obj.all_methods()], False)
    entries = ""
    for e in v["entries"]:
        cats: dict[str, list] = {}
        for a in e["allocations"]:
            cats.setdefault(a["category"], []).append(a)
        alloc_xml = "".join(
            f"<CATEGORYALLOCATIONS.LIST><CATEGORY>{x(cat)}</CATEGORY>"
            f"<ISDEEMEDPOSITIVE>{'Yes' if e['is_deemed_positive'] else 'No'}</ISDEEMEDPOSITIVE>"
            + "".join(f"<COSTCENTREALLOCATIONS.LIST><NAME>{x(a['cost_centre'])}</NAME>"
                      f"<AMOUNT>{fmt_amount(a['amount'])}</AMOUNT></COSTCENTREALLOCATIONS.LIST>"
                      for a in allocs)
            + "</CATEGORYALLOCATIONS.LIST>" for cat, allocs in cats.items())
        entries += (f"<ALLLEDGERENTRIES.LIST><LEDGERNAME>{x(e['ledger'])}</LEDGERNAME>"
                    f"<ISDEEMEDPOSITIVE>{'Yes' if e['is_deemed_positive'] else 'No'}"
                    f"</ISDEEMEDPOSITIVE><AMOUNT>{fmt_amount(e['amount'])}</AMOUNT>"
                    f"{alloc_xml}</ALLLEDGERENTRIES.LIST>")
    want = set(fetch or [])
    full = not fetch or "allledgerentries" in want or "*" in want
    return (f'<VOUCHER REMOTEID={quoteattr(v["remote_id"])} VCHTYPE={quoteattr(v["type"])} '
            f'ACTION="Create" OBJVIEW="Accounting Voucher View">'
            f'<DATE TYPE="Date">{v["date"]}</DATE>'
            f'<VOUCHERTYPENAME>{x(v["type"])}</VOUCHERTYPENAME>'
            f'<VOUCHERNUMBER>{x(v["number"])}</VOUCHERNUMBER>'
            f'<REMOTEID>{x(v["remote_id"])}</REMOTEID>'
            f'<NARRATION>{x(v["narration"])}</NARRATION>'
            + (f'<PARTYLEDGERNAME>{x(v["party_ledger"])}</PARTYLEDGERNAME>'
               if v.get("party_ledger") else "") +
            f'{_ids_xml(v)}{entries if full else ""}</VOUCHER>')
