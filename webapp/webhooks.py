"""``POST /webhooks/<system>/<connection>``: verified on raw bytes, stored, committed,
acknowledged, then left to the outbox relay (``WEBHOOK_ENQUEUE=relay``, the default: the broker
round-trip is off the request path) or enqueued here (``inline``). A body over
``MAX_WEBHOOK_BYTES`` answers 413 before it is read. If the broker (or the relay) is down the
event stays stored (``received``) and the relay or the sweeper enqueues it later."""
from __future__ import annotations

from flask import Blueprint, abort, jsonify, request

from connector_tasks import runtime
from connector_tasks.connectors.gusto import service as gusto_service
from connector_tasks.relay import hand_off

bp = Blueprint("webhooks", __name__)

RECEIVERS = {"gusto": gusto_service}


@bp.post("/webhooks/<system>/<connection>")
def receive(system: str, connection: str):
    """Receive one webhook delivery for ``connection`` of ``system``."""
    receiver = RECEIVERS.get(system)
    if receiver is None:
        abort(404)
    settings = runtime.settings()
    limit = settings.max_webhook_bytes
    if request.content_length is not None and request.content_length > limit:
        abort(413)
    body = request.get_data(cache=False)
    if len(body) > limit:
        abort(413)
    reply = receiver.receive_webhook(connection, body, request.headers)
    if reply.event_id is not None:
        hand_off(system, reply.event_id)
    return jsonify(reply.body), reply.status
