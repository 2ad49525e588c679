"""Purchases as the flows see them, with no vendor named: a purchase document (a purchase
invoice or a purchase return / debit note) with its inventory lines, and the ports a purchase
flow needs from a purchase source and from an inventory target.

Money is ``Decimal`` in currency units, quantities ``Decimal`` in the item's unit, exactly as
the source sent them (never floats).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Protocol


@dataclass(frozen=True)
class PurchaseLine:
    """One inventory line: ``item`` (the source's stock item name), ``part_number`` (its part
    number, ``""`` when it has none), ``quantity`` (> 0, ``Decimal``), ``unit``, ``rate`` (unit
    cost, ``Decimal`` currency units), ``amount`` (the line's value, ``Decimal``), ``location``
    (the source's godown / warehouse name, ``""`` when none)."""

    item: str
    part_number: str
    quantity: Decimal
    unit: str
    rate: Decimal
    amount: Decimal
    location: str = ""

    def to_dict(self) -> dict:
        """JSON-safe dict (decimals as strings); :meth:`from_dict` reads it back."""
        return {"item": self.item, "part_number": self.part_number, "quantity": str(self.quantity),
                "unit": self.unit, "rate": str(self.rate), "amount": str(self.amount), "location": self.location}

    @classmethod
    def from_dict(cls, data: dict) -> "PurchaseLine":
        """Read :meth:`to_dict`'s dict (decimals from strings, exactly)."""
        return cls(item=data["item"], part_number=data.get("part_number") or "",
                   quantity=Decimal(str(data["quantity"])), unit=data.get("unit") or "",
                   rate=Decimal(str(data["rate"])), amount=Decimal(str(data["amount"])),
                   location=data.get("location") or "")


@dataclass(frozen=True)
class Purchase:
    """One purchase document of a source.

    ``source_id`` (the source's stable id, e.g. a GUID); ``version`` (its alteration
    counter, e.g. an alteration id; ``None`` unknown); ``kind`` ``"purchase"`` (goods in) or
    ``"return"`` (goods back to the vendor: a debit note); ``number`` (the voucher number),
    ``date``, ``party`` (the vendor's name exactly as the source holds it), ``reference`` (the
    vendor's invoice number, ``""`` when none), ``narration``, ``total`` (``Decimal`` currency
    units, the party's amount), ``lines``; ``cancelled`` (cancelled at the source), ``optional``
    (a memorandum/optional voucher: not a real transaction), ``deleted`` (gone from the
    source: only ``source_id`` is meaningful then).
    """

    source_id: str
    kind: str
    number: str = ""
    date: dt.date | None = None
    party: str = ""
    reference: str = ""
    narration: str = ""
    total: Decimal = Decimal("0")
    lines: tuple[PurchaseLine, ...] = ()
    version: int | None = None
    cancelled: bool = False
    optional: bool = False
    deleted: bool = False

    @property
    def undone(self) -> bool:
        """True when the document no longer stands at the source (cancelled or deleted)."""
        return self.cancelled or self.deleted

    def vendor_document(self) -> str:
        """The vendor's document number to carry to the target: ``reference`` (the supplier's
        invoice number), else the voucher ``number``."""
        return self.reference or self.number

    def to_dict(self) -> dict:
        """JSON-safe dict; :meth:`from_dict` reads it back."""
        return {"source_id": self.source_id, "kind": self.kind, "number": self.number,
                "date": self.date.isoformat() if self.date else None, "party": self.party,
                "reference": self.reference, "narration": self.narration, "total": str(self.total),
                "lines": [line.to_dict() for line in self.lines], "version": self.version,
                "cancelled": self.cancelled, "optional": self.optional, "deleted": self.deleted}

    @classmethod
    def from_dict(cls, data: dict) -> "Purchase":
        """Read :meth:`to_dict`'s dict."""
        date = data.get("date")
        return cls(source_id=data["source_id"], kind=data.get("kind") or "purchase", number=data.get("number") or "",
                   date=dt.date.fromisoformat(date) if date else None, party=data.get("party") or "",
                   reference=data.get("reference") or "", narration=data.get("narration") or "",
                   total=Decimal(str(data.get("total") or "0")),
                   lines=tuple(PurchaseLine.from_dict(x) for x in data.get("lines") or ()),
                   version=data.get("version"), cancelled=bool(data.get("cancelled")),
                   optional=bool(data.get("optional")), deleted=bool(data.get("deleted")))


@dataclass(frozen=True)
class Unmatched:
    """What a purchase names that the target does not hold exactly: ``vendors`` (names) and
    ``skus`` (codes, or ``"<item> (no part number)"`` for a stock item without one)."""

    vendors: tuple[str, ...] = ()
    skus: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.vendors or self.skus)

    def describe(self, target: str) -> str:
        """One line naming every missing vendor and SKU, e.g. ``unmatched in <target>:
        vendor 'Acme'; SKU 'X-1', 'X-2'``."""
        parts = []
        if self.vendors:
            parts.append("vendor " + ", ".join(repr(v) for v in self.vendors))
        if self.skus:
            parts.append("SKU " + ", ".join(repr(s) for s in self.skus))
        return f"unmatched in {target}: " + "; ".join(parts)


@dataclass(frozen=True)
class MatchedLine:
    """A purchase line matched to the target's item: ``sku_id`` (the target's id), ``sku``
    (the code matched), and the line's ``quantity`` and ``cost`` (unit cost), ``Decimal``."""

    sku_id: int
    sku: str
    quantity: Decimal
    cost: Decimal
    description: str = ""

    def to_dict(self) -> dict:
        """JSON-safe dict (decimals as strings)."""
        return {"sku_id": self.sku_id, "sku": self.sku, "quantity": str(self.quantity), "cost": str(self.cost),
                "description": self.description}

    @classmethod
    def from_dict(cls, data: dict) -> "MatchedLine":
        """Read :meth:`to_dict`'s dict."""
        return cls(int(data["sku_id"]), data["sku"], Decimal(str(data["quantity"])), Decimal(str(data["cost"])),
                   data.get("description") or "")


class PurchaseSource(Protocol):
    """Reads purchase documents."""

    def purchase(self, source_id: str) -> Purchase:
        """The document as the source last reported it (``deleted`` when it is gone)."""


class InventoryTarget(Protocol):
    """Keeps a target's purchase orders, receipts and returns in step with purchase documents."""

    def sync_purchase(self, key: str, purchase: Purchase, vendor_id: int, lines: list[MatchedLine]) -> tuple[str, dict]:
        """Create or update the purchase order of ``key`` and receive it; returns (id, detail)."""

    def cancel(self, key: str, reason: str) -> tuple[str, dict] | None:
        """Cancel what ``key`` created; ``None`` when nothing exists."""


__all__ = ["PurchaseLine", "Purchase", "Unmatched", "MatchedLine", "PurchaseSource", "InventoryTarget"]
