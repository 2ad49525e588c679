"""What changed in a TallyPrime company since the last sync: AlterID-watermarked exports,
read as a stream.

Sources (external-apis.md §2):

* §2.2 "Change tracking": every object carries ``GUID``, ``MASTERID`` (stable) and
  ``ALTERID`` (a counter bumped on every create/alter); the company exposes ``$AltMstId``
  (last master AlterID) and ``$AltVchId`` (last voucher AlterID). tally-database-loader
  compares those with its own watermark, then exports with the TDL formula
  ``$AlterID > last`` (``<SYSTEM TYPE="Formulae">``). Deleted objects are NOT reported by an
  AlterID filter (the loader diffs GUID lists for that; not done here).
* §2.2 "Export (collection)": inline-TDL collection with ``FETCH`` and ``FILTER``;
  ``SVFROMDATE``/``SVTODATE`` (YYYYMMDD) bound voucher collections.
* §2.1: replies may be UTF-16 (BOM or ``charset=utf-16``); requests are sent in the client's
  encoding (UTF-8, or UTF-16LE as tally-database-loader does).
* §2.4: real exports hold ``&#4;`` references and raw control bytes that XML 1.0 forbids;
  big exports stall Tally, so tally-database-loader batches 5,000 vouchers per request.

Shapes and units: one :class:`ExportedVoucher` per ``VOUCHER`` element; amounts are
``Decimal`` in the company currency with Tally's sign (negative = debit, external-apis §2.2
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
from dataclasses import asdict, dataclass
from decimal import Decimal
from typing import Iterator, Sequence

import requests
from lxml import etree

from connector_tasks.core.errors import (
    ConfigurationError, ExternalApiError, MappingError, RejectedError, TransientApiError,
)
from connector_tasks.core.http import classify_status, send
from connector_tasks.domain.model import money

from . import envelopes, replies
from .client import _NOT_LOADED, SYSTEM, CompanyNotLoadedError, TallyClient

log = logging.getLogger("ml_connector.tallyprime.exports")

__all__ = [
    "VOUCHER_FETCH", "MASTER_FETCH", "LOADER_BATCH", "ExportedVoucher", "LedgerEntry",
    "ExportedMaster", "alter_id_filter", "changed_vouchers_export", "changed_masters_export",
    "company_alter_ids_export", "SanitizingStream", "iter_export_vouchers",
    "iter_export_masters", "iter_changed_vouchers", "iter_changed_masters", "ChangedVouchers",
    "ChangedMasters", "company_alter_ids", "date_batches",
]

VOUCHER_COLLECTION = "MLCVoucherChanges"
COMPANY_ALTER_COLLECTION = "MLCCompanyAlterIds"
VOUCHER_FETCH: tuple[str, ...] = (
    "Date", "VoucherNumber", "VoucherTypeName", "Narration", "PartyLedgerName",
    "AllLedgerEntries", "MasterId", "AlterId", "Guid", "RemoteId")
# Field names per tally-export-config.yaml (external-apis §7) / §2.6.
MASTER_FETCH: dict[str, tuple[str, ...]] = {
    "Ledger": ("Name", "Parent", "IsCostCentresOn", "MasterId", "AlterId", "Guid"),
    "CostCentre": ("Name", "Parent", "Category", "MasterId", "AlterId", "Guid"),
}
MASTER_TAGS = {"Ledger": "LEDGER", "CostCentre": "COSTCENTRE", "Group": "GROUP",
               "CostCategory": "COSTCATEGORY"}
LOADER_BATCH = 5000          # vouchers per request, tally-database-loader v1.0.41 (§2.4)
DEFAULT_BATCH_DAYS = 31      # ASSUMPTION: a month per request before adapting to the volume
CHUNK = 64 * 1024            # bytes read from the socket per step


# =========================================================================== envelopes

def alter_id_filter(since_alter_id: int) -> str:
    """The TDL formula ``$AlterID > n`` (external-apis §2.2). Refuses a negative or
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
    ``AltVchId`` (tally-database-loader ``fetchTallyCompanyList`` pattern, §2.2)."""
    return envelopes.collection_export(None, COMPANY_ALTER_COLLECTION, "Company",
                                       ["Name", "AltMstId", "AltVchId"])


# =========================================================================== shapes

@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ``ALLLEDGERENTRIES.LIST`` (or ``LEDGERENTRIES.LIST``) line. ``amount`` is a
    ``Decimal`` with Tally's sign: negative = debit, positive = credit (§2.2)."""

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
    wins, then ``charset=utf-16`` (LE, as tally-database-loader reads it, §2.1), then the
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
    if any(_NOT_LOADED.search(f"<LINEERROR>{t}</LINEERROR>") for t in texts):
        return CompanyNotLoadedError(f"Tally company is not loaded: {joined}", system=SYSTEM,
                                     status=200, detail=joined)
    return RejectedError("Tally refused the export: " + joined, system=SYSTEM,
                         lines=[t for t in texts if t])


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
    """Every ``VOUCHER`` of an export reply (collection or Day Book; anywhere in the
    document), as :class:`ExportedVoucher`, in document order, from ``source`` (a binary
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
            return TallyClient(client_or_url.url, company, session=client_or_url.session,
                               timeout=client_or_url.timeout, encoding=client_or_url.encoding)
        return client_or_url
    if isinstance(client_or_url, str):
        return TallyClient(client_or_url, company, **kwargs)
    raise ConfigurationError(f"need a TallyClient or a URL, not {type(client_or_url).__name__}",
                             system=SYSTEM)


def _stream(client: TallyClient, xml: str, tag: str, convert, chunk_size: int = CHUNK) -> Iterator:
    """POST ``xml`` with ``stream=True`` (request encoded as the client's ``encoding``) and
    stream-parse the reply. Holds the client's per-URL lock until the generator ends or is
    closed (Tally serves one request at a time, §2.7 #3): consume it or drop it, do not
    park it half-read while talking to the same Tally (that would deadlock)."""
    body, content_type = envelopes.encode_request(xml, client.encoding)
    with client._lock:  # noqa: SLF001 - same package: one request in flight per Tally
        resp = send(client.session, "POST", client.url, system=SYSTEM, timeout=client.timeout,
                    data=body, headers={"Content-Type": content_type}, stream=True)
        try:
            if resp.status_code != 200:
                try:
                    error = classify_status(resp, system=SYSTEM)
                except requests.RequestException as exc:  # the error body itself broke off
                    error = TransientApiError(f"Tally answered {resp.status_code}", system=SYSTEM,
                                              status=resp.status_code, detail=type(exc).__name__)
                raise error
            try:
                yield from _iter_objects(resp.iter_content(chunk_size),
                                         resp.headers.get("Content-Type"), tag, convert,
                                         chunk_size=chunk_size)
            except requests.RequestException as exc:  # broken chunked stream, read timeout
                raise TransientApiError("Tally export stream broke off", system=SYSTEM,
                                        detail=type(exc).__name__) from exc
        finally:
            resp.close()


def company_alter_ids(client_or_url, company: str | None = None, **client_kwargs) -> dict[str, int]:
    """``{"master": AltMstId, "voucher": AltVchId}`` of the client's company (§2.2 "Change
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
            # of the per-request cap, never wider than batch_days (loader: 5,000, §2.4).
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
    is asked when it is not above the watermark (tally-database-loader does the same, §2.2).
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
    ``Primary``: the ``&#4;`` Tally puts before it is removed, §2.4). Compare with
    ``company_alter_ids(...)["master"]`` to skip the request when nothing changed."""
    client = _client(client_or_url, company, **client_kwargs)
    return ChangedMasters(client, obj_type, since_alter_id, fetch)
