"""TallyPrime as a purchase source: the event table and the ports the purchase flow reads.

Tally has no webhooks; the agent beside it polls (:mod:`.polling`) and every purchase voucher
or debit note created, altered, cancelled or deleted since the last poll becomes one
:class:`~connector_tasks.pipeline.inbound.SourceEvent` of the one inbound path, keyed by the
voucher's GUID with its AlterID as the version:

* ``purchase.changed`` — the voucher as exported at the poll (``raw``: the poll's voucher
  dict, decimals as strings);
* ``purchase.deleted`` — its GUID disappeared from the company (found by comparing GUID
  lists); the version is the company's voucher high-water mark at that poll, so it is newer
  than any alteration of the voucher.

The cloud cannot reach Tally (only the agent can), so the flow's "read the source now" is the
newest voucher the agent reported: :meth:`TallyPurchases.purchase` reads the newest stored event
of the GUID.
"""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import select

from connector_tasks import runtime
from connector_tasks.core.errors import MappingError
from connector_tasks.domain.purchases import Purchase, PurchaseLine
from connector_tasks.flows.purchase_to_order import FLOW as PURCHASE_FLOW
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import InboundEvent

SYSTEM = "tallyprime"
CHANGED, DELETED = "purchase.changed", "purchase.deleted"
EVENT_FLOWS = {CHANGED: PURCHASE_FLOW, DELETED: PURCHASE_FLOW}


def _date(value) -> dt.date | None:
    if not value:
        return None
    if isinstance(value, dt.date):
        return value
    text = str(value)
    return dt.date.fromisoformat(text) if "-" in text else dt.datetime.strptime(text, "%Y%m%d").date()


def purchase_from_voucher(raw: dict) -> Purchase:
    """The :class:`Purchase` of one polled voucher (the dict of
    :func:`~connector_tasks.connectors.tallyprime.exports.poll_purchases` made JSON-safe, or
    ``{"guid", "deleted": true}``): ``kind`` ``return`` for a debit note; one line per inventory
    entry with its stock item, part number, quantity, unit, rate (the unit cost) and amount,
    ``Decimal`` exactly as Tally wrote them. Raises MappingError for a voucher without GUID or
    with a value that is not what Tally writes there (the agent is untrusted)."""
    guid = raw.get("guid")
    if not guid:
        raise MappingError("a polled Tally voucher has no GUID", system=SYSTEM)
    if raw.get("deleted"):
        return Purchase(source_id=guid, kind="purchase", deleted=True, version=raw.get("alter_id"),
                        number=raw.get("number") or "")
    try:
        return _purchase(raw, guid)
    except (ArithmeticError, ValueError, TypeError, AttributeError) as exc:
        raise MappingError(f"polled Tally voucher {guid} is malformed: {exc}", system=SYSTEM) from exc


def _purchase(raw: dict, guid: str) -> Purchase:
    lines = tuple(PurchaseLine(item=x.get("stock_item") or "", part_number=x.get("part_number") or "",
                               quantity=Decimal(str(x.get("quantity") or "0")), unit=x.get("unit") or "",
                               rate=Decimal(str(x.get("rate") or "0")), amount=Decimal(str(x.get("amount") or "0")),
                               location=x.get("godown") or "")
                  for x in raw.get("inventory") or [])
    return Purchase(source_id=guid, kind="return" if raw.get("kind") == "debit_note" else "purchase",
                    number=raw.get("number") or "", date=_date(raw.get("date")), party=raw.get("party_ledger") or "",
                    reference=raw.get("reference") or "", narration=raw.get("narration") or "",
                    total=Decimal(str(raw.get("total") or "0")), lines=lines, version=raw.get("alter_id"),
                    cancelled=bool(raw.get("is_cancelled")), optional=bool(raw.get("is_optional")))


class TallyPurchases:
    """The PurchaseSource port of one Tally connection (``endpoint``): what its agent last
    reported."""

    def __init__(self, endpoint):
        self.endpoint = endpoint

    def purchase(self, source_id: str) -> Purchase:
        """The voucher of GUID ``source_id`` as the newest stored poll event says (highest
        version, then newest). Raises MappingError when no poll reported it."""
        with session_scope(runtime.settings().database_url) as s:
            event = s.scalars(select(InboundEvent).where(
                InboundEvent.system == SYSTEM, InboundEvent.connection_id == self.endpoint.id,
                InboundEvent.entity_id == source_id, InboundEvent.event_type.in_(tuple(EVENT_FLOWS)))
                .order_by(InboundEvent.entity_version.desc(), InboundEvent.id.desc())).first()
            raw = dict(event.payload or {}) if event is not None else None
        if raw is None:
            raise MappingError(f"no poll of {self.endpoint.name!r} reported voucher {source_id}", system=SYSTEM)
        return purchase_from_voucher(raw)


def open(endpoint) -> TallyPurchases:  # noqa: A001 - the registry's port factory name
    """The ports of Tally connection ``endpoint`` for the flows (purchases)."""
    return TallyPurchases(endpoint)
