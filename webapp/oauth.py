"""OAuth connect routes: ``/oauth/<system>/start?connection=<name>[&replace=1]`` and
``/oauth/<system>/callback``, for every system whose registry entry names an OAuth provider.

``start`` needs an authenticated operator: ``Authorization: Bearer <token>`` (an operator or
admin token, :mod:`webapp.auth`), or the signed session cookie an earlier authenticated
``start`` (or ``POST /oauth/session``) set in this browser. No operator → 401; a connection
outside the operator's tenant → 404 (as for one that does not exist). ``start`` records the
operator in the session cookie with a random session nonce, and keeps ``state`` with the
connection, the operator's token id, that nonce and ``replace``
(:class:`connector_tasks.core.oauth.ConnectStates`, 10 min, single use).

``callback`` takes the state (unknown, expired or used → 400), then requires the same browser
session (the cookie's nonce equals the state's → else 403, and the state is spent) and the
operator's token still active (→ else 401). The provider then exchanges the code; a company
other than the one already connected is refused with 409 unless the operator chose
``replace=1`` at start, and nothing is changed (RFC 6749 §10.12,
https://www.rfc-editor.org/rfc/rfc6749#section-10.12).
"""
from __future__ import annotations

import hmac
import secrets

from flask import Blueprint, abort, jsonify, redirect, request, session, url_for

from connector_tasks.connectors import registry
from connector_tasks.core.errors import ConnectorError
from webapp.auth import caller_from_request, caller_of_session, remember

bp = Blueprint("oauth", __name__)


def _provider(system: str):
    spec = registry.find(system)
    if spec is None or not spec.oauth:
        abort(404)
    return spec.load("oauth")


def _redirect_uri(system: str) -> str:
    from connector_tasks import runtime

    return f"{runtime.settings().public_base_url}{url_for('oauth.callback', system=system)}"


def _states():
    from connector_tasks import runtime
    from connector_tasks.core.oauth import ConnectStates

    return ConnectStates(runtime.redis_client())


def _operator():
    """The operator of this request (Bearer token, else the session cookie), remembered in the
    session with a session nonce; ``None`` when there is none."""
    caller = caller_from_request(request) or caller_of_session(session)
    if caller is not None:
        if session.get("operator_token") != caller.token_id:
            session["oauth_nonce"] = secrets.token_urlsafe(24)  # a new operator, a new session
        remember(session, caller)
        session.setdefault("oauth_nonce", secrets.token_urlsafe(24))
    return caller


@bp.post("/oauth/session")
def open_session():
    """Exchange ``Authorization: Bearer <token>`` for the session cookie (so the operator's
    browser can then open ``/oauth/<system>/start`` links). 401 without a valid token."""
    if caller_from_request(request) is None:
        return jsonify(error="operator token missing, unknown or revoked"), 401
    caller = _operator()
    return jsonify(tenant_id=caller.tenant_id, role=caller.role)


@bp.get("/oauth/<system>/start")
def start(system: str):
    """Redirect the operator to the provider's consent page for ``?connection=<name>``
    (``&replace=1``: the operator means to re-point a connected connection to another
    account)."""
    from connector_tasks import runtime
    from connector_tasks.connections import get_connection
    from connector_tasks.core.oauth import PendingConnect
    from connector_tasks.store.db import session_scope

    provider = _provider(system)
    caller = _operator()
    if caller is None:
        return jsonify(error="connecting an account needs an operator of its tenant "
                             "(Authorization: Bearer <token>, or POST /oauth/session first)"), 401
    name = request.args.get("connection", "")
    with session_scope(runtime.settings().database_url) as s:
        try:
            get_connection(s, name, system=system, scope=caller.scope)
        except ConnectorError:
            return jsonify(error=f"no {system} connection named {name!r}"), 404
    state = _states().issue(PendingConnect(connection=name, token_id=caller.token_id,
                                           session=session["oauth_nonce"],
                                           replace=request.args.get("replace") == "1"))
    try:
        return redirect(provider.authorization_url(name, _redirect_uri(system), state))
    except ConnectorError as exc:
        return jsonify(error=str(exc)), 400


@bp.get("/oauth/<system>/callback")
def callback(system: str):
    """Exchange the authorization code in the operator's session; show which account got
    connected (see the module's rules for 400/401/403/409)."""
    from connector_tasks import runtime
    from connector_tasks.core.oauth import AccountMismatchError
    from connector_tasks.store.db import session_scope
    from connector_tasks.tenants import token_active

    provider = _provider(system)
    pending = _states().take(request.args.get("state", ""))
    if pending is None:
        return jsonify(error="OAuth state is unknown, expired or used; start the connection again"), 400
    nonce = session.get("oauth_nonce")
    if not isinstance(nonce, str) or not hmac.compare_digest(nonce.encode(), pending.session.encode()) \
            or session.get("operator_token") != pending.token_id:
        return jsonify(error="this authorization was started in another browser session; "
                             "start it again from yours"), 403
    with session_scope(runtime.settings().database_url) as s:
        active = token_active(s, pending.token_id) if pending.token_id else bool(runtime.settings().api_token)
    if not active:
        return jsonify(error="the operator token that started this authorization is revoked"), 401
    if "error" in request.args:
        return jsonify(error=request.args["error"]), 400
    try:
        conn = provider.complete(pending.connection, request.args.get("code", ""), _redirect_uri(system),
                                 replace=pending.replace)
    except AccountMismatchError as exc:
        return jsonify(error=str(exc)), 409
    except ConnectorError as exc:
        return jsonify(error=str(exc)), 400
    return jsonify(connection=conn.name, account=conn.account, status=conn.status)
