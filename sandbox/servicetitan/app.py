"""Wiring of the ServiceTitan emulator: :func:`create_app`.

One Flask app serves both ServiceTitan hosts (ASSUMPTION: path prefixes do not overlap, so one
origin is enough): the auth host's ``POST /connect/token`` (:mod:`.auth`) and the API host's
``/{module}/v2/tenant/{tenant}/…`` (:mod:`.inventory`, :mod:`.pricebook`, :mod:`.settings`,
:mod:`.accounting`), behind the checks of :mod:`.gateway`; plus the sandbox-only
``/_sandbox/…`` routes (:mod:`.admin`). The world (:class:`.world.World`) is
``app.extensions["servicetitan"]``.
"""
from __future__ import annotations

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import accounting, admin, auth, inventory, pricebook, settings
from .common import ApiError
from .gateway import after_request, before_request, handle_api_error, handle_http_error
from .world import World, copy_config


def create_app(config: dict | None = None) -> Flask:
    """The emulator as a Flask app; ``config`` overrides :data:`.world.DEFAULTS` (``tenants``,
    ``app_keys``, ``token_ttl``, ``rate_limit``, ``latency``, ``request_log_limit``, ``seed``,
    ``unique_vendor_names``, ``unique_material_codes``). Serve it threaded
    (:func:`sandbox.servicetitan.server.serve`)."""
    app = Flask("sandbox.servicetitan")
    app.extensions["servicetitan"] = World(copy_config(config))
    app.before_request(before_request)
    app.after_request(after_request)
    app.register_error_handler(ApiError, handle_api_error)
    app.register_error_handler(HTTPException, handle_http_error)
    for module in (auth, inventory, pricebook, settings, accounting, admin):
        app.register_blueprint(module.bp)
    return app
