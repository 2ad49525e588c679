"""Settings module, business units only: ``/settings/v2/tenant/{tenant}/business-units``
(OAS ``tenant-settings-v2.yml``).

Served: ``BusinessUnits_GetList`` and ``BusinessUnits_Get``. Not served: ``BusinessUnits_Update``
(external data only), employees, technicians, tag types. Business units are read-only here;
they come from the seed (``POST /_sandbox/seed``).
"""
from __future__ import annotations

from flask import Blueprint, request

from .common import Query, active_match, created_modified, iso, json_response, not_found, paginate
from .gateway import api
from .world import TenantData, World

bp = Blueprint("servicetitan_settings", __name__, url_prefix="/settings/v2/tenant/<int:tenant>")


@bp.url_value_preprocessor
def _drop_tenant(endpoint, values):
    values.pop("tenant", None)


def render_business_unit(td: TenantData, bu: dict, guid: str | None = None) -> dict:
    """OAS TenantSettings.V2.BusinessUnitResponse (``tenant`` is BusinessUnitTenantResponse;
    ``externalData`` for the requested application guid only, ASSUMPTION: else ``[]``)."""
    addr = bu.get("address")
    return {"id": bu["id"], "active": bu["active"], "name": bu["name"],
            "officialName": bu.get("officialName"), "email": bu.get("email"),
            "currency": bu.get("currency"), "phoneNumber": bu.get("phoneNumber"),
            "invoiceHeader": bu.get("invoiceHeader"), "invoiceMessage": bu.get("invoiceMessage"),
            "defaultTaxRate": bu.get("defaultTaxRate"),
            "authorizationParagraph": bu.get("authorizationParagraph"),
            "acknowledgementParagraph": bu.get("acknowledgementParagraph"),
            "address": ({k: addr.get(k) for k in ("street", "unit", "city", "state", "zip", "country")}
                        if addr else None),
            "materialSku": bu.get("materialSku"), "quickbooksClass": bu.get("quickbooksClass"),
            "accountCode": bu.get("accountCode"), "franchiseId": bu.get("franchiseId"),
            "conceptCode": bu.get("conceptCode"),
            "corporateContractNumber": bu.get("corporateContractNumber"),
            "tenant": {"id": td.id, "name": td.name, "accountCode": None, "franchiseId": None,
                       "conceptCode": None, "modifiedOn": iso(bu["createdOn"])},
            "createdOn": iso(bu["createdOn"]), "modifiedOn": iso(bu["modifiedOn"]),
            "externalData": [dict(e) for e in bu["externalData"].get((guid or "").lower(), [])]}


@bp.get("/business-units")
@api
def business_units_list(w: World, td: TenantData):
    """OAS BusinessUnits_GetList: ``ids``, ``name`` (ASSUMPTION: exact, case-insensitive),
    ``active`` (default True), created/modified ranges, ``externalDataApplicationGuid``."""
    q = Query(request.args)
    mode = q.active()
    rows = [td.business_units[k] for k in sorted(td.business_units)]
    rows = [r for r in rows if active_match(mode, r["active"])]
    ids = q.ids()
    if ids is not None:
        rows = [r for r in rows if r["id"] in ids]
    name = q.raw("name")
    if name is not None:
        rows = [r for r in rows if r["name"].lower() == name.lower()]
    rows = created_modified(q, rows)
    guid = q.raw("externalDataApplicationGuid")
    return json_response(paginate(q, rows, lambda r: render_business_unit(td, r, guid)))


@bp.get("/business-units/<int:bu_id>")
@api
def business_units_get(w: World, td: TenantData, bu_id: int):
    """OAS BusinessUnits_Get (404 for an unknown id)."""
    bu = td.business_units.get(bu_id)
    if bu is None:
        raise not_found("Business unit", bu_id)
    return json_response(render_business_unit(td, bu, request.args.get("externalDataApplicationGuid")))
