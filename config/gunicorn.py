"""gunicorn's settings for the web process (``gunicorn -c python:config.gunicorn``), used by the
Procfile's ``web``, ``ml-connector web`` and the demo.

Slow clients: gunicorn's default ``sync`` worker serves one connection at a time and reads the
request in that one thread, so two sockets that send a body a byte at a time hold both workers
and ``/healthz`` times out. gunicorn's docs say sync workers need a buffering proxy in front
and recommend an async worker otherwise (https://docs.gunicorn.org/en/stable/design.html,
"Choosing a Worker Type"). ``gthread`` only waits 5 s for a connection's first bytes before
giving it a thread; a client that then trickles its body still holds the thread. We run
``gevent`` workers: each connection is a greenlet, so a slow upload costs a socket and a few KiB
while other requests go on (up to ``worker_connections`` per worker); the body limit
(``MAX_WEBHOOK_BYTES``, 413) still holds. A buffering proxy in front (nginx's default
``proxy_request_buffering on``) is welcome but not needed.

Variables: ``WEB_CONCURRENCY`` worker processes (2), ``WEB_WORKER_CONNECTIONS`` connections per
worker (1000), ``WEB_TIMEOUT`` seconds a worker may be silent before the arbiter restarts it (30),
``WEB_KEEPALIVE`` seconds an idle kept-alive connection is held (5). The bind address is the
command line's (``-b``).
"""
from __future__ import annotations

import os


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise SystemExit(f"{name} must be a positive whole number, got {raw!r}")
    return int(raw)


worker_class = "gevent"
workers = _int("WEB_CONCURRENCY", 2)
worker_connections = _int("WEB_WORKER_CONNECTIONS", 1000)
timeout = _int("WEB_TIMEOUT", 30)
graceful_timeout = 10
keepalive = _int("WEB_KEEPALIVE", 5)
# request line and headers: gunicorn's own bounds, tightened (webhooks send a few headers)
limit_request_line = 4094
limit_request_fields = 64
limit_request_field_size = 8190
