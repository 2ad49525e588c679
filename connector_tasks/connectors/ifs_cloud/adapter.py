"""Domain ↔ IFS Cloud: the :class:`~connector_tasks.domain.ports.LedgerTarget` port on one IFS
company (:class:`IfsLedgerTarget`), the journal → voucher rows rule (:func:`journal_rows`) and
the split of a journal over companies (:func:`split_by_company`).

A journal posts as one IFS voucher (:mod:`.vouchers`, External Vouchers by default) dated the
entry's date, one row per journal line — or, for a line on an account kept by cost centre, one
row per code part B value its cost allocations map to (allocations to the same value merge) —
with ``DebetAmount``/``CreditAmount`` in the company's currency (``Decimal``, cents). IFS has no
idempotency key: the entry key's reference (:func:`~.vouchers.reference_of`) on the voucher is
what :meth:`IfsLedgerTarget.find_journal` asks for, and :meth:`IfsLedgerTarget.post_journal`
asks again before it writes.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Callable, Iterable, Mapping

from connector_tasks.connectors.ifs_cloud.client import SYSTEM, IfsClient
from connector_tasks.connectors.ifs_cloud.mapping import CostCentres, IfsAccount, resolve_accounts
from connector_tasks.connectors.ifs_cloud.vouchers import (
    DEFAULT_ROUTE, PostingRow, VoucherRoute, check_rows, row_text, voucher_route,
)
from connector_tasks.core.errors import ConnectorError, MappingError
from connector_tasks.domain.model import ZERO, CostAllocation, JournalEntry, JournalLine, LedgerMaster


def _label(line: JournalLine) -> str:
    return line.component.replace("_", " ")


def journal_rows(entry: JournalEntry, accounts: Mapping[str, IfsAccount], cost_centres: CostCentres) -> list[PostingRow]:
    """The voucher rows of ``entry`` (which must already balance, see
    :meth:`JournalEntry.check_balanced`).

    Per journal line, in order: its ledger's :class:`~.mapping.IfsAccount` (with its fixed code
    parts). When the account takes a cost centre: one row per cost-centre value
    (:meth:`~.mapping.CostCentres.value_of` of each allocation's cost centre; allocations mapping
    to one value are summed; zero shares dropped), or one row with the default value when the
    line has no allocations (:meth:`~.mapping.CostCentres.value_for`: the cost centre's row, else
    its department's value). Otherwise one row for the whole line (allocations ignored: the
    account keeps no cost centre). Each row's text is ``"<component> [<entry key>]"``
    (:func:`~.vouchers.row_text`). Amounts are the line's (cents), so the rows balance exactly
    when the entry does. Raises :class:`MappingError` naming a ledger without an account.
    """
    rows: list[PostingRow] = []
    for line in entry.lines:
        acc = accounts.get(line.ledger)
        if acc is None:
            raise MappingError(f"ledger {line.ledger!r} has no IFS account", system=SYSTEM)
        text = row_text(_label(line), entry.key)
        fixed = {k: v for k, v in acc.code_parts.items() if k != cost_centres.code_part} if acc.cost_centre \
            else dict(acc.code_parts)
        if acc.cost_centre:
            shares: dict[str, Decimal] = {}
            for a in line.allocations or (CostAllocation("", "", line.amount),):
                if a.amount:
                    value = cost_centres.value_for(a)
                    shares[value] = shares.get(value, ZERO) + a.amount
            for value, amount in shares.items():
                parts = {**fixed, cost_centres.code_part: value}
                rows.append(PostingRow(acc.account, debit=amount if line.is_debit else ZERO,
                                       credit=ZERO if line.is_debit else amount, code_parts=parts, text=text))
        else:
            rows.append(PostingRow(acc.account, debit=line.debit, credit=line.credit, code_parts=fixed, text=text))
    return rows


class IfsLedgerTarget:
    """The LedgerTarget port on one IFS company.

    ``vouchers``: a :class:`~.vouchers.VoucherRoute` (External Vouchers by default, see
    :func:`build_target`); ``company``: the IFS company code (``"10"``); ``accounts``:
    ``{ledger name: IfsAccount}`` (:func:`~.mapping.resolve_accounts`; ledgers not in it are
    resolved with the defaults and ``account_overrides`` on first use); ``cost_centres``: the
    cost centre → code part B mapping; ``voucher_type``: default the route's; ``currency``: the
    currency the journals' amounts are in (a company keeping its books in another is refused by
    :meth:`check_journal`; ``None``: not checked).

    IFS's chart of accounts belongs to the customer: :meth:`ensure_ledgers` never creates
    anything, it checks and refuses naming what is missing.
    """

    def __init__(self, vouchers: VoucherRoute, company: str, accounts: Mapping[str, IfsAccount] | None = None,
                 cost_centres: CostCentres | None = None, *, voucher_type: str | None = None,
                 account_overrides: Mapping[str, Mapping] | None = None, currency: str | None = None):
        self.vouchers = vouchers
        self.company = str(company)
        self.accounts: dict[str, IfsAccount] = dict(accounts or {})
        self.cost_centres = cost_centres or CostCentres()
        self.voucher_type = voucher_type
        self.account_overrides = dict(account_overrides or {})
        self.currency = currency

    def _accounts_for(self, ledgers: Iterable[str]) -> dict[str, IfsAccount]:
        names = list(dict.fromkeys(ledgers))
        missing = [n for n in names if n not in self.accounts]
        if missing:
            self.accounts.update(resolve_accounts(missing, self.account_overrides))
        return {n: self.accounts[n] for n in names}

    def find_journal(self, key: str) -> str | None:
        """The voucher id (``"<VoucherType>-<AccountingYear>-<VoucherNo>"``) entry ``key`` made
        in this company, or ``None`` (:meth:`~.vouchers.VoucherRoute.find_voucher`). Raises the
        client's errors."""
        return self.vouchers.find_voucher(self.company, key)

    def ensure_ledgers(self, ledgers: Iterable[LedgerMaster],
                       cost_centres: Iterable[tuple[str, str]] = ()) -> list[str]:
        """Check, never create: every ledger of ``ledgers`` is mapped, its account (and fixed
        code parts) exist in the company and are active today; every ``(category, cost centre)``
        of ``cost_centres`` maps to a code part B value that exists and is active (plus the
        default value when a mapped account takes cost centres). Returns ``[]`` (nothing is
        created). Raises :class:`MappingError` naming every missing account, code part value or
        the company — the customer adds them in IFS, then the job is replayed."""
        accounts = self._accounts_for(m.name for m in ledgers)
        letter = self.cost_centres.code_part
        codes: dict[str, set[str]] = {}
        for acc in accounts.values():
            for k, v in acc.code_parts.items():
                codes.setdefault(k, set()).add(v)
            if acc.cost_centre:
                codes.setdefault(letter, set()).add(self.cost_centres.default)
        for _category, name in cost_centres:
            codes.setdefault(letter, set()).add(self.cost_centres.value_of(name))
        problems, _ = self.vouchers.master_data_problems(self.company, dt.date.today(),
                                                         [a.account for a in accounts.values()], codes)
        if problems:
            raise MappingError(f"IFS company {self.company} lacks what the mapping needs: " + "; ".join(problems)
                               + " (IFS's chart belongs to the customer: nothing was created)", system=SYSTEM)
        return []

    def rows(self, entry: JournalEntry) -> list[PostingRow]:
        """The voucher rows of ``entry`` in this company (:func:`journal_rows`), checked locally
        (:func:`~.vouchers.check_rows`, no request). Raises :class:`MappingError`."""
        entry.check_balanced()
        rows = journal_rows(entry, self._accounts_for(line.ledger for line in entry.lines), self.cost_centres)
        check_rows(self.company, rows)
        return rows

    def check_journal(self, entry: JournalEntry) -> None:
        """Every check made before a write, without writing: the rows (:meth:`rows`), the
        company's currency (when :attr:`currency` is set; ``CompanySet(Company)``
        ``CurrencyCode``), then the master data and the period in IFS
        (:meth:`~.vouchers.VoucherRoute.validate`). Raises :class:`MappingError` naming the
        company and the account, code part, period or currency, and the client's errors."""
        rows = self.rows(entry)
        if self.currency:
            p = self.vouchers.p
            company = self.vouchers.client.get_entity(p.company, p.company_set, {"Company": self.company},
                                                      select="Company,CurrencyCode", missing_ok=True)
            held = (company or {}).get("CurrencyCode")
            if company is not None and held and held != self.currency:
                raise MappingError(f"IFS company {self.company} keeps its books in {held}, the journal is in "
                                   f"{self.currency}; nothing was written", system=SYSTEM)
        self.vouchers.validate(self.company, entry.date, rows)

    def post_journal(self, entry: JournalEntry, *, checked: bool = False) -> str:
        """Post ``entry`` once as one voucher: balance check (``"… is unbalanced …"``, no
        request), rows (:func:`journal_rows`), then :meth:`~.vouchers.VoucherRoute.post_voucher`
        (asks IFS first, checks master data and period unless ``checked`` — the caller just ran
        :meth:`check_journal` — then writes). Returns the voucher id.
        Raises :class:`MappingError` (unbalanced, unmapped ledger, missing/inactive account or
        code part, closed period — naming it), :class:`~connector_tasks.core.errors.RejectedError`
        with IFS's text, and the client's other errors."""
        rows = self.rows(entry)
        return self.vouchers.post_voucher(self.company, self.voucher_type, entry.date, rows, key=entry.key,
                                          narration=entry.narration, validated=checked)


