"""Run the Gusto emulator as a real HTTP server (threaded werkzeug) in a daemon thread.

``serve()`` is what tests and the demo use; ``python -m sandbox.gusto.server --port 8801``
runs it in the foreground. Refuses to start when the environment says production.
"""
from __future__ import annotations

import argparse
import threading

from werkzeug.serving import BaseWSGIServer

from sandbox import ProductionRefused, refuse_in_production  # noqa: F401 - re-exported
from sandbox.gusto.app import create_app
from sandbox.serving import foreground, start


def serve(host: str = "127.0.0.1", port: int = 0, config: dict | None = None,
          env: str | None = None) -> tuple[BaseWSGIServer, threading.Thread]:
    """Start the emulator on ``host:port`` (0 = a free port) in a daemon thread.

    ``env`` is the deployment environment name (default: ``ML_CONNECTOR_ENV`` from the process
    environment); ``"production"`` raises :class:`ProductionRefused`. Returns ``(server,
    thread)``; the bound port is ``server.server_port`` and the base URL
    ``f"http://{host}:{server.server_port}"``. Stop with ``server.shutdown()``.
    """
    refuse_in_production(env, "Gusto emulator")
    return start(create_app(config), host, port, "gusto-emulator")


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--host``, ``--port``, ``--auto-approve``, ``--rate-limit``."""
    parser = argparse.ArgumentParser(description="Gusto API emulator (sandbox only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8801)
    parser.add_argument("--auto-approve", action="store_true")
    parser.add_argument("--rate-limit", type=int, default=200)
    args = parser.parse_args(argv)
    server, _ = serve(args.host, args.port, {"auto_approve": args.auto_approve, "rate_limit": args.rate_limit})
    foreground(server, f"Gusto emulator on http://{args.host}:{server.server_port}")


if __name__ == "__main__":
    main()
