"""Run the Acumatica emulator as a real HTTP server (threaded werkzeug) in a daemon thread.

``serve()`` is what tests use; ``python -m sandbox.acumatica.server --port 8803`` runs it in the
foreground. Refuses to start when the environment says production.
"""
from __future__ import annotations

import argparse

from werkzeug.serving import BaseWSGIServer

from sandbox import refuse_in_production
from sandbox.acumatica.app import create_app
from sandbox.serving import foreground, start


def serve(host: str = "127.0.0.1", port: int = 0, config: dict | None = None,
          env: str | None = None) -> tuple[BaseWSGIServer, str]:
    """Start the emulator on ``host:port`` (0 = a free port) in a daemon thread.

    Returns ``(server, base_url)`` where ``base_url`` is ``http://host:port/<instance>`` (the
    customer's site URL that clients are configured with). Stop with ``server.shutdown()``; the
    state object is ``server.app.extensions["acumatica"]``. Raises
    :class:`sandbox.ProductionRefused` when ``env`` (default ``ML_CONNECTOR_ENV``) is production.
    """
    refuse_in_production(env, "Acumatica emulator")
    app = create_app(config)
    server, _ = start(app, host, port, "acumatica-emulator")
    instance = app.extensions["acumatica"].config["instance"]
    return server, f"http://{host}:{server.server_port}/{instance}"


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--host``, ``--port``, ``--api-users``, ``--per-minute``."""
    parser = argparse.ArgumentParser(description="Acumatica REST API emulator (sandbox only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8803)
    parser.add_argument("--api-users", type=int, default=2)
    parser.add_argument("--per-minute", type=int, default=0)
    args = parser.parse_args(argv)
    server, base = serve(args.host, args.port, {"api_user_limit": args.api_users,
                                                "requests_per_minute": args.per_minute or None})
    foreground(server, f"Acumatica emulator on {base}")


if __name__ == "__main__":
    main()
