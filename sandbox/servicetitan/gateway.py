"""What stands in front of every API call: the request log, the two credentials, the tenant
check, injected faults, the rate limit, and the handler decorator :func:`api`.

Order for an API path ``/{module}/v2/tenant/{tenant}/…`` (ASSUMPTION: the order of the checks;
ServiceTitan does not document it):

1. log the request (method, path, query, headers without secrets, body);
2. ``ST-App-Key`` missing → 401 with the text "Application key not present, check ST-App-Key
   header value." (§5, from a 3rd-party live probe; OAS ``securitySchemes.appKey``);
   an app key the emulator does not know → 401 (ASSUMPTION: wording);
3. ``Authorization: Bearer`` missing, unknown or expired → 401 with ``WWW-Authenticate: Bearer
   error="invalid_token"`` and an empty body (OAS ``securitySchemes.bearerToken``;
   ASSUMPTION: the RFC 6750 header and empty body, as ASP.NET's JWT handler answers);
4. the token was issued for another tenant's client credentials → **403** (ASSUMPTION: the
   token authenticates but is not authorised for that tenant; client id/secret are per tenant,
   developer.servicetitan.io/docs/faqs-app-key-client-id-secret/, and third-party notes tie
   ServiceTitan 403s to missing access rather than bad credentials);
5. an injected fault queued with ``when: "before"`` answers instead (not counted as admitted);
6. the rate limit: 60 requests per second per (app key, tenant) (§5), counted per one-second
   window; beyond it → 429 with ``Retry-After`` (§5: "honour Retry-After"; ASSUMPTION: whole
   seconds to the next window, so ``1``, and an ``ApiErrorResponse`` body). Requests refused in
   steps 2–5 are not counted (ASSUMPTION);
7. configured ``latency`` and fault delays are slept (outside the world lock);
8. the handler runs; a fault queued with ``when: "after"`` then replaces its answer (the
   change is kept: a "lost response").
"""
from __future__ import annotations

import functools
import math
import re
import time

from flask import Response, current_app, g, request

from .common import ApiError, error_body, json_response
from .world import World, app_key_digest

API_PATH = re.compile(r"^/(?P<module>[a-z][a-z-]*)/v2/tenant/(?P<tenant>[^/]+)(?:/|$)")
TOKEN_PATH = "/connect/token"
APP_KEY_MISSING = "Application key not present, check ST-App-Key header value."
APP_KEY_UNKNOWN = "Application key is not valid, check ST-App-Key header value."  # ASSUMPTION
SECRET_FORM_FIELDS = re.compile(r"(client_secret=)[^&]*")


def world() -> World:
    return current_app.extensions["servicetitan"]


