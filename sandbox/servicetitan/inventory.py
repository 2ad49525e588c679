"""Inventory module: ``/inventory/v2/tenant/{tenant}/…`` (OAS ``tenant-inventory-v2.yml``).

Spec-covered operations served here (operation ids):

- ``Vendors_GetList`` GET vendors, ``Vendors_GetById`` GET vendors/{id}, ``Vendors_Create``
  POST vendors → 200 ``ModificationResponse``, ``Vendors_Update`` PATCH vendors/{id}
- ``PurchaseOrders_GetList``, ``PurchaseOrders_GetById``, ``PurchaseOrders_Create`` (→ ``{"id"}``),
  ``PurchaseOrders_Update`` (PATCH; "Every active PO item that is not on this list will be
  marked as inactive")
- ``PurchaseOrderTypes_GetList``, ``Warehouses_GetList``, ``Trucks_GetList``
- ``Receipts_Get``, ``Returns_Get``, ``Adjustments_Get``, ``Transfers_Get`` (lists only: the
  spec has no get-by-id and no create for adjustments and transfers, so neither does this
  emulator; they are filled through ``POST /_sandbox/seed``)

NOT in the spec snapshot — ASSUMPTION, source ServiceTitan v2 inventory API, https://developer.servicetitan.io/apis/ (newer than the spec snapshot) (newer generated clients,
e.g. montrellcruse/servicetitan-mcp, show them):

- ``POST receipts`` "Create a receipt for Purchase Order" (body ReceivePurchaseOrderRequest)
- ``PATCH receipts/{id}/cancellation`` (``canceledReason``)
- ``PATCH purchase-orders/{id}/cancellation``
- ``POST returns``

Their request/response shapes beyond what §8.2 lists are ASSUMPTIONs (each answers
``ModificationResponse`` ``{"id"}`` like the spec's creates).

Ignored query parameters (accepted, no effect): ``customFields.Fields``,
``customFields.Operator``, ``transferTypeIds`` (the emulator has no custom fields or transfer
types).
"""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, request

from . import accounting
from .common import (ADDRESS_RULES, Query, active_match, address_out, check, created_modified,
                     date_window, iso, json_body, json_response, money, not_found, now,
                     paginate, validation_error)
from .gateway import api
from .world import TenantData, World

bp = Blueprint("servicetitan_inventory", __name__, url_prefix="/inventory/v2/tenant/<int:tenant>")


@bp.url_value_preprocessor
def _drop_tenant(endpoint, values):
    values.pop("tenant", None)   # the gateway already resolved it into g.tenant_data


# OAS PurchaseOrderDeliveryOption
DELIVERY_OPTIONS = ("Manual", "EmailAsExcel", "EmailAsPdf", "EmailAsPdfRollupView", "Electronic",
                    "MarkAsSent", "EmailAsExcelAndPdf")
# ASSUMPTION: PO status words (the spec types ``status`` as a free string).
PO_PENDING, PO_SENT, PO_PARTIAL, PO_RECEIVED, PO_CANCELED = (
    "Pending", "Sent", "PartiallyReceived", "Received", "Canceled")
# ASSUMPTION: PO item status words, from "will be marked as inactive" (UpdatePurchaseOrderRequest).
ITEM_ACTIVE, ITEM_INACTIVE = "Active", "Inactive"
# §8.2: receipt cancellation reasons.
CANCEL_REASONS = ("NotRequired", "Duplicate", "Accidental", "VendorIssue", "Other", "JobCanceled")

EXTERNAL_DATA_RULES = {   # OAS Inventory.V2.ExternalDataUpdateRequest
    "applicationGuid": ("str", True, None),
    "externalData": ("list", True, {"key": ("str", True, None), "value": ("str", True, None)}),
}
_VENDOR_FIELDS = {
    "name": ("str", True, None), "active": ("bool", True, None), "memo": ("str", False, None),
    "firstName": ("str", False, None), "lastName": ("str", False, None),
    "phone": ("str", False, None), "email": ("str", False, None), "fax": ("str", False, None),
    "isTruckReplenishment": ("bool", True, None),
    "deliveryOption": ("enum", False, DELIVERY_OPTIONS), "taxRate": ("num", True, None),
    "restrictedMobileCreation": ("bool", True, None),
    "vendorQuickbooksItem": ("str", False, None), "paymentTermId": ("int", False, None),
    "remittanceVendorId": ("int", False, None), "address": ("obj", True, ADDRESS_RULES),
    "externalData": ("obj", False, EXTERNAL_DATA_RULES),
    "tags": ("list", False, {"tagTypeId": ("int", True, None)}),
}
#: OAS Inventory.V2.CreateVendorRequest (required: name, active, isTruckReplenishment, taxRate,
#: restrictedMobileCreation, address).
VENDOR_CREATE = dict(_VENDOR_FIELDS, vendorContacts=(
    "list", False, {"name": ("str", True, None), "email": ("str", True, None)}))
#: OAS Inventory.V2.UpdateVendorRequest: every property optional.
VENDOR_UPDATE = {k: (kind, False, extra) for k, (kind, _r, extra) in _VENDOR_FIELDS.items()}
VENDOR_UPDATE["vendorContacts"] = ("list", False, {"id": ("int", False, None),
                                                   "name": ("str", True, None),
                                                   "email": ("str", True, None)})

SHIP_TO_RULES = {"description": ("str", True, None),   # OAS Inventory.V2.CreateAddressRequest
                 "address": ("obj", True, ADDRESS_RULES)}
PO_ITEM_CREATE = {   # OAS Inventory.V2.CreatePurchaseOrderItemRequest
    "skuId": ("int", True, None), "description": ("str", True, None),
    "vendorPartNumber": ("str", True, None), "quantity": ("num", True, None),
    "cost": ("num", True, None)}
PO_CREATE = {   # OAS Inventory.V2.CreatePurchaseOrderRequest
    "vendorId": ("int", True, None), "typeId": ("int", True, None),
    "businessUnitId": ("int", True, None), "inventoryLocationId": ("int", True, None),
    "jobId": ("int", False, None), "technicianId": ("int", False, None),
    "projectId": ("int", False, None), "shipTo": ("obj", True, SHIP_TO_RULES),
    "vendorInvoiceNumber": ("str", False, None), "impactsTechnicianPayroll": ("bool", True, None),
    "memo": ("str", False, None), "date": ("datetime", True, None),
    "requiredOn": ("datetime", True, None), "tax": ("num", True, None),
    "shipping": ("num", True, None), "items": ("list", True, PO_ITEM_CREATE)}
