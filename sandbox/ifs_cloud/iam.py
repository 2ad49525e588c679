"""IFS IAM (Keycloak-shaped) token endpoint and the bearer check of projection calls.

``POST /auth/realms/<namespace>/protocol/openid-connect/token`` (IAM_CLIENTS), form-encoded:

* ``grant_type=client_credentials`` with ``client_id`` + ``client_secret`` (or HTTP Basic, as
  Keycloak accepts), ``scope`` (IFS documents ``openid microprofile-jwt``) -> 200 with
  ``access_token, expires_in, refresh_expires_in, refresh_token, token_type, id_token,
  not-before-policy, session_state, scope``. ``expires_in`` defaults to 180 and
  ``refresh_expires_in`` to 1800 (the IFS sample; config ``token_ttl`` / ``refresh_ttl``). A
  refresh token is issued when config ``issue_refresh_token`` (default True, as in the IFS
  sample; plain Keycloak gives none for client credentials); ``id_token`` only when the scope
  asks for ``openid``.
* ``grant_type=refresh_token`` -> a new pair (ASSUMPTION: the old refresh token dies, Keycloak's
  "revoke refresh token" setting).
* unknown client / wrong secret -> 401 ``{"error":"invalid_client","error_description":"Invalid
  client or Invalid client credentials"}`` (KEYCLOAK_CLIENT_AUTH; Keycloak 20 said
  ``unauthorized_client`` — ASSUMPTION that IFS IAM runs a recent Keycloak); missing
  ``grant_type`` -> 400 ``invalid_request`` "Missing form parameter: grant_type"; other grants ->
  400 ``unsupported_grant_type``; unknown namespace -> 404 ``{"error":"Realm does not exist"}``
  (ASSUMPTION: Keycloak wording).

Tokens look like Keycloak JWTs (header.payload.signature, payload with ``exp``, ``iat``, ``azp``,
``scope``...) but the signature is random: the emulator checks tokens by lookup, never by
signature.

Projection calls need ``Authorization: Bearer <access_token>``; missing, unknown or expired ->
401 with ``WWW-Authenticate: Bearer realm="<namespace>", error="invalid_token"`` and an IFS-style
JSON error (ASSUMPTION: IFS's exact 401 body is not documented).
"""
from __future__ import annotations

import base64
import json
import secrets
import time
import uuid

from flask import Flask, request

from sandbox.ifs_cloud.odata import ODataError, json_response
from sandbox.ifs_cloud.world import IfsWorld


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(payload: dict) -> str:
    header = {"alg": "RS256", "typ": "JWT", "kid": "ifs-sandbox"}
    return ".".join([_b64url(json.dumps(header).encode()), _b64url(json.dumps(payload).encode()),
                     _b64url(secrets.token_bytes(64))])


def _oauth_error(status: int, error: str, description: str | None = None):
    body = {"error": error}
    if description:
        body["error_description"] = description
    return json_response(body, status)


def issue(world: IfsWorld, client_id: str, scope: str) -> dict:
    """A token reply for ``client_id`` (caller holds the lock)."""
    cfg, now = world.config, int(time.time())
    ttl, refresh_ttl = int(cfg["token_ttl"]), int(cfg["refresh_ttl"])
    issuer = f"{request.host_url.rstrip('/')}/auth/realms/{cfg['namespace']}"
    session = str(uuid.uuid4())
    granted = " ".join(dict.fromkeys((scope.split() if scope else []) + ["profile", "email"]))
    access = _jwt({"exp": now + ttl, "iat": now, "jti": str(uuid.uuid4()), "iss": issuer, "aud": "account",
                   "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, client_id)), "typ": "Bearer", "azp": client_id,
                   "session_state": session, "scope": granted,
                   "preferred_username": f"service-account-{client_id}"})
    world.access_tokens[access] = {"client_id": client_id, "expires_at": time.time() + ttl, "scope": granted}
    body = {"access_token": access, "expires_in": ttl}
    if cfg.get("issue_refresh_token", True):
        refresh = _jwt({"exp": now + refresh_ttl, "iat": now, "jti": str(uuid.uuid4()), "iss": issuer,
                        "typ": "Refresh", "azp": client_id, "session_state": session})
        world.refresh_tokens[refresh] = {"client_id": client_id, "expires_at": time.time() + refresh_ttl,
                                         "scope": scope}
        body.update({"refresh_expires_in": refresh_ttl, "refresh_token": refresh})
    else:
        body["refresh_expires_in"] = 0
    body.update({"token_type": "Bearer", "not-before-policy": 0, "session_state": session, "scope": granted})
    if "openid" in granted.split():
        body["id_token"] = _jwt({"exp": now + ttl, "iat": now, "iss": issuer, "aud": client_id,
                                 "typ": "ID", "azp": client_id, "session_state": session})
    world.counters["token_grants"] += 1
    return body


