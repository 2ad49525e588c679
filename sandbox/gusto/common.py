"""Helpers shared by the Gusto emulator's blueprints: JSON replies and error bodies, request
arguments, pagination, and token authentication with the per-grant rate limit.

Routes declare the token they need with :func:`requires`; the app's ``before_request`` hook
(:mod:`sandbox.gusto.app`) calls :func:`authenticate` for them, so a route body finds the
token record and grant in :func:`current_grant` / ``g.token``.
"""
from __future__ import annotations

import json
import math

from flask import Response, current_app, g, request

from .world import GustoWorld

# Error bodies. Not-Found and Conflict are the spec's Not-Found-Error-Object and
# Conflict-Error-Object x-examples (Gusto OpenAPI 2025-06-15).
NOT_FOUND = {"errors": [{"error_key": "request", "category": "not_found",
                         "message": "The requested resource was not found."}]}
CONFLICT = {"errors": [{"error_key": "base", "category": "invalid_resource_version",
                        "message": "You are attempting to update a resource using an out-of-date version."}]}
# ASSUMPTION: 429 body (https://docs.gusto.com/app-integrations/docs/rate-limits documents only
# the status and headers); shaped like Gusto's other error bodies.
RATE_LIMITED = {"errors": [{"error_key": "base", "category": "rate_limit_exceeded",
                            "message": "Rate limit exceeded"}]}
# ASSUMPTION: 401 body (https://docs.gusto.com/embedded-payroll/docs/company-access-tokens
# documents only the status).
UNAUTHORIZED = {"errors": [{"error_key": "base", "category": "unauthorized",
                            "message": "The access token is invalid, expired or revoked."}]}
# ASSUMPTION: 403 body for a token of the wrong kind (system vs company).
FORBIDDEN = {"errors": [{"error_key": "base", "category": "forbidden",
                         "message": "This token is not allowed to access this resource."}]}
# ASSUMPTION: 5xx bodies for injected faults.
SERVER_ERROR = {"errors": [{"error_key": "base", "category": "server_error",
                            "message": "Something went wrong. Please try again later."}]}


def error_body(key: str, category: str, message: str) -> dict:
    """A Gusto error body with one error ``{"errors": [{error_key, category, message}]}``
    (spec ``Unprocessable-Entity-Error-Object``; categories:
    https://docs.gusto.com/embedded-payroll/docs/error-categories)."""
    return {"errors": [{"error_key": key, "category": category, "message": message}]}


def gusto_json(body, status: int = 200, headers: dict | None = None) -> Response:
    """``body`` as an ``application/json`` response with ``status`` and extra ``headers``."""
    resp = Response(json.dumps(body), status=status, mimetype="application/json")
    for k, v in (headers or {}).items():
        resp.headers[k] = str(v)
    return resp


def not_found() -> Response:
    """404 with the spec's Not-Found-Error-Object body."""
    return gusto_json(NOT_FOUND, 404)


def unprocessable(key: str, message: str, category: str = "invalid_attribute_value") -> Response:
    """422 with one error (spec ``Unprocessable-Entity-Error-Object``)."""
    return gusto_json(error_body(key, category, message), 422)


def world() -> GustoWorld:
    """The :class:`GustoWorld` of the running app."""
    return current_app.extensions["gusto"]


def deliverer():
    """The :class:`sandbox.gusto.delivery.Deliverer` of the running app."""
    return current_app.extensions["gusto_deliverer"]


def config() -> dict:
    """The running app's emulator configuration (``DEFAULTS`` plus overrides)."""
    return world().config


def request_json() -> dict:
    """The request body as a dict: JSON, else form fields (ASSUMPTION: form-encoded bodies are
    accepted too, as by Doorkeeper, the OAuth server behind Gusto), else ``{}``."""
    data = request.get_json(silent=True)
    if isinstance(data, dict):
        return data
    if request.form:
        return request.form.to_dict()
    return {}


