"""Sandbox-only admin routes of the Gusto emulator (``/_sandbox/*``; NOT part of Gusto).

Tests and the demo drive the world through them: record events, create and move payrolls
through their lifecycle, hire/change/terminate/rehire employees, inject faults, read the
delivery and request logs, move the clock, reset. None is authenticated, logged in the request
log, version-checked or rate-limited. Events they emit follow Gusto's event names
(https://docs.gusto.com/embedded-payroll/docs/payroll-events,
https://docs.gusto.com/embedded-payroll/docs/employee-events).
"""
from __future__ import annotations

import datetime as dt
import secrets
import threading
import time
import uuid

from flask import Blueprint, jsonify, request

from .common import NOT_FOUND, deliverer, world
from .payrolls import build_synthetic_payroll, cancel_payroll, mark_processed, reverse_payroll
from .world import COMPANY_UUID, build_employee, fresh_version

blueprint = Blueprint("gusto_admin", __name__, url_prefix="/_sandbox")


def _body() -> dict:
    return request.get_json(force=True) or {}


def _not_found():
    return jsonify(NOT_FOUND), 404


@blueprint.post("/events")
def sb_event():
    """``{event_type, entity_type, entity_uuid[, company_uuid]}`` → 201 the event, recorded
    (it shows in /v1/events) and delivered; a missing key → 400 ``{"error"}``."""
    body = _body()
    missing = [k for k in ("event_type", "entity_type", "entity_uuid") if not body.get(k)]
    if missing:
        return jsonify({"error": f"missing {', '.join(missing)}"}), 400
    event = deliverer().emit(body["event_type"], body["entity_type"], body["entity_uuid"],
                             body.get("company_uuid") or COMPANY_UUID)
    return jsonify(event), 201


@blueprint.post("/payrolls")
def sb_payroll_create():
    """A synthetic payroll (:func:`sandbox.gusto.payrolls.build_synthetic_payroll` body keys)
    → 201 ``{"payroll_uuid", "compensations": N}``. No event is emitted."""
    body = _body()
    payroll = build_synthetic_payroll(body)
    w = world()
    with w.lock:
        w.payrolls[payroll["payroll_uuid"]] = payroll
    return jsonify({"payroll_uuid": payroll["payroll_uuid"],
                    "compensations": len(payroll["employee_compensations"])}), 201


@blueprint.post("/payrolls/<pid>/process")
def sb_process(pid):
    """Mark a payroll processed (:func:`sandbox.gusto.payrolls.mark_processed`) and emit
    ``payroll.processed`` → 200 ``{"payroll_uuid", "event"}``; unknown payroll → 404. The
    emulator never fires ``payroll.paid`` ("not triggered in demo",
    https://docs.gusto.com/embedded-payroll/docs/payroll-events)."""
    w = world()
    with w.lock:
        company = mark_processed(w, pid)
    if company is None:
        return _not_found()
    event = deliverer().emit("payroll.processed", "Payroll", pid, company)
    return jsonify({"payroll_uuid": pid, "event": event})


@blueprint.post("/payrolls/<pid>/<action>")
def sb_payroll_lifecycle(pid, action):
    """``reverse`` or ``cancel`` a payroll and emit ``payroll.reversed`` / ``payroll.cancelled``
    → 200 ``{"payroll_uuid", "event"}``; another action or an unknown payroll → 404. The
    payroll's state changes as :func:`sandbox.gusto.payrolls.reverse_payroll` (a reversal
    payroll uuid in ``reversal_payroll_uuids``) and
    :func:`sandbox.gusto.payrolls.cancel_payroll` (back to unprocessed) describe."""
    if action not in ("reverse", "cancel"):
        return _not_found()
    w = world()
    with w.lock:
        company = (reverse_payroll if action == "reverse" else cancel_payroll)(w, pid)
    if company is None:
        return _not_found()
    event = deliverer().emit("payroll.reversed" if action == "reverse" else "payroll.cancelled",
                             "Payroll", pid, company)
    return jsonify({"payroll_uuid": pid, "event": event})


@blueprint.post("/employees")
def sb_employees():
    """``{count[, company_uuid]}`` synthetic employees (paging tests) → 201 ``{"created": [uuid]}``.
    No event is emitted."""
    body = _body()
    company = body.get("company_uuid") or COMPANY_UUID
    created = []
    w = world()
    with w.lock:
        start = len(w.employees)
        for i in range(int(body.get("count", 1))):
            uid = str(uuid.uuid4())
            w.employees[uid] = build_employee(uid, company, f"Synthetic{start + i}", "Worker",
                                              f"s{start + i:05d}", "Associate", "2022-01-03", None)
            created.append(uid)
    return jsonify({"created": created}), 201


