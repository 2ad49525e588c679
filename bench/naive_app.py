"""Baseline webhook endpoints for bench/webhook_ingest.py (not part of the product).

``verify``: checks the HMAC and answers. ``enqueue``: checks the HMAC, publishes a task, answers
(no store, so a crash loses the event). Both read the token and broker from the environment
(``BENCH_TOKEN``, ``BENCH_BROKER``), as gunicorn runs them: ``bench.naive_app:verify_app()``.
"""
from __future__ import annotations

import hashlib
import hmac
import os

from flask import Flask, request


def _app(enqueue: bool) -> Flask:
    token = os.environ["BENCH_TOKEN"].encode()
    app = Flask("naive")
    celery = None
    if enqueue:
        from celery import Celery

        celery = Celery("naive", broker=os.environ["BENCH_BROKER"])
        celery.conf.update(task_ignore_result=True, result_backend=None)

    @app.post("/webhooks/gusto/<connection>")
    def receive(connection):
        body = request.get_data()
        expected = hmac.new(token, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Gusto-Signature", "")):
            return {"error": "bad signature"}, 401
        if celery is not None:
            celery.send_task("gusto.handle_event", args=[0], queue="naive")
        return {"status": "accepted"}, 200

    return app


def verify_app() -> Flask:
    """Verify only."""
    return _app(enqueue=False)


def enqueue_app() -> Flask:
    """Verify, then enqueue."""
    return _app(enqueue=True)
