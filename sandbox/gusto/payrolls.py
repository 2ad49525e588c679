"""Payrolls of the Gusto emulator: the two read routes, how a payroll is rendered, and the
state changes behind the sandbox lifecycle actions (process, reverse, cancel) and synthetic
payrolls.

Routes: ``GET /v1/companies/{company_id}/payrolls/{payroll_id}`` (spec operation
``get-v1-companies-company_id-payrolls-payroll_id``, schema ``Payroll-Show``) and
``GET /v1/companies/{company_id}/payrolls`` (``get-v1-companies-company_id-payrolls``, items
``Payroll-Minimal``).
"""
from __future__ import annotations

import copy
import datetime as dt
import uuid
from decimal import Decimal

from flask import Blueprint, Response, g, request

from .common import (company_guard, gusto_json, includes, list_arg, not_found, paginate, paged_json,
                     requires, unprocessable, world)
from .world import COMPANY_UUID, GustoWorld, load_example_payroll

blueprint = Blueprint("gusto_payrolls", __name__)


def render_payroll(p: dict, inc: set[str], *, show: bool) -> dict:
    """The payroll as GET returns it, honouring ``include`` as the spec describes it:
    ``employee_compensations`` and ``totals`` only for calculated or processed payrolls
    (path description); ``company_taxes`` only with ``include=taxes`` and
    ``payroll_taxes`` only with ``include=payroll_taxes`` (Payroll-Show property
    descriptions); per compensation, ``taxes`` only with ``taxes`` and ``benefits`` only
    with ``benefits`` (Payroll-Employee-Compensations-Included); ``deductions`` "included by
    default for regular payrolls in version v2025-06-15 and later" (…-Type), else only with
    ``include=deductions``. ASSUMPTION: ``payroll_status_meta`` only with its include value.

    The list endpoint (``show=False``) returns no compensations and totals only on request
    (ASSUMPTION, after the spec's Payroll-List example); each list item carries ``uuid``
    (required by ``Payroll-Minimal``) and ``reversal_payroll_uuids`` (``[]`` when none, as in
    the Payroll-List example). GET of one payroll carries ``reversal_payroll_uuids`` once the
    payroll has been reversed (ASSUMPTION: absent before, as in the spec's "Processed"
    Payroll-Show example, whose schema does not list the field)."""
    out = copy.deepcopy(p)
    calculated = bool(out.get("processed")) or bool(out.get("calculated_at"))
    if "taxes" not in inc or not calculated:
        out.pop("company_taxes", None)
    if "payroll_taxes" not in inc or not calculated:
        out.pop("payroll_taxes", None)
    if "payroll_status_meta" not in inc:
        out.pop("payroll_status_meta", None)
    if not calculated or (not show and "totals" not in inc):
        out.pop("totals", None)
    if not show:
        out.pop("employee_compensations", None)
        out.pop("credit_blockers", None)
        out.pop("submission_blockers", None)
        out.setdefault("uuid", out["payroll_uuid"])
        out.setdefault("reversal_payroll_uuids", [])
        return out
    if not calculated:
        out.pop("employee_compensations", None)
        return out
    deductions_default = not out.get("off_cycle") and g.api_version >= "2025-06-15"
    for comp in out.get("employee_compensations", []):
        if "taxes" not in inc:
            comp.pop("taxes", None)
        if "benefits" not in inc:
            comp.pop("benefits", None)
        if "deductions" not in inc and not deductions_default:
            comp.pop("deductions", None)
    return out


@blueprint.get("/v1/companies/<company_id>/payrolls/<payroll_id>")
@requires("company")
def payroll_show(company_id, payroll_id):
    """Spec ``get-v1-companies-company_id-payrolls-payroll_id`` → 200 ``Payroll-Show``
    (:func:`render_payroll` with ``include``); ``employee_compensations`` paginated, at most
    100 per page (path description). ASSUMPTION: without ``page`` all compensations come
    back. Another company's or an unknown payroll → 404 Not-Found body."""
    refused = company_guard(company_id)
    if refused is not None:
        return refused
    w = world()
    with w.lock:
        p = w.payrolls.get(payroll_id)
        p = copy.deepcopy(p) if p is not None and p.get("company_uuid") == company_id else None
    if p is None:
        return not_found()
    out = render_payroll(p, includes(), show=True)
    comps = out.get("employee_compensations")
    headers = {}
    if comps is not None:
        paged = paginate(comps, forced=False)
        if isinstance(paged, Response):
            return paged
        out["employee_compensations"], headers = paged
    return gusto_json(out, 200, headers)


