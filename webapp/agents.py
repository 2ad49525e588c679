"""``POST /agents/register``: an agent exchanges its one-time enrolment code for its credential.

Body ``{"code": "<one-time code>"}`` (JSON). Answers 200 with the credential of
:func:`connector_tasks.agents.enrol.register` (the broker URL with the agent's own user and
password, its key prefix, its connections and lanes); 400 for a body that is not that JSON;
403 for an unknown, used or expired code (one answer for all three); 503 when the broker
refuses to create the agent's user. The code is the only thing that authenticates this call:
192 random bits, single use, 15 minutes; served over TLS in production (``PUBLIC_BASE_URL``).
"""
from __future__ import annotations

import logging

from flask import Blueprint, jsonify, request

from connector_tasks import runtime
from connector_tasks.agents.enrol import EnrolmentError, register
from connector_tasks.store.db import session_scope

log = logging.getLogger(__name__)
bp = Blueprint("agents", __name__)


@bp.post("/agents/register")
def register_agent():
    """See the module."""
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        return jsonify(error='expected a JSON body {"code": "<one-time code>"}'), 400
    try:
        with session_scope(runtime.settings().database_url) as s:
            credential = register(s, body["code"])
    except EnrolmentError as exc:
        return jsonify(error=str(exc)), 403
    except Exception:  # noqa: BLE001 - the broker refused the ACL user (e.g. Redis < 6)
        log.exception("agent registration failed")
        return jsonify(error="the broker did not accept the agent's user; see the web log"), 503
    log.info("agent %s registered for %s", credential["agent_id"], ", ".join(credential["connections"]))
    return jsonify(credential)