PO_ITEM_UPDATE = dict(PO_ITEM_CREATE, id=("int", True, None))   # …UpdatePurchaseOrderItemRequest
#: OAS Inventory.V2.UpdatePurchaseOrderRequest: no required property; shipTo as
#: UpdateAddressRequest (description and address required inside).
PO_UPDATE = {k: (kind, False, extra) for k, (kind, _r, extra) in PO_CREATE.items()}
PO_UPDATE["items"] = ("list", False, PO_ITEM_UPDATE)

RECEIPT_ITEM = {   # §8.2 ReceivePurchaseOrderRequest.items (ASSUMPTION: types)
    "skuId": ("int", True, None), "quantity": ("num", True, None), "cost": ("num", True, None),
    "purchaseOrderItemId": ("int", False, None), "description": ("str", False, None),
    "vendorPartNumber": ("str", False, None)}
RECEIPT_CREATE = {   # §8.2 ReceivePurchaseOrderRequest (ASSUMPTION: not in the spec snapshot)
    "purchaseOrderId": ("int", True, None), "dateReceived": ("datetime", True, None),
    "tax": ("num", True, None), "shipping": ("num", True, None),
    "items": ("list", True, RECEIPT_ITEM), "jobId": ("int", False, None),
    "vendorDocumentNumber": ("str", False, None), "memo": ("str", False, None),
    "budgetCodeId": ("int", False, None)}
RECEIPT_CANCEL = {"canceledReason": ("enum", True, CANCEL_REASONS),   # §8.2
                  "memo": ("str", False, None)}                        # ASSUMPTION: memo
RETURN_ITEM = {"skuId": ("int", True, None), "quantity": ("num", True, None),
               "cost": ("num", True, None), "description": ("str", False, None)}
#: ASSUMPTION: §8.2 names ``POST returns`` without a body; this body mirrors the fields of
#: OAS Inventory.V2.InventoryReturnResponse.
RETURN_CREATE = {
    "vendorId": ("int", True, None), "businessUnitId": ("int", True, None),
    "inventoryLocationId": ("int", True, None), "returnDate": ("datetime", True, None),
    "items": ("list", True, RETURN_ITEM), "purchaseOrderId": ("int", False, None),
    "jobId": ("int", False, None), "referenceNumber": ("str", False, None),
    "memo": ("str", False, None), "tax": ("num", False, None), "shipping": ("num", False, None)}


def _err(errors: dict, key: str, msg: str) -> None:
    errors.setdefault(key, []).append(msg)


def _rows(table: dict) -> list:
    return [table[k] for k in sorted(table)]


def _material_or_error(td: TenantData, sku_id: int, errors: dict, key: str) -> dict | None:
    """OAS CreatePurchaseOrderItemRequest.skuId: "can be any active material or equipment"
    (the emulator's pricebook holds materials only)."""
    mat = td.materials.get(sku_id)
    if mat is None:
        _err(errors, key, f"SKU with id {sku_id} was not found.")
    elif not mat["active"]:
        _err(errors, key, f"SKU with id {sku_id} is not active.")
    return mat


def sku_name(mat: dict | None) -> str:
    """ASSUMPTION: an item's ``name``/``skuName`` is the material's displayName, else its code."""
    if not mat:
        return ""
    return mat.get("displayName") or mat["code"]


# ================================================================================== vendors
def external_data_out(store: dict, guid: str | None) -> list:
    """OAS Vendors_GetList ``externalDataApplicationGuid``: "If this guid is provided, external
    data corresponding to this application guid will be returned" (ASSUMPTION: otherwise ``[]``)."""
    if not guid:
        return []
    return [dict(e) for e in store.get(guid.lower(), [])]


def render_vendor(v: dict, guid: str | None = None) -> dict:
    """OAS Inventory.V2.VendorResponse (ASSUMPTION: absent strings render as ``""`` since the
    schema makes them required and non-nullable; ``deliveryOption`` defaults to ``Manual``)."""
    return {"id": v["id"], "name": v["name"], "active": v["active"],
            "isTruckReplenishment": v["isTruckReplenishment"],
            "isMobileCreationRestricted": v["restrictedMobileCreation"],
            "memo": v.get("memo") or "", "deliveryOption": v.get("deliveryOption") or "Manual",
            "defaultTaxRate": v["taxRate"],
            "contactInfo": {k: v.get(k) or "" for k in ("firstName", "lastName", "phone", "email", "fax")},
            "address": address_out(v.get("address")),
            "createdOn": iso(v["createdOn"]), "modifiedOn": iso(v["modifiedOn"]),
            "externalData": external_data_out(v["externalData"], guid)}


def _check_vendor_refs(w: World, td: TenantData, data: dict, errors: dict, self_id=None) -> None:
    if "name" in data:
        if not data["name"].strip():
            _err(errors, "name", "The name field is required.")   # ASSUMPTION: blank = missing
        elif w.config.get("unique_vendor_names", True) and any(
                v["name"].strip().lower() == data["name"].strip().lower() and v["id"] != self_id
                for v in td.vendors.values()):
            _err(errors, "name", f"Vendor with name '{data['name']}' already exists.")  # ASSUMPTION
    rem = data.get("remittanceVendorId")
    if rem is not None and rem not in td.vendors:
        _err(errors, "remittanceVendorId", f"Vendor with id {rem} was not found.")  # ASSUMPTION


def _store_external(store: dict, ext: dict | None) -> None:
    """§8.2: externalData has replace semantics: keys omitted are removed (per application guid)."""
    if ext:
        store[ext["applicationGuid"].lower()] = [{"key": e["key"], "value": e["value"]}
                                                 for e in ext["externalData"]]


def create_vendor(w: World, td: TenantData, data: dict) -> dict:
    """Store a validated CreateVendorRequest."""
    stamp = now()
    v = {"id": w.new_id(), "createdOn": stamp, "modifiedOn": stamp, "externalData": {},
         "vendorContacts": [], "tags": []}
    for k, val in data.items():
        if k != "externalData":
            v[k] = val
    v["vendorContacts"] = [dict(c, id=w.new_id()) for c in data.get("vendorContacts") or []]
    _store_external(v["externalData"], data.get("externalData"))
    td.vendors[v["id"]] = v
    return v


