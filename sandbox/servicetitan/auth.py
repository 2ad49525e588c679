"""The auth host: ``POST /connect/token`` (served by the same app as the API; a client's auth
URL is ``<base>/connect/token``, its API base URL ``<base>``).

Rules (§5, developer.servicetitan.io/docs/oauth20/ and …/docs/get-going-first-api-call):

- ``Content-Type: application/x-www-form-urlencoded`` with ``grant_type=client_credentials``,
  ``client_id``, ``client_secret`` (optional ``scope``). ASSUMPTION: like IdentityServer the
  client may instead authenticate with HTTP Basic.
- Only the client-credentials grant exists; there is no refresh token (docs/oauth20/).
  Another grant → 400 ``{"error": "unsupported_grant_type"}`` (ASSUMPTION: RFC 6749 §5.2).
- Unknown client or wrong secret → 400 ``{"error": "invalid_client"}`` (§5, 3rd-party probe).
- Success → 200 ``{"access_token", "expires_in", "token_type": "Bearer"}``; ``expires_in`` is
  900 by default (§5: widely observed; official value UNCONFIRMED) and configurable
  (``token_ttl``). ASSUMPTION: no ``scope`` member (no source lists ServiceTitan's scope names).
- The client id/secret pair belongs to one tenant (docs/faqs-app-key-client-id-secret/): the
  token is valid for that tenant's paths only (see :mod:`sandbox.servicetitan.gateway`).
- Not rate limited by the API's 60/s (ASSUMPTION: a separate host).
"""
from __future__ import annotations

import secrets
import time

from flask import Blueprint, jsonify, request

from .gateway import world

bp = Blueprint("servicetitan_auth", __name__)


def _oauth_error(code: str, description: str | None = None, status: int = 400):
    body = {"error": code}
    if description:
        body["error_description"] = description
    resp = jsonify(body)
    resp.status_code = status
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.post("/connect/token")
def token():
    w = world()
    if "application/x-www-form-urlencoded" not in (request.content_type or ""):
        return _oauth_error("invalid_request", "form-encoded body required")  # ASSUMPTION
    form = request.form
    client_id, client_secret = form.get("client_id"), form.get("client_secret")
    if request.authorization and request.authorization.type == "basic":
        client_id = client_id or request.authorization.username
        client_secret = client_secret or request.authorization.password
    with w.lock:
        found = w.client(client_id or "")
        if found is None or not client_secret or found[1].get("client_secret") != client_secret:
            w.counters["token_refusals"] += 1
            return _oauth_error("invalid_client")
        if form.get("grant_type") != "client_credentials":
            w.counters["token_refusals"] += 1
            return _oauth_error("unsupported_grant_type")
        tenant_id = found[0]
        ttl = int(w.config["token_ttl"])
        now = time.time()
        for stale in [k for k, v in w.tokens.items() if v["expires_at"] <= now - 3600]:
            del w.tokens[stale]
        access = secrets.token_urlsafe(32)
        w.tokens[access] = {"tenant": tenant_id, "client_id": client_id, "issued_at": now,
                            "expires_at": now + ttl}
        w.counters["token_grants"] += 1
    resp = jsonify({"access_token": access, "expires_in": ttl, "token_type": "Bearer"})
    resp.headers["Cache-Control"] = "no-store"
    return resp