def post_per_company(targets: Mapping[str, IfsLedgerTarget], parts: Mapping[str, JournalEntry]
                     ) -> tuple[dict[str, str], list[str]]:
    """Post each company's journal of ``parts`` (``{company: JournalEntry}``, one key) through
    ``targets[company]``, exactly once, checking everything before the first write:

    1. IFS is asked, per company, whether the key already made a voucher there
       (:meth:`IfsLedgerTarget.find_journal`);
    2. every company still to post is checked (:meth:`IfsLedgerTarget.check_journal`); any
       problem raises one :class:`MappingError` listing every company's problems, before any
       write (and naming the vouchers already in IFS);
    3. the rest are posted (:meth:`IfsLedgerTarget.post_journal` asks IFS once more right
       before it writes, without checking again). An error there is raised with ``"company <c>: "`` before its text and
       the vouchers already in IFS after it; the next attempt finds those and posts the rest.

    Returns ``({company: voucher id}, [companies whose voucher already existed])``.
    """
    ids: dict[str, str] = {}
    for company in parts:
        found = targets[company].find_journal(parts[company].key)
        if found is not None:
            ids[company] = found
    already = list(ids)
    todo = [c for c in parts if c not in ids]

    def made() -> str:
        return f" (vouchers already in IFS: {', '.join(f'{c}:{v}' for c, v in ids.items())})" if ids else ""

    problems = []
    for company in todo:
        try:
            targets[company].check_journal(parts[company])
        except MappingError as exc:
            problems.append(exc.message)
    if problems:
        raise MappingError("; ".join(problems) + made(), system=SYSTEM)
    for company in todo:
        try:
            ids[company] = targets[company].post_journal(parts[company], checked=True)
        except ConnectorError as exc:
            exc.message = f"company {company}: {exc.message}{made()}"
            raise
    return {c: ids[c] for c in parts}, already