@bp.get("/vendors")
@api
def vendors_list(w: World, td: TenantData):
    """OAS Vendors_GetList: filters ``id``, ``externalDataApplicationGuid``, created/modified
    ranges; no name filter and no ``active`` filter (all vendors are listed, ASSUMPTION)."""
    q = Query(request.args)
    rows = _rows(td.vendors)
    one = q.int("id")
    if one is not None:
        rows = [r for r in rows if r["id"] == one]
    rows = created_modified(q, rows)
    guid = q.raw("externalDataApplicationGuid")
    return json_response(paginate(q, rows, lambda r: render_vendor(r, guid)))


@bp.get("/vendors/<int:vendor_id>")
@api
def vendors_get(w: World, td: TenantData, vendor_id: int):
    """OAS Vendors_GetById (404 for an unknown id)."""
    v = td.vendors.get(vendor_id)
    if v is None:
        raise not_found("Vendor", vendor_id)
    return json_response(render_vendor(v, request.args.get("externalDataApplicationGuid")))


@bp.post("/vendors")
@api
def vendors_create(w: World, td: TenantData):
    """OAS Vendors_Create: CreateVendorRequest → 200 ``{"id"}`` (ModificationResponse)."""
    errors: dict = {}
    data = check(json_body(), VENDOR_CREATE, errors)
    _check_vendor_refs(w, td, data, errors)
    if errors:
        raise validation_error(errors)
    return json_response({"id": create_vendor(w, td, data)["id"]})


@bp.patch("/vendors/<int:vendor_id>")
@api
def vendors_update(w: World, td: TenantData, vendor_id: int):
    """OAS Vendors_Update: UpdateVendorRequest (all optional) → 200 ``{"id"}``; only the given
    properties change; externalData is replaced for its application guid (§8.2)."""
    v = td.vendors.get(vendor_id)
    if v is None:
        raise not_found("Vendor", vendor_id)
    errors: dict = {}
    data = check(json_body(), VENDOR_UPDATE, errors)
    _check_vendor_refs(w, td, data, errors, self_id=vendor_id)
    if errors:
        raise validation_error(errors)
    for k, val in data.items():
        if k == "externalData":
            _store_external(v["externalData"], val)
        elif k == "vendorContacts":
            v[k] = [dict(c, id=c.get("id") or w.new_id()) for c in val]
        else:
            v[k] = val
    v["modifiedOn"] = now()
    return json_response({"id": vendor_id})


# ================================================================================== simple lists
def render_po_type(t: dict) -> dict:
    """OAS Inventory.V2.PurchaseOrderTypeResponse."""
    keys = ("id", "name", "active", "automaticallyReceive", "displayToTechnician",
            "impactToTechnicianPayroll", "allowTechniciansToSendPo",
            "defaultRequiredDateDaysOffset", "skipWeekends", "excludeTaxFromJobCosting")
    return {k: t[k] for k in keys}


def render_warehouse(wh: dict) -> dict:
    """OAS Inventory.V2.WarehouseResponse."""
    return {"id": wh["id"], "name": wh["name"], "active": wh["active"],
            "address": address_out(wh.get("address"))}


def render_truck(t: dict) -> dict:
    """OAS Inventory.V2.TruckResponse."""
    return {"id": t["id"], "name": t["name"], "active": t["active"], "memo": t.get("memo") or "",
            "warehouseId": t.get("warehouseId"), "technicianIds": list(t.get("technicianIds") or [])}


@bp.get("/purchase-order-types")
@api
def po_types_list(w: World, td: TenantData):
    """OAS PurchaseOrderTypes_GetList (paging only)."""
    q = Query(request.args)
    return json_response(paginate(q, _rows(td.po_types), render_po_type))


@bp.get("/warehouses")
@api
def warehouses_list(w: World, td: TenantData):
    """OAS Warehouses_GetList (paging only). Warehouses are inventory locations."""
    q = Query(request.args)
    return json_response(paginate(q, _rows(td.warehouses), render_warehouse))


@bp.get("/trucks")
@api
def trucks_list(w: World, td: TenantData):
    """OAS Trucks_GetList (paging only). Trucks are inventory locations too."""
    q = Query(request.args)
    return json_response(paginate(q, _rows(td.trucks), render_truck))


# ================================================================================== purchase orders
def po_total(po: dict) -> Decimal:
    """OAS PurchaseOrderResponse.total: "PO total, including items cost, tax and shipping cost"
    (ASSUMPTION: inactive items do not count)."""
    items = sum((i["quantity"] * i["cost"] for i in po["items"] if i["status"] == ITEM_ACTIVE),
                Decimal(0))
    return money(items + po["tax"] + po["shipping"])


def render_po(td: TenantData, po: dict) -> dict:
    """OAS Inventory.V2.PurchaseOrderResponse. ``vendorDocumentNumber`` is the create request's
    ``vendorInvoiceNumber`` (ASSUMPTION: the response has no vendorInvoiceNumber), ``summary``
    the memo; ``shipTo`` is the address only (AddressResponse)."""
    items = []
    for i in po["items"]:
        mat = td.materials.get(i["skuId"])
        items.append({"id": i["id"], "skuId": i["skuId"], "skuName": sku_name(mat),
                      "skuCode": mat["code"] if mat else "", "skuType": "Material",
                      "description": i["description"], "vendorPartNumber": i["vendorPartNumber"],
                      "quantity": i["quantity"], "quantityReceived": i["quantityReceived"],
                      "cost": i["cost"], "total": money(i["quantity"] * i["cost"]),
                      "serialNumbers": [], "status": i["status"], "chargeable": i["chargeable"]})
    return {"id": po["id"], "number": po["number"], "invoiceId": po.get("invoiceId"),
            "jobId": po.get("jobId"), "projectId": po.get("projectId"), "status": po["status"],
            "typeId": po["typeId"], "vendorId": po["vendorId"],
            "technicianId": po.get("technicianId"),
            "shipTo": address_out(po["shipTo"]["address"]),
            "businessUnitId": po["businessUnitId"], "inventoryLocationId": po["inventoryLocationId"],
            "batchId": po.get("batchId"), "vendorDocumentNumber": po.get("vendorDocumentNumber") or "",
            "date": iso(po["date"]), "requiredOn": iso(po["requiredOn"]),
            "sentOn": iso(po.get("sentOn")), "receivedOn": iso(po.get("receivedOn")),
            "createdOn": iso(po["createdOn"]), "modifiedOn": iso(po["modifiedOn"]),
            "total": po_total(po), "tax": po["tax"], "shipping": po["shipping"],
            "summary": po.get("memo") or "", "items": items, "customFields": []}


