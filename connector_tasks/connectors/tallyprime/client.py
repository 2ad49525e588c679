"""TallyPrime client over the XML gateway (default ``http://127.0.0.1:9000``), implementing
:class:`connector_tasks.domain.ports.LedgerTarget`.

Every request goes through :func:`connector_tasks.core.http.send` (``system="tallyprime"``).
Tally has no authentication on its local port and answers HTTP 200 for every processed
request (external-apis §2.1); failures are read from the body (§2.3). Requests to one Tally
instance are serialised in this process by a lock per URL (Tally is single-threaded and
UI-bound, §2.7 #3); across processes the ``tally.<connection>`` queue with concurrency 1 does
the same.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import threading
from typing import Iterable

import requests

from connector_tasks.core.errors import (
    ConfigurationError, ExternalApiError, MappingError, RejectedError, TransientApiError,
)
from connector_tasks.core.http import classify_status, send
from connector_tasks.domain.model import JournalEntry, LedgerMaster

from . import envelopes, replies

log = logging.getLogger("ml_connector.tallyprime")

SYSTEM = "tallyprime"
DEFAULT_URL = "http://127.0.0.1:9000"

# Voucher collections only hold vouchers of the requested period; a REMOTEID lookup must
# span every period the books can hold. ASSUMPTION: no company books start before 1900.
LOOKUP_FROM = dt.date(1900, 1, 1)
LOOKUP_TO = dt.date(2099, 12, 31)

# Tally's wording varies by release (external-apis §2.3 "Company is not loaded" / wrong
# SVCURRENTCOMPANY); these patterns cover the catalogue of the sandbox and the known texts.
_NOT_LOADED = re.compile(
    r"<(LINEERROR|DATA)>[^<]*(is not loaded|no company is (?:loaded|open)|"
    r"could not set 'svcurrentcompany'|could not find company)[^<]*</\1>", re.I)

_URL_LOCKS: dict[str, threading.Lock] = {}
_URL_LOCKS_GUARD = threading.Lock()


def _lock_for(url: str) -> threading.Lock:
    with _URL_LOCKS_GUARD:
        return _URL_LOCKS.setdefault(url.rstrip("/"), threading.Lock())


class CompanyNotLoadedError(TransientApiError):
    """Tally is up but the company is not open in it (external-apis §2.1 "At least one
    company must be loaded", §2.7 #5). Retryable: a person may open the company."""


def _quote_tdl(value: str) -> str:
    """A TDL string literal; refuses a double quote (TDL has no escape we rely on)."""
    if '"' in value:
        raise MappingError(f"value {value!r} cannot be used in a Tally filter (contains '\"')",
                           system=SYSTEM)
    return f'"{value}"'


class TallyClient:
    """One Tally company reached over its XML gateway.

    ``url``: gateway address; ``company``: the company name as Tally shows it (sent as
    ``SVCURRENTCOMPANY``); ``session``: a ``requests.Session`` (one is made when omitted);
    ``timeout``: ``(connect, read)`` seconds; ``encoding``: ``"utf-8"`` or ``"utf-16"`` for
    requests (UTF-16LE without BOM + ``charset=utf-16``, as tally-database-loader does,
    external-apis §2.1 — needed for Indic names on some releases). Raises
    :class:`ConfigurationError` for an empty company or unknown encoding.
    """

    def __init__(self, url: str = DEFAULT_URL, company: str | None = None, *,
                 session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = (5, 60), encoding: str = "utf-8"):
        if not company:
            raise ConfigurationError("Tally company name is required", system=SYSTEM)
        try:
            envelopes.encode_request("", encoding)
        except ValueError as exc:
            raise ConfigurationError(str(exc), system=SYSTEM) from exc
        self.url = url.rstrip("/") + "/"
        self.company = company
        self.session = session or requests.Session()
        self.timeout = timeout
        self.encoding = encoding
        self._lock = _lock_for(self.url)

    # ------------------------------------------------------------------ transport
    def post(self, xml: str) -> str:
        """POST one envelope and return the reply text (decoded, not yet sanitised).

        Raises :class:`TransientApiError` for connect errors and timeouts (from ``send``),
        the :func:`classify_status` error for a non-200 answer, and
        :class:`CompanyNotLoadedError` when the reply says the company is not loaded.
        """
        body, content_type = envelopes.encode_request(xml, self.encoding)
        with self._lock:
            resp = send(self.session, "POST", self.url, system=SYSTEM, timeout=self.timeout,
                        data=body, headers={"Content-Type": content_type})
        if resp.status_code != 200:
            raise classify_status(resp, system=SYSTEM)
        text = replies.decode_body(resp.content, resp.headers.get("Content-Type"))
        m = _NOT_LOADED.search(text[:20000])
        if m:
            detail = re.sub(r"<[^>]+>", "", m.group(0))
            raise CompanyNotLoadedError(f"Tally company {self.company!r} is not loaded",
                                        system=SYSTEM, status=200, body=text[:2000],
                                        detail=detail)
        return text

    def _import(self, xml: str, expect: str) -> replies.ImportResult:
        result = replies.parse_import_reply(self.post(xml))
        replies.ensure_success(result, expect=expect)
        return result

    def _names(self, obj_type: str, tag: str, fetch: list[str]) -> list[dict]:
        xml = envelopes.collection_export(self.company, f"MLC{obj_type}List", obj_type, fetch)
        return replies.parse_collection(self.post(xml), tag)

    # ------------------------------------------------------------------ LedgerTarget
    def find_journal(self, key: str) -> str | None:
        """The MASTERID (as a string) of the voucher whose REMOTEID is ``key``, or ``None``.

        One collection export of ``Voucher`` filtered by ``$RemoteID = "key"`` across
        1900-01-01..2099-12-31 (ASSUMPTION: RemoteID is filterable, external-apis §2.2).
        Falls back to the GUID when Tally gives no MASTERID. Raises the :meth:`post` errors,
        :class:`RejectedError` for a refused export and :class:`MappingError` for a key
        containing ``"``.
        """
        formula = f"$RemoteID = {_quote_tdl(key)}"
        xml = envelopes.collection_export(
            self.company, "MLCVoucherByRemoteId", "Voucher",
            ["RemoteID", "MasterID", "GUID", "AlterID", "VoucherNumber", "Date"],
            formula, LOOKUP_FROM, LOOKUP_TO)
        found = [v for v in replies.parse_collection(self.post(xml), "VOUCHER")
                 if (v.get("REMOTEID") or "") == key]
        if not found:
            return None
        if len(found) > 1:
            log.warning("tallyprime: %d vouchers carry REMOTEID %s", len(found), key)
        v = found[0]
        return v.get("MASTERID") or v.get("GUID") or None

    def ensure_ledgers(self, ledgers: Iterable[LedgerMaster],
                       cost_centres: Iterable[tuple[str, str]],
                       groups: Iterable[tuple[str, str]] = ()) -> list[str]:
        """Create what is missing, in one ``All Masters`` import, and return the created names
        (groups, cost categories, cost centres, ledgers, in that order).

        ``cost_centres`` are ``(category, centre)`` pairs, ``groups`` ``(name, parent)``
        pairs. Existing objects are read first with collection exports (names compared
        case-insensitively, as Tally does — ASSUMPTION). Nothing missing → no import, ``[]``.
        Raises :class:`RejectedError` with Tally's text when the import is refused or creates
        fewer objects than sent, plus the :meth:`post` errors.
        """
        ledgers = list({l.name.casefold(): l for l in ledgers}.values())
        cost_centres = list(dict.fromkeys((c or envelopes.PRIMARY_COST_CATEGORY, n)
                                          for c, n in cost_centres))
        groups = list({g[0].casefold(): g for g in groups}.values())

        def existing(obj_type, tag):
            return {(o.get("NAME") or "").casefold() for o in self._names(obj_type, tag, ["Name", "Parent"])}

        new_groups: list = []
        if groups:
            have = existing("Group", "GROUP")
            new_groups = [g for g in groups if g[0].casefold() not in have]
        new_categories: list[str] = []
        new_centres: list = []
        if cost_centres:
            have_cat = existing("CostCategory", "COSTCATEGORY")
            new_categories = list(dict.fromkeys(c for c, _ in cost_centres
                                                if c.casefold() not in have_cat))
            have_cc = existing("CostCentre", "COSTCENTRE")
            new_centres = [p for p in cost_centres if p[1].casefold() not in have_cc]
        new_ledgers: list = []
        if ledgers:
            have_l = existing("Ledger", "LEDGER")
            new_ledgers = [l for l in ledgers if l.name.casefold() not in have_l]
        names = ([g[0] for g in new_groups] + new_categories + [n for _, n in new_centres]
                 + [l.name for l in new_ledgers])
        if not names:
            return []
        xml = envelopes.masters_import(new_ledgers, new_centres, self.company, groups=new_groups,
                                       cost_categories=new_categories)
        result = self._import(xml, expect="created")
        if result.created < len(names):
            raise RejectedError(
                f"Tally created {result.created} of {len(names)} masters ({result.summary()})",
                system=SYSTEM, lines=list(result.line_errors), detail=result.summary())
        log.info("tallyprime: created masters %s", names)
        return names

    def post_journal(self, entry: JournalEntry) -> str:
        """Post ``entry`` once as a Journal voucher identified by ``REMOTEID=entry.key`` and
        return its MASTERID.

        Order: build the envelope (refuses an unbalanced entry with :class:`MappingError`
        before any request), look the key up (found → return that id, create nothing),
        import, require ``CREATED>0`` with no error (external-apis §2.3, §2.7 #1), look the
        key up again for the id (falling back to ``LASTVCHID``). Raises
        :class:`RejectedError` with Tally's ``LINEERROR`` text, plus the :meth:`post` errors.
        """
        xml = envelopes.voucher_import(entry, self.company)
        existing = self.find_journal(entry.key)
        if existing:
            log.info("tallyprime: %s already posted as %s", entry.key, existing)
            return existing
        result = self._import(xml, expect="created")
        found = self.find_journal(entry.key)
        if found:
            return found
        if result.last_vch_id:
            return str(result.last_vch_id)
        raise RejectedError(f"Tally reported {result.summary()} but no voucher carries "
                            f"REMOTEID {entry.key}", system=SYSTEM, detail=result.summary())

    # ------------------------------------------------------------------ reads
    def check(self) -> dict:
        """Reachability report, never raising for a Tally that is down:
        ``{"reachable": bool, "companies": [names of loaded companies], "company_loaded":
        bool, "detail": str}``."""
        try:
            rows = replies.parse_collection(self.post(envelopes.company_list_export()), "COMPANY")
        except TransientApiError as exc:
            return {"reachable": isinstance(exc, CompanyNotLoadedError), "companies": [],
                    "company_loaded": False, "detail": str(exc)}
        except ExternalApiError as exc:
            return {"reachable": True, "companies": [], "company_loaded": False,
                    "detail": str(exc)}
        companies = [r.get("NAME", "") for r in rows if r.get("NAME")]
        loaded = any(c.casefold() == self.company.casefold() for c in companies)
        detail = ("ok" if loaded else
                  f"company {self.company!r} is not loaded; loaded: {', '.join(companies) or 'none'}")
        return {"reachable": True, "companies": companies, "company_loaded": loaded,
                "detail": detail}

    def day_book(self, from_date: dt.date | str, to_date: dt.date | str) -> list[dict]:
        """Vouchers dated ``from_date``..``to_date`` (inclusive) from the Day Book report, as
        :func:`replies.parse_voucher` dicts (amounts ``Decimal``, negative = debit). Raises the
        :meth:`post` errors and :class:`RejectedError` for a refused export."""
        return replies.parse_day_book(self.post(envelopes.day_book_export(self.company, from_date, to_date)))
