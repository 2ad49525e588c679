"""Pricebook module, materials only: ``/pricebook/v2/tenant/{tenant}/materials``
(OAS ``tenant-pricebook-v2.yml``).

Served: ``Materials_GetList`` (GET materials), ``Materials_Get`` (GET materials/{id}),
``Materials_Create`` (POST materials → **201** with the ``MaterialResponse``). Not served:
``Materials_Update``/``Materials_Delete`` and the other pricebook kinds.

A material's ``code`` is its SKU. §8.2 / OAS Materials_GetList: there is no code filter (ids,
active, dates, ``externalDataApplicationGuid``, ``sort`` only), so a client finds a code by
paging through the list.
"""
from __future__ import annotations

from decimal import Decimal

from flask import Blueprint, request

from .common import (Query, active_match, check, created_modified, iso, json_body, json_response,
                     not_found, now, paginate, validation_error)
from .gateway import api
from .world import TenantData, World

bp = Blueprint("servicetitan_pricebook", __name__, url_prefix="/pricebook/v2/tenant/<int:tenant>")


@bp.url_value_preprocessor
def _drop_tenant(endpoint, values):
    values.pop("tenant", None)


ASSET_TYPES = ("Other", "Image", "Video", "Attachment", "VideoFile")   # OAS Pricebook.V2.SkuAssetType
SUB_ACCOUNT = {"cost": ("num", True, None), "accountName": ("str", True, None)}  # …SkuVendorSubAccountRequest
SKU_VENDOR = {   # OAS Pricebook.V2.SkuVendorRequest
    "vendorId": ("int", True, None), "memo": ("str", False, None), "vendorPart": ("str", False, None),
    "cost": ("num", True, None), "active": ("bool", True, None),
    "primarySubAccount": ("obj", False, SUB_ACCOUNT), "otherSubAccounts": ("list", False, SUB_ACCOUNT)}
#: OAS Pricebook.V2.MaterialCreateRequest (required: code, description).
MATERIAL_CREATE = {
    "code": ("str", True, None), "displayName": ("str", False, None),
    "description": ("str", True, None), "cost": ("num", False, None), "active": ("bool", False, None),
    "price": ("num", False, None), "memberPrice": ("num", False, None),
    "addOnPrice": ("num", False, None), "addOnMemberPrice": ("num", False, None),
    "hours": ("num", False, None), "commissionBonus": ("num", False, None),
    "paysCommission": ("bool", False, None), "deductAsJobCost": ("bool", False, None),
    "unitOfMeasure": ("str", False, None), "isInventory": ("bool", False, None),
    "account": ("str", False, None), "costOfSaleAccount": ("str", False, None),
    "assetAccount": ("str", False, None), "taxable": ("bool", False, None),
    "primaryVendor": ("obj", False, SKU_VENDOR), "otherVendors": ("list", False, SKU_VENDOR),
    "assets": ("list", False, {"type": ("enum", True, ASSET_TYPES), "alias": ("str", False, None),
                               "url": ("str", True, None)}),
    "categories": ("list", False, None),
    "externalData": ("obj", False, {   # OAS Pricebook.V2.ExternalDataRequest
        "applicationGuid": ("str", True, None),
        "externalData": ("list", True, {"key": ("str", True, None), "value": ("str", True, None)})}),
}
SORT_FIELDS = {"id": "id", "code": "code", "displayname": "displayName", "createdon": "createdOn",
               "modifiedon": "modifiedOn", "price": "price", "memberprice": "memberPrice",
               "addonprice": "addOnPrice", "addonmemberprice": "addOnMemberPrice", "cost": "cost"}


def visible(mat: dict, guid: str | None) -> bool:
    """OAS Materials_GetList/Materials_Get ``externalDataApplicationGuid``: "Items that are
    created with a specific guid, could be fetched/updated/removed only when the same
    application guid is provided"."""
    owner = mat.get("createdWithGuid")
    return owner is None or (guid or "").lower() == owner


