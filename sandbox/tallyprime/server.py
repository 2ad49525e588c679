"""Run the TallyPrime emulator on a real socket (tests, demos). Sandbox only."""
from __future__ import annotations

import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from sandbox import refuse_in_production

from .app import create_app


class _QuietHandler(WSGIRequestHandler):
    """Request handler that does not print an access-log line per request."""

    def log_request(self, *args, **kwargs):  # noqa: D401 - silence per-request access logs
        """Werkzeug hook: log nothing."""


def serve(host: str = "127.0.0.1", port: int = 0, config: dict | None = None, *,
          quiet: bool = True, env: str | None = None):
    """Start the emulator in a daemon thread; returns ``(server, thread, port)``.

    ``port=0`` picks a free port (the bound one is returned). The server is werkzeug's
    threaded server, so concurrent requests really arrive concurrently and the emulator's
    request lock serialises them. Stop with ``server.shutdown()``. The emulator object is
    ``server.app.extensions["tally_emulator"]``. ``quiet`` drops werkzeug's access log lines.
    Raises :class:`sandbox.ProductionRefused` when ``env`` (default ``ML_CONNECTOR_ENV``) is
    production.
    """
    refuse_in_production(env, "TallyPrime emulator")
    app = create_app(config)
    server = make_server(host, port, app, threaded=True,
                         request_handler=_QuietHandler if quiet else WSGIRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="tally-sandbox", daemon=True)
    thread.start()
    return server, thread, server.server_port
