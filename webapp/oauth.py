"""OAuth connect routes: ``/oauth/<system>/start?connection=`` and ``/oauth/<system>/callback``."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, redirect, request, url_for

from connector_tasks.connectors.gusto import service as gusto_service
from connector_tasks.core.errors import ConnectorError

bp = Blueprint("oauth", __name__)
PROVIDERS = {"gusto": gusto_service}


def _redirect_uri(system: str) -> str:
    from connector_tasks import runtime

    return f"{runtime.settings().public_base_url}{url_for('oauth.callback', system=system)}"


@bp.get("/oauth/<system>/start")
def start(system: str):
    """Redirect the user to the provider's consent page for ``?connection=<name>``."""
    provider = PROVIDERS.get(system) or abort(404)
    name = request.args.get("connection", "")
    try:
        return redirect(provider.oauth_start(name, _redirect_uri(system)))
    except ConnectorError as exc:
        return jsonify(error=str(exc)), 400


@bp.get("/oauth/<system>/callback")
def callback(system: str):
    """Exchange the authorization code; show which company got connected."""
    provider = PROVIDERS.get(system) or abort(404)
    if "error" in request.args:
        return jsonify(error=request.args["error"]), 400
    try:
        conn = provider.oauth_callback(request.args.get("code", ""), request.args.get("state", ""),
                                       _redirect_uri(system))
    except ConnectorError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(connection=conn.name, account=conn.account, status=conn.status)
