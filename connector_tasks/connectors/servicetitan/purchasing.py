"""Purchase orders, receipts and returns kept in step with a purchase source's documents,
exactly once, over :class:`~.client.ServiceTitanClient`.

ServiceTitan has no idempotency key and no ``externalData`` on purchase orders (OAS
``CreatePurchaseOrderRequest`` has ``additionalProperties: false``), so our key travels in
fields we can read back, and ServiceTitan is asked before every write:

* a PO carries ``[mlc:<key>]`` in its ``memo`` (read back as the PO's ``summary``; ASSUMPTION:
  ServiceTitan keeps the memo verbatim — the emulator does). It is found by the id recorded as
  the job's external reference, else among the POs created since the job began
  (``createdOnOrAfter``, one hour of clock margin) whose summary holds the marker;
* a receipt is found by ``vendorInvoiceNumber`` (the voucher's supplier invoice number, sent as
  the receipt's ``vendorDocumentNumber``) **and** the PO id (``Receipts_Get``);
* a return is found by ``referenceNumber`` (the debit note's number) with the marker in its
  memo, else by the marker among the returns created since the job began.

So a worker killed between ServiceTitan's write and our record of it finds the PO, receipt or
return on its next try and writes nothing twice.

What ServiceTitan allows when a voucher changes (the v2 spec and its newer endpoints):

* altered, not yet received → ``PurchaseOrders_Update`` with **every** active item (an item
  left out is marked inactive by ServiceTitan), then the receipt;
* altered after it was received → a received PO cannot be updated, so the PO's active receipts
  that carry our marker are cancelled (``PATCH receipts/{id}/cancellation``, reason ``Other``, memo naming the
  alteration), the PO is updated, and the whole PO is received again — every step is in the
  job's audit detail;
* cancelled or deleted → active receipts cancelled, then the PO (``PATCH
  purchase-orders/{id}/cancellation``), reason ``Other`` with the source's reason as memo;
* a return (debit note) is created once; ServiceTitan's API has no update or cancellation of a
  return, so an altered or cancelled debit note leaves it as it is, said in the audit.
"""
from __future__ import annotations

import datetime as dt
from collections import Counter
from decimal import Decimal

from connector_tasks.connectors.servicetitan import wire
from connector_tasks.connectors.servicetitan.client import NotFound, ServiceTitanClient
from connector_tasks.domain.purchases import MatchedLine, Purchase
from connector_tasks.flows.purchase_to_order import marker

#: cancellation reason sent with every cancel (one of :data:`wire.CANCEL_REASONS`)
CANCEL_REASON = "Other"
#: clock margin when POs and returns created since a job began are searched for its marker
SEARCH_MARGIN = dt.timedelta(hours=1)


def _since(started: str | None) -> dt.datetime:
    when = dt.datetime.fromisoformat(started) if started else dt.datetime.now(dt.timezone.utc)
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when - SEARCH_MARGIN


def find_po(client: ServiceTitanClient, key: str, *, known_id: int | None = None,
            since: str | None = None) -> dict | None:
    """The PO ``key`` made: ``known_id`` (the recorded reference) when ServiceTitan still has it
    with our marker, else the PO created since ``since`` (ISO time the job began, minus
    :data:`SEARCH_MARGIN`) whose ``summary`` holds ``[mlc:<key>]``; ``None`` when there is none."""
    tag = marker(key)
    if known_id:
        try:
            po = client.get_purchase_order(int(known_id))
            if tag in (po.get("summary") or ""):
                return po
        except NotFound:
            pass
    found = [po for po in client.list_purchase_orders(created_on_or_after=_since(since))
             if tag in (po.get("summary") or "")]
    return min(found, key=lambda po: po["id"]) if found else None


def find_return(client: ServiceTitanClient, key: str, reference: str, *, since: str | None = None) -> dict | None:
    """The return ``key`` made (by ``referenceNumber`` and marker, else by the marker among the
    returns created since ``since``), inactive ones included; ``None`` when there is none."""
    tag = marker(key)
    rows = client.list_returns(reference_number=reference, active=None) if reference else []
    found = [r for r in rows if tag in (r.get("memo") or "")]
    if not found:
        found = [r for r in client.list_returns(active=None, created_on_or_after=_since(since))
                 if tag in (r.get("memo") or "")]
    return min(found, key=lambda r: r["id"]) if found else None


def _active_items(po: dict) -> list[dict]:
    return [i for i in po.get("items") or [] if (i.get("status") or "Active") == "Active"]


def _same_items(po: dict, lines: list[MatchedLine]) -> bool:
    have = Counter((int(i["skuId"]), Decimal(str(i["quantity"])), Decimal(str(i["cost"]))) for i in _active_items(po))
    want = Counter((line.sku_id, line.quantity, line.cost) for line in lines)
    return have == want


