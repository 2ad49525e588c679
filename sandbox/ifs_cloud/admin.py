"""Sandbox-only admin routes under ``/_sandbox/`` (NOT IFS) and the fault machinery.

* ``GET  /_sandbox/state``     config (no secrets), counters, pending faults, every table
* ``POST /_sandbox/reset``     back to the seed (config kept; tokens, faults and the log go too)
* ``POST /_sandbox/seed``      load more seed data (``{"companies": [...], "customers": [...],
  "project_resources": [...]}``, shapes as :func:`sandbox.ifs_cloud.world.default_seed`);
  ``{"replace": true, ...}`` empties the tables first
* ``POST /_sandbox/config``    change config keys (e.g. ``token_ttl``, ``upsert_without_if_match``)
* ``GET  /_sandbox/requests``  the request log (Authorization and client_secret redacted);
  ``DELETE`` empties it
* ``POST /_sandbox/faults``    one fault spec (or a list), by ``kind``:

  - queued, for the next ``count`` (default 1) matching requests — match on ``method``,
    ``path_contains`` and ``scope`` (``projection`` default, ``iam`` or ``all``):
      ``429``  -> 429 + ``Retry-After`` (``retry_after``, default 1). ASSUMPTION: IFS publishes no
                rate limits (https://docs.ifs.com/techdocs/ "OData Provider"); body ``{"error":{"code":"TOO_MANY_REQUESTS",...}}``.
      ``503``  -> 503 (+ ``Retry-After`` when given), code ``SERVICE_UNAVAILABLE`` (ASSUMPTION).
      ``mi_modified`` -> MI_MODIFIED_ERROR; ``style`` ``21r2`` = 500 "Service metadata already
                modified." (MI_MODIFIED_21R2), ``23r2`` = 503 "Cached Service metadata is outdated.
                Please try again." + Retry-After (MI_MODIFIED_23R2); default config ``mi_modified_style``.
      ``drop_response`` -> the request IS carried out, then the client gets ``status`` (default
                504) instead of the answer: the lost-response case a client must survive by asking
                IFS before it writes again.
      ``hold_answer`` -> the request IS carried out, then its answer is held ``seconds``
                (default 5) before it is sent: a client (or its worker) may die meanwhile.
      ``stale_etag`` -> the entity the request addresses (an action's entity) gets a new
                objversion just before a request carrying ``If-Match`` is handled, as if another
                user saved it between the client's read and its write: the request meets the
                real 412 rule.
  - immediate:
      ``expire_tokens`` -> every access token expires now.
      ``bump`` with ``projection`` and ``path`` (e.g. ``"CustomerInfoSet(CustomerId='1001')"``)
                -> a new objversion, so a client's ETag for it is stale.
      ``period`` with ``company``, ``year``, ``period``, ``status`` (Open / Closed /
                FinallyClosed) -> sets the ledger-00 period status.
      ``deactivate`` with ``company``, ``code_part`` (``A`` = account, ``B``..``J``), ``value``
                -> ValidUntil = yesterday (``activate`` puts 9999-12-31 back).
"""
from __future__ import annotations

import datetime as dt

from flask import Flask, request

from sandbox.ifs_cloud import iam, router
from sandbox.ifs_cloud.odata import ODataError, json_response
from sandbox.ifs_cloud.world import IfsWorld

QUEUED = {"429", "503", "mi_modified", "drop_response", "stale_etag", "hold_answer"}


def fault_response(world: IfsWorld, fault: dict):
    """The injected answer of a queued fault (not ``drop_response``)."""
    kind = fault["kind"]
    if kind == "429":
        return json_response({"error": {"code": "TOO_MANY_REQUESTS",
                                        "message": fault.get("message", "Too many requests.")}}, 429,
                             {"Retry-After": fault.get("retry_after", 1)})
    if kind == "503":
        headers = {"Retry-After": fault["retry_after"]} if fault.get("retry_after") is not None else {}
        return json_response({"error": {"code": "SERVICE_UNAVAILABLE",
                                        "message": fault.get("message", "The service is unavailable.")}}, 503, headers)
    style = fault.get("style") or world.config.get("mi_modified_style", "21r2")
    if style == "23r2":
        return ODataError(503, "MI_MODIFIED_ERROR", "Cached Service metadata is outdated. Please try again.",
                          headers={"Retry-After": fault.get("retry_after", 1)}).response()
    return ODataError(500, "MI_MODIFIED_ERROR", "Service metadata already modified.").response()