@blueprint.get("/v1/companies/<company_id>/payrolls")
@requires("company")
def payroll_list(company_id):
    """Spec ``get-v1-companies-company_id-payrolls`` → 200 array of ``Payroll-Minimal``.
    Filters: ``processing_statuses`` (default processed; the legacy ``processed=false``
    selects unprocessed), ``payroll_types`` (default regular; ``include_off_cycle=true`` adds
    off_cycle), ``start_date``/``end_date`` (default the past 6 months; ASSUMPTION: pay
    period start ≥ start_date and period end ≤ end_date), ``sort_order``; dates not dates or
    more than 1 year apart → 422; paginated, 25 default, 100 max (pagination forced)."""
    refused = company_guard(company_id)
    if refused is not None:
        return refused
    w = world()
    statuses = set(list_arg("processing_statuses"))
    if not statuses:
        statuses = {"unprocessed"} if request.args.get("processed") == "false" else {"processed"}
    types = set(list_arg("payroll_types")) or {"regular"}
    if request.args.get("include_off_cycle") == "true":
        types.add("off_cycle")
    try:
        end = dt.date.fromisoformat(request.args["end_date"]) if request.args.get("end_date") \
            else w.today()
        start = dt.date.fromisoformat(request.args["start_date"]) if request.args.get("start_date") \
            else end - dt.timedelta(days=183)
    except ValueError:
        return unprocessable("start_date", "start_date and end_date must be dates (YYYY-MM-DD).")
    if (end - start).days > 366:
        return unprocessable("base", "start_date and end_date can't be more than 1 year apart.",
                             category="invalid_operation")
    with w.lock:
        items = [copy.deepcopy(p) for p in w.payrolls.values() if p.get("company_uuid") == company_id]
    selected = []
    for p in items:
        status = "processed" if p.get("processed") else "unprocessed"
        ptype = "external" if p.get("external") else ("off_cycle" if p.get("off_cycle") else "regular")
        period = p.get("pay_period") or {}
        try:
            ps = dt.date.fromisoformat(period.get("start_date"))
            pe = dt.date.fromisoformat(period.get("end_date"))
        except (TypeError, ValueError):
            continue
        if status in statuses and ptype in types and ps >= start and pe <= end:
            selected.append(p)
    desc = request.args.get("sort_order") == "desc"
    selected.sort(key=lambda p: (p["pay_period"]["start_date"], p.get("check_date") or ""), reverse=desc)
    inc = includes()
    return paged_json([render_payroll(p, inc, show=False) for p in selected], forced=True)