def api(fn):
    """Run a resource handler under the world lock with ``(world, tenant data, **path args)``."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        w = world()
        with w.lock:
            return fn(w, g.tenant_data, *args, **kwargs)
    return wrapper


# ---------------------------------------------------------------------------------- faults
def take_fault(w: World, target: str, when: str) -> dict | None:
    """The first queued fault matching this request (target ``api``/``token``, phase, optional
    ``method`` and ``path`` substring and ``tenant``); its count is decremented."""
    for fault in list(w.faults):
        if fault["target"] != target or fault["when"] != when:
            continue
        if fault.get("method") and fault["method"].upper() != request.method:
            continue
        if fault.get("path") and fault["path"] not in request.path:
            continue
        if fault.get("tenant") is not None and str(fault["tenant"]) != str(g.get("tenant_id")):
            continue
        fault["remaining"] -= 1
        if fault["remaining"] <= 0:
            w.faults.remove(fault)
        w.counters["faults_injected"] += 1
        return fault
    return None


def fault_response(fault: dict) -> Response | None:
    """The injected answer of ``fault`` (None for a pure delay)."""
    status = fault.get("status")
    if not status:
        return None
    headers = {}
    if status == 429:
        headers["Retry-After"] = int(fault.get("retry_after", 1))
    if fault["target"] == "token":
        # ASSUMPTION: an identity-server outage answers a plain text error page.
        return Response("Service Unavailable (injected)", status=status, mimetype="text/plain",
                        headers=headers)
    titles = {429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
              503: "Service Unavailable", 504: "Gateway Timeout"}
    return json_response(error_body(status, titles.get(status, "Injected fault") + " (injected)"),
                         status, headers)


# ---------------------------------------------------------------------------------- hooks
def _log_entry(w: World) -> dict:
    raw = request.get_data(cache=True, as_text=True)
    if request.path == TOKEN_PATH:
        raw = SECRET_FORM_FIELDS.sub(r"\1***", raw)
    headers = {}
    for k, v in request.headers.items():
        if k.lower() == "authorization":
            headers[k] = (v.split(" ", 1)[0] + " ***") if v else v
        elif k.lower() == "st-app-key":
            headers[k] = f"sha256:{app_key_digest(v)}"
        else:
            headers[k] = v
    return {"time": time.time(), "method": request.method, "path": request.path,
            "query": {k: request.args.getlist(k) for k in request.args.keys()},
            "headers": headers, "body": raw or None, "status": None, "tenant": None,
            "bucket": None, "window": None, "admitted": False, "fault": None}


def before_request():
    """Steps 1–7 of the module docstring for API paths; token-endpoint faults and logging."""
    path = request.path
    if path.startswith("/_sandbox"):
        return None
    w = world()
    with w.lock:
        entry = _log_entry(w)
        w.log(entry)
        g.log_entry = entry
        if path == TOKEN_PATH:
            answer, delay = None, 0.0
            fault = take_fault(w, "token", "before")
            if fault is not None:
                entry["fault"] = {k: fault.get(k) for k in ("status", "delay")}
                delay = float(fault.get("delay") or 0)
                answer = fault_response(fault)
        else:
            m = API_PATH.match(path)
            if m is None:
                return None
            refused = _gate(w, m, entry)
            if refused is not None:
                return refused
            answer = g.pop("early", None)
            delay = g.get("fault_delay", 0.0)
            if answer is None:
                delay += float(w.config.get("latency") or 0)
    if delay:
        time.sleep(delay)   # outside the lock: other requests go on meanwhile
    return answer


def _gate(w: World, m, entry: dict) -> Response | None:
    """Steps 2–6; sets ``g.tenant_data``. Caller holds the lock."""
    try:
        tenant_id = int(m.group("tenant"))
    except ValueError:
        return json_response(error_body(404, "Not Found"), 404)
    g.tenant_id = entry["tenant"] = tenant_id
    app_key = request.headers.get("ST-App-Key", "").strip()
    if not app_key:
        w.counters["unauthorized"] += 1
        return Response(APP_KEY_MISSING, status=401, mimetype="text/plain")
    if app_key not in w.config["app_keys"]:
        w.counters["unauthorized"] += 1
        return Response(APP_KEY_UNKNOWN, status=401, mimetype="text/plain")
    auth = request.headers.get("Authorization", "")
    token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    rec = w.tokens.get(token) if token else None
    if rec is None or time.time() >= rec["expires_at"]:
        w.counters["unauthorized"] += 1
        challenge = 'Bearer error="invalid_token"'
        if rec is not None:
            challenge += ', error_description="The token is expired"'
        return Response(b"", status=401, headers={"WWW-Authenticate": challenge})
    if rec["tenant"] != tenant_id or tenant_id not in w.tenants:
        w.counters["forbidden"] += 1
        return json_response(error_body(403, f"The access token is not authorised for tenant "
                                             f"{tenant_id}."), 403)
    g.tenant_data = w.tenants[tenant_id]
    fault = take_fault(w, "api", "before")
    if fault is not None:
        entry["fault"] = {k: fault.get(k) for k in ("status", "delay", "retry_after", "when")}
        g.fault_delay = float(fault.get("delay") or 0)
        answer = fault_response(fault)
        if answer is not None:
            g.early = answer     # answered (after the fault's delay) instead of the handler
            return None
    bucket = f"{app_key_digest(app_key)}-{tenant_id}"
    now = time.time()
    admitted, wait = w.admit(bucket, now)
    entry.update(bucket=bucket, window=int(now), admitted=admitted)
    if not admitted:
        return json_response(error_body(429, "Too Many Requests"), 429,
                             {"Retry-After": max(1, math.ceil(wait))})
    g.after_fault = take_fault(w, "api", "after")
    return None


def after_request(resp: Response) -> Response:
    entry = g.get("log_entry")
    fault = g.get("after_fault")
    if fault is not None:
        if fault.get("delay"):
            # processed, then the answer is late (a caller killed meanwhile never learns)
            time.sleep(float(fault["delay"]))
        replaced = fault_response(fault)
        if replaced is not None:
            if entry is not None:
                entry["fault"] = {"status": fault.get("status"), "when": "after",
                                  "original_status": resp.status_code}
            resp = replaced
    if entry is not None:
        with world().lock:
            entry["status"] = resp.status_code
    return resp


def handle_api_error(err: ApiError) -> Response:
    return json_response(error_body(err.status, err.title, err.errors, err.data), err.status)


def handle_http_error(exc) -> Response:
    """Unknown routes and methods as ``ApiErrorResponse`` JSON (ASSUMPTION: the real API's 404
    for an unknown path may be empty)."""
    code = getattr(exc, "code", 500) or 500
    return json_response(error_body(code, getattr(exc, "name", "Error")), code)
