"""ServiceTitan v2 wire format: exact-decimal JSON, error bodies, date-times, and the pure
request-body builders a flow calls with plain values.

Sources. The v2 OpenAPI specs (``tenant-inventory-v2.yml``, ``tenant-pricebook-v2.yml``,
``tenant-settings-v2.yml``, ``tenant-accounting-v2.yml``, servers ``https://api.servicetitan.io``;
public copies in https://github.com/compwright/servicetitan ``spec/``), cited below as "OAS" with
a schema or operation id. Endpoints that the spec snapshot lacks — ``POST receipts``,
``PATCH receipts/{id}/cancellation``, ``PATCH purchase-orders/{id}/cancellation``,
``POST returns`` — are built after newer generated clients of the official API, e.g.
https://github.com/montrellcruse/servicetitan-mcp (``src/domains/inventory/``), and every field
of theirs that no source spells out is marked ASSUMPTION.

Numbers. OAS types amounts, quantities and rates ``number`` ``format: decimal``; inventory
bills (``Accounting.V2.InventoryBillResponse``) send them as **strings**. Replies are read with
:func:`connector_tasks.core.client.parse_json` (fractions → ``Decimal``) and then
:func:`with_decimals` turns every field named in :data:`DECIMAL_FIELDS` into ``Decimal`` —
integers and numeric strings too — so callers never see a float or a string amount. Requests
are written with :func:`dumps`: a ``Decimal`` goes out digit for digit as a JSON number; a
``float`` is refused. Money is in the currency's units (e.g. ``Decimal("38.50")`` dollars).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Iterable, Mapping, Sequence

from connector_tasks.core.client import parse_json

#: Fields read as ``Decimal`` wherever they appear in a reply (OAS: every ``number`` /
#: ``format: decimal`` property of the inventory, pricebook and settings responses used here,
#: plus the string-typed amounts of ``Accounting.V2.InventoryBillResponse``).
DECIMAL_FIELDS = frozenset({
    "cost", "price", "memberPrice", "addOnPrice", "addOnMemberPrice", "commissionBonus", "hours",
    "defaultTaxRate", "taxRate", "quantity", "quantityReceived", "total", "tax", "shipping",
    "receiptAmount", "returnAmount", "taxAmount", "shippingAmount", "billAmount",
})

#: ``canceledReason`` values of a receipt (and, ASSUMPTION, of a purchase order) cancellation:
#: NotRequired, Duplicate, Accidental, VendorIssue, Other, JobCanceled
#: (https://github.com/montrellcruse/servicetitan-mcp, receipt and PO cancellation tools).
CANCEL_REASONS = ("NotRequired", "Duplicate", "Accidental", "VendorIssue", "Other", "JobCanceled")

#: OAS ``Inventory.V2.CreateVendorRequest.deliveryOption`` (``PurchaseOrderDeliveryOption``).
DELIVERY_OPTIONS = ("Manual", "EmailAsExcel", "EmailAsPdf", "EmailAsPdfRollupView", "Electronic",
                    "MarkAsSent", "EmailAsExcelAndPdf")

UTC = dt.timezone.utc


# ============================================================================ JSON
def _encode(obj: Any) -> str:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"non-finite number {obj!r}")
        return format(obj, "f")
    if isinstance(obj, float):
        raise TypeError(f"float {obj!r} refused; use Decimal")
    if isinstance(obj, Mapping):
        return "{" + ",".join(f"{json.dumps(str(k))}:{_encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(_encode(v) for v in obj) + "]"
    return json.dumps(obj)


def dumps(body: Any) -> str:
    """JSON text of ``body``; each ``Decimal`` is written as a plain JSON number digit for digit
    (``Decimal("38.50")`` → ``38.50``; OAS ``format: decimal``), never through a float.
    Raises ``TypeError`` on a ``float`` and ``ValueError`` on a non-finite ``Decimal``."""
    return _encode(body)


def _as_decimal(value: Any) -> Any:
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            return value
        return number if number.is_finite() else value
    return value


def with_decimals(value: Any) -> Any:
    """``value`` (a parsed reply) with every field of :data:`DECIMAL_FIELDS`, at any depth,
    as ``Decimal``: ints (``"tax": 10`` → ``Decimal(10)``) and numeric strings (inventory
    bills' ``"billAmount": "244.25"``) included; ``None``, booleans and non-numeric strings are
    left alone. Other fields are unchanged (ids stay ``int``). Returns a new structure."""
    if isinstance(value, list):
        return [with_decimals(v) for v in value]
    if isinstance(value, dict):
        return {k: (_as_decimal(v) if k in DECIMAL_FIELDS and not isinstance(v, (dict, list))
                    else with_decimals(v)) for k, v in value.items()}
    return value


def loads(text: str) -> Any:
    """A reply body: :func:`~connector_tasks.core.client.parse_json` then
    :func:`with_decimals`. Raises ``ValueError`` when ``text`` is not JSON."""
    return with_decimals(parse_json(text))


# ============================================================================ errors
def error_lines(text: str | None) -> list[str]:
    """The messages of an error reply, in order.

    * OAS ``ApiErrorResponse`` (``{"type","title","status","traceId","errors":{"field":["msg"]},
      "data"}``, "following RFC 7807"): one ``"<field>: <msg>"`` per message (``"<msg>"`` when
      the field is ``""``); its ``title`` when ``errors`` is empty;
    * an OAuth error (``{"error": "invalid_client", "error_description"?}``, RFC 6749 §5.2,
      https://www.rfc-editor.org/rfc/rfc6749#section-5.2): ``"invalid_client[: description]"``;
    * any other text (e.g. the 401 "Application key not present, check ST-App-Key header
      value."): the text itself, cut to 500 characters. Empty list for an empty body.
    """
    if not text or not text.strip():
        return []
    try:
        body = parse_json(text)
    except ValueError:
        return [text.strip()[:500]]
    if not isinstance(body, dict):
        return [str(body)[:500]]
    out: list[str] = []
    errors = body.get("errors")
    if isinstance(errors, dict):
        for field, messages in errors.items():
            for msg in messages if isinstance(messages, list) else [messages]:
                out.append(f"{field}: {msg}" if field else str(msg))
    if not out and body.get("error"):
        desc = body.get("error_description")
        out.append(f"{body['error']}: {desc}" if desc else str(body["error"]))
    if not out and body.get("title"):
        out.append(str(body["title"]))
    return out


def error_title(text: str | None) -> str | None:
    """``title`` of an ``ApiErrorResponse`` body (OAS), else ``None``."""
    try:
        body = parse_json(text) if text else None
    except ValueError:
        return None
    return str(body["title"]) if isinstance(body, dict) and body.get("title") else None


def oauth_error(text: str | None) -> str | None:
    """The ``error`` code of a token-endpoint reply (``"invalid_client"``,
    ``"unsupported_grant_type"``, RFC 6749 §5.2), else ``None``."""
    try:
        body = parse_json(text) if text else None
    except ValueError:
        return None
    return str(body["error"]) if isinstance(body, dict) and body.get("error") else None


# ============================================================================ values
def rfc3339(value: dt.datetime | dt.date | str) -> str:
    """An OAS ``format: date-time`` value: ``2026-03-02T00:00:00Z``.

    A ``datetime`` with an offset is converted to UTC; a naive one is taken as UTC; a ``date``
    is midnight UTC of that day (ASSUMPTION: ServiceTitan reads an offset-less PO or receipt
    date as that calendar day, so a flow passes the voucher's date); a ``str`` is passed through
    unchanged (the caller's own RFC 3339 text). Raises ``TypeError`` for anything else."""
    if isinstance(value, str):
        return value
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        text = aware.astimezone(UTC).isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return f"{value.isoformat()}T00:00:00Z"
    raise TypeError(f"not a date or datetime: {value!r}")


def decimal(value: Decimal | int | str, name: str) -> Decimal:
    """``value`` as a finite ``Decimal`` (an amount in the currency's units, a quantity or a
    rate). ``int`` and numeric ``str`` are accepted; ``float`` raises ``TypeError`` (it cannot
    hold cents exactly); anything else, or a non-finite number, ``ValueError`` naming ``name``."""
    if isinstance(value, float):
        raise TypeError(f"{name}: float {value!r} refused; use Decimal")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int) and not isinstance(value, bool):
        number = Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueError(f"{name}: {value!r} is not a number") from None
    else:
        raise ValueError(f"{name}: {value!r} is not a number")
    if not number.is_finite():
        raise ValueError(f"{name}: {value!r} is not a finite number")
    return number


def _positive(value: Decimal | int | str, name: str) -> Decimal:
    number = decimal(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be greater than 0 (got {number})")
    return number


def _not_negative(value: Decimal | int | str, name: str) -> Decimal:
    number = decimal(value, name)
    if number < 0:
        raise ValueError(f"{name} must not be negative (got {number})")
    return number


def _id(value: int, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int (got {value!r})")
    return value


def _put(body: dict, key: str, value: Any) -> None:
    """Set an optional property only when it has a value (OAS update schemas are not nullable)."""
    if value is not None:
        body[key] = value


@dataclass(frozen=True)
class Address:
    """OAS ``Inventory.V2.AddressRequest``: all six strings are required (``""`` for none).
    ``country`` is the "Country code" (e.g. ``"USA"``)."""

    street: str = ""
    unit: str = ""
    city: str = ""
    state: str = ""
    zip: str = ""
    country: str = ""

    def to_json(self) -> dict:
        """The six properties as OAS names them."""
        return {"street": self.street, "unit": self.unit, "city": self.city, "state": self.state,
                "zip": self.zip, "country": self.country}


@dataclass(frozen=True)
class PurchaseOrderLine:
    """One PO item: OAS ``Inventory.V2.CreatePurchaseOrderItemRequest`` (``id`` ``None``) or
    ``UpdatePurchaseOrderItemRequest`` (``id`` the existing PO item's id; ``0`` adds a new item
    on update, ASSUMPTION: the update schema requires ``id`` and says "new/updated PO items").

    ``sku_id``: a pricebook material or equipment id ("can be any active material or
    equipment"); ``quantity`` > 0; ``cost`` the unit cost (``Decimal``, currency units, >= 0);
    ``description`` and ``vendor_part_number`` are required strings (``""`` allowed).
    """

    sku_id: int
    quantity: Decimal
    cost: Decimal
    description: str
    vendor_part_number: str = ""
    id: int | None = None

    def to_json(self, *, update: bool = False) -> dict:
        """The item's properties; ``update`` adds ``id`` (``0`` when ``None``)."""
        body: dict = {}
        if update:
            body["id"] = _id(self.id if self.id is not None else 0, "items[].id")
        body.update({"skuId": _id(self.sku_id, "items[].skuId"),
                     "description": self.description,
                     "vendorPartNumber": self.vendor_part_number,
                     "quantity": _positive(self.quantity, "items[].quantity"),
                     "cost": _not_negative(self.cost, "items[].cost")})
        return body


@dataclass(frozen=True)
class ReceiptLine:
    """One received item of ``ReceivePurchaseOrderRequest.items`` (not in the spec snapshot;
    fields after https://github.com/montrellcruse/servicetitan-mcp): required ``skuId``,
    ``quantity`` (> 0), ``cost`` (unit cost, currency units); optional
    ``purchaseOrderItemId`` (which PO item is received — send it: a PO may hold one SKU on
    several items), ``description``, ``vendorPartNumber``."""

    sku_id: int
    quantity: Decimal
    cost: Decimal
    purchase_order_item_id: int | None = None
    description: str | None = None
    vendor_part_number: str | None = None

    def to_json(self) -> dict:
        """The item's properties (optional ones only when set)."""
        body = {"skuId": _id(self.sku_id, "items[].skuId"),
                "quantity": _positive(self.quantity, "items[].quantity"),
                "cost": _not_negative(self.cost, "items[].cost")}
        if self.purchase_order_item_id is not None:
            body["purchaseOrderItemId"] = _id(self.purchase_order_item_id, "items[].purchaseOrderItemId")
        _put(body, "description", self.description)
        _put(body, "vendorPartNumber", self.vendor_part_number)
        return body


@dataclass(frozen=True)
class ReturnLine:
    """One returned item (ASSUMPTION: ``skuId``, ``quantity`` > 0, ``cost`` unit cost in
    currency units, optional ``description`` — the item fields of OAS
    ``Inventory.V2.InventoryReturnResponse``; the create body is not in the spec snapshot)."""

    sku_id: int
    quantity: Decimal
    cost: Decimal
    description: str | None = None

    def to_json(self) -> dict:
        """The item's properties (``description`` only when set)."""
        body = {"skuId": _id(self.sku_id, "items[].skuId"),
                "quantity": _positive(self.quantity, "items[].quantity"),
                "cost": _not_negative(self.cost, "items[].cost")}
        _put(body, "description", self.description)
        return body


def _items(lines: Iterable, kind: type, **kw) -> list[dict]:
    out = []
    for line in lines:
        if not isinstance(line, kind):
            raise TypeError(f"items must be {kind.__name__} values (got {type(line).__name__})")
        out.append(line.to_json(**kw))
    if not out:
        raise ValueError("at least one item is required")
    return out


def _ship_to(description: str, address: Address) -> dict:
    """OAS ``Inventory.V2.CreateAddressRequest`` / ``UpdateAddressRequest``: ``description``
    ("like customer address or technician's truck") and the ``address``."""
    if not isinstance(address, Address):
        raise TypeError("ship_to_address must be an Address")
    return {"description": description, "address": address.to_json()}


# ============================================================================ request builders
def purchase_order_request(*, vendor_id: int, type_id: int, business_unit_id: int,
                           inventory_location_id: int, ship_to_description: str,
                           ship_to_address: Address, date: dt.date | dt.datetime | str,
                           required_on: dt.date | dt.datetime | str,
                           items: Sequence[PurchaseOrderLine], tax: Decimal | int | str = Decimal(0),
                           shipping: Decimal | int | str = Decimal(0),
                           impacts_technician_payroll: bool = False,
                           vendor_invoice_number: str | None = None, memo: str | None = None,
                           job_id: int | None = None, technician_id: int | None = None,
                           project_id: int | None = None) -> dict:
    """Body of ``PurchaseOrders_Create`` (OAS ``Inventory.V2.CreatePurchaseOrderRequest``).

    Always sent (the schema's required set): ``vendorId``, ``typeId`` (a purchase-order type),
    ``businessUnitId``, ``inventoryLocationId`` (a warehouse or truck: where the goods are
    stocked when received), ``shipTo`` {``description``, ``address``}, ``impactsTechnicianPayroll``,
    ``date`` and ``requiredOn`` (date-times, see :func:`rfc3339`), ``tax`` and ``shipping``
    (``Decimal`` currency units, >= 0), ``items`` (at least one :class:`PurchaseOrderLine`).
    Sent only when given: ``vendorInvoiceNumber`` ("you should provide it for auto-received
    POs" — the connector sends the source voucher number here so receipts and bills carry it),
    ``memo``, ``jobId``, ``technicianId``, ``projectId``. There is no ``externalData`` on a PO
    (the schema has ``additionalProperties: false``).

    Pure: no I/O. Raises ``TypeError`` (a float amount, a non-int id, a wrong item type) and
    ``ValueError`` (no items, quantity <= 0, a negative amount).
    """
    body = {"vendorId": _id(vendor_id, "vendorId"), "typeId": _id(type_id, "typeId"),
            "businessUnitId": _id(business_unit_id, "businessUnitId"),
            "inventoryLocationId": _id(inventory_location_id, "inventoryLocationId"),
            "shipTo": _ship_to(ship_to_description, ship_to_address),
            "impactsTechnicianPayroll": bool(impacts_technician_payroll),
            "date": rfc3339(date), "requiredOn": rfc3339(required_on),
            "tax": _not_negative(tax, "tax"), "shipping": _not_negative(shipping, "shipping"),
            "items": _items(items, PurchaseOrderLine)}
    _put(body, "vendorInvoiceNumber", vendor_invoice_number)
    _put(body, "memo", memo)
    for key, value in (("jobId", job_id), ("technicianId", technician_id), ("projectId", project_id)):
        if value is not None:
            body[key] = _id(value, key)
    return body


def purchase_order_update_request(*, items: Sequence[PurchaseOrderLine] | None = None,
                                  vendor_id: int | None = None, type_id: int | None = None,
                                  business_unit_id: int | None = None,
                                  inventory_location_id: int | None = None,
                                  ship_to_description: str | None = None,
                                  ship_to_address: Address | None = None,
                                  date: dt.date | dt.datetime | str | None = None,
                                  required_on: dt.date | dt.datetime | str | None = None,
                                  tax: Decimal | int | str | None = None,
                                  shipping: Decimal | int | str | None = None,
                                  impacts_technician_payroll: bool | None = None,
                                  vendor_invoice_number: str | None = None, memo: str | None = None,
                                  job_id: int | None = None, technician_id: int | None = None,
                                  project_id: int | None = None) -> dict:
    """Body of ``PurchaseOrders_Update`` (OAS ``Inventory.V2.UpdatePurchaseOrderRequest``,
    every property optional and none nullable, so only the given ones are sent).

    ``items``: **every** item the PO must keep, each :class:`PurchaseOrderLine` with the PO
    item's ``id`` (``0``/``None`` for a new item): OAS "List of new/updated PO items. Every
    active PO item that is not on this list will be marked as inactive". Omit ``items`` to
    leave the items alone. ``shipTo`` needs both ``ship_to_description`` and
    ``ship_to_address``. Amounts ``Decimal`` currency units. Pure; raises as
    :func:`purchase_order_request` (``ValueError`` also for half a ``shipTo``, or an empty
    body).
    """
    body: dict = {}
    for key, value in (("vendorId", vendor_id), ("typeId", type_id),
                       ("businessUnitId", business_unit_id),
                       ("inventoryLocationId", inventory_location_id), ("jobId", job_id),
                       ("technicianId", technician_id), ("projectId", project_id)):
        if value is not None:
            body[key] = _id(value, key)
    if (ship_to_description is None) != (ship_to_address is None):
        raise ValueError("shipTo needs both ship_to_description and ship_to_address")
    if ship_to_address is not None:
        body["shipTo"] = _ship_to(ship_to_description or "", ship_to_address)
    _put(body, "vendorInvoiceNumber", vendor_invoice_number)
    if impacts_technician_payroll is not None:
        body["impactsTechnicianPayroll"] = bool(impacts_technician_payroll)
    _put(body, "memo", memo)
    if date is not None:
        body["date"] = rfc3339(date)
    if required_on is not None:
        body["requiredOn"] = rfc3339(required_on)
    if tax is not None:
        body["tax"] = _not_negative(tax, "tax")
    if shipping is not None:
        body["shipping"] = _not_negative(shipping, "shipping")
    if items is not None:
        body["items"] = _items(items, PurchaseOrderLine, update=True)
    if not body:
        raise ValueError("an update needs at least one property")
    return body


def receipt_request(*, purchase_order_id: int, date_received: dt.date | dt.datetime | str,
                    items: Sequence[ReceiptLine], tax: Decimal | int | str = Decimal(0),
                    shipping: Decimal | int | str = Decimal(0),
                    vendor_document_number: str | None = None, memo: str | None = None,
                    job_id: int | None = None, budget_code_id: int | None = None) -> dict:
    """Body of ``POST /inventory/v2/tenant/{tenant}/receipts`` ("Create a receipt for Purchase
    Order", ``ReceivePurchaseOrderRequest``; not in the spec snapshot — fields after
    https://github.com/montrellcruse/servicetitan-mcp).

    Always sent (its required set): ``purchaseOrderId``, ``dateReceived`` (date-time),
    ``tax``, ``shipping`` (``Decimal`` currency units, >= 0), ``items`` (at least one
    :class:`ReceiptLine`). Only when given: ``vendorDocumentNumber`` (the vendor's invoice
    number: receipts are then found by ``vendorInvoiceNumber`` in ``Receipts_Get``, which is how
    a flow checks that a voucher was already received — ASSUMPTION that the list's
    ``vendorInvoiceNumber`` is this value), ``memo``, ``jobId``, ``budgetCodeId``. Pure;
    raises as :func:`purchase_order_request`.
    """
    body = {"purchaseOrderId": _id(purchase_order_id, "purchaseOrderId"),
            "dateReceived": rfc3339(date_received),
            "tax": _not_negative(tax, "tax"), "shipping": _not_negative(shipping, "shipping"),
            "items": _items(items, ReceiptLine)}
    _put(body, "vendorDocumentNumber", vendor_document_number)
    _put(body, "memo", memo)
    if job_id is not None:
        body["jobId"] = _id(job_id, "jobId")
    if budget_code_id is not None:
        body["budgetCodeId"] = _id(budget_code_id, "budgetCodeId")
    return body


def return_request(*, vendor_id: int, business_unit_id: int, inventory_location_id: int,
                   return_date: dt.date | dt.datetime | str, items: Sequence[ReturnLine],
                   purchase_order_id: int | None = None, job_id: int | None = None,
                   reference_number: str | None = None, memo: str | None = None,
                   tax: Decimal | int | str | None = None,
                   shipping: Decimal | int | str | None = None) -> dict:
    """Body of ``POST /inventory/v2/tenant/{tenant}/returns`` ("Create a Return"; not in the spec
    snapshot). ``vendorId``, ``businessUnitId``, ``inventoryLocationId`` (where the stock leaves
    from), ``purchaseOrderId``, ``jobId``, ``referenceNumber`` are the body fields the public
    clients list (https://github.com/montrellcruse/servicetitan-mcp); ASSUMPTION for the rest
    — ``returnDate`` (date-time), ``items`` (:class:`ReturnLine`), ``memo``, ``tax``,
    ``shipping`` — named as in OAS ``Inventory.V2.InventoryReturnResponse``.

    Always sent: ``vendorId``, ``businessUnitId``, ``inventoryLocationId``, ``returnDate``,
    ``items`` (at least one). Only when given: the others (``referenceNumber``: the source
    document's number, so a return is found again with ``Returns_Get referenceNumber``).
    Amounts ``Decimal`` currency units. Pure; raises as :func:`purchase_order_request`.
    """
    body = {"vendorId": _id(vendor_id, "vendorId"),
            "businessUnitId": _id(business_unit_id, "businessUnitId"),
            "inventoryLocationId": _id(inventory_location_id, "inventoryLocationId"),
            "returnDate": rfc3339(return_date), "items": _items(items, ReturnLine)}
    for key, value in (("purchaseOrderId", purchase_order_id), ("jobId", job_id)):
        if value is not None:
            body[key] = _id(value, key)
    _put(body, "referenceNumber", reference_number)
    _put(body, "memo", memo)
    if tax is not None:
        body["tax"] = _not_negative(tax, "tax")
    if shipping is not None:
        body["shipping"] = _not_negative(shipping, "shipping")
    return body


def cancellation_request(reason: str, memo: str | None = None) -> dict:
    """Body of ``PATCH receipts/{id}/cancellation`` and ``PATCH purchase-orders/{id}/cancellation``
    (not in the spec snapshot): ``{"canceledReason": <one of CANCEL_REASONS>}`` (receipts:
    https://github.com/montrellcruse/servicetitan-mcp; the same body for a PO is an ASSUMPTION
    that public listings of the newer spec support), plus ``memo`` when given (ASSUMPTION).
    Raises ``ValueError`` for a reason outside :data:`CANCEL_REASONS` (matched exactly)."""
    if reason not in CANCEL_REASONS:
        raise ValueError(f"canceledReason must be one of {', '.join(CANCEL_REASONS)} (got {reason!r})")
    body = {"canceledReason": reason}
    _put(body, "memo", memo)
    return body


def vendor_request(*, name: str, address: Address = Address(), tax_rate: Decimal | int | str = Decimal(0),
                   active: bool = True, is_truck_replenishment: bool = False,
                   restricted_mobile_creation: bool = False, memo: str | None = None,
                   email: str | None = None, phone: str | None = None,
                   delivery_option: str | None = None,
                   external_data: tuple[str, Mapping[str, str]] | None = None) -> dict:
    """Body of ``Vendors_Create`` (OAS ``Inventory.V2.CreateVendorRequest``).

    Always sent (required): ``name``, ``active``, ``isTruckReplenishment``, ``taxRate``
    (a ``Decimal`` fraction, e.g. ``Decimal("0.0825")``), ``restrictedMobileCreation``,
    ``address`` (:class:`Address`). Only when given: ``memo``, ``email``, ``phone``,
    ``deliveryOption`` (one of :data:`DELIVERY_OPTIONS`), ``externalData``
    (``(application guid, {key: value})`` → ``{"applicationGuid", "externalData": [{key,
    value}]}``). Pure; raises ``TypeError``/``ValueError`` for a bad rate or option."""
    if not name or not name.strip():
        raise ValueError("a vendor needs a name")
    if delivery_option is not None and delivery_option not in DELIVERY_OPTIONS:
        raise ValueError(f"deliveryOption must be one of {', '.join(DELIVERY_OPTIONS)}")
    body = {"name": name, "active": bool(active), "isTruckReplenishment": bool(is_truck_replenishment),
            "taxRate": _not_negative(tax_rate, "taxRate"),
            "restrictedMobileCreation": bool(restricted_mobile_creation), "address": address.to_json()}
    _put(body, "memo", memo)
    _put(body, "email", email)
    _put(body, "phone", phone)
    _put(body, "deliveryOption", delivery_option)
    if external_data is not None:
        guid, values = external_data
        body["externalData"] = {"applicationGuid": str(guid),
                                "externalData": [{"key": k, "value": v} for k, v in values.items()]}
    return body


def material_request(*, code: str, description: str, display_name: str | None = None,
                     cost: Decimal | int | str | None = None, price: Decimal | int | str | None = None,
                     active: bool = True, is_inventory: bool = True, unit_of_measure: str | None = None,
                     primary_vendor_id: int | None = None, vendor_part: str | None = None) -> dict:
    """Body of ``Materials_Create`` (OAS ``Pricebook.V2.MaterialCreateRequest``).

    Always sent: ``code`` (the SKU; required), ``description`` (required), ``active``,
    ``isInventory`` (stocked, so POs and receipts move it). Only when given: ``displayName``,
    ``cost`` and ``price`` (``Decimal`` currency units), ``unitOfMeasure``, ``primaryVendor``
    (OAS ``SkuVendorRequest``: ``vendorId``, ``cost`` — the material's cost, else 0 —,
    ``active: true``, ``vendorPart``). Pure; raises ``TypeError``/``ValueError``."""
    if not code or not code.strip() or not description or not description.strip():
        raise ValueError("a material needs a code and a description")
    body: dict = {"code": code, "description": description, "active": bool(active),
                  "isInventory": bool(is_inventory)}
    _put(body, "displayName", display_name)
    if cost is not None:
        body["cost"] = _not_negative(cost, "cost")
    if price is not None:
        body["price"] = _not_negative(price, "price")
    _put(body, "unitOfMeasure", unit_of_measure)
    if primary_vendor_id is not None:
        vendor = {"vendorId": _id(primary_vendor_id, "primaryVendor.vendorId"),
                  "cost": body.get("cost", Decimal(0)), "active": True}
        _put(vendor, "vendorPart", vendor_part)
        body["primaryVendor"] = vendor
    return body