# ------------------------------------------------------------------ lifecycle (sandbox actions)
def mark_processed(w: GustoWorld, pid: str) -> str | None:
    """Mark payroll ``pid`` processed as Gusto's processing would: ``processed: true``,
    ``processed_date`` today, ``calculated_at`` kept or now, ``processing_request``
    ``submit_success`` (the spec's "Processed" example). Returns its company uuid, or None for
    an unknown payroll. Caller holds ``w.lock``."""
    p = w.payrolls.get(pid)
    if p is None:
        return None
    p["processed"] = True
    p["processed_date"] = w.today().isoformat()
    p["calculated_at"] = p.get("calculated_at") or dt.datetime.fromtimestamp(
        w.now(), dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    p["processing_request"] = {"status": "submit_success", "errors": []}
    return p["company_uuid"]


def reverse_payroll(w: GustoWorld, pid: str) -> str | None:
    """A reversal of payroll ``pid``: its ``reversal_payroll_uuids`` (schema
    ``Reversal-Payroll-Uuids-Type``, "Array of reversal payroll UUIDs") lists the uuid of
    the reversal payroll; the reversed payroll itself stays processed. Returns its company
    uuid, or None for an unknown payroll. Caller holds ``w.lock``.

    ASSUMPTIONs (the spec does not settle them): one reversal per payroll, so reversing again
    keeps the one uuid (derived from ``pid``); the reversal payroll is not materialised (its
    amounts are not modelled; ``GET`` of its uuid answers 404); any payroll may be reversed."""
    p = w.payrolls.get(pid)
    if p is None:
        return None
    uuids = p.setdefault("reversal_payroll_uuids", [])
    if not uuids:
        uuids.append(str(uuid.uuid5(uuid.NAMESPACE_URL, f"reversal-payroll:{pid}")))
    return p["company_uuid"]


def cancel_payroll(w: GustoWorld, pid: str) -> str | None:
    """A cancelled payroll "has been transitioned back to unprocessed state" (schema
    ``Unprocessed-Payroll``; https://docs.gusto.com/embedded-payroll/reference/put-api-v1-companies-company_id-payrolls-payroll_id-cancel):
    ``processed: false``, ``processed_date: null`` and, as in the schema's x-example,
    ``calculated_at: null`` (so GET returns no compensations or totals until it is calculated
    again). Returns its company uuid, or None for an unknown payroll. Caller holds ``w.lock``.

    ``credit_blockers`` empties ("Only included for processed payrolls",
    ``Payroll-Credit-Blockers-Type``).

    ASSUMPTIONs: ``processing_request`` becomes null (as on the seeded unprocessed payroll);
    the emulator does not enforce Gusto's cancel window (processed, before the deadline)."""
    p = w.payrolls.get(pid)
    if p is None:
        return None
    p.update({"processed": False, "processed_date": None, "calculated_at": None,
              "processing_request": None, "credit_blockers": []})
    return p["company_uuid"]


def build_synthetic_payroll(body: dict) -> dict:
    """A synthetic payroll cloned from the spec's "Processed" example, as stored (with ``uuid``
    and ``payroll_uuid`` a new uuid). ``body`` keys: ``compensations`` (N copies of the first
    compensation, each with its own ``employee_uuid``; default 3), ``processed`` (default
    true), ``off_cycle``, ``company_uuid``, ``check_date``, ``start_date``, ``end_date``,
    ``totals`` ({key: amount} replacing the example's totals, which are not re-added), and
    ``earnings`` ([{name, amount}]: each a fixed compensation added to the first employee, its
    amount added to their and the totals' gross and net pay, so the payroll still reconciles).
    Raises KeyError/ValueError on malformed earnings."""
    base = load_example_payroll()
    pid = str(uuid.uuid4())
    template = base["employee_compensations"][0]
    n = int(body.get("compensations", 3))
    comps = []
    for i in range(n):
        c = copy.deepcopy(template)
        c["employee_uuid"] = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{pid}:{i}"))
        comps.append(c)
    processed = bool(body.get("processed", True))
    base.update({"payroll_uuid": pid, "uuid": pid, "employee_compensations": comps,
                 "processed": processed, "off_cycle": bool(body.get("off_cycle", False)),
                 "company_uuid": body.get("company_uuid") or COMPANY_UUID,
                 "check_date": body.get("check_date") or base["check_date"],
                 "processed_date": base["processed_date"] if processed else None})
    for extra in body.get("earnings") or []:
        amount = Decimal(str(extra["amount"]))
        comps[0]["fixed_compensations"].append({"name": extra["name"], "amount": f"{amount:.2f}",
                                                "job_uuid": comps[0]["fixed_compensations"][0]["job_uuid"]})
        for k in ("gross_pay", "net_pay", "check_amount"):
            comps[0][k] = f"{Decimal(comps[0][k]) + amount:.2f}"
        for k in ("gross_pay", "net_pay", "check_amount", "company_debit", "net_pay_debit"):
            base["totals"][k] = f"{Decimal(base['totals'][k]) + amount:.2f}"
    if isinstance(body.get("totals"), dict):  # tests: totals that do not reconcile, etc.
        base["totals"] = dict(base["totals"], **{k: str(v) for k, v in body["totals"].items()})
    base["pay_period"] = dict(base["pay_period"],
                              start_date=body.get("start_date") or base["pay_period"]["start_date"],
                              end_date=body.get("end_date") or base["pay_period"]["end_date"])
    return base
