"""Serving an emulator: a threaded werkzeug server in a daemon thread (tests, the demo), or in
the foreground until Ctrl-C (``python -m sandbox.<system>.server``)."""
from __future__ import annotations

import threading

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """A request handler that writes no access-log line per request."""

    def log_request(self, *args, **kwargs) -> None:  # noqa: D401 - werkzeug hook
        """Werkzeug hook: log nothing."""


def start(app, host: str, port: int, name: str) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve Flask ``app`` on ``host:port`` (0 = a free port) in a daemon thread called
    ``<name>-<port>``; the server keeps the app as ``server.app``. Returns (server, thread);
    stop with ``server.shutdown()`` (it polls every 50 ms)."""
    server = make_server(host, port, app, threaded=True, request_handler=QuietHandler)
    server.app = app  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"{name}-{server.server_port}", daemon=True)
    thread.start()
    return server, thread


def foreground(server: BaseWSGIServer, *lines: str) -> None:
    """Print ``lines`` and keep ``server`` running until Ctrl-C, then shut it down."""
    for line in lines:
        print(line)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.shutdown()