def _check_po_refs(td: TenantData, data: dict, errors: dict) -> None:
    """References of a PO body must exist (ASSUMPTION: 400 naming the field; the spec only says
    "check validation errors"); amounts must not be negative, quantities positive (ASSUMPTION)."""
    if "vendorId" in data:
        v = td.vendors.get(data["vendorId"])
        if v is None:
            _err(errors, "vendorId", f"Vendor with id {data['vendorId']} was not found.")
        elif not v["active"]:
            _err(errors, "vendorId", f"Vendor with id {data['vendorId']} is not active.")
    if "typeId" in data:
        t = td.po_types.get(data["typeId"])
        if t is None or not t["active"]:
            _err(errors, "typeId", f"Purchase order type with id {data['typeId']} was not found.")
    if "businessUnitId" in data:
        bu = td.business_units.get(data["businessUnitId"])
        if bu is None or not bu["active"]:
            _err(errors, "businessUnitId",
                 f"Business unit with id {data['businessUnitId']} was not found.")
    if "inventoryLocationId" in data and td.location(data["inventoryLocationId"]) is None:
        _err(errors, "inventoryLocationId",
             f"Inventory location with id {data['inventoryLocationId']} was not found.")
    for k in ("tax", "shipping"):
        if k in data and data[k] < 0:
            _err(errors, k, f"The field {k} must not be negative.")
    for n, item in enumerate(data.get("items") or []):
        if "skuId" in item:
            _material_or_error(td, item["skuId"], errors, f"items[{n}].skuId")
        if "quantity" in item and item["quantity"] <= 0:
            _err(errors, f"items[{n}].quantity", "The quantity must be greater than 0.")
        if "cost" in item and item["cost"] < 0:
            _err(errors, f"items[{n}].cost", "The cost must not be negative.")


def _new_po_item(w: World, item: dict) -> dict:
    return {"id": w.new_id(), "skuId": item["skuId"], "description": item["description"],
            "vendorPartNumber": item["vendorPartNumber"], "quantity": item["quantity"],
            "quantityReceived": Decimal(0), "cost": item["cost"], "status": ITEM_ACTIVE,
            "chargeable": False}   # ASSUMPTION: not chargeable unless set in ServiceTitan


def create_po(w: World, td: TenantData, data: dict) -> dict:
    """Store a validated CreatePurchaseOrderRequest; status ``Pending``. A PO whose type has
    ``automaticallyReceive`` is received in full at once (OAS PurchaseOrderTypeResponse
    ``automaticallyReceive``; CreatePurchaseOrderRequest.vendorInvoiceNumber: "you should provide
    it for auto-received POs"), its receipt carrying that vendor invoice number."""
    stamp = now()
    td.po_seq += 1
    po = {"id": w.new_id(), "number": str(td.po_seq), "status": PO_PENDING,
          "vendorDocumentNumber": data.get("vendorInvoiceNumber") or "",
          "createdOn": stamp, "modifiedOn": stamp, "sentOn": None, "receivedOn": None,
          "invoiceId": None, "batchId": None}
    for k in ("vendorId", "typeId", "businessUnitId", "inventoryLocationId", "jobId",
              "technicianId", "projectId", "shipTo", "impactsTechnicianPayroll", "memo", "date",
              "requiredOn", "tax", "shipping"):
        po[k] = data.get(k)
    po["items"] = [_new_po_item(w, i) for i in data["items"]]
    td.purchase_orders[po["id"]] = po
    if td.po_types[po["typeId"]]["automaticallyReceive"]:
        receive(w, td, po, {"dateReceived": po["date"], "tax": po["tax"], "shipping": po["shipping"],
                            "vendorDocumentNumber": data.get("vendorInvoiceNumber"),
                            "memo": po.get("memo"),
                            "items": [{"skuId": i["skuId"], "quantity": i["quantity"],
                                       "cost": i["cost"], "purchaseOrderItemId": i["id"]}
                                      for i in po["items"]]})
    return po


@bp.get("/purchase-orders")
@api
def po_list(w: World, td: TenantData):
    """OAS PurchaseOrders_GetList: ``ids``, ``status`` (ASSUMPTION: comma-separated, any case),
    ``number``, ``jobId``, ``technicianId``, ``projectId``, created/modified ranges,
    ``dateOnOrAfter/dateBefore``, ``sentOnOrAfter/sentBefore``."""
    q = Query(request.args)
    rows = _rows(td.purchase_orders)
    ids = q.ids()
    if ids is not None:
        rows = [r for r in rows if r["id"] in ids]
    statuses = q.strings("status")
    if statuses:
        rows = [r for r in rows if r["status"].lower() in statuses]
    if q.raw("number") is not None:
        rows = [r for r in rows if r["number"] == q.raw("number")]
    for key in ("jobId", "technicianId", "projectId"):
        val = q.int(key)
        if val is not None:
            rows = [r for r in rows if r.get(key) == val]
    rows = created_modified(q, rows)
    rows = date_window(q, rows, "date", "dateOnOrAfter", "dateBefore")
    rows = date_window(q, rows, "sentOn", "sentOnOrAfter", "sentBefore")
    return json_response(paginate(q, rows, lambda r: render_po(td, r)))


@bp.get("/purchase-orders/<int:po_id>")
@api
def po_get(w: World, td: TenantData, po_id: int):
    """OAS PurchaseOrders_GetById (404 for an unknown id)."""
    po = td.purchase_orders.get(po_id)
    if po is None:
        raise not_found("Purchase order", po_id)
    return json_response(render_po(td, po))


@bp.post("/purchase-orders")
@api
def po_create(w: World, td: TenantData):
    """OAS PurchaseOrders_Create: CreatePurchaseOrderRequest → 200 ``{"id"}``.
    ASSUMPTION: at least one item."""
    errors: dict = {}
    data = check(json_body(), PO_CREATE, errors)
    _check_po_refs(td, data, errors)
    if "items" in data and not data["items"]:
        _err(errors, "items", "The purchase order must have at least one item.")
    if errors:
        raise validation_error(errors)
    return json_response({"id": create_po(w, td, data)["id"]})