def _update_lines(po: dict, lines: list[MatchedLine]) -> list[wire.PurchaseOrderLine]:
    """Every wanted line, reusing an active PO item of the same SKU (its ``id``) where there
    is one, else a new item (``id`` 0)."""
    free = {}
    for item in _active_items(po):
        free.setdefault(int(item["skuId"]), []).append(int(item["id"]))
    out = []
    for line in lines:
        ids = free.get(line.sku_id) or []
        out.append(wire.PurchaseOrderLine(line.sku_id, line.quantity, line.cost, line.description,
                                          id=ids.pop(0) if ids else 0))
    return out


def _receipts(client: ServiceTitanClient, po_id: int, invoice: str | None = None) -> list[dict]:
    return client.list_receipts(vendor_invoice_number=invoice or None, purchase_order_ids=[po_id], active=True)


def _our_receipts(client: ServiceTitanClient, po_id: int, key: str) -> list[dict]:
    """The PO's active receipts that carry our marker (ours, or ServiceTitan's automatic receipt
    of the PO, which copies its memo); a receipt a person entered in ServiceTitan is left
    alone (then ServiceTitan itself refuses what it does not allow, and the job is parked with
    its text)."""
    tag = marker(key)
    return [r for r in _receipts(client, po_id) if tag in (r.get("memo") or "")]


def _receive(client: ServiceTitanClient, po: dict, purchase: Purchase, key: str, source_label: str) -> int | None:
    """Receive every outstanding quantity of ``po``'s active items under the voucher's vendor
    invoice number; returns the receipt id, ``None`` when nothing is outstanding."""
    lines = []
    for item in _active_items(po):
        left = Decimal(str(item["quantity"])) - Decimal(str(item.get("quantityReceived") or 0))
        if left > 0:
            lines.append(wire.ReceiptLine(int(item["skuId"]), left, Decimal(str(item["cost"])),
                                          purchase_order_item_id=int(item["id"])))
    if not lines:
        return None
    body = wire.receipt_request(purchase_order_id=int(po["id"]), date_received=purchase.date or dt.date.today(),
                                items=lines, vendor_document_number=purchase.vendor_document(),
                                memo=f"{source_label} purchase {purchase.number} {marker(key)}")
    return client.create_receipt(body)


def sync_purchase(client: ServiceTitanClient, payload: dict) -> tuple[str, dict]:
    """Make ServiceTitan hold one PO for the voucher of ``payload`` with exactly its lines,
    received in full. ``payload``: ``{"key", "purchase": Purchase dict, "vendor_id", "lines":
    [MatchedLine dicts], "business_unit_id", "po_type_id", "inventory_location_id",
    "ship_to", "known_id", "since", "source_label"}``. Returns ``(PO id, detail)`` with
    ``detail["actions"]`` listing what was done (``created``, ``found`` (already there),
    ``updated``, ``receipt cancelled <id>``, ``received <id>``, ``unchanged``). Raises the
    client's errors (a refusal as RejectedError with ServiceTitan's lines)."""
    key = payload["key"]
    purchase = Purchase.from_dict(payload["purchase"])
    lines = [MatchedLine.from_dict(x) for x in payload["lines"]]
    label = payload.get("source_label") or "source"
    actions: list[str] = []
    po = find_po(client, key, known_id=payload.get("known_id"), since=payload.get("since"))
    memo = f"{label} purchase {purchase.number} {marker(key)}"
    if po is None:
        body = wire.purchase_order_request(
            vendor_id=int(payload["vendor_id"]), type_id=int(payload["po_type_id"]),
            business_unit_id=int(payload["business_unit_id"]),
            inventory_location_id=int(payload["inventory_location_id"]),
            ship_to_description=payload.get("ship_to") or "Inventory location",
            ship_to_address=wire.Address(), date=purchase.date or dt.date.today(),
            required_on=purchase.date or dt.date.today(),
            items=[wire.PurchaseOrderLine(x.sku_id, x.quantity, x.cost, x.description) for x in lines],
            vendor_invoice_number=purchase.vendor_document(), memo=memo)
        po_id = client.create_purchase_order(body)
        actions.append("created")
        po = client.get_purchase_order(po_id)
    else:
        actions.append("found")
        if po.get("status") == "Canceled":
            raise _rejected(f"purchase order {po.get('number')} of {key} was canceled in ServiceTitan; "
                            f"the voucher stands in the source: re-open it there or delete the voucher")
        if not _same_items(po, lines) or int(po.get("vendorId") or 0) != int(payload["vendor_id"]):
            for receipt in _our_receipts(client, int(po["id"]), key):
                client.cancel_receipt(int(receipt["id"]), CANCEL_REASON,
                                      f"voucher {purchase.number} altered in {label} (version {purchase.version}) "
                                      f"{marker(key)}")
                actions.append(f"receipt cancelled {receipt['id']}")
            client.update_purchase_order(int(po["id"]), wire.purchase_order_update_request(
                items=_update_lines(client.get_purchase_order(int(po["id"])), lines),
                vendor_id=int(payload["vendor_id"]), vendor_invoice_number=purchase.vendor_document(),
                memo=memo, date=purchase.date or dt.date.today()))
            actions.append("updated")
            po = client.get_purchase_order(int(po["id"]))
        else:
            actions.append("unchanged")
    existing = _receipts(client, int(po["id"]), purchase.vendor_document())
    receipt_id = _receive(client, po, purchase, key, label)
    if receipt_id is not None:
        actions.append(f"received {receipt_id}")
        po = client.get_purchase_order(int(po["id"]))
    total = sum((Decimal(str(i["quantity"])) * Decimal(str(i["cost"])) for i in _active_items(po)), Decimal("0"))
    return str(po["id"]), {"actions": actions, "po_number": po.get("number"), "po_status": po.get("status"),
                           "receipts": [r["id"] for r in existing] + ([receipt_id] if receipt_id else []),
                           "total": str(total), "key": key}