def _sku_vendor_out(td: TenantData, link: dict) -> dict:
    """OAS Pricebook.V2.SkuVendorResponse (``primarySubAccount`` null when none)."""
    vendor = td.vendors.get(link["vendorId"]) or {}
    sub = link.get("primarySubAccount")
    return {"id": link["id"], "vendorName": vendor.get("name", ""), "vendorId": link["vendorId"],
            "memo": link.get("memo"), "vendorPart": link.get("vendorPart"), "cost": link["cost"],
            "active": link["active"],
            "primarySubAccount": dict(sub) if sub else None,
            "otherSubAccounts": [dict(s) for s in link.get("otherSubAccounts") or []]}


def render_material(td: TenantData, m: dict, guid: str | None = None) -> dict:
    """OAS Pricebook.V2.MaterialResponse. ``externalData`` is returned for the requested
    application guid only (ASSUMPTION: null otherwise)."""
    ext = m["externalData"].get((guid or "").lower()) if guid else None
    return {"id": m["id"], "code": m["code"], "displayName": m.get("displayName"),
            "description": m["description"], "cost": m["cost"], "active": m["active"],
            "price": m["price"], "memberPrice": m["memberPrice"], "addOnPrice": m["addOnPrice"],
            "addOnMemberPrice": m["addOnMemberPrice"], "hours": m["hours"],
            "commissionBonus": m["commissionBonus"], "paysCommission": m["paysCommission"],
            "deductAsJobCost": m["deductAsJobCost"], "unitOfMeasure": m.get("unitOfMeasure"),
            "isInventory": m["isInventory"], "account": m.get("account"),
            "costOfSaleAccount": m.get("costOfSaleAccount"), "assetAccount": m.get("assetAccount"),
            "taxable": m.get("taxable"),
            "primaryVendor": _sku_vendor_out(td, m["primaryVendor"]) if m.get("primaryVendor") else None,
            "otherVendors": [_sku_vendor_out(td, v) for v in m.get("otherVendors") or []],
            "categories": list(m.get("categories") or []),
            "assets": [{"alias": a.get("alias"), "fileName": None, "type": a["type"], "url": a["url"]}
                       for a in m.get("assets") or []],
            "modifiedOn": iso(m["modifiedOn"]), "source": None, "externalId": None,
            "externalData": [dict(e) for e in ext] if ext is not None else None}


def create_material(w: World, td: TenantData, data: dict) -> dict:
    """Store a validated MaterialCreateRequest. ASSUMPTION: defaults of omitted properties:
    numbers 0, ``active`` true, booleans false."""
    stamp = now()
    m = {"id": w.new_id(), "createdOn": stamp, "modifiedOn": stamp, "externalData": {},
         "createdWithGuid": None}
    for k in ("cost", "price", "memberPrice", "addOnPrice", "addOnMemberPrice", "hours",
              "commissionBonus"):
        m[k] = data.get(k) if data.get(k) is not None else Decimal(0)
    for k in ("paysCommission", "deductAsJobCost", "isInventory"):
        m[k] = bool(data.get(k))
    m["active"] = data.get("active", True)
    for k in ("code", "displayName", "description", "unitOfMeasure", "account",
              "costOfSaleAccount", "assetAccount", "taxable", "categories", "assets"):
        m[k] = data.get(k)
    m["primaryVendor"] = dict(data["primaryVendor"], id=w.new_id()) if data.get("primaryVendor") else None
    m["otherVendors"] = [dict(v, id=w.new_id()) for v in data.get("otherVendors") or []]
    for link in [m["primaryVendor"], *m["otherVendors"]]:
        if link:
            if link.get("primarySubAccount"):
                link["primarySubAccount"] = dict(link["primarySubAccount"], id=w.new_id())
            link["otherSubAccounts"] = [dict(s, id=w.new_id()) for s in link.get("otherSubAccounts") or []]
    ext = data.get("externalData")
    if ext:
        guid = ext["applicationGuid"].lower()
        m["externalData"][guid] = [{"key": e["key"], "value": e["value"]} for e in ext["externalData"]]
        m["createdWithGuid"] = guid
    td.materials[m["id"]] = m
    return m


