"""What changed in a TallyPrime company since the last sync: AlterID-watermarked exports,
read as a stream.

Sources (https://help.tallysolutions.com/xml-integration/):

* Tally XML case study 1 "Change tracking": every object carries ``GUID``, ``MASTERID`` (stable) and
  ``ALTERID`` (a counter bumped on every create/alter); the company exposes ``$AltMstId``
  (last master AlterID) and ``$AltVchId`` (last voucher AlterID). tally-database-loader
  compares those with its own watermark, then exports with the TDL formula
  ``$AlterID > last`` (``<SYSTEM TYPE="Formulae">``). Deleted objects are NOT reported by an
  AlterID filter (the loader diffs GUID lists for that; not done here).
* Tally XML case study 1 "Export (collection)": inline-TDL collection with ``FETCH`` and ``FILTER``;
  ``SVFROMDATE``/``SVTODATE`` (YYYYMMDD) bound voucher collections.
* Tally integration prerequisites: replies may be UTF-16 (BOM or ``charset=utf-16``); requests are sent in the client's
  encoding (UTF-8, or UTF-16LE as tally-database-loader does).
* tally-database-loader: real exports hold ``&#4;`` references and raw control bytes that XML 1.0 forbids;
  big exports stall Tally, so tally-database-loader batches 5,000 vouchers per request.

Shapes and units: one :class:`ExportedVoucher` per ``VOUCHER`` element; amounts are
``Decimal`` in the company currency with Tally's sign (negative = debit, https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/
"Sign convention"); ``master_id``/``alter_id`` are ints (``None`` when absent); dates are
``datetime.date``.

Errors (``connector_tasks.core.errors``): :class:`TransientApiError` for transport failures,
a broken/truncated stream or a reply that is not well-formed XML; :class:`CompanyNotLoadedError`
(transient) when Tally says the company is not loaded; :class:`RejectedError` for a refused
export (``STATUS 0``/``LINEERROR``) and for a reply holding a DTD/entity declaration (never
expanded); :class:`MappingError` for an unreadable amount or date; the
:func:`classify_status` error for a non-200 answer.
"""
from __future__ import annotations

import codecs
import datetime as dt
import logging
import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Iterable, Iterator, Sequence

import requests
from lxml import etree

from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ExternalApiError, MappingError, RejectedError,
    TransientApiError,
)
from connector_tasks.core.http import classify_status
from connector_tasks.domain.model import money

from . import envelopes, replies
from .client import _NOT_LOADED, SYSTEM, CompanyNotLoadedError, TallyClient, auth_refusal

log = logging.getLogger("ml_connector.tallyprime.exports")

__all__ = [
    "VOUCHER_FETCH", "MASTER_FETCH", "LOADER_BATCH", "ExportedVoucher", "LedgerEntry",
    "ExportedMaster", "alter_id_filter", "changed_vouchers_export", "changed_masters_export",
    "company_alter_ids_export", "SanitizingStream", "iter_export_vouchers",
    "iter_export_masters", "iter_changed_vouchers", "iter_changed_masters", "ChangedVouchers",
    "ChangedMasters", "company_alter_ids", "date_batches", "PURCHASE_KIND", "PURCHASE_FETCH",
    "PART_NUMBER_FIELD", "STOCK_ITEM_FETCH", "purchase_changes_export", "purchase_guids_export",
    "purchase_count_export", "stock_items_export", "parse_quantity", "parse_rate",
    "PurchaseChanges", "iter_changed_purchases", "stock_items_by_name", "fill_part_numbers",
    "iter_changed_stock_items", "iter_purchase_guids", "purchase_voucher_count", "PurchasePoll",
    "poll_purchases",
]

VOUCHER_COLLECTION = "MLCVoucherChanges"
COMPANY_ALTER_COLLECTION = "MLCCompanyAlterIds"
VOUCHER_FETCH: tuple[str, ...] = (
    "Date", "VoucherNumber", "VoucherTypeName", "Narration", "PartyLedgerName",
    "AllLedgerEntries", "MasterId", "AlterId", "Guid", "RemoteId")
# Field names per tally-export-config.yaml (https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml) / tally-export-config.yaml.
MASTER_FETCH: dict[str, tuple[str, ...]] = {
    "Ledger": ("Name", "Parent", "IsCostCentresOn", "MasterId", "AlterId", "Guid"),
    "CostCentre": ("Name", "Parent", "Category", "MasterId", "AlterId", "Guid"),
}
MASTER_TAGS = {"Ledger": "LEDGER", "CostCentre": "COSTCENTRE", "Group": "GROUP",
               "CostCategory": "COSTCATEGORY"}
LOADER_BATCH = 5000          # vouchers per request, tally-database-loader v1.0.41 (tally-database-loader)
DEFAULT_BATCH_DAYS = 31      # ASSUMPTION: a month per request before adapting to the volume
CHUNK = 64 * 1024            # bytes read from the socket per step


# =========================================================================== envelopes

def alter_id_filter(since_alter_id: int) -> str:
    """The TDL formula ``$AlterID > n`` (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/). Refuses a negative or
    non-int watermark with :class:`ConfigurationError` (it is interpolated into TDL)."""
    if type(since_alter_id) is not int or since_alter_id < 0:
        raise ConfigurationError(f"AlterID watermark must be an int >= 0, not {since_alter_id!r}",
                                 system=SYSTEM)
    return f"$AlterID > {since_alter_id}"


def changed_vouchers_export(company: str, since_alter_id: int, from_date: dt.date | str,
                            to_date: dt.date | str, *,
                            fetch: Sequence[str] = VOUCHER_FETCH) -> str:
    """Export/Collection of ``Voucher`` objects dated ``from_date``..``to_date`` (inclusive,
    ``SVFROMDATE``/``SVTODATE``) whose ``$AlterID > since_alter_id``, fetching
    :data:`VOUCHER_FETCH` (built with :func:`envelopes.collection_export`)."""
    return envelopes.collection_export(company, VOUCHER_COLLECTION, "Voucher", list(fetch),
                                       alter_id_filter(since_alter_id), from_date, to_date)


def changed_masters_export(company: str, obj_type: str, since_alter_id: int, *,
                           fetch: Sequence[str] | None = None) -> str:
    """Export/Collection of masters of ``obj_type`` (``Ledger``, ``CostCentre``; ``Group``
    and ``CostCategory`` need ``fetch``) with ``$AlterID > since_alter_id``. Masters are not
    date-bound, so no SVFROMDATE/SVTODATE. Raises :class:`ConfigurationError` for an unknown
    type without ``fetch``."""
    if fetch is None:
        if obj_type not in MASTER_FETCH:
            raise ConfigurationError(f"no default FETCH for Tally master type {obj_type!r}",
                                     system=SYSTEM)
        fetch = MASTER_FETCH[obj_type]
    return envelopes.collection_export(company, f"MLC{obj_type}Changes", obj_type, list(fetch),
                                       alter_id_filter(since_alter_id))


