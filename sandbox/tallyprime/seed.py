"""Deterministic bulk data for the TallyPrime emulator (tests and benchmarks; sandbox only).

:func:`seed_vouchers` writes N balanced Journal vouchers straight into an emulator company
(no XML import: 20,000 vouchers take well under a second), each with its own MASTERID,
ALTERID and GUID from the company's counters, exactly as an import would give them (change
tracking as tally-database-loader reads it: https://github.com/dhananjay1405/tally-database-loader
``docs/incremental-sync.md``). Same arguments → same vouchers (``random.Random`` seeded).
Nothing is written to disk; nothing generated belongs in git.

Route (sandbox-only, NOT Tally): ``POST /_sandbox/seed`` with JSON
``{"count": N, "company": name, "start": "YYYYMMDD", "days": D, "seed": S,
"touch": ["remote id", ...], "touch_narration": "...", "purchases": N, "debit_notes": M,
"stock_items": K, "cancelled": C, "optional": O}`` → the :func:`seed_from_spec` summary.
"""
from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

SEED_LEDGERS: list[tuple[str, str]] = [
    ("Sales - Domestic", "Sales Accounts"), ("Purchases - Raw Material", "Purchase Accounts"),
    ("Office Rent", "Indirect Expenses"), ("Salaries & Wages", "Indirect Expenses"),
    ("HDFC Bank", "Bank Accounts"), ("Acme Traders", "Sundry Debtors"),
    ("Zenith Supplies", "Sundry Creditors"), ("Output GST", "Duties & Taxes"),
    ("Freight Inward", "Direct Expenses"),
]
PARTIES = ("Acme Traders", "Zenith Supplies")


def _company(target, company: str | None):
    """An emulator ``Company`` from a ``TallyEmulator`` (by name, default the first) or a
    ``Company`` itself; returns ``(company, lock or None)``."""
    companies = getattr(target, "companies", None)
    if companies is None:
        return target, None
    if company:
        return companies[company.casefold()], target.data_lock
    return next(iter(companies.values())), target.data_lock


def _ensure_ledgers(c) -> None:
    for name, parent in SEED_LEDGERS:
        if name.casefold() not in c.ledgers:
            c._new(c.ledgers, {"name": name, "parent": parent, "cost_centres_on": False})


def seed_vouchers(target, count: int, *, company: str | None = None,
                  start: dt.date = dt.date(2024, 4, 1), days: int = 365, seed: int = 0,
                  remote_prefix: str = "seed") -> dict:
    """Add ``count`` Journal vouchers dated in ``start`` .. ``start + days - 1`` (random
    day, not in date order, so date batching is exercised) to ``target`` (a
    ``TallyEmulator`` — its data lock is held — or a ``Company``).

    Each voucher: 2–5 lines over :data:`SEED_LEDGERS` (missing ledgers are created first),
    debits negative / credits positive summing to zero (the sign convention of Tally's Case
    Study I: https://help.tallysolutions.com/developer-reference/integration-capabilities/case-study-1/),
    amounts in cents, ``REMOTEID`` ``f"{remote_prefix}-{seed}-{i}"``, a narration, and
    ``party_ledger`` set to a party ledger when one is among the lines.
    Returns ``{"company", "created", "first_alter_id", "last_alter_id", "from", "to"}``
    (dates ``YYYYMMDD``). Raises ``ValueError`` for ``count < 0`` or ``days < 1``.
    """
    if count < 0 or days < 1:
        raise ValueError("count must be >= 0 and days >= 1")
    c, lock = _company(target, company)
    rng = random.Random(seed)
    names = [n for n, _ in SEED_LEDGERS]
    if lock is not None:
        lock.acquire()
    try:
        _ensure_ledgers(c)
        first = c.alter_id + 1
        for i in range(count):
            date = (start + dt.timedelta(days=rng.randrange(days))).strftime("%Y%m%d")
            ledgers = rng.sample(names, rng.randint(2, 5))
            n_debits = rng.randint(1, len(ledgers) - 1)
            debits = [Decimal(rng.randint(100, 9_999_999)) / 100 for _ in range(n_debits)]
            total = sum(debits, Decimal(0))
            n_credits = len(ledgers) - n_debits
            credits, left = [], total
            for k in range(n_credits - 1):
                part = (total / n_credits).quantize(Decimal("0.01"))
                credits.append(part)
                left -= part
            credits.append(left)
            amounts = [-d for d in debits] + credits
            entries = [{"ledger": c.ledgers[l.casefold()]["name"], "amount": a,
                        "is_deemed_positive": a < 0, "allocations": []}
                       for l, a in zip(ledgers, amounts)]
            party = next((l for l in ledgers if l in PARTIES), "")
            number = c.vch_numbers.get("Journal", 0) + 1
            c.vch_numbers["Journal"] = number
            c.vouchers.append(c._ids({
                "remote_id": f"{remote_prefix}-{seed}-{i}", "date": date, "type": "Journal",
                "number": str(number), "party_ledger": party, "entries": entries,
                "narration": f"Seeded journal {i} ({', '.join(ledgers[:2])})"}))
        return {"company": c.name, "created": count, "first_alter_id": first,
                "last_alter_id": c.alter_id, "from": start.strftime("%Y%m%d"),
                "to": (start + dt.timedelta(days=days - 1)).strftime("%Y%m%d")}
    finally:
        if lock is not None:
            lock.release()


