"""Run the ServiceTitan emulator as a real HTTP server (threaded werkzeug) in a daemon thread.

``serve()`` is what tests use; ``python -m sandbox.servicetitan.server --port 8804`` runs it in
the foreground. Refuses to start when the environment says production.
"""
from __future__ import annotations

import argparse

from werkzeug.serving import BaseWSGIServer

from sandbox import refuse_in_production
from sandbox.serving import foreground, start
from sandbox.servicetitan.app import create_app


def serve(host: str = "127.0.0.1", port: int = 0, config: dict | None = None,
          env: str | None = None) -> tuple[BaseWSGIServer, str]:
    """Start the emulator on ``host:port`` (0 = a free port) in a daemon thread.

    Returns ``(server, base_url)`` with ``base_url = "http://host:port"``. A client is pointed
    at it with auth URL ``f"{base_url}/connect/token"`` (instead of
    ``https://auth.servicetitan.io/connect/token``) and API base URL ``base_url`` (instead of
    ``https://api.servicetitan.io``). Stop with ``server.shutdown()``; the world is
    ``server.app.extensions["servicetitan"]``. Raises :class:`sandbox.ProductionRefused` when
    ``env`` (default ``ML_CONNECTOR_ENV``) is production.
    """
    refuse_in_production(env, "ServiceTitan emulator")
    server, _ = start(create_app(config), host, port, "servicetitan-emulator")
    return server, f"http://{host}:{server.server_port}"


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--host``, ``--port``, ``--rate-limit``, ``--token-ttl``."""
    parser = argparse.ArgumentParser(description="ServiceTitan v2 API emulator (sandbox only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8804)
    parser.add_argument("--rate-limit", type=int, default=60)
    parser.add_argument("--token-ttl", type=int, default=900)
    args = parser.parse_args(argv)
    server, base = serve(args.host, args.port, {"rate_limit": args.rate_limit,
                                                "token_ttl": args.token_ttl})
    foreground(server, f"ServiceTitan emulator on {base} (auth URL {base}/connect/token)")


if __name__ == "__main__":
    main()
