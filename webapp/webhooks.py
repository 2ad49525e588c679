"""``POST /webhooks/<system>/<connection>``: the system's receiver (its registry entry's
``webhook``) verifies the delivery on its raw bytes; an event is then stored, committed and
acknowledged, and left to the outbox relay (``WEBHOOK_ENQUEUE=relay``, the default: the broker
round-trip is off the request path) or enqueued here (``inline``). A body over
``MAX_WEBHOOK_BYTES`` answers 413 before it is read. If the broker (or the relay) is down the
event stays stored (``received``) and the relay or the sweeper enqueues it later."""
from __future__ import annotations

import re

from flask import Blueprint, abort, jsonify, request

from connector_tasks import runtime
from connector_tasks.connectors import registry
from connector_tasks.pipeline.inbound import receive as store_and_hand_off

bp = Blueprint("webhooks", __name__)

#: a connection name in a webhook URL: printable, no slash, at most 128 characters (longer or
#: stranger is "not found" without a store lookup)
_NAME = re.compile(r"[^\x00-\x1f\x7f/]{1,128}")


@bp.post("/webhooks/<system>/<connection>")
def receive(system: str, connection: str):
    """Receive one webhook delivery for ``connection`` of ``system``."""
    spec = registry.find(system)
    if spec is None or not spec.webhook or not _NAME.fullmatch(connection):
        abort(404)
    limit = runtime.settings().max_webhook_bytes
    if request.content_length is not None and request.content_length > limit:
        abort(413)
    body = request.get_data(cache=False)
    if len(body) > limit:
        abort(413)
    reply = store_and_hand_off(system, spec.load("webhook").receive(connection, body, request.headers))
    return jsonify(reply.body), reply.status