def touch_vouchers(target, remote_ids, *, company: str | None = None,
                   narration: str | None = None) -> list[int]:
    """Alter the vouchers with these REMOTEIDs as Tally would on an edit: a new ALTERID
    each (MASTERID and GUID kept), the narration replaced when ``narration`` is given.
    Returns the new AlterIDs in order; raises ``KeyError`` for an unknown REMOTEID."""
    c, lock = _company(target, company)
    if lock is not None:
        lock.acquire()
    try:
        by_id = {v["remote_id"]: v for v in c.vouchers}
        out = []
        for rid in remote_ids:
            v = by_id[rid]
            if narration is not None:
                v["narration"] = narration
            c.touch(v)
            out.append(v["alter_id"])
        return out
    finally:
        if lock is not None:
            lock.release()


def seed_from_spec(emulator, spec: dict) -> dict:
    """The ``/_sandbox/seed`` route: :func:`seed_vouchers` with ``spec``'s ``count`` (default
    0), ``company``, ``start`` (YYYYMMDD), ``days``, ``seed``, then :func:`touch_vouchers`
    for ``touch`` (with ``touch_narration``); the summary gains ``touched`` AlterIDs. With
    ``purchases``/``debit_notes`` it then runs :func:`seed_purchases` (``stock_items``,
    ``cancelled``, ``optional``), summary under ``inventory``."""
    start = spec.get("start")
    out = seed_vouchers(
        emulator, int(spec.get("count", 0)), company=spec.get("company"),
        start=dt.datetime.strptime(start, "%Y%m%d").date() if start else dt.date(2024, 4, 1),
        days=int(spec.get("days", 365)), seed=int(spec.get("seed", 0)))
    if spec.get("touch"):
        out["touched"] = touch_vouchers(emulator, spec["touch"], company=spec.get("company"),
                                        narration=spec.get("touch_narration"))
    if spec.get("purchases") or spec.get("debit_notes"):
        out["inventory"] = seed_purchases(
            emulator, int(spec.get("purchases", 0)), debit_notes=int(spec.get("debit_notes", 0)),
            stock_items=int(spec.get("stock_items", 20)), cancelled=int(spec.get("cancelled", 0)),
            optional=int(spec.get("optional", 0)), company=spec.get("company"),
            start=dt.datetime.strptime(start, "%Y%m%d").date() if start else dt.date(2024, 4, 1),
            days=int(spec.get("days", 365)), seed=int(spec.get("seed", 0)))
    return out


# ---------------------------------------------------------------------- purchases

SEED_UNITS = [("Nos", "Numbers", 0), ("Kg", "Kilograms", 3)]
SEED_GODOWNS = ["Stores", "Workshop"]
SEED_STOCK_GROUPS = ["Spares", "Consumables"]
SEED_PURCHASE_LEDGERS = [("Purchases - Stock", "Purchase Accounts"),
                         ("Input GST", "Duties & Taxes"), ("Zenith Supplies", "Sundry Creditors"),
                         ("Northwind Parts", "Sundry Creditors")]
SUPPLIERS = ("Zenith Supplies", "Northwind Parts")


