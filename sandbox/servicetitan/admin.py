"""Sandbox-only admin routes under ``/_sandbox/`` (NOT ServiceTitan; tests, demos, benchmarks).
They need no credentials, are not logged, rate limited or faulted.

- ``GET  /_sandbox/state`` — per tenant: vendors, materials, business units, PO types,
  warehouses, trucks, purchase orders, receipts, returns, adjustments, transfers, inventory
  bills (all rendered as the API would, inactive ones included) and the on-hand table; plus
  ``rate`` (per bucket ``<app-key digest>-<tenant>``: admitted count per one-second window,
  the maximum, rejections), counters, queued faults, live tokens, config without secrets and
  the request log. ``?tenant=<id>`` narrows to one tenant, ``?requests=0`` leaves the log out.
- ``GET  /_sandbox/requests`` — the request log only (``?since=<seq>`` for newer entries):
  method, path, query, headers (``Authorization`` as ``Bearer ***``, ``ST-App-Key`` as a
  sha256 digest), body (token bodies with ``client_secret=***``), status, tenant, bucket,
  window, admitted, fault.
- ``POST /_sandbox/seed`` — add records to a tenant (``{"tenant": id}``, default the first
  configured): ``business_units``, ``purchase_order_types``, ``warehouses``, ``trucks``,
  ``vendors``, ``materials``, ``adjustments``, ``transfers``, ``on_hand`` (see
  :func:`apply_seed`); answers the new ids.
- ``POST /_sandbox/reset`` — back to the configured tenants and default seed.
- ``POST /_sandbox/faults`` — queue a fault (see :func:`add_fault`); ``GET`` lists the
  queue, ``DELETE`` empties it.
- ``POST /_sandbox/config`` — change ``rate_limit``, ``token_ttl``, ``latency``,
  ``request_log_limit``, ``unique_vendor_names``, ``unique_material_codes`` at run time.
"""
from __future__ import annotations

import time
from decimal import Decimal, InvalidOperation

from flask import Blueprint, request

from .common import ApiError, check, iso, json_response, now, parse_datetime, validation_error
from .gateway import world
from .world import TenantData, World

bp = Blueprint("servicetitan_admin", __name__, url_prefix="/_sandbox")

RUNTIME_CONFIG = ("rate_limit", "token_ttl", "latency", "request_log_limit",
                  "unique_vendor_names", "unique_material_codes")
FAULT_STATUSES = (429, 500, 502, 503, 504)


def _num(value, default="0") -> Decimal:
    if value is None:
        value = default
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise validation_error({"": [f"'{value}' is not a number."]}) from None


def _by_name(table: dict, name: str | None, ident) -> int | None:
    if ident is not None:
        return int(ident)
    if name is None:
        return None
    for rec in table.values():
        if rec["name"].lower() == str(name).lower():
            return rec["id"]
    raise validation_error({"": [f"No record named '{name}'."]})


def _sku(td: TenantData, item: dict) -> int:
    if item.get("skuId") is not None:
        if int(item["skuId"]) not in td.materials:
            raise validation_error({"": [f"No material with id {item['skuId']}."]})
        return int(item["skuId"])
    for m in td.materials.values():
        if m["code"].lower() == str(item.get("code", "")).lower():
            return m["id"]
    raise validation_error({"": [f"No material with code '{item.get('code')}'."]})


def _location(td: TenantData, ident, name) -> int:
    if ident is not None:
        if td.location(int(ident)) is None:
            raise validation_error({"": [f"No inventory location with id {ident}."]})
        return int(ident)
    for rec in list(td.warehouses.values()) + list(td.trucks.values()):
        if rec["name"].lower() == str(name or "").lower():
            return rec["id"]
    raise validation_error({"": [f"No inventory location named '{name}'."]})


