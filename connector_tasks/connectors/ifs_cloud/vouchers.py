"""GL vouchers in IFS Cloud: two creation routes behind one interface, the checks made before any
write, and the key reference that makes a post exactly-once.

Routes (projection names from the public IFS Cloud 21R1 ACCRUL model files, repository
prashweenet/demoproj2, ``accrul/model/accrul/*.projection``; the call order is not published —
ASSUMPTION, as the sandbox emulator serves it):

``route="external"`` (**the default**) — External Vouchers (docs.ifs.com "External Vouchers",
https://docs.ifs.com/ifsclouddocs/21r2/JournalEntry/ActivityCheckExternalVoucher.htm and IFS 10
``JournalEntry/ActivityCreateVoucher.htm``): one ``ExternalVouchers.svc/ExternalVouchersSet`` row
per posting row, keyed ``(Company, LoadId, RecordNo)``, then the bound action
``ExtLoadInfoSet(Company,LoadId)/…ExtLoadInfo_DoCreateVoucher`` (with If-Match) turns the whole
load into a voucher or refuses it whole; the rows then carry ``VoucherType``, ``VoucherNo``,
``AccountingYear`` and state ``Updated``, the load state ``Created``.

``route="assistant"`` — the voucher entry assistant: a temporary (virtual)
``VoucherEntryAssistantHandling.svc/VoucherSet`` header, its rows in ``VoucherPostingArray``,
then the bound action ``VoucherEntry_CreateVoucher`` (returns the voucher number); read back
through ``VoucherHandling.svc/VoucherSet`` (``crud = Read, Update``: it cannot create).

Why External Vouchers is the default — exactly-once across a worker killed between IFS's write
and our record of it:

* the LoadId is *ours*: :func:`reference_of` derives it from the entry key, so "does my key
  exist?" is one read by key prefix (``ExternalVouchersSet?$filter=Company eq … and LoadId eq …``)
  answered from the load's own rows, which keep the voucher number they made;
* IFS itself refuses a second voucher for the key: rows cannot be added to a ``Created`` load,
  so even a worker that forgot to ask cannot double-post under the same LoadId;
* every intermediate state is visible and resumable: rows loaded but no voucher (killed before
  DoCreateVoucher, or the create was refused) are found by the same LoadId, cleared and loaded
  again; a create whose answer was lost shows as ``Updated`` rows with the voucher number.

The assistant route has none of that: its temporary header has a server-made ``Objkey``, so a
killed worker leaves nothing findable by our key until CreateVoucher commits; afterwards the key
can only be found by a non-key ``$filter`` on the voucher header text (``VoucherText2``) over
``VoucherHandling.VoucherSet``, whose model ``where`` clause shows vouchers still in the hold
table only (``VOUCHER_UPDATED_DB = 'N'``) — after "Update GL" a late replay would not find the
voucher and would post it again; and nothing in IFS stops a second voucher with the same text.
It stays available (``route="assistant"``) for installations that do not license or configure
External Vouchers.

Key reference: IFS has no idempotency key and LoadId holds at most 20 upper-case characters
(``ExtTransactions.entity``, ``LoadId`` Text(20) uppercase), row ``Text`` at most 100
(``GenLedVoucherRow`` Text maxlength 100); entry keys are longer. :func:`reference_of` makes a
short, deterministic, collision-resistant reference — ``ML`` + the first 18 base32 characters of
SHA-256(key), 90 bits — used as LoadId, LoadGroupItem (one voucher per load) and every row's
``ReferenceNumber`` (both routes), and as the first word of the assistant header's
``VoucherText2``. The full key travels in each row's ``Text`` as ``[<key>]`` (:func:`row_text`)
for people reading the voucher. ASSUMPTION: that IFS lets an integration choose its LoadId.

Before any write (both routes), :meth:`VoucherRoute.post_voucher` checks locally that the rows
balance to the cent (no request), asks IFS whether the key already made a voucher (and returns
it), then checks master data in IFS: the company exists; every account exists in it and is
valid on the voucher date (``ValidFrom``…``ValidUntil``, which is how IFS deactivates accounts
and code part values, ``Account.entity``/``CodeB.entity``), its Mandatory code parts are given and
Blocked ones are not (``ReqCodeB``…``ReqCodeJ``); every code part value exists and is valid; the
ledger-``00`` accounting period covering the date is ``Open`` (``AccPeriodLedgerInfo.entity``
``PeriodStatus``, ``AccountingPeriodsHandling.projection``). Any failure raises
:class:`~connector_tasks.core.errors.MappingError` naming the company and the account, code part
or period, so the job is parked with that reason and can be replayed once the chart is fixed.
Vouchers are identified as ``"<VoucherType>-<AccountingYear>-<VoucherNo>"``
(:func:`voucher_id`): IFS numbers vouchers per (company, voucher type, accounting year).
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, Iterable, Mapping

from connector_tasks.connectors.ifs_cloud.client import (
    SYSTEM, IfsClient, entity_path, enum_literal, literal, string_literal,
)
from connector_tasks.core.errors import (
    ConfigurationError, ConflictError, ConnectorError, MappingError, RejectedError,
)

ROUTE_EXTERNAL = "external"
ROUTE_ASSISTANT = "assistant"
DEFAULT_ROUTE = ROUTE_EXTERNAL
REF_PREFIX = "ML"
#: ``ExtTransactions.entity``: LoadId Text(20), upper case.
REF_LEN = 20
#: ``GenLedVoucherRow``: Text maxlength 100.
ROW_TEXT_MAX = 100
#: VoucherText2 length (ASSUMPTION: 200, as the emulator models it; not in the public files read).
HEADER_TEXT_MAX = 200
CENT = Decimal("0.01")
ZERO = Decimal("0")
CODE_PART_LETTERS = "BCDEFGHIJ"


# ---------------------------------------------------------------------------------------- references
def reference_of(key: str) -> str:
    """The IFS reference of entry ``key``: ``"ML"`` + the first 18 characters of the base32
    SHA-256 of the key (UTF-8): 20 upper-case characters ``[A-Z2-7]`` (fits LoadId Text(20)),
    deterministic, 90 bits (a collision among a billion keys has odds below 1e-9).
    Raises :class:`MappingError` for an empty key."""
    if not key:
        raise MappingError("an IFS voucher needs a non-empty entry key", system=SYSTEM)
    digest = base64.b32encode(hashlib.sha256(key.encode("utf-8")).digest()).decode("ascii")
    return REF_PREFIX + digest[:REF_LEN - len(REF_PREFIX)]


def row_text(label: str, key: str, limit: int = ROW_TEXT_MAX) -> str:
    """A row ``Text`` of at most ``limit`` characters: ``"<label> [<key>]"``, the label cut
    (with ``…``) so the key stays whole; a key too long for the field gives ``"[<reference>]"``
    (:func:`reference_of`) instead."""
    marker = f"[{key}]" if len(key) + 2 <= limit else f"[{reference_of(key)}]"
    label = " ".join(str(label or "").split())
    room = limit - len(marker) - 1
    if not label or room < 2:
        return marker
    if len(label) > room:
        label = label[:room - 1] + "…"
    return f"{label} {marker}"


def voucher_id(voucher_type: str, accounting_year: Any, voucher_no: Any) -> str:
    """``"<VoucherType>-<AccountingYear>-<VoucherNo>"``, e.g. ``"Z-2026-17"``: a voucher's
    identity within its company (``VoucherHandling.projection`` keys Company, VoucherType,
    VoucherNo, AccountingYear)."""
    return f"{voucher_type}-{int(accounting_year)}-{int(voucher_no)}"


def parse_voucher_id(text: str) -> tuple[str, int, int]:
    """Inverse of :func:`voucher_id`: ``(voucher type, accounting year, voucher number)``.
    Raises ``ValueError`` for another shape."""
    vtype, year, number = text.rsplit("-", 2)
    return vtype, int(year), int(number)


# ---------------------------------------------------------------------------------------- rows
@dataclass(frozen=True)
class PostingRow:
    """One voucher row: ``account`` (code part A), ``debit`` or ``credit`` (``Decimal`` in the
    company's currency units, cents; exactly one positive), ``code_parts`` ``{"B": "100", ...}``
    (letters B-J), ``text`` (at most 100 characters, see :func:`row_text`). Sent as IFS's
    ``DebetAmount``/``CreditAmount`` (company-currency amounts of ``VoucherPosting`` /
    ``ExtTransactions`` in the ACCRUL model files)."""

    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    code_parts: Mapping[str, str] = field(default_factory=dict)
    text: str = ""


def check_rows(company: str, rows: Iterable[PostingRow]) -> tuple[Decimal, Decimal]:
    """Local checks, no request (IFS would refuse the same at create time: a voucher must
    balance, docs.ifs.com "External Vouchers" load-type parameters; the voucher entry's balance
    check, ``VoucherEntryAssistantHandling.projection``): at least one row; every row has an account, ``Decimal``
    amounts in cents with exactly one positive side, code part letters B-J; debits equal credits
    to the cent. Returns ``(total debit, total credit)``. Raises :class:`MappingError` — for an
    imbalance ``"voucher for company <c> is unbalanced: Dr … Cr … (difference …)"``."""
    rows = list(rows)
    if not rows:
        raise MappingError(f"voucher for company {company} has no rows", system=SYSTEM)
    debit = credit = ZERO
    for i, row in enumerate(rows, start=1):
        if not row.account:
            raise MappingError(f"row {i} of the voucher for company {company} has no account", system=SYSTEM)
        for amount in (row.debit, row.credit):
            if not isinstance(amount, Decimal) or not amount.is_finite() or amount != amount.quantize(CENT):
                raise MappingError(f"row {i} (account {row.account}) of the voucher for company {company}: "
                                   f"amount {amount!r} is not a Decimal in cents", system=SYSTEM)
        if row.debit < 0 or row.credit < 0 or (row.debit != ZERO) == (row.credit != ZERO):
            raise MappingError(f"row {i} (account {row.account}) of the voucher for company {company} must have "
                               f"exactly one positive side: Dr {row.debit} Cr {row.credit}", system=SYSTEM)
        bad = [k for k in row.code_parts if k not in CODE_PART_LETTERS]
        if bad:
            raise MappingError(f"row {i} (account {row.account}): {bad} are not code parts B-J", system=SYSTEM)
        debit += row.debit
        credit += row.credit
    if debit != credit:
        raise MappingError(f"voucher for company {company} is unbalanced: Dr {debit} Cr {credit} "
                           f"(difference {debit - credit})", system=SYSTEM)
    return debit, credit


def _date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def _valid_on(rec: Mapping[str, Any], on: dt.date) -> bool:
    start, end = _date(rec.get("ValidFrom")), _date(rec.get("ValidUntil"))
    return (start is None or start <= on) and (end is None or on <= end)


def _validity(rec: Mapping[str, Any]) -> str:
    return f"valid {rec.get('ValidFrom') or '…'} to {rec.get('ValidUntil') or '…'}"


def _amount(value: Any) -> Decimal:
    return Decimal(str(value)) if value not in (None, "") else ZERO


# ---------------------------------------------------------------------------------------- the interface
class VoucherRoute:
    """One way of creating IFS vouchers, with the master-data checks both routes share.

    ``client``: an :class:`~connector_tasks.connectors.ifs_cloud.client.IfsClient` (its
    :class:`~connector_tasks.connectors.ifs_cloud.client.Projections` name the projections).
    Subclasses: :class:`ExternalVoucherRoute` (default), :class:`AssistantVoucherRoute`; build
    with :func:`voucher_route`. All methods raise the client's errors besides those named.
    """

    route: ClassVar[str] = ""
    #: The voucher type used when the caller names none (ASSUMPTION: the emulator's seed, M =
    #: manual, Z = external; customers configure their own).
    default_voucher_type: ClassVar[str] = "M"

    def __init__(self, client: IfsClient):
        self.client = client
        self.p = client.projections

    # ------------------------------------------------------------------ master data
    def company_exists(self, company: str) -> bool:
        """Whether ``CompanyHandling.svc/CompanySet(Company='<company>')`` exists (ASSUMPTION:
        projection name, see :class:`~connector_tasks.connectors.ifs_cloud.client.Projections`)."""
        return self.client.get_entity(self.p.company, self.p.company_set, {"Company": company},
                                      select="Company", missing_ok=True) is not None

    def accounts(self, company: str, codes: Iterable[str]) -> dict[str, dict]:
        """``{account: AccountSet record}`` of those ``codes`` that exist in ``company``, read in
        one ``$filter`` (``AccountsHandling.projection`` / ``Account.entity``: ValidFrom,
        ValidUntil, ReqCodeB…ReqCodeJ)."""
        codes = sorted(set(codes))
        if not codes:
            return {}
        either = " or ".join(f"Account eq {literal(c)}" for c in codes)
        found = self.client.get_set(self.p.accounts, self.p.account_set,
                                    filter=f"Company eq {literal(company)} and ({either})")
        return {str(r["Account"]): r for r in found}

    def code_values(self, company: str, letter: str, values: Iterable[str]) -> dict[str, dict]:
        """``{value: Code<letter>Set record}`` of those ``values`` that exist in ``company``
        (``CodeBHandling.projection`` / ``CodeB.entity``: ValidFrom, ValidUntil)."""
        values = sorted(set(values))
        if not values:
            return {}
        projection, entity_set = self.p.code_part_projection(letter)
        attr = f"Code{letter}"
        either = " or ".join(f"{attr} eq {literal(v)}" for v in values)
        found = self.client.get_set(projection, entity_set, filter=f"Company eq {literal(company)} and ({either})")
        return {str(r[attr]): r for r in found}

    def accounting_period(self, company: str, on: dt.date) -> dict | None:
        """The ledger-``00`` period (``AccPeriodLedgerInfo``: AccountingYear, AccountingPeriod,
        DateFrom, DateUntil, PeriodStatus) of ``company`` covering date ``on``, or ``None``.

        Reads the company's accounting years, then, for the years within one of ``on``'s
        calendar year (fiscal years may be named by either end), nearest first,
        ``AccountingYearSet(Company,AccountingYear)/AccYearDetailArray(LedgerId='00')/
        AccPerDetailArray?$filter=DateFrom le <on> and DateUntil ge <on>``
        (``AccountingPeriodsHandling.projection``)."""
        p = self.p
        years = self.client.get_set(p.periods, p.year_set, filter=f"Company eq {literal(company)}",
                                    select="Company,AccountingYear")
        candidates = sorted({int(y["AccountingYear"]) for y in years if abs(int(y["AccountingYear"]) - on.year) <= 1},
                            key=lambda y: (abs(y - on.year), y))
        for year in candidates:
            path = entity_path(p.year_set, {"Company": company, "AccountingYear": year},
                               (p.year_ledger_array, {"LedgerId": p.gl_ledger}), (p.period_ledger_array, None))
            found = self.client.get_set(p.periods, path,
                                        filter=f"DateFrom le {literal(on)} and DateUntil ge {literal(on)}")
            if found:
                return found[0]
        return None

    def master_data_problems(self, company: str, on: dt.date, accounts: Iterable[str],
                             code_values: Mapping[str, Iterable[str]], *,
                             check_company: bool = True) -> tuple[list[str], dict[str, dict]]:
        """What ``company`` lacks on date ``on``: each account of ``accounts`` and each value of
        ``code_values`` (``{letter: values}``) must exist and be valid on ``on``. Returns
        ``(problems, {account: record})``; problems name the company and the account or code
        part; ``["IFS has no company <c>"]`` alone when the company is missing (checked first
        unless ``check_company`` is false)."""
        if check_company and not self.company_exists(company):
            return [f"IFS has no company {company}"], {}
        problems: list[str] = []
        wanted = sorted(set(accounts))
        found = self.accounts(company, wanted)
        for code in wanted:
            rec = found.get(code)
            if rec is None:
                problems.append(f"account {code} does not exist in company {company}")
            elif not _valid_on(rec, on):
                problems.append(f"account {code} in company {company} is not active on {on.isoformat()} "
                                f"({_validity(rec)})")
        for letter in sorted(code_values):
            values = sorted(set(v for v in code_values[letter] if v))
            have = self.code_values(company, letter, values)
            for value in values:
                rec = have.get(value)
                if rec is None:
                    problems.append(f"code part {letter} value {value} does not exist in company {company}")
                elif not _valid_on(rec, on):
                    problems.append(f"code part {letter} value {value} in company {company} is not active on "
                                    f"{on.isoformat()} ({_validity(rec)})")
        return problems, found

    def validate(self, company: str, date: dt.date, rows: Iterable[PostingRow]) -> None:
        """Every check of the module docstring against IFS, for a voucher of ``company`` dated
        ``date`` with ``rows``. Raises :class:`MappingError` listing every problem (company,
        account, code part, period), ``"…; nothing was written"``."""
        rows = list(rows)
        if not self.company_exists(company):
            raise MappingError(f"IFS has no company {company}; nothing was written", system=SYSTEM)
        code_values: dict[str, set[str]] = {}
        for row in rows:
            for letter, value in row.code_parts.items():
                code_values.setdefault(letter, set()).add(value)
        problems, accounts = self.master_data_problems(company, date, [r.account for r in rows], code_values,
                                                       check_company=False)
        for row in rows:
            rec = accounts.get(row.account)
            if rec is None:
                continue
            for letter in CODE_PART_LETTERS:
                demand = str(rec.get(f"ReqCode{letter}") or "Can")
                given = row.code_parts.get(letter)
                if demand == "Mandatory" and not given:
                    problems.append(f"account {row.account} in company {company} requires code part {letter} "
                                    f"(row {row.text!r} has none)")
                elif demand == "Blocked" and given:
                    problems.append(f"account {row.account} in company {company} blocks code part {letter} "
                                    f"(row {row.text!r} has {given})")
        period = self.accounting_period(company, date)
        if period is None:
            problems.append(f"no accounting period of company {company} (ledger {self.p.gl_ledger}) covers "
                            f"{date.isoformat()}")
        elif period.get("PeriodStatus") != "Open":
            problems.append(f"accounting period {int(period['AccountingYear'])}-{int(period['AccountingPeriod']):02d} "
                            f"of company {company} (ledger {self.p.gl_ledger}) is {period.get('PeriodStatus')}: "
                            f"no voucher dated {date.isoformat()} can be entered")
        if problems:
            raise MappingError(f"IFS company {company} cannot take this voucher: "
                               + "; ".join(dict.fromkeys(problems)) + "; nothing was written", system=SYSTEM)

    # ------------------------------------------------------------------ the interface
    def find_voucher(self, company: str, key: str) -> str | None:
        """The :func:`voucher_id` of the voucher entry ``key`` made in ``company``, or ``None``."""
        raise NotImplementedError

    def post_voucher(self, company: str, voucher_type: str | None, date: dt.date, rows: Iterable[PostingRow], *,
                     key: str, narration: str = "", validated: bool = False) -> str:
        """Post ``rows`` as one voucher of ``company`` (type ``voucher_type``, default
        :attr:`default_voucher_type`) dated ``date``, once for ``key``: local checks
        (:func:`check_rows`, no request), then IFS is asked whether ``key`` already made a
        voucher (its id is returned, nothing written), then :meth:`validate`, then the route's
        writes. ``narration``: the voucher's description (assistant header text). Returns the
        :func:`voucher_id`. Raises :class:`MappingError` (unbalanced, master data, period),
        :class:`RejectedError` with IFS's text when IFS refuses the voucher anyway,
        :class:`ConflictError` (another worker is loading the same key), and the client's other
        errors (a :class:`~connector_tasks.core.errors.TransientApiError` after a write means:
        ask again before the next attempt — :meth:`post_voucher` does). ``validated``: the
        caller has just run :meth:`validate` for these rows (it is not repeated; IFS still
        refuses at create time what changed since, with its own text)."""
        rows = list(rows)
        check_rows(company, rows)
        vtype = (voucher_type or self.default_voucher_type).upper()
        existing = self.find_voucher(company, key)
        if existing is not None:
            return existing
        if not validated:
            self.validate(company, date, rows)
        return self._write(company, vtype, date, rows, key=key, narration=narration)

    def _write(self, company: str, voucher_type: str, date: dt.date, rows: list[PostingRow], *, key: str,
               narration: str) -> str:
        raise NotImplementedError

    @staticmethod
    def _amounts(row: PostingRow) -> dict[str, Decimal]:
        return {"DebetAmount": row.debit} if row.debit else {"CreditAmount": row.credit}

    @staticmethod
    def _codes(row: PostingRow) -> dict[str, str]:
        return {f"Code{letter}": value for letter, value in sorted(row.code_parts.items())}


# ---------------------------------------------------------------------------------------- external vouchers
class ExternalVoucherRoute(VoucherRoute):
    """The External Vouchers route (the default; see the module docstring for why).

    Writes: ``POST ExternalVouchers.svc/ExternalVouchersSet`` per row (``Company``, ``LoadId`` =
    :func:`reference_of`, ``LoadGroupItem`` = the same, ``TransactionDate``, ``VoucherType``,
    ``Account``, ``CodeB…``, ``DebetAmount``/``CreditAmount``, ``Text``, ``ReferenceNumber``,
    ``Correction`` false — mandatory, ``ExternalVouchers.projection``), then
    ``ExternalVoucherLoadInformationHandling.svc/ExtLoadInfoSet(Company,LoadId)/
    IfsApp.ExternalVoucherLoadInformationHandling.ExtLoadInfo_DoCreateVoucher`` with If-Match
    (``ExternalVoucherLoadInformationHandling.projection``). Source: docs.ifs.com "External
    Vouchers" (https://docs.ifs.com/ifsclouddocs/21r2/JournalEntry/ActivityCheckExternalVoucher.htm).
    """

    route = ROUTE_EXTERNAL
    default_voucher_type = "Z"

    def _load_filter(self, company: str, ref: str) -> str:
        return f"Company eq {literal(company)} and LoadId eq {literal(ref)}"

    def find_voucher(self, company: str, key: str) -> str | None:
        """One read: the load's first row in state ``Updated`` (filtered with the qualified enum
        ``IfsApp.ExternalVouchers.ExtTransactionsState'Updated'``), whose VoucherType,
        AccountingYear and VoucherNo name the voucher it made; ``None`` when the load does not
        exist or made no voucher yet."""
        p, ref = self.p, reference_of(key)
        updated = enum_literal(p.external, p.external_state_enum, "Updated")
        rows = self.client.get_set(p.external, p.external_set,
                                   filter=f"{self._load_filter(company, ref)} and Objstate eq {updated}",
                                   select="Company,LoadId,RecordNo,VoucherType,VoucherNo,AccountingYear", top=1)
        for row in rows:
            if row.get("VoucherNo") is not None and row.get("AccountingYear") is not None:
                return voucher_id(row["VoucherType"], row["AccountingYear"], row["VoucherNo"])
        return None

    def _clear_load(self, company: str, ref: str) -> None:
        """Delete what an earlier attempt left in load ``ref`` (rows loaded, no voucher)."""
        p = self.p
        left = self.client.get_set(p.external, p.external_set, filter=self._load_filter(company, ref),
                                   select="Company,LoadId,RecordNo,Objstate")
        if any(r.get("Objstate") == "Updated" for r in left):
            raise ConflictError(f"IFS load {ref} of company {company} made a voucher meanwhile; ask again",
                                system=SYSTEM)
        for r in left:
            self.client.delete(p.external, p.external_set,
                               {"Company": company, "LoadId": ref, "RecordNo": r["RecordNo"]},
                               etag=r.get("@odata.etag"))

    def _check_load(self, company: str, ref: str, rows: list[PostingRow]) -> None:
        """The load holds exactly our rows (count and totals), else another worker is loading
        the same key: :class:`ConflictError`, nothing created (the next attempt reloads)."""
        p = self.p
        held = self.client.get_set(p.external, p.external_set, filter=self._load_filter(company, ref),
                                   select="Company,LoadId,RecordNo,DebetAmount,CreditAmount")
        debit = sum((_amount(r.get("DebetAmount")) for r in held), ZERO)
        credit = sum((_amount(r.get("CreditAmount")) for r in held), ZERO)
        want_d = sum((r.debit for r in rows), ZERO)
        want_c = sum((r.credit for r in rows), ZERO)
        if len(held) != len(rows) or debit != want_d or credit != want_c:
            raise ConflictError(f"IFS load {ref} of company {company} holds {len(held)} rows (Dr {debit} Cr {credit}) "
                                f"where {len(rows)} (Dr {want_d} Cr {want_c}) were loaded: another worker is "
                                f"posting the same entry", system=SYSTEM)

    def _write(self, company: str, voucher_type: str, date: dt.date, rows: list[PostingRow], *, key: str,
               narration: str) -> str:
        p, ref = self.p, reference_of(key)
        load_keys = {"Company": company, "LoadId": ref}
        if self.client.get_entity(p.ext_load, p.ext_load_set, load_keys, select="Company,LoadId,ExtLoadState",
                                  missing_ok=True) is not None:
            self._clear_load(company, ref)
        for row in rows:
            self.client.create(p.external, p.external_set, {
                "Company": company, "LoadId": ref, "LoadGroupItem": ref, "TransactionDate": date.isoformat(),
                "VoucherType": voucher_type, "Account": row.account, **self._codes(row), **self._amounts(row),
                "Text": row.text[:ROW_TEXT_MAX], "ReferenceNumber": ref, "Correction": False})
        self._check_load(company, ref, rows)
        self.client.action(p.ext_load, p.ext_load_set, load_keys, p.ext_load_type, "DoCreateVoucher", if_match=True)
        made = self.find_voucher(company, key)
        if made is None:
            raise RejectedError(f"IFS accepted DoCreateVoucher for load {ref} of company {company} but no "
                                f"transaction made a voucher (see the load's LoadError)", system=SYSTEM)
        return made


# ---------------------------------------------------------------------------------------- voucher entry assistant
class AssistantVoucherRoute(VoucherRoute):
    """The voucher entry assistant route (``route="assistant"``).

    Writes: ``POST VoucherEntryAssistantHandling.svc/VoucherSet`` (``Company``, ``VoucherType``,
    ``VoucherDate``, ``VoucherText2`` = ``"<reference> <narration>"``) → ``Objkey``; ``POST
    VoucherSet(Objkey='…')/VoucherPostingArray`` per row (``Account``, ``CodeB…``,
    ``DebetAmount``/``CreditAmount``, ``Text``, ``ReferenceNumber``); ``POST
    VoucherSet(Objkey='…')/IfsApp.VoucherEntryAssistantHandling.VoucherEntry_CreateVoucher`` →
    the voucher number. On a failure before the voucher exists the temporary voucher is thrown
    away (``VoucherEntry_RemoveTempVoucher``, best effort). Source:
    ``VoucherEntryAssistantHandling.projection`` of the ACCRUL model files; the call order is
    ASSUMPTION.
    """

    route = ROUTE_ASSISTANT
    default_voucher_type = "M"

    def find_voucher(self, company: str, key: str) -> str | None:
        """``VoucherHandling.svc/VoucherSet?$filter=Company eq … and startswith(VoucherText2,'<ref>')``
        (the header text begins with :func:`reference_of`). Only vouchers still in the hold
        table are visible there (see the module docstring)."""
        p, ref = self.p, reference_of(key)
        found = self.client.get_set(p.vouchers, p.voucher_set,
                                    filter=f"Company eq {literal(company)} and startswith(VoucherText2,{string_literal(ref)})",
                                    select="Company,VoucherType,VoucherNo,AccountingYear,VoucherText2")
        for v in found:
            if str(v.get("VoucherText2") or "").split(" ", 1)[0] == ref:
                return voucher_id(v["VoucherType"], v["AccountingYear"], v["VoucherNo"])
        return None

    def _write(self, company: str, voucher_type: str, date: dt.date, rows: list[PostingRow], *, key: str,
               narration: str) -> str:
        p, ref = self.p, reference_of(key)
        text = " ".join(f"{ref} {narration}".split())[:HEADER_TEXT_MAX]
        header = self.client.create(p.voucher_entry, p.voucher_entry_set, {
            "Company": company, "VoucherType": voucher_type, "VoucherDate": date.isoformat(), "VoucherText2": text})
        objkey = header.get("Objkey")
        if not objkey:
            raise RejectedError(f"IFS gave no Objkey for the temporary voucher of company {company}", system=SYSTEM)
        keys = {"Objkey": objkey}
        try:
            for row in rows:
                self.client.create(p.voucher_entry, entity_path(p.voucher_entry_set, keys, (p.posting_array, None)), {
                    "Account": row.account, **self._codes(row), **self._amounts(row),
                    "Text": row.text[:ROW_TEXT_MAX], "ReferenceNumber": ref})
            number = self.client.action(p.voucher_entry, p.voucher_entry_set, keys, p.voucher_entry_type,
                                        "CreateVoucher")
        except ConnectorError:
            with contextlib.suppress(ConnectorError):
                self.client.action(p.voucher_entry, p.voucher_entry_set, keys, p.voucher_entry_type,
                                   "RemoveTempVoucher")
            raise
        if number is None:
            raise RejectedError(f"IFS CreateVoucher gave no voucher number for company {company}", system=SYSTEM)
        year = header.get("AccountingYear")
        if year is None:
            return self.find_voucher(company, key) or voucher_id(voucher_type, date.year, number)
        return voucher_id(voucher_type, year, number)


ROUTES: dict[str, type[VoucherRoute]] = {ROUTE_EXTERNAL: ExternalVoucherRoute, ROUTE_ASSISTANT: AssistantVoucherRoute}


def voucher_route(client: IfsClient, route: str = DEFAULT_ROUTE) -> VoucherRoute:
    """The route named ``route`` (``"external"``, the default, or ``"assistant"``) on ``client``.
    Raises :class:`ConfigurationError` for another name."""
    cls = ROUTES.get(str(route or DEFAULT_ROUTE).strip().lower())
    if cls is None:
        raise ConfigurationError(f"IFS voucher route must be one of {sorted(ROUTES)} (got {route!r})", system=SYSTEM)
    return cls(client)
