"""``GET /healthz``: the store and Redis answer."""
from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text

from connector_tasks import runtime
from connector_tasks.store.db import session_scope

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """``{"ok": bool, "database": bool, "redis": bool}``; 503 when something is down."""
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
    ok = all(checks.values())
    return jsonify(ok=ok, **checks), 200 if ok else 503