@bp.patch("/purchase-orders/<int:po_id>")
@api
def po_update(w: World, td: TenantData, po_id: int):
    """OAS PurchaseOrders_Update: UpdatePurchaseOrderRequest → 200 ``{"id"}``. Given properties
    replace; ``items`` is "List of new/updated PO items. Every active PO item that is not on
    this list will be marked as inactive". ASSUMPTIONS: an item ``id`` of 0 adds a new item; an
    id not on this PO is a 400; without ``items`` the items stay as they are; a canceled or
    fully received PO cannot be updated (400); ``vendorInvoiceNumber`` sets the PO's
    ``vendorDocumentNumber``; a quantity below what was already received is a 400."""
    po = td.purchase_orders.get(po_id)
    if po is None:
        raise not_found("Purchase order", po_id)
    errors: dict = {}
    data = check(json_body(), PO_UPDATE, errors)
    _check_po_refs(td, data, errors)
    if po["status"] in (PO_CANCELED, PO_RECEIVED):
        _err(errors, "id", f"Purchase order {po['number']} is {po['status'].lower()} and cannot be updated.")
    by_id = {i["id"]: i for i in po["items"]}
    for n, item in enumerate(data.get("items") or []):
        iid = item.get("id")
        if iid and iid not in by_id:
            _err(errors, f"items[{n}].id", f"Purchase order item with id {iid} was not found.")
        elif iid and "quantity" in item and item["quantity"] < by_id[iid]["quantityReceived"]:
            _err(errors, f"items[{n}].quantity", "The quantity is below the quantity received.")
    if errors:
        raise validation_error(errors)
    for k in ("vendorId", "typeId", "businessUnitId", "inventoryLocationId", "jobId",
              "technicianId", "projectId", "shipTo", "impactsTechnicianPayroll", "memo", "date",
              "requiredOn", "tax", "shipping"):
        if k in data:
            po[k] = data[k]
    if "vendorInvoiceNumber" in data:
        po["vendorDocumentNumber"] = data["vendorInvoiceNumber"]
    if "items" in data:
        listed = set()
        for item in data["items"]:
            if item.get("id"):
                cur = by_id[item["id"]]
                for k in ("skuId", "description", "vendorPartNumber", "quantity", "cost"):
                    cur[k] = item[k]
                cur["status"] = ITEM_ACTIVE
                listed.add(cur["id"])
            else:
                new = _new_po_item(w, item)
                po["items"].append(new)
                listed.add(new["id"])
        for cur in po["items"]:
            if cur["status"] == ITEM_ACTIVE and cur["id"] not in listed:
                cur["status"] = ITEM_INACTIVE
        _refresh_po_status(td, po)
    po["modifiedOn"] = now()
    return json_response({"id": po_id})


@bp.patch("/purchase-orders/<int:po_id>/cancellation")
@api
def po_cancel(w: World, td: TenantData, po_id: int):
    """ASSUMPTION (not in the spec snapshot; §8.2): ``PATCH purchase-orders/{id}/cancellation``,
    any or no body → 200 ``{"id"}``; status becomes ``Canceled``. ASSUMPTIONS: a PO with an
    active receipt cannot be canceled (400), nor one already canceled (400)."""
    po = td.purchase_orders.get(po_id)
    if po is None:
        raise not_found("Purchase order", po_id)
    if po["status"] == PO_CANCELED:
        raise validation_error({"id": [f"Purchase order {po['number']} is already canceled."]})
    if any(r["purchaseOrderId"] == po_id and r["active"] for r in td.receipts.values()):
        raise validation_error({"id": [f"Purchase order {po['number']} has receipts; cancel "
                                       f"them first."]})
    po["status"] = PO_CANCELED
    po["modifiedOn"] = now()
    return json_response({"id": po_id})


def _refresh_po_status(td: TenantData, po: dict) -> None:
    """ASSUMPTION: Received when every active item is fully received, PartiallyReceived when
    something is, else Pending (Sent if it was sent); receivedOn is the latest active
    receipt's date."""
    if po["status"] == PO_CANCELED:
        return
    active = [i for i in po["items"] if i["status"] == ITEM_ACTIVE]
    got = [i for i in po["items"] if i["quantityReceived"] > 0]
    if active and all(i["quantityReceived"] >= i["quantity"] for i in active):
        po["status"] = PO_RECEIVED
    elif got:
        po["status"] = PO_PARTIAL
    else:
        po["status"] = PO_SENT if po.get("sentOn") else PO_PENDING
    dates = [r["receivedOn"] for r in td.receipts.values()
             if r["purchaseOrderId"] == po["id"] and r["active"]]
    po["receivedOn"] = max(dates) if dates else None


# ================================================================================== receipts
def render_receipt(r: dict) -> dict:
    """OAS Inventory.V2.InventoryReceiptResponse (GL accounts null: the emulator keeps none)."""
    out = {k: r.get(k) for k in (
        "id", "active", "number", "vendorInvoiceNumber", "createdById", "memo", "purchaseOrderId",
        "billId", "jobId", "businessUnitId", "vendorId", "technicianId", "inventoryLocationId",
        "shipTo", "shipToDescription", "receiptAmount", "taxAmount", "shippingAmount", "batchId",
        "syncStatus", "customFields")}
    out.update(receivedOn=iso(r["receivedOn"]), createdOn=iso(r["createdOn"]),
               modifiedOn=iso(r["modifiedOn"]),
               items=[{k: i.get(k) for k in ("id", "skuId", "name", "code", "description",
                                              "quantity", "cost", "generalLedgerAccount",
                                              "costOfSaleAccount", "assetAccount")}
                      for i in r["items"]])
    return out


