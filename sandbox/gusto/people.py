"""People of the Gusto emulator: employees, earning types, pay schedules, jobs and compensations.

Every route needs a company token and reaches only the token's company: another company's
employee, job or compensation answers 404 with the spec's Not-Found body (ASSUMPTION: 404,
not 403, as on the company routes). Jobs and compensations follow
https://docs.gusto.com/embedded-payroll/docs/jobs-and-compensations and the spec's ``Job`` and
``Compensation`` schemas; versions follow https://docs.gusto.com/embedded-payroll/docs/idempotency.
"""
from __future__ import annotations

import copy
import datetime as dt
from decimal import Decimal, InvalidOperation

from flask import Blueprint, request

from .common import (CONFLICT, company_guard, current_grant, deliverer, gusto_json, includes,
                     not_found, paged_json, request_json, requires, unprocessable, world)
from .world import ISO_DATE, fresh_version

blueprint = Blueprint("gusto_people", __name__)

# Spec Compensation.payment_unit and Flsa-Status-Type enums.
PAYMENT_UNITS = ("Hour", "Week", "Month", "Year", "Paycheck")
FLSA_STATUSES = ("Exempt", "Salaried Nonexempt", "Nonexempt", "Owner", "Commission Only Exempt",
                 "Commission Only Nonexempt")


# ------------------------------------------------------------------ reference data
@blueprint.get("/v1/companies/<company_id>/earning_types")
@requires("company")
def earning_type_list(company_id):
    """Spec ``get-v1-companies-company_id-earning_types`` → 200 ``Earning-Type-List``
    ``{"default": [...], "custom": [...]}`` of ``{name, uuid, active}``."""
    refused = company_guard(company_id)
    if refused is not None:
        return refused
    w = world()
    with w.lock:
        items = [dict(e) for e in w.earning_types.values() if e["company_uuid"] == company_id]

    def _pick(custom: bool) -> list[dict]:
        return [{k: e[k] for k in ("name", "uuid", "active")} for e in items if e["custom"] == custom]
    return gusto_json({"default": _pick(False), "custom": _pick(True)})


@blueprint.get("/v1/companies/<company_id>/pay_schedules")
@requires("company")
def pay_schedule_list(company_id):
    """Spec ``get-v1-companies-company_id-pay_schedules`` → 200 ``Pay-Schedule-List``
    (paginated when ``page`` or ``per`` is given)."""
    refused = company_guard(company_id)
    if refused is not None:
        return refused
    w = world()
    with w.lock:
        items = copy.deepcopy(w.pay_schedules.get(company_id, []))
    return paged_json(items)


# ------------------------------------------------------------------ employees
@blueprint.get("/v1/companies/<company_id>/employees")
@requires("company")
def employee_list(company_id):
    """Spec ``get-v1-companies-company_id-employees`` → 200 array of ``Employee``: all
    employees (onboarding, active, terminated); ``terminated=true|false`` filters; paginated
    when ``page`` or ``per`` is given."""
    refused = company_guard(company_id)
    if refused is not None:
        return refused
    w = world()
    with w.lock:
        items = [copy.deepcopy(e) for e in w.employees.values() if e["company_uuid"] == company_id]
    term = request.args.get("terminated")
    if term in ("true", "false"):
        items = [e for e in items if e["terminated"] == (term == "true")]
    return paged_json(items)


@blueprint.get("/v1/employees/<employee_id>")
@requires("company")
def employee_show(employee_id):
    """Spec ``get-v1-employees`` → 200 ``Employee``; unknown or another company's → 404."""
    w = world()
    with w.lock:
        emp = copy.deepcopy(w.employees.get(employee_id))
    if emp is None or emp["company_uuid"] != current_grant()["company_uuid"]:
        return not_found()
    return gusto_json(emp)


# ------------------------------------------------------------------ jobs and compensations
def _owned(found):
    """``found`` (a world lookup whose first item is the employee) when the token's company
    owns it, else None."""
    if found is None or found[0]["company_uuid"] != current_grant()["company_uuid"]:
        return None
    return found


def current_compensation(job: dict) -> dict:
    """The job's current compensation: "the one with the most recent ``effective_date``"
    (spec ``get-v1-jobs-job_id-compensations`` description)."""
    return max(job["compensations"], key=lambda c: c.get("effective_date") or "")


def render_compensation(comp: dict, job: dict) -> dict:
    """The spec's ``Compensation`` object: the stored compensation plus ``title``. ASSUMPTION:
    a compensation's title is its job's title (the emulator keeps one title per job)."""
    return dict(copy.deepcopy(comp), title=job["title"])


@blueprint.get("/v1/jobs/<job_id>")
@requires("company")
def job_show(job_id):
    """``GET /v1/jobs/{job_id}`` → 200 ``Job`` (with all its ``compensations``), unknown or
    another company's → 404. ASSUMPTION: the spec copy of 2025-06-15 has no such operation;
    the route answers the spec's ``Job`` schema as the job appears in its ``Employee``
    (https://docs.gusto.com/embedded-payroll/docs/jobs-and-compensations)."""
    w = world()
    with w.lock:
        found = _owned(w.find_job(job_id))
        job = copy.deepcopy(found[1]) if found else None
    return not_found() if job is None else gusto_json(job)


@blueprint.get("/v1/jobs/<job_id>/compensations")
@requires("company")
def job_compensations(job_id):
    """Spec ``get-v1-jobs-job_id-compensations`` → 200 array of ``Compensation``: only the
    current compensation by default, all of them with ``include=all_compensations``;
    paginated when ``page`` or ``per`` is given. Unknown or another company's job → 404."""
    w = world()
    with w.lock:
        found = _owned(w.find_job(job_id))
        job = copy.deepcopy(found[1]) if found else None
    if job is None:
        return not_found()
    comps = job["compensations"] if "all_compensations" in includes() else [current_compensation(job)]
    return paged_json([render_compensation(c, job) for c in comps])