def int_arg(name: str, default: int | None) -> int | None:
    """Query argument ``name`` as an int; ``default`` when absent or empty, -1 when not a number."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        return -1


def list_arg(name: str) -> list[str]:
    """Every value of a comma-separated, possibly repeated query argument (``?include=a,b``)."""
    values = []
    for raw in request.args.getlist(name):
        values.extend(v.strip() for v in raw.split(",") if v.strip())
    return values


def includes() -> set[str]:
    """The ``include`` query values as a set."""
    return set(list_arg("include"))


def paginate(items: list, *, forced: bool) -> tuple[list, dict] | Response:
    """Page ``items`` by ``page``/``per`` (default 25) and return ``(chunk, headers)`` with
    ``X-Page``, ``X-Per-Page``, ``X-Total-Count``, ``X-Total-Pages``
    (https://docs.gusto.com/app-integrations/docs/pagination). Spec ``pageParam``: "When
    unspecified, will load all objects unless endpoint forces pagination" (``forced``).
    A page or per below 1 (or not a number) → 422. ASSUMPTION: ``per`` above 100 is clamped
    to 100."""
    page = int_arg("page", None)
    per = int_arg("per", None)
    if (page is not None and page < 1) or (per is not None and per < 1):
        return unprocessable("page", "page and per must be positive integers")
    total = len(items)
    if page is None and not forced:
        if per is None:
            return items, {"X-Page": 1, "X-Per-Page": max(total, 1), "X-Total-Count": total,
                           "X-Total-Pages": 1}
        page = 1
    page = page or 1
    per_eff = min(per or 25, 100)
    pages = max(1, math.ceil(total / per_eff))
    chunk = items[(page - 1) * per_eff: page * per_eff]
    return chunk, {"X-Page": page, "X-Per-Page": per_eff, "X-Total-Count": total,
                   "X-Total-Pages": pages}


def paged_json(items: list, *, forced: bool = False) -> Response:
    """:func:`paginate` ``items`` into a 200 JSON array with the paging headers (or the 422)."""
    paged = paginate(items, forced=forced)
    if isinstance(paged, Response):
        return paged
    return gusto_json(paged[0], 200, paged[1])


# --------------------------------------------------------------------------- authentication
def requires(kind: str):
    """Decorator: the route needs a bearer token of ``kind`` — ``company`` (spec security
    ``CompanyAccessAuth``), ``system`` (``SystemAccessAuth``) or ``any``. The app's
    ``before_request`` hook authenticates before the route runs."""
    def _mark(view):
        view.gusto_token_kind = kind
        return view
    return _mark


def authenticate(kind: str) -> tuple[dict, dict] | Response:
    """Resolve the bearer token and charge its grant's rate budget.

    Returns copies of ``(token_record, grant)`` or the refusal: 401 for a missing, unknown,
    revoked or expired token (https://docs.gusto.com/embedded-payroll/docs/company-access-tokens),
    403 for a token of the wrong ``kind`` (ASSUMPTION), 429 with ``Retry-After`` once the
    grant has made ``rate_limit`` requests in the rolling ``rate_window``
    (https://docs.gusto.com/app-integrations/docs/rate-limits). Sets ``g.rate_headers``
    (``X-RateLimit-Limit``/``-Remaining``/``-Reset``) for the after-request hook.
    """
    w, cfg = world(), config()
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else None
    with w.lock:
        rec = w.access_tokens.get(token) if token else None
        if rec is None or rec["revoked"] or w.now() >= rec["expires_at"]:
            return gusto_json(UNAUTHORIZED, 401)
        grant = w.grants[rec["grant_id"]]
        if not rec["used"]:
            rec["used"] = True
            # Spec /oauth/token: "The previous refresh_token will be revoked on the first usage
            # of the new access_token." ASSUMPTION: the previous access token goes with it
            # (Doorkeeper keeps both in one record).
            prev = w.access_tokens.get(rec["previous_access"] or "")
            if prev is not None:
                prev["revoked"] = True
        if kind != "any" and grant["kind"] != kind:
            return gusto_json(FORBIDDEN, 403)
        now = w.now()
        window, limit, span = grant["window"], int(cfg["rate_limit"]), float(cfg["rate_window"])
        while window and window[0] <= now - span:
            window.popleft()
        reset_at = (window[0] + span) if window else now + span
        if len(window) >= limit:
            retry_after = max(1, math.ceil(window[0] + span - now))
            g.rate_headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": 0,
                              "X-RateLimit-Reset": int(math.ceil(reset_at))}
            return gusto_json(RATE_LIMITED, 429, {"Retry-After": retry_after})
        window.append(now)
        reset_at = window[0] + span
        # ASSUMPTION: X-RateLimit-Reset as epoch seconds (the doc says "datetime", no format).
        g.rate_headers = {"X-RateLimit-Limit": limit, "X-RateLimit-Remaining": limit - len(window),
                          "X-RateLimit-Reset": int(math.ceil(reset_at))}
        return dict(rec), dict(grant, window=None)


def current_grant() -> dict:
    """The grant (copy) of the token the before-request hook authenticated."""
    return g.grant


def company_guard(company_uuid: str | None) -> Response | None:
    """Strict access: a company token reaches only its own company
    (https://docs.gusto.com/app-integrations/docs/oauth2, "Multi-Company Authentication").
    Returns None when allowed, else the refusal. ASSUMPTION: another company's (or an
    unknown company's) resources answer 404 with the spec's Not-Found body, not 403."""
    if company_uuid is None or company_uuid not in world().companies \
            or current_grant()["company_uuid"] != company_uuid:
        return not_found()
    return None