@blueprint.post("/employees/hire")
def sb_hire():
    """Hire people and emit ``employee.created`` for each → 201 ``{"created": [uuid],
    "events": [uuid]}``. Body ``{"employees": [{"first_name", "last_name", "title",
    "department", "hire_date", "employee_code"}], "company_uuid"}`` or ``{"count": N,
    "last_name", "title", "department"}``."""
    body = _body()
    company = body.get("company_uuid") or COMPANY_UUID
    specs = body.get("employees") or [
        {"first_name": f"Hire{i:04d}", "last_name": body.get("last_name", "Bulk"),
         "title": body.get("title", "Associate"), "department": body.get("department", "Operations")}
        for i in range(int(body.get("count", 1)))]
    created = []
    w = world()
    with w.lock:
        for spec in specs:
            uid = str(uuid.uuid4())
            w.employees[uid] = build_employee(
                uid, company, spec.get("first_name", "New"), spec.get("last_name", "Hire"),
                spec.get("employee_code") or uid.replace("-", "")[:6], spec.get("title", "Associate"),
                spec.get("hire_date") or w.today().isoformat(), spec.get("department"))
            created.append(uid)
    events = [deliverer().emit("employee.created", "Employee", uid, company) for uid in created]
    return jsonify({"created": created, "events": [e["uuid"] for e in events]}), 201


def _change_employee(employee_id: str, change):
    """Apply ``change(employee, world, body)`` to the stored employee under the world lock;
    returns ``(company uuid, change's result)``, or None for an unknown employee."""
    body = _body()
    w = world()
    with w.lock:
        emp = w.employees.get(employee_id)
        if emp is None:
            return None
        return emp["company_uuid"], change(emp, w, body)


def _change_and_emit(employee_id: str, change, event_type: str):
    """:func:`_change_employee`, then emit ``event_type`` for the employee → 200
    ``{"employee", "event": uuid}``; unknown employee → 404."""
    changed = _change_employee(employee_id, change)
    if changed is None:
        return _not_found()
    event = deliverer().emit(event_type, "Employee", employee_id, changed[0])
    return jsonify({"employee": employee_id, "event": event["uuid"]})


@blueprint.patch("/employees/<employee_id>")
def sb_employee_update(employee_id):
    """Change an employee (``first_name``, ``last_name``, ``email``, ``department``; a job
    change: ``title``), renew its version and emit ``employee.updated`` → 200 ``{"employee",
    "event"}``; unknown employee → 404. ASSUMPTION: Gusto fires ``employee.updated`` for a job
    change too (its EmployeeJobCompensation events are not emulated here)."""
    def _update(emp, _w, body):
        for key in ("first_name", "last_name", "email", "department"):
            if key in body:
                emp[key] = body[key]
        if "title" in body:
            emp["jobs"][0]["title"] = body["title"]
        emp["version"] = fresh_version(emp)

    return _change_and_emit(employee_id, _update, "employee.updated")


@blueprint.post("/employees/<employee_id>/terminate")
def sb_terminate(employee_id):
    """Create a termination (``effective_date``, default today) and emit
    ``employee.terminated``; when it is already effective, ``employee.terminated_effective``
    too, and ``terminated`` turns true → 200 ``{"employee", "events": [uuid]}``; unknown
    employee → 404."""
    def _terminate(emp, w, body) -> bool:
        effective = body.get("effective_date") or w.today().isoformat()
        emp["terminations"] = [{"uuid": str(uuid.uuid4()), "version": secrets.token_hex(16),
                                "employee_uuid": employee_id, "active": True, "cancelable": True,
                                "effective_date": effective, "run_termination_payroll": False}]
        emp["terminated"] = dt.date.fromisoformat(effective) <= w.today()
        return emp["terminated"]

    changed = _change_employee(employee_id, _terminate)
    if changed is None:
        return _not_found()
    company, now_effective = changed
    events = [deliverer().emit("employee.terminated", "Employee", employee_id, company)]
    if now_effective:
        events.append(deliverer().emit("employee.terminated_effective", "Employee", employee_id, company))
    return jsonify({"employee": employee_id, "events": [e["uuid"] for e in events]})


@blueprint.post("/employees/<employee_id>/rehire")
def sb_rehire(employee_id):
    """Rehire (``hire_date``, default today): terminations inactive, ``terminated`` false, a
    new hire date on the primary job; emits ``employee.rehired`` → 200 ``{"employee",
    "event"}``; unknown employee → 404."""
    def _rehire(emp, w, body):
        for t in emp["terminations"]:
            t["active"] = False
        emp["terminated"] = False
        emp["jobs"][0]["hire_date"] = body.get("hire_date") or w.today().isoformat()

    return _change_and_emit(employee_id, _rehire, "employee.rehired")


@blueprint.post("/earning_types")
def sb_earning_type():
    """Add a custom earning type ``{"name"[, "company_uuid"]}`` (as the spec's
    ``post-v1-companies-company_id-earning_types`` would) → 201 the stored record; no name →
    400 ``{"error"}``."""
    body = _body()
    if not body.get("name"):
        return jsonify({"error": "name required"}), 400
    w = world()
    with w.lock:
        et = w.add_earning_type(body.get("company_uuid") or COMPANY_UUID, body["name"], custom=True)
    return jsonify(et), 201


