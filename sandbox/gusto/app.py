"""Gusto API emulator (sandbox only, never production): :func:`create_app`.

The app holds one Gusto "world" in memory (:mod:`sandbox.gusto.world`) and serves it through
blueprints, one per concern:

* :mod:`~sandbox.gusto.oauth` — ``/oauth/authorize`` (GET, POST), ``/oauth/token``,
  ``/oauth/revoke``, ``/v1/token_info``;
* :mod:`~sandbox.gusto.companies` — ``/v1/companies/<cid>``;
* :mod:`~sandbox.gusto.payrolls` — ``/v1/companies/<cid>/payrolls[/<pid>]``;
* :mod:`~sandbox.gusto.people` — employees, earning types, pay schedules, jobs and
  compensations;
* :mod:`~sandbox.gusto.webhooks` — ``/v1/webhook_subscriptions…``, ``/v1/events``;
* :mod:`~sandbox.gusto.admin` — the sandbox-only ``/_sandbox/*`` routes (NOT Gusto; for tests
  and the demo).

This module wires them and owns the request hooks: request log, injected faults, the
``X-Gusto-API-Version`` rules, token authentication with the rate limit, the echoed version
and rate-limit headers, and JSON error bodies for unknown routes. Behaviour follows the Gusto
OpenAPI spec 2025-06-15 (operation ids and schema names cited where used) and the Gusto docs
pages cited; every behaviour no source confirms is marked ``ASSUMPTION``.

Config keys (defaults in :data:`DEFAULTS`): ``client_id``, ``client_secret``,
``min_api_version`` (``YYYY-MM-DD``), ``access_token_ttl`` (seconds), ``rate_limit``
(requests) per ``rate_window`` (seconds) per OAuth grant, ``delivery_attempts``,
``delivery_backoff`` (seconds; attempt *n* waits ``delivery_backoff * 2**n`` after failing),
``auto_approve`` (the consent page redirects at once), ``code_ttl`` (seconds, 600),
``redirect_uris`` (``None`` = any; else the registered list), ``delivery_timeout`` (seconds).

The app is served threaded: all state sits in :class:`GustoWorld`, guarded by one
``threading.Lock``. Webhook deliveries run in background threads.
"""
from __future__ import annotations

import datetime as dt
import json

from flask import Flask, Response, current_app, g, request

from . import admin, companies, oauth, payrolls, people, webhooks
from .common import RATE_LIMITED, SERVER_ERROR, authenticate, gusto_json, not_found
from .delivery import Deliverer, sign
from .world import (COMPANY_UUID, DEFAULTS, EXAMPLE_PAYROLL_FILE, ISO_DATE, OTHER_COMPANY_UUID,
                    PAYROLL_UUID, UNPROCESSED_PAYROLL_UUID, GustoWorld, load_example_payroll)

__all__ = ["create_app", "COMPANY_UUID", "OTHER_COMPANY_UUID", "PAYROLL_UUID",
           "UNPROCESSED_PAYROLL_UUID", "EXAMPLE_PAYROLL_FILE", "DEFAULTS", "sign",
           "load_example_payroll", "GustoWorld", "Deliverer"]

LOGGED_HEADERS = ("Authorization", "X-Gusto-API-Version", "Content-Type", "User-Agent")


def create_app(config: dict | None = None) -> Flask:
    """The Gusto emulator as a Flask app; ``config`` overrides :data:`DEFAULTS`.

    Serve it threaded (see :func:`sandbox.gusto.server.serve`). ``app.extensions["gusto"]`` is
    the :class:`GustoWorld` (tests may read it; HTTP is the interface) and
    ``app.extensions["gusto_deliverer"]`` its :class:`Deliverer`.
    """
    cfg = dict(DEFAULTS)
    cfg.update(config or {})
    world = GustoWorld(cfg)
    app = Flask("sandbox.gusto")
    app.extensions["gusto"] = world
    app.extensions["gusto_deliverer"] = Deliverer(world)
    for module in (oauth, companies, payrolls, people, webhooks, admin):
        app.register_blueprint(module.blueprint)
    app.before_request(_before)
    app.after_request(_after)
    # ASSUMPTION: an unknown path and an unrouted method both answer 404 with the spec's
    # Not-Found-Error-Object (Gusto's Rails router answers an unrouted method as an unknown path).
    app.register_error_handler(404, _unknown_route)
    app.register_error_handler(405, _unknown_route)
    return app