def apply_seed(w: World, td: TenantData, spec: dict) -> dict:
    """Add seed records to ``td`` (caller holds the lock). Lenient input: numbers may be strings;
    references by id or by name (``vendor``, ``warehouse``, ``location``, ``from``, ``to``) or
    code (``code`` for a SKU). Vendors and materials pass the same validation as the API's
    creates (defaults filled first). Adjustments and transfers change the on-hand table;
    ``on_hand`` entries ``{location|inventoryLocationId, code|skuId, quantity}`` add stock."""
    from .inventory import VENDOR_CREATE, _check_vendor_refs, create_vendor
    from .pricebook import MATERIAL_CREATE, check_material, create_material

    out: dict = {}
    stamp = now()
    for bu in spec.get("business_units") or []:
        rec = {"id": w.new_id(), "active": bu.get("active", True), "name": bu["name"],
               "createdOn": stamp, "modifiedOn": stamp, "externalData": {}}
        for k in ("officialName", "email", "currency", "phoneNumber", "invoiceHeader",
                  "invoiceMessage", "authorizationParagraph", "acknowledgementParagraph",
                  "materialSku", "quickbooksClass", "accountCode", "franchiseId", "conceptCode",
                  "corporateContractNumber", "address"):
            rec[k] = bu.get(k)
        rec["defaultTaxRate"] = _num(bu["defaultTaxRate"]) if bu.get("defaultTaxRate") is not None else None
        td.business_units[rec["id"]] = rec
        out.setdefault("business_units", []).append(rec["id"])
    for t in spec.get("purchase_order_types") or []:
        rec = {"id": w.new_id(), "name": t["name"], "active": t.get("active", True),
               "automaticallyReceive": bool(t.get("automaticallyReceive", False)),
               "displayToTechnician": bool(t.get("displayToTechnician", True)),
               "impactToTechnicianPayroll": bool(t.get("impactToTechnicianPayroll", False)),
               "allowTechniciansToSendPo": bool(t.get("allowTechniciansToSendPo", False)),
               "defaultRequiredDateDaysOffset": int(t.get("defaultRequiredDateDaysOffset", 0)),
               "skipWeekends": bool(t.get("skipWeekends", False)),
               "excludeTaxFromJobCosting": bool(t.get("excludeTaxFromJobCosting", False))}
        td.po_types[rec["id"]] = rec
        out.setdefault("purchase_order_types", []).append(rec["id"])
    for wh in spec.get("warehouses") or []:
        rec = {"id": w.new_id(), "name": wh["name"], "active": wh.get("active", True),
               "address": wh.get("address")}
        td.warehouses[rec["id"]] = rec
        out.setdefault("warehouses", []).append(rec["id"])
    for t in spec.get("trucks") or []:
        rec = {"id": w.new_id(), "name": t["name"], "active": t.get("active", True),
               "memo": t.get("memo") or "",
               "warehouseId": _by_name(td.warehouses, t.get("warehouse"), t.get("warehouseId")),
               "technicianIds": [int(x) for x in t.get("technicianIds") or []]}
        td.trucks[rec["id"]] = rec
        out.setdefault("trucks", []).append(rec["id"])
    for n, v in enumerate(spec.get("vendors") or []):
        body = {"active": True, "isTruckReplenishment": False, "restrictedMobileCreation": False,
                "address": {"street": "", "unit": "", "city": "", "state": "", "zip": "",
                            "country": ""}}
        body.update({k: val for k, val in v.items() if val is not None})
        body["taxRate"] = _num(v.get("taxRate"))
        errors: dict = {}
        data = check(body, VENDOR_CREATE, errors, f"vendors[{n}].")
        _check_vendor_refs(w, td, data, errors)
        if errors:
            raise validation_error(errors)
        out.setdefault("vendors", []).append(create_vendor(w, td, data)["id"])
    for n, m in enumerate(spec.get("materials") or []):
        body = {k: val for k, val in m.items() if k not in ("vendor", "vendorId", "vendorPart")}
        body.setdefault("isInventory", True)
        for k in ("cost", "price", "memberPrice", "addOnPrice", "addOnMemberPrice", "hours",
                  "commissionBonus"):
            if k in body:
                body[k] = _num(body[k])
        vendor_id = _by_name(td.vendors, m.get("vendor"), m.get("vendorId"))
        if vendor_id is not None:
            body["primaryVendor"] = {"vendorId": vendor_id, "cost": _num(m.get("cost")),
                                     "active": True, "vendorPart": m.get("vendorPart")}
        errors = {}
        data = check(body, MATERIAL_CREATE, errors, f"materials[{n}].")
        check_material(w, td, data, errors)
        if errors:
            raise validation_error(errors)
        out.setdefault("materials", []).append(create_material(w, td, data)["id"])
    for a in spec.get("adjustments") or []:
        loc = _location(td, a.get("inventoryLocationId"), a.get("location"))
        td.adjustment_seq += 1
        items = []
        for item in a.get("items") or []:
            sku = _sku(td, item)
            mat = td.materials[sku]
            qty = _num(item.get("quantity"))
            td.add_on_hand(loc, sku, qty)
            items.append({"id": w.new_id(), "skuId": sku, "name": mat.get("displayName") or mat["code"],
                          "code": mat["code"], "description": item.get("description") or mat["description"],
                          "quantity": qty})
        rec = {"id": w.new_id(), "active": a.get("active", True),
               "number": a.get("number") or f"ADJ{td.adjustment_seq}",
               "referenceNumber": a.get("referenceNumber") or "", "type": a.get("type", "Adjustment"),
               "inventoryLocationId": loc, "businessUnitId": a.get("businessUnitId"),
               "createdById": None, "memo": a.get("memo") or "",
               "date": parse_datetime(a["date"]) if a.get("date") else stamp,
               "createdOn": stamp, "modifiedOn": stamp, "batchId": None,
               "syncStatus": a.get("syncStatus", "Pending"), "items": items, "customFields": []}
        td.adjustments[rec["id"]] = rec
        out.setdefault("adjustments", []).append(rec["id"])
    for t in spec.get("transfers") or []:
        src = _location(td, t.get("fromLocationId"), t.get("from"))
        dst = _location(td, t.get("toLocationId"), t.get("to"))
        td.transfer_seq += 1
        items = []
        for item in t.get("items") or []:
            sku = _sku(td, item)
            mat = td.materials[sku]
            qty = _num(item.get("quantity"))
            td.add_on_hand(src, sku, -qty)
            td.add_on_hand(dst, sku, qty)
            items.append({"id": w.new_id(), "skuId": sku, "name": mat.get("displayName") or mat["code"],
                          "code": mat["code"], "description": item.get("description") or mat["description"],
                          "quantity": qty})
        date = parse_datetime(t["date"]) if t.get("date") else stamp
        rec = {"id": w.new_id(), "transferType": t.get("transferType", "Transfer"),
               "status": t.get("status", "Completed"),
               "number": t.get("number") or f"TR{td.transfer_seq}",
               "referenceNumber": t.get("referenceNumber") or "", "fromLocationId": src,
               "toLocationId": dst, "createdById": None, "memo": t.get("memo") or "",
               "date": date, "pickedDate": date, "receivedDate": date, "createdOn": stamp,
               "modifiedOn": stamp, "batchId": None, "syncStatus": t.get("syncStatus", "Pending"),
               "items": items, "customFields": []}
        td.transfers[rec["id"]] = rec
        out.setdefault("transfers", []).append(rec["id"])
    for entry in spec.get("on_hand") or []:
        loc = _location(td, entry.get("inventoryLocationId"), entry.get("location"))
        td.add_on_hand(loc, _sku(td, entry), _num(entry.get("quantity")))
        out["on_hand"] = out.get("on_hand", 0) + 1
    return out