def company_alter_ids_export() -> str:
    """Collection of the loaded ``Company`` objects with ``Name``, ``AltMstId``,
    ``AltVchId`` (tally-database-loader ``fetchTallyCompanyList`` pattern, Tally XML case study 1)."""
    return envelopes.collection_export(None, COMPANY_ALTER_COLLECTION, "Company",
                                       ["Name", "AltMstId", "AltVchId"])


# =========================================================================== shapes

@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ``ALLLEDGERENTRIES.LIST`` (or ``LEDGERENTRIES.LIST``) line. ``amount`` is a
    ``Decimal`` with Tally's sign: negative = debit, positive = credit (Tally XML case study 1)."""

    ledger: str
    amount: Decimal
    is_deemed_positive: bool

    @property
    def is_debit(self) -> bool:
        return self.amount < 0


@dataclass(frozen=True, slots=True)
class ExportedVoucher:
    """One exported ``VOUCHER``. ``remote_id`` is the ``REMOTEID`` attribute or child
    (``""`` when absent); ``party_ledger`` is ``PARTYLEDGERNAME`` (``""`` when absent)."""

    date: dt.date | None
    voucher_type: str
    number: str
    narration: str
    party_ledger: str
    master_id: int | None
    alter_id: int | None
    guid: str
    remote_id: str
    ledger_entries: tuple[LedgerEntry, ...]

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ExportedMaster:
    """One exported master (``LEDGER``, ``COSTCENTRE``…): ``fields`` holds every simple
    child as stripped text keyed by its tag (``PARENT``, ``CATEGORY``…)."""

    kind: str
    name: str
    master_id: int | None
    alter_id: int | None
    guid: str
    fields: dict


# =========================================================================== the stream

_CHARSET = re.compile(r"charset\s*=\s*\"?([A-Za-z0-9_\-]+)", re.I)
# An unfinished character reference at the very end of a decoded chunk: "&", "&#", "&#x1"…
_REF_TAIL = re.compile(r"&(?:#(?:[xX][0-9a-fA-F]*|[0-9]*))?\Z")
_REF_LOOKBACK = 40
_REFUSED = ("<!DOCTYPE", "<!ENTITY")


def _codec_for(head: bytes, content_type: str | None) -> tuple[str, int]:
    """``(codec, bytes of BOM to skip)`` — same order as :func:`replies.decode_body`: a BOM
    wins, then ``charset=utf-16`` (LE, as tally-database-loader reads it, Tally integration prerequisites), then the
    look of the first bytes (``<\\x00`` = UTF-16LE, ``\\x00<`` = UTF-16BE), else UTF-8."""
    if head.startswith(b"\xff\xfe"):
        return "utf-16-le", 2
    if head.startswith(b"\xfe\xff"):
        return "utf-16-be", 2
    if head.startswith(b"\xef\xbb\xbf"):
        return "utf-8", 3
    charset = None
    if content_type:
        m = _CHARSET.search(content_type)
        charset = m.group(1).lower() if m else None
    if charset in ("utf-16", "utf16", "utf-16le", "unicode"):
        return "utf-16-le", 0
    if charset == "utf-16be":
        return "utf-16-be", 0
    if len(head) >= 2 and head[1] == 0 and head[0] != 0:
        return "utf-16-le", 0
    if len(head) >= 2 and head[0] == 0 and head[1] != 0:
        return "utf-16-be", 0
    return "utf-8", 0


class SanitizingStream:
    """A read-only file-like object over a reply's raw bytes that yields clean UTF-8.

    ``source`` is anything with ``read(n) -> bytes`` or an iterable of ``bytes`` chunks
    (``requests.Response.iter_content``). Step by step it: detects the encoding
    (:func:`_codec_for`; the first 4 bytes are enough), decodes incrementally (a UTF-16
    code unit or UTF-8 sequence split across chunks is fine; invalid bytes become U+FFFD),
    removes what XML 1.0 forbids with :func:`replies.sanitize` (``&#4;``, ``&#x1F;``, raw
    ``\\x04``…), holding back an unfinished ``&#…`` at a chunk's end until the next chunk,
    and re-encodes to UTF-8 (parse with ``encoding="utf-8"`` so a declaration naming UTF-16
    is overridden). A ``<!DOCTYPE``/``<!ENTITY`` anywhere raises :class:`RejectedError`
    (``replies.ENTITY_REFUSED``): Tally exports carry no DTD, so one is refused, never
    expanded. ``bytes_in`` counts raw bytes read; ``encoding`` is the detected codec.
    """

    def __init__(self, source, content_type: str | None = None, *, chunk_size: int = CHUNK):
        if hasattr(source, "read"):
            self._next = lambda: source.read(chunk_size)
        else:
            it = iter(source)
            self._next = lambda: next(it, b"")
        self._content_type = content_type
        self._decoder = None
        self._head = b""
        self._carry = ""
        self._scan_tail = ""
        self._out = bytearray()
        self._eof = False
        self.bytes_in = 0
        self.encoding: str | None = None

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while not self._eof and (size is None or size < 0 or len(self._out) < size):
            self._fill()
        if size is None or size < 0 or size >= len(self._out):
            data = bytes(self._out)
            self._out.clear()
            return data
        data = bytes(self._out[:size])
        del self._out[:size]
        return data

    def _fill(self) -> None:
        chunk = self._next()
        if chunk:
            self.bytes_in += len(chunk)
            if self._decoder is None:
                self._head += chunk
                if len(self._head) < 4:
                    return
                chunk, self._head = self._start(self._head), b""
            text = self._carry + self._decoder.decode(chunk)
            m = _REF_TAIL.search(text, max(0, len(text) - _REF_LOOKBACK))
            if m:
                self._carry, text = text[m.start():], text[:m.start()]
            else:
                self._carry = ""
        else:
            if self._decoder is None:
                chunk, self._head = self._start(self._head), b""
            else:
                chunk = b""
            text = self._carry + self._decoder.decode(chunk, final=True)
            self._carry = ""
            self._eof = True
        if not text:
            return
        scan = self._scan_tail + text
        if "<!" in scan and any(token in scan for token in _REFUSED):
            raise RejectedError(replies.ENTITY_REFUSED, system=SYSTEM, body=scan[:2000])
        self._scan_tail = scan[-8:]
        self._out += replies.sanitize(text).encode("utf-8")

    def _start(self, head: bytes) -> bytes:
        codec, skip = _codec_for(head, self._content_type)
        self.encoding = codec
        self._decoder = codecs.getincrementaldecoder(codec)(errors="replace")
        return head[skip:]