def _client_credentials() -> tuple[str | None, str | None]:
    auth = request.authorization
    if auth is not None and auth.type == "basic":
        return auth.username, auth.password
    return request.form.get("client_id"), request.form.get("client_secret")


def register(app: Flask, world: IfsWorld) -> None:
    """Add the IAM routes to ``app``."""

    @app.post("/auth/realms/<namespace>/protocol/openid-connect/token")
    def token(namespace: str):
        with world.lock:
            if namespace != world.config["namespace"]:
                return _oauth_error(404, "Realm does not exist")
            if not request.form.get("grant_type"):
                return _oauth_error(400, "invalid_request", "Missing form parameter: grant_type")
            client_id, secret = _client_credentials()
            if not client_id or world.config["clients"].get(client_id) != secret:
                world.counters["token_refusals"] += 1
                return _oauth_error(401, "invalid_client", "Invalid client or Invalid client credentials")
            grant = request.form["grant_type"]
            scope = request.form.get("scope", "")
            if grant == "client_credentials":
                return json_response(issue(world, client_id, scope))
            if grant == "refresh_token":
                rec = world.refresh_tokens.pop(request.form.get("refresh_token", ""), None)
                if rec is None or rec["client_id"] != client_id or rec["expires_at"] < time.time():
                    return _oauth_error(400, "invalid_grant", "Invalid refresh token")
                return json_response(issue(world, client_id, scope or rec["scope"]))
            return _oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")

    @app.get("/auth/realms/<namespace>/.well-known/openid-configuration")
    def discovery(namespace: str):
        if namespace != world.config["namespace"]:
            return _oauth_error(404, "Realm does not exist")
        base = f"{request.host_url.rstrip('/')}/auth/realms/{namespace}"
        return json_response({"issuer": base, "token_endpoint": f"{base}/protocol/openid-connect/token",
                              "grant_types_supported": ["client_credentials", "refresh_token"],
                              "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                                        "client_secret_basic"]})


def authenticate(world: IfsWorld, header: str | None) -> dict:
    """The token record behind ``Authorization: Bearer …`` or a 401 :class:`ODataError`
    (caller holds the lock)."""
    ns = world.config["namespace"]
    challenge = f'Bearer realm="{ns}"'
    if not header or not header.lower().startswith("bearer "):
        world.counters["unauthorized"] += 1
        raise ODataError(401, "UNAUTHORIZED", "Authentication required: send Authorization: Bearer <access token>.",
                         headers={"WWW-Authenticate": challenge})
    rec = world.access_tokens.get(header[7:].strip())
    if rec is None or rec["expires_at"] <= time.time():
        world.counters["unauthorized"] += 1
        raise ODataError(401, "UNAUTHORIZED", "The access token is not active (expired or unknown).",
                         headers={"WWW-Authenticate": f'{challenge}, error="invalid_token", '
                                                      f'error_description="Token is not active"'})
    return rec


def expire_all(world: IfsWorld) -> int:
    """Admin: every access token expires now (refresh tokens stay valid)."""
    for rec in world.access_tokens.values():
        rec["expires_at"] = 0
    return len(world.access_tokens)