def check_material(w: World, td: TenantData, data: dict, errors: dict) -> None:
    """ASSUMPTIONS: a blank code or description is missing; codes are unique per tenant
    (case-insensitive, config ``unique_material_codes``); vendors referenced must exist;
    categories must be integers."""
    for k in ("code", "description"):
        if k in data and not data[k].strip():
            errors.setdefault(k, []).append(f"The {k} field is required.")
    code = (data.get("code") or "").strip().lower()
    if code and w.config.get("unique_material_codes", True) and any(
            m["code"].strip().lower() == code for m in td.materials.values()):
        errors.setdefault("code", []).append(f"Code '{data['code']}' is already in use.")
    links = [("primaryVendor", data.get("primaryVendor"))]
    links += [(f"otherVendors[{n}]", v) for n, v in enumerate(data.get("otherVendors") or [])]
    for key, link in links:
        if link and "vendorId" in link and link["vendorId"] not in td.vendors:
            errors.setdefault(f"{key}.vendorId", []).append(
                f"Vendor with id {link['vendorId']} was not found.")
    for n, c in enumerate(data.get("categories") or []):
        if isinstance(c, bool) or not isinstance(c, int):
            errors.setdefault(f"categories[{n}]", []).append(
                "The JSON value could not be converted to an integer (int64).")


@bp.get("/materials")
@api
def materials_list(w: World, td: TenantData):
    """OAS Materials_GetList: ``ids``, ``active`` (default True), created/modified ranges,
    ``externalDataApplicationGuid``, ``sort`` (``+Field``/``-Field``; ASSUMPTION: an
    unsupported field is a 400; a leading space stands for ``+`` as an unencoded plus decodes)."""
    q = Query(request.args)
    guid = q.raw("externalDataApplicationGuid")
    mode = q.active()
    rows = [td.materials[k] for k in sorted(td.materials)]
    rows = [m for m in rows if visible(m, guid) and active_match(mode, m["active"])]
    ids = q.ids()
    if ids is not None:
        rows = [m for m in rows if m["id"] in ids]
    rows = created_modified(q, rows)
    sort = q.raw("sort")
    if sort:
        desc = sort.startswith("-")
        field = SORT_FIELDS.get(sort.lstrip("+- ").lower())
        if field is None:
            q.errors.setdefault("sort", []).append(f"Sorting by '{sort}' is not supported.")
        else:
            def key(m):
                value = m.get(field)
                return (value is None, value.lower() if isinstance(value, str) else value)
            rows = sorted(rows, key=key, reverse=desc)
    return json_response(paginate(q, rows, lambda m: render_material(td, m, guid)))


@bp.get("/materials/<int:material_id>")
@api
def materials_get(w: World, td: TenantData, material_id: int):
    """OAS Materials_Get (404 for an unknown id, or one hidden by its application guid)."""
    guid = request.args.get("externalDataApplicationGuid")
    m = td.materials.get(material_id)
    if m is None or not visible(m, guid):
        raise not_found("Material", material_id)
    return json_response(render_material(td, m, guid))


@bp.post("/materials")
@api
def materials_create(w: World, td: TenantData):
    """OAS Materials_Create: MaterialCreateRequest → **201** ``MaterialResponse``."""
    errors: dict = {}
    data = check(json_body(), MATERIAL_CREATE, errors)
    check_material(w, td, data, errors)
    if errors:
        raise validation_error(errors)
    m = create_material(w, td, data)
    guid = next(iter(m["externalData"]), None)
    return json_response(render_material(td, m, guid), 201)
