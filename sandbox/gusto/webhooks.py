"""Webhook subscriptions and the event feed of the Gusto emulator (system token routes).

Flow (https://docs.gusto.com/embedded-payroll/docs/webhooks): create a subscription → Gusto
POSTs ``{"verification_token": …}`` to its URL → the subscriber confirms with ``PUT …/verify``
→ verified subscriptions receive the events of their ``subscription_types``. Subscriptions
are per application: one sees the events of every company (spec 2025-06-15 operation
descriptions of ``get-v1-webhook-subscriptions``). ``GET /v1/events`` is the poll fallback.
"""
from __future__ import annotations

import fnmatch
import hmac
import uuid

from flask import Blueprint, Response, request

from .common import (deliverer, gusto_json, int_arg, not_found, request_json, requires,
                     unprocessable, world)

blueprint = Blueprint("gusto_webhooks", __name__)

# Spec POST /v1/webhook_subscriptions requestBody enum.
SUBSCRIPTION_TYPES = ("BankAccount", "Company", "CompanyBenefit", "Contractor", "ContractorPayment",
                      "Employee", "EmployeeBenefit", "EmployeeJobCompensation", "ExternalPayroll",
                      "Form", "Location", "Notification", "Payroll", "PayrollSync", "PaySchedule",
                      "PeopleBatch", "Signatory")


def public_subscription(sub: dict) -> dict:
    """The spec's ``Webhook-Subscription`` ``{uuid, url, status, subscription_types}`` (the
    verification token is never shown)."""
    return {k: sub[k] for k in ("uuid", "url", "status", "subscription_types")}


def _check_types(body: dict) -> Response | None:
    types = body.get("subscription_types")
    if not isinstance(types, list) or not types or any(t not in SUBSCRIPTION_TYPES for t in types):
        return unprocessable("subscription_types", "Subscription types must be a non-empty list of: "
                             + ", ".join(SUBSCRIPTION_TYPES))
    return None


def _send_verification(sub: dict) -> None:
    deliverer().deliver("verification", None, sub, {"verification_token": sub["verification_token"]})


@blueprint.route("/v1/webhook_subscriptions", methods=["GET", "POST"])
@requires("system")
def subscriptions():
    """Spec ``get-v1-webhook-subscriptions`` (200 list) and ``post-v1-webhook-subscription``
    ``{url, subscription_types}`` → 201 ``pending`` subscription, then the URL receives the
    signed verification token POST, retried like events. A URL that is not http(s), or types
    outside the spec's enum → 422."""
    w = world()
    if request.method == "GET":
        with w.lock:
            return gusto_json([public_subscription(s) for s in w.subscriptions.values()])
    body = request_json()
    url = body.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return unprocessable("url", "Url is invalid")
    bad = _check_types(body)
    if bad is not None:
        return bad
    sub = {"uuid": str(uuid.uuid4()), "url": url, "status": "pending",
           "subscription_types": list(dict.fromkeys(body["subscription_types"])),
           "verification_token": str(uuid.uuid4())}
    with w.lock:
        w.subscriptions[sub["uuid"]] = sub
        snapshot = dict(sub)
    _send_verification(snapshot)
    return gusto_json(public_subscription(snapshot), 201)


@blueprint.route("/v1/webhook_subscriptions/<sid>", methods=["GET", "PUT", "DELETE"])
@requires("system")
def subscription(sid):
    """Spec ``get-v1-webhook-subscription-uuid`` (200), ``put-v1-webhook-subscription-uuid``
    ``{subscription_types}`` (200; bad types → 422) and ``delete-v1-webhook-subscription-uuid``
    (204). Unknown subscription → 404."""
    w = world()
    with w.lock:
        sub = w.subscriptions.get(sid)
        if sub is None:
            return not_found()
        if request.method == "GET":
            return gusto_json(public_subscription(sub))
        if request.method == "DELETE":
            del w.subscriptions[sid]
            return Response(status=204)
    body = request_json()
    bad = _check_types(body)
    if bad is not None:
        return bad
    with w.lock:
        sub = w.subscriptions.get(sid)
        if sub is None:
            return not_found()
        sub["subscription_types"] = list(dict.fromkeys(body["subscription_types"]))
        return gusto_json(public_subscription(sub))


@blueprint.put("/v1/webhook_subscriptions/<sid>/verify")
@requires("system")
def subscription_verify(sid):
    """Spec ``put-v1-verify-webhook-subscription-uuid``: ``{verification_token}`` → 200, status
    ``verified``; a wrong token → 422 with the spec's ``invalid_token`` example body; unknown
    subscription → 404."""
    w = world()
    token = request_json().get("verification_token")
    with w.lock:
        sub = w.subscriptions.get(sid)
        if sub is None:
            return not_found()
        if not isinstance(token, str) or not hmac.compare_digest(token, sub["verification_token"]):
            return unprocessable("base", "Invalid verification token")
        sub["status"] = "verified"
        return gusto_json(public_subscription(sub))


@blueprint.get("/v1/webhook_subscriptions/<sid>/request_verification_token")
@requires("system")
def subscription_resend(sid):
    """Spec ``get-v1-webhook-subscription-verification-token-uuid``: re-POST the verification
    token to the URL → 200 ``{"message": …}`` (``Webhook-Verification-Token-Response``);
    unknown subscription → 404."""
    w = world()
    with w.lock:
        sub = w.subscriptions.get(sid)
        snapshot = dict(sub) if sub else None
    if snapshot is None:
        return not_found()
    _send_verification(snapshot)
    return gusto_json({"message": "Success! The subscriber will be notified with the verification token"})


@blueprint.get("/v1/events")
@requires("system")
def events():
    """Spec ``get-events`` → 200 array of ``Event``, the last 30 days; ``starting_after_uuid``
    (exclusive cursor), ``limit`` 1..100 default 25, ``event_type`` exact or wildcard
    (``employee.*``), ``resource_uuid``, ``sort_order`` asc (default) | desc. ASSUMPTION: a
    bad limit or sort order, or an unknown cursor → 422."""
    limit = int_arg("limit", 25)
    if limit is None or not 1 <= limit <= 100:
        return unprocessable("limit", "limit must be between 1 and 100")
    order = request.args.get("sort_order") or "asc"
    if order not in ("asc", "desc"):
        return unprocessable("sort_order", "sort_order must be asc or desc")
    w = world()
    with w.lock:
        cutoff = w.now() - 30 * 86400
        items = [dict(e) for e in w.events if e["timestamp"] >= cutoff]
    # stable sort: ties keep creation order
    items = sorted(items, key=lambda e: e["timestamp"]) if order == "asc" \
        else sorted(items[::-1], key=lambda e: -e["timestamp"])
    etype, resource = request.args.get("event_type"), request.args.get("resource_uuid")
    if etype:
        items = [e for e in items if fnmatch.fnmatchcase(e["event_type"], etype)]
    if resource:
        items = [e for e in items if e["resource_uuid"] == resource]
    after = request.args.get("starting_after_uuid")
    if after:
        idx = next((i for i, e in enumerate(items) if e["uuid"] == after), None)
        if idx is None:
            return unprocessable("starting_after_uuid", "No event found with the given uuid")
        items = items[idx + 1:]
    return gusto_json(items[:limit])