def add_fault(w: World, spec: dict) -> dict | None:
    """Queue a fault. Body keys:

    - ``status``: 429 (with ``Retry-After: retry_after``, default 1), 500, 502, 503 or 504 —
      the next ``count`` (default 1) matching requests answer it (``ApiErrorResponse`` body);
    - ``delay``: seconds the matching requests wait before being handled (alone: a slow API;
      with ``status``: a slow failure);
    - ``target``: ``"api"`` (default) or ``"token"`` (the token endpoint: an auth outage);
    - ``when``: ``"before"`` (default: the request is not processed) or ``"after"`` (processed,
      its changes kept, then the answer replaced — a lost response; with ``delay`` the answer
      comes ``delay`` seconds late, replaced only when ``status`` is given);
    - ``method``, ``path`` (substring), ``tenant``: narrow which requests match;
    - ``expire_tokens: true`` — every issued token expires now (nothing is queued).
    """
    if spec.get("expire_tokens"):
        now_ = time.time()
        for rec in w.tokens.values():
            rec["expires_at"] = min(rec["expires_at"], now_)
        return None
    status = spec.get("status")
    delay = float(spec.get("delay") or 0)
    if status is not None and int(status) not in FAULT_STATUSES:
        raise validation_error({"status": [f"status must be one of {FAULT_STATUSES}"]})
    if status is None and not delay:
        raise validation_error({"": ["give status, delay or expire_tokens"]})
    target = spec.get("target", "api")
    when = spec.get("when", "before")
    if target not in ("api", "token") or when not in ("before", "after") \
            or (target == "token" and when != "before"):
        raise validation_error({"": ["target is api|token, when is before|after (token: before)"]})
    fault = {"target": target, "when": when, "status": int(status) if status is not None else None,
             "retry_after": int(spec.get("retry_after", 1)), "delay": delay,
             "remaining": int(spec.get("count", 1)), "method": spec.get("method"),
             "path": spec.get("path"), "tenant": spec.get("tenant")}
    w.faults.append(fault)
    return fault


