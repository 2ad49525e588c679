"""Pure mapping of the purchase flow: a purchase document of a purchase source → what an
inventory target needs (the vendor's id and one item per inventory line), by **exact** matching
against the target's catalogue. No I/O.

Rules (issue 13):

* the vendor is the target's vendor whose name equals the document's party name exactly
  (case, spaces and punctuation included);
* each inventory line becomes one item whose SKU code equals the stock item's part number
  (``by="part_number"``) or its name (``by="name"``), exactly; quantity and unit cost are the
  source's ``Decimal`` values unchanged (cost = the line's rate);
* a name that matches no record, or more than one, is *unmatched*: nothing is synced and the
  job is parked naming every missing vendor name and SKU. No fuzzy matching, ever.
"""
from __future__ import annotations

from typing import Iterable, Literal, Mapping

from connector_tasks.domain.purchases import MatchedLine, Purchase, Unmatched

#: the flow's name (``SyncJob.flow``)
FLOW = "purchase_to_order"
MatchBy = Literal["part_number", "name"]


def purchase_key(system: str, source_id: str) -> str:
    """The job's idempotency key: ``<system>-purchase-<source id>`` (the target is asked about
    it before any write)."""
    return f"{system}-purchase-{source_id}"


def index(records: Iterable[Mapping], field: str) -> dict[str, list[int]]:
    """``{record[field]: [ids]}`` of active ``records`` (each ``{"id", field, "active"?}``),
    keyed by the exact text (no case folding, no trimming)."""
    out: dict[str, list[int]] = {}
    for rec in records:
        if rec.get("active", True) is False:
            continue
        value = rec.get(field)
        if isinstance(value, str) and value:
            out.setdefault(value, []).append(int(rec["id"]))
    return out


def sku_of(line, by: MatchBy) -> str:
    """The SKU code a line must match: its part number or its item name."""
    return line.part_number if by == "part_number" else line.item


def match_purchase(purchase: Purchase, vendors: Mapping[str, list[int]], materials: Mapping[str, list[int]],
                   by: MatchBy = "part_number") -> tuple[int | None, list[MatchedLine], Unmatched]:
    """Match ``purchase`` against ``vendors`` (name → ids) and ``materials`` (code → ids), both
    from :func:`index`. Returns ``(vendor id, matched lines, unmatched)``; when ``unmatched`` is
    truthy the other two must not be used. Every missing or ambiguous vendor name and SKU is
    named once, in document order (an ambiguous one as ``"<name> (N records)"``; a stock item
    without a part number as ``"<item> (no part number)"``). Raises ``ValueError`` for an
    unknown ``by``."""
    if by not in ("part_number", "name"):
        raise ValueError(f"match items by 'part_number' or 'name', not {by!r}")
    missing_vendors: list[str] = []
    vendor_id = None
    ids = vendors.get(purchase.party) or []
    if len(ids) == 1:
        vendor_id = ids[0]
    else:
        missing_vendors.append(purchase.party if not ids else f"{purchase.party} ({len(ids)} records)")
    lines: list[MatchedLine] = []
    missing_skus: list[str] = []
    for line in purchase.lines:
        sku = sku_of(line, by)
        if not sku:
            label = f"{line.item} (no part number)"
            if label not in missing_skus:
                missing_skus.append(label)
            continue
        found = materials.get(sku) or []
        if len(found) != 1:
            label = sku if not found else f"{sku} ({len(found)} records)"
            if label not in missing_skus:
                missing_skus.append(label)
            continue
        lines.append(MatchedLine(found[0], sku, line.quantity, line.rate, line.item))
    unmatched = Unmatched(tuple(missing_vendors), tuple(missing_skus))
    if not purchase.lines and not unmatched:
        unmatched = Unmatched((), ("(the voucher has no inventory lines)",))
    return vendor_id, lines, unmatched


def marker(key: str) -> str:
    """The text that carries our idempotency key in a target field we can read back:
    ``[mlc:<key>]`` (the target side documents which field carries it and what it
    assumes)."""
    return f"[mlc:{key}]"


def memo_for(purchase: Purchase, key: str, source_label: str) -> str:
    """The memo of the target's document: ``<source> <kind> <number> [mlc:<key>]``."""
    kind = "debit note" if purchase.kind == "return" else "purchase"
    return f"{source_label} {kind} {purchase.number} {marker(key)}".strip()


__all__ = ["FLOW", "purchase_key", "index", "sku_of", "match_purchase", "marker", "memo_for"]
