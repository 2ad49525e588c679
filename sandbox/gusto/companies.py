"""``GET /v1/companies/{company_id}`` of the Gusto emulator (spec operation ``get-v1-companies``,
schema ``Company``)."""
from __future__ import annotations

import copy
import uuid

from flask import Blueprint, g

from .common import company_guard, gusto_json, requires, world

blueprint = Blueprint("gusto_companies", __name__)

# ASSUMPTION: the company-wide hourly rates (names and multiples of the spec's Company
# x-example that the seeded payroll example uses) and paid-time-off types (the example
# payroll's paid_time_off names; "Holiday Hours" without a uuid, as in the Company x-example).
HOURLY_RATES = (("Regular", 1), ("Overtime", 1.5), ("Double overtime", 2))
PAID_TIME_OFF = ("Vacation Hours", "Sick Hours")


def _rate_uuid(company_uuid: str, kind: str, name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"company-{kind}:{company_uuid}:{name}"))


def render_company(company: dict, earning_types: list[dict], scope: str) -> dict:
    """The spec's ``Company`` object for a stored company.

    ``compensations`` is derived: ``hourly`` rates ``{uuid, name, multiple}``, ``fixed`` =
    the company's active earning types ``{uuid, name}`` plus ``Reimbursement`` with a null
    uuid, ``paid_time_off`` ``{uuid, name}`` (shape and the null-uuid entries as in the
    schema's x-example). Per the ``get-v1-companies`` description, ``primary_payroll_admin``
    needs the ``company_admin:read`` scope and ``primary_signatory`` ``signatories:read``:
    neither is in the emulator's company scope, so both are left out (ASSUMPTION: left out
    rather than null)."""
    out = copy.deepcopy(company)
    cid = company["uuid"]
    out["compensations"] = {
        "hourly": [{"uuid": _rate_uuid(cid, "hourly", n), "name": n, "multiple": m}
                   for n, m in HOURLY_RATES],
        "fixed": [{"uuid": e["uuid"], "name": e["name"]} for e in earning_types if e["active"]]
        + [{"uuid": None, "name": "Reimbursement"}],
        "paid_time_off": [{"uuid": _rate_uuid(cid, "pto", n), "name": n} for n in PAID_TIME_OFF]
        + [{"uuid": None, "name": "Holiday Hours"}],
    }
    granted = set(scope.split())
    if "company_admin:read" not in granted:
        out.pop("primary_payroll_admin", None)
    if "signatories:read" not in granted:
        out.pop("primary_signatory", None)
    return out


@blueprint.get("/v1/companies/<company_id>")
@requires("company")
def company_show(company_id):
    """Spec ``get-v1-companies`` → 200 ``Company`` (:func:`render_company`). Company access
    as on every company route: a token of another company, or an unknown company → 404 with
    the Not-Found body; a system token → 403; a bad token → 401."""
    refused = company_guard(company_id)
    if refused is not None:
        return refused
    w = world()
    with w.lock:
        company = copy.deepcopy(w.companies[company_id])
        earning_types = [dict(e) for e in w.earning_types.values() if e["company_uuid"] == company_id]
    return gusto_json(render_company(company, earning_types, g.token["scope"]))
