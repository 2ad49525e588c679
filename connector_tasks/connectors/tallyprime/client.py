"""TallyPrime client over the XML gateway (default ``http://127.0.0.1:9000``), implementing
:class:`connector_tasks.domain.ports.LedgerTarget`.

Every request goes through :func:`connector_tasks.core.http.send` (``system="tallyprime"``).
Tally has no authentication on its local port and answers HTTP 200 for every processed
request (https://help.tallysolutions.com/pre-requisites-for-integrations/); failures are read from the body (Tally XML integration, "Response"). A company under Tally's
security control is reached with its user name and password, sent on every request as static
variables (:func:`envelopes.with_credentials`; the carrying form is an ASSUMPTION, see there);
a refusal naming the user name/password raises :class:`AuthError` with Tally's text. The
password never reaches a log, an exception or a ``repr``. Requests to one Tally
instance are serialised in this process by a lock per URL (Tally is single-threaded and
UI-bound, Tally XML integration); across processes the ``tally.<connection>`` queue with concurrency 1 does
the same.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable

import requests

from connector_tasks.core.errors import (
    AuthError, ConfigurationError, ConflictError, ExternalApiError, MappingError, RejectedError,
    TransientApiError,
)
from connector_tasks.core.http import classify_status, send
from connector_tasks.domain.model import EmployeeMaster, JournalEntry, LedgerMaster

from . import envelopes, replies

log = logging.getLogger("ml_connector.tallyprime")

SYSTEM = "tallyprime"
DEFAULT_URL = "http://127.0.0.1:9000"

# Voucher collections only hold vouchers of the requested period; a REMOTEID lookup must
# span every period the books can hold. ASSUMPTION: no company books start before 1900.
LOOKUP_FROM = dt.date(1900, 1, 1)
LOOKUP_TO = dt.date(2099, 12, 31)

# Tally's wording varies by release (https://help.tallysolutions.com/xml-integration/ "Response" "Company is not loaded" / wrong
# SVCURRENTCOMPANY); these patterns cover the catalogue of the sandbox and the known texts.
_NOT_LOADED = re.compile(
    r"<(LINEERROR|DATA)>[^<]*(is not loaded|no company is (?:loaded|open)|"
    r"could not set 'svcurrentcompany'|could not find company)[^<]*</\1>", re.I)

# A refusal for missing or wrong company credentials. The emulator's texts are "Company 'X'
# needs a User Name and Password" and "Invalid User Name or Password for Company 'X'"
# (ASSUMPTION: Tally's real wording is not published); the pattern also takes the usual
# variants ("Invalid Username or Password", "Incorrect password", "Login failed").
_AUTH_REFUSED = re.compile(
    r"<(LINEERROR|DATA)>[^<]*(user\s*name\s*(?:and|or|&amp;|/)\s*password|"
    r"(?:invalid|incorrect|wrong)\s+password|log\s*in\s+failed)[^<]*</\1>", re.I)

#: the largest Tally reply read by default (bytes): 32 MiB; a bigger one is refused
DEFAULT_MAX_REPLY_BYTES = 32 * 1024 * 1024
#: the longest a whole Tally reply may take by default (seconds), however it trickles in
DEFAULT_REPLY_DEADLINE = 300.0
#: bytes asked of the socket per read (one ``recv`` at most: a trickle is seen byte by byte)
READ_CHUNK = 64 * 1024

_URL_LOCKS: dict[str, threading.Lock] = {}
_URL_LOCKS_GUARD = threading.Lock()


def _lock_for(url: str) -> threading.Lock:
    with _URL_LOCKS_GUARD:
        return _URL_LOCKS.setdefault(url.rstrip("/"), threading.Lock())


@dataclass(frozen=True)
class TallyCredentials:
    """A protected company's Tally user name and password; ``repr`` never shows the
    password."""

    username: str
    password: str = field(default="", repr=False)

    def __repr__(self) -> str:
        return f"TallyCredentials(username={self.username!r}, password='***')"


def auth_refusal(text: str) -> str | None:
    """The text of a credentials refusal in a reply (``None`` when there is none)."""
    m = _AUTH_REFUSED.search(text[:20000])
    return re.sub(r"<[^>]+>", "", m.group(0)).replace("&amp;", "&") if m else None


class ReplyTooLargeError(RejectedError):
    """A Tally reply grew past the client's ``max_reply_bytes`` cap: reading stopped there and
    the connection was closed (memory stays bounded by the cap). Not retryable: the same request
    brings the same reply; narrow the request or raise ``TALLY_MAX_REPLY_BYTES``."""

    def __init__(self, cap: int, **kw):
        super().__init__(f"Tally reply exceeded the size cap of {cap} bytes (TALLY_MAX_REPLY_BYTES); "
                         "reading stopped", system=SYSTEM, **kw)
        self.cap = cap


class ReplyDeadlineError(TransientApiError):
    """A Tally reply did not end within the client's total ``deadline`` (seconds from the
    request), e.g. one that trickles a byte at a time so no read ever times out. Retryable (Tally
    may have been busy); raise ``TALLY_REPLY_DEADLINE`` for a request that is slow by nature."""

    def __init__(self, deadline: float, received: int, **kw):
        super().__init__(f"Tally reply not complete within the {deadline:g} s deadline "
                         f"(TALLY_REPLY_DEADLINE); {received} bytes received", system=SYSTEM, **kw)
        self.deadline = deadline
        self.received = received


def _socket_of(resp: requests.Response) -> socket.socket | None:
    """The socket a streamed ``resp`` reads from (urllib3 2: ``HTTPResponse.connection.sock``),
    or ``None`` when it cannot be reached (then each read is bounded by the read timeout)."""
    conn = getattr(resp.raw, "connection", None)
    sock = getattr(conn, "sock", None)
    return sock if isinstance(sock, socket.socket) else None


def bounded_chunks(resp: requests.Response, *, max_bytes: int, deadline_at: float, deadline: float,
                   read_timeout: float | None = None) -> Iterable[bytes]:
    """The body of a ``stream=True`` response as chunks of at most :data:`READ_CHUNK` bytes,
    refusing to go past ``max_bytes`` (:class:`ReplyTooLargeError`, the chunk that crossed the cap
    not yielded) or past ``deadline_at`` (a ``time.monotonic()`` instant;
    :class:`ReplyDeadlineError`). Before each read the socket's timeout is set to what is left of
    the deadline (never more than ``read_timeout``), and each read is one ``recv`` (``read1``), so
    a reply trickling a byte at a time ends at the deadline, not at the end of a buffer. Transfer
    and content encodings are decoded by urllib3; the cap counts decoded bytes. Raises
    :class:`TransientApiError` when the stream breaks off."""
    raw = resp.raw
    sock = _socket_of(resp)
    received = 0
    try:
        while True:
            left = deadline_at - time.monotonic()
            if left <= 0:
                raise ReplyDeadlineError(deadline, received)
            if sock is not None:
                sock.settimeout(min(left, read_timeout) if read_timeout else left)
            try:
                chunk = raw.read1(READ_CHUNK, decode_content=True)
            except (requests.exceptions.ReadTimeout, socket.timeout, TimeoutError) as exc:
                if time.monotonic() >= deadline_at - 0.01:
                    raise ReplyDeadlineError(deadline, received) from exc
                raise TransientApiError("Tally stopped answering mid-reply", system=SYSTEM,
                                        detail=type(exc).__name__) from exc
            except Exception as exc:  # urllib3's own wrappers of the same failures
                if "timed out" in str(exc).lower() and time.monotonic() >= deadline_at - 0.01:
                    raise ReplyDeadlineError(deadline, received) from exc
                if isinstance(exc, (requests.RequestException, OSError)) or type(exc).__module__.startswith("urllib3"):
                    raise TransientApiError("Tally reply broke off", system=SYSTEM,
                                            detail=type(exc).__name__) from exc
                raise
            if not chunk:
                return
            received += len(chunk)
            if received > max_bytes:
                raise ReplyTooLargeError(max_bytes)
            yield chunk
    finally:
        resp.close()


class CompanyNotLoadedError(TransientApiError):
    """Tally is up but the company is not open in it (https://help.tallysolutions.com/pre-requisites-for-integrations/ "At least one
    company must be loaded"; https://help.tallysolutions.com/xml-integration/). Retryable: a person may open the company."""


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
    https://help.tallysolutions.com/pre-requisites-for-integrations/ — needed for Indic names on some releases); ``username``/``password``:
    the company's Tally login when it is under security control, sent on every request
    (kept in :attr:`credentials`, never logged); ``max_reply_bytes``: the cap on one reply
    (bytes, default 32 MiB: :class:`ReplyTooLargeError` past it); ``deadline``: seconds one
    whole reply may take from the request (default 300: :class:`ReplyDeadlineError` past it) —
    both hold for every request, streamed exports included (:func:`bounded_chunks`). Raises
    :class:`ConfigurationError` for an empty company, an unknown encoding, a password without a
    user name or a cap/deadline that is not positive.
    """

    def __init__(self, url: str = DEFAULT_URL, company: str | None = None, *,
                 username: str | None = None, password: str | None = None,
                 session: requests.Session | None = None,
                 timeout: float | tuple[float, float] = (5, 60), encoding: str = "utf-8",
                 max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
                 deadline: float = DEFAULT_REPLY_DEADLINE):
        if not company:
            raise ConfigurationError("Tally company name is required", system=SYSTEM)
        if password and not username:
            raise ConfigurationError("a Tally password needs a user name", system=SYSTEM)
        try:
            envelopes.encode_request("", encoding)
        except ValueError as exc:
            raise ConfigurationError(str(exc), system=SYSTEM) from exc
        self.url = url.rstrip("/") + "/"
        self.company = company
        self.session = session or requests.Session()
        self.timeout = timeout
        self.encoding = encoding
        self.credentials = TallyCredentials(username, password or "") if username else None
        if not max_reply_bytes or max_reply_bytes <= 0 or not deadline or deadline <= 0:
            raise ConfigurationError("the Tally reply cap and deadline must be positive", system=SYSTEM)
        self.max_reply_bytes = int(max_reply_bytes)
        self.deadline = float(deadline)
        self._lock = _lock_for(self.url)

    def __repr__(self) -> str:
        user = f", username={self.credentials.username!r}, password='***'" if self.credentials else ""
        return f"TallyClient(url={self.url!r}, company={self.company!r}{user})"

    def clone(self, company: str) -> "TallyClient":
        """The same Tally (session, timeout, encoding, credentials) for another company."""
        c = self.credentials
        return TallyClient(self.url, company, username=c.username if c else None,
                           password=c.password if c else None, session=self.session,
                           timeout=self.timeout, encoding=self.encoding,
                           max_reply_bytes=self.max_reply_bytes, deadline=self.deadline)

    # ------------------------------------------------------------------ transport
    def encode(self, xml: str) -> tuple[bytes, str]:
        """``(body, content type)`` of a request: the credentials added
        (:func:`envelopes.with_credentials`), then encoded in the client's encoding. Every
        request of every flow goes through here."""
        if self.credentials is not None:
            xml = envelopes.with_credentials(xml, self.credentials.username,
                                             self.credentials.password)
        return envelopes.encode_request(xml, self.encoding)

    def refusal_error(self, text: str) -> ExternalApiError | None:
        """:class:`AuthError` (credentials refused) or :class:`CompanyNotLoadedError` when a
        reply says so, else ``None``."""
        auth = auth_refusal(text)
        if auth:
            return AuthError(f"Tally refused the login to company {self.company!r}: {auth}",
                             system=SYSTEM, status=200)
        m = _NOT_LOADED.search(text[:20000])
        if m:
            detail = re.sub(r"<[^>]+>", "", m.group(0))
            return CompanyNotLoadedError(f"Tally company {self.company!r} is not loaded",
                                         system=SYSTEM, status=200, body=text[:2000],
                                         detail=detail)
        return None

    def _read_timeout(self) -> float | None:
        return self.timeout[1] if isinstance(self.timeout, tuple) else self.timeout

    def open_reply(self, body: bytes, content_type: str) -> tuple[requests.Response, Iterable[bytes]]:
        """POST ``body`` (already :meth:`encode`-d) with ``stream=True`` and return the response
        (status and headers read) with its body as :func:`bounded_chunks` under this client's
        cap and deadline (the deadline counts from now). The caller holds the per-URL lock while
        it reads. Raises :class:`TransientApiError` for connect errors and timeouts."""
        deadline_at = time.monotonic() + self.deadline
        connect, read = (self.timeout if isinstance(self.timeout, tuple) else (self.timeout, self.timeout))
        timeout = (min(connect, self.deadline), min(read, self.deadline) if read else self.deadline)
        resp = send(self.session, "POST", self.url, system=SYSTEM, timeout=timeout,
                    data=body, headers={"Content-Type": content_type}, stream=True)
        return resp, bounded_chunks(resp, max_bytes=self.max_reply_bytes, deadline_at=deadline_at,
                                    deadline=self.deadline, read_timeout=self._read_timeout())

    def post(self, xml: str) -> str:
        """POST one envelope and return the reply text (decoded, not yet sanitised).

        Raises :class:`TransientApiError` for connect errors and timeouts (from ``send``),
        the :func:`classify_status` error for a non-200 answer, :class:`AuthError` when Tally
        refuses the company's user name/password (its text in the message; not retried) and
        :class:`CompanyNotLoadedError` when the reply says the company is not loaded,
        :class:`ReplyTooLargeError` past ``max_reply_bytes`` and :class:`ReplyDeadlineError`
        past ``deadline`` (:func:`bounded_chunks`).
        """
        body, content_type = self.encode(xml)
        with self._lock:
            resp, chunks = self.open_reply(body, content_type)
            data = b"".join(chunks)
        if resp.status_code != 200:
            resp._content = data  # noqa: SLF001 - read under the cap, for the error's text
            raise classify_status(resp, system=SYSTEM)
        text = replies.decode_body(data, resp.headers.get("Content-Type"))
        error = self.refusal_error(text)
        if error is not None:
            raise error
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
        1900-01-01..2099-12-31 (ASSUMPTION: RemoteID is filterable, https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/).
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
        import, require ``CREATED>0`` with no error (https://help.tallysolutions.com/xml-integration/ "Response"; https://help.tallysolutions.com/xml-integration/ (import counters)), look the
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

    # ------------------------------------------------------------------ ledger validation
    def ledger_groups(self) -> dict[str, str]:
        """Every ledger of the company as ``{name: parent group}`` (``""`` for a root parent,
        exported as ``&#4; Primary``, https://github.com/dhananjay1405/tally-database-loader processTdlOutputManipulation), from one ``Ledger`` collection
        export (Tally XML case study 1). Raises the :meth:`post` errors and :class:`RejectedError`."""
        out: dict[str, str] = {}
        for row in self._names("Ledger", "LEDGER", ["Name", "Parent"]):
            name = replies.text_of(row.get("NAME"))
            if name:
                parent = replies.text_of(row.get("PARENT"))
                out[name] = "" if parent in ("", "Primary") else parent
        return out

    def missing_ledgers(self, names: Iterable[str], owned: Iterable[str] = ()) -> list[str]:
        """The names among ``names`` that are neither ledgers of the company nor in ``owned``
        (the ledgers the connector creates itself), in first-seen order, compared
        case-insensitively (ASSUMPTION: Tally names are case-insensitive). One ``Ledger``
        collection export; none when every name is owned. Raises the :meth:`post` errors."""
        owned_keys = {o.casefold() for o in owned}
        wanted = [n for n in dict.fromkeys(names) if n.casefold() not in owned_keys]
        if not wanted:
            return []
        have = {n.casefold() for n in self.ledger_groups()}
        return [n for n in wanted if n.casefold() not in have]

    def check_ledgers(self, entry: JournalEntry, owned: Iterable[LedgerMaster] = ()) -> None:
        """Refuse ``entry`` before anything is written when a ledger it uses neither exists
        in Tally nor is one the connector creates (``owned``): raises :class:`MappingError`
        ("ledger(s) 'X', 'Y' do not exist in Tally company 'C' …"), permanent, so the job is
        parked with the names. Mappings are user-editable; only owned ledgers are created
        automatically."""
        missing = self.missing_ledgers([l.ledger for l in entry.lines], [o.name for o in owned])
        if missing:
            names = ", ".join(repr(n) for n in missing)
            raise MappingError(
                f"ledger(s) {names} do not exist in Tally company {self.company!r}; create "
                f"them in Tally or change the mapping (journal {entry.key})", system=SYSTEM)

    def masters_snapshot(self) -> dict:
        """What the cloud side needs to validate mappings (it cannot reach Tally):
        ``{"company", "ledgers": {name: group}, "cost_categories": [names],
        "cost_centres": [{"name", "category", "parent", "for_payroll",
        "is_employee_group", "key"}], "alter_ids": {"master": int|None, "voucher":
        int|None}}``. AlterIDs are the company's ``$AltMstId``/``$AltVchId`` (https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/ "Change tracking"); when Tally's Company collection gives none, ``master`` falls
        back to the highest ALTERID among the exported masters and ``voucher`` is ``None``.
        Four or five exports; raises the :meth:`post` errors."""
        ledgers = self.ledger_groups()
        categories = [replies.text_of(r.get("NAME"))
                      for r in self._names("CostCategory", "COSTCATEGORY", ["Name", "AlterID"])]
        rows = self._names("CostCentre", "COSTCENTRE", envelopes.EMPLOYEE_FETCH)
        centres = []
        for row in rows:
            c = replies.employee_centre(row)
            centres.append({k: c[k] for k in ("name", "category", "parent", "for_payroll",
                                              "is_employee_group", "key")})
        alter_ids: dict = {"master": None, "voucher": None}
        companies = replies.parse_collection(
            self.post(envelopes.company_alter_ids_export(self.company)), "COMPANY")
        mine = next((c for c in companies
                     if replies.text_of(c.get("NAME")).casefold() == self.company.casefold()), None)
        for field, tag in (("master", "ALTMSTID"), ("voucher", "ALTVCHID")):
            text = replies.text_of((mine or {}).get(tag))
            if text.strip().isdigit():
                alter_ids[field] = int(text)
        if alter_ids["master"] is None:
            seen = [int(r["ALTERID"]) for r in rows if str(r.get("ALTERID", "")).strip().isdigit()]
            alter_ids["master"] = max(seen) if seen else None
            alter_ids["source"] = "max ALTERID of exported cost centres (no $AltMstId)"
        return {"company": self.company, "ledgers": ledgers,
                "cost_categories": [c for c in categories if c], "cost_centres": centres,
                "alter_ids": alter_ids}

    # ------------------------------------------------------------------ employees
    def find_employee(self, key: str) -> dict | None:
        """The payroll cost centre whose ``MAILINGNAME`` is ``key`` (the stable employee key,
        :data:`envelopes.EMPLOYEE_KEY_FIELD`), as a :func:`replies.employee_centre` dict, or
        ``None``. One ``CostCentre`` collection export filtered by ``$MailingName = "key"``;
        the key is also compared on our side, so a Tally that ignored the filter still
        matches correctly. Never looks up by name. Raises :class:`ConflictError` when two
        masters carry the key (a person must merge them), :class:`MappingError` for a key
        containing ``"``, plus the :meth:`post` errors."""
        _quote_tdl(key)
        rows = replies.parse_collection(self.post(envelopes.employee_lookup_export(self.company, key)),
                                        "COSTCENTRE")
        found = [c for c in map(replies.employee_centre, rows) if c["key"] == key]
        if len(found) > 1:
            raise ConflictError(
                f"{len(found)} cost centres in Tally company {self.company!r} carry employee key "
                f"{key} ({', '.join(c['name'] for c in found)}); merge them in Tally",
                system=SYSTEM)
        return found[0] if found else None

    def _centre_by_name(self, name: str) -> dict | None:
        xml = envelopes.collection_export(self.company, "MLCCostCentreByName", "CostCentre",
                                          envelopes.EMPLOYEE_FETCH, f"$Name = {_quote_tdl(name)}")
        rows = [replies.employee_centre(r) for r in
                replies.parse_collection(self.post(xml), "COSTCENTRE")]
        return next((r for r in rows if r["name"].casefold() == name.casefold()), None)

    def _ensure_employee_group(self, master: EmployeeMaster) -> list[str]:
        """Create the cost category and the employee group (``ISEMPLOYEEGROUP``) ``master``
        sits in when missing, in their own import (so the employee's own Alter reply counts
        only the employee). Returns the created names."""
        have_cat = {replies.text_of(r.get("NAME")).casefold()
                    for r in self._names("CostCategory", "COSTCATEGORY", ["Name"])}
        categories = [] if master.category.casefold() in have_cat else [master.category]
        groups = []
        if master.group:
            existing = self._centre_by_name(master.group)
            if existing is None:
                groups = [(master.category, master.group)]
            elif existing["key"]:
                raise ConflictError(f"employee group {master.group!r} of {master.name!r} is an "
                                    f"employee's cost centre in Tally", system=SYSTEM)
            # ASSUMPTION: an existing cost centre of that name (employee group or not) is
            # used as the parent as it is; we never alter masters we did not make.
        if not categories and not groups:
            return []
        result = self._import(envelopes.employee_groups_import(self.company, categories, groups),
                              expect="created")
        if result.created < len(categories) + len(groups):
            raise RejectedError(f"Tally created {result.created} of {len(categories) + len(groups)} "
                                f"masters ({result.summary()})", system=SYSTEM,
                                detail=result.summary())
        return categories + [g for _, g in groups]

    @staticmethod
    def _employee_differs(master: EmployeeMaster, current: dict) -> list[str]:
        """Names of the managed fields whose Tally value differs from ``master``."""
        def same(a, b):
            return (a or "").casefold() == (b or "").casefold()
        diffs = []
        if master.name != current["name"]:
            diffs.append("name")
        if not same(master.group, current["parent"]):
            diffs.append("parent")
        if not same(master.category, current["category"]):
            diffs.append("category")
        if not current["for_payroll"] or current["is_employee_group"]:
            diffs.append("for_payroll")
        if master.joining_date != current["joining_date"]:
            diffs.append("joining_date")
        if master.deactivation_date != current["deactivation_date"]:
            diffs.append("deactivation_date")
        if (master.designation or "") != current["designation"]:
            diffs.append("designation")
        if (master.email or "") != current["email"]:
            diffs.append("email")
        return diffs

    def sync_employee(self, master: EmployeeMaster) -> dict:
        """Keep one payroll cost centre in step with ``master`` (https://github.com/dhananjay1405/tally-database-loader tally-export-config.yaml) and
        return ``{"action": "created"|"altered"|"unchanged", "master_id": str, "name": str,
        "changed": [field names], "masters_created": [names]}``.

        1. Find the master by ``master.key`` (``MAILINGNAME``, :meth:`find_employee`) — never
           by name. Absent, but a cost centre of the same name exists with no key (e.g. made
           for payroll cost allocations): that one is adopted (altered, gaining the key); one
           carrying another key → :class:`ConflictError`.
        2. Every managed field equal → ``"unchanged"``, no import sent.
        3. Create the cost category and employee group when missing (own import).
        4. Absent → ``ACTION="Create"``, require ``CREATED=1``; present → ``ACTION="Alter"``
           identified by its current NAME (renaming through ``NAME.LIST``), require
           ``ALTERED=1`` and ``CREATED=0`` (a CREATED reply to an Alter means a duplicate
           master was made: :class:`RejectedError`, Tally XML integration).
        5. Read it back by key: exactly one master, and after an Alter the same MASTERID
           (else :class:`RejectedError`).

        Raises :class:`RejectedError` with Tally's LINEERROR text, :class:`MappingError` for
        an empty name or a key/name containing ``"``, plus the :meth:`post` errors.
        """
        if not master.name or not master.name.strip():
            raise MappingError(f"employee {master.key} has no name", system=SYSTEM)
        current = self.find_employee(master.key)
        if current is None:
            clash = self._centre_by_name(master.name)
            if clash is not None:
                if clash["key"] and clash["key"] != master.key:
                    raise ConflictError(
                        f"cost centre {clash['name']!r} in Tally company {self.company!r} belongs "
                        f"to employee key {clash['key']}, not {master.key}", system=SYSTEM)
                current = clash
        if current is not None:
            changed = self._employee_differs(master, current)
            if not changed:
                return {"action": "unchanged", "master_id": current["master_id"],
                        "name": current["name"], "changed": [], "masters_created": []}
        else:
            changed = []
        created_groups = self._ensure_employee_group(master)
        if current is None:
            result = self._import(envelopes.employee_import(master, self.company), expect="created")
            if result.created != 1 or result.altered:
                raise RejectedError(f"Tally did not create exactly one cost centre for "
                                    f"{master.name!r} ({result.summary()})", system=SYSTEM,
                                    detail=result.summary())
            action = "created"
        else:
            xml = envelopes.employee_import(master, self.company, action="Alter",
                                            current_name=current["name"])
            replies.ensure_altered_only(replies.parse_import_reply(self.post(xml)), 1, "cost centre")
            action = "altered"
        after = self.find_employee(master.key)
        if after is None:
            if action == "created" and result.last_mid:
                after = {"master_id": str(result.last_mid), "name": master.name}
            else:
                raise RejectedError(f"Tally reported the cost centre {action} but none carries "
                                    f"employee key {master.key}", system=SYSTEM)
        if action == "altered" and current["master_id"] and after["master_id"] != current["master_id"]:
            raise RejectedError(f"Tally's cost centre for employee key {master.key} changed MASTERID "
                                f"{current['master_id']} → {after['master_id']}: a duplicate was "
                                f"made", system=SYSTEM)
        log.info("tallyprime: employee %s %s as %r", master.key, action, master.name)
        return {"action": action, "master_id": after["master_id"], "name": after["name"],
                "changed": changed, "masters_created": created_groups}

    # ------------------------------------------------------------------ reads
    def check(self) -> dict:
        """Reachability report, never raising for a Tally that is down:
        ``{"reachable": bool, "companies": [names of loaded companies], "company_loaded":
        bool, "detail": str}``; with credentials and the company loaded, one more
        company-scoped request proves the login and the report gains ``"login": bool``
        (``detail`` = Tally's refusal when false)."""
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
        out = {"reachable": True, "companies": companies, "company_loaded": loaded,
               "detail": detail}
        if loaded and self.credentials is not None:
            try:
                self.post(envelopes.company_alter_ids_export(self.company))
                out["login"] = True
            except AuthError as exc:
                out.update(login=False, detail=exc.message)
            except ExternalApiError as exc:
                out.update(login=False, detail=str(exc))
        return out

    def day_book(self, from_date: dt.date | str, to_date: dt.date | str) -> list[dict]:
        """Vouchers dated ``from_date``..``to_date`` (inclusive) from the Day Book report, as
        :func:`replies.parse_voucher` dicts (amounts ``Decimal``, negative = debit). Raises the
        :meth:`post` errors and :class:`RejectedError` for a refused export."""
        return replies.parse_day_book(self.post(envelopes.day_book_export(self.company, from_date, to_date)))