def take_fault(world: IfsWorld, scope: str, method: str, path: str) -> dict | None:
    """The first queued fault matching this request, with one use consumed (caller holds lock)."""
    for fault in list(world.faults):
        if fault.get("scope", "projection") not in (scope, "all"):
            continue
        if fault.get("method") and fault["method"].upper() != method:
            continue
        if fault.get("path_contains") and fault["path_contains"] not in path:
            continue
        fault["remaining"] -= 1
        if fault["remaining"] <= 0:
            world.faults.remove(fault)
        world.counters["faults_fired"] += 1
        return fault
    return None


def register(app: Flask, world: IfsWorld, registry: dict, service_root) -> None:
    """Add the admin routes; ``service_root()`` gives the projection root URL of this request."""

    @app.get("/_sandbox/state")
    def state():
        with world.lock:
            return json_response(world.state())

    @app.post("/_sandbox/reset")
    def reset():
        with world.lock:
            world.reset()
        return json_response({"reset": True})

    @app.post("/_sandbox/seed")
    def seed():
        spec = request.get_json(silent=True) or {}
        with world.lock:
            try:
                loaded = world.apply_seed(spec, replace=bool(spec.get("replace")))
            except (KeyError, ValueError, TypeError) as exc:
                return json_response({"error": f"bad seed: {exc!r}"}, 400)
        return json_response({"loaded": loaded})

    @app.post("/_sandbox/config")
    def config():
        changes = request.get_json(silent=True) or {}
        with world.lock:
            world.config.update(changes)
            return json_response({k: v for k, v in world.config.items() if k not in ("clients", "seed")})

    @app.get("/_sandbox/requests")
    def requests_log():
        with world.lock:
            return json_response(list(world.requests_log))

    @app.delete("/_sandbox/requests")
    def clear_requests():
        with world.lock:
            world.requests_log.clear()
        return json_response({"cleared": True})

    @app.post("/_sandbox/faults")
    def faults():
        spec = request.get_json(silent=True)
        specs = spec if isinstance(spec, list) else [spec or {}]
        results = []
        with world.lock:
            for one in specs:
                try:
                    results.append(_apply_fault(world, registry, service_root(), one))
                except (KeyError, ValueError) as exc:
                    return json_response({"error": f"bad fault spec {one!r}: {exc}"}, 400)
                except ODataError as exc:
                    return json_response({"error": f"fault target not found: {exc.message}"}, 404)
        return json_response({"results": results, "queued": len(world.faults)})


def _apply_fault(world: IfsWorld, registry: dict, root: str, spec: dict) -> dict:
    kind = str(spec.get("kind", ""))
    if kind in QUEUED:
        fault = dict(spec, kind=kind, remaining=int(spec.get("count", 1)))
        world.faults.append(fault)
        return {"queued": kind, "count": fault["remaining"]}
    if kind == "expire_tokens":
        return {"expired": iam.expire_all(world)}
    if kind == "bump":
        projection = registry[spec["projection"]]
        ctx = router.Ctx(world, projection, f"{root}/{projection.name}.svc", registry)
        target = router.resolve(ctx, spec["path"], "GET")
        if target.kind != "entity":
            raise ValueError("path must address one entity")
        world.touch(target.rec)
        return {"bumped": spec["path"], "objversion": target.rec["_objversion"]}
    if kind == "period":
        rec = world.set_period_status(str(spec["company"]), int(spec["year"]), int(spec["period"]),
                                      spec.get("status", "Closed"))
        return {"period": f"{int(spec['year'])}-{int(spec['period']):02d}", "status": rec["PeriodStatus"]}
    if kind in ("deactivate", "activate"):
        letter = str(spec.get("code_part", "A")).upper()
        table = "account" if letter == "A" else f"code_{letter.lower()}"
        rec = world.get(table, (str(spec["company"]), str(spec["value"])))
        if rec is None:
            raise KeyError(f"no {table} {spec['value']} in company {spec['company']}")
        rec["ValidUntil"] = (dt.date.today() - dt.timedelta(days=1)) if kind == "deactivate" else dt.date(9999, 12, 31)
        world.touch(rec)
        return {kind: f"{table} {spec['value']}", "ValidUntil": rec["ValidUntil"].isoformat()}
    raise ValueError(f"unknown fault kind {kind!r}")