@blueprint.get("/v1/compensations/<compensation_id>")
@requires("company")
def compensation_show(compensation_id):
    """Spec ``get-v1-compensations-compensation_id`` → 200 ``Compensation``; unknown or
    another company's → 404."""
    w = world()
    with w.lock:
        found = _owned(w.find_compensation(compensation_id))
        out = render_compensation(found[2], found[1]) if found else None
    return not_found() if out is None else gusto_json(out)


def _compensation_changes(body: dict):
    """The updatable fields of a ``Compensations-Update-Request-Body`` (besides ``version``)
    as ``(changes, None)``, or ``(None, 422 response)`` for the first invalid one."""
    changes = {}
    if "rate" in body:
        try:
            rate = Decimal(str(body["rate"]))
        except InvalidOperation:
            rate = None
        if not isinstance(body["rate"], str) or rate is None or not rate.is_finite() or rate < 0:
            return None, unprocessable("rate", "Rate must be a non-negative decimal string")
        changes["rate"] = f"{rate:.2f}"
    if "payment_unit" in body:
        if body["payment_unit"] not in PAYMENT_UNITS:
            return None, unprocessable("payment_unit", "Payment unit must be one of: "
                                       + ", ".join(PAYMENT_UNITS))
        changes["payment_unit"] = body["payment_unit"]
    if "flsa_status" in body:
        if body["flsa_status"] not in FLSA_STATUSES:
            return None, unprocessable("flsa_status", "Flsa status must be one of: "
                                       + ", ".join(FLSA_STATUSES))
        changes["flsa_status"] = body["flsa_status"]
    if "effective_date" in body:
        value = body["effective_date"]
        try:
            ok = isinstance(value, str) and bool(ISO_DATE.match(value)) and bool(dt.date.fromisoformat(value))
        except ValueError:
            ok = False
        if not ok:
            return None, unprocessable("effective_date", "Effective date must be a date (YYYY-MM-DD)")
        changes["effective_date"] = value
    if "adjust_for_minimum_wage" in body:
        if not isinstance(body["adjust_for_minimum_wage"], bool):
            return None, unprocessable("adjust_for_minimum_wage", "Adjust for minimum wage must be a boolean")
        changes["adjust_for_minimum_wage"] = body["adjust_for_minimum_wage"]
    if "minimum_wages" in body:
        wages = body["minimum_wages"]
        if not isinstance(wages, list) or not all(isinstance(m, dict) and isinstance(m.get("uuid"), str)
                                                  for m in wages):
            return None, unprocessable("minimum_wages", "Minimum wages must be a list of {uuid}")
        changes["minimum_wages"] = [{"uuid": m["uuid"]} for m in wages]
    if "title" in body:
        if not isinstance(body["title"], str):
            return None, unprocessable("title", "Title must be a string")
        changes["title"] = body["title"]
    return changes, None


@blueprint.put("/v1/compensations/<compensation_id>")
@requires("company")
def compensation_update(compensation_id):
    """Spec ``put-v1-compensations-compensation_id`` with a ``Compensations-Update-Request-Body``
    (``version`` required; ``rate``, ``payment_unit``, ``flsa_status``, ``effective_date``,
    ``title``, ``adjust_for_minimum_wage``, ``minimum_wages``) → 200 ``Compensation`` with a
    new ``version``; the job's ``rate``/``payment_unit``/``current_compensation_uuid`` follow its
    current compensation, ``title`` is the job's, and the job's and employee's versions are
    renewed (a version covers "this and child objects"). Fires
    ``employee_job_compensation.updated`` (operation description, entity type
    ``EmployeeJobCompensation``).

    Errors: unknown or another company's compensation → 404; a ``version`` that is not the
    current one → 409 with the spec's ``Conflict-Error-Object`` x-example
    (https://docs.gusto.com/embedded-payroll/docs/idempotency; ASSUMPTION: the operation lists
    no 409 in this spec copy, the versioning guide says every versioned update answers it);
    no ``version`` or an invalid field → 422 (ASSUMPTION: ``invalid_attribute_value`` with
    the field as ``error_key``; wording ours)."""
    w = world()
    body = request_json()
    with w.lock:
        exists = _owned(w.find_compensation(compensation_id)) is not None
    if not exists:
        return not_found()
    version = body.get("version")
    if not isinstance(version, str) or not version:
        return unprocessable("version", "Version is required")
    changes, refused = _compensation_changes(body)
    if refused is not None:
        return refused
    with w.lock:
        found = _owned(w.find_compensation(compensation_id))
        if found is None:
            return not_found()
        emp, job, comp = found
        if version != comp["version"]:
            return gusto_json(CONFLICT, 409)
        title = changes.pop("title", None)
        if title is not None:
            job["title"] = title
        comp.update(changes)
        comp["version"] = fresh_version(comp)
        current = current_compensation(job)
        job.update({"rate": current["rate"], "payment_unit": current["payment_unit"],
                    "current_compensation_uuid": current["uuid"]})
        job["version"] = fresh_version(job)
        emp["version"] = fresh_version(emp)
        out = render_compensation(comp, job)
        company = emp["company_uuid"]
    deliverer().emit("employee_job_compensation.updated", "EmployeeJobCompensation",
                     compensation_id, company)
    return gusto_json(out)