def _int_or_none(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            return int(Decimal(text))
        except Exception:  # noqa: BLE001
            raise MappingError(f"Tally id is not a number: {text!r}", system=SYSTEM) from None


_ENTRY_TAGS = ("ALLLEDGERENTRIES.LIST", "LEDGERENTRIES.LIST")


def _simple_children(el) -> tuple[dict, list]:
    """One pass over ``el``'s children: ``{tag: stripped text}`` (first occurrence wins) and
    the ledger-entry list elements in order (one pass is ~4x faster than ``findtext``)."""
    texts: dict = {}
    entries: list = []
    for child in el:
        tag = child.tag
        if tag in _ENTRY_TAGS:
            entries.append(child)
        elif tag not in texts and isinstance(tag, str):
            texts[tag] = (child.text or "").strip()
    return texts, entries


def _voucher_of(el) -> ExportedVoucher:
    f, entry_elements = _simple_children(el)
    entries = []
    for e in entry_elements:
        ef, _ = _simple_children(e)
        entries.append(LedgerEntry(
            ledger=ef.get("LEDGERNAME", ""),
            amount=money(ef.get("AMOUNT", ""), what="Tally AMOUNT"),
            is_deemed_positive=ef.get("ISDEEMEDPOSITIVE", "").lower() == "yes"))
    date_text = f.get("DATE", "")
    return ExportedVoucher(
        date=replies.parse_tally_date(date_text) if date_text else None,
        voucher_type=f.get("VOUCHERTYPENAME") or (el.get("VCHTYPE") or "").strip(),
        number=f.get("VOUCHERNUMBER", ""),
        narration=f.get("NARRATION", ""),
        party_ledger=f.get("PARTYLEDGERNAME", ""),
        master_id=_int_or_none(f.get("MASTERID")),
        alter_id=_int_or_none(f.get("ALTERID")),
        guid=f.get("GUID", ""),
        remote_id=(el.get("REMOTEID") or "").strip() or f.get("REMOTEID", ""),
        ledger_entries=tuple(entries))


def _master_of(el) -> ExportedMaster:
    fields = {c.tag: (c.text or "").strip() for c in el if isinstance(c.tag, str) and len(c) == 0}
    name = fields.get("NAME") or (el.get("NAME") or "").strip()
    return ExportedMaster(kind=el.tag, name=name, master_id=_int_or_none(fields.get("MASTERID")),
                          alter_id=_int_or_none(fields.get("ALTERID")),
                          guid=fields.get("GUID", ""), fields=fields)


def _release(el) -> None:
    """Free a handled element and everything before it, at every level (memory stays flat
    however many vouchers the reply holds)."""
    el.clear(keep_tail=False)
    node = el
    while True:
        parent = node.getparent()
        if parent is None:
            return
        while node.getprevious() is not None:
            del parent[0]
        node = parent


def _refusal(texts: list[str]) -> ExternalApiError:
    joined = "; ".join(t for t in texts if t) or "STATUS 0"
    auth = next((a for a in (auth_refusal(f"<LINEERROR>{t}</LINEERROR>") for t in texts) if a), None)
    if auth:
        return AuthError(f"Tally refused the company login: {auth}", system=SYSTEM, status=200)
    if any(_NOT_LOADED.search(f"<LINEERROR>{t}</LINEERROR>") for t in texts):
        return CompanyNotLoadedError(f"Tally company is not loaded: {joined}", system=SYSTEM,
                                     status=200, detail=joined)
    return RejectedError("Tally refused the export: " + joined, system=SYSTEM,
                         lines=[t for t in texts if t])


# Elements objects are exported under: collection exports, report/object exports. Real
# replies also carry DESC/CMPINFO/<VOUCHER>0</VOUCHER>-style counters (live capture,
# https://github.com/dhananjay1405/tally-database-loader source RishieRich/ArcAstraOneAru fixtures), which are not objects.
_OBJECT_PARENTS = ("COLLECTION", "TALLYMESSAGE")


def _iter_objects(source, content_type: str | None, tag: str, convert, *,
                  chunk_size: int = CHUNK) -> Iterator:
    """Stream-parse an export reply, yielding ``convert(element)`` for each ``tag`` element.

    lxml ``iterparse`` with ``resolve_entities=False``, ``no_network=True``,
    ``load_dtd=False``, ``huge_tree=False`` over a :class:`SanitizingStream`; a failure
    envelope (``HEADER/STATUS 0``, ``LINEERROR``) raises as it is met (see module doc)."""
    stream = SanitizingStream(source, content_type, chunk_size=chunk_size)
    context = etree.iterparse(
        stream, events=("end",), tag=(tag, "STATUS", "LINEERROR", "DATA"), encoding="utf-8",
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
        remove_comments=True, remove_pis=True)
    status = None
    try:
        for _event, el in context:
            name = el.tag
            if name == tag:
                parent = el.getparent()
                if parent is not None and parent.tag not in _OBJECT_PARENTS:
                    continue   # e.g. DESC/CMPINFO/VOUCHER, a counter in real Tally replies
                obj = convert(el)
                _release(el)
                yield obj
            elif name == "STATUS":
                parent = el.getparent()
                if parent is not None and parent.tag == "HEADER":
                    status = (el.text or "").strip()
            elif name == "LINEERROR":
                raise _refusal([(el.text or "").strip()])
            elif name == "DATA" and status == "0":
                raise _refusal([(el.text or "").strip()])
    except etree.XMLSyntaxError as exc:
        raise TransientApiError("Tally reply is not well-formed XML", system=SYSTEM,
                                detail=str(exc)) from exc
    if status == "0":
        raise _refusal([])


def iter_export_vouchers(source, content_type: str | None = None, *,
                         chunk_size: int = CHUNK) -> Iterator[ExportedVoucher]:
    """Every ``VOUCHER`` of an export reply (a collection's or a Day Book's: elements under
    ``COLLECTION`` or ``TALLYMESSAGE``, wherever those sit; ``DESC/CMPINFO`` counters are
    skipped), as :class:`ExportedVoucher`, in document order, from ``source`` (a binary
    file, anything with ``read(n)``, or an iterable of ``bytes`` chunks) — see
    :class:`SanitizingStream` for decoding and :func:`_iter_objects` for the errors."""
    return _iter_objects(source, content_type, "VOUCHER", _voucher_of, chunk_size=chunk_size)


def iter_export_masters(source, content_type: str | None = None, tag: str = "LEDGER", *,
                        chunk_size: int = CHUNK) -> Iterator[ExportedMaster]:
    """Every ``tag`` element (``LEDGER``, ``COSTCENTRE``…) of an export reply as
    :class:`ExportedMaster`, streamed like :func:`iter_export_vouchers`."""
    return _iter_objects(source, content_type, tag, _master_of, chunk_size=chunk_size)


# =========================================================================== HTTP

def _client(client_or_url, company: str | None, **kwargs) -> TallyClient:
    if isinstance(client_or_url, TallyClient):
        if company and company != client_or_url.company:
            return client_or_url.clone(company)
        return client_or_url
    if isinstance(client_or_url, str):
        return TallyClient(client_or_url, company, **kwargs)
    raise ConfigurationError(f"need a TallyClient or a URL, not {type(client_or_url).__name__}",
                             system=SYSTEM)


def _stream(client: TallyClient, xml: str, tag: str, convert, chunk_size: int = CHUNK) -> Iterator:
    """POST ``xml`` with ``stream=True`` (request encoded as the client's ``encoding``) and
    stream-parse the reply, under the client's reply cap and deadline
    (:meth:`TallyClient.open_reply`: :class:`ReplyTooLargeError`, :class:`ReplyDeadlineError`). Holds the client's per-URL lock until the generator ends or is
    closed (Tally serves one request at a time, Tally integration prerequisites): consume it or drop it, do not
    park it half-read while talking to the same Tally (that would deadlock)."""
    body, content_type = client.encode(xml)   # credentials added here, as for client.post
    with client._lock:  # noqa: SLF001 - same package: one request in flight per Tally
        resp, chunks = client.open_reply(body, content_type)  # under the client's cap and deadline
        try:
            if resp.status_code != 200:
                try:
                    resp._content = b"".join(chunks)  # noqa: SLF001 - bounded read for the error text
                    error = classify_status(resp, system=SYSTEM)
                except (requests.RequestException, TransientApiError) as exc:  # the error body broke off
                    error = TransientApiError(f"Tally answered {resp.status_code}", system=SYSTEM,
                                              status=resp.status_code, detail=type(exc).__name__)
                raise error
            try:
                yield from _iter_objects(chunks, resp.headers.get("Content-Type"), tag, convert,
                                         chunk_size=chunk_size)
            except requests.RequestException as exc:  # broken chunked stream, read timeout
                raise TransientApiError("Tally export stream broke off", system=SYSTEM,
                                        detail=type(exc).__name__) from exc
        finally:
            resp.close()


def company_alter_ids(client_or_url, company: str | None = None, **client_kwargs) -> dict[str, int]:
    """``{"master": AltMstId, "voucher": AltVchId}`` of the client's company (Tally XML case study 1 "Change
    tracking"), read from the ``Company`` collection (names compared case-insensitively).

    Raises :class:`CompanyNotLoadedError` when the company is not among the loaded ones,
    :class:`RejectedError` when Tally gives no AltMstId/AltVchId, plus the client's errors.
    """
    client = _client(client_or_url, company, **client_kwargs)
    rows = replies.parse_collection(client.post(company_alter_ids_export()), "COMPANY")
    row = next((r for r in rows if (r.get("NAME") or "").casefold() == client.company.casefold()),
               None)
    if row is None:
        loaded = ", ".join(r.get("NAME", "") for r in rows) or "none"
        raise CompanyNotLoadedError(f"Tally company {client.company!r} is not loaded",
                                    system=SYSTEM, status=200, detail=f"loaded: {loaded}")
    master, voucher = _int_or_none(row.get("ALTMSTID")), _int_or_none(row.get("ALTVCHID"))
    if master is None or voucher is None:
        raise RejectedError(f"Tally gave no AltMstId/AltVchId for {client.company!r}",
                            system=SYSTEM, detail=str(row)[:500])
    return {"master": master, "voucher": voucher}


def date_batches(from_date: dt.date, to_date: dt.date, days: int) -> list[tuple[dt.date, dt.date]]:
    """``from_date``..``to_date`` (inclusive) cut into consecutive inclusive windows of
    ``days`` days (the last one shorter). Raises ``ValueError`` for ``days < 1`` or an
    inverted range."""
    if days < 1:
        raise ValueError("days must be >= 1")
    if to_date < from_date:
        raise ValueError(f"from_date {from_date} is after to_date {to_date}")
    out, start = [], from_date
    while start <= to_date:
        end = min(to_date, start + dt.timedelta(days=days - 1))
        out.append((start, end))
        start = end + dt.timedelta(days=1)
    return out


def _as_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return replies.parse_tally_date(envelopes.tally_date(value))


class ChangedVouchers:
    """Iterable of the vouchers altered after a watermark; made by :func:`iter_changed_vouchers`.

    Iterate once. Afterwards (or during): ``max_alter_id`` is the highest AlterID seen
    (``since_alter_id`` when none), ``company_alter_id`` the company's ``$AltVchId`` read
    before the first batch (``None`` with ``check_company=False``), ``watermark`` the value
    to store for the next sync: ``min(max_alter_id, company_alter_id)`` — a voucher altered
    during the sync in a date batch already read gets an AlterID above the snapshot, so the
    next sync sees it even though a later batch may have shown a higher AlterID. Only store
    it after every voucher was handled. ``requests`` counts export requests, ``count``
    vouchers yielded, ``batches`` the ``(from, to)`` windows asked for.
    """

    def __init__(self, client: TallyClient, *, since_alter_id: int, from_date: dt.date,
                 to_date: dt.date, batch_days: int, max_per_request: int, check_company: bool,
                 chunk_size: int):
        alter_id_filter(since_alter_id)
        if batch_days < 1 or max_per_request < 1:
            raise ConfigurationError("batch_days and max_per_request must be >= 1", system=SYSTEM)
        self.client = client
        self.since_alter_id = since_alter_id
        self.from_date, self.to_date = from_date, to_date
        if to_date < from_date:
            raise ConfigurationError(f"from_date {from_date} is after to_date {to_date}",
                                     system=SYSTEM)
        self.batch_days, self.max_per_request = batch_days, max_per_request
        self.check_company, self.chunk_size = check_company, chunk_size
        self.max_alter_id = since_alter_id
        self.company_alter_id: int | None = None
        self.requests = 0
        self.count = 0
        self.batches: list[tuple[dt.date, dt.date]] = []
        self._started = False

    @property
    def watermark(self) -> int:
        if self.company_alter_id is None:
            return self.max_alter_id
        return max(self.since_alter_id, min(self.max_alter_id, self.company_alter_id))

    def __iter__(self) -> Iterator[ExportedVoucher]:
        if self._started:
            raise RuntimeError("ChangedVouchers can be iterated once")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[ExportedVoucher]:
        if self.check_company:
            self.company_alter_id = company_alter_ids(self.client)["voucher"]
            self.requests += 1
            if self.company_alter_id <= self.since_alter_id:
                log.info("tallyprime: no voucher altered after %s (AltVchId %s)",
                         self.since_alter_id, self.company_alter_id)
                return
        days = self.batch_days
        start = self.from_date
        target = max(1, int(self.max_per_request * 0.8))
        while start <= self.to_date:
            end = min(self.to_date, start + dt.timedelta(days=days - 1))
            self.batches.append((start, end))
            xml = changed_vouchers_export(self.client.company, self.since_alter_id, start, end)
            self.requests += 1
            n = 0
            for v in _stream(self.client, xml, "VOUCHER", _voucher_of, self.chunk_size):
                n += 1
                self.count += 1
                if v.alter_id is not None and v.alter_id > self.max_alter_id:
                    self.max_alter_id = v.alter_id
                yield v
            span = (end - start).days + 1
            if n > self.max_per_request:
                log.warning("tallyprime: %d vouchers in %s..%s (cap %d); narrowing the window",
                            n, start, end, self.max_per_request)
            # ASSUMPTION: the next window is sized from this one's density, aiming at 80 %
            # of the per-request cap, never wider than batch_days (loader: 5,000, tally-database-loader).
            days = max(1, min(self.batch_days, (span * target) // n if n else self.batch_days))
            start = end + dt.timedelta(days=1)


def iter_changed_vouchers(client_or_url, company: str | None = None, *, since_alter_id: int,
                          from_date: dt.date | str, to_date: dt.date | str,
                          batch_days: int = DEFAULT_BATCH_DAYS,
                          max_per_request: int = LOADER_BATCH, check_company: bool = True,
                          chunk_size: int = CHUNK, **client_kwargs) -> ChangedVouchers:
    """Vouchers dated ``from_date``..``to_date`` whose AlterID is above ``since_alter_id``,
    one :class:`ExportedVoucher` at a time, each exactly once (a voucher has one date and the
    windows do not overlap; one altered again during the sync may come twice, with a
    newer AlterID — consumers are idempotent).

    ``client_or_url``: a :class:`TallyClient` or the gateway URL (then ``company`` and
    ``client_kwargs`` — ``session``, ``timeout``, ``encoding`` — build one). With
    ``check_company`` (default) the company's ``$AltVchId`` is read first and nothing more
    is asked when it is not above the watermark (tally-database-loader does the same, Tally XML case study 1).
    The range is asked for in windows of at most ``batch_days`` days, each window one
    streamed export (:func:`changed_vouchers_export`); after a window with more than
    ``max_per_request`` × 0.8 vouchers the next ones narrow to keep about that many per
    request. Store :attr:`ChangedVouchers.watermark` once everything was handled. Errors:
    see the module doc; the iteration raises where it stopped (vouchers yielded before stay
    yielded; do not store the watermark then).
    """
    client = _client(client_or_url, company, **client_kwargs)
    return ChangedVouchers(client, since_alter_id=since_alter_id, from_date=_as_date(from_date),
                           to_date=_as_date(to_date), batch_days=batch_days,
                           max_per_request=max_per_request, check_company=check_company,
                           chunk_size=chunk_size)


class ChangedMasters:
    """Iterable of masters of one type altered after a watermark (one streamed request);
    ``max_alter_id`` is the highest AlterID seen (``since_alter_id`` when none)."""

    def __init__(self, client: TallyClient, obj_type: str, since_alter_id: int,
                 fetch: Sequence[str] | None):
        self.xml = changed_masters_export(client.company, obj_type, since_alter_id, fetch=fetch)
        self.client, self.tag = client, MASTER_TAGS.get(obj_type, obj_type.upper())
        self.since_alter_id = self.max_alter_id = since_alter_id
        self.count = 0

    def __iter__(self) -> Iterator[ExportedMaster]:
        for m in _stream(self.client, self.xml, self.tag, _master_of):
            self.count += 1
            if m.alter_id is not None and m.alter_id > self.max_alter_id:
                self.max_alter_id = m.alter_id
            yield m


def iter_changed_masters(client_or_url, company: str | None = None, obj_type: str = "Ledger", *,
                         since_alter_id: int, fetch: Sequence[str] | None = None,
                         **client_kwargs) -> ChangedMasters:
    """Masters of ``obj_type`` (``Ledger``, ``CostCentre``…) with ``$AlterID >
    since_alter_id`` as :class:`ExportedMaster` (``PARENT`` of a root object reads
    ``Primary``: the ``&#4;`` Tally puts before it is removed, tally-database-loader). Compare with
    ``company_alter_ids(...)["master"]`` to skip the request when nothing changed."""
    client = _client(client_or_url, company, **client_kwargs)
    return ChangedMasters(client, obj_type, since_alter_id, fetch)


# =========================================================================== purchases
#
# TallyPrime as a *source*: purchase vouchers and debit notes (purchase returns) entered in
# Tally, polled by the agent. One poll (:func:`poll_purchases`):
#
#   1. the company's high-water marks ``$AltMstId``/``$AltVchId`` (1 request, Tally XML case study 1);
#   2. stock items altered after the master watermark, when ``AltMstId`` moved (1 request);
#   3. purchase-family vouchers altered after the voucher watermark, in AlterID windows of at
#      most ``window`` AlterIDs ($AlterID > lo AND $AlterID <= hi, streamed), when
#      ``AltVchId`` moved: ceil(alterations since the last poll / window) requests, however
#      large the books are. (Date windows, as :func:`iter_changed_vouchers` uses for full
#      syncs, would cost one request per window of the whole period even for one change.)
#      Each window is read whole (≤ ``window`` vouchers in memory), then the part numbers of
#      its stock items not yet known are read from the stock-item masters (1 request per 50
#      names), then its vouchers are yielded;
#   4. the number of purchase-family vouchers (an aggregate collection: one small reply, the
#      counting is Tally's) (1 request);
#   5. only when that number differs from the last poll's plus the vouchers created since
#      (MASTERID above the last poll's highest) — a deletion, or a voucher that changed
#      family — the GUID+ALTERID list of every purchase-family voucher (1 streamed request,
#      two fields per voucher; O(books) bytes, only then), diffed against ``known_guids``.
#
# Steady state (nothing changed): 2 requests. 50 changes: 3–5 requests. Memory: one window of
# vouchers, the parsed changes the caller asked for, and the GUID list only in step 5.
# Deletions do not move AlterIDs (tally-database-loader diffs GUID lists for them, Tally XML case study 1), hence
# steps 4–5. ASSUMPTIONs: ``$$IsPurchase``/``$$IsDebitNote`` classify a voucher type by its base
# type (as ``$$IsSales``/``$$IsCreditNote`` do in public TDL); a voucher collection spans the
# SVFROMDATE..SVTODATE given (1900..2099 here) — a third-party live finding says TallyPrime's
# collections keep to the current period instead, which would hide other years' changes.

PURCHASE_KIND = "$$IsPurchase:$VoucherTypeName OR $$IsDebitNote:$VoucherTypeName"
PURCHASE_FETCH: tuple[str, ...] = (
    "Date", "VoucherTypeName", "VoucherNumber", "Reference", "ReferenceDate", "Narration",
    "PartyLedgerName", "IsCancelled", "IsOptional", "IsInvoice", "RemoteId", "Guid",
    "MasterId", "AlterId", "LedgerEntries", "AllInventoryEntries")
#: The stock-item field holding the part number. ASSUMPTION (no public source found): Tally
#: keeps a stock item's "Part No." in its MailingName, exported as
#: ``MAILINGNAME.LIST TYPE="String"/MAILINGNAME``.
PART_NUMBER_FIELD = "MailingName"
STOCK_ITEM_FETCH: tuple[str, ...] = ("Name", "Parent", "BaseUnits", PART_NUMBER_FIELD, "Guid",
                                     "MasterId", "AlterId")
PURCHASE_WINDOW = LOADER_BATCH       # AlterIDs per request
NAMES_PER_LOOKUP = 50                # stock-item names per part-number lookup request
WIDE_FROM, WIDE_TO = dt.date(1900, 1, 1), dt.date(2099, 12, 31)
_IS_RETURN = "MLCIsDebitNote"


def _int_arg(value, what: str) -> int:
    if type(value) is not int or value < 0:
        raise ConfigurationError(f"{what} must be an int >= 0, not {value!r}", system=SYSTEM)
    return value


def purchase_changes_export(company: str, since_alter_id: int, upto_alter_id: int, *,
                            fetch: Sequence[str] = PURCHASE_FETCH) -> str:
    """Collection of purchase-family vouchers (:data:`PURCHASE_KIND`) with ``since <
    $AlterID <= upto``, fetching :data:`PURCHASE_FETCH` plus ``COMPUTE MLCIsDebitNote :
    $$IsDebitNote:$VoucherTypeName`` (so Tally itself says which are returns, whatever the
    company calls its voucher types), over 1900..2099."""
    lo, hi = _int_arg(since_alter_id, "since_alter_id"), _int_arg(upto_alter_id, "upto_alter_id")
    coll = {"@NAME": "MLCPurchaseChanges", "@ISMODIFY": "No", "TYPE": "Voucher",
            "FETCH": ", ".join(fetch),
            "COMPUTE": f"{_IS_RETURN} : $$IsDebitNote:$VoucherTypeName",
            "FILTER": "MLCPurchaseKind, MLCAlterWindow"}
    return envelopes.inline_tdl_export(
        company, "MLCPurchaseChanges", [coll],
        {"MLCPurchaseKind": PURCHASE_KIND,
         "MLCAlterWindow": f"$AlterID > {lo} AND $AlterID <= {hi}"}, WIDE_FROM, WIDE_TO)


def purchase_guids_export(company: str) -> str:
    """Collection of every purchase-family voucher with a FETCH of two fields, ``Guid`` and
    ``AlterId`` (the cheap list tally-database-loader diffs for deletions, Tally XML case study 1)."""
    coll = {"@NAME": "MLCPurchaseGuids", "@ISMODIFY": "No", "TYPE": "Voucher",
            "FETCH": "Guid, AlterId", "FILTER": "MLCPurchaseKind"}
    return envelopes.inline_tdl_export(company, "MLCPurchaseGuids", [coll],
                                       {"MLCPurchaseKind": PURCHASE_KIND}, WIDE_FROM, WIDE_TO)


def purchase_count_export(company: str) -> str:
    """Aggregate collection counting purchase-family vouchers per voucher type (source
    collection + ``BY VoucherTypeName`` + ``AGGRCOMPUTE Count : SUM : $$Number:1``, the shape of
    tally-database-loader's ``generateVoucherDatewiseCount``)."""
    source = {"@NAME": "MLCPurchaseSet", "@ISMODIFY": "No", "TYPE": "Voucher",
              "FILTER": "MLCPurchaseKind"}
    counted = {"@NAME": "MLCPurchaseCount", "@ISMODIFY": "No",
               "SOURCECOLLECTION": "MLCPurchaseSet", "BY": "VoucherTypeName : $VoucherTypeName",
               "AGGRCOMPUTE": "Count : SUM : $$Number:1"}
    return envelopes.inline_tdl_export(company, "MLCPurchaseCount", [source, counted],
                                       {"MLCPurchaseKind": PURCHASE_KIND}, WIDE_FROM, WIDE_TO)


def stock_items_export(company: str, *, since_alter_id: int | None = None,
                       upto_alter_id: int | None = None, names: Sequence[str] | None = None) -> str:
    """Collection of stock items (:data:`STOCK_ITEM_FETCH`): altered in ``(since, upto]``,
    or named ``names`` (``$Name = "A" OR …``; a name holding ``"`` cannot be written in TDL —
    :class:`MappingError`), or all."""
    formulas: dict[str, str] = {}
    if since_alter_id is not None:
        cond = f"$AlterID > {_int_arg(since_alter_id, 'since_alter_id')}"
        if upto_alter_id is not None:
            cond += f" AND $AlterID <= {_int_arg(upto_alter_id, 'upto_alter_id')}"
        formulas["MLCItemWindow"] = cond
    if names:
        for name in names:
            if '"' in name:
                raise MappingError(f"stock item {name!r} cannot be named in a Tally filter",
                                   system=SYSTEM)
        formulas["MLCItemNames"] = " OR ".join(f'$Name = "{name}"' for name in names)
    coll = {"@NAME": "MLCStockItems", "@ISMODIFY": "No", "TYPE": "StockItem",
            "FETCH": ", ".join(STOCK_ITEM_FETCH)}
    if formulas:
        coll["FILTER"] = ", ".join(formulas)
    return envelopes.inline_tdl_export(company, "MLCStockItems", [coll], formulas)


# --------------------------------------------------------------------------- parsing

_QTY = re.compile(r"^\s*(-?[\d,]*\.?\d+)\s*(.*?)\s*$")


def parse_quantity(text: str | None) -> tuple[Decimal, str]:
    """``" 10 Nos"`` → ``(Decimal("10"), "Nos")``, ``"2.500 Kg"`` → ``(Decimal("2.500"),
    "Kg")`` (exact; the shape tally-database-loader's reader splits, ``Quantity`` type); a
    forex or alternate-unit form keeps the part before ``=``. Empty → ``(0, "")``. Raises
    :class:`MappingError` for anything else."""
    t = (text or "").split("=")[0].strip()
    if not t:
        return Decimal(0), ""
    m = _QTY.match(t)
    if not m:
        raise MappingError(f"not a Tally quantity: {text!r}", system=SYSTEM)
    try:
        return Decimal(m.group(1).replace(",", "")), m.group(2)
    except InvalidOperation as exc:
        raise MappingError(f"not a Tally quantity: {text!r}", system=SYSTEM) from exc


def parse_rate(text: str | None) -> tuple[Decimal, str]:
    """``"250.00/Nos"`` → ``(Decimal("250.00"), "Nos")`` (``Rate`` type; after ``=`` for a
    forex rate, as tally-database-loader reads it). Empty → ``(0, "")``."""
    t = (text or "").strip()
    if "=" in t:
        t = t.split("=", 1)[1].strip()
    if not t:
        return Decimal(0), ""
    value, _, unit = t.partition("/")
    value = re.sub(r"[^0-9.\-]", "", value)
    try:
        return Decimal(value), unit.strip()
    except InvalidOperation as exc:
        raise MappingError(f"not a Tally rate: {text!r}", system=SYSTEM) from exc


def _yes(text: str | None) -> bool:
    return (text or "").strip().lower() in ("yes", "true")


def _texts(el) -> dict:
    """Leaf children of ``el`` as ``{tag: stripped text}`` (first wins)."""
    out: dict = {}
    for c in el:
        if isinstance(c.tag, str) and len(c) == 0 and c.tag not in out:
            out[c.tag] = (c.text or "").strip()
    return out


def _inventory_line(el) -> dict:
    f = _texts(el)
    qty, unit = parse_quantity(f.get("ACTUALQTY") or f.get("BILLEDQTY"))
    rate, rate_unit = parse_rate(f.get("RATE"))
    amount = money(f.get("AMOUNT", ""), what="Tally AMOUNT")
    batches = []
    for b_el in el.iterfind("BATCHALLOCATIONS.LIST"):
        bf = _texts(b_el)
        bq, _bu = parse_quantity(bf.get("ACTUALQTY") or bf.get("BILLEDQTY"))
        batches.append({"godown": bf.get("GODOWNNAME", ""), "batch": bf.get("BATCHNAME", ""),
                        "quantity": abs(bq),
                        "amount": abs(money(bf.get("AMOUNT", ""), what="Tally AMOUNT"))})
    ledger = next((_texts(a).get("LEDGERNAME", "") for a in el.iterfind("ACCOUNTINGALLOCATIONS.LIST")), "")
    inward = _yes(f.get("ISDEEMEDPOSITIVE")) if "ISDEEMEDPOSITIVE" in f else amount < 0
    return {"stock_item": f.get("STOCKITEMNAME", ""), "part_number": None,
            "quantity": abs(qty), "unit": unit, "rate": rate, "rate_unit": rate_unit or unit,
            "amount": abs(amount), "is_inward": inward,
            "godown": batches[0]["godown"] if batches else f.get("GODOWNNAME", ""),
            "batches": batches, "ledger": ledger}


def _purchase_of(el) -> dict:
    """One exported purchase-family ``VOUCHER`` → plain dict (see :func:`poll_purchases`)."""
    f = _texts(el)
    entries = []
    for e in list(el.iterfind("LEDGERENTRIES.LIST")) or list(el.iterfind("ALLLEDGERENTRIES.LIST")):
        ef = _texts(e)
        entries.append({"ledger": ef.get("LEDGERNAME", ""),
                        "amount": money(ef.get("AMOUNT", ""), what="Tally AMOUNT"),
                        "is_party": _yes(ef.get("ISPARTYLEDGER"))})
    party = f.get("PARTYLEDGERNAME", "")
    party_entry = next((e for e in entries if e["is_party"]), None) or next(
        (e for e in entries if party and e["ledger"] == party), None)
    date_text, ref_date = f.get("DATE", ""), f.get("REFERENCEDATE", "")
    is_return = _yes(f.get(_IS_RETURN.upper()))
    return {
        "guid": f.get("GUID", ""), "master_id": _int_or_none(f.get("MASTERID")),
        "alter_id": _int_or_none(f.get("ALTERID")),
        "date": replies.parse_tally_date(date_text) if date_text else None,
        "voucher_type": f.get("VOUCHERTYPENAME") or (el.get("VCHTYPE") or "").strip(),
        "kind": "debit_note" if is_return else "purchase",
        "number": f.get("VOUCHERNUMBER", ""), "party_ledger": party,
        "reference": f.get("REFERENCE", ""),
        "reference_date": replies.parse_tally_date(ref_date) if ref_date else None,
        "narration": f.get("NARRATION", ""),
        "is_cancelled": _yes(f.get("ISCANCELLED")), "is_optional": _yes(f.get("ISOPTIONAL")),
        "remote_id": (el.get("REMOTEID") or "").strip() or f.get("REMOTEID", ""),
        "total": abs(party_entry["amount"]) if party_entry else Decimal("0.00"),
        "inventory": [_inventory_line(i) for i in el.iterfind("ALLINVENTORYENTRIES.LIST")],
        "ledger_entries": entries,
    }


def _stock_item_of(el) -> dict:
    f = _texts(el)
    part = ""
    mailing = el.find(f"{PART_NUMBER_FIELD.upper()}.LIST")
    if mailing is not None:
        part = next(((c.text or "").strip() for c in mailing), "")
    elif PART_NUMBER_FIELD.upper() in f:
        part = f[PART_NUMBER_FIELD.upper()]
    parent = f.get("PARENT", "").strip()
    return {"name": f.get("NAME") or (el.get("NAME") or "").strip(), "part_number": part,
            "base_unit": f.get("BASEUNITS", ""), "parent": "" if parent == "Primary" else parent,
            "guid": f.get("GUID", ""), "master_id": _int_or_none(f.get("MASTERID")),
            "alter_id": _int_or_none(f.get("ALTERID"))}


def _guid_pair(el) -> tuple[str, int | None]:
    f = _texts(el)
    return f.get("GUID", ""), _int_or_none(f.get("ALTERID"))


def _count_row(el) -> int:
    return _int_or_none(_texts(el).get("COUNT")) or 0


# --------------------------------------------------------------------------- requests

class PurchaseChanges:
    """Iterable of the purchase-family vouchers altered in ``(since, upto]`` (dicts of
    :func:`poll_purchases`), in AlterID windows; made by :func:`iter_changed_purchases`.
    ``requests``, ``count``, ``max_alter_id``, ``max_master_id`` and ``windows`` (the
    ``(lo, hi]`` pairs asked for) are filled in as it runs; ``part_numbers`` is the
    name → part number cache it used and grew (pass your own to reuse it)."""

    def __init__(self, client: TallyClient, since: int, upto: int, window: int,
                 part_numbers: dict | None, lookup_parts: bool):
        self.client, self.since, self.upto = client, since, upto
        if window < 1:
            raise ConfigurationError("window must be >= 1", system=SYSTEM)
        self.window, self.lookup_parts = window, lookup_parts
        self.part_numbers: dict[str, str] = {} if part_numbers is None else part_numbers
        self.requests = 0
        self.count = 0
        self.max_alter_id = since
        self.max_master_id = 0
        self.windows: list[tuple[int, int]] = []
        self._started = False

    def __iter__(self) -> Iterator[dict]:
        if self._started:
            raise RuntimeError("PurchaseChanges can be iterated once")
        self._started = True
        return self._run()

    def _run(self) -> Iterator[dict]:
        lo = self.since
        while lo < self.upto:
            hi = min(self.upto, lo + self.window)
            self.windows.append((lo, hi))
            xml = purchase_changes_export(self.client.company, lo, hi)
            self.requests += 1
            batch = list(_stream(self.client, xml, "VOUCHER", _purchase_of))
            if self.lookup_parts:
                self.requests += fill_part_numbers(self.client, batch, self.part_numbers)
            for v in batch:
                self.count += 1
                self.max_alter_id = max(self.max_alter_id, v["alter_id"] or 0)
                self.max_master_id = max(self.max_master_id, v["master_id"] or 0)
                yield v
            lo = hi


def iter_changed_purchases(client_or_url, company: str | None = None, *, since_alter_id: int,
                           upto_alter_id: int, window: int = PURCHASE_WINDOW,
                           part_numbers: dict | None = None, lookup_parts: bool = True,
                           **client_kwargs) -> PurchaseChanges:
    """Purchase vouchers and debit notes with ``since < AlterID <= upto``, streamed window by
    window (``window`` AlterIDs per request), with each inventory line's ``part_number``
    looked up from the stock-item masters (``lookup_parts``; cached in ``part_numbers``).
    Raises the client's errors, :class:`AuthError` for a refused login."""
    client = _client(client_or_url, company, **client_kwargs)
    return PurchaseChanges(client, _int_arg(since_alter_id, "since_alter_id"),
                           _int_arg(upto_alter_id, "upto_alter_id"), window, part_numbers,
                           lookup_parts)


def stock_items_by_name(client: TallyClient, names: Iterable[str]) -> dict[str, dict]:
    """The stock items named ``names`` (``{name: stock item dict}``), :data:`NAMES_PER_LOOKUP`
    per request; names TDL cannot quote (holding ``"``) are found in one export of all
    items."""
    return _items_by_name(client, names)[0]


def _items_by_name(client: TallyClient, names: Iterable[str]) -> tuple[dict[str, dict], int]:
    names = list(dict.fromkeys(n for n in names if n))
    quotable = [n for n in names if '"' not in n]
    found: dict[str, dict] = {}
    requests_ = 0
    for i in range(0, len(quotable), NAMES_PER_LOOKUP):
        chunk = quotable[i:i + NAMES_PER_LOOKUP]
        requests_ += 1
        for item in _stream(client, stock_items_export(client.company, names=chunk),
                            "STOCKITEM", _stock_item_of):
            found[item["name"]] = item
    if len(quotable) < len(names):
        requests_ += 1
        wanted = {n.casefold() for n in names if '"' in n}
        for item in _stream(client, stock_items_export(client.company), "STOCKITEM", _stock_item_of):
            if item["name"].casefold() in wanted:
                found[item["name"]] = item
    return found, requests_


def fill_part_numbers(client: TallyClient, vouchers: list[dict], cache: dict[str, str]) -> int:
    """Set ``part_number`` on every inventory line of ``vouchers`` from ``cache`` (stock item
    name → part number), reading the items not in it (and adding them); returns the number of
    requests made. An item Tally no longer knows gets ``""``."""
    missing = {line["stock_item"] for v in vouchers for line in v["inventory"]
               if line["stock_item"] not in cache}
    requests_ = 0
    if missing:
        items, requests_ = _items_by_name(client, sorted(missing))
        for name in missing:
            cache[name] = items[name]["part_number"] if name in items else ""
    for v in vouchers:
        for line in v["inventory"]:
            line["part_number"] = cache.get(line["stock_item"], "")
    return requests_


def iter_changed_stock_items(client_or_url, company: str | None = None, *, since_alter_id: int,
                             upto_alter_id: int | None = None, **client_kwargs) -> Iterator[dict]:
    """Stock items altered after ``since_alter_id`` (up to ``upto_alter_id``), one streamed
    request: ``{"name", "part_number", "base_unit", "parent", "guid", "master_id",
    "alter_id"}``."""
    client = _client(client_or_url, company, **client_kwargs)
    xml = stock_items_export(client.company, since_alter_id=since_alter_id,
                             upto_alter_id=upto_alter_id)
    return _stream(client, xml, "STOCKITEM", _stock_item_of)


def iter_purchase_guids(client_or_url, company: str | None = None,
                        **client_kwargs) -> Iterator[tuple[str, int | None]]:
    """``(GUID, ALTERID)`` of every purchase-family voucher, one streamed request (FETCH of
    two fields)."""
    client = _client(client_or_url, company, **client_kwargs)
    return _stream(client, purchase_guids_export(client.company), "VOUCHER", _guid_pair)


def purchase_voucher_count(client_or_url, company: str | None = None, **client_kwargs) -> int:
    """How many purchase-family vouchers the company holds (cancelled and optional ones
    included), one aggregate request; rows without a count add 0."""
    client = _client(client_or_url, company, **client_kwargs)
    return sum(_stream(client, purchase_count_export(client.company), "OBJECT", _count_row))


@dataclass
class PurchasePoll:
    """The outcome of :func:`poll_purchases`.

    * ``marks`` — ``{"master": AltMstId, "voucher": AltVchId}`` read first;
    * ``vouchers`` — purchase vouchers and debit notes altered since the last poll (new,
      altered, cancelled), each ``{"guid", "master_id", "alter_id", "date", "voucher_type",
      "kind": "purchase"|"debit_note", "number", "party_ledger", "reference",
      "reference_date", "narration", "is_cancelled", "is_optional", "remote_id", "total",
      "inventory": [{"stock_item", "part_number", "quantity": Decimal, "unit", "rate":
      Decimal, "rate_unit", "amount": Decimal, "is_inward", "godown", "batches": [{"godown",
      "batch", "quantity", "amount"}], "ledger"}], "ledger_entries": [{"ledger", "amount"
      (Tally's sign), "is_party"}]}`` — amounts and quantities are magnitudes, ``is_inward``
      tells a purchase line (stock in) from a return line;
    * ``stock_items`` — stock items altered since the last poll (``{"name", "part_number",
      "base_unit", "parent", "guid", "master_id", "alter_id"}``);
    * ``count`` — purchase-family vouchers in the company now;
    * ``guid_list_fetched`` — whether step 5 ran; then ``current_guids`` (``{guid:
      alter_id}``) and, given ``known_guids``, ``deleted_guids`` (sorted);
    * ``state`` — store it once every voucher was handled and pass it to the next poll;
    * ``requests`` — requests made.
    """

    marks: dict
    vouchers: list = field(default_factory=list)
    stock_items: list = field(default_factory=list)
    count: int = 0
    guid_list_fetched: bool = False
    current_guids: dict | None = None
    deleted_guids: list | None = None
    state: dict = field(default_factory=dict)
    requests: int = 0


def poll_purchases(client: TallyClient, state: dict | None = None, *,
                   known_guids: Iterable[str] | None = None, window: int = PURCHASE_WINDOW,
                   part_numbers: dict | None = None) -> PurchasePoll:
    """One poll of a company's purchases (the steps and costs are at the top of this
    section). ``state`` is the previous poll's :attr:`PurchasePoll.state` (``None``: the first
    poll, which reads every purchase once and does no deletion check); ``known_guids`` the
    GUIDs the caller holds (to name deletions); ``part_numbers`` a name → part number cache
    kept between polls (it is also filled from the stock items read). Raises the client's
    errors (:class:`AuthError` for a refused login, :class:`CompanyNotLoadedError`…); when it
    raises, keep the old state."""
    state = dict(state or {})
    first = state.get("count") is None
    since_v = int(state.get("voucher_alter_id", 0))
    since_m = int(state.get("master_alter_id", 0))
    max_mid = int(state.get("max_master_id", 0))
    cache = {} if part_numbers is None else part_numbers
    marks = company_alter_ids(client)
    poll = PurchasePoll(marks=marks, requests=1)
    if marks["master"] > since_m:
        poll.stock_items = list(iter_changed_stock_items(client, since_alter_id=since_m,
                                                         upto_alter_id=marks["master"]))
        poll.requests += 1
        for item in poll.stock_items:
            cache[item["name"]] = item["part_number"]
    if marks["voucher"] > since_v:
        run = iter_changed_purchases(client, since_alter_id=since_v, upto_alter_id=marks["voucher"],
                                     window=window, part_numbers=cache)
        poll.vouchers = list(run)
        poll.requests += run.requests
    poll.count = purchase_voucher_count(client)
    poll.requests += 1
    created = sum(1 for v in poll.vouchers if (v["master_id"] or 0) > max_mid)
    expected = int(state.get("count") or 0) + created
    if not first and poll.count != expected:
        poll.current_guids = dict(iter_purchase_guids(client))
        poll.requests += 1
        poll.guid_list_fetched = True
        if known_guids is not None:
            poll.deleted_guids = sorted(set(known_guids) - set(poll.current_guids))
    poll.state = {"voucher_alter_id": max(since_v, marks["voucher"]),
                  "master_alter_id": max(since_m, marks["master"]),
                  "count": poll.count,
                  "max_master_id": max([max_mid] + [v["master_id"] or 0 for v in poll.vouchers])}
    log.info("tallyprime: purchase poll of %r: %d changed, %d stock items, count %d, %d requests%s",
             client.company, len(poll.vouchers), len(poll.stock_items), poll.count, poll.requests,
             ", GUID list read" if poll.guid_list_fetched else "")
    return poll
