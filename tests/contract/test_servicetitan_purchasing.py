"""The purchase side of the ServiceTitan connector (``connectors/servicetitan/purchasing.py``)
against the emulator over HTTP, every exchange validated against the public v2 spec (or, for
the endpoints beyond the snapshot, the ``ModificationResponse`` shape): a voucher's PO and
receipt exactly once, found again by the marker after a lost answer, an update resending every
item (a dropped one turns inactive), received POs re-received after an alteration, cancellation,
and a return found by its reference number."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from connector_tasks.connectors.servicetitan import purchasing
from connector_tasks.core.errors import TransientApiError
from connector_tasks.domain.purchases import MatchedLine, Purchase, PurchaseLine
from tests.contract.test_servicetitan_client import connect, emu, emulator, exchanges, refs  # noqa: F401

KEY = "tallyprime-purchase-guid-1"


def payload(r: dict, lines: list[tuple[str, str, str]], *, kind="purchase", number="7", vendor="Ferguson Enterprises",
            key=KEY) -> dict:
    purchase = Purchase(source_id="guid-1", kind=kind, number=number, date=dt.date(2026, 3, 2), party=vendor,
                        reference=f"INV-{number}",
                        lines=tuple(PurchaseLine(code, code, Decimal(q), "Nos", Decimal(c), Decimal(q) * Decimal(c))
                                    for code, q, c in lines))
    return {"key": key, "purchase": purchase.to_dict(), "vendor_id": r["vendor"][vendor],
            "lines": [MatchedLine(r["sku"][code], code, Decimal(q), Decimal(c), code).to_dict() for code, q, c in lines],
            "business_unit_id": r["bu"], "po_type_id": r["type"], "inventory_location_id": r["warehouse"],
            "ship_to": "Main Warehouse", "known_id": None, "since": None, "source_label": "TallyPrime",
            "number": number}


def mine(emu, key=KEY):
    t = next(iter(emu.state()["tenants"].values()))
    pos = [p for p in t["purchase_orders"] if f"[mlc:{key}]" in p["summary"]]
    return pos, [r for r in t["receipts"] if any(r["purchaseOrderId"] == p["id"] for p in pos)], t


def active(po) -> list[tuple[int, Decimal, Decimal]]:
    return sorted((i["skuId"], Decimal(str(i["quantity"])), Decimal(str(i["cost"])))
                  for i in po["items"] if i["status"] == "Active")


def test_po_and_receipt_exactly_once(emu, connect):
    client = connect(emu)
    r = refs(client)
    body = payload(r, [("CU-PIPE-075", "10", "38.50"), ("FLT-16252", "4", "9.75")])
    po_id, detail = purchasing.sync_purchase(client, body)
    assert detail["actions"][0] == "created" and detail["actions"][1].startswith("received ")
    assert detail["po_status"] == "Received" and Decimal(detail["total"]) == Decimal("424.00")
    again_id, again = purchasing.sync_purchase(client, body)
    assert again_id == po_id and again["actions"] == ["found", "unchanged"]
    pos, receipts, _ = mine(emu)
    assert len(pos) == 1 and len(receipts) == 1 and receipts[0]["vendorInvoiceNumber"] == "INV-7"


def test_a_lost_create_answer_is_found_by_the_marker(emu, connect):
    client = connect(emu)
    r = refs(client)
    emu.fault(status=503, when="after", method="POST", path="purchase-orders")
    body = payload(r, [("CAP-45-5", "2", "14.20")])
    with pytest.raises(TransientApiError):
        purchasing.sync_purchase(client, body)
    assert len(mine(emu)[0]) == 1          # ServiceTitan made it; we never heard
    _, detail = purchasing.sync_purchase(client, body)
    assert detail["actions"][0] == "found"
    pos, receipts, _ = mine(emu)
    assert len(pos) == 1 and len(receipts) == 1 and pos[0]["status"] == "Received"


def test_alteration_after_receipt_cancels_updates_and_receives_again(emu, connect):
    client = connect(emu)
    r = refs(client)
    po_id, _ = purchasing.sync_purchase(client, payload(r, [("CU-PIPE-075", "10", "38.50"), ("FLT-16252", "4", "9.75")]))
    _, detail = purchasing.sync_purchase(client, payload(r, [("CU-PIPE-075", "12", "38.40")]))
    assert detail["actions"][:1] == ["found"] and "updated" in detail["actions"]
    pos, receipts, _ = mine(emu)
    [po] = pos
    assert active(po) == [(r["sku"]["CU-PIPE-075"], Decimal("12"), Decimal("38.40"))]
    assert [i["status"] for i in po["items"] if i["skuId"] == r["sku"]["FLT-16252"]] == ["Inactive"]
    assert sorted(x["active"] for x in receipts) == [False, True] and po["status"] == "Received"


def test_cancel_cancels_receipts_then_the_po_and_is_idempotent(emu, connect):
    client = connect(emu)
    r = refs(client)
    po_id, _ = purchasing.sync_purchase(client, payload(r, [("CAP-45-5", "1", "14.20")]))
    cancel = {"key": KEY, "reason": "purchase voucher 7 was deleted in TallyPrime", "known_id": po_id, "since": None}
    _, detail = purchasing.cancel(client, cancel)
    assert detail["actions"][-1] == "canceled" and detail["actions"][0].startswith("receipt cancelled")
    _, again = purchasing.cancel(client, cancel)
    assert again["actions"] == ["already canceled"]
    pos, receipts, _ = mine(emu)
    assert pos[0]["status"] == "Canceled" and [x["active"] for x in receipts] == [False]
    with pytest.raises(LookupError):
        purchasing.cancel(client, {**cancel, "key": "nothing-made", "known_id": None})


def test_a_return_once_by_reference_number(emu, connect):
    client = connect(emu)
    r = refs(client)
    purchasing.sync_purchase(client, payload(r, [("FLT-16252", "4", "9.75")]))
    body = payload(r, [("FLT-16252", "1", "9.75")], kind="return", number="DN-3", key="tallyprime-purchase-dn")
    ret_id, detail = purchasing.sync_return(client, body)
    assert detail["actions"] == ["created"]
    again_id, again = purchasing.sync_return(client, body)
    assert again_id == ret_id and again["actions"] == ["found"] and "note" not in again
    changed = payload(r, [("FLT-16252", "2", "9.75")], kind="return", number="DN-3", key="tallyprime-purchase-dn")
    assert "cannot alter return" in purchasing.sync_return(client, changed)[1]["note"]
    returns = [x for x in mine(emu)[2]["returns"] if x["referenceNumber"] == "DN-3"]
    assert len(returns) == 1