def build_target(client: IfsClient, company: str, *, route: str = DEFAULT_ROUTE,
                 account_overrides: Mapping[str, Mapping] | None = None, cost_centres: CostCentres | None = None,
                 voucher_type: str | None = None) -> IfsLedgerTarget:
    """An :class:`IfsLedgerTarget` on ``company`` over ``client`` with the voucher ``route``
    (:func:`~.vouchers.voucher_route`), ledger ``account_overrides`` (``kind="ifs_account"``
    rows) and ``cost_centres`` (:func:`~.mapping.resolve_cost_centres`). Raises
    :class:`~connector_tasks.core.errors.ConfigurationError` for an unknown route."""
    return IfsLedgerTarget(voucher_route(client, route), company, cost_centres=cost_centres,
                           voucher_type=voucher_type, account_overrides=account_overrides)


def split_by_company(entry: JournalEntry, company_of: Callable[[str], str | None], *, default_company: str,
                     clearing_ledger: str | None = None) -> dict[str, JournalEntry]:
    """Split ``entry`` into one balanced entry per IFS company.

    The rule:

    * an allocated line is split by its allocations: each allocation goes to
      ``company_of(cost centre name)`` (``None`` → ``default_company``) as a line of the same
      ledger, component and side for the allocation's amount, carrying that allocation;
    * an unallocated line goes whole to ``default_company`` (no pro-rata guessing);
    * within a company, lines are kept in the entry's order; a company without lines gets no
      entry;
    * each company's entry keeps the key, date, narration, source_ref and warnings: in IFS the
      identity of a posted voucher is (company, key) — :meth:`IfsLedgerTarget.find_journal` is
      per company;
    * each company's entry must balance to the cent. When it does not, and ``clearing_ledger``
      is given (an intercompany clearing ledger), one line on that ledger takes each company's
      difference (the differences sum to zero because ``entry`` balances); otherwise
      :class:`MappingError` names every company and its difference — typically wages allocated
      across companies while the liabilities stay unallocated.

    ``entry`` must balance itself (:meth:`JournalEntry.check_balanced`, which raises
    :class:`MappingError` otherwise). Amounts are ``Decimal`` cents; nothing is rounded, since
    allocations are already cent amounts. Returns ``{company: JournalEntry}``.
    """
    entry.check_balanced()
    lines: dict[str, list[JournalLine]] = {}
    for line in entry.lines:
        if not line.allocations:
            lines.setdefault(default_company, []).append(line)
            continue
        by_company: dict[str, list[CostAllocation]] = {}
        for a in line.allocations:
            if a.amount:
                by_company.setdefault(company_of(a.cost_centre) or default_company, []).append(a)
        for company, allocs in by_company.items():
            amount = sum((a.amount for a in allocs), ZERO)
            lines.setdefault(company, []).append(JournalLine(
                ledger=line.ledger, component=line.component, debit=amount if line.is_debit else ZERO,
                credit=ZERO if line.is_debit else amount, allocations=tuple(allocs)))
    out: dict[str, JournalEntry] = {}
    unbalanced: list[str] = []
    for company, company_lines in lines.items():
        debit = sum((l.debit for l in company_lines), ZERO)
        credit = sum((l.credit for l in company_lines), ZERO)
        diff = debit - credit
        if diff and clearing_ledger:
            company_lines = company_lines + [JournalLine(
                ledger=clearing_ledger, component="intercompany_clearing",
                debit=-diff if diff < 0 else ZERO, credit=diff if diff > 0 else ZERO)]
        elif diff:
            unbalanced.append(f"company {company}: Dr {debit} Cr {credit} (difference {diff})")
            continue
        out[company] = JournalEntry(key=entry.key, date=entry.date, narration=entry.narration,
                                    lines=tuple(company_lines), source_ref=entry.source_ref, warnings=entry.warnings)
    if unbalanced:
        raise MappingError(f"journal {entry.key} does not balance per company (unbalanced in "
                           + "; ".join(unbalanced) + "): allocate the other lines too or name a clearing ledger",
                           system=SYSTEM)
    for part in out.values():
        part.check_balanced()
    return out
