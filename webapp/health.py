"""``GET /healthz``: the store, Redis and the credential vault answer."""
from __future__ import annotations

import secrets

from flask import Blueprint, jsonify
from sqlalchemy import select, text

from connector_tasks import runtime
from connector_tasks.store.db import session_scope
from connector_tasks.store.models import Connection

bp = Blueprint("health", __name__)


def crypto_ok() -> tuple[bool, str]:
    """Whether the vault works: a random value survives an encrypt+decrypt round trip under
    ``FERNET_KEYS``, and the most recently stored credentials still decrypt (a key dropped too
    early shows here, not as 500s on every webhook). ``(ok, detail)``; never raises."""
    try:
        vault = runtime.vault()
        probe = secrets.token_hex(8)
        if vault.decrypt(vault.encrypt({"probe": probe})) != {"probe": probe}:
            return False, "encrypt/decrypt round trip differs"
        with session_scope(runtime.settings().database_url) as s:
            token = s.scalar(select(Connection.credentials).where(Connection.credentials.is_not(None))
                             .order_by(Connection.id.desc()).limit(1))
        if token:
            vault.decrypt(token)
        return True, "ok"
    except Exception as exc:  # reported, never raised: this is the health check
        return False, type(exc).__name__ + (f": {getattr(exc, 'message', '')}" if getattr(exc, "message", "") else "")


@bp.get("/healthz")
def healthz():
    """``{"ok": bool, "database": bool, "redis": bool, "crypto": bool}`` (plus
    ``"crypto_detail"`` when the vault fails); 503 when something is down."""
    checks = {}
    try:
        with session_scope(runtime.settings().database_url) as s:
            s.execute(text("SELECT 1"))
        checks["database"] = True
    except Exception:
        checks["database"] = False
    try:
        checks["redis"] = bool(runtime.redis_client().ping())
    except Exception:
        checks["redis"] = False
    checks["crypto"], detail = crypto_ok()
    ok = all(checks.values())
    extra = {} if checks["crypto"] else {"crypto_detail": detail}
    return jsonify(ok=ok, **checks, **extra), 200 if ok else 503