def ensure_inventory_masters(c, stock_items: int) -> list[dict]:
    """Units, godowns, stock groups, purchase ledgers and ``stock_items`` stock items
    ``Item 0001``… (part numbers ``PN-0001``…, every third one in Kg) — created when missing.
    Returns the stock items used."""
    from .inventory import upsert_master
    for name, parent in SEED_PURCHASE_LEDGERS:
        if name.casefold() not in c.ledgers:
            c._new(c.ledgers, {"name": name, "parent": parent, "cost_centres_on": False})
    for name, formal, decimals in SEED_UNITS:
        if name.casefold() not in c.units:
            upsert_master(c, "unit", {"name": name, "formal_name": formal, "decimals": decimals})
    for name in SEED_GODOWNS:
        if name.casefold() not in c.godowns:
            upsert_master(c, "godown", {"name": name})
    for name in SEED_STOCK_GROUPS:
        if name.casefold() not in c.stock_groups:
            upsert_master(c, "stockgroup", {"name": name})
    items = []
    for i in range(1, stock_items + 1):
        name = f"Item {i:04d}"
        if name.casefold() not in c.stock_items:
            upsert_master(c, "stockitem", {"name": name, "part_no": f"PN-{i:04d}",
                                           "base_units": "Kg" if i % 3 == 0 else "Nos",
                                           "parent": SEED_STOCK_GROUPS[i % 2]})
        items.append(c.stock_items[name.casefold()])
    return items


def seed_purchases(target, count: int, *, debit_notes: int = 0, stock_items: int = 20,
                   cancelled: int = 0, optional: int = 0, company: str | None = None,
                   start: dt.date = dt.date(2024, 4, 1), days: int = 365, seed: int = 0) -> dict:
    """Save ``count`` Purchase and ``debit_notes`` Debit Note invoice vouchers (1–4 stock
    lines each over :func:`ensure_inventory_masters`' items, Decimal quantities — three places
    for Kg items — and rates, a godown, every other one with an ``Input GST`` line, supplier
    reference ``INV-<n>``), as :func:`sandbox.tallyprime.inventory.create_invoice_voucher`
    does for a person; then mark the first ``cancelled`` purchases cancelled and the next
    ``optional`` ones optional (each a new AlterID). Deterministic for the same arguments.
    Returns ``{"company", "purchases", "debit_notes", "first_alter_id", "last_alter_id",
    "from", "to"}``."""
    from .inventory import cancel_voucher, create_invoice_voucher
    if min(count, debit_notes, cancelled, optional) < 0 or days < 1 or stock_items < 1:
        raise ValueError("counts must be >= 0, days and stock_items >= 1")
    c, lock = _company(target, company)
    rng = random.Random(seed)
    if lock is not None:
        lock.acquire()
    try:
        items = ensure_inventory_masters(c, stock_items)
        godowns = ["Main Location"] + SEED_GODOWNS
        first = c.alter_id + 1
        made = []
        for i in range(count + debit_notes):
            lines = []
            for item in rng.sample(items, min(len(items), rng.randint(1, 4))):
                if item["base_units"] == "Kg":
                    qty = Decimal(rng.randint(100, 50_000)) / 1000
                else:
                    qty = Decimal(rng.randint(1, 40))
                lines.append({"item": item["name"], "qty": qty,
                              "rate": Decimal(rng.randint(50, 500_000)) / 100,
                              "godown": rng.choice(godowns)})
            is_return = i >= count
            spec = {"type": "Debit Note" if is_return else "Purchase",
                    "date": (start + dt.timedelta(days=rng.randrange(days))).strftime("%Y%m%d"),
                    "party": SUPPLIERS[i % 2], "purchase_ledger": "Purchases - Stock",
                    "items": lines, "reference": f"{'DN' if is_return else 'INV'}-{seed}-{i}",
                    "narration": f"Seeded {'return' if is_return else 'purchase'} {i}"}
            if i % 2:
                spec["ledgers"] = [{"ledger": "Input GST", "amount": Decimal(rng.randint(100, 99_999)) / 100}]
            made.append(create_invoice_voucher(c, spec))
        for v in made[:cancelled]:
            cancel_voucher(c, v["guid"])
        for v in made[cancelled:cancelled + optional]:
            v["is_optional"] = True
            c.touch(v)
        return {"company": c.name, "purchases": count, "debit_notes": debit_notes,
                "first_alter_id": first, "last_alter_id": c.alter_id,
                "from": start.strftime("%Y%m%d"),
                "to": (start + dt.timedelta(days=days - 1)).strftime("%Y%m%d")}
    finally:
        if lock is not None:
            lock.release()
