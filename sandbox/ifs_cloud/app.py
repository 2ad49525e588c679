"""The IFS Cloud emulator as a Flask app: IAM, OData projections, sandbox admin.

``create_app(config)`` wires :mod:`world` (state), :mod:`iam` (tokens), the projections of
:mod:`accounting`, :mod:`vouchers` and :mod:`parties` served by :mod:`router`, and :mod:`admin`.

Routes:

* ``POST /auth/realms/<namespace>/protocol/openid-connect/token`` (+ ``.well-known``)
* ``/main/ifsapplications/projection/v1/<Projection>.svc/...`` and the same under ``/int/``
  (ODP_ENDPOINTS): GET / POST / PATCH / DELETE as :mod:`router` describes; every call needs a
  bearer token (iam.authenticate).
* ``/_sandbox/...`` (admin, not IFS).

Projections served: CompanyHandling (ASSUMPTION), AccountsHandling, CodeBHandling..CodeJHandling,
AccountingPeriodsHandling, VoucherEntryAssistantHandling, VoucherHandling, ExternalVouchers,
ExternalVoucherLoadInformationHandling, CustomerHandling, ProjectResourcesHandling (ASSUMPTION).
"""
from __future__ import annotations

import copy
import time

from flask import Flask, g, request

from sandbox.ifs_cloud import accounting, admin, iam, odata, parties, router, vouchers
from sandbox.ifs_cloud.odata import ODataError
from sandbox.ifs_cloud.world import DEFAULTS, IfsWorld

PROJECTION_ROOT = "/ifsapplications/projection/v1"


def build_registry() -> dict[str, odata.Projection]:
    projections = accounting.projections() + vouchers.projections() + parties.projections()
    return {p.name: p for p in projections}


def _redacted_body() -> str | None:
    if request.path.startswith("/auth/"):
        form = {k: ("***" if k in ("client_secret", "refresh_token") else v) for k, v in request.form.items()}
        return str(form)
    raw = request.get_data(cache=True)
    return raw[:4000].decode("utf-8", "replace") if raw else None


def create_app(config: dict | None = None) -> Flask:
    """The emulator; ``config`` overrides :data:`sandbox.ifs_cloud.world.DEFAULTS`."""
    cfg = copy.deepcopy(DEFAULTS)
    cfg.update(config or {})
    world = IfsWorld(cfg)
    registry = build_registry()
    app = Flask("sandbox.ifs_cloud")
    app.extensions["ifs_cloud"] = world
    app.extensions["ifs_cloud_registry"] = registry
    app.url_map.strict_slashes = False

    def service_root(tier: str = "main") -> str:
        return f"{request.host_url.rstrip('/')}/{tier}{PROJECTION_ROOT}"

    def scope_of(path: str) -> str | None:
        if path.startswith("/auth/"):
            return "iam"
        if path.startswith(("/main/", "/int/")):
            return "projection"
        return None

    @app.before_request
    def _faults():
        g.started = time.monotonic()
        scope = scope_of(request.path)
        if scope is None:
            return None
        with world.lock:
            fault = admin.take_fault(world, scope, request.method, request.full_path)
        if fault is None:
            return None
        if fault["kind"] == "drop_response":
            g.drop = fault
            return None
        if fault["kind"] in ("stale_etag", "hold_answer"):
            setattr(g, "stale" if fault["kind"] == "stale_etag" else "hold", fault)
            return None
        return admin.fault_response(world, fault)

    @app.after_request
    def _log(resp):
        if scope_of(request.path) is None:
            return resp
        drop = getattr(g, "drop", None)
        original = resp.status_code
        if drop is not None:
            resp = odata.json_response({"error": {"code": "GATEWAY_TIMEOUT",
                                                  "message": "Injected: the answer was lost."}},
                                       int(drop.get("status", 504)))
        with world.lock:
            world.requests_log.append({
                "method": request.method, "path": request.path, "query": request.query_string.decode(),
                "status": resp.status_code, "processed_status": original,
                "if_match": request.headers.get("If-Match"), "body": _redacted_body(),
                "ms": round((time.monotonic() - g.get("started", time.monotonic())) * 1000, 1)})
        hold = getattr(g, "hold", None)
        if hold is not None:
            time.sleep(float(hold.get("seconds", 5)))      # carried out; the answer comes late
        return resp

    iam.register(app, world)

    @app.route(f"/<any(main,int):tier>{PROJECTION_ROOT}/<path:rest>",
               methods=["GET", "POST", "PATCH", "DELETE", "PUT"])
    def projection(tier: str, rest: str):
        delay = float(world.config.get("latency") or 0)
        if delay:
            time.sleep(delay)
        name, sep, tail = rest.partition(".svc")
        try:
            with world.lock:
                token = iam.authenticate(world, request.headers.get("Authorization"))
                proj = registry.get(name)
                if not sep or proj is None or (tail and not tail.startswith("/")):
                    raise odata.not_found(f"Projection '{name}' not found.")
                ctx = router.Ctx(world, proj, f"{service_root(tier)}/{name}.svc", registry,
                                 user=token["client_id"].upper())
                if getattr(g, "stale", None) is not None and request.headers.get("If-Match"):
                    addressed = router.resolve(ctx, tail.strip("/"), request.method)
                    if addressed.rec is not None:
                        world.touch(addressed.rec)    # another user saved it since the client read it
                return router.dispatch(ctx, request.method, tail, request.args, request.headers,
                                       request.get_data(cache=True))
        except ODataError as exc:
            return exc.response()

    admin.register(app, world, registry, service_root)
    return app
