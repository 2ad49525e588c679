"""Who is calling: the operator behind a request's ``Authorization: Bearer`` token, or behind
the signed session cookie an earlier authenticated request established (OAuth connect).

Tokens are checked by :func:`connector_tasks.tenants.authenticate` (SHA-256 lookup; revoked
tokens refused). The legacy ``API_TOKEN`` (environment), when set, is an admin of the default
tenant (token id 0), compared in constant time. The cookie session (Flask's, signed with
``SECRET_KEY``) holds only the token's id, checked again against the store on every use, so a
revoked token's session ends with it.
"""
from __future__ import annotations

import hmac

from connector_tasks import runtime
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import DEFAULT_TENANT_ID, ApiToken
from connector_tasks.tenants import Caller, authenticate, token_active

LEGACY = Caller(token_id=0, tenant_id=DEFAULT_TENANT_ID, role="admin")


def bearer(request) -> str | None:
    """The token of ``Authorization: Bearer <token>``, or ``None``."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def caller_of_token(token: str) -> Caller | None:
    """The caller of ``token`` (a stored token, or the legacy ``API_TOKEN``), or ``None``."""
    legacy = runtime.settings().api_token
    if legacy and hmac.compare_digest(token.encode("utf-8", "surrogatepass"), legacy.encode()):
        return LEGACY
    with session_scope(runtime.settings().database_url) as s:
        return authenticate(s, token)


def caller_from_request(request) -> Caller | None:
    """The caller of ``request``'s Bearer token, or ``None`` (no, unknown or revoked token)."""
    token = bearer(request)
    return caller_of_token(token) if token else None


def caller_of_session(session) -> Caller | None:
    """The caller recorded in the signed cookie ``session`` by :func:`remember`, while its
    token is still active (the legacy token: while ``API_TOKEN`` is set), else ``None``."""
    token_id = session.get("operator_token")
    if not isinstance(token_id, int):
        return None
    if token_id == 0:
        return LEGACY if runtime.settings().api_token else None
    with session_scope(runtime.settings().database_url) as s:
        if not token_active(s, token_id):
            return None
        row = s.get(ApiToken, token_id)
        return Caller(token_id=row.id, tenant_id=row.tenant_id, role=row.role)


def remember(session, caller: Caller) -> None:
    """Record ``caller`` (its token id only) in the signed cookie ``session``."""
    session["operator_token"] = caller.token_id
