"""OAuth connect routes: ``/oauth/<system>/start?connection=`` and ``/oauth/<system>/callback``,
for every system whose registry entry names an OAuth provider."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, request, url_for

from connector_tasks.connectors import registry
from connector_tasks.core.errors import ConnectorError

bp = Blueprint("oauth", __name__)


def _provider(system: str):
    spec = registry.find(system)
    if spec is None or not spec.oauth:
        abort(404)
    return spec.load("oauth")


def _redirect_uri(system: str) -> str:
    from connector_tasks import runtime

    return f"{runtime.settings().public_base_url}{url_for('oauth.callback', system=system)}"


@bp.get("/oauth/<system>/start")
def start(system: str):
    """Redirect the user to the provider's consent page for ``?connection=<name>``."""
    provider = _provider(system)
    name = request.args.get("connection", "")
    try:
        return redirect(provider.start(name, _redirect_uri(system)))
    except ConnectorError as exc:
        return jsonify(error=str(exc)), 400


@bp.get("/oauth/<system>/callback")
def callback(system: str):
    """Exchange the authorization code; show which account got connected."""
    provider = _provider(system)
    if "error" in request.args:
        return jsonify(error=request.args["error"]), 400
    try:
        conn = provider.callback(request.args.get("code", ""), request.args.get("state", ""), _redirect_uri(system))
    except ConnectorError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(connection=conn.name, account=conn.account, status=conn.status)