def receive(w: World, td: TenantData, po: dict, data: dict) -> dict:
    """Receive ``data`` (a validated ReceivePurchaseOrderRequest) against ``po``.

    ASSUMPTIONS: an item matches a PO item by ``purchaseOrderItemId`` or else the first active
    PO item with that ``skuId`` that still has quantity outstanding; an item matching none, or
    more than the outstanding quantity, is a 400; a canceled PO cannot be received. Effects:
    PO items' ``quantityReceived``, PO status and ``receivedOn``; stock on hand at the PO's
    inventory location grows; one inventory bill is generated (:mod:`.accounting`). The
    receipt's ``vendorInvoiceNumber`` is the body's ``vendorDocumentNumber``; its number is
    ``<PO number>-<n>``."""
    errors: dict = {}
    if po["status"] == PO_CANCELED:
        _err(errors, "purchaseOrderId", f"Purchase order {po['number']} is canceled.")
    for k in ("tax", "shipping"):
        if data.get(k) is not None and data[k] < 0:
            _err(errors, k, f"The field {k} must not be negative.")
    if not data.get("items"):
        _err(errors, "items", "The receipt must have at least one item.")
    by_id = {i["id"]: i for i in po["items"] if i["status"] == ITEM_ACTIVE}
    planned: dict[int, Decimal] = {}
    matches = []
    for n, item in enumerate(data.get("items") or []):
        key = f"items[{n}]"
        if item["quantity"] <= 0:
            _err(errors, f"{key}.quantity", "The quantity must be greater than 0.")
            continue
        if item["cost"] < 0:
            _err(errors, f"{key}.cost", "The cost must not be negative.")
        target = None
        if item.get("purchaseOrderItemId"):
            target = by_id.get(item["purchaseOrderItemId"])
            if target is None:
                _err(errors, f"{key}.purchaseOrderItemId",
                     f"Purchase order item with id {item['purchaseOrderItemId']} is not on "
                     f"purchase order {po['number']}.")
                continue
            if target["skuId"] != item["skuId"]:
                _err(errors, f"{key}.skuId", "The SKU differs from the purchase order item's.")
                continue
        else:
            same = [i for i in by_id.values() if i["skuId"] == item["skuId"]]
            open_ = [i for i in same if i["quantity"] - i["quantityReceived"]
                     - planned.get(i["id"], 0) > 0]
            target = (open_ or same or [None])[0]
            if target is None:
                _err(errors, f"{key}.skuId", f"SKU with id {item['skuId']} is not on purchase "
                                             f"order {po['number']}.")
                continue
        outstanding = target["quantity"] - target["quantityReceived"] - planned.get(target["id"], 0)
        if item["quantity"] > outstanding:
            _err(errors, f"{key}.quantity", f"The quantity {item['quantity']} exceeds the "
                                            f"outstanding quantity {outstanding}.")
            continue
        planned[target["id"]] = planned.get(target["id"], 0) + item["quantity"]
        matches.append((item, target))
    if errors:
        raise validation_error(errors)

    stamp = now()
    seq = sum(1 for r in td.receipts.values() if r["purchaseOrderId"] == po["id"]) + 1
    items, subtotal = [], Decimal(0)
    for item, target in matches:
        mat = td.materials.get(item["skuId"])
        target["quantityReceived"] += item["quantity"]
        td.add_on_hand(po["inventoryLocationId"], item["skuId"], item["quantity"])
        subtotal += item["quantity"] * item["cost"]
        items.append({"id": w.new_id(), "skuId": item["skuId"], "name": sku_name(mat),
                      "code": mat["code"] if mat else "",
                      "description": item.get("description") or target["description"],
                      "quantity": item["quantity"], "cost": item["cost"],
                      "purchaseOrderItemId": target["id"], "generalLedgerAccount": None,
                      "costOfSaleAccount": None, "assetAccount": None})
    tax, shipping = data.get("tax") or Decimal(0), data.get("shipping") or Decimal(0)
    receipt = {"id": w.new_id(), "active": True, "number": f"{po['number']}-{seq}",
               "vendorInvoiceNumber": data.get("vendorDocumentNumber") or "", "createdById": None,
               "memo": data.get("memo") or "", "purchaseOrderId": po["id"], "billId": None,
               "jobId": data.get("jobId") or po.get("jobId"), "businessUnitId": po["businessUnitId"],
               "vendorId": po["vendorId"], "technicianId": po.get("technicianId"),
               "inventoryLocationId": po["inventoryLocationId"],
               "shipTo": address_out(po["shipTo"]["address"]),
               "shipToDescription": po["shipTo"]["description"],
               "receiptAmount": money(subtotal + tax + shipping), "taxAmount": money(tax),
               "shippingAmount": money(shipping), "receivedOn": data["dateReceived"],
               "createdOn": stamp, "modifiedOn": stamp, "batchId": None, "syncStatus": "Pending",
               "items": items, "customFields": [], "budgetCodeId": data.get("budgetCodeId"),
               "canceledReason": None}
    td.receipts[receipt["id"]] = receipt
    receipt["billId"] = accounting.bill_for_receipt(w, td, receipt, po)["id"]
    _refresh_po_status(td, po)
    po["modifiedOn"] = stamp
    return receipt


@bp.get("/receipts")
@api
def receipts_list(w: World, td: TenantData):
    """OAS Receipts_Get: ``ids``, ``active`` (default True), ``number``, ``vendorInvoiceNumber``,
    ``billId``, ``batchId``, ``vendorIds``, ``businessUnitIds``, ``inventoryLocationIds``,
    ``purchaseOrderIds``, ``syncStatuses``, ``receivedOnOrAfter/receivedBefore``,
    created/modified ranges. ASSUMPTION: exact, case-sensitive matches for the text filters."""
    q = Query(request.args)
    mode = q.active()
    rows = [r for r in _rows(td.receipts) if active_match(mode, r["active"])]
    rows = _id_filters(q, rows, {"ids": "id", "vendorIds": "vendorId",
                                 "businessUnitIds": "businessUnitId",
                                 "inventoryLocationIds": "inventoryLocationId",
                                 "purchaseOrderIds": "purchaseOrderId"})
    for key, field in (("number", "number"), ("vendorInvoiceNumber", "vendorInvoiceNumber")):
        if q.raw(key) is not None:
            rows = [r for r in rows if r[field] == q.raw(key)]
    for key, field in (("billId", "billId"), ("batchId", "batchId")):
        val = q.int(key)
        if val is not None:
            rows = [r for r in rows if r.get(field) == val]
    rows = _sync_filter(q, rows)
    rows = date_window(q, rows, "receivedOn", "receivedOnOrAfter", "receivedBefore")
    rows = created_modified(q, rows)
    return json_response(paginate(q, rows, render_receipt))


def _id_filters(q: Query, rows: list, mapping: dict) -> list:
    for param, field in mapping.items():
        ids = q.ids(param, limit=50 if param == "ids" else None)
        if ids is not None:
            rows = [r for r in rows if r.get(field) in ids]
    return rows


