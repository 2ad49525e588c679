"""Accounting module, inventory bills only: ``GET /accounting/v2/tenant/{tenant}/inventory-bills``
(OAS ``tenant-accounting-v2.yml``, operation ``InventoryBills_GetList``).

Read-only: this spec snapshot has no create endpoint for inventory bills (§5 "inventory bills
cannot be created via this API version"). Here a bill is generated for every receipt
(ASSUMPTION: one bill per receipt, as ServiceTitan bills received POs) and withdrawn when the
receipt is canceled (ASSUMPTION).

Shape quirk kept from the spec: the 200 answer of ``InventoryBills_GetList`` is a plain JSON
**array** of ``Accounting.V2.InventoryBillResponse`` (no page envelope), and the bill's amounts
and item quantities/costs are **strings** (``billAmount: type string``). ``page``/``pageSize``
still slice the array (ASSUMPTION); ``includeTotal`` has nowhere to go and is ignored.
"""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, request

from .common import Query, created_modified, iso, json_response, money, page_params
from .gateway import api
from .world import TenantData, World

bp = Blueprint("servicetitan_accounting", __name__, url_prefix="/accounting/v2/tenant/<int:tenant>")


@bp.url_value_preprocessor
def _drop_tenant(endpoint, values):
    values.pop("tenant", None)


def _amount(value: Decimal) -> str:
    return str(money(value))


def _quantity(value: Decimal) -> str:
    return format(Decimal(value).normalize(), "f")


def bill_for_receipt(w: World, td: TenantData, receipt: dict, po: dict) -> dict:
    """Generate the inventory bill of ``receipt``. ASSUMPTIONS: ``referenceNumber`` is the
    vendor's invoice number (the receipt's ``vendorInvoiceNumber``, else the receipt number);
    ``billDate`` the receipt date; ``syncStatus`` ``Pending``; no terms or due date; ``summary``
    the receipt memo; ``createdBy`` null (created through the API)."""
    vendor = td.vendors.get(po["vendorId"]) or {}
    bu = td.business_units.get(po["businessUnitId"]) or {}
    loc = td.location(po["inventoryLocationId"]) or {}
    stamp = receipt["createdOn"]
    bill = {"id": w.new_id(), "purchaseOrderId": po["id"], "syncStatus": "Pending",
            "referenceNumber": receipt["vendorInvoiceNumber"] or receipt["number"],
            "vendorNumber": None, "summary": receipt["memo"] or None,
            "billDate": receipt["receivedOn"], "billAmount": receipt["receiptAmount"],
            "taxAmount": receipt["taxAmount"], "shippingAmount": receipt["shippingAmount"],
            "createdBy": None, "createdOn": stamp, "modifiedOn": stamp, "termName": None,
            "dueDate": None, "shipToDescription": receipt["shipToDescription"], "batch": None,
            "businessUnit": {"id": bu["id"], "name": bu.get("name")} if bu else None,
            "vendor": {"id": vendor["id"], "name": vendor.get("name")} if vendor else None,
            "shipTo": dict(receipt["shipTo"]),
            "items": [{"order": n, "name": i["name"], "description": i["description"],
                       "quantity": i["quantity"], "cost": i["cost"],
                       "inventoryLocation": loc.get("name"), "serialNumber": None,
                       "generalLedgerAccount": None, "costOfSaleAccount": None,
                       "assetAccount": None}
                      for n, i in enumerate(receipt["items"], 1)],
            "customFields": [], "jobId": receipt.get("jobId"), "jobNumber": None,
            "receiptId": receipt["id"], "purchaseOrderNumber": po["number"],
            "purchaseOrderTypeId": po["typeId"], "businessUnitId": po["businessUnitId"]}
    td.bills[bill["id"]] = bill
    return bill


def withdraw_bill(td: TenantData, receipt: dict) -> None:
    """The canceled receipt's bill disappears (ASSUMPTION)."""
    td.bills.pop(receipt.get("billId"), None)


def render_bill(b: dict) -> dict:
    """OAS Accounting.V2.InventoryBillResponse (amounts, quantities and costs as strings)."""
    return {"id": b["id"], "purchaseOrderId": b["purchaseOrderId"], "syncStatus": b["syncStatus"],
            "referenceNumber": b["referenceNumber"], "vendorNumber": b["vendorNumber"],
            "summary": b["summary"], "billDate": iso(b["billDate"]),
            "billAmount": _amount(b["billAmount"]), "taxAmount": _amount(b["taxAmount"]),
            "shippingAmount": _amount(b["shippingAmount"]), "createdBy": b["createdBy"],
            "createdOn": iso(b["createdOn"]), "termName": b["termName"],
            "dueDate": iso(b["dueDate"]), "shipToDescription": b["shipToDescription"],
            "batch": b["batch"], "businessUnit": b["businessUnit"], "vendor": b["vendor"],
            "shipTo": b["shipTo"],
            "items": [dict(i, quantity=_quantity(i["quantity"]), cost=_amount(i["cost"]))
                      for i in b["items"]],
            "customFields": [], "jobId": b["jobId"], "jobNumber": b["jobNumber"]}


@bp.get("/inventory-bills")
@api
def inventory_bills_list(w: World, td: TenantData):
    """OAS InventoryBills_GetList: ``ids``, ``batchId``, ``billNumber`` (ASSUMPTION: the
    ``referenceNumber``), ``businessUnitIds``, ``dateFrom``/``dateTo`` (ASSUMPTION: bill date,
    both inclusive), ``jobNumber``, ``purchaseOrderNumber``, ``purchaseOrderTypes`` (ASSUMPTION:
    PO type ids), ``syncStatuses`` (array, repeated parameter or comma-separated),
    ``minCost``/``maxCost`` (ASSUMPTION: on the bill amount), created/modified ranges.
    ``batchNumber`` and ``customField.*`` are accepted and ignored (no batches here)."""
    q = Query(request.args)
    rows = [td.bills[k] for k in sorted(td.bills)]
    ids = q.ids()
    if ids is not None:
        rows = [b for b in rows if b["id"] in ids]
    bu_ids = q.ids("businessUnitIds", limit=None)
    if bu_ids is not None:
        rows = [b for b in rows if b["businessUnitId"] in bu_ids]
    types = q.ids("purchaseOrderTypes", limit=None)
    if types is not None:
        rows = [b for b in rows if b["purchaseOrderTypeId"] in types]
    if q.int("batchId") is not None:
        rows = [b for b in rows if (b["batch"] or {}).get("id") == q.int("batchId")]
    for key, field in (("billNumber", "referenceNumber"), ("jobNumber", "jobNumber"),
                       ("purchaseOrderNumber", "purchaseOrderNumber")):
        if q.raw(key) is not None:
            rows = [b for b in rows if b[field] == q.raw(key)]
    statuses = q.strings("syncStatuses")
    if statuses:
        rows = [b for b in rows if b["syncStatus"].lower() in statuses]
    lo, hi = q.num("minCost"), q.num("maxCost")
    if lo is not None:
        rows = [b for b in rows if b["billAmount"] >= lo]
    if hi is not None:
        rows = [b for b in rows if b["billAmount"] <= hi]
    d_from, d_to = q.datetime("dateFrom"), q.datetime("dateTo")
    if d_from is not None:
        rows = [b for b in rows if b["billDate"] >= d_from]
    if d_to is not None:
        rows = [b for b in rows if b["billDate"] <= d_to]
    rows = created_modified(q, rows)
    page, size, _total = page_params(q)
    q.done()
    start = (page - 1) * size
    return json_response([render_bill(b) for b in rows[start:start + size]])