def tenant_state(td: TenantData) -> dict:
    """Everything one tenant holds, rendered as the API renders it."""
    from .accounting import render_bill
    from .inventory import (render_adjustment, render_po, render_po_type, render_receipt,
                            render_return, render_transfer, render_truck, render_vendor,
                            sku_name)
    from .pricebook import render_material
    from .settings import render_business_unit

    def rows(table):
        return [table[k] for k in sorted(table)]

    receipts = []
    for r in rows(td.receipts):
        receipts.append(dict(render_receipt(r), canceledReason=r.get("canceledReason")))
    materials = []
    for m in rows(td.materials):
        materials.append(dict(render_material(td, m, m.get("createdWithGuid")),
                              createdOn=iso(m["createdOn"])))
    on_hand = []
    for (loc, sku), qty in sorted(td.on_hand.items()):
        mat = td.materials.get(sku)
        on_hand.append({"inventoryLocationId": loc, "location": (td.location(loc) or {}).get("name"),
                        "skuId": sku, "code": mat["code"] if mat else None,
                        "name": sku_name(mat), "quantity": qty})
    return {
        "id": td.id, "name": td.name,
        "vendors": [dict(render_vendor(v), externalData={g: list(e) for g, e in v["externalData"].items()})
                    for v in rows(td.vendors)],
        "materials": materials,
        "business_units": [render_business_unit(td, b) for b in rows(td.business_units)],
        "purchase_order_types": [render_po_type(t) for t in rows(td.po_types)],
        "warehouses": [{"id": x["id"], "name": x["name"], "active": x["active"],
                        "address": x.get("address")} for x in rows(td.warehouses)],
        "trucks": [render_truck(t) for t in rows(td.trucks)],
        "purchase_orders": [render_po(td, p) for p in rows(td.purchase_orders)],
        "receipts": receipts,
        "returns": [render_return(r) for r in rows(td.returns)],
        "adjustments": [render_adjustment(a) for a in rows(td.adjustments)],
        "transfers": [render_transfer(t) for t in rows(td.transfers)],
        "inventory_bills": [render_bill(b) for b in rows(td.bills)],
        "on_hand": on_hand,
    }


def _pick_tenant(w: World, ident) -> TenantData:
    if ident is None:
        return next(iter(w.tenants.values()))
    try:
        td = w.tenants.get(int(ident))
    except (TypeError, ValueError):
        td = None
    if td is None:
        raise ApiError(404, f"No tenant {ident} in the emulator.")
    return td


@bp.get("/state")
def state():
    w = world()
    with w.lock:
        only = request.args.get("tenant")
        tenants = [_pick_tenant(w, only)] if only else list(w.tenants.values())
        body = {"default_tenant": next(iter(w.tenants)),
                "tenants": {str(td.id): tenant_state(td) for td in tenants},
                "rate": w.rate_state(), "counters": dict(w.counters),
                "faults": [dict(f) for f in w.faults],
                "tokens": {"live": sum(1 for t in w.tokens.values() if t["expires_at"] > time.time()),
                           "issued": w.counters["token_grants"]},
                "config": {"tenants": {str(k): {"name": v.get("name"), "client_id": v.get("client_id")}
                                       for k, v in w.config["tenants"].items()},
                           **{k: w.config[k] for k in RUNTIME_CONFIG}},
                "request_count": w.request_count}
        if request.args.get("requests", "1") not in ("0", "false", "no"):
            body["requests"] = [dict(e) for e in w.requests_log]
        return json_response(body)


@bp.get("/requests")
def requests_log():
    w = world()
    since = int(request.args.get("since", 0))
    with w.lock:
        return json_response([dict(e) for e in w.requests_log if e["seq"] > since])


@bp.post("/seed")
def seed():
    w = world()
    spec = request.get_json(force=True, silent=True) or {}
    with w.lock:
        td = _pick_tenant(w, spec.get("tenant"))
        return json_response({"tenant": td.id, **apply_seed(w, td, spec)})


@bp.post("/reset")
def reset():
    w = world()
    with w.lock:
        w.reset()
    return json_response({"reset": True})


@bp.route("/faults", methods=["GET", "POST", "DELETE"])
def faults():
    w = world()
    with w.lock:
        if request.method == "POST":
            fault = add_fault(w, request.get_json(force=True, silent=True) or {})
            return json_response({"queued": fault, "faults": [dict(f) for f in w.faults]}, 201)
        if request.method == "DELETE":
            w.faults.clear()
        return json_response([dict(f) for f in w.faults])


@bp.post("/config")
def config():
    w = world()
    body = request.get_json(force=True, silent=True) or {}
    unknown = sorted(set(body) - set(RUNTIME_CONFIG))
    if unknown:
        raise validation_error({k: ["not a run-time setting"] for k in unknown})
    with w.lock:
        w.config.update(body)
        return json_response({k: w.config[k] for k in RUNTIME_CONFIG})