def _sync_filter(q: Query, rows: list) -> list:
    wanted = q.strings("syncStatuses")
    if wanted:
        rows = [r for r in rows if (r.get("syncStatus") or "").lower() in wanted]
    return rows


@bp.post("/receipts")
@api
def receipts_create(w: World, td: TenantData):
    """ASSUMPTION (not in the spec snapshot; §8.2 "Create a receipt for Purchase Order"):
    ReceivePurchaseOrderRequest → 200 ``{"id"}``; see :func:`receive`. An unknown
    ``purchaseOrderId`` is a 400 on that field."""
    errors: dict = {}
    data = check(json_body(), RECEIPT_CREATE, errors)
    po = None
    if "purchaseOrderId" in data:
        po = td.purchase_orders.get(data["purchaseOrderId"])
        if po is None:
            _err(errors, "purchaseOrderId",
                 f"Purchase order with id {data['purchaseOrderId']} was not found.")
    if errors:
        raise validation_error(errors)
    return json_response({"id": receive(w, td, po, data)["id"]})


@bp.patch("/receipts/<int:receipt_id>/cancellation")
@api
def receipts_cancel(w: World, td: TenantData, receipt_id: int):
    """ASSUMPTION (not in the spec snapshot; §8.2): body ``{"canceledReason": NotRequired |
    Duplicate | Accidental | VendorIssue | Other | JobCanceled}`` (required, ASSUMPTION) →
    200 ``{"id"}``. The receipt turns inactive (``active=false``, so only ``active=False|Any``
    lists it); its quantities leave the PO items and the stock on hand, and its inventory bill
    is withdrawn. ASSUMPTIONS: canceling twice is a 400; so is canceling when the stock on hand
    would go negative."""
    r = td.receipts.get(receipt_id)
    if r is None:
        raise not_found("Receipt", receipt_id)
    errors: dict = {}
    data = check(json_body(), RECEIPT_CANCEL, errors)
    if not r["active"]:
        _err(errors, "id", f"Receipt {r['number']} is already canceled.")
    for item in r["items"]:
        have = td.on_hand.get((r["inventoryLocationId"], item["skuId"]), Decimal(0))
        if have < item["quantity"]:
            _err(errors, "id", f"Not enough stock of SKU {item['code']} left to cancel the receipt.")
    if errors:
        raise validation_error(errors)
    po = td.purchase_orders[r["purchaseOrderId"]]
    by_id = {i["id"]: i for i in po["items"]}
    for item in r["items"]:
        td.add_on_hand(r["inventoryLocationId"], item["skuId"], -item["quantity"])
        target = by_id.get(item["purchaseOrderItemId"])
        if target is not None:
            target["quantityReceived"] -= item["quantity"]
    r["active"] = False
    r["canceledReason"] = data["canceledReason"]
    if data.get("memo"):
        r["memo"] = data["memo"]
    r["modifiedOn"] = po["modifiedOn"] = now()
    accounting.withdraw_bill(td, r)
    _refresh_po_status(td, po)
    return json_response({"id": receipt_id})


# ================================================================================== returns
def render_return(r: dict) -> dict:
    """OAS Inventory.V2.InventoryReturnResponse."""
    out = {k: r.get(k) for k in (
        "id", "active", "number", "referenceNumber", "vendorId", "purchaseOrderId", "jobId",
        "businessUnitId", "inventoryLocationId", "createdById", "memo", "returnAmount",
        "taxAmount", "shippingAmount", "batchId", "syncStatus", "customFields")}
    out.update(returnDate=iso(r["returnDate"]), createdOn=iso(r["createdOn"]),
               modifiedOn=iso(r["modifiedOn"]),
               items=[{k: i.get(k) for k in ("id", "skuId", "name", "code", "description",
                                              "quantity", "cost", "generalLedgerAccount",
                                              "costOfSaleAccount", "assetAccount")}
                      for i in r["items"]])
    return out


@bp.get("/returns")
@api
def returns_list(w: World, td: TenantData):
    """OAS Returns_Get: ``ids``, ``active``, ``number``, ``referenceNumber``, ``jobId``,
    ``purchaseOrderId``, ``batchId``, ``vendorIds``, ``businessUnitIds``,
    ``inventoryLocationIds``, ``syncStatuses``, ``returnDateOnOrAfter/Before``,
    created/modified ranges."""
    q = Query(request.args)
    mode = q.active()
    rows = [r for r in _rows(td.returns) if active_match(mode, r["active"])]
    rows = _id_filters(q, rows, {"ids": "id", "vendorIds": "vendorId",
                                 "businessUnitIds": "businessUnitId",
                                 "inventoryLocationIds": "inventoryLocationId"})
    for key in ("number", "referenceNumber"):
        if q.raw(key) is not None:
            rows = [r for r in rows if r[key] == q.raw(key)]
    for key in ("jobId", "purchaseOrderId", "batchId"):
        val = q.int(key)
        if val is not None:
            rows = [r for r in rows if r.get(key) == val]
    rows = _sync_filter(q, rows)
    rows = date_window(q, rows, "returnDate", "returnDateOnOrAfter", "returnDateBefore")
    rows = created_modified(q, rows)
    return json_response(paginate(q, rows, render_return))