@blueprint.post("/deliveries/drop")
def sb_drop():
    """``{count}``: the next ``count`` events are recorded (they show in /v1/events) but their
    webhooks are never delivered (a webhook lost on the floor) → 201 ``{"drop": count}``."""
    body = _body()
    w = world()
    with w.lock:
        w.drop_deliveries = int(body.get("count", 1))
    return jsonify({"drop": w.drop_deliveries}), 201


@blueprint.post("/deliveries/redeliver/<event_uuid>")
def sb_redeliver(event_uuid):
    """Deliver the same event ``times`` times to each verified subscriber (``concurrent=1``:
    all at once behind a barrier); waits up to ``wait`` seconds (default 30) for the
    deliveries to finish → 200 ``{"event_uuid", "deliveries", "subscriptions"}``; unknown
    event → 404."""
    times = int(request.args.get("times", 1))
    concurrent = request.args.get("concurrent") in ("1", "true")
    wait = float(request.args.get("wait", 30))
    w = world()
    with w.lock:
        event = next((dict(e) for e in w.events if e["uuid"] == event_uuid), None)
        subs = w.subscribers(event["entity_type"]) if event else []
    if event is None:
        return _not_found()
    threads = []
    for sub in subs:
        barrier = threading.Barrier(times) if concurrent and times > 1 else None
        for _ in range(times):
            t = deliverer().deliver("event", event_uuid, sub, event, barrier=barrier)
            if not concurrent:
                t.join(wait)
            threads.append(t)
    deadline = time.monotonic() + wait
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return jsonify({"event_uuid": event_uuid, "deliveries": len(threads), "subscriptions": len(subs)})


@blueprint.get("/deliveries")
def sb_deliveries():
    """The delivery log: one entry per attempt ``{kind, event_uuid, subscription_uuid, url,
    attempt, status, error, ok, time, signature}`` (dropped webhooks: ``status: "dropped"``)."""
    w = world()
    with w.lock:
        return jsonify(list(w.deliveries))


@blueprint.post("/faults")
def sb_faults():
    """``{status, count, retry_after}``: the next ``count`` /v1 calls answer ``status`` (429
    with ``Retry-After: retry_after``, default 1) → 201 ``{"queued": true}``; a status other
    than 429, 500, 502, 503, 504 → 400."""
    body = _body()
    status = int(body.get("status", 500))
    if status not in (429, 500, 502, 503, 504):
        return jsonify({"error": "status must be 429, 500, 502, 503 or 504"}), 400
    w = world()
    with w.lock:
        w.faults.append({"status": status, "remaining": int(body.get("count", 1)),
                         "retry_after": int(body.get("retry_after", 1))})
    return jsonify({"queued": True}), 201


@blueprint.post("/reset")
def sb_reset():
    """Back to the seeded world → 200 ``{"reset": true}``."""
    w = world()
    with w.lock:
        w.reset()
    return jsonify({"reset": True})


@blueprint.get("/state")
def sb_state():
    """``{now, clock_offset, counts, grants (with their rate-window use), subscriptions (with
    verification tokens), faults, config (without the client secret)}``."""
    w = world()
    cfg = w.config
    with w.lock:
        now = w.now()
        span = float(cfg["rate_window"])
        return jsonify({
            "now": now, "clock_offset": w.clock_offset,
            "counts": {"companies": len(w.companies), "employees": len(w.employees),
                       "payrolls": len(w.payrolls), "events": len(w.events),
                       "deliveries": len(w.deliveries), "requests": len(w.requests_log),
                       "subscriptions": len(w.subscriptions)},
            "grants": [{"id": g_["id"], "kind": g_["kind"], "company_uuid": g_["company_uuid"],
                        "requests_in_window": sum(1 for t in g_["window"] if t > now - span),
                        "access_tokens": sum(1 for t in w.access_tokens.values()
                                             if t["grant_id"] == g_["id"]),
                        "live_refresh_tokens": sum(1 for t in w.refresh_tokens.values()
                                                   if t["grant_id"] == g_["id"] and not t["used"])}
                       for g_ in w.grants.values()],
            "subscriptions": [dict(s) for s in w.subscriptions.values()],
            "faults": list(w.faults),
            "config": {k: v for k, v in cfg.items() if k != "client_secret"},
        })


@blueprint.post("/clock")
def sb_clock():
    """``{"advance": seconds}`` moves the emulator clock forward → 200 ``{now, clock_offset}``."""
    body = _body()
    w = world()
    with w.lock:
        w.clock_offset += float(body.get("advance", 0))
        return jsonify({"now": w.now(), "clock_offset": w.clock_offset})


@blueprint.get("/requests")
def sb_requests():
    """The log of every non-sandbox request ``{time, method, path, query, query_string,
    headers (subset), body, json, status}``, oldest first."""
    w = world()
    with w.lock:
        return jsonify(list(w.requests_log))