def _unknown_route(_exc) -> Response:
    return not_found()


def check_version() -> Response | None:
    """``X-Gusto-API-Version`` rules (https://docs.gusto.com/embedded-payroll/docs/api-versioning;
    406 body from https://docs.gusto.com/embedded-payroll/docs/getting-setup): absent → the
    application's minimum version; older than the minimum, in the future or not a date → 406
    ``{"name": "Invalid X-Gusto-API-Version Header", "message": …}``. Sets ``g.api_version``."""
    world = current_app.extensions["gusto"]
    cfg = world.config
    raw = request.headers.get("X-Gusto-API-Version")
    if raw is None:
        g.api_version = cfg["min_api_version"]
        return None
    g.api_version = raw
    try:
        ok = bool(ISO_DATE.match(raw)) and \
            dt.date.fromisoformat(cfg["min_api_version"]) <= dt.date.fromisoformat(raw) <= world.today()
    except ValueError:
        ok = False
    if ok:
        return None
    return gusto_json({"name": "Invalid X-Gusto-API-Version Header",
                       "message": f"Invalid API Version `{raw}`. Version must be >= your "
                                  f"application's minimum API version `{cfg['min_api_version']}` "
                                  f"and not in the future."}, 406)


def _log_request(world: GustoWorld) -> dict | None:
    """Append the request to ``world.requests_log`` and pop an injected fault for ``/v1``."""
    raw = request.get_data(cache=True, as_text=True)
    try:
        body_json = json.loads(raw) if raw else None
    except ValueError:
        body_json = None
    with world.lock:
        g.log_entry = {
            "time": world.now(), "method": request.method, "path": request.path,
            "query": {k: request.args.getlist(k) for k in request.args.keys()},
            "query_string": request.query_string.decode(),
            "headers": {k: request.headers[k] for k in LOGGED_HEADERS if k in request.headers},
            "body": raw, "json": body_json, "status": None}
        world.requests_log.append(g.log_entry)
        fault = None
        if request.path.startswith("/v1/") and world.faults:
            fault = world.faults[0]
            fault["remaining"] -= 1
            if fault["remaining"] <= 0:
                world.faults.popleft()
    return fault


def _before():
    """Request log, injected faults (``/_sandbox/faults``), version rules, then the token the
    route declared with :func:`sandbox.gusto.common.requires` (401/403/429). Sandbox routes
    skip all of it."""
    world = current_app.extensions["gusto"]
    g.rate_headers = {}
    g.api_version = request.headers.get("X-Gusto-API-Version") or world.config["min_api_version"]
    if request.path.startswith("/_sandbox/"):
        return None
    fault = _log_request(world)
    if fault is not None:
        if fault["status"] == 429:
            return gusto_json(RATE_LIMITED, 429, {"Retry-After": fault.get("retry_after", 1)})
        return gusto_json(SERVER_ERROR, fault["status"])
    if request.path.startswith("/v1/"):
        refused = check_version()
        if refused is not None:
            return refused
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    kind = getattr(view, "gusto_token_kind", None)
    if kind is not None and request.method != "OPTIONS":   # Flask answers OPTIONS itself
        res = authenticate(kind)
        if isinstance(res, Response):
            return res
        g.token, g.grant = res
    return None


def _after(resp: Response) -> Response:
    """Echo ``X-Gusto-API-Version`` and the rate-limit headers; record the status in the log."""
    if not request.path.startswith("/_sandbox/"):
        world = current_app.extensions["gusto"]
        resp.headers["X-Gusto-API-Version"] = g.get("api_version") or world.config["min_api_version"]
        for k, v in (g.get("rate_headers") or {}).items():
            resp.headers[k] = str(v)
        entry = g.get("log_entry")
        if entry is not None:
            with world.lock:
                entry["status"] = resp.status_code
    return resp