@bp.post("/returns")
@api
def returns_create(w: World, td: TenantData):
    """ASSUMPTION (not in the spec snapshot; §8.2 names ``POST returns``, no body): body
    :data:`RETURN_CREATE` → 200 ``{"id"}``. References must exist; stock on hand at the
    location must cover every item (ASSUMPTION) and is reduced. Number ``RT<n>``."""
    errors: dict = {}
    data = check(json_body(), RETURN_CREATE, errors)
    if "vendorId" in data and data["vendorId"] not in td.vendors:
        _err(errors, "vendorId", f"Vendor with id {data['vendorId']} was not found.")
    if "businessUnitId" in data and data["businessUnitId"] not in td.business_units:
        _err(errors, "businessUnitId", f"Business unit with id {data['businessUnitId']} was not found.")
    loc = data.get("inventoryLocationId")
    if loc is not None and td.location(loc) is None:
        _err(errors, "inventoryLocationId", f"Inventory location with id {loc} was not found.")
    if data.get("purchaseOrderId") and data["purchaseOrderId"] not in td.purchase_orders:
        _err(errors, "purchaseOrderId", f"Purchase order with id {data['purchaseOrderId']} was not found.")
    if "items" in data and not data["items"]:
        _err(errors, "items", "The return must have at least one item.")
    need: dict[int, Decimal] = {}
    for n, item in enumerate(data.get("items") or []):
        if "skuId" in item and item["skuId"] not in td.materials:
            _err(errors, f"items[{n}].skuId", f"SKU with id {item['skuId']} was not found.")
        if item.get("quantity") is not None and item["quantity"] <= 0:
            _err(errors, f"items[{n}].quantity", "The quantity must be greater than 0.")
        elif "skuId" in item and "quantity" in item:
            need[item["skuId"]] = need.get(item["skuId"], Decimal(0)) + item["quantity"]
    if loc is not None and not errors:
        for sku, qty in need.items():
            if td.on_hand.get((loc, sku), Decimal(0)) < qty:
                _err(errors, "items", f"Not enough stock of SKU {td.materials[sku]['code']} at "
                                      f"inventory location {loc}.")
    if errors:
        raise validation_error(errors)
    stamp = now()
    td.return_seq += 1
    items, subtotal = [], Decimal(0)
    for item in data["items"]:
        mat = td.materials[item["skuId"]]
        td.add_on_hand(loc, item["skuId"], -item["quantity"])
        subtotal += item["quantity"] * item["cost"]
        items.append({"id": w.new_id(), "skuId": item["skuId"], "name": sku_name(mat),
                      "code": mat["code"], "description": item.get("description") or mat["description"],
                      "quantity": item["quantity"], "cost": item["cost"],
                      "generalLedgerAccount": None, "costOfSaleAccount": None, "assetAccount": None})
    tax, shipping = data.get("tax") or Decimal(0), data.get("shipping") or Decimal(0)
    ret = {"id": w.new_id(), "active": True, "number": f"RT{td.return_seq}",
           "referenceNumber": data.get("referenceNumber") or "", "vendorId": data["vendorId"],
           "purchaseOrderId": data.get("purchaseOrderId"), "jobId": data.get("jobId"),
           "businessUnitId": data["businessUnitId"], "inventoryLocationId": loc,
           "createdById": None, "memo": data.get("memo") or "",
           "returnAmount": money(subtotal + tax + shipping), "taxAmount": money(tax),
           "shippingAmount": money(shipping), "returnDate": data["returnDate"],
           "createdOn": stamp, "modifiedOn": stamp, "batchId": None, "syncStatus": "Pending",
           "items": items, "customFields": []}
    td.returns[ret["id"]] = ret
    return json_response({"id": ret["id"]})


# ================================================================================== adjustments, transfers
def render_adjustment(a: dict) -> dict:
    """OAS Inventory.V2.InventoryAdjustmentResponse."""
    out = {k: a.get(k) for k in ("id", "active", "number", "referenceNumber", "type",
                                 "inventoryLocationId", "businessUnitId", "createdById", "memo",
                                 "batchId", "syncStatus", "customFields")}
    out.update(date=iso(a["date"]), createdOn=iso(a["createdOn"]), modifiedOn=iso(a["modifiedOn"]),
               items=[{k: i[k] for k in ("id", "skuId", "name", "code", "description", "quantity")}
                      for i in a["items"]])
    return out


def render_transfer(t: dict) -> dict:
    """OAS Inventory.V2.InventoryTransferResponse."""
    out = {k: t.get(k) for k in ("id", "transferType", "status", "number", "referenceNumber",
                                 "fromLocationId", "toLocationId", "createdById", "memo",
                                 "batchId", "syncStatus", "customFields")}
    out.update(date=iso(t["date"]), pickedDate=iso(t.get("pickedDate")),
               receivedDate=iso(t.get("receivedDate")), createdOn=iso(t["createdOn"]),
               modifiedOn=iso(t["modifiedOn"]),
               items=[{k: i[k] for k in ("id", "skuId", "name", "code", "description", "quantity")}
                      for i in t["items"]])
    return out


@bp.get("/adjustments")
@api
def adjustments_list(w: World, td: TenantData):
    """OAS Adjustments_Get: ``ids``, ``active``, ``number``, ``referenceNumber``, ``batchId``,
    ``inventoryLocationIds``, ``adjustmentTypes`` (ASSUMPTION: type names, any case),
    ``businessUnitIds``, ``syncStatuses``, ``dateOnOrAfter/dateBefore``, created/modified."""
    q = Query(request.args)
    mode = q.active()
    rows = [r for r in _rows(td.adjustments) if active_match(mode, r["active"])]
    rows = _id_filters(q, rows, {"ids": "id", "inventoryLocationIds": "inventoryLocationId",
                                 "businessUnitIds": "businessUnitId"})
    for key in ("number", "referenceNumber"):
        if q.raw(key) is not None:
            rows = [r for r in rows if r[key] == q.raw(key)]
    batch = q.int("batchId")
    if batch is not None:
        rows = [r for r in rows if r.get("batchId") == batch]
    types = q.strings("adjustmentTypes")
    if types:
        rows = [r for r in rows if r["type"].lower() in types]
    rows = _sync_filter(q, rows)
    rows = date_window(q, rows, "date", "dateOnOrAfter", "dateBefore")
    rows = created_modified(q, rows)
    return json_response(paginate(q, rows, render_adjustment))


@bp.get("/transfers")
@api
def transfers_list(w: World, td: TenantData):
    """OAS Transfers_Get: ``ids``, ``statuses``, ``number``, ``referenceNumber``, ``batchId``,
    ``fromLocationIds``, ``toLocationIds``, ``syncStatuses``, ``dateOnOrAfter/dateBefore``,
    created/modified (``transferTypeIds`` accepted and ignored)."""
    q = Query(request.args)
    rows = _id_filters(q, _rows(td.transfers), {"ids": "id", "fromLocationIds": "fromLocationId",
                                                "toLocationIds": "toLocationId"})
    statuses = q.strings("statuses")
    if statuses:
        rows = [r for r in rows if r["status"].lower() in statuses]
    for key in ("number", "referenceNumber"):
        if q.raw(key) is not None:
            rows = [r for r in rows if r[key] == q.raw(key)]
    batch = q.int("batchId")
    if batch is not None:
        rows = [r for r in rows if r.get("batchId") == batch]
    rows = _sync_filter(q, rows)
    rows = date_window(q, rows, "date", "dateOnOrAfter", "dateBefore")
    rows = created_modified(q, rows)
    return json_response(paginate(q, rows, render_transfer))