def sync_return(client: ServiceTitanClient, payload: dict) -> tuple[str, dict]:
    """Make ServiceTitan hold one return for the debit note of ``payload`` (shape as
    :func:`sync_purchase`): found by reference number and marker, else created. An existing
    return is left as it is (the API has no update of a return: ``detail["note"]`` says so when
    its lines differ). Returns ``(return id, detail)``."""
    key = payload["key"]
    purchase = Purchase.from_dict(payload["purchase"])
    lines = [MatchedLine.from_dict(x) for x in payload["lines"]]
    label = payload.get("source_label") or "source"
    found = find_return(client, key, purchase.number, since=payload.get("since"))
    if found is not None:
        have = Counter((int(i["skuId"]), Decimal(str(i["quantity"])), Decimal(str(i["cost"]))) for i in found["items"])
        want = Counter((x.sku_id, x.quantity, x.cost) for x in lines)
        detail = {"actions": ["found"], "return_number": found.get("number"), "key": key}
        if have != want:
            detail["note"] = (f"debit note {purchase.number} changed in {label}, but ServiceTitan's API cannot "
                              f"alter return {found.get('number')}: left as it is")
        return str(found["id"]), detail
    body = wire.return_request(vendor_id=int(payload["vendor_id"]), business_unit_id=int(payload["business_unit_id"]),
                               inventory_location_id=int(payload["inventory_location_id"]),
                               return_date=purchase.date or dt.date.today(),
                               items=[wire.ReturnLine(x.sku_id, x.quantity, x.cost, x.description) for x in lines],
                               reference_number=purchase.number,
                               memo=f"{label} debit note {purchase.number} {marker(key)}")
    return_id = client.create_return(body)
    return str(return_id), {"actions": ["created"], "key": key}


def cancel(client: ServiceTitanClient, payload: dict) -> tuple[str, dict]:
    """Cancel what ``payload["key"]`` made (``payload``: ``{"key", "reason", "known_id",
    "known_type", "since", "number"}``): a PO's active receipts, then the PO, each with reason
    ``Other`` and ``reason`` as memo; a PO already canceled is left. A return cannot be
    cancelled through the API: ``detail["note"]`` says so. Returns ``(id, detail)``; raises
    ``LookupError`` when ServiceTitan holds nothing for the key."""
    key, reason = payload["key"], payload.get("reason") or "cancelled at the source"
    if payload.get("known_type") != "return":
        po = find_po(client, key, known_id=payload.get("known_id") if payload.get("known_type") != "return" else None,
                     since=payload.get("since"))
        if po is not None:
            actions = []
            for receipt in _our_receipts(client, int(po["id"]), key):
                client.cancel_receipt(int(receipt["id"]), CANCEL_REASON, f"{reason} {marker(key)}")
                actions.append(f"receipt cancelled {receipt['id']}")
            if po.get("status") != "Canceled":
                client.cancel_purchase_order(int(po["id"]), CANCEL_REASON, reason)
                actions.append("canceled")
            else:
                actions.append("already canceled")
            return str(po["id"]), {"actions": actions, "po_number": po.get("number"), "reason": reason, "key": key,
                                   "target_type": "purchase_order"}
    found = find_return(client, key, payload.get("number") or "", since=payload.get("since"))
    if found is not None:
        return str(found["id"]), {"actions": ["left"], "key": key, "target_type": "return",
                                  "note": f"ServiceTitan's API has no cancellation of a return: return "
                                          f"{found.get('number')} stays ({reason})"}
    raise LookupError(key)


def _rejected(text: str):
    from connector_tasks.core.errors import RejectedError

    return RejectedError(text, system="servicetitan")
